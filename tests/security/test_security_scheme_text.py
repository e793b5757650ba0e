"""Item 1 (no scheme text is ever interpreted), validate-time part: kernel
parameters, mount options, labels and names are held to a strict grammar
and refused with their JSON path before anything is written.

The kernel parameters end up in /etc/default/grub, which grub-mkconfig
sources as root: the tests source a file written the way the agent writes
it and show that what the validator accepts comes back unchanged, and that
what it refuses would have run.
"""

import copy
import os
import subprocess

import hypothesis
from hypothesis import strategies as st
import pytest

from fa_agent import errors
from fa_agent.scheme import grammar
from fa_agent.scheme import validator
from fa_agent.steps import bootloader

BASE = {
    'version': 1,
    'storage': [
        {'type': 'disk', 'id': 'sda', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'grub', 'device': 'sda',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'esp', 'device': 'sda',
         'size': '512 MiB', 'flags': ['esp']},
        {'type': 'partition', 'id': 'root', 'device': 'sda',
         'size': 'remaining', 'name': 'root'},
        {'type': 'filesystem', 'id': 'fs-esp', 'device': 'esp',
         'fstype': 'vfat', 'mount_point': '/boot/efi', 'label': 'EFI'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/', 'label': 'root',
         'mount_options': 'defaults,noatime'},
    ],
    'bootloader': {'mode': 'both', 'kernel_params': 'console=ttyS0,115200n8'},
}


def doc_with(**changes):
    """BASE with ``changes``: path-like keys 'storage.5.label' -> value."""
    doc = copy.deepcopy(BASE)
    for key, value in changes.items():
        *parts, last = key.split('.')
        node = doc
        for part in parts:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return doc


def messages_at(doc, path):
    return [e.message for e in validator.validate(doc) if e.path == path]


def test_base_is_valid():
    assert validator.validate(BASE) == []


HOSTILE_PARAMS = [
    '$(touch /tmp/pwned)', 'a=`id`', 'quiet"; rm -rf / #', "a='b'",
    'a=\\x', 'console=ttyS0\nGRUB_DISABLE_RECOVERY=false', 'a=${HOME}',
    'a\tb', 'init=/bin/sh;reboot', 'x=1|y', 'a=<b', 'a={b}', 'a&b',
    'pwn=\x1b[2J', 'caf\u00e9=1', 'a=*', '#comment',
]


@pytest.mark.parametrize('params', HOSTILE_PARAMS)
def test_hostile_kernel_params_are_refused_with_their_path(params):
    found = messages_at(doc_with(**{'bootloader.kernel_params': params}),
                        '$.bootloader.kernel_params')
    assert found and 'not a plain kernel parameter' in found[0]


def test_overlong_kernel_command_line_is_refused():
    found = messages_at(doc_with(**{'bootloader.kernel_params':
                                    'a=b ' * 600}),
                        '$.bootloader.kernel_params')
    assert found and 'at most 2048' in found[0]


@pytest.mark.parametrize('params', [
    '', 'quiet', 'console=ttyS0,115200n8 console=tty0', 'rd.lvm.lv=vg0/root',
    'root=UUID=0f9e-11 ro', 'crashkernel=1G-4G:192M,4G-:256M', '--',
    'ip=[fe80::1]::[fe80::2]:64::eth0:none', 'acpi_osi=!Windows2012',
    'video=HDMI-A-1:1920x1080@60', 'isolcpus=1-3,5 nohz_full=1-3'])
def test_ordinary_kernel_params_are_accepted(params):
    assert validator.validate(doc_with(**{'bootloader.kernel_params':
                                          params})) == []


