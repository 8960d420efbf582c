// VXM element arithmetic against simple per-element references written here independently: int64
// arithmetic for integers; for floats, exact decoding to double, the operation in double (exact
// for fp16/bf16 products and sums of interest, and innocuous double rounding for fp32 since
// 53 >= 2*24 + 2) and one rounding to the format by frexp/ldexp/nearbyint. Exhaustive over i8
// pairs, over every i16, fp16 and bf16 value for unary ops and casts, every fp16/bf16 value against
// 64 partners for binary ops; edge values and random samples for i32/fp32. Also the byte-plane
// layout, canonical NaNs, argument checks and the int -> fp16/bf16 conversions of numerics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "func/numerics.h"
#include "func/vxm.h"

using namespace lpu::func;
using lpu::isa::DType;

namespace {

const DType kAllTypes[] = {DType::kI8,   DType::kI16,  DType::kI32,
                           DType::kFp16, DType::kBf16, DType::kFp32};
const DType kIntTypes[] = {DType::kI8, DType::kI16, DType::kI32};
const DType kFloatTypes[] = {DType::kFp16, DType::kBf16, DType::kFp32};

const VxmOp kCmpOps[] = {VxmOp::kCmpEq, VxmOp::kCmpNe, VxmOp::kCmpLt,
                         VxmOp::kCmpLe, VxmOp::kCmpGt, VxmOp::kCmpGe};

int nbytes(DType t) {
  return t == DType::kI8 ? 1 : (t == DType::kI32 || t == DType::kFp32) ? 4 : 2;
}
int nbits(DType t) {
  return 8 * nbytes(t);
}
bool is_int(DType t) {
  return t == DType::kI8 || t == DType::kI16 || t == DType::kI32;
}
std::uint32_t width_mask(DType t) {
  return nbits(t) == 32 ? 0xffffffffu : (1u << nbits(t)) - 1;
}

// --- running the model on plain element vectors ------------------------------------------------

// Splits the raw elements into byte planes, calls vxm_apply in pieces of `block` lanes, and
// reassembles the result elements. Output planes start filled with 0xa5 so unwritten bytes show.
std::vector<std::uint32_t> run(const VxmArgs& args, const std::vector<std::uint32_t>& a,
                               const std::vector<std::uint32_t>& b = {},
                               const std::vector<std::uint32_t>& mask = {},
                               int block = kVxmMaxLanes) {
  const int in_bytes = nbytes(args.type);
  const int out_bytes = args.op == VxmOp::kCast ? nbytes(args.to) : in_bytes;
  std::vector<std::uint32_t> out(a.size());
  for (std::size_t off = 0; off < a.size(); off += block) {
    const int n = static_cast<int>(std::min<std::size_t>(block, a.size() - off));
    auto split = [&](const std::vector<std::uint32_t>& v, std::vector<std::vector<std::uint8_t>>& p,
                     std::vector<const std::uint8_t*>& ptrs) {
      p.assign(in_bytes, std::vector<std::uint8_t>(n));
      for (int k = 0; k < in_bytes; ++k) {
        for (int i = 0; i < n; ++i)
          p[k][i] = static_cast<std::uint8_t>(v[off + i] >> (8 * k));
        ptrs.push_back(p[k].data());
      }
    };
    std::vector<std::vector<std::uint8_t>> pa, pb, pm;
    std::vector<const std::uint8_t*> ra, rb, rm;
    split(a, pa, ra);
    if (!b.empty()) split(b, pb, rb);
    if (!mask.empty()) split(mask, pm, rm);
    std::vector<std::vector<std::uint8_t>> pd(out_bytes, std::vector<std::uint8_t>(n, 0xa5));
    std::vector<std::uint8_t*> rd;
    for (auto& p : pd)
      rd.push_back(p.data());
    vxm_apply(args, n, ra.data(), b.empty() ? nullptr : rb.data(),
              mask.empty() ? nullptr : rm.data(), rd.data());
    for (int i = 0; i < n; ++i) {
      std::uint32_t e = 0;
      for (int k = 0; k < out_bytes; ++k)
        e |= static_cast<std::uint32_t>(pd[k][i]) << (8 * k);
      out[off + i] = e;
    }
  }
  return out;
}

std::string hex(std::uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

std::string describe(const VxmArgs& x) {
  std::string s = std::string(to_string(x.op)) + "." + lpu::isa::to_string(x.type);
  if (x.op == VxmOp::kCast) s += std::string("->") + lpu::isa::to_string(x.to);
  if (x.saturate) s += ".sat";
  if (x.op == VxmOp::kShl || x.op == VxmOp::kShr) s += " bits " + std::to_string(x.shift);
  return s;
}

// Runs the model and compares every element with `ref`; reports the first few differences.
void check_unary(const VxmArgs& x, const std::vector<std::uint32_t>& a,
                 const std::function<std::uint32_t(std::uint32_t)>& ref, int block = 4096) {
  const auto got = run(x, a, {}, {}, block);
  int bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::uint32_t want = ref(a[i]);
    if (got[i] != want && ++bad <= 8)
      ADD_FAILURE() << describe(x) << " a=" << hex(a[i]) << ": got " << hex(got[i]) << ", want "
                    << hex(want);
  }
  EXPECT_EQ(bad, 0) << describe(x) << ": " << bad << " of " << a.size() << " elements differ";
}

void check_binary(const VxmArgs& x, const std::vector<std::uint32_t>& a,
                  const std::vector<std::uint32_t>& b,
                  const std::function<std::uint32_t(std::uint32_t, std::uint32_t)>& ref,
                  int block = 4096) {
  const auto got = run(x, a, b, {}, block);
  int bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::uint32_t want = ref(a[i], b[i]);
    if (got[i] != want && ++bad <= 8)
      ADD_FAILURE() << describe(x) << " a=" << hex(a[i]) << " b=" << hex(b[i]) << ": got "
                    << hex(got[i]) << ", want " << hex(want);
  }
  EXPECT_EQ(bad, 0) << describe(x) << ": " << bad << " of " << a.size() << " elements differ";
}

std::uint32_t apply1(VxmArgs x, std::uint32_t a) {
  return run(x, {a})[0];
}
std::uint32_t apply2(VxmArgs x, std::uint32_t a, std::uint32_t b) {
  return run(x, {a}, {b})[0];
}

// --- integer reference -------------------------------------------------------------------------

std::int64_t ival(std::uint32_t raw, DType t) {
  const int n = nbits(t);
  std::int64_t v = raw & width_mask(t);
  if (v >= (std::int64_t{1} << (n - 1))) v -= std::int64_t{1} << n;
  return v;
}
std::uint32_t ibits(std::int64_t v, DType t) {
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(v)) & width_mask(t);
}
std::int64_t imin(DType t) {
  return -(std::int64_t{1} << (nbits(t) - 1));
}
std::int64_t imax(DType t) {
  return (std::int64_t{1} << (nbits(t) - 1)) - 1;
}
std::int64_t clamp(std::int64_t v, DType t) {
  return v < imin(t) ? imin(t) : v > imax(t) ? imax(t) : v;
}

std::uint32_t ref_int_binary(VxmOp op, DType t, bool sat, std::uint32_t ra, std::uint32_t rb) {
  const std::int64_t a = ival(ra, t), b = ival(rb, t);
  auto arith = [&](std::int64_t r) { return ibits(sat ? clamp(r, t) : r, t); };
  auto flag = [&](bool c) { return c ? width_mask(t) : 0u; };
  switch (op) {
    case VxmOp::kAdd:
      return arith(a + b);
    case VxmOp::kSub:
      return arith(a - b);
    case VxmOp::kMul:
      return arith(a * b);
    case VxmOp::kMax:
      return ibits(a > b ? a : b, t);
    case VxmOp::kMin:
      return ibits(a < b ? a : b, t);
    case VxmOp::kAnd:
      return ibits(a & b, t);
    case VxmOp::kOr:
      return ibits(a | b, t);
    case VxmOp::kXor:
      return ibits(a ^ b, t);
    case VxmOp::kCmpEq:
      return flag(a == b);
    case VxmOp::kCmpNe:
      return flag(a != b);
    case VxmOp::kCmpLt:
      return flag(a < b);
    case VxmOp::kCmpLe:
      return flag(a <= b);
    case VxmOp::kCmpGt:
      return flag(a > b);
    case VxmOp::kCmpGe:
      return flag(a >= b);
    default:
      ADD_FAILURE() << "no integer reference";
      return 0;
  }
}

