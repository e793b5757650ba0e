"""The configdrive in its three forms, written to a regular file standing
in for the partition (blkid on a real partition is in the functional
tests). ISOs are built with the real genisoimage."""

import base64
import gzip
import json
import subprocess

import pytest

from fa_agent import configdrive
from fa_agent import errors
from fa_agent import runner as runner_mod
from fa_agent.images import policy

MIB = 1024 * 1024
ISO_VOLUME_ID = slice(32768 + 40, 32768 + 72)


def make_iso(tmp_path, payload=b'{"uuid": "n1"}'):
    tree = tmp_path / 'tree' / 'openstack' / 'latest'
    tree.mkdir(parents=True)
    (tree / 'meta_data.json').write_bytes(payload)
    iso = tmp_path / 'cd.iso'
    subprocess.run(['genisoimage', '-quiet', '-r', '-J', '-V', 'config-2',
                    '-o', str(iso), str(tmp_path / 'tree')], check=True)
    return iso.read_bytes()


@pytest.fixture
def partition(tmp_path):
    path = tmp_path / 'partition'
    path.write_bytes(b'\xaa' * (4 * MIB))
    return path


def write(spec, partition):
    # file:// URLs below the test's directory (the partition's) are
    # allowed; everything else follows the default policy.
    allowed = policy.ImagePolicy(
        file_url_allowed_paths=(str(partition.parent),))
    return configdrive.write_configdrive(spec, str(partition),
                                         runner_mod.Runner(), policy=allowed)


def test_gzip_base64_data(tmp_path, partition):
    iso = make_iso(tmp_path)
    result = write({'data': base64.b64encode(gzip.compress(iso)).decode()},
                   partition)
    assert partition.read_bytes()[:len(iso)] == iso
    assert result == {'source': 'data', 'bytes': len(iso),
                      'device': str(partition)}


def test_plain_base64_data(tmp_path, partition):
    iso = make_iso(tmp_path)
    write({'data': base64.b64encode(iso).decode()}, partition)
    assert partition.read_bytes()[:len(iso)] == iso


def test_url_to_base64_gzip(tmp_path, partition):
    iso = make_iso(tmp_path)
    served = tmp_path / 'configdrive.b64'
    served.write_bytes(base64.b64encode(gzip.compress(iso)))
    result = write({'url': 'file://%s' % served}, partition)
    assert partition.read_bytes()[:len(iso)] == iso
    assert result['source'] == 'url'


def test_built_from_data(partition):
    spec = {'meta_data': {'uuid': 'abc', 'hostname': 'node-1'},
            'user_data': '#cloud-config\n',
            'network_data': {'links': [], 'networks': [], 'services': []}}
    result = write(spec, partition)
    written = partition.read_bytes()
    assert written[ISO_VOLUME_ID].rstrip() == b'config-2'
    assert result['source'] == 'built'
    listing = subprocess.run(
        ['isoinfo', '-R', '-f', '-i', str(partition)], capture_output=True,
        text=True, check=True).stdout.split()
    assert '/openstack/latest/meta_data.json' in listing
    assert '/openstack/latest/user_data' in listing
    assert '/openstack/latest/network_data.json' in listing
    meta = subprocess.run(
        ['isoinfo', '-R', '-i', str(partition), '-x',
         '/openstack/latest/meta_data.json'], capture_output=True,
        check=True).stdout
    assert json.loads(meta) == spec['meta_data']


def test_iso_larger_than_partition_is_refused(tmp_path):
    iso = make_iso(tmp_path, payload=b'{"pad": "%s"}' % (b'x' * MIB))
    small = tmp_path / 'small'
    small.write_bytes(b'\xaa' * (len(iso) - 4096))
    with pytest.raises(errors.DoesNotFit, match='larger than'):
        write({'data': base64.b64encode(gzip.compress(iso)).decode()},
              small)
    assert small.read_bytes() == b'\xaa' * (len(iso) - 4096)


@pytest.mark.parametrize('spec,field', [
    ({}, 'configdrive must be an object'),
    ('abc', 'configdrive must be an object'),
    ({'data': 'x', 'url': 'http://h/c'}, 'only one of'),
    ({'data': 'x', 'meta_data': {}}, 'only one of'),
    ({'colour': 'x'}, 'configdrive.colour: unknown field'),
    ({'data': ''}, 'configdrive.data must be'),
    ({'url': 'ftp://h/c'}, 'configdrive.url must be'),
    ({'meta_data': ['a']}, 'configdrive.meta_data must be an object'),
    ({'meta_data': {}, 'user_data': 5}, 'configdrive.user_data must be'),
])
def test_bad_specs_name_the_field(spec, field, partition):
    with pytest.raises(errors.BadInput, match=field):
        write(spec, partition)
    assert partition.read_bytes() == b'\xaa' * (4 * MIB)


def test_data_that_is_no_iso_is_refused(partition):
    with pytest.raises(errors.BadInput, match='ISO 9660'):
        write({'data': base64.b64encode(gzip.compress(b'hello')).decode()},
              partition)


def test_dry_run_touches_nothing(partition):
    result = configdrive.write_configdrive(
        {'meta_data': {'uuid': 'a'}}, str(partition),
        runner_mod.RecordingRunner())
    assert result['dry_run'] is True
    assert partition.read_bytes() == b'\xaa' * (4 * MIB)
