#!/usr/bin/env python3
"""Benchmark: the agent's image writer against ``decompressor | dd``.

Builds two compressed raw images of at least 1 GiB (a realistic one,
mostly random data with some text and zero stretches, and a mostly sparse
one), then writes each to the same loop device, alternately with the
agent and with the baseline pipeline::

    <decompressor> -dc IMAGE | dd of=DEV bs=4M iflag=fullblock \
        oflag=direct conv=fsync

The agent side runs, in a child process (so that its peak RSS can be
read), the very call the ``images`` step of ``provision`` makes
(``fa_agent.steps.images.write_image``: no ``zeroed`` claim, the writer
decides how zero blocks are handled) with a sha256 checksum, which the
baseline does not compute. The device is discarded and the system synced
before every write, so both start from the same state; who goes first
alternates between rounds. At the end the device is filled with junk,
the agent writes the image once more and the device must read back
exactly the image (zero runs included). Needs root (loop devices) and the
compressor on PATH. Usage::

    sudo .venv/bin/python tools/bench_image_write.py [--size-mib 1024]
        [--rounds 3] [--compression zstd|gzip] [--workdir /var/tmp/x]

Throughput is raw (decompressed) bytes per second, in MB/s (10^6 B/s).
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1024 * 1024
COMPRESSORS = {'gzip': ['gzip', '-1', '-c'], 'zstd': ['zstd', '-3', '-c',
                                                       '-T0', '-q']}
# Share of 1 MiB blocks that are random / text-like / zero.
MIXES = {
    'realistic': (0.70, 0.15, 0.15),
    'sparse': (0.05, 0.03, 0.92),
}
AGENT = r'''
import json, sys, time
from fa_agent import runner
from fa_agent.images import policy
from fa_agent.scheme import model
from fa_agent.steps import images
from fa_agent.images import writer
url, device, sha256, allowed, zero_runs = sys.argv[1:6]
if zero_runs == 'write':
    # As on a device without write-zeroes offload.
    writer.zeroes_offloaded = lambda fd: False
image = model.Image(url=url, format='raw', target='disk',
                    checksum=model.Checksum('sha256', sha256))
started = time.monotonic()
result = images.write_image(
    image, device, runner.Runner(), lambda percent, message: None,
    policy.ImagePolicy(file_url_allowed_paths=(allowed,)))
result['in_process_seconds'] = time.monotonic() - started
print(json.dumps(result))
'''


def text_blocks(rng, count=8):
    words = [bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz')
                   for _ in range(rng.randint(2, 10))) for _ in range(500)]
    blocks = []
    for _ in range(count):
        lines, size = [], 0
        while size < MIB:
            line = b' '.join(rng.choice(words)
                             for _ in range(rng.randint(3, 14))) + b'\n'
            lines.append(line)
            size += len(line)
        blocks.append(b''.join(lines)[:MIB])
    return blocks


def build_image(path, size_mib, mix, seed):
    """Write the raw image; return its sha256."""
    rng = random.Random(seed)
    texts = text_blocks(rng)
    zeros = bytes(MIB)
    digest = hashlib.sha256()
    with open(path, 'wb') as out:
        for _ in range(size_mib):
            pick = rng.random()
            if pick < mix[0]:
                block = rng.randbytes(MIB)
            elif pick < mix[0] + mix[1]:
                block = rng.choice(texts)
            else:
                block = zeros
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def compress(raw, compression):
    target = raw + ('.gz' if compression == 'gzip' else '.zst')
    with open(raw, 'rb') as source, open(target, 'wb') as out:
        subprocess.run(COMPRESSORS[compression], stdin=source, stdout=out,
                       check=True)
    with open(target, 'rb') as stream:
        digest = hashlib.file_digest(stream, 'sha256').hexdigest()
    return target, digest


def run(command):
    subprocess.run(command, check=True)


def prepare(device):
    """Same start for every write: nothing dirty, device discarded."""
    run(['sync'])
    run(['blkdiscard', device])


def agent_command(args, image, device, sha256):
    return [args.python, '-c', AGENT, 'file://' + image, device, sha256,
            os.path.dirname(image), args.zero_runs]


def agent_write(args, image, device, sha256):
    prepare(device)
    started = time.monotonic()
    process = subprocess.Popen(agent_command(args, image, device, sha256),
                               stdout=subprocess.PIPE)
    out = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit('agent write failed (exit %d)' % process.returncode)
    result = json.loads(out)
    # ru_maxrss is in KiB on Linux.
    return seconds, result, usage.ru_maxrss / 1024


def baseline_write(image, device, compression):
    prepare(device)
    started = time.monotonic()
    # conv=fsync: durable on the device, as the agent's one fsync makes
    # it (a global sync would also flush whatever other jobs dirtied).
    run(['sh', '-c', '%s -dc "$1" | dd of="$2" bs=4M iflag=fullblock '
         'oflag=direct conv=fsync status=none' % compression, 'baseline',
         image, device])
    return time.monotonic() - started


def fill_with_junk(device, size):
    """Non-zero bytes everywhere, so that a zero run the writer left out
    shows up in the comparison."""
    junk = b'\xaa' * (4 * MIB)
    with open(device, 'wb') as stream:
        left = size
        while left:
            left -= stream.write(junk[:min(left, len(junk))])
        os.fsync(stream.fileno())


def device_sha256(device, size):
    digest = hashlib.sha256()
    with open(device, 'rb') as stream:
        left = size
        while left:
            data = stream.read(min(left, 4 * MIB))
            digest.update(data)
            left -= len(data)
    return digest.hexdigest()


def spread(values):
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def bench(name, raw_sha, image, image_sha, size, device, args):
    inner, whole, base, ratios, ratios_e2e, rss = [], [], [], [], [], []
    zero_runs = None
    for round_number in range(args.rounds):
        # Alternate who goes first, so noise and a warmer cache hit both.
        order = ('agent', 'baseline') if round_number % 2 == 0 \
            else ('baseline', 'agent')
        for who in order:
            if who == 'agent':
                seconds, result, peak = agent_write(args, image,
                                                    device, image_sha)
                whole.append(seconds)
                inner.append(result['in_process_seconds'])
                rss.append(peak)
                zero_runs = result.get('zero_runs')
                print('  round %d agent    %6.2f s (in process %6.2f s) '
                      '%7.1f MB/s  peak RSS %.1f MiB  zero runs: %s '
                      '(%d MiB)' % (
                          round_number + 1, seconds, inner[-1],
                          size / inner[-1] / 1e6, peak, zero_runs,
                          (result.get('bytes_zeroed', 0) +
                           result.get('bytes_skipped', 0)) // MIB),
                      flush=True)
            else:
                seconds = baseline_write(image, device, args.compression)
                base.append(seconds)
                print('  round %d baseline %6.2f s %25.1f MB/s' % (
                    round_number + 1, seconds, size / seconds / 1e6),
                    flush=True)
        # Pair by pair: a drift of the machine's speed cancels out.
        ratios.append(base[-1] / inner[-1])
        ratios_e2e.append(base[-1] / whole[-1])
    # The device now holds whoever wrote last; both must be exact.
    if device_sha256(device, size) != raw_sha:
        sys.exit('%s: the device does not hold the image' % name)
    fill_with_junk(device, size)
    run(['sync'])
    agent = subprocess.run(agent_command(args, image, device, image_sha),
                           check=True, stdout=subprocess.PIPE)
    json.loads(agent.stdout)
    if device_sha256(device, size) != raw_sha:
        sys.exit('%s: the agent wrote a wrong image over old data' % name)

    def mbps(seconds):
        median, fastest, slowest = spread(seconds)
        return [round(size / t / 1e6, 1) for t in (median, slowest,
                                                    fastest)]

    return {'image': name, 'agent_MBps': mbps(inner),
            'agent_end_to_end_MBps': mbps(whole),
            'baseline_MBps': mbps(base),
            'ratio_of_medians': round(statistics.median(base) /
                                      statistics.median(inner), 3),
            'ratio': [round(r, 3) for r in spread(ratios)],
            'ratio_end_to_end': [round(r, 3) for r in spread(ratios_e2e)],
            'peak_rss_MiB': round(max(rss), 1), 'zero_runs': zero_runs}


def _load():
    return '%.2f %.2f %.2f' % os.getloadavg()


def _cell(values, form):
    median, low, high = values
    return (form + ' [' + form + '-' + form + ']') % (median, low, high)


def _zero_runs(python, device):
    """How the writer will treat zero blocks on ``device``."""
    return subprocess.run(
        [python, '-c', 'import sys; from fa_agent.images import writer; '
         'w = writer.DeviceWriter(sys.argv[1]); print(w.zero_runs); '
         'w.close()', device], check=True, capture_output=True,
        text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--compression', choices=sorted(COMPRESSORS),
                        default='zstd')
    parser.add_argument('--workdir', default=None,
                        help='where images and the loop file go '
                             '(default: a new directory in /var/tmp)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter that has fa_agent installed')
    parser.add_argument('--zero-runs', choices=('auto', 'write'),
                        default='auto',
                        help='auto: as the images step decides it; write: '
                             'as on a device without write-zeroes offload')
    parser.add_argument('--images', default=','.join(MIXES),
                        help='comma-separated: %s' % ', '.join(MIXES))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('needs root: it writes to a loop device')
    if args.size_mib < 1024:
        print('warning: below 1024 MiB the figures are mostly noise',
              file=sys.stderr)
    workdir = args.workdir or tempfile.mkdtemp(prefix='fa-bench-',
                                               dir='/var/tmp')
    os.makedirs(workdir, exist_ok=True)
    size = args.size_mib * MIB
    backing = os.path.join(workdir, 'disk.img')
    with open(backing, 'wb') as disk:
        disk.truncate(size + 64 * MIB)
    device = subprocess.run(['losetup', '-f', '--show', backing],
                            check=True, capture_output=True,
                            text=True).stdout.strip()
    results = []
    load_at_start = _load()
    try:
        print('load average %s, zero runs on %s: %s' % (
            load_at_start, device, _zero_runs(args.python, device)
            if args.zero_runs == 'auto' else 'write (--zero-runs)'),
            flush=True)
        for seed, name in enumerate(args.images.split(',')):
            raw = os.path.join(workdir, name + '.raw')
            started = time.monotonic()
            raw_sha = build_image(raw, args.size_mib, MIXES[name], seed)
            image, image_sha = compress(raw, args.compression)
            os.unlink(raw)
            print('%s: %d MiB raw, %d MiB %s (built in %.0f s) on %s' % (
                name, args.size_mib, os.path.getsize(image) // MIB,
                args.compression, time.monotonic() - started, device),
                flush=True)
            results.append(bench(name, raw_sha, image, image_sha, size,
                                 device, args))
            os.unlink(image)
    finally:
        subprocess.run(['losetup', '-d', device], check=False)
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            os.unlink(backing)
    print()
    print('median [min-max] over %d rounds; load average %s at the start, '
          '%s at the end' % (args.rounds, load_at_start, _load()))
    print('%-10s %-22s %-22s %-22s %-7s %-20s %-20s %8s' % (
        'image', 'agent MB/s', 'agent e2e MB/s', 'baseline MB/s', 'ratio',
        'ratio per round', 'ratio e2e', 'peak RSS'))
    for item in results:
        print('%-10s %-22s %-22s %-22s %-7.3f %-20s %-20s %4.1f MiB' % (
            item['image'], _cell(item['agent_MBps'], '%.1f'),
            _cell(item['agent_end_to_end_MBps'], '%.1f'),
            _cell(item['baseline_MBps'], '%.1f'),
            item['ratio_of_medians'], _cell(item['ratio'], '%.3f'),
            _cell(item['ratio_end_to_end'], '%.3f'),
            item['peak_rss_MiB']))
    print(json.dumps(results))


if __name__ == '__main__':
    main()
