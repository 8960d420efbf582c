// The ISA table: its consistency, the 16-byte encoding, the decoder's rejections, check() against
// a chip and a queue, the text form of one instruction, and docs/isa.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"
#include "isa/isa.h"

#include "test_support.h"

namespace {

using namespace lpu::test;

using namespace lpu::isa;
using lpu::arch::QueueUnit;

// --- helpers ----------------------------------------------------------------------------------

/// Builds an instruction from its canonical text ("add.i8.sat s0e, s4e, s8w"), written
/// independently of the assembler: mnemonic (longest known prefix), modifiers by slot, operands
/// as sNe/sNw or numbers.
Instr ins(const std::string& text) {
  const auto space = text.find(' ');
  const std::string word = text.substr(0, space);
  const OpInfo* op = nullptr;
  std::string mods;
  for (std::size_t cut = word.size(); cut != std::string::npos && cut > 0;
       cut = word.rfind('.', cut - 1)) {
    if ((op = by_mnemonic(word.substr(0, cut)))) {
      mods = word.substr(cut);
      break;
    }
  }
  if (!op) throw std::invalid_argument("test bug: no mnemonic in '" + text + "'");
  Instr in;
  in.opcode = op->opcode;
  std::vector<std::string> parts;
  std::stringstream ms(mods);
  for (std::string p; std::getline(ms, p, '.');)
    if (!p.empty()) parts.push_back(p);
  std::size_t used = 0;
  for (std::size_t slot = 0; slot < 2 && used < parts.size(); ++slot) {
    if (op->mods[slot] == ModKind::kNone) continue;
    const auto& names = mod_names(op->mods[slot]);
    for (std::size_t c = 1; c < names.size(); ++c)
      if (names[c] == parts[used]) {
        in.mod[slot] = static_cast<std::uint8_t>(c);
        ++used;
        break;
      }
  }
  if (used != parts.size()) throw std::invalid_argument("test bug: modifiers of '" + text + "'");
  if (space != std::string::npos) {
    std::stringstream os(text.substr(space + 1));
    std::size_t i = 0;
    for (std::string a; std::getline(os, a, ',');) {
      a.erase(0, a.find_first_not_of(' '));
      if (a[0] == 's')
        in.arg[i++] = stream_arg(std::stoi(a.substr(1)), a.back() == 'w');
      else
        in.arg[i++] = static_cast<std::uint32_t>(std::stoul(a, nullptr, 0));
    }
  }
  return in;
}

Word word(std::initializer_list<std::uint8_t> bytes) {
  Word w{};
  std::size_t i = 0;
  for (auto b : bytes)
    w[i++] = b;
  return w;
}

const lpu::arch::Arch& tsp() {
  static const lpu::arch::Arch a = lpu::arch::load("tsp-v1");
  return a;
}
const lpu::arch::Arch& tiny() {
  static const lpu::arch::Arch a = lpu::arch::load("tiny");
  return a;
}

std::optional<Problem> check_on(const lpu::arch::Arch& a, const std::string& queue,
                                const std::string& text) {
  const auto queues = lpu::arch::chip_queues(a.chip);
  const auto q = lpu::arch::find_queue(queues, queue);
  if (!q) throw std::invalid_argument("test bug: no queue " + queue);
  return check(ins(text), a.chip, *q);
}

// --- the table ----------------------------------------------------------------------------------

TEST(Table, OpcodesAndMnemonicsAreUnique) {
  std::set<int> opcodes;
  std::set<std::string> names;
  int previous = -1;
  for (const auto& op : table()) {
    EXPECT_TRUE(opcodes.insert(op.opcode).second) << "opcode " << int(op.opcode) << " twice";
    EXPECT_TRUE(names.insert(op.mnemonic).second) << op.mnemonic << " twice";
    EXPECT_GT(int(op.opcode), previous) << "table not ordered by opcode at " << op.mnemonic;
    previous = op.opcode;
  }
  EXPECT_EQ(mnemonics().size(), table().size());
}

TEST(Table, LookupsFindTheSameEntries) {
  for (const auto& op : table()) {
    EXPECT_EQ(by_opcode(op.opcode), &op) << op.mnemonic;
    EXPECT_EQ(by_mnemonic(op.mnemonic), &op) << op.mnemonic;
  }
  int unknown = 0;
  for (int c = 0; c < 256; ++c)
    if (!by_opcode(static_cast<std::uint8_t>(c))) ++unknown;
  EXPECT_EQ(unknown, 256 - static_cast<int>(table().size()));
  EXPECT_EQ(by_opcode(0x0f), nullptr);
  EXPECT_EQ(by_opcode(0xff), nullptr);
  EXPECT_EQ(by_mnemonic("addd"), nullptr);
  EXPECT_EQ(by_mnemonic("ADD"), nullptr);
  EXPECT_EQ(by_mnemonic(""), nullptr);
  EXPECT_EQ(by_mnemonic("iw"), nullptr);
}

TEST(Table, LatencyClassesAreKnown) {
  const auto& classes = lpu::arch::latency_classes();
  std::set<std::string> used;
  for (const auto& op : table()) {
    EXPECT_NE(std::find(classes.begin(), classes.end(), op.latency_class), classes.end())
        << op.mnemonic << " has latency class " << op.latency_class;
    used.insert(op.latency_class);
  }
  // And every class of the description is some instruction's.
  for (const auto& c : classes)
    EXPECT_TRUE(used.count(c)) << "latency class " << c << " is used by no instruction";
  // Each class has a latency in both presets.
  for (const auto& op : table()) {
    EXPECT_NO_THROW(tsp().chip.latency_of(op.latency_class)) << op.mnemonic;
    EXPECT_TRUE(tsp().chip.energy_pj.count(op.latency_class)) << op.mnemonic;
  }
}

TEST(Table, EveryInstructionOfPartA2Exists) {
  const std::vector<std::pair<const char*, Unit>> a2 = {
      {"nop", Unit::kIcu},        {"ifetch", Unit::kIcu}, {"sync", Unit::kIcu},
      {"notify", Unit::kIcu},     {"config", Unit::kIcu}, {"repeat", Unit::kIcu},
      {"read", Unit::kMem},       {"write", Unit::kMem},  {"gather", Unit::kMem},
      {"scatter", Unit::kMem},    {"add", Unit::kVxm},    {"sub", Unit::kVxm},
      {"mul", Unit::kVxm},        {"max", Unit::kVxm},    {"min", Unit::kVxm},
      {"neg", Unit::kVxm},        {"abs", Unit::kVxm},    {"cmp", Unit::kVxm},
      {"sel", Unit::kVxm},        {"and", Unit::kVxm},    {"or", Unit::kVxm},
      {"xor", Unit::kVxm},        {"shl", Unit::kVxm},    {"shr", Unit::kVxm},
      {"relu", Unit::kVxm},       {"exp", Unit::kVxm},    {"rsqrt", Unit::kVxm},
      {"tanh", Unit::kVxm},       {"cast", Unit::kVxm},   {"mov", Unit::kVxm},
      {"lw", Unit::kMxm},         {"iw.buf", Unit::kMxm}, {"clw", Unit::kMxm},
      {"iw.str", Unit::kMxm},     {"abc", Unit::kMxm},    {"acc", Unit::kMxm},
      {"shift", Unit::kSxm},      {"select", Unit::kSxm}, {"permute", Unit::kSxm},
      {"distribute", Unit::kSxm}, {"rotate", Unit::kSxm}, {"transpose", Unit::kSxm},
      {"send", Unit::kC2c},       {"recv", Unit::kC2c},   {"deskew", Unit::kC2c}};
  for (const auto& [name, unit] : a2) {
    const OpInfo* op = by_mnemonic(name);
    ASSERT_NE(op, nullptr) << name << " is missing from the ISA table";
    EXPECT_EQ(op->unit, unit) << name;
  }
  EXPECT_EQ(table().size(), a2.size()) << "the table has instructions beyond Part A2";
}

TEST(Table, EntriesAreConsistent) {
  for (const auto& op : table()) {
    SCOPED_TRACE(op.mnemonic);
    int bytes = 2;
    for (const auto& d : op.operands)
      bytes += operand_bytes(d.kind);
    EXPECT_LE(bytes, static_cast<int>(kSlotBytes));
    EXPECT_LE(op.operands.size(), 4u);
    EXPECT_EQ(op.unit == Unit::kIcu, op.queues.empty());
    EXPECT_EQ(op.unit == Unit::kVxm, op.alu != AluNeed::kNone);
    const bool typed = op.mods[0] == ModKind::kDtype;
    EXPECT_EQ(typed, !op.dtypes.empty());
    if (op.mods[1] == ModKind::kDtype) {
      EXPECT_TRUE(typed) << "a type in slot B needs one in A";
    }
    for (const auto& d : op.operands) {
      if (d.kind != OperandKind::kStream) {
        EXPECT_EQ(d.group, 0) << d.name;
      } else {
        EXPECT_NE(d.group, 0) << d.name;
      }
    }
    EXPECT_NE(std::string(op.summary), "");
  }
  // The large-ALU ops of the brief.
  for (const char* m : {"max", "min", "exp", "rsqrt", "tanh", "cast"})
    EXPECT_EQ(by_mnemonic(m)->alu, AluNeed::kLarge) << m;
  for (const char* m : {"add", "mul", "relu", "mov"})
    EXPECT_EQ(by_mnemonic(m)->alu, AluNeed::kAny) << m;
}

TEST(Table, SmallHelpers) {
  EXPECT_EQ(parse_dtype("fp16"), DType::kFp16);
  EXPECT_EQ(parse_dtype("i32"), DType::kI32);
  EXPECT_FALSE(parse_dtype("f16").has_value());
  EXPECT_FALSE(parse_dtype("").has_value());
  EXPECT_EQ(dtype_bytes(DType::kI8), 1);
  EXPECT_EQ(dtype_bytes(DType::kBf16), 2);
  EXPECT_EQ(dtype_bytes(DType::kFp32), 4);
  EXPECT_EQ(dtype_bytes(DType::kNone), 0);
  EXPECT_TRUE(is_integer(DType::kI16));
  EXPECT_FALSE(is_integer(DType::kFp16));
  EXPECT_FALSE(is_integer(DType::kNone));
  EXPECT_STREQ(to_string(DType::kBf16), "bf16");
  EXPECT_STREQ(to_string(Unit::kSxm), "SXM");
  EXPECT_EQ(mod_names(ModKind::kRotate)[3], "n3");
  EXPECT_EQ(mod_names(ModKind::kOvf), (std::vector<std::string>{"", "sat", "mod"}));
  EXPECT_EQ(mod_names(ModKind::kCmp).size(), 7u);
  EXPECT_EQ(operand_bytes(OperandKind::kAddr), 3);
  EXPECT_EQ(operand_bytes(OperandKind::kStream), 1);
  EXPECT_EQ(operand_bytes(OperandKind::kRow), 2);
  EXPECT_EQ(stream_arg(5, true), 0x85u);
  EXPECT_EQ(stream_id(0x85), 5);
  EXPECT_TRUE(stream_west(0x85));
  EXPECT_FALSE(stream_west(0x05));
}

TEST(Table, StreamGroups) {
  EXPECT_EQ(stream_group(ins("add.i32.sat s0e, s4e, s8e"), 0), 4);
  EXPECT_EQ(stream_group(ins("add.fp16 s0e, s2e, s4e"), 2), 2);
  EXPECT_EQ(stream_group(ins("cast.i8.fp32 s0e, s4e"), 0), 1);
  EXPECT_EQ(stream_group(ins("cast.i8.fp32 s0e, s4e"), 1), 4);
  EXPECT_EQ(stream_group(ins("lw.i8 s16e, 0, 0"), 0), 16);
  EXPECT_EQ(stream_group(ins("lw.i8 s16e, 0, 0"), 1), 0);  // a row, not a stream
  EXPECT_EQ(stream_group(ins("gather s2e, s3e"), 0), 2);
  EXPECT_EQ(stream_group(ins("gather s2e, s3e"), 1), 1);
  EXPECT_EQ(stream_group(ins("rotate.n3 s0e, s8e"), 0), 3);
  EXPECT_EQ(stream_group(ins("rotate.n3 s0e, s8e"), 1), 9);
  EXPECT_EQ(stream_group(ins("rotate.n4 s0e, s16e"), 1), 16);
  EXPECT_EQ(stream_group(ins("acc.fp32.last s28w, 4"), 0), 4);
  EXPECT_EQ(stream_group(ins("read 0x0000, s1e"), 0), 0);
  EXPECT_EQ(stream_group(ins("read 0x0000, s1e"), 1), 1);
  EXPECT_EQ(stream_group(ins("read 0x0000, s1e"), 5), 0);
  EXPECT_EQ(stream_group(ins("read 0x0000, s1e"), -1), 0);
}

// --- encoding -------------------------------------------------------------------------------

TEST(Encoding, WordLayout) {
  EXPECT_EQ(encode(ins("add.i8.sat s0e, s4e, s8w")), word({0x20, 0x11, 0x00, 0x04, 0x88}));
  EXPECT_EQ(encode(ins("read 0x010203, s5w")), word({0x10, 0x00, 0x03, 0x02, 0x01, 0x85}));
  EXPECT_EQ(encode(ins("cmp.fp16.lt s0e, s2e, s4e")), word({0x2a, 0x34, 0x00, 0x02, 0x04}));
  EXPECT_EQ(encode(ins("cast.i8.fp32 s0e, s4e")), word({0x36, 0x61, 0x00, 0x04}));
  EXPECT_EQ(encode(ins("repeat 0x1234, 0xabcd")), word({0x05, 0x00, 0x34, 0x12, 0xcd, 0xab}));
  EXPECT_EQ(encode(ins("lw.fp16 s16e, 0x0130, 0")), word({0x60, 0x04, 0x10, 0x30, 0x01}));
  EXPECT_EQ(encode(ins("select.i16 s0e, s2e, s4w, 300")),
            word({0x71, 0x02, 0x00, 0x02, 0x84, 0x2c, 0x01}));
  EXPECT_EQ(encode(ins("acc.i32.only s24w, 4")), word({0x64, 0x13, 0x98, 0x04, 0x00}));
  EXPECT_EQ(encode(ins("rotate.n4 s0e, s16e")), word({0x74, 0x04, 0x00, 0x10}));
  EXPECT_EQ(encode(ins("sync")), word({0x02}));
  EXPECT_EQ(encode(ins("iw.buf 0")), word({0x61}));
  EXPECT_EQ(encode(ins("config 20")), word({0x04, 0x00, 0x14}));
  EXPECT_EQ(encode(ins("shl.i32 s0e, s4e, 31")), word({0x28, 0x03, 0x00, 0x04, 0x1f}));
}

TEST(Encoding, RoundTripOfExamples) {
  const std::vector<std::string> examples = {
      "nop 0",
      "nop 65535",
      "ifetch s7e",
      "sync",
      "notify",
      "config 1",
      "repeat 3, 1",
      "read 0x1fff, s31w",
      "write 0x0020, s1w",
      "gather s2e, s3e",
      "scatter s4w, s6w",
      "add.i8.sat s0e, s1e, s2e",
      "add.i16.mod s2e, s4e, s6e",
      "add.fp32 s0e, s4e, s8e",
      "sub.bf16 s0e, s2e, s4e",
      "mul.i32.sat s4e, s8e, s12e",
      "max.fp32 s0e, s4e, s8e",
      "min.bf16 s0e, s2e, s4e",
      "and.i8 s0e, s1e, s2e",
      "or.i16 s0e, s2e, s4e",
      "xor.i32 s0e, s4e, s8e",
      "shl.i32 s0e, s4e, 3",
      "shr.i16 s0e, s2e, 15",
      "cmp.fp16.ge s0e, s2e, s4e",
      "cmp.i8.eq s0e, s1e, s2e",
      "sel.i8 s0e, s1e, s2e, s3e",
      "neg.i8 s0e, s1w",
      "abs.i32 s4e, s8w",
      "relu.fp16 s2e, s2w",
      "exp.fp32 s0e, s4e",
      "rsqrt.fp16 s0e, s2e",
      "tanh.bf16 s0e, s2e",
      "cast.i8.fp32 s0e, s4e",
      "cast.fp32.i16 s0e, s4e",
      "mov.fp32 s8e, s12w",
      "lw.i8 s16e, 0, 0",
      "lw.fp16 s0w, 304, 0",
      "iw.buf 0",
      "clw 0",
      "iw.str.fp16 s0w, 16",
      "abc.i8 s20e, 4",
      "acc.i32.only s24w, 4",
      "acc.fp32.last s28w, 65535",
      "shift.i8.n s0e, s1e, 16",
      "shift.i32.s s4e, s8e, 320",
      "select.i8 s0e, s1e, s2e, 16",
      "permute.i8 s0e, s2e, s4e",
      "distribute.i16 s0e, s2e, s4e",
      "rotate.n3 s0e, s8e",
      "rotate.n4 s0e, s16e",
      "transpose s0e, s16w",
      "send s5e",
      "recv s6w",
      "deskew",
  };
  std::set<int> covered;
  for (const auto& text : examples) {
    SCOPED_TRACE(text);
    const Instr in = ins(text);
    covered.insert(in.opcode);
    EXPECT_EQ(format(in), text);  // the helper and the formatter agree on the text form
    std::string err = "unchanged";
    const auto back = decode(encode(in), &err);
    ASSERT_TRUE(back.has_value()) << err;
    EXPECT_EQ(err, "unchanged");
    EXPECT_TRUE(*back == in);
    EXPECT_EQ(format(*back), text);
  }
  EXPECT_EQ(covered.size(), table().size()) << "some opcode has no example";
}

TEST(Encoding, RandomRoundTrip) {
  // Every opcode with random valid modifier codes and random operand values of the right width.
  std::mt19937 rng(12345);
  auto valid_codes = [](ModKind k) {
    std::vector<std::uint8_t> codes;
    const auto& names = mod_names(k);
    if (k == ModKind::kNone || k == ModKind::kOvf) codes.push_back(0);
    for (std::size_t c = 1; c < names.size(); ++c)
      if (!names[c].empty()) codes.push_back(static_cast<std::uint8_t>(c));
    return codes;
  };
  int n = 0;
  for (const auto& op : table()) {
    for (int rep = 0; rep < 200; ++rep) {
      Instr in;
      in.opcode = op.opcode;
      for (std::size_t s = 0; s < 2; ++s) {
        const auto codes = valid_codes(op.mods[s]);
        in.mod[s] = codes[rng() % codes.size()];
      }
      for (std::size_t i = 0; i < op.operands.size(); ++i) {
        const int bytes = operand_bytes(op.operands[i].kind);
        in.arg[i] = static_cast<std::uint32_t>(rng()) &
                    (bytes >= 4 ? 0xffffffffu : (1u << (8 * bytes)) - 1);
      }
      std::string err;
      const auto back = decode(encode(in), &err);
      ASSERT_TRUE(back.has_value()) << format(in) << ": " << err;
      ASSERT_TRUE(*back == in) << format(in) << " came back as " << format(*back);
      ++n;
    }
  }
  EXPECT_EQ(n, 200 * static_cast<int>(table().size()));
}

TEST(Decoding, RejectsUnknownOpcode) {
  std::string err;
  EXPECT_FALSE(decode(word({0x0f}), &err).has_value());
  EXPECT_EQ(err, "unknown opcode 0x0f");
  EXPECT_FALSE(decode(word({0xff}), &err).has_value());
  EXPECT_EQ(err, "unknown opcode 0xff");
  EXPECT_FALSE(decode(word({0x38, 0x01}), &err).has_value());
  EXPECT_EQ(err, "unknown opcode 0x38");
  EXPECT_FALSE(decode(word({0x0f}), nullptr).has_value());  // no message wanted: no crash
  int valid = 0;
  for (int c = 0; c < 256; ++c) {
    Word w{};
    w[0] = static_cast<std::uint8_t>(c);
    std::string e;
    const auto d = decode(w, &e);
    if (!by_opcode(w[0])) {
      EXPECT_FALSE(d.has_value());
      char buf[32];
      std::snprintf(buf, sizeof buf, "unknown opcode 0x%02x", c);
      EXPECT_EQ(e, buf);
    } else if (d) {
      ++valid;
    }
  }
  // All-zero modifiers and operands are valid exactly for the untyped instructions.
  int untyped = 0;
  for (const auto& op : table())
    if (op.mods[0] == ModKind::kNone && op.mods[1] == ModKind::kNone) ++untyped;
  EXPECT_EQ(valid, untyped);
}

TEST(Decoding, RejectsBadModifierCodes) {
  struct Case {
    Word w;
    std::string message;
  };
  const std::vector<Case> cases = {
      {word({0x20, 0x17}), "bad modifier A code 7 for 'add'"},  // no dtype 7
      {word({0x20, 0x10}), "bad modifier A code 0 for 'add'"},  // a dtype is required
      {word({0x20, 0x31}), "bad modifier B code 3 for 'add'"},  // overflow is sat or mod
      {word({0x00, 0x01}), "bad modifier A code 1 for 'nop'"},  // nop takes no modifiers
      {word({0x00, 0x10}), "bad modifier B code 1 for 'nop'"},
      {word({0x2a, 0x01}), "bad modifier B code 0 for 'cmp'"},  // a comparison is required
      {word({0x2a, 0x71}), "bad modifier B code 7 for 'cmp'"},
      {word({0x70, 0x31}), "bad modifier B code 3 for 'shift'"},   // direction is n or s
      {word({0x74, 0x02}), "bad modifier A code 2 for 'rotate'"},  // n2 does not exist
      {word({0x74, 0x09}), "bad modifier A code 9 for 'rotate'"},
      {word({0x64, 0x53}), "bad modifier B code 5 for 'acc'"},
      {word({0x36, 0x01}), "bad modifier B code 0 for 'cast'"},  // the target type is required
      {word({0x23, 0x11}), "bad modifier B code 1 for 'max'"},
  };
  for (const auto& c : cases) {
    std::string err;
    EXPECT_FALSE(decode(c.w, &err).has_value()) << c.message;
    EXPECT_EQ(err, c.message);
  }
  // The optional overflow slot may be zero (for a float; check() judges integers).
  EXPECT_TRUE(decode(word({0x20, 0x06}), nullptr).has_value());
}

TEST(Decoding, RejectsNonZeroPadding) {
  struct Case {
    Word w;
    std::string message;
  };
  const std::vector<Case> cases = {
      {word({0x00, 0x00, 0x05, 0x00, 0x01}), "non-zero padding byte 4 in 'nop'"},
      {word({0x02, 0x00, 0x01}), "non-zero padding byte 2 in 'sync'"},
      {word({0x61, 0x00, 0x00, 0x80}), "non-zero padding byte 3 in 'iw.buf'"},
      {word({0x20, 0x11, 0x00, 0x04, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}),
       "non-zero padding byte 15 in 'add'"},
      {word({0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02}), "non-zero padding byte 6 in 'read'"},
  };
  for (const auto& c : cases) {
    std::string err;
    EXPECT_FALSE(decode(c.w, &err).has_value()) << c.message;
    EXPECT_EQ(err, c.message);
  }
  // The last operand byte is not padding.
  EXPECT_TRUE(decode(word({0x10, 0x00, 0xff, 0xff, 0xff, 0xff}), nullptr).has_value());
}

// --- check() ----------------------------------------------------------------------------------

TEST(Check, AcceptsValidInstructions) {
  const std::vector<std::pair<std::string, std::string>> ok = {
      {"mem.w0", "read 0x1fff, s31w"},
      {"mem.e43", "write 0x0000, s0e"},
      {"mem.w0", "gather s30e, s31e"},
      {"mem.w0", "config 20"},
      {"mem.w0", "repeat 3, 1"},
      {"vxm.alu0", "nop 5"},
      {"c2c.l15", "sync"},
      {"mxm.p3.acc", "notify"},
      {"vxm.alu0", "add.i8.sat s0e, s1e, s15w"},
      {"vxm.alu0", "add.fp32 s0e, s4e, s12e"},
      {"vxm.alu0", "shl.i32 s0e, s4e, 31"},
      {"vxm.alu0", "shr.i8 s0e, s1e, 7"},
      {"vxm.alu0", "cast.i8.fp32 s0e, s4e"},
      {"vxm.alu2", "exp.fp32 s0e, s4e"},
      {"vxm.alu4", "add.i8.sat s8e, s23e, s16w"},  // row 1 reaches streams 8..23
      {"vxm.alu5", "max.i32 s8e, s12e, s20e"},     // ALU 5 is large
      {"vxm.alu12", "mov.i32 s24e, s4w"},          // row 3 reaches 24..31 and 0..7
      {"vxm.alu1", "relu.fp16 s0e, s2e"},          // small ALU, ordinary op
      {"mxm.p0.wt", "lw.i8 s16e, 304, 0"},
      {"mxm.p3.wt", "iw.str.fp16 s0w, 0"},
      {"mxm.p1.abc", "abc.fp16 s2e, 65535"},
      {"mxm.p2.acc", "acc.i32.only s28w, 1"},
      {"sxm.w.shift", "shift.i8.n s0e, s1e, 320"},
      {"sxm.e.shift", "select.fp32 s0e, s4e, s8e, 0"},
      {"sxm.w.permute", "permute.i8 s0e, s2e, s4e"},
      {"sxm.e.distribute", "distribute.i16 s0e, s2e, s4e"},
      {"sxm.w.rotate", "rotate.n3 s1e, s8e"},
      {"sxm.w.rotate", "rotate.n4 s0e, s16e"},
      {"sxm.e.transpose1", "transpose s0e, s16w"},
      {"c2c.l0", "send s5e"},
      {"c2c.l8", "recv s31w"},
      {"c2c.l15", "deskew"},
  };
  for (const auto& [q, text] : ok) {
    const auto p = check_on(tsp(), q, text);
    EXPECT_FALSE(p.has_value()) << q << ": " << text << ": " << (p ? p->message : "");
  }
}

struct Rejection {
  const lpu::arch::Arch* arch;
  std::string queue;
  std::string text;
  int operand;
  std::string message;
};

void expect_rejected(const std::vector<Rejection>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.queue + ": " + c.text);
    const auto p = check_on(*c.arch, c.queue, c.text);
    ASSERT_TRUE(p.has_value()) << "accepted";
    EXPECT_EQ(p->operand, c.operand) << p->message;
    EXPECT_EQ(p->message, c.message);
  }
}

