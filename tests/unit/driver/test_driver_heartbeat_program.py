"""The ramdisk's fa-heartbeat program: callback URL contract, what it reads
from the node, and its lookup/heartbeat exchange against a real HTTP
server on loopback that answers like Ironic's ramdisk endpoints (the
functional test runs it against real Ironic)."""

import http.server
import json
import os
import threading
import time

from fa_agent import heartbeat
from fa_agent.cmd import heartbeat as heartbeat_cmd

import pytest

FINGERPRINT = 'SHA256:' + 'x' * 43


def test_callback_url_round_trip():
    url = heartbeat.build_callback_url('192.0.2.10', 2222, 'ssh-ed25519',
                                       FINGERPRINT)
    assert url.startswith('https://192.0.2.10:2222/?')
    callback = heartbeat.parse_callback_url(url)
    assert callback == heartbeat.Callback('192.0.2.10', 2222, 'ssh-ed25519',
                                          FINGERPRINT)


def test_callback_url_ipv6():
    url = heartbeat.build_callback_url('2001:db8::5', 22, 'ssh-ed25519',
                                       FINGERPRINT)
    assert heartbeat.parse_callback_url(url).address == '2001:db8::5'


@pytest.mark.parametrize('url, reason', [
    ('http://192.0.2.1:9999', 'no SSH host key fingerprint'),
    ('http://:22/?fa_host_key=' + FINGERPRINT, 'no node address'),
    ('http://node.example:22/?fa_host_key_type=ssh-ed25519&fa_host_key='
     + FINGERPRINT, 'not an IP address'),
    ('http://192.0.2.1:22/?fa_host_key=' + FINGERPRINT, 'fa_host_key_type'),
    ('http://192.0.2.1:99999/', 'is not a URL'),
])
def test_bad_callback_urls(url, reason):
    with pytest.raises(ValueError, match=reason):
        heartbeat.parse_callback_url(url)


def test_public_key_encoding():
    value = heartbeat.encode_public_key('ssh-ed25519', 'AAAAC3Nz')
    assert ' ' not in value
    assert heartbeat.decode_public_key(value).startswith(
        'ssh-ed25519 AAAAC3Nz ')
    with pytest.raises(ValueError):
        heartbeat.decode_public_key('garbage')


def test_host_key_fingerprint_matches_openssh(tmp_path):
    # ssh-keygen -lf of this key prints this fingerprint.
    pub = tmp_path / 'key.pub'
    pub.write_text('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiLpqzwvubkQc3kX'
                   'U4jAgV4t36uNzb7jW2c3LI6Npb0 test\n')
    key_type, fingerprint = heartbeat.read_host_key([str(tmp_path / 'no'),
                                                     str(pub)])
    assert key_type == 'ssh-ed25519'
    assert fingerprint == 'SHA256:P8uJD9ksF87VDAHdC0YXxYXV3kXw8shxqINByZvpJzA'


def test_boot_interface_from_bootif(tmp_path):
    for name, mac in (('eth0', '52:54:00:00:00:01'),
                      ('eth1', '52:54:00:00:00:02'),
                      ('lo', '00:00:00:00:00:00')):
        (tmp_path / name).mkdir()
        (tmp_path / name / 'address').write_text(mac + '\n')
    nics = heartbeat.interfaces(str(tmp_path))
    assert nics == {'eth0': '52:54:00:00:00:01', 'eth1': '52:54:00:00:00:02'}
    assert heartbeat.boot_interface(
        {'BOOTIF': '01-52-54-00-00-00-02'}, nics) == 'eth1'
    assert heartbeat.boot_interface({}, nics) is None
    with pytest.raises(heartbeat.HeartbeatError, match='names no interface'):
        heartbeat.boot_interface({'BOOTIF': '01-aa-aa-aa-aa-aa-aa'}, nics)


def test_loopback_address():
    assert heartbeat.ipv4_address('lo') == '127.0.0.1'
    assert heartbeat.ipv4_address('no-such-nic0') is None


def test_retry_backs_off_then_gives_up():
    delays, calls = [], []
    clock = [0.0]

    def sleep(seconds):
        delays.append(seconds)
        clock[0] += seconds

    def action():
        calls.append(1)
        raise heartbeat.HeartbeatError('down')

    with pytest.raises(heartbeat.HeartbeatError, match='lookup kept failing'):
        heartbeat.retry(action, 'lookup', deadline=40, sleep=sleep,
                        clock=lambda: clock[0])
    assert delays == [1, 2, 4, 8, 16]


