"""The inspection inventory (fa_agent.inventory) and the disk discovery it
shares with the agent's matcher (fa_agent.discovery).

Fixtures are real outputs: lsblk 2.38 JSON and ``udevadm info`` of a
SAS/SATA server and an NVMe disk (values from a Dell and a Samsung disk),
/proc and /sys files as Linux 6.1 writes them. The last test runs the
collector for real on this machine against loop devices it attaches.
"""

import json
import os
import shutil
import subprocess

from fa_agent import discovery
from fa_agent import inventory
from fa_agent import runner as agent_runner
from fa_agent.scheme import matcher
import pytest

GiB = 1024 ** 3

LSBLK = json.dumps({'blockdevices': [
    {'name': 'sda', 'path': '/dev/sda', 'size': 480103981056, 'type': 'disk',
     'rota': False, 'serial': 'S455NY0M123456', 'wwn': '0x5002538e40a1b2c3',
     'vendor': 'ATA     ', 'model': 'SAMSUNG MZ7LH480HAHQ-00005',
     'hctl': '0:0:0:0', 'ro': False},
    {'name': 'sdb', 'path': '/dev/sdb', 'size': 77309411328000,
     'type': 'disk', 'rota': True, 'serial': 'FNM00175101182',
     'wwn': '0x68ccf09800744a14b26d09fd41b7e9b5', 'vendor': 'DellEMC ',
     'model': 'HADA2016', 'hctl': None, 'ro': False},
    {'name': 'nvme0n1', 'path': '/dev/nvme0n1', 'size': 960197124096,
     'type': 'disk', 'rota': False, 'serial': 'S64ANS0T515282K',
     'wwn': 'eui.36344630525152820025384500000001', 'vendor': None,
     'model': 'SAMSUNG MZQL2960HCJR-00A07', 'hctl': None, 'ro': False},
    {'name': 'sr0', 'path': '/dev/sr0', 'size': 1073741312, 'type': 'rom',
     'rota': True, 'serial': None, 'wwn': None, 'vendor': 'QEMU',
     'model': 'QEMU DVD-ROM', 'hctl': '1:0:0:0', 'ro': False},
]})

UDEV_SDA = '''DEVPATH=/devices/pci0000:00/0000:00:17.0/ata1/host0/block/sda
DEVNAME=/dev/sda
DEVTYPE=disk
ID_ATA=1
ID_BUS=ata
ID_MODEL=SAMSUNG_MZ7LH480HAHQ-00005
ID_SERIAL=SAMSUNG_MZ7LH480HAHQ-00005_S455NY0M123456
ID_SERIAL_SHORT=S455NY0M123456
ID_WWN=0x5002538e40a1b2c3
ID_WWN_WITH_EXTENSION=0x5002538e40a1b2c3
ID_PATH=pci-0000:00:17.0-ata-1
ID_PATH_TAG=pci-0000_00_17_0-ata-1
SUBSYSTEM=block
'''
UDEV_SDB = '''DEVNAME=/dev/sdb
ID_PATH=ip-10.240.65.24:3260-iscsi-iqn.2015-10.com.dell:dellemc-cyclone-lun-8
ID_SCSI=1
ID_SCSI_SERIAL=FNM00175101182
ID_SERIAL=368ccf09800744a14b26d09fd41b7e9b5
ID_SERIAL_SHORT=68ccf09800744a14b26d09fd41b7e9b5
ID_VENDOR=DellEMC
ID_WWN=0x68ccf09800744a14
ID_WWN_VENDOR_EXTENSION=0xb26d09fd41b7e9b5
ID_WWN_WITH_EXTENSION=0x68ccf09800744a14b26d09fd41b7e9b5
SUBSYSTEM=block
'''
UDEV_NVME = '''DEVNAME=/dev/nvme0n1
ID_MODEL=SAMSUNG MZQL2960HCJR-00A07
ID_SERIAL=SAMSUNG MZQL2960HCJR-00A07_S64ANS0T515282K
ID_SERIAL_SHORT=S64ANS0T515282K
ID_WWN=eui.36344630525152820025384500000001
ID_PATH=pci-0000:c1:00.0-nvme-1
SUBSYSTEM=block
'''


