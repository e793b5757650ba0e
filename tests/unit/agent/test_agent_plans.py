"""Exact command sequences of whole runs, recorded without disks.

RecordingRunner stands in for the disks (this machine's kernel has no md
or device-mapper, so RAID, LVM and GRUB can only be proven in the QEMU
tests of the ramdisk); replies script what lsblk, parted and blkid see.
"""

import shlex

import pytest

import agent_fixtures as fx
from fa_agent import errors
from fa_agent import steps

DISCOVER = [
    'lsblk --json --bytes --nodeps -o '
    'NAME,PATH,SIZE,TYPE,ROTA,SERIAL,WWN,VENDOR,MODEL,HCTL,RO',
    'udevadm info --query=property --name=/dev/sda',
    'udevadm info --query=property --name=/dev/sdb',
]
SETTLE = ['partprobe {0}', 'udevadm settle --timeout=60']
WIPE = ['lsblk --json --bytes -o NAME,PATH,TYPE,PKNAME {0}',
        'mdadm --examine {0}',
        'mdadm --zero-superblock --force {0}', 'wipefs --all --force {0}',
        'sgdisk --zap-all {0}'] + SETTLE
CHROOT = ['mount --bind /dev /target/dev',
          'mount -t proc proc /target/proc',
          'mount -t sysfs sysfs /target/sys',
          'mount --bind /run /target/run']
UNCHROOT = ['umount /target/run', 'umount /target/sys',
            'umount /target/proc', 'umount /target/dev']
FIND_GRUB = ("chroot /target sh -c 'command -v grub2-install || "
             "command -v grub-install'")
INITRAMFS = ("chroot /target sh -c 'if command -v update-initramfs "
             ">/dev/null; then update-initramfs -u -k all; else dracut "
             "--force --regenerate-all; fi'")
MKCONFIG = 'chroot /target grub-mkconfig -o /boot/grub/grub.cfg'
EFI = 'chroot /target grub-install --target=x86_64-efi ' \
      '--efi-directory=/boot/efi --no-nvram'


def on(lines, disk):
    return [line.format(disk) for line in lines]


def recorded(rec):
    return [shlex.join(c) for c in fx.commands(rec)]


def test_one_disk_gpt():
    rec = fx.run_scheme(fx.one_disk_gpt())
    assert recorded(rec) == DISCOVER + on(WIPE, '/dev/sda') + [
        'sgdisk --clear --new=1:1M:+1M --typecode=1:ef02 '
        '--new=2:2M:+10240M --typecode=2:8300 '
        '--new=3:10242M:+1024M --typecode=3:8200 '
        '--new=4:11266M:+9213M --typecode=4:8300 --change-name=4:data '
        '/dev/sda'] + on(SETTLE, '/dev/sda') + [
        'mkfs.ext4 -F -L root -E lazy_itable_init=1 /dev/sda2',
        'blkid -p -o export /dev/sda2',
        'mkswap -f /dev/sda3', 'blkid -p -o export /dev/sda3',
        'mkfs.xfs -f -L data /dev/sda4', 'blkid -p -o export /dev/sda4',
        'mount -t ext4 /dev/sda2 /target',
        'mount -t xfs /dev/sda4 /target/srv'] + CHROOT + [
        FIND_GRUB, 'chroot /target grub-install --target=i386-pc /dev/sda',
        MKCONFIG] + UNCHROOT + ['umount /target/srv', 'umount /target',
                                'sync']
    fstab = [c[1] for c in rec.commands if c[0] == '#'
             and c[1].startswith('write /target/etc/fstab')]
    assert fstab == ['write /target/etc/fstab:\n'
                     '# Written by fa-agent from the partitioning scheme.\n'
                     'UUID=<uuid of fs-root> / ext4 defaults 0 1\n'
                     'UUID=<uuid of fs-swap> none swap sw 0 0\n'
                     'UUID=<uuid of fs-data> /srv xfs noatime 0 2']


def test_msdos():
    rec = fx.run_scheme(fx.msdos())
    assert recorded(rec) == DISCOVER + on(WIPE, '/dev/sda') + [
        'parted -s /dev/sda unit MiB mklabel msdos mkpart primary 1 513 '
        'set 1 boot on mkpart primary 513 100%'] + on(SETTLE, '/dev/sda') + [
        'mkfs.ext2 -F /dev/sda1', 'blkid -p -o export /dev/sda1',
        'mkfs.btrfs -f /dev/sda2', 'blkid -p -o export /dev/sda2',
        'mount -t btrfs /dev/sda2 /target',
        'mount -t ext2 /dev/sda1 /target/boot'] + CHROOT + [
        FIND_GRUB, 'chroot /target grub-install --target=i386-pc /dev/sda',
        MKCONFIG] + UNCHROOT + ['umount /target/boot', 'umount /target',
                                'sync']


