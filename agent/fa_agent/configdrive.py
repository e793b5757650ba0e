"""The configdrive: an ISO 9660 image labelled ``config-2`` that
cloud-init reads at first boot, written onto its own partition.

It comes in one of three forms (``ProvisionRequest.configdrive``):

- ``{'data': ...}``: the ISO as Ironic hands it over, gzip-compressed and
  base64-encoded (a plain base64 ISO is accepted too);
- ``{'url': ...}``: the same, fetched (http, https, file); the reply may
  be the ISO itself, gzipped, or base64 text of either;
- ``{'meta_data': {...}, 'user_data': ..., 'network_data': {...},
  'vendor_data': {...}}``: built into an ISO here, in the OpenStack
  layout ``openstack/latest/meta_data.json``, ``user_data``,
  ``network_data.json``, ``vendor_data.json``.
"""

import base64
import binascii
import json
import logging
import os
import shutil
import tempfile
import zlib

from fa_agent import errors
from fa_agent import redact
from fa_agent.images import fetch
from fa_agent.images import writer

LOG = logging.getLogger(__name__)
LABEL = 'config-2'
BUILT_KEYS = ('meta_data', 'user_data', 'network_data', 'vendor_data')
ISO_TOOLS = ('genisoimage', 'mkisofs', 'xorrisofs')
# The first volume descriptor sits at sector 16 (2048-byte sectors).
_ISO_MAGIC_OFFSET = 16 * 2048 + 1
_ISO_MAGIC = b'CD001'
_GZIP_MAGIC = b'\x1f\x8b'


def write_configdrive(spec, device_path, runner, policy=None):
    """Write the configdrive described by ``spec`` onto ``device_path``.

    :raises errors.BadInput: a malformed spec or data that is no ISO,
        before the device is touched.
    :raises errors.DoesNotFit: the ISO is larger than the partition.
    :raises errors.ImageDownloadFailed: the URL cannot be fetched.
    :returns: dict with source ('data', 'url' or 'built'), bytes, device.
    """
    form = _form(spec)
    if runner.dry_run:
        LOG.info('dry run: would write the configdrive (%s) to %s', form,
                 device_path)
        return {'dry_run': True, 'source': form, 'device': device_path}
    capacity = writer.device_size(device_path)
    if form == 'data':
        iso = _unpack(spec['data'], capacity, 'configdrive.data')
    elif form == 'url':
        iso = _unpack(_download(spec['url'], capacity, policy), capacity,
                      'configdrive.url')
    else:
        iso = _build(spec, runner)
    if len(iso) > capacity:
        raise errors.DoesNotFit(
            'the configdrive ISO (%d bytes) is larger than its partition '
            '%s (%d bytes)' % (len(iso), device_path, capacity))
    # Old signatures past the end of the ISO would make blkid see two
    # file systems and report neither.
    runner.execute('wipefs', '--all', device_path)
    device = writer.DeviceWriter(device_path)
    try:
        device.write(iso)
    except BaseException:
        device.close()
        raise
    device.finish()
    LOG.info('configdrive (%s, %d bytes) written to %s', form, len(iso),
             device_path)
    return {'source': form, 'bytes': len(iso), 'device': device_path}


def _form(spec):
    """Which form ``spec`` is; every problem is named by its field."""
    if not isinstance(spec, dict) or not spec:
        raise errors.BadInput('configdrive must be an object with data, '
                              'url, or meta_data/user_data/network_data')
    unknown = sorted(set(spec) - {'data', 'url', *BUILT_KEYS})
    if unknown:
        raise errors.BadInput('configdrive.%s: unknown field (expected '
                              'data, url, or %s)' % (unknown[0],
                                                     ', '.join(BUILT_KEYS)))
    forms = [key for key in ('data', 'url') if key in spec]
    if any(key in spec for key in BUILT_KEYS):
        forms.append('built')
    if len(forms) > 1:
        raise errors.BadInput('configdrive: give only one of data, url, or '
                              'meta_data/user_data/network_data, not %s'
                              % ' and '.join(forms))
    form = forms[0]
    if form == 'data' and not (isinstance(spec['data'], str)
                               and spec['data']):
        raise errors.BadInput('configdrive.data must be a non-empty '
                              'base64 string')
    if form == 'url' and not (isinstance(spec['url'], str) and
                              spec['url'].startswith(('http://', 'https://',
                                                      'file://'))):
        raise errors.BadInput('configdrive.url must be an http, https or '
                              'file URL, not %r' % (spec['url'],))
    if form == 'built':
        for key in ('meta_data', 'network_data', 'vendor_data'):
            if spec.get(key) is not None and \
                    not isinstance(spec[key], dict):
                raise errors.BadInput('configdrive.%s must be an object'
                                      % key)
        if not isinstance(spec.get('user_data'),
                          (type(None), str, dict, list)):
            raise errors.BadInput('configdrive.user_data must be a string '
                                  'or JSON data')
    return form