def scripted(udev=True):
    replies = {('lsblk',): LSBLK}
    if udev:
        replies.update({
            ('udevadm', 'info', '--query=property', '--name=/dev/sda'):
                UDEV_SDA,
            ('udevadm', 'info', '--query=property', '--name=/dev/sdb'):
                UDEV_SDB,
            ('udevadm', 'info', '--query=property', '--name=/dev/nvme0n1'):
                UDEV_NVME})
    return agent_runner.RecordingRunner(replies)


def sys_block(tmp_path):
    # sdb's HCTL is only in sysfs (lsblk left it out).
    os.makedirs(tmp_path / 'block' / 'sdb' / 'device' / 'scsi_device' /
                '3:0:0:8')
    return str(tmp_path / 'block')


def test_discovery_fills_every_hint_from_udev_as_ipa_does(tmp_path):
    disks = {d.name: d for d in discovery.disks(scripted(),
                                                sys_block(tmp_path))}
    assert sorted(disks) == ['/dev/nvme0n1', '/dev/sda', '/dev/sdb']
    sdb = disks['/dev/sdb']
    # udev's ID_WWN is the plain WWN, lsblk's the one with the extension.
    assert sdb.wwn == '0x68ccf09800744a14'
    assert sdb.wwn_with_extension == '0x68ccf09800744a14b26d09fd41b7e9b5'
    assert sdb.wwn_vendor_extension == '0xb26d09fd41b7e9b5'
    # IPA reports ID_SERIAL_SHORT, not lsblk's SCSI serial.
    assert sdb.serial == '68ccf09800744a14b26d09fd41b7e9b5'
    assert sdb.hctl == '3:0:0:8'
    assert sdb.by_path == ('/dev/disk/by-path/ip-10.240.65.24:3260-iscsi-'
                           'iqn.2015-10.com.dell:dellemc-cyclone-lun-8')
    assert sdb.vendor == 'DellEMC'
    sda = disks['/dev/sda']
    assert (sda.wwn, sda.wwn_with_extension, sda.wwn_vendor_extension) == (
        '0x5002538e40a1b2c3', '0x5002538e40a1b2c3', None)
    assert sda.hctl == '0:0:0:0' and sda.rotational is False
    nvme = disks['/dev/nvme0n1']
    assert nvme.wwn == 'eui.36344630525152820025384500000001'
    assert nvme.by_path == '/dev/disk/by-path/pci-0000:c1:00.0-nvme-1'
    assert nvme.hctl is None


@pytest.mark.parametrize('hint, value, name', [
    ('wwn_with_extension', '0x68ccf09800744a14b26d09fd41b7e9b5', '/dev/sdb'),
    ('wwn_vendor_extension', '0xb26d09fd41b7e9b5', '/dev/sdb'),
    ('wwn', '0x68ccf09800744a14', '/dev/sdb'),
    ('serial', 'S455NY0M123456', '/dev/sda'),
    ('hctl', '3:0:0:8', '/dev/sdb'),
    ('by_path', '/dev/disk/by-path/pci-0000:c1:00.0-nvme-1', '/dev/nvme0n1'),
    ('model', 'HADA2016', '/dev/sdb'),
    ('vendor', 'DellEMC', '/dev/sdb'),
])
def test_the_ramdisk_matcher_finds_disks_by_every_hint(tmp_path, hint, value,
                                                       name):
    # Before this change wwn_with_extension/wwn_vendor_extension were never
    # filled in the ramdisk, so these hints matched at validate only.
    found = matcher.matching(discovery.disks(scripted(), sys_block(tmp_path)),
                             {hint: value})
    assert [d.name for d in found] == [name]


def test_inventory_disks_and_the_matcher_see_the_same_fields(tmp_path):
    records = inventory.disks(scripted(), inventory.Paths(str(tmp_path)))
    back = {d.name: d for d in discovery.disks(
        scripted(), str(tmp_path / 'sys' / 'block'))}
    from fa_agent.scheme import inventory as scheme_inventory
    assert {d.name: d for d in scheme_inventory.from_ironic(
        {'disks': records})} == back


