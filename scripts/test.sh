#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test. Exit code is CTest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "${LPU_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "${LPU_JOBS:-$(nproc)}"
