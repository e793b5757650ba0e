"""The lab's Ironic, listening only on the lab's address inside its
namespace. Two shapes:

- the quick path: API and conductor in one ``ironic`` process, sqlite,
  no authentication, no message bus;
- the multi-conductor lab (with ``--openstack``, whose MariaDB and
  RabbitMQ it shares): ``ironic-api`` behind Keystone and the
  ``ironic-conductor`` processes of :data:`settings.CONDUCTORS`, as
  separate processes on one MariaDB database, talking over
  oslo.messaging on RabbitMQ (Ironic's default transport; the bus is
  there for Nova already, so json-rpc's per-conductor ports and auth
  would be one more thing to set up for nothing). Their hash ring
  spreads the nodes; deploy keys are derived from one secret the
  conductors share (``[fuel_agent]key_secret_file``), so any of them
  can finish a deploy another began.

Hardware types ``fuel-ipmi`` (IPMI through virtualbmc) and
``fuel-redfish`` (Redfish through sushy-tools), deploy and rescue
interfaces ``fuel-agent``, Ironic's built-in ``agent`` inspection, boot
interfaces ``ipxe``, ``pxe`` and ``http-ipxe``, DHCP through Ironic's
own ``dnsmasq`` provider.
Automated cleaning is on, as in Ironic's defaults.
"""

import json
import os
import secrets
import shlex
import subprocess
import time
import urllib.error
import urllib.request

from lab import dhcp
from lab import host
from lab import netgrub
from lab import openstack
from lab import procs
from lab import settings
from lab import vmedia

NAME = 'ironic'
API = 'ironic-api'


# Each carries some of the scenarios' operations (boot_paths); nodes are
# enrolled with ipxe.
BOOT_INTERFACES = ('ipxe', 'pxe', 'http', 'http-ipxe',
                   'redfish-virtual-media', 'redfish-https')


class IronicError(Exception):
    pass


# Fast track under Keystone: the ramdisk's anonymous lookup must see the
# key the conductor publishes in driver_internal_info (see
# doc/source/ops-fast-track.rst); everything else keeps Ironic's default.
# Ironic 39's default rule for the field (tests/unit/lab checks it).
_DRIVER_INTERNAL_INFO_DEFAULT = (
    '((role:reader and system_scope:all) or (role:service and '
    'system_scope:all) or rule:service_role) or (role:service and '
    'system_scope:all) or (role:reader and project_id:%(node.owner)s) or '
    '(role:service and project_id:%(node.owner)s)')
FAST_TRACK_POLICY = (
    '"baremetal:node:get:driver_internal_info": "(%s) or '
    'is_public_api:True"\n' % _DRIVER_INTERNAL_INFO_DEFAULT)


