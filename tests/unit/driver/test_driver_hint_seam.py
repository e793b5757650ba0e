"""Root device hints across the driver -> agent seam.

What the conductor serialises for a node with ``root_device`` hints
(``agent_input.build``, the default layout) goes through JSON, is
parsed by the agent (``input_format.parse``) and planned against a disk
inventory: lsblk JSON as the ramdisk's discovery reads it, and Ironic
inspection data as validate() reads it. For every hint field the scheme
schema accepts, the planned root disk must be the disk Ironic's own
``match_root_device_hints`` picks from the same disks.

On main, the default layout copied Ironic's parsed hints (lower-cased,
URL-quoted, ``s==`` prefixed) and the agent compared them with raw
values: ``{"serial": "ABC123"}`` matched no disk.

Nothing is mocked: real node objects, Ironic's task manager and hint
parser, the agent's parser and planner.
"""

import json

from fa_agent import input_format
from fa_agent.scheme import inventory
from fa_agent.scheme import planner
from fa_agent.scheme import schema
from ironic.common import exception
from ironic.common import utils as ironic_utils
from ironic.drivers.modules import inspect_utils

from ironic_fa_driver import agent_input

import driver_base

GiB = driver_base.GiB
PATH = '/dev/disk/by-path/pci-0000:00:1f.2-ata-%d'

# As `lsblk --json --bytes --nodeps -o LSBLK_COLUMNS` prints them (serial
# and model with the case and padding disks report).
LSBLK = {'blockdevices': [
    {'name': 'sda', 'path': '/dev/sda', 'size': 100 * GiB, 'type': 'disk',
     'rota': False, 'serial': 'ABC123', 'wwn': '0x5000C500A1B2C3D4',
     'vendor': 'ATA     ', 'model': 'Samsung SSD 860 ', 'hctl': '0:0:0:0',
     'ro': False},
    {'name': 'sdb', 'path': '/dev/sdb', 'size': 480103981056,
     'type': 'disk', 'rota': True, 'serial': 'ZC1 9X7Q',
     'wwn': '0x5000c500deadbeef', 'vendor': 'SEAGATE',
     'model': 'ST4000NM0035', 'hctl': '1:0:0:0', 'ro': False},
    {'name': 'sdc', 'path': '/dev/sdc', 'size': 2000 * GiB, 'type': 'disk',
     'rota': True, 'serial': 'WD-XYZ', 'wwn': '0x50014ee2b1c2d3e4',
     'vendor': 'WDC', 'model': 'WD20EFRX', 'hctl': '2:0:0:0', 'ro': False},
]}
BY_PATH = {'/dev/sda': PATH % 1, '/dev/sdb': PATH % 2, '/dev/sdc': PATH % 3}

# Ironic inspection data for the same disks (what IPA-style inventories
# carry beyond lsblk: the wwn extensions).
INVENTORY = {'disks': [
    dict(name=d['path'], size=d['size'], rotational=d['rota'],
         serial=d['serial'], wwn=d['wwn'], vendor=d['vendor'].strip(),
         model=d['model'].strip(), hctl=d['hctl'], by_path=BY_PATH[d['path']],
         wwn_with_extension=d['wwn'] + ext, wwn_vendor_extension=ext or None)
    for d, ext in zip(LSBLK['blockdevices'], ('', '0x1a', '0x2b'))]}

