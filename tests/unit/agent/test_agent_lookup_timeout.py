"""fa-heartbeat's lookup waits out a slow Ironic: the agent token comes in
one lookup answer only, so giving up on a slow answer would leave the
ramdisk without a token for good. A real HTTP server on loopback answers
late, the way a busy conductor did in tools/bench_conductor.py's runs."""

import http.server
import json
import threading
import time

import pytest

from fa_agent import heartbeat

NODE = '1be26c0b-03f2-4d2e-ae87-c02d7f33c124'
DELAY = 1.0


class _SlowIronic(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, data):
        time.sleep(DELAY)
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, json.dumps({'node': {'uuid': NODE}, 'config': {
            'agent_token': 'the-only-copy', 'heartbeat_timeout': 300}})
            .encode())

    def do_POST(self):
        self.rfile.read(int(self.headers['Content-Length']))
        self._send(202, b'')


@pytest.fixture
def api_url():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _SlowIronic)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_slow_lookup_answer_is_waited_for_a_slow_heartbeat_is_not(api_url):
    api = heartbeat.IronicAPI(api_url, timeout=DELAY / 4,
                              lookup_timeout=DELAY * 10)
    assert api.lookup(['52:54:00:12:34:56']) == (NODE, 'the-only-copy', 300)
    with pytest.raises(heartbeat.HeartbeatError):
        api.heartbeat(NODE, 'the-only-copy', 'http://127.0.0.1:22', '1.0')


def test_the_lookup_never_waits_less_than_a_heartbeat():
    assert heartbeat.IronicAPI('http://x', timeout=60,
                               lookup_timeout=10).lookup_timeout == 60
    assert heartbeat.IronicAPI('http://x').lookup_timeout > \
        heartbeat.IronicAPI('http://x').timeout
