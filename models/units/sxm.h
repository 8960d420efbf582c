// One switch execution module (brief A3) and its queues (shift/select, permute, distribute,
// rotate, transposers). The networks are func/sxm on byte planes; a multi-byte element moves as
// its byte planes, each through the same network.
#pragma once

#include <memory>
#include <vector>

#include "units/cosim.h"
#include "units/unit.h"

namespace lpu::units {

class Sxm : public Unit {
 public:
  /// `shift_queue`: the unit's shift/select queue (its co-simulation finds the others by name).
  Sxm(const sc_core::sc_module_name& name, ChipContext& ctx, const arch::Queue& shift_queue);
  void execute(const Issue& is) override;
  UnitMode mode() const { return mode_; }
  /// Co-simulation figures (null in tlm mode).
  const CosimStats* cosim() const { return rtl_ ? &rtl_->stats() : nullptr; }

 private:
  /// The operation on the RTL (rtl: its results fill the reserved outputs; lockstep: compared
  /// with the model's in res). Returns false when the RTL does not take it.
  bool on_rtl(const Issue& is, SxmRtlPort::Op op, int outputs, std::uint32_t d_arg,
              const std::uint8_t* const* res, const std::string& model_error);

  std::vector<std::vector<std::uint8_t>> out_;  // up to 16 output planes
  UnitMode mode_ = UnitMode::kTlm;
  std::unique_ptr<SxmRtlPort> rtl_;  // the networks' RTL, in rtl and lockstep modes
};

}  // namespace lpu::units
