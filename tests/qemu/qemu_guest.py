"""A QEMU guest booted from the bootstrap ramdisk, reached over SSH, or
booted from its own disks by SeaBIOS or OVMF (UEFI) and watched on its
serial console.

This machine's kernel has no md and no device-mapper, so RAID and LVM are
exercised in a guest: TCG (``/dev/kvm`` does not work here), virtio disks
backed by sparse qcow2 files, and user networking that is restricted to
the guest itself plus one port forward from 127.0.0.1 to its sshd. The
SSH key is made per guest and reaches the ramdisk the way the conductor's
does: on the kernel command line.

Images reach the guest over HTTP from :class:`ImageServer` on 127.0.0.1:
slirp's ``guestfwd`` hands each connection the guest opens to
``IMAGE_HOST`` to ``guestfwd_relay.py``, which relays it to the server.
That works with ``restrict=on``, so the guest still reaches nothing else
(no DNS, no outside address), and the agent downloads the image the way
it does from Ironic's HTTP server.
"""

import contextlib
import functools
import hashlib
import http.server
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

import paramiko

from fa_agent import heartbeat

# While the guest boots, slirp accepts and drops connections; paramiko's
# transport thread would log a traceback for each attempt.
logging.getLogger('paramiko.transport').setLevel(logging.CRITICAL)
QEMU = 'qemu-system-x86_64'
DISK_SERIAL = 'fa-disk-%d'
BOOT_MAC = '52:54:00:fa:00:01'
# The address the guest downloads images from (see ImageServer).
IMAGE_HOST = '10.0.2.100'
RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     'guestfwd_relay.py')
# Debian's ovmf package; the variable store is copied per guest.
OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd'
MARKER = 'FA-MARKER '
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


def create_disk(path, size):
    """An empty sparse qcow2 disk of ``size`` (qemu-img's notation)."""
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, size],
                   check=True)


class GuestError(Exception):
    """The guest did not come up or a command in it failed."""


class Guest:
    """One ramdisk boot with ``disks`` empty virtio disks, or, with no
    ``kernel``, a boot from the disks themselves (the installed system).

    :param firmware: ``bios`` (SeaBIOS) or ``uefi`` (OVMF).
    :param disk_paths: disks of an earlier guest to boot with, instead of
        new ones in ``workdir``.
    :param image_port: port of an :class:`ImageServer` on 127.0.0.1 that
        the guest reaches as ``http://IMAGE_HOST/``.

    ``timings`` records seconds per phase (QEMU start to SSH, ...).
    """

    def __init__(self, kernel, initramfs, workdir, disks=3,
                 disk_size='3G', memory_mib=2048, firmware='bios',
                 disk_paths=None, image_port=None):
        self.kernel = kernel
        self.initramfs = initramfs
        self.workdir = workdir
        self.disk_paths = disk_paths or [
            os.path.join(workdir, 'disk%d.qcow2' % n) for n in range(disks)]
        self.disk_size = disk_size
        self.memory_mib = memory_mib
        self.firmware = firmware
        self.image_port = image_port
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
               '-no-reboot', '-serial', 'file:' + self.console_log]
        if self.firmware == 'uefi':
            cmd += ['-drive', 'if=pflash,format=raw,readonly=on,file='
                    + OVMF_CODE,
                    '-drive', 'if=pflash,format=raw,file=' + self.uefi_vars]
        if not self.kernel:
            # The installed system is only watched on its console; without
            # a NIC the firmware does not try a network boot either.
            cmd += ['-nic', 'none']
        else:
            cmd += ['-kernel', self.kernel, '-initrd', self.initramfs,
                    '-append', self.kernel_params()]
            # restrict=on: the guest reaches nothing but slirp's DHCP and
            # the image server's relay; the forward below still lets the
            # test in.
            netdev = ('user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:'
                      '%d-:22' % self.port)
            if self.image_port:
                netdev += ',guestfwd=tcp:%s:80-cmd:%s %s 127.0.0.1 %d' % (
                    IMAGE_HOST, sys.executable, RELAY, self.image_port)
            cmd += ['-netdev', netdev,
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
            create_disk(path, self.disk_size)

    @property
    def uefi_vars(self):
        return os.path.join(self.workdir, 'OVMF_VARS.fd')

    def start(self):
        if not all(os.path.exists(path) for path in self.disk_paths):
            self.create_disks()
        if self.firmware == 'uefi' and not os.path.exists(self.uefi_vars):
            shutil.copy(OVMF_VARS, self.uefi_vars)
        self.port = free_port()
        if self.kernel:
            self.write_login()
        self.started = time.monotonic()
        self.process = subprocess.Popen(self.command(),
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)

    def write_login(self):
        """The guest's throwaway key and an ssh command in the workdir,
        for a person looking into a test that hangs."""
        key = os.path.join(self.workdir, 'ssh-key')
        self.key.write_private_key_file(key)
        with open(os.path.join(self.workdir, 'ssh'), 'w') as f:
            f.write('#!/bin/sh\nexec ssh -i %s -p %d -o '
                    'StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null '
                    'root@127.0.0.1 "$@"\n' % (key, self.port))
        os.chmod(os.path.join(self.workdir, 'ssh'), 0o700)

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

    def wait_for_marker(self, timeout=900):
        """The JSON of the installed system's ``FA-MARKER`` console line
        (agent/testimages), waiting until ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise GuestError('QEMU exited with %s before the marker\n'
                                 'console:\n%s' % (self.process.returncode,
                                                   self.console_tail()))
            try:
                with open(self.console_log, 'rb') as f:
                    text = f.read().decode(errors='replace')
            except FileNotFoundError:
                text = ''  # QEMU has not opened it yet
            for line in text.splitlines():
                if line.startswith(MARKER):
                    self.timings['qemu start to marker'] = round(
                        time.monotonic() - self.started, 1)
                    # the console may go on with other output on the line
                    return json.JSONDecoder().raw_decode(
                        line[len(MARKER):])[0]
            time.sleep(2)
        raise GuestError('no %s line on the console within %d s\n'
                         'console:\n%s' % (MARKER.strip(), timeout,
                                           self.console_tail(80)))

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


class ImageServer:
    """Serves the files of ``directory`` over HTTP on 127.0.0.1 (a real
    server in a thread); ``requests`` lists the paths asked for."""

    def __init__(self, directory):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, fmt, *args):
                server.requests.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(Handler,
                                                directory=directory))
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)

    def url(self, name):
        """The URL under which the guest finds ``name``."""
        return 'http://%s/%s' % (IMAGE_HOST, name)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


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
