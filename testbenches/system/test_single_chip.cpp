// Whole programs on one chip through the SystemC model: values and cycles, timing mode, and one
// program per schedule-error class with its location. SystemC elaborates once per process, so
// CTest runs every test case in a process of its own (gtest_discover_tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "arch/queues.h"
#include "func/numerics.h"
#include "isa/asm_text.h"
#include "system/run.h"

using namespace lpu;

namespace {

const std::string kHead = ".lpuasm 1\n.arch tiny\n";

system::RunOutcome run_text(const std::string& text,
                            const std::map<std::string, system::TensorValue>& in = {},
                            units::Mode mode = units::Mode::kFunctional,
                            units::OnError on_error = units::OnError::kStop) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const isa::Program p = isa::parse_lpuasm(text, "test.lpuasm");
  units::SimOptions o;
  o.mode = mode;
  o.on_error = on_error;
  return system::run(p, in, o);
}

system::TensorValue i8(std::vector<std::uint64_t> shape, const std::vector<std::int8_t>& v) {
  system::TensorValue t;
  t.dtype = isa::DType::kI8;
  t.shape = std::move(shape);
  for (auto x : v)
    t.bytes.push_back(static_cast<std::uint8_t>(x));
  return t;
}

// y = sat(x + x), two rows, on tiny: MEM w0 -> VXM -> MEM e0, with the completion cycle of every
// instruction stated in the program (worked out by hand from the tsp-v1 latency table:
// read d_func 2, VXM add d_skew 1 d_func 2, write d_skew 1 d_func 1; tiny has 2 superlanes, so an
// instruction completes one cycle after its superlane-0 result).
const std::string kChain =
    kHead +
    ".tensor x role=input chip=0 dtype=i8 shape=[2,32] layout=rows at=mem.w0:0x0000+2\n"
    ".tensor y role=output chip=0 dtype=i8 shape=[2,32] layout=rows at=mem.e0:0x0010+2\n"
    ".predicted 10\n"
    ".queue mem.w0\n"
    "  @0 read 0x0000, s0e [done=3]\n"
    "  @1 repeat 1, 1 [done=4]\n"
    ".queue vxm.alu0\n"
    "  @2 add.i8.sat s0e, s0e, s1e [done=6 expect=mem.w0#0]\n"
    "  @3 repeat 1, 1 [done=7 expect=mem.w0#1]\n"
    ".queue mem.e0\n"
    "  @5 write 0x0010, s1e [done=8 expect=vxm.alu0#0]\n"
    "  @6 repeat 1, 1 [done=9 expect=vxm.alu0#1]\n";

std::vector<std::int8_t> ramp(int n, int scale) {
  std::vector<std::int8_t> v;
  for (int i = 0; i < n; ++i)
    v.push_back(static_cast<std::int8_t>((i * scale) % 256 - 128));
  return v;
}

}  // namespace

TEST(SingleChip, MemVxmMemChainValuesAndCycles) {
  const auto x = ramp(64, 5);
  const auto r = run_text(kChain, {{"x", i8({2, 32}, x)}});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, 10u);
  EXPECT_EQ(r.predicted, 10u);
  EXPECT_EQ(r.instructions, 6u);
  const auto& y = r.outputs.at("y");
  ASSERT_EQ(y.bytes.size(), 64u);
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(static_cast<std::int8_t>(y.bytes[i]), std::clamp(2 * x[i], -128, 127)) << i;
  EXPECT_EQ(r.report.at("cycles").as_uint64(), 10u);
  EXPECT_TRUE(r.report.at("cycles_match_prediction").as_bool());
  // Energy by hand from the preset's chip.energy_pj: 2 reads (320 pJ), 2 adds (60), 2 writes
  // (340) and 4 stream hops (6 pJ: w0 -> VXM and VXM -> e0, one position each, per row).
  const auto& e = r.report.at("energy").as_object();
  EXPECT_EQ(e.at("stream_hops").as_uint64(), 4u);
  EXPECT_NEAR(e.at("total_uj").as_double(), (2 * 320 + 2 * 60 + 2 * 340 + 4 * 6) * 1e-6, 1e-12);
  EXPECT_NEAR(e.at("by_unit_uj").at("mem").as_double(), (2 * 320 + 2 * 340) * 1e-6, 1e-12);
  EXPECT_NEAR(e.at("by_unit_uj").at("vxm").as_double(), 2 * 60 * 1e-6, 1e-12);
  EXPECT_EQ(e.at("by_class").at("mem_read").at("issues").as_uint64(), 2u);
}

TEST(SingleChip, TimingModeGivesTheSameCycles) {
  const auto r = run_text(kChain, {{"x", i8({2, 32}, ramp(64, 5))}}, units::Mode::kTiming);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, 10u);
  EXPECT_EQ(r.instructions, 6u);
}

