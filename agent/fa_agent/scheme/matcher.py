"""Disk matchers read the way Ironic reads root device hints.

Operators know Ironic's hints (``properties.root_device``), and the
conductor's default layout hands them over as they are, so a ``match``
must pick the disk Ironic 39's ``ironic.common.utils.
match_root_device_hints`` would pick. The ramdisk has no Ironic, so the
rules are restated here on oslo.utils' ``specs_matcher``:

- text hints (all but ``size`` and ``rotational``): the expression and
  the disk's value are stripped and lower-cased, each value between the
  operators is URL-quoted (so values may hold spaces), and no operator
  means ``s==``; a disk whose value is empty does not match;
- ``size``: GiB, compared with the disk's exact size in GiB (bytes /
  2**30, not rounded), values positive whole numbers, no operator means
  ``==``;
- ``rotational``: a boolean.

A disk without a value for a text hint compares as the text ``none``,
as in Ironic (so ``"s!= X"`` holds for it); an empty value matches
nothing. One addition, where Ironic would match no disk at all: a
``name`` without a directory (``sda``) means ``/dev/sda``.
Operators that cannot work on a hint (``<all-in>`` anywhere, ``<or>`` or
``s==`` on ``size``, numeric comparisons of text) are refused by
:func:`problems`, where Ironic would match nothing or fail.
"""

import math
import re
import urllib.parse

from oslo_utils import specs_matcher
from oslo_utils import strutils

GiB = 1024 ** 3
HINT_TYPES = {
    'name': str, 'by_path': str, 'serial': str, 'wwn': str,
    'wwn_with_extension': str, 'wwn_vendor_extension': str,
    'vendor': str, 'model': str, 'hctl': str, 'size': int,
    'rotational': bool,
}
_NUMERIC_OPS = ('==', '=', '!=', '>=', '>', '<=', '<')
_TEXT_OPS = ('s==', 's!=', 's>=', 's>', 's<=', 's<', '<in>', '<or>')
_SIZE_OPS = _NUMERIC_OPS + ('<range-in>',)
# Values of these operators are device names to complete with /dev/.
_NAME_OPS = ('', 's==', 's!=', '<or>')
# What a kernel device name looks like (lower-cased): /dev/... paths, or
# short names such as sda, nvme0n1, vdb, md0, cciss!c0d0.
_KERNEL_NAME = re.compile(r'^(/dev/\S+|[a-z][a-z0-9!_-]*)$')
_GRAMMAR = specs_matcher.make_grammar()
# pyparsing 3 names it parse_string; older ones only parseString.
_PARSE = getattr(_GRAMMAR, 'parse_string', None) or _GRAMMAR.parseString


class HintError(ValueError):
    """A hint Ironic would refuse or could never match; says why."""


def _split(expression, hint):
    """(operator or '', [values]) of an expression, lower-cased."""
    text = str(expression).strip().lower()
    if not text:
        raise HintError('%s: the hint is empty' % hint)
    try:
        tokens = _PARSE(text)
    except Exception:
        # pyparsing's ParseException: an operator without a value.
        raise HintError('%s: %r is not a hint expression (an operator '
                        'needs a value after it)' % (hint, expression))
    if len(tokens) <= 1:
        return '', [text]
    op = tokens[0]
    # None of the operators is special in a regular expression, so this
    # splits as Ironic's re.split does.
    return op, [v.strip() for v in text.split(op) if v]


def _normalise(expression, hint):
    """(operator, text) of a text expression or a disk's value, Ironic's
    way: lower-cased, each value URL-quoted."""
    op, values = _split(expression, hint)
    if hint == 'name' and op in _NAME_OPS:
        values = [v if v.startswith('/') else '/dev/' + v for v in values]
    quoted = op.join(' %s ' % urllib.parse.quote(v) for v in values)
    return op, (op + quoted).strip()


