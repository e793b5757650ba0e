#!/usr/bin/env python3
"""Builds the bootstrap ramdisk: a kernel and an initramfs that holds a
whole Debian bookworm system with the agent, sshd and the disk tools.

The initramfs is the root file system itself (systemd is its ``/init``),
so the node never needs a root device or a network file system while its
disks are being rewritten.

Two cached stages, each keyed by a hash of its inputs, so that a change to
the agent does not repeat the slow package installation:

* base: debootstrap ``--variant=minbase`` plus the pinned packages of
  ``packages.txt`` and the pinned PyPI wheels of ``wheels.txt``, kept as a
  tar file (inputs: this script, ``packages.txt``, ``wheels.txt``, the apt
  mirror);
* ramdisk: the base plus the agent (built as a wheel from ``agent/``) and
  ``overlay/``, packed as ``vmlinuz`` + ``initramfs`` (inputs: the base key,
  ``overlay/``, the agent sources).

Run as root: ``tools/build-ramdisk.sh [--cache-dir DIR] [--output DIR]
[--force] [--pin] [--json]``.
The apt mirror is the one this machine's apt uses for bookworm.
"""

import argparse
import ast
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT_DIR = os.path.dirname(HERE)
PACKAGES_FILE = os.path.join(HERE, 'packages.txt')
WHEELS_FILE = os.path.join(HERE, 'wheels.txt')
OVERLAY_DIR = os.path.join(HERE, 'overlay')
SUITE = 'bookworm'
DEFAULT_CACHE_DIR = '/var/cache/ironic-fa-driver'
CACHE_ENV = 'FA_CACHE_DIR'
# The wheels.txt downloads, kept so that a rebuild needs no package index.
WHEEL_CACHE = 'wheels'
HOST_TOOLS = {'debootstrap': 'debootstrap', 'cpio': 'cpio',
              'zstd': 'zstd', 'xz': 'xz-utils', 'depmod': 'kmod'}
ZSTD_LEVEL = '10'
# The initramfs compressor. The kernel unpacks zstd at any level about
# equally fast and several times faster than xz; a 128 MiB window
# (--long=27, which the kernel's unzstd allocates while it unpacks) makes
# -19 4 % smaller at the same speed; --ultra -22 gains 2 % more but takes
# three times as long to pack. Measured in doc/source/ramdisk.rst.
INITRAMFS_COMPRESSOR = ('zstd', '-q', '-T0', '-19', '--long=27')
# Modules go into the initramfs one by one xz-compressed (.ko.xz; the
# ramdisk's kmod is built +XZ and unpacks the few that udev loads): the
# kernel then unpacks 100 MiB less at boot, which under QEMU TCG is
# about 3 s of the first boot (tools/bench_ramdisk_boot.py), for 1.7 MB
# more initramfs than one stream over the plain modules.
MODULE_COMPRESSOR = ('xz', '-q', '--check=crc32', '-9')
# Builds kept per stage; every agent change makes a new ramdisk (150 MiB).
KEEP_BUILDS = 3

# Nothing in the ramdisk reads documentation, translations or manuals;
# dpkg skips them (copyright files stay, they are the licences).
NODOC = """\
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
path-exclude=/usr/share/groff/*
"""
NODOC_DIRS = ('usr/share/man', 'usr/share/info', 'usr/share/locale',
              'usr/share/lintian', 'usr/share/groff')
NODOC_KEEP = ('copyright',)

# What the ramdisk leaves out of the base, as data (one entry a line, so
# that recipe changes merge). The base keeps everything; the ramdisk stage
# removes these and then checks that every program below still runs
# (check_pruned), so a rule that goes too far fails the build.

# Programs run in the ramdisk itself: by the agent (its runner.execute
# calls; tests/unit/ramdisk derives this from the agent's source), by the
# conductor over SSH (agent_control: sh, setsid, nohup, mkdir, chmod, mv,
# SFTP) and by the ramdisk's own units. GRUB is not among them: the
# bootloader step runs grub-install and grub-mkconfig in the new system
# (chroot), with the image's own GRUB.
AGENT_PROGRAMS = (
    'blkid', 'blockdev', 'btrfs', 'btrfstune', 'chroot', 'cp', 'dd',
    'e2fsck', 'find', 'genisoimage', 'lsblk', 'lvcreate', 'lvremove', 'lvs',
    'mdadm', 'mkfs.btrfs', 'mkfs.ext2', 'mkfs.ext3', 'mkfs.ext4',
    'mkfs.vfat', 'mkfs.xfs', 'mkswap', 'mount', 'parted', 'partprobe',
    'pvcreate', 'qemu-img', 'resize2fs', 'sgdisk', 'sync', 'tar', 'tune2fs',
    'udevadm', 'umount', 'vgchange', 'vgcreate', 'wipefs', 'xfs_admin',
    'xfs_growfs',
    # erase_devices (secure erase where the disk offers it, else shred)
    # and the kexec step
    'hdparm', 'nvme', 'shred', 'kexec',
    # the conductor's commands over SSH (rescue: chpasswd, the rescue
    # user's sudo; kexec and rescue: systemctl), the units' and the
    # agent's own
    'chpasswd', 'sudo', 'systemctl',
    'sh', 'setsid', 'nohup', 'mkdir', 'chmod', 'mv', 'cat', 'ssh-keygen',
    'sshd', 'ip', 'modprobe', 'provision', 'fa-scheme', 'fa-heartbeat',
    # DHCP-less virtual-media boots (fa-network-data mounts the config
    # drive and runs glean's module)
    'fa-network-data',
)

# Debian packages that others pulled in and that nothing in the ramdisk
# uses; their files (dpkg's list) are removed, name: why that is safe.
UNUSED_PACKAGES = {
    'apt': 'nothing installs packages in a running ramdisk',
    'libapt-pkg6.0': 'apt only',
    'gpgv': 'apt only',
    'debian-archive-keyring': 'apt only',
    'perl-base': 'no program the ramdisk runs is a Perl script',
    'debconf': 'Perl; package configuration only',
    'libicu72': 'xfs_scrub only (not run; removed below)',
    'ieee-data': "netaddr's MAC vendor registry, loaded only for OUI look-ups",
    'wget': 'the agent downloads with Python',
    'libmagic-mgc': 'genisoimage reads it only for HFS (-magic), not used',
    'initramfs-tools': 'the installed system builds its initramfs (chroot)',
    'initramfs-tools-core': 'same',
    'klibc-utils': 'initramfs-tools only',
    'libklibc': 'initramfs-tools only',
    'python3-docutils': "oslo.config's Sphinx extension only",
    'docutils-common': 'docutils only',
    'python3-roman': 'docutils only',
    'python3-testtools': "oslo.concurrency's test fixture only",
    'python3-fixtures': 'same',
    'python3-extras': 'testtools only',
    'python3-eventlet': 'optional in oslo.concurrency (try_import); the '
                        'agent uses threads, and importing it costs seconds',
    'python3-dnspython': 'eventlet only',
    'python3-greenlet': 'eventlet only',
    'python3-setuptools': 'packaging tool; pkg_resources stays',
    'python3-lib2to3': 'a Python 2 converter',
}

