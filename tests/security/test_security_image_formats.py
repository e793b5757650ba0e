"""Item 5 (images cannot read the ramdisk): a qcow2 image whose header
names another file (external data file, backing file) or carries a
feature nobody knows is refused before qemu-img converts it, and a raw
or fs_image that is really a container format is refused before a byte
is written. Real images made by the real qemu-img; the "disk" is a
regular file."""

import gzip
import shutil
import subprocess

import pytest

from fa_agent import errors
from fa_agent import images
from fa_agent import runner as runner_mod
from fa_agent.images import policy
from fa_agent.images import safety
from fa_agent.scheme import model

MIB = 1024 * 1024
MARKER = b'RAMDISK-SECRET-ssh-host-key-'

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None,
                                reason='qemu-img is not installed')


def qemu_img(*args):
    subprocess.run(['qemu-img', *args], check=True, capture_output=True)


def plant(path):
    """A ramdisk file worth stealing: 1 MiB of the marker."""
    path.write_bytes((MARKER * (MIB // len(MARKER) + 1))[:MIB])


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / 'ramdisk' / 'secret'
    path.parent.mkdir()
    plant(path)
    return path


def data_file_image(path, secret, options=',data_file_raw=on'):
    """A qcow2 image whose data lives in ``secret``. qemu-img create
    zeroes the data file, so the secret is planted again afterwards, as
    the ramdisk holds it when the image arrives."""
    qemu_img('create', '-q', '-f', 'qcow2', '-o',
             'data_file=%s%s' % (secret, options), str(path), '1M')
    plant(secret)
    return path


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / 'disk'
    path.write_bytes(b'\xaa' * (4 * MIB))
    return path


def write(tmp_path, path, disk, fmt='qcow2', compress=False):
    """write_to_device of ``path`` as served from tmp_path/images."""
    served = tmp_path / 'images'
    served.mkdir(exist_ok=True)
    data = path.read_bytes()
    name = path.name + ('.gz' if compress else '')
    (served / name).write_bytes(gzip.compress(data) if compress else data)
    image = model.Image(url='file://%s/%s' % (served, name), format=fmt,
                        target='d0', id='root')
    allowed = policy.ImagePolicy(file_url_allowed_paths=(str(served),))
    return images.write_to_device(image, str(disk), policy=allowed)


def assert_untouched(disk):
    data = disk.read_bytes()
    assert MARKER not in data
    assert data == b'\xaa' * (4 * MIB)


@pytest.mark.parametrize('compress', [False, True],
                         ids=['in-place', 'downloaded'])
def test_external_data_file_is_refused(tmp_path, secret, disk, compress):
    """Before the fix qemu-img convert copied the ramdisk file onto the
    disk: the marker was on the target."""
    assert MARKER in secret.read_bytes()
    crafted = data_file_image(tmp_path / 'data-file.qcow2', secret)
    with pytest.raises(errors.BadInput) as caught:
        write(tmp_path, crafted, disk, compress=compress)
    assert 'data_file' in str(caught.value)
    assert_untouched(disk)


def test_backing_file_is_refused(tmp_path, secret, disk):
    crafted = tmp_path / 'backed.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', '-b', str(secret), '-F', 'raw',
             str(crafted), '1M')
    with pytest.raises(errors.BadInput, match='backing'):
        write(tmp_path, crafted, disk)
    assert_untouched(disk)


def test_unknown_incompatible_feature_is_refused(tmp_path, disk):
    crafted = tmp_path / 'future.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', str(crafted), '1M')
    header = bytearray(crafted.read_bytes())
    header[0x48] |= 0x80  # incompatible feature bit 63: nobody knows it
    crafted.write_bytes(bytes(header))
    with pytest.raises(errors.BadInput, match='unknown_features'):
        write(tmp_path, crafted, disk)
    assert_untouched(disk)


def test_qemu_img_info_refuses_a_data_file_on_its_own(tmp_path, secret,
                                                      monkeypatch):
    """The second check holds on its own, should the inspector ever let
    such an image through."""
    monkeypatch.setattr(safety, '_inspect_file', lambda *args: None)
    crafted = data_file_image(tmp_path / 'data-file.qcow2', secret, '')
    with pytest.raises(errors.BadInput, match='external data file'):
        safety.check_file(str(crafted), 'qcow2', runner_mod.Runner(),
                          'image x')


def test_format_inspector_refuses_before_qemu_img_runs(tmp_path, secret):
    crafted = data_file_image(tmp_path / 'data-file.qcow2', secret, '')
    recorder = runner_mod.RecordingRunner()
    with pytest.raises(errors.BadInput, match='format safety check'):
        safety.check_file(str(crafted), 'qcow2', recorder, 'image x')
    assert recorder.commands == []


def test_declared_qcow2_that_is_raw_is_refused(tmp_path, disk):
    plain = tmp_path / 'plain.img'
    plain.write_bytes(MARKER * 1000)
    with pytest.raises(errors.BadInput, match='declared qcow2, but its '
                                              'content is raw'):
        write(tmp_path, plain, disk)
    assert_untouched(disk)


@pytest.mark.parametrize('fmt', ['raw', 'fs_image'])
@pytest.mark.parametrize('container', ['qcow2', 'vmdk', 'vpc'])
def test_container_declared_raw_is_not_written(tmp_path, secret, disk, fmt,
                                               container):
    """Before the fix the container's bytes went onto the disk as they
    were (a disk that boots nothing)."""
    crafted = tmp_path / ('image.' + container)
    if container == 'qcow2':
        data_file_image(crafted, secret)
    else:
        qemu_img('create', '-q', '-f', container, str(crafted), '1M')
    with pytest.raises(errors.BadInput, match='declared %s, but its content '
                                              'is' % fmt):
        write(tmp_path, crafted, disk, fmt=fmt, compress=True)
    assert_untouched(disk)


def test_self_contained_qcow2_still_converts(tmp_path, disk):
    source = tmp_path / 'source.raw'
    source.write_bytes((MARKER * 10000)[:256 * 1024])
    good = tmp_path / 'good.qcow2'
    qemu_img('convert', '-f', 'raw', '-O', 'qcow2', str(source), str(good))
    result = write(tmp_path, good, disk, compress=True)
    assert disk.read_bytes()[:source.stat().st_size] == source.read_bytes()
    assert result['bytes_out'] == source.stat().st_size


def test_raw_gpt_disk_image_still_streams(tmp_path, disk):
    raw = tmp_path / 'disk.raw'
    raw.write_bytes(bytes(2 * MIB))
    subprocess.run(['sgdisk', '-n', '1:2048:+512K', str(raw)], check=True,
                   capture_output=True)
    write(tmp_path, raw, disk, fmt='raw', compress=True)
    assert disk.read_bytes()[:2 * MIB] == raw.read_bytes()
