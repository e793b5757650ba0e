"""Data driver for Fuel's legacy provisioning data (nailgun ``ks_spaces``).

Fuel described disks as per-disk volume lists sized in MiB; this turns
them into the scheme model, laid out the way fuel-agent laid them out, so
a node provisioned by Fuel keeps the same partition offsets here:

- every used disk gets a gpt table, a 24 MiB bios_grub partition and a
  200 MiB partition fuel-agent reserved for UEFI; nailgun accounts for
  both (and the tables) with the per-disk ``boot`` volume;
- ``partition`` volumes become partitions, ``pv`` volumes partitions that
  join the volume group named by ``vg`` (their size includes the LVM
  metadata, ``lvm_meta_size``); ``lvm_meta_pool`` and ``boot`` only
  account for space and create nothing;
- ``raid`` volumes with the same mount point on several disks become one
  md RAID1 array (one such volume alone is a plain partition); a
  ``/boot`` of type ``partition`` is made once, on the first disk;
- ``vg`` entries with ``lv`` volumes become volume groups and logical
  volumes; mount ``swap`` means a swap area, ``none`` no file system;
- a 20 MiB configdrive partition follows the volumes of the first disk
  that holds the root file system or its volume group;
- ``image_data`` maps mount points to file-system images (``format`` is
  the file system, ``container`` raw or gzip).

Fuel's provisioning was BIOS only, so the bootloader mode is ``bios``.
Errors name the path in the Fuel document; problems the scheme validator
finds are reported at the Fuel volume that produced the object.
"""

import re

from fa_agent import data_drivers
from fa_agent import input_format
from fa_agent import safe_json
from fa_agent.scheme import schema
from fa_agent.scheme import validator

BIOS_GRUB_MIB = 24
UEFI_RESERVED_MIB = 200
CONFIGDRIVE_MIB = 20
# fuel-agent refused smaller LVM metadata areas.
MIN_LVM_META_MIB = 10
# Volumes that only account for space in nailgun's volume manager.
ACCOUNTING_VOLUMES = ('boot', 'lvm_meta_pool', 'lvm_meta')
DISK_VOLUMES = ACCOUNTING_VOLUMES + ('partition', 'pv', 'raid')
CONTAINERS = {'raw': 'none', 'gzip': 'gzip', 'xz': 'xz', 'zstd': 'zstd',
              'bzip2': 'bzip2'}
_ID_UNSAFE = re.compile(r'[^A-Za-z0-9_.:-]')
_LVM_NAME = re.compile(r'^[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,126}$')


# Messages quote Fuel values; a huge one is cut.
_MAX_MESSAGE = 400


def _bad(path, reason):
    message = '%s %s' % (path, reason)
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + '...'
    return input_format.InputError(message)


def _get(obj, key, path, kind, default=None, required=False):
    """``obj[key]`` checked against ``kind`` ('int', 'str', 'bool',
    'list', 'dict'); a missing optional key gives ``default``."""
    if key not in obj or obj[key] is None:
        if required:
            raise _bad(path, 'needs "%s"' % key)
        return default
    value = obj[key]
    ok = {'int': lambda v: isinstance(v, int) and not isinstance(v, bool),
          'str': lambda v: isinstance(v, str),
          'bool': lambda v: isinstance(v, bool),
          'list': lambda v: isinstance(v, list),
          'dict': lambda v: isinstance(v, dict)}[kind](value)
    if not ok:
        what = {'int': 'a whole number of MiB' if key == 'size' else
                'a whole number', 'str': 'a string', 'bool': 'true or false',
                'list': 'a list', 'dict': 'an object'}[kind]
        raise _bad('%s.%s' % (path, key), 'must be %s, not %r'
                   % (what, value))
    return value


