// A chip-to-chip port (brief A3): Send puts a stream's vector on the link, Receive takes the
// vector arriving from it. On a single chip no link is attached, so both are schedule errors;
// the multi-chip system attaches link channels here.
#pragma once

#include "units/unit.h"

namespace lpu::units {

class C2cPort : public Unit {
 public:
  C2cPort(const sc_core::sc_module_name& name, ChipContext& ctx, int link)
      : Unit(name, ctx), link_(link) {}
  void execute(const Issue& is) override;

 private:
  int link_;
};

}  // namespace lpu::units
