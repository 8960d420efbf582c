#include "units/mem_slice.h"

namespace lpu::units {

MemSlice::MemSlice(const sc_core::sc_module_name& name, ChipContext& ctx, const arch::Queue& queue)
    : Unit(name, ctx),
      host("host"),
      queue_(queue),
      depth_(static_cast<std::uint32_t>(ctx.arch->chip.mem.depth)),
      sram_(ctx.arch->chip.mem.depth, ctx.lanes, ctx.arch->chip.mem.ecc_data_bits,
            ctx.arch->chip.mem.ecc_check_bits, ctx.arch->chip.mem.ecc_enabled, ctx.functional()),
      buf_(static_cast<std::size_t>(ctx.lanes)) {
  const auto& mem = ctx.arch->chip.mem;
  const auto pow2 = [](unsigned v) { return v && (v & (v - 1)) == 0; };
  const auto banks = static_cast<unsigned>(mem.banks);
  if (mem.interleaved) {
    if (pow2(banks) && banks > 1) bank_mask_ = banks - 1;
  } else if (pow2(depth_ / banks) && depth_ % banks == 0) {
    bank_shift_ = __builtin_ctz(depth_ / banks);
  }
  const CosimOptions& co = ctx.options.cosim;
  if (co.mem != UnitMode::kTlm && co.factory && ctx.functional()) {
    mode_ = co.mem;
    rtl_ = co.factory->mem(ctx, &ecc_corrected, &ecc_uncorrectable);
    addrs_.resize(static_cast<std::size_t>(ctx.lanes));
  }
  host.register_b_transport(this, &MemSlice::b_transport);
  host.register_get_direct_mem_ptr(this, &MemSlice::get_direct_mem_ptr);
  host.register_transport_dbg(this, &MemSlice::transport_dbg);
}

bool MemSlice::claim(const Issue& is, bool write, int bank) {
  const std::uint64_t t = is.access;
  if (write ? last_write_ == t : last_read_ == t) {
    ctx_.error(is, std::string("a second ") + (write ? "write" : "read") +
                       " of this slice in one cycle (one read "
                       "and one write per cycle)");
    return false;
  }
  if ((write ? last_read_ : last_write_) == t &&
      (write ? last_read_bank_ : last_write_bank_) == bank) {
    ctx_.error(is, "a read and a write of bank " + std::to_string(bank) + " in one cycle");
    return false;
  }
  (write ? last_write_ : last_read_) = t;
  (write ? last_write_bank_ : last_read_bank_) = bank;
  (write ? writes : reads)[bank ? 1 : 0]++;
  return true;
}

void MemSlice::count_ecc(const Issue& is, const func::ReadResult& r) {
  ecc_corrected += static_cast<std::uint64_t>(r.corrected);
  if (r.uncorrectable) {
    ecc_uncorrectable += static_cast<std::uint64_t>(r.uncorrectable);
    ctx_.error(is, "uncorrectable ECC error (" + std::to_string(r.uncorrectable) +
                       " chunk(s)) in the word read");
  }
}

void MemSlice::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  const std::uint32_t depth = depth_;
  switch (in.opcode) {
    case 0x10:    // read addr, s
    case 0x11: {  // write addr, s
      const bool write = in.opcode == 0x11;
      const std::uint32_t addr = in.arg[0] + is.step;  // repetitions step through addresses
      if (addr >= depth) {
        ctx_.error(is, "address " + std::to_string(addr) + " (base " + std::to_string(in.arg[0]) +
                           " + step " + std::to_string(is.step) + ") is beyond the slice (depth " +
                           std::to_string(depth) + ")");
        return;
      }
      if (!claim(is, write, bank_of(addr))) return;
      if (write) {
        const std::uint8_t* plane = nullptr;
        if (!read_group(is, in.arg[1], 1, &plane)) return;
        if (plane) sram_.write(addr, plane);
        if (rtl_ && plane) rtl_->write(is, addr, plane);
      } else {
        std::uint8_t* plane = nullptr;
        if (!reserve_group(is, in.arg[1], 1, &plane)) return;
        if (ctx_.functional()) {
          if (mode_ == UnitMode::kRtl) {  // the RTL fills the value before the next cycle
            rtl_->read(is, addr, plane, false, {});
            finish_group(is, 1, &plane);
            return;
          }
          const func::ReadResult r = sram_.read(addr, plane);  // straight into the stream value
          finish_group(is, 1, &plane);
          if (rtl_) rtl_->read(is, addr, plane, true, r);
          count_ecc(is, r);
        }
      }
      return;
    }
    case 0x12:    // gather map, s
    case 0x13: {  // scatter s, map
      const bool gather = in.opcode == 0x12;
      const std::uint32_t map_arg = gather ? in.arg[0] : in.arg[1];
      const std::uint8_t* map[2] = {nullptr, nullptr};
      if (!read_group(is, map_arg, 2, map)) return;
      const std::uint8_t* data = nullptr;
      if (!gather && !read_group(is, in.arg[0], 1, &data)) return;
      // Per-lane addresses touch both banks; the slice counts it as its read (or write) of the
      // cycle.
      if (!claim(is, !gather, 0)) return;
      if (ctx_.functional()) {
        func::ReadResult total;
        for (int lane = 0; lane < ctx_.lanes; ++lane) {
          const std::uint32_t addr = static_cast<std::uint32_t>(map[0][lane] | (map[1][lane] << 8));
          if (addr >= depth) {
            ctx_.error(is, "lane " + std::to_string(lane) + " addresses " + std::to_string(addr) +
                               ", beyond the slice (depth " + std::to_string(depth) + ")");
            return;
          }
          if (rtl_) addrs_[static_cast<std::size_t>(lane)] = addr;
          if (gather && mode_ == UnitMode::kRtl) continue;  // the RTL reads
          const func::ReadResult r =
              gather ? sram_.read_byte(addr, lane, &buf_[static_cast<std::size_t>(lane)])
                     : sram_.write_byte(addr, lane, data[lane]);
          total.corrected += r.corrected;
          total.uncorrectable += r.uncorrectable;
          if (!rtl_) count_ecc(is, r);
        }
        if (rtl_) {
          const bool compare = mode_ == UnitMode::kLockstep;
          if (!gather) {
            rtl_->scatter(is, addrs_.data(), data, compare, total);
          } else if (!compare) {  // the RTL's bytes go straight into the stream value
            std::uint8_t* plane = nullptr;
            if (!reserve_group(is, in.arg[1], 1, &plane)) return;
            rtl_->gather(is, addrs_.data(), plane, false, {});
            finish_group(is, 1, &plane);
            return;
          } else {
            rtl_->gather(is, addrs_.data(), buf_.data(), true, total);
          }
          if (compare) count_ecc(is, total);  // (in rtl mode the RTL's events are counted)
        }
      }
      if (gather) {
        const std::uint8_t* plane = ctx_.functional() ? buf_.data() : nullptr;
        write_group(is, in.arg[1], 1, &plane);
      }
      return;
    }
    default:
      ctx_.error(is, std::string("'") + in.info().mnemonic + "' is not a MEM instruction");
  }
}

