#include "compiler/workloads.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <fstream>
#include <random>

#include "common/diagnostics.h"
#include "func/numerics.h"

namespace lpu::compiler {

namespace {

// A minimal ONNX graph writer: named values, initializers from a seed, nodes in order.
class Builder {
 public:
  Builder(const std::string& name, int elem, std::uint32_t seed) : elem_(elem), rng_(seed) {
    m_.set_ir_version(8);
    m_.set_producer_name("lpu workload");
    auto* op = m_.add_opset_import();
    op->set_domain("");
    op->set_version(17);
    m_.mutable_graph()->set_name(name);
  }

  void input(const std::string& name, const std::vector<std::int64_t>& dims) {
    set_type(m_.mutable_graph()->add_input(), name, dims);
  }
  void output(const std::string& name, const std::vector<std::int64_t>& dims) {
    set_type(m_.mutable_graph()->add_output(), name, dims);
  }

  // An initializer of uniform random values in [-scale, scale].
  std::string weight(const std::string& name, const std::vector<std::int64_t>& dims, double scale) {
    onnx::TensorProto* t = m_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(elem_);
    std::int64_t n = 1;
    for (auto d : dims) {
      t->add_dims(d);
      n *= d;
    }
    std::uniform_real_distribution<double> u(-scale, scale);
    std::string raw;
    for (std::int64_t i = 0; i < n; ++i) {
      const auto x = static_cast<float>(u(rng_));
      if (elem_ == onnx::TensorProto::FLOAT16) {
        const std::uint16_t h = func::fp32_to_fp16(x);
        raw.push_back(static_cast<char>(h & 0xff));
        raw.push_back(static_cast<char>(h >> 8));
      } else {
        const std::uint32_t b = func::float_bits(x);
        for (int k = 0; k < 4; ++k)
          raw.push_back(static_cast<char>((b >> (8 * k)) & 0xff));
      }
    }
    t->set_raw_data(raw);
    return name;
  }

  std::string node(const std::string& op, const std::vector<std::string>& in,
                   const std::string& out) {
    onnx::NodeProto* n = m_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (const auto& i : in)
      n->add_input(i);
    n->add_output(out);
    return out;
  }

  void save(const std::string& path) const {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f || !m_.SerializeToOstream(&f)) throw InputError(path, "cannot write the model");
  }

 private:
  void set_type(onnx::ValueInfoProto* vi, const std::string& name,
                const std::vector<std::int64_t>& dims) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem_);
    for (auto d : dims)
      tt->mutable_shape()->add_dim()->set_dim_value(d);
  }

  onnx::ModelProto m_;
  int elem_;
  std::mt19937 rng_;
};

