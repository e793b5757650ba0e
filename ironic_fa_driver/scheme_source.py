"""Where a node's partitioning scheme comes from. First match wins:

a. the ``write_image`` deploy step's argument ``scheme`` (a scheme) or
   ``scheme_name`` (a name), so a deploy template chosen by a trait can
   carry the layout;
b. ``instance_info.capabilities.fa_scheme`` naming a scheme (what a Nova
   flavor's ``capabilities:fa_scheme=<name>`` extra spec becomes);
c. ``driver_info.fa_partition_scheme``;
d. a single-disk layout built from ``root_gb`` / ``swap_mb`` /
   ``ephemeral_gb`` and the node's root device hints.

A name is looked up in the node's ``driver_info.fa_schemes`` first, then
in ``[fuel_agent]scheme_library_dir/<name>.json`` on the conductor.

Every source is bounded by ``[fuel_agent]max_scheme_bytes`` before it is
parsed: whoever can set a deploy step argument or a node field must not
be able to make the conductor parse and validate megabytes.
"""

import dataclasses
import json
import os
import re

from ironic.common import exception
from ironic.common import utils as ironic_utils
from ironic.drivers.modules import deploy_utils

from fa_agent import contract

from ironic_fa_driver import conf

CONF = conf.CONF
STEP = 'write_image'
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$')
ROOT_DISK_ID = 'root_disk'
ESP_MIB = 512
CONFIGDRIVE_MIB = 64
# Below this IPA does not consider a disk for the root either.
MIN_ROOT_DISK_GIB = 4


@dataclasses.dataclass(frozen=True)
class Source:
    """A scheme document and where it came from, in operator's words."""

    document: dict
    origin: str
    # The field an error in the document is reported on.
    field: str


def _invalid(message):
    return exception.InvalidParameterValue(message)


def _too_deep(field):
    return _invalid('%s is nested too deeply to be a partitioning scheme'
                    % field)


def _json_size(value, field):
    """Bytes of ``value`` as JSON text (it may be text already, or what
    Ironic's API parsed)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        # At most 4 bytes a character: the exact count only when needed.
        if len(value) * 4 <= CONF.fuel_agent.max_scheme_bytes:
            return len(value)
        return len(value.encode('utf-8', errors='surrogatepass'))
    try:
        return len(json.dumps(value, separators=(',', ':')))
    except RecursionError:
        raise _too_deep(field)
    except (TypeError, ValueError) as exc:
        raise _invalid('%s is not a JSON document: %s' % (field, exc))


def check_size(size, field):
    """Refuse a scheme of ``size`` bytes over [fuel_agent]max_scheme_bytes."""
    limit = CONF.fuel_agent.max_scheme_bytes
    if size > limit:
        raise _invalid('%s is %d bytes of JSON, more than '
                       '[fuel_agent]max_scheme_bytes (%d)'
                       % (field, size, limit))


def load_json_field(value, field):
    """A JSON object from a field holding an object or JSON text, no
    larger than ``[fuel_agent]max_scheme_bytes``."""
    check_size(_json_size(value, field), field)
    if isinstance(value, (str, bytes)):
        try:
            # Size checked above; the agent's bounded parser does the rest
            # (depth, number length), as for every scheme it reads.
            value = contract.load_json(value, max_bytes=None)
        except contract.DocumentError as exc:
            if exc.reason.startswith('nested deeper'):
                raise _too_deep(field)
            raise _invalid('%s is %s' % (field, exc.reason))
    if not isinstance(value, dict):
        raise _invalid('%s must be a JSON object, not %s'
                       % (field, type(value).__name__))
    return value


def named_scheme(node, name, field):
    """The scheme called ``name``: driver_info fa_schemes, then the
    conductor's scheme library.

    :raises: InvalidParameterValue naming ``field`` when there is none.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _invalid('%s: %r is not a scheme name (letters, digits, '
                       '"_", "." and "-")' % (field, name))
    schemes = node.driver_info.get('fa_schemes')
    if schemes:
        schemes = load_json_field(schemes, 'driver_info.fa_schemes')
        if name in schemes:
            return Source(
                load_json_field(schemes[name],
                                'driver_info.fa_schemes.%s' % name),
                '%s=%s from driver_info.fa_schemes' % (field, name),
                'driver_info.fa_schemes.%s' % name)
    library = CONF.fuel_agent.scheme_library_dir
    path = os.path.join(library, name + '.json')
    try:
        with open(path, 'rb') as f:
            check_size(os.fstat(f.fileno()).st_size, path)
            # Bounded even if the file grows meanwhile.
            text = f.read(CONF.fuel_agent.max_scheme_bytes + 1)
    except FileNotFoundError:
        raise _invalid('%s: no scheme named %r in driver_info.fa_schemes or '
                       'in the scheme library %s' % (field, name, library))
    except OSError as exc:
        raise _invalid('%s: cannot read %s: %s' % (field, path, exc.strerror))
    return Source(load_json_field(text, path),
                  '%s=%s from %s' % (field, name, path), path)


def from_step_args(node, args, where=None):
    """Source (a): the write_image step's own arguments, or None.
    ``where`` says which step that is (a deploy template, the user's
    ``--deploy-steps``) for errors."""
    args = args or {}
    step = where or 'write_image step'
    if args.get('scheme') is not None and args.get('scheme_name'):
        raise _invalid('%s: give "scheme" or "scheme_name", not both'
                       % step)
    if args.get('scheme') is not None:
        field = '%s argument "scheme"' % step
        return Source(load_json_field(args['scheme'], field), field, field)
    if args.get('scheme_name'):
        return named_scheme(node, args['scheme_name'],
                            '%s argument "scheme_name"' % step)
    return None


