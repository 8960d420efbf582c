// An SXM's networks in RTL (rtl/sxm/, Verilated in SystemC mode) behind a transactor
// (docs/cosim.md): the lane network for the shift/select queue and for the permute queue (a byte
// plane of the whole vector per RTL clock), and a 16 x 16 transposer per transpose queue (a
// superlane of 16 planes per RTL clock). Each block has its own thread; an operation's beats fit
// in its issue's cycle.
#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "Vsxm_lanes320_sc.h"
#include "Vsxm_lanes32_sc.h"
#include "Vsxm_transpose_sc.h"
#include "cosim/blocks.h"
#include "cosim/waves.h"
#include "verilated.h"

namespace lpu::cosim {

namespace {

using units::SxmRtlPort;

// What a block's thread runs: the issue, its beats (each a closure that drives the pins before the
// edge and one that reads them after), and what to do at the end.
struct Job {
  const arch::Queue* queue = nullptr;
  std::uint32_t index = 0, step = 0;
  std::uint64_t access = 0;
  std::vector<std::function<void()>> drive, sample;
  std::function<void()> done;
};

// A block: its clock, reset and valid pins, a thread, jobs.
class Block : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Block);
  Block(const sc_core::sc_module_name& name, sc_core::sc_time period)
      : sc_core::sc_module(name),
        clk("clk"),
        rst_n("rst_n"),
        in_valid("in_valid"),
        period_(period) {
    SC_THREAD(run);
  }
  void push(Job&& j) {
    jobs_.push_back(std::move(j));
    used = true;
    ready_.notify(sc_core::SC_ZERO_TIME);
  }
  sc_core::sc_signal<bool> clk, rst_n, in_valid;
  bool used = false;
  std::uint64_t cycles = 0;

 private:
  void run() {
    reset_pulse(clk, rst_n);
    for (;;) {
      while (jobs_.empty())
        wait(ready_);
      Job& j = jobs_.front();
      const sc_core::sc_time half = period_ / (2.0 * static_cast<double>(j.drive.size() + 1));
      for (std::size_t b = 0; b < j.drive.size(); ++b) {
        j.drive[b]();
        in_valid.write(true);
        clk.write(false);
        wait(half);
        clk.write(true);
        wait(half);
        j.sample[b]();
        ++cycles;
      }
      in_valid.write(false);
      clk.write(false);
      j.done();
      jobs_.pop_front();
    }
  }
  sc_core::sc_time period_;
  std::deque<Job> jobs_;
  sc_core::sc_event ready_;
};

// The lane network of LANES lanes (Verilated class M).
template <class M, int LANES>
class LaneNet final : public Block {
 public:
  using Bus = sc_dt::sc_bv<LANES * 8>;
  LaneNet(const sc_core::sc_module_name& name, sc_core::sc_time period, Waves* waves)
      : Block(name, period),
        op("op"),
        amount("amount"),
        bad_lane("bad_lane"),
        bad_first("bad_first"),
        out_valid("out_valid"),
        bad("bad"),
        bad_dup("bad_dup"),
        a("a"),
        b("b"),
        map_lo("map_lo"),
        map_hi("map_hi"),
        d("d"),
        net("net") {
    net.clk(clk);
    net.rst_n(rst_n);
    net.in_valid(in_valid);
    net.op(op);
    net.amount(amount);
    net.a(a);
    net.b(b);
    net.map_lo(map_lo);
    net.map_hi(map_hi);
    net.out_valid(out_valid);
    net.d(d);
    net.bad(bad);
    net.bad_dup(bad_dup);
    net.bad_lane(bad_lane);
    net.bad_first(bad_first);
    if (waves) {
      const std::string scope = std::string(net.name()) + ".sxm_lanes";
      const std::string bus = "[" + std::to_string(LANES * 8 - 1) + ":0]";
      waves->add([this](VerilatedFstC* f) { net.trace(f, 99); },
                 [this, scope, bus] {
                   if (!used) return std::string();
                   return gtkw_group(std::string(net.name()) + " control", scope,
                                     {"clk", "rst_n", "in_valid", "op[1:0]", "amount[15:0]"}) +
                          gtkw_group(std::string(net.name()) + " planes", scope,
                                     {"a" + bus, "b" + bus, "map_lo" + bus, "map_hi" + bus,
                                      "out_valid", "d" + bus}) +
                          gtkw_group(std::string(net.name()) + " permute verdict", scope,
                                     {"bad", "bad_dup", "bad_lane[15:0]", "bad_first[15:0]"});
                 });
    }
  }
  sc_core::sc_signal<std::uint32_t> op, amount, bad_lane, bad_first;
  sc_core::sc_signal<bool> out_valid, bad, bad_dup;
  sc_core::sc_signal<Bus> a, b, map_lo, map_hi, d;
  M net;
};

