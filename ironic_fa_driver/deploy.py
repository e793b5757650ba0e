"""The ``fuel-agent`` deploy interface.

Deploy steps, in Ironic's standard priorities:

- ``deploy`` (100): provisioning network, deploy ramdisk with this
  deploy's SSH public key, reboot; waits for the ramdisk's heartbeat.
- ``write_image`` (80): uploads the agent input over SFTP and starts the
  agent detached; a periodic task polls its status file.
- ``prepare_instance_boot`` (60), ``tear_down_agent`` (40),
  ``switch_to_tenant_network`` (30), ``boot_instance`` (20).

The work is in :mod:`operations`, :mod:`validation` and friends; this
class only wires it into Ironic.
"""

from fa_agent import contract
from ironic.common import dhcp_factory
from ironic.common import exception
from ironic.common import states
from ironic.conductor import periodics
from ironic.conductor import task_manager
from ironic.conductor import utils as manager_utils
from ironic.drivers import base
from ironic.drivers.modules import agent_base
from ironic.drivers.modules import deploy_utils
from oslo_log import log as logging

from ironic_fa_driver import agent_input
from ironic_fa_driver import erasure
from ironic_fa_driver import conf
from ironic_fa_driver import fast_track
from ironic_fa_driver import glance_checksum
from ironic_fa_driver import heartbeat as fa_heartbeat
from ironic_fa_driver import kexec
from ironic_fa_driver import keys
from ironic_fa_driver import operations
from ironic_fa_driver import poller
from ironic_fa_driver import ramdisk_timeouts
from ironic_fa_driver import stranded
from ironic_fa_driver import scheme_source
from ironic_fa_driver import validation
from ironic_fa_driver import worker_pool

CONF = conf.CONF
LOG = logging.getLogger(__name__)

PROPERTIES = {
    'deploy_kernel': 'driver_info: deploy ramdisk kernel (Glance UUID, '
                     'http(s):// or file:// URL). Required by PXE/iPXE '
                     'boot.',
    'deploy_ramdisk': 'driver_info: deploy ramdisk initramfs with the '
                      'agent, sshd and fa-heartbeat. Required by PXE/iPXE '
                      'boot.',
    'fa_partition_scheme': 'driver_info: partitioning scheme (JSON object '
                           'or JSON text) used when neither the write_image '
                           'step nor instance_info capabilities fa_scheme '
                           'name one. Optional.',
    'fa_schemes': 'driver_info: named schemes, {"<name>": <scheme>}, looked '
                  'up before [fuel_agent]scheme_library_dir. Optional.',
    'fa_ssh_user': 'driver_info: SSH user on the ramdisk. Optional, '
                   'default [fuel_agent]ssh_user.',
    'fa_ssh_port': 'driver_info: SSH port on the ramdisk. Optional, '
                   'default: the port the ramdisk announces.',
    'fa_kexec': 'driver_info: true or false: end the deploy with kexec '
                'into the installed system instead of a power cycle. '
                'Optional, default [fuel_agent]kexec.',
    'fa_ssh_key_file': 'driver_info: private key on the conductor to log '
                       'in with instead of a per-deploy key (mode 0600). '
                       'Optional.',
    'image_source': 'instance_info: image to deploy: Glance UUID, http(s):// '
                    'or file:// URL. Required unless the scheme lists '
                    'images.',
    'image_checksum': 'instance_info: md5/sha256/sha512 hex digest of the '
                      'image, or the URL of a checksum file (md5 only with '
                      '[agent]allow_md5_checksum). Optional.',
    'image_os_hash_algo': 'instance_info: checksum algorithm (md5, sha256, '
                          'sha512); wins over image_checksum. Optional.',
    'image_os_hash_value': 'instance_info: checksum for image_os_hash_algo. '
                           'Optional.',
    'image_disk_format': 'instance_info: raw or qcow2 for whole-disk '
                         'images. Optional.',
    'configdrive': 'instance_info: configdrive (gzip+base64 ISO, URL, or '
                   'meta_data/user_data/network_data). Optional.',
    'capabilities': 'instance_info: {"fa_scheme": "<name>"} picks a named '
                    'scheme (Nova flavor extra spec capabilities:fa_scheme). '
                    'Optional.',
    'root_gb': 'instance_info: root partition size (GiB) of the default '
               'layout. Required for partition images (Ironic checks it '
               'even when a scheme sets the sizes).',
    'swap_mb': 'instance_info: swap partition size (MiB) of the default '
               'layout. Optional.',
    'ephemeral_gb': 'instance_info: ephemeral partition size (GiB) of the '
                    'default layout. Optional.',
    'root_device': 'instance_info or properties: root device hints choosing '
                   'the disk of the default layout. Optional.',
}

