"""Partitioning schemes the QEMU tests provision, for the guest's disks
(matched by the serials :mod:`qemu_guest` gives them)."""

import os
import sys

import qemu_guest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..',
                                'tools'))
from lab import schemes  # noqa: E402

# Two disks, GPT, a BIOS boot partition and an ESP on each, RAID1 over the
# rest holding one LVM PV with root, var (xfs) and swap: the lab's shape.
RAID1_LVM = schemes.mirrored_lvm(qemu_guest.DISK_SERIAL, [
    schemes.Volume('root', '1 GiB', 'ext4', '/'),
    schemes.Volume('var', '512 MiB', 'xfs', '/var'),
    schemes.Volume('swap', '256 MiB', 'swap'),
])


def with_root_image(scheme, url, sha256):
    """``scheme`` with a zstd fs_image (agent/testimages) as its root
    file system."""
    return dict(scheme, images=[{
        'id': 'os', 'url': url, 'format': 'fs_image',
        'compression': 'zstd', 'target': 'fs-root',
        'checksum': {'algorithm': 'sha256', 'value': sha256}}])


def with_data_volume(scheme, keep_data):
    """``scheme`` with a ``data`` logical volume (ext4 on /data) in the
    same volume group, kept when ``keep_data``. Only the volume carries
    keep_data: its file system must be kept through it."""
    volume = schemes.Volume('data', '256 MiB', 'ext4', '/data')
    return dict(scheme, storage=scheme['storage'] + [
        schemes.logical_volume(volume._replace(keep_data=keep_data)),
        schemes.filesystem(volume)])


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


# Every RAID level the scheme offers, built once for real (issue: only
# RAID1 was ever created in a guest): small GPT partitions named after
# their ids on the guest's three disks, arrays of level 0, 5 with a
# spare, 6, and 10 with a spare, and a root file system so the scheme is
# complete. Members of one array may share a disk here: the test checks
# what mdadm builds, not redundancy.
RAID_LEVEL_MEMBERS = {
    # level: (array name, members, spares)
    0: ('level0', ['r0-d0', 'r0-d1'], []),
    5: ('level5', ['r5-d0', 'r5-d1', 'r5-d2'], ['r5s-d2']),
    6: ('level6', ['r6-d0', 'r6-d1', 'r6-d2', 'r6b-d2'], []),
    10: ('level10', ['r10-d0', 'r10-d1', 'r10-d2', 'r10b-d2'], ['r10s-d1']),
}
RAID_MEMBER_MIB = 96


def raid_levels():
    storage = [{'type': 'disk', 'id': 'disk%d' % n, 'table': 'gpt',
                'match': {'serial': qemu_guest.DISK_SERIAL % n}}
               for n in range(3)]
    storage.append({'type': 'partition', 'id': 'root', 'name': 'root',
                    'device': 'disk0', 'size': '256 MiB'})
    for _name, members, spares in RAID_LEVEL_MEMBERS.values():
        for part in members + spares:
            storage.append({'type': 'partition', 'id': part, 'name': part,
                            'device': 'disk' + part[-1],
                            'size': '%d MiB' % RAID_MEMBER_MIB,
                            'flags': ['raid']})
    for level, (name, members, spares) in RAID_LEVEL_MEMBERS.items():
        array = {'type': 'raid', 'id': name, 'name': name, 'level': level,
                 'devices': members}
        if spares:
            array['spares'] = spares
        storage.append(array)
    storage.append({'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
                    'fstype': 'ext4', 'mount_point': '/'})
    return {'version': 1, 'storage': storage}
