"""A small real OpenStack around the lab's Ironic (``--openstack``):
Keystone, Glance, Placement, Neutron and Nova (API, conductor,
scheduler, and nova-compute with the Ironic virt driver), from their
PyPI releases, on MariaDB and RabbitMQ from Debian's packages; all in
the lab's namespace, started and stopped by the lab like its other
daemons.

Neutron is there because Nova needs a network service even for servers
created with ``--nic none``: deleting a server asks Neutron for the
server's ports. It runs its API alone (ML2, flat type driver, no
mechanism drivers, no agents); Ironic keeps its ``noop`` network
interface, so the node itself never meets Neutron.

The services run from their own virtualenv in the lab's cache, keyed by
the pinned versions below, so a second ``up`` installs nothing; their
WSGI applications are served by gunicorn.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from lab import host
from lab import procs

# The releases of one OpenStack series (2026.2), as on PyPI.
PACKAGES = ('keystone==30.0.0', 'glance==33.0.0',
            'openstack-placement==16.0.0', 'neutron==29.0.0',
            'nova==34.0.0', 'PyMySQL', 'gunicorn',
            'python-openstackclient', 'osc-placement')
DEB_PACKAGES = ('mariadb-server-core', 'mariadb-client-core',
                'rabbitmq-server')
REGION = 'RegionOne'
# One password for the lab's database, bus and service users: the lab
# lives in its own namespace and is removed with ``down``.
PASSWORD = 'fa-lab-openstack'
SERVICE_PROJECT = 'service'
# name -> (port, path of the endpoint, service type)
ENDPOINTS = {
    'keystone': (5000, '/v3', 'identity'),
    'glance': (9292, '', 'image'),
    'placement': (8778, '', 'placement'),
    'neutron': (9696, '', 'network'),
    'nova': (8774, '/v2.1', 'compute'),
}
# The databases each service migrates (nova: its API database, cell0
# and the one cell).
DATABASES = ('keystone', 'glance', 'placement', 'neutron', 'nova_api',
             'nova', 'nova_cell0', 'ironic')
MYSQL_PORT = 3306
WSGI_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'wsgi_server.py')
RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'
AMQP_PORT = 5672
# Users the services authenticate as; each has admin and service roles
# in the service project (Ironic's default policy lets the service role
# of that project act for Nova).
SERVICE_USERS = ('glance', 'placement', 'neutron', 'nova', 'ironic')


class OpenStackError(Exception):
    pass


# -- installation -------------------------------------------------------------

def venv_dir(lab):
    digest = hashlib.sha256('\n'.join(PACKAGES).encode()).hexdigest()[:12]
    return os.path.join(lab.cache_dir, 'openstack-venv-' + digest)


def bin_path(lab, name):
    return os.path.join(venv_dir(lab), 'bin', name)


def install(lab, say):
    """Debian's MariaDB and RabbitMQ (their services are not started:
    Debian's policy-rc.d is set for the install), and the services'
    virtualenv."""
    host.install_debs(DEB_PACKAGES, say, no_service_start=True)
    venv = venv_dir(lab)
    if os.path.exists(os.path.join(venv, '.complete')):
        return 'reused from the cache'
    shutil.rmtree(venv, ignore_errors=True)
    say('   creating %s (pip: %s)' % (venv, ' '.join(PACKAGES)))
    subprocess.run(['python3', '-m', 'venv', venv], check=True)
    result = subprocess.run(
        [os.path.join(venv, 'bin', 'pip'), 'install', '-q',
         '--disable-pip-version-check'] + list(PACKAGES),
        capture_output=True, text=True)
    if result.returncode:
        raise OpenStackError('pip install failed:\n' + result.stderr[-3000:])
    with open(os.path.join(venv, '.complete'), 'w'):
        pass
    return 'installed'


# -- MariaDB and RabbitMQ -----------------------------------------------------

def db_url(lab, name):
    return 'mysql+pymysql://lab:%s@%s:%d/%s?charset=utf8' % (
        PASSWORD, lab.address, MYSQL_PORT, name)


def transport_url(lab):
    return 'rabbit://lab:%s@%s:%d/' % (PASSWORD, lab.address, AMQP_PORT)


def _port_open(address, port):
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def start_mariadb(lab, registry):
    data = lab.path('mariadb', 'data')
    socket_path = lab.path('mariadb', 'mysqld.sock')
    fresh = not os.path.isdir(data)
    if fresh:
        os.makedirs(data)
        subprocess.run(['mariadb-install-db', '--datadir=' + data,
                        '--user=root', '--skip-test-db',
                        '--auth-root-authentication-method=socket'],
                       check=True, capture_output=True)
    if not registry.alive('mariadb'):
        registry.start('mariadb', [
            'mariadbd', '--no-defaults', '--datadir=' + data,
            '--socket=' + socket_path, '--bind-address=' + lab.address,
            '--port=%d' % MYSQL_PORT, '--user=root', '--skip-log-bin',
            '--pid-file=' + lab.path('mariadb', 'mysqld.pid'),
            # A lab's database: speed over durability.
            '--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0',
            '--innodb-buffer-pool-size=256M', '--max-connections=500',
            '--character-set-server=utf8mb3',
            '--collation-server=utf8mb3_general_ci'])
        procs.wait_until(lambda: os.path.exists(socket_path),
                         'MariaDB', 60, registry, 'mariadb')
    statements = ["CREATE USER IF NOT EXISTS 'lab'@'%%' IDENTIFIED BY '%s'"
                  % PASSWORD,
                  "GRANT ALL PRIVILEGES ON *.* TO 'lab'@'%'"]
    statements += ['CREATE DATABASE IF NOT EXISTS %s' % name
                   for name in DATABASES]
    subprocess.run(['mariadb', '--socket=' + socket_path, '-u', 'root',
                    '-e', '; '.join(statements)], check=True,
                   capture_output=True)


def start_rabbitmq(lab, registry):
    base = lab.path('rabbitmq')
    os.makedirs(base, exist_ok=True)
    conf = os.path.join(base, 'rabbitmq.conf')
    with open(conf, 'w') as f:
        f.write('# Written by the lab (tools/lab).\n'
                'listeners.tcp.1 = %s:%d\n'
                'default_user = lab\ndefault_pass = %s\n'
                'loopback_users = none\n' % (lab.address, AMQP_PORT,
                                              PASSWORD))
    env = dict(os.environ, HOME=base,
               RABBITMQ_NODENAME='rabbit@localhost',
               RABBITMQ_CONFIG_FILE=conf[:-len('.conf')],
               RABBITMQ_MNESIA_BASE=os.path.join(base, 'mnesia'),
               RABBITMQ_LOG_BASE=os.path.join(base, 'log'),
               RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(base, 'plugins'),
               RABBITMQ_DIST_PORT='25672',
               ERL_EPMD_ADDRESS='127.0.0.1')
    for name in ('mnesia', 'log'):
        os.makedirs(os.path.join(base, name), exist_ok=True)
    env['RABBITMQ_FEATURE_FLAGS_FILE'] = os.path.join(base, 'mnesia',
                                                      'feature_flags')
    with open(os.path.join(base, 'plugins'), 'w') as f:
        f.write('[].\n')
    # The server itself, not Debian's wrapper, which changes to the
    # rabbitmq user and its /var/lib/rabbitmq.
    env['RABBITMQ_LOGS'] = '-'
    registry.start('rabbitmq', [RABBITMQ_SERVER], env=env)
    procs.wait_until(lambda: _port_open(lab.address, AMQP_PORT),
                     'RabbitMQ', 120, registry, 'rabbitmq')


# -- configuration ------------------------------------------------------------

def keystone_url(lab):
    return 'http://%s:%d/v3' % (lab.address, ENDPOINTS['keystone'][0])


def endpoint_url(lab, name):
    port, path, _ = ENDPOINTS[name]
    return 'http://%s:%d%s' % (lab.address, port, path)


def auth_section(lab, user, project=SERVICE_PROJECT):
    """A keystoneauth password section for ``user``."""
    return '\n'.join([
        'auth_type = password',
        'auth_url = %s' % keystone_url(lab),
        'username = %s' % user,
        'password = %s' % PASSWORD,
        'user_domain_name = Default',
        'project_name = %s' % project,
        'project_domain_name = Default',
        'region_name = %s' % REGION,
        ''])


def authtoken_section(lab, user):
    return '[keystone_authtoken]\nwww_authenticate_uri = %s\n' \
        'memcached_servers =\nservice_token_roles_required = true\n' \
        '%s' % (keystone_url(lab), auth_section(lab, user))


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('# Written by the lab (tools/lab).\n' + text)
    return path


def write_configs(lab, paste_files=True):
    """Every service's configuration under ``<state>/openstack``; their
    paths by service. ``paste_files``: copy the WSGI pipelines the
    services ship (from their virtualenv) beside them."""
    r = lambda *p: lab.path('openstack', *p)  # noqa: E731
    for name in ('keystone/fernet-keys', 'keystone/credential-keys',
                 'glance/images', 'nova/state', 'nova/locks',
                 'neutron/locks'):
        os.makedirs(r(name), exist_ok=True)
    files = {}
    files['keystone'] = _write(r('keystone', 'keystone.conf'), f"""
