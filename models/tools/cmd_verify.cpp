// lpu verify MODEL.onnx [--arch NAME|FILE] [--seed N]: compile, simulate, check against the host
// reference and the predicted cycles.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "func/numerics.h"
#include "system/run.h"
#include "tools/commands.h"

namespace po = boost::program_options;

namespace lpu::tools {

namespace {
const char* kVerifyUsage =
    "usage: lpu verify MODEL.onnx [options]\n"
    "Compiles the model, simulates it with random inputs and checks (1) every output equals the\n"
    "host reference executor's bit for bit, (2) the simulated cycle count equals the compiler's\n"
    "prediction, (3) no schedule error. Exit 0 when all hold, 1 when one does not, 2 for bad\n"
    "usage or a model the compiler cannot take.\n"
    "\n"
    "  --arch NAME|FILE    target architecture (default tsp-v1)\n"
    "  --set PATH=VALUE    override an architecture parameter (repeatable)\n"
    "  --seed N            inputs' random seed (default 1); floats uniform in [-1, 1]\n"
    "  --precision P       model (default), fp32, fp16 or int8, as for lpu compile\n"
    "  --mode functional|timing  timing checks cycles only (default functional)\n"
    "  --probe             also read back every intermediate tensor and name the first (in\n"
    "                      program order) that differs from the reference\n";

}  // namespace

int cmd_verify(const Args& args) {
  std::string model, arch_name = "tsp-v1", mode = "functional", precision = "model";
  std::vector<std::string> sets;
  std::uint32_t seed = 1;
  bool help = false, probe = false;
  po::options_description opts;
  opts.add_options()("help,h", po::bool_switch(&help))("arch", po::value(&arch_name))(
      "set", po::value(&sets)->composing())("seed", po::value(&seed))("mode", po::value(&mode))(
      "probe", po::bool_switch(&probe))("precision", po::value(&precision))("model",
                                                                            po::value(&model));
  po::positional_options_description pos;
  pos.add("model", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (help) {
    std::cout << kVerifyUsage;
    return kOk;
  }
  if (model.empty()) throw UsageError{"missing model\n" + std::string(kVerifyUsage)};
  if (mode != "functional" && mode != "timing")
    throw UsageError{"--mode must be functional or timing, got '" + mode + "'"};
  const bool functional = mode == "functional";

  const auto t0 = std::chrono::steady_clock::now();
  const arch::Arch a = arch::load(arch_name, sets);
  const compiler::Graph g = compiler::import_onnx(model);
  const compiler::Kernels k =
      compiler::lower_with_precision(g, a, compiler::parse_precision(precision, "--precision"));
  compiler::Schedule s = compiler::schedule(k, a, model, /*reuse_memory=*/!probe);
  if (probe)  // every scratch tensor is read back like an output
    for (auto& t : s.program.tensors)
      if (t.role == isa::TensorRole::kScratch) t.role = isa::TensorRole::kOutput;
  const double compile_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const std::vector<compiler::Bytes> inputs = compiler::random_inputs(k, seed);
  std::map<std::string, system::TensorValue> bound;
  for (std::size_t i = 0; i < k.inputs.size(); ++i) {
    const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(k.inputs[i])];
    system::TensorValue v;
    v.dtype = kt.dtype;
    for (auto d : kt.shape)
      v.shape.push_back(static_cast<std::uint64_t>(d));
    v.bytes = inputs[i];
    bound[kt.name] = std::move(v);
  }
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<compiler::Bytes> all;
  const std::vector<compiler::Bytes> ref =
      functional ? compiler::run_reference(k, inputs, probe ? &all : nullptr)
                 : std::vector<compiler::Bytes>{};
  const double ref_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

  units::SimOptions o;
  o.mode = functional ? units::Mode::kFunctional : units::Mode::kTiming;
  o.on_error = units::OnError::kReport;
  const system::RunOutcome r = system::run(s.program, bound, o);

  bool ok = r.errors.empty() && r.predicted && *r.predicted == r.cycles;
  std::size_t compared = 0, differing = 0;
  if (functional)
    for (std::size_t i = 0; i < k.outputs.size(); ++i) {
      const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(k.outputs[i])];
      auto it = r.outputs.find(kt.name);
      ++compared;
      if (it == r.outputs.end() || it->second.bytes != ref[i]) {
        ++differing;
        ok = false;
      }
    }
  if (probe && functional) {
    // The first step whose result differs, in program order.
    for (const auto& st : k.steps) {
      const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(st.d)];
      auto it = r.outputs.find(kt.name);
      if (it == r.outputs.end() || it->second.bytes == all[static_cast<std::size_t>(st.d)] ||
          (s.reused.size() > static_cast<std::size_t>(st.d) &&
           s.reused[static_cast<std::size_t>(st.d)]))
        continue;
      std::size_t first = 0;
      const auto& got = it->second.bytes;
      const auto& want = all[static_cast<std::size_t>(st.d)];
      while (first < got.size() && first < want.size() && got[first] == want[first])
        ++first;
      std::printf("  first difference  tensor '%s' %s (step of %s), byte %zu of %zu\n",
                  kt.name.c_str(), isa::to_string(kt.dtype), st.origin.c_str(), first, got.size());
      break;
    }
  }
  const double planes = a.chip.mxm.planes, alus = a.chip.vxm.alus();
  std::printf("lpu verify: %s on %s (%s)\n", model.c_str(), a.name.c_str(), a.hash_hex().c_str());
  std::printf("  compiled          %zu nodes -> %zu kernel steps, %zu instructions in %.3f s\n",
              g.nodes.size(), k.steps.size(), s.program.instruction_count(), compile_s);
  std::printf("  cycles            simulated %llu, predicted %llu: %s\n",
              static_cast<unsigned long long>(r.cycles),
              static_cast<unsigned long long>(r.predicted ? *r.predicted : 0),
              r.predicted && *r.predicted == r.cycles ? "match" : "MISMATCH");
  std::printf("  on-chip time      %.3f us at %.0f MHz (host DMA %.3f us)\n",
              static_cast<double>(r.cycles) / a.chip.clock_mhz, a.chip.clock_mhz,
              r.host_seconds * 1e6);
  std::printf("  utilisation       MXM %.1f%% of %g planes, VXM %.1f%% of %g ALUs\n",
              r.cycles ? 100.0 * static_cast<double>(s.mxm_busy) / (planes * r.cycles) : 0.0,
              planes, r.cycles ? 100.0 * static_cast<double>(s.vxm_busy) / (alus * r.cycles) : 0.0,
              alus);
  if (functional)
    std::printf("  outputs           %zu compared with the host reference (%.3f s): %s\n", compared,
                ref_s, differing ? "DIFFERENT" : "bit-identical");
  std::printf("  simulation        %.3f s wall, %llu issues\n", r.wall_seconds,
              static_cast<unsigned long long>(r.issues));
  std::printf("  schedule errors   %zu\n", r.errors.size());
  for (const auto& e : r.errors)
    std::fprintf(stderr, "%s: %s\n", model.c_str(), e.to_string().c_str());
  std::printf("%s\n", ok ? "verified" : "FAILED");
  return ok ? kOk : kFailed;
}

}  // namespace lpu::tools
