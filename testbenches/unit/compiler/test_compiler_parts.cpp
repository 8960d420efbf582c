// The compiler's parts on their own, without SystemC: the operator registry, how products are
// cut into row blocks, the int8 epilogue fold (structure, and values on the host reference
// against double-precision arithmetic written here), packed bottlenecks (their products), the
// scheduler's reservation tables and its options.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "common/diagnostics.h"
#include "compiler/kernels.h"
#include "compiler/reference.h"
#include "compiler/schedule/scheduling.h"
#include "compiler/scheduler.h"
#include "graph_builder.h"

using namespace lpu;
using compiler::KStep;
using test::Builder;
using test::Dims;
using test::f16_bytes;
using test::f16_values;
using test::ints_attr;

namespace {

const arch::Arch& tsp() {
  static const arch::Arch a = arch::load("tsp-v1");
  return a;
}

// --- the registry ------------------------------------------------------------------------------

TEST(Registry, SupportedOperatorsAreTheRegistrysNames) {
  const auto& ops = compiler::supported_ops();
  EXPECT_TRUE(std::is_sorted(ops.begin(), ops.end()));
  EXPECT_EQ(std::adjacent_find(ops.begin(), ops.end()), ops.end());
  for (const char* op : {"Add", "Relu", "Conv", "MaxPool", "MatMul", "Gemm", "Gather",
                         "LayerNormalization", "Softmax", "Reshape", "Cast"})
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
  EXPECT_EQ(std::find(ops.begin(), ops.end(), "Foo"), ops.end());
}

TEST(Registry, AnOperatorNotInItIsAnErrorNamingTheNode) {
  Builder gb;
  const int x = gb.input("x", isa::DType::kFp32, {4, 8});
  gb.output(gb.node("Foo", "my_foo", {x}, "y", isa::DType::kFp32, {4, 8}));
  try {
    compiler::lower(gb.g, tsp());
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'my_foo'"), std::string::npos) << m;
    EXPECT_NE(m.find("operator 'Foo' is not supported"), std::string::npos) << m;
  }
}

// --- row blocks of products --------------------------------------------------------------------

// The matrix product steps writing a tensor whose name starts with `prefix`: their rows.
std::vector<std::int64_t> product_rows(const compiler::Kernels& k, const std::string& prefix) {
  std::vector<std::int64_t> rows;
  for (const KStep& s : k.steps)
    if (s.kind == KStep::Kind::kMatMul &&
        k.tensors[static_cast<std::size_t>(s.d)].name.rfind(prefix, 0) == 0)
      rows.push_back(s.m);
  return rows;
}

compiler::Kernels matmul_kernels(std::int64_t m) {
  Builder gb;
  const int a = gb.input("a", isa::DType::kFp16, {m, 64});
  const int b =
      gb.constant("b", isa::DType::kFp16, {64, 32}, f16_bytes(test::uniform(64 * 32, -1, 1, 5)));
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", isa::DType::kFp16, {m, 32}));
  return compiler::lower(gb.g, tsp());
}

// One column tile: 100 rows go to the 4 planes as blocks of 25; 2000 rows (7 blocks of at most
// 320) as 8 blocks of 250, two rounds of 4; 2 rows stay one block (shorter than one weight
// load: 320 / 16 = 20 rows).
TEST(ProductBlocks, FewBlocksAreCutSoThatEveryPlaneStreams) {
  ASSERT_EQ(tsp().chip.mxm.planes, 4);
  EXPECT_EQ(product_rows(matmul_kernels(100), "mm"), std::vector<std::int64_t>(4, 25));
  EXPECT_EQ(product_rows(matmul_kernels(2000), "mm"), std::vector<std::int64_t>(8, 250));
  EXPECT_EQ(product_rows(matmul_kernels(2), "mm"), std::vector<std::int64_t>{2});
  EXPECT_EQ(product_rows(matmul_kernels(30), "mm"), std::vector<std::int64_t>{30});
}

// --- the row-wise stem ------------------------------------------------------------------------

// ResNet-50's stem and max pool, lowered for tsp-v1: figures derived by hand from the geometry.
// 7 x 7 / 2, pads 3, 224 -> 112; groups of Q = 320 / 64 = 5 output columns: 23 groups, group g
// reading input columns 10 g - 3 .. 10 g + 11 (inside the image). Three channels fold into one
// vector of 3 blocks of S = 106 lanes; segments start at the first column of a group and take
// the groups that fit 106 columns: groups 0-9 from column 0, 10-19 from 97, 20-22 from 197.
// A group's window spans its columns in block 0 to those in block 2, loaded from a multiple of
// 16: the widest is group 13's, lanes 30 .. 256 from plane row 16, so every band has 256 rows
// (group 19's, lanes 90 .. 316, then starts at plane row 64 so as to end by row 320).
TEST(RowwiseStem, ThreeChannelsFoldIntoVectorsOfThreeSegments) {
  Builder gb;
  const int x = gb.input("x", isa::DType::kFp16, {1, 3, 224, 224});
  const int c = gb.node(
      "Conv", "stem",
      {x,
       gb.constant("w", isa::DType::kFp16, {64, 3, 7, 7},
                   f16_bytes(test::uniform(64 * 3 * 49, -0.1f, 0.1f, 3))),
       gb.constant("b", isa::DType::kFp16, {64}, f16_bytes(test::uniform(64, -0.1f, 0.1f, 4)))},
      "c", isa::DType::kFp16, {1, 64, 112, 112},
      {{"kernel_shape", ints_attr({7, 7})},
       {"strides", ints_attr({2, 2})},
       {"pads", ints_attr({3, 3, 3, 3})}});
  const int r = gb.node("Relu", "relu", {c}, "r", isa::DType::kFp16, {1, 64, 112, 112});
  gb.output(gb.node("MaxPool", "pool", {r}, "p", isa::DType::kFp16, {1, 64, 56, 56},
                    {{"kernel_shape", ints_attr({3, 3})},
                     {"strides", ints_attr({2, 2})},
                     {"pads", ints_attr({1, 1, 1, 1})}}));
  const compiler::Kernels k = compiler::lower(gb.g, tsp());
  auto shape = [&](const std::string& name) {
    for (const auto& t : k.tensors)
      if (t.name == name) return t.shape;
    return std::vector<std::int64_t>{};
  };
  EXPECT_EQ(shape("stem/folded"), (std::vector<std::int64_t>{3 * 224, 320}));
  EXPECT_EQ(shape("stem/bands"), (std::vector<std::int64_t>{23 * 7 * 256, 320}));
  // The fold: a shift per (segment, channel) but channel 0 of segment 0 (already at lane 0),
  // north by f S - seg_lo when positive, else south; two selects per segment, at 106 and 212.
  std::multiset<std::pair<int, bool>> shifts,
      want_shifts = {{106, true}, {212, true},  // segment 0
                     {97, false}, {9, true},   {115, true}, {197, false}, {91, false}, {15, true}};
  std::multiset<int> selects;
  int pool_shifts = 0;
  for (const KStep& s : k.steps) {
    if (s.kind != KStep::Kind::kSxm) continue;
    const bool stem = s.origin.find("'stem'") != std::string::npos;
    if (stem && s.sxm == KStep::SxmOp::kShift) shifts.insert({s.sxm_n, s.north});
    if (stem && s.sxm == KStep::SxmOp::kSelect) selects.insert(s.sxm_n);
    if (s.origin.find("'pool'") != std::string::npos) {
      EXPECT_EQ(s.rows, 56) << "a pooled row per output pixel column";
      ++pool_shifts;
    }
  }
  EXPECT_EQ(shifts, want_shifts);
  EXPECT_EQ(selects, (std::multiset<int>{106, 106, 106, 212, 212, 212}));
  // The pool's shifts: one per output column of the stem that is not first in its group
  // (112 - 23), each of the 56 pooled rows; none on the stem's own 112 rows.
  EXPECT_EQ(pool_shifts, 112 - 23);
  // The products: per group, 7 passes (one per kernel row) of 256 rows each from its segment's
  // rows (phase r mod 2, 115 rows a segment), from plane row at[g].
  int groups = 0;
  for (const KStep& s : k.steps) {
    if (s.kind != KStep::Kind::kMatMul) continue;
    ASSERT_EQ(s.passes.size(), 7u);
    const std::int64_t g = s.d_row / 112, seg = g < 10 ? 0 : g < 20 ? 1 : 2;
    const std::int64_t lo = std::max<std::int64_t>(0, 10 * g - 3);
    const std::int64_t first = lo - (seg == 0 ? 0 : seg == 1 ? 97 : 197);
    for (std::size_t p = 0; p < s.passes.size(); ++p) {
      EXPECT_EQ(s.passes[p].k, 256);
      EXPECT_TRUE(s.passes[p].window);
      EXPECT_EQ(s.passes[p].x_row, seg * 115 + static_cast<std::int64_t>(p) / 2) << "group " << g;
      EXPECT_LE(s.passes[p].w_at, first) << "group " << g;
      EXPECT_LE(s.passes[p].w_at + 256, 320) << "group " << g;
      EXPECT_GE(s.passes[p].w_at + 256, 2 * 106 + first + std::min<std::int64_t>(15, 224 - lo))
          << "group " << g;
    }
    ++groups;
  }
  EXPECT_EQ(groups, 23);
}

// A row-wise convolution whose last input row no window reads (9 rows, 2 x 2, stride 2: the
// windows end at row 7): that row is left out of the phases (it would land in the next unit's
// rows), and the values are the convolution's in double, checked on the host reference.
TEST(RowwiseStem, AnInputRowNoWindowReadsIsLeftOut) {
  const auto xv = test::uniform_fp16(3 * 9 * 40, -1, 1, 7);
  const auto wv = test::uniform_fp16(64 * 3 * 4, -0.3f, 0.3f, 8);
  Builder gb;
  const int x = gb.input("x", isa::DType::kFp16, {1, 3, 9, 40});
  gb.output(gb.node("Conv", "stem",
                    {x, gb.constant("w", isa::DType::kFp16, {64, 3, 2, 2}, f16_bytes(wv))}, "y",
                    isa::DType::kFp16, {1, 64, 4, 20},
                    {{"kernel_shape", ints_attr({2, 2})}, {"strides", ints_attr({2, 2})}}));
  const compiler::Kernels k = compiler::lower(gb.g, tsp());
  bool bands = false;
  for (const auto& t : k.tensors)
    bands = bands || t.name == "stem/bands";
  ASSERT_TRUE(bands) << "the convolution did not go row by row";
  compiler::ScheduleOptions checked;
  checked.check_memory = true;
  EXPECT_GT(compiler::schedule(k, tsp(), "test", checked).cycles, 0u);
  const auto out = f16_values(compiler::run_reference(k, {f16_bytes(xv)})[0]);
  ASSERT_EQ(out.size(), 64u * 4 * 20);
  for (int m = 0; m < 64; ++m)
    for (int oh = 0; oh < 4; ++oh)
      for (int ow = 0; ow < 20; ++ow) {
        double want = 0, mag = 0;
        for (int c = 0; c < 3; ++c)
          for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) {
              const double p =
                  static_cast<double>(
                      xv[static_cast<std::size_t>((c * 9 + 2 * oh + i) * 40 + 2 * ow + j)]) *
                  static_cast<double>(wv[static_cast<std::size_t>(((m * 3 + c) * 2 + i) * 2 + j)]);
              want += p;
              mag += std::fabs(p);
            }
        const auto o = static_cast<std::size_t>((m * 4 + oh) * 20 + ow);
        ASSERT_NEAR(out[o], want, 2e-3 * mag + 1e-5) << "m " << m << " oh " << oh << " ow " << ow;
      }
}