std::uint32_t ref_int_unary(VxmOp op, DType t, int shift, std::uint32_t ra) {
  const std::int64_t a = ival(ra, t);
  switch (op) {
    case VxmOp::kNeg:
      return ibits(clamp(-a, t), t);
    case VxmOp::kAbs:
      return ibits(clamp(a < 0 ? -a : a, t), t);
    case VxmOp::kRelu:
      return ibits(a > 0 ? a : 0, t);
    case VxmOp::kShl:  // multiply by 2^shift, keep the low bits
      return ibits(static_cast<std::int64_t>(static_cast<std::uint64_t>(a) << shift), t);
    case VxmOp::kShr:  // floor division by 2^shift
    {
      const std::int64_t p = std::int64_t{1} << shift;
      std::int64_t q = a / p;
      if (a % p != 0 && a < 0) --q;
      return ibits(q, t);
    }
    default:
      ADD_FAILURE() << "no integer reference";
      return 0;
  }
}

// --- float reference ---------------------------------------------------------------------------

struct Fmt {
  int mbits;  // stored mantissa bits
  int ebits;
  std::uint32_t qnan;
  int bias() const { return (1 << (ebits - 1)) - 1; }
  int emin() const { return 1 - bias(); }
  int emax() const { return bias(); }
  std::uint32_t sign_bit() const { return 1u << (mbits + ebits); }
  std::uint32_t inf() const { return ((1u << ebits) - 1) << mbits; }
};
Fmt fmt(DType t) {
  switch (t) {
    case DType::kFp16:
      return {10, 5, 0x7e00};
    case DType::kBf16:
      return {7, 8, 0x7fc0};
    default:
      return {23, 8, 0x7fc00000};
  }
}

double ref_value(std::uint32_t raw, DType t) {
  const Fmt f = fmt(t);
  const bool neg = (raw & f.sign_bit()) != 0;
  const int e = static_cast<int>((raw >> f.mbits) & ((1u << f.ebits) - 1));
  const std::uint32_t m = raw & ((1u << f.mbits) - 1);
  double v;
  if (e == (1 << f.ebits) - 1)
    v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (e == 0)
    v = std::ldexp(static_cast<double>(m), f.emin() - f.mbits);
  else
    v = std::ldexp(static_cast<double>(m + (1u << f.mbits)), e - f.bias() - f.mbits);
  return neg ? -v : v;
}
bool is_nan(std::uint32_t raw, DType t) {
  const Fmt f = fmt(t);
  return (raw & f.inf()) == f.inf() && (raw & ((1u << f.mbits) - 1)) != 0;
}

// One rounding of `x` to the format, to nearest even; overflow to infinity; NaN canonical.
std::uint32_t ref_round(double x, DType t) {
  const Fmt f = fmt(t);
  if (std::isnan(x)) return f.qnan;
  const std::uint32_t sign = std::signbit(x) ? f.sign_bit() : 0;
  if (std::isinf(x)) return sign | f.inf();
  const double ax = std::fabs(x);
  if (ax == 0) return sign;
  int e2;
  std::frexp(ax, &e2);  // ax = m * 2^e2, m in [0.5, 1)
  int e = std::max(e2 - 1, f.emin());
  double r = std::nearbyint(std::ldexp(ax, f.mbits - e));  // significand as an integer, RNE
  if (r >= std::ldexp(1.0, f.mbits + 1)) {
    r /= 2;
    ++e;
  }
  if (e > f.emax()) return sign | f.inf();
  const auto ri = static_cast<std::uint32_t>(r);
  if (ri < (1u << f.mbits)) return sign | ri;  // subnormal or zero
  return sign | (static_cast<std::uint32_t>(e + f.bias()) << f.mbits) | (ri - (1u << f.mbits));
}

std::uint32_t ref_float_binary(VxmOp op, DType t, std::uint32_t ra, std::uint32_t rb) {
  const double a = ref_value(ra, t), b = ref_value(rb, t);
  const bool nan = std::isnan(a) || std::isnan(b);
  auto flag = [&](bool c) { return c ? width_mask(t) : 0u; };
  switch (op) {
    case VxmOp::kAdd:
      return ref_round(a + b, t);
    case VxmOp::kSub:
      return ref_round(a - b, t);
    case VxmOp::kMul:
      return ref_round(a * b, t);
    case VxmOp::kMax:
      if (nan) return fmt(t).qnan;
      if (a == 0 && b == 0) return std::signbit(a) && std::signbit(b) ? fmt(t).sign_bit() : 0;
      return ref_round(a > b ? a : b, t);
    case VxmOp::kMin:
      if (nan) return fmt(t).qnan;
      if (a == 0 && b == 0) return std::signbit(a) || std::signbit(b) ? fmt(t).sign_bit() : 0;
      return ref_round(a < b ? a : b, t);
    case VxmOp::kCmpEq:
      return flag(!nan && a == b);
    case VxmOp::kCmpNe:
      return flag(nan || a != b);
    case VxmOp::kCmpLt:
      return flag(!nan && a < b);
    case VxmOp::kCmpLe:
      return flag(!nan && a <= b);
    case VxmOp::kCmpGt:
      return flag(!nan && a > b);
    case VxmOp::kCmpGe:
      return flag(!nan && a >= b);
    default:
      ADD_FAILURE() << "no float reference";
      return 0;
  }
}

std::uint32_t ref_float_unary(VxmOp op, DType t, std::uint32_t ra) {
  const double a = ref_value(ra, t);
  if (std::isnan(a)) return fmt(t).qnan;
  const auto f = static_cast<float>(a);  // exact
  switch (op) {
    case VxmOp::kNeg:
      return ref_round(-a, t);
    case VxmOp::kAbs:
      return ref_round(std::fabs(a), t);
    case VxmOp::kRelu:
      return a > 0 ? ref_round(a, t) : 0;
    // As defined: in double from the fp32 value, to fp32, then rounded to the type.
    case VxmOp::kExp:
      return ref_round(static_cast<float>(std::exp(static_cast<double>(f))), t);
    case VxmOp::kTanh:
      return ref_round(static_cast<float>(std::tanh(static_cast<double>(f))), t);
    case VxmOp::kRsqrt:
      if (a == 0) return std::signbit(a) ? (fmt(t).sign_bit() | fmt(t).inf()) : fmt(t).inf();
      if (a < 0) return fmt(t).qnan;
      return ref_round(static_cast<float>(1.0 / std::sqrt(a)), t);
    default:
      ADD_FAILURE() << "no float reference";
      return 0;
  }
}

std::uint32_t ref_cast(DType from, DType to, std::uint32_t ra) {
  if (is_int(from)) {
    const std::int64_t v = ival(ra, from);
    if (is_int(to)) return ibits(clamp(v, to), to);
    return ref_round(static_cast<double>(v), to);  // exact in double, then one rounding
  }
  const double x = ref_value(ra, from);
  if (is_int(to)) {
    if (std::isnan(x)) return 0;
    const double r = std::nearbyint(x);  // to nearest even
    if (r <= static_cast<double>(imin(to))) return ibits(imin(to), to);
    if (r >= static_cast<double>(imax(to))) return ibits(imax(to), to);
    return ibits(static_cast<std::int64_t>(r), to);
  }
  return ref_round(x, to);
}

// --- value sets ------------------------------------------------------------------------------

std::vector<std::uint32_t> every(DType t) {
  std::vector<std::uint32_t> v(std::size_t{1} << nbits(t));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<std::uint32_t>(i);
  return v;
}

std::vector<std::uint32_t> random_bits(std::size_t n, std::uint32_t seed, DType t) {
  std::mt19937 g(seed);
  std::vector<std::uint32_t> v(n);
  for (auto& e : v)
    e = g() & width_mask(t);
  return v;
}

std::vector<std::uint32_t> i32_edges() {
  const std::int64_t vals[] = {0,          1,           -1,
                               2,          -2,          3,
                               -3,         7,           100,
                               -100,       127,         128,
                               -128,       -129,        255,
                               256,        32767,       32768,
                               -32768,     -32769,      65535,
                               65536,      46340,       46341,
                               -46341,     65504,       65519,
                               65520,      -65520,      2049,
                               16777216,   16777217,    16777219,
                               16842753,   -16842753,   1 << 30,
                               -(1 << 30), 2147483647,  -2147483647 - 1,
                               2147483646, -2147483647, 0x12345678,
                               -0x12345678};
  std::vector<std::uint32_t> v;
  for (auto x : vals)
    v.push_back(ibits(x, DType::kI32));
  return v;
}