def _download(url, capacity, policy):
    # base64 makes 4 bytes of 3; anything much bigger cannot fit anyway.
    limit = capacity * 4 // 3 + 4096
    parts, size = [], 0
    for data in fetch.open_source(url, policy).chunks():
        size += len(data)
        if size > limit:
            raise errors.DoesNotFit('the configdrive at %s is larger than '
                                    'its partition (%d bytes)'
                                    % (redact.url(url), capacity))
        parts.append(data)
    return b''.join(parts)


def _unpack(payload, capacity, field):
    """The ISO inside ``payload`` (bytes or text: ISO, gzip, base64)."""
    if isinstance(payload, str):
        payload = payload.encode('ascii', errors='replace')
    if not _is_iso(payload) and not payload.startswith(_GZIP_MAGIC):
        try:
            payload = base64.b64decode(payload)
        except (binascii.Error, ValueError) as exc:
            raise errors.BadInput('%s is neither an ISO nor base64: %s'
                                  % (field, exc)) from exc
    if payload.startswith(_GZIP_MAGIC):
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            # One byte more than fits is enough to refuse it.
            payload = inflate.decompress(payload, capacity + 1)
        except zlib.error as exc:
            raise errors.BadInput('%s: corrupt gzip data: %s'
                                  % (field, exc)) from exc
        if len(payload) > capacity:
            raise errors.DoesNotFit('%s: the ISO is larger than its '
                                    'partition (%d bytes)' % (field,
                                                              capacity))
    if not _is_iso(payload):
        raise errors.BadInput('%s does not hold an ISO 9660 image (no CD001 '
                              'volume descriptor)' % field)
    return payload


def _is_iso(data):
    return data[_ISO_MAGIC_OFFSET:_ISO_MAGIC_OFFSET + 5] == _ISO_MAGIC


def _build(spec, runner):
    tool = next((shutil.which(name) for name in ISO_TOOLS
                 if shutil.which(name)), None)
    if tool is None:
        raise errors.CommandFailed('building the configdrive needs one of '
                                   '%s' % ', '.join(ISO_TOOLS))
    with tempfile.TemporaryDirectory(prefix='fa-configdrive-') as work:
        tree = os.path.join(work, 'tree')
        latest = os.path.join(tree, 'openstack', 'latest')
        os.makedirs(latest)
        for key in ('meta_data', 'network_data', 'vendor_data'):
            if spec.get(key) is not None:
                with open(os.path.join(latest, key + '.json'), 'w') as out:
                    json.dump(spec[key], out)
        user_data = spec.get('user_data')
        if user_data is not None:
            if not isinstance(user_data, str):
                user_data = json.dumps(user_data)
            try:
                # JSON may carry lone surrogates, which no file can hold
                data = user_data.encode('utf-8')
            except UnicodeEncodeError as exc:
                raise errors.BadInput('configdrive.user_data is no valid '
                                      'UTF-8 text: %s' % exc) from None
            with open(os.path.join(latest, 'user_data'), 'wb') as out:
                out.write(data)
        iso = os.path.join(work, 'configdrive.iso')
        runner.execute(tool, '-o', iso, '-ldots', '-allow-lowercase',
                       '-allow-multidot', '-l', '-J', '-r', '-quiet',
                       '-publisher', 'ironic-fa-driver', '-V', LABEL, tree)
        with open(iso, 'rb') as built:
            return built.read()
