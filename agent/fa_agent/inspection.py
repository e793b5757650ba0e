"""In-band inspection from the fuel ramdisk: post the inventory to the
``ipa-inspection-callback-url`` Ironic's ``agent`` inspect interface puts on
the kernel command line.

Ironic's own hooks turn it into ports, properties (cpus, memory_mb,
local_gb, cpu_arch, capabilities) and stored inventory; the fit check at
``baremetal node validate`` then reads that inventory. From API 1.84 on,
Ironic answers like a lookup (node and agent token), so with fast-track
(``ipa-api-url`` on the command line) fa-heartbeat goes on heartbeating
with that token; otherwise Ironic powers the node off and the ramdisk
waits for it.
"""

import logging
import time

from fa_agent import heartbeat
from fa_agent import inventory
from fa_agent import runner as agent_runner

LOG = logging.getLogger('fa-heartbeat')


class _Refused(Exception):
    """Ironic refused the data (HTTP 4xx): posting again will not help."""


def _summary(inv):
    disks = ', '.join('%s %d GiB' % (d['name'], d['size'] // inventory.GiB)
                      for d in inv.get('disks') or ()) or 'none'
    nics = ', '.join('%s %s' % (n['name'], n['mac_address'])
                     for n in inv.get('interfaces') or ()) or 'none'
    return ('disks: %s; interfaces: %s; %s CPUs; %s MiB RAM; %s boot'
            % (disks, nics, (inv.get('cpu') or {}).get('count'),
               (inv.get('memory') or {}).get('physical_mb'),
               (inv.get('boot') or {}).get('current_boot_mode')))


def run(params, agent_version, deadline, sys_root='/', sleep=time.sleep,
        sys_class_net=None, runner=None, wait_for_address=None):
    """Collect and post the inventory, retrying with backoff;
    ``wait_for_address`` first, if given (see fa-heartbeat's).

    :returns: (node uuid, agent token, heartbeat timeout) when Ironic's
        answer allows heartbeats, else None.
    :raises HeartbeatError: when Ironic cannot be reached until
        ``deadline`` or refuses the data.
    """
    url = params[heartbeat.INSPECTION_KERNEL_PARAM]
    paths = inventory.Paths(sys_root)
    if sys_class_net:
        paths.sys_class_net = sys_class_net
    runner = runner or agent_runner.Runner(timeout=120)

    def attempt():
        # Collected again on each try: DHCP may have finished meanwhile.
        inv, failures = inventory.collect(runner, params, paths)
        for failure in failures:
            LOG.error('inspection: %s', failure)
        LOG.info('inspection: %s', _summary(inv))
        data = inventory.inspection_data(inv, agent_version,
                                         error='; '.join(failures) or None)
        try:
            return heartbeat.post_inspection(
                url, data,
                token_param=params.get(heartbeat.AGENT_TOKEN_KERNEL_PARAM))
        except heartbeat.HeartbeatError as exc:
            if exc.code and 400 <= exc.code < 500:
                raise _Refused(str(exc)) from None
            raise

    if wait_for_address:
        # A post before the port's address is usable goes out from none
        # or (IPv6 still in duplicate address detection) from the
        # link-local one, and can wait for its whole timeout (60 s).
        wait_for_address()
    LOG.info('inspection: posting the inventory to %s', url)
    try:
        uuid, token, timeout = heartbeat.retry(
            attempt, 'posting the inventory', deadline, sleep=sleep)
    except _Refused as exc:
        raise heartbeat.HeartbeatError(
            'Ironic refused the inventory: %s (is the node in "inspect '
            'wait", with a port for one of these MACs?)' % exc) from None
    LOG.info('inspection: Ironic took the inventory of node %s', uuid)
    return (uuid, token, timeout) if token else None


def idle(once, sleep=time.sleep):
    """Nothing left to do: Ironic powers the node off after inspection."""
    LOG.info('inspection done; waiting for Ironic to power the node off')
    if once:
        return 0
    while True:
        sleep(3600)