TEST(ScheduleErrors, ReadOfASlotNobodyWrote) {
  std::string t = kChain;
  t.replace(t.find("@5 write"), 8, "@6 write");
  t.replace(t.find("@6 repeat 1, 1 [done=9"), 22, "@7 repeat 1, 1 [done=10");
  const auto r = run_text(t, {{"x", i8({2, 32}, ramp(64, 5))}});
  ASSERT_EQ(r.errors.size(), 1u);
  const auto& e = r.errors[0];
  EXPECT_EQ(e.unit, "MEM");
  EXPECT_EQ(e.queue, "mem.e0");
  EXPECT_EQ(e.instruction, 0);
  EXPECT_EQ(e.cycle, 7u);
  EXPECT_EQ(e.stream, "s1e");
  EXPECT_EQ(e.position, 7);
  EXPECT_NE(e.message.find("finds the value of vxm.alu0#1"), std::string::npos) << e.message;
  EXPECT_TRUE(r.stopped);
}

// y = x + x over four rows, every expectation naming the producer's repetition (@r): consumer
// repetition r reads the producer's repetition r.
std::string shifted_chain(bool shift, const std::string& rel) {
  // Shifted: the read starts a cycle earlier and repeats once more, the add and the writes run a
  // cycle later. Every cycle and producer instruction still lines up, but repetition r of the add
  // now finds repetition r + 1 of the read: row r + 1.
  const std::string read = shift ? "  @0 read 0x0000, s0e\n  @1 repeat 4, 1\n"
                                 : "  @1 read 0x0000, s0e\n  @2 repeat 3, 1\n";
  const int w = 6;
  return kHead +
         ".tensor x role=input chip=0 dtype=i8 shape=[5,32] layout=rows at=mem.w0:0x0000+5\n"
         ".tensor y role=output chip=0 dtype=i8 shape=[4,32] layout=rows at=mem.e0:0x0010+4\n"
         ".queue mem.w0\n" +
         read + ".queue vxm.alu0\n  @3 add.i8.sat s0e, s0e, s1e [expect=mem.w0#0" + rel +
         ",mem.w0#1" + rel + "]\n  @4 repeat 3, 1 [expect=mem.w0#0" + rel + ",mem.w0#1" + rel +
         "]\n.queue mem.e0\n  @" + std::to_string(w) + " write 0x0010, s1e [expect=vxm.alu0#0" +
         rel + ",vxm.alu0#1" + rel + "]\n  @" + std::to_string(w + 1) +
         " repeat 3, 1 [expect=vxm.alu0#0" + rel + ",vxm.alu0#1" + rel + "]\n";
}

// (Each case runs one program: SystemC elaborates once per process.)
std::vector<int> doubled_rows(const std::vector<std::int8_t>& x, int first) {
  std::vector<int> out;
  for (int i = 0; i < 4 * 32; ++i)
    out.push_back(std::clamp(2 * x[static_cast<std::size_t>(first * 32 + i)], -128, 127));
  return out;
}
std::vector<int> y_of(const system::RunOutcome& r) {
  std::vector<int> out;
  for (auto b : r.outputs.at("y").bytes)
    out.push_back(static_cast<std::int8_t>(b));
  return out;
}

TEST(ScheduleErrors, RepetitionUnshiftedIsRight) {
  const auto x = ramp(5 * 32, 3);
  const auto r = run_text(shifted_chain(false, "@r"), {{"x", i8({5, 32}, x)}});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(y_of(r), doubled_rows(x, 0));
}

TEST(ScheduleErrors, RepetitionShiftedWithoutRelationGoesUnseen) {
  // Expectations that name no repetition accept row r + 1: wrong values, no error.
  const auto x = ramp(5 * 32, 3);
  const auto r = run_text(shifted_chain(true, ""), {{"x", i8({5, 32}, x)}});
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(y_of(r), doubled_rows(x, 1));
}

void expect_repetition_error(units::Mode mode) {
  const auto r = run_text(shifted_chain(true, "@r"), {{"x", i8({5, 32}, ramp(5 * 32, 3))}}, mode);
  ASSERT_EQ(r.errors.size(), 1u);
  const auto& e = r.errors[0];
  EXPECT_EQ(e.unit, "VXM");
  EXPECT_EQ(e.queue, "vxm.alu0");
  EXPECT_EQ(e.instruction, 0);
  EXPECT_EQ(e.repetition, 0u);
  EXPECT_EQ(e.cycle, 4u);
  EXPECT_EQ(e.stream, "s0e");
  EXPECT_EQ(e.message,
            "finds repetition 1 of mem.w0#1 (written at position 5 in cycle 3), but repetition 0 "
            "of this instruction expects its repetition 0");
}
TEST(ScheduleErrors, RepetitionShiftedIsAnError) {
  expect_repetition_error(units::Mode::kFunctional);
}
TEST(ScheduleErrors, RepetitionShiftedIsAnErrorInTimingMode) {
  expect_repetition_error(units::Mode::kTiming);
}

