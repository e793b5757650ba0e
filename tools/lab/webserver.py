"""The lab's HTTP server: Ironic's ``[deploy] http_root`` (iPXE scripts,
the deploy kernel and ramdisk) and, under ``images/``, the OS images.

Python's own http.server is enough: it follows the symbolic links Ironic
makes (pxelinux.cfg/<mac>) and answers HEAD, which Ironic uses to check
an image URL before a deploy.
"""

import os
import sys
import threading
import urllib.request

from lab import procs

NAME = 'http'


def start(lab, registry):
    os.makedirs(os.path.join(lab.http_root, 'images'), exist_ok=True)
    registry.start(NAME, [sys.executable, '-m', 'http.server', '--bind',
                          lab.address, '--directory', lab.http_root,
                          str(lab.http_port)])
    procs.wait_until(lambda: _answers(lab.http_url + '/images/'),
                     'the HTTP server', 20, registry, NAME)


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def publish(lab, path, name):
    """Serve ``path`` as ``images/<name>``; returns its URL."""
    link = os.path.join(lab.http_root, 'images', name)
    # Both nodes' scenarios publish at once: replace the link atomically.
    staged = '%s.%d.%d' % (link, os.getpid(), threading.get_ident())
    os.symlink(os.path.abspath(path), staged)
    os.replace(staged, link)
    return '%s/images/%s' % (lab.http_url, name)
