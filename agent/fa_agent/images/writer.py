"""Laying a byte stream onto a block device.

Data is gathered into large blocks and written with O_DIRECT from
page-aligned buffers: going through the page cache would copy every byte
once more and leave gigabytes of dirty pages for the final fsync to push
out (measured here: a buffered write plus fsync took 2.5 to 3 times as
long as ``dd oflag=direct``). The writes run in a thread of their own
behind a few buffers, so the disk works while the caller decompresses
the next block (``pwrite`` and ``ioctl`` release the GIL).

All-zero stretches of the image need not cost a write of zeros:

- ``zeroed=True`` (the caller knows the device reads back zeros): they
  are skipped.
- otherwise, when the device offloads "write zeroes" (its
  ``queue/write_zeroes_max_bytes`` in sysfs is above 0: SCSI WRITE SAME,
  NVMe Write Zeroes, virtio-blk, a loop device on a file system that
  can allocate ranges), they are zeroed with the ``BLKZEROOUT`` ioctl,
  which the kernel guarantees reads back zeros afterwards (unlike a
  discard: ``discard_zeroes_data`` is gone from Linux since 4.12) and
  the device does without the data crossing the bus;
- otherwise they are written like any other data.

One fsync at the end makes the image durable before the step reports
success.
"""

import ctypes
import errno
import fcntl
import os
import queue
import stat
import struct
import threading

from fa_agent import errors

BLOCK = 4 * 1024 * 1024
# Smallest all-zero stretch worth skipping; a multiple of any sector size.
SEGMENT = 64 * 1024
# Blocks in the pool: one being filled, the rest queued or being written.
BUFFERS = 4
# What ``check_head`` is shown; less than BLOCK.
HEAD = 1024 * 1024
_ZEROS = bytes(SEGMENT)
_END_MARGIN = 1024 * 1024
# O_DIRECT wants buffer, offset and length aligned to the logical block
# size; a page covers every sector size in use.
_ALIGN = 4096
# <linux/fs.h>: _IO(0x12, 127); its argument is {start, length} in bytes.
BLKZEROOUT = 0x127f
SKIP, ZEROOUT, WRITE = 'skip', 'zeroout', 'write'


class _Block:
    """A page-aligned BLOCK inside a bytearray (kept for its in-place,
    copy-free ``startswith``)."""

    def __init__(self):
        self.raw = bytearray(BLOCK + _ALIGN)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self.raw))
        self.base = -address % _ALIGN
        self.view = memoryview(self.raw)[self.base:self.base + BLOCK]
        self.fill = 0

    def is_zero(self, start, end):
        # memcmp in place, stopping at the first non-zero byte: data
        # blocks cost almost nothing.
        length = end - start
        zeros = _ZEROS if length == SEGMENT else _ZEROS[:length]
        return self.raw.startswith(zeros, self.base + start)


