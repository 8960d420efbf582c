// Co-simulation (docs/cosim.md): compiled int8 programs on tiny with the VXM's ALUs in RTL
// (rtl/vxm/vxm_alu.sv, Verilated in SystemC mode, behind the transactor of models/cosim).
//  * lockstep: every VXM vector matches the model, the count is every VXM issue of the program,
//    the cycles equal the compiler's prediction, the outputs equal the host reference;
//  * rtl: the RTL's values alone give the reference's outputs bit for bit;
//  * the planted fault (fp32 mul, bit 0 of lane 5) is reported at the first fp32 mul's
//    instruction and access cycle, lane 5;
//  * waveforms: the FST (or VCD) and the GTKWave layout name the same signals; the window holds;
//  * an architecture the RTL was not built for is refused, naming the parameter.
// tiny's 3 data slices per hemisphere hold neither an fp32 tensor's 4 byte planes nor the 16
// streams of a weight load, so the programs are compiled for tiny with 9 MEM slices per
// hemisphere (the same lanes, superlanes and units; the overrides travel in the program).
// SystemC elaborates once per process: one system::run per test case, each case its own process.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"
#include "common/diagnostics.h"
#include "compiler/graph.h"
#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "compiler/workloads.h"
#include "cosim/cosim.h"
#include "isa/asm_text.h"
#include "system/run.h"

using namespace lpu;

namespace {

const std::vector<std::string> kTinySets = {
    "chip.mem.slices_per_hemisphere=9",
    R"(chip.slice_order=["MXM","SXM","MEM*9","VXM","MEM*9","SXM","MXM"])"};

struct Compiled {
  compiler::Kernels k;
  compiler::Schedule s;
  std::vector<compiler::Bytes> inputs;
  std::map<std::string, system::TensorValue> bound;
};

// An ONNX model compiled for tiny (with `sets`) in `precision`, with random inputs bound.
Compiled compile_onnx(const std::string& path, const std::vector<std::string>& sets,
                      compiler::Precision precision) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const arch::Arch a = arch::load("tiny", sets);
  Compiled c;
  c.k = compiler::lower_with_precision(compiler::import_onnx(path), a, precision);
  c.s = compiler::schedule(c.k, a, path);
  c.inputs = compiler::random_inputs(c.k, 3);
  for (std::size_t i = 0; i < c.k.inputs.size(); ++i) {
    const compiler::KTensor& kt = c.k.tensors[static_cast<std::size_t>(c.k.inputs[i])];
    system::TensorValue v;
    v.dtype = kt.dtype;
    for (auto d : kt.shape)
      v.shape.push_back(static_cast<std::uint64_t>(d));
    v.bytes = c.inputs[i];
    c.bound[kt.name] = std::move(v);
  }
  return c;
}

// A built-in workload (fp32) compiled for tiny in int8, with random inputs bound.
Compiled compile(const std::string& workload, const std::map<std::string, std::string>& params) {
  const std::string path = std::string("cosim_") +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                           ".onnx";  // one per test case: CTest runs them in parallel
  compiler::write_workload(workload, params, path);
  return compile_onnx(path, kTinySets, compiler::Precision::kInt8);
}

Compiled gemm() {
  return compile("gemm", {{"m", "8"}, {"k", "64"}, {"n", "64"}, {"dtype", "fp32"}});
}
Compiled mlp() {
  return compile("mlp", {{"batch", "4"}, {"sizes", "32,64,32"}, {"dtype", "fp32"}});
}

// Every VXM issue of the program (each a vector): an instruction, or a repeat's n.
std::uint64_t vxm_vectors(const isa::Program& p) {
  const auto queues = arch::chip_queues(p.arch.chip);
  std::uint64_t n = 0;
  for (const auto& cp : p.chips)
    for (const auto& q : cp.queues) {
      if (queues[q.queue].unit != arch::QueueUnit::kVxm) continue;
      for (const auto& e : q.entries)
        n += e.instr.opcode == 0x05 ? e.instr.arg[0] : 1;
    }
  return n;
}

