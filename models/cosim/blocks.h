// The transactors of the RTL blocks, as the factory builds them (models/cosim only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <systemc>

#include "units/cosim.h"

namespace lpu::cosim {

class Waves;

/// The VXM's ALUs of one chip (vxm_rtl.cpp); `fault`: the build with the planted fault.
std::unique_ptr<units::VxmRtlPort> make_vxm_rtl(units::ChipContext& ctx, bool fault, Waves* waves);
/// One MEM slice's bank (mem_rtl.cpp), a child of the calling slice module.
std::unique_ptr<units::MemRtlPort> make_mem_rtl(units::ChipContext& ctx, std::uint64_t* corrected,
                                                std::uint64_t* uncorrectable, Waves* waves);

/// One SXM's networks (sxm_rtl.cpp); `shift`: its shift/select queue.
std::unique_ptr<units::SxmRtlPort> make_sxm_rtl(units::ChipContext& ctx, const arch::Queue& shift,
                                                Waves* waves);

/// One C2C port's link layer (c2c_rtl.cpp).
std::unique_ptr<units::C2cRtlPort> make_c2c_rtl(units::ChipContext& ctx, Waves* waves);

/// One MXM plane (mxm_rtl.cpp).
std::unique_ptr<units::MxmRtlPort> make_mxm_rtl(units::ChipContext& ctx, int plane, Waves* waves);

/// Resets a block at time 0, in delta cycles: a rising clock edge with rst_n low, then rst_n
/// high. Called from the block's thread before its first job.
inline void reset_pulse(sc_core::sc_signal<bool>& clk, sc_core::sc_signal<bool>& rst_n) {
  rst_n.write(false);
  clk.write(true);
  sc_core::wait(sc_core::SC_ZERO_TIME);
  sc_core::wait(sc_core::SC_ZERO_TIME);
  clk.write(false);
  rst_n.write(true);
}

/// `n` bytes (a multiple of 4) onto a bus of sc_bv, byte i in bits 8i..8i+7 (little-endian words).
template <class Bus>
void to_bus(const std::uint8_t* p, int n, Bus* w) {
  for (int i = 0; i < n / 4; ++i)
    w->set_word(i, static_cast<std::uint32_t>(p[4 * i]) |
                       static_cast<std::uint32_t>(p[4 * i + 1]) << 8 |
                       static_cast<std::uint32_t>(p[4 * i + 2]) << 16 |
                       static_cast<std::uint32_t>(p[4 * i + 3]) << 24);
}
/// Byte i of a bus of sc_bv.
template <class Bus>
std::uint8_t bus_byte(const Bus& w, int i) {
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(w.get_word(i / 4)) >> (8 * (i % 4)));
}
/// `n` bytes off a bus.
template <class Bus>
void from_bus(const Bus& w, int n, std::uint8_t* p) {
  for (int i = 0; i < n; ++i)
    p[i] = bus_byte(w, i);
}

/// "0x1f"
std::string hex(std::uint32_t v);

}  // namespace lpu::cosim
