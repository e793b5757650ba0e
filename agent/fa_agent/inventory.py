"""The node's hardware inventory, in the shape Ironic's inspection hooks
read from ironic-python-agent.

Ironic 39 has in-band inspection built in: its ``agent`` inspect interface
boots the ramdisk with ``ipa-inspection-callback-url`` and runs hooks
(ports, root-device, cpus, memory, boot-mode, ...) on what the ramdisk
posts there. Posting the same document IPA posts lets those hooks fill the
node, so this project does not reimplement them.

Disks come from :func:`fa_agent.discovery.disks`, the very discovery the
agent's own disk matcher uses: a hint that matches the inspected
inventory at ``validate`` matches the same disk in the ramdisk. The rest is
read from /proc and /sys without running anything.
"""

import dataclasses
import os
import platform
import socket

from fa_agent import discovery
from fa_agent import heartbeat

GiB = 1024 ** 3
MiB = 1024 ** 2
# ironic-python-agent's default root disk (used when the node has no root
# device hints) is the smallest disk of at least this size; Ironic's
# root-device hook turns its size into properties.local_gb.
ROOT_DISK_MIN_SIZE = 4 * GiB
# Plugin data fields besides the inventory (see plugin_data()).
COLLECTOR_NAME = 'fa-default'


class Paths:
    """Where the collector reads from; tests point these at fixtures."""

    def __init__(self, root='/'):
        self.sys = os.path.join(root, 'sys')
        self.proc = os.path.join(root, 'proc')
        self.sys_class_net = os.path.join(self.sys, 'class', 'net')
        self.sys_block = os.path.join(self.sys, 'block')
        self.dmi = os.path.join(self.sys, 'class', 'dmi', 'id')
        self.efi = os.path.join(self.sys, 'firmware', 'efi')
        self.memory = os.path.join(self.sys, 'devices', 'system', 'memory')


def _read(path):
    """A sysfs/procfs file's text, stripped; None when unreadable/empty."""
    try:
        with open(path, errors='replace') as f:
            value = f.read(65536).strip()
    except OSError:
        return None
    return value or None


# -- disks ------------------------------------------------------------------

def disk_record(device):
    """One ``inventory.disks`` entry (IPA's field names) for a
    :class:`fa_agent.scheme.inventory.BlockDevice`."""
    record = dataclasses.asdict(device)
    record['rotational'] = bool(device.rotational)
    return record


def disks(runner, paths):
    return [disk_record(d) for d in discovery.disks(runner, paths.sys_block)]


def root_disk(disk_records):
    """IPA's default root disk: the smallest disk of >= 4 GiB, or None."""
    big = [d for d in disk_records if d['size'] >= ROOT_DISK_MIN_SIZE]
    return min(big, key=lambda d: (d['size'], d['name'])) if big else None


# -- network ----------------------------------------------------------------

def interfaces(paths, ipv4=heartbeat.ipv4_address):
    """``inventory.interfaces``: physical NICs (those with a ``device``
    link in sysfs), loopback and virtual devices left out as IPA does."""
    ipv6 = {name: address for name, (address, _link_local) in
            heartbeat.ipv6_addresses(paths.proc).items()}
    result = []
    try:
        names = sorted(os.listdir(paths.sys_class_net))
    except OSError:
        return result
    for name in names:
        base = os.path.join(paths.sys_class_net, name)
        mac = (_read(os.path.join(base, 'address')) or '').lower()
        if name == 'lo' or not mac or mac == '00:00:00:00:00:00':
            continue
        if not os.path.exists(os.path.join(base, 'device')):
            continue
        speed = _read(os.path.join(base, 'speed'))
        result.append({
            'name': name,
            'mac_address': mac,
            'ipv4_address': ipv4(name),
            'ipv6_address': ipv6.get(name),
            'has_carrier': _read(os.path.join(base, 'carrier')) == '1',
            'lldp': None,
            'vendor': _read(os.path.join(base, 'device', 'vendor')),
            'product': _read(os.path.join(base, 'device', 'device')),
            'client_id': None,
            'biosdevname': None,
            'speed_mbps': int(speed) if speed and speed.isdigit() else None,
        })
    return result


# -- CPU, memory, boot, system ----------------------------------------------

