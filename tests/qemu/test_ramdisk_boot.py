"""Boot the bootstrap ramdisk under QEMU and check, over SSH, that it is a
usable provisioning environment: key-only root login from the kernel
parameter, the disk tools, and md RAID and LVM actually working on its
virtio disks (they cannot be tried on this machine's kernel).
"""

import importlib.util
import json
import os

import paramiko
import pytest
import qemu_guest
import qemu_layouts

from fa_agent import input_format

pytestmark = pytest.mark.qemu

RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'agent', 'ramdisk', 'build.py')
_spec = importlib.util.spec_from_file_location('fa_ramdisk_recipe', RECIPE)
recipe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recipe)

# What the ramdisk must run: the recipe's list, which the unit tests check
# against the agent's source (tests/unit/ramdisk/test_ramdisk_recipe.py).
TOOLS = recipe.AGENT_PROGRAMS
RAID_MODULES = ('raid0', 'raid1', 'raid10', 'raid456', 'dm_mod')

def test_root_login_takes_only_the_kernel_parameter_key(guest):
    code, out, _ = guest.run('cat /root/.ssh/authorized_keys')
    assert guest.key.get_base64() in out
    stranger = paramiko.ECDSAKey.generate(bits=256)
    with pytest.raises(paramiko.AuthenticationException):
        guest.connect(key=stranger)
    _, config, _ = guest.run('sshd -T')
    assert 'passwordauthentication no' in config
    assert 'kbdinteractiveauthentication no' in config


def test_dhcp_runs_on_the_boot_interface_only(guest):
    # SSH through the port forward already needed the DHCP address
    _, config, _ = guest.run(
        'cat /run/systemd/network/10-fa-boot-interface.network')
    assert 'MACAddress=%s' % qemu_guest.BOOT_MAC in config
    _, links, _ = guest.run('ip -json address show')
    by_mac = {link['address']: link for link in json.loads(links)}
    addresses = [a['local'] for a in by_mac[qemu_guest.BOOT_MAC]['addr_info']
                 if a['family'] == 'inet']
    assert addresses == ['10.0.2.15']  # slirp's first DHCP lease
    # The lease was asked for with the MAC as client id (type 01): DHCP
    # servers (Ironic's dnsmasq) tell nodes apart by it, and networkd's
    # default id can be the same on two nodes booting the same ramdisk.
    _, leases, _ = guest.run('cat /run/systemd/netif/leases/*')
    assert 'CLIENTID=01%s' % qemu_guest.BOOT_MAC.replace(':', '') \
        in leases, leases


def test_tools_are_in_the_ramdisk(guest):
    missing = [tool for tool in TOOLS if not guest.has_command(tool)]
    assert not missing
    # The config drive as the agent builds it: genisoimage without its
    # pruned magic database and iconv modules (recipe.UNUSED_*).
    guest.run('mkdir -p /tmp/cd/openstack/latest && echo {} > '
              '/tmp/cd/openstack/latest/meta_data.json && genisoimage -o '
              '/tmp/cd.iso -ldots -allow-lowercase -allow-multidot -l -J -r '
              '-quiet -publisher ironic-fa-driver -V config-2 /tmp/cd && '
              'blkid -o value -s LABEL /tmp/cd.iso | grep -qx config-2')


def test_the_ramdisk_is_pruned(guest):
    """What the recipe leaves out is gone (GRUB runs in the new system,
    never here), and udev has no hardware database to rebuild at boot."""
    for gone in ('grub-install', 'perl', 'apt-get', 'efibootmgr'):
        assert not guest.has_command(gone), gone
    code, _, _ = guest.run('test -e /usr/lib/udev/hwdb.bin', check=False)
    assert code


def test_virtio_disks_are_seen_with_their_serials(guest):
    _, out, _ = guest.run('lsblk --json --nodeps -o NAME,SERIAL,TYPE')
    disks = {d['name']: d['serial'] for d in json.loads(out)['blockdevices']
             if d['type'] == 'disk'}
    assert disks == {'vda': 'fa-disk-0', 'vdb': 'fa-disk-1',
                     'vdc': 'fa-disk-2'}


def test_raid_and_lvm_modules_load_in_the_guest(guest):
    # Arrays of every level are built by provision below
    # (test_every_raid_level_is_built_as_planned), RAID1 + LVM by
    # tests/qemu/test_installed_boot.py; here: the tools and the
    # personalities (the modules are .ko.xz, unpacked by kmod).
    guest.run('mdadm --version && lvm version')
    guest.run('modprobe -a %s' % ' '.join(RAID_MODULES))
    _, mdstat, _ = guest.run('cat /proc/mdstat')
    for personality in ('[raid0]', '[raid1]', '[raid10]', '[raid6]',
                        '[raid5]'):
        assert personality in mdstat
    _, modules, _ = guest.run('find /lib/modules -name "raid1.ko*"')
    assert modules.strip().endswith('raid1.ko.xz'), modules


