// lpu verify MODEL.onnx [--arch NAME|FILE] [--seed N]: compile, simulate, check against the host
// reference and the predicted cycles.
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/partition.h"
#include "compiler/pipeline.h"
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
    "                      program order) that differs from the reference\n"
    "  --system NAME|FILE  split the model over the chips of a system (a preset such as node8,\n"
    "                      or an architecture file with a system); the outputs are checked\n"
    "                      against the split program's reference bit for bit and compared with\n"
    "                      the single-chip reference\n"
    "  --parallel tensor|pipeline|auto  how to split: tensor (every product's weights over\n"
    "                      the chips), pipeline (consecutive layers on consecutive chips), or\n"
    "                      auto (the compiler chooses and says why)\n"
    "  --chips N           tensor: use the system's first N chips (default: all)\n"
    "  --stages N          pipeline: stages (default: every chip one stage)\n"
    "  --chips-per-stage G pipeline: each stage split over G chips by tensor parallelism\n"
    "  --unit UNIT=MODE    run a unit as tlm, rtl or lockstep (as for lpu run); lockstep also\n"
    "                      needs every output vector of the unit's RTL to match the model\n"
    "  --waves FILE        RTL waveform (.fst or .vcd), as for lpu run\n"
    "  --plant-fault       the RTL with its planted fault, as for lpu run\n"
    "  --check-memory      the scheduler also replays the program's MEM traffic and requires\n"
    "                      every read to find what its tensor's writer put there\n"
    "  --scheduler-log L   scheduler diagnostics on stderr, a list of fit, instr, mem\n";

// A kernel tensor's value for the simulator.
system::TensorValue value_of(const compiler::KTensor& kt, compiler::Bytes bytes) {
  system::TensorValue v;
  v.dtype = kt.dtype;
  for (auto d : kt.shape)
    v.shape.push_back(static_cast<std::uint64_t>(d));
  v.bytes = std::move(bytes);
  return v;
}

// The lines a split or pipelined verify ends with, from the on-chip time on; the exit code.
int finish_system_verify(const std::string& model, const arch::Arch& a, const system::RunOutcome& r,
                         bool functional, std::size_t compared, const char* reference, double ref_s,
                         std::size_t differing, double vs_one, bool ok) {
  ok = ok && cosim_ok(r.report);
  std::printf("  on-chip time      %.3f us at %.0f MHz (host DMA %.3f us)\n",
              static_cast<double>(r.cycles) / a.chip.clock_mhz, a.chip.clock_mhz,
              r.host_seconds * 1e6);
  print_mxm_and_energy(r.report);
  if (functional) {
    std::printf("  outputs           %zu compared with the %s reference (%.3f s): %s\n", compared,
                reference, ref_s, differing ? "DIFFERENT" : "bit-identical");
    if (vs_one == 0)
      std::printf("  single chip       bit-identical to the single-chip reference\n");
    else
      std::printf(
          "  single chip       largest difference from the single-chip reference %.3g "
          "(sums in another order)\n",
          vs_one);
  }
  print_links(r.report);
  print_cosim(r.report);
  std::printf("  simulation        %.4f s wall, %llu issues\n", r.wall_seconds,
              static_cast<unsigned long long>(r.issues));
  std::printf("  schedule errors   %zu\n", r.errors.size());
  for (const auto& e : r.errors)
    std::fprintf(stderr, "%s: %s\n", model.c_str(), e.to_string().c_str());
  std::printf("%s\n", ok ? "verified" : "FAILED");
  return ok ? kOk : kFailed;
}

// The whole of output i from every chip's part.
std::vector<compiler::Bytes> whole(const compiler::SplitKernels& sk,
                                   const std::vector<std::vector<compiler::Bytes>>& per_chip,
                                   const std::vector<compiler::KTensor>& full_outputs) {
  std::vector<compiler::Bytes> out;
  for (std::size_t i = 0; i < full_outputs.size(); ++i) {
    std::vector<compiler::Bytes> parts;
    for (const auto& c : per_chip)
      parts.push_back(c[i]);
    out.push_back(compiler::assemble(parts, full_outputs[i].shape,
                                     isa::dtype_bytes(full_outputs[i].dtype),
                                     sk.partition.outputs[i]));
  }
  return out;
}

