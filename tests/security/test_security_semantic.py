"""Item 8 (semantic checks that were missing): an ESP must be vfat; LVM
and md names that LVM or the kernel refuse, or that name a directory;
label limits in bytes of UTF-8 per file system, not characters; text that
cannot be encoded is an error, not a crash.
"""

import copy
import shutil
import subprocess

import pytest

from fa_agent.scheme import validator

BASE = {
    'storage': [
        {'type': 'disk', 'id': 'sda', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'grub', 'device': 'sda',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'esp', 'device': 'sda',
         'size': '256 MiB', 'flags': ['esp']},
        {'type': 'partition', 'id': 'pv', 'device': 'sda',
         'size': 'remaining', 'flags': ['lvm']},
        {'type': 'volume_group', 'id': 'vg', 'name': 'vg0',
         'devices': ['pv']},
        {'type': 'logical_volume', 'id': 'lv-root', 'name': 'root',
         'volume_group': 'vg', 'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-esp', 'device': 'esp',       # 6
         'fstype': 'vfat', 'mount_point': '/boot/efi'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'lv-root',  # 7
         'fstype': 'ext4', 'mount_point': '/'},
    ],
    'bootloader': {'mode': 'both'},
}


def changed(index, **fields):
    doc = copy.deepcopy(BASE)
    doc['storage'][index].update(fields)
    for key, value in fields.items():
        if value is None:
            del doc['storage'][index][key]
    return doc


def messages_at(doc, path):
    return [e.message for e in validator.validate(doc) if e.path == path]


def test_base_is_valid():
    assert validator.validate(BASE) == []


@pytest.mark.parametrize('fields, why', [
    ({'fstype': 'ext4'}, 'esp flag'),
    ({'fstype': 'xfs', 'mount_point': None}, 'esp flag'),
])
def test_an_esp_partition_must_hold_vfat(fields, why):
    found = messages_at(changed(6, **fields), '$.storage[6].fstype')
    assert any('must be vfat' in m and why in m for m in found), found


def test_a_file_system_at_boot_efi_must_be_vfat():
    doc = changed(2, flags=[])
    doc['bootloader']['mode'] = 'bios'
    doc['storage'][6]['fstype'] = 'ext4'
    found = messages_at(doc, '$.storage[6].fstype')
    assert any('mounted at /boot/efi' in m for m in found), found


def test_an_esp_on_raid_members_must_hold_vfat():
    doc = copy.deepcopy(BASE)
    doc['storage'][1:3] = [
        {'type': 'partition', 'id': 'grub', 'device': 'sda',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'esp', 'device': 'sda',
         'size': '256 MiB', 'flags': ['esp']},
        {'type': 'disk', 'id': 'sdb', 'match': {'name': '/dev/sdb'}},
        {'type': 'partition', 'id': 'esp1', 'device': 'sdb',
         'size': '256 MiB', 'flags': ['esp']},
        {'type': 'raid', 'id': 'md-esp', 'level': 1, 'metadata': '1.0',
         'devices': ['esp', 'esp1']}]
    fs = next(o for o in doc['storage'] if o['id'] == 'fs-esp')
    fs.update(device='md-esp', fstype='ext4', mount_point='/boot/esp')
    index = doc['storage'].index(fs)
    assert any('must be vfat' in m for m in messages_at(
        doc, '$.storage[%d].fstype' % index))
    fs['fstype'] = 'vfat'
    assert validator.validate(doc) == []


@pytest.mark.parametrize('name, words', [
    ('.', "refuses '.'"), ('..', "refuses '..'"),
    ('snapshot', "starting with 'snapshot'"),
    ('snapshot0', "starting with 'snapshot'"),
    ('pvmove1', "starting with 'pvmove'"),
    ('data_tmeta', "containing '_tmeta'"),
    ('x_rimage_0', "containing '_rimage'"),
    ('a_cdata', "containing '_cdata'"), ('a_vorigin', "'_vorigin'"),
])
def test_logical_volume_names_lvm_refuses(name, words):
    found = messages_at(changed(5, name=name), '$.storage[5].name')
    assert any(words in m for m in found), found


