// The MXM plane: int8 and fp16 products against reference matrix products, K-chunk accumulation,
// staged weights, exact single rounding of fp16 sums, and the errors a program can cause.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "func/mxm.h"
#include "func/numerics.h"

using namespace lpu::func;
using lpu::isa::DType;

namespace {

using Planes = std::vector<std::vector<std::uint8_t>>;
std::vector<const std::uint8_t*> cptrs(const Planes& p) {
  std::vector<const std::uint8_t*> v;
  for (const auto& x : p)
    v.push_back(x.data());
  return v;
}
std::vector<std::uint8_t*> ptrs(Planes& p) {
  std::vector<std::uint8_t*> v;
  for (auto& x : p)
    v.push_back(x.data());
  return v;
}

// Installs int8 weights W[r][c] through LW (16 rows at a time) and IW from the buffer.
void install_i8(MxmPlane& m, const std::vector<std::vector<std::int8_t>>& w, int lanes) {
  const int rows = m.rows();
  for (int r0 = 0; r0 < rows; r0 += 16) {
    Planes planes(16, std::vector<std::uint8_t>(static_cast<std::size_t>(lanes), 0));
    for (int j = 0; j < 16; ++j)
      for (int c = 0; c < m.cols(); ++c)
        planes[j][c] = static_cast<std::uint8_t>(w[r0 + j][c]);
    ASSERT_EQ(m.load(DType::kI8, r0, 0, cptrs(planes).data()), "");
  }
  m.install_from_buffer(0);
}

void install_f16(MxmPlane& m, const std::vector<std::vector<std::uint16_t>>& w, int lanes) {
  for (int r0 = 0; r0 < m.rows(); r0 += 8) {
    Planes planes(16, std::vector<std::uint8_t>(static_cast<std::size_t>(lanes), 0));
    for (int j = 0; j < 8; ++j)
      for (int c = 0; c < m.cols(); ++c) {
        planes[2 * j][c] = static_cast<std::uint8_t>(w[r0 + j][c]);
        planes[2 * j + 1][c] = static_cast<std::uint8_t>(w[r0 + j][c] >> 8);
      }
    ASSERT_EQ(m.install_rows(DType::kFp16, r0, cptrs(planes).data()), "");
  }
}

std::vector<std::uint32_t> take(MxmPlane& m, DType t, MxmPlane::AccMode mode, int slot, int lanes) {
  Planes out(4, std::vector<std::uint8_t>(static_cast<std::size_t>(lanes), 0xee));
  EXPECT_EQ(m.accumulate(t, mode, slot, ptrs(out).data()), "");
  std::vector<std::uint32_t> v(static_cast<std::size_t>(lanes));
  for (int i = 0; i < lanes; ++i)
    v[i] = out[0][i] | (out[1][i] << 8) | (out[2][i] << 16) |
           (static_cast<std::uint32_t>(out[3][i]) << 24);
  return v;
}

}  // namespace

class MxmInt8 : public ::testing::TestWithParam<int> {};

