// Vectors between chips over C2C links, through the SystemC model: arrival cycles follow the
// link's timing (func::LinkTiming) for several link settings, values arrive intact, each
// multi-chip schedule error is reported with both chips, the link and the cycles, and injected
// bit errors are caught by the CRC and counted. One system::run per test case (SystemC elaborates
// once per process; CTest runs each case in its own).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "common/diagnostics.h"
#include "compiler/collectives.h"
#include "compiler/onnx_import.h"
#include "compiler/partition.h"
#include "compiler/pipeline.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "compiler/workloads.h"
#include "func/c2c_link.h"
#include "func/numerics.h"
#include "isa/asm_text.h"
#include "system/run.h"

using namespace lpu;

namespace {

const char* kX = "00254a6f94b9de03284d7297bce1062b50759abfe4092e53789dc2e70c31567b";

// Chip 0 reads `n` vectors (one per `gap` cycles) from mem.w0 (position 5) westward to its port
// c2c.l0 (position 1, four hops) and sends each; chip 1 receives each at `recv_at(i)` on its
// c2c.l0 and writes it eastward to its mem.w0 (four hops). `sets` are extra .set lines.
struct TwoChips {
  std::vector<std::string> sets;
  int n = 1, gap = 8;
  int sender = 0;                      // the other chip receives
  std::vector<std::uint64_t> deskews;  // on both chips' c2c.l0, merged in cycle order
  std::string program(const std::vector<std::uint64_t>& recv) const {
    std::string s =
        ".lpuasm 1\n.arch tiny\n.set system.topology=fully_connected\n"
        ".set system.chips=2\n";
    for (const auto& x : sets)
      s += ".set " + x + "\n";
    const std::string from = std::to_string(sender), to = std::to_string(1 - sender);
    s += ".tensor x role=constant chip=" + from + " dtype=i8 shape=[" + std::to_string(n) +
         ",32] layout=rows at=mem.w0:0x0000+" + std::to_string(n) + "\n";
    s += ".tensor y role=output chip=" + to + " dtype=i8 shape=[" + std::to_string(n) +
         ",32] layout=rows at=mem.w0:0x0010+" + std::to_string(n) + "\n";
    s += ".image chip=" + from + " slice=mem.w0 addr=0x0000\n";
    for (int i = 0; i < n; ++i)
      s += "  " + std::string(kX) + "\n";
    s += ".endimage\n.chip " + from + "\n.queue mem.w0\n";
    for (int i = 0; i < n; ++i)
      s += "  @" + std::to_string(i * gap) + " read " + std::to_string(i) + ", s0w\n";
    auto port_queue = [&](std::vector<std::pair<std::uint64_t, std::string>> e) {
      for (auto d : deskews)
        e.push_back({d, "deskew"});
      std::sort(e.begin(), e.end());
      std::string q = ".queue c2c.l0\n";
      for (const auto& [at, text] : e)
        q += "  @" + std::to_string(at) + " " + text + "\n";
      return q;
    };
    std::vector<std::pair<std::uint64_t, std::string>> sends, recvs;
    for (int i = 0; i < n; ++i)  // the vector passes position 1 four cycles after it leaves
      sends.push_back({static_cast<std::uint64_t>(i * gap + 5), "send s0w"});
    for (std::size_t i = 0; i < recv.size(); ++i)
      recvs.push_back({recv[i], "recv s0e"});
    s += port_queue(sends);
    s += ".chip " + to + "\n" + port_queue(recvs);
    s += ".queue mem.w0\n";
    for (std::size_t i = 0; i < recv.size(); ++i)  // result 2 cycles later, 4 hops, d_skew 1
      s += "  @" + std::to_string(recv[i] + 5) + " write " + std::to_string(16 + i) + ", s0e\n";
    return s;
  }
  // The arrival cycle of vector i (sent with access cycle i gap + 6).
  std::uint64_t arrival(int i) const {
    std::vector<std::string> all = {"system.topology=fully_connected", "system.chips=2"};
    all.insert(all.end(), sets.begin(), sets.end());
    return func::LinkTiming(arch::load("tiny", all))
        .arrival(static_cast<std::uint64_t>(i * gap + 6));
  }
};

system::RunOutcome run(const std::string& text, units::SimOptions o = {}) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return system::run(isa::parse_lpuasm(text, "test.lpuasm"), {}, o);
}

