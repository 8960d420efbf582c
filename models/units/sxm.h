// One switch execution module (brief A3) and its queues (shift/select, permute, distribute,
// rotate, transposers). The networks are func/sxm on byte planes; a multi-byte element moves as
// its byte planes, each through the same network.
#pragma once

#include <vector>

#include "units/unit.h"

namespace lpu::units {

class Sxm : public Unit {
 public:
  Sxm(const sc_core::sc_module_name& name, ChipContext& ctx);
  void execute(const Issue& is) override;

 private:
  std::vector<std::vector<std::uint8_t>> out_;  // up to 16 output planes
};

}  // namespace lpu::units
