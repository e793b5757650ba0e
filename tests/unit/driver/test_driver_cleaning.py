"""Cleaning with Ironic's defaults: IPA's erase steps with priorities and
options from Ironic's own [deploy] settings, disks from the ramdisk when
the node was never inspected, named by stable identity, the outcome per
disk in the node's history, and the keep_data warning.

The ramdisk is the real SSH server on loopback (fake_ramdisk); what its
``lsblk`` shows is scripted by an ``lsblk`` program first on its PATH,
because this machine's own disks are not the node's (and must never be
listed as such). The agent is the stand-in of driver_base; the real one
erases real loop devices in tests/functional.
"""

import json
import os
import stat

from ironic.common import exception
from ironic.common import states
from ironic.drivers.modules import inspect_utils
from ironic.objects import node_history
from unittest import mock

from fa_agent.scheme import inventory
from ironic_fa_driver import agent_control
from ironic_fa_driver import erasure
from ironic_fa_driver import operations

import driver_base
import test_driver_deploy_flow as flow

GiB = driver_base.GiB
RAMDISK_DISKS = {'blockdevices': [
    {'name': 'sda', 'path': '/dev/sda', 'size': 10 * GiB, 'type': 'disk',
     'serial': 'SER-A', 'wwn': '0x5000c500a1b2c3d4', 'ro': False},
    {'name': 'sdb', 'path': '/dev/sdb', 'size': 10 * GiB, 'type': 'disk',
     'serial': 'DUP', 'ro': False},
    {'name': 'sdc', 'path': '/dev/sdc', 'size': 10 * GiB, 'type': 'disk',
     'serial': 'DUP', 'ro': False},
    {'name': 'vda', 'path': '/dev/vda', 'size': 10 * GiB, 'type': 'disk',
     'ro': False},
    {'name': 'sr0', 'path': '/dev/sr0', 'size': GiB, 'type': 'rom',
     'ro': True},
    {'name': 'sdd', 'path': '/dev/sdd', 'size': GiB, 'type': 'disk',
     'serial': 'RO-1', 'ro': True},
]}


