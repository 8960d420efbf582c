// Programs in text form (.lpuasm): the every-opcode example and its round trips through the
// canonical text and the binary form, programs for a modified architecture, and every class of
// rejected text with its exact FILE:LINE:COL.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
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

namespace fs = std::filesystem;
using lpu::InputError;
using namespace lpu::isa;

// --- helpers ----------------------------------------------------------------------------------

const std::string kExample =
    std::string(LPU_SOURCE_DIR) + "/testbenches/programs/every_opcode.lpuasm";

const char* const kFile = "prog.lpuasm";
const std::string kHead = ".lpuasm 1\n.arch tiny\n";

/// Parses `text`; expects an InputError at the `nth` `needle` (+ `shift` columns) whose message
/// contains `fragment`.
void expect_text_error(const std::string& text, const std::string& needle,
                       const std::string& fragment, int nth = 0, int shift = 0) {
  const InputError e = input_error([&] { parse_lpuasm(text, kFile); });
  EXPECT_EQ(e.where(), loc(kFile, text, needle, nth, shift)) << e.what();
  EXPECT_TRUE(contains(e.message(), fragment));
}

/// A row of 32 bytes (one tiny vector) in hex.
std::string hex_row(int first) {
  std::string s;
  char b[3];
  for (int i = 0; i < 32; ++i) {
    std::snprintf(b, sizeof b, "%02x", (first + i) & 0xff);
    s += b;
  }
  return s;
}

std::uint16_t qid(const Program& p, const std::string& name) {
  const auto q = lpu::arch::find_queue(lpu::arch::chip_queues(p.arch.chip), name);
  if (!q) throw std::runtime_error("test bug: no queue " + name);
  return q->id;
}

const QueueProgram* queue_of(const Program& p, std::uint32_t chip, const std::string& name) {
  const std::uint16_t id = qid(p, name);
  for (const auto& c : p.chips)
    if (c.chip == chip)
      for (const auto& q : c.queues)
        if (q.queue == id) return &q;
  return nullptr;
}

// --- the every-opcode example --------------------------------------------------------------------

TEST(Example, Parses) {
  const Program p = load_lpuasm(kExample);
  EXPECT_EQ(p.arch.name, "tiny");
  EXPECT_EQ(p.arch.hash, lpu::arch::load("tiny").hash);
  EXPECT_EQ(p.arch.canonical, lpu::arch::load("tiny").canonical);
  ASSERT_TRUE(p.predicted_cycles.has_value());
  EXPECT_EQ(*p.predicted_cycles, 420u);
  EXPECT_EQ(p.instruction_count(), 53u);
  ASSERT_EQ(p.chips.size(), 1u);
  EXPECT_EQ(p.chips[0].chip, 0u);
  EXPECT_EQ(p.tensors.size(), 3u);
  EXPECT_EQ(p.images.size(), 1u);
  // Queues in ascending id order, none empty.
  std::vector<std::uint16_t> ids;
  for (const auto& q : p.chips[0].queues) {
    ids.push_back(q.queue);
    EXPECT_FALSE(q.entries.empty());
  }
  const std::vector<std::string> names = {"mem.w0",       "vxm.alu0",         "vxm.alu4",
                                          "mxm.p0.wt",    "mxm.p0.abc",       "mxm.p0.acc",
                                          "sxm.w.shift",  "sxm.w.permute",    "sxm.w.distribute",
                                          "sxm.w.rotate", "sxm.e.transpose0", "c2c.l0"};
  std::vector<std::uint16_t> expected;
  for (const auto& n : names)
    expected.push_back(qid(p, n));
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(expected, (std::vector<std::uint16_t>{0, 8, 12, 24, 25, 26, 30, 31, 32, 33, 40, 42}));
}

TEST(Example, EveryOpcodeAppears) {
  const Program p = load_lpuasm(kExample);
  std::set<int> seen;
  for (const auto& c : p.chips)
    for (const auto& q : c.queues)
      for (const auto& e : q.entries)
        seen.insert(e.instr.opcode);
  for (const auto& op : table())
    EXPECT_TRUE(seen.count(op.opcode)) << op.mnemonic << " does not appear in the example";
  EXPECT_EQ(seen.size(), table().size());
}

TEST(Example, TextRoundTrip) {
  const std::string src = read_file(kExample);
  const Program p0 = parse_lpuasm(src, kExample);
  const std::string t1 = to_lpuasm(p0);
  const Program p1 = parse_lpuasm(t1, "t1.lpuasm");
  EXPECT_EQ(to_lpubin(p1), to_lpubin(p0));
  EXPECT_EQ(to_lpuasm(p1), t1);  // the canonical text is a fixed point
  EXPECT_EQ(p1.arch.hash, p0.arch.hash);
  EXPECT_EQ(content_hash(p1), content_hash(p0));
}

TEST(Example, BinaryRoundTrip) {
  const std::string src = read_file(kExample);
  const Program p0 = parse_lpuasm(src, kExample);
  const std::string t1 = to_lpuasm(p0);
  const std::vector<std::uint8_t> bin = to_lpubin(p0);
  const Program pb = from_lpubin(bin, "x.lpubin");
  EXPECT_EQ(to_lpuasm(pb), t1);
  // bin -> text -> bin gives the same bytes.
  EXPECT_EQ(to_lpubin(parse_lpuasm(to_lpuasm(pb), "again.lpuasm")), bin);
  EXPECT_EQ(to_lpubin(pb), bin);
  // The content hash follows every part of the program: code, images, architecture.
  EXPECT_EQ(content_hash(pb), content_hash(p0));
  Program image = p0;
  image.images[0].bytes[5] ^= 1;
  EXPECT_NE(content_hash(image), content_hash(p0));
  Program code = p0;
  code.chips[0].queues[0].entries[0].cycle += 1;
  EXPECT_NE(content_hash(code), content_hash(p0));
  Program cycles = p0;
  cycles.predicted_cycles = 421;
  EXPECT_NE(content_hash(cycles), content_hash(p0));
}