def test_two_disks_raid1_lvm():
    rec = fx.run_scheme(fx.raid1_lvm())
    table = ('sgdisk --clear --new=1:1M:+1M --typecode=1:ef02 '
             '--new=2:2M:+256M --typecode=2:ef00 '
             '--new=3:258M:+20221M --typecode=3:fd00 {0}')
    assert recorded(rec) == DISCOVER + on(WIPE, '/dev/sda') + on(
        WIPE, '/dev/sdb') + [table.format('/dev/sda')] + on(
        SETTLE, '/dev/sda') + [table.format('/dev/sdb')] + on(
        SETTLE, '/dev/sdb') + [
        'mdadm --create /dev/md/md0 --run --level=1 --raid-devices=2 '
        '--metadata=1.2 --name=md0 /dev/sda3 /dev/sdb3',
        'wipefs --all --force /dev/md/md0',
        'mdadm --detail --export /dev/md/md0',
        'pvcreate --yes --force /dev/md/md0',
        'vgcreate --yes vg0 /dev/md/md0',
        'lvcreate --yes -Wy -Zy --name root --size 4096m vg0',
        'lvcreate --yes -Wy -Zy --name swap --size 512m vg0',
        'lvcreate --yes -Wy -Zy --name var --extents 100%FREE vg0',
        # fs-root comes from the fs_image: no mkfs for it.
        'mkfs.xfs -f /dev/vg0/var', 'blkid -p -o export /dev/vg0/var',
        'mkswap -f /dev/vg0/swap', 'blkid -p -o export /dev/vg0/swap',
        'mkfs.vfat /dev/sda2', 'blkid -p -o export /dev/sda2',
        'mount -t ext4 /dev/vg0/root /target',
        'mount -t xfs /dev/vg0/var /target/var',
        'mount -t vfat /dev/sda2 /target/boot/efi',
        'blkid -p -o export /dev/vg0/root',
        'mdadm --detail --brief /dev/md/md0'] + CHROOT + [
        INITRAMFS, FIND_GRUB,
        'chroot /target grub-install --target=i386-pc /dev/sda',
        'chroot /target grub-install --target=i386-pc /dev/sdb',
        EFI, EFI + ' --removable', MKCONFIG] + UNCHROOT + [
        'umount /target/boot/efi', 'umount /target/var', 'umount /target',
        'sync']
    notes = [c[1] for c in rec.commands if c[0] == '#']
    assert ('writing fs_image image http://x/root.img.gz to /dev/vg0/root'
            in notes)


def test_kept_logical_volume():
    rec = fx.run_scheme(fx.kept_lv(), replies=fx.kept_lv_disk())
    assert recorded(rec) == DISCOVER + [
        'parted -s -m /dev/sda unit B print',
        'blkid -p -o export /dev/sda3',
        'vgchange -ay vg0',
        # Only the partitions that are not kept go; the table stays.
        'mdadm --examine /dev/sda1',
        'mdadm --zero-superblock --force /dev/sda1',
        'wipefs --all --force /dev/sda1', 'sgdisk --delete=1 /dev/sda',
        'mdadm --examine /dev/sda2',
        'mdadm --zero-superblock --force /dev/sda2',
        'wipefs --all --force /dev/sda2', 'sgdisk --delete=2 /dev/sda',
    ] + on(SETTLE, '/dev/sda') + [
        'sgdisk --new=1:1M:+1M --typecode=1:ef02 '
        '--new=2:2M:+4096M --typecode=2:8300 /dev/sda',
    ] + on(SETTLE, '/dev/sda') + [
        'lvremove --yes vg0/tmp',
        'lvcreate --yes -Wy -Zy --name tmp --size 1024m vg0',
        'mkfs.ext4 -F /dev/sda2', 'blkid -p -o export /dev/sda2',
        'mkfs.ext4 -F /dev/vg0/tmp', 'blkid -p -o export /dev/vg0/tmp',
        'mount -t ext4 /dev/sda2 /target',
        'mount -t xfs /dev/vg0/home /target/home',
        'mount -t ext4 /dev/vg0/tmp /target/tmp',
        'blkid -p -o export /dev/vg0/home'] + CHROOT + [
        FIND_GRUB, 'chroot /target grub-install --target=i386-pc /dev/sda',
        MKCONFIG] + UNCHROOT + [
        'umount /target/tmp', 'umount /target/home', 'umount /target',
        'sync']
    made = [c for c in fx.commands(rec) if c[0].startswith('mk')]
    assert not any('/dev/vg0/home' in c for c in made)


