"""DHCP and TFTP for the lab's VMs: one dnsmasq on the lab's bridge.

Ironic's own ``dnsmasq`` DHCP provider writes the per-node files
(``[dnsmasq] dhcp_hostsdir`` / ``dhcp_optsdir``) that this dnsmasq reads
without a restart: a node is served only while Ironic is booting it
from the network (its host file says ``ignore`` otherwise), with the
options of the node's boot interface: a boot loader over TFTP (shim and
GRUB, PXELINUX, an iPXE binary), a URL for UEFI HTTP boot, or, for iPXE
itself, the URL of Ironic's ``boot.ipxe``. The TFTP root is Ironic's
``[pxe]tftp_root``; Ironic puts the loaders there itself
(``[pxe]loader_file_paths``, see :func:`host.boot_loaders`).

DHCPv6 hands network-booted ramdisks an IPv6 address too (Ironic's
host files name the node's MAC, which dnsmasq reads from the ramdisk's
link-layer DUID); the boot loaders use IPv4.
"""

import os
import re

from lab import console
from lab import procs

NAME = 'dnsmasq'


def paths(lab):
    return {'hosts': lab.path('dnsmasq', 'hosts'),
            'opts': lab.path('dnsmasq', 'opts'),
            'leases': lab.path('dnsmasq', 'leases'),
            'conf': lab.path('dnsmasq', 'dnsmasq.conf')}


def config(lab):
    p = paths(lab)
    first, last = lab.dhcp_range
    first6, last6 = lab.dhcp6_range
    return '\n'.join([
        '# Written by the lab (tools/lab); DHCP and TFTP only.',
        'port=0',
        'interface=%s' % lab.bridge,
        'bind-interfaces',
        'dhcp-range=%s,%s,1h' % (first, last),
        # DHCPv6 with addresses; the router advertisements that send
        # clients to it (the "managed" flag) carry no default route.
        'dhcp-range=%s,%s,%d,1h' % (first6, last6, lab.prefix6),
        'enable-ra',
        'ra-param=%s,60,0' % lab.bridge,
        'dhcp-authoritative',
        # No router, no DNS: the lab's network leads nowhere.
        'dhcp-option=option:router',
        'dhcp-option=option:dns-server',
        'dhcp-option=option6:dns-server',
        'dhcp-match=set:ipxe,175',
        # Only nodes Ironic has written a host file for get an answer.
        'dhcp-ignore=tag:!known',
        'dhcp-hostsdir=%s' % p['hosts'],
        'dhcp-optsdir=%s' % p['opts'],
        'dhcp-leasefile=%s' % p['leases'],
        'enable-tftp',
        'tftp-root=%s' % lab.tftp_root,
        'log-dhcp',
        '',
    ])


def start(lab, registry):
    p = paths(lab)
    for directory in (p['hosts'], p['opts'], lab.tftp_root):
        os.makedirs(directory, exist_ok=True)
    with open(p['leases'], 'a'):
        pass
    with open(p['conf'], 'w') as f:
        f.write(config(lab))
    registry.start(NAME, ['dnsmasq', '--keep-in-foreground',
                          '--conf-file=' + p['conf'],
                          '--pid-file=' + lab.path('dnsmasq', 'pid'),
                          '--log-facility=-'])
    procs.wait_until(lambda: _listening(67), 'dnsmasq', 20, registry, NAME)


def _listening(port):
    # UDP sockets of this (the lab's) namespace.
    with open('/proc/net/udp') as f:
        return any(line.split()[1].endswith(':%04X' % port)
                   for line in f.readlines()[1:])


# dnsmasq's reply to a DHCPv6 client whose DUID is its MAC (DUID-LL, type
# 3, hardware type 1: what the ramdisk's networkd sends, lab.dhcp docs).
_REPLY6 = re.compile(r'DHCPREPLY\([^)]*\) ([0-9a-f:]+) 00:03:00:01:'
                     r'([0-9a-f]{2}(?::[0-9a-f]{2}){5})', re.IGNORECASE)


def ipv6_leases(lab, mac, since):
    """The IPv6 addresses dnsmasq leased by DHCPv6 to the ramdisk with
    ``mac`` after offset ``since`` of its log."""
    text = console.read_from(lab.path('logs', 'dnsmasq.log'), since)
    return [address for address, duid_mac in _REPLY6.findall(text)
            if duid_mac.lower() == mac.lower()]