// The issues of the program's MEM queues that read a word or gather (each a vector the RTL bank
// returns), and those that write or scatter.
void mem_vectors(const isa::Program& p, std::uint64_t* reads, std::uint64_t* writes) {
  const auto queues = arch::chip_queues(p.arch.chip);
  *reads = *writes = 0;
  for (const auto& cp : p.chips)
    for (const auto& q : cp.queues) {
      if (queues[q.queue].unit != arch::QueueUnit::kMem) continue;
      std::uint8_t last = 0;
      for (const auto& e : q.entries) {
        const bool repeat = e.instr.opcode == 0x05;
        const std::uint8_t op = repeat ? last : e.instr.opcode;
        if (!repeat) last = op;
        const std::uint64_t n = repeat ? e.instr.arg[0] : 1;
        if (op == 0x10 || op == 0x12) *reads += n;
        if (op == 0x11 || op == 0x13) *writes += n;
      }
    }
}

units::SimOptions options(units::UnitMode vxm) {
  units::SimOptions o;
  o.cosim.vxm = vxm;
  return o;
}

// No error, cycles as predicted, every output equal to the host reference.
void expect_clean_run(const Compiled& c, const system::RunOutcome& r) {
  EXPECT_TRUE(r.errors.empty()) << r.errors.size() << " error(s), the first: "
                                << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.cycles, c.s.cycles) << "simulated vs predicted";
  const std::vector<compiler::Bytes> ref = compiler::run_reference(c.k, c.inputs);
  ASSERT_EQ(ref.size(), c.k.outputs.size());
  for (std::size_t i = 0; i < c.k.outputs.size(); ++i) {
    const std::string& name = c.k.tensors[static_cast<std::size_t>(c.k.outputs[i])].name;
    auto it = r.outputs.find(name);
    ASSERT_NE(it, r.outputs.end()) << name;
    EXPECT_EQ(it->second.bytes, ref[i]) << "output '" << name << "' differs from the reference";
  }
}

const boost::json::object& vxm_report(const system::RunOutcome& r) {
  return r.report.at("cosim").as_object().at("vxm").as_object();
}
std::uint64_t field(const boost::json::object& o, const char* k) {
  return o.at(k).to_number<std::uint64_t>();
}

void lockstep(const Compiled& c) {
  const std::uint64_t vectors = vxm_vectors(c.s.program);
  ASSERT_GT(vectors, 10u);
  const system::RunOutcome r =
      system::run(c.s.program, c.bound, options(units::UnitMode::kLockstep));
  expect_clean_run(c, r);
  const auto& v = vxm_report(r);
  EXPECT_EQ(std::string(v.at("mode").as_string()), "lockstep");
  EXPECT_EQ(field(v, "matched"), vectors);
  EXPECT_EQ(field(v, "mismatched"), 0u);
  EXPECT_EQ(field(v, "rtl_cycles"), 2 * vectors);  // tiny: 2 superlanes, a beat each
  EXPECT_TRUE(v.at("not_covered").as_object().empty());
}

}  // namespace

TEST(Cosim, GemmInt8LockstepMatchesEveryVector) {
  lockstep(gemm());
}

TEST(Cosim, MlpInt8LockstepMatchesEveryVector) {
  lockstep(mlp());
}

// The RTL alone computes every VXM result: still the reference's outputs, bit for bit.
TEST(Cosim, MlpInt8RtlGivesTheReference) {
  const Compiled c = mlp();
  const system::RunOutcome r = system::run(c.s.program, c.bound, options(units::UnitMode::kRtl));
  expect_clean_run(c, r);
  const auto& v = vxm_report(r);
  EXPECT_EQ(field(v, "rtl_vectors"), vxm_vectors(c.s.program));
  EXPECT_EQ(field(v, "matched"), 0u);
}

