// Compiler benchmark (printed figures, not a test): for built-in workloads, the time to import,
// lower and schedule, the predicted cycles and the MXM/VXM utilisation the schedule reaches on
// tsp-v1. A workload the compiler cannot take yet is listed with the reason.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "common/diagnostics.h"
#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "compiler/workloads.h"

using namespace lpu;

int main() {
  const arch::Arch a = arch::load("tsp-v1");

  struct Case {
    std::string label, workload;
    std::map<std::string, std::string> params;
    compiler::Precision precision = compiler::Precision::kModel;
  };
  const auto int8 = compiler::Precision::kInt8;
  const std::vector<Case> cases = {
      {"gemm 1024x1024x1024 fp16", "gemm", {{"m", "1024"}, {"k", "1024"}, {"n", "1024"}}},
      {"gemm 256x4096x4096 fp32",
       "gemm",
       {{"m", "256"}, {"k", "4096"}, {"n", "4096"}, {"dtype", "fp32"}}},
      {"mlp 64 x 1024-4096-1024 fp16", "mlp", {{"batch", "64"}, {"sizes", "1024,4096,1024"}}},
      {"llama-decoder small (256 wide) fp16", "llama-decoder", {}},
      {"llama-decoder 1280 wide, 10 heads, ctx 256, fp16",
       "llama-decoder",
       {{"preset", "custom"}, {"dim", "1280"}, {"heads", "10"}, {"ffn", "3456"}, {"ctx", "256"}}},
      {"llama-decoder small, prefill 128 tokens after 64, fp16",
       "llama-decoder",
       {{"tokens", "128"}, {"ctx", "64"}}},
      {"llama-decoder 7B shapes, ctx 256, fp16",
       "llama-decoder",
       {{"preset", "7b"}, {"ctx", "256"}}},
      {"bert-encoder small (256 wide), seq 64, fp16",
       "bert-encoder",
       {{"preset", "small"}, {"seq", "64"}}},
      {"bert-encoder base (768 wide), seq 128, fp16", "bert-encoder", {}},
      {"resnet50 32 x 32, batch 1, fp16", "resnet50", {{"size", "32"}}},
      {"resnet50 224 x 224, batch 1, fp16", "resnet50", {}},
      {"resnet50 224 x 224, batch 1, int8", "resnet50", {}, int8},
      {"llama-decoder 7B shapes, ctx 256, int8",
       "llama-decoder",
       {{"preset", "7b"}, {"ctx", "256"}},
       int8},
      {"llama-decoder 7B width/heads, ffn 2048, ctx 256, int8",
       "llama-decoder",
       {{"preset", "custom"}, {"dim", "4096"}, {"heads", "32"}, {"ffn", "2048"}, {"ctx", "256"}},
       int8},
      {"llama-decoder 2560 wide, 20 heads, ffn 6912, ctx 256, int8",
       "llama-decoder",
       {{"preset", "custom"}, {"dim", "2560"}, {"heads", "20"}, {"ffn", "6912"}, {"ctx", "256"}},
       int8},
  };
  const auto dir = std::filesystem::temp_directory_path() / "lpu_bench_compile";
  std::filesystem::create_directories(dir);
  std::printf("Compiler on tsp-v1 (%s), one thread.\n\n", a.hash_hex().c_str());
  std::printf("%-48s %9s %10s %12s %8s %8s %8s\n", "workload", "compile s", "pred. cyc",
              "instructions", "MXM %", "VXM %", "MAC %");
  for (const auto& c : cases) {
    const std::string path = (dir / (c.workload + ".onnx")).string();
    try {
      compiler::write_workload(c.workload, c.params, path);
      const auto t0 = std::chrono::steady_clock::now();
      const compiler::Graph g = compiler::import_onnx(path);
      const compiler::Kernels k = compiler::lower_with_precision(g, a, c.precision);
      const compiler::Schedule s = compiler::schedule(k, a, path);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cyc = static_cast<double>(s.cycles);
      // The model's MACs against the peak of its product type over the predicted cycles.
      const double peak = static_cast<double>(arch::derive(a).mxm_macs) *
                          (c.precision == int8 ? 1.0 : a.chip.mxm.fp16_rate);
      std::printf("%-48s %9.3f %10llu %12zu %8.2f %8.2f %8.2f\n", c.label.c_str(), secs,
                  static_cast<unsigned long long>(s.cycles), s.program.instruction_count(),
                  100.0 * static_cast<double>(s.mxm_busy) / (cyc * a.chip.mxm.planes),
                  100.0 * static_cast<double>(s.vxm_busy) / (cyc * a.chip.vxm.alus()),
                  100.0 * static_cast<double>(k.model_macs) / (peak * cyc));
    } catch (const InputError& e) {
      std::printf("%-48s does not compile: %s\n", c.label.c_str(), e.what());
    }
    std::filesystem::remove(path);
  }
  std::printf(
      "\nint8 compile times include calibration (the float model on the host reference).\n"
      "MAC %%: the model's multiply-accumulates (Conv, MatMul, Gemm) over the peak of its product\n"
      "type (int8, or fp16 at chip.mxm.fp16_rate) times the predicted cycles.\n");
  return 0;
}
