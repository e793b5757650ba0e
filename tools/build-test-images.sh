#!/usr/bin/env bash
# Builds (or reuses from the cache) the test OS images: see
# agent/testimages/build.py and doc/source/ramdisk.rst. Run as root.
# --json prints the build record (artifact paths, formats, compression,
# sha256) alone on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
exec "$python" agent/testimages/build.py "$@"