// The RTL built with its planted fault (fp32 mul: bit 0 of lane 5 inverted): the lockstep run
// stops at the first fp32 mul to issue, naming its queue, instruction, access cycle and lane 5.
TEST(Cosim, PlantedFaultIsLocated) {
  const Compiled c = mlp();
  const isa::Program& p = c.s.program;
  const auto queues = arch::chip_queues(p.arch.chip);
  std::string queue;
  std::int64_t index = -1;
  std::uint64_t access = ~0ull;
  for (const auto& q : p.chips[0].queues) {
    if (queues[q.queue].unit != arch::QueueUnit::kVxm) continue;
    for (std::size_t i = 0; i < q.entries.size(); ++i) {
      const isa::Instr& in = q.entries[i].instr;
      if (in.opcode != 0x22 || in.mod[0] != static_cast<std::uint32_t>(isa::DType::kFp32)) continue;
      const std::uint64_t t =
          q.entries[i].cycle +
          static_cast<std::uint64_t>(p.arch.chip.latency_of(in.info().latency_class).d_skew);
      if (t < access) {
        access = t;
        queue = queues[q.queue].name;
        index = static_cast<std::int64_t>(i);
      }
      break;
    }
  }
  ASSERT_GE(index, 0) << "the program has no fp32 mul";
  units::SimOptions o = options(units::UnitMode::kLockstep);
  o.cosim.plant_fault = true;
  const system::RunOutcome r = system::run(p, c.bound, o);
  ASSERT_EQ(r.errors.size(), 1u);
  const units::ScheduleError& e = r.errors[0];
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(e.kind, "lockstep mismatch");
  EXPECT_EQ(e.unit, "VXM");
  EXPECT_EQ(e.queue, queue);
  EXPECT_EQ(e.instruction, index);
  EXPECT_EQ(e.cycle, access);
  EXPECT_NE(e.message.find("in lane 5 (superlane 0, ALU lane 5"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("mul.fp32 of a 0x"), std::string::npos) << e.message;
  // The two values differ in bit 0 only.
  const std::regex values("gives 0x([0-9a-f]+) in the model, 0x([0-9a-f]+) in the RTL");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(e.message, m, values)) << e.message;
  EXPECT_EQ(std::stoul(m[1].str(), nullptr, 16) ^ std::stoul(m[2].str(), nullptr, 16), 1u);
  EXPECT_EQ(field(vxm_report(r), "mismatched"), 1u);
}

namespace {

// The signal names a VCD declares ("scope.sub.name[7:0]"), and its timestamps.
void read_vcd(const std::string& path, std::set<std::string>* names,
              std::vector<std::uint64_t>* times) {
  std::ifstream f(path);
  std::vector<std::string> scope;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::string w;
    s >> w;
    if (w == "$scope") {
      std::string kind, name;
      s >> kind >> name;
      scope.push_back(name);
    } else if (w == "$upscope") {
      scope.pop_back();
    } else if (w == "$var") {
      std::string kind, width, id, name, range;
      s >> kind >> width >> id >> name >> range;
      std::string full;
      for (const auto& sc : scope)
        full += sc + ".";
      names->insert(full + name + (range != "$end" ? range : ""));
    } else if (!w.empty() && w[0] == '#') {
      times->push_back(std::stoull(w.substr(1)));
    }
  }
}

// The signals a GTKWave save file shows.
std::vector<std::string> gtkw_signals(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty() && line[0] != '@' && line[0] != '-' && line[0] != '[' && line[0] != '*')
      out.push_back(line);
  return out;
}

}  // namespace

