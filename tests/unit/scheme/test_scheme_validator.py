"""Every semantic check of the validator, on an invalid document each:
the error must name the exact JSON path and say why."""

import copy
import json

import pytest

from fa_agent.scheme import model
from fa_agent.scheme import validator


def one_disk():
    """A valid one-disk UEFI+BIOS scheme the tests below break."""
    return {
        'version': 1,
        'storage': [
            {'type': 'disk', 'id': 'sda', 'match': {'name': '/dev/sda'},
             'table': 'gpt'},                                          # 0
            {'type': 'partition', 'id': 'grub', 'device': 'sda',
             'size': '1 MiB', 'flags': ['bios_grub']},                 # 1
            {'type': 'partition', 'id': 'esp', 'device': 'sda',
             'size': '512 MiB', 'flags': ['esp']},                     # 2
            {'type': 'partition', 'id': 'root', 'device': 'sda',
             'size': 'remaining'},                                     # 3
            {'type': 'filesystem', 'id': 'fs-esp', 'device': 'esp',
             'fstype': 'vfat', 'mount_point': '/boot/efi'},            # 4
            {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
             'fstype': 'ext4', 'mount_point': '/', 'label': 'root'},   # 5
        ],
        'images': [{'url': 'http://127.0.0.1/root.tar.gz', 'format': 'tar',
                    'target': '/'}],
        'bootloader': {'mode': 'both'},
    }


def two_disks_raid():
    """Two disks, RAID1 /boot and LVM root on RAID1."""
    storage = []
    for disk in ('sda', 'sdb'):
        storage += [
            {'type': 'disk', 'id': disk, 'match': {'name': disk}},
            {'type': 'partition', 'id': disk + '-grub', 'device': disk,
             'size': '1 MiB', 'flags': ['bios_grub']},
            {'type': 'partition', 'id': disk + '-boot', 'device': disk,
             'size': '1 GiB', 'flags': ['raid']},
            {'type': 'partition', 'id': disk + '-pv', 'device': disk,
             'size': 'remaining', 'flags': ['raid']},
        ]
    storage += [
        {'type': 'raid', 'id': 'md-boot', 'level': 1,
         'devices': ['sda-boot', 'sdb-boot']},                         # 8
        {'type': 'raid', 'id': 'md-pv', 'level': 1,
         'devices': ['sda-pv', 'sdb-pv']},                             # 9
        {'type': 'volume_group', 'id': 'vg', 'name': 'os',
         'devices': ['md-pv']},                                        # 10
        {'type': 'logical_volume', 'id': 'lv-root', 'name': 'root',
         'volume_group': 'vg', 'size': '10 GiB'},                      # 11
        {'type': 'logical_volume', 'id': 'lv-var', 'name': 'var',
         'volume_group': 'vg', 'size': 'remaining'},                   # 12
        {'type': 'filesystem', 'id': 'fs-boot', 'device': 'md-boot',
         'fstype': 'ext4', 'mount_point': '/boot'},                    # 13
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'lv-root',
         'fstype': 'xfs', 'mount_point': '/'},                         # 14
        {'type': 'filesystem', 'id': 'fs-var', 'device': 'lv-var',
         'fstype': 'xfs', 'mount_point': '/var'},                      # 15
    ]
    return {'storage': storage, 'bootloader': {'mode': 'bios'}}


def errors_of(doc):
    errors = validator.validate(doc)
    assert errors == sorted(errors)
    for error in errors:
        assert isinstance(error, validator.SchemeError)
        assert error.path.startswith('$')
    return errors


def assert_error(doc, path, fragment):
    errors = errors_of(doc)
    hits = [e for e in errors if e.path == path and fragment in e.message]
    assert hits, 'no error at %s saying %r; got:\n%s' % (
        path, fragment, '\n'.join(map(str, errors)))
    return errors


