"""Running the agent on a node: what the deploy interface's steps, its
heartbeat handler and its periodic task share.

State lives in the node's ``driver_internal_info`` (so a restarted or
another conductor picks it up):

- ``fa_callback``: address, port and SSH host key the ramdisk announced;
- ``fa_agent_started_at``: set just before the agent is started, cleared
  when its outcome has been handled; the periodic task polls nodes that
  have it and a second start is never attempted while it is set;
- ``fa_agent_progress``: the agent's last progress line while it runs
  (kept after a failure, cleared after a success);
- ``fa_agent_result``: the agent's ``result`` after a success;
- ``fa_agent_step_seconds``: how long each agent step took, ``{step:
  seconds}`` from the status file's ``step_seconds``: updated while the
  agent runs, kept after a success or a failure (the lab's timing table
  reads it);
- ``fa_agent_heartbeat_status``: the agent's status as the ramdisk's last
  heartbeat reported it (state, step, steps done, exit code, run, and
  when it came); a fresh "running" one stands for a poll, a final one
  makes the conductor that got the heartbeat finish the operation at
  once (the SSH read of the result is the same as the poll's).

Whatever of the agent's reports is stored or logged here (progress,
result, failure messages, the ramdisk logs) goes through
:mod:`fa_agent.redact` first: image URLs may carry credentials or
signatures that the node's readers must not see.
"""

import json
import shlex

from fa_agent import contract
from ironic.common import exception
from ironic.common import states
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import deploy_utils
from ironic.drivers import utils as driver_utils
from oslo_log import log as logging
from oslo_utils import timeutils

from ironic_fa_driver import agent_control
from ironic_fa_driver import conf
from ironic_fa_driver import keys
from ironic_fa_driver import ssh

CONF = conf.CONF
LOG = logging.getLogger(__name__)

CALLBACK = 'fa_callback'
STARTED_AT = 'fa_agent_started_at'
RESULT = 'fa_agent_result'
# "<step>: <message>", for operators watching `baremetal node show`.
PROGRESS = 'fa_agent_progress'
STEP_SECONDS = 'fa_agent_step_seconds'
HEARTBEAT_STATUS = 'fa_agent_heartbeat_status'
ALL_KEYS = (CALLBACK, STARTED_AT, RESULT, PROGRESS, STEP_SECONDS,
            HEARTBEAT_STATUS)


def forget_ramdisk(node):
    """Drop what a previous ramdisk boot left behind (not saved)."""
    for key in ALL_KEYS:
        node.del_driver_internal_info(key)


def prepare_key(node):
    """A new operation's key (:func:`keys.new_operation_key`); the kernel
    parameter value of its public half."""
    return keys.kernel_param_value(keys.new_operation_key(node))


def ramdisk_params(node, key_param):
    """Kernel parameters for the deploy ramdisk."""
    params = deploy_utils.build_agent_options(node)
    params[contract.SSH_KEY_KERNEL_PARAM] = key_param
    for token in shlex.split(CONF.fuel_agent.extra_kernel_params or ''):
        name, sep, value = token.partition('=')
        params[name] = value if sep else None
    return params


def shown(value):
    """``value`` (text, or a JSON document from the agent) with every
    URL in its strings masked, fit to be stored on the node or logged."""
    if isinstance(value, str):
        return contract.redact(value)
    if isinstance(value, dict):
        return {shown(k): shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown(v) for v in value]
    return value


def record_callback(node, callback):
    node.set_driver_internal_info(CALLBACK, {
        'address': callback.address, 'port': callback.port,
        'host_key_type': callback.host_key_type,
        'host_key': callback.host_key_fingerprint})


def callback_changes(recorded, callback):
    """What ``callback`` (a heartbeat's) changes of the ``recorded`` one,
    as "<what> <old> -> <new>" phrases; empty when it changes nothing."""
    changes = []
    for name, key, new in (
            ('address', 'address', callback.address),
            ('port', 'port', callback.port),
            ('host key type', 'host_key_type', callback.host_key_type),
            ('host key', 'host_key', callback.host_key_fingerprint)):
        if recorded.get(key) != new:
            changes.append('%s %s -> %s' % (name, recorded.get(key), new))
    return changes


