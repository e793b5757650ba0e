"""Automated cleaning with Ironic's defaults, through a real standalone
Ironic (the harness of test_standalone_ironic.py): ``[conductor]
automated_clean = true`` and nothing of [deploy] set, so the clean steps
are IPA's defaults, erase_devices_metadata (99) then erase_devices (10).

A node that was never inspected is provided; the fake ramdisk (a real
SSH server, the real fa-heartbeat, the real agent) lists its disks and
the real agent erases them. This machine's own disks are not the
node's: the ramdisk's ``lsblk`` is shown only the test's loop devices
(an ``lsblk`` first on the ramdisk's PATH that adds them to a listing
that names no device). The agent would skip this machine's root disk
anyway (mounted: the ramdisk's own), but other loop devices on a shared
machine belong to others. The only fake besides: power (no BMC).
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_standalone_ironic as harness  # noqa: E402

MiB = harness.MiB
pytestmark = harness.pytestmark


def fill(device):
    with open(device, 'r+b') as f:
        f.write(os.urandom(32 * MiB))
    subprocess.run(['sgdisk', '--new=1:2048:0', device], check=True,
                   capture_output=True)
    subprocess.run(['partprobe', device], check=True)
    subprocess.run(['udevadm', 'settle'], check=False)
    subprocess.run(['mkfs.ext4', '-q', '-L', 'old-tenant', device + 'p1'],
                   check=True)


def node_disks_only(directory, devices):
    """An ``lsblk`` for the ramdisk that lists only ``devices`` when asked
    for every disk (and answers about one device as the real one does)."""
    os.makedirs(directory, exist_ok=True)
    real = shutil.which('lsblk')
    path = os.path.join(directory, 'lsblk')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\nfor a in "$@"; do case "$a" in /dev/*) exec %s '
                '"$@";; esac; done\nexec %s "$@" %s\n'
                % (real, real, ' '.join(devices)))
    os.chmod(path, 0o755)
    return directory


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('standalone-cleaning'))
    os.makedirs(os.path.join(root, 'images-served'))
    server = harness.ImageServer(os.path.join(root, 'images-served'))
    loops = []
    for n in range(2):
        backing = os.path.join(root, 'disk%d.img' % n)
        with open(backing, 'wb') as f:
            f.truncate(32 * MiB)
        loops.append(subprocess.run(
            ['losetup', '-f', '--show', backing], check=True,
            capture_output=True, text=True).stdout.strip())
    for name in ('deploy.kernel', 'deploy.initramfs'):
        with open(os.path.join(root, name), 'wb') as f:
            f.write(b'not booted here\n')
    c = harness.Cloud(root)
    c.loops = loops
    c.write_config(server.port, automated_clean=True)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        server.stop()
        for loop in loops:
            subprocess.run(['losetup', '-d', loop], check=False)


def wait_for(cloud, uuid, wanted, timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        node = cloud.node(uuid)
        if node['provision_state'] in wanted:
            return node
        if time.monotonic() > deadline:
            raise AssertionError('node %s stuck in %s (last_error %s):\n%s'
                                 % (uuid, node['provision_state'],
                                    node['last_error'], cloud.tail()))
        time.sleep(0.5)


def test_provide_of_a_never_inspected_node_cleans_and_ends_available(cloud):
    for loop in cloud.loops:
        fill(loop)
    mac = '52:54:00:fa:c1:01'
    uuid = cloud.baremetal(
        'node', 'create', '-f', 'json', '--name', 'fa-clean',
        '--driver', 'fuel-manual', '--deploy-interface', 'fuel-agent',
        '--boot-interface', 'ipxe', '--power-interface', 'fake',
        '--management-interface', 'noop', '--network-interface', 'noop',
        '--driver-info',
        'deploy_kernel=file://%s/deploy.kernel' % cloud.root,
        '--driver-info',
        'deploy_ramdisk=file://%s/deploy.initramfs' % cloud.root)['uuid']
    cloud.baremetal('port', 'create', mac, '--node', uuid)
    cloud.baremetal('node', 'manage', uuid, '--wait', '60')
    started = time.monotonic()
    cloud.baremetal('node', 'provide', uuid)
    wait_for(cloud, uuid, ['clean wait', 'clean failed'])
    bin_dir = node_disks_only(os.path.join(cloud.root, 'ramdisk-bin'),
                              cloud.loops)
    ramdisk = harness.boot_ramdisk(cloud, uuid, mac, bin_dir=bin_dir)
    try:
        node = wait_for(cloud, uuid, ['available', 'clean failed'])
    finally:
        ramdisk.stop()
    print('provide to available took %.1f s' % (time.monotonic() - started))
    assert node['provision_state'] == 'available', node['last_error']
    erased = node['driver_internal_info']['fa_erased']
    # The last step was erase_devices; loop devices have no ATA or NVMe
    # erase, so they are overwritten.
    assert erased['step'] == 'erase_devices'
    assert erased['erased'] == {loop: 'overwrite' for loop in cloud.loops}
    for loop in cloud.loops:
        assert subprocess.run(['blkid', '-p', loop],
                              capture_output=True).returncode == 2
        with open(loop, 'rb') as f:
            assert not any(f.read()), '%s is not all zeros' % loop
    history = cloud.baremetal('node', 'history', 'list', uuid, '-f', 'json',
                              '--long')
    events = json.dumps(history)
    assert 'erase_devices_metadata: erased' in events
    assert 'by overwrite' in events