// --- the int8 epilogue fold --------------------------------------------------------------------

// conv1 (1 x 1, bias) -> relu -> conv2 (1 x 1) at int8; `tap` also makes relu1's output a graph
// output, which must then keep its fp16 value (no fold).
struct TwoConvs {
  compiler::Kernels k;
  std::vector<float> x, w1, b1, w2;
};
TwoConvs two_convs(bool tap) {
  TwoConvs t;
  t.w1 = test::uniform(24 * 16, -0.4f, 0.4f, 11);
  t.b1 = test::uniform(24, -0.2f, 0.2f, 12);
  t.w2 = test::uniform(8 * 24, -0.3f, 0.3f, 13);
  t.x = test::uniform_fp16(16 * 6 * 6, -0.5f, 0.5f, 14);
  Builder gb;
  const std::map<std::string, compiler::Attr> one = {{"kernel_shape", ints_attr({1, 1})}};
  const int x = gb.input("x", isa::DType::kFp16, {1, 16, 6, 6});
  const int c1 = gb.node("Conv", "conv1",
                         {x, gb.constant("w1", isa::DType::kFp16, {24, 16, 1, 1}, f16_bytes(t.w1)),
                          gb.constant("b1", isa::DType::kFp16, {24}, f16_bytes(t.b1))},
                         "c1", isa::DType::kFp16, {1, 24, 6, 6}, one);
  const int r1 = gb.node("Relu", "relu1", {c1}, "r1", isa::DType::kFp16, {1, 24, 6, 6});
  const int c2 = gb.node("Conv", "conv2",
                         {r1, gb.constant("w2", isa::DType::kFp16, {8, 24, 1, 1}, f16_bytes(t.w2))},
                         "c2", isa::DType::kFp16, {1, 8, 6, 6}, one);
  gb.output(c2);
  if (tap) gb.output(r1);
  t.k = compiler::lower_with_precision(gb.g, tsp(), compiler::Precision::kInt8);
  return t;
}

