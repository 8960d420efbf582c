// The one ISA table (brief A2, B2). The assembler, the disassembler, the simulator's decoder and
// docs/isa.md all come from `table()`.
//
// Encoding: every instruction is one 16-byte slot, little-endian:
//   byte 0      opcode
//   byte 1      modifiers: bits 0-3 slot A, bits 4-7 slot B (meaning set by the opcode)
//   bytes 2-15  operands in table order, each a fixed number of bytes for its kind, then zeros
// A stream operand is one byte: bits 0-6 the stream id, bit 7 set for westward.
// Unused modifier slots and trailing bytes must be zero; a decoder rejects anything else.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"

namespace lpu::isa {

constexpr std::size_t kSlotBytes = 16;
using Word = std::array<std::uint8_t, kSlotBytes>;

enum class Unit : std::uint8_t { kIcu, kMem, kVxm, kMxm, kSxm, kC2c };
const char* to_string(Unit u);

/// Element types. Codes are the modifier encoding; 0 means "none".
enum class DType : std::uint8_t {
  kNone = 0,
  kI8 = 1,
  kI16 = 2,
  kI32 = 3,
  kFp16 = 4,
  kBf16 = 5,
  kFp32 = 6
};
const char* to_string(DType t);
std::optional<DType> parse_dtype(std::string_view s);
int dtype_bytes(DType t);
bool is_integer(DType t);

/// What a modifier slot holds.
enum class ModKind : std::uint8_t {
  kNone,
  kDtype,    ///< an element type, limited by OpInfo::dtypes
  kOvf,      ///< integer overflow: sat | mod; required for integer types, absent for floats
  kCmp,      ///< eq ne lt le gt ge
  kDir,      ///< n (toward higher lanes) | s
  kRotate,   ///< n3 | n4 (checked against chip.sxm.rotate_sizes)
  kAccMode,  ///< only, last, first, next: how ACC combines a product with its accumulator and
             ///< whether it emits
};
const char* to_string(ModKind k);
/// Names of the codes of a modifier kind (index = code; "" where a code is unused).
const std::vector<std::string>& mod_names(ModKind k);

enum class OperandKind : std::uint8_t {
  kStream,      ///< sNe / sNw; group size and alignment from OperandDef::group
  kAddr,        ///< MEM address, < chip.mem.depth (3 bytes)
  kCount16,     ///< 0..65535 (2 bytes)
  kLanes,       ///< 0..lanes (2 bytes)
  kSuperlanes,  ///< 1..superlanes (1 byte)
  kRow,         ///< MXM row, < chip.mxm.rows, multiple of 16 (2 bytes)
  kShift,       ///< bit shift amount, < element bits (1 byte)
  kBuffer,      ///< MXM weight staging buffer, < chip.mxm.weight_buffers - 1 (1 byte)
};
const char* to_string(OperandKind k);
int operand_bytes(OperandKind k);

/// Group size of a stream operand: a positive number is fixed; the negative values take it from
/// the modifiers.
enum GroupRule : std::int8_t {
  kGroupFromA = -1,      ///< dtype_bytes(modifier A)
  kGroupFromB = -2,      ///< dtype_bytes(modifier B)
  kGroupRotateIn = -3,   ///< n of rotate.nN (a run of n streams, no alignment)
  kGroupRotateOut = -4,  ///< n*n of rotate.nN
};

struct OperandDef {
  const char* name;
  OperandKind kind;
  std::int8_t group = 0;  ///< for streams: size, or a GroupRule
};

/// Which ALUs of the VXM may run an op (brief A3).
enum class AluNeed : std::uint8_t { kNone, kAny, kLarge };

struct OpInfo {
  std::uint8_t opcode;
  const char* mnemonic;
  Unit unit;
  std::vector<arch::QueueUnit> queues;  ///< empty = every queue (ICU instructions)
  std::array<ModKind, 2> mods;
  std::vector<DType> dtypes;  ///< allowed values of a kDtype slot A (and B for casts)
  std::vector<OperandDef> operands;
  const char* latency_class;
  AluNeed alu;
  const char* summary;
};

/// Every instruction, ordered by opcode.
const std::vector<OpInfo>& table();
const OpInfo* by_opcode(std::uint8_t opcode);
const OpInfo* by_mnemonic(std::string_view mnemonic);
std::vector<std::string> mnemonics();

/// One decoded instruction.
struct Instr {
  std::uint8_t opcode = 0;
  std::array<std::uint8_t, 2> mod{};  ///< slot A, slot B codes
  std::array<std::uint32_t, 4> arg{};
  const OpInfo& info() const { return *by_opcode(opcode); }
  bool operator==(const Instr& o) const {
    return opcode == o.opcode && mod == o.mod && arg == o.arg;
  }
};

/// Stream operand values.
constexpr std::uint32_t kWestBit = 0x80;
inline std::uint32_t stream_arg(int id, bool west) {
  return static_cast<std::uint32_t>(id) | (west ? kWestBit : 0);
}
inline int stream_id(std::uint32_t arg) {
  return static_cast<int>(arg & 0x7f);
}
inline bool stream_west(std::uint32_t arg) {
  return (arg & kWestBit) != 0;
}

Word encode(const Instr& in);
/// Decodes a slot; returns an error message instead when the slot is not a valid encoding.
std::optional<Instr> decode(const Word& w, std::string* error);

/// A problem with one instruction: which operand (-1 = the mnemonic or a modifier) and why.
struct Problem {
  int operand = -1;
  std::string message;
};

/// Checks an instruction against a chip and the queue it is on: queue kind, modifiers, operand
/// ranges, stream-group alignment, VXM ALU size and the row-to-stream-group rule.
std::optional<Problem> check(const Instr& in, const arch::Chip& chip, const arch::Queue& queue);

/// Cycles between the vector steps of an instruction that takes several (abc and acc): one for
/// int8 activations and their i32 products, 1 / chip.mxm.fp16_rate for fp16 activations and their
/// fp32 products; 1 for every other instruction.
std::uint32_t step_cycles(const Instr& in, const arch::Chip& chip);

/// Stream group size of operand `i` (0 if it is not a stream).
int stream_group(const Instr& in, int i);

/// Canonical text: "add.i8.sat s0e, s4e, s8w".
std::string format(const Instr& in);
std::string format_operand(OperandKind k, std::uint32_t v);

/// Markdown reference generated from the table (docs/isa.md).
std::string markdown_reference();

}  // namespace lpu::isa
