"""Growing a file system written from an image to fill its device.

ext2/3/4 grow offline (after the forced check resize2fs insists on); xfs
and btrfs only grow while mounted, so they are mounted on a temporary
directory unless the caller already has them mounted.
"""

import contextlib
import logging
import os
import tempfile

LOG = logging.getLogger(__name__)
EXT = ('ext2', 'ext3', 'ext4')
GROWABLE = EXT + ('xfs', 'btrfs')
# e2fsck: 0 clean, 1 errors fixed; anything else needs a person.
_E2FSCK_OK = (0, 1)


def grow_filesystem(device_path, fstype, runner, mount_dir=None):
    """Grow the ``fstype`` file system on ``device_path`` to the device.

    :param mount_dir: where it is already mounted (xfs, btrfs), if it is.
    :returns: True when grown; False for a type that cannot grow (vfat,
        swap), which is logged: the image still works, only smaller.
    """
    if fstype not in GROWABLE:
        LOG.warning('%s: a %s file system cannot be grown; it keeps the '
                    'size of its image', device_path, fstype)
        return False
    if fstype in EXT:
        runner.execute('e2fsck', '-f', '-p', device_path,
                       check_exit_code=_E2FSCK_OK)
        runner.execute('resize2fs', device_path)
        return True
    with _mounted(device_path, fstype, runner, mount_dir) as directory:
        if fstype == 'xfs':
            runner.execute('xfs_growfs', directory)
        else:
            runner.execute('btrfs', 'filesystem', 'resize', 'max', directory)
    return True


@contextlib.contextmanager
def _mounted(device_path, fstype, runner, mount_dir):
    if mount_dir:
        yield mount_dir
        return
    directory = tempfile.mkdtemp(prefix='fa-grow-')
    # nouuid: the same image may already be mounted from another device.
    options = ('-o', 'nouuid') if fstype == 'xfs' else ()
    try:
        runner.execute('mount', '-t', fstype, *options, device_path,
                       directory)
        try:
            yield directory
        finally:
            runner.execute('umount', directory)
    finally:
        try:
            os.rmdir(directory)
        except OSError as exc:
            # Still mounted after a failed umount: that error is the one
            # to report, not this one.
            LOG.warning('cannot remove %s: %s', directory, exc)
