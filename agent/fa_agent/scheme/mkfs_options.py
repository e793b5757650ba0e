"""The mkfs options a scheme may give, per file system type.

``mkfs_options`` is a list of argv items passed to mkfs before the
device. Free-form, it could name another device (an external journal or
log, a btrfs device list), make mkfs read a file or directory of the
ramdisk into the new file system (``mkfs.ext4 -d``, ``mkfs.btrfs
--rootdir``, ``mkfs.xfs -p``) or not make the file system at all. So only
the options below are accepted, each with a value that a regular
expression matches whole; no value may hold a ``/``, and nothing else
(no positional argument) may appear.

An option and its value are two items (``["-b", "4096"]``); a long option
may also be written ``--name=value``. Options whose value is a list of
``key=value`` sub-options (``-E`` of ext4, the sections of mkfs.xfs)
accept only the sub-options listed for them.
"""

import re

_NUM = r'[0-9]{1,12}'
_SIZE = r'[0-9]{1,12}[kKmMgG]?'
_BOOL = r'[01]'


def _list(item):
    return r'%s(,%s)*' % (item, item)


class Sub:
    """A value made of comma-separated sub-options, each ``key`` or
    ``key=value``; ``keys`` maps a key to its value regex (None: a bare
    key without value)."""

    def __init__(self, keys):
        self.keys = keys

    def problem(self, value):
        for item in value.split(','):
            key, eq, sub = item.partition('=')
            if key not in self.keys:
                return 'sub-option %r is not allowed (allowed: %s)' % (
                    key, ', '.join(sorted(self.keys)))
            pattern = self.keys[key]
            if pattern is None:
                if eq:
                    return 'sub-option %r takes no value' % key
            elif not eq or not re.fullmatch(pattern, sub):
                return 'sub-option %r needs a value matching %s' % (
                    key, pattern)
        return None


_EXT_EXTENDED = Sub({
    'stride': _NUM, 'stripe_width': _NUM, 'stripe-width': _NUM,
    'resize': _NUM, 'lazy_itable_init': _BOOL, 'lazy_journal_init': _BOOL,
    'assume_storage_prezeroed': _BOOL, 'packed_meta_blocks': _BOOL,
    'num_backup_sb': '[012]', 'root_owner': r'[0-9]{1,10}:[0-9]{1,10}',
    'discard': None, 'nodiscard': None,
    'quotatype': r'(usrquota|grpquota|prjquota)(:(usrquota|grpquota|'
                 r'prjquota))*',
    'encoding': r'utf8(-12\.1)?', 'encoding_flags': 'strict',
})
_EXT_FEATURES = _list(r'\^?[a-z0-9_]{1,32}')

EXT = {
    '-b': _SIZE,            # block size
    '-C': _SIZE,            # cluster size (bigalloc)
    '-e': '(continue|remount-ro|panic)',
    '-E': _EXT_EXTENDED,
    '-g': _NUM,             # blocks per group
    '-G': _NUM,             # flex_bg size
    '-i': _NUM,             # bytes per inode
    '-I': _NUM,             # inode size
    '-J': Sub({'size': _NUM, 'location': _SIZE}),  # never device=
    '-m': r'[0-9]{1,2}(\.[0-9]{1,3})?',            # reserved %
    '-N': _NUM,             # number of inodes
    '-O': _EXT_FEATURES,
    '-T': _list('[a-z0-9_]{1,32}'),                # usage types
    '-j': None,
    '-K': None,
    '-q': None,
}

_XFS_SECTIONS = {
    '-b': Sub({'size': _SIZE}),
    '-d': Sub({'agcount': _NUM, 'agsize': _SIZE, 'su': _SIZE, 'sw': _NUM,
               'sunit': _NUM, 'swidth': _NUM, 'noalign': None}),
    '-i': Sub({'size': _SIZE, 'maxpct': _NUM, 'align': _BOOL,
               'sparse': _BOOL, 'attr': '2', 'projid32bit': _BOOL,
               'nrext64': _BOOL, 'perblock': _NUM}),
    '-l': Sub({'size': _SIZE, 'version': '[12]', 'su': _SIZE,
               'sunit': _NUM, 'lazy-count': _BOOL}),  # never logdev=
    '-m': Sub({'crc': _BOOL, 'finobt': _BOOL, 'reflink': _BOOL,
               'rmapbt': _BOOL, 'bigtime': _BOOL, 'inobtcount': _BOOL}),
    '-n': Sub({'size': _SIZE, 'version': '(2|ci)', 'ftype': _BOOL}),
    '-s': Sub({'size': _SIZE}),
}
XFS = dict(_XFS_SECTIONS, **{'-K': None, '-q': None})

