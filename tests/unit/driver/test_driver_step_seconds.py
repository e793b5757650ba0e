"""Issue 11 item 4: the agent's per-step seconds reach the node's
driver_internal_info (``fa_agent_step_seconds``) while it runs, after a
success and after a failure, through the real SSH ramdisk harness."""

import time

from ironic.common import states

from ironic_fa_driver import operations

import test_driver_deploy_flow as flow

SECONDS = {'discover': 0.4, 'wipe': 1.0, 'images': 12.5, 'target': 3.25}


class StepSecondsTestCase(flow.FlowTestCase):

    def test_success_keeps_the_step_seconds(self):
        node = self.deploy_to_agent(status={
            'state': 'succeeded', 'exit_code': 0, 'result': {'devices': {}},
            'step_seconds': SECONDS})
        self.wait_for_agent()
        self.poll(node)
        self.resume.assert_called_once()
        self.assertEqual(dict(SECONDS, target=3.2),
                         node.driver_internal_info[operations.STEP_SECONDS])
        self.continue_as_rpc(node)
        self.assertEqual(states.ACTIVE, node.provision_state)
        self.assertIn(operations.STEP_SECONDS, node.driver_internal_info)

    def test_failure_keeps_the_step_seconds(self):
        node = self.deploy_to_agent(exit=13, status={
            'state': 'failed', 'exit_code': 13, 'step_seconds': SECONDS,
            'error': {'class': 'command_failed', 'message': 'mkfs'}})
        self.wait_for_agent()
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertEqual(12.5, node.driver_internal_info[
            operations.STEP_SECONDS]['images'])

    def test_running_agent_shows_the_steps_so_far(self):
        node = self.deploy_to_agent(status={
            'state': 'running', 'step_seconds': {'discover': 0.5},
            'progress': {'step': 'wipe', 'message': 'wiping /dev/sda'}},
            sleep=30)
        for _ in range(20):
            self.poll(node)
            if operations.STEP_SECONDS in node.driver_internal_info:
                break
            time.sleep(0.5)
        self.assertEqual({'discover': 0.5},
                         node.driver_internal_info[operations.STEP_SECONDS])

    def test_a_new_ramdisk_boot_forgets_them(self):
        node = self.deploying_node(driver_internal_info={
            operations.STEP_SECONDS: {'wipe': 1.0}})
        self.start_deploy(node)
        self.assertNotIn(operations.STEP_SECONDS, node.driver_internal_info)


def test_only_numbers_by_step_name_are_taken():
    assert operations.step_seconds({'step_seconds': {'a': 1, 'b': 2.26}}) \
        == {'a': 1.0, 'b': 2.3}
    for bad in ({'step_seconds': {'a': 'x'}}, {'step_seconds': [1]},
                {'step_seconds': {'a': True}}, {}, None, []):
        assert operations.step_seconds(bad) is None
