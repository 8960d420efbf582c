// Element arithmetic of the machine, bit-exact and without SystemC (brief B3): conversions between
// fp32, fp16 and bf16 (round to nearest even), saturating and wrapping integer arithmetic, and
// casts with defined rounding and saturation. The VXM, the MXM, the RTL checkers and the
// compiler's reference executor all use these, so one definition decides every result bit.
//
// Not modelled: floating-point exception flags, and signalling NaNs (every NaN result is the
// canonical quiet NaN of its format).
#pragma once

#include <cstdint>
#include <cstring>

namespace lpu::func {

inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

constexpr std::uint16_t kFp16QuietNan = 0x7e00;
constexpr std::uint16_t kBf16QuietNan = 0x7fc0;
constexpr std::uint32_t kFp32QuietNan = 0x7fc00000;

/// The general conversions (every case, out of line); the inline ones below take the common
/// cases fast and hand the rest to these.
std::uint16_t fp32_to_fp16_general(float f);
float fp16_to_fp32_general(std::uint16_t h);

/// fp32 -> fp16, round to nearest even; overflow gives infinity; NaN gives the quiet NaN.
inline std::uint16_t fp32_to_fp16(float f) {
  const std::uint32_t u = float_bits(f);
  const std::uint32_t e = (u >> 23) & 0xff;
  if (e >= 113 && e <= 142) {  // a normal fp16 result, or the carry of rounding up to infinity
    const std::uint32_t m = u & 0x7fffff;
    std::uint32_t r = ((e - 112) << 10) | (m >> 13);
    const std::uint32_t rem = m & 0x1fff;
    r += (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ? 1u : 0u;  // a carry moves into the exponent
    return static_cast<std::uint16_t>(((u >> 16) & 0x8000) | r);
  }
  return fp32_to_fp16_general(f);
}
/// fp16 -> fp32, exact.
inline float fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t e = (h >> 10) & 0x1f;
  if (e != 0 && e != 0x1f)  // normal: the same value with the exponent rebiased
    return bits_float((static_cast<std::uint32_t>(h & 0x8000) << 16) | ((e + 112) << 23) |
                      (static_cast<std::uint32_t>(h & 0x3ff) << 13));
  return fp16_to_fp32_general(h);
}
/// fp32 -> bf16, round to nearest even (the carry trick is exact for every non-NaN value,
/// overflow to infinity included).
inline std::uint16_t fp32_to_bf16(float f) {
  const std::uint32_t u = float_bits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return kBf16QuietNan;
  return static_cast<std::uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
/// bf16 -> fp32, exact.
inline float bf16_to_fp32(std::uint16_t b) {
  return bits_float(static_cast<std::uint32_t>(b) << 16);
}
/// A NaN result of fp32 arithmetic in canonical form.
inline float canonical(float f) {
  return f != f ? bits_float(kFp32QuietNan) : f;
}

/// Saturate a wide integer into [lo, hi].
inline std::int64_t saturate(std::int64_t v, std::int64_t lo, std::int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}
/// Wrap a wide integer to `bits` bits, two's complement.
inline std::int64_t wrap(std::int64_t v, int bits) {
  const std::uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  std::uint64_t u = static_cast<std::uint64_t>(v) & mask;
  if (bits < 64 && (u >> (bits - 1)) & 1) u |= ~mask;
  return static_cast<std::int64_t>(u);
}
inline std::int64_t int_min(int bits) {
  return -(std::int64_t{1} << (bits - 1));
}
inline std::int64_t int_max(int bits) {
  return (std::int64_t{1} << (bits - 1)) - 1;
}

/// fp32 -> signed integer of `bits` bits: round to nearest even, saturate, NaN gives 0.
std::int64_t fp32_to_int(float f, int bits);
/// Signed integer -> fp32, round to nearest even (exact below 2^24).
float int_to_fp32(std::int64_t v);
/// Signed integer -> fp16 / bf16, rounded once, to nearest even, directly from the integer (going
/// through fp32 would round twice: int32 2^24 + 2^16 + 1 must give bf16 0x4b81, not 0x4b80).
/// fp16 overflow (|v| >= 65520) gives infinity; bf16 cannot overflow from 64 bits.
std::uint16_t int_to_fp16(std::int64_t v);
std::uint16_t int_to_bf16(std::int64_t v);

}  // namespace lpu::func
