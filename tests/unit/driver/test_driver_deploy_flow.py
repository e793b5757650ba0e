"""Deploy steps, heartbeat, polling, failures, take over and cleaning,
driven through Ironic's own conductor code (steps, state machine, task
manager) against a real SSH server on loopback.

Mocked, because they cannot exist in a unit test: the conductor RPC that
resumes a deploy after a poll (the test resumes it the way the RPC
handler does), and recording spies on Ironic's fake boot interface.
"""

import glob
import json
import os
import stat
import tarfile
import time
from unittest import mock

from fa_agent import heartbeat
from ironic.common import exception
from ironic.common import states
from ironic.conductor import deployments
from ironic.conductor import steps as conductor_steps
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import fake

from ironic_fa_driver import agent_control
from ironic_fa_driver import keys
from ironic_fa_driver import operations

import driver_base
import fake_ramdisk


class FlowTestCase(driver_base.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.server = self.ramdisk()
        self.resume = self.patch_resume()

    def patch_resume(self):
        patcher = mock.patch.object(manager_utils,
                                    'notify_conductor_resume_deploy',
                                    autospec=True)
        self.addCleanup(patcher.stop)
        return patcher.start()

    def deploying_node(self, **kwargs):
        node = self.create_node(provision_state=states.DEPLOYING,
                                target_provision_state=states.ACTIVE,
                                power_state=states.POWER_OFF, **kwargs)
        with self.task(node) as task:
            conductor_steps.set_node_deployment_steps(task)
            task.node.save()
        return node

    def start_deploy(self, node):
        """Run the deploy steps until the first wait (the ramdisk boot),
        as the conductor does, catching the ramdisk parameters."""
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                deployments.do_next_deploy_step(task, 0)
        node.refresh()
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertEqual('deploy', node.deploy_step['step'])
        params = prepare.call_args[0][2]
        # The ramdisk boots and installs the key from its command line.
        self.server.authorize(params['fa-ssh-key'])
        return params

    def heartbeat(self, node, url=None):
        with self.task(node, shared=True) as task:
            task.driver.deploy.heartbeat(
                task, url or self.server.callback_url(), '1.0')
        node.refresh()

    def wait_for_agent(self):
        path = agent_control.RemotePaths.from_conf().exit_code_file
        deadline = time.monotonic() + 20
        while not os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, 'agent never ended')
            time.sleep(0.05)

    def poll(self, node):
        """One run of the real periodic task, as the conductor starts it."""
        with self.task(node, shared=True) as task:
            interface = task.driver.deploy
        nodes = driver_base.NodesOfThisConductor(self.dbapi)
        interface._poll_agents(nodes, self.context)
        node.refresh()

    def deploy_to_agent(self, node=None, **scenario):
        self.scenario(**scenario)
        node = node or self.deploying_node()
        self.start_deploy(node)
        self.heartbeat(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertEqual('write_image', node.deploy_step['step'])
        self.assertIn(operations.STARTED_AT, node.driver_internal_info)
        return node

    def age_the_agent_start(self, node):
        """Record the agent's start long ago, past every timeout."""
        node.set_driver_internal_info(operations.STARTED_AT,
                                      '2000-01-01T00:00:00')
        node.save()

    def agent_runs(self):
        with open(agent_control.RemotePaths.from_conf().log_file) as f:
            return len(f.readlines())

    def continue_as_rpc(self, node):
        """What the continue_node_deploy RPC handler does."""
        with self.task(node) as task:
            task.process_event('resume')
            deployments.continue_node_deploy(task)
        node.refresh()


class DeployStepTestCase(FlowTestCase):

    def test_deploy_step_boots_ramdisk_with_a_fresh_key(self):
        self.config(extra_kernel_params='console=ttyS0 nofb',
                    group='fuel_agent')
        node = self.deploying_node(driver_internal_info={
            operations.CALLBACK: {'address': 'stale'}})
        params = self.start_deploy(node)
        self.assertEqual('http://127.0.0.1:6385', params['ipa-api-url'])
        self.assertNotIn(' ', params['fa-ssh-key'])
        self.assertEqual('ttyS0', params['console'])
        self.assertIsNone(params['nofb'])
        key = keys.generated_key_path(node.uuid)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(key).st_mode))
        self.assertEqual(params['fa-ssh-key'], keys.kernel_param_value(key))
        self.assertEqual(states.POWER_ON, node.power_state)
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)

    def test_configured_key_is_used_instead(self):
        path = keys.create_deploy_key('operator')
        self.config(ssh_key_file=path, group='fuel_agent')
        node = self.deploying_node()
        params = self.start_deploy(node)
        self.assertEqual(keys.kernel_param_value(path), params['fa-ssh-key'])
        self.assertFalse(os.path.exists(keys.generated_key_path(node.uuid)))


