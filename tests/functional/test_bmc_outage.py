"""The BMC unreachable for a while during a deploy, through a real
standalone Ironic and a real Redfish BMC emulator.

There is no machine here, so its BMC is simulated by sushy-tools'
``sushy-emulator --fake`` on 127.0.0.1: a real Redfish service (HTTP
basic authentication, Systems, power actions, boot device and boot
mode) whose "machines" are records in its state directory. Each node is
a ``fuel-redfish`` node (one System each) with Ironic's ``redfish``
power and management interfaces and its ``ipxe`` boot interface, so
every power and boot-device action of the deploy is a real Redfish
request. The outage is the emulator's process killed (SIGKILL) and, in
the first scenario, started again on the same port with the same state
directory: a BMC that reboots or drops off the management network
forgets nothing about the machine, and the machine (here: the ramdisk,
heartbeating, and its agent) keeps running. A stopped port refuses
connections at once; a BMC that goes silent instead also costs every
attempt ``[redfish]connect_timeout``.

The fake driver applies a power change after a random 1-11 s; the
emulator runs with that delay fixed at its minimum (1 s) to keep the
test short and deterministic (``_EMULATOR``).

Ironic 39 retries an unreachable BMC on two levels: sushy (5.14) retries
each request 10 times, 3 s apart (27 s; Ironic sets no option for it),
and Ironic repeats that ``[redfish]connection_attempts`` times,
``connection_retry_interval`` apart (5 and 4 s by default: about 150 s
in all). The test sets ``connection_attempts = 1`` so that only sushy's
27 s remain; each Redfish call of a node whose BMC stays away then
fails after 27 s instead of about 150 s.

The rest is the harness of test_standalone_ironic.py and
test_fast_track.py: one real Ironic process (sqlite, noauth), real
fa-heartbeat heartbeating in the background, a real SSH server standing
in for the ramdisk's sshd, the real agent writing a real image to a
loop device.

The BMC goes away once the node waits for its ramdisk, so it is down
for the whole agent run; Ironic needs it next in the
``prepare_instance_boot`` step (boot mode, then persistent boot from
disk).

- Back while Ironic retries: the retry succeeds and the deploy goes
  ``active``; the agent ran once.
- Down past the retries: ``deploy failed``, last_error naming the step,
  the Redfish connection failure and the BMC's address; Ironic's power
  off after the failure fails too (27 s more, the node locked), so the
  machine stays on in the ramdisk. The image the agent wrote and its
  result stay; no agent start is pending, Ironic refuses the ramdisk's
  further heartbeats (the failure dropped its agent token) and nothing
  happens when the BMC returns: the operator deploys again (a new
  ramdisk, the agent writes again) or undeploys.

Ironic's power state sync is off in this harness; it skips nodes in
``wait call-back`` anyway, which is where a node is while its agent
runs. Needs root (loop devices); skipped otherwise.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import bcrypt
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_fast_track  # noqa: E402
from test_ha_keys import starts  # noqa: E402
from test_standalone_ironic import enroll  # noqa: E402
from test_standalone_ironic import free_port  # noqa: E402
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tools'))
from lab import redfish as lab_redfish  # noqa: E402

pytestmark = test_fast_track.pytestmark

# One System (id, MAC) per scenario.
BACK = ('fa0b0c00-0000-4000-8000-00000000b0c1', '52:54:00:fa:0b:01')
GONE = ('fa0b0c00-0000-4000-8000-00000000b0c2', '52:54:00:fa:0b:02')
SUSHY_RETRY = 'Transient error during Redfish request to '
IRONIC_RETRY = 'got a connection error from Redfish'

# sushy-emulator's own main(), with the fake driver's power-change delay
# (random.randint(1, 11) seconds) fixed at its lower bound.
_EMULATOR = """
import sys, types
from sushy_tools.emulator.resources.systems import fakedriver
fakedriver.random = types.SimpleNamespace(randint=lambda low, high: low)
from sushy_tools.emulator import main
sys.exit(main.main())
"""


class Bmc:
    """One sushy-emulator process on 127.0.0.1 serving fake Systems;
    stop() and start() again play the outage."""

    user, password = 'fa-admin', 'fa bmc p4ss'

    def __init__(self, directory, systems):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        # Few bcrypt rounds: the emulator checks them on every request.
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(4))
        htpasswd = os.path.join(directory, 'htpasswd')
        with open(htpasswd, 'w') as f:
            f.write('%s:%s\n' % (self.user, hashed.decode()))
        self.config = os.path.join(directory, 'emulator.conf')
        fake = [{'uuid': system_id, 'name': 'fa-bmc-' + system_id[-4:],
                 'power_state': 'Off', 'external_notifier': False,
                 'nics': [{'mac': mac, 'ip': '127.0.0.1'}]}
                for system_id, mac in systems]
        with open(self.config, 'w') as f:
            f.write('SUSHY_EMULATOR_LISTEN_IP = %r\n'
                    'SUSHY_EMULATOR_LISTEN_PORT = %d\n'
                    'SUSHY_EMULATOR_AUTH_FILE = %r\n'
                    'SUSHY_EMULATOR_STATE_DIR = %r\n'
                    'SUSHY_EMULATOR_FAKE_SYSTEMS = %r\n'
                    % ('127.0.0.1', self.port, htpasswd,
                       os.path.join(directory, 'state'), fake))
        self.log = open(os.path.join(directory, 'emulator.log'), 'a')
        self.process = None

    def path(self, system_id):
        return '/redfish/v1/Systems/' + system_id

    def driver_info(self, system_id):
        return {'redfish_address': self.url,
                'redfish_system_id': self.path(system_id),
                'redfish_username': self.user,
                'redfish_password': self.password}

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, '-c', _EMULATOR, '--config', self.config,
             '--fake'], stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while not lab_redfish.asks_for_credentials(self.url):
            assert self.running and time.monotonic() < deadline, \
                'the BMC emulator did not start'
            time.sleep(0.1)

    def stop(self):
        """Gone at once, as a BMC losing power or its network is (only
        the process group this test started)."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def close(self):
        self.stop()
        self.log.close()

    def system(self, system_id):
        """The System as the BMC reports it."""
        credentials = base64.b64encode(
            ('%s:%s' % (self.user, self.password)).encode()).decode()
        request = urllib.request.Request(
            self.url + self.path(system_id),
            headers={'Authorization': 'Basic ' + credentials})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.load(reply)


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    """test_fast_track's standalone Ironic (no fast track, no automated
    cleaning) with fuel-redfish and ``[redfish]connection_attempts = 1``,
    and the BMC emulator serving both scenarios' Systems."""
    generator = test_fast_track.make_cloud(
        tmp_path_factory.mktemp('bmc-outage'), fast_track=False, start=False)
    c = next(generator)
    c.bmc = Bmc(os.path.join(c.root, 'bmc'), [BACK, GONE])
    try:
        with open(c.config) as f:
            text = f.read()
        for old, new in (
                ('enabled_hardware_types = fuel-manual',
                 'enabled_hardware_types = fuel-redfish'),
                ('enabled_power_interfaces = fake',
                 'enabled_power_interfaces = redfish'),
                ('enabled_management_interfaces = noop',
                 'enabled_management_interfaces = redfish')):
            assert old in text, old
            text = text.replace(old, new)
        text += ('[redfish]\nconnection_attempts = 1\n'
                 'connection_retry_interval = 1\n')
        with open(c.config, 'w') as f:
            f.write(text)
        c.bmc.start()
        c.start()
        yield c
    finally:
        c.bmc.close()
        next(generator, None)


