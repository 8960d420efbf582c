#include "func/vxm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "func/numerics.h"

// Structure (for speed, brief: >= 10 M instructions/s): the op and the type are decided once per
// call; each (op, type) pair is its own instantiation of a block loop. A block of kBlock elements
// is gathered from the byte planes into a local array of the element's raw bits, transformed by
// one straight-line loop (no per-element dispatch), and scattered back to the planes. The
// transform loop always runs the full block, a constant trip count that GCC's -O2 ("very cheap")
// vectoriser accepts; the tail of the last block is zero-filled and discarded.
//
// Floats: fp16 and bf16 operands widen exactly to fp32, the op runs in fp32 and the result rounds
// once to the type. For add, sub and mul this is the correctly rounded fp16/bf16 result: fp32 has
// 24 >= 2p + 2 significand bits (p = 11 for fp16, 8 for bf16), so rounding first to fp32 and then
// to the narrow type cannot differ from one rounding (double rounding is innocuous). fp16 results
// never reach fp32's subnormal range; bf16 results can, but there a bf16 sum is exact in fp32 and a
// bf16 product has at most 16 significant bits, too few to lie within half an fp32 ulp of a bf16
// rounding midpoint without being on it, so the argument still holds.

namespace lpu::func {

namespace {

using isa::DType;
using Planes = const std::uint8_t* const*;
using OutPlanes = std::uint8_t* const*;

constexpr int kBlock = 64;
using FullBlock = std::integral_constant<int, kBlock>;

// --- element types -------------------------------------------------------------------------
// U: the raw bits. Integers: S the signed value, W a type wide enough for exact add/sub/mul.
// Floats: widen (exact, to fp32) and narrow (one rounding, NaN -> canonical quiet NaN).

template <class Unsigned, class Signed, class Wide>
struct IntType {
  using U = Unsigned;
  using S = Signed;
  using W = Wide;
  static constexpr bool kInt = true;
  static constexpr int kBits = 8 * sizeof(U);
  static constexpr W kMin = std::numeric_limits<S>::min();
  static constexpr W kMax = std::numeric_limits<S>::max();
  static S value(U u) { return static_cast<S>(u); }
  template <class V>  // any integer type that holds the exact result (int after promotion)
  static U sat(V v) {
    return static_cast<U>(static_cast<S>(v < kMin ? kMin : v > kMax ? kMax : v));
  }
};
using I8 = IntType<std::uint8_t, std::int8_t, std::int16_t>;
using I16 = IntType<std::uint16_t, std::int16_t, std::int32_t>;
using I32 = IntType<std::uint32_t, std::int32_t, std::int64_t>;

struct Fp16 {
  using U = std::uint16_t;
  static constexpr bool kInt = false;
  static float widen(U u) { return fp16_to_fp32(u); }
  static U narrow(float f) { return fp32_to_fp16(f); }
  static U from_int(std::int64_t v) { return int_to_fp16(v); }
};
struct Bf16 {
  using U = std::uint16_t;
  static constexpr bool kInt = false;
  static float widen(U u) { return bf16_to_fp32(u); }
  static U narrow(float f) { return fp32_to_bf16(f); }
  static U from_int(std::int64_t v) { return int_to_bf16(v); }
};
struct Fp32 {
  using U = std::uint32_t;
  static constexpr bool kInt = false;
  static float widen(U u) { return bits_float(u); }
  static U narrow(float f) { return f != f ? kFp32QuietNan : float_bits(f); }
  static U from_int(std::int64_t v) { return float_bits(int_to_fp32(v)); }
};

/// Calls f(T{}) with T the element type of `t`.
template <class F>
void with_type(DType t, F&& f) {
  switch (t) {
    case DType::kI8:
      return f(I8{});
    case DType::kI16:
      return f(I16{});
    case DType::kI32:
      return f(I32{});
    case DType::kFp16:
      return f(Fp16{});
    case DType::kBf16:
      return f(Bf16{});
    case DType::kFp32:
      return f(Fp32{});
    case DType::kNone:
      break;
  }
  throw std::invalid_argument("vxm: bad element type");
}

// --- byte planes <-> typed blocks ----------------------------------------------------------
// Plane bytes may alias anything as far as the compiler knows, so the helpers take __restrict
// pointers: without them every loop would need a run-time overlap check, which the -O2 vectoriser
// does not generate. (The planes of one operand are distinct arrays; `d` may be the very planes
// of an operand, because a block is gathered completely before it is scattered.) On a
// little-endian host an element's bytes are interleaved and de-interleaved directly (about three
// times faster than shifting and or-ing with SSE2); elsewhere they are assembled by shifts.

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool kLittleEndian = true;
#else
constexpr bool kLittleEndian = false;
#endif

template <class Count>
inline void gather_planes(const std::uint8_t* __restrict p0, Count n,
                          std::uint8_t* __restrict out) {
  std::memcpy(out, p0, static_cast<std::size_t>(n));  // inline moves when n is the full block
}
template <class Count>
inline void gather_planes(const std::uint8_t* __restrict p0, const std::uint8_t* __restrict p1,
                          Count n, std::uint16_t* __restrict out) {
  if constexpr (kLittleEndian) {
    std::uint8_t* __restrict o = reinterpret_cast<std::uint8_t*>(out);
    for (int i = 0; i < n; ++i) {
      o[2 * i] = p0[i];
      o[2 * i + 1] = p1[i];
    }
  } else {
    for (int i = 0; i < n; ++i)
      out[i] = static_cast<std::uint16_t>(p0[i] | p1[i] << 8);
  }
}
template <class Count>
inline void gather_planes(const std::uint8_t* __restrict p0, const std::uint8_t* __restrict p1,
                          const std::uint8_t* __restrict p2, const std::uint8_t* __restrict p3,
                          Count n, std::uint32_t* __restrict out) {
  if constexpr (kLittleEndian) {
    std::uint8_t* __restrict o = reinterpret_cast<std::uint8_t*>(out);
    for (int i = 0; i < n; ++i) {
      o[4 * i] = p0[i];
      o[4 * i + 1] = p1[i];
      o[4 * i + 2] = p2[i];
      o[4 * i + 3] = p3[i];
    }
  } else {
    for (int i = 0; i < n; ++i)
      out[i] = std::uint32_t{p0[i]} | std::uint32_t{p1[i]} << 8 | std::uint32_t{p2[i]} << 16 |
               std::uint32_t{p3[i]} << 24;
  }
}

template <class Count>
inline void scatter_planes(const std::uint8_t* __restrict in, Count n,
                           std::uint8_t* __restrict p0) {
  std::memcpy(p0, in, static_cast<std::size_t>(n));
}
template <class Count>
inline void scatter_planes(const std::uint16_t* __restrict in, Count n, std::uint8_t* __restrict p0,
                           std::uint8_t* __restrict p1) {
  if constexpr (kLittleEndian) {
    const std::uint8_t* __restrict b = reinterpret_cast<const std::uint8_t*>(in);
    for (int i = 0; i < n; ++i) {
      p0[i] = b[2 * i];
      p1[i] = b[2 * i + 1];
    }
  } else {
    for (int i = 0; i < n; ++i) {
      p0[i] = static_cast<std::uint8_t>(in[i]);
      p1[i] = static_cast<std::uint8_t>(in[i] >> 8);
    }
  }
}
template <class Count>
inline void scatter_planes(const std::uint32_t* __restrict in, Count n, std::uint8_t* __restrict p0,
                           std::uint8_t* __restrict p1, std::uint8_t* __restrict p2,
                           std::uint8_t* __restrict p3) {
  if constexpr (kLittleEndian) {
    const std::uint8_t* __restrict b = reinterpret_cast<const std::uint8_t*>(in);
    for (int i = 0; i < n; ++i) {
      p0[i] = b[4 * i];
      p1[i] = b[4 * i + 1];
      p2[i] = b[4 * i + 2];
      p3[i] = b[4 * i + 3];
    }
  } else {
    for (int i = 0; i < n; ++i) {
      p0[i] = static_cast<std::uint8_t>(in[i]);
      p1[i] = static_cast<std::uint8_t>(in[i] >> 8);
      p2[i] = static_cast<std::uint8_t>(in[i] >> 16);
      p3[i] = static_cast<std::uint8_t>(in[i] >> 24);
    }
  }
}

template <class U, class Count>
inline void gather_planes(Planes p, int off, Count n, U* out) {
  if constexpr (sizeof(U) == 1) {
    gather_planes(p[0] + off, n, out);
  } else if constexpr (sizeof(U) == 2) {
    gather_planes(p[0] + off, p[1] + off, n, out);
  } else {
    gather_planes(p[0] + off, p[1] + off, p[2] + off, p[3] + off, n, out);
  }
}

template <class U, class Count>
inline void scatter_planes(const U* in, int off, Count n, OutPlanes p) {
  if constexpr (sizeof(U) == 1) {
    scatter_planes(in, n, p[0] + off);
  } else if constexpr (sizeof(U) == 2) {
    scatter_planes(in, n, p[0] + off, p[1] + off);
  } else {
    scatter_planes(in, n, p[0] + off, p[1] + off, p[2] + off, p[3] + off);
  }
}

template <class U>
[[gnu::always_inline]] inline void gather(Planes p, int off, int n, U* out) {
  if (n == kBlock) {
    gather_planes(p, off, FullBlock{}, out);
  } else {
    gather_planes(p, off, n, out);
    std::fill(out + n, out + kBlock, U{0});
  }
}

template <class U>
[[gnu::always_inline]] inline void scatter(const U* in, int off, int n, OutPlanes p) {
  if (n == kBlock) {
    scatter_planes(in, off, FullBlock{}, p);
  } else {
    scatter_planes(in, off, n, p);
  }
}

// --- block loops -----------------------------------------------------------------------------

template <class UA, class UD, class F>
void map1(int lanes, Planes a, OutPlanes d, F f) {
  UA xa[kBlock];
  UD xd[kBlock];
  for (int off = 0; off < lanes; off += kBlock) {
    const int n = std::min(kBlock, lanes - off);
    gather(a, off, n, xa);
    for (int i = 0; i < kBlock; ++i)
      xd[i] = f(xa[i]);
    scatter(xd, off, n, d);
  }
}

template <class U, class F>
void map2(int lanes, Planes a, Planes b, OutPlanes d, F f) {
  U xa[kBlock], xb[kBlock], xd[kBlock];
  for (int off = 0; off < lanes; off += kBlock) {
    const int n = std::min(kBlock, lanes - off);
    gather(a, off, n, xa);
    gather(b, off, n, xb);
    for (int i = 0; i < kBlock; ++i)
      xd[i] = f(xa[i], xb[i]);
    scatter(xd, off, n, d);
  }
}

template <class U>
void select(int lanes, Planes mask, Planes a, Planes b, OutPlanes d) {
  U xm[kBlock], xa[kBlock], xb[kBlock], xd[kBlock];
  for (int off = 0; off < lanes; off += kBlock) {
    const int n = std::min(kBlock, lanes - off);
    gather(mask, off, n, xm);
    gather(a, off, n, xa);
    gather(b, off, n, xb);
    for (int i = 0; i < kBlock; ++i)
      xd[i] = xm[i] != 0 ? xa[i] : xb[i];
    scatter(xd, off, n, d);
  }
}

template <class U>
constexpr U all_ones() {
  return static_cast<U>(~U{0});
}

// --- integer ops -----------------------------------------------------------------------------

template <class T>
void int_op(const VxmArgs& x, int lanes, Planes a, Planes b, OutPlanes d) {
  using U = typename T::U;
  using W = typename T::W;
  constexpr U kOnes = all_ones<U>();
  const int s = x.shift;
  switch (x.op) {
    case VxmOp::kAdd:
      if (x.saturate) {
        if constexpr (T::kBits == 32) {
          // In 32 bits (SSE2 has no 64-bit compares): a wrapped sum overflowed iff both operands
          // have the sign the result lacks; it then saturates toward a's sign (MAX + 1 = MIN).
          return map2<U>(lanes, a, b, d, [](U p, U q) {
            const U r = p + q;
            return ((p ^ r) & (q ^ r)) >> 31 ? 0x7fffffffu + (p >> 31) : r;
          });
        }
        return map2<U>(lanes, a, b, d, [](U p, U q) {
          return T::sat(static_cast<W>(W{T::value(p)} + W{T::value(q)}));
        });
      }
      return map2<U>(lanes, a, b, d, [](U p, U q) { return static_cast<U>(p + q); });
    case VxmOp::kSub:
      if (x.saturate) {
        if constexpr (T::kBits == 32) {  // overflow iff a and b differ in sign and r and a too
          return map2<U>(lanes, a, b, d, [](U p, U q) {
            const U r = p - q;
            return ((p ^ q) & (p ^ r)) >> 31 ? 0x7fffffffu + (p >> 31) : r;
          });
        }
        return map2<U>(lanes, a, b, d, [](U p, U q) {
          return T::sat(static_cast<W>(W{T::value(p)} - W{T::value(q)}));
        });
      }
      return map2<U>(lanes, a, b, d, [](U p, U q) { return static_cast<U>(p - q); });
    case VxmOp::kMul:
      if (x.saturate)
        return map2<U>(lanes, a, b, d, [](U p, U q) {
          return T::sat(static_cast<W>(W{T::value(p)} * W{T::value(q)}));
        });
      // Unsigned 32-bit product: no promotion to (overflowing) int for 16-bit operands.
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return static_cast<U>(std::uint32_t{p} * std::uint32_t{q}); });
    case VxmOp::kMax:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return T::value(p) > T::value(q) ? p : q; });
    case VxmOp::kMin:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return T::value(p) < T::value(q) ? p : q; });
    case VxmOp::kAnd:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return static_cast<U>(p & q); });
    case VxmOp::kOr:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return static_cast<U>(p | q); });
    case VxmOp::kXor:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return static_cast<U>(p ^ q); });
    case VxmOp::kShl:
      return map1<U, U>(lanes, a, d, [s](U p) { return static_cast<U>(std::uint32_t{p} << s); });
    case VxmOp::kShr:  // arithmetic: >> of a negative signed value (GCC defines it, C++20 too)
      return map1<U, U>(lanes, a, d, [s](U p) { return static_cast<U>(T::value(p) >> s); });
    case VxmOp::kCmpEq:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return p == q ? kOnes : U{0}; });
    case VxmOp::kCmpNe:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return p != q ? kOnes : U{0}; });
    case VxmOp::kCmpLt:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::value(p) < T::value(q) ? kOnes : U{0}; });
    case VxmOp::kCmpLe:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::value(p) <= T::value(q) ? kOnes : U{0}; });
    case VxmOp::kCmpGt:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::value(p) > T::value(q) ? kOnes : U{0}; });
    case VxmOp::kCmpGe:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::value(p) >= T::value(q) ? kOnes : U{0}; });
    case VxmOp::kNeg:
      return map1<U, U>(lanes, a, d, [](U p) { return T::sat(-W{T::value(p)}); });
    case VxmOp::kAbs:
      return map1<U, U>(lanes, a, d, [](U p) {
        const W v = T::value(p);
        return T::sat(v < 0 ? -v : v);
      });
    case VxmOp::kRelu:
      return map1<U, U>(lanes, a, d, [](U p) { return T::value(p) < 0 ? U{0} : p; });
    default:
      break;
  }
  throw std::invalid_argument(std::string("vxm: ") + to_string(x.op) + " is not an integer op");
}

