"""Item 5 (images cannot read the ramdisk), the URL half: ``file://``
URLs obey the allow-list (system trees never, symlinks and ``..``
resolved first), redirects never go from https down to http nor to
another scheme, and a configured CA bundle is what vouches for an https
server. Real servers on 127.0.0.1, a real certificate made here."""

import datetime
import http.server
import ipaddress
import os
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fa_agent import conf as agent_conf
from fa_agent import errors
from fa_agent.images import fetch
from fa_agent.images import policy

BODY = b'image bytes ' * 1000


def allow(*paths, **kwargs):
    return policy.ImagePolicy(file_url_allowed_paths=tuple(map(str, paths)),
                              **kwargs)


# -- file:// ------------------------------------------------------------------

@pytest.mark.parametrize('path', ['/etc/shadow', '/proc/self/environ',
                                  '/dev/sda', '/sys/firmware/efi', '/boot/x',
                                  '/run/fa-agent/provision.json'])
def test_system_trees_are_never_read(path):
    """Even with / allowed; before the fix the agent read any file."""
    with pytest.raises(errors.BadInput, match='never allowed'):
        fetch.open_source('file://' + path, allow('/'))


def test_default_allows_only_ironics_directory(tmp_path):
    image = tmp_path / 'image.raw'
    image.write_bytes(BODY)
    with pytest.raises(errors.BadInput, match='not below an allowed path '
                                              r'\(/var/lib/ironic;'):
        fetch.open_source('file://%s' % image)


def test_an_allowed_file_is_read(tmp_path):
    image = tmp_path / 'image.raw'
    image.write_bytes(BODY)
    source = fetch.open_source('file://%s' % image, allow(tmp_path))
    assert b''.join(source.chunks()) == BODY


def test_symlink_out_of_the_allowed_directory_is_refused(tmp_path):
    allowed = tmp_path / 'allowed'
    allowed.mkdir()
    outside = tmp_path / 'outside'
    outside.write_bytes(b'ramdisk secret')
    (allowed / 'image.raw').symlink_to(outside)
    (allowed / 'shadow').symlink_to('/etc/shadow')
    with pytest.raises(errors.BadInput, match='not below an allowed path'):
        fetch.open_source('file://%s/image.raw' % allowed, allow(allowed))
    with pytest.raises(errors.BadInput, match='/etc is never allowed'):
        fetch.open_source('file://%s/shadow' % allowed, allow(allowed))


def test_dot_dot_out_of_the_allowed_directory_is_refused(tmp_path):
    allowed = tmp_path / 'allowed'
    allowed.mkdir()
    (tmp_path / 'outside').write_bytes(b'ramdisk secret')
    with pytest.raises(errors.BadInput, match='not below an allowed path'):
        fetch.open_source('file://%s/../outside' % allowed, allow(allowed))
    with pytest.raises(errors.BadInput, match='not below an allowed path'):
        fetch.open_source('file://%s/%%2e%%2e/outside' % allowed,
                          allow(allowed))


def test_a_sibling_with_the_same_prefix_is_not_inside(tmp_path):
    (tmp_path / 'allowed-not').mkdir()
    (tmp_path / 'allowed-not' / 'x').write_bytes(BODY)
    with pytest.raises(errors.BadInput, match='not below an allowed path'):
        fetch.open_source('file://%s/allowed-not/x' % tmp_path,
                          allow(tmp_path / 'allowed'))


def test_only_regular_files(tmp_path):
    os.mkfifo(tmp_path / 'fifo')
    with pytest.raises(errors.BadInput, match='not a regular file'):
        fetch.open_source('file://%s/fifo' % tmp_path, allow(tmp_path))


def test_empty_allow_list_disables_file_urls(tmp_path):
    (tmp_path / 'x').write_bytes(BODY)
    with pytest.raises(errors.BadInput, match='disabled'):
        fetch.open_source('file://%s/x' % tmp_path, allow())


def test_remote_file_hosts_are_refused(tmp_path):
    with pytest.raises(errors.BadInput, match='names host'):
        fetch.open_source('file://fileserver%s/x' % tmp_path,
                          allow(tmp_path))


