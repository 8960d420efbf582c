#include "units/vxm.h"

#include <array>
#include <vector>

#include "func/vxm.h"

namespace lpu::units {

using func::VxmOp;
using isa::DType;

Vxm::Vxm(const sc_core::sc_module_name& name, ChipContext& ctx) : Unit(name, ctx) {
  const CosimOptions& co = ctx.options.cosim;
  if (co.vxm != UnitMode::kTlm && co.factory && ctx.functional()) {
    mode_ = co.vxm;
    rtl_ = co.factory->vxm(ctx);
  }
}

namespace {
// The operation of a VXM instruction, by opcode and comparison modifier, from func::vxm_ops()
// (decoded once; anything else moves).
VxmOp op_of(const isa::Instr& in) {
  static const std::vector<std::array<VxmOp, 8>> table = [] {
    std::vector<std::array<VxmOp, 8>> t(256);
    const auto& cmp = isa::mod_names(isa::ModKind::kCmp);
    for (auto& row : t)
      row.fill(VxmOp::kMov);
    for (const func::VxmOpInfo& o : func::vxm_ops()) {
      const isa::OpInfo* info = isa::by_mnemonic(o.mnemonic);
      if (!info) continue;
      for (std::size_t m = 0; m < 8; ++m)
        if (*o.cmp == 0 || (m < cmp.size() && cmp[m] == o.cmp)) t[info->opcode][m] = o.op;
    }
    // cmp without a comparison modifier compares for equality
    if (const isa::OpInfo* c = isa::by_mnemonic("cmp")) t[c->opcode][0] = VxmOp::kCmpEq;
    return t;
  }();
  return table[in.opcode][in.mod[1] < 8 ? in.mod[1] : 0];
}
}  // namespace

void Vxm::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  const auto type = static_cast<DType>(in.mod[0]);
  func::VxmArgs args{};
  args.op = op_of(in);
  args.type = type;
  args.saturate = in.mod[1] == 1;  // ovf: sat = 1, mod = 2
  if (args.op == VxmOp::kCast) args.to = static_cast<DType>(in.mod[1]);
  if (args.op == VxmOp::kShl || args.op == VxmOp::kShr) args.shift = static_cast<int>(in.arg[2]);

  // Operand layout by form: binary a, b, d; shifts a, d, bits; sel mask, a, b, d; unary a, d.
  std::uint32_t a_arg = in.arg[0], b_arg = 0, m_arg = 0, d_arg = 0;
  bool has_b = false, has_m = false;
  switch (args.op) {
    case VxmOp::kShl:
    case VxmOp::kShr:
      d_arg = in.arg[1];
      break;
    case VxmOp::kSel:
      m_arg = in.arg[0], a_arg = in.arg[1], b_arg = in.arg[2], d_arg = in.arg[3];
      has_b = has_m = true;
      break;
    case VxmOp::kNeg:
    case VxmOp::kAbs:
    case VxmOp::kRelu:
    case VxmOp::kExp:
    case VxmOp::kRsqrt:
    case VxmOp::kTanh:
    case VxmOp::kCast:
    case VxmOp::kMov:
      d_arg = in.arg[1];
      break;
    default:
      b_arg = in.arg[1], d_arg = in.arg[2];
      has_b = true;
  }
  const int g = isa::dtype_bytes(type);
  const int gd = args.op == VxmOp::kCast ? isa::dtype_bytes(args.to) : g;
  const std::uint8_t* a[4] = {};
  const std::uint8_t* b[4] = {};
  const std::uint8_t* m[4] = {};
  if (!read_group(is, a_arg, g, a)) return;
  if (has_b && !read_group(is, b_arg, g, b)) return;
  if (has_m && !read_group(is, m_arg, g, m)) return;
  elements += static_cast<std::uint64_t>(ctx_.lanes);
  std::uint8_t* d[4] = {};
  if (!reserve_group(is, d_arg, gd, d)) return;
  if (!ctx_.functional()) return;
  const bool rtl = rtl_ && rtl_->covers(args);
  if (rtl_ && !rtl)
    ++rtl_->stats()
          .not_covered[std::string(func::to_string(args.op)) + "." + isa::to_string(type) +
                       (args.op == VxmOp::kCast ? std::string(".") + isa::to_string(args.to) : "")];
  if (rtl && mode_ == UnitMode::kRtl) {  // the RTL fills the result before the next cycle
    rtl_->submit(is, args, a, has_b ? b : nullptr, has_m ? m : nullptr, d, false);
    finish_group(is, gd, d);
    return;
  }
  // The result goes straight into the stream values (they never alias the operands).
  func::vxm_apply(args, ctx_.lanes, a, has_b ? b : nullptr, has_m ? m : nullptr, d);
  finish_group(is, gd, d);
  if (rtl) rtl_->submit(is, args, a, has_b ? b : nullptr, has_m ? m : nullptr, d, true);
}

}  // namespace lpu::units