def _size(expression):
    op, values = _split(expression, 'size')
    if op not in ('',) + _SIZE_OPS:
        raise HintError('size: the %s operator cannot compare sizes (use '
                        'one of %s or <range-in>)'
                        % (op, ', '.join(_NUMERIC_OPS)))
    if op == '<range-in>':
        return str(expression).strip()
    for value in values:
        try:
            number = int(value)
        except ValueError:
            raise HintError('size: %r is not a whole number of GiB'
                            % value)
        if number <= 0:
            raise HintError('size: %r must be a positive number of GiB'
                            % value)
    text = str(expression).strip()
    return text if op else '== ' + text


def parse_hint(hint, expression):
    """The hint in the form the matcher compares: a normalised spec
    string, or a bool for ``rotational``.

    :raises HintError: for a hint Ironic would refuse or never match.
    """
    kind = HINT_TYPES.get(hint)
    if kind is None:
        raise HintError('%s: not a disk hint (one of %s)'
                        % (hint, ', '.join(sorted(HINT_TYPES))))
    if kind is bool:
        try:
            return strutils.bool_from_string(expression, strict=True)
        except ValueError:
            raise HintError('rotational: %r is not a boolean' % expression)
    if isinstance(expression, bool) or not isinstance(expression,
                                                      (str, int)):
        raise HintError('%s: %r is not a string or a number'
                        % (hint, expression))
    if kind is int:
        return _size(expression)
    op, values = _split(expression, hint)
    if hint == 'name' and op in _NAME_OPS:
        for value in values:
            if not _KERNEL_NAME.match(value):
                raise HintError(
                    'name: %r is not a kernel device name (/dev/sda, sdb, '
                    '/dev/disk/by-path/...): a BMC\'s or Redfish\'s disk '
                    'name (e.g. "Disk.Bay.0" or "Solid State Disk 0:1:0") '
                    'is not one and never matches in the ramdisk; match by '
                    'serial, wwn or by_path instead' % value)
    if op and op not in _TEXT_OPS:
        raise HintError('%s: the %s operator does not work on text (use '
                        'one of %s, or no operator)'
                        % (hint, op, ', '.join(_TEXT_OPS)))
    op, text = _normalise(expression, hint)
    return text if op else 's== ' + text


def problems(match):
    """Every hint of a ``match`` object that cannot work, as
    (hint, reason) pairs; an empty list when all can."""
    found = []
    for hint, expression in sorted(match.items()):
        try:
            parse_hint(hint, expression)
        except HintError as exc:
            found.append((hint, str(exc).split(': ', 1)[-1]))
    return found


def plain_value(hint, expression):
    """The value of an operator-free text hint as written (stripped),
    else None: what a stand-in disk can carry to satisfy it."""
    if HINT_TYPES.get(hint) is not str or not isinstance(expression, str):
        return None
    try:
        op, _values = _split(expression, hint)
    except HintError:
        return None
    return None if op else expression.strip()


def _device_value(device, hint):
    """The disk's value as Ironic compares it, or None: no match."""
    value = getattr(device, hint, None)
    kind = HINT_TYPES[hint]
    if kind is int:
        return None if value is None else value / GiB
    if kind is bool:
        try:
            return strutils.bool_from_string(value, strict=True)
        except ValueError:
            return None
    # Ironic reads a missing text value as str(None); an empty one
    # matches nothing.
    value = str(value).strip()
    if not value:
        return None
    try:
        return _normalise(value, hint)[1]
    except HintError:
        return None


def hint_matches(device, hint, spec):
    """Whether a parsed hint (see :func:`parse_hint`) holds for a
    device."""
    actual = _device_value(device, hint)
    if actual is None:
        return False
    kind = HINT_TYPES[hint]
    if kind is bool:
        return actual == spec
    if kind is int:
        if spec.startswith('<range-in>'):
            actual = str(actual)
        elif not math.isfinite(actual):
            return False
    try:
        return bool(specs_matcher.match(actual, spec))
    except (ValueError, TypeError, SyntaxError):
        return False


def matching(devices, match):
    """The devices for which every hint in ``match`` holds; none when a
    hint cannot work (the validator reports why)."""
    try:
        specs = {hint: parse_hint(hint, value)
                 for hint, value in match.items()}
    except HintError:
        return []
    return [d for d in devices
            if all(hint_matches(d, h, s) for h, s in specs.items())]
