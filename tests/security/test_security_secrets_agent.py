"""Item 6 (secrets stay secret), the agent's half: an image URL with a
password and a Swift temp-URL signature is used (the server sees the
credentials) but appears masked in every progress line, log record,
status file and error message. Real downloads from a server on
127.0.0.1 that breaks the first connection and ignores Range once, so
the retry and restart messages are written too; the whole provision
command on a loop device when root."""

import hashlib
import http.server
import json
import logging
import os
import shutil
import subprocess
import threading

import pytest

from fa_agent import errors
from fa_agent import images
from fa_agent import input_format
from fa_agent import status as agent_status
from fa_agent.cmd import provision
from fa_agent.images import fetch
from fa_agent.images import progress
from fa_agent.scheme import model

PASSWORD = 'PassW0rdSECRET'
SIGNATURE = 'da39a3ee5SIGSECRET'
SECRET = 'SECRET'
MIB = 1024 * 1024
DATA = os.urandom(3 * MIB)


@pytest.fixture
def server():
    """Serves DATA; the first GET breaks after 1 MiB, the next one
    ignores Range (whole body again). Counts what authorised it."""
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def do_GET(self):
            httpd.auth.append(self.headers.get('Authorization'))
            if not self.path.startswith('/v1/AUTH_t/images/disk.raw?'):
                self.send_error(404)
                return
            httpd.gets += 1
            self.send_response(200)
            self.send_header('Content-Length', str(len(DATA)))
            self.end_headers()
            if httpd.gets == 1:
                self.wfile.write(DATA[:MIB])
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            self.wfile.write(DATA)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    httpd.gets = 0
    httpd.auth = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(fetch, 'RETRY_DELAY', 0)
    monkeypatch.setattr(progress, 'INTERVAL', 0.0)


@pytest.fixture(autouse=True)
def agent_logging(monkeypatch):
    """The agent's loggers on, whatever logging setup an earlier test
    (Ironic's) left: an empty log would hide nothing."""
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith('fa_agent') and isinstance(logger,
                                                      logging.Logger):
            monkeypatch.setattr(logger, 'disabled', False)
            monkeypatch.setattr(logger, 'propagate', True)


def secret_url(httpd, name='disk.raw'):
    return ('http://tenant:%s@127.0.0.1:%d/v1/AUTH_t/images/%s?'
            'temp_url_sig=%s&temp_url_expires=1999999999'
            % (PASSWORD, httpd.server_address[1], name, SIGNATURE))


def image(url, checksum=None):
    # No id: messages name the image by its URL.
    return model.Image(url=url, format='raw', target='d0', checksum=(
        model.Checksum('sha256', checksum or
                       hashlib.sha256(DATA).hexdigest())))


def assert_no_secret(*texts):
    for text in texts:
        assert SECRET not in text
        assert PASSWORD not in text and SIGNATURE not in text


def test_download_messages_mask_the_url(tmp_path, server, caplog):
    caplog.set_level(logging.DEBUG)
    status = agent_status.StatusFile(str(tmp_path / 'status.json'))
    disk = tmp_path / 'disk'
    disk.write_bytes(bytes(4 * MIB))
    seen = []

    def on_progress(percent, message):
        seen.append(message)
        status.progress(message, percent)
    result = images.write_to_device(image(secret_url(server)), str(disk),
                                    on_progress=on_progress)
    status.succeeded(result)
    assert disk.read_bytes()[:len(DATA)] == DATA
    # The credentials did reach the server, as Basic auth.
    assert server.auth[0] == 'Basic dGVuYW50OlBhc3NXMHJkU0VDUkVU'
    assert 'tenant:***@127.0.0.1' in seen[-1]
    assert 'retrying' in caplog.text and 'first byte' in caplog.text
    assert_no_secret(caplog.text, '\n'.join(seen),
                     (tmp_path / 'status.json').read_text(), repr(result))


@pytest.mark.parametrize('case', ['not found', 'checksum'])
def test_error_messages_mask_the_url(tmp_path, server, caplog, case):
    caplog.set_level(logging.DEBUG)
    status = agent_status.StatusFile(str(tmp_path / 'status.json'))
    disk = tmp_path / 'disk'
    disk.write_bytes(bytes(4 * MIB))
    bad = (image(secret_url(server, 'absent.raw')) if case == 'not found'
           else image(secret_url(server), checksum='0' * 64))
    with pytest.raises(errors.ProvisionError) as caught:
        images.write_to_device(bad, str(disk))
    status.failed(caught.value)
    assert '127.0.0.1' in str(caught.value) or case == 'checksum'
    assert_no_secret(str(caught.value), repr(caught.value.args),
                     caplog.text, (tmp_path / 'status.json').read_text())


needs_loop = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which('losetup') is None,
    reason='needs root and losetup for a loop device')


@pytest.fixture
def loop_disk(tmp_path):
    backing = tmp_path / 'backing.img'
    with open(backing, 'wb') as f:
        f.truncate(16 * MIB)
    try:
        device = subprocess.run(['losetup', '-f', '--show', str(backing)],
                                check=True, capture_output=True,
                                text=True).stdout.strip()
    except subprocess.CalledProcessError as exc:
        pytest.skip('no free loop device: %s' % exc.stderr.strip())
    yield device
    subprocess.run(['losetup', '-d', device], check=False)


@needs_loop
@pytest.mark.parametrize('name', ['disk.raw', 'absent.raw'])
def test_provision_run_keeps_the_secret(tmp_path, server, loop_disk, capsys,
                                        name):
    """The production entry: ``provision`` with its log file, status
    file and stderr, for a good image and a missing one."""
    document = input_format.build(
        {'storage': [{'type': 'disk', 'id': 'd0',
                      'match': {'name': loop_disk}}],
         'images': [{'url': secret_url(server, name), 'format': 'raw',
                     'target': 'd0'}]})
    (tmp_path / 'provision.json').write_text(json.dumps(document))
    code = provision.main([
        '--input-data-file', str(tmp_path / 'provision.json'),
        '--status-file', str(tmp_path / 'status.json'),
        '--log-file', str(tmp_path / 'provision.log'),
        '--target-dir', str(tmp_path / 'target'),
        '--steps', 'images', '--debug'])
    log = (tmp_path / 'provision.log').read_text()
    status = (tmp_path / 'status.json').read_text()
    if name == 'disk.raw':
        assert code == 0, log
        assert 'writing raw image http://tenant:***@127.0.0.1' in log
    else:
        assert code == errors.ImageDownloadFailed.exit_code, log
        assert 'HTTP 404' in json.loads(status)['error']['message']
    out, err = capsys.readouterr()
    assert_no_secret(log, status, out, err)
