"""Step ``target``: mount the new system and configure its storage:
fstab by UUID, mdadm.conf, and a new initramfs when the root file system
needs RAID or LVM to be found at boot and the image's own initramfs
cannot assemble them (:mod:`fa_agent.steps.initramfs_check`).

Both files are parsed by the installed system, so nothing from the
scheme (or from a kept disk's superblocks) reaches them unescaped: fstab
fields use the octal escapes of fstab(5), and an mdadm.conf line must be
one ARRAY line of known ``key=value`` words.
"""

import re

from fa_agent import errors
from fa_agent.steps import initramfs_check
from fa_agent.steps import safepath

# Where a chroot needs the ramdisk's own kernel interfaces.
SYSTEM_MOUNTS = (('/dev', None, True), ('proc', 'proc', False),
                 ('sysfs', 'sysfs', False), ('/run', None, True))
SYSTEM_DIRS = ('/dev', '/proc', '/sys', '/run')
ESP_MOUNT = '/boot/efi'
INITRAMFS = ('if command -v update-initramfs >/dev/null; '
             'then update-initramfs -u -k all; '
             'else dracut --force --regenerate-all; fi')


def mounted_filesystems(scheme):
    """File systems with a mount point, parents before children."""
    found = [fs for fs in scheme.of_type('filesystem')
             if fs.mount_point and fs.fstype != 'swap']
    return sorted(found, key=lambda fs: (
        len([p for p in fs.mount_point.split('/') if p]), fs.mount_point))


def mount_tree(ctx):
    """Mount every file system of the scheme under the target directory
    (once per run)."""
    if ctx.target_dir in ctx.mounts:
        return
    for fs in mounted_filesystems(ctx.scheme):
        ctx.mount(ctx.path(fs.id), mount_point_in_target(ctx, fs),
                  fstype=fs.fstype)


def mount_point_in_target(ctx, fs):
    """Where ``fs`` is mounted in the ramdisk; a mount point that would
    leave the target is named by its JSON path."""
    try:
        return ctx.in_target(fs.mount_point)
    except errors.BadInput as exc:
        raise errors.BadInput('%s: %s' % (ctx.field(fs.id, 'mount_point'),
                                          exc)) from None


def mount_system_dirs(ctx):
    if ctx.in_target('/proc') in ctx.mounts:
        return
    for (source, fstype, bind), directory in zip(SYSTEM_MOUNTS,
                                                 SYSTEM_DIRS):
        ctx.mount(source, ctx.in_target(directory), fstype=fstype,
                  bind=bind)


def run(ctx):
    if ctx.scheme.filesystem_at('/') is None:
        ctx.note('no root file system in the scheme: the whole-disk image '
                 'brings its own fstab and boot configuration')
        return
    mount_tree(ctx)
    ctx.progress('writing fstab')
    ctx.write_file('/etc/fstab', fstab(ctx))
    arrays = ctx.scheme.of_type('raid')
    if arrays:
        write_mdadm_conf(ctx, arrays)
    if not root_needs_assembly(ctx.scheme):
        return
    rebuild, reason = initramfs_check.decide(ctx)
    message = 'rebuilding the initramfs: ' + reason if rebuild else reason
    if ctx.dry_run:
        ctx.note(message)
    else:
        ctx.progress(message)
    if not rebuild:
        return
    mount_system_dirs(ctx)
    ctx.runner.execute('chroot', ctx.target_dir, 'sh', '-c', INITRAMFS)


def esp_filesystems(scheme):
    """vfat file systems on an ESP partition or mounted at /boot/efi, the
    mounted one first."""
    by_id = scheme.by_id
    found = [fs for fs in scheme.of_type('filesystem')
             if fs.fstype == 'vfat' and (
                 fs.mount_point == ESP_MOUNT or
                 'esp' in getattr(by_id[fs.device], 'flags', ()))]
    return sorted(found, key=lambda fs: fs.mount_point != ESP_MOUNT)


def fstab(ctx):
    lines = ['# Written by fa-agent from the partitioning scheme.']
    # With a second ESP (one per RAID member), a missing /boot/efi must
    # not stop the boot: the firmware started GRUB from the other one,
    # and systemd would otherwise drop to emergency mode.
    esps = esp_filesystems(ctx.scheme)
    spare_esp = len(esps) > 1
    for fs in ctx.scheme.of_type('filesystem'):
        if not fs.in_fstab:
            continue
        if fs.fstype == 'swap':
            where, options, passno = 'none', fs.mount_options or 'sw', 0
        else:
            where = fs.mount_point or 'none'
            options = fs.mount_options or (
                'defaults,nofail' if spare_esp and where == ESP_MOUNT
                else 'defaults')
            passno = 1 if where == '/' else 2
        source = 'UUID=' + ctx.uuid_of(fs.id)
        # (a dry run's '<uuid of fs-root>' is for people to read)
        fields = [source if ctx.dry_run else fstab_field(source)] + [
            fstab_field(v) for v in (where, fs.fstype, options)]
        lines.append('%s %s %s %s 0 %d' % (*fields, passno))
    return '\n'.join(lines) + '\n'


def fstab_field(value):
    """One fstab(5) field: blanks, backslash and control characters as
    octal escapes (``\\040``), which mount and systemd decode again."""
    return ''.join('\\%03o' % ord(c) if c in ' \\' or ord(c) < 0x20
                   or ord(c) == 0x7f else c for c in value)


# mdadm --detail --brief describes an array with these words; anything
# else in a line (a name holding blanks or quotes, a second line) could
# add directives or devices to what mdadm.conf tells the new system.
MDADM_KEYS = ('metadata', 'name', 'UUID', 'spares', 'level', 'num-devices')
_MDADM_WORD = re.compile(r'[!$-&(-~]+')  # printable ASCII but quotes, #


def mdadm_line(ctx, raid, text):
    """The ARRAY line for ``raid`` from mdadm's ``text``, checked."""
    line = text.strip() or 'ARRAY %s' % ctx.path(raid.id)
    words = line.split(' ')
    keys = [w.partition('=')[0] for w in words[2:]]
    if ('\n' in line or len(words) < 2 or words[0] != 'ARRAY'
            or not words[1].startswith('/dev/md')
            or not all(_MDADM_WORD.fullmatch(w) for w in words)
            or not all('=' in w and k in MDADM_KEYS
                       for w, k in zip(words[2:], keys))
            or len(set(keys)) != len(keys)):
        raise errors.BadInput(
            '%s: mdadm describes the array as %r, which mdadm.conf cannot '
            'hold safely (its name must be letters, digits, "_", ".", ":" '
            'or "-")' % (ctx.field(raid.id, 'name'), line))
    return line


def write_mdadm_conf(ctx, arrays):
    lines = ['# Written by fa-agent: the arrays of the partitioning scheme.']
    for raid in arrays:
        out, _ = ctx.runner.execute('mdadm', '--detail', '--brief',
                                    ctx.path(raid.id))
        lines.append(mdadm_line(ctx, raid, out))
    # Debian reads /etc/mdadm/mdadm.conf, Red Hat /etc/mdadm.conf.
    name = ('/etc/mdadm/mdadm.conf' if ctx.dry_run or safepath.is_dir(
        ctx.target_dir, '/etc/mdadm', 'look for /etc/mdadm')
        else '/etc/mdadm.conf')
    ctx.write_file(name, '\n'.join(lines) + '\n')


def root_needs_assembly(scheme):
    root = scheme.filesystem_at('/')
    by_id = scheme.by_id
    return any(by_id[a].type in ('raid', 'logical_volume')
               for a in scheme.ancestors(root.id))

