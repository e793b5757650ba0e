#!/usr/bin/env python3
"""The simulated deploy ramdisks of tools/bench_conductor.py.

Two programs, each a process of its own so that their CPU is never
counted as the conductor's:

``ssh``
    one SSH server per simulated ramdisk, all in this process: one
    listening socket each on 127.0.0.1, one ``selectors`` loop accepting
    on all of them, one thread per connection (paramiko's server side,
    the classes of tests/unit/driver/fake_ramdisk.py: public-key
    authentication, ``exec`` running real ``sh -c``, SFTP over the real
    file system). Every ramdisk has its own root directory: commands run
    with it as the working directory and SFTP paths are mapped into it
    (:func:`node_path`), so the conductor's *relative* remote paths
    (``[fuel_agent]remote_work_dir`` etc.) land in the right ramdisk.
    All ramdisks share one host key and authorise one operator key
    (``[fuel_agent]ssh_key_file``): per-deploy keys would only add key
    generation, which is not what is measured.

``heartbeat``
    the real fa-heartbeat main loop (``fa_agent.cmd.heartbeat.main``,
    with its default intervals) once per ramdisk, one thread each, each
    looking its node up by its MAC and heartbeating with the SSH port
    of its server. ``--no-status`` makes them heartbeat without the
    agent's status (the polling baseline). The time each ramdisk sent
    its first heartbeat is written to ``<root>/first-heartbeat``; once
    ``<root>/powered-off`` appears (the benchmark writes it when the node
    is done, where Ironic would power the machine off) its ramdisk stops.

The agent is replaced by :data:`FAKE_AGENT`, a shell script that writes
the status file the conductor reads and exits after a set time,
recording when it finished (``<root>/agent-done``).
"""

import argparse
import json
import os
import random
import selectors
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'unit', 'driver'))

# Written by the fake agent into its working directory (the ramdisk
# root), and by the heartbeat program.
AGENT_DONE = 'agent-done'
AGENT_STARTED = 'agent-started'
FIRST_HEARTBEAT = 'first-heartbeat'
# Written by bench_conductor when the node is done: Ironic powered it
# off, so its ramdisk stops heartbeating.
POWERED_OFF = 'powered-off'

# The fake agent: "fake-agent SECONDS [the driver's agent options]".
# It reports two steps (the second starts half way), then success, each
# time replacing the status file atomically as the real agent does.
FAKE_AGENT = r'''#!/bin/sh
seconds=$1; shift
status=
while [ $# -gt 0 ]; do
    case "$1" in --status-file) status=$2; shift ;; esac
    shift
done
[ -n "$status" ] || { echo "no --status-file" >&2; exit 2; }
started=$(date -u +%Y-%m-%dT%H:%M:%S)
date +%s.%N > agent-started
write() {
    printf '%s\n' "$1" > "$status.tmp" && mv "$status.tmp" "$status"
}
half=$(awk "BEGIN {print $seconds / 2}")
run="\"started_at\": \"$started\""
write "{\"state\": \"running\", \"step\": \"partition\", $run,
 \"steps_done\": [],
 \"progress\": {\"step\": \"partition\", \"message\": \"fake\"}}"
sleep "$half"
write "{\"state\": \"running\", \"step\": \"write_image\", $run,
 \"steps_done\": [\"partition\"],
 \"progress\": {\"step\": \"write_image\", \"message\": \"fake\"},
 \"step_seconds\": {\"partition\": $half}}"
sleep "$half"
write "{\"state\": \"succeeded\", \"step\": null, $run,
 \"steps_done\": [\"partition\", \"write_image\"], \"exit_code\": 0,
 \"result\": {\"devices\": {}},
 \"step_seconds\": {\"partition\": $half, \"write_image\": $half}}"
date +%s.%N > agent-done
exit 0
'''


def write_fake_agent(path):
    with open(path, 'w') as f:
        f.write(FAKE_AGENT)
    os.chmod(path, 0o755)
    return path


