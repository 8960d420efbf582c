// Co-simulation of the RTL blocks (rtl/) with the SystemC units (docs/cosim.md, brief B7): the
// Verilated blocks in SystemC mode, the transactors that drive their pins from the units' vector
// operations, and the waveform file. The units reach them only through units/cosim.h.
#pragma once

#include <memory>
#include <string>

#include "arch/arch.h"
#include "units/cosim.h"

namespace lpu::cosim {

/// The lanes per superlane the blocks were Verilated for (CMake's LPU_RTL_LANES).
int rtl_lanes();

/// Checks that `arch` has the parameters the Verilated blocks of the units `o` runs as rtl or
/// lockstep were built for; throws InputError (at `where`, the option) naming each one that
/// differs.
void check_arch(const arch::Arch& arch, const units::CosimOptions& o, const std::string& where);

/// The factory of one run: builds each chip's transactors and, with `o.waves`, writes the
/// waveform of every block from the start of the simulation. Throws InputError for a waveform
/// file name that is neither .fst nor .vcd.
std::shared_ptr<units::CosimFactory> make_factory(const arch::Arch& arch,
                                                  const units::CosimOptions& o);

/// Writes the FST file `fst` as the VCD file `vcd` (every signal, every change), with GTKWave's
/// FST reader. Returns false with `error` set when a file cannot be read or written.
bool fst_to_vcd(const std::string& fst, const std::string& vcd, std::string* error);

}  // namespace lpu::cosim