TEST(ScheduleErrors, ReadOfNothing) {
  const auto r = run_text(kHead + ".queue mem.e0\n  @5 write 0x0010, s1e\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].cycle, 6u);
  EXPECT_EQ(r.errors[0].message, "reads a stream slot nobody wrote");
}

TEST(ScheduleErrors, OverwritingDownstreamIsNoCollision) {
  // mem.w0 and mem.w1 both put a vector on s0e so that both values are at position 5 in cycle 2.
  const auto r = run_text(kHead +
                              ".queue mem.w1\n  @1 read 0x0000, s0e\n"
                              ".queue mem.w0\n  @2 read 0x0000, s0e\n"
                              ".queue vxm.alu0\n  @4 mov.i8 s0e, s1e\n"
                              ".queue mem.e0\n  @7 write 0x0000, s1e\n",
                          {}, units::Mode::kFunctional, units::OnError::kReport);
  // Different positions and cycles on one diagonal are not a collision; the VXM reads the nearer
  // one.
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
}

TEST(ScheduleErrors, TwoWritersOfOneSlotCollide) {
  const auto c = run_text(kHead +
                          ".queue vxm.alu0\n  @2 mov.i8 s0e, s1e\n"
                          ".queue vxm.alu1\n  @2 mov.i8 s0e, s1e\n"
                          ".queue mem.w0\n  @0 read 0x0000, s0e\n"
                          ".queue mem.e0\n  @5 write 0x0000, s1e\n");
  ASSERT_FALSE(c.errors.empty());
  EXPECT_EQ(c.errors[0].unit, "VXM");
  EXPECT_NE(c.errors[0].message.find("also writes in cycle 5"), std::string::npos)
      << c.errors[0].message;
}

TEST(ScheduleErrors, ReadAndWriteOfOneBankInOneCycle) {
  // w1's vector reaches w0 in cycle 3; the write (d_skew 1) dispatched at 2 and the read (d_skew 0)
  // dispatched at 3 both access the array in cycle 3, both in bank 0.
  const auto r = run_text(kHead +
                              ".queue mem.w1\n  @0 read 0x0000, s0e\n"
                              ".queue mem.w0\n  @2 write 0x0005, s0e\n  @3 read 0x0006, s1e\n",
                          {}, units::Mode::kFunctional, units::OnError::kReport);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].queue, "mem.w0");
  EXPECT_EQ(r.errors[0].instruction, 1);
  EXPECT_EQ(r.errors[0].cycle, 3u);
  EXPECT_EQ(r.errors[0].message, "a read and a write of bank 0 in one cycle");
}

TEST(ScheduleErrors, AddressBeyondTheSliceByRepetition) {
  const auto r = run_text(kHead + ".queue mem.w0\n  @0 read 0x00fe, s0e\n  @1 repeat 2, 1\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].instruction, 1);
  EXPECT_EQ(r.errors[0].repetition, 2u);
  EXPECT_NE(r.errors[0].message.find("address 256"), std::string::npos);
}

TEST(ScheduleErrors, PredictedCompletionDiffers) {
  std::string t = kChain;
  t.replace(t.find("[done=6 expect"), 7, "[done=5");
  const auto r = run_text(t, {{"x", i8({2, 32}, ramp(64, 1))}});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].queue, "vxm.alu0");
  EXPECT_EQ(r.errors[0].message, "completes in cycle 6 but the program predicts cycle 5");
}

TEST(ScheduleErrors, SyncWithoutNotify) {
  const auto a = run_text(kHead + ".queue mem.w0\n  @0 sync\n  @50 read 0x0000, s0e\n");
  ASSERT_EQ(a.errors.size(), 1u);
  EXPECT_NE(a.errors[0].message.find("no notify has released it"), std::string::npos);
}

TEST(ScheduleErrors, NotifyTooLate) {
  // notify at 10 releases at 10 + 35 = 45: a dispatch at 40 is too early, at 45 is fine.
  const auto b = run_text(
      kHead + ".queue mem.w0\n  @0 sync\n  @40 read 0x0000, s0e\n.queue mem.w1\n  @10 notify\n");
  ASSERT_EQ(b.errors.size(), 1u);
  EXPECT_EQ(
      b.errors[0].message,
      "dispatches in cycle 40 but the notify of cycle 10 releases the queue only in cycle 45");
}

TEST(ScheduleErrors, SyncReleasedInTime) {
  const auto b =
      run_text(kHead +
               ".queue mem.w0\n  @0 sync\n  @45 read 0x0000, s0e\n.queue mem.w1\n  @10 notify\n"
               ".queue mem.e0\n  @48 write 0x0000, s0e\n");
  EXPECT_TRUE(b.errors.empty()) << b.errors[0].to_string();
}

