// Normalizations and reductions: BatchNormalization, LayerNormalization, Softmax, ReduceSum and
// ReduceMean, GlobalAveragePool.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

void Lowering::lower_batch_norm(const Node& n) {
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
    const int a =
        vx(VxmOp::kMul, sc,
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
    return;
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
  return;
}

void Lowering::lower_global_average_pool(const Node& n) {
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
         splat(n.name + "/1_N", DType::kFp32, 1.0 / static_cast<double>(count), {1}), n, "mean");
  std::vector<std::int64_t> shape = kx.shape;
  for (std::size_t ax = 2; ax < rank; ++ax)
    shape[ax] = 1;
  const int out = output(n, kx.dtype, shape);
  narrow_into(y, kx.dtype, out, n);
  return;
}

void Lowering::lower_softmax(const Node& n) {
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
  return;
}

void Lowering::lower_reduce(const Node& n) {
  const std::string& op = n.op;
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
    const bool last_reduced =
        rank && std::binary_search(axes.begin(), axes.end(), static_cast<std::int64_t>(rank) - 1);
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
           splat(n.name + "/1_N", DType::kFp32, 1.0 / static_cast<double>(count), {1}), n, "mean");
  const DType rt = i8 ? DType::kI32 : kt.dtype;
  const int out = output(n, rt, shape);
  if (rt == DType::kI32 || rt == DType::kFp32)
    step(VxmOp::kMov, rt, y, -1, out, g_.where(n));
  else
    cast(DType::kFp32, rt, y, out, g_.where(n));
  return;
}

void Lowering::lower_layer_norm(const Node& n) {
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
         vx(VxmOp::kAdd, var, splat(n.name + "/eps", DType::kFp32, eps, {1}), n, "var_eps"), -1, n,
         "inv_std");
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
  return;
}

}  // namespace lpu::compiler::lowering
