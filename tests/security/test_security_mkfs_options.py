"""Item 4 (only named disks are touched): ``mkfs_options`` accept only a
documented allow-list per file system type; options that name another
device or a path of the ramdisk, positional arguments and everything else
are refused at ``$.storage[N].mkfs_options[M]``.

Real mkfs runs on image files show both sides: ``mkfs.ext4 -d`` really
copies a ramdisk directory into the new file system (why it is refused),
and the options the allow-list accepts are ones the real tools take.
"""

import copy
import re
import shutil
import subprocess

import hypothesis
from hypothesis import strategies as st
import pytest

from fa_agent.scheme import mkfs_options
from fa_agent.scheme import schema
from fa_agent.scheme import validator
from fa_agent.steps import filesystems

BASE = {
    'storage': [
        {'type': 'disk', 'id': 'sda', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'grub', 'device': 'sda',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'root', 'device': 'sda',
         'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/'},
    ],
    'bootloader': {'mode': 'bios'},
}


def with_options(fstype, options):
    doc = copy.deepcopy(BASE)
    fs = doc['storage'][3]
    fs['fstype'] = fstype
    fs['mkfs_options'] = options
    if fstype in ('vfat', 'swap'):
        # Neither can be the root: put it beside a plain root.
        doc['storage'][2]['size'] = '50%'
        del fs['mount_point']
        doc['storage'] += [
            {'type': 'partition', 'id': 'p2', 'device': 'sda',
             'size': 'remaining'},
            {'type': 'filesystem', 'id': 'fs2', 'device': 'p2',
             'fstype': 'ext4', 'mount_point': '/'}]
    return doc


REFUSED = [
    # ext4 fills the file system from a ramdisk directory.
    ('ext4', ['-d', '/etc'], 0, "'-d' is not an allowed option"),
    ('ext4', ['-J', 'device=/dev/sdb'], 1, 'cannot hold "/"'),
    ('ext4', ['-J', 'device=UUID=1234'], 1, "sub-option 'device'"),
    ('ext4', ['-E', 'offset=1048576'], 1, "sub-option 'offset'"),
    ('ext4', ['-E', 'lazy_itable_init=1,root_owner=0:0,offset=4'], 1,
     "sub-option 'offset'"),
    ('ext4', ['/dev/sdb'], 0, 'cannot name devices'),
    ('ext4', ['-m', '1', '1024'], 2, 'is not an option'),
    ('ext4', ['-b'], 0, 'needs a value as the next item'),
    ('ext4', ['-b4096'], 0, 'as its own item'),
    ('ext4', ['-b', '-d'], 1, 'needs a value matching'),
    ('ext4', ['-t', 'ext2'], 0, 'not an allowed option'),
    ('ext4', ['-n'], 0, 'not an allowed option'),
    ('ext4', ['-S'], 0, 'not an allowed option'),
    ('ext4', ['-M', 'x'], 0, 'not an allowed option'),
    ('ext4', ['-c'], 0, 'not an allowed option'),
    ('ext4', ['-O', '^has_journal;id'], 1, 'needs a value matching'),
    ('ext2', ['-j'], 0, 'not an allowed option'),
    ('xfs', ['-d', 'file=1,name=ramdisk.img'], 1, "sub-option 'file'"),
    ('xfs', ['-l', 'logdev=/dev/sdb'], 1, 'cannot hold "/"'),
    ('xfs', ['-l', 'internal=0'], 1, "sub-option 'internal'"),
    ('xfs', ['-r', 'rtdev=sdc'], 0, "'-r' is not an allowed option"),
    ('xfs', ['-p', 'proto'], 0, "'-p' is not an allowed option"),
    ('xfs', ['-c', 'options=cfg'], 0, "'-c' is not an allowed option"),
    ('xfs', ['-m', '0'], 1, "sub-option '0'"),
    ('xfs', ['-N'], 0, 'not an allowed option'),
    ('btrfs', ['--rootdir', '/'], 0, "'--rootdir' is not an allowed option"),
    ('btrfs', ['--rootdir=/etc'], 0, 'not an allowed option'),
    ('btrfs', ['--root', 'etc'], 0, 'not an allowed option'),
    ('btrfs', ['-r', 'etc'], 0, "'-r' is not an allowed option"),
    ('btrfs', ['-d', 'raid1'], 1, 'needs a value matching'),
    ('btrfs', ['-m', 'dup', '/dev/sdc'], 2, 'cannot name devices'),
    ('btrfs', ['--nodesize=16k=x'], 0, 'needs a value matching'),
    ('btrfs', ['-K=1'], 0, '-K takes no value'),
    ('btrfs', ['--nodiscard=1'], 0, 'takes no value'),
    ('vfat', ['-C'], 0, 'not an allowed option'),
    ('vfat', ['-l', 'badblocks.txt'], 0, 'not an allowed option'),
    ('vfat', ['-F', '64'], 1, 'needs a value matching'),
    ('swap', ['--file'], 0, 'not an allowed option'),
    ('swap', ['-o', '4096'], 0, 'not an allowed option'),
]


def test_every_file_system_type_has_an_allow_list():
    assert set(mkfs_options.ALLOWED) == set(schema.FSTYPES)


@pytest.mark.parametrize('fstype, options, index, words', REFUSED)
def test_unsafe_mkfs_options_are_refused_with_their_path(fstype, options,
                                                         index, words):
    doc = with_options(fstype, options)
    path = '$.storage[3].mkfs_options[%d]' % index
    found = [e.message for e in validator.validate(doc) if e.path == path]
    assert any(words in m for m in found), (path, validator.validate(doc))