// The 16 x 16 transposer (a superlane of 16 planes per clock).
class Transposer final : public Block {
 public:
  using Bus = sc_dt::sc_bv<2048>;
  Transposer(const sc_core::sc_module_name& name, sc_core::sc_time period, Waves* waves)
      : Block(name, period), out_valid("out_valid"), a("a"), d("d"), tr("tr") {
    tr.clk(clk);
    tr.rst_n(rst_n);
    tr.in_valid(in_valid);
    tr.a(a);
    tr.out_valid(out_valid);
    tr.d(d);
    if (waves) {
      const std::string scope = std::string(tr.name()) + ".sxm_transpose";
      waves->add([this](VerilatedFstC* f) { tr.trace(f, 99); },
                 [this, scope] {
                   if (!used) return std::string();
                   return gtkw_group(
                       std::string(tr.name()), scope,
                       {"clk", "rst_n", "in_valid", "a[2047:0]", "out_valid", "d[2047:0]"});
                 });
    }
  }
  sc_core::sc_signal<bool> out_valid;
  sc_core::sc_signal<Bus> a, d;
  Vsxm_transpose_sc tr;
};

class SxmRtl final : public sc_core::sc_module, public SxmRtlPort {
 public:
  SxmRtl(const sc_core::sc_module_name& name, units::ChipContext& ctx, const arch::Queue& shift,
         Waves* waves)
      : sc_core::sc_module(name),
        ctx_(ctx),
        lanes_(ctx.lanes),
        period_(1.0 / ctx.arch->chip.clock_mhz, sc_core::SC_US),
        waves_(waves) {
    const std::string base = shift.name.substr(0, shift.name.size() - std::string(".shift").size());
    for (const auto& q : ctx.queues) {
      if (q.name.compare(0, base.size() + 1, base + ".") != 0) continue;
      const std::string n = q.name.substr(base.size() + 1);
      if (q.unit == arch::QueueUnit::kSxmShift || q.unit == arch::QueueUnit::kSxmPermute)
        blocks_[q.id] = lane_net(n);
      else if (q.unit == arch::QueueUnit::kSxmTranspose)
        blocks_[q.id] = std::make_unique<Transposer>(n.c_str(), period_, waves);
    }
  }

  bool covers(std::uint8_t opcode) const override {
    return opcode == 0x70 || opcode == 0x71 || opcode == 0x72 || opcode == 0x75;
  }

  void submit(const units::Issue& is, const Op& op) override {
    auto it = blocks_.find(is.queue->id);
    if (it == blocks_.end()) return;
    Job j;
    j.queue = is.queue;
    j.index = is.index;
    j.step = is.step;
    j.access = is.access;
    if (op.opcode == 0x75)
      transpose(static_cast<Transposer&>(*it->second), op, &j);
    else if (lanes_ == 32)
      lanes(static_cast<LaneNet<Vsxm_lanes32_sc, 32>&>(*it->second), op, &j);
    else
      lanes(static_cast<LaneNet<Vsxm_lanes320_sc, 320>&>(*it->second), op, &j);
    it->second->push(std::move(j));
  }

  units::CosimStats& stats() override {
    stats_.rtl_cycles = 0;
    for (const auto& [id, b] : blocks_)
      stats_.rtl_cycles += b->cycles;
    return stats_;
  }

