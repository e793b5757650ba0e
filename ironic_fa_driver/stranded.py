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

A node in "deploying" or "cleaning" that no conductor holds is stranded:
while steps run, a worker holds the node's lock. The conductor that owns
a stranded node of this driver (Ironic's hash ring) moves it back to the
wait state and asks again, once it has been so for
``[fuel_agent]stranded_after`` seconds.
"""

from ironic.common import exception
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from oslo_log import log as logging
from oslo_utils import timeutils

from ironic_fa_driver import conf

CONF = conf.CONF
LOG = logging.getLogger(__name__)
PURPOSE = 'continuing a stranded fuel-agent operation'
# state -> the operation Ironic continues from its wait state
RESUMES = {states.DEPLOYING: 'deploy', states.CLEANING: 'clean'}


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
        with task_manager.acquire(context, node_uuid, purpose=PURPOSE) as task:
            node = task.node
            if type(task.driver.deploy) is not interface_type:
                return False
            operation = RESUMES.get(node.provision_state)
            if operation is None or not timeutils.is_older_than(
                    node.provision_updated_at, after):
                return False  # a worker took it meanwhile
            LOG.warning('Node %s has been in %s for over %d s with no '
                        'worker (Ironic found no free conductor worker to '
                        'continue it); asking to continue it again',
                        node.uuid, node.provision_state, after)
            task.process_event('wait')  # to "wait call-back", "clean wait"
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
