"""``fa-network-data``: configure the ramdisk's network from the node's
network_data on a virtual-media boot (:mod:`fa_agent.network_data`).

    fa-network-data [--cmdline /proc/cmdline]

Does nothing unless the kernel command line has ``boot_method=vmedia``
and the virtual media carry a config drive with network_data; then only
the ports network_data describes are configured, and no DHCP is asked
anywhere. Runs before systemd-networkd; what it did, or why it could
not, goes to the console. Exit status 0 when there was nothing to do or
the network was written, 1 on an error (the ramdisk then keeps DHCP on
every port).
"""

import argparse
import os
import subprocess
import sys

from fa_agent import heartbeat
from fa_agent import network_data


def say(message, *args):
    """One line on the console (the unit's stdout goes there)."""
    print('fa-network-data: ' + message % args, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='fa-network-data', description=__doc__.split('\n\n')[0])
    parser.add_argument('--cmdline', default='/proc/cmdline')
    parser.add_argument('--wait', type=float, default=30.0,
                        help='seconds to wait for the config drive '
                        '(default: %(default)s)')
    return parser.parse_args(argv)


def main(argv=None, run=subprocess.run):
    args = parse_args(argv)
    if not network_data.wanted(heartbeat.read_cmdline(args.cmdline)):
        return 0
    device = network_data.wait_for_label(timeout=args.wait)
    if device is None:
        say('no config drive (label %s) on the virtual media: DHCP on '
            'every port', network_data.LABEL)
        return 0
    os.makedirs(network_data.MOUNT_POINT, exist_ok=True)
    mounted = run(['mount', '-o', 'ro,nosuid,nodev,noexec', device,
                   network_data.MOUNT_POINT], capture_output=True, text=True)
    if mounted.returncode:
        say('cannot mount %s: %s', device, mounted.stderr.strip())
        return 1
    try:
        path = os.path.join(network_data.MOUNT_POINT,
                            network_data.NETWORK_DATA)
        if not os.path.exists(path):
            say('the config drive has no %s: DHCP on every port',
                network_data.NETWORK_DATA)
            return 0
        document = network_data.load(path)
        ports = network_data.apply(run=run)
        say('DHCP-less boot: %s on %s from network_data; no DHCP on '
            'any port', network_data.describe(document), ', '.join(ports))
        return 0
    except (network_data.NetworkDataError, OSError) as exc:
        say('network_data not applied (DHCP on every port): %s', exc)
        return 1
    finally:
        run(['umount', network_data.MOUNT_POINT], capture_output=True)


if __name__ == '__main__':
    sys.exit(main())
