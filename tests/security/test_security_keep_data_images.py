"""Item 3 (kept data is never written): no image extracts into or over a
file system marked keep_data, nor into a directory beneath a kept mount,
and no new file system is mounted inside kept data; each is refused at
validate time with the path and the kept object's id.
"""

import copy
import time
import types

import pytest

from fa_agent.scheme import model
from fa_agent.scheme import validator
from fa_agent.steps import images

BASE = {
    'storage': [
        {'type': 'disk', 'id': 'sda', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'grub', 'device': 'sda',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'root', 'device': 'sda', 'size': '30%'},
        {'type': 'partition', 'id': 'var', 'device': 'sda', 'size': '20%'},
        {'type': 'disk', 'id': 'sdb', 'match': {'name': '/dev/sdb'}},
        {'type': 'partition', 'id': 'pv', 'device': 'sdb',
         'size': 'remaining', 'flags': ['lvm']},
        {'type': 'volume_group', 'id': 'vg', 'name': 'data',
         'devices': ['pv']},
        {'type': 'logical_volume', 'id': 'lv-srv', 'name': 'srv',
         'volume_group': 'vg', 'size': '50%', 'keep_data': True},
        {'type': 'logical_volume', 'id': 'lv-new', 'name': 'new',
         'volume_group': 'vg', 'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',      # 9
         'fstype': 'ext4', 'mount_point': '/'},
        {'type': 'filesystem', 'id': 'fs-var', 'device': 'var',        # 10
         'fstype': 'ext4', 'mount_point': '/var'},
        # Kept through its logical volume.
        {'type': 'filesystem', 'id': 'fs-srv', 'device': 'lv-srv',     # 11
         'fstype': 'xfs', 'mount_point': '/srv/data'},
        {'type': 'filesystem', 'id': 'fs-new', 'device': 'lv-new',     # 12
         'fstype': 'xfs', 'mount_point': '/scratch'},
    ],
    'images': [{'url': 'http://127.0.0.1/root.img', 'format': 'fs_image',
                'target': '/'}],
    'bootloader': {'mode': 'bios'},
}


def doc(image=None, **mounts):
    document = copy.deepcopy(BASE)
    if image is not None:
        document['images'] = [dict(document['images'][0], **image)]
    by_id = {o['id']: o for o in document['storage']}
    for fs_id, mount_point in mounts.items():
        by_id[fs_id.replace('_', '-')]['mount_point'] = mount_point
    return document


def messages_at(document, path):
    return [e.message for e in validator.validate(document) if e.path == path]


def test_an_fs_image_over_a_tree_with_a_kept_mount_below_is_valid():
    assert validator.validate(BASE) == []


@pytest.mark.parametrize('target', ['/', 'fs-root'])
def test_a_tar_tree_over_a_kept_mount_below_is_refused(target):
    found = messages_at(doc({'format': 'tar', 'target': target}),
                        '$.images[0].target')
    assert any("'fs-srv' (at /srv/data) mounted below it, which is kept" in m
               for m in found), found


def test_a_tar_tree_into_a_sibling_of_kept_data_is_valid():
    assert validator.validate(doc({'format': 'tar', 'target': '/var'})) == []


@pytest.mark.parametrize('image', [
    {'format': 'tar', 'target': '/srv/data'},
    {'format': 'tar', 'target': 'fs-srv'},
    {'format': 'fs_image', 'target': 'fs-srv'},
    {'format': 'fs_image', 'target': 'lv-srv'},
])
def test_an_image_into_kept_data_is_refused(image):
    document = doc(image)
    document['images'].insert(0, dict(BASE['images'][0]))
    found = messages_at(document, '$.images[1].target')
    assert any("overwrite 'lv-srv', which is marked keep_data" in m
               for m in found), found


def test_an_image_target_beneath_a_kept_mount_is_refused():
    document = doc({'format': 'tar', 'target': '/srv/data/sub'})
    document['images'].insert(0, dict(BASE['images'][0]))
    assert messages_at(document, '$.images[1].target')


@pytest.mark.parametrize('mount_point', ['/srv/data/cache', '/srv/data/a/b'])
def test_a_new_file_system_inside_kept_data_is_refused(mount_point):
    found = messages_at(doc(fs_new=mount_point), '$.storage[12].mount_point')
    assert any("mounted inside 'fs-srv' (at /srv/data), which is kept" in m
               for m in found), found


def test_a_kept_file_system_inside_kept_data_is_valid():
    document = doc(fs_new='/srv/data/cache')
    document['storage'][8]['keep_data'] = True
    assert validator.validate(document) == []


def test_prefix_is_not_beneath():
    # /srv/database is beside /srv/data, not inside it.
    assert validator.validate(doc(fs_new='/srv/database')) == []


@pytest.mark.parametrize('name', ['kept', 'below', '0', '1'])
def test_any_component_name_counts(name):
    found = messages_at(doc(fs_srv='/' + name, fs_new='/%s/x' % name),
                        '$.storage[12].mount_point')
    assert any('which is kept' in m for m in found), found


def test_many_kept_mounts_are_checked_in_linear_time():
    document = doc()
    lvs = [o for o in document['storage'] if o['type'] == 'logical_volume']
    lvs[0]['size'] = '1%'
    del lvs[1]['size']
    lvs[1]['size'] = '1%'
    for n in range(2000):
        document['storage'] += [
            {'type': 'logical_volume', 'id': 'lv%d' % n, 'name': 'l%d' % n,
             'volume_group': 'vg', 'size': '1 MiB', 'keep_data': True},
            {'type': 'filesystem', 'id': 'fs%d' % n, 'device': 'lv%d' % n,
             'fstype': 'ext4', 'mount_point': '/k/%d' % n}]
    document['images'] = [{'url': 'http://127.0.0.1/r.tar', 'format': 'tar',
                           'target': '/srv/data/x'}]
    document['storage'][12]['mount_point'] = '/k/1/new'
    started = time.monotonic()
    found = validator.validate(document)
    assert time.monotonic() - started < 10
    assert any(e.path == '$.storage[12].mount_point' for e in found)


@pytest.mark.parametrize('mount_point', ['/boot', '/boot/efi'])
def test_kept_boot_loader_directories_are_refused(mount_point):
    found = messages_at(doc(fs_srv=mount_point), '$.storage[11].mount_point')
    assert any('boot loader is written into %s' % mount_point in m
               for m in found), found


def test_agent_moves_no_image_file_into_kept_file_systems():
    # The fs_image at / holds /srv/data/..., hidden under the kept mount:
    # the agent moves image files only into fresh file systems below.
    scheme = model.Scheme.from_dict(doc(fs_new='/srv/scratch'))
    ctx = types.SimpleNamespace(scheme=scheme, kept=scheme.is_kept)
    below = images.filesystems_below(ctx, scheme.filesystem_at('/'))
    assert [fs.id for fs in below] == ['fs-new', 'fs-var']
