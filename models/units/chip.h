// One chip as SystemC modules (brief B5): the MEM slices, the VXM, the MXM planes, the SXM units
// and the C2C ports, each executing from its queues; the ICU that issues to them; the stream
// fabric they share; and a host DMA engine bound to every MEM slice's target socket.
#pragma once

#include <tlm_utils/simple_initiator_socket.h>
#include <memory>
#include <systemc>
#include <vector>

#include "units/c2c.h"
#include "units/icu.h"
#include "units/mem_slice.h"
#include "units/mxm.h"
#include "units/sxm.h"
#include "units/vxm.h"

namespace lpu::units {

/// The host's DMA engine (brief A3): every transfer costs chip.host.dma_latency_us plus its bytes
/// over chip.host.dma_gbytes_per_s of host time, kept apart from on-chip cycles.
class HostDma : public sc_core::sc_module {
 public:
  sc_core::sc_vector<tlm_utils::simple_initiator_socket<HostDma>> mem;  ///< one per MEM slice

  HostDma(const sc_core::sc_module_name& name, const arch::Arch& arch, std::size_t slices);
  /// Writes (or reads) `len` bytes at byte offset `offset` of MEM slice `slice` (slice index in
  /// MEM-queue order); returns false if the slice rejected the range.
  bool write(std::size_t slice, std::uint64_t offset, const std::uint8_t* data, std::size_t len);
  bool read(std::size_t slice, std::uint64_t offset, std::uint8_t* data, std::size_t len);
  /// A scatter-gather job (one tensor): its transfers pay the DMA latency once, then bandwidth.
  void begin_job() {
    seconds_ += arch_.chip.host.dma_latency_us * 1e-6;
    in_job_ = true;
  }
  void end_job() { in_job_ = false; }
  double seconds() const { return seconds_; }
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t transfers() const { return transfers_; }

 private:
  bool transfer(tlm::tlm_command cmd, std::size_t slice, std::uint64_t offset, std::uint8_t* data,
                std::size_t len);
  const arch::Arch& arch_;
  double seconds_ = 0;
  bool in_job_ = false;
  std::uint64_t bytes_ = 0, transfers_ = 0;
};

class Chip : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Chip);
  Chip(const sc_core::sc_module_name& name, const arch::Arch& arch, std::uint32_t id,
       const isa::ChipProgram* program, const SimOptions& options,
       std::vector<ScheduleError>* errors);

  HostDma& host() { return *host_; }
  const Icu& icu() const { return *icu_; }
  const ChipContext& context() const { return ctx_; }
  /// MEM slice by queue id (null if the queue is not a MEM slice).
  MemSlice* mem_slice(std::uint16_t queue_id) const;
  std::size_t mem_index(std::uint16_t queue_id) const;  ///< position among MEM slices
  const std::vector<std::unique_ptr<MemSlice>>& mem() const { return mem_; }
  const Vxm& vxm() const { return *vxm_; }
  const std::vector<std::unique_ptr<Mxm>>& mxm() const { return mxm_; }
  const std::vector<std::unique_ptr<Sxm>>& sxm() const { return sxm_; }
  const std::vector<std::unique_ptr<C2cPort>>& c2c() const { return c2c_; }
  bool finished() const { return finished_; }
  /// Hops values made on the streams (func::StreamFabric::hops).
  std::uint64_t stream_hops() const { return fabric_->hops(); }

 private:
  void run();

  ChipContext ctx_;
  std::unique_ptr<func::StreamFabric> fabric_;
  std::vector<std::unique_ptr<MemSlice>> mem_;
  std::unique_ptr<Vxm> vxm_;
  std::vector<std::unique_ptr<Mxm>> mxm_;
  std::vector<std::unique_ptr<Sxm>> sxm_;
  std::vector<std::unique_ptr<C2cPort>> c2c_;
  std::unique_ptr<Icu> icu_;
  std::unique_ptr<HostDma> host_;
  std::vector<int> mem_index_;  // by queue id
  bool finished_ = false;
};

}  // namespace lpu::units
