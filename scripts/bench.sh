#!/bin/bash
# npm run bench: the performance figures of the README, each next to its target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PATH:/usr/sbin:/sbin"
exec node dist/scripts/bench.js
