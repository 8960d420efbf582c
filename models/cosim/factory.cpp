// The co-simulation factory of a run (docs/cosim.md): the architecture check, the waveform file,
// and the transactors each chip's units ask for.
#include <filesystem>
#include <memory>
#include <sstream>
#include <systemc>

#include "common/diagnostics.h"
#include "cosim/blocks.h"
#include "cosim/cosim.h"
#include "cosim/waves.h"
#include "verilated.h"

namespace lpu::cosim {

int rtl_lanes() {
  return LPU_RTL_LANES;
}

std::string hex(std::uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

namespace {

class Factory final : public units::CosimFactory {
 public:
  Factory(const arch::Arch& arch, const units::CosimOptions& o) : options_(o) {
    if (!o.waves.empty()) {
      Verilated::traceEverOn(true);
      const sc_core::sc_time period(1.0 / arch.chip.clock_mhz, sc_core::SC_US);
      const double to = static_cast<double>(o.waves_to);
      waves_ = std::make_unique<Waves>(o.waves, period * static_cast<double>(o.waves_from),
                                       o.waves_to == ~0ull ? sc_core::sc_max_time() : period * to);
    }
  }
  std::unique_ptr<units::VxmRtlPort> vxm(units::ChipContext& ctx) override {
    return make_vxm_rtl(ctx, options_.plant_fault, waves_.get());
  }
  std::unique_ptr<units::MemRtlPort> mem(units::ChipContext& ctx, std::uint64_t* corrected,
                                         std::uint64_t* uncorrectable) override {
    return make_mem_rtl(ctx, corrected, uncorrectable, waves_.get());
  }
  std::unique_ptr<units::SxmRtlPort> sxm(units::ChipContext& ctx,
                                         const arch::Queue& shift_queue) override {
    return make_sxm_rtl(ctx, shift_queue, waves_.get());
  }
  std::unique_ptr<units::C2cRtlPort> c2c(units::ChipContext& ctx) override {
    return make_c2c_rtl(ctx, waves_.get());
  }
  std::unique_ptr<units::MxmRtlPort> mxm(units::ChipContext& ctx, int plane) override {
    return make_mxm_rtl(ctx, plane, waves_.get());
  }
  bool finish(std::string* error) override { return !waves_ || waves_->finish(error); }
  std::string waves_written() const override {
    return waves_ && waves_->dumps() ? waves_->path() : "";
  }

 private:
  units::CosimOptions options_;
  std::unique_ptr<Waves> waves_;
};

}  // namespace

void check_arch(const arch::Arch& arch, const units::CosimOptions& o, const std::string& where) {
  const auto& chip = arch.chip;
  std::string differ;
  auto need = [&](const char* key, std::int64_t built, std::int64_t has) {
    if (built != has)
      differ += std::string(differ.empty() ? "" : "; ") + key + " = " + std::to_string(built) +
                " (the architecture has " + std::to_string(has) + ")";
  };
  if (o.any()) need("chip.lanes_per_superlane", LPU_RTL_LANES, chip.lanes_per_superlane);
  if (o.mxm != units::UnitMode::kTlm) {
    need("chip.mxm.rows", LPU_RTL_MXM_ROWS, chip.mxm.rows);
    need("chip.mxm.cols", LPU_RTL_MXM_COLS, chip.mxm.cols);
    need("chip.mxm.accumulators", LPU_RTL_MXM_SLOTS, chip.mxm.accumulators);
    need("chip.mxm.weight_buffers", 2, chip.mxm.weight_buffers);  // one staging set
    need("chip.mxm.supercell", 16, chip.mxm.supercell);
  }
  if (o.c2c != units::UnitMode::kTlm && chip.lanes() != 32 && chip.lanes() != 320)
    differ += std::string(differ.empty() ? "" : "; ") +
              "chip.superlanes = 2 or 20 (the C2C link layer's 32 or 320-byte payload; the "
              "architecture has " +
              std::to_string(chip.superlanes) + ")";
  if (o.sxm != units::UnitMode::kTlm && chip.lanes() != 32 && chip.lanes() != 320)
    differ += std::string(differ.empty() ? "" : "; ") +
              "chip.superlanes = 2 or 20 (the SXM lane network's 32 or 320 lanes; the "
              "architecture has " +
              std::to_string(chip.superlanes) + ")";
  if (o.mem != units::UnitMode::kTlm) {
    need("chip.mem.ecc.enabled", 1, chip.mem.ecc_enabled ? 1 : 0);
    need("chip.mem.ecc.data_bits", 8 * LPU_RTL_LANES, chip.mem.ecc_data_bits);
    need("chip.mem.ecc.check_bits", LPU_RTL_MEM_CHECK_BITS, chip.mem.ecc_check_bits);
    const std::int64_t rows = static_cast<std::int64_t>(chip.mem.depth) * chip.superlanes;
    if (rows > LPU_RTL_MEM_ROWS)
      differ += std::string(differ.empty() ? "" : "; ") +
                "chip.mem.depth x chip.superlanes at most " + std::to_string(LPU_RTL_MEM_ROWS) +
                " rows (the architecture has " + std::to_string(rows) + ")";
  }
  if (!differ.empty())
    throw InputError(where, "the RTL blocks were Verilated for " + differ + "; architecture '" +
                                arch.name +
                                "' differs (rebuild with the LPU_RTL_* CMake variables)");
}

std::shared_ptr<units::CosimFactory> make_factory(const arch::Arch& arch,
                                                  const units::CosimOptions& o) {
  if (!o.waves.empty()) {
    const auto ext = std::filesystem::path(o.waves).extension();
    if (ext != ".fst" && ext != ".vcd")
      throw InputError("--waves " + o.waves, "the waveform file must end in .fst or .vcd");
  }
  return std::make_shared<Factory>(arch, o);
}

}  // namespace lpu::cosim