@pytest.mark.parametrize('factory', [one_disk, two_disks_raid])
def test_examples_are_valid(factory):
    assert errors_of(factory()) == []
    scheme = validator.load(factory())
    assert isinstance(scheme, model.Scheme)


def test_json_text_is_accepted():
    assert validator.validate(json.dumps(one_disk())) == []
    assert validator.load(json.dumps(one_disk())) == validator.load(
        one_disk())


# -- ids and references --

def test_dangling_id():
    doc = one_disk()
    doc['storage'][3]['device'] = 'sdz'
    assert_error(doc, '$.storage[3].device',
                 "refers to 'sdz', which is not defined")


def test_dangling_raid_member_path_has_index():
    doc = two_disks_raid()
    doc['storage'][8]['devices'][1] = 'sdc-boot'
    assert_error(doc, '$.storage[8].devices[1]', "refers to 'sdc-boot'")


def test_duplicate_id():
    doc = one_disk()
    doc['storage'].append({'type': 'partition', 'id': 'esp',
                           'device': 'sda', 'size': '1 MiB'})
    assert_error(doc, '$.storage[6].id',
                 "duplicate id 'esp' (also used by $.storage[2])")


def test_wrong_parent_type():
    doc = two_disks_raid()
    doc['storage'][11]['volume_group'] = 'sda-pv'
    assert_error(doc, '$.storage[11].volume_group',
                 "a logical_volume cannot be built on 'sda-pv', a partition")


def test_device_used_twice():
    doc = one_disk()
    doc['storage'].append({'type': 'filesystem', 'id': 'fs-data',
                           'device': 'root', 'fstype': 'xfs',
                           'mount_point': '/data'})
    assert_error(doc, '$.storage[6].device', "'root' is used more than once")


def test_disk_with_partitions_used_whole():
    doc = one_disk()
    doc['storage'].append({'type': 'filesystem', 'id': 'fs-data',
                           'device': 'sda', 'fstype': 'xfs'})
    assert_error(doc, '$.storage[6].device',
                 "'sda' holds partitions, so file system 'fs-data' cannot")


def test_cycle():
    doc = two_disks_raid()
    doc['storage'] += [
        {'type': 'raid', 'id': 'a', 'level': 1, 'devices': ['b', 'sda-grub']},
        {'type': 'raid', 'id': 'b', 'level': 1, 'devices': ['a', 'sdb-grub']},
    ]
    errors = assert_error(doc, '$.storage[16]', "'a' depends on itself")
    assert any(e.path == '$.storage[17]' and "'b' depends on itself"
               in e.message for e in errors)


def test_self_reference():
    doc = one_disk()
    doc['storage'][3]['device'] = 'root'
    assert_error(doc, '$.storage[3]', "'root' depends on itself")


# -- sizes --

def test_two_remaining_partitions():
    doc = one_disk()
    doc['storage'][2]['size'] = 'remaining'
    assert_error(doc, '$.storage[3].size', "only one partition per 'sda' "
                 "may use \"remaining\" ('esp' already does)")


def test_two_remaining_spelled_differently():
    # " remaining" parses as remaining too, so it counts.
    doc = one_disk()
    doc['storage'][2]['size'] = ' remaining'
    assert_error(doc, '$.storage[3].size', 'only one partition per')


def test_two_remaining_logical_volumes():
    doc = two_disks_raid()
    doc['storage'][11]['size'] = 'remaining'
    assert_error(doc, '$.storage[12].size',
                 "only one logical volume per 'vg' may use \"remaining\"")


def test_percentages_over_100():
    doc = two_disks_raid()
    doc['storage'][11]['size'] = '60%'
    doc['storage'][12]['size'] = '50%'
    assert_error(doc, '$.storage[10]',
                 "the logical volumes on 'vg' ask for 110% of it")


def test_bad_size_text():
    doc = one_disk()
    doc['storage'][2]['size'] = '512 mib'
    assert_error(doc, '$.storage[2].size', "unknown unit 'mib'")