void expect_delivered(const system::RunOutcome& r, int n) {
  ASSERT_TRUE(r.errors.empty()) << r.errors.size() << " errors, the first: "
                                << (r.errors.empty() ? "" : r.errors[0].to_string());
  ASSERT_EQ(r.outputs.count("y"), 1u);
  const auto& y = r.outputs.at("y").bytes;
  ASSERT_EQ(y.size(), static_cast<std::size_t>(32 * n));
  for (int i = 0; i < n; ++i)
    for (int b = 0; b < 32; ++b) {
      unsigned v = 0;
      std::sscanf(kX + 2 * b, "%2x", &v);
      EXPECT_EQ(y[static_cast<std::size_t>(32 * i + b)], v) << "vector " << i << " byte " << b;
    }
}

}  // namespace

// tiny's link (tsp-v1's C2C: 4 lanes x 30 Gb/s x 0.9697, 200 ns): a 44-byte frame is 3 cycles at
// 900 MHz and the latency 180, so a vector sent in cycle 6 arrives in cycle 189.
TEST(MultiChip, VectorArrivesAfterSerialisationAndLatency) {
  TwoChips t;
  EXPECT_EQ(t.arrival(0), 189u);
  const auto r = run(t.program({t.arrival(0)}));
  expect_delivered(r, 1);
  EXPECT_EQ(r.cycles, 189u + 9u);  // the write's completion
  const auto& link = r.report.at("links").as_array().at(0).as_object();
  EXPECT_EQ(link.at("vectors").as_uint64(), 1u);
  EXPECT_EQ(link.at("bytes").as_uint64(), 44u);
  EXPECT_EQ(link.at("crc_errors").as_uint64(), 0u);
}

// Eight lanes and 20 ns: 2 cycles of serialisation, 18 of latency.
TEST(MultiChip, WiderFasterLinkArrivesSooner) {
  TwoChips t;
  t.sets = {"chip.c2c.lanes_per_link=8", "chip.c2c.latency_ns=20"};
  EXPECT_EQ(t.arrival(0), 6u + 2u + 18u);
  expect_delivered(run(t.program({t.arrival(0)})), 1);
}

// A 450 MHz clock and 1 lane at 10 Gb/s: 44 bytes are 36.3 ns, 17 cycles; 100 ns is 45 cycles.
// Three vectors 20 cycles apart (the link is free again after 17).
TEST(MultiChip, SlowLinkCarriesAStreamOfVectors) {
  TwoChips t;
  t.sets = {"chip.clock_mhz=450", "chip.c2c.lanes_per_link=1", "chip.c2c.lane_rate_gbps=10",
            "chip.c2c.latency_ns=100"};
  t.n = 3;
  t.gap = 20;
  EXPECT_EQ(t.arrival(0), 6u + 17u + 45u);
  expect_delivered(run(t.program({t.arrival(0), t.arrival(1), t.arrival(2)})), 3);
}

TEST(MultiChipErrors, ReceiveBeforeTheVectorArrives) {
  TwoChips t;
  const auto r = run(t.program({t.arrival(0) - 1}));
  ASSERT_FALSE(r.errors.empty());
  const auto& e = r.errors[0];
  EXPECT_EQ(e.chip, 1u);
  EXPECT_EQ(e.queue, "c2c.l0");
  EXPECT_EQ(e.cycle, t.arrival(0) - 1);
  EXPECT_NE(e.message.find("link 0 (chip 0 port 0 -> chip 1 port 0)"), std::string::npos)
      << e.message;
  EXPECT_NE(e.message.find("arrives in cycle " + std::to_string(t.arrival(0))), std::string::npos)
      << e.message;
}

TEST(MultiChipErrors, VectorNobodyReceives) {
  TwoChips t;
  t.n = 2;
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  const auto r = run(t.program({t.arrival(0)}), o);  // the second vector is never received
  ASSERT_EQ(r.errors.size(), 1u) << r.errors[0].to_string();
  EXPECT_EQ(r.errors[0].chip, 0u);
  EXPECT_EQ(r.errors[0].instruction, 1);
  EXPECT_NE(r.errors[0].message.find("no recv on chip 1"), std::string::npos);
}

TEST(MultiChipErrors, SendWhileTheLinkIsBusy) {
  TwoChips t;
  t.n = 2;
  t.gap = 2;  // the frame takes 3 cycles
  const auto r = run(t.program({t.arrival(0), t.arrival(1)}));
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].chip, 0u);
  EXPECT_EQ(r.errors[0].cycle, 8u);
  EXPECT_NE(r.errors[0].message.find("previous frame occupies it until cycle 9"), std::string::npos)
      << r.errors[0].message;
}

