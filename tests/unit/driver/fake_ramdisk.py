"""A real SSH server on 127.0.0.1 that plays the deploy ramdisk.

It is paramiko's server side, not a mock: public-key authentication
against an authorized_keys file, ``exec`` running real shell commands
(``sh -c``, standard input from the channel, as sshd does) on this
machine, and an SFTP subsystem over the real file system. Tests point
the driver's remote paths into a temporary directory so nothing outside
it is touched.
"""

import os
import socket
import struct
import subprocess
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fa_agent import heartbeat
import paramiko
from paramiko import common as ssh_common

# Ironic's TestCase replaces subprocess.Popen to catch accidental calls;
# the ramdisk really runs commands, so it keeps the genuine class.
_POPEN = subprocess.Popen


def new_ed25519_key(path):
    """Write a new OpenSSH ed25519 private key to ``path`` (0600)."""
    data = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    return paramiko.Ed25519Key.from_private_key_file(path)


class _Handle(paramiko.SFTPHandle):
    def stat(self):
        f = getattr(self, 'readfile', None) or self.writefile
        return paramiko.SFTPAttributes.from_stat(os.fstat(f.fileno()))

    def chattr(self, attr):
        if attr.st_mode is not None:
            os.chmod(self.filename, attr.st_mode & 0o7777)
        return paramiko.SFTP_OK


def _sftp_errors(func):
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
    return wrapper


class _FileSystem(paramiko.SFTPServerInterface):
    """SFTP over this machine's real file system (absolute paths)."""

    @_sftp_errors
    def open(self, path, flags, attr):
        mode = attr.st_mode if attr and attr.st_mode is not None else 0o644
        fd = os.open(path, flags, mode)
        if flags & (os.O_WRONLY | os.O_RDWR):
            fmode = 'r+b' if flags & os.O_RDWR else 'wb'
            if flags & os.O_APPEND:
                fmode = 'ab'
        else:
            fmode = 'rb'
        f = os.fdopen(fd, fmode)
        handle = _Handle(flags)
        handle.filename = path
        if 'r' in fmode or '+' in fmode:
            handle.readfile = f
        if fmode != 'rb':
            handle.writefile = f
        return handle

    @_sftp_errors
    def stat(self, path):
        return paramiko.SFTPAttributes.from_stat(os.stat(path))

    @_sftp_errors
    def lstat(self, path):
        return paramiko.SFTPAttributes.from_stat(os.lstat(path))

    @_sftp_errors
    def remove(self, path):
        os.remove(path)
        return paramiko.SFTP_OK

    @_sftp_errors
    def rename(self, old, new):
        os.rename(old, new)
        return paramiko.SFTP_OK

    @_sftp_errors
    def posix_rename(self, old, new):
        os.replace(old, new)
        return paramiko.SFTP_OK

    @_sftp_errors
    def mkdir(self, path, attr):
        os.mkdir(path)
        return paramiko.SFTP_OK

    @_sftp_errors
    def chattr(self, path, attr):
        if attr.st_mode is not None:
            os.chmod(path, attr.st_mode & 0o7777)
        return paramiko.SFTP_OK

    def canonicalize(self, path):
        return os.path.normpath(path if path.startswith('/') else
                                '/' + path)


class _Server(paramiko.ServerInterface):
    def __init__(self, ramdisk):
        self.ramdisk = ramdisk

    def check_channel_request(self, kind, chanid):
        if kind == 'session':
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED_OPEN_FAILED

    def get_allowed_auths(self, username):
        return 'publickey'

    def check_auth_publickey(self, username, key):
        if username == self.ramdisk.user and \
                key.get_base64() in self.ramdisk.authorized_blobs():
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_exec_request(self, channel, command):
        self.ramdisk.commands.append(command.decode())
        channel.get_transport().start_after_reply(
            channel, threading.Thread(target=self.ramdisk.run_command,
                                      args=(channel, command.decode()),
                                      daemon=True))
        return True


class _Transport(paramiko.Transport):
    """Starts an exec'd command only once its request has been answered.

    paramiko sends the reply to an ``exec`` request after
    ``check_channel_exec_request`` returns. A command started inside that
    check could finish and close the channel first; the client then saw
    "Channel closed" instead of the output (a CI run failed that way on a
    loaded machine). sshd answers first and runs second, so this does too:
    it watches the one place every outgoing message passes for the
    CHANNEL_SUCCESS that carries the channel's number. Private paramiko
    API, acceptable in a test double; the tests fail loudly if it changes.
    """

    def __init__(self, sock):
        super().__init__(sock)
        self._waiting = {}
        self._waiting_lock = threading.Lock()

    def start_after_reply(self, channel, thread):
        with self._waiting_lock:
            self._waiting[channel.remote_chanid] = thread

    def _send_user_message(self, data):
        super()._send_user_message(data)
        raw = data.asbytes()
        if raw[:1] != ssh_common.cMSG_CHANNEL_SUCCESS:
            return
        (chanid,) = struct.unpack('>I', raw[1:5])
        with self._waiting_lock:
            thread = self._waiting.pop(chanid, None)
        if thread is not None:
            thread.start()


