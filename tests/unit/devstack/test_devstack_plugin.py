"""The devstack plugin against devstack's real ini helpers and a real Ironic
(issue 15, item 4).

A real devstack cannot run here (it clones from git servers this machine
cannot reach), so this does what devstack would, short of it:

- ironic.conf is written the way devstack's lib/ironic
  (configure_ironic_conductor) writes it with its default settings, with
  devstack's own ``iniset``/``iniget`` (vendored in devstack_ini_config.sh),
  plus what a standalone Ironic here needs (sqlite, noauth, no RPC bus,
  127.0.0.1);
- devstack/settings and devstack/plugin.sh are sourced per phase, as
  devstack's run_phase does; only devstack's process helpers (sudo,
  setup_develop, ...) are recorded instead of run;
- a real Ironic 39 (``ironic``: API and conductor in one process) starts
  with that ironic.conf, the node is enrolled as lib/ironic's enroll_nodes
  does (``--driver ipmi``), and the plugin's test-config phase moves it to
  fuel-ipmi/fuel-agent through the real ``baremetal`` client. Glance is the
  one thing missing: ``openstack image create`` answers an image name.
"""

import configparser
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]
BIN = os.path.dirname(sys.executable)

# What devstack itself provides to a plugin, besides the ini helpers.
DEVSTACK = r'''
source "$INI_HELPERS"
record() { printf '%s\n' "$*" >> "$CALLS"; }
is_service_enabled() { [[ " $ENABLED_SERVICES " == *" $1 "* ]]; }
define_plugin() { record define_plugin "$@"; }
plugin_requires() { record plugin_requires "$@"; }
echo_summary() { record echo_summary "$@"; }
setup_develop() { record setup_develop "$@"; }
sudo() { record sudo "$@"; }
die() { shift; echo "die: $*" >&2; exit 1; }
trueorfalse() {
    local default=$1 value=${!2:-$1}
    case "${value,,}" in
        1|yes|true|on) echo True ;; 0|no|false|off) echo False ;;
        *) echo "$default" ;;
    esac
}
# openstack: "baremetal" goes to the real client (python-ironicclient's
# `baremetal` has the same commands), "image create" answers "<name>-id".
openstack() {
    record openstack "$@"
    [[ "$1" == --os-cloud ]] && shift 2
    case "$1 $2" in
        "image create") echo "$3-id" ;;
        baremetal*) shift; "$BIN/baremetal" "$@" ;;
        *) return 1 ;;
    esac
}
'''

