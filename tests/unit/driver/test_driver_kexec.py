"""kexec at the end of a deploy (issue 11 item 3): the whole deploy
through Ironic's conductor code against a real SSH server on loopback.

Mocked, because it cannot exist here: ``systemctl`` on the fake ramdisk
is a script that records its arguments (this machine's own systemctl
would try to kexec the machine running the tests), and the conductor
RPC that resumes the deploy (as in test_driver_deploy_flow.py).
"""

import os
from unittest import mock

from fa_agent.scheme import validator
from ironic.common import exception
from ironic.common import states
from ironic.conductor import utils as manager_utils
from ironic import objects

from ironic_fa_driver import agent_input
from ironic_fa_driver import kexec
from ironic_fa_driver import operations
from ironic_fa_driver import ssh
from ironic_fa_driver import validation

import test_driver_deploy_flow as flow

LOADED = {'devices': {}, 'kexec': {'loaded': True, 'kernel':
                                   '/boot/vmlinuz-6.1.0-27-amd64',
                                   'cmdline': 'root=UUID=x ro'}}
NOT_LOADED = {'devices': {}, 'kexec': {'loaded': False,
                                       'reason': 'no grub.cfg'}}


class KexecTestCase(flow.FlowTestCase):

    def setUp(self):
        super().setUp()
        self.config(kexec=True, group='fuel_agent')
        bin_dir = os.path.join(self.tmp, 'bin')
        os.makedirs(bin_dir)
        self.calls = os.path.join(self.tmp, 'systemctl-calls')
        self.systemctl = os.path.join(bin_dir, 'systemctl')
        self.fake_systemctl(0)
        self.server.env['PATH'] = bin_dir + ':' + os.environ['PATH']

    def fake_systemctl(self, code):
        with open(self.systemctl, 'w') as f:
            f.write('#!/bin/sh\necho "$@" >> %s\nexit %d\n'
                    % (self.calls, code))
        os.chmod(self.systemctl, 0o755)

    def systemctl_calls(self):
        try:
            with open(self.calls) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def deploy_to_the_end(self, result):
        node = self.deploy_to_agent(status={
            'state': 'succeeded', 'exit_code': 0, 'result': result})
        self.wait_for_agent()
        self.poll(node)
        real = manager_utils.node_power_action
        with mock.patch.object(manager_utils, 'node_power_action',
                               side_effect=real) as action:
            self.continue_as_rpc(node)
        self.assertEqual(states.ACTIVE, node.provision_state)
        return node, [c.args[1] for c in action.call_args_list]

    def history(self, node):
        return [h.event for h in objects.NodeHistory.list_by_node_id(
            self.context, node.id)]

    def test_loaded_kernel_is_started_instead_of_a_power_cycle(self):
        node, actions = self.deploy_to_the_end(LOADED)
        self.assertEqual(['--no-block kexec'], self.systemctl_calls())
        # boot_instance's power on finds the node on: nothing else.
        self.assertNotIn(states.POWER_OFF, actions)
        self.assertNotIn(states.SOFT_POWER_OFF, actions)
        self.assertNotIn(states.REBOOT, actions)
        self.assertEqual(states.POWER_ON, node.power_state)
        self.assertTrue(any('kexec into the installed system' in e
                            for e in self.history(node)))
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)

    def test_not_loaded_falls_back_to_a_power_cycle_and_says_why(self):
        node, actions = self.deploy_to_the_end(NOT_LOADED)
        self.assertEqual([], self.systemctl_calls())
        self.assertIn(states.SOFT_POWER_OFF, actions)
        self.assertEqual(states.POWER_ON, actions[-1])
        self.assertTrue(any('no grub.cfg' in e and 'power cycling' in e
                            for e in self.history(node)))

    def test_failing_kexec_command_falls_back_to_a_power_cycle(self):
        self.fake_systemctl(1)
        node, actions = self.deploy_to_the_end(LOADED)
        self.assertEqual(['--no-block kexec'], self.systemctl_calls())
        self.assertIn(states.SOFT_POWER_OFF, actions)
        self.assertTrue(any('systemctl kexec failed' in e
                            for e in self.history(node)))

    def test_a_connection_that_failed_once_is_tried_again(self):
        real_connect, real_loaded = operations.connect, kexec.loaded
        failed = []

        def loaded(node):  # jump asks this right before it connects
            failed.append('armed')
            return real_loaded(node)

        def flaky(node, *args, **kwargs):
            if failed == ['armed']:
                failed.append('failed')
                raise ssh.ConnectFailed(reason='No existing session')
            return real_connect(node, *args, **kwargs)

        with mock.patch.object(kexec, 'loaded', side_effect=loaded), \
                mock.patch.object(operations, 'connect', side_effect=flaky):
            node, actions = self.deploy_to_the_end(LOADED)
        self.assertEqual(['armed', 'failed'], failed)
        self.assertEqual(['--no-block kexec'], self.systemctl_calls())
        self.assertNotIn(states.SOFT_POWER_OFF, actions)
        self.assertNotIn(states.POWER_OFF, actions)

    def test_off_by_default_and_per_node(self):
        self.config(kexec=False, group='fuel_agent')
        node, actions = self.deploy_to_the_end(LOADED)
        self.assertEqual([], self.systemctl_calls())
        self.assertIn(states.SOFT_POWER_OFF, actions)
        node = self.create_node(uuid='1be26c0b-03f2-4d2e-ae87-c02d7f33c782',
                                name='other',
                                driver_info={'fa_kexec': 'true'})
        self.assertTrue(kexec.wanted(node))


class KexecInputTestCase(flow.FlowTestCase):

    def test_agent_input_asks_for_kexec_when_wanted(self):
        node = self.create_node(driver_info={'fa_kexec': 'yes'})
        with self.task(node) as task:
            scheme = validator.load(SCHEME)
            self.assertIs(True, agent_input.build(task, scheme)['kexec'])
            task.node.driver_info = {'fa_kexec': 'no'}
            self.assertNotIn('kexec', agent_input.build(task, scheme))

    def test_bad_fa_kexec_fails_validation(self):
        node = self.create_node(driver_info={'fa_kexec': 'maybe'})
        with self.task(node) as task:
            with mock.patch.object(task.driver.boot, 'validate'), \
                    mock.patch.object(task.driver.power, 'validate'):
                error = self.assertRaises(exception.InvalidParameterValue,
                                          validation.validate, task)
        self.assertIn('fa_kexec must be true or false', str(error))


SCHEME = {'storage': [
    {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
    {'type': 'partition', 'id': 'root', 'device': 'd0', 'size': '4 GiB'},
    {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
     'fstype': 'ext4', 'mount_point': '/'}]}
