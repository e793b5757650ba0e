"""What a cloud's operator and its user type in the lab's ``--openstack``
mode, with the ``openstack`` CLI: images into Glance, flavors that pick a
disk layout, servers created, rebuilt, rescued and deleted through Nova.
The lab prints every command; doc/source/nova-flavors.rst walks through
the same ones.
"""

import json
import os
import shlex
import subprocess
import time

from lab import openstack

# Nova schedules a bare-metal flavor by the node's resource class alone:
# the standard resources are zeroed (Ironic's documented flavor setup).
BAREMETAL_RESOURCES = {'resources:CUSTOM_BAREMETAL': '1',
                       'resources:VCPU': '0', 'resources:MEMORY_MB': '0',
                       'resources:DISK_GB': '0'}
# From compute API 2.93 on, Nova asks every rebuild to re-image a boot
# volume, even for a server without one, and its Ironic virt driver then
# refuses ("Ironic doesn't support rebuilding volume backed instances").
REBUILD_API_VERSION = '2.92'


class CloudError(Exception):
    pass


class Cloud:
    """The lab's admin (project scope) at the ``openstack`` CLI."""

    def __init__(self, lab, say=print):
        self.lab = lab
        self.say = say
        self.env = dict(os.environ, **openstack.admin_env(lab))
        self.command = openstack.bin_path(lab, 'openstack')

    def openstack(self, *args, quiet=False, timeout=600, check=True):
        if not quiet:
            self.say('$ openstack ' + ' '.join(shlex.quote(a)
                                                for a in args))
        result = subprocess.run([self.command] + list(args), env=self.env,
                                capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode:
            raise CloudError('openstack %s failed: %s' % (
                ' '.join(args[:3]), result.stderr.strip()[-2000:]))
        if '-f' in args and 'json' in args and result.stdout.strip():
            return json.loads(result.stdout)
        return result.stdout

    # -- the operator -----------------------------------------------------

    def image(self, name, image, properties=()):
        """The Glance image ``name`` holding ``image`` (a partition image,
        so ``img_type=partition``); its id."""
        found = self.openstack('image', 'list', '--name', name, '-f', 'json',
                               quiet=True)
        if found:
            return found[0]['ID']
        args = ['image', 'create', '--disk-format', 'raw',
                '--container-format', 'bare', '--file', image.path,
                '--property', 'img_type=partition', '-f', 'json']
        for key, value in properties:
            args += ['--property', '%s=%s' % (key, value)]
        return self.openstack(*args + [name])['id']

    def flavor(self, name, extra_specs):
        """A bare-metal flavor with ``extra_specs`` on top of the resource
        class; its name."""
        found = self.openstack('flavor', 'list', '--all', '-f', 'json',
                               quiet=True)
        if not any(f['Name'] == name for f in found):
            # ram/vcpus/disk are what Nova shows; scheduling uses the
            # resource class. disk is root_gb, which Ironic wants set
            # for partition images.
            self.openstack('flavor', 'create', '--ram', '2048', '--vcpus',
                           '2', '--disk', '2', name)
        args = ['flavor', 'set']
        for key, value in sorted(dict(BAREMETAL_RESOURCES,
                                      **extra_specs).items()):
            args += ['--property', '%s=%s' % (key, value)]
        self.openstack(*args + [name])
        return name

    def wait_for_node(self, node_uuid, timeout=600):
        """Until Placement lists the node as a resource provider with its
        one unit of CUSTOM_BAREMETAL free: nova-compute has seen it
        available (and Nova schedules onto it)."""
        deadline = time.monotonic() + timeout
        while True:
            inventory = self.openstack(
                'resource', 'provider', 'inventory', 'list', node_uuid,
                '-f', 'json', quiet=True, check=False) or []
            usage = self.openstack(
                'resource', 'provider', 'usage', 'show', node_uuid,
                '-f', 'json', quiet=True, check=False) or []
            if isinstance(inventory, list) and any(
                    i.get('resource_class') == 'CUSTOM_BAREMETAL' and
                    i.get('total') == 1 and i.get('reserved') == 0
                    for i in inventory) and isinstance(usage, list) and \
                    not any(u.get('usage') for u in usage):
                return
            if time.monotonic() > deadline:
                raise CloudError('Nova does not offer node %s after %d s '
                                 '(inventory %s, usage %s)' % (
                                     node_uuid, timeout, inventory, usage))
            time.sleep(5)

    # -- the user -----------------------------------------------------------

    def server(self, name):
        return self.openstack('server', 'show', name, '-f', 'json',
                              quiet=True, check=False) or None

    def wait_for_server(self, name, statuses, timeout=2400):
        deadline = time.monotonic() + timeout
        while True:
            found = self.server(name)
            status = (found or {}).get('status')
            if status in statuses or (found is None and None in statuses):
                return found
            if time.monotonic() > deadline:
                raise CloudError('server %s still %s after %d s' % (
                    name, status, timeout))
            time.sleep(3)

    def fault(self, name):
        """The fault message ``openstack server show`` gives the user."""
        fault = (self.server(name) or {}).get('fault')
        if isinstance(fault, dict):
            return fault.get('message') or ''
        return str(fault or '')

    def delete_server(self, name):
        if self.server(name):
            self.openstack('server', 'delete', name)
            self.wait_for_server(name, (None,), timeout=600)
