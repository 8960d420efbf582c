// The stream fabric of one chip (brief B4): 2 x `streams` one-byte streams per lane, flowing east
// and west across the slice positions, one position per `hop` cycles. Instead of moving data every
// cycle, the fabric records each write once and answers a read at (position, cycle) by the
// time-space rule: eastward, the value seen at q in cycle t is the one written at the nearest
// p <= q in cycle t - (q - p) * hop (westward mirrored). All points a value visits lie on one
// diagonal, so writes are indexed by diagonal in a ring that is sized so that every diagonal still
// visible is kept.
//
// In the model (not in the hardware) each value carries the instruction that produced it, so a
// simulator can report a read of the wrong producer's value. Without data (timing mode) only the
// producers are kept.
//
// Not modelled here: multi-byte grouping (a 32-bit value is four stream writes by the caller) and
// anything about who may write where; the caller reports schedule errors from the results.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace lpu::func {

enum class Dir : std::uint8_t { kEast = 0, kWest = 1 };

/// Who wrote a value: a chip-local instruction (queue id, index in the queue) and, for values an
/// instruction writes more than once (repeat), which repetition.
struct Producer {
  std::uint16_t queue = 0xffff;
  std::uint32_t index = 0;
  std::uint32_t repetition = 0;
  bool valid() const { return queue != 0xffff; }
  bool operator==(const Producer& o) const {
    return queue == o.queue && index == o.index && repetition == o.repetition;
  }
};

/// A value as a reader sees it.
struct StreamValue {
  Producer producer;
  int position = 0;                    ///< where it was written
  std::uint64_t cycle = 0;             ///< when it was written
  const std::uint8_t* data = nullptr;  ///< `lanes` bytes; null in timing mode
};

class StreamFabric {
 public:
  /// `horizon`: the most cycles between the access cycle of the instruction being executed and
  /// any write it records (the longest d_func); with the chip's span it sizes the ring.
  StreamFabric(int streams, int positions, int hop_cycles, int lanes, int horizon, bool with_data);

  enum class WriteStatus { kOk, kCollision };
  /// Records `data` (lanes bytes, ignored without data) written at (pos, cycle). Writes must be
  /// recorded no earlier than `horizon` cycles before `cycle` and never for a cycle a read has
  /// already passed. A second write to the same stream, direction, position and cycle is a
  /// collision: the first value stays and `*other` names its producer.
  WriteStatus write(int stream, Dir dir, int pos, std::uint64_t cycle, const Producer& who,
                    const std::uint8_t* data, Producer* other = nullptr);
  /// As write, but hands out the value's `lanes` bytes for the caller to fill (saves a copy), or
  /// nullptr on a collision. Without data it returns a scratch buffer. Pointers from read() and
  /// reserve() stay valid while their diagonal lives: payloads never move.
  std::uint8_t* reserve(int stream, Dir dir, int pos, std::uint64_t cycle, const Producer& who,
                        Producer* other = nullptr);

  /// The value passing (pos, cycle), or nullptr if nothing written reaches it.
  const StreamValue* read(int stream, Dir dir, int pos, std::uint64_t cycle);

  /// Called for each value that leaves the fabric (its diagonal expires, or flush) without ever
  /// having been read, so that a simulator can report results nobody consumed.
  using UnreadHandler = std::function<void(const StreamValue&, int stream, Dir dir)>;
  void on_unread(UnreadHandler h) { unread_ = std::move(h); }
  /// Lets every value still held leave (end of a run), calling the unread handler as needed.
  void flush();

  /// Tells the fabric that no read or write earlier than `cycle` will come (frees old diagonals).
  void advance(std::uint64_t cycle) { now_ = cycle > now_ ? cycle : now_; }

  int streams() const { return streams_; }
  int positions() const { return positions_; }
  int lanes() const { return lanes_; }
  bool with_data() const { return with_data_; }
  /// Writes recorded so far (for reports).
  std::uint64_t writes() const { return writes_; }
  /// Stream-register hops values made so far: each value counts the positions from where it was
  /// written to its farthest reader (for the energy estimate).
  std::uint64_t hops() const { return hops_; }

