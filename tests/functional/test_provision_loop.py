"""The provision command on real loop devices (root only).

RAID, LVM and GRUB need md and device-mapper, which this machine's
kernel lacks: the unit tests record those commands and the ramdisk's
QEMU tests run them. vfat cannot be mounted here either (no module), so
ESPs are made but not mounted.
"""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from fa_agent import input_format
from fa_agent.cmd import provision

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PROVISION = os.path.join(ROOT, '.venv', 'bin', 'provision')
MiB = 1024 * 1024
STEPS_WITHOUT_GRUB = 'discover,verify,wipe,partition,filesystems,images,' \
                     'configdrive,target,cleanup'

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason='needs root to attach loop devices'),
    pytest.mark.skipif(shutil.which('losetup') is None,
                       reason='losetup is not installed'),
]


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def loops(tmp_path):
    """attach(size_mib) -> /dev/loopN on a sparse file; all detached at
    the end whatever happens."""
    attached = []

    def attach(size_mib):
        backing = tmp_path / ('disk%d.img' % len(attached))
        with open(backing, 'wb') as f:
            f.truncate(size_mib * MiB)
        try:
            device = sh('losetup', '-f', '--show', str(backing)).strip()
        except subprocess.CalledProcessError as exc:
            pytest.skip('no free loop device: %s' % exc.stderr.strip())
        attached.append(device)
        return device
    try:
        yield attach
    finally:
        for device in attached:
            subprocess.run(['umount', '-R', str(tmp_path / 'target')],
                           capture_output=True)
            subprocess.run(['losetup', '-d', device], capture_output=True)


def sha256(device):
    digest = hashlib.sha256()
    with open(device, 'rb') as f:
        for block in iter(lambda: f.read(4 * MiB), b''):
            digest.update(block)
    return digest.hexdigest()


def blkid(device):
    out = subprocess.run(['blkid', '-p', '-o', 'export', device],
                         capture_output=True, text=True).stdout
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def write_input(tmp_path, storage, **extra):
    document = input_format.build(dict({'storage': storage}, **extra),
                                  node_uuid='node-1')
    path = tmp_path / 'provision.json'
    path.write_text(json.dumps(document))
    return path


def args(tmp_path, steps=STEPS_WITHOUT_GRUB):
    return ['--input-data-file', str(tmp_path / 'provision.json'),
            '--status-file', str(tmp_path / 'status.json'),
            '--log-file', str(tmp_path / 'provision.log'),
            '--target-dir', str(tmp_path / 'target'), '--steps', steps,
            '--file-url-allowed-paths', str(tmp_path)]


def status(tmp_path):
    return json.loads((tmp_path / 'status.json').read_text())


def read_file_on(device, fstype, relative, tmp_path):
    mnt = tmp_path / 'check'
    mnt.mkdir(exist_ok=True)
    sh('mount', '-t', fstype, '-o', 'ro', device, str(mnt))
    try:
        return (mnt / relative).read_text()
    finally:
        sh('umount', str(mnt))


def gpt_storage(disk):
    return [
        {'type': 'disk', 'id': 'd0', 'match': {'name': disk}},
        {'type': 'partition', 'id': 'esp', 'device': 'd0',
         'size': '33 MiB', 'flags': ['esp']},
        {'type': 'partition', 'id': 'root', 'device': 'd0',
         'size': '200 MiB'},
        {'type': 'partition', 'id': 'swap', 'device': 'd0',
         'size': '16 MiB', 'flags': ['swap']},
        {'type': 'partition', 'id': 'data', 'device': 'd0',
         'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-esp', 'device': 'esp',
         'fstype': 'vfat', 'label': 'ESP', 'fstab': False},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/', 'label': 'root'},
        {'type': 'filesystem', 'id': 'fs-swap', 'device': 'swap',
         'fstype': 'swap', 'label': 'swap'},
        {'type': 'filesystem', 'id': 'fs-data', 'device': 'data',
         'fstype': 'xfs', 'mount_point': '/srv', 'label': 'data',
         'mount_options': 'noatime'},
    ]