# -- RAID --

@pytest.mark.parametrize('level, members, ok', [
    (0, 1, False), (0, 2, True),
    (1, 1, False), (1, 2, True),
    (5, 2, False), (5, 3, True),
    (6, 3, False), (6, 4, True),
    (10, 1, False), (10, 2, True),
])
def test_raid_level_vs_members(level, members, ok):
    doc = two_disks_raid()
    parts = []
    for n in range(members):
        disk = 'd%d' % n
        doc['storage'] += [
            {'type': 'disk', 'id': disk, 'match': {'serial': 'S%d' % n}},
            {'type': 'partition', 'id': disk + 'p1', 'device': disk,
             'size': '1 GiB'}]
        parts.append(disk + 'p1')
    index = len(doc['storage'])
    doc['storage'] += [
        {'type': 'raid', 'id': 'md-data', 'level': level, 'devices': parts},
        {'type': 'filesystem', 'id': 'fs-data', 'device': 'md-data',
         'fstype': 'xfs', 'mount_point': '/data'}]
    if ok:
        assert errors_of(doc) == []
    else:
        assert_error(doc, '$.storage[%d].devices' % index,
                     'RAID %d needs at least' % level)


def test_spares_on_raid0():
    doc = two_disks_raid()
    doc['storage'][9]['level'] = 0
    doc['storage'][9]['spares'] = ['sda-grub']
    assert_error(doc, '$.storage[9].spares', 'RAID 0 has no redundancy')


def test_raid_member_listed_twice():
    doc = two_disks_raid()
    doc['storage'][8]['devices'] = ['sda-boot', 'sda-boot']
    assert_error(doc, '$.storage[8].devices', "'sda-boot' is listed twice")


def uefi_raid():
    """UEFI with ESPs on both RAID members."""
    doc = two_disks_raid()
    for n in (2, 6):   # the 1 GiB partitions become ESP members
        doc['storage'][n]['flags'] = ['esp']
    doc['storage'][8]['metadata'] = '1.0'
    doc['storage'][13].update(fstype='vfat', mount_point='/boot/efi')
    doc['bootloader']['mode'] = 'uefi'
    return doc


def test_esp_on_raid_with_metadata_1_0_is_valid():
    assert errors_of(uefi_raid()) == []


@pytest.mark.parametrize('mount_point', ['/boot/efi', '/efi'])
def test_esp_on_raid_needs_metadata_1_0(mount_point):
    # Caught through the mount point or, with another mount point,
    # through the ESP flag of its members.
    doc = uefi_raid()
    del doc['storage'][8]['metadata']
    doc['storage'][13]['mount_point'] = mount_point
    assert_error(doc, '$.storage[8].metadata', 'needs metadata "1.0"')


# -- file systems --

def test_duplicate_mount_points():
    doc = two_disks_raid()
    doc['storage'][15]['mount_point'] = '/boot'
    assert_error(doc, '$.storage[15].mount_point',
                 "mount point '/boot' is also used by 'fs-boot'")


def test_no_root_file_system():
    doc = one_disk()
    doc['storage'][5]['mount_point'] = '/srv'
    del doc['images']
    assert_error(doc, '$.storage', 'no file system is mounted at "/"')


def test_root_cannot_be_vfat():
    doc = one_disk()
    doc['storage'][5]['fstype'] = 'vfat'
    assert_error(doc, '$.storage[5].fstype', 'cannot be vfat')


def test_swap_is_not_mounted():
    doc = two_disks_raid()
    doc['storage'][15]['fstype'] = 'swap'
    assert_error(doc, '$.storage[15].mount_point', 'swap is not mounted')


@pytest.mark.parametrize('fstype, limit', [
    ('ext4', 16), ('ext3', 16), ('ext2', 16), ('xfs', 12), ('vfat', 11),
    ('swap', 15)])
