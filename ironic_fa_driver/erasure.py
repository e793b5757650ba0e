"""Cleaning with the fuel ramdisk: which disks, how, and with which of
Ironic's own [deploy] settings.

The clean steps are IPA's: ``erase_devices_metadata`` (priority 99),
``erase_devices`` (10) and ``erase_devices_express`` (0, manual), with
their priorities from ``[deploy]erase_devices_metadata_priority`` and
``[deploy]erase_devices_priority`` when set (None: IPA's defaults; 0:
not in automated cleaning), as Ironic's ``AgentBaseMixin`` overrides an
IPA ramdisk's. The erase options are the [deploy] options Ironic passes
to IPA (``deploy_utils.agent_add_clean_params``), read when the step
starts.

Disks come from the node's inspection inventory, else from the ramdisk
itself (the same boot that erases them). Each is named by stable
identity: serial and wwn, else its by-path link, else, only when it has
none of them, its kernel name. The agent checks that identity again on
the disk before it writes anything.
"""

from fa_agent import contract
from ironic.common import exception
from ironic.conductor import utils as manager_utils
from oslo_log import log as logging

from ironic_fa_driver import conf
from ironic_fa_driver import operations
from ironic_fa_driver import validation

CONF = conf.CONF
LOG = logging.getLogger(__name__)

# IPA's GenericHardwareManager priorities, which Ironic falls back to.
DEFAULT_PRIORITIES = {'erase_devices_metadata': 99, 'erase_devices': 10,
                      'erase_devices_express': 0}
MODES = {'erase_devices_metadata': 'metadata', 'erase_devices': 'full',
         'erase_devices_express': 'express'}
STEPS = {'metadata': ('discover', 'wipe'), 'full': ('discover', 'erase'),
         'express': ('discover', 'erase')}
# The keep_data objects of the last deploy, kept across the ramdisk's
# bookkeeping until cleaning erases them.
KEEP_DATA = 'fa_keep_data'
ERASED = 'fa_erased'
IDENTITY = ('serial', 'wwn')


def priority(step):
    """The automated-cleaning priority of ``step``."""
    if step == 'erase_devices':
        value = CONF.deploy.erase_devices_priority
    elif step == 'erase_devices_metadata':
        value = CONF.deploy.erase_devices_metadata_priority
        old = CONF.fuel_agent.erase_devices_metadata_priority
        if value is None and old is not None:
            LOG.warning('[fuel_agent]erase_devices_metadata_priority is '
                        'deprecated; set [deploy]'
                        'erase_devices_metadata_priority instead')
            value = old
    else:
        value = None
    return DEFAULT_PRIORITIES[step] if value is None else value


def clean_steps(steps):
    """``steps`` (the interface's decorated ones) with their priorities
    from the configuration."""
    result = []
    for step in steps:
        step = dict(step)
        if step['step'] in DEFAULT_PRIORITIES:
            step['priority'] = priority(step['step'])
        result.append(step)
    return result


def erase_options(mode):
    """The erase request's options from Ironic's [deploy] settings."""
    deploy = CONF.deploy
    return contract.EraseOptions(
        mode=mode,
        random_iterations=deploy.shred_random_overwrite_iterations,
        zeroize=deploy.shred_final_overwrite_with_zeros,
        ata_secure_erase=deploy.enable_ata_secure_erase,
        nvme_secure_erase=deploy.enable_nvme_secure_erase,
        continue_if_secure_erase_fails=(
            deploy.continue_if_disk_secure_erase_fails),
        skip_read_only=deploy.erase_skip_read_only,
        concurrency=deploy.disk_erasure_concurrency)


def _unique(devices, field):
    values = [getattr(d, field) for d in devices if getattr(d, field)]
    return {v.lower() for v in values
            if [x.lower() for x in values].count(v.lower()) == 1}


def identity(device, devices, same_boot):
    """The match naming ``device`` for good: serial and wwn when the
    node's disks do not share them, else by-path, else (only when it has
    nothing else) its kernel name. ``same_boot``: ``devices`` were read
    by this very ramdisk boot, so the kernel name is also right (added
    when there is no other identity)."""
    match = {}
    for field in IDENTITY:
        value = getattr(device, field)
        if value and value.lower() in _unique(devices, field):
            match[field] = value
    if not match and device.by_path:
        match['by_path'] = device.by_path
    if not match:
        if not same_boot:
            LOG.warning('Disk %s has no serial, wwn or by-path; it is named '
                        'by its kernel name from inspection, which can '
                        'change across boots', device.name)
        match['name'] = device.name
    return match


