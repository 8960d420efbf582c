#include "func/sram.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lpu::func {

namespace {

bool is_pow2(std::uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

// --- Secded -----------------------------------------------------------------------------------

Secded::Secded(int data_bits, int check_bits) : data_bits_(data_bits), check_bits_(check_bits) {
  if (data_bits < 8 || data_bits > 512 || data_bits % 8)
    throw std::invalid_argument("SECDED: data bits must be a multiple of 8 in 8..512, not " +
                                std::to_string(data_bits));
  if (check_bits < 2 || check_bits > 32 ||
      (std::uint64_t{1} << (check_bits - 1)) < static_cast<std::uint64_t>(data_bits + check_bits))
    throw std::invalid_argument("SECDED: " + std::to_string(check_bits) +
                                " check bits cannot protect " + std::to_string(data_bits) +
                                " data bits (need 2..32 with 2^(r-1) >= data + r)");
  const int h = check_bits - 1;
  hmask_ = h >= 32 ? ~0u : (std::uint32_t{1} << h) - 1;

  // Data bit k takes the k-th position (from 1) that is not a power of two.
  data_pos_.resize(static_cast<std::size_t>(data_bits));
  std::uint32_t pos = 1;
  for (int k = 0; k < data_bits; ++k) {
    ++pos;
    while (is_pow2(pos))
      ++pos;
    data_pos_[static_cast<std::size_t>(k)] = static_cast<int>(pos);
  }
  data_at_.assign(pos + 1, -1);
  for (int k = 0; k < data_bits; ++k)
    data_at_[static_cast<std::size_t>(data_pos_[static_cast<std::size_t>(k)])] =
        static_cast<std::int16_t>(k);

  // Per byte position and value: XOR of the positions of its set bits, and its parity on top.
  const int bytes = data_bits / 8;
  table_.assign(static_cast<std::size_t>(bytes) * 256, 0);
  for (int b = 0; b < bytes; ++b)
    for (int v = 0; v < 256; ++v) {
      std::uint32_t t = 0;
      for (int i = 0; i < 8; ++i)
        if (v >> i & 1)
          t ^= static_cast<std::uint32_t>(data_pos_[static_cast<std::size_t>(b * 8 + i)]) |
               (std::uint32_t{1} << h);
      table_[static_cast<std::size_t>(b) * 256 + static_cast<std::size_t>(v)] = t;
    }
}

std::shared_ptr<const Secded> Secded::shared(int data_bits, int check_bits) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, std::weak_ptr<const Secded>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{data_bits, check_bits}];
  if (auto p = slot.lock()) return p;
  auto p = std::make_shared<const Secded>(data_bits, check_bits);
  slot = p;
  return p;
}

Secded::Status Secded::classify(const std::uint8_t* chunk, std::uint32_t check,
                                std::uint32_t* syndrome) const {
  const std::uint32_t t = syndrome_and_parity(chunk);
  // t's top bit is the data parity; XOR with every stored check bit gives the parity of all.
  const std::uint32_t all_parity = ((t >> (check_bits_ - 1)) ^ parity(check)) & 1u;
  const std::uint32_t s = (t ^ check) & hmask_;
  *syndrome = s;
  if (all_parity == 0) return s == 0 ? Status::kClean : Status::kUncorrectable;
  if (s == 0 || is_pow2(s)) return Status::kCorrected;
  return s < data_at_.size() && data_at_[s] >= 0 ? Status::kCorrected : Status::kUncorrectable;
}

Secded::Status Secded::check(const std::uint8_t* chunk, std::uint32_t check) const {
  std::uint32_t s;
  return classify(chunk, check, &s);
}

Secded::Status Secded::decode(std::uint8_t* chunk, std::uint32_t& check) const {
  std::uint32_t s;
  const Status st = classify(chunk, check, &s);
  if (st != Status::kCorrected) return st;
  if (s == 0) {
    check ^= std::uint32_t{1} << (check_bits_ - 1);  // the overall parity bit
  } else if (is_pow2(s)) {
    check ^= s;  // Hamming check bit log2(s): bit j of check is position 2^j
  } else {
    const int k = data_at_[s];
    chunk[k / 8] ^= static_cast<std::uint8_t>(1u << (k % 8));
  }
  return st;
}

