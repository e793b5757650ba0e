"""The running ramdisk taking the conductor's key from lookup (fast
track): what is accepted as a key, the atomic replace, and fa-heartbeat's
loop against a real HTTP server on loopback answering like Ironic's
lookup/heartbeat (the functional test runs it against real Ironic)."""

import base64
import http.server
import json
import os
import struct
import threading

from fa_agent import heartbeat
from fa_agent import ramdisk_keys
from fa_agent.cmd import heartbeat as heartbeat_cmd
import pytest


def _blob(key_type, body=b'k' * 32):
    name = key_type.encode()
    return struct.pack('>I', len(name)) + name + struct.pack(
        '>I', len(body)) + body


def _line(key_type='ssh-ed25519', body=b'k' * 32):
    return '%s %s' % (key_type, base64.b64encode(_blob(key_type, body))
                      .decode())


def _lookup(line, token='******'):
    return {'node': {'uuid': 'n', 'driver_internal_info':
                     {ramdisk_keys.KEY_FIELD: line}},
            'config': {'agent_token': token}}


@pytest.mark.parametrize('text, reason', [
    (_line() + ' comment', 'exactly'),
    ('command="sh" ' + _line(), 'exactly'),
    (_line() + '\n' + _line(body=b'x' * 32), 'exactly'),
    ('ssh-dss AAAAB3NzaC1kc3M=', 'not one of'),
    ('ssh-ed25519 AAAA!!!', 'not valid base64'),
    ('ssh-ed25519 ' + base64.b64encode(_blob('ssh-rsa')).decode(),
     'not a ssh-ed25519 key'),
    ('ssh-ed25519 ' + base64.b64encode(b'\x00\x00\x00\x0bssh-ed25519')
     .decode(), 'not a ssh-ed25519 key'),
    (42, 'expected'),
])
def test_only_one_bare_key_is_accepted(text, reason):
    with pytest.raises(ValueError, match=reason) as info:
        ramdisk_keys.parse_public_key(text)
    assert 'node.driver_internal_info.fa_ssh_public_key' in str(info.value)


def test_no_published_key_or_redacted_info():
    assert ramdisk_keys.key_from_lookup({'node': {}}) is None
    assert ramdisk_keys.key_from_lookup({'node': {'driver_internal_info': {
        'content': '** Redacted **'}}}) is None
    assert ramdisk_keys.key_from_lookup(None) is None


def test_refresh_replaces_the_key_once(tmp_path):
    path = str(tmp_path / 'ssh' / 'authorized_keys')
    with pytest.raises(FileNotFoundError):
        open(path)
    changed, fp = ramdisk_keys.refresh(_lookup(_line()), path)
    assert changed
    assert fp == heartbeat.fingerprint_of_blob(_blob('ssh-ed25519'))
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'
    assert ramdisk_keys.refresh(_lookup(_line()), path) == (False, fp)
    other = _line('ecdsa-sha2-nistp256', b'e' * 40)
    changed, fp2 = ramdisk_keys.refresh(_lookup(other), path)
    assert changed and fp2 != fp
    with open(path) as f:
        assert f.read() == other + ' fa-conductor\n'
    # A bad published key leaves the installed one alone.
    with pytest.raises(ValueError):
        ramdisk_keys.refresh(_lookup('ssh-ed25519 bad!'), path)
    assert ramdisk_keys.installed_fingerprint(path) == fp2


class _Stop(Exception):
    pass


class _Ironic(http.server.BaseHTTPRequestHandler):
    """Lookup publishes a new key once the first heartbeat came in."""

    node = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'
    published = None
    beats = []
    lookups = 0

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
        cls = type(self)
        cls.lookups += 1
        token = 'first-token' if cls.lookups == 1 else '******'
        info = {ramdisk_keys.KEY_FIELD: cls.published} if cls.published \
            else {}
        self._reply(200, {'node': {'uuid': self.node,
                                   'driver_internal_info': info},
                          'config': {'agent_token': token,
                                     'heartbeat_timeout': 300}})

    def do_POST(self):
        body = json.loads(self.rfile.read(
            int(self.headers['Content-Length'])))
        type(self).beats.append(body)
        type(self).published = _line(body=b'n' * 32)
        self._reply(202, None)


