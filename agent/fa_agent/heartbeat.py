"""The ramdisk's side of the lookup/heartbeat exchange with Ironic.

The ramdisk finds its boot interface (``BOOTIF`` on the kernel command
line), asks Ironic's ``/v1/lookup`` for its node and one-time agent token,
then heartbeats ``/v1/heartbeat/<node>`` with that token. The conductor
then reaches the ramdisk over SSH, so the heartbeat must say where (the
node's address) and which SSH host key to expect.

Ironic hands only ``callback_url``, ``agent_version``, ``agent_verify_ca``,
``agent_status`` and ``agent_status_message`` to the deploy interface. The
host key rides in the query of ``callback_url``: it is part of the
authenticated heartbeat (the token is checked before the interface sees
it), works with every API version that has heartbeats, and Ironic's API
itself refuses a later heartbeat whose ``callback_url`` differs from the
recorded one, so the fingerprint cannot silently change while a deploy
runs. Both sides use the helpers below, so the format lives in one place.

Only the standard library is used: this runs early in a small ramdisk.
"""

import base64
import dataclasses
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request

from fa_agent import safe_json

LOG = logging.getLogger(__name__)

# Lookup with agent tokens needs 1.62; heartbeat agent_version needs 1.36.
API_VERSION = '1.62'
# agent_status and agent_status_message in heartbeats need 1.72.
STATUS_API_VERSION = '1.72'
HOST_KEY_PARAM = 'fa_host_key'
HOST_KEY_TYPE_PARAM = 'fa_host_key_type'
# Fingerprint of the conductor key the ramdisk lets in (fast track: tells
# the conductor the ramdisk took the key of the new operation).
AUTHORIZED_KEY_PARAM = 'fa_authorized_key'
# Kernel parameter carrying the conductor's public key for this deploy.
SSH_KEY_KERNEL_PARAM = 'fa-ssh-key'
API_URL_KERNEL_PARAM = 'ipa-api-url'
# Set by Ironic's agent inspect interface (inspect_utils.IPA_CALLBACK_PARAM).
INSPECTION_KERNEL_PARAM = 'ipa-inspection-callback-url'
# A token Ironic generated before boot (virtual media); lookup and the
# inspection answer then show it masked.
AGENT_TOKEN_KERNEL_PARAM = 'ipa-agent-token'
# 1.84 makes /v1/continue_inspection answer like a lookup (node + token).
INSPECTION_API_VERSION = '1.84'
# Ironic's answers are a few KiB; a bigger one is not Ironic.
MAX_ANSWER_BYTES = 1024 * 1024
# Host keys in the order the ramdisk offers them; the conductor's SSH
# client is then restricted to the reported type.
HOST_KEY_FILES = ('/etc/ssh/ssh_host_ed25519_key.pub',
                  '/etc/ssh/ssh_host_ecdsa_key.pub',
                  '/etc/ssh/ssh_host_rsa_key.pub')
_SIOCGIFADDR = 0x8915