 private:
  std::unique_ptr<Block> lane_net(const std::string& n) {
    if (lanes_ == 32)
      return std::make_unique<LaneNet<Vsxm_lanes32_sc, 32>>(n.c_str(), period_, waves_);
    return std::make_unique<LaneNet<Vsxm_lanes320_sc, 320>>(n.c_str(), period_, waves_);
  }

  // Shift, select or permute: a beat per byte plane.
  template <class Net>
  void lanes(Net& net, const Op& op, Job* j) {
    using Bus = typename Net::Bus;
    const int lanes = lanes_;
    const std::size_t vb = static_cast<std::size_t>(lanes);
    auto in =
        std::make_shared<std::vector<std::uint8_t>>(vb * 4 * static_cast<std::size_t>(op.planes));
    auto out =
        std::make_shared<std::vector<std::uint8_t>>(vb * static_cast<std::size_t>(op.planes));
    auto verdict = std::make_shared<std::string>();
    const std::uint32_t code = op.opcode == 0x70   ? (op.north ? 0u : 1u)
                               : op.opcode == 0x71 ? 2u
                                                   : 3u;
    Bus lo, hi;
    if (op.map) {
      to_bus(op.map[0], lanes, &lo);
      to_bus(op.map[1], lanes, &hi);
    }
    std::vector<std::uint8_t> map_lo(op.map ? op.map[0] : nullptr,
                                     op.map ? op.map[0] + vb : nullptr),
        map_hi(op.map ? op.map[1] : nullptr, op.map ? op.map[1] + vb : nullptr);
    for (int p = 0; p < op.planes; ++p) {
      std::copy(op.a[p], op.a[p] + vb, in->begin() + static_cast<long>(2 * p * vb));
      if (op.b) std::copy(op.b[p], op.b[p] + vb, in->begin() + static_cast<long>((2 * p + 1) * vb));
      const std::size_t at = static_cast<std::size_t>(p) * vb;
      j->drive.push_back([&net, in, p, vb, lanes, code, op_amount = op.amount, lo, hi] {
        Bus x, y;
        to_bus(in->data() + 2 * static_cast<std::size_t>(p) * vb, lanes, &x);
        to_bus(in->data() + (2 * static_cast<std::size_t>(p) + 1) * vb, lanes, &y);
        net.op.write(code);
        net.amount.write(static_cast<std::uint32_t>(op_amount));
        net.a.write(x);
        net.b.write(y);
        net.map_lo.write(lo);
        net.map_hi.write(hi);
      });
      j->sample.push_back([&net, out, at, lanes, verdict, p, map_lo, map_hi] {
        from_bus(net.d.read(), lanes, out->data() + at);
        if (p == 0 && net.bad.read()) {
          const std::uint32_t i = net.bad_lane.read();
          const int t = map_lo[i] | map_hi[i] << 8;
          *verdict = "lane " + std::to_string(i) + ": target " + std::to_string(t) +
                     (net.bad_dup.read()
                          ? " is already the target of lane " + std::to_string(net.bad_first.read())
                          : " is out of range (" + std::to_string(lanes) + " lanes)");
        }
      });
    }
    finish(op, j, out, verdict, op.planes);
  }

  // Transpose: a beat per superlane (16 planes of its 16 lanes).
  void transpose(Transposer& tr, const Op& op, Job* j) {
    const int lanes = lanes_;
    const std::size_t vb = static_cast<std::size_t>(lanes);
    auto in = std::make_shared<std::vector<std::uint8_t>>(vb * 16);
    for (int p = 0; p < 16; ++p)
      std::copy(op.a[p], op.a[p] + vb,
                in->begin() + static_cast<long>(static_cast<std::size_t>(p) * vb));
    auto out = std::make_shared<std::vector<std::uint8_t>>(vb * 16);
    for (int s = 0; s < lanes / 16; ++s) {
      j->drive.push_back([&tr, in, s, vb] {
        Transposer::Bus x;
        std::uint8_t block[256];  // row i: plane i's 16 lanes of the superlane
        for (int i = 0; i < 16; ++i)
          std::copy_n(
              in->data() + static_cast<std::size_t>(i) * vb + static_cast<std::size_t>(s * 16), 16,
              block + 16 * i);
        to_bus(block, 256, &x);
        tr.a.write(x);
      });
      j->sample.push_back([&tr, out, s, vb] {
        const Transposer::Bus& r = tr.d.read();
        for (int k = 0; k < 256; ++k)  // plane k / 16, lane s*16 + k % 16
          (*out)[static_cast<std::size_t>(k / 16) * vb +
                 static_cast<std::size_t>(s * 16 + k % 16)] = bus_byte(r, k);
      });
    }
    finish(op, j, out, std::make_shared<std::string>(), 16);
  }

