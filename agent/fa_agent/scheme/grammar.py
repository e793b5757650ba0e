"""Grammars for the scheme's free text: what each field may hold so that
no tool on the node ever interprets it.

Scheme text reaches ``/etc/default/grub`` (sourced by a root shell),
``grub.cfg`` (GRUB's own script language), ``/etc/fstab`` and the
argument lists of mkfs, mdadm and LVM. Rather than escaping for each of
those, the validator accepts only text that means the same to all of
them. Each function returns ``None`` when the value is fine, or the
reason it is not, for the validator to report at the field's JSON path.
"""

import re
import unicodedata

# A kernel parameter is ``key`` or ``key=value``. Its characters are ones
# that neither a shell inside double quotes nor GRUB's script parser
# treats specially: no $ ` ' " \ ; & | < > { } # * ? ( ) and no spaces
# inside a parameter.
_KERNEL_KEY = r'[A-Za-z0-9_.-]+'
_KERNEL_VALUE = r'[A-Za-z0-9_.,:=/@+%~!^\[\]-]*'
_KERNEL_PARAM = re.compile(r'%s(=%s)?' % (_KERNEL_KEY, _KERNEL_VALUE))
# x86 and arm64 kernels take at most 2048 bytes of command line.
KERNEL_CMDLINE_MAX = 2048

_MOUNT_OPTION = re.compile(r'[A-Za-z0-9_.=:/@+-]+')
MOUNT_OPTIONS_MAX = 4095  # mount(2) copies at most one page of options

# A mount point component; no whitespace, quotes, backslash or $.
_PATH_COMPONENT = re.compile(r'[A-Za-z0-9._+@:,=~%-]+')
PATH_MAX = 4096
NAME_MAX = 255
# The installed system mounts its kernel API file systems there, and the
# agent binds the ramdisk's own over them to run commands in the target.
API_MOUNTS = ('/dev', '/proc', '/sys', '/run')

# Longest label each mkfs accepts, in bytes of UTF-8.
LABEL_LIMITS = {'ext2': 16, 'ext3': 16, 'ext4': 16, 'xfs': 12, 'vfat': 11,
                'btrfs': 255, 'swap': 15}
# Characters FAT does not allow in a volume label (mkfs.fat refuses them).
# Lower case is accepted: mkfs.fat only warns that some systems show it
# upper case, and existing schemes use it.
_FAT_LABEL_FORBIDDEN = set('*?.,;:/\\|+=<>[]"')

GPT_NAME_MAX = 36  # UTF-16 code units

# LVM's own rules (lvm(8), "VALID NAMES"): names it refuses or reserves.
LVM_RESERVED_LV_PREFIXES = ('snapshot', 'pvmove')
LVM_RESERVED_LV_PARTS = ('_cdata', '_cmeta', '_corig', '_iorig', '_mimage',
                         '_mlog', '_pmspare', '_rimage', '_rmeta', '_tdata',
                         '_tmeta', '_vdata', '_vorigin', '_wcorig')
# A volume group appears as /dev/<name>: it cannot take the name of what
# the kernel or udev puts there.
_DEV_NAMES = re.compile(
    r'(block|bsg|bus|char|console|core|cpu|disk|dri|fd|full|fuse|hugepages|'
    r'input|kmsg|kvm|log|mapper|md|mem|mqueue|net|null|port|ptmx|pts|'
    r'random|rtc\d*|shm|snd|stderr|stdin|stdout|tty\w*|urandom|vfio|zero|'
    r'(sd|hd|vd|xvd)[a-z]+|nvme\d\w*|loop\d*|loop-control|md\d+|dm-\d+|'
    r'sr\d+|ram\d+|nbd\d+|zram\d+)')
# Device-mapper names hold "vg-lv" with each "-" doubled, in 127 bytes.
DM_NAME_MAX = 127


def _control(text):
    """The first control or format character in ``text``, if any."""
    for char in text:
        if unicodedata.category(char) in ('Cc', 'Cf', 'Cs', 'Co', 'Cn',
                                          'Zl', 'Zp'):
            return char
    return None


def utf8_length(text):
    """Bytes of ``text`` in UTF-8, or None when it cannot be encoded (a lone
    surrogate, which JSON's \\ud800 escapes can produce)."""
    try:
        return len(text.encode('utf-8'))
    except UnicodeEncodeError:
        return None


def kernel_params_problem(text):
    if len(text) > KERNEL_CMDLINE_MAX:
        return 'kernel parameters are at most %d characters, got %d' % (
            KERNEL_CMDLINE_MAX, len(text))
    for param in text.split(' '):
        if param and not _KERNEL_PARAM.fullmatch(param):
            return ('%r is not a plain kernel parameter: each is key or '
                    'key=value separated by spaces, of letters, digits and '
                    '_ . , : = / @ + %% ~ ! ^ [ ] - (no $, quotes, '
                    'backslash, backtick, ;, &, |, <, >, {, }, #, * or '
                    'control characters)' % param)
    return None