// --- float ops -------------------------------------------------------------------------------

// max/min in fp32: NaN if either operand is NaN; equal operands (only ±0 differ in bits) combine
// their sign bits so that max(-0, +0) = +0 and min(-0, +0) = -0 in either order. Written as
// selects so that the loop vectorises.
inline float max_f(float x, float y) {
  const std::uint32_t ux = float_bits(x), uy = float_bits(y);
  std::uint32_t r = x > y ? ux : uy;
  r = x == y ? (ux & uy) : r;
  r = (x != x || y != y) ? kFp32QuietNan : r;
  return bits_float(r);
}
inline float min_f(float x, float y) {
  const std::uint32_t ux = float_bits(x), uy = float_bits(y);
  std::uint32_t r = x < y ? ux : uy;
  r = x == y ? (ux | uy) : r;
  r = (x != x || y != y) ? kFp32QuietNan : r;
  return bits_float(r);
}

template <class T>
void float_op(const VxmArgs& x, int lanes, Planes a, Planes b, OutPlanes d) {
  using U = typename T::U;
  constexpr U kOnes = all_ones<U>();
  switch (x.op) {
    case VxmOp::kAdd:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return T::narrow(T::widen(p) + T::widen(q)); });
    case VxmOp::kSub:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return T::narrow(T::widen(p) - T::widen(q)); });
    case VxmOp::kMul:
      return map2<U>(lanes, a, b, d, [](U p, U q) { return T::narrow(T::widen(p) * T::widen(q)); });
    case VxmOp::kMax:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::narrow(max_f(T::widen(p), T::widen(q))); });
    case VxmOp::kMin:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::narrow(min_f(T::widen(p), T::widen(q))); });
    case VxmOp::kCmpEq:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::widen(p) == T::widen(q) ? kOnes : U{0}; });
    case VxmOp::kCmpNe:  // true when either is NaN
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::widen(p) != T::widen(q) ? kOnes : U{0}; });
    case VxmOp::kCmpLt:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::widen(p) < T::widen(q) ? kOnes : U{0}; });
    case VxmOp::kCmpLe:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::widen(p) <= T::widen(q) ? kOnes : U{0}; });
    case VxmOp::kCmpGt:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::widen(p) > T::widen(q) ? kOnes : U{0}; });
    case VxmOp::kCmpGe:
      return map2<U>(lanes, a, b, d,
                     [](U p, U q) { return T::widen(p) >= T::widen(q) ? kOnes : U{0}; });
    case VxmOp::kNeg:  // sign flip; a NaN comes out canonical through narrow
      return map1<U, U>(lanes, a, d, [](U p) { return T::narrow(-T::widen(p)); });
    case VxmOp::kAbs:
      return map1<U, U>(lanes, a, d, [](U p) { return T::narrow(std::fabs(T::widen(p))); });
    case VxmOp::kRelu:  // x > 0 ? x : +0 (so -0 -> +0); NaN stays NaN
      return map1<U, U>(lanes, a, d, [](U p) {
        const float f = T::widen(p);
        return T::narrow(f != f ? f : f > 0.0f ? f : 0.0f);
      });
    case VxmOp::kExp:
      return map1<U, U>(lanes, a, d, [](U p) {
        return T::narrow(static_cast<float>(std::exp(static_cast<double>(T::widen(p)))));
      });
    case VxmOp::kRsqrt:  // 1/sqrt: +0 -> +inf, -0 -> -inf, < 0 -> NaN, +inf -> +0
      return map1<U, U>(lanes, a, d, [](U p) {
        return T::narrow(static_cast<float>(1.0 / std::sqrt(static_cast<double>(T::widen(p)))));
      });
    case VxmOp::kTanh:
      return map1<U, U>(lanes, a, d, [](U p) {
        return T::narrow(static_cast<float>(std::tanh(static_cast<double>(T::widen(p)))));
      });
    default:
      break;
  }
  throw std::invalid_argument(std::string("vxm: ") + to_string(x.op) + " is not a float op");
}