// An FST of the whole run with its GTKWave layout: every signal the layout shows is in the file
// (read back through GTKWave's FST reader, as VCD); each used ALU has its three groups.
TEST(Cosim, WavesFstWithLayout) {
  const Compiled c = mlp();
  std::filesystem::remove_all("cosim_waves");
  units::SimOptions o = options(units::UnitMode::kLockstep);
  o.cosim.mem = units::UnitMode::kLockstep;
  o.cosim.waves = "cosim_waves/mlp.fst";
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  expect_clean_run(c, r);
  EXPECT_EQ(std::string(r.report.at("waves").as_string()), "cosim_waves/mlp.fst");
  ASSERT_TRUE(std::filesystem::exists("cosim_waves/mlp.fst"));
  std::string error;
  ASSERT_TRUE(cosim::fst_to_vcd("cosim_waves/mlp.fst", "cosim_waves/check.vcd", &error)) << error;
  std::set<std::string> names;
  std::vector<std::uint64_t> times;
  read_vcd("cosim_waves/check.vcd", &names, &times);
  const std::vector<std::string> shown = gtkw_signals("cosim_waves/mlp.gtkw");
  // Per used ALU 8 control, 17 result, 2 x 16 operand lanes and 4 buses; per MEM bank 9 + 1 + 5.
  std::size_t alus = 0, banks = 0;
  for (const auto& sig : shown) {
    alus += sig.find("vxm_alu.clk") != std::string::npos;
    banks += sig.find("mem_bank.clk") != std::string::npos;
  }
  EXPECT_GT(alus, 0u);
  EXPECT_EQ(banks, 16u);  // the slices the program or its load touches (of 18)
  EXPECT_EQ(shown.size(), 61 * alus + 15 * banks);
  ASSERT_FALSE(shown.empty());
  for (const auto& s : shown)
    EXPECT_TRUE(names.count(s)) << s << " is in the layout but not in the waveform";
  EXPECT_TRUE(names.count("chip0.vxm.rtl.alu0.vxm_alu.d[511:0]"));
  EXPECT_TRUE(names.count("chip0.vxm.rtl.alu0.vxm_alu.d_lane[15][31:0]"));
  // Time is the simulated time: the run's last cycle ends within the dump.
  ASSERT_FALSE(times.empty());
  // Cycle c starts at c clock periods, the period in whole picoseconds (SystemC's resolution).
  const double period_ps = std::round(1e6 / c.s.program.arch.chip.clock_mhz);
  EXPECT_LE(static_cast<double>(times.back()), static_cast<double>(r.cycles) * period_ps);
}

// A VCD of cycles 50..149 only (of a longer run).
TEST(Cosim, WavesVcdWindow) {
  const Compiled c = mlp();
  std::filesystem::remove_all("cosim_vcd");
  units::SimOptions o = options(units::UnitMode::kRtl);
  o.cosim.waves = "cosim_vcd/mlp.vcd";
  o.cosim.waves_from = 50;
  o.cosim.waves_to = 150;
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  expect_clean_run(c, r);
  ASSERT_GT(r.cycles, 150u);
  ASSERT_TRUE(std::filesystem::exists("cosim_vcd/mlp.vcd"));
  EXPECT_FALSE(std::filesystem::exists("cosim_vcd/mlp.vcd.fst"));
  EXPECT_TRUE(std::filesystem::exists("cosim_vcd/mlp.gtkw"));
  std::set<std::string> names;
  std::vector<std::uint64_t> times;
  read_vcd("cosim_vcd/mlp.vcd", &names, &times);
  ASSERT_FALSE(times.empty());
  // Cycle c starts at c clock periods, the period in whole picoseconds (SystemC's resolution).
  const double period_ps = std::round(1e6 / c.s.program.arch.chip.clock_mhz);
  EXPECT_EQ(static_cast<double>(times.front()), 50 * period_ps);
  EXPECT_LT(static_cast<double>(times.back()), 150 * period_ps);
  EXPECT_GT(times.size(), 100u);
}

