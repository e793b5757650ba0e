"""The lab's proof of which way a node booted (tools/lab/boot_paths.py),
read from dnsmasq's and the HTTP server's logs. The log lines are copied
from lab runs (UEFI node on Ironic's ``pxe``, ``http`` and
``http-ipxe``)."""
# ruff: noqa: E501  (log lines as the servers wrote them)

import configparser
import ipaddress
import json
import os
import sys
from xml.etree import ElementTree

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                'tools'))
from lab import boot_paths  # noqa: E402
from lab import dhcp  # noqa: E402
from lab import host  # noqa: E402
from lab import ironic  # noqa: E402
from lab import scenarios  # noqa: E402
from lab import settings  # noqa: E402
from lab import virt  # noqa: E402

UEFI = settings.NODES['uefi']
BIOS = settings.NODES['bios']

# The UEFI node (.160) on pxe: shim, GRUB and its configurations over
# TFTP; the BIOS node (.159) at the same time on pxe too.
DNSMASQ_PXE = """\
dnsmasq-dhcp[2930]: 3233541877 vendor class: PXEClient:Arch:00007:UNDI:003000
dnsmasq-dhcp[2930]: 3233541877 DHCPACK(fa-lab-br) 192.0.2.160 52:54:00:fa:1a:02
dnsmasq-dhcp[2930]: 3233541877 sent size: 12 option: 67 bootfile-name  bootx64.efi
dnsmasq-dhcp[2930]: 3759423548 DHCPACK(fa-lab-br) 192.0.2.159 52:54:00:fa:1a:01
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/pxelinux.0 to 192.0.2.159
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/ldlinux.c32 to 192.0.2.159
dnsmasq-tftp[2930]: error 8 User aborted the transfer received from 192.0.2.160
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/bootx64.efi to 192.0.2.160
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/grubx64.efi to 192.0.2.160
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/grub/grub.cfg to 192.0.2.160
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/52:54:00:fa:1a:02.conf to 192.0.2.160
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/6d4a/deploy_kernel to 192.0.2.160
dnsmasq-tftp[2930]: sent /var/lib/fa-lab/tftpboot/6d4a/deploy_ramdisk to 192.0.2.160
"""

# The UEFI node on http-ipxe: OVMF's HTTP boot client, then iPXE.
DNSMASQ_HTTP_IPXE = """\
dnsmasq-dhcp[5460]: 1159666749 vendor class: HTTPClient:Arch:00016:UNDI:003000
dnsmasq-dhcp[5460]: 1159666749 DHCPACK(fa-lab-br) 192.0.2.160 52:54:00:fa:1a:02
dnsmasq-dhcp[5460]: 3522129497 user class: iPXE
dnsmasq-dhcp[5460]: 3522129497 DHCPACK(fa-lab-br) 192.0.2.160 52:54:00:fa:1a:02
"""
HTTP_IPXE = """\
192.0.2.1 - - [07/Dec/2026 00:49:38] "GET /images/ HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 00:44:55] "HEAD /snponly.efi HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 00:44:55] "GET /snponly.efi HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 00:45:13] "GET /boot.ipxe HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 00:45:13] "GET /pxelinux.cfg/52-54-00-fa-1a-02 HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 00:45:13] "GET /891e/deploy_kernel HTTP/1.1" 200 -
"""
# The UEFI node on http (lab run of 2026-12-07): OVMF's HTTP boot loads
# shim, shim the lab's network GRUB, which asks DHCP itself
# (lab.netgrub); GRUB then reads Ironic's grub.cfg and the node's
# configuration (tftp_root's absolute path) and the kernel and initramfs
# by the paths relative to tftp_root that Ironic writes there.
DNSMASQ_HTTP = """\
dnsmasq-dhcp[13716]: 1494150565 DHCPACK(fa-lab-br) 192.0.2.160 52:54:00:fa:1a:02
dnsmasq-dhcp[13716]: 1796626982 DHCPACK(fa-lab-br) 192.0.2.160 52:54:00:fa:1a:02
"""
HTTP_GRUB = """\
192.0.2.160 - - [07/Dec/2026 07:10:31] "HEAD /bootx64.efi HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 07:10:31] "GET /bootx64.efi HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 07:10:31] "GET /revocations_sku.efi HTTP/1.1" 404 -
192.0.2.160 - - [07/Dec/2026 07:10:31] "GET //grubx64.efi HTTP/1.1" 200 -
"""
HTTP_GRUB_CONFIGURED = """\
192.0.2.160 - - [07/Dec/2026 07:10:33] "GET /grub/x86_64-efi/terminal.lst HTTP/1.1" 404 -
192.0.2.160 - - [07/Dec/2026 07:10:33] "GET /grub/grub.cfg HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 07:10:33] "GET /var/lib/fa-lab/tftpboot/52:54:00:fa:1a:02.conf HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 07:10:38] "GET ../httpboot/f1ce/deploy_kernel HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 07:10:40] "GET ../httpboot/f1ce/deploy_ramdisk HTTP/1.1" 200 -
"""
# The same node booted by QEMU's iPXE ROM instead of the firmware: it
# fetches boot.ipxe at once and never snponly.efi.
HTTP_IPXE_ROM = """\
192.0.2.160 - - [07/Dec/2026 00:37:56] "GET /boot.ipxe HTTP/1.1" 200 -
192.0.2.160 - - [07/Dec/2026 00:37:56] "GET /6d4a/deploy_kernel HTTP/1.1" 200 -
"""


