"""Several conductors: deploy keys any conductor derives from the shared
secret, a conductor finishing an operation another one started, the
agent's status in heartbeats, and the bounded parallel fallback poll.

Real parts: Ironic's conductor code, task manager and database (sqlite),
a real SSH server on loopback (``fake_ramdisk``), real paramiko and
cryptography. "Two conductors" are two configurations of this process
(host name and key_dir) taking turns: Ironic's hash ring and RPC cannot
run in a unit test (tests/functional/test_ha_keys.py runs two conductor
configurations against real Ironic and sshd). Mocked, as in
test_driver_deploy_flow: the RPC that resumes a deploy.
"""

import base64
import datetime
import json
import os
import socket
import threading
import time

from unittest import mock

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf import hkdf
from fa_agent import status_report
from ironic.common import exception
from ironic.common import states
from ironic import objects
from oslo_utils import timeutils

from ironic_fa_driver import agent_control
from ironic_fa_driver import keys
from ironic_fa_driver import operations
from ironic_fa_driver import poller
from ironic_fa_driver import ssh
from ironic_fa_driver import validation

import driver_base
from test_driver_deploy_flow import FlowTestCase


def write_secret(path, data=None, mode=0o600):
    data = data if data is not None else base64.b64encode(os.urandom(32))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    os.chmod(path, mode)
    return path


class _TwoConductors:
    """Switch this process between conductor "a" and "b": each has its
    own key_dir, both have the same secret file."""

    def conductors(self, secret=True):
        self.secret = write_secret(os.path.join(self.tmp, 'secret'))
        self.key_dirs = {}
        for name in ('a', 'b'):
            self.key_dirs[name] = os.path.join(self.tmp, 'keys-' + name)
            os.makedirs(self.key_dirs[name], mode=0o700)
        if secret:
            self.config(key_secret_file=self.secret, group='fuel_agent')
        self.be('a')

    def be(self, name):
        self.config(host='conductor-' + name)
        self.config(key_dir=self.key_dirs[name], group='fuel_agent')

    def files_in_key_dirs(self):
        return [os.path.join(d, f) for d in self.key_dirs.values()
                for _r, _ds, fs in os.walk(d) for f in fs]


