// The storage array of one MEM slice with SECDED protection (brief B3): `depth` words of
// `vector_bytes` bytes, each word split into chunks of `data_bits` protected by `check_bits`
// (tsp-v1: 320-byte words, 20 chunks of 128 data bits with 9 check bits: extended Hamming
// (137,128)).
//
// The code. Within a chunk, data bit k is bit k % 8 (bit 0 = least significant) of byte k / 8.
// With r check bits, r - 1 are Hamming bits and the last is the overall parity:
//  * Hamming position of check bit j (j < r - 1): 2^j; data bit k takes the k-th position, counting
//    from 1, that is not a power of two (data bit 0 at 3, 1 at 5, 2 at 6, 3 at 7, 4 at 9, ...);
//  * Hamming check bit j is the XOR of the data bits whose position has bit j set;
//  * check bit r - 1 makes the number of ones among all data_bits + r bits of the chunk even.
// Check bits of a chunk are kept as an integer: bit j = check bit j.
//
// Decoding: syndrome = recomputed Hamming bits XOR stored ones; parity = XOR of all stored bits.
// Syndrome 0 and even parity: clean. Odd parity: a single error at the syndrome's position
// (syndrome 0: the overall parity bit), corrected; a syndrome naming no position is an
// uncorrectable (multi-bit) error. Even parity with a non-zero syndrome: a double error,
// uncorrectable, left as stored.
//
// Fault-injection bit numbering (flip_bit), over one word (one address):
//  * bits 0 .. vector_bytes*8 - 1 are the data bits: bit b is bit b % 8 of byte b / 8, so chunk c
//    holds bits c*data_bits .. (c+1)*data_bits - 1 and its data bit k is word bit c*data_bits + k;
//  * then the check bits: check bit j of chunk c is word bit vector_bytes*8 + c*check_bits + j
//    (j = check_bits - 1 is the overall parity bit).
// bit_index(c, i) maps "bit i of chunk c, data bits first then check bits" to this numbering.
//
// Speed. Writes compute the check bits (a table lookup per data byte). Reads decode only words
// that may hold an error: only flip_bit can make a stored word inconsistent, so the slice keeps a
// per-address "pending" flag (set by flip_bit when the word no longer decodes clean, cleared when
// a write, a poke or a correcting read makes it clean again); every other read is a copy. peek()
// always decodes in full and so also checks that invariant.
//
// Timing mode (store_data = false): nothing is allocated; writes and fault injection do nothing,
// reads return zeros and report no ECC event.
//
// Gather and scatter are the caller's loop over read_byte / write_byte (one lane each): a byte
// read decodes only its chunk, a byte write is a read-modify-write of its chunk.
//
// Not modelled: the banks (the caller checks bank conflicts with Chip::Mem::bank_of). Three or
// more flips in one chunk may be "corrected" into wrong data or pass as clean, as in hardware.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace lpu::func {

/// ECC events of one access, counted in chunks.
struct ReadResult {
  int corrected = 0;      ///< chunks in which a single-bit error was corrected
  int uncorrectable = 0;  ///< chunks with a detected multi-bit error (data returned as stored)
  bool clean() const { return corrected == 0 && uncorrectable == 0; }
};

/// The SECDED code of one chunk: `data_bits` (a multiple of 8, 8..512) with `check_bits`
/// (2..32, 2^(check_bits-1) >= data_bits + check_bits). Throws std::invalid_argument otherwise.
class Secded {
 public:
  Secded(int data_bits, int check_bits);
  /// One shared instance per (data_bits, check_bits), for every slice of every chip.
  static std::shared_ptr<const Secded> shared(int data_bits, int check_bits);

  int data_bits() const { return data_bits_; }
  int data_bytes() const { return data_bits_ / 8; }
  int check_bits() const { return check_bits_; }

  /// The check bits of `data_bytes()` bytes.
  std::uint32_t encode(const std::uint8_t* chunk) const {
    return finish(syndrome_and_parity(chunk));
  }

  enum class Status { kClean, kCorrected, kUncorrectable };
  /// Checks a chunk against its stored check bits; a single-bit error (in data or check bits) is
  /// corrected in place. A multi-bit error leaves both unchanged.
  Status decode(std::uint8_t* chunk, std::uint32_t& check) const;
  /// The same without correcting anything.
  Status check(const std::uint8_t* chunk, std::uint32_t check) const;

  /// Hamming position of data bit k (see the file comment).
  int position_of_data_bit(int k) const { return data_pos_[static_cast<std::size_t>(k)]; }

