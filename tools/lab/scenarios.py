"""The lab's test mode: each scenario deploys through Ironic and checks
the outcome on the machine itself (its serial console, its disks).

The scenarios of one node run in order, each starting from ``available``
or ``active``; the two nodes' chains run at the same time (most of a
deploy is waiting for one VM, and there are two cores):

BIOS node:

- ``bios-raid1-nova``: RAID1 + LVM on two disks, the layout named the
  Nova way (instance_info capabilities ``fa_scheme``, as a flavor's
  ``capabilities:fa_scheme`` sets it) from the conductor's scheme
  library; the OS image from instance_info on root, and a tarball the
  scheme lists puts a marker file with a fresh token on the data volume;
- ``keep-data-template``: undeploy, then a redeploy whose layout comes
  from a deploy template (a trait), with the data volume ``keep_data``:
  the installed system shows the same data file system (UUID) with the
  same marker file, and a new root file system;
- ``does-not-fit``: a scheme larger than the disks: ``deploy failed``,
  the agent's ``does_not_fit`` in last_error, the disks untouched.

UEFI node:

- ``uefi-raid1``: RAID1 + LVM, scheme in driver_info;
- ``uefi-default-layout``: no scheme at all (the root_gb default layout).
"""

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import threading
import time

from lab import artifacts
from lab import console
from lab import deploy
from lab import ironic
from lab import schemes
from lab import settings
from lab import virt
from lab import webserver

BIOS = settings.NODES['bios']
UEFI = settings.NODES['uefi']
TEMPLATE_TRAIT = 'CUSTOM_FA_KEEP_DATA'


