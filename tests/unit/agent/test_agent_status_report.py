"""The agent run's status in fa-heartbeat's heartbeats: the compact
report (format, escaping, limits, parsing on the conductor's side) and
the heartbeat loop sending it, against a real HTTP server on loopback
that answers like Ironic's ramdisk endpoints."""

import http.server
import json
import threading

from fa_agent import heartbeat
from fa_agent import status_report
from fa_agent.cmd import heartbeat as heartbeat_cmd
import pytest

HOST_KEY = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiLpqzwvubkQc3kXU4jAgV4'
            't36uNzb7jW2c3LI6Npb0')


def _status(**values):
    document = {'state': 'running', 'step': 'discover', 'steps_done': [],
                'progress': {'step': 'discover', 'message': 'http://u:p@x/'},
                'error': None, 'exit_code': None,
                'started_at': '2026-12-02T13:00:00.123456+00:00'}
    document.update(values)
    return json.dumps(document).encode()


@pytest.mark.parametrize('status, exit_raw, expected', [
    (None, None, None),
    (_status(), None, ('running', 'start', 'discover', None)),
    (_status(state='succeeded', step='bootloader', exit_code=0,
             steps_done=['a', 'b']), b'0\n',
     ('succeeded', 'end', 'bootloader', 0)),
    (_status(state='failed', step='partition', exit_code=30), b'30\n',
     ('failed', 'error', 'partition', 30)),
    # Died without a final status: the start wrapper's exit code tells.
    (_status(step='write_image'), b'137\n',
     ('exited', 'error', 'write_image', 137)),
    (None, b'1\n', ('exited', 'error', None, 1)),
    (b'{garbled', b'2\n', ('exited', 'error', None, 2)),
    (b'{garbled', None, None),
    (_status(state='odd'), None, None),
])
def test_report_from_the_agents_files(status, exit_raw, expected):
    report = status_report.from_files(status, exit_raw)
    if expected is None:
        assert report is None
        return
    assert (report.state, report.agent_status, report.step,
            report.exit_code) == expected


def test_message_round_trip_and_what_it_leaves_out():
    report = status_report.from_files(
        _status(state='failed', step='write_image', exit_code=40,
                steps_done=['discover', 'partition'],
                error={'class': 'image', 'message': 'GET https://user:'
                       'secret@images/x failed'}), b'40')
    message = report.message()
    assert message == ('fa1 state=failed step=write_image done=2 exit=40 '
                       'run=2026-12-02T13%3A00%3A00.123456%2B00%3A00')
    assert 'secret' not in message and 'http' not in message
    assert status_report.parse('error', message) == report


def test_hostile_values_are_escaped_and_bounded():
    step = 'x y=z\n\u00e9' + 'A' * 1000
    report = status_report.Report('running', step, 3, None,
                                  'run with spaces=' + 'B' * 1000)
    message = report.message()
    assert len(message) <= status_report.MAX_MESSAGE
    assert message.isascii() and '\n' not in message
    assert len(message.split(' ')) == 6  # no value adds a field
    parsed = status_report.parse('start', message)
    assert parsed.step == step[:status_report.MAX_VALUE]
    assert parsed.steps_done == 3


@pytest.mark.parametrize('agent_status, message', [
    (None, None),
    ('start', None),
    ('start', 'deploying'),                       # another agent's text
    ('end', 'fa1 state=running step=x done=0 exit=- run=-'),  # mismatch
    ('start', 'fa2 state=running step=x done=0 exit=- run=-'),
    ('start', 'fa1 state=running state=running'),
    ('start', 'fa1 state=running bogus=1'),
    ('error', 'fa1 state=failed exit=NaN'),
    ('start', 'fa1 state=running step=' + 'x' * 300),
])
def test_parse_refuses_what_is_not_a_report(agent_status, message):
    assert status_report.parse(agent_status, message) is None


class _Ironic(http.server.BaseHTTPRequestHandler):
    """Ironic's lookup and heartbeat; refuses agent_status when
    ``old_api`` (as an Ironic older than API 1.72 does)."""

    node = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'
    old_api = False
    beats = []

    def log_message(self, *args):
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._reply(200, {'node': {'uuid': self.node},
                          'config': {'agent_token': 'token',
                                     'heartbeat_timeout': 300}})

    def do_POST(self):
        body = json.loads(self.rfile.read(
            int(self.headers['Content-Length'])))
        version = self.headers['X-OpenStack-Ironic-API-Version']
        if self.old_api and 'agent_status' in body:
            return self._reply(406, {'error_message': 'version'})
        type(self).beats.append((version, body))
        self._reply(202, None)


