"""The fuel-agent rescue interface, driven through Ironic's own state
machine, task manager and database, against a real SSH server on
loopback whose ``chpasswd`` is the real one, run with ``--root`` on a
copy of passwd/shadow (this machine's accounts are never touched).

Mocked, because there is no machine to boot: the fake boot interface's
prepare_ramdisk/prepare_instance are spies (to catch the kernel
parameters and see the instance boot again), and its missing
validate_rescue is stood in for.
"""

import os
from unittest import mock

from ironic.common import exception
from ironic.common import states
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import fake
from oslo_utils import secretutils

from ironic_fa_driver import keys
from ironic_fa_driver import operations
from ironic_fa_driver import rescue

import driver_base
import worktree_entry_points

worktree_entry_points.ensure('ironic.hardware.interfaces.rescue',
                             'fuel-agent')

PASSWORD = 'Rescue me, 1 time!'


class _Base(driver_base.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.config(enabled_rescue_interfaces=['fuel-agent', 'no-rescue',
                                               'fake'])
        self.server = self.ramdisk()
        self.server.add_rescue_account()
        # Ironic's fake boot interface has no validate_rescue (the real
        # ipxe one's is exercised in tests/functional/test_rescue.py).
        patcher = mock.patch.object(fake.FakeBoot, 'validate_rescue',
                                    create=True)
        self.addCleanup(patcher.stop)
        self.validate_rescue = patcher.start()

    def active_node(self, **kwargs):
        values = dict(provision_state=states.ACTIVE,
                      target_provision_state=states.NOSTATE,
                      power_state=states.POWER_ON,
                      rescue_interface='fuel-agent')
        values.update(kwargs)
        node = self.create_node(**values)
        info = dict(node.instance_info)
        # What the conductor's do_node_rescue stores before validating.
        info['rescue_password'] = PASSWORD
        info['hashed_rescue_password'] = manager_utils.hash_password(
            PASSWORD)
        node.instance_info = info
        node.save()
        return node

    def start_rescue(self, node):
        """What the conductor does for `baremetal node rescue`, up to the
        wait for the ramdisk; the ramdisk then installs the key."""
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                task.driver.rescue.validate(task)
                task.process_event('rescue')
                self.assertEqual(states.RESCUEWAIT,
                                 task.driver.rescue.rescue(task))
                task.process_event('wait')
        node.refresh()
        self.assertEqual(states.RESCUEWAIT, node.provision_state)
        params = prepare.call_args[0][2]
        self.server.authorize(params['fa-ssh-key'])
        return params

    def heartbeat(self, node, url=None):
        with self.task(node, shared=True) as task:
            task.driver.deploy.heartbeat(
                task, url or self.server.callback_url(), '1.0')
        node.refresh()


class RescueTestCase(_Base):

    def test_rescue_sets_the_password_and_ends_in_rescue(self):
        node = self.active_node()
        hashed = node.instance_info['hashed_rescue_password']
        logs = self.capture_logs()
        params = self.start_rescue(node)
        self.assertEqual('http://127.0.0.1:6385', params['ipa-api-url'])
        self.assertTrue(os.path.exists(keys.generated_key_path(node.uuid)))
        self.assertEqual('!', self.server.shadow_entry())
        self.heartbeat(node)
        self.assertEqual(states.RESCUE, node.provision_state, node.last_error)
        self.assertIsNone(node.last_error)
        # The real chpasswd wrote Ironic's hash; it checks the password.
        stored = self.server.shadow_entry()
        self.assertEqual(hashed, stored)
        self.assertEqual(stored, secretutils.crypt_password(PASSWORD, stored))
        self.assertEqual('*', self.server.shadow_entry('root'))
        self.assertIn('chpasswd -e', self.server.commands)
        self.assertEqual(['--no-block stop fa-heartbeat.service'],
                         self.server.systemctl_calls())
        # Nothing of the password is kept or told.
        self.assertNotIn('rescue_password', node.instance_info)
        self.assertNotIn('hashed_rescue_password', node.instance_info)
        for line in logs:
            self.assertNotIn(PASSWORD, line)
            self.assertNotIn(hashed, line)
        for command in self.server.commands:
            self.assertNotIn(hashed, command)
        # The ramdisk is the rescue user's now: no key, no pin.
        self.assertFalse(os.path.exists(keys.generated_key_path(node.uuid)))
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)

    def test_unrescue_boots_the_instance_again(self):
        node = self.active_node()
        self.start_rescue(node)
        self.heartbeat(node)
        self.assertEqual(states.RESCUE, node.provision_state)
        with mock.patch.object(fake.FakeBoot, 'prepare_instance',
                               autospec=True) as prepare_instance, \
                mock.patch.object(fake.FakeBoot, 'clean_up_ramdisk',
                                  autospec=True) as clean_up_ramdisk:
            with self.task(node) as task:
                task.process_event('unrescue')
                self.assertEqual(states.ACTIVE,
                                 task.driver.rescue.unrescue(task))
                task.process_event('done')
        node.refresh()
        self.assertEqual(states.ACTIVE, node.provision_state)
        self.assertEqual(states.POWER_ON, node.power_state)
        prepare_instance.assert_called_once_with(mock.ANY, mock.ANY)
        clean_up_ramdisk.assert_called_once_with(mock.ANY, mock.ANY)

    def test_heartbeat_in_rescuewait_in_maintenance_waits_by_default(self):
        # [conductor]allow_provisioning_in_maintenance defaults to true:
        # Ironic then takes no action on the heartbeat.
        node = self.active_node()
        self.start_rescue(node)
        node.maintenance = True
        node.save()
        self.heartbeat(node)
        self.assertEqual(states.RESCUEWAIT, node.provision_state)
        self.assertEqual('!', self.server.shadow_entry())
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)
        self.assertIn('agent_last_heartbeat', node.driver_internal_info)

    def test_heartbeat_in_rescuewait_in_maintenance_aborts_the_rescue(self):
        self.config(allow_provisioning_in_maintenance=False,
                    group='conductor')
        node = self.active_node()
        self.start_rescue(node)
        node.maintenance = True
        node.save()
        self.heartbeat(node)
        self.assertEqual(states.RESCUEFAIL, node.provision_state)
        self.assertIn('Rescue aborted as node is in maintenance mode',
                      node.last_error)
        self.assertEqual('!', self.server.shadow_entry())
        self.assertNotIn('hashed_rescue_password', node.instance_info)

    def test_unreachable_ramdisk_fails_the_rescue_naming_why(self):
        node = self.active_node()
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True):
            with self.task(node) as task:
                task.process_event('rescue')
                task.driver.rescue.rescue(task)
                task.process_event('wait')
        # The key from the command line was never installed: login fails.
        self.heartbeat(node)
        self.assertEqual(states.RESCUEFAIL, node.provision_state)
        self.assertIn('cannot set the rescue password on the ramdisk',
                      node.last_error)
        self.assertIn('SSH login to root@127.0.0.1', node.last_error)
        self.assertNotIn('hashed_rescue_password', node.instance_info)
        self.assertEqual('!', self.server.shadow_entry())

    def test_failing_chpasswd_fails_the_rescue_without_the_hash(self):
        node = self.active_node()
        hashed = node.instance_info['hashed_rescue_password']
        self.start_rescue(node)
        # No such user on this ramdisk: chpasswd fails.
        os.unlink(os.path.join(self.server.directory, 'rescue-root', 'etc',
                               'passwd'))
        self.heartbeat(node)
        self.assertEqual(states.RESCUEFAIL, node.provision_state)
        self.assertIn('chpasswd -e', node.last_error)
        self.assertNotIn(hashed, node.last_error)

    def test_rescue_timeout_cleans_up(self):
        node = self.active_node()
        self.start_rescue(node)
        with self.task(node) as task:
            manager_utils.rescuing_error_handler(task, 'timed out')
        node.refresh()
        self.assertEqual(states.RESCUEFAIL, node.provision_state)
        self.assertFalse(os.path.exists(keys.generated_key_path(node.uuid)))
        self.assertNotIn('rescue_password', node.instance_info)

    def test_rescue_with_another_deploy_interface_fails_at_the_heartbeat(
            self):
        # agent rescue with our deploy is what the fuel-* types offered
        # before: the heartbeat says what to change.
        node = self.active_node(rescue_interface='fake')
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True):
            with self.task(node) as task:
                task.process_event('rescue')
                task.process_event('wait')
        self.heartbeat(node)
        self.assertEqual(states.RESCUEFAIL, node.provision_state)
        self.assertIn('use rescue_interface fuel-agent', node.last_error)


