"""Where image bytes come from: an http(s) or file URL, read as a stream
of chunks.

A dropped connection is resumed with a Range request, so a multi-gigabyte
image survives a flaky network without starting over. A resumed reply is
only trusted when it is a 206 whose Content-Range starts exactly where the
stream stopped; a server that ignores Range (or an image that changed on
the server) answers 200 with the whole body, and then the consumer must
start again from byte zero: :class:`RestartFromZero` tells it so.

What a URL may reach is the operator's :class:`policy.ImagePolicy`: a
``file://`` URL only files below an allowed directory (symlinks resolved,
system trees never, as Ironic's ``FileImageService`` rules of
CVE-2024-47211), a redirect only http(s) and never from https down to
http, an https server only with a certificate the configured CA bundle
(or the system's) vouches for. Messages show URLs through
:mod:`fa_agent.redact`: they may carry credentials or signatures.
"""

import base64
import http.client
import logging
import os
import re
import ssl
import stat
import time
import urllib.error
import urllib.parse
import urllib.request

from fa_agent import errors
from fa_agent import redact
from fa_agent.images import policy as policy_mod

LOG = logging.getLogger(__name__)

CHUNK = 1024 * 1024
ATTEMPTS = 5
RETRY_DELAY = 3.0
TIMEOUT = 60.0
USER_AGENT = 'fa-agent'
# 4xx replies other than these will not get better by asking again.
_RETRYABLE_4XX = (408, 425, 429)
_CONTENT_RANGE = re.compile(r'^bytes (\d+)-(\d+)/(\d+|\*)$')
# Ironic's BLOCKED_FILE_URL_PATHS: never an image, whatever is allowed.
BLOCKED_FILE_URL_PATHS = ('/dev', '/sys', '/proc', '/boot', '/etc', '/run')


class RestartFromZero(Exception):
    """The server sent the whole image again instead of the rest of it.

    Whatever was already handed on must be discarded; calling
    :meth:`HttpSource.chunks` again yields the image from its first byte.
    """


def _under(path, directories):
    return any(path == d or path.startswith(d.rstrip('/') + '/')
               for d in directories)


def allowed_file_path(url, allowed_paths):
    """The real path of a ``file://`` URL that ``allowed_paths`` permit.

    Both the path as written and the path with every symlink resolved
    must lie below an allowed directory and outside the system trees,
    so neither ``..`` nor a planted symlink leads out.

    :raises errors.BadInput: naming the rule the URL breaks.
    """
    shown = redact.url(url)
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    if parts.netloc not in ('', 'localhost'):
        raise errors.BadInput('file URL %s names host %r: only local files '
                              '(file:///path) can be read'
                              % (shown, parts.netloc))
    if not path.startswith('/') or '\0' in path:
        raise errors.BadInput('file URL %s: the path must be absolute'
                              % shown)
    if not allowed_paths:
        raise errors.BadInput('file URL %s: file:// URLs are disabled '
                              '(--file-url-allowed-paths is empty)' % shown)
    allowed = set(allowed_paths)
    allowed.update(os.path.realpath(p) for p in allowed_paths)
    for candidate in (os.path.abspath(path), os.path.realpath(path)):
        blocked = next((b for b in BLOCKED_FILE_URL_PATHS
                        if _under(candidate, (b,))), None)
        if blocked:
            raise errors.BadInput('file URL %s: %s is never allowed in '
                                  'file:// URLs (it resolves to %s)'
                                  % (shown, blocked, candidate))
        if not _under(candidate, allowed):
            raise errors.BadInput(
                'file URL %s: %s is not below an allowed path (%s; see '
                '--file-url-allowed-paths)'
                % (shown, candidate, ', '.join(sorted(allowed_paths))))
    return os.path.realpath(path)


