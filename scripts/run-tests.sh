#!/bin/bash
# The test command of the README: unit tests, then integration tests against a real private
# dbus-daemon, the real libvirt-dbus and the LVM simulator, in one run of node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PATH:/usr/sbin:/sbin"
exec node --test --test-concurrency=2 dist/test/unit/ dist/test/integration/
