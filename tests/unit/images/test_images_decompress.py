"""Decompression: magic-byte detection, every format streamed in odd-sized
pieces, concatenated streams, padding, truncation and corruption."""

import bz2
import gzip
import lzma
import os
import random
import subprocess

import pytest

from fa_agent import errors
from fa_agent.images import decompress


def zstd(data):
    return subprocess.run(['zstd', '-q', '-c'], input=data, check=True,
                          capture_output=True).stdout


COMPRESS = {'gzip': gzip.compress, 'xz': lzma.compress,
            'bzip2': bz2.compress, 'zstd': zstd}


def payload(size=3 * 1024 * 1024 + 4321):
    rng = random.Random(size)
    # Half random, half zeros: both the literal and the long-run paths.
    return rng.randbytes(size // 2) + bytes(size - size // 2)


def pieces(data, seed=0):
    """Split into random-sized chunks, as a network would."""
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        step = rng.randint(1, 300000)
        yield data[position:position + step]
        position += step


@pytest.mark.parametrize('name', sorted(COMPRESS))
def test_detects_each_magic(name):
    assert decompress.detect(COMPRESS[name](b'hello')[:8]) == name


def test_unknown_head_is_none():
    assert decompress.detect(b'\xeb\x63\x90' + bytes(13)) == 'none'
    assert decompress.detect(b'') == 'none'


@pytest.mark.parametrize('name', sorted(COMPRESS))
def test_round_trip_in_pieces(name):
    data = payload()
    packed = COMPRESS[name](data)
    out = list(decompress.decompress(name, pieces(packed)))
    assert b''.join(out) == data
    assert max(len(p) for p in out) <= decompress.OUTPUT_CHUNK


@pytest.mark.parametrize('name', sorted(COMPRESS))
def test_auto_resolves_to_the_data(name):
    packed = COMPRESS[name](b'x' * 1000)
    assert decompress.resolve('auto', packed[:16], 'image a') == name


def test_declared_compression_must_match_the_data():
    with pytest.raises(errors.BadInput) as caught:
        decompress.resolve('gzip', lzma.compress(b'x')[:16], 'image a')
    assert "compression is 'gzip'" in str(caught.value)
    assert 'looks like xz' in str(caught.value)


def test_declared_none_is_trusted():
    assert decompress.resolve('none', gzip.compress(b'x'), 'i') == 'none'


def test_unknown_compression_is_refused():
    with pytest.raises(errors.BadInput, match='compression must be one of'):
        decompress.resolve('lz4', b'abc', 'image a')


@pytest.mark.parametrize('name', ['gzip', 'xz', 'bzip2', 'zstd'])
def test_concatenated_streams(name):
    first, second = os.urandom(100000), b'second part' * 1000
    packed = COMPRESS[name](first) + COMPRESS[name](second)
    assert b''.join(decompress.decompress(name, pieces(packed, 3))) == \
        first + second


@pytest.mark.parametrize('name', ['gzip', 'xz', 'bzip2'])
def test_zero_padding_after_the_stream_is_ignored(name):
    packed = COMPRESS[name](b'data' * 1000) + bytes(4096)
    assert b''.join(decompress.decompress(name, [packed])) == b'data' * 1000


@pytest.mark.parametrize('name', sorted(COMPRESS))
def test_truncated_stream_fails(name):
    packed = COMPRESS[name](os.urandom(200000))
    with pytest.raises(errors.ImageDownloadFailed):
        b''.join(decompress.decompress(name, [packed[:len(packed) // 2]]))


@pytest.mark.parametrize('name', sorted(COMPRESS))
def test_corrupt_stream_fails(name):
    packed = bytearray(COMPRESS[name](payload(500000)))
    middle = len(packed) // 2
    packed[middle:middle + 64] = bytes(range(64))
    with pytest.raises(errors.ImageDownloadFailed, match='corrupt|truncat'):
        b''.join(decompress.decompress(name, [bytes(packed)]))


def test_zeros_come_out_in_bounded_pieces():
    # 64 MiB of zeros squeeze into about 64 KiB of gzip: memory must not
    # follow the compression ratio.
    packed = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=1)
    sizes = [len(p) for p in decompress.decompress('gzip', [packed])]
    assert sum(sizes) == 64 * 1024 * 1024
    assert max(sizes) <= decompress.OUTPUT_CHUNK


def test_source_failure_passes_through_zstd():
    def failing():
        yield zstd(b'a' * 100000)[:50]
        raise errors.ImageDownloadFailed('network gone')

    with pytest.raises(errors.ImageDownloadFailed, match='network gone'):
        b''.join(decompress.decompress('zstd', failing()))


def test_frame_ending_on_a_full_output_piece():
    # The last call of a frame can fill the output exactly; asking the
    # decoder again then must not be taken for a truncated stream.
    data = bytes(8 * decompress.OUTPUT_CHUNK)
    assert b''.join(decompress.decompress('zstd', [zstd(data)])) == data


class SmallBuffers:
    """A sink like the device writer, with odd-sized buffers."""

    def __init__(self, size=100003):
        self.size = size
        self.done = bytearray()
        self._free = bytearray(size)

    def buffer(self):
        return memoryview(self._free)

    def commit(self, count):
        self.done += self._free[:count]


@pytest.mark.parametrize('frames', [1, 3])
def test_zstd_into_a_sink_s_buffers(frames):
    data = payload()
    packed = b''.join(zstd(data) for _ in range(frames))
    sink = SmallBuffers()
    count = decompress.zstd_into(pieces(packed), sink)
    assert count == len(data) * frames
    assert bytes(sink.done) == data * frames


def test_zstd_into_truncated_fails():
    with pytest.raises(errors.ImageDownloadFailed, match='ends early'):
        decompress.zstd_into(iter([zstd(payload())[:-100]]), SmallBuffers())


def test_zstd_into_corrupt_fails():
    packed = bytearray(zstd(payload()))
    packed[40:60] = b'\xff' * 20
    with pytest.raises(errors.ImageDownloadFailed, match='corrupt zstd'):
        decompress.zstd_into(iter([bytes(packed)]), SmallBuffers())
