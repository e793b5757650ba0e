"""Step ``cleanup``: leave the disks ready for a reboot, or, after a
failure, undo what this run set up.

After success only the mounts go: arrays and volume groups stay as the
new system will find them. After a failure volume groups are deactivated
and arrays stopped too, so the driver can retry on quiet disks.
"""

import logging

from fa_agent import errors

LOG = logging.getLogger(__name__)


def run(ctx):
    busy = ctx.unmount_all()
    ctx.runner.execute('sync')
    if busy:
        raise errors.CommandFailed('could not unmount %s cleanly'
                                   % ', '.join(busy))


def after_failure(ctx):
    """Best effort: every undo is tried even if one fails."""
    ctx.unmount_all()
    undo = ([('vgchange', '-an', vg) for vg in reversed(ctx.active_vgs)] +
            [('mdadm', '--stop', md) for md in reversed(ctx.started_arrays)])
    for cmd in undo:
        try:
            ctx.runner.execute(*cmd)
        except errors.ProvisionError as exc:
            LOG.error('cleanup: %s', exc)
    ctx.active_vgs.clear()
    ctx.started_arrays.clear()
    try:
        ctx.runner.execute('sync')
    except errors.ProvisionError as exc:
        LOG.error('cleanup: %s', exc)