_BTRFS_PROFILE = '(single|dup|SINGLE|DUP)'  # one device: no RAID profiles
_BTRFS_FEATURES = _list(r'\^?[a-z0-9][a-z0-9_-]{0,31}')
BTRFS = {
    '-n': _SIZE, '--nodesize': _SIZE,
    '-s': _SIZE, '--sectorsize': _SIZE,
    '-O': _BTRFS_FEATURES, '--features': _BTRFS_FEATURES,
    '-R': _BTRFS_FEATURES, '--runtime-features': _BTRFS_FEATURES,
    '--csum': '(crc32c|xxhash|sha256|blake2)',
    '--checksum': '(crc32c|xxhash|sha256|blake2)',
    '-d': _BTRFS_PROFILE, '--data': _BTRFS_PROFILE,
    '-m': _BTRFS_PROFILE, '--metadata': _BTRFS_PROFILE,
    '-K': None, '--nodiscard': None,
    '-M': None, '--mixed': None,
    '-q': None, '--quiet': None,
}

VFAT = {
    '-F': '(12|16|32)',     # FAT size
    '-S': '(512|1024|2048|4096|8192|16384|32768)',  # logical sector size
    '-s': '(1|2|4|8|16|32|64|128)',                 # sectors per cluster
    '-f': '[12]',           # number of FATs
    '-R': _NUM,             # reserved sectors
    '-r': _NUM,             # root directory entries
    '-h': _NUM,             # hidden sectors
    '-i': '[0-9A-Fa-f]{8}',  # volume id
    '-a': None,
    '-I': None,
}

SWAP = {
    '-p': _NUM, '--pagesize': _NUM,
}

ALLOWED = {
    'ext2': {k: v for k, v in EXT.items() if k != '-j'},
    'ext3': EXT, 'ext4': EXT,
    'xfs': XFS, 'btrfs': BTRFS, 'vfat': VFAT, 'swap': SWAP,
}


def _value_problem(spec, value):
    if '/' in value:
        return 'values cannot hold "/" (no paths or devices)'
    if isinstance(spec, Sub):
        return spec.problem(value)
    if not re.fullmatch(spec, value):
        return 'needs a value matching %s' % spec
    return None


def problems(fstype, options):
    """``(index, message)`` for each item of ``options`` that mkfs of
    ``fstype`` may not get."""
    table = ALLOWED[fstype]
    found = []
    n = 0
    while n < len(options):
        item = options[n]
        name, eq, joined = item.partition('=') if item.startswith('--') \
            else (item, '', '')
        if name not in table:
            found.append((n, _unknown(fstype, item, table)))
            n += 1
            continue
        spec = table[name]
        if spec is None:
            if eq:
                found.append((n, '%s takes no value' % name))
            n += 1
            continue
        if eq:
            value, where, n = joined, n, n + 1
        elif n + 1 < len(options):
            value, where, n = options[n + 1], n + 1, n + 2
        else:
            found.append((n, '%s needs a value as the next item' % name))
            break
        problem = _value_problem(spec, value)
        if problem:
            found.append((where, '%s %r: %s' % (name, value, problem)))
    return found


def _unknown(fstype, item, table):
    if not item.startswith('-'):
        why = ('%r is not an option; mkfs_options cannot name devices, '
               'files or other arguments' % item)
    elif len(item) > 2 and not item.startswith('--') and item[:2] in table:
        why = ('%s takes no value' % item[:2] if table[item[:2]] is None
               else 'give the value of %s as its own item' % item[:2])
    else:
        why = '%r is not an allowed option for %s' % (item, fstype)
    return '%s (allowed: %s)' % (why, ', '.join(sorted(table)))
