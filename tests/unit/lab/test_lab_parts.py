"""The lab's parts that need no root and no VM: its schemes checked by
the real validator and planner against the VMs' disks, the configuration
it writes for Ironic, dnsmasq and libvirt, and the console parsing.
The lab itself runs in tests/lab (root, minutes)."""

import configparser
import json
import os
import shutil
import sys
import tarfile
from xml.etree import ElementTree

from fa_agent.scheme import inventory
from fa_agent.scheme import planner
from fa_agent.scheme import validator
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                'tools'))
from lab import artifacts  # noqa: E402
from lab import bmc  # noqa: E402
from lab import console  # noqa: E402
from lab import dhcp  # noqa: E402
from lab import ironic  # noqa: E402
from lab import netgrub  # noqa: E402
from lab import redfish  # noqa: E402
from lab import scenarios  # noqa: E402
from lab import schemes  # noqa: E402
from lab import settings  # noqa: E402
from lab import virt  # noqa: E402

GiB = 1024 ** 3


def vm_disks(node=settings.NODES['bios']):
    return [inventory.BlockDevice(name='/dev/vd%s' % chr(ord('a') + n),
                                  size=size * GiB,
                                  serial=settings.DISK_SERIAL % n)
            for n, size in enumerate(node.disks_gib)]


@pytest.fixture
def lab(tmp_path):
    return settings.Lab(state_dir=str(tmp_path))


@pytest.mark.parametrize('boot_mode', ['bios', 'uefi'])
@pytest.mark.parametrize('keep', [False, True])
def test_raid1_lvm_is_valid_and_fits_the_vm(boot_mode, keep):
    scheme = validator.load(schemes.raid1_lvm(boot_mode, keep_data=keep))
    plan = planner.plan(scheme, vm_disks())
    assert plan.devices['pv0'].path == '/dev/vda3'
    assert plan.devices['pv1'].path == '/dev/vdb3'


def test_too_big_does_not_fit_and_says_where():
    scheme = validator.load(schemes.too_big())
    with pytest.raises(planner.PlanError) as caught:
        planner.plan(scheme, vm_disks())
    assert "'vg0' need" in str(caught.value)


def test_keep_data_scenario_schemes_are_valid(lab):
    os.makedirs(lab.path('images'))
    data = artifacts.data_tar(lab, 'token')
    image = {'url': 'http://192.0.2.1:8080/images/x'}
    first = schemes.with_images(schemes.raid1_lvm(), [
        dict(image, format='fs_image', target='fs-root'),
        dict(image, format='tar', target='fs-data')])
    assert validator.validate(first) == []
    # Writing into a kept file system is refused by the validator.
    refused = schemes.with_images(schemes.raid1_lvm(keep_data=True),
                                  [dict(image, format='tar',
                                        target='fs-data')])
    assert validator.validate(refused)
    with tarfile.open(data.path) as archive:
        assert archive.extractfile(artifacts.MARKER_FILE).read() == \
            b'token\n'


def test_ironic_and_dnsmasq_agree_on_the_dhcp_files(lab):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ironic.config(lab, '/var/cache/x'))
    assert parser['DEFAULT']['enabled_hardware_types'] == \
        'fuel-ipmi,fuel-redfish'
    # Every node's hardware type, power and management interface is on.
    for node in settings.NODES.values():
        assert bmc.HARDWARE_TYPES[node.bmc] in \
            parser['DEFAULT']['enabled_hardware_types'].split(',')
    assert parser['DEFAULT']['enabled_deploy_interfaces'] == 'fuel-agent'
    assert parser['dhcp']['dhcp_provider'] == 'dnsmasq'
    text = dhcp.config(lab)
    paths = dhcp.paths(lab)
    assert 'dhcp-hostsdir=%s' % paths['hosts'] in text
    assert parser['dnsmasq']['dhcp_hostsdir'] == paths['hosts']
    assert parser['dnsmasq']['dhcp_optsdir'] == paths['opts']
    assert parser['dnsmasq']['dhcp_leasefile'] == paths['leases']
    # Every address of the namespace: virtual-media ramdisks call back
    # over IPv6, the others over IPv4.
    assert parser['api']['host_ip'] == '::'
    assert parser['deploy']['external_callback_url'] == lab.ironic_url6
    # Only the lab's own bridge, and no DNS.
    assert 'interface=%s' % lab.bridge in text and 'port=0' in text


