// Cost of co-simulation on whole tiny programs, per unit with RTL: each program is verified with
// `lpu verify` (bit-exact outputs, cycles as predicted) with the unit as tlm, rtl and lockstep,
// the fastest of `reps` runs kept. Prints the simulation's wall time per mode, the time against
// tlm, the RTL cycles the unit's blocks ran, and those cycles per second of the time co-simulation
// added (the blocks inside SystemC, their transactors included).
//   bench_cosim [REPS]   (default 5)
// The programs (tiny with 9 MEM slices per hemisphere of 2048 vectors, as the co-simulation tests
// use tiny with more MEM):
//   vxm, mem, mxm: an int8 MLP 32-128x6-32, batch 128;
//   sxm: a Transpose of [32, 32, 32] fp32 (the last two axes) written here (the transposer,
//        shifts and selects; 17 MEM slices a hemisphere);
//   c2c: an int8 MLP 32-128-128-32, batch 64, split over two tiny chips (its all-reduce on the
//        link).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include <fstream>

#include "compiler/workloads.h"

namespace {

struct Figures {
  double wall = 0;
  unsigned long long rtl_cycles = 0;
  bool ok = false;
};

std::string tiny_sets(int slices) {
  const std::string n = std::to_string(slices);
  return "--set 'chip.slice_order=[\"MXM\",\"SXM\",\"MEM*" + n + "\",\"VXM\",\"MEM*" + n +
         "\",\"SXM\",\"MXM\"]' --set chip.mem.slices_per_hemisphere=" + n +
         " --set chip.mem.depth=2048";
}

// One `lpu verify` run: its wall time, the unit's RTL cycles, and whether it verified.
Figures run(const std::string& command, const std::string& unit) {
  Figures f;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen((command + " 2>&1").c_str(), "r"), pclose);
  if (!p) return f;
  char line[4096];
  const std::regex wall(R"(^  simulation +([0-9.]+) s wall)");
  const std::regex cycles("^  " + unit + R"( \((rtl|lockstep)\).*\(([0-9]+) RTL cycles\))");
  std::cmatch m;
  while (std::fgets(line, sizeof line, p.get())) {
    if (std::regex_search(line, m, wall)) f.wall = std::stod(m[1].str());
    if (std::regex_search(line, m, cycles)) f.rtl_cycles = std::stoull(m[2].str());
    if (std::string(line) == "verified\n") f.ok = true;
  }
  return f;
}

// y = transpose(x) of the last two axes, x [batch, n, n] fp32, as an ONNX model at `path`.
void write_transpose(const std::string& path, int batch, int n) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("transpose");
  auto typed = [&](onnx::ValueInfoProto* vi, const std::string& name) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int d : {batch, n, n})
      tt->mutable_shape()->add_dim()->set_dim_value(d);
  };
  typed(g->add_input(), "x");
  typed(g->add_output(), "y");
  auto* node = g->add_node();
  node->set_op_type("Transpose");
  node->set_name("t");
  node->add_input("x");
  node->add_output("y");
  auto* perm = node->add_attribute();
  perm->set_name("perm");
  perm->set_type(onnx::AttributeProto::INTS);
  for (int p : {0, 2, 1})
    perm->add_ints(p);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  m.SerializeToOstream(&f);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::string lpu = LPU_BINARY;
  lpu::compiler::write_workload(
      "mlp", {{"sizes", "32,128,128,128,128,128,128,32"}, {"batch", "128"}, {"dtype", "fp32"}},
      "bench_cosim_mlp.onnx");
  write_transpose("bench_cosim_transpose.onnx", 32, 32);
  lpu::compiler::write_workload("mlp",
                                {{"sizes", "32,128,128,32"}, {"batch", "64"}, {"dtype", "fp32"}},
                                "bench_cosim_split.onnx");
  const std::string mlp =
      lpu + " verify bench_cosim_mlp.onnx --arch tiny " + tiny_sets(9) + " --precision int8";
  const std::map<std::string, std::string> programs = {
      {"vxm", mlp},
      {"mem", mlp},
      {"mxm", mlp},
      {"sxm", lpu + " verify bench_cosim_transpose.onnx --arch tiny " + tiny_sets(17)},
      {"c2c", lpu + " verify bench_cosim_split.onnx --system tiny --set system.chips=2 " +
                  "--set system.topology=fully_connected " + tiny_sets(9) + " --precision int8"}};
  std::printf(
      "bench_cosim: whole tiny programs per unit, fastest of %d (wall time of the "
      "simulation alone)\n",
      reps);
  std::printf("  %-4s %10s %10s %6s %10s %6s %11s %16s\n", "unit", "tlm s", "rtl s", "x",
              "lockstep s", "x", "RTL cycles", "RTL cycles/s");
  int status = 0;
  for (const char* unit : {"vxm", "mem", "sxm", "mxm", "c2c"}) {
    Figures best[3];
    const char* modes[3] = {"tlm", "rtl", "lockstep"};
    for (int m = 0; m < 3; ++m)
      for (int r = 0; r < reps; ++r) {
        const Figures f = run(programs.at(unit) + " --unit " + unit + "=" + modes[m], unit);
        if (!f.ok) {
          std::fprintf(stderr, "bench_cosim: %s as %s did not verify\n", unit, modes[m]);
          status = 1;
        }
        if (r == 0 || f.wall < best[m].wall) best[m] = f;
      }
    const double added = best[1].wall - best[0].wall;
    std::printf("  %-4s %10.4f %10.4f %6.1f %10.4f %6.1f %11llu %16.0f\n", unit, best[0].wall,
                best[1].wall, best[1].wall / best[0].wall, best[2].wall,
                best[2].wall / best[0].wall, best[1].rtl_cycles,
                added > 0 ? static_cast<double>(best[1].rtl_cycles) / added : 0.0);
  }
  return status;
}