def cpu(paths):
    """``inventory.cpu`` from /proc/cpuinfo (x86 and ARM field names)."""
    text = _read(os.path.join(paths.proc, 'cpuinfo')) or ''
    model = frequency = None
    flags = []
    count = 0
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == 'processor':
            count += 1
        elif key in ('model name', 'cpu model') and model is None:
            model = value
        elif key == 'cpu mhz' and frequency is None:
            frequency = value
        elif key in ('flags', 'features') and not flags:
            flags = value.split()
    return {'model_name': model, 'frequency': frequency,
            'count': count or os.cpu_count() or 0,
            'architecture': platform.machine(), 'flags': flags}


def memory(paths):
    """``inventory.memory``: ``total`` (bytes the kernel manages) and
    ``physical_mb`` (online memory blocks, which include what the kernel
    reserves; what a flavor's RAM means). Ironic's memory hook reads
    ``physical_mb``."""
    total = 0
    meminfo = _read(os.path.join(paths.proc, 'meminfo')) or ''
    for line in meminfo.splitlines():
        if line.startswith('MemTotal:'):
            total = int(line.split()[1]) * 1024
    physical = 0
    block = _read(os.path.join(paths.memory, 'block_size_bytes'))
    try:
        block_size = int(block, 16) if block else 0
        entries = os.listdir(paths.memory)
    except (ValueError, OSError):
        block_size, entries = 0, []
    for entry in entries:
        if entry.startswith('memory') and entry[6:].isdigit() and _read(
                os.path.join(paths.memory, entry, 'online')) == '1':
            physical += block_size
    physical_mb = physical // MiB if physical >= total else None
    if not physical_mb:
        # No memory hotplug in sysfs: the kernel's count, rounded up to
        # the next 128 MiB (kernels reserve less than that).
        physical_mb = -(-total // (128 * MiB)) * 128
    return {'total': total, 'physical_mb': physical_mb}


def boot(paths, params):
    """``inventory.boot``: the current boot mode and the PXE NIC's MAC
    (from ``BOOTIF``, which iPXE and PXELINUX put on the kernel line)."""
    bootif = params.get('BOOTIF')
    return {
        'current_boot_mode': 'uefi' if os.path.isdir(paths.efi) else 'bios',
        'pxe_interface': heartbeat.mac_from_bootif(bootif) if bootif else None,
    }


def system_vendor(paths):
    """``inventory.system_vendor`` from SMBIOS as the kernel exports it."""
    def dmi(name):
        return _read(os.path.join(paths.dmi, name))
    return {
        'product_name': dmi('product_name'),
        'serial_number': dmi('product_serial'),
        'manufacturer': dmi('sys_vendor'),
        'firmware': {'vendor': dmi('bios_vendor'),
                     'version': dmi('bios_version'),
                     'build_date': dmi('bios_date')},
    }


def collect(runner, params, paths=None, ipv4=heartbeat.ipv4_address):
    """The whole ``inventory`` and the list of what could not be read.

    A part that fails is reported (Ironic's ramdisk-error hook then fails
    the inspection with the message) and left empty, so the rest still
    reaches Ironic, as IPA does.

    :param runner: runs lsblk/udevadm (``fa_agent.runner.Runner``).
    :param params: the kernel command line as a dict.
    """
    paths = paths or Paths()
    parts = (('disks', lambda: disks(runner, paths), []),
             ('interfaces', lambda: interfaces(paths, ipv4=ipv4), []),
             ('cpu', lambda: cpu(paths), {}),
             ('memory', lambda: memory(paths), {}),
             ('boot', lambda: boot(paths, params), {}),
             ('system_vendor', lambda: system_vendor(paths), {}))
    result = {}
    failures = []
    for name, read, empty in parts:
        try:
            result[name] = read()
        except Exception as exc:  # reported to Ironic, never a traceback
            failures.append('reading %s failed: %s' % (name, exc))
            result[name] = empty
    # Reading the BMC address needs ipmitool and an IPMI device; Ironic
    # finds the node by its MACs, so these stay empty.
    result['bmc_address'] = None
    result['bmc_v6address'] = None
    result['hostname'] = socket.gethostname()
    return result, failures


def inspection_data(inventory, agent_version, error=None):
    """What is posted to ``/v1/continue_inspection``: the inventory plus
    the plugin data IPA's default collector adds (``root_disk`` is what
    Ironic's root-device hook sizes local_gb from when the node has no
    root device hints; ``error`` fails the inspection in the ramdisk-error
    hook)."""
    return {
        'inventory': inventory,
        'root_disk': root_disk(inventory.get('disks') or []),
        'boot_interface': (inventory.get('boot') or {}).get('pxe_interface'),
        'configuration': {
            'collectors': [COLLECTOR_NAME],
            'managers': [{'name': 'fuel-agent', 'version': agent_version}],
        },
        'error': error,
    }
