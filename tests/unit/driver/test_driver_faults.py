"""Faults while the agent runs, through the driver's real deploy flow:
the ramdisk's SSH side is a real SSH server (fake_ramdisk) running the
fake agent as a real process on this machine; the conductor, its
database and the deploy steps are Ironic's own (its unit-test base).

- the ramdisk unreachable over SSH for a while (its network or sshd
  gone, the agent going on): the conductor waits it out and finishes;
- the agent process killed: the deploy fails naming the exit code, and
  the agent's log is kept in Ironic's ramdisk log storage;
- the ramdisk rebooted (a new boot: a new SSH host key, its files gone):
  the conductor refuses to log in to it, fails the deploy saying so and
  never starts a second destructive run on it; the new ramdisk's
  heartbeat cannot move the pinned callback.

A conductor killed mid-deploy is the lab's uefi-raid1-failover (real
processes on MariaDB); a dropped image download is
tests/functional/test_http_resume.py.
"""

import glob
import json
import os
import shutil
import signal
import tarfile
import time
from unittest import mock

from ironic.common import states

from ironic_fa_driver import agent_control
from ironic_fa_driver import operations

import fake_ramdisk
from test_driver_deploy_flow import FlowTestCase


class SshLostTestCase(FlowTestCase):

    def test_ssh_lost_while_the_agent_runs_is_waited_out(self):
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        port = self.server.port
        self.server.stop()
        self.poll(node)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.assertIsNone(node.last_error)
        self.resume.assert_not_called()
        self.server.start(port=port)
        self.poll(node)
        self.resume.assert_called_once_with(mock.ANY)
        self.assertEqual(1, self.agent_runs())


class AgentKilledTestCase(FlowTestCase):

    def running_agent_pid(self):
        path = agent_control.RemotePaths.from_conf().status_file
        deadline = time.monotonic() + 20
        while True:
            try:
                with open(path) as f:
                    return json.load(f)['pid']
            except (OSError, ValueError, KeyError):
                self.assertLess(time.monotonic(), deadline,
                                'the agent never wrote its status')
                time.sleep(0.05)

    def test_killed_agent_fails_the_deploy_and_its_log_is_kept(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=60)
        os.kill(self.running_agent_pid(), signal.SIGKILL)
        self.wait_for_agent()  # the wrapper records the exit code
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('exited with code %d' % (128 + signal.SIGKILL),
                      node.last_error)
        self.assertIn('still said running', node.last_error)
        stored, = glob.glob(os.path.join(self.logs, node.uuid + '*.tar.gz'))
        with tarfile.open(stored) as archive:
            self.assertIn(b'agent log line',
                          archive.extractfile('provision.log').read())
        self.assertEqual(1, self.agent_runs())


class RamdiskRebootedTestCase(FlowTestCase):

    def reboot_ramdisk(self):
        """The same address and port, a new host key, an empty tmpfs."""
        port = self.server.port
        self.server.stop()
        scenario = os.path.join(self.remote, 'scenario.json')
        with open(scenario) as f:
            kept = f.read()
        shutil.rmtree(self.remote)
        os.makedirs(self.remote)
        with open(scenario, 'w') as f:
            f.write(kept)
        directory = os.path.join(self.tmp, 'after-reboot')
        os.makedirs(directory)
        rebooted = fake_ramdisk.FakeRamdisk(directory)
        shutil.copy(self.server.authorized_keys, rebooted.authorized_keys)
        rebooted.start(port=port)
        self.addCleanup(rebooted.stop)
        return rebooted

    def test_rebooted_ramdisk_is_never_provisioned_again(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=60)
        pinned = node.driver_internal_info[operations.CALLBACK]
        rebooted = self.reboot_ramdisk()
        # Its first heartbeat announces the new host key: refused.
        self.heartbeat(node, rebooted.callback_url())
        self.assertEqual(pinned,
                         node.driver_internal_info[operations.CALLBACK])
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('host key', node.last_error)
        # Nothing ran on the new boot: no command, no agent input.
        self.assertEqual([], rebooted.commands)
        paths = agent_control.RemotePaths.from_conf()
        self.assertFalse(os.path.exists(paths.input_file))
        self.assertFalse(os.path.exists(paths.marker))
