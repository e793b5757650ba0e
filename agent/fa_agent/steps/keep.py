"""Step ``verify``: before anything is written, check that the disks hold
what the scheme says must be kept.

For every kept object the existing layout must match the plan exactly
(table type, partition numbers and byte offsets, RAID membership, file
system type and label). Any difference stops the run with
KeepDataMismatch before a single write.
"""

import os

from fa_agent import errors

MiB = 1024 * 1024
BLKID_TYPES = {'raid': 'linux_raid_member', 'volume_group': 'LVM2_member'}


def run(ctx):
    problems = []
    scheme = ctx.scheme
    # Parents first: a kept array is assembled (and a kept volume group
    # activated) only once its members passed, so what is built on them
    # can be read too. Neither writes to the data.
    for obj in sorted(scheme.storage,
                      key=lambda o: len(scheme.ancestors(o.id))):
        if not ctx.kept(obj.id):
            continue
        if _on_virtual_device(ctx, obj) and (ctx.dry_run or problems):
            if ctx.dry_run:
                ctx.note('keep_data: %r is checked once its array or '
                         'volume group is active (not in a dry run)'
                         % obj.id)
            continue
        problems.extend(CHECKS[obj.type](ctx, obj))
        if not problems and obj.type in ACTIVATE:
            ACTIVATE[obj.type](ctx, obj)
    if problems:
        raise errors.KeepDataMismatch(
            'the disks do not hold the data marked keep_data; nothing was '
            'changed:\n' + '\n'.join('  ' + p for p in problems))
    kept = [o.id for o in ctx.scheme.storage if ctx.kept(o.id)]
    ctx.progress('kept objects match the disks: %s'
                 % (', '.join(kept) or 'none'))


def _disk(ctx, disk):
    found = ctx.table_on(disk.id)
    wanted = disk.table or 'gpt'
    if found.label != wanted:
        return ['disk %r (%s) holds a %s partition table, the scheme says '
                '%s' % (disk.id, ctx.path(disk.id), found.label, wanted)]
    return []


def _partition(ctx, part):
    container = ctx.scheme.by_id[part.device]
    if container.type != 'disk':
        return []  # partitions on RAID are checked through the array
    planned = ctx.plan.devices[part.id]
    found = ctx.table_on(container.id).by_number(planned.number)
    start, end = planned.start_mib * MiB, planned.end_mib * MiB - 1
    if found is None:
        return ['partition %r: %s has no partition %d' % (
            part.id, ctx.path(container.id), planned.number)]
    if (found.start, found.end) != (start, end):
        return ['partition %r (%s): found bytes %d..%d, the plan says '
                '%d..%d' % (part.id, planned.path, found.start, found.end,
                            start, end)]
    return []


def _member_of(ctx, obj):
    """Members of a kept array or volume group carry its signature; an
    array's members all carry the same array UUID."""
    problems, uuids = [], set()
    for member in obj.devices:
        path = ctx.path(member)
        sig = ctx.signature_of(path)
        if sig.get('TYPE') != BLKID_TYPES[obj.type]:
            problems.append('%s %r: %s holds %s, not %s' % (
                obj.type, obj.id, path, sig.get('TYPE') or 'no signature',
                BLKID_TYPES[obj.type]))
        uuids.add(sig.get('UUID'))
    if obj.type == 'raid' and not problems and len(uuids) != 1:
        problems.append('raid %r: its members belong to different arrays '
                        '(UUIDs %s)' % (obj.id, ', '.join(sorted(uuids))))
    return problems


def filesystem_problems(ctx, fs):
    path = ctx.path(fs.id)
    sig = ctx.signature_of(path)
    problems = []
    if sig.get('TYPE') != fs.fstype:
        problems.append('file system %r: %s holds %s, not %s' % (
            fs.id, path, sig.get('TYPE') or 'no file system', fs.fstype))
    elif fs.label and sig.get('LABEL') != fs.label:
        problems.append('file system %r: %s is labelled %r, not %r' % (
            fs.id, path, sig.get('LABEL'), fs.label))
    else:
        ctx.remember(fs.id, type='filesystem', path=path,
                     uuid=sig.get('UUID'), fstype=fs.fstype, kept=True)
    return problems


def _on_virtual_device(ctx, obj):
    """Whether checking ``obj`` reads an array or volume that only a
    real run assembles."""
    by_id = ctx.scheme.by_id
    devices = ctx.scheme.parents(obj)
    return obj.type == 'logical_volume' or any(
        by_id[d].type in ('raid', 'logical_volume') for d in devices)


def assemble(ctx, raid):
    path = ctx.path(raid.id)
    if not ctx.dry_run and os.path.exists(path):
        return  # udev in the ramdisk assembled it already
    ctx.runner.execute('mdadm', '--assemble', '--run', path,
                       *[ctx.path(m) for m in raid.devices + raid.spares])
    ctx.started_arrays.append(path)


def activate(ctx, vg):
    ctx.runner.execute('vgchange', '-ay', vg.name)
    ctx.active_vgs.append(vg.name)


def _logical_volume(ctx, lv):
    if ctx.dry_run:
        return []
    out, _ = ctx.runner.execute('lvs', '--noheadings', '-o', 'lv_name',
                                ctx.scheme.by_id[lv.volume_group].name)
    if lv.name not in out.split():
        return ['logical volume %r: volume group %r has no volume %r' % (
            lv.id, ctx.scheme.by_id[lv.volume_group].name, lv.name)]
    return []


CHECKS = {'disk': _disk, 'partition': _partition, 'raid': _member_of,
          'volume_group': _member_of, 'logical_volume': _logical_volume,
          'filesystem': filesystem_problems}
ACTIVATE = {'raid': assemble, 'volume_group': activate}
