"""Item 10 (never a traceback, never slow), conductor side: every place a
scheme comes from (driver_info, driver_info.fa_schemes, the write_image
step argument of a deploy template or of the user's deploy steps, a
flavor capability naming a library file) refuses a scheme longer than
``[fuel_agent]max_scheme_bytes`` before parsing it, and a deeply nested
one is an error naming the field, not a RecursionError.

Real parts: Ironic's database, node objects and task manager; scheme
library files on disk.
"""

import json
import os
import sys
import time

from ironic.common import exception

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'unit',
                                'driver'))

import driver_base  # noqa: E402
from ironic_fa_driver import agent_input  # noqa: E402
from ironic_fa_driver import scheme_source  # noqa: E402

LIMIT = 'more than [fuel_agent]max_scheme_bytes (1048576)'


def padded(size):
    """A scheme whose JSON text (json.dumps) is ``size`` bytes."""
    scheme = dict(driver_base.WHOLE_DISK_SCHEME, x_padding='')
    scheme['x_padding'] = 'p' * (size - len(json.dumps(scheme)))
    assert len(json.dumps(scheme)) == size
    return scheme


def nested(depth):
    """{"version": 1, "storage": [[[...]]]} ``depth`` lists deep, built
    without recursion."""
    inner = []
    for _ in range(depth):
        inner = [inner]
    return {'version': 1, 'storage': inner}


class SchemeSizeTestCase(driver_base.DriverTestCase):

    def resolve(self, node, step_args=None):
        with self.task(node, shared=True) as task:
            return agent_input.scheme_for(task, step_args)

    def refused(self, node, step_args=None, expect=LIMIT):
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.resolve, node, step_args)
        self.assertIn(expect, str(exc))
        return str(exc)

    def test_a_scheme_just_under_the_limit_is_accepted(self):
        node = self.create_node(driver_info={
            'fa_partition_scheme': json.dumps(padded(1024 * 1024 - 10))})
        source, _document = self.resolve(node)
        self.assertEqual('driver_info.fa_partition_scheme', source.origin)

    def test_driver_info_text(self):
        node = self.create_node(driver_info={
            'fa_partition_scheme': json.dumps(padded(1024 * 1024 + 100))})
        message = self.refused(node)
        self.assertIn('driver_info.fa_partition_scheme is 1048676 bytes',
                      message)

    def test_driver_info_object(self):
        node = self.create_node(driver_info={
            'fa_partition_scheme': padded(1024 * 1024 + 100)})
        self.assertIn('driver_info.fa_partition_scheme',
                      self.refused(node))

    def test_node_schemes(self):
        node = self.create_node(
            driver_info={'fa_schemes': {'big': padded(1024 * 1024 + 100)}},
            instance_info={'image_source': 'http://127.0.0.1/i.img',
                           'capabilities': {'fa_scheme': 'big'}})
        self.assertIn('driver_info.fa_schemes', self.refused(node))

    def test_library_file_named_by_a_flavor_capability(self):
        self.write_library_scheme('big', padded(1024 * 1024 + 100))
        node = self.create_node(instance_info={
            'image_source': 'http://127.0.0.1/i.img',
            'capabilities': '{"fa_scheme": "big"}'})
        message = self.refused(node)
        self.assertIn(os.path.join(self.library, 'big.json'), message)

    def test_step_argument(self):
        node = self.create_node()
        self.refused(node, {'scheme': json.dumps(padded(1024 * 1024 + 100))})

    def test_deploy_template_argument_at_validate(self):
        node = self.create_node(driver_internal_info={'deploy_steps': [
            {'interface': 'deploy', 'step': 'write_image', 'priority': 80,
             'args': {'scheme': padded(1024 * 1024 + 100)}}]})
        with self.task(node, shared=True) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        self.assertIn('write_image step argument "scheme"', str(exc))
        self.assertIn(LIMIT, str(exc))

    def test_limit_is_configurable(self):
        self.config(max_scheme_bytes=4096, group='fuel_agent')
        node = self.create_node()
        self.refused(node, {'scheme': padded(5000)},
                     'more than [fuel_agent]max_scheme_bytes (4096)')

    def test_50_mb_is_refused_at_once_without_parsing(self):
        # Parsing this would take long or raise RecursionError.
        text = '[' * (50 * 1024 * 1024)
        node = self.create_node()
        started = time.process_time()
        self.refused(node, {'scheme': text})
        self.assertLess(time.process_time() - started, 1.0)

    def test_50_mb_library_file_is_not_read(self):
        with open(os.path.join(self.library, 'huge.json'), 'w') as f:
            f.truncate(50 * 1024 * 1024)
        node = self.create_node()
        started = time.process_time()
        message = self.refused(node, {'scheme_name': 'huge'})
        self.assertIn('is 52428800 bytes', message)
        self.assertLess(time.process_time() - started, 1.0)

    def test_deeply_nested_text(self):
        # Under the size limit, but deeper than Python's json can parse.
        text = '{"version": 1, "storage": %s%s}' % ('[' * 200000,
                                                   ']' * 200000)
        node = self.create_node(driver_info={'fa_partition_scheme': text})
        self.refused(node, None, 'driver_info.fa_partition_scheme is '
                     'nested too deeply to be a partitioning scheme')

    def test_deeply_nested_object(self):
        node = self.create_node()
        self.refused(node, {'scheme': nested(200000)},
                     'write_image step argument "scheme" is nested too '
                     'deeply')

    def test_deeply_nested_capabilities(self):
        node = self.create_node(instance_info={
            'image_source': 'http://127.0.0.1/i.img',
            'capabilities': '{"fa_scheme": %s%s}' % ('[' * 200000,
                                                     ']' * 200000)})
        self.refused(node, None, 'instance_info.capabilities is nested '
                     'too deeply')

    def test_nesting_the_parser_takes_is_a_validator_error(self):
        # Deep enough to be refused by the validator, shallow enough for
        # json: an error with a path, no RecursionError on the conductor.
        node = self.create_node()
        self.refused(node, {'scheme': nested(500)}, '$.storage[0]')

def test_check_size_names_the_field():
    try:
        scheme_source.check_size(2 ** 21, 'somewhere')
    except exception.InvalidParameterValue as exc:
        assert str(exc) == ('somewhere is 2097152 bytes of JSON, ' + LIMIT)
    else:
        raise AssertionError('not refused')
