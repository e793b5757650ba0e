"""Issue 10, "prove it": the fuzz harness (tests/fuzz/fuzz_scheme.py) runs
for a bounded time over the native format, the Fuel format and the
provision envelope, and must find 0 tracebacks and 0 errors without a
JSON path. FA_FUZZ_SECONDS sets the time (default 60), FA_FUZZ_SEED the
seed (default: the time, printed, so a failure can be replayed with
``python tests/fuzz/fuzz_scheme.py --seed N``)."""

import importlib.util
import io
import os

HARNESS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'fuzz', 'fuzz_scheme.py')


def _harness():
    spec = importlib.util.spec_from_file_location('fuzz_scheme', HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzz_finds_no_traceback_and_no_pathless_error():
    harness = _harness()
    seconds = float(os.environ.get('FA_FUZZ_SECONDS', '60'))
    seed = os.environ.get('FA_FUZZ_SEED')
    out = io.StringIO()
    count, findings = harness.fuzz(seconds, int(seed) if seed else None,
                                   out=out)
    report = out.getvalue()
    print(report)
    assert count > 0
    assert not findings.tracebacks, report
    assert not findings.pathless, report


def test_the_harness_catches_a_traceback(monkeypatch):
    """The harness would report a crash: proof it can fail."""
    harness = _harness()

    def broken(document, max_bytes=None):
        raise KeyError('storage')

    monkeypatch.setattr(harness.validator, 'validate', broken)
    _, findings = harness.fuzz(1, seed=1, guided=False, out=io.StringIO())
    assert any(key[0] == 'KeyError' for key in findings.tracebacks)


def test_the_harness_catches_a_pathless_error(monkeypatch):
    harness = _harness()
    monkeypatch.setattr(harness.validator, 'validate', lambda d: [
        harness.validator.SchemeError('storage', 'no $')])
    _, findings = harness.fuzz(1, seed=1, guided=False, out=io.StringIO())
    assert findings.pathless