def _fail_operation(task, message, traceback=False):
    """Fail whatever the node is doing (deploy or cleaning)."""
    node = task.node
    if node.provision_state in (states.CLEANING, states.CLEANWAIT):
        manager_utils.cleaning_error_handler(task, message,
                                             traceback=traceback)
    else:
        deploy_utils.set_failed_state(task, message, collect_logs=False)


def step_seconds(document):
    """The status document's ``step_seconds`` when it is a mapping of
    step names to numbers (anything else from the ramdisk: None)."""
    value = (document or {}).get('step_seconds') if isinstance(
        document, dict) else None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float))
            and not isinstance(v, bool) for k, v in value.items()):
        return None
    return {k: round(float(v), 1) for k, v in value.items()}


def record_step_seconds(node, document):
    """Store the agent's step timings on ``node`` (not saved); True when
    they changed."""
    seconds = step_seconds(document)
    if seconds is None or seconds == node.driver_internal_info.get(
            STEP_SECONDS):
        return False
    node.set_driver_internal_info(STEP_SECONDS, seconds)
    return True


def fail(task, message):
    """Fail the node's operation with ``message`` (masked) in
    last_error."""
    message = contract.redact(message)
    task.node.del_driver_internal_info(STARTED_AT)
    LOG.error('Node %s: %s', task.node.uuid, message)
    _fail_operation(task, message)


def connect(node, timeout=None):
    """An SSH session to the node's ramdisk (a context manager);
    ``timeout`` (s) bounds connecting and each command instead of
    ``[fuel_agent]ssh_connect_timeout`` / ``ssh_command_timeout``."""
    callback = node.driver_internal_info.get(CALLBACK)
    if not callback:
        raise ssh.ConnectFailed(reason='the ramdisk has not heartbeated yet, '
                                       'its address is unknown')
    info = node.driver_info
    port = int(info.get('fa_ssh_port') or callback.get('port')
               or CONF.fuel_agent.ssh_port)
    return ssh.connect(
        callback['address'], port,
        info.get('fa_ssh_user') or CONF.fuel_agent.ssh_user,
        keys.login_key(node), callback['host_key_type'],
        callback['host_key'], timeout or CONF.fuel_agent.ssh_connect_timeout,
        timeout or CONF.fuel_agent.ssh_command_timeout)


def start_agent(task, document, steps=None, after_finished=False):
    """Upload the input and start the agent detached, once.
    ``after_finished``: see :func:`agent_control.start_script` (each
    clean step runs the agent again in the same ramdisk).

    :raises: InstanceDeployFailure for SSH problems (the step fails).
    """
    node = task.node
    if node.driver_internal_info.get(STARTED_AT):
        LOG.info('The agent on node %s was already started at %s; not '
                 'starting it again', node.uuid,
                 node.driver_internal_info[STARTED_AT])
        return agent_control.ALREADY_STARTED
    paths = agent_control.RemotePaths.from_conf()
    try:
        with connect(node) as session:
            agent_control.upload_input(session, paths, document)
            # Recorded before the start so that nothing ever starts it
            # twice, even if this conductor dies right after.
            node.set_driver_internal_info(STARTED_AT,
                                          timeutils.utcnow().isoformat())
            node.save()
            outcome = agent_control.start(session, paths, steps,
                                          after_finished)
    except (ssh.SSHError, exception.InstanceDeployFailure) as exc:
        node.del_driver_internal_info(STARTED_AT)
        node.save()
        raise exception.InstanceDeployFailure(
            reason='cannot start the agent on the ramdisk: %s'
            % contract.redact(str(exc)))
    LOG.info('Agent on node %s: %s (steps: %s)', node.uuid, outcome,
             ','.join(steps) if steps else 'all')
    return outcome


def ramdisk_disks(task, include_read_only=False):
    """The disks the ramdisk sees (lsblk over SSH), or None when they
    cannot be read; the agent then reports what does not match.
    Read-only disks only with ``include_read_only`` (cleaning reports
    them)."""
    node = task.node
    try:
        with connect(node) as session:
            _status, out, _err = session.run(
                'lsblk --json --bytes --nodeps -o %s'
                % contract.LSBLK_COLUMNS)
        return contract.disks_from_lsblk(
            json.loads(out), include_read_only=include_read_only) or None
    except (ssh.SSHError, ValueError) as exc:
        LOG.warning('Cannot list the disks of node %s on its ramdisk: %s',
                    node.uuid, exc)
        return None