def config(lab, ramdisk_dir):
    r = lab.path
    d = dhcp.paths(lab)
    if lab.with_openstack:
        auth = 'keystone'
        extra = openstack.ironic_auth_config(lab) + (
            '[oslo_policy]\npolicy_file = %s\n'
            % r('ironic', 'policy.yaml'))
    else:
        auth, extra = 'noauth', ''
    if lab.multi_conductor:
        extra += multi_conductor_config(lab)
        transport, database = 'oslo', openstack.db_url(lab, 'ironic')
    else:
        transport = 'none'
        database = 'sqlite:///%s' % r('ironic', 'ironic.sqlite')
    return f"""# Written by the lab (tools/lab).
[DEFAULT]
auth_strategy = {auth}
rpc_transport = {transport}
host = fa-lab
state_path = {r('ironic')}
tempdir = {r('ironic', 'tmp')}
debug = true
log_file = {r('logs', 'ironic-service.log')}
# redfish-virtual-media: the EFI system partition Ironic puts on its
# deploy ISO, and where on the ISO it writes GRUB's configuration
# (lab.vmedia); ISOLINUX for the BIOS node's ISO.
esp_image = {vmedia.esp_path(lab)}
grub_config_path = {vmedia.GRUB_CONFIG_PATH}
isolinux_bin = {vmedia.ISOLINUX_BIN}
enabled_hardware_types = fuel-ipmi,fuel-redfish
enabled_deploy_interfaces = fuel-agent
enabled_boot_interfaces = {','.join(BOOT_INTERFACES)}
enabled_power_interfaces = ipmitool,redfish
enabled_management_interfaces = ipmitool,redfish
enabled_network_interfaces = noop
enabled_inspect_interfaces = agent,no-inspect
enabled_console_interfaces = no-console
enabled_raid_interfaces = no-raid
enabled_rescue_interfaces = fuel-agent,no-rescue
enabled_vendor_interfaces = no-vendor
enabled_bios_interfaces = no-bios
enabled_firmware_interfaces = no-firmware
[inspector]
# Ironic's built-in in-band inspection with the fuel ramdisk: the default
# hooks (ports, local_gb, ...) plus what fills memory, CPUs, the root
# device and the boot mode.
hooks = $default_hooks,memory,cpus,root-device,boot-mode,cpu-capabilities
add_ports = pxe
power_off = true
[auto_discovery]
enabled = false
[inventory]
data_backend = database
[api]
# Every address of the lab's namespace, IPv4 and IPv6 (cheroot's "::" is
# dual-stack): virtual-media ramdisks reach Ironic over IPv6.
host_ip = ::
port = {lab.ironic_port}
# One process: each ironic-api worker binds the port itself (cheroot), so
# a second one (the default on two cores) fails with "Address already in
# use" and cotyledon forks it again, about once a second, for good.
api_workers = 1
[database]
connection = {database}
[dhcp]
dhcp_provider = dnsmasq
[dnsmasq]
dhcp_hostsdir = {d['hosts']}
dhcp_optsdir = {d['opts']}
dhcp_leasefile = {d['leases']}
[conductor]
# Ironic's default (true), said out loud: every undeploy and every
# provide cleans the disks.
automated_clean = true
deploy_callback_timeout = 1800
periodic_max_workers = 4
file_url_allowed_paths = {ramdisk_dir}
# The lab reads last_error of failed deploys; a power sync would move
# it into the node's history.
sync_power_state_interval = 0
# The test image does not act on the ACPI power button, so a soft power
# off (Nova's clean shutdown before a rescue) only ends by this timeout;
# Nova then powers off hard. Ironic's default is 600 s.
soft_power_off_timeout = 30
[deploy]
http_url = {lab.http_url}
# The API URL Ironic puts on virtual-media ISOs (redfish-virtual-media,
# redfish-https): the DHCP-less scenario's node is on IPv6 only.
external_callback_url = {lab.ironic_url6}
http_root = {lab.http_root}
default_boot_mode = bios
# Fast track: a ramdisk that is up (inspection, cleaning) takes the next
# operation without a reboot. Ironic's default is off; the lab turns it
# on and the UEFI node off again (driver_info fast_track=false), so both
# paths run.
fast_track = true
fast_track_timeout = 300
# erase_devices runs (Ironic's default priority) with one zero pass and
# no random one: a random pass over the lab's 2 x 5 GiB qcow2 disks under
# TCG costs minutes per cleaning and proves nothing a zero pass does not.
shred_random_overwrite_iterations = 0
shred_final_overwrite_with_zeros = true
[pxe]
tftp_root = {lab.tftp_root}
tftp_server = {lab.address}
tftp_master_path = {r('ironic', 'master')}
images_path = {r('ironic', 'images')}
instance_master_path = {r('ironic', 'master', 'instance')}
# The BIOS VMs' own NIC ROM is iPXE (QEMU's): dnsmasq tags it (option
# 175) and it gets boot.ipxe over HTTP at once, so undionly.kpxe is only
# for a PXE ROM that is not iPXE. OVMF's PXE client gets snponly.efi,
# which downloaded as fast as ipxe.efi and started 4-5 s sooner
# (tools/bench_ramdisk_boot.py, doc/source/install.rst).
ipxe_bootfile_name = undionly.kpxe
uefi_ipxe_bootfile_name = snponly.efi
# Ironic copies the boot loaders from Debian's packages (and the lab's
# network GRUB) into its TFTP and HTTP roots (host.boot_loaders).
loader_file_paths = {loader_file_paths(lab)}
# The serial console is the lab's only window into the node. quiet: at
# 115200 baud the kernel's boot messages cost 2-8 s of every ramdisk boot
# under TCG; its errors, systemd's failures and the ramdisk services' own
# lines (fa-ssh-keys, fa-heartbeat) are still written there.
kernel_append_params = console=ttyS0,115200 nofb quiet
[ipmi]
min_command_interval = 1
[redfish]
# The virtual-media ramdisk's kernel line ([pxe]kernel_append_params is
# for network boots).
kernel_append_params = console=ttyS0,115200 nofb quiet
[service_catalog]
endpoint_override = {lab.ironic_url}
[agent]
deploy_logs_collect = on_failure
deploy_logs_storage_backend = local
deploy_logs_local_path = {r('ironic', 'deploy-logs')}
[fuel_agent]
key_dir = {r('ironic', 'keys')}
scheme_library_dir = {r('schemes')}
status_poll_interval = 3
ssh_connect_timeout = 15
deploy_timeout = 2400
soft_power_off_timeout = 30
""" + extra