TEST(Check, WrongQueueForTheUnit) {
  expect_rejected({
      {&tsp(), "vxm.alu0", "read 0x0000, s0e", -1,
       "'read' cannot run on queue vxm.alu0 (it runs on MEM queues such as mem.w0)"},
      {&tsp(), "mem.w3", "add.i8.sat s0e, s1e, s2e", -1,
       "'add' cannot run on queue mem.w3 (it runs on VXM queues such as vxm.alu0)"},
      {&tsp(), "mxm.p0.abc", "lw.i8 s16e, 0, 0", -1,
       "'lw' cannot run on queue mxm.p0.abc (it runs on MXM queues such as mxm.p0.wt)"},
      {&tsp(), "mxm.p0.wt", "acc.i32.only s0e, 1", -1,
       "'acc' cannot run on queue mxm.p0.wt (it runs on MXM queues such as mxm.p0.acc)"},
      {&tsp(), "sxm.w.shift", "transpose s0e, s16e", -1,
       "'transpose' cannot run on queue sxm.w.shift (it runs on SXM queues such as "
       "sxm.w.transpose0)"},
      {&tsp(), "mem.w0", "send s0e", -1,
       "'send' cannot run on queue mem.w0 (it runs on C2C queues such as c2c.l0)"},
      {&tsp(), "c2c.l0", "shift.i8.n s0e, s1e, 1", -1,
       "'shift' cannot run on queue c2c.l0 (it runs on SXM queues such as sxm.w.shift)"},
  });
}