def test_label_too_long(fstype, limit):
    doc = two_disks_raid()
    fs = doc['storage'][15]
    fs['fstype'] = fstype
    if fstype in ('swap', 'vfat'):
        del fs['mount_point']
    fs['label'] = 'X' * limit
    assert errors_of(doc) == []
    fs['label'] = 'X' * (limit + 1)
    assert_error(doc, '$.storage[15].label',
                 '%s labels are at most %d bytes' % (fstype, limit))


# -- boot --

def test_uefi_without_esp():
    doc = one_disk()
    doc['storage'][2]['flags'] = []
    doc['bootloader']['mode'] = 'uefi'
    assert_error(doc, '$.bootloader.mode', 'UEFI boot needs an EFI system '
                 'partition')


def test_bios_gpt_without_bios_grub():
    doc = two_disks_raid()
    doc['storage'][5]['flags'] = []
    errors = assert_error(doc, '$.bootloader.mode', "BIOS boot from gpt "
                          "disk 'sdb' needs a partition with the "
                          '"bios_grub" flag')
    assert not any("'sda'" in e.message for e in errors)


def test_bios_msdos_needs_no_bios_grub():
    doc = two_disks_raid()
    for n in (0, 4):
        doc['storage'][n]['table'] = 'msdos'
    for n in (5, 1):
        del doc['storage'][n]
    assert errors_of(doc) == []


def test_bootloader_device_type():
    doc = two_disks_raid()
    doc['bootloader']['devices'] = ['sda', 'lv-root', 'nope']
    errors = assert_error(doc, '$.bootloader.devices[1]',
                          "not to 'lv-root' (a logical_volume)")
    assert any(e.path == '$.bootloader.devices[2]' and "refers to 'nope'"
               in e.message for e in errors)


def test_boot_disks():
    assert validator.boot_disks(validator.load(two_disks_raid())) == [
        'sda', 'sdb']
    doc = two_disks_raid()
    doc['bootloader']['devices'] = ['sdb']
    assert validator.boot_disks(validator.load(doc)) == ['sdb']
    assert validator.boot_disks(validator.load(one_disk())) == ['sda']


# -- msdos --

def test_msdos_at_most_four_partitions():
    doc = one_disk()
    doc['storage'][0]['table'] = 'msdos'
    doc['storage'][1]['flags'] = []
    doc['bootloader']['mode'] = 'uefi'
    doc['storage'].append({'type': 'partition', 'id': 'p4',
                           'device': 'sda', 'size': '1 GiB'})
    assert errors_of(doc) == []
    doc['storage'].append({'type': 'partition', 'id': 'p5',
                           'device': 'sda', 'size': '1 GiB'})
    assert_error(doc, '$.storage[7]', 'an msdos table holds at most 4')


@pytest.mark.parametrize('field, value, path, fragment', [
    ('name', 'ESP', '$.storage[2].name', "name needs a gpt table; 'sda'"),
    ('type_guid', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
     '$.storage[2].type_guid', 'type_guid needs a gpt table'),
    ('flags', ['bios_grub'], '$.storage[2].flags', 'bios_grub exists only '
     'on gpt'),
])
def test_msdos_gpt_only_fields(field, value, path, fragment):
    doc = one_disk()
    doc['storage'][0]['table'] = 'msdos'
    doc['storage'][1]['flags'] = []
    doc['bootloader']['mode'] = 'uefi'
    assert errors_of(doc) == []
    doc['storage'][2][field] = value
    assert_error(doc, path, fragment)


# -- images --

def test_fs_on_device_an_image_targets():
    doc = one_disk()
    doc['images'] = [{'url': 'http://127.0.0.1/root.img', 'format':
                      'fs_image', 'target': 'root'}]
    assert_error(doc, '$.images[0].target', "the image is written to "
                 "'root', which the scheme also formats as file system "
                 "'fs-root'")