std::vector<std::uint32_t> fp32_edges() {
  std::vector<std::uint32_t> v = {
      0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001,
      0x7fbfffff, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000, 0x80800000,
      0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, 0x3f800001, 0x3f7fffff, 0x40000000,
      0x3f000000, 0x40200000, 0x40600000, 0xc0200000, 0xc0600000, 0x3fc00000, 0xbfc00000,
      0x4b800000, 0x4b800001, 0x477fe000, 0x477ff000, 0x477fefff, 0x33000000, 0x33000001,
      0x387fc000, 0x38800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x42fe0000, 0x42ff0000,
      0xc3000000, 0xc3010000, 0x4effffff, 0x4f000000, 0xcf000000, 0xcf000001, 0x501502f9};
  return v;
}

std::vector<std::uint32_t> half_partners(DType t) {  // 64 values, fp16 or bf16
  std::vector<std::uint32_t> v;
  if (t == DType::kFp16)
    v = {0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0x0001, 0x8001, 0x03ff,
         0x83ff, 0x0400, 0x8400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x3c01, 0x3bff, 0x4000,
         0x3800, 0x4200, 0xc200, 0x2e66, 0x6800, 0x1400, 0x0200, 0x7800, 0x5bff, 0x0401};
  else
    v = {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffc0, 0x7f81, 0x0001, 0x8001, 0x007f,
         0x807f, 0x0080, 0x8080, 0x7f7f, 0xff7f, 0x3f80, 0xbf80, 0x3f81, 0x3f7f, 0x4000,
         0x3f00, 0x4040, 0xc040, 0x3dcd, 0x4b80, 0x0100, 0x0040, 0x7f00, 0x5f7f, 0x0081};
  std::mt19937 g(t == DType::kFp16 ? 11 : 12);
  while (v.size() < 64)
    v.push_back(g() & 0xffff);
  return v;
}

// All pairs (a from `as`, b from `bs`).
void all_pairs(const std::vector<std::uint32_t>& as, const std::vector<std::uint32_t>& bs,
               std::vector<std::uint32_t>& a, std::vector<std::uint32_t>& b) {
  a.clear();
  b.clear();
  for (auto x : as)
    for (auto y : bs) {
      a.push_back(x);
      b.push_back(y);
    }
}

VxmArgs args(VxmOp op, DType t, bool sat = false) {
  VxmArgs x{op, t};
  x.saturate = sat;
  return x;
}
VxmArgs cast(DType from, DType to) {
  VxmArgs x{VxmOp::kCast, from};
  x.to = to;
  return x;
}

const VxmOp kIntBinary[] = {VxmOp::kAdd, VxmOp::kSub, VxmOp::kMul, VxmOp::kMax,
                            VxmOp::kMin, VxmOp::kAnd, VxmOp::kOr,  VxmOp::kXor};
const VxmOp kFloatBinary[] = {VxmOp::kAdd, VxmOp::kSub, VxmOp::kMul, VxmOp::kMax, VxmOp::kMin};

void check_int_binary_all(DType t, const std::vector<std::uint32_t>& a,
                          const std::vector<std::uint32_t>& b, int block) {
  for (VxmOp op : kIntBinary)
    for (bool sat : {false, true}) {
      if (sat && op != VxmOp::kAdd && op != VxmOp::kSub && op != VxmOp::kMul) continue;
      check_binary(
          args(op, t, sat), a, b,
          [&](std::uint32_t x, std::uint32_t y) { return ref_int_binary(op, t, sat, x, y); },
          block);
    }
  for (VxmOp op : kCmpOps)
    check_binary(
        args(op, t), a, b,
        [&](std::uint32_t x, std::uint32_t y) { return ref_int_binary(op, t, false, x, y); },
        block);
}

void check_float_binary_all(DType t, const std::vector<std::uint32_t>& a,
                            const std::vector<std::uint32_t>& b, int block) {
  for (VxmOp op : kFloatBinary)
    check_binary(
        args(op, t), a, b,
        [&](std::uint32_t x, std::uint32_t y) { return ref_float_binary(op, t, x, y); }, block);
  for (VxmOp op : kCmpOps)
    check_binary(
        args(op, t), a, b,
        [&](std::uint32_t x, std::uint32_t y) { return ref_float_binary(op, t, x, y); }, block);
}

}  // namespace

// --- the reference itself, on hand-worked values -------------------------------------------------

TEST(VxmReference, RoundsByHand) {
  EXPECT_EQ(ref_round(1.0, DType::kFp16), 0x3c00u);
  EXPECT_EQ(ref_round(65504.0, DType::kFp16), 0x7bffu);
  EXPECT_EQ(ref_round(65519.99, DType::kFp16), 0x7bffu);
  EXPECT_EQ(ref_round(65520.0, DType::kFp16), 0x7c00u);
  EXPECT_EQ(ref_round(std::ldexp(1.0, -24), DType::kFp16), 0x0001u);
  EXPECT_EQ(ref_round(std::ldexp(1.0, -25), DType::kFp16), 0x0000u);
  EXPECT_EQ(ref_round(std::ldexp(3.0, -26), DType::kFp16), 0x0001u);
  EXPECT_EQ(ref_round(-0.0, DType::kBf16), 0x8000u);
  EXPECT_EQ(ref_round(16842753.0, DType::kBf16), 0x4b81u);
  EXPECT_EQ(ref_round(16777217.0, DType::kFp32), 0x4b800000u);
  EXPECT_EQ(ref_round(std::ldexp(1.0, -149), DType::kFp32), 0x00000001u);
  EXPECT_EQ(ref_value(0x0001, DType::kFp16), std::ldexp(1.0, -24));
  EXPECT_EQ(ref_value(0xc000, DType::kBf16), -2.0);
  for (std::uint32_t h = 0; h < 65536; ++h)
    if (!is_nan(h, DType::kFp16)) {
      ASSERT_EQ(ref_round(ref_value(h, DType::kFp16), DType::kFp16), h);
      ASSERT_EQ(ref_round(ref_value(h, DType::kBf16), DType::kBf16), h);
    }
}

// --- byte-plane layout ---------------------------------------------------------------------------

TEST(VxmLayout, I32AcrossFourPlanes) {
  for (int lanes : {1, 16, 320}) {
    std::vector<std::vector<std::uint8_t>> pa(4, std::vector<std::uint8_t>(lanes)),
        pb(4, std::vector<std::uint8_t>(lanes)), pd(4, std::vector<std::uint8_t>(lanes, 0xee));
    for (int i = 0; i < lanes; ++i) {
      // a = 0x12345678 + i in lane i, written byte by byte: plane 0 is the least significant.
      const std::uint32_t v = 0x12345678u + static_cast<std::uint32_t>(i);
      pa[0][i] = static_cast<std::uint8_t>(v);
      pa[1][i] = static_cast<std::uint8_t>(v >> 8);
      pa[2][i] = 0x34;
      pa[3][i] = 0x12;
      // b = 0x000000ff: the carry must cross from plane 0 into plane 1.
      pb[0][i] = 0xff;
    }
    const std::uint8_t* ra[4] = {pa[0].data(), pa[1].data(), pa[2].data(), pa[3].data()};
    const std::uint8_t* rb[4] = {pb[0].data(), pb[1].data(), pb[2].data(), pb[3].data()};
    std::uint8_t* rd[4] = {pd[0].data(), pd[1].data(), pd[2].data(), pd[3].data()};
    vxm_apply(args(VxmOp::kAdd, DType::kI32), lanes, ra, rb, nullptr, rd);
    for (int i = 0; i < lanes; ++i) {
      const std::uint32_t want = 0x12345678u + static_cast<std::uint32_t>(i) + 0xffu;
      EXPECT_EQ(pd[0][i], want & 0xff) << "lanes " << lanes << " lane " << i;
      EXPECT_EQ(pd[1][i], (want >> 8) & 0xff) << "lanes " << lanes << " lane " << i;
      EXPECT_EQ(pd[2][i], 0x34) << "lanes " << lanes << " lane " << i;
      EXPECT_EQ(pd[3][i], 0x12) << "lanes " << lanes << " lane " << i;
    }
    if (lanes == 1) {
      EXPECT_EQ(pd[0][0], 0x77);
      EXPECT_EQ(pd[1][0], 0x57);
    }
    // Carry through all four planes: 0x00ffffff + 0x00000001 = 0x01000000.
    for (int i = 0; i < lanes; ++i) {
      pa[0][i] = pa[1][i] = pa[2][i] = 0xff;
      pa[3][i] = 0x00;
      pb[0][i] = 0x01;
    }
    vxm_apply(args(VxmOp::kAdd, DType::kI32), lanes, ra, rb, nullptr, rd);
    for (int i = 0; i < lanes; ++i) {
      EXPECT_EQ(pd[0][i], 0);
      EXPECT_EQ(pd[1][i], 0);
      EXPECT_EQ(pd[2][i], 0);
      EXPECT_EQ(pd[3][i], 1);
    }
  }
}

