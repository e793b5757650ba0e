"""Streamed decompression of images: gzip, xz, bzip2 and zstd, chosen by
name or recognised from the first bytes.

gzip, xz and bzip2 use Python's own zlib, lzma and bz2 modules: they are
in every Python, release the GIL while they work (so decompression runs
beside the disk writes on another core), and handle concatenated streams
here. zstd has no module in the standard library before Python 3.14, and
the ``zstandard`` package is a compiled extension that would have to be
built for the ramdisk's Python. A pipe to the ``zstd`` command was tried
first and measured: on a 2-core node the two extra pipe copies (image in,
raw data out) made the write 25-30 % slower than ``zstd -dc | dd``. So
zstd is decoded in process by libzstd through ctypes: libzstd1 is already
in every Debian-based ramdisk (dpkg, systemd and kmod depend on it),
nothing is compiled, and ctypes releases the GIL during each call.
Output comes in pieces of at most ``OUTPUT_CHUNK`` bytes whatever the
compression ratio, which bounds memory for images of zeros; or, with
:func:`zstd_into`, straight into the buffers of a sink such as the device
writer (two copies of every byte fewer).
"""

import bz2
import ctypes
import ctypes.util
import lzma
import zlib

from fa_agent import errors

OUTPUT_CHUNK = 1024 * 1024
NAMES = ('none', 'gzip', 'xz', 'zstd', 'bzip2')
# Longest prefix first is not needed: no magic is a prefix of another.
MAGIC = (
    ('gzip', b'\x1f\x8b'),
    ('xz', b'\xfd7zXZ\x00'),
    ('zstd', b'\x28\xb5\x2f\xfd'),
    ('bzip2', b'BZh'),
)
_FACTORIES = {
    'gzip': lambda: zlib.decompressobj(zlib.MAX_WBITS | 16),
    'xz': lzma.LZMADecompressor,
    'bzip2': bz2.BZ2Decompressor,
}
_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError)


def detect(head):
    """The compression whose magic bytes start ``head``, else 'none'."""
    for name, magic in MAGIC:
        if head.startswith(magic):
            return name
    return 'none'


def resolve(declared, head, what):
    """The compression to use for a stream that starts with ``head``.

    'auto' means "recognise it". A declared compression that the data
    does not have is refused, since decompressing would only fail later
    with a less helpful message; declared 'none' is trusted as is.

    :param what: names the image in messages.
    """
    found = detect(head)
    if declared in (None, 'auto'):
        return found
    if declared not in NAMES:
        raise errors.BadInput('%s: compression must be one of auto, %s; '
                              'not %r' % (what, ', '.join(NAMES), declared))
    if declared != 'none' and found != declared:
        raise errors.BadInput(
            '%s: compression is %r but the data does not start with %s '
            'magic bytes (it looks like %s)' % (what, declared, declared,
                                                found))
    return declared


def decompress(name, chunks, what='image'):
    """Iterate over the decompressed bytes of ``chunks``."""
    if name == 'none':
        return iter(chunks)
    if name == 'zstd':
        return _zstd(chunks, what)
    return _stdlib(name, chunks, what)


def _stdlib(name, chunks, what):
    new = _FACTORIES[name]
    decompressor = None
    started = False
    try:
        for data in chunks:
            while data:
                if decompressor is None:
                    # Zero padding after a stream (dd, some tools) is not
                    # another stream.
                    data = data.lstrip(b'\0') if started else data
                    if not data:
                        break
                    decompressor, started = new(), True
                yield from _drain(decompressor, data)
                if decompressor.eof:
                    data, decompressor = decompressor.unused_data, None
                else:
                    data = b''
    except _ERRORS as exc:
        raise errors.ImageDownloadFailed(
            '%s: corrupt %s data: %s' % (what, name, exc)) from exc
    if decompressor is not None or not started:
        raise errors.ImageDownloadFailed(
            '%s: the %s stream ends early (truncated image)' % (what, name))


def _drain(decompressor, data):
    """All output ``data`` gives now, in bounded pieces."""
    limited_tail = hasattr(decompressor, 'unconsumed_tail')
    while True:
        out = decompressor.decompress(data, OUTPUT_CHUNK)
        if out:
            yield out
        if decompressor.eof:
            return
        if limited_tail:
            # zlib hands back the input it had no room for.
            data = decompressor.unconsumed_tail
            if not data and len(out) < OUTPUT_CHUNK:
                return
        else:
            # lzma and bz2 keep it inside until asked again.
            if decompressor.needs_input:
                return
            data = b''


