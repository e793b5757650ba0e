"""Glance's sha512 instead of its md5 (ironic_fa_driver/glance_checksum.py).

The image metadata here has the shape Ironic 39's Glance service returned
from a real Glance 33 in the lab (os_hash_algo/os_hash_value empty at the
top level, the SDK's hash_algo/hash_value among the properties); the lab's
nova-server-create scenario runs the same path against that Glance.
"""

from ironic.common import exception
from ironic.conductor import task_manager

from ironic_fa_driver import agent_input
from ironic_fa_driver import glance_checksum

import driver_base

IMAGE = '5b545fb0-04ee-41a9-b1cf-5cf12317c0f5'
MD5 = 'aa5ec2becb9bfae8044fe6da1a3b00f1'
SHA512 = '09c3' + 'a' * 124


def glance_meta(checksum=MD5, algorithm='sha512', value=SHA512):
    return {'id': IMAGE, 'checksum': checksum, 'os_hash_algo': None,
            'os_hash_value': None, 'disk_format': 'raw',
            'properties': {'img_type': 'partition', 'hash_algo': algorithm,
                           'hash_value': value}}


class GlanceChecksumTestCase(driver_base.DriverTestCase):

    def node(self, **info):
        values = {'image_source': IMAGE, 'image_checksum': MD5,
                  'image_os_hash_algo': None, 'image_os_hash_value': None}
        values.update(info)
        return self.create_node(instance_info=values)

    def add(self, node, meta):
        with task_manager.acquire(self.context, node.uuid) as task:
            added = glance_checksum.add_multihash(task, meta)
            return added, dict(task.node.instance_info)

    def test_glance_sha512_replaces_its_md5_for_the_agent(self):
        added, info = self.add(self.node(), glance_meta())
        self.assertTrue(added)
        self.assertEqual(('sha512', SHA512), (info['image_os_hash_algo'],
                                              info['image_os_hash_value']))
        node = self.node()
        node.instance_info = info
        self.assertEqual({'algorithm': 'sha512', 'value': SHA512},
                         agent_input.ironic_checks.image_checksum(node))

    def test_a_converted_image_keeps_ironics_checksum(self):
        # Ironic recomputed: image_checksum cleared, its own sha256 set.
        node = self.node(image_checksum=None, image_os_hash_algo='sha256',
                         image_os_hash_value='b' * 64)
        added, info = self.add(node, glance_meta())
        self.assertFalse(added)
        self.assertEqual('b' * 64, info['image_os_hash_value'])

    def test_other_bytes_than_glances_keep_the_md5(self):
        added, info = self.add(self.node(), glance_meta(checksum='c' * 32))
        self.assertFalse(added)
        self.assertIsNone(info['image_os_hash_value'])

    def test_weak_or_missing_multihash_is_not_taken(self):
        for algorithm, value in (('md5', MD5), ('sha512', None),
                                 (None, None)):
            added, _ = self.add(self.node(), glance_meta(
                algorithm=algorithm, value=value))
            self.assertFalse(added, algorithm)

    def test_only_glance_images(self):
        node = self.node(image_source='http://192.0.2.1/image.raw')
        self.assertFalse(self.add(node, glance_meta())[0])

    def test_glance_unreachable_leaves_the_md5(self):
        class Unreachable(glance_checksum.image_service.GlanceImageService):
            def show(self, image_href):
                raise exception.ImageNotFound(image_id=image_href)
        original = glance_checksum.image_service.GlanceImageService
        glance_checksum.image_service.GlanceImageService = Unreachable
        try:
            added, info = self.add(self.node(), None)
        finally:
            glance_checksum.image_service.GlanceImageService = original
        self.assertFalse(added)
        self.assertEqual(MD5, info['image_checksum'])