TEST(VxmLayout, Fp16AcrossTwoPlanes) {
  // 1.0 = 0x3c00: plane 0 holds 0x00, plane 1 holds 0x3c; 1 + 1 = 2.0 = 0x4000.
  std::uint8_t a0[3] = {0x00, 0x00, 0x00}, a1[3] = {0x3c, 0x3c, 0xbc};
  std::uint8_t d0[3] = {}, d1[3] = {};
  const std::uint8_t* ra[2] = {a0, a1};
  std::uint8_t* rd[2] = {d0, d1};
  vxm_apply(args(VxmOp::kAdd, DType::kFp16), 3, ra, ra, nullptr, rd);
  EXPECT_EQ(d0[0], 0x00);
  EXPECT_EQ(d1[0], 0x40);
  EXPECT_EQ(d1[2], 0xc0);  // -1 + -1 = -2
}

TEST(VxmLayout, ManyLaneCountsAndInPlace) {
  // Lane counts around the internal block size; the result must not depend on how lanes split.
  const auto a = random_bits(4096, 1, DType::kI32), b = random_bits(4096, 2, DType::kI32);
  const auto whole = run(args(VxmOp::kAdd, DType::kI32, true), a, b);
  for (int block : {1, 3, 63, 64, 65, 127, 320, 1000, 4095}) {
    EXPECT_EQ(run(args(VxmOp::kAdd, DType::kI32, true), a, b, {}, block), whole) << block;
  }
  // d may be the very planes of a.
  for (DType t : {DType::kI8, DType::kFp16, DType::kFp32}) {
    const int n = nbytes(t), lanes = 100;
    std::vector<std::vector<std::uint8_t>> p(n, std::vector<std::uint8_t>(lanes));
    std::vector<std::uint32_t> av(lanes);
    for (int i = 0; i < lanes; ++i) {
      av[i] = is_int(t) ? static_cast<std::uint32_t>(i)
                        : ref_round(static_cast<double>(i), t);  // lane i holds i
      for (int k = 0; k < n; ++k)
        p[k][i] = static_cast<std::uint8_t>(av[i] >> (8 * k));
    }
    std::vector<std::uint8_t*> r;
    for (auto& q : p)
      r.push_back(q.data());
    std::vector<const std::uint8_t*> rc(r.begin(), r.end());
    vxm_apply(args(VxmOp::kAdd, t, true), lanes, rc.data(), rc.data(), nullptr, r.data());
    for (int i = 0; i < lanes; ++i) {
      std::uint32_t e = 0;
      for (int k = 0; k < n; ++k)
        e |= static_cast<std::uint32_t>(p[k][i]) << (8 * k);
      const std::uint32_t want = is_int(t) ? ref_int_binary(VxmOp::kAdd, t, true, av[i], av[i])
                                           : ref_float_binary(VxmOp::kAdd, t, av[i], av[i]);
      EXPECT_EQ(e, want) << lpu::isa::to_string(t) << " lane " << i;
    }
  }
}

TEST(VxmLayout, ZeroLanesTouchesNothing) {
  const std::uint8_t* a[1] = {nullptr};
  std::uint8_t* d[1] = {nullptr};
  std::uint8_t x = 0;
  a[0] = &x;
  d[0] = &x;
  EXPECT_NO_THROW(vxm_apply(args(VxmOp::kNeg, DType::kI8), 0, a, nullptr, nullptr, d));
}

// --- integers ------------------------------------------------------------------------------------

TEST(VxmInt, I8EveryPairEveryBinaryOp) {
  std::vector<std::uint32_t> a, b;
  all_pairs(every(DType::kI8), every(DType::kI8), a, b);
  check_int_binary_all(DType::kI8, a, b, 4096);
}

TEST(VxmInt, I16EveryValueAgainstPartners) {
  std::vector<std::uint32_t> partners = {0x0000, 0x0001, 0xffff, 0x7fff, 0x8000, 0x8001,
                                         0x7ffe, 0x0002, 0xfffe, 0x00ff, 0x0100, 0xff00,
                                         0x00b5, 0x00b6, 0xff4a, 0x5555, 0xaaaa};
  auto r = random_bits(15, 3, DType::kI16);
  partners.insert(partners.end(), r.begin(), r.end());
  std::vector<std::uint32_t> a, b;
  all_pairs(every(DType::kI16), partners, a, b);
  check_int_binary_all(DType::kI16, a, b, 4000);
}

TEST(VxmInt, I32EdgesAndRandomPairs) {
  std::vector<std::uint32_t> a, b;
  all_pairs(i32_edges(), i32_edges(), a, b);
  const auto ra = random_bits(100000, 4, DType::kI32), rb = random_bits(100000, 5, DType::kI32);
  a.insert(a.end(), ra.begin(), ra.end());
  b.insert(b.end(), rb.begin(), rb.end());
  // Small magnitudes, where add/mul do not saturate.
  std::mt19937 g(6);
  std::uniform_int_distribution<std::int32_t> small(-50000, 50000);
  for (int i = 0; i < 100000; ++i) {
    a.push_back(ibits(small(g), DType::kI32));
    b.push_back(ibits(small(g), DType::kI32));
  }
  check_int_binary_all(DType::kI32, a, b, 4096);
}

TEST(VxmInt, HandWorked) {
  EXPECT_EQ(apply2(args(VxmOp::kAdd, DType::kI8, true), 100, 100), 127u);
  EXPECT_EQ(apply2(args(VxmOp::kAdd, DType::kI8, false), 100, 100), 200u);  // -56
  EXPECT_EQ(apply2(args(VxmOp::kSub, DType::kI8, true), 0x80, 1), 0x80u);
  EXPECT_EQ(apply2(args(VxmOp::kSub, DType::kI8, false), 0x80, 1), 0x7fu);
  EXPECT_EQ(apply2(args(VxmOp::kMul, DType::kI16, true), 300, 300), 0x7fffu);
  EXPECT_EQ(apply2(args(VxmOp::kMul, DType::kI16, false), 300, 300), 90000u & 0xffff);
  EXPECT_EQ(apply2(args(VxmOp::kMul, DType::kI16, false), 0xffff, 0xffff), 1u);
  EXPECT_EQ(apply2(args(VxmOp::kMul, DType::kI32, true), 0x80000000u, 0xffffffffu), 0x7fffffffu);
  EXPECT_EQ(apply2(args(VxmOp::kMul, DType::kI32, false), 0x80000000u, 0xffffffffu), 0x80000000u);
  EXPECT_EQ(apply2(args(VxmOp::kAdd, DType::kI32, true), 0x7fffffffu, 1), 0x7fffffffu);
  EXPECT_EQ(apply2(args(VxmOp::kAdd, DType::kI32, false), 0x7fffffffu, 1), 0x80000000u);
  EXPECT_EQ(apply2(args(VxmOp::kMax, DType::kI8), 0x80, 0x7f), 0x7fu);
  EXPECT_EQ(apply2(args(VxmOp::kMin, DType::kI32), 0xffffffffu, 0), 0xffffffffu);
  EXPECT_EQ(apply2(args(VxmOp::kCmpLt, DType::kI16), 0xffff, 0), 0xffffu);
  EXPECT_EQ(apply2(args(VxmOp::kCmpLt, DType::kI32), 0xffffffffu, 0), 0xffffffffu);
  EXPECT_EQ(apply2(args(VxmOp::kCmpGt, DType::kI32), 0xffffffffu, 0), 0u);
  EXPECT_EQ(apply1(args(VxmOp::kNeg, DType::kI8), 0x80), 0x7fu);
  EXPECT_EQ(apply1(args(VxmOp::kAbs, DType::kI16), 0x8000), 0x7fffu);
  EXPECT_EQ(apply1(args(VxmOp::kAbs, DType::kI32), 0x80000000u), 0x7fffffffu);
  EXPECT_EQ(apply1(args(VxmOp::kNeg, DType::kI32), 5), 0xfffffffbu);
  EXPECT_EQ(apply1(args(VxmOp::kRelu, DType::kI32), 0x80000000u), 0u);
  VxmArgs shl = args(VxmOp::kShl, DType::kI8), shr = args(VxmOp::kShr, DType::kI8);
  shl.shift = shr.shift = 3;
  EXPECT_EQ(apply1(shl, 0x3f), 0xf8u);
  EXPECT_EQ(apply1(shr, 0x80), 0xf0u);  // -128 >> 3 = -16
  EXPECT_EQ(apply1(shr, 0xff), 0xffu);  // -1 >> 3 = -1
  EXPECT_EQ(apply1(shr, 0x7f), 0x0fu);
  shl.type = shr.type = DType::kI32;
  shl.shift = shr.shift = 31;
  EXPECT_EQ(apply1(shl, 3), 0x80000000u);
  EXPECT_EQ(apply1(shr, 0x80000000u), 0xffffffffu);
  EXPECT_EQ(apply1(shr, 0x7fffffffu), 0u);
}

