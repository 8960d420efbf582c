#include "units/mxm.h"

namespace lpu::units {

using isa::DType;

Mxm::Mxm(const sc_core::sc_module_name& name, ChipContext& ctx, int plane)
    : Unit(name, ctx),
      plane_(ctx.arch->chip.mxm.rows, ctx.arch->chip.mxm.cols, ctx.lanes,
             ctx.arch->chip.mxm.accumulators, ctx.functional(),
             ctx.arch->chip.mxm.weight_buffers - 1),
      index_(plane),
      clearing_until_(static_cast<std::size_t>(std::max(ctx.arch->chip.mxm.weight_buffers - 1, 1)),
                      0),
      fp16_interval_(ctx.arch->chip.mxm.fp16_interval()) {
  for (auto& o : out_)
    o.resize(static_cast<std::size_t>(ctx.lanes));
  const CosimOptions& co = ctx.options.cosim;
  if (co.mxm != UnitMode::kTlm && co.factory && ctx.functional()) {
    mode_ = co.mxm;
    rtl_ = co.factory->mxm(ctx, plane);
  }
}

std::string Mxm::plane_name() const {
  return "plane " + std::to_string(index_);
}

void Mxm::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  const auto type = static_cast<DType>(in.mod[0]);
  // A staging buffer that an install reads, or that is being cleared, takes no other use.
  auto buffer_busy = [&](int buf, const char* what) {
    if (is.access < installing_until_ && installing_buf_ == buf) {
      ctx_.error(is, std::string(what) + " staging buffer " + std::to_string(buf) + " of " +
                         plane_name() + " while it is being installed (until cycle " +
                         std::to_string(installing_until_) + ")");
      return true;
    }
    if (is.access < clearing_until_[static_cast<std::size_t>(buf)]) {
      ctx_.error(is, std::string(what) + " staging buffer " + std::to_string(buf) + " of " +
                         plane_name() + " while it is being cleared (until cycle " +
                         std::to_string(clearing_until_[static_cast<std::size_t>(buf)]) + ")");
      return true;
    }
    return false;
  };
  switch (in.opcode) {
    case 0x60:    // lw.T s, row, buf
    case 0x62: {  // iw.str.T s, row
      const bool str = in.opcode == 0x62;
      const int buf = str ? -1 : static_cast<int>(in.arg[2]);
      if (!str && buffer_busy(buf, "loads")) return;
      if (str && is.access < installing_until_ && installing_buf_ >= 0) {
        ctx_.error(is, "installs weights into " + plane_name() +
                           " while the install of staging buffer " +
                           std::to_string(installing_buf_) + " runs (until cycle " +
                           std::to_string(installing_until_) + ")");
        return;
      }
      const std::uint8_t* planes[16] = {};
      if (!read_group(is, in.arg[0], 16, planes)) return;
      // Repetitions step through the plane: 16 int8 rows (8 fp16 rows) further each time.
      const int row =
          static_cast<int>(in.arg[1]) + static_cast<int>(is.step) * (16 / isa::dtype_bytes(type));
      // In timing mode the plane keeps no values and does not look at the (null) planes.
      const std::string err =
          str ? plane_.install_rows(type, row, planes) : plane_.load(type, row, buf, planes);
      if (!err.empty()) ctx_.error(is, err);
      isa::DType& held = str ? active_type_ : staged_type_;
      const bool fresh = held != type;
      held = type;
      if (rtl_ && err.empty()) {
        if (type == DType::kI8)
          rtl_->weights(is, str, row, planes, fresh);
        else
          ++rtl_->stats().not_covered[std::string(in.info().mnemonic) + "." + isa::to_string(type)];
      }
      if (str) {
        installing_until_ = is.result;
        installing_buf_ = -1;
        installed_ = true;
      }
      return;
    }
    case 0x61: {  // iw.buf buf
      const int buf = static_cast<int>(in.arg[0]);
      if (is.access < installing_until_) {
        ctx_.error(is, "installs weights into " + plane_name() +
                           " while the previous install runs (until cycle " +
                           std::to_string(installing_until_) + ")");
        return;
      }
      if (buffer_busy(buf, "installs")) return;
      plane_.install_from_buffer(buf);
      active_type_ = staged_type_;
      if (rtl_) rtl_->install(is);
      installing_until_ = is.result;
      installing_buf_ = buf;
      installed_ = true;
      return;
    }
    case 0x65: {  // clw buf
      const int buf = static_cast<int>(in.arg[0]);
      if (buffer_busy(buf, "clears")) return;
      plane_.clear(buf);
      staged_type_ = DType::kNone;  // the RTL's next load starts a fresh (zeroed) set
      clearing_until_[static_cast<std::size_t>(buf)] = is.result;
      return;
    }
    case 0x63: {  // abc.T s, n (one step per vector)
      if (installed_ && is.access < installing_until_) {
        ctx_.error(is,
                   "activations enter the array while its weights are still being installed (until "
                   "cycle " +
                       std::to_string(installing_until_) + ")");
        return;
      }
      if (is.access < next_activation_) {
        const int gap = static_cast<int>(is.access - last_activation_at_);
        ctx_.error(is,
                   "activations enter " + plane_name() + " in cycle " + std::to_string(is.access) +
                       ", " + std::to_string(gap) + " cycle(s) after the previous " +
                       isa::to_string(last_activation_) + " vector; the plane takes one " +
                       isa::to_string(last_activation_) + " vector every " +
                       std::to_string(next_activation_ - last_activation_at_) +
                       " cycles (chip.mxm.fp16_rate = 1/" + std::to_string(fp16_interval_) + ")");
        return;
      }
      last_activation_ = type;
      last_activation_at_ = is.access;
      next_activation_ =
          is.access + static_cast<std::uint64_t>(type == DType::kFp16 ? fp16_interval_ : 1);
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