TEST(ScheduleErrors, InstructionNotYetFetched) {
  const auto r = run_text(
      kHead + ".set chip.icu.queue_depth=2\n.queue mem.w0\n  @0 nop 1\n  @1 nop 1\n  @2 nop 1\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].instruction, 2);
  EXPECT_NE(r.errors[0].message.find("before it was fetched"), std::string::npos);
}

TEST(ScheduleErrors, ActivationsWithoutWeights) {
  const auto r = run_text(kHead +
                          ".queue mem.w3\n  @30 read 0x0000, s4w\n"
                          ".queue mxm.p0.abc\n  @33 abc.i8 s4w, 1\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].unit, "MXM");
  EXPECT_EQ(r.errors[0].queue, "mxm.p0.abc");
  EXPECT_EQ(r.errors[0].message, "no weights installed");
}

// --- the MXM's weight buffers and rates (chip.mxm.install_cycles, clear_cycles, weight_buffers,
// fp16_rate): each broken rule is a schedule error naming the plane, instruction and cycle. The
// programs carry no data (other errors are collected, not stopped at); the one that matters is
// looked up.
const units::ScheduleError* find_error(const system::RunOutcome& r, const std::string& queue,
                                       const std::string& fragment) {
  for (const auto& e : r.errors)
    if (e.queue == queue && e.message.find(fragment) != std::string::npos) return &e;
  return nullptr;
}
system::RunOutcome run_collecting(const std::string& text) {
  return run_text(text, {}, units::Mode::kFunctional, units::OnError::kReport);
}

TEST(MxmRules, Fp16ActivationsComeAtTheFp16Rate) {
  // tiny has fp16_rate 0.25: one fp16 vector every 4 cycles.
  const auto r =
      run_collecting(kHead + ".queue mxm.p0.abc\n  @10 abc.fp16 s0w, 1\n  @12 abc.fp16 s0w, 1\n");
  const auto* e = find_error(r, "mxm.p0.abc", "after the previous");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->instruction, 1);
  EXPECT_EQ(e->cycle, 13u);
  EXPECT_EQ(e->message,
            "activations enter plane 0 in cycle 13, 2 cycle(s) after the previous fp16 vector; "
            "the plane takes one fp16 vector every 4 cycles (chip.mxm.fp16_rate = 1/4)");
}

TEST(MxmRules, LoadingABufferBeingInstalled) {
  const auto r = run_collecting(kHead + ".set chip.mxm.install_cycles=20\n" +
                                ".queue mxm.p0.wt\n  @0 iw.buf 0\n  @5 lw.i8 s0w, 0, 0\n");
  const auto* e = find_error(r, "mxm.p0.wt", "staging buffer");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->instruction, 1);
  EXPECT_EQ(e->cycle, 6u);
  EXPECT_EQ(e->message,
            "loads staging buffer 0 of plane 0 while it is being installed (until cycle 20)");
}

TEST(MxmRules, ActivationsDuringALongInstall) {
  const auto r = run_collecting(kHead + ".set chip.mxm.install_cycles=5000\n" +
                                ".queue mxm.p0.wt\n  @0 iw.buf 0\n"
                                ".queue mxm.p0.abc\n  @100 abc.i8 s0w, 1\n");
  const auto* e = find_error(r, "mxm.p0.abc", "being installed");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->cycle, 101u);
  EXPECT_EQ(e->message,
            "activations enter the array while its weights are still being installed (until cycle "
            "5000)");
}

TEST(MxmRules, SecondInstallWhileTheFirstRuns) {
  const auto r = run_collecting(kHead + ".set chip.mxm.install_cycles=20\n" +
                                ".set chip.mxm.weight_buffers=3\n" +
                                ".queue mxm.p1.wt\n  @0 iw.buf 0\n  @7 iw.buf 1\n");
  const auto* e = find_error(r, "mxm.p1.wt", "previous install");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->instruction, 1);
  EXPECT_EQ(e->cycle, 7u);
  EXPECT_EQ(e->message,
            "installs weights into plane 1 while the previous install runs (until "
            "cycle 20)");
}

TEST(MxmRules, LoadingABufferBeingCleared) {
  const auto r = run_collecting(kHead + ".set chip.mxm.clear_cycles=10\n" +
                                ".queue mxm.p0.wt\n  @0 clw 0\n  @3 lw.fp16 s0w, 0, 0\n");
  const auto* e = find_error(r, "mxm.p0.wt", "cleared");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->cycle, 4u);
  EXPECT_EQ(e->message,
            "loads staging buffer 0 of plane 0 while it is being cleared (until cycle 10)");
}

TEST(MxmRules, TheOtherBufferLoadsDuringAnInstall) {
  // With two staging buffers, buffer 1 fills while buffer 0 is installed: no buffer error.
  const auto r = run_collecting(kHead + ".set chip.mxm.install_cycles=20\n" +
                                ".set chip.mxm.weight_buffers=3\n" +
                                ".queue mxm.p0.wt\n  @0 iw.buf 0\n  @5 lw.i8 s0w, 0, 1\n");
  EXPECT_EQ(find_error(r, "mxm.p0.wt", "staging buffer"), nullptr);
  EXPECT_NE(find_error(r, "mxm.p0.wt", "nobody wrote"), nullptr);  // (the program has no data)
}

TEST(ScheduleErrors, UnconnectedLink) {
  const auto r =
      run_text(kHead + ".queue mem.w3\n  @0 read 0x0000, s0w\n.queue c2c.l0\n  @2 send s0w\n");
  ASSERT_EQ(r.errors.size(), 1u) << r.errors[0].to_string();
  EXPECT_EQ(r.errors[0].unit, "C2C");
  EXPECT_NE(r.errors[0].message.find("not connected"), std::string::npos);
}

