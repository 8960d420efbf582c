// The VXM ALU RTL (rtl/vxm/vxm_alu.sv, Verilated) against the model's functional core
// (func::vxm_apply): every integer operation, each width, saturating and wrapping, on directed
// edge values and thousands of seeded random superlanes each; results one cycle after the
// operands.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "Vvxm_alu.h"
#include "func/vxm.h"
#include "verilated.h"

using namespace lpu;
using func::VxmOp;

namespace {

constexpr int kLanes = 16;

struct Alu {
  VerilatedContext ctx;
  Vvxm_alu top{&ctx};
  Alu() {
    top.rst_n = 0;
    tick();
    tick();
    top.rst_n = 1;
  }
  void tick() {
    top.clk = 0;
    top.eval();
    top.clk = 1;
    top.eval();
  }
};

void put(VlWide<kLanes>& w, int lane, std::uint32_t v) {
  w[static_cast<std::size_t>(lane)] = v;
}

// The element types the integer datapath takes, with their RTL width code.
struct Type {
  isa::DType dt;
  int code, bits;
};
const Type kTypes[] = {
    {isa::DType::kI8, 0, 8}, {isa::DType::kI16, 1, 16}, {isa::DType::kI32, 2, 32}};

// Runs one superlane through the RTL and the functional core and compares the lanes.
void check(Alu& alu, VxmOp op, const Type& t, bool sat, int shift,
           const std::array<std::uint32_t, kLanes>& a, const std::array<std::uint32_t, kLanes>& b,
           const std::array<std::uint32_t, kLanes>& m, const char* what, const Type* to = nullptr) {
  auto& top = alu.top;
  top.to = static_cast<std::uint8_t>(to ? to->code : 0);
  top.in_valid = 1;
  top.op = static_cast<std::uint8_t>(op);
  top.width = static_cast<std::uint8_t>(t.code);
  top.saturate = sat;
  top.shamt = static_cast<std::uint8_t>(shift);
  for (int i = 0; i < kLanes; ++i) {
    put(top.a, i, a[static_cast<std::size_t>(i)]);
    put(top.b, i, b[static_cast<std::size_t>(i)]);
    put(top.mask, i, m[static_cast<std::size_t>(i)]);
  }
  alu.tick();
  ASSERT_TRUE(top.out_valid);
  // The model: byte planes of the same elements.
  const int bytes = (to ? to->bits : t.bits) / 8;
  std::vector<std::vector<std::uint8_t>> pa(4, std::vector<std::uint8_t>(kLanes)), pb(pa), pm(pa),
      pd(pa);
  const std::uint8_t* ap[4];
  const std::uint8_t* bp[4];
  const std::uint8_t* mp[4];
  std::uint8_t* dp[4];
  for (int k = 0; k < 4; ++k) {
    for (int i = 0; i < kLanes; ++i) {
      pa[k][i] = static_cast<std::uint8_t>(a[static_cast<std::size_t>(i)] >> (8 * k));
      pb[k][i] = static_cast<std::uint8_t>(b[static_cast<std::size_t>(i)] >> (8 * k));
      pm[k][i] = static_cast<std::uint8_t>(m[static_cast<std::size_t>(i)] >> (8 * k));
    }
    ap[k] = pa[k].data();
    bp[k] = pb[k].data();
    mp[k] = pm[k].data();
    dp[k] = pd[k].data();
  }
  func::VxmArgs args;
  args.op = op;
  args.type = t.dt;
  args.saturate = sat;
  args.shift = shift;
  if (to) args.to = to->dt;
  func::vxm_apply(args, kLanes, ap, bp, mp, dp);
  for (int i = 0; i < kLanes; ++i) {
    std::uint32_t want = 0;
    for (int k = 0; k < bytes; ++k)
      want |= static_cast<std::uint32_t>(pd[k][i]) << (8 * k);
    const std::uint32_t got = top.d[static_cast<std::size_t>(i)];
    ASSERT_EQ(got, want) << what << ": " << func::to_string(op) << " " << isa::to_string(t.dt)
                         << (to ? std::string(" to ") + isa::to_string(to->dt) : "")
                         << (sat ? " sat" : " mod") << " shift " << shift << ", lane " << i
                         << ": a " << std::hex << a[static_cast<std::size_t>(i)] << " b "
                         << b[static_cast<std::size_t>(i)] << " mask "
                         << m[static_cast<std::size_t>(i)];
  }
}

const VxmOp kOps[] = {VxmOp::kAdd,   VxmOp::kSub,   VxmOp::kMul,   VxmOp::kMax,   VxmOp::kMin,
                      VxmOp::kAnd,   VxmOp::kOr,    VxmOp::kXor,   VxmOp::kShl,   VxmOp::kShr,
                      VxmOp::kCmpEq, VxmOp::kCmpNe, VxmOp::kCmpLt, VxmOp::kCmpLe, VxmOp::kCmpGt,
                      VxmOp::kCmpGe, VxmOp::kSel,   VxmOp::kNeg,   VxmOp::kAbs,   VxmOp::kRelu,
                      VxmOp::kMov};

std::uint32_t low(std::int64_t v, int bits) {
  return bits == 32 ? static_cast<std::uint32_t>(v)
                    : static_cast<std::uint32_t>(v) & ((1u << bits) - 1);
}

}  // namespace

