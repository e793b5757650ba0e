"""Step ``partition``: write the planned partition tables.

Offsets and sizes come from the planner, in whole MiB, so what lands on
the disk is exactly what ``--dry-run`` printed. gpt tables are written
with sgdisk, msdos tables with parted.
"""

GPT_TYPE_CODES = {'bios_grub': 'ef02', 'esp': 'ef00', 'raid': 'fd00',
                  'lvm': '8e00', 'swap': '8200'}
LEGACY_BOOT_ATTRIBUTE = 2
MiB = 1024 * 1024


def run(ctx):
    for disk in ctx.scheme.of_type('disk'):
        if ctx.scheme.partitions_on(disk.id):
            make_table(ctx, disk)


def make_table(ctx, container):
    """Partition a disk or a RAID array (kept partitions stay as they
    are; on a container with kept data the table itself stays too)."""
    path = ctx.path(container.id)
    table = getattr(container, 'table', None) or 'gpt'
    parts = ctx.scheme.partitions_on(container.id)
    ctx.progress('partitioning %s (%s, %s)' % (container.id, path, table))
    # One command per table: sgdisk and parted each wait for the kernel
    # after every call, so this is also much faster.
    fresh = not ctx.kept(container.id)
    todo = [(p, ctx.plan.devices[p.id]) for p in parts if not ctx.kept(p.id)]
    if table == 'gpt':
        args = ['--clear'] if fresh else []
        for part, planned in todo:
            args += _gpt_partition(part, planned)
        ctx.runner.execute('sgdisk', *args, path)
    else:
        args = ['mklabel', 'msdos'] if fresh else []
        size_mib = ctx.plan.devices[container.id].size_mib
        for part, planned in todo:
            args += _msdos_partition(part, planned, size_mib)
        ctx.runner.execute('parted', '-s', path, 'unit', 'MiB', *args)
    planned = [ctx.plan.devices[p.id] for p in parts]
    # The kernel's view of partitions inside md arrays is not compared:
    # lsblk does not report them as plain partitions everywhere.
    expected = ([(p.start_mib * MiB, p.size_mib * MiB) for p in planned]
                if container.type == 'disk' else None)
    ctx.settle(path, expected)
    for part, dev in zip(parts, planned):
        ctx.wait_for_node(dev.path)
        ctx.remember(part.id, type='partition', path=dev.path,
                     number=dev.number, start_mib=dev.start_mib,
                     size_mib=dev.size_mib, kept=ctx.kept(part.id) or None)


def _gpt_partition(part, planned):
    number = planned.number
    type_code = part.type_guid or next(
        (GPT_TYPE_CODES[f] for f in part.flags if f in GPT_TYPE_CODES),
        '8300')
    args = ['--new=%d:%dM:+%dM' % (number, planned.start_mib,
                                   planned.size_mib),
            '--typecode=%d:%s' % (number, type_code)]
    if part.name:
        args.append('--change-name=%d:%s' % (number, part.name))
    if 'boot' in part.flags:
        args.append('--attributes=%d:set:%d' % (number,
                                                LEGACY_BOOT_ATTRIBUTE))
    return args


def _msdos_partition(part, planned, disk_mib):
    args = ['mkpart', 'primary', str(planned.start_mib),
            msdos_end(planned.end_mib, disk_mib)]
    for flag in part.flags:
        args += ['set', str(planned.number), flag, 'on']
    return args


def msdos_end(end_mib, disk_mib):
    """parted's end for a partition ending at ``end_mib``: it rejects the
    disk's size itself as "outside of the device", but takes 100%."""
    return '100%' if end_mib >= disk_mib else str(end_mib)
