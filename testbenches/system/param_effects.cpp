// Every parameter of an architecture preset, changed one at a time, must change what the compiler
// schedules, what the simulator enforces or what the report says, unless the description marks it
// descriptive (arch::descriptive_parameters(), with the reason, listed in
// docs/arch-description.md); and a parameter so marked must change none of them.
//
//   param_effects PRESET [--only KEY] [--verbose]
//
// For each numeric (and enumerated) leaf of the preset's description it tries nearby values that
// the description accepts (2x, +1, x/2, -1, x/8, x/64, 8x; another entry of an enumeration; an
// array with an element dropped or changed) until one changes something, comparing with the
// unchanged preset:
//  * compile: the probe models compiled for the changed machine (predicted cycles, instructions
//    and a fingerprint of every dispatch cycle, so renumbered queues alone are no change), or the
//    compiler's refusal;
//  * run: each probe program made for the unchanged machine, run on the changed one (timing mode;
//    ECC probes with values and flipped bits): schedule errors, cycles, energy, on-chip and host
//    time, MAC utilisation, link traffic; or the refusal to load it;
//  * a probe's machine (the preset plus the probe's own overrides, e.g. 8 chips) that the
//    description refuses with the value;
//  * cosim: what the RTL co-simulation accepts of the machine (cosim::check_arch).
// Runs happen in child processes (SystemC elaborates once per process). Prints a line per
// parameter; exits 1 when a parameter has no effect and is not marked, or is marked and has one.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "common/diagnostics.h"
#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/partition.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "compiler/workloads.h"
#include "cosim/cosim.h"
#include "isa/asm_text.h"
#include "system/run.h"

using namespace lpu;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// --- probes: programs that exercise the parameters ----------------------------------------------

// Messages of a program checked against a machine name only the probe.
struct Anywhere : isa::SourceMap {
  Where instruction(std::uint32_t chip, std::uint16_t queue, std::size_t index,
                    int) const override {
    return "chip " + std::to_string(chip) + " queue " + std::to_string(queue) + " instruction " +
           std::to_string(index);
  }
  Where tensor(std::size_t i) const override { return "tensor " + std::to_string(i); }
  Where image(std::size_t i) const override { return "image " + std::to_string(i); }
};

struct Probe {
  std::string name;
  /// The program for an architecture; throws InputError when the machine cannot take it.
  std::function<isa::Program(const arch::Arch&)> build;
  bool functional = false;  ///< run with values (the ECC probes)
  std::vector<units::SimOptions::BitFlip> flips;
};

fs::path scratch() {
  static const fs::path d = [] {
    fs::path p = fs::temp_directory_path() / ("lpu_param_effects_" + std::to_string(getpid()));
    fs::create_directories(p);
    return p;
  }();
  return d;
}

std::string workload_file(const std::string& name,
                          const std::map<std::string, std::string>& params) {
  std::string file = name;
  for (const auto& [k, v] : params)
    file += "_" + k + v;
  std::replace(file.begin(), file.end(), ',', '-');
  const fs::path p = scratch() / (file + ".onnx");
  if (!fs::exists(p)) compiler::write_workload(name, params, p.string());
  return p.string();
}

// A built-in workload compiled for one chip.
Probe compiled(const std::string& label, const std::string& name,
               std::map<std::string, std::string> params, compiler::Precision precision) {
  Probe p;
  p.name = label;
  p.build = [=](const arch::Arch& a) {
    const std::string path = workload_file(name, params);
    const compiler::Graph g = compiler::import_onnx(path);
    return compiler::schedule(compiler::lower_with_precision(g, a, precision), a, path).program;
  };
  return p;
}

// A workload split over the system's chips by tensor parallelism (exchanges on the C2C links).
Probe split_over_chips(const std::string& label, const std::string& name,
                       std::map<std::string, std::string> params) {
  Probe p;
  p.name = label;
  p.build = [=](const arch::Arch& a) {
    const std::string path = workload_file(name, params);
    const compiler::Graph g = compiler::import_onnx(path);
    const auto sk = compiler::lower_split(g, a, compiler::Precision::kModel, a.system.chips);
    return compiler::schedule_spmd(sk.kernels, a, path).program;
  };
  return p;
}

