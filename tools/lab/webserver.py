"""The lab's HTTP server: Ironic's ``[deploy] http_root`` (iPXE scripts,
the deploy kernel and ramdisk) and, under ``images/``, the OS images.

Python's own http.server is enough: it follows the symbolic links Ironic
makes (pxelinux.cfg/<mac>) and answers HEAD, which Ironic uses to check
an image URL before a deploy.

Ironic's ``http`` boot interface (GRUB over HTTP) asks for two more
kinds of path, which :func:`serve_grub_paths` links in:

* ``<[pxe]tftp_root>/<mac>.conf``, absolute: Ironic's initial
  ``grub/grub.cfg`` sources the node's configuration from there;
* the kernel and initramfs relative to ``tftp_root``, which is how
  Ironic writes them in ``<mac>.conf`` (``../httpboot/<uuid>/...``
  here). GRUB sends that path as it is; http.server drops the ``..``
  and looks for ``httpboot/<uuid>/...`` under its root.
"""

import os
import sys
import threading
import urllib.request

from lab import procs

NAME = 'http'


def start(lab, registry):
    os.makedirs(os.path.join(lab.http_root, 'images'), exist_ok=True)
    serve_grub_paths(lab)
    registry.start(NAME, [sys.executable, '-m', 'http.server', '--bind',
                          lab.address, '--directory', lab.http_root,
                          str(lab.http_port)])
    procs.wait_until(lambda: _answers(lab.http_url + '/images/'),
                     'the HTTP server', 20, registry, NAME)


def serve_grub_paths(lab):
    """Links that make the paths GRUB asks for on ``http`` boots (see
    above) name the files Ironic wrote. The second points back at the
    root: a tool that walks ``http_root`` following links loops there."""
    # ../httpboot/<uuid>/... is looked up as httpboot/<uuid>/...
    parts = [part for part in os.path.relpath(
        lab.http_root, lab.tftp_root).split('/') if part not in ('.', '..')]
    links = {os.path.join(lab.http_root, lab.tftp_root.lstrip('/')):
             lab.tftp_root}
    if parts:  # else the relative paths name http_root's own files
        links[os.path.join(lab.http_root, *parts)] = None
    for link, target in links.items():
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(target or os.path.relpath(lab.http_root,
                                             os.path.dirname(link)), link)


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