# lib/ironic's defaults (openstack/ironic devstack/lib/ironic, 2026-08):
# IRONIC_ENABLED_HARDWARE_TYPES and IRONIC_ENABLED_<TYPE>_INTERFACES, which
# configure_ironic_conductor writes with iniset, one option per type.
DEVSTACK_DEFAULTS = {
    'hardware_types': 'ipmi,fake-hardware',
    'bios_interfaces': 'fake,no-bios',
    'boot_interfaces': 'fake,ipxe',
    'power_interfaces': '',
    'management_interfaces': '',
    'deploy_interfaces': 'fake,direct,ramdisk',
    'console_interfaces': 'fake,no-console',
    'inspect_interfaces': 'fake,agent,no-inspect',
    'raid_interfaces': 'fake,agent,no-raid',
    'rescue_interfaces': 'fake,no-rescue',
    'storage_interfaces': 'fake,cinder,noop',
    'network_interfaces': 'flat,noop',
    'vendor_interfaces': 'fake,ipmitool,no-vendor',
}
DEVSTACK_IRONIC_CONF = ''.join(
    'iniset $IRONIC_CONF_FILE DEFAULT enabled_%s "%s"\n' % item
    for item in DEVSTACK_DEFAULTS.items())


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Devstack:
    """Runs plugin phases in bash against one ironic.conf."""

    def __init__(self, root, port=None, **settings):
        self.root = root
        self.conf = root / 'ironic.conf'
        self.calls = root / 'calls'
        self.port = port
        self.env = dict(
            os.environ, CALLS=str(self.calls), IRONIC_CONF_FILE=str(self.conf),
            INI_HELPERS=str(HERE / 'devstack_ini_config.sh'), BIN=BIN,
            ENABLED_SERVICES='ir-api ir-cond ir-fa', DEST='/opt/stack',
            DATA_DIR=str(root / 'data'), STACK_USER='stack',
            OS_AUTH_TYPE='none', OS_BAREMETAL_API_VERSION='latest',
            **settings)
        if port:
            self.env['OS_ENDPOINT'] = 'http://127.0.0.1:%d' % port

    def bash(self, script, check=True):
        result = subprocess.run(['bash', '-euc', DEVSTACK + script],
                                env=self.env, capture_output=True, text=True,
                                timeout=120)
        if check and result.returncode:
            raise AssertionError('the plugin failed (%d): %s'
                                 % (result.returncode, result.stderr[-2000:]))
        return result

    def ironic_post_config(self):
        """What Ironic's own plugin writes before this one runs."""
        r = self.root
        for name in ('httpboot', 'tftpboot', 'state'):
            (r / name).mkdir(exist_ok=True)
        self.bash(DEVSTACK_IRONIC_CONF + f'''
iniset $IRONIC_CONF_FILE DEFAULT auth_strategy noauth
iniset $IRONIC_CONF_FILE DEFAULT rpc_transport none
iniset $IRONIC_CONF_FILE DEFAULT host fa-devstack
iniset $IRONIC_CONF_FILE DEFAULT state_path {r}/state
iniset $IRONIC_CONF_FILE DEFAULT tempdir {r}
iniset $IRONIC_CONF_FILE DEFAULT log_file {r}/ironic.log
iniset $IRONIC_CONF_FILE api host_ip 127.0.0.1
iniset $IRONIC_CONF_FILE api port {self.port or 6385}
iniset $IRONIC_CONF_FILE database connection sqlite:///{r}/ironic.sqlite
iniset $IRONIC_CONF_FILE dhcp dhcp_provider none
iniset $IRONIC_CONF_FILE deploy http_root {r}/httpboot
iniset $IRONIC_CONF_FILE deploy http_url http://127.0.0.1:3928
iniset $IRONIC_CONF_FILE pxe tftp_root {r}/tftpboot
iniset $IRONIC_CONF_FILE pxe tftp_master_path {r}/tftpboot/master_images
iniset $IRONIC_CONF_FILE conductor automated_clean false
''')

    def phases(self, *phases, check=True):
        script = '\n'.join(
            'source %s/devstack/settings\nsource %s/devstack/plugin.sh %s'
            % (REPO, REPO, phase) for phase in phases)
        return self.bash(script, check=check)

    def config(self):
        cfg = configparser.RawConfigParser()
        cfg.read(self.conf)
        return cfg

    def recorded(self):
        return (self.calls.read_text().splitlines()
                if self.calls.exists() else [])


@pytest.fixture(scope='module')
def devstack_conf(tmp_path_factory):
    """Ironic's part of ironic.conf, written once for the phase tests."""
    ds = Devstack(tmp_path_factory.mktemp('ironic-conf'))
    ds.ironic_post_config()
    return ds.conf.read_text()


@pytest.fixture
def devstack(tmp_path, devstack_conf):
    ds = Devstack(tmp_path)
    ds.conf.write_text(devstack_conf)
    return ds


def test_install_develops_agent_before_driver(devstack):
    devstack.phases('stack install')
    develops = [c for c in devstack.recorded()
                if c.startswith('setup_develop')]
    assert develops == ['setup_develop /opt/stack/ironic-fa-driver/agent',
                        'setup_develop /opt/stack/ironic-fa-driver']


def test_post_config_on_devstack_defaults(devstack):
    devstack.phases('stack post-config')
    cfg = devstack.config()
    assert cfg.get('DEFAULT', 'enabled_hardware_types') == \
        'ipmi,fake-hardware,fuel-ipmi,fuel-redfish,fuel-manual'
    assert cfg.get('DEFAULT', 'enabled_deploy_interfaces') == \
        'fake,direct,ramdisk,fuel-agent'
    # ipmi and fake-hardware stay enabled: no default they cannot hold.
    assert not cfg.has_option('DEFAULT', 'default_deploy_interface')
    assert cfg.get('fuel_agent', 'ssh_user') == 'root'
    assert cfg.get('fuel_agent', 'scheme_library_dir') == \
        '/etc/ironic/fa-schemes'
    assert cfg.get('fuel_agent', 'deploy_timeout') == '3600'
    assert 'sudo install -d -o stack /etc/ironic/fa-schemes' in \
        devstack.recorded()


