#include "units/sxm.h"

#include "func/sxm.h"

namespace lpu::units {

Sxm::Sxm(const sc_core::sc_module_name& name, ChipContext& ctx, const arch::Queue& shift_queue)
    : Unit(name, ctx), out_(64, std::vector<std::uint8_t>(static_cast<std::size_t>(ctx.lanes))) {
  const CosimOptions& co = ctx.options.cosim;
  if (co.sxm != UnitMode::kTlm && co.factory && ctx.functional()) {
    mode_ = co.sxm;
    rtl_ = co.factory->sxm(ctx, shift_queue);
  }
}

bool Sxm::on_rtl(const Issue& is, SxmRtlPort::Op op, int outputs, std::uint32_t d_arg,
                 const std::uint8_t* const* res, const std::string& model_error) {
  if (!rtl_) return false;
  if (!rtl_->covers(op.opcode)) {
    ++rtl_->stats().not_covered[is.instr->info().mnemonic];
    return false;
  }
  if (mode_ == UnitMode::kRtl) {  // the RTL fills the reserved values before the next cycle
    std::uint8_t* d[64] = {};
    if (!reserve_group(is, d_arg, outputs, d)) return true;
    op.d = d;
    rtl_->submit(is, op);
    finish_group(is, outputs, d);
    return true;
  }
  op.compare = true;
  op.d = const_cast<std::uint8_t* const*>(res);  // the model's results, copied by submit
  op.model_error = model_error;
  rtl_->submit(is, op);
  return false;  // the model's results are written as usual
}

void Sxm::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  const int lanes = ctx_.lanes;
  const bool f = ctx_.functional();
  std::uint8_t* d[64];
  for (std::size_t i = 0; i < out_.size(); ++i)
    d[i] = out_[i].data();
  const std::uint8_t* res[64];
  for (int i = 0; i < 64; ++i)
    res[i] = d[i];
  const std::uint8_t* a[64] = {};
  const int g = isa::stream_group(in, 0);
  SxmRtlPort::Op op;
  op.opcode = in.opcode;
  op.planes = g;
  op.a = a;
  const bool rtl_only = mode_ == UnitMode::kRtl && rtl_ && rtl_->covers(in.opcode);
  switch (in.opcode) {
    case 0x70: {  // shift.T.dir a, d, lanes
      if (!read_group(is, in.arg[0], g, a)) return;
      op.amount = static_cast<int>(in.arg[2]);
      op.north = in.mod[1] == 1;
      if (f && !rtl_only)
        for (int p = 0; p < g; ++p)
          func::shift(a[p], d[p], lanes, op.amount, op.north);
      if (f && on_rtl(is, op, g, in.arg[1], res, "")) return;
      write_group(is, in.arg[1], g, f ? res : nullptr);
      return;
    }
    case 0x71: {  // select.T a, b, d, lanes
      const std::uint8_t* b[4] = {};
      if (!read_group(is, in.arg[0], g, a) || !read_group(is, in.arg[1], g, b)) return;
      op.amount = static_cast<int>(in.arg[3]);
      op.b = b;
      if (f && !rtl_only)
        for (int p = 0; p < g; ++p)
          func::select(a[p], b[p], d[p], lanes, op.amount);
      if (f && on_rtl(is, op, g, in.arg[2], res, "")) return;
      write_group(is, in.arg[2], g, f ? res : nullptr);
      return;
    }
    case 0x72:    // permute.T a, map, d
    case 0x73: {  // distribute.T a, map, d
      const bool perm = in.opcode == 0x72;
      const std::uint8_t* map[2] = {};
      if (!read_group(is, in.arg[0], g, a) || !read_group(is, in.arg[1], perm ? 2 : 1, map)) return;
      op.map = map;
      op.map_stream = stream_name(in.arg[1]);
      op.position = position(is);
      std::string err;
      if (f && !rtl_only)
        for (int p = 0; p < g && err.empty(); ++p) {
          const auto e = perm ? func::permute(a[p], map[0], map[1], d[p], lanes)
                              : func::distribute(a[p], map[0], d[p], lanes);
          if (e) err = *e;
        }
      if (f && on_rtl(is, op, g, in.arg[2], res, err)) return;
      if (!err.empty()) {
        ctx_.error(is, "bad map: " + err, stream_name(in.arg[1]), position(is));
        return;
      }
      write_group(is, in.arg[2], g, f ? res : nullptr);
      return;
    }
    case 0x74: {  // rotate.nN a, d
      const int n = in.mod[0];
      if (!read_group(is, in.arg[0], n, a)) return;
      if (f) func::rotate(a, d, lanes, n);
      if (f) on_rtl(is, op, n * n, in.arg[1], res, "");  // (not covered: counted)
      write_group(is, in.arg[1], n * n, f ? res : nullptr);
      return;
    }
    case 0x75: {  // transpose a, d
      if (!read_group(is, in.arg[0], 16, a)) return;
      op.planes = 16;
      if (f && !rtl_only) func::transpose(a, d, lanes);
      if (f && on_rtl(is, op, 16, in.arg[1], res, "")) return;
      write_group(is, in.arg[1], 16, f ? res : nullptr);
      return;
    }
    default:
      ctx_.error(is, std::string("'") + in.info().mnemonic + "' is not an SXM instruction");
  }
}

}  // namespace lpu::units
