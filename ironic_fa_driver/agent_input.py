"""The agent's input for one node: the scheme completed with the image
and configdrive from instance_info, wrapped by ``fa_agent.input_format``.

The image URL is the one Ironic's own helpers resolved in ``prepare()``
(``instance_info.image_url``: Glance/Swift temp URL, conductor-cached
``file://`` image, or the HTTP(S) URL after redirects), so every image
source Ironic accepts works here too.
"""

from fa_agent import contract
from ironic.common import exception
from ironic.common import images
from ironic.common.glance_service import service_utils
from ironic.drivers.modules import boot_mode_utils

from ironic_fa_driver import ironic_checks
from ironic_fa_driver import kexec
from ironic_fa_driver import scheme_source

# Stands in for a Glance image before prepare() resolved it, so that a
# scheme can be checked at validate time.
GLANCE_PLACEHOLDER = 'https://glance.invalid/v2/images/%s/file'
# Stands in for a missing image_source, so that validate() can report
# what else is wrong with the scheme in the same error.
MISSING_IMAGE_PLACEHOLDER = 'https://image-source.invalid/missing'


class NoPlace(exception.InvalidParameterValue):
    """The scheme has no place for the image or the configdrive."""


def is_whole_disk(task):
    """Whether instance_info describes a whole-disk image (the default
    when Ironic cannot tell, e.g. before an image is set)."""
    node = task.node
    known = node.driver_internal_info.get('is_whole_disk_image')
    if known is None:
        known = images.is_whole_disk_image(task.context, node.instance_info)
    return known is not False


def image_url(node):
    """The URL the agent downloads the image from."""
    info = node.instance_info
    url = info.get('image_url')
    if url:
        return url
    source = info.get('image_source')
    if not source:
        return None
    if service_utils.is_glance_image(source):
        return GLANCE_PLACEHOLDER % source.rsplit('/', 1)[-1]
    return source


def _image_format(node, whole_disk):
    if not whole_disk:
        return 'fs_image'
    disk_format = node.instance_info.get('image_disk_format')
    return 'qcow2' if disk_format == 'qcow2' else 'raw'


def complete(document, node, whole_disk, deploying=False,
             placeholder=False):
    """The scheme with the instance's image (and configdrive placement)
    added where the scheme leaves them out. ``deploying``: at deploy
    time, when a checksum URL is fetched (not at validate time).
    ``placeholder``: a stand-in URL when instance_info has no image.

    :raises: InvalidParameterValue when they cannot be placed.
    """
    document = dict(document)
    images = list(document.get('images') or ())
    if not images or not _root_is_covered(document, images, whole_disk):
        url = image_url(node) or (
            MISSING_IMAGE_PLACEHOLDER if placeholder else None)
        if not url:
            if images:
                # The scheme's own images are the whole deploy.
                return _with_configdrive(document, node)
            raise exception.MissingParameterValue(
                'instance_info.image_source is required: the partitioning '
                'scheme lists no images')
        # The instance's image goes to / (or the first disk); images the
        # scheme lists for other places (a data tarball, say) stay.
        target = _image_target(document, whole_disk)
        image = {'url': url, 'format': _image_format(node, whole_disk),
                 'target': target}
        checksum = ironic_checks.image_checksum(node, fetch=deploying)
        if checksum:
            image['checksum'] = checksum
        document['images'] = [image] + images
    return _with_configdrive(document, node)


def _root_is_covered(document, images, whole_disk):
    """Whether one of the scheme's own images already fills the place the
    instance's image would go."""
    if _whole_disk_target(document):
        return True
    try:
        target = _image_target(document, whole_disk)
    except NoPlace:
        return True
    return any(isinstance(i, dict) and i.get('target') == target
               for i in images)


def _with_configdrive(document, node):
    if node.instance_info.get('configdrive') and \
            not document.get('configdrive'):
        disk = _whole_disk_target(document)
        if disk is None:
            raise NoPlace(
                'instance_info.configdrive is set but the partitioning '
                'scheme has no "configdrive" section saying where it goes')
        document['configdrive'] = {'device': disk}
    return document


def _whole_disk_target(document):
    for image in document.get('images') or ():
        if image.get('format') in ('raw', 'qcow2'):
            return image.get('target')
    return None


def _has_root_filesystem(document):
    storage = document.get('storage') if isinstance(document, dict) else ()
    return any(isinstance(o, dict) and o.get('type') == 'filesystem' and
               o.get('mount_point') == '/'
               for o in storage if isinstance(storage, list))


def _image_target(document, whole_disk):
    storage = [o for o in document.get('storage') or ()
               if isinstance(o, dict)]
    if whole_disk:
        disks = [o['id'] for o in storage if o.get('type') == 'disk'
                 and 'id' in o]
        if not disks:
            raise NoPlace(
                'the partitioning scheme has no disk to write the '
                'whole-disk image to')
        return disks[0]
    for obj in storage:
        if obj.get('type') == 'filesystem' and obj.get('mount_point') == '/':
            return obj['id']
    raise NoPlace(
        'the partitioning scheme has no file system mounted at "/" for the '
        'partition image')


def scheme_for(task, step_args=None, devices=None, deploying=False,
               where=None, placeholder=False):
    """(where it came from, completed scheme document); file:// URLs in
    it checked against [conductor]file_url_allowed_paths. ``where``
    names the step ``step_args`` come from; ``placeholder`` see
    :func:`complete`."""
    node = task.node
    whole_disk = is_whole_disk(task)
    source = scheme_source.resolve(node, step_args, where)
    if source is None:
        document = scheme_source.default_scheme(
            node, whole_disk, boot_mode_utils.get_boot_mode(node),
            bool(ironic_checks.configdrive(node, build=False)), devices)
        source = scheme_source.Source(document, 'default layout',
                                      'default layout')
    if placeholder and not image_url(node):
        # The stand-in image is the kind the scheme has a place for.
        whole_disk = _whole_disk_target(source.document) is not None or \
            not _has_root_filesystem(source.document)
    try:
        document = complete(source.document, node, whole_disk, deploying,
                            placeholder)
        ironic_checks.check_scheme_file_urls(document)
        return source, document
    except NoPlace as exc:
        # A broken scheme is better explained by the validator's paths
        # than by the image or configdrive having no place in it.
        if contract.validate_scheme(source.document):
            check(source, source.document)
        raise exception.InvalidParameterValue(
            'partitioning scheme (%s): %s' % (source.origin, exc))


def check(source, document):
    """Run the shared validator; every problem with its path.

    :raises: InvalidParameterValue listing them all.
    """
    try:
        errors = contract.validate_scheme(document)
        if not errors:
            return contract.load_scheme(document)
    except RecursionError:
        # Defensive: the validator walks documents iteratively, but a
        # conductor thread must never die of a hostile document.
        raise exception.InvalidParameterValue(
            'partitioning scheme (%s) is nested too deeply' % source.origin)
    raise exception.InvalidParameterValue(
        'partitioning scheme (%s) is invalid: %s' % (
            source.origin, '; '.join(str(e) for e in errors)))


def build(task, scheme):
    """The provision.json document for ``scheme`` (a model.Scheme); a
    configdrive's JSON form is built into an ISO by Ironic here."""
    node = task.node
    return contract.provision_input(
        scheme, node_uuid=node.uuid, node_name=node.name,
        boot_mode=boot_mode_utils.get_boot_mode(node),
        configdrive=ironic_checks.configdrive(node),
        kexec=kexec.wanted(node))
