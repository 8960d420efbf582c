// The MEM slice's array and its SECDED code: the table-driven encoder against a bit-by-bit
// Hamming reference, every single-bit error corrected (data and check bits, several chunks), every
// double error in a chunk detected, the scrub, host access, DMI, fault-free fast path, ECC off and
// timing mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "func/sram.h"

using namespace lpu::func;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes random_bytes(std::mt19937& rng, std::size_t n) {
  Bytes v(n);
  for (auto& b : v)
    b = static_cast<std::uint8_t>(rng());
  return v;
}

// Straightforward extended Hamming: positions 1, 2, 3, ...; powers of two hold check bits, the
// others the data bits in order; check bit j is the parity of the data bits whose position has
// bit j set; the last bit is the parity of everything else.
std::uint32_t reference_check(const std::uint8_t* chunk, int data_bits, int check_bits) {
  const int hamming = check_bits - 1;
  std::vector<int> bit_of_hamming(static_cast<std::size_t>(hamming), 0);
  int data_ones = 0;
  int position = 0;
  for (int k = 0; k < data_bits; ++k) {
    do {
      ++position;
    } while (__builtin_popcount(static_cast<unsigned>(position)) == 1);
    const int bit = chunk[k / 8] >> (k % 8) & 1;
    data_ones += bit;
    for (int j = 0; j < hamming; ++j)
      if (position >> j & 1) bit_of_hamming[static_cast<std::size_t>(j)] ^= bit;
  }
  std::uint32_t check = 0;
  int ones = data_ones;
  for (int j = 0; j < hamming; ++j) {
    check |= static_cast<std::uint32_t>(bit_of_hamming[static_cast<std::size_t>(j)]) << j;
    ones += bit_of_hamming[static_cast<std::size_t>(j)];
  }
  return check | static_cast<std::uint32_t>(ones & 1) << hamming;
}

struct Geometry {
  int vector_bytes, data_bits, check_bits;
};
const Geometry kTsp{320, 128, 9};  // tsp-v1: 20 chunks of (137,128)
const Geometry kTiny{32, 128, 9};  // tiny: 2 chunks

SramSlice make(const Geometry& g, int depth, bool ecc = true, bool store = true) {
  return SramSlice(depth, g.vector_bytes, g.data_bits, g.check_bits, ecc, store);
}

}  // namespace

// --- the code ---------------------------------------------------------------------------------

TEST(Secded, EncoderMatchesBitByBitReference) {
  std::mt19937 rng(1);
  const std::vector<std::pair<int, int>> codes = {{128, 9},  {64, 8},   {8, 5},    {32, 7}, {16, 6},
                                                  {256, 10}, {512, 11}, {128, 10}, {8, 10}};
  for (const auto& [d, r] : codes) {
    const Secded code(d, r);
    EXPECT_EQ(code.data_bytes(), d / 8);
    for (int t = 0; t < 300; ++t) {
      const Bytes chunk = random_bytes(rng, static_cast<std::size_t>(d / 8));
      ASSERT_EQ(code.encode(chunk.data()), reference_check(chunk.data(), d, r))
          << "(" << d + r << "," << d << ") trial " << t;
    }
    // Single-one data words: each data bit's check bits are its position plus overall parity.
    for (int k = 0; k < d; ++k) {
      Bytes chunk(static_cast<std::size_t>(d / 8), 0);
      chunk[static_cast<std::size_t>(k / 8)] = static_cast<std::uint8_t>(1u << (k % 8));
      ASSERT_EQ(code.encode(chunk.data()), reference_check(chunk.data(), d, r));
    }
  }
}

TEST(Secded, DataPositionsSkipPowersOfTwo) {
  const Secded code(128, 9);
  EXPECT_EQ(code.position_of_data_bit(0), 3);
  EXPECT_EQ(code.position_of_data_bit(1), 5);
  EXPECT_EQ(code.position_of_data_bit(2), 6);
  EXPECT_EQ(code.position_of_data_bit(3), 7);
  EXPECT_EQ(code.position_of_data_bit(4), 9);
  EXPECT_EQ(code.position_of_data_bit(127), 136);  // 128 data + 8 Hamming bits fill 1..136
}