// Parameters with their defaults, checked and parsed.
class Params {
 public:
  Params(const WorkloadInfo& w, const std::map<std::string, std::string>& given) : w_(w) {
    for (const auto& p : w.params)
      values_[p.key] = p.default_value;
    for (const auto& [k, v] : given) {
      if (!values_.count(k)) {
        std::vector<std::string> keys;
        for (const auto& p : w.params)
          keys.push_back(p.key);
        const auto hint = did_you_mean(k, keys);
        throw InputError("--param " + k, "workload '" + w.name + "' has no parameter '" + k + "'" +
                                             (hint.empty() ? "" : "; " + hint));
      }
      values_[k] = v;
    }
  }
  std::int64_t integer(const std::string& k, std::int64_t lo, std::int64_t hi) const {
    const std::string& v = values_.at(k);
    std::size_t used = 0;
    std::int64_t x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || v.empty() || x < lo || x > hi)
      throw InputError("--param " + k + "=" + v,
                       "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return x;
  }
  std::vector<std::int64_t> integers(const std::string& k, std::int64_t lo, std::int64_t hi) const {
    std::vector<std::int64_t> out;
    const std::string& v = values_.at(k);
    std::size_t at = 0;
    while (at <= v.size()) {
      const auto comma = v.find(',', at);
      const std::string part =
          v.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      std::size_t used = 0;
      std::int64_t x = 0;
      try {
        x = std::stoll(part, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (part.empty() || used != part.size() || x < lo || x > hi)
        throw InputError("--param " + k + "=" + v, "expected comma-separated integers in " +
                                                       std::to_string(lo) + ".." +
                                                       std::to_string(hi));
      out.push_back(x);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
    return out;
  }
  std::string choice(const std::string& k, const std::vector<std::string>& allowed) const {
    const std::string& v = values_.at(k);
    for (const auto& a : allowed)
      if (a == v) return v;
    std::string list;
    for (const auto& a : allowed)
      list += (list.empty() ? "" : ", ") + a;
    throw InputError("--param " + k + "=" + v, "expected one of " + list);
  }

 private:
  const WorkloadInfo& w_;
  std::map<std::string, std::string> values_;
};

int elem_of(const std::string& dtype) {
  return dtype == "fp16" ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT;
}

void gemm(const Params& p, const std::string& path) {
  const auto m = p.integer("m", 1, 1 << 20), k = p.integer("k", 1, 1 << 16),
             n = p.integer("n", 1, 1 << 16);
  const std::string dt = p.choice("dtype", {"fp16", "fp32"});
  Builder b("gemm", elem_of(dt), static_cast<std::uint32_t>(p.integer("seed", 0, 1LL << 32)));
  b.input("x", {m, k});
  const auto w = b.weight("w", {k, n}, 1.0 / std::sqrt(static_cast<double>(k)));
  b.node("MatMul", {"x", w}, "y");
  b.output("y", {m, n});
  b.save(path);
}

void mlp(const Params& p, const std::string& path) {
  const auto batch = p.integer("batch", 1, 1 << 20);
  const auto sizes = p.integers("sizes", 1, 1 << 16);
  if (sizes.size() < 2)
    throw InputError("--param sizes", "needs at least two sizes (input, output)");
  const std::string dt = p.choice("dtype", {"fp16", "fp32"});
  const std::string act = p.choice("act", {"relu", "sigmoid", "tanh"});
  const std::string op = act == "relu" ? "Relu" : act == "sigmoid" ? "Sigmoid" : "Tanh";
  Builder b("mlp", elem_of(dt), static_cast<std::uint32_t>(p.integer("seed", 0, 1LL << 32)));
  b.input("x", {batch, sizes[0]});
  std::string cur = "x";
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const std::string s = std::to_string(l);
    const double scale = 1.0 / std::sqrt(static_cast<double>(sizes[l]));
    const auto w = b.weight("w" + s, {sizes[l], sizes[l + 1]}, scale);
    const auto bias = b.weight("b" + s, {sizes[l + 1]}, scale);
    cur = b.node("MatMul", {cur, w}, "mm" + s);
    const bool last = l + 2 == sizes.size();
    cur = b.node("Add", {cur, bias}, last ? "y" : "pre" + s);
    if (!last) cur = b.node(op, {cur}, "h" + s);
  }
  b.output("y", {batch, sizes.back()});
  b.save(path);
}

}  // namespace

const std::vector<WorkloadInfo>& workloads() {
  static const std::vector<WorkloadInfo> w = {
      {"gemm",
       "y = x . w: one matrix product, x [m, k] an input, w [k, n] random weights",
       {{"m", "64", "rows of x"},
        {"k", "256", "columns of x, rows of w"},
        {"n", "256", "columns of w"},
        {"dtype", "fp16", "fp16 | fp32"},
        {"seed", "1", "weights' random seed"}}},
      {"mlp",
       "a multi-layer perceptron: per layer x . w + b, then the activation (none after the last)",
       {{"batch", "8", "rows of the input"},
        {"sizes", "256,512,256", "layer widths, input first, comma-separated"},
        {"act", "relu", "relu | sigmoid | tanh"},
        {"dtype", "fp16", "fp16 | fp32"},
        {"seed", "1", "weights' random seed"}}},
  };
  return w;
}

void write_workload(const std::string& name, const std::map<std::string, std::string>& params,
                    const std::string& path) {
  for (const auto& w : workloads()) {
    if (w.name != name) continue;
    const Params p(w, params);
    if (name == "gemm") gemm(p, path);
    if (name == "mlp") mlp(p, path);
    return;
  }
  std::vector<std::string> names;
  for (const auto& w : workloads())
    names.push_back(w.name);
  const auto hint = did_you_mean(name, names);
  throw InputError(name, "no built-in workload of this name" + (hint.empty() ? "" : "; " + hint));
}

}  // namespace lpu::compiler
