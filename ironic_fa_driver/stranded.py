"""Continue deploys and cleanings that Ironic dropped for lack of a worker.

When the agent has finished, the driver asks the conductor to continue
the operation (``notify_conductor_resume_deploy`` / ``_clean``). Ironic
then moves the node from "wait call-back" to "deploying" ("clean wait"
to "cleaning") and only afterwards asks its pool for a worker. When the
pool is full it records "No free conductor workers available" in the
node's history and leaves the node in that state, unlocked, with nobody
to continue it, for good (Ironic 39, ``conductor.utils
._spawn_error_handler``). tools/bench_conductor.py saw 101 of 300 deploys
stay in "deploying" so after a burst of agents finishing together.

A node is stranded when it sits in "deploying" or "cleaning", no
conductor holds its lock, and the last entry of its history is Ironic's
"No free conductor workers available", written after it entered that
state (a node whose lock a stopping or restarting conductor dropped has
no such entry: Ironic's own start-up fails those). The conductor that
owns a stranded node of this driver (Ironic's hash ring) moves it back
to the wait state, with the target it had, and asks again, once it has
been in that state for ``[fuel_agent]stranded_after`` seconds. This
needs Ironic's node history (``[conductor]node_history``, on by
default).
"""

from ironic.common import exception
from ironic.common.i18n import _
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic import objects
from oslo_log import log as logging
from oslo_utils import timeutils

from ironic_fa_driver import conf

CONF = conf.CONF
LOG = logging.getLogger(__name__)
PURPOSE = 'continuing a stranded fuel-agent operation'
# state -> the operation Ironic continues from its wait state
RESUMES = {states.DEPLOYING: 'deploy', states.CLEANING: 'clean'}
# What Ironic writes in the node's history (conductor.utils
# ._spawn_error_handler).
NO_WORKER = _('No free conductor workers available')


def _no_worker_since_state_change(task):
    """Whether the node's last history entry is Ironic's "no free
    worker", written since its provision state last changed."""
    node = task.node
    last = objects.NodeHistory.list_by_node_id(
        task.context, node.id, limit=1, sort_key='id', sort_dir='desc')
    if not last or last[0].event != NO_WORKER:
        return False
    return (node.provision_updated_at is None
            or timeutils.normalize_time(last[0].created_at)
            >= timeutils.normalize_time(node.provision_updated_at))


def stranded_nodes(manager, after):
    """UUIDs of this conductor's unlocked nodes in "deploying" or
    "cleaning" whose state has not changed for ``after`` seconds."""
    filters = {'reserved': False, 'provision_state_in': set(RESUMES),
               'provisioned_before': after}
    for uuid, *_rest in manager.iter_nodes(filters=filters):
        yield uuid


def resume_one(context, node_uuid, interface_type, after):
    """Continue one stranded node, if it still is one and this
    interface's; True when asked. Never raises."""
    try:
        with task_manager.acquire(context, node_uuid, shared=True,
                                  purpose=PURPOSE) as task:
            if type(task.driver.deploy) is not interface_type:
                return False
            task.upgrade_lock()  # reloads the node
            node = task.node
            operation = RESUMES.get(node.provision_state)
            if (operation is None
                    or not timeutils.is_older_than(
                        node.provision_updated_at, after)
                    or not _no_worker_since_state_change(task)):
                return False  # a worker took it, or it is not stranded
            LOG.warning('Node %s has been in %s for over %d s with no '
                        'worker (Ironic found no free conductor worker to '
                        'continue it); asking to continue it again',
                        node.uuid, node.provision_state, after)
            # Back to "wait call-back" / "clean wait" with the target the
            # node had (a manual cleaning goes back to manageable).
            target = node.target_provision_state
            task.process_event('wait', target_state=(
                states.MANAGEABLE if target == states.MANAGEABLE else None))
            getattr(manager_utils, 'notify_conductor_resume_' + operation)(
                task)
            return True
    except (exception.NodeNotFound, exception.NodeLocked) as exc:
        LOG.info('Not continuing node %s now: %s', node_uuid, exc)
    except Exception:
        LOG.exception('Continuing the stranded node %s failed', node_uuid)
    return False


def resume_all(manager, context, interface_type):
    """One pass of the periodic task; how many nodes were continued."""
    after = CONF.fuel_agent.stranded_after
    if not after:
        return 0
    return sum(resume_one(context, uuid, interface_type, after)
               for uuid in list(stranded_nodes(manager, after)))