// Every operation and width on the values where integer arithmetic goes wrong: the extremes,
// -1, 0, 1, and their neighbours, each lane a different pair.
TEST(VxmAluRtl, DirectedEdges) {
  Alu alu;
  for (const Type& t : kTypes) {
    const std::int64_t mx = (std::int64_t{1} << (t.bits - 1)) - 1, mn = -mx - 1;
    const std::int64_t edge[] = {mn, mn + 1, -2, -1, 0, 1, 2, mx - 1, mx, mx / 2, mn / 2, 3};
    const int n = static_cast<int>(sizeof edge / sizeof edge[0]);
    for (VxmOp op : kOps)
      for (int sat = 0; sat < 2; ++sat)
        for (int start = 0; start < n * n; start += kLanes) {
          std::array<std::uint32_t, kLanes> a{}, b{}, m{};
          for (int i = 0; i < kLanes; ++i) {
            const int k = (start + i) % (n * n);
            a[static_cast<std::size_t>(i)] = low(edge[k / n], t.bits);
            b[static_cast<std::size_t>(i)] = low(edge[k % n], t.bits);
            m[static_cast<std::size_t>(i)] = low(edge[(k + 5) % n], t.bits);
          }
          const int shift =
              (op == VxmOp::kShl || op == VxmOp::kShr) ? (start / kLanes) % t.bits : 0;
          check(alu, op, t, sat != 0, shift, a, b, m, "edges");
          if (HasFatalFailure()) return;
        }
  }
}

// 2,000 seeded random superlanes per operation, width and mode: 16 lanes each.
TEST(VxmAluRtl, RandomSuperlanes) {
  Alu alu;
  std::mt19937 rng(2026);
  for (const Type& t : kTypes)
    for (VxmOp op : kOps)
      for (int sat = 0; sat < 2; ++sat)
        for (int rep = 0; rep < 2000; ++rep) {
          std::array<std::uint32_t, kLanes> a{}, b{}, m{};
          for (int i = 0; i < kLanes; ++i) {
            a[static_cast<std::size_t>(i)] = low(static_cast<std::int64_t>(rng()), t.bits);
            b[static_cast<std::size_t>(i)] = low(static_cast<std::int64_t>(rng()), t.bits);
            m[static_cast<std::size_t>(i)] = rng() % 3 == 0 ? 0 : low(rng(), t.bits);
          }
          const int shift = static_cast<int>(rng() % static_cast<unsigned>(t.bits));
          check(alu, op, t, sat != 0, shift, a, b, m, "random");
          if (HasFatalFailure()) return;
        }
}

