"""Test base for the fuel-agent deploy interface on Ironic's own test
base (in-memory sqlite, real node objects, real task manager).

Paths the driver uses on the "ramdisk" point into a temporary directory;
the ramdisk itself is :class:`fake_ramdisk.FakeRamdisk`, a real SSH server
on 127.0.0.1.
"""

import json
import logging
import os
import shutil
import sys
import tempfile
import textwrap

from ironic.conductor import task_manager
from ironic.drivers.modules import inspect_utils
from ironic.tests.unit.db import base as db_base
from ironic.tests.unit.objects import utils as obj_utils
from oslo_utils import uuidutils

import fake_ramdisk

GiB = 1024 ** 3

WHOLE_DISK_SCHEME = {
    'version': 1,
    'storage': [{'type': 'disk', 'id': 'sda', 'match': {'name': '/dev/sda'}}],
}

PARTITIONED_SCHEME = {
    'version': 1,
    'storage': [
        {'type': 'disk', 'id': 'sda', 'table': 'gpt',
         'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'grub', 'device': 'sda',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'root', 'device': 'sda',
         'size': '10 GiB'},
        {'type': 'filesystem', 'id': 'rootfs', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/'},
    ],
    'bootloader': {'mode': 'bios'},
}

# Stands in for the agent in unit tests (the functional test runs the
# real one): writes the status file per the contract, the way the
# scenario file next to the input asks.
FAKE_AGENT = textwrap.dedent('''\
    import argparse, json, os, sys, time
    p = argparse.ArgumentParser()
    for o in ('--input-data-file', '--data-driver', '--status-file',
              '--log-file', '--steps'):
        p.add_argument(o)
    # The options the conductor hands over from Ironic's own settings.
    p.add_argument('--file-url-allowed-paths')
    p.add_argument('--allow-md5-checksum', action='store_true')
    p.add_argument('--image-ca-file')
    a = p.parse_args()
    scenario = json.load(open(os.path.join(
        os.path.dirname(a.input_data_file), '..', 'scenario.json')))
    with open(a.log_file, 'a') as log:
        log.write('agent log line; steps=%s\\n' % a.steps)
        log.write(scenario.get('log', ''))
    print(scenario.get('stdout', ''))
    status = {'state': 'running', 'step': 'discover', 'steps_done': [],
              'progress': {'step': 'discover', 'percent': None,
                           'message': ''},
              'error': None, 'exit_code': None, 'pid': os.getpid(),
              'started_at': 'now', 'updated_at': 'now', 'result': None}
    status.update(scenario.get('status', {}))
    if not scenario.get('no_status'):
        tmp = a.status_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write(scenario.get('raw_status') or json.dumps(status))
        os.replace(tmp, a.status_file)
    time.sleep(scenario.get('sleep', 0))
    sys.exit(scenario.get('exit', 0))
''')


class NodesOfThisConductor:
    """The part of the conductor manager a node periodic uses: the nodes
    of this (only) conductor, from the database."""

    def __init__(self, dbapi):
        self.dbapi = dbapi

    def iter_nodes(self, fields=None, **kwargs):
        columns = ['uuid', 'driver', 'conductor_group'] + list(fields or ())
        return iter(self.dbapi.get_nodeinfo_list(columns=columns, **kwargs))


class DriverTestCase(db_base.DbTestCase):
    # The fake ramdisk runs real shell commands through subprocess.
    block_execute = False

    def _clear_attrs(self):
        # Ironic's version deletes attributes pytest still needs.
        pass

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='fa-driver-test-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.remote = os.path.join(self.tmp, 'ramdisk-fs')
        os.makedirs(self.remote)
        self.library = os.path.join(self.tmp, 'schemes')
        os.makedirs(self.library)
        self.logs = os.path.join(self.tmp, 'ramdisk-logs')
        agent = os.path.join(self.tmp, 'fake_agent.py')
        with open(agent, 'w') as f:
            f.write(FAKE_AGENT)
        self.config(enabled_hardware_types=['fake-hardware', 'fuel-manual',
                                            'fuel-ipmi', 'fuel-redfish',
                                            'ipmi'])
        self.config(enabled_deploy_interfaces=['fuel-agent', 'fake',
                                               'direct'])
        self.config(enabled_power_interfaces=['fake', 'ipmitool'])
        self.config(enabled_management_interfaces=['fake', 'ipmitool'])
        self.config(auth_strategy='noauth')
        self.config(endpoint_override='http://127.0.0.1:6385',
                    group='service_catalog')
        self.config(deploy_logs_local_path=self.logs,
                    deploy_logs_storage_backend='local', group='agent')
        self.config(key_dir=os.path.join(self.tmp, 'keys'),
                    remote_work_dir=os.path.join(self.remote, 'work'),
                    status_file=os.path.join(self.remote, 'status.json'),
                    log_file=os.path.join(self.remote, 'log',
                                          'provision.log'),
                    scheme_library_dir=self.library,
                    agent_command='%s %s' % (sys.executable, agent),
                    ssh_connect_timeout=5, ssh_command_timeout=10,
                    group='fuel_agent')

    # -- helpers --------------------------------------------------------------

    def capture_logs(self):
        """Every log record of this process from now on, as
        "<level> <logger> <message>" lines (a list that fills up).
        Loggers that a logging.config call disabled (alembic's, while
        Ironic's test base migrates the database) are enabled for the
        test, so nothing escapes."""
        lines = []

        class Keep(logging.Handler):
            def emit(self, record):
                lines.append(self.format(record))

        for logger in list(logging.root.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger) and logger.disabled:
                logger.disabled = False
                self.addCleanup(setattr, logger, 'disabled', True)
        handler = Keep(logging.DEBUG)
        handler.setFormatter(logging.Formatter(
            '%(levelname)s %(name)s %(message)s'))
        root = logging.getLogger()
        self.addCleanup(root.setLevel, root.level)
        self.addCleanup(root.removeHandler, handler)
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        return lines

    def create_node(self, **kwargs):
        values = dict(
            uuid=uuidutils.generate_uuid(), driver='fake-hardware',
            deploy_interface='fuel-agent', boot_interface='fake',
            power_interface='fake', management_interface='fake',
            network_interface='noop',
            instance_info={'image_source': 'http://127.0.0.1:1/disk.img',
                           'image_os_hash_algo': 'sha256',
                           'image_os_hash_value': 'ab' * 32},
            driver_info={}, driver_internal_info={})
        values.update(kwargs)
        return obj_utils.create_test_node(self.context, **values)

    def add_port(self, node, address='52:54:00:12:34:56'):
        return obj_utils.create_test_port(
            self.context, node_id=node.id, address=address,
            uuid=uuidutils.generate_uuid())

    def task(self, node, shared=False):
        return task_manager.acquire(self.context, node.uuid, shared=shared)

    def ramdisk(self):
        server = fake_ramdisk.FakeRamdisk(self.tmp).start()
        self.addCleanup(server.stop)
        return server

    def scenario(self, **values):
        with open(os.path.join(self.remote, 'scenario.json'), 'w') as f:
            json.dump(values, f)

    def add_inventory(self, node, *disks):
        inventory = {'interfaces': [{'mac_address': '52:54:00:12:34:56'}],
                     'disks': [{'name': name, 'size': size}
                               for name, size in disks]}
        inspect_utils.store_inspection_data(node, inventory, {},
                                            self.context)

    def write_library_scheme(self, name, scheme):
        with open(os.path.join(self.library, name + '.json'), 'w') as f:
            json.dump(scheme, f)
