"""Enrolling the lab's VMs in Ironic and deploying them, timed.

A deploy is watched from outside, as an operator would: the node's
provision state and ``driver_internal_info`` through Ironic's API (the
first heartbeat records ``fa_callback``, the agent's start, progress and
result ``fa_agent_started_at``, ``fa_agent_progress`` and
``fa_agent_result``), the domain's power-ons
through libvirt, and the installed system's ``FA-MARKER`` line on the
serial console.
"""

import dataclasses
import json
import time

from lab import bmc
from lab import console
from lab import virt


# The resource class every lab node carries; Nova flavors ask for it as
# resources:CUSTOM_BAREMETAL=1.
RESOURCE_CLASS = 'baremetal'


class DeployError(Exception):
    pass


def enroll(lab, client, node, ramdisk):
    """The node in Ironic with its port, BMC and deploy (and rescue)
    ramdisk, left ``manageable``: the scenarios inspect it and provide
    it (automated cleaning); :func:`make_available` does the latter for
    the quick path. A node enrolled earlier only gets the current
    ramdisk."""
    found = client.find_node(node.domain)
    kernel = 'file://' + ramdisk['kernel']
    initramfs = 'file://' + ramdisk['initramfs']
    ramdisks = ['--driver-info', 'deploy_kernel=' + kernel,
                '--driver-info', 'deploy_ramdisk=' + initramfs,
                '--driver-info', 'rescue_kernel=' + kernel,
                '--driver-info', 'rescue_ramdisk=' + initramfs]
    if found:
        info = found['driver_info']
        if (info.get('deploy_kernel'), info.get('deploy_ramdisk')) != (
                kernel, initramfs):
            # A new ramdisk build (the agent changed): the next boot
            # takes it; the old one may be pruned from the cache.
            client.baremetal('node', 'set', node.domain, *ramdisks)
        return client.node(node.domain)
    args = ['node', 'create', '-f', 'json', '--name', node.domain,
            '--driver', bmc.HARDWARE_TYPES[node.bmc],
            '--deploy-interface', 'fuel-agent',
            '--rescue-interface', 'fuel-agent',
            '--inspect-interface', 'agent',
            '--boot-interface', 'ipxe',
            '--property', 'cpu_arch=x86_64',
            # What Nova's flavors ask for (resources:CUSTOM_BAREMETAL=1).
            '--resource-class', RESOURCE_CLASS] + ramdisks
    for key, value in list(bmc.driver_info(lab, node).items()) + list(
            node.driver_info):
        args += ['--driver-info', '%s=%s' % (key, value)]
    if node.boot_mode == 'uefi':
        args += ['--property', 'capabilities=boot_mode:uefi']
    if lab.multi_conductor and node.conductor_group:
        args += ['--conductor-group', node.conductor_group]
    created = client.baremetal(*args)
    client.baremetal('port', 'create', node.mac, '--node', created['uuid'])
    client.baremetal('node', 'manage', node.domain, '--wait', '120')
    return client.node(node.domain)


def make_available(client, node, timeout=900):
    """``provide`` a manageable node: Ironic's automated cleaning runs
    (the fuel ramdisk boots and erases the disks) before ``available``."""
    state = client.node(node.domain)['provision_state']
    if state in ('manageable', 'clean failed'):
        if state == 'clean failed':
            client.baremetal('node', 'manage', node.domain, '--wait', '120')
        client.baremetal('node', 'provide', node.domain, '--wait',
                         str(timeout))
    elif state != 'available':
        raise DeployError('node %s is in %s; cannot provide it'
                          % (node.domain, state))
    return client.node(node.domain)


@dataclasses.dataclass
class Deploy:
    """What one deploy did and how long each part took (seconds from
    ``baremetal node deploy``)."""

    node: str
    verb: str = 'deploy'
    state: str = None
    last_error: str = None
    powered_on: float = None
    first_heartbeat: float = None
    agent_started: float = None
    agent_finished: float = None
    active: float = None
    os_up: float = None
    power_ons: int = 0
    marker: dict = None
    console_offset: int = 0
    result: dict = None
    # The agent's seconds per step, from driver_internal_info
    # (fa_agent_step_seconds), in the order the agent runs them.
    step_seconds: dict = None

    def phases(self):
        """(phase, seconds or None) in the order of the timing table."""
        def between(start, end):
            if start is None or end is None:
                return None
            return round(end - start, 1)
        return [
            ('power on -> first heartbeat',
             between(self.powered_on, self.first_heartbeat)),
            ('heartbeat -> agent started',
             between(self.first_heartbeat, self.agent_started)),
            ('agent run', between(self.agent_started, self.agent_finished)),
            ('agent done -> active',
             between(self.agent_finished, self.active)),
            ('reboot -> installed OS up',
             between(self.agent_finished, self.os_up)),
            ('total (deploy command -> OS up)', between(0.0, self.os_up)),
        ]


# fa_agent.steps.ORDER; the lab does not import the agent.
AGENT_STEPS = ('discover', 'verify', 'wipe', 'erase', 'partition', 'raid',
               'lvm', 'filesystems', 'images', 'configdrive', 'target',
               'bootloader', 'kexec', 'cleanup')


