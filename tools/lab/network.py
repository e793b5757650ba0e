"""The lab's network: a namespace with one bridge that the VMs' taps,
dnsmasq, the HTTP server, Ironic and the BMC emulator share.

The namespace has no link to the host's network, so nothing the lab runs
can reach another machine, and nothing outside can reach the lab.
"""

import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000


class NetworkError(Exception):
    pass


def _ip(*args, netns=None, check=True):
    argv = ['ip'] + (['-n', netns] if netns else []) + list(args)
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode:
        raise NetworkError('%s failed: %s' % (' '.join(argv),
                                              result.stderr.strip()))
    return result


def exists(lab):
    return os.path.exists('/run/netns/' + lab.netns)


def create(lab):
    """The namespace, its loopback and the bridge with the lab's IPv4 and
    IPv6 addresses (idempotent)."""
    if not exists(lab):
        _ip('netns', 'add', lab.netns)
    _ip('link', 'set', 'lo', 'up', netns=lab.netns)
    if _ip('link', 'show', lab.bridge, netns=lab.netns,
           check=False).returncode:
        _ip('link', 'add', lab.bridge, 'type', 'bridge', 'stp_state', '0',
            'forward_delay', '0', netns=lab.netns)
    cidr = '%s/%d' % (lab.address, lab.prefix)
    shown = _ip('-4', 'addr', 'show', 'dev', lab.bridge, netns=lab.netns)
    if cidr not in shown.stdout:
        _ip('addr', 'add', cidr, 'dev', lab.bridge, netns=lab.netns)
    cidr6 = '%s/%d' % (lab.address6, lab.prefix6)
    shown = _ip('-6', 'addr', 'show', 'dev', lab.bridge, netns=lab.netns)
    if cidr6 not in shown.stdout:
        # nodad: usable at once; the lab hands this address to no one else.
        _ip('addr', 'add', cidr6, 'dev', lab.bridge, 'nodad',
            netns=lab.netns)
    _ip('link', 'set', lab.bridge, 'up', netns=lab.netns)


def enter(lab):
    """Move this process into the namespace, so that its own HTTP calls
    (to Ironic) stay inside it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open('/run/netns/' + lab.netns, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetworkError('cannot enter namespace %s: %s'
                               % (lab.netns, os.strerror(err)))
    finally:
        os.close(fd)


def delete(lab):
    """Remove the namespace and with it the bridge and any tap left."""
    if exists(lab):
        _ip('netns', 'delete', lab.netns)