def _agent_started(node):
    return node.driver_internal_info.get(operations.STARTED_AT)


class FuelAgentDeploy(agent_base.AgentOobStepsMixin, base.DeployInterface):
    """Deploys with the fuel-agent provisioning agent over SSH."""

    def get_properties(self):
        return dict(PROPERTIES)

    def validate(self, task):
        validation.validate(task)

    # -- preparing and deploying ------------------------------------------

    @task_manager.require_exclusive_lock
    def prepare(self, task):
        """Resolve the image with Ironic's helpers (Glance, HTTP, local
        file) before the steps run; on takeover of an active node, let the
        boot interface set up the instance boot again."""
        node = task.node
        if node.provision_state == states.DEPLOYING:
            task.driver.network.validate(task)
            deploy_utils.populate_storage_driver_internal_info(task)
            task.driver.storage.attach_volumes(task)
            if node.instance_info.get('image_source'):
                node.instance_info = (
                    deploy_utils.build_instance_info_for_deploy(task))
                glance_checksum.add_multihash(task)
                node.save()
        elif node.provision_state in (states.ACTIVE, states.ADOPTING):
            task.driver.boot.prepare_instance(task)

    def _boot_ramdisk(self, task):
        node = task.node
        operations.forget_ramdisk(node)
        key = keys.new_operation_key(node)
        params = operations.ramdisk_params(node, keys.kernel_param_value(key))
        fast_track.publish(node, key)
        node.save()
        task.driver.boot.prepare_ramdisk(task, params)
        manager_utils.node_power_action(task, states.REBOOT)

    @base.deploy_step(priority=100)
    @task_manager.require_exclusive_lock
    def deploy(self, task):
        """Boot the deploy ramdisk on the provisioning network, or, on
        fast track, hand the deploy to the ramdisk already up; either
        once the scheme of this deploy's steps is known to be good."""
        node = task.node
        validation.check_before_power_on(task)
        if manager_utils.is_fast_track(task):
            with manager_utils.power_state_for_network_configuration(task):
                task.driver.network.unconfigure_tenant_networks(task)
                task.driver.network.add_provisioning_network(task)
            if fast_track.start(task, states.DEPLOYING):
                return states.DEPLOYWAIT
        if not node.disable_power_off:
            manager_utils.node_power_action(task, states.POWER_OFF)
        with manager_utils.power_state_for_network_configuration(task):
            task.driver.network.unconfigure_tenant_networks(task)
            task.driver.network.add_provisioning_network(task)
        self._boot_ramdisk(task)
        return states.DEPLOYWAIT

    @base.deploy_step(priority=80, argsinfo={
        'scheme': {'description': 'partitioning scheme (JSON object or '
                                  'text) for this deploy; wins over every '
                                  'other source', 'required': False},
        'scheme_name': {'description': 'name of a scheme in driver_info '
                                       'fa_schemes or the conductor\'s '
                                       'scheme library', 'required': False},
    })
    @task_manager.require_exclusive_lock
    def write_image(self, task, scheme=None, scheme_name=None):
        """Start the agent on the ramdisk; it lays out the disks and
        writes the image while the conductor polls it."""
        args = {'scheme': scheme, 'scheme_name': scheme_name}
        try:
            devices = validation.known_disks(task)
            if devices is None and \
                    scheme_source.default_needs_disks(task.node, args):
                # The default layout picks the smallest disk that is big
                # enough, as IPA does; without inspection data only the
                # ramdisk knows the disks.
                devices = operations.ramdisk_disks(task)
            source, document = agent_input.scheme_for(task, args, devices,
                                                      deploying=True)
            parsed = agent_input.check(source, document)
            provision = agent_input.build(task, parsed)
        except (exception.InvalidParameterValue,
                contract.InputError) as exc:
            raise exception.InstanceDeployFailure(
                reason=contract.redact(str(exc)))
        LOG.info('Deploying node %s with the scheme from %s',
                 task.node.uuid, source.origin)
        erasure.remember_keep_data(task.node, parsed)
        # A finished run of this ramdisk (cleaning's, on fast track) does
        # not stand for this deploy's; STARTED_AT keeps it to one run.
        operations.start_agent(task, provision, after_finished=True)
        return states.DEPLOYWAIT

    @base.deploy_step(priority=60)
    @task_manager.require_exclusive_lock
    def prepare_instance_boot(self, task):
        """Persistent boot from disk, by the boot interface."""
        try:
            task.driver.boot.prepare_instance(task)
        except Exception as exc:
            agent_base.log_and_raise_deployment_error(
                task, 'Failed to prepare instance for booting: %s' % exc,
                collect_logs=False, exc=exc)

    @base.deploy_step(priority=40)
    @task_manager.require_exclusive_lock
    def tear_down_agent(self, task):
        """Leave the ramdisk: kexec into the installed system when asked
        (:mod:`kexec`), else power off, softly if the BMC can."""
        node = task.node
        supported = task.driver.power.get_supported_power_states(task)
        try:
            if not node.disable_power_off and kexec.jump(task):
                pass  # powered on, starting the installed kernel
            elif node.disable_power_off:
                LOG.info('Node %s may not be powered off; boot_instance '
                         'will reboot it', node.uuid)
            elif states.POWER_ON not in supported:
                manager_utils.node_power_action(task, states.REBOOT)
            else:
                self._power_off(task, supported)
        except Exception as exc:
            agent_base.log_and_raise_deployment_error(
                task, 'Error powering off node %s after deploy: %s'
                % (node.uuid, exc), collect_logs=False, exc=exc)
        # The ramdisk is gone; the agent's result stays for the operator.
        node.del_driver_internal_info(operations.CALLBACK)
        fast_track.ramdisk_gone(node)
        keys.forget_operation_key(node)
        node.save()

    def _power_off(self, task, supported):
        if states.SOFT_POWER_OFF in supported:
            try:
                manager_utils.node_power_action(
                    task, states.SOFT_POWER_OFF,
                    timeout=CONF.fuel_agent.soft_power_off_timeout)
                return
            except Exception as exc:
                LOG.warning('Soft power off of node %s failed (%s); '
                            'powering it off hard', task.node.uuid, exc)
        manager_utils.node_power_action(task, states.POWER_OFF)

    # -- the ramdisk reporting in -----------------------------------------

    def heartbeat(self, task, callback_url, agent_version,
                  agent_verify_ca=None, agent_status=None,
                  agent_status_message=None):
        """Ironic calls this for every heartbeat in every state; the
        handling (Ironic's rules plus the pinned callback) is in
        :mod:`ironic_fa_driver.heartbeat`."""
        fa_heartbeat.handle(task, callback_url, agent_version,
                            agent_verify_ca=agent_verify_ca,
                            agent_status=agent_status,
                            agent_status_message=agent_status_message)

    @periodics.periodic(
        spacing=lambda: CONF.fuel_agent.status_poll_interval)
    def _poll_agents(self, manager, context):
        """The fallback poll (:mod:`poller`): nodes without a fresh
        status in their heartbeats, in parallel, each bounded in time."""
        worker_pool.keep_trimmed(manager)
        poller.poll_all(manager, context, type(self))
        stranded.resume_all(manager, context, type(self))

    # -- the rest of the node's life --------------------------------------

    @task_manager.require_exclusive_lock
    def tear_down(self, task):
        node = task.node
        if not node.disable_power_off:
            manager_utils.node_power_action(task, states.POWER_OFF)
        task.driver.storage.detach_volumes(task)
        deploy_utils.tear_down_storage_configuration(task)
        with manager_utils.power_state_for_network_configuration(task):
            task.driver.network.unconfigure_tenant_networks(task)
            task.driver.network.remove_provisioning_network(task)
        return states.DELETED

    def clean_up(self, task):
        """Remove ramdisk boot files, instance boot files and the key;
        after a callback timeout, say in last_error how far the ramdisk
        got."""
        ramdisk_timeouts.on_deploy_failure(task.node)
        task.driver.boot.clean_up_ramdisk(task)
        task.driver.boot.clean_up_instance(task)
        dhcp_factory.DHCPFactory().clean_dhcp(task)
        if not task.shared:
            keys.forget_operation_key(task.node)
            operations.forget_ramdisk(task.node)
            task.node.save()
        elif not keys.configured_key_file(task.node):
            keys.remove_deploy_key(task.node.uuid)

    def take_over(self, task):
        """Resume polling at once when this conductor inherits a running
        agent; the agent is never started again."""
        if _agent_started(task.node):
            LOG.info('Taking over node %s with a running agent',
                     task.node.uuid)
            operations.poll(task)

    # -- cleaning ---------------------------------------------------------

    def get_clean_steps(self, task):
        """IPA's erase steps, priorities from Ironic's [deploy] options."""
        return erasure.clean_steps(super().get_clean_steps(task))

    def prepare_cleaning(self, task):
        """Boot the ramdisk on the cleaning network, or, on fast track,
        hand the cleaning to the ramdisk already up."""
        if manager_utils.is_fast_track(task):
            task.driver.network.add_cleaning_network(task)
            if fast_track.start(task, states.CLEANING):
                return states.CLEANWAIT
        power_state = manager_utils.power_on_node_if_needed(task)
        task.driver.network.add_cleaning_network(task)
        manager_utils.restore_power_state_if_needed(task, power_state)
        self._boot_ramdisk(task)
        return states.CLEANWAIT

    def tear_down_cleaning(self, task):
        """Power off and forget the ramdisk; on fast track Ironic's
        helper leaves it running (with its agent token and URL) for the
        next operation."""
        ramdisk_timeouts.on_cleaning_failure(task.node)
        stays = manager_utils.is_fast_track(task)
        deploy_utils.tear_down_inband_cleaning(task, manage_boot=True)
        if not stays:
            fast_track.ramdisk_gone(task.node)
        operations.forget_ramdisk(task.node)
        # On fast track the next operation publishes a key of its own.
        keys.forget_operation_key(task.node)
        task.node.save()

    @base.clean_step(priority=99, abortable=False)
    def erase_devices_metadata(self, task):
        """Wipe signatures and partition tables of every disk."""
        erasure.start(task, 'erase_devices_metadata')
        return states.CLEANWAIT

    @base.clean_step(priority=10, abortable=False)
    def erase_devices(self, task):
        """Erase every byte of every disk: NVMe format or ATA secure erase
        where supported, else overwrite."""
        erasure.start(task, 'erase_devices')
        return states.CLEANWAIT

    @base.clean_step(priority=0, abortable=False)
    def erase_devices_express(self, task):
        """NVMe format where supported, else wipe metadata."""
        erasure.start(task, 'erase_devices_express')
        return states.CLEANWAIT
