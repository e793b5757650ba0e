"""The planner: a valid scheme on an inventory gives MiB-aligned offsets
and sizes, or errors that name the path of what does not fit. Also the
matcher (root-device-hint style) and both inventory formats."""

import pytest

from fa_agent.scheme import inventory
from fa_agent.scheme import matcher
from fa_agent.scheme import planner
from fa_agent.scheme import validator

GiB = 1024 ** 3
MiB = 1024 ** 2


def lsblk(*disks):
    """lsblk --json --bytes output; disks are (name, bytes, fields)."""
    devices = []
    for name, size, *extra in disks:
        dev = {'name': name, 'path': '/dev/' + name, 'size': size,
               'type': 'disk', 'rota': False, 'serial': None, 'wwn': None,
               'vendor': 'ATA     ', 'model': 'Disk', 'hctl': None,
               'ro': False}
        if extra:
            dev.update(extra[0])
        devices.append(dev)
    return {'blockdevices': devices}


def plan(doc, inv):
    return planner.plan(validator.load(doc), inventory.load(inv))


def plan_errors(doc, inv):
    with pytest.raises(planner.PlanError) as info:
        plan(doc, inv)
    for error in info.value.errors:
        assert error.path.startswith('$')
        assert str(error) in str(info.value)
    return info.value.errors


def assert_plan_error(doc, inv, path, fragment):
    errors = plan_errors(doc, inv)
    assert any(e.path == path and fragment in e.message for e in errors), \
        '\n'.join(map(str, errors))


def disk_scheme(table='gpt', sizes=('1 MiB', '512 MiB', 'remaining'),
                disk_match=None):
    storage = [{'type': 'disk', 'id': 'sda', 'table': table,
                'match': disk_match or {'name': 'sda'}}]
    for n, size in enumerate(sizes, 1):
        storage.append({'type': 'partition', 'id': 'p%d' % n,
                        'device': 'sda', 'size': size})
    storage.append({'type': 'filesystem', 'id': 'fs-root',
                    'device': 'p%d' % len(sizes), 'fstype': 'ext4',
                    'mount_point': '/'})
    return {'storage': storage}


def layout(result, *ids):
    return [(result.devices[i].path, result.devices[i].start_mib,
             result.devices[i].end_mib, result.devices[i].size_mib)
            for i in ids]


# -- partitions --

def test_gpt_offsets_are_mib_aligned_and_keep_the_backup_table():
    result = plan(disk_scheme(), lsblk(('sda', 10 * GiB)))
    assert layout(result, 'p1', 'p2', 'p3') == [
        ('/dev/sda1', 1, 2, 1),
        ('/dev/sda2', 2, 514, 512),
        ('/dev/sda3', 514, 10239, 9725),
    ]
    assert result.devices['p3'].grows
    assert not result.devices['p1'].grows
    assert result.devices['fs-root'].path == '/dev/sda3'
    assert result.devices['fs-root'].size_mib == 9725
    assert result.disks['sda'].name == '/dev/sda'


def test_msdos_uses_the_disk_to_its_end():
    result = plan(disk_scheme('msdos'), lsblk(('sda', 10 * GiB)))
    assert layout(result, 'p3') == [('/dev/sda3', 514, 10240, 9726)]


def test_odd_byte_sizes_round_to_whole_mib():
    # 1 B rounds up to 1 MiB, 1 GB (decimal) to 954 MiB; a disk of
    # 10 GiB + 1000 B has 10240 whole MiB.
    result = plan(disk_scheme(sizes=('1 B', '1 GB', 'remaining')),
                  lsblk(('sda', 10 * GiB + 1000)))
    assert layout(result, 'p1', 'p2', 'p3') == [
        ('/dev/sda1', 1, 2, 1),
        ('/dev/sda2', 2, 956, 954),
        ('/dev/sda3', 956, 10239, 9283),
    ]


def test_percentages_are_of_the_usable_space():
    # usable = 10240 - 1 (start) - 1 (gpt backup) = 10238 MiB
    result = plan(disk_scheme(sizes=('25%', '50%', 'remaining')),
                  lsblk(('sda', 10 * GiB)))
    assert layout(result, 'p1', 'p2', 'p3') == [
        ('/dev/sda1', 1, 2560, 2559),
        ('/dev/sda2', 2560, 7679, 5119),
        ('/dev/sda3', 7679, 10239, 2560),
    ]


