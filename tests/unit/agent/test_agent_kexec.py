"""The agent's kexec step (issue 11 item 3): which kernel, initramfs and
command line it loads, that it never reads through a symlink the image
planted, and that every failure is reported instead of failing the
deploy. The target is a real directory; the commands are recorded (a
real ``kexec -l`` would load a kernel into the machine running the
tests)."""

import os

import pytest

import agent_fixtures as fx
from fa_agent import errors
from fa_agent import input_format
from fa_agent import runner as agent_runner
from fa_agent.steps import context
from fa_agent.steps import kexec

DEBIAN_CFG = """\
set default="0"
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'x' {
	load_video
	insmod ext2
	search --no-floppy --fs-uuid --set=root 1234
	echo	'Loading Linux 6.1.0-27-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-27-amd64 root=/dev/mapper/system-root \
ro  console=ttyS0,115200 $vt_handoff
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-6.1.0-27-amd64
}
submenu 'Advanced options for Debian GNU/Linux' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-26-amd64' {
		linux	/boot/vmlinuz-6.1.0-26-amd64 root=/dev/sda1 ro
		initrd	/boot/initrd.img-6.1.0-26-amd64
	}
}
"""


class LiveRecorder(agent_runner.RecordingRunner):
    """Records commands but lets the step read the real target."""

    dry_run = False


def make_ctx(tmp_path, scheme=None, want=True, replies=None):
    scheme = scheme or fx.one_disk_gpt()
    request = input_format.parse(input_format.build(scheme, kexec=want))
    ctx = context.Context(request, LiveRecorder(replies or {}),
                          target_dir=str(tmp_path / 'target'))
    ctx.mounts.append(ctx.target_dir)  # as if mount_tree had run
    return ctx


def write(root, path, data):
    full = os.path.join(root, path.lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'wb') as f:
        f.write(data)


@pytest.fixture
def copy_dir(tmp_path, monkeypatch):
    directory = str(tmp_path / 'copies')
    monkeypatch.setattr(kexec, 'COPY_DIR', directory)
    return directory


def installed(ctx, cfg=DEBIAN_CFG, boot=''):
    write(ctx.target_dir, boot + '/grub/grub.cfg'
          if boot else '/boot/grub/grub.cfg', cfg.encode())
    write(ctx.target_dir, (boot or '/boot') + '/vmlinuz-6.1.0-27-amd64',
          b'KERNEL')
    write(ctx.target_dir, (boot or '/boot') + '/initrd.img-6.1.0-27-amd64',
          b'INITRD')


def kexec_commands(ctx):
    return [c for c in ctx.runner.commands if c[0] == 'kexec']


def test_first_entry_of_grub_cfg_without_grub_variables():
    entry = kexec.parse_grub_cfg(DEBIAN_CFG)
    assert entry == {
        'kernel': '/boot/vmlinuz-6.1.0-27-amd64',
        'initrd': '/boot/initrd.img-6.1.0-27-amd64',
        'cmdline': 'root=/dev/mapper/system-root ro console=ttyS0,115200'}


def test_loads_the_installed_kernel(tmp_path, copy_dir):
    ctx = make_ctx(tmp_path)
    installed(ctx)
    kexec.run(ctx)
    assert kexec_commands(ctx) == [(
        'kexec', '-s', '-l', os.path.join(copy_dir, 'kernel'),
        '--initrd=' + os.path.join(copy_dir, 'initrd'),
        '--command-line=root=/dev/mapper/system-root ro '
        'console=ttyS0,115200')]
    with open(os.path.join(copy_dir, 'kernel'), 'rb') as f:
        assert f.read() == b'KERNEL'
    assert ctx.kexec['loaded'] is True


def test_falls_back_to_the_classic_syscall(tmp_path, copy_dir):
    ctx = make_ctx(tmp_path, replies={('kexec', '-s'): errors.CommandFailed(
        'kexec_file_load: Operation not permitted')})
    installed(ctx)
    kexec.run(ctx)
    assert [c[:3] for c in kexec_commands(ctx)] == [
        ('kexec', '-s', '-l'), ('kexec', '-l', os.path.join(copy_dir,
                                                             'kernel'))]
    assert ctx.kexec['loaded'] is True


def test_separate_boot_file_system(tmp_path, copy_dir):
    scheme = fx.one_disk_gpt()
    scheme['storage'][1:1] = [{'type': 'partition', 'id': 'boot',
                               'device': 'd0', 'size': '512 MiB'}]
    scheme['storage'].append({'type': 'filesystem', 'id': 'fs-boot',
                              'device': 'boot', 'fstype': 'ext4',
                              'mount_point': '/boot'})
    ctx = make_ctx(tmp_path, scheme)
    installed(ctx, DEBIAN_CFG.replace('/boot/vmlinuz', '/vmlinuz')
              .replace('/boot/initrd', '/initrd'))
    kexec.run(ctx)
    assert ctx.kexec['loaded'] is True, ctx.kexec


def test_a_kernel_symlink_is_not_followed(tmp_path, copy_dir):
    ctx = make_ctx(tmp_path)
    installed(ctx)
    kernel = os.path.join(ctx.target_dir, 'boot/vmlinuz-6.1.0-27-amd64')
    os.unlink(kernel)
    secret = tmp_path / 'ramdisk-secret'
    secret.write_bytes(b'SECRET')
    os.symlink(str(secret), kernel)
    kexec.run(ctx)
    assert ctx.kexec['loaded'] is False
    assert 'symlink' in ctx.kexec['reason']
    assert kexec_commands(ctx) == []
    assert not os.path.exists(os.path.join(copy_dir, 'kernel'))


@pytest.mark.parametrize('cfg, reason', [
    (None, 'no grub.cfg'),
    ('menuentry x {\n}\n', 'has no linux line'),
    ('linux /boot/vmlinuz-6.1.0-27-amd64 ' + 'x' * 3000 + '\n',
     'longer than 2048'),
])
def test_nothing_to_load_is_reported_not_raised(tmp_path, copy_dir, cfg,
                                                reason):
    ctx = make_ctx(tmp_path)
    if cfg is not None:
        installed(ctx, cfg)
    kexec.run(ctx)
    assert ctx.kexec['loaded'] is False
    assert reason in ctx.kexec['reason']
    assert kexec_commands(ctx) == []


def test_not_asked_for(tmp_path, copy_dir):
    ctx = make_ctx(tmp_path, want=False)
    installed(ctx)
    kexec.run(ctx)
    assert ctx.kexec is None and kexec_commands(ctx) == []


def test_input_kexec_must_be_boolean():
    document = input_format.build(fx.one_disk_gpt())
    document['kexec'] = 'yes'
    with pytest.raises(input_format.InputError, match=r'\$\.kexec'):
        input_format.parse(document)