TEST(Check, OverflowModes) {
  expect_rejected({
      {&tsp(), "vxm.alu0", "add.i8 s0e, s1e, s2e", -1,
       "'add.i8' needs an overflow mode: .sat or .mod"},
      {&tsp(), "vxm.alu0", "mul.i32 s0e, s4e, s8e", -1,
       "'mul.i32' needs an overflow mode: .sat or .mod"},
      {&tsp(), "vxm.alu0", "add.fp32.sat s0e, s4e, s8e", -1,
       "'add.fp32' is floating point and takes no overflow mode"},
      {&tsp(), "vxm.alu0", "sub.bf16.mod s0e, s2e, s4e", -1,
       "'sub.bf16' is floating point and takes no overflow mode"},
  });
}

TEST(Check, TypeNotAllowed) {
  expect_rejected({
      {&tsp(), "vxm.alu0", "and.fp16 s0e, s2e, s4e", -1,
       "'and' does not take type 'fp16' (allowed: i8, i16, i32)"},
      {&tsp(), "vxm.alu0", "exp.i8 s0e, s1e", -1,
       "'exp' does not take type 'i8' (allowed: fp16, bf16, fp32)"},
      {&tsp(), "vxm.alu0", "shl.fp32 s0e, s4e, 1", -1,
       "'shl' does not take type 'fp32' (allowed: i8, i16, i32)"},
      {&tsp(), "mxm.p0.wt", "lw.i16 s0e, 0", -1,
       "'lw' does not take type 'i16' (allowed: i8, fp16)"},
      {&tsp(), "mxm.p0.acc", "acc.i8.only s0e, 1", -1,
       "'acc' does not take type 'i8' (allowed: i32, fp32)"},
  });
}