// --- SramSlice --------------------------------------------------------------------------------

SramSlice::SramSlice(int depth, int vector_bytes, int ecc_data_bits, int ecc_check_bits,
                     bool ecc_enabled, bool store_data)
    : depth_(depth), vector_bytes_(vector_bytes), store_(store_data) {
  if (depth <= 0 || vector_bytes <= 0)
    throw std::invalid_argument("SRAM: depth and vector bytes must be positive");
  if (ecc_enabled) {
    code_ = Secded::shared(ecc_data_bits, ecc_check_bits);  // validates the code
    if ((vector_bytes * 8) % ecc_data_bits != 0)
      throw std::invalid_argument("SRAM: a word of " + std::to_string(vector_bytes) +
                                  " bytes is not a whole number of " +
                                  std::to_string(ecc_data_bits) + "-bit ECC chunks");
    data_bits_ = ecc_data_bits;
    check_bits_ = ecc_check_bits;
    chunk_bytes_ = ecc_data_bits / 8;
    chunks_ = vector_bytes / chunk_bytes_;
    check_bytes_ = (ecc_check_bits + 7) / 8;
  }
  if (!store_) return;
  // resize, not assign: the elements stay as calloc left them (zero), untouched until used.
  data_.resize(static_cast<std::size_t>(depth) * static_cast<std::size_t>(vector_bytes));
  if (code_) {
    // All-zero words: the check bits of a zero chunk are zero (even parity, zero syndrome).
    check_.resize(static_cast<std::size_t>(depth) * static_cast<std::size_t>(chunks_) *
                  static_cast<std::size_t>(check_bytes_));
    stale_.resize(static_cast<std::size_t>(depth));
  }
}

void SramSlice::check_addr(std::uint32_t addr) const {
  if (addr >= static_cast<std::uint32_t>(depth_))
    throw std::out_of_range("SRAM: address " + std::to_string(addr) + " beyond depth " +
                            std::to_string(depth_));
}

void SramSlice::check_range(std::uint64_t offset, std::size_t len) const {
  const std::uint64_t size =
      static_cast<std::uint64_t>(depth_) * static_cast<std::uint64_t>(vector_bytes_);
  if (offset > size || len > size - offset)
    throw std::out_of_range("SRAM: bytes " + std::to_string(offset) + " + " + std::to_string(len) +
                            " beyond " + std::to_string(size));
}

void SramSlice::materialize(std::uint32_t addr) const {
  if (!stale_[addr]) return;
  const std::uint8_t* w = word(addr);
  for (int c = 0; c < chunks_; ++c) {
    const std::uint32_t v = code_->encode(w + c * chunk_bytes_);
    const std::size_t slot = check_slot(addr, c);
    for (int b = 0; b < check_bytes_; ++b)
      check_[slot + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(v >> (8 * b));
  }
  stale_[addr] = 0;
}

void SramSlice::encode_chunks(std::uint32_t addr, int first, int last) {
  const std::uint8_t* w = word(addr);
  for (int c = first; c < last; ++c)
    store_check(check_slot(addr, c), code_->encode(w + c * chunk_bytes_));
}

void SramSlice::set_pending(std::uint32_t addr, bool on) {
  if (pending_.empty()) {
    if (!on) return;
    pending_.assign(static_cast<std::size_t>(depth_), 0);
  }
  std::uint8_t& f = pending_[addr];
  if (f == static_cast<std::uint8_t>(on)) return;
  f = static_cast<std::uint8_t>(on);
  pending_count_ += on ? 1 : -1;
}

bool SramSlice::word_clean(std::uint32_t addr) const {
  if (stale_[addr]) return true;
  const std::uint8_t* w = word(addr);
  for (int c = 0; c < chunks_; ++c)
    if (code_->check(w + c * chunk_bytes_, load_check(check_slot(addr, c))) !=
        Secded::Status::kClean)
      return false;
  return true;
}

ReadResult SramSlice::scrub(std::uint32_t addr) {
  ReadResult r;
  std::uint8_t* w = word(addr);
  for (int c = 0; c < chunks_; ++c) {
    const std::size_t slot = check_slot(addr, c);
    std::uint32_t chk = load_check(slot);
    switch (code_->decode(w + c * chunk_bytes_, chk)) {
      case Secded::Status::kClean:
        break;
      case Secded::Status::kCorrected:
        store_check(slot, chk);
        ++r.corrected;
        break;
      case Secded::Status::kUncorrectable:
        ++r.uncorrectable;
        break;
    }
  }
  set_pending(addr, r.uncorrectable != 0);
  return r;
}

void SramSlice::write(std::uint32_t addr, const std::uint8_t* vector) {
  check_addr(addr);
  if (!store_) return;
  store_word(word(addr), vector);
  if (!code_) return;
  stale_[addr] = 1;
  if (pending_count_) set_pending(addr, false);
}

void SramSlice::store_word(std::uint8_t* to, const std::uint8_t* from) const {
#if defined(__SSE2__)
  // Streaming stores: a slice written by a program is mostly not read again soon, and skipping
  // the cache saves reading each line before it is overwritten.
  if ((reinterpret_cast<std::uintptr_t>(to) & 15) == 0 && vector_bytes_ % 16 == 0) {
    for (int b = 0; b < vector_bytes_; b += 16)
      _mm_stream_si128(reinterpret_cast<__m128i*>(to + b),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + b)));
    return;
  }
