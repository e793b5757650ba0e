"""The lab's BMCs: each VM has IPMI or Redfish, as its NodeSpec says.

IPMI is virtualbmc in front of the lab's libvirtd: vbmcd runs inside the
namespace; each VM gets a BMC on the lab's address and its own UDP port,
which Ironic's ``ipmitool`` interfaces drive (power, boot device)
exactly as they would a server's BMC. Redfish is sushy-tools' emulator
(:mod:`redfish`), driven by Ironic's ``redfish`` interfaces. Enrolled
nodes get the matching hardware type: ``fuel-ipmi`` or ``fuel-redfish``.
"""

import os
import subprocess

from lab import procs
from lab import redfish
from lab import settings
from lab import virt

NAME = 'vbmcd'
HARDWARE_TYPES = {'ipmi': 'fuel-ipmi', 'redfish': 'fuel-redfish'}
# Ironic's power and management interfaces of each.
INTERFACES = {'ipmi': 'ipmitool', 'redfish': 'redfish'}
EMULATORS = {'ipmi': 'virtualbmc', 'redfish': 'sushy-tools'}


class BMCError(Exception):
    pass


def _env(lab):
    return dict(os.environ, VIRTUALBMC_CONFIG=lab.path('vbmc',
                                                       'virtualbmc.conf'))


def start(lab, registry, nodes):
    """Start the emulators ``nodes`` need."""
    kinds = {node.bmc for node in nodes}
    if 'ipmi' in kinds:
        _start_vbmcd(lab, registry)
    if 'redfish' in kinds:
        redfish.start(lab, registry)


def _start_vbmcd(lab, registry):
    directory = lab.path('vbmc')
    os.makedirs(os.path.join(directory, 'bmcs'), exist_ok=True)
    with open(os.path.join(directory, 'virtualbmc.conf'), 'w') as f:
        f.write('[default]\nconfig_dir = %s\npid_file = %s\n'
                'server_port = %d\n[log]\nlogfile = %s\n' % (
                    os.path.join(directory, 'bmcs'),
                    os.path.join(directory, 'vbmcd.pid'), lab.vbmcd_port,
                    lab.path('logs', 'vbmc.log')))
    registry.start(NAME, [os.path.join(settings.VENV_BIN, 'vbmcd'),
                          '--foreground'], env=_env(lab))
    procs.wait_until(lambda: _vbmc(lab, 'list', check=False)[0] == 0,
                     'vbmcd', 30, registry, NAME)


def _vbmc(lab, *args, check=True):
    result = subprocess.run([os.path.join(settings.VENV_BIN, 'vbmc')]
                            + list(args), env=_env(lab),
                            capture_output=True, text=True, timeout=60)
    if check and result.returncode:
        raise BMCError('vbmc %s failed: %s' % (
            ' '.join(args[:2]), (result.stderr or result.stdout).strip()))
    return result.returncode, result.stdout


def add(lab, node):
    """A running BMC for ``node`` (replacing an older one)."""
    if node.bmc == 'redfish':
        # The emulator serves every domain; check it serves this one.
        state = redfish.system(lab, node).get('PowerState')
        if state not in ('On', 'Off'):
            raise BMCError('the Redfish emulator reports power state %r '
                           'for %s' % (state, node.domain))
        return
    _vbmc(lab, 'delete', node.domain, check=False)
    _vbmc(lab, 'add', node.domain, '--address', lab.address, '--port',
          str(node.bmc_port), '--username', lab.bmc_user, '--password',
          lab.bmc_password, '--libvirt-uri', virt.uri(lab))
    _vbmc(lab, 'start', node.domain)


def describe(lab, node):
    """Where the node's BMC is, for progress lines."""
    if node.bmc == 'redfish':
        return 'Redfish BMC on port %d' % lab.redfish_port
    return 'IPMI BMC on port %d' % node.bmc_port


def driver_info(lab, node, kind=None):
    """The node's BMC as Ironic's driver_info: its own (``node.bmc``) or
    the lab's Redfish emulator (``kind='redfish'``), which serves every
    VM of the lab."""
    if (kind or node.bmc) == 'redfish':
        return redfish.driver_info(lab, node)
    return {'ipmi_address': lab.address, 'ipmi_port': str(node.bmc_port),
            'ipmi_username': lab.bmc_user,
            'ipmi_password': lab.bmc_password}
