"""SSH keys the conductor logs in to the ramdisk with.

Three ways, the first that applies wins:

- a configured key (driver_info ``fa_ssh_key_file`` or
  ``[fuel_agent]ssh_key_file``), used for every operation;
- a derived key (``[fuel_agent]key_secret_file`` set): every operation
  gets a random nonce, stored on the node (``fa_key_nonce`` in
  driver_internal_info, not secret); the ed25519 key is HKDF-SHA256 of
  the conductors' shared secret, that nonce and the node's UUID, so any
  conductor with the secret can log in to the ramdisk of any operation
  and the private key is never stored anywhere;
- a generated key pair per operation, whose private half stays in
  ``[fuel_agent]key_dir`` on the conductor that made it: only that
  conductor can finish the operation (single conductor only).

Only the public half ever goes to the ramdisk (kernel command line or,
on fast track, driver_internal_info).
"""

import base64
import io
import os
import secrets
import shutil
import stat

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf import hkdf
from fa_agent import contract
from ironic.common import exception
import paramiko

from ironic_fa_driver import conf

CONF = conf.CONF
KEY_NAME = 'id_ed25519'
# driver_internal_info: this operation's nonce (base64), for derived keys.
NONCE = 'fa_key_nonce'
NONCE_BYTES = 32
# The secret must carry at least this much; 32 random bytes is the norm.
MIN_SECRET_BYTES = 32
MAX_SECRET_BYTES = 64 * 1024
SECRET_OPTION = '[fuel_agent]key_secret_file'
_INFO = b'ironic-fa-driver ramdisk ssh login key v1 node '


def configured_key_file(node):
    """The operator's key for this node, or None for per-deploy keys."""
    return node.driver_info.get('fa_ssh_key_file') or \
        CONF.fuel_agent.ssh_key_file


def _private_file_mode(path, field, what):
    """Refuse a file that is missing or that others can read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise exception.InvalidParameterValue(
            '%s: %s %s cannot be read: %s' % (field, what, path,
                                               exc.strerror))
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise exception.InvalidParameterValue(
            '%s: %s %s is accessible by group or others (mode %o); run '
            'chmod 600 on it' % (field, what, path, mode & 0o777))


def check_key_file(path, field):
    """Refuse a key that is missing or that others can read.

    :raises: InvalidParameterValue naming ``field``.
    """
    _private_file_mode(path, field, 'SSH private key')
    try:
        paramiko.PKey.from_path(path)
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise exception.InvalidParameterValue(
            '%s: %s is not a usable SSH private key: %s' % (field, path, exc))


def secret_configured():
    return bool(CONF.fuel_agent.key_secret_file)


def read_secret():
    """The conductors' shared key secret (bytes), read on every use so a
    rotated file is picked up; None when not configured.

    :raises: InvalidParameterValue naming the option when the file is
        missing, readable by group or others, too short or too long.
    """
    path = CONF.fuel_agent.key_secret_file
    if not path:
        return None
    _private_file_mode(path, SECRET_OPTION, 'key secret')
    try:
        with open(path, 'rb') as f:
            secret = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise exception.InvalidParameterValue(
            '%s: key secret %s cannot be read: %s'
            % (SECRET_OPTION, path, exc.strerror))
    secret = secret.strip()
    if len(secret) > MAX_SECRET_BYTES:
        raise exception.InvalidParameterValue(
            '%s: key secret %s is larger than %d bytes; is it the right '
            'file?' % (SECRET_OPTION, path, MAX_SECRET_BYTES))
    if len(secret) < MIN_SECRET_BYTES:
        raise exception.InvalidParameterValue(
            '%s: key secret %s has %d bytes, at least %d are needed (e.g. '
            '"head -c 32 /dev/urandom | base64 > %s")'
            % (SECRET_OPTION, path, len(secret), MIN_SECRET_BYTES, path))
    return secret


def derive_key(secret, nonce, node_uuid):
    """The operation's ed25519 login key (a paramiko key, in memory):
    HKDF-SHA256 of ``secret`` salted with ``nonce`` (bytes), bound to the
    node and to this purpose by HKDF's info."""
    seed = hkdf.HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce,
                     info=_INFO + node_uuid.encode()).derive(secret)
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    text = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()).decode()
    return paramiko.Ed25519Key.from_private_key(io.StringIO(text))