[DEFAULT]
log_file = {lab.path('logs', 'keystone-app.log')}
[database]
connection = {db_url(lab, 'keystone')}
[token]
provider = fernet
[fernet_tokens]
key_repository = {r('keystone', 'fernet-keys')}
[credential]
key_repository = {r('keystone', 'credential-keys')}
""")
    etc = os.path.join(venv_dir(lab), 'etc')

    def paste(service, name):
        if paste_files:
            shutil.copy(os.path.join(etc, service, name), r(service, name))
    paste('glance', 'glance-api-paste.ini')
    files['glance'] = _write(r('glance', 'glance-api.conf'), f"""
[DEFAULT]
enabled_backends = file:file
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = {r('glance', 'images')}
[database]
connection = {db_url(lab, 'glance')}
[paste_deploy]
flavor = keystone
config_file = {r('glance', 'glance-api-paste.ini')}
{authtoken_section(lab, 'glance')}
[oslo_concurrency]
lock_path = {r('glance')}
""")
    files['placement'] = _write(r('placement', 'placement.conf'), f"""
[api]
auth_strategy = keystone
[placement_database]
connection = {db_url(lab, 'placement')}
{authtoken_section(lab, 'placement')}
""")
    paste('neutron', 'api-paste.ini')
    files['neutron'] = _write(r('neutron', 'neutron.conf'), f"""
