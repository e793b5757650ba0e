"""The fuel-agent deploy interface inside a real standalone Ironic.

Ironic 39 runs as one process (API + conductor, sqlite, noauth, no RPC
bus). The node uses the ``fuel-manual`` hardware type with Ironic's
``ipxe`` boot interface (it writes the real iPXE config with the kernel
command line), ``noop`` management (the operator's job with
manual-management) and the ``fake`` power interface: there is no BMC or
machine here, which is the one thing faked.

The deploy ramdisk is played on this machine by:

- a real SSH server on 127.0.0.1 (paramiko's server side, running real
  commands and SFTP), see tests/unit/driver/fake_ramdisk.py;
- the real ``fa-heartbeat`` program, fed the kernel command line that
  Ironic wrote into the node's iPXE config, doing the real lookup and
  heartbeat against Ironic's API;
- the real agent ``provision``, writing a real image from a real HTTP
  server on loopback to a loop device named by the node's root device
  hint.

Needs root (loop devices); skipped otherwise.
"""

import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'unit', 'driver'))
import fake_ramdisk  # noqa: E402

BIN = os.path.dirname(sys.executable)
MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('losetup'),
    reason='needs root and loop devices')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Cloud:
    """A running standalone Ironic and its surroundings."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.api = 'http://127.0.0.1:%d' % self.port
        self.remote = os.path.join(root, 'ramdisk-fs')
        self.logs = os.path.join(root, 'ramdisk-logs')
        self.http_root = os.path.join(root, 'httpboot')
        self.env = dict(os.environ, OS_ENDPOINT=self.api, OS_AUTH_TYPE='none',
                        OS_BAREMETAL_API_VERSION='latest',
                        PATH=BIN + ':' + os.environ.get('PATH', ''))
        self.process = None

    def write_config(self, image_port, automated_clean=False):
        for name in ('httpboot', 'tftpboot', 'master', 'images', 'state',
                     'ramdisk-fs', 'ramdisk-logs', 'schemes'):
            os.makedirs(os.path.join(self.root, name), exist_ok=True)
        self.config = os.path.join(self.root, 'ironic.conf')
        r = self.root
        text = f"""
