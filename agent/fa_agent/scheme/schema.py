"""JSON Schema of the partitioning scheme (format version 1).

This checks shapes and types only; relations between objects (ids that
must exist, sizes that must fit, ...) are checked in :mod:`validator`.
"""

SCHEME_VERSION = 1

FSTYPES = ('ext2', 'ext3', 'ext4', 'xfs', 'vfat', 'btrfs', 'swap')
PARTITION_FLAGS = ('bios_grub', 'esp', 'boot', 'raid', 'lvm', 'swap')
RAID_LEVELS = (0, 1, 5, 6, 10)
IMAGE_FORMATS = ('raw', 'qcow2', 'fs_image', 'tar')
COMPRESSIONS = ('auto', 'none', 'gzip', 'xz', 'zstd', 'bzip2')
CHECKSUM_ALGORITHMS = ('sha256', 'sha512', 'md5')
BOOT_MODES = ('bios', 'uefi', 'both')
DISK_HINTS = ('name', 'by_path', 'serial', 'wwn', 'wwn_with_extension',
              'wwn_vendor_extension', 'vendor', 'model', 'size',
              'rotational', 'hctl')

_LVM_NAME = {'type': 'string',
             'pattern': r'^[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,126}$'}
_ID = {'type': 'string', 'pattern': r'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'}
_SIZE = {'type': 'string', 'minLength': 1}
_HINT_VALUE = {'anyOf': [{'type': 'string', 'minLength': 1},
                         {'type': 'integer', 'minimum': 0}]}


def _object(type_name, required, properties):
    properties = dict(properties, type={'const': type_name}, id=_ID)
    return {
        'type': 'object',
        'required': ['type', 'id'] + list(required),
        'additionalProperties': False,
        'properties': properties,
    }


DISK = _object('disk', ['match'], {
    'match': {
        'type': 'object', 'minProperties': 1, 'additionalProperties': False,
        'properties': dict(
            {hint: _HINT_VALUE for hint in DISK_HINTS},
            rotational={'type': 'boolean'}),
    },
    'table': {'enum': ['gpt', 'msdos']},
    'keep_data': {'type': 'boolean'},
})

PARTITION = _object('partition', ['device', 'size'], {
    'device': _ID,
    'size': _SIZE,
    'flags': {'type': 'array', 'uniqueItems': True,
              'items': {'enum': list(PARTITION_FLAGS)}},
    'name': {'type': 'string', 'maxLength': 36},
    'type_guid': {'type': 'string', 'pattern':
                  r'^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$'},
    'keep_data': {'type': 'boolean'},
})

RAID = _object('raid', ['level', 'devices'], {
    'name': {'type': 'string', 'pattern': r'^[A-Za-z0-9_.-]{1,32}$'},
    'level': {'enum': list(RAID_LEVELS)},
    'devices': {'type': 'array', 'minItems': 1, 'items': _ID},
    'spares': {'type': 'array', 'items': _ID},
    'metadata': {'enum': ['0.90', '1.0', '1.1', '1.2']},
    'keep_data': {'type': 'boolean'},
})

VOLUME_GROUP = _object('volume_group', ['name', 'devices'], {
    'name': _LVM_NAME,
    'devices': {'type': 'array', 'minItems': 1, 'items': _ID},
    'keep_data': {'type': 'boolean'},
})

LOGICAL_VOLUME = _object('logical_volume', ['name', 'volume_group', 'size'], {
    'name': _LVM_NAME,
    'volume_group': _ID,
    'size': _SIZE,
    'keep_data': {'type': 'boolean'},
})

FILESYSTEM = _object('filesystem', ['device', 'fstype'], {
    'device': _ID,
    'fstype': {'enum': list(FSTYPES)},
    'label': {'type': 'string', 'minLength': 1},
    'mkfs_options': {'type': 'array', 'items': {'type': 'string'}},
    'mount_point': {'type': 'string', 'pattern': '^/'},
    'mount_options': {'type': 'string', 'minLength': 1},
    'fstab': {'type': 'boolean'},
    'keep_data': {'type': 'boolean'},
})

STORAGE_TYPES = {
    'disk': DISK,
    'partition': PARTITION,
    'raid': RAID,
    'volume_group': VOLUME_GROUP,
    'logical_volume': LOGICAL_VOLUME,
    'filesystem': FILESYSTEM,
}

IMAGE = {
    'type': 'object',
    'required': ['url', 'format', 'target'],
    'additionalProperties': False,
    'properties': {
        'id': _ID,
        'url': {'type': 'string', 'pattern': '^(https?|file)://'},
        'format': {'enum': list(IMAGE_FORMATS)},
        'compression': {'enum': list(COMPRESSIONS)},
        'checksum': {
            'type': 'object', 'required': ['algorithm', 'value'],
            'additionalProperties': False,
            'properties': {
                'algorithm': {'enum': list(CHECKSUM_ALGORITHMS)},
                'value': {'type': 'string', 'pattern': '^[0-9a-fA-F]+$'},
            },
        },
        'target': {'type': 'string', 'minLength': 1},
    },
}

SCHEME = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    'title': 'ironic-fa-driver partitioning scheme',
    'type': 'object',
    'required': ['storage'],
    'additionalProperties': False,
    'properties': {
        'version': {'const': SCHEME_VERSION},
        'storage': {
            'type': 'array', 'minItems': 1,
            # Dispatch on "type" so an error names the object's own fields
            # instead of listing a failure for every branch.
            'items': {
                'type': 'object', 'required': ['type'],
                'properties': {'type': {'enum': list(STORAGE_TYPES)}},
                'allOf': [
                    {'if': {'properties': {'type': {'const': name}},
                            'required': ['type']},
                     'then': schema}
                    for name, schema in STORAGE_TYPES.items()
                ],
            },
        },
        'images': {'type': 'array', 'items': IMAGE},
        'configdrive': {
            'type': 'object', 'required': ['device'],
            'additionalProperties': False,
            'properties': {'device': _ID, 'size': _SIZE},
        },
        'bootloader': {
            'type': 'object', 'additionalProperties': False,
            'properties': {
                'mode': {'enum': list(BOOT_MODES)},
                'devices': {'type': 'array', 'items': _ID},
                'kernel_params': {'type': 'string'},
            },
        },
    },
}