  // The end of a job: fill the outputs (rtl), or compare them (lockstep).
  void finish(const Op& op, Job* j, std::shared_ptr<std::vector<std::uint8_t>> out,
              std::shared_ptr<std::string> verdict, int planes) {
    const std::size_t vb = static_cast<std::size_t>(lanes_);
    std::vector<std::uint8_t*> d(op.d, op.d + planes);
    std::vector<std::uint8_t> want;
    if (op.compare && op.model_error.empty())
      for (int p = 0; p < planes; ++p)
        want.insert(want.end(), op.d[p], op.d[p] + vb);
    const units::Issue at = issue_of(*j);
    j->done = [this, out, verdict, d, want, op_compare = op.compare, model_error = op.model_error,
               map_stream = op.map_stream, position = op.position, at, vb, planes]() {
      stats_.rtl_vectors += static_cast<std::uint64_t>(planes);  // every output plane a vector
      if (!op_compare) {
        if (!verdict->empty()) {
          ctx_.record(at, "bad map: " + *verdict, map_stream, position);
          return;
        }
        for (int p = 0; p < planes; ++p)
          std::copy(out->begin() + static_cast<long>(static_cast<std::size_t>(p) * vb),
                    out->begin() + static_cast<long>(static_cast<std::size_t>(p + 1) * vb),
                    d[static_cast<std::size_t>(p)]);
        return;
      }
      std::string diff;
      if (*verdict != model_error) {
        diff = "its verdict on the map: the model says '" +
               (model_error.empty() ? std::string("a bijection") : model_error) + "', the RTL '" +
               (verdict->empty() ? std::string("a bijection") : *verdict) + "'";
      } else if (model_error.empty()) {
        for (std::size_t k = 0; k < want.size() && diff.empty(); ++k)
          if ((*out)[k] != want[k])
            diff = "lane " + std::to_string(k % vb) + " of plane " + std::to_string(k / vb) +
                   " (superlane " + std::to_string((k % vb) / 16) + "): " + hex(want[k]) +
                   " in the model, " + hex((*out)[k]) + " in the RTL";
      }
      if (diff.empty()) {
        stats_.matched += static_cast<std::uint64_t>(planes);
        return;
      }
      stats_.mismatched += static_cast<std::uint64_t>(planes);
      if (stats_.mismatched == static_cast<std::uint64_t>(planes)) {
        ctx_.record(at, "the RTL differs from the model in " + diff);
        ctx_.errors->back().kind = "lockstep mismatch";
      }
    };
  }

  static units::Issue issue_of(const Job& j) {
    units::Issue at;
    at.queue = j.queue;
    at.index = j.index;
    at.step = j.step;
    at.access = j.access;
    return at;
  }

  units::ChipContext& ctx_;
  int lanes_;
  sc_core::sc_time period_;
  Waves* waves_ = nullptr;
  std::map<std::uint16_t, std::unique_ptr<Block>> blocks_;
  units::CosimStats stats_;
};

}  // namespace

std::unique_ptr<units::SxmRtlPort> make_sxm_rtl(units::ChipContext& ctx, const arch::Queue& shift,
                                                Waves* waves) {
  return std::make_unique<SxmRtl>("rtl", ctx, shift, waves);
}

}  // namespace lpu::cosim