ACCEPTED = {
    'ext4': ['-b', '4096', '-I', '256', '-i', '16384', '-m', '0.5',
             '-O', '^metadata_csum_seed,dir_index', '-E',
             'lazy_itable_init=1,lazy_journal_init=1,stride=16,'
             'stripe_width=32,root_owner=0:0,nodiscard', '-T', 'small',
             '-J', 'size=4', '-e', 'remount-ro', '-N', '4096', '-j', '-q'],
    'ext2': ['-b', '1024', '-m', '1', '-O', 'sparse_super'],
    'xfs': ['-b', 'size=4096', '-i', 'size=512,maxpct=25',
            '-m', 'crc=1,reflink=1,finobt=1', '-n', 'size=8192,ftype=1',
            '-s', 'size=512', '-d', 'agcount=4', '-l', 'size=64m', '-K'],
    'btrfs': ['-n', '16k', '--sectorsize=4096', '-O', 'no-holes,^extref',
              '--csum', 'xxhash', '-m', 'dup', '--data=single', '-K'],
    'vfat': ['-F', '32', '-S', '512', '-s', '1', '-f', '2', '-R', '32',
             '-i', 'DEADBEEF'],
    'swap': ['--pagesize', '4096'],
}
IMAGE_MIB = {'ext4': 64, 'ext2': 16, 'xfs': 300, 'btrfs': 128, 'vfat': 64,
             'swap': 16}


@pytest.mark.parametrize('fstype', sorted(ACCEPTED))
def test_allowed_options_validate(fstype):
    assert mkfs_options.problems(fstype, ACCEPTED[fstype]) == []
    assert validator.validate(with_options(fstype, ACCEPTED[fstype])) == []


@pytest.mark.parametrize('fstype', sorted(ACCEPTED))
def test_allowed_options_are_taken_by_the_real_mkfs(fstype, tmp_path):
    program = filesystems.MKFS[fstype][0]
    if shutil.which(program) is None:
        pytest.skip('%s is not installed' % program)
    image = tmp_path / 'fs.img'
    image.touch()
    image.chmod(0o600)
    subprocess.run(['truncate', '-s', '%dM' % IMAGE_MIB[fstype], str(image)],
                   check=True)
    fs = type('Fs', (), {'fstype': fstype, 'label': 'T',
                         'mkfs_options': ACCEPTED[fstype]})
    result = subprocess.run(filesystems.mkfs_command(fs, str(image)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    blkid = subprocess.run(['blkid', '-p', '-o', 'value', '-s', 'TYPE',
                            str(image)], capture_output=True, text=True)
    assert blkid.stdout.strip() == fstype


def test_mkfs_ext4_d_really_copies_a_ramdisk_directory(tmp_path):
    # What the allow-list stops: "-d DIR" puts the ramdisk's files (here a
    # stand-in for /etc/shadow) into the deployed file system.
    if shutil.which('mkfs.ext4') is None or shutil.which('debugfs') is None:
        pytest.skip('e2fsprogs is not installed')
    (tmp_path / 'ramdisk' / 'etc').mkdir(parents=True)
    (tmp_path / 'ramdisk' / 'etc' / 'shadow').write_text('root:SECRET:\n')
    image = tmp_path / 'fs.img'
    subprocess.run(['truncate', '-s', '16M', str(image)], check=True)
    subprocess.run(['mkfs.ext4', '-q', '-F', '-d', str(tmp_path / 'ramdisk'),
                    str(image)], check=True, timeout=60)
    shown = subprocess.run(['debugfs', '-R', 'cat /etc/shadow', str(image)],
                           capture_output=True, text=True, timeout=60)
    assert 'root:SECRET:' in shown.stdout
    assert mkfs_options.problems('ext4', ['-d', str(tmp_path)])


def _patterns():
    for fstype, table in sorted(mkfs_options.ALLOWED.items()):
        for name, spec in sorted(table.items()):
            if isinstance(spec, mkfs_options.Sub):
                for key, pattern in sorted(spec.keys.items()):
                    if pattern is not None:
                        yield '%s %s %s=' % (fstype, name, key), pattern
            elif spec is not None:
                yield '%s %s' % (fstype, name), spec


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.data())
def test_no_allowed_value_is_a_path_or_an_option(data):
    where, pattern = data.draw(st.sampled_from(list(_patterns())))
    value = data.draw(st.from_regex(re.compile(pattern), fullmatch=True))
    assert '/' not in value and not value.startswith('-'), (where, value)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.sampled_from(sorted(mkfs_options.ALLOWED)),
                  st.lists(st.text(max_size=12) | st.sampled_from(
                      ['-d', '-b', '--rootdir', '-E', '-J', '-l', '/dev/sdb',
                       'size=4096', '--csum=sha256', '-m']), max_size=6))
def test_whatever_is_accepted_is_options_and_their_values(fstype, options):
    """Anything accepted parses as allowed options, each followed by a
    value without "/" when it takes one: no item can slip through as a
    positional argument."""
    if mkfs_options.problems(fstype, options):
        return
    table = mkfs_options.ALLOWED[fstype]
    n = 0
    while n < len(options):
        name, eq, _ = options[n].partition('=')
        name = name if options[n].startswith('--') else options[n]
        assert name in table
        takes_value = table[name] is not None
        n += 1 + (takes_value and not eq)
    assert not any('/' in item for item in options)
