"""A QEMU guest booted from the bootstrap ramdisk, reached over SSH.

This machine's kernel has no md and no device-mapper, so RAID and LVM are
exercised in a guest: TCG (``/dev/kvm`` does not work here), virtio disks
backed by sparse qcow2 files, and user networking that is restricted to
the guest itself plus one port forward from 127.0.0.1 to its sshd. The
SSH key is made per guest and reaches the ramdisk the way the conductor's
does: on the kernel command line.
"""

import contextlib
import hashlib
import logging
import os
import shlex
import socket
import subprocess
import time

import paramiko

from fa_agent import heartbeat

# While the guest boots, slirp accepts and drops connections; paramiko's
# transport thread would log a traceback for each attempt.
logging.getLogger('paramiko.transport').setLevel(logging.CRITICAL)
QEMU = 'qemu-system-x86_64'
DISK_SERIAL = 'fa-disk-%d'
BOOT_MAC = '52:54:00:fa:00:01'
# (phase, seconds) of this test run; conftest prints them at the end
TIMINGS = []


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


class GuestError(Exception):
    """The guest did not come up or a command in it failed."""


class Guest:
    """One ramdisk boot with ``disks`` empty virtio disks.

    ``timings`` records seconds per phase (QEMU start to SSH, ...).
    """

    def __init__(self, kernel, initramfs, workdir, disks=3,
                 disk_size='3G', memory_mib=2048):
        self.kernel = kernel
        self.initramfs = initramfs
        self.workdir = workdir
        self.disk_paths = [os.path.join(workdir, 'disk%d.qcow2' % n)
                           for n in range(disks)]
        self.disk_size = disk_size
        self.memory_mib = memory_mib
        self.console_log = os.path.join(workdir, 'console.log')
        self.key = paramiko.ECDSAKey.generate(bits=256)
        self.port = None
        self.process = None
        self.client = None
        self.timings = {}

    def kernel_params(self):
        # BOOTIF as PXE writes it: the port the node booted from
        return 'console=ttyS0 BOOTIF=01-%s %s=%s' % (
            BOOT_MAC.replace(':', '-'), heartbeat.SSH_KEY_KERNEL_PARAM,
            heartbeat.encode_public_key(self.key.get_name(),
                                        self.key.get_base64()))

    def command(self):
        # q35: a server-like machine, without the floppy drive of "pc"
        cmd = [QEMU, '-machine', 'q35', '-accel', 'tcg',
               '-m', str(self.memory_mib),
               '-smp', '2', '-display', 'none', '-monitor', 'none',
               '-no-reboot', '-serial', 'file:' + self.console_log,
               '-kernel', self.kernel, '-initrd', self.initramfs,
               '-append', self.kernel_params(),
               # restrict=on: the guest reaches nothing but slirp's DHCP;
               # the forward below still lets the test in.
               '-netdev', 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:'
               '%d-:22' % self.port,
               '-device', 'virtio-net-pci,netdev=net0,mac=' + BOOT_MAC]
        for number, path in enumerate(self.disk_paths):
            cmd += ['-drive', 'file=%s,if=none,id=disk%d,format=qcow2,'
                    'cache=unsafe' % (path, number),
                    '-device', 'virtio-blk-pci,drive=disk%d,serial=%s'
                    % (number, DISK_SERIAL % number)]
        return cmd

    def create_disks(self):
        """Empty sparse disks; a test may fill them before start()."""
        for path in self.disk_paths:
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path,
                            self.disk_size], check=True)

    def start(self):
        if not all(os.path.exists(path) for path in self.disk_paths):
            self.create_disks()
        self.port = free_port()
        self.started = time.monotonic()
        self.process = subprocess.Popen(self.command(),
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)

    def console_tail(self, lines=40):
        try:
            with open(self.console_log, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return '(no console output)'

    def connect(self, key=None, timeout=10):
        client = paramiko.SSHClient()
        # A fresh host key every boot, by design: nothing to pin it to.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect('127.0.0.1', port=self.port, username='root',
                       pkey=key or self.key, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout,
                       allow_agent=False, look_for_keys=False)
        return client

    def wait_for_ssh(self, timeout=600):
        """Log in as root with the guest's key, retrying until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors='replace')
                raise GuestError('QEMU exited with %s: %s\nconsole:\n%s' % (
                    self.process.returncode, output, self.console_tail()))
            try:
                self.client = self.connect()
                self.timings['qemu start to ssh'] = round(
                    time.monotonic() - self.started, 1)
                return
            except (OSError, paramiko.SSHException, EOFError) as exc:
                last = exc
                time.sleep(2)
        raise GuestError('no SSH login within %d s (last error: %r)\n'
                         'console:\n%s' % (timeout, last,
                                           self.console_tail()))

    def run(self, command, timeout=900, check=True):
        """``(exit code, stdout, stderr)`` of a shell command in the guest.
        """
        _stdin, stdout, stderr = self.client.exec_command(command,
                                                          timeout=timeout)
        out = stdout.read().decode(errors='replace')
        err = stderr.read().decode(errors='replace')
        code = stdout.channel.recv_exit_status()
        if check and code:
            raise GuestError('%r exited with %d\nstdout:\n%s\nstderr:\n%s'
                             % (command, code, out, err))
        return code, out, err

    def put_text(self, text, path):
        with self.client.open_sftp() as sftp:
            with sftp.open(path, 'w') as f:
                f.write(text)

    def has_command(self, name):
        return self.run('command -v %s' % shlex.quote(name),
                        check=False)[0] == 0

    def stop(self):
        if self.client is not None:
            self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def booted(vm, what):
    """Start ``vm``, wait for its SSH login, stop it afterwards."""
    vm.start()
    try:
        vm.wait_for_ssh()
        TIMINGS.append(('%s: QEMU start to SSH' % what,
                        vm.timings['qemu start to ssh']))
        yield vm
    finally:
        vm.stop()