TEST_P(MxmInt8, MatchesAReferenceMatrixProduct) {
  const int n = GetParam();  // rows = cols = lanes
  std::mt19937 rng(7 + static_cast<unsigned>(n));
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<std::vector<std::int8_t>> w(n, std::vector<std::int8_t>(n));
  for (auto& row : w)
    for (auto& x : row)
      x = static_cast<std::int8_t>(d(rng));
  w[0][0] = -128;  // extremes
  MxmPlane m(n, n, n, 8, true);
  install_i8(m, w, n);
  for (int k = 0; k < 3; ++k) {
    std::vector<std::uint8_t> x(static_cast<std::size_t>(n));
    for (auto& v : x)
      v = static_cast<std::uint8_t>(d(rng));
    if (k == 2) std::fill(x.begin(), x.end(), 0x80);  // all -128: the largest magnitudes
    const std::uint8_t* xp = x.data();
    ASSERT_EQ(m.activate(DType::kI8, &xp), "");
    const auto got = take(m, DType::kI32, MxmPlane::AccMode::kOnly, 0, n);
    for (int c = 0; c < n; ++c) {
      std::int64_t ref = 0;
      for (int r = 0; r < n; ++r)
        ref += static_cast<std::int8_t>(x[r]) * w[r][c];
      ASSERT_EQ(static_cast<std::int32_t>(got[c]), ref) << "col " << c;
    }
  }
  EXPECT_EQ(m.macs(), 3u * n * n);
  EXPECT_EQ(m.pending_products(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, MxmInt8, ::testing::Values(16, 32, 320));

TEST(Mxm, KChunksAccumulateAndOnlyTheLastEmits) {
  const int n = 32;
  MxmPlane m(n, n, n, 4, true);
  std::vector<std::vector<std::int8_t>> w(n, std::vector<std::int8_t>(n, 0));
  for (int i = 0; i < n; ++i)
    w[i][i] = 2;  // 2 x identity
  install_i8(m, w, n);
  std::vector<std::uint8_t> x(n);
  for (int i = 0; i < n; ++i)
    x[i] = static_cast<std::uint8_t>(i);
  const std::uint8_t* xp = x.data();
  for (int k = 0; k < 3; ++k)
    ASSERT_EQ(m.activate(DType::kI8, &xp), "");
  Planes out(4, std::vector<std::uint8_t>(n, 0xee));
  ASSERT_EQ(m.accumulate(DType::kI32, MxmPlane::AccMode::kFirst, 1, ptrs(out).data()), "");
  EXPECT_EQ(out[0][5], 0xee);  // first holds, writes nothing
  ASSERT_EQ(m.accumulate(DType::kI32, MxmPlane::AccMode::kNext, 1, ptrs(out).data()), "");
  const auto got = take(m, DType::kI32, MxmPlane::AccMode::kLast, 1, n);
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(got[i], 6u * i);
}

TEST(Mxm, StagedWeightsWaitForTheInstall) {
  const int n = 16;
  MxmPlane m(n, n, n, 2, true);
  std::vector<std::vector<std::int8_t>> ones(n, std::vector<std::int8_t>(n, 1));
  std::vector<std::vector<std::int8_t>> threes(n, std::vector<std::int8_t>(n, 3));
  install_i8(m, ones, n);
  Planes planes(16, std::vector<std::uint8_t>(n, 3));
  ASSERT_EQ(m.load(DType::kI8, 0, 0, cptrs(planes).data()), "");  // staged, not installed
  std::vector<std::uint8_t> x(n, 1);
  const std::uint8_t* xp = x.data();
  ASSERT_EQ(m.activate(DType::kI8, &xp), "");
  EXPECT_EQ(take(m, DType::kI32, MxmPlane::AccMode::kOnly, 0, n)[3], 16u);
  m.install_from_buffer(0);
  ASSERT_EQ(m.activate(DType::kI8, &xp), "");
  EXPECT_EQ(take(m, DType::kI32, MxmPlane::AccMode::kOnly, 0, n)[3], 48u);
}

TEST(Mxm, Fp16ProductsMatchAnExactReference) {
  // Values with exponents in [-8, 2]: every product and the whole sum fit exactly in a double,
  // so the double sum rounded to float is the correctly rounded answer.
  const int n = 64;
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> d(-4.0f, 4.0f);
  auto h = [&] {
    float f = d(rng);
    if (std::fabs(f) < 1.0f / 256) f = 0.0f;
    return fp32_to_fp16(f);
  };
  std::vector<std::vector<std::uint16_t>> w(n, std::vector<std::uint16_t>(n));
  for (auto& row : w)
    for (auto& x : row)
      x = h();
  MxmPlane m(n, n, n, 2, true);
  install_f16(m, w, n);
  for (int k = 0; k < 4; ++k) {
    std::vector<std::uint16_t> x(n);
    for (auto& v : x)
      v = h();
    Planes act(2, std::vector<std::uint8_t>(n));
    for (int i = 0; i < n; ++i) {
      act[0][i] = static_cast<std::uint8_t>(x[i]);
      act[1][i] = static_cast<std::uint8_t>(x[i] >> 8);
    }
    ASSERT_EQ(m.activate(DType::kFp16, cptrs(act).data()), "");
    const auto got = take(m, DType::kFp32, MxmPlane::AccMode::kOnly, 0, n);
    for (int c = 0; c < n; ++c) {
      double ref = 0;
      for (int r = 0; r < n; ++r)
        ref += static_cast<double>(fp16_to_fp32(x[r])) * static_cast<double>(fp16_to_fp32(w[r][c]));
      ASSERT_EQ(got[c], float_bits(static_cast<float>(ref))) << "col " << c;
    }
  }
}

TEST(Mxm, Fp16SumIsRoundedOnceEvenBeyondDoublePrecision) {
  const std::uint16_t k4096 = fp32_to_fp16(4096.0f), one = fp32_to_fp16(1.0f),
                      tiny = 0x0001;  // 2^-24
  // 2^24 + 1 + 2^-48: exactly above the tie between 2^24 and 2^24 + 2, so it rounds up. A double
  // accumulator would lose the 2^-48 and round the tie to even (2^24).
  const std::uint16_t x[3] = {k4096, one, tiny};
  const std::uint16_t w[3] = {k4096, one, tiny};
  EXPECT_EQ(fp16_dot_exact(x, w, 3), 16777218.0f);
  // Without the tiny term it is a tie and goes to even.
  EXPECT_EQ(fp16_dot_exact(x, w, 2), 16777216.0f);
  // Cancellation: 2^24 - 2^24 + 2^-48 is exactly 2^-48.
  const std::uint16_t xm[3] = {k4096, static_cast<std::uint16_t>(k4096 | 0x8000), tiny};
  const std::uint16_t wm[3] = {k4096, k4096, tiny};
  EXPECT_EQ(fp16_dot_exact(xm, wm, 3), std::ldexp(1.0f, -48));
  // Specials.
  const std::uint16_t inf = 0x7c00, ninf = 0xfc00, nan = 0x7e01, zero = 0;
  const std::uint16_t a1[2] = {inf, one}, b1[2] = {one, one};
  EXPECT_EQ(fp16_dot_exact(a1, b1, 2), INFINITY);
  const std::uint16_t a2[2] = {inf, ninf};
  EXPECT_EQ(float_bits(fp16_dot_exact(a2, b1, 2)), kFp32QuietNan);
  const std::uint16_t a3[1] = {inf}, b3[1] = {zero};
  EXPECT_EQ(float_bits(fp16_dot_exact(a3, b3, 1)), kFp32QuietNan);
  const std::uint16_t a4[1] = {nan};
  EXPECT_EQ(float_bits(fp16_dot_exact(a4, b1, 1)), kFp32QuietNan);
  EXPECT_EQ(float_bits(fp16_dot_exact(a1, b1, 0)), 0u);  // empty sum is +0
}

TEST(Mxm, ProgramErrorsAreReported) {
  MxmPlane m(16, 16, 16, 2, true);
  std::vector<std::uint8_t> x(16, 1);
  const std::uint8_t* xp = x.data();
  EXPECT_EQ(m.activate(DType::kI8, &xp), "no weights installed");
  Planes out(4, std::vector<std::uint8_t>(16));
  EXPECT_NE(
      m.accumulate(DType::kI32, MxmPlane::AccMode::kOnly, 0, ptrs(out).data()).find("no product"),
      std::string::npos);
  std::vector<std::vector<std::int8_t>> w(16, std::vector<std::int8_t>(16, 1));
  install_i8(m, w, 16);
  Planes act(2, std::vector<std::uint8_t>(16));
  EXPECT_NE(m.activate(DType::kFp16, cptrs(act).data()).find("installed weights are i8"),
            std::string::npos);
  ASSERT_EQ(m.activate(DType::kI8, &xp), "");
  EXPECT_NE(
      m.accumulate(DType::kI32, MxmPlane::AccMode::kNext, 1, ptrs(out).data()).find("holds no i32"),
      std::string::npos);
  ASSERT_EQ(m.activate(DType::kI8, &xp), "");
  EXPECT_NE(m.accumulate(DType::kI32, MxmPlane::AccMode::kOnly, 2, ptrs(out).data())
                .find("does not exist"),
            std::string::npos);
  Planes rows(16, std::vector<std::uint8_t>(16));
  EXPECT_NE(m.load(DType::kI8, 8, 0, cptrs(rows).data()).find("beyond the plane"),
            std::string::npos);
}

TEST(Mxm, TimingModeKeepsNoValuesButCountsWork) {
  MxmPlane m(320, 320, 320, 4, false);
  Planes rows(16, std::vector<std::uint8_t>(320));
  ASSERT_EQ(m.load(DType::kI8, 0, 0, cptrs(rows).data()), "");
  m.install_from_buffer(0);
  const std::uint8_t* xp = rows[0].data();
  ASSERT_EQ(m.activate(DType::kI8, &xp), "");
  ASSERT_EQ(m.accumulate(DType::kI32, MxmPlane::AccMode::kOnly, 0, nullptr), "");
  EXPECT_EQ(m.macs(), 102400u);
}