// States every instruction's completion cycle on p's machine (done=): dispatch of its last issue,
// then d_skew and d_func, then the other superlanes. (For hand-written programs without them, so
// that a latency changed alone is a schedule error when the program runs.)
void annotate(isa::Program& p) {
  const auto& chip = p.arch.chip;
  for (auto& cp : p.chips)
    for (auto& q : cp.queues) {
      const isa::Instr* last_unit = nullptr;
      for (auto& e : q.entries) {
        const isa::Instr* in = &e.instr;
        std::uint64_t last = e.cycle;
        if (e.instr.opcode == 0x05) {  // repeat n, d
          in = last_unit;
          last = e.cycle + std::uint64_t(e.instr.arg[1]) * (e.instr.arg[0] - 1);
        } else if (e.instr.opcode == 0x63 || e.instr.opcode == 0x64) {
          last = e.cycle + std::uint64_t(isa::step_cycles(e.instr, chip)) * (e.instr.arg[1] - 1);
        }
        if (e.instr.info().unit != isa::Unit::kIcu) last_unit = &e.instr;
        if (!in) continue;
        const arch::Latency& l = chip.latency_of(in->info().latency_class);
        e.done = last + static_cast<std::uint64_t>(l.d_skew + l.d_func + chip.superlanes - 1);
      }
    }
}

// A graph built here (operators no built-in workload has on a small chip), compiled for one chip.
Probe graph(const std::string& label, std::function<compiler::Graph()> make) {
  Probe p;
  p.name = label;
  p.build = [=](const arch::Arch& a) {
    const compiler::Graph g = make();
    return compiler::schedule(compiler::lower(g, a), a, label).program;
  };
  return p;
}

// y = Transpose(Softmax(x)) of an fp16 [rows, cols] input: exp and the reciprocal on the VXM,
// the row maximum by SXM shifts, sums and broadcasts on the MXM, the SXM transposers.
compiler::Graph softmax_transpose(std::int64_t rows, std::int64_t cols) {
  compiler::Graph g;
  g.source = "softmax-transpose";
  auto value = [&](const std::string& n, bool input) {
    compiler::Value v;
    v.name = n;
    v.dtype = isa::DType::kFp16;
    v.shape =
        n == "y" ? std::vector<std::int64_t>{cols, rows} : std::vector<std::int64_t>{rows, cols};
    g.values.push_back(v);
    const int id = static_cast<int>(g.values.size()) - 1;
    if (input) g.inputs.push_back(id);
    return id;
  };
  const int x = value("x", true), s = value("s", false), y = value("y", false);
  compiler::Node sm;
  sm.name = "softmax";
  sm.op = "Softmax";
  sm.inputs = {x};
  sm.outputs = {s};
  compiler::Attr axis;
  axis.kind = compiler::Attr::Kind::kInt;
  axis.i = -1;
  sm.attrs["axis"] = axis;
  compiler::Node tr;
  tr.name = "transpose";
  tr.op = "Transpose";
  tr.inputs = {s};
  tr.outputs = {y};
  compiler::Attr perm;
  perm.kind = compiler::Attr::Kind::kInts;
  perm.ints = {1, 0};
  tr.attrs["perm"] = perm;
  g.nodes = {sm, tr};
  g.outputs = {y};
  return g;
}