// fp32 add, sub and mul (rounding to nearest even, subnormals, infinities), max, min, the compares,
// neg, abs, relu, select, mov. Pairs from the
// values where IEEE rules bite (signed zeros, infinities, quiet and signalling NaNs of both
// signs, subnormals, the largest finite) and random bit patterns, a third of them equal pairs.
TEST(VxmAluRtl, Fp32ArithmeticCompareSignSelect) {
  Alu alu;
  const Type fp32{isa::DType::kFp32, 3, 32};
  const VxmOp ops[] = {VxmOp::kAdd,   VxmOp::kSub,   VxmOp::kMax,   VxmOp::kMin,   VxmOp::kCmpEq,
                       VxmOp::kCmpNe, VxmOp::kCmpLt, VxmOp::kCmpLe, VxmOp::kCmpGt, VxmOp::kCmpGe,
                       VxmOp::kSel,   VxmOp::kNeg,   VxmOp::kAbs,   VxmOp::kRelu,  VxmOp::kMov};
  const std::uint32_t special[] = {0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000,
                                   0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00001, 0x00000001,
                                   0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x00800000};
  const int ns = static_cast<int>(sizeof special / sizeof special[0]);
  std::mt19937 rng(7);
  for (VxmOp op : ops) {
    for (int start = 0; start < ns * ns; start += kLanes) {
      std::array<std::uint32_t, kLanes> a{}, b{}, m{};
      for (int i = 0; i < kLanes; ++i) {
        const int k = (start + i) % (ns * ns);
        a[static_cast<std::size_t>(i)] = special[k / ns];
        b[static_cast<std::size_t>(i)] = special[k % ns];
        m[static_cast<std::size_t>(i)] = special[(k + 3) % ns];
      }
      check(alu, op, fp32, false, 0, a, b, m, "fp32 edges");
      if (HasFatalFailure()) return;
    }
    for (int rep = 0; rep < 2000; ++rep) {
      std::array<std::uint32_t, kLanes> a{}, b{}, m{};
      for (int i = 0; i < kLanes; ++i) {
        a[static_cast<std::size_t>(i)] = rng();
        b[static_cast<std::size_t>(i)] = rng() % 3 == 0 ? a[static_cast<std::size_t>(i)] : rng();
        m[static_cast<std::size_t>(i)] = rng() % 3 == 0 ? 0 : rng();
      }
      check(alu, op, fp32, false, 0, a, b, m, "fp32 random");
      if (HasFatalFailure()) return;
    }
  }
}

// fp32 add and sub where rounding and cancellation are hard: operands within a few exponents of
// each other (most random pairs are not), tiny values around the subnormal range, and values
// near overflow; 20,000 superlanes each.
TEST(VxmAluRtl, Fp32AddCloseOperands) {
  Alu alu;
  const Type fp32{isa::DType::kFp32, 3, 32};
  std::mt19937 rng(11);
  for (VxmOp op : {VxmOp::kAdd, VxmOp::kSub})
    for (int rep = 0; rep < 20000; ++rep) {
      std::array<std::uint32_t, kLanes> a{}, b{}, m{};
      for (int i = 0; i < kLanes; ++i) {
        const int kind = static_cast<int>(rng() % 4);
        std::uint32_t x = rng();
        if (kind == 1) x &= 0x80FFFFFFu;  // exponents 0 or 1: subnormals and the smallest normals
        if (kind == 2) x = (x & 0x80FFFFFFu) | 0x7E000000u;  // near the largest finite
        std::uint32_t y = x;
        const std::uint32_t e = (x >> 23) & 0xFF;
        const std::uint32_t de = rng() % 4;  // a few exponents apart
        if (e >= de) y = (y & ~(0xFFu << 23)) | ((e - de) << 23);
        y ^= rng() & ((1u << (rng() % 24)) - 1);  // low mantissa bits differ
        if (rng() % 2) y ^= 0x80000000u;
        if (kind == 3) y = x ^ 0x80000000u;  // exact cancellation
        a[static_cast<std::size_t>(i)] = x;
        b[static_cast<std::size_t>(i)] = y;
      }
      check(alu, op, fp32, false, 0, a, b, m, "fp32 close");
      if (HasFatalFailure()) return;
    }
}

