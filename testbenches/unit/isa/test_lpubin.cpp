// The binary container .lpubin: its documented layout, and every class of rejected file with the
// exact "FILE:byte N" of the problem; truncations and random corruptions must be rejected cleanly.
#include <gtest/gtest.h>

#include <boost/crc.hpp>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"
#include "isa/asm_text.h"
#include "isa/isa.h"
#include "isa/lpubin.h"
#include "isa/program.h"

#include "test_support.h"

namespace {

using namespace lpu::test;

using lpu::InputError;
using namespace lpu::isa;
using Bytes = std::vector<std::uint8_t>;

const std::string kExample =
    std::string(LPU_SOURCE_DIR) + "/testbenches/programs/every_opcode.lpuasm";
const char* const kFile = "f.lpubin";

// --- helpers ----------------------------------------------------------------------------------

const Program& example() {
  static const Program p = load_lpuasm(kExample);
  return p;
}
const Bytes& example_bin() {
  static const Bytes b = to_lpubin(example());
  return b;
}

std::uint64_t get_le(const Bytes& b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v |= std::uint64_t(b.at(at + static_cast<std::size_t>(i))) << (8 * i);
  return v;
}
void put_le(Bytes& b, std::size_t at, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i)
    b.at(at + static_cast<std::size_t>(i)) = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint32_t crc_of_payload(const Bytes& b) {
  boost::crc_32_type c;
  c.process_bytes(b.data() + 32, b.size() - 32);
  return c.checksum();
}
/// Makes the header agree with the payload again: payload size and CRC.
void fix_header(Bytes& b) {
  put_le(b, 16, b.size() - 32, 8);
  put_le(b, 24, crc_of_payload(b), 4);
}

InputError parse_error(const Bytes& b) {
  return input_error([&] { from_lpubin(b, kFile); });
}

std::string at_byte(std::size_t n) {
  return std::string(kFile) + ":byte " + std::to_string(n);
}

/// Byte offsets of a program's file, worked out from the documented layout (lpubin.h), not from
/// the reader.
struct Layout {
  std::size_t arch_body = 0, arch_len = 0;
  std::size_t meta_tag = 0, meta_body = 0;
  std::size_t code_tag = 0, code_body = 0, code_end = 0;
  std::size_t tens_tag = 0, tens_body = 0;
  std::size_t imag_tag = 0, imag_body = 0;
  struct At {
    std::size_t entry, word;
  };
  std::map<std::pair<std::string, std::size_t>, At> entries;  // (queue name, index) -> offsets
};

Layout layout_of(const Program& p) {
  Layout l;
  l.arch_body = 32 + 16;
  l.arch_len = p.arch.canonical.size();
  l.meta_tag = l.arch_body + l.arch_len;
  l.meta_body = l.meta_tag + 16;
  l.code_tag = l.meta_body + 9;
  l.code_body = l.code_tag + 16;
  const auto queues = lpu::arch::chip_queues(p.arch.chip);
  std::size_t at = l.code_body + 4;
  for (const auto& c : p.chips) {
    at += 8;
    for (const auto& q : c.queues) {
      at += 6;
      for (std::size_t i = 0; i < q.entries.size(); ++i) {
        const Entry& e = q.entries[i];
        l.entries[{queues[q.queue].name, i}] = {at, at + 8};
        at += 8 + 16 + 1 + (e.done ? 8 : 0) + 2 + 16 * e.expect.size();
      }
    }
  }
  l.code_end = at;
  l.tens_tag = at;
  l.tens_body = at + 16;
  std::size_t t = l.tens_body + 4;
  for (const auto& ten : p.tensors)
    t += 4 + ten.name.size() + 1 + 4 + 1 + 1 + 8 * ten.shape.size() + 4 + ten.layout.size() + 4 +
         10 * ten.placements.size();
  l.imag_tag = t;
  l.imag_body = t + 16;
  return l;
}

// --- layout -----------------------------------------------------------------------------------

TEST(Layout, HeaderAndSections) {
  const Bytes& b = example_bin();
  const Layout l = layout_of(example());
  ASSERT_GE(b.size(), 32u);
  EXPECT_EQ(std::memcmp(b.data(), "\x7fLPUBIN\n", 8), 0);
  EXPECT_EQ(get_le(b, 8, 2), kLpubinMajor);
  EXPECT_EQ(get_le(b, 10, 2), kLpubinMinor);
  EXPECT_EQ(get_le(b, 12, 4), 5u);
  EXPECT_EQ(get_le(b, 16, 8), b.size() - 32);
  EXPECT_EQ(get_le(b, 24, 4), crc_of_payload(b));
  EXPECT_EQ(get_le(b, 28, 4), 0u);

  auto tag = [&](std::size_t at) {
    return std::string(b.begin() + long(at), b.begin() + long(at) + 4);
  };
  EXPECT_EQ(tag(32), "ARCH");
  EXPECT_EQ(get_le(b, 36, 4), 0u);
  EXPECT_EQ(get_le(b, 40, 8), l.arch_len);
  EXPECT_EQ(std::string(b.begin() + 48, b.begin() + 48 + long(l.arch_len)),
            example().arch.canonical);
  EXPECT_EQ(tag(l.meta_tag), "META");
  EXPECT_EQ(get_le(b, l.meta_tag + 8, 8), 9u);
  EXPECT_EQ(b[l.meta_body], 1);                    // predicted cycles present
  EXPECT_EQ(get_le(b, l.meta_body + 1, 8), 420u);  // .predicted 420
  EXPECT_EQ(tag(l.code_tag), "CODE");
  EXPECT_EQ(get_le(b, l.code_tag + 8, 8), l.code_end - l.code_body);
  EXPECT_EQ(get_le(b, l.code_body, 4), 1u);       // one chip
  EXPECT_EQ(get_le(b, l.code_body + 4, 4), 0u);   // chip 0
  EXPECT_EQ(get_le(b, l.code_body + 8, 4), 12u);  // twelve queues
  EXPECT_EQ(tag(l.tens_tag), "TENS");
  EXPECT_EQ(get_le(b, l.tens_body, 4), 3u);
  EXPECT_EQ(tag(l.imag_tag), "IMAG");
  EXPECT_EQ(get_le(b, l.imag_body, 4), 1u);
  EXPECT_EQ(l.imag_body + 4 + 4 + 2 + 4 + 8 + 64, b.size()) << "the image ends the file";

  // The first instruction: mem.w0 @0 read 0x0000, s0e [done=3].
  const auto first = l.entries.at({"mem.w0", 0});
  EXPECT_EQ(get_le(b, first.entry, 8), 0u);
  EXPECT_EQ(b[first.word], 0x10);
  EXPECT_EQ(b[first.word + 16], 1);  // done flag
  EXPECT_EQ(get_le(b, first.word + 17, 8), 3u);
  // vxm.alu0 #0 expects mem.w0#0.
  const auto add = l.entries.at({"vxm.alu0", 0});
  EXPECT_EQ(get_le(b, add.entry, 8), 5u);
  EXPECT_EQ(b[add.word], 0x20);
  EXPECT_EQ(b[add.word + 1], 0x11);
  EXPECT_EQ(get_le(b, add.word + 16 + 9, 2), 1u);   // one expectation
  EXPECT_EQ(get_le(b, add.word + 16 + 11, 2), 0u);  // queue mem.w0
  EXPECT_EQ(get_le(b, add.word + 16 + 13, 4), 0u);  // instruction 0
}

TEST(Layout, EmptyProgram) {
  const Program p = parse_lpuasm(".lpuasm 1\n.arch tiny\n", "empty.lpuasm");
  const Bytes b = to_lpubin(p);
  EXPECT_EQ(b.size(), 32u + 16 + p.arch.canonical.size() + 16 + 9 + 16 + 4 + 16 + 4 + 16 + 4);
  const Program back = from_lpubin(b, kFile);
  EXPECT_EQ(back.instruction_count(), 0u);
  EXPECT_FALSE(back.predicted_cycles.has_value());
  EXPECT_EQ(to_lpubin(back), b);
}

// --- rejected files ---------------------------------------------------------------------------

TEST(LpubinErrors, BadMagic) {
  for (std::size_t i : {0u, 1u, 7u}) {
    Bytes b = example_bin();
    b[i] ^= 0x20;
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), at_byte(0));
    EXPECT_EQ(e.message(), "not an .lpubin file (bad magic number)");
  }
  const Bytes text(kExample.begin(), kExample.end());
  EXPECT_EQ(parse_error(text).where(), at_byte(0));
}

