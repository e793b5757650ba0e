"""The nailgun data driver: Fuel's ks_spaces give the same model (and the
same plan) as the native scheme for the same layout; malformed Fuel data
gives errors naming the path in the Fuel document."""

import copy

import pytest

from fa_agent import data_drivers
from fa_agent import input_format
from fa_agent.data_drivers import nailgun
from fa_agent.scheme import inventory
from fa_agent.scheme import planner
from fa_agent.scheme import validator

GiB = 1024 ** 3
KS = '$.ks_meta.pm_data.ks_spaces'


def fuel_disk(name, volumes, size=65535, **extra):
    disk = {'type': 'disk', 'id': name, 'name': name, 'size': size,
            'free_space': 0, 'extra': [], 'volumes': volumes}
    disk.update(extra)
    return disk


def provision(ks_spaces, image_data=None):
    """Fuel's whole provision data around ks_spaces."""
    return {
        'profile': 'ubuntu_1404_x86_64', 'name': 'node-1', 'uid': '1',
        'hostname': 'node-1.domain.tld',
        'ks_meta': {
            'auth_key': 'ssh-rsa AAAA fuel',
            'authorized_keys': ['ssh-rsa BBBB operator'],
            'image_data': image_data if image_data is not None else {
                '/': {'uri': 'http://127.0.0.1:8080/ubuntu.img.gz',
                      'format': 'ext4', 'container': 'gzip'}},
            'pm_data': {'kernel_params': 'console=ttyS0,9600 nomodeset',
                        'ks_spaces': ks_spaces}}}


def os_vg(root_mib=15360, swap_mib=4014):
    return {'type': 'vg', 'id': 'os', 'label': 'Base System',
            'min_size': root_mib + swap_mib, '_allocate_size': 'min',
            'volumes': [
                {'type': 'lv', 'name': 'root', 'mount': '/',
                 'size': root_mib, 'file_system': 'ext4'},
                {'type': 'lv', 'name': 'swap', 'mount': 'swap',
                 'size': swap_mib, 'file_system': 'swap'}]}


def one_disk_fuel():
    return provision([
        fuel_disk('sda', [
            {'type': 'boot', 'size': 300},
            {'type': 'partition', 'mount': '/boot', 'size': 200,
             'file_system': 'ext2', 'name': 'Boot'},
            {'type': 'lvm_meta_pool', 'size': 0},
            {'type': 'pv', 'vg': 'os', 'size': 19438, 'lvm_meta_size': 64},
        ]),
        os_vg()])


def two_disks_fuel():
    """Fuel's usual two-disk node: /boot mirrored, os VG across disks."""
    return provision([
        fuel_disk('sda', [
            {'type': 'boot', 'size': 300},
            {'type': 'raid', 'mount': '/boot', 'size': 200,
             'file_system': 'ext2', 'name': 'Boot'},
            {'type': 'lvm_meta_pool', 'size': 0},
            {'type': 'pv', 'vg': 'os', 'size': 19438, 'lvm_meta_size': 64},
        ]),
        fuel_disk('sdb', [
            {'type': 'boot', 'size': 300},
            {'type': 'raid', 'mount': '/boot', 'size': 200,
             'file_system': 'ext2', 'name': 'Boot'},
            {'type': 'lvm_meta_pool', 'size': 0},
            {'type': 'pv', 'vg': 'os', 'size': 30000, 'lvm_meta_size': 64},
        ]),
        os_vg(root_mib=40000, swap_mib=9000)])


def native_disk(name, parts):
    """A native disk laid out as fuel-agent did: bios_grub, UEFI space."""
    storage = [
        {'type': 'disk', 'id': 'disk_' + name, 'table': 'gpt',
         'match': {'name': '/dev/' + name}},
        {'type': 'partition', 'id': name + '_grub', 'device': 'disk_' + name,
         'size': '24 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': name + '_uefi', 'device': 'disk_' + name,
         'size': '200 MiB'}]
    for part_id, size, extra in parts:
        part = {'type': 'partition', 'id': part_id, 'device': 'disk_' + name,
                'size': size}
        part.update(extra)
        storage.append(part)
    return storage


def native_lvm(pvs, root, swap):
    return [
        {'type': 'volume_group', 'id': 'system', 'name': 'os',
         'devices': pvs},
        {'type': 'logical_volume', 'id': 'root_lv', 'name': 'root',
         'volume_group': 'system', 'size': root},
        {'type': 'filesystem', 'id': 'rootfs', 'device': 'root_lv',
         'fstype': 'ext4', 'mount_point': '/'},
        {'type': 'logical_volume', 'id': 'swap_lv', 'name': 'swap',
         'volume_group': 'system', 'size': swap},
        {'type': 'filesystem', 'id': 'swapfs', 'device': 'swap_lv',
         'fstype': 'swap'}]