def node_path(root, remote):
    """Where the ramdisk path ``remote`` (absolute, or relative to the
    ramdisk's root) is for the ramdisk rooted at ``root``; never outside
    ``root`` (a chroot: ``..`` stops at it)."""
    parts = []
    for part in remote.split('/'):
        if part in ('', '.'):
            continue
        if part == '..':
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return os.path.join(root, *parts) if parts else root


def read_time(path):
    """Seconds since the epoch written in ``path``, or None."""
    try:
        with open(path) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


# -- the SSH servers ----------------------------------------------------------

def _ssh_classes():
    """The ramdisk and SFTP classes, built on fake_ramdisk (imported
    here: paramiko is needed by the ``ssh`` program only)."""
    import fake_ramdisk
    import paramiko

    class NodeFileSystem(fake_ramdisk._FileSystem):
        """fake_ramdisk's SFTP with every path mapped into the root of
        the ramdisk the connection is for."""

        def __init__(self, server, *args, **kwargs):
            super().__init__(server, *args, **kwargs)
            self.root = server.ramdisk.directory

        def _map(self, path):
            return node_path(self.root, path)

        def open(self, path, flags, attr):
            return super().open(self._map(path), flags, attr)

        def stat(self, path):
            return super().stat(self._map(path))

        def lstat(self, path):
            return super().lstat(self._map(path))

        def remove(self, path):
            return super().remove(self._map(path))

        def rename(self, old, new):
            return super().rename(self._map(old), self._map(new))

        def posix_rename(self, old, new):
            return super().posix_rename(self._map(old), self._map(new))

        def mkdir(self, path, attr):
            return super().mkdir(self._map(path), attr)

        def chattr(self, path, attr):
            return super().chattr(self._map(path), attr)

    class SimRamdisk(fake_ramdisk.FakeRamdisk):
        """A FakeRamdisk sharing the farm's host key and operator key;
        its socket is the farm's."""

        def __init__(self, directory, host_key, authorized):
            self.directory = directory
            self.user = 'root'
            self.commands = []
            self.connections = 0
            self.host_key = host_key
            self.env = dict(os.environ)
            self._authorized = authorized
            self._stop = threading.Event()

        def authorized_blobs(self):
            return self._authorized

        def _serve(self, conn):
            transport = fake_ramdisk._Transport(conn)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler('sftp', paramiko.SFTPServer,
                                            NodeFileSystem)
            try:
                transport.start_server(server=fake_ramdisk._Server(self))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()
                return
            channels = []  # a dropped Channel object closes itself
            while transport.is_active():
                channel = transport.accept(0.5)
                if channel is not None:
                    channels.append(channel)

    return SimRamdisk, paramiko


def serve_ssh(args):
    SimRamdisk, paramiko = _ssh_classes()
    host_key = paramiko.Ed25519Key.from_private_key_file(args.host_key)
    with open(args.authorized_key) as f:
        authorized = {f.read().split()[1]}
    with open(args.nodes) as f:
        directories = json.load(f)
    selector = selectors.DefaultSelector()
    ports = []
    for directory in directories:
        os.makedirs(directory, exist_ok=True)
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        sock.listen(128)
        sock.setblocking(False)
        ramdisk = SimRamdisk(directory, host_key, authorized)
        selector.register(sock, selectors.EVENT_READ, ramdisk)
        ports.append(sock.getsockname()[1])
    with open(args.ports + '.tmp', 'w') as f:
        json.dump(ports, f)
    os.rename(args.ports + '.tmp', args.ports)
    while True:
        for key, _mask in selector.select():
            try:
                conn, _addr = key.fileobj.accept()
            except BlockingIOError:
                continue
            conn.setblocking(True)
            key.data.connections += 1
            threading.Thread(target=key.data._serve, args=(conn,),
                             daemon=True).start()


# -- the heartbeats -----------------------------------------------------------

_local = threading.local()


def _record_first_heartbeat(heartbeat_module):
    """Wrap IronicAPI.heartbeat (this process only) to note when each
    ramdisk sends its first heartbeat; the call itself is unchanged."""
    original = heartbeat_module.IronicAPI.heartbeat

    def heartbeat(self, *args, **kwargs):
        directory = getattr(_local, 'directory', None)
        if directory and not getattr(_local, 'sent', False):
            _local.sent = True
            with open(os.path.join(directory, FIRST_HEARTBEAT), 'w') as f:
                f.write('%.6f\n' % time.time())
        return original(self, *args, **kwargs)

    heartbeat_module.IronicAPI.heartbeat = heartbeat


