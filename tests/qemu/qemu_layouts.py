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