NATIVE_TAIL = {
    'images': [{'url': 'http://127.0.0.1:8080/ubuntu.img.gz',
                'format': 'fs_image', 'compression': 'gzip', 'target': '/'}],
    'configdrive': {'device': 'cd', 'size': '20 MiB'},
    'bootloader': {'mode': 'bios'},
}


def one_disk_native():
    storage = native_disk('sda', [
        ('boot', '200 MiB', {}),
        ('pv', '19438 MiB', {'flags': ['lvm']}),
        ('cd', '20 MiB', {'name': 'config-2'})])
    storage.append({'type': 'filesystem', 'id': 'bootfs', 'device': 'boot',
                    'fstype': 'ext2', 'mount_point': '/boot'})
    storage += native_lvm(['pv'], '15 GiB', '4014 MiB')
    return dict(NATIVE_TAIL, storage=storage)


def two_disks_native():
    storage = native_disk('sda', [
        ('sda_boot', '200 MiB', {'flags': ['raid']}),
        ('sda_pv', '19438 MiB', {'flags': ['lvm']}),
        ('cd', '20 MiB', {'name': 'config-2'})])
    storage += native_disk('sdb', [
        ('sdb_boot', '200 MiB', {'flags': ['raid']}),
        ('sdb_pv', '30000 MiB', {'flags': ['lvm']})])
    storage += [
        {'type': 'raid', 'id': 'boot_array', 'name': 'md-boot', 'level': 1,
         'devices': ['sda_boot', 'sdb_boot']},
        {'type': 'filesystem', 'id': 'bootfs', 'device': 'boot_array',
         'fstype': 'ext2', 'mount_point': '/boot'}]
    storage += native_lvm(['sda_pv', 'sdb_pv'], '40000 MiB', '9000 MiB')
    return dict(NATIVE_TAIL, storage=storage)


def disks(*names):
    return inventory.load({'blockdevices': [
        {'name': n, 'path': '/dev/' + n, 'size': 64 * GiB, 'type': 'disk',
         'ro': False} for n in names]})


def plan_rows(scheme, devices):
    """The plan without ids, which the two formats name differently."""
    rows = set()
    for dev in planner.plan(scheme, devices).to_dict()['devices']:
        dev.pop('id')
        rows.add(tuple(sorted(dev.items())))
    return rows


def described(scheme):
    """What each format says about file systems, RAID and LVM, by value."""
    by_id = scheme.by_id
    return sorted(
        [('fs', fs.fstype, fs.mount_point, by_id[fs.device].type)
         for fs in scheme.of_type('filesystem')] +
        [('raid', r.level, r.md_name, len(r.devices))
         for r in scheme.of_type('raid')] +
        [('lv', lv.name, by_id[lv.volume_group].name, lv.size)
         for lv in scheme.of_type('logical_volume')] +
        [('flags', p.flags, p.name, p.size)
         for p in scheme.of_type('partition')], key=repr)


@pytest.mark.parametrize('fuel, native, names', [
    (one_disk_fuel, one_disk_native, ('sda',)),
    (two_disks_fuel, two_disks_native, ('sda', 'sdb')),
])
def test_nailgun_and_native_give_the_same_plan(fuel, native, names):
    from_fuel = nailgun.convert(fuel()).scheme
    from_native = validator.load(native())
    rows = plan_rows(from_fuel, disks(*names))
    assert rows == plan_rows(from_native, disks(*names))
    # The scheme says the same too, apart from ids (and the LV size
    # spelling: Fuel gives MiB, "15 GiB" above is the same 15360 MiB).
    fuel_desc = [d for d in described(from_fuel) if d[0] != 'lv']
    native_desc = [d for d in described(from_native) if d[0] != 'lv']
    assert fuel_desc == native_desc
    assert from_fuel.images == from_native.images
    assert from_fuel.bootloader == from_native.bootloader
    assert from_fuel.configdrive.size == from_native.configdrive.size


