"""Short SSH sessions from the conductor to the deploy ramdisk.

The ramdisk's host key is never taken on trust: the client accepts only
the key whose fingerprint the ramdisk sent in its authenticated
heartbeat, and negotiates only that key type. Connecting, authenticating
and every command or transfer have timeouts, so a dead node cannot hold
a conductor thread.
"""

import contextlib
import socket
import time

from fa_agent import contract
from ironic.common import exception
import paramiko

# Host key algorithms paramiko may negotiate, by OpenSSH key type.
_ALGORITHMS_BY_KEY_TYPE = {
    'ssh-ed25519': ('ssh-ed25519',),
    'ecdsa-sha2-nistp256': ('ecdsa-sha2-nistp256',),
    'ecdsa-sha2-nistp384': ('ecdsa-sha2-nistp384',),
    'ecdsa-sha2-nistp521': ('ecdsa-sha2-nistp521',),
    'ssh-rsa': ('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'),
}
_ALL_ALGORITHMS = {a for algs in _ALGORITHMS_BY_KEY_TYPE.values()
                   for a in algs}


class SSHError(exception.IronicException):
    """The ramdisk could not be reached or did not do what was asked."""

    _msg_fmt = '%(reason)s'
    # Worth another try later (the node may still be booting).
    transient = False


class ConnectFailed(SSHError):
    transient = True


class AuthFailed(SSHError):
    pass


class HostKeyMismatch(SSHError):
    pass


class CommandTimeout(SSHError):
    transient = True


class _PinnedHostKey(paramiko.MissingHostKeyPolicy):
    """Accept exactly the host key announced in the heartbeat."""

    def __init__(self, fingerprint):
        self.fingerprint = fingerprint

    def missing_host_key(self, client, hostname, key):
        actual = contract.fingerprint_of_blob(key.asbytes())
        if actual != self.fingerprint:
            raise HostKeyMismatch(
                reason='SSH host key of %s is %s %s, but the ramdisk\'s '
                       'heartbeat announced %s; refusing to connect'
                       % (hostname, key.get_name(), actual, self.fingerprint))


class Session:
    """One SSH connection; use :func:`connect` as a context manager."""

    def __init__(self, client, address, command_timeout):
        self._client = client
        self.address = address
        self.command_timeout = command_timeout

    def run(self, command, check=True, input=None):
        """Run a shell command; (exit status, stdout, stderr).

        ``input`` (bytes) is written to the command's standard input,
        which is then closed: the way to hand a command a secret without
        putting it in its argv or in this method's error messages, which
        name the command.

        :raises CommandTimeout: past the command timeout.
        :raises SSHError: for a non-zero exit when ``check``.
        """
        try:
            stdin, stdout, stderr = self._client.exec_command(
                command, timeout=self.command_timeout)
            if input is not None:
                stdin.write(input)
                stdin.flush()
                stdin.channel.shutdown_write()
            channel = stdout.channel
            deadline = time.monotonic() + self.command_timeout
            out = stdout.read()
            err = stderr.read()
            remaining = max(0.1, deadline - time.monotonic())
            if not channel.status_event.wait(remaining):
                raise socket.timeout()
            status = channel.recv_exit_status()
        except (socket.timeout, TimeoutError):
            raise CommandTimeout(
                reason='command on %s did not finish within %d s: %s'
                       % (self.address, self.command_timeout, command))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectFailed(reason='SSH session to %s broke while '
                                       'running %s: %s'
                                       % (self.address, command, exc))
        out = out.decode('utf-8', errors='replace')
        err = err.decode('utf-8', errors='replace')
        if check and status != 0:
            raise SSHError(reason='command on %s exited with %d: %s: %s'
                                  % (self.address, status, command,
                                     err.strip()[-1000:]))
        return status, out, err

    @contextlib.contextmanager
    def _sftp(self):
        try:
            sftp = self._client.open_sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectFailed(reason='SFTP to %s failed: %s'
                                       % (self.address, exc))
        sftp.get_channel().settimeout(self.command_timeout)
        try:
            yield sftp
        except (socket.timeout, TimeoutError):
            raise CommandTimeout(reason='SFTP transfer with %s took longer '
                                        'than %d s' % (self.address,
                                                       self.command_timeout))
        finally:
            sftp.close()

    def upload(self, data, path, mode=0o600):
        """Write ``data`` (bytes) to ``path`` atomically via a temp name."""
        temporary = path + '.part'
        with self._sftp() as sftp:
            try:
                with sftp.open(temporary, 'wb') as f:
                    f.chmod(mode)
                    f.write(data)
                sftp.posix_rename(temporary, path)
            except OSError as exc:
                raise SSHError(reason='uploading %s to %s failed: %s'
                                      % (path, self.address, exc))

    def exists(self, path):
        """Whether ``path`` (a file or a directory) exists."""
        with self._sftp() as sftp:
            try:
                sftp.stat(path)
                return True
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise SSHError(reason='looking for %s on %s failed: %s'
                                      % (path, self.address, exc))

    def read(self, path, max_bytes=None):
        """The contents of ``path`` (its last ``max_bytes``), or None if
        it does not exist."""
        with self._sftp() as sftp:
            try:
                with sftp.open(path, 'rb') as f:
                    if max_bytes is not None:
                        size = f.stat().st_size
                        f.seek(max(0, size - max_bytes))
                    return f.read()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise SSHError(reason='reading %s on %s failed: %s'
                                      % (path, self.address, exc))


@contextlib.contextmanager
def connect(address, port, user, key_file, host_key_type, fingerprint,
            connect_timeout, command_timeout):
    """An authenticated :class:`Session`, closed on exit. ``key_file``:
    a private key file, or a ``paramiko.PKey`` (a derived key, which is
    never written to disk).

    :raises ConnectFailed: refused, unreachable or timed out.
    :raises AuthFailed: the key was not accepted.
    :raises HostKeyMismatch: the host key is not the announced one.
    """
    allowed = _ALGORITHMS_BY_KEY_TYPE.get(host_key_type)
    if allowed is None:
        raise HostKeyMismatch(reason='the ramdisk announced a host key of '
                                     'unsupported type %r' % host_key_type)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_PinnedHostKey(fingerprint))
    where = ('%s@[%s]:%s' if ':' in address else '%s@%s:%s') % (
        user, address, port)
    if isinstance(key_file, paramiko.PKey):
        key = {'pkey': key_file}
    else:
        key = {'key_filename': key_file}
    try:
        client.connect(
            address, port=port, username=user, **key,
            timeout=connect_timeout, banner_timeout=connect_timeout,
            auth_timeout=connect_timeout, channel_timeout=command_timeout,
            look_for_keys=False, allow_agent=False,
            disabled_algorithms={'keys': sorted(_ALL_ALGORITHMS -
                                                set(allowed))})
    except HostKeyMismatch:
        client.close()
        raise
    except paramiko.AuthenticationException as exc:
        client.close()
        raise AuthFailed(reason='SSH login to %s was refused: %s'
                                % (where, exc))
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        raise ConnectFailed(reason='cannot connect to %s: %s'
                                   % (where, exc or type(exc).__name__))
    try:
        yield Session(client, address, command_timeout)
    finally:
        client.close()
