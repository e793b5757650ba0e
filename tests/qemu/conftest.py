"""Fixtures of the QEMU tests: the ramdisk (built or reused from the
cache by tools/build-ramdisk.sh) and guests booted from it.

The tests need root (debootstrap, chroot) and qemu-system-x86_64; without
either they skip and say why. Phase timings are printed at the end of the
run, whatever pytest's capture setting.
"""

import json
import os
import shutil
import subprocess

import pytest
import qemu_guest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, 'tools', 'build-ramdisk.sh')


def pytest_terminal_summary(terminalreporter):
    if qemu_guest.TIMINGS:
        terminalreporter.section('QEMU phase timings')
        for what, seconds in qemu_guest.TIMINGS:
            terminalreporter.write_line('%-50s %7.1f s' % (what, seconds))


def ensure_qemu():
    """Install Debian's QEMU when it is missing; None or why it cannot."""
    if shutil.which(qemu_guest.QEMU):
        return None
    result = subprocess.run(
        'apt-get update -qq && apt-get install -y -qq qemu-system-x86 '
        'qemu-utils',
        shell=True, capture_output=True, text=True,
        env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
    if shutil.which(qemu_guest.QEMU):
        return None
    return ('%s is missing and apt-get could not install qemu-system-x86: '
            '%s' % (qemu_guest.QEMU, result.stderr.strip()[-300:]))


@pytest.fixture(scope='session')
def ramdisk():
    """The build record of tools/build-ramdisk.sh (kernel, initramfs)."""
    if os.geteuid() != 0:
        pytest.skip('building the ramdisk needs root (debootstrap, chroot)')
    reason = ensure_qemu()
    if reason:
        pytest.skip(reason)
    result = subprocess.run([BUILD, '--json'], capture_output=True,
                            text=True)
    if result.returncode:
        pytest.fail('tools/build-ramdisk.sh failed:\n%s\n%s' % (
            result.stdout[-3000:], result.stderr[-3000:]))
    record = json.loads(result.stdout.strip().splitlines()[-1])
    qemu_guest.TIMINGS.append(('ramdisk build (%s)' % (
        'reused from cache' if record['cached'] else 'built'),
        record['seconds']))
    return record


@pytest.fixture(scope='module')
def guest(ramdisk, tmp_path_factory, request):
    """A ramdisk guest with three empty disks, logged in over SSH."""
    vm = qemu_guest.Guest(ramdisk['kernel'], ramdisk['initramfs'],
                          str(tmp_path_factory.mktemp('guest')))
    with qemu_guest.booted(vm, request.module.__name__) as vm:
        yield vm
