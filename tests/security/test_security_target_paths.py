"""Item 2 of issue 10 (paths stay inside the target), agent side: a
symlink, device node or fifo that an image plants in the target does not
redirect what the agent writes, reads or mounts there.

The target is a real directory; "outside" stands for the ramdisk. The
file tests need no root; the mount tests mount tmpfs for real (root
only, like tests/functional).
"""

import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

from fa_agent import errors
from fa_agent import input_format
from fa_agent import runner as agent_runner
from fa_agent import steps
from fa_agent.steps import bootloader
from fa_agent.steps import context
from fa_agent.steps import images
from fa_agent.steps import target

SCHEME = {'storage': [
    {'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
    {'type': 'partition', 'id': 'bios', 'device': 'd0', 'size': '1 MiB',
     'flags': ['bios_grub']},
    {'type': 'partition', 'id': 'root', 'device': 'd0', 'size': '4 GiB'},
    {'type': 'partition', 'id': 'var', 'device': 'd0', 'size': '1 GiB'},
    {'type': 'partition', 'id': 'srv', 'device': 'd0', 'size': '1 GiB'},
    {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
     'fstype': 'ext4', 'mount_point': '/'},
    {'type': 'filesystem', 'id': 'fs-var', 'device': 'var',
     'fstype': 'ext4', 'mount_point': '/var'},
    {'type': 'filesystem', 'id': 'fs-srv', 'device': 'srv',
     'fstype': 'xfs', 'mount_point': '/srv/data'},
], 'bootloader': {'mode': 'bios'}}
LSBLK = json.dumps({'blockdevices': [
    {'name': 'sda', 'path': '/dev/sda', 'size': 20 * 1024 ** 3,
     'type': 'disk', 'rota': False, 'ro': False}]})
SECRET = 'root:$6$ramdisk-secret:19000:0:99999:7:::\n'


class RealRun(agent_runner.RecordingRunner):
    """Commands are recorded, files are written (not a dry run)."""

    dry_run = False


@pytest.fixture
def places(tmp_path):
    """(target, outside): the target directory, and a directory of "the
    ramdisk" holding a file that must stay as it is."""
    root, outside = tmp_path / 'target', tmp_path / 'ramdisk'
    root.mkdir()
    outside.mkdir()
    (outside / 'shadow').write_text(SECRET)
    return root, outside


def make_context(root, runner=None):
    """The scheme planned on a scripted /dev/sda; ``runner`` (recording
    and writing, by default) runs what follows."""
    replies = {('lsblk', '--json', '--bytes', '--nodeps'): LSBLK,
               ('blkid',): 'UUID=1234\nTYPE=ext4\n'}
    req = input_format.parse(input_format.build(SCHEME))
    ctx = context.Context(req, RealRun(replies), target_dir=str(root))
    steps.run(ctx, steps.selected(['discover']))
    ctx.runner.commands.clear()
    if runner is not None:
        ctx.runner = ctx.probe = runner
    return ctx


def untouched(outside):
    assert sorted(os.listdir(outside)) == ['shadow']
    assert (outside / 'shadow').read_text() == SECRET


# -- writing and reading files ---------------------------------------------

def test_a_symlinked_directory_does_not_redirect_a_write(places):
    root, outside = places
    (root / 'etc').symlink_to(outside)
    ctx = make_context(root)
    with pytest.raises(errors.BadInput) as caught:
        ctx.write_file('/etc/fstab', 'UUID=x / ext4 defaults 0 1\n')
    assert str(caught.value) == (
        'the image plants a symlink at /etc in the target: refusing to '
        'write /etc/fstab through it')
    untouched(outside)


@pytest.mark.parametrize('link', ['absolute', 'relative'])
def test_a_symlinked_file_does_not_redirect_a_write(places, link):
    root, outside = places
    (root / 'etc').mkdir()
    (root / 'etc' / 'fstab').symlink_to(
        outside / 'shadow' if link == 'absolute' else '../../ramdisk/shadow')
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='a symlink at /etc/fstab'):
        target.run(ctx)
    untouched(outside)


