"""The ramdisk recipe's pure parts: reading the machine's apt sources,
the pinned package list, the cache keys, the pruning rules (checked
against the programs the agent's own source runs) and the rescue account
(the recipe's useradd run with --root on a copy of account files, and
sshd's effective configuration when an sshd binary is at hand). The
build itself (root, debootstrap) is exercised by tests/qemu."""

import ast
import fnmatch
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
import pytest

from fa_agent import configdrive
from fa_agent.steps import filesystems
from fa_agent.steps import images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
spec = importlib.util.spec_from_file_location(
    'ramdisk_build', os.path.join(ROOT, 'agent', 'ramdisk', 'build.py'))
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def test_apt_sources_reads_deb822_and_one_line_files(tmp_path):
    write(str(tmp_path / 'sources.list.d' / 'debian.sources'),
          'Types: deb\n# a comment\nURIs: http://mirror.test/debian\n'
          'Suites: bookworm bookworm-updates\nComponents: main\n\n'
          'Types: deb-src\nURIs: http://mirror.test/debian\n'
          'Suites: bookworm\nComponents: main\n\n'
          'Types: deb\nURIs: http://other.test/x\nSuites: trixie\n'
          'Components: main\n')
    write(str(tmp_path / 'sources.list'),
          'deb [arch=amd64] http://security.test/debian-security '
          'bookworm-security main contrib # note\n'
          'deb http://vendor.test/apt stable main\n')
    assert build.apt_sources(str(tmp_path)) == [
        ('http://security.test/debian-security', 'bookworm-security',
         ['main', 'contrib']),
        ('http://mirror.test/debian', 'bookworm', ['main']),
        ('http://mirror.test/debian', 'bookworm-updates', ['main']),
    ]


def test_apt_sources_without_bookworm_main_is_an_error(tmp_path):
    write(str(tmp_path / 'sources.list'),
          'deb http://mirror.test/debian bookworm-updates main\n')
    with pytest.raises(build.BuildError, match='no "bookworm main"'):
        build.apt_sources(str(tmp_path))


def test_read_packages_and_write_pins_keep_comments(tmp_path):
    path = str(tmp_path / 'packages.txt')
    write(path, '# tools\nparted=3.5-3\n\nmdadm  # RAID\n')
    assert build.read_packages(path) == [('parted', '3.5-3'),
                                         ('mdadm', None)]
    build.write_pins({'parted': '3.5-4', 'mdadm': '4.2-5'}, path)
    with open(path) as f:
        assert f.read() == '# tools\nparted=3.5-4\n\nmdadm=4.2-5\n'


def test_read_packages_names_the_bad_line(tmp_path):
    path = str(tmp_path / 'packages.txt')
    write(path, 'parted\nBad_Name=1\n')
    with pytest.raises(build.BuildError, match='line 2: .Bad_Name'):
        build.read_packages(path)


def test_every_package_in_the_repository_list_is_pinned():
    packages = build.read_packages()
    assert packages
    assert [name for name, version in packages if not version] == []


def test_ramdisk_key_follows_the_overlay_and_the_agent(tmp_path,
                                                       monkeypatch):
    overlay = tmp_path / 'overlay'
    agent = tmp_path / 'agent'
    write(str(overlay / 'etc' / 'hostname'), 'fa-ramdisk\n')
    write(str(agent / 'fa_agent' / '__init__.py'), '')
    write(str(agent / 'fa_agent' / '__pycache__' / 'x.pyc'), 'cache')
    for name in ('setup.cfg', 'setup.py', 'requirements.txt'):
        write(str(agent / name), name)
    monkeypatch.setattr(build, 'OVERLAY_DIR', str(overlay))
    monkeypatch.setattr(build, 'AGENT_DIR', str(agent))
    first = build.ramdisk_key('base')
    write(str(agent / 'fa_agent' / '__pycache__' / 'x.pyc'), 'other')
    assert build.ramdisk_key('base') == first
    assert build.ramdisk_key('other base') != first
    write(str(agent / 'fa_agent' / 'new.py'), 'x = 1\n')
    second = build.ramdisk_key('base')
    assert second != first
    write(str(overlay / 'etc' / 'hostname'), 'other\n')
    assert build.ramdisk_key('base') != second