class HeartbeatError(Exception):
    """Lookup or heartbeat cannot succeed; the message says why.
    ``code`` is the HTTP status when Ironic answered with an error."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Callback:
    """What the conductor needs to reach the ramdisk over SSH."""

    address: str
    port: int
    host_key_type: str
    host_key_fingerprint: str
    authorized_key: str = None


# -- the callback URL contract (used by the driver too) ---------------------

def build_callback_url(address, port, host_key_type, fingerprint,
                       authorized_key=None):
    """``https://<address>:<ssh port>/?fa_host_key_type=..&fa_host_key=..``.

    Nothing ever speaks HTTP(S) to this URL: the conductor uses SSH with
    the pinned host key. The scheme is https only because Ironic's API
    wants an http-ish one and its conductor refuses anything but https://
    by default (``[agent]require_tls``).
    """
    host = address
    if ':' in address:
        host = '[%s]' % address
    pairs = [(HOST_KEY_TYPE_PARAM, host_key_type),
             (HOST_KEY_PARAM, fingerprint)]
    if authorized_key:
        pairs.append((AUTHORIZED_KEY_PARAM, authorized_key))
    query = urllib.parse.urlencode(pairs)
    return 'https://%s:%d/?%s' % (host, int(port), query)


def parse_callback_url(url):
    """A :class:`Callback` from a heartbeat's ``callback_url``.

    :raises ValueError: naming what is missing or malformed.
    """
    try:
        parsed = urllib.parse.urlsplit(url or '')
        port = parsed.port
    except ValueError as exc:
        raise ValueError('callback_url %r is not a URL: %s' % (url, exc))
    if not parsed.hostname:
        raise ValueError('callback_url %r has no node address' % url)
    try:
        ipaddress.ip_address(parsed.hostname)
    except ValueError:
        raise ValueError('callback_url %r: %r is not an IP address'
                         % (url, parsed.hostname))
    query = urllib.parse.parse_qs(parsed.query)
    fingerprint = (query.get(HOST_KEY_PARAM) or [''])[0]
    key_type = (query.get(HOST_KEY_TYPE_PARAM) or [''])[0]
    if not fingerprint.startswith('SHA256:') or len(fingerprint) < 20:
        raise ValueError('callback_url %r carries no SSH host key '
                         'fingerprint (%s=SHA256:...); is the ramdisk '
                         'running fa-heartbeat?' % (url, HOST_KEY_PARAM))
    if not key_type:
        raise ValueError('callback_url %r carries no %s'
                         % (url, HOST_KEY_TYPE_PARAM))
    authorized = (query.get(AUTHORIZED_KEY_PARAM) or [None])[0]
    return Callback(parsed.hostname, port or 22, key_type, fingerprint,
                    authorized)


def fingerprint_of_blob(blob):
    """OpenSSH's ``SHA256:...`` fingerprint of a public key blob."""
    digest = hashlib.sha256(blob).digest()
    return 'SHA256:' + base64.b64encode(digest).decode().rstrip('=')


def read_host_key(paths=HOST_KEY_FILES):
    """(key type, fingerprint) of the first host public key found."""
    for path in paths:
        try:
            with open(path) as f:
                fields = f.read().split()
        except OSError:
            continue
        if len(fields) >= 2:
            return fields[0], fingerprint_of_blob(base64.b64decode(fields[1]))
    raise HeartbeatError('no SSH host public key in %s' % ', '.join(paths))


def encode_public_key(key_type, base64_blob):
    """An OpenSSH public key as one kernel-parameter token (no spaces)."""
    return '%s:%s' % (key_type, base64_blob)


def decode_public_key(value):
    """The ``authorized_keys`` line for a :func:`encode_public_key` value."""
    key_type, _sep, blob = value.partition(':')
    if not key_type or not blob:
        raise ValueError('%s=%r is not "<type>:<base64>"'
                         % (SSH_KEY_KERNEL_PARAM, value))
    base64.b64decode(blob, validate=True)
    return '%s %s fa-conductor' % (key_type, blob)


# -- what the ramdisk knows about itself ------------------------------------

def read_cmdline(path='/proc/cmdline'):
    """Kernel parameters as a dict (flags map to None)."""
    with open(path) as f:
        params = {}
        for token in f.read().split():
            key, sep, value = token.partition('=')
            params[key] = value if sep else None
    return params


def mac_from_bootif(value):
    """``aa:bb:..`` from a ``BOOTIF`` value (PXE writes
    01-aa-bb-cc-dd-ee-ff, 01 being the ARP hardware type)."""
    parts = value.lower().replace(':', '-').split('-')
    if len(parts) == 7:
        parts = parts[1:]
    return ':'.join(parts)



def interfaces(sys_class_net='/sys/class/net'):
    """{name: mac} of the node's network interfaces, loopback excluded."""
    result = {}
    for name in sorted(os.listdir(sys_class_net)):
        try:
            with open(os.path.join(sys_class_net, name, 'address')) as f:
                mac = f.read().strip().lower()
        except OSError:
            continue
        if name != 'lo' and mac and mac != '00:00:00:00:00:00':
            result[name] = mac
    return result