# Files (globs, relative to the root) that nothing in the ramdisk reads.
UNUSED_PATHS = (
    'usr/lib/udev/hwdb.d', 'usr/lib/udev/hwdb.bin', 'etc/udev/hwdb.bin',
    'usr/sbin/xfs_scrub', 'usr/sbin/xfs_scrub_all',
    'usr/bin/qemu-nbd', 'usr/bin/qemu-io', 'usr/bin/qemu-storage-daemon',
    # the SSH client side (sshd and ssh-keygen stay)
    'usr/bin/ssh', 'usr/bin/scp', 'usr/bin/sftp', 'usr/bin/ssh-add',
    'usr/bin/ssh-agent', 'usr/bin/ssh-keyscan', 'usr/bin/ssh-argv0',
    'usr/bin/slogin', 'usr/lib/openssh/ssh-pkcs11-helper',
    'usr/lib/openssh/ssh-sk-helper', 'usr/lib/openssh/ssh-keysign',
    'var/lib/dpkg/info/*.md5sums',
    'usr/lib/x86_64-linux-gnu/gconv',
    'usr/lib/python3.11/pydoc_data', 'usr/lib/python3.11/ensurepip',
    'usr/lib/python3.11/idlelib', 'usr/lib/python3.11/turtledemo',
    'usr/lib/python3/dist-packages/*/tests',
    'usr/lib/python3/dist-packages/*/test',
    'usr/local/lib/python3.11/dist-packages/*/tests',
    'var/cache/debconf', 'var/lib/dpkg/*-old', 'var/log/apt', 'var/log/*.log',
    # zstd's parallel front end, btrfs-progs' repair and conversion tools
    # (the agent runs btrfs, mkfs.btrfs and btrfstune), OpenSSL's command
    # line (its library stays; nothing in the ramdisk runs openssl)
    'usr/bin/pzstd', 'usr/bin/btrfs-convert', 'usr/bin/btrfs-image',
    'usr/bin/btrfs-map-logical', 'usr/bin/btrfs-find-root',
    'usr/bin/btrfs-select-super', 'usr/bin/openssl',
    # dpkg's symbol and trigger data for building other packages
    'var/lib/dpkg/info/*.symbols', 'var/lib/dpkg/info/*.shlibs',
    'var/lib/dpkg/info/*.triggers',
)

# Kernel module trees that a server being provisioned does not use; the
# rest (storage, md/dm, network cards, file systems, crypto) stays, since
# udev loads modules by hardware and real servers vary. A module that a
# kept one depends on stays too (modules.dep).
UNUSED_MODULES = ('drivers/gpu', 'drivers/media', 'drivers/net/wireless',
                  'drivers/net/wwan', 'drivers/net/ieee802154',
                  'drivers/net/can', 'drivers/infiniband', 'drivers/staging',
                  'drivers/bluetooth', 'drivers/iio', 'drivers/isdn',
                  'drivers/comedi', 'drivers/target', 'drivers/atm',
                  'drivers/input/joystick', 'drivers/input/touchscreen',
                  'drivers/usb/misc', 'sound', 'net/wireless', 'net/mac80211',
                  'net/bluetooth',
                  # sensors, laptops, flash chips, frame buffers and buses
                  # a deploy never touches
                  'drivers/hwmon', 'drivers/platform', 'drivers/mtd',
                  'drivers/video', 'drivers/watchdog', 'drivers/w1',
                  'drivers/thunderbolt', 'drivers/edac', 'drivers/soundwire',
                  'drivers/accessibility', 'drivers/pcmcia',
                  'drivers/firewire', 'drivers/nfc', 'drivers/gnss',
                  'drivers/parport', 'drivers/memstick', 'drivers/leds',
                  'drivers/input/tablet', 'drivers/input/misc',
                  'drivers/usb/gadget', 'drivers/usb/serial',
                  'drivers/usb/typec', 'drivers/usb/image', 'drivers/usb/atm',
                  'drivers/usb/usbip', 'drivers/net/appletalk',
                  'drivers/net/arcnet', 'drivers/net/fddi',
                  'drivers/net/hamradio', 'drivers/net/hippi',
                  'drivers/net/plip', 'drivers/net/ppp', 'drivers/net/slip',
                  'drivers/net/wan', 'drivers/net/wireguard',
                  'arch/x86/kvm', 'lib/test_bpf.ko',
                  # network and cluster file systems, other systems' ones
                  'fs/nfs', 'fs/nfsd', 'fs/smb', 'fs/ceph', 'fs/ocfs2',
                  'fs/gfs2', 'fs/dlm', 'fs/afs', 'fs/coda', 'fs/orangefs',
                  'fs/9p', 'fs/ubifs', 'fs/jffs2', 'fs/nilfs2', 'fs/reiserfs',
                  'fs/jfs', 'fs/f2fs', 'fs/hfs', 'fs/hfsplus', 'fs/ufs',
                  'fs/befs', 'fs/bfs', 'fs/adfs', 'fs/affs', 'fs/efs',
                  'fs/freevxfs', 'fs/hpfs', 'fs/minix', 'fs/omfs',
                  'fs/qnx4', 'fs/qnx6', 'fs/romfs', 'fs/sysv', 'fs/zonefs',
                  'fs/erofs', 'fs/vboxsf', 'fs/lockd', 'fs/nfs_common',
                  # firewalls, traffic control and protocols no deploy uses
                  'net/netfilter', 'net/ipv4/netfilter', 'net/ipv6/netfilter',
                  'net/bridge/netfilter', 'net/sunrpc', 'net/ceph',
                  'net/sctp', 'net/tipc', 'net/rxrpc', 'net/nfc',
                  'net/batman-adv', 'net/smc', 'net/rds', 'net/atm',
                  'net/dccp', 'net/l2tp', 'net/openvswitch', 'net/mpls',
                  'net/6lowpan', 'net/9p', 'net/ax25', 'net/rose',
                  'net/netrom', 'net/appletalk', 'net/x25', 'net/lapb',
                  'net/phonet', 'net/ieee802154', 'net/mac802154',
                  'net/can', 'net/caif', 'net/qrtr', 'net/kcm', 'net/sched',
                  # Ceph and RDMA block devices, NVMe targets, encrypted
                  # and cached network file systems, vendor HID quirks
                  'drivers/block/rbd.ko', 'drivers/block/drbd',
                  'drivers/nvme/host/nvme-rdma.ko', 'drivers/nvme/target',
                  'fs/ecryptfs', 'fs/cachefiles', 'drivers/hid',
                  # Fibre Channel, FCoE and iSCSI host adapters: the disks
                  # they show are SAN LUNs, often shared by several hosts,
                  # which a deploy must never see as local disks to
                  # partition or a cleaning to erase
                  'drivers/scsi/lpfc', 'drivers/scsi/qla2xxx',
                  'drivers/scsi/qla4xxx', 'drivers/scsi/bfa',
                  'drivers/scsi/csiostor', 'drivers/scsi/fcoe',
                  'drivers/scsi/libfc', 'drivers/scsi/fnic',
                  'drivers/scsi/qedf', 'drivers/scsi/qedi',
                  'drivers/scsi/bnx2fc', 'drivers/scsi/bnx2i',
                  'drivers/scsi/be2iscsi', 'drivers/scsi/cxgbi',
                  'drivers/scsi/snic', 'drivers/scsi/libiscsi.ko',
                  'drivers/scsi/libiscsi_tcp.ko', 'drivers/scsi/iscsi_tcp.ko',
                  'drivers/scsi/iscsi_boot_sysfs.ko',
                  # Xen's host-side backends (a server is at most a guest),
                  # switch ASICs and DSA switch chips (no server NIC),
                  # networking over Thunderbolt cables
                  'drivers/net/xen-netback', 'drivers/block/xen-blkback',
                  'drivers/xen/xen-scsiback.ko', 'drivers/xen/xen-pciback',
                  'drivers/net/dsa', 'drivers/net/ethernet/mellanox/mlxsw',
                  'drivers/net/thunderbolt')
