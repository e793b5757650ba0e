"""Small parts of the agent: status file, parsers, settle retries,
kernel parameters, configdrive placement."""

import json
import os
import subprocess
import types

import pytest

import agent_fixtures as fx
from fa_agent import discovery
from fa_agent import errors
from fa_agent import runner as agent_runner
from fa_agent import status as agent_status
from fa_agent import steps
from fa_agent.scheme import model
from fa_agent.steps import bootloader
from fa_agent.steps import target


def test_status_file_is_replaced_whole(tmp_path):
    path = tmp_path / 'run' / 'status.json'
    status = agent_status.StatusFile(str(path))
    status.start_step('wipe')
    status.progress('wiping d0', 50.0)
    first = json.loads(path.read_text())
    assert first['state'] == 'running' and first['pid'] == os.getpid()
    assert first['progress'] == {'step': 'wipe', 'percent': 50.0,
                                 'message': 'wiping d0'}
    status.failed(errors.DiskNotFound('no disk'))
    final = json.loads(path.read_text())
    assert final['error'] == {'class': 'disk_not_found', 'message': 'no disk'}
    assert final['exit_code'] == 11
    assert os.listdir(path.parent) == ['status.json']  # no temp files left


def test_parted_table_parsing():
    out = fx.parted_print('/dev/sda', 100, 'msdos', [(1, 10, 'ext4'),
                                                     (10, 99, '')])
    rec = agent_runner.RecordingRunner({fx.parted_print_cmd('/dev/sda'): out})
    table = discovery.table(rec, '/dev/sda')
    assert table.label == 'msdos'
    assert table.by_number(2) == discovery.ExistingPartition(
        2, 10 * 1024 ** 2, 99 * 1024 ** 2 - 1, 89 * 1024 ** 2)
    assert discovery.table(agent_runner.RecordingRunner(),
                           '/dev/sdb').label == 'unknown'


class SlowKernel(agent_runner.RecordingRunner):
    """A real-run runner whose kernel shows the new table only on the
    third look, as a busy disk does."""

    dry_run = False

    def __init__(self):
        super().__init__()
        self.looks = 0

    def execute(self, *cmd, **kwargs):
        super().execute(*cmd, **kwargs)
        if cmd[:2] == ('lsblk', '--json') and 'PATH,START,SIZE,TYPE' in cmd:
            self.looks += 1
            parts = [{'path': '/dev/sda1', 'start': 2048,
                      'size': 1024 ** 2, 'type': 'part'}]
            return json.dumps({'blockdevices': parts if self.looks > 2
                               else []}), ''
        return '', ''


def test_settle_retries_until_the_kernel_agrees(monkeypatch):
    monkeypatch.setattr('time.sleep', lambda s: None)
    ctx = fx.make_context(fx.one_disk_gpt())
    ctx.runner = SlowKernel()
    ctx.settle('/dev/sda', expected=[(1024 ** 2, 1024 ** 2)])
    assert ctx.runner.looks == 3
    assert [c[0] for c in ctx.runner.commands].count('partprobe') == 3


def test_settle_gives_up_with_command_failed(monkeypatch):
    monkeypatch.setattr('time.sleep', lambda s: None)
    ctx = fx.make_context(fx.one_disk_gpt())
    ctx.runner = SlowKernel()
    ctx.settle_timeout = 0
    with pytest.raises(errors.CommandFailed, match='still shows'):
        ctx.settle('/dev/sda', expected=[(0, 1)])


def grub_cmdline(text):
    """GRUB_CMDLINE_LINUX after sourcing ``text`` as grub-mkconfig does."""
    return subprocess.run(
        ['sh', '-c', '. /dev/stdin; printf %s "$GRUB_CMDLINE_LINUX"'],
        input=text, capture_output=True, text=True, check=True,
        env={'PATH': os.environ['PATH']}).stdout


def test_kernel_params_join_the_existing_line():
    text = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet"\n'
    result = bootloader.with_kernel_params(text, 'console=ttyS0,115200')
    assert result.startswith(text)  # the image's lines stay as they were
    assert grub_cmdline(result) == 'quiet console=ttyS0,115200'
    assert grub_cmdline(bootloader.with_kernel_params('', 'nomodeset')) == \
        'nomodeset'


