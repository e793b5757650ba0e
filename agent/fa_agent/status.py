"""The status file the driver polls while the agent runs.

Every change rewrites the whole file through a temporary file and a
rename, so a reader never sees half a document.
"""

import datetime
import json
import os
import tempfile


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
                     'started_at': now, 'updated_at': now, 'result': None}
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
        self.data['step'] = name
        self.data['progress'] = {'step': name, 'percent': None,
                                 'message': 'started'}
        self.write()

    def progress(self, message, percent=None):
        self.data['progress'] = {'step': self.data['step'],
                                 'percent': percent, 'message': message}
        self.write()

    def step_done(self, name):
        self.data['steps_done'].append(name)
        self.data['progress'] = {'step': name, 'percent': 100.0,
                                 'message': 'done'}
        self.write()

    def succeeded(self, result):
        self.data.update(state='succeeded', exit_code=0, result=result)
        self.write()

    def failed(self, exc, result=None):
        self.data.update(
            state='failed', exit_code=exc.exit_code, result=result,
            error={'class': exc.error_class, 'message': str(exc)})
        self.write()
