// Grids and packed bottlenecks: the narrow middle of a bottleneck block with several pixels
// per vector (docs/compiler.md, "Packed bottlenecks").
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

int Lowering::on_grid_of(int from, int to) {
  if (to == from) return to;
  if (const CLGrid* g = grid_of_tensor(from)) put_on_grid(to, *g);
  return to;
}

void Lowering::put_on_grid(int t, const CLGrid& g) {
  tgrid_[t] = g;
  k_.tensors[static_cast<std::size_t>(t)].interleave = g.p;
}

int Lowering::cl_compact(int v, const Node& n) {
  const int t = cl_of_[static_cast<std::size_t>(v)];
  const CLGrid* g = grid_of_tensor(t);
  if (!g) return t;
  const CLGrid gr = *g;
  const KTensor kt = meta(t);
  const int d = add_tensor(kt.name + "/compact", kt.dtype,
                           {kt.shape[0], kt.shape[1], gr.w, kt.cols()}, KTensor::Role::kTemp);
  for (std::int64_t r = 0; r < kt.rows() / gr.pitch; ++r)
    copy_rows(kt.dtype, t, r * gr.pitch + gr.off, d, r * gr.w, gr.w, n);
  k_.tensors[static_cast<std::size_t>(d)].clean = kt.clean;
  cl_of_[static_cast<std::size_t>(v)] = d;
  return d;
}

Lowering::CLGrid Lowering::grid_for(std::int64_t w, const Packed& pk) {
  CLGrid g;
  g.w = w;
  g.off = 1;  // the 3 x 3 convolution's left padding column
  g.p = pk.p;
  g.pitch = (w + 2 + pk.p - 1) / pk.p * pk.p;  // and at least one right one
  return g;
}

namespace {

bool ints_are(const Node& n, const char* key, std::int64_t v) {
  const Attr* a = n.attr(key);
  if (!a) return true;
  for (auto x : a->ints)
    if (x != v) return false;
  return true;
}

}  // namespace

std::optional<Lowering::Packed> Lowering::packable(const Node& a) const {
  // A convolution with constant weights [M, C, k, k], group 1, stride and dilation 1, pads p
  // all round; its weights' shape.
  auto conv_of = [&](const Node* n, std::int64_t k,
                     std::int64_t pad) -> std::optional<std::vector<std::int64_t>> {
    if (!n || n->op != "Conv" || n->inputs.size() < 2 || n->outputs.empty() || n->inputs[1] < 0)
      return std::nullopt;
    const Value& w = g_.values[static_cast<std::size_t>(n->inputs[1])];
    if (!w.constant || w.shape.size() != 4 || w.shape[2] != k || w.shape[3] != k)
      return std::nullopt;
    if (n->inputs.size() == 3 &&
        (n->inputs[2] < 0 || !g_.values[static_cast<std::size_t>(n->inputs[2])].constant))
      return std::nullopt;
    if (const Attr* g = n->attr("group"); g && g->i != 1) return std::nullopt;
    if (const Attr* ap = n->attr("auto_pad"); ap && ap->s != "NOTSET") return std::nullopt;
    if (!ints_are(*n, "strides", 1) || !ints_are(*n, "dilations", 1) ||
        !ints_are(*n, "pads", pad) || (pad && !n->attr("pads")))
      return std::nullopt;
    return w.shape;
  };
  // The value after a convolution (its folded normalization's), then the Relu reading it.
  auto relu_after = [&](const Node& conv) -> const Node* {
    const Node* bn = foldable_bn(conv);
    const Node* r = only_reader(bn ? bn->outputs[0] : conv.outputs[0]);
    return r && r->op == "Relu" && r->inputs.size() == 1 && !r->outputs.empty() ? r : nullptr;
  };
  Packed pk;
  pk.a = &a;
  const auto wa = conv_of(&a, 1, 0);
  if (!wa || k_.mxm_rows != k_.lanes || k_.mxm_cols != k_.lanes) return std::nullopt;
  pk.mid = (*wa)[0];
  // At most as many pixels as keep an int32 tensor's groups (4 slices each) within half of a
  // hemisphere's data slices: its rows are dealt over p of them.
  const int room = (arch_.chip.mem.slices_per_hemisphere - arch_.chip.icu.instruction_slices) / 8;
  pk.p =
      static_cast<int>(std::min<std::int64_t>(room, k_.lanes / std::max<std::int64_t>(1, pk.mid)));
  // Two pixels a vector or more. (ResNet-50's layer2, 128 channels, at p = 2: fp16 -4.8%;
  // int8 first +2.6%, then -3.1% once projections went first and the stem was folded.)
  if (pk.p < 2) return std::nullopt;
  pk.relu_a = relu_after(a);
  pk.b = pk.relu_a ? only_reader(pk.relu_a->outputs[0]) : nullptr;
  const auto wb = conv_of(pk.b, 3, 1);
  if (!wb || (*wb)[0] != pk.mid || (*wb)[1] != pk.mid || pk.b->inputs[0] != pk.relu_a->outputs[0])
    return std::nullopt;
  pk.relu_b = relu_after(*pk.b);
  pk.c = pk.relu_b ? only_reader(pk.relu_b->outputs[0]) : nullptr;
  const auto wc = conv_of(pk.c, 1, 0);
  if (!wc || (*wc)[1] != pk.mid || pk.c->inputs[0] != pk.relu_b->outputs[0]) return std::nullopt;
  return pk;
}

