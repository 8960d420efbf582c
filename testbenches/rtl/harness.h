// What the standalone tests of the RTL blocks share: a clock edge of a Verilated block driven
// directly (C++ mode), its reset, and byte vectors on its wide pins (byte i in bits 8i..8i+7).
#pragma once

#include <cstddef>
#include <cstdint>

#include "verilated.h"

namespace lpu::rtl_test {

/// One clock: a falling, then a rising edge, each evaluated.
template <class M>
void tick(M& top) {
  top.clk = 0;
  top.eval();
  top.clk = 1;
  top.eval();
}

/// A clock with rst_n low, then rst_n high.
template <class M>
void reset(M& top) {
  top.rst_n = 0;
  tick(top);
  top.rst_n = 1;
}

/// `n` bytes (a multiple of 4) onto a wide pin.
template <std::size_t N>
void put_bytes(VlWide<N>& w, const std::uint8_t* p, int n) {
  for (int i = 0; i < n / 4; ++i)
    w[static_cast<std::size_t>(i)] = static_cast<std::uint32_t>(p[4 * i]) |
                                     static_cast<std::uint32_t>(p[4 * i + 1]) << 8 |
                                     static_cast<std::uint32_t>(p[4 * i + 2]) << 16 |
                                     static_cast<std::uint32_t>(p[4 * i + 3]) << 24;
}

/// Byte i of a wide pin.
template <std::size_t N>
std::uint8_t byte_of(const VlWide<N>& w, int i) {
  return static_cast<std::uint8_t>(w[static_cast<std::size_t>(i / 4)] >> (8 * (i % 4)));
}

}  // namespace lpu::rtl_test