[DEFAULT]
core_plugin = ml2
# The router and port_forwarding plugins load the database models that
# listing ports joins (Port.port_forwardings); no L3 agent runs.
service_plugins = router,port_forwarding
auth_strategy = keystone
transport_url = {transport_url(lab)}
api_paste_config = {r('neutron', 'api-paste.ini')}
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
[database]
connection = {db_url(lab, 'neutron')}
{authtoken_section(lab, 'neutron')}
[oslo_concurrency]
lock_path = {r('neutron', 'locks')}
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers =
[ml2_type_flat]
flat_networks = *
""")
    paste('nova', 'api-paste.ini')
    nova = f"""
[DEFAULT]
transport_url = {transport_url(lab)}
compute_driver = ironic.IronicDriver
debug = true
host = fa-lab-compute
my_ip = {lab.address}
state_path = {r('nova', 'state')}
# Bare metal: the node is the whole host, nothing is held back.
reserved_host_memory_mb = 0
reserved_host_disk_mb = 0
# A clean shutdown (before a rescue) waits this long for the guest; the
# test image ignores the ACPI power button, so Nova then powers off hard.
shutdown_timeout = 15
# The resource tracker's pass over Ironic's nodes (every periodic run,
# about a minute, by default): a cleaned node is offered sooner.
update_resources_interval = 10
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = {r('nova', 'api-paste.ini')}
{{databases}}{authtoken_section(lab, 'nova')}
[placement]
{auth_section(lab, 'placement')}
[neutron]
{auth_section(lab, 'neutron')}
[glance]
{auth_section(lab, 'glance')}
[ironic]
{auth_section(lab, 'ironic')}
[scheduler]
# New nodes become hosts without a nova-manage call.
discover_hosts_in_cells_interval = 10
# One node: a failed build is the user's answer, not a retry elsewhere.
max_attempts = 1
[compute]
# Ironic nodes report in through nova-compute's resource tracker.
resource_provider_association_refresh = 10
[oslo_concurrency]
lock_path = {r('nova', 'locks')}
[oslo_messaging_notifications]
driver = noop
[service_user]
send_service_user_token = false
"""
    files['nova'] = _write(r('nova', 'nova.conf'), nova.replace(
        '{databases}', f"""[api_database]