TEST(LpubinErrors, NewerVersion) {
  Bytes major = example_bin();
  put_le(major, 8, 3, 2);
  InputError e = parse_error(major);
  EXPECT_EQ(e.where(), at_byte(8));
  EXPECT_EQ(e.message(),
            "format version 3.0 is newer than this build reads (2.0); use a newer lpu");

  Bytes minor = example_bin();
  put_le(minor, 10, 1, 2);
  e = parse_error(minor);
  EXPECT_EQ(e.where(), at_byte(8));  // the version field is bytes 8..11
  EXPECT_EQ(e.message(),
            "format version 2.1 is newer than this build reads (2.0); use a newer lpu");

  // Version 1 named a producer without its repetition.
  Bytes old = example_bin();
  put_le(old, 8, 1, 2);
  e = parse_error(old);
  EXPECT_EQ(e.where(), at_byte(8));
  EXPECT_EQ(e.message(), "format version 1 is no longer supported");
}

TEST(LpubinErrors, EveryTruncation) {
  const Bytes& full = example_bin();
  const std::uint64_t payload = full.size() - 32;
  for (std::size_t n = 0; n < full.size(); ++n) {
    const Bytes b(full.begin(), full.begin() + long(n));
    const InputError e = parse_error(b);
    std::size_t want;
    if (n < 8)
      want = 0;  // not even a magic number
    else if (n < 32)
      want = n < 10 ? 8 : n < 12 ? 10 : n < 16 ? 12 : n < 24 ? 16 : n < 28 ? 24 : 28;  // the field
    else
      want = 16;  // the payload size
    ASSERT_EQ(e.where(), at_byte(want)) << "truncated to " << n << " bytes: " << e.what();
    if (n >= 32) {
      ASSERT_EQ(e.message(), "truncated: header promises " + std::to_string(payload) +
                                 " payload bytes, file has " + std::to_string(n - 32));
    } else if (n >= 8) {
      ASSERT_TRUE(contains(e.message(), "truncated header")) << n;
    }
  }
}

