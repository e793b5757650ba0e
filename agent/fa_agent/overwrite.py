"""Overwriting a whole disk: random passes, then a pass of zeros.

The random passes are coreutils ``shred`` (argv, no shell), as IPA's
erase_devices does; its ``--verbose`` lines become progress messages.
The final zero pass is the ``BLKZEROOUT`` ioctl over the whole device in
slices: the kernel guarantees the range reads back zeros afterwards, and
a device that offloads "write zeroes" (virtio-blk, NVMe, SCSI WRITE
SAME; see :func:`fa_agent.images.writer.zeroes_offloaded`) does it
without the data crossing the bus, else the kernel writes zero pages
itself.
"""

import fcntl
import logging
import os
import struct
import subprocess
import time

from fa_agent import errors
from fa_agent.images import writer

LOG = logging.getLogger(__name__)
SLICE = 1024 * 1024 * 1024
PROGRESS_EVERY = 5.0


def shred_command(path, passes):
    return ['shred', '--force', '--verbose', '--iterations', str(passes),
            path]


def random_passes(runner, path, passes, on_progress):
    """``passes`` passes of random data over ``path``."""
    cmd = shred_command(path, passes)
    if runner.dry_run:
        runner.execute(*cmd)
        return
    LOG.info('running: %s', ' '.join(cmd))
    env = dict(os.environ, LC_ALL='C', LANG='C')
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env)
    tail = []
    last = 0.0
    for line in process.stderr:
        line = line.strip()
        tail = (tail + [line])[-5:]
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            on_progress(line.split(': ', 1)[-1])
    if process.wait() != 0:
        raise errors.CommandFailed('command failed: %s: exit code %d: %s' % (
            ' '.join(cmd), process.returncode, ' | '.join(tail)))


def zero_pass(runner, path, on_progress):
    """Zero every byte of ``path``; whether the device offloaded it."""
    if runner.dry_run:
        runner.commands.append(('#', 'BLKZEROOUT over all of %s' % path))
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        offloaded = writer.zeroes_offloaded(fd)
        size = os.lseek(fd, 0, os.SEEK_END)
        done, last = 0, time.monotonic()
        while done < size:
            length = min(SLICE, size - done)
            try:
                fcntl.ioctl(fd, writer.BLKZEROOUT,
                            struct.pack('QQ', done, length))
            except OSError as exc:
                raise errors.CommandFailed(
                    'zeroing %s at byte %d failed: %s' % (
                        path, done, exc.strerror)) from exc
            done += length
            if time.monotonic() - last >= PROGRESS_EVERY or done == size:
                last = time.monotonic()
                on_progress('zeros %d%%' % (done * 100 // size))
        os.fsync(fd)
    finally:
        os.close(fd)
    return offloaded


def overwrite(runner, path, passes, zeroize, on_progress):
    """Random passes and/or the zero pass, as [deploy]
    shred_random_overwrite_iterations and shred_final_overwrite_with_zeros
    say; what was done, for the result."""
    done = {'random_passes': passes, 'zeros': bool(zeroize)}
    if passes:
        random_passes(runner, path, passes, on_progress)
    if zeroize:
        done['zeros_offloaded'] = zero_pass(runner, path, on_progress)
    if not passes and not zeroize:
        LOG.warning('%s: overwrite with 0 random passes and no zeros '
                    'writes nothing', path)
    return done
