// The MXM's parameters and data paths in compiled programs: each parameter changes the schedule,
// and the program still runs with the simulator's own checks of the plane, its MEM slices and
// banks (values against an independent fp16 product in doubles, simulated == predicted cycles).
// SystemC elaborates once per process, so every test case makes at most one system::run call and
// CTest runs each case in a process of its own (gtest_discover_tests).
#include "arch/queues.h"
#include "compiler_harness.h"

using namespace lpu;
using namespace lpu::test;  // the harness and the graph builder

namespace {

// a [m, k] fp16 input times constant [k, n] fp16 weights (uniform in [-1, 1], seed 22)
compiler::Graph fp16_matmul(int m, int k, int n) {
  const auto bv = uniform_fp16(static_cast<std::size_t>(k * n), -1.0f, 1.0f, 22);
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {m, k});
  const int b = gb.constant("b", DType::kFp16, {k, n}, f16_bytes(bv));
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp16, {m, n}));
  return gb.g;
}

// fp16 [m, k] x [k, n] products on tsp-v1 with one parameter changed; returns the predicted cycles
// after checking the simulation against them and the outputs against the reference.
std::uint64_t fp16_matmul_with(const std::vector<std::string>& sets, int m, int k, int n,
                               const std::string& want_mnemonic = "") {
  const auto av = uniform_fp16(static_cast<std::size_t>(m * k), -1.0f, 1.0f, 21);
  const auto bv = uniform_fp16(static_cast<std::size_t>(k * n), -1.0f, 1.0f, 22);
  const arch::Arch arch = arch::load("tsp-v1", sets);
  const Compiled cc = compile(fp16_matmul(m, k, n), arch);
  if (!want_mnemonic.empty()) {
    bool found = false;
    for (const auto& cp : cc.s.program.chips)
      for (const auto& q : cp.queues)
        for (const auto& e : q.entries)
          found = found || e.instr.info().mnemonic == want_mnemonic;
    EXPECT_TRUE(found) << "no '" << want_mnemonic << "' in the program";
  }
  const auto out = simulate(cc, {f16_bytes(av)});
  std::vector<double> want, mag;
  matmul_double(av, bv, m, k, n, want, mag);
  std::vector<double> scale(want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    scale[i] = std::fabs(want[i]);
  expect_close(f16_values(out.at(0)), want, scale, 1e-3, 1e-5);
  return cc.s.cycles;
}

std::uint64_t predicted(const std::vector<std::string>& sets, int m, int k, int n) {
  return compile(fp16_matmul(m, k, n), arch::load("tsp-v1", sets)).s.cycles;
}

TEST(CompilerMxm, LongInstallsAreScheduled) {
  const std::uint64_t base = predicted({}, 64, 640, 640);
  const std::uint64_t slow = fp16_matmul_with({"chip.mxm.install_cycles=5000"}, 64, 640, 640);
  EXPECT_GT(slow, base + 5000);
}

// fp16 products come one every 4 cycles and the epilogue's ALUs take a row a cycle: the sums go
// through MEM; at fp16_rate 1 they go straight into the cast to fp16.
TEST(CompilerMxm, Fp16SumsGoThroughMemUnlessAtTheFullRate) {
  const compiler::Graph g = fp16_matmul(200, 320, 320);
  const SumsPath quarter = sums_path(compile(g));
  EXPECT_EQ(quarter.to_vxm, 0);
  EXPECT_GT(quarter.to_mem, 0);
  const arch::Arch full_rate = arch::load("tsp-v1", {"chip.mxm.fp16_rate=1"});
  const SumsPath full = sums_path(compile(g, full_rate), full_rate);
  EXPECT_GT(full.to_vxm, 0);
  EXPECT_EQ(full.to_mem, 0);
  fp16_matmul_with({"chip.mxm.fp16_rate=1"}, 200, 320, 320);
}

// Two column tiles of the same rows (N = 640): each row block's activations are read once and
// taken by both planes of a side, the far one as many cycles after the near one as the planes
// are apart; the values still match.
TEST(CompilerMxm, ColumnTilesOfTheSameRowsShareOneRead) {
  const Compiled cc = compile(fp16_matmul(200, 320, 640));
  const auto queues = arch::chip_queues(tsp().chip);
  // Per MEM read (queue, entry): the ABCs that take it, with their cycles and positions.
  std::map<std::pair<int, std::uint32_t>, std::vector<std::pair<std::uint64_t, int>>> takers;
  for (const auto& q : cc.s.program.chips.at(0).queues) {
    if (queues.at(q.queue).unit != arch::QueueUnit::kMxmAct) continue;
    for (const auto& e : q.entries)
      for (const auto& r : e.expect)
        takers[{r.queue, r.index}].push_back({e.cycle, queues.at(q.queue).position});
  }
  int shared = 0;
  for (const auto& [read, abcs] : takers) {
    if (abcs.size() < 2) continue;
    ASSERT_EQ(abcs.size(), 2u);
    ++shared;
    const auto [c0, p0] = abcs[0];
    const auto [c1, p1] = abcs[1];
    EXPECT_EQ(std::llabs(static_cast<long long>(c1) - static_cast<long long>(c0)),
              std::abs(p1 - p0) * tsp().chip.streams.hop_cycles);
  }
  EXPECT_GT(shared, 0);
  fp16_matmul_with({}, 200, 320, 640);
}

TEST(CompilerMxm, NoStagingBufferStreamsWeightsIntoTheArray) {
  fp16_matmul_with({"chip.mxm.weight_buffers=1"}, 40, 640, 400, "iw.str");
}

TEST(CompilerMxm, ThreeBuffersStageTwoSetsAhead) {
  fp16_matmul_with({"chip.mxm.weight_buffers=3"}, 40, 960, 400, "lw");
}

TEST(CompilerMxm, ShortFp16WeightsClearTheBufferFirst) {
  // K = 100 of 320 rows: clearing (20 cycles) and loading 13 steps beats 40 steps of loads.
  fp16_matmul_with({}, 40, 100, 48, "clw");
}

TEST(CompilerMxm, Fp16RateSetsTheStreamingTime) {
  // 320 fp16 vectors, a block of 80 through each of the 4 planes: one every 4 cycles at 0.25,
  // every cycle at 1.
  const std::uint64_t quarter = predicted({}, 320, 320, 320);
  const std::uint64_t full = fp16_matmul_with({"chip.mxm.fp16_rate=1"}, 320, 320, 320);
  EXPECT_GE(quarter, full + 3 * 79);
}

// At fp16_rate 0.25 a plane takes an activation every 4 cycles: their MEM reads are separate
// instructions at consecutive addresses, 4 cycles apart, not a repeat (which would hold the
// slice's queue for all the cycles between); the program still simulates to the predicted cycle
// with the right values.
TEST(CompilerMxm, ActivationsEveryFourCyclesAreSeparateReads) {
  const auto av = uniform_fp16(320 * 320, -1.0f, 1.0f, 31);
  const auto bv = uniform_fp16(320 * 320, -1.0f, 1.0f, 32);
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {320, 320});
  const int b = gb.constant("b", DType::kFp16, {320, 320}, f16_bytes(bv));
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp16, {320, 320}));
  const auto queues = arch::chip_queues(tsp().chip);
  // (MEM reads 4 cycles apart at consecutive addresses, MEM repeats with a stride)
  auto count = [&](const Compiled& c) {
    std::pair<int, int> n{0, 0};
    for (const auto& cp : c.s.program.chips)
      for (const auto& q : cp.queues) {
        if (queues.at(q.queue).unit != arch::QueueUnit::kMem) continue;
        for (std::size_t i = 0; i + 1 < q.entries.size(); ++i) {
          const auto& x = q.entries[i];
          const auto& y = q.entries[i + 1];
          const std::string mx = x.instr.info().mnemonic, my = y.instr.info().mnemonic;
          if (my == "repeat" && y.instr.arg[1] > 1) ++n.second;
          if (mx == "read" && my == "read" && y.cycle == x.cycle + 4 &&
              y.instr.arg[0] == x.instr.arg[0] + 1 && y.instr.arg[1] == x.instr.arg[1])
            ++n.first;
        }
      }
    return n;
  };
  const Compiled cc = compile(gb.g);
  const auto [spaced, strided_repeats] = count(cc);
  EXPECT_EQ(strided_repeats, 0);
  EXPECT_GE(spaced, 4 * 79);  // 80 rows a plane: 79 steps of 4 cycles each, on each plane
  // Queues preloaded with the whole program keep their instructions few: repeats.
  const auto preloaded = count(compile(gb.g, arch::load("tsp-v1", {"chip.icu.preloaded=true"})));
  EXPECT_EQ(preloaded.first, 0);
  EXPECT_GE(preloaded.second, 4);
  const auto out = simulate(cc, {f16_bytes(av)});
  std::vector<double> want, mag;
  matmul_double(av, bv, 320, 320, 320, want, mag);
  std::vector<double> scale(want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    scale[i] = std::fabs(want[i]);
  expect_close(f16_values(out.at(0)), want, scale, 1e-3, 1e-5);
}

// Interleaved banks: a spaced run's accesses go to the banks in turn, each reserved in its own
// cycle (runs of 12 activation reads every 4 cycles, fewer than the 16 banks, so some banks get
// none); the simulator checks every bank's reads and writes against the prediction.
TEST(CompilerMxm, SpacedRunsOnInterleavedBanks) {
  fp16_matmul_with({"chip.mem.bank_mapping=interleaved", "chip.mem.banks=16"}, 12, 320, 48);
}

}  // namespace
