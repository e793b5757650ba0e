"""The status file the driver polls while the agent runs.

Every change rewrites the whole file through a temporary file and a
rename, so a reader never sees half a document. ``step_seconds`` holds
how long each step took (monotonic clock, 0.1 s); a step that failed
counts until the failure.
"""

import datetime
import json
import os
import tempfile
import time


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class StatusFile:
    """Writes the contract's status document to ``path`` (None: keep it
    in memory only, as a dry run does)."""

    def __init__(self, path):
        self.path = path
        now = _now()
        self.data = {'state': 'running', 'step': None, 'steps_done': [],
                     'progress': {'step': None, 'percent': None,
                                  'message': ''},
                     'error': None, 'exit_code': None, 'pid': os.getpid(),
                     'started_at': now, 'updated_at': now, 'result': None,
                     'step_seconds': {}}
        self._step_started = None
        self.write()

    def write(self):
        self.data['updated_at'] = _now()
        if not self.path:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.status.', dir=directory)
        try:
            with os.fdopen(fd, 'w') as f:
                json.dump(self.data, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def start_step(self, name):
        self._step_started = time.monotonic()
        self.data['step'] = name
        self.data['progress'] = {'step': name, 'percent': None,
                                 'message': 'started'}
        self.write()

    def progress(self, message, percent=None):
        self.data['progress'] = {'step': self.data['step'],
                                 'percent': percent, 'message': message}
        self.write()

    def step_done(self, name, seconds=None):
        """``seconds``: the step's duration as the caller measured it
        (else since :meth:`start_step`)."""
        if seconds is None and self._step_started is not None:
            seconds = time.monotonic() - self._step_started
        self._step_started = None
        if seconds is not None:
            self.data['step_seconds'][name] = round(seconds, 1)
        self.data['steps_done'].append(name)
        self.data['progress'] = {'step': name, 'percent': 100.0,
                                 'message': 'done'}
        self.write()

    def succeeded(self, result):
        self.data.update(state='succeeded', exit_code=0, result=result)
        self.write()

    def step_failed(self):
        """Count the running step's time up to its failure (not the
        cleanup after it); not written until :meth:`failed`."""
        step = self.data['step']
        if self._step_started is not None and step:
            self.data['step_seconds'][step] = round(
                time.monotonic() - self._step_started, 1)
        self._step_started = None

    def failed(self, exc, result=None):
        self.step_failed()
        self.data.update(
            state='failed', exit_code=exc.exit_code, result=result,
            error={'class': exc.error_class, 'message': str(exc)})
        self.write()