@pytest.mark.parametrize('name', ['.', '..', 'mapper', 'disk', 'md', 'sda',
                                  'nvme0n1', 'dm-0', 'null', 'pts'])
def test_volume_group_names_that_are_not_free_in_dev(name):
    assert messages_at(changed(4, name=name), '$.storage[4].name')


def test_device_mapper_name_length_counts_doubled_hyphens():
    # vg "a-b" + lv: dm name "a--b-<lv>"; 127 bytes fit, 128 do not.
    doc = changed(4, name='a-b')
    doc['storage'][5]['name'] = 'x' * 122
    assert validator.validate(doc) == []
    doc['storage'][5]['name'] = 'x' * 123
    found = messages_at(doc, '$.storage[5].name')
    assert any('128 bytes, over the 127' in m for m in found), found


@pytest.mark.parametrize('name', ['.', '..'])
def test_raid_names_that_are_directories(name):
    doc = copy.deepcopy(BASE)
    doc['storage'] += [
        {'type': 'disk', 'id': 'sdb', 'match': {'name': '/dev/sdb'}},
        {'type': 'disk', 'id': 'sdc', 'match': {'name': '/dev/sdc'}},
        {'type': 'raid', 'id': 'md', 'name': name, 'level': 1,
         'devices': ['sdb', 'sdc']}]
    assert messages_at(doc, '$.storage[10].name')


@pytest.mark.parametrize('fstype, limit', [
    ('ext4', 16), ('ext2', 16), ('xfs', 12), ('btrfs', 255), ('swap', 15)])
def test_labels_are_limited_in_bytes(fstype, limit):
    two_bytes = '\u00e9'  # é: one character, two bytes of UTF-8
    fits = two_bytes * (limit // 2) + 'x' * (limit % 2)
    assert messages_at(_labelled(fstype, fits), '$.storage[7].label') == []
    over = two_bytes * (limit // 2 + 1)
    assert len(over) <= limit  # few enough characters: the old check passed
    found = messages_at(_labelled(fstype, over), '$.storage[7].label')
    assert any('at most %d bytes' % limit in m for m in found), found


def _labelled(fstype, label):
    """BASE with a ``fstype`` file system labelled ``label`` at index 7."""
    if fstype != 'swap':
        return changed(7, fstype=fstype, label=label)
    doc = copy.deepcopy(BASE)
    doc['storage'][5]['size'] = '50%'
    doc['storage'][6:6] = [
        {'type': 'logical_volume', 'id': 'lv-swap', 'name': 'swap',
         'volume_group': 'vg', 'size': 'remaining'},
        {'type': 'filesystem', 'id': 'swap', 'device': 'lv-swap',
         'fstype': 'swap', 'label': label}]
    return doc


def test_a_lone_surrogate_label_is_an_error_not_a_crash():
    # JSON "\ud800" decodes to a str that cannot be encoded as UTF-8.
    doc = validator.json.loads(
        validator.json.dumps(changed(7, label='x')).replace('"x"',
                                                            '"\\ud800"'))
    assert messages_at(doc, '$.storage[7].label')


def test_mkfs_truncates_a_label_that_fits_in_characters(tmp_path):
    # Why bytes: 9 characters pass a 16-character limit, but mke2fs keeps
    # 16 bytes, so the label on disk is not the scheme's (and a kept file
    # system would then fail its label check on the next deploy).
    if shutil.which('mkfs.ext4') is None:
        pytest.skip('e2fsprogs is not installed')
    label = '\u00e9' * 9
    image = tmp_path / 'fs.img'
    subprocess.run(['truncate', '-s', '8M', str(image)], check=True)
    subprocess.run(['mkfs.ext4', '-q', '-F', '-L', label, str(image)],
                   check=True, capture_output=True, timeout=60)
    shown = subprocess.run(['blkid', '-p', '-o', 'value', '-s', 'LABEL',
                            str(image)], capture_output=True, text=True)
    assert shown.stdout.strip() != label
    assert messages_at(changed(7, label=label), '$.storage[7].label')