def mount_options_problem(text):
    if len(text) > MOUNT_OPTIONS_MAX:
        return 'mount options are at most %d characters' % MOUNT_OPTIONS_MAX
    for option in text.split(','):
        if not _MOUNT_OPTION.fullmatch(option):
            return ('%r is not a mount option: options are separated by '
                    'commas, each of letters, digits and _ . = : / @ + - '
                    '(no spaces, quotes, # or control characters)' % option)
    return None


def normalise_path(path):
    """Where an absolute path lands: empty and "." components dropped,
    ".." resolved (never above "/")."""
    parts = []
    for part in path.split('/'):
        if part in ('', '.'):
            continue
        if part == '..':
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return '/' + '/'.join(parts)


def mount_point_problem(path):
    """A mount point must be a normalised absolute path of safe
    characters, so it names one place and needs no escaping in fstab."""
    if not path.startswith('/'):
        return 'must be an absolute path (start with "/")'
    if path == '/':
        return None
    size = utf8_length(path)
    if size is None:
        return 'not valid text (a lone surrogate escape)'
    if size > PATH_MAX - 1:
        return 'a path is at most %d bytes' % (PATH_MAX - 1)
    if path.endswith('/'):
        return 'must not end with "/" (write %r)' % normalise_path(path)
    for part in path[1:].split('/'):
        if part == '':
            return 'has an empty component ("//"); write %r' % (
                normalise_path(path))
        if part in ('.', '..'):
            return 'has a %r component; mount points are normalised ' \
                   'paths' % part
        if len(part) > NAME_MAX:
            return 'a path component is at most %d bytes' % NAME_MAX
        if not _PATH_COMPONENT.fullmatch(part):
            return ('%r holds characters not allowed in a mount point: use '
                    'letters, digits and . _ + @ : , = ~ %% - (no spaces, '
                    'quotes, backslash or control characters)' % part)
    for api in API_MOUNTS:
        if path == api or path.startswith(api + '/'):
            return ('%s is where the kernel\'s own file systems are mounted; '
                    'a file system of the scheme cannot go there' % api)
    return None


def label_problem(fstype, label):
    limit = LABEL_LIMITS[fstype]
    char = _control(label)
    if char is not None:
        return 'labels cannot hold control characters (found %r)' % char
    size = utf8_length(label)
    if size is None:
        return 'not valid text (a lone surrogate escape)'
    if fstype == 'vfat':
        bad = sorted(c for c in set(label) if c in _FAT_LABEL_FORBIDDEN or
                     not ' ' <= c <= '~')
        if bad:
            return ('vfat labels are ASCII without %s (found %s)'
                    % (''.join(sorted(_FAT_LABEL_FORBIDDEN)),
                       ', '.join(map(repr, bad))))
    if size > limit:
        return '%s labels are at most %d bytes of UTF-8, this one has %d' % (
            fstype, limit, size)
    return None


def gpt_name_problem(name):
    char = _control(name)
    if char is not None:
        return 'partition names cannot hold control characters (found %r)' \
            % char
    try:
        units = len(name.encode('utf-16-le')) // 2
    except UnicodeEncodeError:
        return 'not valid text (a lone surrogate escape)'
    if units > GPT_NAME_MAX:
        return 'a GPT partition name holds %d UTF-16 code units, this one ' \
               'needs %d' % (GPT_NAME_MAX, units)
    return None


def raid_name_problem(name):
    if name in ('.', '..'):
        return '%r would name /dev/md itself or its parent' % name
    return None


def vg_name_problem(name):
    if name in ('.', '..'):
        return 'LVM refuses %r as a volume group name' % name
    if _DEV_NAMES.fullmatch(name):
        return ('/dev/%s is the kernel\'s or udev\'s; a volume group '
                'cannot take that name' % name)
    return None


def lv_name_problem(name):
    if name in ('.', '..'):
        return 'LVM refuses %r as a logical volume name' % name
    for prefix in LVM_RESERVED_LV_PREFIXES:
        if name.startswith(prefix):
            return 'LVM reserves names starting with %r' % prefix
    for part in LVM_RESERVED_LV_PARTS:
        if part in name:
            return 'LVM reserves names containing %r' % part
    return None


def dm_name_length(vg_name, lv_name):
    """Length of the device-mapper name LVM gives ``vg_name/lv_name``."""
    return (len(vg_name) + vg_name.count('-') + 1 +
            len(lv_name) + lv_name.count('-'))
