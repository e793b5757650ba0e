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


def with_root_image(scheme, url, sha256):
    """``scheme`` with a zstd fs_image (agent/testimages) as its root
    file system."""
    return dict(scheme, images=[{
        'id': 'os', 'url': url, 'format': 'fs_image',
        'compression': 'zstd', 'target': 'fs-root',
        'checksum': {'algorithm': 'sha256', 'value': sha256}}])


def with_data_volume(scheme, keep_data):
    """``scheme`` with a ``data`` logical volume (ext4 on /data) in the
    same volume group, kept when ``keep_data``."""
    storage = list(scheme['storage'])
    storage.append({'type': 'logical_volume', 'id': 'lv-data',
                    'name': 'data', 'volume_group': 'vg0',
                    'size': '256 MiB', 'keep_data': keep_data})
    storage.append({'type': 'filesystem', 'id': 'fs-data',
                    'device': 'lv-data', 'fstype': 'ext4', 'label': 'data',
                    'mount_point': '/data'})
    return dict(scheme, storage=storage)


def whole_disk(url, sha256):
    """The first disk gets a zstd raw whole-disk image and, after it, a
    configdrive partition."""
    return {
        'version': 1,
        'storage': [{'type': 'disk', 'id': 'disk0', 'table': 'gpt',
                     'match': {'serial': qemu_guest.DISK_SERIAL % 0}}],
        'images': [{'id': 'os', 'url': url, 'format': 'raw',
                    'compression': 'zstd', 'target': 'disk0',
                    'checksum': {'algorithm': 'sha256', 'value': sha256}}],
        'configdrive': {'device': 'disk0', 'size': '64 MiB'},
    }
