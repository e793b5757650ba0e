"""Sizes as operators write them in a scheme, and their meaning in bytes.

Units are case-sensitive and exactly these: B; binary KiB, MiB, GiB, TiB
(powers of 1024); decimal KB, MB, GB, TB (powers of 1000). A size is also
``N%`` of its container, or ``remaining``.
"""

import dataclasses
import math
import re

MiB = 1024 ** 2

UNITS = {
    'B': 1,
    'KiB': 1024, 'MiB': 1024 ** 2, 'GiB': 1024 ** 3, 'TiB': 1024 ** 4,
    'KB': 1000, 'MB': 1000 ** 2, 'GB': 1000 ** 3, 'TB': 1000 ** 4,
}

_SIZE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+|%)\s*$')


class SizeError(ValueError):
    """A size string that cannot be understood; the message says why."""


@dataclasses.dataclass(frozen=True)
class Size:
    """A parsed size: ``kind`` is 'bytes', 'percent' or 'remaining'."""

    kind: str
    value: float = 0

    @property
    def is_remaining(self):
        return self.kind == 'remaining'

    def resolve_mib(self, container_mib):
        """Size in whole MiB inside a container of ``container_mib``.

        Fixed sizes round up to the next MiB (a partition never ends up
        smaller than asked); percentages round down (never more than the
        container). ``remaining`` cannot be resolved alone.
        """
        if self.kind == 'bytes':
            return -(-int(self.value) // MiB)
        if self.kind == 'percent':
            return int(container_mib * self.value / 100)
        raise SizeError('"remaining" depends on its siblings')

    def __str__(self):
        if self.kind == 'remaining':
            return 'remaining'
        if self.kind == 'percent':
            return '%g%%' % self.value
        return '%d B' % self.value


REMAINING = Size('remaining')


def parse_size(text):
    """Parse '10 GiB', '512MiB', '25%' or 'remaining' into a :class:`Size`."""
    if not isinstance(text, str):
        raise SizeError('a size must be a string such as "10 GiB", "50%%" or '
                        '"remaining", not %r' % (text,))
    if text.strip() == 'remaining':
        return REMAINING
    match = _SIZE_RE.match(text)
    if not match:
        raise SizeError('%r is not a size: write a number and a unit (%s), '
                        'a percentage such as "50%%", or "remaining"'
                        % (text, ', '.join(UNITS)))
    number, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(number):
        # float() turns hundreds of digits into inf, which int() rejects.
        raise SizeError('%r: the number is too large' % text[:40])
    if unit == '%':
        if not 0 < number <= 100:
            raise SizeError('%r: a percentage must be above 0 and at most 100'
                            % text)
        return Size('percent', number)
    if unit not in UNITS:
        raise SizeError('%r: unknown unit %r; units are case-sensitive: %s'
                        % (text, unit, ', '.join(UNITS)))
    size_bytes = int(number * UNITS[unit])
    if size_bytes <= 0:
        raise SizeError('%r: a size must be above zero' % text)
    return Size('bytes', size_bytes)


def mib_to_human(mib):
    """Short human form of a MiB count, for plans and error messages."""
    if mib >= 1024 and mib % 1024 == 0:
        return '%d GiB' % (mib // 1024)
    if mib >= 1024:
        return '%.1f GiB' % (mib / 1024)
    return '%d MiB' % mib
