// VXM element arithmetic on whole vectors (brief B3): the functional core that the VXM unit, the
// RTL checkers and the compiler's reference executor share, so that one definition decides every
// result bit. Plain C++, no SystemC.
//
// Data layout: a vector of `lanes` elements of type T occupies dtype_bytes(T) streams; each stream
// is one byte per lane (a "byte plane"), and element i is
//   plane0[i] | plane1[i] << 8 | plane2[i] << 16 | plane3[i] << 24   (plane 0 least significant).
//
// Semantics, per element:
// * Integers (i8, i16, i32), two's complement. add/sub/mul saturate (`saturate`) or wrap; max, min;
//   and/or/xor bitwise; shl logical, bits shifted out are lost; shr arithmetic; shift amount
//   0..bits-1. neg and abs saturate (neg(MIN) = abs(MIN) = MAX); relu = max(x, 0).
// * Floats (fp16, bf16, fp32): operands widen exactly to fp32, the operation runs in fp32 (round to
//   nearest even, subnormals kept), the result rounds once to the type. Every NaN result is the
//   type's canonical quiet NaN. max/min: a NaN operand gives NaN, max(-0, +0) = +0 and
//   min(-0, +0) = -0 in either order. neg/abs flip/clear the sign (NaN -> canonical NaN); relu =
//   x > 0 ? x : +0. exp and tanh are (float)std::exp((double)x) / (float)std::tanh((double)x),
//   rsqrt is (float)(1.0 / std::sqrt((double)x)), each then rounded to the type (float types only).
// * cmp.*: all ones (the element's full width) where the comparison holds, else 0. Float
//   comparisons are IEEE: false with a NaN operand except ne; -0 == +0.
// * sel: d = (mask element != 0, raw bits) ? a : b; the mask has the type of a. sel and mov copy
//   raw bits (no NaN canonicalisation).
// * cast type -> to (distinct): int -> int saturates; float -> int rounds to nearest even,
//   saturates, NaN -> 0; float -> float widens exactly and narrows with one rounding; int -> float
//   rounds once, directly from the integer (fp16 overflow gives infinity).
//
// Not modelled: floating-point exception flags, NaN payloads (see numerics.h).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "isa/isa.h"

namespace lpu::func {

enum class VxmOp : std::uint8_t {
  kAdd,
  kSub,
  kMul,
  kMax,
  kMin,
  kAnd,
  kOr,
  kXor,
  kShl,
  kShr,
  kCmpEq,
  kCmpNe,
  kCmpLt,
  kCmpLe,
  kCmpGt,
  kCmpGe,
  kSel,
  kNeg,
  kAbs,
  kRelu,
  kExp,
  kRsqrt,
  kTanh,
  kCast,
  kMov
};
const char* to_string(VxmOp op);

/// The one link between a VXM operation, its instruction and its RTL: the ISA mnemonic (the
/// opcode is isa::by_mnemonic's), the cmp instruction's comparison modifier, and the operation
/// code of the RTL ALU (rtl/vxm/vxm_alu.sv's OP_ localparams, which a test checks against this
/// table). The compiler, the VXM unit's decoder and the co-simulation read it.
struct VxmOpInfo {
  VxmOp op;
  const char* name;      ///< to_string(op): "add", "cmp.eq", ..
  const char* mnemonic;  ///< the instruction: "add", "cmp", ..
  const char* cmp;       ///< cmp's comparison modifier ("eq" ..), "" for the others
  int rtl;               ///< the RTL ALU's operation code; -1 when the RTL has none
  const char* rtl_name;  ///< its localparam ("OP_ADD"), "" when none
};
/// Every VxmOp, in enum order.
const std::vector<VxmOpInfo>& vxm_ops();
const VxmOpInfo& vxm_op_info(VxmOp op);
/// The operation of an instruction with `mnemonic` (and, for cmp, comparison modifier `cmp`);
/// null when the instruction is no VXM operation.
const VxmOpInfo* vxm_op_of(std::string_view mnemonic, std::string_view cmp = "");

struct VxmArgs {
  VxmOp op;
  isa::DType type;                    ///< element type of the operands (the source, for cast)
  isa::DType to = isa::DType::kNone;  ///< cast target; ignored by other ops
  bool saturate = false;              ///< integer add/sub/mul: true saturates, false wraps
  int shift = 0;                      ///< shl/shr: bits, 0..bits-1
};

/// Largest vector length vxm_apply accepts.
constexpr int kVxmMaxLanes = 4096;

/// Whether `op` is defined for element type `type` (for cast, as a source type).
bool vxm_supports(VxmOp op, isa::DType type);

/// Applies one VXM operation to vectors of `lanes` elements (0..kVxmMaxLanes). `a`, `b`, `mask`
/// and `d` each point to dtype_bytes pointers, one per byte plane, each to `lanes` bytes; operands
/// the op does not read may be null. For sel, d = mask ? a : b. For cast, `a` has type `type` and
/// `d` type `to`. `d` may be the very same planes as an operand (in-place); apart from that, no
/// two planes may overlap (the planes of `d` are written through restrict pointers).
///
/// Throws std::invalid_argument for an op that is not defined for the type (e.g. exp on i8, and on
/// fp32), a cast to the same type, a shift out of range, a bad lane count or a missing operand;
/// the assembler rejects such programs, so this guards against model bugs.
void vxm_apply(const VxmArgs& args, int lanes, const std::uint8_t* const* a,
               const std::uint8_t* const* b, const std::uint8_t* const* mask,
               std::uint8_t* const* d);

}  // namespace lpu::func
