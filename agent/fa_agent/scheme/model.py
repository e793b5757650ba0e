"""The scheme as Python objects: a flat list of typed storage objects that
refer to each other by id (disks, partitions, RAID arrays, volume groups,
logical volumes, file systems), plus images, the configdrive and the
bootloader.

Objects are built from documents that already passed validation; use
:func:`fa_agent.scheme.validator.load` for untrusted input.
"""

import collections
import dataclasses
import functools
from typing import Optional

from fa_agent.scheme import units


def _drop_defaults(obj):
    """Dict of a dataclass without fields still at their default value,
    so serialised schemes stay as short as the ones operators write."""
    result = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        default = field.default
        if default is dataclasses.MISSING and \
                field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        # type and id always appear, so a stored object says what it is;
        # an unset optional id (as on images) is left out like any default.
        if value == default and (field.name not in ('type', 'id') or
                                 value is None):
            continue
        if isinstance(value, tuple):
            value = list(value)
        elif dataclasses.is_dataclass(value):
            value = value.to_dict()
        result[field.name] = value
    return result


class _Serialisable:
    def to_dict(self):
        return _drop_defaults(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.items() if k in names}
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class Disk(_Serialisable):
    """A physical disk chosen by root-device-hint style matchers."""

    id: str
    match: dict
    table: Optional[str] = None
    keep_data: bool = False
    type: str = 'disk'

    def __hash__(self):
        return hash(self.id)


@dataclasses.dataclass(frozen=True)
class Partition(_Serialisable):
    """A partition on a disk or on a RAID array, in the order listed."""

    id: str
    device: str
    size: str
    flags: tuple = ()
    name: Optional[str] = None
    type_guid: Optional[str] = None
    keep_data: bool = False
    type: str = 'partition'

    @property
    def size_spec(self):
        return units.parse_size(self.size)


@dataclasses.dataclass(frozen=True)
class Raid(_Serialisable):
    """An md software RAID array."""

    id: str
    level: int
    devices: tuple
    spares: tuple = ()
    name: Optional[str] = None
    metadata: str = '1.2'
    keep_data: bool = False
    type: str = 'raid'

    @property
    def md_name(self):
        return self.name or self.id


@dataclasses.dataclass(frozen=True)
class VolumeGroup(_Serialisable):
    """An LVM volume group; each of its devices becomes a physical volume."""

    id: str
    name: str
    devices: tuple
    keep_data: bool = False
    type: str = 'volume_group'


@dataclasses.dataclass(frozen=True)
class LogicalVolume(_Serialisable):
    """An LVM logical volume, sized in units, % of its VG, or remaining."""

    id: str
    name: str
    volume_group: str
    size: str
    keep_data: bool = False
    type: str = 'logical_volume'

    @property
    def size_spec(self):
        return units.parse_size(self.size)


@dataclasses.dataclass(frozen=True)
class Filesystem(_Serialisable):
    """A file system (or swap) made on a block device."""

    id: str
    device: str
    fstype: str
    label: Optional[str] = None
    mkfs_options: tuple = ()
    mount_point: Optional[str] = None
    mount_options: Optional[str] = None
    fstab: Optional[bool] = None
    keep_data: bool = False
    type: str = 'filesystem'

    @property
    def in_fstab(self):
        """Whether fstab gets a line: by default, when mounted or swap."""
        if self.fstab is not None:
            return self.fstab
        return bool(self.mount_point) or self.fstype == 'swap'


STORAGE_CLASSES = {cls.type: cls for cls in (
    Disk, Partition, Raid, VolumeGroup, LogicalVolume, Filesystem)}


@dataclasses.dataclass(frozen=True)
class Checksum(_Serialisable):
    algorithm: str
    value: str


@dataclasses.dataclass(frozen=True)
class Image(_Serialisable):
    """An OS image and where it goes.

    ``target`` is a disk id for raw/qcow2 whole-disk images; for fs_image
    and tar it is a file system id, a mount point, or (fs_image only) a
    block device id.
    """

    url: str
    format: str
    target: str
    id: Optional[str] = None
    compression: str = 'auto'
    checksum: Optional[Checksum] = None

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        if data.get('checksum') is not None:
            data['checksum'] = Checksum.from_dict(data['checksum'])
        return super().from_dict(data)

    @property
    def is_whole_disk(self):
        return self.format in ('raw', 'qcow2')


@dataclasses.dataclass(frozen=True)
class Configdrive(_Serialisable):
    """Where the configdrive goes: a partition id, or a disk id that a
    whole-disk image fills (a partition is then added after the image)."""

    device: str
    size: str = '64 MiB'