def store_logs(task, session, label):
    """Fetch the agent's files and keep them in Ironic's log storage."""
    node = task.node
    try:
        logs = agent_control.fetch_logs(session,
                                        agent_control.RemotePaths.from_conf())
        driver_utils.store_ramdisk_logs(node, logs, label=label)
    except (ssh.SSHError, OSError, exception.IronicException) as exc:
        LOG.error('Could not store the agent log of node %s: %s',
                  node.uuid, contract.redact(str(exc)))


def _timed_out(node):
    started = timeutils.parse_isotime(
        node.driver_internal_info[STARTED_AT])
    return timeutils.is_older_than(started, CONF.fuel_agent.deploy_timeout)


def _never_started(node, status):
    """A node recorded as running an agent whose ramdisk never started
    one: the start is recorded before it is made (so that nothing starts
    it twice), and a conductor that died in between leaves this. Once
    the start command could no longer be on its way
    (``[fuel_agent]ssh_command_timeout`` after the record), the operation
    fails, saying that the agent never ran, so nothing was written;
    before that, it is still starting."""
    started = timeutils.parse_isotime(node.driver_internal_info[STARTED_AT])
    if not timeutils.is_older_than(started,
                                   CONF.fuel_agent.ssh_command_timeout):
        return agent_control.AgentStatus('running', status.message)
    return agent_control.AgentStatus(
        'failed', 'the agent was recorded as started at %s but never ran '
        'on the ramdisk (the conductor that started it stopped before '
        'it could); the disks were not touched by it. Deploy or clean '
        'again.' % node.driver_internal_info[STARTED_AT], 'not-started')


def _label(node):
    if node.provision_state in (states.CLEANING, states.CLEANWAIT):
        return 'fuel-agent-cleaning'
    return 'fuel-agent-deploy'


def poll(task, timeout=None):
    """One look at the agent: resume the operation when it is done, fail
    it when the agent failed or ran out of time, else wait. ``timeout``:
    see :func:`connect` (the log of a finished agent is fetched with
    ``[fuel_agent]ssh_command_timeout`` all the same)."""
    node = task.node
    if not node.driver_internal_info.get(STARTED_AT):
        return
    collect = CONF.fuel_agent.agent_logs_collect
    try:
        with connect(node, timeout) as session:
            status = agent_control.poll(session,
                                        agent_control.RemotePaths.from_conf())
            if status.outcome == agent_control.NOT_STARTED:
                status = _never_started(node, status)
            if status.outcome == 'running' and _timed_out(node):
                status = agent_control.AgentStatus(
                    'failed', 'the agent did not finish within %d s '
                    '([fuel_agent]deploy_timeout)'
                    % CONF.fuel_agent.deploy_timeout, 'timeout')
            if status.outcome == 'failed' and collect != 'never' or \
                    status.outcome == 'succeeded' and collect == 'always':
                session.command_timeout = CONF.fuel_agent.ssh_command_timeout
                store_logs(task, session, _label(node))
    except ssh.SSHError as exc:
        if exc.transient and not _timed_out(node):
            LOG.warning('Cannot poll the agent on node %s yet: %s',
                        node.uuid, exc)
            return
        task.upgrade_lock()
        fail(task, 'fuel-agent: lost the ramdisk: %s' % exc)
        return
    except exception.InstanceDeployFailure as exc:
        task.upgrade_lock()
        fail(task, 'fuel-agent: %s' % exc)
        return
    if status.outcome == 'running':
        progress = (status.document or {}).get('progress') or {}
        line = contract.redact(': '.join(str(progress[k])
                                     for k in ('step', 'message')
                                     if progress.get(k)))
        if line and line != node.driver_internal_info.get(PROGRESS):
            LOG.info('Agent on node %s: %s', node.uuid, line)
            task.upgrade_lock()
            node.set_driver_internal_info(PROGRESS, line)
            record_step_seconds(node, status.document)
            node.save()
        # Keeps Ironic's callback timeout from firing while the agent
        # works; deploy_timeout bounds the whole run instead.
        node.touch_provisioning()
        return
    task.upgrade_lock()
    node = task.node  # reloaded by the upgrade
    record_step_seconds(node, status.document)
    if status.outcome == 'failed':
        fail(task, 'fuel-agent failed: %s: %s' % (status.error_class,
                                                 status.message))
        return
    node.del_driver_internal_info(STARTED_AT)
    # The last progress line stays only after a failure, where it tells
    # where the agent stopped.
    node.del_driver_internal_info(PROGRESS)
    node.set_driver_internal_info(
        RESULT, shown((status.document or {}).get('result')))
    node.save()
    LOG.info('Agent on node %s succeeded; step seconds: %s', node.uuid,
             node.driver_internal_info.get(STEP_SECONDS))
    if node.provision_state == states.CLEANWAIT:
        # How each disk was erased goes to the node's history.
        from ironic_fa_driver import erasure
        erasure.record_result(task, node.driver_internal_info.get(RESULT))
        node.save()
        manager_utils.notify_conductor_resume_clean(task)
    else:
        manager_utils.notify_conductor_resume_deploy(task)


