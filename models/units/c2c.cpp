#include "units/c2c.h"

namespace lpu::units {

void C2cPort::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  if (in.opcode == 0x82) return;  // deskew: a single chip is its own time base
  if (in.opcode == 0x80) {
    const std::uint8_t* plane = nullptr;
    if (!read_group(is, in.arg[0], 1, &plane)) return;
    ctx_.error(
        is, "sends on link " + std::to_string(link_) + ", which is not connected to another chip");
    return;
  }
  ctx_.error(is, "receives on link " + std::to_string(link_) +
                     ", which is not connected: nothing arrives");
}

}  // namespace lpu::units
