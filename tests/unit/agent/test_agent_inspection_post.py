"""fa-heartbeat booted for inspection: it posts the inventory to
``ipa-inspection-callback-url`` (a real HTTP server on loopback answering
like Ironic's /v1/continue_inspection, or like a hostile one), retries,
then heartbeats with the answer's token (fast-track) or idles. The
functional test tests/functional/test_inspection.py runs it against real
Ironic."""

import http.server
import json
import logging
import threading

from fa_agent import heartbeat
from fa_agent import inventory
from fa_agent.cmd import heartbeat as heartbeat_cmd
import pytest

NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'
HOST_PUB = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiLpqzwvubkQc3kXU4jAgV4t36u'
            'Nzb7jW2c3LI6Npb0\n')


class _Ironic(http.server.BaseHTTPRequestHandler):
    answers = []  # (status, raw bytes) per POST to continue_inspection
    seen = []

    def log_message(self, *args):
        pass

    def _send(self, code, data):
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.seen.append(('GET', self.path, None, None))
        self._send(200, json.dumps({'node': {'uuid': NODE}, 'config': {
            'agent_token': '******'}}).encode())

    def do_POST(self):
        body = json.loads(self.rfile.read(
            int(self.headers['Content-Length'])))
        self.seen.append(('POST', self.path, body,
                          self.headers['X-OpenStack-Ironic-API-Version']))
        if self.path.startswith('/v1/continue_inspection'):
            code, data = self.answers.pop(0)
            return self._send(code, data)
        self._send(202, b'')


@pytest.fixture(autouse=True)
def heartbeat_log(caplog):
    """fa-heartbeat's messages reach caplog even after Ironic's tests
    configured logging in the same process (which disables loggers that
    existed then)."""
    logger = logging.getLogger('fa-heartbeat')
    logger.disabled = False
    caplog.set_level(logging.INFO, logger='fa-heartbeat')


@pytest.fixture
def ironic():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Ironic)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Ironic.seen = []
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()


def good_answer(token='inspection-token'):
    return 202, json.dumps({'node': {'uuid': NODE}, 'config': {
        'agent_token': token, 'heartbeat_timeout': 60}}).encode()


@pytest.fixture
def node(tmp_path, monkeypatch):
    """The node's /sys/class/net and a stand-in disk discovery (the real
    one is tested in test_agent_inventory.py)."""
    nic = tmp_path / 'net' / 'eno1'
    (nic / 'device').mkdir(parents=True)
    (nic / 'address').write_text('52:54:00:12:34:56\n')
    host_key = tmp_path / 'host.pub'
    host_key.write_text(HOST_PUB)
    monkeypatch.setattr(inventory, 'disks', lambda runner, paths: [
        {'name': '/dev/sda', 'size': 100 * inventory.GiB}])
    return tmp_path


def run(node, ironic, extra='', *args):
    cmdline = node / 'cmdline'
    cmdline.write_text('ipa-inspection-callback-url=%s/v1/continue_inspection'
                       ' BOOTIF=01-52-54-00-12-34-56 %s\n' % (ironic, extra))
    delays = []
    rc = heartbeat_cmd.main(
        ['--cmdline', str(cmdline), '--sys-class-net', str(node / 'net'),
         '--host-key', str(node / 'host.pub'), '--address', '127.0.0.1',
         '--once', '--max-wait', '20'] + list(args), sleep=delays.append)
    return rc, delays


def posts(path='/v1/continue_inspection'):
    return [s for s in _Ironic.seen if s[0] == 'POST' and s[1] == path]


def test_posts_the_inventory_then_idles_without_fast_track(node, ironic):
    _Ironic.answers = [(503, b'{"error_message": "busy"}'), good_answer()]
    rc, delays = run(node, ironic)
    assert rc == 0
    first, second = posts()
    assert delays == [1.0]  # one retry after the 503
    body = second[2]
    assert second[3] == heartbeat.INSPECTION_API_VERSION
    assert body['inventory']['interfaces'][0]['mac_address'] == \
        '52:54:00:12:34:56'
    assert body['inventory']['boot']['pxe_interface'] == '52:54:00:12:34:56'
    assert body['root_disk']['name'] == '/dev/sda'
    assert body['error'] is None
    # No ipa-api-url: nothing heartbeats, Ironic powers the node off.
    assert [s for s in _Ironic.seen if s[0] == 'GET'] == []
    assert posts('/v1/heartbeat/' + NODE) == []