// The Verilated blocks' parameters: another architecture is refused, each parameter named.
// (Descriptions fix 16 lanes per superlane today, so the architecture is changed after loading.)
TEST(Cosim, ArchitectureTheRtlWasNotBuiltForIsRefused) {
  arch::Arch a = arch::load("tiny");
  a.chip.lanes_per_superlane = 32;
  a.chip.mem.ecc_check_bits = 10;
  units::CosimOptions o;
  o.vxm = units::UnitMode::kLockstep;
  auto message = [&] {
    try {
      cosim::check_arch(a, o, "--unit");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(message(),
            "--unit: error: the RTL blocks were Verilated for chip.lanes_per_superlane = 16 (the "
            "architecture has 32); architecture 'tiny' differs (rebuild with the LPU_RTL_* CMake "
            "variables)");
  o.vxm = units::UnitMode::kTlm;
  o.mem = units::UnitMode::kRtl;
  EXPECT_EQ(message(),
            "--unit: error: the RTL blocks were Verilated for chip.lanes_per_superlane = 16 (the "
            "architecture has 32); chip.mem.ecc.check_bits = 9 (the architecture has 10); "
            "architecture 'tiny' differs (rebuild with the LPU_RTL_* CMake variables)");
  // Both shipped presets are what the blocks were built for.
  o.vxm = units::UnitMode::kLockstep;
  for (const char* preset : {"tiny", "tsp-v1"})
    EXPECT_NO_THROW(cosim::check_arch(arch::load(preset), o, "--unit")) << preset;
  // The MXM plane is built for tiny's: tsp-v1's 320 x 320 planes are refused by name.
  o.mxm = units::UnitMode::kLockstep;
  EXPECT_NO_THROW(cosim::check_arch(arch::load("tiny"), o, "--unit"));
  try {
    cosim::check_arch(arch::load("tsp-v1"), o, "--unit");
    ADD_FAILURE() << "tsp-v1's MXM taken";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("chip.mxm.rows = 32 (the architecture has 320); "
                                         "chip.mxm.cols = 32 (the architecture has 320)"),
              std::string::npos)
        << e.what();
  }
  o.vxm = o.mem = o.mxm = units::UnitMode::kTlm;
  EXPECT_NO_THROW(cosim::check_arch(a, o, "--unit"));
}

// The MEM slices' banks in lockstep (and the VXM's ALUs): every word read matches, with three
// stored bits inverted before the run (two data bits, one check bit, in words the program
// reads): corrected alike in the model and the RTL.
TEST(Cosim, MemLockstepCorrectsFlippedBitsAsTheModel) {
  const Compiled c = mlp();
  std::uint64_t reads = 0, writes = 0;
  mem_vectors(c.s.program, &reads, &writes);
  ASSERT_GT(reads, 10u);
  units::SimOptions o = options(units::UnitMode::kLockstep);
  o.cosim.mem = units::UnitMode::kLockstep;
  // x is at mem.w0:0 (and the next slices); 256 data bits per tiny word, then 2 x 9 check bits.
  o.flips = {{0, "mem.w0", 0, 3}, {0, "mem.w0", 0, 200}, {0, "mem.w1", 1, 256 + 9 + 4}};
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  expect_clean_run(c, r);
  const auto& m = r.report.at("cosim").as_object().at("mem").as_object();
  EXPECT_EQ(field(m, "matched"), reads);
  EXPECT_EQ(field(m, "mismatched"), 0u);
  EXPECT_EQ(field(m, "rtl_vectors"), reads + writes);
  EXPECT_EQ(field(r.report.at("ecc").as_object(), "corrected"), 3u);
  EXPECT_EQ(field(vxm_report(r), "matched"), vxm_vectors(c.s.program));
}

// The banks alone serve every read (two bits inverted in one chunk: uncorrectable, reported at
// the read as the model would).
TEST(Cosim, MemRtlReportsAnUncorrectableWord) {
  const Compiled c = mlp();
  units::SimOptions o = options(units::UnitMode::kTlm);
  o.cosim.mem = units::UnitMode::kRtl;
  o.flips = {{0, "mem.w0", 0, 3}, {0, "mem.w0", 0, 5}};
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].kind, "schedule error");
  EXPECT_EQ(r.errors[0].queue, "mem.w0");
  EXPECT_NE(r.errors[0].message.find("uncorrectable ECC error (1 chunk(s)) in the word read"),
            std::string::npos)
      << r.errors[0].message;
  EXPECT_EQ(field(r.report.at("ecc").as_object(), "uncorrectable"), 1u);
}

// Without flips, the banks alone give the reference's outputs.
TEST(Cosim, MlpInt8MemAndVxmRtlGiveTheReference) {
  const Compiled c = mlp();
  units::SimOptions o = options(units::UnitMode::kRtl);
  o.cosim.mem = units::UnitMode::kRtl;
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  expect_clean_run(c, r);
  std::uint64_t reads = 0, writes = 0;
  mem_vectors(c.s.program, &reads, &writes);
  EXPECT_EQ(field(r.report.at("cosim").as_object().at("mem").as_object(), "rtl_vectors"),
            reads + writes);
}

