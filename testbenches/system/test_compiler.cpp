// The compiler end to end: graphs built here (and one ONNX model written with the protobuf
// classes), lowered and scheduled for tsp-v1, simulated on the SystemC model.
//  * values: the simulated outputs equal the host reference (compiler::run_reference) bit for bit
//    and an independent computation written here (plain floats, doubles, wrapped integers);
//  * cycles: simulated == predicted (Schedule::cycles and the program's .predicted), no schedule
//    error; one count derived by hand from the architecture;
//  * errors: what the compiler cannot take is an InputError naming the node, tensor or sizes;
//  * independent steps overlap in the schedule.
// SystemC elaborates once per process, so every test case makes at most one system::run call and
// CTest runs each case in a process of its own (gtest_discover_tests).
#include <onnx/onnx_pb.h>

#include "arch/queues.h"
#include "compiler_harness.h"

using namespace lpu;
using namespace lpu::test;  // the harness and the graph builder

// --- values and cycles (one simulation each) ----------------------------------------------------

// out = relu((x + y) * c) - b: a constant row c [50] expanded on the host, an input row b [1,50]
// read again for every row. fp32 VXM arithmetic is IEEE single, so plain floats give the same.
TEST(Compiler, Fp32PointwiseChain) {
  constexpr int kRows = 6, kCols = 50;
  Builder gb;
  const Dims shape{kRows, kCols};
  const int x = gb.input("x", DType::kFp32, shape);
  const int y = gb.input("y", DType::kFp32, shape);
  const int b = gb.input("b", DType::kFp32, {1, kCols});
  const auto cv = uniform(kCols, -2.0f, 2.0f, 3);
  const int c = gb.constant("c", DType::kFp32, {kCols}, f32_bytes(cv));
  const int s = gb.node("Add", "add", {x, y}, "s", DType::kFp32, shape);
  const int m = gb.node("Mul", "mul", {s, c}, "m", DType::kFp32, shape);
  const int r = gb.node("Relu", "relu", {m}, "r", DType::kFp32, shape);
  gb.output(gb.node("Sub", "sub", {r, b}, "out", DType::kFp32, shape));
  const Compiled cc = compile(gb.g);

  const auto xv = uniform(kRows * kCols, -4.0f, 4.0f, 1);
  const auto yv = uniform(kRows * kCols, -4.0f, 4.0f, 2);
  const auto bv = uniform(kCols, -1.0f, 1.0f, 4);
  const auto out = simulate(cc, {f32_bytes(xv), f32_bytes(yv), f32_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f32_values(out[0]);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kRows * kCols));
  int positive = 0;
  for (int i = 0; i < kRows * kCols; ++i) {
    const int j = i % kCols;
    const float sum = xv[static_cast<std::size_t>(i)] + yv[static_cast<std::size_t>(i)];
    const float prod = sum * cv[static_cast<std::size_t>(j)];
    const float relu = prod > 0.0f ? prod : 0.0f;
    positive += prod > 0.0f;
    const float want = relu - bv[static_cast<std::size_t>(j)];
    EXPECT_EQ(got[static_cast<std::size_t>(i)], want) << "element " << i;
  }
  EXPECT_GT(positive, 0);
  EXPECT_LT(positive, kRows * kCols);  // both sides of the Relu are exercised
}

// int8 Add wraps, as ONNX defines integer arithmetic.
TEST(Compiler, Int8AddWraps) {
  constexpr int kRows = 3, kCols = 100;
  Builder gb;
  const Dims shape{kRows, kCols};
  const int x = gb.input("x", DType::kI8, shape);
  const int y = gb.input("y", DType::kI8, shape);
  gb.output(gb.node("Add", "add", {x, y}, "z", DType::kI8, shape));
  const Compiled cc = compile(gb.g);

  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d(-128, 127);
  Bytes xb, yb;
  for (int i = 0; i < kRows * kCols; ++i) {
    xb.push_back(static_cast<std::uint8_t>(d(rng)));
    yb.push_back(static_cast<std::uint8_t>(d(rng)));
  }
  xb[0] = 127, yb[0] = 1;      // 128 wraps to -128
  xb[1] = 0x80, yb[1] = 0x80;  // -256 wraps to 0
  xb[2] = 100, yb[2] = 0x9c;   // 100 + -100 = 0
  const auto out = simulate(cc, {xb, yb});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), xb.size());
  int wrapped = 0;
  for (std::size_t i = 0; i < xb.size(); ++i) {
    const int sum = static_cast<std::int8_t>(xb[i]) + static_cast<std::int8_t>(yb[i]);
    wrapped += sum < -128 || sum > 127;
    const auto want = static_cast<std::int8_t>(static_cast<std::uint8_t>(sum & 0xff));
    EXPECT_EQ(static_cast<std::int8_t>(out[0][i]), want) << "element " << i << ": " << sum;
  }
  EXPECT_GT(wrapped, 10);
  EXPECT_EQ(static_cast<std::int8_t>(out[0][0]), -128);
  EXPECT_EQ(out[0][1], 0);
}

// fp16 [8,64] x [64,48]: one MXM pass, summed exactly and rounded once to fp32, then cast to fp16.
TEST(Compiler, Fp16MatMul) {
  constexpr int kM = 8, kK = 64, kN = 48;
  const auto av = uniform_fp16(kM * kK, -1.0f, 1.0f, 11);
  const auto bv = uniform_fp16(kK * kN, -1.0f, 1.0f, 12);
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {kM, kK});
  const int b = gb.constant("b", DType::kFp16, {kK, kN}, f16_bytes(bv));
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp16, {kM, kN}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f16_bytes(av)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  matmul_double(av, bv, kM, kK, kN, want, mag);
  std::vector<double> scale(want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    scale[i] = std::fabs(want[i]);
  // The result rounds once to fp16 (2^-11 relative); 1e-6 covers fp16's subnormal spacing.
  expect_close(f16_values(out[0]), want, scale, 1e-3, 1e-6);
}

// fp16 [4,400] x [400,24]: K is wider than a 320-row plane, so the product is cut into K tiles
// accumulated in fp32.
TEST(Compiler, Fp16MatMulWiderThanAPlane) {
  constexpr int kM = 4, kK = 400, kN = 24;
  const auto av = uniform_fp16(kM * kK, -1.0f, 1.0f, 13);
  const auto bv = uniform_fp16(kK * kN, -1.0f, 1.0f, 14);
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {kM, kK});
  const int b = gb.constant("b", DType::kFp16, {kK, kN}, f16_bytes(bv));
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp16, {kM, kN}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f16_bytes(av)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  matmul_double(av, bv, kM, kK, kN, want, mag);
  std::vector<double> scale(want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    scale[i] = std::fabs(want[i]);
  // Two fp32 roundings (one per tile) then one to fp16.
  expect_close(f16_values(out[0]), want, scale, 1e-3, 1e-5);
}