TEST(Example, SaveAndLoadFiles) {
  const fs::path dir = scratch_dir();
  const Program p0 = load_lpuasm(kExample);
  save_lpubin(p0, (dir / "x.lpubin").string());
  const Program p1 = load_lpubin((dir / "x.lpubin").string());
  EXPECT_EQ(to_lpubin(p1), to_lpubin(p0));
  const InputError e = input_error([&] { load_lpubin((dir / "none.lpubin").string()); });
  EXPECT_EQ(e.where(), (dir / "none.lpubin").string());
  EXPECT_EQ(e.message(), "cannot read file");
  const InputError t = input_error([&] { load_lpuasm((dir / "none.lpuasm").string()); });
  EXPECT_EQ(t.message(), "cannot read file");
}

TEST(Example, DecodedValues) {
  const Program p = from_lpubin(to_lpubin(load_lpuasm(kExample)), "x.lpubin");

  const QueueProgram* mem = queue_of(p, 0, "mem.w0");
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ(mem->entries.size(), 10u);
  const Entry& read = mem->entries[0];
  EXPECT_EQ(read.cycle, 0u);
  EXPECT_EQ(read.instr.opcode, 0x10);
  EXPECT_EQ(read.instr.arg[0], 0u);
  EXPECT_EQ(read.instr.arg[1], stream_arg(0, false));
  ASSERT_TRUE(read.done.has_value());
  EXPECT_EQ(*read.done, 3u);
  EXPECT_TRUE(read.expect.empty());
  const Entry& repeat = mem->entries[1];
  EXPECT_EQ(repeat.cycle, 1u);
  EXPECT_EQ(format(repeat.instr), "repeat 3, 1");
  EXPECT_FALSE(repeat.done.has_value());
  EXPECT_EQ(mem->entries[2].cycle, 10u);
  EXPECT_EQ(mem->entries[2].instr.arg[0], 0x20u);
  EXPECT_EQ(mem->entries[2].instr.arg[1], stream_arg(1, true));
  EXPECT_EQ(mem->entries[9].cycle, 41u);
  EXPECT_EQ(format(mem->entries[9].instr), "config 2");

  const QueueProgram* alu0 = queue_of(p, 0, "vxm.alu0");
  ASSERT_NE(alu0, nullptr);
  ASSERT_EQ(alu0->entries.size(), 21u);
  const Entry& add = alu0->entries[0];
  EXPECT_EQ(add.cycle, 5u);
  EXPECT_EQ(add.instr.opcode, 0x20);
  EXPECT_EQ(add.instr.mod[0], static_cast<std::uint8_t>(DType::kI8));
  EXPECT_EQ(add.instr.mod[1], 1);  // sat
  ASSERT_TRUE(add.done.has_value());
  EXPECT_EQ(*add.done, 8u);
  ASSERT_EQ(add.expect.size(), 1u);
  EXPECT_EQ(add.expect[0].queue, qid(p, "mem.w0"));
  EXPECT_EQ(add.expect[0].index, 0u);
  EXPECT_EQ(format(alu0->entries[18].instr), "cast.i8.fp32 s0e, s4e");
  EXPECT_EQ(alu0->entries[20].cycle, 25u);

  const QueueProgram* alu4 = queue_of(p, 0, "vxm.alu4");
  ASSERT_NE(alu4, nullptr);
  EXPECT_EQ(alu4->entries[0].instr.arg[2], 0x8au);  // s10w
  EXPECT_EQ(alu4->entries[0].instr.mod[1], 2);      // mod

  const QueueProgram* wt = queue_of(p, 0, "mxm.p0.wt");
  ASSERT_NE(wt, nullptr);
  ASSERT_EQ(wt->entries.size(), 5u);
  EXPECT_EQ(wt->entries[1].instr.arg[1], 16u);
  EXPECT_EQ(wt->entries[1].instr.arg[2], 0u);    // staging buffer 0
  EXPECT_EQ(wt->entries[3].instr.opcode, 0x65);  // clw
  EXPECT_EQ(wt->entries[4].cycle, 30u);
  EXPECT_EQ(wt->entries[4].instr.arg[0], stream_arg(0, true));

  const QueueProgram* c2c = queue_of(p, 0, "c2c.l0");
  ASSERT_NE(c2c, nullptr);
  ASSERT_EQ(c2c->entries.size(), 3u);
  EXPECT_EQ(c2c->entries[0].cycle, 50u);
  EXPECT_EQ(c2c->entries[1].cycle, 60u);
  EXPECT_EQ(c2c->entries[2].cycle, 70u);
  EXPECT_EQ(c2c->entries[1].instr.arg[0], stream_arg(6, true));

  // The image: two vectors of mem.w1, 0x00..0x1f then 0xff..0xe0.
  ASSERT_EQ(p.images.size(), 1u);
  const Image& im = p.images[0];
  EXPECT_EQ(im.chip, 0u);
  EXPECT_EQ(im.slice, qid(p, "mem.w1"));
  EXPECT_EQ(im.addr, 0u);
  ASSERT_EQ(im.bytes.size(), 64u);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(im.bytes[static_cast<std::size_t>(i)], i);
    EXPECT_EQ(im.bytes[static_cast<std::size_t>(32 + i)], 255 - i);
  }

  // Tensors and their placements.
  ASSERT_EQ(p.tensors.size(), 3u);
  const Tensor& x = p.tensors[0];
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.role, TensorRole::kInput);
  EXPECT_EQ(x.dtype, DType::kI8);
  EXPECT_EQ(x.shape, (std::vector<std::uint64_t>{4, 32}));
  EXPECT_EQ(x.layout, "rows");
  ASSERT_EQ(x.placements.size(), 1u);
  EXPECT_EQ(x.placements[0].slice, qid(p, "mem.w0"));
  EXPECT_EQ(x.placements[0].addr, 0u);
  EXPECT_EQ(x.placements[0].vectors, 4u);
  EXPECT_EQ(p.tensors[1].role, TensorRole::kConstant);
  const Tensor& y = p.tensors[2];
  EXPECT_EQ(y.name, "y");
  EXPECT_EQ(y.role, TensorRole::kOutput);
  EXPECT_EQ(y.dtype, DType::kI32);
  EXPECT_EQ(y.layout, "rows");
  ASSERT_EQ(y.placements.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(y.placements[i].slice, qid(p, "mem.e" + std::to_string(i)));
    EXPECT_EQ(y.placements[i].addr, 0x10u);
    EXPECT_EQ(y.placements[i].vectors, 4u);
  }
}

