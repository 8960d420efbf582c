// The VXM's ALUs in RTL (rtl/vxm/vxm_alu.sv, Verilated in SystemC mode) behind a transactor
// (docs/cosim.md).
//
// Timing: one Verilated ALU per VXM ALU queue, a superlane of 16 lanes per RTL clock. An issue's
// operands are known at its access cycle t, when the ICU (synchronised every cycle in
// co-simulation) hands the operation over; the transactor then runs its superlanes through the
// ALU at S + 1 RTL clocks per chip cycle (S superlanes), so the whole vector is done before
// cycle t + 1, when the earliest reader of the result can run. The waveform therefore shows each
// vector's beats inside its access cycle.
#include <array>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "Vvxm_alu_fault_sc.h"
#include "Vvxm_alu_sc.h"
#include "common/diagnostics.h"
#include "cosim/blocks.h"
#include "cosim/waves.h"
#include "verilated.h"

namespace lpu::cosim {

using units::CosimStats;
using units::Issue;

namespace {

constexpr int kLanes = LPU_RTL_LANES;
using Bus = sc_dt::sc_bv<kLanes * 32>;

// The ALU's width code for an element type (-1: not in the RTL).
int width_code(isa::DType t) {
  switch (t) {
    case isa::DType::kI8:
      return 0;
    case isa::DType::kI16:
      return 1;
    case isa::DType::kI32:
      return 2;
    case isa::DType::kFp32:
      return 3;
    default:
      return -1;
  }
}

// The pins of one ALU as the signals the transactor drives and reads.
struct AluPins {
  explicit AluPins(const std::string& n)
      : clk((n + "_clk").c_str()),
        rst_n((n + "_rst_n").c_str()),
        in_valid((n + "_in_valid").c_str()),
        saturate((n + "_saturate").c_str()),
        out_valid((n + "_out_valid").c_str()),
        op((n + "_op").c_str()),
        width((n + "_width").c_str()),
        to((n + "_to").c_str()),
        shamt((n + "_shamt").c_str()),
        a((n + "_a").c_str()),
        b((n + "_b").c_str()),
        mask((n + "_mask").c_str()),
        d((n + "_d").c_str()) {}
  sc_core::sc_signal<bool> clk, rst_n, in_valid, saturate, out_valid;
  sc_core::sc_signal<std::uint32_t> op, width, to, shamt;
  sc_core::sc_signal<Bus> a, b, mask, d;
};

// A Verilated ALU of class M bound to its pins; `trace` adds it to a waveform.
template <class M>
std::unique_ptr<sc_core::sc_module> make_alu(const std::string& name, AluPins& p,
                                             std::function<void(VerilatedFstC*)>* trace) {
  auto m = std::make_unique<M>(name.c_str());
  m->clk(p.clk);
  m->rst_n(p.rst_n);
  m->in_valid(p.in_valid);
  m->op(p.op);
  m->width(p.width);
  m->to(p.to);
  m->saturate(p.saturate);
  m->shamt(p.shamt);
  m->a(p.a);
  m->b(p.b);
  m->mask(p.mask);
  m->out_valid(p.out_valid);
  m->d(p.d);
  M* raw = m.get();
  *trace = [raw](VerilatedFstC* f) { raw->trace(f, 99); };
  return m;
}

class VxmRtl final : public sc_core::sc_module, public units::VxmRtlPort {
 public:
  VxmRtl(const sc_core::sc_module_name& name, units::ChipContext& ctx, bool fault, Waves* waves)
      : sc_core::sc_module(name),
        ctx_(ctx),
        superlanes_(ctx.arch->chip.superlanes),
        period_(1.0 / ctx.arch->chip.clock_mhz, sc_core::SC_US) {
    const int alus = ctx.arch->chip.vxm.alus();
    for (int i = 0; i < alus; ++i) {
      auto u = std::make_unique<Alu>();
      const std::string n = "alu" + std::to_string(i);
      u->pins = std::make_unique<AluPins>(n);
      std::function<void(VerilatedFstC*)> trace;
      u->model = fault ? make_alu<Vvxm_alu_fault_sc>(n, *u->pins, &trace)
                       : make_alu<Vvxm_alu_sc>(n, *u->pins, &trace);
      if (waves) {
        // The ALUs that ran something, each in three groups.
        const Alu* alu = u.get();
        const std::string scope = std::string(u->model->name()) + ".vxm_alu";
        const std::string title = std::string(u->model->name());
        waves->add(trace, [alu, scope, title] {
          if (!alu->used) return std::string();
          // The operands and the result a lane per signal (the block's lane views), then the
          // buses as the pins carry them.
          auto lanes = [](const std::string& v) {
            std::vector<std::string> s;
            for (int l = 0; l < kLanes; ++l)
              s.push_back(v + "[" + std::to_string(l) + "][31:0]");
            return s;
          };
          std::vector<std::string> result = {"out_valid"};
          for (const auto& s : lanes("d_lane"))
            result.push_back(s);
          const std::string bus = "[" + std::to_string(kLanes * 32 - 1) + ":0]";
          return gtkw_group(title + " control", scope,
                            {"clk", "rst_n", "in_valid", "op[4:0]", "width[1:0]", "to[1:0]",
                             "saturate", "shamt[4:0]"}) +
                 gtkw_group(title + " result", scope, result) +
                 gtkw_group(title + " operand a", scope, lanes("a_lane")) +
                 gtkw_group(title + " operand b", scope, lanes("b_lane")) +
                 gtkw_group(title + " buses", scope,
                            {"a" + bus, "b" + bus, "mask" + bus, "d" + bus});
        });
      }
      alus_.push_back(std::move(u));
      sc_core::sc_spawn_options o;
      sc_core::sc_spawn([this, i] { drive(i); }, (n + "_drive").c_str(), &o);
    }
  }