// Batched fp16 [2,8,32] x [2,32,16] with both operands computed (graph inputs): one product per
// batch, the weights placed by the program's input loading in the MXM layout.
TEST(Compiler, Fp16BatchedMatMulOfTwoInputs) {
  constexpr int kB = 2, kM = 8, kK = 32, kN = 16;
  const auto av = uniform_fp16(kB * kM * kK, -1.0f, 1.0f, 21);
  const auto bv = uniform_fp16(kB * kK * kN, -1.0f, 1.0f, 22);
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {kB, kM, kK});
  const int b = gb.input("b", DType::kFp16, {kB, kK, kN});
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp16, {kB, kM, kN}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f16_bytes(av), f16_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  for (int bi = 0; bi < kB; ++bi) {
    std::vector<float> ab(av.begin() + bi * kM * kK, av.begin() + (bi + 1) * kM * kK);
    std::vector<float> bb(bv.begin() + bi * kK * kN, bv.begin() + (bi + 1) * kK * kN);
    std::vector<double> w, m;
    matmul_double(ab, bb, kM, kK, kN, w, m);
    want.insert(want.end(), w.begin(), w.end());
  }
  std::vector<double> scale(want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    scale[i] = std::fabs(want[i]);
  expect_close(f16_values(out[0]), want, scale, 1e-3, 1e-6);
}

// fp32 [5,40] x [40,30]: three fp16 passes (the activations split on the VXM, the constant
// weights on the host). The error bound is relative to sum |a b| (the product sum's scale; a
// relative bound on |y| itself fails wherever the sum cancels).
TEST(Compiler, Fp32MatMul) {
  constexpr int kM = 5, kK = 40, kN = 30;
  const auto av = uniform(kM * kK, -1.0f, 1.0f, 31);
  const auto bv = uniform(kK * kN, -1.0f, 1.0f, 32);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {kM, kK});
  const int b = gb.constant("b", DType::kFp32, {kK, kN}, f32_bytes(bv));
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp32, {kM, kN}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  matmul_double(av, bv, kM, kK, kN, want, mag);
  expect_close(f32_values(out[0]), want, mag, 1e-4);
}

// The same product with computed weights: they are split on the VXM too, and their high part gets
// a copy in the MXM weight layout.
TEST(Compiler, Fp32MatMulOfTwoInputs) {
  constexpr int kM = 5, kK = 40, kN = 30;
  const auto av = uniform(kM * kK, -1.0f, 1.0f, 41);
  const auto bv = uniform(kK * kN, -1.0f, 1.0f, 42);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {kM, kK});
  const int b = gb.input("b", DType::kFp32, {kK, kN});
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp32, {kM, kN}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av), f32_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  matmul_double(av, bv, kM, kK, kN, want, mag);
  expect_close(f32_values(out[0]), want, mag, 1e-4);
}

