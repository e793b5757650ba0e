"""Where image bytes come from: an http(s) or file URL, read as a stream
of chunks.

A dropped connection is resumed with a Range request, so a multi-gigabyte
image survives a flaky network without starting over. A resumed reply is
only trusted when it is a 206 whose Content-Range starts exactly where the
stream stopped; a server that ignores Range (or an image that changed on
the server) answers 200 with the whole body, and then the consumer must
start again from byte zero: :class:`RestartFromZero` tells it so.
"""

import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from fa_agent import errors

LOG = logging.getLogger(__name__)

CHUNK = 1024 * 1024
ATTEMPTS = 5
RETRY_DELAY = 3.0
TIMEOUT = 60.0
USER_AGENT = 'fa-agent'
# 4xx replies other than these will not get better by asking again.
_RETRYABLE_4XX = (408, 425, 429)
_CONTENT_RANGE = re.compile(r'^bytes (\d+)-(\d+)/(\d+|\*)$')


class RestartFromZero(Exception):
    """The server sent the whole image again instead of the rest of it.

    Whatever was already handed on must be discarded; calling
    :meth:`HttpSource.chunks` again yields the image from its first byte.
    """


class FileSource:
    """An image in a local file (``file://`` URL)."""

    def __init__(self, url):
        self.url = url
        self.path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        try:
            self.size = os.stat(self.path).st_size
        except OSError as exc:
            raise errors.ImageDownloadFailed(
                'cannot read image %s: %s' % (url, exc.strerror)) from exc

    def chunks(self):
        try:
            with open(self.path, 'rb', buffering=0) as stream:
                os.posix_fadvise(stream.fileno(), 0, 0,
                                 os.POSIX_FADV_SEQUENTIAL)
                while True:
                    data = stream.read(CHUNK)
                    if not data:
                        return
                    yield data
        except OSError as exc:
            raise errors.ImageDownloadFailed(
                'cannot read image %s: %s' % (self.url, exc)) from exc


class HttpSource:
    """An image behind an http(s) URL, resumed by Range after a failure.

    The first request is sent at construction, so a missing image fails
    before anything is written and ``size`` (Content-Length) is known.
    """

    def __init__(self, url, attempts=None, retry_delay=None, timeout=None):
        self.url = url
        # Module values read now, so that tests and callers can tune them.
        self.attempts = attempts or ATTEMPTS
        self.retry_delay = RETRY_DELAY if retry_delay is None else retry_delay
        self.timeout = timeout or TIMEOUT
        self.size = None
        self._failures = 0
        self._validator = None
        self._response = None
        while self._response is None:
            try:
                self._response = self._request(0)
            except (OSError, http.client.HTTPException) as exc:
                self._failed(exc, 0)

    def chunks(self):
        offset = 0
        while True:
            try:
                if self._response is None:
                    self._response = self._request(offset)
                while True:
                    data = self._response.read(CHUNK)
                    if not data:
                        break
                    offset += len(data)
                    yield data
                if self.size is not None and offset < self.size:
                    raise http.client.IncompleteRead(b'', self.size - offset)
                self._close()
                return
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                self._failed(exc, offset)

    def _failed(self, exc, offset):
        """Count a failure; give up after ``attempts``, else wait."""
        self._failures += 1
        reason = _describe(exc)
        if self._failures >= self.attempts or _is_permanent(exc):
            raise errors.ImageDownloadFailed(
                'cannot download image %s: %s (after %d attempt(s), '
                '%d bytes received)'
                % (self.url, reason, self._failures, offset)) from exc
        LOG.warning('image %s: %s at byte %d; retrying in %.0f s '
                    '(attempt %d of %d)', self.url, reason, offset,
                    self.retry_delay, self._failures + 1, self.attempts)
        time.sleep(self.retry_delay)

    def _request(self, offset):
        headers = {'User-Agent': USER_AGENT}
        if offset:
            headers['Range'] = 'bytes=%d-' % offset
            if self._validator:
                # A changed image then comes back whole (200), not mixed.
                headers['If-Range'] = self._validator
        request = urllib.request.Request(self.url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if not offset or exc.code != 416:
                raise
            # The image got shorter than what we already have.
            response = exc
        if offset and not self._resumes_at(response, offset):
            LOG.warning('image %s: the server did not resume at byte %d '
                        '(HTTP %d, Content-Range %r); starting again from '
                        'the first byte', self.url, offset, response.status,
                        response.headers.get('Content-Range'))
            if response.status != 200:
                response.close()
                response = urllib.request.urlopen(
                    urllib.request.Request(
                        self.url, headers={'User-Agent': USER_AGENT}),
                    timeout=self.timeout)
            self._remember(response)
            self._response = response
            raise RestartFromZero(self.url)
        if not offset:
            self._remember(response)
        return response

    def _resumes_at(self, response, offset):
        if response.status != 206:
            return False
        match = _CONTENT_RANGE.match(
            response.headers.get('Content-Range', '').strip())
        if not match or int(match.group(1)) != offset:
            return False
        total = match.group(3)
        return self.size is None or total == '*' or int(total) == self.size

    def _remember(self, response):
        length = response.headers.get('Content-Length')
        self.size = int(length) if length and length.isdigit() else None
        etag = response.headers.get('ETag')
        # Only a strong ETag or a date may go into If-Range (RFC 9110).
        if etag and not etag.startswith('W/'):
            self._validator = etag
        else:
            self._validator = response.headers.get('Last-Modified')

    def _close(self):
        if self._response is not None:
            self._response.close()
            self._response = None


def _is_permanent(exc):
    return (isinstance(exc, urllib.error.HTTPError)
            and 400 <= exc.code < 500 and exc.code not in _RETRYABLE_4XX)


def _describe(exc):
    if isinstance(exc, urllib.error.HTTPError):
        return 'HTTP %d %s' % (exc.code, exc.reason)
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, http.client.IncompleteRead):
        return 'connection closed before the end of the image'
    return str(exc) or type(exc).__name__


def open_source(url, **http_options):
    """The source for ``url``: http, https or file."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == 'file':
        return FileSource(url)
    if scheme in ('http', 'https'):
        return HttpSource(url, **http_options)
    raise errors.BadInput('image url %r: scheme must be http, https or '
                          'file' % url)