// A hand-written program from testbenches/programs, its architecture replaced by the one given.
Probe hand(const std::string& file, bool functional = false,
           std::vector<units::SimOptions::BitFlip> flips = {}, bool with_done = false) {
  Probe p;
  p.name = file + (flips.empty() ? "" : " +" + std::to_string(flips.size()) + " flips");
  p.functional = functional;
  p.flips = std::move(flips);
  p.build = [file, with_done](const arch::Arch& a) {
    // The text again, its .arch and .set lines replaced by the machine's (queue names resolve
    // on it; a queue it lacks is a refusal).
    std::ifstream in(std::string(LPU_SOURCE_DIR) + "/testbenches/programs/" + file);
    std::string text, line;
    const auto [preset, sets] = arch::nearest_preset(a);
    while (std::getline(in, line)) {
      if (line.rfind(".set ", 0) == 0) continue;
      if (line.rfind(".arch ", 0) == 0) {
        line = ".arch " + preset;
        for (const auto& s : sets)
          line += "\n.set " + s;
      }
      text += line + "\n";
    }
    isa::Program prog = isa::parse_lpuasm(text, file);
    if (with_done) annotate(prog);
    return prog;
  };
  return p;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// --- signatures
// -----------------------------------------------------------------------------------

// What the compiler made of a probe: cycles, instructions, and every instruction with its dispatch
// cycle (per unit kind, so that renumbered queues with the same timetable compare equal).
std::string compile_signature(const isa::Program& p) {
  std::uint64_t fingerprint = 1469598103934665603ull;
  std::map<std::string, std::size_t> per_kind;
  const auto queues = arch::chip_queues(p.arch.chip);
  for (const auto& cp : p.chips)
    for (const auto& q : cp.queues) {
      const std::string kind = std::to_string(static_cast<int>(queues[q.queue].unit));
      per_kind[kind] += q.entries.size();
      for (const auto& e : q.entries) {
        const isa::Word w = isa::encode(e.instr);
        fingerprint =
            arch::fnv1a64(w.data(), w.size(), fingerprint ^ (e.cycle * 0x9e3779b97f4a7c15ull));
      }
    }
  std::ostringstream o;
  o << "cycles " << p.predicted_cycles.value_or(0) << ", " << p.instruction_count()
    << " instructions";
  for (const auto& [k, n] : per_kind)
    o << " " << k << ":" << n;
  o << " dispatch#" << std::hex << fingerprint;
  return o.str();
}

std::map<std::string, system::TensorValue> zero_inputs(const isa::Program& p) {
  std::map<std::string, system::TensorValue> in;
  for (const auto& t : p.tensors) {
    if (t.role != isa::TensorRole::kInput || (p.chips.size() > 1 && t.chip != 0 && false)) continue;
    system::TensorValue v;
    v.dtype = t.dtype;
    v.shape = t.shape;
    std::uint64_t n = 1;
    for (auto d : t.shape)
      n *= d;
    v.bytes.assign(n * static_cast<std::uint64_t>(isa::dtype_bytes(t.dtype)), 0);
    in[t.name] = std::move(v);
  }
  return in;
}

// Runs `p` in a child process (SystemC elaborates once per process) and returns what it reports.
std::string run_signature(const isa::Program& p, const Probe& probe) {
  int fd[2];
  if (pipe(fd) != 0) return "pipe failed";
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    std::string out;
    try {
      setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
      units::SimOptions o;
      o.mode = probe.functional ? units::Mode::kFunctional : units::Mode::kTiming;
      o.on_error = units::OnError::kReport;
      o.flips = probe.flips;
      const system::RunOutcome r = system::run(p, zero_inputs(p), o);
      const auto& rep = r.report;
      std::ostringstream s;
      s << "cycles " << r.cycles << ", " << r.errors.size() << " error(s)";
      for (std::size_t i = 0; i < r.errors.size() && i < 2; ++i)
        s << " [" << r.errors[i].to_string() << "]";
      s.precision(9);
      s << ", energy " << rep.at("energy").at("total_uj").to_number<double>() << " uJ, on-chip "
        << rep.at("on_chip_seconds").to_number<double>() << " s, host "
        << rep.at("host_dma_seconds").to_number<double>() << " s, MACs "
        << rep.at("mxm").at("mac_utilisation").to_number<double>() << ", ecc "
        << json::serialize(rep.at("ecc"));
      for (const auto& l : rep.at("links").as_array())
        s << ", link " << l.at("busy_fraction").to_number<double>();
      out = s.str();
    } catch (const InputError& e) {
      out = std::string("refused: ") + e.what();
    } catch (const std::exception& e) {
      out = std::string("failed: ") + e.what();
    }
    const ssize_t n = write(fd[1], out.data(), out.size());
    (void)n;
    close(fd[1]);
    _exit(0);
  }
  close(fd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status))
    out += " (child ended by signal " + std::to_string(WTERMSIG(status)) + ")";
  return out;
}