def test_kernel_params_are_replaced_when_the_step_runs_again():
    once = bootloader.with_kernel_params('GRUB_CMDLINE_LINUX="quiet"', 'a=1')
    twice = bootloader.with_kernel_params(once, 'b=2')
    assert grub_cmdline(twice) == 'quiet b=2'
    assert twice.count(bootloader.MARK) == 1


def test_kernel_params_from_input_and_scheme_reach_grub():
    scheme = fx.one_disk_gpt()
    scheme['bootloader']['kernel_params'] = 'net.ifnames=0'
    rec = fx.run_scheme(scheme, kernel_params='console=ttyS0')
    notes = [c[1] for c in rec.commands if c[0] == '#']
    grub = [n for n in notes if n.startswith('write /target/etc/default/grub')]
    assert len(grub) == 1
    assert grub_cmdline(grub[0].split('\n', 1)[1]) == \
        'console=ttyS0 net.ifnames=0'


def test_configdrive_partition_after_a_whole_disk_image():
    scheme = {'storage': [{'type': 'disk', 'id': 'd0',
                           'match': {'name': '/dev/sda'}}],
              'images': [{'url': 'http://x/disk.qcow2', 'format': 'qcow2',
                          'target': 'd0'}],
              'configdrive': {'device': 'd0', 'size': '64 MiB'}}
    rec = fx.run_scheme(scheme, names=['images', 'configdrive'],
                        configdrive={'meta_data': {'uuid': 'x'}})
    cmds = fx.commands(rec)
    assert cmds[3:] == [
        ('blkid', '-p', '-o', 'export', '/dev/sda'),
        ('sgdisk', '--move-second-header', '/dev/sda'),
        ('sgdisk', '--new=0:20415M:+64M', '--typecode=0:0700',
         '--change-name=0:config-2', '/dev/sda'),
        ('partprobe', '/dev/sda'), ('udevadm', 'settle', '--timeout=60'),
        ('sync',)]
    notes = [c[1] for c in rec.commands if c[0] == '#']
    assert notes[-1] == ('writing the configdrive to <partition of /dev/sda '
                         'at 20415 MiB>')


def test_no_configdrive_given_adds_no_partition():
    scheme = {'storage': [{'type': 'disk', 'id': 'd0',
                           'match': {'name': '/dev/sda'}}],
              'images': [{'url': 'http://x/disk.raw', 'format': 'raw',
                          'target': 'd0'}],
              'configdrive': {'device': 'd0'}}
    rec = fx.run_scheme(scheme, names=['configdrive'])
    assert not any(c[0] in ('sgdisk', 'parted') for c in rec.commands)


def test_step_order_is_fixed():
    assert steps.ORDER == (
        'discover', 'verify', 'wipe', 'erase', 'partition', 'raid', 'lvm',
        'filesystems', 'images', 'configdrive', 'target', 'bootloader',
        'kexec', 'cleanup')


def test_lab_knows_the_agent_steps():
    # The lab orders fa_agent_step_seconds by its own copy of the order.
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..', 'tools'))
    from lab import deploy as lab_deploy
    assert lab_deploy.AGENT_STEPS == steps.ORDER


def _fstab_options(scheme_document):
    ctx = types.SimpleNamespace(
        scheme=model.Scheme.from_dict(scheme_document), dry_run=False,
        uuid_of=lambda fs_id: 'u-' + fs_id)
    return {line.split()[1]: line.split()[3]
            for line in target.fstab(ctx).splitlines()[1:]}


def test_a_second_esp_makes_a_missing_boot_efi_no_reason_to_stop():
    # One ESP file system per RAID1 member (the lab's layout): the
    # firmware starts GRUB from whichever disk is left, so /boot/efi must
    # not hold the boot.
    scheme = fx.raid1_lvm()
    assert _fstab_options(scheme)['/boot/efi'] == 'defaults'
    scheme['storage'].append({'type': 'filesystem', 'id': 'fs-esp1',
                              'device': 'd1-esp', 'fstype': 'vfat'})
    options = _fstab_options(scheme)
    assert options['/boot/efi'] == 'defaults,nofail'
    assert options['/'] == 'defaults'
    # The scheme's own options stay as they are.
    fs_esp = next(o for o in scheme['storage'] if o['id'] == 'fs-esp')
    fs_esp['mount_options'] = 'umask=0077'
    assert _fstab_options(scheme)['/boot/efi'] == 'umask=0077'
