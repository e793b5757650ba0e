"""Which disks an erase request may touch, checked on the disk itself.

An erase request names disks by stable identity (serial, wwn, by-path;
the kernel name only when a disk has none of them). Before anything is
written every named disk is looked at again (:func:`check_all`), and
once more right before it is touched (:func:`recheck`): a disk whose
identity no longer matches fails the run, and nothing is erased.

A disk that is not a whole local disk of the node is skipped and
reported, never erased: RAM disks (zram, ram), removable media (USB
sticks, virtual media, CD-ROMs), the ramdisk's own boot media (anything
on it mounted or used as swap, or IPA's virtual-media label
``ir-vfd-dev``). A read-only disk is skipped by a metadata erase and
fails a full erase unless the request allows skipping it, as Ironic's
``[deploy]erase_skip_read_only`` says for IPA.
"""

import dataclasses
import json
import os
from typing import Optional

from fa_agent import discovery
from fa_agent import errors
from fa_agent.scheme import inventory
from fa_agent.scheme import matcher

COLUMNS = 'NAME,PATH,TYPE,RO,RM,SIZE,SERIAL,WWN,MOUNTPOINT'
VIRTUAL_MEDIA_LABEL = '/dev/disk/by-label/ir-vfd-dev'
RAM_DISK_PREFIXES = ('zram', 'ram')


@dataclasses.dataclass(frozen=True)
class DiskState:
    """What a disk is right now."""

    path: str
    type: str
    read_only: bool
    removable: bool
    device: inventory.BlockDevice
    in_use: tuple  # (device, mount point or [SWAP]) of it and its children


def _flatten(devices):
    for dev in devices:
        yield dev
        yield from _flatten(dev.get('children') or [])


def _rows(out):
    try:
        rows = json.loads(out)['blockdevices'] if out.strip() else []
    except (ValueError, KeyError, TypeError):
        return []
    return [r for r in rows if isinstance(r, dict)] \
        if isinstance(rows, list) else []


def _row(out, path):
    return next((r for r in _rows(out)
                 if (r.get('path') or '/dev/%s' % r.get('name')) == path),
                None)


def look(runner, path):
    """The :class:`DiskState` of ``path``, read fresh (lsblk, udev).

    :raises errors.DiskNotFound: when the device is gone.
    """
    out, _ = runner.execute('lsblk', '--json', '--bytes', '--nodeps', '-o',
                            COLUMNS, path, check_exit_code=(0, 32, 64))
    row = _row(out, path)
    if row is None:
        raise errors.DiskNotFound('%s is gone: lsblk does not show it' % path)
    # Its partitions, arrays and volumes too: any of them mounted or
    # used as swap means the ramdisk uses the disk.
    out, _ = runner.execute('lsblk', '--json', '-o', 'PATH,MOUNTPOINT',
                            path, check_exit_code=(0, 32, 64))
    in_use = tuple((d.get('path'), d['mountpoint'])
                   for d in _flatten(_rows(out)) if d.get('mountpoint'))
    props, _ = runner.execute('udevadm', 'info', '--query=property',
                              '--name=' + path, check_exit_code=(0, 1))
    by_path = None
    for line in props.splitlines():
        key, _, value = line.partition('=')
        if key == 'ID_PATH' and value:
            by_path = discovery.BY_PATH_DIR + value
    device = inventory.BlockDevice(
        name=path, size=int(row.get('size') or 0),
        serial=inventory._clean(row.get('serial')),
        wwn=inventory._clean(row.get('wwn')), by_path=by_path)
    return DiskState(path=path, type=str(row.get('type')),
                     read_only=inventory._as_bool(row.get('ro')) or False,
                     removable=inventory._as_bool(row.get('rm')) or False,
                     device=device, in_use=in_use)


def identity_problems(match, state):
    """The hints of ``match`` that ``state`` no longer satisfies, as
    "<hint> <wanted> (the disk has <actual>)" phrases."""
    problems = []
    for hint, wanted in sorted(match.items()):
        try:
            ok = matcher.hint_matches(state.device, hint,
                                      matcher.parse_hint(hint, wanted))
        except (matcher.HintError, ValueError, TypeError):
            ok = False
        if not ok:
            problems.append('%s %r (the disk has %r)' % (
                hint, wanted, getattr(state.device, hint, None)))
    return problems


def _virtual_media():
    try:
        return os.path.realpath(VIRTUAL_MEDIA_LABEL) \
            if os.path.exists(VIRTUAL_MEDIA_LABEL) else None
    except OSError:
        return None


def skip_reason(state, full, skip_read_only):
    """Why ``state``'s disk must not be erased (None: it may be).

    :raises errors.CommandFailed: for a read-only disk that a full erase
        may not skip.
    """
    name = os.path.basename(state.path)
    if name.startswith(RAM_DISK_PREFIXES):
        return 'a RAM disk of the ramdisk'
    if state.type not in inventory.DISK_TYPES:
        return 'not a whole disk (lsblk type %s)' % state.type
    if state.removable:
        return 'removable media (virtual media, USB or CD-ROM)'
    if state.in_use:
        return 'in use by the ramdisk (%s)' % ', '.join(
            '%s on %s' % (dev, where) for dev, where in state.in_use)
    if _virtual_media() == state.path:
        return 'the virtual media the ramdisk booted from (%s)' \
            % VIRTUAL_MEDIA_LABEL
    if state.read_only:
        if full and not skip_read_only:
            raise errors.CommandFailed(
                '%s is read-only and cannot be erased; set [deploy] '
                'erase_skip_read_only = true to skip read-only disks' %
                state.path)
        return 'read-only'
    return None


@dataclasses.dataclass
class Verdict:
    disk_id: str
    path: str
    skip: Optional[str]


def check(ctx, disk, full):
    """Look at one named disk; its :class:`Verdict`.

    :raises errors.DiskNotFound: when its identity does not match.
    """
    path = ctx.path(disk.id)
    state = look(ctx.probe, path)
    problems = identity_problems(disk.match, state)
    if problems:
        raise errors.DiskNotFound(
            'disk %r (%s) is not the disk the erase request names: %s; '
            'nothing was erased' % (disk.id, path, '; '.join(problems)))
    return Verdict(disk.id, path, skip_reason(state, full,
                                              ctx.request.erase.skip_read_only))


def check_all(ctx):
    """Check every disk before anything is written; skipped disks are
    recorded in the result with their reason."""
    full = ctx.request.erase.mode == 'full'
    verdicts = [check(ctx, disk, full)
                for disk in ctx.scheme.of_type('disk')]
    for verdict in verdicts:
        if verdict.skip:
            ctx.remember(verdict.disk_id, skipped=verdict.skip)
            ctx.progress('not erasing %s (%s): %s' % (
                verdict.disk_id, verdict.path, verdict.skip))
    ctx.erase_skipped = {v.disk_id for v in verdicts if v.skip}
    return verdicts


def recheck(ctx, disk):
    """Right before ``disk`` is touched: True when it may be erased."""
    if disk.id in getattr(ctx, 'erase_skipped', ()):
        return False
    verdict = check(ctx, disk, ctx.request.erase.mode == 'full')
    if verdict.skip:
        ctx.remember(disk.id, skipped=verdict.skip)
        return False
    return True