def test_whole_disk_image_plus_partitions():
    doc = one_disk()
    doc['images'] = [{'url': 'https://127.0.0.1/disk.qcow2', 'format':
                      'qcow2', 'target': 'sda'}]
    assert_error(doc, '$.images[0].target', "a whole-disk image replaces "
                 "all of 'sda', but the scheme also builds 'grub', 'esp', "
                 "'root' on it")


def test_whole_disk_image_alone_needs_no_root():
    doc = {'storage': [{'type': 'disk', 'id': 'sda',
                        'match': {'size': '>= 10'}}],
           'images': [{'url': 'file:///tmp/disk.raw', 'format': 'raw',
                       'target': 'sda', 'compression': 'zstd'}],
           'configdrive': {'device': 'sda'}}
    assert errors_of(doc) == []


@pytest.mark.parametrize('fmt, target, fragment', [
    ('raw', 'root', "a raw image goes to a disk, not to 'root'"),
    ('tar', 'root', 'a tar image goes to a filesystem'),
    ('fs_image', 'sda', 'a fs_image image goes to a filesystem or '
     'partition or raid or logical_volume'),
])
def test_image_format_vs_target(fmt, target, fragment):
    doc = one_disk()
    doc['images'] = [{'url': 'http://127.0.0.1/x', 'format': fmt,
                      'target': target}]
    assert_error(doc, '$.images[0].target', fragment)


def test_image_to_unmounted_path():
    doc = one_disk()
    doc['images'][0]['target'] = '/srv'
    assert_error(doc, '$.images[0].target', "no file system is mounted at "
                 "'/srv'")


def test_two_images_one_target():
    doc = one_disk()
    doc['images'].append({'url': 'http://127.0.0.1/y.tar', 'format': 'tar',
                          'target': 'fs-root'})
    assert_error(doc, '$.images[1].target', "'fs-root' is already the target "
                 'of $.images[0]')


@pytest.mark.parametrize('algorithm, digits', [
    ('md5', 32), ('sha256', 64), ('sha512', 128)])
def test_checksum_length(algorithm, digits):
    doc = one_disk()
    doc['images'][0]['checksum'] = {'algorithm': algorithm,
                                    'value': 'a' * digits}
    assert errors_of(doc) == []
    doc['images'][0]['checksum']['value'] = 'a' * (digits - 1)
    assert_error(doc, '$.images[0].checksum.value', 'a %s checksum has %d '
                 'hex digits' % (algorithm, digits))


def test_image_over_kept_fs():
    doc = two_disks_raid()
    doc['storage'][15]['keep_data'] = True
    doc['images'] = [{'url': 'http://127.0.0.1/var.tar', 'format': 'tar',
                      'target': '/var'}]
    assert_error(doc, '$.images[0].target', "the image would overwrite "
                 "'fs-var', which is marked keep_data")


def test_image_into_fs_on_kept_volume():
    doc = two_disks_raid()
    doc['storage'][12]['keep_data'] = True
    doc['images'] = [{'url': 'http://127.0.0.1/var.tar', 'format': 'tar',
                      'target': '/var'}]
    assert_error(doc, '$.images[0].target', "the image would overwrite "
                 "'lv-var', which is marked keep_data")


def test_kept_data_volume_is_valid():
    doc = two_disks_raid()
    doc['storage'][12]['keep_data'] = True
    doc['storage'][15]['keep_data'] = True
    assert errors_of(doc) == []
    scheme = validator.load(doc)
    assert scheme.is_kept('lv-var') and scheme.is_kept('md-pv')
    assert not scheme.is_kept('lv-root')


def test_root_cannot_be_kept():
    doc = one_disk()
    doc['storage'][5]['keep_data'] = True
    del doc['images']
    assert_error(doc, '$.storage[5].keep_data', 'the root file system is '
                 'rewritten by every deploy')


# -- configdrive --

def test_configdrive_on_disk_needs_whole_disk_image():
    doc = one_disk()
    doc['configdrive'] = {'device': 'sda'}
    assert_error(doc, '$.configdrive.device', 'a disk id is only allowed '
                 'when a whole-disk image is written to it')