def test_two_disk_plan_in_detail():
    result = planner.plan(nailgun.convert(two_disks_fuel()).scheme,
                          disks('sda', 'sdb'))
    by_path = {(d.type, d.path): d for d in result.devices.values()}
    assert [(p, by_path[('partition', p)].start_mib,
             by_path[('partition', p)].end_mib) for p in (
        '/dev/sda1', '/dev/sda2', '/dev/sda3', '/dev/sda4', '/dev/sda5')] == [
        ('/dev/sda1', 1, 25), ('/dev/sda2', 25, 225), ('/dev/sda3', 225, 425),
        ('/dev/sda4', 425, 19863), ('/dev/sda5', 19863, 19883)]
    # 200 MiB members lose 3 MiB to md 1.2 metadata
    assert by_path[('raid', '/dev/md/md-boot')].size_mib == 197
    # (19438 - 1) // 4 + (30000 - 1) // 4 = 4859 + 7499 extents
    assert by_path[('volume_group', '/dev/os')].size_mib == 4 * (4859 + 7499)
    assert by_path[('logical_volume', '/dev/os/root')].size_mib == 40000
    assert by_path[('logical_volume', '/dev/os/swap')].size_mib == 9000


def test_request_from_whole_provision_data():
    request = nailgun.convert(two_disks_fuel())
    assert isinstance(request, input_format.ProvisionRequest)
    assert request.node_name == 'node-1'
    assert request.boot_mode == 'bios'
    assert request.effective_boot_mode == 'bios'
    assert request.kernel_params == 'console=ttyS0,9600 nomodeset'
    assert request.configdrive == {'meta_data': {
        'hostname': 'node-1.domain.tld',
        'public_keys': {'0': 'ssh-rsa BBBB operator',
                        '1': 'ssh-rsa AAAA fuel'}}}
    scheme = request.scheme
    assert [d.id for d in scheme.of_type('disk')] == ['sda', 'sdb']
    assert scheme.of_type('raid')[0].devices == ('sda-boot', 'sdb-boot')
    assert scheme.configdrive.device == 'sda-configdrive'
    assert validator.boot_disks(scheme) == ['sda', 'sdb']
    # the model passes the validator on its own, too
    assert validator.validate(scheme.to_dict()) == []


def test_bare_ks_meta():
    data = two_disks_fuel()
    request = nailgun.convert(data['ks_meta'])
    assert request.scheme == nailgun.convert(data).scheme
    assert request.configdrive is None and request.node_name is None


def test_driver_is_found_by_name():
    driver = data_drivers.get_driver('nailgun', one_disk_fuel())
    assert isinstance(driver, nailgun.NailgunDataDriver)
    assert driver.request.scheme == nailgun.convert(one_disk_fuel()).scheme


def test_fuel_sample_with_extra_vgs_and_zero_volumes():
    """Shaped like fuel-agent's own sample: a zero-size VG, zero-size
    PVs, an image VG spanning disks, partition_guid."""
    data = two_disks_fuel()
    spaces = data['ks_meta']['pm_data']['ks_spaces']
    spaces[0]['volumes'] += [
        {'type': 'pv', 'vg': 'image', 'size': 20000, 'lvm_meta_size': 64},
        {'type': 'partition', 'mount': '/tmp', 'size': 200,
         'file_system': 'ext2', 'disk_label': 'TMP',
         'partition_guid': '0fc63daf-8483-4772-8e79-3d69d8477de4'}]
    spaces[1]['volumes'] += [
        {'type': 'pv', 'vg': 'zero', 'size': 0, 'lvm_meta_size': 0},
        {'type': 'pv', 'vg': 'image', 'size': 10000, 'lvm_meta_size': 64}]
    spaces.append({'type': 'vg', 'id': 'image', 'volumes': [
        {'type': 'lv', 'name': 'glance', 'mount': '/var/lib/glance',
         'size': 29000, 'file_system': 'xfs', 'keep_data': True}]})
    spaces.append({'type': 'vg', 'id': 'zero', 'volumes': [
        {'type': 'lv', 'name': 'z', 'mount': 'none', 'size': 0}]})
    spaces.append(fuel_disk('sdc', [{'type': 'boot', 'size': 300},
                                    {'type': 'lvm_meta_pool', 'size': 64},
                                    {'type': 'raid', 'mount': '/boot',
                                     'size': 200}]))
    spaces.append(fuel_disk('sdd', [], size=0))
    scheme = nailgun.convert(data).scheme
    by_id = scheme.by_id
    # disks with only service space and /boot are left alone, as in Fuel
    assert [d.id for d in scheme.of_type('disk')] == ['sda', 'sdb']
    assert [vg.name for vg in scheme.of_type('volume_group')] == [
        'os', 'image']
    assert by_id['vg-image'].devices == ('sda-pv-image', 'sdb-pv-image')
    tmp = scheme.filesystem_at('/tmp')
    assert (tmp.fstype, tmp.label) == ('ext2', 'TMP')
    assert by_id[tmp.device].type_guid == \
        '0fc63daf-8483-4772-8e79-3d69d8477de4'
    glance = scheme.filesystem_at('/var/lib/glance')
    assert glance.keep_data and by_id[glance.device].keep_data
    assert scheme.is_kept('vg-image')
    result = planner.plan(scheme, disks('sda', 'sdb'))
    assert result.devices['lv-image-glance'].size_mib == 29000


