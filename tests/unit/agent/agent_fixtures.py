"""Sample schemes and a scripted node for the agent's unit tests.

The node's disks are what ``lsblk`` would print; every other command is
recorded by RecordingRunner, whose replies script what the disks hold.
"""

import json

from fa_agent import input_format
from fa_agent import runner as agent_runner
from fa_agent import steps
from fa_agent.steps import context

GiB = 1024 ** 3
LSBLK_DISKS = ('lsblk', '--json', '--bytes', '--nodeps')


def lsblk(*disks):
    """lsblk --nodeps JSON for (path, size in GiB) pairs."""
    return json.dumps({'blockdevices': [
        {'name': p.rsplit('/', 1)[1], 'path': p, 'size': size * GiB,
         'type': 'disk', 'rota': False, 'ro': False} for p, size in disks]})


def request(scheme, **kwargs):
    return input_format.parse(input_format.build(scheme, **kwargs))


def make_context(scheme, disks=(('/dev/sda', 20), ('/dev/sdb', 20)),
                 replies=None, boot_mode='bios', kernel_params='',
                 configdrive=None, status=None):
    replies = dict(replies or {})
    replies.setdefault(LSBLK_DISKS, lsblk(*disks))
    rec = agent_runner.RecordingRunner(replies)
    req = request(scheme, boot_mode=boot_mode, kernel_params=kernel_params,
                  configdrive=configdrive)
    return context.Context(req, rec, status=status, target_dir='/target')


def run_scheme(scheme, names=steps.ORDER, **kwargs):
    ctx = make_context(scheme, **kwargs)
    steps.run(ctx, steps.selected(names))
    return ctx.runner


def commands(rec):
    """The commands, without plan notes, as argument tuples."""
    return [c for c in rec.commands if c[0] != '#']


def one_disk_gpt():
    return {'storage': [
        {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'bios', 'device': 'd0',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'root', 'device': 'd0',
         'size': '10 GiB'},
        {'type': 'partition', 'id': 'swap', 'device': 'd0',
         'size': '1 GiB', 'flags': ['swap']},
        {'type': 'partition', 'id': 'data', 'device': 'd0',
         'size': 'remaining', 'name': 'data'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/', 'label': 'root',
         'mkfs_options': ['-E', 'lazy_itable_init=1']},
        {'type': 'filesystem', 'id': 'fs-swap', 'device': 'swap',
         'fstype': 'swap'},
        {'type': 'filesystem', 'id': 'fs-data', 'device': 'data',
         'fstype': 'xfs', 'mount_point': '/srv', 'label': 'data',
         'mount_options': 'noatime'},
    ], 'bootloader': {'mode': 'bios'}}


def msdos():
    return {'storage': [
        {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'},
         'table': 'msdos'},
        {'type': 'partition', 'id': 'boot', 'device': 'd0',
         'size': '512 MiB', 'flags': ['boot']},
        {'type': 'partition', 'id': 'root', 'device': 'd0',
         'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-boot', 'device': 'boot',
         'fstype': 'ext2', 'mount_point': '/boot'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'btrfs', 'mount_point': '/'},
    ], 'bootloader': {'mode': 'bios'}}


def raid1_lvm():
    """The example of the issue: two disks, RAID 1, LVM on top."""
    return {'version': 1, 'storage': [
        {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'},
         'table': 'gpt'},
        {'type': 'disk', 'id': 'd1', 'match': {'name': '/dev/sdb'},
         'table': 'gpt'},
        {'type': 'partition', 'id': 'd0-bios', 'device': 'd0',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'd0-esp', 'device': 'd0',
         'size': '256 MiB', 'flags': ['esp']},
        {'type': 'partition', 'id': 'd0-raid', 'device': 'd0',
         'size': 'remaining', 'flags': ['raid']},
        {'type': 'partition', 'id': 'd1-bios', 'device': 'd1',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'd1-esp', 'device': 'd1',
         'size': '256 MiB', 'flags': ['esp']},
        {'type': 'partition', 'id': 'd1-raid', 'device': 'd1',
         'size': 'remaining', 'flags': ['raid']},
        {'type': 'raid', 'id': 'md0', 'level': 1,
         'devices': ['d0-raid', 'd1-raid']},
        {'type': 'volume_group', 'id': 'vg0', 'name': 'vg0',
         'devices': ['md0']},
        {'type': 'logical_volume', 'id': 'lv-root', 'volume_group': 'vg0',
         'name': 'root', 'size': '4 GiB'},
        {'type': 'logical_volume', 'id': 'lv-swap', 'volume_group': 'vg0',
         'name': 'swap', 'size': '512 MiB'},
        {'type': 'logical_volume', 'id': 'lv-var', 'volume_group': 'vg0',
         'name': 'var', 'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'lv-root',
         'fstype': 'ext4', 'mount_point': '/', 'label': 'root'},
        {'type': 'filesystem', 'id': 'fs-var', 'device': 'lv-var',
         'fstype': 'xfs', 'mount_point': '/var'},
        {'type': 'filesystem', 'id': 'fs-swap', 'device': 'lv-swap',
         'fstype': 'swap'},
        {'type': 'filesystem', 'id': 'fs-esp', 'device': 'd0-esp',
         'fstype': 'vfat', 'mount_point': '/boot/efi'},
    ], 'images': [{'url': 'http://x/root.img.gz', 'format': 'fs_image',
                   'target': '/'}],
        'bootloader': {'mode': 'both'}}


