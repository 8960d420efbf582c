// Running a program: builds the SystemC model of the chips a program uses, loads its MEM images
// and the input tensors through the host DMA path, simulates, reads the output tensors back and
// assembles the report (brief B9). One run per process: SystemC elaborates once.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "isa/program.h"
#include "units/sim.h"

namespace lpu::system {

struct TensorValue {
  isa::DType dtype = isa::DType::kNone;
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> bytes;  ///< C order, little-endian elements
};

struct RunOutcome {
  std::uint64_t cycles = 0;                ///< last completion + 1
  std::optional<std::uint64_t> predicted;  ///< from the program
  double wall_seconds = 0;
  double host_seconds = 0;  ///< host DMA time, apart from on-chip cycles
  std::uint64_t instructions = 0, issues = 0;
  std::vector<units::ScheduleError> errors;
  bool stopped = false;  ///< ended early at a schedule error
  std::map<std::string, TensorValue> outputs;
  boost::json::object report;
};

/// Checks that `inputs` match the program's input tensors (names, types, shapes) and runs it.
/// Throws InputError naming the tensor for a missing, extra, mis-typed or mis-shaped input.
RunOutcome run(const isa::Program& program, const std::map<std::string, TensorValue>& inputs,
               const units::SimOptions& options);

}  // namespace lpu::system