@pytest.fixture
def lab(tmp_path):
    lab = settings.Lab(state_dir=str(tmp_path))
    os.makedirs(lab.path('logs'))
    return lab


def write_logs(lab, dnsmasq='', http=''):
    for name, text in (('dnsmasq', dnsmasq), ('http', http)):
        with open(lab.path('logs', name + '.log'), 'a') as f:
            f.write(text)


def test_pxe_uefi_and_bios_are_told_apart_by_address(lab):
    since = boot_paths.log_offsets(lab)
    write_logs(lab, DNSMASQ_PXE)
    tftp, http = boot_paths.fetched(lab, UEFI.mac, since)
    assert tftp[:4] == ['bootx64.efi', 'grubx64.efi', 'grub.cfg',
                        '52:54:00:fa:1a:02.conf']
    assert 'pxelinux.0' not in tftp and http == []
    assert boot_paths.check(lab, UEFI, 'pxe', since)[0] is None
    assert boot_paths.check(lab, BIOS, 'pxe', since)[0] is None


def test_a_node_that_did_not_boot_the_expected_way_fails(lab):
    since = boot_paths.log_offsets(lab)
    write_logs(lab, DNSMASQ_PXE)
    # The UEFI node booted over TFTP, not HTTP.
    wrong, _ = boot_paths.check(lab, UEFI, 'http-ipxe', since)
    assert 'did not fetch snponly.efi, boot.ipxe' in wrong


def test_http_ipxe_needs_the_firmware_to_fetch_ipxe_over_http(lab):
    since = boot_paths.log_offsets(lab)
    write_logs(lab, DNSMASQ_HTTP_IPXE, HTTP_IPXE)
    wrong, summary = boot_paths.check(lab, UEFI, 'http-ipxe', since)
    assert wrong is None
    assert summary.startswith('http-ipxe (uefi): TFTP none, HTTP '
                              'snponly.efi, boot.ipxe')
    # An iPXE option ROM skips the firmware's HTTP boot: not proof.
    since = boot_paths.log_offsets(lab)
    write_logs(lab, DNSMASQ_HTTP_IPXE, HTTP_IPXE_ROM)
    wrong, _ = boot_paths.check(lab, UEFI, 'http-ipxe', since)
    assert 'did not fetch snponly.efi' in wrong


