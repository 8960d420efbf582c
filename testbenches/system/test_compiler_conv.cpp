// The compiler end to end for convolutions, pools and int8 products: graphs built here, lowered
// and scheduled for tsp-v1, simulated on the SystemC model (one simulation per test process),
// values against double-precision convolutions written here and cycles simulated = predicted.
#include "compiler_harness.h"

using namespace lpu;
using namespace lpu::test;  // the harness and the graph builder

// --- convolutions and pools (channels-last on the chip) -----------------------------------------

namespace {

// Conv in double over NCHW data: y[n, m, oh, ow] = b[m] + sum x[n, c, ih, iw] w[m, c, i, j] with
// ih = oh s + i - pad_top (zero outside), likewise for the width; `mag` gets sum |x w|.
struct ConvShape {
  int n, c, h, w, m, k, stride, pt, pl, pb, pr;
  int kw = 0, sw = 0;  // the kernel's width and the stride across, when not k and stride
  int kwidth() const { return kw ? kw : k; }
  int swidth() const { return sw ? sw : stride; }
  int ho() const { return (h + pt + pb - k) / stride + 1; }
  int wo() const { return (w + pl + pr - kwidth()) / swidth() + 1; }
};
void conv_double(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                 const std::vector<float>& b, std::vector<double>& y, std::vector<double>& mag) {
  const int ho = s.ho(), wo = s.wo();
  y.assign(static_cast<std::size_t>(s.n * s.m * ho * wo), 0.0);
  mag.assign(y.size(), 0.0);
  for (int n = 0; n < s.n; ++n)
    for (int m = 0; m < s.m; ++m)
      for (int oh = 0; oh < ho; ++oh)
        for (int ow = 0; ow < wo; ++ow) {
          const auto o = static_cast<std::size_t>(((n * s.m + m) * ho + oh) * wo + ow);
          y[o] = b.empty() ? 0.0 : b[static_cast<std::size_t>(m)];
          for (int c = 0; c < s.c; ++c)
            for (int i = 0; i < s.k; ++i)
              for (int j = 0; j < s.kwidth(); ++j) {
                const int ih = oh * s.stride + i - s.pt, iw = ow * s.swidth() + j - s.pl;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                const double p =
                    static_cast<double>(
                        x[static_cast<std::size_t>(((n * s.c + c) * s.h + ih) * s.w + iw)]) *
                    static_cast<double>(
                        w[static_cast<std::size_t>(((m * s.c + c) * s.k + i) * s.kwidth() + j)]);
                y[o] += p;
                mag[o] += std::fabs(p);
              }
        }
}

std::map<std::string, Attr> conv_attrs(const ConvShape& s) {
  return {{"kernel_shape", ints_attr({s.k, s.kwidth()})},
          {"strides", ints_attr({s.stride, s.swidth()})},
          {"pads", ints_attr({s.pt, s.pl, s.pb, s.pr})}};
}

}  // namespace

