#include "compiler/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "common/diagnostics.h"
#include "func/numerics.h"

namespace lpu::compiler {

using func::VxmOp;
using isa::DType;

namespace {

const std::map<std::string, VxmOp>& binary_ops() {
  static const std::map<std::string, VxmOp> m = {{"Add", VxmOp::kAdd},
                                                 {"Sub", VxmOp::kSub},
                                                 {"Mul", VxmOp::kMul},
                                                 {"Max", VxmOp::kMax},
                                                 {"Min", VxmOp::kMin}};
  return m;
}

const std::map<std::string, VxmOp>& unary_ops() {
  static const std::map<std::string, VxmOp> m = {{"Neg", VxmOp::kNeg},   {"Abs", VxmOp::kAbs},
                                                 {"Relu", VxmOp::kRelu}, {"Exp", VxmOp::kExp},
                                                 {"Tanh", VxmOp::kTanh}, {"Identity", VxmOp::kMov}};
  return m;
}

// numpy broadcasting of two shapes; nullopt when they do not broadcast.
std::optional<std::vector<std::int64_t>> broadcast(const std::vector<std::int64_t>& x,
                                                   const std::vector<std::int64_t>& y) {
  const std::size_t n = std::max(x.size(), y.size());
  std::vector<std::int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t a = i < n - x.size() ? 1 : x[i - (n - x.size())];
    const std::int64_t b = i < n - y.size() ? 1 : y[i - (n - y.size())];
    if (a != b && a != 1 && b != 1) return std::nullopt;
    out[i] = a == 1 ? b : a;
  }
  return out;
}

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i)
    r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

class Lowering {
 public:
  Lowering(const Graph& g, const arch::Arch& arch, const LowerOptions& opt)
      : g_(g), arch_(arch), opt_(opt) {}

  Kernels run() {
    k_.mxm_rows = arch_.chip.mxm.rows;
    k_.mxm_cols = arch_.chip.mxm.cols;
    k_.mxm_accumulators = arch_.chip.mxm.accumulators;
    k_.lanes = arch_.chip.lanes();
    k_.chips = opt_.chips;
    tensor_of_.assign(g_.values.size(), -1);
    cl_of_.assign(g_.values.size(), -1);
    cl_t_.assign(g_.values.size(), false);
    uses_.assign(g_.values.size(), 0);
    for (const Node& n : g_.nodes)
      for (int v : n.inputs)
        if (v >= 0) ++uses_[static_cast<std::size_t>(v)];
    for (int v : g_.inputs) {
      const Value& val = g_.values[static_cast<std::size_t>(v)];
      if (val.dtype == DType::kNone)
        throw InputError(g_.source, "graph input '" + val.name +
                                        "' is an int64 or bool tensor, which the machine "
                                        "does not hold");
      tensor_of_[static_cast<std::size_t>(v)] =
          add_tensor(val.name, val.dtype, val.shape, KTensor::Role::kInput, false);
      k_.inputs.push_back(tensor_of_[static_cast<std::size_t>(v)]);
    }
    for (const Node& n : g_.nodes)
      lower(n);
    for (int v : g_.outputs) {
      int t = tensor(v, nullptr);
      KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
      const Value& val = g_.values[static_cast<std::size_t>(v)];
      if (kt.role == KTensor::Role::kInput)
        throw InputError(g_.source, "graph output '" + val.name +
                                        "' is a graph input; the program would need two tensors "
                                        "of one name");
      if (kt.role != KTensor::Role::kTemp) {
        // An output that is a constant still needs its own copy, under the output's name.
        kt.name += "/constant";
        const int c = add_tensor(val.name, kt.dtype, kt.shape, KTensor::Role::kOutput, false);
        step(VxmOp::kMov, k_.tensors[static_cast<std::size_t>(t)].dtype, t, -1, c,
             g_.source + ": output '" + val.name + "'");
        t = c;
      }
      k_.tensors[static_cast<std::size_t>(t)].role = KTensor::Role::kOutput;
      k_.tensors[static_cast<std::size_t>(t)].name = val.name;
      k_.outputs.push_back(t);
    }
    if (opt_.precision == Precision::kInt8) fold_requantize();
    // Constants no step reads (the float originals of int8 weights, folded ones) drop their
    // data: a wide model's weights are large.
    std::vector<bool> read(k_.tensors.size(), false);
    auto mark = [&](int t) {
      if (t < 0) return;
      read[static_cast<std::size_t>(t)] = true;
      const int v = k_.tensors[static_cast<std::size_t>(t)].view_of;
      if (v >= 0) read[static_cast<std::size_t>(v)] = true;
    };
    for (const KStep& s : k_.steps) {
      for (int t : {s.a, s.b, s.mask, s.d})
        mark(t);
      for (const KPass& p : s.passes) {
        mark(p.x);
        mark(p.w);
      }
    }
    for (int t : k_.outputs)
      mark(t);
    for (std::size_t t = 0; t < k_.tensors.size(); ++t)
      if (!read[t] && k_.tensors[t].role == KTensor::Role::kConstant)
        std::vector<std::uint8_t>().swap(k_.tensors[t].data);
    return std::move(k_);
  }

 private:
  // ---------------------------------------------------------------- requantization folded

  // An int8 epilogue feeding only the next product's quantization,
  //   p = y * s (fp32); b = p + c (fp32); o = fp16(b); r = relu(o); x = r * k (fp16); q = i8(x),
  // becomes p = y * (s k); b = p + c k; r = relu(b) (fp32); q = i8(r): relu commutes with a
  // positive scale, so two VXM steps go and the chain's fp16 values with them (fewer ALUs and
  // streams per chain, and one rounding less). Every tensor dropped has no other reader.
  void fold_requantize() {
    const std::size_t n = k_.steps.size();
    std::vector<int> readers(k_.tensors.size(), 0), writer(k_.tensors.size(), -1);
    auto count = [&](int t) {
      if (t < 0) return;
      ++readers[static_cast<std::size_t>(t)];
      const int v = k_.tensors[static_cast<std::size_t>(t)].view_of;
      if (v >= 0) ++readers[static_cast<std::size_t>(v)];
    };
    for (std::size_t i = 0; i < n; ++i) {
      const KStep& s = k_.steps[i];
      for (int t : {s.a, s.b, s.mask})
        count(t);
      for (const KPass& p : s.passes) {
        count(p.x);
        count(p.w);
      }
      if (s.d >= 0) writer[static_cast<std::size_t>(s.d)] = static_cast<int>(i);
    }
    for (int t : k_.outputs)
      readers[static_cast<std::size_t>(t)] += 2;
    auto T = [&](int t) -> KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };
    // The whole-tensor VXM step writing t, read only once, when it is `op` on `type`.
    auto only = [&](int t, VxmOp op, DType type) -> KStep* {
      if (t < 0 || T(t).view_of >= 0 || readers[static_cast<std::size_t>(t)] != 1) return nullptr;
      const int w = writer[static_cast<std::size_t>(t)];
      if (w < 0) return nullptr;
      KStep& s = k_.steps[static_cast<std::size_t>(w)];
      if (s.kind != KStep::Kind::kVxm || s.rows || !s.deal.empty() || s.mask >= 0 ||
          s.args.op != op || s.args.type != type)
        return nullptr;
      return &s;
    };
    // A constant of `cols` floats a row whose rows are all alike (one, or one broadcast).
    auto row_of = [&](int t, std::int64_t cols) {
      if (t < 0 || T(t).view_of >= 0 || T(t).role != KTensor::Role::kConstant ||
          T(t).cols() != cols || T(t).data.empty())
        return false;
      const auto& data = T(t).data;
      const std::size_t row = data.size() / static_cast<std::size_t>(T(t).rows());
      for (std::size_t i = row; i < data.size(); ++i)
        if (data[i] != data[i % row]) return false;
      return true;
    };
    std::vector<bool> drop(n, false);
    for (std::size_t gi = 0; gi < n; ++gi) {
      KStep& g = k_.steps[gi];
      if (g.kind != KStep::Kind::kVxm || g.rows || !g.deal.empty() || g.args.op != VxmOp::kCast ||
          g.args.type != DType::kFp16 || g.args.to != DType::kI8)
        continue;
      KStep* f = only(g.a, VxmOp::kMul, DType::kFp16);
      if (!f) continue;
      KStep* e = f ? only(f->a, VxmOp::kRelu, DType::kFp16) : nullptr;
      KStep* d = e ? only(e->a, VxmOp::kCast, DType::kFp32) : nullptr;
      if (!d || d->args.to != DType::kFp16) continue;
      const std::int64_t cols = T(d->a).cols();
      if (!row_of(f->b, cols) || T(f->b).dtype != DType::kFp16) continue;
      // Back from d: adds of constants, then the multiplication by one.
      std::vector<KStep*> adds;
      KStep* m = nullptr;
      for (int t = d->a; !m;) {
        KStep* c = only(t, VxmOp::kAdd, DType::kFp32);
        if (c && row_of(c->b, cols) && T(c->b).dtype == DType::kFp32) {
          adds.push_back(c);
          t = c->a;
          continue;
        }
        c = only(t, VxmOp::kMul, DType::kFp32);
        if (!c || !row_of(c->b, cols) || T(c->b).dtype != DType::kFp32) break;
        m = c;
      }
      if (!m) continue;
      std::vector<double> k(static_cast<std::size_t>(cols));
      bool positive = true;
      for (std::int64_t j = 0; j < cols; ++j) {
        k[static_cast<std::size_t>(j)] = element_of(T(f->b), j);
        positive = positive && k[static_cast<std::size_t>(j)] > 0;
      }
      if (!positive) continue;
      auto scaled = [&](int c) {  // a copy of constant c, times k
        const int t =
            add_tensor(T(c).name + "*k", DType::kFp32, T(c).shape, KTensor::Role::kConstant);
        for (std::int64_t r = 0; r < T(c).rows(); ++r)
          for (std::int64_t j = 0; j < cols; ++j) {
            const auto bits = func::float_bits(
                static_cast<float>(element_of(T(c), j) * k[static_cast<std::size_t>(j)]));
            for (int b = 0; b < 4; ++b)
              T(t).data.push_back(static_cast<std::uint8_t>(bits >> (8 * b)));
          }
        return t;
      };
      m->b = scaled(m->b);
      for (KStep* c : adds)
        c->b = scaled(c->b);
      // relu on the fp32 sum, its result in r's tensor (now fp32), cast straight to int8
      const int r = e->d;
      T(r).dtype = DType::kFp32;
      e->a = d->a;
      e->args.type = DType::kFp32;
      g.a = r;
      g.args.type = DType::kFp32;
      drop[static_cast<std::size_t>(d - k_.steps.data())] = true;
      drop[static_cast<std::size_t>(f - k_.steps.data())] = true;
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (!drop[i]) {
        if (out != i) k_.steps[out] = std::move(k_.steps[i]);
        ++out;
      }
    k_.steps.resize(out);
  }

  // A tensor of the lowered program. Internal ones (internal = true) get a "#n" suffix when their
  // name is taken, so that every tensor of the program has its own name; graph-facing ones keep
  // the model's.
  int add_tensor(const std::string& name, DType dt, std::vector<std::int64_t> shape,
                 KTensor::Role role, bool internal = true) {
    if (graph_names_.empty())
      for (const auto& v : g_.values)
        graph_names_.insert(v.name);
    std::string unique = name;
    for (int i = 2; internal && (used_names_.count(unique) || graph_names_.count(unique)); ++i)
      unique = name + "#" + std::to_string(i);
    used_names_.insert(unique);
    KTensor t;
    t.name = unique;
    t.dtype = dt;
    t.shape = std::move(shape);
    t.role = role;
    k_.tensors.push_back(std::move(t));
    return static_cast<int>(k_.tensors.size()) - 1;
  }

  // Tensor t without its data: what most lowering code reads. (A copy, since add_tensor may move
  // the tensors; the data of a large constant is not copied along.)
  KTensor meta(int t) const {
    const KTensor& s = k_.tensors[static_cast<std::size_t>(t)];
    KTensor m;
    m.name = s.name;
    m.dtype = s.dtype;
    m.shape = s.shape;
    m.role = s.role;
    m.view_of = s.view_of;
    m.clean = s.clean;
    m.spread16 = s.spread16;
    m.chunk_rows = s.chunk_rows;
    return m;
  }
  const std::vector<std::uint8_t>& data_of(int t) const {
    return k_.tensors[static_cast<std::size_t>(t)].data;
  }

  // The kernel tensor of graph value v (constants become constant tensors on first use).
  int tensor(int v, const Node* n) {
    if (v < 0) throw InputError(n ? g_.where(*n) : g_.source, "a required input is missing");
    int& t = tensor_of_[static_cast<std::size_t>(v)];
    if (t >= 0) return t;
    const Value& val = g_.values[static_cast<std::size_t>(v)];
    if (const int c = cl_of_[static_cast<std::size_t>(v)]; c >= 0) {
      // Only channels-last so far: the ONNX layout by a transpose.
      Node made;
      made.name = val.name + "/nchw";
      made.op = "Transpose";
      t = transpose_perm(c,
                         cl_to_nchw(k_.tensors[static_cast<std::size_t>(c)].shape.size(),
                                    cl_t_[static_cast<std::size_t>(v)]),
                         n ? *n : made);
      return t;
    }
    if (!val.constant)
      throw InputError(n ? g_.where(*n) : g_.source,
                       "value '" + val.name + "' is used before any node produces it");
    if (val.dtype == DType::kNone)
      throw InputError(
          n ? g_.where(*n) : g_.source,
          "constant '" + val.name + "' is int64 or bool, which this operand cannot take");
    t = add_tensor(val.name, val.dtype, val.shape, KTensor::Role::kConstant, false);
    k_.tensors[static_cast<std::size_t>(t)].data = val.data;
    return t;
  }

  void step(VxmOp op, DType type, int a, int b, int d, const std::string& origin, int mask = -1) {
    // Lanes past the columns stay zero when the op maps zeros to zero (its operands clean).
    bool clean = true;
    for (int t : {a, b, mask})
      if (t >= 0 && !k_.tensors[static_cast<std::size_t>(t)].clean) clean = false;
    switch (op) {
      case VxmOp::kExp:
      case VxmOp::kRsqrt:
      case VxmOp::kCmpEq:
      case VxmOp::kCmpLe:
      case VxmOp::kCmpGe:
        clean = false;
        break;
      default:
        break;
    }
    k_.tensors[static_cast<std::size_t>(d)].clean = clean;
    KStep s;
    s.args.op = op;
    s.args.type = type;
    s.a = a;
    s.b = b;
    s.mask = mask;
    s.d = d;
    s.origin = origin;
    k_.steps.push_back(std::move(s));
  }

  // A constant tensor of `shape` whose elements all hold `x` (converted to dt).
  int splat(const std::string& name, DType dt, double x, std::vector<std::int64_t> shape) {
    const int t = add_tensor(name, dt, std::move(shape), KTensor::Role::kConstant);
    KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
    const int bytes = isa::dtype_bytes(dt);
    std::uint32_t bits = 0;
    switch (dt) {
      case DType::kFp32: {
        const float f = static_cast<float>(x);
        std::memcpy(&bits, &f, 4);
        break;
      }
      case DType::kFp16:
        bits = func::fp32_to_fp16(static_cast<float>(x));
        break;
      case DType::kBf16:
        bits = func::fp32_to_bf16(static_cast<float>(x));
        break;
      default:
        bits = static_cast<std::uint32_t>(static_cast<std::int64_t>(x));
    }
    kt.data.resize(static_cast<std::size_t>(kt.elements() * bytes));
    for (std::size_t i = 0; i < kt.data.size(); ++i)
      kt.data[i] = static_cast<std::uint8_t>(bits >> (8 * (i % static_cast<std::size_t>(bytes))));
    return t;
  }

  // Makes operand t usable against a result of `shape`: the same shape, or a broadcast along
  // rows (one vector row reused); constants are expanded on the host to whichever fits.
  int fit(int t, const std::vector<std::int64_t>& shape, const Node& n) {
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
    if (kt.shape == shape) return t;
    std::int64_t elems = 1;
    for (auto d : shape)
      elems *= d;
    const std::int64_t cols = shape.empty() ? 1 : shape.back();
    if (kt.elements() == elems) return t;  // same elements, same rows view
    // A computed operand broadcast along leading dimensions only (its shape is the result's
    // trailing dimensions): its rows are read again cyclically for every block of the result.
    if (kt.role != KTensor::Role::kConstant && kt.shape.size() <= shape.size() &&
        kt.shape.size() >= 2 &&
        std::equal(kt.shape.begin(), kt.shape.end(),
                   shape.end() - static_cast<long>(kt.shape.size())))
      return t;
    if (kt.elements() == cols && (kt.shape.empty() ? 1 : kt.shape.back()) == cols &&
        (kt.role != KTensor::Role::kConstant || elems == cols))
      return t;
    // One element per row (a scalar, or a last dimension of 1) whose rows match the result's (or
    // are a single row): spread across the lanes on the MXM, then as above.
    if (kt.role != KTensor::Role::kConstant && kt.cols() == 1 &&
        (kt.rows() == 1 || kt.rows() * cols == elems))
      return fit(lane_broadcast(t, cols, n), shape, n);
    if (kt.role != KTensor::Role::kConstant)
      throw InputError(g_.where(n), "broadcast of '" + kt.name + "' " + shape_str(kt.shape) +
                                        " to " + shape_str(shape) +
                                        " is not supported (only along leading dimensions, or "
                                        "of constants)");
    // Expand the constant to a single row of `cols` when it is constant along rows, else whole.
    const int bytes = isa::dtype_bytes(kt.dtype);
    std::vector<std::int64_t> target = shape;
    bool row_only = true;
    {
      // Broadcast the constant's shape against [cols]: if its leading dims are all 1, one row will
      // do.
      const std::size_t r = kt.shape.size();
      for (std::size_t i = 0; i + 1 < r; ++i)
        if (kt.shape[i] != 1) row_only = false;
    }
    if (row_only) {
      // A few identical rows, read cyclically, let one read (with a repeat) serve many result
      // rows instead of one read per row: as many as divide the result's rows, up to 64 (for
      // results of more than 64 rows; short ones read the single row, which schedules better).
      const std::int64_t rows = cols ? elems / cols : 1;
      std::int64_t copies = 1;
      for (std::int64_t l = rows > 64 ? 64 : 1; l > 1; --l)
        if (rows % l == 0) {
          copies = l;
          break;
        }
      target =
          copies > 1 ? std::vector<std::int64_t>{copies, cols} : std::vector<std::int64_t>{cols};
    }
    const int out = add_tensor(kt.name + "/broadcast", kt.dtype, target, KTensor::Role::kConstant);
    KTensor& o = k_.tensors[static_cast<std::size_t>(out)];
    const KTensor& src = k_.tensors[static_cast<std::size_t>(t)];
    const std::size_t n_out = static_cast<std::size_t>(o.elements());
    o.data.resize(n_out * static_cast<std::size_t>(bytes));
    // Index mapping of numpy broadcasting.
    const std::size_t rank = target.size();
    std::vector<std::int64_t> sshape(rank, 1);
    for (std::size_t i = 0; i < src.shape.size() && i < rank; ++i)
      sshape[rank - 1 - i] = src.shape[src.shape.size() - 1 - i];
    std::vector<std::int64_t> idx(rank, 0);
    for (std::size_t e = 0; e < n_out; ++e) {
      std::int64_t rem = static_cast<std::int64_t>(e), si = 0, stride = 1;
      for (std::size_t i = rank; i-- > 0;) {
        const std::int64_t c = rem % target[i];
        rem /= target[i];
        if (sshape[i] != 1) si += c * stride;
        stride *= sshape[i];
      }
      std::memcpy(&o.data[e * static_cast<std::size_t>(bytes)],
                  &src.data[static_cast<std::size_t>(si) * static_cast<std::size_t>(bytes)],
                  static_cast<std::size_t>(bytes));
    }
    return out;
  }

