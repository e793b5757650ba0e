#!/usr/bin/env python3
"""Coverage-guided mutation fuzzer for every reader of untrusted scheme
input (issue 10): the validator, the provision envelope, the Fuel data
driver and the fa-scheme / provision entry functions.

    PYTHONPATH=agent python tests/fuzz/fuzz_scheme.py --seconds 600

Documents start from tests/fuzz/corpus/ (native-*, fuel-*, envelope-*)
and are mutated: type swaps, deep nesting, huge numbers, unicode,
duplicate and swapped ids, missing and extra keys. A mutant that reaches
new lines of fa_agent joins the live corpus. A finding is any exception
escaping an entry point other than the documented ones, and any error
whose path does not start with ``$``. Exit status 1 when there are any;
``--save DIR`` writes each finding's document there.
"""

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
import traceback

from fa_agent import conf as agent_conf
from fa_agent import errors as agent_errors
from fa_agent import input_format
from fa_agent.cmd import provision as provision_cmd
from fa_agent.cmd import scheme as scheme_cmd
from fa_agent.data_drivers import nailgun
from fa_agent.scheme import validator

HERE = os.path.dirname(os.path.abspath(__file__))
# The validator's nesting limit (32 where it has none, to fuzz old code).
DEPTH = getattr(validator, 'MAX_DEPTH', 32)

CORPUS = os.path.join(HERE, 'corpus')
PACKAGE = os.path.dirname(os.path.abspath(validator.__file__)).rsplit(
    os.sep, 1)[0]

STRINGS = ['', ' ', 'sda', 'd0', 'p1', 'root', '/', '/boot', '/boot/efi',
           '..', '/a/../b', 'x' * 300, '\u00e9\u4e2d\U0001f600', '\x00\n\t',
           'remaining', '50%', '1 MiB', '-1 GiB', '1e999 B', 'ext4',
           'vfat', 'swap', 'disk', 'partition', 'raid', 'volume_group',
           'logical_volume', 'filesystem', 'vg', 'lv', 'pv', 'boot',
           'uefi', 'bios', 'both', 'raw', 'qcow2', 'tar', 'fs_image',
           'https://127.0.0.1/i', 'file:///etc/shadow', '$(reboot)',
           'a' * 64, '9' * 99 + ' B', 'none', 'erase', 'provision',
           'ironic-fa-provision', '1.0', '2.0']


def scalars(rng):
    return rng.choice([
        None, True, False, 0, 1, -1, 7, 2 ** 31, 2 ** 64, 10 ** 99,
        -10 ** 99, 0.5, 1e308, -0.0, rng.choice(STRINGS),
        rng.randrange(-5, 70000)])


def value(rng, depth=0):
    """A random JSON value, small."""
    roll = rng.random()
    if depth > 3 or roll < 0.6:
        return scalars(rng)
    if roll < 0.8:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(STRINGS + ['type', 'id', 'device', 'devices']):
            value(rng, depth + 1) for _ in range(rng.randrange(4))}


def nodes(doc):
    """Every (container, key) pair in ``doc``, iteratively."""
    found, todo = [], [doc]
    while todo:
        node = todo.pop()
        items = (node.items() if isinstance(node, dict)
                 else enumerate(node) if isinstance(node, list) else ())
        for key, child in items:
            found.append((node, key))
            todo.append(child)
    return found


def ids(doc):
    return [v for c, k in nodes(doc) if k == 'id' and isinstance(v := c[k],
                                                                 str)]


def nest(inner, levels):
    for _ in range(levels):
        inner = [inner]
    return inner


