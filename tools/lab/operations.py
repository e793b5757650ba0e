"""Lifecycle operations other than a deploy (inspect, provide, rescue,
unrescue, undeploy), run the way an operator runs them and watched from
outside: the provision state through Ironic's API and the power-ons
through libvirt (a new domain id at every power on)."""

import dataclasses
import time

from lab import virt


class OperationError(Exception):
    pass


@dataclasses.dataclass
class Operation:
    """One ``baremetal node <verb>``: where it ended and what it cost."""

    node: str
    verb: str
    state: str = None
    last_error: str = None
    seconds: float = None
    power_ons: int = 0

    def line(self):
        return '%s -> %s in %.0f s, power-ons %d' % (
            self.verb, self.state, self.seconds or 0, self.power_ons)


def run(lab, client, node, args, until, failed=(), timeout=1200,
        say=print, quiet_args=False, start=None):
    """``baremetal node <args[0]> <node> <args[1:]>``, then poll until the
    provision state is in ``until`` (returned) or in ``failed`` (the
    Operation is returned with that state; the caller checks). The
    ``quiet_args`` form prints the verb only (a rescue password is an
    argument). ``start()``, when given, is run instead of the command
    (what Nova is asked to do); ``args[0]`` then only names it."""
    verb = args[0]
    record = Operation(node.domain, verb)
    running = virt.domain_id(lab, node)
    seen = set()
    if start:
        start()
    else:
        if quiet_args:
            say('$ baremetal node %s %s ...' % (verb, node.domain))
        client.baremetal('node', verb, node.domain, *args[1:],
                         quiet=quiet_args)
    started = time.monotonic()
    last_state = None
    while True:
        domain = virt.domain_id(lab, node)
        if domain not in (None, running):
            seen.add(domain)
        found = client.node(node.domain)
        state = found['provision_state']
        if state != last_state:
            say('  %s (%.0f s)' % (state, time.monotonic() - started))
            last_state = state
        if state in until or state in failed:
            break
        if time.monotonic() - started > timeout:
            raise OperationError('%s of %s: still in %s after %d s '
                                 '(last_error: %s)' % (
                                     verb, node.domain, state, timeout,
                                     found['last_error']))
        time.sleep(1)
    record.state = state
    record.last_error = found['last_error']
    record.seconds = round(time.monotonic() - started, 1)
    record.power_ons = len(seen)
    return record
