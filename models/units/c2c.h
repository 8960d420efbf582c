// Chip-to-chip links (brief A3, A4; docs/multichip.md). A C2cChannel is one link between two
// chip ports, with a direction each way; a C2cPort is the unit behind a chip's c2c.lN queue.
// `send` frames the vector on its stream and puts it on the link in its access cycle; it arrives
// at the far port after the frame's serialisation and the link latency (func::LinkTiming).
// `recv` takes the frame arriving in its own access cycle and puts the payload on its stream.
// There is no flow control: a frame nobody receives, a receive with nothing arriving, a send on
// a link still busy with the previous frame and a frame whose CRC fails (injected bit errors)
// are schedule errors naming both chips, the link, the instructions and the cycles.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include "func/c2c_link.h"
#include "units/cosim.h"
#include "units/unit.h"

namespace lpu::units {

struct LinkEnd {
  std::uint32_t chip = 0;
  int port = 0;
};

class C2cChannel {
 public:
  /// Link `index` of the system between ends a and b; bit errors at `bit_error_rate` per
  /// direction, from `seed` (each direction its own generator).
  C2cChannel(const arch::Arch& arch, int index, LinkEnd a, LinkEnd b, double bit_error_rate,
             std::uint64_t seed);

  struct Frame {
    std::vector<std::uint8_t> wire;
    std::uint64_t sent = 0, arrival = 0;
    double arrival_time = 0;  ///< system time (arrival is it rounded)
    std::uint32_t chip = 0;   ///< sender
    std::string queue;
    std::uint32_t index = 0;
    int flips = 0;
  };
  struct Direction {
    std::deque<Frame> frames;  ///< in flight, oldest first
    std::uint64_t busy_until = 0;
    std::uint32_t sequence = 0;
    func::BitErrorInjector errors;
    std::uint64_t vectors = 0, bytes = 0, busy_cycles = 0, crc_errors = 0, bits_flipped = 0;
    /// The receiving port's link layer in co-simulation (null otherwise).
    C2cRtlPort* receiver_rtl = nullptr;
    explicit Direction(double ber, std::uint64_t seed) : errors(ber, seed) {}
  };

  int index() const { return index_; }
  const LinkEnd& end(int i) const { return i == 0 ? a_ : b_; }
  /// Direction 0 carries frames from end a to end b, direction 1 back.
  Direction& direction(int d) { return d == 0 ? ab_ : ba_; }
  const Direction& direction(int d) const { return d == 0 ? ab_ : ba_; }
  const func::LinkTiming& timing() const { return timing_; }
  /// "link 3 (chip 0 port 1 -> chip 2 port 0)"
  std::string name(int d) const;
  /// Frames still in flight at the end of a run: a schedule error each.
  void report_unreceived(std::vector<ScheduleError>& errors) const;

 private:
  int index_;
  LinkEnd a_, b_;
  func::LinkTiming timing_;
  Direction ab_, ba_;
};

class C2cPort : public Unit {
 public:
  C2cPort(const sc_core::sc_module_name& name, ChipContext& ctx, int link);
  /// Connects this port to a link: it sends on `out`, receives on the other direction.
  void attach(C2cChannel* channel, int out) {
    channel_ = channel;
    out_ = out;
    channel->direction(1 - out).receiver_rtl = rtl_.get();
  }
  void execute(const Issue& is) override;
  int link() const { return link_; }
  UnitMode mode() const { return mode_; }
  /// Co-simulation figures (null in tlm mode).
  const CosimStats* cosim() const { return rtl_ ? &rtl_->stats() : nullptr; }

 private:
  void send(const Issue& is);
  void receive(const Issue& is);
  // The RTL's verdict on a frame popped from the link (co-simulation), in step with the frames.
  C2cRtlPort::Received take_rtl() { return rtl_ ? rtl_->take() : C2cRtlPort::Received{}; }
  int link_;
  UnitMode mode_ = UnitMode::kTlm;
  std::unique_ptr<C2cRtlPort> rtl_;  // the link layer's RTL, in rtl and lockstep modes
  std::uint64_t hold_until_ = 0;     // a deskew holds the queue until then
  C2cChannel* channel_ = nullptr;
  int out_ = 0;
};

}  // namespace lpu::units
