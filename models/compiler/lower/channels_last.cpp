// Convolutions and pools on channels-last tensors: windows, phases, products, epilogues.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

std::vector<std::int64_t> Lowering::from_cl(std::size_t rank) {
  std::vector<std::int64_t> p{0, static_cast<std::int64_t>(rank) - 1};
  for (std::size_t i = 1; i + 1 < rank; ++i)
    p.push_back(static_cast<std::int64_t>(i));
  return p;
}

std::vector<std::int64_t> Lowering::permuted(const std::vector<std::int64_t>& s,
                                             const std::vector<std::int64_t>& perm) {
  std::vector<std::int64_t> out;
  for (auto p : perm)
    out.push_back(s[static_cast<std::size_t>(p)]);
  return out;
}

std::vector<std::int64_t> Lowering::nchw_shape(int v) const {
  const auto i = static_cast<std::size_t>(v);
  if (tensor_of_[i] >= 0) return k_.tensors[static_cast<std::size_t>(tensor_of_[i])].shape;
  if (cl_of_[i] >= 0) {
    auto s = k_.tensors[static_cast<std::size_t>(cl_of_[i])].shape;
    if (const CLGrid* g = grid_of_tensor(cl_of_[i])) s[2] = g->w;
    return permuted(s, cl_to_nchw(s.size(), cl_t_[i]));
  }
  return g_.values[i].shape;
}

DType Lowering::dtype_of(int v) const {
  const auto i = static_cast<std::size_t>(v);
  if (tensor_of_[i] >= 0) return k_.tensors[static_cast<std::size_t>(tensor_of_[i])].dtype;
  if (cl_of_[i] >= 0) return k_.tensors[static_cast<std::size_t>(cl_of_[i])].dtype;
  return g_.values[i].dtype;
}

