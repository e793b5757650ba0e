"""Tables the lab prints: set-up phases, one deploy's timing, and the
scenarios of the test mode; the logs of a failed run, kept."""

import os
import shutil
import time

from lab import settings


def _seconds(value):
    return '%7.1f s' % value if value is not None else '      - '


def phases(rows, title):
    lines = [title]
    for what, seconds in rows:
        lines.append('  %-64s %s' % (what, _seconds(seconds)))
    return '\n'.join(lines)


def deploy_timing(record):
    rows = record.phases()
    text = phases(rows, 'Deploy of %s' % record.node)
    text += '\n  %-64s %7d' % ('power-ons (ramdisk + installed OS)',
                               record.power_ons)
    steps = getattr(record, 'step_seconds', None)
    if steps:
        text += '\n' + phases([('  ' + name, s) for name, s in steps.items()],
                              '  agent steps (fa_agent_step_seconds):')
    return text


def marker(record):
    m = record.marker or {}
    lines = ['Installed system (FA-MARKER from the serial console):',
             '  boot mode: %s' % m.get('boot_mode')]
    for mount in m.get('mounts') or ():
        if not (mount.get('source') or '').startswith('/dev/'):
            continue  # /proc, /sys, /run and the like
        lines.append('  %-12s %-32s %-5s %s' % (
            mount.get('target'), mount.get('source'), mount.get('fstype'),
            mount.get('label') or ''))
    for line in (m.get('mdstat') or '').splitlines():
        if line.strip():
            lines.append('  | ' + line)
    return '\n'.join(lines)


def scenarios(outcomes):
    lines = ['Scenarios:']
    for outcome in outcomes:
        lines.append('  %-22s %-6s %7.1f s  %s' % (
            outcome.name, 'PASS' if outcome.passed else 'FAIL',
            outcome.seconds, ' '.join(outcome.detail.split())[:200]))
        for record in outcome.operations:
            lines.append('  %-22s   %s' % ('', record.line()))
        for record in outcome.deploys:
            timing = ', '.join('%s %s' % (name.split(' (')[0], '%.0f s' % s)
                               for name, s in record.phases()
                               if s is not None)
            lines.append('  %-22s   %s -> %s; %s; power-ons %d' % (
                '', record.verb, record.state, timing or 'no timings',
                record.power_ons))
            if record.step_seconds:
                lines.append('  %-22s   agent steps: %s' % ('', ', '.join(
                    '%s %.0f s' % item for item in
                    record.step_seconds.items())))
    passed = sum(o.passed for o in outcomes)
    lines.append('%d passed, %d failed' % (passed, len(outcomes) - passed))
    return '\n'.join(lines)


def keep_logs(lab, parent='/var/tmp'):
    """Copy the lab's logs and the nodes' consoles out of the state
    directory, which ``down`` removes, so that a failed run can be read
    afterwards; the copy's path."""
    target = os.path.join(parent, 'fa-lab-logs-%s'
                          % time.strftime('%Y%m%d-%H%M%S'))
    shutil.copytree(lab.path('logs'), os.path.join(target, 'logs'))
    for name in settings.NODES:
        console = lab.path('nodes', name, 'console.log')
        if os.path.exists(console):
            shutil.copy(console, os.path.join(target, name + '-console.log'))
    return target