TEST(Check, StreamIdsAndGroups) {
  expect_rejected({
      {&tsp(), "mem.w0", "read 0x0000, s32e", 1,
       "operand 's': stream 32 does not exist (chip.streams.per_direction = 32)"},
      {&tsp(), "mem.w0", "read 0x0000, s127w", 1,
       "operand 's': stream 127 does not exist (chip.streams.per_direction = 32)"},
      {&tsp(), "c2c.l0", "send s40e", 0,
       "operand 's': stream 40 does not exist (chip.streams.per_direction = 32)"},
      {&tsp(), "mem.w0", "gather s3e, s0e", 0,
       "operand 'map': s3 is not aligned to its group of 2 streams (SG2)"},
      {&tsp(), "mem.w0", "scatter s0e, s5w", 1,
       "operand 'map': s5 is not aligned to its group of 2 streams (SG2)"},
      {&tsp(), "vxm.alu0", "add.i32.sat s2e, s4e, s8e", 0,
       "operand 'a': s2 is not aligned to its group of 4 streams (SG4)"},
      {&tsp(), "vxm.alu0", "add.i16.sat s0e, s2e, s5e", 2,
       "operand 'd': s5 is not aligned to its group of 2 streams (SG2)"},
      {&tsp(), "vxm.alu0", "cast.i8.fp32 s1e, s6e", 1,
       "operand 'd': s6 is not aligned to its group of 4 streams (SG4)"},
      {&tsp(), "mxm.p0.wt", "lw.i8 s8e, 0, 0", 0,
       "operand 's': s8 is not aligned to its group of 16 streams (SG16)"},
      {&tsp(), "mxm.p0.wt", "lw.i8 s24e, 0, 0", 0,
       "operand 's': a group of 16 streams from s24 runs past stream 31"},
      {&tsp(), "vxm.alu12", "add.i32.sat s30e, s0e, s4e", 0,
       "operand 'a': a group of 4 streams from s30 runs past stream 31"},
      {&tsp(), "mxm.p0.abc", "abc.fp16 s21e, 4", 0,
       "operand 's': s21 is not aligned to its group of 2 streams (SG2)"},
      {&tsp(), "sxm.w.transpose0", "transpose s0e, s8e", 1,
       "operand 'd': s8 is not aligned to its group of 16 streams (SG16)"},
  });
}

