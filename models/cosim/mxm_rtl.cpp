// An MXM plane in RTL (rtl/mxm/mxm_plane.sv over rtl/mxm/mxm_supercell.sv, Verilated in SystemC
// mode for tiny's 32 x 32 plane with 320 accumulators) behind a transactor (docs/cosim.md).
// Weight rows a clock each, an activation vector in and its product out after ROWS/16 edges, an
// accumulation a clock; the products wait in the transactor, in step with the model's queue, until
// an ACC takes them. The plane's three queues may each issue in one cycle, so an operation runs
// in a third of its cycle.
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "Vmxm_plane_sc.h"
#include "cosim/blocks.h"
#include "cosim/waves.h"
#include "verilated.h"

namespace lpu::cosim {

namespace {

constexpr int kRows = LPU_RTL_MXM_ROWS, kCols = LPU_RTL_MXM_COLS;
using XBus = sc_dt::sc_bv<kRows * 8>;
using WBus = sc_dt::sc_bv<kCols * 8>;
using SBus = sc_dt::sc_bv<kCols * 32>;

class MxmRtl final : public sc_core::sc_module, public units::MxmRtlPort {
 public:
  SC_HAS_PROCESS(MxmRtl);
  MxmRtl(const sc_core::sc_module_name& name, units::ChipContext& ctx, Waves* waves)
      : sc_core::sc_module(name),
        clk("clk"),
        rst_n("rst_n"),
        w_load("w_load"),
        w_direct("w_direct"),
        w_install("w_install"),
        w_clear("w_clear"),
        w_target("w_target"),
        x_valid("x_valid"),
        p_valid("p_valid"),
        acc_valid("acc_valid"),
        acc_emit("acc_emit"),
        w_row("w_row"),
        acc_mode("acc_mode"),
        acc_slot("acc_slot"),
        w_data("w_data"),
        x("x"),
        product("product"),
        acc_in("acc_in"),
        acc_out("acc_out"),
        plane_("plane"),
        ctx_(ctx),
        period_(1.0 / ctx.arch->chip.clock_mhz, sc_core::SC_US) {
    plane_.clk(clk);
    plane_.rst_n(rst_n);
    plane_.w_load(w_load);
    plane_.w_direct(w_direct);
    plane_.w_install(w_install);
    plane_.w_clear(w_clear);
    plane_.w_target(w_target);
    plane_.w_row(w_row);
    plane_.w_data(w_data);
    plane_.x_valid(x_valid);
    plane_.x(x);
    plane_.p_valid(p_valid);
    plane_.product(product);
    plane_.acc_valid(acc_valid);
    plane_.acc_mode(acc_mode);
    plane_.acc_slot(acc_slot);
    plane_.acc_in(acc_in);
    plane_.acc_emit(acc_emit);
    plane_.acc_out(acc_out);
    if (waves) {
      const std::string scope = std::string(plane_.name()) + ".mxm_plane";
      const std::string t = plane_.name();
      const std::string xb = "[" + std::to_string(kRows * 8 - 1) + ":0]",
                        wb = "[" + std::to_string(kCols * 8 - 1) + ":0]",
                        sb = "[" + std::to_string(kCols * 32 - 1) + ":0]";
      int sw = 0;
      while ((1 << sw) < LPU_RTL_MXM_SLOTS)
        ++sw;
      const std::string slot = "[" + std::to_string(sw - 1) + ":0]";
      waves->add([this](VerilatedFstC* f) { plane_.trace(f, 99); },
                 [this, scope, t, xb, wb, sb, slot] {
                   if (!used_) return std::string();
                   return gtkw_group(t + " weights", scope,
                                     {"clk", "w_load", "w_direct", "w_install", "w_clear",
                                      "w_target", "w_row[15:0]", "w_data" + wb}) +
                          gtkw_group(t + " activations", scope,
                                     {"x_valid", "x" + xb, "p_valid", "product" + sb}) +
                          gtkw_group(t + " accumulators", scope,
                                     {"acc_valid", "acc_mode[2:0]", "acc_slot" + slot,
                                      "acc_in" + sb, "acc_emit", "acc_out" + sb});
                 });
    }
    SC_THREAD(run);
  }

  void weights(const units::Issue& /*is*/, bool direct, int row, const std::uint8_t* const* planes,
               bool fresh) override {
    Job j;
    if (fresh)
      j.beats.push_back([this, direct] {
        w_clear.write(true);
        w_target.write(direct);
      });
    for (int r = 0; r < 16; ++r) {
      WBus w;
      to_bus(planes[r], kCols, &w);
      j.beats.push_back([this, direct, row, r, w] {
        (direct ? w_direct : w_load).write(true);
        w_row.write(static_cast<std::uint32_t>(row + r));
        w_data.write(w);
      });
    }
    push(std::move(j));
  }

  void install(const units::Issue& /*is*/) override {
    Job j;
    j.beats.push_back([this] { w_install.write(true); });
    push(std::move(j));
  }

