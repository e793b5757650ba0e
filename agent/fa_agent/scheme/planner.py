"""Resolves a valid scheme against a node's disks into absolute sizes.

Everything is in MiB and aligned to 1 MiB: the first partition starts at
1 MiB, gpt keeps its last MiB free for the backup table. RAID and LVM
sizes are conservative estimates (md superblock and data offset, LVM
metadata and 4 MiB extents), so a plan that fits here fits on the node.
The agent's dry run and the driver's fit check both use this.
"""

import dataclasses
from typing import Optional

from fa_agent.scheme import matcher
from fa_agent.scheme import units
from fa_agent.scheme import validator

MiB = units.MiB
EXTENT_MIB = 4
LVM_METADATA_MIB = 1
# An msdos table stores 32-bit sector numbers: 2 TiB with 512 B sectors.
MSDOS_LIMIT_MIB = 2 * 1024 * 1024
# Smallest device each mkfs accepts (measured with Debian bookworm's
# xfsprogs 6.1 and btrfs-progs 6.2); others make file systems of a few MiB.
MIN_FS_MIB = {'xfs': 300, 'btrfs': 109}
RAID_DATA_SIZE = {0: lambda n: n, 1: lambda n: 1, 5: lambda n: n - 1,
                  6: lambda n: n - 2, 10: lambda n: n / 2}