# Kept although under a tree above: the keyboards of server consoles
# (BMC virtual keyboards are plain USB HID; Hyper-V has its own).
KEEP_MODULES = ('drivers/hid/hid.ko', 'drivers/hid/hid-generic.ko',
                'drivers/hid/usbhid', 'drivers/hid/hid-hyperv.ko')

# Units the ramdisk starts at boot; fa-heartbeat only when the agent has it.
UNITS = ('systemd-networkd.service', 'fa-boot-interface.service',
         'fa-ssh-keys.service', 'ssh.service', 'fa-resolved.service',
         'fa-network-data.service')
# Housekeeping for installed systems, pointless in a ramdisk.
UNNEEDED_UNITS = ('e2scrub_reap.service', 'e2scrub_all.timer',
                  'apt-daily.timer', 'apt-daily-upgrade.timer',
                  'dpkg-db-backup.timer', 'fstrim.timer')
# systemd-resolved orders itself Before=sysinit.target and network.target,
# so whichever target pulls it into the boot transaction, sshd and
# fa-heartbeat wait for it: 7 s of the 26 s of userspace under QEMU TCG
# (tools/bench_ramdisk_boot.py --analyze). Not enabled;
# overlay/fa-resolved.service starts it as a job of its own once
# network.target is reached. DNS (names in ipa-api-url or image URLs)
# works as before from then on; fa-heartbeat retries a lookup that
# fails before.
RESOLVED = 'systemd-resolved.service'
# Units masked in the ramdisk (they would start at boot), name: why that
# is safe. Under TCG each costs seconds of CPU that the boot's critical
# path (sshd, fa-heartbeat) shares.
MASKED_UNITS = {
    'nvmf-autoconnect.service': 'NVMe over Fabrics discovery: the agent '
                                'writes local disks',
    'nvmefc-boot-connections.service': 'NVMe over Fibre Channel boot '
                                       'connections, the same',
    'lvm2-monitor.service': "dmeventd's monitoring of snapshot and mirror "
                            'LVs for a long-running system; lvcreate and '
                            'vgchange work without it',
    'kexec-load.service': "Debian's SysV script that makes every reboot "
                          "kexec the image's /vmlinuz, which the ramdisk "
                          'does not have; the kexec step loads the '
                          'installed kernel itself and the conductor runs '
                          "systemd's own systemctl kexec",
    'kexec.service': 'the same script pair',
    # systemd's early units that a root file system unpacked from the
    # initramfs has no use for; three of them lie on the path to
    # systemd-udevd and so to the network (remount-fs -> sysusers ->
    # tmpfiles-setup-dev -> udevd)
    'systemd-remount-fs.service': 'the root is the initramfs itself; '
                                  'there is no fstab to remount by',
    'systemd-sysusers.service': 'the system users were made when the '
                                'packages were installed into the image',
    'systemd-journal-flush.service': 'the journal stays in /run '
                                     '(journald.conf.d/fa-ramdisk.conf); '
                                     '/var is as volatile as /run here',
    'systemd-random-seed.service': 'no seed survives a ramdisk boot, and '
                                   "systemd's does not credit the kernel's "
                                   'pool anyway',
    'systemd-update-utmp.service': 'boot and runlevel records for last(1)',
    'systemd-update-utmp-runlevel.service': 'the same',
    'systemd-binfmt.service': 'no foreign binary formats run here',
    'proc-sys-fs-binfmt_misc.automount': 'the same',
    'sys-kernel-debug.mount': 'debugfs: nothing in the ramdisk reads it',
    'sys-kernel-tracing.mount': 'tracefs: the same',
    'dev-hugepages.mount': 'no program here uses huge pages',
    'modprobe@drm.service': 'the GPU drivers are not in the ramdisk '
                            '(UNUSED_MODULES)',
}
# Generators systemd runs before it loads any unit, each a process that
# TCG makes slow, name: why it has nothing to do here. Masked the way
# systemd documents, by a link to /dev/null in /etc/systemd.
MASKED_GENERATORS = {
    'systemd-gpt-auto-generator': 'finds the root disk the firmware booted '
                                  'from and mounts its partitions: a '
                                  'ramdisk has none, and must mount '
                                  'nothing of the disks it is to lay out',
    'systemd-sysv-generator': "wraps /etc/init.d scripts (Debian's kexec "
                              'ones, masked above); every unit the '
                              'ramdisk runs is a systemd unit',
    'systemd-cryptsetup-generator': 'there is no /etc/crypttab',
    'systemd-integritysetup-generator': 'no /etc/integritytab',
    'systemd-veritysetup-generator': 'no /etc/veritytab',
    'systemd-hibernate-resume-generator': 'nothing to resume from',
    'systemd-system-update-generator': 'no offline updates',
    'systemd-rc-local-generator': 'no /etc/rc.local',
}
HEARTBEAT = 'usr/local/bin/fa-heartbeat'
# Rescue mode (ironic_fa_driver/rescue.py): the account whose password the
# conductor sets with `chpasswd -e`; locked until then. The sshd and sudo
# rules for it are in overlay/.
RESCUE_USER = 'rescue'
RESCUE_SUDOERS = 'etc/sudoers.d/fa-rescue'