def _ironic_and_ramdisk(tmp_path, params=''):
    """A fresh _Ironic on loopback, and the ramdisk's kernel command
    line (``ipa-api-url`` and ``params``) and host key files."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Ironic)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Ironic.beats, _Ironic.published, _Ironic.lookups = [], None, 0
    cmdline = tmp_path / 'cmdline'
    cmdline.write_text('ipa-api-url=http://127.0.0.1:%d %s\n' % (
        server.server_address[1], params))
    host_key = tmp_path / 'host.pub'
    host_key.write_text(_line() + '\n')
    return server, cmdline, host_key


def _loop_until_stopped(server, cmdline, host_key, args, sleep, clock):
    """fa-heartbeat's loop (lookups every 2 s) until ``sleep`` raises
    _Stop; then the server goes."""
    try:
        with pytest.raises(_Stop):
            heartbeat_cmd.main(
                ['--cmdline', str(cmdline), '--address', '127.0.0.1',
                 '--mac', '52:54:00:12:34:56', '--host-key', str(host_key),
                 '--lookup-interval', '2', '--interval', '600'] + args,
                sleep=sleep, clock=clock)
    finally:
        server.shutdown()


def test_heartbeat_loop_takes_a_published_key_and_says_so(tmp_path):
    boot_key = _line(body=b'b' * 32)
    server, cmdline, host_key = _ironic_and_ramdisk(
        tmp_path, 'fa-ssh-key=' + heartbeat.encode_public_key(
            *boot_key.split()))
    authorized = str(tmp_path / 'authorized_keys')
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) > 3:
            raise _Stop()

    _loop_until_stopped(server, cmdline, host_key,
                        ['--authorized-keys', authorized], sleep,
                        lambda: float(sum(sleeps)))
    # First heartbeat at boot, one more as soon as the new key is in; none
    # otherwise within the heartbeat interval.
    assert len(_Ironic.beats) == 2, _Ironic.beats
    assert sleeps == [2, 2, 2, 2]
    first, second = (heartbeat.parse_callback_url(b['callback_url'])
                     for b in _Ironic.beats)
    assert first.authorized_key == heartbeat.fingerprint_of_blob(
        _blob('ssh-ed25519', b'b' * 32))
    assert second.authorized_key == heartbeat.fingerprint_of_blob(
        _blob('ssh-ed25519', b'n' * 32))
    assert second.host_key_fingerprint == first.host_key_fingerprint
    # The token of the first lookup stays (later lookups mask it).
    assert {b['agent_token'] for b in _Ironic.beats} == {'first-token'}
    with open(authorized) as f:
        assert f.read().split()[:2] == _line(body=b'n' * 32).split()


def test_no_lookups_while_the_agent_runs(tmp_path):
    """At many nodes, a lookup per ramdisk every --lookup-interval costs
    Ironic's API (tools/bench_conductor.py); while the agent runs no new
    key or token can come, so the loop only heartbeats then; once the
    run has ended it looks again (the next operation, fast track)."""
    server, cmdline, host_key = _ironic_and_ramdisk(tmp_path)
    status = tmp_path / 'status.json'
    status.write_text(json.dumps({'state': 'running', 'run': 'r1',
                                  'progress': {'step': 'write_image'}}))
    lookups_while_running, elapsed = [], [0.0]

    def sleep(seconds):
        elapsed[0] += seconds
        if len(lookups_while_running) == 5:
            status.write_text(json.dumps({'state': 'succeeded', 'run': 'r1',
                                          'exit_code': 0}))
        lookups_while_running.append(_Ironic.lookups)
        if len(lookups_while_running) > 8:
            raise _Stop()

    _loop_until_stopped(server, cmdline, host_key,
                        ['--status-file', str(status), '--exit-code-file',
                         str(tmp_path / 'exit_code')], sleep,
                        lambda: elapsed[0])
    # The first lookup only, while the status says running; then one per
    # loop again once the run has ended.
    assert lookups_while_running[:6] == [1] * 6, lookups_while_running
    assert lookups_while_running[-1] > 2, lookups_while_running
    assert {b['agent_token'] for b in _Ironic.beats} == {'first-token'}
