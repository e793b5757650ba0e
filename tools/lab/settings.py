"""Names, addresses, ports and paths of the lab, in one place.

The addresses are from 192.0.2.0/24 (TEST-NET-1, RFC 5737) and
2001:db8::/32 (RFC 3849): documentation only, routed nowhere, and used
solely inside the lab's own namespace.
"""

import dataclasses
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One virtual machine and how Ironic reaches its BMC: ``ipmi``
    (virtualbmc, one UDP port per VM) or ``redfish`` (sushy-tools, one
    HTTP endpoint for all VMs)."""

    name: str
    boot_mode: str
    mac: str
    bmc: str
    bmc_port: int = None
    disks_gib: tuple = (5, 5)
    memory_mib: int = 2048
    vcpus: int = 2
    # Extra driver_info at enrolment (fast track, kexec per node).
    driver_info: tuple = ()
    # The conductor group the node is enrolled in when the lab runs
    # several conductors (see CONDUCTORS).
    conductor_group: str = ''

    @property
    def domain(self):
        return 'fa-lab-' + self.name


NODES = {
    # The BIOS node walks the lifecycle with fast track and kexec: one
    # power-on from enrolment to the installed OS.
    'bios': NodeSpec('bios', 'bios', '52:54:00:fa:1a:01', 'ipmi', 6230,
                     driver_info=(('fa_kexec', 'true'),)),
    # The UEFI node takes Ironic's default path: a reboot per operation.
    'uefi': NodeSpec('uefi', 'uefi', '52:54:00:fa:1a:02', 'redfish',
                     driver_info=(('fast_track', 'false'),),
                     conductor_group='fa-ha'),
}


@dataclasses.dataclass(frozen=True)
class Conductor:
    """One ironic-conductor process of the multi-conductor lab."""

    host: str
    group: str = ''

    @property
    def process(self):
        return 'ironic-conductor-' + self.host


# The multi-conductor lab (the OpenStack mode: MariaDB and RabbitMQ are
# there): one conductor for the default group (the BIOS node, Nova's
# lifecycle) and two sharing group ``fa-ha`` (the UEFI node), so a
# conductor of the UEFI node can be killed while the BIOS node's
# operations go on untouched.
CONDUCTORS = (Conductor('fa-lab'), Conductor('fa-lab-ha-a', 'fa-ha'),
              Conductor('fa-lab-ha-b', 'fa-ha'))

# Serials the VM's disks carry; schemes match disks by them.
DISK_SERIAL = 'fa-disk-%d'


@dataclasses.dataclass(frozen=True)
class Lab:
    """Where the lab keeps its state, and its network plan."""

    state_dir: str = os.environ.get('FA_LAB_DIR', '/var/lib/fa-lab')
    cache_dir: str = os.environ.get('FA_CACHE_DIR',
                                    '/var/cache/ironic-fa-driver')
    netns: str = 'fa-lab'
    bridge: str = 'fa-lab-br'
    address: str = '192.0.2.1'
    prefix: int = 24
    # The lab's IPv6 network: DHCPv6 for network-booted ramdisks
    # (dhcp6_range), static addresses from network_data on DHCP-less
    # boots (lab.vmedia).
    address6: str = '2001:db8:fa1a::1'
    prefix6: int = 64
    dhcp_range: tuple = ('192.0.2.100', '192.0.2.199')
    # DHCPv6 (stateful) for network-booted ramdisks; the static IPv6
    # addresses of DHCP-less boots (lab.vmedia) are below it.
    dhcp6_range: tuple = ('2001:db8:fa1a::100', '2001:db8:fa1a::1ff')
    ironic_port: int = 6385
    http_port: int = 8080
    # vbmcd's control socket (ZeroMQ), on the namespace's own loopback.
    vbmcd_port: int = 50891
    # sushy-tools' Redfish service, for every VM with a Redfish BMC.
    redfish_port: int = 8000
    bmc_user: str = 'admin'
    bmc_password: str = 'fa-lab-password'
    # Keystone, Glance, Placement, Neutron and Nova around Ironic
    # (``--openstack``); None: as the running lab was brought up.
    openstack: bool = None

    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    @property
    def with_openstack(self):
        if self.openstack is not None:
            return self.openstack
        return os.path.exists(self.path('openstack', 'mode'))

    @property
    def multi_conductor(self):
        """ironic-api and several ironic-conductor processes on MariaDB
        and RabbitMQ (the OpenStack mode), instead of one ``ironic``
        process on sqlite."""
        return self.with_openstack

    @property
    def ironic_url(self):
        return 'http://%s:%d' % (self.address, self.ironic_port)

    @property
    def ironic_url6(self):
        """Ironic's API over IPv6, for the ramdisks that boot from
        virtual media ([deploy]external_callback_url)."""
        return 'http://[%s]:%d' % (self.address6, self.ironic_port)

    @property
    def redfish_url(self):
        return 'http://%s:%d' % (self.address, self.redfish_port)

    @property
    def http_url(self):
        return 'http://%s:%d' % (self.address, self.http_port)

    @property
    def http_root(self):
        return self.path('httpboot')

    @property
    def tftp_root(self):
        return self.path('tftpboot')