TEST(Check, VxmRowReachesOnlyItsStreamGroups) {
  // tsp-v1: row = ALU / 4; row 1 reaches SG4 groups 2..5 (streams 8..23).
  expect_rejected({
      {&tsp(), "vxm.alu4", "add.i8.sat s0e, s8e, s9e", 0,
       "operand 'a': ALU 4 is in row 1, which reaches only SG4 groups {2, 3, 4, 5}; stream 0 is in "
       "group 0"},
      {&tsp(), "vxm.alu4", "add.i8.sat s8e, s9e, s24e", 2,
       "operand 'd': ALU 4 is in row 1, which reaches only SG4 groups {2, 3, 4, 5}; stream 24 is "
       "in group 6"},
      {&tsp(), "vxm.alu7", "mov.i8 s7e, s8e", 0,
       "operand 'a': ALU 7 is in row 1, which reaches only SG4 groups {2, 3, 4, 5}; stream 7 is in "
       "group 1"},
      {&tsp(), "vxm.alu0", "add.i8.sat s0e, s1e, s16e", 2,
       "operand 'd': ALU 0 is in row 0, which reaches only SG4 groups {0, 1, 2, 3}; stream 16 is "
       "in group 4"},
      {&tsp(), "vxm.alu15", "neg.i8 s8e, s0e", 0,
       "operand 'a': ALU 15 is in row 3, which reaches only SG4 groups {6, 7, 0, 1}; stream 8 is "
       "in group 2"},
  });
  for (int s = 8; s < 24; ++s)
    EXPECT_FALSE(check_on(tsp(), "vxm.alu4", "mov.i8 s" + std::to_string(s) + "e, s8w"))
        << "stream " << s;
}

