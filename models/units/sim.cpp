#include "units/sim.h"

namespace lpu::units {

std::string ScheduleError::to_string() const {
  std::string s = kind + ": chip " + std::to_string(chip) + ", " + unit + " queue " + queue;
  if (instruction >= 0) s += ", instruction " + std::to_string(instruction);
  if (repetition) s += " (step " + std::to_string(repetition) + ")";
  s += ", cycle " + std::to_string(cycle);
  if (!stream.empty()) s += ", stream " + stream;
  if (position >= 0) s += ", position " + std::to_string(position);
  return s + ": " + message;
}

const char* unit_name(arch::QueueUnit u) {
  switch (u) {
    case arch::QueueUnit::kMem:
      return "MEM";
    case arch::QueueUnit::kVxm:
      return "VXM";
    case arch::QueueUnit::kMxmWeights:
    case arch::QueueUnit::kMxmAct:
    case arch::QueueUnit::kMxmAcc:
      return "MXM";
    case arch::QueueUnit::kSxmShift:
    case arch::QueueUnit::kSxmPermute:
    case arch::QueueUnit::kSxmDistribute:
    case arch::QueueUnit::kSxmRotate:
    case arch::QueueUnit::kSxmTranspose:
      return "SXM";
    case arch::QueueUnit::kC2c:
      return "C2C";
  }
  return "?";
}

const char* to_string(UnitMode m) {
  switch (m) {
    case UnitMode::kTlm:
      return "tlm";
    case UnitMode::kRtl:
      return "rtl";
    case UnitMode::kLockstep:
      return "lockstep";
  }
  return "?";
}

void ChipContext::error(const Issue& at, const std::string& message, const std::string& stream,
                        int position) {
  record(at, message, stream, position);
  if (options.on_error == OnError::kStop) throw StopRun{};
}

void ChipContext::record(const Issue& at, const std::string& message, const std::string& stream,
                         int position) {
  ScheduleError e;
  e.chip = chip_id;
  e.unit = at.queue ? unit_name(at.queue->unit) : "ICU";
  e.queue = at.queue ? at.queue->name : "";
  e.instruction = at.queue ? static_cast<std::int64_t>(at.index) : -1;
  e.repetition = at.step;
  e.cycle = at.access;
  e.stream = stream;
  e.position = position;
  e.message = message;
  errors->push_back(std::move(e));
  if (options.on_error == OnError::kStop) stop_requested = true;
}

}  // namespace lpu::units
