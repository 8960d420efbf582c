// One MEM slice (brief A3): an SRAM array of depth x vector bytes with SECDED, two banks (one read
// and one write per cycle, on different banks), executing Read, Write, Gather and Scatter from its
// queue. A TLM-2.0 target socket gives the host DMA path (b_transport), direct memory access and
// debug transport into the array; debug access never advances time and has no ECC side effects.
//
// Not modelled: power, refresh, and any arbitration (the schedule is static: a conflict is an
// error in the program, reported with its location).
#pragma once

#include <tlm_utils/simple_target_socket.h>
#include <tlm>

#include <memory>

#include "func/sram.h"
#include "units/cosim.h"
#include "units/unit.h"

namespace lpu::units {

class MemSlice : public Unit {
 public:
  tlm_utils::simple_target_socket<MemSlice> host;

  MemSlice(const sc_core::sc_module_name& name, ChipContext& ctx, const arch::Queue& queue);
  void execute(const Issue& is) override;

  func::SramSlice& sram() { return sram_; }
  /// Inverts a stored bit (func::SramSlice::flip_bit numbering), in the RTL's bank as well.
  void flip_bit(std::uint32_t addr, int bit);
  UnitMode mode() const { return mode_; }
  /// Co-simulation figures (null in tlm mode).
  const CosimStats* cosim() const { return rtl_ ? &rtl_->stats() : nullptr; }
  std::array<std::uint64_t, 2> reads{}, writes{};  ///< per bank (bank 0, bank 1 and above)
  std::uint64_t ecc_corrected = 0, ecc_uncorrectable = 0;

 private:
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  bool get_direct_mem_ptr(tlm::tlm_generic_payload& gp, tlm::tlm_dmi& dmi);
  unsigned int transport_dbg(tlm::tlm_generic_payload& gp);
  bool range_ok(tlm::tlm_generic_payload& gp) const;

  // Bank bookkeeping: the last cycle each kind of access happened and on which bank.
  bool claim(const Issue& is, bool write, int bank);
  void count_ecc(const Issue& is, const func::ReadResult& r);

  // The bank of an address, without a division when the bank geometry is a power of two.
  int bank_of(std::uint32_t addr) const {
    if (bank_shift_ >= 0) return static_cast<int>(addr >> bank_shift_);
    if (bank_mask_) return static_cast<int>(addr & bank_mask_);
    return ctx_.arch->chip.mem.bank_of(addr);
  }

  const arch::Queue& queue_;
  const std::uint32_t depth_;
  int bank_shift_ = -1;          // blocked banks of 2^k words
  std::uint32_t bank_mask_ = 0;  // interleaved over 2^k banks (k > 0)
  func::SramSlice sram_;
  std::uint64_t last_read_ = ~0ull, last_write_ = ~0ull;
  int last_read_bank_ = -1, last_write_bank_ = -1;
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint32_t> addrs_;  // gather/scatter lane addresses for the RTL
  UnitMode mode_ = UnitMode::kTlm;
  std::unique_ptr<MemRtlPort> rtl_;  // the bank's RTL, in rtl and lockstep modes
};

}  // namespace lpu::units