int count(const compiler::Kernels& k, func::VxmOp op, isa::DType type) {
  int n = 0;
  for (const KStep& s : k.steps)
    n += s.kind == KStep::Kind::kVxm && s.args.op == op && s.args.type == type;
  return n;
}

TEST(RequantizationFold, ReluOnTheSumsThenStraightToInt8) {
  const TwoConvs t = two_convs(false);
  EXPECT_EQ(count(t.k, func::VxmOp::kRelu, isa::DType::kFp32), 1);
  EXPECT_EQ(count(t.k, func::VxmOp::kRelu, isa::DType::kFp16), 0);
  // The only fp16 steps left quantize the graph's input x and round conv2's result.
  EXPECT_EQ(count(t.k, func::VxmOp::kMul, isa::DType::kFp16), 1);
  // Values: within two layers of int8 quantization error of the network in double (inputs in
  // [-0.5, 0.5], inside the calibration's range, so nothing saturates).
  const auto out = compiler::run_reference(t.k, {f16_bytes(t.x)});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f16_values(out[0]);
  ASSERT_EQ(got.size(), 8u * 36);
  for (int o = 0; o < 8; ++o)
    for (int p = 0; p < 36; ++p) {
      double want = 0, mag = 0;
      for (int c = 0; c < 24; ++c) {
        double h = t.b1[static_cast<std::size_t>(c)];
        for (int i = 0; i < 16; ++i)
          h += static_cast<double>(t.w1[static_cast<std::size_t>(c * 16 + i)]) *
               t.x[static_cast<std::size_t>(i * 36 + p)];
        h = std::max(0.0, h);
        want += t.w2[static_cast<std::size_t>(o * 24 + c)] * h;
        mag += std::fabs(t.w2[static_cast<std::size_t>(o * 24 + c)] * h);
      }
      EXPECT_NEAR(got[static_cast<std::size_t>(o * 36 + p)], want, 4.0 / 127.0 * mag + 1e-3)
          << o << "," << p;
    }
}