def disks_to_erase(task):
    """Disk objects for the erase request: the inspected disks, else the
    ramdisk's own list.

    :raises NodeCleaningFailure: when neither names a disk.
    """
    node = task.node
    devices = validation.known_disks(task)
    same_boot = False
    if not devices:
        devices = operations.ramdisk_disks(task, include_read_only=True)
        same_boot = True
    if not devices:
        raise exception.NodeCleaningFailure(
            node=node.uuid, reason='the node has no inspection data and its '
            'ramdisk lists no disks (lsblk over SSH failed or found none)')
    LOG.info('Erasing the disks of node %s from %s: %s', node.uuid,
             'the ramdisk' if same_boot else 'inspection data',
             ', '.join(d.name for d in devices))
    return [{'type': 'disk', 'id': 'disk%d' % n,
             'match': identity(device, devices, same_boot)}
            for n, device in enumerate(devices)]


def start(task, step):
    """Start the agent for clean step ``step``."""
    node = task.node
    mode = MODES[step]
    try:
        provision = contract.erase_input(
            disks_to_erase(task), node_uuid=node.uuid, node_name=node.name,
            options=erase_options(mode))
        _warn_keep_data(task, step)
        operations.start_agent(task, provision, steps=STEPS[mode],
                               after_finished=True)
    except exception.InstanceDeployFailure as exc:
        raise exception.NodeCleaningFailure(node=node.uuid,
                                            reason=contract.redact(str(exc)))


def remember_keep_data(node, scheme):
    """At deploy: which objects of ``scheme`` hold kept data (not
    saved), so that cleaning can say it erases them."""
    kept = sorted(o.id for o in scheme.storage if o.keep_data)
    if kept:
        node.set_driver_internal_info(KEEP_DATA, kept)
    else:
        node.del_driver_internal_info(KEEP_DATA)


def _warn_keep_data(task, step):
    node = task.node
    kept = node.driver_internal_info.get(KEEP_DATA)
    if not kept:
        return
    message = ('Cleaning step %s erases the disks of node %s, including '
               'the keep_data objects of its last deploy (%s): cleaning '
               'hands the node to a new tenant. Use "baremetal node '
               'rebuild" (no cleaning) to keep them.' % (
                   step, node.uuid, ', '.join(kept)))
    LOG.warning(message)
    manager_utils.node_history_record(node, event=message,
                                      event_type='cleaning', error=False)


def record_result(task, result):
    """After the agent succeeded in cleaning: how each disk was erased,
    in driver_internal_info ``fa_erased`` and the node's history; the
    keep_data note goes (its data is gone). Not saved."""
    node = task.node
    devices = (result or {}).get('devices') or {}
    erased, skipped = {}, {}
    for entry in devices.values():
        if not isinstance(entry, dict):
            continue
        if entry.get('skipped'):
            skipped[entry.get('path')] = entry['skipped']
        elif entry.get('erased_by'):
            erased[entry.get('path')] = entry['erased_by']
    if not erased and not skipped:
        return
    node.set_driver_internal_info(ERASED, {'step': (node.clean_step or {})
                                           .get('step'),
                                           'erased': erased,
                                           'skipped': skipped})
    if erased:
        node.del_driver_internal_info(KEEP_DATA)
    text = 'Cleaning %s: erased %s' % (
        (node.clean_step or {}).get('step'),
        ', '.join('%s by %s' % kv for kv in sorted(erased.items()))
        or 'nothing')
    if skipped:
        text += '; not erased: %s' % ', '.join(
            '%s (%s)' % kv for kv in sorted(skipped.items()))
    (LOG.warning if skipped else LOG.info)('Node %s: %s', node.uuid, text)
    # Skipped disks (the ramdisk's own media, read-only ones) are no
    # error of the cleaning: recorded, but not as last_error, which would
    # also keep fast track from taking this ramdisk.
    manager_utils.node_history_record(node, event=text,
                                      event_type='cleaning')