# Run by the ramdisk's python3: the agent's own image safety check on two
# qcow2 images made by the ramdisk's qemu-img.
SAFETY_CHECK = """
from fa_agent import errors, runner
from fa_agent.images import safety
safety.check_file('/tmp/plain.qcow2', 'qcow2', runner.Runner(), 'plain')
try:
    safety.check_file('/tmp/crafted.qcow2', 'qcow2', runner.Runner(),
                      'crafted')
except errors.BadInput as exc:
    print(exc)
else:
    raise SystemExit('the qcow2 with a data file was accepted')
"""


def test_the_agent_checks_images_with_the_format_inspector(guest):
    """oslo.utils in the ramdisk has format_inspector (Debian's 6.0.1 has
    not: agent/ramdisk/wheels.txt), and the agent's check uses it: the
    refusal of a qcow2 whose data would be read from a ramdisk file comes
    from the inspector, before qemu-img looks at the image."""
    _, version, _ = guest.run(
        'python3 -c "import importlib.metadata as m; '
        'from oslo_utils.imageutils import format_inspector; '
        'assert format_inspector.InspectWrapper.formats; '
        'print(m.version(\'oslo.utils\'))"')
    assert version.strip() == '7.3.1'
    # Debian's oslo libraries the agent pulls in work with it too
    # (their imports of oslo_utils; none uses netutils, which would need
    # netaddr 0.10: Debian has 0.8)
    guest.run('python3 -c "import oslo_concurrency.processutils, '
              'oslo_concurrency.lockutils, oslo_concurrency.watchdog, '
              'oslo_log.log, oslo_log.formatters, '
              'oslo_serialization.jsonutils, '
              'oslo_serialization.msgpackutils"')
    guest.run('head -c 65536 /dev/urandom > /tmp/ramdisk-secret && '
              'qemu-img create -q -f qcow2 /tmp/plain.qcow2 1M && '
              'qemu-img create -q -f qcow2 -o data_file=/tmp/ramdisk-secret'
              ',data_file_raw=on /tmp/crafted.qcow2 1M')
    guest.put_text(SAFETY_CHECK, '/tmp/safety_check.py')
    _, out, err = guest.run('python3 /tmp/safety_check.py')
    assert 'crafted: refused by the image format safety check' in out, err
    assert 'data_file' in out, out


def test_provision_dry_run_plans_raid1_and_lvm(guest):
    if not guest.has_command('provision'):
        pytest.skip('the agent in the ramdisk has no provision command yet')
    document = input_format.build(qemu_layouts.RAID1_LVM,
                                  node_name='qemu-guest')
    guest.put_text(json.dumps(document), '/tmp/provision.json')
    _, out, err = guest.run('provision --dry-run '
                            '--input-data-file /tmp/provision.json')
    assert 'mdadm --create' in out, err
    assert 'lvcreate' in out, err
    # a dry run must not have touched the disks
    _, signatures, _ = guest.run('wipefs --noheadings /dev/vda /dev/vdb')
    assert signatures == ''


def _md_detail(guest, name):
    """mdadm's --export view of /dev/md/<name>: level, member count and,
    per device, its path and role (a number, or 'spare')."""
    _, out, _ = guest.run('mdadm --detail --export /dev/md/%s' % name)
    fields = dict(line.partition('=')[::2] for line in out.splitlines())
    roles = {}
    for key, value in fields.items():
        if key.startswith('MD_DEVICE_') and key.endswith('_ROLE'):
            dev = fields[key[:-len('_ROLE')] + '_DEV']
            _, label, _ = guest.run('lsblk -dno PARTLABEL %s' % dev)
            roles[label.strip()] = value
    return fields, roles


def test_every_raid_level_is_built_as_planned(guest):
    """provision lays out arrays of level 0, 5 (+ spare), 6 and 10
    (+ spare) for real; mdadm then reports each level, its active
    members (by the partitions' GPT names, which are the scheme's ids),
    its spares and a size of (members - parity) x member size."""
    document = input_format.build(qemu_layouts.raid_levels(),
                                  node_name='qemu-guest')
    guest.put_text(json.dumps(document), '/tmp/levels.json')
    try:
        _, out, err = guest.run(
            'provision --input-data-file /tmp/levels.json '
            '--steps wipe,partition,raid,filesystems', timeout=900)
        data_members = {0: lambda n: n, 5: lambda n: n - 1,
                        6: lambda n: n - 2, 10: lambda n: n // 2}
        member = qemu_layouts.RAID_MEMBER_MIB * 1024 * 1024
        for level, (name, members, spares) in \
                qemu_layouts.RAID_LEVEL_MEMBERS.items():
            fields, roles = _md_detail(guest, name)
            assert fields['MD_LEVEL'] == 'raid%d' % level, fields
            assert int(fields['MD_DEVICES']) == len(members), fields
            assert sorted(label for label, role in roles.items()
                          if role != 'spare') == sorted(members), roles
            assert sorted(label for label, role in roles.items()
                          if role == 'spare') == sorted(spares), roles
            _, size, _ = guest.run('blockdev --getsize64 /dev/md/' + name)
            expected = data_members[level](len(members)) * member
            # md's superblock and data offset take a few MiB per member
            assert expected - len(members) * 8 * 1024 * 1024 <= \
                int(size) <= expected, (name, size)
    finally:
        guest.run('mdadm --stop --scan; wipefs -q -a /dev/vda /dev/vdb '
                  '/dev/vdc', check=False)