// --- casts -----------------------------------------------------------------------------------

template <class Src, class Dst>
typename Dst::U convert(typename Src::U p) {
  if constexpr (Src::kInt && Dst::kInt) {
    return static_cast<typename Dst::U>(
        static_cast<typename Dst::S>(saturate(Src::value(p), Dst::kMin, Dst::kMax)));
  } else if constexpr (Src::kInt) {
    return Dst::from_int(Src::value(p));  // one rounding, straight from the integer
  } else if constexpr (Dst::kInt) {
    return static_cast<typename Dst::U>(
        fp32_to_int(Src::widen(p), Dst::kBits));  // RNE, sat, NaN->0
  } else {
    return Dst::narrow(Src::widen(p));  // exact widening, one rounding when narrowing
  }
}

void cast_op(const VxmArgs& x, int lanes, Planes a, OutPlanes d) {
  with_type(x.type, [&](auto src) {
    with_type(x.to, [&](auto dst) {
      using Src = decltype(src);
      using Dst = decltype(dst);
      if constexpr (!std::is_same_v<Src, Dst>) {
        map1<typename Src::U, typename Dst::U>(
            lanes, a, d, [](typename Src::U p) { return convert<Src, Dst>(p); });
      }
    });
  });
}

// --- argument checks -------------------------------------------------------------------------