def boot_interface(params, nics):
    """Name of the interface the node booted from, per ``BOOTIF``."""
    bootif = params.get('BOOTIF')
    if not bootif:
        return None
    mac = mac_from_bootif(bootif)
    for name, nic_mac in nics.items():
        if nic_mac == mac:
            return name
    raise HeartbeatError('BOOTIF=%s names no interface of this node '
                         '(%s)' % (bootif, ', '.join(sorted(nics.values()))))


def ipv4_address(interface):
    """The IPv4 address of ``interface``, or None if it has none yet."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                 struct.pack('256s', interface.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


# Flags of /proc/net/if_inet6 for an address not usable (yet): still in
# duplicate address detection, or found a duplicate.
_IFA_F_TENTATIVE = 0x40
_IFA_F_DADFAILED = 0x08


def ipv6_addresses(proc='/proc'):
    """{interface: (address, link_local)} of usable IPv6 addresses, a
    global one preferred over a link-local one (host-scope ones, the
    loopback's, left out)."""
    try:
        with open(os.path.join(proc, 'net', 'if_inet6')) as f:
            text = f.read()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6 or len(fields[0]) != 32:
            continue
        hex_address, _index, _plen, scope, flags, name = fields
        try:
            address = socket.inet_ntop(socket.AF_INET6,
                                       bytes.fromhex(hex_address))
            if int(flags, 16) & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED):
                continue
        except ValueError:
            continue
        if scope == '10':
            continue
        link_local = scope == '20'
        if name not in found or (found[name][1] and not link_local):
            found[name] = (address, link_local)
    return found


def global_ipv6_address(interface, proc='/proc'):
    """A usable global IPv6 address of ``interface``, or None: a
    link-local one is no use to a conductor on another link."""
    address, link_local = ipv6_addresses(proc).get(interface, (None, True))
    return None if link_local else address


def is_ipv6_url(url):
    """Whether ``url``'s host is an IPv6 address literal."""
    try:
        host = urllib.parse.urlsplit(url or '').hostname
        return ipaddress.ip_address(host or '').version == 6
    except ValueError:
        return False


# -- talking to Ironic ------------------------------------------------------

def _lookup_answer(body, token_param=None):
    """(node uuid, agent token, heartbeat timeout) from a lookup-style
    answer, checked field by field: the answer crosses the network."""
    node = body.get('node') if isinstance(body, dict) else None
    uuid = node.get('uuid') if isinstance(node, dict) else None
    if not isinstance(uuid, str) or not uuid:
        raise HeartbeatError('the answer names no node: %s'
                             % safe_json.short_repr(body))
    config = body.get('config')
    config = config if isinstance(config, dict) else {}
    token = config.get('agent_token')
    if token == '******' and token_param:
        token = token_param
    if not isinstance(token, str) or not token or token == '******':
        raise HeartbeatError('Ironic gave no usable agent token for node '
                             '%s (one was already handed out)' % uuid)
    timeout = config.get('heartbeat_timeout')
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout <= 86400:
        timeout = 300
    return uuid, token, int(timeout)


