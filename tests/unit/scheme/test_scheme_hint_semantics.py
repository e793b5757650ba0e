"""The agent's disk matcher against Ironic's root device hints.

Table test: for each hint expression, ``fa_agent.scheme.matcher`` must
pick the same disks as Ironic 39's ``ironic.common.utils.
find_devices_by_hints`` (what ``match_root_device_hints`` and the
inspection root-device hook use), over disks whose values differ in
case, padding and spelling. Ironic is installed in the test venv; the
agent, which cannot import it, restates its rules.
"""

import unittest

from ironic.common import utils as ironic_utils

from fa_agent.scheme import inventory
from fa_agent.scheme import matcher
from fa_agent.scheme import schema
from fa_agent.scheme import validator

GiB = 1024 ** 3

DISKS = [
    dict(name='/dev/sda', size=100 * GiB, rotational=False,
         serial='ABC123', wwn='0x5000C500A1B2C3D4',
         wwn_with_extension='0x5000C500A1B2C3D4', wwn_vendor_extension=None,
         vendor='ATA', model='Samsung SSD 860', hctl='0:0:0:0',
         by_path='/dev/disk/by-path/pci-0000:00:1f.2-ata-1'),
    dict(name='/dev/sdb', size=480103981056, rotational=True,
         serial='ZC1 9X7Q', wwn='0x5000c500deadbeef',
         wwn_with_extension='0x5000c500deadbeef0x1a',
         wwn_vendor_extension='0x1a', vendor='SEAGATE',
         model='ST4000NM0035', hctl='1:0:0:0',
         by_path='/dev/disk/by-path/pci-0000:00:1f.2-ata-2'),
    dict(name='/dev/nvme0n1', size=2000 * GiB, rotational=False,
         serial=' S4EWNX0N ', wwn='eui.0025388b91b2c3d4',
         wwn_with_extension='eui.0025388b91b2c3d4',
         wwn_vendor_extension=None, vendor=None,
         model='Samsung SSD 970 EVO Plus 2TB', hctl=None,
         by_path='/dev/disk/by-path/pci-0000:03:00.0-nvme-1'),
]

CASES = [
    # Text hints: case and surrounding spaces do not count; spaces
    # inside do; no operator means s==.
    {'serial': 'ABC123'}, {'serial': 'abc123'}, {'serial': ' abc123 '},
    {'serial': 'zc1 9x7q'}, {'serial': 'ZC1'}, {'serial': 's4ewnx0n'},
    {'serial': 's== ABC123'}, {'serial': 's!= abc123'},
    {'serial': '<in> 9x7'}, {'serial': '<or> nope <or> ZC1 9X7Q'},
    {'serial': 's> b'}, {'serial': 's<= abc123'},
    {'wwn': '0x5000C500DEADBEEF'}, {'wwn': '<in> 0x5000c500'},
    {'wwn': 'eui.0025388B91B2C3D4'},
    {'wwn_with_extension': '0x5000c500deadbeef0x1A'},
    {'wwn_with_extension': '<in> 0x5000'},
    {'wwn_vendor_extension': '0x1a'}, {'wwn_vendor_extension': 's!= 0x1a'},
    {'vendor': 'ata'}, {'vendor': 'Seagate'}, {'vendor': '<in> a'},
    {'model': 'samsung ssd 860'}, {'model': '<in> samsung'},
    {'model': '<in> SSD 970'}, {'model': 'Samsung SSD 970 EVO Plus 2TB'},
    {'model': '<or> st4000nm0035 <or> samsung ssd 860'},
    {'hctl': '1:0:0:0'}, {'hctl': '<in> 0:0'}, {'hctl': 's!= 0:0:0:0'},
    {'by_path': '/dev/disk/by-path/pci-0000:00:1f.2-ata-2'},
    {'by_path': '<in> nvme'},
    {'name': '/dev/sda'}, {'name': '/DEV/SDA'}, {'name': 's== /dev/sdb'},
    {'name': '<or> /dev/sdb <or> /dev/nvme0n1'}, {'name': '<in> nvme'},
    {'name': 's!= /dev/sda'},
    # size: GiB, exact (447.13 GiB is not 447), numbers only.
    {'size': 100}, {'size': '100'}, {'size': 447}, {'size': '>= 447'},
    {'size': '< 447'}, {'size': '> 100'}, {'size': '!= 100'},
    {'size': '<= 100'}, {'size': '= 447'}, {'size': '== 2000'},
    {'size': '<range-in> [ 100 447 ]'}, {'size': '<range-in> ( 100 500 )'},
    # rotational: a boolean, written any way strutils reads one.
    {'rotational': True}, {'rotational': False}, {'rotational': 'yes'},
    {'rotational': '0'}, {'rotational': 'on'},
    # Several hints: all must hold.
    {'rotational': False, 'model': '<in> samsung'},
    {'size': '>= 100', 'serial': 's!= abc123', 'rotational': False},
    {'vendor': 'ata', 'size': 447},
]


