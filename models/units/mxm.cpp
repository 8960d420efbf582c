#include "units/mxm.h"

namespace lpu::units {

using isa::DType;

Mxm::Mxm(const sc_core::sc_module_name& name, ChipContext& ctx, int plane)
    : Unit(name, ctx),
      plane_(ctx.arch->chip.mxm.rows, ctx.arch->chip.mxm.cols, ctx.lanes,
             ctx.arch->chip.mxm.accumulators, ctx.functional()),
      index_(plane) {
  for (auto& o : out_)
    o.resize(static_cast<std::size_t>(ctx.lanes));
  const CosimOptions& co = ctx.options.cosim;
  if (co.mxm != UnitMode::kTlm && co.factory && ctx.functional()) {
    mode_ = co.mxm;
    rtl_ = co.factory->mxm(ctx, plane);
  }
}

void Mxm::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  const auto type = static_cast<DType>(in.mod[0]);
  switch (in.opcode) {
    case 0x60:    // lw.T s, row
    case 0x62: {  // iw.str.T s, row
      const std::uint8_t* planes[16] = {};
      if (!read_group(is, in.arg[0], 16, planes)) return;
      // Repetitions step through the plane: 16 int8 rows (8 fp16 rows) further each time.
      const int row =
          static_cast<int>(in.arg[1]) + static_cast<int>(is.step) * (16 / isa::dtype_bytes(type));
      // In timing mode the plane keeps no values and does not look at the (null) planes.
      const std::string err = in.opcode == 0x60 ? plane_.load(type, row, planes)
                                                : plane_.install_rows(type, row, planes);
      if (!err.empty()) ctx_.error(is, err);
      isa::DType& held = in.opcode == 0x60 ? staged_type_ : active_type_;
      const bool fresh = held != type;
      held = type;
      if (rtl_ && err.empty()) {
        if (type == DType::kI8)
          rtl_->weights(is, in.opcode == 0x62, row, planes, fresh);
        else
          ++rtl_->stats().not_covered[std::string(in.info().mnemonic) + "." + isa::to_string(type)];
      }
      if (in.opcode == 0x62) {
        installing_until_ = is.result;
        installed_ = true;
      }
      return;
    }
    case 0x61:  // iw.buf
      plane_.install_from_buffer();
      active_type_ = staged_type_;
      if (rtl_) rtl_->install(is);
      installing_until_ = is.result;
      installed_ = true;
      return;
    case 0x63: {  // abc.T s, n (one step per vector)
      if (installed_ && is.access < installing_until_) {
        ctx_.error(is,
                   "activations enter the array while its weights are still being installed (until "
                   "cycle " +
                       std::to_string(installing_until_) + ")");
        return;
      }
      const std::uint8_t* planes[2] = {};
      if (!read_group(is, in.arg[0], isa::dtype_bytes(type), planes)) return;
      const std::string err = plane_.activate(type, planes);
      if (!err.empty()) {
        ctx_.error(is, err);
        return;
      }
      ready_.push_back(is.result);
      last_abc_ = is;
      if (rtl_) {
        const bool covered = type == DType::kI8;
        if (!covered) ++rtl_->stats().not_covered[std::string("abc.") + isa::to_string(type)];
        rtl_->activate(is, covered ? planes[0] : nullptr);
      }
      return;
    }
    case 0x64: {  // acc.T.mode s, n (one step per vector, into accumulator `step`)
      if (ready_.empty()) {
        ctx_.error(is, "no product is waiting in plane " + std::to_string(index_) +
                           " (too few activation vectors)");
        return;
      }
      if (ready_.front() > is.access) {
        ctx_.error(is,
                   "takes a product that is ready only in cycle " + std::to_string(ready_.front()));
        return;
      }
      ready_.pop_front();
      const auto mode = static_cast<func::MxmPlane::AccMode>(in.mod[1]);
      std::uint8_t* d[4] = {out_[0].data(), out_[1].data(), out_[2].data(), out_[3].data()};
      const std::string err =
          plane_.accumulate(type, mode, static_cast<int>(is.step), ctx_.functional() ? d : nullptr);
      if (!err.empty()) {
        ctx_.error(is, err);
        return;
      }
      const bool emits = func::MxmPlane::emits(mode);
      if (rtl_) {
        if (mode_ == UnitMode::kRtl && emits) {  // the RTL's sums fill the reserved values
          std::uint8_t* r[4] = {};
          if (!reserve_group(is, in.arg[0], 4, r)) return;
          if (rtl_->accumulate(is, static_cast<int>(mode), static_cast<int>(is.step), r, false)) {
            finish_group(is, 4, r);
            return;
          }
          ++rtl_->stats().not_covered[std::string("acc.") + isa::to_string(type)];
          for (int b = 0; b < 4; ++b)  // (not covered: the model's sums)
            std::copy(d[b], d[b] + ctx_.lanes, r[b]);
          finish_group(is, 4, r);
          return;
        }
        if (!rtl_->accumulate(is, static_cast<int>(mode), static_cast<int>(is.step), d,
                              mode_ == UnitMode::kLockstep))
          ++rtl_->stats().not_covered[std::string("acc.") + isa::to_string(type)];
      }
      if (emits) {
        const std::uint8_t* res[4] = {d[0], d[1], d[2], d[3]};
        write_group(is, in.arg[0], 4, ctx_.functional() ? res : nullptr);
      }
      return;
    }
    default:
      ctx_.error(is, std::string("'") + in.info().mnemonic + "' is not an MXM instruction");
  }
}

void Mxm::finish(std::uint64_t /*end_cycle*/) {
  if (!ready_.empty())
    ctx_.error(last_abc_, std::to_string(ready_.size()) + " product(s) of plane " +
                              std::to_string(index_) + " were never taken by an ACC");
}

}  // namespace lpu::units
