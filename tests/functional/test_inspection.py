"""In-band inspection with the fuel ramdisk, through a real standalone
Ironic 39 and its own inspection hooks.

The Ironic process is the one tests/functional/test_standalone_ironic.py
runs, with the ``agent`` inspect interface enabled. ``baremetal node
inspect`` makes Ironic write the node's iPXE config with
``ipa-inspection-callback-url``; the real ``fa-heartbeat`` program is then
run with that kernel command line (plus the ``BOOTIF`` iPXE would fill
in) and posts an inventory it really collected on this machine: its CPUs,
memory, and its block devices, among them a 5 GiB loop device that plays
the node's disk. The one thing faked is the node's network card (this
machine's NICs are not the node's): a sysfs-shaped directory with two
NICs. Power is Ironic's ``fake`` interface (no BMC here).

Needs root (loop devices); skipped otherwise.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_standalone_ironic as standalone  # noqa: E402

BIN = standalone.BIN
GiB = 1024 ** 3
BOOT_MAC = '52:54:00:fa:10:01'
OTHER_MAC = '52:54:00:fa:10:02'

pytestmark = standalone.pytestmark


class InspectingCloud(standalone.Cloud):
    """The standalone Ironic with in-band inspection on."""

    def write_config(self, image_port):
        super().write_config(image_port)
        with open(self.config) as f:
            text = f.read()
        text = text.replace('enabled_inspect_interfaces = no-inspect',
                            'enabled_inspect_interfaces = agent,no-inspect')
        text += """
