"""Checks a scheme document and reports every problem at once.

Each problem is a :class:`SchemeError` with the JSON path of the offending
value and a reason meant for the operator. Nothing here raises on bad
input except :func:`load`, which raises :class:`InvalidScheme` carrying
all the problems.
"""

import collections
import dataclasses
import json

import jsonschema
import jsonschema.validators

from fa_agent import safe_json
from fa_agent.scheme import grammar
from fa_agent.scheme import matcher
from fa_agent.scheme import mkfs_options
from fa_agent.scheme import model
from fa_agent.scheme import schema
from fa_agent.scheme import units

# Longest labels each mkfs accepts, in bytes.
LABEL_LIMITS = grammar.LABEL_LIMITS
# Fewest active members each RAID level accepts.
RAID_MIN_MEMBERS = {0: 2, 1: 2, 5: 3, 6: 4, 10: 2}
# Which object types may sit under another.
ALLOWED_PARENTS = {
    'partition': ('disk', 'raid'),
    'raid': ('disk', 'partition', 'raid'),
    'volume_group': ('disk', 'partition', 'raid'),
    'logical_volume': ('volume_group',),
    'filesystem': ('disk', 'partition', 'raid', 'logical_volume'),
}
MSDOS_MAX_PARTITIONS = 4
# Where the boot loader step writes on every deploy.
BOOT_LOADER_DIRS = ('/boot', '/boot/efi')
# Bounds on any document, shared with the conductor (scheme_source).
MAX_DOCUMENT_BYTES = safe_json.MAX_DOCUMENT_BYTES
MAX_DEPTH = safe_json.MAX_DEPTH


@dataclasses.dataclass(frozen=True, order=True)
class SchemeError:
    path: str
    message: str

    def __str__(self):
        return '%s: %s' % (self.path, self.message)