def test_http_needs_grub_to_fetch_the_kernel_over_http(lab):
    since = boot_paths.log_offsets(lab)
    write_logs(lab, DNSMASQ_HTTP, HTTP_GRUB + HTTP_GRUB_CONFIGURED)
    wrong, summary = boot_paths.check(lab, UEFI, 'http', since)
    assert wrong is None
    assert summary.startswith('http (uefi): TFTP none, HTTP bootx64.efi')
    # Debian's signed network GRUB stops at its prompt after shim loaded
    # it over HTTP: nothing else is fetched.
    since = boot_paths.log_offsets(lab)
    write_logs(lab, DNSMASQ_HTTP, HTTP_GRUB)
    wrong, _ = boot_paths.check(lab, UEFI, 'http', since)
    assert 'did not fetch grub.cfg, deploy_kernel, deploy_ramdisk' in wrong


def test_only_lines_after_the_offsets_count(lab):
    write_logs(lab, DNSMASQ_PXE)
    since = boot_paths.log_offsets(lab)
    assert boot_paths.fetched(lab, UEFI.mac, since) == ([], [])
    wrong, _ = boot_paths.check(lab, UEFI, 'pxe', since)
    assert 'did not fetch bootx64.efi' in wrong


def test_every_scenario_boot_interface_is_enabled_and_checked():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ironic.config(settings.Lab(openstack=False), '/x'))
    enabled = parser['DEFAULT']['enabled_boot_interfaces'].split(',')
    for name, interface in boot_paths.BOOT_INTERFACES.items():
        assert name in scenarios.ALL
        assert interface in enabled
        node = scenarios.NODE_OF[name]
        assert (interface, node.boot_mode) in boot_paths.EXPECTED
    # Ironic copies each loader from Debian's packages, GRUB from the
    # lab's build (host.boot_loaders).
    loaders = dict(item.split(':', 1) for item in
                   parser['pxe']['loader_file_paths'].split(','))
    assert loaders == host.boot_loaders(settings.Lab(openstack=False))
    assert loaders['grubx64.efi'].endswith('/ironic/grubnetx64.efi')
    for name in ('pxe_bootfile_name', 'uefi_pxe_bootfile_name',
                 'ipxe_bootfile_name', 'uefi_ipxe_bootfile_name'):
        default = {'pxe_bootfile_name': 'pxelinux.0',
                   'uefi_pxe_bootfile_name': 'bootx64.efi'}.get(name)
        assert parser['pxe'].get(name, default) in loaders


def test_uefi_vm_boots_with_its_firmware_not_an_ipxe_rom(tmp_path):
    lab = settings.Lab(state_dir=str(tmp_path))
    for node in (UEFI, BIOS):
        root = ElementTree.fromstring(virt.domain_xml(lab, node))
        rom = root.find('devices/interface/rom')
        assert (rom is not None and rom.get('enabled') == 'no') == (
            node.boot_mode == 'uefi')


def test_esp_image_has_shim_grub_and_a_config_finding_the_iso(lab):
    import subprocess
    from lab import vmedia
    os.makedirs(lab.path('ironic'))
    path = vmedia.build_esp(lab)
    listing = subprocess.run(['mdir', '-b', '-i', path, '::EFI/BOOT'],
                             check=True, capture_output=True,
                             text=True).stdout.split()
    assert sorted(os.path.basename(p).lower() for p in listing) == [
        'bootx64.efi', 'grub.cfg', 'grubx64.efi']
    cfg = subprocess.run(['mtype', '-i', path, '::EFI/BOOT/grub.cfg'],
                         check=True, capture_output=True, text=True).stdout
    # The ISO's configuration, where Ironic is told to write it.
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ironic.config(lab, '/x'))
    assert parser['DEFAULT']['grub_config_path'] == vmedia.GRUB_CONFIG_PATH
    assert parser['DEFAULT']['esp_image'] == path
    assert 'configfile ($root)/boot/grub/grub.cfg' in cfg