def agent_steps(seconds):
    """``seconds`` ({step: s}, stored sorted by name) in run order.

    Ironic's API masks every driver_internal_info key that looks secret,
    and "configdrive" is one of them: that step's time comes back as
    "******" and is left out here.
    """
    if not isinstance(seconds, dict):
        return None
    seconds = {k: v for k, v in seconds.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return dict(sorted(seconds.items(), key=lambda item: (
        AGENT_STEPS.index(item[0]) if item[0] in AGENT_STEPS
        else len(AGENT_STEPS), item[0])))


def undeploy(client, node):
    """Back to ``available`` from active, rescue or a failed deploy
    (through automated cleaning), or from ``manageable``."""
    state = client.node(node.domain)['provision_state']
    if state == 'wait call-back':
        # A deploy the lab gave up on: abort it first.
        client.baremetal('node', 'abort', node.domain)
        state = client.wait_for_state(node.domain, ['deploy failed'],
                                      120)['provision_state']
    if state in ('cleaning', 'clean wait'):
        # A cleaning the lab stopped watching: it ends by itself.
        state = client.wait_for_state(node.domain, ['available'], 1200,
                                      failed=['clean failed'])[
                                          'provision_state']
    if state in ('rescue', 'rescue failed', 'unrescue failed'):
        client.baremetal('node', 'unrescue', node.domain, '--wait', '900')
        state = client.node(node.domain)['provision_state']
    if state in ('active', 'deploy failed'):
        client.baremetal('node', 'undeploy', node.domain, '--wait', '1200')
    elif state in ('manageable', 'clean failed'):
        make_available(client, node)
    elif state != 'available':
        raise DeployError('node %s is in %s; cannot make it available'
                          % (node.domain, state))


def deploy(lab, client, node, instance_info=(), deploy_args=(),
           expect='active', timeout=2400, marker_timeout=900, say=print,
           verb='deploy', start=None, on_agent_running=None):
    """Run ``baremetal node deploy`` (or ``rebuild``, ``verb``; or
    ``start()``, what Nova is asked to do) and watch it to the end.
    Power-ons count new libvirt domain ids: a domain already running
    when the command starts (rebuild) is not one.

    :param expect: 'active' (then waits for the installed system's
        marker) or 'deploy failed'.
    :param on_agent_running: called once with the node (Ironic's view)
        when the agent's first progress report has reached Ironic.
    """
    record = Deploy(node.domain, verb)
    log = virt.console_log(lab, node)
    record.console_offset = console.size(log)
    args = ['node', 'set', node.domain]
    for key, value in instance_info:
        if not isinstance(value, str):
            value = json.dumps(value)
        args += ['--instance-info', '%s=%s' % (key, value)]
    if instance_info:
        client.baremetal(*args)
    running = virt.domain_id(lab, node)
    # Nova acts after its API answered: until Ironic has moved the node
    # (a rebuild starts from "active"), its state says nothing new.
    before = client.node(node.domain)['provision_updated_at']
    started = time.monotonic()
    if start:
        start()
    else:
        client.baremetal('node', verb, node.domain, *deploy_args)
    seen_ids = set()
    last_state = None
    last_progress = None
    deadline = started + timeout
    while True:
        now = time.monotonic() - started
        domain = virt.domain_id(lab, node)
        if domain not in (None, running) and domain not in seen_ids:
            seen_ids.add(domain)
            if record.powered_on is None:
                record.powered_on = now
        found = client.node(node.domain)
        info = found['driver_internal_info'] or {}
        if record.first_heartbeat is None and info.get('fa_callback'):
            record.first_heartbeat = now
            say('  ramdisk heartbeat from %s after %.0f s'
                % (info['fa_callback']['address'], now))
        if record.agent_started is None and info.get('fa_agent_started_at'):
            record.agent_started = now
            say('  agent started at %.0f s' % now)
        progress = info.get('fa_agent_progress')
        if progress and progress != last_progress:
            say('  agent: %s' % progress)
            if on_agent_running and last_progress is None:
                on_agent_running(found)
            last_progress = progress
        if record.agent_started is not None and \
                record.agent_finished is None and (
                    'fa_agent_result' in info or
                    not info.get('fa_agent_started_at')):
            record.agent_finished = now
            record.result = info.get('fa_agent_result')
            say('  agent finished at %.0f s' % now)
        state = found['provision_state']
        if state != last_state:
            say('  %s (%.0f s)' % (state, now))
            last_state = state
        if state in ('active', 'deploy failed') and \
                found['provision_updated_at'] != before:
            break
        if time.monotonic() > deadline:
            raise DeployError('node %s still in %s after %d s' % (
                node.domain, state, timeout))
        time.sleep(1)
    record.state = state
    record.last_error = found['last_error']
    record.step_seconds = agent_steps(info.get('fa_agent_step_seconds'))
    record.active = now if state == 'active' else None
    if state != expect:
        record.power_ons = len(seen_ids)
        return record
    if state == 'active':
        while time.monotonic() - started < now + marker_timeout:
            domain = virt.domain_id(lab, node)
            if domain not in (None, running):
                seen_ids.add(domain)
            record.marker = console.marker(log, record.console_offset)
            if record.marker:
                record.os_up = time.monotonic() - started
                break
            time.sleep(2)
        else:
            raise DeployError(
                'node %s is active but its installed system printed no '
                'FA-MARKER within %d s; console ends with:\n%s' % (
                    node.domain, marker_timeout,
                    console.tail(log, record.console_offset)))
    record.power_ons = len(seen_ids)
    return record