#endif
  std::memcpy(to, from, static_cast<std::size_t>(vector_bytes_));
}

ReadResult SramSlice::read(std::uint32_t addr, std::uint8_t* out) {
  check_addr(addr);
  if (!store_) {
    std::memset(out, 0, static_cast<std::size_t>(vector_bytes_));
    return {};
  }
  ReadResult r;
  if (pending_count_ && pending_[addr]) r = scrub(addr);
  std::memcpy(out, word(addr), static_cast<std::size_t>(vector_bytes_));
  prefetch(addr + 2);
  return r;
}

void SramSlice::flip_bit(std::uint32_t addr, int bit) {
  check_addr(addr);
  if (bit < 0 || bit >= word_bits())
    throw std::out_of_range("SRAM: bit " + std::to_string(bit) + " beyond the " +
                            std::to_string(word_bits()) + " bits of a word");
  if (!store_) return;
  if (code_) materialize(addr);
  const int data_bits = vector_bytes_ * 8;
  if (bit < data_bits) {
    word(addr)[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  } else {
    const int c = (bit - data_bits) / check_bits_, j = (bit - data_bits) % check_bits_;
    const std::size_t slot = check_slot(addr, c);
    store_check(slot, load_check(slot) ^ (std::uint32_t{1} << j));
  }
  if (code_) set_pending(addr, !word_clean(addr));
}

ReadResult SramSlice::read_byte(std::uint32_t addr, int byte, std::uint8_t* out) {
  check_addr(addr);
  if (byte < 0 || byte >= vector_bytes_)
    throw std::out_of_range("SRAM: byte " + std::to_string(byte) + " beyond the word");
  if (!store_) {
    *out = 0;
    return {};
  }
  ReadResult r;
  if (pending_count_ && pending_[addr]) {
    const int c = byte / chunk_bytes_;
    const std::size_t slot = check_slot(addr, c);
    std::uint32_t chk = load_check(slot);
    switch (code_->decode(word(addr) + c * chunk_bytes_, chk)) {
      case Secded::Status::kClean:
        break;
      case Secded::Status::kCorrected:
        store_check(slot, chk);
        ++r.corrected;
        set_pending(addr, !word_clean(addr));
        break;
      case Secded::Status::kUncorrectable:
        ++r.uncorrectable;
        break;
    }
  }
  *out = word(addr)[byte];
  return r;
}

ReadResult SramSlice::write_byte(std::uint32_t addr, int byte, std::uint8_t value) {
  check_addr(addr);
  if (byte < 0 || byte >= vector_bytes_)
    throw std::out_of_range("SRAM: byte " + std::to_string(byte) + " beyond the word");
  if (!store_) return {};
  std::uint8_t* w = word(addr);
  if (!code_) {
    w[byte] = value;
    return {};
  }
  ReadResult r;
  if (stale_[addr]) {  // still exactly as written: stays so
    w[byte] = value;
    return r;
  }
  const int c = byte / chunk_bytes_;
  const std::size_t slot = check_slot(addr, c);
  const bool pending = pending_count_ && pending_[addr];
  if (pending) {
    std::uint32_t chk = load_check(slot);
    const Secded::Status st = code_->decode(w + c * chunk_bytes_, chk);
    r.corrected = st == Secded::Status::kCorrected;
    r.uncorrectable = st == Secded::Status::kUncorrectable;
  }
  w[byte] = value;
  store_check(slot, code_->encode(w + c * chunk_bytes_));
  if (pending) set_pending(addr, !word_clean(addr));
  return r;
}

ReadResult SramSlice::peek(std::uint64_t offset, std::uint8_t* out, std::size_t len) const {
  check_range(offset, len);
  if (!store_) {
    std::memset(out, 0, len);
    return {};
  }
  if (!code_) {
    std::memcpy(out, data_.data() + offset, len);
    return {};
  }
  ReadResult r;
  const std::uint64_t vb = static_cast<std::uint64_t>(vector_bytes_);
  std::vector<std::uint8_t> chunk(static_cast<std::size_t>(chunk_bytes_));
  std::uint64_t pos = offset;
  const std::uint64_t end = offset + len;
  while (pos < end) {
    // One chunk at a time: decode a copy, hand out the part of it in range.
    const auto addr = static_cast<std::uint32_t>(pos / vb);
    const int c = static_cast<int>(pos % vb) / chunk_bytes_;
    const std::uint64_t chunk_start = addr * vb + static_cast<std::uint64_t>(c * chunk_bytes_);
    const std::uint64_t chunk_end = chunk_start + static_cast<std::uint64_t>(chunk_bytes_);
    std::memcpy(chunk.data(), data_.data() + chunk_start, chunk.size());
    materialize(addr);
    std::uint32_t chk = load_check(check_slot(addr, c));
    switch (code_->decode(chunk.data(), chk)) {
      case Secded::Status::kClean:
        break;
      case Secded::Status::kCorrected:
        ++r.corrected;
        break;
      case Secded::Status::kUncorrectable:
        ++r.uncorrectable;
        break;
    }
    const std::uint64_t stop = std::min(end, chunk_end);
    std::memcpy(out + (pos - offset), chunk.data() + (pos - chunk_start),
                static_cast<std::size_t>(stop - pos));
    pos = stop;
  }
  return r;
}

void SramSlice::poke(std::uint64_t offset, const std::uint8_t* data, std::size_t len) {
  check_range(offset, len);
  if (!store_ || len == 0) return;
  if (code_ && pending_count_) {
    // Read-modify-write: correct what can be corrected in the words touched before merging.
    const std::uint64_t vb = static_cast<std::uint64_t>(vector_bytes_);
    for (std::uint64_t a = offset / vb; a <= (offset + len - 1) / vb; ++a)
      if (pending_[a]) scrub(static_cast<std::uint32_t>(a));
  }
  std::memcpy(data_.data() + offset, data, len);
  refresh_check_bits(offset, len);
}

void SramSlice::refresh_check_bits(std::uint64_t offset, std::size_t len) {
  check_range(offset, len);
  if (!store_ || !code_ || len == 0) return;
  const std::uint64_t vb = static_cast<std::uint64_t>(vector_bytes_);
  const std::uint64_t first = offset, last = offset + len - 1;  // inclusive
  for (std::uint64_t a = first / vb; a <= last / vb; ++a) {
    const std::uint64_t lo = std::max(first, a * vb) - a * vb;
    const std::uint64_t hi = std::min(last, a * vb + vb - 1) - a * vb;
    const auto addr = static_cast<std::uint32_t>(a);
    if (!(pending_count_ && pending_[addr])) {
      stale_[addr] = 1;  // no error in the word: its check bits follow the data when needed
      continue;
    }
    encode_chunks(addr, static_cast<int>(lo) / chunk_bytes_,
                  static_cast<int>(hi) / chunk_bytes_ + 1);
    set_pending(addr, !word_clean(addr));
  }
}

std::uint32_t SramSlice::check_word(std::uint32_t addr, int chunk) const {
  check_addr(addr);
  if (!store_ || !code_) return 0;
  if (chunk < 0 || chunk >= chunks_)
    throw std::out_of_range("SRAM: chunk " + std::to_string(chunk) + " beyond the word");
  materialize(addr);
  return load_check(check_slot(addr, chunk));
}

}  // namespace lpu::func
