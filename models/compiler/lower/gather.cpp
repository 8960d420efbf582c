// Gather: constant indices as row moves, computed ones as one-hot products.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

void Lowering::gather(const Node& n) {
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
  if (kd.role != KTensor::Role::kConstant || (kd.dtype != DType::kFp32 && kd.dtype != DType::kFp16))
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
  const int one = add_tensor(n.name + "/onehot32", DType::kFp32, {count, v}, KTensor::Role::kTemp);
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

}  // namespace lpu::compiler::lowering
