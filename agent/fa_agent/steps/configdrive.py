"""Step ``configdrive``: put the configdrive the driver passed where the
scheme says.

On a partition it is written directly. On a disk that a whole-disk image
fills, a partition labelled for it is added at the end of the disk first
(the image's table ends where the image ends, so a gpt backup header is
moved to the real end of the disk before that).
"""

import importlib

from fa_agent import discovery
from fa_agent import errors
from fa_agent.scheme import units
from fa_agent.steps import partition

MiB = units.MiB
CONFIGDRIVE_TYPE_CODE = '0700'  # basic data: cloud-init reads it


def run(ctx):
    spec = ctx.scheme.configdrive
    if spec is None:
        return
    if not ctx.request.configdrive:
        ctx.note('the scheme has a configdrive place, but the input has no '
                 'configdrive: skipped')
        return
    obj = ctx.scheme.by_id[spec.device]
    path = (add_partition(ctx, obj, spec) if obj.type == 'disk'
            else ctx.path(obj.id))
    if ctx.dry_run:
        ctx.note('writing the configdrive to %s' % path)
        return
    ctx.progress('writing the configdrive to %s' % path)
    try:
        module = importlib.import_module('fa_agent.configdrive')
    except ImportError as exc:
        raise errors.ProvisionError('configdrive support is missing from '
                                    'this agent: %s' % exc) from exc
    module.write_configdrive(ctx.request.configdrive, path, ctx.runner,
                             policy=ctx.image_policy)
    ctx.remember('configdrive', type='configdrive', path=path)


def add_partition(ctx, disk, spec):
    """Add the configdrive partition in the last MiBs of ``disk``; return
    its device node."""
    path = ctx.path(disk.id)
    disk_mib = ctx.plan.devices[disk.id].size_mib
    size_mib = units.parse_size(spec.size).resolve_mib(disk_mib)
    # The image brought its own table; the scheme's is only a guess for
    # a dry run, where the image is not there yet.
    found = ctx.signature_of(path, fresh=True).get('PTTYPE')
    table = {'dos': 'msdos', 'gpt': 'gpt'}.get(found, disk.table or 'gpt')
    end = disk_mib - (1 if table != 'msdos' else 0)
    start = end - size_mib
    if table == 'msdos':
        ctx.runner.execute('parted', '-s', path, 'unit', 'MiB', 'mkpart',
                           'primary', str(start),
                           partition.msdos_end(end, disk_mib))
    else:
        ctx.runner.execute('sgdisk', '--move-second-header', path)
        ctx.runner.execute('sgdisk', '--new=0:%dM:+%dM' % (start, size_mib),
                           '--typecode=0:' + CONFIGDRIVE_TYPE_CODE,
                           '--change-name=0:config-2', path)
    ctx.settle(path)
    if ctx.dry_run:
        return '<partition of %s at %d MiB>' % (path, start)
    node = discovery.partition_starting_at(ctx.runner, path, start * MiB)
    if node is None:
        raise errors.CommandFailed('the configdrive partition at %d MiB of '
                                   '%s did not appear' % (start, path))
    ctx.wait_for_node(node)
    return node
