// Building compiler graphs by hand for tests (no ONNX file), and test data: random floats,
// fp16 and fp32 bytes. Shared by the compiler's suites.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "compiler/graph.h"
#include "compiler/reference.h"
#include "func/numerics.h"

namespace lpu::test {

using compiler::Attr;
using compiler::Bytes;
using compiler::Graph;
using isa::DType;
using Dims = std::vector<std::int64_t>;

// --- building graphs ----------------------------------------------------------------------------

class Builder {
 public:
  Builder() { g.source = "test"; }

  int input(const std::string& name, DType dt, const Dims& shape) {
    const int id = value(name, dt, shape);
    g.inputs.push_back(id);
    return id;
  }
  int constant(const std::string& name, DType dt, const Dims& shape, Bytes data) {
    const int id = value(name, dt, shape);
    g.values[static_cast<std::size_t>(id)].constant = true;
    g.values[static_cast<std::size_t>(id)].data = std::move(data);
    return id;
  }
  // A constant int64 tensor (shapes, axes, slice bounds), kept as integers.
  int ints(const std::string& name, const Dims& v) {
    const int id = value(name, DType::kNone, {static_cast<std::int64_t>(v.size())});
    g.values[static_cast<std::size_t>(id)].constant = true;
    g.values[static_cast<std::size_t>(id)].ints = v;
    return id;
  }
  // A node with one output (named `out`, of the given type and shape); returns the output's id.
  int node(const std::string& op, const std::string& name, const std::vector<int>& inputs,
           const std::string& out, DType dt, const Dims& shape,
           const std::map<std::string, Attr>& attrs = {}) {
    const int id = value(out, dt, shape);
    compiler::Node n;
    n.name = name;
    n.op = op;
    n.inputs = inputs;
    n.outputs = {id};
    n.attrs = attrs;
    g.nodes.push_back(std::move(n));
    return id;
  }
  void output(int id) { g.outputs.push_back(id); }

  Graph g;

 private:
  int value(const std::string& name, DType dt, const Dims& shape) {
    compiler::Value v;
    v.name = name;
    v.dtype = dt;
    v.shape = shape;
    g.values.push_back(std::move(v));
    return static_cast<int>(g.values.size()) - 1;
  }
};

inline Attr float_attr(float f) {
  Attr a;
  a.kind = Attr::Kind::kFloat;
  a.f = f;
  return a;
}

inline Attr int_attr(std::int64_t i) {
  Attr a;
  a.kind = Attr::Kind::kInt;
  a.i = i;
  return a;
}

inline Attr ints_attr(std::vector<std::int64_t> v) {
  Attr a;
  a.kind = Attr::Kind::kInts;
  a.ints = std::move(v);
  return a;
}

// --- data ---------------------------------------------------------------------------------------

inline std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v)
    x = d(rng);
  return v;
}

// Values exactly representable in fp16 (so a double-precision reference sees what the chip sees).
inline std::vector<float> uniform_fp16(std::size_t n, float lo, float hi, unsigned seed) {
  auto v = uniform(n, lo, hi, seed);
  for (auto& x : v)
    x = func::fp16_to_fp32(func::fp32_to_fp16(x));
  return v;
}

inline Bytes f32_bytes(const std::vector<float>& v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline std::vector<float> f32_values(const Bytes& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

inline Bytes f16_bytes(const std::vector<float>& v) {
  Bytes b;
  for (float x : v) {
    const std::uint16_t h = func::fp32_to_fp16(x);
    b.push_back(static_cast<std::uint8_t>(h));
    b.push_back(static_cast<std::uint8_t>(h >> 8));
  }
  return b;
}

inline std::vector<float> f16_values(const Bytes& b) {
  std::vector<float> v;
  for (std::size_t i = 0; i + 1 < b.size(); i += 2)
    v.push_back(func::fp16_to_fp32(static_cast<std::uint16_t>(b[i] | (b[i + 1] << 8))));
  return v;
}

}  // namespace lpu::test
