"""What Ironic hands over, checked by Ironic's own rules: the image
checksum (``ironic.common.checksum_utils``: checksum URLs, ``[agent]
allow_md5_checksum``), the configdrive (``ironic.conductor.
configdrive_utils`` builds the ISO from its JSON form, as for IPA) and
``file://`` URLs (``[conductor]file_url_allowed_paths`` and Ironic's
blocked system trees).

``file://`` URLs in schemes and configdrives name files in the ramdisk,
not on the conductor, so Ironic's ``FileImageService.validate_href``
(which also wants the file on the conductor) cannot be called; the
same allow-list and blocked trees are applied to the path as written,
and the agent gets the allow-list on its command line to apply it
again with symlinks resolved.
"""

import copy
import posixpath
import re
import urllib.parse

from ironic.common import checksum_utils
from ironic.common import exception
from ironic.common import image_service
from ironic.conductor import configdrive_utils

from ironic_fa_driver import conf

CONF = conf.CONF
_HEX = re.compile(r'^[0-9a-fA-F]+$')
_ALGORITHM_BY_LENGTH = {32: 'md5', 64: 'sha256', 128: 'sha512'}


def _invalid(message):
    return exception.InvalidParameterValue(message)


def _under(path, directory):
    return path == directory or path.startswith(directory.rstrip('/') + '/')


def check_file_url(url, field):
    """Refuse a ``file://`` URL outside ``[conductor]
    file_url_allowed_paths`` or inside a system tree Ironic never serves
    files from (/dev, /proc, /sys, /etc, /boot, /run).

    :raises: InvalidParameterValue naming ``field``.
    """
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    if parts.netloc not in ('', 'localhost') or not path.startswith('/') \
            or '\0' in path:
        raise _invalid('%s: %s is not a local absolute file:///path URL'
                       % (field, url))
    normal = posixpath.normpath(path)
    for blocked in sorted(image_service.BLOCKED_FILE_URL_PATHS):
        if _under(normal, blocked):
            raise _invalid('%s: %s is never allowed in file:// URLs'
                           % (field, blocked))
    allowed = [p for p in CONF.conductor.file_url_allowed_paths if p]
    if not any(_under(normal, p) for p in allowed):
        raise _invalid(
            '%s: %s is not below [conductor]file_url_allowed_paths (%s)'
            % (field, normal, ', '.join(allowed) or 'empty: file:// URLs '
               'are disabled'))


def check_scheme_file_urls(document):
    """:func:`check_file_url` for every image URL of a scheme document."""
    images = document.get('images') if isinstance(document, dict) else None
    for index, image in enumerate(images if isinstance(images, list)
                                  else ()):
        url = image.get('url') if isinstance(image, dict) else None
        if isinstance(url, str) and url[:7].lower() == 'file://':
            check_file_url(url, '$.images[%d].url' % index)


def _hash_fields(info):
    """instance_info's checksum fields as Ironic reads them; a half-set
    image_os_hash pair is left out so image_checksum still counts."""
    fields = {k: info[k] for k in ('image_checksum', 'image_source')
              if info.get(k)}
    if info.get('image_os_hash_algo') and info.get('image_os_hash_value'):
        fields['image_os_hash_algo'] = info['image_os_hash_algo']
        fields['image_os_hash_value'] = info['image_os_hash_value']
    return fields


def image_checksum(node, fetch=True):
    """{'algorithm', 'value'} for the instance image, or None.

    Ironic's ``checksum_utils.get_checksum_and_algo`` reads it: a
    checksum URL is fetched there (only with ``fetch``; at validate time
    it is only checked to be allowed, ``[conductor]
    disable_support_for_checksum_files``), and md5 needs ``[agent]
    allow_md5_checksum``.

    :raises: InvalidParameterValue naming the field.
    """
    fields = _hash_fields(node.instance_info)
    if 'image_os_hash_value' in fields:
        field = 'instance_info.image_os_hash_value'
    elif 'image_checksum' in fields:
        field = 'instance_info.image_checksum'
    else:
        return None
    value = str(fields.get('image_os_hash_value')
                or fields['image_checksum'])
    try:
        if field.endswith('image_checksum') and \
                checksum_utils.is_checksum_url(value) and not fetch:
            return None
        if field.endswith('image_checksum') and len(value) == 32 and \
                not CONF.agent.allow_md5_checksum:
            raise _md5_refused(field)
        value, algorithm = checksum_utils.get_checksum_and_algo(fields)
    except exception.InvalidParameterValue:
        raise
    except exception.IronicException as exc:
        raise _invalid('%s: %s' % (field, exc))
    value = str(value or '')
    algorithm = (algorithm or _ALGORITHM_BY_LENGTH.get(len(value))
                 or '').lower()
    if algorithm not in ('md5', 'sha256', 'sha512') or \
            not _HEX.match(value) or \
            len(value) != {'md5': 32, 'sha256': 64, 'sha512': 128}[algorithm]:
        raise _invalid('%s: %r is not an md5, sha256 or sha512 hex digest'
                       % (field, value))
    if algorithm == 'md5' and not CONF.agent.allow_md5_checksum:
        raise _md5_refused(field)
    return {'algorithm': algorithm, 'value': value.lower()}


def _md5_refused(field):
    return _invalid('%s: md5 checksums are not allowed ([agent]'
                    'allow_md5_checksum is false); give a sha256 or sha512 '
                    'checksum' % field)


def configdrive(node, build=True):
    """The configdrive in the agent's terms ({'data': ...} or
    {'url': ...}), or None.

    Its JSON form is built into an ISO by Ironic's own
    ``configdrive_utils.build_configdrive`` (only with ``build``, at
    deploy time; at validate time the form is returned as it is).

    :raises: InvalidParameterValue naming instance_info.configdrive.
    """
    value = node.instance_info.get('configdrive')
    if not value:
        return None
    field = 'instance_info.configdrive'
    if isinstance(value, dict):
        if not build:
            return dict(value)
        try:
            return {'data': configdrive_utils.build_configdrive(
                node, copy.deepcopy(value))}
        except Exception as exc:
            raise _invalid('%s: Ironic could not build the configdrive from '
                           'its meta_data/user_data/network_data: %s'
                           % (field, exc))
    if not isinstance(value, str):
        raise _invalid('%s must be a string or an object, not %s'
                       % (field, type(value).__name__))
    scheme = value.split('://', 1)[0].lower() if '://' in value else ''
    if scheme in ('http', 'https'):
        return {'url': value}
    if scheme == 'file':
        check_file_url(value, field)
        return {'url': value}
    if scheme:
        raise _invalid('%s: %s:// URLs are not supported (http, https or '
                       'file)' % (field, scheme))
    return {'data': value}


def agent_options():
    """Command line options that hand the same choices to the agent."""
    options = ['--file-url-allowed-paths',
               ','.join(p for p in CONF.conductor.file_url_allowed_paths
                        if p)]
    if CONF.agent.allow_md5_checksum:
        options.append('--allow-md5-checksum')
    return options
