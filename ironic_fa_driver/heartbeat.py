"""Heartbeats from the fuel ramdisk, handled the way Ironic's
``agent_base.HeartbeatMixin`` handles IPA's.

Ironic hands every heartbeat to ``task.driver.deploy.heartbeat``
whatever the node's state; the deploy interface delegates here. What is
Ironic's, mirrored (not inherited: the mixin's per-state work talks to
IPA's HTTP API, which this ramdisk does not have):

- states: only the states Ironic accepts a heartbeat in
  (``agent_base.HEARTBEAT_ALLOWED``, or the fast-track set when
  ``[deploy]fast_track`` is on) are looked at; anything else is logged
  and ignored;
- lock: the shared lock is upgraded without retrying; a locked node waits
  for the next heartbeat;
- bookkeeping: ``agent_url``, ``agent_version``, ``agent_last_heartbeat``
  (and ``agent_verify_ca``, ``agent_status``, ``agent_status_message``)
  are stored, so ``manager_utils.is_fast_track`` and friends see a live
  ramdisk; states that only record (deploying, cleaning, available, ...)
  stop there;
- maintenance: a deploy, cleaning, rescue or service waiting for the
  ramdisk is aborted unless ``[conductor]
  allow_provisioning_in_maintenance``; otherwise nothing is done;
- fast track: while an operation waits for the running ramdisk to take
  its key (:mod:`fast_track`), heartbeats announcing another key only
  keep the ramdisk alive; the one that acknowledges it pins the callback;
- dispatch: deploy wait resumes the deploy, clean wait starts cleaning
  (the first heartbeat of the operation) or, later, hands the agent
  status the heartbeat carries to :func:`operations.on_heartbeat`,
  rescue wait finishes the rescue through the rescue interface, service
  wait is kept alive; an error fails the operation with the node's history
  recording it.

What is this driver's own: the first heartbeat of an operation pins the
ramdisk's callback (address, port, SSH host key, in ``fa_callback``); a
later heartbeat that would move it is refused before anything of it is
stored (see :func:`_refuse`), so not even ``agent_url`` follows it.
"""

from fa_agent import contract
from ironic.common import exception
from ironic.common import states
from ironic.common import utils as common_utils
from ironic.conductor import cleaning
from ironic.conductor import deployments
from ironic.conductor import steps as conductor_steps
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import agent_base
from ironic.drivers.modules import deploy_utils
from oslo_log import log as logging
from oslo_utils import timeutils

from ironic_fa_driver import conf
from ironic_fa_driver import fast_track
from ironic_fa_driver import operations

CONF = conf.CONF
LOG = logging.getLogger(__name__)

# Where a heartbeat is only recorded: the same states as agent_base's
# private _HEARTBEAT_RECORD_ONLY (the accepted sets are its public
# HEARTBEAT_ALLOWED / FASTTRACK_HEARTBEAT_ALLOWED);
# tests/unit/driver/test_driver_heartbeat_states.py checks they agree.
RECORD_ONLY = frozenset({
    states.ENROLL, states.MANAGEABLE, states.AVAILABLE, states.CLEANING,
    states.DEPLOYING, states.RESCUING, states.DEPLOYHOLD, states.CLEANHOLD,
    states.SERVICING, states.SERVICEHOLD})

MAX_STATUS_MESSAGE = 255
_DEPLOY = (states.DEPLOYING, states.DEPLOYWAIT)
_CLEAN = (states.CLEANING, states.CLEANWAIT)
_RESCUE = (states.RESCUING, states.RESCUEWAIT)
_SERVICE = (states.SERVICING, states.SERVICEWAIT)
_WAITS = (states.DEPLOYWAIT, states.CLEANWAIT, states.RESCUEWAIT,
          states.SERVICEWAIT)
# Waits a heartbeat keeps from timing out (Ironic's mixin touches these).
_KEPT_ALIVE = (states.DEPLOYWAIT, states.CLEANWAIT, states.SERVICEWAIT)


def allowed(task):
    """Whether Ironic would look at a heartbeat of this node at all."""
    node = task.node
    if common_utils.fast_track_enabled(node):
        accepted = agent_base.FASTTRACK_HEARTBEAT_ALLOWED
    else:
        accepted = agent_base.HEARTBEAT_ALLOWED
    return (node.provision_state in accepted
            or manager_utils.fast_track_able(task))