[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = fa-functional
state_path = {r}/state
tempdir = {r}
debug = true
log_file = {r}/ironic.log
enabled_hardware_types = fuel-manual
enabled_deploy_interfaces = fuel-agent
enabled_boot_interfaces = ipxe
enabled_power_interfaces = fake
enabled_management_interfaces = noop
enabled_network_interfaces = noop
enabled_inspect_interfaces = no-inspect
enabled_console_interfaces = no-console
enabled_raid_interfaces = no-raid
enabled_rescue_interfaces = no-rescue
enabled_vendor_interfaces = no-vendor
enabled_bios_interfaces = no-bios
enabled_firmware_interfaces = no-firmware
[api]
host_ip = 127.0.0.1
port = {self.port}
[database]
connection = sqlite:///{r}/ironic.sqlite
[dhcp]
dhcp_provider = none
[conductor]
automated_clean = {str(automated_clean).lower()}
deploy_callback_timeout = 600
periodic_max_workers = 4
file_url_allowed_paths = {r}
# Power sync clears last_error (kept in node history) once the power state
# is confirmed; the failure test reads last_error, so no sync here.
sync_power_state_interval = 0
[deploy]
http_url = http://127.0.0.1:{image_port}
http_root = {r}/httpboot
default_boot_mode = bios
[pxe]
tftp_root = {r}/tftpboot
tftp_master_path = {r}/master
images_path = {r}/images
instance_master_path = {r}/master/instance
[service_catalog]
endpoint_override = {self.api}
[agent]
deploy_logs_collect = on_failure
deploy_logs_storage_backend = local
deploy_logs_local_path = {self.logs}
[fuel_agent]
agent_command = {BIN}/provision
remote_work_dir = {self.remote}/run/deploy
status_file = {self.remote}/run/status.json
log_file = {self.remote}/log/provision.log
key_dir = {r}/state/keys
scheme_library_dir = {r}/schemes
status_poll_interval = 1
ssh_connect_timeout = 10
ssh_command_timeout = 30
deploy_timeout = 300
"""
        with open(self.config, 'w') as f:
            f.write(text)

    def start(self, create_schema=True):
        """Start Ironic; ``create_schema`` false: on the database of an
        earlier run (another conductor of the same cloud)."""
        if create_schema:
            subprocess.run([BIN + '/ironic-dbsync', '--config-file',
                            self.config, 'create_schema'], check=True,
                           capture_output=True)
        self.output = open(os.path.join(self.root, 'ironic.out'), 'w')
        self.process = subprocess.Popen(
            [BIN + '/ironic', '--config-file', self.config],
            stdout=self.output, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.api + '/v1', timeout=2)
                return
            except OSError:
                if self.process.poll() is not None or \
                        time.monotonic() > deadline:
                    raise AssertionError('ironic did not start:\n'
                                         + self.tail())
                time.sleep(0.3)

    def stop(self):
        if self.process and self.process.poll() is None:
            # Only the process group this test started.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self.process:
            self.output.close()

    def tail(self, lines=60):
        with open(os.path.join(self.root, 'ironic.log'), 'a+') as f:
            f.seek(0)
            return ''.join(f.readlines()[-lines:])

    def baremetal(self, *args):
        result = subprocess.run([BIN + '/baremetal'] + list(args),
                                env=self.env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, (args, result.stderr)
        return json.loads(result.stdout) if '-f' in args else result.stdout

    def node(self, uuid):
        request = urllib.request.Request(
            self.api + '/v1/nodes/' + uuid,
            headers={'X-OpenStack-Ironic-API-Version': 'latest'})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.load(reply)

    def wait_for(self, uuid, states, timeout=180):
        deadline = time.monotonic() + timeout
        while True:
            node = self.node(uuid)
            if node['provision_state'] in states:
                return node
            if node['provision_state'] == 'deploy failed' or \
                    time.monotonic() > deadline:
                raise AssertionError('node %s stuck in %s (last_error %s):\n%s'
                                     % (uuid, node['provision_state'],
                                        node['last_error'], self.tail()))
            time.sleep(0.5)


class ImageServer:
    """Serves the image (and nothing else) on 127.0.0.1."""

    def __init__(self, directory):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa
            *a, directory=directory, **k)
        http.server.SimpleHTTPRequestHandler.log_message = \
            lambda *args: None
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('standalone-ironic'))
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
    c.image = image
    c.image_url = 'http://127.0.0.1:%d/disk.raw' % server.port
    c.loop = loop
    c.write_config(server.port)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        server.stop()
        subprocess.run(['losetup', '-d', loop], check=False)


def enroll(cloud, name, mac, root_device, driver='fuel-manual',
           power='fake', management='noop', driver_info=None):
    """Create the node, ready to deploy (available). The default BMC is
    none (fuel-manual, fake power); ``driver``, ``power``,
    ``management`` and ``driver_info`` (a dict, e.g. ``redfish_*``) name
    a real one."""
    extra = []
    for key, value in (driver_info or {}).items():
        extra += ['--driver-info', '%s=%s' % (key, value)]
    node = cloud.baremetal(
        'node', 'create', '-f', 'json', '--name', name,
        '--driver', driver, '--deploy-interface', 'fuel-agent',
        '--boot-interface', 'ipxe', '--power-interface', power,
        '--management-interface', management, '--network-interface', 'noop',
        '--driver-info',
        'deploy_kernel=file://%s/deploy.kernel' % cloud.root,
        '--driver-info',
        'deploy_ramdisk=file://%s/deploy.initramfs' % cloud.root,
        '--property', 'root_device=%s' % json.dumps({'name': root_device}),
        *extra)
    uuid = node['uuid']
    cloud.baremetal(
        'node', 'set', uuid,
        '--instance-info', 'image_source=%s' % cloud.image_url,
        '--instance-info', 'image_os_hash_algo=sha256',
        '--instance-info', 'image_os_hash_value=%s'
        % hashlib.sha256(cloud.image).hexdigest())
    cloud.baremetal('port', 'create', mac, '--node', uuid)
    cloud.baremetal('node', 'manage', uuid, '--wait', '60')
    # Not ``provide --wait``: the client polls that every 10 s.
    cloud.baremetal('node', 'provide', uuid)
    cloud.wait_for(uuid, ['available'], timeout=60)
    return uuid


def boot_ramdisk(cloud, uuid, mac, bin_dir=None):
    """What the ramdisk does when it boots: sshd up, fa-heartbeat run with
    the kernel command line Ironic wrote for this node. ``bin_dir``: put
    first on the PATH of the ramdisk's commands."""
    # A fresh ramdisk boot has an empty /run.
    shutil.rmtree(cloud.remote, ignore_errors=True)
    os.makedirs(cloud.remote)
    directory = os.path.join(cloud.root, 'ramdisk-' + uuid)
    os.makedirs(directory, exist_ok=True)
    ramdisk = fake_ramdisk.FakeRamdisk(directory)
    if bin_dir:
        ramdisk.env['PATH'] = bin_dir + ':' + ramdisk.env['PATH']
    ramdisk.start()
    with open(os.path.join(cloud.http_root, uuid, 'config')) as f:
        boot_config = f.read()
    cmdline = os.path.join(directory, 'cmdline')
    with open(cmdline, 'w') as f:
        f.write(' '.join(re.findall(r'(?:ipa-api-url|fa-ssh-key)=\S+',
                                    boot_config)) + '\n')
    host_key = os.path.join(directory, 'ssh_host_ed25519_key.pub')
    ramdisk.write_host_pub(host_key)
    result = subprocess.run(
        [BIN + '/fa-heartbeat', '--cmdline', cmdline, '--address',
         '127.0.0.1', '--ssh-port', str(ramdisk.port), '--mac', mac,
         '--host-key', host_key, '--authorized-keys',
         ramdisk.authorized_keys, '--once', '--max-wait', '60'],
        capture_output=True, text=True, timeout=120, env=cloud.env)
    assert result.returncode == 0, result.stderr
    return ramdisk


def test_validate_reports_the_interface(cloud):
    uuid = enroll(cloud, 'fa-validate', '52:54:00:fa:00:01', cloud.loop)
    result = cloud.baremetal('node', 'validate', uuid, '-f', 'json')
    deploy, = [r for r in result if r['Interface'] == 'deploy']
    assert deploy['Result'] is True, deploy
    cloud.baremetal('node', 'set', uuid, '--driver-info',
                    'fa_partition_scheme={"storage": [{"type": "disk"}]}')
    result = cloud.baremetal('node', 'validate', uuid, '-f', 'json')
    deploy, = [r for r in result if r['Interface'] == 'deploy']
    assert deploy['Result'] is False
    assert 'driver_info.fa_partition_scheme' in deploy['Reason']
    assert '$.storage[0]' in deploy['Reason']
    props = cloud.baremetal('driver', 'property', 'list', 'fuel-manual',
                            '-f', 'json')
    listed = {tuple(p.values())[0]: tuple(p.values())[1] for p in props}
    assert listed['fa_partition_scheme'].startswith('driver_info:')
    assert listed['image_source'].startswith('instance_info:')


def test_deploy_goes_active_and_writes_the_image(cloud):
    mac = '52:54:00:fa:00:02'
    uuid = enroll(cloud, 'fa-good', mac, cloud.loop)
    started = time.monotonic()
    cloud.baremetal('node', 'deploy', uuid)
    cloud.wait_for(uuid, ['wait call-back'])
    ramdisk = boot_ramdisk(cloud, uuid, mac)
    try:
        node = cloud.wait_for(uuid, ['active', 'deploy failed'])
    finally:
        ramdisk.stop()
    assert node['provision_state'] == 'active', node['last_error']
    assert node['last_error'] is None
    assert node['power_state'] == 'power on'
    info = node['driver_internal_info']
    assert info['fa_agent_result']['devices']['root_disk']['path'] == \
        cloud.loop
    with open(cloud.loop, 'rb') as f:
        assert f.read(len(cloud.image)) == cloud.image
    print('deploy to active took %.1f s' % (time.monotonic() - started))


def test_failing_agent_leaves_deploy_failed_with_its_message(cloud):
    mac = '52:54:00:fa:00:03'
    uuid = enroll(cloud, 'fa-bad', mac, '/dev/fa-no-such-disk')
    cloud.baremetal('node', 'deploy', uuid)
    cloud.wait_for(uuid, ['wait call-back'])
    ramdisk = boot_ramdisk(cloud, uuid, mac)
    try:
        node = cloud.wait_for(uuid, ['active', 'deploy failed'])
    finally:
        ramdisk.stop()
    print('last_error: %s' % node['last_error'])
    assert node['provision_state'] == 'deploy failed'
    assert 'fuel-agent failed: disk_not_found' in node['last_error']
    assert '/dev/fa-no-such-disk' in node['last_error']
    stored = [n for n in os.listdir(cloud.logs) if n.startswith(uuid)]
    assert len(stored) == 1, os.listdir(cloud.logs)
    with tarfile.open(os.path.join(cloud.logs, stored[0])) as archive:
        status = json.load(archive.extractfile('status.json'))
        log = archive.extractfile('provision.log').read().decode()
    assert status['error']['class'] == 'disk_not_found'
    assert 'provisioning failed (disk_not_found' in log
