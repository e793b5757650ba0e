"""Real ``provision`` in a ramdisk guest: two disks, GPT with a BIOS boot
partition and an ESP on each, RAID1 over the rest holding an LVM PV, and
a volume group with root, var and swap. The third disk, named by no
scheme, must come out byte-identical.

No OS image is written here (that, GRUB and booting the installed disks
need the test OS images), so the run stops after the file systems:
``--steps discover,wipe,partition,raid,lvm,filesystems``.
"""

import hashlib
import json
import subprocess
import time

import pytest
import qemu_guest
import qemu_layouts

from fa_agent import input_format

pytestmark = pytest.mark.qemu

STEPS = 'discover,wipe,partition,raid,lvm,filesystems'
STATUS = '/run/fa-agent/status.json'
MiB = 1024 ** 2
# Both ends of the third disk, where partition tables and RAID or LVM
# metadata would go if it were touched, carry a pattern.
ENDS = 'dd if=/dev/vdc bs=1M count=4 status=none | sha256sum; ' \
       'dd if=/dev/vdc bs=1M count=4 skip=$(($(blockdev --getsize64 ' \
       '/dev/vdc) / 1048576 - 4)) status=none | sha256sum'


@pytest.fixture(scope='module')
def provisioned(ramdisk, tmp_path_factory):
    """A guest after ``provision``, with what the tests look at."""
    vm = qemu_guest.Guest(ramdisk['kernel'], ramdisk['initramfs'],
                          str(tmp_path_factory.mktemp('provision')))
    vm.create_disks()
    third = vm.disk_paths[2]
    end = int(vm.disk_size.rstrip('G')) * 1024 * MiB - 4 * MiB
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 4M',
                    '-c', 'write -P 0xa5 %d 4M' % end, third],
                   check=True, capture_output=True)
    result = {'guest': vm, 'third_file': third,
              'third_file_before': qemu_guest.file_sha256(third)}
    with qemu_guest.booted(vm, 'provision guest'):
        if not vm.has_command('provision'):
            pytest.skip('the agent in the ramdisk has no provision command')
        result['third_before'] = vm.run(ENDS)[1]
        document = input_format.build(qemu_layouts.RAID1_LVM,
                                      node_name='qemu-guest')
        vm.put_text(json.dumps(document), '/tmp/provision.json')
        started = time.monotonic()
        result['code'], _, result['err'] = vm.run(
            'provision --debug --steps %s --input-data-file '
            '/tmp/provision.json' % STEPS, check=False)
        qemu_guest.TIMINGS.append(('provision RAID1 + LVM in the guest',
                                   time.monotonic() - started))
        result['status'] = vm.run('cat %s' % STATUS, check=False)[1]
        result['third_after'] = vm.run(ENDS)[1]
        yield result


def test_provision_succeeds(provisioned):
    assert provisioned['code'] == 0, provisioned['err'][-4000:]
    status = json.loads(provisioned['status'])
    assert status['state'] == 'succeeded'
    assert status['exit_code'] == 0
    assert set(STEPS.split(',')) <= set(status['steps_done'])


def test_disks_have_the_partitions(provisioned):
    vm = provisioned['guest']
    for disk in ('/dev/vda', '/dev/vdb'):
        _, out, _ = vm.run('sgdisk --print %s' % disk)
        lines = [line.split() for line in out.splitlines()
                 if line.strip()[:1].isdigit()]
        # number, start, end, size, unit, code: EF02 bios_grub, EF00 ESP,
        # FD00 Linux RAID
        assert [(fields[0], fields[5]) for fields in lines] == [
            ('1', 'EF02'), ('2', 'EF00'), ('3', 'FD00')], out
        _, fstype, _ = vm.run('blkid -o value -s TYPE %s2' % disk)
        assert fstype.strip() == 'vfat'


def test_raid1_is_active_over_both_disks(provisioned):
    vm = provisioned['guest']
    _, mdstat, _ = vm.run('cat /proc/mdstat')
    arrays = [line for line in mdstat.splitlines() if line.startswith('md')]
    assert len(arrays) == 1, mdstat
    assert 'active raid1' in arrays[0]
    assert sorted(word.split('[')[0] for word in arrays[0].split()
                  if word.startswith('vd')) == ['vda3', 'vdb3']
    _, detail, _ = vm.run('mdadm --detail /dev/md/system')
    assert 'Raid Devices : 2' in detail


def test_volume_group_holds_root_var_and_swap(provisioned):
    vm = provisioned['guest']
    _, pvs, _ = vm.run('pvs --noheadings -o pv_name,vg_name')
    pv, vg = pvs.split()
    assert vg == 'system'
    _, real, _ = vm.run('readlink -f %s /dev/md/system' % pv)
    assert len(set(real.split())) == 1, real
    _, lvs, _ = vm.run('lvs --noheadings --units m --nosuffix '
                       '-o lv_name,lv_size system')
    sizes = {name: float(size) for name, size in
             (line.split() for line in lvs.splitlines())}
    assert sizes == {'root': 1024.0, 'var': 512.0, 'swap': 256.0}
    for lv, fstype in (('root', 'ext4'), ('var', 'xfs'), ('swap', 'swap')):
        _, out, _ = vm.run('blkid -o value -s TYPE /dev/system/%s' % lv)
        assert out.strip() == fstype


def test_third_disk_untouched(provisioned):
    assert provisioned['third_after'] == provisioned['third_before']
    # the pattern written before boot was read back, not zeros
    zeros = hashlib.sha256(bytes(4 * MiB)).hexdigest()
    assert zeros not in provisioned['third_before']
    # Last test of the module: power off, then the file holds everything
    # the guest ever wrote to the disk.
    provisioned['guest'].stop()
    assert qemu_guest.file_sha256(provisioned['third_file']) == \
        provisioned['third_file_before']