// At 2 errors per 1000 bits a 352-bit frame is hit about half the time: every hit frame fails its
// CRC, is counted and dropped (its write then reads nothing); clean frames arrive intact.
TEST(MultiChipErrors, InjectedBitErrorsAreCaughtByTheCrc) {
  TwoChips t;
  t.n = 8;
  std::vector<std::uint64_t> recv;
  for (int i = 0; i < t.n; ++i)
    recv.push_back(t.arrival(i));
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  o.link_bit_error_rate = 2e-3;
  o.link_seed = 5;
  const auto r = run(t.program(recv), o);
  const auto& link = r.report.at("links").as_array().at(0).as_object();
  const auto crc = link.at("crc_errors").as_uint64();
  EXPECT_GT(crc, 0u);
  EXPECT_LT(crc, 8u);
  EXPECT_GE(link.at("bits_flipped").as_uint64(), crc);
  std::uint64_t crc_reports = 0;
  for (const auto& e : r.errors)
    crc_reports += e.message.find("CRC error") != std::string::npos;
  EXPECT_EQ(crc_reports, crc);
}

// 120 vectors back to back (a frame every 3 cycles), from chip 1 to chip 0 (whose thread
// SystemC runs first): the receiving chip never runs so far ahead of the sending one that it
// looks for a frame not sent yet (it synchronises before an issue past its quantum, not after).
TEST(MultiChip, LongStreamOfVectorsStaysCausal) {
  TwoChips t;
  t.n = 120;
  t.gap = 3;
  t.sender = 1;
  std::vector<std::uint64_t> recv;
  for (int i = 0; i < t.n; ++i)
    recv.push_back(t.arrival(i));
  units::SimOptions o;
  o.mode = units::Mode::kTiming;
  const auto r = run(t.program(recv), o);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  // (the report's second entry is link 0's direction from chip 1 to chip 0)
  EXPECT_EQ(r.report.at("links").as_array().at(1).as_object().at("vectors").as_uint64(), 120u);
}

// --- collectives ------------------------------------------------------------------------------

namespace {

// All-gather on `arch`: random rows per chip in, every chip's output must hold every chip's
// rows in order; no schedule error and the predicted cycles.
void check_all_gather(const arch::Arch& a, std::int64_t rows) {
  const isa::Program p = compiler::all_gather(a, rows);
  const int n = a.system.chips, lanes = a.chip.lanes();
  std::map<std::string, system::TensorValue> in;
  std::vector<std::vector<std::uint8_t>> x(static_cast<std::size_t>(n));
  std::mt19937 rng(7);
  for (int c = 0; c < n; ++c) {
    system::TensorValue v;
    v.dtype = isa::DType::kI8;
    v.shape = {static_cast<std::uint64_t>(rows), static_cast<std::uint64_t>(lanes)};
    v.bytes.resize(static_cast<std::size_t>(rows * lanes));
    for (auto& b : v.bytes)
      b = static_cast<std::uint8_t>(rng());
    x[static_cast<std::size_t>(c)] = v.bytes;
    in["x" + std::to_string(c)] = v;
  }
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const auto r = system::run(p, in, units::SimOptions{});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  ASSERT_TRUE(r.predicted.has_value());
  EXPECT_EQ(r.cycles, *r.predicted);
  for (int c = 0; c < n; ++c) {
    const auto& y = r.outputs.at("y" + std::to_string(c)).bytes;
    ASSERT_EQ(y.size(), static_cast<std::size_t>(n * rows * lanes));
    for (int j = 0; j < n; ++j)
      EXPECT_TRUE(std::equal(x[static_cast<std::size_t>(j)].begin(),
                             x[static_cast<std::size_t>(j)].end(),
                             y.begin() + static_cast<long>(j * rows * lanes)))
          << "chip " << c << ", the rows of chip " << j;
  }
  // Every link carried `rows` vectors each way.
  for (const auto& l : r.report.at("links").as_array())
    EXPECT_EQ(l.as_object().at("vectors").as_uint64(), static_cast<std::uint64_t>(rows));
}

}  // namespace

TEST(Collectives, AllGatherOnThreeTinyChips) {
  check_all_gather(arch::load("tiny", {"system.topology=fully_connected", "system.chips=3"}), 40);
}

TEST(Collectives, AllGatherOnNode8) {
  check_all_gather(arch::load("node8"), 24);
}

