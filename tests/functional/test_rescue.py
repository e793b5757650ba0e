"""Rescue and unrescue through a real standalone Ironic 39.

The harness is tests/functional/test_standalone_ironic.py's (one Ironic
process, fuel-manual hardware type, real ipxe boot interface, fake power:
there is no BMC or machine here, the one thing faked). Rescue interface
``fuel-agent`` is enabled on top.

An active node (deployed through the real agent onto a loop device) is
rescued with ``baremetal node rescue --rescue-password``; the ramdisk is
the real ``fa-heartbeat`` program plus the fake ramdisk's real SSH server,
whose ``chpasswd`` is the real one run with ``--root`` on a copy of
passwd/shadow in a temporary directory (this machine's accounts are never
touched). The node must end in ``rescue`` with the password's hash in
that shadow file, then ``baremetal node unrescue`` must bring it back to
``active``.

Needs root (loop devices, chpasswd --root); skipped otherwise.
"""

import os
import re
import shutil
import subprocess
import sys
import time

from oslo_utils import secretutils
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'unit', 'driver'))
import fake_ramdisk  # noqa: E402
import test_standalone_ironic as standalone  # noqa: E402
import worktree_entry_points  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('losetup'),
    reason='needs root and loop devices')

PASSWORD = 'fa rescue P4ss'
MiB = standalone.MiB