std::optional<Lowering::CLGrid> Lowering::grid_wanted(int v, std::int64_t w) const {
  // Along the value's one reader: Relus, Adds and 1 x 1 convolutions keep a grid; a packed
  // bottleneck's first convolution wants one.
  for (int depth = 0; depth < 8 && v >= 0; ++depth) {
    const Node* next = nullptr;
    for (const Node& m : g_.nodes) {
      if (std::find(m.inputs.begin(), m.inputs.end(), v) == m.inputs.end()) continue;
      if (m.op == "Conv" && m.inputs[0] == v)
        if (const auto pk = packable(m)) return grid_for(w, *pk);
      next = &m;
    }
    if (!next || uses_[static_cast<std::size_t>(v)] != 1 || next->outputs.empty()) break;
    if (next->op == "Relu" || next->op == "Add") {
      v = next->outputs[0];
      continue;
    }
    if (next->op != "Conv" || next->inputs.size() < 2 || next->inputs[0] != v) break;
    const Value& wv = g_.values[static_cast<std::size_t>(next->inputs[1])];
    if (wv.shape.size() != 4 || wv.shape[2] != 1 || wv.shape[3] != 1) break;
    for (const char* key : {"strides", "pads", "dilations"})
      if (const Attr* a = next->attr(key))
        for (auto x : a->ints)
          if (x != (std::string(key) == "pads" ? 0 : 1)) return std::nullopt;
    const Node* bn = foldable_bn(*next);
    v = bn ? bn->outputs[0] : next->outputs[0];
  }
  return std::nullopt;
}

int Lowering::packed_weights(const std::string& name, const std::vector<double>& w,
                             std::int64_t blocks, std::int64_t k, std::int64_t cols, bool int8,
                             std::vector<double>* scale) {
  const std::int64_t rows = blocks * k;
  const int t =
      add_tensor(name, int8 ? DType::kI8 : DType::kFp16, {rows, cols}, KTensor::Role::kConstant);
  auto& data = k_.tensors[static_cast<std::size_t>(t)].data;
  if (int8) {
    // Per column, its largest magnitude / 127.
    scale->assign(static_cast<std::size_t>(cols), 1.0);
    for (std::int64_t j = 0; j < cols; ++j) {
      double most = 0;
      for (std::int64_t r = 0; r < rows; ++r)
        most = std::max(most, std::fabs(w[static_cast<std::size_t>(r * cols + j)]));
      (*scale)[static_cast<std::size_t>(j)] = most > 0 ? most / 127.0 : 1.0;
    }
    data.resize(static_cast<std::size_t>(rows * cols));
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < cols; ++j) {
        const double q = std::nearbyint(w[static_cast<std::size_t>(r * cols + j)] /
                                        (*scale)[static_cast<std::size_t>(j)]);
        data[static_cast<std::size_t>(r * cols + j)] =
            static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(q, -127.0, 127.0)));
      }
    return t;
  }
  data.resize(static_cast<std::size_t>(rows * cols) * 2);
  for (std::int64_t e = 0; e < rows * cols; ++e) {
    const std::uint16_t b = func::fp32_to_fp16(static_cast<float>(w[static_cast<std::size_t>(e)]));
    std::memcpy(&data[static_cast<std::size_t>(e) * 2], &b, 2);
  }
  return t;
}

