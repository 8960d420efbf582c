// The scheduler: places a kernel program's tensors in MEM and streams every step through the
// machine at fixed cycles, reserving each resource it uses exactly, and emits the program
// (isa/program.h) with the predicted completion cycle of every instruction.
//
// Its model of the machine is its own (brief B6): a value written at position p in cycle t travels
// one position per hop_cycles in its direction; an instruction dispatched in cycle D reads its
// operands in D + d_skew at its position and writes its result there in D + d_skew + d_func; it
// completes when the last superlane has done so, superlanes - 1 cycles later.
//
// Resources reserved per step:
//  * queues: busy from dispatch to the last repetition;
//  * MEM slices: one read and one write per cycle, never a read and a write of one bank together;
//  * streams: each value owns its diagonal between the slot where it is written and the slot
//    where it is read (positions inclusive), so no other value can overwrite it on the way;
//  * data: a tensor row is read only after the cycle it was written.
// The earliest cycle at which every reservation of a step fits is found by moving past each
// conflict in turn; the choice of VXM ALU and stream groups is the first that reaches it.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "compiler/kernels.h"
#include "isa/program.h"

namespace lpu::compiler {

struct Placed {
  std::string tensor;
  std::string where;  ///< "mem.w3:0x0000+12, mem.w4:0x0000+12"
};

/// Where a kernel step landed: its first dispatch, last completion and the unit cycles it took.
struct StepTiming {
  std::string origin;  ///< the graph node (KStep::origin)
  std::uint64_t first = 0, last = 0;
  std::uint64_t mxm_cycles = 0;  ///< plane-cycles streaming activations
  std::uint64_t vxm_cycles = 0;  ///< ALU-cycles
};

struct Schedule {
  isa::Program program;
  std::uint64_t cycles = 0;             ///< predicted
  std::uint64_t mem_bytes[2] = {0, 0};  ///< MEM used per hemisphere (west, east)
  std::uint64_t vxm_busy = 0;           ///< VXM ALU-cycles
  std::uint64_t mxm_busy = 0;           ///< MXM plane-cycles streaming activations
  std::vector<Placed> placements;
  std::vector<StepTiming> steps;  ///< per kernel step, in program order
  std::vector<bool> reused;       ///< per kernel tensor: its storage went to later tensors
  /// Per kSend step, in program order: the cycle each vector's send reads its stream (the
  /// frame's send cycle; it arrives func::LinkTiming::arrival of it later).
  std::vector<std::vector<std::uint64_t>> sends;
};

/// The steps of one graph node together (nodes in the order they first appear): when its work
/// started and ended, and the unit cycles it took.
struct NodeTiming {
  std::string node;  ///< the origin's node name and operator, "'conv1' (Conv)"
  std::uint64_t first = 0, last = 0;
  std::uint64_t mxm_cycles = 0, vxm_cycles = 0;
  std::size_t steps = 0;
};
std::vector<NodeTiming> per_node(const Schedule& s);

/// How to schedule, and the scheduler's self-checks and diagnostics (which never change the
/// program).
struct ScheduleOptions {
  /// A tensor's MEM is handed to later tensors once its last reader is scheduled (their writes
  /// wait for that read); without, every tensor keeps its own (so that all of them can be read
  /// back after the run, as `lpu verify --probe` does).
  bool reuse_memory = true;
  /// Replays every MEM read and write of the program in time order and requires each read to
  /// find what its tensor's writer put there (a std::logic_error otherwise): a check of
  /// placement and reuse for tests (`--check-memory`).
  bool check_memory = false;
  /// Diagnostics on stderr (`--scheduler-log`): "mem" (the slices and the largest live tensors
  /// when a placement fails), "fit" (an operation that conflicts with itself), "instr" (the
  /// tensors with the most MEM instructions).
  std::set<std::string> log;
  /// MXM weights the program carries as constants get a second copy of every piece on other
  /// slices, so that a weight load reads whichever copy is free sooner: all of them when twice
  /// their bytes fit in weight_copy_share of MEM, else, when they take at most half of MEM, the
  /// first ones placed up to weight_copy_part of MEM (0 and 0: none; 15% suited ResNet-50,
  /// docs/compiler.md). When the copies leave a later tensor no room, the program is scheduled
  /// again without them.
  double weight_copy_share = 0.4, weight_copy_part = 0.15;
};

/// The names ScheduleOptions::log takes; parse_schedule_log("mem,fit", where) checks a list of
/// them (InputError naming `where` otherwise).
const std::vector<std::string>& schedule_log_names();
std::set<std::string> parse_schedule_log(const std::string& list, const std::string& where);

/// Throws InputError (naming the tensor and the sizes involved) when a tensor does not fit.
Schedule schedule(const Kernels& k, const arch::Arch& arch, const std::string& source,
                  const ScheduleOptions& options = {});

/// A program split over chips (compiler/partition.h, docs/multichip.md): chips[c] are chip c's
/// kernels (the same steps and tensors, its own constants). One timetable serves every chip;
/// chip c's program runs on the system's chip c, and its tensors are named "NAME@c". In round
/// k of an exchange each chip sends to chip c + k and receives from chip c - k (mod n), so
/// every chip must reach chip c + k on the same port (as a fully connected system does).
/// Throws InputError naming the system when it does not connect the chips so.
Schedule schedule_spmd(const std::vector<Kernels>& chips, const arch::Arch& arch,
                       const std::string& source, const ScheduleOptions& options = {});

}  // namespace lpu::compiler
