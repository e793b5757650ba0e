"""Untrusted JSON, parsed and walked within bounds.

Schemes and agent inputs come from operators, Nova flavors, deploy steps
and Fuel; none of them may make a reader raise or run for minutes. This
module refuses, with the JSON path, documents that are too big, nested
too deep, or hold numbers too long to convert in linear time, before any
recursive code (``json``, ``jsonschema``, ``repr``) sees them.
"""

import json
import math
import reprlib

# A real scheme is a few KiB (Ironic's API refuses bodies over 112 KiB);
# 1 MiB holds thousands of storage objects.
MAX_DOCUMENT_BYTES = 1024 * 1024
# A provision.json may carry a configdrive image (gzip+base64), so the
# agent's whole input may be larger than the scheme inside it.
MAX_INPUT_BYTES = 128 * 1024 * 1024
# Schemes nest 5 levels, Fuel data and provision.json about 8.
MAX_DEPTH = 32
# Longer integers are no sizes or levels, and int<->str is quadratic.
MAX_NUMBER_DIGITS = 100


class DocumentError(ValueError):
    """The document is out of bounds; ``path`` says where."""

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason
        super().__init__('%s: %s' % (path, reason))


def _parse_int(text):
    if len(text.lstrip('-')) > MAX_NUMBER_DIGITS:
        raise ValueError('a number has more than %d digits'
                         % MAX_NUMBER_DIGITS)
    return int(text)


def _parse_float(text):
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError('a number has more than %d digits'
                         % MAX_NUMBER_DIGITS)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError('%s is out of range' % text)
    return value


def _parse_constant(name):
    raise ValueError('%s is not a JSON number' % name)


def loads(text, max_bytes=MAX_DOCUMENT_BYTES):
    """The value of JSON ``text`` (str or bytes), checked by :func:`check`.

    :raises DocumentError: with path ``$`` for unreadable or oversized
        text, or the path of the first value out of bounds.
    """
    if max_bytes is not None and len(text) > max_bytes:
        raise DocumentError('$', 'the document has %d bytes, more than the '
                            '%d allowed' % (len(text), max_bytes))
    try:
        value = json.loads(text, parse_int=_parse_int,
                           parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except RecursionError:
        raise DocumentError('$', 'nested deeper than %d levels'
                            % MAX_DEPTH) from None
    except ValueError as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors too.
        raise DocumentError('$', 'not valid JSON: %s' % exc) from None
    check(value, max_bytes=None)
    return value


def load(stream, max_bytes=MAX_DOCUMENT_BYTES):
    """Like :func:`loads` for a binary or text file object, reading no
    more than ``max_bytes`` + 1 of it."""
    text = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
    return loads(text, max_bytes)


def _path(parts):
    path = '$'
    for part in parts:
        path += '[%d]' % part if isinstance(part, int) else '.%s' % part
    return path


def check(value, max_bytes=MAX_DOCUMENT_BYTES):
    """Walk ``value`` (parsed JSON) without recursion.

    :raises DocumentError: at the first container nested deeper than
        MAX_DEPTH, integer longer than MAX_NUMBER_DIGITS, non-finite
        float, or when its JSON text would exceed ``max_bytes`` (about).
    """
    size = 0
    # (value, depth, parent entry, key): paths are only built for errors.
    stack = [(value, 1, None, None)]
    while stack:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise DocumentError(_path(_parts(entry)), 'nested deeper '
                                    'than %d levels' % MAX_DEPTH)
            size += 2 + len(node)
            if isinstance(node, dict):
                for key, child in node.items():
                    size += len(key) + 3 if isinstance(key, str) else 8
                    stack.append((child, depth + 1, entry, key))
            else:
                for index, child in enumerate(node):
                    stack.append((child, depth + 1, entry, index))
        elif isinstance(node, str):
            size += len(node) + 2
        elif isinstance(node, bool) or node is None:
            size += 5
        elif isinstance(node, int):
            # bit_length()/3.32 digits; no str() of a huge number.
            if node.bit_length() > MAX_NUMBER_DIGITS * 3.32:
                raise DocumentError(_path(_parts(entry)), 'a number with '
                                    'more than %d digits' % MAX_NUMBER_DIGITS)
            size += 1 + node.bit_length() // 3
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise DocumentError(_path(_parts(entry)), '%s is not a JSON '
                                    'number' % node)
            size += 24
        if max_bytes is not None and size > max_bytes:
            raise DocumentError('$', 'the document has more than the %d '
                                'bytes allowed' % max_bytes)


def _parts(entry):
    parts = []
    while entry[2] is not None:
        parts.append(entry[3])
        entry = entry[2]
    return parts[::-1]


class _ShortRepr(reprlib.Repr):
    def __init__(self):
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = 60
        self.maxdict = self.maxlist = 6

    def repr_int(self, x, level):
        if x.bit_length() > 200:
            return '<a %d-bit number>' % x.bit_length()
        return super().repr_int(x, level)


_SHORT = _ShortRepr()


def short_repr(value):
    """``repr(value)`` cut to a line, for messages that quote input."""
    try:
        return _SHORT.repr(value)
    except (RecursionError, ValueError):
        return '<%s>' % type(value).__name__
