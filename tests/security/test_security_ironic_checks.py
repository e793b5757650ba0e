"""Item 9 (Ironic's own checks for what Ironic hands over), conductor
side: the image checksum goes through ``ironic.common.checksum_utils``
(checksum URLs fetched at deploy time from a real HTTP server on
loopback, ``[conductor]disable_support_for_checksum_files``, ``[agent]
allow_md5_checksum``), the configdrive's JSON form is built by
``ironic.conductor.configdrive_utils``, and ``file://`` URLs in schemes
and configdrives obey ``[conductor]file_url_allowed_paths`` and Ironic's
blocked system trees at validate time; the agent is started with the
same allow-list and md5 choice.
"""

import http.server
import json
import os
import sys
import threading

import fixtures
from ironic.common import exception

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'unit',
                                'driver'))

import driver_base  # noqa: E402
from ironic_fa_driver import agent_control  # noqa: E402
import test_driver_deploy_flow as flow  # noqa: E402
import test_driver_scheme_source as source_tests  # noqa: E402

SHA256 = 'c0' * 32
MD5 = 'd4' * 16


class _Sums(http.server.BaseHTTPRequestHandler):
    """Serves a SHA256SUMS file and counts who asked."""

    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        body = ('%s  other.img\n%s  disk.img\n' % ('ee' * 32, SHA256)).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class IronicChecksTestCase(flow.FlowTestCase):

    def validate(self, node):
        with self.task(node, shared=True) as task:
            task.driver.deploy.validate(task)

    def refused(self, node, expect):
        with self.task(node, shared=True) as task:
            exc = self.assertRaises(exception.InvalidParameterValue,
                                    task.driver.deploy.validate, task)
        self.assertIn(expect, str(exc))
        return str(exc)

    def node_with(self, **instance_info):
        info = {'image_source': 'http://127.0.0.1:1/disk.img'}
        info.update(instance_info)
        return self.deploying_node(instance_info=info)

    def agent_input(self):
        with open(agent_control.RemotePaths.from_conf().input_file) as f:
            return json.load(f)

    def agent_command(self):
        started, = [c for c in self.server.commands if 'setsid' in c]
        return started

    def sums_server(self):
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Sums)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        _Sums.requests = []
        return 'http://127.0.0.1:%d/SHA256SUMS' % server.server_address[1]

    # -- the checksum -------------------------------------------------------

    def test_md5_refused_when_ironic_refuses_it(self):
        self.config(allow_md5_checksum=False, group='agent')
        self.refused(self.node_with(image_checksum=MD5),
                     'instance_info.image_checksum: md5 checksums are not '
                     'allowed ([agent]allow_md5_checksum is false)')
        self.refused(self.node_with(image_os_hash_algo='md5',
                                    image_os_hash_value=MD5),
                     'instance_info.image_os_hash_value: md5 checksums')

    def test_md5_allowed_is_handed_to_the_agent(self):
        node = self.node_with(image_checksum=MD5)
        self.validate(node)
        self.deploy_to_agent(node, sleep=30)
        self.assertEqual({'algorithm': 'md5', 'value': MD5},
                         self.agent_input()['scheme']['images'][0]['checksum'])
        self.assertIn('--allow-md5-checksum', self.agent_command())

    def test_md5_not_allowed_is_not_handed_to_the_agent(self):
        self.config(allow_md5_checksum=False, group='agent')
        self.deploy_to_agent(self.node_with(image_os_hash_algo='sha256',
                                            image_os_hash_value=SHA256),
                             sleep=30)
        self.assertNotIn('--allow-md5-checksum', self.agent_command())

    # -- the CA bundle for image downloads -----------------------------------

    def test_image_ca_bundle_is_uploaded_and_handed_to_the_agent(self):
        bundle = os.path.join(self.useFixture(
            fixtures.TempDir()).path, 'ca.pem')
        with open(bundle, 'w') as f:
            f.write('-----BEGIN CERTIFICATE-----\nMIIB\n')
        self.config(image_ca_file=bundle, group='fuel_agent')
        self.deploy_to_agent(self.node_with(), sleep=30)
        remote = agent_control.RemotePaths.from_conf().ca_file
        self.assertIn('--image-ca-file %s' % remote, self.agent_command())
        with open(bundle) as mine, open(remote) as uploaded:
            self.assertEqual(mine.read(), uploaded.read())

    def test_no_ca_bundle_by_default(self):
        self.deploy_to_agent(self.node_with(), sleep=30)
        self.assertNotIn('--image-ca-file', self.agent_command())

    def test_unreadable_ca_bundle_fails_the_start_naming_the_option(self):
        self.config(image_ca_file='/nonexistent/ca.pem', group='fuel_agent')
        self.assertRaisesRegex(
            exception.InstanceDeployFailure,
            r'\[fuel_agent\]image_ca_file /nonexistent/ca.pem cannot be '
            r'read', agent_control.read_ca_bundle)

    def test_checksum_url_is_read_by_ironic_at_deploy_time(self):
        url = self.sums_server()
        node = self.node_with(image_checksum=url)
        self.validate(node)
        self.assertEqual([], _Sums.requests)  # validate fetches nothing
        self.deploy_to_agent(node, sleep=30)
        self.assertEqual(['/SHA256SUMS'], _Sums.requests)
        self.assertEqual({'algorithm': 'sha256', 'value': SHA256},
                         self.agent_input()['scheme']['images'][0]['checksum'])

    def test_checksum_urls_can_be_disabled(self):
        self.config(disable_support_for_checksum_files=True,
                    group='conductor')
        self.refused(self.node_with(image_checksum=self.sums_server()),
                     'instance_info.image_checksum')

    def test_not_a_digest(self):
        self.refused(self.node_with(image_os_hash_algo='sha256',
                                    image_os_hash_value='zz' * 32),
                     'is not an md5, sha256 or sha512 hex digest')

    # -- file:// URLs -------------------------------------------------------

    def scheme_node(self, url):
        scheme = dict(driver_base.WHOLE_DISK_SCHEME, images=[
            {'url': url, 'format': 'raw', 'target': 'sda'}])
        return self.deploying_node(driver_info={'fa_partition_scheme': scheme})

    def test_scheme_file_urls_obey_ironic_rules(self):
        for url, expect in (
                ('file:///etc/shadow', '/etc is never allowed'),
                ('file:///proc/self/environ', '/proc is never allowed'),
                ('file:///var/lib/ironic/../../../dev/sda',
                 '/dev is never allowed'),
                ('file:///srv/images/disk.img',
                 '/srv/images/disk.img is not below '
                 '[conductor]file_url_allowed_paths (/var/lib/ironic)'),
                ('file://otherhost/var/lib/ironic/x.img',
                 'not a local absolute file:///path URL')):
            message = self.refused(self.scheme_node(url), expect)
            self.assertIn('$.images[0].url', message)

    def test_allowed_file_url_and_the_agent_gets_the_list(self):
        self.config(file_url_allowed_paths=['/srv/images', '/opt/img'],
                    group='conductor')
        node = self.scheme_node('file:///srv/images/disk.img')
        self.validate(node)
        self.deploy_to_agent(node, sleep=30)
        self.assertIn('--file-url-allowed-paths /srv/images,/opt/img',
                      self.agent_command())

    def test_empty_allow_list_disables_file_urls(self):
        self.config(file_url_allowed_paths=[], group='conductor')
        self.refused(self.scheme_node('file:///var/lib/ironic/disk.img'),
                     'empty: file:// URLs are disabled')

    def test_configdrive_file_url(self):
        node = self.node_with(configdrive='file:///proc/self/environ')
        self.refused(node, 'instance_info.configdrive: /proc is never '
                     'allowed')
        node = self.node_with(configdrive='file:///var/lib/ironic/cd.iso')
        self.validate(node)

    def test_configdrive_other_scheme(self):
        self.refused(self.node_with(configdrive='ftp://h/cd.iso'),
                     'instance_info.configdrive: ftp:// URLs are not '
                     'supported')

    # -- the configdrive ----------------------------------------------------

    def test_configdrive_json_is_built_by_ironic(self):
        node = self.node_with(configdrive={
            'meta_data': {'hostname': 'n1'}, 'user_data': '#cloud-config'})
        self.validate(node)
        self.deploy_to_agent(node, sleep=30)
        drive = self.agent_input()['configdrive']
        self.assertEqual(['data'], list(drive))
        meta = json.loads(source_tests.read_iso_file(
            drive['data'], '/openstack/latest/meta_data.json'))
        # Ironic's build_configdrive fills in the node's identity.
        self.assertEqual(('n1', node.uuid), (meta['hostname'], meta['uuid']))
