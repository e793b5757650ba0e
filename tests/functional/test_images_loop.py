"""Images, tar trees and configdrives on real loop devices (root only).

Each test makes sparse backing files, attaches them with ``losetup -f
--show`` and detaches them in the end, whatever happened.
"""

import base64
import contextlib
import gzip
import hashlib
import json
import lzma
import os
import shutil
import subprocess

import pytest

from fa_agent import configdrive
from fa_agent import errors
from fa_agent import images
from fa_agent import runner as runner_mod
from fa_agent.images import policy
from fa_agent.images import writer
from fa_agent.scheme import model

MIB = 1024 * 1024

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason='needs root to attach loop devices'),
    pytest.mark.skipif(not os.path.exists('/dev/loop-control')
                       and not os.path.exists('/dev/loop0'),
                       reason='no loop device support in this kernel'),
]


def run(*command, text=True, **kwargs):
    return subprocess.run(command, check=True, capture_output=True,
                          text=text, **kwargs).stdout


@pytest.fixture
def loop(tmp_path):
    """``loop(size_mib, partitioned=False)`` -> /dev/loopN."""
    attached = []

    def attach(size_mib, partitioned=False):
        backing = tmp_path / ('backing%d' % len(attached))
        with open(backing, 'wb') as disk:
            disk.truncate(size_mib * MIB)
        options = ['-P'] if partitioned else []
        device = run('losetup', '-f', '--show', *options,
                     str(backing)).strip()
        attached.append(device)
        return device

    yield attach
    for device in attached:
        subprocess.run(['losetup', '-d', device], check=False)


@contextlib.contextmanager
def mounted(device, directory):
    os.makedirs(directory, exist_ok=True)
    run('mount', device, str(directory))
    try:
        yield directory
    finally:
        run('umount', str(directory))


def image(path, data, fmt='raw', checksum=None):
    path.write_bytes(data)
    return model.Image(url='file://%s' % path, format=fmt, target='t',
                       id=path.name, checksum=model.Checksum(
                           'sha256', checksum or
                           hashlib.sha256(data).hexdigest()))


def allowed(tmp_path):
    """The policy under which file:// URLs below tmp_path are read."""
    return policy.ImagePolicy(file_url_allowed_paths=(str(tmp_path),))


def read_device(device, size):
    with open(device, 'rb') as disk:
        return disk.read(size)


def disk_image(tmp_path, size_mib=40):
    """A raw disk image with a GPT and data in its partition."""
    path = tmp_path / 'disk.raw'
    with open(path, 'wb') as disk:
        disk.truncate(size_mib * MIB)
    run('sgdisk', '-n', '1:2048:+16M', '-t', '1:8300', str(path))
    with open(path, 'r+b') as disk:
        disk.seek(2 * MIB)
        disk.write(os.urandom(5 * MIB))
    return path.read_bytes()


@pytest.mark.parametrize('compression', ['none', 'gzip', 'xz', 'zstd'])
@pytest.mark.parametrize('zeroed', [False, True])
def test_raw_disk_image(tmp_path, loop, compression, zeroed):
    raw = disk_image(tmp_path)
    packed = {'none': lambda d: d, 'gzip': gzip.compress,
              'xz': lzma.compress,
              'zstd': lambda d: run('zstd', '-q', '-c', input=d,
                                    text=False)}[compression]
    device = loop(64)
    if not zeroed:
        # Junk where the image has zeros: it must be overwritten.
        with open(device, 'wb') as disk:
            disk.write(b'\xaa' * (64 * MIB))
    result = images.write_to_device(
        image(tmp_path / 'disk.img', packed(raw)), device, zeroed=zeroed,
        policy=allowed(tmp_path))
    assert read_device(device, len(raw)) == raw
    assert result['compression'] == compression
    assert (result['bytes_skipped'] > 0) == zeroed
    assert 'PTTYPE="gpt"' in run('blkid', '-p', device)


def sparse_image():
    """Data, then zero runs: 8 MiB crossing writer blocks, one 64 KiB
    segment between data, and a zero tail that is not a whole sector."""
    seg = writer.SEGMENT
    return (os.urandom(3 * MIB + 5 * seg) + bytes(8 * MIB)
            + os.urandom(seg) + bytes(seg) + os.urandom(2 * seg + 512)
            + bytes(3 * MIB) + os.urandom(1000) + bytes(1000))


