#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test. Exit code is CTest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "${LPU_BUILD_DIR:-$root/build}"
status=0
ctest --output-on-failure -j "${LPU_JOBS:-$(nproc)}" || status=$?
# The ONNX backend suite's counts (CTest runs it as the test onnx_suite; this repeats its summary).
echo "ONNX backend node tests (libonnx-testdata), compiled and simulated on tsp-v1:"
testbenches/onnx_suite --known "$root/testbenches/onnx/known_failures.txt" | tail -n 2 || true
exit "$status"
