#!/usr/bin/env python3
"""Conductor scale benchmark (issue 14, item 4): many concurrent
fuel-agent deploys against one real Ironic conductor.

    .venv/bin/python tools/bench_conductor.py --nodes 10,100,500,1000 \\
        --agent-seconds 60 [--designs heartbeat,baseline] \\
        [--database mariadb|sqlite] [--work DIR]

What is real: Ironic 39 (one ``ironic`` process, API and conductor,
noauth, no RPC bus) on MariaDB (a server of the benchmark's own, from
Debian's package; ``--database sqlite``: on sqlite) with this driver's
``fuel-agent`` deploy interface on ``fuel-manual`` nodes with Ironic's
``ipxe`` boot interface
(it writes each node's iPXE config; Ironic's ``fake-hardware`` type
refuses out-of-tree deploy interfaces); the conductor's SSH sessions
(paramiko client) to one real SSH server per node on 127.0.0.1; the
ramdisks' lookups and heartbeats, made by fa-heartbeat's own main loop
(``fa_agent.cmd.heartbeat``, its default intervals) over HTTP; the start
script the conductor runs on the "ramdisk" (real ``sh``).

What is simulated, and why: there are no machines, so the BMC is
Ironic's ``fake`` power and ``noop`` management interfaces; the
ramdisks are SSH
servers in one process and heartbeat threads in another
(tools/bench_conductor_farm.py), each ramdisk with its own root
directory that the conductor's relative remote paths resolve in; the
agent is a shell script that reports two steps and succeeds after
``--agent-seconds`` (what is measured is the conductor's work around the
agent, not the agent). All ramdisks authorise one static operator key
(``[fuel_agent]ssh_key_file``) and share one host key, so no key is
generated per deploy. The benchmark's own load runs in processes other
than Ironic's, but on the same cores.

For each N and each design it measures, per deploy:
(a) the ramdisk's first heartbeat -> the agent started (the node's
    ``fa_agent_started_at``, read from Ironic's database while it runs:
    it is cleared once the deploy is done);
(b) the agent done (the fake agent's own exit time) -> the deploy
    finished (the node ``active``, its ``provision_updated_at``);
and for the run (deploy request to the last node done, not counting a
wait for nodes that never start): the CPU seconds
of Ironic's processes (utime + stime from /proc/<pid>/stat), the average
cores that is, and their peak RSS (VmHWM).

The designs: ``heartbeat``, the current one (heartbeats carry the
agent's status, API 1.72, and the final report finishes the deploy; the
periodic poll is a fallback), and ``baseline``, heartbeats without status
so the conductor learns of the end by polling over SSH, with
``[fuel_agent]status_poll_workers = 1`` (one node after another, as the
old poll did). Goal, reported against, not asserted: 1000 concurrent
deploys on one 2-core conductor, overhead <= 10 s each, conductor below
half a core on average.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_conductor_cloud as cloud_mod  # noqa: E402
import bench_conductor_farm as farm  # noqa: E402
from test_standalone_ironic import ImageServer  # noqa: E402
import fake_ramdisk  # noqa: E402

FARM = os.path.join(HERE, 'bench_conductor_farm.py')
GOAL_OVERHEAD = 10.0
GOAL_CORES = 0.5


# -- statistics and the table (pure) -------------------------------------

def percentile(values, fraction):
    """Nearest-rank percentile of ``values`` (None when empty)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values):
    """(median, p90, max) of ``values``; Nones when empty."""
    values = [v for v in values if v is not None]
    if not values:
        return (None, None, None)
    return (percentile(values, 0.5), percentile(values, 0.9), max(values))


def utc_epoch(text):
    """Seconds since the epoch of Ironic's naive UTC timestamps
    ('2024-01-02T03:04:05.123456' or with a space)."""
    if not text:
        return None
    moment = datetime.datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def overheads(nodes, started_at, first_heartbeat, agent_done):
    """Per node (a) first heartbeat -> agent started and (b) agent done
    -> active, as two lists. ``nodes``: {uuid: (state, updated_at, ..)};
    the other three: {uuid: time} (started_at ISO text, others epoch)."""
    a, b = [], []
    for uuid, (state, updated, *_rest) in nodes.items():
        start = utc_epoch(started_at.get(uuid))
        if start is not None and first_heartbeat.get(uuid) is not None:
            a.append(start - first_heartbeat[uuid])
        if state == 'active' and agent_done.get(uuid) is not None:
            b.append(utc_epoch(updated) - agent_done[uuid])
    return a, b


