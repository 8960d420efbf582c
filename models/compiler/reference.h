// The host reference executor: runs a kernel program (compiler/kernels.h) on the host with the
// machine's functional cores, so its results are the ones the machine must produce bit for bit.
// The simulator's output is checked against it; the ONNX suite checks both against ONNX.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/kernels.h"

namespace lpu::compiler {

using Bytes = std::vector<std::uint8_t>;

/// inputs[i]: the data of tensor k.inputs[i] (little-endian elements, row-major). Returns the
/// data of k.outputs in order. Throws std::invalid_argument on an input of the wrong size.
/// With `all`, also the data of every tensor (by tensor id; views share their base's). With
/// `approximate`, matrix products are plain float sums instead of the MXM's exact arithmetic
/// (for calibration: the ranges of values, much faster).
std::vector<Bytes> run_reference(const Kernels& k, const std::vector<Bytes>& inputs,
                                 std::vector<Bytes>* all = nullptr, bool approximate = false);

/// A program split over chips (Kernels::chips of them, the same steps on each, compiler/
/// partition.h): runs every chip's kernels in step, the exchange steps moving rows between
/// them. inputs[c] are chip c's (in its k.inputs order); returns each chip's outputs.
/// With `transfers` (a pipeline stage, compiler/pipeline.h): received[c] are the values chip c's
/// receive steps take, in order; sent[c] gets the values its send steps give.
struct Transfers {
  std::vector<std::vector<Bytes>> received, sent;
};
std::vector<std::vector<Bytes>> run_reference_spmd(const std::vector<Kernels>& chips,
                                                   const std::vector<std::vector<Bytes>>& inputs,
                                                   Transfers* transfers = nullptr);

/// Random data for every input of k (in k.inputs order), from `seed`: floats uniform in
/// [-1, 1], integers uniform over int8's range.
std::vector<Bytes> random_inputs(const Kernels& k, std::uint32_t seed);

/// Lowers g for `precision`. For int8 the model is first lowered as it is and run on the host
/// reference with random inputs (calibration_seed) to measure the range of every activation that
/// is quantized; the int8 lowering then uses those ranges.
Kernels lower_with_precision(const Graph& g, const arch::Arch& arch, Precision precision,
                             std::uint32_t calibration_seed = 7);

/// The calibration of lower_with_precision: the largest magnitude of every activation an int8
/// lowering quantizes, by node name, from the float lowering run on random inputs (`seed`).
std::map<std::string, double> calibrate(const Graph& g, const arch::Arch& arch,
                                        std::uint32_t seed = 7);

}  // namespace lpu::compiler