TEST(Example, CanonicalTextSpotChecks) {
  const std::string t1 = to_lpuasm(load_lpuasm(kExample));
  EXPECT_TRUE(contains(t1, "\n.lpuasm 1\n.arch tiny\n.predicted 420\n"));
  EXPECT_EQ(t1.find("\n.set "), std::string::npos);
  EXPECT_TRUE(contains(t1, "  @0      read 0x0000, s0e  [done=3]\n"));
  EXPECT_TRUE(contains(t1, "  @5      add.i8.sat s0e, s1e, s2e  [done=8 expect=mem.w0#0]\n"));
  EXPECT_TRUE(contains(t1, "\n.queue sxm.e.transpose0\n  @8      transpose s0e, s16w\n"));
  EXPECT_TRUE(contains(t1,
                       ".tensor y role=output chip=0 dtype=i32 shape=[4,32] layout=rows "
                       "at=mem.e0:0x0010+4,mem.e1:0x0010+4,mem.e2:0x0010+4,mem.e3:0x0010+4\n"));
  EXPECT_TRUE(contains(t1, ".image chip=0 slice=mem.w1 addr=0x0000\n  " + hex_row(0) + "\n"));
  EXPECT_TRUE(contains(t1, "Architecture tiny, hash " + lpu::arch::load("tiny").hash_hex()));
}

// --- other programs that round-trip ------------------------------------------------------------

/// text -> program -> canonical text -> program -> binary -> program -> text, all equal.
void expect_round_trip(const Program& p0) {
  const std::string t1 = to_lpuasm(p0);
  const Program p1 = parse_lpuasm(t1, "t1.lpuasm");
  const auto bin = to_lpubin(p0);
  EXPECT_EQ(to_lpubin(p1), bin);
  const Program pb = from_lpubin(bin, "x.lpubin");
  EXPECT_EQ(to_lpuasm(pb), t1);
  EXPECT_EQ(to_lpubin(pb), bin);
  EXPECT_EQ(pb.arch.hash, p0.arch.hash);
}

TEST(RoundTrip, CustomArchitecture) {
  const std::string src = kHead +
                          ".set chip.mem.depth=512\n"
                          ".set name=\"tiny-512\"\n"
                          ".tensor big role=scratch chip=0 dtype=fp16 shape=[8,16] layout=rows "
                          "at=mem.e3:0x01f0+8,mem.e2:0x01f0+8\n"
                          ".queue mem.w0\n"
                          "  @0 read 300, s0e\n"
                          "  @1 write 0x1ff, s1w\n";
  const Program p = parse_lpuasm(src, kFile);
  EXPECT_EQ(p.arch.name, "tiny-512");
  EXPECT_EQ(p.arch.chip.mem.depth, 512);
  EXPECT_EQ(p.arch.hash, lpu::arch::load("tiny", {"chip.mem.depth=512", "name=\"tiny-512\""}).hash);
  EXPECT_NE(p.arch.hash, lpu::arch::load("tiny").hash);
  const std::string t1 = to_lpuasm(p);
  EXPECT_TRUE(contains(t1, "\n.arch tiny\n.set chip.mem.depth=512\n.set name=\"tiny-512\"\n"));
  EXPECT_TRUE(contains(t1, "Architecture tiny-512, hash " + p.arch.hash_hex()));
  EXPECT_TRUE(contains(t1, "shape=[8,16] layout=rows at=mem.e3:0x01f0+8,mem.e2:0x01f0+8"));
  expect_round_trip(p);
  // The same program without the .set lines is rejected: address 300 is beyond tiny's 256.
  std::string plain = src;
  plain.erase(plain.find(".set"), plain.find(".tensor") - plain.find(".set"));
  expect_text_error(plain, "300", "address 300 is beyond the slice (chip.mem.depth = 256)");
}

TEST(RoundTrip, ArchitectureFromAFile) {
  const fs::path dir = scratch_dir();
  std::ofstream(dir / "wide.json") << R"({"base": "tiny", "name": "tiny-4sl",
      "chip": {"superlanes": 4, "mxm": {"cols": 64}}})";
  const std::string src =
      ".lpuasm 1\n.arch wide.json\n.queue mem.w0\n  @0 read 0, s0e\n"
      ".image chip=0 slice=mem.w0 addr=0x0000\n  " +
      hex_row(0) + hex_row(32) + "\n.endimage\n";
  std::ofstream(dir / "p.lpuasm") << src;
  const Program p = load_lpuasm((dir / "p.lpuasm").string());  // .arch relative to the program
  EXPECT_EQ(p.arch.name, "tiny-4sl");
  EXPECT_EQ(p.arch.chip.lanes(), 64);
  ASSERT_EQ(p.images.size(), 1u);
  EXPECT_EQ(p.images[0].bytes.size(), 64u);
  const std::string t1 = to_lpuasm(p);
  EXPECT_TRUE(contains(t1, ".arch tiny\n"));
  EXPECT_TRUE(contains(t1, ".set chip.mxm.cols=64\n"));
  EXPECT_TRUE(contains(t1, ".set chip.superlanes=4\n"));
  expect_round_trip(p);
}

