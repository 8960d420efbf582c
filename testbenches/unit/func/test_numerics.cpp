// Element conversions and integer helpers against independent references: GCC's _Float16 (whose
// conversions are libgcc's, correctly rounded) for fp16, the integer rounding identity for bf16,
// and hand-worked edge values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "func/numerics.h"

using namespace lpu::func;

namespace {

std::uint16_t ref_fp16(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  std::uint16_t b;
  std::memcpy(&b, &h, sizeof b);
  return b;
}
float ref_fp16_to_fp32(std::uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, sizeof h);
  return static_cast<float>(h);
}
// Round to nearest even by the carry trick; valid for every non-NaN fp32.
std::uint16_t ref_bf16(std::uint32_t u) {
  return static_cast<std::uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
bool is_nan16(std::uint16_t h) {
  return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

}  // namespace

TEST(Fp16, EveryHalfWidensExactlyAndNarrowsBack) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<std::uint16_t>(h));
    const float r = ref_fp16_to_fp32(static_cast<std::uint16_t>(h));
    if (is_nan16(static_cast<std::uint16_t>(h))) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_EQ(fp32_to_fp16(f), kFp16QuietNan) << std::hex << h;
      continue;
    }
    ASSERT_EQ(float_bits(f), float_bits(r)) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
}

TEST(Fp16, NarrowingMatchesTheCompilerOnASweepOfFp32) {
  // A prime stride visits every exponent and many mantissas; halfway cases come from the loop
  // below.
  for (std::uint64_t u = 0; u <= 0xffffffffull; u += 4093) {
    const float f = bits_float(static_cast<std::uint32_t>(u));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), ref_fp16(f)) << std::hex << u;
  }
  // Exact ties between neighbouring halves (including subnormal ones) and values next to them.
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    const float lo = fp16_to_fp32(static_cast<std::uint16_t>(h));
    const float hi = fp16_to_fp32(static_cast<std::uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2;  // exact in fp32
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), -mid}) {
      ASSERT_EQ(fp32_to_fp16(f), ref_fp16(f)) << "h=" << std::hex << h;
    }
  }
}

TEST(Fp16, EdgeValues) {
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);  // below the tie to infinity
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);   // the tie rounds to even: infinity
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(std::nanf("")), kFp16QuietNan);
  EXPECT_EQ(fp32_to_fp16(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(2.9802322e-8f), 0x0000);  // half of it: tie to even (zero)
  EXPECT_EQ(fp32_to_fp16(2.9802326e-8f), 0x0001);  // just above the tie
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1e-45f), 0x0000);         // fp32 subnormal
  EXPECT_EQ(fp32_to_fp16(6.1035156e-5f), 0x0400);  // smallest normal
}

TEST(Bf16, NarrowingMatchesRoundToNearestEvenOnASweep) {
  for (std::uint64_t u = 0; u <= 0xffffffffull; u += 251) {
    const auto x = static_cast<std::uint32_t>(u);
    const float f = bits_float(x);
    if (std::isnan(f)) {
      EXPECT_EQ(fp32_to_bf16(f), kBf16QuietNan);
      continue;
    }
    ASSERT_EQ(fp32_to_bf16(f), ref_bf16(x)) << std::hex << x;
  }
  // Ties and their neighbours for every bf16 upper half.
  for (std::uint32_t hi = 0; hi < 0x7f80; ++hi)
    for (std::uint32_t lo : {0x7fffu, 0x8000u, 0x8001u}) {
      const std::uint32_t x = (hi << 16) | lo;
      ASSERT_EQ(fp32_to_bf16(bits_float(x)), ref_bf16(x)) << std::hex << x;
    }
}

TEST(Bf16, WidensExactly) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_fp32(static_cast<std::uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_bits(f), b << 16);
    ASSERT_EQ(fp32_to_bf16(f), b);
  }
}

TEST(Integers, SaturateAndWrap) {
  EXPECT_EQ(saturate(200, int_min(8), int_max(8)), 127);
  EXPECT_EQ(saturate(-200, int_min(8), int_max(8)), -128);
  EXPECT_EQ(saturate(5, int_min(8), int_max(8)), 5);
  EXPECT_EQ(wrap(200, 8), -56);
  EXPECT_EQ(wrap(-129, 8), 127);
  EXPECT_EQ(wrap(65535, 16), -1);
  EXPECT_EQ(wrap(std::int64_t{1} << 31, 32), int_min(32));
  EXPECT_EQ(int_min(16), -32768);
  EXPECT_EQ(int_max(32), 2147483647);
}

TEST(Integers, Fp32ToIntRoundsToEvenAndSaturates) {
  EXPECT_EQ(fp32_to_int(2.5f, 8), 2);
  EXPECT_EQ(fp32_to_int(3.5f, 8), 4);
  EXPECT_EQ(fp32_to_int(-2.5f, 8), -2);
  EXPECT_EQ(fp32_to_int(-0.5f, 8), 0);
  EXPECT_EQ(fp32_to_int(127.4f, 8), 127);
  EXPECT_EQ(fp32_to_int(127.5f, 8), 127);  // 128 saturates
  EXPECT_EQ(fp32_to_int(-1000.0f, 8), -128);
  EXPECT_EQ(fp32_to_int(std::numeric_limits<float>::infinity(), 32), int_max(32));
  EXPECT_EQ(fp32_to_int(-std::numeric_limits<float>::infinity(), 16), int_min(16));
  EXPECT_EQ(fp32_to_int(std::nanf(""), 32), 0);
  EXPECT_EQ(fp32_to_int(2147483520.0f, 32), 2147483520);  // largest fp32 below 2^31
  EXPECT_EQ(fp32_to_int(2147483648.0f, 32), int_max(32));
}

TEST(Integers, IntToFp32RoundsToEven) {
  EXPECT_EQ(int_to_fp32(16777217), 16777216.0f);  // 2^24 + 1: tie, to even
  EXPECT_EQ(int_to_fp32(16777219), 16777220.0f);  // 2^24 + 3: tie, to even (up)
  EXPECT_EQ(int_to_fp32(-7), -7.0f);
  EXPECT_EQ(int_to_fp32(int_min(32)), -2147483648.0f);
}