 private:
  struct Entry {
    StreamValue value;
    bool read = false;
    std::uint32_t reach = 0;    ///< hops to its farthest reader so far
    std::uint32_t payload = 0;  ///< index into `payload_` of its `lanes` bytes
  };
  struct Slot {
    std::uint64_t key = ~0ull;   ///< the diagonal this slot holds, ~0 = empty
    std::vector<Entry> entries;  ///< sorted by position
  };

  std::uint64_t key_of(Dir dir, int pos, std::uint64_t cycle) const {
    return dir == Dir::kEast ? cycle + static_cast<std::uint64_t>(positions_ - 1 - pos) * hop_
                             : cycle + static_cast<std::uint64_t>(pos) * hop_;
  }
  Slot& slot(int stream, Dir dir, std::uint64_t key) {
    return slots_[((static_cast<std::size_t>(stream) * 2 + static_cast<std::size_t>(dir))
                   << ring_bits_) |
                  (key & ring_mask_)];
  }
  std::uint32_t alloc_payload();
  void release(Slot& s, std::size_t index);
  void retire(Slot& s, std::uint64_t key);  // frees a dead diagonal's slot for `key`
  std::uint8_t* reserve_slow(Slot& s, int pos, std::uint64_t cycle, const Producer& who,
                             Producer* other);  // a writer west of another on one diagonal
  std::uint8_t* finish_reserve(Entry& e) {
    ++writes_;
    if (!with_data_) return scratch_.data();
    e.payload = alloc_payload();
    return payload(e.payload);
  }

  int streams_, positions_, hop_, lanes_;
  bool with_data_;
  unsigned ring_bits_ = 0;
  std::uint64_t ring_mask_ = 0;
  std::vector<Slot> slots_;
  // Payloads live in fixed blocks so that handing out pointers is safe while the pool grows.
  static constexpr unsigned kBlockShift = 8;
  std::vector<std::unique_ptr<std::uint8_t[]>> blocks_;
  std::uint32_t payloads_ = 0;  // allocated so far
  std::vector<std::uint8_t> scratch_;
  std::uint8_t* payload(std::uint32_t i) {
    return blocks_[i >> kBlockShift].get() +
           static_cast<std::size_t>(i & ((1u << kBlockShift) - 1)) *
               static_cast<std::size_t>(lanes_);
  }
  std::vector<std::uint32_t> free_;
  UnreadHandler unread_;
  std::uint64_t now_ = 0;
  std::uint64_t writes_ = 0;
  std::uint64_t hops_ = 0;
};

// The per-vector paths, inline: one diagonal lookup and, usually, one entry.

inline std::uint8_t* StreamFabric::reserve(int stream, Dir dir, int pos, std::uint64_t cycle,
                                           const Producer& who, Producer* other) {
  const std::uint64_t key = key_of(dir, pos, cycle);
  Slot& s = slot(stream, dir, key);
  if (s.key != key) retire(s, key);
  // Usually the first writer of its diagonal, or east of those before it.
  if (!s.entries.empty() && s.entries.back().value.position >= pos)
    return reserve_slow(s, pos, cycle, who, other);
  Entry& e = s.entries.emplace_back();
  e.value.producer = who;
  e.value.position = pos;
  e.value.cycle = cycle;
  return finish_reserve(e);
}

inline const StreamValue* StreamFabric::read(int stream, Dir dir, int pos, std::uint64_t cycle) {
  const std::uint64_t key = key_of(dir, pos, cycle);
  Slot& s = slot(stream, dir, key);
  if (s.key != key) return nullptr;
  // Eastward: the nearest writer at or west of pos; westward: at or east of it.
  Entry* found = nullptr;
  if (dir == Dir::kEast) {
    for (auto& e : s.entries) {
      if (e.value.position > pos) break;
      found = &e;
    }
  } else {
    for (auto& e : s.entries)
      if (e.value.position >= pos) {
        found = &e;
        break;
      }
  }
  if (!found) return nullptr;
  found->read = true;
  const auto reach = static_cast<std::uint32_t>(
      pos > found->value.position ? pos - found->value.position : found->value.position - pos);
  if (reach > found->reach) {
    hops_ += reach - found->reach;
    found->reach = reach;
  }
  found->value.data = with_data_ ? payload(found->payload) : nullptr;
  return &found->value;
}

}  // namespace lpu::func
