"""The agent's input (``provision.json``): a versioned envelope around the
scheme with node identity, boot mode, kernel parameters and configdrive.

The conductor builds it with :func:`build`; the agent reads it through a
data driver (see :mod:`fa_agent.data_drivers`), which yields a
:class:`ProvisionRequest` whatever the input format was.
"""

import dataclasses
from typing import Optional

from fa_agent import safe_json
from fa_agent.scheme import model
from fa_agent.scheme import validator

FORMAT_NAME = 'ironic-fa-provision'
FORMAT_VERSION = '1.0'
BOOT_MODES = ('bios', 'uefi')
# "erase" wipes the disks its scheme names (Ironic's cleaning) and builds
# nothing, so its scheme holds disks only.
ACTIONS = ('provision', 'erase')
# How an erase request erases (Ironic's clean steps of the same names):
# "metadata" wipes signatures and tables, "full" erases every byte
# (secure erase where the device can, else overwrite), "express" uses the
# device's own secure erase where it can and wipes metadata elsewhere.
ERASE_MODES = ('metadata', 'full', 'express')


@dataclasses.dataclass(frozen=True)
class EraseOptions:
    """What an erase request asks for; the defaults are Ironic's [deploy]
    defaults, which the conductor passes on."""

    mode: str = 'metadata'
    random_iterations: int = 1
    zeroize: bool = True
    ata_secure_erase: bool = True
    nvme_secure_erase: bool = True
    continue_if_secure_erase_fails: bool = False
    skip_read_only: bool = False
    concurrency: int = 4

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value, path='$.erase'):
        """Options from the envelope's ``erase`` object; every wrong field
        named by its JSON path.

        :raises InputError:
        """
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise InputError('%s must be an object' % path)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise InputError('%s.%s is not an erase option (they are: %s)'
                             % (path, unknown[0], ', '.join(fields)))
        for name, item in value.items():
            kind = fields[name].type
            where = '%s.%s' % (path, name)
            if kind in (bool, 'bool') and not isinstance(item, bool):
                raise InputError('%s must be true or false, not %s'
                                 % (where, safe_json.short_repr(item)))
            if kind in (int, 'int') and (not isinstance(item, int)
                                  or isinstance(item, bool) or item < 0):
                raise InputError('%s must be a whole number >= 0, not %s'
                                 % (where, safe_json.short_repr(item)))
        if value.get('mode', 'metadata') not in ERASE_MODES:
            raise InputError('%s.mode must be one of %s, not %s' % (
                path, ', '.join(ERASE_MODES),
                safe_json.short_repr(value.get('mode'))))
        if value.get('concurrency', 1) < 1:
            raise InputError('%s.concurrency must be at least 1' % path)
        return cls(**value)


class InputError(ValueError):
    """The input document cannot be used; the message says which field."""


@dataclasses.dataclass(frozen=True)
class ProvisionRequest:
    """Everything the agent needs for one provisioning run."""

    scheme: model.Scheme
    node_uuid: Optional[str] = None
    node_name: Optional[str] = None
    boot_mode: str = 'bios'
    kernel_params: str = ''
    # One of {'data': gzip+base64 ISO}, {'url': ...}, or
    # {'meta_data': {...}, 'user_data': str, 'network_data': {...}}.
    configdrive: Optional[dict] = None
    action: str = 'provision'
    # Load the installed kernel at the end (the kexec step) so the
    # conductor can start it without a firmware reboot.
    kexec: bool = False
    erase: EraseOptions = EraseOptions()

    @property
    def effective_boot_mode(self):
        """The scheme's bootloader mode, else the node's boot mode."""
        boot = self.scheme.bootloader
        return boot.mode if boot is not None and boot.mode else self.boot_mode


def build(scheme, node_uuid=None, node_name=None, boot_mode='bios',
          kernel_params='', configdrive=None, kexec=False):
    """The JSON-ready ``provision.json`` document for a scheme.

    :param scheme: a :class:`model.Scheme` or a scheme document; it is
        validated here so that a bad one never reaches a node.
    :raises validator.InvalidScheme: when the scheme has problems.
    """
    if not isinstance(scheme, model.Scheme):
        scheme = validator.load(scheme)
    if boot_mode not in BOOT_MODES:
        raise InputError('boot_mode must be one of %s, not %r'
                         % (', '.join(BOOT_MODES), boot_mode))
    document = {
        'format': FORMAT_NAME,
        'version': FORMAT_VERSION,
        'node': {'uuid': node_uuid, 'name': node_name},
        'boot_mode': boot_mode,
        'kernel_params': kernel_params or '',
        'scheme': scheme.to_dict(),
    }
    if configdrive:
        document['configdrive'] = configdrive
    if kexec:
        document['kexec'] = True
    return document


