"""What is on the node's disks right now, read without writing anything.

Disks come from ``lsblk`` JSON plus the udev by-path link (which lsblk
does not report); existing partition tables from ``parted -m``; file
system and RAID signatures from ``blkid -p`` (a low-level probe, so no
stale cache). Every read goes through a runner, so tests script it.
"""

import dataclasses
import json
import os

from fa_agent.scheme import inventory

BY_PATH_DIR = '/dev/disk/by-path/'


def _json(text):
    return json.loads(text) if text.strip() else {'blockdevices': []}


def _flatten(devices):
    for dev in devices:
        yield dev
        yield from _flatten(dev.get('children') or [])


# udev properties read for each disk, and the hint each fills: the same
# sources ironic-python-agent uses, so a hint copied from its inventory
# (or from Ironic's inspection data, which this agent also reports) means
# the same disk here.
UDEV_FIELDS = (('ID_WWN', 'wwn'),
               ('ID_WWN_WITH_EXTENSION', 'wwn_with_extension'),
               ('ID_WWN_VENDOR_EXTENSION', 'wwn_vendor_extension'),
               ('ID_SERIAL_SHORT', 'serial'))


def udev_properties(runner, name):
    """udev's properties of device ``name`` ({} when udev knows none)."""
    props, _ = runner.execute('udevadm', 'info', '--query=property',
                              '--name=' + name, check_exit_code=(0, 1))
    result = {}
    for line in props.splitlines():
        key, sep, value = line.partition('=')
        if sep and value.strip():
            result[key] = value.strip()
    return result


def _sysfs_hctl(sys_block, name):
    # /sys/block/sda/device/scsi_device/<H:C:T:L>: SCSI, SATA and SAS disks.
    try:
        entries = os.listdir(os.path.join(sys_block, os.path.basename(name),
                                          'device', 'scsi_device'))
    except OSError:
        return None
    return entries[0] if len(entries) == 1 else None


def disks(runner, sys_block='/sys/block', include_read_only=False):
    """Every whole disk as :class:`inventory.BlockDevice` (matchers read
    these), with every hint field the scheme accepts filled where the
    hardware has it; read-only ones only with ``include_read_only``."""
    out, _ = runner.execute('lsblk', '--json', '--bytes', '--nodeps', '-o',
                            inventory.LSBLK_COLUMNS)
    document = _json(out)
    by_path = {}
    extra = {}
    for dev in document['blockdevices']:
        name = dev.get('path') or '/dev/' + dev['name']
        props = udev_properties(runner, name)
        if props.get('ID_PATH'):
            by_path[name] = BY_PATH_DIR + props['ID_PATH']
        fields = {field: props[key] for key, field in UDEV_FIELDS
                  if props.get(key)}
        # Without udev data lsblk's WWN is the kernel's wwid: the whole
        # identifier, i.e. the one "with extension" (equal to the plain
        # WWN when the disk has no vendor extension).
        if 'wwn_with_extension' not in fields and dev.get('wwn'):
            fields['wwn_with_extension'] = dev['wwn']
        if not dev.get('hctl'):
            fields['hctl'] = _sysfs_hctl(sys_block, name)
        extra[name] = fields
    return inventory.from_lsblk(document, by_path=by_path, extra=extra,
                                include_read_only=include_read_only)


def holders(runner, disk_path):
    """Everything built on ``disk_path`` (partitions, md arrays, logical
    volumes) as (path, lsblk type, parent path), deepest first."""
    out, _ = runner.execute('lsblk', '--json', '--bytes', '-o',
                            'NAME,PATH,TYPE,PKNAME', disk_path)
    found = [(d['path'], d['type'], '/dev/' + (d.get('pkname') or ''))
             for d in _flatten(_json(out)['blockdevices'])
             if d['path'] != disk_path]
    return list(reversed(list(dict.fromkeys(found))))


def kernel_partitions(runner, disk_path):
    """The partitions the kernel currently shows on ``disk_path``, as
    sorted (start byte, size bytes) pairs."""
    out, _ = runner.execute('lsblk', '--json', '--bytes', '-o',
                            'PATH,START,SIZE,TYPE', disk_path)
    return sorted((int(d['start']) * 512, int(d['size']))
                  for d in _flatten(_json(out)['blockdevices'])
                  if d['type'] == 'part')


def partition_starting_at(runner, disk_path, start_bytes):
    """Device node of the partition the kernel shows at ``start_bytes``."""
    out, _ = runner.execute('lsblk', '--json', '--bytes', '-o',
                            'PATH,START,SIZE,TYPE', disk_path)
    for dev in _flatten(_json(out)['blockdevices']):
        if dev['type'] == 'part' and int(dev['start']) * 512 == start_bytes:
            return dev['path']
    return None


@dataclasses.dataclass(frozen=True)
class ExistingPartition:
    number: int
    start: int
    end: int  # last byte, inclusive, as parted reports it
    size: int


@dataclasses.dataclass(frozen=True)
class ExistingTable:
    label: str  # 'gpt', 'msdos', or 'unknown' when the disk has none
    partitions: tuple

    def by_number(self, number):
        for part in self.partitions:
            if part.number == number:
                return part
        return None


def table(runner, disk_path):
    """The partition table written on ``disk_path`` (not the kernel's
    view of it)."""
    out, _ = runner.execute('parted', '-s', '-m', disk_path, 'unit', 'B',
                            'print', check_exit_code=(0, 1))
    lines = [line.rstrip(';') for line in out.splitlines()]
    if len(lines) < 2 or lines[0] != 'BYT':
        return ExistingTable('unknown', ())
    label = lines[1].split(':')[5]
    parts = []
    for line in lines[2:]:
        fields = line.split(':')
        if len(fields) < 4 or not fields[0].isdigit():
            continue
        start, end, size = (int(f.rstrip('B')) for f in fields[1:4])
        parts.append(ExistingPartition(int(fields[0]), start, end, size))
    return ExistingTable(label, tuple(parts))


def signature(runner, device_path):
    """blkid's low-level view of a device: TYPE, UUID, LABEL, ... ({}
    when it holds no known signature)."""
    out, _ = runner.execute('blkid', '-p', '-o', 'export', device_path,
                            check_exit_code=(0, 2))
    result = {}
    for line in out.splitlines():
        key, sep, value = line.partition('=')
        if sep:
            result[key] = value
    return result