TEST(Secded, RejectsImpossibleCodes) {
  EXPECT_THROW(Secded(128, 8), std::invalid_argument);  // 2^7 < 136
  EXPECT_THROW(Secded(12, 6), std::invalid_argument);   // not whole bytes
  EXPECT_THROW(Secded(0, 9), std::invalid_argument);
  EXPECT_THROW(Secded(8, 4), std::invalid_argument);  // 2^3 < 12
  EXPECT_THROW(Secded(128, 33), std::invalid_argument);
  EXPECT_THROW(Secded(1024, 12), std::invalid_argument);
  EXPECT_NO_THROW(Secded(8, 5));
}

TEST(Secded, SharedInstancePerCode) {
  EXPECT_EQ(Secded::shared(128, 9), Secded::shared(128, 9));
  EXPECT_NE(Secded::shared(128, 9), Secded::shared(128, 10));
}

// --- round trips and the stored check bits ----------------------------------------------------

TEST(Sram, RandomRoundTripsAndStoredCheckBits) {
  for (const Geometry& g : {kTsp, kTiny}) {
    std::mt19937 rng(2);
    const int depth = g.vector_bytes == 320 ? 8192 : 256;
    SramSlice s = make(g, depth);
    EXPECT_EQ(s.chunks(), g.vector_bytes * 8 / 128);
    std::vector<Bytes> mirror(static_cast<std::size_t>(depth),
                              Bytes(static_cast<std::size_t>(g.vector_bytes), 0));
    Bytes out(static_cast<std::size_t>(g.vector_bytes));
    for (int t = 0; t < 4000; ++t) {
      const auto a = static_cast<std::uint32_t>(rng() % static_cast<unsigned>(depth));
      if (rng() % 2) {
        mirror[a] = random_bytes(rng, out.size());
        s.write(a, mirror[a].data());
      } else {
        const ReadResult r = s.read(a, out.data());
        ASSERT_TRUE(r.clean());
        ASSERT_EQ(out, mirror[a]);
      }
    }
    // Check bits as the reference computes them, for some words.
    for (std::uint32_t a = 0; a < static_cast<std::uint32_t>(depth); a += 97)
      for (int c = 0; c < s.chunks(); ++c)
        ASSERT_EQ(s.check_word(a, c), reference_check(mirror[a].data() + c * 16, 128, 9));
  }
}

TEST(Sram, FreshSliceReadsCleanZeros) {
  SramSlice s = make(kTiny, 256);
  Bytes out(32, 0xff);
  const ReadResult r = s.read(255, out.data());
  EXPECT_TRUE(r.clean());
  EXPECT_EQ(out, Bytes(32, 0));
  EXPECT_EQ(s.check_word(255, 1), 0u);
}

TEST(Sram, RejectsBadGeometry) {
  EXPECT_THROW(SramSlice(256, 20, 128, 9, true), std::invalid_argument);  // 160 bits, 128 chunks
  EXPECT_THROW(SramSlice(256, 32, 128, 8, true), std::invalid_argument);
  EXPECT_THROW(SramSlice(0, 32, 128, 9, true), std::invalid_argument);
  EXPECT_NO_THROW(SramSlice(256, 20, 128, 9, false));  // ECC off: chunking irrelevant
  EXPECT_NO_THROW(SramSlice(16, 24, 64, 8, true));
}