bool valid_type(DType t) {
  switch (t) {
    case DType::kI8:
    case DType::kI16:
    case DType::kI32:
    case DType::kFp16:
    case DType::kBf16:
    case DType::kFp32:
      return true;
    case DType::kNone:
      break;
  }
  return false;
}

bool reads_b(VxmOp op) {
  switch (op) {
    case VxmOp::kAdd:
    case VxmOp::kSub:
    case VxmOp::kMul:
    case VxmOp::kMax:
    case VxmOp::kMin:
    case VxmOp::kAnd:
    case VxmOp::kOr:
    case VxmOp::kXor:
    case VxmOp::kCmpEq:
    case VxmOp::kCmpNe:
    case VxmOp::kCmpLt:
    case VxmOp::kCmpLe:
    case VxmOp::kCmpGt:
    case VxmOp::kCmpGe:
    case VxmOp::kSel:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void bad(const VxmArgs& x, const std::string& why) {
  throw std::invalid_argument(std::string("vxm ") + to_string(x.op) + "." + isa::to_string(x.type) +
                              ": " + why);
}

void check_planes(const VxmArgs& x, const std::uint8_t* const* p, int bytes, const char* name) {
  if (!p) bad(x, std::string("missing operand ") + name);
  for (int k = 0; k < bytes; ++k)
    if (!p[k]) bad(x, std::string("missing byte plane of operand ") + name);
}

}  // namespace

const std::vector<VxmOpInfo>& vxm_ops() {
  static const std::vector<VxmOpInfo> ops = {
      {VxmOp::kAdd, "add", "add", "", 0, "OP_ADD"},
      {VxmOp::kSub, "sub", "sub", "", 1, "OP_SUB"},
      {VxmOp::kMul, "mul", "mul", "", 2, "OP_MUL"},
      {VxmOp::kMax, "max", "max", "", 3, "OP_MAX"},
      {VxmOp::kMin, "min", "min", "", 4, "OP_MIN"},
      {VxmOp::kAnd, "and", "and", "", 5, "OP_AND"},
      {VxmOp::kOr, "or", "or", "", 6, "OP_OR"},
      {VxmOp::kXor, "xor", "xor", "", 7, "OP_XOR"},
      {VxmOp::kShl, "shl", "shl", "", 8, "OP_SHL"},
      {VxmOp::kShr, "shr", "shr", "", 9, "OP_SHR"},
      {VxmOp::kCmpEq, "cmp.eq", "cmp", "eq", 10, "OP_EQ"},
      {VxmOp::kCmpNe, "cmp.ne", "cmp", "ne", 11, "OP_NE"},
      {VxmOp::kCmpLt, "cmp.lt", "cmp", "lt", 12, "OP_LT"},
      {VxmOp::kCmpLe, "cmp.le", "cmp", "le", 13, "OP_LE"},
      {VxmOp::kCmpGt, "cmp.gt", "cmp", "gt", 14, "OP_GT"},
      {VxmOp::kCmpGe, "cmp.ge", "cmp", "ge", 15, "OP_GE"},
      {VxmOp::kSel, "sel", "sel", "", 16, "OP_SEL"},
      {VxmOp::kNeg, "neg", "neg", "", 17, "OP_NEG"},
      {VxmOp::kAbs, "abs", "abs", "", 18, "OP_ABS"},
      {VxmOp::kRelu, "relu", "relu", "", 19, "OP_RELU"},
      {VxmOp::kExp, "exp", "exp", "", -1, ""},
      {VxmOp::kRsqrt, "rsqrt", "rsqrt", "", -1, ""},
      {VxmOp::kTanh, "tanh", "tanh", "", -1, ""},
      {VxmOp::kCast, "cast", "cast", "", 23, "OP_CAST"},
      {VxmOp::kMov, "mov", "mov", "", 24, "OP_MOV"},
  };
  return ops;
}

const VxmOpInfo& vxm_op_info(VxmOp op) {
  return vxm_ops()[static_cast<std::size_t>(op)];
}

const VxmOpInfo* vxm_op_of(std::string_view mnemonic, std::string_view cmp) {
  for (const VxmOpInfo& o : vxm_ops())
    if (mnemonic == o.mnemonic && cmp == o.cmp) return &o;
  return nullptr;
}

const char* to_string(VxmOp op) {
  const auto i = static_cast<std::size_t>(op);
  return i < vxm_ops().size() ? vxm_ops()[i].name : "?";
}

bool vxm_supports(VxmOp op, DType type) {
  if (!valid_type(type)) return false;
  switch (op) {
    case VxmOp::kAnd:
    case VxmOp::kOr:
    case VxmOp::kXor:
    case VxmOp::kShl:
    case VxmOp::kShr:
      return isa::is_integer(type);
    case VxmOp::kExp:
    case VxmOp::kRsqrt:
    case VxmOp::kTanh:
      return !isa::is_integer(type);
    case VxmOp::kAdd:
    case VxmOp::kSub:
    case VxmOp::kMul:
    case VxmOp::kMax:
    case VxmOp::kMin:
    case VxmOp::kCmpEq:
    case VxmOp::kCmpNe:
    case VxmOp::kCmpLt:
    case VxmOp::kCmpLe:
    case VxmOp::kCmpGt:
    case VxmOp::kCmpGe:
    case VxmOp::kSel:
    case VxmOp::kNeg:
    case VxmOp::kAbs:
    case VxmOp::kRelu:
    case VxmOp::kCast:
    case VxmOp::kMov:
      return true;
  }
  return false;
}

namespace {

inline int clamp8(int v) {
  return v < -128 ? -128 : v > 127 ? 127 : v;
}

// Saturating int8 add and subtract. The compiler does not turn the clamped loop into the SIMD
// saturating instructions (it widens to 16 bits instead, about six times slower), so on x86 they
// are written out; the scalar loop finishes the tail and serves other hosts.
template <bool kSub>
void i8_sat(const std::int8_t* __restrict a, const std::int8_t* __restrict b,
            std::int8_t* __restrict d, int lanes) {
  int i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= lanes; i += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     kSub ? _mm_subs_epi8(x, y) : _mm_adds_epi8(x, y));
  }
#endif
  for (; i < lanes; ++i)
    d[i] = static_cast<std::int8_t>(clamp8(kSub ? a[i] - b[i] : a[i] + b[i]));
}

