"""Starting the agent on the ramdisk and reading what it reports.

The agent runs detached (``setsid nohup``) so it survives the SSH session
that started it; the conductor comes back in short sessions to read its
status file. A marker directory made with ``mkdir`` (atomic) ensures one
start per ramdisk boot even if two conductors try. A wrapper records the
agent's exit code, so an agent that dies before writing a status is still
noticed.
"""

import base64
import dataclasses
import io
import json
import shlex
import tarfile
import time

from fa_agent import contract
from ironic.common import exception

from ironic_fa_driver import conf
from ironic_fa_driver import ironic_checks

CONF = conf.CONF
STARTED = 'started'
ALREADY_STARTED = 'already-started'


@dataclasses.dataclass(frozen=True)
class RemotePaths:
    """Where the agent's files are on the ramdisk."""

    work_dir: str
    status_file: str
    log_file: str

    @classmethod
    def from_conf(cls):
        opts = CONF.fuel_agent
        return cls(opts.remote_work_dir, opts.status_file, opts.log_file)

    @property
    def input_file(self):
        return self.work_dir + '/provision.json'

    @property
    def ca_file(self):
        return self.work_dir + '/image-ca.pem'

    @property
    def marker(self):
        return self.work_dir + '/started'

    @property
    def exit_code_file(self):
        return self.work_dir + '/exit_code'

    @property
    def output_file(self):
        return self.work_dir + '/agent.out'


def agent_argv(paths, steps=None):
    """The agent command line (a list) from ``[fuel_agent]agent_command``,
    with the operator's image choices that Ironic's options make
    (``[conductor]file_url_allowed_paths``, ``[agent]allow_md5_checksum``).
    """
    argv = shlex.split(CONF.fuel_agent.agent_command)
    argv += ironic_checks.agent_options()
    if CONF.fuel_agent.image_ca_file:
        argv += ['--image-ca-file', paths.ca_file]
    argv += ['--input-data-file', paths.input_file,
             '--data-driver', 'ironic',
             '--status-file', paths.status_file,
             '--log-file', paths.log_file]
    if steps:
        argv += ['--steps', ','.join(steps)]
    return argv


def start_script(paths, argv, after_finished=False):
    """Shell text that starts ``argv`` once, detached, recording its exit
    code; prints STARTED or ALREADY_STARTED. ``after_finished``: a run
    of this ramdisk that has finished (its exit code is there) does not
    count, so the next clean step of the same boot runs its own agent;
    a run still going always does."""
    q = shlex.quote
    inner = '%s; echo $? > %s.tmp && mv %s.tmp %s' % (
        ' '.join(q(a) for a in argv), q(paths.exit_code_file),
        q(paths.exit_code_file), q(paths.exit_code_file))
    dirs = {paths.work_dir, paths.status_file.rsplit('/', 1)[0],
            paths.log_file.rsplit('/', 1)[0]}
    reset = ['if [ -e %s ]; then rm -rf %s %s %s; fi' % (
        q(paths.exit_code_file), q(paths.marker), q(paths.exit_code_file),
        q(paths.status_file))] if after_finished else []
    return '\n'.join([
        'set -e',
        'mkdir -p %s' % ' '.join(q(d) for d in sorted(dirs))] + reset + [
        'if ! mkdir %s 2>/dev/null; then echo %s; exit 0; fi'
        % (q(paths.marker), ALREADY_STARTED),
        'setsid nohup sh -c %s </dev/null >%s 2>&1 &'
        % (q(inner), q(paths.output_file)),
        'echo %s' % STARTED,
    ])


def upload_input(session, paths, document):
    """Put the agent input (provision.json) in place, mode 0600, and the
    image CA bundle when ``[fuel_agent]image_ca_file`` names one."""
    ca_bundle = read_ca_bundle()
    session.run('mkdir -p %s && chmod 700 %s' % (
        shlex.quote(paths.work_dir), shlex.quote(paths.work_dir)))
    session.upload(json.dumps(document, indent=1).encode(), paths.input_file)
    if ca_bundle is not None:
        session.upload(ca_bundle, paths.ca_file)


def read_ca_bundle():
    """The bytes of ``[fuel_agent]image_ca_file`` (None when unset).

    :raises: InstanceDeployFailure naming the option when it is unreadable.
    """
    path = CONF.fuel_agent.image_ca_file
    if not path:
        return None
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as exc:
        raise exception.InstanceDeployFailure(
            reason='[fuel_agent]image_ca_file %s cannot be read: %s'
            % (path, exc.strerror))