TEST(RequantizationFold, AReluValueSomethingElseReadsIsKept) {
  const TwoConvs t = two_convs(true);
  EXPECT_EQ(count(t.k, func::VxmOp::kRelu, isa::DType::kFp32), 0);
  EXPECT_EQ(count(t.k, func::VxmOp::kRelu, isa::DType::kFp16), 1);
}

// --- packed bottlenecks ------------------------------------------------------------------------

// A max pool (64 channels, 5 x 6 out) into a bottleneck 1 x 1 -> Relu -> 3 x 3 -> Relu -> 1 x 1
// (64 -> 64 -> 64 -> 96) in fp16: 5 pixels a vector, the grid 10 wide (2 vectors a row).
compiler::Kernels packed_kernels() {
  Builder gb;
  auto conv = [&](const std::string& name, int in, std::int64_t m, std::int64_t c, std::int64_t k) {
    std::map<std::string, compiler::Attr> at = {{"kernel_shape", ints_attr({k, k})}};
    if (k == 3) at["pads"] = ints_attr({1, 1, 1, 1});
    const auto w = test::uniform(static_cast<std::size_t>(m * c * k * k), -0.1f, 0.1f, 21);
    return gb.node("Conv", name,
                   {in, gb.constant(name + ".w", isa::DType::kFp16, {m, c, k, k}, f16_bytes(w))},
                   name + ".y", isa::DType::kFp16, {1, m, 5, 6}, at);
  };
  auto relu = [&](const std::string& name, int in, std::int64_t c) {
    return gb.node("Relu", name, {in}, name + ".y", isa::DType::kFp16, {1, c, 5, 6});
  };
  const int x = gb.input("x", isa::DType::kFp16, {1, 64, 10, 12});
  const int p = gb.node("MaxPool", "pool", {x}, "p", isa::DType::kFp16, {1, 64, 5, 6},
                        {{"kernel_shape", ints_attr({3, 3})},
                         {"strides", ints_attr({2, 2})},
                         {"pads", ints_attr({1, 1, 1, 1})}});
  const int a = relu("a.relu", conv("a", p, 64, 64, 1), 64);
  const int b = relu("b.relu", conv("b", a, 64, 64, 3), 64);
  gb.output(conv("c", b, 96, 64, 1));
  return compiler::lower(gb.g, tsp());
}