TEST(RoundTrip, TwoChips) {
  const std::string src = kHead +
                          ".set system.topology=\"fully_connected\"\n"
                          ".set system.chips=2\n"
                          ".tensor out role=output chip=1 dtype=i8 shape=[32] layout=rows "
                          "at=mem.e0:0x0000+1\n"
                          ".image chip=1 slice=mem.e0 addr=0x0005\n  " +
                          hex_row(7) +
                          "\n.endimage\n"
                          ".chip 1\n.queue c2c.l0\n  @100 recv s3w\n"
                          ".chip 0\n.queue c2c.l0\n  @0 send s3e  [done=100]\n"
                          ".queue mem.e1\n  @7 read 0, s3e  [expect=c2c.l0#0]\n";
  const Program p = parse_lpuasm(src, kFile);
  ASSERT_EQ(p.chips.size(), 2u);
  EXPECT_EQ(p.chips[0].chip, 0u);  // ascending chip numbers whatever the text order
  EXPECT_EQ(p.chips[1].chip, 1u);
  EXPECT_EQ(p.arch.system.links.size(), 1u);
  EXPECT_EQ(p.images[0].chip, 1u);
  EXPECT_EQ(p.images[0].addr, 5u);
  EXPECT_EQ(p.tensors[0].chip, 1u);
  expect_round_trip(p);
  const std::string t1 = to_lpuasm(p);
  EXPECT_TRUE(contains(t1, "\n.chip 1\n\n.queue c2c.l0\n  @100    recv s3w\n"));
}

TEST(RoundTrip, LenientSpellings) {
  // Upper case, extra blanks, comments, hex and decimal numbers: the canonical text is the same.
  const std::string a = kHead + ".queue MEM.W0\n  @0x10   READ   0x10 ,S2E ; comment\n";
  const std::string b = kHead + ".queue mem.w0\n@16 read 16, s2e\n";
  EXPECT_EQ(to_lpuasm(parse_lpuasm(a, "a")), to_lpuasm(parse_lpuasm(b, "b")));
  EXPECT_EQ(to_lpubin(parse_lpuasm(a, "a")), to_lpubin(parse_lpuasm(b, "b")));
}

TEST(RoundTrip, BusyWindowsEndExactly) {
  // nop n holds the queue for n cycles; repeat n, d for d * (n - 1) more.
  const std::string src = kHead +
                          ".queue mem.w0\n"
                          "  @0 nop 5\n"
                          "  @5 read 0, s0e\n"
                          "  @6 repeat 3, 2\n"
                          "  @11 write 1, s1e\n";
  EXPECT_EQ(parse_lpuasm(src, kFile).instruction_count(), 4u);
}

TEST(RoundTrip, SemicolonInsideAnArchitectureString) {
  // A ';' inside a quoted .set value is not a comment (the presets' assumption texts have '; ').
  const fs::path dir = scratch_dir();
  std::ofstream(dir / "semi.json") << R"({"base": "tiny", "description": "tiny; modified",
      "assumptions": {"chip.mem.banks": "two; as in tsp-v1"}})";
  std::ofstream(dir / "p.lpuasm") << ".lpuasm 1\n.arch semi.json ; a comment\n.queue mem.w0\n"
                                     "  @0 nop 1 ; another\n";
  const Program p = load_lpuasm((dir / "p.lpuasm").string());
  EXPECT_EQ(p.arch.description, "tiny; modified");
  const std::string t1 = to_lpuasm(p);
  EXPECT_TRUE(contains(t1, "\n.set description=\"tiny; modified\"\n"));
  const Program back = parse_lpuasm(t1, "t1.lpuasm");
  EXPECT_EQ(back.arch.description, "tiny; modified");
  EXPECT_EQ(back.arch.assumptions.at("chip.mem.banks"), "two; as in tsp-v1");
  EXPECT_EQ(back.arch.hash, p.arch.hash);
  expect_round_trip(p);
  // Written directly in a program, with a comment after it.
  const Program q = parse_lpuasm(kHead + ".set description=\"a; b\" ; comment \"x\n", kFile);
  EXPECT_EQ(q.arch.description, "a; b");
}

TEST(RoundTrip, TensorWordsTheTextFormCannotHoldAreRejected) {
  // Names and layouts are single words in the text form, so neither form accepts other ones.
  Program p = load_lpuasm(kExample);
  p.tensors[1].name = "a b";
  const auto bin = to_lpubin(p);
  const InputError e = input_error([&] { from_lpubin(bin, "x.lpubin"); });
  // The TENS section body starts 16 bytes after its tag; then a count (4) and tensor 0: name "x"
  // (4 + 1), role (1), chip (4), dtype (1), rank (1), shape [4,32] (16), layout "rows" (4 + 4),
  // one placement (4 + 10): 50 bytes.
  const std::string tag = "TENS";
  const auto tens = std::search(bin.begin(), bin.end(), tag.begin(), tag.end()) - bin.begin();
  EXPECT_EQ(e.where(), "x.lpubin:byte " + std::to_string(tens + 16 + 4 + 50) + " (tensor 1)");
  EXPECT_EQ(e.message(),
            "tensor name 'a b' must be a non-empty word without spaces or any of ;=\"[],");
  Program q = load_lpuasm(kExample);
  q.tensors[0].layout = "";
  EXPECT_TRUE(contains(input_error([&] { from_lpubin(to_lpubin(q), "x.lpubin"); }).message(),
                       "tensor layout '' must be a non-empty word"));
  // From text.
  expect_text_error(kHead + ".tensor a\"b role=input chip=0 dtype=i8 shape=[1] layout=rows\n",
                    "a\"b", "tensor name 'a\"b' must be a non-empty word");
  expect_text_error(kHead + ".tensor t role=input chip=0 dtype=i8 shape=[1] layout=a,b\n", "t role",
                    "tensor layout 'a,b' must be a non-empty word");
}

// --- rejected text
// --------------------------------------------------------------------------------

TEST(TextErrors, UnknownOpcodeSuggestsNearest) {
  const std::string t = kHead + ".queue vxm.alu0\n  @0 addd.i8.sat s0e, s1e, s2e\n";
  expect_text_error(t, "addd", "unknown instruction 'addd.i8.sat'; did you mean 'add'");
  const std::string u = kHead + ".queue mem.w0\n  @0    raed 0, s0e\n";
  expect_text_error(u, "raed", "did you mean 'read'");
  const std::string v = kHead + ".queue mem.w0\n  @0 zzz\n";
  const InputError e = input_error([&] { parse_lpuasm(v, kFile); });
  EXPECT_EQ(e.where(), loc(kFile, v, "zzz"));
  EXPECT_EQ(e.message(), "unknown instruction 'zzz'");  // nothing close: no suggestion
}