connection = {db_url(lab, 'nova_api')}
[database]
connection = {db_url(lab, 'nova')}
"""))
    # nova-compute reaches the database through nova-conductor only.
    files['nova-compute'] = _write(r('nova', 'nova-compute.conf'),
                                   nova.replace('{databases}', ''))

    return files


def ironic_auth_config(lab):
    """What the lab's ironic.conf gets in this mode: Keystone auth, and
    Glance, Neutron and Nova reached with Ironic's service user."""
    return f"""
[DEFAULT]
# Ironic's default policy scopes a service user to its own project's
# nodes unless this is on; nova-compute must see every node.
rbac_service_role_elevated_access = true
[keystone_authtoken]
www_authenticate_uri = {keystone_url(lab)}
memcached_servers =
{auth_section(lab, 'ironic')}
[glance]
{auth_section(lab, 'ironic')}
[neutron]
{auth_section(lab, 'ironic')}
[nova]
{auth_section(lab, 'ironic')}
[service_catalog]
{auth_section(lab, 'ironic')}
"""


# -- starting -----------------------------------------------------------------

def _manage(lab, argv, what):
    result = subprocess.run(['ip', 'netns', 'exec', lab.netns] + argv,
                            capture_output=True, text=True)
    if result.returncode:
        raise OpenStackError('%s failed: %s' % (
            what, (result.stderr or result.stdout)[-3000:]))
    return result.stdout


def _gunicorn(lab, registry, name, app, env):
    port = ENDPOINTS[name][0]
    registry.start(name, [bin_path(lab, 'python'), WSGI_SERVER,
                          '%s:%d' % (lab.address, port), app],
                   env=dict(os.environ, **env))
    procs.wait_until(lambda: _port_open(lab.address, port),
                     '%s on port %d' % (name, port), 120, registry, name)


def start_keystone(lab, registry, conf):
    b = lambda name: bin_path(lab, name)  # noqa: E731
    fresh = not os.listdir(lab.path('openstack', 'keystone', 'fernet-keys'))
    _manage(lab, [b('keystone-manage'), '--config-file', conf, 'db_sync'],
            'keystone-manage db_sync')
    if fresh:
        for step in ('fernet_setup', 'credential_setup'):
            _manage(lab, [b('keystone-manage'), '--config-file', conf, step,
                          '--keystone-user', 'root', '--keystone-group',
                          'root'], 'keystone-manage ' + step)
    url = keystone_url(lab)
    _manage(lab, [b('keystone-manage'), '--config-file', conf, 'bootstrap',
                  '--bootstrap-password', PASSWORD,
                  '--bootstrap-admin-url', url,
                  '--bootstrap-internal-url', url,
                  '--bootstrap-public-url', url,
                  '--bootstrap-region-id', REGION], 'keystone bootstrap')
    _gunicorn(lab, registry, 'keystone', 'keystone.wsgi.api:application',
              {'OS_KEYSTONE_CONFIG_FILES': conf})