class PlanError(ValueError):
    """The scheme does not fit these disks; ``errors`` lists every reason."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__('the scheme cannot be laid out on these disks:\n' +
                         '\n'.join('  ' + str(e) for e in self.errors))


def md_overhead_mib(member_mib, metadata):
    """MiB an md superblock and data offset take from each member (an
    upper bound of what mdadm reserves)."""
    if metadata in ('0.90', '1.0'):
        return 1
    return min(130, max(2, member_mib // 128 + 2))


def partition_path(device_path, number):
    """/dev/sda + 1 -> /dev/sda1; /dev/nvme0n1 or /dev/loop0 -> ...p1."""
    separator = 'p' if device_path[-1].isdigit() else ''
    return '%s%s%d' % (device_path, separator, number)


@dataclasses.dataclass
class PlannedDevice:
    """One block device of the plan with its resolved path and size."""

    id: str
    type: str
    path: str
    size_mib: int
    start_mib: Optional[int] = None
    end_mib: Optional[int] = None
    number: Optional[int] = None
    parent_path: Optional[str] = None
    grows: bool = False

    def to_dict(self):
        return {k: v for k, v in dataclasses.asdict(self).items()
                if v is not None and v is not False}


@dataclasses.dataclass
class Plan:
    """A scheme with every device resolved to a path and a size."""

    scheme: object
    devices: dict
    disks: dict

    def path(self, obj_id):
        return self.devices[obj_id].path

    def to_dict(self):
        return {'devices': [self.devices[o.id].to_dict()
                            for o in self.scheme.storage
                            if o.id in self.devices]}

    def to_text(self):
        lines = ['%-16s %-15s %-22s %12s  %s' % ('ID', 'TYPE', 'PATH', 'SIZE',
                                                  'PLACEMENT')]
        for obj in self.scheme.storage:
            dev = self.devices.get(obj.id)
            if dev is None:
                continue
            place = ''
            if dev.start_mib is not None:
                place = '%s MiB %d..%d' % (dev.parent_path, dev.start_mib,
                                           dev.end_mib)
            elif obj.type == 'filesystem':
                place = '%s %s' % (obj.fstype, obj.mount_point or '')
            size = units.mib_to_human(dev.size_mib)
            lines.append('%-16s %-15s %-22s %12s  %s' % (
                obj.id, obj.type, dev.path, size, place.strip()))
        return '\n'.join(lines)


class _Planner:
    def __init__(self, scheme, devices):
        self.scheme = scheme
        self.inventory = devices
        self.by_id = scheme.by_id
        self.paths = {o.id: '$.storage[%d]' % i
                      for i, o in enumerate(scheme.storage)}
        self.errors = []
        self.devices = {}
        self.disks = {}

    def error(self, path, message):
        self.errors.append(validator.SchemeError(path, message))

    def run(self):
        self.match_disks()
        if self.errors:
            return
        for obj in self.scheme.storage:
            self.resolve(obj.id)

    def match_disks(self):
        taken = {}
        for disk in self.scheme.of_type('disk'):
            path = self.paths[disk.id] + '.match'
            found = matcher.matching(self.inventory, disk.match)
            if not found:
                self.error(path, 'matcher %s of disk %r hits no disk; the '
                           'node has: %s' % (
                               _show(disk.match), disk.id,
                               ', '.join(d.describe() for d in self.inventory)
                               or 'no disks'))
            elif len(found) > 1:
                self.error(path, 'matcher %s of disk %r hits %d disks (%s); '
                           'add hints so it hits exactly one' % (
                               _show(disk.match), disk.id, len(found),
                               ', '.join(d.name for d in found)))
            elif found[0].name in taken:
                self.error(path, 'disk %r matches %s, which disk %r already '
                           'took' % (disk.id, found[0].name,
                                     taken[found[0].name]))
            else:
                taken[found[0].name] = disk.id
                self.disks[disk.id] = found[0]

    def resolve(self, obj_id):
        """Resolve ``obj_id`` and everything under it; None if it cannot."""
        if obj_id in self.devices:
            return self.devices[obj_id]
        obj = self.by_id[obj_id]
        handler = getattr(self, '_resolve_' + obj.type)
        result = handler(obj)
        if result is not None:
            self.devices[obj_id] = result
        return result

    def _resolve_disk(self, disk):
        device = self.disks[disk.id]
        if device.size < MiB:
            self.error(self.paths[disk.id], 'disk %r (%s) is smaller than '
                       '1 MiB' % (disk.id, device.name))
            return None
        return PlannedDevice(disk.id, 'disk', device.name, device.size // MiB)

    def _resolve_partition(self, part):
        container = self.resolve(part.device)
        if container is None:
            return None
        self._layout_partitions(self.by_id[part.device], container)
        return self.devices.get(part.id)

    def _layout_partitions(self, container_obj, container):
        parts = self.scheme.partitions_on(container_obj.id)
        table = getattr(container_obj, 'table', None) or 'gpt'
        first = 1
        last = container.size_mib - (1 if table == 'gpt' else 0)
        usable = last - first
        if usable < 1:
            self.error(self.paths[container_obj.id], '%s (%s) is too small '
                       'for a partition table' % (
                           container.path, units.mib_to_human(
                               max(container.size_mib, 0))))
            return
        sizes = {p.id: (None if p.size_spec.is_remaining
                        else p.size_spec.resolve_mib(usable)) for p in parts}
        fixed = sum(s for s in sizes.values() if s is not None)
        for part in parts:
            if sizes[part.id] == 0:
                self.error(self.paths[part.id] + '.size', '%s of %s is less '
                           'than 1 MiB' % (part.size,
                                            units.mib_to_human(usable)))
                return
        for part in parts:
            if sizes[part.id] is None:
                sizes[part.id] = usable - fixed
                if sizes[part.id] < 1:
                    self.error(self.paths[part.id] + '.size', 'nothing '
                               'remains for %r on %r: the other partitions '
                               'take %s of %s' % (
                                   part.id, container_obj.id,
                                   units.mib_to_human(fixed),
                                   units.mib_to_human(usable)))
                    return
        if fixed > usable:
            self.error(self.paths[container_obj.id], 'the partitions on %r '
                       'need %s but %s (%s) has %s usable' % (
                           container_obj.id, units.mib_to_human(fixed),
                           container.path, container_obj.type,
                           units.mib_to_human(usable)))
            return
        start = first
        for number, part in enumerate(parts, 1):
            size = sizes[part.id]
            if table == 'msdos' and start + size > MSDOS_LIMIT_MIB:
                self.error(self.paths[part.id], 'partition %r would end at '
                           '%s, past the 2 TiB an msdos table can address; '
                           'use "table": "gpt"' % (
                               part.id, units.mib_to_human(start + size)))
                return
            self.devices[part.id] = PlannedDevice(
                part.id, 'partition', partition_path(container.path, number),
                size, start_mib=start, end_mib=start + size, number=number,
                parent_path=container.path,
                grows=part.size_spec.is_remaining)
            start += size

    def _resolve_raid(self, raid):
        members = [self.resolve(d) for d in raid.devices]
        spares = [self.resolve(d) for d in raid.spares]
        if any(m is None for m in members + spares):
            return None
        smallest = min(m.size_mib for m in members + spares)
        per_member = smallest - md_overhead_mib(smallest, raid.metadata)
        size = int(per_member * RAID_DATA_SIZE[raid.level](len(members)))
        if size < 1:
            self.error(self.paths[raid.id], 'the members of %r (smallest: '
                       '%s) are too small for md metadata' % (
                           raid.id, units.mib_to_human(max(smallest, 0))))
            return None
        return PlannedDevice(raid.id, 'raid', '/dev/md/' + raid.md_name, size)

    def _resolve_volume_group(self, vg):
        pvs = [self.resolve(d) for d in vg.devices]
        if any(pv is None for pv in pvs):
            return None
        extents = sum((pv.size_mib - LVM_METADATA_MIB) // EXTENT_MIB
                      for pv in pvs)
        if extents < 1:
            self.error(self.paths[vg.id], 'the physical volumes of %r are '
                       'too small to hold one %d MiB extent' % (
                           vg.id, EXTENT_MIB))
            return None
        return PlannedDevice(vg.id, 'volume_group', '/dev/' + vg.name,
                             extents * EXTENT_MIB)

    def _resolve_logical_volume(self, lv):
        vg = self.resolve(lv.volume_group)
        if vg is None:
            return None
        lvs = self.scheme.logical_volumes_in(lv.volume_group)

        def extents_of(item):
            spec = item.size_spec
            mib = spec.resolve_mib(vg.size_mib)
            if spec.kind == 'percent':
                # Round down, as lvcreate -l N%VG does, so shares that add
                # up to 100% fit.
                return mib // EXTENT_MIB * EXTENT_MIB
            return -(-mib // EXTENT_MIB) * EXTENT_MIB
        fixed = sum(extents_of(x) for x in lvs
                    if not x.size_spec.is_remaining)
        if fixed > vg.size_mib:
            self.error(self.paths[lv.volume_group], 'the logical volumes in '
                       '%r need %s but the volume group holds about %s' % (
                           lv.volume_group, units.mib_to_human(fixed),
                           units.mib_to_human(vg.size_mib)))
            return None
        if lv.size_spec.is_remaining:
            size = vg.size_mib - fixed
            if size < EXTENT_MIB:
                self.error(self.paths[lv.id] + '.size', 'nothing remains for '
                           '%r in %r' % (lv.id, lv.volume_group))
                return None
        else:
            size = extents_of(lv)
            if size < EXTENT_MIB:
                self.error(self.paths[lv.id] + '.size', '%s of %r is less '
                           'than one %d MiB extent' % (
                               lv.size, lv.volume_group, EXTENT_MIB))
                return None
        vg_name = self.by_id[lv.volume_group].name
        return PlannedDevice(lv.id, 'logical_volume',
                             '/dev/%s/%s' % (vg_name, lv.name), size,
                             grows=lv.size_spec.is_remaining)

    def _resolve_filesystem(self, fs):
        device = self.resolve(fs.device)
        if device is None:
            return None
        smallest = MIN_FS_MIB.get(fs.fstype, 0)
        if device.size_mib < smallest:
            self.error(self.paths[fs.id] + '.fstype', '%s needs at least '
                       '%d MiB, but %r is %s' % (
                           fs.fstype, smallest, fs.device,
                           units.mib_to_human(device.size_mib)))
            return None
        return PlannedDevice(fs.id, 'filesystem', device.path, device.size_mib)


def _show(match):
    return ', '.join('%s=%r' % item for item in sorted(match.items()))


def plan(scheme, devices):
    """Resolve ``scheme`` (a valid :class:`model.Scheme`) on ``devices``
    (a list of :class:`inventory.BlockDevice`).

    :raises PlanError: listing every reason it does not fit.
    """
    planner = _Planner(scheme, devices)
    planner.run()
    if planner.errors:
        raise PlanError(sorted(set(planner.errors)))
    return Plan(scheme=scheme, devices=planner.devices, disks=planner.disks)
