// Base of the SystemC modules that execute instructions: each unit is an sc_module over a plain
// C++ functional core (func/). The ICU hands it one Issue at a time, in order of access cycle,
// with the cycles already worked out from the latency table (the only place latency is applied
// is the ICU's issue: access = dispatch + d_skew, result = access + d_func). The unit reads its
// operands from the stream fabric at (its position, access), computes, and writes its results at
// (its position, result).
#pragma once

#include <algorithm>
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
  /// read_group's rare cases: nothing to read (v null), or an entry with an expect= list. Reports
  /// and returns false when the read is wrong.
  bool read_checked(const Issue& is, std::uint32_t arg, int i, const func::StreamValue* v);
  /// reserve_group's collision report.
  void reserve_failed(const Issue& is, std::uint32_t arg, int i, std::uint8_t** planes,
                      const func::Producer& other);
  int position(const Issue& is) const { return is.queue->position; }

  ChipContext& ctx_;
  UnitStats stats_;
};

// The per-issue paths, inline; the reports are out of line.

inline bool Unit::read_group(const Issue& is, std::uint32_t arg, int group,
                             const std::uint8_t** planes) {
  const int base = isa::stream_id(arg);
  const auto dir = isa::stream_west(arg) ? func::Dir::kWest : func::Dir::kEast;
  const int pos = position(is);
  const bool expects = !is.entry->expect.empty();
  for (int i = 0; i < group; ++i) {
    const func::StreamValue* v = ctx_.fabric->read(base + i, dir, pos, is.access);
    if ((!v || expects) && !read_checked(is, arg, i, v)) return false;
    planes[i] = v->data;
  }
  return true;
}

inline bool Unit::reserve_group(const Issue& is, std::uint32_t arg, int group,
                                std::uint8_t** planes) {
  const int base = isa::stream_id(arg);
  const auto dir = isa::stream_west(arg) ? func::Dir::kWest : func::Dir::kEast;
  const int pos = position(is);
  for (int i = 0; i < group; ++i) {
    func::Producer other;
    planes[i] = ctx_.fabric->reserve(base + i, dir, pos, is.result, is.producer(), &other);
    if (!planes[i]) {
      reserve_failed(is, arg, i, planes, other);
      return false;
    }
  }
  return true;
}

inline void Unit::finish_group(const Issue& is, int group, std::uint8_t* const* planes) const {
  const int live = is.superlanes * ctx_.arch->chip.lanes_per_superlane;
  if (live >= ctx_.lanes || !ctx_.functional()) return;
  for (int i = 0; i < group; ++i)
    std::fill(planes[i] + live, planes[i] + ctx_.lanes, 0);
}

}  // namespace lpu::units