namespace {

// An ONNX backend test's model (the operators' own test data) on tiny with `mem_slices` MEM
// slices per hemisphere, with the SXM, VXM and MEM in lockstep: everything matches, the outputs
// are the reference's, and the SXM matched `sxm_vectors` output vectors.
void sxm_lockstep(const std::string& test, int mem_slices, std::uint64_t sxm_vectors) {
  const std::string n = std::to_string(mem_slices);
  const Compiled c = compile_onnx(
      "/usr/share/libonnx-testdata/data/node/" + test + "/model.onnx",
      {"chip.mem.slices_per_hemisphere=" + n,
       R"(chip.slice_order=["MXM","SXM","MEM*)" + n + R"(","VXM","MEM*)" + n + R"(","SXM","MXM"])"},
      compiler::Precision::kModel);
  units::SimOptions o = options(units::UnitMode::kLockstep);
  o.cosim.mem = o.cosim.sxm = units::UnitMode::kLockstep;
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  expect_clean_run(c, r);
  const auto& s = r.report.at("cosim").as_object().at("sxm").as_object();
  EXPECT_EQ(field(s, "matched"), sxm_vectors);
  EXPECT_EQ(field(s, "mismatched"), 0u);
  EXPECT_TRUE(s.at("not_covered").as_object().empty());
}

}  // namespace

// Concat along the last axis: shifts north and selects on the SXM's lane network.
TEST(Cosim, SxmShiftSelectLockstep) {
  sxm_lockstep("test_concat_2d_axis_1", 9, 16);
}

// A transpose of [3, 4, 5] fp32: the 16 x 16 transposer (its data in 16 MEM slices).
TEST(Cosim, SxmTransposeLockstep) {
  sxm_lockstep("test_transpose_default", 17, 384);
}

namespace {

// testbenches/programs/two_chips_tiny.lpuasm: chip 0 sends a vector to chip 1 over link 0.
system::RunOutcome two_chips(units::UnitMode c2c, double ber, const std::string& waves = "") {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const isa::Program p =
      isa::load_lpuasm(std::string(LPU_SOURCE_DIR) + "/testbenches/programs/two_chips_tiny.lpuasm");
  units::SimOptions o;
  o.cosim.c2c = c2c;
  o.cosim.waves = waves;
  o.link_bit_error_rate = ber;
  o.link_seed = 3;
  o.on_error = units::OnError::kReport;
  return system::run(p, {}, o);
}

}  // namespace

// The link layer in lockstep: the frame's bits on the transmit lanes are the model's frame, and
// the receive side's verdict and payload are the model's decode (2 vectors: sent, received).
TEST(Cosim, C2cLockstepMatchesTheFrame) {
  const system::RunOutcome r = two_chips(units::UnitMode::kLockstep, 0);
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.cycles, *r.predicted);
  const auto& c = r.report.at("cosim").as_object().at("c2c").as_object();
  EXPECT_EQ(field(c, "matched"), 2u);
  EXPECT_EQ(field(c, "mismatched"), 0u);
  // A 44-byte frame: 88 serial clocks plus the start to send, 88 to receive.
  EXPECT_EQ(field(c, "rtl_cycles"), 177u);
}

// Bit errors on the link (the same seed): the RTL's receive side rejects the frame exactly as the
// model does, in lockstep and alone; the run reports what a model-only run reports: the CRC
// error, then chip 1's read of the vector that never came.
TEST(Cosim, C2cRtlRejectsACorruptedFrameAsTheModel) {
  const system::RunOutcome r = two_chips(units::UnitMode::kRtl, 0.01);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[1].message.find("reads a stream slot nobody wrote"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("CRC error on link 0 (chip 0 port 0 -> chip 1 port 0): the "
                                     "vector sent by chip 0 c2c.l0 instruction 0 in cycle 6 "
                                     "arrived corrupted and is dropped"),
            std::string::npos)
      << r.errors[0].message;
  const auto& link = r.report.at("links").as_array()[0].as_object();
  EXPECT_EQ(field(link, "crc_errors"), 1u);
  EXPECT_EQ(field(link, "bits_flipped"), 6u);
}

