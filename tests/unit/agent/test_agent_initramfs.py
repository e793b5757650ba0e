"""Issue 11 item 4: the target step keeps the image's initramfs when it
already assembles the root's RAID and LVM, and says why it rebuilds
otherwise. The initramfs files are real: trees packed with the real
``cpio -H newc`` and ``gzip``/``zstd``/``xz``, an uncompressed early
archive in front as Debian's microcode hooks make them."""

import os
import shutil
import subprocess

import agent_fixtures as fx
import pytest
from fa_agent import initramfs
from fa_agent import runner as agent_runner
from fa_agent.steps import context
from fa_agent.steps import initramfs_check
from fa_agent.steps import target

KERNEL = '6.1.0-99-amd64'
MODULES = 'usr/lib/modules/%s/kernel/drivers/md' % KERNEL
# The image's mdadm.conf as mkconf writes it on a machine without arrays.
MKCONF = ('# mdadm.conf\n#DEVICE partitions containers\n'
          'HOMEHOST <system>\nMAILADDR root\n'
          '# definitions of existing MD arrays\n')

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ('cpio', 'gzip', 'zstd', 'xz')),
    reason='cpio, gzip, zstd and xz are needed')


def debian_tree(root, mdadm=True, lvm=True, mdadm_conf=MKCONF,
                builtin=''):
    """An initramfs-tools tree on merged /usr: what update-initramfs
    leaves with the mdadm and lvm2 hooks (names only; files are stubs)."""
    files = {'init': '#!/bin/sh\n', 'conf/initramfs.conf': 'MODULES=most\n',
             'scripts/local': '', 'scripts/functions': '',
             'usr/sbin/modprobe': '',
             'usr/lib/modules/%s/modules.builtin' % KERNEL: builtin,
             'usr/lib/modules/%s/kernel/drivers/virtio/virtio_blk.ko.zst'
             % KERNEL: 'x'}
    if mdadm:
        files.update({'usr/sbin/mdadm': 'ELF', 'scripts/local-block/mdadm':
                      '', MODULES + '/md-mod.ko.zst': 'x',
                      MODULES + '/raid1.ko.zst': 'x',
                      MODULES + '/raid456.ko.zst': 'x'})
        if mdadm_conf is not None:
            files['etc/mdadm/mdadm.conf'] = mdadm_conf
    if lvm:
        files.update({'usr/sbin/lvm': 'ELF', MODULES + '/dm-mod.ko.zst': 'x',
                      'usr/lib/udev/rules.d/69-lvm.rules': '',
                      'etc/lvm/lvm.conf': ''})
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
    for link, to in (('sbin', 'usr/sbin'), ('lib', 'usr/lib'),
                     ('bin', 'usr/bin')):
        os.symlink(to, os.path.join(root, link))
    return root


def cpio(tree):
    names = subprocess.run(['find', '.', '-print0'], cwd=tree, check=True,
                           capture_output=True).stdout
    return subprocess.run(['cpio', '--quiet', '--null', '-o', '-H', 'newc'],
                          cwd=tree, input=names, check=True,
                          capture_output=True).stdout


def compressed(data, tool):
    return subprocess.run([tool, '-c', '-q'] if tool != 'zstd' else
                          ['zstd', '-c', '-q', '-3'], input=data,
                          check=True, capture_output=True).stdout


def early_microcode(tmp_path):
    tree = tmp_path / 'early'
    (tree / 'kernel/x86/microcode').mkdir(parents=True)
    (tree / 'kernel/x86/microcode/GenuineIntel.bin').write_bytes(b'\1' * 999)
    data = cpio(tree)
    return data + b'\0' * (-len(data) % 512)  # padded, as the hooks do


def target_with(tmp_path, data, name='initrd.img-' + KERNEL):
    root = tmp_path / 'target'
    (root / 'boot').mkdir(parents=True, exist_ok=True)
    (root / 'boot' / name).write_bytes(data)
    return str(root)


def ctx_for(target_dir, scheme=None):
    """A real run's Context (not a dry run) on the target directory."""
    runner = agent_runner.RecordingRunner()
    runner.dry_run = False
    return context.Context(fx.request(scheme or fx.raid1_lvm()), runner,
                           target_dir=target_dir)


def image(tmp_path, tool='zstd', early=False, **tree):
    data = compressed(cpio(debian_tree(str(tmp_path / 'tree'), **tree)),
                      tool)
    return (early_microcode(tmp_path) if early else b'') + data


@needs_tools
@pytest.mark.parametrize('tool,early', [('zstd', True), ('gzip', False),
                                        ('xz', True)])
def test_reader_lists_a_real_initramfs(tmp_path, tool, early):
    data = image(tmp_path, tool, early)
    contents = initramfs.read([data[i:i + 1000]
                               for i in range(0, len(data), 1000)],
                              initramfs_check.wanted)
    assert contents.has('sbin/mdadm')  # through sbin -> usr/sbin
    assert contents.resolve('lib/udev/rules.d/69-lvm.rules') == \
        'usr/lib/udev/rules.d/69-lvm.rules'
    assert contents.text('etc/mdadm/mdadm.conf') == MKCONF
    assert not contents.has('sbin/nothing')
    assert ('kernel/x86/microcode/GenuineIntel.bin' in contents.names) \
        == early
    assert initramfs_check.problems(contents, {1}, True) == []


@needs_tools
def test_assembling_initramfs_is_kept(tmp_path):
    ctx = ctx_for(target_with(tmp_path, image(tmp_path, early=True)))
    assert initramfs_check.decide(ctx) == (
        False, 'initramfs of %s already assembles RAID and LVM: not '
        'rebuilt' % KERNEL)