class CheckFailed(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def swap_devices(swaps):
    """Swap device names from the marker's ``swaps``: /proc/swaps text
    or swapon's JSON list."""
    if isinstance(swaps, str):
        return [line.split()[0] for line in swaps.splitlines()[1:]
                if line.strip()]
    return [s.get('name') or '' for s in swaps or ()]


@dataclasses.dataclass
class Outcome:
    name: str
    passed: bool = False
    seconds: float = 0.0
    detail: str = ''
    deploys: list = dataclasses.field(default_factory=list)


class Scenarios:
    """The scenarios against a running :class:`stack.Stack`."""

    def __init__(self, stack, prefix=''):
        self.stack = stack
        self.lab = stack.lab
        self.say = (lambda message: stack.say(prefix + message)) \
            if prefix else stack.say
        self.client = ironic.Client(self.lab, say=self.say)
        # What bios-raid1-nova left for keep-data-template to check.
        self.first_deploy = None

    # -- helpers ----------------------------------------------------------

    def os_image(self):
        url, image = self.stack.image_url('fs_image')
        return url, image

    def instance_info(self, **extra):
        url, image = self.os_image()
        # Ironic wants root_gb with every partition image (Nova always
        # sets it from the flavor); only the default layout uses it.
        info = {'image_source': url, 'image_type': 'partition',
                'image_os_hash_algo': 'sha256',
                'image_os_hash_value': image.sha256, 'root_gb': '2'}
        info.update(extra)
        return list(info.items())

    def scheme_image(self, image, target):
        url = webserver.publish(self.lab, image.path,
                                os.path.basename(image.path))
        entry = {'url': url, 'format': image.format, 'target': target,
                 'checksum': {'algorithm': 'sha256', 'value': image.sha256}}
        if image.compression:
            entry['compression'] = image.compression
        return entry

    def library(self, name, scheme):
        with open(self.lab.path('schemes', name + '.json'), 'w') as f:
            json.dump(scheme, f, indent=1)

    def deploy(self, outcome, node, **kwargs):
        record = deploy.deploy(self.lab, self.client, node, say=self.say,
                               **kwargs)
        outcome.deploys.append(record)
        return record

    def ironic_log_has(self, text, since):
        with open(self.lab.path('logs', 'ironic-service.log'),
                  errors='replace') as f:
            f.seek(since)
            return text in f.read()

    def ironic_log_size(self):
        return console.size(self.lab.path('logs', 'ironic-service.log'))

    def check_active(self, record, boot_mode):
        check(record.state == 'active', 'deploy ended in %s: %s'
              % (record.state, record.last_error))
        marker = record.marker
        check(marker and marker.get('boot_mode') == boot_mode,
              'the installed system booted in %s mode, expected %s'
              % (marker and marker.get('boot_mode'), boot_mode))
        return marker

    def check_raid1_lvm(self, marker):
        mounts = {m['target']: m for m in marker.get('mounts') or ()}
        root = mounts.get('/')
        check(root and 'system-root' in (root.get('source') or ''),
              'root is not on the LVM volume system/root: %s' % root)
        check(schemes.DATA_MOUNT in mounts,
              '%s is not mounted: %s' % (schemes.DATA_MOUNT, sorted(mounts)))
        mdstat = marker.get('mdstat') or ''
        check('raid1' in mdstat and '[2/2]' in mdstat,
              'no RAID1 array with both members active: %s' % mdstat)
        swaps = swap_devices(marker.get('swaps'))
        check(any('/dm-' in name or 'system-swap' in name
                  for name in swaps),
              'the swap volume is not in use: %s' % swaps)
        return mounts

    # -- scenarios --------------------------------------------------------

    def bios_raid1_nova(self, outcome):
        deploy.undeploy(self.client, BIOS)
        token = secrets.token_hex(8)
        data = artifacts.data_tar(self.lab, token)
        self.library('raid1-lvm', schemes.with_images(
            schemes.raid1_lvm('bios'), [self.scheme_image(data, 'fs-data')]))
        since = self.ironic_log_size()
        record = self.deploy(outcome, BIOS, instance_info=self.instance_info(
            capabilities={'fa_scheme': 'raid1-lvm'}))
        marker = self.check_active(record, 'bios')
        mounts = self.check_raid1_lvm(marker)
        check(self.ironic_log_has(
            'instance_info.capabilities.fa_scheme=raid1-lvm', since),
            'Ironic\'s log does not say the scheme came from '
            'instance_info.capabilities.fa_scheme')
        check(kept_token(marker) == token,
              '%s/%s holds %r, expected %r (from the scheme\'s tarball)'
              % (schemes.DATA_MOUNT, artifacts.MARKER_FILE,
                 kept_token(marker), token))
        self.first_deploy = {'token': token,
                             'data': mounts[schemes.DATA_MOUNT].get('uuid'),
                             'root': mounts['/'].get('uuid')}
        outcome.detail = 'mdstat: %s' % ' '.join(
            (marker['mdstat'] or '').split())[:120]

    def does_not_fit(self, outcome):
        deploy.undeploy(self.client, BIOS)
        virt.power_off(self.lab, BIOS)
        before = self.snapshot(BIOS)
        self.client.baremetal('node', 'set', BIOS.domain, '--driver-info',
                              'fa_partition_scheme=%s'
                              % json.dumps(schemes.too_big('bios')))
        try:
            record = self.deploy(outcome, BIOS,
                                 instance_info=self.instance_info(),
                                 expect='deploy failed')
        finally:
            self.client.baremetal('node', 'unset', BIOS.domain,
                                  '--driver-info', 'fa_partition_scheme')
        check(record.state == 'deploy failed',
              'the deploy ended in %s, expected deploy failed'
              % record.state)
        error = record.last_error or ''
        check('does_not_fit' in error and "'vg0' need" in error,
              'last_error does not say does_not_fit for volume group vg0: '
              '%s' % error)
        self.client.baremetal('node', 'power', 'off', BIOS.domain)
        virt.power_off(self.lab, BIOS)
        changed = self.compare(BIOS, before)
        check(not changed, 'the disks changed: %s' % changed)
        deploy.undeploy(self.client, BIOS)
        outcome.detail = 'last_error: %s' % error[:160]

    def keep_data_template(self, outcome):
        if self.first_deploy is None:
            # Run on its own: make the deploy whose data it keeps.
            self.bios_raid1_nova(outcome)
        first = self.first_deploy
        deploy.undeploy(self.client, BIOS)
        # The same layout with the data volume kept, the OS image from
        # instance_info, chosen by a deploy template's trait.
        self.library('raid1-lvm-keep', schemes.raid1_lvm('bios',
                                                          keep_data=True))
        self.ensure_template()
        self.client.baremetal('node', 'add', 'trait', BIOS.domain,
                              TEMPLATE_TRAIT)
        since = self.ironic_log_size()
        try:
            record = self.deploy(outcome, BIOS, instance_info=self.
                                 instance_info(traits=[TEMPLATE_TRAIT]))
        finally:
            self.client.baremetal('node', 'remove', 'trait', BIOS.domain,
                                  TEMPLATE_TRAIT)
        marker = self.check_active(record, 'bios')
        mounts = self.check_raid1_lvm(marker)
        check(self.ironic_log_has('scheme_name"=raid1-lvm-keep', since),
              'Ironic\'s log does not say the scheme came from the deploy '
              'template\'s write_image argument')
        check(mounts[schemes.DATA_MOUNT].get('uuid') == first['data'],
              'the data file system was made anew (UUID %s, before %s)'
              % (mounts[schemes.DATA_MOUNT].get('uuid'), first['data']))
        check(kept_token(marker) == first['token'],
              'after the redeploy the kept data volume holds %r, expected '
              '%r' % (kept_token(marker), first['token']))
        check(mounts['/'].get('uuid') != first['root'],
              'the root file system was not made anew (UUID %s)'
              % first['root'])
        outcome.detail = 'marker %s and file system %s kept' % (
            first['token'], first['data'])

    def ensure_template(self):
        steps = [{'interface': 'deploy', 'step': 'write_image',
                  'args': {'scheme_name': 'raid1-lvm-keep'},
                  'priority': 80}]
        templates = self.client.request('GET', '/v1/deploy_templates')
        if not any(t['name'] == TEMPLATE_TRAIT
                   for t in templates['deploy_templates']):
            self.client.baremetal('deploy', 'template', 'create',
                                  TEMPLATE_TRAIT, '--steps',
                                  json.dumps(steps))

    def uefi_default_layout(self, outcome):
        deploy.undeploy(self.client, UEFI)
        since = self.ironic_log_size()
        record = self.deploy(outcome, UEFI, instance_info=self.instance_info(
            root_gb='3'))
        marker = self.check_active(record, 'uefi')
        mounts = {m['target']: m for m in marker.get('mounts') or ()}
        check('/' in mounts and '/boot/efi' in mounts,
              'the default layout should mount / and /boot/efi: %s'
              % sorted(mounts))
        check(self.ironic_log_has('scheme from default layout', since),
              'Ironic\'s log does not say the default layout was used')
        deploy.undeploy(self.client, UEFI)
        outcome.detail = '/ on %s' % mounts['/'].get('source')

    def uefi_raid1(self, outcome):
        deploy.undeploy(self.client, UEFI)
        self.client.baremetal('node', 'set', UEFI.domain, '--driver-info',
                              'fa_partition_scheme=%s'
                              % json.dumps(schemes.raid1_lvm('uefi')))
        try:
            record = self.deploy(outcome, UEFI,
                                 instance_info=self.instance_info())
        finally:
            self.client.baremetal('node', 'unset', UEFI.domain,
                                  '--driver-info', 'fa_partition_scheme')
        marker = self.check_active(record, 'uefi')
        self.check_raid1_lvm(marker)
        deploy.undeploy(self.client, UEFI)
        outcome.detail = 'mdstat: %s' % ' '.join(
            (marker['mdstat'] or '').split())[:120]

    # -- disks ------------------------------------------------------------

    def snapshot(self, node):
        directory = self.lab.path('snapshots', node.name)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        copies = []
        for path in virt.disk_paths(self.lab, node):
            copy = os.path.join(directory, os.path.basename(path))
            subprocess.run(['cp', '--sparse=always', path, copy], check=True)
            copies.append(copy)
        return copies

    def compare(self, node, copies):
        """Disks whose guest-visible contents differ from the copies."""
        changed = []
        for path, copy in zip(virt.disk_paths(self.lab, node), copies):
            result = subprocess.run(['qemu-img', 'compare', '-q', copy,
                                     path], capture_output=True, text=True)
            if result.returncode:
                changed.append('%s (%s)' % (os.path.basename(path),
                               result.stdout.strip() or 'differs'))
        shutil.rmtree(os.path.dirname(copies[0]), ignore_errors=True)
        return changed

    # -- running ----------------------------------------------------------

    def run(self, names):
        outcomes = []
        for name in names:
            outcome = Outcome(name)
            self.say('=== scenario %s' % name)
            started = time.monotonic()
            try:
                getattr(self, name.replace('-', '_'))(outcome)
                outcome.passed = True
            except Exception as exc:  # reported; the next one still runs
                outcome.detail = '%s: %s' % (type(exc).__name__, exc)
                self.recover(NODE_OF[name])
            outcome.seconds = round(time.monotonic() - started, 1)
            self.say('=== %s %s (%.0f s) %s' % (
                name, 'PASSED' if outcome.passed else 'FAILED',
                outcome.seconds, outcome.detail))
            outcomes.append(outcome)
        return outcomes

    def recover(self, node):
        """Leave ``node`` available for its next scenario."""
        try:
            deploy.undeploy(self.client, node)
        except Exception as exc:
            self.say('  could not make %s available: %s'
                     % (node.domain, exc))


CHAINS = {
    BIOS: ('bios-raid1-nova', 'keep-data-template', 'does-not-fit'),
    UEFI: ('uefi-raid1', 'uefi-default-layout'),
}
ALL = CHAINS[BIOS] + CHAINS[UEFI]
NODE_OF = {name: node for node, names in CHAINS.items() for name in names}


def kept_token(marker):
    """The marker file's line on the data volume, as the installed system
    reported it (its FA-MARKER ``keep``)."""
    return ((marker or {}).get('keep') or {}).get(schemes.DATA_MOUNT)


def run(stack, names=None):
    """Run ``names`` (default: all), each node's chain in its own thread;
    outcomes in the order of :data:`ALL`."""
    wanted = [n for n in ALL if n in (names or ALL)]
    results = {}
    threads = []
    for node, chain in CHAINS.items():
        mine = [n for n in chain if n in wanted]
        if not mine:
            continue
        runner = Scenarios(stack, prefix='[%s] ' % node.name)

        def work(runner=runner, mine=mine):
            for outcome in runner.run(mine):
                results[outcome.name] = outcome
        thread = threading.Thread(target=work, name=node.name)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return [results.get(n) or Outcome(n, detail='did not run (its chain '
                                          'stopped early)')
            for n in wanted]
