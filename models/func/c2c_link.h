// The functional core of a chip-to-chip link (docs/multichip.md): the frame a vector travels in
// (header, payload, CRC-32), a link's timing from the architecture, and seeded bit-error
// injection. Plain C++: the SystemC link channel and the ports build on it.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "arch/arch.h"

namespace lpu::func {

/// One vector on the wire.
struct LinkFrame {
  std::uint32_t sequence = 0;  ///< the sending port's frame count
  std::uint16_t src_chip = 0;
  std::uint8_t src_port = 0;
  std::vector<std::uint8_t> payload;  ///< one vector (chip.lanes() bytes)
};

/// Header bytes before the payload and CRC bytes after it.
inline constexpr int kFrameHeaderBytes = 8;
inline constexpr int kFrameCrcBytes = 4;

/// The frame's bytes on the wire: header, payload, CRC-32 of both.
std::vector<std::uint8_t> encode_frame(const LinkFrame& f);

/// The frame in `wire`, or nullopt when its CRC does not match (or it is too short).
std::optional<LinkFrame> decode_frame(const std::vector<std::uint8_t>& wire);

/// A link's timing in chip cycles, from chip.c2c and the chip's clock.
struct LinkTiming {
  double cycle_ns = 0;        ///< one chip cycle
  double payload_gbps = 0;    ///< lanes x lane rate x coding efficiency
  std::uint64_t latency = 0;  ///< cycles from the end of serialisation to arrival
  std::uint64_t frame_bytes = 0;

  explicit LinkTiming(const arch::Arch& a);
  /// Cycles to serialise `bytes` (rounded up).
  std::uint64_t serialisation(std::uint64_t bytes) const;
  /// Cycles one vector's frame occupies the link.
  std::uint64_t frame_cycles() const { return serialisation(frame_bytes); }
  /// The cycle a frame sent in `send` has fully arrived at the far port.
  std::uint64_t arrival(std::uint64_t send) const { return send + frame_cycles() + latency; }
};

/// Flips bits of frames at a given bit error rate, reproducibly for a seed: the gaps between
/// flipped bits are geometric, so the cost is per error, not per bit.
class BitErrorInjector {
 public:
  BitErrorInjector(double bit_error_rate, std::uint64_t seed);
  /// Flips the bits of `wire` that fall on errors; returns how many it flipped.
  int corrupt(std::vector<std::uint8_t>& wire);
  std::uint64_t bits_seen() const { return bits_; }

 private:
  void draw_gap();
  double rate_;
  std::mt19937_64 rng_;
  std::uint64_t bits_ = 0;
  std::uint64_t next_ = 0;  ///< index (over all bits seen) of the next flipped bit
};

}  // namespace lpu::func
