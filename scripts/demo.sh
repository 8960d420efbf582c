#!/usr/bin/env bash
# The main job: installs what is missing, builds, then compiles built-in workloads (an MLP, a
# Llama-style decoder layer on one chip and split over the eight chips of node8, a BERT encoder
# layer, ResNet-50 on a small image), simulates them and checks their values against the host
# reference and their cycles against the compiler's prediction; then shows the architecture,
# hand-written example programs and the program formats.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
lpu="${LPU_BUILD_DIR:-$root/build}/models/lpu"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo
echo "== lpu workload mlp --param batch=16 --param sizes=512,1024,512 --param dtype=fp32 -o mlp.onnx"
"$lpu" workload mlp --param batch=16 --param sizes=512,1024,512 --param dtype=fp32 -o "$out/mlp.onnx"
echo
echo "== lpu compile mlp.onnx --arch tsp-v1 -o mlp.lpubin --report compile.json"
"$lpu" compile "$out/mlp.onnx" --arch tsp-v1 -o "$out/mlp.lpubin" --report "$out/compile.json"
echo
echo "== lpu verify mlp.onnx (compile, simulate, compare with the host reference and the prediction)"
"$lpu" verify "$out/mlp.onnx" --arch tsp-v1
echo
echo "== a Llama-style decoder layer, one decode step over a 64-token KV cache (fp16)"
"$lpu" workload llama-decoder -o "$out/llama.onnx"
"$lpu" verify "$out/llama.onnx" --arch tsp-v1
echo
echo "== the decoder layer (8 heads) split over node8, eight tsp-v1 chips fully connected by C2C links:"
echo "   heads, MLP columns and rows over the chips, all-reduces scheduled on the links, int8;"
echo "   checked bit for bit against the single-chip program, with the per-link figures"
"$lpu" workload llama-decoder --param preset=custom --param dim=256 --param heads=8 --param ffn=512 \
  -o "$out/llama8.onnx"
"$lpu" verify "$out/llama8.onnx" --system node8 --precision int8
echo
echo "== a BERT encoder layer (256 wide, 4 heads), sequence 64 (fp16)"
"$lpu" workload bert-encoder --param preset=small --param seq=64 -o "$out/bert.onnx"
"$lpu" verify "$out/bert.onnx" --arch tsp-v1
echo
echo "== ResNet-50 (the full layer graph) on a 32 x 32 image (fp16)"
"$lpu" workload resnet50 --param size=32 -o "$out/resnet50.onnx"
"$lpu" verify "$out/resnet50.onnx" --arch tsp-v1
echo
echo "== lpu arch show tsp-v1 --summary"
"$lpu" arch show tsp-v1 --summary
echo
echo "== derived figures (lpu arch show tsp-v1, excerpt)"
"$lpu" arch show tsp-v1 | sed -n '/"derived"/,/}/p'
echo
echo "== lpu run testbenches/programs/chain_tiny.lpuasm (MEM -> VXM -> MEM on the tiny chip)"
"$lpu" run "$root/testbenches/programs/chain_tiny.lpuasm" --output-dir "$out/chain"
echo
echo "== lpu run testbenches/programs/transpose_tsp.lpuasm --report transpose.json (tsp-v1, SXM)"
"$lpu" run "$root/testbenches/programs/transpose_tsp.lpuasm" --output-dir "$out/transpose" --report "$out/transpose.json"
echo "   report excerpt:"
grep -E '"(cycles|predicted_cycles|cycles_match_prediction|instructions|host_dma_seconds)"' "$out/transpose.json" | sed 's/^/   /'
echo
echo "== lpu run testbenches/programs/two_chips_tiny.lpuasm --report two.json (a vector over a C2C link)"
"$lpu" run "$root/testbenches/programs/two_chips_tiny.lpuasm" --output-dir "$out/two" --report "$out/two.json"
echo "   link 0, chip 0 -> chip 1 (report excerpt):"
sed -n '/"links"/,/"vectors"/p' "$out/two.json" | grep -E '"(bytes|busy_fraction|crc_errors|vectors)"' | sed 's/^ */   /'
echo
echo "== lpu verify mlp on two tiny chips, int8, every unit with RTL in lockstep (docs/cosim.md)"
"$lpu" workload mlp --param sizes=32,64,32 --param batch=2 --param dtype=fp32 -o "$out/mlp_tiny.onnx" >/dev/null
"$lpu" verify "$out/mlp_tiny.onnx" --system tiny --set system.chips=2 \
  --set system.topology=fully_connected --set chip.mem.slices_per_hemisphere=9 \
  --set 'chip.slice_order=["MXM","SXM","MEM*9","VXM","MEM*9","SXM","MXM"]' --precision int8 \
  --unit vxm=lockstep --unit mem=lockstep --unit sxm=lockstep --unit mxm=lockstep \
  --unit c2c=lockstep --waves "$out/mlp_tiny.fst" | grep -E "cycles|outputs|lockstep|waves|verified"
echo
echo "== lpu arch show rack72 --summary (72 chips: nine nodes of eight in a dragonfly)"
"$lpu" arch show rack72 --summary | grep -E "^rack72|system"
echo
echo "== lpu asm testbenches/programs/every_opcode.lpuasm -o every_opcode.lpubin"
"$lpu" asm "$root/testbenches/programs/every_opcode.lpuasm" -o "$out/every_opcode.lpubin"
echo "   $(stat -c %s "$out/every_opcode.lpubin") bytes"
echo
echo "== lpu disasm every_opcode.lpubin (first 16 lines)"
"$lpu" disasm "$out/every_opcode.lpubin" -o "$out/every_opcode.lpuasm"
head -n 16 "$out/every_opcode.lpuasm"
echo "..."
"$lpu" asm "$out/every_opcode.lpuasm" -o "$out/again.lpubin" 2>/dev/null
if cmp -s "$out/every_opcode.lpubin" "$out/again.lpubin"; then
  echo "== round trip text -> binary -> text -> binary: byte-identical"
else
  echo "== round trip FAILED: binaries differ" >&2
  exit 1
fi
