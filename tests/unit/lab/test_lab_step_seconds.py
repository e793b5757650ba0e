"""Issue 11 item 4: the lab's deploy timing table shows the agent's
seconds per step, read from the node's fa_agent_step_seconds."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                'tools'))
from lab import deploy  # noqa: E402
from lab import report  # noqa: E402


def test_timing_table_lists_the_agent_steps_in_run_order():
    record = deploy.Deploy('node-bios', powered_on=1.0, first_heartbeat=64.0,
                           agent_started=66.0, agent_finished=378.0,
                           active=380.0, os_up=433.0, power_ons=2)
    # As the node stores them: sorted by name.
    record.step_seconds = deploy.agent_steps(
        {'bootloader': 50.1, 'cleanup': 0.5, 'discover': 0.4,
         'images': 100.0, 'target': 3.2})
    lines = report.deploy_timing(record).splitlines()
    at = lines.index('  agent steps (fa_agent_step_seconds):')
    assert [line.split()[0] for line in lines[at + 1:]] == [
        'discover', 'images', 'target', 'bootloader', 'cleanup']
    assert lines[at + 4].split()[1:] == ['50.1', 's']
    assert '  agent run' in '\n'.join(lines[:at])


def test_no_step_seconds_no_rows():
    record = deploy.Deploy('node-bios')
    assert 'agent steps' not in report.deploy_timing(record)
    assert deploy.agent_steps(None) is None


def test_steps_ironic_masks_are_left_out_of_both_tables():
    # Ironic's API shows driver_internal_info through oslo's
    # mask_dict_password, which masks the key "configdrive" (the lab's
    # first full test run died here with "must be real number, not str").
    from oslo_utils import strutils
    from lab import scenarios
    stored = {'configdrive': 0.0, 'images': 19.2, 'target': 1.0}
    shown = strutils.mask_dict_password(stored, '******')
    record = deploy.Deploy('node-bios', powered_on=1.0, os_up=90.0,
                           state='active')
    record.step_seconds = deploy.agent_steps(shown)
    assert record.step_seconds == {'images': 19.2, 'target': 1.0}
    outcome = scenarios.Outcome('x', passed=True, seconds=9.0,
                                deploys=[record])
    assert 'agent steps: images 19 s, target 1 s' in report.scenarios(
        [outcome])
    assert 'images' in report.deploy_timing(record)
