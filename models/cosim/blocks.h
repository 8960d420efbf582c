// The transactors of the RTL blocks, as the factory builds them (models/cosim only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

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
std::unique_ptr<units::C2cRtlPort> make_c2c_rtl(units::ChipContext& ctx, int link, Waves* waves);

/// One MXM plane (mxm_rtl.cpp).
std::unique_ptr<units::MxmRtlPort> make_mxm_rtl(units::ChipContext& ctx, int plane, Waves* waves);

/// "0x1f"
std::string hex(std::uint32_t v);

}  // namespace lpu::cosim