class _Converter:
    """One conversion; holds the scheme being built and where each object
    came from in the Fuel document."""

    def __init__(self, data):
        try:
            safe_json.check(data, max_bytes=safe_json.MAX_INPUT_BYTES)
        except safe_json.DocumentError as exc:
            raise input_format.InputError(str(exc)) from None
        if isinstance(data, dict) and isinstance(data.get('ks_meta'), dict):
            self.whole, self.ks_meta, self.base = data, data['ks_meta'], \
                '$.ks_meta'
        elif isinstance(data, dict) and 'pm_data' in data:
            self.whole, self.ks_meta, self.base = None, data, '$'
        else:
            raise input_format.InputError(
                '$: Fuel provisioning data is the provision JSON (with '
                '"ks_meta") or its ks_meta (with "pm_data")')
        self.storage = []
        self.origins = []       # Fuel path of each storage object
        self.images = []
        self.image_origins = []
        self.ids = set()
        self.next_suffix = {}   # id base -> next number to try
        self.by_id = {}         # id -> storage object
        self.pv_members = {}    # vg name -> partition ids
        self.raid_members = {}  # mount point -> [(partition, volume, path)]
        self.boot_done = False
        self.configdrive_id = None
        self.vg_names = set()

    # -- helpers --

    def new_id(self, wanted):
        base = _ID_UNSAFE.sub('_', wanted).lstrip('_.:-')[:56] or 'x'
        # Resume where the last id of this base stopped: many volumes of
        # one name stay linear.
        n = self.next_suffix.get(base, 1)
        candidate = base if n == 1 else '%s-%d' % (base, n)
        while candidate in self.ids:
            n += 1
            candidate = '%s-%d' % (base, n)
        self.next_suffix[base] = n + 1
        self.ids.add(candidate)
        return candidate

    def add(self, obj, origin):
        self.storage.append(obj)
        self.origins.append(origin)
        self.by_id[obj['id']] = obj
        return obj['id']

    def add_filesystem(self, device_id, volume, path, default_fstype):
        """The file system a volume asks for, if any."""
        mount = _get(volume, 'mount', path, 'str')
        fstype = _get(volume, 'file_system', path, 'str')
        if mount in (None, '', 'none') and fstype != 'swap':
            return None
        if mount == 'swap' or fstype == 'swap':
            mount, fstype = None, 'swap'
        elif not mount.startswith('/'):
            raise _bad(path + '.mount', 'must be a path, "swap" or "none", '
                       'not %r' % mount)
        fstype = fstype or default_fstype
        if fstype not in schema.FSTYPES:
            raise _bad(path + '.file_system', '%r is not supported here; '
                       'use one of %s' % (fstype, ', '.join(schema.FSTYPES)))
        fs = {'type': 'filesystem', 'device': device_id, 'fstype': fstype}
        if mount:
            fs['mount_point'] = mount
        label = _get(volume, 'disk_label', path, 'str')
        if label:
            fs['label'] = label
        if _get(volume, 'keep_data', path, 'bool', False):
            fs['keep_data'] = True
        if mount == '/':
            fs['id'] = self.new_id('fs-root')
        elif mount:
            fs['id'] = self.new_id('fs' + mount.replace('/', '-'))
        else:
            fs['id'] = self.new_id('swap-' + device_id)
        return self.add(fs, path)

    # -- ks_spaces --

    def convert(self):
        pm_data = _get(self.ks_meta, 'pm_data', self.base, 'dict',
                       required=True)
        pm_path = self.base + '.pm_data'
        spaces = _get(pm_data, 'ks_spaces', pm_path, 'list', required=True)
        spaces_path = pm_path + '.ks_spaces'
        disks, vgs = [], []
        for n, space in enumerate(spaces):
            path = '%s[%d]' % (spaces_path, n)
            if not isinstance(space, dict):
                raise _bad(path, 'must be an object')
            kind = _get(space, 'type', path, 'str', required=True)
            if kind == 'disk':
                disks.append((space, path))
            elif kind == 'vg':
                vgs.append((space, path))
            else:
                raise _bad(path + '.type', 'must be "disk" or "vg", not %r'
                           % kind)
        if not disks:
            raise _bad(spaces_path, 'has no disk')
        root_vgs = self.root_volume_groups(vgs)
        bootable = []
        for space, path in disks:
            disk_id = self.convert_disk(space, path, root_vgs)
            if disk_id and _get(space, 'bootable', path, 'bool', False):
                bootable.append(disk_id)
        if len(bootable) > 1:
            raise _bad(spaces_path, 'marks more than one disk bootable: %s'
                       % ', '.join(bootable))
        self.convert_raids()
        for space, path in vgs:
            self.convert_vg(space, path)
        for vg_name, members in self.pv_members.items():
            if members:
                raise _bad(members[0][1] + '.vg', 'names volume group %r, '
                           'which ks_spaces does not define' % vg_name)
        self.convert_images()
        document = {'version': schema.SCHEME_VERSION,
                    'storage': self.storage,
                    'bootloader': {'mode': 'bios'}}
        if bootable:
            document['bootloader']['devices'] = bootable
        if self.images:
            document['images'] = self.images
        if self.configdrive_id:
            document['configdrive'] = {'device': self.configdrive_id,
                                       'size': '%d MiB' % CONFIGDRIVE_MIB}
        return self.load(document), self.kernel_params(pm_data, pm_path)

    def root_volume_groups(self, vgs):
        """VG names whose disks may take the configdrive, as fuel-agent
        put it on the disk holding "/" or the "os" volume group."""
        names = {'os'}
        for space, path in vgs:
            volumes = space.get('volumes')
            if not isinstance(volumes, list) or \
                    not isinstance(space.get('id'), str):
                continue    # convert_vg names the problem
            if any(isinstance(v, dict) and v.get('mount') == '/'
                   for v in volumes):
                names.add(space['id'])
        return names

    def convert_disk(self, disk, path, root_vgs):
        name = _get(disk, 'name', path, 'str', required=True)
        size = _get(disk, 'size', path, 'int', required=True)
        volumes = _get(disk, 'volumes', path, 'list', required=True)
        checked = []
        for n, volume in enumerate(volumes):
            vpath = '%s.volumes[%d]' % (path, n)
            if not isinstance(volume, dict):
                raise _bad(vpath, 'must be an object')
            kind = _get(volume, 'type', vpath, 'str', required=True)
            if kind not in DISK_VOLUMES:
                raise _bad(vpath + '.type', 'must be one of %s, not %r'
                           % (', '.join(DISK_VOLUMES), kind))
            vsize = _get(volume, 'size', vpath, 'int', required=True)
            checked.append((volume, vpath, kind, vsize))
        # fuel-agent leaves a disk alone when it only carries service
        # space and a share of /boot.
        if size <= 0 or not any(
                vsize > 0 for volume, _, kind, vsize in checked
                if kind not in ACCOUNTING_VOLUMES and
                volume.get('mount') != '/boot'):
            return None
        disk_id = self.new_id(name)
        self.add({'type': 'disk', 'id': disk_id,
                  'match': self.matcher(disk, name, path), 'table': 'gpt'},
                 path)
        self.add_partition(disk_id, BIOS_GRUB_MIB, path, 'bios_grub',
                           flags=['bios_grub'])
        self.add_partition(disk_id, UEFI_RESERVED_MIB, path, 'uefi')
        holds_root = False
        for volume, vpath, kind, vsize in checked:
            if vsize <= 0 or kind in ACCOUNTING_VOLUMES:
                continue
            holds_root |= self.convert_volume(disk_id, volume, vpath, kind,
                                              vsize, root_vgs)
        if holds_root and self.configdrive_id is None:
            self.configdrive_id = self.add_partition(
                disk_id, CONFIGDRIVE_MIB, path, 'configdrive',
                gpt_name='config-2')
        return disk_id

    def matcher(self, disk, name, path):
        """Root device hints for a Fuel disk. fuel-agent matched its by-id
        links, then the by-path link in ``id``, then the kernel name; the
        hints here follow the same preference."""
        extra = _get(disk, 'extra', path, 'list', [])
        for link in extra:
            if isinstance(link, str) and link.startswith('disk/by-id/wwn-'):
                return {'wwn': link[len('disk/by-id/wwn-'):]}
        disk_id = _get(disk, 'id', path, 'str', '')
        if disk_id.startswith('disk/by-path/'):
            return {'by_path': '/dev/' + disk_id}
        return {'name': '/dev/' + name}

    def add_partition(self, disk_id, size, origin, what, flags=(),
                      keep=False, type_guid=None, gpt_name=None):
        """A partition whose id says what it holds: sda-boot, sda-pv-os."""
        part = {'type': 'partition', 'device': disk_id,
                'id': self.new_id('%s-%s' % (disk_id, what)),
                'size': '%d MiB' % size}
        if flags:
            part['flags'] = list(flags)
        if gpt_name:
            part['name'] = gpt_name
        if keep:
            part['keep_data'] = True
        if type_guid:
            part['type_guid'] = type_guid
        return self.add(part, origin)

    def convert_volume(self, disk_id, volume, vpath, kind, size, root_vgs):
        """Partition(s) for one disk volume; True when it holds the root
        file system or a root volume group."""
        mount = _get(volume, 'mount', vpath, 'str')
        keep = _get(volume, 'keep_data', vpath, 'bool', False)
        if _get(volume, 'name', vpath, 'str') == 'cephjournal':
            raise _bad(vpath, 'is a Ceph journal, which fuel-agent split per '
                       'OSD; that is not supported here')
        if mount == '/boot' and kind != 'raid':
            if self.boot_done:
                return False
            self.boot_done = True
        if kind == 'pv':
            vg = _get(volume, 'vg', vpath, 'str', required=True)
            meta = _get(volume, 'lvm_meta_size', vpath, 'int')
            if meta is not None and meta < MIN_LVM_META_MIB:
                raise _bad(vpath + '.lvm_meta_size', 'must be at least %d '
                           '(MiB), as fuel-agent required' % MIN_LVM_META_MIB)
            part = self.add_partition(disk_id, size, vpath, 'pv-' + vg,
                                      flags=['lvm'], keep=keep)
            self.pv_members.setdefault(vg, []).append((part, vpath))
            return vg in root_vgs
        if kind == 'raid' and mount not in (None, 'none'):
            part = self.add_partition(disk_id, size, vpath,
                                      mount.strip('/') or 'root',
                                      flags=['raid'], keep=keep)
            self.raid_members.setdefault(mount, []).append(
                (part, volume, vpath))
            return mount == '/'
        guid = _get(volume, 'partition_guid', vpath, 'str')
        what = (mount or 'part').strip('/') or 'root'
        part = self.add_partition(disk_id, size, vpath, what, keep=keep,
                                  type_guid=guid)
        if kind == 'partition':
            self.add_filesystem(part, volume, vpath, 'xfs')
        return mount == '/'

    def convert_raids(self):
        for mount, members in self.raid_members.items():
            default_fs = 'ext2' if mount == '/boot' else 'xfs'
            volume, vpath = members[0][1], members[0][2]
            for _, other, other_path in members[1:]:
                for key in ('file_system', 'disk_label'):
                    if other.get(key) != volume.get(key):
                        raise _bad(other_path + '.' + key, 'is %r, but %s '
                                   'says %r for the same RAID at %r' % (
                                       other.get(key), vpath,
                                       volume.get(key), mount))
            if len(members) == 1:
                # RAID1 needs two members; one disk gives a plain partition.
                part = self.by_id[members[0][0]]
                part.pop('flags')
                self.add_filesystem(part['id'], volume, vpath, default_fs)
                continue
            raid = {'type': 'raid', 'level': 1,
                    'id': self.new_id('md' + (mount.replace('/', '-')
                                              if mount != '/' else '-root')),
                    'devices': [m[0] for m in members]}
            if any(m[1].get('keep_data') is True for m in members):
                raid['keep_data'] = True
            self.add(raid, vpath)
            self.add_filesystem(raid['id'], volume, vpath, default_fs)

    def convert_vg(self, space, path):
        vg_name = _get(space, 'id', path, 'str', required=True)
        if not _LVM_NAME.match(vg_name):
            raise _bad(path + '.id', '%r is not a valid LVM volume group '
                       'name' % vg_name)
        if vg_name in self.vg_names:
            raise _bad(path + '.id', 'volume group %r is defined twice'
                       % vg_name)
        self.vg_names.add(vg_name)
        volumes = _get(space, 'volumes', path, 'list', [])
        lvs = []
        for n, volume in enumerate(volumes):
            vpath = '%s.volumes[%d]' % (path, n)
            if not isinstance(volume, dict):
                raise _bad(vpath, 'must be an object')
            kind = _get(volume, 'type', vpath, 'str', required=True)
            if kind != 'lv':
                raise _bad(vpath + '.type', 'must be "lv", not %r' % kind)
            if _get(volume, 'size', vpath, 'int', required=True) > 0:
                lvs.append((volume, vpath))
        members = self.pv_members.pop(vg_name, [])
        if not members:
            if lvs:
                raise _bad(path, 'volume group %r has logical volumes but no '
                           'disk gives it a physical volume (a "pv" volume '
                           'with "vg": %r)' % (vg_name, vg_name))
            return
        vg_id = self.new_id('vg-' + vg_name)
        keep = _get(space, 'keep_data', path, 'bool', False)
        vg = {'type': 'volume_group', 'id': vg_id, 'name': vg_name,
              'devices': [m[0] for m in members]}
        if keep:
            vg['keep_data'] = True
        self.add(vg, path)
        for volume, vpath in lvs:
            lv_name = _get(volume, 'name', vpath, 'str', required=True)
            if not _LVM_NAME.match(lv_name):
                raise _bad(vpath + '.name', '%r is not a valid LVM logical '
                           'volume name' % lv_name)
            lv = {'type': 'logical_volume',
                  'id': self.new_id('lv-%s-%s' % (vg_name, lv_name)),
                  'name': lv_name, 'volume_group': vg_id,
                  'size': '%d MiB' % volume['size']}
            if _get(volume, 'keep_data', vpath, 'bool', False):
                lv['keep_data'] = True
            self.add(lv, vpath)
            self.add_filesystem(lv['id'], volume, vpath, 'xfs')

    # -- images and the rest --

    def convert_images(self):
        path = self.base + '.image_data'
        image_data = _get(self.ks_meta, 'image_data', self.base, 'dict', {})
        mounts = {o['mount_point']: o for o in self.storage
                  if o.get('mount_point')}
        for mount, image in image_data.items():
            ipath = "%s['%s']" % (path, mount)
            if not isinstance(image, dict):
                raise _bad(ipath, 'must be an object')
            uri = _get(image, 'uri', ipath, 'str', required=True)
            fmt = _get(image, 'format', ipath, 'str', required=True)
            container = _get(image, 'container', ipath, 'str', 'raw')
            target = mounts.get(mount)
            if target is None:
                raise _bad(ipath, 'is an image for %r, but no volume in '
                           'ks_spaces is mounted there' % mount)
            if fmt != target['fstype']:
                raise _bad(ipath + '.format', 'is %r, but the volume mounted '
                           'at %r is made %s' % (fmt, mount,
                                                 target['fstype']))
            if container not in CONTAINERS:
                raise _bad(ipath + '.container', 'must be one of %s, not %r'
                           % (', '.join(CONTAINERS), container))
            self.images.append({'url': uri, 'format': 'fs_image',
                                'compression': CONTAINERS[container],
                                'target': mount})
            self.image_origins.append(ipath)

    def kernel_params(self, pm_data, pm_path):
        return _get(pm_data, 'kernel_params', pm_path, 'str', '')

    def load(self, document):
        """The validated scheme; its errors point into the Fuel document."""
        try:
            return validator.load(document)
        except validator.InvalidScheme as exc:
            raise validator.InvalidScheme(
                self.fuel_error(e) for e in exc.errors) from None

    def fuel_error(self, error):
        if error.path == '$.storage':
            return validator.SchemeError(
                self.base + '.pm_data.ks_spaces',
                '%s (converted scheme: $.storage)' % error.message)
        match = re.match(r'^\$\.(storage|images)\[(\d+)\]', error.path)
        if not match:
            return error
        origins = (self.origins if match.group(1) == 'storage'
                   else self.image_origins)
        return validator.SchemeError(
            origins[int(match.group(2))],
            '%s (converted scheme: %s)' % (error.message, error.path))

    def configdrive(self):
        """Configdrive contents from the whole provision data: what
        fuel-agent's cloud-init templates got, in Ironic's meta_data."""
        if self.whole is None:
            return None
        keys = self.ks_meta.get('authorized_keys') or []
        keys = [k for k in (keys if isinstance(keys, list) else [])
                if isinstance(k, str)]
        if isinstance(self.ks_meta.get('auth_key'), str):
            keys.append(self.ks_meta['auth_key'])
        hostname = self.whole.get('hostname')
        if not keys and not isinstance(hostname, str):
            return None
        meta = {'public_keys': {str(n): k for n, k in enumerate(keys)}}
        if isinstance(hostname, str):
            meta['hostname'] = hostname
        return {'meta_data': meta}


def convert(data):
    """A :class:`input_format.ProvisionRequest` from Fuel data.

    :raises input_format.InputError: for malformed Fuel data.
    :raises validator.InvalidScheme: when the layout it describes is not
        valid; paths point into ``data``.
    """
    converter = _Converter(data)
    scheme, kernel_params = converter.convert()
    name = converter.whole.get('name') if converter.whole else None
    return input_format.ProvisionRequest(
        scheme=scheme, node_name=name if isinstance(name, str) else None,
        boot_mode='bios', kernel_params=kernel_params,
        configdrive=converter.configdrive())


class NailgunDataDriver(data_drivers.DataDriver):
    """Fuel provisioning data: the provision JSON or its ks_meta."""

    @property
    def request(self):
        return convert(self.data)

