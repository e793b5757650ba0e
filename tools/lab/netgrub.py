"""The GRUB that shim loads on UEFI ``pxe`` and ``http`` boots.

Debian 12's signed network GRUB (``grubnetx64.efi.signed``) finds its
configuration after a PXE boot, but after a UEFI HTTP boot it stops at
``grub>`` without fetching anything: it knows its prefix,
``(http,<server>:<port>)/grub``, but its network card has no address
(tried in the lab). So the lab assembles one with ``grub-mkimage`` from
Debian's own GRUB modules (``grub-efi-amd64-bin``), whose built-in
configuration asks DHCP for an address first (``net_bootp``). The rest
is GRUB's and Ironic's: ``$prefix/grub.cfg`` (Ironic's initial one),
which sources the node's ``<mac>.conf``.

Ironic copies one ``grubx64.efi`` into both its TFTP and HTTP roots
(``[pxe] loader_file_paths``), so UEFI ``pxe`` boots load this one too;
there it asks DHCP once more, which costs a second or two. It is not
signed: with Secure Boot on, sign it with the site's key (shim's MOK)
or use a distribution's GRUB that takes its address from the HTTP boot.
"""

import os
import subprocess

# Where Debian's grub-efi-amd64-bin keeps the modules.
MODULE_DIR = '/usr/lib/grub/x86_64-efi'
# What Ironic's grub.cfg and <mac>.conf need (linux, initrd, source,
# menus), the network and its two protocols, and the serial console.
MODULES = ('efinet', 'net', 'http', 'tftp', 'normal', 'configfile',
           'linux', 'echo', 'test', 'boot', 'chain', 'efi_gop',
           'all_video', 'serial', 'terminal')
# Run before GRUB reads $prefix/grub.cfg. GRUB's rescue parser runs it:
# one command per line, no "if".
EMBEDDED_CONFIG = 'net_bootp\n'


def path(lab):
    return lab.path('ironic', 'grubnetx64.efi')


class GrubImageError(Exception):
    """grub-mkimage failed; the message has its own words."""


def build(lab):
    """The image at :func:`path` (rebuilt each time: it takes 0.1 s)."""
    image = path(lab)
    os.makedirs(os.path.dirname(image), exist_ok=True)
    config = lab.path('ironic', 'grubnetx64-embedded.cfg')
    with open(config, 'w') as f:
        f.write(EMBEDDED_CONFIG)
    result = subprocess.run(
        ['grub-mkimage', '--format', 'x86_64-efi', '--directory', MODULE_DIR,
         '--prefix', '/grub', '--config', config, '--output', image]
        + list(MODULES), capture_output=True, text=True)
    if result.returncode:
        raise GrubImageError('grub-mkimage failed (grub-efi-amd64-bin '
                             'installed?): %s' % result.stderr.strip())
    return image
