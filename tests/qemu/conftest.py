"""Fixtures of the QEMU tests: the ramdisk and the test OS images (built
or reused from the cache by tools/build-ramdisk.sh and
tools/build-test-images.sh) and guests booted from the ramdisk.

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
BUILD_IMAGES = os.path.join(ROOT, 'tools', 'build-test-images.sh')


def pytest_terminal_summary(terminalreporter):
    if qemu_guest.TIMINGS:
        terminalreporter.section('QEMU phase timings')
        for what, seconds in qemu_guest.TIMINGS:
            terminalreporter.write_line('%-50s %7.1f s' % (what, seconds))


def ensure_qemu():
    """Install Debian's QEMU and OVMF when missing; None or why they
    cannot be."""
    if shutil.which(qemu_guest.QEMU) and os.path.exists(
            qemu_guest.OVMF_CODE):
        return None
    result = subprocess.run(
        'apt-get update -qq && apt-get install -y -qq qemu-system-x86 '
        'qemu-utils ovmf',
        shell=True, capture_output=True, text=True,
        env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
    if shutil.which(qemu_guest.QEMU) and os.path.exists(
            qemu_guest.OVMF_CODE):
        return None
    return ('%s or %s is missing and apt-get could not install '
            'qemu-system-x86 and ovmf: %s' % (
                qemu_guest.QEMU, qemu_guest.OVMF_CODE,
                result.stderr.strip()[-300:]))


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


@pytest.fixture(scope='session')
def test_images(ramdisk):
    """The build record of tools/build-test-images.sh: artifacts with
    path, format, compression and sha256 (after the ramdisk fixture,
    which checked root and QEMU)."""
    result = subprocess.run([BUILD_IMAGES, '--json'], capture_output=True,
                            text=True)
    if result.returncode:
        pytest.fail('tools/build-test-images.sh failed:\n%s' % (
            result.stderr[-3000:]))
    record = json.loads(result.stdout)
    qemu_guest.TIMINGS.append(('test image build (%s)' % (
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
