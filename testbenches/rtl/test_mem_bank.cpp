// The MEM bank RTL (rtl/mem/mem_bank.sv, Verilated) against the model's SECDED code
// (func::Secded, 128 data bits with 9 check bits as both shipped presets): the check bits stored
// for a write, and every read after 0, 1, 2 or 3 stored bits were inverted (data or check bits):
// the data returned, the check bits left stored, and the corrected / uncorrectable flags. A
// corrected word reads clean the next time (written back, as the model's read does).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <set>

#include "Vmem_bank.h"
#include "func/sram.h"
#include "harness.h"
#include "verilated.h"

using namespace lpu;
using namespace lpu::rtl_test;

namespace {

constexpr int kDataBits = 128, kCheckBits = 9, kRows = 512;
using Chunk = std::array<std::uint8_t, kDataBits / 8>;

struct Bank {
  VerilatedContext ctx;
  Vmem_bank top{&ctx};
  Bank() { reset(top); }
  void tick() {
    rtl_test::tick(top);
    top.we = top.re = top.flip = 0;
  }
  void write(std::uint32_t addr, const Chunk& c) {
    top.we = 1;
    top.waddr = addr;
    put_bytes(top.wdata, c.data(), kDataBits / 8);
    tick();
  }
  void flip(std::uint32_t addr, int bit) {
    top.flip = 1;
    top.faddr = addr;
    top.fbit = static_cast<std::uint16_t>(bit);
    tick();
  }
  // Returns the data; *check, *corrected, *uncorrectable from the same read.
  Chunk read(std::uint32_t addr, std::uint32_t* check, bool* corrected, bool* uncorrectable) {
    top.re = 1;
    top.raddr = addr;
    tick();
    EXPECT_TRUE(top.rvalid);
    Chunk c{};
    for (int b = 0; b < kDataBits / 8; ++b)
      c[static_cast<std::size_t>(b)] = byte_of(top.rdata, b);
    *check = top.rcheck;
    *corrected = top.corrected;
    *uncorrectable = top.uncorrectable;
    return c;
  }
};

Chunk random_chunk(std::mt19937& rng) {
  Chunk c;
  for (auto& b : c)
    b = static_cast<std::uint8_t>(rng());
  return c;
}

}  // namespace

// Every data pattern's check bits: all-zero, all-one, each single data bit, random words.
TEST(MemBankRtl, CheckBitsMatchTheModel) {
  Bank bank;
  const func::Secded code(kDataBits, kCheckBits);
  std::mt19937 rng(3);
  std::vector<Chunk> words;
  words.push_back(Chunk{});
  Chunk ones;
  ones.fill(0xFF);
  words.push_back(ones);
  for (int k = 0; k < kDataBits; ++k) {
    Chunk c{};
    c[static_cast<std::size_t>(k / 8)] = static_cast<std::uint8_t>(1u << (k % 8));
    words.push_back(c);
  }
  while (words.size() < 2000)
    words.push_back(random_chunk(rng));
  for (std::size_t i = 0; i < words.size(); ++i) {
    const auto addr = static_cast<std::uint32_t>(i % kRows);
    bank.write(addr, words[i]);
    std::uint32_t check = 0;
    bool corr = true, unc = true;
    const Chunk got = bank.read(addr, &check, &corr, &unc);
    ASSERT_EQ(check, code.encode(words[i].data())) << "word " << i;
    ASSERT_EQ(got, words[i]) << "word " << i;
    ASSERT_FALSE(corr);
    ASSERT_FALSE(unc);
  }
}

// 0 to 3 distinct stored bits inverted (of the 137), 20,000 words: the RTL and the model decode
// to the same data, check bits and status.
TEST(MemBankRtl, FlippedBitsDecodeAsTheModel) {
  Bank bank;
  const func::Secded code(kDataBits, kCheckBits);
  std::mt19937 rng(11);
  int seen[4][3] = {};  // flips x status
  for (int rep = 0; rep < 20000; ++rep) {
    const auto addr = static_cast<std::uint32_t>(rng() % kRows);
    Chunk model = random_chunk(rng);
    bank.write(addr, model);
    std::uint32_t model_check = code.encode(model.data());
    const int flips = rep % 4;
    std::set<int> bits;
    while (static_cast<int>(bits.size()) < flips)
      bits.insert(static_cast<int>(rng() % (kDataBits + kCheckBits)));
    for (int b : bits) {
      bank.flip(addr, b);
      if (b < kDataBits)
        model[static_cast<std::size_t>(b / 8)] ^= static_cast<std::uint8_t>(1u << (b % 8));
      else
        model_check ^= 1u << (b - kDataBits);
    }
    const Chunk stored = model;
    const auto st = code.decode(model.data(), model_check);
    std::uint32_t check = 0;
    bool corr = false, unc = false;
    const Chunk got = bank.read(addr, &check, &corr, &unc);
    const bool want_corr = st == func::Secded::Status::kCorrected;
    const bool want_unc = st == func::Secded::Status::kUncorrectable;
    ASSERT_EQ(corr, want_corr) << "rep " << rep << ", " << flips << " flip(s)";
    ASSERT_EQ(unc, want_unc) << "rep " << rep << ", " << flips << " flip(s)";
    ASSERT_EQ(got, want_unc ? stored : model) << "rep " << rep;
    ASSERT_EQ(check, model_check) << "rep " << rep;
    ++seen[flips][want_corr ? 1 : want_unc ? 2 : 0];
    if (want_corr) {  // written back: clean now
      const Chunk again = bank.read(addr, &check, &corr, &unc);
      ASSERT_FALSE(corr || unc) << "rep " << rep;
      ASSERT_EQ(again, model);
    }
  }
  // Every single flip corrected, every double detected; triples mostly "corrected" (wrongly).
  EXPECT_EQ(seen[0][0], 5000);
  EXPECT_EQ(seen[1][1], 5000);
  EXPECT_EQ(seen[2][2], 5000);
  EXPECT_EQ(seen[3][0] + seen[3][1] + seen[3][2], 5000);
}
