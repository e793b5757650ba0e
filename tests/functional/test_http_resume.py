"""Downloads that break: a real HTTP server on 127.0.0.1 drops the
connection mid-stream, ignores Range, or answers it wrongly; the image
must still arrive intact (checked by its checksum and by comparing the
written bytes), or the failure must be reported as a download failure.
Writes go to a regular file, so no root is needed."""

import gzip
import hashlib
import http.server
import os
import re
import socket
import subprocess
import threading

import pytest

from fa_agent import errors
from fa_agent import images
from fa_agent.images import fetch
from fa_agent.scheme import model

MIB = 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        server = self.server
        requested = self.headers.get('Range')
        server.ranges.append(requested)
        data, start = server.data, 0
        match = re.match(r'bytes=(\d+)-$', requested or '')
        if match and server.mode == 'honour':
            start = int(match.group(1))
            self.send_response(206)
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (
                start, len(data) - 1, len(data)))
        elif match and server.mode == 'wrong-range':
            # A 206 that does not start where it was asked to.
            start = max(0, int(match.group(1)) - 1000)
            self.send_response(206)
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (
                start, len(data) - 1, len(data)))
        else:  # no Range asked, or mode 'ignore': the whole image
            self.send_response(200)
        body = data[start:]
        self.send_header('Content-Length', str(len(body)))
        self.send_header('ETag', '"v1"')
        self.end_headers()
        if len(server.ranges) <= server.drops:
            # Send part of the body, then cut the connection.
            self.wfile.write(body[:server.drop_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    httpd.ranges, httpd.mode, httpd.drops = [], 'honour', 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(fetch, 'RETRY_DELAY', 0)
    monkeypatch.setattr(fetch, 'ATTEMPTS', 4)


def zstd(data):
    return subprocess.run(['zstd', '-q', '-c'], input=data, check=True,
                          capture_output=True).stdout


RAW = os.urandom(6 * MIB) + bytes(2 * MIB) + os.urandom(MIB + 5)
PACKED = {'gzip': gzip.compress(RAW, compresslevel=1), 'zstd': zstd(RAW),
          'none': RAW}


def serve(server, compression, mode='honour', drops=1, drop_after=None):
    server.data = PACKED[compression]
    server.mode, server.drops = mode, drops
    server.drop_after = drop_after or len(server.data) // 3
    return model.Image(
        url='http://127.0.0.1:%d/image' % server.server_address[1],
        format='raw', target='disk', id='root',
        checksum=model.Checksum(
            'sha256', hashlib.sha256(server.data).hexdigest()))


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / 'disk'
    path.write_bytes(b'')
    return path


@pytest.mark.parametrize('compression', ['gzip', 'zstd', 'none'])
def test_dropped_connection_resumes_by_range(server, disk, compression):
    image = serve(server, compression, drops=2)
    result = images.write_to_device(image, str(disk))
    assert disk.read_bytes() == RAW
    assert result['checksum'] == image.checksum.value
    third = len(server.data) // 3
    # Second request resumes where the first stopped, and so on.
    assert server.ranges == [None, 'bytes=%d-' % third,
                             'bytes=%d-' % (2 * third)]


@pytest.mark.parametrize('compression', ['gzip', 'zstd'])
def test_range_ignored_restarts_from_zero(server, disk, compression):
    image = serve(server, compression, mode='ignore')
    result = images.write_to_device(image, str(disk))
    assert disk.read_bytes() == RAW
    assert result['bytes_downloaded'] == len(server.data)
    assert result['bytes_out'] == len(RAW)
    assert server.ranges == [None, 'bytes=%d-' % (len(server.data) // 3)]


def test_wrong_content_range_restarts_from_zero(server, disk):
    image = serve(server, 'gzip', mode='wrong-range')
    images.write_to_device(image, str(disk))
    assert disk.read_bytes() == RAW
    # The wrong 206 was dropped and a plain GET sent.
    assert server.ranges[2] is None


def test_drop_and_ignored_range_for_a_tar(server, tmp_path):
    tree = tmp_path / 'tree'
    (tree / 'etc').mkdir(parents=True)
    (tree / 'etc' / 'big').write_bytes(RAW)
    archive = subprocess.run(['tar', '-C', str(tree), '-czf', '-', '.'],
                             capture_output=True, check=True).stdout
    server.data, server.mode, server.drops = archive, 'ignore', 1
    server.drop_after = len(archive) // 2
    target = tmp_path / 'target'
    target.mkdir()
    image = model.Image(
        url='http://127.0.0.1:%d/root.tgz' % server.server_address[1],
        format='tar', target='/',
        checksum=model.Checksum('sha256',
                                hashlib.sha256(archive).hexdigest()))
    images.extract_tar(image, str(target))
    assert (target / 'etc' / 'big').read_bytes() == RAW


def test_server_that_always_drops_fails_after_the_retries(server, disk):
    image = serve(server, 'gzip', drops=100, drop_after=1000)
    with pytest.raises(errors.ImageDownloadFailed) as caught:
        images.write_to_device(image, str(disk))
    assert 'after 4 attempt(s)' in str(caught.value)
    assert len(server.ranges) == 4


def test_corrupted_download_is_a_checksum_mismatch(server, disk):
    image = serve(server, 'none', drops=0)
    server.data = RAW[:-1] + b'\x00' if RAW[-1] else RAW[:-1] + b'\x01'
    with pytest.raises(errors.ChecksumMismatch):
        images.write_to_device(image, str(disk))