class KeyDerivationTestCase(_TwoConductors, driver_base.DriverTestCase):

    def setUp(self):
        super().setUp()
        self.conductors()
        self.node = self.create_node()

    def public(self, key):
        return keys.public_key(key)[0]

    def test_any_conductor_derives_the_same_key_and_none_is_stored(self):
        made = keys.new_operation_key(self.node)
        self.node.save()
        self.be('b')
        self.node.refresh()
        again = keys.login_key(self.node)
        self.assertEqual(self.public(made), self.public(again))
        self.assertEqual('ssh-ed25519', again.get_name())
        self.assertEqual([], self.files_in_key_dirs())
        # The node holds a nonce, nothing of the private key.
        info = json.dumps(self.node.driver_internal_info)
        nonce = base64.b64decode(self.node.driver_internal_info[keys.NONCE])
        self.assertEqual(keys.NONCE_BYTES, len(nonce))
        seed = bytes(again._signing_key)  # paramiko's nacl key: the seed
        with open(self.secret, 'rb') as f:
            secret = f.read().strip().decode()
        for private in (secret, base64.b64encode(seed).decode(),
                        seed.hex()):
            self.assertNotIn(private, info)

    def test_each_operation_and_each_node_get_their_own_key(self):
        first = self.public(keys.new_operation_key(self.node))
        second = self.public(keys.new_operation_key(self.node))
        self.assertNotEqual(first, second)
        other = self.create_node()
        other.set_driver_internal_info(
            keys.NONCE, self.node.driver_internal_info[keys.NONCE])
        self.assertNotEqual(self.public(keys.login_key(other)),
                            self.public(keys.login_key(self.node)))

    def test_derivation_is_hkdf_sha256_of_secret_nonce_and_node(self):
        # Spelled out, so that conductors of two releases derive the same
        # key: seed = HKDF-SHA256(secret, salt=nonce, info=purpose+node).
        uuid = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'
        seed = hkdf.HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b'n' * 32,
            info=b'ironic-fa-driver ramdisk ssh login key v1 node '
            + uuid.encode()).derive(b's' * 32)
        expected = ed25519.Ed25519PrivateKey.from_private_bytes(
            seed).public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        key = keys.derive_key(b's' * 32, b'n' * 32, uuid)
        self.assertEqual(expected, key.asbytes()[-32:])
        self.assertNotEqual(key.asbytes(), keys.derive_key(
            b't' * 32, b'n' * 32, uuid).asbytes())

    def test_bad_secret_files_are_refused_naming_the_option(self):
        for setup, message in (
                (lambda p: os.chmod(p, 0o640), 'group or others'),
                (lambda p: os.chmod(p, 0o604), 'group or others'),
                (lambda p: write_secret(p, b'short\n'), 'at least 32'),
                (lambda p: write_secret(p, b'\n' * 40), 'at least 32'),
                (lambda p: write_secret(p, b'x' * (1 << 17)), 'larger'),
                (os.unlink, 'cannot be read')):
            write_secret(self.secret)
            setup(self.secret)
            with self.subTest(message=message):
                exc = self.assertRaises(exception.InvalidParameterValue,
                                        keys.new_operation_key, self.node)
                self.assertIn('[fuel_agent]key_secret_file', str(exc))
                self.assertIn(message, str(exc))
                with self.task(self.node) as task:
                    exc = self.assertRaises(exception.InvalidParameterValue,
                                            validation.validate, task)
                self.assertIn('[fuel_agent]key_secret_file', str(exc))

    def test_conductor_without_the_secret_says_so(self):
        keys.new_operation_key(self.node)
        self.config(key_secret_file=None, group='fuel_agent')
        exc = self.assertRaises(exception.InstanceDeployFailure,
                                keys.login_key, self.node)
        self.assertIn('key_secret_file is not set on conductor conductor-a',
                      str(exc))

    def test_configured_key_still_wins(self):
        path = keys.create_deploy_key('operator')
        self.config(ssh_key_file=path, group='fuel_agent')
        self.assertEqual(path, keys.new_operation_key(self.node))
        self.assertNotIn(keys.NONCE, self.node.driver_internal_info)
        self.assertEqual(path, keys.login_key(self.node))

    def test_without_the_secret_the_key_stays_on_its_conductor(self):
        self.config(key_secret_file=None, group='fuel_agent')
        path = keys.new_operation_key(self.node)
        self.assertTrue(path.startswith(self.key_dirs['a']))
        self.assertNotIn(keys.NONCE, self.node.driver_internal_info)
        self.be('b')
        exc = self.assertRaises(exception.InstanceDeployFailure,
                                keys.login_key, self.node)
        self.assertIn('not on conductor conductor-b', str(exc))

    def test_derived_key_logs_in_from_memory(self):
        server = self.ramdisk()
        key = keys.new_operation_key(self.node)
        server.authorize(keys.kernel_param_value(key))
        self.be('b')
        with ssh.connect('127.0.0.1', server.port, 'root',
                         keys.login_key(self.node), 'ssh-ed25519',
                         server.fingerprint, 5, 10) as session:
            self.assertEqual('ok\n', session.run('echo ok')[1])

    def test_operation_end_forgets_the_nonce(self):
        keys.new_operation_key(self.node)
        keys.forget_operation_key(self.node)
        self.assertNotIn(keys.NONCE, self.node.driver_internal_info)


class _Reports:
    """Heartbeats carrying the agent's status, as fa-heartbeat sends."""

    def report_of_files(self):
        paths = agent_control.RemotePaths.from_conf()
        return status_report.read(paths.status_file, paths.exit_code_file)

    def beat(self, node, report=None, agent_status=None, message=None):
        if report is not None:
            agent_status, message = report.agent_status, report.message()
        with self.task(node, shared=True) as task:
            task.driver.deploy.heartbeat(
                task, self.server.callback_url(), '1.0',
                agent_status=agent_status, agent_status_message=message)
        node.refresh()