@pytest.mark.parametrize('compression', ['none', 'gzip', 'zstd'])
def test_zero_runs_over_old_data_read_back_zero(tmp_path, loop,
                                                compression):
    """The production call (no ``zeroed`` claim) on a device that
    offloads write-zeroes: zero runs go by BLKZEROOUT, and where the
    device held other data it reads back zeros."""
    raw = sparse_image()
    packed = {'none': lambda d: d, 'gzip': gzip.compress,
              'zstd': lambda d: run('zstd', '-q', '-c', input=d,
                                    text=False)}[compression]
    device = loop(32)
    with open(device, 'wb') as disk:
        disk.write(b'\xaa' * (32 * MIB))
    fd = os.open(device, os.O_RDONLY)
    try:
        assert writer.zeroes_offloaded(fd)
    finally:
        os.close(fd)
    result = images.write_to_device(
        image(tmp_path / 'disk.img', packed(raw)), device,
        policy=allowed(tmp_path))
    # Read past the page cache: BLKZEROOUT works below it.
    run('blockdev', '--flushbufs', device)
    assert read_device(device, len(raw)) == raw
    assert read_device(device, 32 * MIB)[len(raw):] == \
        b'\xaa' * (32 * MIB - len(raw))
    assert result['zero_runs'] == 'zeroout'
    assert result['bytes_skipped'] == 0
    assert result['bytes_zeroed'] >= 11 * MIB
    assert result['bytes_written'] + result['bytes_zeroed'] == len(raw)


def test_zeroes_not_offloaded_are_written(tmp_path, loop, monkeypatch):
    raw = sparse_image()
    device = loop(32)
    with open(device, 'wb') as disk:
        disk.write(b'\xaa' * (32 * MIB))
    monkeypatch.setattr(writer, 'zeroes_offloaded', lambda fd: False)
    result = images.write_to_device(
        image(tmp_path / 'disk.img', gzip.compress(raw)), device,
        policy=allowed(tmp_path))
    assert read_device(device, len(raw)) == raw
    assert result['zero_runs'] == 'write'
    assert result['bytes_written'] == len(raw)


def test_partition_takes_its_disks_write_zeroes(tmp_path, loop):
    device = loop(64, partitioned=True)
    run('sgdisk', '-n', '1:2048:+16M', device)
    run('partprobe', device)
    run('udevadm', 'settle')
    fd = os.open(device + 'p1', os.O_RDONLY)
    try:
        assert writer.zeroes_offloaded(fd)
    finally:
        os.close(fd)


def test_checksum_mismatch_is_refused(tmp_path, loop):
    raw = disk_image(tmp_path)
    device = loop(64)
    bad = image(tmp_path / 'disk.img', gzip.compress(raw),
                checksum='0' * 64)
    with pytest.raises(errors.ChecksumMismatch):
        images.write_to_device(bad, device, policy=allowed(tmp_path))
    # Neither partition table survives: the device cannot boot it.
    assert read_device(device, MIB) == bytes(MIB)
    with open(device, 'rb') as disk:
        disk.seek(-MIB, os.SEEK_END)
        assert disk.read() == bytes(MIB)


def test_image_larger_than_device_does_not_fit(tmp_path, loop):
    device = loop(8)
    big = image(tmp_path / 'big.img', gzip.compress(os.urandom(9 * MIB)))
    with pytest.raises(errors.DoesNotFit, match='larger than'):
        images.write_to_device(big, device, policy=allowed(tmp_path))


def test_qcow2_image(tmp_path, loop):
    raw = disk_image(tmp_path)
    run('qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
        str(tmp_path / 'disk.raw'), str(tmp_path / 'disk.qcow2'))
    qcow2 = (tmp_path / 'disk.qcow2').read_bytes()
    device = loop(64)
    with open(device, 'wb') as disk:
        disk.write(b'\xaa' * (64 * MIB))
    # Compressed, so it goes through a temporary file.
    result = images.write_to_device(
        image(tmp_path / 'disk.qcow2.gz', gzip.compress(qcow2),
              fmt='qcow2'), device, policy=allowed(tmp_path))
    assert read_device(device, len(raw)) == raw
    assert result['bytes_out'] == len(raw)


def test_ext4_image_is_grown(tmp_path, loop):
    content = tmp_path / 'content'
    content.mkdir()
    (content / 'marker').write_text('kept')
    fs = tmp_path / 'fs.ext4'
    with open(fs, 'wb') as out:
        out.truncate(32 * MIB)
    run('mkfs.ext4', '-q', '-F', '-d', str(content), '-L', 'root', str(fs))
    device = loop(96)
    result = images.write_to_device(
        image(tmp_path / 'fs.ext4.gz', gzip.compress(fs.read_bytes()),
              fmt='fs_image'), device, zeroed=True,
        policy=allowed(tmp_path))
    assert result['fstype'] == 'ext4' and result['grown'] is True
    header = dict(line.split(':', 1) for line in
                  run('dumpe2fs', '-h', device).splitlines() if ':' in line)
    size = int(header['Block count']) * int(header['Block size'])
    assert size == 96 * MIB
    assert 'LABEL="root"' in run('blkid', '-p', device)
    assert run('debugfs', '-R', 'cat /marker', device) == 'kept'


