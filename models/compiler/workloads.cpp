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

  // Names of nodes and initializers made from now on start with `scope` (a layer's prefix).
  void set_scope(const std::string& scope) { scope_ = scope; }
  std::string scoped(const std::string& name) const { return scope_ + name; }

  void input(const std::string& name, const std::vector<std::int64_t>& dims) {
    set_type(m_.mutable_graph()->add_input(), name, dims);
  }
  void output(const std::string& name, const std::vector<std::int64_t>& dims) {
    set_type(m_.mutable_graph()->add_output(), name, dims);
  }

  // An initializer of uniform random values in [-scale, scale].
  std::string weight(const std::string& name, const std::vector<std::int64_t>& dims, double scale) {
    std::int64_t n = 1;
    for (auto d : dims)
      n *= d;
    std::uniform_real_distribution<double> u(-scale, scale);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v)
      x = static_cast<float>(u(rng_));
    return values(name, dims, v);
  }

  struct A {  // a node attribute: an int, ints or a float
    std::string name;
    std::vector<std::int64_t> ints;
    bool list = false;
    float f = 0;
    bool is_float = false;
  };
  static A attr_i(const std::string& n, std::int64_t v) { return {n, {v}, false, 0, false}; }
  static A attr_ints(const std::string& n, std::vector<std::int64_t> v) {
    return {n, std::move(v), true, 0, false};
  }
  static A attr_f(const std::string& n, float v) { return {n, {}, false, v, true}; }

  std::string node(const std::string& op, const std::vector<std::string>& in,
                   const std::string& out_name, const std::vector<A>& attrs = {}) {
    const std::string out = scoped(out_name);
    onnx::NodeProto* n = m_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (const auto& i : in)
      n->add_input(i);
    n->add_output(out);
    for (const auto& a : attrs) {
      auto* p = n->add_attribute();
      p->set_name(a.name);
      if (a.is_float) {
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.f);
      } else if (a.list) {
        p->set_type(onnx::AttributeProto::INTS);
        for (auto v : a.ints)
          p->add_ints(v);
      } else {
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.ints.at(0));
      }
    }
    return out;
  }

  // An initializer of uniform random values in [lo, hi].
  std::string uniform(const std::string& name, const std::vector<std::int64_t>& dims, double lo,
                      double hi) {
    std::int64_t n = 1;
    for (auto d : dims)
      n *= d;
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v)
      x = static_cast<float>(u(rng_));
    return values(name, dims, v);
  }

  // An int64 initializer (shapes, axes, slice bounds).
  std::string ints(const std::string& short_name, const std::vector<std::int64_t>& v) {
    const std::string name = scoped(short_name);
    onnx::TensorProto* t = m_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<std::int64_t>(v.size()));
    for (auto x : v)
      t->add_int64_data(x);
    return name;
  }

  // An initializer with the given values (in the model's float type).
  std::string values(const std::string& short_name, const std::vector<std::int64_t>& dims,
                     const std::vector<float>& v) {
    const std::string name = scoped(short_name);
    onnx::TensorProto* t = m_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(elem_);
    for (auto d : dims)
      t->add_dims(d);
    std::string raw;
    for (float x : v) {
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
  std::string scope_;
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
    throw InputError("--param sizes=" + std::to_string(sizes[0]),
                     "needs at least two sizes (input, output)");
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

// Attention of a prefill: `tokens` new queries over the cached keys (none when ctx is 0) and the
// new keys under a causal mask (query i sees new keys 0..i), per head; the output projection is
// summed over heads. Returns the attention output [tokens, dim].
std::string prefill_attention(Builder& b, const std::string& q, const std::string& k,
                              const std::string& v, const std::string& scale,
                              const std::string& last, std::int64_t heads, std::int64_t hd,
                              std::int64_t ctx, std::int64_t tokens) {
  const std::int64_t dim = heads * hd;
  const auto kt = b.node("Transpose", {k}, "k_new_t", {Builder::attr_ints("perm", {0, 2, 1})});
  std::vector<float> mask(static_cast<std::size_t>(tokens * tokens), 0.0f);
  for (std::int64_t i = 0; i < tokens; ++i)
    for (std::int64_t j = i + 1; j < tokens; ++j)
      mask[static_cast<std::size_t>(i * tokens + j)] = -30000.0f;  // exp() of it is 0
  const auto sn =
      b.node("Add",
             {b.node("Mul", {b.node("MatMul", {q, kt}, "scores_new"), scale}, "scores_new_scaled"),
              b.values("causal_mask", {tokens, tokens}, mask)},
             "scores_new_masked");
  std::string ctxv;
  if (ctx > 0) {
    const auto sc =
        b.node("Mul", {b.node("MatMul", {q, b.scoped("k_cache_t")}, "scores_cache"), scale},
               "scores_cache_scaled");
    const auto all = b.node("Concat", {sc, sn}, "scores", {Builder::attr_i("axis", -1)});
    const auto prob = b.node("Softmax", {all}, "probs", {Builder::attr_i("axis", -1)});
    const auto pc =
        b.node("Slice", {prob, b.ints("s0", {0}), b.ints("s1", {ctx}), last}, "probs_cache");
    const auto pn = b.node("Slice", {prob, b.ints("s2", {ctx}), b.ints("s3", {ctx + tokens}), last},
                           "probs_new");
    ctxv = b.node("Add",
                  {b.node("MatMul", {pc, b.scoped("v_cache")}, "ctx_cache"),
                   b.node("MatMul", {pn, v}, "ctx_new")},
                  "ctx");
  } else {
    const auto prob = b.node("Softmax", {sn}, "probs", {Builder::attr_i("axis", -1)});
    ctxv = b.node("MatMul", {prob, v}, "ctx");
  }
  const auto o = b.node(
      "MatMul", {ctxv, b.weight("wo", {heads, hd, dim}, 1.0 / std::sqrt(static_cast<double>(dim)))},
      "o_heads");
  return b.node("ReduceSum", {o, b.ints("axes_heads", {0})}, "attn",
                {Builder::attr_i("keepdims", 0)});
}

// One decoder layer of a Llama-style model for a decode step or a prefill: RMSNorm, Q/K/V
// projections per head, rotary embedding, attention of the new tokens over a KV cache plus
// themselves (causal among themselves), the output projection summed over heads, and a SwiGLU
// MLP, each block with its residual. The cache comes in as inputs (K stored transposed per head,
// [heads, head_dim, ctx]; V as [heads, ctx, head_dim]); the new tokens' K and V are outputs for
// the host to append.
void llama_decoder(const Params& p, const std::string& path) {
  std::int64_t dim = 256, heads = 4, ffn = 512;
  const std::string preset = p.choice("preset", {"small", "7b", "70b", "custom"});
  if (preset == "7b") dim = 4096, heads = 32, ffn = 11008;
  if (preset == "70b") dim = 8192, heads = 64, ffn = 28672;
  if (preset == "custom") {
    dim = p.integer("dim", 16, 1 << 16);
    heads = p.integer("heads", 1, 1024);
    ffn = p.integer("ffn", 16, 1 << 17);
  }
  // The scores of the cache and the new tokens share one vector (Concat and Softmax within a
  // vector for now).
  const std::int64_t tokens = p.integer("tokens", 1, 320);
  const std::int64_t ctx = p.integer("ctx", tokens > 1 ? 0 : 1, 320 - tokens);
  if (dim % heads) throw InputError("--param heads", "dim must be a multiple of heads");
  const std::int64_t hd = dim / heads;
  if (hd % 2) throw InputError("--param heads", "the head dimension must be even (rotary)");
  const std::string dt = p.choice("dtype", {"fp16", "fp32"});
  const std::int64_t layers = p.integer("layers", 1, 1024);
  Builder b("llama_decoder", elem_of(dt),
            static_cast<std::uint32_t>(p.integer("seed", 0, 1LL << 32)));
  // One layer keeps the plain names; a stack prefixes each layer's with "l<i>.".
  auto prefix = [&](std::int64_t l) {
    return layers == 1 ? std::string() : "l" + std::to_string(l) + ".";
  };
  b.input("x", {tokens, dim});
  for (std::int64_t l = 0; l < layers && ctx > 0; ++l) {
    b.input(prefix(l) + "k_cache_t", {heads, hd, ctx});
    b.input(prefix(l) + "v_cache", {heads, ctx, hd});
  }
  b.input("cos", {tokens, hd});  // per position: ctx, ctx + 1, ..
  b.input("sin", {tokens, hd});
  std::string x_in = "x";
  for (std::int64_t l = 0; l < layers; ++l) {
    b.set_scope(prefix(l));
    const auto last = b.ints("axis_last", {-1});
    auto rmsnorm = [&](const std::string& x, const std::string& name) {
      const auto g = b.weight(name + ".weight", {dim}, 1.0);
      const auto sq = b.node("Mul", {x, x}, name + ".sq");
      const auto ms = b.node("ReduceMean", {sq}, name + ".ms",
                             {Builder::attr_ints("axes", {-1}), Builder::attr_i("keepdims", 1)});
      const auto eps = b.values(name + ".eps", {1}, {1e-5f});
      const auto rt = b.node("Sqrt", {b.node("Add", {ms, eps}, name + ".mse")}, name + ".rms");
      const auto inv = b.node("Reciprocal", {rt}, name + ".inv");
      return b.node("Mul", {b.node("Mul", {x, inv}, name + ".xn"), g}, name + ".out");
    };
    const double s_in = 1.0 / std::sqrt(static_cast<double>(dim));
    const auto h = rmsnorm(x_in, "attn_norm");
    const auto h3 = b.node("Unsqueeze", {h, b.ints("axis0", {0})}, "h3");
    const auto q = b.node("MatMul", {h3, b.weight("wq", {heads, dim, hd}, s_in)}, "q");
    const auto k = b.node("MatMul", {h3, b.weight("wk", {heads, dim, hd}, s_in)}, "k");
    const auto v = b.node("MatMul", {h3, b.weight("wv", {heads, dim, hd}, s_in)}, "v_new");
    // rotate_half(t) = t . R with R the signed permutation [-t2, t1].
    std::vector<float> rot(static_cast<std::size_t>(hd * hd), 0.0f);
    for (std::int64_t j = 0; j < hd / 2; ++j) {
      rot[static_cast<std::size_t>((j + hd / 2) * hd + j)] = -1.0f;
      rot[static_cast<std::size_t>(j * hd + j + hd / 2)] = 1.0f;
    }
    const auto r = b.values("rotate_half", {hd, hd}, rot);
    auto rope = [&](const std::string& t, const std::string& out) {
      const auto a = b.node("Mul", {t, "cos"}, t + ".cos");
      const auto c = b.node("Mul", {b.node("MatMul", {t, r}, t + ".rot"), "sin"}, t + ".sin");
      return b.node("Add", {a, c}, out);
    };
    const auto qr = rope(q, "q_rot");
    const auto kr = rope(k, "k_new");
    const auto scale =
        b.values("scale", {1}, {static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))});
    std::string attn;
    if (tokens > 1) {
      attn = prefill_attention(b, qr, kr, v, scale, last, heads, hd, ctx, tokens);
    } else {
      const auto sc =
          b.node("Mul", {b.node("MatMul", {qr, b.scoped("k_cache_t")}, "scores_cache"), scale},
                 "scores_cache_scaled");
      const auto sn = b.node("Mul",
                             {b.node("ReduceSum", {b.node("Mul", {qr, kr}, "qk_new"), last},
                                     "score_new", {Builder::attr_i("keepdims", 1)}),
                              scale},
                             "score_new_scaled");
      const auto all = b.node("Concat", {sc, sn}, "scores", {Builder::attr_i("axis", -1)});
      const auto prob = b.node("Softmax", {all}, "probs", {Builder::attr_i("axis", -1)});
      const auto pc =
          b.node("Slice", {prob, b.ints("s0", {0}), b.ints("s1", {ctx}), last}, "probs_cache");
      const auto pn =
          b.node("Slice", {prob, b.ints("s2", {ctx}), b.ints("s3", {ctx + 1}), last}, "prob_new");
      const auto ctxv = b.node("Add",
                               {b.node("MatMul", {pc, b.scoped("v_cache")}, "ctx_cache"),
                                b.node("Mul", {pn, v}, "ctx_new")},
                               "ctx");
      const auto o = b.node(
          "MatMul",
          {ctxv, b.weight("wo", {heads, hd, dim}, 1.0 / std::sqrt(static_cast<double>(dim)))},
          "o_heads");
      // Summed over heads on the VXM ([heads, 1, dim] -> [1, dim]).
      attn = b.node("ReduceSum", {o, b.ints("axes_heads", {0})}, "attn",
                    {Builder::attr_i("keepdims", 0)});
    }
    const auto x1 = b.node("Add", {x_in, attn}, "x1");
    const auto h2 = rmsnorm(x1, "ffn_norm");
    const auto a1 = b.node("MatMul", {h2, b.weight("w1", {dim, ffn}, s_in)}, "gate");
    const auto a3 = b.node("MatMul", {h2, b.weight("w3", {dim, ffn}, s_in)}, "up");
    const auto silu = b.node("Mul", {a1, b.node("Sigmoid", {a1}, "gate_sig")}, "silu");
    const auto f = b.node("MatMul",
                          {b.node("Mul", {silu, a3}, "swiglu"),
                           b.weight("w2", {ffn, dim}, 1.0 / std::sqrt(static_cast<double>(ffn)))},
                          "down");
    if (l + 1 == layers) b.set_scope("");
    x_in = b.node("Add", {x1, f}, "y");
  }
  b.output("y", {tokens, dim});
  for (std::int64_t l = 0; l < layers; ++l) {
    b.output(prefix(l) + "k_new", {heads, tokens, hd});
    b.output(prefix(l) + "v_new", {heads, tokens, hd});
  }
  b.save(path);
}

