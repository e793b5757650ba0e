"""Step ``erase``: erase every byte of the disks an erase request names
(Ironic's ``erase_devices``), or use the device's own fast erase
(``erase_devices_express``).

The method is chosen per disk (:func:`fa_agent.secure_erase.choose`):
NVMe format or ATA security erase where the device supports it, else an
overwrite (:mod:`fa_agent.overwrite`); an express erase wipes the
metadata of disks without NVMe format instead. Disks are erased in
parallel, at most ``concurrency`` at a time ([deploy]
disk_erasure_concurrency). Each disk's method, why, and seconds go to
the result. Only erase requests run this step.
"""

import concurrent.futures
import logging
import threading
import time

from fa_agent import erase_guard
from fa_agent import overwrite
from fa_agent import secure_erase
from fa_agent.steps import wipe

LOG = logging.getLogger(__name__)
METADATA = 'metadata'


def run(ctx):
    options = ctx.request.erase
    if ctx.request.action != 'erase' or options.mode == METADATA:
        return
    disks = [d for d in ctx.scheme.of_type('disk')
             if d.id not in getattr(ctx, 'erase_skipped', ())]
    if not disks:
        ctx.progress('no disk to erase')
        return
    lock = threading.Lock()

    def progress(message):
        with lock:
            ctx.progress(message)

    workers = max(1, min(options.concurrency, len(disks)))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(erase_disk, ctx, disk, progress)
                   for disk in disks]
        # Wait for all of them (a disk half erased must not be left
        # running), then report the first failure.
        concurrent.futures.wait(futures)
        for future in futures:
            future.result()


def erase_disk(ctx, disk, progress):
    options = ctx.request.erase
    path = ctx.path(disk.id)
    if not erase_guard.recheck(ctx, disk):
        return
    started = time.monotonic()
    method, detail = secure_erase.choose(ctx.probe, path, options)
    if options.mode == 'express' and method == secure_erase.ATA_ERASE:
        # As IPA's express erase: only NVMe format is fast enough.
        method, detail = METADATA, {'why': 'express erase uses NVMe '
                                           'format only'}
    elif options.mode == 'express' and method == secure_erase.OVERWRITE:
        method, detail = METADATA, {'why': detail['why']}
    progress('erasing %s (%s) by %s: %s' % (disk.id, path, method,
                                            detail['why']))
    # Arrays and volume groups on it are stopped first, as for a wipe.
    wipe.stop_users(ctx, path)
    if method in (secure_erase.NVME_FORMAT, secure_erase.ATA_ERASE):
        method, detail = secure_erase.run(ctx.runner, path, method, detail,
                                          options)
    if method == secure_erase.OVERWRITE:
        detail = dict(detail, **overwrite.overwrite(
            ctx.runner, path, options.random_iterations, options.zeroize,
            lambda m: progress('%s: %s' % (disk.id, m))))
    if method == METADATA:
        wipe.wipe_disk(ctx, path)
    else:
        ctx.settle(path, expected=[])
    seconds = round(time.monotonic() - started, 1)
    ctx.remember(disk.id, erased_by=method, erase_detail=detail,
                 erase_seconds=seconds)
    progress('%s (%s) erased by %s in %.1f s' % (disk.id, path, method,
                                                  seconds))
