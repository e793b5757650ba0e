"""DHCP-less boots: the ramdisk's network from the node's ``network_data``.

Booted from virtual media (``boot_method=vmedia`` on the kernel command
line), the ramdisk may have no DHCP server to ask. Ironic then puts the
node's ``network_data`` on the ISO as a config drive (label
``config-2``, ``openstack/latest/network_data.json``). This module
mounts it, checks it, has glean (OpenStack's own network_data renderer)
write systemd-networkd files for every port it describes, and installs
them under ``/run/systemd/network`` with names that sort before the
ramdisk's catch-all DHCP file, which it also switches off: a node booted
this way asks no DHCP server anything.

The document is checked before glean sees it: its values end up in
networkd's line-based files, so a string with a control character (a
newline would start a new setting) is refused, naming its JSON path.
"""

import os
import subprocess
import sys
import time

from fa_agent import heartbeat
from fa_agent import safe_json

LABEL = 'config-2'
VMEDIA_PARAM = ('boot_method', 'vmedia')
NETWORK_DATA = 'openstack/latest/network_data.json'
# glean reads <root>/mnt/config.
MOUNT_POINT = '/mnt/config'
NETWORK_DIR = '/run/systemd/network'
# Before 90-fa-ethernet.network (DHCP on every port) and
# fa-boot-interface's 10-/20- files, which it replaces on such boots.
PREFIX = '05-fa-network-data-'
OTHER_PORTS = '06-fa-network-data-other-ports.network'
MAX_BYTES = 1024 * 1024
GLEAN_ARGS = ('--distro', 'networkd', '--skip-dns', '--no-dhcp-fallback',
              '--noop')


class NetworkDataError(Exception):
    """network_data cannot be used; the message says why."""


def wanted(params):
    """Whether the kernel command line says this is a virtual-media boot."""
    key, value = VMEDIA_PARAM
    return params.get(key) == value


def wait_for_label(by_label='/dev/disk/by-label', timeout=30.0,
                   sleep=time.sleep, clock=time.monotonic):
    """The config drive's device, or None if none appears in ``timeout``
    seconds (udev names the CD once its driver is loaded)."""
    path = os.path.join(by_label, LABEL)
    deadline = clock() + timeout
    while not os.path.exists(path):
        if clock() >= deadline:
            return None
        sleep(0.5)
    return path


def load(path):
    """The checked network_data document at ``path``."""
    try:
        with open(path, 'rb') as f:
            document = safe_json.load(f, max_bytes=MAX_BYTES)
    except safe_json.DocumentError as exc:
        raise NetworkDataError('%s: %s' % (path, exc)) from None
    if not isinstance(document, dict):
        raise NetworkDataError('$: network_data must be an object')
    check(document)
    for key in ('links', 'networks'):
        if not isinstance(document.get(key, []), list):
            raise NetworkDataError('$.%s: must be a list' % key)
    return document


def check(value, path='$'):
    """Refuse control characters anywhere (keys and strings)."""
    if isinstance(value, str):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise NetworkDataError('%s: control character in %r'
                                   % (path, value[:40]))
    elif isinstance(value, dict):
        for key, item in value.items():
            check(key, path)
            check(item, '%s.%s' % (path, key))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            check(item, '%s[%d]' % (path, number))


def interfaces(sys_class_net='/sys/class/net'):
    """{mac: name} of the node's physical ports: those with a permanent
    MAC (``addr_assign_type`` 0), the only ones glean configures."""
    result = {}
    for name, mac in heartbeat.interfaces(sys_class_net).items():
        try:
            with open(os.path.join(sys_class_net, name,
                                   'addr_assign_type')) as f:
                if f.read().strip() == '0':
                    result[mac] = name
        except OSError:
            continue
    return result


def described_ports(document, ports):
    """Names of the ports whose MAC a link of ``document`` names."""
    macs = {str(link.get('ethernet_mac_address', '')).lower()
            for link in document.get('links', []) if isinstance(link, dict)}
    return [name for mac, name in sorted(ports.items()) if mac in macs]


def render(root, port, run=subprocess.run):
    """{file name: content} glean writes for ``port``, read from its
    ``--noop`` output (``### Write <path>`` then the content)."""
    result = run([sys.executable, '-m', 'glean.cmd', '--root', root,
                  '--interface', port] + list(GLEAN_ARGS),
                 capture_output=True, text=True, check=False)
    if result.returncode:
        raise NetworkDataError('glean failed for %s: %s'
                               % (port, result.stderr.strip()[-500:]))
    files = {}
    name = None
    for line in result.stdout.splitlines(keepends=True):
        if line.startswith('### Write '):
            name = os.path.basename(line[len('### Write '):].strip())
            files[name] = ''
        elif name is not None:
            files[name] += line
    return {name: text for name, text in files.items()
            if name.endswith(('.network', '.netdev')) and text.strip()}


def install(files, network_dir=NETWORK_DIR):
    """Write glean's files, and one that leaves every other port alone
    (no DHCP anywhere); the paths written."""
    os.makedirs(network_dir, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        path = os.path.join(network_dir, PREFIX + name)
        with open(path, 'w') as f:
            f.write(text)
        written.append(path)
    path = os.path.join(network_dir, OTHER_PORTS)
    with open(path, 'w') as f:
        f.write('# Written by fa-network-data: a DHCP-less boot configures\n'
                '# only the ports network_data describes.\n'
                '[Match]\nType=ether\n\n[Link]\nUnmanaged=yes\n')
    written.append(path)
    return written


def apply(root='/', sys_class_net='/sys/class/net', network_dir=NETWORK_DIR,
          run=subprocess.run):
    """Render and install the network of the mounted config drive under
    ``root``; the ports configured."""
    document = load(os.path.join(root, MOUNT_POINT.lstrip('/'),
                                 NETWORK_DATA))
    ports = described_ports(document, interfaces(sys_class_net))
    if not ports:
        raise NetworkDataError('$.links: no link names a port of this node '
                               '(%s)' % ', '.join(sorted(
                                   interfaces(sys_class_net))))
    files = {}
    for port in ports:
        files.update(render(root, port, run=run))
    install(files, network_dir)
    return ports


def describe(document):
    """One line for the console: each network's type and address."""
    return ', '.join('%s %s' % (n.get('type'), n.get('ip_address') or '')
                     for n in document.get('networks', [])
                     if isinstance(n, dict)) or 'no networks'
