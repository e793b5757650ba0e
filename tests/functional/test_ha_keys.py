"""A conductor that did not start the agent finishes the deploy, through a
real standalone Ironic.

Conductor "a" (host conductor-a, its own key_dir) boots the ramdisk
with a key derived from the shared ``[fuel_agent]key_secret_file`` and
starts the agent on the first heartbeat; then it stops. Conductor "b" (host
conductor-b, another, empty key_dir, the same secret and database) takes
the node over through Ironic's hash ring and finishes it: by the
fallback poll (an fa-heartbeat that heartbeats once), or by the agent's
status in the heartbeats of a running fa-heartbeat (Ironic API 1.72).
Neither conductor ever writes a private key; the agent runs once.

The harness of test_standalone_ironic.py and test_fast_track.py (real
Ironic processes, real fa-heartbeat, a real SSH server standing in for
the ramdisk's sshd, the real agent writing a loop device); the BMC is
Ironic's ``fake`` power interface. Two conductors one after another, not
at once: they share a sqlite database, which one process at a time uses,
and with sqlite Ironic keeps the hash ring static and never marks a
conductor dead, so "a" stops cleanly (SIGTERM: it unregisters) rather
than being killed; killing conductors is the multi-conductor lab's part.
"""

import base64
import os
import re
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_fast_track  # noqa: E402
from test_standalone_ironic import boot_ramdisk  # noqa: E402
from test_standalone_ironic import enroll  # noqa: E402

pytestmark = test_fast_track.pytestmark


@pytest.fixture
def cloud(tmp_path):
    """test_fast_track's cloud without fast track or automated cleaning,
    not started, with the conductors' shared secret; become() runs it as
    one conductor or the other."""
    generator = test_fast_track.make_cloud(tmp_path, fast_track=False,
                                           start=False)
    c = next(generator)
    c.secret = os.path.join(c.root, 'key-secret')
    fd = os.open(c.secret, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(base64.b64encode(os.urandom(32)) + b'\n')
    with open(c.config) as f:
        text = f.read()
    text = text.replace(
        '[fuel_agent]\n', '[fuel_agent]\nkey_secret_file = %s\n' % c.secret)
    c.base_config = text
    try:
        yield c
    finally:
        next(generator, None)


def become(cloud, name, poll_interval):
    """Run Ironic as conductor ``name``, with its own key_dir."""
    key_dir = os.path.join(cloud.root, 'keys-' + name)
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    text = re.sub(r'(?m)^host = .*$', 'host = conductor-' + name,
                  cloud.base_config)
    text = re.sub(r'(?m)^key_dir = .*$', 'key_dir = ' + key_dir, text)
    text = re.sub(r'(?m)^status_poll_interval = .*$',
                  'status_poll_interval = %d' % poll_interval, text)
    if name != 'b':  # b's log is ironic.log, the one Cloud.tail shows
        text = text.replace('log_file = %s/ironic.log' % cloud.root,
                            'log_file = %s/ironic-%s.log'
                            % (cloud.root, name))
    with open(cloud.config, 'w') as f:
        f.write(text)
    first = cloud.process is None
    if not first:
        cloud.output.close()
    cloud.start(create_schema=first)
    return key_dir


def files(directory):
    return [os.path.join(r, f) for r, _ds, fs in os.walk(directory)
            for f in fs]


def start_then_stop_a(cloud, mac, ramdisk_boot):
    """Deploy on conductor a until its agent runs, then stop a."""
    a_keys = become(cloud, 'a', poll_interval=3600)  # a never polls
    uuid = enroll(cloud, 'fa-ha-' + mac[-2:], mac, cloud.loop)
    cloud.baremetal('node', 'deploy', uuid)
    cloud.wait_for(uuid, ['wait call-back'])
    ramdisk = ramdisk_boot(uuid)
    deadline = time.monotonic() + 60
    while 'fa_agent_started_at' not in \
            cloud.node(uuid)['driver_internal_info']:
        assert time.monotonic() < deadline, cloud.tail()
        time.sleep(0.3)
    cloud.stop()
    return uuid, ramdisk, a_keys


def starts(ramdisk):
    """Agent start scripts the ramdisk ran (the marker mkdir)."""
    return [c for c in ramdisk.server.commands if 'setsid nohup' in c] \
        if hasattr(ramdisk, 'server') else \
        [c for c in ramdisk.commands if 'setsid nohup' in c]


def check_finished(cloud, uuid, ramdisk, key_dirs):
    node = cloud.wait_for(uuid, ['active', 'deploy failed'], timeout=120)
    assert node['provision_state'] == 'active', node['last_error']
    assert node['conductor'] == 'conductor-b'
    with open(cloud.loop, 'rb') as f:
        assert f.read(len(cloud.image)) == cloud.image
    assert len(starts(ramdisk)) == 1  # the agent ran once, a started it
    for directory in key_dirs:
        assert files(directory) == [], files(directory)
    info = node['driver_internal_info']
    assert 'fa_key_nonce' not in info  # the operation is over
    with open(cloud.secret) as f:
        assert f.read().strip() not in repr(node)
    return node


def test_second_conductor_finishes_by_the_poll(cloud):
    mac = '52:54:00:fa:0a:01'
    uuid, ramdisk, a_keys = start_then_stop_a(
        cloud, mac, lambda uuid: boot_ramdisk(cloud, uuid, mac))
    try:
        b_keys = become(cloud, 'b', poll_interval=1)
        check_finished(cloud, uuid, ramdisk, [a_keys, b_keys])
    finally:
        ramdisk.stop()


def test_second_conductor_finishes_by_the_heartbeat_status(cloud):
    mac = '52:54:00:fa:0a:02'
    extra = ['--status-file', os.path.join(cloud.remote, 'run',
                                           'status.json'),
             '--exit-code-file', os.path.join(cloud.remote, 'run', 'deploy',
                                              'exit_code'),
             '--status-interval', '2']
    uuid, ramdisk, a_keys = start_then_stop_a(
        cloud, mac, lambda uuid: test_fast_track.Ramdisk(
            cloud, uuid, extra, mac=mac))
    try:
        b_keys = become(cloud, 'b', poll_interval=3600)  # b never polls
        node = check_finished(cloud, uuid, ramdisk, [a_keys, b_keys])
    finally:
        ramdisk.stop()
    with open(os.path.join(cloud.root, 'ironic.log')) as f:
        log = f.read()
    assert 'says the agent has succeeded' in log
    # The poll never ran on b: no "polling" lock was taken there.
    assert 'polling the fuel-agent status' not in log
    assert node['driver_internal_info']['agent_status'] == 'end'
