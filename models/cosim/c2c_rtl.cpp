// A C2C port's link layer in RTL (rtl/c2c/c2c_link.sv, Verilated in SystemC mode) behind a
// transactor (docs/cosim.md). Two blocks per port: one transmits (frames, CRC, 4-lane serialiser)
// over each sent frame's serialisation window, one receives (deserialiser, CRC check, deframer)
// over the window each frame's bits arrive in. Each has its own thread and serial clock: the
// window's time over the frame's bits on a lane (frame bytes x 2 clocks).
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "Vc2c_link320_sc.h"
#include "Vc2c_link32_sc.h"
#include "cosim/blocks.h"
#include "cosim/waves.h"
#include "verilated.h"

namespace lpu::cosim {

namespace {

using units::C2cRtlPort;

// One c2c_link block (Verilated class M, a payload of P bytes) and its pins.
template <class M, int P>
class LinkBlock final : public sc_core::sc_module {
 public:
  using Payload = sc_dt::sc_bv<P * 8>;
  static constexpr int kFrame = func::kFrameHeaderBytes + P + func::kFrameCrcBytes;
  LinkBlock(const sc_core::sc_module_name& name, Waves* waves, bool tx)
      : sc_core::sc_module(name),
        clk("clk"),
        rst_n("rst_n"),
        tx_start("tx_start"),
        tx_active("tx_active"),
        rx_valid("rx_valid"),
        rx_done("rx_done"),
        rx_crc_ok("rx_crc_ok"),
        tx_seq("tx_seq"),
        tx_chip("tx_chip"),
        tx_port("tx_port"),
        tx_lanes("tx_lanes"),
        rx_lanes("rx_lanes"),
        rx_seq("rx_seq"),
        rx_chip("rx_chip"),
        rx_port("rx_port"),
        rx_flags("rx_flags"),
        tx_payload("tx_payload"),
        rx_payload("rx_payload"),
        link("link") {
    link.clk(clk);
    link.rst_n(rst_n);
    link.tx_start(tx_start);
    link.tx_seq(tx_seq);
    link.tx_chip(tx_chip);
    link.tx_port(tx_port);
    link.tx_payload(tx_payload);
    link.tx_active(tx_active);
    link.tx_lanes(tx_lanes);
    link.rx_valid(rx_valid);
    link.rx_lanes(rx_lanes);
    link.rx_done(rx_done);
    link.rx_crc_ok(rx_crc_ok);
    link.rx_seq(rx_seq);
    link.rx_chip(rx_chip);
    link.rx_port(rx_port);
    link.rx_flags(rx_flags);
    link.rx_payload(rx_payload);
    if (waves) {
      const std::string scope = std::string(link.name()) + ".c2c_link";
      const std::string pl = "[" + std::to_string(P * 8 - 1) + ":0]";
      int ww = 0;  // the block's word counter: $clog2(frame words + 1) bits
      while ((1 << ww) < kFrame / 4 + 1)
        ++ww;
      const std::string word = "[" + std::to_string(ww - 1) + ":0]";
      waves->add(
          [this](VerilatedFstC* f) { link.trace(f, 99); },
          [this, scope, pl, word, tx] {
            if (!used) return std::string();
            const std::string t = link.name();
            return tx ? gtkw_group(t + " transmit", scope,
                                   {"clk", "tx_start", "tx_seq[31:0]", "tx_chip[15:0]",
                                    "tx_port[7:0]", "tx_payload" + pl, "tx_active", "tx_lanes[3:0]",
                                    "tx_word" + word, "tx_bit[2:0]", "tx_crc[31:0]"})
                      : gtkw_group(
                            t + " receive", scope,
                            {"clk", "rx_valid", "rx_lanes[3:0]", "rx_word" + word, "rx_bit[2:0]",
                             "rx_crc[31:0]", "rx_done", "rx_crc_ok", "rx_seq[31:0]",
                             "rx_chip[15:0]", "rx_port[7:0]", "rx_payload" + pl});
          });
    }
  }
  // One serial clock: the pins set by `drive`, an edge half a period later, the next half.
  void clock(const sc_core::sc_time& edge, const sc_core::sc_time& end) {
    clk.write(false);
    wait(edge - sc_core::sc_time_stamp());
    clk.write(true);
    wait(end - sc_core::sc_time_stamp());
    ++cycles;
  }
  void reset() { reset_pulse(clk, rst_n); }