class FakeRamdisk:
    """The SSH side of a deploy ramdisk on 127.0.0.1, or on ``address``
    (``::1``: a ramdisk on IPv6) (context manager)."""

    def __init__(self, directory, user='root', address='127.0.0.1'):
        self.directory = directory
        self.address = address
        self.user = user
        self.commands = []
        # SSH connections accepted (polls count, commands or not).
        self.connections = 0
        self.host_key = new_ed25519_key(os.path.join(directory, 'host_key'))
        self.authorized_keys = os.path.join(directory, 'authorized_keys')
        self.env = dict(os.environ)
        self._sock = None
        self._stop = threading.Event()

    # -- what the heartbeat announces --------------------------------------

    @property
    def fingerprint(self):
        return heartbeat.fingerprint_of_blob(self.host_key.asbytes())

    @property
    def port(self):
        return self._port

    def callback_url(self, fingerprint=None):
        return heartbeat.build_callback_url(
            self.address, self.port, self.host_key.get_name(),
            fingerprint or self.fingerprint)

    def write_host_pub(self, path):
        with open(path, 'w') as f:
            f.write('%s %s\n' % (self.host_key.get_name(),
                                 self.host_key.get_base64()))

    def authorize(self, kernel_param_value):
        """Install the key the conductor put on the kernel command line."""
        with open(self.authorized_keys, 'a') as f:
            f.write(heartbeat.decode_public_key(kernel_param_value) + '\n')

    def authorized_blobs(self):
        try:
            with open(self.authorized_keys) as f:
                return {line.split()[1] for line in f if line.strip()}
        except OSError:
            return set()

    # -- the rescue account ---------------------------------------------------

    def add_rescue_account(self):
        """Give the ramdisk a ``rescue`` account the real ``chpasswd`` can
        change: passwd/shadow files under ``rescue-root`` (never this
        machine's own), a ``chpasswd`` first on PATH that runs
        /usr/sbin/chpasswd with ``--root`` there, and a ``systemctl``
        that records its arguments instead of touching this machine's
        services. Returns the root directory."""
        root = os.path.join(self.directory, 'rescue-root')
        etc = os.path.join(root, 'etc')
        os.makedirs(etc, exist_ok=True)
        for name, text in (
                ('passwd', 'root:x:0:0:root:/root:/bin/bash\n'
                           'rescue:x:1000:1000::/home/rescue:/bin/bash\n'),
                ('group', 'root:x:0:\nrescue:x:1000:\n'),
                ('shadow', 'root:*:20000:0:99999:7:::\n'
                           'rescue:!:20000:0:99999:7:::\n')):
            with open(os.path.join(etc, name), 'w') as f:
                f.write(text)
        os.chmod(os.path.join(etc, 'shadow'), 0o640)
        bin_dir = os.path.join(self.directory, 'rescue-bin')
        os.makedirs(bin_dir, exist_ok=True)
        for name, body in (
                ('chpasswd', 'exec /usr/sbin/chpasswd --root %s "$@"\n'
                 % root),
                ('systemctl', 'echo "$@" >> %s\n'
                 % os.path.join(self.directory, 'systemctl.log'))):
            path = os.path.join(bin_dir, name)
            with open(path, 'w') as f:
                f.write('#!/bin/sh\n' + body)
            os.chmod(path, 0o755)
        self.env['PATH'] = bin_dir + ':' + self.env.get('PATH', '')
        return root

    def shadow_entry(self, user='rescue'):
        """The password field of ``user`` in the rescue account's shadow."""
        with open(os.path.join(self.directory, 'rescue-root', 'etc',
                               'shadow')) as f:
            for line in f:
                fields = line.split(':')
                if fields[0] == user:
                    return fields[1]
        return None

    def systemctl_calls(self):
        try:
            with open(os.path.join(self.directory, 'systemctl.log')) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    # -- serving ------------------------------------------------------------

    @staticmethod
    def _pump_stdin(channel, fd):
        """What the client sends on the channel, into the command's
        standard input, until the client's EOF (or the channel closes);
        this thread alone owns and closes ``fd``."""
        try:
            while True:
                data = channel.recv(32768)
                if not data:
                    break
                os.write(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)

    def run_command(self, channel, command):
        try:
            read_end, write_end = os.pipe()
            threading.Thread(target=self._pump_stdin,
                             args=(channel, write_end), daemon=True).start()
            try:
                process = _POPEN(['sh', '-c', command], cwd=self.directory,
                                 stdin=read_end, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=self.env)
            finally:
                os.close(read_end)
            out, err = process.communicate()
            channel.sendall(out)
            channel.sendall_stderr(err)
            channel.send_exit_status(process.returncode)
        except Exception as exc:  # the client must always get an answer
            channel.sendall_stderr(str(exc).encode())
            channel.send_exit_status(255)
        finally:
            channel.close()

    def _serve(self, conn):
        transport = _Transport(conn)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler('sftp', paramiko.SFTPServer,
                                        _FileSystem)
        try:
            transport.start_server(server=_Server(self))
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        while transport.is_active() and not self._stop.is_set():
            channel = transport.accept(0.5)
            if channel is None:
                continue

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def start(self, port=0):
        """Listen on ``port`` (another ramdisk's, to play its reboot) or
        on a free one; again after :meth:`stop`, the same ramdisk back on
        the network)."""
        self._stop.clear()
        family = socket.AF_INET6 if ':' in self.address else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.address, port))
        self._sock.listen(16)
        self._port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
        if self._sock is not None:
            # shutdown() wakes the thread blocked in accept(); close()
            # alone would leave the port listening until it returns.
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
