"""The disks of a node, from ``lsblk --json --bytes`` or Ironic inspection
data, in one shape the matcher and planner understand."""

import dataclasses
from typing import Optional

LSBLK_COLUMNS = 'NAME,PATH,SIZE,TYPE,ROTA,SERIAL,WWN,VENDOR,MODEL,HCTL,RO'
# lsblk types that can hold a scheme's disk; loop devices are accepted so
# that functional tests (and operators) can target files.
DISK_TYPES = ('disk', 'loop')


@dataclasses.dataclass(frozen=True)
class BlockDevice:
    """A whole disk as hints see it. ``size`` is in bytes."""

    name: str
    size: int
    rotational: Optional[bool] = None
    serial: Optional[str] = None
    wwn: Optional[str] = None
    wwn_with_extension: Optional[str] = None
    wwn_vendor_extension: Optional[str] = None
    vendor: Optional[str] = None
    model: Optional[str] = None
    hctl: Optional[str] = None
    by_path: Optional[str] = None

    def describe(self):
        return '%s (%d GiB%s)' % (self.name, self.size // 1024 ** 3,
                                  ', ' + self.model if self.model else '')


def _clean(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _as_bool(value):
    if value is None or isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('1', 'true', 'yes')


def from_lsblk(document, by_path=None):
    """Disks listed by ``lsblk --json --bytes -o LSBLK_COLUMNS``.

    ``by_path`` maps a device name to its /dev/disk/by-path link, which
    lsblk does not report (the agent reads it from udev).
    """
    by_path = by_path or {}
    disks = []
    for dev in document.get('blockdevices', []):
        if dev.get('type') not in DISK_TYPES or _as_bool(dev.get('ro')):
            continue
        name = dev.get('path') or '/dev/' + dev['name']
        if not dev.get('size'):
            continue
        disks.append(BlockDevice(
            name=name, size=int(dev['size']),
            rotational=_as_bool(dev.get('rota')),
            serial=_clean(dev.get('serial')), wwn=_clean(dev.get('wwn')),
            vendor=_clean(dev.get('vendor')), model=_clean(dev.get('model')),
            hctl=_clean(dev.get('hctl')), by_path=by_path.get(name)))
    return disks


def from_ironic(inventory):
    """Disks from Ironic inspection data (its ``inventory`` or the whole
    introspection document holding one)."""
    inventory = inventory.get('inventory', inventory)
    disks = []
    for disk in inventory.get('disks', []):
        fields = {f.name for f in dataclasses.fields(BlockDevice)}
        values = {k: _clean(v) for k, v in disk.items() if k in fields}
        values['size'] = int(values.get('size') or 0)
        values['rotational'] = _as_bool(values.get('rotational'))
        name = values.get('name') or ''
        values['name'] = name if name.startswith('/dev/') else '/dev/' + name
        disks.append(BlockDevice(**values))
    return disks


def load(document):
    """Disks from either format, told apart by their keys."""
    if 'blockdevices' in document:
        return from_lsblk(document)
    return from_ironic(document)
