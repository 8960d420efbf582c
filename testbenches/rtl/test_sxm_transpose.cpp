// The SXM transposer RTL (rtl/sxm/sxm_transpose.sv, Verilated) against func::transpose on one
// superlane: 16 planes of 16 lanes; directed (each byte its own position) and 5,000 random.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>

#include "Vsxm_transpose.h"
#include "func/sxm.h"
#include "verilated.h"

using namespace lpu;

namespace {

using Block = std::array<std::array<std::uint8_t, 16>, 16>;  // [plane][lane]

void check(Vsxm_transpose& top, const Block& in) {
  for (int i = 0; i < 16; ++i)
    for (int w = 0; w < 4; ++w)
      top.a[static_cast<std::size_t>(i * 4 + w)] =
          static_cast<std::uint32_t>(in[i][4 * w]) |
          static_cast<std::uint32_t>(in[i][4 * w + 1]) << 8 |
          static_cast<std::uint32_t>(in[i][4 * w + 2]) << 16 |
          static_cast<std::uint32_t>(in[i][4 * w + 3]) << 24;
  top.in_valid = 1;
  top.clk = 0;
  top.eval();
  top.clk = 1;
  top.eval();
  ASSERT_TRUE(top.out_valid);
  Block want{};
  const std::uint8_t* src[16];
  std::uint8_t* dst[16];
  for (int i = 0; i < 16; ++i) {
    src[i] = in[static_cast<std::size_t>(i)].data();
    dst[i] = want[static_cast<std::size_t>(i)].data();
  }
  func::transpose(src, dst, 16);
  for (int j = 0; j < 16; ++j)
    for (int l = 0; l < 16; ++l) {
      const auto got = static_cast<std::uint8_t>(
          top.d[static_cast<std::size_t>((j * 16 + l) / 4)] >> (8 * ((j * 16 + l) % 4)));
      ASSERT_EQ(got, want[static_cast<std::size_t>(j)][static_cast<std::size_t>(l)])
          << "plane " << j << " lane " << l;
    }
}

}  // namespace

TEST(SxmTransposeRtl, MatchesTheModel) {
  VerilatedContext ctx;
  Vsxm_transpose top{&ctx};
  top.rst_n = 0;
  top.clk = 0;
  top.eval();
  top.clk = 1;
  top.eval();
  top.rst_n = 1;
  Block b{};
  for (int i = 0; i < 16; ++i)
    for (int l = 0; l < 16; ++l)
      b[static_cast<std::size_t>(i)][static_cast<std::size_t>(l)] =
          static_cast<std::uint8_t>(i * 16 + l);
  check(top, b);
  std::mt19937 rng(4);
  for (int rep = 0; rep < 5000; ++rep) {
    for (auto& row : b)
      for (auto& x : row)
        x = static_cast<std::uint8_t>(rng());
    check(top, b);
    if (HasFatalFailure()) return;
  }
}
