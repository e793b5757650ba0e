"""Item 6 (secrets stay secret), conductor side: a deploy whose image URL
carries a password and a Swift temp URL signature, with an agent that
repeats the URL in its progress, its failure message, its log, its
output and its result. Afterwards the secrets are nowhere the node's
readers look: ``driver_internal_info``, ``last_error``, the node
history, the conductor log and the ramdisk log tarball Ironic stored.
The agent's own input still has the real URL: it has to download it.

Real parts: Ironic's conductor code and database, Ironic's ramdisk log
storage (local back end), a real SSH server on loopback running the
fake agent as a real process.
"""

import glob
import json
import os
import sys
import tarfile

from ironic.common import exception
from ironic.common import states
from ironic.conductor import deployments
from ironic.conductor import steps as conductor_steps
from ironic import objects

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'unit',
                                'driver'))

import driver_base  # noqa: E402
from ironic_fa_driver import agent_control  # noqa: E402
from ironic_fa_driver import operations  # noqa: E402
import test_driver_deploy_flow as flow  # noqa: E402

PASSWORD = 'pw-6f1d2c'
SIGNATURE = 'sig-0a9b8c7d'
SECRETS = (PASSWORD, SIGNATURE)
URL = ('https://tenant:%s@swift.example/v1/AUTH_t/glance/disk.img'
       '?temp_url_sig=%s&temp_url_expires=1999999999' % (PASSWORD, SIGNATURE))
MASKED = ('https://tenant:***@swift.example/v1/AUTH_t/glance/disk.img'
          '?temp_url_sig=***&temp_url_expires=***')


class SecretsTestCase(flow.FlowTestCase):

    def setUp(self):
        super().setUp()
        # Everything any logger of the conductor process writes.
        self.log = self.capture_logs()

    def secret_node(self):
        return self.deploying_node(instance_info={
            'image_source': URL, 'image_os_hash_algo': 'sha256',
            'image_os_hash_value': 'ab' * 32})

    def assert_nowhere(self, node):
        node.refresh()
        places = {
            'driver_internal_info': json.dumps(node.driver_internal_info),
            'last_error': str(node.last_error),
            'node history': json.dumps([
                h.event for h in objects.NodeHistory.list_by_node_id(
                    self.context, node.id)]),
            'conductor log': '\n'.join(self.log),
        }
        for path in glob.glob(os.path.join(self.logs, '*')):
            with tarfile.open(path) as archive:
                for member in archive.getmembers():
                    places['%s:%s' % (os.path.basename(path), member.name)] \
                        = archive.extractfile(member).read().decode()
        for where, text in places.items():
            for secret in SECRETS:
                self.assertNotIn(secret, text, where)
        return places

    def assert_input_has_the_real_url(self):
        with open(agent_control.RemotePaths.from_conf().input_file) as f:
            self.assertIn(URL, f.read())

    def test_failed_deploy(self):
        node = self.secret_node()
        self.deploy_to_agent(node, exit=7, log='GET %s -> 403\n' % URL,
                             stdout='downloading %s' % URL, status={
                                 'state': 'failed', 'exit_code': 7,
                                 'progress': {'step': 'images',
                                              'message': 'downloading %s'
                                              % URL},
                                 'error': {'class': 'image_download',
                                           'message': "cannot download %r:"
                                           " 403 Forbidden" % URL}})
        self.assert_input_has_the_real_url()
        self.wait_for_agent()
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        places = self.assert_nowhere(node)
        # Still tells the operator which image it was.
        self.assertIn(MASKED, node.last_error)
        self.assertIn(MASKED, places['conductor log'])
        stored, = [k for k in places if k.endswith(':provision.log')]
        self.assertIn('GET %s -> 403' % MASKED, places[stored])

    def test_progress_while_running(self):
        node = self.secret_node()
        self.deploy_to_agent(node, sleep=30, status={
            'state': 'running', 'progress': {
                'step': 'images', 'message': 'image os from %s (40%%)' % URL}})
        for _ in range(20):
            self.poll(node)
            if operations.PROGRESS in node.driver_internal_info:
                break
        self.assertEqual('images: image os from %s (40%%)' % MASKED,
                         node.driver_internal_info[operations.PROGRESS])
        self.assert_nowhere(node)

    def test_result_and_logs_after_success(self):
        self.config(agent_logs_collect='always', group='fuel_agent')
        node = self.secret_node()
        self.deploy_to_agent(node, exit=0, log='wrote %s\n' % URL, status={
            'state': 'succeeded', 'exit_code': 0,
            'result': {'images': [{'url': URL, 'target': 'sda'}]}})
        self.wait_for_agent()
        self.poll(node)
        self.resume.assert_called_once()
        self.assertEqual({'images': [{'url': MASKED, 'target': 'sda'}]},
                         node.driver_internal_info[operations.RESULT])
        places = self.assert_nowhere(node)
        self.assertTrue([k for k in places if k.endswith(':provision.log')])

    def test_truncated_log_loses_its_cut_first_line(self):
        # Only the end of a long log is fetched; a URL cut before its
        # "https://" would not be recognised as one.
        self.config(agent_log_max_bytes=1024, agent_logs_collect='always',
                    group='fuel_agent')
        node = self.secret_node()
        log = 'x' * 600 + URL + '\n' + 'y' * 600 + '\n'
        self.deploy_to_agent(node, exit=0, log=log, status={
            'state': 'succeeded', 'exit_code': 0})
        self.wait_for_agent()
        self.poll(node)
        places = self.assert_nowhere(node)
        stored, = [k for k in places if k.endswith(':provision.log')]
        self.assertEqual('y' * 600 + '\n', places[stored])

    def test_invalid_scheme_error(self):
        # The validator quotes a value it refuses; a URL it quotes is
        # masked before it reaches the step's error and last_error.
        node = self.secret_node()
        scheme = dict(driver_base.WHOLE_DISK_SCHEME, images=[
            {'url': URL.replace('https', 'ftp'), 'format': 'raw',
             'target': 'sda'}])
        node.driver_info = {'fa_partition_scheme': scheme}
        node.save()
        with self.task(node) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        for secret in SECRETS:
            self.assertNotIn(secret, str(exc))
        self.assertIn('$.images[0].url', str(exc))
        # Deployed anyway: the deploy step refuses it before power-on.
        with self.task(node) as task:
            conductor_steps.set_node_deployment_steps(task)
            task.node.save()
            deployments.do_next_deploy_step(task, 0)
        node.refresh()
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('$.images[0].url', node.last_error)
        self.assert_nowhere(node)
