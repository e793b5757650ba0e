"""The partitioning schemes the lab deploys, for its VMs' two disks
(matched by the serials :mod:`virt` gives them).

``raid1_lvm``: on each disk a BIOS boot partition, an ESP and a RAID
member; RAID1 over the members holds one LVM volume group with root,
swap and a data volume mounted at /srv/data. ``keep_data`` marks the data
volume (and its file system) to be kept by the next deploy.
"""

import copy

from lab import settings

DATA_MOUNT = '/srv/data'


def raid1_lvm(boot_mode='bios', keep_data=False, root_size='2 GiB'):
    storage = []
    for n in (0, 1):
        storage.append({'type': 'disk', 'id': 'disk%d' % n, 'table': 'gpt',
                        'match': {'serial': settings.DISK_SERIAL % n}})
    for n in (0, 1):
        storage += [
            {'type': 'partition', 'id': 'bios%d' % n, 'device': 'disk%d' % n,
             'size': '1 MiB', 'flags': ['bios_grub']},
            {'type': 'partition', 'id': 'esp%d' % n, 'device': 'disk%d' % n,
             'size': '64 MiB', 'flags': ['esp']},
            {'type': 'partition', 'id': 'pv%d' % n, 'device': 'disk%d' % n,
             'size': 'remaining', 'flags': ['raid']},
        ]
    storage += [
        {'type': 'raid', 'id': 'md-system', 'name': 'system', 'level': 1,
         'devices': ['pv0', 'pv1']},
        {'type': 'volume_group', 'id': 'vg0', 'name': 'system',
         'devices': ['md-system']},
        {'type': 'logical_volume', 'id': 'lv-root', 'name': 'root',
         'volume_group': 'vg0', 'size': root_size},
        {'type': 'logical_volume', 'id': 'lv-swap', 'name': 'swap',
         'volume_group': 'vg0', 'size': '256 MiB'},
        {'type': 'logical_volume', 'id': 'lv-data', 'name': 'data',
         'volume_group': 'vg0', 'size': '512 MiB', 'keep_data': keep_data},
        {'type': 'filesystem', 'id': 'fs-esp0', 'device': 'esp0',
         'fstype': 'vfat', 'mount_point': '/boot/efi'},
        {'type': 'filesystem', 'id': 'fs-esp1', 'device': 'esp1',
         'fstype': 'vfat'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'lv-root',
         'fstype': 'ext4', 'label': 'root', 'mount_point': '/'},
        {'type': 'filesystem', 'id': 'fs-swap', 'device': 'lv-swap',
         'fstype': 'swap'},
        {'type': 'filesystem', 'id': 'fs-data', 'device': 'lv-data',
         'fstype': 'ext4', 'label': 'data', 'mount_point': DATA_MOUNT,
         'keep_data': keep_data},
    ]
    return {'version': 1, 'storage': storage,
            'bootloader': {'mode': boot_mode}}


def too_big(boot_mode='bios'):
    """raid1_lvm with a root volume larger than the disks."""
    return raid1_lvm(boot_mode, root_size='40 GiB')


def with_images(scheme, images):
    """``scheme`` listing ``images`` (the scheme then carries the OS
    image itself instead of instance_info's)."""
    scheme = copy.deepcopy(scheme)
    scheme['images'] = list(images)
    return scheme
