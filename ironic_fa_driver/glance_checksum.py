"""Glance's own strong checksum of the instance image, for the agent.

Ironic 39 copies a Glance image's ``os_hash_algo`` and ``os_hash_value``
into instance_info by attribute names that openstacksdk's ``Image`` does
not have (the SDK calls them ``hash_algo`` and ``hash_value``), so only
Glance's md5 ``checksum`` reaches a deploy, and none at all once
``[agent] allow_md5_checksum`` is off. When instance_info still carries
Glance's md5 (Ironic did not convert the image, which would have made it
compute a new checksum), the agent downloads Glance's bytes, so Glance's
sha256/sha512 applies to them and is what the agent verifies instead.
"""

from ironic.common import exception
from ironic.common import image_service
from ironic.common.glance_service import service_utils
from oslo_log import log

LOG = log.getLogger(__name__)

STRONG_ALGORITHMS = ('sha256', 'sha512')


def _multihash(meta):
    """(algorithm, value) of Glance image metadata, whichever names the
    client used for them."""
    properties = meta.get('properties') or {}
    algorithm = (meta.get('os_hash_algo') or properties.get('os_hash_algo')
                 or properties.get('hash_algo'))
    value = (meta.get('os_hash_value') or properties.get('os_hash_value')
             or properties.get('hash_value'))
    return algorithm, value


def add_multihash(task, meta=None):
    """Put Glance's strong checksum into instance_info when Ironic left
    only the md5 of the same bytes there. ``meta``: the image's metadata
    (default: asked from Glance). Returns whether it did; the caller
    saves the node.
    """
    node = task.node
    info = dict(node.instance_info)
    source = info.get('image_source')
    checksum = info.get('image_checksum')
    if info.get('image_os_hash_value') or not checksum or not source or \
            not service_utils.is_glance_image(source):
        return False
    if meta is None:
        try:
            meta = image_service.GlanceImageService(
                context=task.context).show(source)
        except exception.IronicException as exc:
            LOG.warning('Node %(node)s: could not read Glance\'s checksum of '
                        'image %(image)s, the agent verifies its md5: '
                        '%(error)s', {'node': node.uuid, 'image': source,
                                      'error': exc})
            return False
    algorithm, value = _multihash(meta)
    if meta.get('checksum') != checksum or \
            algorithm not in STRONG_ALGORITHMS or not value:
        return False
    info['image_os_hash_algo'] = algorithm
    info['image_os_hash_value'] = value
    node.instance_info = info
    LOG.info('Node %(node)s: the agent verifies image %(image)s by Glance\'s '
             '%(algorithm)s, not only its md5',
             {'node': node.uuid, 'image': source, 'algorithm': algorithm})
    return True
