"""``fa-heartbeat``: announce the ramdisk to Ironic so the conductor can
reach it over SSH.

    fa-heartbeat [--api-url URL] [--address IP] [--ssh-port 22]
                 [--authorized-keys /root/.ssh/authorized_keys] [--once]

Runs as a boot service of the ramdisk: installs the conductor's public key
from the kernel command line (``fa-ssh-key``), looks the node up by its MAC
addresses, then heartbeats with the agent token, the node's address on the
boot interface and the SSH host-key fingerprint, retrying with backoff.
Keeps heartbeating (so the conductor sees a live ramdisk) unless --once.

Booted for inspection (``ipa-inspection-callback-url`` on the kernel
command line, see fa_agent.inspection), it first posts the node's
inventory there; then it heartbeats with the token Ironic's answer gave
(fast-track), or waits to be powered off.
It also keeps looking the node up: a key the conductor publishes there
for a new operation on this running ramdisk (fast track) replaces the
installed one (:mod:`fa_agent.ramdisk_keys`), and the next heartbeat
says so.
Once the agent has run on this ramdisk, every heartbeat also carries its
run's status (:mod:`fa_agent.status_report`): at once when it changes
(a step done, the run finished), and at least every --status-interval
seconds (by default the heartbeat interval) while it runs. An Ironic too
old for that gets plain heartbeats.
"""

import argparse
import importlib.metadata
import logging
import os
import socket
import sys
import time

from fa_agent import heartbeat
from fa_agent import ramdisk_keys
from fa_agent import status_report

LOG = logging.getLogger('fa-heartbeat')


def _agent_version():
    try:
        return importlib.metadata.version('ironic-fa-agent')
    except importlib.metadata.PackageNotFoundError:
        return '0.0.0'


def install_authorized_key(params, path):
    """Write the conductor's key from the kernel command line to ``path``."""
    value = params.get(heartbeat.SSH_KEY_KERNEL_PARAM)
    if not value:
        LOG.info('no %s on the kernel command line; keeping %s as it is',
                 heartbeat.SSH_KEY_KERNEL_PARAM, path)
        return False
    line = heartbeat.decode_public_key(value)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(line + '\n')
    return True


# How long an address of the other family waits for one of the API URL's
# family. An IPv6 URL: for an IPv6 address still in duplicate address
# detection (about 1 s). Otherwise for DHCPv4, which can answer after
# SLAAC or DHCPv6 did: a conductor on an IPv4-only network cannot reach
# the IPv6 address.
IPV6_GRACE = 5.0
IPV4_GRACE = 10.0


def _wait_for_address(names, deadline, sleep=time.sleep,
                      clock=time.monotonic, poll=0.25, prefer_ipv6=False,
                      proc='/proc'):
    """(interface, address) of the first of ``names`` with an IPv4 or a
    global IPv6 address, waiting for DHCP (or SLAAC, or networkd's
    static address from network_data) to set one. The API URL's family
    is preferred: with ``prefer_ipv6`` (an IPv6 URL) an IPv6 address is
    waited for up to :data:`IPV6_GRACE` more once there is an IPv4 one,
    otherwise an IPv4 one up to :data:`IPV4_GRACE` once there is an
    IPv6 one.

    The unit starts beside DHCP (not after network-online.target), so
    Python's start-up overlaps it; a short poll takes the lease at once.
    """
    waiting = False
    fallback, fallback_since = None, None
    while True:
        # A callable gives the names anew at each poll: udev may rename
        # eth0 to enp1s0 while fa-heartbeat waits for its address.
        current = names() if callable(names) else names
        for name in current:
            ipv4 = heartbeat.ipv4_address(name)
            ipv6 = heartbeat.global_ipv6_address(name, proc)
            preferred, other = (ipv6, ipv4) if prefer_ipv6 else (ipv4, ipv6)
            if preferred:
                return name, preferred
            if other and fallback is None:
                fallback, fallback_since = (name, other), clock()
        grace = IPV6_GRACE if prefer_ipv6 else IPV4_GRACE
        if fallback and clock() - fallback_since >= grace:
            return fallback
        if clock() + poll > deadline:
            raise heartbeat.HeartbeatError(
                '%s got no IPv4 or global IPv6 address (no DHCP answer?)'
                % ', '.join(current))
        if not waiting:
            LOG.info('waiting for an address on %s', ', '.join(current))
            waiting = True
        sleep(poll)


