"""validate(): every error names its field and reason."""

import copy
import os

from ironic.common import exception
from ironic.drivers.modules import inspect_utils

from ironic_fa_driver import keys

import driver_base


class ValidateTestCase(driver_base.DriverTestCase):

    def validate(self, node):
        with self.task(node, shared=True) as task:
            task.driver.deploy.validate(task)

    def assert_invalid(self, node, *fragments,
                       error=exception.InvalidParameterValue):
        exc = self.assertRaises(error, self.validate, node)
        for fragment in fragments:
            self.assertIn(fragment, str(exc))
        return exc

    def test_default_layout_is_valid(self):
        self.validate(self.create_node())

    def test_boot_interface_is_validated(self):
        node = self.create_node(driver='fuel-manual', boot_interface='pxe')
        self.add_port(node)
        self.assert_invalid(node, 'deploy_kernel',
                            error=exception.MissingParameterValue)

    def test_power_interface_is_validated(self):
        node = self.create_node(driver='fuel-ipmi',
                                power_interface='ipmitool',
                                management_interface='ipmitool',
                                boot_interface='pxe',
                                driver_info={'deploy_kernel': 'http://k',
                                             'deploy_ramdisk': 'http://r'})
        self.add_port(node)
        self.assert_invalid(node, 'ipmi_address',
                            error=exception.MissingParameterValue)

    def test_missing_image_source(self):
        self.assert_invalid(self.create_node(instance_info={}),
                            'instance_info.image_source',
                            error=exception.MissingParameterValue)

    def test_invalid_scheme_lists_every_path(self):
        scheme = copy.deepcopy(driver_base.WHOLE_DISK_SCHEME)
        scheme['storage'][0]['table'] = 'zfs'
        scheme['storage'].append({'type': 'filesystem', 'id': 'fs',
                                  'device': 'ghost', 'fstype': 'ext4'})
        self.assert_invalid(
            self.create_node(driver_info={'fa_partition_scheme': scheme}),
            'driver_info.fa_partition_scheme', '$.storage[0].table',
            '$.storage[1].device')

    def test_scheme_not_an_object(self):
        self.assert_invalid(
            self.create_node(driver_info={'fa_partition_scheme': '[1]'}),
            'driver_info.fa_partition_scheme must be a JSON object')

    def test_fa_schemes_not_an_object(self):
        node = self.create_node(
            driver_info={'fa_schemes': 'nope'},
            instance_info={'image_source': 'http://127.0.0.1/i',
                           'capabilities': {'fa_scheme': 'a'}})
        self.assert_invalid(node, 'driver_info.fa_schemes')

    def test_unknown_capability_scheme(self):
        node = self.create_node(instance_info={
            'image_source': 'http://127.0.0.1/i',
            'capabilities': {'fa_scheme': 'raid1-lvm'}})
        self.assert_invalid(node, 'instance_info.capabilities.fa_scheme',
                            'raid1-lvm', self.library)

    def test_bad_capabilities(self):
        node = self.create_node(instance_info={
            'image_source': 'http://127.0.0.1/i', 'capabilities': '[oops'})
        self.assert_invalid(node, 'capabilities')

    def test_bad_root_device_hints(self):
        node = self.create_node(properties={'root_device': {'size': 'big'}})
        self.assert_invalid(node, 'root device hints')

    def test_ssh_port(self):
        self.assert_invalid(self.create_node(driver_info={'fa_ssh_port': 0}),
                            'driver_info.fa_ssh_port')
        self.assert_invalid(
            self.create_node(driver_info={'fa_ssh_port': 'ssh'}),
            'driver_info.fa_ssh_port')

    def test_ssh_user(self):
        self.assert_invalid(self.create_node(driver_info={'fa_ssh_user': ''}),
                            'driver_info.fa_ssh_user')

    def test_key_file_missing(self):
        path = os.path.join(self.tmp, 'missing_key')
        self.assert_invalid(
            self.create_node(driver_info={'fa_ssh_key_file': path}),
            'driver_info.fa_ssh_key_file', path, 'cannot be read')

    def test_key_file_readable_by_others(self):
        path = keys.create_deploy_key('x')
        os.chmod(path, 0o644)
        self.config(ssh_key_file=path, group='fuel_agent')
        self.assert_invalid(self.create_node(), '[fuel_agent]ssh_key_file',
                            'mode 644', 'chmod 600')

    def test_key_file_not_a_key(self):
        path = os.path.join(self.tmp, 'not_a_key')
        with open(path, 'w') as f:
            f.write('hello')
        os.chmod(path, 0o600)
        self.assert_invalid(
            self.create_node(driver_info={'fa_ssh_key_file': path}),
            'not a usable SSH private key')

    def test_good_key_file(self):
        path = keys.create_deploy_key('x')
        self.validate(self.create_node(driver_info={'fa_ssh_key_file': path}))

    def test_fit_check_with_inspection_inventory(self):
        scheme = copy.deepcopy(driver_base.PARTITIONED_SCHEME)
        node = self.create_node(
            driver_internal_info={'is_whole_disk_image': False},
            driver_info={'fa_partition_scheme': scheme})
        self.add_inventory(node, ('/dev/sda', 5 * driver_base.GiB))
        exc = self.assert_invalid(node, 'does not fit the inspected disks',
                                  '$.storage')
        # Nova shows its user 255 characters of the fault, about 125 of
        # them its own prefix: the reason comes before the source.
        message = str(exc)
        self.assertLess(message.index('$.storage'), 130)
        self.assertGreater(message.index('scheme from driver_info'),
                           message.index('$.storage'))

    def test_fit_check_passes_on_a_big_disk(self):
        scheme = copy.deepcopy(driver_base.PARTITIONED_SCHEME)
        node = self.create_node(
            driver_internal_info={'is_whole_disk_image': False},
            driver_info={'fa_partition_scheme': scheme})
        self.add_inventory(node, ('/dev/sda', 50 * driver_base.GiB))
        self.validate(node)

    def test_fit_check_missing_disk(self):
        node = self.create_node(
            driver_info={'fa_partition_scheme': driver_base.WHOLE_DISK_SCHEME})
        self.add_inventory(node, ('/dev/vda', 50 * driver_base.GiB))
        self.assert_invalid(node, 'does not fit', '$.storage[0].match')

    def test_unreadable_inspection_inventory(self):
        node = self.create_node(
            driver_info={'fa_partition_scheme': driver_base.WHOLE_DISK_SCHEME})
        inspect_utils.store_inspection_data(
            node, {'interfaces': [], 'disks': [{'name': '/dev/sda',
                                                'size': 'lots'}]},
            {}, self.context)
        self.assert_invalid(node, 'inspection inventory cannot be read',
                            '$.inventory.disks[0].size')

    def test_fit_check_from_local_gb(self):
        scheme = copy.deepcopy(driver_base.PARTITIONED_SCHEME)
        node = self.create_node(
            properties={'local_gb': 5},
            driver_internal_info={'is_whole_disk_image': False},
            driver_info={'fa_partition_scheme': scheme})
        self.assert_invalid(node, 'properties.local_gb=5')
        node.properties = {'local_gb': 40}
        node.save()
        self.validate(node)
