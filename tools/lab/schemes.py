"""The partitioning schemes the lab deploys, for its VMs' two disks
(matched by the serials :mod:`virt` gives them).

``mirrored_lvm`` is the general shape (also used by tests/qemu, whose
guests have the same two-disk layout): on each disk a BIOS boot
partition, an ESP and a RAID member; RAID1 over the members holds one
LVM volume group with the given volumes. ``raid1_lvm`` is the lab's
instance of it: root, swap and a data volume mounted at /srv/data;
``keep_data`` marks the data volume (and its file system) to be kept by
the next deploy.
"""

import collections
import copy

from lab import settings

DATA_MOUNT = '/srv/data'

Volume = collections.namedtuple(
    'Volume', 'name size fstype mount_point keep_data label')
Volume.__new__.__defaults__ = (None, False, None)
Volume.__doc__ = ('A logical volume and its file system; ``label`` '
                  'defaults to the name (none for swap).')


def mirrored_lvm(serial_pattern, volumes, boot_mode=None):
    """A scheme for two disks (serials ``serial_pattern % 0`` and ``% 1``)
    with RAID1 + LVM holding ``volumes``; ``boot_mode`` None leaves the
    boot loader section out (the agent then picks it)."""
    storage = [{'type': 'disk', 'id': 'disk%d' % n, 'table': 'gpt',
                'match': {'serial': serial_pattern % n}} for n in (0, 1)]
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
    ]
    storage += [logical_volume(volume) for volume in volumes]
    storage += [
        {'type': 'filesystem', 'id': 'fs-esp0', 'device': 'esp0',
         'fstype': 'vfat', 'mount_point': '/boot/efi'},
        {'type': 'filesystem', 'id': 'fs-esp1', 'device': 'esp1',
         'fstype': 'vfat'},
    ]
    storage += [filesystem(volume) for volume in volumes]
    scheme = {'version': 1, 'storage': storage}
    if boot_mode:
        scheme['bootloader'] = {'mode': boot_mode}
    return scheme


def logical_volume(volume):
    """The ``logical_volume`` item of ``volume`` in volume group vg0."""
    item = {'type': 'logical_volume', 'id': 'lv-' + volume.name,
            'name': volume.name, 'volume_group': 'vg0', 'size': volume.size}
    if volume.keep_data:
        item['keep_data'] = True
    return item


def filesystem(volume):
    """The ``filesystem`` item on ``volume``'s logical volume."""
    item = {'type': 'filesystem', 'id': 'fs-' + volume.name,
            'device': 'lv-' + volume.name, 'fstype': volume.fstype}
    if volume.fstype != 'swap':
        item['label'] = volume.label or volume.name
    if volume.mount_point:
        item['mount_point'] = volume.mount_point
    if volume.keep_data:
        item['keep_data'] = True
    return item


def raid1_lvm(boot_mode='bios', keep_data=False, root_size='2 GiB'):
    return mirrored_lvm(settings.DISK_SERIAL, [
        Volume('root', root_size, 'ext4', '/'),
        Volume('swap', '256 MiB', 'swap'),
        Volume('data', '512 MiB', 'ext4', DATA_MOUNT, keep_data),
    ], boot_mode)


def too_big(boot_mode='bios'):
    """raid1_lvm with a root volume larger than the disks."""
    return raid1_lvm(boot_mode, root_size='40 GiB')


def with_images(scheme, images):
    """``scheme`` listing ``images`` (the scheme then carries the OS
    image itself instead of instance_info's)."""
    scheme = copy.deepcopy(scheme)
    scheme['images'] = list(images)
    return scheme
