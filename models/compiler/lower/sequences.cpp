// Row and lane moves, reductions, softmax and transposes of row tensors.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

int Lowering::vx(VxmOp op, int a, int b, const Node& n, const std::string& tag) {
  const KTensor& ka = k_.tensors[static_cast<std::size_t>(a)];
  std::vector<std::int64_t> shape = ka.shape;
  if (b >= 0 && k_.tensors[static_cast<std::size_t>(b)].elements() > ka.elements())
    shape = k_.tensors[static_cast<std::size_t>(b)].shape;
  const DType dt = ka.dtype;
  const int d = add_tensor(n.name + "/" + tag, dt, shape, KTensor::Role::kTemp);
  step(op, dt, a, b >= 0 ? fit(b, shape, n) : -1, d, g_.where(n));
  return d;
}

int Lowering::sel(int mask, int a, int b, const Node& n, const std::string& tag) {
  // (add_tensor may move the tensors: keep copies, not references, across it)
  const DType dt = k_.tensors[static_cast<std::size_t>(a)].dtype;
  const auto shape = k_.tensors[static_cast<std::size_t>(a)].shape;
  const int d = add_tensor(n.name + "/" + tag, dt, shape, KTensor::Role::kTemp);
  step(VxmOp::kSel, dt, a, b, d, g_.where(n), mask);
  return d;
}

int Lowering::reciprocal(int x, const Node& n) {
  const int ax = vx(VxmOp::kAbs, x, -1, n, "abs");
  const int r = vx(VxmOp::kRsqrt, ax, -1, n, "rsqrt");
  const int r2 = vx(VxmOp::kMul, r, r, n, "rcp");
  const int neg = cmp(VxmOp::kCmpLt, x, row_const(x, 0.0, n, "zero"), n, "negative");
  const int nr2 = vx(VxmOp::kNeg, r2, -1, n, "nrcp");
  return sel(neg, nr2, r2, n, "reciprocal");
}

int Lowering::widen(int t, const Node& n) {
  const DType from = k_.tensors[static_cast<std::size_t>(t)].dtype;
  if (from == DType::kFp32) return t;
  const std::string name = k_.tensors[static_cast<std::size_t>(t)].name + "/fp32";
  const auto shape = k_.tensors[static_cast<std::size_t>(t)].shape;
  const int d = add_tensor(name, DType::kFp32, shape, KTensor::Role::kTemp);
  cast(from, DType::kFp32, t, d, g_.where(n));
  return on_grid_of(t, d);
}

void Lowering::narrow_into(int t, DType to, int out, const Node& n) {
  if (to == DType::kFp32)
    step(VxmOp::kMov, DType::kFp32, t, -1, out, g_.where(n));
  else
    cast(DType::kFp32, to, t, out, g_.where(n));
}

int Lowering::float_input(const Node& n, std::size_t i) {
  const int t = tensor(i < n.inputs.size() ? n.inputs[i] : -1, &n);
  const DType dt = k_.tensors[static_cast<std::size_t>(t)].dtype;
  if (dt != DType::kFp32 && dt != DType::kFp16 && dt != DType::kBf16)
    throw InputError(g_.where(n), std::string("type ") + isa::to_string(dt) +
                                      " is not supported (a float type)");
  return t;
}

void Lowering::no_attrs(const Node& n, std::initializer_list<const char*> allowed) {
  for (const auto& [key, unused] : n.attrs) {
    (void)unused;
    bool ok = false;
    for (const char* a : allowed)
      ok = ok || key == a;
    if (!ok) throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
  }
}

std::optional<std::vector<std::int64_t>> Lowering::const_ints(const Node& n, std::size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return std::nullopt;
  const Value& v = g_.values[static_cast<std::size_t>(n.inputs[i])];
  if (!v.constant || v.dtype != DType::kNone)
    throw InputError(g_.where(n), "input '" + v.name + "' must be a constant int64 tensor");
  return v.ints;
}

void Lowering::reshape_to(const Node& n, int t, std::vector<std::int64_t> shape) {
  const int o = n.outputs.empty() ? -1 : n.outputs[0];
  if (o < 0) throw InputError(g_.where(n), "has no output");
  const Value& v = g_.values[static_cast<std::size_t>(o)];
  tensor_of_[static_cast<std::size_t>(o)] = reshaped(t, std::move(shape), n, v.name);
}

int Lowering::reshaped(int t, std::vector<std::int64_t> shape, const Node& n,
                       const std::string& name) {
  const KTensor kt = meta(t);
  std::int64_t elems = 1;
  for (auto d : shape)
    elems *= d;
  if (elems != kt.elements())
    throw InputError(g_.where(n), "reshape of " + shape_str(kt.shape) + " to " + shape_str(shape) +
                                      " changes the number of elements");
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

double Lowering::element_of(const KTensor& kt, std::int64_t j) {
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

int Lowering::relayout(int t, std::int64_t cols, const Node& n) {
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
      acc = acc < 0 ? sh
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

int Lowering::sum_last(int x, const Node& n) {
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

int Lowering::sxm_shift(int t, int k, bool north, const std::vector<std::int64_t>& shape,
                        const Node& n, const std::string& tag) {
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

int Lowering::softmax_last(int x, const Node& n) {
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

int Lowering::transpose_last2(int x, const Node& n) {
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
        acc = acc < 0 ? sh : sxm_select(acc, sh, static_cast<int>(16 * bi), {16, rp}, n, "gather");
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

int Lowering::transpose_perm(int t, const std::vector<std::int64_t>& perm, const Node& n) {
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

int Lowering::permute_leading(int t, const std::vector<std::int64_t>& lead, const Node& n) {
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

int Lowering::gather_rows(int t, const std::vector<std::int64_t>& src,
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
    while (e < rows && src[static_cast<std::size_t>(e)] == src[static_cast<std::size_t>(e - 1)] + 1)
      ++e;
    copy_rows(kt.dtype, t, src[static_cast<std::size_t>(d)], out, d, e - d, n);
    d = e;
  }
  k_.tensors[static_cast<std::size_t>(out)].clean = kt.clean;
  return out;
}

void Lowering::copy_rows(DType dt, int a, std::int64_t a_row, int d, std::int64_t d_row,
                         std::int64_t rows, const Node& n) {
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

int Lowering::sxm_select(int a, int b, int k, const std::vector<std::int64_t>& shape, const Node& n,
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

int Lowering::sum_leading(int x, std::int64_t axis, const Node& n) {
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

std::vector<std::int64_t> Lowering::to_cl(std::size_t rank) {  // source axis of each cl axis
  std::vector<std::int64_t> p{0};
  for (std::size_t i = 2; i < rank; ++i)
    p.push_back(static_cast<std::int64_t>(i));
  p.push_back(1);
  return p;
}

}  // namespace lpu::compiler::lowering
