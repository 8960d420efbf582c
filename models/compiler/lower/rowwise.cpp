// Row-wise convolutions (a model's image in the ONNX layout: the stem): banded weights over
// input rows, channels folded into each vector, and the max pool that reads them on packed rows
// (docs/compiler.md, "Row-wise convolution").
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

bool Lowering::rowwise_fits(const Node& n, const std::vector<std::int64_t>& xs, const Window& w,
                            std::int64_t m) const {
  if (xs.size() != 4 || cl_of_[static_cast<std::size_t>(n.inputs[0])] >= 0) return false;
  if (w.dh != 1 || w.dw != 1 || w.w > k_.lanes || w.w > k_.mxm_rows || m > k_.mxm_cols ||
      arch_.chip.mxm.weight_buffers < 2)
    return false;
  double rowwise = 0;
  if (!best_bands(w, m, xs[1], xs[0], &rowwise)) return false;
  // The channels-last way: a pass of the grid's rows per tap and K tile, on every plane.
  const std::int64_t grid_w =
      (std::max(w.w + w.pl + w.pr, (w.wo - 1) * w.sw + w.kw) + w.sw - 1) / w.sw;
  const std::int64_t cl =
      xs[0] * w.ho * grid_w * w.kh * w.kw * ((xs[1] + k_.mxm_rows - 1) / k_.mxm_rows);
  return rowwise < static_cast<double>(cl) / std::max(1, arch_.chip.mxm.planes);
}

std::optional<Lowering::RowBands> Lowering::row_bands(const Window& w, std::int64_t m,
                                                      std::int64_t fold) const {
  constexpr std::int64_t kAlign = 16;
  RowBands b;
  b.q = k_.mxm_cols / m;
  b.fold = fold;
  b.seg_w = fold == 1 ? k_.lanes : k_.lanes / fold;
  if (b.q < 1 || b.seg_w < 1) return std::nullopt;
  b.groups = (w.wo + b.q - 1) / b.q;
  std::vector<std::pair<std::int64_t, std::int64_t>> span;  // [lo, hi) of the input columns
  for (std::int64_t g = 0; g < b.groups; ++g) {
    const std::int64_t first = b.q * g * w.sw - w.pl;
    const std::int64_t last = first + (std::min(b.q, w.wo - b.q * g) - 1) * w.sw + w.kw;
    const std::int64_t lo = std::max<std::int64_t>(0, first), hi = std::min(w.w, last);
    span.push_back({lo, std::max(lo, hi)});
  }
  // Segments: each from the first column of a group it holds, as many groups as fit S lanes
  // (the plain row, fold 1, is one segment at column 0).
  for (std::int64_t g = 0; g < b.groups; ++g) {
    const auto [lo, hi] = span[static_cast<std::size_t>(g)];
    if (b.seg_lo.empty() || (fold > 1 && hi - b.seg_lo.back() > b.seg_w))
      b.seg_lo.push_back(fold == 1 ? 0 : lo);
    if (hi - b.seg_lo.back() > b.seg_w) return std::nullopt;
    b.seg.push_back(b.segments() - 1);
  }
  // Group g's lanes: [first, end) from its columns in block 0 to those in block fold - 1.
  std::vector<std::pair<std::int64_t, std::int64_t>> lanes;
  for (std::int64_t g = 0; g < b.groups; ++g) {
    const auto [lo, hi] = span[static_cast<std::size_t>(g)];
    const std::int64_t first = b.lane(g, 0, lo), end = b.lane(g, fold - 1, hi);
    lanes.push_back({first, std::max(first, end)});
    b.rows = std::max(b.rows, std::max(first, end) - first / kAlign * kAlign);
  }
  b.rows = std::max<std::int64_t>(kAlign, (b.rows + kAlign - 1) / kAlign * kAlign);
  if (b.rows > k_.mxm_rows) return std::nullopt;
  for (const auto& [lo, hi] : lanes) {
    std::int64_t at = lo / kAlign * kAlign;
    if (at + b.rows > k_.mxm_rows) at = (k_.mxm_rows - b.rows) / kAlign * kAlign;
    if (at > lo || at + b.rows < hi) return std::nullopt;
    b.at.push_back(at);
  }
  return b;
}

