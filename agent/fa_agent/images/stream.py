"""The image pipeline: source, checksum, decompression, then a sink (a
device, a file or ``tar``).

Reading, hashing and decompressing run in one thread and the sink in the
calling one, with a short queue between them: the slow parts (zlib, lzma,
hashlib, disk writes) release the GIL, so two cores work at once while
memory stays at a few MiB whatever the image size. When the server makes
the download start again from byte zero, the sink is rewound and the
whole image flows again.
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
        try:
            for data in itertools.chain((head,), chunks):
                verifier.update(data)
                progress.add(len(data))
                yield data
        finally:
            chunks.close()

    bytes_out = 0
    output = decompress.decompress(compression, downloaded(), what)
    if image.format in ('raw', 'fs_image'):
        output = safety.check_written_as_is(image.format, output, what)
    for data in in_background(output):
        sink.write(data)
        bytes_out += len(data)
    return compression, bytes_out


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