def agent_pick(hints):
    devices = [inventory.BlockDevice(**d) for d in DISKS]
    return [d.name for d in matcher.matching(devices, hints)]


def ironic_pick(hints):
    return [d['name'] for d in
            ironic_utils.find_devices_by_hints(DISKS, hints)]


class SameDisksAsIronicTestCase(unittest.TestCase):

    def test_table(self):
        for hints in CASES:
            with self.subTest(hints=hints):
                self.assertEqual(ironic_pick(hints), agent_pick(hints))

    def test_first_match_is_ironics_root_device(self):
        for hints in CASES:
            with self.subTest(hints=hints):
                picked = agent_pick(hints)
                root = ironic_utils.match_root_device_hints(DISKS, hints)
                self.assertEqual(root['name'] if root else None,
                                 picked[0] if picked else None)

    def test_every_schema_hint_is_in_the_table(self):
        used = {hint for hints in CASES for hint in hints}
        self.assertEqual(set(schema.DISK_HINTS), used)
        self.assertEqual(set(schema.DISK_HINTS), set(matcher.HINT_TYPES))

    def test_cases_tell_disks_apart(self):
        # A table where every case matched everything would prove nothing.
        picks = {tuple(ironic_pick(h)) for h in CASES}
        for disk in DISKS:
            self.assertIn((disk['name'],), picks)
        self.assertIn((), picks)

    def test_missing_value_is_the_text_none(self):
        # As in Ironic: "s!= X" holds for a disk without the value, and a
        # hint "none" matches it.
        self.assertEqual(['/dev/nvme0n1'], agent_pick({'vendor': 'none'}))
        self.assertEqual(['/dev/sda', '/dev/nvme0n1'],
                         agent_pick({'wwn_vendor_extension': 's!= 0x1a'}))

    def test_unknown_rotational_matches_neither(self):
        disks = [dict(DISKS[0], rotational=None)]
        devices = [inventory.BlockDevice(**disks[0])]
        for hints in ({'rotational': True}, {'rotational': False}):
            with self.subTest(hints=hints):
                self.assertEqual([], list(ironic_utils.find_devices_by_hints(
                    disks, hints)))
                self.assertEqual([], matcher.matching(devices, hints))

    def test_empty_device_value_matches_nothing(self):
        disks = [dict(DISKS[0], serial='')]
        for hints in ({'serial': 's!= x'}, {'serial': '<in> a'}):
            with self.subTest(hints=hints):
                self.assertEqual([], [d['name'] for d in
                                      ironic_utils.find_devices_by_hints(
                                          disks, hints)])
                devices = [inventory.BlockDevice(**disks[0])]
                self.assertEqual([], matcher.matching(devices, hints))