TEST(TextErrors, BadModifier) {
  const std::string h = kHead + ".queue vxm.alu0\n";
  expect_text_error(h + "  @0 add.i9.sat s0e, s1e, s2e\n", "add.i9",
                    "'.i9' is not a dtype for 'add' (expected i8, i16, i32, fp16, bf16, fp32)");
  expect_text_error(h + "  @0 cmp.i8.lq s0e, s1e, s2e\n", "cmp.i8",
                    "'.lq' is not a comparison for 'cmp' (expected eq, ne, lt, le, gt, ge)");
  expect_text_error(h + "  @0 cmp.i8 s0e, s1e, s2e\n", "cmp.i8",
                    "'cmp' needs a comparison modifier (eq, ne, lt, le, gt, ge)");
  expect_text_error(h + "  @0 add.i8.sat.x s0e, s1e, s2e\n", "add.i8",
                    "'add.i8.sat.x': too many modifiers ('.x' is extra)");
  expect_text_error(h + "  @0 add.i8.sat s0e, s1e, s2e\n  @1 mov s0e, s1e\n", "mov",
                    "'mov' needs a dtype modifier");
  expect_text_error(kHead + ".queue sxm.w.rotate\n  @0 rotate.n2 s0e, s4e\n", "rotate.n2",
                    "'.n2' is not a rotation for 'rotate' (expected n3, n4, n5, n6, n7, n8)");
  // Integer arithmetic without an overflow mode is caught by the ISA check, at the mnemonic.
  expect_text_error(h + "  @0 add.i8 s0e, s1e, s2e\n", "add.i8",
                    "'add.i8' needs an overflow mode: .sat or .mod");
}

TEST(TextErrors, WrongOperandCount) {
  const std::string h = kHead + ".queue vxm.alu0\n";
  expect_text_error(h + "  @0 add.i8.sat s0e, s1e\n", "add.i8",
                    "'add' takes 3 operand(s): a, b, d; got 2");
  expect_text_error(h + "  @0 nop 1,77\n", "77", "'nop' takes 1 operand(s): n; got 2");
  expect_text_error(h + "  @0 sync 9\n", "9\n", "'sync' takes 0 operand(s): none; got 1");
  expect_text_error(h + "  @0 nop 1,\n", "1,", "operand missing after ','", 0, 2);
  expect_text_error(h + "  @0 nop , 1\n", "nop", "empty operand", 0, 4);
}

TEST(TextErrors, OperandOutOfRangeForTheArchitecture) {
  const std::string m = kHead + ".queue mem.w0\n";
  expect_text_error(m + "  @0 read 0x0000,s40e\n", "s40e",
                    "operand 's': stream 40 does not exist (chip.streams.per_direction = 32)");
  expect_text_error(m + "  @0 read 0x0000,s200e\n", "200",
                    "stream id 200 is too large (at most 127)");
  expect_text_error(m + "  @0 read 300, s0e\n", "300",
                    "operand 'addr': address 300 is beyond the slice (chip.mem.depth = 256)");
  expect_text_error(m + "  @0 read 0x1000000, s0e\n", "0x1000000",
                    "operand 'addr' 0x1000000 is too large (at most 16777215)");
  expect_text_error(m + "  @0 read 0,x0e\n", "x0e",
                    "operand 's' is a stream, written like s3e (eastward) or s3w; got 'x0e'");
  expect_text_error(m + "  @0 config 3\n", "3\n", "operand 'superlanes': must be 1..2, got 3");
  expect_text_error(m + "  @0 nop 65536\n", "65536",
                    "operand 'n' 65536 is too large (at most 65535)");
}

TEST(TextErrors, QueueThatDoesNotExist) {
  expect_text_error(kHead + ".queue mem.w4\n  @0 nop 1\n", "mem.w4",
                    "no queue named 'mem.w4' on this chip; did you mean 'mem.w0'");
  expect_text_error(kHead + ".queue mxm.p2.wt\n", "mxm.p2.wt",
                    "no queue named 'mxm.p2.wt' on this chip; did you mean 'mxm.p0.wt'");
  expect_text_error(kHead + ".queue vxm.alu16\n", "vxm.alu16", "no queue named 'vxm.alu16'");
}

TEST(TextErrors, VxmRowRuleAndMxmRows) {
  expect_text_error(kHead + ".queue vxm.alu4\n  @0 add.i8.sat s0e, s8e, s9e\n", "s0e",
                    "operand 'a': ALU 4 is in row 1, which reaches only SG4 groups {2, 3, 4, 5}; "
                    "stream 0 is in group 0");
  expect_text_error(kHead + ".queue vxm.alu1\n  @0 exp.fp32 s0e, s4e\n", "exp",
                    "'exp' needs a large ALU; ALU 1 (vxm.alu1) is small");
  expect_text_error(kHead + ".queue mxm.p1.wt\n  @0 lw.i8 s16e,32, 0\n", ",32",
                    "operand 'row': row 32 is beyond the plane (chip.mxm.rows = 32)", 0, 1);
  expect_text_error(kHead + ".queue mxm.p1.wt\n  @0 lw.i8 s16e,8, 0\n", ",8",
                    "operand 'row': row 8 is not a multiple of 16", 0, 1);
  expect_text_error(kHead + ".queue mxm.p1.wt\n  @0 lw.i8 s8e, 0, 0\n", "s8e",
                    "operand 's': s8 is not aligned to its group of 16 streams (SG16)");
}

