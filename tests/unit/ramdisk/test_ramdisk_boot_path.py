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
    # a generator masked already (a rebuild over the same tree)
    generators = tmp_path / 'etc' / 'systemd' / 'system-generators'
    generators.mkdir()
    os.symlink('/dev/null', generators / 'systemd-sysv-generator')
    build.boot_units(str(tmp_path))
    assert not list(systemd.glob('*.wants/' + build.RESOLVED))
    for name in build.MASKED_UNITS:
        assert os.readlink(systemd / name) == '/dev/null'
    for name in build.MASKED_GENERATORS:
        assert os.readlink(generators / name) == '/dev/null'


def test_masked_units_leave_what_the_agent_runs():
    # kexec itself (the kexec step), mdadm and LVM stay; only boot-time
    # services of those packages go.
    for name in build.MASKED_UNITS:
        assert name.endswith(('.service', '.mount', '.automount'))
        assert 'systemd-kexec' not in name and 'mdadm' not in name
    assert set(build.MASKED_UNITS).isdisjoint(build.UNITS)
    # what the boot's path to the heartbeat and the agent need stays:
    # udev (the NIC and disk modules), the journal, tmpfiles, the network
    for name in ('systemd-udevd.service', 'systemd-udev-trigger.service',
                 'systemd-journald.service', 'systemd-tmpfiles-setup.service',
                 'systemd-tmpfiles-setup-dev.service',
                 'systemd-networkd.service', 'systemd-logind.service'):
        assert name not in build.MASKED_UNITS
    # the serial console's getty comes from a generator
    assert 'systemd-getty-generator' not in build.MASKED_GENERATORS
    assert all(name.endswith('-generator')
               for name in build.MASKED_GENERATORS)


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
    # fa-heartbeat still reports only once the keys and sshd are there,
    # but starts while DHCP and sshd start: it waits for the address and
    # for sshd itself (fa_agent.cmd.heartbeat._wait_for_address and
    # _wait_for_sshd)
    beat = unit('fa-heartbeat.service')
    assert beat['Unit']['After'].split() == ['fa-ssh-keys.service']
    assert beat['Unit']['Wants'].split() == ['ssh.service']
    assert '--wait-for-sshd' in beat['Service']['ExecStart'].split()


def test_the_journal_stays_in_memory():
    conf = configparser.ConfigParser()
    conf.read(os.path.join(ROOT, 'agent', 'ramdisk', 'overlay', 'etc',
                           'systemd', 'journald.conf.d', 'fa-ramdisk.conf'))
    assert conf['Journal']['Storage'] == 'volatile'
    assert 'systemd-journal-flush.service' in build.MASKED_UNITS


def test_modules_are_compressed_one_by_one_for_kmod(tmp_path, monkeypatch):
    # a module tree as the base has it: prune_modules compresses each
    # kept module with the configured compressor and runs depmod
    kernel = tmp_path / 'lib' / 'modules' / '6.1.0-test-amd64'
    (kernel / 'kernel' / 'drivers' / 'gpu').mkdir(parents=True)
    (kernel / 'kernel' / 'fs').mkdir(parents=True)
    (kernel / 'kernel' / 'drivers' / 'gpu' / 'drm.ko').write_bytes(b'g' * 64)
    (kernel / 'kernel' / 'fs' / 'ext4.ko').write_bytes(b'e' * 4096)
    (kernel / 'modules.dep').write_text(
        'kernel/drivers/gpu/drm.ko:\nkernel/fs/ext4.ko:\n')
    ran = []
    monkeypatch.setattr(build, 'run', lambda *cmd, **kw: ran.append(cmd))
    assert build.prune_modules(str(tmp_path)) == '6.1.0-test-amd64'
    assert not (kernel / 'kernel' / 'drivers' / 'gpu' / 'drm.ko').exists()
    assert not (kernel / 'kernel' / 'fs' / 'ext4.ko').exists()
    packed = kernel / 'kernel' / 'fs' / 'ext4.ko.xz'
    import lzma
    assert lzma.decompress(packed.read_bytes()) == b'e' * 4096
    assert ran == [('depmod', '-b', str(tmp_path), '6.1.0-test-amd64')]
