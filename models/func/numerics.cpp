#include "func/numerics.h"

#include <cmath>

namespace lpu::func {

namespace {

// Rounds the fp32 value `u` (bits) to a format with `mant` mantissa bits, `exp_bits` exponent
// bits, returning its bits. Handles subnormal results, overflow to infinity and ties to even.
std::uint32_t round_fp32_to(std::uint32_t u, int mant, int exp_bits, std::uint32_t qnan) {
  const std::uint32_t sign = u >> 31;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const std::uint32_t exp_all_ones = (1u << exp_bits) - 1;
  const int e32 = static_cast<int>((u >> 23) & 0xff);
  std::uint32_t m32 = u & 0x7fffff;
  const std::uint32_t sign_out = sign << (exp_bits + mant);
  if (e32 == 0xff) return m32 ? qnan : sign_out | (exp_all_ones << mant);  // NaN, infinity
  if (e32 == 0 && m32 == 0) return sign_out;                               // zero
  // Value = 1.m32 * 2^(e32-127) for normals, 0.m32 * 2^-126 for fp32 subnormals.
  int e = e32 - 127;
  std::uint32_t sig =
      e32 ? (m32 | 0x800000) : m32;  // 24-bit significand, binary point after bit 23
  if (!e32) {                        // fp32 subnormal: normalise so that the hidden bit is set
    e = -126;
    while (!(sig & 0x800000)) {
      sig <<= 1;
      --e;
    }
  }
  // Target exponent, and how many bits of `sig` to drop.
  int te = e + bias;
  int shift = 23 - mant;
  if (te <= 0) {  // subnormal (or underflow) in the target
    shift += 1 - te;
    te = 0;
  }
  if (shift > 31) return sign_out;  // rounds to zero (even the largest tie is below half an ulp)
  const std::uint32_t kept = sig >> shift;
  const std::uint32_t rem = sig & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  std::uint32_t r = kept;
  if (rem > half || (rem == half && (kept & 1))) ++r;
  // For normals `r` includes the hidden bit at position `mant`; rounding may carry into it.
  std::uint32_t out;
  if (te == 0) {
    // Subnormal result: r < 2^mant, or == 2^mant when it rounded up to the smallest normal.
    out = r;  // exponent field 0, or 1 via the carry into bit `mant`
  } else {
    if (r >> (mant + 1)) {  // carry out of the significand
      r >>= 1;
      ++te;
    }
    if (te >= static_cast<int>(exp_all_ones)) return sign_out | (exp_all_ones << mant);  // overflow
    out = (static_cast<std::uint32_t>(te) << mant) | (r & ((1u << mant) - 1));
  }
  return sign_out | out;
}

// Rounds the integer `v` to a format with `mant` mantissa bits and `exp_bits` exponent bits,
// returning its bits: one rounding, to nearest even, straight from the integer; overflow gives
// infinity. Integers are never subnormal.
std::uint32_t round_int_to(std::int64_t v, int mant, int exp_bits) {
  if (v == 0) return 0;
  const std::uint32_t sign_out = v < 0 ? 1u << (exp_bits + mant) : 0;
  const std::uint64_t u =
      v < 0 ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);  // |INT64_MIN| ok
  int e = 63 - __builtin_clzll(u);  // position of the leading one = unbiased exponent
  std::uint64_t sig;                // significand with the hidden bit at position `mant`
  if (e > mant) {
    const int shift = e - mant;
    sig = u >> shift;
    const std::uint64_t rem = u & ((std::uint64_t{1} << shift) - 1);
    const std::uint64_t half = std::uint64_t{1} << (shift - 1);
    if (rem > half || (rem == half && (sig & 1))) ++sig;
    if (sig >> (mant + 1)) {  // carry out of the significand
      sig >>= 1;
      ++e;
    }
  } else {
    sig = u << (mant - e);
  }
  const int bias = (1 << (exp_bits - 1)) - 1;
  const std::uint32_t exp_all_ones = (1u << exp_bits) - 1;
  if (e + bias >= static_cast<int>(exp_all_ones)) return sign_out | (exp_all_ones << mant);
  return sign_out | (static_cast<std::uint32_t>(e + bias) << mant) |
         static_cast<std::uint32_t>(sig & ((std::uint64_t{1} << mant) - 1));
}

}  // namespace

std::uint16_t int_to_fp16(std::int64_t v) {
  return static_cast<std::uint16_t>(round_int_to(v, 10, 5));
}

std::uint16_t int_to_bf16(std::int64_t v) {
  return static_cast<std::uint16_t>(round_int_to(v, 7, 8));
}

std::uint16_t fp32_to_fp16_general(float f) {
  return static_cast<std::uint16_t>(round_fp32_to(float_bits(f), 10, 5, kFp16QuietNan));
}

float fp16_to_fp32_general(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h >> 15) << 31;
  const int e = (h >> 10) & 0x1f;
  std::uint32_t m = h & 0x3ff;
  if (e == 0x1f) return bits_float(sign | 0x7f800000 | (m << 13));
  if (e == 0) {
    if (m == 0) return bits_float(sign);
    // Subnormal: normalise.
    int shift = 0;
    while (!(m & 0x400)) {
      m <<= 1;
      ++shift;
    }
    m &= 0x3ff;
    return bits_float(sign | (static_cast<std::uint32_t>(127 - 15 + 1 - shift) << 23) | (m << 13));
  }
  return bits_float(sign | (static_cast<std::uint32_t>(e - 15 + 127) << 23) | (m << 13));
}

std::int64_t fp32_to_int(float f, int bits) {
  if (f != f) return 0;
  const double r =
      std::nearbyint(static_cast<double>(f));  // default rounding mode: to nearest even
  const double lo = static_cast<double>(int_min(bits)), hi = static_cast<double>(int_max(bits));
  if (r <= lo) return int_min(bits);
  if (r >= hi) return int_max(bits);
  return static_cast<std::int64_t>(r);
}

float int_to_fp32(std::int64_t v) {
  return static_cast<float>(v);
}

}  // namespace lpu::func
