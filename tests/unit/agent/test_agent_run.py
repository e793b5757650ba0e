"""The provision command around the steps: input, status file, exit
codes, cleanup after a failure (commands recorded, disks scripted)."""

import json
import shlex

import agent_fixtures as fx
from fa_agent import conf as agent_conf
from fa_agent import errors
from fa_agent import input_format
from fa_agent import runner as agent_runner
from fa_agent.cmd import provision


def parse(tmp_path, scheme=None, document=None, extra=()):
    path = tmp_path / 'provision.json'
    if document is None:
        document = input_format.build(scheme, boot_mode='bios')
    path.write_text(json.dumps(document))
    conf = agent_conf.new_conf()
    conf(['--input-data-file', str(path),
          '--status-file', str(tmp_path / 'status.json'),
          '--log-file', str(tmp_path / 'provision.log'),
          '--target-dir', '/target'] + list(extra),
         default_config_files=[])
    return conf


def recorder(failing=None):
    replies = {fx.LSBLK_DISKS: fx.lsblk(('/dev/sda', 20), ('/dev/sdb', 20))}
    if failing:
        replies[failing] = errors.CommandFailed('command failed: %s'
                                                % ' '.join(failing))
    return agent_runner.RecordingRunner(replies)


def status(tmp_path):
    return json.loads((tmp_path / 'status.json').read_text())


def test_success_writes_the_result(tmp_path):
    rec = recorder()
    code = provision.run(parse(tmp_path, fx.one_disk_gpt()), runner=rec)
    assert code == 0
    state = status(tmp_path)
    assert state['state'] == 'succeeded' and state['exit_code'] == 0
    assert state['steps_done'][0] == 'discover'
    assert state['steps_done'][-1] == 'cleanup'
    assert state['result']['devices']['root'] == {
        'type': 'partition', 'path': '/dev/sda2', 'number': 2,
        'start_mib': 2, 'size_mib': 10240}


def test_failing_mkfs_leaves_status_and_cleans_up(tmp_path):
    rec = recorder(failing=('mkfs.xfs',))
    code = provision.run(parse(tmp_path, fx.raid1_lvm()), runner=rec)
    assert code == errors.CommandFailed.exit_code == 13
    state = status(tmp_path)
    assert state['state'] == 'failed' and state['exit_code'] == 13
    assert state['step'] == 'filesystems'
    assert state['error']['class'] == 'command_failed'
    assert 'mkfs.xfs' in state['error']['message']
    tail = [shlex.join(c) for c in fx.commands(rec)][-4:]
    assert tail == ['mkfs.xfs -f /dev/vg0/var', 'vgchange -an vg0',
                    'mdadm --stop /dev/md/md0', 'sync']


def test_failing_bootloader_unmounts_everything(tmp_path):
    rec = recorder(failing=('chroot', '/target', 'grub-install'))
    code = provision.run(parse(tmp_path, fx.one_disk_gpt()), runner=rec)
    assert code == errors.BootloaderFailed.exit_code == 16
    assert status(tmp_path)['error']['class'] == 'bootloader'
    cmds = [shlex.join(c) for c in fx.commands(rec)]
    failed_at = cmds.index(
        'chroot /target grub-install --target=i386-pc /dev/sda')
    assert cmds[failed_at + 1:] == [
        'umount /target/run', 'umount /target/sys', 'umount /target/proc',
        'umount /target/dev', 'umount /target/srv', 'umount /target', 'sync']


def test_bad_scheme_exits_10_before_any_command(tmp_path):
    scheme = fx.one_disk_gpt()
    document = input_format.build(scheme)
    document['scheme']['storage'][1]['size'] = '1 parsec'
    rec = recorder()
    code = provision.run(parse(tmp_path, document=document), runner=rec)
    assert code == errors.BadInput.exit_code == 10
    assert rec.commands == []
    state = status(tmp_path)
    assert state['error']['class'] == 'bad_input'
    assert '$.scheme.storage[1].size' in state['error']['message']


def test_missing_input_file_exits_10(tmp_path):
    conf = parse(tmp_path, fx.one_disk_gpt())
    conf.set_override('input_data_file', str(tmp_path / 'nope.json'))
    rec = recorder()
    assert provision.run(conf, runner=rec) == 10
    assert rec.commands == []


def test_unknown_data_driver_and_step_exit_10(tmp_path):
    rec = recorder()
    conf = parse(tmp_path, fx.one_disk_gpt(), extra=['--data-driver', 'xx'])
    assert provision.run(conf, runner=rec) == 10
    assert "'xx'" in status(tmp_path)['error']['message']
    conf = parse(tmp_path, fx.one_disk_gpt(), extra=['--steps', 'wipe,dig'])
    assert provision.run(conf, runner=rec) == 10
    assert rec.commands == []


def test_disk_not_found_and_does_not_fit(tmp_path):
    scheme = fx.one_disk_gpt()
    scheme['storage'][0]['match'] = {'name': '/dev/sdz'}
    assert provision.run(parse(tmp_path, scheme), runner=recorder()) == 11
    scheme = fx.one_disk_gpt()
    scheme['storage'][2]['size'] = '30 GiB'
    assert provision.run(parse(tmp_path, scheme), runner=recorder()) == 12
    assert status(tmp_path)['error']['class'] == 'does_not_fit'


def test_command_line_error_is_bad_input(capsys):
    assert provision.main(['--no-such-option']) == 10


def test_dry_run_prints_the_plan(tmp_path, capsys):
    conf = parse(tmp_path, fx.one_disk_gpt(), extra=['--dry-run'])
    rec = recorder()
    assert provision.run(conf, runner=rec) == 0
    out = capsys.readouterr().out
    assert '/dev/sda MiB 11266..20479' in out
    assert '  1 lsblk --json' in out
    assert 'mkfs.xfs -f -L data /dev/sda4' in out
    assert not (tmp_path / 'status.json').exists()


def test_erase_request_only_wipes_the_disks_it_names(tmp_path):
    document = input_format.build_erase(
        [{'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}}])
    rec = recorder()
    code = provision.run(parse(tmp_path, document=document), runner=rec)
    assert code == 0
    assert status(tmp_path)['steps_done'] == ['discover', 'wipe', 'erase',
                                            'cleanup']
    written = [c for c in rec.commands
               if c[0] in ('wipefs', 'sgdisk', 'mdadm', 'parted', 'mkfs.ext4')]
    assert ('sgdisk', '--zap-all', '/dev/sda') in written
    assert not [c for c in written if '/dev/sdb' in c]
    assert not [c for c in written if c[0] in ('parted', 'mkfs.ext4')]


def test_erase_request_with_other_objects_exits_10(tmp_path):
    document = input_format.build_erase(
        [{'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}}])
    document['scheme']['storage'].append(
        {'type': 'partition', 'id': 'p1', 'device': 'd0', 'size': '1 GiB'})
    rec = recorder()
    code = provision.run(parse(tmp_path, document=document), runner=rec)
    assert code == 10
    assert rec.commands == []
    assert '$.scheme.storage[1].type' in status(tmp_path)['error']['message']