def rescue_user_commands(user=RESCUE_USER):
    """The chroot commands that create the rescue account: a home, a
    shell, and no password (useradd leaves it locked, ``!``), so nobody
    logs in as it before a rescue sets one."""
    return [('useradd', '--create-home', '--shell', '/bin/bash',
             '--user-group', user)]
# Run in the image: the agent's image safety check finds oslo.utils'
# format inspector there (it refuses qcow2 images without it).
INSPECTOR_CHECK = ('from oslo_utils.imageutils import format_inspector\n'
                   'from fa_agent.images import safety\n'
                   'assert safety.format_inspector is format_inspector\n')


# How log lines start; the test image build, which reuses these helpers,
# puts its own name there.
PROGRAM = 'build-ramdisk'


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def log(message):
    print('%s: %s' % (PROGRAM, message), flush=True)


def run(*cmd, **kwargs):
    try:
        return subprocess.run(cmd, check=True, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise BuildError('%s failed with exit code %s' % (
            ' '.join(cmd[:6]), exc.returncode)) from exc


def apt_sources(apt_dir='/etc/apt'):
    """The (uri, suite, components) that this machine's apt uses for
    bookworm, from sources.list and deb822 ``*.sources`` files."""
    found = []
    one_line = [os.path.join(apt_dir, 'sources.list')] + sorted(
        glob.glob(os.path.join(apt_dir, 'sources.list.d', '*.list')))
    for path in one_line:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                line = re.sub(r'\[[^]]*\]', '', line.split('#')[0]).split()
                if len(line) >= 4 and line[0] == 'deb':
                    found.append((line[1], line[2], line[3:]))
    for path in sorted(glob.glob(os.path.join(apt_dir, 'sources.list.d',
                                              '*.sources'))):
        with open(path) as f:
            stanzas = f.read().split('\n\n')
        for stanza in stanzas:
            fields = {}
            for line in stanza.splitlines():
                if line.startswith('#') or ':' not in line:
                    continue
                name, _, value = line.partition(':')
                fields[name.strip().lower()] = value.split()
            if ('deb' not in fields.get('types', ['deb'])
                    or fields.get('enabled', ['yes'])[0] == 'no'):
                continue
            for uri in fields.get('uris', []):
                for suite in fields.get('suites', []):
                    found.append((uri, suite, fields.get('components', [])))
    sources = [(uri, suite, components) for uri, suite, components in found
               if suite.split('-')[0] == SUITE and 'main' in components]
    if not any(suite == SUITE for _, suite, _ in sources):
        raise BuildError('no "%s main" entry in %s: the ramdisk is built from '
                         'the mirror this machine uses' % (SUITE, apt_dir))
    return sources


def read_packages(path=PACKAGES_FILE):
    """``[(name, version or None)]`` from packages.txt."""
    packages = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split('#')[0].strip()
            if not line:
                continue
            name, _, version = line.partition('=')
            if not re.fullmatch(r'[a-z0-9][a-z0-9.+-]+', name):
                raise BuildError('%s line %d: %r is not a package name'
                                 % (path, number, name))
            packages.append((name, version or None))
    return packages


def read_wheels(path=WHEELS_FILE):
    """``[(name, version, sha256)]`` from wheels.txt: only exact pins
    with a hash, so that the build installs the same bytes every time."""
    wheels = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            match = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s+'
                                 r'--hash=sha256:([0-9a-f]{64})', line)
            if not match:
                raise BuildError('%s line %d: %r is not "name==version '
                                 '--hash=sha256:<64 hex digits>"'
                                 % (path, number, line))
            wheels.append(match.groups())
    return wheels


def canonical_name(name):
    """A project name as PyPI compares them (PEP 503)."""
    return re.sub(r'[-_.]+', '-', name).lower()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def cached_wheels(wheels, directory):
    """``({name: path}, [missing wheels])``: the pinned wheels found in
    ``directory`` with their pinned hash."""
    found, missing = {}, []
    files = sorted(glob.glob(os.path.join(directory, '*.whl')))
    for name, version, sha256 in wheels:
        for path in files:
            parts = os.path.basename(path).split('-')
            if (canonical_name(parts[0]) == canonical_name(name)
                    and parts[1] == version and file_sha256(path) == sha256):
                found[name] = path
                break
        else:
            missing.append((name, version, sha256))
    return found, missing


def fetch_wheels(wheels, directory):
    """``{name: path}`` of the pinned wheels: from ``directory`` (the
    cache) when there, else downloaded into it by pip, which checks the
    hashes (``--require-hashes``) and fetches no dependency."""
    os.makedirs(directory, exist_ok=True)
    found, missing = cached_wheels(wheels, directory)
    if missing:
        log('downloading %s' % ', '.join('%s==%s' % (name, version)
                                         for name, version, _ in missing))
        with tempfile.NamedTemporaryFile('w', suffix='.txt',
                                         dir=directory) as requirements:
            requirements.writelines('%s==%s --hash=sha256:%s\n' % wheel
                                    for wheel in missing)
            requirements.flush()
            run(sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
                '--only-binary=:all:', '--require-hashes',
                '--disable-pip-version-check', '-d', directory,
                '-r', requirements.name, stdout=subprocess.DEVNULL)
        more, missing = cached_wheels(missing, directory)
        if missing:
            raise BuildError('pip downloaded no wheel for %s' % ', '.join(
                '%s==%s' % (name, version) for name, version, _ in missing))
        found.update(more)
    return found