def test_provision_options_make_the_policy(tmp_path):
    conf = agent_conf.new_conf()
    conf(['--file-url-allowed-paths', '%s,/srv/images' % tmp_path,
          '--image-ca-file', str(tmp_path / 'ca.pem'),
          '--allow-md5-checksum'], default_config_files=[])
    assert policy.ImagePolicy.from_conf(conf) == policy.ImagePolicy(
        (str(tmp_path), '/srv/images'), str(tmp_path / 'ca.pem'), True)
    conf = agent_conf.new_conf()
    conf([], default_config_files=[])
    assert policy.ImagePolicy.from_conf(conf) == policy.DEFAULT
    assert policy.DEFAULT.file_url_allowed_paths == ('/var/lib/ironic',)


# -- https --------------------------------------------------------------------

def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """A CA and a certificate for 127.0.0.1 it signed, as PEM files."""
    directory = tmp_path_factory.mktemp('pki')
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(_name('fa test CA')).issuer_name(_name('fa test CA'))
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                         critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, key_cert_sign=True, crl_sign=True,
              content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False,
              encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(
              ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name('127.0.0.1')).issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / 'ca.pem').write_bytes(ca.public_bytes(pem))
    (directory / 'server.pem').write_bytes(
        cert.public_bytes(pem) + key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    return directory


def serve(tls_dir=None, redirect=None):
    """A server on 127.0.0.1 that answers GET with BODY, or with a 302 to
    ``redirect(path)``; https when ``tls_dir`` holds server.pem."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            httpd.paths.append(self.path)
            if redirect is not None:
                self.send_response(302)
                self.send_header('Location', redirect(self.path))
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            self.send_response(200)
            self.send_header('Content-Length', str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    httpd.paths = []
    scheme = 'http'
    if tls_dir is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_dir / 'server.pem')
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = 'https'
    httpd.url = '%s://127.0.0.1:%d' % (scheme, httpd.server_address[1])
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def servers():
    started = []

    def start(*args, **kwargs):
        started.append(serve(*args, **kwargs))
        return started[-1]
    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def test_https_needs_the_configured_ca(pki, servers):
    """Without the CA the self-signed server is refused; with
    --image-ca-file it is trusted."""
    httpd = servers(pki)
    with pytest.raises(errors.ImageDownloadFailed,
                       match='CERTIFICATE_VERIFY_FAILED'):
        fetch.open_source(httpd.url + '/image.raw', attempts=1)
    source = fetch.open_source(httpd.url + '/image.raw',
                               allow(ca_file=pki / 'ca.pem'))
    assert b''.join(source.chunks()) == BODY


def test_a_ca_bundle_that_cannot_be_read_is_bad_input(tmp_path):
    with pytest.raises(errors.BadInput, match='CA bundle'):
        fetch.open_source('https://127.0.0.1:1/image.raw',
                          allow(ca_file=tmp_path / 'absent.pem'))


def test_redirect_from_https_to_http_is_refused(pki, servers):
    """Before the fix urllib followed it: the image came over plain
    http."""
    plain = servers()
    secure = servers(pki, redirect=lambda path: plain.url + path)
    with pytest.raises(errors.ImageDownloadFailed,
                       match='https must not be downgraded to http'):
        fetch.open_source(secure.url + '/image.raw',
                          allow(ca_file=pki / 'ca.pem'), attempts=1)
    assert plain.paths == []


def test_redirect_within_https_and_from_http_up_is_followed(pki, servers):
    target = servers(pki)
    secure = servers(pki, redirect=lambda path: target.url + path)
    plain = servers(redirect=lambda path: secure.url + path)
    source = fetch.open_source(plain.url + '/image.raw',
                               allow(ca_file=pki / 'ca.pem'))
    assert b''.join(source.chunks()) == BODY
    assert target.paths == ['/image.raw']


@pytest.mark.parametrize('location', ['file:///etc/shadow',
                                      'ftp://127.0.0.1/image.raw'])
def test_redirect_to_another_scheme_is_refused(servers, location):
    """ftp was followed before the fix (urllib allows it; file:// it
    refuses itself)."""
    httpd = servers(redirect=lambda path: location)
    with pytest.raises(errors.ImageDownloadFailed,
                       match='only http and https are followed|'
                             'Redirection to url .* is not allowed'):
        fetch.open_source(httpd.url + '/image.raw', attempts=1)
