"""What the lab needs on this host, installed when missing (idempotent):
Debian packages with apt-get and the BMC emulator into the repo's venv.

Only packages without services of their own are installed (dnsmasq-base,
not dnsmasq; libvirt-daemon, not libvirt-daemon-system), so nothing
starts listening on the host's network; the lab starts each daemon
itself, inside its namespace.
"""

import os
import shutil
import subprocess

from lab import netgrub
from lab import settings

DEB_PACKAGES = ('qemu-system-x86', 'qemu-utils', 'libvirt-daemon',
                'libvirt-daemon-driver-qemu', 'libvirt-clients',
                'dnsmasq-base', 'ipmitool', 'ipxe', 'ovmf', 'zstd',
                'iproute2', 'libvirt-dev', 'pkg-config', 'gcc',
                'python3-dev',
                # Ironic's pxe and http boot interfaces: shim and GRUB
                # (UEFI; Debian's modules and grub-mkimage, lab.netgrub)
                # and PXELINUX (BIOS), Debian's builds. The signed GRUB
                # is kept for its CD build (lab.vmedia).
                'shim-signed', 'grub-efi-amd64-bin', 'grub-common',
                'grub-efi-amd64-signed', 'pxelinux', 'syslinux-common',
                # redfish-virtual-media: Ironic's mkisofs and ISOLINUX,
                # the lab's ESP image (lab.vmedia)
                'genisoimage', 'isolinux', 'dosfstools', 'mtools')
# virtualbmc (IPMI) and sushy-tools (Redfish) drive libvirt through
# libvirt-python, built against libvirt-dev.
# Package -> the command that shows it is installed.
PIP_PACKAGES = {'virtualbmc': 'vbmcd', 'sushy-tools': 'sushy-emulator'}
# Every boot loader the lab's boot interfaces hand out, as Ironic's
# ``[pxe]loader_file_paths`` names them: Ironic copies them into its TFTP
# and HTTP roots itself. The names are Ironic's defaults for
# ``[pxe]pxe_bootfile_name``, ``uefi_pxe_bootfile_name`` (shim, which
# loads ``grubx64.efi`` from beside itself), ``ipxe_bootfile_name`` and
# ``uefi_ipxe_bootfile_name``; ldlinux.c32 is what pxelinux.0 loads first.
# ``grubx64.efi``, which shim loads, the lab assembles from Debian's GRUB
# modules (:func:`boot_loaders`, lab.netgrub).
BOOT_LOADERS = {
    'bootx64.efi': '/usr/lib/shim/shimx64.efi.signed',
    'pxelinux.0': '/usr/lib/PXELINUX/pxelinux.0',
    'ldlinux.c32': '/usr/lib/syslinux/modules/bios/ldlinux.c32',
    'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
    'snponly.efi': '/usr/lib/ipxe/snponly.efi',
}
OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'


def boot_loaders(lab):
    """What ``[pxe]loader_file_paths`` names: Debian's loaders and the
    lab's network GRUB (built by :func:`lab.netgrub.build`)."""
    return dict(BOOT_LOADERS, **{'grubx64.efi': netgrub.path(lab)})


class HostError(Exception):
    pass


def require_root():
    if os.geteuid() != 0:
        raise HostError('the lab needs root (network namespaces, libvirt, '
                        'apt-get); run it with sudo')


def missing_debs(packages=DEB_PACKAGES):
    missing = []
    for package in packages:
        result = subprocess.run(
            ['dpkg-query', '-W', '-f', '${Status}', package],
            capture_output=True, text=True)
        if 'ok installed' not in result.stdout:
            missing.append(package)
    return missing


def install_debs(packages, say, no_service_start=False):
    """apt-get install what of ``packages`` is missing. With
    ``no_service_start`` the packages' own services stay stopped (a
    policy-rc.d that denies every start is put in place for the install
    when the host has none): the lab starts those daemons itself, inside
    its namespace."""
    missing = missing_debs(packages)
    if not missing:
        return
    if not shutil.which('apt-get'):
        raise HostError('missing Debian packages and no apt-get: %s'
                        % ' '.join(missing))
    say('installing Debian packages: %s' % ' '.join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    policy = '/usr/sbin/policy-rc.d'
    placed = no_service_start and not os.path.exists(policy)
    if placed:
        with open(policy, 'w') as f:
            f.write('#!/bin/sh\n# Placed by the fuel-agent lab during an '
                    'install.\nexit 101\n')
        os.chmod(policy, 0o755)
    try:
        for argv in (['apt-get', 'update', '-qq'],
                     ['apt-get', 'install', '-y', '-qq',
                      '--no-install-recommends'] + missing):
            result = subprocess.run(argv, env=env, capture_output=True,
                                    text=True)
            if result.returncode:
                raise HostError('%s failed:\n%s' % (
                    ' '.join(argv[:3]), result.stderr[-2000:]))
    finally:
        if placed:
            os.unlink(policy)


def install(say):
    """Install what is missing; say what was done."""
    require_root()
    install_debs(DEB_PACKAGES, say)
    if not all(os.path.exists(os.path.join(settings.VENV_BIN, command))
               for command in PIP_PACKAGES.values()):
        say('installing %s into .venv' % ' '.join(PIP_PACKAGES))
        result = subprocess.run(
            [os.path.join(settings.VENV_BIN, 'pip'), 'install', '-q',
             '--disable-pip-version-check'] + list(PIP_PACKAGES),
            capture_output=True, text=True)
        if result.returncode:
            raise HostError('pip install %s failed:\n%s' % (
                ' '.join(PIP_PACKAGES), result.stderr[-2000:]))
    for path in tuple(BOOT_LOADERS.values()) + (
            OVMF_CODE, OVMF_VARS, netgrub.MODULE_DIR):
        if not os.path.exists(path):
            raise HostError('%s is missing although its package is '
                            'installed' % path)
