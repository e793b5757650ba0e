"""The fallback poll of running agents: many nodes at once, none for long.

A ramdisk whose heartbeats report the agent's status (fa-heartbeat, see
:mod:`fa_agent.status_report`) tells its conductor when the agent has
finished; the periodic task is then only a fallback, for older ramdisks,
lost heartbeats and the deploy timeout. It polls, over SSH, only nodes
whose agent was started and that have no fresh "running" report
(:func:`operations.needs_poll`), on a bounded pool of threads
(``[fuel_agent]status_poll_workers``), each poll bounded by
``[fuel_agent]status_poll_timeout``: one unreachable node costs one
thread for that long, not the whole loop.

Nodes are those the hash ring maps to this conductor
(``manager.iter_nodes``), so after a conductor dies its nodes' new owner
polls them: the agent's start marker, callback and key nonce are all on
the node.
"""

from concurrent import futures

from ironic.common import exception
from ironic.common import states
from ironic.conductor import task_manager
from oslo_log import log as logging

from ironic_fa_driver import conf
from ironic_fa_driver import operations

CONF = conf.CONF
LOG = logging.getLogger(__name__)
PURPOSE = 'polling the fuel-agent status'
FILTERS = {'reserved': False,
           'provision_state_in': {states.DEPLOYWAIT, states.CLEANWAIT}}


def due_nodes(manager):
    """UUIDs of this conductor's nodes the poll must look at now."""
    for uuid, _driver, _group, info in manager.iter_nodes(
            filters=FILTERS, fields=['driver_internal_info']):
        if operations.needs_poll(info or {}):
            yield uuid


def poll_one(context, node_uuid, interface_type):
    """Poll one node, if it is still this interface's; never raises."""
    try:
        with task_manager.acquire(context, node_uuid, shared=True,
                                  purpose=PURPOSE) as task:
            if type(task.driver.deploy) is not interface_type:
                return
            if not operations.needs_poll(task.node.driver_internal_info):
                return  # a heartbeat came in meanwhile
            operations.poll(task, timeout=CONF.fuel_agent.status_poll_timeout)
    except (exception.NodeNotFound, exception.NodeLocked) as exc:
        LOG.info('Not polling node %s now: %s', node_uuid, exc)
    except Exception:
        LOG.exception('Polling the agent on node %s failed', node_uuid)


def poll_all(manager, context, interface_type):
    """One run of the periodic task: every due node, at most
    ``status_poll_workers`` at a time; returns when all are done."""
    uuids = list(due_nodes(manager))
    if not uuids:
        return 0
    workers = min(CONF.fuel_agent.status_poll_workers, len(uuids))
    with futures.ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix='fa-poll') as pool:
        for uuid in uuids:
            pool.submit(poll_one, context, uuid, interface_type)
    LOG.debug('Polled the agents of %d node(s)', len(uuids))
    return len(uuids)
