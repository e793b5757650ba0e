"""The device writer, on regular files (block devices are covered by the
loop-device functional tests)."""

import os

import pytest

from fa_agent import errors
from fa_agent.images import writer

MIB = 1024 * 1024


def stream_of(data, step=700001):
    for start in range(0, len(data), step):
        yield data[start:start + step]


def image_with_holes():
    seg = writer.SEGMENT
    # data, a zero block, a zero segment inside data, an odd-sized tail.
    return (os.urandom(3 * seg) + bytes(writer.BLOCK) + os.urandom(seg)
            + bytes(seg) + os.urandom(2 * seg + 123) + bytes(1000))


def write(path, data, zeroed):
    target = writer.DeviceWriter(str(path), zeroed=zeroed)
    for piece in stream_of(data):
        target.write(piece)
    return target.finish()


def test_writes_every_byte(tmp_path):
    data = image_with_holes()
    target = tmp_path / 'disk'
    target.write_bytes(b'\xaa' * (len(data) + 5000))
    counters = write(target, data, zeroed=False)
    written = target.read_bytes()
    assert written[:len(data)] == data
    assert written[len(data):] == b'\xaa' * 5000
    assert counters == {'bytes_written': len(data), 'bytes_skipped': 0,
                        'bytes_zeroed': 0, 'zero_runs': 'write'}


def test_zeroed_target_skips_zero_segments(tmp_path):
    data = image_with_holes()
    target = tmp_path / 'disk'
    # 0xaa stands in for "already zero": whatever still reads 0xaa was
    # skipped, not written.
    target.write_bytes(b'\xaa' * len(data))
    counters = write(target, data, zeroed=True)
    written = target.read_bytes()
    seg = writer.SEGMENT
    # The last 1000 zero bytes share a segment with data: written.
    skipped = writer.BLOCK + seg
    assert counters['bytes_skipped'] == skipped
    assert counters['bytes_written'] == len(data) - skipped
    for start in range(0, len(data), seg):
        original = data[start:start + seg]
        if original.count(0) == len(original):
            assert written[start:start + seg] == b'\xaa' * len(original)
        else:
            assert written[start:start + seg] == original


def test_rewind_starts_over(tmp_path):
    target_path = tmp_path / 'disk'
    target_path.write_bytes(b'')
    target = writer.DeviceWriter(str(target_path))
    target.write(b'wrong' * MIB)
    target.rewind()
    target.write(b'right')
    assert target.finish()['bytes_written'] == 5
    # A file is not truncated by the writer; the first bytes are new.
    assert target_path.read_bytes()[:5] == b'right'


def test_missing_device_is_disk_not_found(tmp_path):
    with pytest.raises(errors.DiskNotFound, match='nothing-here'):
        writer.DeviceWriter(str(tmp_path / 'nothing-here'))


def test_erase_ends_zeroes_the_head(tmp_path):
    target_path = tmp_path / 'disk'
    target_path.write_bytes(b'\xaa' * (3 * MIB))
    target = writer.DeviceWriter(str(target_path))
    target.erase_ends()
    target.close()
    data = target_path.read_bytes()
    assert data[:MIB] == bytes(MIB)
    assert data[MIB:] == b'\xaa' * (2 * MIB)


def test_refused_zeroout_falls_back_to_writing_zeros(tmp_path):
    # A regular file answers BLKZEROOUT with ENOTTY: the zeros must then
    # be written, over old data, and the rest of the stream too.
    data = image_with_holes()
    target_path = tmp_path / 'disk'
    target_path.write_bytes(b'\xaa' * len(data))
    target = writer.DeviceWriter(str(target_path))
    target.zero_runs = writer.ZEROOUT
    for piece in stream_of(data):
        target.write(piece)
    counters = target.finish()
    assert target_path.read_bytes() == data
    assert counters['zero_runs'] == writer.WRITE
    assert counters['bytes_zeroed'] == 0
    assert counters['bytes_written'] == len(data)


def test_head_is_checked_before_anything_is_written(tmp_path):
    target_path = tmp_path / 'disk'
    target_path.write_bytes(b'\xaa' * (3 * writer.BLOCK))
    seen = []

    def refuse(head):
        seen.append(len(head))
        raise errors.BadInput('not a raw image')

    target = writer.DeviceWriter(str(target_path), check_head=refuse)
    with pytest.raises(errors.BadInput):
        target.write(os.urandom(2 * writer.BLOCK))
    target.close()
    assert seen == [writer.HEAD]
    assert target_path.read_bytes() == b'\xaa' * (3 * writer.BLOCK)


def test_a_short_stream_is_checked_whole_at_finish(tmp_path):
    target_path = tmp_path / 'disk'
    target_path.write_bytes(b'')
    seen = []
    target = writer.DeviceWriter(str(target_path), check_head=seen.append)
    target.write(b'tiny')
    target.finish()
    assert seen == [b'tiny']
    assert target_path.read_bytes() == b'tiny'


def test_buffer_and_commit_fill_blocks_in_place(tmp_path):
    data = image_with_holes()
    target_path = tmp_path / 'disk'
    target_path.write_bytes(b'')
    target = writer.DeviceWriter(str(target_path))
    view = memoryview(data)
    while view:
        free = target.buffer()
        taken = min(len(free), len(view), 100003)
        free[:taken] = view[:taken]
        del free
        target.commit(taken)
        view = view[taken:]
    assert target.finish()['bytes_written'] == len(data)
    assert target_path.read_bytes() == data


def test_write_errors_of_the_writing_thread_reach_the_caller():
    # /dev/full answers every write with ENOSPC, in the writing thread.
    target = writer.DeviceWriter('/dev/full')
    with pytest.raises(errors.DoesNotFit, match='does not fit on /dev/full'):
        for _ in range(writer.BUFFERS + 2):
            target.write(os.urandom(writer.BLOCK))
        target.finish()
    target.close()
