// The MXM plane RTL (rtl/mxm/mxm_plane.sv: 2 x 2 supercells, tiny's 32 x 32, 320 accumulators,
// Verilated) against func::MxmPlane: weights loaded 16 rows at a time into the staging buffer and
// installed, or installed straight; streams of activation vectors, one a clock, whose products
// leave after ROWS/16 = 2 clock edges (the first takes the vector in); and accumulations in every
// mode into random slots. Every product and every emitted sum equals the model's.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "Vmxm_plane.h"
#include "func/mxm.h"
#include "harness.h"
#include "verilated.h"

using namespace lpu;
using namespace lpu::rtl_test;

namespace {

constexpr int kN = 32, kSlots = 320;
using Vec = std::array<std::uint8_t, kN>;
using Sums = std::array<std::uint32_t, kN>;

struct Plane {
  VerilatedContext ctx;
  Vmxm_plane top{&ctx};
  Plane() { reset(top); }
  void tick() {
    rtl_test::tick(top);
    top.w_load = top.w_direct = top.w_install = top.w_clear = top.x_valid = top.acc_valid = 0;
  }
  static void put(VlWide<8>& w, const Vec& v) { put_bytes(w, v.data(), kN); }
};

Vec random_vec(std::mt19937& rng) {
  Vec v;
  for (auto& b : v)
    b = static_cast<std::uint8_t>(rng());
  return v;
}

Sums sums_of(std::uint8_t* const* out) {
  Sums s{};
  for (int c = 0; c < kN; ++c)
    for (int b = 0; b < 4; ++b)
      s[static_cast<std::size_t>(c)] |= static_cast<std::uint32_t>(out[b][c]) << (8 * b);
  return s;
}

}  // namespace

TEST(MxmPlaneRtl, ProductsAndAccumulationsMatchTheModel) {
  Plane rtl;
  func::MxmPlane model(kN, kN, kN, kSlots, true);
  std::mt19937 rng(10);
  std::array<std::array<std::uint8_t, kN>, 4> out{};
  std::uint8_t* o[4] = {out[0].data(), out[1].data(), out[2].data(), out[3].data()};
  for (int round = 0; round < 40; ++round) {
    // Weights: two groups of 16 rows, staged then installed (even rounds), or straight in.
    const bool staged = round % 2 == 0;
    for (int g = 0; g < 2; ++g) {
      std::array<Vec, 16> rows;
      const std::uint8_t* planes[16];
      for (int j = 0; j < 16; ++j) {
        rows[static_cast<std::size_t>(j)] = random_vec(rng);
        planes[j] = rows[static_cast<std::size_t>(j)].data();
      }
      ASSERT_EQ(staged ? model.load(isa::DType::kI8, 16 * g, 0, planes)
                       : model.install_rows(isa::DType::kI8, 16 * g, planes),
                "");
      for (int j = 0; j < 16; ++j) {
        (staged ? rtl.top.w_load : rtl.top.w_direct) = 1;
        rtl.top.w_row = static_cast<std::uint16_t>(16 * g + j);
        Plane::put(rtl.top.w_data, rows[static_cast<std::size_t>(j)]);
        rtl.tick();
      }
    }
    if (staged) {
      model.install_from_buffer(0);
      rtl.top.w_install = 1;
      rtl.tick();
    }
    // 20 vectors, one a clock; a product is out after the second edge (the first takes it in).
    std::deque<Sums> products;
    for (int k = 0; k < 21; ++k) {
      if (k < 20) {
        const Vec x = random_vec(rng);
        const std::uint8_t* xp[1] = {x.data()};
        ASSERT_EQ(model.activate(isa::DType::kI8, xp), "");
        rtl.top.x_valid = 1;
        Plane::put(rtl.top.x, x);
      }
      rtl.tick();
      if (k >= 1) {
        ASSERT_TRUE(rtl.top.p_valid) << "clock " << k;
        Sums p;
        for (int c = 0; c < kN; ++c)
          p[static_cast<std::size_t>(c)] = rtl.top.product[static_cast<std::size_t>(c)];
        products.push_back(p);
      }
    }
    // Each product into an accumulator: runs of first, next..., last, or only.
    int slot = static_cast<int>(rng() % kSlots), left = 0;
    while (!products.empty()) {
      func::MxmPlane::AccMode mode;
      if (left == 0) {
        slot = static_cast<int>(rng() % kSlots);
        left = 1 + static_cast<int>(rng() % 4);
        mode = left == 1 ? func::MxmPlane::AccMode::kOnly : func::MxmPlane::AccMode::kFirst;
      } else {
        mode = left == 1 ? func::MxmPlane::AccMode::kLast : func::MxmPlane::AccMode::kNext;
      }
      --left;
      ASSERT_EQ(model.accumulate(isa::DType::kI32, mode, slot, o), "");
      rtl.top.acc_valid = 1;
      rtl.top.acc_mode = static_cast<std::uint8_t>(mode);
      rtl.top.acc_slot = static_cast<std::uint16_t>(slot);
      for (int c = 0; c < kN; ++c)
        rtl.top.acc_in[static_cast<std::size_t>(c)] = products.front()[static_cast<std::size_t>(c)];
      products.pop_front();
      rtl.tick();
      const bool emits = func::MxmPlane::emits(mode);
      ASSERT_EQ(static_cast<bool>(rtl.top.acc_emit), emits);
      if (!emits) continue;
      const Sums want = sums_of(o);
      for (int c = 0; c < kN; ++c)
        ASSERT_EQ(rtl.top.acc_out[static_cast<std::size_t>(c)], want[static_cast<std::size_t>(c)])
            << "round " << round << " column " << c;
    }
  }
}