def _announced_address(ports, boot_nic, deadline, sleep, api_url,
                       proc='/proc'):
    """The address the conductor is to reach this ramdisk at; of the
    API URL's family when the URL names an address (an IPv6 Ironic gets
    the IPv6 address of a dual-stack port)."""
    name, address = _wait_for_address(
        ports, deadline, sleep=sleep,
        prefer_ipv6=heartbeat.is_ipv6_url(api_url), proc=proc)
    if not boot_nic:
        LOG.info('no BOOTIF on the kernel command line: announcing %s of '
                 '%s, the first port with an address', address, name)
    return address


def _wait_for_sshd(port, deadline, sleep=time.sleep, clock=time.monotonic,
                   poll=0.1):
    """Return once sshd takes connections on ``port``: the conductor logs
    in right after the heartbeat, once. The unit is not ordered after
    ssh.service, so Python's start-up and the lookup overlap sshd's."""
    while True:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=2):
                return
        except OSError as exc:
            if clock() + poll > deadline:
                raise heartbeat.HeartbeatError(
                    'sshd does not take connections on port %d: %s'
                    % (port, exc)) from None
        sleep(poll)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='fa-heartbeat', description=__doc__.split('\n\n')[0])
    parser.add_argument('--cmdline', default='/proc/cmdline',
                        help='kernel command line to read (default: '
                        '%(default)s)')
    parser.add_argument('--sys-class-net', default='/sys/class/net',
                        help=argparse.SUPPRESS)
    parser.add_argument('--api-url', help='Ironic API URL (default: '
                        'ipa-api-url from the kernel command line)')
    parser.add_argument('--address', help='address the conductor reaches '
                        'this node at (default: the boot interface\'s)')
    parser.add_argument('--mac', action='append', default=[],
                        help='MAC address to look up with (repeatable; '
                        'default: every interface)')
    parser.add_argument('--ssh-port', type=int, default=22)
    parser.add_argument('--host-key', action='append', default=[],
                        help='SSH host public key file (default: the '
                        'ed25519, ecdsa, rsa keys in /etc/ssh)')
    parser.add_argument('--authorized-keys',
                        help='write the fa-ssh-key from the kernel command '
                        'line to this file first')
    parser.add_argument('--max-wait', type=float, default=3600,
                        help='give up after this many seconds '
                        '(default: %(default)s)')
    parser.add_argument('--interval', type=float,
                        help='seconds between heartbeats (default: a third '
                        'of Ironic\'s heartbeat timeout)')
    parser.add_argument('--lookup-interval', type=float, default=10.0,
                        help='seconds between lookups that pick up a new '
                        'conductor key (fast track; default: %(default)s)')
    parser.add_argument('--wait-for-sshd', action='store_true',
                        help='heartbeat only once sshd takes connections '
                        'on --ssh-port (on 127.0.0.1)')
    parser.add_argument('--status-file', default='/run/fa-agent/status.json',
                        help='the agent\'s status file, reported in '
                        'heartbeats (default: %(default)s)')
    parser.add_argument('--exit-code-file',
                        default='/run/fa-agent/deploy/exit_code',
                        help='where the conductor\'s start wrapper records '
                        'the agent\'s exit code (default: %(default)s)')
    parser.add_argument('--status-interval', type=float,
                        help='seconds between heartbeats while the agent '
                        'runs (default: the heartbeat interval; every '
                        'change of its status is reported at once anyway)')
    parser.add_argument('--status-check-interval', type=float, default=2.0,
                        help='seconds between two reads of the agent\'s '
                        'status file; a change is heartbeated at once '
                        '(default: %(default)s)')
    parser.add_argument('--no-status', action='store_true',
                        help='never report the agent\'s status')
    parser.add_argument('--once', action='store_true',
                        help='stop after the first accepted heartbeat')
    parser.add_argument('--sys-root', default='/', help=argparse.SUPPRESS)
    parser.add_argument('--debug', action='store_true')
    return parser.parse_args(argv)


