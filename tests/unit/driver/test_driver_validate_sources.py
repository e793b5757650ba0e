"""Every scheme source is checked before power-on, and validate()
reports every problem at once.

Deploy templates (chosen by ``instance_info.traits``) are visible to
``validate()``, which Ironic's ``start_deploy`` and ``baremetal node
validate`` call; ``--deploy-steps`` arguments reach the node only after
``validate()`` (``do_node_deploy`` stores them), so the ``deploy`` step
checks them before its first power action. Driven through Ironic's own
conductor code; only the conductor manager (RPC worker pool) is a mock,
since start_deploy only hands it the next call.
"""

import copy
import functools
import hashlib
import http.server
import os
import threading
from unittest import mock

from ironic.common import exception
from ironic.common import states
from ironic.conductor import deployments
from ironic.conductor import utils as manager_utils
from ironic.drivers.modules import fake
from ironic.tests.unit.db import utils as db_utils
from ironic.tests.unit.objects import utils as obj_utils

from ironic_fa_driver import validation

import driver_base

BAD_SCHEME = {'version': 1, 'storage': [
    {'type': 'disk', 'id': 'd', 'match': {'name': '/dev/sda'}},
    {'type': 'partition', 'id': 'p', 'device': 'd', 'size': 'lots'},
    {'type': 'filesystem', 'id': 'fs', 'device': 'p', 'fstype': 'zfs',
     'mount_point': '/'}]}


def write_image(priority=80, **args):
    return {'interface': 'deploy', 'step': 'write_image',
            'priority': priority, 'args': args}