def migrate(lab, files):
    """Every service's database schema."""
    b = lambda name: bin_path(lab, name)  # noqa: E731
    _manage(lab, [b('glance-manage'), '--config-file', files['glance'],
                  'db_sync'], 'glance-manage db_sync')
    _manage(lab, [b('placement-manage'), '--config-file',
                  files['placement'], 'db', 'sync'], 'placement-manage')
    _manage(lab, [b('neutron-db-manage'), '--config-file', files['neutron'],
                  'upgrade', 'heads'], 'neutron-db-manage')
    nova = [b('nova-manage'), '--config-file', files['nova']]
    _manage(lab, nova + ['api_db', 'sync'], 'nova-manage api_db sync')
    cells = _manage(lab, nova + ['cell_v2', 'list_cells'], 'list_cells')
    if 'cell0' not in cells:
        _manage(lab, nova + ['cell_v2', 'map_cell0', '--database_connection',
                             db_url(lab, 'nova_cell0')], 'map_cell0')
    if 'cell1' not in cells:
        _manage(lab, nova + ['cell_v2', 'create_cell', '--name', 'cell1'],
                'create_cell')
    _manage(lab, nova + ['db', 'sync'], 'nova-manage db sync')


def start_services(lab, registry, files):
    """Glance, Placement, Neutron's API, Nova's API, conductor and
    scheduler; nova-compute comes after Ironic (see start_compute)."""
    d = lambda name: os.path.dirname(files[name])  # noqa: E731
    _gunicorn(lab, registry, 'glance', 'glance.wsgi.api:application',
              {'OS_GLANCE_CONFIG_DIR': d('glance')})
    _gunicorn(lab, registry, 'placement',
              'placement.wsgi.api:application',
              {'OS_PLACEMENT_CONFIG_DIR': d('placement')})
    _gunicorn(lab, registry, 'neutron', 'neutron.wsgi.api:application',
              {'OS_NEUTRON_CONFIG_FILES': files['neutron']})
    _gunicorn(lab, registry, 'nova', 'nova.wsgi.osapi_compute:application',
              # The paste file first: Nova loads its pipeline from it.
              {'OS_NOVA_CONFIG_DIR': d('nova'),
               'OS_NOVA_CONFIG_FILES': 'api-paste.ini;nova.conf'})
    for service in ('nova-conductor', 'nova-scheduler'):
        registry.start(service, [bin_path(lab, service), '--config-file',
                                 files['nova']])


def start_compute(lab, registry, files):
    registry.start('nova-compute', [bin_path(lab, 'nova-compute'),
                                    '--config-file', files['nova-compute']])


# -- Keystone's catalogue and users -------------------------------------------

class Keystone:
    """Just enough of Keystone's v3 API to register the lab's services
    (urllib: the lab runs in Ironic's venv, not the services' one)."""

    def __init__(self, lab, system_scope=False):
        self.lab = lab
        self.system_scope = system_scope
        self.token = None
        self.issued = 0

    def current_token(self):
        """A token at most half an hour old (Keystone's last an hour)."""
        if not self.token or time.monotonic() - self.issued > 1800:
            self.login()
        return self.token

    def call(self, method, path, body=None, token=True):
        headers = {'Content-Type': 'application/json'}
        if token:
            headers['X-Auth-Token'] = self.token
        request = urllib.request.Request(
            keystone_url(self.lab) + path, method=method, headers=headers,
            data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                text = reply.read()
                subject = reply.headers.get('X-Subject-Token')
        except urllib.error.HTTPError as exc:
            raise OpenStackError('keystone %s %s: %s %s' % (
                method, path, exc.code, exc.read().decode()[:500]))
        return (json.loads(text) if text else None), subject

    def login(self):
        body = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': 'admin', 'domain': {'id': 'default'},
                'password': PASSWORD}}},
            'scope': ({'system': {'all': True}} if self.system_scope else
                      {'project': {'name': 'admin',
                                   'domain': {'id': 'default'}}})}}
        _, self.token = self.call('POST', '/auth/tokens', body, token=False)
        self.issued = time.monotonic()

    def find(self, kind, name, **filters):
        query = urllib.parse.urlencode(dict(name=name, **filters))
        items = self.call('GET', '/%s?%s' % (kind, query))[0][kind]
        return items[0]['id'] if items else None

    def ensure(self, kind, name, body, **filters):
        found = self.find(kind, name, **filters)
        if found:
            return found
        singular = kind[:-1]
        return self.call('POST', '/' + kind,
                         {singular: dict(body, name=name)})[0][singular]['id']