def test_the_step_writes_fstab_into_the_real_directory(places):
    root, outside = places
    ctx = make_context(root)
    target.run(ctx)
    assert (root / 'etc' / 'fstab').read_text().startswith('# Written')
    assert stat.S_IMODE((root / 'etc').stat().st_mode) == 0o755
    untouched(outside)


def test_a_symlink_deeper_down_is_refused_too(places):
    root, outside = places
    (root / 'etc').mkdir()
    (root / 'etc' / 'mdadm').symlink_to(outside)
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='symlink at /etc/mdadm '):
        ctx.write_file('/etc/mdadm/mdadm.conf', 'ARRAY /dev/md/x\n')
    untouched(outside)


def test_a_fifo_or_device_in_place_of_a_file_is_refused(places):
    root, outside = places
    (root / 'etc').mkdir()
    os.mkfifo(root / 'etc' / 'fstab')  # open(2) for writing would hang
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='a fifo at /etc/fstab'):
        ctx.write_file('/etc/fstab', 'x\n')
    if os.geteuid() == 0:
        os.mknod(root / 'etc' / 'mdadm.conf', 0o600 | stat.S_IFCHR,
                 os.makedev(1, 3))
        with pytest.raises(errors.BadInput, match='a character device'):
            ctx.write_file('/etc/mdadm.conf', 'x\n')


def test_dotdot_cannot_leave_the_target(places):
    root, outside = places
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='would leave the target'):
        ctx.write_file('/../ramdisk/shadow', 'x\n')
    with pytest.raises(errors.BadInput, match='would leave the target'):
        ctx.in_target('/srv/../../ramdisk')
    untouched(outside)


def test_grub_defaults_are_not_read_through_a_symlink(places):
    """Read through a planted /etc/default/grub -> ramdisk file, the
    ramdisk's secret would be copied into the tenant's disk."""
    root, outside = places
    (root / 'etc' / 'default').mkdir(parents=True)
    (root / 'etc' / 'default' / 'grub').symlink_to(outside / 'shadow')
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='symlink at /etc/default/grub'):
        bootloader.write_kernel_params(ctx, 'console=ttyS0')
    untouched(outside)
    assert not any(SECRET in p.read_text() for p in root.rglob('*')
                   if p.is_file() and not p.is_symlink())


def test_a_hostile_tar_then_the_agent_writes_nothing_outside(places):
    """A tar image with etc -> (the ramdisk's directory), then a file
    below it: GNU tar delays absolute symlinks, and the fstab the target
    step writes afterwards is refused."""
    root, outside = places
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w') as archive:
        link = tarfile.TarInfo('etc')
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        archive.addfile(link)
        payload = b'planted\n'
        member = tarfile.TarInfo('etc/passwd')
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    from fa_agent.images import tar
    sink = tar.TarSink(str(root))
    sink.write(data.getvalue())
    try:
        sink.finish()
    except errors.CommandFailed:
        pass  # tar may say it could not put etc/passwd through the link
    untouched(outside)
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='symlink at /etc in'):
        target.run(ctx)
    untouched(outside)


# -- mounting ----------------------------------------------------------------

def test_a_mount_point_below_a_symlink_is_refused_before_mount(places):
    root, outside = places
    (root / 'srv').symlink_to(outside)
    ctx = make_context(root)
    with pytest.raises(errors.BadInput) as caught:
        target.mount_tree(ctx)
    assert str(caught.value) == (
        'the image plants a symlink at /srv in the target: refusing to '
        'mount /dev/sda4 on /srv/data through it')
    mounted = [c[-1] for c in ctx.runner.commands if c[0] == 'mount']
    assert mounted == [str(root), str(root / 'var')]
    untouched(outside)


def test_system_dirs_for_the_chroot_are_not_mounted_through_links(places):
    root, outside = places
    (root / 'proc').symlink_to(outside)
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='symlink at /proc '):
        target.mount_system_dirs(ctx)
    assert [c[-1] for c in ctx.runner.commands] == [str(root / 'dev')]