def build_erase(disks, node_uuid=None, node_name=None, options=None):
    """The ``provision.json`` document of an erase request.

    :param disks: disk objects of the scheme format (type, id, match).
    :param options: an :class:`EraseOptions` (default: metadata only).
    :raises validator.InvalidScheme: when a disk object is malformed.
    """
    scheme = {'version': 1, 'storage': list(disks)}
    errors = validator.validate_erase(scheme)
    if errors:
        raise validator.InvalidScheme(errors)
    return {
        'format': FORMAT_NAME,
        'version': FORMAT_VERSION,
        'action': 'erase',
        'node': {'uuid': node_uuid, 'name': node_name},
        'scheme': scheme,
        'erase': (options or EraseOptions()).to_dict(),
    }


def _load_scheme(document, action):
    """The request's Scheme, with error paths relative to $.scheme."""
    if action == 'erase':
        errors = validator.validate_erase(document)
        if not errors:
            return model.Scheme.from_dict(document)
    else:
        try:
            return validator.load(document)
        except validator.InvalidScheme as exc:
            errors = exc.errors
    raise validator.InvalidScheme(
        validator.SchemeError(e.path.replace('$', '$.scheme', 1), e.message)
        for e in errors)


def _check_type(value, path, kinds, what):
    if value is not None and (not isinstance(value, kinds) or
                              isinstance(value, bool)):
        raise InputError('%s must be %s, not %s'
                         % (path, what, safe_json.short_repr(value)))


def parse(document):
    """A :class:`ProvisionRequest` from a ``provision.json`` document.

    Any document gives a request or one of the errors below, each naming
    the JSON path; none raises anything else.

    :raises InputError: for a wrong envelope.
    :raises validator.InvalidScheme: for a bad scheme inside it.
    """
    if not isinstance(document, dict):
        raise InputError('$: provision data must be a JSON object')
    try:
        safe_json.check(document, max_bytes=safe_json.MAX_INPUT_BYTES)
    except safe_json.DocumentError as exc:
        raise InputError(str(exc)) from None
    if document.get('format') != FORMAT_NAME:
        raise InputError('$.format must be %r, got %s'
                         % (FORMAT_NAME,
                            safe_json.short_repr(document.get('format'))))
    version = document.get('version', '')
    _check_type(version, '$.version', (str, int, float),
                'a version string such as %r' % FORMAT_VERSION)
    version = str(version)
    if version.split('.')[0] != FORMAT_VERSION.split('.')[0]:
        raise InputError('$.version %s is not supported: this agent reads '
                         'version %s.x' % (safe_json.short_repr(version),
                                           FORMAT_VERSION[0]))
    boot_mode = document.get('boot_mode', 'bios')
    if boot_mode not in BOOT_MODES:
        raise InputError('$.boot_mode must be one of %s, not %s'
                         % (', '.join(BOOT_MODES),
                            safe_json.short_repr(boot_mode)))
    if 'scheme' not in document:
        raise InputError('$.scheme is missing')
    configdrive = document.get('configdrive')
    if configdrive is not None and not isinstance(configdrive, dict):
        raise InputError('$.configdrive must be an object')
    node = document.get('node') or {}
    if not isinstance(node, dict):
        raise InputError('$.node must be an object with uuid and name')
    for key in ('uuid', 'name'):
        _check_type(node.get(key), '$.node.' + key, str, 'a string')
    kernel_params = document.get('kernel_params') or ''
    if not isinstance(kernel_params, str):
        raise InputError('$.kernel_params must be a string')
    kexec = document.get('kexec', False)
    if not isinstance(kexec, bool):
        raise InputError('$.kexec must be true or false, not %s'
                         % safe_json.short_repr(kexec))
    action = document.get('action', 'provision')
    if action not in ACTIONS:
        raise InputError('$.action must be one of %s, not %s'
                         % (', '.join(ACTIONS), safe_json.short_repr(action)))
    if 'erase' in document and action != 'erase':
        raise InputError('$.erase is only taken by an erase request '
                         '($.action "erase")')
    erase = EraseOptions.from_dict(document.get('erase'))
    return ProvisionRequest(
        scheme=_load_scheme(document['scheme'], action),
        node_uuid=node.get('uuid'), node_name=node.get('name'),
        boot_mode=boot_mode, kernel_params=kernel_params,
        configdrive=configdrive, action=action, kexec=kexec,
        erase=erase)