class _Ironic(http.server.BaseHTTPRequestHandler):
    """Answers /v1/lookup and /v1/heartbeat like Ironic's API does."""

    node = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123'
    lookups_failing = 1
    seen = []

    def log_message(self, *args):
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.seen.append(('GET', self.path,
                          self.headers['X-OpenStack-Ironic-API-Version']))
        if type(self).lookups_failing:
            type(self).lookups_failing -= 1
            return self._reply(404, {'error_message': 'not found'})
        self._reply(200, {'node': {'uuid': self.node},
                          'config': {'agent_token': 'secret-token',
                                     'heartbeat_timeout': 300}})

    def do_POST(self):
        body = json.loads(self.rfile.read(
            int(self.headers['Content-Length'])))
        self.seen.append(('POST', self.path, body))
        self._reply(202, None)


def test_main_installs_key_looks_up_and_heartbeats(tmp_path):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Ironic)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Ironic.seen = []
    try:
        api = 'http://127.0.0.1:%d' % server.server_address[1]
        cmdline = tmp_path / 'cmdline'
        cmdline.write_text('BOOT_IMAGE=x ipa-api-url=%s fa-ssh-key=%s\n' % (
            api, heartbeat.encode_public_key('ssh-ed25519', 'AAAAC3Nz')))
        host_key = tmp_path / 'host.pub'
        host_key.write_text('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiLpqzwvub'
                            'kQc3kXU4jAgV4t36uNzb7jW2c3LI6Npb0\n')
        authorized = tmp_path / 'ssh' / 'authorized_keys'
        rc = heartbeat_cmd.main(
            ['--cmdline', str(cmdline), '--address', '127.0.0.1',
             '--ssh-port', '2222', '--mac', '52:54:00:12:34:56',
             '--host-key', str(host_key), '--authorized-keys',
             str(authorized), '--once', '--max-wait', '30'],
            sleep=lambda s: None)
    finally:
        server.shutdown()
    assert rc == 0
    assert oct(os.stat(authorized).st_mode & 0o777) == '0o600'
    assert authorized.read_text().startswith('ssh-ed25519 AAAAC3Nz ')
    gets = [s for s in _Ironic.seen if s[0] == 'GET']
    assert len(gets) == 2  # the first lookup failed and was retried
    assert gets[0][1] == '/v1/lookup?addresses=52%3A54%3A00%3A12%3A34%3A56'
    assert gets[0][2] == heartbeat.API_VERSION
    (_post, path, body), = [s for s in _Ironic.seen if s[0] == 'POST']
    assert path == '/v1/heartbeat/' + _Ironic.node
    assert body['agent_token'] == 'secret-token'
    callback = heartbeat.parse_callback_url(body['callback_url'])
    assert (callback.address, callback.port) == ('127.0.0.1', 2222)
    assert callback.host_key_fingerprint == heartbeat.read_host_key(
        [str(host_key)])[1]


def test_main_without_api_url(tmp_path):
    cmdline = tmp_path / 'cmdline'
    cmdline.write_text('quiet\n')
    assert heartbeat_cmd.main(['--cmdline', str(cmdline)]) == 1


@pytest.fixture
def no_ipv6(monkeypatch):
    """This machine's own IPv6 addresses are not the node's."""
    monkeypatch.setattr(heartbeat, 'global_ipv6_address',
                        lambda interface, proc='/proc': None)


def test_address_wait_polls_quickly_until_dhcp_answers(monkeypatch, no_ipv6):
    # fa-heartbeat starts beside DHCP (its unit does not wait for
    # network-online.target), so it polls the boot interface's address
    answers = iter([None, None, None, '192.0.2.7'])
    monkeypatch.setattr(heartbeat, 'ipv4_address',
                        lambda interface: next(answers))
    clock, delays = [0.0], []

    def sleep(seconds):
        delays.append(seconds)
        clock[0] += seconds
    assert heartbeat_cmd._wait_for_address(
        ['enp1s0'], deadline=30, sleep=sleep,
        clock=lambda: clock[0]) == ('enp1s0', '192.0.2.7')
    assert delays == [0.25, 0.25, 0.25]


