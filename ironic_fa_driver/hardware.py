"""Hardware types that accept the ``fuel-agent`` deploy interface.

Ironic checks deploy interfaces against a hardware type by exact class, so
the stock ``ipmi``, ``redfish`` and ``manual-management`` types refuse an
out-of-tree one. These subclasses change nothing but that list.
"""

from ironic.drivers import generic
from ironic.drivers import ipmi
from ironic.drivers import redfish

from ironic_fa_driver import deploy


class _AcceptsFuelAgent:
    @property
    def supported_deploy_interfaces(self):
        """The parent's deploy interfaces, fuel-agent first."""
        return [deploy.FuelAgentDeploy] + super().supported_deploy_interfaces


class FuelIPMIHardware(_AcceptsFuelAgent, ipmi.IPMIHardware):
    """``fuel-ipmi``: Ironic's ipmi hardware type plus fuel-agent."""


class FuelRedfishHardware(_AcceptsFuelAgent, redfish.RedfishHardware):
    """``fuel-redfish``: Ironic's redfish hardware type plus fuel-agent."""


class FuelManualManagementHardware(_AcceptsFuelAgent,
                                   generic.ManualManagementHardware):
    """``fuel-manual``: manual-management (operator powers the node, or
    the fake power interface in tests) plus fuel-agent."""