def _take_published_key(body, path):
    """Install the key a lookup answer publishes (fast track); the
    fingerprint of the key ``path`` holds afterwards."""
    try:
        changed, authorized = ramdisk_keys.refresh(body, path)
    except ValueError as exc:
        LOG.error('not installing the published conductor key: %s', exc)
        return ramdisk_keys.installed_fingerprint(path)
    if changed:
        LOG.info('installed the conductor key %s published for this node',
                 authorized)
    return authorized


def _look_again(api, macs, token, path, authorized):
    """Look the node up again: a new token (the conductor wiped the old
    one) is taken, so is a newly published key. (token, fingerprint of
    the installed key)."""
    try:
        body = api.lookup_document(macs)
    except heartbeat.HeartbeatError as exc:
        LOG.debug('lookup: %s', exc)
        return token, authorized
    config = (body.get('config') if isinstance(body, dict) else None) or {}
    fresh = config.get('agent_token')
    if fresh and fresh != '******' and fresh != token:
        LOG.info('Ironic handed out a new agent token; using it')
        token = fresh
    if path:
        authorized = _take_published_key(body, path)
    return token, authorized


def _report(args):
    if args.no_status:
        return None
    return status_report.read(args.status_file, args.exit_code_file)


class _Beat:
    """Heartbeats with the agent's status while Ironic takes it."""

    def __init__(self, api, node, version):
        self.api, self.node, self.version = api, node, version
        self.with_status = True

    def __call__(self, token, callback_url, report):
        if report is None or not self.with_status:
            return self.api.heartbeat(self.node, token, callback_url,
                                      self.version)
        try:
            return self.api.heartbeat(self.node, token, callback_url,
                                      self.version, report)
        except heartbeat.HeartbeatError as exc:
            if exc.code not in (400, 406):
                raise
            self.api.heartbeat(self.node, token, callback_url, self.version)
            LOG.warning('Ironic refused the agent status in a heartbeat '
                        '(%s); heartbeating without it from now on', exc)
            self.with_status = False


