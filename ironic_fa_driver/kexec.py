"""Ending a deploy with kexec instead of a power cycle.

With ``[fuel_agent] kexec`` (or the node's ``driver_info/fa_kexec``) the
agent loads the installed kernel (its ``kexec`` step) and
``tear_down_agent`` — which runs after ``prepare_instance_boot`` has
switched the boot device to disk — starts it with ``systemctl kexec``
over the deploy's SSH session instead of powering the node off. The
node then stays powered on, so ``boot_instance``'s power-on has nothing
to do, and the deploy costs one firmware boot (the ramdisk's) instead
of two. Any later reboot boots the installed system from disk.

Whenever kexec is asked for but cannot be used (the agent could not load
the kernel, or the command failed), the node is powered off as without
it and the reason goes to the log and the node's history.
"""

from ironic.common import exception
from ironic.conductor import utils as manager_utils
from oslo_log import log as logging
from oslo_utils import strutils

from ironic_fa_driver import conf
from ironic_fa_driver import operations
from ironic_fa_driver import ssh

CONF = conf.CONF
LOG = logging.getLogger(__name__)

DRIVER_INFO = 'fa_kexec'
# ``systemctl kexec`` stops the ramdisk's services and unmounts cleanly
# before the jump; --no-block returns at once, so the SSH session ends
# before the ramdisk does.
COMMAND = 'systemctl --no-block kexec'


def wanted(node):
    """driver_info ``fa_kexec`` if set, else ``[fuel_agent] kexec``.

    :raises InvalidParameterValue: for a value that is not a boolean.
    """
    value = node.driver_info.get(DRIVER_INFO)
    if value is None:
        return CONF.fuel_agent.kexec
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        raise exception.InvalidParameterValue(
            'driver_info %s must be true or false, not %r'
            % (DRIVER_INFO, value))


def loaded(node):
    """(loaded, why not) from the agent's result."""
    result = node.driver_internal_info.get(operations.RESULT) or {}
    report = result.get('kexec') if isinstance(result, dict) else None
    if not isinstance(report, dict):
        return False, 'the agent did not report a loaded kernel'
    if report.get('loaded') is True:
        return True, None
    return False, 'the agent could not load the kernel: %s' % (
        report.get('reason') or 'no reason given')


def jump(task):
    """Start the loaded kernel; True when the node is on its way into the
    installed system, False when the caller must power cycle it."""
    node = task.node
    if not wanted(node):
        return False
    ok, why = loaded(node)
    if ok:
        ok, why = _start_kexec(node)
    if ok:
        message = ('kexec into the installed system (no firmware reboot); '
                   'the boot device is already the disk')
        LOG.info('Node %s: %s', node.uuid, message)
        manager_utils.node_history_record(node, event=message,
                                          event_type='deploy')
        return True
    message = 'kexec was asked for but not used (%s); power cycling' % why
    LOG.warning('Node %s: %s', node.uuid, message)
    manager_utils.node_history_record(node, event=message,
                                      event_type='deploy')
    return False


def _start_kexec(node, attempts=2):
    """Run the kexec over SSH; a transient failure (a connection that
    timed out on a loaded machine) gets one more try before the caller
    falls back to a power cycle, which costs a whole firmware boot."""
    for attempt in range(1, attempts + 1):
        try:
            with operations.connect(node) as session:
                session.run(COMMAND)
            return True, None
        except ssh.SSHError as exc:
            why = 'systemctl kexec failed: %s' % exc
            if not exc.transient or attempt == attempts:
                return False, why
            LOG.warning('Node %s: %s; trying once more', node.uuid, why)
