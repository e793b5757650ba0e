#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: the disk tools
# (as root, with apt-get) and a venv in .venv with the agent, the driver
# and the test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB_PACKAGES="parted gdisk util-linux e2fsprogs xfsprogs dosfstools btrfs-progs
  qemu-utils zstd xz-utils bzip2 gzip genisoimage udev tar acl attr mdadm
  qemu-system-x86 ovmf"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=$(for p in $DEB_PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
  if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:" $missing
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# pbr needs a version when there is no git tag.
export PBR_VERSION=${PBR_VERSION:-0.1.0}
# The filter hides this machine's pip.conf warnings about absent local
# indexes; pip's own exit status is kept. wheel: the ramdisk build makes
# the agent's wheel with this venv's pbr (no build isolation, no index).
.venv/bin/pip install -q --disable-pip-version-check wheel \
  -r test-requirements.txt -r doc/requirements.txt \
  -e ./agent -e . 2>&1 | { grep -v 'is ignored: it is neither' || true; }
.venv/bin/python -c 'import fa_agent, ironic_fa_driver' \
  || { echo "setup: the packages did not install" >&2; exit 1; }