TEST(Cosim, C2cLockstepAgreesOnACorruptedFrame) {
  const system::RunOutcome r = two_chips(units::UnitMode::kLockstep, 0.01);
  ASSERT_EQ(r.errors.size(), 2u);  // the CRC error and the read it starves, no mismatch
  EXPECT_EQ(r.errors[0].kind, "schedule error");
  EXPECT_EQ(r.errors[1].kind, "schedule error");
  EXPECT_NE(r.errors[0].message.find("CRC error on link 0"), std::string::npos);
  EXPECT_EQ(field(r.report.at("cosim").as_object().at("c2c").as_object(), "matched"), 2u);
}

// Waves of the link layer: its serial clock runs over the frame's serialisation window (chip 0,
// from the send's cycle) and the window its bits arrive in (chip 1, before the arrival cycle);
// the layout's signals are all in the dump.
TEST(Cosim, C2cWavesWithLayout) {
  std::filesystem::remove_all("cosim_c2c");
  const system::RunOutcome r = two_chips(units::UnitMode::kRtl, 0, "cosim_c2c/link.fst");
  EXPECT_TRUE(r.errors.empty());
  std::string error;
  ASSERT_TRUE(cosim::fst_to_vcd("cosim_c2c/link.fst", "cosim_c2c/check.vcd", &error)) << error;
  std::set<std::string> names;
  std::vector<std::uint64_t> times;
  read_vcd("cosim_c2c/check.vcd", &names, &times);
  const std::vector<std::string> shown = gtkw_signals("cosim_c2c/link.gtkw");
  EXPECT_EQ(shown.size(), 11u + 12u);  // transmit on chip 0, receive on chip 1
  for (const auto& s : shown)
    EXPECT_TRUE(names.count(s)) << s << " is in the layout but not in the waveform";
  EXPECT_TRUE(names.count("chip0.c2c_l0.rtl.tx.link.c2c_link.tx_lanes[3:0]"));
  EXPECT_TRUE(names.count("chip1.c2c_l0.rtl.rx.link.c2c_link.rx_crc_ok"));
}

namespace {

// The ACC vectors of the program's MXM queues that emit a sum (modes only and last), and all.
void acc_vectors(const isa::Program& p, std::uint64_t* emitting, std::uint64_t* all) {
  *emitting = *all = 0;
  for (const auto& cp : p.chips)
    for (const auto& q : cp.queues) {
      const isa::Instr* last = nullptr;
      for (const auto& e : q.entries) {
        const bool repeat = e.instr.opcode == 0x05;
        const isa::Instr* in = repeat ? last : &e.instr;
        if (!repeat) last = in;
        if (!in || in->opcode != 0x64) continue;
        const std::uint64_t n = repeat ? e.instr.arg[0] : in->arg[1];
        *all += n;
        if (in->mod[1] == 1 || in->mod[1] == 2) *emitting += n;
      }
    }
}

// Every unit with RTL in lockstep at once on a compiled int8 program: the outputs are the
// reference's, the cycles the prediction's, and every unit matched all it compared.
void all_units_lockstep(const Compiled& c) {
  units::SimOptions o = options(units::UnitMode::kLockstep);
  o.cosim.mem = o.cosim.sxm = o.cosim.mxm = o.cosim.c2c = units::UnitMode::kLockstep;
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  expect_clean_run(c, r);
  const auto& cosim = r.report.at("cosim").as_object();
  for (const char* unit : {"vxm", "mem", "sxm", "mxm", "c2c"})
    EXPECT_EQ(field(cosim.at(unit).as_object(), "mismatched"), 0u) << unit;
  std::uint64_t emitting = 0, all = 0;
  acc_vectors(c.s.program, &emitting, &all);
  ASSERT_GT(emitting, 0u);
  EXPECT_EQ(field(cosim.at("mxm").as_object(), "matched"), emitting);
  EXPECT_EQ(field(cosim.at("mxm").as_object(), "rtl_vectors"), all);
  EXPECT_EQ(field(cosim.at("vxm").as_object(), "matched"), vxm_vectors(c.s.program));
}

}  // namespace

