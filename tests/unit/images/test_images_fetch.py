"""Image sources: files, and http failures that retrying cannot fix (the
resume cases are in tests/functional/test_http_resume.py). The servers
are real, on 127.0.0.1."""

import http.server
import socket
import threading

import pytest

from fa_agent import errors
from fa_agent.images import fetch
from fa_agent.images import policy


@pytest.fixture
def server():
    """A server answering every GET with ``server.status``."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            httpd.requests += 1
            self.send_response(httpd.status)
            body = b'x' * 10
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    httpd.requests = 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd):
    return 'http://127.0.0.1:%d/image.raw' % httpd.server_address[1]


def test_file_source_reads_the_file(tmp_path):
    path = tmp_path / 'my image.raw'
    data = bytes(range(256)) * 10000
    path.write_bytes(data)
    source = fetch.open_source(
        'file://' + str(path).replace(' ', '%20'),
        policy.ImagePolicy(file_url_allowed_paths=(str(tmp_path),)))
    assert source.size == len(data)
    assert b''.join(source.chunks()) == data


def test_missing_file_is_a_download_failure(tmp_path):
    with pytest.raises(errors.ImageDownloadFailed, match='cannot read'):
        fetch.open_source('file://%s/absent.raw' % tmp_path,
                          policy.ImagePolicy(
                              file_url_allowed_paths=(str(tmp_path),)))


def test_not_found_fails_at_once(server):
    server.status = 404
    with pytest.raises(errors.ImageDownloadFailed) as caught:
        fetch.open_source(url(server), attempts=5, retry_delay=0)
    assert 'HTTP 404' in str(caught.value)
    assert server.requests == 1


def test_server_errors_fail_after_the_retries(server):
    server.status = 503
    with pytest.raises(errors.ImageDownloadFailed) as caught:
        fetch.open_source(url(server), attempts=3, retry_delay=0)
    assert 'after 3 attempt(s)' in str(caught.value)
    assert server.requests == 3
    assert caught.value.exit_code == 14


def test_refused_connection_fails_after_the_retries():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    with pytest.raises(errors.ImageDownloadFailed, match='3 attempt'):
        fetch.open_source('http://127.0.0.1:%d/i' % port, attempts=3,
                          retry_delay=0)


def test_unsupported_scheme_is_bad_input():
    with pytest.raises(errors.BadInput, match='ftp'):
        fetch.open_source('ftp://example.invalid/image')