TEST(TextErrors, InstructionOnAQueueThatCannotRunIt) {
  expect_text_error(kHead + ".queue vxm.alu0\n  @0 read 0x0000, s0e\n", "read",
                    "'read' cannot run on queue vxm.alu0 (it runs on MEM queues such as mem.w0)");
  expect_text_error(kHead + ".queue c2c.l1\n  @0 nop 1\n  @1 transpose s0e, s16e\n", "transpose",
                    "'transpose' cannot run on queue c2c.l1");
}

TEST(TextErrors, TwoInstructionsAtTheSameCycle) {
  const std::string t = kHead + ".queue mem.w0\n  @5 read 0x0000, s0e\n  @5 write 0x0001, s1e\n";
  expect_text_error(t, "@5", "two instructions of queue mem.w0 at cycle 5 (instructions 0 and 1)",
                    1);
}

TEST(TextErrors, DecreasingCycles) {
  const std::string t = kHead + ".queue mem.w0\n  @10 read 0x0000, s0e\n  @5 write 1, s1e\n";
  expect_text_error(t, "@5",
                    "cycle 5 comes before the previous instruction's cycle 10: a queue runs in "
                    "order");
}

TEST(TextErrors, InsideANopWindow) {
  const std::string t = kHead + ".queue mem.w0\n  @0 nop 5\n  @4 read 0x0000, s0e\n";
  expect_text_error(t, "@4",
                    "cycle 4 falls while the previous 'nop' keeps queue mem.w0 busy (until cycle "
                    "4)");
}

TEST(TextErrors, InsideARepeatWindow) {
  const std::string t =
      kHead + ".queue mem.w0\n  @0 read 0, s0e\n  @1 repeat 3, 2\n  @5 write 1, s1e\n";
  expect_text_error(t, "@5",
                    "cycle 5 falls while the previous 'repeat' keeps queue mem.w0 busy (until "
                    "cycle 5)");
}

TEST(TextErrors, RepeatWithNoPreviousInstruction) {
  expect_text_error(kHead + ".queue mem.w0\n  @0 repeat 2, 1\n", "repeat",
                    "'repeat' must follow an instruction of a functional unit on the same queue");
  // Another queue's instruction does not count, nor does an ICU one.
  expect_text_error(kHead + ".queue mem.w0\n  @0 read 0, s0e\n.queue mem.w1\n  @1 repeat 2, 1\n",
                    "repeat", "'repeat' must follow an instruction of a functional unit");
  expect_text_error(kHead + ".queue mem.w0\n  @0 nop 1\n  @1 repeat 2, 1\n", "repeat",
                    "'repeat' must follow an instruction of a functional unit");
  expect_text_error(kHead + ".queue mem.w0\n  @0 read 0, s0e\n  @1 repeat 2,0\n", ",0",
                    "operand 'd': the repeat distance must be at least 1", 0, 1);
}

TEST(TextErrors, MissingHeader) {
  const std::string t = "; a program\n\n.arch tiny\n.queue mem.w0\n";
  expect_text_error(t, ".arch", "the first directive must be '.lpuasm 1'");
  const std::string u = "@0 nop 1\n";
  expect_text_error(u, "@0", "the first directive must be '.lpuasm 1'");
  for (const std::string empty : {"", "; only a comment\n\n"}) {
    const InputError e = input_error([&] { parse_lpuasm(empty, kFile); });
    EXPECT_EQ(e.where(), kFile);
    EXPECT_EQ(e.message(), "empty program: expected '.lpuasm 1'");
  }
  expect_text_error(kHead + ".lpuasm 1\n", ".lpuasm", "'.lpuasm' given twice", 1);
}

TEST(TextErrors, WrongFormatVersion) {
  const std::string t = "; v2\n.lpuasm 2\n.arch tiny\n";
  expect_text_error(t, "2\n.arch", "format version 2 is not supported (this build reads 1)");
  expect_text_error(".lpuasm one\n", "one", "expected format version (a number), got 'one'");
}

TEST(TextErrors, MissingArch) {
  expect_text_error(".lpuasm 1\n.queue mem.w0\n", ".queue", "'.arch' must come before this line");
  expect_text_error(".lpuasm 1\n  @0 nop 1\n", "@0", "'.arch' must come before this line");
  const InputError e = input_error([&] { parse_lpuasm(".lpuasm 1\n", kFile); });
  EXPECT_EQ(e.where(), kFile);
  EXPECT_EQ(e.message(), "missing '.arch NAME'");
  // An architecture that does not exist is reported at its name.
  expect_text_error(".lpuasm 1\n.arch tsp-v9\n.queue mem.w0\n", "tsp-v9",
                    "no preset or file named 'tsp-v9'; did you mean 'tsp-v1'?");
  expect_text_error(kHead + ".arch tsp-v1\n", ".arch", "'.arch' given twice", 1);
}

TEST(TextErrors, UnknownDirective) {
  expect_text_error(kHead + ".tensr x role=input\n", ".tensr",
                    "unknown directive '.tensr'; did you mean '.tensor'?");
  expect_text_error(kHead + "  read 0, s0e\n", "read",
                    "expected a directive (.queue, .chip, ...) or an instruction");
}

TEST(TextErrors, BadImageRows) {
  const std::string im = kHead + ".image chip=0 slice=mem.w1 addr=0x0000\n";
  expect_text_error(im + "  0001\n.endimage\n", "0001",
                    "an image row is one vector: 64 hex digits, this one has 4");
  std::string bad = hex_row(0);
  bad.replace(10, 2, "zz");
  expect_text_error(im + "  " + bad + "\n.endimage\n", "zz", "bad hex digit in image row");
  expect_text_error(im + ".endimage\n", ".endimage", "empty image");
  expect_text_error(kHead + ".endimage\n", ".endimage", "'.endimage' without '.image'");
  expect_text_error(kHead + ".image chip=0 slice=mem.w1 addr=0x00ff\n  " + hex_row(0) + "\n  " +
                        hex_row(0) + "\n.endimage\n",
                    ".image", "image runs past the end of mem.w1 (depth 256)");
  expect_text_error(kHead + ".image chip=0 slice=vxm.alu0 addr=0\n", "vxm.alu0",
                    "'vxm.alu0' is not a MEM slice of this chip");
  expect_text_error(kHead + ".image chip=0 slize=mem.w0 addr=0\n", "slize",
                    "unknown key 'slize' for .image; did you mean 'slice'?");
}