// The largest difference between two outputs' elements, as floats (0 when bit-identical).
double max_difference(const compiler::Bytes& a, const compiler::Bytes& b, isa::DType dt) {
  if (a == b) return 0;
  if (a.size() != b.size()) return INFINITY;
  const int n = isa::dtype_bytes(dt);
  double most = 0;
  for (std::size_t i = 0; i + static_cast<std::size_t>(n) <= a.size();
       i += static_cast<std::size_t>(n)) {
    auto value = [&](const compiler::Bytes& v) -> double {
      std::uint32_t bits = 0;
      for (int k = 0; k < n; ++k)
        bits |= static_cast<std::uint32_t>(v[i + static_cast<std::size_t>(k)]) << (8 * k);
      switch (dt) {
        case isa::DType::kFp32: {
          float f;
          std::memcpy(&f, &bits, 4);
          return f;
        }
        case isa::DType::kFp16:
          return func::fp16_to_fp32(static_cast<std::uint16_t>(bits));
        case isa::DType::kI32:
          return static_cast<std::int32_t>(bits);
        default:
          return static_cast<std::int8_t>(bits);
      }
    };
    most = std::max(most, std::fabs(value(a) - value(b)));
  }
  return most;
}

int verify_split(const std::string& model, const arch::Arch& a, const std::string& precision,
                 int chips, std::uint32_t seed, bool functional, const units::CosimOptions& cosim,
                 const compiler::ScheduleOptions& so) {
  const auto t0 = std::chrono::steady_clock::now();
  const compiler::Graph g = compiler::import_onnx(model);
  const compiler::Precision prec = compiler::parse_precision(precision, "--precision");
  if (chips == 0) chips = a.system.chips;
  const compiler::SplitKernels sk = compiler::lower_split(g, a, prec, chips);
  const compiler::Schedule s = compiler::schedule_spmd(sk.kernels, a, model, so);
  const double compile_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The single-chip lowering: the whole inputs and outputs, and its reference.
  const compiler::Kernels one = compiler::lower_with_precision(g, a, prec);
  const std::vector<compiler::Bytes> inputs = compiler::random_inputs(one, seed);
  std::vector<std::vector<compiler::Bytes>> per_chip(static_cast<std::size_t>(chips));
  std::map<std::string, system::TensorValue> bound;
  for (int c = 0; c < chips; ++c)
    for (std::size_t i = 0; i < one.inputs.size(); ++i) {
      const compiler::KTensor& full = one.tensors[static_cast<std::size_t>(one.inputs[i])];
      const compiler::Kernels& kc = sk.kernels[static_cast<std::size_t>(c)];
      const compiler::KTensor& kt = kc.tensors[static_cast<std::size_t>(kc.inputs[i])];
      per_chip[static_cast<std::size_t>(c)].push_back(compiler::shard_data(
          inputs[i], full.shape, isa::dtype_bytes(full.dtype), sk.partition.inputs[i], c, chips));
      bound[kt.name + "@" + std::to_string(c)] =
          value_of(kt, per_chip[static_cast<std::size_t>(c)].back());
    }
  std::vector<compiler::KTensor> outs;
  for (int t : one.outputs)
    outs.push_back(one.tensors[static_cast<std::size_t>(t)]);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<compiler::Bytes> ref_split, ref_one;
  if (functional) {
    ref_split = whole(sk, compiler::run_reference_spmd(sk.kernels, per_chip), outs);
    ref_one = compiler::run_reference(one, inputs);
  }
  const double ref_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

  units::SimOptions o;
  o.mode = functional ? units::Mode::kFunctional : units::Mode::kTiming;
  o.on_error = units::OnError::kReport;
  o.cosim = cosim;
  const system::RunOutcome r = system::run(s.program, bound, o);

  bool ok = r.errors.empty() && r.predicted && *r.predicted == r.cycles;
  std::size_t differing = 0;
  double vs_one = 0;
  if (functional) {
    std::vector<std::vector<compiler::Bytes>> got(static_cast<std::size_t>(chips));
    for (int c = 0; c < chips; ++c) {
      const compiler::Kernels& kc = sk.kernels[static_cast<std::size_t>(c)];
      for (int t : kc.outputs) {
        auto it =
            r.outputs.find(kc.tensors[static_cast<std::size_t>(t)].name + "@" + std::to_string(c));
        got[static_cast<std::size_t>(c)].push_back(it == r.outputs.end() ? compiler::Bytes{}
                                                                         : it->second.bytes);
      }
    }
    std::vector<compiler::Bytes> sim;
    try {
      sim = whole(sk, got, outs);
    } catch (const std::exception&) {
      sim.assign(outs.size(), {});
    }
    for (std::size_t i = 0; i < outs.size(); ++i) {
      if (sim[i] != ref_split[i]) ++differing;
      vs_one = std::max(vs_one, max_difference(ref_split[i], ref_one[i], outs[i].dtype));
    }
    ok = ok && differing == 0;
  }
  std::printf("lpu verify: %s on %s (%s), split over %d chips (tensor parallel)\n", model.c_str(),
              a.name.c_str(), a.hash_hex().c_str(), chips);
  for (const auto& d : sk.partition.decisions)
    std::printf("  split             %s\n", d.c_str());
  std::printf(
      "  compiled          %zu nodes -> %zu kernel steps per chip, %zu instructions in "
      "%.3f s\n",
      g.nodes.size(), sk.kernels[0].steps.size(), s.program.instruction_count(), compile_s);
  // The same model on one chip, for comparison (it may not fit).
  std::string alone;
  try {
    alone = "one chip would take " + std::to_string(compiler::schedule(one, a, model, so).cycles);
  } catch (const InputError& e) {
    alone = "it does not fit one chip";
  }
  std::printf("  cycles            simulated %llu, predicted %llu: %s (%s)\n",
              static_cast<unsigned long long>(r.cycles),
              static_cast<unsigned long long>(r.predicted ? *r.predicted : 0),
              r.predicted && *r.predicted == r.cycles ? "match" : "MISMATCH", alone.c_str());
  return finish_system_verify(model, a, r, functional, outs.size(), "split program's", ref_s,
                              differing, vs_one, ok);
}

