"""Item 1 of issue 10 (no scheme text is ever interpreted), agent side:
what the agent writes into files the installed system parses reads back
as exactly the scheme's text, by the real parsers.

- /etc/default/grub is sourced by sh (dash) and bash here, with a marker
  file that any command substitution would create;
- /etc/fstab is parsed by util-linux (findmnt, libmount's parser, which
  mount and systemd's fstab generator use);
- mdadm.conf lines that would carry more than one ARRAY line of known
  words are refused;
- kernel parameters that grub.cfg's unquoted ``linux`` line or the
  kernel command line cannot carry as text are refused, named by field.

The agent must hold on its own (Fuel input and older conductors skip the
validator), so the hostile values are put into a loaded scheme directly.
"""

import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from fa_agent import errors
from fa_agent import input_format
from fa_agent import runner as agent_runner
from fa_agent import steps
from fa_agent.steps import bootloader
from fa_agent.steps import context
from fa_agent.steps import target

SCHEME = {'storage': [
    {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
    {'type': 'partition', 'id': 'bios', 'device': 'd0', 'size': '1 MiB',
     'flags': ['bios_grub']},
    {'type': 'partition', 'id': 'root', 'device': 'd0', 'size': '4 GiB'},
    {'type': 'partition', 'id': 'p2', 'device': 'd0', 'size': '1 GiB'},
    {'type': 'partition', 'id': 'p3', 'device': 'd0', 'size': '1 GiB'},
    {'type': 'raid', 'id': 'md0', 'level': 1, 'devices': ['p2', 'p3']},
    {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
     'fstype': 'ext4', 'mount_point': '/'},
    {'type': 'filesystem', 'id': 'fs-data', 'device': 'md0',
     'fstype': 'xfs', 'mount_point': '/srv'},
], 'bootloader': {'mode': 'bios'}}
LSBLK = json.dumps({'blockdevices': [
    {'name': 'sda', 'path': '/dev/sda', 'size': 20 * 1024 ** 3,
     'type': 'disk', 'rota': False, 'ro': False}]})


class RealRun(agent_runner.RecordingRunner):
    """Commands are recorded, files are written (not a dry run)."""

    dry_run = False


def make_context(tmp_path, replies=None, dry_run=False):
    replies = dict(replies or {})
    replies[('lsblk', '--json', '--bytes', '--nodeps')] = LSBLK
    runner = (RealRun if not dry_run else
              agent_runner.RecordingRunner)(replies)
    req = input_format.parse(input_format.build(SCHEME))
    ctx = context.Context(req, runner, target_dir=str(tmp_path / 'target'))
    steps.run(ctx, steps.selected(['discover']))
    return ctx


def with_kernel_params(ctx, on_request='', in_scheme=''):
    """Kernel parameters as a Fuel document or an older conductor could
    hand them over (no validator on the way)."""
    ctx.request = dataclasses.replace(ctx.request, kernel_params=on_request)
    ctx.scheme = dataclasses.replace(ctx.scheme, bootloader=(
        dataclasses.replace(ctx.scheme.bootloader, kernel_params=in_scheme)))


def with_filesystem(ctx, fs_id, **changes):
    """The loaded scheme with one file system changed as a Fuel document
    or an older conductor could hand it over (no validator on the way)."""
    storage = tuple(dataclasses.replace(o, **changes) if o.id == fs_id
                    else o for o in ctx.scheme.storage)
    ctx.scheme = dataclasses.replace(ctx.scheme, storage=storage)


# -- /etc/default/grub -------------------------------------------------------

SHELLS = [s for s in ('sh', 'bash') if shutil.which(s)]


def source(shell, text, tmp_path):
    """GRUB_CMDLINE_LINUX after ``shell`` sources ``text`` the way
    grub-mkconfig does (``. /etc/default/grub``), run in ``tmp_path``."""
    path = tmp_path / 'grub'
    path.write_text(text)
    return subprocess.run(
        [shell, '-c', '. "$1"; printf %s "$GRUB_CMDLINE_LINUX"', shell,
         str(path)], capture_output=True, text=True, check=True,
        cwd=str(tmp_path), env={'PATH': os.environ['PATH']}).stdout


# Text a shell would expand, split or run if it were not quoted; the
# quoting must hold for all of it, even where the agent's refusal of
# GRUB's syntax would not catch a character.
HOSTILE = ['$(touch MARK)', '`touch MARK`', "a'b$(touch MARK)'",
           '"; touch MARK; "', '\\$(touch MARK)', '${IFS}x', '*', '~ ! #x',
           'acpi_osi="Windows 2009"', 'x=$HOME']


@pytest.mark.parametrize('shell', SHELLS)
@pytest.mark.parametrize('params', HOSTILE)
def test_sourcing_the_grub_defaults_yields_the_params_exactly(
        shell, params, tmp_path):
    image = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet"\n'
    got = source(shell, bootloader.with_kernel_params(image, params),
                 tmp_path)
    assert not (tmp_path / 'MARK').exists(), 'a command ran'
    assert got == 'quiet ' + params


@pytest.mark.parametrize('shell', SHELLS)
def test_the_images_own_value_stays_as_the_image_wrote_it(shell, tmp_path):
    image = ('EXTRA="splash"\n'
             'GRUB_CMDLINE_LINUX="quiet $EXTRA"\n'
             'GRUB_TIMEOUT=5\n')
    written = bootloader.with_kernel_params(image, 'console=ttyS0')
    assert written.startswith(image)
    assert source(shell, written, tmp_path) == 'quiet splash console=ttyS0'
    bare = bootloader.with_kernel_params('GRUB_TIMEOUT=5', 'nomodeset')
    assert source(shell, bare, tmp_path) == 'nomodeset'


@pytest.mark.parametrize('params, field', [
    ('console=ttyS0\nGRUB_DISABLE_OS_PROBER=false', '$.kernel_params'),
    ('$(touch /tmp/x)', '$.kernel_params'),
    ('quiet; insmod evil', '$.scheme.bootloader.kernel_params'),
    ('a=`id`', '$.scheme.bootloader.kernel_params'),
    ("it's", '$.kernel_params'),
    ('x="unbalanced', '$.kernel_params'),
    ('tab\there', '$.kernel_params'),
])
def test_kernel_params_grub_cfg_cannot_carry_are_refused(
        params, field, tmp_path):
    """10_linux copies GRUB_CMDLINE_LINUX unquoted into grub.cfg's
    ``linux`` line: GRUB's parser would read $, ;, quotes, ... there."""
    ctx = make_context(tmp_path, dry_run=True)
    if field == '$.kernel_params':
        with_kernel_params(ctx, on_request=params)
    else:
        with_kernel_params(ctx, in_scheme=params)
    with pytest.raises(errors.BadInput) as caught:
        bootloader.install(ctx, 'bios')
    assert str(caught.value).startswith(field + ': ')
    assert not any(c[0] == '#' and c[1].startswith('write')
                   for c in ctx.runner.commands)


def test_the_bootloader_step_writes_through_the_real_file(tmp_path):
    ctx = make_context(tmp_path)
    grub = tmp_path / 'target' / 'etc' / 'default' / 'grub'
    grub.parent.mkdir(parents=True)
    grub.write_text('GRUB_CMDLINE_LINUX="quiet"\n')
    bootloader.write_kernel_params(ctx, 'console=ttyS0,115200n8')
    bootloader.write_kernel_params(ctx, 'console=ttyS0,115200n8')  # again
    assert source('sh', grub.read_text(), tmp_path) == \
        'quiet console=ttyS0,115200n8'


# -- /etc/fstab --------------------------------------------------------------

def findmnt(path):
    out = subprocess.run(
        ['findmnt', '--fstab', '--tab-file', str(path), '--json',
         '--output', 'SOURCE,TARGET,FSTYPE,OPTIONS'],
        capture_output=True, text=True, check=True).stdout
    return {fs['target']: fs for fs in json.loads(out)['filesystems']}


@pytest.mark.skipif(shutil.which('findmnt') is None,
                    reason='findmnt (util-linux) is not installed')
@pytest.mark.parametrize('mount_point, options', [
    ('/srv/my data', 'noatime'),
    ('/srv/tab\there', 'defaults'),
    ('/srv/new\nline / ext4 defaults 0 0', 'defaults'),
    ('/srv/back\\040slash', 'ro'),
    ('/srv', 'noatime,context="system_u:object_r:x_t:s0 extra"'),
    ('/srv', 'defaults\nUUID=x /etc ext4 defaults 0 0'),
])
def test_fstab_reads_back_as_the_scheme_says(mount_point, options,
                                             tmp_path, monkeypatch):
    ctx = make_context(tmp_path)
    with_filesystem(ctx, 'fs-data', mount_point=mount_point,
                    mount_options=options)
    uuids = {'fs-root': 'root-uuid', 'fs-data': 'kept disk\nUUID=evil'}
    monkeypatch.setattr(ctx, 'uuid_of', uuids.get)
    path = tmp_path / 'fstab'
    path.write_text(target.fstab(ctx))
    found = findmnt(path)
    assert sorted(found) == ['/', mount_point]
    assert found[mount_point]['source'] == 'UUID=' + uuids['fs-data']
    assert found[mount_point]['options'] == options
    assert found['/']['source'] == 'UUID=root-uuid'


def test_plain_fstab_lines_are_unchanged(tmp_path, monkeypatch):
    ctx = make_context(tmp_path)
    monkeypatch.setattr(ctx, 'uuid_of', lambda fs_id: 'u-' + fs_id)
    assert target.fstab(ctx).splitlines()[1:] == [
        'UUID=u-fs-root / ext4 defaults 0 1',
        'UUID=u-fs-data /srv xfs defaults 0 2']


# -- mdadm.conf --------------------------------------------------------------

MDADM_BRIEF = ('mdadm', '--detail', '--brief')
GOOD = ('ARRAY /dev/md/md0 metadata=1.2 name=node:md0 '
        'UUID=3aa5ef1c:7b0c3a43:a1d52c51:f0b1cf6e')


@pytest.mark.parametrize('brief', [
    # a name with a newline (a kept disk's superblock, or a Fuel name)
    'ARRAY /dev/md/md0 metadata=1.2 name=node:x\nPROGRAM /tmp/evil '
    'UUID=3aa5ef1c:7b0c3a43:a1d52c51:f0b1cf6e',
    # a name with a blank that adds devices to the array
    'ARRAY /dev/md/md0 metadata=1.2 name=node:x devices=/dev/sdz '
    'UUID=3aa5ef1c:7b0c3a43:a1d52c51:f0b1cf6e',
    # a quote that joins words, a comment that hides the UUID
    'ARRAY /dev/md/md0 metadata=1.2 name="node:x UUID=1"',
    'ARRAY /dev/md/md0 metadata=1.2 name=n:x #UUID=1',
    'ARRAY /dev/md/md0 name=a name=b',
    'MAILADDR root@example.org',
])
def test_mdadm_conf_takes_one_array_line_of_known_words(brief, tmp_path):
    ctx = make_context(tmp_path, replies={MDADM_BRIEF: brief})
    with pytest.raises(errors.BadInput) as caught:
        target.write_mdadm_conf(ctx, ctx.scheme.of_type('raid'))
    assert str(caught.value).startswith('$.scheme.storage[5].name: ')
    assert not (tmp_path / 'target' / 'etc').exists()


def test_mdadm_conf_keeps_what_mdadm_says_of_a_plain_array(tmp_path):
    ctx = make_context(tmp_path, replies={MDADM_BRIEF: GOOD + '\n'})
    target.write_mdadm_conf(ctx, ctx.scheme.of_type('raid'))
    written = (tmp_path / 'target' / 'etc' / 'mdadm.conf').read_text()
    assert written.splitlines()[1:] == [GOOD]


# -- configdrive -------------------------------------------------------------

def test_configdrive_names_are_fixed_and_bad_text_is_bad_input(tmp_path):
    """Nothing of the configdrive becomes a path (the tree has fixed
    names); user_data JSON may carry a lone surrogate, which is no text a
    file can hold: BadInput, not a traceback, and the device untouched."""
    from fa_agent import configdrive
    device = tmp_path / 'cd.img'
    device.write_bytes(b'\0' * 1024 * 1024)
    spec = json.loads('{"user_data": "#!/bin/sh\\n\\ud800", '
                      '"meta_data": {"../../x": "y"}}')
    with pytest.raises(errors.BadInput, match='configdrive.user_data'):
        configdrive.write_configdrive(spec, str(device),
                                      agent_runner.Runner())
    assert device.read_bytes() == b'\0' * 1024 * 1024

