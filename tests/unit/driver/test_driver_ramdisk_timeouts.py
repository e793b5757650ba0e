"""A ramdisk that never reported in: the operator is told the boot
interface and mode and how far the ramdisk got (ironic_fa_driver.
ramdisk_timeouts), through Ironic's own timeout handlers
(``cleanup_after_timeout``, ``cleanup_cleanwait_timeout``) on its unit-test
base; the lookup and heartbeat are the driver's real ones where the
ramdisk got that far (fake_ramdisk's real SSH server)."""

from ironic.common import states
from ironic.conductor import utils as manager_utils
from ironic import objects

from ironic_fa_driver import operations
from ironic_fa_driver import ramdisk_timeouts

from test_driver_deploy_flow import FlowTestCase

IRONIC_TIMEOUT = 'Timeout reached while waiting for callback for node'


class DeployTimeoutTestCase(FlowTestCase):

    def time_out(self, node):
        with self.task(node) as task:
            manager_utils.cleanup_after_timeout(task)
        node.refresh()
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertTrue(node.last_error.startswith(IRONIC_TIMEOUT),
                        node.last_error)
        return node.last_error

    def test_no_lookup_names_the_boot_path_and_the_api(self):
        node = self.deploying_node()
        self.start_deploy(node)
        error = self.time_out(node)
        # Ironic 39's default boot mode is UEFI.
        self.assertIn('No ramdisk reached Ironic (boot interface fake, '
                      'uefi mode): nothing looked the node up at '
                      'http://127.0.0.1:6385', error)

    def test_lookup_without_heartbeat_says_so(self):
        node = self.deploying_node()
        self.start_deploy(node)
        # What Ironic's lookup leaves (get_node_with_token).
        node.set_driver_internal_info('agent_secret_token', 'secret')
        node.save()
        error = self.time_out(node)
        self.assertIn('looked the node up but never heartbeated', error)

    def test_heartbeat_without_an_agent_names_the_address(self):
        node = self.deploying_node()
        self.start_deploy(node)
        # What the first heartbeat records (operations.record_callback)
        # when the agent could not be started yet (an SSH failure fails
        # the deploy at once; this is a start that never happened).
        node.set_driver_internal_info(operations.CALLBACK, {
            'address': '192.0.2.7', 'port': 22,
            'host_key_type': 'ssh-ed25519', 'host_key': 'SHA256:x'})
        node.save()
        error = self.time_out(node)
        self.assertIn('heartbeated from 192.0.2.7, but the agent was never '
                      'started', error)

    def test_agent_started_leaves_ironics_message_alone(self):
        node = self.deploy_to_agent(status={'state': 'running'}, sleep=30)
        error = self.time_out(node)
        self.assertNotIn('ramdisk', error)


class ExplainTestCase(FlowTestCase):

    def node(self, boot_interface, boot_mode):
        return self.create_node(
            boot_interface=boot_interface,
            properties={'capabilities': 'boot_mode:%s' % boot_mode})

    def test_each_boot_path_says_what_the_firmware_needs(self):
        cases = [('pxe', 'uefi', 'naming bootx64.efi, then shim, GRUB'),
                 ('pxe', 'bios', 'naming pxelinux.0'),
                 ('ipxe', 'bios', 'boot.ipxe over HTTP'),
                 ('http-ipxe', 'uefi', 'vendor class HTTPClient'),
                 ('http', 'uefi', 'a GRUB that asks DHCP for its own'),
                 ('redfish-virtual-media', 'uefi', 'deploy ISO attached')]
        for interface, mode, needs in cases:
            why = ramdisk_timeouts.explain(self.node(interface, mode))
            self.assertIn('(boot interface %s, %s mode)' % (interface, mode),
                          why)
            self.assertIn(needs, why)

    def test_a_pregenerated_token_is_not_a_lookup(self):
        node = self.node('redfish-virtual-media', 'uefi')
        node.set_driver_internal_info('agent_secret_token', 'secret')
        node.set_driver_internal_info('agent_secret_token_pregenerated',
                                      True)
        self.assertIn('No ramdisk reached Ironic',
                      ramdisk_timeouts.explain(node))


class CleaningTimeoutTestCase(FlowTestCase):

    def test_clean_wait_timeout_records_why_in_the_history(self):
        node = self.create_node(
            provision_state=states.CLEANFAIL,
            target_provision_state=states.AVAILABLE,
            clean_step={'step': 'erase_devices_metadata',
                        'interface': 'deploy', 'priority': 99},
            boot_interface='fake')
        with self.task(node) as task:
            manager_utils.cleanup_cleanwait_timeout(task)
        node.refresh()
        self.assertIn('Timeout reached while cleaning', node.last_error)
        events = [h.event for h in objects.NodeHistory.list_by_node_id(
            self.context, node.id)]
        self.assertTrue(any(e.startswith('No ramdisk reached Ironic '
                                         '(boot interface fake')
                            for e in events), events)