// The same results as the blocked path for these ops on i8 (the exhaustive i8 tests run through
// here); returns false for any other op.
bool i8_direct(const VxmArgs& x, int lanes, const std::uint8_t* const* pa,
               const std::uint8_t* const* pb, std::uint8_t* const* pd) {
  const auto* __restrict a = reinterpret_cast<const std::int8_t*>(pa[0]);
  const auto* __restrict b = pb ? reinterpret_cast<const std::int8_t*>(pb[0]) : nullptr;
  auto* __restrict d = reinterpret_cast<std::int8_t*>(pd[0]);
  if (reinterpret_cast<const void*>(a) == d || (b && reinterpret_cast<const void*>(b) == d))
    return false;
  switch (x.op) {
    case VxmOp::kAdd:
      if (x.saturate)
        i8_sat<false>(a, b, d, lanes);
      else
        for (int i = 0; i < lanes; ++i)
          d[i] = static_cast<std::int8_t>(static_cast<std::uint8_t>(a[i] + b[i]));
      return true;
    case VxmOp::kSub:
      if (x.saturate)
        i8_sat<true>(a, b, d, lanes);
      else
        for (int i = 0; i < lanes; ++i)
          d[i] = static_cast<std::int8_t>(static_cast<std::uint8_t>(a[i] - b[i]));
      return true;
    case VxmOp::kMax:
      for (int i = 0; i < lanes; ++i)
        d[i] = a[i] > b[i] ? a[i] : b[i];
      return true;
    case VxmOp::kMin:
      for (int i = 0; i < lanes; ++i)
        d[i] = a[i] < b[i] ? a[i] : b[i];
      return true;
    case VxmOp::kRelu:
      for (int i = 0; i < lanes; ++i)
        d[i] = a[i] > 0 ? a[i] : 0;
      return true;
    default:
      return false;
  }
}

}  // namespace

