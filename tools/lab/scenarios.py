"""The lab's test mode: each node walks a lifecycle through Ironic, with
Ironic's automated cleaning on, and each step is checked on the machine
itself (its serial console, its disks) as well as in Ironic.

Each node's scenarios run in order (each one also runs alone, making
what it needs first); the two nodes' chains run at the same time (most
of it is waiting for one VM, and there are two cores):

BIOS node (fuel-ipmi, virtualbmc):

- ``bios-inspect-clean``: ``inspect`` (the fuel ramdisk posts its
  inventory; Ironic's own hooks fill properties), then ``provide``:
  automated cleaning (erase_devices_metadata, erase_devices) to
  ``available``; one power-on each; boot interface ``pxe`` (PXELINUX);
  the ramdisk got a DHCPv6 lease (dnsmasq's log) and still announced
  its IPv4 address;
- then through Nova (the lab's OpenStack mode; doc/source/nova-flavors.rst):
  ``nova-does-not-fit``: a flavor whose layout is larger than the
  inspected disks; Nova's call to validate fails and ``openstack server
  show`` says why: 0 power-ons, disks untouched;
- ``nova-server-create``: ``openstack server create`` with the flavor
  whose ``capabilities:fa_scheme`` names RAID1 + LVM on two disks in the
  conductor's scheme library, the image from Glance; a tarball the
  scheme lists puts a marker with a fresh token on the data volume;
- ``nova-rebuild-keep-data``: ``openstack server rebuild`` with an image
  whose trait selects a deploy template keeping the data volume (no
  cleaning): same data file system and marker, new root;
- ``nova-rescue``: over ``http-ipxe`` (set in maintenance: the node is
  deployed), ``openstack server rescue`` boots the ramdisk, the
  rescue user logs in over SSH with the password given; ``unrescue``
  boots the installed system;
- ``nova-server-delete``: the server's first disk is pulled and the
  installed system must boot from the second one (GRUB is on both) on
  the degraded array; then ``openstack server delete``: automated cleaning
  erases both disks (the kept data too: cleaning is for the next
  tenant), the node is ``available`` and offered by Nova again; the disk
  images read back as zeros;
- ``bios-virtual-media``: ``inspect`` over Redfish virtual media (the
  lab's Redfish emulator serves this VM too; Ironic's ISOLINUX ISO),
  DHCP-less and IPv6-only as ``uefi-virtual-media``; then IPMI again.

UEFI node (fuel-redfish, sushy-tools):

- ``uefi-clean-uninspected``: ``provide`` of a node never inspected: the
  ramdisk lists its own disks for cleaning; boot interface ``pxe`` (shim
  and GRUB over TFTP, no BOOTIF); a DHCPv6 lease too;
- ``uefi-http-clean``: ``provide`` again, over ``http``: OVMF's UEFI
  HTTP boot loads shim, then the lab's network GRUB (:mod:`lab.netgrub`),
  Ironic's GRUB configuration, kernel and initramfs, all over HTTP;
- ``uefi-raid1-failover``: RAID1 + LVM, scheme in driver_info; the node
  is in conductor group ``fa-ha``, served by two ironic-conductor
  processes (on MariaDB and RabbitMQ, beside ironic-api): the one that
  owns the node is SIGKILLed as soon as the agent runs, the other takes
  the node over through the hash ring and finishes the deploy (the
  agent is not started again, the installed system boots); the killed
  conductor is started again; then the first disk is pulled and the
  installed system must boot from the second one on the degraded
  array; undeploy + clean;
- ``uefi-default-layout``: no scheme (the root_gb default layout); boot
  interface ``http-ipxe`` (OVMF's UEFI HTTP boot loads iPXE);
- ``uefi-virtual-media``: ``inspect`` over Redfish virtual media
  (boot interface ``redfish-virtual-media``: sushy-tools attaches Ironic's
  ISO as the VM's CD) with the node's ``network_data`` giving a static
  address and no DHCP answer: dnsmasq's log must show no request from
  the node's MAC, and the inventory the static address, IPv6 only
  (Ironic's API at ``[deploy]external_callback_url``); then ``provide``
  (automated cleaning) over ``redfish-https`` (sushy-tools emulates the
  BMC's UEFI HTTP boot of Ironic's ISO as a CD), DHCP-less and over IPv6
  too (the conductor's SSH to the agent).

The other scenarios boot with ``ipxe``. Each scenario checks from
dnsmasq's and the HTTP server's logs that its node booted the way its
boot interface says (:mod:`lab.boot_paths`).
"""

import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import secrets
import subprocess
import threading
import time

from lab import artifacts
from lab import bmc
from lab import boot_paths
from lab import cloud
from lab import console
from lab import deploy
from lab import dhcp
from lab import ironic
from lab import operations
from lab import schemes
from lab import settings
from lab import virt
from lab import vmedia
from lab import webserver

BIOS = settings.NODES['bios']
UEFI = settings.NODES['uefi']
# What the operator sets up for Nova (see prepare_cloud).
KEEP_TRAIT = 'CUSTOM_FA_KEEP_DATA'
TOO_BIG_TRAIT = 'CUSTOM_FA_TOO_BIG'
OS_IMAGE = 'fa-test-os'
KEEP_IMAGE = 'fa-test-os-keep-data'
RAID1_FLAVOR = 'fa-raid1-lvm'
TOO_BIG_FLAVOR = 'fa-too-big'
SERVER = 'fa-lab-server'
REFUSED_SERVER = 'fa-lab-too-big'