def main(argv=None, sleep=time.sleep, clock=time.monotonic):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format='%(asctime)s fa-heartbeat %(levelname)s %(message)s')
    deadline = time.monotonic() + args.max_wait
    try:
        params = heartbeat.read_cmdline(args.cmdline)
        if args.authorized_keys:
            install_authorized_key(params, args.authorized_keys)
        api_url = args.api_url or params.get(heartbeat.API_URL_KERNEL_PARAM)
        nics = heartbeat.interfaces(args.sys_class_net)
        boot_nic = heartbeat.boot_interface(params, nics)
        # Without BOOTIF (Ironic's GRUB configurations for UEFI pxe and
        # http boot set none) every wired port asks for DHCP
        # (90-fa-ethernet.network): the first with a lease is announced.
        boot_mac = nics[boot_nic] if boot_nic else None

        def ports():
            """The ports' names now, by MAC: udev renames them (eth0 to
            enp1s0) as late as it likes, also while we wait."""
            now = heartbeat.interfaces(args.sys_class_net)
            return ([n for n, mac in now.items() if mac == boot_mac]
                    if boot_mac else sorted(now))
        address = args.address
        found = None
        if params.get(heartbeat.INSPECTION_KERNEL_PARAM):
            # The post waits for an address of the ports first, and is
            # retried (the inventory collected anew) until Ironic answers.
            # Imported only here: with oslo's modules it takes seconds
            # under QEMU TCG, on the way to the first heartbeat of every
            # boot that is not an inspection.
            from fa_agent import inspection
            inspection_url = params[heartbeat.INSPECTION_KERNEL_PARAM]
            wait = None
            if nics and not address:
                def wait():
                    _wait_for_address(
                        ports, deadline, sleep=sleep, clock=clock,
                        prefer_ipv6=heartbeat.is_ipv6_url(inspection_url))
            found = inspection.run(params, _agent_version(), deadline,
                                   sys_root=args.sys_root, sleep=sleep,
                                   sys_class_net=args.sys_class_net,
                                   wait_for_address=wait)
            if found is None or not api_url:
                # Ironic powers the node off (no fast-track) or answered
                # in a way that allows no heartbeats.
                return inspection.idle(args.once, sleep=sleep)
        if not api_url:
            raise heartbeat.HeartbeatError(
                'no Ironic API URL: pass --api-url or boot with %s=URL'
                % heartbeat.API_URL_KERNEL_PARAM)
        if not address:
            if not nics:
                raise heartbeat.HeartbeatError(
                    'no network interface to announce: pass --address')
            address = _announced_address(ports, boot_nic, deadline, sleep,
                                         api_url)
        macs = args.mac or ([nics[boot_nic]] if boot_nic else []) or \
            list(nics.values())
        key_type, fingerprint = heartbeat.read_host_key(
            args.host_key or heartbeat.HOST_KEY_FILES)
        api = heartbeat.IronicAPI(api_url)

        def first_lookup():
            body = api.lookup_document(macs)
            return body, api.lookup(
                macs, body,
                token_param=params.get(heartbeat.AGENT_TOKEN_KERNEL_PARAM))
        if found:
            # The inspection answer handed out this boot's token already;
            # a lookup would only see it masked. A key for the next
            # operation arrives with a later lookup (_look_again).
            body = None
            node, token, timeout = found
        else:
            body, (node, token, timeout) = heartbeat.retry(
                first_lookup, 'lookup', deadline, sleep=sleep)
        authorized = None
        if args.authorized_keys and body is not None:
            authorized = _take_published_key(body, args.authorized_keys)
        if args.wait_for_sshd:
            _wait_for_sshd(args.ssh_port, deadline, sleep=sleep)
        LOG.info('node %s; heartbeating from %s port %d', node, address,
                 args.ssh_port)
        interval = args.interval or max(5.0, timeout / 3.0)
        status_interval = args.status_interval or interval
        beat = _Beat(api, node, _agent_version())
        report = _report(args)
        due, beat_now = 0.0, True
        running = False
        lookup_due = clock() + args.lookup_interval
        while True:
            if beat_now or clock() >= due:
                callback_url = heartbeat.build_callback_url(
                    address, args.ssh_port, key_type, fingerprint,
                    authorized)
                heartbeat.retry(
                    lambda: beat(token, callback_url, report),
                    'heartbeat', deadline, sleep=sleep)
                if args.once:
                    return 0
                running = report is not None and not report.final
                due = clock() + (min(interval, status_interval)
                                 if running else interval)
            sleep(min(args.status_check_interval, args.lookup_interval,
                      interval, status_interval))
            new_authorized = authorized
            if not running and clock() >= lookup_due:
                # A new token or the next operation's key (fast track)
                # comes by lookup; neither while the agent runs, so
                # Ironic's API is spared a lookup per node every
                # --lookup-interval then.
                lookup_due = clock() + args.lookup_interval
                token, new_authorized = _look_again(api, macs, token,
                                                    args.authorized_keys,
                                                    authorized)
            # The status file is local: read often, so the conductor
            # hears of the run's end within seconds.
            new_report = _report(args)
            beat_now = new_authorized != authorized or new_report != report
            authorized, report = new_authorized, new_report
    except (heartbeat.HeartbeatError, OSError, ValueError) as exc:
        LOG.error('%s', exc)
        return 1


if __name__ == '__main__':
    sys.exit(main())
