#!/bin/bash
# Cluster test bed (test/cluster/): two Debian 12 hypervisors under QEMU TCG, each with systemd,
# D-Bus, lvmlockd + sanlock and libvirt, linked point to point and sharing one raw disk, with the
# project installed in both from its own .deb by apt. Installs the host packages it needs when run
# as root, builds the .deb, runs the tests one file at a time. Every QEMU process the tests started
# is killed by PID at the end, also after a failure or Ctrl-C, and the run directories are removed;
# the hypervisor image stays cached in .cache/cluster/.
#
#   scripts/test-cluster.sh
# Environment: CLUSTER_TESTBED_CACHE=DIR (default .cache/cluster), CLUSTER_TESTBED_DEB=FILE (test
# this .deb instead of building one), LVMLOCKD_TESTBED_QEMU=/path/to/qemu-system-x86_64.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS_DIR="${CLUSTER_TESTBED_CACHE:-$ROOT/.cache/cluster}/runs"

# Kills QEMU processes whose overlay lies in this checkout's run directory (only these tests
# start those), then removes the run directories.
sweep() {
  local proc pid cmd
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    cmd=$(tr '\0' ' ' < "$proc/cmdline" 2>/dev/null) || continue
    case "$cmd" in
      *qemu-system-x86_64*"file=$RUNS_DIR/"*)
        kill -KILL "$pid" 2>/dev/null && echo "test-cluster: killed leftover QEMU process $pid" >&2 ;;
    esac
  done
  # The serial consoles and QEMU logs outlive the run, for a look after a failure.
  local keep="${RUNS_DIR%/runs}/last-run"
  mkdir -p "$keep"
  for f in "$RUNS_DIR"/run-*/*.console "$RUNS_DIR"/run-*/*.qemu.log; do
    [ -f "$f" ] && cp "$f" "$keep/"
  done
  rm -rf "$RUNS_DIR"
}
trap sweep EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# mmdebstrap builds the image, mkfs.ext4 packs it, qemu-img makes the overlays.
PACKAGES=(mmdebstrap qemu-system-x86 qemu-utils e2fsprogs)
missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" == ii* ]] || missing+=("$pkg")
done
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # The image's cache key comes from the host's apt lists: apt must know the packages.
  if [ ${#missing[@]} -gt 0 ] || [ -z "$(apt-cache show --no-all-versions libvirt-dbus 2>/dev/null)" ]; then
    echo "test-cluster: apt-get update" >&2
    timeout 600 apt-get update -qq
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test-cluster: installing Debian packages: ${missing[*]}" >&2
    timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
elif [ ${#missing[@]} -gt 0 ]; then
  echo "test-cluster: missing Debian packages: ${missing[*]} (not root, not installing); the tests will be skipped" >&2
fi

if [ ! -d node_modules ]; then
  timeout 900 npm ci --no-audit --no-fund
fi
if [ -z "${CLUSTER_TESTBED_DEB:-}" ]; then
  # Also compiles the project (tsc), tests included.
  bash scripts/package.sh
else
  timeout 600 npx tsc -p tsconfig.json
fi

node --test --test-concurrency=1 dist/test/cluster/