class CheckFailed(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def swap_devices(swaps):
    """Swap device names from the marker's ``swaps``: /proc/swaps text
    or swapon's JSON list."""
    if isinstance(swaps, str):
        return [line.split()[0] for line in swaps.splitlines()[1:]
                if line.strip()]
    return [s.get('name') or '' for s in swaps or ()]


@dataclasses.dataclass
class Outcome:
    name: str
    passed: bool = False
    seconds: float = 0.0
    detail: str = ''
    deploys: list = dataclasses.field(default_factory=list)
    operations: list = dataclasses.field(default_factory=list)


class Scenarios:
    """The scenarios against a running :class:`stack.Stack`."""

    def __init__(self, stack, prefix=''):
        self.stack = stack
        self.lab = stack.lab
        self.say = (lambda message: stack.say(prefix + message)) \
            if prefix else stack.say
        self.client = ironic.Client(self.lab, say=self.say)
        # What nova-server-create left for nova-rebuild-keep-data.
        self.first_deploy = None
        self.cloud = None
        # Power-ons of every operation this runner watched; the lifecycle
        # count from enrolment is reported when the chain began there.
        self.power_ons = 0
        self.from_enroll = False

    # -- helpers ----------------------------------------------------------

    def os_image(self):
        url, image = self.stack.image_url('fs_image')
        return url, image

    def instance_info(self, **extra):
        url, image = self.os_image()
        # Ironic wants root_gb with every partition image (Nova always
        # sets it from the flavor); only the default layout uses it.
        info = {'image_source': url, 'image_type': 'partition',
                'image_os_hash_algo': 'sha256',
                'image_os_hash_value': image.sha256, 'root_gb': '2'}
        info.update(extra)
        return list(info.items())

    def scheme_image(self, image, target):
        url = webserver.publish(self.lab, image.path,
                                os.path.basename(image.path))
        entry = {'url': url, 'format': image.format, 'target': target,
                 'checksum': {'algorithm': 'sha256', 'value': image.sha256}}
        if image.compression:
            entry['compression'] = image.compression
        return entry

    def library(self, name, scheme):
        with open(self.lab.path('schemes', name + '.json'), 'w') as f:
            json.dump(scheme, f, indent=1)

    def operate(self, outcome, node, args, until, failed=(), **kwargs):
        record = operations.run(self.lab, self.client, node, args, until,
                                failed, say=self.say, **kwargs)
        outcome.operations.append(record)
        self.power_ons += record.power_ons
        return record

    def deploy(self, outcome, node, **kwargs):
        record = deploy.deploy(self.lab, self.client, node, say=self.say,
                               **kwargs)
        outcome.deploys.append(record)
        self.power_ons += record.power_ons
        return record

    def ironic_log_has(self, text, since):
        with open(self.lab.path('logs', 'ironic-service.log'),
                  errors='replace') as f:
            f.seek(since)
            return text in f.read()

    def ironic_log_count(self, text, since):
        """Lines with ``text`` in the log every Ironic process writes."""
        with open(self.lab.path('logs', 'ironic-service.log'),
                  errors='replace') as f:
            f.seek(since)
            return sum(text in line for line in f)

    def ironic_log_size(self):
        return console.size(self.lab.path('logs', 'ironic-service.log'))

    def check_active(self, record, boot_mode):
        check(record.state == 'active', 'deploy ended in %s: %s'
              % (record.state, record.last_error))
        marker = record.marker
        check(marker and marker.get('boot_mode') == boot_mode,
              'the installed system booted in %s mode, expected %s'
              % (marker and marker.get('boot_mode'), boot_mode))
        return marker

    def check_raid1_lvm(self, marker):
        mounts = {m['target']: m for m in marker.get('mounts') or ()}
        root = mounts.get('/')
        check(root and 'system-root' in (root.get('source') or ''),
              'root is not on the LVM volume system/root: %s' % root)
        check(schemes.DATA_MOUNT in mounts,
              '%s is not mounted: %s' % (schemes.DATA_MOUNT, sorted(mounts)))
        mdstat = marker.get('mdstat') or ''
        check('raid1' in mdstat and '[2/2]' in mdstat,
              'no RAID1 array with both members active: %s' % mdstat)
        swaps = swap_devices(marker.get('swaps'))
        check(any('/dm-' in name or 'system-swap' in name
                  for name in swaps),
              'the swap volume is not in use: %s' % swaps)
        return mounts

    # -- scenarios --------------------------------------------------------

    def to_manageable(self, node):
        state = self.client.node(node.domain)['provision_state']
        if state != 'manageable':
            deploy.undeploy(self.client, node)
            self.client.baremetal('node', 'manage', node.domain, '--wait',
                                  '120')

    def inventory(self, node):
        """The inventory Ironic stored at inspection, or None."""
        try:
            return self.client.request(
                'GET', '/v1/nodes/%s/inventory' % node.domain)['inventory']
        except ironic.IronicError:
            return None

    def erase_steps_ran(self, since, node):
        """The erase clean steps Ironic's conductor started on ``node``
        since ``since`` (its "Executing {step} on node <uuid>" lines)."""
        uuid = self.client.node(node.domain)['uuid']
        with open(self.lab.path('logs', 'ironic-service.log'),
                  errors='replace') as f:
            f.seek(since)
            lines = [line for line in f if 'Executing {' in line and
                     'on node %s' % uuid in line]
        return [step for step in ('erase_devices_metadata', 'erase_devices')
                if any("'step': '%s'" % step in line for line in lines)]

    def provide(self, outcome, node):
        since = self.ironic_log_size()
        op = self.operate(outcome, node, ['provide'], ['available'],
                          ['clean failed'])
        check(op.state == 'available', 'cleaning ended in %s: %s'
              % (op.state, op.last_error))
        ran = self.erase_steps_ran(since, node)
        check(ran == ['erase_devices_metadata', 'erase_devices'],
              'automated cleaning should run erase_devices_metadata and '
              'erase_devices (Ironic\'s defaults); the log shows %s' % ran)
        return op

    def bios_inspect_clean(self, outcome):
        state = self.client.node(BIOS.domain)['provision_state']
        self.from_enroll = state == 'manageable' and \
            self.inventory(BIOS) is None
        self.power_ons = 0
        self.to_manageable(BIOS)
        since = console.size(self.lab.path('logs', 'dnsmasq.log'))
        console_since = console.size(virt.console_log(self.lab, BIOS))
        op = self.operate(outcome, BIOS, ['inspect'], ['manageable'],
                          ['inspect failed'])
        check(op.state == 'manageable', 'inspection ended in %s: %s'
              % (op.state, op.last_error))
        check(op.power_ons == 1, 'inspection powered the node on %d times'
              % op.power_ons)
        inventory = self.inventory(BIOS) or {}
        serials = {d.get('serial'): d for d in inventory.get('disks') or ()}
        for number, gib in enumerate(BIOS.disks_gib):
            disk = serials.get(settings.DISK_SERIAL % number)
            check(disk and int(disk.get('size') or 0) == gib << 30,
                  'the inventory lacks disk %s of %d GiB: %s' % (
                      settings.DISK_SERIAL % number, gib,
                      sorted(s for s in serials if s)))
        macs = [i.get('mac_address') for i in
                inventory.get('interfaces') or ()]
        check(BIOS.mac in macs, 'the inventory lacks NIC %s: %s'
              % (BIOS.mac, macs))
        properties = self.client.node(BIOS.domain)['properties']
        check(int(properties.get('memory_mb') or 0) > 1024 and
              int(properties.get('local_gb') or 0) >= 4,
              'Ironic\'s inspection hooks did not fill memory_mb and '
              'local_gb: %s' % properties)
        leased = self.leased_ipv6(BIOS, since, console_since)
        self.provide(outcome, BIOS)
        outcome.detail = 'DHCPv6 %s; %d disks, memory_mb %s, local_gb %s' % (
            leased,
            len(serials), properties.get('memory_mb'),
            properties.get('local_gb'))

    # -- the BIOS node through Nova (--openstack) ---------------------------

    def ensure_template(self, trait, scheme_name):
        """A deploy template for ``trait`` whose write_image takes the
        library scheme ``scheme_name``."""
        steps = [{'interface': 'deploy', 'step': 'write_image',
                  'args': {'scheme_name': scheme_name}, 'priority': 80}]
        templates = self.client.request('GET', '/v1/deploy_templates')
        if not any(t['name'] == trait
                   for t in templates['deploy_templates']):
            self.client.baremetal('deploy', 'template', 'create', trait,
                                  '--steps', json.dumps(steps))

    def prepare_cloud(self):
        """What the operator sets up once (doc/source/nova-flavors.rst):
        the layouts in the conductor's scheme library, deploy templates
        for the trait-selected ones, the node's capability and traits,
        the Glance images and the flavors. Returns the node's UUID once
        Nova offers the node."""
        if self.cloud is None:
            self.cloud = cloud.Cloud(self.lab, say=self.say)
        token = secrets.token_hex(8)
        data = artifacts.data_tar(self.lab, token)
        self.library('raid1-lvm', schemes.with_images(
            schemes.raid1_lvm('bios'), [self.scheme_image(data, 'fs-data')]))
        self.library('raid1-lvm-keep', schemes.raid1_lvm('bios',
                                                          keep_data=True))
        self.library('too-big', schemes.too_big('bios'))
        self.ensure_template(KEEP_TRAIT, 'raid1-lvm-keep')
        self.ensure_template(TOO_BIG_TRAIT, 'too-big')
        node = self.client.node(BIOS.domain)
        capabilities = [c for c in (node['properties'].get('capabilities')
                                    or '').split(',')
                        if c and not c.startswith('fa_scheme:')]
        # Nova's ComputeCapabilitiesFilter matches the flavor's
        # capabilities:fa_scheme against the node's capabilities.
        self.client.baremetal('node', 'set', BIOS.domain, '--property',
                              'capabilities=%s' % ','.join(
                                  capabilities + ['fa_scheme:raid1-lvm']))
        for trait in (KEEP_TRAIT, TOO_BIG_TRAIT):
            self.client.baremetal('node', 'add', 'trait', BIOS.domain, trait)
        image = artifacts.uncompressed(
            self.lab, self.stack.images['images']['fs_image'])
        self.cloud.image(OS_IMAGE, image)
        # The same image, asking for the keep-data template: what a user
        # rebuilds with to keep the data volume.
        self.cloud.image(KEEP_IMAGE, image,
                         [('trait:%s' % KEEP_TRAIT, 'required')])
        self.cloud.flavor(RAID1_FLAVOR, {'capabilities:fa_scheme':
                                         'raid1-lvm'})
        self.cloud.flavor(TOO_BIG_FLAVOR, {'trait:%s' % TOO_BIG_TRAIT:
                                           'required'})
        # A server an earlier run left would hold the node's allocation.
        for server in (SERVER, REFUSED_SERVER):
            self.cloud.delete_server(server)
        self.cloud.wait_for_node(node['uuid'])
        return node['uuid'], token

    def nova_does_not_fit(self, outcome):
        if self.inventory(BIOS) is None:
            self.bios_inspect_clean(outcome)
        self.release_from_nova()
        self.prepare_cloud()
        running = virt.domain_id(self.lab, BIOS)
        self.cloud.openstack('server', 'create', '--flavor', TOO_BIG_FLAVOR,
                             '--image', OS_IMAGE, '--nic', 'none',
                             REFUSED_SERVER)
        server = self.cloud.wait_for_server(REFUSED_SERVER,
                                            ('ERROR', 'ACTIVE'), 900)
        fault = server.get('fault') or {}
        message = fault.get('message') or ''
        check(server['status'] == 'ERROR', 'the server is %s; a flavor '
              'whose layout does not fit should fail' % server['status'])
        # The user sees the message (255 characters), not the details.
        check('failed to validate' in message and 'vg0' in message,
              'openstack server show should say the node failed to '
              'validate, naming vg0; it says %s' % message)
        node = self.client.node(BIOS.domain)
        check(node['provision_state'] == 'available' and
              not node['instance_uuid'],
              'the node is %s (instance %s) after the refused build' % (
                  node['provision_state'], node['instance_uuid']))
        check(virt.domain_id(self.lab, BIOS) == running,
              'the node was powered on (or off) by the refused build')
        info = node['driver_internal_info'] or {}
        check('fa_agent_started_at' not in info and
              'fa_agent_result' not in info,
              'an agent ran for the refused build: %s' % sorted(info))
        self.cloud.delete_server(REFUSED_SERVER)
        outcome.detail = 'server fault: %s' % message[:160]

    def release_from_nova(self):
        """The BIOS node ``available``, with no server of the lab's on
        it: Nova deletes those first, so that Nova and Ironic agree."""
        if self.cloud is None:
            self.cloud = cloud.Cloud(self.lab, say=self.say)
        for server in (SERVER, REFUSED_SERVER):
            self.cloud.delete_server(server)
        deploy.undeploy(self.client, BIOS)

    def nova_server_create(self, outcome):
        self.release_from_nova()
        node_uuid, token = self.prepare_cloud()
        since = self.ironic_log_size()
        record = self.deploy(outcome, BIOS, start=lambda: self.cloud.openstack(
            'server', 'create', '--flavor', RAID1_FLAVOR, '--image',
            OS_IMAGE, '--nic', 'none', SERVER))
        marker = self.check_active(record, 'bios')
        mounts = self.check_raid1_lvm(marker)
        server = self.cloud.wait_for_server(SERVER, ('ACTIVE', 'ERROR'), 600)
        check(server['status'] == 'ACTIVE', 'the server is %s: %s' % (
            server['status'], server.get('fault')))
        node = self.client.node(BIOS.domain)
        check(node['instance_uuid'] == server['id'],
              'the node carries instance %s, not the server %s'
              % (node['instance_uuid'], server['id']))
        info = node['instance_info']
        capabilities = info.get('capabilities') or {}
        if isinstance(capabilities, str):
            # Nova writes them as JSON text (nova/virt/ironic/patcher.py).
            capabilities = json.loads(capabilities)
        check(capabilities.get('fa_scheme') == 'raid1-lvm',
              'Nova did not put the flavor\'s capability into '
              'instance_info: %s' % info.get('capabilities'))
        check(self.ironic_log_has(
            'instance_info.capabilities.fa_scheme=raid1-lvm', since),
            'Ironic\'s log does not say the scheme came from '
            'instance_info.capabilities.fa_scheme')
        # The image came from Glance with Glance's checksums: Ironic 39
        # passes on its md5 only, the driver adds its sha512
        # (ironic_fa_driver/glance_checksum.py), which the agent verified
        # while writing the image.
        image = artifacts.uncompressed(
            self.lab, self.stack.images['images']['fs_image'])
        hashes = {k: v for k, v in info.items()
                  if 'hash' in k or 'checksum' in k}
        check(info.get('image_checksum') == file_digest(image.path, 'md5'),
              'the node does not carry Glance\'s md5 of the image: %s'
              % hashes)
        check(info.get('image_os_hash_algo') == 'sha512' and
              info.get('image_os_hash_value') == file_digest(image.path,
                                                             'sha512'),
              'the node does not carry Glance\'s sha512 of the image: %s'
              % hashes)
        check(kept_token(marker) == token,
              '%s/%s holds %r, expected %r (from the scheme\'s tarball)'
              % (schemes.DATA_MOUNT, artifacts.MARKER_FILE,
                 kept_token(marker), token))
        self.first_deploy = {'token': token,
                             'data': mounts[schemes.DATA_MOUNT].get('uuid'),
                             'root': mounts['/'].get('uuid')}
        outcome.detail = 'server %s ACTIVE; Nova wrote %s' % (
            server['id'][:8], ', '.join(sorted(
                k for k in info if not k.startswith('image_'))))
        if self.from_enroll:
            outcome.detail = ('%d power-on(s) from enrolment to the installed '
                              'OS; %s' % (self.power_ons, outcome.detail))
            # Inspection boots the ramdisk; cleaning and the deploy take it
            # (fast track) and kexec starts the installed system.
            # Once per chain: a scenario that makes its server anew
            # (after a failure) has more power-ons behind it.
            self.from_enroll = False
            check(self.power_ons == 1, 'expected 1 power-on from enrolment '
                  'to the installed OS (fast track + kexec), saw %d'
                  % self.power_ons)

    def nova_rebuild_keep_data(self, outcome):
        if self.first_deploy is None or not self.cloud or \
                not self.cloud.server(SERVER):
            self.nova_server_create(outcome)
        first = self.first_deploy
        since = self.ironic_log_size()
        record = self.deploy(outcome, BIOS, verb='rebuild',
                             start=lambda: self.cloud.openstack(
                                 '--os-compute-api-version',
                                 cloud.REBUILD_API_VERSION, 'server',
                                 'rebuild', '--image', KEEP_IMAGE, SERVER))
        marker = self.check_active(record, 'bios')
        mounts = self.check_raid1_lvm(marker)
        server = self.cloud.wait_for_server(SERVER, ('ACTIVE', 'ERROR'), 600)
        check(server['status'] == 'ACTIVE', 'after the rebuild the server '
              'is %s: %s' % (server['status'], server.get('fault')))
        check(record.power_ons == 1, 'the rebuild powered the node on %d '
              'times; with kexec only the ramdisk boots' % record.power_ons)
        check(self.ironic_log_has('scheme_name"=raid1-lvm-keep', since),
              'Ironic\'s log does not say the scheme came from the deploy '
              'template of the image\'s trait')
        check(not self.erase_steps_ran(since, BIOS),
              'the rebuild ran cleaning steps')
        check(mounts[schemes.DATA_MOUNT].get('uuid') == first['data'],
              'the data file system was made anew (UUID %s, before %s)'
              % (mounts[schemes.DATA_MOUNT].get('uuid'), first['data']))
        check(kept_token(marker) == first['token'],
              'after the rebuild the kept data volume holds %r, expected '
              '%r' % (kept_token(marker), first['token']))
        check(mounts['/'].get('uuid') != first['root'],
              'the root file system was not made anew (UUID %s)'
              % first['root'])
        outcome.detail = 'marker %s and file system %s kept' % (
            first['token'], first['data'])

    def nova_rescue(self, outcome):
        if not self.cloud or not self.cloud.server(SERVER):
            self.nova_server_create(outcome)
        password = secrets.token_urlsafe(12)
        self.say('$ openstack server rescue --password ... %s' % SERVER)
        op = self.operate(outcome, BIOS, ['rescue'], ['rescue'],
                          ['rescue failed'],
                          # One argument: a password may begin with "-".
                          start=lambda: self.cloud.openstack(
                              'server', 'rescue', '--password=' + password,
                              SERVER, quiet=True))
        check(op.state == 'rescue', 'rescue ended in %s: %s'
              % (op.state, op.last_error))
        server = self.cloud.wait_for_server(SERVER, ('RESCUE', 'ERROR'), 600)
        check(server['status'] == 'RESCUE', 'the server is %s after the '
              'rescue' % server['status'])
        address = rescue_address(self.client.node(BIOS.domain), self.lab,
                                 BIOS)
        check(address, 'no address known for the rescued node')
        who = ssh_password_run(address, 'rescue', password,
                               'id -un; sudo -n id -u')
        check(who.split() == ['rescue', '0'], 'the rescue login (and its '
              'sudo) ran as %r' % who)
        for user, secret in (('rescue', password + 'x'), ('root', password)):
            check(ssh_password_refused(address, user, secret),
                  'the ramdisk let %s in with a password' % user)
        log = virt.console_log(self.lab, BIOS)
        offset = console.size(log)
        op = self.operate(outcome, BIOS, ['unrescue'], ['active'],
                          ['unrescue failed'],
                          start=lambda: self.cloud.openstack(
                              'server', 'unrescue', SERVER))
        check(op.state == 'active', 'unrescue ended in %s: %s'
              % (op.state, op.last_error))
        deadline = time.monotonic() + 600
        marker = None
        while marker is None and time.monotonic() < deadline:
            marker = console.marker(log, offset)
            time.sleep(2)
        check(marker and marker.get('boot_mode') == 'bios',
              'after unrescue the installed system printed no FA-MARKER')
        server = self.cloud.wait_for_server(SERVER, ('ACTIVE', 'ERROR'), 600)
        check(server['status'] == 'ACTIVE', 'the server is %s after '
              'unrescue' % server['status'])
        outcome.detail = 'rescue login at %s as %s; installed OS back' % (
            address, who.strip())

    def nova_server_delete(self, outcome):
        if not self.cloud or not self.cloud.server(SERVER):
            self.nova_server_create(outcome)
        # The tenant's server loses a disk first (BIOS: GRUB is on both).
        degraded = self.boot_without_first_disk(BIOS)
        since = self.ironic_log_size()
        op = self.operate(outcome, BIOS, ['undeploy'], ['available'],
                          ['clean failed', 'error'],
                          start=lambda: self.cloud.openstack(
                              'server', 'delete', SERVER))
        check(op.state == 'available', 'the delete\'s undeploy ended in '
              '%s: %s' % (op.state, op.last_error))
        check(self.cloud.wait_for_server(SERVER, (None,), 300) is None,
              'the server is still there')
        ran = self.erase_steps_ran(since, BIOS)
        check('erase_devices' in ran, 'the delete did not clean: %s' % ran)
        node_uuid = self.client.node(BIOS.domain)['uuid']
        self.cloud.wait_for_node(node_uuid)
        # Off first: a running QEMU may not have written its qcow2
        # metadata out yet (the lab's disks use cache=unsafe).
        self.client.baremetal('node', 'power', 'off', BIOS.domain,
                              '--power-timeout', '120')
        virt.power_off(self.lab, BIOS)
        dirty = [os.path.basename(path) for path in
                 virt.disk_paths(self.lab, BIOS) if not reads_zero(path)]
        check(not dirty, 'after cleaning %s still hold data' % dirty)
        outcome.detail = ('with disk0 pulled the server booted from disk1 '
                          'in %.0f s on the degraded array; server gone, '
                          'node cleaned (%s; disks read back as zeros) and '
                          'offered by Nova again' % (degraded, ', '.join(ran)))

    def uefi_clean_uninspected(self, outcome):
        self.to_manageable(UEFI)
        check(self.inventory(UEFI) is None, 'the UEFI node has inspection '
              'data; this scenario is about a node without')
        since = console.size(self.lab.path('logs', 'dnsmasq.log'))
        console_since = console.size(virt.console_log(self.lab, UEFI))
        op = self.provide(outcome, UEFI)
        outcome.detail = 'cleaned without inspection data: %s; DHCPv6 %s' % (
            op.line(), self.leased_ipv6(UEFI, since, console_since))

    def leased_ipv6(self, node, since, console_since):
        """The address the node's network-booted ramdisk got by DHCPv6
        (by its MAC-based DUID: not the firmware's) since ``since`` in
        dnsmasq's log; the ramdisk still announced its IPv4 address to
        the lab's IPv4 Ironic (the console, since ``console_since``)."""
        leases = dhcp.ipv6_leases(self.lab, node.mac, since)
        first, last = (ipaddress.ip_address(a) for a in self.lab.dhcp6_range)
        check(leases and all(first <= ipaddress.ip_address(a) <= last
                             for a in leases),
              'the ramdisk of %s got no DHCPv6 lease in %s: %s'
              % (node.domain, '-'.join(self.lab.dhcp6_range), leases))
        announced = re.findall(r'heartbeating from (\S+) port',
                               console.read_from(virt.console_log(
                                   self.lab, node), console_since))
        check(announced and all(ipaddress.ip_address(a).version == 4
                                for a in announced),
              'the ramdisk of %s announced %s to an IPv4 Ironic, not its '
              'IPv4 address' % (node.domain, announced or 'nothing'))
        return leases[-1]

    def uefi_http_clean(self, outcome):
        """Automated cleaning over Ironic's ``http``: the firmware's UEFI
        HTTP boot loads shim, shim the lab's network GRUB (lab.netgrub),
        and GRUB Ironic's configuration, kernel and initramfs, all over
        HTTP (boot_paths checks the fetches)."""
        self.to_manageable(UEFI)
        op = self.provide(outcome, UEFI)
        outcome.detail = 'cleaned: %s' % op.line()

    def inspect_over_virtual_media(self, outcome, node):
        """``inspect`` over ``redfish-virtual-media``, DHCP-less and on
        IPv6 only (the node's network_data); the console's
        fa-network-data line."""
        address = vmedia.static_address(node)
        log = virt.console_log(self.lab, node)
        http_since = console.size(self.lab.path('logs', 'http.log'))
        console_since = console.size(log)
        op = self.operate(outcome, node, ['inspect'], ['manageable'],
                          ['inspect failed'])
        check(op.state == 'manageable', 'inspection ended in %s: %s'
              % (op.state, op.last_error))
        check(vmedia.iso_fetches(self.lab, http_since), 'the Redfish '
              'emulator fetched no virtual-media ISO from Ironic')
        addresses = [(i.get('ipv4_address'), i.get('ipv6_address'))
                     for i in (self.inventory(node) or {}).get(
                         'interfaces') or ()
                     if i.get('mac_address') == node.mac]
        check(addresses == [(None, address)], 'the ramdisk reported '
              '(IPv4, IPv6) %s on %s, not only network_data\'s %s'
              % (addresses, node.mac, address))
        said = [line.strip() for line in
                console.read_from(log, console_since).splitlines()
                if 'fa-network-data:' in line]
        check(said and 'DHCP-less boot' in said[-1], 'the ramdisk did '
              'not apply network_data: %s' % (said or 'console silent'))
        return said[-1].split('fa-network-data: ')[-1]

    def no_dhcp_from(self, node, since):
        asked = vmedia.dhcp_lines(self.lab, node.mac, since)
        check(not asked, 'dnsmasq saw %d DHCP or router solicitation '
              'lines from %s on DHCP-less boots, first: %s'
              % (len(asked), node.mac, asked[:1]))

    def uefi_virtual_media(self, outcome):
        """Inspection over Redfish virtual media, then automated cleaning
        over ``redfish-https``, both with no DHCP answer and on IPv6 only:
        the node's network_data gives the ramdisk a static IPv6 address,
        and lookup, inspection, heartbeats and the conductor's SSH reach
        Ironic and the node over IPv6 ([deploy]external_callback_url)."""
        self.to_manageable(UEFI)
        address = vmedia.static_address(UEFI)
        self.client.baremetal('node', 'set', UEFI.domain, '--network-data',
                              json.dumps(vmedia.network_data(UEFI)))
        dhcp_since = console.size(self.lab.path('logs', 'dnsmasq.log'))
        log = virt.console_log(self.lab, UEFI)
        try:
            said = self.inspect_over_virtual_media(outcome, UEFI)
            # redfish-https: Ironic asks the BMC for a UEFI HTTP(S) boot of
            # its ISO (HttpBootUri); sushy-tools emulates that by attaching
            # the image as the CD.
            self.use_boot_interface(UEFI, 'redfish-https')
            http_since = console.size(self.lab.path('logs', 'http.log'))
            console_since = console.size(log)
            clean = self.provide(outcome, UEFI)
            check(vmedia.iso_fetches(self.lab, http_since), 'the Redfish '
                  'emulator fetched no ISO for the redfish-https boot')
            # The cleaning's heartbeats carried the IPv6 address, and the
            # conductor's SSH reached the agent there (the node has no
            # other address).
            check('heartbeating from %s port' % address in console.read_from(
                log, console_since), 'fa-heartbeat did not heartbeat from '
                '%s, says the console' % address)
        finally:
            self.client.baremetal('node', 'unset', UEFI.domain,
                                  '--network-data')
        self.no_dhcp_from(UEFI, dhcp_since)
        outcome.detail = (
            'inspected over virtual media and cleaned over redfish-https '
            '(%s), each ISO fetched by the BMC, IPv6 only (%s from '
            'network_data, Ironic at %s), no DHCP request from %s in '
            'dnsmasq\'s log; console: %s' % (
                clean.line(), address, self.lab.ironic_url6, UEFI.mac, said))

    def bios_virtual_media(self, outcome):
        """Inspection of the BIOS node over Redfish virtual media (Ironic's
        ISOLINUX ISO), DHCP-less and IPv6-only; its BMC is the lab's
        Redfish emulator for this (a server's BMC speaks IPMI and
        Redfish), and IPMI again afterwards."""
        self.to_manageable(BIOS)
        self.client.baremetal('node', 'set', BIOS.domain, '--network-data',
                              json.dumps(vmedia.network_data(BIOS)))
        dhcp_since = console.size(self.lab.path('logs', 'dnsmasq.log'))
        try:
            said = self.inspect_over_virtual_media(outcome, BIOS)
        finally:
            self.client.baremetal('node', 'unset', BIOS.domain,
                                  '--network-data')
            self.use_boot_interface(BIOS, 'ipxe')
        self.no_dhcp_from(BIOS, dhcp_since)
        outcome.detail = (
            'inspected over BIOS virtual media (ISOLINUX), ISO fetched by '
            'the BMC, IPv6 only (%s), no DHCP request from %s in dnsmasq\'s '
            'log; console: %s' % (vmedia.static_address(BIOS), BIOS.mac,
                                  said))

    def uefi_default_layout(self, outcome):
        deploy.undeploy(self.client, UEFI)
        since = self.ironic_log_size()
        record = self.deploy(outcome, UEFI, instance_info=self.instance_info(
            root_gb='3'))
        marker = self.check_active(record, 'uefi')
        mounts = {m['target']: m for m in marker.get('mounts') or ()}
        check('/' in mounts and '/boot/efi' in mounts,
              'the default layout should mount / and /boot/efi: %s'
              % sorted(mounts))
        check(self.ironic_log_has('scheme from default layout', since),
              'Ironic\'s log does not say the default layout was used')
        deploy.undeploy(self.client, UEFI)
        outcome.detail = '/ on %s' % mounts['/'].get('source')

    def uefi_raid1_failover(self, outcome):
        """RAID1 + LVM with the scheme in driver_info; the conductor that
        owns the node is SIGKILLed while the agent runs, and the other
        conductor of the node's group finishes the deploy."""
        check(self.lab.multi_conductor, 'this scenario needs the '
              'multi-conductor lab (tools/lab.sh --openstack)')
        deploy.undeploy(self.client, UEFI)
        uuid = self.client.node(UEFI.domain)['uuid']
        self.client.baremetal('node', 'set', UEFI.domain, '--driver-info',
                              'fa_partition_scheme=%s'
                              % json.dumps(schemes.raid1_lvm('uefi')))
        since = self.ironic_log_size()
        killed = {}

        def kill_owner(node):
            host = node['conductor']
            conductor = {c.host: c for c in settings.CONDUCTORS}[host]
            self.say('  SIGKILL ironic-conductor %s (the node\'s owner): '
                     'the agent runs' % host)
            check(self.stack.registry.kill(conductor.process),
                  'ironic-conductor %s was not running' % host)
            killed.update(conductor=conductor, at=time.monotonic())

        try:
            record = self.deploy(outcome, UEFI,
                                 instance_info=self.instance_info(),
                                 on_agent_running=kill_owner)
            # Before the killed one is back: it could own the node again.
            finisher = self.client.node(UEFI.domain)['conductor']
            returned = time.monotonic()
        finally:
            self.client.baremetal('node', 'unset', UEFI.domain,
                                  '--driver-info', 'fa_partition_scheme')
            if killed:
                ironic.start_conductor(self.lab, self.stack.registry,
                                       killed['conductor'])
        check(killed, 'the agent was never seen running; no conductor '
              'was killed')
        marker = self.check_active(record, 'uefi')
        self.check_raid1_lvm(marker)
        check(finisher != killed['conductor'].host,
              'the node is still mapped to the killed conductor %s'
              % finisher)
        starts = self.ironic_log_count('Agent on node %s: started' % uuid,
                                       since)
        check(starts == 1, 'the agent was started %d times, not once'
              % starts)
        degraded = self.boot_without_first_disk(UEFI)
        deploy.undeploy(self.client, UEFI)
        outcome.detail = (
            '%s killed mid-agent, %s finished (active %.0f s after the '
            'kill), agent started once; with disk0 pulled the system booted '
            'from disk1 in %.0f s on the degraded array' % (
                killed['conductor'].host, finisher,
                returned - (record.os_up - record.active) - killed['at'],
                degraded))

    def boot_without_first_disk(self, node):
        """Power the installed node off, pull its first disk (a RAID1
        member carrying an ESP or GRUB), power it on: the system must come
        up from the other disk on the degraded array. The disk goes back
        afterwards, the node powered off (undeploy cleans both). Returns
        the seconds to the installed system's marker."""
        virt.power_off(self.lab, node)
        virt.detach_disk(self.lab, node, 0)
        try:
            log = virt.console_log(self.lab, node)
            offset = console.size(log)
            self.say('  disk0 pulled; powering on from disk1 alone')
            started = time.monotonic()
            virt.virsh(self.lab, 'start', node.domain)
            marker = None
            while marker is None and time.monotonic() - started < 600:
                time.sleep(2)
                marker = console.marker(log, offset)
            check(marker, 'with disk0 pulled the installed system printed '
                  'no FA-MARKER within 600 s; console ends with:\n%s'
                  % console.tail(log, offset))
            seconds = time.monotonic() - started
            self.say('  up on disk1 after %.0f s' % seconds)
            check(marker.get('boot_mode') == node.boot_mode,
                  'booted in %s mode' % marker.get('boot_mode'))
            mounts = {m['target']: m for m in marker.get('mounts') or ()}
            check('system-root' in ((mounts.get('/') or {}).get('source')
                                    or ''),
                  'root is not on system/root: %s' % mounts.get('/'))
            mdstat = marker.get('mdstat') or ''
            check('raid1' in mdstat and '[2/1]' in mdstat,
                  'the array should run degraded on one member: %s'
                  % ' '.join(mdstat.split()))
        finally:
            virt.power_off(self.lab, node)
            virt.attach_disk(self.lab, node, 0)
        return seconds

    # -- running ----------------------------------------------------------

    def run(self, names):
        outcomes = []
        for name in names:
            outcome = Outcome(name)
            self.say('=== scenario %s' % name)
            started = time.monotonic()
            node = NODE_OF[name]
            interface = boot_paths.BOOT_INTERFACES.get(name, 'ipxe')
            try:
                self.use_boot_interface(node, interface)
                since = boot_paths.log_offsets(self.lab)
                getattr(self, name.replace('-', '_'))(outcome)
                wrong, summary = boot_paths.check(self.lab, node, interface,
                                                  since)
                check(not wrong, wrong)
                outcome.detail += '; boot %s' % summary
                outcome.passed = True
            except Exception as exc:  # reported; the next one still runs
                outcome.detail = '%s: %s' % (type(exc).__name__, exc)
                self.recover(NODE_OF[name])
            outcome.seconds = round(time.monotonic() - started, 1)
            self.say('=== %s %s (%.0f s) %s' % (
                name, 'PASSED' if outcome.passed else 'FAILED',
                outcome.seconds, outcome.detail))
            outcomes.append(outcome)
        return outcomes

    def use_boot_interface(self, node, interface):
        """Ironic's ``interface`` boots the node's ramdisk from now on;
        the ``redfish-*`` ones through the lab's Redfish emulator, whatever
        the node's own BMC (the hardware type changes with it)."""
        kind = 'redfish' if interface.startswith('redfish') else node.bmc
        found = self.client.node(node.domain)
        if found['driver'] != bmc.HARDWARE_TYPES[kind]:
            self.say('  %s: %s with %s' % (node.domain, interface,
                                           bmc.EMULATORS[kind]))
            args = ['node', 'set', node.domain,
                    '--driver', bmc.HARDWARE_TYPES[kind],
                    '--power-interface', bmc.INTERFACES[kind],
                    '--management-interface', bmc.INTERFACES[kind],
                    '--boot-interface', interface]
            for key, value in bmc.driver_info(self.lab, node, kind).items():
                args += ['--driver-info', '%s=%s' % (key, value)]
        elif found['boot_interface'] != interface:
            self.say('  boot interface of %s: %s' % (node.domain, interface))
            args = ['node', 'set', node.domain, '--boot-interface', interface]
        else:
            return
        # Ironic changes the interfaces of a deployed node only in
        # maintenance (what an operator does, too); a node already in
        # maintenance stays there.
        switch = (found['provision_state'] not in INTERFACES_CHANGE_IN
                  and not found['maintenance'])
        if switch:
            self.client.baremetal('node', 'maintenance', 'set', node.domain,
                                  '--reason', 'lab: boot interface %s'
                                  % interface)
        try:
            self.client.baremetal(*args)
        finally:
            if switch:
                self.client.baremetal('node', 'maintenance', 'unset',
                                      node.domain)

    def recover(self, node):
        """Leave ``node`` available for its next scenario (through Nova
        when a server of the lab's holds it, so Nova agrees)."""
        try:
            if self.cloud and node is BIOS:
                self.release_from_nova()
            deploy.undeploy(self.client, node)
        except Exception as exc:
            self.say('  could not make %s available: %s'
                     % (node.domain, exc))


CHAINS = {
    BIOS: ('bios-inspect-clean', 'nova-does-not-fit', 'nova-server-create',
           'nova-rebuild-keep-data', 'nova-rescue', 'nova-server-delete',
           'bios-virtual-media'),
    UEFI: ('uefi-clean-uninspected', 'uefi-http-clean',
           'uefi-raid1-failover', 'uefi-default-layout',
           'uefi-virtual-media'),
}
ALL = CHAINS[BIOS] + CHAINS[UEFI]
NODE_OF = {name: node for node, names in CHAINS.items() for name in names}


# Where Ironic changes a node's interfaces outside maintenance
# (ironic.conductor.manager.update_node).
INTERFACES_CHANGE_IN = ('enroll', 'inspecting', 'inspect wait',
                        'manageable', 'available')

# Scenarios that need several conductors (the OpenStack mode's MariaDB
# and RabbitMQ).
MULTI_CONDUCTOR = ('uefi-raid1-failover',)


def need_openstack(names=None):
    """Whether the scenarios ``names`` (default: all) use Nova or the
    multi-conductor Ironic."""
    return any(name.startswith('nova-') or name in MULTI_CONDUCTOR
               for name in names or ALL)


def file_digest(path, algorithm):
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def reads_zero(path):
    """Whether the disk image reads back as zeros in the guest's view:
    qemu-img compares it with an empty image of the same size."""
    info = json.loads(subprocess.run(
        ['qemu-img', 'info', '-U', '--output=json', path], check=True,
        capture_output=True, text=True).stdout)
    empty = path + '.empty'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', empty,
                    str(info['virtual-size'])], check=True)
    try:
        return subprocess.run(['qemu-img', 'compare', '-U', '-q', empty,
                               path]).returncode == 0
    finally:
        os.unlink(empty)


