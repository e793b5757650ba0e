#!/usr/bin/env bash
# Sets up a venv (.venv) with both packages and runs every test.
# As root it also installs the disk tools the functional tests use
# (they skip, saying why, when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
tools/setup.sh
echo "setup (tools/setup.sh) took $((SECONDS - started)) s"
exec .venv/bin/python -m pytest -ra "$@" tests
