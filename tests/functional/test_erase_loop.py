"""Cleaning's erase requests through the real ``provision`` on real loop
devices (root only): the overwrite really erases, a disk not named is
untouched, a disk whose identity does not match is refused before
anything is written, a mounted disk (the ramdisk's own) is skipped.

Loop devices have no serial or wwn; their udev by-path is absent too,
so these requests name them by kernel name, which is what the driver
falls back to for such disks. Identity by serial is shown by a request
whose serial no loop device has.
"""

import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

from fa_agent import input_format

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PROVISION = os.path.join(ROOT, '.venv', 'bin', 'provision')
MiB = 1024 * 1024

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
        subprocess.run(['umount', str(tmp_path / 'mnt')], capture_output=True)
        for device in attached:
            subprocess.run(['losetup', '-d', device], capture_output=True)


def sha256(device):
    digest = hashlib.sha256()
    with open(device, 'rb') as f:
        for block in iter(lambda: f.read(4 * MiB), b''):
            digest.update(block)
    return digest.hexdigest()


def fill(device, size_mib):
    """A GPT, an ext4 file system and random data all over the disk."""
    with open(device, 'r+b') as f:
        for _ in range(size_mib):
            f.write(os.urandom(MiB))
    sh('sgdisk', '--new=1:2048:0', device)
    sh('partprobe', device)
    sh('udevadm', 'settle')
    sh('mkfs.ext4', '-q', '-L', 'tenant', device + 'p1')


def erase(tmp_path, disks, mode='full', **options):
    document = input_format.build_erase(
        disks, options=input_format.EraseOptions(mode=mode, **options))
    (tmp_path / 'provision.json').write_text(json.dumps(document))
    started = time.monotonic()
    result = subprocess.run(
        [PROVISION, '--input-data-file', str(tmp_path / 'provision.json'),
         '--status-file', str(tmp_path / 'status.json'),
         '--log-file', str(tmp_path / 'provision.log')],
        capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    status = json.loads((tmp_path / 'status.json').read_text())
    return result, status, seconds


def all_zero(device):
    with open(device, 'rb') as f:
        return all(not any(block)
                   for block in iter(lambda: f.read(4 * MiB), b''))


def test_full_erase_overwrites_every_byte_and_spares_the_other_disk(
        tmp_path, loops):
    disk, bystander = loops(64), loops(16)
    fill(disk, 64)
    assert sh('blkid', '-p', '-o', 'value', '-s', 'TYPE',
              disk + 'p1').strip() == 'ext4'
    sh('mkfs.ext4', '-q', '-L', 'other', bystander)
    before = sha256(bystander)
    result, status, _ = erase(
        tmp_path, [{'type': 'disk', 'id': 'd0', 'match': {'name': disk}}])
    assert result.returncode == 0, result.stderr
    assert status['steps_done'] == ['discover', 'wipe', 'erase', 'cleanup']
    d0 = status['result']['devices']['d0']
    # A loop device has no ATA security feature set: overwrite.
    assert d0['erased_by'] == 'overwrite', d0
    assert d0['erase_detail']['random_passes'] == 1
    assert d0['erase_detail']['zeros'] is True
    # Read back: no signature, no partition, every byte zero.
    assert subprocess.run(['blkid', '-p', disk],
                          capture_output=True).returncode == 2
    assert sh('lsblk', '-n', '-o', 'NAME', disk).split() == [
        os.path.basename(disk)]
    assert all_zero(disk)
    assert sha256(bystander) == before


def test_random_pass_without_zeros_leaves_no_old_byte(tmp_path, loops):
    disk = loops(16)
    pattern = b'TENANT-DATA!' * (MiB // 12) + b'\0' * (MiB % 12)
    with open(disk, 'r+b') as f:
        for _ in range(16):
            f.write(pattern)
    result, status, _ = erase(
        tmp_path, [{'type': 'disk', 'id': 'd0', 'match': {'name': disk}}],
        zeroize=False)
    assert result.returncode == 0, result.stderr
    with open(disk, 'rb') as f:
        data = f.read()
    assert b'TENANT-DATA!' not in data
    assert not all_zero(disk)  # random, not zeros


def test_identity_mismatch_is_refused_before_anything_is_written(
        tmp_path, loops):
    disk, other = loops(16), loops(16)
    fill(disk, 16)
    sh('mkfs.ext4', '-q', other)
    before = sha256(disk), sha256(other)
    # The second disk's identity is wrong: neither disk is touched, not
    # even the first one, whose identity is right.
    result, status, _ = erase(tmp_path, [
        {'type': 'disk', 'id': 'd0', 'match': {'name': disk}},
        {'type': 'disk', 'id': 'd1',
         'match': {'name': other, 'serial': 'NOT-THIS-DISK'}}])
    assert result.returncode != 0
    assert status['error']['class'] == 'disk_not_found'
    assert 'NOT-THIS-DISK' in status['error']['message']
    assert (sha256(disk), sha256(other)) == before


@pytest.mark.parametrize('mode', ['full', 'metadata'])
def test_a_mounted_disk_is_skipped_and_reported(tmp_path, loops, mode):
    disk = loops(16)
    sh('mkfs.ext4', '-q', disk)
    (tmp_path / 'mnt').mkdir()
    sh('mount', disk, str(tmp_path / 'mnt'))
    (tmp_path / 'mnt' / 'kept').write_text('still here')
    sh('sync')
    result, status, _ = erase(
        tmp_path, [{'type': 'disk', 'id': 'd0', 'match': {'name': disk}}],
        mode=mode)
    assert result.returncode == 0, result.stderr
    d0 = status['result']['devices']['d0']
    assert 'in use by the ramdisk' in d0['skipped']
    assert 'erased_by' not in d0
    # (ext4 updates its own superblock while mounted: compared by
    # content, not by checksum.)
    assert (tmp_path / 'mnt' / 'kept').read_text() == 'still here'
    sh('umount', str(tmp_path / 'mnt'))
    assert sh('blkid', '-p', '-o', 'value', '-s', 'TYPE',
              disk).strip() == 'ext4'


def test_express_erase_of_a_disk_without_nvme_format_wipes_metadata(
        tmp_path, loops):
    disk = loops(16)
    fill(disk, 16)
    result, status, _ = erase(
        tmp_path, [{'type': 'disk', 'id': 'd0', 'match': {'name': disk}}],
        mode='express')
    assert result.returncode == 0, result.stderr
    assert status['result']['devices']['d0']['erased_by'] == 'metadata'
    assert subprocess.run(['blkid', '-p', disk],
                          capture_output=True).returncode == 2
    assert not all_zero(disk)  # metadata only: the random data stays


def test_overwrite_of_one_gib_with_the_defaults(tmp_path, loops):
    """The lab's question: how long the default overwrite (1 random pass
    + zeros) of a small disk takes. Printed, bounded loosely."""
    disk = loops(1024)
    result, status, seconds = erase(
        tmp_path, [{'type': 'disk', 'id': 'd0', 'match': {'name': disk}}])
    assert result.returncode == 0, result.stderr
    d0 = status['result']['devices']['d0']
    print('1 GiB overwrite: %.1f s in the step (%.1f s for the run), '
          'zeros offloaded: %s' % (d0['erase_seconds'], seconds,
                                   d0['erase_detail']['zeros_offloaded']))
    assert seconds < 300