class SecondConductorTestCase(_TwoConductors, _Reports, FlowTestCase):

    def test_poll_by_a_conductor_that_did_not_start_the_agent(self):
        self.conductors()
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        self.assertEqual([], self.files_in_key_dirs())
        self.be('b')  # conductor a is gone; the hash ring gives b the node
        commands = len(self.server.commands)
        self.poll(node)
        self.resume.assert_called_once_with(mock.ANY)
        self.assertNotIn(operations.STARTED_AT, node.driver_internal_info)
        self.assertEqual(1, self.agent_runs())
        self.assertEqual(commands, len(self.server.commands))  # reads only

    def test_heartbeat_to_a_conductor_that_did_not_start_the_agent(self):
        self.conductors()
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        self.be('b')
        commands = len(self.server.commands)
        self.beat(node, self.report_of_files())
        self.resume.assert_called_once_with(mock.ANY)
        self.assertEqual(1, self.agent_runs())
        self.assertEqual(commands, len(self.server.commands))

    def test_never_started_twice_by_the_second_conductor(self):
        self.conductors()
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=2)
        self.be('b')
        with self.task(node) as task:
            self.assertEqual(agent_control.ALREADY_STARTED,
                             operations.start_agent(task, {'format': 'x'}))
            # Even with the node's record lost, the ramdisk's marker holds
            # and b can log in to say so.
            task.node.del_driver_internal_info(operations.STARTED_AT)
            self.assertEqual(agent_control.ALREADY_STARTED,
                             operations.start_agent(task, {'format': 'x'}))
        self.wait_for_agent()
        self.assertEqual(1, self.agent_runs())

    def test_a_start_recorded_by_a_conductor_that_died_fails_clearly(self):
        # Conductor a records the start, then dies before its start
        # command reaches the ramdisk (the start is made a no-op here).
        self.conductors()
        self.scenario(status={'state': 'running'}, sleep=30)
        node = self.deploying_node()
        self.start_deploy(node)
        with mock.patch.object(agent_control, 'start', autospec=True,
                               return_value=agent_control.STARTED):
            self.heartbeat(node)
        self.assertIn(operations.STARTED_AT, node.driver_internal_info)
        self.be('b')
        self.poll(node)  # the start could still be on its way: wait
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.age_the_agent_start(node)
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('never ran on the ramdisk', node.last_error)
        self.assertFalse(os.path.exists(
            agent_control.RemotePaths.from_conf().log_file))

    def test_without_the_secret_the_second_conductor_cannot(self):
        self.conductors(secret=False)
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        self.be('b')
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('not on conductor conductor-b', node.last_error)


