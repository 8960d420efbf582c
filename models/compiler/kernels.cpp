#include "compiler/kernels.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

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
  Lowering(const Graph& g, const arch::Arch& arch) : g_(g), arch_(arch) {}

  Kernels run() {
    k_.mxm_rows = arch_.chip.mxm.rows;
    k_.mxm_cols = arch_.chip.mxm.cols;
    k_.mxm_accumulators = arch_.chip.mxm.accumulators;
    k_.lanes = arch_.chip.lanes();
    tensor_of_.assign(g_.values.size(), -1);
    for (int v : g_.inputs) {
      const Value& val = g_.values[static_cast<std::size_t>(v)];
      if (val.dtype == DType::kNone)
        throw InputError(g_.source, "graph input '" + val.name +
                                        "' is an int64 or bool tensor, which the machine "
                                        "does not hold");
      tensor_of_[static_cast<std::size_t>(v)] =
          add_tensor(val.name, val.dtype, val.shape, KTensor::Role::kInput);
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
        const int c = add_tensor(val.name, kt.dtype, kt.shape, KTensor::Role::kOutput);
        step(VxmOp::kMov, k_.tensors[static_cast<std::size_t>(t)].dtype, t, -1, c,
             g_.source + ": output '" + val.name + "'");
        t = c;
      }
      k_.tensors[static_cast<std::size_t>(t)].role = KTensor::Role::kOutput;
      k_.tensors[static_cast<std::size_t>(t)].name = val.name;
      k_.outputs.push_back(t);
    }
    return std::move(k_);
  }

 private:
  int add_tensor(const std::string& name, DType dt, std::vector<std::int64_t> shape,
                 KTensor::Role role) {
    KTensor t;
    t.name = name;
    t.dtype = dt;
    t.shape = std::move(shape);
    t.role = role;
    const std::int64_t lanes = arch_.chip.lanes();
    (void)lanes;
    k_.tensors.push_back(std::move(t));
    return static_cast<int>(k_.tensors.size()) - 1;
  }

  // The kernel tensor of graph value v (constants become constant tensors on first use).
  int tensor(int v, const Node* n) {
    if (v < 0) throw InputError(n ? g_.where(*n) : g_.source, "a required input is missing");
    int& t = tensor_of_[static_cast<std::size_t>(v)];
    if (t >= 0) return t;
    const Value& val = g_.values[static_cast<std::size_t>(v)];
    if (!val.constant)
      throw InputError(n ? g_.where(*n) : g_.source,
                       "value '" + val.name + "' is used before any node produces it");
    if (val.dtype == DType::kNone)
      throw InputError(
          n ? g_.where(*n) : g_.source,
          "constant '" + val.name + "' is int64 or bool, which this operand cannot take");
    t = add_tensor(val.name, val.dtype, val.shape, KTensor::Role::kConstant);
    k_.tensors[static_cast<std::size_t>(t)].data = val.data;
    return t;
  }

  void step(VxmOp op, DType type, int a, int b, int d, const std::string& origin, int mask = -1) {
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
    if (kt.elements() == cols && (kt.shape.empty() ? 1 : kt.shape.back()) == cols) return t;
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
    if (row_only) target = {cols};
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
    const int t = add_tensor(v.name, dt, shape, KTensor::Role::kTemp);
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
    if (n.outputs.size() > 1)
      for (std::size_t i = 1; i < n.outputs.size(); ++i)
        if (n.outputs[i] >= 0)
          throw InputError(g_.where(n),
                           "optional output " + std::to_string(i) + " is not supported");
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

  // x [..., 1] as x [..., cols]: the product of x's one-lane rows with a row of ones on the MXM
  // (exact for fp16 and int8; fp32 is split into two fp16 parts, hi + lo, summed once in fp32).
  int lane_broadcast(int t, std::int64_t cols, const Node& n) {
    const KTensor kt = k_.tensors[static_cast<std::size_t>(t)];
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
    const KTensor src = k_.tensors[static_cast<std::size_t>(t)];
    if (src.role != KTensor::Role::kConstant)
      throw InputError(g_.where(n), "transposing the computed tensor '" + src.name +
                                        "' is not supported yet (only constants)");
    if (src.shape.size() != 2) throw InputError(g_.where(n), "'" + src.name + "' is not 2-D");
    const std::int64_t r = src.shape[0], c = src.shape[1];
    const int out = add_tensor(src.name + "/T", src.dtype, {c, r}, KTensor::Role::kConstant);
    KTensor& o = k_.tensors[static_cast<std::size_t>(out)];
    const auto bytes = static_cast<std::size_t>(isa::dtype_bytes(src.dtype));
    o.data.resize(src.data.size());
    for (std::int64_t i = 0; i < r; ++i)
      for (std::int64_t j = 0; j < c; ++j)
        std::memcpy(&o.data[static_cast<std::size_t>(j * r + i) * bytes],
                    &src.data[static_cast<std::size_t>(i * c + j) * bytes], bytes);
    return out;
  }

  // fp32 x = hi + lo in fp16 (hi = fp16(x), lo = fp16(x - hi)): on the host for constants, else
  // as VXM steps (cast, cast back, subtract, cast).
  std::pair<int, int> split_fp16(int t, const Node& n, bool weights) {
    const KTensor src = k_.tensors[static_cast<std::size_t>(t)];
    if (src.role == KTensor::Role::kConstant) {
      const int hi =
          add_tensor(src.name + "/hi", DType::kFp16, src.shape, KTensor::Role::kConstant);
      const int lo =
          add_tensor(src.name + "/lo", DType::kFp16, src.shape, KTensor::Role::kConstant);
      const auto count = static_cast<std::size_t>(src.elements());
      auto& h = k_.tensors[static_cast<std::size_t>(hi)].data;
      h.resize(count * 2);
      auto& l = k_.tensors[static_cast<std::size_t>(lo)].data;
      l.resize(count * 2);
      for (std::size_t i = 0; i < count; ++i) {
        float x;
        std::memcpy(&x, &src.data[i * 4], 4);
        const std::uint16_t xh = func::fp32_to_fp16(x);
        const std::uint16_t xl = func::fp32_to_fp16(x - func::fp16_to_fp32(xh));
        h[2 * i] = static_cast<std::uint8_t>(xh);
        h[2 * i + 1] = static_cast<std::uint8_t>(xh >> 8);
        l[2 * i] = static_cast<std::uint8_t>(xl);
        l[2 * i + 1] = static_cast<std::uint8_t>(xl >> 8);
      }
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

  // Y = alpha A' B' (+ beta C): MXM passes per block of rows, then VXM steps for the rest.
  void matmul(const Node& n, int a, int b, bool ta, bool tb, float alpha, int c, float beta) {
    if (ta) a = transposed_constant(a, n);
    if (tb) b = transposed_constant(b, n);
    const KTensor ka = k_.tensors[static_cast<std::size_t>(a)];
    const KTensor kb = k_.tensors[static_cast<std::size_t>(b)];
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
    } else {
      if (sa.size() != sb.size() || !std::equal(sa.begin(), sa.end() - 2, sb.begin()))
        throw InputError(g_.where(n), "batch dimensions " + shape_str(ka.shape) + " x " +
                                          shape_str(kb.shape) +
                                          " must match exactly (broadcast batches are not "
                                          "supported yet)");
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
    // Operands in the MXM's types.
    std::vector<std::pair<int, int>> passes;  // (x, w)
    if (dt == DType::kFp16) {
      passes.push_back({a, b});
    } else {
      const auto [ah, al] = split_fp16(a, n, false);
      const auto [bh, bl] = split_fp16(b, n, true);
      passes = {{ah, bh}, {ah, bl}, {al, bh}};
    }
    // The sum in fp32; the node's type and the alpha/beta terms follow on the VXM.
    const bool more = dt != DType::kFp32 || alpha != 1.0f || c >= 0;
    int y = more ? add_tensor(n.name + "/product", DType::kFp32, out_shape, KTensor::Role::kTemp)
                 : output(n, DType::kFp32, out_shape);
    // Tiles: K by the plane's rows, N by its columns; every K tile and split is one pass.
    const std::int64_t tk_n = (kk + k_.mxm_rows - 1) / k_.mxm_rows;
    const std::int64_t tn_n = (nn + k_.mxm_cols - 1) / k_.mxm_cols;
    for (std::int64_t bi = 0; bi < batch_a; ++bi)
      for (std::int64_t r0 = 0; r0 < m; r0 += k_.mxm_accumulators)
        for (std::int64_t tn = 0; tn < tn_n; ++tn) {
          KStep s;
          s.kind = KStep::Kind::kMatMul;
          s.mm_type = DType::kFp16;
          s.m = std::min<std::int64_t>(k_.mxm_accumulators, m - r0);
          s.d = y;
          s.d_row = bi * m + r0;
          s.d_tile = tn;
          s.w_block = kk;
          for (std::int64_t tk = 0; tk < tk_n; ++tk)
            for (const auto& [x, w] : passes) {
              KPass p;
              p.x = x;
              p.w = w;
              p.x_row = bi * m + r0;
              p.w_row = (batch_b == 1 ? 0 : bi * kk) + tk * k_.mxm_rows;
              p.x_tile = tk;
              p.w_tile = tn;
              p.k = std::min<std::int64_t>(k_.mxm_rows, kk - tk * k_.mxm_rows);
              s.passes.push_back(p);
            }
          s.origin = g_.where(n);
          k_.steps.push_back(std::move(s));
        }
    if (alpha != 1.0f) {
      const int scaled =
          add_tensor(n.name + "/scaled", DType::kFp32, out_shape, KTensor::Role::kTemp);
      const int al = splat(n.name + "/alpha", DType::kFp32, alpha, {nn});
      step(VxmOp::kMul, DType::kFp32, y, al, scaled, g_.where(n));
      y = scaled;
    }
    if (c >= 0) {
      const KTensor kc = k_.tensors[static_cast<std::size_t>(c)];
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
        const int f =
            add_tensor(kc.name + "/beta", DType::kFp32, kc.shape, KTensor::Role::kConstant);
        auto& data = k_.tensors[static_cast<std::size_t>(f)].data;
        const auto count = static_cast<std::size_t>(kc.elements());
        data.resize(count * 4);
        for (std::size_t i = 0; i < count; ++i) {
          float x;
          if (dt == DType::kFp16)
            x = func::fp16_to_fp32(
                static_cast<std::uint16_t>(kc.data[2 * i] | (kc.data[2 * i + 1] << 8)));
          else
            std::memcpy(&x, &kc.data[i * 4], 4);
          x *= beta;
          std::memcpy(&data[i * 4], &x, 4);
        }
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
    } else if (alpha != 1.0f && c < 0) {
      step(VxmOp::kMov, DType::kFp32, y, -1, output(n, DType::kFp32, out_shape), g_.where(n));
    }
  }

  const Graph& g_;
  const arch::Arch& arch_;
  Kernels k_;
  std::vector<int> tensor_of_;  // graph value -> kernel tensor
};

}  // namespace

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> v;
    for (const auto& [k, unused] : binary_ops())
      v.push_back(k);
    for (const auto& [k, unused] : unary_ops())
      v.push_back(k);
    for (const char* k : {"Sigmoid", "LeakyRelu", "Clip", "MatMul", "Gemm"})
      v.push_back(k);
    std::sort(v.begin(), v.end());
    return v;
  }();
  return ops;
}

Kernels lower(const Graph& g, const arch::Arch& arch) {
  return Lowering(g, arch).run();
}

}  // namespace lpu::compiler