def register(lab):
    """The service project, the services' users with their roles, and
    the catalogue's endpoints."""
    keystone = Keystone(lab)
    procs.wait_until(lambda: _try(keystone.login), 'Keystone login', 60)
    project = keystone.ensure('projects', SERVICE_PROJECT,
                              {'domain_id': 'default'})
    roles = {name: keystone.ensure('roles', name, {})
             for name in ('admin', 'service')}
    for user in SERVICE_USERS:
        user_id = keystone.ensure('users', user, {
            'domain_id': 'default', 'password': PASSWORD})
        for role in roles.values():
            keystone.call('PUT', '/projects/%s/users/%s/roles/%s'
                          % (project, user_id, role))
    for name, (_, _, kind) in dict(
            ENDPOINTS, ironic=(lab.ironic_port, '', 'baremetal')).items():
        if name == 'keystone':
            continue
        service = keystone.ensure('services', name, {'type': kind})
        url = (lab.ironic_url if name == 'ironic'
               else endpoint_url(lab, name))
        existing = keystone.call('GET', '/endpoints?service_id=%s'
                                 % service)[0]['endpoints']
        for interface in ('public', 'internal', 'admin'):
            if not any(e['interface'] == interface for e in existing):
                keystone.call('POST', '/endpoints', {'endpoint': {
                    'service_id': service, 'interface': interface,
                    'url': url, 'region_id': REGION}})


def _try(action):
    try:
        action()
        return True
    except (OSError, OpenStackError):
        return False


# -- the operator's environment -----------------------------------------------

def admin_env(lab, system_scope=False):
    """OS_* variables of the lab's admin, for the ``openstack`` and
    ``baremetal`` CLIs (Ironic wants system scope for fleet-wide
    operations)."""
    env = {'OS_AUTH_URL': keystone_url(lab), 'OS_USERNAME': 'admin',
           'OS_PASSWORD': PASSWORD, 'OS_USER_DOMAIN_NAME': 'Default',
           'OS_REGION_NAME': REGION, 'OS_IDENTITY_API_VERSION': '3',
           'OS_INTERFACE': 'public'}
    if system_scope:
        env['OS_SYSTEM_SCOPE'] = 'all'
    else:
        env.update(OS_PROJECT_NAME='admin', OS_PROJECT_DOMAIN_NAME='Default')
    return env


def write_openrc(lab):
    """``<state>/openstack/admin-openrc``: the admin's OS_* variables for
    a shell (project scope, as Nova's API wants)."""
    path = lab.path('openstack', 'admin-openrc')
    with open(path, 'w') as f:
        f.write('# Written by the lab (tools/lab). For Ironic\'s fleet-wide '
                'calls add OS_SYSTEM_SCOPE=all\n# and unset OS_PROJECT_NAME '
                'OS_PROJECT_DOMAIN_NAME.\n')
        for key, value in sorted(admin_env(lab).items()):
            f.write('export %s=%s\n' % (key, value))
    return path


def describe():
    return 'MariaDB, RabbitMQ, Keystone, Glance, Placement, Neutron, Nova'


def start(lab, registry, say):
    """Database, bus, Keystone, the catalogue, then every service but
    nova-compute (it needs Ironic, which the stack starts next)."""
    for name in ('mariadb', 'rabbitmq', 'openstack'):
        os.makedirs(lab.path(name), exist_ok=True)
    with open(lab.path('openstack', 'mode'), 'w') as f:
        f.write(describe() + '\n')
    started = time.monotonic()
    start_mariadb(lab, registry)
    start_rabbitmq(lab, registry)
    files = write_configs(lab)
    say('   MariaDB and RabbitMQ up (%.0f s)' % (time.monotonic() - started))
    start_keystone(lab, registry, files['keystone'])
    register(lab)
    say('   Keystone up, services registered (%.0f s)'
        % (time.monotonic() - started))
    migrate(lab, files)
    say('   databases migrated (%.0f s)' % (time.monotonic() - started))
    start_services(lab, registry, files)
    say('   Glance, Placement, Neutron, Nova API/conductor/scheduler up '
        '(%.0f s)' % (time.monotonic() - started))
    return files