void vxm_apply(const VxmArgs& x, int lanes, const std::uint8_t* const* a,
               const std::uint8_t* const* b, const std::uint8_t* const* mask,
               std::uint8_t* const* d) {
  // Checks, once per call.
  if (!vxm_supports(x.op, x.type)) bad(x, "op not defined for this type");
  if (lanes < 0 || lanes > kVxmMaxLanes) bad(x, "lanes " + std::to_string(lanes) + " out of range");
  const int bytes = isa::dtype_bytes(x.type);
  int out_bytes = bytes;
  if (x.op == VxmOp::kCast) {
    if (!valid_type(x.to)) bad(x, "bad cast target type");
    if (x.to == x.type) bad(x, "cast to the same type");
    out_bytes = isa::dtype_bytes(x.to);
  }
  if ((x.op == VxmOp::kShl || x.op == VxmOp::kShr) && (x.shift < 0 || x.shift >= 8 * bytes))
    bad(x, "shift " + std::to_string(x.shift) + " out of range");
  check_planes(x, a, bytes, "a");
  if (reads_b(x.op)) check_planes(x, b, bytes, "b");
  if (x.op == VxmOp::kSel) check_planes(x, mask, bytes, "mask");
  if (!d) bad(x, "missing operand d");
  for (int k = 0; k < out_bytes; ++k)
    if (!d[k]) bad(x, "missing byte plane of operand d");
  if (lanes == 0) return;

  // int8 on single planes needs no gathering: the common ops run as plain loops that the
  // compiler vectorises fully (about 3x faster than the blocked path on tsp-v1 vectors).
  if (x.type == isa::DType::kI8 && i8_direct(x, lanes, a, b, d)) return;

  // Dispatch, once per call.
  switch (x.op) {
    case VxmOp::kMov:  // raw bits, plane by plane
      for (int k = 0; k < bytes; ++k)
        std::memmove(d[k], a[k], static_cast<std::size_t>(lanes));
      return;
    case VxmOp::kSel:  // raw bits; depends only on the element width
      if (bytes == 1) return select<std::uint8_t>(lanes, mask, a, b, d);
      if (bytes == 2) return select<std::uint16_t>(lanes, mask, a, b, d);
      return select<std::uint32_t>(lanes, mask, a, b, d);
    case VxmOp::kCast:
      return cast_op(x, lanes, a, d);
    default:
      break;
  }
  with_type(x.type, [&](auto t) {
    using T = decltype(t);
    if constexpr (T::kInt) {
      int_op<T>(x, lanes, a, b, d);
    } else {
      float_op<T>(x, lanes, a, b, d);
    }
  });
}

}  // namespace lpu::func
