"""The whole way, for real: ``provision`` (all steps) in the ramdisk,
then the installed system boots from its disks with no ramdisk and no
kernel argument, and its boot marker (agent/testimages, ``FA-MARKER``
on the serial console) shows how it came up.

One machine with three virtio disks goes through, in order:

1. a ramdisk boot that writes the whole-disk raw image to the first disk
   with a configdrive partition after it, then lays out RAID1 + LVM
   (root, var, swap) on the first two disks with the file-system image on
   root, boot mode BIOS;
2. a boot from its disks with SeaBIOS;
3. a ramdisk boot that lays out the same scheme plus a data volume, boot
   mode UEFI, puts a file on the data volume, and provisions again with
   the data volume marked keep_data;
4. a boot from its disks with OVMF (UEFI).

The images come over HTTP from a server on 127.0.0.1 (see
:class:`qemu_guest.ImageServer` for how the guest reaches it). The third
disk, named by no scheme, is compared byte for byte before 1 and after 4.
"""

import contextlib
import json
import os
import subprocess
import time
import uuid

import pytest
import qemu_guest
import qemu_layouts

from fa_agent import input_format
from fa_agent import steps

pytestmark = pytest.mark.qemu

STATUS = '/run/fa-agent/status.json'
# Every step a provisioning run takes, in order (the agent's own list).
ALL_STEPS = tuple(steps.selected(steps.ORDER))
MiB = 1024 ** 2
DISK_SIZE = '3G'


class Machine:
    """Three disks that outlive the guests booted with them, the images
    and the server the guests download them from."""

    def __init__(self, ramdisk, images, server, workdir):
        self.ramdisk = ramdisk
        self.images = {a['name']: a for a in images['artifacts']}
        self.server = server
        self.workdir = workdir
        self.disks = [os.path.join(workdir, 'disk%d.qcow2' % n)
                      for n in range(3)]
        for path in self.disks:
            qemu_guest.create_disk(path, DISK_SIZE)
        # Both ends of the third disk, where a table or RAID/LVM metadata
        # would go, carry a pattern; the rest stays unallocated.
        end = int(DISK_SIZE.rstrip('G')) * 1024 * MiB - 4 * MiB
        subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 4M',
                        '-c', 'write -P 0xa5 %d 4M' % end, self.disks[2]],
                       check=True, capture_output=True)
        self.third_before = qemu_guest.file_sha256(self.disks[2])
        self.boots = 0

    def url(self, name):
        return self.server.url(os.path.basename(self.images[name]['path']))

    def sha256(self, name):
        return self.images[name]['sha256']

    def _workdir(self, what):
        self.boots += 1
        path = os.path.join(self.workdir, '%d-%s' % (self.boots, what))
        os.makedirs(path)
        return path

    @contextlib.contextmanager
    def ramdisk_boot(self, what):
        vm = qemu_guest.Guest(self.ramdisk['kernel'],
                              self.ramdisk['initramfs'],
                              self._workdir('ramdisk'),
                              disk_paths=self.disks,
                              image_port=self.server.port)
        with qemu_guest.booted(vm, what) as vm:
            yield vm

    def boot_installed(self, firmware, what):
        """Boot the disks with ``firmware`` and no kernel; the marker."""
        vm = qemu_guest.Guest(None, None, self._workdir(firmware),
                              disk_paths=self.disks, memory_mib=1024,
                              firmware=firmware)
        vm.start()
        try:
            marker = vm.wait_for_marker()
        finally:
            vm.stop()
        qemu_guest.TIMINGS.append(('%s: QEMU start to marker' % what,
                                   vm.timings['qemu start to marker']))
        return marker


