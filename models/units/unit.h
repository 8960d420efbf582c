// Base of the SystemC modules that execute instructions: each unit is an sc_module over a plain
// C++ functional core (func/). The ICU hands it one Issue at a time, in order of access cycle,
// with the cycles already worked out from the latency table (the only place latency is applied
// is the ICU's issue: access = dispatch + d_skew, result = access + d_func). The unit reads its
// operands from the stream fabric at (its position, access), computes, and writes its results at
// (its position, result).
#pragma once

#include <systemc>
#include <vector>

#include "units/sim.h"

namespace lpu::units {

class Unit : public sc_core::sc_module {
 public:
  Unit(const sc_core::sc_module_name& name, ChipContext& ctx)
      : sc_core::sc_module(name), ctx_(ctx) {}
  /// Executes one issue. Errors in the program are reported through the context.
  virtual void execute(const Issue& is) = 0;
  /// Called once after the last issue: reports work left undone (e.g. products nobody took).
  virtual void finish(std::uint64_t /*end_cycle*/) {}
  const UnitStats& stats() const { return stats_; }

 protected:
  /// Reads the `group` streams starting at stream operand `arg` where they pass the unit in the
  /// issue's access cycle. planes[i] points at stream i's `lanes` bytes (null in timing mode).
  /// Returns false after reporting a read of nothing or of an unexpected producer.
  bool read_group(const Issue& is, std::uint32_t arg, int group, const std::uint8_t** planes);
  /// Writes `group` planes onto the streams at `arg` in the issue's result cycle. Lanes of
  /// powered-down superlanes are written as zeros. planes may be null in timing mode.
  void write_group(const Issue& is, std::uint32_t arg, int group,
                   const std::uint8_t* const* planes);
  /// Reserves the `group` result values at `arg` in the issue's result cycle and hands out their
  /// bytes to fill in place (saves a copy). Returns false after reporting a collision (any planes
  /// already reserved are zeroed). Call finish_group once they are filled.
  bool reserve_group(const Issue& is, std::uint32_t arg, int group, std::uint8_t** planes);
  /// Clears the lanes of powered-down superlanes in reserved planes.
  void finish_group(const Issue& is, int group, std::uint8_t* const* planes) const;
  /// "s3e"
  static std::string stream_name(std::uint32_t arg, int offset = 0);
  int position(const Issue& is) const { return is.queue->position; }

  ChipContext& ctx_;
  UnitStats stats_;
};

}  // namespace lpu::units