TEST(LpubinErrors, EveryTruncationOfThePayloadWithAConsistentHeader) {
  // The header is rewritten to promise exactly what is left, so the reader has to find the cut
  // inside the sections.
  const Bytes& full = example_bin();
  for (std::size_t n = 32; n < full.size(); ++n) {
    Bytes b(full.begin(), full.begin() + long(n));
    fix_header(b);
    const InputError e = parse_error(b);
    ASSERT_EQ(e.where().rfind(std::string(kFile) + ":byte ", 0), 0u) << n << ": " << e.what();
  }
}

TEST(LpubinErrors, FlippedPayloadByteFailsTheChecksum) {
  const Bytes& full = example_bin();
  for (std::size_t i = 32; i < full.size(); ++i) {
    Bytes b = full;
    b[i] ^= static_cast<std::uint8_t>(1u << (i % 8));
    const InputError e = parse_error(b);
    ASSERT_EQ(e.where(), at_byte(24)) << "byte " << i;
    ASSERT_EQ(e.message(), "checksum mismatch: the file is corrupt") << "byte " << i;
  }
}

TEST(LpubinErrors, CorruptInstructionWord) {
  const Layout l = layout_of(example());
  const auto at = l.entries.at({"vxm.alu0", 2});  // mul.i32.sat s4e, s8e, s12e
  const std::string where = at_byte(at.entry) +
                            " (chip 0, queue vxm.alu0, instruction 2) word at " + "byte " +
                            std::to_string(at.word);
  {
    Bytes b = example_bin();
    ASSERT_EQ(b[at.word], 0x22);
    b[at.word] = 0x0f;
    fix_header(b);
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), where);
    EXPECT_EQ(e.message(), "unknown opcode 0x0f");
  }
  {
    Bytes b = example_bin();
    b[at.word + 1] = 0x17;  // dtype code 7
    fix_header(b);
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), where);
    EXPECT_EQ(e.message(), "bad modifier A code 7 for 'mul'");
  }
  {
    Bytes b = example_bin();
    b[at.word + 15] = 0x01;
    fix_header(b);
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), where);
    EXPECT_EQ(e.message(), "non-zero padding byte 15 in 'mul'");
  }
}

