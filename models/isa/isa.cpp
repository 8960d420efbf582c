#include "isa/isa.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace lpu::isa {

using arch::QueueUnit;

const char* to_string(Unit u) {
  switch (u) {
    case Unit::kIcu:
      return "ICU";
    case Unit::kMem:
      return "MEM";
    case Unit::kVxm:
      return "VXM";
    case Unit::kMxm:
      return "MXM";
    case Unit::kSxm:
      return "SXM";
    case Unit::kC2c:
      return "C2C";
  }
  return "?";
}

const char* to_string(DType t) {
  switch (t) {
    case DType::kNone:
      return "";
    case DType::kI8:
      return "i8";
    case DType::kI16:
      return "i16";
    case DType::kI32:
      return "i32";
    case DType::kFp16:
      return "fp16";
    case DType::kBf16:
      return "bf16";
    case DType::kFp32:
      return "fp32";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view s) {
  for (int c = 1; c <= 6; ++c)
    if (s == to_string(static_cast<DType>(c))) return static_cast<DType>(c);
  return std::nullopt;
}

int dtype_bytes(DType t) {
  switch (t) {
    case DType::kI8:
      return 1;
    case DType::kI16:
    case DType::kFp16:
    case DType::kBf16:
      return 2;
    case DType::kI32:
    case DType::kFp32:
      return 4;
    case DType::kNone:
      return 0;
  }
  return 0;
}

bool is_integer(DType t) {
  return t == DType::kI8 || t == DType::kI16 || t == DType::kI32;
}

const char* to_string(ModKind k) {
  switch (k) {
    case ModKind::kNone:
      return "none";
    case ModKind::kDtype:
      return "dtype";
    case ModKind::kOvf:
      return "overflow";
    case ModKind::kCmp:
      return "comparison";
    case ModKind::kDir:
      return "direction";
    case ModKind::kRotate:
      return "rotation";
    case ModKind::kAccMode:
      return "accumulate mode";
  }
  return "?";
}

const std::vector<std::string>& mod_names(ModKind k) {
  static const std::vector<std::string> none{""};
  static const std::vector<std::string> dtype{"", "i8", "i16", "i32", "fp16", "bf16", "fp32"};
  static const std::vector<std::string> ovf{"", "sat", "mod"};
  static const std::vector<std::string> cmp{"", "eq", "ne", "lt", "le", "gt", "ge"};
  static const std::vector<std::string> dir{"", "n", "s"};
  static const std::vector<std::string> rot{"", "", "", "n3", "n4", "n5", "n6", "n7", "n8"};
  static const std::vector<std::string> acc{"", "only", "last", "first", "next"};
  switch (k) {
    case ModKind::kNone:
      return none;
    case ModKind::kDtype:
      return dtype;
    case ModKind::kOvf:
      return ovf;
    case ModKind::kCmp:
      return cmp;
    case ModKind::kDir:
      return dir;
    case ModKind::kRotate:
      return rot;
    case ModKind::kAccMode:
      return acc;
  }
  return none;
}

const char* to_string(OperandKind k) {
  switch (k) {
    case OperandKind::kStream:
      return "stream";
    case OperandKind::kAddr:
      return "address";
    case OperandKind::kCount16:
      return "count";
    case OperandKind::kLanes:
      return "lanes";
    case OperandKind::kSuperlanes:
      return "superlanes";
    case OperandKind::kRow:
      return "row";
    case OperandKind::kShift:
      return "bits";
    case OperandKind::kBuffer:
      return "buffer";
  }
  return "?";
}

int operand_bytes(OperandKind k) {
  switch (k) {
    case OperandKind::kStream:
      return 1;
    case OperandKind::kAddr:
      return 3;
    case OperandKind::kCount16:
      return 2;
    case OperandKind::kLanes:
      return 2;
    case OperandKind::kSuperlanes:
      return 1;
    case OperandKind::kRow:
      return 2;
    case OperandKind::kShift:
      return 1;
    case OperandKind::kBuffer:
      return 1;
  }
  return 0;
}

namespace {

using M = ModKind;
using O = OperandKind;
const std::vector<DType> kInts{DType::kI8, DType::kI16, DType::kI32};
const std::vector<DType> kFloats{DType::kFp16, DType::kBf16, DType::kFp32};
const std::vector<DType> kAll{DType::kI8,   DType::kI16,  DType::kI32,
                              DType::kFp16, DType::kBf16, DType::kFp32};
const std::vector<DType> kSigned{DType::kI8,   DType::kI16,  DType::kI32,
                                 DType::kFp16, DType::kBf16, DType::kFp32};
const std::vector<QueueUnit> kMemQ{QueueUnit::kMem};
const std::vector<QueueUnit> kVxmQ{QueueUnit::kVxm};
const std::vector<QueueUnit> kC2cQ{QueueUnit::kC2c};

std::vector<OpInfo> build_table() {
  const OperandDef a{"a", O::kStream, kGroupFromA};
  const OperandDef b{"b", O::kStream, kGroupFromA};
  const OperandDef d{"d", O::kStream, kGroupFromA};
  std::vector<OpInfo> t = {
      // ICU: run on every queue.
      {0x00,
       "nop",
       Unit::kIcu,
       {},
       {M::kNone, M::kNone},
       {},
       {{"n", O::kCount16}},
       "icu",
       AluNeed::kNone,
       "Idle the queue for n cycles."},
      {0x01,
       "ifetch",
       Unit::kIcu,
       {},
       {M::kNone, M::kNone},
       {},
       {{"s", O::kStream, 1}},
       "icu",
       AluNeed::kNone,
       "Take the next chip.icu.ifetch_bytes of this queue's instruction text from stream s."},
      {0x02,
       "sync",
       Unit::kIcu,
       {},
       {M::kNone, M::kNone},
       {},
       {},
       "icu_sync",
       AluNeed::kNone,
       "Park the queue until the next chip-wide notify."},
      {0x03,
       "notify",
       Unit::kIcu,
       {},
       {M::kNone, M::kNone},
       {},
       {},
       "icu_sync",
       AluNeed::kNone,
       "Release every parked queue of the chip (after the icu_sync latency)."},
      {0x04,
       "config",
       Unit::kIcu,
       {},
       {M::kNone, M::kNone},
       {},
       {{"superlanes", O::kSuperlanes}},
       "icu",
       AluNeed::kNone,
       "Power the lowest `superlanes` superlanes; later vector ops see that vector length."},
      {0x05,
       "repeat",
       Unit::kIcu,
       {},
       {M::kNone, M::kNone},
       {},
       {{"n", O::kCount16}, {"d", O::kCount16}},
       "icu",
       AluNeed::kNone,
       "Issue the previous instruction of this queue n more times, d cycles apart; the k-th "
       "repetition of a MEM read or write uses address + k, of lw or iw.str row + "
       "k "
       "x (rows per instruction)."},
      // MEM
      {0x10,
       "read",
       Unit::kMem,
       kMemQ,
       {M::kNone, M::kNone},
       {},
       {{"addr", O::kAddr}, {"s", O::kStream, 1}},
       "mem_read",
       AluNeed::kNone,
       "Read the vector at addr onto stream s."},
      {0x11,
       "write",
       Unit::kMem,
       kMemQ,
       {M::kNone, M::kNone},
       {},
       {{"addr", O::kAddr}, {"s", O::kStream, 1}},
       "mem_write",
       AluNeed::kNone,
       "Write the vector passing on stream s to addr."},
      {0x12,
       "gather",
       Unit::kMem,
       kMemQ,
       {M::kNone, M::kNone},
       {},
       {{"map", O::kStream, 2}, {"s", O::kStream, 1}},
       "mem_gather",
       AluNeed::kNone,
       "Each lane reads its own address (16-bit, from the SG2 group map) onto stream s."},
      {0x13,
       "scatter",
       Unit::kMem,
       kMemQ,
       {M::kNone, M::kNone},
       {},
       {{"s", O::kStream, 1}, {"map", O::kStream, 2}},
       "mem_gather",
       AluNeed::kNone,
       "Each lane writes its byte of stream s to its own address (16-bit, from the SG2 group "
       "map)."},
      // VXM binary
      {0x20,
       "add",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kOvf},
       kAll,
       {a, b, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = a + b; integers saturate (sat) or wrap (mod)."},
      {0x21,
       "sub",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kOvf},
       kAll,
       {a, b, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = a - b."},
      {0x22,
       "mul",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kOvf},
       kAll,
       {a, b, d},
       "vxm_mul",
       AluNeed::kAny,
       "d = a * b."},
      {0x23,
       "max",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kAll,
       {a, b, d},
       "vxm_simple",
       AluNeed::kLarge,
       "d = max(a, b); a NaN operand gives NaN."},
      {0x24,
       "min",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kAll,
       {a, b, d},
       "vxm_simple",
       AluNeed::kLarge,
       "d = min(a, b); runs where max does (same comparator)."},
      {0x25,
       "and",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kInts,
       {a, b, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = a & b."},
      {0x26,
       "or",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kInts,
       {a, b, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = a | b."},
      {0x27,
       "xor",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kInts,
       {a, b, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = a ^ b."},
      {0x28,
       "shl",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kInts,
       {a, d, {"bits", O::kShift}},
       "vxm_simple",
       AluNeed::kAny,
       "d = a << bits."},
      {0x29,
       "shr",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kInts,
       {a, d, {"bits", O::kShift}},
       "vxm_simple",
       AluNeed::kAny,
       "d = a >> bits (arithmetic)."},
      {0x2a,
       "cmp",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kCmp},
       kAll,
       {a, b, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = all ones where (a op b) holds, else zero (a mask of the element width)."},
      {0x2b,
       "sel",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kAll,
       {{"mask", O::kStream, kGroupFromA}, a, b, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = mask ? a : b, element by element."},
      // VXM unary
      {0x30,
       "neg",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kSigned,
       {a, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = -a; integers saturate."},
      {0x31,
       "abs",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kSigned,
       {a, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = |a|; integers saturate."},
      {0x32,
       "relu",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kAll,
       {a, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = max(a, 0)."},
      {0x33,
       "exp",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kFloats,
       {a, d},
       "vxm_transcend",
       AluNeed::kLarge,
       "d = e^a."},
      {0x34,
       "rsqrt",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kFloats,
       {a, d},
       "vxm_transcend",
       AluNeed::kLarge,
       "d = 1 / sqrt(a); division is y * rsqrt(x)^2."},
      {0x35,
       "tanh",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kFloats,
       {a, d},
       "vxm_transcend",
       AluNeed::kLarge,
       "d = tanh(a)."},
      {0x36,
       "cast",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kDtype},
       kAll,
       {{"a", O::kStream, kGroupFromA}, {"d", O::kStream, kGroupFromB}},
       "vxm_convert",
       AluNeed::kLarge,
       "d (type B) = a (type A); round to nearest even, integer targets saturate."},
      {0x37,
       "mov",
       Unit::kVxm,
       kVxmQ,
       {M::kDtype, M::kNone},
       kAll,
       {a, d},
       "vxm_simple",
       AluNeed::kAny,
       "d = a (moves a value to another stream or direction)."},
      // MXM
      {0x60,
       "lw",
       Unit::kMxm,
       {QueueUnit::kMxmWeights},
       {M::kDtype, M::kNone},
       {DType::kI8, DType::kFp16},
       {{"s", O::kStream, 16}, {"row", O::kRow}, {"buf", O::kBuffer}},
       "mxm_weights",
       AluNeed::kNone,
       "Load weight rows from the 16 streams at s into staging buffer buf: 16 int8 rows from row "
       "(stream s+j is row+j), or 8 fp16 rows (streams s+2j, s+2j+1 are the low and high bytes "
       "of row+j). The plane has chip.mxm.weight_buffers - 1 staging buffers; one being "
       "installed or cleared cannot be loaded."},
      {0x61,
       "iw.buf",
       Unit::kMxm,
       {QueueUnit::kMxmWeights},
       {M::kNone, M::kNone},
       {},
       {{"buf", O::kBuffer}},
       "mxm_install",
       AluNeed::kNone,
       "Install staging buffer buf into the array (the buffer keeps its weights). The array takes "
       "chip.mxm.install_cycles, during which no activations may enter it."},
      {0x62,
       "iw.str",
       Unit::kMxm,
       {QueueUnit::kMxmWeights},
       {M::kDtype, M::kNone},
       {DType::kI8, DType::kFp16},
       {{"s", O::kStream, 16}, {"row", O::kRow}},
       "mxm_weights",
       AluNeed::kNone,
       "Install weight rows straight from the 16 streams at s into the array (rows as for lw); "
       "the array takes no activations until the last of them is in."},
      {0x63,
       "abc",
       Unit::kMxm,
       {QueueUnit::kMxmAct},
       {M::kDtype, M::kNone},
       {DType::kI8, DType::kFp16},
       {{"s", O::kStream, kGroupFromA}, {"n", O::kCount16}},
       "mxm_activate",
       AluNeed::kNone,
       "Stream n activation vectors from s through the array: one per cycle for int8, one every "
       "1 / chip.mxm.fp16_rate cycles for fp16."},
      {0x64,
       "acc",
       Unit::kMxm,
       {QueueUnit::kMxmAcc},
       {M::kDtype, M::kAccMode},
       {DType::kI32, DType::kFp32},
       {{"s", O::kStream, 4}, {"n", O::kCount16}},
       "mxm_result",
       AluNeed::kNone,
       "Take the next n products of the plane into accumulators 0..n-1: `only` and `first` start "
       "a sum, `next` and `last` add to it; `only` and `last` also send the sums on the SG4 group "
       "at s (`first` and `next` ignore s). One product per cycle for i32, at the fp16 rate for "
       "fp32 (the products of fp16 activations)."},
      {0x65,
       "clw",
       Unit::kMxm,
       {QueueUnit::kMxmWeights},
       {M::kNone, M::kNone},
       {},
       {{"buf", O::kBuffer}},
       "mxm_clear",
       AluNeed::kNone,
       "Clear staging buffer buf to zeros in chip.mxm.clear_cycles (then a load of fewer rows "
       "than the plane leaves the others zero)."},
      // SXM
      {0x70,
       "shift",
       Unit::kSxm,
       {QueueUnit::kSxmShift},
       {M::kDtype, M::kDir},
       kAll,
       {{"a", O::kStream, kGroupFromA}, {"d", O::kStream, kGroupFromA}, {"lanes", O::kLanes}},
       "sxm_shift",
       AluNeed::kNone,
       "Move every element `lanes` lanes north or south; lanes shifted in are zero."},
      {0x71,
       "select",
       Unit::kSxm,
       {QueueUnit::kSxmShift},
       {M::kDtype, M::kNone},
       kAll,
       {{"a", O::kStream, kGroupFromA},
        {"b", O::kStream, kGroupFromA},
        {"d", O::kStream, kGroupFromA},
        {"lanes", O::kLanes}},
       "sxm_shift",
       AluNeed::kNone,
       "d takes lanes below `lanes` from a and the rest from b."},
      {0x72,
       "permute",
       Unit::kSxm,
       {QueueUnit::kSxmPermute},
       {M::kDtype, M::kNone},
       kAll,
       {{"a", O::kStream, kGroupFromA}, {"map", O::kStream, 2}, {"d", O::kStream, kGroupFromA}},
       "sxm_permute",
       AluNeed::kNone,
       "d[map[i]] = a[i] for a bijection map of the lanes (16-bit lane numbers)."},
      {0x73,
       "distribute",
       Unit::kSxm,
       {QueueUnit::kSxmDistribute},
       {M::kDtype, M::kNone},
       kAll,
       {{"a", O::kStream, kGroupFromA}, {"map", O::kStream, 1}, {"d", O::kStream, kGroupFromA}},
       "sxm_permute",
       AluNeed::kNone,
       "Within each superlane, d[i] = a[map[i]] (0..15), or zero where map[i] is 255; may "
       "replicate."},
      {0x74,
       "rotate",
       Unit::kSxm,
       {QueueUnit::kSxmRotate},
       {M::kRotate, M::kNone},
       {},
       {{"a", O::kStream, kGroupRotateIn}, {"d", O::kStream, kGroupRotateOut}},
       "sxm_permute",
       AluNeed::kNone,
       "Expand n streams into the n*n rotations used by convolutions (n = 3 or 4)."},
      {0x75,
       "transpose",
       Unit::kSxm,
       {QueueUnit::kSxmTranspose},
       {M::kNone, M::kNone},
       {},
       {{"a", O::kStream, 16}, {"d", O::kStream, 16}},
       "sxm_transpose",
       AluNeed::kNone,
       "Transpose 16 x 16 bytes within each superlane: stream j lane i goes to stream i lane j."},
      // C2C
      {0x80,
       "send",
       Unit::kC2c,
       kC2cQ,
       {M::kNone, M::kNone},
       {},
       {{"s", O::kStream, 1}},
       "c2c_send",
       AluNeed::kNone,
       "Put the vector on stream s onto this queue's link."},
      {0x81,
       "recv",
       Unit::kC2c,
       kC2cQ,
       {M::kNone, M::kNone},
       {},
       {{"s", O::kStream, 1}},
       "c2c_receive",
       AluNeed::kNone,
       "Put the vector arriving on this queue's link onto stream s."},
      {0x82,
       "deskew",
       Unit::kC2c,
       kC2cQ,
       {M::kNone, M::kNone},
       {},
       {},
       "icu",
       AluNeed::kNone,
       "Hold the queue until the next epoch of the shared time-base counter."},
  };
  std::sort(t.begin(), t.end(),
            [](const OpInfo& x, const OpInfo& y) { return x.opcode < y.opcode; });
  return t;
}

}  // namespace

const std::vector<OpInfo>& table() {
  static const std::vector<OpInfo> t = build_table();
  return t;
}

const OpInfo* by_opcode(std::uint8_t opcode) {
  static const auto index = [] {
    std::array<const OpInfo*, 256> idx{};
    for (const auto& op : table())
      idx[op.opcode] = &op;
    return idx;
  }();
  return index[opcode];
}

const OpInfo* by_mnemonic(std::string_view mnemonic) {
  for (const auto& op : table())
    if (mnemonic == op.mnemonic) return &op;
  return nullptr;
}

std::vector<std::string> mnemonics() {
  std::vector<std::string> m;
  for (const auto& op : table())
    m.emplace_back(op.mnemonic);
  return m;
}

namespace {

int group_of(const OpInfo& op, const Instr& in, const OperandDef& def) {
  switch (def.group) {
    case kGroupFromA:
      return dtype_bytes(static_cast<DType>(in.mod[0]));
    case kGroupFromB:
      return dtype_bytes(static_cast<DType>(in.mod[1]));
    case kGroupRotateIn:
      return in.mod[0];
    case kGroupRotateOut:
      return in.mod[0] * in.mod[0];
    default:
      (void)op;
      return def.group;
  }
}

std::uint32_t max_for_bytes(int bytes) {
  return bytes >= 4 ? 0xffffffffu : (1u << (8 * bytes)) - 1;
}

}  // namespace

int stream_group(const Instr& in, int i) {
  const auto& op = in.info();
  if (i < 0 || static_cast<std::size_t>(i) >= op.operands.size()) return 0;
  const auto& def = op.operands[static_cast<std::size_t>(i)];
  return def.kind == O::kStream ? group_of(op, in, def) : 0;
}

Word encode(const Instr& in) {
  Word w{};
  const OpInfo& op = in.info();
  w[0] = in.opcode;
  w[1] = static_cast<std::uint8_t>((in.mod[0] & 0xf) | ((in.mod[1] & 0xf) << 4));
  std::size_t at = 2;
  for (std::size_t i = 0; i < op.operands.size(); ++i) {
    const int n = operand_bytes(op.operands[i].kind);
    for (int k = 0; k < n; ++k)
      w[at++] = static_cast<std::uint8_t>(in.arg[i] >> (8 * k));
  }
  return w;
}

std::optional<Instr> decode(const Word& w, std::string* error) {
  auto fail = [&](const std::string& m) -> std::optional<Instr> {
    if (error) *error = m;
    return std::nullopt;
  };
  const OpInfo* op = by_opcode(w[0]);
  char buf[64];
  if (!op) {
    std::snprintf(buf, sizeof buf, "unknown opcode 0x%02x", w[0]);
    return fail(buf);
  }
  Instr in;
  in.opcode = w[0];
  in.mod = {static_cast<std::uint8_t>(w[1] & 0xf), static_cast<std::uint8_t>(w[1] >> 4)};
  for (int s = 0; s < 2; ++s) {
    const ModKind k = op->mods[static_cast<std::size_t>(s)];
    const auto& names = mod_names(k);
    const std::uint8_t code = in.mod[static_cast<std::size_t>(s)];
    const bool optional_zero = k == ModKind::kNone || k == ModKind::kOvf;
    if (code == 0 ? !optional_zero : (code >= names.size() || names[code].empty())) {
      std::snprintf(buf, sizeof buf, "bad modifier %c code %u for '%s'", s ? 'B' : 'A', code,
                    op->mnemonic);
      return fail(buf);
    }
  }
  std::size_t at = 2;
  for (std::size_t i = 0; i < op->operands.size(); ++i) {
    const int n = operand_bytes(op->operands[i].kind);
    std::uint32_t v = 0;
    for (int k = 0; k < n; ++k)
      v |= static_cast<std::uint32_t>(w[at++]) << (8 * k);
    in.arg[i] = v;
  }
  for (; at < kSlotBytes; ++at)
    if (w[at] != 0) {
      std::snprintf(buf, sizeof buf, "non-zero padding byte %zu in '%s'", at, op->mnemonic);
      return fail(buf);
    }
  return in;
}

std::optional<Problem> check(const Instr& in, const arch::Chip& chip, const arch::Queue& queue) {
  const OpInfo& op = in.info();
  auto problem = [](int operand, std::string m) {
    return std::optional<Problem>(Problem{operand, std::move(m)});
  };

  if (!op.queues.empty() &&
      std::find(op.queues.begin(), op.queues.end(), queue.unit) == op.queues.end()) {
    std::string where;
    for (const auto& q : arch::chip_queues(chip))
      if (std::find(op.queues.begin(), op.queues.end(), q.unit) != op.queues.end()) {
        where = q.name;
        break;
      }
    return problem(-1, std::string("'") + op.mnemonic + "' cannot run on queue " + queue.name +
                           " (it runs on " + to_string(op.unit) + " queues such as " + where + ")");
  }
  // Modifiers.
  const DType ta = static_cast<DType>(in.mod[0]);
  for (int s = 0; s < 2; ++s) {
    const ModKind k = op.mods[static_cast<std::size_t>(s)];
    const std::uint8_t code = in.mod[static_cast<std::size_t>(s)];
    if (k == ModKind::kDtype) {
      const DType t = static_cast<DType>(code);
      if (std::find(op.dtypes.begin(), op.dtypes.end(), t) == op.dtypes.end()) {
        std::string allowed;
        for (auto x : op.dtypes)
          allowed += std::string(allowed.empty() ? "" : ", ") + to_string(x);
        return problem(-1, std::string("'") + op.mnemonic + "' does not take type '" +
                               to_string(t) + "' (allowed: " + allowed + ")");
      }
    } else if (k == ModKind::kOvf) {
      if (is_integer(ta) && code == 0)
        return problem(-1, std::string("'") + op.mnemonic + "." + to_string(ta) +
                               "' needs an overflow mode: ." + "sat or .mod");
      if (!is_integer(ta) && code != 0)
        return problem(-1, std::string("'") + op.mnemonic + "." + to_string(ta) +
                               "' is floating point and takes no overflow mode");
    } else if (k == ModKind::kRotate) {
      const auto& sizes = chip.sxm.rotate_sizes;
      if (std::find(sizes.begin(), sizes.end(), code) == sizes.end())
        return problem(-1, "rotation n" + std::to_string(code) +
                               " is not supported by this chip (chip.sxm.rotate_sizes)");
    }
  }
  if (op.opcode == 0x36 && in.mod[0] == in.mod[1])
    return problem(-1, "cast from a type to itself; use mov");

  // Operands.
  const int streams = chip.streams.per_direction;
  for (std::size_t i = 0; i < op.operands.size(); ++i) {
    const auto& def = op.operands[i];
    const std::uint32_t v = in.arg[i];
    const int oi = static_cast<int>(i);
    const std::string name = std::string("operand '") + def.name + "'";
    switch (def.kind) {
      case O::kStream: {
        const int id = stream_id(v);
        const int g = group_of(op, in, def);
        if (id >= streams)
          return problem(oi, name + ": stream " + std::to_string(id) +
                                 " does not exist (chip.streams.per_direction = " +
                                 std::to_string(streams) + ")");
        if (id + g > streams)
          return problem(oi, name + ": a group of " + std::to_string(g) + " streams from s" +
                                 std::to_string(id) + " runs past stream " +
                                 std::to_string(streams - 1));
        // Rotation runs need no alignment; SG2, SG4 and 16-stream groups do.
        const bool run = def.group == kGroupRotateIn || def.group == kGroupRotateOut;
        const bool aligned_group = !run && (g == 2 || g == 4 || g == 16);
        if (aligned_group && id % g)
          return problem(oi, name + ": s" + std::to_string(id) +
                                 " is not aligned to its group of " + std::to_string(g) +
                                 " streams (SG" + std::to_string(g) + ")");
        if (queue.unit == arch::QueueUnit::kVxm && !chip.vxm.row_stream_groups.empty()) {
          const int row = queue.instance / chip.vxm.ranks;
          const auto& allowed = chip.vxm.row_stream_groups[static_cast<std::size_t>(row)];
          for (int s = id; s < id + g; ++s)
            if (std::find(allowed.begin(), allowed.end(), s / 4) == allowed.end()) {
              std::string list;
              for (int x : allowed)
                list += (list.empty() ? "" : ", ") + std::to_string(x);
              return problem(oi, name + ": ALU " + std::to_string(queue.instance) + " is in row " +
                                     std::to_string(row) + ", which reaches only SG4 groups {" +
                                     list + "}; stream " + std::to_string(s) + " is in group " +
                                     std::to_string(s / 4));
            }
        }
        if ((v & ~(kWestBit | 0x7fu)) != 0) return problem(oi, name + ": bad stream encoding");
        break;
      }
      case O::kAddr:
        if (v >= static_cast<std::uint32_t>(chip.mem.depth))
          return problem(oi, name + ": address " + std::to_string(v) +
                                 " is beyond the slice (chip.mem.depth = " +
                                 std::to_string(chip.mem.depth) + ")");
        break;
      case O::kCount16:
        if (v > 0xffff)
          return problem(oi, name + ": " + std::to_string(v) + " does not fit in 16 bits");
        if (op.opcode == 0x05 && i == 1 && v == 0)
          return problem(oi, name + ": the repeat distance must be at least 1");
        // Counts of cycles, repetitions and vectors start at 1.
        if (v == 0 &&
            (op.opcode == 0x00 || op.opcode == 0x05 || op.opcode == 0x63 || op.opcode == 0x64))
          return problem(oi, name + ": must be at least 1");
        break;
      case O::kLanes:
        if (v > static_cast<std::uint32_t>(chip.lanes()))
          return problem(oi, name + ": " + std::to_string(v) + " lanes is more than the chip's " +
                                 std::to_string(chip.lanes()));
        break;
      case O::kSuperlanes:
        if (v < 1 || v > static_cast<std::uint32_t>(chip.superlanes))
          return problem(oi, name + ": must be 1.." + std::to_string(chip.superlanes) + ", got " +
                                 std::to_string(v));
        break;
      case O::kRow:
        if (v >= static_cast<std::uint32_t>(chip.mxm.rows))
          return problem(oi, name + ": row " + std::to_string(v) +
                                 " is beyond the plane (chip.mxm.rows = " +
                                 std::to_string(chip.mxm.rows) + ")");
        // 16 int8 rows or 8 fp16 rows per instruction.
        if (const auto step = static_cast<std::uint32_t>(16 / std::max(1, dtype_bytes(ta)));
            v % step)
          return problem(oi, name + ": row " + std::to_string(v) + " is not a multiple of " +
                                 std::to_string(step));
        break;
      case O::kBuffer:
        if (v + 1 >= static_cast<std::uint32_t>(chip.mxm.weight_buffers))
          return problem(
              oi,
              name + ": " +
                  (chip.mxm.weight_buffers == 1
                       ? std::string("the plane has no staging buffer")
                       : "buffer " + std::to_string(v) + " does not exist (" +
                             std::to_string(chip.mxm.weight_buffers - 1) + " staging buffer(s))") +
                  " (chip.mxm.weight_buffers = " + std::to_string(chip.mxm.weight_buffers) + ")");
        break;
      case O::kShift:
        if (v >= static_cast<std::uint32_t>(8 * dtype_bytes(ta)))
          return problem(oi, name + ": shift by " + std::to_string(v) +
                                 " is not less than the element width (" +
                                 std::to_string(8 * dtype_bytes(ta)) + " bits)");
        break;
    }
    if (def.kind != O::kStream && v > max_for_bytes(operand_bytes(def.kind)))
      return problem(oi, name + ": value does not fit its encoding");
  }
  // VXM ALU size.
  if (op.alu == AluNeed::kLarge && queue.unit == arch::QueueUnit::kVxm &&
      !chip.vxm.is_large(queue.instance))
    return problem(-1, std::string("'") + op.mnemonic + "' needs a large ALU; ALU " +
                           std::to_string(queue.instance) + " (" + queue.name +
                           ") is small (chip.vxm.large_alus)");
  return std::nullopt;
}

std::uint32_t step_cycles(const Instr& in, const arch::Chip& chip) {
  if (in.opcode != 0x63 && in.opcode != 0x64) return 1;
  const auto t = static_cast<DType>(in.mod[0]);
  return t == DType::kFp16 || t == DType::kFp32
             ? static_cast<std::uint32_t>(chip.mxm.fp16_interval())
             : 1;
}

std::string format_operand(OperandKind k, std::uint32_t v) {
  char buf[32];
  switch (k) {
    case O::kStream:
      std::snprintf(buf, sizeof buf, "s%d%c", stream_id(v), stream_west(v) ? 'w' : 'e');
      return buf;
    case O::kAddr:
      std::snprintf(buf, sizeof buf, "0x%04x", v);
      return buf;
    default:
      return std::to_string(v);
  }
}

std::string format(const Instr& in) {
  const OpInfo& op = in.info();
  std::string s = op.mnemonic;
  for (int k = 0; k < 2; ++k) {
    const std::uint8_t code = in.mod[static_cast<std::size_t>(k)];
    const auto& names = mod_names(op.mods[static_cast<std::size_t>(k)]);
    if (code != 0 && code < names.size()) s += "." + names[code];
  }
  for (std::size_t i = 0; i < op.operands.size(); ++i) {
    s += i ? ", " : " ";
    s += format_operand(op.operands[i].kind, in.arg[i]);
  }
  return s;
}

std::string markdown_reference() {
  std::ostringstream md;
  md << "# LPU instruction set\n\n"
        "Generated by `lpu isa --markdown` from the ISA table in `models/isa/isa.cpp`; do not edit "
        "by hand\n"
        "(a test fails when this file and the table disagree).\n\n"
        "## Encoding\n\n"
        "Every instruction is one 16-byte slot, little-endian:\n\n"
        "| bytes | field |\n|---|---|\n"
        "| 0 | opcode |\n"
        "| 1 | modifiers: bits 0-3 slot A, bits 4-7 slot B |\n"
        "| 2-15 | operands in the order listed, each of its kind's width, then zero padding |\n\n"
        "Operand kinds and widths:\n\n| kind | bytes | text | range |\n|---|---|---|---|\n"
        "| stream | 1 | `s5e`, `s12w` | bits 0-6 stream id < `chip.streams.per_direction`, bit 7 "
        "set = westward; "
        "multi-stream groups (SG2, SG4, 16) start at a multiple of their size |\n"
        "| address | 3 | `0x0040` | < `chip.mem.depth` |\n"
        "| count | 2 | `12` | 0..65535 |\n"
        "| lanes | 2 | `16` | 0..lanes |\n"
        "| superlanes | 1 | `20` | 1..`chip.superlanes` |\n"
        "| row | 2 | `32` | < `chip.mxm.rows`, multiple of 16 |\n"
        "| bits | 1 | `3` | < element width in bits |\n"
        "| buffer | 1 | `0` | < `chip.mxm.weight_buffers` - 1 (a staging buffer) |\n\n"
        "Modifier codes (written as dotted suffixes, slot A first: `add.i8.sat`):\n\n"
        "| kind | codes |\n|---|---|\n";
  for (ModKind k : {ModKind::kDtype, ModKind::kOvf, ModKind::kCmp, ModKind::kDir, ModKind::kRotate,
                    ModKind::kAccMode}) {
    md << "| " << to_string(k) << " | ";
    const auto& n = mod_names(k);
    bool first = true;
    for (std::size_t c = 0; c < n.size(); ++c)
      if (!n[c].empty()) {
        md << (first ? "" : ", ") << "`" << n[c] << "`=" << c;
        first = false;
      }
    md << " |\n";
  }
  md << "\nAn integer `add`, `sub` or `mul` needs an overflow mode (`sat` saturates, `mod` "
        "wraps);\n"
        "a floating-point one takes none. Stream groups: `A` = the width of type A in bytes, `B` "
        "of type B.\n\n"
        "ICU instructions run on every queue. VXM instructions marked *large* need one of\n"
        "`chip.vxm.large_alus`; every VXM stream operand must lie in the SG4 groups that the ALU's "
        "row\n"
        "reaches (`chip.vxm.row_stream_groups`, row = ALU id / `chip.vxm.ranks`).\n\n"
        "## Instructions\n\n"
        "| opcode | mnemonic | unit | queues | modifiers | types | operands | latency class | ALU "
        "| what it does |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
  auto queue_name = [](arch::QueueUnit u) {
    switch (u) {
      case QueueUnit::kMem:
        return "mem.*";
      case QueueUnit::kVxm:
        return "vxm.alu*";
      case QueueUnit::kMxmWeights:
        return "mxm.p*.wt";
      case QueueUnit::kMxmAct:
        return "mxm.p*.abc";
      case QueueUnit::kMxmAcc:
        return "mxm.p*.acc";
      case QueueUnit::kSxmShift:
        return "sxm.*.shift";
      case QueueUnit::kSxmPermute:
        return "sxm.*.permute";
      case QueueUnit::kSxmDistribute:
        return "sxm.*.distribute";
      case QueueUnit::kSxmRotate:
        return "sxm.*.rotate";
      case QueueUnit::kSxmTranspose:
        return "sxm.*.transpose*";
      case QueueUnit::kC2c:
        return "c2c.l*";
    }
    return "?";
  };
  for (const auto& op : table()) {
    char oc[8];
    std::snprintf(oc, sizeof oc, "0x%02x", op.opcode);
    md << "| " << oc << " | `" << op.mnemonic << "` | " << to_string(op.unit) << " | ";
    if (op.queues.empty()) md << "all";
    for (std::size_t i = 0; i < op.queues.size(); ++i)
      md << (i ? ", " : "") << "`" << queue_name(op.queues[i]) << "`";
    md << " | ";
    bool any = false;
    for (int k = 0; k < 2; ++k)
      if (op.mods[static_cast<std::size_t>(k)] != ModKind::kNone) {
        md << (any ? ", " : "") << (k ? "B: " : "A: ")
           << to_string(op.mods[static_cast<std::size_t>(k)]);
        any = true;
      }
    md << " | ";
    for (std::size_t i = 0; i < op.dtypes.size(); ++i)
      md << (i ? ", " : "") << to_string(op.dtypes[i]);
    md << " | ";
    for (std::size_t i = 0; i < op.operands.size(); ++i) {
      const auto& d = op.operands[i];
      md << (i ? ", " : "") << "`" << d.name << "`:" << to_string(d.kind);
      if (d.kind == O::kStream) {
        switch (d.group) {
          case kGroupFromA:
            md << "(A)";
            break;
          case kGroupFromB:
            md << "(B)";
            break;
          case kGroupRotateIn:
            md << "(n)";
            break;
          case kGroupRotateOut:
            md << "(n*n)";
            break;
          default:
            if (d.group > 1) md << "(" << int(d.group) << ")";
        }
      }
    }
    md << " | " << op.latency_class << " | "
       << (op.alu == AluNeed::kLarge ? "large"
           : op.alu == AluNeed::kAny ? "any"
                                     : "")
       << " | " << op.summary << " |\n";
  }
  return md.str();
}

}  // namespace lpu::isa
