"""SSH client and agent control against a real SSH server on loopback."""

import base64
import io
import json
import os
import socket
import stat
import tarfile
import time
from unittest import mock

from fa_agent import heartbeat

from ironic_fa_driver import agent_control
from ironic_fa_driver import keys
from ironic_fa_driver import ssh

import driver_base
import fake_ramdisk


class SSHTestCase(driver_base.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.server = self.ramdisk()
        self.key = keys.create_deploy_key('node-1')
        self.server.authorize(keys.kernel_param_value(self.key))

    def connect(self, fingerprint=None, port=None, key=None,
                command_timeout=10):
        return ssh.connect('127.0.0.1', port or self.server.port, 'root',
                           key or self.key, 'ssh-ed25519',
                           fingerprint or self.server.fingerprint, 5,
                           command_timeout)

    def test_generated_key_is_private_and_encoded_without_spaces(self):
        mode = stat.S_IMODE(os.stat(self.key).st_mode)
        self.assertEqual(0o600, mode)
        value = keys.kernel_param_value(self.key)
        self.assertNotIn(' ', value)
        self.assertTrue(value.startswith('ssh-ed25519:'))
        self.assertEqual(value.split(':')[1],
                         heartbeat.decode_public_key(value).split()[1])

    def test_run_upload_read(self):
        target = os.path.join(self.tmp, 'uploaded.json')
        with self.connect() as session:
            status, out, _err = session.run('echo hello; echo oops >&2')
            session.upload(b'{"a": 1}', target)
            self.assertEqual(b'{"a": 1}', session.read(target))
            self.assertIsNone(session.read(target + '.missing'))
            self.assertEqual(b'1}', session.read(target, max_bytes=2))
        self.assertEqual((0, 'hello\n'), (status, out))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(target).st_mode))

    def test_quick_command_output_survives_a_slow_exec_reply(self):
        # The fake ramdisk must answer "exec" before the command runs, as
        # sshd does: a CI run once saw "Channel closed" when a quick
        # command finished before paramiko sent the reply. Delaying the
        # reply makes that window wide; the command must still wait.
        check = fake_ramdisk._Server.check_channel_exec_request

        def slow_reply(server, channel, command):
            accepted = check(server, channel, command)
            time.sleep(0.5)
            return accepted

        with mock.patch.object(fake_ramdisk._Server,
                               'check_channel_exec_request', slow_reply):
            with self.connect() as session:
                self.assertEqual((0, 'fast\n', ''), session.run('echo fast'))

    def test_non_zero_exit_raises_with_stderr(self):
        with self.connect() as session:
            exc = self.assertRaises(ssh.SSHError, session.run,
                                    'echo broken >&2; exit 3')
            self.assertEqual(3, session.run('exit 3', check=False)[0])
        self.assertIn('exited with 3', str(exc))
        self.assertIn('broken', str(exc))

    def test_connection_refused(self):
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
        sock.close()
        exc = self.assertRaises(ssh.ConnectFailed,
                                self.connect(port=port).__enter__)
        self.assertTrue(exc.transient)
        self.assertIn('cannot connect to root@127.0.0.1:%d' % port, str(exc))

    def test_auth_failure(self):
        other = keys.create_deploy_key('node-2')
        exc = self.assertRaises(ssh.AuthFailed,
                                self.connect(key=other).__enter__)
        self.assertFalse(exc.transient)

    def test_host_key_mismatch_is_refused(self):
        wrong = 'SHA256:' + 'A' * 43
        exc = self.assertRaises(ssh.HostKeyMismatch,
                                self.connect(fingerprint=wrong).__enter__)
        self.assertIn(self.server.fingerprint, str(exc))
        self.assertIn(wrong, str(exc))
        # Refused before any command could run.
        self.assertEqual([], self.server.commands)

    def test_unsupported_host_key_type(self):
        self.assertRaises(ssh.HostKeyMismatch, ssh.connect(
            '127.0.0.1', self.server.port, 'root', self.key, 'ssh-dss',
            self.server.fingerprint, 5, 5).__enter__)

    def test_command_timeout(self):
        with self.connect(command_timeout=1) as session:
            exc = self.assertRaises(ssh.CommandTimeout, session.run,
                                    'sleep 5')
        self.assertTrue(exc.transient)