TEST(Check, LargeOnlyOpsOnASmallAlu) {
  // tsp-v1: ALU 1 is small (large: 0 2 5 7 8 10 13 15).
  EXPECT_FALSE(tsp().chip.vxm.is_large(1));
  expect_rejected({
      {&tsp(), "vxm.alu1", "exp.fp32 s0e, s4e", -1,
       "'exp' needs a large ALU; ALU 1 (vxm.alu1) is small (chip.vxm.large_alus)"},
      {&tsp(), "vxm.alu1", "cast.i8.fp32 s0e, s4e", -1,
       "'cast' needs a large ALU; ALU 1 (vxm.alu1) is small (chip.vxm.large_alus)"},
      {&tsp(), "vxm.alu1", "max.i8 s0e, s1e, s2e", -1,
       "'max' needs a large ALU; ALU 1 (vxm.alu1) is small (chip.vxm.large_alus)"},
      {&tsp(), "vxm.alu3", "tanh.fp16 s0e, s2e", -1,
       "'tanh' needs a large ALU; ALU 3 (vxm.alu3) is small (chip.vxm.large_alus)"},
  });
  // The large ALUs run them (within the streams their row reaches).
  EXPECT_FALSE(check_on(tsp(), "vxm.alu0", "max.i8 s0e, s1e, s8e"));
  EXPECT_FALSE(check_on(tsp(), "vxm.alu2", "exp.fp32 s0e, s4e"));
  EXPECT_FALSE(check_on(tsp(), "vxm.alu5", "cast.i8.fp32 s8e, s12e"));
  EXPECT_FALSE(check_on(tsp(), "vxm.alu15", "tanh.bf16 s24e, s0e"));
}