TEST(VxmInt, UnaryEveryI8AndI16AndI32Edges) {
  for (DType t : kIntTypes) {
    std::vector<std::uint32_t> a = t == DType::kI32 ? i32_edges() : every(t);
    if (t == DType::kI32) {
      const auto r = random_bits(50000, 7, t);
      a.insert(a.end(), r.begin(), r.end());
    }
    for (VxmOp op : {VxmOp::kNeg, VxmOp::kAbs, VxmOp::kRelu})
      check_unary(
          args(op, t), a, [&](std::uint32_t x) { return ref_int_unary(op, t, 0, x); }, 1000);
    check_unary(args(VxmOp::kMov, t), a, [](std::uint32_t x) { return x; });
  }
}

TEST(VxmInt, ShiftsEveryAmount) {
  for (DType t : kIntTypes) {
    std::vector<std::uint32_t> a = t == DType::kI32 ? i32_edges() : every(t);
    if (t == DType::kI32) {
      const auto r = random_bits(5000, 8, t);
      a.insert(a.end(), r.begin(), r.end());
    }
    for (VxmOp op : {VxmOp::kShl, VxmOp::kShr})
      for (int s = 0; s < nbits(t); ++s) {
        VxmArgs x = args(op, t);
        x.shift = s;
        check_unary(x, a, [&](std::uint32_t v) { return ref_int_unary(op, t, s, v); });
      }
  }
}

// --- floats --------------------------------------------------------------------------------------

TEST(VxmFloat, Fp16EveryValueAgainst64Partners) {
  std::vector<std::uint32_t> a, b;
  all_pairs(every(DType::kFp16), half_partners(DType::kFp16), a, b);
  check_float_binary_all(DType::kFp16, a, b, 4096);
}

TEST(VxmFloat, Bf16EveryValueAgainst64Partners) {
  std::vector<std::uint32_t> a, b;
  all_pairs(every(DType::kBf16), half_partners(DType::kBf16), a, b);
  check_float_binary_all(DType::kBf16, a, b, 4000);
}

TEST(VxmFloat, Fp32EdgesAndRandomPairs) {
  std::vector<std::uint32_t> a, b;
  all_pairs(fp32_edges(), fp32_edges(), a, b);
  const auto ra = random_bits(200000, 9, DType::kFp32), rb = random_bits(200000, 10, DType::kFp32);
  a.insert(a.end(), ra.begin(), ra.end());
  b.insert(b.end(), rb.begin(), rb.end());
  // Operands of similar magnitude (random bits rarely give cancellation or close ties), and tiny
  // ones whose products and sums land among the subnormals.
  std::mt19937 g(13);
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t x = g();
    const std::uint32_t e = (i & 1) ? 0x3f800000u : 0x00800000u;
    a.push_back((x & 0x807fffffu) | e);
    b.push_back((g() & 0x80ffffffu) | e);
  }
  check_float_binary_all(DType::kFp32, a, b, 4096);
}

TEST(VxmFloat, UnaryEveryFp16AndBf16) {
  for (DType t : {DType::kFp16, DType::kBf16})
    for (VxmOp op :
         {VxmOp::kNeg, VxmOp::kAbs, VxmOp::kRelu, VxmOp::kExp, VxmOp::kRsqrt, VxmOp::kTanh})
      check_unary(
          args(op, t), every(t), [&](std::uint32_t x) { return ref_float_unary(op, t, x); }, 777);
}

TEST(VxmFloat, UnaryFp32EdgesAndRandom) {
  auto a = fp32_edges();
  const auto r = random_bits(100000, 14, DType::kFp32);
  a.insert(a.end(), r.begin(), r.end());
  std::mt19937 g(15);  // moderate magnitudes, where exp and tanh are not saturated
  for (int i = 0; i < 20000; ++i)
    a.push_back((g() & 0x807fffffu) | ((0x7a + (g() % 10)) << 23));
  for (VxmOp op :
       {VxmOp::kNeg, VxmOp::kAbs, VxmOp::kRelu, VxmOp::kExp, VxmOp::kRsqrt, VxmOp::kTanh})
    check_unary(args(op, DType::kFp32), a,
                [&](std::uint32_t x) { return ref_float_unary(op, DType::kFp32, x); });
}

TEST(VxmFloat, HandWorked) {
  const auto fp16 = DType::kFp16, bf16 = DType::kBf16, fp32 = DType::kFp32;
  // max/min of zeros, either order.
  EXPECT_EQ(apply2(args(VxmOp::kMax, fp16), 0x8000, 0x0000), 0x0000u);
  EXPECT_EQ(apply2(args(VxmOp::kMax, fp16), 0x0000, 0x8000), 0x0000u);
  EXPECT_EQ(apply2(args(VxmOp::kMin, fp16), 0x8000, 0x0000), 0x8000u);
  EXPECT_EQ(apply2(args(VxmOp::kMin, fp16), 0x0000, 0x8000), 0x8000u);
  EXPECT_EQ(apply2(args(VxmOp::kMax, fp32), 0x80000000u, 0), 0u);
  EXPECT_EQ(apply2(args(VxmOp::kMin, fp32), 0, 0x80000000u), 0x80000000u);
  EXPECT_EQ(apply2(args(VxmOp::kMax, fp32), 0x7fc00000u, 0x3f800000u), kFp32QuietNan);
  EXPECT_EQ(apply2(args(VxmOp::kMin, fp32), 0x3f800000u, 0x7f800001u), kFp32QuietNan);
  // relu.
  EXPECT_EQ(apply1(args(VxmOp::kRelu, fp16), 0x8000), 0x0000u);
  EXPECT_EQ(apply1(args(VxmOp::kRelu, fp16), 0xbc00), 0x0000u);
  EXPECT_EQ(apply1(args(VxmOp::kRelu, fp16), 0x0001), 0x0001u);
  EXPECT_EQ(apply1(args(VxmOp::kRelu, bf16), 0xff80), 0x0000u);
  EXPECT_EQ(apply1(args(VxmOp::kRelu, fp32), 0x7f800000u), 0x7f800000u);
  EXPECT_EQ(apply1(args(VxmOp::kRelu, fp32), 0xffc00001u), kFp32QuietNan);
  // neg/abs.
  EXPECT_EQ(apply1(args(VxmOp::kNeg, fp16), 0x0000), 0x8000u);
  EXPECT_EQ(apply1(args(VxmOp::kNeg, bf16), 0x8001), 0x0001u);
  EXPECT_EQ(apply1(args(VxmOp::kAbs, fp32), 0x80000001u), 0x00000001u);
  EXPECT_EQ(apply1(args(VxmOp::kAbs, fp32), 0xff800000u), 0x7f800000u);
  // Arithmetic that rounds: fp16 1 + 2^-11 ties to 1, 1 + 3*2^-11 ties up to 1 + 2^-9.
  EXPECT_EQ(apply2(args(VxmOp::kAdd, fp16), 0x3c00, 0x1000), 0x3c00u);
  EXPECT_EQ(apply2(args(VxmOp::kAdd, fp16), 0x3c01, 0x1000), 0x3c02u);
  EXPECT_EQ(apply2(args(VxmOp::kAdd, fp16), 0x7bff, 0x5000), 0x7c00u);  // 65504 + 32 overflows
  EXPECT_EQ(apply2(args(VxmOp::kAdd, fp16), 0x7bff, 0x4c00), 0x7c00u);  // 65520 ties up to inf
  EXPECT_EQ(apply2(args(VxmOp::kAdd, fp16), 0x7bff, 0x4800), 0x7bffu);  // 65512 rounds down
  EXPECT_EQ(apply2(args(VxmOp::kMul, fp16), 0x0001, 0x3800), 0x0000u);  // 2^-25 ties to 0
  EXPECT_EQ(apply2(args(VxmOp::kMul, fp16), 0x0003, 0x3800), 0x0002u);  // 1.5 * 2^-24 ties to 2
  EXPECT_EQ(apply2(args(VxmOp::kSub, fp16), 0x3c00, 0x3c00), 0x0000u);  // +0
  EXPECT_EQ(apply2(args(VxmOp::kSub, fp32), 0x00000001u, 0x00000001u), 0u);
  EXPECT_EQ(apply2(args(VxmOp::kMul, fp32), 0x00000001u, 0x3f000000u), 0u);           // 2^-150
  EXPECT_EQ(apply2(args(VxmOp::kMul, fp32), 0x00000003u, 0x3f000000u), 0x00000002u);  // no flush
  EXPECT_EQ(apply2(args(VxmOp::kAdd, bf16), 0x3f80, 0x3b80), 0x3f80u);  // 1 + 2^-8 ties to 1
  EXPECT_EQ(apply2(args(VxmOp::kAdd, bf16), 0x3f81, 0x3b80), 0x3f82u);
  // Comparisons.
  EXPECT_EQ(apply2(args(VxmOp::kCmpEq, fp16), 0x8000, 0x0000), 0xffffu);
  EXPECT_EQ(apply2(args(VxmOp::kCmpNe, fp16), 0x7e00, 0x7e00), 0xffffu);
  EXPECT_EQ(apply2(args(VxmOp::kCmpEq, fp16), 0x7e00, 0x7e00), 0u);
  EXPECT_EQ(apply2(args(VxmOp::kCmpLe, bf16), 0x7fc0, 0x7f80), 0u);
  EXPECT_EQ(apply2(args(VxmOp::kCmpGe, fp32), 0x80000000u, 0u), 0xffffffffu);
  EXPECT_EQ(apply2(args(VxmOp::kCmpLt, fp32), 0xff800000u, 0xff7fffffu), 0xffffffffu);
  // Transcendentals.
  EXPECT_EQ(apply1(args(VxmOp::kExp, fp16), 0x0000), 0x3c00u);
  EXPECT_EQ(apply1(args(VxmOp::kExp, fp16), 0x3c00), 0x4170u);  // e = 2.71875 in fp16
  EXPECT_EQ(apply1(args(VxmOp::kExp, fp16), 0xfc00), 0x0000u);
  EXPECT_EQ(apply1(args(VxmOp::kExp, fp16), 0x4c00), 0x7c00u);  // e^16 overflows fp16
  EXPECT_EQ(apply1(args(VxmOp::kExp, fp32), 0x7f800000u), 0x7f800000u);
  EXPECT_EQ(apply1(args(VxmOp::kExp, fp32), 0x3f800000u), 0x402df854u);
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, fp16), 0x4400), 0x3800u);  // 1/sqrt(4) = 0.5
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, fp16), 0x0000), 0x7c00u);
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, fp16), 0x8000), 0xfc00u);
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, fp16), 0xbc00), 0x7e00u);
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, fp16), 0x7c00), 0x0000u);
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, bf16), 0x0000), 0x7f80u);
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, fp32), 0x80000000u), 0xff800000u);
  EXPECT_EQ(apply1(args(VxmOp::kRsqrt, fp32), 0x00000001u), 0x64b504f3u);  // 2^74.5
  EXPECT_EQ(apply1(args(VxmOp::kTanh, fp16), 0x4900), 0x3c00u);            // tanh(10) -> 1
  EXPECT_EQ(apply1(args(VxmOp::kTanh, bf16), 0xff80), 0xbf80u);            // tanh(-inf) = -1
  EXPECT_EQ(apply1(args(VxmOp::kTanh, fp32), 0x80000000u), 0x80000000u);   // tanh(-0) = -0
}