def test_without_udev_data_lsblk_values_are_kept(tmp_path):
    disks = {d.name: d for d in discovery.disks(scripted(udev=False),
                                                sys_block(tmp_path))}
    sdb = disks['/dev/sdb']
    assert sdb.wwn == sdb.wwn_with_extension == \
        '0x68ccf09800744a14b26d09fd41b7e9b5'
    assert sdb.serial == 'FNM00175101182'
    assert sdb.by_path is None and sdb.hctl == '3:0:0:8'


CPUINFO = '''processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz
cpu MHz\t\t: 2999.998
flags\t\t: fpu vme de pse msr vmx aes pdpe1gb

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz
cpu MHz\t\t: 3000.000
flags\t\t: fpu vme de pse msr vmx aes pdpe1gb
'''
IF_INET6 = '''fe800000000000005054fffe123401 02 40 20 80     eno1
fe80000000000000505400fffe123401 02 40 20 80     eno1
20010db8000000000000000000000010 02 40 00 80     eno1
00000000000000000000000000000001 01 80 10 80       lo
'''


def machine(tmp_path, efi=False):
    root = tmp_path / 'root'

    def write(path, text):
        path = root / path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    write('proc/cpuinfo', CPUINFO)
    write('proc/meminfo', 'MemTotal:       16318452 kB\nMemFree: 1 kB\n')
    write('proc/net/if_inet6', IF_INET6)
    write('sys/devices/system/memory/block_size_bytes', '8000000\n')
    for n in range(128):  # 128 x 128 MiB blocks = 16 GiB
        write('sys/devices/system/memory/memory%d/online' % n, '1\n')
    write('sys/devices/system/memory/memory999/online', '0\n')
    for name, mac, device in (('eno1', '3C:EC:EF:12:34:01', True),
                              ('eno2', '3c:ec:ef:12:34:02', True),
                              ('br0', '3c:ec:ef:12:34:01', False),
                              ('lo', '00:00:00:00:00:00', False)):
        write('sys/class/net/%s/address' % name, mac + '\n')
        write('sys/class/net/%s/carrier' % name, '1\n' if name == 'eno1'
              else '0\n')
        if device:
            write('sys/class/net/%s/device/vendor' % name, '0x8086\n')
            write('sys/class/net/%s/device/device' % name, '0x1572\n')
            write('sys/class/net/%s/speed' % name,
                  '10000\n' if name == 'eno1' else '-1\n')
    for name, value in (('product_name', 'PowerEdge R640'),
                        ('product_serial', 'CZ12345'),
                        ('sys_vendor', 'Dell Inc.'),
                        ('bios_vendor', 'Dell Inc.'),
                        ('bios_version', '2.19.1'),
                        ('bios_date', '06/05/2023')):
        write('sys/class/dmi/id/' + name, value + '\n')
    if efi:
        (root / 'sys' / 'firmware' / 'efi').mkdir(parents=True)
    return inventory.Paths(str(root))


def test_collect_from_proc_and_sys(tmp_path):
    paths = machine(tmp_path, efi=True)
    inv, failures = inventory.collect(
        scripted(), {'BOOTIF': '01-3c-ec-ef-12-34-01'}, paths,
        ipv4=lambda name: '192.0.2.5' if name == 'eno1' else None)
    assert failures == []
    eno1, eno2 = inv['interfaces']  # no bridge, no loopback
    assert eno1 == {'name': 'eno1', 'mac_address': '3c:ec:ef:12:34:01',
                    'ipv4_address': '192.0.2.5',
                    'ipv6_address': '2001:db8::10', 'has_carrier': True,
                    'lldp': None, 'vendor': '0x8086', 'product': '0x1572',
                    'client_id': None, 'biosdevname': None,
                    'speed_mbps': 10000}
    assert (eno2['ipv4_address'], eno2['ipv6_address'],
            eno2['has_carrier'], eno2['speed_mbps']) == (None, None, False,
                                                         None)
    assert inv['cpu']['model_name'].startswith('Intel(R) Xeon(R) Gold')
    assert inv['cpu']['count'] == 2
    assert inv['cpu']['frequency'] == '2999.998'
    assert 'vmx' in inv['cpu']['flags']
    assert inv['memory'] == {'total': 16318452 * 1024,
                             'physical_mb': 16384}
    assert inv['boot'] == {'current_boot_mode': 'uefi',
                           'pxe_interface': '3c:ec:ef:12:34:01'}
    assert inv['system_vendor']['product_name'] == 'PowerEdge R640'
    assert inv['system_vendor']['serial_number'] == 'CZ12345'
    assert inv['system_vendor']['manufacturer'] == 'Dell Inc.'
    assert inv['system_vendor']['firmware']['version'] == '2.19.1'
    assert [d['name'] for d in inv['disks']] == ['/dev/sda', '/dev/sdb',
                                                 '/dev/nvme0n1']
    json.dumps(inv)  # plain JSON