def test_prune_cache_keeps_the_newest_builds(tmp_path):
    names = ['%016x' % n for n in range(5)]
    for age, name in enumerate(names):
        os.makedirs(str(tmp_path / name))
        os.utime(str(tmp_path / name), (1000 - age, 1000 - age))
    os.makedirs(str(tmp_path / 'fa-ramdisk-left-over' / 'root'))
    write(str(tmp_path / ('%016x.part' % 9) / 'initramfs'), '')
    build.prune_cache(str(tmp_path), keep=2)
    assert sorted(os.listdir(str(tmp_path))) == names[:2]


def test_prune_cache_keeps_a_base_with_its_manifest(tmp_path):
    for age, name in enumerate(('%016x.tar' % 1, '%016x.tar' % 2)):
        write(str(tmp_path / name), '')
        write(str(tmp_path / (name + '.manifest')), '')
        os.utime(str(tmp_path / name), (1000 - age, 1000 - age))
    build.prune_cache(str(tmp_path), keep=1)
    assert sorted(os.listdir(str(tmp_path))) == [
        '%016x.tar' % 1, '%016x.tar.manifest' % 1]


def test_pins_the_mirror_dropped_fall_back_to_its_current_version():
    packages = [('mdadm', '4.2-5'), ('lvm2', '2.03.16-2'), ('gdisk', '1.0')]
    offered = {'mdadm': {'4.2-5'}, 'lvm2': {'2.03.16-3'}}
    wanted, drifted = build.install_requests(packages, offered)
    assert wanted == ['mdadm=4.2-5', 'lvm2', 'gdisk']
    assert drifted == ['lvm2=2.03.16-2', 'gdisk=1.0']


SHA = 'ab' * 32


def test_read_wheels_takes_exact_pins_with_a_hash(tmp_path):
    path = str(tmp_path / 'wheels.txt')
    write(path, '# why\noslo.utils==7.3.1 --hash=sha256:%s  # note\n' % SHA)
    assert build.read_wheels(path) == [('oslo.utils', '7.3.1', SHA)]
    for bad in ('oslo.utils>=7.3.1 --hash=sha256:%s' % SHA,
                'oslo.utils==7.3.1', 'oslo.utils==7.3.1 --hash=md5:ab'):
        write(path, 'x==1 --hash=sha256:%s\n%s\n' % (SHA, bad))
        with pytest.raises(build.BuildError, match='line 2: '):
            build.read_wheels(path)


def test_the_repository_wheels_are_pinned_and_oslo_utils_has_the_inspector():
    wheels = {name: version for name, version, _ in build.read_wheels()}
    assert wheels['oslo.utils'] == '7.3.1'
    # installed in its place, so not asked for from Debian as well
    assert 'python3-oslo.utils' not in dict(build.read_packages())


def test_cached_wheels_match_name_version_and_hash(tmp_path):
    data = b'wheel bytes'
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / 'oslo_utils-7.3.1-py3-none-any.whl').write_bytes(data)
    (tmp_path / 'other-1.0-py3-none-any.whl').write_bytes(b'x')
    found, missing = build.cached_wheels(
        [('oslo.utils', '7.3.1', sha), ('oslo.utils', '7.3.1', SHA),
         ('oslo.utils', '7.4.0', sha)], str(tmp_path))
    assert found == {'oslo.utils': str(tmp_path /
                                       'oslo_utils-7.3.1-py3-none-any.whl')}
    assert missing == [('oslo.utils', '7.3.1', SHA),
                       ('oslo.utils', '7.4.0', sha)]


