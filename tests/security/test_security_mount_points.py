"""Item 2 (paths stay inside the target), validate-time part: mount points
and path targets of images are normalised absolute paths of safe
characters, and two file systems that land on one place are refused.

The agent joins a mount point to its target directory with
``os.path.normpath``; the tests show that a ".." path accepted before
would have left the target, and that every accepted path stays inside.
"""

import copy
import os

import hypothesis
from hypothesis import strategies as st
import pytest

from fa_agent.scheme import grammar
from fa_agent.scheme import validator

BASE = {
    'storage': [
        {'type': 'disk', 'id': 'sda', 'match': {'name': '/dev/sda'}},
        {'type': 'partition', 'id': 'grub', 'device': 'sda',
         'size': '1 MiB', 'flags': ['bios_grub']},
        {'type': 'partition', 'id': 'root', 'device': 'sda', 'size': '50%'},
        {'type': 'partition', 'id': 'data', 'device': 'sda',
         'size': 'remaining'},
        {'type': 'filesystem', 'id': 'fs-root', 'device': 'root',
         'fstype': 'ext4', 'mount_point': '/'},
        {'type': 'filesystem', 'id': 'fs-data', 'device': 'data',
         'fstype': 'xfs', 'mount_point': '/srv/data'},
    ],
    'images': [{'url': 'http://127.0.0.1/root.tar', 'format': 'tar',
                'target': '/'}],
    'bootloader': {'mode': 'bios'},
}


def with_mount(mount_point, image_target=None):
    doc = copy.deepcopy(BASE)
    doc['storage'][5]['mount_point'] = mount_point
    if image_target is not None:
        doc['images'][0]['target'] = image_target
    return doc


def messages_at(doc, path):
    return [e.message for e in validator.validate(doc) if e.path == path]


def test_base_is_valid():
    assert validator.validate(BASE) == []


@pytest.mark.parametrize('mount_point, words', [
    ('/srv/../../../etc', "'..' component"),
    ('/srv/./data', "'.' component"),
    ('/srv//data', 'empty component'),
    ('/srv/data/', 'must not end with "/"'),
    ('/srv/my data', 'not allowed in a mount point'),
    ('/srv/data\n/dev/sdb', 'not allowed in a mount point'),
    ('/srv/\x00', 'not allowed in a mount point'),
    ('/srv/da\\040ta', 'not allowed in a mount point'),
    ('/srv/$(id)', 'not allowed in a mount point'),
    ('/srv/' + 'a' * 256, 'at most 255 bytes'),
    ('/a' * 2048 + 'b', 'at most 4095 bytes'),
    ('/srv/\udc80', 'lone surrogate'),
    ('/proc', 'kernel\'s own file systems'),
    ('/dev/shm', 'kernel\'s own file systems'),
])
def test_unsafe_mount_points_are_refused(mount_point, words):
    found = messages_at(with_mount(mount_point), '$.storage[5].mount_point')
    assert any(words in m for m in found), found


def test_dotdot_mount_point_would_have_left_the_target():
    # How the agent places a mount point: the reason ".." is refused.
    target = '/tmp/fa-target'
    joined = os.path.normpath(os.path.join(target, 'srv/../../../etc'))
    assert not joined.startswith(target + '/')


@pytest.mark.parametrize('second', ['/', '/.', '//', '/srv/..', '/srv/../'])
def test_mount_points_landing_on_root_twice_are_refused(second):
    found = messages_at(with_mount(second), '$.storage[5].mount_point')
    assert any("mount point %r is also used by 'fs-root'" % second in m
               for m in found), found


@pytest.mark.parametrize('target', ['/srv/data/', '/srv//data', '/./srv/data',
                                    '/srv/data/../data'])
def test_unnormalised_image_targets_are_refused(target):
    doc = with_mount('/srv/data', image_target=target)
    found = messages_at(doc, '$.images[0].target')
    assert found and 'no file system is mounted' not in found[0], found


_COMPONENT = st.from_regex(r'[A-Za-z0-9._+@:,=~%-]{1,12}', fullmatch=True)


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.lists(st.one_of(_COMPONENT, st.sampled_from(
    ['.', '..', '', ' ', '\n'])), min_size=1, max_size=6))
def test_every_accepted_mount_point_stays_in_the_target(parts):
    path = '/' + '/'.join(parts)
    if grammar.mount_point_problem(path) is not None:
        return
    target = '/tmp/fa-target'
    joined = os.path.normpath(os.path.join(target, path.lstrip('/')))
    assert joined == (target + path).rstrip('/')
    assert grammar.normalise_path(path) == path