TEST(PackedBottleneck, StridedProductsInAndOutAndSixBandedPasses) {
  const compiler::Kernels k = packed_kernels();
  const auto name = [&](int t) { return k.tensors[static_cast<std::size_t>(t)].name; };
  int a_steps = 0, b_steps = 0, c_steps = 0;
  std::set<std::int64_t> c_first;  // grid rows the last product's steps start at
  for (const KStep& s : k.steps) {
    if (s.kind != KStep::Kind::kMatMul) continue;
    const std::string d = name(s.d);
    if (d.rfind("a/", 0) == 0) {  // 5 passes, pass s every 5th grid row from s
      ++a_steps;
      ASSERT_EQ(s.passes.size(), 5u);
      for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(s.passes[i].x_stride, 5);
        EXPECT_EQ(s.passes[i].x_row % 5, static_cast<std::int64_t>(i));
      }
    } else if (d.rfind("b/", 0) == 0) {  // input rows r + i G + dv, G = 2
      ++b_steps;
      ASSERT_EQ(s.passes.size(), 6u);
      std::vector<std::int64_t> off;
      for (const auto& ps : s.passes)
        off.push_back(ps.x_row - s.d_row);
      EXPECT_EQ(off, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
    } else if (d.rfind("c/", 0) == 0) {  // every 5th grid row from s + 1
      ++c_steps;
      EXPECT_EQ(s.d_stride, 5);
      c_first.insert(s.d_row % 5);
    }
  }
  EXPECT_GT(a_steps, 0);
  EXPECT_GT(b_steps, 0);
  EXPECT_GT(c_steps, 0);
  EXPECT_EQ(c_first, (std::set<std::int64_t>{0, 1, 2, 3, 4}));
  // The pool's output is on the grid: 5 rows of 10, dealt over 5 groups of slices.
  bool grid = false;
  for (const auto& t : k.tensors)
    if (t.name == "pool/out") {
      grid = true;
      EXPECT_EQ(t.shape, (std::vector<std::int64_t>{1, 5, 10, 64}));
      EXPECT_EQ(t.interleave, 5);
    }
  EXPECT_TRUE(grid);
}

