"""The threaded image pipeline (read, hash, decompress, sink): the
checksum covers every byte, a restart from byte zero starts every stage
again, and a failure anywhere leaves no stage's thread behind."""

import gzip
import hashlib
import os
import subprocess
import threading

import pytest

from fa_agent import errors
from fa_agent.images import fetch
from fa_agent.images import stream
from fa_agent.images import writer
from fa_agent.scheme import model

MIB = 1024 * 1024


def zstd(data):
    return subprocess.run(['zstd', '-q', '-c'], input=data, check=True,
                          capture_output=True).stdout


class Source:
    """Chunks of ``data``; the first pass may stop at ``restart_at`` with
    RestartFromZero, as an HTTP server that ignored Range makes it."""

    def __init__(self, data, restart_at=None):
        self.data = data
        self.size = len(data)
        self.restart_at = restart_at
        self.passes = 0

    def chunks(self):
        self.passes += 1
        for start in range(0, len(self.data), 300001):
            if self.passes == 1 and self.restart_at is not None and \
                    start >= self.restart_at:
                raise fetch.RestartFromZero('test')
            yield self.data[start:start + 300001]


class Collect:
    def __init__(self, fail_after=None):
        self.data = bytearray()
        self.rewinds = 0
        self.fail_after = fail_after

    def write(self, data):
        if self.fail_after is not None and len(self.data) >= self.fail_after:
            raise errors.CommandFailed('sink failed')
        self.data += data

    def rewind(self):
        self.rewinds += 1
        self.data = bytearray()


def image_of(packed, checksum=None):
    return model.Image(url='http://example.invalid/i', format='raw',
                       target='d', checksum=model.Checksum(
                           'sha256', checksum or
                           hashlib.sha256(packed).hexdigest()))


def stage_threads():
    return [t for t in threading.enumerate()
            if t.name in ('image-read', 'image-hash', 'image-write')]


def payload():
    return os.urandom(2 * MIB) + bytes(3 * MIB) + os.urandom(12345)


def test_restart_from_zero_hashes_and_writes_the_image_once():
    raw = payload()
    packed = gzip.compress(raw)
    sink = Collect()
    result = stream.stream(image_of(packed), sink,
                           source=Source(packed, restart_at=600000))
    assert bytes(sink.data) == raw
    assert sink.rewinds == 1
    assert result['checksum'] == hashlib.sha256(packed).hexdigest()
    assert not stage_threads()


def test_restart_with_zstd_straight_into_the_device_writer(tmp_path):
    raw = payload()
    packed = zstd(raw)
    target = tmp_path / 'disk'
    target.write_bytes(b'\xaa' * len(raw))
    device = writer.DeviceWriter(str(target))
    stream.stream(image_of(packed), device,
                  source=Source(packed, restart_at=300001))
    device.finish()
    assert target.read_bytes() == raw
    assert not stage_threads()


def test_checksum_of_the_downloaded_bytes_is_verified():
    packed = gzip.compress(payload())
    with pytest.raises(errors.ChecksumMismatch):
        stream.stream(image_of(packed, checksum='0' * 64), Collect(),
                      source=Source(packed))
    assert not stage_threads()


@pytest.mark.parametrize('packer', [gzip.compress, zstd])
def test_corrupt_data_stops_every_stage(tmp_path, packer):
    packed = bytearray(packer(payload()))
    packed[len(packed) // 2:len(packed) // 2 + 64] = b'\xff' * 64
    (tmp_path / 'disk').write_bytes(b'')
    device = writer.DeviceWriter(str(tmp_path / 'disk'))
    with pytest.raises(errors.ImageDownloadFailed, match='corrupt'):
        stream.stream(image_of(bytes(packed)), device,
                      source=Source(bytes(packed)))
    device.close()
    assert not stage_threads()


def test_a_failing_sink_stops_reading_and_hashing():
    packed = gzip.compress(payload())
    with pytest.raises(errors.CommandFailed, match='sink failed'):
        stream.stream(image_of(packed), Collect(fail_after=MIB),
                      source=Source(packed))
    assert not stage_threads()
