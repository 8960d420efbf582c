// The SXM lane network RTL (rtl/sxm/sxm_lanes.sv, Verilated with 32 lanes: tiny's) against the
// model's functional core (func::shift, select, permute): every shift amount and select point,
// 2,000 random planes each; 5,000 random bijections for permute, and 5,000 maps with a target out
// of range or taken twice, whose verdict (the first bad lane, and the lane that took the target)
// must spell the model's message.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>

#include "Vsxm_lanes.h"
#include "func/sxm.h"
#include "harness.h"
#include "verilated.h"

using namespace lpu;
using namespace lpu::rtl_test;

namespace {

constexpr int kLanes = 32;
using Plane = std::array<std::uint8_t, kLanes>;

struct Net {
  VerilatedContext ctx;
  Vsxm_lanes top{&ctx};
  Net() { reset(top); }
  void tick() { rtl_test::tick(top); }
  static void put(VlWide<8>& w, const Plane& p) { put_bytes(w, p.data(), kLanes); }
  Plane run(int op, int amount, const Plane& a, const Plane& b, const Plane& lo, const Plane& hi) {
    top.in_valid = 1;
    top.op = static_cast<std::uint8_t>(op);
    top.amount = static_cast<std::uint16_t>(amount);
    put(top.a, a);
    put(top.b, b);
    put(top.map_lo, lo);
    put(top.map_hi, hi);
    tick();
    EXPECT_TRUE(top.out_valid);
    Plane d;
    for (int i = 0; i < kLanes; ++i)
      d[static_cast<std::size_t>(i)] = byte_of(top.d, i);
    return d;
  }
  // The permute verdict as the model words it.
  std::string verdict(const Plane& lo, const Plane& hi) const {
    if (!top.bad) return "";
    const int i = top.bad_lane;
    const int t = lo[static_cast<std::size_t>(i)] | hi[static_cast<std::size_t>(i)] << 8;
    if (!top.bad_dup)
      return "lane " + std::to_string(i) + ": target " + std::to_string(t) + " is out of range (" +
             std::to_string(kLanes) + " lanes)";
    return "lane " + std::to_string(i) + ": target " + std::to_string(t) +
           " is already the target of lane " + std::to_string(top.bad_first);
  }
};

Plane random_plane(std::mt19937& rng) {
  Plane p;
  for (auto& x : p)
    x = static_cast<std::uint8_t>(rng());
  return p;
}

}  // namespace

TEST(SxmLanesRtl, ShiftAndSelectEveryAmount) {
  Net net;
  std::mt19937 rng(1);
  const Plane zero{};
  for (int n = 0; n <= kLanes; ++n)
    for (int rep = 0; rep < 2000 / (kLanes + 1) + 1; ++rep) {
      const Plane a = random_plane(rng), b = random_plane(rng);
      for (int op = 0; op < 3; ++op) {
        Plane want{};
        if (op < 2)
          func::shift(a.data(), want.data(), kLanes, n, op == 0);
        else
          func::select(a.data(), b.data(), want.data(), kLanes, n);
        ASSERT_EQ(net.run(op, n, a, b, zero, zero), want) << "op " << op << ", amount " << n;
      }
    }
}

TEST(SxmLanesRtl, PermuteBijections) {
  Net net;
  std::mt19937 rng(2);
  const Plane zero{};
  for (int rep = 0; rep < 5000; ++rep) {
    std::array<int, kLanes> map;
    std::iota(map.begin(), map.end(), 0);
    std::shuffle(map.begin(), map.end(), rng);
    Plane lo, hi;
    for (int i = 0; i < kLanes; ++i) {
      lo[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(map[static_cast<std::size_t>(i)]);
      hi[static_cast<std::size_t>(i)] = 0;
    }
    const Plane a = random_plane(rng);
    Plane want{};
    ASSERT_FALSE(func::permute(a.data(), lo.data(), hi.data(), want.data(), kLanes));
    ASSERT_EQ(net.run(3, 0, a, zero, lo, hi), want) << "rep " << rep;
    ASSERT_FALSE(net.top.bad);
  }
}

TEST(SxmLanesRtl, PermuteBadMapsNamedAsTheModel) {
  Net net;
  std::mt19937 rng(3);
  const Plane zero{};
  for (int rep = 0; rep < 5000; ++rep) {
    std::array<int, kLanes> map;
    std::iota(map.begin(), map.end(), 0);
    std::shuffle(map.begin(), map.end(), rng);
    const int i = static_cast<int>(rng() % kLanes);
    if (rep % 2)
      map[static_cast<std::size_t>(i)] = kLanes + static_cast<int>(rng() % 40000);  // out of range
    else
      map[static_cast<std::size_t>(i)] = map[rng() % kLanes];  // maybe a repeat
    Plane lo, hi;
    for (int k = 0; k < kLanes; ++k) {
      lo[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(map[static_cast<std::size_t>(k)]);
      hi[static_cast<std::size_t>(k)] =
          static_cast<std::uint8_t>(map[static_cast<std::size_t>(k)] >> 8);
    }
    const Plane a = random_plane(rng);
    Plane model{};
    const auto err = func::permute(a.data(), lo.data(), hi.data(), model.data(), kLanes);
    const Plane got = net.run(3, 0, a, zero, lo, hi);
    ASSERT_EQ(net.verdict(lo, hi), err.value_or("")) << "rep " << rep;
    if (!err) {
      ASSERT_EQ(got, model);
    }
  }
}