class HeartbeatTestCase(FlowTestCase):

    def test_first_heartbeat_records_and_starts_the_agent(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        callback = node.driver_internal_info[operations.CALLBACK]
        self.assertEqual(('127.0.0.1', self.server.port,
                          self.server.fingerprint, 'ssh-ed25519'),
                         (callback['address'], callback['port'],
                          callback['host_key'], callback['host_key_type']))
        # The input went over SFTP, private to root.
        paths = agent_control.RemotePaths.from_conf()
        self.assertEqual(0o600,
                         stat.S_IMODE(os.stat(paths.input_file).st_mode))

    def test_a_ramdisk_on_ipv6_is_reached_there(self):
        # An IPv6-only ramdisk (the lab's uefi-virtual-media scenario):
        # its callback URL names [::1], where alone its SSH server listens.
        self.server.stop()
        self.server = fake_ramdisk.FakeRamdisk(self.tmp, address='::1')
        self.server.start()
        self.addCleanup(self.server.stop)
        self.assertIn('https://[::1]:', self.server.callback_url())
        node = self.deploy_to_agent(status={
            'state': 'succeeded', 'exit_code': 0, 'result': {}})
        self.assertEqual(
            '::1', node.driver_internal_info[operations.CALLBACK]['address'])
        self.wait_for_agent()
        self.poll(node)
        self.resume.assert_called_once_with(mock.ANY)
        self.assertIsNone(node.last_error)

    def test_second_heartbeat_changes_nothing(self):
        node = self.deploy_to_agent(exit=0, status={'state': 'succeeded'})
        started = node.driver_internal_info[operations.STARTED_AT]
        self.heartbeat(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertEqual(started,
                         node.driver_internal_info[operations.STARTED_AT])
        self.wait_for_agent()
        self.assertEqual(1, self.agent_runs())

    def test_heartbeat_with_another_fingerprint_is_refused(self):
        # tests/security/test_security_heartbeat.py covers every field.
        node = self.deploy_to_agent(sleep=30)
        pinned = node.driver_internal_info[operations.CALLBACK]
        self.heartbeat(node, self.server.callback_url('SHA256:' + 'B' * 43))
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertIsNone(node.last_error)
        self.assertEqual(pinned,
                         node.driver_internal_info[operations.CALLBACK])

    def test_heartbeat_without_fingerprint_fails_the_deploy(self):
        node = self.deploying_node()
        self.start_deploy(node)
        self.heartbeat(node, 'http://127.0.0.1:9999')
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('no SSH host key fingerprint', node.last_error)

    def test_heartbeat_in_wrong_state_is_ignored(self):
        node = self.create_node(provision_state=states.ACTIVE)
        self.heartbeat(node)
        self.assertEqual(states.ACTIVE, node.provision_state)
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)

    def test_heartbeat_in_maintenance_is_ignored(self):
        node = self.deploying_node()
        self.start_deploy(node)
        node.maintenance = True
        node.save()
        self.heartbeat(node)
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)