// fp32 products whose exponents land near the ends of the range: into the subnormals (and
// below the smallest one), and just under and over the largest finite; 20,000 superlanes.
TEST(VxmAluRtl, Fp32MulNearTheRangeEnds) {
  Alu alu;
  const Type fp32{isa::DType::kFp32, 3, 32};
  std::mt19937 rng(13);
  for (int rep = 0; rep < 20000; ++rep) {
    std::array<std::uint32_t, kLanes> a{}, b{}, m{};
    for (int i = 0; i < kLanes; ++i) {
      const bool low = rng() % 2 == 0;
      // Biased exponents summing to about 127 - 126 - k (low) or 127 + 127 + k (high).
      const int sum =
          low ? 1 - static_cast<int>(rng() % 30) : 254 + static_cast<int>(rng() % 4) - 2;
      int ea = 1 + static_cast<int>(rng() % 253);
      int eb = sum + 127 - ea;
      if (eb < 0) {
        ea += eb;
        eb = 0;
      }
      if (eb > 254) {
        ea += eb - 254;
        eb = 254;
      }
      ea = std::clamp(ea, 0, 254);
      a[static_cast<std::size_t>(i)] =
          (rng() & 0x807FFFFFu) | (static_cast<std::uint32_t>(ea) << 23);
      b[static_cast<std::size_t>(i)] =
          (rng() & 0x807FFFFFu) | (static_cast<std::uint32_t>(eb) << 23);
    }
    check(alu, VxmOp::kMul, fp32, false, 0, a, b, m, "fp32 mul range ends");
    if (HasFatalFailure()) return;
  }
}

// Casts between every pair of i8, i16, i32 and fp32: integers at their extremes and random,
// floats at the special values, halfway cases (x.5 for even and odd x), the edges of each
// integer range, and random values with exponents from 2^-3 to 2^33; 2,000 superlanes per pair.
TEST(VxmAluRtl, Casts) {
  Alu alu;
  const Type types[] = {{isa::DType::kI8, 0, 8},
                        {isa::DType::kI16, 1, 16},
                        {isa::DType::kI32, 2, 32},
                        {isa::DType::kFp32, 3, 32}};
  std::mt19937 rng(17);
  auto f = [](float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
  };
  const std::uint32_t fspecial[] = {
      0x00000000,      0x80000000,       0x7F800000,       0xFF800000,    0x7FC00000,
      0xFF800001,      0x00000001,       f(0.5f),          f(-0.5f),      f(1.5f),
      f(2.5f),         f(-2.5f),         f(0.49999997f),   f(127.5f),     f(128.5f),
      f(-128.5f),      f(-129.f),        f(32767.5f),      f(-32768.5f),  f(2147483520.f),
      f(2147483648.f), f(-2147483648.f), f(-2147483904.f), f(8388607.5f), f(16777215.f),
      0x7F7FFFFF};
  const int ns = static_cast<int>(sizeof fspecial / sizeof fspecial[0]);
  for (const Type& from : types)
    for (const Type& to : types) {
      if (from.code == to.code) continue;
      const std::int64_t mx = (std::int64_t{1} << (from.bits - 1)) - 1, mn = -mx - 1;
      for (int rep = 0; rep < 2000; ++rep) {
        std::array<std::uint32_t, kLanes> a{}, none{};
        for (int i = 0; i < kLanes; ++i) {
          std::uint32_t x;
          if (from.code == 3) {
            if (rep == 0) {
              x = fspecial[i % ns];
            } else if (rep == 1) {
              x = fspecial[(i + kLanes) % ns];
            } else {
              // exponents 124..160 (0.125 up to 2^33), random mantissa and sign
              x = (rng() & 0x807FFFFFu) | ((124u + rng() % 37) << 23);
              if (rng() % 4 == 0) x &= 0xFFFFF000u;  // fewer fraction bits: ties appear
            }
          } else {
            const std::int64_t edge[] = {mn, mn + 1, -1, 0, 1, mx - 1, mx, 16777217, -16777217};
            x = rep == 0 ? low(edge[i % 9], from.bits)
                         : low(static_cast<std::int64_t>(rng()) >> (rng() % 32), from.bits);
          }
          a[static_cast<std::size_t>(i)] = x;
        }
        check(alu, VxmOp::kCast, from, false, 0, a, none, none, "cast", &to);
        if (HasFatalFailure()) return;
      }
    }
}