TEST(Sram, OutOfRangeAccessThrows) {
  SramSlice s = make(kTiny, 256);
  Bytes v(32);
  EXPECT_THROW(s.write(256, v.data()), std::out_of_range);
  EXPECT_THROW(s.read(256, v.data()), std::out_of_range);
  EXPECT_THROW(s.flip_bit(0, s.word_bits()), std::out_of_range);
  EXPECT_THROW(s.flip_bit(0, -1), std::out_of_range);
  EXPECT_THROW(s.peek(256 * 32 - 4, v.data(), 5), std::out_of_range);
  EXPECT_THROW(s.poke(256 * 32, v.data(), 1), std::out_of_range);
  EXPECT_THROW(s.read_byte(0, 32, v.data()), std::out_of_range);
  EXPECT_NO_THROW(s.peek(256 * 32 - 4, v.data(), 4));
}

// --- fault injection --------------------------------------------------------------------------

TEST(Sram, BitNumbering) {
  SramSlice s = make(kTsp, 4);
  EXPECT_EQ(s.word_bits(), 320 * 8 + 20 * 9);
  EXPECT_EQ(s.bit_index(0, 0), 0);
  EXPECT_EQ(s.bit_index(3, 5), 3 * 128 + 5);
  EXPECT_EQ(s.bit_index(3, 128), 2560 + 27);           // chunk 3, check bit 0
  EXPECT_EQ(s.bit_index(19, 136), 2560 + 19 * 9 + 8);  // last chunk, overall parity
  // A data bit flip is visible in the raw bytes; a check bit flip in the stored check bits.
  Bytes zero(320, 0), raw(320);
  s.write(1, zero.data());
  s.flip_bit(1, s.bit_index(2, 10));  // chunk 2 data bit 10 = byte 33 bit 2
  s.flip_bit(1, s.bit_index(5, 128 + 8));
  const std::uint8_t* p = s.dmi_pointer();
  EXPECT_EQ(p, nullptr);  // an error is pending
  s.write(2, zero.data());
  s.flip_bit(2, 33 * 8 + 2);
  EXPECT_EQ(s.peek(2 * 320, raw.data(), 320).corrected, 1);  // peek corrects its copy
  EXPECT_EQ(s.check_word(1, 5), 1u << 8);
  EXPECT_EQ(s.check_word(1, 2), 0u);
}

TEST(Sram, EverySingleBitErrorIsCorrected) {
  std::mt19937 rng(3);
  SramSlice s = make(kTsp, 8);
  Bytes out(320);
  for (int c : {0, 1, 7, 19}) {
    for (int i = 0; i < 137; ++i) {
      const auto a = static_cast<std::uint32_t>(i % 8);
      const Bytes v = random_bytes(rng, 320);
      s.write(a, v.data());
      s.flip_bit(a, s.bit_index(c, i));
      ASSERT_EQ(s.pending_errors(), 1);
      // peek reports and corrects its copy but leaves the stored word alone.
      Bytes peeked(320);
      const ReadResult p = s.peek(a * 320u, peeked.data(), 320);
      ASSERT_EQ(p.corrected, 1);
      ASSERT_EQ(peeked, v);
      ASSERT_EQ(s.pending_errors(), 1);
      // read corrects, counts and scrubs.
      const ReadResult r = s.read(a, out.data());
      ASSERT_EQ(r.corrected, 1) << "chunk " << c << " bit " << i;
      ASSERT_EQ(r.uncorrectable, 0);
      ASSERT_EQ(out, v) << "chunk " << c << " bit " << i;
      ASSERT_EQ(s.pending_errors(), 0);
      ASSERT_EQ(s.check_word(a, c), reference_check(v.data() + c * 16, 128, 9));
      ASSERT_TRUE(s.read(a, out.data()).clean());
      ASSERT_TRUE(s.peek(a * 320u, peeked.data(), 320).clean());
      ASSERT_EQ(out, v);
    }
  }
}