class ValidateTestCase(_Base):

    def validate(self, node):
        with self.task(node) as task:
            task.driver.rescue.validate(task)

    def test_password_is_required(self):
        node = self.active_node()
        node.instance_info = {}
        node.save()
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.validate, node)
        self.assertIn('instance_info.rescue_password', str(exc))

    def test_password_must_not_be_blank(self):
        node = self.active_node()
        node.instance_info = dict(node.instance_info, rescue_password='  ')
        node.save()
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.validate, node)
        self.assertIn('instance_info.rescue_password', str(exc))

    def test_deploy_interface_must_be_fuel_agent(self):
        node = self.active_node(deploy_interface='fake')
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.validate, node)
        self.assertIn('needs deploy_interface fuel-agent', str(exc))

    def test_missing_rescue_ramdisk_names_the_fuel_ramdisk(self):
        node = self.active_node()
        self.validate_rescue.side_effect = exception.MissingParameterValue(
            'rescue_kernel missing')
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.validate, node)
        self.assertIn('rescue_kernel missing', str(exc))
        self.assertIn('deploy_kernel/deploy_ramdisk', str(exc))

    def test_hash_must_be_one_crypt_hash(self):
        self.assertEqual(b'rescue:$5$s$h\n', rescue.password_line('$5$s$h'))
        for bad in (None, '', 'plain', '$5$s$h\nroot:$5$x$y', '$5$a:b',
                    ' $5$s$h'):
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    rescue.password_line, bad)
            self.assertIn('instance_info.hashed_rescue_password', str(exc))
