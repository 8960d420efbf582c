// Point-wise operators by name: arithmetic, activations, casts.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

void Lowering::lower_binary(const Node& n) {
  const auto it = binary_ops().find(n.op);
  auto in = [&](std::size_t i) {
    return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
  };
  auto ktensor = [&](int t) -> const KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };
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
    if (ktensor(in(i)).dtype != dt) throw InputError(g_.where(n), "inputs have different types");
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
                                 : add_tensor(n.name + "/partial" + std::to_string(i), dt, shape,
                                              KTensor::Role::kTemp);
    binary(n, it->second, acc, in(i), d);
    acc = d;
  }
  return;
}

void Lowering::lower_unary(const Node& n) {
  const auto it = unary_ops().find(n.op);
  auto in = [&](std::size_t i) {
    return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
  };
  auto ktensor = [&](int t) -> const KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };
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

void Lowering::lower_sigmoid(const Node& n) {
  auto in = [&](std::size_t i) {
    return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
  };
  auto ktensor = [&](int t) -> const KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };
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

void Lowering::lower_leaky_relu(const Node& n) {
  auto in = [&](std::size_t i) {
    return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
  };
  auto ktensor = [&](int t) -> const KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };
  const int a = in(0);
  const DType dt = ktensor(a).dtype;
  check_type(n, VxmOp::kMul, dt);
  if (isa::is_integer(dt)) throw InputError(g_.where(n), "integer LeakyRelu is not supported");
  float alpha = 0.01f;
  for (const auto& [key, at] : n.attrs) {
    if (key != "alpha") throw InputError(g_.where(n), "attribute '" + key + "' is not supported");
    alpha = at.f;
  }
  const auto shape = ktensor(a).shape;
  const int c = splat(n.name + "/alpha", dt, alpha, {ktensor(a).cols()});
  const int t = add_tensor(n.name + "/scaled", dt, shape, KTensor::Role::kTemp);
  step(VxmOp::kMul, dt, a, c, t, g_.where(n));
  step(alpha <= 1.0f ? VxmOp::kMax : VxmOp::kMin, dt, a, t, output(n, dt, shape), g_.where(n));
  return;
}

void Lowering::lower_clip(const Node& n) {
  auto in = [&](std::size_t i) {
    return i < n.inputs.size() ? tensor(n.inputs[i], &n) : tensor(-1, &n);
  };
  auto ktensor = [&](int t) -> const KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };
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

void Lowering::lower_cast(const Node& n) {
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
  return;
}

void Lowering::lower_div_sqrt_erf(const Node& n) {
  const std::string& op = n.op;
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
              row_const(a, series[i], n, "c" + std::to_string(7 - i)), n, "p" + std::to_string(i));
    const int small =
        vx(VxmOp::kMul, vx(VxmOp::kMul, a, row_const(a, 1.1283791670955126, n, "c"), n, "cx"), ps,
           n, "series");
    const int tiny = cmp(VxmOp::kCmpLt, ax, row_const(a, 0.5, n, "cut"), n, "near0");
    y = sel(tiny, small, signed_, n, "erf");
  }
  const auto& yshape = k_.tensors[static_cast<std::size_t>(y)].shape;
  const int out = output(n, dt, yshape);
  narrow_into(y, dt, out, n);
  k_.tensors[static_cast<std::size_t>(out)].clean = k_.tensors[static_cast<std::size_t>(y)].clean;
  return;
}

}  // namespace lpu::compiler::lowering
