"""Everything ``validate()`` checks before a node is touched, and the
node's disks as Ironic knows them (for the fit check and the wipe)."""

from fa_agent import redact
from fa_agent.scheme import inventory
from fa_agent.scheme import matcher
from fa_agent.scheme import planner
from ironic.common import exception
from ironic.drivers.modules import deploy_utils
from ironic.drivers.modules import inspect_utils

from ironic_fa_driver import agent_input
from ironic_fa_driver import kexec
from ironic_fa_driver import keys
from ironic_fa_driver import scheme_source

GiB = 1024 ** 3


def known_disks(task):
    """Disks from the node's inspection inventory, or None."""
    try:
        data = inspect_utils.get_inspection_data(task.node, task.context)
    except exception.NodeInventoryNotFound:
        return None
    try:
        devices = inventory.from_ironic(
            {'inventory': data.get('inventory') or {}})
    except inventory.InventoryError as exc:
        # The inventory came from a ramdisk: name the field, no traceback.
        raise exception.InvalidParameterValue(
            'the node\'s inspection inventory cannot be read (inspect the '
            'node again): %s' % exc) from None
    return devices or None


def _disk_from_local_gb(node, scheme):
    """A stand-in for a single-disk scheme's disk from properties.local_gb,
    carrying the disk's plain hints so that it matches."""
    disks = scheme.of_type('disk')
    try:
        local_gb = int(node.properties.get('local_gb') or 0)
    except (TypeError, ValueError):
        return None
    if len(disks) != 1 or local_gb <= 0:
        return None
    hints = {k: v for k, v in disks[0].match.items()
             if k != 'size' and isinstance(v, str)
             and not matcher._has_operator(v)}
    device = inventory.BlockDevice(
        name=hints.pop('name', '/dev/root-disk'), size=local_gb * GiB,
        rotational=disks[0].match.get('rotational'),
        **{k: v for k, v in hints.items()
           if k in inventory.BlockDevice.__dataclass_fields__})
    return [device]


def check_fit(node, scheme, devices, source):
    """Plan ``scheme`` on the known disks.

    :raises: InvalidParameterValue listing every reason it does not fit.
    """
    stand_in = devices is None
    if stand_in:
        devices = _disk_from_local_gb(node, scheme)
        if not devices:
            return
    try:
        planner.plan(scheme, devices)
    except planner.PlanError as exc:
        errors = exc.errors
        if stand_in:
            # A stand-in disk only knows its size: matcher misses are
            # not the scheme's fault.
            errors = [e for e in errors if not e.path.endswith('.match')]
        if errors:
            what = ('properties.local_gb=%s' % node.properties['local_gb']
                    if stand_in else 'the inspected disks')
            raise exception.InvalidParameterValue(
                'partitioning scheme (%s) does not fit %s: %s' % (
                    source.origin, what, '; '.join(str(e) for e in errors)))


def _check_ssh_overrides(node):
    info = node.driver_info
    if 'fa_ssh_port' in info:
        try:
            port = int(info['fa_ssh_port'])
        except (TypeError, ValueError):
            port = 0
        if not 0 < port < 65536:
            raise exception.InvalidParameterValue(
                'driver_info.fa_ssh_port must be a port number (1-65535), '
                'not %r' % (info['fa_ssh_port'],))
    if 'fa_ssh_user' in info and not (
            isinstance(info['fa_ssh_user'], str) and info['fa_ssh_user']):
        raise exception.InvalidParameterValue(
            'driver_info.fa_ssh_user must be a non-empty string')
    key_file = keys.configured_key_file(node)
    if key_file:
        field = ('driver_info.fa_ssh_key_file'
                 if info.get('fa_ssh_key_file')
                 else '[fuel_agent]ssh_key_file')
        keys.check_key_file(key_file, field)


def validate(task):
    """Boot, power, inputs, SSH key, scheme and fit.

    :raises: InvalidParameterValue or MissingParameterValue naming the
        field and the reason, URLs in it masked (they may carry secrets
        and the error is shown to API users and stored in last_error).
    """
    try:
        return _validate(task)
    except exception.InvalidParameterValue as exc:
        masked = redact.text(str(exc))
        if masked == str(exc):
            raise
        raise type(exc)(masked) from None


def _validate(task):
    node = task.node
    task.driver.boot.validate(task)
    task.driver.power.validate(task)
    deploy_utils.validate_capabilities(node)
    _check_ssh_overrides(node)
    kexec.wanted(node)  # driver_info fa_kexec must be a boolean
    devices = known_disks(task)
    source, document = agent_input.scheme_for(
        task, scheme_source.write_image_args(node), devices)
    scheme = agent_input.check(source, document)
    check_fit(node, scheme, devices, source)
    return scheme
