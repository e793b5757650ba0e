"""The real Ironic of tools/bench_conductor.py: its configuration, node
enrolment and deploys through its REST API, and what is read from the
outside while it runs (its database read-only, /proc for its CPU and
memory).

The process is started and stopped by the ``Cloud`` class of
tests/functional/test_standalone_ironic.py (``ironic-dbsync``, then the
single ``ironic`` process: API and conductor, noauth,
``rpc_transport = none``), on MariaDB (Debian's ``mariadbd``, a server of
the benchmark's own, as conductors run in production) or on sqlite (the
embedded quick path).
"""

import concurrent.futures
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'functional'))
from test_standalone_ironic import Cloud  # noqa: E402

# Relative remote paths: each simulated ramdisk runs commands in, and
# maps SFTP paths into, its own root directory (bench_conductor_farm).
REMOTE_WORK_DIR = 'run/fa-agent/deploy'
STATUS_FILE = 'run/fa-agent/status.json'
LOG_FILE = 'var/log/fa-agent/provision.log'
EXIT_CODE_FILE = REMOTE_WORK_DIR + '/exit_code'

DESIGNS = ('heartbeat', 'baseline')


def config_text(root, port, image_port, agent_command, key_file, nodes,
                design, db_url, db_max_pool_size=None):
    """ironic.conf for one run. Ironic's defaults are kept except where
    the comments say why."""
    pool = ('' if db_max_pool_size is None else
            '# --db-max-pool-size (oslo.db default 5)\nmax_pool_size = %d\n'
            % db_max_pool_size)
    poll_workers = ('# polling baseline: one node after another, like '
                    'the old poll\nstatus_poll_workers = 1\n'
                    if design == 'baseline' else '')
    return f"""
[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = fa-bench
state_path = {root}/state
tempdir = {root}
# INFO, not debug: debug logging of 1000 nodes would be measured as
# conductor CPU.
debug = false
log_file = {root}/ironic.log
enabled_hardware_types = fuel-manual
enabled_deploy_interfaces = fuel-agent
enabled_boot_interfaces = ipxe
enabled_power_interfaces = fake
enabled_management_interfaces = noop
enabled_network_interfaces = noop
enabled_inspect_interfaces = no-inspect
enabled_console_interfaces = no-console
enabled_raid_interfaces = no-raid
enabled_rescue_interfaces = no-rescue
enabled_vendor_interfaces = no-vendor
enabled_bios_interfaces = no-bios
enabled_firmware_interfaces = no-firmware
[api]
host_ip = 127.0.0.1
port = {port}
[database]
connection = {db_url}
{pool}[dhcp]
dhcp_provider = none
[conductor]
# No cleaning: "provide" must make nodes available without a ramdisk.
automated_clean = false
# Default 250: a larger N would have its deploys refused.
max_concurrent_deploy = {max(250, nodes)}
[deploy]
http_url = http://127.0.0.1:{image_port}
http_root = {root}/httpboot
default_boot_mode = bios
[pxe]
tftp_root = {root}/tftpboot
tftp_master_path = {root}/master
images_path = {root}/images
instance_master_path = {root}/master/instance
[service_catalog]
# The ipa-api-url Ironic would give the ramdisk (no Keystone here).
endpoint_override = http://127.0.0.1:{port}
[agent]
deploy_logs_local_path = {root}/ramdisk-logs
[fuel_agent]
# One static operator key: every simulated ramdisk authorises it.
ssh_key_file = {key_file}
agent_command = {agent_command}
remote_work_dir = {REMOTE_WORK_DIR}
status_file = {STATUS_FILE}
log_file = {LOG_FILE}
key_dir = {root}/state/keys
scheme_library_dir = {root}/schemes
{poll_workers}"""


class BenchCloud(Cloud):
    """Cloud with the benchmark's configuration."""

    def write_bench_config(self, text):
        for name in ('state', 'httpboot', 'tftpboot', 'master', 'images',
                     'schemes', 'ramdisk-logs'):
            os.makedirs(os.path.join(self.root, name), exist_ok=True)
        self.config = os.path.join(self.root, 'ironic.conf')
        with open(self.config, 'w') as f:
            f.write(text)

    def call(self, method, path, body=None, timeout=120):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api + path, data=data, method=method,
            headers={'Content-Type': 'application/json',
                     'X-OpenStack-Ironic-API-Version': 'latest'})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                text = reply.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError('%s %s: HTTP %d %s' % (
                method, path, exc.code, exc.read(500).decode('utf-8',
                                                             'replace')))
        return json.loads(text) if text else None

    def cpu_seconds(self):
        return sum(cpu for cpu, _rss in process_stats(self.process.pid))

    def peak_rss_mib(self):
        return max((rss for _cpu, rss in process_stats(self.process.pid)),
                   default=0) / 1024.0


