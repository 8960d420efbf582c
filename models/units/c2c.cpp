#include "units/c2c.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace lpu::units {

C2cChannel::C2cChannel(const arch::Arch& arch, int index, LinkEnd a, LinkEnd b,
                       double bit_error_rate, std::uint64_t seed)
    : index_(index),
      a_(a),
      b_(b),
      timing_(arch),
      ab_(bit_error_rate, seed * 2654435761u + static_cast<std::uint64_t>(2 * index)),
      ba_(bit_error_rate, seed * 2654435761u + static_cast<std::uint64_t>(2 * index + 1)) {}

std::string C2cChannel::name(int d) const {
  const LinkEnd& from = d == 0 ? a_ : b_;
  const LinkEnd& to = d == 0 ? b_ : a_;
  return "link " + std::to_string(index_) + " (chip " + std::to_string(from.chip) + " port " +
         std::to_string(from.port) + " -> chip " + std::to_string(to.chip) + " port " +
         std::to_string(to.port) + ")";
}

void C2cChannel::report_unreceived(std::vector<ScheduleError>& errors) const {
  for (int d = 0; d < 2; ++d)
    for (const Frame& f : direction(d).frames) {
      ScheduleError e;
      e.chip = f.chip;
      e.unit = "C2C";
      e.queue = f.queue;
      e.instruction = f.index;
      e.cycle = f.sent;
      e.message = "sends a vector on " + name(d) + " that arrives in cycle " +
                  std::to_string(f.arrival) + ", but no recv on chip " +
                  std::to_string(end(1 - d).chip) + " takes it";
      errors.push_back(std::move(e));
    }
}

C2cPort::C2cPort(const sc_core::sc_module_name& name, ChipContext& ctx, int link)
    : Unit(name, ctx), link_(link) {
  const CosimOptions& co = ctx.options.cosim;
  if (co.c2c != UnitMode::kTlm && co.factory && ctx.functional()) {
    mode_ = co.c2c;
    rtl_ = co.factory->c2c(ctx);
  }
}

void C2cPort::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  if (is.access < hold_until_)
    ctx_.error(is, "dispatches in cycle " + std::to_string(is.access) +
                       ", while a deskew holds the queue until cycle " +
                       std::to_string(hold_until_));
  if (in.opcode == 0x82) {  // deskew: realign the chip's clock at the next epoch
    const auto epoch = static_cast<std::uint64_t>(ctx_.arch->chip.icu.epoch_cycles);
    hold_until_ = ctx_.clock.deskew(is.access, epoch);
    if (ctx_.clock.s0 != 0)
      ctx_.error(is, "deskew in cycle " + std::to_string(is.access) +
                         " came after the aligned counter's epoch boundary (the chip's clock "
                         "had drifted by " +
                         std::to_string(ctx_.clock.s0) +
                         " cycles, more than the time to the boundary): the chip slips an "
                         "epoch");
    return;
  }
  if (in.opcode == 0x80)
    send(is);
  else
    receive(is);
}

void C2cPort::send(const Issue& is) {
  const std::uint8_t* plane = nullptr;
  if (!read_group(is, is.instr->arg[0], 1, &plane)) return;
  if (!channel_) {
    ctx_.error(
        is, "sends on link " + std::to_string(link_) + ", which is not connected to another chip");
    return;
  }
  C2cChannel::Direction& d = channel_->direction(out_);
  const func::LinkTiming& t = channel_->timing();
  if (is.access < d.busy_until) {
    ctx_.error(is, "sends on " + channel_->name(out_) +
                       " while its previous frame occupies it "
                       "until cycle " +
                       std::to_string(d.busy_until));
    return;
  }
  func::LinkFrame f;
  f.sequence = d.sequence++;
  f.src_chip = static_cast<std::uint16_t>(ctx_.chip_id);
  f.src_port = static_cast<std::uint8_t>(link_);
  if (plane)
    f.payload.assign(plane, plane + ctx_.lanes);
  else
    f.payload.assign(static_cast<std::size_t>(ctx_.lanes), 0);  // timing mode: no values
  C2cChannel::Frame fr;
  if (mode_ != UnitMode::kRtl) {
    fr.wire = func::encode_frame(f);
    fr.flips = d.errors.corrupt(fr.wire);
  }
  fr.sent = is.access;
  // In system time: this chip's clock may run off the time base (ChipClock).
  const double skew = ctx_.clock.skew(is.access);
  ctx_.clock.worst = std::max(ctx_.clock.worst, std::fabs(skew));
  fr.arrival_time = static_cast<double>(t.arrival(is.access)) + skew;
  fr.arrival = static_cast<std::uint64_t>(std::llround(fr.arrival_time));
  fr.chip = ctx_.chip_id;
  fr.queue = is.queue->name;
  fr.index = is.index;
  d.busy_until = is.access + t.frame_cycles();
  ++d.vectors;
  d.bytes += t.frame_bytes;
  d.busy_cycles += t.frame_cycles();
  d.bits_flipped += static_cast<std::uint64_t>(fr.flips);
  d.frames.push_back(std::move(fr));
  if (!rtl_) return;
  // The link layer's RTL serialises the frame over its window; then (the wire's bits known, as
  // the lanes carried them) the far port's RTL deserialises them before the arrival cycle.
  C2cChannel::Frame* fp = &d.frames.back();  // (deque: stays put until received)
  const std::uint64_t arrival = fp->arrival, start = is.access + t.frame_cycles();
  const std::uint64_t from =
      std::max(start, arrival > t.frame_cycles() + 1 ? arrival - 1 - t.frame_cycles() : 0);
  const std::uint64_t to = std::max(from + 1, arrival > 0 ? arrival - 1 : 0);
  std::vector<std::uint8_t> model;
  if (mode_ == UnitMode::kLockstep) model = func::encode_frame(f);
  const bool rtl_wire = mode_ == UnitMode::kRtl;
  rtl_->send(
      is, f, t.frame_cycles(),
      [fp, &d, rtl_wire, from, to](const std::vector<std::uint8_t>& wire) {
        if (rtl_wire) {  // the RTL's bytes travel, bit errors injected on them
          fp->wire = wire;
          fp->flips = d.errors.corrupt(fp->wire);
          d.bits_flipped += static_cast<std::uint64_t>(fp->flips);
        }
        if (d.receiver_rtl) d.receiver_rtl->incoming(fp->wire, from, to);
      },
      mode_ == UnitMode::kLockstep ? &model : nullptr);
}