def test_both_bmc_kinds_are_in_the_lab():
    assert {node.bmc for node in settings.NODES.values()} == \
        set(bmc.HARDWARE_TYPES)
    ports = [n.bmc_port for n in settings.NODES.values() if n.bmc == 'ipmi']
    assert None not in ports and len(ports) == len(set(ports))


def test_redfish_emulator_config_is_python_with_the_labs_values(lab):
    values = {}
    exec(redfish.config(lab), {}, values)
    assert values == {
        'SUSHY_EMULATOR_LISTEN_IP': lab.address,
        'SUSHY_EMULATOR_LISTEN_PORT': lab.redfish_port,
        'SUSHY_EMULATOR_LIBVIRT_URI': virt.uri(lab),
        'SUSHY_EMULATOR_AUTH_FILE': lab.path('redfish', 'htpasswd')}


@pytest.mark.parametrize('name', sorted(settings.NODES))
def test_domain_xml(lab, name):
    node = settings.NODES[name]
    root = ElementTree.fromstring(virt.domain_xml(lab, node))
    assert root.get('type') == 'qemu'
    serials = [d.findtext('serial') for d in root.iter('disk')]
    assert serials == ['fa-disk-0', 'fa-disk-1']
    assert root.find('devices/interface/source').get('bridge') == \
        lab.bridge
    assert root.find('devices/serial/source').get('path') == \
        virt.console_log(lab, node)
    assert (root.find('os/loader') is not None) == (node.boot_mode == 'uefi')
    # OVMF's PXE over IPv6 off (it only delayed HTTP boots); SeaBIOS has
    # no such switch.
    fw_cfg = {e.get('name'): e.text
              for e in root.findall("sysinfo[@type='fwcfg']/entry")}
    assert fw_cfg == ({virt.OVMF_IPV6_PXE: 'no'}
                      if node.boot_mode == 'uefi' else {})


def test_marker_after_offset(tmp_path):
    log = tmp_path / 'console.log'
    first = {'boot_mode': 'bios', 'mounts': []}
    second = {'boot_mode': 'uefi', 'mounts': []}
    log.write_text('noise\nFA-MARKER %s\n' % json.dumps(first))
    offset = console.size(str(log))
    with open(log, 'a') as f:
        # A marker cut by kernel output, then a whole one.
        f.write('FA-MARKER {"boot_mo[  3.1] x\nFA-MARKER %s\r\n'
                % json.dumps(second))
    assert console.marker(str(log), 0) == first
    assert console.marker(str(log), offset) == second
    assert console.marker(str(log), console.size(str(log))) is None


def test_swap_devices_from_proc_swaps_or_json():
    text = ('Filename\tType\tSize\tUsed\tPriority\n'
            '/dev/dm-1   partition\t262140\t0\t-2\n')
    assert scenarios.swap_devices(text) == ['/dev/dm-1']
    assert scenarios.swap_devices([{'name': '/dev/dm-2'}]) == ['/dev/dm-2']
    assert scenarios.swap_devices(None) == []


def test_every_scenario_belongs_to_one_node_chain():
    names = [n for chain in scenarios.CHAINS.values() for n in chain]
    assert sorted(names) == sorted(set(names)) == sorted(scenarios.ALL)
    for node, chain in scenarios.CHAINS.items():
        for name in chain:
            assert scenarios.NODE_OF[name] is node
            assert callable(getattr(scenarios.Scenarios,
                                    name.replace('-', '_')))


def test_kept_token_reads_the_data_mount_from_the_marker():
    marker = {'keep': {schemes.DATA_MOUNT: 'abc', '/': 'other'}}
    assert scenarios.kept_token(marker) == 'abc'
    assert scenarios.kept_token({'keep': {}}) is None
    assert scenarios.kept_token(None) is None


@pytest.mark.skipif(not shutil.which('grub-mkimage')
                    or not os.path.isdir(netgrub.MODULE_DIR),
                    reason="Debian's grub-efi-amd64-bin is not installed")
def test_network_grub_is_an_efi_image_that_asks_dhcp_first(lab):
    image = netgrub.build(lab)
    with open(image, 'rb') as f:
        data = f.read()
    assert data[:2] == b'MZ'  # a PE image, as UEFI loads
    # The built-in configuration, which GRUB runs before $prefix/grub.cfg.
    assert netgrub.EMBEDDED_CONFIG.encode() in data