  void activate(const units::Issue& /*is*/, const std::uint8_t* xv) override {
    if (!xv) {  // the model's product only: keep the queue in step
      products_.push_back(Product{});
      return;
    }
    products_.push_back(Product{});
    Product* slot = &products_.back();  // (deque: stays put until taken)
    XBus xb;
    to_bus(xv, kRows, &xb);
    Job j;
    j.beats.push_back([this, xb] {
      x_valid.write(true);
      x.write(xb);
    });
    for (int k = 1; k < kRows / 16; ++k)
      j.beats.push_back([] {});  // the vector goes down the supercell rows
    j.done = [this, slot] {
      slot->rtl = true;
      slot->value = product.read();
    };
    push(std::move(j));
  }

  bool accumulate(const units::Issue& is, int mode, int slot, std::uint8_t* const* out,
                  bool compare) override {
    if (products_.empty()) return false;
    Product p = std::move(products_.front());
    products_.pop_front();
    if (!p.rtl) return false;
    const bool emits = mode == 1 || mode == 2;
    Job j;
    j.beats.push_back([this, p, mode, slot] {
      acc_valid.write(true);
      acc_mode.write(static_cast<std::uint32_t>(mode));
      acc_slot.write(static_cast<std::uint32_t>(slot));
      acc_in.write(p.value);
    });
    std::vector<std::uint8_t> want;
    if (compare && emits)
      for (int b = 0; b < 4; ++b)
        want.insert(want.end(), out[b], out[b] + kCols);
    std::vector<std::uint8_t*> dst(out, out + 4);
    units::Issue at;
    at.queue = is.queue;
    at.index = is.index;
    at.step = is.step;
    at.access = is.access;
    j.done = [this, emits, compare, want, dst, at] {
      ++stats_.rtl_vectors;
      if (!emits) return;
      const SBus& s = acc_out.read();
      std::vector<std::uint8_t> got(4 * static_cast<std::size_t>(kCols));
      for (int c = 0; c < kCols; ++c)
        for (int b = 0; b < 4; ++b)
          got[static_cast<std::size_t>(b * kCols + c)] = bus_byte(s, 4 * c + b);  // plane b
      if (!compare) {
        for (int b = 0; b < 4; ++b)
          std::copy(got.begin() + b * kCols, got.begin() + (b + 1) * kCols,
                    dst[static_cast<std::size_t>(b)]);
        return;
      }
      for (int c = 0; c < kCols; ++c) {
        std::uint32_t m = 0, r = 0;
        for (int b = 0; b < 4; ++b) {
          m |= static_cast<std::uint32_t>(want[static_cast<std::size_t>(b * kCols + c)]) << (8 * b);
          r |= static_cast<std::uint32_t>(got[static_cast<std::size_t>(b * kCols + c)]) << (8 * b);
        }
        if (m != r) {
          if (stats_.mismatched++ == 0) {
            ctx_.record(at, "the RTL differs from the model in column " + std::to_string(c) +
                                " (lane " + std::to_string(c) + ") of the sum: " + hex(m) +
                                " in the model, " + hex(r) + " in the RTL");
            ctx_.errors->back().kind = "lockstep mismatch";
          }
          return;
        }
      }
      ++stats_.matched;
    };
    push(std::move(j));
    return true;
  }

  units::CosimStats& stats() override { return stats_; }

 private:
  struct Product {
    bool rtl = false;
    SBus value;
  };
  struct Job {
    std::vector<std::function<void()>> beats;
    std::function<void()> done;
  };

  void push(Job&& j) {
    jobs_.push_back(std::move(j));
    used_ = true;
    ready_.notify(sc_core::SC_ZERO_TIME);
  }

  void idle() {
    w_load.write(false);
    w_direct.write(false);
    w_install.write(false);
    w_clear.write(false);
    x_valid.write(false);
    acc_valid.write(false);
  }

  void run() {
    reset_pulse(clk, rst_n);
    for (;;) {
      while (jobs_.empty())
        wait(ready_);
      Job& j = jobs_.front();
      // Weights, activations and accumulations may share a cycle: a third of it each.
      const sc_core::sc_time half = period_ / (6.0 * static_cast<double>(j.beats.size() + 1));
      for (auto& b : j.beats) {
        idle();
        b();
        clk.write(false);
        wait(half);
        clk.write(true);
        wait(half);
        ++stats_.rtl_cycles;
      }
      idle();
      clk.write(false);
      if (j.done) j.done();
      jobs_.pop_front();
    }
  }

  sc_core::sc_signal<bool> clk, rst_n, w_load, w_direct, w_install, w_clear, w_target, x_valid,
      p_valid, acc_valid, acc_emit;
  sc_core::sc_signal<std::uint32_t> w_row, acc_mode, acc_slot;
  sc_core::sc_signal<WBus> w_data;
  sc_core::sc_signal<XBus> x;
  sc_core::sc_signal<SBus> product, acc_in, acc_out;
  Vmxm_plane_sc plane_;
  units::ChipContext& ctx_;
  sc_core::sc_time period_;
  std::deque<Job> jobs_;
  std::deque<Product> products_;
  sc_core::sc_event ready_;
  bool used_ = false;
  units::CosimStats stats_;
};

}  // namespace

std::unique_ptr<units::MxmRtlPort> make_mxm_rtl(units::ChipContext& ctx, int plane, Waves* waves) {
  return std::make_unique<MxmRtl>(("rtl_p" + std::to_string(plane)).c_str(), ctx, waves);
}

}  // namespace lpu::cosim
