"""Fast track through a real standalone Ironic (``[deploy] fast_track =
true``): ``provide`` cleans with one ramdisk boot, the ramdisk stays up,
and the deploy takes it without booting it again, ending active with the
image written by the real agent.

The same harness as test_standalone_ironic.py (real Ironic process, real
fa-heartbeat, real SSH server standing in for the ramdisk's sshd, real
``provision`` on a loop device); the one thing faked is the BMC (Ironic's
``fake`` power interface), whose actions the test counts in Ironic's log.
fa-heartbeat runs as in the ramdisk: in the background, heartbeating and
looking the node up until the test stops it.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'unit', 'driver'))
import fake_ramdisk  # noqa: E402
from test_standalone_ironic import BIN, MiB, Cloud, ImageServer  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('losetup'),
    reason='needs root and loop devices')

MAC = '52:54:00:fa:0f:01'
POWER = re.compile(r'Successfully set node (\S+) power state to (.+?) by '
                   r'(.+?)\.')


@pytest.fixture
def cloud(tmp_path):
    yield from make_cloud(tmp_path)


def make_cloud(tmp_path, fast_track=True, start=True):
    """A standalone Ironic cloud with an image server and a loop disk,
    with fast track and automated cleaning (or without both); Ironic is
    started unless ``start`` is false. A generator: it cleans up after
    its one item."""
    root = str(tmp_path)
    images = os.path.join(root, 'images-served')
    os.makedirs(images)
    image = os.urandom(3 * MiB)
    with open(os.path.join(images, 'disk.raw'), 'wb') as f:
        f.write(image)
    server = ImageServer(images)
    disk_file = os.path.join(root, 'disk0.img')
    with open(disk_file, 'wb') as f:
        f.truncate(32 * MiB)
    loop = subprocess.run(['losetup', '-f', '--show', disk_file], check=True,
                          capture_output=True, text=True).stdout.strip()
    for name in ('deploy.kernel', 'deploy.initramfs'):
        with open(os.path.join(root, name), 'wb') as f:
            f.write(b'not booted here\n')
    c = Cloud(root)
    c.image, c.loop = image, loop
    c.image_url = 'http://127.0.0.1:%d/disk.raw' % server.port
    c.write_config(server.port)
    with open(c.config) as f:
        text = f.read()
    text = text.replace('automated_clean = false', 'automated_clean = true')
    text = text.replace('[deploy]\n', '[deploy]\nfast_track = true\n'
                        'fast_track_timeout = 60\n')
    # No erase steps: the fake ramdisk's lsblk would list this machine's
    # disks. Cleaning only boots (and here keeps) the ramdisk.
    text = text.replace('[deploy]\n', '[deploy]\n'
                        'erase_devices_priority = 0\n'
                        'erase_devices_metadata_priority = 0\n')
    if fast_track:
        with open(c.config, 'w') as f:
            f.write(text)
    try:
        if start:
            c.start()
        yield c
    finally:
        c.stop()
        server.stop()
        subprocess.run(['losetup', '-d', loop], check=False)


def power_actions(cloud, uuid):
    with open(os.path.join(cloud.root, 'ironic.log')) as f:
        return [(m.group(2), m.group(3)) for m in POWER.finditer(f.read())
                if m.group(1) == uuid]


class Ramdisk:
    """The ramdisk as booted from the iPXE config Ironic wrote: sshd
    (fake_ramdisk) and fa-heartbeat running in the background."""

    def __init__(self, cloud, uuid, extra_args=(), mac=MAC):
        shutil.rmtree(cloud.remote, ignore_errors=True)
        os.makedirs(cloud.remote)
        directory = os.path.join(cloud.root, 'ramdisk-' + uuid)
        os.makedirs(directory, exist_ok=True)
        self.server = fake_ramdisk.FakeRamdisk(directory).start()
        with open(os.path.join(cloud.http_root, uuid, 'config')) as f:
            boot_config = f.read()
        cmdline = os.path.join(directory, 'cmdline')
        with open(cmdline, 'w') as f:
            f.write(' '.join(re.findall(r'(?:ipa-api-url|fa-ssh-key)=\S+',
                                        boot_config)) + '\n')
        host_key = os.path.join(directory, 'ssh_host_ed25519_key.pub')
        self.server.write_host_pub(host_key)
        self.log = open(os.path.join(directory, 'fa-heartbeat.log'), 'w')
        self.process = subprocess.Popen(
            [BIN + '/fa-heartbeat', '--cmdline', cmdline, '--address',
             '127.0.0.1', '--ssh-port', str(self.server.port), '--mac', mac,
             '--host-key', host_key, '--authorized-keys',
             self.server.authorized_keys, '--interval', '3',
             '--lookup-interval', '1', '--max-wait', '300']
            + list(extra_args),
            stdout=self.log, stderr=subprocess.STDOUT, env=cloud.env,
            start_new_session=True)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        self.log.close()
        self.server.stop()


def test_provide_then_deploy_boots_the_ramdisk_once(cloud):
    node = cloud.baremetal(
        'node', 'create', '-f', 'json', '--name', 'fa-fast-track',
        '--driver', 'fuel-manual', '--deploy-interface', 'fuel-agent',
        '--boot-interface', 'ipxe', '--power-interface', 'fake',
        '--management-interface', 'noop', '--network-interface', 'noop',
        '--driver-info',
        'deploy_kernel=file://%s/deploy.kernel' % cloud.root,
        '--driver-info',
        'deploy_ramdisk=file://%s/deploy.initramfs' % cloud.root,
        '--property', 'root_device=%s' % json.dumps({'name': cloud.loop}))
    uuid = node['uuid']
    cloud.baremetal(
        'node', 'set', uuid,
        '--instance-info', 'image_source=%s' % cloud.image_url,
        '--instance-info', 'image_os_hash_algo=sha256',
        '--instance-info', 'image_os_hash_value=%s'
        % hashlib.sha256(cloud.image).hexdigest())
    cloud.baremetal('port', 'create', MAC, '--node', uuid)
    cloud.baremetal('node', 'manage', uuid, '--wait', '60')
    before_clean = len(power_actions(cloud, uuid))
    cloud.baremetal('node', 'provide', uuid)
    cloud.wait_for(uuid, ['clean wait'])
    ramdisk = Ramdisk(cloud, uuid)
    try:
        node = cloud.wait_for(uuid, ['available', 'clean failed'])
        assert node['provision_state'] == 'available', node['last_error']
        cleaning = power_actions(cloud, uuid)[before_clean:]
        # One ramdisk boot for cleaning, and it stays up.
        assert [state for state, _ in cleaning] == ['power on'], cleaning
        assert node['power_state'] == 'power on'
        cleaning_key = node['driver_internal_info']['fa_ssh_public_key']

        started = time.monotonic()
        cloud.baremetal('node', 'deploy', uuid)
        node = cloud.wait_for(uuid, ['active', 'deploy failed'], timeout=120)
        took = time.monotonic() - started
    finally:
        ramdisk.stop()
    assert node['provision_state'] == 'active', node['last_error']
    deploy = power_actions(cloud, uuid)[before_clean + len(cleaning):]
    # No ramdisk boot: the only power actions are leaving the ramdisk and
    # booting the instance at the end.
    assert [state for state, _ in deploy] == ['power off', 'power on'], \
        deploy
    with open(cloud.loop, 'rb') as f:
        assert f.read(len(cloud.image)) == cloud.image
    info = node['driver_internal_info']
    assert info['fa_agent_result']['devices']['root_disk']['path'] == \
        cloud.loop
    # The deploy used its own key: the ramdisk replaced cleaning's.
    with open(ramdisk.server.authorized_keys) as f:
        installed = f.read().split()
    assert installed[1] != cleaning_key.split()[1]
    assert 'fa_ssh_public_key' not in info  # the ramdisk is gone
    history = cloud.baremetal('node', 'history', 'list', uuid, '--long',
                              '-f', 'json')
    assert any('Fast track deploying' in json.dumps(h) for h in history), \
        history
    print('fast-track deploy to active took %.1f s' % took)
