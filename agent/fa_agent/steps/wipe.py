"""Step ``wipe``: clear the disks the scheme names, and only those.

Whatever runs on them is stopped first (logical volumes, md arrays), then
every signature is erased (md superblocks, LVM labels, file systems, both
the primary and the backup GPT) and the kernel is made to agree that the
disk is empty. A disk holding kept data keeps its table: only the
partitions the scheme does not keep are erased and deleted.
"""

import re

from fa_agent import discovery
from fa_agent import erase_guard
from fa_agent.scheme import planner

MD_TYPES = ('raid0', 'raid1', 'raid4', 'raid5', 'raid6', 'raid10', 'md')
# What an md array held (an LVM label, a file system) starts at its
# members' data offset, where wipefs on a member does not look. The same
# scheme deployed again makes the array again at the same place, and the
# old contents reappear on it: udev activates the old volume group and
# pvcreate refuses the old PV (seen in the QEMU test). The head of the
# data area is zeroed on the member itself, so no disk outside the
# scheme is written to.
DATA_OFFSET = re.compile(r'^\s*Data Offset : (\d+) sectors', re.MULTILINE)
ARRAY_HEAD_MIB = 4


def run(ctx):
    erasing = ctx.request.action == 'erase'
    if erasing and ctx.request.erase.mode != 'metadata':
        return  # the erase step's
    for disk in ctx.scheme.of_type('disk'):
        path = ctx.path(disk.id)
        if erasing and not erase_guard.recheck(ctx, disk):
            continue
        if ctx.kept(disk.id):
            clear_unkept_partitions(ctx, disk)
        else:
            ctx.progress('wiping %s (%s)' % (disk.id, path))
            wipe_disk(ctx, path)
            if erasing:
                ctx.remember(disk.id, erased_by='metadata')


def stop_users(ctx, path):
    """Deactivate volume groups and stop arrays built on ``path``."""
    _stop_users(ctx, discovery.holders(ctx.probe, path))


def _stop_users(ctx, found):
    vgs = []
    for dev, kind, _ in found:
        if kind == 'lvm':
            out, _ = ctx.runner.execute('lvs', '--noheadings', '-o',
                                        'vg_name', dev)
            vgs.extend(v for v in out.split() if v not in vgs)
    for vg in vgs:
        # Deactivate only: removing the VG would write to its PVs on
        # disks outside the scheme; wipefs below drops our PV labels.
        ctx.runner.execute('vgchange', '-an', vg)
    for dev, kind, _ in found:
        if kind in MD_TYPES:
            ctx.runner.execute('mdadm', '--stop', dev)


def _erase(ctx, device):
    out, _ = ctx.probe.execute('mdadm', '--examine', device,
                               check_exit_code=False)
    offset = DATA_OFFSET.search(out)
    # The superblock goes first: the first write to a member makes udev
    # look at it again, and while it still is a member udev assembles it
    # into an array, which then keeps the partition busy.
    ctx.runner.execute('mdadm', '--zero-superblock', '--force', device,
                       check_exit_code=False)
    if offset and int(offset.group(1)):
        ctx.runner.execute('dd', 'if=/dev/zero', 'of=' + device, 'bs=1M',
                           'count=%d' % ARRAY_HEAD_MIB,
                           'seek=%d' % (int(offset.group(1)) * 512),
                           'oflag=seek_bytes,direct', 'conv=notrunc',
                           'status=none')
    ctx.runner.execute('wipefs', '--all', '--force', device)


def wipe_disk(ctx, path):
    found = discovery.holders(ctx.probe, path)
    _stop_users(ctx, found)
    for dev, kind, parent in found:
        if kind == 'part' and parent == path:
            _erase(ctx, dev)
    _erase(ctx, path)
    ctx.runner.execute('sgdisk', '--zap-all', path)
    ctx.settle(path, expected=[])


def clear_unkept_partitions(ctx, disk):
    path = ctx.path(disk.id)
    kept = {ctx.plan.devices[p.id].number
            for p in ctx.scheme.partitions_on(disk.id) if ctx.kept(p.id)}
    existing = ctx.table_on(disk.id)
    doomed = [p.number for p in existing.partitions if p.number not in kept]
    ctx.progress('%s (%s) holds kept data: keeping partitions %s, '
                 'deleting %s' % (disk.id, path, sorted(kept) or 'none',
                                  doomed or 'none'))
    for number in doomed:
        _erase(ctx, planner.partition_path(path, number))
        if existing.label == 'gpt':
            ctx.runner.execute('sgdisk', '--delete=%d' % number, path)
        else:
            ctx.runner.execute('parted', '-s', path, 'rm', str(number))
    ctx.settle(path, expected=[
        (p.start, p.size) for p in existing.partitions if p.number in kept])