 private:
  static constexpr bool kBigEndianHost = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
  // t: XOR of table rows = Hamming bits (0 .. r-2) | parity of the data (bit r-1).
  std::uint32_t finish(std::uint32_t t) const {
    const std::uint32_t h = t & hmask_;
    const std::uint32_t p = (t >> (check_bits_ - 1)) ^ parity(h);
    return h | ((p & 1u) << (check_bits_ - 1));
  }
  static std::uint32_t parity(std::uint32_t v) {
    v ^= v >> 16;
    v ^= v >> 8;
    v ^= v >> 4;
    v ^= v >> 2;
    v ^= v >> 1;
    return v & 1u;
  }
  // XOR of the table rows of the chunk's bytes: Hamming bits | data parity at bit r-1. Eight bytes
  // per load (data_bytes is a multiple of 8 for 64, 128, ... bit chunks).
  std::uint32_t syndrome_and_parity(const std::uint8_t* chunk) const {
    std::uint32_t t0 = 0, t1 = 0;
    const std::uint32_t* row = table_.data();
    int b = 0;
    for (; b + 8 <= data_bytes(); b += 8, row += 8 * 256) {
      std::uint64_t w;
      std::memcpy(&w, chunk + b, 8);
      if constexpr (kBigEndianHost) w = __builtin_bswap64(w);
      t0 ^= row[0 * 256 + (w & 0xff)] ^ row[2 * 256 + (w >> 16 & 0xff)] ^
            row[4 * 256 + (w >> 32 & 0xff)] ^ row[6 * 256 + (w >> 48 & 0xff)];
      t1 ^= row[1 * 256 + (w >> 8 & 0xff)] ^ row[3 * 256 + (w >> 24 & 0xff)] ^
            row[5 * 256 + (w >> 40 & 0xff)] ^ row[7 * 256 + (w >> 56)];
    }
    for (; b < data_bytes(); ++b, row += 256)
      t0 ^= row[chunk[b]];
    return t0 ^ t1;
  }
  // Shared by decode and check: syndrome and overall parity of (chunk, check).
  Status classify(const std::uint8_t* chunk, std::uint32_t check, std::uint32_t* syndrome) const;

  int data_bits_, check_bits_;
  std::uint32_t hmask_;                ///< the r - 1 Hamming bits
  std::vector<std::uint32_t> table_;   ///< [byte][value] -> syndrome contribution | parity
  std::vector<int> data_pos_;          ///< data bit -> position
  std::vector<std::int16_t> data_at_;  ///< position -> data bit, or -1
};

