#include "units/chip.h"

#include <algorithm>
#include <random>

namespace lpu::units {

namespace {
std::string sc_name(std::string s) {
  for (auto& c : s)
    if (c == '.') c = '_';
  return s;
}
}  // namespace

HostDma::HostDma(const sc_core::sc_module_name& name, const arch::Arch& arch, std::size_t slices)
    : sc_core::sc_module(name), mem("mem", slices), arch_(arch) {}

bool HostDma::transfer(tlm::tlm_command cmd, std::size_t slice, std::uint64_t offset,
                       std::uint8_t* data, std::size_t len) {
  tlm::tlm_generic_payload gp;
  gp.set_command(cmd);
  gp.set_address(offset);
  gp.set_data_ptr(data);
  gp.set_data_length(static_cast<unsigned int>(len));
  gp.set_streaming_width(static_cast<unsigned int>(len));
  gp.set_byte_enable_ptr(nullptr);
  gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  mem[slice]->b_transport(gp, delay);
  if (!gp.is_response_ok()) return false;
  seconds_ += (in_job_ ? 0.0 : arch_.chip.host.dma_latency_us * 1e-6) +
              static_cast<double>(len) / (arch_.chip.host.dma_gbytes_per_s * 1e9);
  bytes_ += len;
  ++transfers_;
  return true;
}

bool HostDma::write(std::size_t slice, std::uint64_t offset, const std::uint8_t* data,
                    std::size_t len) {
  return transfer(tlm::TLM_WRITE_COMMAND, slice, offset, const_cast<std::uint8_t*>(data), len);
}

bool HostDma::read(std::size_t slice, std::uint64_t offset, std::uint8_t* data, std::size_t len) {
  return transfer(tlm::TLM_READ_COMMAND, slice, offset, data, len);
}

Chip::Chip(const sc_core::sc_module_name& name, const arch::Arch& arch, std::uint32_t id,
           const isa::ChipProgram* program, const SimOptions& options,
           std::vector<ScheduleError>* errors)
    : sc_core::sc_module(name) {
  const auto& chip = arch.chip;
  ctx_.chip_id = id;
  ctx_.arch = &arch;
  ctx_.queues = arch::chip_queues(chip);
  ctx_.options = options;
  ctx_.errors = errors;
  ctx_.lanes = chip.lanes();
  if (options.clock_drift_ppm > 0) {
    // A fixed rate per chip, the same for a seed whatever else runs.
    std::mt19937_64 rng(options.drift_seed * 0x9E3779B97F4A7C15ull + id);
    ctx_.clock.ppm = std::uniform_real_distribution<double>(-options.clock_drift_ppm,
                                                            options.clock_drift_ppm)(rng);
  }
  int horizon = 0, max_skew = 0;
  for (const auto& [cls, lat] : chip.latency) {
    horizon = std::max(horizon, lat.d_func);
    max_skew = std::max(max_skew, lat.d_skew);
  }
  fabric_ = std::make_unique<func::StreamFabric>(
      chip.streams.per_direction, static_cast<int>(chip.slices.size()), chip.streams.hop_cycles,
      ctx_.lanes, horizon + 2 * max_skew, ctx_.functional());
  ctx_.fabric = fabric_.get();
  // Results of the VXM and of MXM ACC that no unit ever reads are schedule errors (brief B4).
  fabric_->on_unread([this](const func::StreamValue& v, int stream, func::Dir dir) {
    const arch::Queue& q = ctx_.queues[v.producer.queue];
    if (q.unit != arch::QueueUnit::kVxm && q.unit != arch::QueueUnit::kMxmAcc) return;
    Issue at;
    at.queue = &q;
    at.index = v.producer.index;
    at.step = v.producer.repetition;
    at.access = v.cycle;
    ctx_.error(at,
               std::string(q.unit == arch::QueueUnit::kVxm ? "VXM" : "MXM") +
                   " result written in cycle " + std::to_string(v.cycle) + " is never read",
               "s" + std::to_string(stream) + (dir == func::Dir::kWest ? "w" : "e"), v.position);
  });

  std::vector<Unit*> unit_of(ctx_.queues.size(), nullptr);
  mem_index_.assign(ctx_.queues.size(), -1);
  vxm_ = std::make_unique<Vxm>("vxm", ctx_);
  for (const auto& q : ctx_.queues) {
    switch (q.unit) {
      case arch::QueueUnit::kMem:
        mem_index_[q.id] = static_cast<int>(mem_.size());
        // SystemC names allow no dots: mem.w0 is the module mem_w0.
        mem_.push_back(
            std::make_unique<MemSlice>(sc_name(q.name).c_str(), ctx_, ctx_.queues[q.id]));
        unit_of[q.id] = mem_.back().get();
        break;
      case arch::QueueUnit::kVxm:
        unit_of[q.id] = vxm_.get();
        break;
      case arch::QueueUnit::kMxmWeights:
        mxm_.push_back(std::make_unique<Mxm>(("mxm_p" + std::to_string(q.instance)).c_str(), ctx_,
                                             q.instance));
        [[fallthrough]];
      case arch::QueueUnit::kMxmAct:
      case arch::QueueUnit::kMxmAcc:
        unit_of[q.id] = mxm_[static_cast<std::size_t>(q.instance)].get();
        break;
      case arch::QueueUnit::kSxmShift:
        sxm_.push_back(
            std::make_unique<Sxm>(("sxm" + std::to_string(q.instance)).c_str(), ctx_, q));
        [[fallthrough]];
      case arch::QueueUnit::kSxmPermute:
      case arch::QueueUnit::kSxmDistribute:
      case arch::QueueUnit::kSxmRotate:
      case arch::QueueUnit::kSxmTranspose:
        unit_of[q.id] = sxm_.back().get();
        break;
      case arch::QueueUnit::kC2c:
        c2c_.push_back(std::make_unique<C2cPort>(("c2c_l" + std::to_string(q.instance)).c_str(),
                                                 ctx_, q.instance));
        unit_of[q.id] = c2c_.back().get();
        break;
    }
  }
  icu_ = std::make_unique<Icu>("icu", ctx_, program, std::move(unit_of));
  host_ = std::make_unique<HostDma>("host", arch, mem_.size());
  for (std::size_t i = 0; i < mem_.size(); ++i)
    host_->mem[i].bind(mem_[i]->host);
  SC_THREAD(run);
}

void Chip::run() {
  icu_->run();
  finished_ = true;
}

MemSlice* Chip::mem_slice(std::uint16_t queue_id) const {
  const int i = queue_id < mem_index_.size() ? mem_index_[queue_id] : -1;
  return i < 0 ? nullptr : mem_[static_cast<std::size_t>(i)].get();
}

std::size_t Chip::mem_index(std::uint16_t queue_id) const {
  return static_cast<std::size_t>(mem_index_[queue_id]);
}

}  // namespace lpu::units