bool Lowering::packed_bottleneck(const Node& a) {
  const CLGrid* gp = grid_of_value(a.inputs[0]);
  const auto pk = packable(a);
  if (!gp || !pk || gp->p != pk->p || gp->off != 1 || gp->pitch % gp->p ||
      dtype_of(a.inputs[0]) != DType::kFp16 || nchw_shape(a.inputs[0]).size() != 4 ||
      nchw_shape(a.inputs[0])[0] != 1)
    return false;
  const CLGrid g = *gp;
  ConvPlan pa = conv_plan(a);
  if (!pa.host || pa.w.w != g.w) throw std::logic_error("packed bottleneck: grid of another width");
  PackedShape ps;
  ps.p = g.p;
  ps.c = pk->mid;
  ps.pc = ps.p * ps.c;
  ps.g = g.pitch / g.p;
  ps.h = pa.w.h;
  ps.int8 = opt_.precision == Precision::kInt8;
  const int xp = packed_in(pa, *pk, g, ps);
  ConvInput mid;
  mid.xs = {1, ps.c, pa.w0.ho, pa.w0.wo};
  mid.tr = pa.tr;
  ConvPlan pb = conv_plan(*pk->b, &mid);
  const int xc = packed_mid(pb, *pk, xp, ps);
  ConvPlan pc = conv_plan(*pk->c, &mid);
  packed_out(pc, *pk, xc, g, ps);
  for (const Node* n : {pk->relu_a, pk->b, pk->relu_b, pk->c})
    folded_.insert(n);
  return true;
}

int Lowering::packed_sums(const Node& n, std::vector<std::int64_t> shape, const PackedShape& ps) {
  return add_tensor(n.name + (ps.int8 ? "/sum" : "/product"), ps.int8 ? DType::kI32 : DType::kFp32,
                    std::move(shape), KTensor::Role::kTemp);
}

// The epilogue of a packed product's sums y [rows, pc] (int8: x_scale and per-column scales):
// dequantized, plus `bias` (a constant of y's shape), as fp16, through relu node r.
int Lowering::packed_relu(const Node& n, const Node& r, int y, double x_scale,
                          const std::vector<double>& scale, int bias, const PackedShape& ps) {
  const std::vector<std::int64_t> shape = meta(y).shape;
  const int f = ps.int8 ? dequantize(n, y, x_scale, scale, {ps.pc}, shape) : y;
  const int biased = vx(VxmOp::kAdd, f, bias, n, "biased");
  const int h = add_tensor(n.name + "/out", DType::kFp16, shape, KTensor::Role::kTemp);
  cast(DType::kFp32, DType::kFp16, biased, h, g_.where(n));
  return vx(VxmOp::kRelu, h, -1, r, "relu");
}

