"""Redfish for the lab's VMs: sushy-tools' emulator in front of the lab's
libvirtd.

One ``sushy-emulator`` inside the namespace serves every domain of the
lab's private libvirtd (which has only the lab's VMs) as a Redfish
System (``/redfish/v1/Systems/<domain UUID>``), with HTTP basic
authentication from an htpasswd file (bcrypt, as the emulator
requires). Ironic's ``redfish`` power and management interfaces drive it
as they would a server's BMC: power, soft power off (ACPI), persistent
boot device (the domain's boot order), boot mode (read from the
domain's firmware loader) and virtual media (Ironic's ISO, attached as
the domain's CD from libvirt's ``default`` storage pool).
"""

import base64
import json
import os
import urllib.error
import urllib.request

import bcrypt

from lab import procs
from lab import settings
from lab import virt

NAME = 'sushy-emulator'


def config(lab):
    """The emulator's configuration file (Python syntax)."""
    return (
        '# Written by the lab.\n'
        'SUSHY_EMULATOR_LISTEN_IP = %r\n'
        'SUSHY_EMULATOR_LISTEN_PORT = %d\n'
        'SUSHY_EMULATOR_LIBVIRT_URI = %r\n'
        'SUSHY_EMULATOR_AUTH_FILE = %r\n'
        % (lab.address, lab.redfish_port, virt.uri(lab),
           lab.path('redfish', 'htpasswd')))


def start(lab, registry):
    directory = lab.path('redfish')
    os.makedirs(directory, exist_ok=True)
    hashed = bcrypt.hashpw(lab.bmc_password.encode(), bcrypt.gensalt())
    with open(os.path.join(directory, 'htpasswd'), 'w') as f:
        f.write('%s:%s\n' % (lab.bmc_user, hashed.decode()))
    conf = os.path.join(directory, 'emulator.conf')
    with open(conf, 'w') as f:
        f.write(config(lab))
    # Virtual media: the emulator downloads each ISO (from Ironic's HTTP
    # server, in the namespace) to a temporary file before it uploads it
    # into libvirt's storage pool; keep those in the lab's directory.
    tmp = os.path.join(directory, 'tmp')
    os.makedirs(tmp, exist_ok=True)
    registry.start(NAME, [os.path.join(settings.VENV_BIN, 'sushy-emulator'),
                          '--config', conf],
                   env=dict(os.environ, TMPDIR=tmp))
    procs.wait_until(lambda: _answers(lab), 'the Redfish emulator', 30,
                     registry, NAME)


def _answers(lab):
    return asks_for_credentials(lab.redfish_url)


def asks_for_credentials(url):
    """Whether the emulator at ``url`` is up and guarding its Systems
    (HTTP 401 without credentials)."""
    try:
        with urllib.request.urlopen(url + '/redfish/v1/Systems', timeout=2):
            return False  # it must ask for credentials
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False


def system(lab, node):
    """The node's Redfish System as the emulator serves it, read with
    the lab's credentials."""
    request = urllib.request.Request(
        lab.redfish_url + system_id(lab, node), headers={
            'Authorization': 'Basic ' + base64.b64encode(
                ('%s:%s' % (lab.bmc_user, lab.bmc_password)).encode()
            ).decode()})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


def system_id(lab, node):
    uuid = virt.virsh(lab, 'domuuid', node.domain)[1].strip()
    return '/redfish/v1/Systems/' + uuid


def driver_info(lab, node):
    return {'redfish_address': lab.redfish_url,
            'redfish_system_id': system_id(lab, node),
            'redfish_username': lab.bmc_user,
            'redfish_password': lab.bmc_password}