def handle(task, callback_url, agent_version, agent_verify_ca=None,
           agent_status=None, agent_status_message=None):
    """One heartbeat (the deploy interface's ``heartbeat``)."""
    node = task.node
    if not allowed(task):
        LOG.error('Heartbeat from node %s in provision state %s: not '
                  'waiting for a ramdisk, ignored', node.uuid,
                  node.provision_state)
        return
    try:
        task.upgrade_lock(retry=False)
    except exception.NodeLocked:
        LOG.debug('Node %s is locked; the next heartbeat will do',
                  node.uuid)
        return
    node = task.node  # reloaded by the upgrade
    recorded = node.driver_internal_info.get(operations.CALLBACK)
    try:
        callback = contract.parse_callback_url(callback_url)
        problem = None
    except ValueError as exc:
        callback, problem = None, str(exc)
    if recorded:
        changes = ([] if callback is None
                   else operations.callback_changes(recorded, callback))
        if problem is not None:
            changes = ['a bad callback URL (%r)' % problem]
        if changes:
            _refuse(task, recorded, '; '.join(changes))
            return
    if not recorded and callback is not None and \
            not fast_track.acknowledges(node, callback):
        # Fast track: the running ramdisk has not taken this operation's
        # key yet. Alive, but its URL is not recorded: Ironic's API would
        # then refuse the heartbeat that acknowledges the key.
        LOG.info('Heartbeat of node %s still announces the key %s; waiting '
                 'for the ramdisk to take this operation\'s key',
                 node.uuid, callback.authorized_key)
        fast_track.record(node)
        node.save()
        return
    _record(node, callback_url, agent_version, agent_verify_ca,
            agent_status, agent_status_message)
    state = node.provision_state
    if state in RECORD_ONLY:
        node.save()
        LOG.debug('Heartbeat from node %s in %s recorded (ramdisk alive)',
                  node.uuid, state)
        return
    if node.maintenance:
        node.save()
        _in_maintenance(task)
        return
    if state not in _WAITS:
        node.save()
        LOG.debug('Heartbeat from node %s in %s recorded; nothing to do',
                  node.uuid, state)
        return
    if problem is not None:
        node.save()
        _fail(task, 'fuel-agent: bad heartbeat: %s' % problem)
        return
    first = not recorded
    report = None
    if first:
        fast_track.record(node, callback_url)  # the key is acknowledged
        operations.record_callback(node, callback)
        LOG.info('Ramdisk of node %s is up at %s (host key %s)', node.uuid,
                 callback.address, callback.host_key_fingerprint)
    elif state in (states.DEPLOYWAIT, states.CLEANWAIT):
        report = operations.record_heartbeat_status(
            node, agent_status, agent_status_message)
    if state in _KEPT_ALIVE:
        # What node.touch_provisioning() would write, in the same save.
        node.provision_updated_at = timeutils.utcnow()
    # One write per heartbeat: Ironic's bookkeeping, the pinned callback
    # or the agent's status, and the waiting operation kept alive (at
    # many nodes per conductor, node saves are what heartbeats cost).
    node.save()
    try:
        _dispatch(task, first, report)
    except Exception as exc:
        LOG.error('Resuming node %s after its heartbeat failed: %s: %s',
                  node.uuid, type(exc).__name__, contract.redact(str(exc)))
        _fail(task, 'fuel-agent: %s' % exc)


def _record(node, callback_url, agent_version, agent_verify_ca,
            agent_status, agent_status_message):
    """Ironic's heartbeat bookkeeping (fast track reads it); not saved."""
    node.set_driver_internal_info('agent_url', callback_url)
    node.set_driver_internal_info('agent_version', agent_version)
    node.timestamp_driver_internal_info('agent_last_heartbeat')
    if agent_status_message:
        # Shown by `baremetal node show`: bounded, URLs masked, whatever
        # the ramdisk sent (fa-heartbeat's own report is already both).
        agent_status_message = contract.redact(
            str(agent_status_message))[:MAX_STATUS_MESSAGE]
    for key, value in (('agent_verify_ca', agent_verify_ca),
                       ('agent_status', agent_status),
                       ('agent_status_message', agent_status_message)):
        if value:
            node.set_driver_internal_info(key, value)


