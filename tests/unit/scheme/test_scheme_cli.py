"""``fa-scheme validate|plan`` run as operators run it: exit codes,
path-named errors on stderr, never a traceback."""

import json
import os
import subprocess
import sys

import pytest

from fa_agent import input_format

GiB = 1024 ** 3
FA_SCHEME = os.path.join(os.path.dirname(sys.executable), 'fa-scheme')

GOOD = {'storage': [
    {'type': 'disk', 'id': 'sda', 'match': {'size': '>= 10'}},
    {'type': 'partition', 'id': 'grub', 'device': 'sda', 'size': '1 MiB',
     'flags': ['bios_grub']},
    {'type': 'partition', 'id': 'root', 'device': 'sda', 'size': '20 GiB'},
    {'type': 'partition', 'id': 'data', 'device': 'sda', 'size': 'remaining',
     'keep_data': True},
    {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
     'fstype': 'ext4', 'mount_point': '/'},
    {'type': 'filesystem', 'id': 'fs-data', 'device': 'data',
     'fstype': 'xfs', 'mount_point': '/srv', 'keep_data': True}],
    'bootloader': {'mode': 'bios'}}


def lsblk(size_gib):
    return {'blockdevices': [{'name': 'vda', 'path': '/dev/vda',
                              'size': size_gib * GiB, 'type': 'disk',
                              'rota': False, 'ro': False}]}


@pytest.fixture
def files(tmp_path):
    def write(name, content):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str)
                        else json.dumps(content))
        return str(path)
    bad = json.loads(json.dumps(GOOD))
    bad['storage'][2]['device'] = 'sdz'
    bad['storage'][5]['mount_point'] = '/'
    return {
        'good': write('good.json', GOOD),
        'bad': write('bad.json', bad),
        'provision': write('provision.json', input_format.build(GOOD)),
        'disks': write('disks.json', lsblk(100)),
        'small': write('small.json', lsblk(10)),
        'ironic': write('ironic.json', {'inventory': {'disks': [
            {'name': '/dev/sdb', 'size': 100 * GiB}]}}),
        'broken': write('broken.json', '{"storage": ['),
        'not_inventory': write('list.json', [1, 2]),
        'missing': str(tmp_path / 'missing.json'),
    }


def run(*args):
    proc = subprocess.run([FA_SCHEME] + list(args), capture_output=True,
                          text=True, timeout=60)
    assert 'Traceback' not in proc.stderr
    return proc


def test_validate_good(files):
    proc = run('validate', files['good'])
    assert proc.returncode == 0
    assert proc.stdout.strip() == files['good'] + ': valid'


def test_validate_with_inventory(files):
    proc = run('validate', files['good'], '--inventory', files['disks'])
    assert (proc.returncode, proc.stdout.strip()) == (
        0, files['good'] + ': valid and fits')


def test_validate_bad(files):
    proc = run('validate', files['bad'])
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == files['bad'] + ': 3 problem(s)'
    assert '  $.storage[5].keep_data: the root file system is rewritten ' \
        'by every deploy and cannot be kept' in lines
    assert "  $.storage[2].device: refers to 'sdz', which is not defined " \
        'in storage' in lines
    assert any(line.startswith('  $.storage[5].mount_point: mount point '
                               "'/' is also used") for line in lines)


def test_validate_provision_json(files):
    assert run('validate', files['provision']).returncode == 0


@pytest.mark.parametrize('inventory', ['disks', 'ironic'])
def test_plan_json(files, inventory):
    proc = run('plan', files['good'], '--inventory', files[inventory],
               '--json')
    assert proc.returncode == 0, proc.stderr
    devices = {d['id']: d for d in json.loads(proc.stdout)['devices']}
    disk = '/dev/vda' if inventory == 'disks' else '/dev/sdb'
    assert devices['root']['path'] == disk + '2'
    assert (devices['root']['start_mib'], devices['root']['end_mib']) == (
        2, 2 + 20480)
    assert devices['data']['end_mib'] == 100 * 1024 - 1
    assert devices['fs-data']['path'] == disk + '3'


def test_plan_text(files):
    proc = run('plan', files['good'], '--inventory', files['disks'])
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0].split()[:3] == ['ID', 'TYPE', 'PATH']
    assert '/dev/vda2' in proc.stdout


def test_plan_does_not_fit(files):
    proc = run('plan', files['good'], '--inventory', files['small'])
    assert proc.returncode == 1
    assert "  $.storage[3].size: nothing remains for 'data' on 'sda': " \
        'the other partitions take 20.0 GiB of 10.0 GiB' in \
        proc.stderr.splitlines()


def test_plan_matcher_hits_nothing(files):
    tiny = files['small'].replace('small', 'tiny')
    with open(tiny, 'w') as f:
        json.dump(lsblk(5), f)
    proc = run('plan', files['good'], '--inventory', tiny)
    assert proc.returncode == 1
    assert "$.storage[0].match: matcher size='>= 10' of disk 'sda' hits " \
        'no disk' in proc.stderr


def test_plan_needs_inventory(files):
    proc = run('plan', files['good'])
    assert proc.returncode == 2
    assert 'plan needs --inventory' in proc.stderr


@pytest.mark.parametrize('scheme, inventory, fragment', [
    ('broken', None, "Expecting value"),
    ('missing', None, 'No such file or directory'),
    ('good', 'not_inventory', 'a disk inventory is lsblk JSON'),
    ('good', 'missing', 'No such file or directory'),
])
def test_unreadable_input(files, scheme, inventory, fragment):
    args = ['validate', files[scheme]]
    if inventory:
        args += ['--inventory', files[inventory]]
    proc = run(*args)
    assert proc.returncode == 1
    assert fragment in proc.stderr


def test_nailgun_data(tmp_path):
    fuel = {'ks_meta': {'pm_data': {'ks_spaces': [
        {'type': 'disk', 'id': 'vda', 'name': 'vda', 'size': 102400,
         'volumes': [{'type': 'boot', 'size': 300},
                     {'type': 'partition', 'mount': '/', 'size': 20000,
                      'file_system': 'ext4'}]}]}}}
    path = tmp_path / 'fuel.json'
    path.write_text(json.dumps(fuel))
    disks = tmp_path / 'disks.json'
    disks.write_text(json.dumps(lsblk(100)))
    proc = run('plan', str(path), '--data-driver', 'nailgun', '--inventory',
               str(disks), '--json')
    assert proc.returncode == 0, proc.stderr
    paths = [d['path'] for d in json.loads(proc.stdout)['devices']
             if d['type'] == 'partition']
    assert paths == ['/dev/vda1', '/dev/vda2', '/dev/vda3', '/dev/vda4']
    fuel['ks_meta']['pm_data']['ks_spaces'][0]['volumes'][1]['size'] = '2G'
    path.write_text(json.dumps(fuel))
    proc = run('validate', str(path), '--data-driver', 'nailgun')
    assert proc.returncode == 1
    assert '$.ks_meta.pm_data.ks_spaces[0].volumes[1].size must be a ' \
        "whole number of MiB, not '2G'" in proc.stderr
