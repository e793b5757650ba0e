"""What the ramdisk runs between systemd's start and fa-heartbeat's
first heartbeat (tools/bench_ramdisk_boot.py measures it): the recipe's
unit changes on a tree shaped like the base image, and the overlay's
units read as systemd reads them (configparser: same sections, keys)."""

import configparser
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
spec = importlib.util.spec_from_file_location(
    'ramdisk_build_boot', os.path.join(ROOT, 'agent', 'ramdisk', 'build.py'))
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
UNIT_DIR = os.path.join(ROOT, 'agent', 'ramdisk', 'overlay', 'etc',
                        'systemd', 'system')


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(os.path.join(UNIT_DIR, name))
    return parser


def test_boot_units_takes_resolved_out_and_masks(tmp_path):
    systemd = tmp_path / 'etc' / 'systemd' / 'system'
    for wants in ('sysinit.target.wants', 'multi-user.target.wants'):
        (systemd / wants).mkdir(parents=True)
        os.symlink('/lib/systemd/system/' + build.RESOLVED,
                   systemd / wants / build.RESOLVED)
    # a unit the base enabled by a link of the same name
    os.symlink('/lib/systemd/system/lvm2-monitor.service',
               systemd / 'lvm2-monitor.service')
    build.boot_units(str(tmp_path))
    assert not list(systemd.glob('*.wants/' + build.RESOLVED))
    for name in build.MASKED_UNITS:
        assert os.readlink(systemd / name) == '/dev/null'


def test_masked_units_leave_what_the_agent_runs():
    # kexec itself (the kexec step), mdadm and LVM stay; only boot-time
    # services of those packages go.
    for name in build.MASKED_UNITS:
        assert name.endswith('.service')
        assert 'systemd-kexec' not in name and 'mdadm' not in name
    assert set(build.MASKED_UNITS).isdisjoint(build.UNITS)


def test_resolved_is_started_outside_the_boot_transaction():
    resolved = unit('fa-resolved.service')
    assert resolved['Service']['ExecStart'].split() == [
        '/bin/systemctl', 'start', '--no-block', build.RESOLVED]
    assert 'fa-resolved.service' in build.UNITS
    # resolved is Before=network.target: a start job queued before
    # network.target is reached would hold up sshd (After=network.target)
    assert 'network.target' in resolved['Unit']['After'].split()


def test_host_keys_are_made_beside_the_early_units():
    keys = unit('fa-ssh-keys.service')
    assert keys['Unit']['DefaultDependencies'] == 'no'
    assert 'ssh.service' in keys['Unit']['Before'].split()
    assert keys['Install']['RequiredBy'] == 'ssh.service'
    # fa-heartbeat still reports only once the keys and sshd are there
    beat = unit('fa-heartbeat.service')
    after = beat['Unit']['After'].split()
    assert {'fa-ssh-keys.service', 'ssh.service',
            'network-online.target'} <= set(after)
