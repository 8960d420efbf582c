#include "func/c2c_link.h"

#include <algorithm>
#include <boost/crc.hpp>
#include <cmath>

namespace lpu::func {

namespace {
std::uint32_t crc32(const std::uint8_t* data, std::size_t n) {
  boost::crc_32_type crc;
  crc.process_bytes(data, n);
  return crc.checksum();
}
}  // namespace

std::vector<std::uint8_t> encode_frame(const LinkFrame& f) {
  std::vector<std::uint8_t> w;
  w.reserve(kFrameHeaderBytes + f.payload.size() + kFrameCrcBytes);
  for (int b = 0; b < 4; ++b)
    w.push_back(static_cast<std::uint8_t>(f.sequence >> (8 * b)));
  w.push_back(static_cast<std::uint8_t>(f.src_chip));
  w.push_back(static_cast<std::uint8_t>(f.src_chip >> 8));
  w.push_back(f.src_port);
  w.push_back(0);  // flags
  w.insert(w.end(), f.payload.begin(), f.payload.end());
  const std::uint32_t c = crc32(w.data(), w.size());
  for (int b = 0; b < 4; ++b)
    w.push_back(static_cast<std::uint8_t>(c >> (8 * b)));
  return w;
}

std::optional<LinkFrame> decode_frame(const std::vector<std::uint8_t>& w) {
  if (w.size() < static_cast<std::size_t>(kFrameHeaderBytes + kFrameCrcBytes)) return std::nullopt;
  const std::size_t body = w.size() - kFrameCrcBytes;
  std::uint32_t c = 0;
  for (int b = 0; b < 4; ++b)
    c |= static_cast<std::uint32_t>(w[body + static_cast<std::size_t>(b)]) << (8 * b);
  if (crc32(w.data(), body) != c) return std::nullopt;
  LinkFrame f;
  for (int b = 0; b < 4; ++b)
    f.sequence |= static_cast<std::uint32_t>(w[static_cast<std::size_t>(b)]) << (8 * b);
  f.src_chip = static_cast<std::uint16_t>(w[4] | (w[5] << 8));
  f.src_port = w[6];
  f.payload.assign(w.begin() + kFrameHeaderBytes, w.begin() + static_cast<long>(body));
  return f;
}

LinkTiming::LinkTiming(const arch::Arch& a) {
  const auto& c = a.chip.c2c;
  cycle_ns = 1000.0 / a.chip.clock_mhz;
  payload_gbps = c.lanes_per_link * c.lane_rate_gbps * c.coding_efficiency;
  latency = static_cast<std::uint64_t>(std::ceil(c.latency_ns / cycle_ns - 1e-9));
  frame_bytes = static_cast<std::uint64_t>(kFrameHeaderBytes + a.chip.lanes() + kFrameCrcBytes);
}

std::uint64_t LinkTiming::serialisation(std::uint64_t bytes) const {
  const double ns = 8.0 * static_cast<double>(bytes) / payload_gbps;  // Gb/s = bits per ns
  return static_cast<std::uint64_t>(std::ceil(ns / cycle_ns - 1e-9));
}

BitErrorInjector::BitErrorInjector(double bit_error_rate, std::uint64_t seed)
    : rate_(std::min(1.0, bit_error_rate)), rng_(seed) {
  if (rate_ > 0) draw_gap();
}

// The next flipped bit: after a geometric number of good bits (none at rate 1).
void BitErrorInjector::draw_gap() {
  std::geometric_distribution<std::uint64_t> gap(rate_);
  next_ += gap(rng_);
}

int BitErrorInjector::corrupt(std::vector<std::uint8_t>& wire) {
  const std::uint64_t end = bits_ + 8 * static_cast<std::uint64_t>(wire.size());
  int flipped = 0;
  while (rate_ > 0 && next_ < end) {
    const std::uint64_t i = next_ - bits_;
    wire[static_cast<std::size_t>(i / 8)] ^= static_cast<std::uint8_t>(1u << (i % 8));
    ++flipped;
    ++next_;
    draw_gap();
  }
  bits_ = end;
  return flipped;
}

}  // namespace lpu::func
