"""Which boot interface carries which scenario, and the proof, from the
lab's own servers, that the node really booted that way.

Each scenario's ramdisk boots go through the boot interface named here
(Ironic's own ``pxe``, ``ipxe``, ``http``, ``http-ipxe`` or
``redfish-virtual-media``, set on the node before the scenario). What
the firmware fetched, and over which protocol, is read afterwards from
dnsmasq's log (its DHCP answers and TFTP transfers) and the HTTP
server's access log, per node: the node's addresses come from dnsmasq's
DHCPACK lines for its MAC.
"""

import os
import re

from lab import console

# scenario -> boot interface; the rest use ipxe, as nodes are enrolled.
BOOT_INTERFACES = {
    'bios-inspect-clean': 'pxe',
    # QEMU's iPXE ROM fetches boot.ipxe from the URL in DHCP's answer.
    'nova-rescue': 'http-ipxe',
    'uefi-clean-uninspected': 'pxe',
    'uefi-http-clean': 'http',
    'uefi-default-layout': 'http-ipxe',
    'uefi-virtual-media': 'redfish-virtual-media',
    'bios-virtual-media': 'redfish-virtual-media',
}

# (boot interface, boot mode) -> (files the node must have fetched over
# TFTP, over HTTP; whether it may use TFTP at all).
EXPECTED = {
    ('pxe', 'uefi'): (('bootx64.efi', 'grubx64.efi', 'grub.cfg'), (), True),
    ('pxe', 'bios'): (('pxelinux.0', 'ldlinux.c32'), (), True),
    # GRUB asks for Ironic's <mac>.conf, then the kernel and initramfs.
    ('http', 'uefi'): ((), ('bootx64.efi', 'grubx64.efi', 'grub.cfg',
                            'deploy_kernel', 'deploy_ramdisk'), False),
    ('http-ipxe', 'uefi'): ((), ('snponly.efi', 'boot.ipxe'), False),
    ('http-ipxe', 'bios'): ((), ('boot.ipxe',), False),
    # The BMC, not the node, fetches the ISO: the node may fetch nothing
    # over TFTP (the scenario checks the BMC's fetch and that the node
    # asked no DHCP).
    ('redfish-virtual-media', 'uefi'): ((), (), False),
    ('redfish-virtual-media', 'bios'): ((), (), False),
}

_ACK = re.compile(r'DHCPACK\([^)]*\) (\S+) ([0-9a-f:]{17})')
_TFTP_SENT = re.compile(r'dnsmasq-tftp\[\d+\]: sent (\S+) to (\S+)')
_HTTP_GET = re.compile(r'^(\S+) \S+ \S+ \[[^]]*\] "GET (\S+)')


def log_offsets(lab):
    """Where dnsmasq's and the HTTP server's logs end now."""
    return {name: console.size(lab.path('logs', name + '.log'))
            for name in ('dnsmasq', 'http')}


def fetched(lab, mac, since):
    """(files sent over TFTP, paths fetched over HTTP) by the node with
    ``mac`` since ``since`` (from :func:`log_offsets`)."""
    dnsmasq = console.read_from(lab.path('logs', 'dnsmasq.log'),
                                since['dnsmasq'])
    addresses = {ip for ip, seen in _ACK.findall(dnsmasq)
                 if seen.lower() == mac.lower()}
    tftp = [os.path.basename(path) for path, to in _TFTP_SENT.findall(dnsmasq)
            if to in addresses]
    http = []
    for line in console.read_from(lab.path('logs', 'http.log'),
                                  since['http']).splitlines():
        found = _HTTP_GET.match(line)
        if found and found.group(1) in addresses:
            http.append(found.group(2).split('?')[0].rsplit('/', 1)[-1])
    return tftp, http


def check(lab, node, interface, since):
    """None when the node fetched what ``interface`` fetches in its boot
    mode, else what is wrong; with a one-line summary either way."""
    expected = EXPECTED.get((interface, node.boot_mode))
    tftp, http = fetched(lab, node.mac, since)
    summary = '%s (%s): TFTP %s, HTTP %s' % (
        interface, node.boot_mode, _short(tftp), _short(http))
    if expected is None:
        return None, summary
    want_tftp, want_http, tftp_allowed = expected
    missing = ([f for f in want_tftp if f not in tftp] +
               [f for f in want_http if f not in http])
    if missing:
        return 'the node did not fetch %s; %s' % (
            ', '.join(missing), summary), summary
    if tftp and not tftp_allowed:
        return 'the node used TFTP; %s' % summary, summary
    return None, summary


def _short(names):
    unique = list(dict.fromkeys(names))
    return ', '.join(unique[:6]) + (' ...' if len(unique) > 6 else '') \
        if unique else 'none'