@dataclasses.dataclass(frozen=True)
class Bootloader(_Serialisable):
    """Bootloader installation.

    ``mode`` None means "the node's boot mode"; empty ``devices`` means
    every disk under the root file system (all RAID members).
    """

    mode: Optional[str] = None
    devices: tuple = ()
    kernel_params: str = ''


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A whole partitioning scheme."""

    storage: tuple
    images: tuple = ()
    configdrive: Optional[Configdrive] = None
    bootloader: Optional[Bootloader] = None
    version: int = 1

    @classmethod
    def from_dict(cls, data):
        storage = tuple(STORAGE_CLASSES[item['type']].from_dict(item)
                        for item in data['storage'])
        return cls(
            storage=storage,
            images=tuple(Image.from_dict(i) for i in data.get('images', ())),
            configdrive=(Configdrive.from_dict(data['configdrive'])
                         if data.get('configdrive') else None),
            bootloader=(Bootloader.from_dict(data['bootloader'])
                        if data.get('bootloader') is not None else None),
            version=data.get('version', 1))

    def to_dict(self):
        result = {'version': self.version,
                  'storage': [obj.to_dict() for obj in self.storage]}
        if self.images:
            result['images'] = [image.to_dict() for image in self.images]
        if self.configdrive:
            result['configdrive'] = self.configdrive.to_dict()
        if self.bootloader is not None:
            result['bootloader'] = self.bootloader.to_dict()
        return result

    # Lookups used by the validator, planner and agent steps. The
    # indexes are built once per (immutable) scheme, so that a check per
    # object stays linear in the scheme's size.

    @functools.cached_property
    def by_id(self):
        # The first object with an id wins, as duplicates are an error.
        result = {}
        for obj in self.storage:
            result.setdefault(obj.id, obj)
        return result

    @functools.cached_property
    def _index(self):
        """type -> objects, and (type, parent field value) -> objects."""
        index = collections.defaultdict(list)
        for obj in self.storage:
            index[obj.type].append(obj)
            if obj.type in ('partition', 'filesystem'):
                index[obj.type, obj.device].append(obj)
            elif obj.type == 'logical_volume':
                index[obj.type, obj.volume_group].append(obj)
        return index

    @functools.cached_property
    def _mounts(self):
        mounts = {}
        for fs in self.of_type('filesystem'):
            mounts.setdefault(fs.mount_point, fs)
        return mounts

    def of_type(self, type_name):
        return list(self._index.get(type_name, ()))

    def partitions_on(self, device_id):
        return list(self._index.get(('partition', device_id), ()))

    def filesystems_on(self, device_id):
        return list(self._index.get(('filesystem', device_id), ()))

    def logical_volumes_in(self, vg_id):
        return list(self._index.get(('logical_volume', vg_id), ()))

    def filesystem_at(self, mount_point):
        return self._mounts.get(mount_point)

    def parents(self, obj):
        """Ids of the objects ``obj`` is built on."""
        if obj.type in ('partition', 'filesystem'):
            return (obj.device,)
        if obj.type == 'raid':
            return tuple(obj.devices) + tuple(obj.spares)
        if obj.type == 'volume_group':
            return tuple(obj.devices)
        if obj.type == 'logical_volume':
            return (obj.volume_group,)
        return ()

    @functools.cached_property
    def _children(self):
        """id -> objects built directly on it, in scheme order."""
        children = collections.defaultdict(list)
        for obj in self.storage:
            for parent in dict.fromkeys(self.parents(obj)):
                children[parent].append(obj)
        return children

    def children(self, obj_id):
        """The objects built directly on ``obj_id``, in scheme order."""
        return list(self._children.get(obj_id, ()))

    def ancestors(self, obj_id):
        """Every id ``obj_id`` depends on, transitively (cycle-safe)."""
        by_id, seen, todo = self.by_id, set(), [obj_id]
        while todo:
            current = by_id.get(todo.pop())
            if current is None:
                continue
            for parent in self.parents(current):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    @functools.cached_property
    def _disk_order(self):
        order = {}
        for n, disk in enumerate(self.of_type('disk')):
            order.setdefault(disk.id, n)
        return order

    def disks_under(self, obj_id):
        """Disk ids that ``obj_id`` sits on, in scheme order."""
        ids = self.ancestors(obj_id) | {obj_id}
        order = self._disk_order
        return sorted((i for i in ids if i in order), key=order.get)

    @functools.cached_property
    def _kept_ids(self):
        """Ids that keep data, are built on one that does, or carry one
        that does: one walk up and one down instead of one per object."""
        by_id = self.by_id
        kept = {obj.id for obj in self.storage if obj.keep_data}
        # Up: everything a kept object is built on.
        up = set(kept)
        todo = list(kept)
        while todo:
            for parent in self.ancestors_step(todo.pop()):
                if parent not in up:
                    up.add(parent)
                    todo.append(parent)
        # Down: everything built on an object that keeps data (as
        # ancestors() walks it: through by_id).
        down = set()
        todo = [i for i, obj in by_id.items() if obj.keep_data]
        while todo:
            for child in self._children.get(todo.pop(), ()):
                if child.id not in down and by_id.get(child.id) is child:
                    down.add(child.id)
                    todo.append(child.id)
        return up | down

    def ancestors_step(self, obj_id):
        """The parents of the object ``by_id`` names ``obj_id``."""
        current = self.by_id.get(obj_id)
        return self.parents(current) if current is not None else ()

    def is_kept(self, obj_id):
        """True when ``obj_id`` must not be recreated: it keeps data, or
        something built on it does, or something it is built on does (a
        file system on a kept partition is kept too)."""
        return obj_id in self._kept_ids

    def kept_ids(self):
        """Every id :meth:`is_kept` is true for."""
        return self._kept_ids
