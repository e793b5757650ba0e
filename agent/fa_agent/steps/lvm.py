"""Step ``lvm``: physical volumes, volume groups and logical volumes.

Every LVM command gets ``--yes`` (and lvcreate ``-Wy -Zy``: wipe old
signatures, zero the start) so none can stop on a question. A volume
group holding a kept volume is only activated; its other volumes are
recreated.
"""

from fa_agent.steps import keep


def run(ctx):
    for vg in ctx.scheme.of_type('volume_group'):
        if ctx.kept(vg.id):
            if vg.name not in ctx.active_vgs:
                keep.activate(ctx, vg)
        else:
            pvs = [ctx.path(d) for d in vg.devices]
            ctx.progress('creating volume group %s on %s'
                         % (vg.name, ', '.join(pvs)))
            for pv in pvs:
                ctx.runner.execute('pvcreate', '--yes', '--force', pv)
            ctx.runner.execute('vgcreate', '--yes', vg.name, *pvs)
            ctx.active_vgs.append(vg.name)
        ctx.remember(vg.id, type='volume_group', path=ctx.path(vg.id),
                     name=vg.name, kept=ctx.kept(vg.id) or None)
        # "remaining" takes what the others leave, so it comes last.
        lvs = sorted(ctx.scheme.logical_volumes_in(vg.id),
                     key=lambda lv: lv.size_spec.is_remaining)
        for lv in lvs:
            create_volume(ctx, vg, lv)


def create_volume(ctx, vg, lv):
    planned = ctx.plan.devices[lv.id]
    if not ctx.kept(lv.id):
        if ctx.kept(vg.id):
            # A volume from an earlier deploy may still hold the name.
            ctx.runner.execute('lvremove', '--yes', '%s/%s' % (vg.name,
                                                               lv.name),
                               check_exit_code=False)
        size = (['--extents', '100%FREE'] if lv.size_spec.is_remaining
                else ['--size', '%dm' % planned.size_mib])
        ctx.runner.execute('lvcreate', '--yes', '-Wy', '-Zy', '--name',
                           lv.name, *size, vg.name)
    ctx.wait_for_node(planned.path)
    ctx.remember(lv.id, type='logical_volume', path=planned.path,
                 size_mib=planned.size_mib, kept=ctx.kept(lv.id) or None)
