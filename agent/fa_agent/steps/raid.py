"""Step ``raid``: create the md arrays (and the partition tables the
scheme puts on them), arrays under other arrays first.

``--run`` makes mdadm start the array without asking, even when a member
looks like it held something before.
"""

from fa_agent.steps import keep
from fa_agent.steps import partition


def run(ctx):
    scheme = ctx.scheme
    for raid in sorted(scheme.of_type('raid'),
                       key=lambda r: len(scheme.ancestors(r.id))):
        path = ctx.path(raid.id)
        if ctx.kept(raid.id):
            if path not in ctx.started_arrays:
                keep.assemble(ctx, raid)
        else:
            create(ctx, raid, path)
        out, _ = ctx.runner.execute('mdadm', '--detail', '--export', path)
        uuid = dict(line.partition('=')[::2]
                    for line in out.splitlines()).get('MD_UUID')
        ctx.remember(raid.id, type='raid', path=path, level=raid.level,
                     uuid=uuid, kept=ctx.kept(raid.id) or None)
        if scheme.partitions_on(raid.id):
            partition.make_table(ctx, raid)


def create(ctx, raid, path):
    members = [ctx.path(d) for d in raid.devices]
    spares = [ctx.path(d) for d in raid.spares]
    ctx.progress('creating RAID %d %s on %s' % (raid.level, path,
                                                ', '.join(members + spares)))
    cmd = ['mdadm', '--create', path, '--run', '--level=%d' % raid.level,
           '--raid-devices=%d' % len(members),
           '--metadata=%s' % raid.metadata, '--name=%s' % raid.md_name]
    if spares:
        cmd.append('--spare-devices=%d' % len(spares))
    ctx.runner.execute(*cmd, *members, *spares)
    ctx.started_arrays.append(path)
    ctx.wait_for_node(path)
    # A new array over the members of an old one at the same offsets shows
    # the old array's contents again (an LVM label, a file system) until
    # written over; nothing in a new array is kept, so clear them before
    # pvcreate or mkfs sees them.
    ctx.runner.execute('wipefs', '--all', '--force', path)