// fp16 3 x 3 convolution, stride 2, asymmetric padding, 400 input channels (two K tiles of the
// 320-row plane) and 336 output channels (two column tiles), batch 2, fed by a 1 x 1 convolution
// (16 -> 400 channels) so that its input is already channels-last, and followed by one (336 -> 24)
// so that the output is narrow enough to transpose back: every tap and K tile is one pass over a
// run of one phase of the padded input, accumulated in fp32, rounded once to fp16.
TEST(Compiler, Fp16ConvStridedPaddedWideChannels) {
  const ConvShape s1{2, 16, 7, 9, 400, 1, 1, 0, 0, 0, 0};
  const ConvShape s{2, 400, 7, 9, 336, 3, 2, 1, 0, 1, 2};
  const auto xv = uniform_fp16(static_cast<std::size_t>(s1.n * s1.c * s1.h * s1.w), -1, 1, 31);
  const auto w1 = uniform_fp16(static_cast<std::size_t>(s1.m * s1.c), -0.25f, 0.25f, 33);
  const auto wv = uniform_fp16(static_cast<std::size_t>(s.m * s.c * s.k * s.k), -0.05f, 0.05f, 32);
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {s1.n, s1.c, s1.h, s1.w});
  const int c1 = gb.node("Conv", "conv1",
                         {x, gb.constant("w1", DType::kFp16, {s1.m, s1.c, 1, 1}, f16_bytes(w1))},
                         "h", DType::kFp16, {s1.n, s1.m, s1.h, s1.w}, conv_attrs(s1));
  const int w = gb.constant("w", DType::kFp16, {s.m, s.c, s.k, s.k}, f16_bytes(wv));
  const int c2 = gb.node("Conv", "conv", {c1, w}, "h2", DType::kFp16, {s.n, s.m, s.ho(), s.wo()},
                         conv_attrs(s));
  const ConvShape s3{2, 336, s.ho(), s.wo(), 24, 1, 1, 0, 0, 0, 0};
  const auto w3 = uniform_fp16(static_cast<std::size_t>(s3.m * s3.c), -0.1f, 0.1f, 34);
  gb.output(gb.node("Conv", "conv3",
                    {c2, gb.constant("w3", DType::kFp16, {s3.m, s3.c, 1, 1}, f16_bytes(w3))}, "y",
                    DType::kFp16, {s3.n, s3.m, s3.h, s3.w}, conv_attrs(s3)));
  const Compiled cc = compile(gb.g);
  const auto out = simulate(cc, {f16_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> h, hmag, want, mag;
  conv_double(s1, xv, w1, {}, h, hmag);
  std::vector<float> hv(h.size());  // the chip rounds the first result to fp16
  for (std::size_t i = 0; i < h.size(); ++i)
    hv[i] = func::fp16_to_fp32(func::fp32_to_fp16(static_cast<float>(h[i])));
  std::vector<double> h2, h2mag;
  conv_double(s, hv, wv, {}, h2, h2mag);
  std::vector<float> h2v(h2.size());
  for (std::size_t i = 0; i < h2.size(); ++i)
    h2v[i] = func::fp16_to_fp32(func::fp32_to_fp16(static_cast<float>(h2[i])));
  conv_double(s3, h2v, w3, {}, want, mag);
  // fp16 roundings of each result (a relative 2^-11, also of the inputs of the next) and fp32
  // sums of up to 3600 terms: within 2e-3 of the magnitude of the terms.
  expect_close(f16_values(out[0]), want, mag, 2e-3, 1e-5);
}

// A small fp32 network: Conv (bias) -> BatchNormalization (folded into the weights) -> Relu ->
// MaxPool 3 x 3 / 2 (pad 1) -> GlobalAveragePool -> Flatten: the data stays channels-last from
// the convolution to the flattened rows. fp32 products are three fp16 passes (~2^-22 relative).
TEST(Compiler, Fp32ConvBnReluPoolFlatten) {
  const ConvShape s{1, 5, 12, 10, 24, 3, 1, 1, 1, 1, 1};
  const auto xv = uniform(static_cast<std::size_t>(s.c * s.h * s.w), -1, 1, 41);
  const auto wv = uniform(static_cast<std::size_t>(s.m * s.c * 9), -0.3f, 0.3f, 42);
  const auto bv = uniform(static_cast<std::size_t>(s.m), -0.2f, 0.2f, 43);
  const auto scale = uniform(static_cast<std::size_t>(s.m), 0.5f, 1.5f, 44);
  const auto shift = uniform(static_cast<std::size_t>(s.m), -0.2f, 0.2f, 45);
  const auto mean = uniform(static_cast<std::size_t>(s.m), -0.2f, 0.2f, 46);
  const auto var = uniform(static_cast<std::size_t>(s.m), 0.5f, 2.0f, 47);
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {1, s.c, s.h, s.w});
  const Dims ys = {1, s.m, s.ho(), s.wo()};
  auto cst = [&](const char* name, const std::vector<float>& v, const Dims& d) {
    return gb.constant(name, DType::kFp32, d, f32_bytes(v));
  };
  const int c = gb.node("Conv", "conv", {x, cst("w", wv, {s.m, s.c, 3, 3}), cst("b", bv, {s.m})},
                        "c", DType::kFp32, ys, conv_attrs(s));
  const int bn = gb.node("BatchNormalization", "bn",
                         {c, cst("scale", scale, {s.m}), cst("shift", shift, {s.m}),
                          cst("mean", mean, {s.m}), cst("var", var, {s.m})},
                         "bn", DType::kFp32, ys);
  const int r = gb.node("Relu", "relu", {bn}, "r", DType::kFp32, ys);
  const Dims ps = {1, s.m, 6, 5};
  const int p = gb.node("MaxPool", "pool", {r}, "p", DType::kFp32, ps,
                        {{"kernel_shape", ints_attr({3, 3})},
                         {"strides", ints_attr({2, 2})},
                         {"pads", ints_attr({1, 1, 1, 1})}});
  const int g = gb.node("GlobalAveragePool", "gap", {p}, "g", DType::kFp32, {1, s.m, 1, 1});
  gb.output(gb.node("Flatten", "flat", {g}, "y", DType::kFp32, {1, s.m}));
  const Compiled cc = compile(gb.g);
  // No transposes back: the flattened rows are a view of the pooled channels-last rows (the
  // only transposes make the input channels-last, before the first product).
  bool product = false;
  int late = 0;
  for (const auto& st : cc.k.steps) {
    product = product || st.kind == compiler::KStep::Kind::kMatMul;
    late += product && st.kind == compiler::KStep::Kind::kTranspose;
  }
  EXPECT_EQ(late, 0) << "transposes after the convolution";
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> conv, mag;
  conv_double(s, xv, wv, bv, conv, mag);
  std::vector<double> want(static_cast<std::size_t>(s.m), 0.0), tol(want.size(), 0.0);
  for (int m = 0; m < s.m; ++m) {
    const auto sm = static_cast<std::size_t>(m);
    const double a = scale[sm] / std::sqrt(static_cast<double>(var[sm]) + 1e-5);
    double sum = 0, msum = 0;
    for (int oh = 0; oh < 6; ++oh)
      for (int ow = 0; ow < 5; ++ow) {
        double best = -1e300, bmag = 0;
        for (int i = -1; i <= 1; ++i)
          for (int j = -1; j <= 1; ++j) {
            const int yh = 2 * oh + i, yw = 2 * ow + j;
            if (yh < 0 || yh >= s.ho() || yw < 0 || yw >= s.wo()) continue;
            const auto o = static_cast<std::size_t>((m * s.ho() + yh) * s.wo() + yw);
            const double v = std::max(0.0, (conv[o] - mean[sm]) * a + shift[sm]);
            if (v > best) best = v, bmag = mag[o] * std::fabs(a) + std::fabs(shift[sm]);
          }
        sum += best;
        msum += bmag;
      }
    want[sm] = sum / 30.0;
    tol[sm] = msum / 30.0;
  }
  expect_close(f32_values(out[0]), want, tol, 1e-5);
}

