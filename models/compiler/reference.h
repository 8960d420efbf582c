// The host reference executor: runs a kernel program (compiler/kernels.h) on the host with the
// machine's functional cores, so its results are the ones the machine must produce bit for bit.
// The simulator's output is checked against it; the ONNX suite checks both against ONNX.
#pragma once

#include <cstdint>
#include <vector>

#include "compiler/kernels.h"

namespace lpu::compiler {

using Bytes = std::vector<std::uint8_t>;

/// inputs[i]: the data of tensor k.inputs[i] (little-endian elements, row-major). Returns the
/// data of k.outputs in order. Throws std::invalid_argument on an input of the wrong size.
/// With `all`, also the data of every tensor (by tensor id; views share their base's).
std::vector<Bytes> run_reference(const Kernels& k, const std::vector<Bytes>& inputs,
                                 std::vector<Bytes>* all = nullptr);

}  // namespace lpu::compiler