def test_single_raid_volume_is_a_plain_partition():
    data = one_disk_fuel()
    data['ks_meta']['pm_data']['ks_spaces'][0]['volumes'][1]['type'] = 'raid'
    scheme = nailgun.convert(data).scheme
    assert scheme.of_type('raid') == []
    boot = scheme.filesystem_at('/boot')
    assert scheme.by_id[boot.device].flags == ()


def test_boot_partition_is_made_once():
    data = two_disks_fuel()
    for disk in data['ks_meta']['pm_data']['ks_spaces'][:2]:
        disk['volumes'][1]['type'] = 'partition'
    scheme = nailgun.convert(data).scheme
    assert [p.id for p in scheme.of_type('partition')
            if p.id.endswith('boot')] == ['sda-boot']


@pytest.mark.parametrize('fields, match', [
    ({}, {'name': '/dev/sda'}),
    ({'id': 'disk/by-path/pci-0000:00:1f.2-ata-1'},
     {'by_path': '/dev/disk/by-path/pci-0000:00:1f.2-ata-1'}),
    ({'id': 'disk/by-path/pci-0000:00:1f.2-ata-1',
      'extra': ['disk/by-id/ata-VBOX_1', 'disk/by-id/wwn-0x5000c500aa']},
     {'wwn': '0x5000c500aa'}),
])
def test_disk_matchers(fields, match):
    data = one_disk_fuel()
    data['ks_meta']['pm_data']['ks_spaces'][0].update(fields)
    assert nailgun.convert(data).scheme.of_type('disk')[0].match == match


def test_bootable_disk_gets_the_bootloader():
    data = two_disks_fuel()
    data['ks_meta']['pm_data']['ks_spaces'][1]['bootable'] = True
    assert nailgun.convert(data).scheme.bootloader.devices == ('sdb',)


def spaces_path(n, rest=''):
    return '%s[%d]%s' % (KS, n, rest)


def broken(mutate):
    data = two_disks_fuel()
    mutate(data['ks_meta'], data['ks_meta']['pm_data']['ks_spaces'])
    return data