COLUMNS = (('N', 5, 'n', '%d'), ('design', 9, 'design', '%s'),
           ('done', 9, 'done', '%s'), ('wall s', 7, 'wall', '%.0f'),
           ('a med', 6, 'a0', '%.1f'), ('a p90', 6, 'a1', '%.1f'),
           ('a max', 6, 'a2', '%.1f'), ('b med', 6, 'b0', '%.1f'),
           ('b p90', 6, 'b1', '%.1f'), ('b max', 6, 'b2', '%.1f'),
           ('cpu s', 7, 'cpu', '%.0f'), ('cores', 5, 'cores', '%.2f'),
           ('rss MiB', 7, 'rss', '%.0f'), ('load start -> end', 30,
                                           'load', '%s'))
RATIO_KEYS = ('a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'cpu', 'cores', 'rss')


def _cell(value, fmt, width):
    text = '-' if value is None else fmt % value
    return text.rjust(width) if fmt != '%s' else text.ljust(width)


def row_values(result):
    """The table's values of one run's result dict."""
    values = dict(result)
    for key in ('a', 'b'):
        for i, v in enumerate(result[key]):
            values['%s%d' % (key, i)] = v
    values['done'] = '%d/%d' % (result['finished'], result['n'])
    values['load'] = '%s -> %s' % (result['load_start'], result['load_end'])
    return values


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def format_table(results):
    """The results table, then per N the ratio heartbeat/baseline."""
    header = ' '.join(_cell(name, '%s', width) if fmt == '%s'
                      else name.rjust(width)
                      for name, width, _key, fmt in COLUMNS)
    lines = [header, '-' * len(header)]
    by_n = {}
    for result in results:
        values = row_values(result)
        by_n.setdefault(result['n'], {})[result['design']] = values
        lines.append(' '.join(_cell(values.get(key), fmt, width)
                              for _name, width, key, fmt in COLUMNS))
        if result.get('note'):
            lines.append('      ^ %s' % result['note'])
    for n, designs in by_n.items():
        if 'heartbeat' in designs and 'baseline' in designs:
            h, b = designs['heartbeat'], designs['baseline']
            values = {key: ratio(h.get(key), b.get(key))
                      for key in RATIO_KEYS}
            values.update(n=n, design='hb/base', done='', wall=None,
                          load='')
            lines.append(' '.join(
                _cell(values.get(key), '%.2f' if key in RATIO_KEYS
                      else fmt, width)
                for _name, width, key, fmt in COLUMNS))
    lines.append('a: first heartbeat -> agent started; b: agent done -> '
                 'node active (seconds, over the N nodes); cpu/cores/rss: '
                 'Ironic\'s processes over the run')
    lines.append('goal: overhead <= %.0f s per deploy, conductor < %.1f '
                 'core on average, N=1000 on 2 cores'
                 % (GOAL_OVERHEAD, GOAL_CORES))
    return '\n'.join(lines)


# -- running ------------------------------------------------------------

class Shared:
    """What every run uses: keys, the fake agent, the image server."""

    def __init__(self, work, agent_seconds, database, db_max_pool_size=None,
                 db_ssl_disabled=False):
        self.work = work
        self.db_max_pool_size = db_max_pool_size
        self.db_ssl_disabled = db_ssl_disabled
        os.makedirs(work, exist_ok=True)
        self.mariadb = None
        if database == 'mariadb':
            self.mariadb = cloud_mod.MariaDB(
                os.path.join(work, 'mariadb')).start()
        self.operator_key = os.path.join(work, 'operator_key')
        key = fake_ramdisk.new_ed25519_key(self.operator_key)
        with open(self.operator_key + '.pub', 'w') as f:
            f.write('%s %s\n' % (key.get_name(), key.get_base64()))
        self.host_key = os.path.join(work, 'host_key')
        key = fake_ramdisk.new_ed25519_key(self.host_key)
        with open(self.host_key + '.pub', 'w') as f:
            f.write('%s %s\n' % (key.get_name(), key.get_base64()))
        agent = farm.write_fake_agent(os.path.join(work, 'fake-agent'))
        self.agent_command = '%s %s' % (agent, agent_seconds)
        images = os.path.join(work, 'images')
        os.makedirs(images, exist_ok=True)
        data = b'not written anywhere\n'
        with open(os.path.join(images, 'disk.raw'), 'wb') as f:
            f.write(data)
        self.image_sha256 = hashlib.sha256(data).hexdigest()
        self.image_server = ImageServer(images)
        self.image_url = 'http://127.0.0.1:%d/disk.raw' \
            % self.image_server.port
        # Served over HTTP, as sites serve them (or from Glance): Ironic
        # keeps those in its master image cache and downloads each once.
        # file:// ones it copies anew for every node, and those copies
        # race with the cache's clean-up when many nodes prepare at once
        # (Ironic 39: "No such file or directory: .../master/tmp...",
        # 2 of 10 nodes failed on MariaDB).
        self.deploy_urls = []
        for name in ('deploy.kernel', 'deploy.initramfs'):
            with open(os.path.join(images, name), 'wb') as f:
                f.write(b'not booted here\n')
            self.deploy_urls.append('http://127.0.0.1:%d/%s' % (
                self.image_server.port, name))


def say(label, message):
    print('[%s %s] %s | load %s' % (time.strftime('%H:%M:%S'), label,
                                    message, cloud_mod.load_average()),
          flush=True)


def start_cloud(shared, root, n, design, template=None):
    """Ironic for one run, on a new database: a copy of ``template``
    (the enrolled nodes), or an empty one with Ironic's schema."""
    cloud = cloud_mod.BenchCloud(root)
    name = os.path.basename(root).replace('-', '_')
    if shared.mariadb:
        cloud.database = (template.copy_to(name) if template
                          else shared.mariadb.database(name))
    else:
        path = os.path.join(root, 'ironic.sqlite')
        os.makedirs(root, exist_ok=True)
        cloud.database = (template.copy_to(path) if template
                          else cloud_mod.SqliteDatabase(path))
    url = cloud.database.url
    if shared.db_ssl_disabled:
        url += '&ssl_disabled=1'
    cloud.write_bench_config(cloud_mod.config_text(
        root, cloud.port, shared.image_server.port, shared.agent_command,
        shared.operator_key, n, design, url, shared.db_max_pool_size))
    try:
        cloud.start(create_schema=template is None)
    except BaseException:
        cloud.stop()  # its process may be up even though the API is not
        raise
    return cloud


def enroll_template(shared, n, label):
    """Enrol N nodes once; each design's run starts from a copy of this
    database (its nodes available)."""
    root = os.path.join(shared.work, 'n%d-enroll' % n)
    cloud = start_cloud(shared, root, n, 'heartbeat')
    try:
        uuids = cloud_mod.enroll(cloud, n, shared.image_url,
                                 shared.image_sha256, shared.deploy_urls,
                                 lambda m: say(label, m))
    finally:
        cloud.stop()
    return cloud.database, uuids


def spawn(argv, log):
    output = open(log, 'w')
    return subprocess.Popen([sys.executable, FARM] + argv, stdout=output,
                            stderr=subprocess.STDOUT,
                            start_new_session=True), output


def stop(process_and_log):
    process, output = process_and_log
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    output.close()


def start_ssh_farm(shared, root, directories):
    listing = os.path.join(root, 'ramdisks.json')
    with open(listing, 'w') as f:
        json.dump(directories, f)
    ports_file = os.path.join(root, 'ports.json')
    farm_process = spawn(['ssh', '--nodes', listing, '--ports', ports_file,
                          '--host-key', shared.host_key, '--authorized-key',
                          shared.operator_key + '.pub'],
                         os.path.join(root, 'ssh-farm.log'))
    deadline = time.monotonic() + 120
    while not os.path.exists(ports_file):
        if farm_process[0].poll() is not None or \
                time.monotonic() > deadline:
            raise RuntimeError('the SSH farm did not start, see %s' % root)
        time.sleep(0.2)
    with open(ports_file) as f:
        return farm_process, json.load(f)


def start_heartbeats(shared, root, api, ramdisks, design, args):
    listing = os.path.join(root, 'heartbeat-nodes.json')
    with open(listing, 'w') as f:
        json.dump(ramdisks, f)
    argv = ['heartbeat', '--nodes', listing, '--work', root,
            '--api-url', api, '--host-key-pub', shared.host_key + '.pub',
            '--status-file', cloud_mod.STATUS_FILE,
            '--exit-code-file', cloud_mod.EXIT_CODE_FILE,
            '--boot-spread', str(args.boot_spread)]
    if args.lookup_interval:
        argv += ['--lookup-interval', str(args.lookup_interval)]
    if design == 'baseline':
        argv.append('--no-status')
    return spawn(argv, os.path.join(root, 'heartbeats.log'))


def stalled(counts, total, started, quiet, stall_seconds):
    """Whether waiting on is pointless: nothing changed for
    ``stall_seconds`` (``quiet`` seconds so far) and every node whose
    agent was started (``started`` of them) has finished; the others
    are stuck before their agent (e.g. a ramdisk whose lookup answer was
    lost, so Ironic will not hand it its token again)."""
    finished = counts.get('active', 0) + counts.get('deploy failed', 0)
    return quiet >= stall_seconds and finished >= started and \
        finished < total


def watch(cloud, uuids, label, args, started_at, power_off):
    """Until every node is active or failed, or the run stalls or runs
    out of ``args.max_wait``: record each node's fa_agent_started_at while
    it is there, call ``power_off(uuid)`` for each node done, show
    progress. The last nodes read, why it stopped (None: all finished)
    and (Ironic's CPU seconds, time) when the last node finished.
    """
    deadline = time.monotonic() + args.max_wait
    shown = 0.0
    begin = changed = time.monotonic()
    last, finish, done, off = None, None, 0, set()
    while True:
        nodes = cloud_mod.read_nodes(cloud.database)
        for uuid in uuids:
            value = nodes.get(uuid, (None, None, {}))[2].get(
                'fa_agent_started_at')
            if value and uuid not in started_at:
                started_at[uuid] = value
        counts = cloud_mod.count_states(nodes, uuids)
        finished = counts.get('active', 0) + counts.get('deploy failed', 0)
        if (counts, len(started_at)) != last:
            last, changed = (counts, len(started_at)), time.monotonic()
        if finished > done:
            done, finish = finished, (cloud.cpu_seconds(), time.monotonic())
        for uuid in uuids:
            if uuid not in off and nodes.get(uuid, ('',))[0] in (
                    'active', 'deploy failed'):
                off.add(uuid)
                power_off(uuid)
        if time.monotonic() - shown >= 10 or finished == len(uuids):
            say(label, '+%.0fs agents started %d, %s' % (
                time.monotonic() - begin, len(started_at),
                ', '.join('%s %d' % kv for kv in sorted(counts.items()))))
            shown = time.monotonic()
        if finished == len(uuids):
            return nodes, None, finish
        if stalled(counts, len(uuids), len(started_at),
                   time.monotonic() - changed, args.stall_seconds):
            return nodes, ('%d node(s) never had their agent started; '
                           'nothing changed for %d s' % (
                               len(uuids) - finished,
                               args.stall_seconds)), finish
        if time.monotonic() > deadline:
            return nodes, ('did not finish within %d s of the ramdisks '
                           'booting' % args.max_wait), finish
        time.sleep(2.0)


def run_design(shared, n, design, template, uuids, args):
    label = 'N=%d %s' % (n, design)
    root = os.path.join(shared.work, 'n%d-%s' % (n, design))
    directories = [os.path.join(root, 'ramdisks', 'r%04d' % i)
                   for i in range(n)]
    say(label, 'starting Ironic and %d SSH servers' % n)
    cloud = start_cloud(shared, root, n, design, template=template)
    ssh_farm = beats = None
    started_at = {}
    try:
        ssh_farm, ports = start_ssh_farm(shared, root, directories)
        load_start = cloud_mod.load_average()
        cpu_start, wall_start = cloud.cpu_seconds(), time.monotonic()
        # One node first: it puts the deploy kernel and ramdisk into
        # Ironic's master image cache (see Shared.deploy_urls), as a
        # site's first deploy does, before the others read them there.
        cloud_mod.deploy_all(cloud, uuids[:1])
        waiting = ('wait call-back', 'deploy failed')
        cloud_mod.wait_all(cloud.database, uuids[:1], waiting, 600,
                           lambda m: say(label, m), 'warming the cache')
        cloud_mod.deploy_all(cloud, uuids[1:])
        cloud_mod.wait_all(cloud.database, uuids, waiting, 600,
                           lambda m: say(label, m), 'deploying')
        say(label, 'all %d nodes wait for their ramdisk; booting them' % n)
        beats = start_heartbeats(shared, root, cloud.api, [
            {'directory': d, 'mac': cloud_mod.mac_of(i), 'port': p}
            for i, (d, p) in enumerate(zip(directories, ports))],
            design, args)
        index = dict(zip(uuids, directories))
        nodes, stopped, finish = watch(
            cloud, uuids, label, args, started_at,
            lambda uuid: open(os.path.join(index[uuid], farm.POWERED_OFF),
                              'w').close())
        # Up to the last node done (not the wait for stuck ones).
        cpu_end, wall_end = finish or (cloud.cpu_seconds(),
                                       time.monotonic())
        cpu, wall = cpu_end - cpu_start, wall_end - wall_start
        rss = cloud.peak_rss_mib()
        load_end = cloud_mod.load_average()
    finally:
        for process in (beats, ssh_farm):
            if process:
                stop(process)
        cloud.stop()
    first = {u: farm.read_time(os.path.join(index[u], farm.FIRST_HEARTBEAT))
             for u in uuids}
    done = {u: farm.read_time(os.path.join(index[u], farm.AGENT_DONE))
            for u in uuids}
    a, b = overheads(nodes, started_at, first, done)
    counts = cloud_mod.count_states(nodes, uuids)
    result = {'n': n, 'design': design, 'finished': counts.get('active', 0),
              'wall': wall, 'a': summary(a), 'b': summary(b), 'cpu': cpu,
              'cores': cpu / wall if wall else None, 'rss': rss,
              'load_start': load_start, 'load_end': load_end}
    notes = [stopped] if stopped else []
    if counts.get('deploy failed'):
        notes.append('%d deploy failed' % counts['deploy failed'])
    result['note'] = '; '.join(notes)
    say(label, 'done: %s' % json.dumps(result))
    return result


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--nodes', default='10,100,500,1000',
                        help='node counts, comma separated '
                        '(default: %(default)s)')
    parser.add_argument('--agent-seconds', type=float, default=60,
                        help='how long each fake agent runs '
                        '(default: %(default)s)')
    parser.add_argument('--designs', default=','.join(cloud_mod.DESIGNS),
                        help='default: %(default)s')
    parser.add_argument('--max-wait', type=float, default=900,
                        help='give up on a run this many seconds after its '
                        'ramdisks booted (default: %(default)s)')
    parser.add_argument('--stall-seconds', type=float, default=180,
                        help='stop waiting once every started agent\'s '
                        'node has finished and nothing changed for this '
                        'long (default: %(default)s)')
    parser.add_argument('--boot-spread', type=float, default=0,
                        help='ramdisks boot at random within this many '
                        'seconds (default: all at once)')
    parser.add_argument('--lookup-interval', type=float,
                        help='fa-heartbeat --lookup-interval (default: '
                        'fa-heartbeat\'s own, 10 s)')
    parser.add_argument('--database', choices=('mariadb', 'sqlite'),
                        default='mariadb',
                        help='Ironic\'s database: MariaDB (a server of the '
                        'benchmark\'s own, as conductors run in '
                        'production) or sqlite (default: %(default)s)')
    parser.add_argument('--db-max-pool-size', type=int,
                        help='Ironic\'s [database]max_pool_size (default: '
                        'oslo.db\'s, 5; connections beyond it and '
                        'max_overflow are closed when returned)')
    parser.add_argument('--db-ssl-disabled', action='store_true',
                        help='ssl_disabled=1 in the MariaDB URL: PyMySQL '
                        'otherwise builds a TLS context for every new '
                        'connection, even on a unix socket')
    parser.add_argument('--work', help='directory for the runs (default: '
                        'a new temporary one, kept)')
    return parser.parse_args(argv)


