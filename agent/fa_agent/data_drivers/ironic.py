"""Data driver for this project's own ``provision.json``."""

from fa_agent import data_drivers
from fa_agent import input_format


class IronicDataDriver(data_drivers.DataDriver):

    @property
    def request(self):
        return input_format.parse(self.data)