TEST(TextErrors, UnclosedImage) {
  const std::string t = kHead +
                        ".queue mem.w0\n  @0 nop 1\n.image chip=0 slice=mem.w1 addr=0x0000\n  " +
                        hex_row(0) + "\n";
  expect_text_error(t, ".image", "image not closed with '.endimage'");
  const std::string u = kHead + ".image chip=0 slice=mem.w1 addr=0\n  " + hex_row(0) +
                        "\n.image chip=0 slice=mem.w2 addr=0\n";
  expect_text_error(u, ".image", "'.image' inside an image", 1);
}

TEST(TextErrors, TensorPlacements) {
  const std::string t = kHead +
                        ".tensor t role=input chip=0 dtype=i8 shape=[1,32] layout=rows "
                        "at=vxm.alu0:0x0000+1\n";
  expect_text_error(t, "vxm.alu0", "'vxm.alu0' is not a MEM slice of this chip");
  const std::string u = kHead +
                        ".tensor big role=input chip=0 dtype=i8 shape=[5,32] layout=rows "
                        "at=mem.w0:0x0000+1,mem.w0:0x00fe+4\n";
  expect_text_error(u, "big",
                    "tensor 'big' runs past the end of mem.w0 (addresses 254..257, depth 256)");
  const std::string v =
      kHead + ".tensor t role=input chip=0 dtype=i8 shape=[1] layout=rows at=mem.w0\n";
  expect_text_error(v, "mem.w0",
                    "placement must look like mem.w0:0x0000+16 (slice:address+vectors)");
  expect_text_error(kHead + ".tensor t role=inout chip=0 dtype=i8 shape=[1] layout=rows\n", "inout",
                    "role must be input, output, constant or scratch; got 'inout'");
  expect_text_error(kHead + ".tensor t role=input chip=0 dtype=u8 shape=[1] layout=rows\n", "u8",
                    "unknown dtype 'u8'");
  expect_text_error(kHead + ".tensor t role=input chip=1 dtype=i8 shape=[1] layout=rows\n",
                    "1 dtype", "chip 1 does not exist: the system has 1 chip(s)");
  expect_text_error(kHead + ".tensor t role=input chip=0 dtype=i8 layout=rows\n", ".tensor",
                    ".tensor needs shape=...");
  expect_text_error(
      kHead +
          ".tensor t role=input chip=0 dtype=i8 shape=[1] layout=rows at=mem.w0:0x0000+1\n"
          ".tensor t role=output chip=0 dtype=i8 shape=[1] layout=rows at=mem.w1:0x0000+1\n",
      "t role", "tensor 't' is defined twice", 1);
}

TEST(TextErrors, ExpectNamesAMissingInstruction) {
  const std::string h = kHead + ".queue mem.w0\n  @0 read 0x0000, s0e\n.queue vxm.alu0\n";
  expect_text_error(h + "  @5 add.i8.sat s0e, s1e, s2e  [expect=mem.w0#3]\n",
                    "expect=", "expected producer mem.w0#3 is not an instruction of chip 0");
  expect_text_error(h + "  @5 add.i8.sat s0e, s1e, s2e  [expect=mem.w0#0,mem.w1#0]\n",
                    "expect=", "expected producer mem.w1#0 is not an instruction of chip 0");
  expect_text_error(h + "  @5 add.i8.sat s0e, s1e, s2e  [expect=mem.w9#0]\n", "mem.w9",
                    "no queue named 'mem.w9' on this chip");
  expect_text_error(h + "  @5 add.i8.sat s0e, s1e, s2e  [expect=mem.w0]\n", "mem.w0]",
                    "expected producer must look like mem.w0#3 (queue#index)");
  expect_text_error(h + "  @5 add.i8.sat s0e, s1e, s2e  [color=red]\n", "color",
                    "unknown annotation 'color' (done, expect)");
  expect_text_error(h + "  @5 add.i8.sat s0e, s1e, s2e  [done=9\n", "[",
                    "unclosed '[' (annotations end with ']')");
}