// One BERT encoder layer (post-norm): per-head Q/K/V projections with biases, scaled
// dot-product attention with an additive mask (0 or -10000 per key position, an input), the
// output projection summed over heads, residual and LayerNorm, a GELU MLP (erf form), residual
// and LayerNorm.
void bert_encoder(const Params& p, const std::string& path) {
  std::int64_t hidden = 768, heads = 12, ffn = 3072;
  const std::string preset = p.choice("preset", {"base", "small", "custom"});
  if (preset == "small") hidden = 256, heads = 4, ffn = 1024;
  if (preset == "custom") {
    hidden = p.integer("hidden", 16, 1 << 16);
    heads = p.integer("heads", 1, 1024);
    ffn = p.integer("ffn", 16, 1 << 17);
  }
  // Attention transposes K per head and takes the scores' softmax within one vector for now.
  const std::int64_t seq = p.integer("seq", 1, 320);
  if (hidden % heads) throw InputError("--param heads", "hidden must be a multiple of heads");
  const std::int64_t hd = hidden / heads;
  if (hd > 320)
    throw InputError("--param heads", "the head dimension must fit one vector (320) for now");
  const std::string dt = p.choice("dtype", {"fp16", "fp32"});
  Builder b("bert_encoder", elem_of(dt),
            static_cast<std::uint32_t>(p.integer("seed", 0, 1LL << 32)));
  b.input("x", {seq, hidden});
  b.input("mask", {1, seq});
  const double s_in = 1.0 / std::sqrt(static_cast<double>(hidden));
  const auto x3 = b.node("Unsqueeze", {"x", b.ints("axis0", {0})}, "x3");
  auto proj = [&](const std::string& name) {
    const auto mm =
        b.node("MatMul", {x3, b.weight("w" + name, {heads, hidden, hd}, s_in)}, name + ".mm");
    return b.node("Add", {mm, b.weight("b" + name, {heads, 1, hd}, 0.1)}, name);
  };
  const auto q = proj("q"), k = proj("k"), v = proj("v");
  const auto kt = b.node("Transpose", {k}, "k_t", {Builder::attr_ints("perm", {0, 2, 1})});
  const auto scale =
      b.values("scale", {1}, {static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))});
  const auto sc = b.node("Mul", {b.node("MatMul", {q, kt}, "scores_raw"), scale}, "scores_scaled");
  const auto masked = b.node("Add", {sc, "mask"}, "scores");
  const auto prob = b.node("Softmax", {masked}, "probs", {Builder::attr_i("axis", -1)});
  const auto ctx = b.node("MatMul", {prob, v}, "ctx");
  const auto o = b.node("MatMul", {ctx, b.weight("wo", {heads, hd, hidden}, s_in)}, "o_heads");
  const auto attn =
      b.node("ReduceSum", {o, b.ints("axes_heads", {0})}, "attn", {Builder::attr_i("keepdims", 0)});
  const auto attn_b = b.node("Add", {attn, b.weight("bo", {hidden}, 0.1)}, "attn_out");
  auto layernorm = [&](const std::string& x, const std::string& name) {
    std::vector<float> ones(static_cast<std::size_t>(hidden), 1.0f);
    return b.node(
        "LayerNormalization",
        {x, b.values(name + ".gamma", {hidden}, ones), b.weight(name + ".beta", {hidden}, 0.1)},
        name, {Builder::attr_i("axis", -1), Builder::attr_f("epsilon", 1e-12f)});
  };
  const auto h1 = layernorm(b.node("Add", {"x", attn_b}, "res1"), "ln1");
  const auto f1 = b.node("Add",
                         {b.node("MatMul", {h1, b.weight("w1", {hidden, ffn}, s_in)}, "ffn1.mm"),
                          b.weight("b1", {ffn}, 0.1)},
                         "ffn1");
  // GELU: 0.5 x (1 + erf(x / sqrt 2))
  const auto inv_sqrt2 = b.values("inv_sqrt2", {1}, {0.70710678f});
  const auto e = b.node("Erf", {b.node("Mul", {f1, inv_sqrt2}, "gelu.scaled")}, "gelu.erf");
  const auto one = b.values("one", {1}, {1.0f});
  const auto half = b.values("half", {1}, {0.5f});
  const auto g = b.node(
      "Mul", {b.node("Mul", {f1, b.node("Add", {e, one}, "gelu.1p")}, "gelu.x1p"), half}, "gelu");
  const auto f2 =
      b.node("Add",
             {b.node("MatMul",
                     {g, b.weight("w2", {ffn, hidden}, 1.0 / std::sqrt(static_cast<double>(ffn)))},
                     "ffn2.mm"),
              b.weight("b2", {hidden}, 0.1)},
             "ffn2");
  b.node("Identity", {layernorm(b.node("Add", {h1, f2}, "res2"), "ln2")}, "y");
  b.output("y", {seq, hidden});
  b.save(path);
}

