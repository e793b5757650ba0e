"""The scheme reference's examples are true: each valid one validates and
plans through the real ``fa-scheme`` CLI, each invalid one fails with the
errors its name promises, and the plan shown in the docs is the CLI's.
"""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

from fa_agent import input_format
from fa_agent.scheme import validator

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / 'doc/source/examples'

# Scheme -> (inventory it is planned against, {id: path the plan must give}).
VALID = {
    'one-disk.json': ('inventory-lsblk.json', {
        'disk0': '/dev/sda', 'bios': '/dev/sda1', 'esp': '/dev/sda2',
        'config': '/dev/sda3', 'swap': '/dev/sda4', 'fs-root': '/dev/sda5'}),
    'raid1-lvm.json': ('inventory-ironic.json', {
        'disk0': '/dev/sda', 'disk1': '/dev/sdb', 'pv1': '/dev/sdb3',
        'md-boot': '/dev/md/boot', 'md-system': '/dev/md/system',
        'vg0': '/dev/vg0', 'fs-root': '/dev/vg0/root',
        'fs-var': '/dev/vg0/var'}),
    'kept-data.json': ('inventory-lsblk.json', {
        'system': '/dev/sda', 'data': '/dev/sdb', 'data-part': '/dev/sdb1',
        'fs-srv': '/dev/data/srv', 'fs-scratch': '/dev/data/scratch'}),
    'uefi-raid1.json': ('inventory-ironic.json', {
        'esp0': '/dev/sda1', 'esp1': '/dev/sdb1', 'fs-esp': '/dev/md/esp',
        'fs-root': '/dev/md/root'}),
    'whole-disk.json': ('inventory-ironic.json', {'disk0': '/dev/nvme0n1'}),
    'provision-whole-disk.json': ('inventory-ironic.json', {
        'disk0': '/dev/nvme0n1'}),
}

# Invalid scheme -> (inventory, [(JSON path, words of its message)]).
# Without an inventory the scheme itself is invalid; with one, the scheme
# is valid and only fails against those disks.
INVALID = {
    'bad-sizes.json': (None, [
        ('$.storage[1].size', "unknown unit 'mib'"),
        ('$.storage[3].size', 'at most 100')]),
    'dangling-reference.json': (None, [
        ('$.storage[2].device', "refers to 'disk1'")]),
    'device-used-twice.json': (None, [
        ('$.storage[4].device', 'used more than once')]),
    'duplicate-id.json': (None, [
        ('$.storage[4].id', "duplicate id 'root'")]),
    'duplicate-mount-point.json': (None, [
        ('$.storage[5].mount_point', "mount point '/' is also used")]),
    'esp-on-raid-metadata.json': (None, [
        ('$.storage[6].metadata', 'metadata "1.0"')]),
    'image-and-filesystem-on-one-device.json': (None, [
        ('$.images[0].target', 'used more than once'),
        ('$.images[0].target', 'target the file system instead')]),
    'keep-root.json': (None, [
        ('$.images[0].target', 'marked keep_data'),
        ('$.storage[3].keep_data', 'cannot be kept')]),
    'no-root.json': (None, [('$.storage', 'no file system is mounted')]),
    'raid-level-members.json': (None, [
        ('$.storage[2].devices', 'RAID 5 needs at least 3')]),
    'schema-errors.json': (None, [
        ('$.storage', 'no file system is mounted at "/"'),
        ('$.storage[0].match', "unknown field: 'colour'"),
        ('$.storage[3]', "unknown field: 'mountpoint'"),
        ('$.storage[3].fstype', "'ext5' is not one of")]),
    'two-remaining.json': (None, [
        ('$.storage[3].size', 'only one partition')]),
    'uefi-without-esp.json': (None, [
        ('$.bootloader.mode', 'EFI system partition')]),
    'does-not-fit.json': ('inventory-ironic.json', [
        ('$.storage[0]', 'need 500.0 GiB')]),
    'matcher-hits-no-disk.json': ('inventory-ironic.json', [
        ('$.storage[0].match', 'hits no disk')]),
    'matcher-hits-two-disks.json': ('inventory-ironic.json', [
        ('$.storage[0].match', 'hits 2 disks (/dev/sda, /dev/sdb)')]),
}