@needs_tools
@pytest.mark.parametrize('tree,reason', [
    (dict(mdadm=False), 'no mdadm, no mdadm boot script (scripts/'
     'local-block/mdadm), no md-mod module, no raid1 module'),
    (dict(lvm=False), 'no lvm, no LVM activation (lvm2\'s udev rule '
     '69-lvm.rules), no dm-mod module'),
    (dict(mdadm_conf=MKCONF + 'ARRAY /dev/md/0 metadata=1.2 UUID=1:2:3:4 '
          'name=build:0\n'), 'its etc/mdadm/mdadm.conf lists arrays (ARRAY '
     '/dev/md/0), so mdadm assembles only those'),
    (dict(mdadm_conf='AUTO +imsm -all\n'), 'its etc/mdadm/mdadm.conf '
     'restricts auto-assembly (AUTO +imsm -all)'),
    (dict(mdadm_conf='DEVICE /dev/sd*\n'), 'its etc/mdadm/mdadm.conf limits '
     'the devices mdadm scans (DEVICE /dev/sd*)'),
])
def test_initramfs_that_cannot_assemble_is_rebuilt(tmp_path, tree, reason):
    ctx = ctx_for(target_with(tmp_path, image(tmp_path, **tree)))
    assert initramfs_check.decide(ctx) == (
        True, '/boot/initrd.img-%s: %s' % (KERNEL, reason))


@needs_tools
def test_built_in_modules_count(tmp_path):
    data = image(tmp_path, lvm=False, builtin='kernel/drivers/md/md-mod.ko\n')
    contents = initramfs.read([data], initramfs_check.wanted)
    contents.names -= {MODULES + '/md-mod.ko.zst'}
    assert initramfs_check.problems(contents, {1}, False) == []
    assert initramfs_check.problems(contents, {10}, False) == [
        'no raid10 module']


@needs_tools
def test_root_on_plain_raid_needs_no_lvm(tmp_path):
    scheme = fx.raid1_lvm()
    for obj in scheme['storage']:
        if obj['id'] == 'fs-root':
            obj['device'] = 'md0'
    scheme['storage'] = [o for o in scheme['storage']
                         if o['type'] not in ('volume_group',
                                              'logical_volume')
                         and o['id'] not in ('fs-var', 'fs-swap')]
    ctx = ctx_for(target_with(tmp_path, image(tmp_path, lvm=False)), scheme)
    assert initramfs_check.decide(ctx) == (
        False, 'initramfs of %s already assembles RAID: not rebuilt'
        % KERNEL)


def test_unreadable_or_missing_initramfs_is_rebuilt(tmp_path):
    lz4 = b'\x02\x21\x4c\x18' + b'\0' * 64
    ctx = ctx_for(target_with(tmp_path, lz4))
    assert initramfs_check.decide(ctx) == (
        True, '/boot/initrd.img-%s: cannot read it: lz4-compressed data, '
        'which the agent does not read' % KERNEL)
    os.unlink(os.path.join(ctx.target_dir, 'boot', 'initrd.img-' + KERNEL))
    assert initramfs_check.decide(ctx) == (
        True, 'the image has no initramfs in /boot')


@needs_tools
def test_truncated_or_planted_initramfs_is_rebuilt(tmp_path):
    data = image(tmp_path, 'gzip')
    ctx = ctx_for(target_with(tmp_path, data[:len(data) // 2]))
    rebuild, reason = initramfs_check.decide(ctx)
    assert rebuild and 'cannot read it' in reason and 'truncated' in reason
    boot = os.path.join(ctx.target_dir, 'boot')
    os.unlink(os.path.join(boot, 'initrd.img-' + KERNEL))
    os.symlink('/dev/sda', os.path.join(boot, 'initrd.img-' + KERNEL))
    rebuild, reason = initramfs_check.decide(ctx)
    assert rebuild and 'symlink' in reason


@needs_tools
def test_dracut_initramfs_is_rebuilt(tmp_path):
    tree = tmp_path / 'dracut'
    for name in ('usr/sbin/mdadm', 'usr/lib/dracut/modules.txt'):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text('')
    ctx = ctx_for(target_with(tmp_path, compressed(cpio(tree), 'gzip'),
                              'initramfs-%s.img' % KERNEL))
    rebuild, reason = initramfs_check.decide(ctx)
    assert rebuild and 'not made by initramfs-tools' in reason


def test_dry_run_plans_the_rebuild():
    ctx = fx.make_context(fx.raid1_lvm())
    rec = fx.run_scheme(fx.raid1_lvm())
    notes = [c[1] for c in rec.commands if c[0] == '#']
    assert any(n.startswith('rebuilding the initramfs: a dry run does not '
                            'read') for n in notes)
    assert ctx.dry_run


def test_target_step_keeps_or_rebuilds(tmp_path, monkeypatch):
    """The step runs the rebuild command only when the check says so."""
    monkeypatch.setattr(initramfs_check, 'decide',
                        lambda ctx: (False, 'kept: fine'))
    rec = fx.run_scheme(fx.raid1_lvm())
    assert not [c for c in rec.commands if 'update-initramfs' in str(c)]
    assert ('#', 'kept: fine') in rec.commands
    monkeypatch.setattr(initramfs_check, 'decide',
                        lambda ctx: (True, 'no mdadm'))
    rec = fx.run_scheme(fx.raid1_lvm())
    assert ('chroot', '/target', 'sh', '-c', target.INITRAMFS) in \
        rec.commands
    assert ('#', 'rebuilding the initramfs: no mdadm') in rec.commands