def provision(vm, scheme, what, boot_mode='bios', kernel_params='',
              configdrive=None):
    """Run ``provision`` (every step) in ``vm``; what the tests look at.
    """
    document = input_format.build(scheme, node_name='qemu-guest',
                                  boot_mode=boot_mode,
                                  kernel_params=kernel_params,
                                  configdrive=configdrive)
    vm.put_text(json.dumps(document), '/tmp/provision.json')
    started = time.monotonic()
    code, _, err = vm.run('provision --debug --input-data-file '
                          '/tmp/provision.json', timeout=1800, check=False)
    seconds = time.monotonic() - started
    qemu_guest.TIMINGS.append(('provision: %s' % what, seconds))
    # the agent's log, for a person reading a failure
    with open(os.path.join(vm.workdir, 'provision-%s.log' % '-'.join(
            what.replace(',', ' ').split())), 'w') as f:
        f.write(err)
    status = json.loads(vm.run('cat %s' % STATUS)[1])
    assert code == 0, '%s failed (%d):\n%s' % (what, code, err[-6000:])
    assert status['state'] == 'succeeded'
    assert list(status['steps_done']) == list(ALL_STEPS)
    return status['result']['devices']


def blkid(vm, device, tag):
    return vm.run('blkid -p -o value -s %s %s' % (tag, device))[1].strip()


def mounts_by_target(marker):
    return {m['target']: m for m in marker['mounts']}


def swap_types(marker):
    """Types of the active swap areas (/proc/swaps after its header)."""
    return [line.split()[1] for line in marker['swaps'].splitlines()[1:]]


def md_arrays(marker):
    lines = marker['mdstat'].splitlines()
    return [(line, lines[n + 1]) for n, line in enumerate(lines)
            if line.startswith('md')]


def assert_raid1_and_lvm(marker, volumes):
    """One active RAID1 over the first two disks' third partitions, in
    sync or resyncing with both members up, and the volumes wanted."""
    arrays = md_arrays(marker)
    assert len(arrays) == 1, marker['mdstat']
    array, detail = arrays[0]
    assert ' : active raid1 ' in array, marker['mdstat']
    assert sorted(word.split('[')[0] for word in array.split()
                  if word.startswith('vd')) == ['vda3', 'vdb3']
    assert detail.rstrip().endswith('[2/2] [UU]'), marker['mdstat']
    assert sorted((lv['vg_name'], lv['lv_name']) for lv in marker['lvs']) \
        == sorted(('system', name) for name in volumes)


def assert_booted_from_disk(marker, boot_mode, kernel_param):
    # GRUB sets BOOT_IMAGE; the ramdisk's parameters must be absent.
    cmdline = marker['cmdline'].split()
    assert cmdline[0].startswith('BOOT_IMAGE=/boot/vmlinuz-'), cmdline
    assert 'root=/dev/mapper/system-root' in cmdline
    assert kernel_param in cmdline
    assert not [p for p in cmdline if p.startswith(('fa-ssh-key=',
                                                    'BOOTIF='))]
    assert marker['boot_mode'] == boot_mode


@pytest.fixture(scope='module')
def machine(ramdisk, test_images, tmp_path_factory):
    directory = os.path.dirname(test_images['artifacts'][0]['path'])
    with qemu_guest.ImageServer(directory) as server:
        yield Machine(ramdisk, test_images, server,
                      str(tmp_path_factory.mktemp('installed')))


@pytest.fixture(scope='module')
def bios_install(machine):
    """Step 1: the whole-disk image with a configdrive, then RAID1 + LVM
    for BIOS, in one ramdisk boot."""
    result = {}
    with machine.ramdisk_boot('ramdisk boot 1') as vm:
        configdrive = {'meta_data': {'uuid': str(uuid.uuid4()),
                                     'hostname': 'fa-whole-disk'}}
        result['whole_disk'] = devices = provision(
            vm, qemu_layouts.whole_disk(machine.url('whole_disk'),
                                        machine.sha256('whole_disk')),
            'whole-disk raw image + configdrive', configdrive=configdrive)
        part = devices['configdrive']['path']
        result['configdrive_blkid'] = vm.run('blkid -p -o export %s'
                                             % part)[1]
        result['whole_disk_table'] = vm.run('sgdisk --print /dev/vda')[1]
        result['whole_disk_root_uuid'] = blkid(vm, '/dev/vda3', 'UUID')
        vm.run('mkdir -p /mnt/cd && mount -o ro %s /mnt/cd' % part)
        result['meta_data'] = json.loads(vm.run(
            'cat /mnt/cd/openstack/latest/meta_data.json; umount /mnt/cd')[1])
        result['configdrive'] = configdrive
        scheme = qemu_layouts.with_root_image(
            qemu_layouts.RAID1_LVM, machine.url('fs_image'),
            machine.sha256('fs_image'))
        result['devices'] = provision(vm, scheme, 'RAID1 + LVM, BIOS',
                                      kernel_params='fa_test=bios')
        result['tables'] = [vm.run('sgdisk --print %s' % disk)[1]
                            for disk in ('/dev/vda', '/dev/vdb')]
        result['lvs'] = vm.run('lvs --noheadings --units m --nosuffix '
                               '-o lv_name,lv_size system')[1]
        result['md_detail'] = vm.run('mdadm --detail /dev/md/system')[1]
    return result