def test_xfs_image_is_grown(tmp_path, loop):
    fs = tmp_path / 'fs.xfs'
    with open(fs, 'wb') as out:
        out.truncate(320 * MIB)
    run('mkfs.xfs', '-q', '-f', str(fs))
    device = loop(512)
    result = images.write_to_device(
        image(tmp_path / 'fs.xfs.zst',
              subprocess.run(['zstd', '-q', '-c', str(fs)],
                             capture_output=True, check=True).stdout,
              fmt='fs_image'), device, zeroed=True,
        policy=allowed(tmp_path))
    assert result['fstype'] == 'xfs' and result['grown'] is True
    with mounted(device, tmp_path / 'mnt') as directory:
        info = run('xfs_info', str(directory))
    data = info[info.index('data '):].split('\n')[0]
    fields = dict(item.rstrip(',').split('=') for item in data.split()
                  if '=' in item)
    assert int(fields['bsize']) * int(fields['blocks']) == 512 * MIB


def test_tarball_keeps_modes_owners_xattrs_acls(tmp_path, loop):
    if not shutil.which('setfacl'):
        pytest.skip('setfacl (package acl) is not installed')
    tree = tmp_path / 'tree'
    (tree / 'usr' / 'bin').mkdir(parents=True)
    tool = tree / 'usr' / 'bin' / 'ping'
    tool.write_bytes(b'\x7fELF fake')
    os.chown(tool, 0, 0)
    os.chmod(tool, 0o4755)
    secret = tree / 'secret'
    secret.write_text('s')
    os.chown(secret, 1234, 5678)
    os.chmod(secret, 0o640)
    os.setxattr(tool, 'user.origin', b'test')
    os.setxattr(tool, 'trusted.marker', b'root-only')
    run('setfacl', '-m', 'u:4321:r', str(secret))
    os.symlink('usr/bin', tree / 'bin')
    archive = run('tar', '--xattrs', '--xattrs-include=*', '--acls',
                  '--numeric-owner', '-C', str(tree), '-cf', '-', '.',
                  text=False)
    device = loop(64)
    run('mkfs.ext4', '-q', '-F', device)
    with mounted(device, tmp_path / 'mnt') as root:
        result = images.extract_tar(
            image(tmp_path / 'root.tar.xz', lzma.compress(archive),
                  fmt='tar'), str(root), policy=allowed(tmp_path))
        assert result['compression'] == 'xz'
        extracted = root / 'secret'
        state = extracted.stat()
        assert (state.st_uid, state.st_gid) == (1234, 5678)
        assert state.st_mode & 0o7777 == 0o640
        assert 'user:4321:r--' in run('getfacl', '-n', str(extracted))
        ping = root / 'usr' / 'bin' / 'ping'
        assert ping.stat().st_mode & 0o7777 == 0o4755
        assert os.getxattr(ping, 'user.origin') == b'test'
        # Not restored without --xattrs-include='*'.
        assert os.getxattr(ping, 'trusted.marker') == b'root-only'
        assert os.readlink(root / 'bin') == 'usr/bin'


def config_iso(tmp_path, meta):
    tree = tmp_path / 'cd' / 'openstack' / 'latest'
    tree.mkdir(parents=True)
    (tree / 'meta_data.json').write_text(json.dumps(meta))
    iso = tmp_path / 'cd.iso'
    run('genisoimage', '-quiet', '-r', '-J', '-V', 'config-2', '-o',
        str(iso), str(tmp_path / 'cd'))
    return iso.read_bytes()


def partitioned(loop):
    device = loop(64, partitioned=True)
    run('sgdisk', '-n', '1:2048:+16M', '-n', '2:0:+1M', device)
    run('partprobe', device)
    run('udevadm', 'settle')
    for number in (1, 2):
        assert os.path.exists('%sp%d' % (device, number))
    # An old file system where the configdrive goes: it must not confuse
    # blkid afterwards.
    run('mkfs.ext4', '-q', '-F', device + 'p1')
    return device


@pytest.mark.parametrize('form', ['data', 'built'])
def test_configdrive_partition_is_config_2(tmp_path, loop, form):
    device = partitioned(loop)
    meta = {'uuid': 'node-%s' % form, 'hostname': 'n1'}
    if form == 'data':
        iso = config_iso(tmp_path, meta)
        spec = {'data': base64.b64encode(gzip.compress(iso)).decode()}
    else:
        spec = {'meta_data': meta, 'user_data': '#cloud-config\n'}
    partition = device + 'p1'
    configdrive.write_configdrive(spec, partition, runner_mod.Runner())
    probe = run('blkid', '-p', '-o', 'export', partition)
    assert 'LABEL=config-2' in probe.splitlines()
    assert 'TYPE=iso9660' in probe.splitlines()
    # Read in user space: this machine's kernel has no iso9660 driver.
    written = run('isoinfo', '-R', '-i', partition, '-x',
                  '/openstack/latest/meta_data.json')
    assert json.loads(written) == meta


def test_configdrive_larger_than_partition_is_refused(tmp_path, loop):
    device = partitioned(loop)
    before = read_device(device + 'p2', MIB)
    iso = config_iso(tmp_path, {'uuid': 'x', 'pad': 'y' * (2 * MIB)})
    with pytest.raises(errors.DoesNotFit, match='larger than'):
        configdrive.write_configdrive(
            {'data': base64.b64encode(gzip.compress(iso)).decode()},
            device + 'p2', runner_mod.Runner())
    assert read_device(device + 'p2', MIB) == before
