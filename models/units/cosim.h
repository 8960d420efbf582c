// What a SystemC unit sees of its RTL in co-simulation (docs/cosim.md, brief B7): a port that
// takes the unit's vector operations and runs them on a Verilated block behind a transactor
// (models/cosim). The units stay free of Verilator: the system builds the ports through a
// CosimFactory and the units only hold them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <systemc>

#include "func/c2c_link.h"
#include "func/sram.h"
#include "func/vxm.h"
#include "units/sim.h"

namespace lpu::units {

/// A unit's co-simulation figures, for the report and the closing "matched N vectors".
struct CosimStats {
  std::uint64_t rtl_vectors = 0;  ///< vectors the RTL computed (or checked)
  std::uint64_t matched = 0;      ///< lockstep: vectors equal in every lane
  std::uint64_t mismatched = 0;   ///< lockstep: vectors that differ in some lane
  std::uint64_t rtl_cycles = 0;   ///< clock cycles of the RTL (superlane beats)
  /// Vectors the model computed because the RTL lacks the operation, by operation ("exp.fp32").
  std::map<std::string, std::uint64_t> not_covered;
};

/// The VXM's ALUs in RTL.
class VxmRtlPort {
 public:
  virtual ~VxmRtlPort() = default;
  /// Whether the RTL implements this operation (else the model computes it and counts it as not
  /// covered).
  virtual bool covers(const func::VxmArgs& args) const = 0;
  /// Runs one vector operation of the issue on the ALU of its queue, a superlane per RTL cycle,
  /// within the issue's access cycle; the operands are copied. With `compare` the results are
  /// checked against `d` (the model's, already there), else written into `d` (dtype-byte planes
  /// of the result, filled before the next cycle). `superlanes`: live superlanes.
  virtual void submit(const Issue& is, const func::VxmArgs& args, const std::uint8_t* const* a,
                      const std::uint8_t* const* b, const std::uint8_t* const* m,
                      std::uint8_t* const* d, bool compare) = 0;
  virtual CosimStats& stats() = 0;
};

/// A MEM slice's storage in RTL: one SECDED bank (rtl/mem/mem_bank.sv) holding every superlane's
/// chunk of every word, a superlane per RTL clock. The model's array is kept as well (the host
/// reads outputs from it); in rtl mode the program's reads take the RTL's data and ECC events.
class MemRtlPort {
 public:
  virtual ~MemRtlPort() = default;
  /// Before the run: the word the host left at `addr` (stored through the write port at time 0).
  virtual void preload(std::uint32_t addr, const std::uint8_t* word) = 0;
  /// Inverts stored bit `bit` of word `addr` (func::SramSlice::flip_bit numbering).
  virtual void flip(std::uint32_t addr, int bit) = 0;
  virtual void write(const Issue& is, std::uint32_t addr, const std::uint8_t* word) = 0;
  /// A word read. rtl: fills `word` before the next cycle, counts the RTL's ECC events and
  /// reports an uncorrectable one; lockstep: compares with `word` and the model's events.
  virtual void read(const Issue& is, std::uint32_t addr, std::uint8_t* word, bool compare,
                    func::ReadResult model) = 0;
  /// Gather (lane l reads byte l of word addrs[l] into bytes[l]; rtl fills, lockstep compares)
  /// and scatter (lane l writes bytes[l] there, a read-modify-write of its chunk).
  virtual void gather(const Issue& is, const std::uint32_t* addrs, std::uint8_t* bytes,
                      bool compare, func::ReadResult model) = 0;
  virtual void scatter(const Issue& is, const std::uint32_t* addrs, const std::uint8_t* bytes,
                       bool compare, func::ReadResult model) = 0;
  virtual CosimStats& stats() = 0;
};

/// An SXM's networks in RTL: the lane network (rtl/sxm/sxm_lanes.sv) of its shift/select queue and
/// of its permute queue, and a 16 x 16 transposer (rtl/sxm/sxm_transpose.sv) per transpose
/// queue. Distribute and rotate have no RTL (the model computes them, counted as not covered).
class SxmRtlPort {
 public:
  virtual ~SxmRtlPort() = default;
  virtual bool covers(std::uint8_t opcode) const = 0;
  /// One operation of the issue on its queue's block: `planes` planes of a (and b for select),
  /// `map` (two planes) for permute; 16 planes for transpose. rtl: fills `d` before the next
  /// cycle, and reports a bad permute map as the model does (at `map_stream`, `position`);
  /// lockstep: compares with `d` and with the model's verdict on the map (`model_error`, "" when
  /// it took the map).
  struct Op {
    std::uint8_t opcode = 0;
    int planes = 1, amount = 0;
    bool north = false;
    const std::uint8_t* const* a = nullptr;
    const std::uint8_t* const* b = nullptr;
    const std::uint8_t* const* map = nullptr;
    std::uint8_t* const* d = nullptr;
    bool compare = false;
    std::string model_error, map_stream;
    int position = -1;
  };
  virtual void submit(const Issue& is, const Op& op) = 0;
  virtual CosimStats& stats() = 0;
};

/// A C2C port's link layer in RTL (rtl/c2c/c2c_link.sv): one block frames and serialises what the
/// port sends, over the frame's serialisation window from its send cycle; another deserialises
/// and checks each frame coming to the port, over the window its bits arrive in (ending the
/// cycle before its arrival). The serial clock is the window over the bits on a lane.
class C2cRtlPort {
 public:
  virtual ~C2cRtlPort() = default;
  /// A send in the issue's cycle; the frame occupies the link `cycles` cycles. `done` gets the
  /// frame's bytes as the lanes carried them; lockstep: first compared with `model_wire`.
  virtual void send(const Issue& is, const func::LinkFrame& f, std::uint64_t cycles,
                    std::function<void(const std::vector<std::uint8_t>&)> done,
                    const std::vector<std::uint8_t>* model_wire) = 0;
  /// A frame for this port: `wire` (as the link delivered it, bit errors included) on the
  /// receive lanes over cycles [from, to).
  virtual void incoming(const std::vector<std::uint8_t>& wire, std::uint64_t from,
                        std::uint64_t to) = 0;
  /// The receive side's verdict on the oldest frame not yet taken (ready by its arrival cycle).
  struct Received {
    bool crc_ok = false;
    func::LinkFrame frame;
  };
  virtual Received take() = 0;
  /// Lockstep: compares a taken verdict with the model's decode (nullopt: CRC failed).
  virtual void compare(const Issue& is, const Received& rtl,
                       const std::optional<func::LinkFrame>& model) = 0;
  virtual CosimStats& stats() = 0;
};

/// An MXM plane in RTL (rtl/mxm/mxm_plane.sv: 16 x 16 int8 supercells and the int32
/// accumulators): int8 weights, activations and int32 accumulations. fp16 work stays with the
/// model (counted as not covered); the model always computes too, keeping the plane's state.
class MxmRtlPort {
 public:
  virtual ~MxmRtlPort() = default;
  /// LW (`direct` false) or IW from streams (true): 16 int8 rows from `row`, one plane each;
  /// `fresh`: the model started a new set of weights there (cleared first).
  virtual void weights(const Issue& is, bool direct, int row, const std::uint8_t* const* planes,
                       bool fresh) = 0;
  virtual void install(const Issue& is) = 0;  ///< IW from the staging buffer
  /// ABC of an int8 vector (`x` null: a product the RTL does not compute, fp16).
  virtual void activate(const Issue& is, const std::uint8_t* x) = 0;
  /// ACC of the oldest product into `slot` (func::MxmPlane::AccMode `mode`). When it emits: rtl
  /// fills `out` (4 planes) before the next cycle; lockstep compares with `out`. Returns false
  /// when the RTL does not take it (an fp16 product).
  virtual bool accumulate(const Issue& is, int mode, int slot, std::uint8_t* const* out,
                          bool compare) = 0;
  virtual CosimStats& stats() = 0;
};

/// Builds the RTL side of each chip's units (one per run, shared by its chips).
class CosimFactory {
 public:
  virtual ~CosimFactory() = default;
  /// The VXM's RTL port of one chip, a child module of the calling (chip) module.
  virtual std::unique_ptr<VxmRtlPort> vxm(ChipContext& ctx) = 0;
  /// A MEM slice's bank; the slice's ECC counters, which the RTL's events go to in rtl mode.
  virtual std::unique_ptr<MemRtlPort> mem(ChipContext& ctx, std::uint64_t* corrected,
                                          std::uint64_t* uncorrectable) = 0;
  /// An SXM's networks; `shift_queue` is its shift/select queue (its other queues share the
  /// name up to ".shift").
  virtual std::unique_ptr<SxmRtlPort> sxm(ChipContext& ctx, const arch::Queue& shift_queue) = 0;
  /// A C2C port's link layer.
  virtual std::unique_ptr<C2cRtlPort> c2c(ChipContext& ctx) = 0;
  /// An MXM plane (`plane`: its number).
  virtual std::unique_ptr<MxmRtlPort> mxm(ChipContext& ctx, int plane) = 0;
  /// After the simulation: closes the waveform. Returns false with `error` set when it could not
  /// be written.
  virtual bool finish(std::string* error) = 0;
  /// The waveform written ("" when none was asked for, or nothing fell in its window).
  virtual std::string waves_written() const = 0;
};

}  // namespace lpu::units