def test_memory_without_hotplug_blocks(tmp_path):
    paths = machine(tmp_path)
    shutil.rmtree(paths.memory)
    assert inventory.memory(paths)['physical_mb'] == 16000  # 15936 rounded


def test_bios_boot_and_no_bootif(tmp_path):
    assert inventory.boot(machine(tmp_path), {}) == {
        'current_boot_mode': 'bios', 'pxe_interface': None}


def test_a_failing_part_is_reported_not_raised(tmp_path):
    broken = agent_runner.RecordingRunner(
        {('lsblk',): OSError('lsblk: not found')})
    inv, failures = inventory.collect(broken, {}, machine(tmp_path),
                                      ipv4=lambda name: None)
    assert inv['disks'] == []
    assert failures == ['reading disks failed: lsblk: not found']
    assert len(inv['interfaces']) == 2
    data = inventory.inspection_data(inv, '1.0', error=failures[0])
    assert data['error'] == failures[0]
    assert data['root_disk'] is None


def test_inspection_data_root_disk_is_ipas_default(tmp_path):
    records = [{'name': '/dev/sda', 'size': 480 * GiB},
               {'name': '/dev/sdb', 'size': 2 * GiB},
               {'name': '/dev/sdc', 'size': 240 * GiB}]
    data = inventory.inspection_data(
        {'disks': records, 'boot': {'pxe_interface': 'aa:bb:cc:dd:ee:ff'}},
        '1.2')
    assert data['root_disk']['name'] == '/dev/sdc'  # smallest of >= 4 GiB
    assert data['boot_interface'] == 'aa:bb:cc:dd:ee:ff'
    assert data['configuration']['managers'] == [
        {'name': 'fuel-agent', 'version': '1.2'}]


@pytest.fixture
def loops(tmp_path):
    if os.geteuid() != 0 or not shutil.which('losetup'):
        pytest.skip('needs root and loop devices')
    attached = []
    try:
        for n, size in enumerate((5 * GiB, 7 * GiB)):
            image = tmp_path / ('disk%d.img' % n)
            with open(image, 'wb') as f:
                f.truncate(size)  # sparse
            attached.append((subprocess.run(
                ['losetup', '-f', '--show', str(image)], check=True,
                capture_output=True, text=True).stdout.strip(), size))
        yield attached
    finally:
        for device, _size in attached:
            subprocess.run(['losetup', '-d', device], check=False)


def test_collector_on_this_machine(loops):
    inv, failures = inventory.collect(agent_runner.Runner(), {})
    assert failures == []
    disks = {d['name']: d for d in inv['disks']}
    for device, size in loops:
        assert disks[device]['size'] == size
        assert set(disks[device]) >= {
            'name', 'size', 'model', 'serial', 'wwn', 'wwn_with_extension',
            'wwn_vendor_extension', 'vendor', 'rotational', 'hctl',
            'by_path'}
    assert inv['cpu']['count'] == os.cpu_count()
    with open('/proc/meminfo') as f:
        total_kib = int(f.readline().split()[1])
    assert inv['memory']['total'] == total_kib * 1024
    assert inv['memory']['physical_mb'] * 1024 >= total_kib
    assert inv['boot']['current_boot_mode'] == (
        'uefi' if os.path.isdir('/sys/firmware/efi') else 'bios')
    json.dumps(inv)
