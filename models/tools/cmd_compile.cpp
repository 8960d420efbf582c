// lpu compile MODEL.onnx --arch NAME|FILE -o PROG.lpubin [--asm PROG.lpuasm] [--precision P]
// [--report FILE.json]
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "arch/arch.h"
#include "arch/json_doc.h"
#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/partition.h"
#include "compiler/pipeline.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "func/vxm.h"
#include "isa/asm_text.h"
#include "isa/lpubin.h"
#include "tools/commands.h"

namespace po = boost::program_options;

namespace lpu::tools {

namespace {
const char* kCompileUsage =
    "usage: lpu compile MODEL.onnx -o PROG.lpubin [options]\n"
    "Compiles an ONNX model for one chip: lowers every node to the units, places every tensor in\n"
    "MEM, schedules every instruction at a fixed cycle with exact resource reservation and writes\n"
    "the program with the predicted completion cycle of each instruction. Exit 0 on success, 2 "
    "for\n"
    "bad usage or a model the compiler cannot take (the message names the node or tensor).\n"
    "\n"
    "  -o, --output FILE.lpubin  the program (binary form)\n"
    "  --asm FILE.lpuasm         also write the program as text\n"
    "  --arch NAME|FILE          target architecture (default tsp-v1)\n"
    "  --set PATH=VALUE          override an architecture parameter (repeatable)\n"
    "  --precision P             products in: model (the model's types, default), fp32 (three\n"
    "                            fp16 passes), fp16 (one pass) or int8 (constant weights and\n"
    "                            their activations quantized; ranges calibrated on random inputs)\n"
    "  --report FILE.json        write the compile report (placements, cycles, utilisation)\n"
    "  --system NAME|FILE        compile for a system of chips (a preset such as node8, or an\n"
    "                            architecture file with a system) instead of one chip: one\n"
    "                            program per chip in the one output file, tensors named NAME@CHIP\n"
    "  --parallel P              how to split over the system's chips: tensor (every product's\n"
    "                            weights by columns, rows or heads, with all-reduces between),\n"
    "                            pipeline (consecutive layers on consecutive chips) or auto\n"
    "  --chips N                 tensor: use the system's first N chips (default: all)\n"
    "  --stages N                pipeline: stages (default: every chip, or group, one stage)\n"
    "  --chips-per-stage G       pipeline: each stage tensor parallel over G chips\n"
    "  --layers                  also print each node's cycles and MXM and VXM occupancy\n"
    "  --steps                   also print every kernel step: what it does, its result, its\n"
    "                            rows and the cycles it spans (one chip)\n"
    "  --quiet                   no summary on standard output\n"
    "  --check-memory            the scheduler also replays the program's MEM traffic and\n"
    "                            requires every read to find what its tensor's writer put there\n"
    "  --scheduler-log L         scheduler diagnostics on stderr, a list of fit, instr, mem\n";

// One line per kernel step, in program order: its kind (the VXM op and type), its result tensor
// and rows, its span and the unit cycles it took.
void print_steps(const compiler::Kernels& k, const compiler::Schedule& s) {
  using Kind = compiler::KStep::Kind;
  std::printf("  %6s %-14s %-40s %7s %9s %9s %8s %8s\n", "step", "kind", "result", "rows", "start",
              "end", "MXM cyc", "VXM cyc");
  for (std::size_t i = 0; i < k.steps.size(); ++i) {
    const compiler::KStep& st = k.steps[i];
    std::string kind;
    switch (st.kind) {
      case Kind::kVxm:
        kind = std::string(func::to_string(st.args.op)) + "." + isa::to_string(st.args.type);
        break;
      case Kind::kMatMul:
        kind = "matmul/" + std::to_string(st.passes.size());
        break;
      case Kind::kSxm:
        kind = st.sxm == compiler::KStep::SxmOp::kShift    ? "shift"
               : st.sxm == compiler::KStep::SxmOp::kSelect ? "select"
                                                           : "distribute";
        break;
      case Kind::kTranspose:
        kind = "transpose";
        break;
      case Kind::kExchange:
        kind = "exchange";
        break;
      case Kind::kSend:
        kind = "send";
        break;
      case Kind::kRecv:
        kind = "recv";
        break;
    }
    const std::string result =
        st.d >= 0 ? k.tensors[static_cast<std::size_t>(st.d)].name : std::string("-");
    const std::int64_t rows = st.kind == Kind::kMatMul ? st.m
                              : st.rows > 0            ? st.rows
                              : st.d >= 0
                                  ? k.tensors[static_cast<std::size_t>(st.d)].vector_rows(k.lanes)
                                  : 0;
    const compiler::StepTiming& t = s.steps[i];
    std::printf("  %6zu %-14s %-40s %7lld %9llu %9llu %8llu %8llu\n", i, kind.c_str(),
                result.substr(0, 40).c_str(), static_cast<long long>(rows),
                static_cast<unsigned long long>(t.first), static_cast<unsigned long long>(t.last),
                static_cast<unsigned long long>(t.mxm_cycles),
                static_cast<unsigned long long>(t.vxm_cycles));
  }
}

}  // namespace

int cmd_compile(const Args& args) {
  std::string model, output, asm_out, arch_name = "tsp-v1", report, precision = "model",
                                      system_name, parallel = "tensor";
  std::vector<std::string> sets;
  bool help = false, quiet = false, layers = false, steps = false, check_memory = false;
  std::string scheduler_log;
  int chips = 0, stages = 0, per_stage = 1;
  po::options_description opts;
  opts.add_options()("help,h", po::bool_switch(&help))("output,o", po::value(&output))(
      "asm", po::value(&asm_out))("arch", po::value(&arch_name))(
      "set", po::value(&sets)->composing())("report", po::value(&report))(
      "precision", po::value(&precision))("quiet", po::bool_switch(&quiet))(
      "layers", po::bool_switch(&layers))("steps", po::bool_switch(&steps))(
      "system", po::value(&system_name))("parallel", po::value(&parallel))(
      "chips", po::value(&chips))("stages", po::value(&stages))(
      "chips-per-stage", po::value(&per_stage))("check-memory", po::bool_switch(&check_memory))(
      "scheduler-log", po::value(&scheduler_log))("model", po::value(&model));
  po::positional_options_description pos;
  pos.add("model", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (help) {
    std::cout << kCompileUsage;
    return kOk;
  }
  if (model.empty()) throw UsageError{"missing model\n" + std::string(kCompileUsage)};
  if (output.empty() && asm_out.empty())
    throw UsageError{"nothing to write: give -o PROG.lpubin and/or --asm PROG.lpuasm"};

  const auto t0 = std::chrono::steady_clock::now();
  if (!system_name.empty()) {
    if (parallel != "tensor" && parallel != "pipeline" && parallel != "auto")
      throw UsageError{"--parallel must be tensor, pipeline or auto, got '" + parallel + "'"};
    if (vm.count("arch")) throw UsageError{"give --system or --arch, not both"};
    if (steps) throw UsageError{"--steps lists one chip's kernel steps; it takes no --system"};
  }
  const arch::Arch a = arch::load(system_name.empty() ? arch_name : system_name, sets);
  if (!system_name.empty() && (chips < 0 || chips == 1 || chips > a.system.chips))
    throw UsageError{"--chips must be 2 .. " + std::to_string(a.system.chips) + " for " +
                     system_name};
  compiler::ScheduleOptions so;
  so.check_memory = check_memory;
  if (vm.count("scheduler-log"))
    so.log = compiler::parse_schedule_log(scheduler_log, "--scheduler-log");
  const compiler::Graph g = compiler::import_onnx(model);
  const compiler::Precision prec = compiler::parse_precision(precision, "--precision");
  compiler::SplitKernels sk;
  compiler::Kernels k;
  compiler::Schedule s;
  std::string choice;
  if (parallel == "auto" && !system_name.empty()) {
    const compiler::ParallelChoice c = compiler::choose_parallel(g, a);
    choice = c.why;
    parallel = c.pipeline ? "pipeline" : "tensor";
    chips = c.chips;
    stages = c.stages;
    per_stage = c.group;
  }
  std::optional<compiler::PipelineProgram> pp;
  if (!system_name.empty() && parallel == "pipeline") {
    if (per_stage < 1 || stages < 0 || stages * per_stage > a.system.chips)
      throw UsageError{"--stages x --chips-per-stage must be at most the " +
                       std::to_string(a.system.chips) + " chips of " + system_name};
    pp = compiler::compile_pipeline(g, a, stages ? stages : a.system.chips / per_stage, per_stage,
                                    prec, 7, so);
    sk = pp->kernels[0];
    k = sk.kernels[0];
    s = pp->schedules[0];
    s.program = pp->program;
    s.cycles = *pp->program.predicted_cycles;
  } else if (system_name.empty()) {
    k = compiler::lower_with_precision(g, a, prec);
    s = compiler::schedule(k, a, model, so);
  } else {
    sk = compiler::lower_split(g, a, prec, chips ? chips : a.system.chips);
    k = sk.kernels[0];
    s = compiler::schedule_spmd(sk.kernels, a, model, so);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!output.empty()) isa::save_lpubin(s.program, output);
  if (!asm_out.empty()) {
    std::ofstream f(asm_out, std::ios::trunc);
    if (!f) throw InputError(asm_out, "cannot write file");
    f << isa::to_lpuasm(s.program);
  }
  const double alu_cycles = static_cast<double>(s.cycles) * a.chip.vxm.alus();
  const double plane_cycles = static_cast<double>(s.cycles) * a.chip.mxm.planes;
  if (!report.empty()) {
    boost::json::object r;
    r["model"] = model;
    r["arch"] = a.name;
    r["arch_hash"] = a.hash_hex();
    r["program_hash"] = isa::content_hash(s.program);
    r["compile_seconds"] = seconds;
    r["predicted_cycles"] = s.cycles;
    r["instructions"] = s.program.instruction_count();
    r["kernel_steps"] = k.steps.size();
    if (!sk.kernels.empty()) {
      r["chips"] = sk.kernels.size();
      boost::json::array d;
      for (const auto& x : sk.partition.decisions)
        d.push_back(boost::json::string(x));
      r["split"] = std::move(d);
    }
    r["mem_bytes"] = boost::json::object{{"west", s.mem_bytes[0]}, {"east", s.mem_bytes[1]}};
    r["vxm_alu_cycles"] = s.vxm_busy;
    r["vxm_utilisation"] = alu_cycles > 0 ? static_cast<double>(s.vxm_busy) / alu_cycles : 0.0;
    r["mxm_plane_cycles"] = s.mxm_busy;
    r["mxm_utilisation"] = plane_cycles > 0 ? static_cast<double>(s.mxm_busy) / plane_cycles : 0.0;
    boost::json::object places;
    for (const auto& p : s.placements)
      places[p.tensor] = p.where;
    r["placements"] = std::move(places);
    boost::json::array nodes;
    for (const auto& n : compiler::per_node(s))
      nodes.push_back(boost::json::object{{"node", n.node},
                                          {"first_cycle", n.first},
                                          {"last_cycle", n.last},
                                          {"steps", n.steps},
                                          {"mxm_plane_cycles", n.mxm_cycles},
                                          {"vxm_alu_cycles", n.vxm_cycles}});
    r["nodes"] = std::move(nodes);
    std::ofstream f(report, std::ios::trunc);
    if (!f) throw InputError(report, "cannot write file");
    f << arch::pretty_json(r) << "\n";
  }
  if (!quiet) {
    std::printf("lpu compile: %s for %s (%s) in %.3f s\n", model.c_str(), a.name.c_str(),
                a.hash_hex().c_str(), seconds);
    if (!choice.empty()) std::printf("  parallel auto     %s\n", choice.c_str());
    if (pp) {
      for (std::size_t i = 0; i < pp->stages.size(); ++i)
        std::printf("  stage %-3zu         chips %zu..%zu: nodes %zu..%zu, cycles %llu..%llu\n", i,
                    i * static_cast<std::size_t>(pp->group),
                    (i + 1) * static_cast<std::size_t>(pp->group) - 1, pp->stages[i].first_node,
                    pp->stages[i].first_node + pp->stages[i].nodes - 1,
                    static_cast<unsigned long long>(pp->offset[i]),
                    static_cast<unsigned long long>(pp->offset[i] + pp->schedules[i].cycles));
    } else if (!sk.kernels.empty()) {
      std::printf(
          "  chips             %zu of %s, tensor parallel (instructions: all chips; MEM and "
          "utilisation: per chip)\n",
          sk.kernels.size(), a.name.c_str());
      for (const auto& d : sk.partition.decisions)
        std::printf("  split             %s\n", d.c_str());
    }
    std::printf("  nodes             %zu -> %zu kernel steps, %zu instructions\n", g.nodes.size(),
                k.steps.size(), s.program.instruction_count());
    std::printf("  predicted cycles  %llu (%.3f us at %.0f MHz)\n",
                static_cast<unsigned long long>(s.cycles),
                static_cast<double>(s.cycles) / a.chip.clock_mhz, a.chip.clock_mhz);
    std::printf("  MEM used          west %.1f KiB, east %.1f KiB\n",
                static_cast<double>(s.mem_bytes[0]) / 1024.0,
                static_cast<double>(s.mem_bytes[1]) / 1024.0);
    std::printf("  utilisation       MXM %.1f%% of %d planes, VXM %.1f%% of %d ALUs\n",
                plane_cycles > 0 ? 100.0 * static_cast<double>(s.mxm_busy) / plane_cycles : 0.0,
                a.chip.mxm.planes,
                alu_cycles > 0 ? 100.0 * static_cast<double>(s.vxm_busy) / alu_cycles : 0.0,
                a.chip.vxm.alus());
    if (const std::int64_t macs = k.model_macs; macs > 0 && system_name.empty()) {
      const bool i8 = prec == compiler::Precision::kInt8;
      const double peak = static_cast<double>(arch::derive(a).mxm_macs) *
                          (i8 ? 1.0 : a.chip.mxm.fp16_rate);  // MACs a cycle
      const double m = static_cast<double>(macs);
      const char* unit = m >= 1e9 ? "G" : m >= 1e6 ? "M" : m >= 1e3 ? "k" : "";
      const double scaled = m >= 1e9 ? m / 1e9 : m >= 1e6 ? m / 1e6 : m >= 1e3 ? m / 1e3 : m;
      std::printf("  model MACs        %.4g%s%s: %.1f%% of the %s peak over the predicted cycles\n",
                  scaled, *unit ? " " : "", unit,
                  100.0 * static_cast<double>(macs) / (peak * static_cast<double>(s.cycles)),
                  i8 ? "int8" : "fp16");
    }
    if (layers) {
      // Per node: its span, and the planes' and ALUs' occupancy over that span.
      std::printf("  %-44s %9s %9s %7s %6s %6s\n", "node", "start", "end", "cycles", "MXM %",
                  "VXM %");
      for (const auto& n : compiler::per_node(s)) {
        const double span = static_cast<double>(std::max<std::uint64_t>(1, n.last - n.first + 1));
        std::printf("  %-44s %9llu %9llu %7llu %6.1f %6.1f\n", n.node.substr(0, 44).c_str(),
                    static_cast<unsigned long long>(n.first),
                    static_cast<unsigned long long>(n.last),
                    static_cast<unsigned long long>(n.last - n.first + 1),
                    100.0 * static_cast<double>(n.mxm_cycles) / (span * a.chip.mxm.planes),
                    100.0 * static_cast<double>(n.vxm_cycles) / (span * a.chip.vxm.alus()));
      }
    }
    if (steps) print_steps(k, s);
    if (!output.empty()) std::printf("  wrote             %s\n", output.c_str());
    if (!asm_out.empty()) std::printf("  wrote             %s\n", asm_out.c_str());
  }
  return kOk;
}

}  // namespace lpu::tools