class AdditionsTestCase(unittest.TestCase):
    """Where the agent matches a disk and Ironic none, on purpose."""

    def test_short_name(self):
        self.assertEqual([], ironic_pick({'name': 'sdb'}))
        self.assertEqual(['/dev/sdb'], agent_pick({'name': 'sdb'}))
        self.assertEqual(['/dev/sda', '/dev/sdb'],
                         agent_pick({'name': '<or> sda <or> sdb'}))

    def test_integer_text_hint(self):
        self.assertRaises(ValueError, ironic_pick, {'serial': 123})
        devices = [inventory.BlockDevice(name='/dev/sdx', size=GiB,
                                         serial='123')]
        self.assertEqual(devices, matcher.matching(devices, {'serial': 123}))


class RefusedHintsTestCase(unittest.TestCase):
    """Hints Ironic refuses or can never match are scheme errors, with
    the JSON path of the hint."""

    REFUSED = [
        ({'size': 'big'}, 'not a whole number'),
        ({'size': 0}, 'positive'),
        ({'size': '>= -1'}, 'positive'),
        ({'size': '<or> 100 <or> 447'}, 'cannot compare sizes'),
        ({'size': 's== 100'}, 'cannot compare sizes'),
        ({'serial': '>= 10'}, 'does not work on text'),
        ({'model': '<all-in> a b'}, 'does not work on text'),
        ({'model': '<range-in> [ 1 2 ]'}, 'does not work on text'),
        ({'serial': 's=='}, 'not a hint expression'),
        ({'serial': '   '}, 'empty'),
    ]

    def scheme(self, match):
        return {'version': 1, 'storage': [
            {'type': 'disk', 'id': 'd', 'match': match},
            {'type': 'filesystem', 'id': 'fs', 'device': 'd',
             'fstype': 'ext4', 'mount_point': '/'}]}

    def test_refused(self):
        for match, reason in self.REFUSED:
            with self.subTest(match=match):
                errors = validator.validate(self.scheme(match))
                hint = next(iter(match))
                self.assertEqual(['$.storage[0].match.' + hint],
                                 [e.path for e in errors])
                self.assertIn(reason, errors[0].message)
                self.assertEqual([], agent_pick(match))

    def test_ironic_refuses_or_never_matches_them_too(self):
        for match, _reason in self.REFUSED:
            with self.subTest(match=match):
                try:
                    picked = ironic_pick(match)
                except Exception:
                    continue
                self.assertEqual([], picked)

    def test_accepted_hints_have_no_problems(self):
        for hints in CASES:
            with self.subTest(hints=hints):
                self.assertEqual([], matcher.problems(hints))


class OutOfBandNameTestCase(unittest.TestCase):
    """Issue 12 item 6: a disk name from a BMC (Redfish, iDRAC) is not a
    kernel name and would match no disk in the ramdisk; the scheme is
    refused at its JSON path, saying what to match by instead."""

    def scheme(self, name):
        return {'storage': [
            {'type': 'disk', 'id': 'd0', 'match': {'name': name}},
            {'type': 'partition', 'id': 'p', 'device': 'd0',
             'size': '1 GiB'}]}

    def match_errors(self, name):
        # The scheme has no root file system: only the hint errors count.
        return [e for e in validator.validate(self.scheme(name))
                if e.path.startswith('$.storage[0].match')]

    def test_redfish_names_are_refused_with_a_hint(self):
        for name in ('Disk.Bay.0:Enclosure.Internal.0-1',
                     'Solid State Disk 0:1:0', 's== Disk.Bay.1'):
            errors = self.match_errors(name)
            self.assertEqual(['$.storage[0].match.name'],
                             [e.path for e in errors], name)
            self.assertIn('not a kernel device name', errors[0].message)
            self.assertIn('serial, wwn or by_path', errors[0].message)

    def test_kernel_names_are_accepted(self):
        for name in ('sda', '/dev/nvme0n1', 'vdb', 'cciss!c0d0',
                     '/dev/disk/by-path/pci-0000:00:1f.2-ata-1',
                     '<or> sda <or> sdb'):
            self.assertEqual([], self.match_errors(name), name)
