// What the SystemC units of one chip share while a program runs: options, the chip's context
// (description, queues, fabric, statistics) and the schedule-error channel (brief B4).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"
#include "func/stream_fabric.h"
#include "isa/program.h"

namespace lpu::units {

enum class Mode { kFunctional, kTiming };
enum class OnError { kStop, kReport };

/// How a unit computes in a run (docs/cosim.md): its SystemC model alone, its Verilated RTL
/// behind a transactor, or both with every output vector compared.
enum class UnitMode { kTlm, kRtl, kLockstep };
const char* to_string(UnitMode m);

class CosimFactory;  // units/cosim.h; implemented by models/cosim

/// Co-simulation with the RTL blocks (rtl/): the VXM's ALUs, the MEM slices' banks, the SXMs' lane
/// networks and transposers, the C2C ports' link layers and the MXM planes.
struct CosimOptions {
  UnitMode vxm = UnitMode::kTlm;
  UnitMode mem = UnitMode::kTlm;
  UnitMode sxm = UnitMode::kTlm;
  UnitMode c2c = UnitMode::kTlm;
  UnitMode mxm = UnitMode::kTlm;
  bool plant_fault = false;  ///< use the blocks Verilated with their planted fault
  std::string waves;         ///< "": none; else an .fst or .vcd file of the RTL signals
  std::uint64_t waves_from = 0, waves_to = ~0ull;  ///< cycles [from, to) dumped
  /// Builds the RTL side of each chip (set by system::run when a unit is not kTlm).
  std::shared_ptr<CosimFactory> factory;
  bool any() const {
    return vxm != UnitMode::kTlm || mem != UnitMode::kTlm || sxm != UnitMode::kTlm ||
           c2c != UnitMode::kTlm || mxm != UnitMode::kTlm;
  }
};

struct SimOptions {
  Mode mode = Mode::kFunctional;
  OnError on_error = OnError::kStop;
  std::uint64_t max_cycles = 0;  ///< 0: no limit
  double quantum_ns = 1000.0;    ///< temporal-decoupling quantum of the loosely-timed units
  /// C2C links: bit error rate per link direction (0: none) and the seed of the injection.
  double link_bit_error_rate = 0;
  std::uint64_t link_seed = 1;
  /// Bits to invert in MEM after the program is loaded (fault injection for SECDED).
  struct BitFlip {
    std::uint32_t chip = 0;
    std::string slice;  ///< "mem.w3"
    std::uint32_t addr = 0;
    int bit = 0;  ///< numbering of func::SramSlice::flip_bit: data bits, then check bits
  };
  std::vector<BitFlip> flips;
  /// Chip clocks (docs/multichip.md): each chip's runs off by a fixed rate drawn uniformly from
  /// [-clock_drift_ppm, +clock_drift_ppm] (from drift_seed and the chip's number); 0: every chip
  /// on one exact time base.
  double clock_drift_ppm = 0;
  std::uint64_t drift_seed = 1;
  CosimOptions cosim;
};

/// A chip's clock against the system's time base: its cycle t falls at system time t + skew(t),
/// the skew growing at the clock's drift rate from the last realignment. `deskew` realigns it at
/// the next epoch of the hardware-aligned counter (every chip's counter shows the system's time
/// base, kept aligned over the links).
struct ChipClock {
  double ppm = 0;
  std::uint64_t t0 = 0;  ///< the cycle of the last realignment
  double s0 = 0;         ///< the skew then (0, or a whole epoch when the chip slipped one)
  std::uint64_t deskews = 0;
  double worst = 0;  ///< the largest |skew| at a send or receive
  double skew(std::uint64_t t) const {
    return s0 + (static_cast<double>(t) - static_cast<double>(t0)) * ppm * 1e-6;
  }
  double system_time(std::uint64_t t) const { return static_cast<double>(t) + skew(t); }
  /// A deskew dispatched in cycle t holds its queue until the chip's next epoch boundary L
  /// (a multiple of `epoch`), which it then makes coincide with the aligned counter's (a chip
  /// already past that boundary in system time realigns to the next one). Returns L.
  std::uint64_t deskew(std::uint64_t t, std::uint64_t epoch) {
    const std::uint64_t k = (t + epoch - 1) / epoch;
    const double g = system_time(t);
    const std::uint64_t kg = g <= static_cast<double>(k * epoch) ? k : k + 1;
    t0 = k * epoch;
    s0 = static_cast<double>(kg * epoch) - static_cast<double>(t0);
    ++deskews;
    return t0;
  }
};

/// A bad program found while running it: where and when, never silent.
struct ScheduleError {
  /// "schedule error" (the program), or "lockstep mismatch" (the RTL differs from the model)
  std::string kind = "schedule error";
  std::uint32_t chip = 0;
  std::string unit;               ///< "MEM", "VXM", ...
  std::string queue;              ///< "mem.w0"
  std::int64_t instruction = -1;  ///< index in its queue
  std::uint32_t repetition = 0;   ///< which issue of a repeated or multi-cycle instruction
  std::uint64_t cycle = 0;
  std::string stream;  ///< "s3e", or ""
  int position = -1;   ///< stream-register position, or -1
  std::string message;
  std::string to_string() const;
};

/// Thrown to end a run at the first schedule error when the options say stop.
struct StopRun {};

/// Per-unit figures for the report.
struct UnitStats {
  std::uint64_t instructions = 0;  ///< issues, counting every repetition and every vector step
  std::uint64_t busy_cycles = 0;   ///< cycles in which the unit's queues issued work
};

struct MemStats {
  std::vector<std::array<std::uint64_t, 2>> reads;  ///< [slice][bank 0/1+]
  std::vector<std::array<std::uint64_t, 2>> writes;
  std::uint64_t ecc_corrected = 0;
  std::uint64_t ecc_uncorrectable = 0;
};

/// One issue of an instruction: the ICU hands these to the units in order of access cycle.
struct Issue {
  const arch::Queue* queue = nullptr;
  std::uint32_t index = 0;  ///< entry index in the queue (the repeat's own index for repeats)
  std::uint32_t step = 0;   ///< repetition or vector step
  const isa::Instr* instr = nullptr;  ///< what runs (for a repeat: the repeated instruction)
  const isa::Entry* entry = nullptr;  ///< the program entry (its expect list)
  std::uint64_t dispatch = 0;
  std::uint64_t access = 0;  ///< dispatch + d_skew: operands read, arrays accessed
  std::uint64_t result = 0;  ///< access + d_func: results written
  int superlanes = 0;        ///< powered superlanes for this issue
  func::Producer producer() const { return func::Producer{queue->id, index, step}; }
};

/// Everything the units of one chip share.
struct ChipContext {
  std::uint32_t chip_id = 0;
  const arch::Arch* arch = nullptr;
  std::vector<arch::Queue> queues;
  SimOptions options;
  func::StreamFabric* fabric = nullptr;
  std::vector<ScheduleError>* errors = nullptr;
  int lanes = 0;
  ChipClock clock;

  /// Records a schedule error; throws StopRun when the options say stop.
  void error(const Issue& at, const std::string& message, const std::string& stream = "",
             int position = -1);
  /// Records an error found outside the ICU's thread (a transactor's): the ICU stops the run at
  /// its next step when the options say stop.
  void record(const Issue& at, const std::string& message, const std::string& stream = "",
              int position = -1);
  bool stop_requested = false;
  bool functional() const { return options.mode == Mode::kFunctional; }
};

const char* unit_name(arch::QueueUnit u);

}  // namespace lpu::units
