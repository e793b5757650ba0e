"""The image pipeline: source, checksum, decompression, then a sink (a
device, a file or ``tar``).

Each stage has a thread of its own, with short queues between them:
reading (socket or file), hashing the downloaded bytes, decompressing,
and the sink in the calling thread (the device writer adds one more for
the disk). The slow parts (zlib, lzma, bz2, libzstd through ctypes,
hashlib, reads and writes) release the GIL, so they overlap as the
processes of ``curl | zstd -dc | dd`` do, while memory stays at a few
MiB whatever the image size. When the server makes the download start
again from byte zero, the sink is rewound and the whole image flows
again.
"""

import itertools
import logging
import queue
import threading

from fa_agent import errors
from fa_agent import redact
from fa_agent.images import checksum
from fa_agent.images import decompress
from fa_agent.images import fetch
from fa_agent.images import policy as policy_mod
from fa_agent.images import progress as progress_mod
from fa_agent.images import safety

LOG = logging.getLogger(__name__)
QUEUE_DEPTH = 4


def describe(image):
    """How messages name an image (its URL masked: it may carry a
    password or a signature)."""
    return 'image %s' % (image.id or redact.url(image.url))


def stream(image, sink, on_progress=None, source=None, policy=None):
    """Feed the decompressed image to ``sink`` (``write``, ``rewind``).

    The checksum is verified once the last byte has gone to the sink;
    finishing the sink (fsync, exit status) is the caller's business.

    :returns: dict with bytes_downloaded, bytes_out, compression,
        checksum (the computed hex digest or None) and seconds.
    """
    policy = policy or policy_mod.DEFAULT
    what = describe(image)
    verifier = checksum.Verifier(image.checksum, what,
                                 allow_md5=policy.allow_md5)
    source = source or fetch.open_source(image.url, policy)
    progress = progress_mod.Progress(what, source.size, callback=on_progress)
    while True:
        try:
            compression, bytes_out = _one_pass(image, source, verifier,
                                               progress, sink, what)
            break
        except fetch.RestartFromZero:
            LOG.warning('%s: writing again from the first byte', what)
            verifier.reset()
            sink.rewind()
            progress.restart(source.size)
    digest = verifier.verify()
    seconds = progress.finish()
    return {'bytes_downloaded': progress.done, 'bytes_out': bytes_out,
            'compression': compression, 'checksum': digest,
            'seconds': round(seconds, 3)}


def _one_pass(image, source, verifier, progress, sink, what):
    chunks = source.chunks()
    head = next(chunks, b'')
    if not head:
        raise errors.ImageDownloadFailed('%s is empty' % what)
    compression = decompress.resolve(image.compression, head, what)

    def downloaded():
        # The reading thread: bytes as they arrive.
        try:
            for data in itertools.chain((head,), chunks):
                progress.add(len(data))
                yield data
        finally:
            chunks.close()

    def hashed():
        # The decompressing thread hands each chunk to the hashing one.
        hasher = Beside(verifier.update)
        arriving = in_background(downloaded())
        try:
            for data in arriving:
                hasher.put(data)
                yield data
            hasher.finish()
        finally:
            arriving.close()
            hasher.stop()

    bytes_out = 0
    compressed = hashed()
    # A sink with buffers of its own (the device writer) checks the head
    # itself, and zstd decodes straight into its buffers.
    direct = hasattr(sink, 'buffer')
    try:
        if image.format in ('raw', 'fs_image') and direct:
            sink.check_head = lambda data: _check_head(image.format, data,
                                                       what)
        if direct and compression == 'zstd':
            return compression, decompress.zstd_into(compressed, sink, what)
        output = decompress.decompress(compression, compressed, what)
        if image.format in ('raw', 'fs_image') and not direct:
            output = safety.check_written_as_is(image.format, output, what)
        for data in in_background(output):
            sink.write(data)
            bytes_out += len(data)
    finally:
        # The reading and hashing threads stop here too when the
        # decompressor or the sink failed (in_background has joined the
        # decompressing thread, so nothing runs the generator now).
        compressed.close()
    return compression, bytes_out


def _check_head(declared, data, what):
    for _data in safety.check_written_as_is(declared, (data,), what):
        pass


class Beside:
    """Calls ``consume(item)`` for each item :meth:`put`, in a thread of
    its own; its exception is raised by the next ``put`` or
    :meth:`finish`."""

    def __init__(self, consume, depth=2 * QUEUE_DEPTH):
        self._consume = consume
        self._queue = queue.Queue(depth)
        self._error = None
        self._thread = threading.Thread(target=self._run, name='image-hash',
                                        daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as exc:  # raised in the caller
                    self._error = exc

    def _raise(self):
        if self._error is not None:
            raise self._error

    def put(self, item):
        self._raise()
        self._queue.put(item)

    def finish(self):
        """Wait until every item is consumed."""
        self.stop()
        self._raise()

    def stop(self):
        if self._thread is not None:
            self._queue.put(_END)
            self._thread.join()
            self._thread = None


class _Failed:
    def __init__(self, exc):
        self.exc = exc


_END = object()


def in_background(iterator, depth=QUEUE_DEPTH):
    """Iterate ``iterator`` in a thread, handing items over a queue.

    Its exceptions are raised here; leaving the loop early stops and
    closes it in its own thread.
    """
    handover = queue.Queue(depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in iterator:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed on to the consuming thread
            put(_Failed(exc))
        finally:
            close = getattr(iterator, 'close', None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name='image-read',
                              daemon=True)
    worker.start()
    try:
        while True:
            item = handover.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()