def test_base_key_follows_the_wheels(tmp_path, monkeypatch):
    path = tmp_path / 'wheels.txt'
    write(str(path), 'oslo.utils==7.3.1 --hash=sha256:%s\n' % SHA)
    monkeypatch.setattr(build, 'WHEELS_FILE', str(path))
    sources = [('http://mirror.test/debian', 'bookworm', ['main'])]
    first = build.base_key(sources)
    write(str(path), '# a comment only\noslo.utils==7.3.1 '
          '--hash=sha256:%s\n' % SHA)
    assert build.base_key(sources) == first
    write(str(path), 'oslo.utils==7.4.0 --hash=sha256:%s\n' % SHA)
    assert build.base_key(sources) != first


# -- rescue mode: the rescue account and sshd -----------------------------

SSHD_CONF = os.path.join(build.OVERLAY_DIR, 'etc', 'ssh', 'sshd_config.d',
                         'fa-ramdisk.conf')


def sshd_blocks(path=SSHD_CONF):
    """``[(match or None, {keyword: value})]`` of an sshd config file."""
    blocks = [(None, {})]
    with open(path) as f:
        for line in f:
            words = line.split('#')[0].split(None, 1)
            if not words:
                continue
            keyword, value = words[0].lower(), words[1].strip()
            if keyword == 'match':
                blocks.append((value, {}))
            else:
                blocks[-1][1].setdefault(keyword, value)
    return blocks


def test_sshd_takes_passwords_from_the_rescue_user_only():
    (_, everyone), *matches = sshd_blocks()
    assert everyone['permitrootlogin'] == 'prohibit-password'
    assert everyone['passwordauthentication'] == 'no'
    assert everyone['kbdinteractiveauthentication'] == 'no'
    assert matches == [('User rescue', {'passwordauthentication': 'yes'})]