def fa_scheme(*args):
    """Run the installed CLI the way an operator does."""
    command = pathlib.Path(sys.executable).parent / 'fa-scheme'
    if not command.exists():
        command = shutil.which('fa-scheme')
    assert command, 'fa-scheme is not installed (pip install -e ./agent)'
    return subprocess.run([str(command)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def _scheme_of(document):
    return document['scheme'] if 'format' in document else document


def test_every_example_is_tested():
    schemes = {p.name for p in EXAMPLES.glob('*.json')
               if not p.name.startswith('inventory-')}
    assert schemes == set(VALID)
    invalid = {p.name for p in (EXAMPLES / 'invalid').glob('*.json')}
    assert invalid == set(INVALID)
    shown = {p.name for p in EXAMPLES.glob('*.txt')}
    assert shown == set(SHOWN)


@pytest.mark.parametrize('name', sorted(VALID))
def test_example_validates(name):
    document = json.loads((EXAMPLES / name).read_text())
    assert validator.validate(_scheme_of(document)) == []


@pytest.mark.parametrize('name', sorted(VALID))
def test_example_plans_from_cli(name):
    inventory, paths = VALID[name]
    result = fa_scheme('plan', EXAMPLES / name,
                       '--inventory', EXAMPLES / inventory, '--json')
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout)['devices']
    planned = {d['id']: d['path'] for d in devices}
    for obj_id, path in paths.items():
        assert planned[obj_id] == path, obj_id
    text = fa_scheme('plan', EXAMPLES / name, '--inventory',
                     EXAMPLES / inventory)
    assert text.returncode == 0, text.stderr
    for path in paths.values():
        assert path in text.stdout
    checked = fa_scheme('validate', EXAMPLES / name,
                        '--inventory', EXAMPLES / inventory)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith('valid and fits')


# Command output the reference page shows -> (arguments, stream).
SHOWN = {
    'raid1-lvm.plan.txt': (
        ['plan', 'doc/source/examples/raid1-lvm.json',
         '--inventory', 'doc/source/examples/inventory-ironic.json'],
        'stdout'),
    'schema-errors.validate.txt': (
        ['validate', 'doc/source/examples/invalid/schema-errors.json'],
        'stderr'),
}


@pytest.mark.parametrize('name', sorted(SHOWN))
def test_output_shown_in_docs_is_the_cli_output(name):
    # Relative paths, as in the command lines the reference page shows.
    args, stream = SHOWN[name]
    result = fa_scheme(*args)
    assert getattr(result, stream) == (EXAMPLES / name).read_text()


def test_provision_example_is_what_the_serializer_builds():
    envelope = json.loads((EXAMPLES / 'provision-whole-disk.json').read_text())
    scheme = json.loads((EXAMPLES / 'whole-disk.json').read_text())
    built = input_format.build(
        scheme, node_uuid=envelope['node']['uuid'],
        node_name=envelope['node']['name'], boot_mode=envelope['boot_mode'],
        kernel_params=envelope['kernel_params'],
        configdrive=envelope['configdrive'])
    assert built == envelope
    request = input_format.parse(envelope)
    assert request.node_name == 'compute-07'
    assert request.effective_boot_mode == 'uefi'


@pytest.mark.parametrize('name', sorted(INVALID))
def test_invalid_example_names_each_error(name):
    inventory, expected = INVALID[name]
    document = json.loads((EXAMPLES / 'invalid' / name).read_text())
    errors = validator.validate(document)
    if inventory is None:
        assert sorted({e.path for e in errors}) == \
            sorted({path for path, _ in expected})
        result = fa_scheme('validate', EXAMPLES / 'invalid' / name)
    else:
        assert errors == [], 'only the plan should fail'
        result = fa_scheme('plan', EXAMPLES / 'invalid' / name,
                           '--inventory', EXAMPLES / inventory)
    assert result.returncode == 1
    assert result.stdout == ''
    lines = result.stderr.splitlines()
    assert lines[0].endswith('%d problem(s)' % len(expected))
    for path, words in expected:
        assert any(line.strip().startswith(path + ': ') and words in line
                   for line in lines[1:]), (path, words, result.stderr)