[inspector]
hooks = $default_hooks,memory,cpus,root-device,boot-mode,cpu-capabilities
add_ports = all
[auto_discovery]
enabled = false
"""
        with open(self.config, 'w') as f:
            f.write(text)


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('inspection'))
    disk_file = os.path.join(root, 'disk0.img')
    with open(disk_file, 'wb') as f:
        f.truncate(5 * GiB)  # sparse
    loop = subprocess.run(['losetup', '-f', '--show', disk_file], check=True,
                          capture_output=True, text=True).stdout.strip()
    for name in ('deploy.kernel', 'deploy.initramfs'):
        with open(os.path.join(root, name), 'wb') as f:
            f.write(b'not booted here\n')
    c = InspectingCloud(root)
    c.loop = loop
    c.write_config(9)  # no image is served: nothing is deployed here
    try:
        c.start()
        yield c
    finally:
        c.stop()
        subprocess.run(['losetup', '-d', loop], check=False)


def fake_nics(directory):
    """/sys/class/net of the node: two PCI NICs."""
    for name, mac, carrier in (('eno1', BOOT_MAC, '1'),
                               ('eno2', OTHER_MAC, '0')):
        base = os.path.join(directory, name)
        os.makedirs(os.path.join(base, 'device'))
        for entry, value in (('address', mac), ('carrier', carrier),
                             ('speed', '1000'), ('device/vendor', '0x8086'),
                             ('device/device', '0x1533')):
            with open(os.path.join(base, entry), 'w') as f:
                f.write(value + '\n')


def power_ons(cloud, uuid):
    """How many times Ironic switched the node on, from its own log."""
    with open(os.path.join(cloud.root, 'ironic.log')) as f:
        return len(re.findall(r'Successfully set node %s power state to '
                              r'power on' % uuid, f.read()))


def inspect_node(cloud):
    node = cloud.baremetal(
        'node', 'create', '-f', 'json', '--name', 'fa-inspect',
        '--driver', 'fuel-manual', '--deploy-interface', 'fuel-agent',
        '--boot-interface', 'ipxe', '--power-interface', 'fake',
        '--management-interface', 'noop', '--network-interface', 'noop',
        '--inspect-interface', 'agent',
        '--driver-info',
        'deploy_kernel=file://%s/deploy.kernel' % cloud.root,
        '--driver-info',
        'deploy_ramdisk=file://%s/deploy.initramfs' % cloud.root,
        '--property', 'root_device=%s' % json.dumps({'name': cloud.loop}))
    uuid = node['uuid']
    # Inspection finds the node by a MAC it already knows (no BMC address
    # here, auto-discovery off).
    cloud.baremetal('port', 'create', BOOT_MAC, '--node', uuid)
    cloud.baremetal('node', 'manage', uuid, '--wait', '60')
    cloud.baremetal('node', 'inspect', uuid)
    cloud.wait_for(uuid, ['inspect wait', 'inspect failed'], timeout=60)

    with open(os.path.join(cloud.http_root, uuid, 'config')) as f:
        boot_config = f.read()
    found = re.findall(r'ipa-inspection-callback-url=\S+', boot_config)
    assert found, boot_config
    directory = os.path.join(cloud.root, 'ramdisk-' + uuid)
    nics = os.path.join(directory, 'sys-class-net')
    fake_nics(nics)
    cmdline = os.path.join(directory, 'cmdline')
    with open(cmdline, 'w') as f:
        # iPXE fills BOOTIF=${mac} in when it boots the node.
        f.write('%s BOOTIF=%s\n' % (' '.join(found), BOOT_MAC))
    result = subprocess.run(
        # --address: its ports are fake, the address the post would wait
        # for is loopback's.
        [BIN + '/fa-heartbeat', '--cmdline', cmdline,
         '--sys-class-net', nics, '--address', '127.0.0.1', '--once',
         '--max-wait', '60'],
        capture_output=True, text=True, timeout=120, env=cloud.env)
    print(result.stderr)
    assert result.returncode == 0, result.stderr
    assert 'inspection: disks: ' in result.stderr
    assert cloud.loop + ' 5 GiB' in result.stderr
    node = cloud.wait_for(uuid, ['manageable', 'inspect failed'],
                          timeout=60)
    assert node['provision_state'] == 'manageable', node['last_error']
    return uuid, node


@pytest.fixture(scope='module')
def inspected(cloud):
    return inspect_node(cloud)


def test_inspection_fills_the_node_through_ironic_hooks(cloud, inspected):
    uuid, node = inspected
    props = node['properties']
    # root-device hook: the hinted loop device, minus Ironic's 1 GiB spacing
    assert props['local_gb'] == 4
    assert props['cpus'] == os.cpu_count()
    assert props['memory_mb'] > 0
    assert props['cpu_arch'] == os.uname().machine
    assert 'boot_mode:bios' in props['capabilities']
    assert node['power_state'] == 'power off'  # [inspector]power_off
    request = urllib.request.Request(
        cloud.api + '/v1/ports?fields=address,pxe_enabled&node=' + uuid,
        headers={'X-OpenStack-Ironic-API-Version': 'latest'})
    with urllib.request.urlopen(request, timeout=10) as reply:
        ports = json.load(reply)['ports']
    by_mac = {p['address']: p['pxe_enabled'] for p in ports}
    # eno2's port is the ports hook's; pxe_enabled follows BOOTIF.
    assert by_mac == {BOOT_MAC: True, OTHER_MAC: False}

    stored = cloud.baremetal('node', 'inventory', 'save', uuid)
    data = json.loads(stored)
    disks = {d['name']: d for d in data['inventory']['disks']}
    assert disks[cloud.loop]['size'] == 5 * GiB
    for field in ('wwn', 'wwn_with_extension', 'wwn_vendor_extension',
                  'serial', 'by_path', 'hctl', 'model', 'vendor',
                  'rotational'):
        assert field in disks[cloud.loop]
    assert data['plugin_data']['root_disk']['name'] == cloud.loop
    assert {i['name'] for i in data['inventory']['interfaces']} == \
        {'eno1', 'eno2'}
    assert data['inventory']['boot']['pxe_interface'] == BOOT_MAC


def _deploy_result(cloud, uuid):
    result = cloud.baremetal('node', 'validate', uuid, '-f', 'json')
    deploy, = [r for r in result if r['Interface'] == 'deploy']
    return deploy


def test_a_scheme_that_does_not_fit_fails_validate_before_power_on(
        cloud, inspected):
    uuid, _node = inspected
    before = power_ons(cloud, uuid)
    # A partition image (kernel and ramdisk given) for the scheme's '/'.
    cloud.baremetal('node', 'set', uuid,
                    '--instance-info', 'image_source=http://127.0.0.1:9/fs',
                    '--instance-info', 'kernel=http://127.0.0.1:9/vmlinuz',
                    '--instance-info', 'ramdisk=http://127.0.0.1:9/initrd')
    too_big = {
        'version': 1,
        'storage': [
            {'type': 'disk', 'id': 'system', 'table': 'gpt',
             'match': {'name': cloud.loop}},
            {'type': 'partition', 'id': 'grub', 'device': 'system',
             'size': '1 MiB', 'flags': ['bios_grub']},
            {'type': 'partition', 'id': 'root', 'device': 'system',
             'size': '8 GiB'},
            {'type': 'filesystem', 'id': 'rootfs', 'device': 'root',
             'fstype': 'ext4', 'mount_point': '/'}],
        'bootloader': {'mode': 'bios'}}
    cloud.baremetal('node', 'set', uuid, '--driver-info',
                    'fa_partition_scheme=%s' % json.dumps(too_big))
    deploy = _deploy_result(cloud, uuid)
    print('validate: %s' % deploy['Reason'])
    assert deploy['Result'] is False
    assert 'does not fit the inspected disks' in deploy['Reason']
    assert '$.storage[0]' in deploy['Reason']
    assert cloud.loop in deploy['Reason']

    fits = json.loads(json.dumps(too_big))
    fits['storage'][2]['size'] = '2 GiB'
    cloud.baremetal('node', 'set', uuid, '--driver-info',
                    'fa_partition_scheme=%s' % json.dumps(fits))
    deploy = _deploy_result(cloud, uuid)
    assert deploy['Result'] is True, deploy['Reason']
    assert power_ons(cloud, uuid) == before
    assert cloud.node(uuid)['power_state'] == 'power off'