# (root_device hints as an operator writes them, the disk they choose).
CASES = [
    ({'serial': 'ABC123'}, '/dev/sda'),
    ({'serial': 'abc123'}, '/dev/sda'),
    ({'serial': 'ZC1 9X7Q'}, '/dev/sdb'),
    ({'serial': 's== WD-XYZ'}, '/dev/sdc'),
    ({'wwn': '0x5000C500DEADBEEF'}, '/dev/sdb'),
    ({'wwn': '<or> 0x1 <or> 0x50014ee2b1c2d3e4'}, '/dev/sdc'),
    ({'vendor': 'ata'}, '/dev/sda'),
    ({'vendor': 'SEAGATE', 'rotational': True}, '/dev/sdb'),
    ({'model': 'Samsung SSD 860'}, '/dev/sda'),
    ({'model': '<in> efrx'}, '/dev/sdc'),
    ({'hctl': '1:0:0:0'}, '/dev/sdb'),
    ({'by_path': PATH % 3}, '/dev/sdc'),
    ({'name': '/dev/sdb'}, '/dev/sdb'),
    ({'name': 's== /dev/sdc'}, '/dev/sdc'),
    ({'size': 100}, '/dev/sda'),
    ({'size': '>= 1000'}, '/dev/sdc'),
    ({'size': '<range-in> [ 400 500 ]'}, '/dev/sdb'),
    ({'rotational': False}, '/dev/sda'),
    ({'rotational': 'no'}, '/dev/sda'),
    ({'size': '> 200', 'rotational': 'true', 'vendor': 's!= wdc'},
     '/dev/sdb'),
]
# Only inspection data has these (lsblk prints no extension).
INVENTORY_CASES = [
    ({'wwn_with_extension': '0x5000c500deadbeef0x1a'}, '/dev/sdb'),
    ({'wwn_vendor_extension': '0x2B'}, '/dev/sdc'),
    ({'wwn_with_extension': '0x5000C500A1B2C3D4'}, '/dev/sda'),
]


class HintSeamTestCase(driver_base.DriverTestCase):

    def provision_json(self, hints, **node_fields):
        """provision.json text, as the write_image step uploads it."""
        node = self.create_node(properties={'root_device': hints},
                                **node_fields)
        with self.task(node) as task:
            source, document = agent_input.scheme_for(task, deploying=True)
            scheme = agent_input.check(source, document)
            return json.dumps(agent_input.build(task, scheme))

    def planned_root(self, text, devices):
        request = input_format.parse(json.loads(text))
        plan = planner.plan(request.scheme, devices)
        return plan.path('root_disk')

    def test_every_schema_hint_is_covered(self):
        used = {h for hints, _ in CASES + INVENTORY_CASES for h in hints}
        self.assertEqual(set(schema.DISK_HINTS), used)

    def test_lsblk_inventory(self):
        devices = inventory.from_lsblk(LSBLK, by_path=BY_PATH)
        for hints, expected in CASES:
            with self.subTest(hints=hints):
                text = self.provision_json(hints)
                self.assertEqual(expected, self.planned_root(text, devices))
                ironic = ironic_utils.match_root_device_hints(
                    INVENTORY['disks'], hints)
                self.assertEqual(expected, ironic['name'])

    def test_inspection_inventory(self):
        devices = inventory.from_ironic(INVENTORY)
        for hints, expected in CASES + INVENTORY_CASES:
            with self.subTest(hints=hints):
                text = self.provision_json(hints)
                self.assertEqual(expected, self.planned_root(text, devices))
                ironic = ironic_utils.match_root_device_hints(
                    INVENTORY['disks'], hints)
                self.assertEqual(expected, ironic['name'])

    def test_partition_image_layout(self):
        text = self.provision_json(
            {'serial': 'ABC123'},
            instance_info={'image_source': 'http://127.0.0.1:1/root.img',
                           'image_type': 'partition', 'root_gb': 10},
            driver_internal_info={'is_whole_disk_image': False})
        devices = inventory.from_lsblk(LSBLK, by_path=BY_PATH)
        self.assertEqual('/dev/sda', self.planned_root(text, devices))

    def test_validate_fit_check_with_serial_hint(self):
        # The conductor's fit check plans with the agent's matcher too.
        node = self.create_node(properties={'root_device':
                                            {'serial': 'ABC123'}})
        inspect_disks = [{k: v for k, v in d.items() if v is not None}
                         for d in INVENTORY['disks']]
        inspect_utils.store_inspection_data(
            node, {'disks': inspect_disks, 'interfaces': []}, {},
            self.context)
        with self.task(node, shared=True) as task:
            task.driver.deploy.validate(task)
        node.properties = {'root_device': {'serial': 'NOPE'}}
        node.save()
        with self.task(node, shared=True) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        self.assertIn('$.storage[0].match', str(exc))
        self.assertIn('hits no disk', str(exc))

    def test_hints_ironic_refuses_are_refused(self):
        node = self.create_node(properties={'root_device': {'size': 'big'}})
        with self.task(node, shared=True) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        self.assertIn('root device hints', str(exc))