TEST(LpubinErrors, ValidEncodingThatFailsTheChecks) {
  const Layout l = layout_of(example());
  const auto read = l.entries.at({"mem.w0", 0});  // read 0x0000, s0e
  {
    Bytes b = example_bin();
    b[read.word + 5] = 40;  // stream operand
    fix_header(b);
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), at_byte(read.entry) + " (chip 0, queue mem.w0, instruction 0)");
    EXPECT_EQ(e.message(),
              "operand 's': stream 40 does not exist (chip.streams.per_direction = 32)");
  }
  {
    Bytes b = example_bin();
    put_le(b, read.word + 2, 256, 3);  // address 256 on tiny
    fix_header(b);
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), at_byte(read.entry) + " (chip 0, queue mem.w0, instruction 0)");
    EXPECT_TRUE(contains(e.message(), "address 256 is beyond the slice"));
  }
  {
    const auto second = l.entries.at({"mem.w0", 1});  // repeat at cycle 1
    Bytes b = example_bin();
    put_le(b, second.entry, 0, 8);
    fix_header(b);
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), at_byte(second.entry) + " (chip 0, queue mem.w0, instruction 1)");
    EXPECT_EQ(e.message(), "two instructions of queue mem.w0 at cycle 0 (instructions 0 and 1)");
  }
  {
    const auto add = l.entries.at({"vxm.alu0", 0});  // [expect=mem.w0#0]
    Bytes b = example_bin();
    put_le(b, add.word + 16 + 9 + 2 + 2, 99, 4);  // expect mem.w0#99
    fix_header(b);
    const InputError e = parse_error(b);
    EXPECT_EQ(e.where(), at_byte(add.entry) + " (chip 0, queue vxm.alu0, instruction 0)");
    EXPECT_EQ(e.message(), "expected producer mem.w0#99 is not an instruction of chip 0");
  }
}

TEST(LpubinErrors, EmbeddedArchitecture) {
  const std::string where = at_byte(48) + " (embedded architecture)";
  const std::string& canon = example().arch.canonical;
  auto patched = [&](const std::string& from, const std::string& to) {
    EXPECT_EQ(from.size(), to.size());
    const auto pos = canon.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    Bytes b = example_bin();
    std::memcpy(b.data() + 48 + pos, to.data(), to.size());
    fix_header(b);
    return b;
  };
  InputError e = parse_error(patched("\"superlanes\":2", "\"superlanes\":0"));
  EXPECT_EQ(e.where(), where);
  EXPECT_EQ(e.message(), "chip.superlanes: must be in [1, 64], got 0");

  e = parse_error(patched("\"depth\":256", "\"depth\":2x6"));
  EXPECT_EQ(e.where(), where);
  EXPECT_TRUE(contains(e.message(), "embedded architecture is not valid JSON"));

  e = parse_error(patched("\"depth\":256", "\"depth\": 56"));  // valid, but not canonical
  EXPECT_EQ(e.where(), at_byte(48));
  EXPECT_EQ(e.message(), "embedded architecture is not in canonical form");
}