TEST(VxmFloat, CanonicalNan) {
  const std::uint32_t inf[] = {0x7c00, 0x7f80, 0x7f800000u};
  const std::uint32_t ninf[] = {0xfc00, 0xff80, 0xff800000u};
  const std::uint32_t zero = 0;
  const std::uint32_t payload[] = {0xfd01, 0xff81, 0xff800001u};  // negative signalling NaNs
  const std::uint32_t qnan[] = {kFp16QuietNan, kBf16QuietNan, kFp32QuietNan};
  for (int i = 0; i < 3; ++i) {
    const DType t = kFloatTypes[i];
    SCOPED_TRACE(lpu::isa::to_string(t));
    EXPECT_EQ(apply2(args(VxmOp::kAdd, t), inf[i], ninf[i]), qnan[i]);
    EXPECT_EQ(apply2(args(VxmOp::kSub, t), inf[i], inf[i]), qnan[i]);
    EXPECT_EQ(apply2(args(VxmOp::kMul, t), zero, ninf[i]), qnan[i]);
    for (VxmOp op : kFloatBinary) {
      EXPECT_EQ(apply2(args(op, t), payload[i], zero), qnan[i]) << to_string(op);
      EXPECT_EQ(apply2(args(op, t), zero, payload[i]), qnan[i]) << to_string(op);
    }
    for (VxmOp op :
         {VxmOp::kNeg, VxmOp::kAbs, VxmOp::kRelu, VxmOp::kExp, VxmOp::kRsqrt, VxmOp::kTanh})
      EXPECT_EQ(apply1(args(op, t), payload[i]), qnan[i]) << to_string(op);
    EXPECT_EQ(apply1(args(VxmOp::kRsqrt, t), ninf[i]), qnan[i]);
    // mov and sel keep raw bits, payload included.
    EXPECT_EQ(apply1(args(VxmOp::kMov, t), payload[i]), payload[i]);
    EXPECT_EQ(run(args(VxmOp::kSel, t), {payload[i]}, {zero}, {1})[0], payload[i]);
  }
}

// --- sel and mov ---------------------------------------------------------------------------------

TEST(VxmSelMov, EveryTypeRawBits) {
  for (DType t : kAllTypes) {
    SCOPED_TRACE(lpu::isa::to_string(t));
    const auto a = random_bits(5000, 16, t), b = random_bits(5000, 17, t);
    auto m = random_bits(5000, 18, t);
    // Masks: zero, all ones, a single high bit (-0 for floats), a single low bit, random.
    for (std::size_t i = 0; i < m.size(); ++i) {
      const std::uint32_t top = 1u << (nbits(t) - 1);
      const std::uint32_t pick[] = {0u, width_mask(t), top, 1u, m[i]};
      m[i] = pick[i % 5];
    }
    const auto got = run(args(VxmOp::kSel, t), a, b, m, 999);
    for (std::size_t i = 0; i < a.size(); ++i)
      ASSERT_EQ(got[i], m[i] != 0 ? a[i] : b[i]) << i << " mask " << hex(m[i]);
    EXPECT_EQ(run(args(VxmOp::kMov, t), a, {}, {}, 333), a);
  }
}

// --- casts ---------------------------------------------------------------------------------------

TEST(VxmCast, EverySmallSourceToEveryType) {
  for (DType from : {DType::kI8, DType::kI16, DType::kFp16, DType::kBf16})
    for (DType to : kAllTypes) {
      if (to == from) continue;
      check_unary(
          cast(from, to), every(from), [&](std::uint32_t x) { return ref_cast(from, to, x); },
          4000);
    }
}

TEST(VxmCast, I32AndFp32SourcesEdgesAndRandom) {
  for (DType from : {DType::kI32, DType::kFp32}) {
    std::vector<std::uint32_t> a = from == DType::kI32 ? i32_edges() : fp32_edges();
    const auto r = random_bits(100000, 19, from);
    a.insert(a.end(), r.begin(), r.end());
    std::mt19937 g(20);
    for (int i = 0; i < 100000; ++i) {
      if (from == DType::kI32)  // magnitudes where fp16/bf16/fp32 rounding shows
        a.push_back(ibits(static_cast<std::int32_t>(g()) >> (g() % 31), from));
      else  // exponents around the integer and fp16 ranges, and halves (ties)
        a.push_back((g() & 0x807fffffu) | ((0x60 + (g() % 0x40)) << 23));
    }
    for (int i = -300; i <= 300; ++i)
      if (from == DType::kFp32) a.push_back(float_bits(static_cast<float>(i) + 0.5f));
    for (DType to : kAllTypes) {
      if (to == from) continue;
      check_unary(cast(from, to), a, [&](std::uint32_t x) { return ref_cast(from, to, x); });
    }
  }
}

