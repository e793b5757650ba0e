"""The lab's OpenStack mode, the parts that need no root and no running
service: the configuration it writes for each service and for Ironic,
the policy rule fast track needs under Keystone (checked against the
installed Ironic's own default), and which scenarios bring the control
plane up. The services themselves run in tests/lab."""

import configparser
import importlib
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                'tools'))
from lab import ironic  # noqa: E402
from lab import openstack  # noqa: E402
from lab import scenarios  # noqa: E402
from lab import settings  # noqa: E402


@pytest.fixture
def lab(tmp_path):
    return settings.Lab(state_dir=str(tmp_path), openstack=True)


def parse(path_or_text):
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    if os.path.exists(path_or_text):
        parser.read(path_or_text)
    else:
        parser.read_string(path_or_text)
    return parser


def test_every_service_has_its_database_on_the_labs_mariadb(lab):
    files = openstack.write_configs(lab, paste_files=False)
    for service, section, database in (
            ('keystone', 'database', 'keystone'),
            ('glance', 'database', 'glance'),
            ('placement', 'placement_database', 'placement'),
            ('neutron', 'database', 'neutron'),
            ('nova', 'api_database', 'nova_api'),
            ('nova', 'database', 'nova')):
        url = parse(files[service])[section]['connection']
        assert url.startswith('mysql+pymysql://lab:')
        assert '@%s:%d/%s?' % (lab.address, openstack.MYSQL_PORT,
                               database) in url
        assert database in openstack.DATABASES


def test_nova_compute_drives_ironic_without_database_access(lab):
    files = openstack.write_configs(lab, paste_files=False)
    compute = parse(files['nova-compute'])
    assert compute['DEFAULT']['compute_driver'] == 'ironic.IronicDriver'
    assert not compute.has_section('database')
    assert not compute.has_section('api_database')
    assert compute['ironic']['username'] == 'ironic'
    assert compute['ironic']['auth_url'] == openstack.keystone_url(lab)
    # One node: the user sees the validation error, not a retry's.
    assert parse(files['nova'])['scheduler']['max_attempts'] == '1'


def test_ironic_behind_keystone_only_in_openstack_mode(lab, tmp_path):
    keystone = parse(ironic.config(lab, '/var/cache/x'))
    assert keystone['DEFAULT']['auth_strategy'] == 'keystone'
    assert keystone['DEFAULT']['rbac_service_role_elevated_access'] == \
        'true'
    assert keystone['keystone_authtoken']['auth_url'] == \
        openstack.keystone_url(lab)
    assert keystone['glance']['username'] == 'ironic'
    assert keystone['oslo_policy']['policy_file'] == lab.path(
        'ironic', 'policy.yaml')
    plain = parse(ironic.config(settings.Lab(state_dir=str(tmp_path),
                                             openstack=False),
                                '/var/cache/x'))
    assert plain['DEFAULT']['auth_strategy'] == 'noauth'
    assert not plain.has_section('keystone_authtoken')


def test_fast_track_policy_widens_ironics_default_by_the_public_routes():
    # Ironic's own package, not the lab's module of the same name.
    importlib.import_module('ironic.tests.unit')  # oslo.service backend
    policy = importlib.import_module('ironic.common.policy')
    default = {rule.name: rule.check_str
               for rule in policy.list_policies()}[
                   'baremetal:node:get:driver_internal_info']
    name, _, rule = ironic.FAST_TRACK_POLICY.strip().partition(': ')
    assert name == '"baremetal:node:get:driver_internal_info"'
    assert rule == '"(%s) or is_public_api:True"' % default


def test_the_nova_scenarios_bring_the_control_plane_up():
    assert scenarios.need_openstack()
    assert scenarios.need_openstack(['nova-rescue'])
    assert scenarios.need_openstack(['uefi-raid1-failover'])
    assert not scenarios.need_openstack(['uefi-default-layout',
                                         'bios-inspect-clean'])


def test_the_launcher_keeps_the_labs_modules_off_the_path():
    # tools/lab/openstack.py would shadow openstacksdk's package.
    path = os.path.join(os.path.dirname(openstack.__file__),
                        'wsgi_server.py')
    with open(path) as f:
        text = f.read()
    assert 'sys.path[:] = [' in text
    assert text.index('sys.path[:] = [') < text.index('from gunicorn')


def test_multi_conductor_ironic_shares_database_bus_and_key_secret(lab,
                                                                  tmp_path):
    shared = parse(ironic.config(lab, '/var/cache/x'))
    assert shared['DEFAULT']['rpc_transport'] == 'oslo'
    assert shared['DEFAULT']['transport_url'] == openstack.transport_url(lab)
    assert shared['database']['connection'] == openstack.db_url(lab,
                                                                'ironic')
    assert 'ironic' in openstack.DATABASES
    assert shared['fuel_agent']['key_secret_file'] == lab.path(
        'ironic', 'key-secret')
    # A dead conductor leaves the ring sooner than the node's deploy
    # times out.
    assert int(shared['conductor']['heartbeat_timeout']) < int(
        shared['conductor']['deploy_callback_timeout'])
    quick = parse(ironic.config(settings.Lab(state_dir=str(tmp_path / 'q'),
                                             openstack=False),
                                '/var/cache/x'))
    assert quick['DEFAULT']['rpc_transport'] == 'none'
    assert quick['database']['connection'].startswith('sqlite:///')
    assert not quick.has_option('fuel_agent', 'key_secret_file')


def test_each_conductor_has_its_own_name_and_disk_and_groups_fail_over(lab):
    own = {c.host: parse(ironic.conductor_config(lab, c))
           for c in settings.CONDUCTORS}
    assert len({c.process for c in settings.CONDUCTORS}) == len(own)
    for host, conf in own.items():
        assert conf['DEFAULT']['host'] == host
        assert conf['fuel_agent']['key_dir'].startswith(
            lab.path('ironic', host))
        assert conf['pxe']['images_path'].startswith(
            lab.path('ironic', host))
    served = {}
    for conductor in settings.CONDUCTORS:
        served.setdefault(conductor.group, []).append(conductor.host)
        assert own[conductor.host]['conductor']['conductor_group'] == \
            conductor.group
    for node in settings.NODES.values():
        assert served.get(node.conductor_group), node
    # The failover scenario's node has a second conductor to fail over to.
    assert len(served[settings.NODES['uefi'].conductor_group]) >= 2
