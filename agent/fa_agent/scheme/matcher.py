"""Chooses disks with root-device-hint style matchers.

A hint value may carry an operator, as in Ironic: ``">= 100"``,
``"<in> SSD"``, ``"<or> sda <or> sdb"``, ``"s== ABC"`` (see
oslo.utils specs_matcher). ``size`` is in GiB, as Ironic's hints are.
"""

from oslo_utils import specs_matcher

GiB = 1024 ** 3
_OPERATORS = ('=', 's==', 's!=', 's>=', 's>', 's<=', 's<', '<in>',
              '<all-in>', '<or>', '==', '!=', '>=', '<=', '>', '<')
_CASE_INSENSITIVE = ('serial', 'wwn', 'wwn_with_extension',
                     'wwn_vendor_extension', 'vendor', 'model')


def _normalise_name(value):
    value = str(value)
    return value if value.startswith('/dev/') else '/dev/' + value


def _has_operator(value):
    return isinstance(value, str) and value.split(' ', 1)[0] in _OPERATORS


def hint_matches(device, hint, wanted):
    """Whether one hint (``hint: wanted``) holds for a device."""
    actual = getattr(device, hint, None)
    if hint == 'size':
        actual = device.size // GiB
    if actual is None:
        return False
    if hint == 'rotational':
        if isinstance(wanted, str):
            wanted = wanted.strip().lower() in ('1', 'true', 'yes')
        return bool(actual) == bool(wanted)
    if _has_operator(wanted):
        return specs_matcher.match(str(actual), wanted)
    if hint == 'size':
        return actual == int(wanted)
    if hint == 'name':
        return _normalise_name(actual) == _normalise_name(wanted)
    if hint in _CASE_INSENSITIVE:
        return str(actual).strip().lower() == str(wanted).strip().lower()
    return str(actual) == str(wanted)


def matching(devices, match):
    """The devices for which every hint in ``match`` holds."""
    result = []
    for device in devices:
        try:
            if all(hint_matches(device, h, v) for h, v in match.items()):
                result.append(device)
        except (ValueError, TypeError):
            # A malformed hint value (say "size": ">= lots") matches nothing;
            # the planner then reports that the matcher hit no disk.
            continue
    return result
