"""DHCP-less virtual-media boots: the ramdisk's network from the node's
network_data (fa_agent.network_data, fa-network-data), rendered by the
real glean (the PyPI release the ramdisk installs) against a fake
``/sys/class/net`` and config drive in a temporary root. Mounting the CD
is the one step replaced (``run``): it needs a block device and root."""

import json
import os
import subprocess

import pytest

from fa_agent import network_data
from fa_agent.cmd import network_data as command

MAC = '52:54:00:fa:1a:02'
OTHER_MAC = '52:54:00:fa:1a:09'
DOCUMENT = {
    'links': [{'id': 'port0', 'type': 'phy', 'ethernet_mac_address': MAC}],
    'networks': [{'id': 'net0', 'link': 'port0', 'type': 'ipv4',
                  'network_id': 'fa-lab', 'ip_address': '192.0.2.50',
                  'netmask': '255.255.255.0',
                  'routes': [{'network': '198.51.100.0',
                              'netmask': '255.255.255.0',
                              'gateway': '192.0.2.1'}]}],
    'services': []}


@pytest.fixture
def root(tmp_path):
    for name, mac in (('enp1s0', MAC), ('enp2s0', OTHER_MAC)):
        port = tmp_path / 'sys' / 'class' / 'net' / name
        port.mkdir(parents=True)
        (port / 'address').write_text(mac + '\n')
        (port / 'addr_assign_type').write_text('0\n')
    return tmp_path


def write_document(root, document):
    path = root / 'mnt' / 'config' / 'openstack' / 'latest'
    path.mkdir(parents=True, exist_ok=True)
    (path / 'network_data.json').write_text(json.dumps(document))


def apply(root):
    return network_data.apply(root=str(root),
                              sys_class_net=str(root / 'sys/class/net'),
                              network_dir=str(root / 'run-network'))


def test_static_address_and_route_for_the_described_port_only(root):
    write_document(root, DOCUMENT)
    assert apply(root) == ['enp1s0']
    files = sorted(os.listdir(root / 'run-network'))
    assert files == ['05-fa-network-data-enp1s0.netdev',
                     '05-fa-network-data-enp1s0.network',
                     '06-fa-network-data-other-ports.network']
    network = (root / 'run-network' /
               '05-fa-network-data-enp1s0.network').read_text()
    assert 'MACAddress=%s' % MAC in network
    assert 'Address=192.0.2.50/24' in network
    assert 'Destination=198.51.100.0/24' in network
    assert 'Gateway=192.0.2.1' in network
    assert 'DHCP' not in network
    other = (root / 'run-network' /
             '06-fa-network-data-other-ports.network').read_text()
    assert 'Unmanaged=yes' in other
    # Both sort before the ramdisk's catch-all DHCP file, which networkd
    # would otherwise match first.
    assert all(name < '90-fa-ethernet.network' for name in files)


def test_an_ipv6_only_network(root):
    # The lab's uefi-virtual-media scenario: one static IPv6 address, no
    # IPv4 at all, no router advertisements to wait for.
    write_document(root, dict(DOCUMENT, networks=[
        {'id': 'net0', 'link': 'port0', 'type': 'ipv6',
         'network_id': 'fa-lab', 'ip_address': '2001:db8:fa1a::50',
         'netmask': 'ffff:ffff:ffff:ffff::',
         'routes': [{'network': '2001:db8:ffff::',
                     'netmask': 'ffff:ffff:ffff::',
                     'gateway': '2001:db8:fa1a::1'}]}]))
    assert apply(root) == ['enp1s0']
    network = (root / 'run-network' /
               '05-fa-network-data-enp1s0.network').read_text()
    assert 'Address=2001:db8:fa1a::50/64' in network
    assert 'Destination=2001:db8:ffff::/48' in network
    assert 'Gateway=2001:db8:fa1a::1' in network
    assert 'IPv6AcceptRA=no' in network
    assert 'DHCP' not in network and '192.0.2' not in network


@pytest.mark.parametrize('change, error', [
    # A newline would start a new networkd setting.
    (('networks', 'ip_address', '192.0.2.50\n[Network]\nDHCP=yes'),
     r'\$\.networks\[0\]\.ip_address: control'),
    (('links', 'ethernet_mac_address', '52:54:00:00:00:01'),
     r'\$\.links: no link names a port'),
])
def test_bad_documents_are_refused_with_their_path(root, change, error):
    bad = json.loads(json.dumps(DOCUMENT))
    section, key, value = change
    bad[section][0][key] = value
    write_document(root, bad)
    with pytest.raises(network_data.NetworkDataError, match=error):
        apply(root)
    assert not (root / 'run-network').exists()


def test_not_json_or_too_deep_is_an_error(root):
    path = root / 'mnt' / 'config' / 'openstack' / 'latest'
    path.mkdir(parents=True)
    (path / 'network_data.json').write_text('[' * 500)
    with pytest.raises(network_data.NetworkDataError, match=r'\$'):
        apply(root)


def test_command_does_nothing_without_boot_method_vmedia(tmp_path):
    cmdline = tmp_path / 'cmdline'
    cmdline.write_text('console=ttyS0 ipa-api-url=http://192.0.2.1:6385\n')
    calls = []
    assert command.main(['--cmdline', str(cmdline)],
                        run=lambda *a, **k: calls.append(a)) == 0
    assert calls == []


def test_command_without_a_config_drive_keeps_dhcp(tmp_path, monkeypatch,
                                                   capsys):
    cmdline = tmp_path / 'cmdline'
    cmdline.write_text('boot_method=vmedia ipa-agent-token=x\n')
    monkeypatch.setattr(network_data, 'wait_for_label',
                        lambda timeout: None)
    assert command.main(['--cmdline', str(cmdline), '--wait', '0']) == 0
    assert 'no config drive (label config-2)' in capsys.readouterr().out


def test_command_reports_a_bad_document_on_the_console(root, monkeypatch,
                                                       capsys):
    cmdline = root / 'cmdline'
    cmdline.write_text('boot_method=vmedia\n')
    bad = json.loads(json.dumps(DOCUMENT))
    bad['links'][0]['id'] = 'port0\r'
    write_document(root, bad)
    monkeypatch.setattr(network_data, 'wait_for_label',
                        lambda timeout: '/dev/sr0')
    monkeypatch.setattr(network_data, 'MOUNT_POINT',
                        str(root / 'mnt' / 'config'))
    mounts = []

    def run(argv, **kwargs):
        mounts.append(argv[0])
        return subprocess.CompletedProcess(argv, 0, '', '')
    assert command.main(['--cmdline', str(cmdline)], run=run) == 1
    out = capsys.readouterr().out
    assert 'network_data not applied (DHCP on every port): ' \
           '$.links[0].id: control character' in out
    assert mounts == ['mount', 'umount']