TEST(ScheduleErrors, ReportModeCollectsEveryError) {
  const auto r = run_text(kHead + ".queue mem.e0\n  @5 write 0x0010, s1e\n  @9 write 0x0011, s2e\n",
                          {}, units::Mode::kFunctional, units::OnError::kReport);
  EXPECT_EQ(r.errors.size(), 2u);
  EXPECT_FALSE(r.stopped);
}

// --- a full-size int8 matrix product on tsp-v1 ---------------------------------------------------
// y[4, 320] = x0[4, 320] . W0[320, 320] + x1[4, 320] . W1[320, 320]: K = 640 is two K-chunks of
// plane 0, the second chunk's weights staged by LW while the first chunk streams (double
// buffering: the staging buffer is free again once the first install has read it), sums held in
// the accumulators between the chunks (acc first / last). fp16 vectors come one every 4 cycles
// (chip.mxm.fp16_rate), and so do their fp32 products.
namespace {

struct MatmulProgram {
  std::string text;
  std::uint64_t expected_cycles = 0;
};

// w holds both chunks' weights, [2][320][320], as raw element bits (int8 or fp16).
MatmulProgram matmul_program(const std::vector<std::uint16_t>& w, bool fp16) {
  const auto arch = arch::load("tsp-v1");
  const auto queues = arch::chip_queues(arch.chip);
  auto pos = [&](const std::string& q) {
    return static_cast<long>(arch::find_queue(queues, q)->position);
  };
  const long pm = pos("mxm.p0.wt");       // plane 0 sits next to the west SXM
  const int rows_per_lw = fp16 ? 8 : 16;  // 16 streams: 16 int8 rows or 8 fp16 rows (lo, hi)
  const long n_lw = 320 / rows_per_lw;
  const long iv = fp16 ? 4 : 1;  // cycles between activation vectors
  const long t0 = 100;
  const long iw0 = t0 + n_lw;         // iw.buf dispatch (= access, d_skew 0)
  const long lb[2] = {t0, iw0 + 20};  // first LW access of each block: after the install
  const long a0 = iw0 + 20;           // first ABC access of chunk 0 (after its install)
  const long iw1 = std::max(a0 + 3 * iv + 1, lb[1] + n_lw);
  const long iw[2] = {iw0, iw1};
  const long a[2] = {a0, iw1 + 20};
  const std::string et = fp16 ? "fp16" : "i8", rt = fp16 ? "fp32" : "i32";
  const int eb = fp16 ? 2 : 1;
  std::string s = ".lpuasm 1\n.arch tsp-v1\n";
  for (int c = 0; c < 2; ++c) {
    s += ".tensor x" + std::to_string(c) + " role=input chip=0 dtype=" + et +
         " shape=[4,320] layout=rows at=";
    for (int b = 0; b < eb; ++b)
      s += (b ? "," : "") + std::string("mem.w") + std::to_string(16 + eb * c + b) + ":0x0000+4";
    s += "\n";
  }
  s += ".tensor y role=output chip=0 dtype=" + rt +
       " shape=[4,320] layout=rows "
       "at=mem.w20:0x0000+4,mem.w21:0x0000+4,mem.w22:0x0000+4,mem.w23:0x0000+4\n";
  // LW j of chunk c takes stream k from slice wk, address n_lw*c + j: byte (k % eb) of row
  // rows_per_lw*j + k/eb.
  for (int k = 0; k < 16; ++k) {
    s += ".image chip=0 slice=mem.w" + std::to_string(k) + " addr=0x0000\n";
    for (int c = 0; c < 2; ++c)
      for (long j = 0; j < n_lw; ++j) {
        s += "  ";
        const long r = rows_per_lw * j + k / eb;
        for (int col = 0; col < 320; ++col) {
          char hex[3];
          const std::uint16_t v =
              w[(static_cast<std::size_t>(c) * 320 + static_cast<std::size_t>(r)) * 320 + col];
          std::snprintf(hex, sizeof hex, "%02x",
                        static_cast<unsigned>((v >> (8 * (k % eb))) & 0xff));
          s += hex;
        }
        s += "\n";
      }
    s += ".endimage\n";
  }
  for (int k = 0; k < 16; ++k) {
    const std::string q = "mem.w" + std::to_string(k);
    s += ".queue " + q + "\n";
    for (int c = 0; c < 2; ++c) {
      const long d = lb[c] - (pos(q) - pm) - 2;
      s += "  @" + std::to_string(d) + " read " + std::to_string(n_lw * c) + ", s" +
           std::to_string(k) + "w\n";
      s += "  @" + std::to_string(d + 1) + " repeat " + std::to_string(n_lw - 1) + ", 1\n";
    }
  }
  s += ".queue mxm.p0.wt\n";
  for (int c = 0; c < 2; ++c) {
    s += "  @" + std::to_string(lb[c] - 1) + " lw." + et + " s0w, 0, 0\n";
    s += "  @" + std::to_string(lb[c]) + " repeat " + std::to_string(n_lw - 1) + ", 1\n";
    s += "  @" + std::to_string(iw[c]) + " iw.buf 0\n";
  }
  // Activations: x_c row m reaches the plane in cycle a[c] + m, its byte planes on s16.. (SG2).
  const int as = 16;
  for (int c = 0; c < 2; ++c)
    for (int b = 0; b < eb; ++b) {
      const std::string q = "mem.w" + std::to_string(16 + eb * c + b);
      const long d = a[c] - (pos(q) - pm) - 2;
      s += ".queue " + q + "\n  @" + std::to_string(d) + " read 0x0000, s" +
           std::to_string(as + b) + "w\n";
      s += "  @" + std::to_string(d + iv) + " repeat 3, " + std::to_string(iv) + "\n";
    }
  s += ".queue mxm.p0.abc\n";
  for (int c = 0; c < 2; ++c)
    s += "  @" + std::to_string(a[c] - 1) + " abc." + et + " s" + std::to_string(as) + "w, 4\n";
  s += ".queue mxm.p0.acc\n";
  s += "  @" + std::to_string(a[0] + 1) + " acc." + rt + ".first s0e, 4\n";
  s += "  @" + std::to_string(a[1] + 1) + " acc." + rt + ".last s0e, 4\n";
  // Results leave eastward on s0e..s3e 24 cycles after each ACC step; byte plane b goes to w(20+b).
  const long r0 = a[1] + 1 + 24;
  long last = 0;
  for (int b = 0; b < 4; ++b) {
    const std::string q = "mem.w" + std::to_string(20 + b);
    const long d = r0 + (pos(q) - pm) - 1;
    s += ".queue " + q + "\n  @" + std::to_string(d) + " write 0x0000, s" + std::to_string(b) +
         "e\n";
    s += "  @" + std::to_string(d + iv) + " repeat 3, " + std::to_string(iv) + "\n";
    last = std::max(last, d + 3 * iv);
  }
  // The last write issue: access +1 (d_skew), result +1 (d_func), then 19 more superlanes.
  MatmulProgram m;
  m.text = s;
  m.expected_cycles = static_cast<std::uint64_t>(last + 1 + 1 + 19 + 1);
  return m;
}

MatmulProgram matmul_program(const std::vector<std::int8_t>& w) {
  std::vector<std::uint16_t> bits(w.size());
  for (std::size_t i = 0; i < w.size(); ++i)
    bits[i] = static_cast<std::uint8_t>(w[i]);
  return matmul_program(bits, false);
}

}  // namespace