TEST(LpubinErrors, SectionTableAndCount) {
  const Layout l = layout_of(example());
  Bytes b = example_bin();
  b[l.meta_tag + 2] = 't';
  fix_header(b);
  InputError e = parse_error(b);
  EXPECT_EQ(e.where(), at_byte(l.meta_tag));
  EXPECT_EQ(e.message(), "expected section META, found 'MEtA'");

  Bytes c = example_bin();
  put_le(c, 12, 4, 4);
  e = parse_error(c);
  EXPECT_EQ(e.where(), at_byte(12));
  EXPECT_EQ(e.message(), "expected 5 sections, header says 4");
}

TEST(LpubinErrors, StrayBytesAfterThePayload) {
  Bytes b = example_bin();
  b.insert(b.end(), {1, 2, 3});
  const InputError e = parse_error(b);
  EXPECT_EQ(e.where(), at_byte(16));
  EXPECT_EQ(e.message(), "file has 3 stray bytes after the payload");
}

TEST(LpubinErrors, StrayBytesInASection) {
  const Layout l = layout_of(example());
  Bytes b = example_bin();
  b.insert(b.begin() + long(l.meta_body + 9), 0x00);  // one more byte in META
  put_le(b, l.meta_tag + 8, 10, 8);
  fix_header(b);
  const InputError e = parse_error(b);
  EXPECT_EQ(e.where(), at_byte(l.meta_body + 9));
  EXPECT_EQ(e.message(), "stray bytes in META section");
}

TEST(LpubinErrors, RandomSingleByteMutations) {
  // 2000 seeded mutations, the CRC recomputed so that the reader has to judge the content: each
  // file either parses or is rejected with an InputError located in the file.
  const Bytes& full = example_bin();
  std::mt19937 rng(20240601);
  int parsed = 0, rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    Bytes b = full;
    const std::size_t at = rng() % b.size();
    const auto old = b[at];
    while (b[at] == old)
      b[at] = static_cast<std::uint8_t>(rng());
    if (at < 24 || at >= 28) put_le(b, 24, crc_of_payload(b), 4);
    try {
      const Program p = from_lpubin(b, kFile);
      ++parsed;
      // What parses can be written out again.
      EXPECT_NO_THROW(to_lpubin(p)) << "mutation " << i << " at byte " << at;
    } catch (const InputError& e) {
      ++rejected;
      ASSERT_EQ(e.where().rfind(std::string(kFile) + ":byte ", 0), 0u)
          << "mutation " << i << " at byte " << at << ": " << e.what();
    } catch (const std::exception& e) {
      FAIL() << "mutation " << i << " at byte " << at << " (0x" << std::hex << int(old) << " -> 0x"
             << int(b[at]) << std::dec << "): not an InputError: " << e.what();
    }
  }
  EXPECT_EQ(parsed + rejected, 2000);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(parsed, 0);  // e.g. a changed dispatch cycle or image byte is still a valid program
}

// --- found while testing ------------------------------------------------------------------------

TEST(Bugs, ReservedFieldsAreLocatedPastTheField) {
  Bytes b = example_bin();
  put_le(b, 28, 1, 4);
  EXPECT_EQ(parse_error(b).where(), at_byte(28));
  const Layout l = layout_of(example());
  Bytes c = example_bin();
  put_le(c, l.meta_tag + 4, 1, 4);
  fix_header(c);
  EXPECT_EQ(parse_error(c).where(), at_byte(l.meta_tag + 4));
}

TEST(Bugs, JunkAfterTheLastSectionIsAccepted) {
  Bytes b = example_bin();
  b.insert(b.end(), {0xde, 0xad, 0xbe, 0xef});
  fix_header(b);
  const InputError e = parse_error(b);
  EXPECT_EQ(e.where(), at_byte(example_bin().size()));
}

TEST(Bugs, UnusedPredictedCyclesValueIsAccepted) {
  Program p = example();
  p.predicted_cycles.reset();
  Bytes b = to_lpubin(p);
  const Layout l = layout_of(p);
  ASSERT_EQ(b[l.meta_body], 0);
  put_le(b, l.meta_body + 1, 420, 8);
  fix_header(b);
  const InputError e = parse_error(b);
  EXPECT_EQ(e.where(), at_byte(l.meta_body + 1));
}

}  // namespace
