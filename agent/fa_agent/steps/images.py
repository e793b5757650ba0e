"""Step ``images``: write each image of the scheme to its target.

Whole-disk images (raw, qcow2) go to a disk, fs_image images to a block
device and are then grown to it and given a UUID of their own, tar trees
are extracted into the mounted file system. The streaming itself is
:mod:`fa_agent.images`.

A file-system image holds one whole tree. When the scheme mounts other
file systems below it (a separate ``/var``), the image's files there are
moved into them, or the fresh, empty file system would hide them (and
with them dpkg's database, ``/var/tmp``, ...).
"""

import importlib

from fa_agent import errors
from fa_agent import redact
from fa_agent.steps import safepath
from fa_agent.steps import target as target_step

# A file-system image carries the UUID it was built with. Each deploy
# gives it a new one: fstab and GRUB find file systems by UUID, so two
# volumes written from one image must differ, and a re-deploy must not
# look like the system it replaced. (The file system was just checked
# by the grow step, which tune2fs asks for.)
NEW_UUID = {
    'ext2': ('tune2fs', '-U', 'random'),
    'ext3': ('tune2fs', '-U', 'random'),
    'ext4': ('tune2fs', '-U', 'random'),
    'xfs': ('xfs_admin', '-U', 'generate'),
    'btrfs': ('btrfstune', '-f', '-u'),
}


def target_of(scheme, image):
    """The storage object an image is written to (a mount point names
    the file system mounted there)."""
    if image.target.startswith('/'):
        return scheme.filesystem_at(image.target)
    return scheme.by_id[image.target]


def filesystems_from_images(scheme):
    """Ids of file systems an fs_image brings, which mkfs must skip."""
    result = set()
    for image in scheme.images:
        if image.format == 'fs_image':
            obj = target_of(scheme, image)
            result.update(fs.id for fs in scheme.of_type('filesystem')
                          if obj.id in (fs.id, fs.device))
    return result


def _images_module():
    # Imported when needed so a plan and the other steps work even in a
    # build of the agent without image support.
    try:
        return importlib.import_module('fa_agent.images')
    except ImportError as exc:
        raise errors.ProvisionError('image support is missing from this '
                                    'agent: %s' % exc) from exc


def run(ctx):
    for image in ctx.scheme.images:
        obj = target_of(ctx.scheme, image)
        if image.format == 'tar':
            target_step.mount_tree(ctx)
            directory = target_step.mount_point_in_target(ctx, obj)
            _announce(ctx, 'extracting %s into %s'
                      % (redact.url(image.url), directory))
            if not ctx.dry_run:
                # mount_tree walked it already; an earlier image of this
                # run may have changed the tree since.
                ctx.target_dir_for(directory, 'extract an image into %s'
                                   % obj.mount_point)
                result = _images_module().extract_tar(
                    image, directory, runner=ctx.runner,
                    on_progress=_reporter(ctx), policy=ctx.image_policy)
                ctx.remember(obj.id, image=result)
            continue
        path = ctx.path(obj.id)
        _announce(ctx, 'writing %s image %s to %s'
                  % (image.format, redact.url(image.url), path))
        if ctx.dry_run:
            if image.format == 'fs_image':
                below = filesystems_below(ctx, target_of_fs(ctx.scheme, obj))
                if below:
                    ctx.note('what the image holds in %s is moved into '
                             'those file systems' % ', '.join(
                                 fs.mount_point for fs in below))
            continue
        result = write_image(image, path, ctx.runner, _reporter(ctx),
                             ctx.image_policy)
        ctx.remember(obj.id, image=result)
        if image.is_whole_disk:
            ctx.settle(path)
        else:
            fs = _check_filesystem(ctx, obj, path)
            if fs is not None and fs.mount_point:
                move_into_filesystems_below(ctx, fs)


def write_image(image, path, runner, on_progress, policy):
    """Stream a raw, qcow2 or fs_image image onto ``path``, as the step
    does (``tools/bench_image_write.py`` times this very call).

    No ``zeroed`` claim: wipe erases signatures, not every block, so the
    device may hold old data. The writer still avoids writing zero
    blocks where the device zeroes ranges itself (BLKZEROOUT).
    """
    return _images_module().write_to_device(
        image, path, runner=runner, on_progress=on_progress, policy=policy)


def _announce(ctx, message):
    # A dry run shows the write in the plan: it runs no command for it.
    (ctx.note if ctx.dry_run else ctx.progress)(message)


def _reporter(ctx):
    return lambda percent, message: ctx.progress(message, percent)


def _check_filesystem(ctx, obj, path):
    """An fs_image (grown by the writer) must hold the scheme's type.
    Returns the scheme's file system, if it names one."""
    fs = target_of_fs(ctx.scheme, obj)
    if fs is None:
        return None
    sig = ctx.signature_of(path, fresh=True)
    if sig.get('TYPE') != fs.fstype:
        raise errors.BadInput(
            'the image for %s holds %s, but the scheme says %s'
            % (fs.id, sig.get('TYPE') or 'no file system', fs.fstype))
    if fs.fstype in NEW_UUID:
        ctx.runner.execute(*NEW_UUID[fs.fstype], path)
        sig = ctx.signature_of(path, fresh=True)
    ctx.remember(fs.id, type='filesystem', path=path, fstype=fs.fstype,
                 uuid=sig.get('UUID'))
    return fs


def target_of_fs(scheme, obj):
    """The file system an fs_image written to ``obj`` becomes."""
    return next((f for f in scheme.of_type('filesystem')
                 if obj.id in (f.id, f.device)), None)


def filesystems_below(ctx, fs):
    """File systems the scheme mounts below ``fs`` that this run makes
    empty: not kept, not brought by an image. Deepest first."""
    if fs is None or not fs.mount_point:
        return []
    top = fs.mount_point.rstrip('/') + '/'
    from_images = filesystems_from_images(ctx.scheme)
    below = [f for f in target_step.mounted_filesystems(ctx.scheme)
             if f.id != fs.id and f.mount_point.startswith(top)
             and not ctx.kept(f.id) and f.id not in from_images]
    return sorted(below, key=lambda f: f.mount_point.count('/'),
                  reverse=True)


def move_into_filesystems_below(ctx, fs):
    """Move the image's files below each mount point of
    :func:`filesystems_below` into that file system (the mount point
    itself stays, empty)."""
    below = filesystems_below(ctx, fs)
    if not below:
        return
    top = target_step.mount_point_in_target(ctx, fs)
    staging = ctx.target_dir.rstrip('/') + '.below'
    ctx.mount(ctx.path(fs.id), top, fstype=fs.fstype)
    for child in below:
        # Walked without following symlinks: an image with /var -> /etc
        # must not make cp read, and find delete, the ramdisk's files.
        held = safepath.list_dir(ctx.target_dir, child.mount_point,
                                 'move the image\'s %s into %s'
                                 % (child.mount_point, child.id))
        if not held:
            continue
        source = target_step.mount_point_in_target(ctx, child)
        ctx.progress('moving %s of the image into %s (%s)' % (
            child.mount_point, ctx.path(child.id), child.id))
        ctx.mount(ctx.path(child.id), staging, fstype=child.fstype)
        # vfat keeps no owners or modes: copy what it can hold
        copy = (('cp', '-r', '--preserve=timestamps')
                if child.fstype == 'vfat' else ('cp', '-a'))
        ctx.runner.execute(*copy, source + '/.', staging + '/')
        ctx.runner.execute('find', source, '-mindepth', '1', '-delete')
        ctx.unmount(staging)
    ctx.unmount(top)
