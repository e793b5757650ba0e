"""Data drivers turn an input document into a ProvisionRequest.

They are plug-ins found by name in the ``fa_agent.data_drivers`` entry
point group, so a new input format needs no change to the agent.
"""

import abc

from stevedore import driver
from stevedore import exception
from stevedore import extension

from fa_agent import input_format

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
    """Instantiate the data driver called ``name`` on ``data``.

    :raises input_format.InputError: when no driver has that name.
    """
    try:
        manager = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                       invoke_args=(data,))
    except exception.NoMatches:
        known = sorted(extension.ExtensionManager(NAMESPACE).names())
        raise input_format.InputError(
            'data driver %r does not exist; available: %s'
            % (name, ', '.join(known)))
    return manager.driver
