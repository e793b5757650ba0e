"""Items 5 and 9 (images cannot read the ramdisk; image safety through
oslo.utils' format_inspector): an agent whose oslo.utils has no
format_inspector (Debian bookworm's 6.0.1, the ramdisk's before
agent/ramdisk/wheels.txt) converts no qcow2 image at all, instead of
trusting ``qemu-img info`` alone; raw bytes, which nothing interprets,
still pass, with a warning. Real qcow2 images made by the real qemu-img.
The ramdisk itself is proven to have the inspector by the build
(build.INSPECTOR_CHECK) and tests/qemu/test_ramdisk_boot.py."""

import logging
import shutil
import subprocess

import pytest

from fa_agent import errors
from fa_agent import runner as runner_mod
from fa_agent.images import safety

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None,
                                reason='qemu-img is not installed')


@pytest.fixture
def no_inspector(monkeypatch):
    monkeypatch.setattr(safety, 'format_inspector', None)


def qcow2(path, *options):
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', *options,
                    str(path), '1M'], check=True, capture_output=True)
    return str(path)


@pytest.mark.parametrize('data_file', [False, True],
                         ids=['plain', 'data-file'])
def test_no_qcow2_is_converted_without_the_inspector(tmp_path, no_inspector,
                                                     data_file):
    """Before: qemu-img info alone judged it, and a plain qcow2 went on
    to qemu-img convert (the recorder saw ``qemu-img info``)."""
    options = ('-o', 'data_file=%s' % (tmp_path / 'secret')) \
        if data_file else ()
    image = qcow2(tmp_path / 'image.qcow2', *options)
    recorder = runner_mod.RecordingRunner()
    with pytest.raises(errors.ProvisionError) as caught:
        safety.check_file(image, 'qcow2', recorder, 'image root')
    assert type(caught.value) is errors.ProvisionError  # not the image's
    assert str(caught.value) == (
        'image root: a qcow2 image is not converted without the image '
        "format safety check: this agent's oslo.utils has no "
        'imageutils.format_inspector (7.3.1 or later is needed)')
    assert recorder.commands == []


def test_raw_bytes_still_pass_without_the_inspector_but_say_so(
        no_inspector, caplog, monkeypatch):
    # whatever logging setup an earlier test (Ironic's) left
    monkeypatch.setattr(safety.LOG, 'disabled', False)
    monkeypatch.setattr(safety.LOG, 'propagate', True)
    chunks = [b'\0' * 4096, b'data']
    with caplog.at_level(logging.WARNING, logger=safety.__name__):
        out = list(safety.check_written_as_is('raw', iter(chunks),
                                              'image root'))
    assert out == chunks
    assert 'image root: this agent\'s oslo.utils has no ' \
        'imageutils.format_inspector' in caplog.text


def test_with_the_inspector_a_plain_qcow2_passes(tmp_path):
    """The refusal above is the missing inspector's, not qcow2's."""
    image = qcow2(tmp_path / 'image.qcow2')
    info = safety.check_file(image, 'qcow2', runner_mod.Runner(),
                             'image root')
    assert info['format'] == 'qcow2'
