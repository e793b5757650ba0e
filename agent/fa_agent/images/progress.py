"""Progress of a long image write, logged at intervals: percent of the
download (when its size is known) and throughput in MB/s (10^6 bytes
per second, of bytes as downloaded)."""

import logging
import time

LOG = logging.getLogger(__name__)
INTERVAL = 10.0


class Progress:
    """Counts downloaded bytes and logs every ``interval`` seconds.

    :param callback: optional ``callback(percent, message)``, called at
        the same moments, for the status file.
    """

    def __init__(self, what, total=None, interval=INTERVAL, callback=None,
                 clock=time.monotonic):
        self.what = what
        self.interval = interval
        self.callback = callback
        self._clock = clock
        self.restart(total)

    def restart(self, total=None):
        self.total = total
        self.done = 0
        self.started = self._clock()
        self._next_report = self.started + self.interval

    def add(self, count):
        self.done += count
        now = self._clock()
        if now >= self._next_report:
            self._next_report = now + self.interval
            self._report(now)

    @property
    def percent(self):
        if not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    def rate(self, now=None):
        """MB/s since the start."""
        elapsed = (now or self._clock()) - self.started
        return self.done / elapsed / 1e6 if elapsed > 0 else 0.0

    def finish(self):
        now = self._clock()
        message = '%s: %d MiB in %.1f s (%.1f MB/s)' % (
            self.what, self.done >> 20, now - self.started, self.rate(now))
        LOG.info(message)
        if self.callback:
            self.callback(100.0, message)
        return now - self.started

    def _report(self, now):
        percent = self.percent
        if percent is None:
            message = '%s: %d MiB at %.1f MB/s' % (
                self.what, self.done >> 20, self.rate(now))
        else:
            message = '%s: %.1f%% (%d of %d MiB) at %.1f MB/s' % (
                self.what, percent, self.done >> 20, self.total >> 20,
                self.rate(now))
        LOG.info(message)
        if self.callback:
            self.callback(percent, message)
