#!/usr/bin/env bash
# Shows the main job offline, until a lab exists: sets up .venv
# (tools/setup.sh), then validates the two-disk RAID 1 + LVM example
# scheme and prints its plan for a sample node's disks (Ironic inspection
# data), then shows how a broken scheme is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
examples=doc/source/examples
show() { echo; echo "\$ fa-scheme $*"; .venv/bin/fa-scheme "$@"; }

show validate "$examples/raid1-lvm.json"
show plan "$examples/raid1-lvm.json" \
  --inventory "$examples/inventory-ironic.json"
# Every problem at once, each with its JSON path; exit status 1.
if show validate "$examples/invalid/schema-errors.json"; then
  echo "demo: the broken scheme was accepted" >&2
  exit 1
fi