def test_post_config_twice_adds_nothing_twice(devstack):
    devstack.phases('stack post-config', 'stack post-config')
    cfg = devstack.config()
    assert cfg.get('DEFAULT', 'enabled_deploy_interfaces') == \
        'fake,direct,ramdisk,fuel-agent'
    assert cfg.get('DEFAULT', 'enabled_hardware_types').count('fuel-ipmi') \
        == 1


def test_default_refused_while_stock_types_are_enabled(devstack):
    devstack.env['IRONIC_FA_SET_DEFAULT'] = 'True'
    result = devstack.phases('stack post-config', check=False)
    assert result.returncode != 0
    assert 'types ipmi fake-hardware do not support fuel-agent' in \
        result.stderr
    assert not devstack.config().has_option('DEFAULT',
                                            'default_deploy_interface')


def test_default_set_when_only_fuel_types_are_enabled(devstack):
    devstack.bash('iniset $IRONIC_CONF_FILE DEFAULT enabled_hardware_types '
                  'fuel-ipmi')
    devstack.env['IRONIC_FA_SET_DEFAULT'] = 'True'
    devstack.phases('stack post-config')
    assert devstack.config().get('DEFAULT', 'default_deploy_interface') == \
        'fuel-agent'


def test_extra_builds_ramdisk(devstack):
    devstack.phases('stack extra')
    ramdisk_dir = devstack.root / 'data' / 'ironic-fa' / 'ramdisk'
    assert ('sudo /opt/stack/ironic-fa-driver/tools/build-ramdisk.sh '
            '--output %s' % ramdisk_dir) in devstack.recorded()


def test_nothing_happens_when_service_disabled(devstack):
    devstack.env['ENABLED_SERVICES'] = 'ir-api ir-cond'
    before = devstack.conf.read_text()
    devstack.phases('stack install', 'stack post-config', 'stack test-config')
    assert not [c for c in devstack.recorded()
                if not c.startswith(('define_plugin', 'plugin_requires'))]
    assert devstack.conf.read_text() == before


@pytest.mark.parametrize('phase', ['stack install', 'stack post-config',
                                   'stack extra', 'unstack', 'clean'])
def test_plugin_is_valid_bash_in_every_phase(devstack, phase):
    devstack.phases(phase)