def test_the_post_waits_for_an_address_of_the_boot_port(
        node, ironic, monkeypatch):
    # Posted before the port's address is usable, the request leaves from
    # no address or a link-local one and may hang for its whole timeout
    # (seen in the lab on IPv6, 60 s): it waits for the address first.
    addresses = iter([None, None, '192.0.2.5'])
    asked = []

    def ipv4(name):
        asked.append((name, len(posts())))
        return next(addresses, '192.0.2.5')
    monkeypatch.setattr(heartbeat, 'ipv4_address', ipv4)
    # This machine's own IPv6 addresses are not the node's.
    monkeypatch.setattr(heartbeat, 'global_ipv6_address',
                        lambda interface, proc='/proc': None)
    _Ironic.answers = [good_answer()]
    cmdline = node / 'cmdline'
    cmdline.write_text('ipa-inspection-callback-url=%s/v1/continue_inspection'
                       ' BOOTIF=01-52-54-00-12-34-56\n' % ironic)
    delays = []
    rc = heartbeat_cmd.main(
        ['--cmdline', str(cmdline), '--sys-class-net', str(node / 'net'),
         '--host-key', str(node / 'host.pub'), '--once', '--max-wait', '20'],
        sleep=delays.append)
    assert rc == 0
    assert delays[:2] == [0.25, 0.25]
    # Three looks at eno1's address, all before the one post.
    assert asked[:3] == [('eno1', 0)] * 3
    assert len(posts()) == 1


def test_fast_track_heartbeats_with_the_inspection_token(node, ironic):
    _Ironic.answers = [good_answer()]
    rc, _delays = run(node, ironic, 'ipa-api-url=' + ironic)
    assert rc == 0
    # No lookup: it would only show the token masked.
    assert [s for s in _Ironic.seen if s[0] == 'GET'] == []
    (_p, _path, body, _v), = posts('/v1/heartbeat/' + NODE)
    assert body['agent_token'] == 'inspection-token'


def test_a_pregenerated_token_from_the_kernel_line(node, ironic):
    _Ironic.answers = [good_answer('******')]
    rc, _delays = run(node, ironic, 'ipa-api-url=%s ipa-agent-token=vmedia'
                      % ironic)
    assert rc == 0
    (_p, _path, body, _v), = posts('/v1/heartbeat/' + NODE)
    assert body['agent_token'] == 'vmedia'


def test_refused_inventory_is_not_posted_again(node, ironic, caplog):
    _Ironic.answers = [(404, b'{"error_message": "Not Found"}')]
    rc, delays = run(node, ironic)
    assert rc == 1
    assert delays == [] and len(posts()) == 1
    assert 'Ironic refused the inventory' in caplog.text
    assert 'HTTP 404' in caplog.text


@pytest.mark.parametrize('raw', [
    b'[' * 100000 + b']' * 100000,               # nested too deep
    b'{"a": "' + b'x' * (2 * 1024 * 1024) + b'"}',  # too big
    b'{"node": {"uuid": "%s"}, "config": {"agent_token": "t", '
    b'"heartbeat_timeout": 1%s}}' % (NODE.encode(), b'0' * 5000),  # number
    b'not json at all',
    b'"a string"',
    b'{"node": "nope", "config": []}',
    b'{"node": {"uuid": 12}, "config": {"agent_token": ["x"]}}',
])
def test_hostile_answers_never_crash_it(node, ironic, raw, caplog):
    _Ironic.answers = [(202, raw)] * 10
    rc, _delays = run(node, ironic, 'ipa-api-url=' + ironic)
    assert rc == 0  # Ironic took the data; the answer allows nothing more
    assert 'Traceback' not in caplog.text
    assert len(posts()) == 1
    # Never heartbeats with something it did not get.
    assert posts('/v1/heartbeat/' + NODE) == []


def test_bad_callback_url(node, ironic, caplog):
    cmdline = node / 'cmdline'
    cmdline.write_text('ipa-inspection-callback-url=file:///etc/passwd\n')
    assert heartbeat_cmd.main(['--cmdline', str(cmdline), '--max-wait', '5'],
                              sleep=lambda s: None) == 1
    assert 'is not an http(s) URL' in caplog.text


def test_heartbeat_timeout_from_the_answer_is_bounded():
    for value, expected in ((60, 60), (0, 300), (True, 300), ('9', 300),
                            (10 ** 9, 300)):
        answer = {'node': {'uuid': NODE},
                  'config': {'agent_token': 't', 'heartbeat_timeout': value}}
        assert heartbeat._lookup_answer(answer)[2] == expected
