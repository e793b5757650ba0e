#!/usr/bin/env python3
"""Builds the test OS images: a small Debian bookworm system with a
kernel, GRUB (BIOS and UEFI), mdadm and LVM, in the three forms the agent
writes, each zstd-compressed:

* ``fa-test-image.ext4.zst``: an ext4 file-system image (format
  ``fs_image``), shrunk to its contents; the agent grows it;
* ``fa-test-image.tar.zst``: a tarball of the root tree (format ``tar``);
* ``fa-test-image.raw.zst``: a whole-disk image (format ``raw``): GPT with
  a BIOS boot partition, an ESP and the root file system, GRUB installed
  for BIOS and UEFI (removable path), fstab by UUID.

At every boot the installed system prints ``FA-MARKER {json}`` on its
first serial port (mounts, swaps, /proc/mdstat, logical volumes, kernel
command line, boot mode): ``overlay/usr/local/sbin/fa-marker``.

debootstrap, the pinned-package installation and the mirror come from
the ramdisk recipe (``agent/ramdisk/build.py``). One cached stage, keyed
by a hash of this script, the ramdisk recipe, ``packages.txt``,
``overlay/`` and the mirror entries.

Run as root: ``tools/build-test-images.sh [--cache-dir DIR] [--output DIR]
[--force] [--pin] [--json]``. With ``--json`` stdout holds only the build
record (JSON); progress goes to stderr.
"""

import argparse
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(HERE)
RAMDISK_BUILD = os.path.join(AGENT_DIR, 'ramdisk', 'build.py')
PACKAGES_FILE = os.path.join(HERE, 'packages.txt')
OVERLAY_DIR = os.path.join(HERE, 'overlay')
NAME = 'fa-test-image'
STAGE = 'test-images'
UNITS = ('fa-marker.service',)
HOST_TOOLS = {'sgdisk': 'gdisk', 'partprobe': 'parted',
              'mkfs.vfat': 'dosfstools', 'mcopy': 'mtools',
              'mkfs.ext4': 'e2fsprogs', 'losetup': 'mount'}
# Each build is about 600 MiB of compressed images.
KEEP_BUILDS = 2
# Whole-disk image: BIOS boot partition, ESP, then root with this much
# room beyond the files, for the logs and journal of its first boots.
BIOS_BOOT_MIB = 1
ESP_MIB = 64
ROOT_SPARE_MIB = 256
MiB = 1024 * 1024
EFI_BINARY = 'BOOTX64.EFI'
INITRAMFS_CONF = 'etc/initramfs-tools/conf.d/fa-test-image'
# The UEFI GRUB's built-in configuration: on to the root file system's.
EFI_CONFIG = ('search --no-floppy --fs-uuid --set=root %s\n'
              'configfile ($root)/boot/grub/grub.cfg\n')


