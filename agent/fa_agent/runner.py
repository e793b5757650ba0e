"""The one place the agent runs commands.

Real runs go through oslo.concurrency's processutils (timeouts, retries,
``LC_ALL=C``); tests and ``--dry-run`` use :class:`RecordingRunner`, which
keeps the commands instead of running them, so a plan is testable without
disks.
"""

import logging
import os

from oslo_concurrency import processutils

from fa_agent import errors

LOG = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 600


class Runner:
    """Runs commands for real. ``execute`` returns (stdout, stderr)."""

    dry_run = False

    def __init__(self, timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout

    def execute(self, *cmd, attempts=1, check_exit_code=(0,), timeout=None,
                process_input=None, env=None, binary=False, error_class=None):
        env_variables = dict(os.environ, LC_ALL='C', LANG='C')
        env_variables.update(env or {})
        LOG.debug('running: %s', ' '.join(cmd))
        try:
            return processutils.execute(
                *cmd, attempts=attempts, check_exit_code=check_exit_code,
                timeout=timeout or self.timeout, process_input=process_input,
                env_variables=env_variables, binary=binary,
                delay_on_retry=True)
        except (processutils.ProcessExecutionError, OSError) as exc:
            error_class = error_class or errors.CommandFailed
            raise error_class('command failed: %s: %s' % (
                ' '.join(cmd), str(exc).strip())) from exc


class RecordingRunner(Runner):
    """Records commands instead of running them.

    ``replies`` maps a command prefix (tuple) to the stdout it should
    return, or to an exception to raise, so tests can script failures.
    """

    dry_run = True

    def __init__(self, replies=None):
        super().__init__()
        self.commands = []
        self.replies = dict(replies or {})

    def execute(self, *cmd, **kwargs):
        self.commands.append(tuple(cmd))
        for prefix, reply in self.replies.items():
            if tuple(cmd[:len(prefix)]) == tuple(prefix):
                if isinstance(reply, Exception):
                    raise reply
                return reply, ''
        return '', ''
