"""Step ``bootloader``: GRUB 2 from the new system itself (chroot).

BIOS: grub-install on every disk of the boot set, so the node boots from
whichever RAID member the firmware picks. UEFI: grub-install on each ESP,
plus the removable path (EFI/BOOT/BOOTX64.EFI) that firmware finds with
no NVRAM entry. Kernel parameters from the input go to GRUB_CMDLINE_LINUX.
"""

import os
import re
import shlex

from fa_agent import errors
from fa_agent.scheme import validator
from fa_agent.steps import target

ESP_MOUNT = '/boot/efi'
FIND_GRUB = 'command -v grub2-install || command -v grub-install'


def run(ctx):
    if ctx.scheme.filesystem_at('/') is None:
        ctx.note('no root file system in the scheme: the whole-disk image '
                 'brings its own bootloader')
        return
    mode = ctx.request.effective_boot_mode
    target.mount_tree(ctx)
    target.mount_system_dirs(ctx)
    try:
        install(ctx, mode)
    except errors.CommandFailed as exc:
        raise errors.BootloaderFailed(str(exc)) from exc


def install(ctx, mode):
    grub = find_grub(ctx)
    params = ' '.join(p for p in (
        ctx.request.kernel_params,
        ctx.scheme.bootloader.kernel_params if ctx.scheme.bootloader
        else '') if p)
    if params:
        write_kernel_params(ctx, params)
    chroot = ('chroot', ctx.target_dir)
    if mode in ('bios', 'both'):
        for disk_id in validator.boot_disks(ctx.scheme):
            ctx.progress('installing GRUB (BIOS) on %s' % ctx.path(disk_id))
            ctx.runner.execute(*chroot, grub, '--target=i386-pc',
                               ctx.path(disk_id))
    if mode in ('uefi', 'both'):
        for fs in esp_filesystems(ctx.scheme):
            mounted_here = fs.mount_point == ESP_MOUNT
            if not mounted_here:
                # Stacked over the main ESP for the time of the install.
                ctx.mount(ctx.path(fs.id), ctx.in_target(ESP_MOUNT),
                          fstype='vfat')
            ctx.progress('installing GRUB (UEFI) on %s' % ctx.path(fs.id))
            efi = ('--target=x86_64-efi', '--efi-directory=' + ESP_MOUNT,
                   '--no-nvram')
            ctx.runner.execute(*chroot, grub, *efi)
            ctx.runner.execute(*chroot, grub, *efi, '--removable')
            if not mounted_here:
                ctx.unmount(ctx.in_target(ESP_MOUNT))
    config = ('/boot/grub2/grub.cfg' if grub.endswith('grub2-install')
              else '/boot/grub/grub.cfg')
    mkconfig = grub.replace('-install', '-mkconfig')
    ctx.runner.execute(*chroot, mkconfig, '-o', config)


def find_grub(ctx):
    out, _ = ctx.runner.execute('chroot', ctx.target_dir, 'sh', '-c',
                                FIND_GRUB, check_exit_code=False)
    found = out.strip().splitlines()
    if found:
        return found[0]
    if ctx.dry_run:
        return 'grub-install'
    raise errors.BootloaderFailed('the new system has neither grub2-install '
                                  'nor grub-install')


def esp_filesystems(scheme):
    """vfat file systems on an ESP partition or mounted at /boot/efi, the
    mounted one first."""
    by_id = scheme.by_id
    found = [fs for fs in scheme.of_type('filesystem')
             if fs.fstype == 'vfat' and (
                 fs.mount_point == ESP_MOUNT or
                 'esp' in getattr(by_id[fs.device], 'flags', ()))]
    return sorted(found, key=lambda fs: fs.mount_point != ESP_MOUNT)


def write_kernel_params(ctx, params):
    path = ctx.in_target('/etc/default/grub')
    text = ''
    if not ctx.dry_run and os.path.exists(path):
        with open(path) as f:
            text = f.read()
    ctx.write_file(path, with_kernel_params(text, params))


def with_kernel_params(text, params):
    """/etc/default/grub with ``params`` added to GRUB_CMDLINE_LINUX."""
    pattern = re.compile(r'^GRUB_CMDLINE_LINUX=(.*)$', re.MULTILINE)
    match = pattern.search(text)
    if match is None:
        separator = '' if not text or text.endswith('\n') else '\n'
        return text + separator + _cmdline(params) + '\n'
    current = ' '.join(shlex.split(match.group(1)))
    merged = ' '.join(p for p in (current, params) if p)
    return text[:match.start()] + _cmdline(merged) + text[match.end():]


def _cmdline(params):
    # grub-mkconfig sources this file as shell: keep it double-quoted.
    return 'GRUB_CMDLINE_LINUX="%s"' % params.replace('\\', '\\\\').replace(
        '"', '\\"')