def test_nvme_and_loop_partition_names():
    assert planner.partition_path('/dev/nvme0n1', 2) == '/dev/nvme0n1p2'
    assert planner.partition_path('/dev/loop3', 1) == '/dev/loop3p1'
    assert planner.partition_path('/dev/sdb', 1) == '/dev/sdb1'
    assert planner.partition_path('/dev/md/data', 1) == '/dev/md/data1'
    result = plan(disk_scheme(disk_match={'name': 'nvme0n1'}),
                  lsblk(('nvme0n1', 10 * GiB)))
    assert result.devices['p3'].path == '/dev/nvme0n1p3'


def test_partitions_do_not_fit():
    assert_plan_error(disk_scheme(sizes=('6 GiB', '5 GiB')),
                      lsblk(('sda', 10 * GiB)), '$.storage[0]',
                      "the partitions on 'sda' need 11 GiB but /dev/sda "
                      '(disk) has 10.0 GiB usable')


def test_nothing_remains():
    assert_plan_error(disk_scheme(sizes=('10237 MiB', '1 MiB', 'remaining')),
                      lsblk(('sda', 10 * GiB)), '$.storage[3].size',
                      "nothing remains for 'p3' on 'sda'")


def test_percentage_below_one_mib():
    assert_plan_error(disk_scheme(sizes=('0.001%', 'remaining')),
                      lsblk(('sda', 10 * GiB)), '$.storage[1].size',
                      'less than 1 MiB')


def test_disk_too_small_for_a_table():
    assert_plan_error(disk_scheme(), lsblk(('sda', 2 * MiB)),
                      '$.storage[0]', 'too small for a partition table')


def test_msdos_cannot_address_past_2_tib():
    doc = disk_scheme('msdos', sizes=('1 TiB', '1 TiB', 'remaining'))
    assert_plan_error(doc, lsblk(('sda', 3 * 1024 * GiB)), '$.storage[2]',
                      'past the 2 TiB an msdos table can address')
    # gpt has no such limit
    plan(disk_scheme('gpt', sizes=('1 TiB', '1 TiB', 'remaining')),
         lsblk(('sda', 3 * 1024 * GiB)))


# -- RAID --

def raid_scheme(level, members, metadata=None, partitions_on_raid=False):
    storage = []
    for n in range(members):
        storage.append({'type': 'disk', 'id': 'd%d' % n,
                        'match': {'name': 'sd' + 'abcdefgh'[n]}})
    raid = {'type': 'raid', 'id': 'md-data', 'level': level,
            'devices': ['d%d' % n for n in range(members)]}
    if metadata:
        raid['metadata'] = metadata
    storage.append(raid)
    if partitions_on_raid:
        storage += [
            {'type': 'partition', 'id': 'r1', 'device': 'md-data',
             'size': '1 GiB'},
            {'type': 'partition', 'id': 'r2', 'device': 'md-data',
             'size': 'remaining'},
            {'type': 'filesystem', 'id': 'fs', 'device': 'r2',
             'fstype': 'ext4', 'mount_point': '/'}]
    else:
        storage.append({'type': 'filesystem', 'id': 'fs',
                        'device': 'md-data', 'fstype': 'ext4',
                        'mount_point': '/'})
    return {'storage': storage}


def disks(count, size=10 * GiB):
    return lsblk(*[('sd' + 'abcdefgh'[n], size) for n in range(count)])


# Members of 10240 MiB lose 82 MiB to md 1.2 metadata (10240 // 128 + 2),
# leaving 10158 MiB each; metadata 1.0 loses 1 MiB.
@pytest.mark.parametrize('level, members, metadata, size_mib', [
    (0, 2, None, 2 * 10158),
    (0, 3, None, 3 * 10158),
    (1, 2, None, 10158),
    (1, 3, None, 10158),
    (1, 2, '1.0', 10239),
    (1, 2, '0.90', 10239),
    (5, 3, None, 2 * 10158),
    (5, 4, None, 3 * 10158),
    (6, 4, None, 2 * 10158),
    (10, 2, None, 10158),
    (10, 3, None, 15237),
    (10, 4, None, 2 * 10158),
])
def test_raid_size_per_level(level, members, metadata, size_mib):
    result = plan(raid_scheme(level, members, metadata), disks(members))
    md = result.devices['md-data']
    assert (md.path, md.size_mib) == ('/dev/md/md-data', size_mib)
    assert result.devices['fs'].size_mib == size_mib


def test_raid_uses_its_smallest_member():
    inv = lsblk(('sda', 10 * GiB), ('sdb', 20 * GiB))
    assert plan(raid_scheme(1, 2), inv).devices['md-data'].size_mib == 10158