bool MemSlice::range_ok(tlm::tlm_generic_payload& gp) const {
  const std::uint64_t size =
      static_cast<std::uint64_t>(sram_.depth()) * static_cast<std::uint64_t>(sram_.vector_bytes());
  if (gp.get_address() > size || gp.get_data_length() > size - gp.get_address()) {
    gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return false;
  }
  if (gp.get_byte_enable_ptr()) {
    gp.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    return false;
  }
  return true;
}

void MemSlice::b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& /*delay*/) {
  // The host DMA engine charges the transfer time itself; the array answers in zero time.
  transport_dbg(gp);
  if (gp.is_response_ok()) gp.set_dmi_allowed(sram_.dmi_pointer() != nullptr);
}

unsigned int MemSlice::transport_dbg(tlm::tlm_generic_payload& gp) {
  if (!range_ok(gp)) return 0;
  if (!sram_.stores_data()) {
    gp.set_response_status(tlm::TLM_OK_RESPONSE);  // timing mode: nothing is stored
    return gp.get_data_length();
  }
  if (gp.is_write()) {
    sram_.poke(gp.get_address(), gp.get_data_ptr(), gp.get_data_length());
    if (rtl_) {  // every word touched, as the model now holds it
      const auto vb = static_cast<std::uint64_t>(sram_.vector_bytes());
      std::vector<std::uint8_t> word(static_cast<std::size_t>(vb));
      for (std::uint64_t w = gp.get_address() / vb;
           w * vb < gp.get_address() + gp.get_data_length(); ++w) {
        sram_.peek(w * vb, word.data(), word.size());
        rtl_->preload(static_cast<std::uint32_t>(w), word.data());
      }
    }
  } else if (gp.is_read())
    sram_.peek(gp.get_address(), gp.get_data_ptr(), gp.get_data_length());
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
  return gp.get_data_length();
}

void MemSlice::flip_bit(std::uint32_t addr, int bit) {
  sram_.flip_bit(addr, bit);
  if (rtl_) rtl_->flip(addr, bit);
}

bool MemSlice::get_direct_mem_ptr(tlm::tlm_generic_payload& /*gp*/, tlm::tlm_dmi& dmi) {
  std::uint8_t* p = sram_.dmi_pointer();
  // With ECC, a write through a raw pointer would leave stale check bits: reads only.
  if (!p) return false;
  dmi.set_dmi_ptr(p);
  dmi.set_start_address(0);
  dmi.set_end_address(static_cast<std::uint64_t>(sram_.depth()) *
                          static_cast<std::uint64_t>(sram_.vector_bytes()) -
                      1);
  if (sram_.ecc_enabled())
    dmi.allow_read();
  else
    dmi.allow_read_write();
  dmi.set_read_latency(sc_core::SC_ZERO_TIME);
  dmi.set_write_latency(sc_core::SC_ZERO_TIME);
  return true;
}

}  // namespace lpu::units
