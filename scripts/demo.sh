#!/bin/bash
# npm run demo: installs what is missing, builds, and runs the guided tour.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PATH:/usr/sbin:/sbin"
exec node dist/scripts/demo.js
