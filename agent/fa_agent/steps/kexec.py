"""Step ``kexec``: load the installed system's kernel so the conductor can
jump into it without a firmware reboot (``$.kexec`` of the input).

A firmware POST costs minutes on real servers; ``kexec -e`` starts the
installed kernel at once. This step only *loads* it (``kexec -l``); the
conductor runs ``systemctl kexec`` after it has switched the boot device
to disk, so any later reboot still boots the installed system. Loading
is best effort: whatever goes wrong is reported in the result
(``kexec: {"loaded": false, "reason": ...}``) and the conductor falls
back to a power cycle; it never fails the deploy.

The kernel, initramfs and command line are the first entry of the
grub.cfg the bootloader step just wrote (the entry the firmware would
boot). The image is the tenant's: its files are copied out of the
target without following symlinks (:mod:`safepath`), so ``kexec`` never
reads a ramdisk file the image points at, and the command line is passed
as one argument, never through a shell.
"""

import os
import re
import shutil

from fa_agent import errors
from fa_agent.steps import safepath
from fa_agent.steps import target

GRUB_CONFIGS = ('/boot/grub/grub.cfg', '/boot/grub2/grub.cfg')
COPY_DIR = '/run/fa-agent/kexec'
# The kernel's own limit for x86 (COMMAND_LINE_SIZE).
MAX_CMDLINE = 2048
_LINE = re.compile(r'^\s*(linux|linuxefi|initrd|initrdefi)\s+(\S+)(.*)$')


class NoKernel(Exception):
    """Why nothing was loaded (reported, not raised to the runner)."""


def run(ctx):
    if not getattr(ctx.request, 'kexec', False):
        return
    if ctx.scheme.filesystem_at('/') is None:
        ctx.kexec = {'loaded': False, 'reason': 'no root file system in '
                     'the scheme (whole-disk image)'}
        return
    target.mount_tree(ctx)
    try:
        entry = first_entry(ctx)
        kernel, initrd = copy_out(ctx, entry)
        load(ctx, kernel, initrd, entry['cmdline'])
    except (NoKernel, errors.ProvisionError, OSError) as exc:
        ctx.progress('kexec: not loaded (%s); the conductor will power '
                     'cycle the node' % exc)
        ctx.kexec = {'loaded': False, 'reason': str(exc)}
        return
    ctx.kexec = {'loaded': True, 'kernel': entry['kernel'],
                 'cmdline': entry['cmdline']}


def first_entry(ctx):
    """``{'kernel', 'initrd', 'cmdline'}`` of grub.cfg's first entry."""
    for path in GRUB_CONFIGS:
        text = ctx.read_file(path)
        if text:
            return parse_grub_cfg(text, path)
    raise NoKernel('no grub.cfg in the installed system')


def parse_grub_cfg(text, path='grub.cfg'):
    """The first ``linux``/``initrd`` pair in ``text``. Words with GRUB
    variables (``$vt_handoff``) are dropped: only GRUB could expand
    them."""
    kernel = initrd = None
    cmdline = ''
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        word, file, rest = match.groups()
        if word.startswith('linux'):
            if kernel is not None:
                break  # the next entry
            kernel = file
            cmdline = ' '.join(w for w in rest.split() if '$' not in w)
        elif kernel is not None and initrd is None:
            initrd = file
            break
    if kernel is None:
        raise NoKernel('%s has no linux line' % path)
    if len(cmdline.encode()) >= MAX_CMDLINE:
        raise NoKernel('the kernel command line in %s is longer than %d '
                       'bytes' % (path, MAX_CMDLINE))
    return {'kernel': kernel, 'initrd': initrd, 'cmdline': cmdline}


def boot_path(ctx, file):
    """The target path of a GRUB file path: relative to the file system
    that holds /boot (a separate /boot file system sees /vmlinuz-...)."""
    if ctx.scheme.filesystem_at('/boot') is not None and \
            not file.startswith('/boot/'):
        return '/boot/' + file.lstrip('/')
    return file


def copy_out(ctx, entry):
    """Copy kernel and initramfs from the target into the ramdisk."""
    shutil.rmtree(COPY_DIR, ignore_errors=True)
    os.makedirs(COPY_DIR, mode=0o700)
    copies = []
    for key in ('kernel', 'initrd'):
        if not entry[key]:
            copies.append(None)
            continue
        path = boot_path(ctx, entry[key])
        fd = safepath.open_read(ctx.target_dir, path, 'kexec %s' % key)
        if fd is None:
            raise NoKernel('%s %s is not in the installed system'
                           % (key, path))
        copy = os.path.join(COPY_DIR, key)
        with open(fd, 'rb') as source, open(copy, 'wb') as out:
            shutil.copyfileobj(source, out, 1 << 20)
        copies.append(copy)
    return copies


def load(ctx, kernel, initrd, cmdline):
    """``kexec -l``: the file-based syscall first (the one a Secure Boot
    lockdown allows, with a signed kernel), then the classic one."""
    args = [kernel]
    if initrd:
        args.append('--initrd=' + initrd)
    args.append('--command-line=' + cmdline)
    ctx.progress('kexec: loading %s' % os.path.basename(kernel))
    try:
        ctx.runner.execute('kexec', '-s', '-l', *args)
    except errors.CommandFailed:
        ctx.runner.execute('kexec', '-l', *args)