class _Buffer(ctypes.Structure):
    """ZSTD_inBuffer and ZSTD_outBuffer have the same layout."""

    _fields_ = [('data', ctypes.c_void_p), ('size', ctypes.c_size_t),
                ('pos', ctypes.c_size_t)]


def _libzstd():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library('zstd') or
                          'libzstd.so.1')
    except OSError as exc:
        raise errors.CommandFailed(
            'zstd images need libzstd (package libzstd1): %s' % exc) from exc
    lib.ZSTD_createDStream.restype = ctypes.c_void_p
    lib.ZSTD_freeDStream.argtypes = [ctypes.c_void_p]
    lib.ZSTD_decompressStream.restype = ctypes.c_size_t
    lib.ZSTD_decompressStream.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(_Buffer), ctypes.POINTER(_Buffer)]
    lib.ZSTD_isError.restype = ctypes.c_uint
    lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
    lib.ZSTD_getErrorName.restype = ctypes.c_char_p
    lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
    return lib


def _zstd(chunks, what):
    lib = _libzstd()
    stream = lib.ZSTD_createDStream()
    if not stream:
        raise MemoryError('ZSTD_createDStream failed')
    output = ctypes.create_string_buffer(OUTPUT_CHUNK)
    out = _Buffer(ctypes.cast(output, ctypes.c_void_p), OUTPUT_CHUNK, 0)
    # 0 once a frame is complete; a hint > 0 while one is under way.
    pending = 1
    try:
        for data in chunks:
            source = _Buffer(ctypes.cast(ctypes.c_char_p(data),
                                         ctypes.c_void_p), len(data), 0)
            # Loop while there is input, or while the output filled up
            # inside a frame (more may be buffered in the decoder); asking
            # again after a frame ended would start an empty next one.
            while source.pos < source.size or (
                    out.pos == OUTPUT_CHUNK and pending):
                out.pos = 0
                pending = lib.ZSTD_decompressStream(stream, out, source)
                if lib.ZSTD_isError(pending):
                    raise errors.ImageDownloadFailed(
                        '%s: corrupt zstd data: %s' % (
                            what, lib.ZSTD_getErrorName(pending).decode()))
                if out.pos:
                    yield ctypes.string_at(output, out.pos)
                elif source.pos == source.size:
                    break
    finally:
        lib.ZSTD_freeDStream(stream)
    if pending:
        raise errors.ImageDownloadFailed(
            '%s: the zstd stream ends early (truncated image)' % what)


def zstd_into(chunks, sink, what='image'):
    """Decode zstd ``chunks`` straight into ``sink.buffer()`` (a
    writable memoryview), telling ``sink.commit(count)`` what arrived.

    :returns: the number of bytes decoded.
    """
    lib = _libzstd()
    stream = lib.ZSTD_createDStream()
    if not stream:
        raise MemoryError('ZSTD_createDStream failed')
    out = _Buffer(None, 0, 0)
    pending, total = 1, 0
    try:
        for data in chunks:
            source = _Buffer(ctypes.cast(ctypes.c_char_p(data),
                                         ctypes.c_void_p), len(data), 0)
            while True:
                free = sink.buffer()
                out.data = ctypes.addressof(ctypes.c_char.from_buffer(free))
                out.size, out.pos = len(free), 0
                pending = lib.ZSTD_decompressStream(stream, out, source)
                del free
                if lib.ZSTD_isError(pending):
                    raise errors.ImageDownloadFailed(
                        '%s: corrupt zstd data: %s' % (
                            what, lib.ZSTD_getErrorName(pending).decode()))
                if out.pos:
                    total += out.pos
                    sink.commit(out.pos)
                # Input used up, and the decoder holds nothing back (it
                # did not fill the buffer, or a frame just ended): asking
                # again after a frame ended would start an empty next one.
                if source.pos == source.size and (
                        out.pos < out.size or not pending):
                    break
    finally:
        lib.ZSTD_freeDStream(stream)
    if pending:
        raise errors.ImageDownloadFailed(
            '%s: the zstd stream ends early (truncated image)' % what)
    return total