def start(session, paths, steps=None, after_finished=False):
    """Start the agent unless this ramdisk already ran it (or, with
    ``after_finished``, unless it is running).

    :returns: STARTED or ALREADY_STARTED.
    """
    _status, out, _err = session.run(
        'sh -c %s' % shlex.quote(start_script(
            paths, agent_argv(paths, steps), after_finished)))
    return ALREADY_STARTED if ALREADY_STARTED in out else STARTED


@dataclasses.dataclass(frozen=True)
class AgentStatus:
    """What one poll found. ``outcome`` is 'running', 'succeeded' or
    'failed'; ``message`` is for the operator when it failed."""

    outcome: str
    message: str = ''
    error_class: str = None
    exit_code: int = None
    document: dict = None


def _exit_code(raw):
    if raw is None:
        return None
    try:
        return int(raw.decode().strip())
    except ValueError:
        return -1


NOT_STARTED = 'not-started'


def interpret(status_raw, exit_raw, marker_present=True):
    """Decide the agent's state from the raw status file and exit code
    file contents (None when absent) and whether this ramdisk's start
    marker is there. Pure, so it is tested alone.

    ``not-started``: nothing of a run at all, not even the marker; the
    conductor that recorded the start stopped before it started the
    agent (or it is just starting it).
    """
    exit_code = _exit_code(exit_raw)
    if status_raw is None:
        if exit_code is None:
            if not marker_present:
                return AgentStatus(NOT_STARTED, 'the agent was never '
                                   'started on this ramdisk')
            return AgentStatus('running', 'the agent has not written its '
                               'status file yet')
        return AgentStatus('failed', 'the agent exited with code %d without '
                           'writing its status file' % exit_code,
                           'internal', exit_code)
    try:
        document = json.loads(status_raw.decode('utf-8'))
        state = document['state']
    except (ValueError, KeyError, TypeError) as exc:
        return AgentStatus('failed', 'the agent status file is garbled (%s): '
                           '%r' % (type(exc).__name__, status_raw[:200]),
                           'internal', exit_code)
    if state == 'succeeded':
        if exit_code not in (None, 0):
            return AgentStatus('failed', 'the agent reported success but '
                               'exited with code %d' % exit_code, 'internal',
                               exit_code, document)
        return AgentStatus('succeeded', exit_code=exit_code,
                           document=document)
    if state == 'failed':
        error = document.get('error') or {}
        code = document.get('exit_code', exit_code)
        return AgentStatus(
            'failed', '%s (exit code %s)' % (
                error.get('message') or 'no message', code),
            error.get('class') or 'internal', code, document)
    if state == 'running':
        if exit_code is not None:
            return AgentStatus('failed', 'the agent exited with code %d '
                               'while its status still said running at step '
                               '%s' % (exit_code, document.get('step')),
                               'internal', exit_code, document)
        return AgentStatus('running', document=document)
    return AgentStatus('failed', 'the agent status file has an unknown state '
                       '%r' % state, 'internal', exit_code, document)


def poll(session, paths):
    """Read the exit code and the status file in one short session (and,
    when neither is there, look for the start marker). The exit code
    first: the agent writes its last status before it exits and the
    start wrapper records the exit code after, so a status read after
    an exit code is the final one."""
    exit_raw = session.read(paths.exit_code_file)
    status_raw = session.read(paths.status_file)
    marker = True
    if status_raw is None and exit_raw is None:
        marker = session.exists(paths.marker)
    return interpret(status_raw, exit_raw, marker)


def masked_log(data, max_bytes):
    """A fetched log file with the URLs in it masked. When only its end
    was read, the cut first line goes too: a URL cut before its scheme
    would escape the mask."""
    if len(data) >= max_bytes:
        data = data.partition(b'\n')[2]
    text = data.decode('utf-8', errors='surrogateescape')
    return contract.redact(text).encode('utf-8', errors='surrogateescape')


def fetch_logs(session, paths):
    """The agent's status, log and output as a gzipped tar, base64
    encoded, which is what Ironic's ramdisk log storage takes; URLs in
    them masked (:func:`masked_log`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        for name, path in (('status.json', paths.status_file),
                           ('provision.log', paths.log_file),
                           ('agent.out', paths.output_file)):
            limit = CONF.fuel_agent.agent_log_max_bytes
            data = session.read(path, max_bytes=limit)
            if data is None:
                continue
            data = masked_log(data, limit)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()
