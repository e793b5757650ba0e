"""``tools/lab.sh [up|deploy|test|down|status]``; with no command: up,
then one RAID1 + LVM deploy of the BIOS node, its marker and timings.
See doc/source/lab.rst."""

import argparse
import sys
import time

from lab import deploy
from lab import host
from lab import openstack
from lab import report
from lab import scenarios
from lab import schemes
from lab import settings
from lab import stack as stack_module


def say(message):
    print(message, flush=True)


def cmd_up(stack, args):
    stack.up()
    say(report.phases(stack.timings, 'Lab up:'))
    if stack.lab.with_openstack:
        say('OpenStack: source %s, then run the openstack and baremetal '
            'CLIs inside the lab with: ip netns exec %s %s ...' % (
                openstack.write_openrc(stack.lab), stack.lab.netns,
                openstack.bin_path(stack.lab, 'openstack')))
    else:
        say('Ironic: OS_ENDPOINT=%s OS_AUTH_TYPE=none; run the baremetal '
            'CLI inside the lab with: ip netns exec %s .venv/bin/baremetal '
            '...' % (stack.lab.ironic_url, stack.lab.netns))


def cmd_deploy(stack, args):
    stack.up()
    runner = scenarios.Scenarios(stack)
    node = settings.NODES[args.node]
    if stack.lab.with_openstack and node.name == 'bios':
        # What doc/source/nova-flavors.rst describes, through Nova.
        outcome = scenarios.Outcome('nova-server-create')
        try:
            runner.nova_server_create(outcome)
        except Exception as exc:
            say('server create failed: %s: %s' % (type(exc).__name__, exc))
            return 1
        record = outcome.deploys[-1]
    else:
        runner.library('raid1-lvm', schemes.raid1_lvm(node.boot_mode))
        deploy.undeploy(stack.client, node)
        say('== deploy %s with the two-disk RAID1 + LVM scheme'
            % node.domain)
        record = deploy.deploy(stack.lab, stack.client, node,
                               instance_info=runner.instance_info(
                                   capabilities={'fa_scheme': 'raid1-lvm'}),
                               say=say)
        if record.state != 'active':
            say('deploy failed: %s' % record.last_error)
            return 1
    say(report.phases(stack.timings, 'Lab up:'))
    say(report.marker(record))
    say(report.deploy_timing(record))
    say('The node stays active; "tools/lab.sh down" removes the lab.')
    return 0


def cmd_test(stack, args):
    started = time.monotonic()
    if not args.keep_going_from_existing:
        stack.down()
    if stack.lab.openstack is None:
        # Nova's scenarios need the control plane; the others do not.
        stack = stack_module.Stack(lab=settings.Lab(
            openstack=scenarios.need_openstack(args.scenario)), say=say)
    stack.up()
    outcomes = scenarios.run(stack, args.scenario or None)
    say('')
    say(report.phases(stack.timings, 'Lab up:'))
    say(report.scenarios(outcomes))
    say('test mode took %.0f s' % (time.monotonic() - started))
    passed = all(o.passed for o in outcomes)
    if not passed:
        say('logs and consoles kept in %s' % report.keep_logs(stack.lab))
    if not args.keep:
        stack.down()
    return 0 if passed else 1


def cmd_down(stack, args):
    stack.down()
    say('lab removed')


def cmd_status(stack, args):
    say('processes: %s' % ', '.join(
        '%s (%s)' % (n, 'running' if stack.registry.alive(n) else 'dead')
        for n in stack.registry.names()) or 'none')


def main(argv=None):
    parser = argparse.ArgumentParser(prog='tools/lab.sh',
                                     description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command')
    up = commands.add_parser('up', help='install, build, start and enroll')
    run = commands.add_parser('deploy', help='up, then deploy one node '
                              '(the default command)')
    run.add_argument('--node', choices=sorted(settings.NODES),
                     default='bios')
    test = commands.add_parser('test', help='run the scenarios on a fresh '
                               'lab, then remove it')
    test.add_argument('--scenario', action='append',
                      choices=scenarios.ALL,
                      help='run only this scenario (repeatable)')
    test.add_argument('--keep', action='store_true',
                      help='leave the lab up afterwards')
    test.add_argument('--keep-going-from-existing', action='store_true',
                      help='reuse a lab that is up instead of starting '
                      'from nothing')
    for command in (up, run, test):
        command.add_argument(
            '--openstack', action='store_true', default=None,
            help='also run Keystone, Glance, Placement, Neutron and Nova '
            '(Ironic behind Keystone); test mode does when a Nova '
            'scenario is selected')
    commands.add_parser('down', help='remove everything the lab made')
    commands.add_parser('status', help='the lab\'s processes')
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(['deploy'] + list(argv or sys.argv[1:]))
    handler = {'up': cmd_up, 'deploy': cmd_deploy, 'test': cmd_test,
               'down': cmd_down, 'status': cmd_status}[args.command]
    try:
        host.require_root()
        lab = settings.Lab(openstack=getattr(args, 'openstack', None))
        return handler(stack_module.Stack(lab=lab, say=say), args) or 0
    except Exception as exc:
        say('lab: error: %s: %s' % (type(exc).__name__, exc))
        return 2


if __name__ == '__main__':
    sys.exit(main())