int verify_pipeline(const std::string& model, const arch::Arch& a, const std::string& precision,
                    int stages, int group, std::uint32_t seed, bool functional,
                    const units::CosimOptions& cosim, const compiler::ScheduleOptions& so) {
  const auto t0 = std::chrono::steady_clock::now();
  const compiler::Graph g = compiler::import_onnx(model);
  const compiler::Precision prec = compiler::parse_precision(precision, "--precision");
  if (stages == 0) stages = a.system.chips / group;
  const compiler::PipelineProgram pp = compiler::compile_pipeline(g, a, stages, group, prec, 7, so);
  const double compile_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const compiler::Kernels one = compiler::lower_with_precision(g, a, prec);
  const std::vector<compiler::Bytes> inputs = compiler::random_inputs(one, seed);
  std::map<std::string, std::size_t> input_of, output_of;
  for (std::size_t i = 0; i < one.inputs.size(); ++i)
    input_of[one.tensors[static_cast<std::size_t>(one.inputs[i])].name] = i;
  for (std::size_t i = 0; i < one.outputs.size(); ++i)
    output_of[one.tensors[static_cast<std::size_t>(one.outputs[i])].name] = i;
  std::map<std::string, system::TensorValue> bound;
  std::vector<std::vector<std::vector<compiler::Bytes>>> stage_inputs;  // [stage][chip][input]
  for (int s = 0; s < stages; ++s) {
    const compiler::SplitKernels& sk = pp.kernels[static_cast<std::size_t>(s)];
    stage_inputs.emplace_back(static_cast<std::size_t>(group));
    for (int c = 0; c < group; ++c) {
      const compiler::Kernels& kc = sk.kernels[static_cast<std::size_t>(c)];
      for (std::size_t i = 0; i < kc.inputs.size(); ++i) {
        const compiler::KTensor& kt = kc.tensors[static_cast<std::size_t>(kc.inputs[i])];
        const std::size_t fi = input_of.at(kt.name);
        const compiler::KTensor& full = one.tensors[static_cast<std::size_t>(one.inputs[fi])];
        auto bytes = compiler::shard_data(inputs[fi], full.shape, isa::dtype_bytes(full.dtype),
                                          sk.partition.inputs[i], c, group);
        stage_inputs.back()[static_cast<std::size_t>(c)].push_back(bytes);
        bound[kt.name + "@" + std::to_string(s * group + c)] = value_of(kt, std::move(bytes));
      }
    }
  }
  units::SimOptions o;
  o.mode = functional ? units::Mode::kFunctional : units::Mode::kTiming;
  o.on_error = units::OnError::kReport;
  o.cosim = cosim;
  const system::RunOutcome r = system::run(pp.program, bound, o);
  bool ok = r.errors.empty() && r.predicted && *r.predicted == r.cycles;
  std::size_t differing = 0, compared = 0;
  double vs_one = 0;
  double ref_s = 0;
  if (functional) {
    const auto t1 = std::chrono::steady_clock::now();
    const std::vector<compiler::Bytes> ref_one = compiler::run_reference(one, inputs);
    compiler::Transfers tr;
    for (int s = 0; s < stages; ++s) {
      const compiler::SplitKernels& sk = pp.kernels[static_cast<std::size_t>(s)];
      tr.received = tr.sent;
      const auto ref =
          compiler::run_reference_spmd(sk.kernels, stage_inputs[static_cast<std::size_t>(s)], &tr);
      const compiler::Kernels& k0 = sk.kernels[0];
      for (std::size_t i = 0; i < k0.outputs.size(); ++i) {
        const std::string& name = k0.tensors[static_cast<std::size_t>(k0.outputs[i])].name;
        const std::size_t fi = output_of.at(name);
        const compiler::KTensor& full = one.tensors[static_cast<std::size_t>(one.outputs[fi])];
        std::vector<compiler::Bytes> sim_parts, ref_parts;
        for (int c = 0; c < group; ++c) {
          auto it = r.outputs.find(name + "@" + std::to_string(s * group + c));
          sim_parts.push_back(it == r.outputs.end() ? compiler::Bytes{} : it->second.bytes);
          ref_parts.push_back(ref[static_cast<std::size_t>(c)][i]);
        }
        const int eb = isa::dtype_bytes(full.dtype);
        const auto want = compiler::assemble(ref_parts, full.shape, eb, sk.partition.outputs[i]);
        compiler::Bytes got;
        try {
          got = compiler::assemble(sim_parts, full.shape, eb, sk.partition.outputs[i]);
        } catch (const std::exception&) {
        }
        ++compared;
        if (got != want) ++differing;
        vs_one = std::max(vs_one, max_difference(want, ref_one[fi], full.dtype));
      }
    }
    ref_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    ok = ok && differing == 0 && compared == one.outputs.size();
  }
  std::printf("lpu verify: %s on %s (%s), %d pipeline stage(s) of %d chip(s)\n", model.c_str(),
              a.name.c_str(), a.hash_hex().c_str(), stages, group);
  for (int s = 0; s < stages; ++s) {
    const auto& st = pp.stages[static_cast<std::size_t>(s)];
    const auto& sc = pp.schedules[static_cast<std::size_t>(s)];
    std::printf(
        "  stage %-3d         chips %d..%d: nodes %zu..%zu, %.2f MiB of weights, cycles "
        "%llu..%llu\n",
        s, s * group, s * group + group - 1, st.first_node, st.first_node + st.nodes - 1,
        static_cast<double>(st.weight_bytes) / (1024.0 * 1024.0),
        static_cast<unsigned long long>(pp.offset[static_cast<std::size_t>(s)]),
        static_cast<unsigned long long>(pp.offset[static_cast<std::size_t>(s)] + sc.cycles));
  }
  std::printf("  compiled          %zu instructions in %.3f s\n", pp.program.instruction_count(),
              compile_s);
  std::printf("  cycles            simulated %llu, predicted %llu: %s\n",
              static_cast<unsigned long long>(r.cycles),
              static_cast<unsigned long long>(r.predicted ? *r.predicted : 0),
              r.predicted && *r.predicted == r.cycles ? "match" : "MISMATCH");
  return finish_system_verify(model, a, r, functional, compared, "pipeline's", ref_s, differing,
                              vs_one, ok);
}

}  // namespace