@pytest.mark.parametrize('data, fragment', [
    (broken(lambda m, s: s[0]['volumes'][3].update(size='19438')),
     spaces_path(0, ".volumes[3].size must be a whole number of MiB, not "
                 "'19438'")),
    (broken(lambda m, s: s[0]['volumes'][3].update(size=True)),
     spaces_path(0, '.volumes[3].size must be a whole number of MiB')),
    (broken(lambda m, s: s[0]['volumes'][3].pop('vg')),
     spaces_path(0, '.volumes[3] needs "vg"')),
    (broken(lambda m, s: s[0]['volumes'][3].update(vg='nova')),
     spaces_path(0, ".volumes[3].vg names volume group 'nova', which "
                 'ks_spaces does not define')),
    (broken(lambda m, s: s[0]['volumes'][3].update(lvm_meta_size=8)),
     spaces_path(0, '.volumes[3].lvm_meta_size must be at least 10')),
    (broken(lambda m, s: s[0]['volumes'].append({'type': 'lvm'})),
     spaces_path(0, ".volumes[4].type must be one of boot, lvm_meta_pool")),
    (broken(lambda m, s: s[0]['volumes'].append('pv')),
     spaces_path(0, '.volumes[4] must be an object')),
    (broken(lambda m, s: s[0].pop('name')), spaces_path(0, ' needs "name"')),
    (broken(lambda m, s: s[0].update(volumes={})),
     spaces_path(0, '.volumes must be a list')),
    (broken(lambda m, s: [d['volumes'][1].update(file_system='ntfs')
                          for d in s[:2]]),
     spaces_path(0, ".volumes[1].file_system 'ntfs' is not supported")),
    (broken(lambda m, s: s[1]['volumes'][1].update(file_system='ext4')),
     spaces_path(1, ".volumes[1].file_system is 'ext4', but "
                 "$.ks_meta.pm_data.ks_spaces[0].volumes[1] says 'ext2' for "
                 "the same RAID at '/boot'")),
    (broken(lambda m, s: s[1]['volumes'][1].update(mount='boot')),
     spaces_path(1, ".volumes[1].mount must be a path, \"swap\" or")),
    (broken(lambda m, s: s[1]['volumes'][1].update(name='cephjournal')),
     spaces_path(1, '.volumes[1] is a Ceph journal')),
    (broken(lambda m, s: s[2].update(type='lvm')),
     spaces_path(2, ".type must be \"disk\" or \"vg\", not 'lvm'")),
    (broken(lambda m, s: s[2].update(id='bad vg')),
     spaces_path(2, ".id 'bad vg' is not a valid LVM volume group name")),
    (broken(lambda m, s: s[2]['volumes'][0].update(type='pv')),
     spaces_path(2, '.volumes[0].type must be "lv"')),
    (broken(lambda m, s: s.append(copy.deepcopy(s[2]))),
     spaces_path(3, ".id volume group 'os' is defined twice")),
    (broken(lambda m, s: [d['volumes'].pop(3) for d in s[:2]]),
     spaces_path(2, " volume group 'os' has logical volumes but no disk")),
    (broken(lambda m, s: [d.update(bootable=True) for d in s[:2]]),
     KS + ' marks more than one disk bootable: sda, sdb'),
    (broken(lambda m, s: [s.pop(0), s.pop(0)]), KS + ' has no disk'),
    (broken(lambda m, s: m['pm_data'].update(ks_spaces={})),
     KS + ' must be a list'),
    (broken(lambda m, s: m.pop('pm_data')), '$.ks_meta needs "pm_data"'),
    (broken(lambda m, s: m['pm_data'].update(kernel_params=['x'])),
     '$.ks_meta.pm_data.kernel_params must be a string'),
    (broken(lambda m, s: m['image_data'].update({'/srv': {
        'uri': 'http://127.0.0.1/x', 'format': 'ext4',
        'container': 'gzip'}})),
     "$.ks_meta.image_data['/srv'] is an image for '/srv', but no volume"),
    (broken(lambda m, s: m['image_data']['/'].update(format='xfs')),
     "$.ks_meta.image_data['/'].format is 'xfs', but the volume mounted at "
     "'/' is made ext4"),
    (broken(lambda m, s: m['image_data']['/'].update(container='rar')),
     "$.ks_meta.image_data['/'].container must be one of raw, gzip"),
    (broken(lambda m, s: m['image_data']['/'].pop('uri')),
     "$.ks_meta.image_data['/'] needs \"uri\""),
    ([], 'Fuel provisioning data is the provision JSON'),
    ({'ks_meta': {'pm_data': 'x'}}, '$.ks_meta.pm_data must be an object'),
])
def test_malformed_fuel_data(data, fragment):
    with pytest.raises(input_format.InputError) as info:
        nailgun.convert(data)
    assert fragment in str(info.value)


@pytest.mark.parametrize('mutate, path, fragment', [
    # two volumes mounted at /var, on different disks
    (lambda m, s: [d['volumes'].append(
        {'type': 'partition', 'mount': '/var', 'size': 100})
        for d in s[:2]],
     spaces_path(1, '.volumes[4]'), "mount point '/var' is also used"),
    (lambda m, s: [d['volumes'][1].update(disk_label='x' * 20)
                   for d in s[:2]],
     spaces_path(0, '.volumes[1]'), 'ext2 labels are at most 16'),
    (lambda m, s: [s[2]['volumes'][0].update(mount='/srv'),
                   m.pop('image_data')],
     KS, 'no file system is mounted at "/"'),
    (lambda m, s: s[0]['volumes'][3].update(size=1),
     spaces_path(0, '.volumes[3]'), None),
])
def test_scheme_errors_point_into_the_fuel_data(mutate, path, fragment):
    data = two_disks_fuel()
    mutate(data['ks_meta'], data['ks_meta']['pm_data']['ks_spaces'])
    if fragment is None:
        # valid as a scheme; the plan says it does not fit
        scheme = nailgun.convert(data).scheme
        with pytest.raises(planner.PlanError):
            planner.plan(scheme, disks('sda', 'sdb'))
        return
    with pytest.raises(validator.InvalidScheme) as info:
        nailgun.convert(data)
    hits = [e for e in info.value.errors
            if e.path == path and fragment in e.message]
    assert hits, '\n'.join(map(str, info.value.errors))
    assert '(converted scheme: $.' in hits[0].message
