// Speed of the RTL blocks standalone (Verilated C++, driven directly, two evaluations per clock),
// each with its own random traffic: RTL cycles per second. (The VXM ALU, standalone and inside
// SystemC, is bench_vxm_alu_cpp / bench_vxm_alu_sc; every block inside a co-simulation is
// bench_cosim.)
//   bench_rtl_blocks [CYCLES]   (default 500,000 per block)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "Vb_c2c_link.h"
#include "Vb_mem_bank.h"
#include "Vb_mxm_plane.h"
#include "Vb_sxm_lanes.h"
#include "Vb_sxm_transpose.h"
#include "rtl/harness.h"
#include "verilated.h"

namespace {

using lpu::rtl_test::reset;
using lpu::rtl_test::tick;

template <std::size_t N>
void fill(VlWide<N>& w, std::mt19937& rng) {
  for (std::size_t i = 0; i < N; ++i)
    w[i] = rng();
}

// Runs `cycles` clocks of `step` (which sets the pins for the next clock) and prints the rate.
template <class M, class Step>
void bench(const char* name, const char* what, std::size_t cycles, M& m, Step step) {
  reset(m);
  std::uint64_t sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < cycles; ++i) {
    sum += step(i);
    tick(m);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  %-14s %-52s %8.3f M cycles/s  (checksum %llx)\n", name, what,
              static_cast<double>(cycles) / s / 1e6, static_cast<unsigned long long>(sum));
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 500000;
  std::mt19937 rng(12);
  VerilatedContext ctx;
  std::printf("bench_rtl_blocks: standalone (Verilated C++), %zu clocks each\n", n);
  {
    Vb_mem_bank m{&ctx};
    bench("mem_bank", "alternate write and read of random rows", n, m, [&](std::size_t i) {
      m.we = i % 2 == 0;
      m.re = i % 2 == 1;
      m.waddr = m.raddr = rng() % 512;
      fill(m.wdata, rng);
      return static_cast<std::uint64_t>(m.rdata[0]) + m.corrected;
    });
  }
  {
    Vb_sxm_lanes m{&ctx};
    bench("sxm_lanes", "32 lanes: shift, select, permute in turn", n, m, [&](std::size_t i) {
      m.in_valid = 1;
      m.op = static_cast<std::uint8_t>(i % 4);
      m.amount = static_cast<std::uint16_t>(rng() % 33);
      fill(m.a, rng);
      fill(m.b, rng);
      for (std::size_t w = 0; w < 8; ++w) {  // a rotation of the lanes: a bijection
        std::uint32_t v = 0;
        for (int k = 0; k < 4; ++k)
          v |= static_cast<std::uint32_t>((4 * w + static_cast<std::size_t>(k) + i) % 32)
               << (8 * k);
        m.map_lo[w] = v;
        m.map_hi[w] = 0;
      }
      return static_cast<std::uint64_t>(m.d[0]);
    });
  }
  {
    Vb_sxm_transpose m{&ctx};
    bench("sxm_transpose", "16 x 16 bytes a clock", n, m, [&](std::size_t) {
      m.in_valid = 1;
      fill(m.a, rng);
      return static_cast<std::uint64_t>(m.d[0]);
    });
  }
  {
    Vb_c2c_link m{&ctx};
    bench("c2c_link", "32-byte frames sent and received back to back", n, m, [&](std::size_t i) {
      const std::size_t clocks = 2 * 44 + 1;  // the start, then 2 clocks a frame byte
      m.tx_start = i % clocks == 0;
      if (m.tx_start) {
        m.tx_seq = static_cast<std::uint32_t>(i);
        fill(m.tx_payload, rng);
      }
      m.rx_valid = m.tx_active;
      m.rx_lanes = m.tx_lanes;
      return static_cast<std::uint64_t>(m.rx_crc_ok) + m.rx_seq;
    });
  }
  {
    Vb_mxm_plane m{&ctx};
    bench("mxm_plane", "32 x 32: an activation and an accumulation a clock", n, m,
          [&](std::size_t i) {
            if (i < 32) {  // weights first
              m.w_direct = 1;
              m.w_row = static_cast<std::uint16_t>(i);
              fill(m.w_data, rng);
              return std::uint64_t{0};
            }
            m.w_direct = 0;
            m.x_valid = 1;
            fill(m.x, rng);
            m.acc_valid = m.p_valid;
            m.acc_mode = static_cast<std::uint8_t>(i % 2 ? 2 : 3);
            m.acc_slot = static_cast<std::uint16_t>(i % 320);
            for (std::size_t c = 0; c < 32; ++c)
              m.acc_in[c] = m.product[c];
            return static_cast<std::uint64_t>(m.acc_out[0]);
          });
  }
  return 0;
}