def test_uefi_esp_on_each_raid_member():
    rec = fx.run_scheme(fx.uefi_raid_esps())
    table = ('sgdisk --clear --new=1:1M:+512M --typecode=1:ef00 '
             '--new=2:513M:+19966M --typecode=2:fd00 {0}')
    assert recorded(rec) == DISCOVER + on(WIPE, '/dev/sda') + on(
        WIPE, '/dev/sdb') + [table.format('/dev/sda')] + on(
        SETTLE, '/dev/sda') + [table.format('/dev/sdb')] + on(
        SETTLE, '/dev/sdb') + [
        'mdadm --create /dev/md/root --run --level=1 --raid-devices=2 '
        '--metadata=1.2 --name=root /dev/sda2 /dev/sdb2',
        'wipefs --all --force /dev/md/root',
        'mdadm --detail --export /dev/md/root',
        'mkfs.vfat -n ESP0 /dev/sda1', 'blkid -p -o export /dev/sda1',
        'mkfs.vfat -n ESP1 /dev/sdb1', 'blkid -p -o export /dev/sdb1',
        'mkfs.ext4 -F /dev/md/root', 'blkid -p -o export /dev/md/root',
        'mount -t ext4 /dev/md/root /target',
        'mount -t vfat /dev/sda1 /target/boot/efi',
        'mdadm --detail --brief /dev/md/root'] + CHROOT + [
        INITRAMFS, FIND_GRUB, EFI, EFI + ' --removable',
        # The second member's ESP, stacked over the first meanwhile.
        'mount -t vfat /dev/sdb1 /target/boot/efi',
        EFI, EFI + ' --removable', 'umount /target/boot/efi',
        MKCONFIG] + UNCHROOT + ['umount /target/boot/efi', 'umount /target',
                                'sync']


def test_wipe_stops_what_runs_on_the_disk():
    holders = ('{"blockdevices": [{"name": "sda", "path": "/dev/sda", '
               '"type": "disk", "pkname": null, "children": ['
               '{"name": "sda1", "path": "/dev/sda1", "type": "part", '
               '"pkname": "sda", "children": [{"name": "md127", '
               '"path": "/dev/md127", "type": "raid1", "pkname": "sda1", '
               '"children": [{"name": "old-root", "path": '
               '"/dev/mapper/old-root", "type": "lvm", "pkname": "md127"}]'
               '}]}]}]}')
    rec = fx.run_scheme(fx.msdos(), names=['wipe'], replies={
        ('lsblk', '--json', '--bytes', '-o', 'NAME,PATH,TYPE,PKNAME',
         '/dev/sda'): holders,
        ('lvs',): 'old\n',
        # a member of the old array: what the array held starts there
        ('mdadm', '--examine', '/dev/sda1'):
            '          Version : 1.2\n    Data Offset : 2048 sectors\n'})
    assert recorded(rec)[len(DISCOVER):] == [
        'lsblk --json --bytes -o NAME,PATH,TYPE,PKNAME /dev/sda',
        'lvs --noheadings -o vg_name /dev/mapper/old-root',
        'vgchange -an old', 'mdadm --stop /dev/md127',
        'mdadm --examine /dev/sda1',
        'mdadm --zero-superblock --force /dev/sda1',
        'dd if=/dev/zero of=/dev/sda1 bs=1M count=4 seek=1048576 '
        'oflag=seek_bytes,direct conv=notrunc status=none',
        'wipefs --all --force /dev/sda1'] + on(WIPE[1:], '/dev/sda') + [
        'sync']


def test_kept_data_mismatch_changes_nothing():
    replies = fx.kept_lv_disk()
    replies[fx.parted_print_cmd('/dev/sda')] = fx.parted_print(
        '/dev/sda', 20480, 'gpt', [(1, 2, ''), (2, 5000, ''),
                                   (5000, 20479, '')])
    ctx = fx.make_context(fx.kept_lv(), replies=replies)
    with pytest.raises(errors.KeepDataMismatch) as info:
        steps.run(ctx, steps.selected(steps.ORDER))
    assert "partition 'pv' (/dev/sda3): found bytes" in str(info.value)
    changed = [c for c in fx.commands(ctx.runner)
               if c[0] not in ('lsblk', 'udevadm', 'parted', 'blkid', 'sync')]
    assert changed == []


def test_unknown_step_is_bad_input():
    with pytest.raises(errors.BadInput, match='unknown step'):
        steps.selected(['wipe', 'format'])


def test_a_step_alone_still_discovers_and_cleans_up():
    assert steps.selected(['partition']) == ['discover', 'partition',
                                             'cleanup']