def database_settings(args):
    """The database and its tuning, as the run's header and FINAL say."""
    return '%s, max pool %s, ssl %s' % (
        args.database, args.db_max_pool_size or 'default',
        'disabled' if args.db_ssl_disabled else 'preferred')


def main(argv=None):
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the finally blocks stop Ironic, the
    # farms and MariaDB (each in a process group of its own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    counts = [int(n) for n in args.nodes.split(',') if n]
    designs = [d for d in args.designs.split(',') if d]
    unknown = set(designs) - set(cloud_mod.DESIGNS)
    if unknown:
        sys.exit('unknown design(s): %s' % ', '.join(sorted(unknown)))
    work = args.work or tempfile.mkdtemp(prefix='fa-bench-conductor-')
    if args.db_max_pool_size is not None and args.db_max_pool_size < 1:
        sys.exit('--db-max-pool-size must be at least 1 (0 is no limit '
                 'to oslo.db)')
    if args.db_ssl_disabled and args.database != 'mariadb':
        sys.exit('--db-ssl-disabled is for --database mariadb')
    shared = Shared(work, args.agent_seconds, args.database,
                    args.db_max_pool_size, args.db_ssl_disabled)
    print('work directory %s; %d cores; load %s; database %s' % (
        work, os.cpu_count(), cloud_mod.load_average(),
        database_settings(args)), flush=True)
    results = []
    try:
        for n in counts:
            template, uuids = enroll_template(shared, n, 'N=%d enrol' % n)
            for design in designs:
                results.append(run_design(shared, n, design, template,
                                          uuids, args))
                print(format_table(results), flush=True)
    finally:
        shared.image_server.stop()
        if shared.mariadb:
            shared.mariadb.stop()
    print('\nFINAL (agent %.0f s, boot spread %.0f s, %s):\n%s' % (
        args.agent_seconds, args.boot_spread, database_settings(args),
        format_table(results)))


if __name__ == '__main__':
    main()