  void check_type(const Node& n, VxmOp op, DType dt) {
    if (dt == DType::kNone)
      throw InputError(g_.where(n), "int64 or bool operands are not supported on the machine");
    if (!func::vxm_supports(op, dt))
      throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                        " is not supported for this operator on the VXM");
  }

  // Where node n's output 0 goes: a fresh temporary of the given type and shape.
  int output(const Node& n, DType dt, const std::vector<std::int64_t>& shape) {
    if (n.outputs.empty() || n.outputs[0] < 0) throw InputError(g_.where(n), "has no output");
    const Value& v = g_.values[static_cast<std::size_t>(n.outputs[0])];
    const int t = add_tensor(v.name, dt, shape, KTensor::Role::kTemp, false);
    tensor_of_[static_cast<std::size_t>(n.outputs[0])] = t;
    return t;
  }

  void binary(const Node& n, VxmOp op, int a, int b, int d) {
    const KTensor& ta = k_.tensors[static_cast<std::size_t>(a)];
    const KTensor& td = k_.tensors[static_cast<std::size_t>(d)];
    const DType dt = ta.dtype;
    const std::vector<std::int64_t> shape = td.shape;
    const int fa = fit(a, shape, n);
    const int fb = fit(b, shape, n);
    step(op, dt, fa, fb, d, g_.where(n));
  }

  void lower(const Node& n) {
    if (n.outputs.size() > 1 && n.op != "LayerNormalization")
      for (std::size_t i = 1; i < n.outputs.size(); ++i)
        if (n.outputs[i] >= 0)
          throw InputError(g_.where(n),
                           "optional output " + std::to_string(i) + " is not supported");
    if (n.op == kAllReduce || n.op == kAllGather || n.op == kBroadcast) {
      lower_collective(n);
      return;
    }
    if (!lower_cl(n)) lower_node(n);
    count_macs(n);
  }

  // Kernels::model_macs of a product node n once lowered (its output's shape is known; a
  // convolution counts its own, its output may be folded away).
  void count_macs(const Node& n) {
    if (n.inputs.size() < 2 || n.outputs.empty() || n.inputs[0] < 0 || n.inputs[1] < 0) return;
    std::int64_t k = 0;
    if (n.op == "MatMul") {
      const auto a = nchw_shape(n.inputs[0]);
      k = a.empty() ? 0 : a.back();
    } else if (n.op == "Gemm") {
      const auto a = nchw_shape(n.inputs[0]);
      const Attr* t = n.attr("transA");
      if (a.size() == 2) k = t && t->i ? a[0] : a[1];
    }
    if (k == 0) return;
    std::int64_t out = 1;
    for (auto d : nchw_shape(n.outputs[0]))
      out *= d;
    k_.model_macs += out * k;
  }

  // ------------------------------------------------------ exchanges between chips

  void lower_collective(const Node& n) {
    if (opt_.chips < 2)
      throw InputError(g_.where(n), "exchanges values between chips, in a program for one chip");
    if (n.inputs.size() != 1 || n.outputs.size() != 1 || n.inputs[0] < 0)
      throw InputError(g_.where(n), "takes one input and gives one output");
    if (n.op == kAllReduce && reduced_in_product_.count(n.inputs[0])) {
      tensor_of_[static_cast<std::size_t>(n.outputs[0])] = tensor(n.inputs[0], &n);
      return;
    }
    const int x = tensor(n.inputs[0], &n);
    const KTensor kx = meta(x);
    if (n.op == kBroadcast) {
      // Every chip sends its value to every other at once and keeps the root's: the time of
      // a direct broadcast from the root (each link carries the rows once each way).
      const Attr* r = n.attr("root");
      const std::int64_t root = r ? r->i : 0;
      if (root < 0 || root >= opt_.chips)
        throw InputError(g_.where(n), "root " + std::to_string(root) + " is not one of the " +
                                          std::to_string(opt_.chips) + " chips");
      const std::int64_t rows = kx.rows(), cols = kx.cols();
      const int x2 = kx.shape.size() == 2 ? x : reshaped(x, {rows, cols}, n, n.name + "/rows");
      const int all = add_tensor(n.name + "/gathered", kx.dtype, {opt_.chips * rows, cols},
                                 KTensor::Role::kTemp);
      exchange(false, x2, all, rows, n);
      const int out = output(n, kx.dtype, kx.shape);
      copy_rows(kx.dtype, all, root * rows, out, 0, rows, n);
      k_.tensors[static_cast<std::size_t>(out)].clean = kx.clean;
      return;
    }
    if (n.op == kAllGather) {
      if (kx.shape.size() < 2)
        throw InputError(g_.where(n),
                         "gathers along the leading axis of a value of rank 2 or more");
      std::vector<std::int64_t> shape = kx.shape;
      shape[0] *= opt_.chips;
      const int d = output(n, kx.dtype, shape);
      exchange(false, x, d, kx.rows(), n);
      k_.tensors[static_cast<std::size_t>(d)].clean = kx.clean;
      return;
    }
    if (kx.dtype != DType::kFp32 && kx.dtype != DType::kI32 && kx.dtype != DType::kFp16)
      throw InputError(g_.where(n), std::string("sums ") + isa::to_string(kx.dtype) +
                                        " over chips (fp32, fp16 or int32)");
    const int y = all_reduce(kx.dtype == DType::kFp16 ? widen(x, n) : x, n);
    const int out = output(n, kx.dtype, kx.shape);
    if (kx.dtype == DType::kFp16)
      cast(DType::kFp32, DType::kFp16, y, out, g_.where(n));
    else
      step(VxmOp::kMov, kx.dtype, y, -1, out, g_.where(n));
  }

  // Whether node n's result is read only by an AllReduce (which n then does itself, on its sums
  // before they are rounded to the node's type).
  bool read_by_allreduce(const Node& n) const {
    if (opt_.chips < 2 || n.outputs.size() != 1 || n.outputs[0] < 0 ||
        uses_[static_cast<std::size_t>(n.outputs[0])] != 1)
      return false;
    for (const Node& u : g_.nodes)
      if (u.op == kAllReduce && u.inputs.size() == 1 && u.inputs[0] == n.outputs[0]) return true;
    return false;
  }

  void exchange(bool scatter, int a, int d, std::int64_t rows, const Node& n) {
    KStep s;
    s.kind = KStep::Kind::kExchange;
    s.scatter = scatter;
    s.a = a;
    s.d = d;
    s.exch_rows = rows;
    s.args.type = k_.tensors[static_cast<std::size_t>(a)].dtype;
    s.origin = g_.where(n);
    k_.steps.push_back(std::move(s));
  }

  // The sum over chips of x (fp32 or int32), the same on every chip: the chips' values summed
  // by a halving tree in chip order. Fewer rows than chips: every chip gathers all values and
  // sums them; otherwise each sums one piece of the rows from every chip and the sums are
  // gathered (reduce-scatter, then all-gather).
  int all_reduce(int x, const Node& n) {
    const KTensor kx = meta(x);
    const int nc = opt_.chips;
    const std::int64_t r = kx.rows(), c = kx.cols();
    const int x2 = kx.shape.size() == 2 ? x : reshaped(x, {r, c}, n, n.name + "/rows");
    int sum = -1;
    if (r >= nc && r % nc == 0) {
      const std::int64_t p = r / nc;
      const int pieces =
          add_tensor(n.name + "/pieces", kx.dtype, {nc * p, c}, KTensor::Role::kTemp);
      exchange(true, x2, pieces, p, n);
      const int red = add_tensor(n.name + "/piece_sum", kx.dtype, {p, c}, KTensor::Role::kTemp);
      tree_sum(pieces, 0, nc, p, red, 0, n);
      sum = add_tensor(n.name + "/sum", kx.dtype, {r, c}, KTensor::Role::kTemp);
      exchange(false, red, sum, p, n);
    } else {
      const int all = add_tensor(n.name + "/gathered", kx.dtype, {nc * r, c}, KTensor::Role::kTemp);
      exchange(false, x2, all, r, n);
      sum = add_tensor(n.name + "/sum", kx.dtype, {r, c}, KTensor::Role::kTemp);
      tree_sum(all, 0, nc, r, sum, 0, n);
    }
    k_.tensors[static_cast<std::size_t>(sum)].clean = kx.clean;
    return kx.shape.size() == 2 ? sum : reshaped(sum, kx.shape, n, n.name + "/shaped");
  }

  // Rows out_row .. out_row + r - 1 of `out` = the sum of m blocks of r rows of x from row `base`,
  // by a halving tree: each level adds block i + ceil(m / 2) to block i. A step reads its two
  // operands from different tensors (one read per slice and cycle), so each level keeps its
  // lower blocks in one tensor and its upper blocks in another (the first level's upper blocks
  // are a copy).
  void tree_sum(int x, std::int64_t base, std::int64_t m, std::int64_t r, int out,
                std::int64_t out_row, const Node& n) {
    const KTensor kx = meta(x);
    const DType dt = kx.dtype;
    // Rows dr.. of d = rows ar.. of a + rows br.. of b.
    auto add = [&](int a, std::int64_t ar, int b, std::int64_t br, int d, std::int64_t dr,
                   std::int64_t rows) {
      if (rows <= 0) return;
      KStep s;
      s.args.op = VxmOp::kAdd;
      s.args.type = dt;
      s.a = a;
      s.a_row = ar;
      s.b = b;
      s.b_row = br;
      s.d = d;
      s.d_row = dr;
      s.rows = rows;
      s.origin = g_.where(n);
      k_.steps.push_back(std::move(s));
    };
    if (m == 1) {
      copy_rows(dt, x, base, out, out_row, r, n);
      return;
    }
    auto half = [](std::int64_t k) { return (k + 1) / 2; };
    auto temp = [&](std::int64_t blocks) {
      return add_tensor(kx.name + "/tree", dt, {blocks * r, kx.cols()}, KTensor::Role::kTemp);
    };
    // Blocks [0, lo_n) in lo from row lo_r; blocks [lo_n, m) in hi from row hi_r.
    int lo = x, hi = temp(m - half(m));
    std::int64_t lo_r = base, hi_r = 0;
    copy_rows(dt, x, base + half(m) * r, hi, 0, (m - half(m)) * r, n);
    while (m > 1) {
      const std::int64_t keep = half(m), pairs = m - keep;
      const bool last = keep == 1;
      const std::int64_t split = half(keep);  // the next level's lower blocks
      const int lo2 = last ? out : temp(split);
      const std::int64_t lo2_r = last ? out_row : 0;
      const int hi2 = last ? -1 : temp(keep - split);
      // Block i of the result: lo[i] + hi[i] for i < pairs; lo[i] itself (m odd, i = pairs).
      const std::int64_t in_lo = std::min(pairs, split);
      add(lo, lo_r, hi, hi_r, lo2, lo2_r, in_lo * r);
      if (pairs > split)
        add(lo, lo_r + split * r, hi, hi_r + split * r, hi2, 0, (pairs - split) * r);
      if (keep > pairs) {  // the middle block passes through
        const std::int64_t i = pairs;
        if (i < split)
          copy_rows(dt, lo, lo_r + i * r, lo2, lo2_r + i * r, r, n);
        else
          copy_rows(dt, lo, lo_r + i * r, hi2, (i - split) * r, r, n);
      }
      lo = lo2;
      lo_r = lo2_r;
      hi = hi2;
      hi_r = 0;
      m = keep;
    }
  }

  void lower_node(const Node& n) {
    auto in = [&](std::size_t i) {
      return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
    };
    auto ktensor = [&](int t) -> const KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };

    if (auto it = binary_ops().find(n.op); it != binary_ops().end()) {
      const std::size_t arity = n.inputs.size();
      if (arity < 1 || ((n.op != "Max" && n.op != "Min") && arity != 2))
        throw InputError(g_.where(n), "takes " + std::to_string(arity) + " inputs");
      for (const auto& [key, unused] : n.attrs) {
        (void)unused;
        throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
      }
      int acc = in(0);
      const DType dt = ktensor(acc).dtype;
      check_type(n, it->second, dt);
      std::vector<std::int64_t> shape = ktensor(acc).shape;
      for (std::size_t i = 1; i < arity; ++i) {
        if (ktensor(in(i)).dtype != dt)
          throw InputError(g_.where(n), "inputs have different types");
        auto s = broadcast(shape, ktensor(in(i)).shape);
        if (!s)
          throw InputError(g_.where(n), "shapes " + shape_str(shape) + " and " +
                                            shape_str(ktensor(in(i)).shape) + " do not broadcast");
        shape = *s;
      }
      if (arity == 1) {  // Max/Min of one input is a copy
        const int d = output(n, dt, shape);
        step(VxmOp::kMov, dt, acc, -1, d, g_.where(n));
        return;
      }
      for (std::size_t i = 1; i < arity; ++i) {
        const int d = i + 1 == arity ? output(n, dt, shape)
                                     : add_tensor(n.name + "/partial" + std::to_string(i), dt,
                                                  shape, KTensor::Role::kTemp);
        binary(n, it->second, acc, in(i), d);
        acc = d;
      }
      return;
    }

    if (auto it = unary_ops().find(n.op); it != unary_ops().end()) {
      if (n.inputs.size() != 1) throw InputError(g_.where(n), "takes one input");
      for (const auto& [key, unused] : n.attrs) {
        (void)unused;
        throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
      }
      const int a = in(0);
      const DType dt = ktensor(a).dtype;
      check_type(n, it->second, dt);
      const int d = output(n, dt, ktensor(a).shape);
      step(it->second, dt, a, -1, d, g_.where(n));
      return;
    }

    if (n.op == "Sigmoid") {  // 0.5 * tanh(0.5 x) + 0.5: no divide on the VXM
      const int a = in(0);
      const DType dt = ktensor(a).dtype;
      check_type(n, VxmOp::kTanh, dt);
      if (isa::is_integer(dt)) throw InputError(g_.where(n), "integer Sigmoid is not supported");
      const auto shape = ktensor(a).shape;
      const std::vector<std::int64_t> row = {ktensor(a).cols()};
      const int half = splat(n.name + "/half", dt, 0.5, row);
      const int t1 = add_tensor(n.name + "/t1", dt, shape, KTensor::Role::kTemp);
      const int t2 = add_tensor(n.name + "/t2", dt, shape, KTensor::Role::kTemp);
      const int t3 = add_tensor(n.name + "/t3", dt, shape, KTensor::Role::kTemp);
      step(VxmOp::kMul, dt, a, half, t1, g_.where(n));
      step(VxmOp::kTanh, dt, t1, -1, t2, g_.where(n));
      step(VxmOp::kMul, dt, t2, half, t3, g_.where(n));
      step(VxmOp::kAdd, dt, t3, half, output(n, dt, shape), g_.where(n));
      return;
    }

    if (n.op == "LeakyRelu") {  // max(x, alpha x) for alpha <= 1, else min
      const int a = in(0);
      const DType dt = ktensor(a).dtype;
      check_type(n, VxmOp::kMul, dt);
      if (isa::is_integer(dt)) throw InputError(g_.where(n), "integer LeakyRelu is not supported");
      float alpha = 0.01f;
      for (const auto& [key, at] : n.attrs) {
        if (key != "alpha")
          throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
        alpha = at.f;
      }
      const auto shape = ktensor(a).shape;
      const int c = splat(n.name + "/alpha", dt, alpha, {ktensor(a).cols()});
      const int t = add_tensor(n.name + "/scaled", dt, shape, KTensor::Role::kTemp);
      step(VxmOp::kMul, dt, a, c, t, g_.where(n));
      step(alpha <= 1.0f ? VxmOp::kMax : VxmOp::kMin, dt, a, t, output(n, dt, shape), g_.where(n));
      return;
    }

    if (n.op == "Clip") {  // min(max(x, lo), hi); bounds from inputs (opset 11+) or attributes
      const int a = in(0);
      const DType dt = ktensor(a).dtype;
      check_type(n, VxmOp::kMax, dt);
      const auto shape = ktensor(a).shape;
      std::optional<int> lo, hi;
      for (const auto& [key, at] : n.attrs) {
        if (key == "min")
          lo = splat(n.name + "/min", dt, at.f, {ktensor(a).cols()});
        else if (key == "max")
          hi = splat(n.name + "/max", dt, at.f, {ktensor(a).cols()});
        else
          throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
      }
      for (std::size_t i = 1; i < 3 && i < n.inputs.size(); ++i) {
        if (n.inputs[i] < 0) continue;
        const Value& v = g_.values[static_cast<std::size_t>(n.inputs[i])];
        const int t = in(i);
        if (ktensor(t).elements() != 1)
          throw InputError(g_.where(n), "bound '" + v.name + "' is not a scalar");
        const int f = fit(t, shape, n);
        (i == 1 ? lo : hi) = f;
      }
      int cur = a;
      if (lo) {
        const int d =
            hi ? add_tensor(n.name + "/lo", dt, shape, KTensor::Role::kTemp) : output(n, dt, shape);
        step(VxmOp::kMax, dt, cur, *lo, d, g_.where(n));
        cur = d;
      }
      if (hi) {
        const int d = output(n, dt, shape);
        step(VxmOp::kMin, dt, cur, *hi, d, g_.where(n));
        cur = d;
      }
      if (!lo && !hi) step(VxmOp::kMov, dt, a, -1, output(n, dt, shape), g_.where(n));
      return;
    }

    if (lower_more(n)) return;

    if (n.op == "MatMul") {
      for (const auto& [key, unused] : n.attrs) {
        (void)unused;
        throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
      }
      if (n.inputs.size() != 2) throw InputError(g_.where(n), "takes two inputs");
      matmul(n, in(0), in(1), false, false, 1.0f, -1, 0.0f);
      return;
    }

    if (n.op == "Gemm") {  // alpha A' B' + beta C
      float alpha = 1.0f, beta = 1.0f;
      bool ta = false, tb = false;
      for (const auto& [key, at] : n.attrs) {
        if (key == "alpha")
          alpha = at.f;
        else if (key == "beta")
          beta = at.f;
        else if (key == "transA")
          ta = at.i != 0;
        else if (key == "transB")
          tb = at.i != 0;
        else
          throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
      }
      if (n.inputs.size() < 2 || n.inputs.size() > 3)
        throw InputError(g_.where(n), "takes two or three inputs");
      const int c = n.inputs.size() == 3 && n.inputs[2] >= 0 ? in(2) : -1;
      matmul(n, in(0), in(1), ta, tb, alpha, c, beta);
      return;
    }

    throw InputError(g_.where(n), "operator '" + n.op + "' is not supported");
  }

  // --------------------------------------------------------------- small helpers for sequences

  // A temporary like t (or of type dt), the result of op on the VXM.
  int vx(VxmOp op, int a, int b, const Node& n, const std::string& tag) {
    const KTensor& ka = k_.tensors[static_cast<std::size_t>(a)];
    std::vector<std::int64_t> shape = ka.shape;
    if (b >= 0 && k_.tensors[static_cast<std::size_t>(b)].elements() > ka.elements())
      shape = k_.tensors[static_cast<std::size_t>(b)].shape;
    const DType dt = ka.dtype;
    const int d = add_tensor(n.name + "/" + tag, dt, shape, KTensor::Role::kTemp);
    step(op, dt, a, b >= 0 ? fit(b, shape, n) : -1, d, g_.where(n));
    return d;
  }
  // A one-row constant of t's columns holding x (for row-broadcast operands).
  int row_const(int t, double x, const Node& n, const std::string& tag) {
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
    return splat(n.name + "/" + tag, kt.dtype, x, {kt.cols()});
  }
  int cmp(VxmOp op, int a, int b, const Node& n, const std::string& tag) {
    return vx(op, a, b, n, tag);
  }
  int sel(int mask, int a, int b, const Node& n, const std::string& tag) {
    // (add_tensor may move the tensors: keep copies, not references, across it)
    const DType dt = k_.tensors[static_cast<std::size_t>(a)].dtype;
    const auto shape = k_.tensors[static_cast<std::size_t>(a)].shape;
    const int d = add_tensor(n.name + "/" + tag, dt, shape, KTensor::Role::kTemp);
    step(VxmOp::kSel, dt, a, b, d, g_.where(n), mask);
    return d;
  }
  // 1/x for fp32 (the VXM has no divide): sign(x) rsqrt(|x|)^2.
  int reciprocal(int x, const Node& n) {
    const int ax = vx(VxmOp::kAbs, x, -1, n, "abs");
    const int r = vx(VxmOp::kRsqrt, ax, -1, n, "rsqrt");
    const int r2 = vx(VxmOp::kMul, r, r, n, "rcp");
    const int neg = cmp(VxmOp::kCmpLt, x, row_const(x, 0.0, n, "zero"), n, "negative");
    const int nr2 = vx(VxmOp::kNeg, r2, -1, n, "nrcp");
    return sel(neg, nr2, r2, n, "reciprocal");
  }
  // fp16/bf16 work is done in fp32 and rounded back once.
  int widen(int t, const Node& n) {
    const DType from = k_.tensors[static_cast<std::size_t>(t)].dtype;
    if (from == DType::kFp32) return t;
    const std::string name = k_.tensors[static_cast<std::size_t>(t)].name + "/fp32";
    const auto shape = k_.tensors[static_cast<std::size_t>(t)].shape;
    const int d = add_tensor(name, DType::kFp32, shape, KTensor::Role::kTemp);
    cast(from, DType::kFp32, t, d, g_.where(n));
    return d;
  }
  void narrow_into(int t, DType to, int out, const Node& n) {
    if (to == DType::kFp32)
      step(VxmOp::kMov, DType::kFp32, t, -1, out, g_.where(n));
    else
      cast(DType::kFp32, to, t, out, g_.where(n));
  }
  int float_input(const Node& n, std::size_t i) {
    const int t = tensor(i < n.inputs.size() ? n.inputs[i] : -1, &n);
    const DType dt = k_.tensors[static_cast<std::size_t>(t)].dtype;
    if (dt != DType::kFp32 && dt != DType::kFp16 && dt != DType::kBf16)
      throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                        " is not supported (a float type)");
    return t;
  }
  void no_attrs(const Node& n, std::initializer_list<const char*> allowed = {}) {
    for (const auto& [key, unused] : n.attrs) {
      (void)unused;
      bool ok = false;
      for (const char* a : allowed)
        ok = ok || key == a;
      if (!ok) throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
    }
  }
  // Integer values of a constant input (shapes, axes), or nullopt when the input is absent.
  std::optional<std::vector<std::int64_t>> const_ints(const Node& n, std::size_t i) {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return std::nullopt;
    const Value& v = g_.values[static_cast<std::size_t>(n.inputs[i])];
    if (!v.constant || v.dtype != DType::kNone)
      throw InputError(g_.where(n), "input '" + v.name + "' must be a constant int64 tensor");
    return v.ints;
  }
  // A reshape that keeps the rows view: the output is a view of the input's storage; constants
  // are reshaped on the host.
  void reshape_to(const Node& n, int t, std::vector<std::int64_t> shape) {
    const int o = n.outputs.empty() ? -1 : n.outputs[0];
    if (o < 0) throw InputError(g_.where(n), "has no output");
    const Value& v = g_.values[static_cast<std::size_t>(o)];
    tensor_of_[static_cast<std::size_t>(o)] = reshaped(t, std::move(shape), n, v.name);
  }

  // t with another shape (same elements, row-major order): a view when the rows view stays, a
  // relayout on the SXM when the last dimension changes, a new constant for constants.
  int reshaped(int t, std::vector<std::int64_t> shape, const Node& n, const std::string& name) {
    const KTensor kt = meta(t);
    std::int64_t elems = 1;
    for (auto d : shape)
      elems *= d;
    if (elems != kt.elements())
      throw InputError(g_.where(n), "reshape of " + shape_str(kt.shape) + " to " +
                                        shape_str(shape) + " changes the number of elements");
    const std::int64_t cols = shape.empty() ? 1 : shape.back();
    const bool graph_name = name.find('/') == std::string::npos;
    if (kt.role == KTensor::Role::kConstant) {
      std::vector<std::uint8_t> data = data_of(t);  // copied before add_tensor moves the tensors
      const int c = add_tensor(name, kt.dtype, shape, KTensor::Role::kConstant, !graph_name);
      k_.tensors[static_cast<std::size_t>(c)].data = std::move(data);
      return c;
    }
    if (cols != kt.cols()) {
      const std::int64_t c0 = kt.cols();
      if (c0 > k_.lanes || cols > k_.lanes || cols <= 0 || c0 <= 0 ||
          (cols % c0 != 0 && c0 % cols != 0))
        throw InputError(g_.where(n), "reshape of the computed tensor '" + kt.name + "' " +
                                          shape_str(kt.shape) + " to " + shape_str(shape) +
                                          " changes the last dimension in a way not supported "
                                          "yet (both must fit a vector and one divide the other)");
      t = relayout(t, cols, n);
    }
    const KTensor& kb = k_.tensors[static_cast<std::size_t>(t)];
    const int base = kb.view_of >= 0 ? kb.view_of : t;
    const bool clean_base = kb.clean;
    const int d = add_tensor(name, kt.dtype, shape, KTensor::Role::kTemp, !graph_name);
    KTensor& kd = k_.tensors[static_cast<std::size_t>(d)];
    kd.view_of = base;
    kd.clean = clean_base;
    return d;
  }

  // Element j of a float constant, as a double.
  static double element_of(const KTensor& kt, std::int64_t j) {
    const auto i = static_cast<std::size_t>(j);
    switch (kt.dtype) {
      case DType::kFp32: {
        float f;
        std::memcpy(&f, &kt.data[i * 4], 4);
        return f;
      }
      case DType::kFp16:
        return func::fp16_to_fp32(
            static_cast<std::uint16_t>(kt.data[i * 2] | (kt.data[i * 2 + 1] << 8)));
      case DType::kBf16:
        return func::bf16_to_fp32(
            static_cast<std::uint16_t>(kt.data[i * 2] | (kt.data[i * 2 + 1] << 8)));
      default:
        throw std::invalid_argument("element_of: not a float constant");
    }
  }

  // t's elements in rows of `cols` (row-major order kept), when one of the old and new row
  // lengths divides the other: merging k rows shifts row m of each group north by m old rows
  // and selects it in; splitting shifts each part south, masks it and interleaves the rows.
  int relayout(int t, std::int64_t cols, const Node& n) {
    t = clean(t, n);
    const KTensor kt = meta(t);
    const std::int64_t c0 = kt.cols(), rows = kt.rows();
    const DType dt = kt.dtype;
    const int bytes = isa::dtype_bytes(dt);
    const DType it = bytes == 1 ? DType::kI8 : bytes == 2 ? DType::kI16 : DType::kI32;
    if (cols > c0) {
      const std::int64_t k = cols / c0, out_rows = rows / k;
      // Rows of one position m in their groups, made consecutive: [R', k, C] -> [k, R', C].
      const int grouped =
          add_tensor(kt.name + "/grouped", dt, {out_rows, k, c0}, KTensor::Role::kTemp);
      k_.tensors[static_cast<std::size_t>(grouped)].view_of = kt.view_of >= 0 ? kt.view_of : t;
      k_.tensors[static_cast<std::size_t>(grouped)].clean = true;
      const int by_m = permute_leading(grouped, {1, 0}, n);
      int acc = -1;
      for (std::int64_t m = 0; m < k; ++m) {
        const int sh = add_tensor(kt.name + "/moved", dt, {out_rows, cols}, KTensor::Role::kTemp);
        KStep s;
        s.kind = KStep::Kind::kSxm;
        s.sxm = KStep::SxmOp::kShift;
        s.args.type = dt;
        s.a = by_m;
        s.a_row = m * out_rows;
        s.rows = out_rows;
        s.d = sh;
        s.sxm_n = static_cast<int>(m * c0);
        s.north = true;
        s.origin = g_.where(n);
        k_.steps.push_back(std::move(s));
        k_.tensors[static_cast<std::size_t>(sh)].clean = true;  // zeros came in below
        acc = acc < 0
                  ? sh
                  : sxm_select(acc, sh, static_cast<int>(m * c0), {out_rows, cols}, n, "merged");
      }
      return acc;
    }
    // Split: part m of every row (columns m C' ..), moved to lane 0 and masked to C' lanes,
    // stacked as [k, R, C'], then interleaved to [R, k, C'].
    const std::int64_t k = c0 / cols;
    const int stacked = add_tensor(kt.name + "/parts", dt, {k, rows, cols}, KTensor::Role::kTemp);
    const int keep = splat(kt.name + "/part.columns", it, -1.0, {cols});
    for (std::int64_t m = 0; m < k; ++m) {
      const int moved =
          m == 0 ? t : sxm_shift(t, static_cast<int>(m * cols), false, kt.shape, n, "part");
      KStep s;
      s.args.op = VxmOp::kAnd;
      s.args.type = it;
      s.a = moved;
      s.b = keep;
      s.d = stacked;
      s.rows = rows;
      s.d_row = m * rows;
      s.origin = g_.where(n);
      k_.steps.push_back(std::move(s));
    }
    k_.tensors[static_cast<std::size_t>(stacked)].clean = true;
    const int inter = permute_leading(stacked, {1, 0}, n);
    const int out = add_tensor(kt.name + "/split", dt, {rows * k, cols}, KTensor::Role::kTemp);
    KTensor& ko = k_.tensors[static_cast<std::size_t>(out)];
    ko.view_of = k_.tensors[static_cast<std::size_t>(inter)].view_of >= 0
                     ? k_.tensors[static_cast<std::size_t>(inter)].view_of
                     : inter;
    ko.clean = true;
    return out;
  }
  static std::int64_t norm_axis(std::int64_t a, std::size_t rank) {
    return a < 0 ? a + static_cast<std::int64_t>(rank) : a;
  }

  // Sums of x [R, C] over its last axis, as fp32 [R, 1]: the product with a column of ones on
  // the MXM (one pass per K tile; fp32 in two fp16 parts, hi and lo, both times ones).
  int sum_last(int x, const Node& n) {
    x = clean(x, n);
    const KTensor kx = meta(x);
    const std::int64_t c = kx.cols(), rows = kx.rows();
    if (c > k_.mxm_rows && k_.mxm_rows != k_.lanes)
      throw InputError(g_.where(n), "a sum over " + std::to_string(c) +
                                        " columns needs MXM planes as wide as the vector");
    const bool i8 = kx.dtype == DType::kI8;
    if (!i8 && kx.dtype != DType::kFp32 && kx.dtype != DType::kFp16)
      throw InputError(g_.where(n),
                       std::string("sums of ") + isa::to_string(kx.dtype) + " are not supported");
    const DType wt = i8 ? DType::kI8 : DType::kFp16;
    const int ones = splat(kx.name + "/ones", wt, 1.0, {c, 1});
    std::vector<int> parts;
    if (kx.dtype == DType::kFp32) {
      const auto [h, l] = split_fp16(x, n, false);
      parts = {h, l};
    } else {
      parts = {x};
    }
    std::vector<std::int64_t> shape = kx.shape;
    if (shape.empty()) shape = {1};
    shape.back() = 1;
    const int y =
        add_tensor(kx.name + "/sum", i8 ? DType::kI32 : DType::kFp32, shape, KTensor::Role::kTemp);
    const std::int64_t tiles = (c + k_.mxm_rows - 1) / k_.mxm_rows;
    for (std::int64_t r0 = 0; r0 < rows; r0 += k_.mxm_accumulators) {
      KStep s;
      s.kind = KStep::Kind::kMatMul;
      s.mm_type = wt;
      s.m = std::min<std::int64_t>(k_.mxm_accumulators, rows - r0);
      s.d = y;
      s.d_row = r0;
      s.w_block = c;
      for (std::int64_t tk = 0; tk < tiles; ++tk)
        for (int p : parts) {
          KPass ps;
          ps.x = p;
          ps.w = ones;
          ps.x_row = r0;
          ps.x_tile = tk;
          ps.w_row = tk * k_.mxm_rows;
          ps.k = std::min<std::int64_t>(k_.mxm_rows, c - tk * k_.mxm_rows);
          s.passes.push_back(ps);
        }
      s.origin = g_.where(n);
      k_.steps.push_back(std::move(s));
    }
    return y;
  }

  // t's rows moved k lanes north (toward higher lanes) or south on the SXM, as a tensor of
  // `shape` (same rows). South shifts read lanes past the columns, so t is cleaned first.
  int sxm_shift(int t, int k, bool north, const std::vector<std::int64_t>& shape, const Node& n,
                const std::string& tag) {
    if (!north) t = clean(t, n);
    const KTensor kt = meta(t);
    const int d = add_tensor(n.name + "/" + tag, kt.dtype, shape, KTensor::Role::kTemp);
    KStep s;
    s.kind = KStep::Kind::kSxm;
    s.sxm = KStep::SxmOp::kShift;
    s.args.type = kt.dtype;
    s.a = t;
    s.d = d;
    s.sxm_n = k;
    s.north = north;
    s.origin = g_.where(n);
    k_.steps.push_back(std::move(s));
    KTensor& kd = k_.tensors[static_cast<std::size_t>(d)];
    kd.clean = !north && kd.cols() + k >= kt.cols();  // zeros came in over the padding
    return d;
  }

  // Softmax over the last axis: exp(x - max) / sum, the row maximum found by a tree of SXM
  // shifts and VXM maxima that leaves it in the last column, then moved to lane 0 and spread.
  int softmax_last(int x, const Node& n) {
    x = clean(x, n);
    const KTensor kx = meta(x);
    const std::int64_t c = kx.cols();
    if (c > k_.lanes)
      throw InputError(g_.where(n), "Softmax over " + std::to_string(c) +
                                        " columns (wider than "
                                        "the vector) is not supported yet");
    int m = x;
    for (std::int64_t w = 1; w < c;) {
      const std::int64_t k = std::min(w, c - w);
      const int sh = sxm_shift(m, static_cast<int>(k), true, kx.shape, n, "sh" + std::to_string(w));
      m = vx(VxmOp::kMax, m, sh, n, "max" + std::to_string(w));
      w += k;
    }
    std::vector<std::int64_t> col = kx.shape;
    col.back() = 1;
    const int mx = c > 1 ? sxm_shift(m, static_cast<int>(c - 1), false, col, n, "rowmax") : m;
    const int d = vx(VxmOp::kSub, x, mx, n, "shifted");
    const int e = vx(VxmOp::kExp, d, -1, n, "exp");
    const int s = sum_last(e, n);
    return vx(VxmOp::kMul, e, reciprocal(s, n), n, "softmax");
  }

  // x [..., R, C] as [..., C, R] (R, C up to a vector) on the SXM: the rows spread over 16
  // slices, the transposers swap lanes and rows within each 16 x 16 block of every superlane,
  // then each output row gathers its superlanes from the blocks with shifts and selects.
  int transpose_last2(int x, const Node& n) {
    x = clean(x, n);
    const KTensor kx = meta(x);
    const std::size_t rank = kx.shape.size();
    if (rank < 2) throw InputError(g_.where(n), "transposes need two dimensions");
    const std::int64_t r = kx.shape[rank - 2], c = kx.shape[rank - 1];
    if (r > k_.lanes || c > k_.lanes)
      throw InputError(g_.where(n), "a transpose of " + std::to_string(r) + " x " +
                                        std::to_string(c) + " is wider than the vector (" +
                                        std::to_string(k_.lanes) + " lanes; not supported yet)");
    std::vector<std::int64_t> shape = kx.shape;
    std::swap(shape[rank - 2], shape[rank - 1]);
    const std::int64_t lead = r ? kx.rows() / r : 0;
    const std::int64_t rp = (r + 15) / 16 * 16, cp = (c + 15) / 16 * 16;
    const DType dt = kx.dtype;
    const int bytes = isa::dtype_bytes(dt);
    const DType it = bytes == 1 ? DType::kI8 : bytes == 2 ? DType::kI16 : DType::kI32;
    const int y = add_tensor(kx.name + "/T", dt, shape, KTensor::Role::kTemp);
    // (16 rows, as many as one group writes: read as a run, not once per row)
    const int keep = splat(kx.name + "/T.columns", it, -1.0, {16, r});
    for (std::int64_t l = 0; l < lead; ++l) {
      const int xs = add_tensor(kx.name + "/rows16", dt, {rp, c}, KTensor::Role::kTemp);
      k_.tensors[static_cast<std::size_t>(xs)].spread16 = true;
      KStep mv;
      mv.args.op = VxmOp::kMov;
      mv.args.type = dt;
      mv.a = x;
      mv.d = xs;
      mv.rows = r;
      mv.a_row = l * r;
      mv.origin = g_.where(n);
      k_.steps.push_back(std::move(mv));
      const int o = add_tensor(kx.name + "/blocks", dt, {rp, cp}, KTensor::Role::kTemp);
      k_.tensors[static_cast<std::size_t>(o)].spread16 = true;
      KStep tr;
      tr.kind = KStep::Kind::kTranspose;
      tr.args.type = dt;
      tr.a = xs;
      tr.d = o;
      tr.origin = g_.where(n);
      k_.steps.push_back(std::move(tr));
      for (std::int64_t s = 0; s * 16 < c; ++s) {
        int acc = -1;
        for (std::int64_t bi = 0; bi * 16 < r; ++bi) {
          const int sh = add_tensor(kx.name + "/part", dt, {16, rp}, KTensor::Role::kTemp);
          KStep st;
          st.kind = KStep::Kind::kSxm;
          st.sxm = KStep::SxmOp::kShift;
          st.args.type = dt;
          st.a = o;
          st.a_row = 16 * bi;
          st.rows = 16;
          st.d = sh;
          st.sxm_n = static_cast<int>(16 * std::abs(bi - s));
          st.north = bi >= s;
          st.origin = g_.where(n);
          k_.steps.push_back(std::move(st));
          k_.tensors[static_cast<std::size_t>(sh)].clean = false;
          acc =
              acc < 0 ? sh : sxm_select(acc, sh, static_cast<int>(16 * bi), {16, rp}, n, "gather");
        }
        KStep fin;  // the rows of this group, cleared past R
        fin.args.op = VxmOp::kAnd;
        fin.args.type = it;
        fin.a = acc;
        fin.b = keep;
        fin.d = y;
        fin.rows = std::min<std::int64_t>(16, c - 16 * s);
        fin.d_row = l * c + 16 * s;
        fin.origin = g_.where(n);
        k_.steps.push_back(std::move(fin));
      }
    }
    k_.tensors[static_cast<std::size_t>(y)].clean = true;
    return y;
  }

  // t with its axes permuted (output axis i = input axis perm[i]): leading axes reordered, the
  // last two swapped, leading axes reordered again (row moves and SXM transposes).
  int transpose_perm(int t, const std::vector<std::int64_t>& perm, const Node& n) {
    const std::size_t rank = k_.tensors[static_cast<std::size_t>(t)].shape.size();
    // axes[i]: which original axis sits at position i now.
    std::vector<std::int64_t> axes(rank);
    for (std::size_t i = 0; i < rank; ++i)
      axes[i] = static_cast<std::int64_t>(i);
    if (rank >= 2 && perm.back() != axes.back()) {
      // Bring perm.back() to position rank - 2, keeping the others' order.
      std::vector<std::int64_t> lead;
      for (std::size_t i = 0; i + 1 < rank; ++i)
        if (axes[i] != perm.back()) lead.push_back(axes[i]);
      lead.push_back(perm.back());
      t = permute_leading(t, lead, n);
      for (std::size_t i = 0; i + 1 < rank; ++i)
        axes[i] = lead[i];
      t = k_.tensors[static_cast<std::size_t>(t)].role == KTensor::Role::kConstant
              ? transposed_constant(t, n)
              : transpose_last2(t, n);
      std::swap(axes[rank - 2], axes[rank - 1]);
    }
    // Now only the leading axes may be out of order.
    std::vector<std::int64_t> lead;
    for (std::size_t i = 0; i + 1 < rank; ++i)
      lead.push_back(
          static_cast<std::int64_t>(std::find(axes.begin(), axes.end(), perm[i]) - axes.begin()));
    return permute_leading(t, lead, n);
  }

  // t with its leading axes (all but the last) reordered: new axis i = old axis lead[i]. Each
  // row moves whole (a VXM copy per run of rows that stay consecutive); constants move on the
  // host.
  int permute_leading(int t, const std::vector<std::int64_t>& lead, const Node& n) {
    const KTensor kt = meta(t);
    const std::size_t rank = kt.shape.size();
    bool identity = true;
    for (std::size_t i = 0; i < lead.size(); ++i)
      identity = identity && lead[i] == static_cast<std::int64_t>(i);
    if (identity || rank < 2) return t;
    std::vector<std::int64_t> shape = kt.shape;
    for (std::size_t i = 0; i + 1 < rank; ++i)
      shape[i] = kt.shape[static_cast<std::size_t>(lead[i])];
    // Old strides (in rows) of the leading axes.
    std::vector<std::int64_t> stride(rank - 1, 1);
    for (std::size_t i = rank - 1; i-- > 1;)
      stride[i - 1] = stride[i] * kt.shape[i];
    const std::int64_t rows = kt.rows();
    if (kt.tiles(k_.lanes) > 1)
      throw InputError(g_.where(n), "moving rows wider than the vector is not supported yet");
    if (rows > 4096)
      throw InputError(g_.where(n), "a permutation of " + std::to_string(rows) +
                                        " rows is too large for row-by-row moves");
    // Source row of each destination row.
    std::vector<std::int64_t> src(static_cast<std::size_t>(rows));
    for (std::int64_t d = 0; d < rows; ++d) {
      std::int64_t rem = d, s = 0;
      for (std::size_t i = rank - 1; i-- > 0;) {
        const std::int64_t idx = rem % shape[i];
        rem /= shape[i];
        s += idx * stride[static_cast<std::size_t>(lead[i])];
      }
      src[static_cast<std::size_t>(d)] = s;
    }
    return gather_rows(t, src, shape, n);
  }

  // A tensor of `shape` whose row d is row src[d] of t (rows may repeat): moved on the host for
  // constants, else one VXM copy per run of consecutive source rows.
  int gather_rows(int t, const std::vector<std::int64_t>& src,
                  const std::vector<std::int64_t>& shape, const Node& n) {
    const KTensor kt = meta(t);
    const std::int64_t cols = kt.cols();
    const auto rows = static_cast<std::int64_t>(src.size());
    if (kt.tiles(k_.lanes) > 1)
      throw InputError(g_.where(n), "moving rows wider than the vector is not supported yet");
    if (kt.role == KTensor::Role::kConstant) {
      const auto rb = static_cast<std::size_t>(cols * isa::dtype_bytes(kt.dtype));
      const auto& in = data_of(t);
      std::vector<std::uint8_t> data(static_cast<std::size_t>(rows) * rb);
      for (std::int64_t d = 0; d < rows; ++d)
        std::memcpy(&data[static_cast<std::size_t>(d) * rb],
                    &in[static_cast<std::size_t>(src[static_cast<std::size_t>(d)]) * rb], rb);
      const int out = add_tensor(kt.name + "/perm", kt.dtype, shape, KTensor::Role::kConstant);
      k_.tensors[static_cast<std::size_t>(out)].data = std::move(data);
      return out;
    }
    const int out = add_tensor(kt.name + "/perm", kt.dtype, shape, KTensor::Role::kTemp);
    for (std::int64_t d = 0; d < rows;) {
      std::int64_t e = d + 1;  // a run of consecutive source rows
      while (e < rows &&
             src[static_cast<std::size_t>(e)] == src[static_cast<std::size_t>(e - 1)] + 1)
        ++e;
      copy_rows(kt.dtype, t, src[static_cast<std::size_t>(d)], out, d, e - d, n);
      d = e;
    }
    k_.tensors[static_cast<std::size_t>(out)].clean = kt.clean;
    return out;
  }

  // A VXM copy of rows a_row .. a_row + rows - 1 of a into d from row d_row on.
  void copy_rows(DType dt, int a, std::int64_t a_row, int d, std::int64_t d_row, std::int64_t rows,
                 const Node& n) {
    KStep s;
    s.args.op = VxmOp::kMov;
    s.args.type = dt;
    s.a = a;
    s.a_row = a_row;
    s.d = d;
    s.d_row = d_row;
    s.rows = rows;
    s.origin = g_.where(n);
    k_.steps.push_back(std::move(s));
  }

  // SXM select: lanes below k from a, the rest from b, as a tensor of `shape`.
  int sxm_select(int a, int b, int k, const std::vector<std::int64_t>& shape, const Node& n,
                 const std::string& tag) {
    const KTensor ka = meta(a);
    const int d = add_tensor(n.name + "/" + tag, ka.dtype, shape, KTensor::Role::kTemp);
    KStep s;
    s.kind = KStep::Kind::kSxm;
    s.sxm = KStep::SxmOp::kSelect;
    s.args.type = ka.dtype;
    s.a = a;
    s.b = b;
    s.d = d;
    s.sxm_n = k;
    s.origin = g_.where(n);
    k_.steps.push_back(std::move(s));
    k_.tensors[static_cast<std::size_t>(d)].clean = k_.tensors[static_cast<std::size_t>(b)].clean;
    return d;
  }

  // Sums of x over a leading axis (keepdims): for every index of the axes before it, the blocks
  // of rows along it added in order on the VXM (the first copied out, so that no step reads one
  // tensor twice in a cycle).
  int sum_leading(int x, std::int64_t axis, const Node& n) {
    const KTensor kx = meta(x);
    std::int64_t outer = 1, inner = 1;
    for (std::int64_t i = 0; i < axis; ++i)
      outer *= kx.shape[static_cast<std::size_t>(i)];
    for (std::size_t i = static_cast<std::size_t>(axis) + 1; i + 1 < kx.shape.size(); ++i)
      inner *= kx.shape[i];
    const std::int64_t along = kx.shape[static_cast<std::size_t>(axis)];
    std::vector<std::int64_t> shape = kx.shape;
    shape[static_cast<std::size_t>(axis)] = 1;
    const int y =
        add_tensor(kx.name + "/sum" + std::to_string(axis), kx.dtype, shape, KTensor::Role::kTemp);
    // A halving tree per outer index: the same order as a sum split over chips with the
    // elements dealt round-robin (docs/multichip.md), and log2 steps instead of a chain.
    for (std::int64_t o = 0; o < outer; ++o)
      tree_sum(x, o * along * inner, along, inner, y, o * inner, n);
    k_.tensors[static_cast<std::size_t>(y)].clean = kx.clean;
    return y;
  }

  // Operators built from the VXM and MXM steps above; false when n is none of them.
  // ------------------------------------------------------ channels-last work (convolutions)
  //
  // A spatial value [N, C, spatial...] is kept as [N, spatial..., C] (rows = pixels, lanes =
  // channels) from a convolution or a pool on, through point-wise operators, until an operator
  // that needs the ONNX layout asks for it (then one transpose makes it). A convolution is then
  // a sum of matrix products over shifted row ranges of the padded input, one per kernel tap
  // (docs/compiler.md).

  static std::vector<std::int64_t> to_cl(std::size_t rank) {  // source axis of each cl axis
    std::vector<std::int64_t> p{0};
    for (std::size_t i = 2; i < rank; ++i)
      p.push_back(static_cast<std::int64_t>(i));
    p.push_back(1);
    return p;
  }
  static std::vector<std::int64_t> from_cl(std::size_t rank) {
    std::vector<std::int64_t> p{0, static_cast<std::int64_t>(rank) - 1};
    for (std::size_t i = 1; i + 1 < rank; ++i)
      p.push_back(static_cast<std::int64_t>(i));
    return p;
  }
  // A channels-last value may hold its two spatial axes swapped ([N, W, H, C], "transposed"):
  // convolutions that produce columns of output pixels leave it so, and the channels-last
  // operators after them swap their windows instead of moving the data back.
  static std::vector<std::int64_t> cl_to_nchw(std::size_t rank, bool transposed) {
    if (!transposed) return from_cl(rank);
    return {0, 3, 2, 1};
  }
  static std::vector<std::int64_t> nchw_to_cl(std::size_t rank, bool transposed) {
    if (!transposed) return to_cl(rank);
    return {0, 3, 2, 1};
  }
  bool cl_transposed(int v) const { return v >= 0 && cl_t_[static_cast<std::size_t>(v)]; }

  static std::vector<std::int64_t> permuted(const std::vector<std::int64_t>& s,
                                            const std::vector<std::int64_t>& perm) {
    std::vector<std::int64_t> out;
    for (auto p : perm)
      out.push_back(s[static_cast<std::size_t>(p)]);
    return out;
  }
  // Shape (ONNX layout) and type of graph value v, whichever form it has so far (the graph
  // knows them for inputs and constants only).
  std::vector<std::int64_t> nchw_shape(int v) const {
    const auto i = static_cast<std::size_t>(v);
    if (tensor_of_[i] >= 0) return k_.tensors[static_cast<std::size_t>(tensor_of_[i])].shape;
    if (cl_of_[i] >= 0) {
      const auto& s = k_.tensors[static_cast<std::size_t>(cl_of_[i])].shape;
      return permuted(s, cl_to_nchw(s.size(), cl_t_[i]));
    }
    return g_.values[i].shape;
  }
  DType dtype_of(int v) const {
    const auto i = static_cast<std::size_t>(v);
    if (tensor_of_[i] >= 0) return k_.tensors[static_cast<std::size_t>(tensor_of_[i])].dtype;
    if (cl_of_[i] >= 0) return k_.tensors[static_cast<std::size_t>(cl_of_[i])].dtype;
    return g_.values[i].dtype;
  }
  bool cl_only(int v) const {
    return v >= 0 && cl_of_[static_cast<std::size_t>(v)] >= 0 &&
           tensor_of_[static_cast<std::size_t>(v)] < 0;
  }

  // Graph value v channels-last (transposed the first time it is asked for).
  int cl_tensor(int v, const Node& n) {
    if (int c = cl_of_[static_cast<std::size_t>(v)]; c >= 0) return c;
    const int t = tensor(v, &n);
    const std::size_t rank = k_.tensors[static_cast<std::size_t>(t)].shape.size();
    if (rank != 3 && rank != 4)
      throw InputError(g_.where(n), "needs an input of rank 3 or 4 (N, C, spatial), not " +
                                        shape_str(k_.tensors[static_cast<std::size_t>(t)].shape));
    const int c = transpose_perm(clean(t, n), to_cl(rank), n);
    cl_of_[static_cast<std::size_t>(v)] = c;
    return c;
  }

  // A constant operand of a point-wise node done channels-last: broadcast to `rank` axes and
  // permuted like the data (a per-channel [C, 1, 1] becomes a row [1, 1, 1, C]).
  int cl_constant(int v, std::size_t rank, const Node& n, bool transposed = false) {
    const int t = tensor(v, &n);
    const KTensor kt = meta(t);
    if (kt.elements() == 1 || kt.shape.size() > rank) return t;
    std::vector<std::int64_t> s(rank - kt.shape.size(), 1);
    s.insert(s.end(), kt.shape.begin(), kt.shape.end());
    const auto perm = nchw_to_cl(rank, transposed);
    const std::vector<std::int64_t> d = permuted(s, perm);
    const auto bytes = static_cast<std::size_t>(isa::dtype_bytes(kt.dtype));
    const auto& in = data_of(t);
    std::vector<std::uint8_t> data(in.size());
    std::vector<std::int64_t> stride(rank, 1);  // source strides
    for (std::size_t i = rank - 1; i-- > 0;)
      stride[i] = stride[i + 1] * s[i + 1];
    for (std::int64_t e = 0; e < kt.elements(); ++e) {
      std::int64_t rem = e, src = 0;
      for (std::size_t i = rank; i-- > 0;) {
        src += (rem % d[i]) * stride[static_cast<std::size_t>(perm[i])];
        rem /= d[i];
      }
      std::memcpy(&data[static_cast<std::size_t>(e) * bytes],
                  &in[static_cast<std::size_t>(src) * bytes], bytes);
    }
    const int c = add_tensor(kt.name + "/cl", kt.dtype, d, KTensor::Role::kConstant);
    k_.tensors[static_cast<std::size_t>(c)].data = std::move(data);
    return c;
  }

  static bool pointwise(const std::string& op) {
    static const std::set<std::string> more = {"Sigmoid",    "LeakyRelu", "Clip", "Div",
                                               "Reciprocal", "Sqrt",      "Erf",  "Cast"};
    return binary_ops().count(op) || unary_ops().count(op) || more.count(op);
  }

  // A point-wise node with an input that exists only channels-last runs on the channels-last
  // forms (its result stays so). False when n is not such a node.
  bool lower_cl_pointwise(const Node& n) {
    if (!pointwise(n.op) || n.outputs.empty() || n.outputs[0] < 0) return false;
    bool any = false, transposed = false, mixed = false;
    std::vector<std::int64_t> out_shape;
    for (int v : n.inputs)
      if (cl_only(v)) {
        mixed = mixed || (any && transposed != cl_transposed(v));
        any = true;
        transposed = cl_transposed(v);
        out_shape = nchw_shape(v);
      }
    if (!any || mixed) return false;
    const std::size_t rank = out_shape.size();
    for (int v : n.inputs) {
      if (v < 0) continue;
      const Value& val = g_.values[static_cast<std::size_t>(v)];
      if (val.constant ? val.shape.size() > rank : nchw_shape(v) != out_shape) return false;
    }
    std::vector<std::pair<int, int>> saved;
    for (int v : n.inputs)
      if (v >= 0) saved.push_back({v, tensor_of_[static_cast<std::size_t>(v)]});
    for (int v : n.inputs) {
      if (v < 0) continue;
      const Value& val = g_.values[static_cast<std::size_t>(v)];
      if (val.constant && val.dtype == DType::kNone) continue;
      if (!val.constant && cl_transposed(v) != transposed) return false;
      const int t = val.constant ? cl_constant(v, rank, n, transposed) : cl_tensor(v, n);
      tensor_of_[static_cast<std::size_t>(v)] = t;
    }
    lower_node(n);
    const auto o = static_cast<std::size_t>(n.outputs[0]);
    cl_of_[o] = tensor_of_[o];
    cl_t_[o] = transposed;
    tensor_of_[o] = -1;
    // The value's name goes to its ONNX-layout form, if one is ever made.
    KTensor& kt = k_.tensors[static_cast<std::size_t>(cl_of_[o])];
    std::string name = kt.name + "/cl";
    for (int i = 2; used_names_.count(name) || graph_names_.count(name); ++i)
      name = kt.name + "/cl#" + std::to_string(i);
    used_names_.insert(name);
    kt.name = name;
    for (auto it = saved.rbegin(); it != saved.rend(); ++it)
      tensor_of_[static_cast<std::size_t>(it->first)] = it->second;
    return true;
  }

  // The window of a convolution or a pool over one or two spatial axes (a 1-D one is 2-D with
  // height 1), from the node's attributes, and its output size.
  struct Window {
    std::int64_t h = 1, w = 1, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
    std::int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // padding as given (or from auto_pad)
    std::int64_t ho = 1, wo = 1;
  };
  Window window(const Node& n, const std::vector<std::int64_t>& x, std::vector<std::int64_t> k,
                bool ceil_ok) {
    const std::size_t sp = x.size() - 2;
    if (sp != 1 && sp != 2)
      throw InputError(g_.where(n),
                       "only 1-D and 2-D windows are supported, not " + std::to_string(sp) + "-D");
    auto ints = [&](const char* key, std::vector<std::int64_t> def) {
      const Attr* a = n.attr(key);
      if (!a || a->ints.empty()) return def;
      if (a->ints.size() != def.size())
        throw InputError(g_.where(n), std::string("attribute '") + key + "' has " +
                                          std::to_string(a->ints.size()) + " values, not " +
                                          std::to_string(def.size()));
      for (auto v : a->ints)
        if (v < (std::string(key) == "pads" ? 0 : 1))
          throw InputError(g_.where(n),
                           std::string("attribute '") + key + "' has value " + std::to_string(v));
      return a->ints;
    };
    if (const Attr* ks = n.attr("kernel_shape"); ks && !ks->ints.empty()) {
      if (!k.empty() && ks->ints != k)
        throw InputError(g_.where(n), "kernel_shape " + shape_str(ks->ints) +
                                          " differs from the weights' " + shape_str(k));
      k = ks->ints;
    }
    if (k.size() != sp)
      throw InputError(g_.where(n), "needs kernel_shape with " + std::to_string(sp) + " values");
    const auto s = ints("strides", std::vector<std::int64_t>(sp, 1));
    const auto d = ints("dilations", std::vector<std::int64_t>(sp, 1));
    auto p = ints("pads", std::vector<std::int64_t>(2 * sp, 0));
    const Attr* ap = n.attr("auto_pad");
    const std::string mode = ap ? ap->s : "NOTSET";
    const bool ceil = n.attr("ceil_mode") && n.attr("ceil_mode")->i != 0;
    if (ceil && !ceil_ok) throw InputError(g_.where(n), "attribute 'ceil_mode' is not supported");
    std::vector<std::int64_t> out(sp);
    for (std::size_t i = 0; i < sp; ++i) {
      const std::int64_t in = x[2 + i], ext = (k[i] - 1) * d[i] + 1;
      if (mode == "NOTSET") {
        const std::int64_t span = in + p[i] + p[sp + i] - ext;
        if (span < 0)
          throw InputError(g_.where(n), "the window " + shape_str(k) + " is larger than the " +
                                            "padded input " + shape_str(x));
        out[i] = (ceil ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
        // (ceil mode: a last window must start inside the input or its leading padding)
        if (ceil && (out[i] - 1) * s[i] >= in + p[i]) --out[i];
      } else if (mode == "VALID") {
        p[i] = p[sp + i] = 0;
        if (in < ext)
          throw InputError(g_.where(n), "the window " + shape_str(k) + " is larger than the " +
                                            "input " + shape_str(x));
        out[i] = (in - ext) / s[i] + 1;
      } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
        out[i] = (in + s[i] - 1) / s[i];
        const std::int64_t total = std::max<std::int64_t>(0, (out[i] - 1) * s[i] + ext - in);
        p[i] = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
        p[sp + i] = total - p[i];
      } else {
        throw InputError(g_.where(n), "auto_pad '" + mode + "' is not supported");
      }
    }
    Window wd;
    const std::size_t iw = sp - 1;  // the last spatial axis is the width
    wd.w = x[2 + iw];
    wd.kw = k[iw];
    wd.sw = s[iw];
    wd.dw = d[iw];
    wd.pl = p[iw];
    wd.pr = p[sp + iw];
    wd.wo = out[iw];
    if (sp == 2) {
      wd.h = x[2];
      wd.kh = k[0];
      wd.sh = s[0];
      wd.dh = d[0];
      wd.pt = p[0];
      wd.pb = p[sp];
      wd.ho = out[0];
    }
    return wd;
  }

  // The padded input P of a window, cut into sh x sw phases: phase (a, b) [N, hq, wq, C] holds
  // P's pixels (h sh + a, w sw + b). Output pixel (oh, ow), tap (i, j) reads P pixel
  // (oh sh + i dh, ow sw + j dw), which is pixel (oh + ih, ow + jw) of phase (i dh mod sh,
  // j dw mod sw) with ih = i dh / sh, jw = j dw / sw. Taking the outputs row-major over a grid
  // of width wq, a tap therefore reads one run of consecutive rows of its phase: every pass of a
  // convolution and every step of a pool streams whole runs, at any stride. Results come as
  // [N, ho, wq, C'], the columns past wo unwanted.
  struct Grid {
    std::int64_t hq = 0, wq = 0;
    int phase(const Window& w, std::int64_t i, std::int64_t j) const {
      return static_cast<int>(((i * w.dh) % w.sh) * w.sw + (j * w.dw) % w.sw);
    }
    std::int64_t offset(const Window& w, std::int64_t i, std::int64_t j) const {
      return (i * w.dh) / w.sh * wq + (j * w.dw) / w.sw;
    }
  };
  static Grid grid(const Window& w) {
    Grid g;
    // Columns the wanted results read (more than the padding given in ceil mode).
    const std::int64_t cols =
        std::max(w.w + w.pl + w.pr, (w.wo - 1) * w.sw + (w.kw - 1) * w.dw + 1);
    g.wq = (cols + w.sw - 1) / w.sw;
    // Rows: the padded input's, and those the last (unwanted) result of the last tap reads.
    const std::int64_t last =
        w.ho * g.wq - 1 + (w.kh - 1) * w.dh / w.sh * g.wq + (w.kw - 1) * w.dw / w.sw;
    g.hq = std::max((w.h + w.pt + w.pb + w.sh - 1) / w.sh, last / g.wq + 1);
    return g;
  }

  // x [N, h, w, C] as the phases of its padded form (index a sw + b), the border `fill` (a
  // constant of one element value): one VXM copy per input row, its pixels dealt over the
  // column phases, and one copy of fill rows per border run. x itself when there is nothing to
  // pad and one phase.
  std::vector<int> phases(int x, const Window& w, const Grid& g, double fill, const Node& n) {
    const KTensor kx = meta(x);
    const std::int64_t nb = kx.shape[0], c = kx.cols();
    if (w.sh == 1 && w.sw == 1 && !w.pt && !w.pl && g.wq == w.w && g.hq == w.h) return {x};
    // The phases some tap reads; rows of other row phases are not copied (a dealt row still
    // fills all of its column phases).
    std::vector<bool> used(static_cast<std::size_t>(w.sh * w.sw), false),
        row_used(static_cast<std::size_t>(w.sh), false);
    for (std::int64_t i = 0; i < w.kh; ++i)
      for (std::int64_t j = 0; j < w.kw; ++j) {
        used[static_cast<std::size_t>(g.phase(w, i, j))] = true;
        row_used[static_cast<std::size_t>(g.phase(w, i, j) / w.sw)] = true;
      }
    std::vector<int> out;
    for (std::int64_t a = 0; a < w.sh; ++a)
      for (std::int64_t b = 0; b < w.sw; ++b)
        out.push_back(
            row_used[static_cast<std::size_t>(a)]
                ? add_tensor(n.name + "/phase", kx.dtype, {nb, g.hq, g.wq, c}, KTensor::Role::kTemp)
                : -1);
    // Each input row, dealt over the column phases of its row phase.
    for (std::int64_t bi = 0; bi < nb; ++bi)
      for (std::int64_t h = 0; h < w.h; ++h) {
        const std::int64_t hp = h + w.pt, a = hp % w.sh, row = bi * g.hq * g.wq + hp / w.sh * g.wq;
        if (!row_used[static_cast<std::size_t>(a)]) continue;
        KStep s;
        s.args.op = VxmOp::kMov;
        s.args.type = kx.dtype;
        s.a = x;
        s.a_row = (bi * w.h + h) * w.w;
        s.rows = w.w;
        for (std::int64_t p = 0; p < std::min(w.sw, w.w); ++p)
          s.deal.push_back({out[static_cast<std::size_t>(a * w.sw + (p + w.pl) % w.sw)],
                            row + (p + w.pl) / w.sw});
        s.d = s.deal[0].first;
        s.d_row = s.deal[0].second;
        if (s.deal.size() == 1) s.deal.clear();
        s.origin = g_.where(n);
        k_.steps.push_back(std::move(s));
      }
    // The border: per phase, the runs of rows no input pixel lands on.
    std::vector<std::tuple<int, std::int64_t, std::int64_t>> runs;  // phase tensor, row, rows
    for (std::int64_t a = 0; a < w.sh; ++a)
      for (std::int64_t b = 0; b < w.sw; ++b) {
        if (!used[static_cast<std::size_t>(a * w.sw + b)]) continue;
        const int t = out[static_cast<std::size_t>(a * w.sw + b)];
        // Phase columns [c0, c1) come from the input (where a row does).
        const std::int64_t c0 =
            std::min(g.wq, std::max<std::int64_t>(0, (w.pl - b + w.sw - 1) / w.sw));
        const std::int64_t c1 = std::min(g.wq, std::max(c0, (w.pl + w.w - b + w.sw - 1) / w.sw));
        for (std::int64_t bi = 0; bi < nb; ++bi) {
          std::int64_t cursor = bi * g.hq * g.wq;
          for (std::int64_t hq = 0; hq < g.hq; ++hq) {
            const std::int64_t h = hq * w.sh + a - w.pt;
            if (h < 0 || h >= w.h || c1 == c0) continue;
            const std::int64_t at = bi * g.hq * g.wq + hq * g.wq;
            if (at + c0 > cursor) runs.emplace_back(t, cursor, at + c0 - cursor);
            cursor = at + c1;
          }
          const std::int64_t end = (bi + 1) * g.hq * g.wq;
          if (end > cursor) runs.emplace_back(t, cursor, end - cursor);
        }
      }
    std::int64_t most = 0;
    for (const auto& r : runs)
      most = std::max(most, std::get<2>(r));
    const int z = most ? splat(n.name + "/border", kx.dtype, fill, {most, c}) : -1;
    for (const auto& [t, row, rows] : runs)
      copy_rows(kx.dtype, z, 0, t, row, rows, n);
    for (int t : out)
      if (t >= 0) k_.tensors[static_cast<std::size_t>(t)].clean = kx.clean;
    return out;
  }

  // The wanted columns of results [nb, ho, wq, C] as [nb, ho, wo, C] of type `to`: one VXM
  // copy (or cast) per output row; the whole tensor at once when no column is dropped (y itself
  // when the type stays too).
  int pick(int y, std::int64_t nb, std::int64_t ho, std::int64_t wo, std::int64_t wq, DType to,
           const Node& n) {
    const KTensor ky = meta(y);
    const std::int64_t c = ky.cols();
    const bool whole = wq == wo;
    if (whole && ky.dtype == to) return y;
    const int d = add_tensor(n.name + "/out", to, {nb, ho, wo, c}, KTensor::Role::kTemp);
    if (whole) {
      cast(ky.dtype, to, y, d, g_.where(n));
      return d;
    }
    for (std::int64_t b = 0; b < nb; ++b)
      for (std::int64_t r = 0; r < ho; ++r) {
        KStep s;
        s.args.op = ky.dtype == to ? VxmOp::kMov : VxmOp::kCast;
        s.args.type = ky.dtype;
        s.args.to = to;
        s.a = y;
        s.a_row = (b * ho + r) * wq;
        s.d = d;
        s.rows = wo;
        s.d_row = (b * ho + r) * wo;
        s.origin = g_.where(n);
        k_.steps.push_back(std::move(s));
      }
    k_.tensors[static_cast<std::size_t>(d)].clean = ky.clean;
    return d;
  }

  // The BatchNormalization that only reads the output of convolution n, with constant
  // parameters (folded into the convolution's weights and bias), or nullptr.
  const Node* foldable_bn(const Node& n) const {
    if (n.outputs.empty() || n.outputs[0] < 0) return nullptr;
    const int v = n.outputs[0];
    if (uses_[static_cast<std::size_t>(v)] != 1) return nullptr;
    for (int o : g_.outputs)
      if (o == v) return nullptr;
    for (const Node& m : g_.nodes) {
      if (m.op != "BatchNormalization" || m.inputs.size() != 5 || m.inputs[0] != v) continue;
      if (const Attr* tm = m.attr("training_mode"); tm && tm->i) return nullptr;
      for (std::size_t i = 1; i < 5; ++i)
        if (m.inputs[i] < 0 || !g_.values[static_cast<std::size_t>(m.inputs[i])].constant)
          return nullptr;
      for (std::size_t i = 1; i < m.outputs.size(); ++i)
        if (m.outputs[i] >= 0) return nullptr;
      return &m;
    }
    return nullptr;
  }

  std::vector<double> constant_values(int v, const Node& n) {
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(tensor(v, &n))];
    std::vector<double> out;
    for (std::int64_t j = 0; j < kt.elements(); ++j)
      out.push_back(element_of(kt, j));
    return out;
  }

  // Conv (group 1): the padded input's rows through the taps' weights on the MXM, every tap and
  // channel tile one pass accumulated in place; a following BatchNormalization with constant
  // parameters is folded into the weights and the bias.
  void conv(const Node& n) {
    no_attrs(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    if (const Attr* g = n.attr("group"); g && g->i != 1)
      throw InputError(g_.where(n), "group = " + std::to_string(g->i) +
                                        " is not supported (grouped and depthwise convolutions)");
    if (n.inputs.size() < 2 || n.inputs.size() > 3 || n.inputs[0] < 0 || n.inputs[1] < 0)
      throw InputError(g_.where(n), "takes two or three inputs");
    const Value& wv = g_.values[static_cast<std::size_t>(n.inputs[1])];
    const std::vector<std::int64_t> xs = nchw_shape(n.inputs[0]), ws = nchw_shape(n.inputs[1]);
    const DType dt = dtype_of(n.inputs[0]);
    if (dt != DType::kFp32 && dt != DType::kFp16)
      throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                        " is not supported (fp32 or fp16)");
    if (dtype_of(n.inputs[1]) != dt) throw InputError(g_.where(n), "inputs have different types");
    if (xs.size() < 3 || ws.size() != xs.size() || ws[1] != xs[1])
      throw InputError(g_.where(n), "input " + shape_str(xs) + " and weights " + shape_str(ws) +
                                        " do not match (N, C, spatial) and (M, C, kernel)");
    // On a transposed channels-last input the window (and below the kernel) swap their axes.
    const bool tr = cl_transposed(n.inputs[0]);
    const Window w0 = window(n, xs, std::vector<std::int64_t>(ws.begin() + 2, ws.end()), false);
    const Window w = tr ? swapped(w0) : w0;
    const std::int64_t nb = xs[0], c = xs[1], m = ws[0];
    k_.model_macs += nb * m * w0.ho * w0.wo * c * w0.kh * w0.kw;
    if ((c > k_.mxm_rows || m > k_.mxm_cols) &&
        (k_.mxm_rows != k_.lanes || k_.mxm_cols != k_.lanes))
      throw InputError(g_.where(n), std::to_string(c) + " input and " + std::to_string(m) +
                                        " output channels need MXM planes as wide as the vector");
    // Constant weights and bias are prepared on the host: row (tap, c), column m; scaled by a
    // folded normalization. Computed ones are transposed on the chip.
    const int bv = n.inputs.size() == 3 ? n.inputs[2] : -1;
    const bool host = wv.constant && (bv < 0 || g_.values[static_cast<std::size_t>(bv)].constant);
    std::vector<double> wts, bias(static_cast<std::size_t>(m), 0);
    if (host) wts = constant_values(n.inputs[1], n);
    if (host && bv >= 0) {
      bias = constant_values(bv, n);
      if (static_cast<std::int64_t>(bias.size()) != m)
        throw InputError(g_.where(n), "the bias must have " + std::to_string(m) + " values");
    }
    bool has_bias = bv >= 0;
    int out_value = n.outputs.empty() ? -1 : n.outputs[0];
    if (const Node* bn = host ? foldable_bn(n) : nullptr) {
      const Attr* ep = bn->attr("epsilon");
      const double eps = ep ? ep->f : 1e-5;
      std::vector<std::vector<double>> p;
      for (std::size_t i = 1; i < 5; ++i) {
        p.push_back(constant_values(bn->inputs[i], *bn));
        if (static_cast<std::int64_t>(p.back().size()) != m)
          throw InputError(g_.where(*bn), "parameters must have one value per channel");
      }
      const std::int64_t per = static_cast<std::int64_t>(wts.size()) / m;
      for (std::int64_t j = 0; j < m; ++j) {
        const auto sj = static_cast<std::size_t>(j);
        const double a = p[0][sj] / std::sqrt(p[3][sj] + eps);
        for (std::int64_t e = 0; e < per; ++e)
          wts[static_cast<std::size_t>(j * per + e)] *= a;
        bias[sj] = (bias[sj] - p[2][sj]) * a + p[1][sj];
      }
      has_bias = true;
      folded_.insert(bn);
      out_value = bn->outputs[0];
    }
    const std::int64_t taps = w.kh * w.kw;
    if (tr && host) {  // taps in the swapped window's order: tap (i, j) is the kernel's (j, i)
      const std::vector<double> given = wts;
      for (std::int64_t e = 0; e < m * c; ++e)
        for (std::int64_t i = 0; i < w.kh; ++i)
          for (std::int64_t j = 0; j < w.kw; ++j)
            wts[static_cast<std::size_t>(e * taps + i * w.kw + j)] =
                given[static_cast<std::size_t>(e * taps + j * w.kh + i)];
    }
    // A convolution of a small input only in the ONNX layout (a model's image): rows of input
    // pixels through banded weights, columns of output pixels out (see conv_rowwise).
    if (host && !tr && rowwise_fits(n, xs, w, m)) {
      conv_rowwise(n, w, wts, bias, has_bias, out_value, dt);
      return;
    }
    int wt = -1;
    if (!host) {
      // [M, C, kernel...] -> [kernel..., C, M] -> [taps C, M] (kernel axes swapped on a
      // transposed input)
      const std::size_t rank = ws.size();
      std::vector<std::int64_t> perm;
      for (std::size_t i = 2; i < rank; ++i)
        perm.push_back(static_cast<std::int64_t>(tr ? rank + 1 - i : i));
      perm.push_back(1);
      perm.push_back(0);
      const int wk = transpose_perm(clean(tensor(n.inputs[1], &n), n), perm, n);
      wt = reshaped(wk, {taps * c, m}, n, n.name + "/taps");
    }
    // int8 (constant weights): each output channel's weights scaled by their largest
    // magnitude / 127, the input by its calibrated range.
    const bool int8 = host && opt_.precision == Precision::kInt8;
    std::vector<double> w_scale(static_cast<std::size_t>(m), 1.0);
    const double x_scale = int8 ? activation_scale(n) : 1.0;
    if (int8) {
      const std::int64_t per = taps * c;
      wt = add_tensor(n.name + "/taps.q", DType::kI8, {per, m}, KTensor::Role::kConstant);
      auto& data = k_.tensors[static_cast<std::size_t>(wt)].data;
      data.resize(static_cast<std::size_t>(per * m));
      for (std::int64_t j = 0; j < m; ++j) {
        double most = 0;
        for (std::int64_t e = 0; e < per; ++e)
          most = std::max(most, std::fabs(wts[static_cast<std::size_t>(j * per + e)]));
        const double s = most > 0 ? most / 127.0 : 1.0;
        w_scale[static_cast<std::size_t>(j)] = s;
        for (std::int64_t ci = 0; ci < c; ++ci)
          for (std::int64_t t = 0; t < taps; ++t) {
            const double q =
                std::nearbyint(wts[static_cast<std::size_t>((j * c + ci) * taps + t)] / s);
            data[static_cast<std::size_t>((t * c + ci) * m + j)] =
                static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(q, -127.0, 127.0)));
          }
      }
    } else if (host) {
      wt = add_tensor(n.name + "/taps", dt, {taps * c, m}, KTensor::Role::kConstant);
      const auto bytes = static_cast<std::size_t>(isa::dtype_bytes(dt));
      auto& data = k_.tensors[static_cast<std::size_t>(wt)].data;
      data.resize(static_cast<std::size_t>(taps * c * m) * bytes);
      for (std::int64_t j = 0; j < m; ++j)
        for (std::int64_t ci = 0; ci < c; ++ci)
          for (std::int64_t t = 0; t < taps; ++t) {
            const double x = wts[static_cast<std::size_t>((j * c + ci) * taps + t)];
            const auto at = static_cast<std::size_t>((t * c + ci) * m + j) * bytes;
            if (dt == DType::kFp32) {
              const std::uint32_t b = func::float_bits(static_cast<float>(x));
              std::memcpy(&data[at], &b, 4);
            } else {
              const std::uint16_t b = func::fp32_to_fp16(static_cast<float>(x));
              std::memcpy(&data[at], &b, 2);
            }
          }
    }
    const Grid gd = grid(w);
    const int y =
        add_tensor(n.name + (int8 ? "/sum" : "/product"), int8 ? DType::kI32 : DType::kFp32,
                   {nb, w.ho, gd.wq, m}, KTensor::Role::kTemp);
    const std::int64_t tk_n = (c + k_.mxm_rows - 1) / k_.mxm_rows;
    const std::int64_t tn_n = (m + k_.mxm_cols - 1) / k_.mxm_cols;
    const std::int64_t results = w.ho * gd.wq;  // per image
    // A large input that exists only in the ONNX layout (a model's image) is made channels-last
    // and cut into phases band by band of output rows, so that only one band's copies are live
    // at a time (a pixel per vector: 224 x 224 x 3 would take 32 MiB at once). Large: more
    // pixels than a MEM slice holds vectors.
    std::vector<std::pair<std::int64_t, std::int64_t>> bands = {{0, w.ho}};
    const int xv = n.inputs[0];
    const std::int64_t depth = arch_.chip.mem.depth;
    if (cl_of_[static_cast<std::size_t>(xv)] < 0 && xs.size() == 4 && nb * w.h * w.w > depth) {
      const std::int64_t per = std::max<std::int64_t>(1, depth / (nb * w.w * w.sh));
      bands.clear();
      for (std::int64_t o = 0; o < w.ho; o += per)
        bands.push_back({o, std::min(w.ho, o + per)});
    }
    for (const auto& [oh0, oh1] : bands) {
      Window wb = w;
      Grid gb = gd;
      int xb = -1;
      if (bands.size() == 1) {
        xb = clean(cl_tensor(xv, n), n);  // padding lanes meet the MXM
      } else {
        // Padded rows [p0, p1) of the band; the input rows among them.
        const std::int64_t p0 = oh0 * w.sh, p1 = (oh1 - 1) * w.sh + (w.kh - 1) * w.dh + 1;
        const std::int64_t h0 = std::clamp<std::int64_t>(p0 - w.pt, 0, w.h),
                           h1 = std::clamp<std::int64_t>(p1 - w.pt, h0, w.h);
        wb.h = h1 - h0;
        wb.pt = h0 + w.pt - p0;
        wb.pb = std::max<std::int64_t>(0, p1 - p0 - wb.pt - wb.h);
        wb.ho = oh1 - oh0;
        gb = grid(wb);
        std::vector<std::int64_t> src;
        for (std::int64_t bi = 0; bi < nb; ++bi)
          for (std::int64_t ci = 0; ci < c; ++ci)
            for (std::int64_t h = h0; h < h1; ++h)
              src.push_back((bi * c + ci) * w.h + h);
        const int rows = gather_rows(clean(tensor(xv, &n), n), src, {nb, c, wb.h, w.w}, n);
        xb = transpose_perm(rows, to_cl(4), n);
      }
      if (host) k_.calibration.push_back({n.name, xb});
      if (int8) xb = quantize_activations(xb, x_scale, n);
      const std::vector<int> ph = phases(xb, wb, gb, 0.0, n);
      // (activations, weights) per pass of a tap; fp32 as three fp16 passes
      std::vector<std::vector<std::pair<int, int>>> parts(ph.size());
      std::vector<bool> used(ph.size(), false);
      for (std::int64_t i = 0; i < w.kh; ++i)
        for (std::int64_t j = 0; j < w.kw; ++j)
          used[static_cast<std::size_t>(gb.phase(w, i, j))] = true;
      for (std::size_t p = 0; p < ph.size(); ++p) {
        if (!used[p]) continue;
        parts[p] =
            int8 ? std::vector<std::pair<int, int>>{{ph[p], wt}} : product_parts(ph[p], wt, dt, n);
      }
      const std::int64_t band_results = wb.ho * gd.wq;
      // Blocks of output pixels that several planes may stream at once: their rows (and the
      // phases' rows they read) on slices of their own.
      const std::int64_t blk = row_block(band_results, nb * tn_n);
      if (band_results > blk) {
        chunk_by(y, blk);
        for (const auto& pp : parts)
          for (const auto& [xa, wa] : pp) {
            (void)wa;
            chunk_by(xa, blk);
          }
      }
      for (std::int64_t b = 0; b < nb; ++b)
        for (std::int64_t r0 = 0; r0 < band_results; r0 += blk)
          for (std::int64_t tn = 0; tn < tn_n; ++tn) {
            KStep s = product_step(y, std::min<std::int64_t>(blk, band_results - r0),
                                   b * results + oh0 * gd.wq + r0, tn, c, n,
                                   int8 ? DType::kI8 : DType::kFp16);
            for (std::int64_t i = 0; i < w.kh; ++i)
              for (std::int64_t j = 0; j < w.kw; ++j)
                for (std::int64_t tk = 0; tk < tk_n; ++tk)
                  for (const auto& [xa, wa] : parts[static_cast<std::size_t>(gb.phase(w, i, j))]) {
                    KPass ps;
                    ps.x = xa;
                    ps.w = wa;
                    ps.x_row = b * gb.hq * gb.wq + r0 + gb.offset(w, i, j);
                    ps.x_tile = tk;
                    ps.w_row = (i * w.kw + j) * c + tk * k_.mxm_rows;
                    ps.w_tile = tn;
                    ps.k = std::min<std::int64_t>(k_.mxm_rows, c - tk * k_.mxm_rows);
                    s.passes.push_back(ps);
                  }
            s.origin = g_.where(n);
            k_.steps.push_back(std::move(s));
          }
    }
    int r = y;
    if (int8) {  // back to fp32: the sums times x_scale w_scale[channel]
      const int sc = add_tensor(n.name + "/dequant", DType::kFp32, {m}, KTensor::Role::kConstant);
      for (double ws : w_scale) {
        const std::uint32_t bits = func::float_bits(static_cast<float>(x_scale * ws));
        for (int k = 0; k < 4; ++k)
          k_.tensors[static_cast<std::size_t>(sc)].data.push_back(
              static_cast<std::uint8_t>(bits >> (8 * k)));
      }
      const int yf =
          add_tensor(n.name + "/sum_f", DType::kFp32, meta(y).shape, KTensor::Role::kTemp);
      cast(DType::kI32, DType::kFp32, y, yf, g_.where(n));
      r = vx(VxmOp::kMul, yf, sc, n, "product");
    }
    if (has_bias && !host) {
      const KTensor kb = meta(tensor(bv, &n));
      if (kb.elements() != m || kb.dtype != dt)
        throw InputError(g_.where(n), "the bias must have " + std::to_string(m) + " values of " +
                                          "the input's type");
      r = vx(VxmOp::kAdd, r, widen(reshaped(tensor(bv, &n), {m}, n, n.name + "/b"), n), n,
             "biased");
    } else if (has_bias) {
      const int bt = add_tensor(n.name + "/bias", DType::kFp32, {m}, KTensor::Role::kConstant);
      auto& data = k_.tensors[static_cast<std::size_t>(bt)].data;
      for (double v : bias) {
        const std::uint32_t bits = func::float_bits(static_cast<float>(v));
        for (int k = 0; k < 4; ++k)
          data.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
      }
      r = vx(VxmOp::kAdd, r, bt, n, "biased");
    }
    std::vector<std::int64_t> os = {nb, m, w0.ho, w0.wo};
    if (xs.size() == 3) os.erase(os.begin() + 2);
    set_cl_output(n, out_value, pick(r, nb, w.ho, w.wo, gd.wq, dt, n), os, tr);
  }

  // Whether conv n on input shape xs (only in the ONNX layout) is cheaper row by row: passes of
  // input rows (W pixels in the lanes) times kh x C, for groups of Q = cols / M output pixels,
  // against the channels-last way's taps x ceil(C / rows) passes per output pixel.
  bool rowwise_fits(const Node& n, const std::vector<std::int64_t>& xs, const Window& w,
                    std::int64_t m) const {
    if (xs.size() != 4 || cl_of_[static_cast<std::size_t>(n.inputs[0])] >= 0) return false;
    if (w.dh != 1 || w.dw != 1 || w.w > k_.lanes || w.w > k_.mxm_rows || m > k_.mxm_cols ||
        arch_.chip.mxm.weight_buffers < 2)
      return false;
    const auto bands = row_bands(w, m);
    if (!bands) return false;
    const std::int64_t rowwise = xs[0] * bands->groups * w.kh * xs[1] * w.ho;
    const std::int64_t grid_w =
        (std::max(w.w + w.pl + w.pr, (w.wo - 1) * w.sw + w.kw) + w.sw - 1) / w.sw;
    const std::int64_t cl =
        xs[0] * w.ho * grid_w * w.kh * w.kw * ((xs[1] + k_.mxm_rows - 1) / k_.mxm_rows);
    return rowwise < cl;
  }

  // Where the input columns of each group of Q output pixels go on the plane (conv_rowwise):
  // group g reads columns (Q g) sw - pl .. of the input row (those inside it), which its band of
  // `rows` weight rows puts on plane rows at[g] .. (a multiple of 16, what one load carries).
  struct RowBands {
    std::int64_t q = 0, groups = 0, rows = 0;
    std::vector<std::int64_t> at;
  };
  std::optional<RowBands> row_bands(const Window& w, std::int64_t m) const {
    constexpr std::int64_t kAlign = 16;
    RowBands b;
    b.q = k_.mxm_cols / m;
    if (b.q < 1) return std::nullopt;
    b.groups = (w.wo + b.q - 1) / b.q;
    std::vector<std::pair<std::int64_t, std::int64_t>> span;  // [lo, hi) of the input columns
    for (std::int64_t g = 0; g < b.groups; ++g) {
      const std::int64_t first = b.q * g * w.sw - w.pl;
      const std::int64_t last = first + (std::min(b.q, w.wo - b.q * g) - 1) * w.sw + w.kw;
      const std::int64_t lo = std::max<std::int64_t>(0, first), hi = std::min(w.w, last);
      span.push_back({lo, std::max(lo, hi)});
      b.rows = std::max(b.rows, std::max(lo, hi) - lo / kAlign * kAlign);
    }
    b.rows = std::max<std::int64_t>(kAlign, (b.rows + kAlign - 1) / kAlign * kAlign);
    if (b.rows > k_.mxm_rows) return std::nullopt;
    for (const auto& [lo, hi] : span) {
      std::int64_t at = lo / kAlign * kAlign;
      if (at + b.rows > k_.mxm_rows) at = (k_.mxm_rows - b.rows) / kAlign * kAlign;
      if (at > lo || at + b.rows < hi) return std::nullopt;
      b.at.push_back(at);
    }
    return b;
  }

  // Conv of an input x [N, C, H, W] given row by row (the ONNX layout: a vector per image row
  // of one channel, W pixels in its lanes). Output pixels go in groups of Q = cols / M
  // consecutive columns; kernel row r of channel c is one pass of banded weights over the input
  // rows a group's outputs read, all of a group's output rows streaming: group g's weights
  // W[c, r][col][q M + m] = w[m, c, r, col - ((Q g + q) sw - pl)] (0 outside the kernel). So a
  // 7 x 7, stride 2 convolution of 3 channels to 64 is 21 passes a group, each a vector per
  // output row, with nothing gathered: the stride across the rows is taken by row phases (input
  // rows h = i sh + a - pt in phase a, copied once), the stride across the columns by the bands.
  // The results come as columns of output pixels, so the value is left transposed
  // ([N, wo, ho, M]); SXM shifts move pixel q of each group to its own row.
  void conv_rowwise(const Node& n, const Window& w, const std::vector<double>& wts,
                    const std::vector<double>& bias, bool has_bias, int out_value, DType dt) {
    const std::int64_t nb = nchw_shape(n.inputs[0])[0], c = nchw_shape(n.inputs[0])[1];
    const std::int64_t m = static_cast<std::int64_t>(bias.size());
    const std::int64_t taps = w.kh * w.kw, W = w.w;
    const RowBands bands = *row_bands(w, m);
    const std::int64_t q_n = bands.q, groups = bands.groups, kb = bands.rows;
    const std::int64_t hq = ((w.ho - 1) * w.sh + w.kh - 1) / w.sh + 1;
    const bool int8 = opt_.precision == Precision::kInt8;
    int x = clean(tensor(n.inputs[0], &n), n);
    k_.calibration.push_back({n.name, x});
    const double x_scale = int8 ? activation_scale(n) : 1.0;
    if (int8) x = quantize_activations(x, x_scale, n);
    const KTensor kx = meta(x);
    // Row phases: phase a holds padded rows i sh + a of every (image, channel), copies of them
    // (one per plane, so that the planes' passes read their own).
    const std::int64_t copies = std::max<std::int64_t>(1, arch_.chip.mxm.planes);
    std::vector<std::vector<int>> phase(static_cast<std::size_t>(copies));
    const int zero = splat(n.name + "/border", kx.dtype, 0.0, {hq, W});
    for (std::int64_t k = 0; k < copies; ++k)
      for (std::int64_t a = 0; a < w.sh; ++a)
        phase[static_cast<std::size_t>(k)].push_back(
            add_tensor(n.name + "/rows", kx.dtype, {nb * c * hq, W}, KTensor::Role::kTemp));
    for (std::int64_t k = 0; k < copies; ++k)
      for (std::int64_t bc = 0; bc < nb * c; ++bc) {
        KStep s;  // the input rows, dealt over the phases (first: it places them)
        s.args.op = VxmOp::kMov;
        s.args.type = kx.dtype;
        s.a = x;
        s.a_row = bc * w.h;
        s.rows = w.h;
        for (std::int64_t r = 0; r < std::min(w.sh, w.h); ++r)
          s.deal.push_back(
              {phase[static_cast<std::size_t>(k)][static_cast<std::size_t>((r + w.pt) % w.sh)],
               bc * hq + (r + w.pt) / w.sh});
        s.d = s.deal[0].first;
        s.d_row = s.deal[0].second;
        if (s.deal.size() == 1) s.deal.clear();
        s.origin = g_.where(n);
        k_.steps.push_back(std::move(s));
        for (std::int64_t a = 0; a < w.sh; ++a) {  // the padding rows: zeros
          const int t = phase[static_cast<std::size_t>(k)][static_cast<std::size_t>(a)];
          std::int64_t run = -1;
          for (std::int64_t i = 0; i <= hq; ++i) {
            const std::int64_t h = i * w.sh + a - w.pt;
            const bool pad = i < hq && (h < 0 || h >= w.h);
            if (pad && run < 0) run = i;
            if (!pad && run >= 0) {
              copy_rows(kx.dtype, zero, 0, t, bc * hq + run, i - run, n);
              run = -1;
            }
          }
        }
      }
    for (const auto& ps : phase)
      for (int t : ps)
        k_.tensors[static_cast<std::size_t>(t)].clean = kx.clean;
    // The banded weights, block (g, r, c) of kb rows: input columns at[g] ..; int8 per output
    // channel m.
    std::vector<double> w_scale(static_cast<std::size_t>(m), 1.0);
    if (int8)
      for (std::int64_t j = 0; j < m; ++j) {
        double most = 0;
        for (std::int64_t e = 0; e < c * taps; ++e)
          most = std::max(most, std::fabs(wts[static_cast<std::size_t>(j * c * taps + e)]));
        w_scale[static_cast<std::size_t>(j)] = most > 0 ? most / 127.0 : 1.0;
      }
    const DType wtype = int8 ? DType::kI8 : dt;
    const std::int64_t rows = groups * w.kh * c * kb, cols = q_n * m;
    const int wb = add_tensor(n.name + "/bands", wtype, {rows, cols}, KTensor::Role::kConstant);
    {
      const auto bytes = static_cast<std::size_t>(isa::dtype_bytes(wtype));
      auto& data = k_.tensors[static_cast<std::size_t>(wb)].data;
      data.assign(static_cast<std::size_t>(rows * cols) * bytes, 0);
      for (std::int64_t g = 0; g < groups; ++g)
        for (std::int64_t r = 0; r < w.kh; ++r)
          for (std::int64_t ci = 0; ci < c; ++ci)
            for (std::int64_t q = 0; q < q_n && q_n * g + q < w.wo; ++q)
              for (std::int64_t j = 0; j < w.kw; ++j) {
                const std::int64_t col = (q_n * g + q) * w.sw - w.pl + j;
                if (col < 0 || col >= W) continue;
                const std::int64_t row =
                    ((g * w.kh + r) * c + ci) * kb + col - bands.at[static_cast<std::size_t>(g)];
                for (std::int64_t mm = 0; mm < m; ++mm) {
                  const double v =
                      wts[static_cast<std::size_t>((mm * c + ci) * taps + r * w.kw + j)];
                  const auto at = static_cast<std::size_t>(row * cols + q * m + mm) * bytes;
                  if (int8) {
                    const double qv = std::nearbyint(v / w_scale[static_cast<std::size_t>(mm)]);
                    data[at] = static_cast<std::uint8_t>(
                        static_cast<std::int8_t>(std::clamp(qv, -127.0, 127.0)));
                  } else if (wtype == DType::kFp32) {
                    const std::uint32_t b = func::float_bits(static_cast<float>(v));
                    std::memcpy(&data[at], &b, 4);
                  } else {
                    const std::uint16_t b = func::fp32_to_fp16(static_cast<float>(v));
                    std::memcpy(&data[at], &b, 2);
                  }
                }
              }
    }
    // The products: per image, group and block of output rows, the kh x C passes.
    const int y =
        add_tensor(n.name + (int8 ? "/sum" : "/product"), int8 ? DType::kI32 : DType::kFp32,
                   {nb, groups, w.ho, cols}, KTensor::Role::kTemp);
    std::vector<std::vector<std::vector<std::pair<int, int>>>> parts(
        static_cast<std::size_t>(copies));
    for (std::int64_t k = 0; k < copies; ++k)
      for (int t : phase[static_cast<std::size_t>(k)])
        parts[static_cast<std::size_t>(k)].push_back(
            int8 ? std::vector<std::pair<int, int>>{{t, wb}} : product_parts(t, wb, dt, n));
    for (std::int64_t b = 0; b < nb; ++b)
      for (std::int64_t g = 0; g < groups; ++g)
        for (std::int64_t r0 = 0; r0 < w.ho; r0 += k_.mxm_accumulators) {
          const std::int64_t mrows = std::min<std::int64_t>(k_.mxm_accumulators, w.ho - r0);
          KStep s = product_step(y, mrows, (b * groups + g) * w.ho + r0, 0, kb, n,
                                 int8 ? DType::kI8 : DType::kFp16);
          const auto& pk = parts[static_cast<std::size_t>(g % copies)];
          for (std::int64_t r = 0; r < w.kh; ++r)
            for (std::int64_t ci = 0; ci < c; ++ci)
              for (const auto& [xa, wa] : pk[static_cast<std::size_t>(r % w.sh)]) {
                KPass ps;
                ps.x = xa;
                ps.w = wa;
                ps.x_row = (b * c + ci) * hq + r0 + r / w.sh;
                ps.w_row = ((g * w.kh + r) * c + ci) * kb;
                ps.k = kb;
                ps.window = true;
                ps.w_at = bands.at[static_cast<std::size_t>(g)];
                s.passes.push_back(ps);
              }
          k_.steps.push_back(std::move(s));
        }
    // Back to the node's numbers: int8 sums scaled, then the bias; as the node's type.
    int yf = y;
    auto row_of = [&](const std::string& tag, const std::vector<double>& per_m) {
      const int t = add_tensor(n.name + tag, DType::kFp32, {cols}, KTensor::Role::kConstant);
      auto& data = k_.tensors[static_cast<std::size_t>(t)].data;
      for (std::int64_t q = 0; q < q_n; ++q)
        for (double v : per_m) {
          const std::uint32_t bits = func::float_bits(static_cast<float>(v));
          for (int k = 0; k < 4; ++k)
            data.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
        }
      return t;
    };
    if (int8) {
      std::vector<double> sc(static_cast<std::size_t>(m));
      for (std::int64_t j = 0; j < m; ++j)
        sc[static_cast<std::size_t>(j)] = x_scale * w_scale[static_cast<std::size_t>(j)];
      yf = add_tensor(n.name + "/sum_f", DType::kFp32, meta(y).shape, KTensor::Role::kTemp);
      cast(DType::kI32, DType::kFp32, y, yf, g_.where(n));
      yf = vx(VxmOp::kMul, yf, row_of("/dequant", sc), n, "product");
    }
    if (has_bias) yf = vx(VxmOp::kAdd, yf, row_of("/bias", bias), n, "biased");
    int yd = yf;
    if (dt != DType::kFp32) {
      yd = add_tensor(n.name + "/out_t", dt, meta(yf).shape, KTensor::Role::kTemp);
      cast(DType::kFp32, dt, yf, yd, g_.where(n));
    }
    // Pixel q of each group to its own row: out [N, wo, ho, M], column ow's output rows in order.
    const int out = add_tensor(n.name + "/out", dt, {nb, w.wo, w.ho, m}, KTensor::Role::kTemp);
    for (std::int64_t b = 0; b < nb; ++b)
      for (std::int64_t g = 0; g < groups; ++g)
        for (std::int64_t q = 0; q < q_n && q_n * g + q < w.wo; ++q) {
          KStep s;
          s.kind = q ? KStep::Kind::kSxm : KStep::Kind::kVxm;
          s.sxm = KStep::SxmOp::kShift;
          s.sxm_n = static_cast<int>(q * m);
          s.north = false;
          s.args.op = VxmOp::kMov;
          s.args.type = dt;
          s.a = yd;
          s.a_row = (b * groups + g) * w.ho;
          s.d = out;
          s.d_row = (b * w.wo + q_n * g + q) * w.ho;
          s.rows = w.ho;
          s.origin = g_.where(n);
          k_.steps.push_back(std::move(s));
        }
    // Lanes past M hold the group's other pixels.
    k_.tensors[static_cast<std::size_t>(out)].clean = q_n == 1 && meta(yd).clean;
    set_cl_output(n, out_value, out, {nb, m, w.ho, w.wo}, true);
  }

  // Records t as the channels-last form of graph value v (an output of node n).
  void set_cl_output(const Node& n, int v, int t, const std::vector<std::int64_t>& shape,
                     bool transposed = false) {
    if (v < 0) throw InputError(g_.where(n), "has no output");
    const auto want = permuted(shape, nchw_to_cl(shape.size(), transposed));
    if (meta(t).shape != want) t = reshaped(t, want, n, n.name + "/cl");  // a 1-D window's
    cl_of_[static_cast<std::size_t>(v)] = t;
    cl_t_[static_cast<std::size_t>(v)] = transposed;
  }

  // The window of a node on a transposed channels-last value: its axes swapped, as the data.
  static Window swapped(Window w) {
    std::swap(w.h, w.w);
    std::swap(w.kh, w.kw);
    std::swap(w.sh, w.sw);
    std::swap(w.dh, w.dw);
    std::swap(w.pt, w.pl);
    std::swap(w.pb, w.pr);
    std::swap(w.ho, w.wo);
    return w;
  }

  // MaxPool and AveragePool: every tap's rows of the padded input (strided) combined on the VXM,
  // in the input's type for max, in fp32 for averages.
  void pool(const Node& n) {
    const bool avg = n.op == "AveragePool";
    if (avg)
      no_attrs(n, {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                   "pads", "strides"});
    else
      no_attrs(n, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides",
                   "storage_order"});
    if (n.inputs.size() != 1 || n.inputs[0] < 0) throw InputError(g_.where(n), "takes one input");
    const std::vector<std::int64_t> xs = nchw_shape(n.inputs[0]);
    const DType dt = dtype_of(n.inputs[0]);
    if (dt != DType::kFp32 && dt != DType::kFp16 && dt != DType::kBf16 &&
        !(dt == DType::kI8 && !avg))
      throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                        " is not supported (a float type" +
                                        (avg ? ")" : ", or int8)"));
    if (xs.size() < 3) throw InputError(g_.where(n), "needs an input (N, C, spatial)");
    const bool tr = cl_transposed(n.inputs[0]);
    const Window w0 = window(n, xs, {}, true);
    const Window w = tr ? swapped(w0) : w0;
    const std::int64_t nb = xs[0], c = xs[1];
    std::vector<std::int64_t> os = {nb, c, w0.ho, w0.wo};
    if (xs.size() == 3) os.erase(os.begin() + 2);
    int x = cl_tensor(n.inputs[0], n);
    const DType wt = avg ? DType::kFp32 : dt;  // the type of the work
    if (avg) x = widen(x, n);
    const Grid gd = grid(w);
    const double fill = avg                ? 0.0
                        : dt == DType::kI8 ? -128.0
                                           : -std::numeric_limits<double>::infinity();
    const std::vector<int> ph = phases(x, w, gd, fill, n);
    // Every tap one run of its phase's rows per image, combined in tap order.
    const std::int64_t results = w.ho * gd.wq;  // per image
    int acc = -1;
    for (std::int64_t i = 0; i < w.kh; ++i)
      for (std::int64_t j = 0; j < w.kw; ++j) {
        const int d =
            add_tensor(n.name + "/window", wt, {nb, w.ho, gd.wq, c}, KTensor::Role::kTemp);
        const int src = ph[static_cast<std::size_t>(gd.phase(w, i, j))];
        for (std::int64_t b = 0; b < nb; ++b) {
          KStep s;
          s.args.op = acc < 0 ? VxmOp::kMov : avg ? VxmOp::kAdd : VxmOp::kMax;
          s.args.type = wt;
          const std::int64_t xr = b * gd.hq * gd.wq + gd.offset(w, i, j);
          if (acc < 0) {
            s.a = src;
            s.a_row = xr;
          } else {
            s.a = acc;
            s.a_row = b * results;
            s.b = src;
            s.b_row = xr;
          }
          s.d = d;
          s.d_row = b * results;
          s.rows = results;
          s.origin = g_.where(n);
          k_.steps.push_back(std::move(s));
        }
        k_.tensors[static_cast<std::size_t>(d)].clean =
            k_.tensors[static_cast<std::size_t>(src)].clean;
        acc = d;
      }
    const int out_value = n.outputs.empty() ? -1 : n.outputs[0];
    auto sample = [&](DType to) { return pick(acc, nb, w.ho, w.wo, gd.wq, to, n); };
    if (!avg) {
      set_cl_output(n, out_value, sample(dt), os, tr);
      return;
    }
    // The divisor: the window's size, or (count_include_pad = 0) the input pixels it covers.
    const bool include = n.attr("count_include_pad") && n.attr("count_include_pad")->i != 0;
    const int sum = sample(DType::kFp32);
    std::vector<float> inv(static_cast<std::size_t>(w.ho * w.wo));
    bool uniform = true;
    for (std::int64_t oh = 0; oh < w.ho; ++oh)
      for (std::int64_t ow = 0; ow < w.wo; ++ow) {
        std::int64_t cnt = 0;
        for (std::int64_t i = 0; i < w.kh; ++i)
          for (std::int64_t j = 0; j < w.kw; ++j) {
            const std::int64_t y = oh * w.sh + i * w.dh - w.pt, z = ow * w.sw + j * w.dw - w.pl;
            const bool in_pad = y >= -w.pt && y < w.h + w.pb && z >= -w.pl && z < w.w + w.pr;
            const bool in_x = y >= 0 && y < w.h && z >= 0 && z < w.w;
            cnt += include ? in_pad : in_x;
          }
        inv[static_cast<std::size_t>(oh * w.wo + ow)] = 1.0f / static_cast<float>(cnt);
        uniform = uniform && inv[static_cast<std::size_t>(oh * w.wo + ow)] == inv[0];
      }
    int div;
    if (uniform) {
      div = splat(n.name + "/1_N", DType::kFp32, inv[0], {c});
    } else {
      div = add_tensor(n.name + "/1_N", DType::kFp32, {w.ho, w.wo, c}, KTensor::Role::kConstant);
      auto& data = k_.tensors[static_cast<std::size_t>(div)].data;
      for (float f : inv) {
        const std::uint32_t bits = func::float_bits(f);
        for (std::int64_t ci = 0; ci < c; ++ci)
          for (int k = 0; k < 4; ++k)
            data.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
      }
      div = fit(div, meta(sum).shape, n);
    }
    const int mean = vx(VxmOp::kMul, sum, div, n, "mean");
    const int out = add_tensor(n.name + "/out", dt, meta(mean).shape, KTensor::Role::kTemp);
    narrow_into(mean, dt, out, n);
    set_cl_output(n, out_value, out, os, tr);
  }

  // GlobalAveragePool of a channels-last value: sums over the pixel rows; the result
  // [N, 1.., C] is also the rows of the flattened [N, C].
  void global_pool_cl(const Node& n) {
    const int x0 = cl_tensor(n.inputs[0], n);
    const KTensor kx = meta(x0);
    int y = widen(x0, n);
    std::int64_t count = 1;
    // Outer axes first: each sum then adds blocks of many rows (H + W steps, not N H W).
    for (std::size_t ax = 1; ax + 1 < kx.shape.size(); ++ax) {
      count *= kx.shape[ax];
      y = sum_leading(y, static_cast<std::int64_t>(ax), n);
    }
    y = vx(VxmOp::kMul, y,
           splat(n.name + "/1_N", DType::kFp32, 1.0 / static_cast<double>(count), {1}), n, "mean");
    const int out = add_tensor(n.name + "/out", kx.dtype, meta(y).shape, KTensor::Role::kTemp);
    narrow_into(y, kx.dtype, out, n);
    const auto os = meta(out).shape;
    set_cl_output(n, n.outputs.empty() ? -1 : n.outputs[0], out, permuted(os, from_cl(os.size())));
  }

  // Channels-last operators; false when n is not one of them or not on such a value.
  bool lower_cl(const Node& n) {
    if (folded_.count(&n)) return true;
    if (n.op == "Conv") {
      conv(n);
      return true;
    }
    if (n.op == "MaxPool" || n.op == "AveragePool") {
      pool(n);
      return true;
    }
    if (n.inputs.empty() || !cl_only(n.inputs[0])) return lower_cl_pointwise(n);
    const std::vector<std::int64_t> xs = nchw_shape(n.inputs[0]);
    if (n.op == "GlobalAveragePool" && n.attrs.empty() && n.inputs.size() == 1) {
      global_pool_cl(n);
      return true;
    }
    // A reshape that keeps the channels as the last axis of a value with no spatial extent
    // left (a pooled [N, C, 1, 1] flattened): a view of the channels-last rows.
    if (n.op == "Flatten" && !n.outputs.empty() && n.outputs[0] >= 0 && xs.size() >= 3) {
      const Attr* ax = n.attr("axis");
      std::int64_t spatial = 1;
      for (std::size_t i = 2; i < xs.size(); ++i)
        spatial *= xs[i];
      if (spatial == 1 && (!ax || ax->i == 1)) {
        reshape_to(n, cl_tensor(n.inputs[0], n), {xs[0], xs[1]});
        return true;
      }
    }
    return lower_cl_pointwise(n);
  }

  // Gather along axis 0 of data [V, ...]. Constant indices: rows picked on the host (constant
  // data) or moved by VXM copies. Computed int32 indices (an embedding lookup): a one-hot matrix
  // [N, V] (each index spread across the lanes on the MXM, compared with the lane numbers) times
  // the data on the MXM, exact since each sum has one non-zero product; an index out of range
  // gives a row of zeros.
  void gather(const Node& n) {
    no_attrs(n, {"axis"});
    if (n.inputs.size() != 2 || n.inputs[0] < 0 || n.inputs[1] < 0)
      throw InputError(g_.where(n), "takes two inputs");
    const Value& iv = g_.values[static_cast<std::size_t>(n.inputs[1])];
    const std::vector<std::int64_t> ds = nchw_shape(n.inputs[0]);
    const std::int64_t axis = norm_axis(n.attr("axis") ? n.attr("axis")->i : 0, ds.size());
    if (ds.empty() || axis < 0 || axis >= static_cast<std::int64_t>(ds.size()))
      throw InputError(g_.where(n), "axis out of range for data " + shape_str(ds));
    const std::int64_t v = ds[static_cast<std::size_t>(axis)];
    std::vector<std::int64_t> out_shape(ds.begin(), ds.begin() + axis);
    if (iv.constant && iv.dtype == DType::kNone) {
      out_shape.insert(out_shape.end(), iv.shape.begin(), iv.shape.end());
      out_shape.insert(out_shape.end(), ds.begin() + axis + 1, ds.end());
      if (axis + 1 == static_cast<std::int64_t>(ds.size()) && ds.size() > 1)
        throw InputError(g_.where(n), "gathering along the last axis is not supported yet");
      // Row r of the result (in the rows view, rank >= 2) comes from source row src[r].
      std::int64_t outer = 1, inner = 1;
      for (std::int64_t i = 0; i < axis; ++i)
        outer *= ds[static_cast<std::size_t>(i)];
      for (std::size_t i = static_cast<std::size_t>(axis) + 1; i + 1 < ds.size(); ++i)
        inner *= ds[i];
      std::vector<std::int64_t> src;
      for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t idx : iv.ints) {
          if (idx < -v || idx >= v)
            throw InputError(g_.where(n), "index " + std::to_string(idx) + " is out of range " +
                                              "for an axis of " + std::to_string(v));
          const std::int64_t j = idx < 0 ? idx + v : idx;
          for (std::int64_t i = 0; i < inner; ++i)
            src.push_back((o * v + j) * inner + i);
        }
      int t = tensor(n.inputs[0], &n);
      if (ds.size() == 1) {  // a vector: its elements are lanes of one row
        if (meta(t).role != KTensor::Role::kConstant)
          throw InputError(g_.where(n),
                           "gathering elements of a computed 1-D tensor is not "
                           "supported yet");
        t = reshaped(t, {v, 1}, n, n.name + "/column");
        out_shape.push_back(1);
        const int g = gather_rows(t, src, out_shape, n);
        out_shape.pop_back();
        reshape_to(n, g, out_shape);
        return;
      }
      reshape_to(n, gather_rows(t, src, out_shape, n), out_shape);
      return;
    }
    // Computed indices.
    if (axis != 0 || ds.size() != 2)
      throw InputError(g_.where(n),
                       "computed indices are supported for 2-D data along axis 0 "
                       "(an embedding table), not data " +
                           shape_str(ds) + " along axis " + std::to_string(axis));
    const int table = tensor(n.inputs[0], &n);
    const KTensor kd = meta(table);
    if (kd.role != KTensor::Role::kConstant ||
        (kd.dtype != DType::kFp32 && kd.dtype != DType::kFp16))
      throw InputError(g_.where(n), "computed indices need a constant fp32 or fp16 table");
    const int ids = tensor(n.inputs[1], &n);
    const KTensor ki = meta(ids);
    if (ki.dtype != DType::kI32 && ki.dtype != DType::kI16 && ki.dtype != DType::kI8)
      throw InputError(g_.where(n), std::string("indices of type ") + isa::to_string(ki.dtype) +
                                        " are not supported (int32, int16 or int8; the machine "
                                        "holds no int64)");
    const std::int64_t count = ki.elements();
    if (count > k_.lanes)
      throw InputError(g_.where(n), std::to_string(count) + " indices are more than a vector (" +
                                        std::to_string(k_.lanes) + ") holds; not supported yet");
    // The indices as an fp32 column [N, 1] (exact below 2^24), negative ones counted from the
    // end, spread over V lanes.
    const int f0 = add_tensor(n.name + "/ids.f", DType::kFp32, {count}, KTensor::Role::kTemp);
    cast(ki.dtype, DType::kFp32, reshaped(ids, {count}, n, n.name + "/ids"), f0, g_.where(n));
    const int wrapped =
        vx(VxmOp::kAdd, f0, splat(n.name + "/V", DType::kFp32, static_cast<double>(v), {count}), n,
           "ids.wrapped");
    const int f = sel(cmp(VxmOp::kCmpLt, f0, row_const(f0, 0.0, n, "zero"), n, "negative"), wrapped,
                      f0, n, "ids.pos");
    const int col = reshaped(clean(f, n), {count, 1}, n, n.name + "/ids.col");
    const int spread = fit(col, {count, v}, n);
    std::vector<float> lane(static_cast<std::size_t>(v));
    for (std::int64_t i = 0; i < v; ++i)
      lane[static_cast<std::size_t>(i)] = static_cast<float>(i);
    const int lanes = add_tensor(n.name + "/lane", DType::kFp32, {v}, KTensor::Role::kConstant);
    for (float x : lane) {
      const std::uint32_t bits = func::float_bits(x);
      for (int k = 0; k < 4; ++k)
        k_.tensors[static_cast<std::size_t>(lanes)].data.push_back(
            static_cast<std::uint8_t>(bits >> (8 * k)));
    }
    const int eq = cmp(VxmOp::kCmpEq, spread, lanes, n, "hit");
    const int one =
        add_tensor(n.name + "/onehot32", DType::kFp32, {count, v}, KTensor::Role::kTemp);
    step(VxmOp::kSel, DType::kFp32,
         fit(splat(n.name + "/one", DType::kFp32, 1.0, {v}), {count, v}, n),
         fit(splat(n.name + "/zero", DType::kFp32, 0.0, {v}), {count, v}, n), one, g_.where(n), eq);
    int onehot = one;
    if (kd.dtype == DType::kFp16) {
      onehot = add_tensor(n.name + "/onehot", DType::kFp16, {count, v}, KTensor::Role::kTemp);
      cast(DType::kFp32, DType::kFp16, one, onehot, g_.where(n));
    }
    matmul(n, onehot, table, false, false, 1.0f, -1, 0.0f, /*may_quantize=*/false);
    // The product is [N, D]; the node's output has the indices' shape in front of D (a view).
    const auto o = static_cast<std::size_t>(n.outputs[0]);
    const int t = tensor_of_[o];
    std::string name = k_.tensors[static_cast<std::size_t>(t)].name + "/rows";
    while (used_names_.count(name))
      name += "#";
    used_names_.insert(name);
    k_.tensors[static_cast<std::size_t>(t)].name = name;
    std::vector<std::int64_t> shape = ki.shape;
    shape.push_back(kd.cols());
    tensor_of_[o] = reshaped(t, shape, n, g_.values[o].name);
  }

  bool lower_more(const Node& n) {
    const std::string& op = n.op;
    if (op == "BatchNormalization") {  // inference: x a + b per channel, a and b on the host
      no_attrs(n, {"epsilon", "momentum", "training_mode"});
      if (const Attr* tm = n.attr("training_mode"); tm && tm->i)
        throw InputError(g_.where(n), "training_mode is not supported (inference only)");
      if (n.inputs.size() != 5) throw InputError(g_.where(n), "takes five inputs");
      const Attr* ep = n.attr("epsilon");
      const double eps = ep ? ep->f : 1e-5;
      const int x0 = float_input(n, 0);
      const KTensor kx = meta(x0);
      if (kx.shape.size() < 2) throw InputError(g_.where(n), "needs an input with channels");
      const std::int64_t ch = kx.shape[1];
      bool all_constant = true;
      for (std::size_t i = 1; i < 5; ++i)
        all_constant = all_constant && n.inputs[i] >= 0 &&
                       g_.values[static_cast<std::size_t>(n.inputs[i])].constant;
      if (!all_constant) {
        // Computed on the chip: a = scale rsqrt(var + eps), b = B - mean a, each [C]; then one
        // value per row of x (the channel is a leading axis): a transpose to a column, spread
        // across the lanes, rows repeated for every batch and spatial row.
        auto param = [&](std::size_t i) {
          const int t = widen(tensor(n.inputs[i], &n), n);
          if (k_.tensors[static_cast<std::size_t>(t)].elements() != ch)
            throw InputError(g_.where(n),
                             "input " + std::to_string(i) + " must have one value per channel");
          return reshaped(t, {1, ch}, n, n.name + "/p" + std::to_string(i));
        };
        const int sc = param(1), bi = param(2), mu = param(3), va = param(4);
        const int a = vx(
            VxmOp::kMul, sc,
            vx(VxmOp::kRsqrt,
               vx(VxmOp::kAdd, va, splat(n.name + "/eps", DType::kFp32, eps, {ch}), n, "var_eps"),
               -1, n, "inv_std"),
            n, "a");
        const int b = vx(VxmOp::kSub, bi, vx(VxmOp::kMul, mu, a, n, "mean_a"), n, "b");
        const int x = widen(x0, n);
        auto per_row = [&](int v) {
          if (kx.shape.size() == 2) return v;  // channels are the lanes: a row broadcast
          const std::int64_t w = kx.cols(), rows = kx.rows(), per_ch = rows / (kx.shape[0] * ch);
          const int col = transpose_perm(clean(v, n), {1, 0}, n);  // [C, 1]
          const int spread = fit(col, {ch, w}, n);                 // [C, W]
          std::vector<std::int64_t> src(static_cast<std::size_t>(rows));
          for (std::int64_t r = 0; r < rows; ++r)
            src[static_cast<std::size_t>(r)] = (r / per_ch) % ch;
          return gather_rows(spread, src, kx.shape, n);
        };
        const int y =
            vx(VxmOp::kAdd, vx(VxmOp::kMul, x, per_row(a), n, "scaled"), per_row(b), n, "shifted");
        const int out = output(n, kx.dtype, kx.shape);
        narrow_into(y, kx.dtype, out, n);
        return true;
      }
      std::vector<std::vector<double>> p(4);
      for (std::size_t i = 1; i < 5; ++i) {
        const Value& v = g_.values[static_cast<std::size_t>(n.inputs[i])];
        if (!v.constant)
          throw InputError(g_.where(n), "'" + v.name + "' must be a constant (inference)");
        const KTensor& kt = k_.tensors[static_cast<std::size_t>(tensor(n.inputs[i], &n))];
        if (kt.elements() != ch)
          throw InputError(g_.where(n), "'" + v.name + "' must have one value per channel");
        for (std::int64_t j = 0; j < ch; ++j)
          p[i - 1].push_back(element_of(kt, j));
      }
      // Per-channel constants of shape [C, 1, ...] (broadcast over the rest on the host).
      std::vector<std::int64_t> cshape(kx.shape.size() - 1, 1);
      cshape[0] = ch;
      const int a = add_tensor(n.name + "/a", DType::kFp32, cshape, KTensor::Role::kConstant);
      const int b = add_tensor(n.name + "/b", DType::kFp32, cshape, KTensor::Role::kConstant);
      for (std::int64_t j = 0; j < ch; ++j) {
        const auto sj = static_cast<std::size_t>(j);
        const double aj = p[0][sj] / std::sqrt(p[3][sj] + eps);
        const float af = static_cast<float>(aj);
        const float bf = static_cast<float>(p[1][sj] - p[2][sj] * aj);
        for (auto [t, f] : {std::pair<int, float>{a, af}, {b, bf}}) {
          auto& data = k_.tensors[static_cast<std::size_t>(t)].data;
          const std::uint32_t bits = func::float_bits(f);
          for (int k = 0; k < 4; ++k)
            data.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
        }
      }
      const int x = widen(x0, n);
      const int y = vx(VxmOp::kAdd, vx(VxmOp::kMul, x, fit(a, kx.shape, n), n, "scaled"),
                       fit(b, kx.shape, n), n, "shifted");
      const int out = output(n, kx.dtype, kx.shape);
      narrow_into(y, kx.dtype, out, n);
      return true;
    }
    if (op == "Cast") {  // between the machine's float types, and from integers to floats
      no_attrs(n, {"to", "saturate"});
      const Attr* to = n.attr("to");
      if (!to) throw InputError(g_.where(n), "needs its 'to' attribute");
      // ONNX TensorProto element types the machine holds.
      static const std::map<std::int64_t, DType> types = {{1, DType::kFp32},  {3, DType::kI8},
                                                          {5, DType::kI16},   {6, DType::kI32},
                                                          {10, DType::kFp16}, {16, DType::kBf16}};
      auto it = types.find(to->i);
      if (it == types.end())
        throw InputError(g_.where(n), "a cast to ONNX element type " + std::to_string(to->i) +
                                          " is not supported (the machine holds int8/16/32, "
                                          "fp16, bf16 and fp32)");
      const int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
      const KTensor kt = meta(t);
      if (kt.dtype == DType::kNone)
        throw InputError(g_.where(n), "casts from int64 or bool are not supported");
      const DType target = it->second;
      if (!isa::is_integer(kt.dtype) && isa::is_integer(target))
        throw InputError(g_.where(n),
                         "casts from floats to integers are not supported (ONNX "
                         "truncates; the VXM rounds to nearest even)");
      const int out = output(n, target, kt.shape);
      if (target == kt.dtype)
        step(VxmOp::kMov, target, t, -1, out, g_.where(n));
      else
        cast(kt.dtype, target, t, out, g_.where(n));
      return true;
    }
    if (op == "Gather") {
      gather(n);
      return true;
    }
    if (op == "GlobalAveragePool") {  // the mean over every axis after the channels
      no_attrs(n);
      const int x0 = float_input(n, 0);
      const KTensor kx = meta(x0);
      const std::size_t rank = kx.shape.size();
      if (rank < 3) throw InputError(g_.where(n), "needs a spatial input (N, C, ...)");
      int y = widen(x0, n);
      std::int64_t count = 1;
      for (std::size_t ax = rank; ax-- > 2;) {
        count *= kx.shape[ax];
        y = ax == rank - 1 ? sum_last(y, n) : sum_leading(y, static_cast<std::int64_t>(ax), n);
      }
      y = vx(VxmOp::kMul, y,
             splat(n.name + "/1_N", DType::kFp32, 1.0 / static_cast<double>(count), {1}), n,
             "mean");
      std::vector<std::int64_t> shape = kx.shape;
      for (std::size_t ax = 2; ax < rank; ++ax)
        shape[ax] = 1;
      const int out = output(n, kx.dtype, shape);
      narrow_into(y, kx.dtype, out, n);
      return true;
    }
    if (op == "Transpose") {
      // Any permutation as (leading axes permuted) -> (last two swapped) -> (leading permuted):
      // the first brings the axis that must end up last next to the last, the swap puts it
      // there. Leading permutations move whole rows; the swap runs on the SXM transposers.
      no_attrs(n, {"perm"});
      int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
      const std::size_t rank = k_.tensors[static_cast<std::size_t>(t)].shape.size();
      std::vector<std::int64_t> perm;
      if (const Attr* pa = n.attr("perm")) perm = pa->ints;
      if (perm.empty())
        for (std::size_t i = rank; i-- > 0;)
          perm.push_back(static_cast<std::int64_t>(i));
      std::vector<std::int64_t> sorted = perm;
      std::sort(sorted.begin(), sorted.end());
      for (std::size_t i = 0; i < sorted.size(); ++i)
        if (sorted.size() != rank || sorted[i] != static_cast<std::int64_t>(i))
          throw InputError(g_.where(n), "perm " + shape_str(perm) + " is not a permutation of " +
                                            std::to_string(rank) + " axes");
      t = transpose_perm(t, perm, n);
      const KTensor ky = meta(t);
      const int out = output(n, ky.dtype, ky.shape);
      step(VxmOp::kMov, ky.dtype, t, -1, out, g_.where(n));
      return true;
    }
    if (op == "Concat") {  // along the last axis, within one vector: shifts and selects
      no_attrs(n, {"axis"});
      const Attr* ax = n.attr("axis");
      if (!ax) throw InputError(g_.where(n), "needs its axis attribute");
      std::vector<int> ins;
      for (std::size_t i = 0; i < n.inputs.size(); ++i)
        ins.push_back(tensor(n.inputs[i], &n));
      if (ins.empty()) throw InputError(g_.where(n), "has no inputs");
      const KTensor k0 = k_.tensors[static_cast<std::size_t>(ins[0])];
      const std::size_t rank = k0.shape.size();
      const std::int64_t axis = rank ? norm_axis(ax->i, rank) : 0;
      if (rank && axis < static_cast<std::int64_t>(rank) - 1) {
        // Along a leading axis whose own leading dimensions are all 1: row ranges, one copy each.
        std::vector<std::int64_t> shape = k0.shape;
        shape[static_cast<std::size_t>(axis)] = 0;
        for (int t : ins) {
          const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
          bool ok = kt.dtype == k0.dtype && kt.shape.size() == rank;
          for (std::size_t i = 0; ok && i < rank; ++i)
            ok = static_cast<std::int64_t>(i) == axis || kt.shape[i] == k0.shape[i];
          if (!ok || kt.tiles(k_.lanes) > 1)
            throw InputError(g_.where(n), "Concat along axis " + std::to_string(axis) +
                                              " needs inputs that differ only along it, with rows "
                                              "that fit one vector");
          shape[static_cast<std::size_t>(axis)] += kt.shape[static_cast<std::size_t>(axis)];
        }
        const int out = output(n, k0.dtype, shape);
        // Blocks: for each index of the dimensions before the axis, every input's rows in turn.
        std::int64_t lead = 1;
        for (std::int64_t i = 0; i < axis; ++i)
          lead *= shape[static_cast<std::size_t>(i)];
        std::int64_t row = 0;
        for (std::int64_t l = 0; l < lead; ++l)
          for (int t : ins) {
            const std::int64_t block = k_.tensors[static_cast<std::size_t>(t)].rows() / lead;
            KStep s;
            s.args.op = VxmOp::kMov;
            s.args.type = k0.dtype;
            s.a = t;
            s.d = out;
            s.rows = block;
            s.a_row = l * block;
            s.d_row = row;
            s.origin = g_.where(n);
            row += block;
            k_.steps.push_back(std::move(s));
          }
        bool clean_all = true;
        for (int t : ins)
          clean_all = clean_all && k_.tensors[static_cast<std::size_t>(t)].clean;
        k_.tensors[static_cast<std::size_t>(out)].clean = clean_all;
        return true;
      }
      if (rank == 0) throw InputError(g_.where(n), "cannot concatenate scalars");
      std::vector<std::int64_t> shape = k0.shape;
      int acc = ins[0];
      for (std::size_t i = 1; i < ins.size(); ++i) {
        const KTensor ki = k_.tensors[static_cast<std::size_t>(ins[i])];
        if (ki.dtype != k0.dtype || ki.rows() != k0.rows() || ki.shape.size() != rank)
          throw InputError(g_.where(n), "inputs differ in type or leading dimensions");
        const std::int64_t at = shape.back();
        shape.back() += ki.cols();
        if (shape.back() > k_.lanes)
          throw InputError(g_.where(n), "a concatenation wider than the vector (" +
                                            std::to_string(shape.back()) +
                                            " columns) is not supported yet");
        const int moved = sxm_shift(clean(ins[i], n), static_cast<int>(at), true, shape, n,
                                    "part" + std::to_string(i));
        acc = sxm_select(acc, moved, static_cast<int>(at), shape, n, "concat" + std::to_string(i));
      }
      const int out = output(n, k0.dtype, shape);
      step(VxmOp::kMov, k0.dtype, acc, -1, out, g_.where(n));
      return true;
    }
    if (op == "Slice") {  // along the last axis: a shift south and a mask
      no_attrs(n);
      const int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
      const KTensor kt = meta(t);
      const auto starts = const_ints(n, 1), ends = const_ints(n, 2);
      const auto axes = const_ints(n, 3), steps = const_ints(n, 4);
      if (!starts || !ends || starts->size() != 1 || ends->size() != 1)
        throw InputError(g_.where(n), "only a slice of one axis is supported");
      const std::size_t rank = kt.shape.size();
      const std::int64_t axis = axes ? norm_axis((*axes)[0], rank) : 0;
      if (rank == 0 || axis != static_cast<std::int64_t>(rank) - 1)
        throw InputError(g_.where(n), "only a slice of the last axis is supported");
      if (steps && (*steps)[0] != 1) throw InputError(g_.where(n), "only step 1 is supported");
      const std::int64_t c = kt.cols();
      auto clamp = [&](std::int64_t v) {
        if (v < 0) v += c;
        return std::max<std::int64_t>(0, std::min<std::int64_t>(v, c));
      };
      const std::int64_t b = clamp((*starts)[0]), e = std::max(b, clamp((*ends)[0]));
      std::vector<std::int64_t> shape = kt.shape;
      shape.back() = e - b;
      int y = t;
      if (b > 0) {
        if (c > k_.lanes)
          throw InputError(g_.where(n), "slicing rows wider than the vector is not supported yet");
        y = sxm_shift(t, static_cast<int>(b), false, shape, n, "moved");
      }
      const int out = output(n, kt.dtype, shape);
      // Keep the columns: a mask also clears the lanes past them.
      const int bytes = isa::dtype_bytes(kt.dtype);
      const DType it = bytes == 1 ? DType::kI8 : bytes == 2 ? DType::kI16 : DType::kI32;
      step(VxmOp::kAnd, it, y, splat(n.name + "/columns", it, -1.0, {e - b}), out, g_.where(n));
      k_.tensors[static_cast<std::size_t>(out)].clean = true;
      return true;
    }
    if (op == "Softmax") {
      no_attrs(n, {"axis"});
      const int x0 = float_input(n, 0);
      const KTensor kx = meta(x0);
      const Attr* ax = n.attr("axis");
      const std::size_t rank = kx.shape.size();
      const std::int64_t axis = ax ? norm_axis(ax->i, rank) : static_cast<std::int64_t>(rank) - 1;
      int y;
      if (rank && axis != static_cast<std::int64_t>(rank) - 1) {
        // Another axis: move it last (a transpose), normalise, move it back.
        std::vector<std::int64_t> perm;
        for (std::size_t i = 0; i < rank; ++i)
          if (static_cast<std::int64_t>(i) != axis) perm.push_back(static_cast<std::int64_t>(i));
        perm.push_back(axis);
        std::vector<std::int64_t> back(rank);
        for (std::size_t i = 0; i < rank; ++i)
          back[static_cast<std::size_t>(perm[i])] = static_cast<std::int64_t>(i);
        y = transpose_perm(softmax_last(transpose_perm(widen(x0, n), perm, n), n), back, n);
      } else {
        y = softmax_last(widen(x0, n), n);
      }
      const int out = output(n, kx.dtype, kx.shape);
      narrow_into(y, kx.dtype, out, n);
      k_.tensors[static_cast<std::size_t>(out)].clean = false;
      return true;
    }
    if (op == "Div" || op == "Reciprocal" || op == "Sqrt" || op == "Erf") {
      no_attrs(n);
      const bool div = op == "Div";
      if (n.inputs.size() != (div ? 2u : 1u))
        throw InputError(g_.where(n), std::string("takes ") + (div ? "two inputs" : "one input"));
      const int a0 = float_input(n, 0);
      const DType dt = k_.tensors[static_cast<std::size_t>(a0)].dtype;
      const int a = widen(a0, n);
      std::vector<std::int64_t> shape = k_.tensors[static_cast<std::size_t>(a)].shape;
      int y = -1;
      if (div) {
        const int b0 = float_input(n, 1);
        if (k_.tensors[static_cast<std::size_t>(b0)].dtype != dt)
          throw InputError(g_.where(n), "inputs have different types");
        const int b = widen(b0, n);
        const auto s = broadcast(shape, k_.tensors[static_cast<std::size_t>(b)].shape);
        if (!s) throw InputError(g_.where(n), "shapes do not broadcast");
        shape = *s;
        const int r = reciprocal(fit(b, shape, n), n);
        y = vx(VxmOp::kMul, fit(a, shape, n), r, n, "quotient");
      } else if (op == "Reciprocal") {
        y = reciprocal(a, n);
      } else if (op == "Sqrt") {  // x rsqrt(x), with 0 and +inf passed through
        const int r = vx(VxmOp::kRsqrt, a, -1, n, "rsqrt");
        const int y0 = vx(VxmOp::kMul, a, r, n, "root");
        const int z = cmp(VxmOp::kCmpEq, a, row_const(a, 0.0, n, "zero"), n, "is_zero");
        const int y1 = sel(z, a, y0, n, "root0");
        const int inf = cmp(VxmOp::kCmpEq, a, row_const(a, INFINITY, n, "inf"), n, "is_inf");
        y = sel(inf, a, y1, n, "sqrt");
      } else {  // Erf: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); 2x/sqrt(pi) (1 - x^2/3) near
                // 0
        const int ax = vx(VxmOp::kAbs, a, -1, n, "abs");
        const int u = vx(VxmOp::kMul, ax, row_const(a, 0.3275911, n, "p"), n, "px");
        const int u1 = vx(VxmOp::kAdd, u, row_const(a, 1.0, n, "one"), n, "1px");
        const int r = vx(VxmOp::kRsqrt, u1, -1, n, "rs");
        const int t = vx(VxmOp::kMul, r, r, n, "t");
        const double coef[] = {1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592};
        int q = vx(VxmOp::kMul, t, row_const(a, coef[0], n, "a5"), n, "q5");
        for (int i = 1; i < 5; ++i) {
          q = vx(VxmOp::kAdd, q, row_const(a, coef[i], n, "a" + std::to_string(5 - i)), n,
                 "s" + std::to_string(i));
          q = vx(VxmOp::kMul, q, t, n, "q" + std::to_string(i));
        }
        const int x2 = vx(VxmOp::kMul, a, a, n, "x2");
        const int e = vx(VxmOp::kExp, vx(VxmOp::kNeg, x2, -1, n, "nx2"), -1, n, "e");
        const int qe = vx(VxmOp::kMul, q, e, n, "qe");
        const int mag = vx(VxmOp::kSub, row_const(a, 1.0, n, "one1"), qe, n, "mag");
        const int neg = cmp(VxmOp::kCmpLt, a, row_const(a, 0.0, n, "zero"), n, "negative");
        const int signed_ = sel(neg, vx(VxmOp::kNeg, mag, -1, n, "nmag"), mag, n, "as");
        // Below |x| = 0.5 the series (2/sqrt(pi)) x sum (-x^2)^n / (n! (2n + 1)), eight terms
        // in Horner form: the formula above loses digits there (1 - q e cancels).
        const double series[] = {-1.0 / 75600, 1.0 / 9360, -1.0 / 1320, 1.0 / 216,
                                 -1.0 / 42,    1.0 / 10,   -1.0 / 3,    1.0};
        int ps = row_const(a, series[0], n, "c7");
        for (int i = 1; i < 8; ++i)
          ps = vx(VxmOp::kAdd, vx(VxmOp::kMul, ps, x2, n, "h" + std::to_string(i)),
                  row_const(a, series[i], n, "c" + std::to_string(7 - i)), n,
                  "p" + std::to_string(i));
        const int small =
            vx(VxmOp::kMul, vx(VxmOp::kMul, a, row_const(a, 1.1283791670955126, n, "c"), n, "cx"),
               ps, n, "series");
        const int tiny = cmp(VxmOp::kCmpLt, ax, row_const(a, 0.5, n, "cut"), n, "near0");
        y = sel(tiny, small, signed_, n, "erf");
      }
      const auto& yshape = k_.tensors[static_cast<std::size_t>(y)].shape;
      const int out = output(n, dt, yshape);
      narrow_into(y, dt, out, n);
      k_.tensors[static_cast<std::size_t>(out)].clean =
          k_.tensors[static_cast<std::size_t>(y)].clean;
      return true;
    }

    if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
      const int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
      const std::vector<std::int64_t> in = k_.tensors[static_cast<std::size_t>(t)].shape;
      std::vector<std::int64_t> out;
      if (op == "Reshape") {
        no_attrs(n, {"allowzero"});
        const Attr* az = n.attr("allowzero");
        const auto target = const_ints(n, 1);
        if (!target) throw InputError(g_.where(n), "needs its shape input");
        std::int64_t known = 1;
        int infer = -1;
        for (std::size_t i = 0; i < target->size(); ++i) {
          std::int64_t d = (*target)[i];
          if (d == 0 && !(az && az->i)) {
            if (i >= in.size())
              throw InputError(g_.where(n), "0 copies a dimension that does not exist");
            d = in[i];
          }
          if (d == -1) {
            if (infer >= 0) throw InputError(g_.where(n), "more than one -1 in the shape");
            infer = static_cast<int>(i);
            out.push_back(1);
            continue;
          }
          out.push_back(d);
          known *= d;
        }
        std::int64_t total = 1;
        for (auto d : in)
          total *= d;
        if (infer >= 0) out[static_cast<std::size_t>(infer)] = known ? total / known : 0;
      } else if (op == "Flatten") {
        no_attrs(n, {"axis"});
        const Attr* ax = n.attr("axis");
        const std::int64_t axis = norm_axis(ax ? ax->i : 1, in.size());
        std::int64_t a = 1, b = 1;
        for (std::size_t i = 0; i < in.size(); ++i)
          (static_cast<std::int64_t>(i) < axis ? a : b) *= in[i];
        out = {a, b};
      } else {
        no_attrs(n, {"axes"});
        std::vector<std::int64_t> axes;
        if (const Attr* at = n.attr("axes"))
          axes = at->ints;
        else if (auto c = const_ints(n, 1))
          axes = *c;
        const std::size_t rank = op == "Squeeze" ? in.size() : in.size() + axes.size();
        for (auto& a : axes)
          a = norm_axis(a, rank);
        if (op == "Squeeze") {
          for (std::size_t i = 0; i < in.size(); ++i) {
            const bool listed =
                std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(i)) != axes.end();
            if ((axes.empty() && in[i] == 1) || listed) {
              if (in[i] != 1) throw InputError(g_.where(n), "squeezes a dimension that is not 1");
              continue;
            }
            out.push_back(in[i]);
          }
        } else {
          std::size_t k = 0;
          for (std::size_t i = 0; i < rank; ++i)
            if (std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(i)) != axes.end())
              out.push_back(1);
            else
              out.push_back(in[k++]);
        }
      }
      reshape_to(n, t, out);
      return true;
    }

    if (op == "ReduceSum" || op == "ReduceMean") {
      // The last axis on the MXM (a product with ones), leading axes as chains of VXM additions
      // of row blocks; sums in fp32 (int32 for int8), the node's type at the end.
      no_attrs(n, {"axes", "keepdims", "noop_with_empty_axes"});
      const int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
      const KTensor kt = meta(t);
      std::vector<std::int64_t> axes;
      if (const Attr* at = n.attr("axes"))
        axes = at->ints;
      else if (auto c = const_ints(n, 1))
        axes = *c;
      const Attr* kd = n.attr("keepdims");
      const Attr* noop = n.attr("noop_with_empty_axes");
      const bool keep = !kd || kd->i != 0;
      const std::size_t rank = kt.shape.size();
      if (axes.empty() && !(noop && noop->i))
        for (std::size_t i = 0; i < rank; ++i)
          axes.push_back(static_cast<std::int64_t>(i));
      for (auto& a : axes)
        a = norm_axis(a, rank);
      std::sort(axes.begin(), axes.end());
      axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
      if (kt.dtype == DType::kI8 && op == "ReduceMean")
        throw InputError(g_.where(n), "an integer mean is not supported");
      const bool i8 = kt.dtype == DType::kI8;
      int y = i8 ? t : widen(t, n);
      std::int64_t count = 1;
      for (auto it = axes.rbegin(); it != axes.rend(); ++it) {
        count *= kt.shape[static_cast<std::size_t>(*it)];
        y = *it == static_cast<std::int64_t>(rank) - 1 ? sum_last(y, n) : sum_leading(y, *it, n);
      }
      std::vector<std::int64_t> shape = kt.shape;
      for (auto a : axes)
        shape[static_cast<std::size_t>(a)] = 1;
      if (!keep) {
        std::vector<std::int64_t> kept;
        for (std::size_t i = 0; i < rank; ++i)
          if (!std::binary_search(axes.begin(), axes.end(), static_cast<std::int64_t>(i)))
            kept.push_back(shape[i]);
        const bool last_reduced = rank && std::binary_search(axes.begin(), axes.end(),
                                                             static_cast<std::int64_t>(rank) - 1);
        if (last_reduced && !kept.empty())
          throw InputError(g_.where(n),
                           "keepdims = 0 over the last axis moves the sums into "
                           "lanes, which is not supported yet");
        shape = kept;
      }
      if (read_by_allreduce(n) && !i8) {  // summed over chips before the node's type
        y = all_reduce(y, n);
        reduced_in_product_.insert(n.outputs[0]);
      }
      if (op == "ReduceMean")
        y = vx(VxmOp::kMul, y,
               splat(n.name + "/1_N", DType::kFp32, 1.0 / static_cast<double>(count), {1}), n,
               "mean");
      const DType rt = i8 ? DType::kI32 : kt.dtype;
      const int out = output(n, rt, shape);
      if (rt == DType::kI32 || rt == DType::kFp32)
        step(VxmOp::kMov, rt, y, -1, out, g_.where(n));
      else
        cast(DType::kFp32, rt, y, out, g_.where(n));
      return true;
    }

    if (op == "LayerNormalization") {
      no_attrs(n, {"axis", "epsilon", "stash_type"});
      const Attr* ax = n.attr("axis");
      const Attr* ep = n.attr("epsilon");
      int x0 = float_input(n, 0);
      const KTensor korig = meta(x0);
      const std::size_t rank = korig.shape.size();
      const std::int64_t axis = ax ? norm_axis(ax->i, rank) : static_cast<std::int64_t>(rank) - 1;
      // Several trailing axes: normalise rows of their product (a relayout), then back.
      std::vector<std::int64_t> flat;
      if (rank && axis < static_cast<std::int64_t>(rank) - 1) {
        std::int64_t lead = 1, trail = 1;
        for (std::size_t i = 0; i < rank; ++i)
          (static_cast<std::int64_t>(i) < axis ? lead : trail) *= korig.shape[i];
        flat = {lead, trail};
        x0 = reshaped(x0, flat, n, n.name + "/rows");
      }
      const KTensor kx = meta(x0);

      const double eps = ep ? ep->f : 1e-5;
      const std::int64_t c = kx.cols();
      const int x = widen(x0, n);
      const int mean =
          vx(VxmOp::kMul, sum_last(x, n),
             splat(n.name + "/1_C", DType::kFp32, 1.0 / static_cast<double>(c), {1}), n, "mean");
      const int d = vx(VxmOp::kSub, x, mean, n, "centred");
      const int var =
          vx(VxmOp::kMul, sum_last(vx(VxmOp::kMul, d, d, n, "sq"), n),
             splat(n.name + "/1_C2", DType::kFp32, 1.0 / static_cast<double>(c), {1}), n, "var");
      const int r =
          vx(VxmOp::kRsqrt,
             vx(VxmOp::kAdd, var, splat(n.name + "/eps", DType::kFp32, eps, {1}), n, "var_eps"), -1,
             n, "inv_std");
      int y = vx(VxmOp::kMul, d, r, n, "normed");
      auto param = [&](std::size_t i) {  // scale and bias over the normalised axes
        int p = widen(tensor(n.inputs[i], &n), n);
        if (!flat.empty()) p = reshaped(p, {flat[1]}, n, n.name + "/param");
        return p;
      };
      if (n.inputs.size() > 1 && n.inputs[1] >= 0) y = vx(VxmOp::kMul, y, param(1), n, "scaled");
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) y = vx(VxmOp::kAdd, y, param(2), n, "biased");
      if (!flat.empty()) y = reshaped(y, korig.shape, n, n.name + "/unflat");
      const int out = output(n, korig.dtype, korig.shape);
      narrow_into(y, korig.dtype, out, n);
      // Optional outputs: the mean and 1/sqrt(var + eps), one per row (stash_type fp32).
      std::vector<std::int64_t> stat = korig.shape;
      for (std::size_t i = static_cast<std::size_t>(std::max<std::int64_t>(axis, 0)); i < rank; ++i)
        stat[i] = 1;
      for (std::size_t i = 1; i < n.outputs.size() && i < 3; ++i) {
        const int o = n.outputs[i];
        if (o < 0) continue;
        const Value& v = g_.values[static_cast<std::size_t>(o)];
        const int t = add_tensor(v.name, DType::kFp32, stat, KTensor::Role::kTemp, false);
        tensor_of_[static_cast<std::size_t>(o)] = t;
        step(VxmOp::kMov, DType::kFp32, i == 1 ? mean : r, -1, t, g_.where(n));
      }
      return true;
    }
    return false;
  }

  // t itself when its padding lanes are zero, else a copy with them cleared (an AND with a mask
  // of the columns, on the integer type of the element's width).
  int clean(int t, const Node& n) {
    const KTensor kt = meta(t);
    if (kt.clean) return t;
    const int bytes = isa::dtype_bytes(kt.dtype);
    const DType it = bytes == 1 ? DType::kI8 : bytes == 2 ? DType::kI16 : DType::kI32;
    const int mask = splat(kt.name + "/columns", it, -1.0, {kt.cols()});
    const int out = add_tensor(kt.name + "/clean", kt.dtype, kt.shape, KTensor::Role::kTemp);
    step(VxmOp::kAnd, it, t, fit(mask, kt.shape, n), out, g_.where(n));
    k_.tensors[static_cast<std::size_t>(out)].clean = true;
    return out;
  }

  // x [..., 1] as x [..., cols]: the product of x's one-lane rows with a row of ones on the MXM
  // (exact for fp16 and int8; fp32 is split into two fp16 parts, hi + lo, summed once in fp32).
  int lane_broadcast(int t, std::int64_t cols, const Node& n) {
    t = clean(t, n);
    const KTensor kt = meta(t);
    std::vector<std::int64_t> shape = kt.shape;
    if (shape.empty()) shape = {1};
    shape.back() = cols;
    const std::vector<std::int64_t> xs = {kt.rows(), 1};
    if (kt.dtype != DType::kFp32 && kt.dtype != DType::kFp16 && kt.dtype != DType::kI8)
      throw InputError(g_.where(n), "broadcasting '" + kt.name +
                                        "' across lanes needs int8, fp16 "
                                        "or fp32 (it is " +
                                        isa::to_string(kt.dtype) + ")");
    if (cols > k_.mxm_cols && k_.mxm_cols != k_.lanes)
      throw InputError(g_.where(n), "broadcast of '" + kt.name + "' to " + std::to_string(cols) +
                                        " lanes is wider than one MXM plane");
    const DType wt = kt.dtype == DType::kI8 ? DType::kI8 : DType::kFp16;
    const int ones = splat(kt.name + "/ones", wt, 1.0, {1, cols});
    std::vector<std::pair<int, int>> passes;
    if (kt.dtype == DType::kFp32) {
      const auto [h, l] = split_fp16(t, n, false);
      passes = {{h, ones}, {l, ones}};
    } else {
      passes = {{t, ones}};
    }
    const DType acc = kt.dtype == DType::kI8 ? DType::kI32 : DType::kFp32;
    const int y = add_tensor(kt.name + "/lanes", acc, shape, KTensor::Role::kTemp);
    for (std::int64_t r0 = 0; r0 < kt.rows(); r0 += k_.mxm_accumulators)
      for (std::int64_t tn = 0; tn * k_.mxm_cols < cols; ++tn) {
        KStep s;
        s.kind = KStep::Kind::kMatMul;
        s.mm_type = wt;
        s.m = std::min<std::int64_t>(k_.mxm_accumulators, kt.rows() - r0);
        s.d = y;
        s.d_row = r0;
        s.d_tile = tn;
        s.w_block = 1;
        for (const auto& [x, w] : passes) {
          KPass p;
          p.x = x;
          p.w = w;
          p.x_row = r0;
          p.w_tile = tn;
          p.k = 1;
          s.passes.push_back(p);
        }
        s.origin = g_.where(n);
        k_.steps.push_back(std::move(s));
      }
    if (acc == kt.dtype) return y;
    const int out = add_tensor(kt.name + "/lanes." + isa::to_string(kt.dtype), kt.dtype, shape,
                               KTensor::Role::kTemp);
    cast(acc, kt.dtype, y, out, g_.where(n));
    return out;
  }

  // A constant's transpose (the last two dimensions), computed on the host.
  int transposed_constant(int t, const Node& n) {
    const KTensor src = meta(t);
    if (src.role != KTensor::Role::kConstant) return transpose_last2(t, n);
    if (src.shape.size() != 2) throw InputError(g_.where(n), "'" + src.name + "' is not 2-D");
    const std::int64_t r = src.shape[0], c = src.shape[1];
    const auto bytes = static_cast<std::size_t>(isa::dtype_bytes(src.dtype));
    const auto& in = data_of(t);
    std::vector<std::uint8_t> data(in.size());
    for (std::int64_t i = 0; i < r; ++i)
      for (std::int64_t j = 0; j < c; ++j)
        std::memcpy(&data[static_cast<std::size_t>(j * r + i) * bytes],
                    &in[static_cast<std::size_t>(i * c + j) * bytes], bytes);
    const int out = add_tensor(src.name + "/T", src.dtype, {c, r}, KTensor::Role::kConstant);
    k_.tensors[static_cast<std::size_t>(out)].data = std::move(data);
    return out;
  }

  // fp32 x = hi + lo in fp16 (hi = fp16(x), lo = fp16(x - hi)): on the host for constants, else
  // as VXM steps (cast, cast back, subtract, cast).
  std::pair<int, int> split_fp16(int t, const Node& n, bool weights) {
    if (auto it = splits_.find({t, weights}); it != splits_.end()) return it->second;
    const auto parts = split_fp16_new(t, n, weights);
    splits_[{t, weights}] = parts;
    return parts;
  }
  std::pair<int, int> split_fp16_new(int t, const Node& n, bool weights) {
    const KTensor src = meta(t);
    if (src.role == KTensor::Role::kConstant) {
      const auto count = static_cast<std::size_t>(src.elements());
      const auto& in = data_of(t);
      std::vector<std::uint8_t> h(count * 2), l(count * 2);
      for (std::size_t i = 0; i < count; ++i) {
        float x;
        std::memcpy(&x, &in[i * 4], 4);
        const std::uint16_t xh = func::fp32_to_fp16(x);
        const std::uint16_t xl = func::fp32_to_fp16(x - func::fp16_to_fp32(xh));
        h[2 * i] = static_cast<std::uint8_t>(xh);
        h[2 * i + 1] = static_cast<std::uint8_t>(xh >> 8);
        l[2 * i] = static_cast<std::uint8_t>(xl);
        l[2 * i + 1] = static_cast<std::uint8_t>(xl >> 8);
      }
      const int hi =
          add_tensor(src.name + "/hi", DType::kFp16, src.shape, KTensor::Role::kConstant);
      k_.tensors[static_cast<std::size_t>(hi)].data = std::move(h);
      const int lo =
          add_tensor(src.name + "/lo", DType::kFp16, src.shape, KTensor::Role::kConstant);
      k_.tensors[static_cast<std::size_t>(lo)].data = std::move(l);
      return {hi, lo};
    }
    const int hi = add_tensor(src.name + "/hi", DType::kFp16, src.shape, KTensor::Role::kTemp);
    const int back = add_tensor(src.name + "/hi32", DType::kFp32, src.shape, KTensor::Role::kTemp);
    const int diff = add_tensor(src.name + "/rest", DType::kFp32, src.shape, KTensor::Role::kTemp);
    const int lo = add_tensor(src.name + "/lo", DType::kFp16, src.shape, KTensor::Role::kTemp);
    cast(DType::kFp32, DType::kFp16, t, hi, g_.where(n));
    cast(DType::kFp16, DType::kFp32, hi, back, g_.where(n));
    step(VxmOp::kSub, DType::kFp32, t, back, diff, g_.where(n));
    cast(DType::kFp32, DType::kFp16, diff, lo, g_.where(n));
    if (!weights) return {hi, lo};
    // MXM weights live in their own layout: the hi part the VXM reads again gets a copy there.
    const int wh = add_tensor(src.name + "/hi.w", DType::kFp16, src.shape, KTensor::Role::kTemp);
    step(VxmOp::kMov, DType::kFp16, hi, -1, wh, g_.where(n));
    return {wh, lo};
  }

  void cast(DType from, DType to, int a, int d, const std::string& origin) {
    KStep s;
    s.args.op = VxmOp::kCast;
    s.args.type = from;
    s.args.to = to;
    s.a = a;
    s.d = d;
    s.origin = origin;
    k_.steps.push_back(std::move(s));
  }

  // The (activations, weights) pairs of one product's passes: the operands themselves (fp16),
  // or fp32 as three fp16 products hi.hi + hi.lo + lo.hi (one, hi.hi, at precision fp16).
  std::vector<std::pair<int, int>> product_parts(int x, int w, DType dt, const Node& n) {
    if (dt == DType::kFp16) return {{x, w}};
    const auto [xh, xl] = split_fp16(x, n, false);
    const auto [wh, wl] = split_fp16(w, n, true);
    if (opt_.precision == Precision::kFp16) return {{xh, wh}};
    return {{xh, wh}, {xh, wl}, {xl, wh}};
  }
  // An MXM step (passes to be added) writing rows d_row .. d_row + m - 1, column tile tn, of d.
  // Asks for tensor t's rows in chunks of `rows` on slices of their own (KTensor::chunk_rows):
  // the tensor that owns the storage, unless something else already placed it otherwise.
  void chunk_by(int t, std::int64_t rows) {
    KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
    KTensor& root = kt.view_of >= 0 ? k_.tensors[static_cast<std::size_t>(kt.view_of)] : kt;
    if (root.spread16 || root.role == KTensor::Role::kConstant ||
        root.cols() != kt.cols())  // a view with other rows: its blocks are not the root's
      return;
    if (root.chunk_rows == 0 || rows < root.chunk_rows) root.chunk_rows = rows;
  }

  // Output rows per product step: at most the accumulators hold; when a product has fewer steps
  // than there are planes (`others` steps per block of rows: column tiles, batches), smaller
  // blocks, so that every plane streams. Each block loads the weights again, and the planes'
  // loads share the weights' slices, so a block streams at least as many rows as one load takes
  // cycles (a plane's rows, 16 a cycle): fewer gain less than the extra load costs.
  std::int64_t row_block(std::int64_t rows, std::int64_t others) const {
    const std::int64_t acc = k_.mxm_accumulators, planes = arch_.chip.mxm.planes;
    const std::int64_t shortest = std::max<std::int64_t>(1, k_.mxm_rows / 16);
    const std::int64_t b0 = (rows + acc - 1) / acc;
    const std::int64_t rounds = (b0 * others + planes - 1) / planes;
    const std::int64_t b = std::max(b0, std::min(rounds * planes / others, rows / shortest));
    return (rows + b - 1) / b;
  }

  KStep product_step(int d, std::int64_t m, std::int64_t d_row, std::int64_t tn,
                     std::int64_t w_block, const Node& n, DType mm = DType::kFp16) const {
    KStep s;
    s.kind = KStep::Kind::kMatMul;
    s.mm_type = mm;
    s.m = m;
    s.d = d;
    s.d_row = d_row;
    s.d_tile = tn;
    s.w_block = w_block;
    s.origin = g_.where(n);
    return s;
  }

  // --- int8 products: symmetric scales, weights per output column, activations per tensor.

  // Whether the product of node n with activation tensor x runs in int8 (x is recorded for
  // calibration either way).
  bool quantized(const Node& n, int x) {
    k_.calibration.push_back({n.name, x});
    return opt_.precision == Precision::kInt8;
  }
  // max |x| / 127 from calibration (1 for an all-zero activation).
  double activation_scale(const Node& n) const {
    auto it = opt_.activation_max.find(n.name);
    if (it == opt_.activation_max.end())
      throw std::logic_error("int8 lowering: no calibration for node '" + n.name + "'");
    return it->second > 0 ? it->second / 127.0 : 1.0;
  }
  // x as int8: round(x / scale), saturated (VXM: a product in fp32, then a cast).
  // (fp16 activations are scaled in fp16: |x / s| <= 127 keeps 4 fraction bits, and the cast
  // rounds once more; one VXM pass fewer than widening first.)
  int quantize_activations(int x, double scale, const Node& n) {
    const KTensor kx = meta(x);
    const DType wt =
        kx.dtype == DType::kFp16 && 1.0 / scale < 60000.0 ? DType::kFp16 : DType::kFp32;
    const int xf = wt == DType::kFp16 ? x : widen(x, n);
    const int xs =
        vx(VxmOp::kMul, xf, splat(n.name + "/1_sx", wt, 1.0 / scale, {kx.cols()}), n, "x_scaled");
    const int q = add_tensor(n.name + "/x_q", DType::kI8, kx.shape, KTensor::Role::kTemp);
    cast(wt, DType::kI8, xs, q, g_.where(n));
    k_.tensors[static_cast<std::size_t>(q)].clean = k_.tensors[static_cast<std::size_t>(xs)].clean;
    return q;
  }
  // Constant weights [batches x K, N] as int8, each column of each batch scaled by its largest
  // magnitude / 127 (scales out, batch-major).
  int quantize_weights(const Node& n, int w, std::int64_t batches, std::int64_t kk, std::int64_t nn,
                       std::vector<double>& scales) {
    const KTensor kw = meta(w);
    const KTensor& src = k_.tensors[static_cast<std::size_t>(w)];
    scales.assign(static_cast<std::size_t>(batches * nn), 0.0);
    if (auto it = opt_.weight_max.find(n.name); it != opt_.weight_max.end()) {
      if (it->second.size() != scales.size())
        throw std::logic_error("int8 lowering: " + std::to_string(it->second.size()) +
                               " weight scales given for node '" + n.name + "', which has " +
                               std::to_string(scales.size()));
      scales = it->second;
    } else {
      for (std::int64_t bi = 0; bi < batches; ++bi)
        for (std::int64_t r = 0; r < kk; ++r)
          for (std::int64_t c = 0; c < nn; ++c) {
            double& s = scales[static_cast<std::size_t>(bi * nn + c)];
            s = std::max(s, std::fabs(element_of(src, (bi * kk + r) * nn + c)));
          }
    }
    for (double& s : scales)
      s = s > 0 ? s / 127.0 : 1.0;
    std::vector<std::uint8_t> data(static_cast<std::size_t>(batches * kk * nn));
    for (std::int64_t bi = 0; bi < batches; ++bi)
      for (std::int64_t r = 0; r < kk; ++r)
        for (std::int64_t c = 0; c < nn; ++c) {
          const std::int64_t e = (bi * kk + r) * nn + c;
          const double q =
              std::nearbyint(element_of(src, e) / scales[static_cast<std::size_t>(bi * nn + c)]);
          data[static_cast<std::size_t>(e)] =
              static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(q, -127.0, 127.0)));
        }
    const int q = add_tensor(kw.name + "/q", DType::kI8, kw.shape, KTensor::Role::kConstant);
    k_.tensors[static_cast<std::size_t>(q)].data = std::move(data);
    return q;
  }

  // Y = alpha A' B' (+ beta C): MXM passes per block of rows, then VXM steps for the rest.
  // (may_quantize false: never int8, for products that must stay exact, such as a one-hot
  // lookup.)
  void matmul(const Node& n, int a, int b, bool ta, bool tb, float alpha, int c, float beta,
              bool may_quantize = true) {
    if (ta) a = transposed_constant(a, n);
    if (tb) b = transposed_constant(b, n);
    a = clean(a, n);
    b = clean(b, n);
    const KTensor ka = meta(a);
    const KTensor kb = meta(b);
    const DType dt = ka.dtype;
    if (kb.dtype != dt) throw InputError(g_.where(n), "inputs have different types");
    if (dt != DType::kFp32 && dt != DType::kFp16)
      throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                        " is not supported (fp32 or fp16)");
    // numpy matmul shapes: 1-D operands gain a dimension that the result drops.
    std::vector<std::int64_t> sa = ka.shape, sb = kb.shape;
    if (sa.empty() || sb.empty()) throw InputError(g_.where(n), "scalar operands are not allowed");
    const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
    if (a1) sa.insert(sa.begin(), 1);
    if (b1) sb.push_back(1);
    const std::int64_t m = sa[sa.size() - 2], kk = sa.back(), nn = sb.back();
    if (sb[sb.size() - 2] != kk)
      throw InputError(g_.where(n), "inner dimensions differ: " + shape_str(ka.shape) + " x " +
                                        shape_str(kb.shape));
    std::int64_t batch_a = 1, batch_b = 1;
    for (std::size_t i = 0; i + 2 < sa.size(); ++i)
      batch_a *= sa[i];
    for (std::size_t i = 0; i + 2 < sb.size(); ++i)
      batch_b *= sb[i];
    std::vector<std::int64_t> out_shape;
    if (batch_b == 1) {
      out_shape.assign(sa.begin(), sa.end() - 1);
      out_shape.push_back(nn);
    } else if (batch_a == 1) {  // one A for every batch of B
      out_shape.assign(sb.begin(), sb.end() - 2);
      out_shape.push_back(m);
      out_shape.push_back(nn);
    } else {
      if (sa.size() != sb.size() || !std::equal(sa.begin(), sa.end() - 2, sb.begin()))
        throw InputError(g_.where(n), "batch dimensions " + shape_str(ka.shape) + " x " +
                                          shape_str(kb.shape) +
                                          " must match exactly, or A have one batch (other "
                                          "broadcasts are not supported yet)");
      out_shape.assign(sa.begin(), sa.end() - 1);
      out_shape.push_back(nn);
    }
    if (a1) out_shape.erase(out_shape.end() - 2);
    if (b1) out_shape.pop_back();
    if ((kk > k_.mxm_rows || nn > k_.mxm_cols) &&
        (k_.mxm_rows != k_.lanes || k_.mxm_cols != k_.lanes))
      throw InputError(g_.where(n),
                       "a product of K = " + std::to_string(kk) + ", N = " + std::to_string(nn) +
                           " needs tiles, which need MXM planes "
                           "as wide as the vector (" +
                           std::to_string(k_.mxm_rows) + " x " + std::to_string(k_.mxm_cols) +
                           " planes, " + std::to_string(k_.lanes) + " lanes)");
    // Operands in the MXM's types: int8 for constant weights when asked, else fp16 parts.
    const bool int8 = may_quantize && kb.role == KTensor::Role::kConstant && quantized(n, a);
    std::vector<std::pair<int, int>> passes;
    std::vector<double> w_scale;  // int8: per (batch of B, column)
    double x_scale = 1;
    if (int8) {
      x_scale = activation_scale(n);
      const int wq = quantize_weights(n, b, batch_b, kk, nn, w_scale);
      passes = {{quantize_activations(a, x_scale, n), wq}};
    } else {
      passes = product_parts(a, b, dt, n);
    }
    // The sum in fp32 (int32 for int8, scaled back); the node's type and the alpha/beta terms
    // follow on the VXM.
    const bool summed_over_chips = read_by_allreduce(n);
    const bool more = dt != DType::kFp32 || alpha != 1.0f || c >= 0 || int8 || summed_over_chips;
    int y = int8   ? add_tensor(n.name + "/sum", DType::kI32, out_shape, KTensor::Role::kTemp)
            : more ? add_tensor(n.name + "/product", DType::kFp32, out_shape, KTensor::Role::kTemp)
                   : output(n, DType::kFp32, out_shape);
    // Tiles: K by the plane's rows, N by its columns; every K tile and split is one pass.
    const std::int64_t tk_n = (kk + k_.mxm_rows - 1) / k_.mxm_rows;
    const std::int64_t tn_n = (nn + k_.mxm_cols - 1) / k_.mxm_cols;
    const std::int64_t batches = std::max(batch_a, batch_b);
    // Blocks of rows that several planes may stream at once: their own slices.
    const std::int64_t blk = row_block(m, tn_n * batches);
    if (m > blk) {
      chunk_by(y, blk);
      for (const auto& [x, w] : passes) {
        (void)w;
        chunk_by(x, blk);
      }
    }
    // Column tile outer, blocks of rows inner: the planes, which take consecutive steps, then
    // stream different blocks of rows (other slices) through the same weights.
    for (std::int64_t bi = 0; bi < batches; ++bi)
      for (std::int64_t tn = 0; tn < tn_n; ++tn)
        for (std::int64_t r0 = 0; r0 < m; r0 += blk) {
          KStep s = product_step(y, std::min<std::int64_t>(blk, m - r0), bi * m + r0, tn, kk, n,
                                 int8 ? DType::kI8 : DType::kFp16);
          for (std::int64_t tk = 0; tk < tk_n; ++tk)
            for (const auto& [x, w] : passes) {
              KPass p;
              p.x = x;
              p.w = w;
              p.x_row = (batch_a == 1 ? 0 : bi * m) + r0;
              p.w_row = (batch_b == 1 ? 0 : bi * kk) + tk * k_.mxm_rows;
              p.x_tile = tk;
              p.w_tile = tn;
              p.k = std::min<std::int64_t>(k_.mxm_rows, kk - tk * k_.mxm_rows);
              s.passes.push_back(p);
            }
          s.origin = g_.where(n);
          k_.steps.push_back(std::move(s));
        }
    // A product whose only reader sums it over chips: its sums are summed before anything else
    // (in int8 the int32 sums, exact, then scaled once, as one chip would).
    if (summed_over_chips) {
      y = all_reduce(y, n);
      reduced_in_product_.insert(n.outputs[0]);
    }
    if (int8) {  // back to fp32: the sums times x_scale w_scale[batch, column]
      std::vector<std::int64_t> sshape = {nn};
      if (batch_b > 1) {
        sshape.assign(out_shape.begin(), out_shape.end());
        sshape[sshape.size() - 2] = 1;
      }
      const int sc =
          add_tensor(n.name + "/dequant", DType::kFp32, sshape, KTensor::Role::kConstant);
      for (double ws : w_scale) {
        const std::uint32_t bits = func::float_bits(static_cast<float>(x_scale * ws));
        for (int k = 0; k < 4; ++k)
          k_.tensors[static_cast<std::size_t>(sc)].data.push_back(
              static_cast<std::uint8_t>(bits >> (8 * k)));
      }
      const int yf = add_tensor(n.name + "/sum_f", DType::kFp32, out_shape, KTensor::Role::kTemp);
      cast(DType::kI32, DType::kFp32, y, yf, g_.where(n));
      y = vx(VxmOp::kMul, yf, sc, n, "product");
    }
    if (alpha != 1.0f) {
      const int scaled =
          add_tensor(n.name + "/scaled", DType::kFp32, out_shape, KTensor::Role::kTemp);
      const int al = splat(n.name + "/alpha", DType::kFp32, alpha, {nn});
      step(VxmOp::kMul, DType::kFp32, y, al, scaled, g_.where(n));
      y = scaled;
    }
    if (c >= 0) {
      const KTensor kc = meta(c);
      if (kc.dtype != dt) throw InputError(g_.where(n), "C has another type than A and B");
      if (!broadcast(kc.shape, out_shape) || *broadcast(kc.shape, out_shape) != out_shape)
        throw InputError(g_.where(n), "C " + shape_str(kc.shape) + " does not broadcast to " +
                                          shape_str(out_shape));
      int cc = c;
      if (dt == DType::kFp16) {
        if (kc.role != KTensor::Role::kConstant)
          throw InputError(g_.where(n), "a computed fp16 C is not supported yet");
      }
      if (kc.role == KTensor::Role::kConstant && (beta != 1.0f || dt == DType::kFp16)) {
        // Fold beta (and the widening to fp32) into the constant on the host.
        const auto count = static_cast<std::size_t>(kc.elements());
        const auto& in = data_of(c);
        std::vector<std::uint8_t> data(count * 4);
        for (std::size_t i = 0; i < count; ++i) {
          float x;
          if (dt == DType::kFp16)
            x = func::fp16_to_fp32(static_cast<std::uint16_t>(in[2 * i] | (in[2 * i + 1] << 8)));
          else
            std::memcpy(&x, &in[i * 4], 4);
          x *= beta;
          std::memcpy(&data[i * 4], &x, 4);
        }
        const int f =
            add_tensor(kc.name + "/beta", DType::kFp32, kc.shape, KTensor::Role::kConstant);
        k_.tensors[static_cast<std::size_t>(f)].data = std::move(data);
        cc = f;
      } else if (beta != 1.0f) {
        const int scaled =
            add_tensor(kc.name + "/beta", DType::kFp32, kc.shape, KTensor::Role::kTemp);
        const int be = splat(n.name + "/beta", DType::kFp32, beta, {kc.cols()});
        step(VxmOp::kMul, DType::kFp32, c, fit(be, kc.shape, n), scaled, g_.where(n));
        cc = scaled;
      }
      const int sum = dt == DType::kFp32 ? output(n, DType::kFp32, out_shape)
                                         : add_tensor(n.name + "/sum", DType::kFp32, out_shape,
                                                      KTensor::Role::kTemp);
      step(VxmOp::kAdd, DType::kFp32, y, fit(cc, out_shape, n), sum, g_.where(n));
      y = sum;
    }
    if (dt == DType::kFp16) {
      cast(DType::kFp32, DType::kFp16, y, output(n, DType::kFp16, out_shape), g_.where(n));
    } else if ((alpha != 1.0f || int8) && c < 0) {
      step(VxmOp::kMov, DType::kFp32, y, -1, output(n, DType::kFp32, out_shape), g_.where(n));
    }
  }

  const Graph& g_;
  const arch::Arch& arch_;
  const LowerOptions& opt_;
  Kernels k_;
  std::vector<int> tensor_of_;  // graph value -> kernel tensor
  std::vector<int> cl_of_;      // graph value -> its channels-last kernel tensor, or -1
  std::vector<bool> cl_t_;      // graph value -> its channels-last tensor has H and W swapped
  std::vector<int> uses_;       // graph value -> how many node inputs read it
  // Graph values whose AllReduce an int8 product already did on its int32 sums.
  std::set<int> reduced_in_product_;
  std::set<const Node*> folded_;  // normalizations folded into a convolution
  std::set<std::string> used_names_, graph_names_;
  std::map<std::pair<int, bool>, std::pair<int, int>> splits_;  // (tensor, weights) -> (hi, lo)
};

}  // namespace

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> v;
    for (const auto& [k, unused] : binary_ops())
      v.push_back(k);
    for (const auto& [k, unused] : unary_ops())
      v.push_back(k);
    for (const char* k : {"Sigmoid",
                          "LeakyRelu",
                          "Clip",
                          "MatMul",
                          "Gemm",
                          "Div",
                          "Reciprocal",
                          "Sqrt",
                          "Erf",
                          "Reshape",
                          "Flatten",
                          "Squeeze",
                          "Unsqueeze",
                          "ReduceSum",
                          "ReduceMean",
                          "LayerNormalization",
                          "Softmax",
                          "Concat",
                          "Slice",
                          "Transpose",
                          "BatchNormalization",
                          "GlobalAveragePool",
                          "Cast",
                          "Conv",
                          "MaxPool",
                          "AveragePool",
                          "Gather"})
      v.push_back(k);
    std::sort(v.begin(), v.end());
    return v;
  }();
  return ops;
}

Kernels lower(const Graph& g, const arch::Arch& arch, const LowerOptions& options) {
  return Lowering(g, arch, options).run();
}

Precision parse_precision(const std::string& s, const std::string& where) {
  if (s == "model") return Precision::kModel;
  if (s == "fp32") return Precision::kFp32;
  if (s == "fp16") return Precision::kFp16;
  if (s == "int8") return Precision::kInt8;
  throw InputError(where + " " + s, "expected model, fp32, fp16 or int8");
}

}  // namespace lpu::compiler
