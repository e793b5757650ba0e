"""Step ``filesystems``: mkfs and mkswap with the scheme's labels and
options. Kept file systems and those an fs_image brings are left alone.
"""

from fa_agent.steps import images

# fstype: (command, force flag, label flag)
MKFS = {
    'ext2': ('mkfs.ext2', '-F', '-L'),
    'ext3': ('mkfs.ext3', '-F', '-L'),
    'ext4': ('mkfs.ext4', '-F', '-L'),
    'xfs': ('mkfs.xfs', '-f', '-L'),
    'btrfs': ('mkfs.btrfs', '-f', '-L'),
    'vfat': ('mkfs.vfat', None, '-n'),
    'swap': ('mkswap', '-f', '-L'),
}


def mkfs_command(fs, device_path):
    program, force, label_flag = MKFS[fs.fstype]
    cmd = [program] + ([force] if force else [])
    if fs.label:
        cmd += [label_flag, fs.label]
    return cmd + list(fs.mkfs_options) + [device_path]


def run(ctx):
    from_images = images.filesystems_from_images(ctx.scheme)
    for fs in ctx.scheme.of_type('filesystem'):
        path = ctx.path(fs.id)
        if ctx.kept(fs.id):
            ctx.note('keeping %s on %s (%s)' % (fs.fstype, path, fs.id))
            continue
        if fs.id in from_images:
            ctx.note('%s on %s comes from an image' % (fs.id, path))
            continue
        ctx.progress('making %s on %s (%s)' % (fs.fstype, path, fs.id))
        ctx.runner.execute(*mkfs_command(fs, path))
        uuid = ctx.signature_of(path, fresh=True).get('UUID')
        ctx.remember(fs.id, type='filesystem', path=path, fstype=fs.fstype,
                     label=fs.label, uuid=uuid)
