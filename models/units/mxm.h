// One MXM plane (brief A3) and its three queues: weights (LW, IW, CLW), activations (ABC) and
// results (ACC). The arithmetic is func::MxmPlane; this module adds the streams and the timing
// rules, each a schedule error naming the plane, the instruction and the cycle:
//  * iw.buf occupies the array for chip.mxm.install_cycles and iw.str until its last rows are
//    in: activations in that window, or a second install before the first ends, are errors;
//  * a staging buffer being installed or cleared (clw, chip.mxm.clear_cycles) cannot be loaded,
//    cleared or installed;
//  * the array takes one int8 activation vector per cycle and one fp16 vector every
//    1 / chip.mxm.fp16_rate cycles: a vector that comes sooner after the previous one is an
//    error;
//  * a product is ready d_func(mxm_activate) cycles after its activation vector was read; an
//    ACC that comes for a product not yet ready, or products nobody takes, are errors.
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include "func/mxm.h"
#include "units/cosim.h"
#include "units/unit.h"

namespace lpu::units {

class Mxm : public Unit {
 public:
  Mxm(const sc_core::sc_module_name& name, ChipContext& ctx, int plane);
  void execute(const Issue& is) override;
  void finish(std::uint64_t end_cycle) override;
  std::uint64_t macs() const { return plane_.macs(); }
  std::uint64_t macs_int8() const { return plane_.macs_int8(); }
  std::uint64_t macs_fp16() const { return plane_.macs_fp16(); }
  int index() const { return index_; }
  UnitMode mode() const { return mode_; }
  /// Co-simulation figures (null in tlm mode).
  const CosimStats* cosim() const { return rtl_ ? &rtl_->stats() : nullptr; }

 private:
  std::string plane_name() const;  ///< "plane 2"
  func::MxmPlane plane_;
  int index_;
  std::uint64_t installing_until_ = 0;  ///< the array's current install ends in this cycle
  int installing_buf_ = -1;             ///< the staging buffer it reads (-1: from streams)
  bool installed_ = false;
  std::vector<std::uint64_t> clearing_until_;  ///< per staging buffer: its clear ends then
  std::uint64_t next_activation_ = 0;          ///< the first cycle the array takes another vector
  isa::DType last_activation_ = isa::DType::kNone;
  std::uint64_t last_activation_at_ = 0;
  int fp16_interval_ = 1;
  std::deque<std::uint64_t> ready_;  ///< ready cycle of each waiting product
  Issue last_abc_;                   ///< for reporting products left over
  std::array<std::vector<std::uint8_t>, 4> out_;
  // The weights' type in the staging buffer and the active set, as the model holds them (a new
  // type starts a fresh, zeroed set), for the RTL.
  isa::DType staged_type_ = isa::DType::kNone, active_type_ = isa::DType::kNone;
  UnitMode mode_ = UnitMode::kTlm;
  std::unique_ptr<MxmRtlPort> rtl_;  // the plane's RTL, in rtl and lockstep modes
};

}  // namespace lpu::units
