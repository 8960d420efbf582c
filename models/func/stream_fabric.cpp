#include "func/stream_fabric.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace lpu::func {

StreamFabric::StreamFabric(int streams, int positions, int hop_cycles, int lanes, int horizon,
                           bool with_data)
    : streams_(streams),
      positions_(positions),
      hop_(hop_cycles),
      lanes_(lanes),
      with_data_(with_data) {
  if (streams <= 0 || positions <= 0 || hop_cycles <= 0 || lanes <= 0 || horizon < 0)
    throw std::invalid_argument("StreamFabric: bad geometry");
  // A diagonal recorded now is still visible up to `span` cycles later; keep the ring larger
  // than everything that can be live at once.
  const std::uint64_t span =
      static_cast<std::uint64_t>(horizon) +
      static_cast<std::uint64_t>(positions) * static_cast<std::uint64_t>(hop_cycles) + 2;
  while ((std::uint64_t{1} << ring_bits_) < span)
    ++ring_bits_;
  ring_mask_ = (std::uint64_t{1} << ring_bits_) - 1;
  slots_.resize(static_cast<std::size_t>(streams) * 2 << ring_bits_);
  scratch_.resize(static_cast<std::size_t>(lanes));
}

std::uint32_t StreamFabric::alloc_payload() {
  if (!free_.empty()) {
    const std::uint32_t p = free_.back();
    free_.pop_back();
    return p;
  }
  if ((payloads_ >> kBlockShift) >= blocks_.size())
    blocks_.push_back(
        std::make_unique<std::uint8_t[]>(static_cast<std::size_t>(lanes_) << kBlockShift));
  return payloads_++;
}

void StreamFabric::release(Slot& s, std::size_t index) {
  for (auto& e : s.entries) {
    if (with_data_) free_.push_back(e.payload);
    if (!e.read && unread_) {
      e.value.data = nullptr;
      // The slot index encodes the stream and direction (see slot()).
      unread_(e.value, static_cast<int>(index >> (ring_bits_ + 1)),
              static_cast<Dir>((index >> ring_bits_) & 1));
    }
  }
  s.entries.clear();
  s.key = ~0ull;
}

StreamFabric::WriteStatus StreamFabric::write(int stream, Dir dir, int pos, std::uint64_t cycle,
                                              const Producer& who, const std::uint8_t* data,
                                              Producer* other) {
  std::uint8_t* p = reserve(stream, dir, pos, cycle, who, other);
  if (!p) return WriteStatus::kCollision;
  if (with_data_) std::memcpy(p, data, static_cast<std::size_t>(lanes_));
  return WriteStatus::kOk;
}

std::uint8_t* StreamFabric::reserve_slow(Slot& s, int pos, std::uint64_t cycle, const Producer& who,
                                         Producer* other) {
  auto it = std::lower_bound(s.entries.begin(), s.entries.end(), pos,
                             [](const Entry& x, int p) { return x.value.position < p; });
  if (it != s.entries.end() && it->value.position == pos) {
    if (other) *other = it->value.producer;
    return nullptr;
  }
  Entry e;
  e.value.producer = who;
  e.value.position = pos;
  e.value.cycle = cycle;
  return finish_reserve(*s.entries.insert(it, e));
}

void StreamFabric::retire(Slot& s, std::uint64_t key) {
  // The slot holds an older diagonal (dead: its last visible cycle is before now) or nothing.
  if (s.key != ~0ull && s.key >= now_)
    throw std::logic_error("StreamFabric: ring too small for the live diagonals");
  release(s, static_cast<std::size_t>(&s - slots_.data()));
  s.key = key;
}

void StreamFabric::flush() {
  for (std::size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].key != ~0ull) release(slots_[i], i);
}

}  // namespace lpu::func
