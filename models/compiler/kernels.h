// Lowering: the graph IR (compiler/graph.h) to kernels, the units' view of the work. A kernel
// program is a list of tensors and a list of steps over whole tensors; each step is one unit
// operation that the scheduler streams through the machine vector by vector and that the host
// reference executor (compiler/reference.h) computes with the same functional cores. Both follow
// the same steps, so "same numerics as the model" holds by construction, while the placement,
// the stream routing and the timing stay the scheduler's alone for the simulator to check.
//
// Steps so far: point-wise VXM operations (one func::VxmArgs per step). An operand may broadcast
// along rows: a tensor of one vector row is read again for every row of the result.
#pragma once

#include <string>
#include <vector>

#include "arch/arch.h"
#include "compiler/graph.h"
#include "func/vxm.h"

namespace lpu::compiler {

struct KTensor {
  enum class Role { kInput, kOutput, kConstant, kTemp };
  std::string name;
  isa::DType dtype = isa::DType::kFp32;
  std::vector<std::int64_t> shape;
  Role role = Role::kTemp;
  std::vector<std::uint8_t> data;  ///< constants: little-endian elements, row-major

  std::int64_t elements() const {
    std::int64_t n = 1;
    for (auto d : shape)
      n *= d;
    return n;
  }
  /// The "rows" view (isa/layout.h): [rows, cols], cols = the last dimension (1 for a scalar).
  std::int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  std::int64_t rows() const { return cols() ? elements() / cols() : 0; }
};

struct KStep {
  func::VxmArgs args{};
  int a = -1, b = -1, mask = -1;  ///< operand tensors (-1: unused)
  int d = -1;                     ///< result tensor
  std::string origin;             ///< the graph node it comes from (Graph::where), for messages
};

struct Kernels {
  std::vector<KTensor> tensors;
  std::vector<KStep> steps;
  std::vector<int> inputs, outputs;  ///< tensor ids, in the graph's order
};

/// Lowers every node of `g`. Throws InputError naming the node, its operator and what is not
/// supported (operator, attribute, type, broadcast), or a tensor wider than the machine can hold.
Kernels lower(const Graph& g, const arch::Arch& arch);

/// Operators lower() accepts (for messages and the ONNX suite's skip reasons).
const std::vector<std::string>& supported_ops();

}  // namespace lpu::compiler