def test_partitions_on_raid():
    result = plan(raid_scheme(1, 2, partitions_on_raid=True), disks(2))
    # gpt on the 10158 MiB array: 1 MiB lead-in, 1 MiB backup table
    assert layout(result, 'r1', 'r2') == [
        ('/dev/md/md-data1', 1, 1025, 1024),
        ('/dev/md/md-data2', 1025, 10157, 9132),
    ]
    assert result.devices['r1'].parent_path == '/dev/md/md-data'


def test_raid_members_too_small():
    doc = raid_scheme(1, 2)
    assert_plan_error(doc, disks(2, size=2 * MiB), '$.storage[2]',
                      "the members of 'md-data'")


# -- LVM --

def lvm_scheme(*lv_sizes, pv_size='1001 MiB'):
    storage = [
        {'type': 'disk', 'id': 'sda', 'match': {'name': 'sda'}},
        {'type': 'partition', 'id': 'pv1', 'device': 'sda',
         'size': pv_size, 'flags': ['lvm']},
        {'type': 'volume_group', 'id': 'vg', 'name': 'sys',
         'devices': ['pv1']},
    ]
    for n, size in enumerate(lv_sizes):
        storage.append({'type': 'logical_volume', 'id': 'lv%d' % n,
                        'name': 'lv%d' % n, 'volume_group': 'vg',
                        'size': size})
    storage.append({'type': 'filesystem', 'id': 'fs', 'device': 'lv0',
                    'fstype': 'ext4', 'mount_point': '/'})
    return {'storage': storage}


def lv_sizes(result, count):
    return [result.devices['lv%d' % n].size_mib for n in range(count)]


def test_vg_counts_whole_extents_after_metadata():
    # 1001 MiB PV - 1 MiB metadata = 250 extents of 4 MiB
    result = plan(lvm_scheme('10 MiB', 'remaining'), disks(1))
    assert result.devices['vg'].size_mib == 1000
    assert result.devices['vg'].path == '/dev/sys'
    # 10 MiB rounds up to 3 extents
    assert lv_sizes(result, 2) == [12, 988]
    assert result.devices['lv0'].path == '/dev/sys/lv0'
    assert result.devices['lv1'].grows


def test_vg_over_several_pvs():
    doc = lvm_scheme('remaining')
    doc['storage'].insert(2, {'type': 'partition', 'id': 'pv2',
                              'device': 'sda', 'size': '1002 MiB'})
    doc['storage'][3]['devices'] = ['pv1', 'pv2']
    result = plan(doc, disks(1))
    assert result.devices['vg'].size_mib == 1000 + 1000


def test_lv_percentages_that_add_up_to_100_fit():
    result = plan(lvm_scheme('50%', '50%'), disks(1))
    assert lv_sizes(result, 2) == [500, 500]
    result = plan(lvm_scheme('33%', '33%', '34%'), disks(1))
    # 330, 330, 340 MiB rounded down to whole extents
    assert lv_sizes(result, 3) == [328, 328, 340]


def test_lvs_do_not_fit():
    assert_plan_error(lvm_scheme('600 MiB', '600 MiB'), disks(1),
                      '$.storage[2]', "the logical volumes in 'vg' need "
                      '1.2 GiB but the volume group holds about 1000 MiB')


def test_nothing_remains_in_the_vg():
    assert_plan_error(lvm_scheme('1000 MiB', 'remaining'), disks(1),
                      '$.storage[4].size', "nothing remains for 'lv1'")


def test_lv_smaller_than_an_extent():
    assert_plan_error(lvm_scheme('0.1%', 'remaining'), disks(1),
                      '$.storage[3].size', 'less than one 4 MiB extent')


# -- disks: matcher and inventory --

def test_matcher_hits_no_disk():
    assert_plan_error(disk_scheme(disk_match={'serial': 'NOPE'}),
                      lsblk(('sda', 10 * GiB)), '$.storage[0].match',
                      "matcher serial='NOPE' of disk 'sda' hits no disk; the "
                      'node has: /dev/sda (10 GiB, Disk)')


def test_matcher_hits_several_disks():
    assert_plan_error(disk_scheme(disk_match={'size': '>= 5'}),
                      disks(2), '$.storage[0].match',
                      "hits 2 disks (/dev/sda, /dev/sdb); add hints")


def test_two_disks_match_the_same_disk():
    doc = raid_scheme(1, 2)
    doc['storage'][1]['match'] = {'name': 'sda'}
    assert_plan_error(doc, disks(2), '$.storage[1].match',
                      "disk 'd1' matches /dev/sda, which disk 'd0' already "
                      'took')