class Ironic:
    """``ironic`` (API + conductor) started from the plugin's ironic.conf."""

    def __init__(self, ds):
        self.ds = ds
        self.api = 'http://127.0.0.1:%d' % ds.port
        self.logs = (ds.root / 'ironic.log', ds.root / 'ironic.out')
        subprocess.run([BIN + '/ironic-dbsync', '--config-file', str(ds.conf),
                        'create_schema'], check=True, capture_output=True)
        self.output = open(ds.root / 'ironic.out', 'w')
        self.process = subprocess.Popen(
            [BIN + '/ironic', '--config-file', str(ds.conf)],
            stdout=self.output, stderr=subprocess.STDOUT,
            start_new_session=True)

    def get(self, path):
        return self.call('GET', path)[1]

    def call(self, method, path, body=None):
        """One API request: (HTTP status, decoded body)."""
        request = urllib.request.Request(
            self.api + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={'X-OpenStack-Ironic-API-Version': 'latest',
                     'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def wait_for_conductor(self, timeout=40):
        """Until the conductor registered fuel-ipmi, as lib/ironic waits
        for its driver in `baremetal driver list`."""
        deadline = time.monotonic() + timeout
        while True:
            log = ''.join(f.read_text() for f in self.logs if f.exists())
            try:
                drivers = [d['name']
                           for d in self.get('/v1/drivers')['drivers']]
                if 'fuel-ipmi' in drivers:
                    return drivers
            except OSError:
                pass
            if (self.process.poll() is not None
                    or ' ERROR ' in log or 'Traceback' in log
                    or time.monotonic() > deadline):
                raise AssertionError(
                    'the conductor did not start from the plugin\'s '
                    'ironic.conf:\n' + ''.join(log.splitlines(True)[-15:]))
            time.sleep(0.5)

    def stop(self):
        if self.process.poll() is None:
            # Only the process group this test started. A conductor that
            # failed to start ignores SIGTERM: then SIGKILL.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.output.close()


def _baremetal(ds, *args):
    return subprocess.run([BIN + '/baremetal'] + list(args), env=ds.env,
                          capture_output=True, text=True, timeout=60)


def test_conductor_starts_and_nodes_move_to_fuel_agent(tmp_path):
    ds = Devstack(tmp_path, port=_free_port())
    ds.ironic_post_config()
    ds.phases('stack post-config')
    ironic = Ironic(ds)
    try:
        drivers = ironic.wait_for_conductor()
        assert {'ipmi', 'fake-hardware', 'fuel-ipmi', 'fuel-redfish',
                'fuel-manual'} <= set(drivers)
        fuel_ipmi = ironic.get('/v1/drivers/fuel-ipmi')
        assert fuel_ipmi['default_deploy_interface'] == 'fuel-agent'
        assert ironic.get('/v1/drivers/ipmi')['default_deploy_interface'] \
            == 'direct'

        # Nodes as lib/ironic's enroll_nodes creates them, and one that no
        # fuel-* type replaces.
        created = _baremetal(
            ds, 'node', 'create', '--driver', 'ipmi', '--name', 'node-0',
            '--resource-class', 'baremetal', '--property', 'cpu_arch=x86_64',
            '--driver-info', 'ipmi_address=127.0.0.1',
            '--driver-info', 'ipmi_username=admin',
            '--driver-info', 'ipmi_password=password', '-f', 'value',
            '-c', 'uuid')
        assert created.returncode == 0, created.stderr
        assert ironic.call('POST', '/v1/nodes', {
            'driver': 'fake-hardware', 'name': 'fake-0'})[0] == 201
        # Why the plugin switches the driver: Ironic refuses fuel-agent on
        # the stock type.
        status, refused = ironic.call('PATCH', '/v1/nodes/node-0', [
            {'op': 'replace', 'path': '/deploy_interface',
             'value': 'fuel-agent'}])
        assert status == 400
        assert 'not supported by hardware type IPMIHardware' in \
            json.loads(refused['error_message'])['faultstring']

        ds.phases('stack test-config')
        uuid = created.stdout.strip()
        assert ('openstack --os-cloud devstack-admin baremetal node set %s '
                '--driver fuel-ipmi --deploy-interface fuel-agent '
                '--driver-info deploy_kernel=fa-deploy-kernel-id '
                '--driver-info deploy_ramdisk=fa-deploy-ramdisk-id' % uuid
                ) in ds.recorded()
        node = ironic.get('/v1/nodes/node-0')
        assert node['driver'] == 'fuel-ipmi'
        assert node['deploy_interface'] == 'fuel-agent'
        assert node['driver_info']['deploy_kernel'] == 'fa-deploy-kernel-id'
        assert node['driver_info']['deploy_ramdisk'] == \
            'fa-deploy-ramdisk-id'
        assert node['driver_info']['ipmi_address'] == '127.0.0.1'
        assert node['power_interface'] == 'ipmitool'
        fake = ironic.get('/v1/nodes/fake-0')
        assert (fake['driver'], fake['deploy_interface']) == \
            ('fake-hardware', 'fake')

        # Enrolling straight onto the twin, as doc/source/devstack.rst says.
        status, direct = ironic.call('POST', '/v1/nodes', {
            'driver': 'fuel-ipmi', 'name': 'node-1',
            'deploy_interface': 'fuel-agent',
            'driver_info': {'ipmi_address': '127.0.0.1'}})
        assert status == 201, direct
        assert direct['deploy_interface'] == 'fuel-agent'
    finally:
        ironic.stop()
    assert ironic.process.returncode is not None