// Conv a from the grid (1 x 1: pass s reads every p-th row from s, its weights put the
// channels in lanes s c ..), its epilogue, and the result packed with a border row of vectors
// above and below (zero), the padding columns zero (their bias is -1e30, and a Relu follows):
// conv b's input.
int Lowering::packed_in(const ConvPlan& pa, const Packed& pk, const CLGrid& g,
                        const PackedShape& ps) {
  const Node& a = *pk.a;
  const std::int64_t ci = pa.c, rows = ps.h * ps.g;
  int x = clean(cl_tensor(a.inputs[0], a), a);
  k_.calibration.push_back({a.name, x});
  const double xs = ps.int8 ? activation_scale(a) : 1.0;
  if (ps.int8) x = quantize_activations(x, xs, a);
  std::vector<double> w(static_cast<std::size_t>(ps.p * ci * ps.pc), 0.0), scale;
  for (std::int64_t s = 0; s < ps.p; ++s)
    for (std::int64_t i = 0; i < ci; ++i)
      for (std::int64_t m = 0; m < ps.c; ++m)
        w[static_cast<std::size_t>((s * ci + i) * ps.pc + s * ps.c + m)] =
            pa.wts[static_cast<std::size_t>(m * ci + i)];
  const int wt = packed_weights(a.name + "/packed", w, ps.p, ci, ps.pc, ps.int8, &scale);
  const int y = packed_sums(a, {rows, ps.pc}, ps);
  const std::int64_t blk = row_block(rows, 1);
  if (rows > blk) {
    chunk_by(y, blk);
    chunk_by(x, blk * ps.p);
  }
  const std::int64_t tk_n = (ci + k_.mxm_rows - 1) / k_.mxm_rows;
  for (std::int64_t r0 = 0; r0 < rows; r0 += blk) {
    KStep st = product_step(y, std::min(blk, rows - r0), r0, 0, ci, a,
                            ps.int8 ? DType::kI8 : DType::kFp16);
    for (std::int64_t s = 0; s < ps.p; ++s)
      for (std::int64_t tk = 0; tk < tk_n; ++tk) {
        KPass pass;
        pass.x = x;
        pass.x_row = r0 * ps.p + s;
        pass.x_stride = ps.p;
        pass.x_tile = tk;
        pass.w = wt;
        pass.w_row = s * ci + tk * k_.mxm_rows;
        pass.k = std::min<std::int64_t>(k_.mxm_rows, ci - tk * k_.mxm_rows);
        st.passes.push_back(pass);
      }
    k_.steps.push_back(std::move(st));
  }
  // The bias per grid column: -1e30 on the padding columns.
  std::vector<double> bias;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t l = 0; l < ps.pc; ++l) {
      const std::int64_t col = (r % ps.g) * ps.p + l / ps.c;
      bias.push_back(
          col < g.off || col >= g.off + g.w ? -1e30 : pa.bias[static_cast<std::size_t>(l % ps.c)]);
    }
  const int relu = packed_relu(a, *pk.relu_a, y, xs, scale,
                               fp32_constant(a.name + "/bias", {rows, ps.pc}, bias), ps);
  // Into conv b's input, rows g .. g + rows - 1 (int8: quantized on the way).
  const Node& b = *pk.b;
  k_.calibration.push_back({b.name, relu});
  const DType in_type = ps.int8 ? DType::kI8 : DType::kFp16;
  const int xp = add_tensor(b.name + "/packed_in", in_type, {rows + 2 * ps.g + 1, ps.pc},
                            KTensor::Role::kTemp);
  KStep st;
  st.a = ps.int8 ? scaled_for_int8(relu, activation_scale(b), b) : relu;
  st.args.type = meta(st.a).dtype;
  st.args.op = ps.int8 ? VxmOp::kCast : VxmOp::kMov;
  st.args.to = in_type;
  st.d = xp;
  st.d_row = ps.g;
  st.rows = rows;
  st.origin = g_.where(b);
  k_.steps.push_back(std::move(st));
  const int z = splat(b.name + "/border", in_type, 0.0, {ps.g + 1, ps.pc});
  copy_rows(in_type, z, 0, xp, 0, ps.g, b);
  copy_rows(in_type, z, 0, xp, rows + ps.g, ps.g + 1, b);
  return xp;
}

// Conv b on the packed input: output vector (r, q) holds pixels p q .. p q + p - 1 of row r,
// which read the input vectors (r + i, q) and (r + i, q + 1) of kernel row i: 6 passes of
// banded weights. Its epilogue; returns conv c's input.
int Lowering::packed_mid(const ConvPlan& pb, const Packed& pk, int xp, const PackedShape& ps) {
  const Node& b = *pk.b;
  const std::int64_t rows = ps.h * ps.g;
  std::vector<double> w(static_cast<std::size_t>(6 * ps.pc * ps.pc), 0.0), scale;
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t dv = 0; dv < 2; ++dv)
      for (std::int64_t si = 0; si < ps.p; ++si)
        for (std::int64_t so = 0; so < ps.p; ++so) {
          const std::int64_t j = ps.p * dv + si - so;  // the kernel column
          if (j < 0 || j > 2) continue;
          for (std::int64_t ci = 0; ci < ps.c; ++ci)
            for (std::int64_t m = 0; m < ps.c; ++m)
              w[static_cast<std::size_t>(((i * 2 + dv) * ps.pc + si * ps.c + ci) * ps.pc +
                                         so * ps.c + m)] =
                  pb.wts[static_cast<std::size_t>((m * ps.c + ci) * 9 + i * 3 + j)];
        }
  const int wt = packed_weights(b.name + "/packed", w, 6, ps.pc, ps.pc, ps.int8, &scale);
  const int y = packed_sums(b, {rows, ps.pc}, ps);
  const std::int64_t blk = row_block(rows, 1);
  if (rows > blk) {
    chunk_by(y, blk);
    chunk_by(xp, std::max<std::int64_t>(1, blk / 2));
  }
  const double xs = ps.int8 ? activation_scale(b) : 1.0;
  for (std::int64_t r0 = 0; r0 < rows; r0 += blk) {
    KStep st = product_step(y, std::min(blk, rows - r0), r0, 0, ps.pc, b,
                            ps.int8 ? DType::kI8 : DType::kFp16);
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t dv = 0; dv < 2; ++dv) {
        KPass pass;
        pass.x = xp;
        pass.x_row = r0 + i * ps.g + dv;
        pass.w = wt;
        pass.w_row = (i * 2 + dv) * ps.pc;
        pass.k = ps.pc;
        st.passes.push_back(pass);
      }
    k_.steps.push_back(std::move(st));
  }
  std::vector<double> bias;
  for (std::int64_t l = 0; l < ps.pc; ++l)
    bias.push_back(pb.bias[static_cast<std::size_t>(l % ps.c)]);
  const int relu =
      packed_relu(b, *pk.relu_b, y, xs, scale, fp32_constant(b.name + "/bias", {ps.pc}, bias), ps);
  const Node& c = *pk.c;
  k_.calibration.push_back({c.name, relu});
  return ps.int8 ? quantize_activations(relu, activation_scale(c), c) : relu;
}