// Gemm: alpha A B' + beta C with transB (a constant, transposed on the host), alpha 0.5, beta 2
// and a constant bias C [N] (beta folded into it on the host).
TEST(Compiler, GemmAlphaBetaBias) {
  constexpr int kM = 6, kK = 20, kN = 12;
  const float alpha = 0.5f, beta = 2.0f;
  const auto av = uniform(kM * kK, -1.0f, 1.0f, 51);
  const auto bt = uniform(kN * kK, -1.0f, 1.0f, 52);  // B' as stored: [N, K]
  const auto cv = uniform(kN, -1.0f, 1.0f, 53);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {kM, kK});
  const int b = gb.constant("b", DType::kFp32, {kN, kK}, f32_bytes(bt));
  const int c = gb.constant("c", DType::kFp32, {kN}, f32_bytes(cv));
  gb.output(
      gb.node("Gemm", "gemm", {a, b, c}, "y", DType::kFp32, {kM, kN},
              {{"alpha", float_attr(alpha)}, {"beta", float_attr(beta)}, {"transB", int_attr(1)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> bv(static_cast<std::size_t>(kK * kN));
  for (int k = 0; k < kK; ++k)
    for (int n = 0; n < kN; ++n)
      bv[static_cast<std::size_t>(k * kN + n)] = bt[static_cast<std::size_t>(n * kK + k)];
  std::vector<double> want, mag;
  matmul_double(av, bv, kM, kK, kN, want, mag);
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double bias = beta * static_cast<double>(cv[i % kN]);
    want[i] = alpha * want[i] + bias;
    mag[i] = alpha * mag[i] + std::fabs(bias);
  }
  expect_close(f32_values(out[0]), want, mag, 1e-4);
}

// Gemm with a computed bias C [N] (a graph input): beta is a VXM multiply, C a row read again for
// every row of the product.
TEST(Compiler, GemmComputedBias) {
  constexpr int kM = 7, kK = 24, kN = 10;
  const float alpha = 2.0f, beta = 0.25f;
  const auto av = uniform(kM * kK, -1.0f, 1.0f, 61);
  const auto bv = uniform(kK * kN, -1.0f, 1.0f, 62);
  const auto cv = uniform(kN, -4.0f, 4.0f, 63);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {kM, kK});
  const int c = gb.input("c", DType::kFp32, {kN});
  const int b = gb.constant("b", DType::kFp32, {kK, kN}, f32_bytes(bv));
  gb.output(gb.node("Gemm", "gemm", {a, b, c}, "y", DType::kFp32, {kM, kN},
                    {{"alpha", float_attr(alpha)}, {"beta", float_attr(beta)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av), f32_bytes(cv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  matmul_double(av, bv, kM, kK, kN, want, mag);
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double bias = beta * static_cast<double>(cv[i % kN]);
    want[i] = alpha * want[i] + bias;
    mag[i] = alpha * mag[i] + std::fabs(bias);
  }
  expect_close(f32_values(out[0]), want, mag, 1e-4);
}

// A computed column [R,1] added to [R,C]: spread across the lanes on the MXM (fp32 as hi + lo fp16
// parts, so within 2^-21 of the value rather than exact).
TEST(Compiler, LaneBroadcastOfAComputedColumn) {
  constexpr int kRows = 6, kCols = 40;
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {kRows, kCols});
  const int y = gb.input("y", DType::kFp32, {kRows, 1});
  gb.output(gb.node("Add", "add", {x, y}, "z", DType::kFp32, {kRows, kCols}));
  const Compiled cc = compile(gb.g);
  const auto xv = uniform(kRows * kCols, -2.0f, 2.0f, 71);
  const auto yv = uniform(kRows, -2.0f, 2.0f, 72);
  const auto out = simulate(cc, {f32_bytes(xv), f32_bytes(yv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, scale;
  for (int i = 0; i < kRows * kCols; ++i) {
    const double xi = xv[static_cast<std::size_t>(i)], yi = yv[static_cast<std::size_t>(i / kCols)];
    want.push_back(xi + yi);
    scale.push_back(std::fabs(xi) + std::fabs(yi));
  }
  expect_close(f32_values(out[0]), want, scale, 1e-6);
}

// One layer through the ONNX importer: y = relu(x W + bias), W and bias initializers.
TEST(Compiler, OnnxDenseReluLayer) {
  constexpr int kM = 4, kK = 32, kN = 20;
  const auto wv = uniform(kK * kN, -0.5f, 0.5f, 81);
  const auto bv = uniform(kN, -0.5f, 0.5f, 82);
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("dense");
  auto typed = [](onnx::ValueInfoProto* vi, const std::string& name, const Dims& dims) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (auto d : dims)
      tt->mutable_shape()->add_dim()->set_dim_value(d);
  };
  typed(g->add_input(), "x", {kM, kK});
  typed(g->add_output(), "y", {kM, kN});
  auto init = [&](const std::string& name, const Dims& dims, const std::vector<float>& v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims)
      t->add_dims(d);
    const Bytes b = f32_bytes(v);
    t->set_raw_data(std::string(b.begin(), b.end()));
  };
  init("W", {kK, kN}, wv);
  init("bias", {kN}, bv);
  auto node = [&](const std::string& op, const std::vector<std::string>& in,
                  const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op + "_node");
    for (const auto& i : in)
      n->add_input(i);
    n->add_output(out);
  };
  node("MatMul", {"x", "W"}, "xw");
  node("Add", {"xw", "bias"}, "pre");
  node("Relu", {"pre"}, "y");
  const std::string path = testing::TempDir() + "test_compiler_dense_relu.onnx";
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    ASSERT_TRUE(m.SerializeToOstream(&f));
  }
  const Graph graph = compiler::import_onnx(path);
  const Compiled cc = compile(graph);
  const auto xv = uniform(kM * kK, -1.0f, 1.0f, 83);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  matmul_double(xv, wv, kM, kK, kN, want, mag);
  for (std::size_t i = 0; i < want.size(); ++i) {
    want[i] = std::max(0.0, want[i] + bv[i % kN]);
    mag[i] += std::fabs(bv[i % kN]);
  }
  expect_close(f32_values(out[0]), want, mag, 1e-4);
}

// The smallest program, timed by hand from docs/compiler.md's model and the tsp-v1 tables.
//  Placement: the inputs go to the least-used data slices, hemispheres alternating per tensor, one
//  slice per byte plane: a -> mem.w0..w3, b -> mem.e0..e3; the result avoids its operands' slices
//  and takes the next hemisphere (west): y -> mem.w4..w7. MEM slice i of a hemisphere is i + 1
//  positions from the VXM.
//  Reads (mem_read: d_skew 0, d_func 2): the farthest operand slices (w3, e3) are 4 hops away, so
//  their reads go at cycle 0, put the value on the stream at 2, and it reaches the VXM at 6.
//  Add (vxm_simple: d_skew 1, d_func 2): dispatched at 5, reads at 6, result at the VXM at 8.
//  Writes (mem_write: d_skew 1, d_func 1): the value reaches w7 (8 hops) at 16 = the write's access
//  (dispatch 15), stored at 17, complete on the last superlane 19 cycles later: 36.
//  Predicted cycles = the last completion + 1 = 37.
TEST(Compiler, SingleAddCyclesByHand) {
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {1, 4});
  const int b = gb.input("b", DType::kFp32, {1, 4});
  gb.output(gb.node("Add", "add", {a, b}, "y", DType::kFp32, {1, 4}));
  const Compiled cc = compile(gb.g);

  // The placements the derivation assumes.
  std::map<std::string, std::string> where;
  for (const auto& p : cc.s.placements)
    where[p.tensor] = p.where;
  EXPECT_EQ(where["a"], "mem.w0:0+1, mem.w1:0+1, mem.w2:0+1, mem.w3:0+1");
  EXPECT_EQ(where["b"], "mem.e0:0+1, mem.e1:0+1, mem.e2:0+1, mem.e3:0+1");
  EXPECT_EQ(where["y"], "mem.w4:0+1, mem.w5:0+1, mem.w6:0+1, mem.w7:0+1");

  // The same derivation from the architecture's own numbers.
  const arch::Chip& chip = tsp().chip;
  const auto queues = arch::chip_queues(chip);
  auto pos = [&](const char* n) { return arch::find_queue(queues, n)->position; };
  const int hop = chip.streams.hop_cycles;
  const auto& rd = chip.latency_of("mem_read");
  const auto& wr = chip.latency_of("mem_write");
  const auto& add = chip.latency_of("vxm_simple");
  const int vxm = pos("vxm.alu0");
  const int far_in = std::max({std::abs(pos("mem.w3") - vxm), std::abs(pos("mem.e3") - vxm)});
  const int at_vxm = rd.d_skew + rd.d_func + far_in * hop;  // reads dispatched at 0
  const int result = at_vxm + add.d_func;                   // on the stream at the VXM
  const int access = result + std::abs(pos("mem.w7") - vxm) * hop;
  const int done = access + wr.d_func + chip.superlanes - 1;
  EXPECT_EQ(far_in, 4);
  EXPECT_EQ(done + 1, 37);
  EXPECT_EQ(cc.s.cycles, 37u);
  EXPECT_EQ(cc.s.program.predicted_cycles, 37u);

  const auto out = simulate(
      cc, {f32_bytes({1.5f, -2.0f, 3.25f, 1e30f}), f32_bytes({0.25f, 2.0f, -0.125f, 1e30f})});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(f32_values(out[0]), (std::vector<float>{1.75f, 0.0f, 3.125f, 2e30f}));
}

// Two independent Adds in one graph, simulated: the overlapped schedule is still correct.
TEST(Compiler, IndependentAddsSimulated) {
  constexpr int kRows = 8, kCols = 100;
  const Dims shape{kRows, kCols};
  Builder gb;
  const int a = gb.input("a", DType::kFp32, shape);
  const int b = gb.input("b", DType::kFp32, shape);
  const int c = gb.input("c", DType::kFp32, shape);
  const int d = gb.input("d", DType::kFp32, shape);
  gb.output(gb.node("Add", "add1", {a, b}, "y1", DType::kFp32, shape));
  gb.output(gb.node("Add", "add2", {c, d}, "y2", DType::kFp32, shape));
  const Compiled cc = compile(gb.g);
  std::vector<std::vector<float>> in;
  for (unsigned s = 0; s < 4; ++s)
    in.push_back(uniform(kRows * kCols, -3.0f, 3.0f, 90 + s));
  const auto out =
      simulate(cc, {f32_bytes(in[0]), f32_bytes(in[1]), f32_bytes(in[2]), f32_bytes(in[3])});
  ASSERT_EQ(out.size(), 2u);
  const auto y1 = f32_values(out[0]), y2 = f32_values(out[1]);
  ASSERT_EQ(y1.size(), in[0].size());
  ASSERT_EQ(y2.size(), in[0].size());
  for (std::size_t i = 0; i < y1.size(); ++i) {
    EXPECT_EQ(y1[i], in[0][i] + in[1][i]) << i;
    EXPECT_EQ(y2[i], in[2][i] + in[3][i]) << i;
  }
}

// --- scheduling only ----------------------------------------------------------------------------

// Independent steps overlap: two Adds on disjoint inputs take fewer cycles together than one after
// the other.
TEST(CompilerSchedule, IndependentStepsOverlap) {
  constexpr int kRows = 8, kCols = 100;
  const Dims shape{kRows, kCols};
  auto one = [&](const std::string& tag) {
    Builder gb;
    const int a = gb.input("a" + tag, DType::kFp32, shape);
    const int b = gb.input("b" + tag, DType::kFp32, shape);
    gb.output(gb.node("Add", "add" + tag, {a, b}, "y" + tag, DType::kFp32, shape));
    return compile(gb.g).s.cycles;
  };
  const std::uint64_t alone1 = one("1"), alone2 = one("2");
  Builder gb;
  const int a = gb.input("a", DType::kFp32, shape);
  const int b = gb.input("b", DType::kFp32, shape);
  const int c = gb.input("c", DType::kFp32, shape);
  const int d = gb.input("d", DType::kFp32, shape);
  gb.output(gb.node("Add", "add1", {a, b}, "y1", DType::kFp32, shape));
  gb.output(gb.node("Add", "add2", {c, d}, "y2", DType::kFp32, shape));
  const Compiled both = compile(gb.g);
  EXPECT_EQ(both.s.program.predicted_cycles, both.s.cycles);
  EXPECT_GE(both.s.cycles, std::max(alone1, alone2));
  EXPECT_LT(both.s.cycles, alone1 + alone2)
      << "alone " << alone1 << " + " << alone2 << ", together " << both.s.cycles;
  EXPECT_EQ(both.s.vxm_busy, 2u * kRows);
}

// A dependent chain cannot overlap that way: each step waits for its operand's rows.
TEST(CompilerSchedule, DependentStepsFollowEachOther) {
  const Dims shape{8, 100};
  Builder one;
  {
    const int a = one.input("a", DType::kFp32, shape);
    const int b = one.input("b", DType::kFp32, shape);
    one.output(one.node("Add", "add1", {a, b}, "y", DType::kFp32, shape));
  }
  Builder two;
  {
    const int a = two.input("a", DType::kFp32, shape);
    const int b = two.input("b", DType::kFp32, shape);
    const int s = two.node("Add", "add1", {a, b}, "s", DType::kFp32, shape);
    two.output(two.node("Relu", "relu", {s}, "y", DType::kFp32, shape));
  }
  const auto c1 = compile(one.g).s.cycles, c2 = compile(two.g).s.cycles;
  EXPECT_GT(c2, c1);
}

// Vectors MEM write instructions of the program store (a write with repeats counts each).
std::uint64_t vectors_written(const isa::Program& p) {
  std::uint64_t n = 0;
  for (const auto& cp : p.chips)
    for (const auto& q : cp.queues)
      for (std::size_t i = 0; i < q.entries.size(); ++i) {
        if (std::string(q.entries[i].instr.info().mnemonic) != "write") continue;
        n += 1;
        if (i + 1 < q.entries.size() &&
            std::string(q.entries[i + 1].instr.info().mnemonic) == "repeat")
          n += q.entries[i + 1].instr.arg[0];
      }
  return n;
}

// Point-wise steps in a row pass their values ALU to ALU on streams: the value only the next
// step reads never goes to MEM, one another node reads does; the chain is faster than the steps
// one after another (a schedule keeping every tensor, as lpu verify --probe asks for), and the
// values are exact.
TEST(CompilerSchedule, PointwiseChainPassesValuesAluToAlu) {
  constexpr int kRows = 1500, kCols = 64;
  const Dims shape{kRows, kCols};
  Builder gb;
  const int x = gb.input("x", DType::kFp32, shape);
  const int w = gb.input("w", DType::kFp32, shape);
  const int c = gb.input("c", DType::kFp32, shape);
  const int s = gb.node("Add", "add", {x, w}, "s", DType::kFp32, shape);
  const int r = gb.node("Relu", "relu", {s}, "r", DType::kFp32, shape);
  gb.output(gb.node("Mul", "mul", {r, c}, "y", DType::kFp32, shape));
  gb.output(gb.node("Sub", "sub", {s, x}, "z", DType::kFp32, shape));
  const Compiled cc = compile(gb.g);
  // s, y and z (4 byte planes each) go to MEM; r does not.
  constexpr std::uint64_t kTensor = static_cast<std::uint64_t>(kRows) * 4;
  EXPECT_EQ(vectors_written(cc.s.program), 3 * kTensor);
  Compiled apart;
  apart.k = cc.k;
  compiler::ScheduleOptions no_reuse;
  no_reuse.reuse_memory = false;
  apart.s = compiler::schedule(apart.k, tsp(), "test", no_reuse);
  EXPECT_EQ(vectors_written(apart.s.program), 4 * kTensor);
  EXPECT_LT(cc.s.cycles, apart.s.cycles);
  const auto xv = uniform(kRows * kCols, -2, 2, 81), wv = uniform(kRows * kCols, -2, 2, 82),
             cv = uniform(kRows * kCols, -2, 2, 83);
  const auto out = simulate(cc, {f32_bytes(xv), f32_bytes(wv), f32_bytes(cv)});
  ASSERT_EQ(out.size(), 2u);
  const auto y = f32_values(out[0]), z = f32_values(out[1]);
  ASSERT_EQ(y.size(), xv.size());
  for (std::size_t i = 0; i < y.size(); ++i) {
    const float sum = xv[i] + wv[i];
    ASSERT_EQ(y[i], std::max(sum, 0.0f) * cv[i]) << i;
    ASSERT_EQ(z[i], sum - xv[i]) << i;
  }
}

// --- errors (no simulation) ---------------------------------------------------------------------

TEST(CompilerErrors, UnsupportedOperatorNamesNodeAndOperator) {
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {1, 1, 5, 5});
  const auto wv = uniform(9, -1.0f, 1.0f, 5);
  const int w = gb.constant("w", DType::kFp32, {1, 1, 3, 3}, f32_bytes(wv));
  gb.output(gb.node("ConvTranspose", "deconv_7", {x, w}, "y", DType::kFp32, {1, 1, 7, 7}));
  const std::string msg = compile_error(gb.g);
  expect_mentions(msg, {"test", "node 'deconv_7'", "ConvTranspose", "not supported"});
}