def log_since(cloud, offset):
    with open(os.path.join(cloud.root, 'ironic.log'), errors='replace') as f:
        f.seek(offset)
        return f.read()


def log_lines(cloud, offset, *words):
    return [line for line in log_since(cloud, offset).splitlines()
            if all(word in line for word in words)]


def settled(cloud, uuid, states, timeout=180):
    """The node once it is in one of ``states`` and unlocked (a failed
    deploy still powers the node off, holding the lock)."""
    deadline = time.monotonic() + timeout
    while True:
        node = cloud.node(uuid)
        if node['provision_state'] in states and node['reservation'] is None:
            return node
        assert time.monotonic() < deadline, (
            node['provision_state'], node['last_error'], cloud.tail())
        time.sleep(0.5)


def deploy_with_the_bmc_gone(cloud, name, system):
    """Deploy until the node waits for its ramdisk, kill the BMC, boot
    the ramdisk: the agent runs while the BMC is away. Returns the node,
    the ramdisk and the log offset of the outage."""
    system_id, mac = system
    if not cloud.bmc.running:
        cloud.bmc.start()
    with open(cloud.loop, 'r+b') as f:  # so that the image found is new
        f.write(bytes(len(cloud.image)))
        os.fsync(f.fileno())
    uuid = enroll(cloud, name, mac, cloud.loop, driver='fuel-redfish',
                  power='redfish', management='redfish',
                  driver_info=cloud.bmc.driver_info(system_id))
    cloud.baremetal('node', 'deploy', uuid)
    cloud.wait_for(uuid, ['wait call-back'])
    assert cloud.bmc.system(system_id)['PowerState'] == 'On'
    offset = os.path.getsize(os.path.join(cloud.root, 'ironic.log'))
    cloud.bmc.stop()
    return uuid, test_fast_track.Ramdisk(cloud, uuid, mac=mac), offset