  bool covers(const func::VxmArgs& x) const override {
    if (func::vxm_op_info(x.op).rtl < 0) return false;  // exp, rsqrt, tanh: not in the RTL
    switch (x.op) {
      case func::VxmOp::kCast:
        return width_code(x.type) >= 0 && width_code(x.to) >= 0;
      default:
        return width_code(x.type) >= 0;
    }
  }

  void submit(const Issue& is, const func::VxmArgs& x, const std::uint8_t* const* a,
              const std::uint8_t* const* b, const std::uint8_t* const* m, std::uint8_t* const* d,
              bool compare) override {
    Alu& u = *alus_[static_cast<std::size_t>(is.queue->instance)];
    Job j;
    j.queue = is.queue;
    j.index = is.index;
    j.step = is.step;
    j.access = is.access;
    j.args = x;
    j.superlanes = is.superlanes;
    j.compare = compare;
    const int lanes = is.superlanes * kLanes;
    const int g = isa::dtype_bytes(x.type);
    j.gd = x.op == func::VxmOp::kCast ? isa::dtype_bytes(x.to) : g;
    auto gather = [&](const std::uint8_t* const* p, int bytes, std::vector<std::uint32_t>* v) {
      v->assign(static_cast<std::size_t>(lanes), 0);
      if (!p) return;
      for (int k = 0; k < bytes; ++k)
        for (int l = 0; l < lanes; ++l)
          (*v)[static_cast<std::size_t>(l)] |= static_cast<std::uint32_t>(p[k][l]) << (8 * k);
    };
    gather(a, g, &j.a);
    gather(b, g, &j.b);
    gather(m, g, &j.m);
    if (compare)
      gather(d, j.gd, &j.expect);
    else
      for (int k = 0; k < j.gd; ++k)
        j.d[static_cast<std::size_t>(k)] = d[k];
    u.jobs.push_back(std::move(j));
    u.used = true;
    u.ready.notify(sc_core::SC_ZERO_TIME);
  }

  CosimStats& stats() override { return stats_; }

 private:
  struct Job {
    const arch::Queue* queue = nullptr;
    std::uint32_t index = 0, step = 0;
    std::uint64_t access = 0;
    func::VxmArgs args{};
    int superlanes = 0, gd = 0;
    bool compare = false;
    std::vector<std::uint32_t> a, b, m, expect;
    std::array<std::uint8_t*, 4> d{};
  };
  struct Alu {
    std::unique_ptr<AluPins> pins;
    std::unique_ptr<sc_core::sc_module> model;
    std::deque<Job> jobs;
    sc_core::sc_event ready;
    bool used = false;
  };

  // One ALU's thread: resets it, then runs each job handed to it.
  void drive(int i) {
    Alu& u = *alus_[static_cast<std::size_t>(i)];
    AluPins& p = *u.pins;
    reset_pulse(p.clk, p.rst_n);
    for (;;) {
      while (u.jobs.empty())
        wait(u.ready);
      run(p, u.jobs.front());
      u.jobs.pop_front();
    }
  }