TEST(VxmCast, HandWorked) {
  const auto i8 = DType::kI8, i16 = DType::kI16, i32 = DType::kI32;
  const auto fp16 = DType::kFp16, bf16 = DType::kBf16, fp32 = DType::kFp32;
  auto c = [](DType from, DType to, std::uint32_t v) { return apply1(cast(from, to), v); };
  auto f = [](float x) { return float_bits(x); };
  // float -> int: ties to even, saturation, NaN -> 0.
  EXPECT_EQ(c(fp32, i8, f(2.5f)), 2u);
  EXPECT_EQ(c(fp32, i8, f(3.5f)), 4u);
  EXPECT_EQ(c(fp32, i8, f(-2.5f)), 0xfeu);
  EXPECT_EQ(c(fp32, i8, f(-3.5f)), 0xfcu);
  EXPECT_EQ(c(fp32, i8, f(0.5f)), 0u);
  EXPECT_EQ(c(fp32, i8, f(-0.5f)), 0u);
  EXPECT_EQ(c(fp32, i8, f(127.5f)), 0x7fu);
  EXPECT_EQ(c(fp32, i8, f(-128.5f)), 0x80u);
  EXPECT_EQ(c(fp32, i8, f(-129.0f)), 0x80u);
  EXPECT_EQ(c(fp32, i8, kFp32QuietNan), 0u);
  EXPECT_EQ(c(fp32, i16, 0x7f800000u), 0x7fffu);
  EXPECT_EQ(c(fp32, i16, 0xff800000u), 0x8000u);
  EXPECT_EQ(c(fp32, i32, f(1e10f)), 0x7fffffffu);
  EXPECT_EQ(c(fp32, i32, f(-1e10f)), 0x80000000u);
  EXPECT_EQ(c(fp32, i32, f(2147483648.0f)), 0x7fffffffu);
  EXPECT_EQ(c(fp32, i32, f(-2147483648.0f)), 0x80000000u);
  EXPECT_EQ(c(fp32, i32, 0x80000000u), 0u);  // -0
  EXPECT_EQ(c(fp16, i8, 0x4100), 2u);        // 2.5
  EXPECT_EQ(c(fp16, i32, 0x7bff), 65504u);
  EXPECT_EQ(c(fp16, i32, 0x7e00), 0u);
  EXPECT_EQ(c(bf16, i32, 0x4f00), 0x7fffffffu);  // 2^31
  EXPECT_EQ(c(bf16, i16, 0xc040), 0xfffdu);      // -3
  // int -> int saturates or sign-extends.
  EXPECT_EQ(c(i32, i8, 300), 0x7fu);
  EXPECT_EQ(c(i32, i8, ibits(-300, i32)), 0x80u);
  EXPECT_EQ(c(i32, i16, 40000), 0x7fffu);
  EXPECT_EQ(c(i8, i32, 0xff), 0xffffffffu);
  EXPECT_EQ(c(i16, i8, 0xff80), 0x80u);
  // int -> float: one rounding straight from the integer.
  EXPECT_EQ(c(i32, fp32, 16777217), 0x4b800000u);  // 2^24 + 1 ties to 2^24
  EXPECT_EQ(c(i32, fp32, 16777219), 0x4b800002u);  // ties up to even
  EXPECT_EQ(c(i32, bf16, 16842753), 0x4b81u);      // not 0x4b80 (fp32 would round twice)
  EXPECT_EQ(c(i32, bf16, ibits(-16842753, i32)), 0xcb81u);
  EXPECT_EQ(c(i32, bf16, 16842752), 0x4b80u);  // 2^24 + 2^16 exactly: tie to even
  EXPECT_EQ(c(i32, fp16, 16842753), 0x7c00u);
  EXPECT_EQ(c(i32, fp16, 65519), 0x7bffu);
  EXPECT_EQ(c(i32, fp16, 65520), 0x7c00u);
  EXPECT_EQ(c(i32, fp16, ibits(-65520, i32)), 0xfc00u);
  EXPECT_EQ(c(i16, fp16, 2049), 0x6800u);  // ties to even 2048
  EXPECT_EQ(c(i16, fp16, 2051), 0x6802u);  // ties to even 2052
  EXPECT_EQ(c(i16, fp16, 0x7fff), 0x7800u);
  EXPECT_EQ(c(i16, bf16, 0x8000), 0xc700u);
  EXPECT_EQ(c(i32, fp16, 0x80000000u), 0xfc00u);
  EXPECT_EQ(c(i32, bf16, 0x80000000u), 0xcf00u);
  EXPECT_EQ(c(i32, fp32, 0x7fffffffu), 0x4f000000u);
  EXPECT_EQ(c(i8, fp16, 0x80), 0xd800u);
  EXPECT_EQ(c(i8, bf16, 0), 0u);
  // float -> float.
  EXPECT_EQ(c(fp32, fp16, f(65520.0f)), 0x7c00u);
  EXPECT_EQ(c(fp32, fp16, 0x33000000u), 0x0000u);  // 2^-25 ties to 0
  EXPECT_EQ(c(fp32, fp16, 0x33000001u), 0x0001u);
  EXPECT_EQ(c(fp32, fp16, 0xff800001u), kFp16QuietNan);
  EXPECT_EQ(c(fp32, bf16, 0x3f808000u), 0x3f80u);  // tie to even
  EXPECT_EQ(c(fp32, bf16, 0x3f818000u), 0x3f82u);
  EXPECT_EQ(c(fp32, bf16, 0x7f7fffffu), 0x7f80u);
  EXPECT_EQ(c(fp32, bf16, 0x00000001u), 0x0000u);
  EXPECT_EQ(c(fp16, bf16, 0x3c01), 0x3f80u);  // 1 + 2^-10 -> 1 (one rounding)
  EXPECT_EQ(c(fp16, bf16, 0x0001), 0x3380u);  // 2^-24
  EXPECT_EQ(c(fp16, bf16, 0x7c01), kBf16QuietNan);
  EXPECT_EQ(c(fp16, bf16, 0xfc00), 0xff80u);
  EXPECT_EQ(c(bf16, fp16, 0x4780), 0x7c00u);  // 65536 overflows
  EXPECT_EQ(c(bf16, fp16, 0x477f), 0x7bf8u);  // 65280
  EXPECT_EQ(c(bf16, fp16, 0x3300), 0x0000u);  // 2^-25 ties to 0
  EXPECT_EQ(c(bf16, fp16, 0x3380), 0x0001u);  // 2^-24
  EXPECT_EQ(c(bf16, fp16, 0x8000), 0x8000u);
  EXPECT_EQ(c(bf16, fp32, 0x3f81), 0x3f810000u);
  EXPECT_EQ(c(bf16, fp32, 0xffc1), kFp32QuietNan);
  EXPECT_EQ(c(fp16, fp32, 0x0001), 0x33800000u);
  EXPECT_EQ(c(fp16, fp32, 0xfe01), kFp32QuietNan);
}

// --- argument checks -----------------------------------------------------------------------------

TEST(VxmArgsCheck, Supports) {
  for (DType t : kAllTypes) {
    for (VxmOp op : {VxmOp::kAdd, VxmOp::kSub, VxmOp::kMul, VxmOp::kMax, VxmOp::kMin, VxmOp::kCmpEq,
                     VxmOp::kCmpGe, VxmOp::kSel, VxmOp::kNeg, VxmOp::kAbs, VxmOp::kRelu,
                     VxmOp::kCast, VxmOp::kMov})
      EXPECT_TRUE(vxm_supports(op, t));
    for (VxmOp op : {VxmOp::kAnd, VxmOp::kOr, VxmOp::kXor, VxmOp::kShl, VxmOp::kShr})
      EXPECT_EQ(vxm_supports(op, t), is_int(t));
    for (VxmOp op : {VxmOp::kExp, VxmOp::kRsqrt, VxmOp::kTanh})
      EXPECT_EQ(vxm_supports(op, t), !is_int(t));
  }
  EXPECT_FALSE(vxm_supports(VxmOp::kAdd, DType::kNone));
  EXPECT_STREQ(to_string(VxmOp::kCmpLe), "cmp.le");
}