TEST(Sram, EveryDoubleBitErrorInAChunkIsDetected) {
  std::mt19937 rng(4);
  SramSlice s = make(kTsp, 2);
  const Bytes v = random_bytes(rng, 320);
  Bytes out(320), expected(320);
  int pairs = 0;
  for (int c : {0, 19}) {
    for (int i = 0; i < 137; ++i)
      for (int j = i + 1; j < 137; ++j) {
        s.write(0, v.data());
        s.flip_bit(0, s.bit_index(c, i));
        s.flip_bit(0, s.bit_index(c, j));
        // What is stored: the data with the flipped data bits.
        expected = v;
        for (int b : {i, j})
          if (b < 128)
            expected[static_cast<std::size_t>(c * 16 + b / 8)] ^=
                static_cast<std::uint8_t>(1u << (b % 8));
        const ReadResult r = s.read(0, out.data());
        ASSERT_EQ(r.uncorrectable, 1) << "chunk " << c << " bits " << i << ", " << j;
        ASSERT_EQ(r.corrected, 0);
        ASSERT_EQ(out, expected) << "returned as stored, not miscorrected";
        ASSERT_EQ(s.pending_errors(), 1);  // an uncorrectable word stays pending
        ASSERT_EQ(s.read(0, out.data()).uncorrectable, 1);
        if (c == 0) ++pairs;
      }
  }
  EXPECT_EQ(pairs, 137 * 136 / 2);
  s.write(0, v.data());  // overwriting clears it
  EXPECT_EQ(s.pending_errors(), 0);
  EXPECT_TRUE(s.read(0, out.data()).clean());
}

TEST(Sram, ErrorsInTwoChunksAreTwoCorrections) {
  std::mt19937 rng(5);
  SramSlice s = make(kTsp, 4);
  const Bytes v = random_bytes(rng, 320);
  Bytes out(320);
  s.write(3, v.data());
  s.flip_bit(3, s.bit_index(4, 77));
  s.flip_bit(3, s.bit_index(11, 130));  // a check bit of another chunk
  const ReadResult r = s.read(3, out.data());
  EXPECT_EQ(r.corrected, 2);
  EXPECT_EQ(r.uncorrectable, 0);
  EXPECT_EQ(out, v);
  // A single error in one chunk and a double error in another.
  s.flip_bit(3, s.bit_index(0, 5));
  s.flip_bit(3, s.bit_index(1, 6));
  s.flip_bit(3, s.bit_index(1, 136));
  const ReadResult r2 = s.read(3, out.data());
  EXPECT_EQ(r2.corrected, 1);
  EXPECT_EQ(r2.uncorrectable, 1);
  EXPECT_EQ(out[0], v[0]);                        // chunk 0 corrected
  EXPECT_NE(out[16], v[16]);                      // chunk 1 as stored (data bit 6 flipped)
  EXPECT_EQ(s.read(3, out.data()).corrected, 0);  // chunk 0 was scrubbed
}

TEST(Sram, FlippingABitBackClearsThePendingError) {
  SramSlice s = make(kTiny, 4);
  Bytes v(32, 0x5a), out(32);
  s.write(0, v.data());
  s.flip_bit(0, 100);
  EXPECT_EQ(s.pending_errors(), 1);
  EXPECT_EQ(s.dmi_pointer(), nullptr);
  s.flip_bit(0, 100);
  EXPECT_EQ(s.pending_errors(), 0);
  EXPECT_NE(s.dmi_pointer(), nullptr);
  EXPECT_TRUE(s.read(0, out.data()).clean());
}