TEST(RoundTrip, RepetitionRelations) {
  const std::string src = kHead +
                          ".queue mem.w0\n  @0 read 0x0000, s0e\n  @1 repeat 9, 1\n"
                          ".queue vxm.alu0\n  @5 add.i8.sat s0e, s1e, s2e  "
                          "[expect=mem.w0#0@r,mem.w0#1@2r-1/4,mem.w0#0@7,mem.w0#1@-r+3,mem.w0#1]\n";
  const Program p = parse_lpuasm(src, kFile);
  const auto& ex = p.chips[0].queues[1].entries[0].expect;
  ASSERT_EQ(ex.size(), 5u);
  auto rel = [](const InstrRef& r) { return std::vector<int>{r.mul, r.add, r.div}; };
  EXPECT_EQ(rel(ex[0]), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(rel(ex[1]), (std::vector<int>{2, -1, 4}));
  EXPECT_EQ(rel(ex[2]), (std::vector<int>{0, 7, 1}));
  EXPECT_EQ(rel(ex[3]), (std::vector<int>{-1, 3, 1}));
  EXPECT_TRUE(ex[4].any_step());
  // 2r - 1 = 4p: repetition 5 of the consumer takes repetition... none (9 / 4); 2.5 -> none.
  EXPECT_EQ(ex[1].step_for(5), -1);
  EXPECT_EQ(ex[1].step_for(2), -1);
  EXPECT_TRUE(ex[0].step_matches(3, 3));
  EXPECT_FALSE(ex[0].step_matches(3, 4));
  EXPECT_TRUE(ex[2].step_matches(0, 7));
  EXPECT_TRUE(ex[4].step_matches(3, 9));
  EXPECT_TRUE(contains(to_lpuasm(p),
                       "expect=mem.w0#0@r,mem.w0#1@2r-1/4,mem.w0#0@7,mem.w0#1@-r+3,mem.w0#1]"));
  expect_round_trip(p);
}

TEST(TextErrors, BadRepetitionRelation) {
  const std::string h = kHead + ".queue mem.w0\n  @0 read 0x0000, s0e\n.queue vxm.alu0\n";
  for (const char* bad : {"@", "@x", "@r+", "@r*2", "@2rr", "@r/0", "@r/", "@1.5", "@r+1-2"})
    expect_text_error(h + "  @5 add.i8.sat s0e, s1e, s2e  [expect=mem.w0#0" + bad + "]\n",
                      std::string("#0") + bad,
                      std::string("repetition relation '") + bad + "' must look like @r", 0, 3);
}

TEST(TextErrors, MxmStagingBuffers) {
  expect_text_error(
      kHead + ".set chip.mxm.weight_buffers=1\n.queue mxm.p0.wt\n  @0 lw.i8 s0w, 0, 0\n", "0\n",
      "operand 'buf': the plane has no staging buffer (chip.mxm.weight_buffers = 1)");
  expect_text_error(kHead + ".queue mxm.p0.wt\n  @0 iw.buf 1\n", "buf 1",
                    "operand 'buf': buffer 1 does not exist (1 staging buffer(s)) "
                    "(chip.mxm.weight_buffers = 2)",
                    0, 4);
  // fp16 steps are 1 / fp16_rate cycles apart: abc.fp16 n keeps its queue busy 4 (n - 1) cycles.
  expect_text_error(
      kHead + ".queue mxm.p0.abc\n  @10 abc.fp16 s0w, 3\n  @15 abc.i8 s0w, 1\n", "@15",
      "cycle 15 falls while the previous 'abc' keeps queue mxm.p0.abc busy (until cycle "
      "18)");
}

TEST(TextErrors, DoneBeforeTheCycle) {
  const std::string t = kHead + ".queue mem.w0\n  @10 read 0x0000, s0e  [done=5]\n";
  expect_text_error(t, "done=5", "predicted completion cycle 5 is before the dispatch cycle 10");
  // done == cycle is allowed.
  EXPECT_EQ(parse_lpuasm(kHead + ".queue mem.w0\n  @10 read 0, s0e [done=10]\n", kFile)
                .instruction_count(),
            1u);
}

TEST(TextErrors, SetWithAnUnknownKey) {
  const std::string t = kHead + ".set chip.mem.dpeth=512\n.queue mem.w0\n  @0 nop 1\n";
  expect_text_error(t, "chip.mem.dpeth", "unknown key 'chip.mem.dpeth'; did you mean 'depth'?");
  const std::string u = kHead + ".set chip.mem.depth=512\n.set chip.mem.depth=1\n.queue mem.w0\n";
  expect_text_error(u, "chip.mem.depth=1", "chip.mem.depth: must be in [2, 16777216], got 1");
  expect_text_error(kHead + ".queue mem.w0\n.set chip.mem.depth=512\n", ".set",
                    "'.set' must come before the first tensor, image, chip or queue");
  expect_text_error(kHead + ".set chip.mem.depth\n.queue mem.w0\n", "chip.mem.depth",
                    "expected PATH=VALUE");
}

TEST(TextErrors, ChipsAndQueuesNeedEachOther) {
  expect_text_error(kHead + "  @0 nop 1\n", "@0", "an instruction needs a '.queue' first");
  expect_text_error(kHead + ".chip 1\n", "1\n", "chip 1 does not exist: the system has 1 chip(s)",
                    1);
  expect_text_error(kHead + ".queue mem.w0\n.chip 0\n  @0 nop 1\n", "@0",
                    "an instruction needs a '.queue' first");
  expect_text_error(kHead + ".queue mem.w0\n  @x nop 1\n", "x nop",
                    "expected dispatch cycle (a number), got 'x'");
  expect_text_error(kHead + ".queue mem.w0\n  @3\n", "@3",
                    "expected an instruction after the cycle");
}

// --- found while testing ------------------------------------------------------------------------

TEST(Bugs, OperandColumnsAfterACommaAndBlank) {
  const std::string m = kHead + ".queue mem.w0\n";
  expect_text_error(m + "  @0 read 0x0000, s40e\n", "s40e", "stream 40 does not exist");
  expect_text_error(m + "  @0 nop 1, 77\n", "77", "'nop' takes 1 operand(s)");
  expect_text_error(kHead + ".queue vxm.alu0\n  @0 sel.i8 s0e, s1e, s2e, s40e\n", "s40e",
                    "stream 40 does not exist");
  expect_text_error(kHead + ".queue mxm.p1.wt\n  @0 lw.i8 s16e,   8, 0\n", "8, 0",
                    "row 8 is not a multiple of 16");
}

TEST(Bugs, ChangedAssumptionTextBreaksTheTextForm) {
  const fs::path dir = scratch_dir();
  std::ofstream(dir / "why.json")
      << R"({"base": "tiny", "assumptions": {"chip.mem.depth": "a different reason"}})";
  std::ofstream(dir / "p.lpuasm") << ".lpuasm 1\n.arch why.json\n.queue mem.w0\n  @0 nop 1\n";
  const Program p = load_lpuasm((dir / "p.lpuasm").string());
  expect_round_trip(p);
}

TEST(Bugs, OperandColumnsWithoutBlanksAreRight) {
  // The control for the test above: the same errors without blanks after the commas.
  const std::string m = kHead + ".queue mem.w0\n";
  expect_text_error(m + "  @0 read 0x0000,s40e\n", "s40e", "stream 40 does not exist");
  expect_text_error(kHead + ".queue vxm.alu0\n  @0 sel.i8 s0e,s1e,s2e,s40e\n", "s40e",
                    "stream 40 does not exist");
  // And the first operand is right with any spacing.
  expect_text_error(m + "  @0   read    300 ,  s0e\n", "300", "address 300 is beyond the slice");
}

}  // namespace