class DeviceWriter:
    """Writes a stream to ``path`` from its first byte.

    :param zeroed: the device is known to read back zeros, so zero
        segments of the stream need not be written at all.
    :param check_head: optional ``check_head(data)``, given the first
        :data:`HEAD` bytes of the stream (of each pass) before anything
        is written; its exception stops the write.
    """

    def __init__(self, path, zeroed=False, check_head=None):
        self.path = path
        self.zeroed = zeroed
        self.check_head = check_head
        self._fd = _open(path, os.O_WRONLY)
        # Regular files (tests, scratch copies) grow; devices do not.
        is_device = stat.S_ISBLK(os.fstat(self._fd).st_mode)
        self.capacity = (os.lseek(self._fd, 0, os.SEEK_END) if is_device
                         else None)
        self.direct = is_device and _set_direct(self._fd, True)
        if zeroed:
            self.zero_runs = SKIP
        elif is_device and zeroes_offloaded(self._fd):
            self.zero_runs = ZEROOUT
        else:
            self.zero_runs = WRITE
        self._free = queue.Queue()
        for _ in range(BUFFERS):
            self._free.put(_Block())
        self._todo = queue.Queue()
        self._error = None
        self._block = None
        self._thread = threading.Thread(target=self._work,
                                        name='image-write', daemon=True)
        self._thread.start()
        self.rewind()

    def rewind(self):
        """Start again at the first byte (the stream restarted)."""
        self._wait()
        self._raise()
        self._offset = 0
        self.bytes_in = 0
        self.bytes_skipped = 0
        self.bytes_zeroed = 0
        self._zeros_at = None
        if self._block is not None:
            self._block.fill = 0

    def write(self, data):
        view = memoryview(data)
        while view:
            free = self.buffer()
            taken = min(len(free), len(view))
            free[:taken] = view[:taken]
            self.commit(taken)
            view = view[taken:]

    def buffer(self):
        """The free rest of the current block, for a producer that can
        put its output straight there (then :meth:`commit`): one copy
        less than :meth:`write`."""
        if self._block is None:
            self._block = self._free.get()
            self._raise()
        return self._block.view[self._block.fill:]

    def commit(self, count):
        """``count`` more bytes of the stream are in :meth:`buffer`."""
        if self.capacity is not None and \
                self.bytes_in + count > self.capacity:
            raise errors.DoesNotFit(
                'the image is larger than %s (%d bytes): more than %d bytes '
                'arrived' % (self.path, self.capacity, self.bytes_in + count))
        self.bytes_in += count
        self._block.fill += count
        if self._block.fill == BLOCK:
            self._hand_on()

    def finish(self):
        """Write what is left, fsync, close. Returns the counters."""
        try:
            if self._block is not None and self._block.fill:
                self._hand_on(last=True)
            self._todo.put((None, None, True))
            self._wait()
            self._raise()
            os.fsync(self._fd)
        except OSError as exc:
            raise errors.CommandFailed('cannot write to %s: %s'
                                       % (self.path, exc)) from exc
        finally:
            self.close()
        return {'bytes_written': (self.bytes_in - self.bytes_skipped
                                  - self.bytes_zeroed),
                'bytes_skipped': self.bytes_skipped,
                'bytes_zeroed': self.bytes_zeroed,
                'zero_runs': self.zero_runs}

    def close(self):
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def erase_ends(self):
        """Zero the first and last MiB, so that no firmware or tool takes
        a rejected image for a usable one (the backup GPT lives at the
        end)."""
        self._wait()
        zeros = bytes(_END_MARGIN)
        if self.direct:
            self.direct = _set_direct(self._fd, False)
        ends = [0]
        if self.capacity:
            ends.append(max(0, self.capacity - _END_MARGIN))
        for start in ends:
            self._pwrite(memoryview(zeros), start)
        os.fsync(self._fd)

    def _hand_on(self, last=False):
        if self._offset == 0 and self.check_head is not None:
            # Nothing reaches the disk before the head passed.
            self.check_head(bytes(self._block.view[:min(HEAD,
                                                        self._block.fill)]))
        block, self._block = self._block, None
        self._todo.put((block, self._offset, last))
        self._offset += block.fill

    def _wait(self):
        """Until every block handed on is written."""
        if self._thread is not None:
            self._todo.join()

    def _raise(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self):
        """The writing thread: blocks in order, until told to stop."""
        while True:
            item = self._todo.get()
            try:
                if item is None:
                    return
                block, offset, last = item
                if self._error is None:
                    try:
                        if block is not None:
                            self._write_block(block, offset, last)
                        if last:
                            self._end_zeros()
                    except Exception as exc:  # raised in the caller
                        self._error = exc
                if block is not None:
                    block.fill = 0
                    self._free.put(block)
            finally:
                self._todo.task_done()

    def _write_block(self, block, base, last):
        fill = block.fill
        view = block.view[:fill]
        if last and self.direct and fill % _ALIGN:
            # The tail of an image need not be a whole number of sectors.
            self.direct = _set_direct(self._fd, False)
        if self.zero_runs == WRITE:
            self._pwrite(view, base)
            return
        run_start = None
        for start in range(0, fill, SEGMENT):
            end = min(start + SEGMENT, fill)
            # BLKZEROOUT takes whole sectors only.
            zero = block.is_zero(start, end) and (
                self.zero_runs == SKIP or (end - start) % _ALIGN == 0)
            if zero:
                if run_start is not None:
                    self._pwrite(view[run_start:start], base + run_start)
                    run_start = None
                self._add_zeros(base + start, end - start)
            else:
                if run_start is None:
                    self._end_zeros()
                    run_start = start
        if run_start is not None:
            self._pwrite(view[run_start:fill], base + run_start)

    def _add_zeros(self, offset, length):
        # Runs are joined across blocks: one ioctl for a long hole.
        if self._zeros_at is None:
            self._zeros_at = [offset, 0]
        self._zeros_at[1] += length

    def _end_zeros(self):
        if self._zeros_at is None:
            return
        offset, length = self._zeros_at
        self._zeros_at = None
        if self.zero_runs == SKIP:
            self.bytes_skipped += length
            return
        try:
            fcntl.ioctl(self._fd, BLKZEROOUT,
                        struct.pack('=QQ', offset, length))
            self.bytes_zeroed += length
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTTY,
                                 errno.EINVAL):
                raise errors.CommandFailed('cannot zero %d bytes at %d on '
                                           '%s: %s' % (length, offset,
                                                       self.path, exc)) \
                    from exc
        # The device refused after all: write the zeros, from now on.
        self.zero_runs = WRITE
        zeros = memoryview(bytes(min(length, BLOCK)))
        while length:
            piece = min(length, len(zeros))
            self._pwrite_any(zeros[:piece], offset)
            offset += piece
            length -= piece

    def _pwrite_any(self, view, offset):
        """pwrite from an unaligned buffer (O_DIRECT off for it)."""
        direct = self.direct
        if direct:
            self.direct = _set_direct(self._fd, False)
        try:
            self._pwrite(view, offset)
        finally:
            if direct:
                self.direct = _set_direct(self._fd, True)

    def _pwrite(self, view, offset):
        try:
            while view:
                written = os.pwrite(self._fd, view, offset)
                view = view[written:]
                offset += written
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise errors.DoesNotFit('the image does not fit on %s'
                                        % self.path) from exc
            raise errors.CommandFailed('cannot write to %s: %s'
                                       % (self.path, exc)) from exc


def zeroes_offloaded(fd):
    """Whether the block device open on ``fd`` does "write zeroes"
    itself (sysfs ``queue/write_zeroes_max_bytes`` > 0; a partition
    has the value of its disk)."""
    rdev = os.fstat(fd).st_rdev
    node = '/sys/dev/block/%d:%d' % (os.major(rdev), os.minor(rdev))
    for directory in (node, os.path.join(node, '..')):
        try:
            with open(os.path.join(directory, 'queue',
                                   'write_zeroes_max_bytes')) as value:
                return int(value.read()) > 0
        except (OSError, ValueError):
            continue
    return False


def device_size(path):
    """Size in bytes of a block device (or file)."""
    fd = _open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def fsync_device(path):
    """Flush a device written by another program (qemu-img)."""
    fd = _open(path, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_direct(fd, direct):
    """Turn O_DIRECT on or off; False when the file cannot do it."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    flags = flags | os.O_DIRECT if direct else flags & ~os.O_DIRECT
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    except OSError:
        return False
    return direct


def _open(path, flags):
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        error_class = (errors.DiskNotFound if exc.errno == errno.ENOENT
                       else errors.CommandFailed)
        raise error_class('cannot open %s: %s' % (path, exc.strerror)) \
            from exc
