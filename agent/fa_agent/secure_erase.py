"""The device's own erase: NVMe format and ATA security erase.

What a device supports is read from the tools operators know (``nvme
id-ctrl -o json``, ``hdparm -I``) and decided by the pure functions
:func:`nvme_support` and :func:`ata_support`, so the choice is testable
with their output; :func:`choose` picks one method per device, the way
IPA's erase_devices does: NVMe format on NVMe namespaces, ATA security
erase on other disks, else the overwrite of :mod:`fa_agent.overwrite`.
"""

import json
import logging
import os

from fa_agent import errors

LOG = logging.getLogger(__name__)
# nvme id-ctrl: OACS bit 1 "Format NVM supported"; FNA bit 2
# "cryptographic erase supported".
OACS_FORMAT = 0x2
FNA_CRYPTO = 0x4
NVME_FORMAT, ATA_ERASE, OVERWRITE = 'nvme_format', 'ata_secure_erase', \
    'overwrite'
# A secure erase of a large disk can take hours; it is bounded by the
# driver's [fuel_agent]deploy_timeout instead.
LONG = 24 * 3600


def is_nvme(path):
    return os.path.basename(path).startswith('nvme')


def nvme_support(id_ctrl_json):
    """(supported, secure erase setting ``-s``, why) from ``nvme id-ctrl
    -o json`` output: ses 2 (cryptographic) when the controller can, else
    1 (user data)."""
    try:
        info = json.loads(id_ctrl_json)
        oacs, fna = int(info['oacs']), int(info.get('fna', 0))
    except (ValueError, KeyError, TypeError):
        return False, None, 'nvme id-ctrl gave no oacs field'
    if not oacs & OACS_FORMAT:
        return False, None, 'the controller does not support Format NVM'
    if fna & FNA_CRYPTO:
        return True, 2, 'cryptographic erase supported'
    return True, 1, 'user data erase supported'


def ata_security(hdparm_text):
    """The lines of the "Security:" section of ``hdparm -I`` output,
    stripped (empty when there is none)."""
    lines = hdparm_text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines)
                     if line.strip() == 'Security:')
    except StopIteration:
        return []
    section = []
    for line in lines[start + 1:]:
        if not line.startswith('\t'):
            break
        section.append(' '.join(line.split()))
    return section


def ata_support(hdparm_text):
    """(supported, enhanced, why). A frozen or password-locked drive that
    supports the feature is an error: the erase cannot be done now.

    :raises errors.CommandFailed: frozen or locked.
    """
    security = ata_security(hdparm_text)
    if 'supported' not in security:
        return False, False, 'ATA security feature set not supported'
    if 'not frozen' not in security:
        raise errors.CommandFailed(
            'ATA security is frozen (the firmware froze it at boot; a '
            'suspend/resume or a power cycle of the drive unfreezes it)')
    if 'not locked' not in security:
        raise errors.CommandFailed('the drive is locked by an ATA '
                                   'security password')
    if 'enabled' in security:
        raise errors.CommandFailed('the drive already has an ATA '
                                   'security password set')
    enhanced = 'supported: enhanced erase' in security
    return True, enhanced, 'ATA security erase supported%s' % (
        ' (enhanced)' if enhanced else '')


def _probe(runner, *cmd):
    """stdout of a read-only probe, or None when the tool is missing or
    the device does not answer (not that kind of device)."""
    try:
        out, _ = runner.execute(*cmd)
        return out
    except errors.CommandFailed as exc:
        LOG.info('%s: %s', cmd[0], exc)
        return None


def choose(runner, path, options):
    """(method, detail) for ``path``: ``nvme_format`` with its ``ses``,
    ``ata_secure_erase`` with ``enhanced``, else ``overwrite``; detail
    says why.

    :raises errors.CommandFailed: the device supports a secure erase but
        cannot do it now (frozen, locked) and the request does not allow
        falling back to an overwrite.
    """
    try:
        if is_nvme(path):
            if not options.nvme_secure_erase:
                return OVERWRITE, {'why': 'NVMe secure erase disabled '
                                          '([deploy]enable_nvme_secure_'
                                          'erase)'}
            out = _probe(runner, 'nvme', 'id-ctrl', path, '-o', 'json')
            supported, ses, why = nvme_support(out or '')
            if supported:
                return NVME_FORMAT, {'ses': ses, 'why': why}
            return OVERWRITE, {'why': why}
        if not options.ata_secure_erase:
            return OVERWRITE, {'why': 'ATA secure erase disabled '
                                      '([deploy]enable_ata_secure_erase)'}
        out = _probe(runner, 'hdparm', '-I', path)
        supported, enhanced, why = ata_support(out or '')
        if supported:
            return ATA_ERASE, {'enhanced': enhanced, 'why': why}
        return OVERWRITE, {'why': why}
    except errors.CommandFailed as exc:
        return _fallback(path, options, exc)


def _fallback(path, options, exc):
    if not options.continue_if_secure_erase_fails:
        raise errors.CommandFailed(
            'secure erase of %s cannot be done: %s; set [deploy]'
            'continue_if_disk_secure_erase_fails = true to overwrite it '
            'instead' % (path, exc)) from exc
    LOG.warning('secure erase of %s cannot be done (%s); overwriting it',
                path, exc)
    return OVERWRITE, {'why': 'secure erase failed: %s' % exc}


def nvme_format(runner, path, ses):
    runner.execute('nvme', 'format', path, '-s', str(ses), '-f',
                   timeout=LONG)


def ata_erase(runner, path, enhanced):
    """Set a temporary user password (required by the command), erase,
    and check the drive dropped it (security "not enabled")."""
    runner.execute('hdparm', '--user-master', 'u', '--security-set-pass',
                   'NULL', path)
    option = '--security-erase-enhanced' if enhanced else '--security-erase'
    try:
        runner.execute('hdparm', '--user-master', 'u', option, 'NULL', path,
                       timeout=LONG)
    except errors.CommandFailed:
        # Leave the drive usable for an overwrite or the next attempt.
        runner.execute('hdparm', '--user-master', 'u',
                       '--security-disable', 'NULL', path,
                       check_exit_code=False)
        raise
    if runner.dry_run:
        return
    out, _ = runner.execute('hdparm', '-I', path)
    if 'not enabled' not in ata_security(out):
        raise errors.CommandFailed('%s still has ATA security enabled after '
                                   'the erase' % path)


def run(runner, path, method, detail, options):
    """Do the chosen secure erase; an overwrite is the caller's. Returns
    the method that erased the disk (``overwrite`` when a failed secure
    erase may fall back to it)."""
    try:
        if method == NVME_FORMAT:
            nvme_format(runner, path, detail['ses'])
        elif method == ATA_ERASE:
            ata_erase(runner, path, detail['enhanced'])
        return method, detail
    except errors.CommandFailed as exc:
        return _fallback(path, options, exc)
