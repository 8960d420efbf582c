// One Llama-2-70B-shaped decode step (80 layers of dim 8192, 64 heads, MLP 28672; int8 weights)
// in timing mode, on the system the compiler chooses for it. Prints why that system, the chips
// used, predicted and simulated cycles, the time per token and tokens per second per user, and the
// wall time and memory of each phase.
//
// Environment: LPU_BENCH_LAYERS (default 80), LPU_BENCH_CTX (cached tokens, default 255: the
// scores of the cache and the new token share one vector for now), LPU_BENCH_PRESET (70b; "tp8"
// is a small layer with 8 heads, for a quick run).
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "compiler/onnx_import.h"
#include "compiler/pipeline.h"
#include "compiler/workloads.h"
#include "system/run.h"

using namespace lpu;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double rss_gib() {
  std::ifstream f("/proc/self/statm");
  double pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0 * 1024.0);
}

double peak_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

int env_int(const char* name, int dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : dflt;
}

// `nodes` copies of node8's fully connected group of 8, chip c of node l joined to chip c of node
// l + 1 (port 7 out, port 8 in): the wiring a pipeline of tensor-parallel stages needs.
std::string chain_system(int nodes) {
  std::string links;
  auto link = [&](int a, int pa, int b, int pb) {
    links += std::string(links.empty() ? "" : ",\n") +
             "      {\"a\": {\"chip\": " + std::to_string(a) + ", \"port\": " + std::to_string(pa) +
             "}, \"b\": {\"chip\": " + std::to_string(b) + ", \"port\": " + std::to_string(pb) +
             "}}";
  };
  for (int l = 0; l < nodes; ++l)
    for (int i = 0; i < 8; ++i) {
      for (int j = i + 1; j < 8; ++j)  // port p of chip i reaches chip i + p + 1 (mod 8)
        link(8 * l + i, j - i - 1, 8 * l + j, 7 - (j - i));
      if (l + 1 < nodes) link(8 * l + i, 7, 8 * (l + 1) + i, 8);
    }
  return "{\n  \"base\": \"node8\",\n  \"name\": \"node8-chain" + std::to_string(nodes) +
         "\",\n  \"description\": \"" + std::to_string(nodes) +
         " nodes of eight tsp-v1 chips in a chain, chip c of each node linked to chip c of the "
         "next\",\n  \"system\": {\n    \"topology\": \"explicit\",\n    \"chips\": " +
         std::to_string(8 * nodes) + ",\n    \"links\": [\n" + links + "\n    ]\n  }\n}\n";
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const int layers = env_int("LPU_BENCH_LAYERS", 80);
  const int ctx = env_int("LPU_BENCH_CTX", 255);
  const std::string preset =
      std::getenv("LPU_BENCH_PRESET") ? std::getenv("LPU_BENCH_PRESET") : "70b";
  const auto dir = std::filesystem::temp_directory_path() / "lpu_bench_llama70b";
  std::filesystem::create_directories(dir);

  compiler::LayerStack stack;  // the program outlives the compiler's working memory
  {
    // The layer, as the model gives it (fp16 weights; quantized to int8 by the compiler).
    auto t = Clock::now();
    std::map<std::string, std::string> params = {{"ctx", std::to_string(ctx)}};
    if (preset == "tp8")
      params.insert({{"preset", "custom"}, {"dim", "256"}, {"heads", "8"}, {"ffn", "512"}});
    else if (preset == "mid")  // 2048 wide: for measuring the simulator on bigger programs
      params.insert({{"preset", "custom"}, {"dim", "2048"}, {"heads", "16"}, {"ffn", "4096"}});
    else
      params["preset"] = preset;
    const std::string model = (dir / "layer.onnx").string();
    compiler::write_workload("llama-decoder", params, model);
    compiler::Graph g = compiler::import_onnx(model);
    std::uint64_t weights = 0;  // int8 bytes of the products' weights
    for (const auto& n : g.nodes)
      if (n.op == "MatMul" && n.inputs.size() == 2 && n.inputs[1] >= 0 &&
          g.values[static_cast<std::size_t>(n.inputs[1])].constant)
        weights +=
            static_cast<std::uint64_t>(g.values[static_cast<std::size_t>(n.inputs[1])].elements());
    std::printf("bench_llama70b: %d layers of llama-decoder preset %s, ctx %d, int8\n", layers,
                preset.c_str(), ctx);
    std::printf("  layer model       written and read in %.1f s (%.2f GiB peak so far)\n", since(t),
                peak_gib());

    // The system: a layer's int8 weights do not fit one chip's MEM, so each layer is split over
    // the largest fully connected group (a node of 8); one layer per node, the nodes chained.
    const arch::Arch node = arch::load("node8");
    const double chip_mib = static_cast<double>(node.chip.mem_slices()) * node.chip.mem.depth *
                            node.chip.lanes() / (1024.0 * 1024.0);
    const double w_mib = static_cast<double>(weights) / (1024.0 * 1024.0);
    std::printf(
        "  choice            a layer's products hold %.1f MiB of int8 weights; a chip has "
        "%.1f MiB of MEM\n",
        w_mib, chip_mib);
    const std::string sys_file = (dir / "system.json").string();
    {
      std::ofstream f(sys_file, std::ios::trunc);
      f << chain_system(layers);
    }
    const arch::Arch sys = arch::load(sys_file);

    t = Clock::now();
    compiler::LayerStack st = compiler::compile_layer_stack(std::move(g), "x", "y", sys, layers, 8,
                                                            compiler::Precision::kInt8);
    const double compile_s = since(t);
    const compiler::Schedule& mid = st.schedules[1];
    const double used_mib =
        static_cast<double>(mid.mem_bytes[0] + mid.mem_bytes[1]) / (1024.0 * 1024.0);
    std::printf(
        "                    split by heads and MLP columns/rows over the 8 chips of a node, "
        "a chip holds %.1f MiB (%.0f%% of its MEM);\n",
        used_mib, 100.0 * used_mib / chip_mib);
    std::printf(
        "                    two layers per node would need %.1f MiB a chip: one layer per "
        "node, %d nodes chained\n",
        2 * used_mib, layers);
    std::printf("  system            %s: %d chips, %zu links (%s)\n", sys.name.c_str(),
                sys.system.chips, sys.system.links.size(), sys_file.c_str());
    std::printf(
        "  compiled          3 stage programs (first, middle, last) in %.1f s; %zu "
        "instructions in all; %.2f GiB peak so far\n",
        compile_s, st.program.instruction_count(), peak_gib());
    std::printf("  per layer         %llu cycles of compute, next layer starts %llu cycles later\n",
                static_cast<unsigned long long>(mid.cycles),
                static_cast<unsigned long long>(st.step.size() > 1 ? st.step[1] : 0));
    stack = std::move(st);
  }
  malloc_trim(0);  // what the compiler freed goes back to the system before the simulation
  const isa::Program& program = stack.program;
  const arch::Arch& sys = program.arch;
  std::printf("  memory            %.2f GiB in use before the simulation\n", rss_gib());

  // Zero inputs of the right sizes (timing mode computes no values).
  std::map<std::string, system::TensorValue> inputs;
  for (const auto& tensor : program.tensors)
    if (tensor.role == isa::TensorRole::kInput) {
      system::TensorValue v;
      v.dtype = tensor.dtype;
      v.shape = tensor.shape;
      std::uint64_t n = static_cast<std::uint64_t>(isa::dtype_bytes(tensor.dtype));
      for (auto d : tensor.shape)
        n *= d;
      v.bytes.assign(n, 0);
      inputs[tensor.name] = std::move(v);
    }
  units::SimOptions o;
  o.mode = units::Mode::kTiming;
  o.on_error = units::OnError::kReport;
  const auto t = Clock::now();
  const system::RunOutcome r = system::run(program, inputs, o);
  const double sim_s = since(t);
  const double us = static_cast<double>(r.cycles) / sys.chip.clock_mhz;
  std::printf("  cycles            simulated %llu, predicted %llu: %s\n",
              static_cast<unsigned long long>(r.cycles),
              static_cast<unsigned long long>(r.predicted ? *r.predicted : 0),
              r.predicted && *r.predicted == r.cycles ? "match" : "MISMATCH");
  std::printf("  decode step       %.1f us at %.0f MHz: %.1f tokens/s per user (batch 1)\n", us,
              sys.chip.clock_mhz, 1e6 / us);
  std::uint64_t link_bytes = 0;
  for (const auto& l : r.report.at("links").as_array())
    link_bytes += l.as_object().at("bytes").to_number<std::uint64_t>();
  std::printf("  links             %llu bytes over all links in the step\n",
              static_cast<unsigned long long>(link_bytes));
  std::printf("  simulation        %.1f s wall, %llu issues (%.2f M issues/s), %.2f GiB peak\n",
              sim_s, static_cast<unsigned long long>(r.issues),
              sim_s > 0 ? static_cast<double>(r.issues) / sim_s / 1e6 : 0.0, peak_gib());
  std::printf("  memory            %.2f GiB in use after the simulation\n", rss_gib());
  std::printf("  schedule errors   %zu\n", r.errors.size());
  for (std::size_t i = 0; i < r.errors.size() && i < 5; ++i)
    std::fprintf(stderr, "%s\n", r.errors[i].to_string().c_str());
  return r.errors.empty() && r.predicted && *r.predicted == r.cycles ? 0 : 1;
}