# -- the agent's status in heartbeats ---------------------------------------

def record_heartbeat_status(node, agent_status, message):
    """Store the agent status a heartbeat carried (not saved).

    :returns: the :class:`contract.StatusReport`, or None when the
        heartbeat carried none (an older ramdisk) or a malformed one.
    """
    report = contract.parse_status_report(agent_status, message)
    if report is None:
        return None
    recorded = node.driver_internal_info.get(HEARTBEAT_STATUS) or {}
    value = {'state': report.state, 'step': shown(report.step),
             'steps_done': report.steps_done, 'exit_code': report.exit_code,
             'run': report.run, 'at': timeutils.utcnow().isoformat()}
    if all(recorded.get(k) == v for k, v in value.items() if k != 'at'):
        # The same report again: keep whether it was acted on.
        value['polled'] = recorded.get('polled', False)
    node.set_driver_internal_info(HEARTBEAT_STATUS, value)
    return report


def heartbeat_status_max_age():
    """``[fuel_agent]heartbeat_status_max_age``, or by default two and a
    half of the ramdisk's heartbeat intervals (Ironic tells the ramdisk
    to heartbeat every ramdisk_heartbeat_timeout / 3 seconds)."""
    return (CONF.fuel_agent.heartbeat_status_max_age
            or CONF.api.ramdisk_heartbeat_timeout * 5 // 6)


def heartbeat_status_fresh(info):
    """Whether the last heartbeat (``info``: driver_internal_info) said
    the agent runs, recently enough to stand for a poll."""
    status = info.get(HEARTBEAT_STATUS)
    if not isinstance(status, dict) or status.get('state') != 'running':
        return False
    try:
        at = timeutils.parse_isotime(status['at'])
    except (KeyError, TypeError, ValueError):
        return False
    return not timeutils.is_older_than(
        at, heartbeat_status_max_age())


def needs_poll(info):
    """Whether the periodic task must poll a node with this
    driver_internal_info: the agent was started, and no fresh heartbeat
    says it is running (or it has run out of time)."""
    if not info.get(STARTED_AT):
        return False
    if not heartbeat_status_fresh(info):
        return True
    started = timeutils.parse_isotime(info[STARTED_AT])
    return timeutils.is_older_than(started, CONF.fuel_agent.deploy_timeout)


def on_heartbeat(task, report):
    """A heartbeat of a node waiting for its agent (exclusive lock held,
    its status ``report`` recorded and saved by
    :func:`record_heartbeat_status`): when it says the run has ended,
    read the outcome over SSH and finish now (:func:`poll`), once per
    report.
    """
    node = task.node
    if report is None or not report.final or \
            not node.driver_internal_info.get(STARTED_AT):
        return
    status = node.driver_internal_info[HEARTBEAT_STATUS]
    if status.get('polled'):
        return
    status['polled'] = True
    node.set_driver_internal_info(HEARTBEAT_STATUS, status)
    node.save()
    LOG.info('Heartbeat of node %s says the agent has %s (step %s, exit '
             'code %s); reading its outcome', node.uuid, report.state,
             report.step, report.exit_code)
    poll(task)