TEST(SingleChip, Int8MatmulOverTwoKChunksOnTspV1) {
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<std::int8_t> w(2 * 320 * 320), x(2 * 4 * 320);
  for (auto& v : w)
    v = static_cast<std::int8_t>(d(rng));
  for (auto& v : x)
    v = static_cast<std::int8_t>(d(rng));
  const MatmulProgram m = matmul_program(w);
  std::map<std::string, system::TensorValue> in;
  in["x0"] = i8({4, 320}, std::vector<std::int8_t>(x.begin(), x.begin() + 1280));
  in["x1"] = i8({4, 320}, std::vector<std::int8_t>(x.begin() + 1280, x.end()));
  const auto r = run_text(m.text, in);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, m.expected_cycles);
  const auto& y = r.outputs.at("y");
  ASSERT_EQ(y.bytes.size(), 4u * 320 * 4);
  for (int row = 0; row < 4; ++row)
    for (int col = 0; col < 320; ++col) {
      std::int64_t ref = 0;
      for (int c = 0; c < 2; ++c)
        for (int k = 0; k < 320; ++k)
          ref += x[static_cast<std::size_t>(c * 1280 + row * 320 + k)] *
                 w[(static_cast<std::size_t>(c) * 320 + static_cast<std::size_t>(k)) * 320 +
                   static_cast<std::size_t>(col)];
      std::int32_t got;
      std::memcpy(
          &got, &y.bytes[(static_cast<std::size_t>(row) * 320 + static_cast<std::size_t>(col)) * 4],
          4);
      ASSERT_EQ(got, ref) << "row " << row << " col " << col;
    }
  EXPECT_EQ(r.report.at("mxm").at("macs").as_uint64(), 8u * 320 * 320);
  EXPECT_EQ(r.report.at("mxm").at("macs_fp16").as_uint64(), 0u);
  // 8 vectors through a 320 x 320 plane, of 4 planes x 320 x 320 MAC slots in every cycle.
  const double cycles = static_cast<double>(m.expected_cycles);
  EXPECT_NEAR(r.report.at("mxm").at("mac_utilisation_int8").as_double(), 8.0 / (4.0 * cycles),
              1e-12);
  const auto& plane0 = r.report.at("chips").at(0).at("mxm_planes").at(0);
  EXPECT_NEAR(plane0.at("mac_utilisation").as_double(), 8.0 / cycles, 1e-12);
  EXPECT_EQ(r.report.at("chips").at(0).at("mxm_planes").at(1).at("macs_int8").as_uint64(), 0u);
}

