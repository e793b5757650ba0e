"""Whether an image's content may be handed to the tool that writes it.

A qcow2 header can name other files, a backing file or an external data
file, that qemu-img then reads: a tenant's image could copy the
ramdisk's files (keys, the provision input, another disk) onto the disk
the tenant gets back. So before qemu-img converts anything, the header
is checked twice: by oslo.utils' format inspector (Ironic's and IPA's
check since OSSA-2024-001; it needs oslo.utils 7.3.1) and by ``qemu-img
info`` itself, whose JSON names a backing file and an external data
file; qemu-img refuses unknown incompatible features on its own. Without
the inspector no qcow2 image is converted: ``qemu-img info`` alone is the
one check, of the tool it guards, that OSSA-2024-001 showed not to be
enough. The ramdisk build installs it (agent/ramdisk/wheels.txt).

raw and fs_image bytes are written as they are, never interpreted, so
nothing can make the agent read another path; their first MiB must
still not be a container format (qcow2, vmdk, ...): such an image was
declared with the wrong format and would not boot.
"""

import json
import logging

from fa_agent import errors
from fa_agent import redact

try:
    from oslo_utils.imageutils import format_inspector
except ImportError:  # oslo.utils older than 7.3 (Debian bookworm's 6.0)
    format_inspector = None

LOG = logging.getLogger(__name__)
# What the inspector may find in bytes written as they are: a bare disk
# or file system, a partition table, an ISO (hybrid ISOs are both).
WRITTEN_AS_IS = frozenset({'raw', 'gpt', 'iso'})
HEAD = 1024 * 1024


NO_INSPECTOR = ("this agent's oslo.utils has no imageutils.format_inspector "
                '(7.3.1 or later is needed)')


def _no_inspector(what):
    LOG.warning('%s: %s; its first MiB is not checked for a container '
                'format (the bytes are written as they are)',
                what, NO_INSPECTOR)


def check_file(path, declared, runner, what):
    """Refuse a ``declared``-format image file qemu-img must not convert.

    :returns: the ``qemu-img info`` document.
    :raises errors.BadInput: naming what the image would make qemu-img
        read or why its format is not the declared one.
    """
    _inspect_file(path, declared, what)
    return _qemu_info(path, declared, runner, what)


def _inspect_file(path, declared, what):
    if format_inspector is None:
        # an environment fault, not the image's: ProvisionError (internal)
        raise errors.ProvisionError(
            '%s: a %s image is not converted without the image format '
            'safety check: %s' % (what, declared, NO_INSPECTOR))
    try:
        detected = format_inspector.detect_file_format(path)
        if detected is None or str(detected) != declared:
            raise errors.BadInput(
                '%s: declared %s, but its content is %s'
                % (what, declared, detected or 'of no known format'))
        detected.safety_check()
    except format_inspector.SafetyCheckFailed as exc:
        reasons = ', '.join('%s (%s)' % (name, failure) for name, failure
                            in sorted(exc.failures.items()))
        raise errors.BadInput(
            '%s: refused by the image format safety check: %s; only '
            'self-contained images are written' % (what, reasons)) from exc
    except format_inspector.ImageFormatError as exc:
        raise errors.BadInput('%s: cannot inspect it as %s: %s'
                              % (what, declared, exc)) from exc


def _qemu_info(path, declared, runner, what):
    out, _err = runner.execute('qemu-img', 'info', '--output=json',
                               '-f', declared, path,
                               error_class=errors.BadInput)
    try:
        info = json.loads(out)
        specific = (info.get('format-specific') or {}).get('data') or {}
    except (ValueError, AttributeError) as exc:
        raise errors.BadInput('%s: qemu-img info gave no JSON object'
                              % what) from exc
    problems = []
    backing = info.get('backing-filename') or info.get(
        'full-backing-filename')
    if backing:
        problems.append('a backing file (%s)' % redact.text(str(backing)))
    if specific.get('data-file'):
        problems.append('an external data file (%s)'
                        % redact.text(str(specific['data-file'])))
    if specific.get('corrupt'):
        problems.append('the corrupt flag')
    if info.get('format') != declared:
        problems.append('format %r' % info.get('format'))
    if problems:
        raise errors.BadInput(
            '%s: the %s image has %s; only self-contained images are '
            'written' % (what, declared, ' and '.join(problems)))
    if not isinstance(info.get('virtual-size'), int):
        raise errors.BadInput('%s: qemu-img info reports no virtual size'
                              % what)
    return info


def check_written_as_is(declared, chunks, what):
    """``chunks`` (decompressed image bytes) passed through unchanged,
    once their first :data:`HEAD` bytes were found to be no container
    format (qcow2, vmdk, vhd, ...) under a raw or fs_image label."""
    if format_inspector is None:
        _no_inspector(what)
        yield from chunks
        return
    chunks = iter(chunks)
    head, size = [], 0
    for data in chunks:
        head.append(data)
        size += len(data)
        if size >= HEAD:
            break
    _check_head(declared, b''.join(head)[:HEAD], what)
    yield from head
    yield from chunks


def _check_head(declared, data, what):
    wrapper = format_inspector.InspectWrapper(iter((data,)))
    for _chunk in wrapper:
        pass
    found = {str(f) for f in (wrapper.formats or ())}
    strange = sorted(found - WRITTEN_AS_IS)
    if strange:
        raise errors.BadInput(
            '%s: declared %s, but its content is %s: a disk image in a '
            'container format must be declared as such (qcow2) or '
            'converted to raw first' % (what, declared, ', '.join(strange)))