def loader_file_paths(lab):
    return ','.join('%s:%s' % item
                    for item in host.boot_loaders(lab).items())


def multi_conductor_config(lab):
    """What the API and every conductor share beyond the quick path's
    configuration (each conductor's own part: :func:`conductor_config`).
    """
    return f"""
[DEFAULT]
transport_url = {openstack.transport_url(lab)}
# A conductor that died leaves the hash ring within heartbeat_timeout
# plus this (Ironic's default: 15 s).
hash_ring_reset_interval = 5
[conductor]
# Shorter than Ironic's defaults (10 s, 60 s, 60 s) so that the lab's
# failover takes seconds, not minutes: a conductor that stopped checking
# in for 20 s is offline, and the survivors release its node locks
# (_check_orphan_nodes) within 10 s.
heartbeat_interval = 5
heartbeat_timeout = 20
check_provision_state_interval = 10
[fuel_agent]
# Deploy keys derived from a secret every conductor has (and nothing
# else): the node's next owner logs in to a ramdisk the dead one
# started (doc/source/ha-and-scale.rst).
key_secret_file = {lab.path('ironic', 'key-secret')}
"""


def conductor_config(lab, conductor):
    """One conductor's own file, read after the shared one: its name
    (the hash ring's and RabbitMQ's), its group, and the directories a
    conductor host has on its own disk in a real deployment."""
    own = lab.path('ironic', conductor.host)
    return f"""# Written by the lab (tools/lab).
[DEFAULT]
host = {conductor.host}
[conductor]
conductor_group = {conductor.group}
[pxe]
tftp_master_path = {os.path.join(own, 'master')}
images_path = {os.path.join(own, 'images')}
instance_master_path = {os.path.join(own, 'master', 'instance')}
[fuel_agent]
key_dir = {os.path.join(own, 'keys')}
"""


def _write_key_secret(path):
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(secrets.token_bytes(64))


def start_conductor(lab, registry, conductor, wait=True):
    """Start one ironic-conductor (again, after a failover scenario
    killed it) and wait until it checks in."""
    conf = lab.path('ironic', 'ironic.conf')
    own = lab.path('ironic', conductor.host + '.conf')
    for name in ('master', 'images', 'keys'):
        os.makedirs(lab.path('ironic', conductor.host, name), exist_ok=True)
    with open(own, 'w') as f:
        f.write(conductor_config(lab, conductor))
    registry.start(conductor.process, [
        os.path.join(settings.VENV_BIN, 'ironic-conductor'),
        '--config-file', conf, '--config-file', own])
    if wait:
        wait_for_conductor(lab, registry, conductor)


def wait_for_conductor(lab, registry, conductor):
    """Until the conductor checks in (the API lists it alive)."""
    client = Client(lab)
    procs.wait_until(lambda: client.conductor_alive(conductor.host),
                     'ironic-conductor %s' % conductor.host, 120,
                     registry, conductor.process)


def start(lab, registry, ramdisk_dir):
    for name in ('ironic', 'ironic/tmp', 'ironic/master', 'ironic/images',
                 'ironic/deploy-logs', 'schemes'):
        os.makedirs(lab.path(name), exist_ok=True)
    os.makedirs(lab.http_root, exist_ok=True)
    vmedia.build_esp(lab)
    netgrub.build(lab)
    conf = lab.path('ironic', 'ironic.conf')
    with open(conf, 'w') as f:
        f.write(config(lab, ramdisk_dir))
    with open(lab.path('ironic', 'policy.yaml'), 'w') as f:
        f.write(FAST_TRACK_POLICY)
    if lab.multi_conductor:
        start_multi_conductor(lab, registry, conf)
        return
    if registry.alive(NAME):
        return
    database = lab.path('ironic', 'ironic.sqlite')
    command = 'upgrade' if os.path.exists(database) else 'create_schema'
    subprocess.run([os.path.join(settings.VENV_BIN, 'ironic-dbsync'),
                    '--config-file', conf, command], check=True,
                   capture_output=True)
    registry.start(NAME, [os.path.join(settings.VENV_BIN, 'ironic'),
                          '--config-file', conf])
    client = Client(lab)
    procs.wait_until(client.answers, 'the Ironic API', 90, registry, NAME)
    procs.wait_until(client.conductor_up, 'the Ironic conductor', 90,
                     registry, NAME)


