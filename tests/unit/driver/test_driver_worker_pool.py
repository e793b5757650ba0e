"""The conductor's worker pool after a burst: Ironic 39 refuses all new
work once its pool has grown to the limit, until its idle threads are
trimmed (ironic_fa_driver.worker_pool).

Real parts: Ironic's own executor set-up (``_init_executors`` of the
conductor's base manager, its rejection check) and futurist's pool;
the "work" is threads waiting on an event, standing for heartbeats that
take long under load. Nothing is mocked.
"""

import threading
import time
import unittest

import futurist
from ironic.conductor import base_manager

from ironic_fa_driver import worker_pool


# 40 workers, 5 % reserved: 38 normal ones, above Ironic's minimum of
# 26 (power sync workers + 2 * periodic workers + 2).
LIMIT = 38


class WorkerPoolTestCase(unittest.TestCase):

    def setUp(self):
        super().setUp()
        # Only the executors: the rest of a conductor (RPC, database)
        # plays no part here.
        self.manager = base_manager.BaseConductorManager.__new__(
            base_manager.BaseConductorManager)
        self.manager._init_executors(40, 5)
        self.pool = self.manager._executor
        self.addCleanup(self.manager._reserved_executor.shutdown, wait=False)
        self.addCleanup(self.pool.shutdown, wait=False)

    def burst(self):
        """Work that waits, submitted (and retried when refused, as
        ramdisks retry their heartbeats) until the pool has grown to its
        limit; then all of it finishes: a burst of heartbeats that is
        over."""
        release, accepted = threading.Event(), 0
        deadline = time.monotonic() + 20
        while self.pool.num_workers < LIMIT:
            self.assertLess(time.monotonic(), deadline)
            try:
                self.pool.submit(release.wait, 20)
                accepted += 1
            except futurist.RejectedSubmission:
                time.sleep(0.01)
        release.set()
        deadline = time.monotonic() + 10
        while self.pool.get_num_idle_workers() < self.pool.num_workers:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        return accepted

    def accepts_work(self):
        try:
            self.pool.submit(lambda: None).result(5)
            return True
        except futurist.RejectedSubmission:
            return False

    def test_ironic_alone_stays_wedged_after_a_burst(self):
        self.assertGreaterEqual(self.burst(), LIMIT)
        time.sleep(0.3)
        # Every thread idle, yet nothing is taken: what the benchmark
        # saw at 500 nodes (NoFreeConductorWorker for every heartbeat).
        self.assertFalse(self.accepts_work())
        self.assertEqual(LIMIT, self.pool.num_workers)

    def test_trimmed_pool_takes_work_again(self):
        self.assertTrue(worker_pool.keep_trimmed(self.manager,
                                                 interval=0.05))
        self.assertFalse(worker_pool.keep_trimmed(self.manager))  # once
        self.burst()
        deadline = time.monotonic() + 10
        while not self.accepts_work():
            self.assertLess(time.monotonic(), deadline,
                            'the pool still refuses work')
            time.sleep(0.05)
        self.assertLess(self.pool.num_workers, LIMIT)
