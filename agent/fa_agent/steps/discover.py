"""Step ``discover``: find the node's disks and resolve the scheme on
them (matchers, sizes, device paths)."""

from fa_agent import discovery
from fa_agent import erase_guard
from fa_agent import errors
from fa_agent.scheme import planner


def run(ctx):
    erasing = ctx.request.action == 'erase'
    disks = discovery.disks(ctx.probe, include_read_only=erasing)
    try:
        ctx.plan = planner.plan(ctx.scheme, disks)
    except planner.PlanError as exc:
        # Matcher problems are reported on the disk's "match" field.
        if any(e.path.endswith('.match') for e in exc.errors):
            raise errors.DiskNotFound(str(exc)) from exc
        raise errors.DoesNotFit(str(exc)) from exc
    for disk_id, device in ctx.plan.disks.items():
        ctx.remember(disk_id, type='disk', path=device.name,
                     size_mib=ctx.plan.devices[disk_id].size_mib)
    ctx.progress('disks: ' + ', '.join(
        '%s=%s' % (d, dev.name) for d, dev in ctx.plan.disks.items()))
    if erasing:
        # Every named disk checked before anything is written.
        erase_guard.check_all(ctx)
