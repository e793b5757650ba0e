"""Entry points, hardware types, configuration and documented inputs."""

import os
import subprocess
import sys

from ironic.common import driver_factory
from ironic.common import exception
from ironic.conductor import task_manager
from ironic.drivers import ipmi
from ironic.drivers.modules.redfish import utils as redfish_utils
from ironic.tests.unit.objects import utils as obj_utils
import stevedore

from ironic_fa_driver import conf
from ironic_fa_driver import deploy
from ironic_fa_driver import hardware

import driver_base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


class RegistrationTestCase(driver_base.DriverTestCase):

    def test_entry_points(self):
        interfaces = stevedore.ExtensionManager(
            'ironic.hardware.interfaces.deploy')
        self.assertIs(deploy.FuelAgentDeploy,
                      interfaces['fuel-agent'].plugin)
        types = stevedore.ExtensionManager('ironic.hardware.types')
        self.assertIs(hardware.FuelIPMIHardware, types['fuel-ipmi'].plugin)
        self.assertIs(hardware.FuelRedfishHardware,
                      types['fuel-redfish'].plugin)
        self.assertIs(hardware.FuelManualManagementHardware,
                      types['fuel-manual'].plugin)

    def test_types_accept_fuel_agent_and_keep_stock_interfaces(self):
        for cls, stock in (
                (hardware.FuelIPMIHardware, ipmi.IPMIHardware),):
            supported = cls().supported_deploy_interfaces
            self.assertEqual(deploy.FuelAgentDeploy, supported[0])
            self.assertEqual(stock().supported_deploy_interfaces,
                             supported[1:])
        for cls in (hardware.FuelRedfishHardware,
                    hardware.FuelManualManagementHardware):
            self.assertIn(deploy.FuelAgentDeploy,
                          cls().supported_deploy_interfaces)

    def test_types_accept_the_agent_inspect_interface(self):
        # In-band inspection with the fuel ramdisk (doc ops-inspection).
        from ironic.drivers.modules import inspector
        for cls in (hardware.FuelIPMIHardware, hardware.FuelRedfishHardware,
                    hardware.FuelManualManagementHardware):
            self.assertIn(inspector.AgentInspect,
                          cls().supported_inspect_interfaces)

    def test_fuel_manual_node_loads_with_fuel_agent(self):
        node = obj_utils.create_test_node(
            self.context, driver='fuel-manual', deploy_interface='fuel-agent',
            power_interface='fake', management_interface='fake',
            boot_interface='pxe', network_interface='noop')
        with task_manager.acquire(self.context, node.uuid) as task:
            self.assertIsInstance(task.driver.deploy, deploy.FuelAgentDeploy)

    def test_fuel_agent_is_the_default_for_fuel_types(self):
        node = obj_utils.get_test_node(self.context, driver='fuel-ipmi')
        driver_factory.check_and_update_node_interfaces(node)
        self.assertEqual('fuel-agent', node.deploy_interface)

    def test_stock_ipmi_rejects_fuel_agent(self):
        node = obj_utils.get_test_node(self.context, driver='ipmi',
                                       deploy_interface='fuel-agent')
        self.assertRaises(exception.IncompatibleInterface,
                          driver_factory.check_and_update_node_interfaces,
                          node)

    def test_every_input_is_documented(self):
        properties = deploy.FuelAgentDeploy().get_properties()
        for name in ('deploy_kernel', 'deploy_ramdisk', 'fa_partition_scheme',
                     'fa_schemes', 'fa_ssh_user', 'fa_ssh_port',
                     'fa_ssh_key_file', 'image_source', 'image_checksum',
                     'image_os_hash_algo', 'image_os_hash_value',
                     'configdrive', 'capabilities', 'root_gb', 'swap_mb',
                     'ephemeral_gb', 'root_device'):
            self.assertIn(name, properties)
            self.assertTrue(properties[name].split(':')[0] in
                            ('driver_info', 'instance_info',
                             'instance_info or properties'), name)

    def _redfish_verify(self, **driver_info):
        node = obj_utils.get_test_node(
            self.context, driver='fuel-redfish', driver_info=dict(
                redfish_address='http://192.0.2.9:8000',
                redfish_system_id='/redfish/v1/Systems/1', **driver_info))
        return redfish_utils.parse_driver_info(node)['verify_ca']

    def test_fuel_redfish_driver_info_parses_with_verify_ca_defaults(self):
        # Ironic looks up [<hardware type>] verify_ca: a missing group
        # made every fuel-redfish node fail validation.
        self.assertIs(True, self._redfish_verify())
        ca = os.path.join(self.tmp, 'bmc-ca.pem')
        open(ca, 'w').close()
        self.config(verify_ca=ca, group='redfish')
        self.assertEqual(ca, self._redfish_verify())
        own = os.path.join(self.tmp, 'fuel-ca.pem')
        open(own, 'w').close()
        self.config(verify_ca=own, group='fuel-redfish')
        self.assertEqual(own, self._redfish_verify())
        # An explicit driver_info value still wins.
        self.assertIs(False, self._redfish_verify(redfish_verify_ca=False))

    def test_config_options(self):
        (group, opts), (redfish_group, _) = conf.list_opts()
        self.assertEqual('fuel_agent', group)
        self.assertEqual('fuel-redfish', redfish_group)
        names = {o.name for o in opts}
        self.assertLessEqual(
            {'ssh_user', 'ssh_key_file', 'ssh_port', 'ssh_connect_timeout',
             'ssh_command_timeout', 'agent_command', 'deploy_timeout',
             'status_poll_interval', 'scheme_library_dir',
             'extra_kernel_params', 'agent_logs_collect'}, names)
        self.assertEqual(22, conf.CONF.fuel_agent.ssh_port)

    def test_poll_interval_is_read_from_config_when_collected(self):
        from ironic.conductor import periodics
        self.config(status_poll_interval=7, group='fuel_agent')
        method = deploy.FuelAgentDeploy._poll_agents
        periodics.refresh_periodic_attributes(method)
        self.assertEqual(7, method._periodic_spacing)
        self.assertTrue(method._is_periodic)


def test_config_generator_writes_the_section(tmp_path):
    """oslo-config-generator finds the options through the entry point."""
    output = tmp_path / 'sample.conf'
    subprocess.run(
        [os.path.join(os.path.dirname(sys.executable),
                      'oslo-config-generator'),
         '--namespace', 'ironic_fa_driver', '--output-file', str(output)],
        check=True, cwd=ROOT)
    text = output.read_text()
    assert '[fuel_agent]' in text
    assert '#ssh_connect_timeout = 30' in text
    assert '#scheme_library_dir = /etc/ironic/fa-schemes' in text