def test_no_disks_at_all():
    assert_plan_error(disk_scheme(), {'blockdevices': []},
                      '$.storage[0].match', 'the node has: no disks')


INVENTORY_DISKS = [
    # name, size GiB, rotational, serial, wwn, vendor, model, hctl, by_path
    ('sda', 100, True, 'S1', '0x5000c500aaaa0001', 'ATA', 'ST1000',
     '0:0:0:0', '/dev/disk/by-path/pci-0000:00:1f.2-ata-1'),
    ('sdb', 200, False, 'S2', '0x5000c500aaaa0002', 'ATA', 'Samsung SSD 860',
     '1:0:0:0', '/dev/disk/by-path/pci-0000:00:1f.2-ata-2'),
    ('nvme0n1', 400, False, 'N1', 'eui.0025388b91b04e01', None,
     'Samsung SSD 970', None, '/dev/disk/by-path/pci-0000:3b:00.0-nvme-1'),
]


def as_lsblk():
    return {'blockdevices': [
        {'name': name, 'path': '/dev/' + name, 'size': size * GiB,
         'type': 'disk', 'rota': rota, 'serial': serial, 'wwn': wwn,
         'vendor': vendor, 'model': model, 'hctl': hctl, 'ro': False}
        for name, size, rota, serial, wwn, vendor, model, hctl, _
        in INVENTORY_DISKS] + [
        {'name': 'sr0', 'path': '/dev/sr0', 'size': GiB, 'type': 'rom',
         'ro': True},
        {'name': 'loop0', 'path': '/dev/loop0', 'size': 0, 'type': 'loop',
         'ro': False}]}


def as_ironic():
    return {'inventory': {'disks': [
        {'name': '/dev/' + name, 'size': size * GiB, 'rotational': rota,
         'serial': serial, 'wwn': wwn, 'vendor': vendor, 'model': model,
         'hctl': hctl, 'by_path': by_path, 'wwn_with_extension': wwn,
         'wwn_vendor_extension': None}
        for name, size, rota, serial, wwn, vendor, model, hctl, by_path
        in INVENTORY_DISKS]}}


def test_both_inventory_formats():
    from_lsblk = inventory.load(as_lsblk())
    from_ironic = inventory.load(as_ironic())
    # lsblk does not know by-path links; everything else agrees.
    assert [d.name for d in from_lsblk] == [
        '/dev/sda', '/dev/sdb', '/dev/nvme0n1']
    for a, b in zip(from_lsblk, from_ironic):
        assert (a.name, a.size, a.rotational, a.serial, a.wwn, a.model) == \
            (b.name, b.size, b.rotational, b.serial, b.wwn, b.model)
    assert from_ironic[0].by_path.endswith('ata-1')
    # the bare Ironic inventory works too
    assert inventory.load(as_ironic()['inventory']) == from_ironic


def test_lsblk_by_path_map():
    devices = inventory.from_lsblk(as_lsblk(), by_path={
        '/dev/sdb': '/dev/disk/by-path/x'})
    assert [d.by_path for d in devices] == [None, '/dev/disk/by-path/x', None]


@pytest.mark.parametrize('hints, expected', [
    ({'name': 'sdb'}, ['/dev/sdb']),
    ({'name': '/dev/sdb'}, ['/dev/sdb']),
    ({'size': 200}, ['/dev/sdb']),
    ({'size': '200'}, ['/dev/sdb']),
    ({'size': '>= 200'}, ['/dev/sdb', '/dev/nvme0n1']),
    ({'size': '< 200'}, ['/dev/sda']),
    ({'size': '<= 100'}, ['/dev/sda']),
    ({'size': '== 400'}, ['/dev/nvme0n1']),
    ({'size': '!= 200'}, ['/dev/sda', '/dev/nvme0n1']),
    ({'model': '<in> SSD'}, ['/dev/sdb', '/dev/nvme0n1']),
    ({'model': 's== ST1000'}, ['/dev/sda']),
    ({'model': 'samsung ssd 860'}, ['/dev/sdb']),          # case-insensitive
    ({'vendor': 'ata'}, ['/dev/sda', '/dev/sdb']),
    ({'serial': 'n1'}, ['/dev/nvme0n1']),
    ({'wwn': '0x5000C500AAAA0002'}, ['/dev/sdb']),
    ({'rotational': True}, ['/dev/sda']),
    ({'rotational': False}, ['/dev/sdb', '/dev/nvme0n1']),
    ({'hctl': '1:0:0:0'}, ['/dev/sdb']),
    ({'name': '<or> /dev/sda <or> /dev/nvme0n1'}, ['/dev/sda',
                                                   '/dev/nvme0n1']),
    ({'size': '>= 100', 'rotational': False, 'model': '<in> 970'},
     ['/dev/nvme0n1']),
    ({'size': '>= lots'}, []),                  # malformed: matches nothing
    ({'size': 'big'}, []),
    ({'hctl': '9:9:9:9'}, []),
])
def test_hints(hints, expected):
    devices = inventory.load(as_lsblk())
    assert [d.name for d in matcher.matching(devices, hints)] == expected


