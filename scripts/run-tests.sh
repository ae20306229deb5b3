#!/bin/bash
# The test command of the README (npm test), in four stages, each with its own summary:
#   1. unit and integration tests: a private dbus-daemon, the real libvirt-dbus (Test driver),
#      the LVM simulator and the built daemon; and the seeded cluster simulation (10,000
#      schedules of the real engine on 2 to 4 simulated hosts);
#   2. the Debian package: built, checked by lintian, installed into fresh Debian 12 and 13
#      systems (mmdebstrap) and smoke-tested there; then the runtime container image, built with
#      podman on a Debian base image made locally, and smoke-tested;
#   3. the cluster bed: two Debian 12 hypervisors under QEMU TCG with systemd, the project
#      installed from its .deb, the daemon started and checked under systemd and journald;
#      then end-to-end live migrations between two isolated libvirtd instances with QEMU guests;
#   4. the real lvmlockd + sanlock test bed in QEMU guests, holding the simulator and the
#      daemon's LVM layer to the same contract.
# Stages 2 to 4 need root (and 3 and 4 namespaces and QEMU); where those are missing their tests say loudly
# that they are skipped and why. Every stage runs; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

failed=()
passed_tests=0
failed_tests=0
stage_log=$(mktemp)
trap 'rm -f "$stage_log"' EXIT
stage() {
  local name=$1 rc n
  shift
  echo "=== ${name}"
  "$@" 2>&1 | tee "$stage_log"
  rc=${PIPESTATUS[0]}
  # Node's test runner ends each run with "# pass N" and "# fail N": add them up for one total.
  n=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$stage_log" | tail -n 1)
  passed_tests=$((passed_tests + ${n:-0}))
  n=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$stage_log" | tail -n 1)
  failed_tests=$((failed_tests + ${n:-0}))
  # The package check counts its own checks the same way.
  n=$(sed -n 's/^package: \([0-9][0-9]*\) passed, .*$/\1/p' "$stage_log" | tail -n 1)
  passed_tests=$((passed_tests + ${n:-0}))
  n=$(sed -n 's/^package: [0-9]* passed, \([0-9][0-9]*\) failed.*$/\1/p' "$stage_log" | tail -n 1)
  failed_tests=$((failed_tests + ${n:-0}))
  n=$(sed -n 's/^image: \([0-9][0-9]*\) passed, .*$/\1/p' "$stage_log" | tail -n 1)
  passed_tests=$((passed_tests + ${n:-0}))
  n=$(sed -n 's/^image: [0-9]* passed, \([0-9][0-9]*\) failed.*$/\1/p' "$stage_log" | tail -n 1)
  failed_tests=$((failed_tests + ${n:-0}))
  if [ "$rc" -eq 0 ]; then
    echo "=== ${name}: passed"
  else
    echo "=== ${name}: FAILED (exit ${rc})"
    failed+=("$name")
  fi
}

bash scripts/ensure-deps.sh || exit 1
stage "unit, integration and cluster simulation tests" node --test --test-concurrency=2 dist/test/unit/ dist/test/integration/ dist/test/sim/ dist/test/package/
stage "Debian package" bash scripts/check-package.sh
stage "runtime container image" bash scripts/test-image.sh
stage "two-hypervisor cluster bed" bash scripts/test-cluster.sh
stage "end-to-end migration tests" bash scripts/test-e2e.sh
stage "real lvmlockd test bed" bash scripts/test-lvmlockd.sh --failover

if [ ${#failed[@]} -gt 0 ]; then
  echo "=== failed stages: ${failed[*]}"
  # A stage can fail before its runner counts anything: never report it as all passed.
  [ "$failed_tests" -gt 0 ] || failed_tests=${#failed[@]}
  echo "tests: ${passed_tests} passed, ${failed_tests} failed"
  exit 1
fi
echo "=== all stages passed"
echo "tests: ${passed_tests} passed, ${failed_tests} failed"
