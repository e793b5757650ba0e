#!/usr/bin/env bash
# The lab: a QEMU node deployed through a real standalone Ironic with the
# fuel-agent driver, on this machine alone (see doc/source/lab.rst).
#   tools/lab.sh            up + one RAID1 + LVM deploy, marker, timings
#   tools/lab.sh test       every scenario on a fresh lab, then down
#   tools/lab.sh down       remove everything the lab made
# Run as root. Everything that talks on the network runs inside the
# namespace the lab creates.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c 'import ironic, ironic_fa_driver, fa_agent' \
    2>/dev/null; then
  tools/setup.sh
fi
export PYTHONPATH="$PWD/tools${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m lab "$@"
