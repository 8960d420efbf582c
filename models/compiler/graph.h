// The compiler's graph IR: what the front ends (ONNX, built-in workloads) produce and what the
// lowering, the scheduler and the host reference executor consume. It is deliberately close to
// ONNX (named values, nodes with an op type and attributes) but holds only what the compiler uses:
// every value has a machine type (isa::DType) and a static shape, and constants carry their data.
//
// Types. ONNX float is fp32, float16 fp16, bfloat16 bf16, int8/int16/int32 the same; int64 and
// bool values are accepted only where the compiler folds them away at compile time (shapes, axes,
// indices of constant tensors), so they are kept as int64 data on a value of dtype kNone.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace lpu::compiler {

/// One value (tensor) of the graph.
struct Value {
  std::string name;
  isa::DType dtype = isa::DType::kNone;  ///< kNone: an int64/bool value (see file comment)
  std::vector<std::int64_t> shape;       ///< static; empty for a scalar
  /// Constant data, little-endian elements of dtype (row-major); empty for non-constants.
  std::vector<std::uint8_t> data;
  /// Constant int64/bool data (dtype kNone only).
  std::vector<std::int64_t> ints;
  bool constant = false;

  std::int64_t elements() const {
    std::int64_t n = 1;
    for (auto d : shape)
      n *= d;
    return n;
  }
};

/// An attribute of a node (the ONNX kinds the compiler reads).
struct Attr {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats } kind = Kind::kInt;
  std::int64_t i = 0;
  float f = 0.0f;
  std::string s;
  std::vector<std::int64_t> ints;
  std::vector<float> floats;
};

struct Node {
  std::string name;          ///< the ONNX node name, or "<op>_<index>" when the model gives none
  std::string op;            ///< ONNX op type, e.g. "Add"
  std::vector<int> inputs;   ///< value ids; -1 for an omitted optional input
  std::vector<int> outputs;  ///< value ids
  std::map<std::string, Attr> attrs;

  const Attr* attr(const std::string& key) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? nullptr : &it->second;
  }
};

struct Graph {
  std::string source;  ///< file the graph came from (for messages)
  std::vector<Value> values;
  std::vector<Node> nodes;  ///< in topological order
  std::vector<int> inputs;  ///< graph inputs (non-constant), in model order
  std::vector<int> outputs;

  int find(const std::string& name) const;  ///< value id or -1
  /// "model.onnx: node 'add_1' (Add)": the prefix of every message about a node.
  std::string where(const Node& n) const;
};

}  // namespace lpu::compiler
