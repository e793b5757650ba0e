"""Entry points of the checkout under test, when the installed
distribution lacks them.

Ironic finds interfaces through entry points, which come from the
installed ``ironic_fa_driver`` distribution; a developer's venv may hold
an editable install of another checkout (whose setup.cfg predates an
interface being added), while the modules themselves come from this
checkout through PYTHONPATH. :func:`ensure` then writes a small
dist-info directory with this checkout's ``[entry_points]`` and puts it
on ``sys.path``; in CI (this checkout installed) it does nothing.
"""

import configparser
import importlib.metadata
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
_DIRECTORY = []


def _installed(group, name):
    return any(ep.name == name for ep in
               importlib.metadata.entry_points(group=group))


def ensure(group, name):
    """Make entry point ``name`` of ``group`` findable; returns the
    directory added to sys.path (None when the install has it)."""
    if _installed(group, name):
        return _DIRECTORY[0] if _DIRECTORY else None
    if not _DIRECTORY:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(os.path.join(ROOT, 'setup.cfg'))
        directory = tempfile.mkdtemp(prefix='fa-worktree-entry-points-')
        info = os.path.join(directory,
                            'ironic_fa_driver_worktree-0.dist-info')
        os.makedirs(info)
        with open(os.path.join(info, 'METADATA'), 'w') as f:
            f.write('Metadata-Version: 2.1\nName: '
                    'ironic-fa-driver-worktree\nVersion: 0\n')
        with open(os.path.join(info, 'entry_points.txt'), 'w') as f:
            for section, text in parser['entry_points'].items():
                if section in parser.defaults():
                    continue
                missing = [line.strip() for line in text.splitlines()
                           if line.strip() and not _installed(
                               section, line.split('=')[0].strip())]
                if missing:
                    f.write('[%s]\n%s\n\n' % (section,
                                                '\n'.join(missing)))
        _DIRECTORY.append(directory)
    # Only what the install lacks: stevedore would load a duplicate twice.
    if _DIRECTORY[0] not in sys.path:
        sys.path.append(_DIRECTORY[0])
    assert _installed(group, name), (group, name)
    return _DIRECTORY[0]
