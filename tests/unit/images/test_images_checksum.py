"""The checksum verifier."""

import hashlib

import pytest

from fa_agent import errors
from fa_agent.images import checksum
from fa_agent.scheme import model


@pytest.mark.parametrize('algorithm', ['sha256', 'sha512', 'md5'])
def test_matching_checksum_passes(algorithm):
    value = hashlib.new(algorithm, b'abcdef').hexdigest()
    # md5 only where the operator allows it (test_security_md5_agent.py)
    verifier = checksum.Verifier(model.Checksum(algorithm, value.upper()),
                                 allow_md5=algorithm == 'md5')
    verifier.update(b'abc')
    verifier.update(b'def')
    assert verifier.verify() == value


def test_mismatch_raises_with_both_digests():
    expected = hashlib.sha256(b'good').hexdigest()
    verifier = checksum.Verifier(model.Checksum('sha256', expected),
                                 'image root')
    verifier.update(b'bad')
    with pytest.raises(errors.ChecksumMismatch) as caught:
        verifier.verify()
    message = str(caught.value)
    assert 'image root' in message and expected in message
    assert hashlib.sha256(b'bad').hexdigest() in message
    assert caught.value.exit_code == 15


def test_reset_forgets_what_was_hashed():
    expected = hashlib.sha256(b'good').hexdigest()
    verifier = checksum.Verifier(model.Checksum('sha256', expected))
    verifier.update(b'partial garbage')
    verifier.reset()
    verifier.update(b'good')
    assert verifier.verify() == expected


def test_no_checksum_verifies_nothing():
    verifier = checksum.Verifier(None)
    verifier.update(b'anything')
    assert verifier.verify() is None


def test_unknown_algorithm_is_bad_input():
    with pytest.raises(errors.BadInput, match='sha1'):
        checksum.Verifier(model.Checksum('sha1', 'ab'))