  sc_core::sc_signal<bool> clk, rst_n, tx_start, tx_active, rx_valid, rx_done, rx_crc_ok;
  sc_core::sc_signal<std::uint32_t> tx_seq, tx_chip, tx_port, tx_lanes, rx_lanes, rx_seq, rx_chip,
      rx_port, rx_flags;
  sc_core::sc_signal<Payload> tx_payload, rx_payload;
  M link;
  bool used = false;
  std::uint64_t cycles = 0;
};

template <class M, int P>
class C2cRtl final : public sc_core::sc_module, public C2cRtlPort {
 public:
  using Block = LinkBlock<M, P>;
  SC_HAS_PROCESS(C2cRtl);
  C2cRtl(const sc_core::sc_module_name& name, units::ChipContext& ctx, Waves* waves)
      : sc_core::sc_module(name),
        tx_("tx", waves, true),
        rx_("rx", waves, false),
        ctx_(ctx),
        period_(1.0 / ctx.arch->chip.clock_mhz, sc_core::SC_US) {
    SC_THREAD(transmit);
    SC_THREAD(receive);
  }

  void send(const units::Issue& is, const func::LinkFrame& f, std::uint64_t cycles,
            std::function<void(const std::vector<std::uint8_t>&)> done,
            const std::vector<std::uint8_t>* model_wire) override {
    Send s;
    s.at = issue_of(is);
    s.frame = f;
    s.from = is.access;
    s.to = is.access + cycles;
    s.done = std::move(done);
    if (model_wire) {
      s.compare = true;
      s.model = *model_wire;
    }
    sends_.push_back(std::move(s));
    tx_.used = true;
    send_ready_.notify(sc_core::SC_ZERO_TIME);
  }

  void incoming(const std::vector<std::uint8_t>& wire, std::uint64_t from,
                std::uint64_t to) override {
    arrivals_.push_back(Arrival{wire, from, to});
    rx_.used = true;
    arrival_ready_.notify(sc_core::SC_ZERO_TIME);
  }

  Received take() override {
    if (verdicts_.empty()) return {};  // (not deserialised yet: a schedule error reports it)
    Received r = std::move(verdicts_.front());
    verdicts_.pop_front();
    return r;
  }

  void compare(const units::Issue& is, const Received& rtl,
               const std::optional<func::LinkFrame>& model) override {
    std::string diff;
    if (rtl.crc_ok != model.has_value())
      diff = std::string("the CRC check: the model ") + (model ? "accepts" : "rejects") +
             " the frame, the RTL " + (rtl.crc_ok ? "accepts" : "rejects") + " it";
    else if (model &&
             (rtl.frame.sequence != model->sequence || rtl.frame.src_chip != model->src_chip ||
              rtl.frame.src_port != model->src_port))
      diff = "the header received: sequence " + std::to_string(model->sequence) + ", chip " +
             std::to_string(model->src_chip) + ", port " + std::to_string(model->src_port) +
             " in the model, " + std::to_string(rtl.frame.sequence) + ", " +
             std::to_string(rtl.frame.src_chip) + ", " + std::to_string(rtl.frame.src_port) +
             " in the RTL";
    else if (model)
      for (std::size_t k = 0; k < model->payload.size() && diff.empty(); ++k)
        if (rtl.frame.payload[k] != model->payload[k])
          diff = "lane " + std::to_string(k) +
                 " of the payload received: " + hex(model->payload[k]) + " in the model, " +
                 hex(rtl.frame.payload[k]) + " in the RTL";
    verdict(is, diff);
  }

  units::CosimStats& stats() override {
    stats_.rtl_cycles = tx_.cycles + rx_.cycles;
    return stats_;
  }

 private:
  struct Send {
    units::Issue at;
    func::LinkFrame frame;
    std::uint64_t from = 0, to = 0;
    std::function<void(const std::vector<std::uint8_t>&)> done;
    bool compare = false;
    std::vector<std::uint8_t> model;
  };
  struct Arrival {
    std::vector<std::uint8_t> wire;
    std::uint64_t from = 0, to = 0;
  };

  static units::Issue issue_of(const units::Issue& is) {
    units::Issue at;
    at.queue = is.queue;
    at.index = is.index;
    at.step = is.step;
    at.access = is.access;
    return at;
  }

  void verdict(const units::Issue& at, const std::string& diff) {
    if (diff.empty()) {
      ++stats_.matched;
      return;
    }
    if (stats_.mismatched++ == 0) {
      ctx_.record(at, "the RTL differs from the model in " + diff);
      ctx_.errors->back().kind = "lockstep mismatch";
    }
  }

