// The lowering driver: tensors, steps and the point-wise operators.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

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

Kernels Lowering::run() {
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
  for (const Node* n : lowering_order())
    lower(*n);
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

int Lowering::add_tensor(const std::string& name, DType dt, std::vector<std::int64_t> shape,
                         KTensor::Role role, bool internal) {
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

KTensor Lowering::meta(int t) const {
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
  m.interleave = s.interleave;
  return m;
}

int Lowering::tensor(int v, const Node* n) {
  if (v < 0) throw InputError(n ? g_.where(*n) : g_.source, "a required input is missing");
  int& t = tensor_of_[static_cast<std::size_t>(v)];
  if (t >= 0) return t;
  const Value& val = g_.values[static_cast<std::size_t>(v)];
  if (cl_of_[static_cast<std::size_t>(v)] >= 0) {
    // Only channels-last so far: the ONNX layout by a transpose.
    Node made;
    made.name = val.name + "/nchw";
    made.op = "Transpose";
    const int c = cl_compact(v, n ? *n : made);
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

void Lowering::step(VxmOp op, DType type, int a, int b, int d, const std::string& origin,
                    int mask) {
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

int Lowering::fp32_constant(const std::string& name, std::vector<std::int64_t> shape,
                            const std::vector<double>& values) {
  const int t = add_tensor(name, DType::kFp32, std::move(shape), KTensor::Role::kConstant);
  auto& data = k_.tensors[static_cast<std::size_t>(t)].data;
  data.reserve(values.size() * 4);
  for (double v : values) {
    const std::uint32_t bits = func::float_bits(static_cast<float>(v));
    for (int k = 0; k < 4; ++k)
      data.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
  }
  return t;
}

int Lowering::splat(const std::string& name, DType dt, double x, std::vector<std::int64_t> shape) {
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

int Lowering::fit(int t, const std::vector<std::int64_t>& shape, const Node& n) {
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
    throw InputError(g_.where(n), "broadcast of '" + kt.name + "' " + shape_str(kt.shape) + " to " +
                                      shape_str(shape) +
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
    target = copies > 1 ? std::vector<std::int64_t>{copies, cols} : std::vector<std::int64_t>{cols};
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

void Lowering::check_type(const Node& n, VxmOp op, DType dt) {
  if (dt == DType::kNone)
    throw InputError(g_.where(n), "int64 or bool operands are not supported on the machine");
  if (!func::vxm_supports(op, dt))
    throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                      " is not supported for this operator on the VXM");
}

int Lowering::output(const Node& n, DType dt, const std::vector<std::int64_t>& shape) {
  if (n.outputs.empty() || n.outputs[0] < 0) throw InputError(g_.where(n), "has no output");
  const Value& v = g_.values[static_cast<std::size_t>(n.outputs[0])];
  const int t = add_tensor(v.name, dt, shape, KTensor::Role::kTemp, false);
  tensor_of_[static_cast<std::size_t>(n.outputs[0])] = t;
  return t;
}

void Lowering::binary(const Node& n, VxmOp op, int a, int b, int d) {
  const KTensor& ta = k_.tensors[static_cast<std::size_t>(a)];
  const KTensor& td = k_.tensors[static_cast<std::size_t>(d)];
  const DType dt = ta.dtype;
  const std::vector<std::int64_t> shape = td.shape;
  const int fa = fit(a, shape, n);
  const int fb = fit(b, shape, n);
  step(op, dt, fa, fb, d, g_.where(n));
}

std::vector<const Node*> Lowering::lowering_order() const {
  // A shortcut branch first: a convolution whose result (or that of the BatchNormalization
  // folded into it) only an Add reads (a residual block's projection) goes right before the first
  // node that reads its input. Its steps then come before the long branch's in program order, so
  // the scheduler, which places steps in that order, runs it while the long branch's first products
  // stream, not behind its last epilogue. Every other node keeps its place.
  std::vector<const Node*> order;
  std::vector<bool> early(g_.nodes.size(), false);
  for (std::size_t i = 0; i < g_.nodes.size(); ++i) {
    const Node& n = g_.nodes[i];
    if (n.op != "Conv" || n.inputs.empty() || n.outputs.size() != 1) continue;
    const Node* bn = foldable_bn(n);  // folded into the convolution
    const Node* r = only_reader(bn ? bn->outputs[0] : n.outputs[0]);
    early[i] = r && r->op == "Add";
  }
  std::vector<bool> done(g_.nodes.size(), false);
  for (std::size_t i = 0; i < g_.nodes.size(); ++i) {
    if (done[i]) continue;
    const Node& n = g_.nodes[i];
    for (std::size_t j = i + 1; j < g_.nodes.size(); ++j)  // shortcuts reading n's inputs
      if (early[j] && !done[j] && g_.nodes[j].inputs[0] >= 0 &&
          std::find(n.inputs.begin(), n.inputs.end(), g_.nodes[j].inputs[0]) != n.inputs.end()) {
        order.push_back(&g_.nodes[j]);
        done[j] = true;
      }
    order.push_back(&n);
    done[i] = true;
  }
  return order;
}

void Lowering::lower(const Node& n) {
  if (n.outputs.size() > 1 && n.op != "LayerNormalization")
    for (std::size_t i = 1; i < n.outputs.size(); ++i)
      if (n.outputs[i] >= 0)
        throw InputError(g_.where(n), "optional output " + std::to_string(i) + " is not supported");
  if (n.op == kAllReduce || n.op == kAllGather || n.op == kBroadcast) {
    lower_collective(n);
    return;
  }
  if (!lower_cl(n)) lower_by_name(n);
  count_macs(n);
}

void Lowering::count_macs(const Node& n) {
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

}  // namespace lpu::compiler::lowering

namespace lpu::compiler {

using lowering::binary_ops;
using lowering::Lowering;
using lowering::unary_ops;

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> v;
    for (const auto& [op, unused] : Lowering::handlers())
      v.push_back(op);
    return v;  // sorted: the registry is a map
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
