"""Sources devstack/plugin.sh the way devstack does, with devstack's helper
functions stubbed (devstack itself is not installed here), and checks the
ironic.conf it produces and the commands it runs."""

import configparser
import os
import pathlib
import subprocess
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]

# Stand-ins for devstack's functions: each records its call in $CALLS;
# iniset/iniget edit a real INI file so the resulting ironic.conf can be read.
STUBS = textwrap.dedent(r'''
    record() { printf '%s\n' "$*" >> "$CALLS"; }
    is_service_enabled() { [[ " $ENABLED_SERVICES " == *" $1 "* ]]; }
    define_plugin() { record define_plugin "$@"; }
    plugin_requires() { record plugin_requires "$@"; }
    echo_summary() { record echo_summary "$@"; }
    setup_develop() { record setup_develop "$@"; }
    sudo() { record sudo "$@"; }
    trueorfalse() {
        local default=$1 value=${!2:-$1}
        case "${value,,}" in
            1|yes|true|on) echo True ;; 0|no|false|off) echo False ;;
            *) echo "$default" ;;
        esac
    }
    iniset() { python3 - "$@" <<'PY'
import configparser, sys
path, section, option, value = sys.argv[1:5]
cfg = configparser.RawConfigParser()
cfg.optionxform = str
cfg.read(path)
if section != 'DEFAULT' and not cfg.has_section(section):
    cfg.add_section(section)
cfg.set(section, option, value)
with open(path, 'w') as f:
    cfg.write(f)
PY
    }
    iniget() { python3 - "$@" <<'PY'
import configparser, sys
path, section, option = sys.argv[1:4]
cfg = configparser.RawConfigParser()
cfg.optionxform = str
cfg.read(path)
print(cfg.get(section, option, fallback=''))
PY
    }
    openstack() {
        record openstack "$@"
        case "$*" in
            *"image create fa-deploy-kernel"*) echo kernel-uuid ;;
            *"image create fa-deploy-ramdisk"*) echo ramdisk-uuid ;;
            *"node list"*) printf 'node-1\nnode-2\n' ;;
        esac
    }
''')


def _run_phases(tmp_path, phases, enabled='ironic ir-fa', extra_env=None):
    conf = tmp_path / 'ironic.conf'
    if not conf.exists():
        conf.write_text('[DEFAULT]\nenabled_hardware_types = ipmi\n'
                        'enabled_deploy_interfaces = direct\n')
    calls = tmp_path / 'calls'
    script = STUBS + '\n'.join(
        'source %s/devstack/settings\nsource %s/devstack/plugin.sh %s'
        % (REPO, REPO, phase) for phase in phases)
    env = dict(os.environ, CALLS=str(calls), IRONIC_CONF_FILE=str(conf),
               ENABLED_SERVICES=enabled, DEST='/opt/stack',
               DATA_DIR=str(tmp_path / 'data'), STACK_USER='stack',
               **(extra_env or {}))
    subprocess.run(['bash', '-euc', script], env=env, check=True)
    cfg = configparser.RawConfigParser()
    cfg.read(conf)
    lines = calls.read_text().splitlines() if calls.exists() else []
    return cfg, lines


def test_install_develops_agent_before_driver(tmp_path):
    _, calls = _run_phases(tmp_path, ['stack install'])
    develops = [c for c in calls if c.startswith('setup_develop')]
    assert develops == ['setup_develop /opt/stack/ironic-fa-driver/agent',
                        'setup_develop /opt/stack/ironic-fa-driver']


def test_post_config_enables_interface_and_types(tmp_path):
    cfg, calls = _run_phases(tmp_path, ['stack post-config'])
    assert cfg.get('DEFAULT', 'enabled_hardware_types') == \
        'ipmi,fuel-ipmi,fuel-redfish,fuel-manual'
    assert cfg.get('DEFAULT', 'enabled_deploy_interfaces') == \
        'direct,fuel-agent'
    assert cfg.get('DEFAULT', 'default_deploy_interface') == 'fuel-agent'
    assert cfg.get('fuel_agent', 'ssh_user') == 'root'
    assert cfg.get('fuel_agent', 'scheme_library_dir') == \
        '/etc/ironic/fa-schemes'
    assert cfg.get('fuel_agent', 'deploy_timeout') == '3600'
    assert ('sudo install -d -o stack /etc/ironic/fa-schemes') in calls


def test_post_config_twice_adds_nothing_twice(tmp_path):
    cfg, _ = _run_phases(tmp_path, ['stack post-config', 'stack post-config'])
    assert cfg.get('DEFAULT', 'enabled_deploy_interfaces') == \
        'direct,fuel-agent'


def test_default_interface_left_alone_when_disabled(tmp_path):
    cfg, _ = _run_phases(tmp_path, ['stack post-config'],
                         extra_env={'IRONIC_FA_SET_DEFAULT': 'False'})
    assert not cfg.has_option('DEFAULT', 'default_deploy_interface')


def test_extra_builds_ramdisk_and_test_config_sets_nodes(tmp_path):
    _, calls = _run_phases(tmp_path, ['stack extra', 'stack test-config'])
    ramdisk_dir = tmp_path / 'data' / 'ironic-fa' / 'ramdisk'
    assert ('sudo /opt/stack/ironic-fa-driver/tools/build-ramdisk.sh '
            '--output %s' % ramdisk_dir) in calls
    node_sets = [c for c in calls if 'baremetal node set' in c]
    assert len(node_sets) == 2
    for node, call in zip(('node-1', 'node-2'), node_sets):
        assert call.split()[6] == node
        assert '--deploy-interface fuel-agent' in call
        assert '--driver-info deploy_kernel=kernel-uuid' in call
        assert '--driver-info deploy_ramdisk=ramdisk-uuid' in call


def test_nothing_happens_when_service_disabled(tmp_path):
    cfg, calls = _run_phases(tmp_path, ['stack install', 'stack post-config'],
                             enabled='ironic')
    assert not [c for c in calls if not c.startswith(('define_plugin',
                                                      'plugin_requires'))]
    assert cfg.get('DEFAULT', 'enabled_deploy_interfaces') == 'direct'


@pytest.mark.parametrize('phase', ['stack install', 'stack post-config',
                                   'stack extra', 'unstack', 'clean'])
def test_plugin_is_valid_bash_in_every_phase(tmp_path, phase):
    _run_phases(tmp_path, [phase])