def rescue_address(node, lab, spec):
    """The rescued ramdisk's address: the callback it announced, else
    dnsmasq's lease for the node's MAC."""
    callback = (node.get('driver_internal_info') or {}).get('fa_callback')
    if isinstance(callback, dict) and callback.get('address'):
        return callback['address']
    try:
        with open(dhcp.paths(lab)['leases']) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[1].lower() == spec.mac:
                    return fields[2]
    except OSError:
        pass
    return None


def ssh_password_run(address, user, password, command):
    """Log in with a password (what the rescue user has) and run one
    command; its output."""
    import paramiko  # the lab runs in the project's venv
    client = paramiko.SSHClient()
    # The rescue ramdisk's host key is new at every boot; the operator
    # would accept it on first use as well.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(address, username=user, password=password,
                       look_for_keys=False, allow_agent=False, timeout=30)
        _, stdout, _ = client.exec_command(command, timeout=30)
        return stdout.read().decode()
    finally:
        client.close()


def ssh_password_refused(address, user, password):
    import paramiko
    try:
        ssh_password_run(address, user, password, 'true')
    except paramiko.AuthenticationException:
        return True
    return False


def kept_token(marker):
    """The marker file's line on the data volume, as the installed system
    reported it (its FA-MARKER ``keep``)."""
    return ((marker or {}).get('keep') or {}).get(schemes.DATA_MOUNT)


def run(stack, names=None):
    """Run ``names`` (default: all), each node's chain in its own thread;
    outcomes in the order of :data:`ALL`."""
    wanted = [n for n in ALL if n in (names or ALL)]
    results = {}
    threads = []
    for node, chain in CHAINS.items():
        mine = [n for n in chain if n in wanted]
        if not mine:
            continue
        runner = Scenarios(stack, prefix='[%s] ' % node.name)

        def work(runner=runner, mine=mine):
            for outcome in runner.run(mine):
                results[outcome.name] = outcome
        thread = threading.Thread(target=work, name=node.name)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return [results.get(n) or Outcome(n, detail='did not run (its chain '
                                          'stopped early)')
            for n in wanted]