def mutate(rng, doc):
    """One random change to ``doc`` (in place where possible)."""
    places = nodes(doc)
    if not places:
        return value(rng)
    container, key = rng.choice(places)
    roll = rng.randrange(12)
    if roll == 0:       # type swap
        container[key] = value(rng)
    elif roll == 1:     # deep nesting, under and over the limit
        container[key] = nest(container[key], rng.choice(
            [DEPTH - 3, DEPTH + 1, 3000]))
    elif roll == 2:     # missing key / list item
        del container[key]
    elif roll == 3 and isinstance(container, dict):   # extra key
        container[rng.choice(STRINGS)] = value(rng)
    elif roll == 4:     # an id or reference from elsewhere
        known = ids(doc) or ['d0']
        container[key] = rng.choice(known)
    elif roll == 5 and isinstance(container, list):   # duplicate an item
        # Shared, not copied: the item may be nested thousands deep.
        container.insert(rng.randrange(len(container) + 1), container[key])
    elif roll == 6:     # wrap in a list / an object
        container[key] = rng.choice([[container[key]],
                                     {'id': container[key]}])
    elif roll == 7:     # huge or odd numbers
        container[key] = rng.choice([10 ** 100, 10 ** 99, -2 ** 63,
                                     2 ** 1000, 1e300, 0, -1, True])
    elif roll == 8 and isinstance(container[key], str):   # text mutation
        text = container[key]
        cut = rng.randrange(len(text) + 1)
        container[key] = text[:cut] + rng.choice(STRINGS) + text[cut:]
    elif roll == 9 and isinstance(container[key], list):  # many copies
        container[key] = container[key] * rng.choice([2, 50])
    elif roll == 10:    # swap two scalars (containers could make a cycle)
        other, okey = rng.choice(places)
        with contextlib.suppress(KeyError, IndexError):
            if not isinstance(container[key], (dict, list)) and \
                    not isinstance(other[okey], (dict, list)):
                container[key], other[okey] = other[okey], container[key]
    else:               # type field of another object type
        container[key] = rng.choice(['disk', 'partition', 'raid', 'vg',
                                     'volume_group', 'logical_volume',
                                     'filesystem', 'lv', 'pv', 'boot'])
    return doc


class Findings:
    def __init__(self, save=None):
        self.tracebacks = {}
        self.pathless = {}
        self.save = save

    def record(self, kind, key, doc, detail):
        table = self.tracebacks if kind == 'traceback' else self.pathless
        if key in table:
            return
        table[key] = detail
        if self.save:
            os.makedirs(self.save, exist_ok=True)
            name = '%s-%d.json' % (kind, len(table))
            with open(os.path.join(self.save, name), 'w') as f:
                f.write(_dump(doc) or '"(not serialisable)"')

    @property
    def count(self):
        return len(self.tracebacks) + len(self.pathless)


def _dump(doc):
    """JSON text of ``doc``, or None when even json.dumps cannot (nested
    past the recursion limit, a number too long for str())."""
    try:
        return json.dumps(doc)
    except (RecursionError, ValueError):
        return None


def _check_paths(findings, doc, where, errors):
    for error in errors:
        if not (isinstance(error.path, str) and error.path.startswith('$')):
            findings.record('pathless', (where, error.message[:40]), doc,
                            '%s: %r' % (where, error))


def _traceback_key(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return (type(exc).__name__, last.filename if last else '',
            last.lineno if last else 0)


def run_one(findings, kind, doc, rng):
    """Feed ``doc`` to every entry point of its kind."""
    targets = []
    if kind == 'native':
        targets += [('validate', lambda: validator.validate(doc)),
                    ('load', lambda: validator.load(doc)),
                    ('validate_erase', lambda: validator.validate_erase(doc))]
    elif kind == 'envelope':
        targets.append(('parse', lambda: input_format.parse(doc)))
    else:
        targets.append(('nailgun', lambda: nailgun.convert(doc)))
    for where, call in targets:
        try:
            result = call()
        except validator.InvalidScheme as exc:
            _check_paths(findings, doc, where, exc.errors)
        except input_format.InputError as exc:
            if not str(exc).startswith('$'):
                findings.record('pathless', (where, str(exc)[:40]), doc,
                                '%s: %s' % (where, exc))
        except Exception as exc:
            findings.record('traceback', _traceback_key(exc), doc,
                            '%s: %s' % (where, ''.join(
                                traceback.format_exception(exc))))
        else:
            if where in ('validate', 'validate_erase'):
                _check_paths(findings, doc, where, result)
    # The CLIs read files: about one document in ten, as text (maybe
    # nested past the parser's recursion limit).
    if rng.random() < 0.1:
        run_cli(findings, kind, doc, rng)


def run_cli(findings, kind, doc, rng):
    text = _dump(doc)
    if text is None:
        return
    if rng.random() < 0.2:
        text = '[' * 100000 + text + ']' * 100000
    driver = 'nailgun' if kind == 'fuel' else 'ironic'
    with tempfile.NamedTemporaryFile('w', suffix='.json') as f:
        f.write(text)
        f.flush()
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), \
                    contextlib.redirect_stdout(io.StringIO()):
                code = scheme_cmd.main(['validate', f.name,
                                        '--data-driver', driver])
            if code not in (0, 1):
                raise AssertionError('fa-scheme exit code %r' % code)
        except Exception as exc:
            findings.record('traceback', _traceback_key(exc), doc,
                            'fa-scheme: %s' % ''.join(
                                traceback.format_exception(exc)))
        conf = agent_conf.new_conf()
        conf(['--input-data-file', f.name, '--data-driver', driver],
             project='fa-agent', default_config_files=[])
        try:
            provision_cmd.load_request(conf)
        except agent_errors.BadInput:
            pass
        except Exception as exc:
            findings.record('traceback', _traceback_key(exc), doc,
                            'provision: %s' % ''.join(
                                traceback.format_exception(exc)))


