"""pytest setup shared by every test.

Ironic's own test base is used for the driver tests. Importing
``ironic.tests.unit`` first selects oslo.service's threading backend before
anything imports ``ironic.common``; loading the fake hardware type here
makes the first driver load (which shells out) happen outside a test,
where Ironic's TestCase forbids subprocesses. Agent tests do not need
Ironic, so this is skipped when it is not installed.
"""

try:
    import ironic.tests.unit  # noqa: F401
    import ironic.drivers.fake_hardware  # noqa: F401
except ImportError:  # the agent alone, as in the ramdisk
    pass


# -- CI phase timings ----------------------------------------------------
# Every run ends with the seconds spent per test directory (the phases
# of a CI run: unit, security, functional, qemu, lab), so each CI log
# shows where its time went without a separate profiler.

_PHASE_SECONDS = {}
_FILE_SECONDS = {}


def _phase_of(nodeid):
    parts = nodeid.split('/')
    if len(parts) > 2 and parts[0] == 'tests':
        return parts[1]
    return parts[0]


def pytest_runtest_logreport(report):
    phase = _phase_of(report.nodeid)
    _PHASE_SECONDS[phase] = _PHASE_SECONDS.get(phase, 0.0) + report.duration
    path = report.nodeid.split('::')[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _PHASE_SECONDS:
        return
    terminalreporter.section('phase timings (setup + call + teardown)')
    total = sum(_PHASE_SECONDS.values())
    for phase, seconds in sorted(_PHASE_SECONDS.items(),
                                 key=lambda item: -item[1]):
        terminalreporter.write_line('%-12s %8.1f s  %5.1f %%' % (
            phase, seconds, 100.0 * seconds / total if total else 0))
    terminalreporter.write_line('%-12s %8.1f s' % ('all tests', total))
    terminalreporter.write_line('slowest files:')
    for path, seconds in sorted(_FILE_SECONDS.items(),
                                key=lambda item: -item[1])[:8]:
        terminalreporter.write_line('  %8.1f s  %s' % (seconds, path))
