"""``fa-scheme``: check a partitioning scheme and show its plan offline.

    fa-scheme validate SCHEME.json [--inventory DISKS.json]
    fa-scheme plan SCHEME.json --inventory DISKS.json [--json]

SCHEME.json is a scheme, a provision.json, or (``--data-driver nailgun``)
Fuel provisioning data. DISKS.json is ``lsblk --json --bytes -o
NAME,PATH,SIZE,TYPE,ROTA,SERIAL,WWN,VENDOR,MODEL,HCTL,RO`` output or Ironic
inspection data. Exit status: 0 valid, 1 invalid or does not fit, 2 usage.
"""

import argparse
import json
import sys

from fa_agent import data_drivers
from fa_agent import input_format
from fa_agent import safe_json
from fa_agent.scheme import inventory
from fa_agent.scheme import planner
from fa_agent.scheme import validator


def _read_json(path):
    """The file's JSON, bounded: a deep or huge file is a ValueError
    naming the path, not a RecursionError."""
    with open(path, 'rb') as f:
        return safe_json.load(f, max_bytes=safe_json.MAX_INPUT_BYTES)


def _load_scheme(path, driver_name):
    """A Scheme from a bare scheme, a provision.json or another format."""
    document = _read_json(path)
    if driver_name == 'ironic' and isinstance(document, dict) \
            and 'format' not in document:
        return validator.load(document)
    return data_drivers.get_driver(driver_name, document).request.scheme


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='fa-scheme', description=__doc__.split('\n\n')[0])
    parser.add_argument('action', choices=('validate', 'plan'))
    parser.add_argument('scheme', help='scheme or provision data (JSON)')
    parser.add_argument('--inventory', help='disks: lsblk JSON or Ironic '
                        'inspection data')
    parser.add_argument('--data-driver', default='ironic',
                        help='input format of SCHEME (default: ironic)')
    parser.add_argument('--json', action='store_true',
                        help='print the plan as JSON')
    args = parser.parse_args(argv)
    if args.action == 'plan' and not args.inventory:
        parser.error('plan needs --inventory')
    try:
        scheme = _load_scheme(args.scheme, args.data_driver)
        devices = (inventory.load(_read_json(args.inventory))
                   if args.inventory else None)
        result = planner.plan(scheme, devices) if devices is not None else None
    except (validator.InvalidScheme, planner.PlanError) as exc:
        print('%s: %d problem(s)' % (args.scheme, len(exc.errors)),
              file=sys.stderr)
        for error in exc.errors:
            print('  ' + str(error), file=sys.stderr)
        return 1
    except (OSError, ValueError, input_format.InputError) as exc:
        print('%s: %s' % (args.scheme, exc), file=sys.stderr)
        return 1
    if args.action == 'validate':
        print('%s: valid%s' % (args.scheme,
                               ' and fits' if result is not None else ''))
    elif args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.to_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())
