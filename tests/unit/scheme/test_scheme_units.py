"""Sizes as operators write them: every unit, percentages, remaining."""

import pytest

from fa_agent.scheme import units

MiB = 1024 ** 2


@pytest.mark.parametrize('text, size_bytes', [
    ('1 B', 1),
    ('512B', 512),
    ('1 KiB', 1024),
    ('4 MiB', 4 * MiB),
    ('2 GiB', 2 * 1024 ** 3),
    ('1 TiB', 1024 ** 4),
    ('1 KB', 1000),
    ('3 MB', 3 * 1000 ** 2),
    ('10 GB', 10 * 1000 ** 3),
    ('2 TB', 2 * 1000 ** 4),
    ('1.5 GiB', 3 * 512 * MiB),
    ('  7   MiB  ', 7 * MiB),
])
def test_units(text, size_bytes):
    size = units.parse_size(text)
    assert size.kind == 'bytes'
    assert size.value == size_bytes


@pytest.mark.parametrize('text, container, mib', [
    ('1 B', 100, 1),            # rounds up: never smaller than asked
    ('1 MiB', 100, 1),
    ('1 MB', 100, 1),           # 1000000 B is just under 1 MiB
    ('2 MB', 100, 2),
    ('1 GB', 100, 954),         # 10**9 / 2**20 = 953.67 -> 954
    ('50%', 1001, 500),         # percentages round down
    ('100%', 1001, 1001),
    ('33.3%', 1000, 333),
])
def test_resolve_mib(text, container, mib):
    assert units.parse_size(text).resolve_mib(container) == mib


@pytest.mark.parametrize('text, value', [
    ('50%', 50), ('0.5%', 0.5), ('100 %', 100)])
def test_percent(text, value):
    size = units.parse_size(text)
    assert (size.kind, size.value) == ('percent', value)
    assert str(size) == '%g%%' % value


@pytest.mark.parametrize('text', ['remaining', '  remaining '])
def test_remaining(text):
    size = units.parse_size(text)
    assert size.is_remaining
    assert size is units.REMAINING
    with pytest.raises(units.SizeError, match='siblings'):
        size.resolve_mib(100)


@pytest.mark.parametrize('text, reason', [
    ('10', 'write a number and a unit'),
    ('GiB', 'write a number and a unit'),
    ('-1 GiB', 'write a number and a unit'),
    ('1e3 MiB', 'write a number and a unit'),
    ('10 gib', "unknown unit 'gib'; units are case-sensitive"),
    ('10 Mb', "unknown unit 'Mb'"),
    ('10 G', "unknown unit 'G'"),
    ('0 MiB', 'above zero'),
    ('0.1 B', 'above zero'),
    ('0%', 'above 0 and at most 100'),
    ('101%', 'above 0 and at most 100'),
    ('', 'write a number and a unit'),
    ('9' * 400 + ' B', 'too large'),
])
def test_errors(text, reason):
    with pytest.raises(units.SizeError, match=reason):
        units.parse_size(text)


@pytest.mark.parametrize('value', [10, None, 1.5, ['1 GiB'], {'size': 1}])
def test_not_a_string(value):
    with pytest.raises(units.SizeError, match='must be a string'):
        units.parse_size(value)


@pytest.mark.parametrize('mib, text', [
    (1, '1 MiB'), (1023, '1023 MiB'), (1024, '1 GiB'), (1536, '1.5 GiB'),
    (10240, '10 GiB')])
def test_mib_to_human(mib, text):
    assert units.mib_to_human(mib) == text
