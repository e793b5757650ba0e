"""Masks the secrets that image and configdrive URLs carry.

Tenants' image URLs may hold credentials (``user:password@host``) or
signatures and tokens in the query (Swift temp URLs, S3 presigned URLs).
Whatever a person or a log can read (progress lines, the agent's log and
status, the node's ``driver_internal_info`` and ``last_error``, the
ramdisk logs Ironic stores) shows the URL through :func:`url` or
:func:`text`, never as given. Both halves import this one module.
"""

import re
import urllib.parse

MASK = '***'
# A URL inside free text: a scheme, "://", then anything up to white space
# or a quote (messages quote URLs with %r).
_URL_IN_TEXT = re.compile(r'''[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+''')


def url(value):
    """``value`` with its password and every query value masked; the
    scheme, host, path and query keys stay, so a reader can still tell
    which image it was."""
    if not isinstance(value, str):
        return value
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if '@' in netloc:
        userinfo, host = netloc.rsplit('@', 1)
        user = userinfo.split(':', 1)[0]
        netloc = '%s:%s@%s' % (user, MASK, host) if user else \
            '%s@%s' % (MASK, host)
    query = parts.query
    if query:
        query = '&'.join(
            (pair.split('=', 1)[0] + '=' + MASK) if '=' in pair else MASK
            for pair in query.split('&'))
    fragment = MASK if parts.fragment else ''
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path,
                                    query, fragment))


def text(value):
    """``value`` (any message) with every URL in it masked by :func:`url`."""
    if not isinstance(value, str):
        return value
    return _URL_IN_TEXT.sub(_masked_match, value)


def _masked_match(match):
    # Punctuation that ends a sentence or a parenthesis is the message's,
    # not the URL's: keep it outside the mask.
    found = match.group(0)
    core = found.rstrip('.,;:!?)]}')
    return url(core) + found[len(core):]
