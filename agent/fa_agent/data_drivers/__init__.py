"""Data drivers turn an input document into a ProvisionRequest.

They are plug-ins found by name in the ``fa_agent.data_drivers`` entry
point group, so a new input format needs no change to the agent.
"""

import abc

from stevedore import driver

NAMESPACE = 'fa_agent.data_drivers'


class DataDriver(abc.ABC):
    """Reads one input format. ``data`` is the parsed JSON document."""

    def __init__(self, data):
        self.data = data

    @property
    @abc.abstractmethod
    def request(self):
        """The :class:`fa_agent.input_format.ProvisionRequest`."""


def get_driver(name, data):
    """Instantiate the data driver called ``name`` on ``data``."""
    manager = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                   invoke_args=(data,))
    return manager.driver
