// Speed of the VXM ALU's RTL (rtl/vxm/vxm_alu.sv), built twice from this file: Verilated C++
// driven directly (standalone), and Verilated SystemC with its pins as signals and a thread that
// drives them as the co-simulation transactor does (inside SystemC: two clock phases per beat,
// 512-bit operand and result buses). Both run the same beats (a mix of int32 add, fp32 add and mul,
// and casts, random operands) and print RTL cycles per second and a checksum of the results, which
// must agree.
//   bench_vxm_alu_cpp [BEATS]    bench_vxm_alu_sc [BEATS]    (default 2,000,000)
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#ifdef LPU_BENCH_SC
#include <systemc>

#include "Vvxm_alu_bsc.h"
#else
#include "Vvxm_alu_b.h"
#endif
#include "verilated.h"

namespace {

constexpr int kLanes = 16;

struct Beat {
  std::uint32_t op, width, to;
  std::array<std::uint32_t, kLanes> a, b;
};

std::vector<Beat> beats(std::size_t n) {
  // add i32, add fp32, mul fp32, cast fp32 -> i8 (func::VxmOp codes 0, 0, 2, 23)
  const std::uint32_t ops[4][3] = {{0, 2, 0}, {0, 3, 0}, {2, 3, 0}, {23, 3, 0}};
  std::mt19937 rng(5);
  std::vector<Beat> v(64);  // cycled: the operands stay in cache, as the transactor's do
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto& o = ops[i % 4];
    v[i].op = o[0];
    v[i].width = o[1];
    v[i].to = o[2];
    for (int l = 0; l < kLanes; ++l) {
      v[i].a[static_cast<std::size_t>(l)] = (rng() & 0x807FFFFFu) | ((120u + rng() % 16) << 23);
      v[i].b[static_cast<std::size_t>(l)] = (rng() & 0x807FFFFFu) | ((120u + rng() % 16) << 23);
    }
  }
  (void)n;
  return v;
}

void report(const char* how, std::size_t n, double s, std::uint64_t sum) {
  std::printf("vxm_alu %-10s %zu RTL cycles in %.3f s: %.3f M cycles/s (checksum %016llx)\n", how,
              n, s, static_cast<double>(n) / s / 1e6, static_cast<unsigned long long>(sum));
}

#ifndef LPU_BENCH_SC

int run(std::size_t n) {
  const std::vector<Beat> v = beats(n);
  VerilatedContext ctx;
  Vvxm_alu_b top{&ctx};
  top.rst_n = 0;
  top.clk = 0;
  top.eval();
  top.clk = 1;
  top.eval();
  top.rst_n = 1;
  std::uint64_t sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    const Beat& b = v[i % v.size()];
    top.in_valid = 1;
    top.op = static_cast<std::uint8_t>(b.op);
    top.width = static_cast<std::uint8_t>(b.width);
    top.to = static_cast<std::uint8_t>(b.to);
    for (int l = 0; l < kLanes; ++l) {
      top.a[static_cast<std::size_t>(l)] = b.a[static_cast<std::size_t>(l)];
      top.b[static_cast<std::size_t>(l)] = b.b[static_cast<std::size_t>(l)];
    }
    top.clk = 0;
    top.eval();
    top.clk = 1;
    top.eval();
    for (int l = 0; l < kLanes; ++l)
      sum = sum * 31 + top.d[static_cast<std::size_t>(l)];
  }
  report("standalone", n,
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), sum);
  return 0;
}

#else

using Bus = sc_dt::sc_bv<kLanes * 32>;

SC_MODULE(Driver) {
  sc_core::sc_signal<bool> clk{"clk"}, rst_n{"rst_n"}, in_valid{"in_valid"}, saturate{"saturate"},
      out_valid{"out_valid"};
  sc_core::sc_signal<std::uint32_t> op{"op"}, width{"width"}, to{"to"}, shamt{"shamt"};
  sc_core::sc_signal<Bus> a{"a"}, b{"b"}, mask{"mask"}, d{"d"};
  Vvxm_alu_bsc alu{"alu"};
  std::vector<Beat> v;
  std::size_t n = 0;
  std::uint64_t sum = 0;
  double seconds = 0;

  SC_CTOR(Driver) {
    alu.clk(clk);
    alu.rst_n(rst_n);
    alu.in_valid(in_valid);
    alu.op(op);
    alu.width(width);
    alu.to(to);
    alu.saturate(saturate);
    alu.shamt(shamt);
    alu.a(a);
    alu.b(b);
    alu.mask(mask);
    alu.d(d);
    alu.out_valid(out_valid);
    SC_THREAD(drive);
  }

  void drive() {
    const sc_core::sc_time half(1111.0 / 6, sc_core::SC_PS);  // tiny: 3 RTL clocks a cycle
    rst_n.write(false);
    clk.write(true);
    wait(sc_core::SC_ZERO_TIME);
    wait(sc_core::SC_ZERO_TIME);
    clk.write(false);
    rst_n.write(true);
    const auto t0 = std::chrono::steady_clock::now();
    Bus x, y;
    for (std::size_t i = 0; i < n; ++i) {
      const Beat& bt = v[i % v.size()];
      op.write(bt.op);
      width.write(bt.width);
      to.write(bt.to);
      for (int l = 0; l < kLanes; ++l) {
        x.set_word(l, bt.a[static_cast<std::size_t>(l)]);
        y.set_word(l, bt.b[static_cast<std::size_t>(l)]);
      }
      a.write(x);
      b.write(y);
      in_valid.write(true);
      clk.write(false);
      wait(half);
      clk.write(true);
      wait(half);
      const Bus& r = d.read();
      for (int l = 0; l < kLanes; ++l)
        sum = sum * 31 + static_cast<std::uint32_t>(r.get_word(l));
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
};

int run(std::size_t n) {
  Driver drv("bench");
  drv.v = beats(n);
  drv.n = n;
  sc_core::sc_start();
  report("SystemC", n, drv.seconds, drv.sum);
  return 0;
}

#endif

std::size_t beats_from(int argc, char** argv) {
  return argc > 1 ? static_cast<std::size_t>(std::strtoull(argv[1], nullptr, 10)) : 2000000;
}

}  // namespace

#ifdef LPU_BENCH_SC
int sc_main(int argc, char** argv) {
  return run(beats_from(argc, argv));
}
#else
int main(int argc, char** argv) {
  return run(beats_from(argc, argv));
}
#endif