def test_without_bootif_the_first_port_with_a_lease_is_announced(
        monkeypatch, no_ipv6):
    # GRUB (UEFI pxe, http boot) puts no BOOTIF on the command line:
    # every port asks for DHCP, the one that got an answer is announced
    leases = {'enp2s0': [None, '198.51.100.4']}
    monkeypatch.setattr(heartbeat, 'ipv4_address', lambda name: (
        leases[name].pop(0) if name in leases else None))
    assert heartbeat_cmd._wait_for_address(
        ['enp1s0', 'enp2s0', 'enp3s0'], deadline=30, sleep=lambda s: None,
        clock=lambda: 0.0) == ('enp2s0', '198.51.100.4')


def test_a_port_renamed_while_waiting_is_found_by_its_new_name(
        monkeypatch, no_ipv6):
    # udev renamed eth0 to enp1s0 while fa-heartbeat waited (seen in the
    # lab under load): the names are read again at every poll
    names = iter([['eth0'], ['eth0'], ['enp1s0'], ['enp1s0']])
    leases = {'enp1s0': '192.0.2.160'}
    monkeypatch.setattr(heartbeat, 'ipv4_address', leases.get)
    assert heartbeat_cmd._wait_for_address(
        lambda: next(names), deadline=30, sleep=lambda s: None,
        clock=lambda: 0.0) == ('enp1s0', '192.0.2.160')


def write_if_inet6(proc, flags):
    # enp1s0: a link-local address, and network_data's static global one
    # (flags 0xc0: permanent and still tentative, in duplicate address
    # detection; 0x80 once detection is over)
    (proc / 'net').mkdir(parents=True, exist_ok=True)
    (proc / 'net' / 'if_inet6').write_text(
        'fe80000000000000505400fffe123401 02 40 20 80   enp1s0\n'
        '20010db8fa1a00000000000000000050 02 40 00 %02x   enp1s0\n' % flags)


def test_an_ipv6_only_port_is_announced_once_its_address_left_dad(
        monkeypatch, tmp_path):
    # A DHCP-less boot on an IPv6-only network: no IPv4 address ever; the
    # tentative address cannot be used yet, the link-local one never is
    monkeypatch.setattr(heartbeat, 'ipv4_address', lambda name: None)
    proc = tmp_path / 'proc'
    write_if_inet6(proc, 0xc0)
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        write_if_inet6(proc, 0x80)
    assert heartbeat_cmd._announced_address(
        ['enp1s0'], None, time.monotonic() + 30, sleep,
        'http://[2001:db8:fa1a::1]:6385',
        proc=str(proc)) == '2001:db8:fa1a::50'
    assert polls == [0.25]


def test_an_ipv6_api_waits_briefly_for_the_ipv6_address(
        monkeypatch, tmp_path):
    # Dual stack, the IPv4 address first: an IPv6 Ironic gets the IPv6
    # address once duplicate address detection is over ...
    monkeypatch.setattr(heartbeat, 'ipv4_address', lambda name: '192.0.2.50')
    write_if_inet6(tmp_path, 0xc0)
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds
        if clock[0] >= 1.0:
            write_if_inet6(tmp_path, 0x80)
    assert heartbeat_cmd._wait_for_address(
        ['enp1s0'], 30, sleep=sleep, clock=lambda: clock[0],
        prefer_ipv6=True, proc=str(tmp_path)) == ('enp1s0',
                                                   '2001:db8:fa1a::50')
    assert clock[0] == 1.0
    # ... and the IPv4 one when none comes within the grace.
    write_if_inet6(tmp_path, 0xc0)
    clock[0] = 0.0
    assert heartbeat_cmd._wait_for_address(
        ['enp1s0'], 30, sleep=lambda s: clock.__setitem__(0, clock[0] + s),
        clock=lambda: clock[0], prefer_ipv6=True,
        proc=str(tmp_path)) == ('enp1s0', '192.0.2.50')
    assert clock[0] == heartbeat_cmd.IPV6_GRACE


