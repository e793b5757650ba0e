"""Reading a VM's serial console file: where it ends now, and the
``FA-MARKER {json}`` line the installed system prints at every boot,
after a given offset."""

import json
import os
import re

MARKER = re.compile(r'^FA-MARKER (\{.*\})\s*$', re.MULTILINE)


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_from(path, offset):
    try:
        with open(path, 'rb') as f:
            f.seek(offset)
            return f.read().decode('utf-8', errors='replace')
    except OSError:
        return ''


def marker(path, offset):
    """The first complete FA-MARKER document after ``offset``, or None."""
    for match in MARKER.finditer(read_from(path, offset)):
        try:
            return json.loads(match.group(1))
        except ValueError:
            continue  # cut by other console output; the next one counts
    return None


def tail(path, offset=0, lines=25):
    return '\n'.join(read_from(path, offset).splitlines()[-lines:])