void C2cPort::receive(const Issue& is) {
  if (!channel_) {
    ctx_.error(is, "receives on link " + std::to_string(link_) +
                       ", which is not connected: nothing arrives");
    return;
  }
  C2cChannel::Direction& d = channel_->direction(1 - out_);
  const std::string link = channel_->name(1 - out_);
  // Arrivals in system time, against this receive's (the same cycle when no clock drifts).
  const double now = ctx_.clock.system_time(is.access);
  ctx_.clock.worst = std::max(ctx_.clock.worst, std::fabs(ctx_.clock.skew(is.access)));
  auto drift = [&]() -> std::string {
    if (ctx_.options.clock_drift_ppm <= 0) return "";
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  " (clocks drift: this receive falls at %.2f on the time base, the chip's clock "
                  "runs %.1f ppm off, %llu deskew(s) so far; arrivals are time-base cycles)",
                  now, ctx_.clock.ppm, static_cast<unsigned long long>(ctx_.clock.deskews));
    return buf;
  };
  // Frames that arrived before this cycle were never taken.
  while (!d.frames.empty() && d.frames.front().arrival_time < now - 0.5) {
    const C2cChannel::Frame& f = d.frames.front();
    take_rtl();
    ctx_.error(is, "receives in cycle " + std::to_string(is.access) + " on " + link +
                       ", but the vector sent by chip " + std::to_string(f.chip) + " " + f.queue +
                       " instruction " + std::to_string(f.index) + " in cycle " +
                       std::to_string(f.sent) + " arrived in cycle " + std::to_string(f.arrival) +
                       " and nothing took it" + drift());
    d.frames.pop_front();
  }
  if (d.frames.empty() || d.frames.front().arrival_time >= now + 0.5) {
    ctx_.error(is, "receives in cycle " + std::to_string(is.access) + " on " + link +
                       ", but nothing arrives then" +
                       (d.frames.empty() ? std::string(" (nothing is in flight)")
                                         : " (the next vector arrives in cycle " +
                                               std::to_string(d.frames.front().arrival) + ")") +
                       drift());
    return;
  }
  const C2cChannel::Frame f = std::move(d.frames.front());
  d.frames.pop_front();
  std::optional<func::LinkFrame> frame;
  if (mode_ == UnitMode::kRtl) {  // the RTL's receive side decided
    C2cRtlPort::Received r = take_rtl();
    if (r.crc_ok) frame = std::move(r.frame);
  } else {
    frame = func::decode_frame(f.wire);
    if (rtl_) rtl_->compare(is, take_rtl(), frame);
  }
  if (!frame) {
    ++d.crc_errors;
    ctx_.error(is, "CRC error on " + link + ": the vector sent by chip " + std::to_string(f.chip) +
                       " " + f.queue + " instruction " + std::to_string(f.index) + " in cycle " +
                       std::to_string(f.sent) + " arrived corrupted and is dropped");
    return;
  }
  std::uint8_t* out = nullptr;
  if (!reserve_group(is, is.instr->arg[0], 1, &out)) return;
  if (out && ctx_.functional()) std::copy(frame->payload.begin(), frame->payload.end(), out);
  finish_group(is, 1, &out);
}

}  // namespace lpu::units