TEST(Check, AddressesAgainstTheDepth) {
  expect_rejected({
      {&tiny(), "mem.w0", "read 0x0100, s0e", 0,
       "operand 'addr': address 256 is beyond the slice (chip.mem.depth = 256)"},
      {&tiny(), "mem.e3", "write 300, s0e", 0,
       "operand 'addr': address 300 is beyond the slice (chip.mem.depth = 256)"},
      {&tsp(), "mem.w0", "read 0x2000, s0e", 0,
       "operand 'addr': address 8192 is beyond the slice (chip.mem.depth = 8192)"},
  });
  EXPECT_FALSE(check_on(tiny(), "mem.w0", "read 0x00ff, s0e"));
  EXPECT_FALSE(check_on(tsp(), "mem.w0", "read 0x1fff, s0e"));
}

TEST(Check, MxmRows) {
  expect_rejected({
      {&tsp(), "mxm.p0.wt", "lw.i8 s16e, 8, 0", 1, "operand 'row': row 8 is not a multiple of 16"},
      {&tsp(), "mxm.p0.wt", "lw.i8 s16e, 320, 0", 1,
       "operand 'row': row 320 is beyond the plane (chip.mxm.rows = 320)"},
      {&tiny(), "mxm.p1.wt", "iw.str.i8 s0e, 32", 1,
       "operand 'row': row 32 is beyond the plane (chip.mxm.rows = 32)"},
      {&tiny(), "mxm.p1.wt", "iw.str.i8 s0e, 24", 1,
       "operand 'row': row 24 is not a multiple of 16"},
  });
  EXPECT_FALSE(check_on(tiny(), "mxm.p1.wt", "iw.str.i8 s0e, 16"));
}