class InvalidScheme(ValueError):
    """The scheme has problems; ``errors`` lists them all."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__('invalid partitioning scheme:\n' + '\n'.join(
            '  ' + str(e) for e in self.errors))


def _json_path(parts):
    path = '$'
    for part in parts:
        path += '[%d]' % part if isinstance(part, int) else '.%s' % part
    return path


def _unique_items(validator, unique, instance, schema):
    """jsonschema's uniqueItems falls back to comparing every pair when
    items do not sort (a list of objects): O(n**2). Hash them instead."""
    if not unique or not validator.is_type(instance, 'array'):
        return
    seen = set()
    for item in instance:
        key = json.dumps(item, sort_keys=True, default=repr)
        if key in seen:
            yield jsonschema.ValidationError(
                'has non-unique elements (%s twice)'
                % safe_json.short_repr(item))
            return
        seen.add(key)


_SchemaValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {'uniqueItems': _unique_items})
_SCHEMA_VALIDATOR = _SchemaValidator(schema.SCHEME)


def _storage_dispatch(scheme):
    """(scheme without the per-type storage branches, {type: validator}),
    or None when the storage items are not the plain if-type-then-schema
    dispatch. jsonschema tries every "if" for every object, which is most
    of the time spent on a large document; choosing the branch by type
    here gives the same errors at a fraction of the cost."""
    try:
        items = scheme['properties']['storage']['items']
        branches = {}
        for entry in items['allOf']:
            if set(entry) != {'if', 'then'} or \
                    entry['if'] != {'properties': {'type': {
                        'const': entry['if']['properties']['type']['const']}},
                        'required': ['type']}:
                return None
            name = entry['if']['properties']['type']['const']
            branches[name] = _SchemaValidator(entry['then'])
    except (KeyError, TypeError, AttributeError):
        return None
    light = dict(scheme, properties=dict(scheme['properties'], storage=dict(
        scheme['properties']['storage'],
        items={k: v for k, v in items.items() if k != 'allOf'})))
    return _SchemaValidator(light), branches


_DISPATCH = _storage_dispatch(schema.SCHEME)
# Messages quote the offending value; a huge one is cut to a line.
_MAX_MESSAGE = 300


def _message(leaf):
    if leaf.validator == 'additionalProperties' and \
            isinstance(leaf.instance, dict):
        known = leaf.schema.get('properties', {})
        extra = sorted((k for k in leaf.instance if k not in known),
                       key=str)
        return 'unknown field: %s%s %s unexpected' % (
            ', '.join(safe_json.short_repr(k) for k in extra[:10]),
            ' and %d more' % (len(extra) - 10) if len(extra) > 10 else '',
            'was' if len(extra) == 1 else 'were')
    message = leaf.message
    if len(message) > _MAX_MESSAGE:
        message = message.replace(repr(leaf.instance),
                                  safe_json.short_repr(leaf.instance), 1)
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE] + '...'
    return message


def _schema_problems(document):
    """(path parts, SchemeError) for every JSON Schema violation."""
    if _DISPATCH is None:
        return _problems(_SCHEMA_VALIDATOR.iter_errors(document), ())
    light, branches = _DISPATCH
    problems = _problems(light.iter_errors(document), ())
    storage = document.get('storage') if isinstance(document, dict) else None
    if isinstance(storage, list):
        for index, item in enumerate(storage):
            if isinstance(item, dict) and \
                    isinstance(item.get('type'), str) and \
                    item['type'] in branches:
                problems += _problems(
                    branches[item['type']].iter_errors(item),
                    ('storage', index))
    return problems


def _problems(schema_errors, prefix):
    problems = []
    for error in schema_errors:
        # An anyOf wrapper error only repeats its children: report those.
        leaves = [error]
        while leaves and any(e.context for e in leaves):
            leaves = [c for e in leaves for c in (e.context or [e])]
        for leaf in leaves:
            parts = prefix + tuple(leaf.absolute_path)
            problems.append((parts, SchemeError(_json_path(parts),
                                                _message(leaf))))
    return problems


def _schema_errors(document):
    return [error for _, error in _schema_problems(document)]


def _bounds_errors(document, max_bytes):
    """A document that is too big or too deep for the checks below."""
    try:
        safe_json.check(document, max_bytes=max_bytes)
    except safe_json.DocumentError as exc:
        return [SchemeError(exc.path, exc.reason)]
    return []


def _parse(document, max_bytes):
    """(document, errors): JSON text parsed, within bounds."""
    if isinstance(document, (str, bytes)):
        try:
            return safe_json.loads(document, max_bytes=max_bytes), []
        except safe_json.DocumentError as exc:
            return None, [SchemeError(exc.path, exc.reason)]
    return document, _bounds_errors(document, max_bytes)


class _Checker:
    """Semantic checks over the objects that passed the JSON Schema."""

    def __init__(self, document, bad_items):
        self.errors = []
        storage = self.raw_storage = document['storage']
        self.paths = {}
        valid = []
        for index, item in enumerate(storage):
            if index in bad_items:
                continue
            obj = model.STORAGE_CLASSES[item['type']].from_dict(item)
            valid.append(obj)
            self.paths.setdefault(obj.id, '$.storage[%d]' % index)
        # Ids of malformed objects still count as existing, so a typo in one
        # object is not reported a second time as a dangling reference.
        self.known_ids = {item.get('id') for item in storage
                          if isinstance(item, dict) and
                          isinstance(item.get('id'), str)}
        self.scheme = model.Scheme.from_dict(
            dict(document, storage=[o.to_dict() for o in valid]))

    def error(self, path, message):
        self.errors.append(SchemeError(path, message))

    def path(self, obj, field=None):
        base = self.paths[obj.id]
        return base + ('.' + field if field else '')

    def run(self):
        for check in (self.check_ids, self.check_hints,
                      self.check_references,
                      self.check_cycles, self.check_usage,
                      self.check_partitions, self.check_raid,
                      self.check_logical_volumes, self.check_names,
                      self.check_filesystems, self.check_mkfs_options,
                      self.check_esp, self.check_images,
                      self.check_configdrive, self.check_keep_data,
                      self.check_kept_mounts, self.check_bootloader):
            check()
        return self.errors

    # -- ids and references ------------------------------------------------

    def check_ids(self):
        seen = {}
        for index, item in enumerate(self.raw_storage):
            obj_id = item.get('id') if isinstance(item, dict) else None
            if not isinstance(obj_id, str):
                continue
            if obj_id in seen:
                self.error('$.storage[%d].id' % index,
                           'duplicate id %r (also used by $.storage[%d])'
                           % (obj_id, seen[obj_id]))
            else:
                seen[obj_id] = index

    def check_hints(self):
        """Hints are read as Ironic reads root device hints; one Ironic
        would refuse (or could never match) is an error here rather
        than a disk that silently matches nothing at deploy time."""
        for disk in self.scheme.of_type('disk'):
            for hint, reason in matcher.problems(disk.match):
                self.error(self.path(disk, 'match.' + hint), reason)

    def check_references(self):
        by_id = self.scheme.by_id
        for obj in self.scheme.storage:
            for field in ('device', 'devices', 'spares', 'volume_group'):
                refs = getattr(obj, field, None)
                if refs is None:
                    continue
                many = isinstance(refs, tuple)
                for n, ref in enumerate(refs if many else (refs,)):
                    where = self.path(obj, field) + (
                        '[%d]' % n if many else '')
                    target = by_id.get(ref)
                    if target is None:
                        if ref not in self.known_ids:
                            self.error(where, 'refers to %r, which is not '
                                       'defined in storage' % ref)
                    elif target.type not in ALLOWED_PARENTS[obj.type]:
                        self.error(where, 'a %s cannot be built on %r, a %s '
                                   '(allowed: %s)' % (
                                       obj.type, ref, target.type,
                                       ', '.join(ALLOWED_PARENTS[obj.type])))

    def check_cycles(self):
        on_cycle = _ids_on_cycles(self.scheme)
        for obj in self.scheme.storage:
            if obj.id in on_cycle:
                self.error(self.path(obj), '%r depends on itself through '
                           'its devices' % obj.id)

    def check_usage(self):
        """A block device holds partitions or has exactly one direct user."""
        users = collections.defaultdict(list)
        for obj in self.scheme.storage:
            if obj.type == 'filesystem':
                users[obj.device].append(('file system %r' % obj.id,
                                          self.path(obj, 'device')))
            elif obj.type in ('raid', 'volume_group'):
                for dev in obj.devices + getattr(obj, 'spares', ()):
                    users[dev].append(('%s %r' % (obj.type.replace('_', ' '),
                                                  obj.id),
                                       self.path(obj)))
        for n, image in enumerate(self.scheme.images):
            # Whole-disk images are checked against partitions in check_images.
            if self._image_writes_device(image) and not image.is_whole_disk:
                users[image.target].append(('image %d' % n,
                                            '$.images[%d].target' % n))
        if self.scheme.configdrive:
            dev = self.scheme.configdrive.device
            target = self.scheme.by_id.get(dev)
            if target is not None and target.type != 'disk':
                users[dev].append(('the configdrive',
                                   '$.configdrive.device'))
        for dev_id, dev_users in users.items():
            if dev_id not in self.scheme.by_id:
                continue
            if len(dev_users) > 1:
                names = _some(name for name, _ in dev_users)
                for _, where in dev_users[1:]:
                    self.error(where, '%r is used more than once (by %s)'
                               % (dev_id, names))
            if self.scheme.partitions_on(dev_id):
                name, where = dev_users[0]
                self.error(where, '%r holds partitions, so %s cannot use it '
                           'whole' % (dev_id, name))

    def _image_writes_device(self, image):
        target = self.scheme.by_id.get(image.target)
        return target is not None and target.type != 'filesystem'

    # -- containers and sizes -----------------------------------------------

    def _check_sizes(self, container_id, children, what, container_path):
        percent = 0
        remaining = []
        for child in children:
            try:
                spec = units.parse_size(child.size)
            except units.SizeError as exc:
                self.error(self.path(child, 'size'), str(exc))
                continue
            if spec.kind == 'percent':
                percent += spec.value
            # Counted on the parsed size: " remaining" means remaining too.
            elif spec.is_remaining:
                remaining.append(child)
        for extra in remaining[1:]:
            self.error(self.path(extra, 'size'), 'only one %s per %r may use '
                       '"remaining" (%r already does)'
                       % (what, container_id, remaining[0].id))
        if percent > 100:
            self.error(container_path, 'the %ss on %r ask for %g%% of it'
                       % (what, container_id, percent))

    def check_partitions(self):
        for container in self.scheme.storage:
            if container.type not in ('disk', 'raid'):
                continue
            parts = self.scheme.partitions_on(container.id)
            if not parts:
                continue
            self._check_sizes(container.id, parts, 'partition',
                              self.path(container))
            table = getattr(container, 'table', None) or 'gpt'
            if table == 'msdos':
                if len(parts) > MSDOS_MAX_PARTITIONS:
                    self.error(self.path(parts[MSDOS_MAX_PARTITIONS]),
                               'an msdos table holds at most %d partitions '
                               'here; use "table": "gpt"'
                               % MSDOS_MAX_PARTITIONS)
                for part in parts:
                    for field in ('name', 'type_guid'):
                        if getattr(part, field):
                            self.error(self.path(part, field),
                                       '%s needs a gpt table; %r is msdos'
                                       % (field, container.id))
                    if 'bios_grub' in part.flags:
                        self.error(self.path(part, 'flags'), 'bios_grub '
                                   'exists only on gpt; on msdos GRUB uses '
                                   'the gap before the first partition')

    def check_raid(self):
        for raid in self.scheme.of_type('raid'):
            needed = RAID_MIN_MEMBERS[raid.level]
            if len(raid.devices) < needed:
                self.error(self.path(raid, 'devices'), 'RAID %d needs at '
                           'least %d active devices, got %d'
                           % (raid.level, needed, len(raid.devices)))
            if raid.level == 0 and raid.spares:
                self.error(self.path(raid, 'spares'), 'RAID 0 has no '
                           'redundancy, so it cannot use spares')
            members = list(raid.devices) + list(raid.spares)
            counts = collections.Counter(members)
            for dup in sorted(m for m, c in counts.items() if c > 1):
                self.error(self.path(raid, 'devices'), '%r is listed twice'
                           % dup)
            by_id = self.scheme.by_id
            # An ESP inside the array, an ESP-flagged member, or the array
            # mounted at /boot/efi all put the ESP on md.
            esp = [p for p in self.scheme.partitions_on(raid.id)
                   if 'esp' in p.flags]
            esp += [m for m in members if 'esp' in getattr(
                by_id.get(m), 'flags', ())]
            fs_esp = [fs for fs in self.scheme.filesystems_on(raid.id)
                      if fs.mount_point == '/boot/efi']
            if (esp or fs_esp) and raid.metadata not in ('1.0', '0.90'):
                self.error(self.path(raid, 'metadata'), 'an ESP on RAID '
                           'needs metadata "1.0" (superblock at the end) so '
                           'firmware sees a plain FAT file system')

    def check_logical_volumes(self):
        for vg in self.scheme.of_type('volume_group'):
            lvs = self.scheme.logical_volumes_in(vg.id)
            self._check_sizes(vg.id, lvs, 'logical volume', self.path(vg))
            names = collections.Counter(lv.name for lv in lvs)
            for lv in lvs:
                if names[lv.name] > 1:
                    self.error(self.path(lv, 'name'), 'logical volume name '
                               '%r is used twice in %r' % (lv.name, vg.id))
        vg_names = collections.Counter(
            vg.name for vg in self.scheme.of_type('volume_group'))
        for vg in self.scheme.of_type('volume_group'):
            if vg_names[vg.name] > 1:
                self.error(self.path(vg, 'name'), 'volume group name %r is '
                           'used twice' % vg.name)

    def check_names(self):
        """Names and labels that reach mdadm, LVM, sgdisk and mkfs."""
        by_id = self.scheme.by_id
        for obj in self.scheme.storage:
            problem = None
            if obj.type == 'partition' and obj.name is not None:
                problem = grammar.gpt_name_problem(obj.name)
            elif obj.type == 'raid' and obj.name is not None:
                problem = grammar.raid_name_problem(obj.name)
            elif obj.type == 'volume_group':
                problem = grammar.vg_name_problem(obj.name)
            elif obj.type == 'logical_volume':
                problem = grammar.lv_name_problem(obj.name)
                vg = by_id.get(obj.volume_group)
                if problem is None and vg is not None and \
                        vg.type == 'volume_group':
                    length = grammar.dm_name_length(vg.name, obj.name)
                    if length > grammar.DM_NAME_MAX:
                        problem = ('with volume group %r the device-mapper '
                                   'name is %d bytes, over the %d LVM allows'
                                   % (vg.name, length, grammar.DM_NAME_MAX))
            if problem:
                self.error(self.path(obj, 'name'), problem)
            if obj.type == 'filesystem':
                if obj.label is not None:
                    problem = grammar.label_problem(obj.fstype, obj.label)
                    if problem:
                        self.error(self.path(obj, 'label'), problem)
                if obj.mount_options is not None:
                    problem = grammar.mount_options_problem(
                        obj.mount_options)
                    if problem:
                        self.error(self.path(obj, 'mount_options'), problem)

    def check_mkfs_options(self):
        for fs in self.scheme.of_type('filesystem'):
            for index, problem in mkfs_options.problems(fs.fstype,
                                                        fs.mkfs_options):
                self.error('%s[%d]' % (self.path(fs, 'mkfs_options'), index),
                           problem)

    def check_esp(self):
        """An EFI system partition holds FAT: firmware reads nothing else,
        and the boot loader step installs only to vfat ESPs."""
        by_id = self.scheme.by_id
        for fs in self.scheme.of_type('filesystem'):
            if fs.fstype == 'vfat':
                continue
            device = by_id.get(fs.device)
            members = [device] + [by_id.get(m) for m in getattr(
                device, 'devices', ())] if device is not None else []
            on_esp = any('esp' in getattr(m, 'flags', ()) for m in members)
            if on_esp or fs.mount_point == '/boot/efi':
                self.error(self.path(fs, 'fstype'), 'an EFI system partition '
                           'must be vfat, not %s (%s)' % (
                               fs.fstype, 'its partition has the esp flag'
                               if on_esp else 'it is mounted at /boot/efi'))

    def check_filesystems(self):
        mounts = {}
        for fs in self.scheme.of_type('filesystem'):
            if fs.fstype == 'swap':
                if fs.mount_point:
                    self.error(self.path(fs, 'mount_point'),
                               'swap is not mounted; remove mount_point')
                continue
            if fs.mount_point is None:
                continue
            problem = grammar.mount_point_problem(fs.mount_point)
            if problem:
                self.error(self.path(fs, 'mount_point'), problem)
            # Compared where they land, so "/srv/" and "/srv" clash too.
            where = grammar.normalise_path(fs.mount_point)
            if where in mounts:
                self.error(self.path(fs, 'mount_point'), 'mount point %r is '
                           'also used by %r' % (fs.mount_point,
                                                mounts[where]))
            else:
                mounts[where] = fs.id
        whole_disk = any(i.is_whole_disk for i in self.scheme.images)
        root = self.scheme.filesystem_at('/')
        if root is None and not whole_disk:
            self.error('$.storage', 'no file system is mounted at "/" and no '
                       'whole-disk image is given: the node could not boot')
        if root is not None and root.fstype == 'vfat':
            self.error(self.path(root, 'fstype'), 'the root file system '
                       'cannot be vfat')

    # -- images, configdrive, bootloader ------------------------------------

    def check_images(self):
        by_id = self.scheme.by_id
        mounts = {fs.mount_point: fs
                  for fs in self.scheme.of_type('filesystem')
                  if fs.mount_point}
        targets = {}
        for n, image in enumerate(self.scheme.images):
            where = '$.images[%d].target' % n
            target = image.target
            if target.startswith('/'):
                problem = grammar.mount_point_problem(target)
                if problem:
                    self.error(where, problem)
                    continue
                target_obj = mounts.get(target)
                if target_obj is None:
                    self.error(where, 'no file system is mounted at %r'
                               % target)
                    continue
            else:
                target_obj = by_id.get(target)
                if target_obj is None:
                    if target not in self.known_ids:
                        self.error(where, 'refers to %r, which is not '
                                   'defined in storage' % target)
                    continue
            if target_obj.id in targets:
                self.error(where, '%r is already the target of '
                           '$.images[%d]' % (target_obj.id,
                                             targets[target_obj.id]))
            targets[target_obj.id] = n
            allowed = {'raw': ('disk',), 'qcow2': ('disk',),
                       'fs_image': ('filesystem', 'partition', 'raid',
                                    'logical_volume'),
                       'tar': ('filesystem',)}[image.format]
            if target_obj.type not in allowed:
                self.error(where, 'a %s image goes to a %s, not to %r (a %s)'
                           % (image.format, ' or '.join(allowed),
                              target_obj.id, target_obj.type))
                continue
            if image.is_whole_disk:
                built_on = [o.id for o in self.scheme.children(target_obj.id)]
                if built_on:
                    self.error(where, 'a whole-disk image replaces all of '
                               '%r, but the scheme also builds %s on it'
                               % (target_obj.id, _some(map(repr, built_on))))
            elif target_obj.type == 'filesystem':
                if target_obj.fstype == 'swap':
                    self.error(where, 'cannot write an image to swap %r'
                               % target_obj.id)
            else:
                on_device = [fs.id for fs in
                             self.scheme.filesystems_on(target_obj.id)]
                if on_device:
                    self.error(where, 'the image is written to %r, which the '
                               'scheme also formats as file system %r; target '
                               'the file system instead' % (
                                   target_obj.id, on_device[0]))
            if image.checksum:
                lengths = {'md5': 32, 'sha256': 64, 'sha512': 128}
                want = lengths[image.checksum.algorithm]
                if len(image.checksum.value) != want:
                    self.error('$.images[%d].checksum.value' % n,
                               'a %s checksum has %d hex digits, not %d' % (
                                   image.checksum.algorithm, want,
                                   len(image.checksum.value)))

    def check_configdrive(self):
        cd = self.scheme.configdrive
        if cd is None:
            return
        target = self.scheme.by_id.get(cd.device)
        if target is None:
            if cd.device not in self.known_ids:
                self.error('$.configdrive.device', 'refers to %r, which is '
                           'not defined in storage' % cd.device)
            return
        if target.type == 'disk':
            if not any(i.is_whole_disk and i.target == cd.device
                       for i in self.scheme.images):
                self.error('$.configdrive.device', 'the configdrive goes to a '
                           'partition; a disk id is only allowed when a '
                           'whole-disk image is written to it')
        elif target.type != 'partition':
            self.error('$.configdrive.device', 'the configdrive needs a '
                       'partition, not %r (a %s)' % (cd.device, target.type))
        try:
            if units.parse_size(cd.size).kind != 'bytes':
                self.error('$.configdrive.size', 'the configdrive size must '
                           'be fixed, such as "64 MiB"')
        except units.SizeError as exc:
            self.error('$.configdrive.size', str(exc))

    def check_keep_data(self):
        by_id = self.scheme.by_id
        holder_of = {}  # per target: images x ancestors stays bounded
        for n, image in enumerate(self.scheme.images):
            target = (self.scheme.filesystem_at(image.target)
                      if image.target.startswith('/')
                      else by_id.get(image.target))
            if target is None:
                continue
            if self.scheme.is_kept(target.id):
                if target.id not in holder_of:
                    # Name the object that carries keep_data, not its
                    # child.
                    holders = [target.id]
                    holders += sorted(self.scheme.ancestors(target.id))
                    kept = [h for h in holders
                            if h in by_id and by_id[h].keep_data]
                    holder_of[target.id] = kept[0] if kept else target.id
                self.error('$.images[%d].target' % n, 'the image would '
                           'overwrite %r, which is marked keep_data'
                           % holder_of[target.id])
        for obj in self.scheme.storage:
            if obj.keep_data and obj.type == 'filesystem' and \
                    obj.mount_point == '/':
                self.error(self.path(obj, 'keep_data'), 'the root file system '
                           'is rewritten by every deploy and cannot be kept')

    def check_kept_mounts(self):
        """Nothing is written beneath a kept mount point: no tar tree
        extracted over it, no new file system mounted inside it, no boot
        loader installed into it."""
        kept_ids = self.scheme.kept_ids()
        mounted = [fs for fs in self.scheme.of_type('filesystem')
                   if fs.mount_point and fs.fstype != 'swap']
        kept = _MountTree()
        for fs in mounted:
            if fs.id in kept_ids:
                kept.add(fs)
        if kept.empty:
            return
        for fs in mounted:
            if fs.id in kept_ids:
                continue
            holder = kept.kept_above(fs.mount_point)
            if holder is not None:
                self.error(self.path(fs, 'mount_point'), 'would be mounted '
                           'inside %r (at %s), which is kept: its mount point '
                           'would be made in the kept data' % (
                               holder.id, holder.mount_point))
        by_id = self.scheme.by_id
        for n, image in enumerate(self.scheme.images):
            if image.format != 'tar':
                continue
            target = (self.scheme.filesystem_at(image.target)
                      if image.target.startswith('/')
                      else by_id.get(image.target))
            if target is None or target.type != 'filesystem' or \
                    not target.mount_point or target.id in kept_ids:
                continue
            below = kept.kept_below(target.mount_point)
            if below is not None:
                self.error('$.images[%d].target' % n, 'the tar archive is '
                           'extracted into %s with %r (at %s) mounted below '
                           'it, which is kept: the archive could write into '
                           'it; use an fs_image, or do not keep it' % (
                               target.mount_point, below.id,
                               below.mount_point))
        if self.scheme.filesystem_at('/') is None:
            return  # no boot loader step (a whole-disk image)
        for fs in mounted:
            if fs.id in kept_ids and \
                    grammar.normalise_path(fs.mount_point) in BOOT_LOADER_DIRS:
                self.error(self.path(fs, 'mount_point'), 'the boot loader is '
                           'written into %s on every deploy, so %r cannot be '
                           'kept' % (fs.mount_point, fs.id))

    def check_bootloader(self):
        boot = self.scheme.bootloader
        if boot is not None and grammar.kernel_params_problem(
                boot.kernel_params):
            self.error('$.bootloader.kernel_params',
                       grammar.kernel_params_problem(boot.kernel_params))
        if boot is None:
            return
        by_id = self.scheme.by_id
        for n, dev in enumerate(boot.devices):
            obj = by_id.get(dev)
            if obj is None:
                if dev not in self.known_ids:
                    self.error('$.bootloader.devices[%d]' % n, 'refers to %r, '
                               'which is not defined in storage' % dev)
            elif obj.type not in ('disk', 'raid'):
                self.error('$.bootloader.devices[%d]' % n, 'the bootloader '
                           'goes to disks (or a RAID, meaning its members), '
                           'not to %r (a %s)' % (dev, obj.type))
        if any(i.is_whole_disk for i in self.scheme.images):
            return
        partitions = self.scheme.of_type('partition')
        if boot.mode in ('uefi', 'both') and not any(
                'esp' in p.flags for p in partitions):
            self.error('$.bootloader.mode', 'UEFI boot needs an EFI system '
                       'partition: add a partition with the "esp" flag '
                       '(and a vfat file system at /boot/efi)')
        if boot.mode in ('bios', 'both'):
            for disk_id in boot_disks(self.scheme):
                disk = by_id.get(disk_id)
                if disk is None or disk.type != 'disk' or \
                        (disk.table or 'gpt') != 'gpt':
                    continue
                if not any('bios_grub' in p.flags
                           for p in self.scheme.partitions_on(disk_id)):
                    self.error('$.bootloader.mode', 'BIOS boot from gpt disk '
                               '%r needs a partition with the "bios_grub" '
                               'flag (1 MiB is enough)' % disk_id)


class _MountTree:
    """Kept mount points as a tree of path components, so each question
    costs the length of the path asked about. Markers are ints, so no
    component (always a string) can be mistaken for one."""

    KEPT, BELOW = 0, 1

    def __init__(self):
        self.root = {}
        self.empty = True

    @staticmethod
    def _parts(path):
        return grammar.normalise_path(path).split('/')[1:] if path != '/' \
            else []

    def add(self, fs):
        node = self.root
        for part in self._parts(fs.mount_point):
            node.setdefault(self.BELOW, fs)
            node = node.setdefault(part, {})
        node.setdefault(self.KEPT, fs)
        self.empty = False

    def kept_above(self, path):
        """The kept file system mounted strictly above ``path``."""
        node, found = self.root, None
        for part in self._parts(path):
            found = node.get(self.KEPT, found)
            node = node.get(part)
            if node is None:
                break
        return found

    def kept_below(self, path):
        """A kept file system mounted strictly below ``path``."""
        node = self.root
        for part in self._parts(path):
            node = node.get(part)
            if node is None:
                return None
        return node.get(self.BELOW)


def _some(names, limit=5):
    """At most ``limit`` names, so a message stays a line when thousands
    of objects share one problem."""
    names = list(names)
    more = len(names) - limit
    return ', '.join(names[:limit]) + (' and %d more' % more
                                       if more > 0 else '')


def _ids_on_cycles(scheme):
    """Ids that depend on themselves (``id in scheme.ancestors(id)``), for
    all objects in one pass: Tarjan's strongly connected components,
    iterative so a long chain cannot hit the recursion limit."""
    by_id = scheme.by_id
    edges = {i: [p for p in scheme.parents(o) if p in by_id]
             for i, o in by_id.items()}
    index, low, on_stack, stack, result = {}, {}, set(), [], set()
    for root in edges:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for n in range(pos, len(edges[node])):
                child = edges[node][n]
                if child not in index:
                    work.append((node, n + 1))
                    work.append((child, 0))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges[node]:
                        result.update(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return result


def boot_disks(scheme):
    """Disk ids that get a bootloader: the ones named, else every disk
    under the root file system."""
    boot = scheme.bootloader
    if boot is not None and boot.devices:
        result = {}
        for dev in dict.fromkeys(boot.devices):
            result.update(dict.fromkeys(scheme.disks_under(dev)))
        return list(result)
    root = scheme.filesystem_at('/')
    if root is None:
        return []
    return scheme.disks_under(root.id)


def validate(document, max_bytes=MAX_DOCUMENT_BYTES):
    """Every problem in ``document`` (a dict or JSON text), as a sorted list
    of :class:`SchemeError`; empty when it is valid.

    Never raises: a document over ``max_bytes`` (None: no limit) or nested
    deeper than :data:`MAX_DEPTH` gets one error at ``$`` or at the path.
    """
    document, errors = _parse(document, max_bytes)
    if errors:
        return errors
    return _validate(document)


def _validate(document):
    problems = _schema_problems(document)
    errors = [error for _, error in problems]
    if not isinstance(document, dict) or \
            not isinstance(document.get('storage'), list):
        return sorted(set(errors))
    bad_items = {parts[1] for parts, _ in problems
                 if len(parts) > 1 and parts[0] == 'storage'}
    # Top-level sections with schema errors are left out of the semantic
    # pass, which then only sees well-formed objects.
    bad_sections = {parts[0] if parts else None for parts, _ in problems}
    if None in bad_sections:
        # An error on the document itself (an unknown field) says
        # nothing about the sections.
        bad_sections.discard(None)
    clean = {k: v for k, v in document.items()
             if k not in bad_sections or k == 'storage'}
    errors.extend(_Checker(clean, bad_items).run())
    return sorted(set(errors))


def validate_erase(document, max_bytes=MAX_DOCUMENT_BYTES):
    """Problems in the scheme of an erase request, which names disks and
    nothing else (no root file system is needed to wipe disks)."""
    document, errors = _parse(document, max_bytes)
    if errors:
        return errors
    errors = _schema_errors(document)
    if errors:
        return sorted(set(errors))
    seen = set()
    for n, item in enumerate(document['storage']):
        if item['type'] != 'disk':
            errors.append(SchemeError('$.storage[%d].type' % n, 'an erase '
                                      'request names disks only, not a %s'
                                      % item['type']))
        if item['id'] in seen:
            errors.append(SchemeError('$.storage[%d].id' % n,
                                      'duplicate id %r' % item['id']))
        seen.add(item['id'])
    for key in ('images', 'configdrive', 'bootloader'):
        if key in document:
            errors.append(SchemeError('$.' + key, 'an erase request takes '
                                      'no %s' % key))
    return sorted(set(errors))


def load(document, max_bytes=MAX_DOCUMENT_BYTES):
    """Validate ``document`` (a dict or JSON text) and return its
    :class:`model.Scheme`.

    :raises InvalidScheme: with every problem found.
    """
    document, errors = _parse(document, max_bytes)
    if not errors:
        errors = _validate(document)
    if errors:
        raise InvalidScheme(errors)
    return model.Scheme.from_dict(document)