class SourcesTestCase(driver_base.DriverTestCase):

    def template(self, name, scheme):
        return obj_utils.create_test_deploy_template(
            self.context, name=name, steps=[write_image(scheme=scheme)])

    def validate(self, node, deploy_steps=None):
        with self.task(node, shared=True) as task:
            return validation.validate(task, deploy_steps)

    def assert_invalid(self, node, *fragments, deploy_steps=None,
                       error=exception.InvalidParameterValue):
        exc = self.assertRaises(error, self.validate, node, deploy_steps)
        for fragment in fragments:
            self.assertIn(fragment, str(exc))
        return str(exc)

    def traited_node(self, **kwargs):
        node = self.create_node(**kwargs)
        info = dict(node.instance_info, traits=['CUSTOM_X'])
        node.instance_info = info
        node.save()
        db_utils.create_test_node_traits(['CUSTOM_X'], node_id=node.id)
        return node

    # -- which source -------------------------------------------------------

    def test_deploy_template_scheme_is_checked(self):
        self.template('CUSTOM_X', BAD_SCHEME)
        self.assert_invalid(
            self.traited_node(),
            'deploy template CUSTOM_X step write_image argument "scheme"',
            '$.storage[1].size', '$.storage[2].fstype')

    def test_template_not_named_by_traits_is_not_used(self):
        self.template('CUSTOM_OTHER', BAD_SCHEME)
        self.validate(self.traited_node())

    def test_template_scheme_name_is_looked_up(self):
        obj_utils.create_test_deploy_template(
            self.context, name='CUSTOM_X',
            steps=[write_image(scheme_name='nowhere')])
        self.assert_invalid(
            self.traited_node(),
            'deploy template CUSTOM_X step write_image argument '
            '"scheme_name": no scheme named \'nowhere\'')

    def test_template_scheme_must_fit_the_inspected_disks(self):
        scheme = copy.deepcopy(driver_base.PARTITIONED_SCHEME)
        self.template('CUSTOM_X', scheme)
        node = self.traited_node(
            driver_internal_info={'is_whole_disk_image': False})
        self.add_inventory(node, ('/dev/sda', 5 * driver_base.GiB))
        self.assert_invalid(
            node, 'deploy template CUSTOM_X step write_image argument '
            '"scheme"', 'does not fit the inspected disks')
        node.refresh()
        self.add_inventory(node, ('/dev/sda', 50 * driver_base.GiB))
        self.validate(node)

    def test_user_steps_win_over_templates(self):
        self.template('CUSTOM_X', BAD_SCHEME)
        node = self.traited_node()
        good = [write_image(scheme=driver_base.WHOLE_DISK_SCHEME)]
        self.validate(node, deploy_steps=good)
        self.assert_invalid(
            self.create_node(), 'deploy steps argument (--deploy-steps) '
            'step write_image argument "scheme"', '$.storage[1].size',
            deploy_steps=[write_image(scheme=BAD_SCHEME)])

    def test_step_args_win_over_capabilities_and_driver_info(self):
        node = self.create_node(
            instance_info={'image_source': 'http://127.0.0.1:1/d.img',
                           'capabilities': {'fa_scheme': 'nowhere'}},
            driver_info={'fa_partition_scheme': BAD_SCHEME})
        self.validate(node, [write_image(
            scheme=driver_base.WHOLE_DISK_SCHEME)])
        self.assert_invalid(node, 'instance_info.capabilities.fa_scheme')

    # -- every problem at once ----------------------------------------------

    def test_missing_image_and_bad_scheme_together(self):
        self.template('CUSTOM_X', {'version': 1, 'storage': [
            {'type': 'disk', 'id': 'd', 'table': 'zfs',
             'match': {'name': '/dev/sda'}}]})
        node = self.traited_node(instance_info={})
        message = self.assert_invalid(
            node, 'instance_info.image_source is required',
            'deploy template CUSTOM_X', '$.storage[0].table')
        self.assertIn('2 problems', message)

    def test_boot_fields_ssh_and_scheme_together(self):
        node = self.create_node(
            driver='fuel-manual', boot_interface='pxe', instance_info={},
            driver_info={'fa_ssh_port': 'x', 'fa_partition_scheme':
                         BAD_SCHEME})
        self.add_port(node)
        message = self.assert_invalid(
            node, 'deploy_kernel', 'driver_info.fa_ssh_port',
            'driver_info.fa_partition_scheme', '$.storage[1].size',
            'instance_info.image_source')
        self.assertIn('4 problems', message)

    def test_only_missing_fields_stay_missing(self):
        self.assert_invalid(self.create_node(instance_info={}),
                            'instance_info.image_source',
                            error=exception.MissingParameterValue)

    # -- through Ironic's conductor ----------------------------------------

    def test_start_deploy_refuses_a_template_scheme(self):
        self.template('CUSTOM_X', BAD_SCHEME)
        node = self.traited_node(provision_state=states.AVAILABLE)
        manager = mock.Mock()
        with mock.patch.object(manager_utils, 'node_power_action',
                               autospec=True) as power:
            with self.task(node) as task:
                exc = self.assertRaises(exception.InstanceDeployFailure,
                                        deployments.start_deploy, task,
                                        manager)
        self.assertIn('deploy template CUSTOM_X', str(exc))
        self.assertIn('$.storage[2].fstype', str(exc))
        manager._spawn_worker.assert_not_called()
        power.assert_not_called()
        node.refresh()
        self.assertEqual(states.AVAILABLE, node.provision_state)

    def available_node(self):
        """A node prepare() can resolve the image of (a local file)."""
        image = os.path.join(self.tmp, 'disk.img')
        with open(image, 'wb') as f:
            f.write(b'\0' * 4096)
        self.config(file_url_allowed_paths=[self.tmp], group='conductor')
        # prepare() caches the image where an HTTP server serves it, and
        # checks the URL: a real one on loopback.
        root = os.path.join(self.tmp, 'http')
        os.makedirs(root)
        server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(
                http.server.SimpleHTTPRequestHandler, directory=root))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.config(http_url='http://127.0.0.1:%d' % server.server_port,
                    http_root=root, group='deploy')
        return self.create_node(
            provision_state=states.AVAILABLE, power_state=states.POWER_OFF,
            instance_info={'image_source': 'file://' + image,
                           'image_type': 'whole-disk',
                           'image_os_hash_algo': 'sha256',
                           'image_os_hash_value': hashlib.sha256(
                               b'\0' * 4096).hexdigest()})

    def test_deploy_steps_argument_refused_before_power_on(self):
        node = self.available_node()
        steps = [write_image(scheme=BAD_SCHEME)]
        manager = mock.Mock()
        with mock.patch.object(manager_utils, 'node_power_action',
                               autospec=True) as power, \
                mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                                  autospec=True) as prepare:
            with self.task(node) as task:
                # Ironic's validate() does not see the steps...
                deployments.start_deploy(task, manager, deploy_steps=steps)
                self.assertEqual(states.DEPLOYING,
                                 task.node.provision_state)
                # ... the worker start_deploy spawned stores them and
                # runs the deploy step, which checks them first.
                deployments.do_node_deploy(task, deploy_steps=steps)
        node.refresh()
        self.assertEqual(states.DEPLOYFAIL, node.provision_state)
        self.assertIn('no power action taken', node.last_error)
        self.assertIn('deploy steps argument (--deploy-steps) step '
                      'write_image argument "scheme"', node.last_error)
        self.assertIn('$.storage[1].size', node.last_error)
        power.assert_not_called()
        prepare.assert_not_called()

    def test_good_deploy_steps_argument_boots_the_ramdisk(self):
        node = self.available_node()
        steps = [write_image(scheme=driver_base.WHOLE_DISK_SCHEME)]
        with mock.patch.object(fake.FakeBoot, 'prepare_ramdisk',
                               autospec=True) as prepare:
            with self.task(node) as task:
                deployments.start_deploy(task, mock.Mock(),
                                         deploy_steps=steps)
                deployments.do_node_deploy(task, deploy_steps=steps)
        node.refresh()
        self.assertEqual(states.DEPLOYWAIT, node.provision_state)
        prepare.assert_called_once()
