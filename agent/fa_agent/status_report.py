"""The agent run's status as fa-heartbeat reports it to Ironic.

Ironic's heartbeat (API 1.72 and later) carries ``agent_status`` (one of
``start``, ``end``, ``error``) and a free ``agent_status_message``; Ironic
hands both to the deploy interface. fa-heartbeat reads the agent's status
file (and the exit code the start wrapper records) and sends a compact,
versioned summary, so the conductor learns that the agent has finished
without an SSH session per poll. The conductor still reads the result
and the log over SSH, once, and treats the report only as a hint: a
forged or stale one can at worst cause one SSH poll.

The message is ``fa1 state=<s> step=<name> done=<n> exit=<code|-> run=<id>``;
every value is percent-encoded (no spaces, ``=`` or non-ASCII survive
raw) and cut to :data:`MAX_VALUE`, so it stays within
:data:`MAX_MESSAGE` characters. Only the state, the step name, the count
of finished steps, the exit code and the run's start time go out: never
progress messages, URLs, errors or anything else from the input.

Standard library only: fa-heartbeat runs early in a small ramdisk.
"""

import dataclasses
import json
import os
import urllib.parse

VERSION = 'fa1'
MAX_MESSAGE = 255
MAX_VALUE = 48
# Ironic's AGENT_VALID_STATES, by the agent's own states.
AGENT_STATUS = {'running': 'start', 'succeeded': 'end', 'failed': 'error',
                'exited': 'error'}
FINAL_STATES = ('succeeded', 'failed', 'exited')
# The status file is a few KiB; anything much bigger is not the agent's.
MAX_STATUS_BYTES = 1024 * 1024
_KEYS = ('state', 'step', 'done', 'exit', 'run')


@dataclasses.dataclass(frozen=True)
class Report:
    """One run's status as a heartbeat carried it."""

    state: str
    step: str = None
    steps_done: int = 0
    exit_code: int = None
    run: str = None

    @property
    def final(self):
        return self.state in FINAL_STATES

    @property
    def agent_status(self):
        return AGENT_STATUS[self.state]

    def message(self):
        values = {'state': self.state, 'step': self.step or '-',
                  'done': str(self.steps_done),
                  'exit': '-' if self.exit_code is None
                  else str(self.exit_code),
                  'run': self.run or '-'}
        text = ' '.join([VERSION] + ['%s=%s' % (k, _quote(values[k]))
                                     for k in _KEYS])
        return text[:MAX_MESSAGE]


def _quote(value):
    return urllib.parse.quote(str(value)[:MAX_VALUE], safe='')


def _int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def from_files(status_raw, exit_raw):
    """The report for the raw status file and exit code file contents
    (None when absent); None when there is nothing to report yet or the
    status file is not the agent's."""
    exit_code = None
    if exit_raw is not None:
        try:
            exit_code = int(exit_raw.strip() or b'x')
        except ValueError:
            exit_code = -1
    if status_raw is None:
        if exit_code is None:
            return None
        return Report('exited', exit_code=exit_code)
    try:
        document = json.loads(status_raw.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        return Report('exited', exit_code=exit_code) \
            if exit_code is not None else None
    state = document.get('state')
    step = document.get('step')
    step = step if isinstance(step, str) else None
    done = document.get('steps_done')
    done = len(done) if isinstance(done, list) else 0
    run = document.get('started_at')
    run = run if isinstance(run, str) else None
    code = _int(document.get('exit_code'))
    if code is None:
        code = exit_code
    if state == 'running' and exit_code is not None:
        # The agent died without saying so; the wrapper's code tells.
        state = 'exited'
    if state not in AGENT_STATUS:
        return None
    return Report(state, step, done, code, run)


def _read(path, limit):
    try:
        with open(path, 'rb') as f:
            return f.read(limit)
    except OSError:
        return None


def read(status_file, exit_code_file):
    """The report for the agent's files on this ramdisk (see
    :func:`from_files`). The exit code first: the agent's last status is
    written before the exit code is, so a status read after it is the
    final one (the other order can pair "running" with an exit code)."""
    exit_raw = _read(exit_code_file, 64) if exit_code_file and \
        os.path.exists(exit_code_file) else None
    raw = _read(status_file, MAX_STATUS_BYTES + 1)
    if raw is not None and len(raw) > MAX_STATUS_BYTES:
        raw = b'not the agent\'s'
    return from_files(raw, exit_raw)


def parse(agent_status, message):
    """The :class:`Report` in a heartbeat's ``agent_status`` and
    ``agent_status_message``; None for anything else (no status, an older
    ramdisk, another agent's message, a malformed one)."""
    if not isinstance(message, str) or not isinstance(agent_status, str) \
            or len(message) > MAX_MESSAGE:
        return None
    tokens = message.split(' ')
    if tokens[0] != VERSION:
        return None
    values = {}
    for token in tokens[1:]:
        key, sep, value = token.partition('=')
        if not sep or key not in _KEYS or key in values:
            return None
        values[key] = urllib.parse.unquote(value)
    state = values.get('state')
    if state not in AGENT_STATUS or AGENT_STATUS[state] != agent_status:
        return None
    try:
        done = int(values.get('done', '0'))
        code = values.get('exit', '-')
        code = None if code == '-' else int(code)
    except ValueError:
        return None
    step = values.get('step')
    run = values.get('run')
    return Report(state, None if step in (None, '-') else step, done, code,
                  None if run in (None, '-') else run)
