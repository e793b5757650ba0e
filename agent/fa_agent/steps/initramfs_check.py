"""Whether the image's own initramfs can assemble the root's RAID and LVM,
so that the target step rebuilds it only when it cannot (a rebuild in
the new system took ~150 s of a 312 s lab deploy under QEMU TCG).

Only what a rebuild in the new system would change is judged: the
image's /etc/lvm and udev rules go into a rebuilt initramfs unchanged,
but the mdadm and lvm2 hooks (packages installed after the initramfs was
made), the modules, and the mdadm.conf copy may differ. Debian's
initramfs-tools (mdadm 4.2 and lvm2 2.03 hooks, bookworm) is the one
builder trusted; in doubt the answer is "rebuild":

- RAID: ``sbin/mdadm``, the ``scripts/local-block/mdadm`` (or
  ``local-top``) boot script, md-mod and each level's personality
  (module or built-in), and no mdadm.conf in the initramfs that could
  stop the new arrays: ``mdadm --assemble --scan`` (the boot script)
  assembles only the ARRAY lines when there are any, otherwise every
  array it finds (foreign ones under another name; root is found by
  UUID). So: no ARRAY line, no AUTO word with ``-``, no DEVICE line
  narrower than ``partitions containers``. The hook copies the image's
  /etc/mdadm/mdadm.conf, or mkconf's scan of the machine the image was
  built on: ARRAY lines there name that machine's arrays.
- LVM: ``sbin/lvm``, lvm2's udev rule ``69-lvm.rules`` that activates
  volume groups as their devices appear (or the older
  ``scripts/local-top/lvm2``), and dm-mod.

Nothing from the image runs: :mod:`fa_agent.initramfs` reads the files.
"""

import re

from fa_agent import errors
from fa_agent import initramfs
from fa_agent.steps import safepath

# /boot names: Debian's initramfs-tools, and dracut's.
_KERNEL = (re.compile(r'initrd\.img-(.+)'), re.compile(r'initramfs-(.+)\.img'))
LEVEL_MODULES = {0: 'raid0', 1: 'raid1', 5: 'raid456', 6: 'raid456',
                 10: 'raid10'}
MDADM = ('sbin/mdadm', 'usr/sbin/mdadm')
MDADM_SCRIPTS = ('scripts/local-block/mdadm', 'scripts/local-top/mdadm')
LVM = ('sbin/lvm', 'usr/sbin/lvm')
LVM_ACTIVATION = ('lib/udev/rules.d/69-lvm.rules',
                  'usr/lib/udev/rules.d/69-lvm.rules',
                  'scripts/local-top/lvm2')
INITRAMFS_TOOLS = ('conf/initramfs.conf', 'scripts/local')
_MDADM_CONF = re.compile(r'etc/(mdadm/mdadm\.conf|mdadm\.conf|'
                         r'mdadm/mdadm\.conf\.d/[^/]+|mdadm\.conf\.d/[^/]+)')
_MODULE = re.compile(r'(?:^|/)lib/modules/[^/]+/(?:kernel|updates|extra)/'
                     r'(?:.*/)?([^/]+)\.ko(?:\.(?:zst|xz|gz))?')
_BUILTIN = re.compile(r'(?:.*/)?lib/modules/[^/]+/modules\.builtin')
_SCAN_WORDS = ('partitions', 'containers')


def needs(scheme):
    """(RAID levels, LVM?) that the root file system sits on."""
    root = scheme.filesystem_at('/')
    below = [scheme.by_id[i] for i in scheme.ancestors(root.id)]
    return ({o.level for o in below if o.type == 'raid'},
            any(o.type == 'logical_volume' for o in below))


def what(levels, lvm):
    return ' and '.join(['RAID'] * bool(levels) + ['LVM'] * lvm)


def decide(ctx):
    """(rebuild?, why) for the new system in the target."""
    levels, lvm = needs(ctx.scheme)
    if ctx.dry_run:
        return True, ('a dry run does not read the image\'s initramfs (a '
                      'real run keeps it when it assembles %s)'
                      % what(levels, lvm))
    try:
        names = safepath.list_dir(ctx.target_dir, '/boot',
                                  'look for the initramfs') or ()
    except errors.BadInput as exc:
        return True, str(exc)
    found = sorted((name, kernel_of(name)) for name in names
                   if kernel_of(name))
    if not found:
        return True, 'the image has no initramfs in /boot'
    problems = []
    for name, kernel in found:
        path = '/boot/' + name
        builtin = target_builtin(ctx.target_dir, kernel)
        lacking = check_file(ctx.target_dir, path, levels, lvm, builtin)
        if lacking:
            problems.append('%s: %s' % (path, ', '.join(lacking)))
    if problems:
        return True, '; '.join(problems)
    return False, ('initramfs of %s already assembles %s: not rebuilt' % (
        ', '.join(k for _n, k in found), what(levels, lvm)))