def _source(tmp_path, params):
    """GRUB_CMDLINE_LINUX after sourcing /etc/default/grub as written by
    the agent, the way grub-mkconfig reads it."""
    path = tmp_path / 'grub'
    path.write_text(bootloader.with_kernel_params(
        'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=""\n', params))
    result = subprocess.run(
        ['sh', '-c', '. "$1" && printf %s "$GRUB_CMDLINE_LINUX"', 'sh',
         str(path)], capture_output=True, text=True, timeout=10,
        cwd=tmp_path, env={'PATH': os.environ['PATH']})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_refused_params_are_refused_by_both_halves(tmp_path):
    # Defence in depth: the validator refuses at validate time, and the
    # agent (which may get input that no validator saw) refuses too; what
    # it does write is quoted, so sourcing never runs a substitution.
    params = '$(touch pwned)'
    assert messages_at(doc_with(**{'bootloader.kernel_params': params}),
                       '$.bootloader.kernel_params')
    with pytest.raises(errors.BadInput):
        bootloader.check_kernel_params(params, '$.bootloader.kernel_params')
    assert _source(tmp_path, 'a=b') == 'a=b'
    assert not (tmp_path / 'pwned').exists()


_PARAM = st.from_regex(r'[A-Za-z0-9_.-]{1,8}(=[A-Za-z0-9_.,:=/@+%~!^\[\]-]'
                       r'{0,12})?', fullmatch=True)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(st.lists(_PARAM, min_size=1, max_size=5))
def test_accepted_params_come_back_unchanged_from_the_shell(tmp_path_factory,
                                                            params):
    text = ' '.join(params)
    assert grammar.kernel_params_problem(text) is None
    assert _source(tmp_path_factory.mktemp('grub'), text) == text


def test_grub_script_metacharacters_are_outside_the_grammar():
    # GRUB's words break at { } | & $ ; < > and quotes; grub.cfg carries
    # the parameters verbatim, so none may be accepted.
    for char in '{}|&$;<>"\'\\`#*?\t\n':
        assert grammar.kernel_params_problem('a=x%sy' % char), char


@pytest.mark.parametrize('options', [
    'defaults,noatime\n/dev/sdb /mnt ext4 defaults 0 0', 'defaults noatime',
    'defaults,\tnoatime', 'ro,#x', 'context="system_u:object_r:t"',
    'defaults,,noatime', 'a=$(id)', 'x' * 5000, 'umask=0077\x00'])
def test_unsafe_mount_options_are_refused(options):
    found = messages_at(doc_with(**{'storage.5.mount_options': options}),
                        '$.storage[5].mount_options')
    assert found


@pytest.mark.parametrize('options', [
    'defaults', 'defaults,noatime,errors=remount-ro', 'subvol=@root',
    'compress=zstd:3', 'x-systemd.requires=/dev/md/data', 'umask=0077'])
def test_ordinary_mount_options_are_accepted(options):
    assert validator.validate(doc_with(**{'storage.5.mount_options':
                                          options})) == []


@pytest.mark.parametrize('label', ['ro\not', 'a\x00b', 'a\tb', '\u202eevil',
                                   '\ud800'])
def test_labels_with_control_characters_are_refused(label):
    found = messages_at(doc_with(**{'storage.5.label': label}),
                        '$.storage[5].label')
    assert found


@pytest.mark.parametrize('label', ['EFI/BOOT', 'A:B', 'caf\u00e9', 'A*'])
def test_vfat_labels_are_plain_fat_labels(label):
    found = messages_at(doc_with(**{'storage.4.label': label}),
                        '$.storage[4].label')
    assert found and 'vfat labels are ASCII' in found[0]


def test_gpt_partition_name_is_checked_in_utf16_units():
    assert messages_at(doc_with(**{'storage.3.name': 'a\nb'}),
                       '$.storage[3].name')
    # 18 characters outside the BMP are 36 UTF-16 units: the limit.
    assert validator.validate(doc_with(**{'storage.3.name':
                                          '\U0001F600' * 18})) == []
    found = messages_at(doc_with(**{'storage.3.name': '\U0001F600' * 19}),
                        '$.storage[3].name')
    assert found and '38' in found[0]
    assert messages_at(doc_with(**{'storage.3.name': '\udc00'}),
                       '$.storage[3].name')
