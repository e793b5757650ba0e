"""What an initramfs holds, read as data: nothing from the image runs.

The target step asks whether the image's own initramfs can assemble the
root's RAID or LVM, so that it rebuilds one only when needed (a rebuild
under QEMU without acceleration takes minutes). An initramfs is one or
more ``newc`` cpio archives one after the other: an uncompressed early
one (CPU microcode) may come first, then usually one compressed with
gzip, xz, zstd or bzip2 whose data holds one or more archives again,
NUL padding between them. Compression this agent cannot read (lz4,
lzma, lzop) makes the initramfs :class:`Unreadable`; the caller then
rebuilds.
"""

import os
import posixpath
import stat

from fa_agent import errors
from fa_agent.images import decompress

CHUNK = 1024 * 1024
_NEWC = (b'070701', b'070702')
_HEADER = 110
_TRAILER = 'TRAILER!!!'
# Small files whose text a check may read (mdadm.conf, modules.builtin).
FILE_LIMIT = 4 * 1024 * 1024
_OTHER_MAGIC = (('lz4', b'\x02\x21\x4c\x18'), ('lz4', b'\x04\x22\x4d\x18'),
                ('lzop', b'\x89LZO'), ('lzma', b'\x5d\x00\x00'))


class Unreadable(Exception):
    """The initramfs is in a form this module does not read."""


class Contents:
    """Names (``usr/sbin/mdadm``: no leading ``/`` or ``./``), symlink
    targets and the data of the files a caller asked for."""

    def __init__(self):
        self.names = set()
        self.symlinks = {}
        self.files = {}

    def resolve(self, name):
        """``name`` with symlinked directories on its way followed
        (``sbin/mdadm`` -> ``usr/sbin/mdadm`` on merged /usr)."""
        parts = [p for p in name.split('/') if p not in ('', '.')]
        done = []
        hops = 0
        while parts:
            part = parts.pop(0)
            here = '/'.join(done + [part])
            target = self.symlinks.get(here)
            if target is not None and parts and hops < 40:
                hops += 1
                base = [] if target.startswith('/') else done
                joined = posixpath.normpath('/'.join(base + [target]))
                parts = [p for p in joined.split('/')
                         if p not in ('', '.')] + parts
                done = []
                continue
            done.append(part)
        return '/'.join(done)

    def has(self, name):
        return self.resolve(name) in self.names

    def text(self, name):
        """The text of file ``name``, None when absent or not read."""
        data = self.files.get(self.resolve(name))
        return None if data is None else data.decode('utf-8', 'replace')


def _normal(name):
    while name.startswith(('./', '/')):
        name = name[2:] if name.startswith('./') else name[1:]
    return name.rstrip('/')


class _Stream:
    """Bytes from an iterator of chunks, read, skipped or peeked at (an
    offset into the current chunk: no copy of what is skipped)."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buf = b''
        self._pos = 0

    def _fill(self, size):
        """At least ``size`` bytes buffered; False at the end first."""
        if len(self._buf) - self._pos >= size:
            return True
        pieces = [self._buf[self._pos:]]
        have = len(pieces[0])
        while have < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            pieces.append(chunk)
            have += len(chunk)
        self._buf, self._pos = b''.join(pieces), 0
        return have >= size

    def peek(self, size):
        self._fill(size)
        return self._buf[self._pos:self._pos + size]

    def read(self, size, what):
        if not self._fill(size):
            raise Unreadable('truncated cpio archive (in %s)' % what)
        data = self._buf[self._pos:self._pos + size]
        self._pos += size
        return data

    def skip(self, size, what):
        while size > len(self._buf) - self._pos:
            size -= len(self._buf) - self._pos
            self._buf, self._pos = next(self._chunks, None), 0
            if self._buf is None:
                self._buf = b''
                raise Unreadable('truncated cpio archive (in %s)' % what)
        self._pos += size

    def skip_nuls(self):
        """Drop NUL padding; False at the end of the data."""
        while True:
            rest = self._buf[self._pos:]
            self._pos += len(rest) - len(rest.lstrip(b'\0'))
            if self._pos < len(self._buf):
                return True
            self._buf, self._pos = next(self._chunks, None), 0
            if self._buf is None:
                self._buf = b''
                return False

    def rest(self):
        if self._pos < len(self._buf):
            yield self._buf[self._pos:]
        self._buf, self._pos = b'', 0
        yield from self._chunks


def _pad(size):
    return (4 - size % 4) % 4


def _archive(stream, contents, wanted):
    """Read one cpio archive, up to and with its trailer."""
    while True:
        header = stream.read(_HEADER, 'a header')
        if header[:6] not in _NEWC:
            raise Unreadable('not a newc cpio header: %r' % header[:6])
        try:
            fields = [int(header[6 + 8 * i:14 + 8 * i], 16)
                      for i in range(13)]
        except ValueError:
            raise Unreadable('a cpio header with non-hex fields') from None
        mode, size, name_size = fields[1], fields[6], fields[11]
        raw = stream.read(name_size, 'a name')
        stream.skip(_pad(_HEADER + name_size), 'a name')
        name = _normal(raw.rstrip(b'\0').decode('utf-8', 'surrogateescape'))
        if name == _TRAILER:
            stream.skip(size + _pad(size), 'the trailer')
            return
        if name:
            contents.names.add(name)
        if stat.S_ISLNK(mode) and size < 4096:
            contents.symlinks[name] = stream.read(size, name).decode(
                'utf-8', 'surrogateescape')
            stream.skip(_pad(size), name)
        elif stat.S_ISREG(mode) and size <= FILE_LIMIT and wanted(name):
            contents.files[name] = stream.read(size, name)
            stream.skip(_pad(size), name)
        else:
            stream.skip(size + _pad(size), name)


def _archives(stream, contents, wanted):
    """Read archives while the data holds any; return at the first thing
    that is none (compressed data), with the stream there."""
    while stream.skip_nuls() and stream.peek(6) in _NEWC:
        _archive(stream, contents, wanted)


def read(chunks, wanted=lambda name: False):
    """The :class:`Contents` of the initramfs whose bytes ``chunks``
    yields; ``wanted(name)`` picks the files whose data is kept.

    :raises Unreadable: the data is no initramfs this module reads.
    """
    contents = Contents()
    stream = _Stream(chunks)
    _archives(stream, contents, wanted)
    head = stream.peek(8)
    if not head:
        return contents
    kind = decompress.detect(head)
    if kind == 'none':
        other = next((n for n, magic in _OTHER_MAGIC
                      if head.startswith(magic)), None)
        raise Unreadable('%s-compressed data, which the agent does not read'
                         % other if other else
                         'neither cpio nor compressed data at the start '
                         '(%s)' % head.hex())
    try:
        inner = _Stream(decompress.decompress(kind, stream.rest(),
                                              'the initramfs'))
        _archives(inner, contents, wanted)
        if inner.skip_nuls():
            raise Unreadable('data after the %s archives that is no cpio '
                             'archive' % kind)
    except errors.ProvisionError as exc:
        # Corrupt or truncated data; libzstd missing.
        raise Unreadable(str(exc)) from None
    return contents


def read_file(fd, wanted=lambda name: False):
    """:func:`read` of an open file descriptor (closed afterwards)."""
    def chunks():
        while True:
            data = os.read(fd, CHUNK)
            if not data:
                return
            yield data
    try:
        return read(chunks(), wanted)
    except OSError as exc:
        raise Unreadable(str(exc)) from None
    finally:
        os.close(fd)