TEST(CompilerErrors, UnsupportedAttribute) {
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {2, 8});
  gb.output(gb.node("LeakyRelu", "leaky", {x}, "y", DType::kFp32, {2, 8},
                    {{"alpha", float_attr(0.1f)}, {"gamma", float_attr(2.0f)}}));
  expect_mentions(compile_error(gb.g), {"node 'leaky'", "LeakyRelu", "attribute 'gamma'"});

  Builder add;
  const int a = add.input("a", DType::kFp32, {2, 8});
  const int b = add.input("b", DType::kFp32, {2, 8});
  add.output(
      add.node("Add", "add_0", {a, b}, "y", DType::kFp32, {2, 8}, {{"broadcast", int_attr(1)}}));
  expect_mentions(compile_error(add.g), {"node 'add_0'", "(Add)", "attribute 'broadcast'"});
}

TEST(CompilerErrors, UnsupportedType) {
  Builder gb;
  const int x = gb.input("x", DType::kI8, {2, 8});
  gb.output(gb.node("Tanh", "tanh_i8", {x}, "y", DType::kI8, {2, 8}));
  expect_mentions(compile_error(gb.g), {"node 'tanh_i8'", "Tanh", "i8", "not supported"});
}

TEST(CompilerErrors, ShapesThatDoNotBroadcast) {
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {3, 4});
  const int b = gb.input("b", DType::kFp32, {5, 4});
  gb.output(gb.node("Add", "add_bad", {a, b}, "y", DType::kFp32, {3, 4}));
  expect_mentions(compile_error(gb.g), {"node 'add_bad'", "[3,4]", "[5,4]", "do not broadcast"});
}

