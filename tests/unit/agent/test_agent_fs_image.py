"""After an fs_image is written: its file system gets a UUID of its own,
and its files below the mount points of the scheme's other file systems
(a separate /var) move into them. Both were found missing when the QEMU
test first booted a system installed this way (tests/qemu).

Commands are recorded, not run; the target directory is real, since
whether there is anything to move depends on what the image holds.
"""

import agent_fixtures as fx
from fa_agent import runner as agent_runner
from fa_agent.steps import context
from fa_agent.steps import discover
from fa_agent.steps import images


class RealRun(agent_runner.RecordingRunner):
    """Records like a dry run, but lets the steps act as in a real one."""

    dry_run = False


def real_context(tmp_path, replies=None):
    replies = dict(replies or {})
    replies.setdefault(fx.LSBLK_DISKS, fx.lsblk(('/dev/sda', 20),
                                                ('/dev/sdb', 20)))
    ctx = context.Context(fx.request(fx.raid1_lvm()), RealRun(replies),
                          target_dir=str(tmp_path / 'target'))
    discover.run(ctx)
    ctx.runner.commands.clear()
    return ctx


def test_image_files_below_var_move_into_the_new_var(tmp_path):
    ctx = real_context(tmp_path)
    target = tmp_path / 'target'
    (target / 'var' / 'lib' / 'dpkg').mkdir(parents=True)
    (target / 'var' / 'lib' / 'dpkg' / 'status').write_text('Package: x\n')
    (target / 'boot' / 'efi').mkdir(parents=True)  # empty: nothing to move
    images.move_into_filesystems_below(ctx, ctx.scheme.by_id['fs-root'])
    staging = str(tmp_path / 'target.below')
    assert [' '.join(c) for c in ctx.runner.commands] == [
        'mount -t ext4 /dev/vg0/root %s' % target,
        'mount -t xfs /dev/vg0/var %s' % staging,
        'cp -a %s/var/. %s/' % (target, staging),
        'find %s/var -mindepth 1 -delete' % target,
        'umount %s' % staging,
        'umount %s' % target]
    assert ctx.mounts == []


def test_nothing_moves_into_kept_or_image_file_systems(tmp_path):
    ctx = real_context(tmp_path)
    scheme = ctx.scheme
    assert [f.id for f in images.filesystems_below(
        ctx, scheme.by_id['fs-root'])] == ['fs-esp', 'fs-var']
    assert images.filesystems_below(ctx, scheme.by_id['fs-var']) == []
    assert images.filesystems_below(ctx, None) == []


def test_fs_image_gets_a_new_uuid_after_the_type_check(tmp_path):
    blkid = fx.blkid_cmd('/dev/vg0/root')
    ctx = real_context(tmp_path, {blkid: 'TYPE=ext4\nUUID=new-uuid\n'})
    fs = images._check_filesystem(ctx, ctx.scheme.by_id['lv-root'],
                                  '/dev/vg0/root')
    assert fs.id == 'fs-root'
    assert ctx.runner.commands == [
        blkid, ('tune2fs', '-U', 'random', '/dev/vg0/root'), blkid]
    assert ctx.devices['fs-root']['uuid'] == 'new-uuid'