// An image-sized stem (3 -> 64 channels, 7 x 7, stride 2, batch 2, a non-square image) goes row
// by row: input rows through banded weights, columns of output pixels out, so the value after it
// is channels-last with its spatial axes swapped. The max pool and the next convolution (a 3 x 2
// kernel, stride 1 down and 2 across, so that a swap of the axes anywhere shows) take it so, and
// the output is put back in the ONNX layout.
TEST(Compiler, Fp16RowwiseStemThenTransposedPoolAndConv) {
  const ConvShape s1{2, 3, 40, 36, 64, 7, 2, 3, 3, 3, 3};
  const int ph = (s1.ho() + 2 - 3) / 2 + 1, pw = (s1.wo() + 2 - 3) / 2 + 1;
  ConvShape s2{2, 64, ph, pw, 16, 3, 1, 1, 0, 1, 1};
  s2.kw = 2;
  s2.sw = 2;
  const auto xv = uniform_fp16(static_cast<std::size_t>(s1.n * s1.c * s1.h * s1.w), -1, 1, 61);
  const auto w1 = uniform_fp16(static_cast<std::size_t>(s1.m * s1.c * 49), -0.2f, 0.2f, 62);
  const auto b1 = uniform_fp16(static_cast<std::size_t>(s1.m), -0.2f, 0.2f, 63);
  const auto w2 = uniform_fp16(static_cast<std::size_t>(s2.m * s2.c * 6), -0.1f, 0.1f, 64);
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {s1.n, s1.c, s1.h, s1.w});
  const Dims cs = {s1.n, s1.m, s1.ho(), s1.wo()};
  const int c = gb.node("Conv", "stem",
                        {x, gb.constant("w1", DType::kFp16, {s1.m, s1.c, 7, 7}, f16_bytes(w1)),
                         gb.constant("b1", DType::kFp16, {s1.m}, f16_bytes(b1))},
                        "c", DType::kFp16, cs, conv_attrs(s1));
  const int r = gb.node("Relu", "relu", {c}, "r", DType::kFp16, cs);
  const int p = gb.node("MaxPool", "pool", {r}, "p", DType::kFp16, {s1.n, s1.m, ph, pw},
                        {{"kernel_shape", ints_attr({3, 3})},
                         {"strides", ints_attr({2, 2})},
                         {"pads", ints_attr({1, 1, 1, 1})}});
  gb.output(gb.node("Conv", "conv",
                    {p, gb.constant("w2", DType::kFp16, {s2.m, s2.c, 3, 2}, f16_bytes(w2))}, "y",
                    DType::kFp16, {s2.n, s2.m, s2.ho(), s2.wo()}, conv_attrs(s2)));
  const Compiled cc = compile(gb.g);
  bool bands = false;
  for (const auto& t : cc.k.tensors)
    bands = bands || t.name == "stem/bands";
  EXPECT_TRUE(bands) << "the stem did not go row by row";
  const auto out = simulate(cc, {f16_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> conv, mag;
  conv_double(s1, xv, w1, b1, conv, mag);
  // The chip rounds the stem's result to fp16; the pool picks, the relu clamps.
  std::vector<float> pv(static_cast<std::size_t>(s2.n * s2.c * ph * pw));
  for (int n = 0; n < s1.n; ++n)
    for (int m = 0; m < s1.m; ++m)
      for (int oh = 0; oh < ph; ++oh)
        for (int ow = 0; ow < pw; ++ow) {
          double best = 0;  // after the relu: nothing below zero
          for (int i = -1; i <= 1; ++i)
            for (int j = -1; j <= 1; ++j) {
              const int yh = 2 * oh + i, yw = 2 * ow + j;
              if (yh < 0 || yh >= s1.ho() || yw < 0 || yw >= s1.wo()) continue;
              const auto o =
                  static_cast<std::size_t>(((n * s1.m + m) * s1.ho() + yh) * s1.wo() + yw);
              best = std::max(best, conv[o]);
            }
          pv[static_cast<std::size_t>(((n * s1.m + m) * ph + oh) * pw + ow)] =
              func::fp16_to_fp32(func::fp32_to_fp16(static_cast<float>(best)));
        }
  std::vector<double> want, mag2;
  conv_double(s2, pv, w2, {}, want, mag2);
  // The stem's fp16 result may round the other way (an ulp, 2^-10 relative, of an input of the
  // second convolution), its output rounds to fp16 (2^-11), sums are fp32: 2e-3 of |terms|.
  expect_close(f16_values(out[0]), want, mag2, 2e-3, 1e-5);
}

// A stem of five channels over a wide image (7 x 7, stride 2, 200 columns): the channels go
// folded, several to an input vector, in segments of the row (each a run of the columns some
// groups of output pixels read), so a group takes kh x ceil(5 / fold) passes rather than
// kh x 5; the Relu and the max pool after it run on the packed rows and are exact.
struct FoldedStem {
  ConvShape s{1, 5, 12, 200, 64, 7, 2, 3, 3, 3, 3};
  int ph() const { return (s.ho() + 2 - 3) / 2 + 1; }
  int pw() const { return (s.wo() + 2 - 3) / 2 + 1; }
  std::vector<float> x = uniform_fp16(static_cast<std::size_t>(5 * 12 * 200), -1, 1, 91);
  std::vector<float> w = uniform_fp16(static_cast<std::size_t>(64 * 5 * 49), -0.2f, 0.2f, 92);
  std::vector<float> b = uniform_fp16(64, -0.2f, 0.2f, 93);
  Builder gb;
  FoldedStem() {
    const int xi = gb.input("x", DType::kFp16, {1, s.c, s.h, s.w});
    const Dims cs = {1, s.m, s.ho(), s.wo()};
    const int c = gb.node("Conv", "stem",
                          {xi, gb.constant("w", DType::kFp16, {s.m, s.c, 7, 7}, f16_bytes(w)),
                           gb.constant("b", DType::kFp16, {s.m}, f16_bytes(b))},
                          "c", DType::kFp16, cs, conv_attrs(s));
    const int r = gb.node("Relu", "relu", {c}, "r", DType::kFp16, cs);
    gb.output(gb.node("MaxPool", "pool", {r}, "p", DType::kFp16, {1, s.m, ph(), pw()},
                      {{"kernel_shape", ints_attr({3, 3})},
                       {"strides", ints_attr({2, 2})},
                       {"pads", ints_attr({1, 1, 1, 1})}}));
  }
  // The pool of the Relu of the convolution in double (the convolution rounded to fp16 when
  // `round`); mag: the convolution's sum of |terms| at the chosen maximum.
  std::vector<double> reference(std::vector<double>& mag, bool round) const {
    std::vector<double> conv, cmag;
    conv_double(s, x, w, b, conv, cmag);
    std::vector<double> out(static_cast<std::size_t>(s.m * ph() * pw()));
    mag.assign(out.size(), 0.0);
    for (int m = 0; m < s.m; ++m)
      for (int oh = 0; oh < ph(); ++oh)
        for (int ow = 0; ow < pw(); ++ow) {
          double best = 0, at = 0;
          for (int i = -1; i <= 1; ++i)
            for (int j = -1; j <= 1; ++j) {
              const int yh = 2 * oh + i, yw = 2 * ow + j;
              if (yh < 0 || yh >= s.ho() || yw < 0 || yw >= s.wo()) continue;
              const auto o = static_cast<std::size_t>((m * s.ho() + yh) * s.wo() + yw);
              const double v =
                  round ? func::fp16_to_fp32(func::fp32_to_fp16(static_cast<float>(conv[o])))
                        : conv[o];
              if (v > best) best = v;
              at = std::max(at, cmag[o]);
            }
          const auto o = static_cast<std::size_t>((m * ph() + oh) * pw() + ow);
          out[o] = best;
          mag[o] = at;
        }
    return out;
  }
};

// The stem's shape on the chip: folded rows in several segments, fewer passes than channels,
// and the pool's taps on the packed rows (no phases of a row per pixel).
void expect_folded(const compiler::Kernels& k) {
  std::int64_t folded_rows = 0;
  bool pool_phases = false, pool_columns = false;
  for (const auto& t : k.tensors) {
    if (t.name == "stem/folded") folded_rows = t.rows();
    pool_phases = pool_phases || t.name == "pool/phase";
    pool_columns = pool_columns || t.name == "pool/cols";
  }
  std::size_t passes = 0;
  for (const auto& st : k.steps)
    if (st.kind == compiler::KStep::Kind::kMatMul) passes = std::max(passes, st.passes.size());
  ASSERT_GT(passes, 0u);
  EXPECT_EQ(passes % 7, 0u) << "a whole number of channel groups per kernel row";
  const auto groups = static_cast<std::int64_t>(passes / 7);
  EXPECT_LE(groups, 2) << "at least three channels a pass";
  EXPECT_GE(folded_rows, 2 * 12 * groups) << "the 200 columns in one segment";
  EXPECT_FALSE(pool_phases) << "the pool ran on a row per pixel";
  EXPECT_TRUE(pool_columns);
}

TEST(Compiler, Fp16StemOfFiveChannelsFoldedWithItsPoolOnPackedRows) {
  FoldedStem fs;
  const Compiled cc = compile(fs.gb.g);
  expect_folded(cc.k);
  const auto out = simulate(cc, {f16_bytes(fs.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = fs.reference(mag, true);
  // The convolution's fp32 sums (its fp16 result may round the other way: an ulp, 2^-10).
  expect_close(f16_values(out[0]), want, mag, 2e-3, 1e-5);
}

TEST(Compiler, Int8StemOfFiveChannelsFoldedWithinQuantizationError) {
  FoldedStem fs;
  const Compiled cc = compile_int8(fs.gb.g);
  expect_folded(cc.k);
  const auto out = simulate(cc, {f16_bytes(fs.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = fs.reference(mag, false);
  expect_close(f16_values(out[0]), want, mag, 4.0 / 127.0, 0.02);
}

// The pool on a stem's packed rows with another window: 2 x 2, stride 2, ceil mode (the last
// window down hangs past the 11 rows and reads only the fill), no Relu between, batch 2.
TEST(Compiler, Fp16StemThenACeilModePoolOnPackedRows) {
  const ConvShape s{2, 3, 22, 64, 64, 7, 2, 3, 3, 3, 3};
  const int ph = (s.ho() - 2 + 1) / 2 + 1, pw = (s.wo() - 2 + 1) / 2 + 1;  // ceil
  ASSERT_EQ(s.ho(), 11);
  ASSERT_EQ(ph, 6);
  const auto xv = uniform_fp16(static_cast<std::size_t>(s.n * s.c * s.h * s.w), -1, 1, 95);
  const auto wv = uniform_fp16(static_cast<std::size_t>(s.m * s.c * 49), -0.2f, 0.2f, 96);
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {s.n, s.c, s.h, s.w});
  const Dims cs = {s.n, s.m, s.ho(), s.wo()};
  const int c =
      gb.node("Conv", "stem", {x, gb.constant("w", DType::kFp16, {s.m, s.c, 7, 7}, f16_bytes(wv))},
              "c", DType::kFp16, cs, conv_attrs(s));
  gb.output(gb.node("MaxPool", "pool", {c}, "p", DType::kFp16, {s.n, s.m, ph, pw},
                    {{"kernel_shape", ints_attr({2, 2})},
                     {"strides", ints_attr({2, 2})},
                     {"ceil_mode", test::int_attr(1)}}));
  const Compiled cc = compile(gb.g);
  bool columns = false;
  for (const auto& t : cc.k.tensors)
    columns = columns || t.name == "pool/cols";
  EXPECT_TRUE(columns) << "the pool did not run on the packed rows";
  const auto out = simulate(cc, {f16_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> conv, mag;
  conv_double(s, xv, wv, {}, conv, mag);
  std::vector<double> want(static_cast<std::size_t>(s.n * s.m * ph * pw)), scale(want.size());
  for (int n = 0; n < s.n; ++n)
    for (int m = 0; m < s.m; ++m)
      for (int oh = 0; oh < ph; ++oh)
        for (int ow = 0; ow < pw; ++ow) {
          double best = -1e300, at = 0;
          for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) {
              const int yh = 2 * oh + i, yw = 2 * ow + j;
              if (yh >= s.ho() || yw >= s.wo()) continue;
              const auto o = static_cast<std::size_t>(((n * s.m + m) * s.ho() + yh) * s.wo() + yw);
              best = std::max(best, static_cast<double>(func::fp16_to_fp32(
                                        func::fp32_to_fp16(static_cast<float>(conv[o])))));
              at = std::max(at, mag[o]);
            }
          const auto o = static_cast<std::size_t>(((n * s.m + m) * ph + oh) * pw + ow);
          want[o] = best;
          scale[o] = at;
        }
  expect_close(f16_values(out[0]), want, scale, 2e-3, 1e-5);
}

// A max pool over a large image: its window steps read the input's phases at row offsets and run
// in parts on several ALUs at once (each finishes in fewer cycles than it has rows, where one ALU
// takes a row a cycle); the maxima are exact.
TEST(Compiler, Fp16MaxPoolOfALargeImageRunsInParts) {
  constexpr int kC = 16, kH = 96, kW = 96, kO = 48;
  const auto xv = uniform_fp16(kC * kH * kW, -4, 4, 71);
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {1, kC, kH, kW});
  gb.output(gb.node("MaxPool", "pool", {x}, "y", DType::kFp16, {1, kC, kO, kO},
                    {{"kernel_shape", ints_attr({3, 3})},
                     {"strides", ints_attr({2, 2})},
                     {"pads", ints_attr({1, 1, 1, 1})}}));
  const Compiled cc = compile(gb.g);
  int windows = 0;
  for (std::size_t i = 0; i < cc.k.steps.size(); ++i) {
    const compiler::KStep& st = cc.k.steps[i];
    if (st.kind != compiler::KStep::Kind::kVxm || st.args.op != func::VxmOp::kMax) continue;
    const std::int64_t rows =
        st.rows ? st.rows : cc.k.tensors[static_cast<std::size_t>(st.d)].rows();
    if (rows < 2000) continue;
    ++windows;
    const compiler::StepTiming& t = cc.s.steps[i];
    EXPECT_LT(t.last - t.first, static_cast<std::uint64_t>(rows))
        << "step " << i << " of " << rows << " rows ran on one ALU";
  }
  EXPECT_EQ(windows, 8) << "a max step per tap after the first";
  const auto out = simulate(cc, {f16_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  const auto got = f16_values(out[0]);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kC * kO * kO));
  for (int c = 0; c < kC; ++c)
    for (int oh = 0; oh < kO; ++oh)
      for (int ow = 0; ow < kO; ++ow) {
        float best = -1e30f;
        for (int i = 2 * oh - 1; i <= 2 * oh + 1; ++i)
          for (int j = 2 * ow - 1; j <= 2 * ow + 1; ++j)
            if (i >= 0 && i < kH && j >= 0 && j < kW)
              best = std::max(best, xv[static_cast<std::size_t>((c * kH + i) * kW + j)]);
        ASSERT_EQ(got[static_cast<std::size_t>((c * kO + oh) * kO + ow)], best)
            << "channel " << c << ", output " << oh << ", " << ow;
      }
}

// fp16 AveragePool 3 x 3 / 1 with padding, count_include_pad = 0: the border windows divide by
// the pixels they cover (a constant of reciprocals per position); sums in fp32.
TEST(Compiler, Fp16AveragePoolExcludingPadding) {
  constexpr int kC = 7, kH = 5, kW = 6;
  const auto xv = uniform_fp16(kC * kH * kW, -1, 1, 51);
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {1, kC, kH, kW});
  gb.output(gb.node("AveragePool", "avg", {x}, "y", DType::kFp16, {1, kC, kH, kW},
                    {{"kernel_shape", ints_attr({3, 3})},
                     {"pads", ints_attr({1, 1, 1, 1})},
                     {"count_include_pad", int_attr(0)}}));
  const auto out = simulate(compile(gb.g), {f16_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> want, scale;
  for (int c = 0; c < kC; ++c)
    for (int h = 0; h < kH; ++h)
      for (int w = 0; w < kW; ++w) {
        double sum = 0;
        int n = 0;
        for (int i = h - 1; i <= h + 1; ++i)
          for (int j = w - 1; j <= w + 1; ++j)
            if (i >= 0 && i < kH && j >= 0 && j < kW)
              sum += xv[static_cast<std::size_t>((c * kH + i) * kW + j)], ++n;
        want.push_back(sum / n);
        scale.push_back(std::fabs(sum / n) + 1e-3);
      }
  expect_close(f16_values(out[0]), want, scale, 1e-3);
}

TEST(CompilerErrors, GroupedConvolution) {
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {1, 4, 5, 5});
  const int w = gb.constant("w", DType::kFp16, {4, 2, 3, 3}, Bytes(4 * 2 * 9 * 2, 0));
  gb.output(
      gb.node("Conv", "dw", {x, w}, "y", DType::kFp16, {1, 4, 3, 3}, {{"group", int_attr(2)}}));
  expect_mentions(compile_error(gb.g), {"'dw'", "Conv", "group = 2"});
}

TEST(CompilerErrors, ThreeDimensionalPool) {
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {1, 2, 4, 4, 4});
  gb.output(gb.node("MaxPool", "mp3", {x}, "y", DType::kFp32, {1, 2, 3, 3, 3},
                    {{"kernel_shape", ints_attr({2, 2, 2})}}));
  expect_mentions(compile_error(gb.g), {"'mp3'", "MaxPool", "3-D"});
}

// --- int8 products ---------------------------------------------------------------------------

// fp32 [8, 400] x constant [400, 48] in int8 (K = 400 is two K tiles): the activations scaled by
// 127 / max|x| (max|x| given as if calibrated) and rounded to nearest even, the weights per column
// by 127 / their largest magnitude, the int32 sums scaled back in fp32. The expected values are
// that arithmetic written out here, so the comparison is exact.
TEST(Compiler, Int8MatMulIsExactIntegerArithmetic) {
  constexpr int kM = 8, kK = 400, kN = 48;
  const auto xv = uniform(kM * kK, -1.0f, 1.0f, 61);
  const auto wv = uniform(kK * kN, -0.5f, 0.5f, 62);
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {kM, kK});
  const int w = gb.constant("w", DType::kFp32, {kK, kN}, f32_bytes(wv));
  gb.output(gb.node("MatMul", "mm", {x, w}, "y", DType::kFp32, {kM, kN}));
  compiler::LowerOptions o;
  o.precision = compiler::Precision::kInt8;
  o.activation_max["mm"] = 1.0;
  const Compiled cc = compile_with(gb.g, o);
  int int8_steps = 0;
  for (const auto& st : cc.k.steps)
    int8_steps += st.kind == compiler::KStep::Kind::kMatMul && st.mm_type == DType::kI8;
  EXPECT_GT(int8_steps, 0);
  // The sums go straight from the planes into the epilogue (cast, scale), never through MEM.
  const SumsPath sp = sums_path(cc);
  EXPECT_GT(sp.to_vxm, 0);
  EXPECT_EQ(sp.to_mem, 0);
  const auto out = simulate(cc, {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  const float inv_sx = static_cast<float>(1.0 / (1.0 / 127.0));
  std::vector<std::int32_t> xq(kM * kK);
  for (int i = 0; i < kM * kK; ++i)
    xq[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(
        std::clamp(std::nearbyint(xv[static_cast<std::size_t>(i)] * inv_sx), -128.0f, 127.0f));
  std::vector<double> sw(kN, 0.0);
  for (int r = 0; r < kK; ++r)
    for (int c = 0; c < kN; ++c)
      sw[static_cast<std::size_t>(c)] =
          std::max(sw[static_cast<std::size_t>(c)],
                   std::fabs(static_cast<double>(wv[static_cast<std::size_t>(r * kN + c)])));
  for (double& s : sw)
    s /= 127.0;
  const auto got = f32_values(out[0]);
  int bad = 0;
  for (int i = 0; i < kM && bad < 5; ++i)
    for (int c = 0; c < kN && bad < 5; ++c) {
      std::int64_t acc = 0;
      for (int r = 0; r < kK; ++r) {
        const double q =
            std::nearbyint(static_cast<double>(wv[static_cast<std::size_t>(r * kN + c)]) /
                           sw[static_cast<std::size_t>(c)]);
        acc += xq[static_cast<std::size_t>(i * kK + r)] * static_cast<std::int64_t>(q);
      }
      const float want = static_cast<float>(acc) *
                         static_cast<float>((1.0 / 127.0) * sw[static_cast<std::size_t>(c)]);
      if (got[static_cast<std::size_t>(i * kN + c)] != want) {
        ADD_FAILURE() << "y[" << i << "][" << c
                      << "] = " << got[static_cast<std::size_t>(i * kN + c)] << ", want " << want;
        ++bad;
      }
    }
}

// An int8 compile calibrates first: lower_with_precision runs the float model on random inputs
// and quantizes with the measured ranges; the program still matches its reference bit for bit
// and its products are int8.
TEST(Compiler, Int8ConvNetworkIsCalibratedAndExact) {
  const ConvShape s{1, 6, 10, 10, 16, 3, 2, 1, 1, 1, 1};
  const auto wv = uniform(static_cast<std::size_t>(s.m * s.c * 9), -0.3f, 0.3f, 71);
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {1, s.c, s.h, s.w});
  const int c =
      gb.node("Conv", "conv", {x, gb.constant("w", DType::kFp16, {s.m, s.c, 3, 3}, f16_bytes(wv))},
              "c", DType::kFp16, {1, s.m, s.ho(), s.wo()}, conv_attrs(s));
  gb.output(gb.node("Relu", "relu", {c}, "y", DType::kFp16, {1, s.m, s.ho(), s.wo()}));
  const Compiled cc = compile_int8(gb.g);
  bool int8 = false;
  for (const auto& st : cc.k.steps)
    int8 = int8 || (st.kind == compiler::KStep::Kind::kMatMul && st.mm_type == DType::kI8);
  EXPECT_TRUE(int8);
  const auto xv = uniform_fp16(static_cast<std::size_t>(s.c * s.h * s.w), -1, 1, 72);
  const auto out = simulate(cc, {f16_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  // Within int8 quantization error of the float convolution (activations and weights each
  // within half a step of 1/127 of their range).
  std::vector<double> want, mag;
  conv_double(s, xv, wv, {}, want, mag);
  for (double& v : want)
    v = std::max(0.0, v);
  expect_close(f16_values(out[0]), want, mag, 2.0 / 127.0, 1e-3);
}

// Two int8 convolutions with a ReLU between: the first one's epilogue feeds only the second's
// quantization, so it is folded (scale and bias times the next input's 1/scale, the ReLU on the
// fp32 sums, a cast straight to int8: no fp16 step between the products). Each product has 100
// output pixels (conv2 120 on its padded grid), fewer than one plane's accumulators: it is cut
// into one block per plane.
TEST(Compiler, Int8ConvReluConvFoldsTheRequantizationAndUsesEveryPlane) {
  const ConvShape s1{1, 16, 10, 10, 24, 1, 1, 0, 0, 0, 0};
  const ConvShape s2{1, 24, 10, 10, 8, 3, 1, 1, 1, 1, 1};
  const auto w1 = uniform(static_cast<std::size_t>(s1.m * s1.c), -0.4f, 0.4f, 81);
  const auto b1 = uniform(static_cast<std::size_t>(s1.m), -0.2f, 0.2f, 82);
  const auto w2 = uniform(static_cast<std::size_t>(s2.m * s2.c * 9), -0.3f, 0.3f, 83);
  Builder gb;
  const int x = gb.input("x", DType::kFp16, {1, s1.c, s1.h, s1.w});
  const int c1 = gb.node("Conv", "conv1",
                         {x, gb.constant("w1", DType::kFp16, {s1.m, s1.c, 1, 1}, f16_bytes(w1)),
                          gb.constant("b1", DType::kFp16, {s1.m}, f16_bytes(b1))},
                         "c1", DType::kFp16, {1, s1.m, s1.h, s1.w}, conv_attrs(s1));
  const int r1 = gb.node("Relu", "relu1", {c1}, "r1", DType::kFp16, {1, s1.m, s1.h, s1.w});
  const int c2 = gb.node("Conv", "conv2",
                         {r1, gb.constant("w2", DType::kFp16, {s2.m, s2.c, 3, 3}, f16_bytes(w2))},
                         "c2", DType::kFp16, {1, s2.m, s2.ho(), s2.wo()}, conv_attrs(s2));
  gb.output(gb.node("Relu", "relu2", {c2}, "y", DType::kFp16, {1, s2.m, s2.ho(), s2.wo()}));
  const Compiled cc = compile_int8(gb.g);
  int relu32 = 0, fp16_between = 0, to_i8 = 0;
  std::map<std::string, int> blocks;   // product steps per result
  bool first = false, second = false;  // past conv1's, conv2's first product step
  for (const auto& st : cc.k.steps) {
    const std::string d = cc.k.tensors[static_cast<std::size_t>(st.d)].name;
    if (st.kind == compiler::KStep::Kind::kMatMul) {
      ++blocks[d];
      EXPECT_EQ(st.m, d.rfind("conv1", 0) == 0 ? 25 : 30) << d;  // conv2: 10 x 12 (padded)
      first = true;
      second = second || d.rfind("conv2", 0) == 0;
      continue;
    }
    if (!first || second || st.kind != compiler::KStep::Kind::kVxm) continue;
    if (st.args.op == func::VxmOp::kRelu && st.args.type == DType::kFp32) ++relu32;
    if (st.args.op == func::VxmOp::kCast && st.args.type == DType::kFp32 &&
        st.args.to == DType::kI8)
      ++to_i8;
    fp16_between += st.args.type == DType::kFp16 || st.args.to == DType::kFp16;
  }
  EXPECT_EQ(relu32, 1);
  EXPECT_EQ(to_i8, 1);
  EXPECT_EQ(fp16_between, 0);
  EXPECT_EQ(blocks.size(), 2u);
  for (const auto& [d, n] : blocks)
    EXPECT_EQ(n, tsp().chip.mxm.planes) << d;
  const auto xv = uniform_fp16(static_cast<std::size_t>(s1.c * s1.h * s1.w), -1, 1, 84);
  const auto out = simulate(cc, {f16_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  // Within the quantization error of two layers of the float network in double.
  std::vector<double> h, hmag, want, mag;
  conv_double(s1, xv, w1, b1, h, hmag);
  std::vector<float> hf(h.size());
  for (std::size_t i = 0; i < h.size(); ++i)
    hf[i] = static_cast<float>(std::max(0.0, h[i]));
  conv_double(s2, hf, w2, {}, want, mag);
  for (double& v : want)
    v = std::max(0.0, v);
  expect_close(f16_values(out[0]), want, mag, 4.0 / 127.0, 1e-3);
}

// A convolution whose input has dirty padding lanes (Div leaves NaN there: 0 rsqrt(0)^2): the
// input is cleaned before its phases reach the MXM, so the result is finite and right.
TEST(Compiler, ConvAfterDivHasCleanPaddingLanes) {
  const ConvShape s1{1, 3, 6, 6, 8, 1, 1, 0, 0, 0, 0};
  const ConvShape s2{1, 8, 6, 6, 5, 3, 1, 1, 1, 1, 1};
  const auto xv = uniform(static_cast<std::size_t>(3 * 36), -1, 1, 95);
  const auto w1 = uniform(static_cast<std::size_t>(8 * 3), -0.5f, 0.5f, 96);
  const auto w2 = uniform(static_cast<std::size_t>(5 * 8 * 9), -0.3f, 0.3f, 97);
  Builder gb;
  const int x = gb.input("x", DType::kFp32, {1, 3, 6, 6});
  const int c1 =
      gb.node("Conv", "c1", {x, gb.constant("w1", DType::kFp32, {8, 3, 1, 1}, f32_bytes(w1))}, "h",
              DType::kFp32, {1, 8, 6, 6}, conv_attrs(s1));
  const int d =
      gb.node("Div", "half", {c1, gb.constant("two", DType::kFp32, {1}, f32_bytes({2.0f}))}, "h2",
              DType::kFp32, {1, 8, 6, 6});
  gb.output(gb.node("Conv", "c2", {d, gb.constant("w2", DType::kFp32, {5, 8, 3, 3}, f32_bytes(w2))},
                    "y", DType::kFp32, {1, 5, 6, 6}, conv_attrs(s2)));
  const auto out = simulate(compile(gb.g), {f32_bytes(xv)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> h, hmag, want, mag;
  conv_double(s1, xv, w1, {}, h, hmag);
  std::vector<float> hv(h.size());
  for (std::size_t i = 0; i < h.size(); ++i)
    hv[i] = static_cast<float>(h[i] / 2);
  conv_double(s2, hv, w2, {}, want, mag);
  expect_close(f32_values(out[0]), want, mag, 1e-5, 1e-6);
}

// --- packed bottlenecks
// ---------------------------------------------------------------------------

namespace {

// Two ResNet bottleneck blocks after a max pool: 1 x 1 (+ BN) -> Relu -> 3 x 3 -> Relu -> 1 x 1,
// added to a projection (block 1) or to the block's input (block 2), Relu. The middle has 64
// channels, so it runs packed, 5 pixels a vector; the pool writes its output on the grid the
// blocks share (11 pixels a row on a pitch of 15).
struct Bottlenecks {
  static constexpr int kC0 = 64, kH = 20, kW = 22, kOut = 96, kHo = 10, kWo = 11;
  int mid;  // 64: 5 pixels a vector; 128: 2 (fp16 only)
  Builder gb;
  std::vector<float> x;
  struct ConvW {
    ConvShape s;
    std::vector<float> w, b;
  };
  std::vector<ConvW> convs;  // a1 b1 c1 s1 a2 b2 c2
  std::vector<float> bn_scale, bn_bias, bn_mean, bn_var;

  int conv(const std::string& name, int in, const ConvShape& s, unsigned seed) {
    const auto w = uniform_fp16(static_cast<std::size_t>(s.m * s.c * s.k * s.k), -1.0f, 1.0f, seed);
    std::vector<float> wv = w;
    for (auto& v : wv)  // about unit gain
      v = func::fp16_to_fp32(func::fp32_to_fp16(v / std::sqrt(static_cast<float>(s.c * s.k))));
    const auto b = uniform_fp16(static_cast<std::size_t>(s.m), -0.2f, 0.2f, seed + 1);
    convs.push_back({s, wv, b});
    return gb.node("Conv", name,
                   {in, gb.constant(name + ".w", DType::kFp16, {s.m, s.c, s.k, s.k}, f16_bytes(wv)),
                    gb.constant(name + ".b", DType::kFp16, {s.m}, f16_bytes(b))},
                   name + ".y", DType::kFp16, {1, s.m, s.ho(), s.wo()}, conv_attrs(s));
  }
  int relu(const std::string& name, int in, int c) {
    return gb.node("Relu", name, {in}, name + ".y", DType::kFp16, {1, c, kHo, kWo});
  }

  // What feeds the blocks: the max pool of the input; a 3 x 3 / 2 convolution and a Relu
  // instead (its output goes onto the grid as the pool's does); or a 7 x 7 / 2 stem of 3
  // channels (row by row, so the value after it is channels-last with its axes swapped), a Relu
  // and the max pool.
  enum class Entry { kPool, kConv, kStem } entry_kind;
  ConvW entry;
  const ConvShape entry_s{1, kC0, kH, kW, kC0, 3, 2, 1, 1, 1, 1};
  const ConvShape stem_s{1, 3, 2 * kH, 2 * kW, kC0, 7, 2, 3, 3, 3, 3};

  explicit Bottlenecks(int mid_channels = 64, Entry e = Entry::kPool)
      : mid(mid_channels), entry_kind(e) {
    const ConvShape& in_s = e == Entry::kStem ? stem_s : entry_s;
    x = uniform_fp16(static_cast<std::size_t>(in_s.c * in_s.h * in_s.w), -1, 1, 91);
    const int xi = gb.input("x", DType::kFp16, {1, in_s.c, in_s.h, in_s.w});
    int p;
    if (e == Entry::kConv) {
      p = relu("entry.relu", conv("entry", xi, entry_s, 90), kC0);
    } else {
      int pin = xi;
      if (e == Entry::kStem)
        pin = gb.node("Relu", "stem.relu", {conv("stem", xi, stem_s, 80)}, "stem.relu.y",
                      DType::kFp16, {1, kC0, kH, kW});
      p = gb.node("MaxPool", "pool", {pin}, "p", DType::kFp16, {1, kC0, kHo, kWo},
                  {{"kernel_shape", ints_attr({3, 3})},
                   {"strides", ints_attr({2, 2})},
                   {"pads", ints_attr({1, 1, 1, 1})}});
    }
    if (e != Entry::kPool) {
      entry = convs.back();
      convs.pop_back();
    }
    const ConvShape a1{1, kC0, kHo, kWo, mid, 1, 1, 0, 0, 0, 0};
    const ConvShape b{1, mid, kHo, kWo, mid, 3, 1, 1, 1, 1, 1};
    const ConvShape c{1, mid, kHo, kWo, kOut, 1, 1, 0, 0, 0, 0};
    const ConvShape s1{1, kC0, kHo, kWo, kOut, 1, 1, 0, 0, 0, 0};
    const ConvShape a2{1, kOut, kHo, kWo, mid, 1, 1, 0, 0, 0, 0};
    int h = conv("a1", p, a1, 100);
    bn_scale = uniform_fp16(static_cast<std::size_t>(mid), 0.5f, 1.5f, 110);
    bn_bias = uniform_fp16(static_cast<std::size_t>(mid), -0.2f, 0.2f, 111);
    bn_mean = uniform_fp16(static_cast<std::size_t>(mid), -0.2f, 0.2f, 112);
    bn_var = uniform_fp16(static_cast<std::size_t>(mid), 0.5f, 2.0f, 113);
    h = gb.node("BatchNormalization", "a1.bn",
                {h, gb.constant("bn.s", DType::kFp16, {mid}, f16_bytes(bn_scale)),
                 gb.constant("bn.b", DType::kFp16, {mid}, f16_bytes(bn_bias)),
                 gb.constant("bn.m", DType::kFp16, {mid}, f16_bytes(bn_mean)),
                 gb.constant("bn.v", DType::kFp16, {mid}, f16_bytes(bn_var))},
                "a1.bn.y", DType::kFp16, {1, mid, kHo, kWo});
    h = conv("b1", relu("a1.relu", h, mid), b, 120);
    h = conv("c1", relu("b1.relu", h, mid), c, 130);
    const int sc = conv("s1", p, s1, 140);
    const int h1 = relu(
        "out1", gb.node("Add", "add1", {h, sc}, "add1.y", DType::kFp16, {1, kOut, kHo, kWo}), kOut);
    h = conv("a2", h1, a2, 150);
    h = conv("b2", relu("a2.relu", h, mid), b, 160);
    h = conv("c2", relu("b2.relu", h, mid), c, 170);
    gb.output(relu("out2",
                   gb.node("Add", "add2", {h, h1}, "add2.y", DType::kFp16, {1, kOut, kHo, kWo}),
                   kOut));
  }

  // The network in double, every node's output rounded to fp16 as the chip's are; `mag` gets the
  // last convolution's sum |x w| (the scale of its rounding error).
  std::vector<double> reference(std::vector<double>& mag) const {
    auto f16 = [](const std::vector<double>& v) {
      std::vector<float> out(v.size());
      for (std::size_t i = 0; i < v.size(); ++i)
        out[i] = func::fp16_to_fp32(func::fp32_to_fp16(static_cast<float>(v[i])));
      return out;
    };
    auto relu_d = [](std::vector<float> v) {
      for (auto& e : v)
        e = std::max(0.0f, e);
      return v;
    };
    auto run = [&](int i, const std::vector<float>& in, std::vector<double>& m) {
      std::vector<double> y;
      conv_double(convs[static_cast<std::size_t>(i)].s, in, convs[static_cast<std::size_t>(i)].w,
                  convs[static_cast<std::size_t>(i)].b, y, m);
      return y;
    };
    std::vector<double> m;
    std::vector<float> pin = x;  // the pool's input
    if (entry_kind == Entry::kStem) {
      std::vector<double> e;
      conv_double(entry.s, x, entry.w, entry.b, e, m);
      pin = relu_d(f16(e));
    }
    std::vector<float> p(static_cast<std::size_t>(kC0 * kHo * kWo));
    for (int ch = 0; ch < kC0; ++ch)
      for (int oh = 0; oh < kHo; ++oh)
        for (int ow = 0; ow < kWo; ++ow) {
          float best = -1e30f;
          for (int i = 2 * oh - 1; i <= 2 * oh + 1; ++i)
            for (int j = 2 * ow - 1; j <= 2 * ow + 1; ++j)
              if (i >= 0 && i < kH && j >= 0 && j < kW)
                best = std::max(best, pin[static_cast<std::size_t>((ch * kH + i) * kW + j)]);
          p[static_cast<std::size_t>((ch * kHo + oh) * kWo + ow)] = best;
        }
    if (entry_kind == Entry::kConv) {
      std::vector<double> e;
      conv_double(entry.s, x, entry.w, entry.b, e, m);
      p = relu_d(f16(e));
    }
    std::vector<double> a = run(0, p, m);
    const int px = kHo * kWo;
    for (int ch = 0; ch < mid; ++ch)
      for (int i = 0; i < px; ++i) {
        double& v = a[static_cast<std::size_t>(ch * px + i)];
        v = (v - bn_mean[static_cast<std::size_t>(ch)]) /
                std::sqrt(static_cast<double>(bn_var[static_cast<std::size_t>(ch)]) + 1e-5) *
                bn_scale[static_cast<std::size_t>(ch)] +
            bn_bias[static_cast<std::size_t>(ch)];
      }
    const auto h = f16(run(2, relu_d(f16(run(1, relu_d(f16(a)), m))), m));
    const auto s = f16(run(3, p, m));
    std::vector<float> h1(h.size());
    for (std::size_t i = 0; i < h.size(); ++i)
      h1[i] = std::max(0.0f, func::fp16_to_fp32(func::fp32_to_fp16(h[i] + s[i])));
    std::vector<double> c2 = run(6, relu_d(f16(run(5, relu_d(f16(run(4, h1, m))), m))), mag);
    const auto c2h = f16(c2);
    std::vector<double> out(c2.size());
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = std::max(0.0f, func::fp16_to_fp32(func::fp32_to_fp16(c2h[i] + h1[i])));
    for (std::size_t i = 0; i < mag.size(); ++i)
      mag[i] += std::fabs(h1[i]);
    return out;
  }
};

// The products of the packed middle: activations every p-th row (the 1 x 1 into it), results
// every p-th row (the 1 x 1 out of it).
void expect_packed(const compiler::Kernels& k, int p = 5) {
  int strided_in = 0, strided_out = 0;
  for (const auto& st : k.steps) {
    if (st.kind != compiler::KStep::Kind::kMatMul) continue;
    strided_out += st.d_stride == p;
    for (const auto& ps : st.passes)
      strided_in += ps.x_stride == p;
  }
  EXPECT_GT(strided_in, 0);
  EXPECT_GT(strided_out, 0);
}

}  // namespace

TEST(Compiler, Fp16BottlenecksRunPacked) {
  Bottlenecks nb;
  const Compiled cc = compile(nb.gb.g);
  expect_packed(cc.k);
  const auto out = simulate(cc, {f16_bytes(nb.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = nb.reference(mag);
  expect_close(f16_values(out[0]), want, mag, 4e-3, 1e-3);
}

// 128 channels in the middle: two pixels a vector.
TEST(Compiler, Fp16WiderBottlenecksRunTwoPixelsAVector) {
  Bottlenecks nb(128);
  const Compiled cc = compile(nb.gb.g);
  expect_packed(cc.k, 2);
  const auto out = simulate(cc, {f16_bytes(nb.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = nb.reference(mag);
  expect_close(f16_values(out[0]), want, mag, 4e-3, 1e-3);
}

TEST(Compiler, Int8WiderBottlenecksRunTwoPixelsAVectorWithinQuantizationError) {
  Bottlenecks nb(128);
  const Compiled cc = compile_int8(nb.gb.g);
  expect_packed(cc.k, 2);
  const auto out = simulate(cc, {f16_bytes(nb.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = nb.reference(mag);
  expect_close(f16_values(out[0]), want, mag, 4.0 / 127.0, 0.02);
}

// The bottlenecks after a strided convolution, whose output goes onto their grid.
TEST(Compiler, Fp16BottlenecksAfterAConvolutionRunPacked) {
  Bottlenecks nb(64, Bottlenecks::Entry::kConv);
  const Compiled cc = compile(nb.gb.g);
  expect_packed(cc.k);
  const auto out = simulate(cc, {f16_bytes(nb.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = nb.reference(mag);
  expect_close(f16_values(out[0]), want, mag, 4e-3, 1e-3);
}

// After a row-wise stem and a max pool: the blocks run on values with their spatial axes
// swapped, the 3 x 3 convolution's taps swapped with them.
TEST(Compiler, Fp16BottlenecksAfterARowwiseStemRunPacked) {
  Bottlenecks nb(64, Bottlenecks::Entry::kStem);
  const Compiled cc = compile(nb.gb.g);
  expect_packed(cc.k);
  bool shifts = false;  // the row-wise stem's output pixels moved to rows of their own
  for (const auto& st : cc.k.steps)
    shifts = shifts || st.kind == compiler::KStep::Kind::kSxm;
  EXPECT_TRUE(shifts) << "the stem did not run row by row";
  const auto out = simulate(cc, {f16_bytes(nb.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = nb.reference(mag);
  expect_close(f16_values(out[0]), want, mag, 4e-3, 1e-3);
}

TEST(Compiler, Int8BottlenecksRunPackedWithinQuantizationError) {
  Bottlenecks nb;
  const Compiled cc = compile_int8(nb.gb.g);
  expect_packed(cc.k);
  // Most sums go straight into their epilogue chains (rows crossing chunks whose slices the
  // chain's tensors share go through MEM).
  const SumsPath sp = sums_path(cc);
  EXPECT_GT(sp.to_vxm, 2 * sp.to_mem);
  const auto out = simulate(cc, {f16_bytes(nb.x)});
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> mag;
  const auto want = nb.reference(mag);
  expect_close(f16_values(out[0]), want, mag, 4.0 / 127.0, 0.02);
}