def test_gpt_layout_as_a_subprocess(tmp_path, loops):
    disk, bystander = loops(1024), loops(64)
    with open(bystander, 'r+b') as f:
        f.write(os.urandom(MiB))
    before = sha256(bystander)
    write_input(tmp_path, gpt_storage(disk))
    result = subprocess.run([PROVISION] + args(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    state = status(tmp_path)
    assert state['state'] == 'succeeded'
    found = {n: blkid('%sp%d' % (disk, n)) for n in (1, 2, 3, 4)}
    assert [(found[n]['TYPE'], found[n].get('LABEL')) for n in found] == [
        ('vfat', 'ESP'), ('ext4', 'root'), ('swap', 'swap'), ('xfs', 'data')]
    sizes = sh('lsblk', '-b', '-n', '-o', 'SIZE', disk).split()
    assert [int(s) // MiB for s in sizes] == [1024, 33, 200, 16, 773]
    fstab = read_file_on(disk + 'p2', 'ext4', 'etc/fstab', tmp_path)
    assert 'UUID=%s / ext4 defaults 0 1' % found[2]['UUID'] in fstab
    assert 'UUID=%s /srv xfs noatime 0 2' % found[4]['UUID'] in fstab
    assert 'UUID=%s none swap sw 0 0' % found[3]['UUID'] in fstab
    assert state['result']['devices']['fs-data']['uuid'] == found[4]['UUID']
    assert sha256(bystander) == before
    assert not os.path.ismount(tmp_path / 'target')


def test_msdos_layout(tmp_path, loops):
    disk = loops(512)
    write_input(tmp_path, [
        {'type': 'disk', 'id': 'd0', 'match': {'name': disk},
         'table': 'msdos'},
        {'type': 'partition', 'id': 'boot', 'device': 'd0',
         'size': '64 MiB', 'flags': ['boot']},
        {'type': 'partition', 'id': 'swap', 'device': 'd0',
         'size': '32 MiB', 'flags': ['swap']},
        {'type': 'partition', 'id': 'root', 'device': 'd0',
         'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-boot', 'device': 'boot',
         'fstype': 'vfat', 'label': 'BOOT'},
        {'type': 'filesystem', 'id': 'fs-swap', 'device': 'swap',
         'fstype': 'swap'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/'},
    ])
    assert provision.main(args(tmp_path)) == 0
    assert blkid(disk)['PTTYPE'] == 'dos'
    table = sh('parted', '-s', '-m', disk, 'unit', 'MiB', 'print')
    assert '1:1.00MiB:65.0MiB:64.0MiB:fat16::boot;' in table
    assert '2:65.0MiB:97.0MiB:32.0MiB:linux-swap(v1)::swap;' in table
    assert '3:97.0MiB:512MiB:415MiB:ext4::;' in table
    assert [blkid(disk + 'p%d' % n)['TYPE'] for n in (1, 2, 3)] == [
        'vfat', 'swap', 'ext4']


def _keep_storage(disk, keep, data_size='300 MiB'):
    kept = {'keep_data': True} if keep else {}
    return [
        {'type': 'disk', 'id': 'd0', 'match': {'name': disk}},
        {'type': 'partition', 'id': 'root', 'device': 'd0',
         'size': '100 MiB'},
        dict({'type': 'partition', 'id': 'data', 'device': 'd0',
              'size': data_size}, **kept),
        {'type': 'partition', 'id': 'scratch', 'device': 'd0',
         'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/'},
        dict({'type': 'filesystem', 'id': 'fs-data', 'device': 'data',
              'fstype': 'ext4', 'mount_point': '/data', 'label': 'data'},
             **kept),
        {'type': 'filesystem', 'id': 'fs-scratch', 'device': 'scratch',
         'fstype': 'xfs', 'mount_point': '/scratch'},
    ]


def test_keep_data_rerun_keeps_the_marker(tmp_path, loops):
    disk = loops(1024)
    write_input(tmp_path, _keep_storage(disk, keep=False))
    assert provision.main(args(tmp_path)) == 0
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    sh('mount', disk + 'p2', str(mnt))
    (mnt / 'marker').write_text('precious')
    sh('umount', str(mnt))
    old = {n: blkid('%sp%d' % (disk, n))['UUID'] for n in (1, 2, 3)}

    # A kept partition that does not match the plan: refused, untouched.
    write_input(tmp_path, _keep_storage(disk, keep=True, data_size='200 MiB'))
    before = sha256(disk)
    assert provision.main(args(tmp_path)) == 17
    assert status(tmp_path)['error']['class'] == 'keep_data_mismatch'
    assert sha256(disk) == before

    write_input(tmp_path, _keep_storage(disk, keep=True))
    assert provision.main(args(tmp_path)) == 0
    new = {n: blkid('%sp%d' % (disk, n))['UUID'] for n in (1, 2, 3)}
    assert new[2] == old[2]
    assert new[1] != old[1] and new[3] != old[3]
    assert read_file_on(disk + 'p2', 'ext4', 'marker', tmp_path) == \
        'precious'
    fstab = read_file_on(disk + 'p1', 'ext4', 'etc/fstab', tmp_path)
    assert 'UUID=%s /data ext4' % old[2] in fstab


def test_raw_image_then_configdrive_partition(tmp_path, loops):
    pytest.importorskip('fa_agent.images')
    pytest.importorskip('fa_agent.configdrive')
    if not (shutil.which('genisoimage') or shutil.which('mkisofs')):
        pytest.skip('genisoimage is not installed')
    # A small whole-disk image: gpt with one ext4 partition, gzipped.
    raw = tmp_path / 'disk.raw'
    with open(raw, 'wb') as f:
        f.truncate(64 * MiB)
    sh('sgdisk', '--new=1:1M:+62M', str(raw))
    sh('mkfs.ext4', '-q', '-F', '-L', 'imgroot', '-E',
       'offset=%d' % MiB, str(raw), '62M')
    with open(raw, 'rb') as src, gzip.open(tmp_path / 'disk.raw.gz',
                                           'wb') as dst:
        shutil.copyfileobj(src, dst)
    disk = loops(256)
    document = input_format.build(
        {'storage': [{'type': 'disk', 'id': 'd0', 'match': {'name': disk}}],
         'images': [{'url': 'file://%s/disk.raw.gz' % tmp_path,
                     'format': 'raw', 'target': 'd0'}],
         'configdrive': {'device': 'd0', 'size': '16 MiB'}},
        configdrive={'meta_data': {'uuid': 'node-1', 'hostname': 'n1'}})
    (tmp_path / 'provision.json').write_text(json.dumps(document))
    code = provision.main(args(tmp_path))
    assert code == 0, (tmp_path / 'provision.log').read_text()
    assert blkid(disk + 'p1')['LABEL'] == 'imgroot'
    config = blkid(disk + 'p2')
    assert config['LABEL'] == 'config-2', config
    assert config['TYPE'] == 'iso9660'
    start = int(sh('cat', '/sys/class/block/%sp2/start'
                   % os.path.basename(disk)))
    assert start * 512 == (256 - 1 - 16) * MiB


if __name__ == '__main__':
    sys.exit(pytest.main([__file__]))


def test_erase_request_wipes_only_the_named_disk(tmp_path, loops):
    """Ironic's cleaning: an erase request leaves no signature on the disk
    it names (table, file systems) and the other disk byte-identical."""
    disk, bystander = loops(1024), loops(64)
    write_input(tmp_path, gpt_storage(disk))
    assert provision.main(args(tmp_path)) == 0
    assert blkid(disk).get('PTTYPE') == 'gpt'
    sh('mkfs.ext4', '-q', '-L', 'other', bystander)
    before = sha256(bystander)
    document = input_format.build_erase(
        [{'type': 'disk', 'id': 'd0', 'match': {'name': disk}}])
    (tmp_path / 'provision.json').write_text(json.dumps(document))
    result = subprocess.run([PROVISION] + args(tmp_path, steps='wipe'),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert status(tmp_path)['steps_done'] == ['discover', 'wipe', 'cleanup']
    assert blkid(disk) == {}
    assert sh('lsblk', '-n', '-o', 'NAME', disk).split() == [
        os.path.basename(disk)]
    assert sha256(bystander) == before
