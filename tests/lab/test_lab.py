"""The lab's test mode end to end: ``tools/lab.sh test`` builds (or
reuses) the ramdisk and the test OS images, brings up the lab in its own
network namespace (Ironic with fuel-agent behind Keystone, Glance,
Placement, Neutron and Nova from PyPI on MariaDB and RabbitMQ, dnsmasq,
an HTTP server, libvirt VMs behind virtualbmc and sushy-tools) and runs
every scenario, the BIOS node's through ``openstack server ...``, the
UEFI node's through ``baremetal node ...``; see tools/lab/scenarios.py.

Nothing is mocked. Needs root; skipped otherwise, or with ``FA_LAB=0``.
``FA_LAB_SCENARIOS`` (comma separated) runs a subset.
"""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0,
                       reason='the lab needs root (network namespaces, '
                              'libvirt, apt-get)'),
    pytest.mark.skipif(os.environ.get('FA_LAB') == '0',
                       reason='FA_LAB=0 asks to leave the lab out'),
]


def test_lab_scenarios(capsys):
    argv = [os.path.join(ROOT, 'tools', 'lab.sh'), 'test']
    for name in filter(None, os.environ.get('FA_LAB_SCENARIOS',
                                            '').split(',')):
        argv += ['--scenario', name.strip()]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=3600)
    # The lab's own report (phases, scenarios, timings), shown whatever
    # the outcome: it is the measurement CI keeps.
    report = result.stdout[result.stdout.rfind('Lab up:'):]
    with capsys.disabled():
        print('\n' + (report if 'Lab up:' in result.stdout
                       else result.stdout[-8000:]))
    assert result.returncode == 0, result.stdout[-8000:]
    assert re.search(r'^(\d+) passed, 0 failed$', result.stdout,
                     re.MULTILINE)
