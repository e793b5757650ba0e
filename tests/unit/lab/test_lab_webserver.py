"""The lab's HTTP server answers the paths GRUB asks for on Ironic's
``http`` boots (tools/lab/webserver.py): a real http.server (the handler
``python -m http.server`` runs) on loopback, raw requests as GRUB sends
them (its request line is copied from the lab's access log)."""

import functools
import http.server
import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                'tools'))
from lab import settings  # noqa: E402
from lab import webserver  # noqa: E402

MAC = '52:54:00:fa:1a:02'
UUID = 'f1cea463-70de-4af7-835e-3fa0cc38fead'


@pytest.fixture
def lab(tmp_path):
    lab = settings.Lab(state_dir=str(tmp_path))
    # What Ironic writes for a node on ``http``: its configuration in
    # tftp_root, its kernel in http_root.
    os.makedirs(os.path.join(lab.tftp_root, UUID))
    os.makedirs(os.path.join(lab.http_root, UUID))
    with open(os.path.join(lab.tftp_root, UUID, 'config'), 'w') as f:
        f.write('menuentry "deploy" {}\n')
    os.symlink(os.path.join(UUID, 'config'),
               os.path.join(lab.tftp_root, MAC + '.conf'))
    with open(os.path.join(lab.http_root, UUID, 'deploy_kernel'), 'w') as f:
        f.write('kernel\n')
    return lab


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(lab):
    handler = functools.partial(QuietHandler, directory=lab.http_root)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def get(port, target):
    """GRUB's request line, as it is: (status, body)."""
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        s.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
                   'Connection: close\r\n\r\n' % (target, port)).encode())
        answer = b''
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b'\r\n\r\n')
    return int(head.split()[1]), body.decode()


def requests(lab):
    """What GRUB asked for in the lab: Ironic's initial grub.cfg sources
    ``<tftp_root>/<mac>.conf``; ``<mac>.conf`` names the kernel relative
    to tftp_root."""
    relative = os.path.relpath(os.path.join(lab.http_root, UUID,
                                            'deploy_kernel'), lab.tftp_root)
    assert relative.startswith('../')
    return {os.path.join(lab.tftp_root, MAC + '.conf'):
            'menuentry "deploy" {}\n',
            relative: 'kernel\n'}


def test_grubs_paths_name_the_files_ironic_wrote(lab, served):
    webserver.serve_grub_paths(lab)
    for target, body in requests(lab).items():
        assert get(served, target) == (200, body), target


def test_without_the_links_grub_gets_404(lab, served):
    for target in requests(lab):
        assert get(served, target)[0] == 404, target


def test_linking_again_is_harmless(lab, served):
    webserver.serve_grub_paths(lab)
    webserver.serve_grub_paths(lab)
    for target, body in requests(lab).items():
        assert get(served, target) == (200, body), target