def test_files_below_a_mount_point_move_only_from_real_dirs(places):
    """An fs_image with /var -> (the ramdisk): cp would copy the
    ramdisk's files into the new /var, find would delete them."""
    root, outside = places
    (root / 'var').symlink_to(outside)
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='symlink at /var '):
        images.move_into_filesystems_below(ctx, ctx.scheme.by_id['fs-root'])
    assert not any(c[0] in ('cp', 'find') for c in ctx.runner.commands)
    untouched(outside)


def test_a_mount_point_that_is_a_file_is_refused(places):
    root, outside = places
    (root / 'var').write_text('not a directory\n')
    ctx = make_context(root)
    with pytest.raises(errors.BadInput, match='a file at /var in the target'
                       ' where a directory is needed'):
        target.mount_tree(ctx)


def test_a_dry_run_walks_nothing(places):
    root, outside = places
    (root / 'etc').symlink_to(outside)
    ctx = make_context(root, agent_runner.RecordingRunner(
        {('lsblk', '--json', '--bytes', '--nodeps'): LSBLK}))
    target.run(ctx)  # records only: the plan shows what a run would do
    assert ('#', 'write %s/etc/fstab:\n# Written by fa-agent from the '
            'partitioning scheme.\nUUID=<uuid of fs-root> / ext4 defaults '
            '0 1\nUUID=<uuid of fs-var> /var ext4 defaults 0 2\n'
            'UUID=<uuid of fs-srv> /srv/data xfs defaults 0 2'
            % root) in ctx.runner.commands
    untouched(outside)


def mounts():
    with open('/proc/self/mountinfo') as f:
        return [line.split()[4] for line in f]


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to mount')
def test_a_real_mount_over_a_planted_symlink_is_refused(places):
    """The ESP at /boot/efi, with /boot -> (the ramdisk): mounted through
    the link, the ESP (here a tmpfs) would cover the ramdisk's
    directory."""
    root, outside = places
    (root / 'boot').symlink_to(outside)
    ctx = make_context(root, agent_runner.Runner())
    try:
        with pytest.raises(errors.BadInput, match='symlink at /boot '):
            ctx.mount('tmpfs', ctx.in_target('/boot/efi'), fstype='tmpfs')
        assert str(outside) not in mounts()
        assert not (outside / 'efi').exists()
        # A real directory is mounted as before.
        (root / 'boot').unlink()
        ctx.mount('tmpfs', ctx.in_target('/boot/efi'), fstype='tmpfs')
        assert str(root / 'boot' / 'efi') in mounts()
    finally:
        assert ctx.unmount_all() == []
    assert str(root / 'boot' / 'efi') not in mounts()
    untouched(outside)


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to mount')
def test_a_symlink_inside_a_mounted_file_system_is_refused(places):
    """The link is on a file system mounted in the target (the image's
    root), not in the target directory itself."""
    root, outside = places
    subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', str(root)], check=True)
    ctx = make_context(root, agent_runner.Runner())
    try:
        (root / 'var').symlink_to(outside)
        with pytest.raises(errors.BadInput, match='symlink at /var '):
            ctx.mount('tmpfs', ctx.in_target('/var/lib'), fstype='tmpfs')
        assert str(outside / 'lib') not in mounts()
    finally:
        ctx.unmount_all()  # what a failing (unfixed) agent mounted
        subprocess.run(['umount', str(root)], check=True)
    untouched(outside)


def test_the_walk_itself_refuses_every_kind(places):
    from fa_agent.steps import safepath
    root, outside = places
    (root / 'a').symlink_to('.')  # even a link that stays inside
    with pytest.raises(errors.BadInput, match='symlink at /a in'):
        safepath.ensure_dir(str(root), '/a/b', 'test')
    assert safepath.read_file(str(root), '/missing/file') is None
    assert safepath.list_dir(str(root), '/missing', 'test') is None
