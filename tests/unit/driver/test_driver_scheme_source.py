"""Where the scheme comes from, the default layouts, and the agent input."""

import base64
import copy
import gzip
import io
import json

from fa_agent import input_format
from fa_agent.scheme import inventory
from ironic.common import exception
import pycdlib

from ironic_fa_driver import agent_input
from ironic_fa_driver import scheme_source
from ironic_fa_driver import validation

import driver_base

WHOLE = driver_base.WHOLE_DISK_SCHEME


def read_iso_file(data, path):
    """A file of a gzip+base64 ISO (Ironic's configdrive form)."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(gzip.decompress(base64.b64decode(data))))
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path=path)
    iso.close()
    return out.getvalue()


def scheme_with_disk(name):
    scheme = copy.deepcopy(WHOLE)
    scheme['storage'][0]['match'] = {'name': name}
    return scheme


class SchemeSourceTestCase(driver_base.DriverTestCase):

    def resolve(self, node, step_args=None):
        with self.task(node, shared=True) as task:
            return agent_input.scheme_for(task, step_args)

    def disk_of(self, document):
        return document['storage'][0]['match']['name']

    def all_sources_node(self):
        self.write_library_scheme('lib-only', scheme_with_disk('/dev/lib'))
        return self.create_node(
            driver_info={
                'fa_partition_scheme': json.dumps(scheme_with_disk('/dev/di')),
                'fa_schemes': {'named': scheme_with_disk('/dev/named')}},
            instance_info={'image_source': 'http://127.0.0.1/i.img',
                           'capabilities': {'fa_scheme': 'named'}})

    def test_step_argument_wins(self):
        node = self.all_sources_node()
        source, document = self.resolve(
            node, {'scheme': scheme_with_disk('/dev/step')})
        self.assertEqual('/dev/step', self.disk_of(document))
        self.assertIn('write_image step argument', source.origin)

    def test_step_argument_scheme_name(self):
        node = self.all_sources_node()
        source, document = self.resolve(node, {'scheme_name': 'lib-only'})
        self.assertEqual('/dev/lib', self.disk_of(document))
        self.assertIn(self.library, source.origin)

    def test_step_argument_both_is_an_error(self):
        node = self.all_sources_node()
        exc = self.assertRaises(exception.InvalidParameterValue, self.resolve,
                                node, {'scheme': WHOLE, 'scheme_name': 'x'})
        self.assertIn('not both', str(exc))

    def test_capability_before_driver_info(self):
        node = self.all_sources_node()
        source, document = self.resolve(node)
        self.assertEqual('/dev/named', self.disk_of(document))
        self.assertIn('driver_info.fa_schemes', source.origin)

    def test_capability_as_nova_string(self):
        node = self.all_sources_node()
        node.instance_info = dict(node.instance_info,
                                  capabilities='{"fa_scheme": "lib-only"}')
        node.save()
        _source, document = self.resolve(node)
        self.assertEqual('/dev/lib', self.disk_of(document))

    def test_node_schemes_before_library(self):
        self.write_library_scheme('named', scheme_with_disk('/dev/lib'))
        node = self.all_sources_node()
        _source, document = self.resolve(node)
        self.assertEqual('/dev/named', self.disk_of(document))

    def test_unknown_name(self):
        node = self.all_sources_node()
        node.instance_info = dict(node.instance_info,
                                  capabilities={'fa_scheme': 'nope'})
        node.save()
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.resolve, node)
        self.assertIn('instance_info.capabilities.fa_scheme', str(exc))
        self.assertIn("no scheme named 'nope'", str(exc))

    def test_names_cannot_escape_the_library(self):
        node = self.create_node()
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.resolve, node,
                                {'scheme_name': '../etc/passwd'})
        self.assertIn('is not a scheme name', str(exc))

    def test_driver_info_before_default(self):
        node = self.create_node(driver_info={
            'fa_partition_scheme': scheme_with_disk('/dev/di')})
        source, document = self.resolve(node)
        self.assertEqual('/dev/di', self.disk_of(document))
        self.assertEqual('driver_info.fa_partition_scheme', source.origin)

    def test_driver_info_bad_json(self):
        node = self.create_node(driver_info={'fa_partition_scheme': '{oops'})
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.resolve, node)
        self.assertIn('driver_info.fa_partition_scheme is not valid JSON',
                      str(exc))

    def test_default_whole_disk_with_root_device_hints(self):
        node = self.create_node(
            properties={'root_device': {'serial': 'ABC123'}},
            instance_info={'image_source': 'http://127.0.0.1/i.qcow2',
                           'image_disk_format': 'qcow2',
                           'image_checksum': 'a' * 32,
                           'configdrive': 'H4sIAAAA'})
        source, document = self.resolve(node)
        self.assertEqual('default layout', source.origin)
        # The hints as written: the agent's matcher reads them as Ironic
        # does (Ironic's parsed form would be normalised twice).
        self.assertEqual({'serial': 'ABC123'},
                         document['storage'][0]['match'])
        self.assertEqual([{'url': 'http://127.0.0.1/i.qcow2',
                           'format': 'qcow2', 'target': 'root_disk',
                           'checksum': {'algorithm': 'md5',
                                        'value': 'a' * 32}}],
                         document['images'])
        self.assertEqual({'device': 'root_disk'}, document['configdrive'])
        agent_input.check(source, document)

    def test_default_picks_smallest_big_enough_inventory_disk(self):
        node = self.create_node()
        gib = driver_base.GiB
        devices = [inventory.BlockDevice('/dev/sda', 500 * gib),
                   inventory.BlockDevice('/dev/sdb', 2 * gib),
                   inventory.BlockDevice('/dev/sdc', 100 * gib)]
        with self.task(node, shared=True) as task:
            _source, document = agent_input.scheme_for(task, None, devices)
        self.assertEqual({'name': '/dev/sdc'},
                         document['storage'][0]['match'])

    def test_default_partition_layout_bios(self):
        node = self.create_node(
            driver_internal_info={'is_whole_disk_image': False},
            properties={'capabilities': 'boot_mode:bios'},
            instance_info={'image_source': 'http://127.0.0.1/root.img',
                           'root_gb': 10, 'swap_mb': 512, 'ephemeral_gb': 2,
                           'configdrive': 'http://127.0.0.1/cd.iso'})
        source, document = self.resolve(node)
        by_id = {o['id']: o for o in document['storage']}
        self.assertEqual('1 MiB', by_id['bios_grub']['size'])
        self.assertEqual('10 GiB', by_id['root']['size'])
        self.assertEqual('512 MiB', by_id['swap']['size'])
        self.assertEqual('2 GiB', by_id['ephemeral']['size'])
        self.assertEqual('/', by_id['root_fs']['mount_point'])
        self.assertEqual({'size': '>= 14'}, by_id['root_disk']['match'])
        self.assertEqual('fs_image', document['images'][0]['format'])
        self.assertEqual('root_fs', document['images'][0]['target'])
        self.assertEqual({'device': 'configdrive'}, document['configdrive'])
        agent_input.check(source, document)

    def test_default_partition_layout_uefi(self):
        node = self.create_node(
            driver_internal_info={'is_whole_disk_image': False},
            properties={'capabilities': 'boot_mode:uefi'},
            instance_info={'image_source': 'http://127.0.0.1/root.img',
                           'root_gb': 10})
        source, document = self.resolve(node)
        by_id = {o['id']: o for o in document['storage']}
        self.assertEqual(['esp'], by_id['esp']['flags'])
        self.assertEqual('/boot/efi', by_id['esp_fs']['mount_point'])
        self.assertNotIn('bios_grub', by_id)
        self.assertEqual({'mode': 'uefi'}, document['bootloader'])
        agent_input.check(source, document)

    def test_partition_image_needs_root_gb(self):
        node = self.create_node(
            driver_internal_info={'is_whole_disk_image': False})
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.resolve, node)
        self.assertIn('instance_info.root_gb', str(exc))

    def test_bad_swap_mb(self):
        node = self.create_node(
            driver_internal_info={'is_whole_disk_image': False},
            instance_info={'image_source': 'http://127.0.0.1/r.img',
                           'root_gb': 10, 'swap_mb': 'lots'})
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.resolve, node)
        self.assertIn('instance_info.swap_mb', str(exc))

    def test_scheme_images_are_kept(self):
        scheme = scheme_with_disk('/dev/sda')
        scheme['images'] = [{'url': 'https://example.invalid/x.raw',
                             'format': 'raw', 'target': 'sda'}]
        node = self.create_node(driver_info={'fa_partition_scheme': scheme},
                                instance_info={})
        _source, document = self.resolve(node)
        self.assertEqual(scheme['images'], document['images'])

    def data_image_scheme(self):
        scheme = copy.deepcopy(driver_base.PARTITIONED_SCHEME)
        scheme['storage'] += [
            {'type': 'partition', 'id': 'data', 'device': 'sda',
             'size': '1 GiB'},
            {'type': 'filesystem', 'id': 'datafs', 'device': 'data',
             'fstype': 'ext4', 'mount_point': '/srv'}]
        scheme['images'] = [{'url': 'http://127.0.0.1/data.tar',
                             'format': 'tar', 'target': 'datafs'}]
        return scheme

    def test_instance_image_joins_scheme_images_elsewhere(self):
        node = self.create_node(
            driver_info={'fa_partition_scheme': self.data_image_scheme()},
            driver_internal_info={'is_whole_disk_image': False},
            instance_info={'image_source': 'http://127.0.0.1/root.img'})
        _source, document = self.resolve(node)
        self.assertEqual([('http://127.0.0.1/root.img', 'rootfs'),
                          ('http://127.0.0.1/data.tar', 'datafs')],
                         [(i['url'], i['target'])
                          for i in document['images']])

    def test_scheme_image_for_root_wins_over_instance_image(self):
        scheme = self.data_image_scheme()
        scheme['images'].append({'url': 'http://127.0.0.1/own-root.img',
                                 'format': 'fs_image', 'target': 'rootfs'})
        node = self.create_node(
            driver_info={'fa_partition_scheme': scheme},
            driver_internal_info={'is_whole_disk_image': False},
            instance_info={'image_source': 'http://127.0.0.1/root.img'})
        _source, document = self.resolve(node)
        self.assertEqual(scheme['images'], document['images'])

    def test_scheme_images_alone_need_no_image_source(self):
        scheme = self.data_image_scheme()
        node = self.create_node(
            driver_info={'fa_partition_scheme': scheme},
            driver_internal_info={'is_whole_disk_image': False},
            instance_info={})
        _source, document = self.resolve(node)
        self.assertEqual(scheme['images'], document['images'])

    def test_image_source_required_without_scheme_images(self):
        node = self.create_node(instance_info={})
        exc = self.assertRaises(exception.MissingParameterValue,
                                self.resolve, node)
        self.assertIn('instance_info.image_source', str(exc))

    def test_resolved_image_url_wins(self):
        node = self.create_node(instance_info={
            'image_source': 'http://127.0.0.1/a',
            'image_url': 'http://127.0.0.1/a-after-redirect'})
        _source, document = self.resolve(node)
        self.assertEqual('http://127.0.0.1/a-after-redirect',
                         document['images'][0]['url'])

    def test_bad_checksum(self):
        node = self.create_node(instance_info={
            'image_source': 'http://127.0.0.1/a', 'image_checksum': 'xyz'})
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.resolve, node)
        self.assertIn('instance_info.image_checksum', str(exc))

    def test_configdrive_without_a_place(self):
        scheme = copy.deepcopy(driver_base.PARTITIONED_SCHEME)
        node = self.create_node(
            driver_internal_info={'is_whole_disk_image': False},
            driver_info={'fa_partition_scheme': scheme},
            instance_info={'image_source': 'http://127.0.0.1/r.img',
                           'configdrive': 'H4sI'})
        exc = self.assertRaises(exception.InvalidParameterValue,
                                self.resolve, node)
        self.assertIn('instance_info.configdrive', str(exc))

    def test_write_image_args_known_before_deploy(self):
        node = self.create_node(driver_internal_info={'user_deploy_steps': [
            {'interface': 'deploy', 'step': 'write_image',
             'args': {'scheme_name': 'x'}, 'priority': 80}]})
        with self.task(node, shared=True) as task:
            self.assertEqual(
                ({'scheme_name': 'x'}, 'deploy steps argument '
                 '(--deploy-steps) step write_image'),
                validation.write_image_step(task))


class SerializationTestCase(driver_base.DriverTestCase):

    def test_provision_json_round_trip(self):
        node = self.create_node(
            name='node-7',
            instance_info={'image_source': 'http://127.0.0.1/i.img',
                           'image_os_hash_algo': 'sha512',
                           'image_os_hash_value': 'C' * 128,
                           'configdrive': {'meta_data': {'uuid': 'x'},
                                           'user_data': '#cloud-config'}},
            driver_info={'fa_partition_scheme': WHOLE})
        with self.task(node, shared=True) as task:
            source, document = agent_input.scheme_for(task)
            document = agent_input.build(task,
                                         agent_input.check(source, document))
        # What goes over SFTP is JSON; the agent parses it back.
        request = input_format.parse(json.loads(json.dumps(document)))
        # Ironic 39 defaults to UEFI ([deploy]default_boot_mode).
        self.assertEqual((node.uuid, 'node-7', 'uefi'),
                         (request.node_uuid, request.node_name,
                          request.boot_mode))
        image = request.scheme.images[0]
        self.assertEqual(('http://127.0.0.1/i.img', 'raw', 'sda', 'sha512',
                          'c' * 128),
                         (image.url, image.format, image.target,
                          image.checksum.algorithm, image.checksum.value))
        # Ironic built the ISO from the JSON form, as it does for IPA.
        self.assertEqual(['data'], list(request.configdrive))
        self.assertEqual(b'#cloud-config', read_iso_file(
            request.configdrive['data'], '/openstack/latest/user_data'))
        self.assertEqual('sda', request.scheme.configdrive.device)

    def test_scheme_errors_carry_their_paths(self):
        scheme = copy.deepcopy(WHOLE)
        scheme['storage'][0]['match'] = {}
        scheme['storage'].append({'type': 'partition', 'id': 'p1',
                                  'device': 'nowhere', 'size': '1 GiB'})
        source = scheme_source.Source(scheme, 'driver_info.x', 'x')
        exc = self.assertRaises(exception.InvalidParameterValue,
                                agent_input.check, source, scheme)
        self.assertIn('$.storage[0].match', str(exc))
        self.assertIn('$.storage[1].device', str(exc))
