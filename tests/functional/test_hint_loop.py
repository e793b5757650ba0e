"""Root device hints on real loop devices (root only).

The agent's own discovery (``lsblk`` + udev, ``fa_agent.discovery``)
reads this machine's disks, two sparse loop devices among them; the
default layout's hints as the conductor hands them over are planned on
that inventory, and the disk chosen must be the one Ironic's
``match_root_device_hints`` picks from the same devices. Loop devices
have no serial, wwn or by-path link, so only ``name`` and ``size`` can
be told apart here; the other fields are covered on
lsblk fixtures in tests/unit/driver/test_driver_hint_seam.py.
"""

import dataclasses
import os
import subprocess

import pytest

from fa_agent import discovery
from fa_agent import runner
from fa_agent.scheme import planner
from fa_agent.scheme import validator
from ironic.common import utils as ironic_utils

MIB = 1024 * 1024
# Odd sizes, so that no other loop device on the machine has them.
SIZES_MIB = (1237, 1301)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason='needs root to attach loop devices'),
    pytest.mark.skipif(not os.path.exists('/dev/loop-control'),
                       reason='no loop device support in this kernel'),
]


@pytest.fixture
def loops(tmp_path):
    attached = []
    try:
        for n, size in enumerate(SIZES_MIB):
            backing = tmp_path / ('disk%d' % n)
            with open(backing, 'wb') as f:
                f.truncate(size * MIB)
            attached.append(subprocess.run(
                ['losetup', '-f', '--show', str(backing)], check=True,
                capture_output=True, text=True).stdout.strip())
        yield attached
    finally:
        for device in attached:
            subprocess.run(['losetup', '-d', device], check=False)


def whole_disk(match):
    return validator.load({'version': 1, 'storage': [
        {'type': 'disk', 'id': 'root_disk', 'match': match}],
        'images': [{'url': 'http://127.0.0.1:1/i.raw', 'format': 'raw',
                    'target': 'root_disk'}]})


def test_agent_and_ironic_pick_the_same_loop_device(loops):
    devices = discovery.disks(runner.Runner())
    names = [d.name for d in devices]
    for device in loops:
        assert device in names
    ironic_view = [dataclasses.asdict(d) for d in devices]
    small, big = loops
    cases = [
        ({'name': big}, big),
        ({'name': small.replace('/dev/', '')}, small),
        ({'size': '<range-in> [ 1.2 1.21 ]'}, small),
        ({'size': '<range-in> ( 1.27 1.28 )', 'name': '<in> loop'}, big),
    ]
    for hints, expected in cases:
        plan = planner.plan(whole_disk(hints), devices)
        assert plan.path('root_disk') == expected, hints
        if not hints.get('name', '/').startswith('/') and \
                not hints['name'].startswith('<'):
            # A short name is this project's addition: Ironic matches
            # full paths only.
            continue
        ironic = ironic_utils.match_root_device_hints(ironic_view, hints)
        assert ironic['name'] == expected, hints
