// The instruction control unit (brief A1, A2): one in-order queue per functional position. It
// dispatches every instruction at the cycle the program gives, expands repetitions (Repeat, and
// the one-vector-per-cycle steps of ABC, ACC and Ifetch), applies the latency table once
// (access = dispatch + d_skew, result = access + d_func, completion = result + active
// superlanes - 1) and hands each issue to its unit in order of access cycle across all queues.
// It runs Nop, Sync/Notify, Config and Ifetch itself and checks the program's timing claims:
// a queue dispatching while parked at a Sync, an instruction not yet fetched, and a predicted
// completion cycle (done=) that differs from the simulated one are schedule errors.
#pragma once

#include <queue>
#include <systemc>
#include <vector>

// Needs <systemc> first.
#include <tlm_utils/tlm_quantumkeeper.h>

#include "units/unit.h"

namespace lpu::units {

class Icu : public Unit {
 public:
  Icu(const sc_core::sc_module_name& name, ChipContext& ctx, const isa::ChipProgram* program,
      std::vector<Unit*> unit_of_queue);
  /// ICU instructions (Nop, Ifetch, Sync, Notify, Config).
  void execute(const Issue& is) override;

  /// Runs the whole program (called from the chip's thread).
  void run();

  std::uint64_t end_cycle() const { return end_cycle_; }  ///< last completion + 1 (0 if empty)
  std::uint64_t issues() const { return issues_; }
  /// Issues per latency class (arch::latency_classes() order): what the energy estimate charges.
  const std::vector<std::uint64_t>& class_issues() const { return class_issues_; }
  std::uint64_t instructions() const { return instructions_; }
  bool stopped() const { return stopped_; }

 private:
  struct Cursor {
    const arch::Queue* queue = nullptr;
    const isa::QueueProgram* prog = nullptr;
    std::size_t next = 0;  // next entry to expand
    // the expansion in progress
    std::uint32_t index = 0;
    const isa::Instr* instr = nullptr;
    const isa::Entry* entry = nullptr;
    std::uint32_t step = 0, steps = 0, step_base = 0;
    std::uint64_t first = 0, stride = 1;
    Unit* unit = nullptr;                         // who executes instr
    const isa::Instr* last_unit_instr = nullptr;  // what a Repeat repeats
    std::uint64_t parked_at = ~0ull;              // access cycle of a Sync not yet released
    std::uint64_t fetched = 0;                    // entries available to dispatch
    std::vector<std::pair<std::uint64_t, std::uint64_t>> fetches;  // (ready cycle, entries)
    bool more() const { return step < steps; }
    std::uint64_t dispatch() const { return first + stride * step; }
  };
  // Issues stay put in a slab; the calendar below holds their indices.
  struct Slot {
    Issue issue;
    Unit* unit = nullptr;
    bool last = false;  // last step of its entry
  };

  bool expand(Cursor& c);          // sets up the next entry; false when the queue is done
  void materialize(Cursor& c);     // turns the current step into a pending issue
  void check_dispatch(Cursor& c);  // fetched yet? released from a sync?
  void execute(Slot& s);
  Cursor& cursor_of(const arch::Queue* q) {
    return cursors_[static_cast<std::size_t>(cursor_index_[q->id])];
  }
  void timing_error(const Cursor& c, std::uint64_t cycle, const std::string& message);
  const arch::Latency& latency(const isa::Instr& in) const { return latency_[in.opcode]; }

  const isa::ChipProgram* program_;
  std::vector<Unit*> unit_of_queue_;
  std::vector<arch::Latency> latency_;  // by opcode
  std::vector<std::uint8_t> class_of_;  // latency class index by opcode
  std::vector<std::uint64_t> class_issues_;
  std::vector<Cursor> cursors_;
  std::vector<int> cursor_index_;  // by queue id, -1 for queues without instructions
  std::uint64_t skew_lag_ = 0;     // largest d_skew: how far issues may run behind dispatch order
  bool last_step_ = false;         // set while executing the last step of an entry
                            // Issues waiting for their access cycle, in a calendar: every waiting
                            // access lies within a
  // window of a few d_skew of the earliest one (see run()), so buckets by cycle modulo a
  // power of two beyond that window order them in O(1); within a bucket, in issue order.
  std::vector<std::vector<std::uint32_t>> buckets_;
  std::uint64_t bucket_mask_ = 0;
  std::size_t waiting_ = 0;             // in buckets_
  std::uint64_t low_ = 0, high_ = 0;    // earliest and latest access in buckets_
  std::vector<std::uint32_t> current_;  // the bucket being executed
  std::size_t current_at_ = 0;
  std::uint64_t current_access_ = 0;
  void wait(std::uint32_t slot, std::uint64_t access);
  bool any_waiting() const { return current_at_ < current_.size() || waiting_ > 0; }
  std::uint64_t earliest() const { return current_at_ < current_.size() ? current_access_ : low_; }
  std::uint32_t take();
  // Cursors waiting for their next dispatch cycle, in a second calendar: those due within
  // dispatch_buckets_.size() cycles of dispatch_now_ sit in buckets by cycle (in the order they
  // were scheduled), later ones in a heap until they come within range.
  using Due = std::pair<std::uint64_t, std::uint32_t>;  // (dispatch cycle, cursor)
  std::vector<std::vector<std::uint32_t>> dispatch_buckets_;
  std::uint64_t dispatch_mask_ = 0, dispatch_now_ = 0;
  std::size_t dispatch_near_ = 0, dispatch_at_ = 0;  // cursors in buckets; next in current bucket
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> dispatch_far_;
  void schedule(std::uint32_t cursor);
  bool next_dispatch(std::uint64_t* cycle) {  // earliest dispatch due, false when none is left
    if (dispatch_at_ < dispatch_buckets_[dispatch_now_ & dispatch_mask_].size()) {
      *cycle = dispatch_now_;
      return true;
    }
    return advance_dispatch(cycle);
  }
  bool advance_dispatch(std::uint64_t* cycle);  // next_dispatch past the current bucket
  std::uint32_t take_dispatch();                // the cursor due at that cycle, in schedule order
  std::vector<Slot> slab_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t quantum_cycles_ = 1, next_sync_ = 0;    // temporal decoupling, in chip cycles
  std::vector<std::uint64_t> notifies_;                 // access cycles, ascending
  std::vector<std::pair<std::uint64_t, int>> configs_;  // (effective cycle, superlanes), ascending
  std::size_t config_at_ = 0;
  int superlanes_;
  std::uint64_t end_cycle_ = 0;
  std::uint64_t issues_ = 0, instructions_ = 0;
  bool stopped_ = false;
  tlm_utils::tlm_quantumkeeper qk_;
};

}  // namespace lpu::units