std::string cosim_signature(const arch::Arch& a) {
  units::CosimOptions o;
  o.vxm = o.mem = o.sxm = o.c2c = o.mxm = units::UnitMode::kLockstep;
  try {
    cosim::check_arch(a, o, "cosim");
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

struct Signature {
  std::vector<std::string> compile, run;  // per probe
  std::string cosim;
};

// --- the parameters
// ---------------------------------------------------------------------------------

struct Leaf {
  std::string key;
  json::value value;
};

void leaves(const json::value& v, const std::string& path, std::vector<Leaf>* out) {
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      const std::string k(kv.key());
      const std::string p = path.empty() ? k : path + "." + k;
      if (p == "assumptions" || p == "format" || p == "name" || p == "description") continue;
      leaves(kv.value(), p, out);
    }
    return;
  }
  out->push_back({path, v});
}

// Nearby values of a leaf, in the order they are tried.
std::vector<std::string> candidates(const Leaf& l) {
  std::vector<std::string> c;
  const json::value& v = l.value;
  if (v.is_int64()) {
    const std::int64_t x = v.as_int64();
    for (std::int64_t y : {2 * x, x + 1, x / 2, x - 1, x / 8, x / 64, 8 * x})
      if (y != x && y >= 0 && std::find(c.begin(), c.end(), std::to_string(y)) == c.end())
        c.push_back(std::to_string(y));
  } else if (v.is_double()) {
    char b[64];
    for (double y : {2 * v.as_double(), v.as_double() / 2}) {
      std::snprintf(b, sizeof b, "%.17g", y);
      c.push_back(b);
    }
  } else if (v.is_bool()) {
    c.push_back(v.as_bool() ? "false" : "true");
  } else if (v.is_string()) {
    static const std::map<std::string, std::vector<std::string>> alternatives = {
        {"chip.mem.bank_mapping", {"\"interleaved\"", "\"halves\""}},
        {"system.topology", {"\"fully_connected\"", "\"dragonfly\"", "\"single\""}}};
    if (auto it = alternatives.find(l.key); it != alternatives.end())
      for (const auto& a : it->second)
        if (a != "\"" + std::string(v.as_string()) + "\"") c.push_back(a);
  } else if (v.is_array() && !v.as_array().empty()) {
    json::array a = v.as_array();
    a.pop_back();  // one entry fewer
    c.push_back(json::serialize(a));
    json::array b = v.as_array();  // the first entry changed
    if (b[0].is_int64()) {
      b[0] = b[0].as_int64() + 1;
      c.push_back(json::serialize(b));
    } else if (b[0].is_array() && b[0].as_array().size() > 1) {
      b[0].as_array().pop_back();  // the first entry one element shorter
      c.push_back(json::serialize(b));
    }
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: param_effects PRESET [--only KEY] [--verbose]\n");
    return 2;
  }
  const std::string preset = argv[1];
  std::string only;
  bool verbose = false;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--only" && i + 1 < argc) only = argv[++i];
    if (std::string(argv[i]) == "--verbose") verbose = true;
  }
  // The probes, and the overrides each needs on top of the machine under test (tiny holds no
  // compiled weights or transposes in its 3 data slices per hemisphere: those probes get 16; the
  // split needs two chips).
  struct Use {
    Probe probe;
    std::vector<std::string> sets;
  };
  std::vector<Use> uses;
  const bool tiny = preset == "tiny";
  const std::vector<std::string> roomy =
      tiny ? std::vector<std::string>{"chip.mem.slices_per_hemisphere=17"}
           : std::vector<std::string>{};
  const std::vector<std::string> two = {"system.topology=\"fully_connected\"", "system.chips=2"};
  if (!tiny) {
    uses.push_back(
        {compiled("gemm int8 400x640x640", "gemm", {{"m", "400"}, {"k", "640"}, {"n", "640"}},
                  compiler::Precision::kInt8),
         {}});
    uses.push_back(
        {compiled("gemm fp16 64x100x700", "gemm", {{"m", "64"}, {"k", "100"}, {"n", "700"}},
                  compiler::Precision::kModel),
         {}});
    uses.push_back({compiled("llama-decoder small fp16", "llama-decoder", {{"ctx", "32"}},
                             compiler::Precision::kModel),
                    {}});
    uses.push_back({split_over_chips("mlp fp16 over 2 chips", "mlp",
                                     {{"batch", "4"}, {"sizes", "256,512,256"}}),
                    two});
    uses.push_back({hand("transpose_tsp.lpuasm"), {}});
    uses.push_back({hand("rare_ops.lpuasm", false, {}, true), {}});
    // Queues longer than the ICU holds: instruction fetch.
    uses.push_back({compiled("llama-decoder small fp16, queues of 64", "llama-decoder",
                             {{"ctx", "32"}}, compiler::Precision::kModel),
                    {"chip.icu.queue_depth=64"}});
    uses.push_back(
        {split_over_chips("mlp fp16 over 8 chips", "mlp", {{"batch", "8"}, {"sizes", "64,128,64"}}),
         {"system.topology=\"fully_connected\"", "system.chips=8"}});
  } else {
    uses.push_back({compiled("gemm int8 40x64x64", "gemm", {{"m", "40"}, {"k", "64"}, {"n", "64"}},
                             compiler::Precision::kInt8),
                    roomy});
    uses.push_back({compiled("mlp fp32 32-64-32", "mlp",
                             {{"batch", "2"}, {"sizes", "32,64,32"}, {"dtype", "fp32"}},
                             compiler::Precision::kModel),
                    roomy});
    uses.push_back({compiled("mlp fp32 32-64-32, queues of 24", "mlp",
                             {{"batch", "2"}, {"sizes", "32,64,32"}, {"dtype", "fp32"}},
                             compiler::Precision::kModel),
                    with(roomy, {"chip.icu.queue_depth=24"})});
    uses.push_back({compiled("gemm fp16 8x20x32", "gemm", {{"m", "8"}, {"k", "20"}, {"n", "32"}},
                             compiler::Precision::kModel),
                    roomy});
    uses.push_back(
        {graph("softmax and transpose fp16 32x32", [] { return softmax_transpose(32, 32); }),
         roomy});
    uses.push_back({hand("chain_tiny.lpuasm"), {}});
    uses.push_back({hand("permute_tiny.lpuasm"), {}});
    uses.push_back({hand("two_chips_tiny.lpuasm", false, {}, true), two});
    uses.push_back({hand("rare_ops.lpuasm", false, {}, true), {}});
  }
  // SECDED: two bits 64 apart in one 128-bit chunk of a word the chain reads.
  uses.push_back(
      {hand(tiny ? "chain_tiny.lpuasm" : "transpose_tsp.lpuasm", true,
            {{0, tiny ? "mem.w0" : "mem.w1", 0, 3}, {0, tiny ? "mem.w0" : "mem.w1", 0, 67}}),
       {}});

  auto machine = [&](const std::vector<std::string>& sets, const Use& u) {
    return arch::load(preset, with(sets, u.sets));
  };
  // Every probe's program made for the unchanged machine, and its signature there.
  std::vector<std::optional<isa::Program>> base_programs;
  Signature base;
  for (const Use& u : uses) {
    try {
      base_programs.push_back(u.probe.build(machine({}, u)));
      base.compile.push_back(compile_signature(*base_programs.back()));
      base.run.push_back(run_signature(*base_programs.back(), u.probe));
    } catch (const InputError& e) {
      std::fprintf(stderr, "probe '%s' does not build on %s: %s\n", u.probe.name.c_str(),
                   preset.c_str(), e.what());
      return 2;
    }
    if (verbose)
      std::printf("base %-28s %s\n  %s\n", u.probe.name.c_str(), base.compile.back().c_str(),
                  base.run.back().c_str());
  }
  base.cosim = cosim_signature(arch::load(preset));

  const auto& marked = arch::descriptive_parameters();
  auto marked_reason = [&](const std::string& key) -> const std::string* {
    for (const auto& [pattern, why] : marked)
      if (key == pattern || (pattern.back() == '*' && key.compare(0, pattern.size() - 1, pattern, 0,
                                                                  pattern.size() - 1) == 0))
        return &why;
    return nullptr;
  };

  std::vector<Leaf> params;
  leaves(arch::load(preset).resolved, "", &params);
  int failures = 0, checked = 0;
  std::printf("%s: %zu parameters, %zu probes\n", preset.c_str(), params.size(), uses.size());
  for (const Leaf& l : params) {
    if (!only.empty() && l.key != only) continue;
    ++checked;
    const std::string* why = marked_reason(l.key);
    // Nearby values the description accepts, until one changes something.
    std::string value;
    std::vector<std::string> effects;
    for (const auto& c : candidates(l)) {
      const std::vector<std::string> set = {l.key + "=" + c};
      try {
        arch::load(preset, set);
      } catch (const InputError&) {
        continue;
      }
      if (value.empty()) value = c;
      std::vector<std::string> found;
      for (std::size_t i = 0; i < uses.size(); ++i) {
        const Use& u = uses[i];
        std::optional<arch::Arch> a;
        try {
          a = machine(set, u);
        } catch (const InputError& e) {
          found.push_back("machine " + u.probe.name);
          if (verbose) std::printf("    machine %s: %s\n", u.probe.name.c_str(), e.what());
          continue;
        }
        std::string cs;
        try {
          cs = compile_signature(u.probe.build(*a));
        } catch (const InputError& e) {
          cs = std::string("refused: ") + e.what();
        }
        if (cs != base.compile[i]) {
          found.push_back("compile " + u.probe.name);
          if (verbose) std::printf("    compile %s: %s\n", u.probe.name.c_str(), cs.c_str());
        }
        isa::Program p = *base_programs[i];
        p.arch = *a;
        const std::string rs = run_signature(p, u.probe);
        if (rs != base.run[i]) {
          found.push_back("run " + u.probe.name);
          if (verbose) std::printf("    run %s: %s\n", u.probe.name.c_str(), rs.c_str());
        }
      }
      if (cosim_signature(arch::load(preset, set)) != base.cosim) found.push_back("cosim");
      if (!found.empty()) {
        value = c;
        effects = std::move(found);
        break;
      }
    }
    std::string verdict;
    if (why) {
      verdict = effects.empty() ? "descriptive" : "MARKED DESCRIPTIVE BUT HAS AN EFFECT";
      if (!effects.empty()) ++failures;
    } else if (value.empty()) {
      verdict = "NO OTHER VALUE IS ACCEPTED, NOT MARKED";
      ++failures;
    } else {
      verdict = effects.empty() ? "NO EFFECT, NOT MARKED" : "effect";
      if (effects.empty()) ++failures;
    }
    std::string list;
    for (std::size_t i = 0; i < effects.size(); ++i)
      list += (i ? ", " : "") + effects[i];
    std::printf("%-40s %-14s %-36s %s\n", l.key.c_str(),
                value.empty() ? "(none)" : value.substr(0, 14).c_str(), verdict.c_str(),
                why && effects.empty() ? why->c_str() : list.c_str());
    std::fflush(stdout);
  }
  fs::remove_all(scratch());
  std::printf("%s: %d of %d parameter(s) wrong\n", preset.c_str(), failures, checked);
  return failures ? 1 : 0;
}