// The scheduler places the interleaved tensors and the MEM self-check replays the program.
TEST(PackedBottleneck, ScheduledWithTheMemorySelfCheck) {
  compiler::ScheduleOptions checked;
  checked.check_memory = true;
  const compiler::Schedule s = compiler::schedule(packed_kernels(), tsp(), "test", checked);
  EXPECT_GT(s.cycles, 0u);
}

// --- the scheduler's reservation tables -------------------------------------------------------

TEST(Reservation, BusyIntervalsReportTheLastOverlapsEnd) {
  compiler::scheduling::Busy b;
  b.add(10, 5);   // [10, 15)
  b.add(20, 10);  // [20, 30)
  EXPECT_FALSE(b.conflict(0, 10));
  EXPECT_FALSE(b.conflict(15, 5));
  EXPECT_EQ(b.conflict(14, 1), 15u);
  EXPECT_EQ(b.conflict(12, 10), 30u);  // overlaps both: the later end
  EXPECT_FALSE(b.conflict(30, 100));
}

// Separate MEM instructions 4 cycles apart (an fp16 product's activations): each holds its
// slice for its own cycle, and a use between them fits.
TEST(Reservation, UsesEveryFewCyclesLeaveTheCyclesBetweenFree) {
  compiler::scheduling::Busy b;
  b.add_each(100, 1, 4, 5);                     // 100, 104, .., 116
  b.add(130, 10);                               // [130, 140)
  EXPECT_FALSE(b.conflict(101, 3));             // between the first two
  EXPECT_EQ(b.conflict(101, 4), 105u);          // reaches 104
  EXPECT_FALSE(b.conflict_each(102, 1, 4, 5));  // 102, 106, .., 118: interleaved
  // 99, 103, .. 131, 135: 131 and 135 fall in [130, 140); the earlier needs 9 cycles more
  EXPECT_EQ(b.conflict_each(99, 1, 4, 10), 9u);
  // 116 (the last access) against one starting there: a shift of 1
  EXPECT_EQ(b.conflict_each(116, 1, 2, 2), 1u);
  EXPECT_FALSE(b.conflict_each(141, 1, 4, 100));
}

TEST(Reservation, StreamClaimsOverlapInTimeAndPosition) {
  compiler::scheduling::Claims c;
  c.add({100, 110, 3, 7});
  std::vector<std::uint64_t> ends;
  auto collect = [&](const compiler::scheduling::Claim& o) { ends.push_back(o.k1); };
  c.overlapping(105, 106, 7, 9, collect);  // shares position 7
  EXPECT_EQ(ends, std::vector<std::uint64_t>{110});
  ends.clear();
  c.overlapping(105, 106, 8, 9, collect);  // other positions
  c.overlapping(110, 120, 3, 7, collect);  // after it
  c.overlapping(90, 100, 3, 7, collect);   // before it
  EXPECT_TRUE(ends.empty());
}