// A computed tensor broadcast other than along rows (or a column across lanes) is rejected.
TEST(CompilerErrors, UnsupportedBroadcastOfAComputedTensor) {
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {3, 4, 6});
  const int b = gb.input("b", DType::kFp32, {3, 1, 6});
  gb.output(gb.node("Mul", "mul_b", {a, b}, "y", DType::kFp32, {3, 4, 6}));
  expect_mentions(compile_error(gb.g), {"node 'mul_b'", "'b' [3,1,6]", "[3,4,6]", "not supported"});
}

// A computed operand broadcast along the leading dimensions ([4, 6] against [3, 4, 6]): its four
// rows are read again, cyclically, for each of the three blocks (one read with a repeat each).
TEST(Compiler, LeadingBroadcastOfAComputedTensorIsReadCyclically) {
  const auto av = uniform(3 * 4 * 6, -2, 2, 81), bv = uniform(4 * 6, -2, 2, 82);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {3, 4, 6});
  const int b = gb.input("b", DType::kFp32, {4, 6});
  gb.output(gb.node("Mul", "mul_b", {a, b}, "y", DType::kFp32, {3, 4, 6}));
  const auto out = simulate(compile(gb.g), {f32_bytes(av), f32_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f32_values(out[0]);
  for (std::size_t i = 0; i < av.size(); ++i)
    EXPECT_EQ(got[i], av[i] * bv[i % bv.size()]) << i;
}

TEST(CompilerErrors, MatMulWiderThanAPlane) {
  // K = 400 is more than a plane's 320 rows. Products are cut into tiles only when the planes are
  // as wide as the vector; with narrower planes the product is an error naming the sizes.
  const arch::Arch narrow =
      arch::load("tsp-v1", std::vector<std::string>{"chip.mxm.rows=160", "chip.mxm.cols=160"});
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {2, 400});
  const int b = gb.input("b", DType::kFp16, {400, 8});
  gb.output(gb.node("MatMul", "mm_wide", {a, b}, "y", DType::kFp16, {2, 8}));
  expect_mentions(compile_error(gb.g, narrow),
                  {"node 'mm_wide'", "MatMul", "K = 400", "N = 8", "160 x 160"});
}

TEST(CompilerErrors, MatMulInnerDimensionsDiffer) {
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {2, 16});
  const int b = gb.input("b", DType::kFp16, {12, 8});
  gb.output(gb.node("MatMul", "mm_k", {a, b}, "y", DType::kFp16, {2, 8}));
  expect_mentions(compile_error(gb.g), {"node 'mm_k'", "[2,16]", "[12,8]"});
}

TEST(CompilerErrors, TensorThatDoesNotFitInMem) {
  Builder gb;
  // 200000 rows of four byte planes: more than a hemisphere's 42 data slices x 8192 addresses
  // hold even in chunks.
  const int a = gb.input("huge", DType::kFp32, {200000, 8});
  const int b = gb.input("b", DType::kFp32, {200000, 8});
  gb.output(gb.node("Add", "add", {a, b}, "y", DType::kFp32, {200000, 8}));
  expect_mentions(compile_error(gb.g), {"tensor 'huge'", "200000", "8192"});
}

TEST(CompilerErrors, TensorThatDoesNotFitInASmallMem) {
  const arch::Arch small = arch::load("tsp-v1", std::vector<std::string>{"chip.mem.depth=64"});
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {40, 8});
  const int b = gb.input("b", DType::kFp32, {40, 8});
  const int s = gb.node("Add", "add1", {a, b}, "s", DType::kFp32, {40, 8});
  const int big = gb.input("big", DType::kFp32, {1000, 8});
  gb.output(s);
  gb.output(gb.node("Relu", "relu", {big}, "r", DType::kFp32, {1000, 8}));
  expect_mentions(compile_error(gb.g, small), {"tensor 'big'", "1000 vectors", "depth 64"});
  // The same graph fits the default depth.
  EXPECT_EQ(compile_error(gb.g), "(no error)");
}

// --- operators built from VXM, MXM and SXM steps (one simulation each) --------------------------

