// Cost of co-simulation on a whole program: an int8 MLP (fp32 model, widths 32-128x6-32, batch
// 64) compiled for tiny with 9 MEM slices per hemisphere (as in test_cosim) of 2048 vectors each
// (tiny's 256 hold too little of the batch), run with the VXM as tlm, rtl and lockstep. Prints,
// per mode, the simulation's wall time, issues per second, the RTL vectors and cycles, and the
// time against tlm. Each mode runs in a process of its own (SystemC elaborates once per
// process), `reps` times, the fastest kept.
//   bench_cosim [REPS]   (default 3)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "compiler/workloads.h"
#include "system/run.h"

using namespace lpu;

namespace {

struct Figures {
  double wall = 0;
  std::uint64_t cycles = 0, issues = 0, rtl_vectors = 0, rtl_cycles = 0, errors = 0;
};

// Runs the program once in this process with the VXM in `mode`.
Figures run_once(const std::string& onnx, units::UnitMode mode) {
  const arch::Arch a =
      arch::load("tiny", {"chip.mem.slices_per_hemisphere=9", "chip.mem.depth=2048",
                          R"(chip.slice_order=["MXM","SXM","MEM*9","VXM","MEM*9","SXM","MXM"])"});
  const compiler::Kernels k =
      compiler::lower_with_precision(compiler::import_onnx(onnx), a, compiler::Precision::kInt8);
  const compiler::Schedule s = compiler::schedule(k, a, onnx);
  const std::vector<compiler::Bytes> in = compiler::random_inputs(k, 1);
  std::map<std::string, system::TensorValue> bound;
  for (std::size_t i = 0; i < k.inputs.size(); ++i) {
    const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(k.inputs[i])];
    system::TensorValue v;
    v.dtype = kt.dtype;
    for (auto d : kt.shape)
      v.shape.push_back(static_cast<std::uint64_t>(d));
    v.bytes = in[i];
    bound[kt.name] = std::move(v);
  }
  units::SimOptions o;
  o.cosim.vxm = mode;
  const system::RunOutcome r = system::run(s.program, bound, o);
  Figures f;
  f.wall = r.wall_seconds;
  f.cycles = r.cycles;
  f.issues = r.issues;
  f.errors = r.errors.size();
  if (const auto* c = r.report.if_contains("cosim")) {
    const auto& v = c->as_object().at("vxm").as_object();
    f.rtl_vectors = v.at("rtl_vectors").to_number<std::uint64_t>();
    f.rtl_cycles = v.at("rtl_cycles").to_number<std::uint64_t>();
  }
  return f;
}

// run_once in a child process; its figures come back through a pipe.
Figures run_child(const std::string& onnx, units::UnitMode mode) {
  int fd[2];
  if (pipe(fd) != 0) std::exit(1);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    const Figures f = run_once(onnx, mode);
    if (write(fd[1], &f, sizeof f) != static_cast<ssize_t>(sizeof f)) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  Figures f;
  const bool ok = read(fd[0], &f, sizeof f) == static_cast<ssize_t>(sizeof f);
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench_cosim: the %s run failed\n", units::to_string(mode));
    std::exit(1);
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const std::string onnx = "bench_cosim_mlp.onnx";
  compiler::write_workload(
      "mlp", {{"sizes", "32,128,128,128,128,128,128,32"}, {"batch", "64"}, {"dtype", "fp32"}},
      onnx);
  std::printf(
      "bench_cosim: int8 MLP 32-128x6-32, batch 64, on tiny (9 MEM slices per "
      "hemisphere of 2048 vectors); fastest of %d\n",
      reps);
  double tlm_wall = 0;
  for (auto mode : {units::UnitMode::kTlm, units::UnitMode::kRtl, units::UnitMode::kLockstep}) {
    Figures best;
    for (int i = 0; i < reps; ++i) {
      const Figures f = run_child(onnx, mode);
      if (i == 0 || f.wall < best.wall) best = f;
    }
    if (mode == units::UnitMode::kTlm) tlm_wall = best.wall;
    std::printf("  vxm %-9s %llu cycles, %llu issues in %.4f s: %.2f M issues/s",
                units::to_string(mode), static_cast<unsigned long long>(best.cycles),
                static_cast<unsigned long long>(best.issues), best.wall,
                static_cast<double>(best.issues) / best.wall / 1e6);
    if (best.rtl_cycles)
      std::printf("; %llu vectors, %llu RTL cycles (%.2f M RTL cycles/s); %.1fx the tlm time",
                  static_cast<unsigned long long>(best.rtl_vectors),
                  static_cast<unsigned long long>(best.rtl_cycles),
                  static_cast<double>(best.rtl_cycles) / best.wall / 1e6, best.wall / tlm_wall);
    std::printf("%s\n", best.errors ? " (ERRORS)" : "");
  }
  return 0;
}