// An int8 epilogue with its residual add: cast, mul, add, cast, add, relu, mul, cast; the three
// casts need large ALUs. On tsp-v1 (16 ALUs: ALU id = 4 x row + rank, large ones 0, 2, 5, 7, 8,
// 10, 13, 15; row r reaches stream groups 2r .. 2r + 3 mod 8) one such chain keeps to two rows,
// so that a second one finds its ALUs in the other two.
TEST(ChainAlus, TwoInt8EpiloguesFitTheVxmAtOnce) {
  const arch::Arch a = arch::load("tsp-v1");
  const std::vector<bool> large_op = {true, false, false, true, false, false, false, true};
  const std::vector<int> first = compiler::scheduling::compact_alus(a.chip, large_op, 0);
  const std::vector<int> second = compiler::scheduling::compact_alus(a.chip, large_op, 8);
  // by hand: casts on 0, 2, 7; the other steps on the small ALUs of rows 0 and 1, then on 5
  EXPECT_EQ(first, (std::vector<int>{0, 1, 3, 2, 6, 4, 5, 7}));
  EXPECT_EQ(second, (std::vector<int>{8, 9, 11, 10, 14, 12, 13, 15}));
  for (std::size_t j = 0; j < large_op.size(); ++j)
    if (large_op[j]) {
      EXPECT_TRUE(a.chip.vxm.is_large(first[j])) << j;
      EXPECT_TRUE(a.chip.vxm.is_large(second[j])) << j;
    }
  // more steps that need a large ALU than there are: none
  EXPECT_TRUE(compiler::scheduling::compact_alus(a.chip, std::vector<bool>(9, true), 0).empty());
}

// --- scheduler options -------------------------------------------------------------------------

TEST(ScheduleOptions, LogNamesAreChecked) {
  EXPECT_EQ(compiler::parse_schedule_log("mem,fit", "--scheduler-log"),
            (std::set<std::string>{"fit", "mem"}));
  try {
    compiler::parse_schedule_log("mem,bogus", "--scheduler-log");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'bogus' is not a scheduler log"), std::string::npos);
  }
}

// The MEM self-check replays a whole program without complaint. With reuse, tensors nothing
// reads any more hand their MEM on; without, none does (lpu verify --probe reads them all back).
TEST(ScheduleOptions, MemoryCheckAndNoReuse) {
  const TwoConvs t = two_convs(false);
  compiler::ScheduleOptions checked;
  checked.check_memory = true;
  const compiler::Schedule a = compiler::schedule(t.k, tsp(), "test", checked);
  compiler::ScheduleOptions apart;
  apart.reuse_memory = false;
  const compiler::Schedule b = compiler::schedule(t.k, tsp(), "test", apart);
  EXPECT_GT(a.cycles, 0u);
  EXPECT_TRUE(std::any_of(a.reused.begin(), a.reused.end(), [](bool r) { return r; }));
  EXPECT_TRUE(std::none_of(b.reused.begin(), b.reused.end(), [](bool r) { return r; }));
}

}  // namespace

// Row-by-row readiness: a reader waits only for the records of the rows it reads, each by the
// sooner of its rows' linear bound (row r from c + r) and its end.
TEST(Readiness, ReadersWaitOnlyForTheRowsTheyRead) {
  using compiler::scheduling::recorded_need;
  compiler::scheduling::TensorPlace tp;
  tp.recs.push_back({0, 99, 1, 100, 200});  // rows 0..99: row r from 100 + r, all by 200
  EXPECT_EQ(recorded_need(tp, 0, 1, 0, 99, 0, 1), 100);  // rows 0..99, one a cycle from T
  EXPECT_EQ(recorded_need(tp, 50, 1, 0, 9, 0, 1), 150);  // rows 50..59
  EXPECT_EQ(recorded_need(tp, 0, 1, 0, 99, 0, 4), 100);  // slower reads: row 0 binds
  EXPECT_EQ(recorded_need(tp, 200, 1, 0, 9, 0, 1), 0);   // rows nobody wrote
  EXPECT_EQ(recorded_need(tp, 0, 1, 0, 99, 30, 1), 70);  // read 30 cycles after T
  // Another tile written later: reading the first tile does not wait for it.
  tp.recs.push_back({100, 199, 1, 400, 600});
  EXPECT_EQ(recorded_need(tp, 0, 1, 0, 99, 0, 1), 100);
  EXPECT_EQ(recorded_need(tp, 100, 1, 0, 99, 0, 1), 500);
  // Every fifth row (one class of packed rows), written 1 a cycle: its rows' linear bound
  // grows 5 a cycle, so its end binds; readers of another class do not wait for it.
  compiler::scheduling::TensorPlace cl;
  cl.recs.push_back({1, 496, 5, 1000, 1100});
  EXPECT_EQ(recorded_need(cl, 1, 5, 0, 99, 0, 1), 1100);
  EXPECT_EQ(recorded_need(cl, 2, 5, 0, 99, 0, 1), 0);
  EXPECT_EQ(recorded_need(cl, 0, 1, 0, 9, 0, 1), 1000);  // rows 0..9: row 1 in T + 1, from 1001
  // A write that was not recorded (an SXM step): no bound.
  cl.recorded = false;
  EXPECT_FALSE(recorded_need(cl, 1, 5, 0, 99, 0, 1).has_value());
}