// ResNet-50 (v1.5: the stride of a downsampling bottleneck on its 3 x 3 convolution), the real
// layer graph as exported for inference: Conv + BatchNormalization (+ Relu) everywhere, a 3 x 3
// max pool after the stem, bottleneck blocks with projection shortcuts, global average pool,
// the classifier as Gemm. Parameters shrink it for quick runs (input size, widths, blocks).
void resnet50(const Params& p, const std::string& path) {
  const auto size = p.integer("size", 32, 1024), batch = p.integer("batch", 1, 64);
  const auto width = p.integer("width", 1, 256), classes = p.integer("classes", 1, 100000);
  const auto blocks = p.integers("blocks", 1, 64);
  if (blocks.size() != 4)
    throw InputError("--param blocks", "expected four comma-separated block counts");
  const std::string dt = p.choice("dtype", {"fp16", "fp32"});
  Builder b("resnet50", elem_of(dt), static_cast<std::uint32_t>(p.integer("seed", 0, 1LL << 32)));
  b.input("x", {batch, 3, size, size});
  auto conv = [&](const std::string& x, const std::string& name, std::int64_t cin,
                  std::int64_t cout, std::int64_t k, std::int64_t stride, bool relu) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(cin * k * k));
    const auto w = b.weight(name + ".w", {cout, cin, k, k}, scale);
    const auto c = b.node("Conv", {x, w}, name,
                          {Builder::attr_ints("kernel_shape", {k, k}),
                           Builder::attr_ints("strides", {stride, stride}),
                           Builder::attr_ints("pads", {k / 2, k / 2, k / 2, k / 2})});
    const auto bn = b.node("BatchNormalization",
                           {c, b.uniform(name + ".bn.scale", {cout}, 0.5, 1.0),
                            b.uniform(name + ".bn.bias", {cout}, -0.1, 0.1),
                            b.uniform(name + ".bn.mean", {cout}, -0.1, 0.1),
                            b.uniform(name + ".bn.var", {cout}, 0.5, 1.5)},
                           name + ".bn", {Builder::attr_f("epsilon", 1e-5f)});
    return relu ? b.node("Relu", {bn}, name + ".relu") : bn;
  };
  std::string cur = conv("x", "stem", 3, width, 7, 2, true);
  cur = b.node("MaxPool", {cur}, "pool",
               {Builder::attr_ints("kernel_shape", {3, 3}), Builder::attr_ints("strides", {2, 2}),
                Builder::attr_ints("pads", {1, 1, 1, 1})});
  std::int64_t cin = width;
  for (std::size_t s = 0; s < 4; ++s) {
    const std::int64_t mid = width << s, out = 4 * mid;
    for (std::int64_t k = 0; k < blocks[s]; ++k) {
      const std::string name = "layer" + std::to_string(s + 1) + "." + std::to_string(k);
      const std::int64_t stride = k == 0 && s > 0 ? 2 : 1;
      auto h = conv(cur, name + ".conv1", cin, mid, 1, 1, true);
      h = conv(h, name + ".conv2", mid, mid, 3, stride, true);
      h = conv(h, name + ".conv3", mid, out, 1, 1, false);
      const auto shortcut = k == 0 ? conv(cur, name + ".down", cin, out, 1, stride, false) : cur;
      cur = b.node("Relu", {b.node("Add", {h, shortcut}, name + ".add")}, name + ".out");
      cin = out;
    }
  }
  const auto pooled = b.node("GlobalAveragePool", {cur}, "avgpool");
  const auto flat = b.node("Flatten", {pooled}, "flatten", {Builder::attr_i("axis", 1)});
  const double s_fc = 1.0 / std::sqrt(static_cast<double>(cin));
  b.node("Gemm", {flat, b.weight("fc.w", {classes, cin}, s_fc), b.weight("fc.b", {classes}, 0.1)},
         "y", {Builder::attr_i("transB", 1)});
  b.output("y", {batch, classes});
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
      {"llama-decoder",
       "one Llama-style decoder layer, decode step: RMSNorm, Q/K/V, rotary, attention over a KV "
       "cache (an input) plus the new token, output projection, SwiGLU MLP, residuals",
       {{"preset", "small", "small (256 wide, 4 heads) | 7b | 70b | custom"},
        {"dim", "256", "model width (custom)"},
        {"heads", "4", "attention heads (custom)"},
        {"ffn", "512", "MLP width (custom)"},
        {"ctx", "64", "tokens already in the KV cache (ctx + tokens <= 320 for now)"},
        {"tokens", "1", "new tokens: 1 is a decode step, more a prefill (causal attention)"},
        {"layers", "1", "decoder layers stacked (each with its own weights and KV cache)"},
        {"dtype", "fp16", "fp16 | fp32"},
        {"seed", "1", "weights' random seed"}}},
      {"bert-encoder",
       "one BERT encoder layer: per-head attention with an additive mask, output projection, "
       "residual + LayerNorm, GELU MLP, residual + LayerNorm",
       {{"preset", "base", "base (768 wide, 12 heads, 3072 MLP) | small (256, 4, 1024) | custom"},
        {"hidden", "768", "model width (custom)"},
        {"heads", "12", "attention heads (custom)"},
        {"ffn", "3072", "MLP width (custom)"},
        {"seq", "128", "sequence length (1..320 for now)"},
        {"dtype", "fp16", "fp16 | fp32"},
        {"seed", "1", "weights' random seed"}}},
      {"resnet50",
       "ResNet-50 v1.5 for inference: 7x7 stem, max pool, 3-4-6-3 bottleneck blocks with "
       "batch normalization, global average pool, classifier",
       {{"size", "224", "input height and width (32..1024)"},
        {"batch", "1", "images"},
        {"width", "64", "stem width; stage widths are width, 2x, 4x, 8x (x4 out)"},
        {"blocks", "3,4,6,3", "bottleneck blocks per stage"},
        {"classes", "1000", "classifier outputs"},
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
    if (name == "llama-decoder") llama_decoder(p, path);
    if (name == "bert-encoder") bert_encoder(p, path);
    if (name == "resnet50") resnet50(p, path);
    return;
  }
  std::vector<std::string> names;
  for (const auto& w : workloads())
    names.push_back(w.name);
  const auto hint = did_you_mean(name, names);
  throw InputError(name, "no built-in workload of this name" + (hint.empty() ? "" : "; " + hint));
}

}  // namespace lpu::compiler