class AgentControlTestCase(SSHTestCase):

    def paths(self):
        return agent_control.RemotePaths.from_conf()

    def test_start_detached_once(self):
        self.scenario(status={'state': 'succeeded', 'exit_code': 0},
                      sleep=3)
        paths = self.paths()
        with self.connect() as session:
            agent_control.upload_input(session, paths, {'format': 'x'})
            self.assertEqual(agent_control.STARTED,
                             agent_control.start(session, paths))
        # The session is gone; the agent still runs and finishes.
        with self.connect() as session:
            self.assertEqual(agent_control.ALREADY_STARTED,
                             agent_control.start(session, paths))
        self._wait_for(paths.exit_code_file)
        with self.connect() as session:
            status = agent_control.poll(session, paths)
        self.assertEqual('succeeded', status.outcome)
        # The agent ran exactly once (it appends a line per run).
        with open(paths.log_file) as f:
            self.assertEqual(1, len(f.readlines()))
        with open(paths.input_file) as f:
            self.assertEqual({'format': 'x'}, json.load(f))

    def test_an_agent_ending_between_the_two_reads_has_not_failed(self):
        # The agent writes its final status, then exits, then the start
        # wrapper records the exit code. A poll that read the status
        # before the exit code could see "running" and exit code 0 (1 of
        # 500 nodes in tools/bench_conductor.py) and fail a good deploy.
        paths = self.paths()
        for path in (paths.status_file, paths.exit_code_file):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(paths.status_file, 'w') as f:
            json.dump({'state': 'running', 'step': 'write_image'}, f)

        def agent_ends():
            with open(paths.status_file, 'w') as f:
                json.dump({'state': 'succeeded', 'exit_code': 0}, f)
            with open(paths.exit_code_file, 'w') as f:
                f.write('0\n')
        with self.connect() as session:
            real_read = session.read

            def read(path, **kwargs):
                data = real_read(path, **kwargs)
                if not os.path.exists(paths.exit_code_file):
                    agent_ends()  # right after the poll's first read
                return data
            session.read = read
            status = agent_control.poll(session, paths)
        self.assertNotEqual('failed', status.outcome, status.message)

    def _wait_for(self, path, timeout=15):
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, path)
            time.sleep(0.1)

    def test_agent_argv(self):
        argv = agent_control.agent_argv(self.paths(), ['discover', 'wipe'])
        self.assertEqual(['--steps', 'discover,wipe'], argv[-2:])
        self.assertIn('--status-file', argv)

    def test_fetch_logs_is_a_gzipped_tar(self):
        paths = self.paths()
        os.makedirs(os.path.dirname(paths.log_file))
        with open(paths.log_file, 'w') as f:
            f.write('x' * 100 + 'END')
        with open(paths.status_file, 'w') as f:
            f.write('{"state": "failed"}')
        self.config(agent_log_max_bytes=1024, group='fuel_agent')
        with self.connect() as session:
            encoded = agent_control.fetch_logs(session, paths)
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(encoded))) \
                as archive:
            names = archive.getnames()
            log = archive.extractfile('provision.log').read()
        self.assertEqual(['status.json', 'provision.log'], names)
        self.assertTrue(log.endswith(b'END'))


class InterpretTestCase(driver_base.DriverTestCase):
    """How a poll reads the status file and exit code (no SSH needed)."""

    def status(self, **values):
        document = {'state': 'running', 'step': 'wipe', 'error': None,
                    'exit_code': None}
        document.update(values)
        return json.dumps(document).encode()

    def test_missing_status_while_starting(self):
        self.assertEqual('running',
                         agent_control.interpret(None, None).outcome)

    def test_missing_status_after_exit(self):
        result = agent_control.interpret(None, b'127\n')
        self.assertEqual(('failed', 127), (result.outcome, result.exit_code))
        self.assertIn('without writing its status file', result.message)

    def test_garbled_status(self):
        result = agent_control.interpret(b'{"state": "runn', None)
        self.assertEqual('failed', result.outcome)
        self.assertIn('garbled', result.message)
        result = agent_control.interpret(b'[1, 2]', None)
        self.assertIn('garbled', result.message)

    def test_running(self):
        self.assertEqual('running',
                         agent_control.interpret(self.status(), None).outcome)

    def test_exited_while_running(self):
        result = agent_control.interpret(self.status(), b'1')
        self.assertEqual('failed', result.outcome)
        self.assertIn('still said running at step wipe', result.message)

    def test_failed_with_error_class(self):
        result = agent_control.interpret(self.status(
            state='failed', exit_code=12,
            error={'class': 'does_not_fit', 'message': 'too small'}), b'12')
        self.assertEqual(('failed', 'does_not_fit', 12),
                         (result.outcome, result.error_class,
                          result.exit_code))
        self.assertIn('too small', result.message)

    def test_success_but_non_zero_exit(self):
        result = agent_control.interpret(
            self.status(state='succeeded', exit_code=0), b'3')
        self.assertEqual('failed', result.outcome)
        self.assertIn('exited with code 3', result.message)

    def test_success(self):
        result = agent_control.interpret(
            self.status(state='succeeded', exit_code=0,
                        result={'devices': {}}), b'0')
        self.assertEqual('succeeded', result.outcome)
        self.assertEqual({'devices': {}}, result.document['result'])

    def test_unknown_state(self):
        result = agent_control.interpret(self.status(state='dancing'), None)
        self.assertEqual('failed', result.outcome)