class _Stop(Exception):
    pass


def _run(tmp_path, changes, old_api=False,
         intervals=('--interval', '600', '--status-interval', '600'),
         clock=lambda: 0.0):
    """fa-heartbeat's loop; before each of its sleeps the next function
    of ``changes`` changes the agent's files; stops after the last."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Ironic)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Ironic.beats, _Ironic.old_api = [], old_api
    host_key = tmp_path / 'host.pub'
    host_key.write_text(HOST_KEY + '\n')
    cmdline = tmp_path / 'cmdline'
    cmdline.write_text('ipa-api-url=http://127.0.0.1:%d\n'
                       % server.server_address[1])
    pending = list(changes)
    _run.sleeps = []

    def sleep(seconds):
        _run.sleeps.append(seconds)
        if not pending:
            raise _Stop()
        pending.pop(0)()

    try:
        with pytest.raises(_Stop):
            heartbeat_cmd.main(
                ['--cmdline', str(cmdline), '--address', '127.0.0.1',
                 '--mac', '52:54:00:12:34:56', '--host-key', str(host_key),
                 '--status-file', str(tmp_path / 'status.json'),
                 '--exit-code-file', str(tmp_path / 'exit_code'),
                 *intervals], sleep=sleep, clock=clock)
    finally:
        server.shutdown()
    return _Ironic.beats


def test_loop_reports_each_change_at_once(tmp_path):
    status = tmp_path / 'status.json'

    def write(**values):
        return lambda: status.write_bytes(_status(**values))

    beats = _run(tmp_path, [
        write(),                                          # agent started
        lambda: None,                                     # no change
        write(step='partition', steps_done=['discover']),
        lambda: (status.write_bytes(_status(
            state='succeeded', step='bootloader', exit_code=0,
            steps_done=['discover', 'partition'])),
            (tmp_path / 'exit_code').write_text('0\n')),
        lambda: None,
    ])
    # Before the agent: a heartbeat of old (API 1.62, no status).
    assert beats[0][0] == heartbeat.API_VERSION
    assert 'agent_status' not in beats[0][1]
    reports = [(v, b['agent_status'], b['agent_status_message'])
               for v, b in beats[1:]]
    assert [r[:2] for r in reports] == [('1.72', 'start')] * 2 + \
        [('1.72', 'end')]
    assert [status_report.parse(s, m).step for _v, s, m in reports] == \
        ['discover', 'partition', 'bootloader']
    # The status file is read every 2 s (not at the 10 s lookup
    # interval): the run's end reaches the conductor within seconds.
    assert set(_run.sleeps) == {2.0}, _run.sleeps


def test_loop_falls_back_to_plain_heartbeats_on_an_old_ironic(tmp_path):
    (tmp_path / 'status.json').write_bytes(_status())
    beats = _run(tmp_path, [
        lambda: (tmp_path / 'status.json').write_bytes(
            _status(state='succeeded', exit_code=0))], old_api=True)
    assert len(beats) == 2
    assert all('agent_status' not in body for _v, body in beats)


def test_a_running_agent_adds_no_heartbeats_but_its_changes(tmp_path):
    """At hundreds of nodes, every extra heartbeat is a conductor worker
    and a node save (tools/bench_conductor.py): while the agent runs and
    its status stays the same, the ramdisk heartbeats at Ironic's
    interval, no more often."""
    status = tmp_path / 'status.json'
    status.write_bytes(_status())
    elapsed = [0.0]

    def wait():
        elapsed[0] += 2.0  # each of the loop's sleeps (2 s status check)
    beats = _run(tmp_path, [wait] * 150, intervals=('--interval', '100'),
                 clock=lambda: elapsed[0])
    # 300 s of a running agent: at start, then every 100 s.
    assert len(beats) == 4, [b['agent_status'] for _v, b in beats]


def test_a_run_ending_between_the_two_reads_is_not_reported_exited(
        tmp_path, monkeypatch):
    """The agent writes its last status, exits, then the wrapper records
    the exit code: reading the status first could pair "running" with
    exit code 0 and report a good run as exited."""
    status, exit_code = tmp_path / 'status.json', tmp_path / 'exit_code'
    status.write_bytes(_status())
    real_read = status_report._read

    def read(path, limit):
        data = real_read(path, limit)
        if not exit_code.exists():  # the run ends right after the first
            status.write_bytes(_status(state='succeeded', exit_code=0))
            exit_code.write_text('0\n')
        return data
    monkeypatch.setattr(status_report, '_read', read)
    report = status_report.read(str(status), str(exit_code))
    assert report.state != 'exited', report
