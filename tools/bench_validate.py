#!/usr/bin/env python3
"""Time the scheme validator on large documents (issue 10: linear, never
slow). Not a test: the figures depend on the machine.

    PYTHONPATH=agent python tools/bench_validate.py [--sizes 1,10,50]
        [--shapes valid,invalid,chain,shared,members] [--repeat 3]

For each shape and size (MB) it prints the median time of
``validate(text)`` with the default size limit (refused early) and with no
limit (every check runs), and the number of errors.
"""

import argparse
import json
import statistics
import sys
import time

from fa_agent.scheme import validator

MB = 1000 * 1000


def _root():
    return [{'type': 'disk', 'id': 'd0', 'match': {'name': '/dev/sda'}},
            {'type': 'partition', 'id': 'p0', 'device': 'd0',
             'size': '10 GiB'},
            {'type': 'filesystem', 'id': 'fs0', 'device': 'p0',
             'fstype': 'ext4', 'mount_point': '/'}]


def valid(n):
    """Disks with a partition and a mounted file system each."""
    storage = _root()
    for i in range(1, n):
        storage += [
            {'type': 'disk', 'id': 'd%d' % i,
             'match': {'serial': 'S%08d' % i}},
            {'type': 'partition', 'id': 'p%d' % i, 'device': 'd%d' % i,
             'size': 'remaining'},
            {'type': 'filesystem', 'id': 'fs%d' % i, 'device': 'p%d' % i,
             'fstype': 'xfs', 'mount_point': '/srv/%d' % i}]
    return {'storage': storage}


def invalid(n):
    """Objects with wrong types everywhere."""
    storage = _root()
    for i in range(n):
        storage += [{'type': 'partition', 'id': ['p%d' % i],
                     'device': i, 'size': {}},
                    'not an object',
                    {'type': 'raid', 'id': 'r%d' % i, 'level': 7,
                     'devices': [{}, {}], 'extra': True}]
    return {'storage': storage}


def chain(n):
    """RAID arrays each built on the one before: deep ancestry."""
    storage = _root()
    previous = 'p0'
    for i in range(n * 3):
        storage.append({'type': 'raid', 'id': 'r%d' % i, 'level': 1,
                        'devices': [previous, 'p0']})
        previous = 'r%d' % i
    return {'storage': storage, 'bootloader': {
        'devices': ['r%d' % i for i in range(0, n * 3, 7)]}}


def shared(n):
    """Thousands of file systems and images on one partition."""
    storage = _root()
    for i in range(n * 2):
        storage.append({'type': 'filesystem', 'id': 'f%d' % i,
                        'device': 'p0', 'fstype': 'ext4'})
    images = [{'url': 'https://h/i', 'format': 'raw', 'target': 'd0'}
              for _ in range(n)]
    return {'storage': storage, 'images': images}


def members(n):
    """One RAID with a huge, repetitive device list and odd flags."""
    storage = _root()
    storage.append({'type': 'raid', 'id': 'r', 'level': 1,
                    'devices': ['p0', 'd0'] * (n * 4)})
    storage.append({'type': 'partition', 'id': 'px', 'device': 'd0',
                    'size': '1 MiB', 'flags': [{}, 1, 'x'] * (n * 3)})
    return {'storage': storage}


SHAPES = {f.__name__: f for f in (valid, invalid, chain, shared, members)}


def sized(shape, megabytes):
    """Text of ``shape`` scaled to about ``megabytes`` MB."""
    probe = len(json.dumps(shape(100)))
    n = max(1, int(megabytes * MB * 100 / probe))
    return json.dumps(shape(n))


def median_time(func, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', default='1,10,50')
    parser.add_argument('--shapes', default=','.join(SHAPES))
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args(argv)
    print('%-8s %6s %10s %12s %10s' % ('shape', 'MB', 'limited s',
                                       'unlimited s', 'errors'))
    for name in args.shapes.split(','):
        for size in (float(s) for s in args.sizes.split(',')):
            text = sized(SHAPES[name], size)
            limited, _ = median_time(lambda: validator.validate(text),
                                     args.repeat)
            full, errors = median_time(
                lambda: validator.validate(text, max_bytes=None),
                args.repeat)
            print('%-8s %6.1f %10.3f %12.2f %10d' % (
                name, len(text) / MB, limited, full, len(errors)))
            sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
