// The MXM supercell RTL (rtl/mxm/mxm_supercell.sv, Verilated) against the model's MXM plane
// (func::MxmPlane, 16 x 16, int8): weights installed directly or through the staging buffer,
// cleared, and 5,000 random activation vectors with random partial sums coming in; the column
// sums leaving are the partial sums plus the model's products, modulo 2^32, a clock later.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>

#include "Vmxm_supercell.h"
#include "func/mxm.h"
#include "harness.h"
#include "verilated.h"

using namespace lpu;
using namespace lpu::rtl_test;

namespace {

using Row = std::array<std::uint8_t, 16>;

struct Cell {
  VerilatedContext ctx;
  Vmxm_supercell top{&ctx};
  Cell() { reset(top); }
  void tick() {
    rtl_test::tick(top);
    top.w_load = top.w_direct = top.w_install = top.w_clear = top.x_valid = 0;
  }
  static void put(VlWide<4>& w, const Row& r) { put_bytes(w, r.data(), 16); }
  void weight(bool direct, int row, const Row& r) {
    (direct ? top.w_direct : top.w_load) = 1;
    top.w_row = static_cast<std::uint8_t>(row);
    put(top.w_data, r);
    tick();
  }
};

Row random_row(std::mt19937& rng) {
  Row r;
  for (auto& b : r)
    b = static_cast<std::uint8_t>(rng());
  return r;
}

// The model's product of x through weights w (16 rows).
std::array<std::uint32_t, 16> model_product(const std::array<Row, 16>& w, const Row& x) {
  func::MxmPlane plane(16, 16, 16, 1, true);
  const std::uint8_t* planes[16];
  for (int r = 0; r < 16; ++r)
    planes[r] = w[static_cast<std::size_t>(r)].data();
  EXPECT_EQ(plane.install_rows(isa::DType::kI8, 0, planes), "");
  const std::uint8_t* xp[1] = {x.data()};
  EXPECT_EQ(plane.activate(isa::DType::kI8, xp), "");
  std::array<std::array<std::uint8_t, 16>, 4> out{};
  std::uint8_t* o[4] = {out[0].data(), out[1].data(), out[2].data(), out[3].data()};
  EXPECT_EQ(plane.accumulate(isa::DType::kI32, func::MxmPlane::AccMode::kOnly, 0, o), "");
  std::array<std::uint32_t, 16> p{};
  for (int c = 0; c < 16; ++c)
    for (int b = 0; b < 4; ++b)
      p[static_cast<std::size_t>(c)] |=
          static_cast<std::uint32_t>(out[static_cast<std::size_t>(b)][static_cast<std::size_t>(c)])
          << (8 * b);
  return p;
}

}  // namespace

TEST(MxmSupercellRtl, ColumnSumsMatchTheModel) {
  Cell cell;
  std::mt19937 rng(9);
  std::array<Row, 16> w{};
  for (int set = 0; set < 50; ++set) {
    // Odd sets go through the staging buffer (cleared first), even ones straight in.
    const bool direct = set % 2 == 0;
    if (!direct) {
      cell.top.w_clear = 1;
      cell.top.w_target = 0;
      cell.tick();
    }
    for (int r = 0; r < 16; ++r) {
      // In set 1 every third row is left as the clear made it: zero.
      const bool cleared = set == 1 && r % 3 == 0;
      w[static_cast<std::size_t>(r)] = cleared ? Row{} : random_row(rng);
      if (!cleared) cell.weight(direct, r, w[static_cast<std::size_t>(r)]);
    }
    if (!direct) {
      cell.top.w_install = 1;
      cell.tick();
    }
    for (int rep = 0; rep < 100; ++rep) {
      const Row x = rep == 0 ? Row{} : random_row(rng);
      std::array<std::uint32_t, 16> psum;
      for (auto& p : psum)
        p = rep % 2 ? rng() : 0;
      cell.top.x_valid = 1;
      Cell::put(cell.top.x, x);
      for (int c = 0; c < 16; ++c)
        cell.top.psum_in[static_cast<std::size_t>(c)] = psum[static_cast<std::size_t>(c)];
      cell.tick();
      ASSERT_TRUE(cell.top.out_valid);
      const auto want = model_product(w, x);
      for (int c = 0; c < 16; ++c)
        ASSERT_EQ(
            cell.top.psum_out[static_cast<std::size_t>(c)] - psum[static_cast<std::size_t>(c)],
            want[static_cast<std::size_t>(c)])
            << "set " << set << " vector " << rep << " column " << c;
    }
  }
}