def _dispatch(task, first, report=None):
    """What the heartbeat (saved) means for the waiting operation;
    ``report``: the agent's status it carried, already recorded."""
    node = task.node
    state = node.provision_state
    if state == states.DEPLOYWAIT:
        if first:
            task.process_event('resume')
            deployments.continue_node_deploy(task)
        else:
            # The agent's status in the heartbeat: an ended run is
            # finished now; no report (an older ramdisk) leaves it to the
            # periodic poll.
            operations.on_heartbeat(task, report)
    elif state == states.CLEANWAIT:
        if not first:
            operations.on_heartbeat(task, report)
        elif not node.clean_step:
            task.resume_cleaning()
            conductor_steps.set_node_cleaning_steps(
                task, use_existing_steps=node.driver_internal_info.get(
                    'declarative_cleaning', False))
            cleaning.continue_node_clean(task)
    elif state == states.RESCUEWAIT:
        finalize = getattr(task.driver.rescue, 'finalize_rescue', None)
        if finalize is None:
            raise exception.InstanceRescueFailure(
                node=node.uuid, instance=node.instance_uuid,
                reason='the rescue interface %s cannot finish a rescue '
                       'with the fuel ramdisk; use rescue_interface '
                       'fuel-agent' % node.rescue_interface)
        finalize(task)
    # SERVICEWAIT: the fuel-agent deploy interface has no in-band service
    # steps; the live ramdisk (provision_updated_at, saved) keeps an
    # out-of-band one from timing out.


def _in_maintenance(task):
    """What HeartbeatMixin does for a node in maintenance."""
    node = task.node
    state = node.provision_state
    if CONF.conductor.allow_provisioning_in_maintenance or state not in (
            _DEPLOY + _CLEAN + _RESCUE + _SERVICE):
        LOG.warning('Heartbeat from node %s in maintenance mode; not '
                    'taking any action', node.uuid)
        return
    if state in _CLEAN:
        LOG.error('Aborting cleaning for node %s, as it is in maintenance '
                  'mode', node.uuid)
        manager_utils.cleaning_error_handler(
            task, 'Aborting cleaning for node %s, as it is in maintenance '
            'mode' % node.uuid,
            errmsg='Cleaning aborted as node is in maintenance mode')
    elif state in _DEPLOY:
        LOG.error('Aborting deployment for node %s, as it is in '
                  'maintenance mode', node.uuid)
        deploy_utils.set_failed_state(
            task, 'Deploy aborted as node is in maintenance mode',
            collect_logs=False)
    elif state in _RESCUE:
        LOG.error('Aborting rescuing for node %s, as it is in maintenance '
                  'mode', node.uuid)
        manager_utils.rescuing_error_handler(
            task, 'Rescue aborted as node is in maintenance mode')
    else:
        LOG.error('Aborting service for node %s, as it is in maintenance '
                  'mode', node.uuid)
        manager_utils.servicing_error_handler(
            task, 'Service aborted as node is in maintenance mode')


def _fail(task, message):
    """Fail whatever operation waited for this ramdisk; Ironic's error
    handlers put ``message`` (masked) in last_error and node history."""
    node = task.node
    state = node.provision_state
    if state in _RESCUE:
        message = contract.redact(message)
        LOG.error('Node %s: %s', node.uuid, message)
        manager_utils.rescuing_error_handler(task, message)
    elif state in _SERVICE:
        message = contract.redact(message)
        LOG.error('Node %s: %s', node.uuid, message)
        manager_utils.servicing_error_handler(task, message)
    elif state in _DEPLOY + _CLEAN:
        operations.fail(task, message)
    else:
        LOG.error('Node %s: %s (in %s, nothing to fail)', node.uuid,
                  contract.redact(message), state)


def _refuse(task, recorded, what):
    """A heartbeat that would move the callback the operation is pinned
    to: not acted on, not stored, the operation goes on with the ramdisk
    that reported in first (whoever holds the node's agent token could
    send it; only the pinned host key can answer SSH)."""
    node = task.node
    message = ('Heartbeat of node %s refused: it announces %s, but the '
               'ramdisk of this operation is pinned at %s port %s with '
               'host key %s; still using that one' % (
                   node.uuid, what, recorded.get('address'),
                   recorded.get('port'), recorded.get('host_key')))
    LOG.warning(message)
    manager_utils.node_history_record(node, event=message,
                                      event_type='heartbeat')
    node.save()
