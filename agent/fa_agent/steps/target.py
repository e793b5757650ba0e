"""Step ``target``: mount the new system and configure its storage:
fstab by UUID, mdadm.conf, and a new initramfs when the root file system
needs RAID or LVM to be found at boot.
"""

import os

# Where a chroot needs the ramdisk's own kernel interfaces.
SYSTEM_MOUNTS = (('/dev', None, True), ('proc', 'proc', False),
                 ('sysfs', 'sysfs', False), ('/run', None, True))
SYSTEM_DIRS = ('/dev', '/proc', '/sys', '/run')
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
        ctx.mount(ctx.path(fs.id), ctx.in_target(fs.mount_point),
                  fstype=fs.fstype)


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
    ctx.write_file(ctx.in_target('/etc/fstab'), fstab(ctx))
    arrays = ctx.scheme.of_type('raid')
    if arrays:
        write_mdadm_conf(ctx, arrays)
    if root_needs_assembly(ctx.scheme):
        ctx.progress('rebuilding the initramfs (root is on RAID or LVM)')
        mount_system_dirs(ctx)
        ctx.runner.execute('chroot', ctx.target_dir, 'sh', '-c', INITRAMFS)


def fstab(ctx):
    lines = ['# Written by fa-agent from the partitioning scheme.']
    for fs in ctx.scheme.of_type('filesystem'):
        if not fs.in_fstab:
            continue
        if fs.fstype == 'swap':
            where, options, passno = 'none', fs.mount_options or 'sw', 0
        else:
            where = fs.mount_point or 'none'
            options = fs.mount_options or 'defaults'
            passno = 1 if where == '/' else 2
        lines.append('UUID=%s %s %s %s 0 %d' % (
            ctx.uuid_of(fs.id), where, fs.fstype, options, passno))
    return '\n'.join(lines) + '\n'


def write_mdadm_conf(ctx, arrays):
    lines = ['# Written by fa-agent: the arrays of the partitioning scheme.']
    for raid in arrays:
        out, _ = ctx.runner.execute('mdadm', '--detail', '--brief',
                                    ctx.path(raid.id))
        lines.append(out.strip() or 'ARRAY %s' % ctx.path(raid.id))
    # Debian reads /etc/mdadm/mdadm.conf, Red Hat /etc/mdadm.conf.
    debian = ctx.in_target('/etc/mdadm')
    name = ('/etc/mdadm/mdadm.conf' if ctx.dry_run or os.path.isdir(debian)
            else '/etc/mdadm.conf')
    ctx.write_file(ctx.in_target(name), '\n'.join(lines) + '\n')


def root_needs_assembly(scheme):
    root = scheme.filesystem_at('/')
    by_id = scheme.by_id
    return any(by_id[a].type in ('raid', 'logical_volume')
               for a in scheme.ancestors(root.id))