// The read path decodes only words flagged by flip_bit; peek decodes everything. Random faults
// over many words must give the same reports both ways.
TEST(Sram, FastPathAgreesWithFullDecode) {
  std::mt19937 rng(6);
  SramSlice s = make(kTiny, 256);
  std::vector<Bytes> mirror;
  for (std::uint32_t a = 0; a < 256; ++a) {
    mirror.push_back(random_bytes(rng, 32));
    s.write(a, mirror.back().data());
  }
  // Flipped bits per (word, chunk), to know what each read must report.
  std::vector<std::vector<std::vector<int>>> flips(256, std::vector<std::vector<int>>(2));
  for (int t = 0; t < 300; ++t) {
    const auto a = static_cast<std::uint32_t>(rng() % 256);
    const int bit = static_cast<int>(rng() % static_cast<unsigned>(s.word_bits()));
    s.flip_bit(a, bit);
    const int c = bit < 256 ? bit / 128 : (bit - 256) / 9;
    auto& f = flips[a][static_cast<std::size_t>(c)];
    const auto it = std::find(f.begin(), f.end(), bit);
    if (it == f.end())
      f.push_back(bit);
    else
      f.erase(it);
  }
  Bytes peeked(32), out(32);
  int corrected = 0, uncorrectable = 0;
  for (std::uint32_t a = 0; a < 256; ++a) {
    const ReadResult p = s.peek(a * 32u, peeked.data(), 32);
    const ReadResult r = s.read(a, out.data());
    ASSERT_EQ(p.corrected, r.corrected) << a;
    ASSERT_EQ(p.uncorrectable, r.uncorrectable) << a;
    ASSERT_EQ(peeked, out) << a;
    corrected += r.corrected;
    uncorrectable += r.uncorrectable;
    bool at_most_two = true;
    int ones = 0, twos = 0;
    for (const auto& f : flips[a]) {
      at_most_two = at_most_two && f.size() <= 2;
      ones += f.size() == 1;
      twos += f.size() == 2;
    }
    if (at_most_two) {
      EXPECT_EQ(r.corrected, ones) << a;
      EXPECT_EQ(r.uncorrectable, twos) << a;
      for (int c = 0; c < 2; ++c) {
        if (flips[a][static_cast<std::size_t>(c)].size() > 1) continue;
        EXPECT_TRUE(
            std::equal(out.begin() + c * 16, out.begin() + c * 16 + 16, mirror[a].begin() + c * 16))
            << a;
      }
    }
  }
  EXPECT_GT(corrected, 0);
  EXPECT_GT(uncorrectable, 0);
}

// --- host access --------------------------------------------------------------------------------

TEST(Sram, PeekAndPokeAcrossWords) {
  std::mt19937 rng(7);
  SramSlice s = make(kTiny, 16);
  std::vector<Bytes> mirror(16, Bytes(32, 0));
  for (int t = 0; t < 200; ++t) {
    const std::size_t off = rng() % (16 * 32);
    const std::size_t len = rng() % (16 * 32 - off + 1);
    const Bytes v = random_bytes(rng, len);
    s.poke(off, v.data(), len);
    for (std::size_t i = 0; i < len; ++i)
      mirror[(off + i) / 32][(off + i) % 32] = v[i];
    Bytes back(len);
    ASSERT_TRUE(s.peek(off, back.data(), len).clean());
    ASSERT_EQ(back, v);
  }
  Bytes out(32);
  for (std::uint32_t a = 0; a < 16; ++a) {
    ASSERT_TRUE(s.read(a, out.data()).clean());
    ASSERT_EQ(out, mirror[a]);
    for (int c = 0; c < 2; ++c)
      ASSERT_EQ(s.check_word(a, c), reference_check(mirror[a].data() + c * 16, 128, 9));
  }
}

TEST(Sram, PeekCountsOnlyTheChunksInRange) {
  SramSlice s = make(kTsp, 2);
  Bytes v(320, 0x33), out(320);
  s.write(1, v.data());
  s.flip_bit(1, s.bit_index(2, 3));
  s.flip_bit(1, s.bit_index(3, 3));
  s.flip_bit(1, s.bit_index(3, 4));
  EXPECT_TRUE(s.peek(320 + 0, out.data(), 32).clean());  // chunks 0, 1
  ReadResult r = s.peek(320 + 40, out.data(), 4);        // inside chunk 2
  EXPECT_EQ(r.corrected, 1);
  EXPECT_EQ(out[0], 0x33);
  r = s.peek(320 + 47, out.data(), 2);  // last byte of chunk 2, first of chunk 3
  EXPECT_EQ(r.corrected, 1);
  EXPECT_EQ(r.uncorrectable, 1);
  EXPECT_EQ(s.pending_errors(), 1);  // peek changed nothing
}

