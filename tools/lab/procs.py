"""The lab's long-running processes, started inside its namespace and
stopped by the PID it recorded, never by name.

Each record keeps the process's start time from /proc, so ``down`` never
signals an unrelated process that happens to reuse a recorded PID.
"""

import json
import os
import signal
import subprocess
import time


class ProcessError(Exception):
    """A daemon did not start or did not become ready."""


def _start_time(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            # After the command name in parentheses: state, ..., and
            # field 22, the start time. A zombie has exited already.
            fields = f.read().rsplit(')', 1)[1].split()
        return None if fields[0] == 'Z' else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


class Registry:
    """PID records of the lab's daemons in ``<state>/pids.json``."""

    def __init__(self, lab):
        self.lab = lab
        self.file = lab.path('pids.json')

    def _load(self):
        try:
            with open(self.file) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _save(self, records):
        with open(self.file + '.tmp', 'w') as f:
            json.dump(records, f, indent=1)
        os.replace(self.file + '.tmp', self.file)

    def alive(self, name):
        record = self._load().get(name)
        return bool(record) and \
            _start_time(record['pid']) == record['start_time']

    def start(self, name, argv, env=None, in_netns=True):
        """Start ``argv`` in its own session, output to
        ``<state>/logs/<name>.log``; returns its PID."""
        if self.alive(name):
            return self._load()[name]['pid']
        os.makedirs(self.lab.path('logs'), exist_ok=True)
        if in_netns:
            # ip netns exec also mounts the namespace's own /sys, which
            # libvirtd reads to find the bridge.
            argv = ['ip', 'netns', 'exec', self.lab.netns] + list(argv)
        log = open(self.lab.path('logs', name + '.log'), 'ab')
        with log:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=env, cwd=self.lab.state_dir)
        records = self._load()
        records[name] = {'pid': process.pid, 'argv': list(argv),
                         'start_time': _start_time(process.pid)}
        self._save(records)
        return process.pid

    def stop(self, name, timeout=20):
        """SIGTERM the process group the lab started, then SIGKILL."""
        records = self._load()
        record = records.pop(name, None)
        if record and _start_time(record['pid']) == record['start_time']:
            pid = record['pid']
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _start_time(pid) is not None and \
                    time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.2)
            if _start_time(pid) is not None:
                _signal_group(pid, signal.SIGKILL)
                _reap(pid)
        self._save(records)

    def kill(self, name):
        """SIGKILL the daemon's process group at once, the way a crashed
        host loses it: no shutdown handlers run. Returns whether it was
        running."""
        records = self._load()
        record = records.pop(name, None)
        running = bool(record) and \
            _start_time(record['pid']) == record['start_time']
        if running:
            _signal_group(record['pid'], signal.SIGKILL)
            while _start_time(record['pid']) is not None:
                _reap(record['pid'])
                time.sleep(0.1)
        self._save(records)
        return running

    def stop_all(self):
        for name in reversed(list(self._load())):
            self.stop(name)

    def names(self):
        return list(self._load())

    def log_tail(self, name, lines=30):
        try:
            with open(self.lab.path('logs', name + '.log'),
                      errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return '(no log)'


def _signal_group(pid, sig):
    # start_new_session made the daemon the leader of its own group.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(check, what, timeout, registry=None, name=None,
               interval=0.5):
    """Call ``check`` until it returns something true; fail naming
    ``what`` (and the daemon's log tail) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if registry is not None and name and not registry.alive(name):
            raise ProcessError('%s exited; its log ends with:\n%s'
                               % (name, registry.log_tail(name)))
        if time.monotonic() > deadline:
            tail = ('; its log ends with:\n' + registry.log_tail(name)
                    if registry is not None and name else '')
            raise ProcessError('%s not ready within %d s%s'
                               % (what, timeout, tail))
        time.sleep(interval)