def ramdisk_sleep(directory, error, step=1.0):
    """fa-heartbeat's sleep for the ramdisk rooted at ``directory``:
    raises ``error`` (which ends its main loop) once the node has been
    powered off (:data:`POWERED_OFF` there)."""
    marker = os.path.join(directory, POWERED_OFF)

    def sleep(seconds):
        end = time.monotonic() + seconds
        while True:
            if os.path.exists(marker):
                raise error('powered off')
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, step))
    return sleep


def heartbeat_argv(args, node, cmdline, sys_class_net):
    """fa-heartbeat's command line for one ramdisk: its defaults but for
    what a simulated ramdisk on loopback must say."""
    root = node['directory']
    argv = ['--cmdline', cmdline, '--sys-class-net', sys_class_net,
            '--address', '127.0.0.1', '--ssh-port', str(node['port']),
            '--mac', node['mac'], '--host-key', args.host_key_pub,
            '--max-wait', str(args.max_wait),
            '--status-file', node_path(root, args.status_file),
            '--exit-code-file', node_path(root, args.exit_code_file)]
    if args.lookup_interval:
        argv += ['--lookup-interval', str(args.lookup_interval)]
    if args.no_status:
        argv.append('--no-status')
    return argv


def send_heartbeats(args):
    import logging
    from fa_agent import heartbeat
    from fa_agent.cmd import heartbeat as heartbeat_cmd
    logging.basicConfig(level=logging.WARNING,
                        format='%(asctime)s %(threadName)s %(message)s')
    # main() sets up logging at INFO once; WARNING set first wins.
    _record_first_heartbeat(heartbeat)
    with open(args.nodes) as f:
        nodes = json.load(f)
    cmdline = os.path.join(args.work, 'cmdline')
    with open(cmdline, 'w') as f:
        f.write('ipa-api-url=%s\n' % args.api_url)
    sys_class_net = os.path.join(args.work, 'no-nics')
    os.makedirs(sys_class_net, exist_ok=True)

    def ramdisk(node):
        time.sleep(random.uniform(0, args.boot_spread))
        _local.directory = node['directory']
        heartbeat_cmd.main(
            heartbeat_argv(args, node, cmdline, sys_class_net),
            sleep=ramdisk_sleep(node['directory'],
                                heartbeat.HeartbeatError))

    for node in nodes:
        threading.Thread(target=ramdisk, args=(node,), daemon=True,
                         name='ramdisk-%s' % node['mac']).start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='program', required=True)
    ssh = sub.add_parser('ssh')
    ssh.add_argument('--nodes', required=True,
                     help='JSON list of ramdisk root directories')
    ssh.add_argument('--ports', required=True,
                     help='where to write the JSON list of their ports')
    ssh.add_argument('--host-key', required=True)
    ssh.add_argument('--authorized-key', required=True,
                     help='the operator\'s public key file')
    beat = sub.add_parser('heartbeat')
    beat.add_argument('--nodes', required=True, help='JSON list of '
                      '{"directory", "mac", "port"}')
    beat.add_argument('--work', required=True)
    beat.add_argument('--api-url', required=True)
    beat.add_argument('--host-key-pub', required=True)
    beat.add_argument('--status-file', required=True,
                      help='[fuel_agent]status_file')
    beat.add_argument('--exit-code-file', required=True,
                      help='<[fuel_agent]remote_work_dir>/exit_code')
    beat.add_argument('--no-status', action='store_true')
    beat.add_argument('--lookup-interval', type=float)
    beat.add_argument('--boot-spread', type=float, default=0.0)
    beat.add_argument('--max-wait', type=float, default=7200)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.program == 'ssh':
        signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
        serve_ssh(args)
    else:
        signal.pthread_sigmask(signal.SIG_BLOCK,
                               {signal.SIGTERM, signal.SIGINT})
        send_heartbeats(args)


if __name__ == '__main__':
    main()