TEST(Sram, PokeIntoAWordWithAnErrorCorrectsItFirst) {
  SramSlice s = make(kTiny, 2);
  Bytes v(32, 0xc3), out(32);
  s.write(0, v.data());
  s.flip_bit(0, 3);  // byte 0 bit 3, chunk 0
  const std::uint8_t b = 0x99;
  s.poke(5, &b, 1);  // same chunk: read-modify-write must not bake the error in
  v[5] = b;
  EXPECT_EQ(s.pending_errors(), 0);
  EXPECT_TRUE(s.read(0, out.data()).clean());
  EXPECT_EQ(out, v);
}

TEST(Sram, DmiPointerAndRefresh) {
  SramSlice s = make(kTiny, 8);
  std::uint8_t* p = s.dmi_pointer();
  ASSERT_NE(p, nullptr);
  Bytes v(32), out(32);
  for (int i = 0; i < 32; ++i)
    v[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i * 7 + 1);
  s.write(3, v.data());
  EXPECT_EQ(Bytes(p + 3 * 32, p + 4 * 32), v);  // reads through DMI are exact
  // Writes through DMI, then refresh: the check bits follow.
  for (int i = 0; i < 40; ++i)
    p[4 * 32 + 10 + i] = static_cast<std::uint8_t>(200 - i);
  s.refresh_check_bits(4 * 32 + 10, 40);
  for (std::uint32_t a : {4u, 5u})
    for (int c = 0; c < 2; ++c)
      EXPECT_EQ(s.check_word(a, c), reference_check(p + a * 32 + c * 16, 128, 9));
  EXPECT_TRUE(s.peek(0, out.data(), 32).clean());
  // No pointer while an error is pending; back after the correcting read.
  s.flip_bit(4, 17);
  EXPECT_EQ(s.dmi_pointer(), nullptr);
  EXPECT_EQ(s.read(4, out.data()).corrected, 1);
  EXPECT_EQ(s.dmi_pointer(), p);
}

TEST(Sram, ByteAccessForGatherAndScatter) {
  std::mt19937 rng(8);
  SramSlice s = make(kTsp, 4);
  Bytes v = random_bytes(rng, 320), out(320);
  s.write(2, v.data());
  std::uint8_t b = 0;
  EXPECT_TRUE(s.read_byte(2, 100, &b).clean());
  EXPECT_EQ(b, v[100]);
  // An error in chunk 6 (bytes 96..111): a byte read there corrects and scrubs that chunk only.
  s.flip_bit(2, 100 * 8 + 1);
  s.flip_bit(2, s.bit_index(10, 9));  // and one in chunk 10
  EXPECT_TRUE(s.read_byte(2, 0, &b).clean());
  EXPECT_EQ(s.read_byte(2, 100, &b).corrected, 1);
  EXPECT_EQ(b, v[100]);
  EXPECT_EQ(s.pending_errors(), 1);  // chunk 10 still bad
  EXPECT_EQ(s.read_byte(2, 165, &b).corrected, 1);
  EXPECT_EQ(s.pending_errors(), 0);
  // A byte write is a read-modify-write of its chunk.
  s.flip_bit(2, s.bit_index(3, 2));
  const ReadResult w = s.write_byte(2, 50, 0xee);
  EXPECT_EQ(w.corrected, 1);
  v[50] = 0xee;
  EXPECT_EQ(s.pending_errors(), 0);
  EXPECT_TRUE(s.read(2, out.data()).clean());
  EXPECT_EQ(out, v);
  EXPECT_EQ(s.check_word(2, 3), reference_check(v.data() + 48, 128, 9));
}

// --- ECC off, timing mode
// -------------------------------------------------------------------------