class RescueCloud(standalone.Cloud):
    def write_config(self, image_port):
        super().write_config(image_port)
        with open(self.config) as f:
            text = f.read()
        text = text.replace('enabled_rescue_interfaces = no-rescue',
                            'enabled_rescue_interfaces = fuel-agent,no-rescue')
        with open(self.config, 'w') as f:
            f.write(text)

    def wait_for(self, uuid, states, timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            node = self.node(uuid)
            if node['provision_state'] in states:
                return node
            if node['provision_state'] in ('deploy failed', 'rescue failed',
                                           'unrescue failed') or \
                    time.monotonic() > deadline:
                raise AssertionError('node %s stuck in %s (last_error %s):\n%s'
                                     % (uuid, node['provision_state'],
                                        node['last_error'], self.tail()))
            time.sleep(0.5)


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    # A developer's venv may hold another checkout's entry points; the
    # Ironic process then finds this checkout's through PYTHONPATH.
    extra = worktree_entry_points.ensure('ironic.hardware.interfaces.rescue',
                                         'fuel-agent')
    root = str(tmp_path_factory.mktemp('rescue-ironic'))
    images = os.path.join(root, 'images-served')
    os.makedirs(images)
    image = os.urandom(3 * MiB)
    with open(os.path.join(images, 'disk.raw'), 'wb') as f:
        f.write(image)
    server = standalone.ImageServer(images)
    disk_file = os.path.join(root, 'disk0.img')
    with open(disk_file, 'wb') as f:
        f.truncate(32 * MiB)
    loop = subprocess.run(['losetup', '-f', '--show', disk_file], check=True,
                          capture_output=True, text=True).stdout.strip()
    for name in ('deploy.kernel', 'deploy.initramfs'):
        with open(os.path.join(root, name), 'wb') as f:
            f.write(b'not booted here\n')
    c = RescueCloud(root)
    c.image = image
    c.image_url = 'http://127.0.0.1:%d/disk.raw' % server.port
    c.loop = loop
    c.write_config(server.port)
    with pytest.MonkeyPatch.context() as patch:
        if extra:
            patch.setenv('PYTHONPATH', os.environ.get('PYTHONPATH', '')
                         + os.pathsep + extra)
        try:
            c.start()
            yield c
        finally:
            c.stop()
            server.stop()
            subprocess.run(['losetup', '-d', loop], check=False)


def ramdisk_boot(cloud, uuid, mac, name, rescue_account=False):
    """The ramdisk booting with the command line Ironic wrote for this
    node: sshd (the fake ramdisk) up, fa-heartbeat's lookup and one
    heartbeat."""
    shutil.rmtree(cloud.remote, ignore_errors=True)
    os.makedirs(cloud.remote)
    directory = os.path.join(cloud.root, '%s-%s' % (name, uuid))
    os.makedirs(directory, exist_ok=True)
    ramdisk = fake_ramdisk.FakeRamdisk(directory).start()
    if rescue_account:
        ramdisk.add_rescue_account()
    with open(os.path.join(cloud.http_root, uuid, 'config')) as f:
        boot_config = f.read()
    cmdline = os.path.join(directory, 'cmdline')
    with open(cmdline, 'w') as f:
        f.write(' '.join(re.findall(r'(?:ipa-api-url|fa-ssh-key)=\S+',
                                    boot_config)) + '\n')
    host_key = os.path.join(directory, 'ssh_host_ed25519_key.pub')
    ramdisk.write_host_pub(host_key)
    result = subprocess.run(
        [standalone.BIN + '/fa-heartbeat', '--cmdline', cmdline, '--address',
         '127.0.0.1', '--ssh-port', str(ramdisk.port), '--mac', mac,
         '--host-key', host_key, '--authorized-keys',
         ramdisk.authorized_keys, '--once', '--max-wait', '60'],
        capture_output=True, text=True, timeout=120, env=cloud.env)
    assert result.returncode == 0, result.stderr
    return ramdisk, boot_config


def validate(cloud, uuid, interface):
    result = cloud.baremetal('node', 'validate', uuid, '-f', 'json')
    found, = [r for r in result if r['Interface'] == interface]
    return found


def test_rescue_then_unrescue(cloud):
    mac = '52:54:00:fa:00:41'
    uuid = standalone.enroll(cloud, 'fa-rescue', mac, cloud.loop)
    cloud.baremetal('node', 'set', uuid, '--rescue-interface', 'fuel-agent')
    # Ironic's ipxe boot wants rescue_kernel/rescue_ramdisk in rescue mode.
    rescue = validate(cloud, uuid, 'rescue')
    assert rescue['Result'] is False
    assert 'rescue_kernel' in rescue['Reason'], rescue
    assert 'deploy_kernel/deploy_ramdisk' in rescue['Reason'], rescue
    cloud.baremetal(
        'node', 'set', uuid, '--driver-info',
        'rescue_kernel=file://%s/deploy.kernel' % cloud.root,
        '--driver-info',
        'rescue_ramdisk=file://%s/deploy.initramfs' % cloud.root)
    cloud.baremetal('node', 'deploy', uuid)
    cloud.wait_for(uuid, ['wait call-back'])
    ramdisk, _ = ramdisk_boot(cloud, uuid, mac, 'deploy')
    try:
        node = cloud.wait_for(uuid, ['active'])
    finally:
        ramdisk.stop()
    assert node['last_error'] is None

    started = time.monotonic()
    cloud.baremetal('node', 'rescue', uuid, '--rescue-password', PASSWORD)
    cloud.wait_for(uuid, ['rescue wait'])
    ramdisk, boot_config = ramdisk_boot(cloud, uuid, mac, 'rescue',
                                        rescue_account=True)
    # Ironic booted the rescue kernel, with this rescue's own key.
    assert 'rescue_kernel' in boot_config, boot_config
    assert 'fa-ssh-key=' in boot_config
    try:
        node = cloud.wait_for(uuid, ['rescue'], timeout=60)
    finally:
        ramdisk.stop()
    print('rescue took %.1f s' % (time.monotonic() - started))
    assert node['last_error'] is None
    stored = ramdisk.shadow_entry()
    assert stored.startswith('$'), stored
    assert secretutils.crypt_password(PASSWORD, stored) == stored
    assert ramdisk.shadow_entry('root') == '*'
    assert 'chpasswd -e' in ramdisk.commands
    assert ramdisk.systemctl_calls() == [
        '--no-block stop fa-heartbeat.service']
    assert 'rescue_password' not in node['instance_info']
    assert 'hashed_rescue_password' not in node['instance_info']
    with open(os.path.join(cloud.root, 'ironic.log')) as f:
        log = f.read()
    assert PASSWORD not in log
    assert stored not in log

    cloud.baremetal('node', 'unrescue', uuid)
    node = cloud.wait_for(uuid, ['active'], timeout=60)
    assert node['last_error'] is None
    assert node['power_state'] == 'power on'
    with open(cloud.loop, 'rb') as f:
        assert f.read(len(cloud.image)) == cloud.image