// Conv c back onto the grid: slot s of packed vector v is grid row p v + s + 1 (the grid's
// offset), so the product of slot s writes every p-th row from s + 1; the last slot's last
// vector (a padding column past the image) is left out, and row 0 is zero.
void Lowering::packed_out(const ConvPlan& pc, const Packed& pk, int xc, const CLGrid& g,
                          const PackedShape& ps) {
  const Node& c = *pk.c;
  const std::int64_t rows = ps.h * ps.g, m = pc.m;
  std::vector<double> w(static_cast<std::size_t>(ps.p * ps.pc * m), 0.0), scale;
  for (std::int64_t s = 0; s < ps.p; ++s)
    for (std::int64_t ci = 0; ci < ps.c; ++ci)
      for (std::int64_t j = 0; j < m; ++j)
        w[static_cast<std::size_t>((s * ps.pc + s * ps.c + ci) * m + j)] =
            pc.wts[static_cast<std::size_t>(j * ps.c + ci)];
  const int wt = packed_weights(c.name + "/packed", w, ps.p, ps.pc, m, ps.int8, &scale);
  const DType st_type = ps.int8 ? DType::kI32 : DType::kFp32;
  const std::vector<std::int64_t> shape = {1, ps.h, g.pitch, m};
  const int y = packed_sums(c, shape, ps);
  put_on_grid(y, g);
  copy_rows(st_type, splat(c.name + "/pad", st_type, 0.0, {1, m}), 0, y, 0, 1, c);
  const std::int64_t blk = row_block(rows, 1);
  // (y in one range: the chain after it then runs in p parts, one per group of slices, each
  // long enough to hide its fill; cut at the blocks, its 4 p slices a chunk left other tensors
  // too few and the chain ran in pieces: ResNet-50 int8 160.1 k -> 157.3 k cycles)
  if (rows > blk) chunk_by(xc, blk);
  const std::int64_t tn_n = (m + k_.mxm_cols - 1) / k_.mxm_cols;
  for (std::int64_t r0 = 0; r0 < rows; r0 += blk)
    for (std::int64_t s = 0; s < ps.p; ++s)
      for (std::int64_t tn = 0; tn < tn_n; ++tn) {
        std::int64_t mb = std::min(blk, rows - r0);
        if (s == ps.p - 1 && r0 + mb == rows) --mb;
        if (mb <= 0) continue;
        KStep st = product_step(y, mb, r0 * ps.p + s + 1, tn, ps.pc, c,
                                ps.int8 ? DType::kI8 : DType::kFp16);
        st.d_stride = ps.p;
        KPass pass;
        pass.x = xc;
        pass.x_row = r0;
        pass.w = wt;
        pass.w_row = s * ps.pc;
        pass.w_tile = tn;
        pass.k = ps.pc;
        st.passes.push_back(pass);
        k_.steps.push_back(std::move(st));
      }
  const double xs = ps.int8 ? activation_scale(c) : 1.0;
  int r = ps.int8 ? dequantize(c, y, xs, scale, {m}, shape) : y;
  r = on_grid_of(y, r);
  if (pc.has_bias)
    r = on_grid_of(y,
                   vx(VxmOp::kAdd, r, fp32_constant(c.name + "/bias", {m}, pc.bias), c, "biased"));
  const int out =
      on_grid_of(y, add_tensor(c.name + "/out", DType::kFp16, shape, KTensor::Role::kTemp));
  cast(DType::kFp32, DType::kFp16, r, out, g_.where(c));
  set_cl_output(c, pc.out_value, out, {1, m, pc.w0.ho, pc.w0.wo}, pc.tr);
}

}  // namespace lpu::compiler::lowering