  // The edges of `clocks` serial clocks spread over chip cycles [from, to) (not before now).
  struct Window {
    sc_core::sc_time start, step;
    sc_core::sc_time edge(int c) const { return start + step * (static_cast<double>(c) + 0.5); }
    sc_core::sc_time end(int c) const { return start + step * static_cast<double>(c + 1); }
  };
  Window window(std::uint64_t from, std::uint64_t to, int clocks) const {
    Window w;
    w.start = std::max(period_ * static_cast<double>(from), sc_core::sc_time_stamp());
    const sc_core::sc_time stop = std::max(period_ * static_cast<double>(to), w.start + period_);
    w.step = (stop - w.start) / static_cast<double>(clocks);
    return w;
  }

  void transmit() {
    tx_.reset();
    for (;;) {
      while (sends_.empty())
        wait(send_ready_);
      Send& s = sends_.front();
      const int bits = 2 * Block::kFrame;  // clocks: the start, then 8 per 4-byte word
      const Window w = window(s.from, s.to, bits + 1);
      if (w.start > sc_core::sc_time_stamp()) wait(w.start - sc_core::sc_time_stamp());
      tx_.tx_start.write(true);
      tx_.tx_seq.write(s.frame.sequence);
      tx_.tx_chip.write(s.frame.src_chip);
      tx_.tx_port.write(s.frame.src_port);
      typename Block::Payload p;
      to_bus(s.frame.payload.data(), P, &p);
      tx_.tx_payload.write(p);
      tx_.clock(w.edge(0), w.end(0));
      tx_.tx_start.write(false);
      std::vector<std::uint8_t> wire(static_cast<std::size_t>(Block::kFrame), 0);
      for (int c = 0; c < bits; ++c) {
        tx_.clock(w.edge(c + 1), w.end(c + 1));
        const std::uint32_t lanes = tx_.tx_lanes.read();
        for (int l = 0; l < 4; ++l)
          if (lanes >> l & 1u)
            wire[static_cast<std::size_t>((c / 8) * 4 + l)] |=
                static_cast<std::uint8_t>(1u << (c % 8));
      }
      ++stats_.rtl_vectors;
      if (s.compare) {
        std::string diff;
        for (std::size_t k = 0; k < wire.size() && diff.empty(); ++k)
          if (wire[k] != s.model[k])
            diff = "byte " + std::to_string(k) + " of the frame sent (lane " +
                   std::to_string(k % 4) + "): " + hex(s.model[k]) + " in the model, " +
                   hex(wire[k]) + " in the RTL";
        verdict(s.at, diff);
      }
      s.done(wire);
      sends_.pop_front();
    }
  }

  void receive() {
    rx_.reset();
    for (;;) {
      while (arrivals_.empty())
        wait(arrival_ready_);
      Arrival& a = arrivals_.front();
      const int bits = 2 * Block::kFrame;
      const Window w = window(a.from, a.to, bits);
      for (int c = 0; c < bits; ++c) {
        std::uint32_t lanes = 0;
        for (int l = 0; l < 4; ++l)
          lanes |= static_cast<std::uint32_t>(
                       a.wire[static_cast<std::size_t>((c / 8) * 4 + l)] >> (c % 8) & 1u)
                   << l;
        rx_.rx_valid.write(true);
        rx_.rx_lanes.write(lanes);
        rx_.clock(w.edge(c), w.end(c));
      }
      rx_.rx_valid.write(false);
      Received r;
      r.crc_ok = rx_.rx_done.read() && rx_.rx_crc_ok.read();
      r.frame.sequence = rx_.rx_seq.read();
      r.frame.src_chip = static_cast<std::uint16_t>(rx_.rx_chip.read());
      r.frame.src_port = static_cast<std::uint8_t>(rx_.rx_port.read());
      r.frame.payload.resize(static_cast<std::size_t>(P));
      from_bus(rx_.rx_payload.read(), P, r.frame.payload.data());
      verdicts_.push_back(std::move(r));
      arrivals_.pop_front();
      ++stats_.rtl_vectors;
    }
  }

  Block tx_, rx_;
  units::ChipContext& ctx_;
  sc_core::sc_time period_;
  std::deque<Send> sends_;
  std::deque<Arrival> arrivals_;
  std::deque<Received> verdicts_;
  sc_core::sc_event send_ready_, arrival_ready_;
  units::CosimStats stats_;
};

}  // namespace

std::unique_ptr<units::C2cRtlPort> make_c2c_rtl(units::ChipContext& ctx, Waves* waves) {
  if (ctx.lanes == 32) return std::make_unique<C2cRtl<Vc2c_link32_sc, 32>>("rtl", ctx, waves);
  return std::make_unique<C2cRtl<Vc2c_link320_sc, 320>>("rtl", ctx, waves);
}

}  // namespace lpu::cosim