int Lowering::cl_tensor(int v, const Node& n) {
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

int Lowering::cl_constant(int v, std::size_t rank, const Node& n, bool transposed) {
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

bool Lowering::pointwise(const std::string& op) {
  static const std::set<std::string> more = {"Sigmoid",    "LeakyRelu", "Clip", "Div",
                                             "Reciprocal", "Sqrt",      "Erf",  "Cast"};
  return binary_ops().count(op) || unary_ops().count(op) || more.count(op);
}

bool Lowering::lower_cl_pointwise(const Node& n) {
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
  // Operands on one grid keep it; on different ones (or some on none) they are compacted.
  std::optional<CLGrid> on;
  bool first = true, same = true;
  for (int v : n.inputs) {
    if (v < 0 || g_.values[static_cast<std::size_t>(v)].constant) continue;
    const CLGrid* g = grid_of_value(v);
    if (first) {
      if (g) on = *g;
      first = false;
    } else if (on.has_value() != (g != nullptr) ||
               (g &&
                (g->pitch != on->pitch || g->off != on->off || g->p != on->p || g->w != on->w))) {
      same = false;
    }
  }
  if (!same) {
    for (int v : n.inputs)
      if (v >= 0 && !g_.values[static_cast<std::size_t>(v)].constant) cl_compact(v, n);
    on.reset();
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
  lower_by_name(n);
  const auto o = static_cast<std::size_t>(n.outputs[0]);
  cl_of_[o] = tensor_of_[o];
  cl_t_[o] = transposed;
  tensor_of_[o] = -1;
  if (on) put_on_grid(cl_of_[o], *on);
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

Lowering::Window Lowering::window(const Node& n, const std::vector<std::int64_t>& x,
                                  std::vector<std::int64_t> k, bool ceil_ok) {
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

Lowering::Grid Lowering::grid(const Window& w) {
  Grid g;
  // Columns the wanted results read (more than the padding given in ceil mode).
  const std::int64_t cols = std::max(w.w + w.pl + w.pr, (w.wo - 1) * w.sw + (w.kw - 1) * w.dw + 1);
  g.wq = (cols + w.sw - 1) / w.sw;
  // Rows: the padded input's, and those the last (unwanted) result of the last tap reads.
  const std::int64_t last =
      w.ho * g.wq - 1 + (w.kh - 1) * w.dh / w.sh * g.wq + (w.kw - 1) * w.dw / w.sw;
  g.hq = std::max((w.h + w.pt + w.pb + w.sh - 1) / w.sh, last / g.wq + 1);
  return g;
}

std::vector<int> Lowering::phases(int x, const Window& w, const Grid& g, double fill,
                                  const Node& n) {
  const KTensor kx = meta(x);
  const std::int64_t nb = kx.shape[0], c = kx.cols();
  // On a grid, input row h of image bi starts at row (bi h + h) pitch + off (a caller that
  // takes the whole grid as its image passes w.w = pitch).
  const CLGrid* gx = grid_of_tensor(x);
  if (gx && w.w == gx->pitch) gx = nullptr;
  const std::int64_t pitch = gx ? gx->pitch : w.w, off = gx ? gx->off : 0;
  if (!gx && w.sh == 1 && w.sw == 1 && !w.pt && !w.pl && g.wq == w.w && g.hq == w.h) return {x};
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
      s.a_row = (bi * w.h + h) * pitch + off;
      s.rows = w.w;
      for (std::int64_t p = 0; p < std::min(w.sw, w.w); ++p)
        s.deal.push_back(
            {out[static_cast<std::size_t>(a * w.sw + (p + w.pl) % w.sw)], row + (p + w.pl) / w.sw});
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

int Lowering::pick(int y, std::int64_t nb, std::int64_t ho, std::int64_t wo, std::int64_t wq,
                   DType to, const Node& n, const CLGrid* onto) {
  const KTensor ky = meta(y);
  const std::int64_t c = ky.cols();
  const bool whole = wq == wo && !onto;
  if (whole && ky.dtype == to) return y;
  const std::int64_t pitch = onto ? onto->pitch : wo, off = onto ? onto->off : 0;
  const int d = add_tensor(n.name + "/out", to, {nb, ho, pitch, c}, KTensor::Role::kTemp);
  if (onto) {
    // The padding rows between the pixel rows: zero.
    std::vector<std::pair<std::int64_t, std::int64_t>> pads;  // row, rows
    std::int64_t cursor = 0;
    for (std::int64_t r = 0; r < nb * ho; ++r) {
      if (r * pitch + off > cursor) pads.push_back({cursor, r * pitch + off - cursor});
      cursor = r * pitch + off + wo;
    }
    if (nb * ho * pitch > cursor) pads.push_back({cursor, nb * ho * pitch - cursor});
    std::int64_t most = 0;
    for (const auto& pr : pads)
      most = std::max(most, pr.second);
    const int z = most ? splat(n.name + "/pad", to, 0.0, {most, c}) : -1;
    for (const auto& [row, rows] : pads)
      copy_rows(to, z, 0, d, row, rows, n);
    put_on_grid(d, *onto);
  }
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
      s.d_row = (b * ho + r) * pitch + off;
      s.origin = g_.where(n);
      k_.steps.push_back(std::move(s));
    }
  k_.tensors[static_cast<std::size_t>(d)].clean = ky.clean;
  return d;
}

const Node* Lowering::only_reader(int v) const {
  if (v < 0 || uses_[static_cast<std::size_t>(v)] != 1) return nullptr;
  for (int o : g_.outputs)
    if (o == v) return nullptr;
  for (const Node& m : g_.nodes)
    for (int i : m.inputs)
      if (i == v) return &m;
  return nullptr;
}

const Node* Lowering::foldable_bn(const Node& n) const {
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

std::vector<double> Lowering::constant_values(int v, const Node& n) {
  const KTensor& kt = k_.tensors[static_cast<std::size_t>(tensor(v, &n))];
  std::vector<double> out;
  for (std::int64_t j = 0; j < kt.elements(); ++j)
    out.push_back(element_of(kt, j));
  return out;
}

void Lowering::conv(const Node& n) {
  if (packed_bottleneck(n)) return;
  ConvPlan p = conv_plan(n);
  // A convolution of a small input only in the ONNX layout (a model's image): rows of input
  // pixels through banded weights, columns of output pixels out (see conv_rowwise).
  if (p.host && !p.tr && rowwise_fits(n, p.xs, p.w, p.m)) {
    conv_rowwise(n, p.w, p.wts, p.bias, p.has_bias, p.out_value, p.dt);
    return;
  }
  conv_weights(n, p);
  // A 1 x 1 convolution (stride 1, no padding) of a value on a grid takes every row of the grid
  // as a pixel: its result is on the same grid.
  std::optional<CLGrid> gx;
  if (const CLGrid* g = grid_of_value(n.inputs[0]); g && p.w.kh == 1 && p.w.kw == 1 &&
                                                    p.w.sh == 1 && p.w.sw == 1 && !p.w.pt &&
                                                    !p.w.pl && !p.w.pb && !p.w.pr) {
    gx = *g;
    p.w.w = p.w.wo = g->pitch;
  }
  conv_epilogue(n, p, conv_products(n, p), gx ? &*gx : nullptr);
}

Lowering::ConvPlan Lowering::conv_plan(const Node& n, const ConvInput* in) {
  no_attrs(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  if (const Attr* g = n.attr("group"); g && g->i != 1)
    throw InputError(g_.where(n), "group = " + std::to_string(g->i) +
                                      " is not supported (grouped and depthwise convolutions)");
  if (n.inputs.size() < 2 || n.inputs.size() > 3 || n.inputs[0] < 0 || n.inputs[1] < 0)
    throw InputError(g_.where(n), "takes two or three inputs");
  const Value& wv = g_.values[static_cast<std::size_t>(n.inputs[1])];
  ConvPlan p;
  p.xs = in ? in->xs : nchw_shape(n.inputs[0]);
  p.ws = nchw_shape(n.inputs[1]);
  const std::vector<std::int64_t>&xs = p.xs, &ws = p.ws;
  const DType dt = p.dt = in ? in->dt : dtype_of(n.inputs[0]);
  if (dt != DType::kFp32 && dt != DType::kFp16)
    throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                      " is not supported (fp32 or fp16)");
  if (dtype_of(n.inputs[1]) != dt) throw InputError(g_.where(n), "inputs have different types");
  if (xs.size() < 3 || ws.size() != xs.size() || ws[1] != xs[1])
    throw InputError(g_.where(n), "input " + shape_str(xs) + " and weights " + shape_str(ws) +
                                      " do not match (N, C, spatial) and (M, C, kernel)");
  // On a transposed channels-last input the window (and below the kernel) swap their axes.
  const bool tr = p.tr = in ? in->tr : cl_transposed(n.inputs[0]);
  const Window w0 = p.w0 =
      window(n, xs, std::vector<std::int64_t>(ws.begin() + 2, ws.end()), false);
  const Window w = p.w = tr ? swapped(w0) : w0;
  const std::int64_t nb = p.nb = xs[0], c = p.c = xs[1], m = p.m = ws[0];
  k_.model_macs += nb * m * w0.ho * w0.wo * c * w0.kh * w0.kw;
  if ((c > k_.mxm_rows || m > k_.mxm_cols) && (k_.mxm_rows != k_.lanes || k_.mxm_cols != k_.lanes))
    throw InputError(g_.where(n), std::to_string(c) + " input and " + std::to_string(m) +
                                      " output channels need MXM planes as wide as the vector");
  // Constant weights and bias are prepared on the host: row (tap, c), column m; scaled by a
  // folded normalization. Computed ones are transposed on the chip.
  const int bv = p.bv = n.inputs.size() == 3 ? n.inputs[2] : -1;
  const bool host = p.host =
      wv.constant && (bv < 0 || g_.values[static_cast<std::size_t>(bv)].constant);
  std::vector<double>&wts = p.wts, &bias = p.bias;
  bias.assign(static_cast<std::size_t>(m), 0);
  if (host) wts = constant_values(n.inputs[1], n);
  if (host && bv >= 0) {
    bias = constant_values(bv, n);
    if (static_cast<std::int64_t>(bias.size()) != m)
      throw InputError(g_.where(n), "the bias must have " + std::to_string(m) + " values");
  }
  p.has_bias = bv >= 0;
  p.out_value = n.outputs.empty() ? -1 : n.outputs[0];
  if (const Node* bn = host ? foldable_bn(n) : nullptr) fold_bn(*bn, p);
  const std::int64_t taps = p.taps = w.kh * w.kw;
  if (tr && host) {  // taps in the swapped window's order: tap (i, j) is the kernel's (j, i)
    const std::vector<double> given = wts;
    for (std::int64_t e = 0; e < m * c; ++e)
      for (std::int64_t i = 0; i < w.kh; ++i)
        for (std::int64_t j = 0; j < w.kw; ++j)
          wts[static_cast<std::size_t>(e * taps + i * w.kw + j)] =
              given[static_cast<std::size_t>(e * taps + j * w.kh + i)];
  }
  return p;
}

void Lowering::fold_bn(const Node& bn, ConvPlan& p) {
  const Attr* ep = bn.attr("epsilon");
  const double eps = ep ? ep->f : 1e-5;
  std::vector<std::vector<double>> q;
  for (std::size_t i = 1; i < 5; ++i) {
    q.push_back(constant_values(bn.inputs[i], bn));
    if (static_cast<std::int64_t>(q.back().size()) != p.m)
      throw InputError(g_.where(bn), "parameters must have one value per channel");
  }
  const std::int64_t m = p.m, per = static_cast<std::int64_t>(p.wts.size()) / m;
  for (std::int64_t j = 0; j < m; ++j) {
    const auto sj = static_cast<std::size_t>(j);
    const double a = q[0][sj] / std::sqrt(q[3][sj] + eps);
    for (std::int64_t e = 0; e < per; ++e)
      p.wts[static_cast<std::size_t>(j * per + e)] *= a;
    p.bias[sj] = (p.bias[sj] - q[2][sj]) * a + q[1][sj];
  }
  p.has_bias = true;
  folded_.insert(&bn);
  p.out_value = bn.outputs[0];
}

void Lowering::conv_weights(const Node& n, ConvPlan& p) {
  const std::int64_t taps = p.taps, c = p.c, m = p.m;
  const std::vector<double>& wts = p.wts;
  const DType dt = p.dt;
  const bool host = p.host, tr = p.tr;
  const std::vector<std::int64_t>& ws = p.ws;
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
    p.wt = reshaped(wk, {taps * c, m}, n, n.name + "/taps");
  }
  // int8 (constant weights): each output channel's weights scaled by their largest
  // magnitude / 127, the input by its calibrated range.
  const bool int8 = p.int8 = host && opt_.precision == Precision::kInt8;
  p.w_scale.assign(static_cast<std::size_t>(m), 1.0);
  p.x_scale = int8 ? activation_scale(n) : 1.0;
  if (int8) {
    const std::int64_t per = taps * c;
    const int wt = p.wt =
        add_tensor(n.name + "/taps.q", DType::kI8, {per, m}, KTensor::Role::kConstant);
    auto& data = k_.tensors[static_cast<std::size_t>(wt)].data;
    data.resize(static_cast<std::size_t>(per * m));
    for (std::int64_t j = 0; j < m; ++j) {
      double most = 0;
      for (std::int64_t e = 0; e < per; ++e)
        most = std::max(most, std::fabs(wts[static_cast<std::size_t>(j * per + e)]));
      const double s = most > 0 ? most / 127.0 : 1.0;
      p.w_scale[static_cast<std::size_t>(j)] = s;
      for (std::int64_t ci = 0; ci < c; ++ci)
        for (std::int64_t t = 0; t < taps; ++t) {
          const double q =
              std::nearbyint(wts[static_cast<std::size_t>((j * c + ci) * taps + t)] / s);
          data[static_cast<std::size_t>((t * c + ci) * m + j)] =
              static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(q, -127.0, 127.0)));
        }
    }
  } else if (host) {
    const int wt = p.wt = add_tensor(n.name + "/taps", dt, {taps * c, m}, KTensor::Role::kConstant);
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
}

int Lowering::conv_products(const Node& n, const ConvPlan& p) {
  const Window& w = p.w;
  const std::vector<std::int64_t>& xs = p.xs;
  const std::int64_t nb = p.nb, c = p.c, m = p.m;
  const bool int8 = p.int8, host = p.host;
  const int wt = p.wt;
  const DType dt = p.dt;
  const Grid gd = grid(w);
  const int y = add_tensor(n.name + (int8 ? "/sum" : "/product"), int8 ? DType::kI32 : DType::kFp32,
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
    if (int8) xb = quantize_activations(xb, p.x_scale, n);
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
    // The whole of a grid whose rows are dealt over groups of slices (a 1 x 1 convolution).
    if (const CLGrid* gi = grid_of_tensor(xb);
        gi && gi->p > 1 && wb.w == gi->pitch && bands.size() == 1 && nb == 1) {
      grid_products(n, p, y, parts[0], gi->p, band_results);
      continue;
    }
    // Blocks of output pixels that several planes may stream at once: their rows (and the
    // phases' rows they read) on slices of their own.
    // The input goes in chunks of half a block: a product waits only for the chunks it reads,
    // so it starts on its producer's first half-block, and a block's taps, which read up to
    // (kh - 1) grid rows into the next block (where another plane is reading), find the slice
    // of each chunk held only about half a pass.
    const std::int64_t blk = row_block(band_results, nb * tn_n);
    if (band_results > blk) {
      chunk_by(y, blk);
      const std::int64_t in_chunk = std::max<std::int64_t>(1, blk / 2);
      for (const auto& pp : parts)
        for (const auto& [xa, wa] : pp) {
          (void)wa;
          chunk_by(xa, in_chunk);
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
  return y;
}

void Lowering::grid_products(const Node& n, const ConvPlan& p, int y,
                             const std::vector<std::pair<int, int>>& parts, std::int64_t pp,
                             std::int64_t rows) {
  // A step per group of slices, every pp-th row in and out: one run of each tensor.
  const std::int64_t c = p.c, per = rows / pp;
  const std::int64_t tk_n = (c + k_.mxm_rows - 1) / k_.mxm_rows;
  const std::int64_t tn_n = (p.m + k_.mxm_cols - 1) / k_.mxm_cols;
  const std::int64_t blk = row_block(per, tn_n * pp);
  if (per > blk) {
    chunk_by(y, blk * pp);
    for (const auto& [xa, wa] : parts) {
      (void)wa;
      chunk_by(xa, blk * pp);
    }
  }
  for (std::int64_t r0 = 0; r0 < per; r0 += blk)
    for (std::int64_t k = 0; k < pp; ++k)
      for (std::int64_t tn = 0; tn < tn_n; ++tn) {
        KStep s = product_step(y, std::min(blk, per - r0), r0 * pp + k, tn, c, n,
                               p.int8 ? DType::kI8 : DType::kFp16);
        s.d_stride = pp;
        for (std::int64_t tk = 0; tk < tk_n; ++tk)
          for (const auto& [xa, wa] : parts) {
            KPass ps;
            ps.x = xa;
            ps.w = wa;
            ps.x_row = r0 * pp + k;
            ps.x_stride = pp;
            ps.x_tile = tk;
            ps.w_row = tk * k_.mxm_rows;
            ps.w_tile = tn;
            ps.k = std::min<std::int64_t>(k_.mxm_rows, c - tk * k_.mxm_rows);
            s.passes.push_back(ps);
          }
        s.origin = g_.where(n);
        k_.steps.push_back(std::move(s));
      }
}

void Lowering::conv_epilogue(const Node& n, const ConvPlan& p, int y, const CLGrid* onto) {
  const std::int64_t nb = p.nb, m = p.m;
  const bool host = p.host;
  const int bv = p.bv;
  const DType dt = p.dt;
  const Window &w = p.w, &w0 = p.w0;
  const Grid gd = grid(w);
  int r = y;
  if (p.int8)  // back to fp32: the sums times x_scale w_scale[channel]
    r = dequantize(n, y, p.x_scale, p.w_scale, {m}, meta(y).shape);
  if (p.has_bias && !host) {
    const KTensor kb = meta(tensor(bv, &n));
    if (kb.elements() != m || kb.dtype != dt)
      throw InputError(g_.where(n), "the bias must have " + std::to_string(m) + " values of " +
                                        "the input's type");
    r = vx(VxmOp::kAdd, r, widen(reshaped(tensor(bv, &n), {m}, n, n.name + "/b"), n), n, "biased");
  } else if (p.has_bias) {
    r = vx(VxmOp::kAdd, r, fp32_constant(n.name + "/bias", {m}, p.bias), n, "biased");
  }
  std::vector<std::int64_t> os = {nb, m, w0.ho, w0.wo};
  if (p.xs.size() == 3) os.erase(os.begin() + 2);
  // Onto the grid of a packed bottleneck it leads to (batch 1, fp16).
  std::optional<CLGrid> want;
  if (!onto && nb == 1 && p.xs.size() == 4 && dt == DType::kFp16)
    want = grid_wanted(p.out_value, w.wo);
  const int t = pick(r, nb, w.ho, w.wo, gd.wq, dt, n, want ? &*want : nullptr);
  if (onto)  // the whole grid was convolved
    for (int u : {y, r, t})
      put_on_grid(u, *onto);
  set_cl_output(n, p.out_value, t, os, p.tr);
}

void Lowering::set_cl_output(const Node& n, int v, int t, const std::vector<std::int64_t>& shape,
                             bool transposed) {
  if (v < 0) throw InputError(g_.where(n), "has no output");
  const auto want = permuted(shape, nchw_to_cl(shape.size(), transposed));
  if (!grid_of_tensor(t) && meta(t).shape != want)
    t = reshaped(t, want, n, n.name + "/cl");  // a 1-D window's
  cl_of_[static_cast<std::size_t>(v)] = t;
  cl_t_[static_cast<std::size_t>(v)] = transposed;
}

Lowering::Window Lowering::swapped(Window w) {
  std::swap(w.h, w.w);
  std::swap(w.kh, w.kw);
  std::swap(w.sh, w.sw);
  std::swap(w.dh, w.dw);
  std::swap(w.pt, w.pl);
  std::swap(w.pb, w.pr);
  std::swap(w.ho, w.wo);
  return w;
}

void Lowering::window_tap(VxmOp op, DType dt, int acc, std::int64_t acc_row, int src,
                          std::int64_t src_row, int d, std::int64_t d_row, std::int64_t rows,
                          const Node& n) {
  KStep s;
  s.args.op = acc < 0 ? VxmOp::kMov : op;
  s.args.type = dt;
  if (acc < 0) {
    s.a = src;
    s.a_row = src_row;
  } else {
    s.a = acc;
    s.a_row = acc_row;
    s.b = src;
    s.b_row = src_row;
  }
  s.d = d;
  s.d_row = d_row;
  s.rows = rows;
  s.origin = g_.where(n);
  k_.steps.push_back(std::move(s));
}

void Lowering::pool(const Node& n) {
  const bool avg = n.op == "AveragePool";
  if (avg)
    no_attrs(n, {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                 "strides"});
  else
    no_attrs(n, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides",
                 "storage_order"});
  if (n.inputs.size() != 1 || n.inputs[0] < 0) throw InputError(g_.where(n), "takes one input");
  const std::vector<std::int64_t> xs = nchw_shape(n.inputs[0]);
  const DType dt = dtype_of(n.inputs[0]);
  if (dt != DType::kFp32 && dt != DType::kFp16 && dt != DType::kBf16 && !(dt == DType::kI8 && !avg))
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
      const int d = add_tensor(n.name + "/window", wt, {nb, w.ho, gd.wq, c}, KTensor::Role::kTemp);
      const int src = ph[static_cast<std::size_t>(gd.phase(w, i, j))];
      for (std::int64_t b = 0; b < nb; ++b)
        window_tap(avg ? VxmOp::kAdd : VxmOp::kMax, wt, acc, b * results, src,
                   b * gd.hq * gd.wq + gd.offset(w, i, j), d, b * results, results, n);
      k_.tensors[static_cast<std::size_t>(d)].clean =
          k_.tensors[static_cast<std::size_t>(src)].clean;
      acc = d;
    }
  const int out_value = n.outputs.empty() ? -1 : n.outputs[0];
  auto sample = [&](DType to) { return pick(acc, nb, w.ho, w.wo, gd.wq, to, n); };
  if (!avg) {
    // Onto the grid of a packed bottleneck it feeds.
    std::optional<CLGrid> onto;
    if (nb == 1 && xs.size() == 4 && dt == DType::kFp16) onto = grid_wanted(out_value, w.wo);
    set_cl_output(n, out_value, onto ? pick(acc, nb, w.ho, w.wo, gd.wq, dt, n, &*onto) : sample(dt),
                  os, tr);
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

void Lowering::global_pool_cl(const Node& n) {
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

bool Lowering::lower_cl(const Node& n) {
  if (folded_.count(&n)) return true;
  if (n.inputs.empty() || !cl_only(n.inputs[0])) return lower_cl_pointwise(n);
  const std::vector<std::int64_t> xs = nchw_shape(n.inputs[0]);
  if (n.op == "GlobalAveragePool" || n.op == "Flatten") cl_compact(n.inputs[0], n);
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

}  // namespace lpu::compiler::lowering