// Softmax over the last axis of fp32 [4,37]: values of either sign up to 80, rows whose exp would
// overflow (up to 100) or underflow (down to -100) without subtracting the row maximum, and a
// row of equal values. Relative to the exact value; the absolute 1e-37 covers results below fp32's
// normal range (e^-88 and less), which the chip may flush or round as subnormals.
TEST(Compiler, SoftmaxOfLargeValues) {
  constexpr int kRows = 4, kCols = 37;
  std::vector<float> xv = uniform(kCols, -80.0f, 80.0f, 101);
  const std::vector<float> equal(kCols, 80.0f);
  const auto high = uniform(kCols, 70.0f, 100.0f, 102), low = uniform(kCols, -100.0f, -70.0f, 103);
  for (const auto* row : {&equal, &high, &low})
    xv.insert(xv.end(), row->begin(), row->end());
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {kRows, kCols});
  gb.output(gb.node("Softmax", "softmax", {x}, "y", DType::kFp32, {kRows, kCols},
                    {{"axis", int_attr(-1)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, scale;
  for (int r = 0; r < kRows; ++r) {
    const float* row = &xv[static_cast<std::size_t>(r * kCols)];
    double mx = row[0], sum = 0.0;
    for (int j = 0; j < kCols; ++j)
      mx = std::max(mx, static_cast<double>(row[j]));
    for (int j = 0; j < kCols; ++j)
      sum += std::exp(static_cast<double>(row[j]) - mx);
    for (int j = 0; j < kCols; ++j) {
      want.push_back(std::exp(static_cast<double>(row[j]) - mx) / sum);
      scale.push_back(want.back());
    }
  }
  const auto got = f32_values(out[0]);
  expect_close(got, want, scale, 1e-5, 1e-37);
  // The row of equal values is exactly uniform up to rounding; every row sums to 1.
  for (int r = 0; r < kRows; ++r) {
    double total = 0.0;
    for (int j = 0; j < kCols; ++j)
      total += got[static_cast<std::size_t>(r * kCols + j)];
    EXPECT_NEAR(total, 1.0, 1e-5) << "row " << r;
  }
}

namespace {

// Bit patterns that a copy must keep: -0, a subnormal, infinities, the largest float.
std::vector<float> with_specials(std::vector<float> v) {
  const float specials[] = {-0.0f, 1e-40f, INFINITY, -INFINITY, 3.4028235e38f};
  for (std::size_t i = 0; i < std::size(specials) && i < v.size(); ++i)
    v[i * 3 % v.size()] = specials[i];
  return v;
}

void expect_same_bits(const Bytes& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size() * 4);
  const auto g = f32_values(got);
  int bad = 0;
  for (std::size_t i = 0; i < want.size() && bad < 5; ++i)
    if (func::float_bits(g[i]) != func::float_bits(want[i])) {
      ADD_FAILURE() << "element " << i << ": got " << g[i] << ", want " << want[i];
      ++bad;
    }
}

}  // namespace

// Concat of [3,5] and [3,7] along the last axis (SXM shift and select): [3,12], an exact copy.
TEST(Compiler, ConcatAlongTheLastAxis) {
  const auto av = with_specials(uniform(3 * 5, -4.0f, 4.0f, 111));
  const auto bv = uniform(3 * 7, -4.0f, 4.0f, 112);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {3, 5});
  const int b = gb.input("b", DType::kFp32, {3, 7});
  gb.output(
      gb.node("Concat", "concat", {a, b}, "y", DType::kFp32, {3, 12}, {{"axis", int_attr(-1)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av), f32_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> want;
  for (int r = 0; r < 3; ++r) {
    want.insert(want.end(), av.begin() + r * 5, av.begin() + (r + 1) * 5);
    want.insert(want.end(), bv.begin() + r * 7, bv.begin() + (r + 1) * 7);
  }
  expect_same_bits(out[0], want);
}

// Concat of [2,6] and [3,6] along axis 0 (row copies): [5,6], the rows of a then those of b.
TEST(Compiler, ConcatAlongTheFirstAxis) {
  const auto av = with_specials(uniform(2 * 6, -4.0f, 4.0f, 121));
  const auto bv = uniform(3 * 6, -4.0f, 4.0f, 122);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {2, 6});
  const int b = gb.input("b", DType::kFp32, {3, 6});
  gb.output(
      gb.node("Concat", "concat0", {a, b}, "y", DType::kFp32, {5, 6}, {{"axis", int_attr(0)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av), f32_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> want = av;
  want.insert(want.end(), bv.begin(), bv.end());
  expect_same_bits(out[0], want);
}

// Concat of [2,2,4] and [2,3,4] along axis 1: [2,5,4], per index of axis 0 the rows of a then b.
TEST(Compiler, ConcatAlongAMiddleAxis) {
  const auto av = with_specials(uniform(2 * 2 * 4, -4.0f, 4.0f, 131));
  const auto bv = uniform(2 * 3 * 4, -4.0f, 4.0f, 132);
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {2, 2, 4});
  const int b = gb.input("b", DType::kFp32, {2, 3, 4});
  gb.output(
      gb.node("Concat", "concat1", {a, b}, "y", DType::kFp32, {2, 5, 4}, {{"axis", int_attr(1)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av), f32_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> want;
  for (int i = 0; i < 2; ++i) {
    want.insert(want.end(), av.begin() + i * 8, av.begin() + (i + 1) * 8);
    want.insert(want.end(), bv.begin() + i * 12, bv.begin() + (i + 1) * 12);
  }
  expect_same_bits(out[0], want);
}

// Slice of columns 3 .. 10 of [2,20] (starts 3, ends 11, axes -1): a shift south and a mask.
TEST(Compiler, SliceOfTheLastAxis) {
  const auto xv = with_specials(uniform(2 * 20, -4.0f, 4.0f, 141));
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {2, 20});
  const int starts = gb.ints("starts", {3}), ends = gb.ints("ends", {11});
  const int axes = gb.ints("axes", {-1});
  gb.output(gb.node("Slice", "slice", {x, starts, ends, axes}, "y", DType::kFp32, {2, 8}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> want;
  for (int r = 0; r < 2; ++r)
    want.insert(want.end(), xv.begin() + r * 20 + 3, xv.begin() + r * 20 + 11);
  expect_same_bits(out[0], want);
}

// Div of fp32 values of both signs by divisors of both signs from 0.01 to 100 in magnitude:
// a times sign(b) rsqrt(|b|)^2.
TEST(Compiler, Fp32DivMixedSigns) {
  constexpr int kRows = 4, kCols = 30;
  const auto av = uniform(kRows * kCols, -10.0f, 10.0f, 151);
  const auto mag = uniform(kRows * kCols, -2.0f, 2.0f, 152);
  const auto sign = uniform(kRows * kCols, -1.0f, 1.0f, 153);
  std::vector<float> bv;
  for (std::size_t i = 0; i < mag.size(); ++i)
    bv.push_back((sign[i] < 0 ? -1.0f : 1.0f) * std::pow(10.0f, mag[i]));
  Builder gb;
  const int a = gb.input("a", DType::kFp32, {kRows, kCols});
  const int b = gb.input("b", DType::kFp32, {kRows, kCols});
  gb.output(gb.node("Div", "div", {a, b}, "y", DType::kFp32, {kRows, kCols}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(av), f32_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, scale;
  int negative = 0;
  for (std::size_t i = 0; i < av.size(); ++i) {
    want.push_back(static_cast<double>(av[i]) / static_cast<double>(bv[i]));
    scale.push_back(std::fabs(want.back()));
    negative += bv[i] < 0;
  }
  EXPECT_GT(negative, 20);
  EXPECT_LT(negative, kRows * kCols - 20);
  expect_close(f32_values(out[0]), want, scale, 1e-6);
}

// Sqrt as x rsqrt(x): +0, -0 and +inf come out exactly (IEEE: sqrt(-0) = -0), a negative input
// is NaN, everything else (1e-30 .. 1e30) within 1e-6 relative.
TEST(Compiler, Fp32SqrtWithZeroAndInfinity) {
  constexpr int kRows = 2, kCols = 40;
  std::vector<float> xv;
  for (const float e : uniform(kRows * kCols, -30.0f, 30.0f, 161))
    xv.push_back(std::pow(10.0f, e));
  xv[0] = 0.0f, xv[1] = INFINITY, xv[2] = -0.0f, xv[3] = -4.0f, xv[4] = 1.0f, xv[5] = 4.0f;
  xv[41] = 0.0f, xv[42] = INFINITY;
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {kRows, kCols});
  gb.output(gb.node("Sqrt", "sqrt", {x}, "y", DType::kFp32, {kRows, kCols}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f32_values(out[0]);
  ASSERT_EQ(got.size(), xv.size());
  std::vector<float> g2;
  std::vector<double> want, scale;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const float xi = xv[i];
    if (xi == 0.0f || std::isinf(xi)) {
      EXPECT_EQ(func::float_bits(got[i]), func::float_bits(xi)) << "sqrt(" << xi << ")";
    } else if (xi < 0.0f) {
      EXPECT_TRUE(std::isnan(got[i])) << "sqrt(" << xi << ") = " << got[i];
    } else {
      g2.push_back(got[i]);
      want.push_back(std::sqrt(static_cast<double>(xi)));
      scale.push_back(want.back());
    }
  }
  EXPECT_EQ(got[4], 1.0f);
  EXPECT_EQ(got[5], 2.0f);
  expect_close(g2, want, scale, 1e-6);
}

// Erf over [-3, 3] (Abramowitz & Stegun 7.1.26, the Taylor series below |x| = 0.01): within 3e-7
// of erf in double, including 0, the cut at +-0.01, the ends, and +-0.040797 (where 1 - q e,
// evaluated in fp32, cancels worst: about 7e-7 off with the current lowering).
TEST(Compiler, Fp32ErfOverMinus3To3) {
  constexpr int kRows = 3, kCols = 50;
  std::vector<float> xv;
  for (int i = 0; i < 100; ++i)
    xv.push_back(-3.0f + 6.0f * static_cast<float>(i) / 99.0f);
  for (const float s : {0.0f, -0.0f, 0.01f, -0.01f, 0.0099999f, -0.0100001f, 1e-5f, -1e-7f,
                        0.040797f, -0.040797f, 3.0f, -3.0f, 0.5f, -0.5f, 2.0f, -2.0f})
    xv.push_back(s);
  const auto rest = uniform(static_cast<std::size_t>(kRows * kCols) - xv.size(), -3.0f, 3.0f, 171);
  xv.insert(xv.end(), rest.begin(), rest.end());
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {kRows, kCols});
  gb.output(gb.node("Erf", "erf", {x}, "y", DType::kFp32, {kRows, kCols}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, scale(xv.size(), 0.0);
  for (float xi : xv)
    want.push_back(std::erf(static_cast<double>(xi)));
  expect_close(f32_values(out[0]), want, scale, 0.0, 3e-7);
}

// LayerNormalization of fp32 [5,96] over the last axis with a scale and a bias (constants) and
// the default epsilon; rows with different offsets and spreads. The bound is relative to
// |scale| (|normalised| + 1) + |bias|: the mean's rounding error is relative to the row's
// magnitude, so an output that cancels to near 0 is not held to its own size.
TEST(Compiler, Fp32LayerNormalization) {
  constexpr int kRows = 5, kCols = 96;
  std::vector<float> xv;
  const float offset[kRows] = {0.0f, 5.0f, -3.0f, 0.5f, 100.0f};
  const float spread[kRows] = {1.0f, 2.0f, 0.1f, 10.0f, 1.0f};
  for (int r = 0; r < kRows; ++r)
    for (float u : uniform(kCols, -1.0f, 1.0f, 181 + static_cast<unsigned>(r)))
      xv.push_back(offset[r] + spread[r] * u);
  const auto sv = uniform(kCols, -1.5f, 1.5f, 191), bv = uniform(kCols, -1.0f, 1.0f, 192);
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {kRows, kCols});
  const int scale = gb.constant("scale", DType::kFp32, {kCols}, f32_bytes(sv));
  const int bias = gb.constant("bias", DType::kFp32, {kCols}, f32_bytes(bv));
  gb.output(gb.node("LayerNormalization", "ln", {x, scale, bias}, "y", DType::kFp32, {kRows, kCols},
                    {{"axis", int_attr(-1)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, mag;
  for (int r = 0; r < kRows; ++r) {
    const float* row = &xv[static_cast<std::size_t>(r * kCols)];
    double mean = 0.0, var = 0.0;
    for (int j = 0; j < kCols; ++j)
      mean += row[j];
    mean /= kCols;
    for (int j = 0; j < kCols; ++j)
      var += (row[j] - mean) * (row[j] - mean);
    var /= kCols;
    const double inv = 1.0 / std::sqrt(var + 1e-5);
    for (int j = 0; j < kCols; ++j) {
      const double xhat = (row[j] - mean) * inv;
      want.push_back(xhat * sv[static_cast<std::size_t>(j)] + bv[static_cast<std::size_t>(j)]);
      mag.push_back(std::fabs(sv[static_cast<std::size_t>(j)]) * (std::fabs(xhat) + 1.0) +
                    std::fabs(bv[static_cast<std::size_t>(j)]));
    }
  }
  expect_close(f32_values(out[0]), want, mag, 1e-4);
}

// ReduceMean of fp32 [6,50] over the last axis, keepdims: [6,1]. Relative to the mean of |x| (the
// sum's scale), rows of mixed signs, one all positive, one all negative.
TEST(Compiler, Fp32ReduceMeanKeepdims) {
  constexpr int kRows = 6, kCols = 50;
  auto xv = uniform(kRows * kCols, -5.0f, 5.0f, 201);
  for (int j = 0; j < kCols; ++j) {
    xv[static_cast<std::size_t>(kCols + j)] = std::fabs(xv[static_cast<std::size_t>(kCols + j)]);
    xv[static_cast<std::size_t>(2 * kCols + j)] =
        -std::fabs(xv[static_cast<std::size_t>(2 * kCols + j)]) - 100.0f;
  }
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {kRows, kCols});
  gb.output(gb.node("ReduceMean", "mean", {x}, "y", DType::kFp32, {kRows, 1},
                    {{"axes", ints_attr({-1})}, {"keepdims", int_attr(1)}}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, scale;
  for (int r = 0; r < kRows; ++r) {
    double sum = 0.0, abs_sum = 0.0;
    for (int j = 0; j < kCols; ++j) {
      sum += xv[static_cast<std::size_t>(r * kCols + j)];
      abs_sum += std::fabs(xv[static_cast<std::size_t>(r * kCols + j)]);
    }
    want.push_back(sum / kCols);
    scale.push_back(abs_sum / kCols);
  }
  expect_close(f32_values(out[0]), want, scale, 1e-6);
}

// A reshape that keeps the last dimension is a view: relu -> Reshape [2,3,8] to [-1,8] -> neg takes
// exactly the instructions and cycles of relu -> neg on [6,8], and computes the same.
TEST(Compiler, ReshapeKeepingTheLastDimensionIsAView) {
  Builder plain;
  {
    const int x = plain.input("x", DType::kFp32, {6, 8});
    const int r = plain.node("Relu", "relu", {x}, "r", DType::kFp32, {6, 8});
    plain.output(plain.node("Neg", "neg", {r}, "y", DType::kFp32, {6, 8}));
  }
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {2, 3, 8});
  const int r = gb.node("Relu", "relu", {x}, "r", DType::kFp32, {2, 3, 8});
  const int v =
      gb.node("Reshape", "reshape", {r, gb.ints("shape", {-1, 8})}, "v", DType::kFp32, {6, 8});
  gb.output(gb.node("Neg", "neg", {v}, "y", DType::kFp32, {6, 8}));
  const Compiled without = compile(plain.g);
  const Compiled cc = compile(gb.g);
  EXPECT_EQ(cc.k.steps.size(), without.k.steps.size());
  EXPECT_EQ(cc.s.program.instruction_count(), without.s.program.instruction_count());
  EXPECT_EQ(cc.s.cycles, without.s.cycles);

  const auto xv = uniform(48, -2.0f, 2.0f, 211);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f32_values(out[0]);
  ASSERT_EQ(got.size(), xv.size());
  for (std::size_t i = 0; i < xv.size(); ++i)
    EXPECT_EQ(got[i], -std::max(xv[i], 0.0f)) << i;
}

// fp16 MatMul of A [1,4,32] (one batch, used for each) by B [3,32,16]: [3,4,16].
TEST(Compiler, Fp16MatMulOneABatchForThreeBBatches) {
  constexpr int kB = 3, kM = 4, kK = 32, kN = 16;
  const auto av = uniform_fp16(kM * kK, -1.0f, 1.0f, 221);
  const auto bv = uniform_fp16(kB * kK * kN, -1.0f, 1.0f, 222);
  Builder gb;
  const int a = gb.input("a", DType::kFp16, {1, kM, kK});
  const int b = gb.input("b", DType::kFp16, {kB, kK, kN});
  gb.output(gb.node("MatMul", "mm", {a, b}, "y", DType::kFp16, {kB, kM, kN}));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f16_bytes(av), f16_bytes(bv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want;
  for (int bi = 0; bi < kB; ++bi) {
    std::vector<float> bb(bv.begin() + bi * kK * kN, bv.begin() + (bi + 1) * kK * kN);
    std::vector<double> w, m;
    matmul_double(av, bb, kM, kK, kN, w, m);
    want.insert(want.end(), w.begin(), w.end());
  }
  std::vector<double> scale(want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    scale[i] = std::fabs(want[i]);
  expect_close(f16_values(out[0]), want, scale, 1e-3, 1e-6);
}

// A reshape that changes the last dimension of a computed tensor needs lanes moved between
// vectors: an error naming the node, the tensor and both shapes.
TEST(CompilerErrors, ReshapeChangingTheLastDimension) {
  Builder gb;
  // Rows of 6 into rows of 8: neither divides the other (merging or splitting rows is supported).
  const int x = gb.input("x", DType::kFp32, {4, 6});
  const int r = gb.node("Relu", "relu", {x}, "r", DType::kFp32, {4, 6});
  gb.output(
      gb.node("Reshape", "reshape_rows", {r, gb.ints("shape", {3, 8})}, "y", DType::kFp32, {3, 8}));
  expect_mentions(compile_error(gb.g),
                  {"node 'reshape_rows'", "Reshape", "'r'", "[4,6]", "[3,8]", "last dimension"});
}

// --- Gather ----------------------------------------------------------------------------------

// Constant indices along a middle axis of a computed tensor (negative one included): row moves.
TEST(Compiler, GatherWithConstantIndicesMovesRows) {
  const auto xv = uniform(5 * 3 * 7, -1, 1, 91);
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {5, 3, 7});
  const int idx = gb.ints("idx", {2, 0, -1, 1});
  gb.output(
      gb.node("Gather", "g", {x, idx}, "y", DType::kFp32, {5, 4, 7}, {{"axis", int_attr(1)}}));
  const auto out = simulate(compile(gb.g), {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f32_values(out[0]);
  const int pick[4] = {2, 0, 2, 1};
  for (int a = 0; a < 5; ++a)
    for (int i = 0; i < 4; ++i)
      for (int c = 0; c < 7; ++c)
        EXPECT_EQ(got[static_cast<std::size_t>((a * 4 + i) * 7 + c)],
                  xv[static_cast<std::size_t>((a * 3 + pick[i]) * 7 + c)]);
}

// An embedding lookup: int32 token ids (an input) into a constant fp16 table [1000, 64]: a
// one-hot product on the MXM returns the table's rows exactly; an id out of range gives zeros.
TEST(Compiler, GatherEmbeddingLookupIsExact) {
  constexpr int kV = 1000, kD = 64, kN = 6;
  const auto tv = uniform_fp16(kV * kD, -1, 1, 92);
  Builder gb;
  const int t = gb.constant("table", DType::kFp16, {kV, kD}, f16_bytes(tv));
  const int ids = gb.input("ids", DType::kI32, {kN});
  gb.output(gb.node("Gather", "embed", {t, ids}, "y", DType::kFp16, {kN, kD}));
  const std::int32_t idv[kN] = {0, 999, 321, 640, 1000, 7};
  Bytes ib(sizeof(idv));
  std::memcpy(ib.data(), idv, sizeof(idv));
  const auto out = simulate(compile(gb.g), {ib});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f16_values(out[0]);
  for (int i = 0; i < kN; ++i)
    for (int c = 0; c < kD; ++c)
      EXPECT_EQ(got[static_cast<std::size_t>(i * kD + c)],
                idv[i] < kV ? tv[static_cast<std::size_t>(idv[i] * kD + c)] : 0.0f)
          << "row " << i << " column " << c;
}

TEST(CompilerErrors, GatherWithInt64IndicesInput) {
  Builder gb;
  const int t = gb.constant("table", DType::kFp16, {10, 4}, Bytes(80, 0));
  const int ids = gb.input("ids", DType::kNone, {3});
  gb.output(gb.node("Gather", "embed", {t, ids}, "y", DType::kFp16, {3, 4}));
  expect_mentions(compile_error(gb.g), {"'ids'", "int64"});
}

// Ids of shape [2, 3] (negative ones counted from the end) give [2, 3, D]; the lookup stays exact
// at int8 precision (the one-hot product is never quantized).
TEST(Compiler, GatherEmbeddingKeepsTheIndicesShape) {
  constexpr int kV = 10, kD = 4;
  const auto tv = uniform_fp16(kV * kD, -1, 1, 93);
  Builder gb;
  const int t = gb.constant("table", DType::kFp16, {kV, kD}, f16_bytes(tv));
  const int ids = gb.input("ids", DType::kI32, {2, 3});
  const int g = gb.node("Gather", "embed", {t, ids}, "e", DType::kFp16, {2, 3, kD});
  gb.output(gb.node("ReduceSum", "sum", {g, gb.ints("axes", {1})}, "y", DType::kFp16, {2, 1, kD},
                    {{"keepdims", int_attr(1)}}));
  compiler::LowerOptions o;
  o.precision = compiler::Precision::kInt8;
  const Compiled cc = compile_with(gb.g, o);
  const std::int32_t idv[6] = {0, -1, 3, 9, 2, -10};
  Bytes ib(sizeof(idv));
  std::memcpy(ib.data(), idv, sizeof(idv));
  const auto out = simulate(cc, {ib});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f16_values(out[0]);
  ASSERT_EQ(got.size(), 2u * kD);
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < kD; ++c) {
      float sum = 0;  // fp32 sums of three fp16 values, rounded once to fp16
      for (int i = 0; i < 3; ++i) {
        const int id = idv[b * 3 + i] < 0 ? idv[b * 3 + i] + kV : idv[b * 3 + i];
        sum += tv[static_cast<std::size_t>(id * kD + c)];
      }
      EXPECT_NEAR(got[static_cast<std::size_t>(b * kD + c)], sum, 2e-3 * (std::fabs(sum) + 1))
          << b << "," << c;
    }
}