def _ramdisk_recipe():
    """agent/ramdisk/build.py as a module (it is a script, not a package):
    mirror, debootstrap, pins, chroot and cache helpers."""
    spec = importlib.util.spec_from_file_location('fa_ramdisk_build',
                                                  RAMDISK_BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PROGRAM = 'build-test-images'
    return module


ramdisk = _ramdisk_recipe()
BuildError = ramdisk.BuildError
log = ramdisk.log
run = ramdisk.run


def images_key(sources):
    """Hash of both recipes, the packages (not the comments around them),
    the overlay and the mirror entries."""
    digest = hashlib.sha256()
    ramdisk.hash_paths(digest, [os.path.abspath(__file__), RAMDISK_BUILD],
                       AGENT_DIR)
    ramdisk.hash_paths(digest, ramdisk.tree_files(OVERLAY_DIR), HERE)
    digest.update(repr(ramdisk.read_packages(PACKAGES_FILE)).encode())
    digest.update(repr(sources).encode())
    return digest.hexdigest()[:16]


def build_tree(root, sources, packages, pin):
    """The installed system's root tree; returns (versions, kernel)."""
    versions = ramdisk.bootstrap(sources, packages, root, pin)
    shutil.copytree(OVERLAY_DIR, root, dirs_exist_ok=True, symlinks=True)
    # The same modules as the ramdisk, zstd-compressed: half the size.
    kernel = ramdisk.prune_modules(root)
    with ramdisk.Chroot(root) as chroot:
        chroot.run('systemctl', 'enable', '--quiet', *UNITS)
        chroot.run('systemctl', 'disable', '--quiet',
                   *ramdisk.UNNEEDED_UNITS)
        # MODULES=most (the default): the image boots on any disk
        # controller.
        chroot.run('update-initramfs', '-c', '-k', kernel,
                   stdout=subprocess.DEVNULL)
    # From now on (the agent rebuilds it in the new system when root is
    # on RAID or LVM) only the modules of the machine it runs on: "most"
    # takes a quarter of an hour under QEMU without acceleration.
    with open(os.path.join(root, INITRAMFS_CONF), 'w') as f:
        f.write('MODULES=dep\n')
    # Every installed copy makes its own machine id at first boot.
    with open(os.path.join(root, 'etc/machine-id'), 'w'):
        pass
    dbus_id = os.path.join(root, 'var/lib/dbus/machine-id')
    if os.path.lexists(dbus_id):
        os.unlink(dbus_id)
    return versions, kernel


def tree_bytes(root):
    return int(subprocess.run(['du', '-sb', root], capture_output=True,
                              text=True, check=True).stdout.split()[0])


def make_fs_image(root, path):
    """ext4 holding ``root``, shrunk to its minimum size."""
    size_mib = tree_bytes(root) * 13 // 10 // MiB + 128
    run('mkfs.ext4', '-q', '-F', '-L', 'root', '-d', root, path,
        '%dM' % size_mib, stdout=subprocess.DEVNULL)
    run('e2fsck', '-f', '-p', path, stdout=subprocess.DEVNULL)
    run('resize2fs', '-M', path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    out = subprocess.run(['dumpe2fs', '-h', path], capture_output=True,
                         text=True, check=True).stdout
    fields = dict(line.split(':', 1) for line in out.splitlines()
                  if ':' in line)
    size = int(fields['Block count']) * int(fields['Block size'])
    os.truncate(path, size)
    return size


def make_tar(root, path):
    run('tar', '-C', root, '--numeric-owner', '--xattrs', '--acls',
        '-cf', path, '.')


class LoopDevice:
    """A partitioned image file attached to a loop device for a block;
    only the device attached here is detached again."""

    def __init__(self, path):
        self.path = path
        self.device = None

    def __enter__(self):
        self.device = run('losetup', '--find', '--show', '--partscan',
                          self.path, capture_output=True,
                          text=True).stdout.strip()
        # Some kernels scan the table only when asked again, and without
        # udev (containers) the nodes come from devtmpfs once they do.
        run('partprobe', self.device)
        return self

    def partition(self, number):
        node = '%sp%d' % (self.device, number)
        deadline = time.monotonic() + 30
        while not os.path.exists(node):
            if time.monotonic() > deadline:
                raise BuildError('%s did not appear' % node)
            time.sleep(0.2)
        return node

    def __exit__(self, *exc):
        subprocess.run(['losetup', '--detach', self.device], check=False)


def make_whole_disk(fs_image, path, work):
    """GPT disk image: BIOS boot, ESP, root from ``fs_image`` with GRUB
    for both firmware types. Returns the partition layout."""
    fs_mib = -(-os.path.getsize(fs_image) // MiB)
    root_mib = fs_mib + ROOT_SPARE_MIB
    esp_start = 1 + BIOS_BOOT_MIB
    root_start = esp_start + ESP_MIB
    # one MiB at the end for the backup GPT
    total_mib = root_start + root_mib + 1
    with open(path, 'wb') as f:
        f.truncate(total_mib * MiB)
    run('sgdisk', '--new=1:1M:+%dM' % BIOS_BOOT_MIB, '--typecode=1:EF02',
        '--change-name=1:bios', '--new=2:%dM:+%dM' % (esp_start, ESP_MIB),
        '--typecode=2:EF00', '--change-name=2:esp',
        '--new=3:%dM:+%dM' % (root_start, root_mib), '--typecode=3:8300',
        '--change-name=3:root', path, stdout=subprocess.DEVNULL)
    # sparse: the file reads back zeros where the image has them
    run('dd', 'if=' + fs_image, 'of=' + path, 'bs=1M',
        'seek=%d' % root_start, 'conv=notrunc,sparse', 'status=none')
    mnt = os.path.join(work, 'disk')
    with LoopDevice(path) as loop:
        esp, root = loop.partition(2), loop.partition(3)
        run('mkfs.vfat', '-n', 'ESP', esp, stdout=subprocess.DEVNULL)
        run('e2fsck', '-f', '-p', root, stdout=subprocess.DEVNULL)
        run('resize2fs', root, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        root_uuid, esp_uuid = (blkid(root, 'UUID'), blkid(esp, 'UUID'))
        os.makedirs(mnt)
        run('mount', root, mnt)
        try:
            with open(os.path.join(mnt, 'etc/fstab'), 'w') as f:
                f.write('# The whole-disk test image (%s).\n'
                        'UUID=%s / ext4 errors=remount-ro 0 1\n'
                        'UUID=%s /boot/efi vfat umask=0077 0 2\n'
                        % (NAME, root_uuid, esp_uuid))
            install_grub(mnt, loop.device, root, root_uuid)
            shutil.move(os.path.join(mnt, 'tmp', EFI_BINARY), work)
        finally:
            run('umount', mnt)
    # mtools writes into the FAT file system (in the image file, at the
    # ESP's offset) without mounting it: the build host's kernel may have
    # no vfat.
    esp_image = '%s@@%dM' % (path, esp_start)
    run('mmd', '-i', esp_image, '::/EFI', '::/EFI/BOOT')
    run('mcopy', '-i', esp_image, os.path.join(work, EFI_BINARY),
        '::/EFI/BOOT/' + EFI_BINARY)
    return {'table': 'gpt', 'root_uuid': root_uuid, 'esp_uuid': esp_uuid,
            'partitions': [
                {'number': 1, 'flags': ['bios_grub'],
                 'start_mib': 1, 'size_mib': BIOS_BOOT_MIB},
                {'number': 2, 'flags': ['esp'], 'fstype': 'vfat',
                 'start_mib': esp_start, 'size_mib': ESP_MIB},
                {'number': 3, 'fstype': 'ext4', 'mount_point': '/',
                 'start_mib': root_start, 'size_mib': root_mib}]}


def install_grub(mnt, disk, root_device, root_uuid):
    """GRUB for BIOS on ``disk``, and a UEFI GRUB in the chroot's /tmp
    for the ESP's removable path (``EFI/BOOT/BOOTX64.EFI``).

    The UEFI one is standalone (its modules in a memdisk) and finds the
    root file system by UUID: grub-install would want the ESP mounted,
    which needs vfat in the build host's kernel.
    """
    with open(os.path.join(mnt, 'tmp', 'fa-efi.cfg'), 'w') as f:
        f.write(EFI_CONFIG % root_uuid)
    with ramdisk.Chroot(mnt) as chroot:
        chroot.run('grub-install', '--target=i386-pc', disk,
                   stderr=subprocess.DEVNULL)
        chroot.run('grub-mkstandalone', '--format=x86_64-efi',
                   '--output=/tmp/' + EFI_BINARY, '--locales=', '--fonts=',
                   '--themes=', '--modules=part_gpt ext2',
                   'boot/grub/grub.cfg=/tmp/fa-efi.cfg')
        chroot.run('grub-mkconfig', '-o', '/boot/grub/grub.cfg',
                   stderr=subprocess.DEVNULL)
    os.unlink(os.path.join(mnt, 'tmp', 'fa-efi.cfg'))
    # grub-mkconfig names root by UUID only when /dev/disk/by-uuid has it,
    # which needs udev; a build host (or container) may have none, and
    # the loop device's name means nothing on the machine that boots.
    config = os.path.join(mnt, 'boot/grub/grub.cfg')
    with open(config) as f:
        text = f.read()
    text = text.replace('root=%s ' % root_device, 'root=UUID=%s ' % root_uuid)
    with open(config, 'w') as f:
        f.write(text)
    if 'root=UUID=%s ' % root_uuid not in text:
        raise BuildError('the whole-disk image\'s grub.cfg does not name '
                         'its root by UUID')


def blkid(device, tag):
    return subprocess.run(['blkid', '-p', '-o', 'value', '-s', tag, device],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def compress(path, out):
    run('zstd', '-q', '-T0', '-' + ramdisk.ZSTD_LEVEL, path, '-o', out)
    os.unlink(path)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(MiB), b''):
            digest.update(block)
    return digest.hexdigest()


def build_images(out_dir, sources, packages, pin):
    """Everything into ``out_dir``; returns the manifest (a dict)."""
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix='fa-test-images-',
                            dir=os.path.dirname(out_dir))
    root = os.path.join(work, 'root')
    try:
        versions, kernel = build_tree(root, sources, packages, pin)
        tree = tree_bytes(root)
        fs_image = os.path.join(work, NAME + '.ext4')
        tar_file = os.path.join(work, NAME + '.tar')
        raw_file = os.path.join(work, NAME + '.raw')
        log('file-system image, tarball and whole-disk image')
        fs_size = make_fs_image(root, fs_image)
        fs_uuid = blkid(fs_image, 'UUID')
        make_tar(root, tar_file)
        tar_size = os.path.getsize(tar_file)
        ramdisk.remove_work_dir(root)
        layout = make_whole_disk(fs_image, raw_file, work)
        raw_size = os.path.getsize(raw_file)
        log('compressing (zstd -%s)' % ramdisk.ZSTD_LEVEL)
        artifacts = []
        for name, path, fmt, size, extra in (
                ('fs_image', fs_image, 'fs_image', fs_size,
                 {'fstype': 'ext4', 'label': 'root', 'uuid': fs_uuid}),
                ('tar', tar_file, 'tar', tar_size, {}),
                ('whole_disk', raw_file, 'raw', raw_size, layout)):
            target = os.path.join(out_dir, os.path.basename(path) + '.zst')
            compress(path, target)
            artifacts.append(dict(
                name=name, file=os.path.basename(target), format=fmt,
                compression='zstd', sha256=sha256(target),
                size=os.path.getsize(target), uncompressed_size=size,
                **extra))
    finally:
        ramdisk.remove_work_dir(work)
    return {'kernel_version': kernel, 'tree_bytes': tree,
            'artifacts': artifacts, 'packages': versions,
            'build_seconds': round(time.monotonic() - started, 1)}


def build(cache_dir, force=False, pin=False):
    """Build (or reuse) the images; returns the build record (a dict)."""
    started = time.monotonic()
    if os.geteuid() != 0:
        raise BuildError('must run as root (debootstrap, chroot, losetup)')
    sources = ramdisk.apt_sources()
    packages = ramdisk.read_packages(PACKAGES_FILE)
    stage_dir = os.path.join(cache_dir, STAGE)
    os.makedirs(stage_dir, exist_ok=True)
    with open(os.path.join(cache_dir, STAGE + '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        key = images_key(sources)
        out_dir = os.path.join(stage_dir, key)
        manifest_path = os.path.join(out_dir, 'manifest.json')
        if not (pin or force) and os.path.exists(manifest_path):
            with open(manifest_path) as f:
                manifest = json.load(f)
            cached = True
            os.utime(out_dir)  # recently used: kept by prune_cache
        else:
            ramdisk.ensure_host_tools()
            ramdisk.ensure_host_tools(HOST_TOOLS)
            part = out_dir + '.part'
            shutil.rmtree(part, ignore_errors=True)
            os.makedirs(part)
            manifest = build_images(part, sources, packages, pin)
            if pin:
                ramdisk.write_pins(manifest['packages'], PACKAGES_FILE)
                # packages.txt changed, so did the key
                key = images_key(sources)
                out_dir = os.path.join(stage_dir, key)
                manifest_path = os.path.join(out_dir, 'manifest.json')
            manifest['key'] = key
            with open(os.path.join(part, 'manifest.json'), 'w') as f:
                json.dump(manifest, f, indent=2, sort_keys=True)
            shutil.rmtree(out_dir, ignore_errors=True)
            os.rename(part, out_dir)
            cached = False
        ramdisk.prune_cache(stage_dir, keep=KEEP_BUILDS)
    return record(manifest, out_dir, manifest_path, cached,
                  time.monotonic() - started)


def record(manifest, directory, manifest_path, cached, seconds):
    """What the command reports: the manifest without the package list,
    with each artifact's path."""
    result = {key: value for key, value in manifest.items()
              if key != 'packages'}
    result['artifacts'] = [dict(a, path=os.path.join(directory, a['file']))
                           for a in manifest['artifacts']]
    result.update(manifest=manifest_path, cached=cached,
                  seconds=round(seconds, 1))
    return result


def copy_to(result, directory):
    """Hard links (or copies) of the artifacts and manifest in
    ``directory``; the record then points there."""
    os.makedirs(directory, exist_ok=True)
    sources = [a['path'] for a in result['artifacts']] + [result['manifest']]
    for source in sources:
        target = os.path.join(directory, os.path.basename(source))
        if os.path.lexists(target):
            os.unlink(target)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy(source, target)
    for artifact in result['artifacts']:
        artifact['path'] = os.path.join(directory, artifact['file'])
    result['manifest'] = os.path.join(directory, 'manifest.json')


def mib(size):
    return '%.1f MiB' % (size / float(MiB))


def report(result):
    log('%s %s (kernel %s)' % ('reused' if result['cached'] else 'built',
                               result['key'], result['kernel_version']))
    for artifact in result['artifacts']:
        log('%-10s %s %s (%s uncompressed)' % (
            artifact['name'], artifact['path'], mib(artifact['size']),
            mib(artifact['uncompressed_size'])))
    log('time       %.1f s (this build: %.1f s)' % (
        result['seconds'], result['build_seconds']))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cache-dir', default=os.environ.get(
        ramdisk.CACHE_ENV, ramdisk.DEFAULT_CACHE_DIR), help='where builds '
        'are kept (default: $%s or %s)' % (ramdisk.CACHE_ENV,
                                           ramdisk.DEFAULT_CACHE_DIR))
    parser.add_argument('--output', metavar='DIR',
                        help='also put the images and manifest.json into '
                        'DIR (hard links when the file system allows)')
    parser.add_argument('--force', action='store_true',
                        help='rebuild even when a cached build matches')
    parser.add_argument('--pin', action='store_true',
                        help='install packages.txt unpinned and write the '
                        'resolved versions back into it')
    parser.add_argument('--json', action='store_true',
                        help='print the build record as JSON on stdout '
                        '(and everything else on stderr)')
    args = parser.parse_args(argv)
    out = None
    if args.json:
        # Commands run during the build inherit stdout: point it at
        # stderr so that stdout carries the JSON alone.
        out = os.fdopen(os.dup(1), 'w')
        os.dup2(2, 1)
    # a stopped build still unmounts and removes its work directories
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = build(os.path.abspath(args.cache_dir), args.force,
                       args.pin)
    except BuildError as exc:
        print('build-test-images: error: %s' % exc, file=sys.stderr)
        return 1
    if args.output:
        copy_to(result, os.path.abspath(args.output))
    report(result)
    if out is not None:
        out.write(json.dumps(result) + '\n')
        out.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
