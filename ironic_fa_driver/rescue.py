"""The ``fuel-agent`` rescue interface: rescue mode with the fuel ramdisk.

Ironic's ``agent`` rescue interface finishes a rescue through IPA's
``finalize_rescue`` HTTP command, which the fuel ramdisk does not have.
The flow here is Ironic's (agent.AgentRescue plus
HeartbeatMixin._finalize_rescue), the last step done over SSH:

1. :meth:`FuelAgentRescue.rescue`: instance boot files removed, tenant
   networks off, rescuing network on, the fuel ramdisk booted the way a
   deploy boots it (fresh SSH key on the kernel command line) -> RESCUEWAIT.
   Ironic's boot interfaces take the ramdisk from ``rescue_kernel`` /
   ``rescue_ramdisk`` in rescue mode (they do not fall back to deploy_*):
   point those at the fuel ramdisk.
2. The ramdisk's first heartbeat (deploy interface ->
   :mod:`ironic_fa_driver.heartbeat`) calls :meth:`finalize_rescue`: over
   SSH (host key pinned by that heartbeat) ``chpasswd -e`` sets the
   ``rescue`` user's password to the hash Ironic made of the operator's
   (``instance_info/hashed_rescue_password``), given on the command's
   standard input, so it is in no argv, log or error message; the
   ramdisk's heartbeat is stopped, the ramdisk boot files, rescuing
   network, plain and hashed password and SSH key removed, tenant
   networks configured -> RESCUE.
3. :meth:`unrescue`: the ramdisk's boot files go, tenant networks on,
   the instance boots again -> ACTIVE.
"""

from fa_agent import contract
from ironic.common import exception
from ironic.common import states
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic.drivers import base
from ironic.drivers import utils as driver_utils
from oslo_log import log as logging

from ironic_fa_driver import keys
from ironic_fa_driver import operations
from ironic_fa_driver import ssh

LOG = logging.getLogger(__name__)

# The account the fuel ramdisk has for rescue (agent/ramdisk/build.py),
# the name IPA's ramdisks use too.
RESCUE_USER = 'rescue'
SET_PASSWORD = 'chpasswd -e'
# Best effort: after the rescue the ramdisk belongs to the rescue user and
# has nothing more to say to Ironic.
STOP_HEARTBEAT = 'systemctl --no-block stop fa-heartbeat.service'
RAMDISK_HINT = ('point driver_info rescue_kernel/rescue_ramdisk (or '
                '[conductor]rescue_kernel/rescue_ramdisk) at the fuel '
                'ramdisk, the same files as deploy_kernel/deploy_ramdisk')


def password_line(hashed):
    """The ``chpasswd -e`` input that sets the rescue user's password.

    :raises: InvalidParameterValue for a value that is not one crypt(3)
        hash (a newline or colon would make chpasswd read another user).
    """
    if not isinstance(hashed, str) or not hashed.startswith('$') or any(
            c in hashed for c in ':\n\r\0') or hashed != hashed.strip():
        raise exception.InvalidParameterValue(
            'instance_info.hashed_rescue_password is not a crypt(3) hash')
    return ('%s:%s\n' % (RESCUE_USER, hashed)).encode()


