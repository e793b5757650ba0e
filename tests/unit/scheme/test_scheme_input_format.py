"""provision.json: the conductor builds it, the agent parses it back
through the ironic data driver."""

import json

import pytest

from fa_agent import data_drivers
from fa_agent import input_format
from fa_agent.data_drivers import ironic
from fa_agent.scheme import validator

SCHEME = {'storage': [
    {'type': 'disk', 'id': 'sda', 'match': {'serial': 'S1'}},
    {'type': 'partition', 'id': 'grub', 'device': 'sda', 'size': '1 MiB',
     'flags': ['bios_grub']},
    {'type': 'partition', 'id': 'cd', 'device': 'sda', 'size': '64 MiB'},
    {'type': 'partition', 'id': 'root', 'device': 'sda', 'size': 'remaining'},
    {'type': 'filesystem', 'id': 'fs', 'device': 'root', 'fstype': 'xfs',
     'mount_point': '/'}],
    'configdrive': {'device': 'cd'},
    'images': [{'url': 'http://127.0.0.1/root.tar.zst', 'format': 'tar',
                'target': '/', 'compression': 'zstd'}]}


def built(**kwargs):
    args = dict(node_uuid='1be26c0b-03f2-4d2e-ae87-c02d7f33c123',
                node_name='node-1', boot_mode='uefi',
                kernel_params='console=ttyS0',
                configdrive={'meta_data': {'hostname': 'node-1'}})
    args.update(kwargs)
    # through JSON, as it travels to the node
    return json.loads(json.dumps(input_format.build(SCHEME, **args)))


def test_build_then_parse():
    document = built()
    assert document['format'] == 'ironic-fa-provision'
    assert document['version'] == '1.0'
    request = input_format.parse(document)
    assert request.scheme == validator.load(SCHEME)
    assert (request.node_uuid, request.node_name, request.boot_mode,
            request.kernel_params) == (
        '1be26c0b-03f2-4d2e-ae87-c02d7f33c123', 'node-1', 'uefi',
        'console=ttyS0')
    assert request.configdrive == {'meta_data': {'hostname': 'node-1'}}
    assert request.effective_boot_mode == 'uefi'


def test_build_accepts_a_model():
    scheme = validator.load(SCHEME)
    assert input_format.build(scheme)['scheme'] == scheme.to_dict()


def test_scheme_bootloader_mode_wins():
    scheme = dict(SCHEME, bootloader={'mode': 'bios'})
    document = json.loads(json.dumps(input_format.build(scheme,
                                                        boot_mode='uefi')))
    assert input_format.parse(document).effective_boot_mode == 'bios'


def test_ironic_driver():
    driver = data_drivers.get_driver('ironic', built())
    assert isinstance(driver, ironic.IronicDataDriver)
    assert driver.request == input_format.parse(built())


def test_build_refuses_a_bad_scheme():
    bad = dict(SCHEME, storage=SCHEME['storage'][:4])
    with pytest.raises(validator.InvalidScheme) as info:
        input_format.build(bad)
    assert '$.storage' in [e.path for e in info.value.errors]
    with pytest.raises(input_format.InputError, match='boot_mode'):
        input_format.build(SCHEME, boot_mode='efi')


@pytest.mark.parametrize('change, fragment', [
    (lambda d: d.update(format='fuel'), "$.format must be "
     "'ironic-fa-provision', got 'fuel'"),
    (lambda d: d.update(version='2.0'), "$.version '2.0' is not supported"),
    (lambda d: d.update(boot_mode='efi'), "$.boot_mode must be one of bios, "
     "uefi, not 'efi'"),
    (lambda d: d.pop('scheme'), '$.scheme is missing'),
    (lambda d: d.update(configdrive='abc'), '$.configdrive must be an '
     'object'),
    (lambda d: d.update(node='node-1'), '$.node must be an object'),
    (lambda d: d.update(kernel_params=['quiet']), '$.kernel_params must be '
     'a string'),
])
def test_bad_envelope(change, fragment):
    document = built()
    change(document)
    with pytest.raises(input_format.InputError) as info:
        input_format.parse(document)
    assert fragment in str(info.value)


@pytest.mark.parametrize('document', [None, [], 'x', 1])
def test_not_an_object(document):
    with pytest.raises(input_format.InputError, match='JSON object'):
        input_format.parse(document)


def test_scheme_errors_are_under_scheme():
    document = built()
    document['scheme']['storage'][3]['device'] = 'sdz'
    with pytest.raises(validator.InvalidScheme) as info:
        input_format.parse(document)
    assert [e.path for e in info.value.errors] == [
        '$.scheme.storage[3].device']


def test_erase_request_round_trip():
    disks = [{'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
             {'type': 'disk', 'id': 'd1', 'match': {'serial': 'ABC'}}]
    request = input_format.parse(input_format.build_erase(disks, 'uuid-1'))
    assert request.action == 'erase'
    assert request.node_uuid == 'uuid-1'
    assert [d.id for d in request.scheme.of_type('disk')] == ['d0', 'd1']


@pytest.mark.parametrize('disks, path, fragment', [
    ([{'type': 'disk', 'id': 'd0', 'match': {}}], '$.storage[0].match',
     'should be non-empty'),
    ([{'type': 'disk', 'id': 'd0', 'match': {'name': 'sda'}},
      {'type': 'disk', 'id': 'd0', 'match': {'name': 'sdb'}}],
     '$.storage[1].id', "duplicate id 'd0'"),
    ([{'type': 'disk', 'id': 'd0', 'match': {'name': 'sda'}},
      {'type': 'partition', 'id': 'p', 'device': 'd0', 'size': '1 GiB'}],
     '$.storage[1].type', 'disks only'),
])
def test_erase_request_errors(disks, path, fragment):
    with pytest.raises(validator.InvalidScheme) as exc:
        input_format.build_erase(disks)
    assert any(e.path == path and fragment in e.message
               for e in exc.value.errors), exc.value.errors


def test_unknown_action_is_refused():
    document = input_format.build_erase(
        [{'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}}])
    document['action'] = 'format-everything'
    with pytest.raises(input_format.InputError, match=r'\$\.action'):
        input_format.parse(document)