class Coverage:
    """Lines of fa_agent run by one call, through sys.settrace."""

    def __init__(self):
        self.seen = set()
        self.current = set()

    def _local(self, frame, event, arg):
        if event == 'line':
            self.current.add((frame.f_code.co_filename, frame.f_lineno))
        return self._local

    def _global(self, frame, event, arg):
        if frame.f_code.co_filename.startswith(PACKAGE):
            return self._local
        return None

    @contextlib.contextmanager
    def measure(self):
        self.current = set()
        sys.settrace(self._global)
        try:
            yield
        finally:
            sys.settrace(None)

    def new(self):
        fresh = self.current - self.seen
        self.seen |= fresh
        return bool(fresh)


def load_corpus():
    corpus = []
    for name in sorted(os.listdir(CORPUS)):
        if name.endswith('.json'):
            with open(os.path.join(CORPUS, name)) as f:
                corpus.append((name.split('-')[0], json.load(f)))
    return corpus


def fuzz(seconds, seed=None, save=None, guided=True, out=None):
    """Fuzz for ``seconds``; returns (documents, findings)."""
    out = out or sys.stdout
    seed = seed if seed is not None else int(time.time())
    rng = random.Random(seed)
    live = load_corpus()
    findings = Findings(save)
    coverage = Coverage() if guided else None
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind, parent = rng.choice(live)
        doc = json.loads(json.dumps(parent))
        for _ in range(rng.randrange(1, 5)):
            doc = mutate(rng, doc)
        if coverage is None:
            run_one(findings, kind, doc, rng)
        else:
            with coverage.measure():
                run_one(findings, kind, doc, rng)
            # Mutants nested past the limit stay out: copying them is slow
            # and they only ever reach the depth check.
            if coverage.new() and len(live) < 2000 and \
                    _depth_ok(doc):
                live.append((kind, doc))
        count += 1
    print('seed %d: %d documents fuzzed in %ds, live corpus %d, '
          '%d tracebacks, %d errors without a JSON path'
          % (seed, count, seconds, len(live), len(findings.tracebacks),
             len(findings.pathless)), file=out)
    for detail in list(findings.tracebacks.values()) + list(
            findings.pathless.values()):
        print(detail, file=out)
    return count, findings


def _depth_ok(doc, limit=DEPTH + 8):
    """Whether ``doc`` is shallow enough to copy and keep as a parent."""
    todo = [(doc, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            todo.extend((child, depth + 1) for child in node)
    return _dump(doc) is not None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=60)
    parser.add_argument('--seed', type=int)
    parser.add_argument('--save', help='directory for failing documents')
    parser.add_argument('--no-coverage', action='store_true',
                        help='plain random mutation (faster, blind)')
    args = parser.parse_args(argv)
    _, findings = fuzz(args.seconds, args.seed, args.save,
                       guided=not args.no_coverage)
    return 1 if findings.count else 0


if __name__ == '__main__':
    sys.exit(main())
