"""Hardware types that accept the ``fuel-agent`` deploy and rescue
interfaces.

Ironic checks interfaces against a hardware type by exact class, so the
stock ``ipmi``, ``redfish`` and ``manual-management`` types refuse an
out-of-tree one. These subclasses change nothing but those lists. The
stock ``agent`` rescue interface needs IPA's finalize_rescue, so it
works only with IPA's deploy interfaces and ramdisk; ``fuel-agent``
rescue is the one for the fuel ramdisk, listed first.
"""

from ironic.drivers import generic
from ironic.drivers import ipmi
from ironic.drivers import redfish

from ironic_fa_driver import deploy
from ironic_fa_driver import rescue


class _AcceptsFuelAgent:
    @property
    def supported_deploy_interfaces(self):
        """The parent's deploy interfaces, fuel-agent first."""
        return [deploy.FuelAgentDeploy] + super().supported_deploy_interfaces

    @property
    def supported_rescue_interfaces(self):
        """The parent's rescue interfaces (no-rescue, and agent for IPA
        deploys), fuel-agent first."""
        return [rescue.FuelAgentRescue] + super().supported_rescue_interfaces


class FuelIPMIHardware(_AcceptsFuelAgent, ipmi.IPMIHardware):
    """``fuel-ipmi``: Ironic's ipmi hardware type plus fuel-agent."""


class FuelRedfishHardware(_AcceptsFuelAgent, redfish.RedfishHardware):
    """``fuel-redfish``: Ironic's redfish hardware type plus fuel-agent."""


class FuelManualManagementHardware(_AcceptsFuelAgent,
                                   generic.ManualManagementHardware):
    """``fuel-manual``: manual-management (operator powers the node, or
    the fake power interface in tests) plus fuel-agent."""
