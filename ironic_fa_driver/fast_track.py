"""Fast track: the next operation takes a ramdisk that is already up.

With Ironic's ``[deploy] fast_track`` a ramdisk left running by inspection
or cleaning takes the next operation (cleaning after inspection, a deploy
after cleaning) without a reboot. Ironic decides whether it is fresh
enough (:func:`ironic.conductor.utils.is_fast_track`: powered on, and a
heartbeat within ``[deploy] fast_track_timeout`` or an inspection that
just finished); otherwise the operation boots the ramdisk as usual.

That ramdisk was not booted with this operation's key (``fa-ssh-key``),
so the conductor publishes the operation's PUBLIC key in the node's
``driver_internal_info`` (``fa_ssh_public_key``); fa-heartbeat looks the
node up, replaces root's key with it (:mod:`fa_agent.ramdisk_keys`) and
heartbeats with the key's fingerprint in the callback URL. Only that
heartbeat pins the callback (address, port, host key) for the operation;
the operation waits for it in DEPLOYWAIT / CLEANWAIT and Ironic's callback
timeout bounds the wait.

Also here: the heartbeat bookkeeping Ironic's freshness check reads
(``agent_url``, ``agent_last_heartbeat``), and forgetting it when the
ramdisk is gone.
"""

from fa_agent import contract
from ironic.common import states
from ironic.common import utils as ironic_utils
from ironic.conductor import utils as manager_utils
from oslo_log import log as logging

from ironic_fa_driver import keys

LOG = logging.getLogger(__name__)

PUBLIC_KEY = contract.PUBLISHED_KEY_FIELD
# Fingerprint of the published key while the operation waits for the
# running ramdisk to take it.
AWAITING = 'fa_fast_track_key'
AGENT_URL = 'agent_url'
LAST_HEARTBEAT = 'agent_last_heartbeat'
# Heartbeats in these states only keep the ramdisk known as alive.
RECORD_ONLY_STATES = frozenset(states.FASTTRACK_LOOKUP_ALLOWED_STATES) - {
    states.DEPLOYWAIT, states.CLEANWAIT}


def publish(node, key):
    """Publish the operation's public key on ``node`` (not saved) and
    return its fingerprint. Done on every ramdisk operation, so that a
    ramdisk booted with ``fa-ssh-key`` finds the same key by lookup.
    ``key``: the login key (a path, or a derived key in memory)."""
    line, fingerprint = keys.public_key(key)
    node.set_driver_internal_info(PUBLIC_KEY, line)
    node.del_driver_internal_info(AWAITING)
    return fingerprint


def start(task, operation):
    """Hand the running ramdisk this operation (fast track), or say no.

    :returns: True when the operation goes on with the running ramdisk
        (then wait for its heartbeat), False when it must boot one.
    """
    node = task.node
    if not manager_utils.is_fast_track(task):
        return False
    fingerprint = publish(node, keys.new_operation_key(node))
    node.set_driver_internal_info(AWAITING, fingerprint)
    # The ramdisk's next callback URL names the new key: Ironic's API
    # refuses a callback URL other than the recorded one, so drop it.
    manager_utils.remove_agent_url(node)
    message = ('Fast track %s: the ramdisk is up (last heartbeat %s); it '
               'gets this operation\'s key %s by lookup instead of a reboot'
               % (operation, node.driver_internal_info.get(LAST_HEARTBEAT),
                  fingerprint))
    LOG.info('Node %s: %s', node.uuid, message)
    manager_utils.node_history_record(node, event=message,
                                      event_type=operation)
    node.save()
    return True


def acknowledges(node, callback):
    """Whether a heartbeat's callback may pin this operation: always,
    unless the operation waits for the running ramdisk to take its key
    and this heartbeat does not announce that key."""
    expected = node.driver_internal_info.get(AWAITING)
    return not expected or callback.authorized_key == expected


def record(node, callback_url=None):
    """The bookkeeping Ironic's fast-track check reads (not saved): the
    heartbeat's time, and its callback URL when it pinned the operation
    (``callback_url`` given)."""
    node.timestamp_driver_internal_info(LAST_HEARTBEAT)
    if callback_url is not None:
        node.set_driver_internal_info(AGENT_URL, callback_url)
        node.del_driver_internal_info(AWAITING)


def record_only(node):
    """True for a heartbeat that only keeps a fast-track ramdisk known as
    alive between operations (node in e.g. manageable or available)."""
    return ironic_utils.fast_track_enabled(node) and \
        node.provision_state in RECORD_ONLY_STATES


def ramdisk_gone(node):
    """Forget the ramdisk (powered off, rebooted into the instance): no
    later operation may take it for alive (not saved)."""
    for key in (AGENT_URL, LAST_HEARTBEAT, AWAITING, PUBLIC_KEY):
        node.del_driver_internal_info(key)