def test_dhcp_less_proof_reads_requests_of_that_mac_only(lab):
    from lab import vmedia
    write_logs(lab, DNSMASQ_PXE)
    since = boot_paths.log_offsets(lab)['dnsmasq']
    assert vmedia.dhcp_lines(lab, UEFI.mac, since) == []
    write_logs(lab, 'dnsmasq-dhcp[1]: 7 DHCPDISCOVER(fa-lab-br) '
                    '52:54:00:FA:1A:02 ignored\n')
    assert len(vmedia.dhcp_lines(lab, UEFI.mac, since)) == 1
    assert vmedia.dhcp_lines(lab, BIOS.mac, since) == []


def test_network_data_is_what_ironics_api_accepts():
    """Ironic refuses network_data outside its schema (HTTP 400): the
    lab's, and so the ramdisk's input, must pass it."""
    import ironic
    import jsonschema
    from lab import vmedia
    schema_path = os.path.join(os.path.dirname(ironic.__file__), 'api',
                               'controllers', 'v1',
                               'network-data-schema.json')
    with open(schema_path) as f:
        schema = json.load(f)
    for node in settings.NODES.values():
        jsonschema.validate(vmedia.network_data(node), schema)
    lab = settings.Lab()
    network = ipaddress.ip_network('%s/%d' % (lab.address6, lab.prefix6),
                                   strict=False)
    addresses = {vmedia.static_address(n) for n in settings.NODES.values()}
    assert len(addresses) == len(settings.NODES)
    assert all(ipaddress.ip_address(a) in network for a in addresses)


# dnsmasq's log (lab run of 2026-12-07): QEMU's iPXE ROM on the BIOS node
# (DUID-UUID, type 4) and both ramdisks (DUID-LL from the MAC, type 3,
# rapid commit: SOLICIT then REPLY).
DNSMASQ_DHCPV6 = """\
dnsmasq-dhcp[32086]: 10731872 DHCPREQUEST(fa-lab-br) 00:04:e5:a6:bf:a7:c3:88:4b:f5:b5:e0:b8:96:3d:f3:d2:2e
dnsmasq-dhcp[32086]: 10731872 DHCPREPLY(fa-lab-br) 2001:db8:fa1a::1f3 00:04:e5:a6:bf:a7:c3:88:4b:f5:b5:e0:b8:96:3d:f3:d2:2e
dnsmasq-dhcp[32086]: RTR-SOLICIT(fa-lab-br) 52:54:00:fa:1a:01
dnsmasq-dhcp[32086]: 7100130 DHCPSOLICIT(fa-lab-br) 00:03:00:01:52:54:00:fa:1a:01
dnsmasq-dhcp[32086]: 7100130 DHCPREPLY(fa-lab-br) 2001:db8:fa1a::1ff 00:03:00:01:52:54:00:fa:1a:01 fa-ramdisk
dnsmasq-dhcp[32086]: 7100130 sent size: 10 option:  1 client-id  00:03:00:01:52:54:00:fa:1a:01
dnsmasq-dhcp[32086]: 7854938 DHCPREPLY(fa-lab-br) 2001:db8:fa1a::100 00:03:00:01:52:54:00:fa:1a:02 fa-ramdisk
"""


def test_ipv6_leases_are_the_ramdisks_by_its_mac_duid(lab):
    log = lab.path('logs', 'dnsmasq.log')
    with open(log, 'w') as f:
        f.write('dnsmasq-dhcp[1]: DHCPv6, IP range 2001:db8:fa1a::100\n')
    since = os.path.getsize(log)
    with open(log, 'a') as f:
        f.write(DNSMASQ_DHCPV6)
    bios, uefi = settings.NODES['bios'], settings.NODES['uefi']
    # Not iPXE's lease (its DUID is the system UUID), only the ramdisk's.
    assert dhcp.ipv6_leases(lab, bios.mac, since) == ['2001:db8:fa1a::1ff']
    assert dhcp.ipv6_leases(lab, uefi.mac, since) == ['2001:db8:fa1a::100']
    assert dhcp.ipv6_leases(lab, bios.mac, os.path.getsize(log)) == []
