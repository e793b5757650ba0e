"""The image entry points the provisioning steps call: an image onto a
block device (raw disk image, qcow2, file-system image) or into a mounted
directory (tar of a root tree)."""

import logging
import os
import time

from fa_agent import errors
from fa_agent import runner as runner_mod
from fa_agent.images import grow
from fa_agent.images import qcow2
from fa_agent.images import stream
from fa_agent.images import tar
from fa_agent.images import writer

LOG = logging.getLogger(__name__)
DEVICE_FORMATS = ('raw', 'qcow2', 'fs_image')


def write_to_device(image, device_path, *, zeroed=False, runner=None,
                    on_progress=None, policy=None):
    """Write ``image`` (a :class:`model.Image`) onto ``device_path``.

    raw and fs_image are streamed: downloaded, decompressed and written at
    once, the checksum verified before the final fsync; a mismatch erases
    both ends of the device so that nothing boots a rejected image. qcow2
    goes through qemu-img. An fs_image is grown to the device afterwards.

    :param zeroed: the device is known to read back zeros (discarded or
        zeroed), so zero blocks of the image are skipped. Without it
        they are still not written as data where the device zeroes
        ranges itself (BLKZEROOUT, see :mod:`writer`); the result's
        ``zero_runs`` says how they went.
    :param runner: a :class:`fa_agent.runner.Runner`; a dry-run runner
        makes this only log what it would do.
    :param on_progress: optional ``callback(percent, message)``.
    :param policy: the :class:`policy.ImagePolicy` (allowed file paths,
        CA bundle, md5); default :data:`policy.DEFAULT`.
    :returns: dict of what was done (bytes, compression, checksum,
        seconds; fstype and grown for fs_image).
    :raises errors.ImageDownloadFailed, errors.ChecksumMismatch,
        errors.BadInput, errors.DoesNotFit, errors.CommandFailed:
    """
    runner = runner or runner_mod.Runner()
    what = stream.describe(image)
    if image.format not in DEVICE_FORMATS:
        raise errors.BadInput(
            '%s: format %r is not written to a device (one of %s is); a tar '
            'image is extracted into its mounted target' % (
                what, image.format, ', '.join(DEVICE_FORMATS)))
    if runner.dry_run:
        LOG.info('dry run: would write %s (%s) to %s', what, image.format,
                 device_path)
        return {'dry_run': True, 'device': device_path}
    started = time.monotonic()
    if image.format == 'qcow2':
        result = qcow2.write(image, device_path, zeroed, runner, on_progress,
                             policy)
    else:
        result = _stream_to_device(image, device_path, zeroed, on_progress,
                                   policy)
    if image.format == 'fs_image':
        result['fstype'] = _file_system_type(device_path, runner, what)
        result['grown'] = grow.grow_filesystem(device_path, result['fstype'],
                                               runner)
    result.update(device=device_path, format=image.format,
                  seconds=round(time.monotonic() - started, 3))
    LOG.info('%s written to %s: %s', what, device_path, result)
    return result


def _stream_to_device(image, device_path, zeroed, on_progress, policy):
    device = writer.DeviceWriter(device_path, zeroed=zeroed)
    try:
        result = stream.stream(image, device, on_progress, policy=policy)
    except errors.ChecksumMismatch:
        device.erase_ends()
        device.close()
        raise
    except BaseException:
        device.close()
        raise
    result.update(device.finish())
    return result


def _file_system_type(device_path, runner, what):
    # -p probes the device itself: the blkid cache knows the old contents.
    out, _err = runner.execute('blkid', '-p', '-o', 'value', '-s', 'TYPE',
                               device_path, check_exit_code=(0, 2))
    fstype = out.strip()
    if not fstype:
        raise errors.BadInput('%s: format is fs_image but blkid finds no '
                              'file system in it' % what)
    return fstype


def extract_tar(image, directory, runner=None, on_progress=None,
                policy=None):
    """Extract a tar ``image`` into the mounted ``directory``, keeping
    owners (by number), modes, ACLs and xattrs.

    :returns: dict with bytes_downloaded, bytes_out (archive size),
        compression, checksum, seconds.
    """
    runner = runner or runner_mod.Runner()
    what = stream.describe(image)
    if image.format != 'tar':
        raise errors.BadInput('%s: format %r is not a tar archive'
                              % (what, image.format))
    if not os.path.isdir(directory):
        raise errors.BadInput('%s: target directory %s does not exist'
                              % (what, directory))
    if runner.dry_run:
        LOG.info('dry run: would extract %s into %s', what, directory)
        return {'dry_run': True, 'directory': directory}
    started = time.monotonic()
    sink = tar.TarSink(directory)
    try:
        result = stream.stream(image, sink, on_progress, policy=policy)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    result.update(directory=directory, format='tar',
                  seconds=round(time.monotonic() - started, 3))
    LOG.info('%s extracted into %s: %s', what, directory, result)
    return result
