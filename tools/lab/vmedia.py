"""Virtual media for the lab's UEFI node: what Ironic's
``redfish-virtual-media`` boot interface needs from the operator, and the
proof that a DHCP-less boot asked no DHCP server.

- The EFI system partition image Ironic puts on its deploy ISO
  (``[DEFAULT] esp_image``): Debian's signed shim as ``BOOTX64.EFI`` and
  Debian's CD GRUB (``gcdx64.efi.signed``) as the ``grubx64.efi`` shim
  loads, made with dosfstools and mtools. That GRUB falls back to a
  ``grub.cfg`` beside itself; ours finds the ISO's own, which Ironic
  writes at ``[DEFAULT] grub_config_path``.
- The node's ``network_data``: a static address outside dnsmasq's range,
  which the ramdisk applies from the config drive Ironic puts on the ISO
  (fa-network-data).
"""

import os
import re
import subprocess

from lab import console

# Where Ironic writes the ISO's GRUB configuration ([DEFAULT]
# grub_config_path); the ESP's own grub.cfg sources it from the CD.
GRUB_CONFIG_PATH = 'boot/grub/grub.cfg'
SHIM = '/usr/lib/shim/shimx64.efi.signed'
CD_GRUB = '/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed'
ESP_GRUB_CFG = (
    '# Written by the lab: find the ISO that Ironic made and use its\n'
    '# configuration.\n'
    'search --no-floppy --file --set=root /%s\n'
    'set prefix=($root)/boot/grub\n'
    'configfile ($root)/%s\n' % (GRUB_CONFIG_PATH, GRUB_CONFIG_PATH))
# On the lab's IPv6 network (settings.Lab.address6), where nothing
# answers DHCP.
STATIC_ADDRESSES = {'uefi': '2001:db8:fa1a::50', 'bios': '2001:db8:fa1a::51'}
# Ironic's BIOS ISO boots ISOLINUX (Debian's isolinux package; its
# ldlinux.c32 Ironic finds in syslinux-common at its default path).
ISOLINUX_BIN = '/usr/lib/ISOLINUX/isolinux.bin'


def esp_path(lab):
    return lab.path('ironic', 'esp.img')


def build_esp(lab):
    """The ESP image at :func:`esp_path` (rebuilt each time: cheap)."""
    path = esp_path(lab)
    if os.path.exists(path):
        os.unlink(path)
    cfg = lab.path('ironic', 'esp-grub.cfg')
    with open(cfg, 'w') as f:
        f.write(ESP_GRUB_CFG)
    for argv in (['mkfs.msdos', '-C', '-n', 'ESP', path, '8192'],
                 ['mmd', '-i', path, '::EFI', '::EFI/BOOT'],
                 ['mcopy', '-i', path, SHIM, '::EFI/BOOT/BOOTX64.EFI'],
                 ['mcopy', '-i', path, CD_GRUB, '::EFI/BOOT/grubx64.efi'],
                 ['mcopy', '-i', path, cfg, '::EFI/BOOT/grub.cfg']):
        subprocess.run(argv, check=True, capture_output=True)
    return path


def static_address(node):
    return STATIC_ADDRESSES[node.name]


def network_data(node):
    """The node's ``network_data`` (Ironic's schema, OpenStack's format):
    one port, a static IPv6 address on the lab's IPv6 network, and no
    IPv4 at all."""
    return {
        'links': [{'id': 'port0', 'type': 'phy',
                   'ethernet_mac_address': node.mac}],
        'networks': [{'id': 'net0', 'link': 'port0', 'type': 'ipv6',
                      'network_id': 'fa-lab',
                      'ip_address': static_address(node),
                      'netmask': 'ffff:ffff:ffff:ffff::', 'routes': []}],
        'services': []}


def dhcp_lines(lab, mac, since):
    """dnsmasq's log lines about ``mac`` after offset ``since`` (every
    request is logged, answered or ignored: ``log-dhcp``). Router
    solicitations count too: a DHCP-less boot asks the network
    nothing (DHCPv4, DHCPv6 by a MAC-based DUID, or RTR-SOLICIT)."""
    text = console.read_from(lab.path('logs', 'dnsmasq.log'), since)
    pattern = re.compile(re.escape(mac), re.IGNORECASE)
    return [line for line in text.splitlines() if pattern.search(line)]


def iso_fetches(lab, since):
    """The HTTP server's log lines of Ironic's virtual-media ISOs fetched
    after offset ``since`` (sushy-tools downloads them)."""
    text = console.read_from(lab.path('logs', 'http.log'), since)
    return [line for line in text.splitlines()
            if '"GET /redfish/' in line and '.iso' in line]