TEST(Collectives, AllGatherNeedsAFullyConnectedSystem) {
  try {
    compiler::all_gather(arch::load("tsp-v1"), 8);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("fully connected"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- tensor parallel (SPMD)

namespace {

// A kernel tensor's value for the simulator.
system::TensorValue value_of(const compiler::KTensor& kt, compiler::Bytes bytes) {
  system::TensorValue v;
  v.dtype = kt.dtype;
  for (auto d : kt.shape)
    v.shape.push_back(static_cast<std::uint64_t>(d));
  v.bytes = std::move(bytes);
  return v;
}

struct SplitRun {
  std::vector<compiler::Bytes> sim, split_ref, one_ref;  // whole outputs
  std::vector<compiler::KTensor> outputs;
  system::RunOutcome outcome;
  compiler::SplitKernels sk;
  std::uint64_t predicted = 0;
};

// Writes workload `name`, splits it over the first `chips` chips of `a`, simulates it with
// random inputs and gathers every output: from the simulation, from the split program's
// reference and from the single-chip reference.
SplitRun run_split(const std::string& name, const std::map<std::string, std::string>& params,
                   const arch::Arch& a, int chips, compiler::Precision prec) {
  const std::string path = testing::TempDir() + "/" +
                           testing::UnitTest::GetInstance()->current_test_info()->name() + ".onnx";
  compiler::write_workload(name, params, path);
  const compiler::Graph g = compiler::import_onnx(path);
  SplitRun out;
  out.sk = compiler::lower_split(g, a, prec, chips);
  const compiler::Schedule s = compiler::schedule_spmd(out.sk.kernels, a, path);
  out.predicted = s.cycles;
  const compiler::Kernels one = compiler::lower_with_precision(g, a, prec);
  const auto inputs = compiler::random_inputs(one, 3);
  std::vector<std::vector<compiler::Bytes>> per_chip(static_cast<std::size_t>(chips));
  std::map<std::string, system::TensorValue> bound;
  for (int c = 0; c < chips; ++c) {
    const compiler::Kernels& kc = out.sk.kernels[static_cast<std::size_t>(c)];
    for (std::size_t i = 0; i < one.inputs.size(); ++i) {
      const compiler::KTensor& full = one.tensors[static_cast<std::size_t>(one.inputs[i])];
      const compiler::KTensor& part = kc.tensors[static_cast<std::size_t>(kc.inputs[i])];
      auto bytes = compiler::shard_data(inputs[i], full.shape, isa::dtype_bytes(full.dtype),
                                        out.sk.partition.inputs[i], c, chips);
      per_chip[static_cast<std::size_t>(c)].push_back(bytes);
      bound[part.name + "@" + std::to_string(c)] = value_of(part, std::move(bytes));
    }
  }
  for (int t : one.outputs)
    out.outputs.push_back(one.tensors[static_cast<std::size_t>(t)]);
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  out.outcome = system::run(s.program, bound, o);
  const auto ref = compiler::run_reference_spmd(out.sk.kernels, per_chip);
  out.one_ref = compiler::run_reference(one, inputs);
  for (std::size_t i = 0; i < out.outputs.size(); ++i) {
    std::vector<compiler::Bytes> sim_parts, ref_parts;
    for (int c = 0; c < chips; ++c) {
      const compiler::Kernels& kc = out.sk.kernels[static_cast<std::size_t>(c)];
      const auto& tname = kc.tensors[static_cast<std::size_t>(kc.outputs[i])].name;
      auto it = out.outcome.outputs.find(tname + "@" + std::to_string(c));
      sim_parts.push_back(it == out.outcome.outputs.end() ? compiler::Bytes{} : it->second.bytes);
      ref_parts.push_back(ref[static_cast<std::size_t>(c)][i]);
    }
    const auto& sh = out.sk.partition.outputs[i];
    const int eb = isa::dtype_bytes(out.outputs[i].dtype);
    out.split_ref.push_back(compiler::assemble(ref_parts, out.outputs[i].shape, eb, sh));
    out.sim.push_back(compiler::assemble(sim_parts, out.outputs[i].shape, eb, sh));
  }
  return out;
}

void expect_clean_run(const SplitRun& r) {
  ASSERT_TRUE(r.outcome.errors.empty())
      << r.outcome.errors.size() << " errors, the first: " << r.outcome.errors[0].to_string();
  EXPECT_EQ(r.outcome.cycles, r.predicted);
  for (std::size_t i = 0; i < r.sim.size(); ++i)
    EXPECT_EQ(r.sim[i], r.split_ref[i]) << "output " << r.outputs[i].name;
}

}  // namespace

// The decoder layer split over node8 by heads and by the MLP's columns and rows, int8: every
// output equals the single-chip program's bit for bit, and each link direction carries the two
// all-reduces of one fp32 / int32 vector row: 4 byte planes each.
TEST(TensorParallel, LlamaDecodeStepInt8OnNode8MatchesOneChip) {
  const SplitRun r = run_split(
      "llama-decoder", {{"preset", "custom"}, {"dim", "256"}, {"heads", "8"}, {"ffn", "512"}},
      arch::load("node8"), 8, compiler::Precision::kInt8);
  expect_clean_run(r);
  ASSERT_EQ(r.sim.size(), 3u);
  for (std::size_t i = 0; i < r.sim.size(); ++i)
    EXPECT_EQ(r.sim[i], r.one_ref[i]) << "output " << r.outputs[i].name;
  const auto& links = r.outcome.report.at("links").as_array();
  EXPECT_EQ(links.size(), 56u);
  for (const auto& l : links) {
    EXPECT_EQ(l.as_object().at("vectors").as_uint64(), 8u);
    EXPECT_EQ(l.as_object().at("crc_errors").as_uint64(), 0u);
  }
  // The split that gives this: heads round-robin, w1/w3 by columns, w2 by rows.
  const auto& d = r.sk.partition.decisions;
  EXPECT_NE(std::find_if(d.begin(), d.end(),
                         [](const std::string& x) {
                           return x.find("'w2' [512,256]: split along axis 0 in blocks") !=
                                  std::string::npos;
                         }),
            d.end());
}

// A prefill of 16 tokens: the all-reduces have more rows than chips, so they are a
// reduce-scatter and an all-gather; still bit for bit the single chip's in int8.
TEST(TensorParallel, LlamaPrefillInt8ReduceScatterMatchesOneChip) {
  const SplitRun r = run_split("llama-decoder",
                               {{"preset", "custom"},
                                {"dim", "256"},
                                {"heads", "8"},
                                {"ffn", "512"},
                                {"tokens", "16"},
                                {"ctx", "32"}},
                               arch::load("node8"), 8, compiler::Precision::kInt8);
  expect_clean_run(r);
  for (std::size_t i = 0; i < r.sim.size(); ++i)
    EXPECT_EQ(r.sim[i], r.one_ref[i]) << "output " << r.outputs[i].name;
  // Per all-reduce and link direction: 2 rows of each piece, 4 planes, scattered and gathered.
  for (const auto& l : r.outcome.report.at("links").as_array())
    EXPECT_EQ(l.as_object().at("vectors").as_uint64(), 2u * 2u * 4u * 2u);
}

// fp16 products over 4 chips: the split program's own reference exactly; the single chip's
// within the rounding of sums taken in another order.
TEST(TensorParallel, MlpFp16OnFourChips) {
  const SplitRun r =
      run_split("mlp", {{"batch", "8"}, {"sizes", "256,512,256"}},
                arch::load("tsp-v1", {"system.topology=fully_connected", "system.chips=4"}), 4,
                compiler::Precision::kModel);
  expect_clean_run(r);
  ASSERT_EQ(r.sim.size(), 1u);
  const auto& a = r.split_ref[0];
  const auto& b = r.one_ref[0];
  ASSERT_EQ(a.size(), b.size());
  double most = 0;
  for (std::size_t i = 0; i + 1 < a.size(); i += 2)
    most = std::max(
        most,
        (double)std::fabs(func::fp16_to_fp32(static_cast<std::uint16_t>(a[i] | (a[i + 1] << 8))) -
                          func::fp16_to_fp32(static_cast<std::uint16_t>(b[i] | (b[i + 1] << 8)))));
  EXPECT_LT(most, 1e-2);
}

TEST(TensorParallel, ShardsRoundTrip) {
  std::vector<std::uint8_t> full(4 * 6 * 2);
  for (std::size_t i = 0; i < full.size(); ++i)
    full[i] = static_cast<std::uint8_t>(i);
  for (const compiler::Shard s : {compiler::Shard{compiler::Shard::Kind::kSplit, 0, true},
                                  compiler::Shard{compiler::Shard::Kind::kSplit, 1, false},
                                  compiler::Shard{compiler::Shard::Kind::kSplit, 1, true}}) {
    std::vector<std::vector<std::uint8_t>> parts;
    for (int c = 0; c < 2; ++c)
      parts.push_back(compiler::shard_data(full, {4, 6}, 2, s, c, 2));
    EXPECT_EQ(compiler::assemble(parts, {4, 6}, 2, s), full) << s.to_string();
  }
  // Round-robin along axis 0: chip 1 holds rows 1 and 3.
  const auto p = compiler::shard_data(
      full, {4, 6}, 2, compiler::Shard{compiler::Shard::Kind::kSplit, 0, true}, 1, 2);
  ASSERT_EQ(p.size(), 24u);
  EXPECT_EQ(p[0], 12);
  EXPECT_EQ(p[12], 36);
}

TEST(TensorParallelErrors, HeadsThatDoNotDivide) {
  const std::string path = testing::TempDir() + "/llama4.onnx";
  compiler::write_workload("llama-decoder", {}, path);  // 4 heads
  try {
    compiler::lower_split(compiler::import_onnx(path), arch::load("node8"),
                          compiler::Precision::kModel, 8);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'wq' [4,256,64] have 4 along their leading axis"),
              std::string::npos)
        << e.what();
  }
}

// Chips 0, 1, 2 of node8 do not reach chip c + 1 on one port: the common timetable cannot serve
// them, and the error says which chips and ports.
TEST(TensorParallelErrors, PortsThatDifferBetweenChips) {
  const std::string path = testing::TempDir() + "/mlp3.onnx";
  compiler::write_workload("mlp", {{"sizes", "96,192,96"}}, path);
  const arch::Arch a = arch::load("node8");
  const auto sk =
      compiler::lower_split(compiler::import_onnx(path), a, compiler::Precision::kModel, 3);
  try {
    compiler::schedule_spmd(sk.kernels, a, path);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("chip 2 reaches chip 0 on port 5"), std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------- pipeline

// Four decoder layers on four chips, a layer each: the stages are cut between layers (one value
// crosses), each stage's program starts two cycles before its input's first frame lands, and
// the outputs equal the single-chip program's bit for bit.
TEST(Pipeline, FourLayersOnFourChipsMatchOneChip) {
  const std::string path = testing::TempDir() + "/pipeline4.onnx";
  compiler::write_workload("llama-decoder", {{"layers", "4"}}, path);
  const compiler::Graph g = compiler::import_onnx(path);
  const arch::Arch a = arch::load("node8");
  const compiler::PipelineProgram pp =
      compiler::compile_pipeline(g, a, 4, 1, compiler::Precision::kModel);
  ASSERT_EQ(pp.stages.size(), 4u);
  const func::LinkTiming lt(a);
  for (std::size_t s = 0; s < 4; ++s) {
    EXPECT_EQ(pp.stages[s].nodes, g.nodes.size() / 4) << "stage " << s;
    if (s == 0) continue;
    ASSERT_EQ(pp.stages[s].receives.size(), 1u);
    EXPECT_EQ(g.values[static_cast<std::size_t>(pp.stages[s].receives[0])].name,
              "l" + std::to_string(s - 1) + ".y");
    // y is [1, 256] fp16: one vector row, two byte planes, two frames.
    ASSERT_EQ(pp.schedules[s - 1].sends.size(), 1u);
    ASSERT_EQ(pp.schedules[s - 1].sends[0].size(), 2u);
    EXPECT_EQ(pp.offset[s] + 2, pp.offset[s - 1] + lt.arrival(pp.schedules[s - 1].sends[0][0]));
  }
  const compiler::Kernels one = compiler::lower(g, a);
  const auto inputs = compiler::random_inputs(one, 5);
  std::map<std::string, std::size_t> input_of;
  for (std::size_t i = 0; i < one.inputs.size(); ++i)
    input_of[one.tensors[static_cast<std::size_t>(one.inputs[i])].name] = i;
  std::map<std::string, system::TensorValue> bound;
  for (std::size_t s = 0; s < 4; ++s) {
    const compiler::Kernels& k = pp.kernels[s].kernels[0];
    for (int t : k.inputs) {
      const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(t)];
      bound[kt.name + "@" + std::to_string(s)] = value_of(kt, inputs[input_of.at(kt.name)]);
    }
  }
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  const system::RunOutcome r = system::run(pp.program, bound, o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, *pp.program.predicted_cycles);
  const auto ref = compiler::run_reference(one, inputs);
  ASSERT_EQ(one.outputs.size(), 9u);
  // y comes from the last chip; layer l's new K and V from chip l.
  for (std::size_t i = 0; i < one.outputs.size(); ++i) {
    const std::string name = one.tensors[static_cast<std::size_t>(one.outputs[i])].name;
    const std::string chip = name == "y" ? "3" : name.substr(1, 1);
    auto it = r.outputs.find(name + "@" + chip);
    ASSERT_NE(it, r.outputs.end()) << name;
    EXPECT_EQ(it->second.bytes, ref[i]) << name;
  }
  // Each boundary's link carried the two frames of y, the others nothing.
  std::uint64_t vectors = 0;
  for (const auto& l : r.report.at("links").as_array())
    vectors += l.as_object().at("vectors").as_uint64();
  EXPECT_EQ(vectors, 6u);
}

TEST(PipelineErrors, MoreStagesThanNodes) {
  const std::string path = testing::TempDir() + "/pipeline_mlp.onnx";
  compiler::write_workload("mlp", {}, path);  // two layers, 5 nodes
  try {
    compiler::compile_pipeline(compiler::import_onnx(path), arch::load("node8"), 8, 1,
                               compiler::Precision::kModel);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("8 stages for 5 nodes"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- time base

// The realignment: a deskew holds its queue until the next epoch boundary and makes the chip's
// clock coincide with the aligned counter there; a chip whose drift already took it past that
// boundary slips a whole epoch.
TEST(TimeBase, DeskewRealignsAtTheNextEpoch) {
  units::ChipClock c;
  c.ppm = 100;
  EXPECT_DOUBLE_EQ(c.skew(10000), 1.0);
  EXPECT_EQ(c.deskew(10000, 256), 10240u);  // epoch 40
  EXPECT_EQ(c.s0, 0.0);
  EXPECT_DOUBLE_EQ(c.skew(20240), 1.0);  // drifts again from the boundary
  units::ChipClock fast;
  fast.ppm = 1e5;  // 10 %: 1000 cycles in, 100 ahead, past the boundary at 1024
  EXPECT_EQ(fast.deskew(1000, 256), 1024u);
  EXPECT_EQ(fast.s0, 256.0);
  EXPECT_EQ(fast.deskews, 1u);
}

namespace {

// Two tiny chips; a vector every 80 epochs (20480 cycles), each received at its arrival cycle
// on the time base. With clocks that drift, the receives miss unless deskews realign the chips
// before each transfer.
TwoChips drifting(bool deskew) {
  TwoChips t;
  t.n = 6;
  t.gap = 20480;
  if (deskew)
    for (int i = 1; i < t.n; ++i)
      t.deskews.push_back(static_cast<std::uint64_t>(i * t.gap - 20));
  return t;
}

std::vector<std::uint64_t> arrivals(const TwoChips& t) {
  std::vector<std::uint64_t> r;
  for (int i = 0; i < t.n; ++i)
    r.push_back(t.arrival(i));
  return r;
}

double drift_of(const system::RunOutcome& r, int chip) {
  return r.report.at("chips")
      .as_array()[static_cast<std::size_t>(chip)]
      .as_object()
      .at("clock")
      .as_object()
      .at("drift_ppm")
      .as_double();
}

}  // namespace

TEST(TimeBase, DriftWithoutDeskewMissesTheFrames) {
  const TwoChips t = drifting(false);
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  o.clock_drift_ppm = 1000;
  o.drift_seed = 4;
  const auto r = run(t.program(arrivals(t)), o);
  const double d0 = drift_of(r, 0), d1 = drift_of(r, 1);
  EXPECT_LE(std::fabs(d0), 1000.0);
  EXPECT_LE(std::fabs(d1), 1000.0);
  // Vector i is sent in cycle 6 + i gap of chip 0 and received in its arrival cycle of chip 1:
  // the two clocks are (d1 - d0) ppm apart by then, and a receive half a cycle off misses.
  int missed = 0;
  for (int i = 0; i < t.n; ++i) {
    const double at = static_cast<double>(t.arrival(i));
    const double sent = 6.0 + i * t.gap;
    if (std::fabs(at * d1 * 1e-6 - sent * d0 * 1e-6) >= 0.5) ++missed;
  }
  ASSERT_GT(missed, 0) << "the seed gives clocks too close to drift apart: " << d0 << ", " << d1;
  EXPECT_FALSE(r.errors.empty());
  bool named = false;
  for (const auto& e : r.errors)
    named = named || e.message.find("clocks drift") != std::string::npos;
  EXPECT_TRUE(named) << r.errors[0].to_string();
}

TEST(TimeBase, DeskewKeepsDriftingChipsAligned) {
  const TwoChips t = drifting(true);
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  o.clock_drift_ppm = 1000;
  o.drift_seed = 4;
  const auto r = run(t.program(arrivals(t)), o);
  expect_delivered(r, t.n);
  const auto& c1 = r.report.at("chips").as_array()[1].as_object().at("clock").as_object();
  EXPECT_EQ(c1.at("deskews").as_uint64(), 5u);
  EXPECT_LT(c1.at("max_skew_cycles").as_double(), 0.5);
}

TEST(TimeBase, WorkDuringTheDeskewHoldIsAnError) {
  TwoChips t = drifting(true);
  t.deskews = {20480 + 3};  // holds c2c.l0 until 20736, past the send at 20485
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  const auto r = run(t.program(arrivals(t)), o);
  bool held = false;
  for (const auto& e : r.errors)
    held = held ||
           e.message.find("while a deskew holds the queue until cycle 20736") != std::string::npos;
  EXPECT_TRUE(held) << (r.errors.empty() ? "no errors" : r.errors[0].to_string());
}

// ---------------------------------------------------------------- collectives as graph nodes

// The collective nodes on node8, every chip with its own random inputs: all-reduce of fewer rows
// than chips (gather, then a tree) and of more (reduce-scatter, then all-gather), in int32 so the
// sums are exact whatever their order; all-gather along the leading axis; broadcast from chip 3.
// Every chip's outputs are checked against sums and copies written out here, and the cycles
// against the prediction.
TEST(Collectives, GraphNodesOnNode8) {
  const arch::Arch a = arch::load("node8");
  const int n = a.system.chips;
  compiler::Graph g;
  g.source = "collectives";
  auto value = [&](const std::string& name, isa::DType dt, std::vector<std::int64_t> shape) {
    compiler::Value v;
    v.name = name;
    v.dtype = dt;
    v.shape = std::move(shape);
    g.values.push_back(v);
    return static_cast<int>(g.values.size()) - 1;
  };
  auto node = [&](const std::string& op, int in, int out, std::int64_t root = -1) {
    compiler::Node nd;
    nd.name = g.values[static_cast<std::size_t>(out)].name;
    nd.op = op;
    nd.inputs = {in};
    nd.outputs = {out};
    if (root >= 0) {
      compiler::Attr at;
      at.i = root;
      nd.attrs["root"] = at;
    }
    g.nodes.push_back(nd);
  };
  const int va = value("a", isa::DType::kI32, {3, 320}),
            ra = value("ra", isa::DType::kI32, {3, 320});
  const int vb = value("b", isa::DType::kI32, {16, 40}),
            rb = value("rb", isa::DType::kI32, {16, 40});
  const int vc = value("c", isa::DType::kFp16, {2, 64}),
            gc = value("gc", isa::DType::kFp16, {16, 64});
  const int vd = value("d", isa::DType::kFp32, {5, 100}),
            bd = value("bd", isa::DType::kFp32, {5, 100});
  node(compiler::kAllReduce, va, ra);
  node(compiler::kAllReduce, vb, rb);
  node(compiler::kAllGather, vc, gc);
  node(compiler::kBroadcast, vd, bd, 3);
  g.inputs = {va, vb, vc, vd};
  g.outputs = {ra, rb, gc, bd};
  compiler::LowerOptions lo;
  lo.chips = n;
  const compiler::Kernels k = compiler::lower(g, a, lo);
  const std::vector<compiler::Kernels> ks(static_cast<std::size_t>(n), k);
  const compiler::Schedule s = compiler::schedule_spmd(ks, a, "collectives");
  std::vector<std::vector<compiler::Bytes>> in;
  std::map<std::string, system::TensorValue> bound;
  for (int c = 0; c < n; ++c) {
    in.push_back(compiler::random_inputs(k, static_cast<std::uint32_t>(100 + c)));
    for (std::size_t i = 0; i < k.inputs.size(); ++i) {
      const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(k.inputs[i])];
      bound[kt.name + "@" + std::to_string(c)] = value_of(kt, in.back()[i]);
    }
  }
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  units::SimOptions o;
  o.on_error = units::OnError::kReport;
  const system::RunOutcome r = system::run(s.program, bound, o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, s.cycles);
  // The expected values, written out.
  auto sum32 = [&](std::size_t input) {
    compiler::Bytes out(in[0][input].size(), 0);
    for (std::size_t e = 0; e < out.size(); e += 4) {
      std::uint32_t acc = 0;
      for (int c = 0; c < n; ++c) {
        std::uint32_t v;
        std::memcpy(&v, &in[static_cast<std::size_t>(c)][input][e], 4);
        acc += v;  // int32 with wrap-around, the VXM's mod add
      }
      std::memcpy(&out[e], &acc, 4);
    }
    return out;
  };
  compiler::Bytes gathered;
  for (int c = 0; c < n; ++c)
    gathered.insert(gathered.end(), in[static_cast<std::size_t>(c)][2].begin(),
                    in[static_cast<std::size_t>(c)][2].end());
  const std::vector<compiler::Bytes> want = {sum32(0), sum32(1), gathered, in[3][3]};
  const auto ref = compiler::run_reference_spmd(ks, in);
  for (int c = 0; c < n; ++c)
    for (std::size_t i = 0; i < want.size(); ++i) {
      const std::string name = g.values[static_cast<std::size_t>(g.outputs[i])].name;
      auto it = r.outputs.find(name + "@" + std::to_string(c));
      ASSERT_NE(it, r.outputs.end()) << name << " on chip " << c;
      EXPECT_EQ(it->second.bytes, want[i]) << name << " on chip " << c;
      EXPECT_EQ(ref[static_cast<std::size_t>(c)][i], want[i]) << name << " (reference) chip " << c;
    }
}
