"""Property-based tests: the validator never raises on any input, the
planner raises only PlanError, and generated valid schemes survive
model -> JSON -> model unchanged."""

import copy
import json

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from fa_agent.scheme import inventory
from fa_agent.scheme import model
from fa_agent.scheme import planner
from fa_agent.scheme import validator

GiB = 1024 ** 3
MiB = 1024 ** 2
SETTINGS = settings(max_examples=200, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() |
    st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) |
    st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30)

# Values that look like what a scheme holds, so mutations reach the
# semantic checks instead of stopping at the JSON Schema.
plausible = st.sampled_from([
    'remaining', ' remaining', '1 MiB', '10 GiB', '50%', '150%', '0 B',
    '1e3 MiB', '9' * 400 + ' B', '-1 GiB', 'sda', 'p1', 'vg', '/', '/boot',
    '/boot/efi', 'swap', 'ext4', 'vfat', 'xfs', 'esp', 'bios_grub', 'msdos',
    'gpt', 'raid', 'disk', 'partition', 'filesystem', 'logical_volume',
    'volume_group', 'uefi', 'bios', 'both', 'tar', 'raw', 'fs_image',
    'http://127.0.0.1/x', 0, 1, 5, 6, 10, -1, 2 ** 70, True, None, [], {},
    ['sda'], ['p1', 'p1'], {'name': 'sda'}, {'size': '>= lots'}])
SIZES = st.sampled_from([
    '1 MiB', '2 MiB', '100 MiB', '1 GiB', '1.5 GiB', '3 GB', '1000 KB',
    '4096 KiB', '1048576 B', '10%', '25%', '12.5%'])


def check_errors(errors):
    assert isinstance(errors, list)
    for error in errors:
        assert isinstance(error, validator.SchemeError)
        assert isinstance(error.path, str) and error.path.startswith('$')
        assert isinstance(error.message, str) and error.message
    assert errors == sorted(errors)