def _nonce(node):
    value = node.driver_internal_info.get(NONCE)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise exception.InstanceDeployFailure(
            reason='driver_internal_info.%s is not base64' % NONCE)


def _node_dir(node_uuid):
    return os.path.join(CONF.fuel_agent.key_dir, node_uuid)


def generated_key_path(node_uuid):
    return os.path.join(_node_dir(node_uuid), KEY_NAME)


def create_deploy_key(node_uuid):
    """A new key pair for this node, replacing any older one.

    :returns: the private key's path.
    """
    os.makedirs(CONF.fuel_agent.key_dir, mode=0o700, exist_ok=True)
    directory = _node_dir(node_uuid)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    private = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    path = generated_key_path(node_uuid)
    temporary = path + '.new'
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(private)
    os.replace(temporary, path)
    return path


def remove_deploy_key(node_uuid):
    """Forget this node's generated key (nothing if there is none)."""
    shutil.rmtree(_node_dir(node_uuid), ignore_errors=True)


def new_operation_key(node):
    """Make the key of a new operation on ``node`` (a fresh nonce, not
    saved, or a fresh key pair in key_dir); nothing for a configured key.

    :returns: the login key (a path or a paramiko key).
    :raises: InvalidParameterValue for a bad secret file.
    """
    configured = configured_key_file(node)
    if configured:
        return configured
    secret = read_secret()
    if secret is None:
        node.del_driver_internal_info(NONCE)
        return create_deploy_key(node.uuid)
    nonce = secrets.token_bytes(NONCE_BYTES)
    node.set_driver_internal_info(NONCE, base64.b64encode(nonce).decode())
    # A key of an earlier, single-conductor operation is of no use now.
    remove_deploy_key(node.uuid)
    return derive_key(secret, nonce, node.uuid)


def forget_operation_key(node):
    """The operation is over: drop its nonce (not saved) and any
    generated key; a configured key stays."""
    node.del_driver_internal_info(NONCE)
    if not configured_key_file(node):
        remove_deploy_key(node.uuid)


def login_key(node):
    """The key to log in to this node's ramdisk with: a path (configured
    or generated key) or a paramiko key (derived, never on disk).

    :raises: InstanceDeployFailure when the key cannot be had on this
        conductor (generated by another one; the secret is unusable).
    """
    configured = configured_key_file(node)
    if configured:
        return configured
    nonce = _nonce(node)
    if nonce is not None:
        try:
            secret = read_secret()
        except exception.InvalidParameterValue as exc:
            raise exception.InstanceDeployFailure(reason=str(exc))
        if secret is None:
            raise exception.InstanceDeployFailure(
                reason='the SSH key of this operation is derived from the '
                       'conductors\' shared secret, but %s is not set on '
                       'conductor %s' % (SECRET_OPTION, CONF.host))
        return derive_key(secret, nonce, node.uuid)
    path = generated_key_path(node.uuid)
    if not os.path.exists(path):
        raise exception.InstanceDeployFailure(
            reason='the SSH key of this operation is not on conductor %s '
                   '(it was generated by the conductor that started it); '
                   'set %s (or [fuel_agent]ssh_key_file) on all '
                   'conductors to let another conductor resume'
                   % (CONF.host, SECRET_OPTION))
    return path


# The name the rest of the driver used before derived keys.
private_key_path = login_key


def _pkey(key):
    if isinstance(key, paramiko.PKey):
        return key
    return paramiko.PKey.from_path(key)


def public_key(key):
    """("<type> <base64>", fingerprint) of a login key (path or key)."""
    pkey = _pkey(key)
    return ('%s %s' % (pkey.get_name(), pkey.get_base64()),
            contract.fingerprint_of_blob(pkey.asbytes()))


def kernel_param_value(key):
    """The public key as the ``fa-ssh-key`` kernel parameter value."""
    pkey = _pkey(key)
    return contract.encode_public_key(pkey.get_name(), pkey.get_base64())
