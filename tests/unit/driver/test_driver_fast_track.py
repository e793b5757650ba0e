"""Fast track through Ironic's own conductor code against a real SSH
server on loopback: a ramdisk that is up takes the deploy (or cleaning)
without a power action, after taking the operation's key from lookup the
way fa-heartbeat does (fa_agent.ramdisk_keys on the lookup answer Ironic
would give); a stale one is rebooted as usual.

Mocked: spies on Ironic's power action and fake boot interface (there is
no BMC here; the spies record and pass through).
"""

import base64
import datetime
from unittest import mock

from fa_agent import heartbeat
from fa_agent import ramdisk_keys
from ironic.common import states
from ironic.conductor import deployments
from ironic.conductor import steps as conductor_steps
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import fake
from oslo_utils import timeutils

from ironic_fa_driver import fast_track
from ironic_fa_driver import keys
from ironic_fa_driver import operations
from ironic_fa_driver import ssh

import driver_base


def _ago(seconds):
    return (timeutils.utcnow() - datetime.timedelta(
        seconds=seconds)).isoformat()


class FastTrackTestCase(driver_base.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.config(fast_track=True, fast_track_timeout=300, group='deploy')
        self.server = self.ramdisk()
        # The key of the previous operation (cleaning), installed when the
        # ramdisk booted with it on its command line.
        self.old_key = keys.create_deploy_key('previous-operation')
        self.server.authorize(keys.kernel_param_value(self.old_key))
        self.power = self.spy(manager_utils, 'node_power_action')
        self.boot = self.spy(fake.FakeBoot, 'prepare_ramdisk')
        self.resume = mock.patch.object(
            manager_utils, 'notify_conductor_resume_deploy',
            autospec=True).start()
        self.addCleanup(mock.patch.stopall)

    def spy(self, owner, name):
        patcher = mock.patch.object(owner, name, autospec=True,
                                    side_effect=getattr(owner, name))
        self.addCleanup(patcher.stop)
        return patcher.start()

    def old_url(self):
        """The callback URL the ramdisk announced for the last operation."""
        blob = self.server.authorized_blobs().pop()
        return heartbeat.build_callback_url(
            '127.0.0.1', self.server.port, 'ssh-ed25519',
            self.server.fingerprint,
            heartbeat.fingerprint_of_blob(base64.b64decode(blob)))

    def node_after_cleaning(self, last_heartbeat=10):
        """A node cleaning left with its ramdisk up, in DEPLOYING."""
        node = self.create_node(
            provision_state=states.DEPLOYING,
            target_provision_state=states.ACTIVE,
            power_state=states.POWER_ON,
            driver_internal_info={
                'agent_secret_token': 'cleaning-token',
                'agent_url': self.old_url(),
                'agent_last_heartbeat': _ago(last_heartbeat)})
        with self.task(node) as task:
            conductor_steps.set_node_deployment_steps(task)
            task.node.save()
        return node

    def start_deploy(self, node):
        with self.task(node) as task:
            deployments.do_next_deploy_step(task, 0)
        node.refresh()

    def lookup_and_take_key(self, node):
        """fa-heartbeat: look up (what Ironic answers) and install."""
        body = {'node': {'uuid': node.uuid, 'driver_internal_info':
                         node.driver_internal_info},
                'config': {'agent_token': '******'}}
        changed, fingerprint = ramdisk_keys.refresh(
            body, self.server.authorized_keys)
        self.assertTrue(changed)
        return fingerprint

    def heartbeat(self, node, url):
        with self.task(node, shared=True) as task:
            task.driver.deploy.heartbeat(task, url, '1.0')
        node.refresh()

    # -- deploy after cleaning ------------------------------------------------

    def test_deploy_takes_the_running_ramdisk_without_a_power_action(self):
        self.scenario(status={'state': 'running'}, sleep=30)
        node = self.node_after_cleaning()
        self.start_deploy(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertEqual('deploy', node.deploy_step['step'])
        self.power.assert_not_called()
        self.boot.assert_not_called()
        info = node.driver_internal_info
        self.assertNotIn('agent_url', info)
        self.assertEqual('cleaning-token', info['agent_secret_token'])
        line, fingerprint = keys.public_key(
            keys.generated_key_path(node.uuid))
        self.assertEqual(line, info[ramdisk_keys.KEY_FIELD])
        self.assertEqual(fingerprint, info[fast_track.AWAITING])

        # A heartbeat that still announces the old key does not pin the
        # deploy (the ramdisk has not taken the new key yet).
        self.heartbeat(node, self.old_url())
        self.assertEqual('deploy', node.deploy_step['step'])
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)
        self.assertNotIn('agent_url', node.driver_internal_info)

        taken = self.lookup_and_take_key(node)
        self.assertEqual(fingerprint, taken)
        url = heartbeat.build_callback_url(
            '127.0.0.1', self.server.port, 'ssh-ed25519',
            self.server.fingerprint, taken)
        self.heartbeat(node, url)
        # Pinned, and the agent started over SSH with the new key.
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertEqual('write_image', node.deploy_step['step'])
        self.assertIn(operations.STARTED_AT, node.driver_internal_info)
        self.assertEqual(url, node.driver_internal_info['agent_url'])
        self.assertNotIn(fast_track.AWAITING, node.driver_internal_info)
        self.power.assert_not_called()
        self.boot.assert_not_called()

    def test_key_rotation_locks_the_previous_operation_out(self):
        node = self.node_after_cleaning()
        self.start_deploy(node)
        self.lookup_and_take_key(node)
        new_line = node.driver_internal_info[ramdisk_keys.KEY_FIELD]
        self.assertEqual({new_line.split()[1]},
                         self.server.authorized_blobs())
        connect = dict(address='127.0.0.1', port=self.server.port,
                       user='root', host_key_type='ssh-ed25519',
                       fingerprint=self.server.fingerprint,
                       connect_timeout=5, command_timeout=5)
        with self.assertRaises(ssh.AuthFailed):
            with ssh.connect(key_file=self.old_key, **connect):
                pass
        with ssh.connect(key_file=keys.generated_key_path(node.uuid),
                         **connect) as session:
            self.assertEqual(0, session.run('true')[0])

    def test_stale_heartbeat_reboots_as_usual(self):
        node = self.node_after_cleaning(last_heartbeat=301)
        self.start_deploy(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertIn(states.REBOOT,
                      [c.args[1] for c in self.power.call_args_list])
        params = self.boot.call_args.args[2]
        path = keys.generated_key_path(node.uuid)
        self.assertEqual(keys.kernel_param_value(path),
                         params['fa-ssh-key'])
        # The booting ramdisk finds the same key by lookup: nothing to
        # replace, and no acknowledgement is waited for.
        self.assertEqual(keys.public_key(path)[0],
                         node.driver_internal_info[ramdisk_keys.KEY_FIELD])
        self.assertNotIn(fast_track.AWAITING, node.driver_internal_info)

    def test_fast_track_disabled_reboots(self):
        self.config(fast_track=False, group='deploy')
        node = self.node_after_cleaning()
        self.start_deploy(node)
        self.assertTrue(self.power.called)
        self.assertTrue(self.boot.called)

    def test_powered_off_node_reboots(self):
        node = self.node_after_cleaning()
        node.power_state = states.POWER_OFF
        node.save()
        self.start_deploy(node)
        self.assertTrue(self.boot.called)

    # -- cleaning ---------------------------------------------------------

    def cleaning_node(self):
        return self.create_node(
            provision_state=states.CLEANING,
            target_provision_state=states.AVAILABLE,
            power_state=states.POWER_ON,
            driver_internal_info={
                'agent_secret_token': 'inspection-token',
                'agent_url': self.old_url(),
                'agent_last_heartbeat': _ago(5)})

    def test_cleaning_takes_the_running_ramdisk(self):
        node = self.cleaning_node()
        with self.task(node) as task:
            self.assertEqual(states.CLEANWAIT,
                             task.driver.deploy.prepare_cleaning(task))
        node.refresh()
        self.power.assert_not_called()
        self.boot.assert_not_called()
        self.assertIn(fast_track.AWAITING, node.driver_internal_info)

    def test_tear_down_cleaning_leaves_the_ramdisk_up(self):
        node = self.cleaning_node()
        with self.task(node) as task:
            task.driver.deploy.tear_down_cleaning(task)
        node.refresh()
        self.power.assert_not_called()
        info = node.driver_internal_info
        self.assertEqual('inspection-token', info['agent_secret_token'])
        self.assertIn('agent_url', info)
        self.assertIn('agent_last_heartbeat', info)

    def test_heartbeat_between_operations_keeps_the_ramdisk_alive(self):
        node = self.create_node(
            provision_state=states.AVAILABLE, power_state=states.POWER_ON,
            driver_internal_info={'agent_last_heartbeat': _ago(250)})
        self.heartbeat(node, self.old_url())
        seen = timeutils.parse_isotime(
            node.driver_internal_info['agent_last_heartbeat'])
        self.assertLess(timeutils.delta_seconds(
            seen.replace(tzinfo=None), timeutils.utcnow()), 30)
        self.assertEqual(self.old_url(),
                         node.driver_internal_info['agent_url'])

    def test_tear_down_agent_forgets_the_ramdisk(self):
        node = self.create_node(
            provision_state=states.DEPLOYING, power_state=states.POWER_ON,
            driver_internal_info={'agent_url': 'https://x',
                                  'agent_last_heartbeat': _ago(1),
                                  ramdisk_keys.KEY_FIELD: 'ssh-ed25519 A'})
        with self.task(node) as task:
            task.driver.deploy.tear_down_agent(task)
        node.refresh()
        for key in ('agent_url', 'agent_last_heartbeat',
                    ramdisk_keys.KEY_FIELD):
            self.assertNotIn(key, node.driver_internal_info)