@st.composite
def valid_schemes(draw):
    """A valid scheme document: disks with partitions, maybe RAID, maybe
    LVM, file systems, images, bootloader."""
    if draw(st.integers(0, 9)) == 0:
        doc = {'storage': [{'type': 'disk', 'id': 'd0',
                            'match': {'name': '/dev/sda'}}],
               'images': [{'url': 'https://127.0.0.1/d.qcow2',
                           'format': draw(st.sampled_from(['raw', 'qcow2'])),
                           'target': 'd0'}]}
        if draw(st.booleans()):
            doc['configdrive'] = {'device': 'd0'}
        return doc
    storage, free = [], []
    mode = draw(st.sampled_from([None, 'bios', 'uefi', 'both']))
    counter = iter(range(1000))

    def new_id(prefix):
        return '%s%d' % (prefix, next(counter))

    for n in range(draw(st.integers(1, 3))):
        disk = {'type': 'disk', 'id': 'd%d' % n,
                'match': {'name': '/dev/sd' + 'abc'[n]}}
        table = draw(st.sampled_from([None, 'gpt', 'msdos']))
        if table:
            disk['table'] = table
        storage.append(disk)
        slots = 4 if table == 'msdos' else 6
        if table != 'msdos':
            storage.append({'type': 'partition', 'id': new_id('grub'),
                            'device': disk['id'], 'size': '1 MiB',
                            'flags': ['bios_grub']})
            slots -= 1
        if n == 0 and mode in ('uefi', 'both'):
            esp = new_id('esp')
            storage += [
                {'type': 'partition', 'id': esp, 'device': disk['id'],
                 'size': '64 MiB', 'flags': ['esp']},
                {'type': 'filesystem', 'id': new_id('fs'), 'device': esp,
                 'fstype': 'vfat', 'mount_point': '/boot/efi'}]
            slots -= 1
        sizes = draw(st.lists(SIZES, min_size=n == 0, max_size=slots - 1))
        sizes = [s for i, s in enumerate(sizes)
                 if not s.endswith('%') or i < 2]
        if draw(st.booleans()) or not sizes:
            sizes.append('remaining')
        for size in sizes:
            part = {'type': 'partition', 'id': new_id('p'),
                    'device': disk['id'], 'size': size}
            if table != 'msdos' and draw(st.integers(0, 4)) == 0:
                part['name'] = 'part %s' % part['id']
            storage.append(part)
            free.append(part['id'])
    if len(free) >= 3 and draw(st.booleans()):
        members = draw(st.integers(2, min(4, len(free) - 1)))
        levels = [lv for lv, need in validator.RAID_MIN_MEMBERS.items()
                  if need <= members]
        raid = {'type': 'raid', 'id': new_id('md'),
                'level': draw(st.sampled_from(levels)),
                'devices': free[1:members + 1]}
        del free[1:members + 1]
        if draw(st.booleans()):
            raid['metadata'] = draw(st.sampled_from(['0.90', '1.0', '1.1']))
        storage.append(raid)
        if draw(st.booleans()):
            for size in ('100 MiB', 'remaining'):
                part = {'type': 'partition', 'id': new_id('rp'),
                        'device': raid['id'], 'size': size}
                storage.append(part)
                free.append(part['id'])
        else:
            free.append(raid['id'])
    if len(free) >= 2 and draw(st.booleans()):
        pvs = free[1:1 + draw(st.integers(1, len(free) - 1))]
        free = [f for f in free if f not in pvs]
        vg = {'type': 'volume_group', 'id': new_id('vg'),
              'name': 'vg%d' % len(storage), 'devices': pvs}
        storage.append(vg)
        lv_sizes = draw(st.lists(SIZES, min_size=1, max_size=3))
        lv_sizes = [s for i, s in enumerate(lv_sizes)
                    if not s.endswith('%') or i < 2]
        if draw(st.booleans()):
            lv_sizes.append('remaining')
        for n, size in enumerate(lv_sizes):
            lv = {'type': 'logical_volume', 'id': new_id('lv'),
                  'name': 'lv%d' % n, 'volume_group': vg['id'],
                  'size': size}
            storage.append(lv)
            free.append(lv['id'])
    draw(st.randoms()).shuffle(free)
    for n, device in enumerate(free[:draw(st.integers(1, len(free)))]):
        fs = {'type': 'filesystem', 'id': new_id('fs'), 'device': device}
        if n == 0:
            fs.update(fstype=draw(st.sampled_from(['ext4', 'xfs', 'btrfs'])),
                      mount_point='/')
        else:
            fs['fstype'] = draw(st.sampled_from(
                ['ext2', 'ext3', 'ext4', 'xfs', 'vfat', 'btrfs', 'swap']))
            if fs['fstype'] != 'swap' and draw(st.booleans()):
                fs['mount_point'] = '/srv/data%d' % n
            if draw(st.booleans()):
                fs['keep_data'] = True
        if draw(st.booleans()):
            fs['label'] = 'L%d' % n
        if draw(st.integers(0, 3)) == 0:
            fs['mkfs_options'] = MKFS_OPTIONS[fs['fstype']]
            fs['mount_options'] = 'noatime'
            fs['fstab'] = draw(st.booleans())
        storage.append(fs)
    doc = {'version': 1, 'storage': storage}
    root = next(o for o in storage if o.get('mount_point') == '/')
    kept_below = any(o.get('keep_data') and o.get('mount_point')
                     for o in storage)
    # A tar tree extracted over a kept mount point is refused.
    image = draw(st.sampled_from([None, 'fs_image'] +
                                 ([] if kept_below else ['tar'])))
    if image:
        doc['images'] = [{'url': 'http://127.0.0.1/root', 'format': image,
                          'target': draw(st.sampled_from(['/', root['id']])),
                          'compression': draw(st.sampled_from(
                              ['auto', 'none', 'gzip', 'xz', 'zstd',
                               'bzip2'])),
                          'checksum': {'algorithm': 'sha256',
                                       'value': 'ab' * 32}}]
    if mode is not None or draw(st.booleans()):
        doc['bootloader'] = {'kernel_params': 'console=ttyS0'}
        if mode:
            doc['bootloader']['mode'] = mode
    return doc


# One allowed mkfs option per file system type.
MKFS_OPTIONS = {'ext2': ['-m', '0'], 'ext3': ['-m', '0'], 'ext4': ['-m', '0'],
                'xfs': ['-m', 'reflink=1'], 'btrfs': ['-m', 'dup'],
                'vfat': ['-F', '32'], 'swap': ['-p', '4096']}


@st.composite
def inventories(draw, count=3):
    disks = []
    for n in range(count):
        # Mostly disks that fit, sometimes ones that cannot.
        if draw(st.integers(0, 9)) == 0:
            size = draw(st.integers(0, 64 * MiB))
        else:
            size = draw(st.integers(20 * GiB, 4 * 1024 ** 4))
        disks.append({'name': 'sd' + 'abc'[n], 'size': size, 'type': 'disk',
                      'ro': False})
    return {'blockdevices': disks}