// --- copies of the weights -----------------------------------------------------------------------

// Products with constant weights: with room, every piece gets a copy (its images twice in the
// program); with weight_copy_share 0, none. Where the copies take the room a later tensor needs
// (3200 x 3200 fp16 weights, MEM cut to 2048 vectors a slice, a share of 1), the program is
// scheduled again without them: the same program as with share 0.
namespace {
compiler::Kernels fp16_product(std::int64_t m, std::int64_t k, std::int64_t n) {
  Builder gb;
  const int a = gb.input("a", isa::DType::kFp16, {m, k});
  const int b = gb.constant("b", isa::DType::kFp16, {k, n},
                            f16_bytes(test::uniform(static_cast<std::size_t>(k * n), -1, 1, 7)));
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", isa::DType::kFp16, {m, n}));
  return compiler::lower(gb.g, tsp());
}
std::string weights_placement(const compiler::Schedule& s) {
  for (const auto& p : s.placements)
    if (p.tensor == "b") return p.where;
  return "";
}
}  // namespace

TEST(WeightCopies, EveryPieceGetsACopyWhenThereIsRoom) {
  const compiler::Kernels k = fp16_product(512, 1280, 1280);
  compiler::ScheduleOptions none;
  none.weight_copy_share = none.weight_copy_part = 0;
  const compiler::Schedule with = compiler::schedule(k, tsp(), "test");
  const compiler::Schedule without = compiler::schedule(k, tsp(), "test", none);
  EXPECT_NE(weights_placement(with).find("and a copy of each"), std::string::npos)
      << weights_placement(with);
  EXPECT_EQ(weights_placement(without).find("copy"), std::string::npos);
  // 4 x 4 pieces of 40 vectors on 16 slices each, once more
  EXPECT_EQ(with.program.images.size(), without.program.images.size() + 16 * 16);
  compiler::ScheduleOptions checked;
  checked.check_memory = true;  // every read of a copy finds the weights
  EXPECT_GT(compiler::schedule(k, tsp(), "test", checked).cycles, 0u);
}

TEST(WeightCopies, NoRoomForThemMeansScheduledWithout) {
  const compiler::Kernels k = fp16_product(512, 3200, 3200);
  const arch::Arch small = arch::load("tsp-v1", {"chip.mem.depth=2048"});
  compiler::ScheduleOptions all, none;
  all.weight_copy_share = 1;
  none.weight_copy_share = none.weight_copy_part = 0;
  const compiler::Schedule retried = compiler::schedule(k, small, "test", all);
  const compiler::Schedule plain = compiler::schedule(k, small, "test", none);
  EXPECT_EQ(weights_placement(retried), weights_placement(plain));
  EXPECT_EQ(retried.cycles, plain.cycles);
  EXPECT_EQ(retried.program.images.size(), plain.program.images.size());
}