TEST(VxmArgsCheck, BadArgumentsThrow) {
  std::uint8_t buf[4][8] = {};
  const std::uint8_t* in[4] = {buf[0], buf[1], buf[2], buf[3]};
  std::uint8_t* out[4] = {buf[0], buf[1], buf[2], buf[3]};
  auto apply = [&](const VxmArgs& x, int lanes = 8) { vxm_apply(x, lanes, in, in, in, out); };
  EXPECT_THROW(apply(args(VxmOp::kExp, DType::kI8)), std::invalid_argument);
  EXPECT_THROW(apply(args(VxmOp::kRsqrt, DType::kI32)), std::invalid_argument);
  EXPECT_THROW(apply(args(VxmOp::kTanh, DType::kI16)), std::invalid_argument);
  EXPECT_THROW(apply(args(VxmOp::kAnd, DType::kFp32)), std::invalid_argument);
  EXPECT_THROW(apply(args(VxmOp::kXor, DType::kBf16)), std::invalid_argument);
  EXPECT_THROW(apply(args(VxmOp::kShl, DType::kFp16)), std::invalid_argument);
  EXPECT_THROW(apply(args(VxmOp::kAdd, DType::kNone)), std::invalid_argument);
  EXPECT_THROW(apply(args(static_cast<VxmOp>(200), DType::kI8)), std::invalid_argument);
  EXPECT_THROW(apply(cast(DType::kI8, DType::kI8)), std::invalid_argument);
  EXPECT_THROW(apply(cast(DType::kFp32, DType::kFp32)), std::invalid_argument);
  EXPECT_THROW(apply(cast(DType::kFp32, DType::kNone)), std::invalid_argument);
  EXPECT_THROW(apply(cast(DType::kFp32, static_cast<DType>(9))), std::invalid_argument);
  for (DType t : kIntTypes)
    for (VxmOp op : {VxmOp::kShl, VxmOp::kShr}) {
      VxmArgs x = args(op, t);
      x.shift = nbits(t);
      EXPECT_THROW(apply(x), std::invalid_argument);
      x.shift = -1;
      EXPECT_THROW(apply(x), std::invalid_argument);
      x.shift = nbits(t) - 1;
      EXPECT_NO_THROW(apply(x));
    }
  EXPECT_THROW(apply(args(VxmOp::kAdd, DType::kI8), -1), std::invalid_argument);
  EXPECT_THROW(apply(args(VxmOp::kAdd, DType::kI8), kVxmMaxLanes + 1), std::invalid_argument);
  EXPECT_THROW(vxm_apply(args(VxmOp::kAdd, DType::kI8), 8, in, nullptr, nullptr, out),
               std::invalid_argument);
  EXPECT_THROW(vxm_apply(args(VxmOp::kSel, DType::kI8), 8, in, in, nullptr, out),
               std::invalid_argument);
  EXPECT_THROW(vxm_apply(args(VxmOp::kNeg, DType::kI8), 8, nullptr, nullptr, nullptr, out),
               std::invalid_argument);
  EXPECT_THROW(vxm_apply(args(VxmOp::kNeg, DType::kI8), 8, in, nullptr, nullptr, nullptr),
               std::invalid_argument);
  const std::uint8_t* half[2] = {buf[0], nullptr};
  EXPECT_THROW(vxm_apply(args(VxmOp::kNeg, DType::kI16), 8, half, nullptr, nullptr, out),
               std::invalid_argument);
  // Operands an op does not read may be null.
  EXPECT_NO_THROW(vxm_apply(args(VxmOp::kNeg, DType::kI8), 8, in, nullptr, nullptr, out));
  EXPECT_NO_THROW(vxm_apply(args(VxmOp::kAdd, DType::kFp32, true), 8, in, in, nullptr, out));
}

// --- numerics: integer -> fp16 / bf16 ------------------------------------------------------------

TEST(NumericsIntToHalf, EveryI16AndI32Samples) {
  for (std::int64_t v = -32768; v <= 32767; ++v) {
    ASSERT_EQ(int_to_fp16(v), ref_round(static_cast<double>(v), DType::kFp16)) << v;
    ASSERT_EQ(int_to_bf16(v), ref_round(static_cast<double>(v), DType::kBf16)) << v;
  }
  std::mt19937_64 g(21);
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<std::int64_t>(g()) >> (g() % 64);
    if (v > (std::int64_t{1} << 53) || v < -(std::int64_t{1} << 53)) continue;  // exact in double
    ASSERT_EQ(int_to_fp16(v), ref_round(static_cast<double>(v), DType::kFp16)) << v;
    ASSERT_EQ(int_to_bf16(v), ref_round(static_cast<double>(v), DType::kBf16)) << v;
  }
  // Near ties: 2^k + 2^(k-8) (bf16 tie) plus or minus one.
  for (int k = 9; k < 62; ++k) {
    const std::int64_t t = (std::int64_t{1} << k) + (std::int64_t{1} << (k - 8));
    const auto base = static_cast<std::uint16_t>(0x3f80 + (k << 7));  // 2^k in bf16
    EXPECT_EQ(int_to_bf16(t), base) << k;                             // tie to even
    EXPECT_EQ(int_to_bf16(t + 1), base + 1) << k;
    EXPECT_EQ(int_to_bf16(t - 1), base) << k;
    EXPECT_EQ(int_to_bf16(-(t + 1)), (base + 1) | 0x8000) << k;
  }
  EXPECT_EQ(int_to_bf16(16842753), 0x4b81);
  EXPECT_EQ(int_to_bf16(std::numeric_limits<std::int64_t>::min()), 0xdf00);
  EXPECT_EQ(int_to_bf16(std::numeric_limits<std::int64_t>::max()), 0x5f00);
  EXPECT_EQ(int_to_fp16(std::numeric_limits<std::int64_t>::min()), 0xfc00);
  EXPECT_EQ(int_to_fp16(std::numeric_limits<std::int64_t>::max()), 0x7c00);
  EXPECT_EQ(int_to_fp16(0), 0x0000);
  EXPECT_EQ(int_to_fp16(1), 0x3c00);
  EXPECT_EQ(int_to_fp16(-1), 0xbc00);
  EXPECT_EQ(int_to_fp16(65504), 0x7bff);
  EXPECT_EQ(int_to_fp16(65519), 0x7bff);
  EXPECT_EQ(int_to_fp16(65520), 0x7c00);
  EXPECT_EQ(int_to_fp16(-65520), 0xfc00);
  EXPECT_EQ(int_to_fp16(2049), 0x6800);
  EXPECT_EQ(int_to_fp16(4097), 0x6c00);
  EXPECT_EQ(int_to_fp16(4099), 0x6c01);  // above the tie (4100 is 0x6c01)
}

// --- the one table linking a VXM operation to its instruction and its RTL -------------------

// Every VxmOp has its row, in enum order; its instruction is a VXM instruction of the ISA, and
// decoding (mnemonic, comparison) gives the op back.
TEST(VxmOps, EveryOpIsAnInstructionThatDecodesBack) {
  const auto& ops = vxm_ops();
  ASSERT_EQ(ops.size(), static_cast<std::size_t>(VxmOp::kMov) + 1);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const VxmOpInfo& o = ops[i];
    EXPECT_EQ(static_cast<std::size_t>(o.op), i) << o.name;
    const lpu::isa::OpInfo* info = lpu::isa::by_mnemonic(o.mnemonic);
    ASSERT_NE(info, nullptr) << o.mnemonic;
    EXPECT_EQ(info->unit, lpu::isa::Unit::kVxm) << o.mnemonic;
    ASSERT_NE(vxm_op_of(o.mnemonic, o.cmp), nullptr) << o.name;
    EXPECT_EQ(vxm_op_of(o.mnemonic, o.cmp)->op, o.op) << o.name;
    EXPECT_STREQ(to_string(o.op), o.name);
    if (*o.cmp) {
      const auto& names = lpu::isa::mod_names(lpu::isa::ModKind::kCmp);
      EXPECT_NE(std::find(names.begin(), names.end(), o.cmp), names.end()) << o.cmp;
    }
  }
  EXPECT_EQ(vxm_op_of("lw"), nullptr);
  EXPECT_EQ(vxm_op_of("cmp", "xx"), nullptr);
}

// The RTL ALU's operation codes (its OP_ localparams) are the table's, both ways.
TEST(VxmOps, RtlOperationCodesMatchTheTable) {
  std::ifstream f(std::string(LPU_SOURCE_DIR) + "/rtl/vxm/vxm_alu.sv");
  ASSERT_TRUE(f) << "rtl/vxm/vxm_alu.sv";
  std::stringstream text;
  text << f.rdbuf();
  std::map<std::string, int> rtl;
  const std::regex def(R"((OP_[A-Z]+)\s*=\s*5'd([0-9]+))");
  const std::string s = text.str();
  for (auto it = std::sregex_iterator(s.begin(), s.end(), def); it != std::sregex_iterator(); ++it)
    rtl[(*it)[1]] = std::stoi((*it)[2]);
  ASSERT_GE(rtl.size(), 20u);
  std::size_t in_rtl = 0;
  for (const VxmOpInfo& o : vxm_ops()) {
    if (o.rtl < 0) {
      EXPECT_STREQ(o.rtl_name, "") << o.name;
      continue;
    }
    ++in_rtl;
    ASSERT_TRUE(rtl.count(o.rtl_name)) << o.rtl_name << " is not in vxm_alu.sv";
    EXPECT_EQ(rtl[o.rtl_name], o.rtl) << o.rtl_name;
  }
  EXPECT_EQ(in_rtl, rtl.size()) << "vxm_alu.sv has an operation the table does not name";
}