def start_multi_conductor(lab, registry, conf):
    """ironic-api and the conductors as separate processes on MariaDB."""
    _write_key_secret(lab.path('ironic', 'key-secret'))
    if not registry.alive(API):
        # create_schema on an empty database, upgrade on one with tables.
        result = subprocess.run(
            [os.path.join(settings.VENV_BIN, 'ironic-dbsync'),
             '--config-file', conf, 'version'], capture_output=True,
            text=True)
        fresh = result.returncode or result.stdout.strip() in ('', 'None')
        subprocess.run([os.path.join(settings.VENV_BIN, 'ironic-dbsync'),
                        '--config-file', conf,
                        'create_schema' if fresh else 'upgrade'],
                       check=True, capture_output=True)
        registry.start(API, [os.path.join(settings.VENV_BIN, 'ironic-api'),
                             '--config-file', conf])
    for conductor in settings.CONDUCTORS:
        start_conductor(lab, registry, conductor, wait=False)
    client = Client(lab)
    procs.wait_until(client.answers, 'the Ironic API', 90, registry, API)
    for conductor in settings.CONDUCTORS:
        wait_for_conductor(lab, registry, conductor)


class Client:
    """Ironic's REST API for polling, the ``baremetal`` CLI for what an
    operator would type (the lab prints those commands)."""

    def __init__(self, lab, say=None):
        self.lab = lab
        self.say = say
        self.keystone = None
        if lab.with_openstack:
            # The operator of a cloud: admin with system scope, which
            # Ironic's default policy asks for fleet-wide operations.
            self.env = dict(os.environ, OS_BAREMETAL_API_VERSION='latest',
                            **openstack.admin_env(lab, system_scope=True))
            self.keystone = openstack.Keystone(lab, system_scope=True)
        else:
            self.env = dict(os.environ, OS_ENDPOINT=lab.ironic_url,
                            OS_AUTH_TYPE='none',
                            OS_BAREMETAL_API_VERSION='latest')

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {'X-OpenStack-Ironic-API-Version': 'latest',
                   'Content-Type': 'application/json'}
        if self.keystone:
            headers['X-Auth-Token'] = self.keystone.current_token()
        request = urllib.request.Request(
            self.lab.ironic_url + path, data=data, method=method,
            headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                text = reply.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and self.keystone:
                self.keystone.token = None
            raise IronicError('%s %s: %s %s' % (
                method, path, exc.code, exc.read().decode()[:2000]))
        return json.loads(text) if text else None

    def answers(self):
        try:
            self.request('GET', '/v1')
            return True
        except (OSError, IronicError):
            return False

    def conductor_up(self):
        try:
            drivers = self.request('GET', '/v1/drivers')['drivers']
        except (OSError, IronicError):
            return False
        return any(d['name'] == 'fuel-ipmi' for d in drivers)

    def conductor_alive(self, host):
        try:
            return self.request('GET', '/v1/conductors/%s' % host)['alive']
        except (OSError, IronicError):
            return False

    def baremetal(self, *args, quiet=False):
        """Run the ``baremetal`` CLI; JSON output is parsed."""
        if self.say and not quiet:
            self.say('$ baremetal ' + ' '.join(shlex.quote(a) for a in args))
        timeout = 300
        if '--wait' in args:
            # The CLI's own wait, and a margin for the command itself.
            timeout = int(args[args.index('--wait') + 1]) + 120
        result = subprocess.run(
            [os.path.join(settings.VENV_BIN, 'baremetal')] + list(args),
            env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise IronicError('baremetal %s failed: %s' % (
                ' '.join(args[:3]), result.stderr.strip()[-2000:]))
        if '-f' in args and 'json' in args:
            return json.loads(result.stdout)
        return result.stdout

    def node(self, ident):
        return self.request('GET', '/v1/nodes/%s' % ident)

    def find_node(self, name):
        try:
            return self.node(name)
        except IronicError:
            return None

    def wait_for_state(self, ident, states, timeout, failed=(),
                       on_poll=None):
        """Poll until the node's provision state is in ``states``
        (returned) or in ``failed`` (raises with last_error)."""
        deadline = time.monotonic() + timeout
        while True:
            node = self.node(ident)
            if on_poll:
                on_poll(node)
            state = node['provision_state']
            if state in states:
                return node
            if state in failed:
                raise IronicError('node %s is in %s: %s' % (
                    node['name'], state, node['last_error']))
            if time.monotonic() > deadline:
                raise IronicError(
                    'node %s still in %s after %d s (last_error: %s)' % (
                        node['name'], state, timeout, node['last_error']))
            time.sleep(2)