std::optional<Lowering::RowBands> Lowering::best_bands(const Window& w, std::int64_t m,
                                                       std::int64_t c, std::int64_t nb,
                                                       double* cycles) const {
  // Cycles, roughly: the passes' rows (and an install each) over the planes, and the folded
  // rows' shifts and selects over the SXM units.
  const std::int64_t planes = std::max(1, arch_.chip.mxm.planes);
  const std::int64_t units = std::max(1, arch_.chip.sxm.units);
  std::optional<RowBands> best;
  double best_cost = 0;
  for (std::int64_t f = 1; f <= c; ++f) {
    auto b = row_bands(w, m, f);
    if (!b) continue;
    const std::int64_t cg = b->cgroups(c);
    const std::int64_t passes =
        nb * b->groups * w.kh * cg * ((w.ho + k_.mxm_accumulators - 1) / k_.mxm_accumulators);
    const double mxm = static_cast<double>(nb * b->groups * w.kh * cg * w.ho +
                                           passes * arch_.chip.mxm.install_cycles) /
                       static_cast<double>(planes);
    const double sxm = f == 1 ? 0.0
                              : static_cast<double>(nb * b->segments() * (c + (c - cg)) * w.h) /
                                    static_cast<double>(units);
    if (!best || mxm + sxm < best_cost) {
      best = std::move(b);
      best_cost = mxm + sxm;
    }
  }
  if (cycles) *cycles = best_cost;
  return best;
}

void Lowering::conv_rowwise(const Node& n, const Window& w, const std::vector<double>& wts,
                            const std::vector<double>& bias, bool has_bias, int out_value,
                            DType dt) {
  const std::int64_t nb = nchw_shape(n.inputs[0])[0], c = nchw_shape(n.inputs[0])[1];
  const std::int64_t m = static_cast<std::int64_t>(bias.size());
  const RowBands bands = *best_bands(w, m, c, nb);
  const std::int64_t q_n = bands.q, groups = bands.groups, kb = bands.rows;
  const std::int64_t cg = bands.cgroups(c), segs = bands.segments();
  const std::int64_t hq = ((w.ho - 1) * w.sh + w.kh - 1) / w.sh + 1;
  const bool int8 = opt_.precision == Precision::kInt8;
  int x = clean(tensor(n.inputs[0], &n), n);
  k_.calibration.push_back({n.name, x});
  const double x_scale = int8 ? activation_scale(n) : 1.0;
  if (int8) x = quantize_activations(x, x_scale, n);
  // The rows the passes read: unit (image, channel group, segment) of H rows.
  if (bands.fold > 1) x = fold_rows(n, x, bands, c, w.h);
  const std::int64_t copies = std::max<std::int64_t>(1, arch_.chip.mxm.planes);
  const std::vector<std::vector<int>> phase = rowwise_phases(n, w, x, nb * cg * segs, hq, copies);
  std::vector<double> w_scale;
  const int wb = rowwise_weights(n, w, wts, bands, c, w_scale, dt);
  const std::int64_t cols = q_n * m;
  // The products: per image, group and block of output rows, the kh x C / fold passes.
  const int y = add_tensor(n.name + (int8 ? "/sum" : "/product"), int8 ? DType::kI32 : DType::kFp32,
                           {nb, groups, w.ho, cols}, KTensor::Role::kTemp);
  std::vector<std::vector<std::vector<std::pair<int, int>>>> parts(
      static_cast<std::size_t>(copies));
  for (std::int64_t k = 0; k < copies; ++k)
    for (int t : phase[static_cast<std::size_t>(k)])
      parts[static_cast<std::size_t>(k)].push_back(int8 ? std::vector<std::pair<int, int>>{{t, wb}}
                                                        : product_parts(t, wb, dt, n));
  for (std::int64_t b = 0; b < nb; ++b)
    for (std::int64_t g = 0; g < groups; ++g)
      for (std::int64_t r0 = 0; r0 < w.ho; r0 += k_.mxm_accumulators) {
        const std::int64_t mrows = std::min<std::int64_t>(k_.mxm_accumulators, w.ho - r0);
        KStep s = product_step(y, mrows, (b * groups + g) * w.ho + r0, 0, kb, n,
                               int8 ? DType::kI8 : DType::kFp16);
        const auto& pk = parts[static_cast<std::size_t>(g % copies)];
        const std::int64_t seg = bands.seg[static_cast<std::size_t>(g)];
        for (std::int64_t r = 0; r < w.kh; ++r)
          for (std::int64_t ci = 0; ci < cg; ++ci)
            for (const auto& [xa, wa] : pk[static_cast<std::size_t>(r % w.sh)]) {
              KPass ps;
              ps.x = xa;
              ps.w = wa;
              ps.x_row = ((b * cg + ci) * segs + seg) * hq + r0 + r / w.sh;
              ps.w_row = ((g * w.kh + r) * cg + ci) * kb;
              ps.k = kb;
              ps.window = true;
              ps.w_at = bands.at[static_cast<std::size_t>(g)];
              s.passes.push_back(ps);
            }
        k_.steps.push_back(std::move(s));
      }
  rowwise_output(n, w, bands, y, x_scale, w_scale, bias, has_bias, out_value, dt);
}