def install_wheels(root, paths, versions):
    """Install ``{name: wheel path}`` into the image with ``python3 -m
    installer`` (no dependencies: Debian's are there), each in place of
    the Debian package ``python3-<name>`` that other packages pulled in.
    That package is removed with ``--force-depends``: nothing runs apt in
    the ramdisk, and two copies of a module would hide which one loads.

    Updates ``versions`` (the manifest) to match.
    """
    with Chroot(root) as chroot:
        for name, path in sorted(paths.items()):
            debian = 'python3-' + name.lower()
            if debian in versions:
                chroot.run('dpkg', '--remove', '--force-depends', debian,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
                del versions[debian]
            shutil.copy(path, os.path.join(root, 'tmp'))
            inside = '/tmp/' + os.path.basename(path)
            chroot.run('python3', '-m', 'installer', inside)
            os.unlink(os.path.join(root, inside[1:]))
            versions['pypi:' + name] = os.path.basename(path).split('-')[1]


def write_pins(versions, path=PACKAGES_FILE):
    """Rewrite packages.txt with the installed versions, keeping comments."""
    with open(path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        name = line.split('#')[0].strip().partition('=')[0]
        out.append('%s=%s' % (name, versions[name]) if name else line)
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


def hash_paths(digest, paths, root):
    """Feed file names (relative to root) and contents into ``digest``."""
    for path in sorted(paths):
        digest.update(os.path.relpath(path, root).encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(f.read())
        digest.update(b'\0%o\0' % (os.stat(path).st_mode & 0o777))


def tree_files(top, skip=()):
    files = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames
                       if d not in ('__pycache__', 'build', 'dist')
                       and not d.endswith('.egg-info')
                       and os.path.join(dirpath, d) not in skip]
        files += [os.path.join(dirpath, name) for name in filenames
                  if not name.endswith('.pyc')]
    return files


# What the base stage runs: the base key hashes their source, so that a
# change to the ramdisk stage (pruning, units, packing) reuses the base.
BASE_STEPS = ('SUITE', 'NODOC', 'NODOC_DIRS', 'NODOC_KEEP', 'run', 'Chroot',
              'installed_versions', 'mirror_versions', 'install_requests',
              'bootstrap', 'cached_wheels', 'fetch_wheels', 'install_wheels',
              'build_base')


def base_recipe(path=__file__):
    """The source text of :data:`BASE_STEPS` in this script."""
    with open(path) as f:
        source = f.read()
    found = {}
    for node in ast.parse(source).body:
        targets = getattr(node, 'targets', None) or [node]
        for target in targets:
            name = getattr(target, 'id', getattr(target, 'name', None))
            if name in BASE_STEPS:
                found[name] = ast.get_source_segment(source, node)
    missing = set(BASE_STEPS) - set(found)
    if missing:
        raise BuildError('BASE_STEPS names %s, not in %s'
                         % (', '.join(sorted(missing)), path))
    return '\n'.join(found[name] for name in BASE_STEPS)


def base_key(sources):
    """Hash of the base stage's code, the packages and wheels (not the
    comments around them) and the mirror entries."""
    digest = hashlib.sha256(base_recipe().encode())
    digest.update(repr(read_packages()).encode())
    digest.update(repr(read_wheels(WHEELS_FILE)).encode())
    digest.update(repr(sources).encode())
    return digest.hexdigest()[:16]


def ramdisk_key(base):
    """Hash of the base key, this script (the ramdisk stage), the overlay
    and the agent's sources."""
    digest = hashlib.sha256(base.encode())
    hash_paths(digest, [os.path.abspath(__file__)], HERE)
    hash_paths(digest, tree_files(OVERLAY_DIR), HERE)
    agent_files = tree_files(os.path.join(AGENT_DIR, 'fa_agent'))
    agent_files += [os.path.join(AGENT_DIR, name) for name in
                    ('setup.cfg', 'setup.py', 'requirements.txt')]
    hash_paths(digest, agent_files, AGENT_DIR)
    return digest.hexdigest()[:16]


def remove_work_dir(path):
    """Remove a build directory, unmounting whatever is still mounted
    inside it first, so that removal never reaches into the host's /dev,
    /proc or /sys."""
    path = os.path.realpath(path)
    with open('/proc/mounts') as f:
        targets = [line.split()[1] for line in f]
    for target in sorted(targets, reverse=True):
        if target.startswith(path + '/'):
            subprocess.run(['umount', '-l', target], check=False)
    shutil.rmtree(path, ignore_errors=True)


def prune_cache(directory, keep=KEEP_BUILDS):
    """Remove all but the ``keep`` newest builds in a stage's directory,
    and what interrupted builds left there (no build runs: we hold the
    lock)."""
    entries = [os.path.join(directory, name) for name in os.listdir(
        directory)]
    builds = [path for path in entries
              if re.fullmatch(r'[0-9a-f]{16}(\.tar)?', os.path.basename(path))]
    builds.sort(key=os.path.getmtime, reverse=True)
    for path in entries:
        if path in builds[:keep] or path.endswith('.manifest') and \
                path[:-len('.manifest')] in builds[:keep]:
            continue
        if os.path.isdir(path):
            remove_work_dir(path)
        else:
            os.unlink(path)


def ensure_host_tools(tools=HOST_TOOLS):
    """Install the Debian packages of the ``{command: package}`` that the
    build host lacks."""
    missing = sorted({package for tool, package in tools.items()
                      if not shutil.which(tool)
                      and not os.path.exists('/usr/sbin/' + tool)})
    if missing:
        log('installing host packages: %s' % ' '.join(missing))
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        run('apt-get', 'update', '-qq', env=env)
        run('apt-get', 'install', '-y', '-qq', *missing, env=env,
            stdout=subprocess.DEVNULL)


class Chroot:
    """/proc, /sys and /dev mounted into a root for the time of a block,
    and service starts forbidden (nothing may run on the build host)."""

    MOUNTS = (('proc', 'proc', ['-t', 'proc']),
              ('sys', 'sys', ['-t', 'sysfs']),
              ('/dev', 'dev', ['--bind']),
              ('/dev/pts', 'dev/pts', ['--bind']))

    def __init__(self, root):
        self.root = root
        self.mounted = []

    def __enter__(self):
        for source, target, options in self.MOUNTS:
            target = os.path.join(self.root, target)
            os.makedirs(target, exist_ok=True)
            run('mount', *options, source, target)
            self.mounted.append(target)
        policy = os.path.join(self.root, 'usr/sbin/policy-rc.d')
        with open(policy, 'w') as f:
            f.write('#!/bin/sh\nexit 101\n')
        os.chmod(policy, 0o755)
        return self

    def __exit__(self, *exc):
        os.unlink(os.path.join(self.root, 'usr/sbin/policy-rc.d'))
        for target in reversed(self.mounted):
            subprocess.run(['umount', '-l', target], check=False)

    def run(self, *cmd, **kwargs):
        # INITRD=No: the kernel package's hook makes no initrd of its own
        env = dict(PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin',
                   LC_ALL='C.UTF-8', DEBIAN_FRONTEND='noninteractive',
                   HOME='/root', INITRD='No')
        return run('chroot', self.root, *cmd, env=env, **kwargs)


def installed_versions(chroot):
    out = chroot.run('dpkg-query', '-W', '-f', '${Package}=${Version}\n',
                     capture_output=True, text=True).stdout
    return dict(line.split('=', 1) for line in out.splitlines())


def mirror_versions(chroot, names):
    """{name: set of versions} the configured mirror offers now."""
    out = chroot.run('apt-cache', 'madison', *names, capture_output=True,
                     text=True).stdout
    offered = {}
    for line in out.splitlines():
        fields = [f.strip() for f in line.split('|')]
        if len(fields) >= 2:
            offered.setdefault(fields[0], set()).add(fields[1])
    return offered


def install_requests(packages, offered):
    """apt-get arguments for the pinned list, and the pins the mirror no
    longer has: Debian drops superseded versions at point releases and
    security updates, and a build should then go on with the current
    version, saying so, rather than fail."""
    wanted, drifted = [], []
    for name, version in packages:
        if version in offered.get(name, ()):
            wanted.append('%s=%s' % (name, version))
        else:
            wanted.append(name)
            drifted.append('%s=%s' % (name, version))
    return wanted, drifted


def bootstrap(sources, packages, root, pin):
    """debootstrap ``--variant=minbase`` into ``root``, then the packages
    (``[(name, version or None)]``) from the machine's mirror, without
    documentation, recommends or apt lists. The test OS images are built
    with it too.

    Returns ``{name: version}`` of every installed package.
    """
    unpinned = [name for name, version in packages if not version]
    if unpinned and not pin:
        raise BuildError('no pinned version for %s: run with --pin'
                         % ', '.join(unpinned))
    main = next(uri for uri, suite, _ in sources if suite == SUITE)
    started = time.monotonic()
    log('debootstrap %s from %s' % (SUITE, main))
    run('debootstrap', '--variant=minbase', SUITE, root, main,
        stdout=subprocess.DEVNULL)
    log('debootstrap took %.0f s' % (time.monotonic() - started))
    with open(os.path.join(root, 'etc/apt/sources.list'), 'w') as f:
        for uri, suite, _ in sources:
            f.write('deb %s %s main\n' % (uri, suite))
    with open(os.path.join(root, 'etc/dpkg/dpkg.cfg.d/fa-nodoc'), 'w') as f:
        f.write(NODOC)
    with open(os.path.join(root, 'etc/apt/apt.conf.d/90fa-ramdisk'),
              'w') as f:
        f.write('APT::Install-Recommends "false";\n'
                'APT::Install-Suggests "false";\n')
    with Chroot(root) as chroot:
        chroot.run('apt-get', 'update', '-qq')
        if pin:
            wanted = [name for name, _ in packages]
        else:
            offered = mirror_versions(chroot, [n for n, _ in packages])
            wanted, drifted = install_requests(packages, offered)
            if drifted:
                log('WARNING: the mirror no longer has these pinned '
                    'versions; installing its current ones instead '
                    '(refresh the list with --pin): %s' % ', '.join(drifted))
        started = time.monotonic()
        log('installing %d packages' % len(wanted))
        chroot.run('apt-get', 'install', '-y', '-qq', '--allow-downgrades',
                   *wanted, stdout=subprocess.DEVNULL)
        log('apt-get install took %.0f s' % (time.monotonic() - started))
        versions = installed_versions(chroot)
        chroot.run('apt-get', 'clean')
    # debootstrap's own packages were installed before the nodoc rule
    for path in NODOC_DIRS:
        shutil.rmtree(os.path.join(root, path), ignore_errors=True)
    for dirpath, _, filenames in os.walk(os.path.join(root,
                                                      'usr/share/doc')):
        for name in filenames:
            if name not in NODOC_KEEP:
                os.unlink(os.path.join(dirpath, name))
    for path in glob.glob(os.path.join(root, 'var/lib/apt/lists/*')):
        if os.path.isfile(path):
            os.unlink(path)
    return versions


def build_base(sources, packages, tar_path, pin, wheel_dir):
    """:func:`bootstrap` + packages.txt + wheels.txt (cached in
    ``wheel_dir``), as a tar file at ``tar_path``.

    Returns ``{name: version}`` of every installed package.
    """
    # before debootstrap: an index that cannot be reached fails at once
    wheels = fetch_wheels(read_wheels(), wheel_dir)
    work = tempfile.mkdtemp(prefix='fa-ramdisk-base-',
                            dir=os.path.dirname(tar_path))
    root = os.path.join(work, 'root')
    try:
        versions = bootstrap(sources, packages, root, pin)
        install_wheels(root, wheels, versions)
        for path in glob.glob(os.path.join(root, 'boot/initrd.img*')):
            os.unlink(path)
        run('tar', '-C', root, '--numeric-owner', '--xattrs', '-cf',
            tar_path + '.part', '.')
        os.rename(tar_path + '.part', tar_path)
        return versions
    finally:
        remove_work_dir(work)


def build_agent_wheel(directory):
    """The agent as a wheel, built with the interpreter running this
    script (pbr needs a version when there is no git tag)."""
    env = dict(os.environ, PBR_VERSION=os.environ.get('PBR_VERSION',
                                                      '0.1.0'))
    # No build isolation: pbr, setuptools and wheel come from this venv
    # (tools/setup.sh), so the build needs no package index.
    run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
        '--no-build-isolation', '--disable-pip-version-check', '-w',
        directory, AGENT_DIR, env=env,
        stdout=subprocess.DEVNULL)
    wheels = glob.glob(os.path.join(directory, '*.whl'))
    if len(wheels) != 1:
        raise BuildError('expected one agent wheel, found %s' % wheels)
    return wheels[0]


def module_dependencies(tree):
    """``{module path: [paths it needs]}`` from the kernel's modules.dep
    (paths relative to the kernel's module directory)."""
    needs = {}
    with open(os.path.join(tree, 'modules.dep')) as f:
        for line in f:
            module, _, deps = line.partition(':')
            needs[module.strip()] = deps.split()
    return needs


def under(module, trees):
    return any(module == 'kernel/' + tree or module.startswith(
        'kernel/%s/' % tree) for tree in trees)


def unused_modules(needs, trees=UNUSED_MODULES, keep=KEEP_MODULES):
    """The modules under ``trees`` (but ``keep``) that no kept module
    needs: a kept network card driver keeps the PHY or LED helper it
    links against."""
    unused = {m for m in needs if under(m, trees) and not under(m, keep)}
    kept = [m for m in needs if m not in unused]
    while kept:
        module = kept.pop()
        for dep in needs.get(module, ()):
            if dep in unused:
                unused.discard(dep)
                kept.append(dep)
    return unused


def prune_modules(root, compressor=MODULE_COMPRESSOR):
    """Drop unused modules and compress the rest one by one with
    ``compressor`` (None: leave them plain); returns the kernel version."""
    kernels = glob.glob(os.path.join(root, 'lib/modules/*'))
    if len(kernels) != 1:
        raise BuildError('expected one kernel in the image, found %s'
                         % kernels)
    for module in unused_modules(module_dependencies(kernels[0])):
        os.unlink(os.path.join(kernels[0], module))
    if compressor:
        modules = sorted(os.path.join(dirpath, name) for dirpath, _, names
                         in os.walk(kernels[0]) for name in names
                         if name.endswith('.ko'))
        # one compressor per core, each on every n-th module
        workers = os.cpu_count() or 1
        procs = [subprocess.Popen(list(compressor) + modules[i::workers])
                 for i in range(workers) if modules[i::workers]]
        if any(proc.wait() for proc in procs):
            raise BuildError('compressing the kernel modules failed')
    version = os.path.basename(kernels[0])
    run('depmod', '-b', root, version)
    return version


def package_files(root, name):
    """The files and directories dpkg lists for an installed package."""
    for path in (name + '.list', name + ':amd64.list'):
        path = os.path.join(root, 'var/lib/dpkg/info', path)
        if os.path.exists(path):
            with open(path) as f:
                return [line.rstrip('\n') for line in f if line.strip()]
    return None


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def prune_userland(root, packages=UNUSED_PACKAGES, paths=UNUSED_PATHS):
    """Remove the files of ``packages`` (not their directories or links
    to directories, which other packages share) and ``paths``; returns
    the packages removed."""
    removed = []
    for name in sorted(packages):
        files = package_files(root, name)
        if files is None:
            continue
        directories = []
        for entry in files:
            path = os.path.join(root, entry.lstrip('/'))
            # not /bin either, the merged-/usr link to usr/bin
            if os.path.lexists(path) and not os.path.isdir(path):
                os.unlink(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                directories.append(path)
        # Python's byte code is no dpkg file, and a directory left with
        # only that would still import (as a namespace package).
        for path in sorted(directories, reverse=True):
            shutil.rmtree(os.path.join(path, '__pycache__'),
                          ignore_errors=True)
            if not os.listdir(path):
                os.rmdir(path)
        for info in glob.glob(os.path.join(root, 'var/lib/dpkg/info',
                                           glob.escape(name) + '[.:]*')):
            os.unlink(info)
        removed.append(name)
    for pattern in paths:
        for path in glob.glob(os.path.join(root, pattern)):
            remove_path(path)
    return removed


# Run in the pruned ramdisk: every program there, and every ELF file
# under these directories finds its libraries.
PROGRAM_CHECK = ('missing=; for p in "$@"; do command -v "$p" >/dev/null '
                 '|| missing="$missing $p"; done; echo "$missing"')
# ldd fails for files that are no dynamic ELF (scripts): that is no error
LDD_ALL = ('find "$@" -type f \\( -perm -u+x -o -name "*.so*" \\) '
           '-exec ldd {} + 2>/dev/null; exit 0')
ELF_DIRS = ('/usr/bin', '/usr/sbin', '/usr/lib/systemd',
            '/usr/lib/x86_64-linux-gnu', '/usr/lib/python3',
            '/usr/lib/python3.11', '/usr/local/lib', '/usr/lib/openssh')


def missing_libraries(chroot):
    """``{'file (library)'}`` that ldd finds no library for."""
    listed = chroot.run('sh', '-c', LDD_ALL, 'sh', *ELF_DIRS,
                        capture_output=True, text=True)
    missing, current = set(), None
    for line in listed.stdout.splitlines():
        if not line.startswith(('\t', ' ')):
            current = line.rstrip(':')
        elif 'not found' in line:
            missing.add('%s (%s)' % (current, line.split()[0]))
    return missing


def check_pruned(chroot, missing_before):
    """Fail the build when pruning took a program the ramdisk runs or a
    library that a remaining binary links against (``missing_before``:
    what ldd missed already before pruning, e.g. optional tc plugins)."""
    out = chroot.run('sh', '-c', PROGRAM_CHECK, 'sh', *AGENT_PROGRAMS,
                     capture_output=True, text=True).stdout.split()
    if out:
        raise BuildError('the pruned ramdisk lacks %s' % ' '.join(out))
    missing = missing_libraries(chroot) - missing_before
    if missing:
        raise BuildError('the pruned ramdisk lacks libraries: %s'
                         % ', '.join(sorted(missing)[:20]))


def boot_units(root, masked=MASKED_UNITS, generators=MASKED_GENERATORS):
    """Take systemd-resolved out of the boot transaction (RESOLVED) and
    mask ``masked`` and ``generators``: the boot's critical path to
    fa-heartbeat is then systemd's own early units, sshd and the
    agent's."""
    systemd_dir = os.path.join(root, 'etc/systemd/system')
    for path in glob.glob(os.path.join(systemd_dir, '*.wants', RESOLVED)):
        os.unlink(path)
    generator_dir = os.path.join(root, 'etc/systemd/system-generators')
    os.makedirs(generator_dir, exist_ok=True)
    for directory, names in ((systemd_dir, masked),
                             (generator_dir, generators)):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink('/dev/null', path)


def build_ramdisk(base_tar, out_dir):
    """Unpack the base, add the agent and overlay, write vmlinuz and
    initramfs into ``out_dir``."""
    work = tempfile.mkdtemp(prefix='fa-ramdisk-', dir=os.path.dirname(
        out_dir))
    root = os.path.join(work, 'root')
    try:
        os.makedirs(root)
        run('tar', '-C', root, '--numeric-owner', '--xattrs', '-xf', base_tar)
        wheel = build_agent_wheel(work)
        shutil.copy(wheel, os.path.join(root, 'tmp'))
        shutil.copytree(OVERLAY_DIR, root, dirs_exist_ok=True, symlinks=True)
        units = list(UNITS)
        with Chroot(root) as chroot:
            chroot.run('python3', '-m', 'installer',
                       '/tmp/' + os.path.basename(wheel))
            if os.path.exists(os.path.join(root, HEARTBEAT)):
                units.append('fa-heartbeat.service')
            else:
                log('the agent has no fa-heartbeat yet: not started at boot')
            chroot.run('systemctl', 'enable', '--quiet', *units)
            for command in rescue_user_commands():
                chroot.run(*command, stdout=subprocess.DEVNULL)
            chroot.run('systemctl', 'disable', '--quiet', *UNNEEDED_UNITS)
            missing_before = missing_libraries(chroot)
        pruned = prune_userland(root)
        with Chroot(root) as chroot:
            check_pruned(chroot, missing_before)
            # the agent imports with Debian's libraries, not only installs
            for program in ('fa-scheme', 'provision', 'fa-heartbeat'):
                chroot.run(program, '--help', stdout=subprocess.DEVNULL)
            # and has the image format safety check (wheels.txt)
            chroot.run('python3', '-c', INSPECTOR_CHECK)
        # sudo ignores a rule file that others can write; 0440 as visudo
        os.chmod(os.path.join(root, RESCUE_SUDOERS), 0o440)
        boot_units(root)
        os.unlink(os.path.join(root, 'tmp', os.path.basename(wheel)))
        # Each boot makes its own identity: machine id and SSH host keys.
        for path in glob.glob(os.path.join(root, 'etc/ssh/ssh_host_*')):
            os.unlink(path)
        with open(os.path.join(root, 'etc/machine-id'), 'w'):
            pass
        resolv = os.path.join(root, 'etc/resolv.conf')
        if os.path.lexists(resolv):
            os.unlink(resolv)
        os.symlink('../run/systemd/resolve/stub-resolv.conf', resolv)
        os.symlink('lib/systemd/systemd', os.path.join(root, 'init'))
        kernel_version = prune_modules(root)
        shutil.copy(os.path.join(root, 'boot/vmlinuz-' + kernel_version),
                    os.path.join(out_dir, 'vmlinuz'))
        shutil.rmtree(os.path.join(root, 'boot'))
        os.makedirs(os.path.join(root, 'boot'))
        log('packing the initramfs (cpio, %s)' % ' '.join(
            INITRAMFS_COMPRESSOR))
        with open(os.path.join(out_dir, 'initramfs'), 'wb') as out:
            find = subprocess.Popen(['find', '.', '-print0'], cwd=root,
                                    stdout=subprocess.PIPE)
            cpio = subprocess.Popen(['cpio', '--null', '-o', '-H', 'newc',
                                     '--quiet'], cwd=root, stdin=find.stdout,
                                    stdout=subprocess.PIPE)
            zstd = subprocess.Popen(INITRAMFS_COMPRESSOR,
                                    stdin=cpio.stdout, stdout=out)
            find.stdout.close()
            cpio.stdout.close()
            if zstd.wait() or cpio.wait() or find.wait():
                raise BuildError('packing the initramfs failed')
        unpacked = int(subprocess.run(
            ['du', '-sb', root], capture_output=True, text=True,
            check=True).stdout.split()[0])
        return kernel_version, unpacked, pruned
    finally:
        remove_work_dir(work)


def mib(size):
    return '%.1f MiB' % (size / 1048576.0)


def build(cache_dir, force=False, pin=False):
    """Build (or reuse) the ramdisk; returns the build record (a dict)."""
    started = time.monotonic()
    if os.geteuid() != 0:
        raise BuildError('must run as root (debootstrap, chroot, mount)')
    sources = apt_sources()
    packages = read_packages()
    os.makedirs(os.path.join(cache_dir, 'ramdisk-base'), exist_ok=True)
    # One build at a time per cache; a second one then reuses the first's.
    with open(os.path.join(cache_dir, 'ramdisk.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = build_locked(cache_dir, sources, packages, force, pin)
    record['seconds'] = round(time.monotonic() - started, 1)
    return record


def build_locked(cache_dir, sources, packages, force, pin):
    """The two stages, each skipped when the cache has its key."""
    started = time.monotonic()
    base = base_key(sources)
    base_tar = os.path.join(cache_dir, 'ramdisk-base', base + '.tar')
    if pin or force or not os.path.exists(base_tar):
        ensure_host_tools()
        versions = build_base(sources, packages, base_tar, pin,
                              os.path.join(cache_dir, WHEEL_CACHE))
        with open(base_tar + '.manifest', 'w') as f:
            f.writelines('%s=%s\n' % item for item in sorted(
                versions.items()))
        if pin:
            write_pins(versions)
            # packages.txt changed, so did the key: store under the new one
            pinned = os.path.join(cache_dir, 'ramdisk-base',
                                  base_key(sources) + '.tar')
            os.rename(base_tar, pinned)
            os.rename(base_tar + '.manifest', pinned + '.manifest')
            base, base_tar = base_key(sources), pinned
    else:
        log('reusing base %s' % base_tar)
        os.utime(base_tar)  # recently used: kept by prune_cache
    key = ramdisk_key(base)
    out_dir = os.path.join(cache_dir, 'ramdisk', key)
    record_path = os.path.join(out_dir, 'build.json')
    if not force and os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
        record['cached'] = True
        os.utime(out_dir)
    else:
        ensure_host_tools()
        part = out_dir + '.part'
        shutil.rmtree(part, ignore_errors=True)
        os.makedirs(part)
        kernel_version, unpacked, pruned = build_ramdisk(base_tar, part)
        # what the ramdisk holds: the base's packages but the pruned ones
        with open(base_tar + '.manifest') as f, open(os.path.join(
                part, 'manifest.txt'), 'w') as manifest:
            manifest.writelines(line for line in f
                                if line.partition('=')[0] not in pruned)
        record = {'key': key, 'base_key': base,
                  'kernel_version': kernel_version,
                  'unpacked_bytes': unpacked,
                  'pruned_packages': pruned,
                  'build_seconds': round(time.monotonic() - started, 1),
                  'cached': False}
        with open(os.path.join(part, 'build.json'), 'w') as f:
            json.dump(record, f, indent=2)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.rename(part, out_dir)
    for stage in ('ramdisk-base', 'ramdisk'):
        prune_cache(os.path.join(cache_dir, stage))
    record['kernel'] = os.path.join(out_dir, 'vmlinuz')
    record['initramfs'] = os.path.join(out_dir, 'initramfs')
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cache-dir', default=os.environ.get(
        CACHE_ENV, DEFAULT_CACHE_DIR), help='where builds are kept '
        '(default: $%s or %s)' % (CACHE_ENV, DEFAULT_CACHE_DIR))
    parser.add_argument('--output', metavar='DIR',
                        help='also copy vmlinuz and initramfs into DIR')
    parser.add_argument('--force', action='store_true',
                        help='rebuild even when a cached build matches')
    parser.add_argument('--pin', action='store_true',
                        help='install packages.txt unpinned and write the '
                        'resolved versions back into it')
    parser.add_argument('--json', action='store_true',
                        help='print the build record as JSON on stdout')
    args = parser.parse_args(argv)
    # a stopped build still unmounts and removes its work directories
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        record = build(os.path.abspath(args.cache_dir), args.force, args.pin)
    except BuildError as exc:
        print('build-ramdisk: error: %s' % exc, file=sys.stderr)
        return 1
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        for name in ('kernel', 'initramfs'):
            shutil.copy(record[name], args.output)
            record[name] = os.path.join(args.output,
                                        os.path.basename(record[name]))
    log('%s %s (kernel %s)' % (
        'reused' if record['cached'] else 'built', record['key'],
        record['kernel_version']))
    for name in ('kernel', 'initramfs'):
        log('%-9s %s %s' % (name, record[name],
                            mib(os.path.getsize(record[name]))))
    log('unpacked  %s' % mib(record['unpacked_bytes']))
    log('time      %.1f s (this build: %.1f s)' % (
        record['seconds'], record['build_seconds']))
    if args.json:
        print(json.dumps(record))
    return 0


if __name__ == '__main__':
    sys.exit(main())
