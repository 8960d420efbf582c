// Matrix products (MatMul, Gemm): tiles, fp16 splits and int8 quantization.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

int Lowering::clean(int t, const Node& n) {
  const KTensor kt = meta(t);
  if (kt.clean) return t;
  if (auto it = cleaned_.find(t); it != cleaned_.end()) return it->second;  // made before
  const int bytes = isa::dtype_bytes(kt.dtype);
  const DType it = bytes == 1 ? DType::kI8 : bytes == 2 ? DType::kI16 : DType::kI32;
  const int mask = splat(kt.name + "/columns", it, -1.0, {kt.cols()});
  const int out = add_tensor(kt.name + "/clean", kt.dtype, kt.shape, KTensor::Role::kTemp);
  step(VxmOp::kAnd, it, t, fit(mask, kt.shape, n), out, g_.where(n));
  k_.tensors[static_cast<std::size_t>(out)].clean = true;
  cleaned_[t] = out;
  return on_grid_of(t, out);
}

int Lowering::lane_broadcast(int t, std::int64_t cols, const Node& n) {
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

int Lowering::transposed_constant(int t, const Node& n) {
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

std::pair<int, int> Lowering::split_fp16(int t, const Node& n, bool weights) {
  if (auto it = splits_.find({t, weights}); it != splits_.end()) return it->second;
  const auto parts = split_fp16_new(t, n, weights);
  splits_[{t, weights}] = parts;
  return parts;
}

std::pair<int, int> Lowering::split_fp16_new(int t, const Node& n, bool weights) {
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
    const int hi = add_tensor(src.name + "/hi", DType::kFp16, src.shape, KTensor::Role::kConstant);
    k_.tensors[static_cast<std::size_t>(hi)].data = std::move(h);
    const int lo = add_tensor(src.name + "/lo", DType::kFp16, src.shape, KTensor::Role::kConstant);
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

void Lowering::cast(DType from, DType to, int a, int d, const std::string& origin) {
  KStep s;
  s.args.op = VxmOp::kCast;
  s.args.type = from;
  s.args.to = to;
  s.a = a;
  s.d = d;
  s.origin = origin;
  k_.steps.push_back(std::move(s));
}

std::vector<std::pair<int, int>> Lowering::product_parts(int x, int w, DType dt, const Node& n) {
  if (dt == DType::kFp16) return {{x, w}};
  const auto [xh, xl] = split_fp16(x, n, false);
  const auto [wh, wl] = split_fp16(w, n, true);
  if (opt_.precision == Precision::kFp16) return {{xh, wh}};
  return {{xh, wh}, {xh, wl}, {xl, wh}};
}

void Lowering::chunk_by(int t, std::int64_t rows) {
  KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
  KTensor& root = kt.view_of >= 0 ? k_.tensors[static_cast<std::size_t>(kt.view_of)] : kt;
  if (root.spread16 || root.role == KTensor::Role::kConstant ||
      root.cols() != kt.cols())  // a view with other rows: its blocks are not the root's
    return;
  if (root.chunk_rows == 0 || rows < root.chunk_rows) root.chunk_rows = rows;
}

std::int64_t Lowering::row_block(std::int64_t rows, std::int64_t others) const {
  const std::int64_t acc = k_.mxm_accumulators, planes = arch_.chip.mxm.planes;
  const std::int64_t shortest = std::max<std::int64_t>(1, k_.mxm_rows / 16);
  const std::int64_t b0 = (rows + acc - 1) / acc;
  const std::int64_t rounds = (b0 * others + planes - 1) / planes;
  const std::int64_t b = std::max(b0, std::min(rounds * planes / others, rows / shortest));
  return (rows + b - 1) / b;
}

KStep Lowering::product_step(int d, std::int64_t m, std::int64_t d_row, std::int64_t tn,
                             std::int64_t w_block, const Node& n, DType mm) const {
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

double Lowering::activation_scale(const Node& n) const {
  auto it = opt_.activation_max.find(n.name);
  if (it == opt_.activation_max.end())
    throw std::logic_error("int8 lowering: no calibration for node '" + n.name + "'");
  return it->second > 0 ? it->second / 127.0 : 1.0;
}

int Lowering::scaled_for_int8(int x, double scale, const Node& n) {
  const KTensor kx = meta(x);
  const DType wt = kx.dtype == DType::kFp16 && 1.0 / scale < 60000.0 ? DType::kFp16 : DType::kFp32;
  const int xf = wt == DType::kFp16 ? x : widen(x, n);
  return vx(VxmOp::kMul, xf, splat(n.name + "/1_sx", wt, 1.0 / scale, {kx.cols()}), n, "x_scaled");
}

int Lowering::quantize_activations(int x, double scale, const Node& n) {
  const int xs = scaled_for_int8(x, scale, n);
  const KTensor ks = meta(xs);
  const int q = add_tensor(n.name + "/x_q", DType::kI8, ks.shape, KTensor::Role::kTemp);
  cast(ks.dtype, DType::kI8, xs, q, g_.where(n));
  k_.tensors[static_cast<std::size_t>(q)].clean = ks.clean;
  return on_grid_of(x, q);
}

int Lowering::quantize_weights(const Node& n, int w, std::int64_t batches, std::int64_t kk,
                               std::int64_t nn, std::vector<double>& scales) {
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

void Lowering::matmul(const Node& n, int a, int b, bool ta, bool tb, float alpha, int c, float beta,
                      bool may_quantize) {
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
  const MatMulShape sh = matmul_shape(n, ka, kb);
  const std::int64_t kk = sh.k, nn = sh.n, batch_b = sh.batch_b;
  const std::vector<std::int64_t>& out_shape = sh.out;
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
  product_steps(n, y, passes, sh, int8);
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
    y = dequantize(n, y, x_scale, w_scale, sshape, out_shape);
  }
  if (alpha != 1.0f) {
    const int scaled =
        add_tensor(n.name + "/scaled", DType::kFp32, out_shape, KTensor::Role::kTemp);
    const int al = splat(n.name + "/alpha", DType::kFp32, alpha, {nn});
    step(VxmOp::kMul, DType::kFp32, y, al, scaled, g_.where(n));
    y = scaled;
  }
  if (c >= 0) y = add_c(n, y, c, beta, dt, out_shape);
  if (dt == DType::kFp16) {
    cast(DType::kFp32, DType::kFp16, y, output(n, DType::kFp16, out_shape), g_.where(n));
  } else if ((alpha != 1.0f || int8) && c < 0) {
    step(VxmOp::kMov, DType::kFp32, y, -1, output(n, DType::kFp32, out_shape), g_.where(n));
  }
}

Lowering::MatMulShape Lowering::matmul_shape(const Node& n, const KTensor& ka,
                                             const KTensor& kb) const {
  // numpy matmul shapes: 1-D operands gain a dimension that the result drops.
  MatMulShape out;
  std::vector<std::int64_t> sa = ka.shape, sb = kb.shape;
  if (sa.empty() || sb.empty()) throw InputError(g_.where(n), "scalar operands are not allowed");
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa.insert(sa.begin(), 1);
  if (b1) sb.push_back(1);
  const std::int64_t m = out.m = sa[sa.size() - 2], kk = out.k = sa.back(), nn = out.n = sb.back();
  if (sb[sb.size() - 2] != kk)
    throw InputError(g_.where(n), "inner dimensions differ: " + shape_str(ka.shape) + " x " +
                                      shape_str(kb.shape));
  std::int64_t &batch_a = out.batch_a, &batch_b = out.batch_b;
  for (std::size_t i = 0; i + 2 < sa.size(); ++i)
    batch_a *= sa[i];
  for (std::size_t i = 0; i + 2 < sb.size(); ++i)
    batch_b *= sb[i];
  std::vector<std::int64_t>& out_shape = out.out;
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
  return out;
}

void Lowering::product_steps(const Node& n, int y, const std::vector<std::pair<int, int>>& passes,
                             const MatMulShape& sh, bool int8) {
  const std::int64_t m = sh.m, kk = sh.k, nn = sh.n, batch_a = sh.batch_a, batch_b = sh.batch_b;
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
}

int Lowering::dequantize(const Node& n, int y, double x_scale, const std::vector<double>& w_scale,
                         const std::vector<std::int64_t>& scale_shape,
                         const std::vector<std::int64_t>& shape) {
  std::vector<double> scale;
  for (double ws : w_scale)
    scale.push_back(x_scale * ws);
  const int sc = fp32_constant(n.name + "/dequant", scale_shape, scale);
  const int yf = add_tensor(n.name + "/sum_f", DType::kFp32, shape, KTensor::Role::kTemp);
  cast(DType::kI32, DType::kFp32, y, yf, g_.where(n));
  return vx(VxmOp::kMul, yf, sc, n, "product");
}

int Lowering::add_c(const Node& n, int y, int c, float beta, DType dt,
                    const std::vector<std::int64_t>& out_shape) {
  const KTensor kc = meta(c);
  if (kc.dtype != dt) throw InputError(g_.where(n), "C has another type than A and B");
  if (!broadcast(kc.shape, out_shape) || *broadcast(kc.shape, out_shape) != out_shape)
    throw InputError(g_.where(n),
                     "C " + shape_str(kc.shape) + " does not broadcast to " + shape_str(out_shape));
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
    const int f = add_tensor(kc.name + "/beta", DType::kFp32, kc.shape, KTensor::Role::kConstant);
    k_.tensors[static_cast<std::size_t>(f)].data = std::move(data);
    cc = f;
  } else if (beta != 1.0f) {
    const int scaled = add_tensor(kc.name + "/beta", DType::kFp32, kc.shape, KTensor::Role::kTemp);
    const int be = splat(n.name + "/beta", DType::kFp32, beta, {kc.cols()});
    step(VxmOp::kMul, DType::kFp32, c, fit(be, kc.shape, n), scaled, g_.where(n));
    cc = scaled;
  }
  const int sum = dt == DType::kFp32
                      ? output(n, DType::kFp32, out_shape)
                      : add_tensor(n.name + "/sum", DType::kFp32, out_shape, KTensor::Role::kTemp);
  step(VxmOp::kAdd, DType::kFp32, y, fit(cc, out_shape, n), sum, g_.where(n));
  return sum;
}

void Lowering::lower_matmul(const Node& n) {
  auto in = [&](std::size_t i) {
    return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
  };
  for (const auto& [key, unused] : n.attrs) {
    (void)unused;
    throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
  }
  if (n.inputs.size() != 2) throw InputError(g_.where(n), "takes two inputs");
  matmul(n, in(0), in(1), false, false, 1.0f, -1, 0.0f);
  return;
}

void Lowering::lower_gemm(const Node& n) {
  auto in = [&](std::size_t i) {
    return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
  };
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

}  // namespace lpu::compiler::lowering
