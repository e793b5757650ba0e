"""Item 7 (the heartbeat cannot redirect a deploy): the first heartbeat of
an operation pins the ramdisk's address, port and SSH host key; a later
heartbeat (anyone holding the node's agent token can send one) that
names another one is refused, logged, not stored, and the conductor goes
on talking to the ramdisk it pinned.

Real parts: Ironic's conductor code and database, the real SSH client,
and two real SSH servers on loopback: the node's ramdisk and an
"attacker" one the forged heartbeats point to.
"""

import os
import sys
from unittest import mock

from fa_agent import heartbeat
from ironic.common import states
from ironic import objects

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'unit',
                                'driver'))

import fake_ramdisk  # noqa: E402
from ironic_fa_driver import operations  # noqa: E402
import test_driver_deploy_flow as flow  # noqa: E402


class HeartbeatPinTestCase(flow.FlowTestCase):

    def setUp(self):
        super().setUp()
        directory = os.path.join(self.tmp, 'attacker')
        os.makedirs(directory)
        self.attacker = fake_ramdisk.FakeRamdisk(directory).start()
        self.addCleanup(self.attacker.stop)

    def pinned_deploy(self):
        # The agent runs a few seconds, then succeeds: the poll after the
        # forged heartbeats shows whom the conductor talked to.
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0}, sleep=2)
        self.pinned = dict(node.driver_internal_info[operations.CALLBACK])
        return node

    def forged(self, node, url, expect):
        logs = self.capture_logs()
        self.heartbeat(node, url)
        warning, = [line for line in logs if 'refused' in line]
        self.assertTrue(warning.startswith(
            'WARNING ironic_fa_driver.heartbeat Heartbeat of node'), warning)
        self.assertIn(node.uuid, warning)
        for text in expect:
            self.assertIn(text, warning)
        # Not acted on, not stored.
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertIsNone(node.last_error)
        self.assertEqual(self.pinned,
                         node.driver_internal_info[operations.CALLBACK])
        return warning.split(' ', 2)[2]

    def assert_original_ramdisk_is_used(self, node):
        self.wait_for_agent()
        self.poll(node)
        self.resume.assert_called_once_with(mock.ANY)
        self.assertEqual([], self.attacker.commands)

    def test_first_heartbeat_pins_the_callback(self):
        self.pinned_deploy()
        self.assertEqual({'address': '127.0.0.1', 'port': self.server.port,
                          'host_key_type': 'ssh-ed25519',
                          'host_key': self.server.fingerprint}, self.pinned)

    def test_other_ssh_server_is_refused(self):
        node = self.pinned_deploy()
        self.forged(node, self.attacker.callback_url(), [
            'port %d -> %d' % (self.server.port, self.attacker.port),
            'host key %s -> %s' % (self.server.fingerprint,
                                   self.attacker.fingerprint)])
        self.assert_original_ramdisk_is_used(node)

    def test_other_address_is_refused(self):
        node = self.pinned_deploy()
        url = heartbeat.build_callback_url(
            '127.0.0.2', self.server.port, 'ssh-ed25519',
            self.server.fingerprint)
        self.forged(node, url, ['address 127.0.0.1 -> 127.0.0.2'])
        self.assert_original_ramdisk_is_used(node)

    def test_other_port_alone_is_refused(self):
        node = self.pinned_deploy()
        url = heartbeat.build_callback_url(
            '127.0.0.1', self.attacker.port, 'ssh-ed25519',
            self.server.fingerprint)
        self.forged(node, url, ['port %d -> %d' % (self.server.port,
                                                   self.attacker.port)])
        self.assert_original_ramdisk_is_used(node)

    def test_other_host_key_alone_is_refused(self):
        node = self.pinned_deploy()
        url = self.server.callback_url('SHA256:' + 'B' * 43)
        self.forged(node, url, ['host key %s -> SHA256:%s' % (
            self.server.fingerprint, 'B' * 43)])
        self.assert_original_ramdisk_is_used(node)

    def test_garbage_heartbeat_cannot_fail_a_pinned_deploy(self):
        node = self.pinned_deploy()
        self.forged(node, 'http://127.0.0.1:9999', ['bad callback URL'])
        self.assert_original_ramdisk_is_used(node)

    def test_refusal_is_in_the_node_history(self):
        node = self.pinned_deploy()
        warning = self.forged(node, self.attacker.callback_url(), [])
        events = [h.event for h in objects.NodeHistory.list_by_node_id(
            self.context, node.id)]
        self.assertIn(warning, events)

    def test_same_callback_again_is_silent(self):
        node = self.pinned_deploy()
        self.heartbeat(node)
        self.assertEqual(self.pinned,
                         node.driver_internal_info[operations.CALLBACK])
        self.assert_original_ramdisk_is_used(node)

