"""Step ``bootloader``: GRUB 2 from the new system itself (chroot).

BIOS: grub-install on every disk of the boot set, so the node boots from
whichever RAID member the firmware picks. UEFI: grub-install on each ESP,
plus the removable path (EFI/BOOT/BOOTX64.EFI) that firmware finds with
no NVRAM entry. Kernel parameters from the input go to GRUB_CMDLINE_LINUX.

/etc/default/grub is shell that grub-mkconfig sources as root (now and on
every later update-grub), and 10_linux copies GRUB_CMDLINE_LINUX unquoted
into grub.cfg's ``linux`` line, which GRUB's own script parser reads. So
the parameters are single-quoted for the shell, and characters that
GRUB's parser or the kernel would read as more than text are refused.

grub-mkconfig runs once, after every install, with
GRUB_DISABLE_OS_PROBER=true in its environment (not in the image's
file): os-prober would mount every partition of every disk looking for
other systems, slow under emulation and pointless on a fresh node. The
image's /etc/default/grub may still set it; that is its choice.
"""


from fa_agent import errors
from fa_agent.scheme import validator
from fa_agent.steps import target

ESP_MOUNT = target.ESP_MOUNT
MKCONFIG_ENV = {'GRUB_DISABLE_OS_PROBER': 'true'}
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
    params = ' '.join(check_kernel_params(p, field) for p, field in (
        (ctx.request.kernel_params, '$.kernel_params'),
        (ctx.scheme.bootloader.kernel_params if ctx.scheme.bootloader
         else '', '$.scheme.bootloader.kernel_params')) if p)
    if params:
        write_kernel_params(ctx, params)
    chroot = ('chroot', ctx.target_dir)
    if mode in ('bios', 'both'):
        for disk_id in validator.boot_disks(ctx.scheme):
            ctx.progress('installing GRUB (BIOS) on %s' % ctx.path(disk_id))
            ctx.runner.execute(*chroot, grub, '--target=i386-pc',
                               ctx.path(disk_id))
    if mode in ('uefi', 'both'):
        for fs in target.esp_filesystems(ctx.scheme):
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
    ctx.progress('writing %s (%s)' % (config, mkconfig.rpartition('/')[2]))
    ctx.runner.execute(*chroot, mkconfig, '-o', config, env=MKCONFIG_ENV)


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




# Control characters end or split the kernel command line; the others
# are GRUB script syntax in grub.cfg (variables, command separators,
# redirections, blocks, escapes) or shell syntax worth no exception.
_FORBIDDEN = set('$;&|<>\\\'`{}') | {chr(c) for c in range(0x20)} | {'\x7f'}
MARK = '# Kernel parameters of the deploy, added by fa-agent:'


def check_kernel_params(params, field):
    """``params`` when the kernel command line and grub.cfg can carry it
    as plain text; BadInput naming ``field`` otherwise."""
    bad = sorted(set(params) & _FORBIDDEN)
    if bad:
        raise errors.BadInput(
            '%s: %r holds %s; kernel parameters may not contain control '
            'characters or any of %s' % (field, params, ', '.join(
                repr(c) for c in bad), ' '.join(sorted(
                    c for c in _FORBIDDEN if c.isprintable()))))
    if params.count('"') % 2:
        raise errors.BadInput('%s: %r has an unbalanced double quote'
                              % (field, params))
    return params


def write_kernel_params(ctx, params):
    path = '/etc/default/grub'
    ctx.write_file(path, with_kernel_params(ctx.read_file(path), params))


def with_kernel_params(text, params):
    """/etc/default/grub with ``params`` appended to GRUB_CMDLINE_LINUX.

    The image's own lines stay as the image wrote them (they may use
    shell the image intends); one line of ours follows that extends the
    value with ``params`` single-quoted, so sourcing the file yields the
    image's value, a blank and exactly ``params``. A line from an
    earlier run of this step is replaced, not repeated."""
    lines = text.splitlines(keepends=True)
    if MARK + '\n' in lines:
        start = lines.index(MARK + '\n')
        del lines[start:start + 2]
    text = ''.join(lines)
    separator = '' if not text or text.endswith('\n') else '\n'
    return '%s%s%s\nGRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX:+' \
        '$GRUB_CMDLINE_LINUX }"%s\n' % (text, separator, MARK,
                                        shell_quote(params))


def shell_quote(value):
    """``value`` as one single-quoted shell word (a quote in it as
    ``'"'"'``): nothing inside is expanded."""
    return "'%s'" % value.replace("'", "'\"'\"'")
