"""The conductor's SSH key, as the running ramdisk learns it from lookup.

A ramdisk that is already up when an operation starts (fast track: booted
for inspection, or left running after cleaning) has no ``fa-ssh-key`` for
the new operation on its kernel command line. The conductor publishes the
operation's PUBLIC key in the node's ``driver_internal_info``
(:data:`KEY_FIELD`); fa-heartbeat looks the node up again and again and
installs that key here, replacing the previous one, then announces which
key it holds (its fingerprint) in the callback URL so the conductor knows
the ramdisk is ready for it.

Only a bare "<type> <base64>" public key of an allowed type is accepted:
no options, no second key, nothing an ``authorized_keys`` line could do
beyond letting that one key in. Standard library only.
"""

import base64
import binascii
import os
import struct

from fa_agent import heartbeat

KEY_FIELD = 'fa_ssh_public_key'
KEY_PATH = 'node.driver_internal_info.' + KEY_FIELD
KEY_TYPES = ('ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384',
             'ecdsa-sha2-nistp521', 'ssh-rsa')
COMMENT = 'fa-conductor'


def parse_public_key(text, where=KEY_PATH):
    """(key type, blob bytes) of one OpenSSH public key "<type> <base64>".

    :raises ValueError: naming ``where`` and what is wrong.
    """
    if not isinstance(text, str):
        raise ValueError('%s: expected "<type> <base64>" text, got %s'
                         % (where, type(text).__name__))
    fields = text.split()
    if len(fields) != 2 or '\n' in text or '\r' in text:
        raise ValueError('%s: expected exactly "<type> <base64>" (one key, '
                         'no options or comment)' % where)
    key_type, encoded = fields
    if key_type not in KEY_TYPES:
        raise ValueError('%s: key type %r is not one of %s'
                         % (where, key_type[:40], ', '.join(KEY_TYPES)))
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError('%s: the key is not valid base64' % where)
    # The blob starts with its own type as an SSH string; a mismatch
    # means a mangled or disguised key.
    if len(blob) < 4:
        raise ValueError('%s: the key blob is truncated' % where)
    (length,) = struct.unpack('>I', blob[:4])
    if blob[4:4 + length] != key_type.encode() or len(blob) <= 4 + length:
        raise ValueError('%s: the key blob is not a %s key'
                         % (where, key_type))
    return key_type, blob


def key_from_lookup(body):
    """The published key of a lookup answer, or None when there is none
    (or Ironic's policy hid driver_internal_info from the ramdisk).

    :raises ValueError: when one is there but is not a usable key.
    """
    node = (body or {}).get('node') if isinstance(body, dict) else None
    info = node.get('driver_internal_info') if isinstance(node, dict) \
        else None
    if not isinstance(info, dict) or info.get(KEY_FIELD) in (None, ''):
        return None
    return parse_public_key(info[KEY_FIELD])


def installed_fingerprint(path):
    """Fingerprint of the one key in ``path``, None when it holds no
    single usable key (missing file included)."""
    try:
        with open(path) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except OSError:
        return None
    if len(lines) != 1:
        return None
    fields = lines[0].split()
    try:
        _type, blob = parse_public_key(' '.join(fields[:2]), path)
    except ValueError:
        return None
    return heartbeat.fingerprint_of_blob(blob)


def install(path, key_type, blob):
    """Make ``path`` hold exactly this key (atomic replace, mode 0600);
    its fingerprint."""
    directory = os.path.dirname(path) or '.'
    os.makedirs(directory, mode=0o700, exist_ok=True)
    temporary = path + '.fa-new'
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write('%s %s %s\n' % (key_type, base64.b64encode(blob).decode(),
                                COMMENT))
    os.replace(temporary, path)
    return heartbeat.fingerprint_of_blob(blob)


def refresh(body, path):
    """Install the key a lookup answer publishes when it is not the one
    in ``path`` already.

    :returns: (changed, fingerprint of the key now in ``path`` or None)
    :raises ValueError: a published key that is not acceptable (the
        installed one stays).
    """
    current = installed_fingerprint(path)
    published = key_from_lookup(body)
    if published is None:
        return False, current
    key_type, blob = published
    if heartbeat.fingerprint_of_blob(blob) == current:
        return False, current
    return True, install(path, key_type, blob)