class PollTestCase(FlowTestCase):

    def test_success_runs_the_remaining_steps_to_active(self):
        node = self.deploy_to_agent(status={
            'state': 'succeeded', 'exit_code': 0,
            'result': {'devices': {'sda': {'path': '/dev/sda'}}}})
        node.set_driver_internal_info(operations.PROGRESS, 'cleanup: x')
        node.save()
        self.wait_for_agent()
        self.poll(node)
        self.resume.assert_called_once_with(mock.ANY)
        self.assertNotIn(operations.STARTED_AT, node.driver_internal_info)
        # A finished agent's last progress line would only mislead.
        self.assertNotIn(operations.PROGRESS, node.driver_internal_info)
        self.assertEqual({'devices': {'sda': {'path': '/dev/sda'}}},
                         node.driver_internal_info[operations.RESULT])
        with mock.patch.object(fake.FakeBoot, 'prepare_instance',
                               autospec=True) as prepare_instance:
            self.continue_as_rpc(node)
        prepare_instance.assert_called_once_with(mock.ANY, mock.ANY)
        self.assertEqual(states.ACTIVE, node.provision_state)
        self.assertEqual(states.POWER_ON, node.power_state)
        self.assertIsNone(node.last_error)
        # The ramdisk is gone, and so is its key; the result stays.
        self.assertNotIn(operations.CALLBACK, node.driver_internal_info)
        self.assertIn(operations.RESULT, node.driver_internal_info)
        self.assertFalse(os.path.exists(keys.generated_key_path(node.uuid)))
        # on_failure (the default): nothing stored after a success.
        self.assertEqual([], glob.glob(os.path.join(self.logs, '*')))

    def test_agent_failure_fails_with_its_class_and_message(self):
        node = self.deploy_to_agent(exit=12, status={
            'state': 'failed', 'exit_code': 12,
            'error': {'class': 'does_not_fit',
                      'message': 'partition root needs 10 GiB'}})
        self.wait_for_agent()
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('does_not_fit', node.last_error)
        self.assertIn('partition root needs 10 GiB', node.last_error)
        self.assertIn('exit code 12', node.last_error)
        self.assertEqual(states.POWER_OFF, node.power_state)
        self.resume.assert_not_called()
        stored, = glob.glob(os.path.join(self.logs, node.uuid + '*.tar.gz'))
        self.assertIn('fuel-agent-deploy', stored)
        with tarfile.open(stored) as archive:
            log = archive.extractfile('provision.log').read()
        self.assertIn(b'agent log line', log)

    def test_agent_exits_non_zero_without_status(self):
        node = self.deploy_to_agent(no_status=True, exit=1)
        self.wait_for_agent()
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('exited with code 1 without writing its status file',
                      node.last_error)

    def test_garbled_status_file(self):
        node = self.deploy_to_agent(raw_status='{"state": ', exit=0)
        self.wait_for_agent()
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('garbled', node.last_error)

    def test_running_agent_keeps_the_node_waiting(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        before = node.provision_updated_at
        time.sleep(1)
        self.poll(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertGreater(node.provision_updated_at, before)

    def test_running_agent_progress_is_shown_on_the_node(self):
        node = self.deploy_to_agent(status={
            'state': 'running', 'progress': {
                'step': 'images', 'message': 'image os: 40% (4 of 10 MiB)'}},
            sleep=30)
        # The agent starts detached: its status file may come a bit later.
        for _ in range(20):
            self.poll(node)
            if operations.PROGRESS in node.driver_internal_info:
                break
            time.sleep(0.5)
        self.assertEqual('images: image os: 40% (4 of 10 MiB)',
                         node.driver_internal_info[operations.PROGRESS])

    def test_deploy_timeout(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        self.age_the_agent_start(node)
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('did not finish within 7200 s', node.last_error)

    def test_unreachable_ramdisk_is_retried_until_the_timeout(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        self.server.stop()
        self.poll(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.age_the_agent_start(node)
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('lost the ramdisk', node.last_error)

    def test_host_key_mismatch_during_poll_fails_at_once(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        callback = dict(node.driver_internal_info[operations.CALLBACK],
                        host_key='SHA256:' + 'C' * 43)
        node.set_driver_internal_info(operations.CALLBACK, callback)
        node.save()
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('refusing to connect', node.last_error)

    def test_key_missing_on_this_conductor(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        keys.remove_deploy_key(node.uuid)
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('ssh_key_file', node.last_error)


class WriteImageFailureTestCase(FlowTestCase):

    def test_ssh_refused_fails_the_step(self):
        node = self.deploying_node()
        self.start_deploy(node)
        self.server.stop()
        self.heartbeat(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('write_image', node.last_error)
        self.assertIn('cannot connect', node.last_error)
        self.assertNotIn(operations.STARTED_AT, node.driver_internal_info)

    def test_auth_failure_fails_the_step(self):
        node = self.deploying_node()
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True):
            with self.task(node) as task:
                deployments.do_next_deploy_step(task, 0)
        # The ramdisk never got the key.
        self.heartbeat(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('SSH login to root@127.0.0.1', node.last_error)

    def test_step_argument_scheme_is_refused_before_power_on(self):
        # --deploy-steps arguments reach the node only after validate()
        # ran; the deploy step checks them before any power action.
        node = self.create_node(
            provision_state=states.DEPLOYING,
            target_provision_state=states.ACTIVE,
            driver_internal_info={'user_deploy_steps': [
                {'interface': 'deploy', 'step': 'write_image',
                 'priority': 80, 'args': {'scheme': {'storage': [
                     {'type': 'disk', 'id': 'd', 'table': 'zfs',
                      'match': {'name': '/dev/vdz'}}]}}}]})
        with self.task(node) as task:
            conductor_steps.set_node_deployment_steps(task)
            task.node.save()
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare, \
                mock.patch.object(manager_utils, 'node_power_action',
                                  autospec=True) as power:
            with self.task(node) as task:
                deployments.do_next_deploy_step(task, 0)
        node.refresh()
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('deploy steps argument (--deploy-steps) step '
                      'write_image argument "scheme"', node.last_error)
        self.assertIn('$.storage[0].table', node.last_error)
        self.assertIn('no power action taken', node.last_error)
        prepare.assert_not_called()
        power.assert_not_called()


class DefaultLayoutTestCase(FlowTestCase):

    # lsblk as the ramdisk would answer it: the 3 GiB disk is too small
    # for a root disk, the 6 GiB one is the smallest that is big enough.
    LSBLK = {'blockdevices': [
        {'name': 'vda', 'path': '/dev/vda', 'size': 8 * driver_base.GiB,
         'type': 'disk', 'rota': False, 'ro': False},
        {'name': 'vdb', 'path': '/dev/vdb', 'size': 3 * driver_base.GiB,
         'type': 'disk', 'rota': False, 'ro': False},
        {'name': 'vdc', 'path': '/dev/vdc', 'size': 6 * driver_base.GiB,
         'type': 'disk', 'rota': False, 'ro': False}]}

    def fake_lsblk(self):
        bindir = os.path.join(self.tmp, 'bin')
        os.makedirs(bindir)
        with open(os.path.join(bindir, 'lsblk'), 'w') as f:
            f.write("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n"
                    % json.dumps(self.LSBLK))
        os.chmod(os.path.join(bindir, 'lsblk'), 0o755)
        self.server.env['PATH'] = bindir + ':' + self.server.env['PATH']

    def uploaded_root_disk(self):
        with open(agent_control.RemotePaths.from_conf().input_file) as f:
            text = f.read()
        disks = [o for o in json.loads(text)['scheme']['storage']
                 if o['type'] == 'disk']
        self.assertEqual(1, len(disks))
        return disks[0]['match']

    def test_default_layout_takes_the_ramdisks_smallest_big_disk(self):
        self.fake_lsblk()
        node = self.deploying_node(instance_info={
            'image_source': 'http://127.0.0.1:1/root.img',
            'image_type': 'partition', 'root_gb': 2})
        self.deploy_to_agent(node, sleep=30)
        self.assertEqual({'name': '/dev/vdc'}, self.uploaded_root_disk())
        self.assertTrue(any(c.startswith('lsblk --json')
                            for c in self.server.commands))

    def test_root_device_hints_need_no_disk_listing(self):
        self.fake_lsblk()
        node = self.deploying_node(
            instance_info={'image_source': 'http://127.0.0.1:1/root.img',
                           'image_type': 'partition', 'root_gb': 2},
            properties={'root_device': {'serial': 'S1'}})
        self.deploy_to_agent(node, sleep=30)
        # The hints as the operator wrote them; the agent reads them as
        # Ironic does.
        self.assertEqual({'serial': 'S1'}, self.uploaded_root_disk())
        self.assertFalse(any(c.startswith('lsblk')
                             for c in self.server.commands))


class TakeOverTestCase(FlowTestCase):

    def test_take_over_resumes_polling_without_a_second_start(self):
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        commands = len(self.server.commands)
        with self.task(node) as task:
            task.driver.deploy.take_over(task)
        node.refresh()
        self.resume.assert_called_once_with(mock.ANY)
        self.assertEqual(1, self.agent_runs())
        # Only reads (SFTP) since: no command, so no start.
        self.assertEqual(commands, len(self.server.commands))

    def test_write_image_again_never_restarts_the_agent(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=2)
        with self.task(node) as task:
            self.assertEqual(agent_control.ALREADY_STARTED,
                             operations.start_agent(task, {'format': 'x'}))
            # Even with the record lost, the ramdisk's marker holds.
            task.node.del_driver_internal_info(operations.STARTED_AT)
            self.assertEqual(agent_control.ALREADY_STARTED,
                             operations.start_agent(task, {'format': 'x'}))
        self.wait_for_agent()
        self.assertEqual(1, self.agent_runs())

    def test_take_over_of_an_idle_node_does_nothing(self):
        node = self.create_node(provision_state=states.ACTIVE)
        with self.task(node) as task:
            task.driver.deploy.take_over(task)
        self.assertEqual([], self.server.commands)


class TearDownTestCase(FlowTestCase):

    def test_tear_down_and_clean_up(self):
        node = self.create_node(provision_state=states.DELETING,
                                power_state=states.POWER_ON)
        keys.create_deploy_key(node.uuid)
        with self.task(node) as task:
            self.assertEqual(states.DELETED,
                             task.driver.deploy.tear_down(task))
            task.driver.deploy.clean_up(task)
        node.refresh()
        self.assertEqual(states.POWER_OFF, node.power_state)
        self.assertFalse(os.path.exists(keys.generated_key_path(node.uuid)))

    def test_tear_down_agent_falls_back_to_hard_power_off(self):
        node = self.create_node(provision_state=states.DEPLOYING,
                                power_state=states.POWER_ON)
        real = manager_utils.node_power_action

        def refuse_soft(task, state, timeout=None):
            if state == states.SOFT_POWER_OFF:
                raise exception.PowerStateFailure(pstate=state)
            return real(task, state, timeout=timeout)

        with mock.patch.object(manager_utils, 'node_power_action',
                               side_effect=refuse_soft) as action:
            with self.task(node) as task:
                task.driver.deploy.tear_down_agent(task)
        self.assertEqual([states.SOFT_POWER_OFF, states.POWER_OFF],
                         [c.args[1] for c in action.call_args_list])
        node.refresh()
        self.assertEqual(states.POWER_OFF, node.power_state)


class CleaningTestCase(FlowTestCase):

    def cleaning_node(self, **kwargs):
        return self.create_node(provision_state=states.CLEANING,
                                target_provision_state=states.AVAILABLE,
                                power_state=states.POWER_OFF, **kwargs)

    def test_clean_step_priority_comes_from_config(self):
        self.config(erase_devices_metadata_priority=0, group='deploy')
        node = self.create_node()
        with self.task(node) as task:
            steps = task.driver.deploy.get_clean_steps(task)
        self.assertEqual({'erase_devices_metadata': 0, 'erase_devices': 10,
                          'erase_devices_express': 0},
                         {s['step']: s['priority'] for s in steps})

    def test_prepare_cleaning_boots_the_ramdisk(self):
        node = self.cleaning_node()
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                self.assertEqual(states.CLEANWAIT,
                                 task.driver.deploy.prepare_cleaning(task))
        self.assertIn('fa-ssh-key', prepare.call_args[0][2])
        node.refresh()
        self.assertEqual(states.POWER_ON, node.power_state)

    def test_erase_devices_metadata_wipes_every_inspected_disk(self):
        self.scenario(status={'state': 'succeeded', 'exit_code': 0})
        node = self.cleaning_node()
        self.add_inventory(node, ('/dev/sda', 10 * driver_base.GiB),
                           ('/dev/nvme0n1', 20 * driver_base.GiB))
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                task.driver.deploy.prepare_cleaning(task)
        self.server.authorize(prepare.call_args[0][2]['fa-ssh-key'])
        with self.task(node) as task:
            operations.record_callback(task.node, _callback(self.server))
            self.assertEqual(
                states.CLEANWAIT,
                task.driver.deploy.erase_devices_metadata(task))
        self.wait_for_agent()
        with open(agent_control.RemotePaths.from_conf().log_file) as f:
            self.assertIn('steps=discover,wipe', f.read())
        with open(agent_control.RemotePaths.from_conf().input_file) as f:
            disks = [o['match']['name'] for o in json.load(f)['scheme'][
                'storage']]
        self.assertEqual(['/dev/sda', '/dev/nvme0n1'], disks)

    def test_first_heartbeat_starts_automated_cleaning(self):
        self.scenario(status={'state': 'succeeded', 'exit_code': 0})
        node = self.cleaning_node()
        self.add_inventory(node, ('/dev/sda', 10 * driver_base.GiB))
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                task.process_event('wait')
                task.driver.deploy.prepare_cleaning(task)
        self.server.authorize(prepare.call_args[0][2]['fa-ssh-key'])
        self.heartbeat(node)
        self.assertEqual(states.CLEANWAIT, node.provision_state)
        self.assertEqual('erase_devices_metadata', node.clean_step['step'])
        self.assertIn(operations.STARTED_AT, node.driver_internal_info)
        self.wait_for_agent()
        with mock.patch.object(manager_utils, 'notify_conductor_resume_clean',
                               autospec=True) as resume:
            self.poll(node)
        resume.assert_called_once_with(mock.ANY)

    def test_failed_wipe_fails_cleaning(self):
        self.scenario(exit=13, status={
            'state': 'failed', 'exit_code': 13,
            'error': {'class': 'command_failed', 'message': 'wipefs: busy'}})
        node = self.cleaning_node()
        self.add_inventory(node, ('/dev/sda', 10 * driver_base.GiB))
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                task.process_event('wait')
                task.driver.deploy.prepare_cleaning(task)
        self.server.authorize(prepare.call_args[0][2]['fa-ssh-key'])
        self.heartbeat(node)
        self.wait_for_agent()
        self.poll(node)
        self.assertEqual(states.CLEANFAIL, node.provision_state)
        self.assertIn('command_failed: wipefs: busy', node.last_error)
        stored, = glob.glob(os.path.join(self.logs, node.uuid + '*'))
        self.assertIn('fuel-agent-cleaning', stored)

    def test_erase_without_inspection_or_ramdisk_disks_fails_clearly(self):
        node = self.cleaning_node()
        with self.task(node) as task:
            exc = self.assertRaises(
                exception.NodeCleaningFailure,
                task.driver.deploy.erase_devices_metadata, task)
        self.assertIn('no inspection data and its ramdisk lists no disks',
                      str(exc))


def _callback(server):
    return heartbeat.parse_callback_url(server.callback_url())
