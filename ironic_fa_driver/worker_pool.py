"""Keeps the conductor's worker pool from wedging itself (Ironic 39).

Ironic runs heartbeats, RPC work and periodic tasks on a futurist
``DynamicThreadPoolExecutor`` whose rejection check
(``base_manager.reject_when_reached``) counts the pool's threads, busy
or idle, against ``[conductor]workers_pool_size``. The executor drops
idle threads only when it accepts work, or when its ``maintain()`` is
called, which Ironic never does. After a burst that grows the pool to
its limit (hundreds of ramdisks heartbeating at once), every new
heartbeat, RPC call and periodic task is refused with
NoFreeConductorWorker, for good: tools/bench_conductor.py saw a
conductor with 1045 idle threads refuse 20000 heartbeats while no
deploy could finish, at 500 nodes.

One daemon thread per conductor calls ``maintain()`` (futurist's own
"call it periodically") every few seconds, so idle threads go and new
work is taken again once the burst is over. It is started from this
driver's periodic task, which runs when the conductor starts.
"""

import threading
import time
import weakref

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
TRIM_INTERVAL = 5.0
# The pools being trimmed; weak, so a new pool that happens to live where
# a collected one did is not mistaken for it.
_trimmed = weakref.WeakSet()
_lock = threading.Lock()


def keep_trimmed(manager, interval=TRIM_INTERVAL):
    """Start trimming the conductor ``manager``'s worker pools, once
    per pool; True when this call started it."""
    pools = [pool for pool in (getattr(manager, '_executor', None),
                               getattr(manager, '_reserved_executor', None))
             if callable(getattr(pool, 'maintain', None))]
    with _lock:
        pools = [pool for pool in pools if pool not in _trimmed]
        _trimmed.update(pools)
    if not pools:
        return False
    threading.Thread(target=_trim, args=(pools, interval),
                     name='fa-worker-pool-trim', daemon=True).start()
    LOG.info('Trimming idle threads of the conductor\'s worker pool every '
             '%.0f s (Ironic does not)', interval)
    return True


def _trim(pools, interval):
    while pools:
        for pool in list(pools):
            if getattr(pool, '_shutdown', False):
                pools.remove(pool)
                continue
            try:
                pool.maintain()
            except Exception:
                LOG.exception('Trimming the conductor\'s worker pool failed')
        time.sleep(interval)
