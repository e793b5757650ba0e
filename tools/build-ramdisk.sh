#!/usr/bin/env bash
# Builds (or reuses from the cache) the bootstrap ramdisk: see
# agent/ramdisk/build.py and doc/source/ramdisk.rst. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
exec "$python" agent/ramdisk/build.py "$@"