def test_configdrive_on_partition_with_fs():
    doc = one_disk()
    doc['configdrive'] = {'device': 'esp'}
    assert_error(doc, '$.configdrive.device', "'esp' is used more than once")


def test_configdrive_bad_size():
    doc = one_disk()
    doc['storage'].insert(3, {'type': 'partition', 'id': 'cd',
                              'device': 'sda', 'size': '64 MiB'})
    doc['configdrive'] = {'device': 'cd', 'size': '64 M'}
    assert_error(doc, '$.configdrive.size', "unknown unit 'M'")


@pytest.mark.parametrize('size', ['10%', 'remaining'])
def test_configdrive_size_must_be_fixed(size):
    doc = one_disk()
    doc['storage'].insert(3, {'type': 'partition', 'id': 'cd',
                              'device': 'sda', 'size': '64 MiB'})
    doc['configdrive'] = {'device': 'cd', 'size': size}
    assert_error(doc, '$.configdrive.size', 'must be fixed')


# -- JSON Schema and several errors --

@pytest.mark.parametrize('mutate, path, fragment', [
    (lambda d: d['storage'][0].update(colour='red'), '$.storage[0]',
     "unknown field: 'colour'"),
    (lambda d: d['storage'][3].pop('size'), '$.storage[3]',
     "'size' is a required property"),
    (lambda d: d['storage'][4].update(fstype='ntfs'), '$.storage[4].fstype',
     "'ntfs' is not one of"),
    (lambda d: d['storage'][0].update(type='tape'), '$.storage[0].type',
     "'tape' is not one of"),
    (lambda d: d.update(version=2), '$.version', '1 was expected'),
    (lambda d: d.pop('storage'), '$', "'storage' is a required property"),
    (lambda d: d['images'][0].update(url='ftp://x/y'), '$.images[0].url',
     'does not match'),
    (lambda d: d['storage'][1].update(id='bad id'), '$.storage[1].id',
     'does not match'),
])
def test_schema_errors(mutate, path, fragment):
    doc = one_disk()
    mutate(doc)
    assert_error(doc, path, fragment)


@pytest.mark.parametrize('document', [None, 1, 'not json', [], '[]'])
def test_not_a_scheme(document):
    errors = errors_of(document)
    assert errors and errors[0].path == '$'


def test_several_errors_at_once():
    doc = two_disks_raid()
    doc['storage'][3]['device'] = 'sdz'                  # dangling
    doc['storage'][9]['level'] = 5                       # 2 members
    doc['storage'][15]['mount_point'] = '/'              # duplicate mount
    doc['storage'][13]['label'] = 'a-label-far-too-long'
    doc['storage'][0]['colour'] = 'red'                  # schema
    errors = errors_of(doc)
    expected = {
        ('$.storage[0]', 'unknown field'),
        ('$.storage[3].device', "refers to 'sdz'"),
        ('$.storage[9].devices', 'RAID 5 needs at least 3'),
        ('$.storage[15].mount_point', "mount point '/' is also used"),
        ('$.storage[13].label', 'ext4 labels are at most 16'),
    }
    for path, fragment in expected:
        assert any(e.path == path and fragment in e.message for e in errors)
    with pytest.raises(validator.InvalidScheme) as info:
        validator.load(doc)
    assert info.value.errors == errors
    for error in errors:
        assert str(error) in str(info.value)


def test_malformed_object_is_not_reported_again_as_dangling():
    doc = one_disk()
    doc['storage'][3]['flags'] = ['nonsense']
    errors = errors_of(doc)
    assert [e.path for e in errors] == ['$.storage[3].flags[0]']


def test_validate_does_not_change_its_input():
    doc = two_disks_raid()
    before = copy.deepcopy(doc)
    validator.validate(doc)
    validator.load(doc)
    assert doc == before