def kept_lv():
    """A re-deploy that keeps the /home volume and rebuilds the rest."""
    return {'storage': [
        {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'bios', 'device': 'd0',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'root', 'device': 'd0',
         'size': '4 GiB'},
        {'type': 'partition', 'id': 'pv', 'device': 'd0',
         'size': 'remaining', 'flags': ['lvm']},
        {'type': 'volume_group', 'id': 'vg0', 'name': 'vg0',
         'devices': ['pv']},
        {'type': 'logical_volume', 'id': 'lv-tmp', 'volume_group': 'vg0',
         'name': 'tmp', 'size': '1 GiB'},
        {'type': 'logical_volume', 'id': 'lv-home', 'volume_group': 'vg0',
         'name': 'home', 'size': '8 GiB', 'keep_data': True},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/'},
        {'type': 'filesystem', 'id': 'fs-tmp', 'device': 'lv-tmp',
         'fstype': 'ext4', 'mount_point': '/tmp'},
        {'type': 'filesystem', 'id': 'fs-home', 'device': 'lv-home',
         'fstype': 'xfs', 'mount_point': '/home', 'label': 'home'},
    ], 'bootloader': {'mode': 'bios'}}


def uefi_raid_esps():
    """UEFI with an ESP on each RAID member and root on RAID 1."""
    storage = [
        {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
        {'type': 'disk', 'id': 'd1', 'match': {'name': '/dev/sdb'}}]
    for n in (0, 1):
        storage += [
            {'type': 'partition', 'id': 'esp%d' % n, 'device': 'd%d' % n,
             'size': '512 MiB', 'flags': ['esp']},
            {'type': 'partition', 'id': 'r%d' % n, 'device': 'd%d' % n,
             'size': 'remaining', 'flags': ['raid']}]
    storage += [
        {'type': 'raid', 'id': 'md0', 'level': 1, 'devices': ['r0', 'r1'],
         'name': 'root'},
        {'type': 'filesystem', 'id': 'fs-esp0', 'device': 'esp0',
         'fstype': 'vfat', 'mount_point': '/boot/efi', 'label': 'ESP0'},
        {'type': 'filesystem', 'id': 'fs-esp1', 'device': 'esp1',
         'fstype': 'vfat', 'label': 'ESP1', 'fstab': False},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'md0',
         'fstype': 'ext4', 'mount_point': '/'}]
    return {'storage': storage, 'bootloader': {'mode': 'uefi'}}


def parted_print(disk, size_mib, label, partitions):
    """``parted -s -m DISK unit B print`` for (start MiB, end MiB, fs)."""
    mib = 1024 * 1024
    lines = ['BYT;', '%s:%dB:scsi:512:512:%s:Disk:;' % (disk, size_mib * mib,
                                                       label)]
    for number, (start, end, fstype) in enumerate(partitions, 1):
        lines.append('%d:%dB:%dB:%dB:%s::;' % (
            number, start * mib, end * mib - 1, (end - start) * mib, fstype))
    return '\n'.join(lines) + '\n'


def parted_print_cmd(disk):
    return ('parted', '-s', '-m', disk, 'unit', 'B', 'print')


def blkid_cmd(device):
    return ('blkid', '-p', '-o', 'export', device)


def kept_lv_disk():
    """Replies for a disk that holds what kept_lv() keeps."""
    return {
        parted_print_cmd('/dev/sda'): parted_print(
            '/dev/sda', 20480, 'gpt',
            [(1, 2, ''), (2, 4098, 'ext4'), (4098, 20479, '')]),
        blkid_cmd('/dev/sda3'): 'TYPE=LVM2_member\nUUID=pv-uuid\n',
    }