class FuelAgentRescue(base.RescueInterface):
    """Rescue mode with the fuel ramdisk (needs the fuel-agent deploy
    interface, which receives the ramdisk's heartbeats)."""

    def get_properties(self):
        return {}

    def validate(self, task):
        """What Ironic's agent rescue checks, plus the deploy interface
        that handles this ramdisk's heartbeat.

        :raises: MissingParameterValue, InvalidParameterValue.
        """
        from ironic_fa_driver import deploy  # a cycle at import time
        node = task.node
        if not isinstance(task.driver.deploy, deploy.FuelAgentDeploy):
            raise exception.InvalidParameterValue(
                'rescue_interface fuel-agent needs deploy_interface '
                'fuel-agent (node %s has %s): only it handles the fuel '
                'ramdisk\'s heartbeat' % (node.uuid, node.deploy_interface))
        task.driver.network.validate_rescue(task)
        task.driver.boot.validate(task)
        try:
            task.driver.boot.validate_rescue(task)
        except exception.MissingParameterValue as exc:
            raise exception.MissingParameterValue(
                '%s; %s' % (exc, RAMDISK_HINT))
        password = node.instance_info.get('rescue_password')
        if password is None:
            raise exception.MissingParameterValue(
                'instance_info.rescue_password is missing on node %s: it '
                'is required to rescue the node' % node.uuid)
        if not isinstance(password, str) or not password.strip():
            raise exception.InvalidParameterValue(
                'instance_info.rescue_password of node %s is empty: it '
                'must be a non-empty string' % node.uuid)

    @task_manager.require_exclusive_lock
    def rescue(self, task):
        """Boot the fuel ramdisk on the rescuing network."""
        node = task.node
        with driver_utils.power_off_and_on(task):
            # As Ironic's agent rescue: a power state sync must not see
            # the node off and power the rescued instance off later.
            node.power_state = states.POWER_ON
            node.save()
            task.driver.boot.clean_up_instance(task)
            with manager_utils.power_state_for_network_configuration(task):
                task.driver.network.unconfigure_tenant_networks(task)
                task.driver.network.add_rescuing_network(task)
            operations.forget_ramdisk(node)
            params = operations.ramdisk_params(
                node, keys.kernel_param_value(keys.new_operation_key(node)))
            node.save()
            task.driver.boot.prepare_ramdisk(task, params)
        return states.RESCUEWAIT

    def finalize_rescue(self, task):
        """Set the rescue password on the ramdisk and finish the rescue
        (called on the ramdisk's first heartbeat in RESCUEWAIT).

        :raises: InstanceRescueFailure; the caller fails the rescue.
        """
        node = task.node
        try:
            line = password_line(
                node.instance_info.get('hashed_rescue_password'))
            with operations.connect(node) as session:
                session.run(SET_PASSWORD, input=line)
                status, _out, err = session.run(STOP_HEARTBEAT, check=False)
        except (ssh.SSHError, exception.InvalidParameterValue,
                exception.InstanceDeployFailure) as exc:
            raise exception.InstanceRescueFailure(
                node=node.uuid, instance=node.instance_uuid,
                reason='cannot set the rescue password on the ramdisk: %s'
                       % contract.redact(str(exc)))
        if status:
            LOG.warning('Node %s: stopping fa-heartbeat on the rescue '
                        'ramdisk failed (%s): %s', node.uuid, status,
                        contract.redact(err.strip()[-300:]))
        LOG.info('Rescue password of user %s set on the ramdisk of node %s',
                 RESCUE_USER, node.uuid)
        task.process_event('resume')
        self.clean_up(task)
        with manager_utils.power_state_for_network_configuration(task):
            task.driver.network.configure_tenant_networks(task)
        task.process_event('done')

    @task_manager.require_exclusive_lock
    def unrescue(self, task):
        """Boot the instance again."""
        node = task.node
        with driver_utils.power_off_and_on(task):
            node.power_state = states.POWER_ON
            node.save()
            self.clean_up(task)
            with manager_utils.power_state_for_network_configuration(task):
                task.driver.network.configure_tenant_networks(task)
            task.driver.boot.prepare_instance(task)
        return states.ACTIVE

    def clean_up(self, task):
        """After a rescue (finished, failed, timed out or aborted) and at
        unrescue: no password kept, no ramdisk boot files, no rescuing
        network, no SSH key or pinned callback of that ramdisk."""
        node = task.node
        manager_utils.remove_node_rescue_password(node, save=False)
        operations.forget_ramdisk(node)
        keys.forget_operation_key(node)
        node.save()
        task.driver.boot.clean_up_ramdisk(task)
        with manager_utils.power_state_for_network_configuration(task):
            task.driver.network.remove_rescuing_network(task)