  void run(AluPins& p, Job& j) {
    // S + 1 RTL clocks per chip cycle: the last superlane's result is read before the next cycle.
    const sc_core::sc_time half = period_ / (2.0 * (superlanes_ + 1));
    const func::VxmArgs& x = j.args;
    p.op.write(static_cast<std::uint32_t>(func::vxm_op_info(x.op).rtl));
    p.width.write(static_cast<std::uint32_t>(width_code(x.type)));
    p.to.write(static_cast<std::uint32_t>(x.op == func::VxmOp::kCast ? width_code(x.to) : 0));
    p.saturate.write(x.saturate);
    p.shamt.write(static_cast<std::uint32_t>(x.shift));
    bool equal = true;
    Bus a, b, m;
    for (int s = 0; s < j.superlanes; ++s) {
      const std::size_t base = static_cast<std::size_t>(s * kLanes);
      for (int l = 0; l < kLanes; ++l) {
        a.set_word(l, j.a[base + static_cast<std::size_t>(l)]);
        b.set_word(l, j.b[base + static_cast<std::size_t>(l)]);
        m.set_word(l, j.m[base + static_cast<std::size_t>(l)]);
      }
      p.a.write(a);
      p.b.write(b);
      p.mask.write(m);
      p.in_valid.write(true);
      p.clk.write(false);
      wait(half);
      p.clk.write(true);
      wait(half);
      ++stats_.rtl_cycles;
      const Bus& d = p.d.read();
      for (int l = 0; l < kLanes; ++l) {
        const std::size_t lane = base + static_cast<std::size_t>(l);
        const auto got = static_cast<std::uint32_t>(d.get_word(l));
        if (!j.compare) {
          for (int k = 0; k < j.gd; ++k)
            j.d[static_cast<std::size_t>(k)][lane] = static_cast<std::uint8_t>(got >> (8 * k));
        } else if (got != j.expect[lane]) {
          if (equal && stats_.mismatched == 0) report(j, s, l, got);
          equal = false;
        }
      }
    }
    p.in_valid.write(false);
    p.clk.write(false);
    ++stats_.rtl_vectors;
    if (j.compare) ++(equal ? stats_.matched : stats_.mismatched);
  }

  // The first mismatch of the run, with the issue's chip, queue, instruction and cycle.
  void report(const Job& j, int s, int l, std::uint32_t got) {
    const std::size_t lane = static_cast<std::size_t>(s * kLanes + l);
    const func::VxmArgs& x = j.args;
    std::string op = std::string(func::to_string(x.op)) + "." + isa::to_string(x.type);
    if (x.op == func::VxmOp::kCast) op += std::string(".") + isa::to_string(x.to);
    std::string operands = "a " + hex(j.a[lane]);
    if (func::VxmOp::kAdd <= x.op && x.op <= func::VxmOp::kSel && x.op != func::VxmOp::kShl &&
        x.op != func::VxmOp::kShr)
      operands += ", b " + hex(j.b[lane]);
    if (x.op == func::VxmOp::kSel) operands += ", mask " + hex(j.m[lane]);
    Issue at;
    at.queue = j.queue;
    at.index = j.index;
    at.step = j.step;
    at.access = j.access;
    ctx_.record(at, "the RTL differs from the model in lane " + std::to_string(lane) +
                        " (superlane " + std::to_string(s) + ", ALU lane " + std::to_string(l) +
                        ", cycle " + std::to_string(j.access + static_cast<std::uint64_t>(s)) +
                        " in the machine's skew): " + op + " of " + operands + " gives " +
                        hex(j.expect[lane]) + " in the model, " + hex(got) + " in the RTL");
    ctx_.errors->back().kind = "lockstep mismatch";
  }

  units::ChipContext& ctx_;
  int superlanes_;
  sc_core::sc_time period_;
  std::vector<std::unique_ptr<Alu>> alus_;
  CosimStats stats_;
};

}  // namespace

std::unique_ptr<units::VxmRtlPort> make_vxm_rtl(units::ChipContext& ctx, bool fault, Waves* waves) {
  return std::make_unique<VxmRtl>("rtl", ctx, fault, waves);
}

}  // namespace lpu::cosim