class HeartbeatStatusTestCase(_Reports, FlowTestCase):

    def test_final_report_finishes_without_the_periodic_poll(self):
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        report = self.report_of_files()
        self.assertEqual('end', report.agent_status)
        self.beat(node, report)
        self.resume.assert_called_once_with(mock.ANY)
        info = node.driver_internal_info
        self.assertEqual('end', info['agent_status'])
        self.assertEqual(report.message(), info['agent_status_message'])
        self.assertEqual('succeeded',
                         info[operations.HEARTBEAT_STATUS]['state'])
        self.assertNotIn(operations.STARTED_AT, info)

    def test_failed_report_fails_with_the_agents_own_message(self):
        node = self.deploy_to_agent(status={
            'state': 'failed', 'exit_code': 30,
            'error': {'class': 'partition', 'message': 'no such disk'}},
            exit=30)
        self.wait_for_agent()
        self.beat(node, self.report_of_files())
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('partition: no such disk', node.last_error)

    def test_a_stale_final_report_costs_one_read_only(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        stale = status_report.Report('succeeded', 'bootloader', 5, 0,
                                     'an-earlier-run')
        before = self.server.connections
        self.beat(node, stale)
        self.assertEqual(before + 1, self.server.connections)
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        self.beat(node, stale)
        self.assertEqual(before + 1, self.server.connections)
        self.resume.assert_not_called()

    def test_fresh_running_report_stands_for_a_poll(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        self.beat(node, status_report.Report('running', 'write_image', 2,
                                             None, 'run'))
        self.assertEqual('write_image', node.driver_internal_info[
            operations.HEARTBEAT_STATUS]['step'])
        before = self.server.connections
        self.poll(node)
        self.assertEqual(before, self.server.connections)

        def report_aged(seconds):
            at = timeutils.utcnow() - datetime.timedelta(seconds=seconds)
            status = dict(node.driver_internal_info[
                operations.HEARTBEAT_STATUS], at=at.isoformat())
            node.set_driver_internal_info(operations.HEARTBEAT_STATUS,
                                          status)
            node.save()
        # The ramdisk heartbeats every ramdisk_heartbeat_timeout / 3
        # (100 s) while nothing changes: a report two heartbeats old
        # still stands; one older than 5/6 of the timeout does not.
        report_aged(200)
        self.poll(node)
        self.assertEqual(before, self.server.connections)
        report_aged(260)
        self.poll(node)
        self.assertEqual(before + 1, self.server.connections)

    def test_a_running_report_costs_one_node_save(self):
        # At many nodes per conductor, node saves are what heartbeats
        # cost (tools/bench_conductor.py); a running report is one write
        # that also keeps the wait from timing out.
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        node.provision_updated_at = timeutils.utcnow() - \
            datetime.timedelta(hours=1)
        node.save()
        writes = []
        real_save = objects.Node.save
        real_touch = objects.Node.touch_provisioning
        with mock.patch.object(
                objects.Node, 'save', autospec=True,
                side_effect=lambda n, *a: writes.append('save')
                or real_save(n, *a)), \
            mock.patch.object(
                objects.Node, 'touch_provisioning', autospec=True,
                side_effect=lambda n, *a: writes.append('touch')
                or real_touch(n, *a)):
            self.beat(node, status_report.Report('running', 'write_image',
                                                 2, None, 'run'))
        self.assertEqual(['save'], writes)
        self.assertEqual('write_image', node.driver_internal_info[
            operations.HEARTBEAT_STATUS]['step'])
        self.assertFalse(timeutils.is_older_than(node.provision_updated_at,
                                                 60))

    def test_fresh_reports_do_not_outlive_the_deploy_timeout(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        self.beat(node, status_report.Report('running', 'write_image', 2,
                                             None, 'run'))
        self.age_the_agent_start(node)
        self.poll(node)
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('did not finish within', node.last_error)

    def test_ramdisk_without_status_is_left_to_the_poll(self):
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        self.beat(node)  # an older fa-heartbeat: no agent_status
        self.resume.assert_not_called()
        self.assertNotIn(operations.HEARTBEAT_STATUS,
                         node.driver_internal_info)
        self.poll(node)
        self.resume.assert_called_once_with(mock.ANY)

    def test_foreign_messages_are_bounded_masked_and_not_acted_on(self):
        node = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        before = self.server.connections
        self.beat(node, agent_status='end',
                  message='done https://user:pw@host/img ' + 'x' * 5000)
        info = node.driver_internal_info
        self.assertLessEqual(len(info['agent_status_message']), 255)
        self.assertNotIn('pw@', info['agent_status_message'])
        self.assertNotIn(operations.HEARTBEAT_STATUS, info)
        self.assertEqual(before, self.server.connections)
        self.resume.assert_not_called()


class _Blackhole:
    """A TCP port that accepts and never says a word (a hung sshd);
    counts the connections held at once."""

    def __init__(self):
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.now = self.most = 0
        self.accepted = []  # monotonic times
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            threading.Thread(target=self._hold, args=(conn,),
                             daemon=True).start()

    def _hold(self, conn):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.now -= 1

    def close(self):
        self.sock.close()


class FallbackPollTestCase(FlowTestCase):

    def setUp(self):
        super().setUp()
        self.blackhole = _Blackhole()
        self.addCleanup(self.blackhole.close)

    def hung_node(self):
        node = self.create_node(
            provision_state=states.DEPLOYWAIT,
            target_provision_state=states.ACTIVE,
            driver_internal_info={
                operations.CALLBACK: {
                    'address': '127.0.0.1', 'port': self.blackhole.port,
                    'host_key_type': 'ssh-ed25519',
                    'host_key': 'SHA256:' + 'A' * 43},
                operations.STARTED_AT: timeutils.utcnow().isoformat()})
        keys.create_deploy_key(node.uuid)
        return node

    def poll_all(self):
        with self.task(self.create_node()) as task:
            interface_type = type(task.driver.deploy)
        started = time.monotonic()
        polled = poller.poll_all(driver_base.NodesOfThisConductor(self.dbapi),
                                 self.context, interface_type)
        return polled, time.monotonic() - started

    def test_hung_ramdisks_do_not_hold_the_others(self):
        # The timeout also bounds the good node's real SSH session, which
        # a loaded machine can slow past 2 s.
        self.config(status_poll_timeout=6, status_poll_workers=8,
                    group='fuel_agent')
        hung = [self.hung_node() for _ in range(3)]
        good = self.deploy_to_agent(status={'state': 'succeeded',
                                            'exit_code': 0})
        self.wait_for_agent()
        # How many real polls run at once (each hung one waits out its
        # timeout on the blackhole): one after another it would be 1.
        # Counted in this process, not from the blackhole's side (which
        # sees closes late) and not by the wall clock (noisy machines).
        real_poll, lock, running = operations.poll, threading.Lock(), [0, 0]

        def counted_poll(*args, **kwargs):
            with lock:
                running[0] += 1
                running[1] = max(running)
            try:
                return real_poll(*args, **kwargs)
            finally:
                with lock:
                    running[0] -= 1
        with mock.patch.object(operations, 'poll', counted_poll):
            polled, _seconds = self.poll_all()
        self.assertEqual(4, polled)
        self.assertGreaterEqual(running[1], 3)
        self.resume.assert_called_once_with(mock.ANY)
        good.refresh()
        self.assertNotIn(operations.STARTED_AT, good.driver_internal_info)
        for node in hung:
            node.refresh()
            self.assertEqual(states.DEPLOYWAIT, node.provision_state)
            self.assertIn(operations.STARTED_AT, node.driver_internal_info)

    def test_the_pool_is_bounded(self):
        self.config(status_poll_timeout=1, status_poll_workers=2,
                    group='fuel_agent')
        for _ in range(4):
            self.hung_node()
        # Polls of one node at once, counted in this process (the
        # blackhole sees closes late; wall clocks are noisy here).
        real_poll_one, lock, running = poller.poll_one, threading.Lock(), \
            [0, 0, 0]  # now, most, calls

        def counted(*args, **kwargs):
            with lock:
                running[0] += 1
                running[1] = max(running[:2])
                running[2] += 1
            try:
                return real_poll_one(*args, **kwargs)
            finally:
                with lock:
                    running[0] -= 1
        with mock.patch.object(poller, 'poll_one', counted):
            polled, _seconds = self.poll_all()
        self.assertEqual(4, polled)
        self.assertEqual(4, running[2])
        # two workers, both used, never a third
        self.assertEqual(2, running[1])

    def test_only_due_nodes_are_polled(self):
        fresh = self.hung_node()
        fresh.set_driver_internal_info(operations.HEARTBEAT_STATUS, {
            'state': 'running', 'at': timeutils.utcnow().isoformat()})
        fresh.save()
        self.create_node(provision_state=states.DEPLOYWAIT)  # not started
        nodes = driver_base.NodesOfThisConductor(self.dbapi)
        self.assertEqual([], list(poller.due_nodes(nodes)))