// The GEMM's int8 products on the MXM plane's RTL (2 x 2 supercells, 320 accumulators), with the
// VXM, MEM and SXM in lockstep too.
TEST(Cosim, GemmInt8AllUnitsLockstep) {
  all_units_lockstep(gemm());
}

TEST(Cosim, MlpInt8AllUnitsLockstep) {
  all_units_lockstep(mlp());
}

// The plane's RTL alone gives the sums: still the reference's outputs.
TEST(Cosim, GemmInt8MxmRtlGivesTheReference) {
  const Compiled c = gemm();
  units::SimOptions o = options(units::UnitMode::kTlm);
  o.cosim.mxm = units::UnitMode::kRtl;
  const system::RunOutcome r = system::run(c.s.program, c.bound, o);
  expect_clean_run(c, r);
  std::uint64_t emitting = 0, all = 0;
  acc_vectors(c.s.program, &emitting, &all);
  EXPECT_EQ(field(r.report.at("cosim").as_object().at("mxm").as_object(), "rtl_vectors"), all);
}

namespace {

system::RunOutcome run_program(const std::string& name, units::SimOptions o) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const isa::Program p =
      isa::load_lpuasm(std::string(LPU_SOURCE_DIR) + "/testbenches/programs/" + name);
  return system::run(p, {}, o);
}

}  // namespace

// A permute on the SXM's lane network (testbenches/programs/permute_tiny.lpuasm: map[i] =
// (5 i + 3) mod 32): the RTL alone gives y[map[i]] = x[i]; in lockstep it matches.
TEST(Cosim, SxmPermuteRtlGivesThePermutation) {
  units::SimOptions o;
  o.cosim.sxm = units::UnitMode::kRtl;
  const system::RunOutcome r = run_program("permute_tiny.lpuasm", o);
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& y = r.outputs.at("y").bytes;
  ASSERT_EQ(y.size(), 32u);
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(y[static_cast<std::size_t>((5 * i + 3) % 32)], static_cast<std::uint8_t>(100 + i))
        << "lane " << i;
  EXPECT_EQ(field(r.report.at("cosim").as_object().at("sxm").as_object(), "rtl_vectors"), 1u);
}

TEST(Cosim, SxmPermuteLockstep) {
  units::SimOptions o;
  o.cosim.sxm = units::UnitMode::kLockstep;
  const system::RunOutcome r = run_program("permute_tiny.lpuasm", o);
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& s = r.report.at("cosim").as_object().at("sxm").as_object();
  EXPECT_EQ(field(s, "matched"), 1u);
  EXPECT_EQ(field(s, "mismatched"), 0u);
}

// A bad map (lane 7 takes lane 2's target): the RTL's verdict is reported as the model words it,
// with the map's stream and position; in lockstep the two verdicts agree (no mismatch).
TEST(Cosim, SxmPermuteBadMapRtlReportsAsTheModel) {
  units::SimOptions o;
  o.cosim.sxm = units::UnitMode::kRtl;
  const system::RunOutcome r = run_program("permute_bad_tiny.lpuasm", o);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            "schedule error: chip 0, SXM queue sxm.w.permute, instruction 0, cycle 8, stream s2w, "
            "position 1: bad map: lane 7: target 13 is already the target of lane 2");
}

TEST(Cosim, SxmPermuteBadMapLockstepVerdictsAgree) {
  units::SimOptions o;
  o.cosim.sxm = units::UnitMode::kLockstep;
  const system::RunOutcome r = run_program("permute_bad_tiny.lpuasm", o);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].kind, "schedule error");
  EXPECT_NE(r.errors[0].message.find("bad map: lane 7: target 13 is already the target of lane 2"),
            std::string::npos);
  EXPECT_EQ(field(r.report.at("cosim").as_object().at("sxm").as_object(), "matched"), 1u);
}
