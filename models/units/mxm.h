// One MXM plane (brief A3) and its three queues: weights (LW, IW), activations (ABC) and results
// (ACC). The arithmetic is func::MxmPlane; this module adds the streams and the timing rules:
// installing weights occupies the array for the install latency (an ABC in that window is an
// error), a product is ready d_func(mxm_activate) cycles after its activation vector was read,
// and an ACC that comes for a product not yet ready, or products nobody takes, are errors.
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
  UnitMode mode() const { return mode_; }
  /// Co-simulation figures (null in tlm mode).
  const CosimStats* cosim() const { return rtl_ ? &rtl_->stats() : nullptr; }

 private:
  func::MxmPlane plane_;
  int index_;
  std::uint64_t installing_until_ = 0;  ///< last cycle of the current weight install
  bool installed_ = false;
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