/// Allocates zeroed memory with calloc and leaves elements default-initialised, so a large
/// zero-filled array costs no time and no resident memory until its pages are touched (the OS
/// hands out zero pages on demand). For the SRAM arrays, which are mostly never written.
template <class T>
struct ZeroPages {
  using value_type = T;
  ZeroPages() = default;
  template <class U>
  ZeroPages(const ZeroPages<U>&) noexcept {}
  T* allocate(std::size_t n) {
    void* p = std::calloc(n, sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <class U>
  void construct(U*) noexcept {}  // calloc already zeroed it
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
  template <class U>
  bool operator==(const ZeroPages<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const ZeroPages<U>&) const noexcept {
    return false;
  }
};
using ZeroedBytes = std::vector<std::uint8_t, ZeroPages<std::uint8_t>>;

class SramSlice {
 public:
  /// `ecc_data_bits` and `ecc_check_bits` are ignored when `ecc_enabled` is false. Throws
  /// std::invalid_argument for a bad geometry (words not a whole number of chunks, see Secded).
  SramSlice(int depth, int vector_bytes, int ecc_data_bits, int ecc_check_bits, bool ecc_enabled,
            bool store_data = true);

  int depth() const { return depth_; }
  int vector_bytes() const { return vector_bytes_; }
  bool ecc_enabled() const { return code_ != nullptr; }
  bool stores_data() const { return store_; }
  /// ECC chunks per word (0 without ECC).
  int chunks() const { return chunks_; }
  /// Bits of one word as flip_bit numbers them: data bits, then chunks() x check bits.
  int word_bits() const { return vector_bytes_ * 8 + chunks_ * check_bits_; }
  /// flip_bit's number of bit i of chunk c, i counting the chunk's data bits first, then its check
  /// bits (0 <= i < data_bits + check_bits).
  int bit_index(int chunk, int i) const {
    return i < data_bits_ ? chunk * data_bits_ + i
                          : vector_bytes_ * 8 + chunk * check_bits_ + (i - data_bits_);
  }
  /// Bytes allocated for the words, their check bits and the pending flags (the code's tables are
  /// shared and not counted). 0 when store_data is false.
  std::size_t footprint_bytes() const {
    return data_.capacity() + check_.capacity() + pending_.capacity() + stale_.capacity();
  }

  // --- the simulator's path; addresses out of range throw std::out_of_range ---

  /// Stores `vector_bytes` bytes at addr and their check bits.
  void write(std::uint32_t addr, const std::uint8_t* vector);
  /// Copies the word at addr into out (vector_bytes bytes), correcting single-bit errors in out and
  /// in the stored copy (scrub). Chunks with an uncorrectable error are returned as stored.
  ReadResult read(std::uint32_t addr, std::uint8_t* out);
  /// Fault injection: inverts one stored bit (numbering in the file comment; 0 <= bit <
  /// word_bits(), else std::out_of_range). Invalidates pointers from dmi_pointer().
  void flip_bit(std::uint32_t addr, int bit);
  /// One byte of a word (a gather lane): as read, but decodes and scrubs only the chunk holding
  /// it. 0 <= byte < vector_bytes, else std::out_of_range.
  ReadResult read_byte(std::uint32_t addr, int byte, std::uint8_t* out);
  /// One byte of a word (a scatter lane): read-modify-write of its chunk; the result reports
  /// what decoding the old chunk found (a single-bit error there is corrected before merging).
  ReadResult write_byte(std::uint32_t addr, int byte, std::uint8_t value);

  // --- host and debug access: no time, no scrubbing; byte offsets run over the whole slice
  // (offset = addr * vector_bytes + byte), ranges must lie within depth * vector_bytes ---

  /// Copies len bytes at offset into out, each word decoded and corrected in out only; reports the
  /// ECC events of the chunks the range overlaps.
  ReadResult peek(std::uint64_t offset, std::uint8_t* out, std::size_t len) const;
  /// Stores len bytes at offset. A word with a pending error is first corrected in place (read-
  /// modify-write), then the check bits of every chunk the range overlaps are recomputed.
  void poke(std::uint64_t offset, const std::uint8_t* data, std::size_t len);
  /// The words as one array of depth * vector_bytes bytes, for DMI; null without data or while
  /// any word holds an injected error (then use peek). Reads through it are exact. With ECC,
  /// writes through it must be followed by refresh_check_bits over the range written.
  std::uint8_t* dmi_pointer() { return store_ && pending_count_ == 0 ? data_.data() : nullptr; }
  /// Recomputes the check bits of every chunk overlapping [offset, offset + len).
  void refresh_check_bits(std::uint64_t offset, std::size_t len);

  /// Stored check bits of one chunk (0 without ECC or data).
  std::uint32_t check_word(std::uint32_t addr, int chunk) const;
  /// Words that currently hold an injected error not yet corrected.
  int pending_errors() const { return pending_count_; }

 private:
  void check_addr(std::uint32_t addr) const;
  void store_word(std::uint8_t* to, const std::uint8_t* from) const;
  // Programs mostly stream through consecutive addresses (Repeat steps the address): fetching a
  // word ahead keeps a slice streaming a tensor from waiting on DRAM for every word.
  void prefetch(std::uint32_t addr) const {
    if (addr >= static_cast<std::uint32_t>(depth_)) return;
    const std::uint8_t* p = word(addr);
    for (int b = 0; b < vector_bytes_; b += 64)
      __builtin_prefetch(p + b);
  }
  void check_range(std::uint64_t offset, std::size_t len) const;
  std::uint8_t* word(std::uint32_t addr) {
    return data_.data() + static_cast<std::size_t>(addr) * static_cast<std::size_t>(vector_bytes_);
  }
  const std::uint8_t* word(std::uint32_t addr) const {
    return data_.data() + static_cast<std::size_t>(addr) * static_cast<std::size_t>(vector_bytes_);
  }
  std::size_t check_slot(std::uint32_t addr, int chunk) const {
    return (static_cast<std::size_t>(addr) * static_cast<std::size_t>(chunks_) +
            static_cast<std::size_t>(chunk)) *
           static_cast<std::size_t>(check_bytes_);
  }
  std::uint32_t load_check(std::size_t slot) const {
    std::uint32_t v = 0;
    for (int b = 0; b < check_bytes_; ++b)
      v |= static_cast<std::uint32_t>(check_[slot + static_cast<std::size_t>(b)]) << (8 * b);
    return v;
  }
  void store_check(std::size_t slot, std::uint32_t v) {
    for (int b = 0; b < check_bytes_; ++b)
      check_[slot + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(v >> (8 * b));
  }
  void encode_chunks(std::uint32_t addr, int first, int last);  ///< chunks [first, last)
  /// Decodes every chunk of the stored word, correcting in place; returns the events.
  ReadResult scrub(std::uint32_t addr);
  /// Whether the stored word decodes clean, without changing it.
  bool word_clean(std::uint32_t addr) const;
  void set_pending(std::uint32_t addr, bool on);

  int depth_, vector_bytes_;
  bool store_;
  std::shared_ptr<const Secded> code_;  ///< null without ECC
  int data_bits_ = 0, check_bits_ = 0, chunk_bytes_ = 0, chunks_ = 0, check_bytes_ = 0;
  ZeroedBytes data_;                   ///< depth x vector_bytes
  mutable ZeroedBytes check_;          ///< depth x chunks x check_bytes, little-endian
  std::vector<std::uint8_t> pending_;  ///< per address, allocated at the first flip_bit
  // Check bits are computed lazily: a word written since its check bits were last computed is
  // "stale", and its data is exactly what was written, so it decodes clean by construction. The
  // check bits are computed when something needs them (fault injection, a partial write of a word
  // with an error, check_word), which keeps the common write a plain copy.
  mutable ZeroedBytes stale_;  ///< per address
  void materialize(std::uint32_t addr) const;
  int pending_count_ = 0;
};

}  // namespace lpu::func