def mutate(doc, data):
    """One random change somewhere in ``doc``."""
    doc = copy.deepcopy(doc)
    # Walk down to a random container.
    node, steps = doc, data.draw(st.integers(0, 4))
    for _ in range(steps):
        children = (list(node.values()) if isinstance(node, dict)
                    else list(node))
        children = [c for c in children if isinstance(c, (dict, list))
                    and c]
        if not children:
            break
        node = data.draw(st.sampled_from(children))
    if not node:
        return doc
    key = data.draw(st.sampled_from(
        list(node) if isinstance(node, dict) else list(range(len(node)))))
    action = data.draw(st.sampled_from(
        ['drop', 'replace', 'plausible', 'retype', 'swap_ids']))
    if action == 'drop':
        del node[key]
    elif action == 'replace':
        node[key] = data.draw(json_values)
    elif action == 'plausible':
        node[key] = data.draw(plausible)
    elif action == 'retype':
        value = node[key]
        node[key] = ([value] if not isinstance(value, list) else
                     (value[0] if value else {}))
    else:
        # An earlier mutation may have made storage anything at all.
        storage = doc.get('storage')
        items = [i for i in storage if isinstance(i, dict) and 'id' in i] \
            if isinstance(storage, list) else []
        if len(items) >= 2:
            a, b = data.draw(st.permutations(items))[:2]
            a['id'], b['id'] = b['id'], a['id']
    return doc


@SETTINGS
@given(json_values)
def test_validate_never_raises_on_random_json(value):
    check_errors(validator.validate(value))
    check_errors(validator.validate(json.dumps(value)))


@SETTINGS
@given(st.dictionaries(st.sampled_from(
    ['storage', 'images', 'configdrive', 'bootloader', 'version']),
    json_values))
def test_validate_never_raises_on_random_top_level(value):
    check_errors(validator.validate(value))


@SETTINGS
@given(valid_schemes(), st.data())
def test_validate_never_raises_on_mutations(doc, data):
    for _ in range(data.draw(st.integers(1, 3))):
        doc = mutate(doc, data)
    errors = validator.validate(doc)
    check_errors(errors)
    if errors:
        return
    scheme = validator.load(doc)
    try:
        planner.plan(scheme, inventory.load(data.draw(inventories())))
    except planner.PlanError as exc:
        check_errors(sorted(exc.errors))


@SETTINGS
@given(valid_schemes())
def test_generated_schemes_are_valid_and_round_trip(doc):
    assert validator.validate(doc) == []
    scheme = validator.load(doc)
    text = json.dumps(scheme.to_dict())
    again = model.Scheme.from_dict(json.loads(text))
    assert again == scheme
    assert again.to_dict() == scheme.to_dict()
    # what the serialiser writes is itself a valid scheme
    assert validator.validate(text) == []
    assert validator.load(text) == scheme


@SETTINGS
@given(valid_schemes(), inventories())
def test_plan_of_valid_schemes(doc, disks):
    scheme = validator.load(doc)
    try:
        result = planner.plan(scheme, inventory.load(disks))
    except planner.PlanError as exc:
        check_errors(sorted(exc.errors))
        return
    # Whatever was planned is aligned, inside its container and does
    # not overlap its siblings.
    by_parent = {}
    for dev in result.devices.values():
        assert isinstance(dev.size_mib, int) and dev.size_mib >= 1
        if dev.type == 'partition':
            assert dev.start_mib >= 1
            assert dev.end_mib - dev.start_mib == dev.size_mib
            by_parent.setdefault(dev.parent_path, []).append(dev)
    sizes = {d.path: d.size_mib for d in result.devices.values()
             if d.type in ('disk', 'raid')}
    for parent, parts in by_parent.items():
        parts.sort(key=lambda d: d.start_mib)
        for left, right in zip(parts, parts[1:]):
            assert left.end_mib <= right.start_mib
        assert parts[-1].end_mib <= sizes[parent]
    for vg in scheme.of_type('volume_group'):
        lvs = [result.devices[lv.id].size_mib
               for lv in scheme.logical_volumes_in(vg.id)]
        assert all(size % planner.EXTENT_MIB == 0 for size in lvs)
        assert sum(lvs) <= result.devices[vg.id].size_mib