TEST(Check, ConfigSuperlanes) {
  expect_rejected({
      {&tsp(), "mem.w0", "config 0", 0, "operand 'superlanes': must be 1..20, got 0"},
      {&tsp(), "vxm.alu3", "config 21", 0, "operand 'superlanes': must be 1..20, got 21"},
      {&tiny(), "mem.w0", "config 3", 0, "operand 'superlanes': must be 1..2, got 3"},
  });
  EXPECT_FALSE(check_on(tsp(), "mem.w0", "config 1"));
  EXPECT_FALSE(check_on(tiny(), "c2c.l3", "config 2"));
}

TEST(Check, ShiftBitsAndCasts) {
  expect_rejected({
      {&tsp(), "vxm.alu0", "shl.i8 s0e, s1e, 8", 2,
       "operand 'bits': shift by 8 is not less than the element width (8 bits)"},
      {&tsp(), "vxm.alu0", "shr.i16 s0e, s2e, 16", 2,
       "operand 'bits': shift by 16 is not less than the element width (16 bits)"},
      {&tsp(), "vxm.alu0", "shl.i32 s0e, s4e, 200", 2,
       "operand 'bits': shift by 200 is not less than the element width (32 bits)"},
      {&tsp(), "vxm.alu0", "cast.fp32.fp32 s0e, s4e", -1, "cast from a type to itself; use mov"},
      {&tsp(), "vxm.alu0", "cast.i8.i8 s0e, s1e", -1, "cast from a type to itself; use mov"},
  });
}

TEST(Check, OtherOperandRules) {
  expect_rejected({
      {&tsp(), "sxm.w.rotate", "rotate.n5 s0e, s8e", -1,
       "rotation n5 is not supported by this chip (chip.sxm.rotate_sizes)"},
      {&tsp(), "mem.w0", "repeat 3, 0", 1, "operand 'd': the repeat distance must be at least 1"},
      {&tsp(), "sxm.w.shift", "shift.i8.n s0e, s1e, 321", 2,
       "operand 'lanes': 321 lanes is more than the chip's 320"},
      {&tiny(), "sxm.w.shift", "select.i8 s0e, s1e, s2e, 33", 3,
       "operand 'lanes': 33 lanes is more than the chip's 32"},
  });
}

TEST(Check, RotateInputIsAnUnalignedRun) {
  for (const char* text : {"rotate.n4 s1e, s16e", "rotate.n4 s6e, s16e"}) {
    const auto p = check_on(tsp(), "sxm.w.rotate", text);
    EXPECT_FALSE(p.has_value()) << text << ": " << p->message;
  }
}

// --- text of one instruction ----------------------------------------------------------------

TEST(Format, CanonicalText) {
  EXPECT_EQ(format(ins("add.i8.sat s0e, s4e, s8w")), "add.i8.sat s0e, s4e, s8w");
  EXPECT_EQ(format(ins("read 64, s5e")), "read 0x0040, s5e");
  EXPECT_EQ(format(ins("read 0x12345, s5e")), "read 0x12345, s5e");
  EXPECT_EQ(format(ins("iw.buf 0")), "iw.buf 0");
  EXPECT_EQ(format(ins("add.fp16 s0e, s2e, s4e")), "add.fp16 s0e, s2e, s4e");
  EXPECT_EQ(format_operand(OperandKind::kStream, stream_arg(31, true)), "s31w");
  EXPECT_EQ(format_operand(OperandKind::kAddr, 0), "0x0000");
  EXPECT_EQ(format_operand(OperandKind::kCount16, 65535), "65535");
  EXPECT_EQ(format_operand(OperandKind::kRow, 304), "304");
}

// --- docs/isa.md --------------------------------------------------------------------------------

TEST(Docs, IsaMarkdownIsUpToDate) {
  const std::string path = std::string(LPU_SOURCE_DIR) + "/docs/isa.md";
  std::ifstream probe(path);
  ASSERT_TRUE(probe.good()) << path << " is missing; generate it with "
                            << "`lpu isa --markdown > docs/isa.md`";
  const std::string doc = read_file(path);
  const std::string md = markdown_reference();
  if (doc != md) {
    std::size_t i = 0;
    while (i < doc.size() && i < md.size() && doc[i] == md[i])
      ++i;
    const std::size_t line = 1 + static_cast<std::size_t>(std::count(
                                     md.begin(), md.begin() + static_cast<long>(i), '\n'));
    FAIL() << "docs/isa.md differs from the ISA table (first difference at byte " << i << ", line "
           << line << "); regenerate it with `lpu isa --markdown > docs/isa.md`";
  }
}

TEST(Docs, MarkdownListsEveryInstruction) {
  const std::string md = markdown_reference();
  for (const auto& op : table()) {
    char oc[8];
    std::snprintf(oc, sizeof oc, "0x%02x", op.opcode);
    EXPECT_NE(md.find(std::string("| ") + oc + " | `" + op.mnemonic + "` |"), std::string::npos)
        << op.mnemonic;
  }
}

}  // namespace
