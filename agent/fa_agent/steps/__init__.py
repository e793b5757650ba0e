"""The steps of a provisioning run, in the only order they run.

Each step is a module with ``run(ctx)``; ``--steps`` picks a subset for
debugging or a partial re-run. discover always runs (every step needs
the plan) and cleanup always ends the run. Each step's duration goes to
the log and the status file (``step_seconds``), so a slow deploy shows
where its time went.
"""

import logging
import time

from fa_agent import errors
from fa_agent.steps import bootloader
from fa_agent.steps import cleanup
from fa_agent.steps import configdrive
from fa_agent.steps import discover
from fa_agent.steps import erase
from fa_agent.steps import filesystems
from fa_agent.steps import images
from fa_agent.steps import kexec
from fa_agent.steps import keep
from fa_agent.steps import lvm
from fa_agent.steps import partition
from fa_agent.steps import raid
from fa_agent.steps import target
from fa_agent.steps import wipe

LOG = logging.getLogger(__name__)
STEPS = {
    'discover': discover.run,
    'verify': keep.run,
    'wipe': wipe.run,
    'erase': erase.run,
    'partition': partition.run,
    'raid': raid.run,
    'lvm': lvm.run,
    'filesystems': filesystems.run,
    'images': images.run,
    'configdrive': configdrive.run,
    'target': target.run,
    'bootloader': bootloader.run,
    'kexec': kexec.run,
    'cleanup': cleanup.run,
}
ORDER = tuple(STEPS)
ALWAYS = ('discover', 'cleanup')
# An erase request (Ironic's cleaning) only ever wipes or erases; only
# an erase request erases.
ERASE = ('discover', 'wipe', 'erase', 'cleanup')
ERASE_ONLY = ('erase',)


def selected(names, action='provision'):
    """The steps to run for ``--steps names``, in run order; an erase
    request runs at most discover, wipe and cleanup.

    :raises errors.BadInput: naming the unknown steps.
    """
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise errors.BadInput('unknown step(s) %s; steps are: %s' % (
            ', '.join(unknown), ', '.join(ORDER)))
    chosen = [n for n in ORDER if n in names or n in ALWAYS]
    if action == 'erase':
        return [n for n in chosen if n in ERASE]
    return [n for n in chosen if n not in ERASE_ONLY]


def run(ctx, names):
    """Run the steps; after a failure undo what was set up and re-raise."""
    try:
        for name in names:
            LOG.info('step %s', name)
            if ctx.status is not None:
                ctx.status.start_step(name)
            started = time.monotonic()
            STEPS[name](ctx)
            seconds = time.monotonic() - started
            LOG.info('step %s done in %.1f s', name, seconds)
            if ctx.status is not None:
                ctx.status.step_done(name, seconds)
    except BaseException:
        if ctx.status is not None:
            ctx.status.step_failed()
        cleanup.after_failure(ctx)
        raise
