#!/usr/bin/env bash
# Sets up a venv (.venv) with both packages and runs every test.
# As root it also installs the disk tools the functional tests use
# (they skip, saying why, when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec .venv/bin/python -m pytest -ra "$@" tests