def mac_of(index):
    return '52:54:00:%02x:%02x:%02x' % (
        (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff)


def _parallel(function, items, workers=8):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


def enroll(cloud, count, image_url, image_sha256, deploy_urls, progress):
    """Create ``count`` fuel-manual nodes (fuel-agent deploy, ipxe boot,
    fake power: no BMC) with a port each, and make them available; their
    UUIDs in index order. ``deploy_urls``: the (kernel, ramdisk) the
    ipxe boot interface prepares (never booted)."""
    def create(index):
        node = cloud.call('POST', '/v1/nodes', {
            'name': 'bench-%04d' % index, 'driver': 'fuel-manual',
            'deploy_interface': 'fuel-agent', 'boot_interface': 'ipxe',
            'power_interface': 'fake', 'management_interface': 'noop',
            'network_interface': 'noop',
            'driver_info': {'deploy_kernel': deploy_urls[0],
                            'deploy_ramdisk': deploy_urls[1]},
            # A root device hint: no lsblk on the ramdisk for the
            # default layout.
            'properties': {'root_device': {'name': '/dev/sda'}},
            'instance_info': {'image_source': image_url,
                              'image_os_hash_algo': 'sha256',
                              'image_os_hash_value': image_sha256}})
        cloud.call('POST', '/v1/ports', {'address': mac_of(index),
                                         'node_uuid': node['uuid']})
        return node['uuid']

    uuids = _parallel(create, range(count))
    progress('enrolled %d nodes' % count)
    for target, state in (('manage', 'manageable'),
                          ('provide', 'available')):
        _parallel(lambda u: cloud.call(
            'PUT', '/v1/nodes/%s/states/provision' % u, {'target': target}),
            uuids)
        wait_all(cloud.database, uuids, (state,), 600, progress,
                 'waiting for %s' % state)
    return uuids


def deploy_all(cloud, uuids):
    _parallel(lambda u: cloud.call(
        'PUT', '/v1/nodes/%s/states/provision' % u, {'target': 'active'}),
        uuids)


# -- the database: sqlite or MariaDB ------------------------------------------

class SqliteDatabase:
    """Ironic's sqlite file; read while it runs (WAL mode: a reader does
    not hold up its writers)."""

    def __init__(self, path):
        self.path = path
        self.url = 'sqlite:///' + path

    def rows(self, query):
        conn = sqlite3.connect('file:%s?mode=ro' % self.path, uri=True,
                               timeout=30)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()

    def copy_to(self, target):
        """A copy of this database as ``target`` (a file path)."""
        source, copy = sqlite3.connect(self.path), sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()
        return SqliteDatabase(target)


class MariaDB:
    """A MariaDB server of the benchmark's own: Debian's ``mariadbd`` on
    a unix socket in the work directory, no TCP listener, root without a
    password (only the socket's directory guards it). Commits are
    written at once but flushed to disk once a second
    (``innodb_flush_log_at_trx_commit = 2``): the benchmark measures the
    conductor, not this machine's fsync."""

    def __init__(self, root):
        self.root = root
        self.socket = os.path.join(root, 'mysqld.sock')
        self.process = None

    def start(self):
        data = os.path.join(self.root, 'data')
        if not shutil.which('mariadbd'):
            raise RuntimeError('mariadbd not found: apt-get install '
                               'mariadb-server, or --database sqlite')
        if not os.path.isdir(data):
            os.makedirs(data)
            subprocess.run(['mariadb-install-db', '--datadir=' + data,
                            '--user=%s' % _user(), '--skip-test-db',
                            '--auth-root-authentication-method=normal'],
                           check=True, capture_output=True)
        self.output = open(os.path.join(self.root, 'mariadbd.log'), 'w')
        self.process = subprocess.Popen(
            ['mariadbd', '--no-defaults', '--datadir=' + data,
             '--socket=' + self.socket, '--skip-networking',
             '--user=%s' % _user(), '--skip-log-bin',
             '--pid-file=' + os.path.join(self.root, 'mysqld.pid'),
             '--innodb-flush-log-at-trx-commit=2',
             '--innodb-buffer-pool-size=256M', '--max-connections=1000',
             '--character-set-server=utf8mb3',
             '--collation-server=utf8mb3_general_ci'],
            stdout=self.output, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self._connect().close()
                return self
            except Exception:
                if self.process.poll() is not None or \
                        time.monotonic() > deadline:
                    raise RuntimeError('MariaDB did not start, see %s'
                                       % self.output.name)
                time.sleep(0.3)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)
            self.output.close()

    def _connect(self, database=None):
        import pymysql  # the driver Ironic uses here (test-requirements)
        return pymysql.connect(unix_socket=self.socket, user='root',
                               database=database, autocommit=True)

    def execute(self, *statements, database=None):
        conn = self._connect(database)
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                return cursor.fetchall()
        finally:
            conn.close()

    def database(self, name):
        """A new, empty database ``name`` (an earlier one is dropped)."""
        self.execute('DROP DATABASE IF EXISTS %s' % name,
                     'CREATE DATABASE %s' % name)
        return MariaDBDatabase(self, name)


class MariaDBDatabase:
    """One database of the benchmark's MariaDB."""

    def __init__(self, server, name):
        self.server, self.name = server, name
        self.url = ('mysql+pymysql://root@localhost/%s?unix_socket=%s'
                    '&charset=utf8' % (name, server.socket))

    def rows(self, query):
        return self.server.execute(query, database=self.name)

    def copy_to(self, target):
        """A copy of this database as database ``target`` (a name)."""
        copy = self.server.database(target)
        tables = [row[0] for row in self.rows('SHOW TABLES')]
        self.server.execute('SET FOREIGN_KEY_CHECKS = 0', *[
            statement for table in tables for statement in (
                'CREATE TABLE %s.%s LIKE %s.%s' % (target, table, self.name,
                                                  table),
                'INSERT INTO %s.%s SELECT * FROM %s.%s' % (
                    target, table, self.name, table))])
        return copy


def _user():
    return pwd.getpwuid(os.getuid()).pw_name


def read_nodes(database):
    """{uuid: (provision_state, provision_updated_at, driver_internal_info)}
    read from Ironic's database directly, not through its API, so
    watching costs Ironic's process nothing."""
    rows = database.rows('SELECT uuid, provision_state, '
                         'provision_updated_at, driver_internal_info '
                         'FROM nodes')
    return {uuid: (state, str(updated) if updated else None,
                   json.loads(info) if info else {})
            for uuid, state, updated, info in rows}


def count_states(nodes, uuids):
    counts = {}
    for uuid in uuids:
        state = nodes.get(uuid, ('missing',))[0]
        counts[state] = counts.get(state, 0) + 1
    return counts


def wait_all(database, uuids, states, timeout, progress, what,
             every=10.0):
    deadline = time.monotonic() + timeout
    shown = 0.0
    while True:
        counts = count_states(read_nodes(database), uuids)
        if sum(counts.get(s, 0) for s in states) == len(uuids):
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError('%s: still %s after %d s'
                               % (what, counts, timeout))
        if time.monotonic() - shown > every:
            progress('%s: %s' % (what, counts))
            shown = time.monotonic()
        time.sleep(1.0)


# -- /proc --------------------------------------------------------------------

def _session_pids(session):
    pids = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6, session id
            pids.append(int(name))
    return pids


def process_stats(session):
    """[(CPU seconds (utime + stime), VmHWM KiB)] of every process of the
    session ``session`` (Ironic is started in a session of its own)."""
    tick = os.sysconf('SC_CLK_TCK')
    result = []
    for pid in _session_pids(session):
        try:
            with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            with open('/proc/%d/status' % pid) as f:
                hwm = [int(line.split()[1]) for line in f
                       if line.startswith('VmHWM:')]
        except OSError:
            continue
        # utime and stime are fields 14 and 15 (11, 12 after the name).
        result.append(((int(fields[11]) + int(fields[12])) / tick,
                       hwm[0] if hwm else 0))
    return result


def load_average():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])