int Lowering::fold_rows(const Node& n, int x, const RowBands& bands, std::int64_t c,
                        std::int64_t h) {
  const KTensor kx = meta(x);
  const std::int64_t nb = kx.rows() / (c * h), fold = bands.fold, S = bands.seg_w;
  const std::int64_t cg = bands.cgroups(c), segs = bands.segments(), lanes = k_.lanes;
  const int z =
      add_tensor(n.name + "/folded", kx.dtype, {nb * cg * segs * h, lanes}, KTensor::Role::kTemp);
  auto sxm = [&](KStep::SxmOp op, int a, std::int64_t a_row, int b, int d, std::int64_t d_row,
                 std::int64_t k, bool north) {
    KStep s;
    s.kind = KStep::Kind::kSxm;
    s.sxm = op;
    s.sxm_n = static_cast<int>(k);
    s.north = north;
    s.args.op = VxmOp::kMov;
    s.args.type = kx.dtype;
    s.a = a;
    s.a_row = a_row;
    s.b = b;
    s.d = d;
    s.d_row = d_row;
    s.rows = h;
    s.origin = g_.where(n);
    k_.steps.push_back(std::move(s));
  };
  for (std::int64_t b = 0; b < nb; ++b)
    for (std::int64_t ci = 0; ci < cg; ++ci)
      for (std::int64_t sg = 0; sg < segs; ++sg) {
        const std::int64_t unit = ((b * cg + ci) * segs + sg) * h;
        const std::int64_t nf = std::min(fold, c - ci * fold);
        // Channel fold ci + f's row with column seg_lo at lane f S: a shift (into the unit's
        // rows when it is the only block, else a temporary), or the row itself.
        std::vector<std::pair<int, std::int64_t>> block;  // tensor, first row
        for (std::int64_t f = 0; f < nf; ++f) {
          const std::int64_t move = f * S - bands.seg_lo[static_cast<std::size_t>(sg)];
          const std::int64_t x_row = (b * c + ci * fold + f) * h;
          if (move == 0 && f == 0 && nf > 1) {
            block.push_back({x, x_row});
            continue;
          }
          const int t =
              nf == 1 ? z
                      : add_tensor(n.name + "/block", kx.dtype, {h, lanes}, KTensor::Role::kTemp);
          sxm(KStep::SxmOp::kShift, x, x_row, -1, t, nf == 1 ? unit : 0, std::abs(move), move > 0);
          block.push_back({t, 0});
        }
        // Blocks from the last: lanes below (f + 1) S from block f, the rest from those after.
        int acc = block.back().first;
        for (std::int64_t f = nf - 2; f >= 0; --f) {
          const int d =
              f == 0 ? z
                     : add_tensor(n.name + "/blocks", kx.dtype, {h, lanes}, KTensor::Role::kTemp);
          const auto [a, a_row] = block[static_cast<std::size_t>(f)];
          sxm(KStep::SxmOp::kSelect, a, a_row, acc, d, f == 0 ? unit : 0, (f + 1) * S, true);
          acc = d;
        }
      }
  // Lanes past a segment's columns hold the row's other columns: finite, under zero weights.
  k_.tensors[static_cast<std::size_t>(z)].clean = false;
  return z;
}