TEST(ScheduleErrors, ProductsNobodyTook) {
  std::vector<std::int8_t> w(2 * 320 * 320, 1);
  MatmulProgram m = matmul_program(w);
  const auto at = m.text.find("acc.i32.last");
  m.text.erase(m.text.rfind('\n', at) + 1, m.text.find('\n', at) - m.text.rfind('\n', at));
  std::map<std::string, system::TensorValue> in;
  in["x0"] = i8({4, 320}, std::vector<std::int8_t>(1280, 1));
  in["x1"] = i8({4, 320}, std::vector<std::int8_t>(1280, 1));
  const auto r = run_text(m.text, in, units::Mode::kFunctional, units::OnError::kReport);
  const auto it = std::find_if(r.errors.begin(), r.errors.end(), [](const units::ScheduleError& e) {
    return e.message.find("never taken") != std::string::npos;
  });
  ASSERT_NE(it, r.errors.end());
  EXPECT_EQ(it->message, "4 product(s) of plane 0 were never taken by an ACC");
  EXPECT_EQ(it->queue, "mxm.p0.abc");
  EXPECT_EQ(it->instruction, 1);
  EXPECT_EQ(it->repetition, 3u);
}

TEST(SingleChip, Int8MatmulTimingModeSameCycles) {
  std::vector<std::int8_t> w(2 * 320 * 320, 3);
  const MatmulProgram m = matmul_program(w);
  std::map<std::string, system::TensorValue> in;
  in["x0"] = i8({4, 320}, std::vector<std::int8_t>(1280, 1));
  in["x1"] = i8({4, 320}, std::vector<std::int8_t>(1280, 2));
  const auto r = run_text(m.text, in, units::Mode::kTiming);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, m.expected_cycles);
  EXPECT_EQ(r.report.at("mxm").at("macs").as_uint64(), 8u * 320 * 320);
  EXPECT_EQ(r.report.at("mxm").at("macs_fp16").as_uint64(), 0u);
  // 8 vectors through a 320 x 320 plane, of 4 planes x 320 x 320 MAC slots in every cycle.
  const double cycles = static_cast<double>(m.expected_cycles);
  EXPECT_NEAR(r.report.at("mxm").at("mac_utilisation_int8").as_double(), 8.0 / (4.0 * cycles),
              1e-12);
  const auto& plane0 = r.report.at("chips").at(0).at("mxm_planes").at(0);
  EXPECT_NEAR(plane0.at("mac_utilisation").as_double(), 8.0 / cycles, 1e-12);
  EXPECT_EQ(r.report.at("chips").at(0).at("mxm_planes").at(1).at("macs_int8").as_uint64(), 0u);
}

TEST(ScheduleErrors, VxmResultNobodyReads) {
  const auto r = run_text(
      kHead + ".queue mem.w0\n  @0 read 0x0000, s0e\n.queue vxm.alu0\n  @2 relu.i8 s0e, s3w\n");
  ASSERT_EQ(r.errors.size(), 1u);
  const auto& e = r.errors[0];
  EXPECT_EQ(e.unit, "VXM");
  EXPECT_EQ(e.queue, "vxm.alu0");
  EXPECT_EQ(e.instruction, 0);
  EXPECT_EQ(e.cycle, 5u);
  EXPECT_EQ(e.stream, "s3w");
  EXPECT_EQ(e.position, 6);
  EXPECT_EQ(e.message, "VXM result written in cycle 5 is never read");
}

// 16 x 16 transposes in every superlane of a full tsp-v1 vector, through the west SXM: 16 slices
// put 16 vectors on s0w..s15w so that they reach the SXM together, and 16 others store the 16
// transposed vectors from s16e..s31e.
TEST(SingleChip, SxmTransposeOnTspV1) {
  const auto a = arch::load("tsp-v1");
  const auto qs = arch::chip_queues(a.chip);
  auto pos = [&](const std::string& q) {
    return static_cast<long>(arch::find_queue(qs, q)->position);
  };
  const long ps = pos("sxm.w.transpose0");
  const long t = 100;  // the transposer reads its 16 inputs in cycle t
  std::string s =
      ".lpuasm 1\n.arch tsp-v1\n.tensor x role=input chip=0 dtype=i8 shape=[16,320] layout=rows "
      "at=";
  for (int k = 0; k < 16; ++k)
    s += (k ? "," : "") + std::string("mem.w") + std::to_string(k) + ":0x0000+1";
  s += "\n.tensor y role=output chip=0 dtype=i8 shape=[16,320] layout=rows at=";
  for (int k = 0; k < 16; ++k)
    s += (k ? "," : "") + std::string("mem.w") + std::to_string(16 + k) + ":0x0000+1";
  s += "\n";
  long last = 0;
  for (int k = 0; k < 16; ++k) {
    const std::string q = "mem.w" + std::to_string(k);
    s += ".queue " + q + "\n  @" + std::to_string(t - (pos(q) - ps) - 2) + " read 0x0000, s" +
         std::to_string(k) + "w\n";
  }
  s += ".queue sxm.w.transpose0\n  @" + std::to_string(t - 1) + " transpose s0w, s16e\n";
  for (int k = 0; k < 16; ++k) {
    const std::string q = "mem.w" + std::to_string(16 + k);
    const long d =
        t + 18 + (pos(q) - ps) - 1;  // result in t + d_func(18), then eastward to the slice
    s += ".queue " + q + "\n  @" + std::to_string(d) + " write 0x0000, s" + std::to_string(16 + k) +
         "e\n";
    last = std::max(last, d);
  }
  std::vector<std::int8_t> x(16 * 320);
  std::mt19937 rng(5);
  for (auto& v : x)
    v = static_cast<std::int8_t>(rng());
  const auto r = run_text(s, {{"x", i8({16, 320}, x)}});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  // The last write: access +1, result +1, 19 more superlanes.
  EXPECT_EQ(r.cycles, static_cast<std::uint64_t>(last + 1 + 1 + 19 + 1));
  const auto& y = r.outputs.at("y").bytes;
  for (int j = 0; j < 16; ++j)
    for (int sl = 0; sl < 20; ++sl)
      for (int i = 0; i < 16; ++i)
        ASSERT_EQ(static_cast<std::int8_t>(y[static_cast<std::size_t>(j * 320 + 16 * sl + i)]),
                  x[static_cast<std::size_t>(i * 320 + 16 * sl + j)])
            << "stream " << j << " superlane " << sl << " lane " << i;
}