@pytest.fixture(scope='module')
def bios_boot(machine, bios_install):
    """Step 2."""
    return machine.boot_installed('bios', 'installed system, SeaBIOS')


@pytest.fixture(scope='module')
def uefi_install(machine, bios_boot):
    """Step 3: on the disks the BIOS system booted from."""
    result = {'token': uuid.uuid4().hex}
    scheme = qemu_layouts.with_root_image(
        qemu_layouts.RAID1_LVM, machine.url('fs_image'),
        machine.sha256('fs_image'))
    fresh = qemu_layouts.with_data_volume(scheme, keep_data=False)
    kept = qemu_layouts.with_data_volume(scheme, keep_data=True)
    with machine.ramdisk_boot('ramdisk boot 2') as vm:
        result['first'] = provision(vm, fresh, 'RAID1 + LVM + data, UEFI',
                                    boot_mode='uefi',
                                    kernel_params='fa_test=uefi')
        vm.run('mkdir -p /mnt/data /mnt/root '
               '&& mount /dev/system/data /mnt/data '
               '&& echo %s > /mnt/data/marker '
               '&& mount /dev/system/root /mnt/root '
               '&& touch /mnt/root/from-the-first-deploy '
               '&& umount /mnt/data /mnt/root' % result['token'])
        result['root_uuid_before'] = blkid(vm, '/dev/system/root', 'UUID')
        result['data_uuid_before'] = blkid(vm, '/dev/system/data', 'UUID')
        result['second'] = provision(
            vm, kept, 'again, data volume kept, UEFI', boot_mode='uefi',
            kernel_params='fa_test=uefi')
        result['root_uuid_after'] = blkid(vm, '/dev/system/root', 'UUID')
        result['data_uuid_after'] = blkid(vm, '/dev/system/data', 'UUID')
        result['data_file'] = vm.run(
            'mount -o ro /dev/system/data /mnt/data '
            '&& cat /mnt/data/marker; umount /mnt/data')[1].strip()
        result['old_root_file'] = vm.run(
            'mount -o ro /dev/system/root /mnt/root '
            '&& ls /mnt/root; umount /mnt/root')[1].split()
    return result


@pytest.fixture(scope='module')
def uefi_boot(machine, uefi_install):
    """Step 4."""
    return machine.boot_installed('uefi', 'installed system, OVMF')


def test_whole_disk_image_with_configdrive(machine, bios_install):
    blkid_out = dict(line.split('=', 1) for line in
                     bios_install['configdrive_blkid'].splitlines())
    assert blkid_out['LABEL'] == 'config-2'
    assert blkid_out['TYPE'] == 'iso9660'
    assert bios_install['meta_data']['uuid'] == \
        bios_install['configdrive']['meta_data']['uuid']
    # The image's own three partitions came through as built, the
    # configdrive after them at the end of the disk.
    table = bios_install['whole_disk_table']
    rows = [line.split() for line in table.splitlines()
            if line.strip()[:1].isdigit()]
    assert [(r[0], r[5]) for r in rows] == [
        ('1', 'EF02'), ('2', 'EF00'), ('3', '8300'), ('4', '0700')], table
    assert bios_install['whole_disk_root_uuid'] == \
        machine.images['whole_disk']['root_uuid']
    assert '/fa-test-image.raw.zst' in machine.server.requests


