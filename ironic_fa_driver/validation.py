"""Everything ``validate()`` checks before a node is touched, and the
node's disks as Ironic knows them (for the fit check and the wipe)."""

from fa_agent import contract
from ironic.common import exception
from ironic.drivers.modules import deploy_utils
from ironic.drivers.modules import inspect_utils
from ironic import objects

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
        devices = contract.disks_from_ironic(
            {'inventory': data.get('inventory') or {}})
    except contract.InventoryError as exc:
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
             and contract.plain_hint_value(k, v) is not None}
    device = contract.BlockDevice(
        name=hints.pop('name', '/dev/root-disk'), size=local_gb * GiB,
        rotational=disks[0].match.get('rotational'),
        **{k: v for k, v in hints.items()
           if k in contract.BlockDevice.__dataclass_fields__})
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
        contract.plan(scheme, devices)
    except contract.PlanError as exc:
        errors = exc.errors
        if stand_in:
            # A stand-in disk only knows its size: matcher misses are
            # not the scheme's fault.
            errors = [e for e in errors if not e.path.endswith('.match')]
        if errors:
            what = ('properties.local_gb=%s' % node.properties['local_gb']
                    if stand_in else 'the inspected disks')
            # The reason first: Nova shows its users the first 255
            # characters of a fault, after its own prefix.
            raise exception.InvalidParameterValue(
                'partitioning scheme does not fit %s: %s (scheme from %s)'
                % (what, '; '.join(str(e) for e in errors), source.origin))


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
    else:
        keys.read_secret()


def write_image_step(task, deploy_steps=None):
    """(args, where) of the ``write_image`` step this deploy runs, as
    Ironic chooses it: the user's deploy steps (``--deploy-steps``, given
    here or already stored on the node) win over deploy templates named
    by ``instance_info.traits``; once Ironic has built the node's step
    list (``driver_internal_info.deploy_steps``) its arguments are the
    ones that run. ``where`` names the source for errors; ({}, None)
    when no step sets arguments.

    :raises: InvalidParameterValue when the templates cannot be read.
    """
    node = task.node
    info = node.driver_internal_info
    args, where = None, None
    user = _write_image(deploy_steps or info.get('user_deploy_steps'))
    if user is not None:
        args, where = user, 'deploy steps argument (--deploy-steps)'
    else:
        for template in _deploy_templates(task):
            found = _write_image(template.steps)
            if found is not None:
                args = found
                where = 'deploy template %s' % template.name
                break
    running = _write_image(info.get('deploy_steps'))
    if running is not None and running != (args or {}):
        # Ironic's step list says otherwise; it is what runs.
        args, where = running, None
    if not args:
        return {}, None
    return args, where and where + ' step ' + scheme_source.STEP


def _write_image(steps):
    """The args of the deploy interface's write_image step in ``steps``
    ({} when it has none), or None when there is no such step."""
    for step in steps or ():
        if isinstance(step, dict) and step.get('interface') == 'deploy' \
                and step.get('step') == scheme_source.STEP:
            args = step.get('args')
            return dict(args) if isinstance(args, dict) else {}
    return None


def _deploy_templates(task):
    """The deploy templates Ironic applies: those named by the node's
    instance traits (as conductor.steps reads them)."""
    traits = task.node.instance_info.get('traits')
    if not traits or not isinstance(traits, list):
        return []
    return objects.DeployTemplate.list_by_names(task.context, traits)


def check_scheme(task, deploy_steps=None):
    """Schema, semantics and fit of the scheme this deploy would use,
    from whichever source it comes (see :func:`write_image_step` and
    :mod:`scheme_source`).

    :returns: the loaded scheme.
    :raises: InvalidParameterValue (or MissingParameterValue) naming the
        source and every JSON path at fault; a broken scheme and a
        missing image are reported together.
    """
    scheme, errors = _scheme_problems(task, deploy_steps)
    if errors:
        raise _together(errors)
    return scheme


def _scheme_problems(task, deploy_steps=None):
    """(loaded scheme or None, [exceptions])."""
    node = task.node
    try:
        args, where = write_image_step(task, deploy_steps)
        devices = known_disks(task)
        try:
            source, document = agent_input.scheme_for(task, args, devices,
                                                      where=where)
        except exception.MissingParameterValue as missing:
            # Say what else is wrong with the scheme in the same error:
            # check it as it would be with an image.
            errors = [missing]
            try:
                source, document = agent_input.scheme_for(
                    task, args, devices, where=where, placeholder=True)
                check_fit(node, agent_input.check(source, document),
                          devices, source)
            except exception.InvalidParameterValue as exc:
                errors.append(exc)
            return None, errors
        scheme = agent_input.check(source, document)
        check_fit(node, scheme, devices, source)
        return scheme, []
    except exception.InvalidParameterValue as exc:
        return None, [exc]


def _together(errors):
    """One exception carrying every message (each once), Missing only
    when every problem is a missing field."""
    messages = []
    for exc in errors:
        if str(exc) not in messages:
            messages.append(str(exc))
    kind = (exception.MissingParameterValue
            if all(isinstance(e, exception.MissingParameterValue)
                   for e in errors)
            else exception.InvalidParameterValue)
    if len(messages) == 1:
        return kind(messages[0])
    return kind('%d problems: %s' % (
        len(messages), '; '.join('(%d) %s' % (n, m)
                                 for n, m in enumerate(messages, 1))))


def validate(task, deploy_steps=None):
    """Boot, power, inputs, SSH key, scheme and fit, every problem in one
    error (``baremetal node validate`` shows one reason per interface).

    :raises: InvalidParameterValue or MissingParameterValue naming the
        fields and the reasons, URLs in it masked (they may carry secrets
        and the error is shown to API users and stored in last_error).
    """
    try:
        return _validate(task, deploy_steps)
    except exception.InvalidParameterValue as exc:
        masked = contract.redact(str(exc))
        if masked == str(exc):
            raise
        raise type(exc)(masked) from None


def _validate(task, deploy_steps=None):
    node = task.node
    errors = []
    checks = ((task.driver.boot.validate, task),
              (task.driver.power.validate, task),
              (deploy_utils.validate_capabilities, node),
              (_check_ssh_overrides, node),
              # driver_info fa_kexec must be a boolean
              (kexec.wanted, node))
    for check, arg in checks:
        try:
            check(arg)
        except exception.InvalidParameterValue as exc:
            errors.append(exc)
    scheme, problems = _scheme_problems(task, deploy_steps)
    errors.extend(problems)
    if errors:
        raise _together(errors)
    return scheme


def check_before_power_on(task):
    """The deploy step's first act: the scheme of the steps Ironic is
    about to run (``--deploy-steps`` arguments are stored on the node
    only after ``validate()`` ran, so they are first visible here).

    :raises: InstanceDeployFailure naming the source and the JSON paths.
    """
    try:
        check_scheme(task)
    except (exception.InvalidParameterValue,
            contract.InputError) as exc:
        raise exception.InstanceDeployFailure(
            reason='no power action taken: %s' % contract.redact(str(exc)))
