"""Step ``images``: write each image of the scheme to its target.

Whole-disk images (raw, qcow2) go to a disk, fs_image images to a block
device and are then grown to it, tar trees are extracted into the
mounted file system. The streaming itself is :mod:`fa_agent.images`.
"""

import importlib

from fa_agent import errors
from fa_agent.steps import target as target_step


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
            directory = ctx.in_target(obj.mount_point)
            _announce(ctx, 'extracting %s into %s' % (image.url, directory))
            if not ctx.dry_run:
                result = _images_module().extract_tar(
                    image, directory, runner=ctx.runner,
                    on_progress=_reporter(ctx))
                ctx.remember(obj.id, image=result)
            continue
        path = ctx.path(obj.id)
        _announce(ctx, 'writing %s image %s to %s' % (image.format,
                                                      image.url, path))
        if ctx.dry_run:
            continue
        result = _images_module().write_to_device(
            image, path, runner=ctx.runner, on_progress=_reporter(ctx))
        ctx.remember(obj.id, image=result)
        if image.is_whole_disk:
            ctx.settle(path)
        else:
            _check_filesystem(ctx, obj, path)


def _announce(ctx, message):
    # A dry run shows the write in the plan: it runs no command for it.
    (ctx.note if ctx.dry_run else ctx.progress)(message)


def _reporter(ctx):
    return lambda percent, message: ctx.progress(message, percent)


def _check_filesystem(ctx, obj, path):
    """An fs_image (grown by the writer) must hold the scheme's type."""
    fs = next((f for f in ctx.scheme.of_type('filesystem')
               if obj.id in (f.id, f.device)), None)
    if fs is None:
        return
    sig = ctx.signature_of(path, fresh=True)
    if sig.get('TYPE') != fs.fstype:
        raise errors.BadInput(
            'the image for %s holds %s, but the scheme says %s'
            % (fs.id, sig.get('TYPE') or 'no file system', fs.fstype))
    ctx.remember(fs.id, type='filesystem', path=path, fstype=fs.fstype,
                 uuid=sig.get('UUID'))