TEST(Sram, WithoutEccFlipsGoUndetected) {
  SramSlice s = make(kTsp, 4, /*ecc=*/false);
  EXPECT_FALSE(s.ecc_enabled());
  EXPECT_EQ(s.chunks(), 0);
  EXPECT_EQ(s.word_bits(), 2560);
  EXPECT_EQ(s.footprint_bytes(), 4u * 320u);
  Bytes v(320, 0x0f), out(320);
  s.write(1, v.data());
  s.flip_bit(1, 8 * 7 + 4);
  const ReadResult r = s.read(1, out.data());
  EXPECT_TRUE(r.clean());
  EXPECT_NE(out, v);
  EXPECT_EQ(out[7], 0x1f);
  EXPECT_NE(s.dmi_pointer(), nullptr);
}

TEST(Sram, TimingModeAllocatesNothingAndReadsZeros) {
  SramSlice s = make(kTsp, 8192, /*ecc=*/true, /*store=*/false);
  EXPECT_EQ(s.footprint_bytes(), 0u);
  EXPECT_FALSE(s.stores_data());
  EXPECT_EQ(s.dmi_pointer(), nullptr);
  Bytes v(320, 0xaa), out(320, 0x55);
  s.write(7, v.data());
  s.flip_bit(7, 3);
  s.poke(0, v.data(), 320);
  const ReadResult r = s.read(7, out.data());
  EXPECT_TRUE(r.clean());
  EXPECT_EQ(out, Bytes(320, 0));
  std::fill(out.begin(), out.end(), 0x55);
  EXPECT_TRUE(s.peek(0, out.data(), 320).clean());
  EXPECT_EQ(out, Bytes(320, 0));
  std::uint8_t b = 1;
  EXPECT_TRUE(s.read_byte(7, 3, &b).clean());
  EXPECT_EQ(b, 0);
  EXPECT_EQ(s.footprint_bytes(), 0u);
}

TEST(Sram, FootprintWithData) {
  // 8192 words of 320 bytes, 20 chunks x 2 bytes of check bits each, a stale-check-bits flag per
  // word; pending flags only after a fault is injected.
  SramSlice s = make(kTsp, 8192);
  EXPECT_EQ(s.footprint_bytes(), 8192u * 320u + 8192u * 20u * 2u + 8192u);
  s.flip_bit(0, 0);
  EXPECT_EQ(s.footprint_bytes(), 8192u * 320u + 8192u * 20u * 2u + 2u * 8192u);
}

// Check bits are computed lazily; whatever the order of writes, partial writes and faults, the
// stored check bits seen from outside are those of the data, and faults behave as with eager
// encoding.
TEST(Sram, LazyCheckBitsAreThoseOfTheData) {
  SramSlice s = make(kTsp, 16);
  std::mt19937 rng(9);
  std::vector<std::uint8_t> v(320);
  for (int round = 0; round < 50; ++round) {
    const auto addr = static_cast<std::uint32_t>(rng() % 16);
    for (auto& b : v)
      b = static_cast<std::uint8_t>(rng());
    s.write(addr, v.data());
    s.write_byte(addr, static_cast<int>(rng() % 320), static_cast<std::uint8_t>(rng()));
    std::vector<std::uint8_t> cur(320);
    s.peek(static_cast<std::uint64_t>(addr) * 320, cur.data(), 320);
    const Secded& code = *Secded::shared(128, 9);
    for (int c = 0; c < 20; ++c)
      ASSERT_EQ(s.check_word(addr, c), code.encode(&cur[static_cast<std::size_t>(c) * 16]));
    // A single flip after lazy writes is still corrected, with the original data back.
    s.flip_bit(addr, static_cast<int>(rng() % 2560));
    std::vector<std::uint8_t> out(320);
    const ReadResult r = s.read(addr, out.data());
    EXPECT_EQ(r.corrected, 1);
    EXPECT_EQ(out, cur);
  }
}
