// The waveform of the RTL blocks in a co-simulation: one FST file with every Verilated block of
// every chip, dumped at the end of each SystemC time step (so its time is the simulated time:
// chip cycle c starts at c clock periods) within a window of cycles. A .vcd is written by
// converting the FST when the run ends. Beside it, NAME.gtkw: a GTKWave save file that opens the
// file with each block's useful signals grouped.
#pragma once

#include <functional>
#include <string>
#include <systemc>
#include <vector>

#include "cosim/cosim.h"
#include "verilated_fst_c.h"

namespace lpu::cosim {

class Waves final : public sc_core::sc_trace_file, public VerilatedFstC {
 public:
  /// Registers with the SystemC kernel; nothing is written before the simulation starts.
  /// `from`/`to`: the window, in SystemC time.
  Waves(std::string path, sc_core::sc_time from, sc_core::sc_time to);
  ~Waves() override;
  /// Adds a block: `trace` registers its signals (called once, when the file opens); `layout`
  /// gives its part of the GTKWave save file (groups of signals; "" to leave it out).
  void add(std::function<void(VerilatedFstC*)> trace, std::function<std::string()> layout);
  /// Ends the file (and writes the .vcd); no dumps after this. Returns false with `error` set
  /// when the .vcd could not be written.
  bool finish(std::string* error);
  const std::string& path() const { return path_; }
  std::uint64_t dumps() const { return dumps_; }

 protected:
  void cycle(bool delta_cycle) override;

 private:
  std::string path_, fst_path_;
  bool vcd_ = false, opened_ = false, finished_ = false;
  double from_, to_;  // in the time resolution
  std::uint64_t dumps_ = 0;
  std::vector<std::function<void(VerilatedFstC*)>> blocks_;
  std::vector<std::function<std::string()>> layouts_;
  double first_ = -1;  // the first time dumped
  bool write_layout(std::string* error) const;

  // The SystemC tracing interface, unused: the blocks trace themselves through Verilator.
  void set_time_unit(double, sc_core::sc_time_unit) override {}
  void write_comment(const std::string&) override {}
  void trace(const unsigned int&, const std::string&, const char**) override {}
#define LPU_TRACE_A(T) \
  void trace(const T&, const std::string&) override {}
#define LPU_TRACE_B(T) \
  void trace(const T&, const std::string&, int) override {}
  LPU_TRACE_A(sc_core::sc_event)
  LPU_TRACE_A(sc_core::sc_time)
  LPU_TRACE_A(bool)
  LPU_TRACE_A(sc_dt::sc_bit)
  LPU_TRACE_A(sc_dt::sc_logic)
  LPU_TRACE_B(unsigned char)
  LPU_TRACE_B(unsigned short)
  LPU_TRACE_B(unsigned int)
  LPU_TRACE_B(unsigned long)
  LPU_TRACE_B(char)
  LPU_TRACE_B(short)
  LPU_TRACE_B(int)
  LPU_TRACE_B(long)
  LPU_TRACE_B(sc_dt::int64)
  LPU_TRACE_B(sc_dt::uint64)
  LPU_TRACE_A(float)
  LPU_TRACE_A(double)
  LPU_TRACE_A(sc_dt::sc_int_base)
  LPU_TRACE_A(sc_dt::sc_uint_base)
  LPU_TRACE_A(sc_dt::sc_signed)
  LPU_TRACE_A(sc_dt::sc_unsigned)
  LPU_TRACE_A(sc_dt::sc_fxval)
  LPU_TRACE_A(sc_dt::sc_fxval_fast)
  LPU_TRACE_A(sc_dt::sc_fxnum)
  LPU_TRACE_A(sc_dt::sc_fxnum_fast)
  LPU_TRACE_A(sc_dt::sc_bv_base)
  LPU_TRACE_A(sc_dt::sc_lv_base)
#undef LPU_TRACE_A
#undef LPU_TRACE_B
};

/// A group of signals in a GTKWave save file: `scope` + "." + each of `signals` (names with
/// their ranges, "op[4:0]"); one-bit signals show as binary, others as hexadecimal.
std::string gtkw_group(const std::string& title, const std::string& scope,
                       const std::vector<std::string>& signals);

}  // namespace lpu::cosim
