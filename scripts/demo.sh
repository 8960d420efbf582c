#!/usr/bin/env bash
# The main job: installs what is missing, builds, and shows what the tool does today — the
# resolved tsp-v1 architecture with its derived figures, and an example program assembled to
# binary and disassembled back.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
lpu="${LPU_BUILD_DIR:-$root/build}/models/lpu"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo
echo "== lpu arch show tsp-v1 --summary"
"$lpu" arch show tsp-v1 --summary
echo
echo "== derived figures (lpu arch show tsp-v1, excerpt)"
"$lpu" arch show tsp-v1 | sed -n '/"derived"/,/}/p'
echo
echo "== lpu asm testbenches/programs/every_opcode.lpuasm -o every_opcode.lpubin"
"$lpu" asm "$root/testbenches/programs/every_opcode.lpuasm" -o "$out/every_opcode.lpubin"
echo "   $(stat -c %s "$out/every_opcode.lpubin") bytes"
echo
echo "== lpu disasm every_opcode.lpubin (first 40 lines)"
"$lpu" disasm "$out/every_opcode.lpubin" -o "$out/every_opcode.lpuasm"
head -n 40 "$out/every_opcode.lpuasm"
echo "..."
"$lpu" asm "$out/every_opcode.lpuasm" -o "$out/again.lpubin" 2>/dev/null
if cmp -s "$out/every_opcode.lpubin" "$out/again.lpubin"; then
  echo "== round trip text -> binary -> text -> binary: byte-identical"
else
  echo "== round trip FAILED: binaries differ" >&2
  exit 1
fi