int cmd_verify(const Args& args) {
  std::string model, arch_name = "tsp-v1", mode = "functional", precision = "model", system_name,
                     parallel = "tensor";
  std::vector<std::string> sets, unit_modes;
  std::string waves;
  std::uint32_t seed = 1;
  int chips = 0, stages = 0, per_stage = 1;
  bool help = false, probe = false, plant_fault = false, check_memory = false;
  std::string scheduler_log;
  po::options_description opts;
  opts.add_options()("help,h", po::bool_switch(&help))("arch", po::value(&arch_name))(
      "set", po::value(&sets)->composing())("seed", po::value(&seed))("mode", po::value(&mode))(
      "probe", po::bool_switch(&probe))("precision", po::value(&precision))(
      "system", po::value(&system_name))("parallel", po::value(&parallel))(
      "chips", po::value(&chips))("stages", po::value(&stages))(
      "chips-per-stage", po::value(&per_stage))("unit", po::value(&unit_modes)->composing())(
      "waves", po::value(&waves))("plant-fault", po::bool_switch(&plant_fault))(
      "check-memory", po::bool_switch(&check_memory))("scheduler-log", po::value(&scheduler_log))(
      "model", po::value(&model));
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
  units::CosimOptions cosim;
  parse_cosim(unit_modes, waves, "", plant_fault, &cosim);
  compiler::ScheduleOptions so;
  so.check_memory = check_memory;
  if (vm.count("scheduler-log"))
    so.log = compiler::parse_schedule_log(scheduler_log, "--scheduler-log");
  if (!system_name.empty()) {
    if (parallel != "tensor" && parallel != "pipeline" && parallel != "auto")
      throw UsageError{"--parallel must be tensor, pipeline or auto, got '" + parallel + "'"};
    if (probe) throw UsageError{"--probe is for one chip"};
    if (vm.count("arch")) throw UsageError{"give --system or --arch, not both"};
    const arch::Arch a = arch::load(system_name, sets);
    if (parallel == "auto") {
      const compiler::ParallelChoice c = compiler::choose_parallel(compiler::import_onnx(model), a);
      std::printf("lpu verify: --parallel auto chose %s\n", c.why.c_str());
      if (c.pipeline) {
        parallel = "pipeline";
        stages = c.stages;
        per_stage = c.group;
      } else {
        parallel = "tensor";
        chips = c.chips;
      }
    }
    if (parallel == "pipeline") {
      if (per_stage < 1 || stages < 0 || stages * per_stage > a.system.chips)
        throw UsageError{"--stages x --chips-per-stage must be at most the " +
                         std::to_string(a.system.chips) + " chips of " + system_name};
      return verify_pipeline(model, a, precision, stages, per_stage, seed, functional, cosim, so);
    }
    if (chips < 0 || chips == 1 || chips > a.system.chips)
      throw UsageError{"--chips must be 2 .. " + std::to_string(a.system.chips) + " for " +
                       system_name};
    return verify_split(model, a, precision, chips, seed, functional, cosim, so);
  }

  const auto t0 = std::chrono::steady_clock::now();
  const arch::Arch a = arch::load(arch_name, sets);
  const compiler::Graph g = compiler::import_onnx(model);
  const compiler::Kernels k =
      compiler::lower_with_precision(g, a, compiler::parse_precision(precision, "--precision"));
  so.reuse_memory = !probe;
  compiler::Schedule s = compiler::schedule(k, a, model, so);
  if (probe)  // every scratch tensor is read back like an output
    for (auto& t : s.program.tensors)
      if (t.role == isa::TensorRole::kScratch) t.role = isa::TensorRole::kOutput;
  const double compile_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const std::vector<compiler::Bytes> inputs = compiler::random_inputs(k, seed);
  std::map<std::string, system::TensorValue> bound;
  for (std::size_t i = 0; i < k.inputs.size(); ++i) {
    const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(k.inputs[i])];
    bound[kt.name] = value_of(kt, inputs[i]);
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
  o.cosim = cosim;
  const system::RunOutcome r = system::run(s.program, bound, o);

  bool ok = r.errors.empty() && r.predicted && *r.predicted == r.cycles && cosim_ok(r.report);
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
  print_mxm_and_energy(r.report);
  if (functional)
    std::printf("  outputs           %zu compared with the host reference (%.3f s): %s\n", compared,
                ref_s, differing ? "DIFFERENT" : "bit-identical");
  print_cosim(r.report);
  std::printf("  simulation        %.4f s wall, %llu issues\n", r.wall_seconds,
              static_cast<unsigned long long>(r.issues));
  std::printf("  schedule errors   %zu\n", r.errors.size());
  for (const auto& e : r.errors)
    std::fprintf(stderr, "%s: %s\n", model.c_str(), e.to_string().c_str());
  std::printf("%s\n", ok ? "verified" : "FAILED");
  return ok ? kOk : kFailed;
}

}  // namespace lpu::tools
