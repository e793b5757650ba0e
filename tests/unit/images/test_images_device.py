"""write_to_device and extract_tar end to end on regular files: real
files, real decompressors; the block-device cases are in
tests/functional/test_images_loop.py."""

import gzip
import hashlib
import io
import lzma
import os
import tarfile

import pytest

from fa_agent import errors
from fa_agent import images
from fa_agent import runner as runner_mod
from fa_agent.images import grow
from fa_agent.images import policy
from fa_agent.scheme import model

MIB = 1024 * 1024


def image_for(path, data, fmt='raw', compression='auto', digest=True,
              algorithm='sha256'):
    path.write_bytes(data)
    checksum = (model.Checksum(algorithm,
                               hashlib.new(algorithm, data).hexdigest())
                if digest else None)
    return model.Image(url='file://%s' % path, format=fmt, target='disk',
                       id='root', compression=compression, checksum=checksum)


def allowed(tmp_path):
    """The policy under which file:// URLs below tmp_path are read."""
    return policy.ImagePolicy(file_url_allowed_paths=(str(tmp_path),))


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / 'disk'
    path.write_bytes(b'\xaa' * (8 * MIB))
    return path


def raw_image():
    return os.urandom(3 * MIB + 17) + bytes(2 * MIB) + b'end'


@pytest.mark.parametrize('compress,name', [
    (lambda d: d, 'none'), (gzip.compress, 'gzip'),
    (lzma.compress, 'xz')])
def test_raw_image_arrives_intact(tmp_path, disk, compress, name):
    data = raw_image()
    image = image_for(tmp_path / 'image', compress(data))
    result = images.write_to_device(image, str(disk),
                                    policy=allowed(tmp_path))
    assert disk.read_bytes()[:len(data)] == data
    assert result['compression'] == name
    assert result['bytes_out'] == len(data)
    assert result['checksum'] == image.checksum.value
    assert result['format'] == 'raw'


def test_checksum_mismatch_is_refused_and_the_head_erased(tmp_path, disk):
    data = raw_image()
    good = image_for(tmp_path / 'image', gzip.compress(data))
    bad = model.Image(url=good.url, format='raw', target='disk',
                      checksum=model.Checksum('sha256', '0' * 64))
    with pytest.raises(errors.ChecksumMismatch):
        images.write_to_device(bad, str(disk), policy=allowed(tmp_path))
    assert disk.read_bytes()[:MIB] == bytes(MIB)


def test_declared_compression_that_is_wrong_touches_nothing(tmp_path, disk):
    image = image_for(tmp_path / 'image', lzma.compress(raw_image()),
                      compression='gzip')
    with pytest.raises(errors.BadInput, match="compression is 'gzip'"):
        images.write_to_device(image, str(disk), policy=allowed(tmp_path))
    assert disk.read_bytes() == b'\xaa' * (8 * MIB)


def test_empty_image_fails(tmp_path, disk):
    image = image_for(tmp_path / 'image', b'', digest=False)
    with pytest.raises(errors.ImageDownloadFailed, match='empty'):
        images.write_to_device(image, str(disk), policy=allowed(tmp_path))


def test_tar_is_not_written_to_a_device(tmp_path, disk):
    image = image_for(tmp_path / 'image', b'x', fmt='tar')
    with pytest.raises(errors.BadInput, match="format 'tar'"):
        images.write_to_device(image, str(disk), policy=allowed(tmp_path))


def test_dry_run_touches_nothing(tmp_path, disk):
    image = image_for(tmp_path / 'image', raw_image())
    result = images.write_to_device(image, str(disk),
                                    runner=runner_mod.RecordingRunner())
    assert result['dry_run'] is True
    assert disk.read_bytes() == b'\xaa' * (8 * MIB)


def test_progress_is_reported(tmp_path, disk):
    image = image_for(tmp_path / 'image', raw_image())
    seen = []
    images.write_to_device(image, str(disk), policy=allowed(tmp_path),
                           on_progress=lambda *a: seen.append(a))
    assert seen[-1][0] == 100.0
    assert 'MB/s' in seen[-1][1]


def tar_bytes():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as archive:
        for name, mode, body in (('etc/hostname', 0o644, b'node\n'),
                                 ('usr/bin/tool', 0o4755, b'#!/bin/sh\n')):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), mode
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def test_tar_is_extracted_with_modes(tmp_path):
    target = tmp_path / 'root'
    target.mkdir()
    image = image_for(tmp_path / 'root.tar.gz', gzip.compress(tar_bytes()),
                      fmt='tar')
    result = images.extract_tar(image, str(target),
                                policy=allowed(tmp_path))
    assert (target / 'etc' / 'hostname').read_bytes() == b'node\n'
    assert (target / 'usr' / 'bin' / 'tool').stat().st_mode & 0o7777 == \
        0o4755
    assert result['compression'] == 'gzip'


def test_corrupt_tar_fails_with_tar_message(tmp_path):
    target = tmp_path / 'root'
    target.mkdir()
    image = image_for(tmp_path / 'root.tar', b'not a tar archive' * 100,
                      fmt='tar', compression='none')
    with pytest.raises(errors.CommandFailed, match='tar failed'):
        images.extract_tar(image, str(target), policy=allowed(tmp_path))


def test_tar_needs_an_existing_directory(tmp_path):
    image = image_for(tmp_path / 'root.tar', tar_bytes(), fmt='tar')
    with pytest.raises(errors.BadInput, match='does not exist'):
        images.extract_tar(image, str(tmp_path / 'absent'))


def test_grow_ext4_commands():
    runner = runner_mod.RecordingRunner()
    assert grow.grow_filesystem('/dev/sda2', 'ext4', runner) is True
    assert runner.commands == [('e2fsck', '-f', '-p', '/dev/sda2'),
                               ('resize2fs', '/dev/sda2')]


@pytest.mark.parametrize('fstype,grow_command', [
    ('xfs', ('xfs_growfs',)), ('btrfs', ('btrfs', 'filesystem', 'resize',
                                         'max'))])
def test_grow_mounted_types_mount_first(fstype, grow_command):
    runner = runner_mod.RecordingRunner()
    grow.grow_filesystem('/dev/sda2', fstype, runner)
    mount, growing, umount = runner.commands
    directory = mount[-1]
    assert mount[:3] == ('mount', '-t', fstype)
    assert growing == grow_command + (directory,)
    assert umount == ('umount', directory)
    assert not os.path.exists(directory)


def test_grow_uses_the_callers_mount():
    runner = runner_mod.RecordingRunner()
    grow.grow_filesystem('/dev/sda2', 'xfs', runner, mount_dir='/mnt/t')
    assert runner.commands == [('xfs_growfs', '/mnt/t')]


def test_vfat_is_not_grown():
    runner = runner_mod.RecordingRunner()
    assert grow.grow_filesystem('/dev/sda1', 'vfat', runner) is False
    assert runner.commands == []