class CleaningTestCase(flow.FlowTestCase):

    def setUp(self):
        super().setUp()
        self.ramdisk_lsblk(RAMDISK_DISKS)

    def ramdisk_lsblk(self, document):
        bin_dir = os.path.join(self.tmp, 'ramdisk-bin')
        os.makedirs(bin_dir, exist_ok=True)
        path = os.path.join(bin_dir, 'lsblk')
        with open(path, 'w') as f:
            f.write('#!/bin/sh\ncat <<"EOF"\n%s\nEOF\n' % json.dumps(document))
        os.chmod(path, stat.S_IRWXU)
        self.server.env['PATH'] = bin_dir + ':' + self.server.env['PATH']

    def cleaning_node(self, **kwargs):
        return self.create_node(provision_state=states.CLEANING,
                                target_provision_state=states.AVAILABLE,
                                power_state=states.POWER_ON, **kwargs)

    def ramdisk_up(self, node):
        """The ramdisk booted for cleaning and reported in."""
        with mock.patch.object(flow.fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                task.driver.deploy.prepare_cleaning(task)
        self.server.authorize(prepare.call_args[0][2]['fa-ssh-key'])
        with self.task(node) as task:
            operations.record_callback(task.node, flow._callback(self.server))
            task.node.save()

    def run_step(self, node, step):
        with self.task(node) as task:
            task.node.clean_step = {'step': step, 'interface': 'deploy'}
            task.node.save()
            self.assertEqual(states.CLEANWAIT,
                             getattr(task.driver.deploy, step)(task))
            # What the conductor does with the step's CLEANWAIT.
            task.node.provision_state = states.CLEANWAIT
            task.node.save()
        self.wait_for_agent()
        paths = agent_control.RemotePaths.from_conf()
        with open(paths.input_file) as f:
            return json.load(f)

    def steps(self):
        node = self.create_node()
        with self.task(node) as task:
            return {s['step']: s['priority']
                    for s in task.driver.deploy.get_clean_steps(task)}

    # -- steps and priorities ------------------------------------------------

    def test_ipa_steps_and_default_priorities(self):
        self.assertEqual({'erase_devices_metadata': 99, 'erase_devices': 10,
                          'erase_devices_express': 0}, self.steps())

    def test_priorities_from_ironics_deploy_options(self):
        self.config(erase_devices_priority=0,
                    erase_devices_metadata_priority=5, group='deploy')
        self.assertEqual({'erase_devices_metadata': 5, 'erase_devices': 0,
                          'erase_devices_express': 0}, self.steps())

    def test_deprecated_fuel_agent_priority_still_works_and_loses(self):
        self.config(erase_devices_metadata_priority=0, group='fuel_agent')
        self.assertEqual(0, self.steps()['erase_devices_metadata'])
        self.config(erase_devices_metadata_priority=7, group='deploy')
        self.assertEqual(7, self.steps()['erase_devices_metadata'])

    # -- which disks, named how ---------------------------------------------

    def test_never_inspected_node_erases_the_ramdisks_disks_by_identity(self):
        self.scenario(status={'state': 'succeeded', 'exit_code': 0})
        node = self.cleaning_node()
        self.ramdisk_up(node)
        document = self.run_step(node, 'erase_devices_metadata')
        matches = [d['match'] for d in document['scheme']['storage']]
        self.assertEqual([
            {'serial': 'SER-A', 'wwn': '0x5000c500a1b2c3d4'},
            # The same serial on two disks names neither: the kernel name
            # of this very boot does.
            {'name': '/dev/sdb'}, {'name': '/dev/sdc'},
            {'name': '/dev/vda'},
            # Read-only disks are named so that the agent reports them;
            # the CD-ROM is not a disk.
            {'serial': 'RO-1'}], matches)
        self.assertEqual('metadata', document['erase']['mode'])
        with open(agent_control.RemotePaths.from_conf().log_file) as f:
            self.assertIn('steps=discover,wipe', f.read())

    def test_inspected_disks_are_named_by_serial_wwn_or_by_path(self):
        self.scenario(status={'state': 'succeeded', 'exit_code': 0})
        node = self.cleaning_node()
        inventory_data = {'interfaces': [], 'disks': [
            {'name': '/dev/sda', 'size': 10 * GiB, 'serial': 'S1'},
            {'name': '/dev/vda', 'size': 10 * GiB,
             'by_path': '/dev/disk/by-path/pci-0000:00:05.0'},
            {'name': '/dev/sdz', 'size': 10 * GiB}]}
        inspect_utils.store_inspection_data(node, inventory_data, {},
                                            self.context)
        self.ramdisk_up(node)
        document = self.run_step(node, 'erase_devices')
        self.assertEqual(
            [{'serial': 'S1'},
             {'by_path': '/dev/disk/by-path/pci-0000:00:05.0'},
             {'name': '/dev/sdz'}],
            [d['match'] for d in document['scheme']['storage']])

    def test_erase_options_are_ironics_deploy_options(self):
        self.config(shred_random_overwrite_iterations=3,
                    shred_final_overwrite_with_zeros=False,
                    enable_ata_secure_erase=False,
                    continue_if_disk_secure_erase_fails=True,
                    erase_skip_read_only=True, disk_erasure_concurrency=2,
                    group='deploy')
        self.scenario(status={'state': 'succeeded', 'exit_code': 0})
        node = self.cleaning_node()
        self.ramdisk_up(node)
        document = self.run_step(node, 'erase_devices')
        self.assertEqual({'mode': 'full', 'random_iterations': 3,
                          'zeroize': False, 'ata_secure_erase': False,
                          'nvme_secure_erase': True,
                          'continue_if_secure_erase_fails': True,
                          'skip_read_only': True, 'concurrency': 2},
                         document['erase'])
        with open(agent_control.RemotePaths.from_conf().log_file) as f:
            self.assertIn('steps=discover,erase', f.read())

    def test_identity_prefers_serial_and_wwn(self):
        disks = inventory.from_lsblk(RAMDISK_DISKS, include_read_only=True)
        self.assertEqual({'serial': 'SER-A', 'wwn': '0x5000c500a1b2c3d4'},
                         erasure.identity(disks[0], disks, False))

    # -- the outcome --------------------------------------------------------

    def test_each_step_of_one_ramdisk_boot_runs_the_agent_again(self):
        self.scenario(status={'state': 'succeeded', 'exit_code': 0})
        node = self.cleaning_node()
        self.ramdisk_up(node)
        self.run_step(node, 'erase_devices_metadata')
        with mock.patch.object(flow.manager_utils,
                               'notify_conductor_resume_clean',
                               autospec=True):
            self.poll(node)
        self.assertNotIn(operations.STARTED_AT, node.driver_internal_info)
        with self.task(node) as task:
            task.node.provision_state = states.CLEANING
            task.node.save()
        self.run_step(node, 'erase_devices')
        self.assertEqual(2, self.agent_runs())

    def test_methods_and_keep_data_warning_go_to_the_node_history(self):
        self.scenario(status={
            'state': 'succeeded', 'exit_code': 0, 'result': {'devices': {
                'disk0': {'type': 'disk', 'path': '/dev/sda',
                          'erased_by': 'ata_secure_erase'},
                'disk3': {'type': 'disk', 'path': '/dev/vda',
                          'erased_by': 'overwrite'},
                'disk5': {'type': 'disk', 'path': '/dev/sdd',
                          'skipped': 'read-only'}}}})
        node = self.cleaning_node(driver_internal_info={
            erasure.KEEP_DATA: ['data_fs']})
        self.ramdisk_up(node)
        self.run_step(node, 'erase_devices')
        with mock.patch.object(flow.manager_utils,
                               'notify_conductor_resume_clean',
                               autospec=True) as resume:
            self.poll(node)
        resume.assert_called_once_with(mock.ANY)
        events = [h.event for h in node_history.NodeHistory.list_by_node_id(
            self.context, node.id)]
        self.assertTrue(any('keep_data objects of its last deploy (data_fs)'
                            in e and 'rebuild' in e for e in events), events)
        self.assertTrue(any(
            '/dev/sda by ata_secure_erase, /dev/vda by overwrite' in e
            and '/dev/sdd (read-only)' in e for e in events), events)
        erased = node.driver_internal_info[erasure.ERASED]
        self.assertEqual({'/dev/sda': 'ata_secure_erase',
                          '/dev/vda': 'overwrite'}, erased['erased'])
        self.assertNotIn(erasure.KEEP_DATA, node.driver_internal_info)

    def test_no_disks_anywhere_fails_the_step_clearly(self):
        self.ramdisk_lsblk({'blockdevices': []})
        node = self.cleaning_node()
        self.ramdisk_up(node)
        with self.task(node) as task:
            exc = self.assertRaises(exception.NodeCleaningFailure,
                                    task.driver.deploy.erase_devices, task)
        self.assertIn('ramdisk lists no disks', str(exc))