def resolve(node, step_args=None, where=None):
    """The scheme :class:`Source` for ``node`` (see the module doc);
    ``where`` names the step ``step_args`` come from.

    :returns: a Source, or None when the default layout applies.
    :raises: InvalidParameterValue when a named source is broken.
    """
    source = from_step_args(node, step_args, where)
    if source:
        return source
    try:
        capabilities = ironic_utils.parse_instance_info_capabilities(node)
    except RecursionError:
        raise _too_deep('instance_info.capabilities')
    if capabilities.get('fa_scheme'):
        return named_scheme(node, capabilities['fa_scheme'],
                            'instance_info.capabilities.fa_scheme')
    value = node.driver_info.get('fa_partition_scheme')
    if value:
        field = 'driver_info.fa_partition_scheme'
        return Source(load_json_field(value, field), field, field)
    return None


def _int_field(node, name, default=0):
    value = node.instance_info.get(name, default) or 0
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise _invalid('instance_info.%s must be a whole number, not %r'
                       % (name, value))
    if value < 0:
        raise _invalid('instance_info.%s must not be negative' % name)
    return value


def root_device_hints(node):
    """The node's root device hints as the operator wrote them
    (instance_info wins over properties), checked by Ironic's parser;
    None without hints.

    They go into the scheme unparsed: the agent's matcher reads them as
    Ironic does, so Ironic's parsed form (lower-cased, URL-quoted,
    ``s==`` prefixed) would be normalised twice.

    :raises: InvalidParameterValue for hints Ironic refuses.
    """
    parsed = deploy_utils.get_root_device_for_deploy(node)
    if not parsed:
        return None
    hints = dict(node.instance_info.get('root_device')
                 or node.properties.get('root_device'))
    if 'rotational' in parsed:
        # The scheme wants a JSON boolean; Ironic accepts "yes", "1", ...
        hints['rotational'] = parsed['rotational']
    return hints


def root_disk_match(node, devices=None, needed_gib=0):
    """Matchers for the root disk: the node's root device hints, else the
    smallest known disk that is big enough, else any big enough disk."""
    hints = root_device_hints(node)
    if hints:
        return hints
    needed_gib = max(needed_gib, MIN_ROOT_DISK_GIB)
    big_enough = [d for d in devices or ()
                  if d.size >= needed_gib * 1024 ** 3]
    if big_enough:
        return {'name': min(big_enough, key=lambda d: (d.size, d.name)).name}
    return {'size': '>= %d' % needed_gib}


def default_needs_disks(node, step_args=None):
    """Whether the default layout applies and has no root device hints
    to name its disk, so it must choose among the node's disks."""
    return resolve(node, step_args) is None and \
        not deploy_utils.get_root_device_for_deploy(node)


def default_scheme(node, whole_disk, boot_mode, with_configdrive,
                   devices=None):
    """Source (d): one disk; a whole-disk image fills it, a partition
    image gets boot partitions, ephemeral, swap, configdrive and root."""
    root_gb = _int_field(node, 'root_gb')
    swap_mb = _int_field(node, 'swap_mb')
    ephemeral_gb = _int_field(node, 'ephemeral_gb')
    if whole_disk:
        disk = {'type': 'disk', 'id': ROOT_DISK_ID,
                'match': root_disk_match(node, devices)}
        document = {'version': 1, 'storage': [disk]}
        if with_configdrive:
            document['configdrive'] = {'device': ROOT_DISK_ID}
        return document
    if not root_gb:
        raise exception.MissingParameterValue(
            'instance_info.root_gb is required to lay out a partition '
            'image without a partitioning scheme')
    needed = root_gb + ephemeral_gb + -(-swap_mb // 1024) + 1
    storage = [{'type': 'disk', 'id': ROOT_DISK_ID, 'table': 'gpt',
                'match': root_disk_match(node, devices, needed)}]

    def partition(pid, size, flags=(), fstype=None, **fs):
        part = {'type': 'partition', 'id': pid, 'device': ROOT_DISK_ID,
                'size': size}
        if flags:
            part['flags'] = list(flags)
        storage.append(part)
        if fstype:
            storage.append(dict({'type': 'filesystem', 'id': pid + '_fs',
                                 'device': pid, 'fstype': fstype}, **fs))

    if boot_mode == 'uefi':
        partition('esp', '%d MiB' % ESP_MIB, ['esp'], 'vfat',
                  mount_point='/boot/efi', label='efi-part')
    else:
        partition('bios_grub', '1 MiB', ['bios_grub'])
    if ephemeral_gb:
        partition('ephemeral', '%d GiB' % ephemeral_gb, (),
                  CONF.pxe.default_ephemeral_format, label='ephemeral0')
    if swap_mb:
        partition('swap', '%d MiB' % swap_mb, ['swap'], 'swap',
                  label='swap1')
    if with_configdrive:
        partition('configdrive', '%d MiB' % CONFIGDRIVE_MIB)
    partition('root', '%d GiB' % root_gb, (), 'ext4', mount_point='/',
              label='root')
    document = {'version': 1, 'storage': storage,
                'bootloader': {'mode': boot_mode}}
    if with_configdrive:
        document['configdrive'] = {'device': 'configdrive'}
    return document