def test_bios_install_boots_with_seabios(bios_install, bios_boot):
    devices = bios_install['devices']
    assert_booted_from_disk(bios_boot, 'bios', 'fa_test=bios')
    mounts = mounts_by_target(bios_boot)
    assert (mounts['/']['source'], mounts['/']['fstype'],
            mounts['/']['uuid']) == ('/dev/mapper/system-root', 'ext4',
                                     devices['fs-root']['uuid'])
    assert (mounts['/var']['source'], mounts['/var']['fstype'],
            mounts['/var']['uuid']) == ('/dev/mapper/system-var', 'xfs',
                                        devices['fs-var']['uuid'])
    assert (mounts['/boot/efi']['source'], mounts['/boot/efi']['uuid']) \
        == ('/dev/vda2', devices['fs-esp0']['uuid'])
    assert swap_types(bios_boot) == ['partition']
    assert_raid1_and_lvm(bios_boot, ('root', 'var', 'swap'))


def test_raid1_lvm_layout_is_as_planned(bios_install):
    # On the disks before any reboot: GPT with bios_grub (EF02), an ESP
    # (EF00) and Linux RAID (FD00) on both, a two-device RAID1, and the
    # logical volumes at the scheme's sizes.
    for table in bios_install['tables']:
        rows = [line.split() for line in table.splitlines()
                if line.strip()[:1].isdigit()]
        assert [(r[0], r[5]) for r in rows] == [
            ('1', 'EF02'), ('2', 'EF00'), ('3', 'FD00')], table
    assert 'Raid Devices : 2' in bios_install['md_detail']
    sizes = {name: float(size) for name, size in
             (line.split() for line in bios_install['lvs'].splitlines())}
    assert sizes == {'root': 1024.0, 'var': 512.0, 'swap': 256.0}


def test_fs_image_gets_its_own_uuid(machine, bios_install):
    # Every deploy of the same file-system image must be told apart:
    # fstab and GRUB find root by UUID.
    assert bios_install['devices']['fs-root']['uuid'] != \
        machine.images['fs_image']['uuid']


def test_kept_data_volume_survives_reprovisioning(uefi_install):
    assert uefi_install['data_file'] == uefi_install['token']
    assert uefi_install['data_uuid_after'] == \
        uefi_install['data_uuid_before']
    assert uefi_install['second']['fs-data'].get('kept') is True
    # root is a new file system: new UUID, nothing of the first deploy
    assert uefi_install['root_uuid_after'] != \
        uefi_install['root_uuid_before']
    assert uefi_install['second']['fs-root']['uuid'] == \
        uefi_install['root_uuid_after']
    assert 'from-the-first-deploy' not in uefi_install['old_root_file']
    assert 'etc' in uefi_install['old_root_file']


def test_uefi_install_boots_with_ovmf(uefi_install, uefi_boot):
    devices = uefi_install['second']
    assert_booted_from_disk(uefi_boot, 'uefi', 'fa_test=uefi')
    mounts = mounts_by_target(uefi_boot)
    for target, fs_id in (('/', 'fs-root'), ('/var', 'fs-var'),
                          ('/data', 'fs-data'), ('/boot/efi', 'fs-esp0')):
        assert mounts[target]['uuid'] == devices[fs_id]['uuid'], target
    assert mounts['/data']['source'] == '/dev/mapper/system-data'
    assert swap_types(uefi_boot) == ['partition']
    assert_raid1_and_lvm(uefi_boot, ('root', 'var', 'swap', 'data'))


def test_third_disk_is_byte_identical(machine, uefi_boot):
    # Every guest has stopped: the file holds all they ever wrote, and
    # any write would have changed it (allocation or data).
    assert qemu_guest.file_sha256(machine.disks[2]) == machine.third_before