TEST(SingleChip, Fp16MatmulOverTwoKChunksOnTspV1) {
  // Values with exponents in [-8, 2]: each chunk's exact sum fits a double, so the reference is
  // the double sum rounded to fp32 (the plane rounds each chunk once), then one fp32 addition.
  std::mt19937 rng(77);
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  auto h = [&] {
    float f = d(rng);
    if (std::fabs(f) < 1.0f / 256) f = 0.0f;
    return func::fp32_to_fp16(f);
  };
  std::vector<std::uint16_t> w(2 * 320 * 320), x(2 * 4 * 320);
  for (auto& v : w)
    v = h();
  for (auto& v : x)
    v = h();
  const MatmulProgram m = matmul_program(w, true);
  std::map<std::string, system::TensorValue> in;
  for (int c = 0; c < 2; ++c) {
    system::TensorValue t;
    t.dtype = isa::DType::kFp16;
    t.shape = {4, 320};
    for (int i = 0; i < 1280; ++i) {
      t.bytes.push_back(static_cast<std::uint8_t>(x[static_cast<std::size_t>(c * 1280 + i)]));
      t.bytes.push_back(static_cast<std::uint8_t>(x[static_cast<std::size_t>(c * 1280 + i)] >> 8));
    }
    in["x" + std::to_string(c)] = t;
  }
  const auto r = run_text(m.text, in);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, m.expected_cycles);
  const auto& y = r.outputs.at("y").bytes;
  for (int row = 0; row < 4; ++row)
    for (int col = 0; col < 320; ++col) {
      float chunk[2];
      for (int c = 0; c < 2; ++c) {
        double sum = 0;
        for (int k = 0; k < 320; ++k)
          sum += static_cast<double>(
                     func::fp16_to_fp32(x[static_cast<std::size_t>(c * 1280 + row * 320 + k)])) *
                 static_cast<double>(func::fp16_to_fp32(
                     w[(static_cast<std::size_t>(c) * 320 + static_cast<std::size_t>(k)) * 320 +
                       static_cast<std::size_t>(col)]));
        chunk[c] = static_cast<float>(sum);
      }
      const float ref = chunk[0] + chunk[1];
      std::uint32_t got;
      std::memcpy(&got,
                  &y[(static_cast<std::size_t>(row) * 320 + static_cast<std::size_t>(col)) * 4], 4);
      ASSERT_EQ(got, func::float_bits(ref)) << "row " << row << " col " << col;
    }
  // fp16 MACs count against the fp16 peak (a quarter of the int8 one on tsp-v1).
  EXPECT_EQ(r.report.at("mxm").at("macs_fp16").as_uint64(), 8u * 320 * 320);
  EXPECT_NEAR(r.report.at("mxm").at("mac_utilisation_fp16").as_double(),
              8.0 / (4.0 * 0.25 * static_cast<double>(m.expected_cycles)), 1e-12);
}

TEST(SingleChip, SingleBitFlipIsCorrectedAndCounted) {
  const auto x = ramp(64, 7);
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const isa::Program p = isa::parse_lpuasm(kChain, "chain.lpuasm");
  units::SimOptions o;
  o.flips.push_back({0, "mem.w0", 1, 77});  // a data bit of row 1
  o.flips.push_back(
      {0, "mem.w0", 0, 256 + 3});  // a check bit of row 0's first chunk (tiny: 256 data bits)
  const auto r = system::run(p, {{"x", i8({2, 32}, x)}}, o);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.cycles, 10u);
  EXPECT_EQ(r.report.at("ecc").at("corrected").as_uint64(), 2u);
  const auto& y = r.outputs.at("y");
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(static_cast<std::int8_t>(y.bytes[i]), std::clamp(2 * x[i], -128, 127)) << i;
}