def kernel_of(name):
    for pattern in _KERNEL:
        match = pattern.fullmatch(name)
        if match:
            return match.group(1)
    return None


def wanted(name):
    """Files whose text the check reads."""
    return bool(_MDADM_CONF.fullmatch(name) or _BUILTIN.fullmatch(name))


def target_builtin(root, kernel):
    """The modules ``kernel`` of the target has built in, from its
    modules.builtin (for an initramfs that carries no copy)."""
    for directory in ('/usr/lib/modules', '/lib/modules'):
        try:
            text = safepath.read_file(root, '%s/%s/modules.builtin'
                                      % (directory, kernel))
        except errors.BadInput:  # /lib -> usr/lib
            continue
        if text is not None:
            return builtin_names(text)
    return set()


def builtin_names(text):
    names = set()
    for line in text.splitlines():
        stem = line.strip().rpartition('/')[2]
        if stem.endswith('.ko'):
            names.add(_module_name(stem[:-3]))
    return names


def check_file(root, path, levels, lvm, builtin=()):
    """What keeps initramfs ``path`` of the target from assembling the
    root (empty: nothing); ``builtin``: modules the kernel has built in."""
    try:
        fd = safepath.open_read(root, path, 'read the initramfs')
        if fd is None:
            return ['it is gone']
        contents = initramfs.read_file(fd, wanted)
    except (errors.BadInput, errors.CommandFailed,
            initramfs.Unreadable) as exc:
        return ['cannot read it: %s' % exc]
    return problems(contents, levels, lvm, builtin)


def problems(contents, levels, lvm, builtin=()):
    """What ``contents`` (:class:`fa_agent.initramfs.Contents`) lacks to
    assemble RAID of ``levels`` and (``lvm``) LVM under the root."""
    if not all(contents.has(n) for n in INITRAMFS_TOOLS):
        return ['not made by initramfs-tools (dracut or another builder, '
                'whose assembly rules are not checked here)']
    modules = module_names(contents) | set(builtin)
    found = []
    if levels:
        if not any(contents.has(n) for n in MDADM):
            found.append('no mdadm')
        if not any(contents.has(n) for n in MDADM_SCRIPTS):
            found.append('no mdadm boot script (scripts/local-block/mdadm)')
        for module in sorted({'md-mod'} | {LEVEL_MODULES[level]
                                           for level in levels}):
            if module not in modules:
                found.append('no %s module' % module)
        found += mdadm_conf_problems(contents)
    if lvm:
        if not any(contents.has(n) for n in LVM):
            found.append('no lvm')
        if not any(contents.has(n) for n in LVM_ACTIVATION):
            found.append('no LVM activation (lvm2\'s udev rule '
                         '69-lvm.rules)')
        if 'dm-mod' not in modules:
            found.append('no dm-mod module')
    return found


def _module_name(name):
    return name.replace('_', '-')


def module_names(contents):
    """Modules the initramfs carries or the kernel has built in, with
    ``-`` for ``_`` (md_mod and md-mod are one module)."""
    names = set()
    for name in contents.names:
        match = _MODULE.search(name)
        if match and match.end() == len(name):
            names.add(_module_name(match.group(1)))
    for name, data in contents.files.items():
        if _BUILTIN.fullmatch(name):
            names |= builtin_names(data.decode('utf-8', 'replace'))
    return names


def mdadm_conf_problems(contents):
    """What in the initramfs' mdadm.conf files could keep mdadm from
    assembling arrays it does not list."""
    found = []
    for name in sorted(n for n in contents.names
                       if _MDADM_CONF.fullmatch(n)):
        data = contents.files.get(name)
        if data is None:
            found.append('cannot read its %s' % name)
            continue
        for words in conf_lines(data.decode('utf-8', 'replace')):
            keyword = words[0].lower()
            if len(keyword) >= 3 and 'array'.startswith(keyword):
                found.append('its %s lists arrays (%s), so mdadm assembles '
                             'only those' % (name, ' '.join(words[:2])))
                break
            if len(keyword) >= 3 and 'auto'.startswith(keyword) and any(
                    w.startswith('-') for w in words[1:]):
                found.append('its %s restricts auto-assembly (%s)'
                             % (name, ' '.join(words)))
            if len(keyword) >= 3 and 'device'.startswith(keyword) and any(
                    w not in _SCAN_WORDS for w in words[1:]):
                found.append('its %s limits the devices mdadm scans (%s)'
                             % (name, ' '.join(words)))
    return found


def conf_lines(text):
    """mdadm.conf(5) lines as word lists: ``#`` starts a comment and a
    line that starts with a blank continues the one before."""
    lines = []
    for raw in text.splitlines():
        words = raw.partition('#')[0].split()
        if not words:
            continue
        if raw[:1].isspace() and lines:
            lines[-1] += words
        else:
            lines.append(words)
    return lines
