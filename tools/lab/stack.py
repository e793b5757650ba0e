"""Bringing the whole lab up and taking it down again.

``up`` is idempotent: what runs already is kept. ``down`` removes what
the lab made, by record: its processes by PID, its domains, its
namespace, its state directory (the build cache stays, so the next
``up`` is quick).
"""

import os
import shutil
import time

from lab import artifacts
from lab import bmc
from lab import deploy
from lab import dhcp
from lab import host
from lab import ironic
from lab import network
from lab import openstack
from lab import procs
from lab import settings
from lab import virt
from lab import webserver


class Stack:
    """The lab's parts, for one command."""

    def __init__(self, lab=None, say=print):
        self.lab = lab or settings.Lab()
        self.say = say
        self.registry = procs.Registry(self.lab)
        self.client = ironic.Client(self.lab, say=say)
        self.timings = []
        self.ramdisk = None
        self.images = None
        self.openstack_files = None

    def timed(self, what, function, *args):
        started = time.monotonic()
        self.say('== %s' % what)
        result = function(*args)
        self.timings.append((what, round(time.monotonic() - started, 1)))
        return result

    def up(self, nodes=tuple(settings.NODES.values())):
        host.require_root()
        os.makedirs(self.lab.state_dir, exist_ok=True)
        os.makedirs(self.lab.path('images'), exist_ok=True)
        self.timed('prerequisites (apt-get, pip)', host.install, self.say)
        if self.lab.with_openstack:
            # Before the namespace: it has no way out to the mirrors.
            self.timed('OpenStack packages (apt-get; pip into a cached '
                       'virtualenv)', self.install_openstack)
        self.ramdisk = self.timed('bootstrap ramdisk (tools/build-ramdisk.sh)',
                                  artifacts.ramdisk, self.lab)
        self.say('   %s' % ('reused from the cache' if self.ramdisk['cached']
                            else 'built'))
        self.images = self.timed(
            'test OS images (tools/build-test-images.sh)',
            artifacts.test_images, self.lab)
        self.timed('network namespace %s, bridge %s, %s/%d' % (
            self.lab.netns, self.lab.bridge, self.lab.address,
            self.lab.prefix), network.create, self.lab)
        self.enter()
        self.timed('libvirtd (private, in the namespace)', virt.start,
                   self.lab, self.registry)
        self.timed('dnsmasq (DHCP + TFTP)', dhcp.start, self.lab,
                   self.registry)
        self.timed('HTTP server %s' % self.lab.http_url, webserver.start,
                   self.lab, self.registry)
        if self.lab.with_openstack:
            self.timed('OpenStack services (%s)' % openstack.describe(),
                       self.start_openstack)
        self.timed('Ironic %s (%s)' % (
            self.lab.ironic_url,
            'ironic-api and %d ironic-conductor processes, MariaDB, '
            'RabbitMQ, Keystone' % len(settings.CONDUCTORS)
            if self.lab.multi_conductor else
            'API + conductor in one process, sqlite, noauth'),
            ironic.start, self.lab, self.registry, self.lab.cache_dir)
        if self.lab.with_openstack:
            self.timed('nova-compute (Ironic virt driver)',
                       openstack.start_compute, self.lab, self.registry,
                       self.openstack_files)
        self.timed('BMC emulators (%s)' % ', '.join(sorted(
            {bmc.EMULATORS[n.bmc] for n in nodes})), bmc.start, self.lab,
            self.registry, nodes)
        for node in nodes:
            self.timed('VM %s (%s, %d disks) and its %s' % (
                node.domain, node.boot_mode, len(node.disks_gib),
                bmc.describe(self.lab, node)), self.add_vm, node)
            self.timed('enroll %s (manageable -> available)' % node.domain,
                       deploy.enroll, self.lab, self.client, node,
                       self.ramdisk)

    def enter(self):
        network.enter(self.lab)

    def install_openstack(self):
        self.say('   services\' virtualenv: %s'
                 % openstack.install(self.lab, self.say))

    def start_openstack(self):
        self.openstack_files = openstack.start(self.lab, self.registry,
                                               self.say)
        openstack.write_openrc(self.lab)

    def add_vm(self, node):
        if not self.client.find_node(node.domain):
            virt.define(self.lab, node)
        bmc.add(self.lab, node)

    def image_url(self, name):
        image = self.images['images'][name]
        return webserver.publish(self.lab, image.path,
                                 os.path.basename(image.path)), image

    def down(self):
        lab = self.lab
        if network.exists(lab):
            self.enter()
            if self.registry.alive(virt.NAME):
                for node in settings.NODES.values():
                    virt.destroy(lab, node)
        self.registry.stop_all()
        network.delete(lab)
        if os.path.isdir(lab.state_dir):
            _unmount_below(lab.state_dir)
            shutil.rmtree(lab.state_dir)


def _unmount_below(path):
    """libvirtd's bind mounts lived in its own mount namespace; this only
    guards against a mount left by hand below the state directory."""
    with open('/proc/mounts') as f:
        targets = [line.split()[1] for line in f]
    if any(t == path or t.startswith(path + '/') for t in targets):
        raise procs.ProcessError('something is mounted below %s; unmount '
                                 'it first' % path)
