"""Issue 11 item 4: per-step seconds in the agent's status file, and the
bootloader step's one grub-mkconfig run without os-prober."""

import json
import time

import agent_fixtures as fx
from fa_agent import errors
from fa_agent import runner as agent_runner
from fa_agent import status as agent_status
from fa_agent import steps
from fa_agent.cmd import provision

import test_agent_run as run_helpers


def test_every_step_has_its_seconds(tmp_path, monkeypatch):
    real = steps.STEPS['target']

    def slow_target(ctx):
        time.sleep(0.3)
        real(ctx)
    monkeypatch.setitem(steps.STEPS, 'target', slow_target)
    code = provision.run(run_helpers.parse(tmp_path, fx.raid1_lvm()),
                         runner=run_helpers.recorder())
    assert code == 0
    state = run_helpers.status(tmp_path)
    seconds = state['step_seconds']
    assert sorted(seconds) == sorted(state['steps_done'])
    assert all(isinstance(v, float) and v >= 0 for v in seconds.values())
    assert 0.3 <= seconds['target'] < 5


def test_failed_step_counts_until_its_failure(tmp_path):
    rec = run_helpers.recorder(failing=('mkfs.xfs',))
    provision.run(run_helpers.parse(tmp_path, fx.raid1_lvm()), runner=rec)
    state = run_helpers.status(tmp_path)
    assert state['state'] == 'failed'
    assert 'filesystems' in state['step_seconds']
    assert 'filesystems' not in state['steps_done']
    assert 'images' not in state['step_seconds']


def test_status_file_keeps_step_seconds(tmp_path):
    path = tmp_path / 'status.json'
    status = agent_status.StatusFile(str(path))
    assert json.loads(path.read_text())['step_seconds'] == {}
    status.start_step('wipe')
    status.step_done('wipe', 1.234)
    status.start_step('partition')
    time.sleep(0.1)
    status.failed(errors.CommandFailed('boom'))
    document = json.loads(path.read_text())
    assert document['step_seconds']['wipe'] == 1.2
    assert 0.1 <= document['step_seconds']['partition'] < 5


class EnvRunner(agent_runner.RecordingRunner):
    """Records each command with the environment it was given."""

    def __init__(self, replies):
        super().__init__(replies)
        self.envs = []

    def execute(self, *cmd, **kwargs):
        self.envs.append((cmd, kwargs.get('env')))
        return super().execute(*cmd, **kwargs)


def test_grub_mkconfig_runs_once_without_os_prober():
    ctx = fx.make_context(fx.raid1_lvm())
    ctx.runner = EnvRunner(ctx.runner.replies)
    steps.run(ctx, steps.selected(steps.ORDER))
    mkconfig = [(c, env) for c, env in ctx.runner.envs
                if any('mkconfig' in w for w in c)]
    assert mkconfig == [(('chroot', '/target', 'grub-mkconfig', '-o',
                          '/boot/grub/grub.cfg'),
                         {'GRUB_DISABLE_OS_PROBER': 'true'})]
    # BIOS: one grub-install per RAID member; UEFI: the ESP twice.
    installs = [c for c, _env in ctx.runner.envs
                if c[2:3] == ('grub-install',)]
    assert [c[3:] for c in installs] == [
        ('--target=i386-pc', '/dev/sda'), ('--target=i386-pc', '/dev/sdb'),
        ('--target=x86_64-efi', '--efi-directory=/boot/efi', '--no-nvram'),
        ('--target=x86_64-efi', '--efi-directory=/boot/efi', '--no-nvram',
         '--removable')]