def test_by_path_hint_needs_the_link():
    hint = {'by_path': '/dev/disk/by-path/pci-0000:00:1f.2-ata-2'}
    assert [d.name for d in matcher.matching(
        inventory.load(as_ironic()), hint)] == ['/dev/sdb']
    assert matcher.matching(inventory.load(as_lsblk()), hint) == []


@pytest.mark.parametrize('fmt', [as_lsblk, as_ironic])
def test_same_plan_from_both_inventories(fmt):
    doc = disk_scheme(disk_match={'model': '<in> 970'})
    result = plan(doc, fmt())
    assert layout(result, 'p3') == [('/dev/nvme0n1p3', 514, 409599, 409085)]


@pytest.mark.parametrize('document, fragment', [
    ([], 'a disk inventory is lsblk JSON'),
    ({'foo': 1}, 'a disk inventory is lsblk JSON'),
    ({'blockdevices': 5}, '$.blockdevices must be a list'),
    ({'blockdevices': [1]}, '$.blockdevices[0] must be an object'),
    ({'blockdevices': [{'type': 'disk', 'size': 1}]},
     '$.blockdevices[0] has neither "path" nor "name"'),
    ({'blockdevices': [{'type': 'disk', 'name': 'sda', 'size': 'big'}]},
     "$.blockdevices[0].size must be a byte count, not 'big'"),
    ({'disks': [{'size': 10}]}, '$.disks[0].name is missing'),
    ({'inventory': {'disks': [{'name': 'sda', 'size': -1}]}},
     '$.inventory.disks[0].size cannot be negative'),
])
def test_bad_inventory(document, fragment):
    with pytest.raises(inventory.InventoryError) as info:
        inventory.load(document)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


# -- output --

def test_plan_to_dict_and_text():
    result = plan(disk_scheme(), lsblk(('sda', 10 * GiB)))
    devices = result.to_dict()['devices']
    assert [d['id'] for d in devices] == ['sda', 'p1', 'p2', 'p3',
                                         'fs-root']
    assert devices[3] == {'id': 'p3', 'type': 'partition',
                          'path': '/dev/sda3', 'size_mib': 9725,
                          'start_mib': 514, 'end_mib': 10239, 'number': 3,
                          'parent_path': '/dev/sda', 'grows': True}
    text = result.to_text().splitlines()
    assert text[0].split() == ['ID', 'TYPE', 'PATH', 'SIZE', 'PLACEMENT']
    assert text[4].split() == ['p3', 'partition', '/dev/sda3', '9.5', 'GiB',
                               '/dev/sda', 'MiB', '514..10239']
    assert text[5].split()[-2:] == ['ext4', '/']


@pytest.mark.parametrize('fstype, size, fits', [
    ('xfs', '299 MiB', False), ('xfs', '300 MiB', True),
    ('btrfs', '108 MiB', False), ('btrfs', '109 MiB', True),
    ('ext4', '8 MiB', True),
])
def test_file_system_minimum_sizes(fstype, size, fits):
    scheme = validator.load({'storage': [
        {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'root', 'device': 'd0', 'size': '1 GiB'},
        {'type': 'partition', 'id': 'small', 'device': 'd0', 'size': size},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/'},
        {'type': 'filesystem', 'id': 'fs-small', 'device': 'small',
         'fstype': fstype, 'mount_point': '/srv'},
    ]})
    disks = inventory.from_ironic({'disks': [{'name': 'sda',
                                              'size': 4 * 1024 ** 3}]})
    if fits:
        planner.plan(scheme, disks)
    else:
        with pytest.raises(planner.PlanError) as exc:
            planner.plan(scheme, disks)
        assert [(e.path, fstype + ' needs at least' in e.message)
                for e in exc.value.errors] == [('$.storage[4].fstype', True)]
