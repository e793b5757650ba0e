"""The disks of a node, from ``lsblk --json --bytes`` or Ironic inspection
data, in one shape the matcher and planner understand."""

import dataclasses
from typing import Optional

LSBLK_COLUMNS = 'NAME,PATH,SIZE,TYPE,ROTA,SERIAL,WWN,VENDOR,MODEL,HCTL,RO'
# lsblk types that can hold a scheme's disk; loop devices are accepted so
# that functional tests (and operators) can target files.
DISK_TYPES = ('disk', 'loop')


class InventoryError(ValueError):
    """The disk inventory has an unexpected shape; the message says where."""


def _list_of_objects(document, key, where):
    items = document.get(key, [])
    if not isinstance(items, list):
        raise InventoryError('%s.%s must be a list' % (where, key))
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise InventoryError('%s.%s[%d] must be an object'
                                 % (where, key, n))
    return items


def _size(value, where):
    try:
        size = int(value or 0)
    except (TypeError, ValueError):
        raise InventoryError('%s.size must be a byte count, not %r'
                             % (where, value)) from None
    if size < 0:
        raise InventoryError('%s.size cannot be negative' % where)
    return size


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


def from_lsblk(document, by_path=None, extra=None, include_read_only=False):
    """Disks listed by ``lsblk --json --bytes -o LSBLK_COLUMNS``.

    ``by_path`` maps a device name to its /dev/disk/by-path link, which
    lsblk does not report (the agent reads it from udev). ``extra`` maps a
    device name to hint fields read elsewhere (udev's ``ID_WWN*``,
    ``ID_SERIAL_SHORT``, sysfs' HCTL); those that are set win over
    lsblk's, as in ironic-python-agent's inventory. Read-only disks
    are left out unless ``include_read_only`` (cleaning must see them to
    report them).
    """
    by_path = by_path or {}
    extra = extra or {}
    disks = []
    devices = _list_of_objects(document, 'blockdevices', '$')
    for n, dev in enumerate(devices):
        if dev.get('type') not in DISK_TYPES or (
                _as_bool(dev.get('ro')) and not include_read_only):
            continue
        where = '$.blockdevices[%d]' % n
        name = dev.get('path') or dev.get('name')
        if not isinstance(name, str) or not name:
            raise InventoryError('%s has neither "path" nor "name"' % where)
        name = name if name.startswith('/dev/') else '/dev/' + name
        size = _size(dev.get('size'), where)
        if not size:
            continue
        values = dict(
            name=name, size=size,
            rotational=_as_bool(dev.get('rota')),
            serial=_clean(dev.get('serial')), wwn=_clean(dev.get('wwn')),
            vendor=_clean(dev.get('vendor')), model=_clean(dev.get('model')),
            hctl=_clean(dev.get('hctl')), by_path=by_path.get(name))
        for key, value in (extra.get(name) or {}).items():
            if key in _EXTRA_FIELDS and _clean(value) is not None:
                values[key] = _clean(value)
        disks.append(BlockDevice(**values))
    return disks


# Fields ``from_lsblk`` takes from ``extra``.
_EXTRA_FIELDS = ('serial', 'wwn', 'wwn_with_extension',
                 'wwn_vendor_extension', 'hctl', 'by_path', 'vendor',
                 'model')


def from_ironic(inventory):
    """Disks from Ironic inspection data (its ``inventory`` or the whole
    introspection document holding one)."""
    where = '$'
    if isinstance(inventory.get('inventory'), dict):
        inventory, where = inventory['inventory'], '$.inventory'
    disks = []
    fields = {f.name for f in dataclasses.fields(BlockDevice)}
    for n, disk in enumerate(_list_of_objects(inventory, 'disks', where)):
        here = '%s.disks[%d]' % (where, n)
        values = {k: _clean(v) for k, v in disk.items() if k in fields}
        values['size'] = _size(values.get('size'), here)
        values['rotational'] = _as_bool(values.get('rotational'))
        name = values.get('name')
        if not isinstance(name, str) or not name:
            raise InventoryError('%s.name is missing' % here)
        values['name'] = name if name.startswith('/dev/') else '/dev/' + name
        disks.append(BlockDevice(**values))
    return disks


def load(document):
    """Disks from either format, told apart by their keys.

    :raises InventoryError: for a document of neither shape.
    """
    if not isinstance(document, dict) or not (
            'blockdevices' in document or 'disks' in document or
            isinstance(document.get('inventory'), dict)):
        raise InventoryError('a disk inventory is lsblk JSON (with '
                             '"blockdevices") or Ironic inspection data '
                             '(with "disks" or "inventory")')
    if 'blockdevices' in document:
        return from_lsblk(document)
    return from_ironic(document)
