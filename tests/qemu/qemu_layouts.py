"""Partitioning schemes the QEMU tests provision, for the guest's disks
(matched by the serials :mod:`qemu_guest` gives them)."""

import qemu_guest

# Two disks, GPT, a BIOS boot partition and an ESP on each, RAID1 over the
# rest holding one LVM PV with root, var and swap.
RAID1_LVM = {
    'version': 1,
    'storage': [
        {'type': 'disk', 'id': 'disk0', 'table': 'gpt',
         'match': {'serial': qemu_guest.DISK_SERIAL % 0}},
        {'type': 'disk', 'id': 'disk1', 'table': 'gpt',
         'match': {'serial': qemu_guest.DISK_SERIAL % 1}},
        {'type': 'partition', 'id': 'bios0', 'device': 'disk0',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'esp0', 'device': 'disk0',
         'size': '64 MiB', 'flags': ['esp']},
        {'type': 'partition', 'id': 'pv0', 'device': 'disk0',
         'size': 'remaining', 'flags': ['raid']},
        {'type': 'partition', 'id': 'bios1', 'device': 'disk1',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'esp1', 'device': 'disk1',
         'size': '64 MiB', 'flags': ['esp']},
        {'type': 'partition', 'id': 'pv1', 'device': 'disk1',
         'size': 'remaining', 'flags': ['raid']},
        {'type': 'raid', 'id': 'md-system', 'name': 'system', 'level': 1,
         'devices': ['pv0', 'pv1']},
        {'type': 'volume_group', 'id': 'vg0', 'name': 'system',
         'devices': ['md-system']},
        {'type': 'logical_volume', 'id': 'lv-root', 'name': 'root',
         'volume_group': 'vg0', 'size': '1 GiB'},
        {'type': 'logical_volume', 'id': 'lv-var', 'name': 'var',
         'volume_group': 'vg0', 'size': '512 MiB'},
        {'type': 'logical_volume', 'id': 'lv-swap', 'name': 'swap',
         'volume_group': 'vg0', 'size': '256 MiB'},
        {'type': 'filesystem', 'id': 'fs-esp0', 'device': 'esp0',
         'fstype': 'vfat', 'mount_point': '/boot/efi'},
        {'type': 'filesystem', 'id': 'fs-esp1', 'device': 'esp1',
         'fstype': 'vfat'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'lv-root',
         'fstype': 'ext4', 'label': 'root', 'mount_point': '/'},
        {'type': 'filesystem', 'id': 'fs-var', 'device': 'lv-var',
         'fstype': 'xfs', 'label': 'var', 'mount_point': '/var'},
        {'type': 'filesystem', 'id': 'fs-swap', 'device': 'lv-swap',
         'fstype': 'swap'},
    ],
}
