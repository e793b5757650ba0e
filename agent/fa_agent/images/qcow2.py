"""qcow2 images, converted onto the device by ``qemu-img convert``.

qemu-img reads qcow2 by seeking (the L1/L2 tables point anywhere in the
file), so it cannot read a stream: an image that is remote or compressed
is first downloaded (and decompressed) into a temporary file under
``$TMPDIR``; a local uncompressed file is used in place. Either way the
checksum is verified, and the header checked by :mod:`safety` (no
backing file, no external data file), before anything is written to
the device.
"""

import logging
import os
import tempfile

from fa_agent import errors
from fa_agent.images import checksum
from fa_agent.images import decompress
from fa_agent.images import fetch
from fa_agent.images import safety
from fa_agent.images import stream
from fa_agent.images import writer

LOG = logging.getLogger(__name__)
CONVERT_TIMEOUT = 6 * 3600
_HEAD = 16


class _TempFileSink:
    def __init__(self, path, what):
        self.path = path
        self.what = what
        self._file = open(path, 'wb')

    def write(self, data):
        try:
            self._file.write(data)
        except OSError as exc:
            raise errors.ImageDownloadFailed(
                '%s: cannot store it in %s before conversion (%s); point '
                'TMPDIR at a bigger file system' % (self.what, self.path,
                                                    exc.strerror)) from exc

    def rewind(self):
        self._file.seek(0)
        self._file.truncate()

    def close(self):
        self._file.close()


def write(image, device_path, zeroed, runner, on_progress=None,
          policy=None):
    what = stream.describe(image)
    source = fetch.open_source(image.url, policy)
    if isinstance(source, fetch.FileSource) and \
            _is_uncompressed(image, source.path, what):
        result = _verify_in_place(image, source, what, policy)
        return _convert(source.path, device_path, zeroed, runner, result,
                        what)
    with tempfile.TemporaryDirectory(prefix='fa-qcow2-') as directory:
        sink = _TempFileSink(os.path.join(directory, 'image.qcow2'), what)
        try:
            result = stream.stream(image, sink, on_progress, source=source,
                                   policy=policy)
        finally:
            sink.close()
        return _convert(sink.path, device_path, zeroed, runner, result, what)


def _is_uncompressed(image, path, what):
    with open(path, 'rb') as local:
        head = local.read(_HEAD)
    return decompress.resolve(image.compression, head, what) == 'none'


def _verify_in_place(image, source, what, policy):
    verifier = checksum.Verifier(image.checksum, what,
                                 allow_md5=bool(policy and policy.allow_md5))
    if image.checksum is not None:
        for data in source.chunks():
            verifier.update(data)
    return {'bytes_downloaded': 0, 'compression': 'none',
            'checksum': verifier.verify()}


def _convert(path, device_path, zeroed, runner, result, what):
    info = safety.check_file(path, 'qcow2', runner, what)
    capacity = writer.device_size(device_path)
    if info['virtual-size'] > capacity:
        raise errors.DoesNotFit(
            '%s: its virtual size (%d bytes) is larger than %s (%d bytes)'
            % (what, info['virtual-size'], device_path, capacity))
    command = ['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '-n']
    if zeroed:
        # Lets qemu-img skip the zero clusters instead of writing them.
        command.append('--target-is-zero')
    runner.execute(*command, path, device_path, timeout=CONVERT_TIMEOUT)
    writer.fsync_device(device_path)
    result.update(bytes_out=info['virtual-size'])
    return result
