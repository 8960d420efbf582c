// The SXM transposer RTL (rtl/sxm/sxm_transpose.sv, Verilated) against func::transpose on one
// superlane: 16 planes of 16 lanes; directed (each byte its own position) and 5,000 random.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>

#include "Vsxm_transpose.h"
#include "func/sxm.h"
#include "harness.h"
#include "verilated.h"

using namespace lpu;
using namespace lpu::rtl_test;

namespace {

using Block = std::array<std::array<std::uint8_t, 16>, 16>;  // [plane][lane]

void check(Vsxm_transpose& top, const Block& in) {
  std::uint8_t rows[256];  // plane i's 16 lanes at bytes 16i..
  for (int i = 0; i < 16; ++i)
    std::copy(in[static_cast<std::size_t>(i)].begin(), in[static_cast<std::size_t>(i)].end(),
              rows + 16 * i);
  put_bytes(top.a, rows, 256);
  top.in_valid = 1;
  tick(top);
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
      ASSERT_EQ(byte_of(top.d, j * 16 + l),
                want[static_cast<std::size_t>(j)][static_cast<std::size_t>(l)])
          << "plane " << j << " lane " << l;
    }
}

}  // namespace

TEST(SxmTransposeRtl, MatchesTheModel) {
  VerilatedContext ctx;
  Vsxm_transpose top{&ctx};
  reset(top);
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
