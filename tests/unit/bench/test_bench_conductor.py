"""The pure parts of tools/bench_conductor.py: its statistics and table,
the path mapping of the simulated ramdisks and the fake agent's status
files, which the driver's own reader must take. The benchmark itself
runs by hand (minutes, a real Ironic)."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                'tools'))
import bench_conductor  # noqa: E402
import bench_conductor_farm as farm  # noqa: E402
from fa_agent import status_report  # noqa: E402
from ironic_fa_driver import agent_control  # noqa: E402


def test_percentiles_are_nearest_rank():
    values = list(range(1, 11))  # 1..10
    assert bench_conductor.percentile(values, 0.5) == 5
    assert bench_conductor.percentile(values, 0.9) == 9
    assert bench_conductor.percentile([3.0], 0.9) == 3.0
    assert bench_conductor.percentile([], 0.5) is None
    assert bench_conductor.summary([10, 1, 7, None]) == (7, 10, 10)
    assert bench_conductor.summary([None]) == (None, None, None)


def test_overheads_use_started_at_and_the_active_time():
    nodes = {'u1': ('active', '2024-01-01 00:01:10.500000', {}),
             'u2': ('wait call-back', None, {})}
    base = bench_conductor.utc_epoch('2024-01-01T00:00:00')
    started = {'u1': '2024-01-01T00:00:02', 'u2': '2024-01-01T00:00:05'}
    first = {'u1': base + 1.5, 'u2': base + 1.0}
    done = {'u1': base + 62.0, 'u2': base + 70.0}
    a, b = bench_conductor.overheads(nodes, started, first, done)
    assert sorted(a) == [0.5, 4.0]
    assert b == [8.5]  # u2 is not active: no (b)


def test_table_has_rows_notes_and_the_ratio():
    def result(design, cpu, note=''):
        return {'n': 100, 'design': design, 'finished': 100, 'wall': 90.0,
                'a': (1.0, 2.0, 3.0), 'b': (4.0, 8.0, 9.0), 'cpu': cpu,
                'cores': cpu / 90.0, 'rss': 200.0, 'load_start': '1 1 1',
                'load_end': '2 2 2', 'note': note}
    text = bench_conductor.format_table([
        result('heartbeat', 30.0), result('baseline', 60.0, 'slow')])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ['N', 'design', 'done']
    heartbeat_row = [line for line in lines if 'heartbeat 100/100' in line]
    assert len(heartbeat_row) == 1 and ' 30 ' in heartbeat_row[0]
    assert any(line.strip() == '^ slow' for line in lines)
    ratio_row, = [line for line in lines if 'hb/base' in line]
    assert ' 0.50 ' in ratio_row  # cpu 30 / 60


def test_node_path_stays_in_the_ramdisk_root():
    root = '/srv/r0001'
    assert farm.node_path(root, 'run/fa-agent/status.json') == \
        '/srv/r0001/run/fa-agent/status.json'
    assert farm.node_path(root, '/run/x') == '/srv/r0001/run/x'
    assert farm.node_path(root, '../../etc/passwd') == '/srv/r0001/etc/passwd'
    assert farm.node_path(root, '/') == root


def test_fake_agent_reports_running_then_success(tmp_path):
    agent = farm.write_fake_agent(str(tmp_path / 'fake-agent'))
    status = 'run/fa-agent/status.json'
    (tmp_path / 'run' / 'fa-agent').mkdir(parents=True)
    process = subprocess.Popen(
        [agent, '0.6', '--input-data-file', 'x', '--data-driver', 'ironic',
         '--status-file', status, '--log-file', 'log'], cwd=str(tmp_path))
    path = tmp_path / status
    seen = set()
    while process.poll() is None:
        if path.exists():
            raw = path.read_bytes()
            seen.add(agent_control.interpret(raw, None).outcome)
    assert process.returncode == 0
    raw = path.read_bytes()
    document = json.loads(raw)
    assert document['state'] == 'succeeded'
    assert agent_control.interpret(raw, b'0\n').outcome == 'succeeded'
    assert status_report.from_files(raw, b'0\n').final
    assert 'running' in seen
    done = farm.read_time(str(tmp_path / farm.AGENT_DONE))
    started = farm.read_time(str(tmp_path / farm.AGENT_STARTED))
    assert done is not None and started is not None
    assert 0.5 <= done - started < 5


def test_heartbeat_argv_maps_status_paths_and_drops_status():
    class Args:
        host_key_pub = '/k.pub'
        max_wait = 100
        status_file = 'run/fa-agent/status.json'
        exit_code_file = 'run/fa-agent/deploy/exit_code'
        lookup_interval = None
        no_status = True
    node = {'directory': '/srv/r7', 'port': 2222, 'mac': '52:54:00:00:00:07'}
    argv = farm.heartbeat_argv(Args, node, '/cmdline', '/nics')
    assert argv[argv.index('--status-file') + 1] == \
        '/srv/r7/run/fa-agent/status.json'
    assert argv[argv.index('--exit-code-file') + 1] == \
        '/srv/r7/run/fa-agent/deploy/exit_code'
    assert argv[argv.index('--ssh-port') + 1] == '2222'
    assert '--no-status' in argv and '--lookup-interval' not in argv


def test_a_run_stalls_only_when_every_started_agent_finished():
    counts = {'active': 98, 'wait call-back': 2}
    assert bench_conductor.stalled(counts, 100, 98, 200, 180)
    assert not bench_conductor.stalled(counts, 100, 98, 100, 180)
    assert not bench_conductor.stalled(counts, 100, 100, 200, 180)
    assert not bench_conductor.stalled({'active': 100}, 100, 100, 999, 180)


def test_a_powered_off_ramdisk_stops_sleeping(tmp_path):
    class Stop(Exception):
        pass
    sleep = farm.ramdisk_sleep(str(tmp_path), Stop, step=0.01)
    sleep(0.02)  # not powered off: just sleeps
    (tmp_path / farm.POWERED_OFF).touch()
    try:
        sleep(30)
    except Stop:
        pass
    else:
        raise AssertionError('the ramdisk kept running')