std::vector<std::vector<int>> Lowering::rowwise_phases(const Node& n, const Window& w, int x,
                                                       std::int64_t units, std::int64_t hq,
                                                       std::int64_t copies) {
  const KTensor kx = meta(x);
  const std::int64_t W = kx.shape.back();
  // Input rows past hq sh - pt, which no window reads, are left out (they would land in the
  // next unit's rows).
  const std::int64_t rows = std::min(w.h, hq * w.sh - w.pt);
  // Row phases: phase a holds padded rows i sh + a of every unit (image and channel, or folded
  // rows), copies of them (one per plane, so that the planes' passes read their own).
  std::vector<std::vector<int>> phase(static_cast<std::size_t>(copies));
  const int zero = splat(n.name + "/border", kx.dtype, 0.0, {hq, W});
  for (std::int64_t k = 0; k < copies; ++k)
    for (std::int64_t a = 0; a < w.sh; ++a)
      phase[static_cast<std::size_t>(k)].push_back(
          add_tensor(n.name + "/rows", kx.dtype, {units * hq, W}, KTensor::Role::kTemp));
  for (std::int64_t k = 0; k < copies; ++k)
    for (std::int64_t bc = 0; bc < units; ++bc) {
      KStep s;  // the input rows, dealt over the phases (first: it places them)
      s.args.op = VxmOp::kMov;
      s.args.type = kx.dtype;
      s.a = x;
      s.a_row = bc * w.h;
      s.rows = rows;
      for (std::int64_t r = 0; r < std::min(w.sh, rows); ++r)
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
  return phase;
}

int Lowering::rowwise_weights(const Node& n, const Window& w, const std::vector<double>& wts,
                              const RowBands& bands, std::int64_t c, std::vector<double>& w_scale,
                              DType dt) {
  const std::int64_t taps = w.kh * w.kw, W = w.w;
  const std::int64_t m = static_cast<std::int64_t>(wts.size()) / (c * taps);
  const std::int64_t q_n = bands.q, groups = bands.groups, kb = bands.rows;
  const bool int8 = opt_.precision == Precision::kInt8;
  // The banded weights, block (g, r, channel group) of kb rows: input lanes at[g] ..; int8 per
  // output channel m.
  w_scale.assign(static_cast<std::size_t>(m), 1.0);
  if (int8)
    for (std::int64_t j = 0; j < m; ++j) {
      double most = 0;
      for (std::int64_t e = 0; e < c * taps; ++e)
        most = std::max(most, std::fabs(wts[static_cast<std::size_t>(j * c * taps + e)]));
      w_scale[static_cast<std::size_t>(j)] = most > 0 ? most / 127.0 : 1.0;
    }
  const DType wtype = int8 ? DType::kI8 : dt;
  const std::int64_t cg = bands.cgroups(c), fold = bands.fold;
  const std::int64_t rows = groups * w.kh * cg * kb, cols = q_n * m;
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
              const std::int64_t row = ((g * w.kh + r) * cg + ci / fold) * kb +
                                       bands.lane(g, ci % fold, col) -
                                       bands.at[static_cast<std::size_t>(g)];
              for (std::int64_t mm = 0; mm < m; ++mm) {
                const double v = wts[static_cast<std::size_t>((mm * c + ci) * taps + r * w.kw + j)];
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
  return wb;
}

void Lowering::rowwise_output(const Node& n, const Window& w, const RowBands& bands, int y,
                              double x_scale, const std::vector<double>& w_scale,
                              const std::vector<double>& bias, bool has_bias, int out_value,
                              DType dt) {
  const std::int64_t nb = nchw_shape(n.inputs[0])[0];
  const std::int64_t m = static_cast<std::int64_t>(bias.size());
  const std::int64_t q_n = bands.q, groups = bands.groups, cols = q_n * m;
  const bool int8 = opt_.precision == Precision::kInt8;
  // Back to the node's numbers: int8 sums scaled, then the bias; as the node's type.
  int yf = y;
  auto row_of = [&](const std::string& tag, const std::vector<double>& per_m) {
    std::vector<double> row;  // per_m for each of the group's q_n pixels
    for (std::int64_t q = 0; q < q_n; ++q)
      row.insert(row.end(), per_m.begin(), per_m.end());
    return fp32_constant(n.name + tag, {cols}, row);
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
  if (rowwise_pool(w, bands, yd, out_value)) return;
  // Pixel q of each group to its own row: out [N, wo, ho, M], column ow's output rows in order.
  const int out = add_tensor(n.name + "/out", dt, {nb, w.wo, w.ho, m}, KTensor::Role::kTemp);
  for (std::int64_t b = 0; b < nb; ++b)
    for (std::int64_t g = 0; g < groups; ++g)
      for (std::int64_t q = 0; q < q_n && q_n * g + q < w.wo; ++q) {
        pixel_to_rows(dt, q * m, yd, (b * groups + g) * w.ho, out, (b * w.wo + q_n * g + q) * w.ho,
                      w.ho, n);
      }
  // Lanes past M hold the group's other pixels.
  k_.tensors[static_cast<std::size_t>(out)].clean = q_n == 1 && meta(yd).clean;
  set_cl_output(n, out_value, out, {nb, m, w.ho, w.wo}, true);
}

void Lowering::pixel_to_rows(DType dt, std::int64_t lanes, int a, std::int64_t a_row, int d,
                             std::int64_t d_row, std::int64_t rows, const Node& n) {
  if (!lanes) {  // pixel 0 is in place: a copy
    copy_rows(dt, a, a_row, d, d_row, rows, n);
    return;
  }
  KStep s;
  s.kind = KStep::Kind::kSxm;
  s.sxm = KStep::SxmOp::kShift;
  s.sxm_n = static_cast<int>(lanes);
  s.north = false;
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

bool Lowering::rowwise_pool(const Window& w, const RowBands& bands, int yd, int out_value) {
  const Node* relu = only_reader(out_value);
  const Node* pool = relu && relu->op == "Relu" ? only_reader(relu->outputs[0]) : relu;
  if (relu && relu->op != "Relu") relu = nullptr;
  if (!pool || pool->op != "MaxPool" || pool->inputs.size() != 1 || pool->outputs.empty() ||
      (pool->outputs.size() > 1 && pool->outputs[1] >= 0) || (relu && relu->outputs.size() != 1))
    return false;
  const KTensor ky = meta(yd);
  if (ky.dtype != DType::kFp16 && ky.dtype != DType::kFp32 && ky.dtype != DType::kBf16)
    return false;
  no_attrs(*pool, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides",
                   "storage_order"});
  const std::int64_t nb = ky.shape[0], groups = bands.groups, cols = ky.cols();
  const std::int64_t m = cols / bands.q, q_n = bands.q;
  // The pool's window on the convolution's output (the ONNX orientation): its rows (H) are the
  // packed rows, its columns (W) the groups' pixels.
  const Window pw = window(*pool, {nb, m, w.ho, w.wo}, {}, true);
  if (pw.dh != 1 || pw.dw != 1) return false;
  const DType dt = ky.dtype;
  const double fill = -std::numeric_limits<double>::infinity();
  // (1) Down the rows, on the packed rows (Q pixels a vector): row phases a of padded rows
  // i sh + a of each (image, group), then a max over the kh taps.
  const std::int64_t nbg = nb * groups, sh = pw.sh, hq = pw.ho + (pw.kh - 1) / sh;
  std::vector<int> ph;
  for (std::int64_t a = 0; a < sh; ++a)
    ph.push_back(add_tensor(pool->name + "/rows", dt, {nbg * hq, cols}, KTensor::Role::kTemp));
  for (std::int64_t bg = 0; bg < nbg; ++bg) {
    KStep s;  // the rows, dealt over the phases
    s.args.op = VxmOp::kMov;
    s.args.type = dt;
    s.a = yd;
    s.a_row = bg * w.ho;
    s.rows = std::min(w.ho, (hq - 1) * sh + sh - pw.pt);
    for (std::int64_t r = 0; r < std::min(sh, s.rows); ++r)
      s.deal.push_back(
          {ph[static_cast<std::size_t>((r + pw.pt) % sh)], bg * hq + (r + pw.pt) / sh});
    s.d = s.deal[0].first;
    s.d_row = s.deal[0].second;
    if (s.deal.size() == 1) s.deal.clear();
    s.origin = g_.where(*pool);
    k_.steps.push_back(std::move(s));
  }
  // The padding rows (above and below each group's rows): runs of the fill.
  std::vector<std::tuple<int, std::int64_t, std::int64_t>> runs;  // phase tensor, row, rows
  for (std::int64_t a = 0; a < sh; ++a) {
    std::int64_t run = -1;
    for (std::int64_t r = 0; r <= nbg * hq; ++r) {
      const std::int64_t h = (r % hq) * sh + a - pw.pt;
      const bool pad = r < nbg * hq && (h < 0 || h >= w.ho);
      if (pad && run < 0) run = r;
      if (!pad && run >= 0) {
        runs.emplace_back(ph[static_cast<std::size_t>(a)], run, r - run);
        run = -1;
      }
    }
  }
  std::int64_t most = 0;
  for (const auto& r : runs)
    most = std::max(most, std::get<2>(r));
  if (most) {
    const int z = splat(pool->name + "/border", dt, fill, {most, cols});
    for (const auto& [t, row, rows] : runs)
      copy_rows(dt, z, 0, t, row, rows, *pool);
  }
  // Tap t of k reads phase t % st from row offset (t / st) unit; into d[t] (one tensor per
  // tap: a chain passes them along), rows d_row ...
  auto taps = [&](const std::vector<int>& from, std::int64_t st, std::int64_t unit,
                  const std::vector<int>& d, std::int64_t a_row, std::int64_t d_row,
                  std::int64_t rows) {
    for (std::size_t t = 0; t < d.size(); ++t)
      window_tap(VxmOp::kMax, dt, t ? d[t - 1] : -1, d_row, from[t % static_cast<std::size_t>(st)],
                 a_row + static_cast<std::int64_t>(t) / st * unit, d[t], d_row, rows, *pool);
  };
  auto tap_tensors = [&](std::int64_t k, std::vector<std::int64_t> shape, const char* tag) {
    std::vector<int> d;
    for (std::int64_t t = 0; t < k; ++t)
      d.push_back(add_tensor(pool->name + tag, dt, shape, KTensor::Role::kTemp));
    return d;
  };
  // Rows past an (image, group)'s ho' results are computed and never read.
  const std::int64_t vrows = nbg * hq - (pw.kh - 1) / sh;
  std::vector<int> down = tap_tensors(pw.kh, {nbg * hq, cols}, "/down");
  taps(ph, sh, 1, down, 0, 0, vrows);
  if (relu) {  // max commutes with the Relu: on these Q-pixel rows, the fewest the pool has
    const int d = add_tensor(relu->name + "/relu", dt, {nbg * hq, cols}, KTensor::Role::kTemp);
    KStep s;
    s.args.op = VxmOp::kRelu;
    s.args.type = dt;
    s.a = down.back();
    s.d = d;
    s.rows = vrows;
    s.origin = g_.where(*relu);
    k_.steps.push_back(std::move(s));
    down.push_back(d);
  }
  const int v = down.back();
  // (2) Pixel q of each group to rows of its own (SXM shifts south by q M), into the column
  // phases c of padded columns j sw + c: U_c [N, wq, ho', M].
  const std::int64_t sw = pw.sw, wq = pw.wo + (pw.kw - 1) / sw, hp = pw.ho;
  std::vector<int> cph;
  for (std::int64_t c = 0; c < sw; ++c)
    cph.push_back(add_tensor(pool->name + "/cols", dt, {nb * wq * hp, m}, KTensor::Role::kTemp));
  std::vector<std::vector<bool>> filled(static_cast<std::size_t>(sw),
                                        std::vector<bool>(static_cast<std::size_t>(nb * wq)));
  for (std::int64_t b = 0; b < nb; ++b)
    for (std::int64_t g = 0; g < groups; ++g)
      for (std::int64_t q = 0; q < q_n && q_n * g + q < w.wo; ++q) {
        const std::int64_t owp = q_n * g + q + pw.pl, c = owp % sw, jj = owp / sw;
        if (jj >= wq) continue;  // a column no window reads
        pixel_to_rows(dt, q * m, v, (b * groups + g) * hq, cph[static_cast<std::size_t>(c)],
                      (b * wq + jj) * hp, hp, *pool);
        filled[static_cast<std::size_t>(c)][static_cast<std::size_t>(b * wq + jj)] = true;
      }
  // Padding columns: the fill.
  int zc = -1;
  for (std::int64_t c = 0; c < sw; ++c)
    for (std::int64_t bj = 0; bj < nb * wq; ++bj) {
      if (filled[static_cast<std::size_t>(c)][static_cast<std::size_t>(bj)]) continue;
      if (zc < 0) zc = splat(pool->name + "/border_cols", dt, fill, {hp, m});
      copy_rows(dt, zc, 0, cph[static_cast<std::size_t>(c)], bj * hp, hp, *pool);
    }
  for (int t : cph)
    k_.tensors[static_cast<std::size_t>(t)].clean = false;  // lanes past M: other pixels
  // (3) Across: per image, a max over the kw taps of whole runs of columns; the last tap
  // straight onto the grid of a packed bottleneck the pool feeds (a run of ho' rows per output
  // column, at the grid's pitch), whose padding rows are zero.
  const int pv = pool->outputs[0];
  std::optional<CLGrid> onto;
  if (nb == 1 && dt == DType::kFp16) onto = grid_wanted(pv, hp);
  std::vector<int> across = tap_tensors(pw.kw - (onto ? 1 : 0), {nb, pw.wo, hp, m}, "/window");
  for (std::int64_t b = 0; b < nb; ++b)
    taps(cph, sw, hp, across, b * wq * hp, b * pw.wo * hp, pw.wo * hp);
  int out = across.empty() ? -1 : across.back();
  if (onto) {
    const int d =
        add_tensor(pool->name + "/out", dt, {nb, pw.wo, onto->pitch, m}, KTensor::Role::kTemp);
    std::int64_t cursor = 0;
    const int zero = splat(pool->name + "/pad", dt, 0.0, {onto->pitch, m});
    const std::int64_t t = pw.kw - 1, c = t % sw, u = t / sw;
    for (std::int64_t r = 0; r < nb * pw.wo; ++r) {
      const std::int64_t at = r * onto->pitch + onto->off, b = r / pw.wo, j = r % pw.wo;
      if (at > cursor) copy_rows(dt, zero, 0, d, cursor, at - cursor, *pool);
      window_tap(VxmOp::kMax, dt, out, r * hp, cph[static_cast<std::size_t>(c)],
                 (b * wq + j + u) * hp, d, at, hp, *pool);
      cursor = at + hp;
    }
    if (nb * pw.wo * onto->pitch > cursor)
      copy_rows(dt, zero, 0, d, cursor, nb * pw.wo * onto->pitch - cursor, *pool);
    put_on_grid(d, *onto);
    across.push_back(d);
    out = d;
  }
  for (int tt : across)
    k_.tensors[static_cast<std::size_t>(tt)].clean = false;
  set_cl_output(*pool, pv, out, {nb, m, pw.ho, pw.wo}, true);
  folded_.insert(pool);
  if (relu) folded_.insert(relu);
  return true;
}

}  // namespace lpu::compiler::lowering