def test_an_ipv4_api_waits_for_dhcpv4_when_slaac_was_first(
        monkeypatch, tmp_path):
    # A network-booted ramdisk on a dual-stack network: SLAAC or DHCPv6
    # can finish before DHCPv4. An IPv4 Ironic still gets the IPv4
    # address ...
    write_if_inet6(tmp_path, 0x80)
    clock = [0.0]
    monkeypatch.setattr(heartbeat, 'ipv4_address', lambda name: (
        '192.0.2.50' if clock[0] >= 2.0 else None))

    def sleep(seconds):
        clock[0] += seconds
    assert heartbeat_cmd._wait_for_address(
        ['enp1s0'], 30, sleep=sleep, clock=lambda: clock[0],
        proc=str(tmp_path)) == ('enp1s0', '192.0.2.50')
    assert clock[0] == 2.0
    # ... and the IPv6 one when no DHCPv4 answer comes within the grace.
    monkeypatch.setattr(heartbeat, 'ipv4_address', lambda name: None)
    clock[0] = 0.0
    assert heartbeat_cmd._wait_for_address(
        ['enp1s0'], 30, sleep=sleep, clock=lambda: clock[0],
        proc=str(tmp_path)) == ('enp1s0', '2001:db8:fa1a::50')
    assert clock[0] == heartbeat_cmd.IPV4_GRACE


@pytest.mark.parametrize('api_url, announced', [
    ('http://[2001:db8:fa1a::1]:6385', '2001:db8:fa1a::50'),
    ('http://192.0.2.1:6385', '192.0.2.50'),
    ('http://ironic.example.org:6385', '192.0.2.50'),
])
def test_a_dual_stack_port_is_announced_in_the_api_urls_family(
        monkeypatch, tmp_path, api_url, announced):
    monkeypatch.setattr(heartbeat, 'ipv4_address', lambda name: '192.0.2.50')
    write_if_inet6(tmp_path, 0x80)
    assert heartbeat_cmd._announced_address(
        ['enp1s0'], 'enp1s0', time.monotonic() + 30, lambda s: None, api_url,
        proc=str(tmp_path)) == announced


def test_address_wait_names_the_interface_when_dhcp_never_answers(
        monkeypatch, no_ipv6):
    monkeypatch.setattr(heartbeat, 'ipv4_address', lambda interface: None)
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds
    with pytest.raises(heartbeat.HeartbeatError,
                       match='enp1s0 got no IPv4 or global IPv6 address'):
        heartbeat_cmd._wait_for_address(['enp1s0'], deadline=5,
                                        sleep=sleep, clock=lambda: clock[0])
    assert clock[0] <= 5


def test_sshd_wait_returns_once_the_port_takes_connections():
    import socket
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    port = listener.getsockname()[1]
    sleeps = []

    def sleep(seconds):
        # sshd comes up while fa-heartbeat waits
        sleeps.append(seconds)
        listener.listen(1)
    try:
        heartbeat_cmd._wait_for_sshd(port, deadline=float('inf'),
                                     sleep=sleep)
    finally:
        listener.close()
    assert sleeps == [0.1]


def test_sshd_wait_gives_up_naming_the_port():
    import socket
    with socket.socket() as unused:
        unused.bind(('127.0.0.1', 0))
        port = unused.getsockname()[1]
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds
    with pytest.raises(heartbeat.HeartbeatError,
                       match='sshd does not take connections on port %d'
                       % port):
        heartbeat_cmd._wait_for_sshd(port, deadline=1, sleep=sleep,
                                     clock=lambda: clock[0])


class _IronicMasked(_Ironic):
    """Lookup of a node whose token Ironic pre-generated for virtual
    media (redfish-virtual-media puts it on the kernel command line as
    ipa-agent-token): the answer masks it."""

    def do_GET(self):
        self.seen.append(('GET', self.path, None))
        self._reply(200, {'node': {'uuid': self.node},
                          'config': {'agent_token': '******',
                                     'heartbeat_timeout': 300}})


def test_token_from_the_kernel_command_line_when_lookup_masks_it(tmp_path):
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _IronicMasked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _IronicMasked.seen = []
    try:
        cmdline = tmp_path / 'cmdline'
        cmdline.write_text('ipa-api-url=http://127.0.0.1:%d '
                           'ipa-agent-token=pre-generated-token\n'
                           % server.server_address[1])
        host_key = tmp_path / 'host.pub'
        host_key.write_text('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiLpqzwvub'
                            'kQc3kXU4jAgV4t36uNzb7jW2c3LI6Npb0\n')
        rc = heartbeat_cmd.main(
            ['--cmdline', str(cmdline), '--address', '127.0.0.1',
             '--mac', '52:54:00:12:34:56', '--host-key', str(host_key),
             '--once', '--max-wait', '30'], sleep=lambda s: None)
    finally:
        server.shutdown()
    assert rc == 0
    (_post, _path, body), = [s for s in _IronicMasked.seen
                             if s[0] == 'POST']
    assert body['agent_token'] == 'pre-generated-token'