def image_on_disk(cloud):
    with open(cloud.loop, 'rb') as f:
        return f.read(len(cloud.image)) == cloud.image


def test_bmc_back_while_ironic_retries_the_deploy_goes_active(cloud):
    started = time.monotonic()
    uuid, ramdisk, offset = deploy_with_the_bmc_gone(cloud, 'fa-bmc-back',
                                                     BACK)
    url = cloud.bmc.url + cloud.bmc.path(BACK[0])
    try:
        # The agent has run without the BMC; now the conductor needs it.
        deadline = time.monotonic() + 120
        while not log_lines(cloud, offset, SUSHY_RETRY, url):
            node = cloud.node(uuid)
            assert node['provision_state'] in ('wait call-back',
                                               'deploying') and \
                time.monotonic() < deadline, (node['provision_state'],
                                              node['last_error'],
                                              cloud.tail())
            time.sleep(0.2)
        node = cloud.node(uuid)
        assert node['provision_state'] == 'deploying'
        assert 'fa_agent_result' in node['driver_internal_info']
        cloud.bmc.start()
        node = settled(cloud, uuid, ['active', 'deploy failed'])
    finally:
        ramdisk.stop()
    print('BMC back while Ironic retries: %s after %.1f s; sushy retries '
          'logged: %d' % (node['provision_state'],
                          time.monotonic() - started,
                          len(log_lines(cloud, offset, SUSHY_RETRY, url))))
    assert node['provision_state'] == 'active', node['last_error']
    assert node['last_error'] is None
    assert node['power_state'] == 'power on'
    assert image_on_disk(cloud)
    assert len(starts(ramdisk)) == 1
    system = cloud.bmc.system(BACK[0])
    assert system['PowerState'] == 'On'
    assert system['Boot']['BootSourceOverrideTarget'] == 'Hdd'
    assert system['Boot']['BootSourceOverrideEnabled'] == 'Continuous'


def test_bmc_down_past_the_retries_the_deploy_fails_naming_it(cloud):
    started = time.monotonic()
    uuid, ramdisk, offset = deploy_with_the_bmc_gone(cloud, 'fa-bmc-gone',
                                                     GONE)
    try:
        node = settled(cloud, uuid, ['active', 'deploy failed'])
        print('BMC down past the retries: %s after %.1f s; last_error: %s'
              % (node['provision_state'], time.monotonic() - started,
                 node['last_error']))
        assert node['provision_state'] == 'deploy failed'
        error = node['last_error']
        assert error.startswith('Deploy step deploy.prepare_instance_boot '
                                'failed: '), error
        assert 'Redfish connection failed for node %s' % uuid in error
        assert cloud.bmc.url in error and 'Connection refused' in error
        assert 'Traceback' not in error
        # Once for the step, once for the power off after the failure.
        assert len(log_lines(cloud, offset, IRONIC_RETRY, uuid)) == 2
        # Nothing the agent did is lost: the image it wrote and its
        # result stay; no start is pending.
        assert image_on_disk(cloud)
        info = node['driver_internal_info']
        assert info['fa_agent_result']['devices']['root_disk']['path'] == \
            cloud.loop
        assert 'fa_agent_started_at' not in info
        assert len(starts(ramdisk)) == 1
        # The ramdisk still heartbeats; Ironic refuses it (the failure
        # dropped its agent token). The BMC back changes nothing by
        # itself: the node waits for the operator.
        deadline = time.monotonic() + 30
        while not log_lines(cloud, offset, 'POST /v1/heartbeat/' + uuid,
                            ' 400 '):
            assert time.monotonic() < deadline, 'no refused heartbeat'
            time.sleep(0.3)
        cloud.bmc.start()
        time.sleep(2)  # two fallback polls ([fuel_agent] 1 s)
        node = cloud.node(uuid)
        assert node['provision_state'] == 'deploy failed'
        assert node['last_error'] == error
        assert len(starts(ramdisk)) == 1
        assert image_on_disk(cloud)
        # The power off after the failure never reached the BMC.
        assert cloud.bmc.system(GONE[0])['PowerState'] == 'On'
    finally:
        ramdisk.stop()
