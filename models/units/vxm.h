// The vector execution module (brief A3): 16 ALU positions per lane, each with its own queue,
// all at the VXM's stream position. Element arithmetic is func/vxm; this module reads operand
// groups from the streams, applies it and writes the result group. The large/small and
// row-to-stream-group rules are checked when a program is loaded (isa::check) and so hold here.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "units/cosim.h"
#include "units/unit.h"

namespace lpu::units {

class Vxm : public Unit {
 public:
  Vxm(const sc_core::sc_module_name& name, ChipContext& ctx);
  void execute(const Issue& is) override;
  std::uint64_t elements = 0;  ///< element operations done (lanes x issues)
  UnitMode mode() const { return mode_; }
  /// Co-simulation figures (null in tlm mode).
  const CosimStats* cosim() const { return rtl_ ? &rtl_->stats() : nullptr; }

 private:
  UnitMode mode_ = UnitMode::kTlm;
  std::unique_ptr<VxmRtlPort> rtl_;  // the ALUs' RTL, in rtl and lockstep modes
};

}  // namespace lpu::units
