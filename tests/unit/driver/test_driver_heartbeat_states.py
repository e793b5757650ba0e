"""Heartbeats in every state, as Ironic's HeartbeatMixin treats them
(ironic_fa_driver/heartbeat.py), through Ironic's own task manager and
database with a real SSH server on loopback as the ramdisk.

Mocked: the fake boot interface's prepare_ramdisk (a spy catching the
kernel parameters; there is no machine to boot).
"""

from unittest import mock

from ironic.common import states
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import agent_base
from ironic.drivers.modules import fake
from ironic import objects

from ironic_fa_driver import heartbeat
from ironic_fa_driver import operations

import test_driver_deploy_flow as flow


class HeartbeatStatesTestCase(flow.FlowTestCase):

    def test_record_only_states_match_ironics(self):
        self.assertEqual(agent_base._HEARTBEAT_RECORD_ONLY,
                         heartbeat.RECORD_ONLY)

    def test_first_heartbeat_records_what_fast_track_needs(self):
        node = self.deploy_to_agent(sleep=30)
        info = node.driver_internal_info
        self.assertEqual(self.server.callback_url(), info['agent_url'])
        self.assertEqual('1.0', info['agent_version'])
        self.assertTrue(manager_utils.value_within_timeout(
            info['agent_last_heartbeat'], 60))

    def test_fast_track_sees_the_live_ramdisk(self):
        self.config(fast_track=True, group='deploy')
        node = self.create_node(provision_state=states.MANAGEABLE,
                                power_state=states.POWER_ON)
        self.heartbeat(node)
        self.assertIn('agent_last_heartbeat', node.driver_internal_info)
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)
        with self.task(node) as task:
            self.assertTrue(manager_utils.is_fast_track(task))

    def test_record_only_state_takes_no_action(self):
        node = self.create_node(provision_state=states.DEPLOYING,
                                target_provision_state=states.ACTIVE)
        self.heartbeat(node)
        self.assertEqual(states.DEPLOYING, node.provision_state)
        self.assertIn('agent_last_heartbeat', node.driver_internal_info)
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)

    def test_state_ironic_ignores_is_not_even_recorded(self):
        node = self.create_node(provision_state=states.ACTIVE)
        logs = self.capture_logs()
        self.heartbeat(node)
        self.assertNotIn('agent_last_heartbeat', node.driver_internal_info)
        self.assertTrue(any('not waiting for a ramdisk' in line
                            for line in logs if line.startswith('ERROR')))

    def test_refused_heartbeat_does_not_move_agent_url(self):
        node = self.deploy_to_agent(sleep=30)
        before = node.driver_internal_info['agent_last_heartbeat']
        self.heartbeat(node, self.server.callback_url('SHA256:' + 'B' * 43))
        self.assertEqual(self.server.callback_url(),
                         node.driver_internal_info['agent_url'])
        self.assertEqual(before,
                         node.driver_internal_info['agent_last_heartbeat'])

    def test_locked_node_waits_for_the_next_heartbeat(self):
        node = self.deploying_node()
        self.start_deploy(node)
        with self.task(node):  # another holder of the lock
            self.heartbeat(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertNotIn('agent_last_heartbeat', node.driver_internal_info)

    def test_deploy_wait_in_maintenance_waits_by_default(self):
        # [conductor]allow_provisioning_in_maintenance defaults to true.
        node = self.deploying_node()
        self.start_deploy(node)
        node.maintenance = True
        node.save()
        self.heartbeat(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertIsNone(node.last_error)
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)

    def test_deploy_wait_in_maintenance_aborts_when_configured(self):
        self.config(allow_provisioning_in_maintenance=False,
                    group='conductor')
        node = self.deploying_node()
        self.start_deploy(node)
        node.maintenance = True
        node.save()
        self.heartbeat(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('Deploy aborted as node is in maintenance mode',
                      node.last_error)
        events = [h.event for h in objects.NodeHistory.list_by_node_id(
            self.context, node.id)]
        self.assertTrue(any('maintenance' in e for e in events), events)

    def cleaning_wait_node(self):
        node = self.create_node(provision_state=states.CLEANING,
                                target_provision_state=states.AVAILABLE,
                                power_state=states.POWER_OFF)
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                task.process_event('wait')
                task.driver.deploy.prepare_cleaning(task)
        self.server.authorize(prepare.call_args[0][2]['fa-ssh-key'])
        node.refresh()
        return node

    def test_clean_wait_in_maintenance_aborts_when_configured(self):
        self.config(allow_provisioning_in_maintenance=False,
                    group='conductor')
        node = self.cleaning_wait_node()
        node.maintenance = True
        node.save()
        self.heartbeat(node)
        self.assertEqual(states.CLEANFAIL, node.provision_state)
        self.assertIn('Cleaning aborted as node is in maintenance mode',
                      node.last_error)

    def test_service_wait_is_kept_alive(self):
        node = self.create_node(provision_state=states.SERVICEWAIT,
                                target_provision_state=states.ACTIVE)
        before = node.provision_updated_at
        self.heartbeat(node)
        self.assertEqual(states.SERVICEWAIT, node.provision_state)
        self.assertIsNotNone(node.provision_updated_at)
        self.assertNotEqual(before, node.provision_updated_at)
        self.assertIn(operations.CALLBACK, node.driver_internal_info)

    def test_service_wait_in_maintenance_aborts_when_configured(self):
        self.config(allow_provisioning_in_maintenance=False,
                    group='conductor')
        node = self.create_node(provision_state=states.SERVICEWAIT,
                                target_provision_state=states.ACTIVE,
                                maintenance=True)
        self.heartbeat(node)
        self.assertEqual(states.SERVICEFAIL, node.provision_state)

    def test_bad_url_in_rescue_wait_fails_the_rescue(self):
        node = self.create_node(provision_state=states.RESCUEWAIT,
                                target_provision_state=states.RESCUE)
        self.heartbeat(node, 'http://127.0.0.1:9999')
        self.assertEqual(states.RESCUEFAIL, node.provision_state)
        self.assertIn('no SSH host key fingerprint', node.last_error)
