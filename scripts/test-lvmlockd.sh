#!/bin/bash
# Tests against real lvmlockd + sanlock: two QEMU TCG guests sharing one disk (test/lvmlockd/).
# Installs the Debian packages they need when run as root, builds, runs the tests one file at a
# time. Every QEMU process the tests started is killed by PID at the end, also after a failure or
# Ctrl-C, and the run directories are removed; the guest image stays cached in .cache/lvmlockd/.
#
#   scripts/test-lvmlockd.sh [--failover] [--bench]
#     --failover   also run the host-failure test (waits out a sanlock lease: about 3.5 min more)
#     --bench      afterwards run the lock-operation benchmark (about 2.5 min)
# Environment: LVMLOCKD_TESTBED_IO_TIMEOUT=N runs lvmlockd -o N (sanlock I/O timeout; default 10 s);
# LVMLOCKD_TESTBED_QEMU=/path/to/qemu-system-x86_64 uses another QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS_DIR="${LVMLOCKD_TESTBED_CACHE:-$ROOT/.cache/lvmlockd}/runs"
BENCH=0
for arg in "$@"; do
  case "$arg" in
    --failover) export LVMLOCKD_TESTBED_FAILOVER=1 ;;
    --bench) BENCH=1 ;;
    *) echo "usage: $0 [--failover] [--bench]" >&2; exit 2 ;;
  esac
done

# Kills QEMU processes whose shared disk lies in this checkout's run directory (only the tests
# start those), then removes the run directories.
sweep() {
  local proc pid cmd
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    cmd=$(tr '\0' ' ' < "$proc/cmdline" 2>/dev/null) || continue
    case "$cmd" in
      *qemu-system-x86_64*"file=$RUNS_DIR/"*)
        kill -KILL "$pid" 2>/dev/null && echo "test-lvmlockd: killed leftover QEMU process $pid" >&2 ;;
    esac
  done
  rm -rf "$RUNS_DIR"
}
trap sweep EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What the guest image is built from (kernel and busybox-static can also come by apt-get download).
PACKAGES=(qemu-system-x86 lvm2 lvm2-lockd sanlock busybox-static kmod cpio gzip)
missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" == ii* ]] || missing+=("$pkg")
done
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # The guest kernel is fetched with apt-get download: apt must know it.
  if [ ${#missing[@]} -gt 0 ] || [ -z "$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null)" ]; then
    echo "test-lvmlockd: apt-get update" >&2
    timeout 600 apt-get update -qq
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test-lvmlockd: installing Debian packages: ${missing[*]}" >&2
    timeout 1200 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
elif [ ${#missing[@]} -gt 0 ]; then
  echo "test-lvmlockd: missing Debian packages: ${missing[*]} (not root, not installing); the tests will be skipped" >&2
fi

if [ ! -d node_modules ]; then
  timeout 900 npm ci --no-audit --no-fund
fi
# Other parts of the project may fail to type-check; tsc still emits, and this folder's own
# files are checked by the tests compiling at all.
timeout 600 npx tsc -p tsconfig.json || echo "test-lvmlockd: tsc reported errors (above); running what it emitted" >&2

rc=0
node --test --test-concurrency=1 dist/test/lvmlockd/ || rc=$?
if [ "$BENCH" = 1 ]; then
  node dist/test/lvmlockd/bench.js || rc=$((rc ? rc : $?))
fi
exit "$rc"