def request(url, method='GET', body=None, version=API_VERSION, timeout=30):
    """(HTTP status, JSON answer) of one call to Ironic's API; the answer
    is read within MAX_ANSWER_BYTES and parsed by ``safe_json``.

    :raises HeartbeatError: naming the call, for any failure.
    """
    what = '%s %s' % (method, urllib.parse.urlsplit(url).path)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method,
        headers={'Content-Type': 'application/json',
                 'Accept': 'application/json',
                 'X-OpenStack-Ironic-API-Version': version})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            text = response.read(MAX_ANSWER_BYTES + 1) or b'null'
            try:
                return response.status, safe_json.loads(text,
                                                        MAX_ANSWER_BYTES)
            except safe_json.DocumentError as exc:
                # ``code`` tells the caller the call itself succeeded.
                raise HeartbeatError('%s: the answer is not Ironic\'s: %s'
                                     % (what, exc), code=response.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode(errors='replace')
        raise HeartbeatError('%s: HTTP %d %s' % (what, exc.code, detail),
                             code=exc.code)
    except HeartbeatError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HeartbeatError('%s: %s' % (what, exc))


class IronicAPI:
    """The two ramdisk endpoints of Ironic's API.

    A lookup waits longer than a heartbeat (``lookup_timeout``): Ironic
    hands a node's agent token out in one lookup answer only, so an
    answer this side stopped waiting for is lost for good and the
    ramdisk could never heartbeat (a busy conductor took 44 s for one
    in tools/bench_conductor.py's runs). A lost heartbeat is simply sent
    again."""

    def __init__(self, api_url, timeout=30, lookup_timeout=180):
        self.api_url = api_url.rstrip('/')
        self.timeout = timeout
        self.lookup_timeout = max(timeout, lookup_timeout)

    def _request(self, method, path, body=None, version=API_VERSION,
                 timeout=None):
        return request(self.api_url + path, method, body, version=version,
                       timeout=timeout or self.timeout)

    def lookup_document(self, macs):
        """Ironic's whole lookup answer for these MACs."""
        query = urllib.parse.urlencode({'addresses': ','.join(macs)})
        _status, body = self._request('GET', '/v1/lookup?' + query,
                                      timeout=self.lookup_timeout)
        return body

    def lookup(self, macs, body=None, token_param=None):
        """(node uuid, agent token, heartbeat timeout) for these MACs.
        ``token_param``: the token Ironic put on the kernel command line
        (``ipa-agent-token``, virtual media), which lookup then masks."""
        if body is None:
            body = self.lookup_document(macs)
        return _lookup_answer(body, token_param)

    def heartbeat(self, node_uuid, token, callback_url, agent_version,
                  report=None):
        """``report``: the agent run's status
        (:class:`fa_agent.status_report.Report`), sent as agent_status and
        agent_status_message (API 1.72); None: the heartbeat of old."""
        body = {'callback_url': callback_url, 'agent_token': token,
                'agent_version': agent_version}
        version = API_VERSION
        if report is not None:
            body['agent_status'] = report.agent_status
            body['agent_status_message'] = report.message()
            version = STATUS_API_VERSION
        self._request('POST', '/v1/heartbeat/%s' % node_uuid, body,
                      version=version)


def post_inspection(callback_url, data, token_param=None, timeout=60):
    """Post inspection ``data`` to Ironic's continue-inspection URL.

    :returns: (node uuid, agent token, heartbeat timeout) when Ironic
        answers with a node and a usable token (it does from API 1.84 on),
        else (node uuid or None, None, None).
    :raises HeartbeatError: when the post fails.
    """
    parsed = urllib.parse.urlsplit(callback_url or '')
    if parsed.scheme not in ('http', 'https') or not parsed.netloc:
        raise HeartbeatError('%s=%r is not an http(s) URL'
                             % (INSPECTION_KERNEL_PARAM, callback_url))
    try:
        _status, body = request(callback_url, 'POST', data,
                                version=INSPECTION_API_VERSION,
                                timeout=timeout)
    except HeartbeatError as exc:
        if exc.code and 200 <= exc.code < 300:
            # Ironic took the data; posting it again would not help.
            LOG.warning('%s', exc)
            return None, None, None
        raise
    try:
        return _lookup_answer(body, token_param)
    except HeartbeatError as exc:
        LOG.info('inspection answer allows no heartbeats: %s', exc)
        uuid = body.get('uuid') if isinstance(body, dict) else None
        node = body.get('node') if isinstance(body, dict) else None
        if isinstance(node, dict):
            uuid = node.get('uuid')
        return (uuid if isinstance(uuid, str) else None), None, None


def retry(action, what, deadline, first_delay=1.0, max_delay=30.0,
          sleep=time.sleep, clock=time.monotonic):
    """Call ``action`` until it succeeds, doubling the delay each time.

    :raises HeartbeatError: the last error, once ``deadline`` has passed.
    """
    delay = first_delay
    while True:
        try:
            return action()
        except HeartbeatError as exc:
            if clock() + delay > deadline:
                raise HeartbeatError('%s kept failing: %s' % (what, exc))
            LOG.warning('%s failed (%s); retrying in %.0f s', what, exc,
                        delay)
            sleep(delay)
            delay = min(delay * 2, max_delay)