def test_rescue_account_is_created_locked_in_the_image(tmp_path):
    # The recipe's own commands, run for real with --root on a copy of
    # minimal account files (never this machine's).
    useradd = shutil.which('useradd') or '/usr/sbin/useradd'
    if os.geteuid() != 0 or not os.path.exists(useradd):
        pytest.skip('needs root and useradd')
    etc = tmp_path / 'etc'
    write(str(etc / 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n')
    write(str(etc / 'group'), 'root:x:0:\n')
    write(str(etc / 'shadow'), 'root:*:20000:0:99999:7:::\n')
    write(str(etc / 'gshadow'), 'root:*::\n')
    for command in build.rescue_user_commands():
        subprocess.run([command[0], '--root', str(tmp_path)]
                       + list(command[1:]), check=True)
    with open(str(etc / 'passwd')) as f:
        user, = [line.split(':') for line in f if
                 line.startswith(build.RESCUE_USER + ':')]
    assert user[6].strip() == '/bin/bash'
    assert os.path.isdir(str(tmp_path / 'home' / build.RESCUE_USER))
    with open(str(etc / 'shadow')) as f:
        shadow = {line.split(':')[0]: line.split(':')[1] for line in f}
    assert shadow[build.RESCUE_USER].startswith('!')


def test_rescue_user_gets_root_through_sudo():
    with open(os.path.join(build.OVERLAY_DIR, build.RESCUE_SUDOERS)) as f:
        rules = [line.strip() for line in f
                 if line.strip() and not line.startswith('#')]
    assert rules == ['%s ALL=(ALL) NOPASSWD: ALL' % build.RESCUE_USER]
    assert 'sudo' in dict(build.read_packages())


def _sshd():
    """An sshd binary to ask for its effective configuration: $FA_TEST_SSHD
    (e.g. extracted from Debian's openssh-server package with dpkg-deb
    -x), else the machine's."""
    path = os.environ.get('FA_TEST_SSHD') or '/usr/sbin/sshd'
    if os.geteuid() != 0 or not os.path.exists(path) or \
            not shutil.which('unshare'):
        pytest.skip('needs root, unshare and an sshd ($FA_TEST_SSHD)')
    return path


@pytest.mark.parametrize('user, password', [('rescue', 'yes'),
                                            ('root', 'no'),
                                            ('someone', 'no')])
def test_real_sshd_reads_the_overlay_that_way(tmp_path, user, password):
    """sshd -T with Debian's main sshd_config including the overlay file:
    the Match block ends with the file (the main config's Subsystem line
    after the Include still parses). Runs in a private mount namespace
    with a passwd copy that has sshd's privilege separation user; this
    machine's files are untouched."""
    sshd = _sshd()
    conf_d = tmp_path / 'sshd_config.d'
    write(str(conf_d / 'fa-ramdisk.conf'), open(SSHD_CONF).read().replace(
        '/etc/ssh/', str(tmp_path) + '/'))
    write(str(tmp_path / 'sshd_config'),
          'Include %s/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n'
          'X11Forwarding yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n'
          % conf_d)
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    for name in ('ssh_host_ed25519_key', 'ssh_host_ecdsa_key'):
        (tmp_path / name).write_bytes(key)
        os.chmod(str(tmp_path / name), 0o600)
    with open('/etc/passwd') as f:
        passwd = f.read()
    write(str(tmp_path / 'passwd'), passwd + 'sshd:x:65500:65534::'
          '/run/sshd:/usr/sbin/nologin\n')
    script = ('mount --bind "$1/passwd" /etc/passwd && '
              'mount -t tmpfs none /run && mkdir /run/sshd && '
              'exec "$2" -T -f "$1/sshd_config" -C "user=$3,host=h,'
              'addr=192.0.2.1"')
    env = dict(os.environ)
    env.setdefault('LD_LIBRARY_PATH', os.path.join(os.path.dirname(
        os.path.dirname(os.path.dirname(sshd))), 'usr', 'lib',
        'x86_64-linux-gnu'))
    result = subprocess.run(['unshare', '-m', 'sh', '-c', script, 'sh',
                             str(tmp_path), sshd, user],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    effective = dict(line.split(' ', 1) for line in
                     result.stdout.splitlines() if ' ' in line)
    assert effective['passwordauthentication'] == password
    assert effective['permitrootlogin'] == 'without-password'
    assert effective['kbdinteractiveauthentication'] == 'no'
def test_base_key_follows_the_base_stage_only(tmp_path):
    """Pruning and packing rules are the ramdisk stage's: changing them
    must not repeat debootstrap; changing a base step must."""
    path = os.path.join(ROOT, 'agent', 'ramdisk', 'build.py')
    with open(path) as f:
        source = f.read()
    first = build.base_recipe(path)
    copy = tmp_path / 'build.py'
    write(str(copy), source.replace("UNUSED_PATHS = (\n",
                                    "UNUSED_PATHS = (\n    'usr/x',\n"))
    assert build.base_recipe(str(copy)) == first
    write(str(copy), source.replace("'--variant=minbase', SUITE",
                                    "'--variant=buildd', SUITE"))
    assert build.base_recipe(str(copy)) != first


def agent_programs():
    """Programs the agent's source runs in the ramdisk: the first word of
    each literal ``execute('program', ...)`` and of each command tuple
    (a word, then options), plus the tables it builds commands from."""
    found = set()
    top = os.path.join(ROOT, 'agent', 'fa_agent')
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            if not name.endswith('.py'):
                continue
            with open(os.path.join(dirpath, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and node.args and
                        getattr(node.func, 'attr', None) == 'execute' and
                        isinstance(node.args[0], ast.Constant)):
                    found.add(node.args[0].value)
                elif isinstance(node, (ast.Tuple, ast.List)) and node.elts:
                    words = [e.value for e in node.elts
                             if isinstance(e, ast.Constant)
                             and isinstance(e.value, str)]
                    first = node.elts[0]
                    if (isinstance(first, ast.Constant) and isinstance(
                            first.value, str) and re.fullmatch(
                            r'[a-z][a-z0-9._-]*', first.value) and any(
                            w.startswith('-') for w in words[1:])):
                        found.add(first.value)
    found.update(command[0] for command in filesystems.MKFS.values())
    found.update(command[0] for command in images.NEW_UUID.values())
    found.add(configdrive.ISO_TOOLS[0])
    return found


def test_agent_programs_list_everything_the_agent_runs():
    found = agent_programs()
    assert {'mdadm', 'lvcreate', 'sgdisk', 'qemu-img', 'mkfs.xfs',
            'genisoimage', 'tune2fs'} <= found  # the scan works
    assert sorted(found - set(build.AGENT_PROGRAMS)) == []


def test_prune_rules_never_remove_a_program_the_ramdisk_runs():
    for program in build.AGENT_PROGRAMS:
        for directory in ('usr/bin', 'usr/sbin', 'bin', 'sbin',
                          'usr/local/bin', 'usr/local/sbin'):
            path = '%s/%s' % (directory, program)
            hits = [p for p in build.UNUSED_PATHS
                    if fnmatch.fnmatch(path, p) or
                    fnmatch.fnmatch(directory, p)]
            assert not hits, (program, hits)
    # what packages.txt asks for is never pruned behind its back
    asked = {name for name, _ in build.read_packages()}
    assert not asked & set(build.UNUSED_PACKAGES)
    assert 'grub-pc-bin' not in asked  # GRUB runs in the new system


def test_unused_modules_keep_what_a_kept_module_needs():
    build_trees = ('drivers/leds', 'sound')
    needs = {'kernel/drivers/net/ethernet/x.ko': [
                 'kernel/drivers/leds/led-class.ko'],
             'kernel/drivers/leds/led-class.ko': [
                 'kernel/drivers/leds/helper.ko'],
             'kernel/drivers/leds/helper.ko': [],
             'kernel/drivers/leds/other.ko': [],
             'kernel/sound/core/snd.ko': [],
             'kernel/drivers/ledsx/y.ko': []}
    assert build.unused_modules(needs, build_trees, ()) == {
        'kernel/drivers/leds/other.ko', 'kernel/sound/core/snd.ko'}
    assert build.unused_modules(needs, build_trees, (
        'drivers/leds/other.ko',)) == {'kernel/sound/core/snd.ko'}


def test_prune_userland_removes_files_not_shared_directories(tmp_path):
    root = str(tmp_path)
    write(os.path.join(root, 'usr/bin/perl'), 'elf')
    write(os.path.join(root, 'usr/share/keep/other'), 'kept')
    write(os.path.join(root, 'usr/lib/udev/hwdb.d/20-x.hwdb'), 'db')
    os.symlink('usr/bin', os.path.join(root, 'bin'))  # merged /usr
    write(os.path.join(root, 'var/lib/dpkg/info/perl-base.list'),
          '/.\n/bin\n/usr\n/usr/bin\n/usr/bin/perl\n/usr/share/keep\n')
    write(os.path.join(root, 'var/lib/dpkg/info/perl-base.md5sums'), 'x')
    write(os.path.join(root, 'usr/lib/python3/dist-packages/ev/__init__.py'),
          '')
    write(os.path.join(root, 'usr/lib/python3/dist-packages/ev/__pycache__/'
                       '__init__.cpython-311.pyc'), '')
    write(os.path.join(root, 'var/lib/dpkg/info/python3-ev.list'),
          '/usr/lib/python3/dist-packages/ev\n'
          '/usr/lib/python3/dist-packages/ev/__init__.py\n')
    removed = build.prune_userland(root, {'perl-base': '', 'absent': '',
                                          'python3-ev': ''},
                                   ('usr/lib/udev/hwdb.d',))
    assert removed == ['perl-base', 'python3-ev']
    # no namespace package left behind to import
    assert not os.path.exists(os.path.join(root,
                                           'usr/lib/python3/dist-packages/ev'))
    assert not os.path.exists(os.path.join(root, 'usr/bin/perl'))
    assert os.path.exists(os.path.join(root, 'usr/share/keep/other'))
    assert os.path.islink(os.path.join(root, 'bin'))
    assert not os.path.exists(os.path.join(root, 'usr/lib/udev/hwdb.d'))
    assert os.listdir(os.path.join(root, 'var/lib/dpkg/info')) == []