class FileSource:
    """An image in a local file (``file://`` URL) that the policy's
    allow-list permits; only a regular file is read."""

    def __init__(self, url, allowed_paths=None):
        self.url = url
        if allowed_paths is None:
            allowed_paths = policy_mod.DEFAULT.file_url_allowed_paths
        self.path = allowed_file_path(url, allowed_paths)
        try:
            fd = self._open()
            try:
                self.size = os.fstat(fd).st_size
            finally:
                os.close(fd)
        except OSError as exc:
            raise errors.ImageDownloadFailed(
                'cannot read image %s: %s'
                % (redact.url(url), exc.strerror)) from exc

    def _open(self):
        # O_NOFOLLOW: the path was resolved, so a symlink here is one
        # planted since; O_NONBLOCK: a FIFO must not hang the open.
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise errors.BadInput('file URL %s: %s is not a regular file'
                                  % (redact.url(self.url), self.path))
        os.set_blocking(fd, True)
        return fd

    def chunks(self):
        try:
            with open(self._open(), 'rb', buffering=0) as stream:
                os.posix_fadvise(stream.fileno(), 0, 0,
                                 os.POSIX_FADV_SEQUENTIAL)
                while True:
                    data = stream.read(CHUNK)
                    if not data:
                        return
                    yield data
        except OSError as exc:
            raise errors.ImageDownloadFailed(
                'cannot read image %s: %s'
                % (redact.url(self.url), exc.strerror or exc)) from exc


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) only, and never from https to http:
    a downgrade would hand the image (and its checksum's worth) to
    anyone on the path."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        newurl = urllib.parse.urljoin(req.full_url, newurl)
        old = urllib.parse.urlsplit(req.full_url).scheme.lower()
        new = urllib.parse.urlsplit(newurl).scheme.lower()
        if new not in ('http', 'https') or (old == 'https' and
                                            new == 'http'):
            raise errors.ImageDownloadFailed(
                'image %s: refusing the redirect (HTTP %d) to %s: %s'
                % (redact.url(req.full_url), code, redact.url(newurl),
                   'https must not be downgraded to http' if new == 'http'
                   else 'only http and https are followed'))
        new_request = super().redirect_request(req, fp, code, msg, headers,
                                               newurl)
        if new_request is not None and \
                urllib.parse.urlsplit(newurl).netloc.lower() != \
                urllib.parse.urlsplit(req.full_url).netloc.lower():
            # The URL's credentials are for its own server only.
            new_request.remove_header('Authorization')
        return new_request


def _split_credentials(url):
    """``url`` without its ``user:password@`` and the Basic
    Authorization header they stand for (None without them): urllib
    would take them for part of the host name."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.netloc.rsplit('@', 1)[1]
    pair = '%s:%s' % (urllib.parse.unquote(parts.username or ''),
                      urllib.parse.unquote(parts.password or ''))
    return (urllib.parse.urlunsplit(parts._replace(netloc=netloc)),
            'Basic ' + base64.b64encode(pair.encode()).decode('ascii'))


def opener(policy=None):
    """A urllib opener for image downloads under ``policy``: its CA
    bundle, safe redirects, the environment's proxies."""
    policy = policy or policy_mod.DEFAULT
    try:
        context = ssl.create_default_context(cafile=policy.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise errors.BadInput('cannot load the CA bundle %s for image '
                              'downloads: %s' % (policy.ca_file, exc)) \
            from exc
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _SafeRedirects())


class HttpSource:
    """An image behind an http(s) URL, resumed by Range after a failure.

    The first request is sent at construction, so a missing image fails
    before anything is written and ``size`` (Content-Length) is known.
    """

    def __init__(self, url, attempts=None, retry_delay=None, timeout=None,
                 policy=None):
        self.url = url
        self._opener = opener(policy)
        self._request_url, self._authorization = _split_credentials(url)
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
                % (redact.url(self.url), reason, self._failures,
                   offset)) from exc
        LOG.warning('image %s: %s at byte %d; retrying in %.0f s '
                    '(attempt %d of %d)', redact.url(self.url), reason,
                    offset,
                    self.retry_delay, self._failures + 1, self.attempts)
        time.sleep(self.retry_delay)

    def _request(self, offset):
        headers = self._headers()
        if offset:
            headers['Range'] = 'bytes=%d-' % offset
            if self._validator:
                # A changed image then comes back whole (200), not mixed.
                headers['If-Range'] = self._validator
        request = urllib.request.Request(self._request_url, headers=headers)
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if not offset or exc.code != 416:
                raise
            # The image got shorter than what we already have.
            response = exc
        if offset and not self._resumes_at(response, offset):
            LOG.warning('image %s: the server did not resume at byte %d '
                        '(HTTP %d, Content-Range %r); starting again from '
                        'the first byte', redact.url(self.url), offset,
                        response.status,
                        response.headers.get('Content-Range'))
            if response.status != 200:
                response.close()
                response = self._opener.open(
                    urllib.request.Request(self._request_url,
                                           headers=self._headers()),
                    timeout=self.timeout)
            self._remember(response)
            self._response = response
            raise RestartFromZero(redact.url(self.url))
        if not offset:
            self._remember(response)
        return response

    def _headers(self):
        headers = {'User-Agent': USER_AGENT}
        if self._authorization:
            headers['Authorization'] = self._authorization
        return headers

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
        reason = 'HTTP %d %s' % (exc.code, exc.reason)
    elif isinstance(exc, urllib.error.URLError):
        reason = str(exc.reason)
    elif isinstance(exc, http.client.IncompleteRead):
        reason = 'connection closed before the end of the image'
    else:
        reason = str(exc) or type(exc).__name__
    return redact.text(reason)


def open_source(url, policy=None, **http_options):
    """The source for ``url`` (http, https or file) under ``policy``
    (default: :data:`policy.DEFAULT`)."""
    policy = policy or policy_mod.DEFAULT
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == 'file':
        return FileSource(url, policy.file_url_allowed_paths)
    if scheme in ('http', 'https'):
        return HttpSource(url, policy=policy, **http_options)
    raise errors.BadInput('image url %r: scheme must be http, https or '
                          'file' % redact.url(url))
