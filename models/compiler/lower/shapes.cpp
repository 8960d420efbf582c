// Shape operators: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Slice.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

void Lowering::lower_transpose(const Node& n) {
  // Any permutation as (leading axes permuted) -> (last two swapped) -> (leading permuted):
  // the first brings the axis that must end up last next to the last, the swap puts it
  // there. Leading permutations move whole rows; the swap runs on the SXM transposers.
  no_attrs(n, {"perm"});
  int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
  const std::size_t rank = k_.tensors[static_cast<std::size_t>(t)].shape.size();
  std::vector<std::int64_t> perm;
  if (const Attr* pa = n.attr("perm")) perm = pa->ints;
  if (perm.empty())
    for (std::size_t i = rank; i-- > 0;)
      perm.push_back(static_cast<std::int64_t>(i));
  std::vector<std::int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i)
    if (sorted.size() != rank || sorted[i] != static_cast<std::int64_t>(i))
      throw InputError(g_.where(n), "perm " + shape_str(perm) + " is not a permutation of " +
                                        std::to_string(rank) + " axes");
  t = transpose_perm(t, perm, n);
  const KTensor ky = meta(t);
  const int out = output(n, ky.dtype, ky.shape);
  step(VxmOp::kMov, ky.dtype, t, -1, out, g_.where(n));
  return;
}

void Lowering::lower_concat(const Node& n) {
  no_attrs(n, {"axis"});
  const Attr* ax = n.attr("axis");
  if (!ax) throw InputError(g_.where(n), "needs its axis attribute");
  std::vector<int> ins;
  for (std::size_t i = 0; i < n.inputs.size(); ++i)
    ins.push_back(tensor(n.inputs[i], &n));
  if (ins.empty()) throw InputError(g_.where(n), "has no inputs");
  const KTensor k0 = k_.tensors[static_cast<std::size_t>(ins[0])];
  const std::size_t rank = k0.shape.size();
  const std::int64_t axis = rank ? norm_axis(ax->i, rank) : 0;
  if (rank && axis < static_cast<std::int64_t>(rank) - 1) {
    // Along a leading axis whose own leading dimensions are all 1: row ranges, one copy each.
    std::vector<std::int64_t> shape = k0.shape;
    shape[static_cast<std::size_t>(axis)] = 0;
    for (int t : ins) {
      const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
      bool ok = kt.dtype == k0.dtype && kt.shape.size() == rank;
      for (std::size_t i = 0; ok && i < rank; ++i)
        ok = static_cast<std::int64_t>(i) == axis || kt.shape[i] == k0.shape[i];
      if (!ok || kt.tiles(k_.lanes) > 1)
        throw InputError(g_.where(n), "Concat along axis " + std::to_string(axis) +
                                          " needs inputs that differ only along it, with rows "
                                          "that fit one vector");
      shape[static_cast<std::size_t>(axis)] += kt.shape[static_cast<std::size_t>(axis)];
    }
    const int out = output(n, k0.dtype, shape);
    // Blocks: for each index of the dimensions before the axis, every input's rows in turn.
    std::int64_t lead = 1;
    for (std::int64_t i = 0; i < axis; ++i)
      lead *= shape[static_cast<std::size_t>(i)];
    std::int64_t row = 0;
    for (std::int64_t l = 0; l < lead; ++l)
      for (int t : ins) {
        const std::int64_t block = k_.tensors[static_cast<std::size_t>(t)].rows() / lead;
        KStep s;
        s.args.op = VxmOp::kMov;
        s.args.type = k0.dtype;
        s.a = t;
        s.d = out;
        s.rows = block;
        s.a_row = l * block;
        s.d_row = row;
        s.origin = g_.where(n);
        row += block;
        k_.steps.push_back(std::move(s));
      }
    bool clean_all = true;
    for (int t : ins)
      clean_all = clean_all && k_.tensors[static_cast<std::size_t>(t)].clean;
    k_.tensors[static_cast<std::size_t>(out)].clean = clean_all;
    return;
  }
  if (rank == 0) throw InputError(g_.where(n), "cannot concatenate scalars");
  std::vector<std::int64_t> shape = k0.shape;
  int acc = ins[0];
  for (std::size_t i = 1; i < ins.size(); ++i) {
    const KTensor ki = k_.tensors[static_cast<std::size_t>(ins[i])];
    if (ki.dtype != k0.dtype || ki.rows() != k0.rows() || ki.shape.size() != rank)
      throw InputError(g_.where(n), "inputs differ in type or leading dimensions");
    const std::int64_t at = shape.back();
    shape.back() += ki.cols();
    if (shape.back() > k_.lanes)
      throw InputError(g_.where(n), "a concatenation wider than the vector (" +
                                        std::to_string(shape.back()) +
                                        " columns) is not supported yet");
    const int moved = sxm_shift(clean(ins[i], n), static_cast<int>(at), true, shape, n,
                                "part" + std::to_string(i));
    acc = sxm_select(acc, moved, static_cast<int>(at), shape, n, "concat" + std::to_string(i));
  }
  const int out = output(n, k0.dtype, shape);
  step(VxmOp::kMov, k0.dtype, acc, -1, out, g_.where(n));
  return;
}

void Lowering::lower_slice(const Node& n) {
  no_attrs(n);
  const int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
  const KTensor kt = meta(t);
  const auto starts = const_ints(n, 1), ends = const_ints(n, 2);
  const auto axes = const_ints(n, 3), steps = const_ints(n, 4);
  if (!starts || !ends || starts->size() != 1 || ends->size() != 1)
    throw InputError(g_.where(n), "only a slice of one axis is supported");
  const std::size_t rank = kt.shape.size();
  const std::int64_t axis = axes ? norm_axis((*axes)[0], rank) : 0;
  if (rank == 0 || axis != static_cast<std::int64_t>(rank) - 1)
    throw InputError(g_.where(n), "only a slice of the last axis is supported");
  if (steps && (*steps)[0] != 1) throw InputError(g_.where(n), "only step 1 is supported");
  const std::int64_t c = kt.cols();
  auto clamp = [&](std::int64_t v) {
    if (v < 0) v += c;
    return std::max<std::int64_t>(0, std::min<std::int64_t>(v, c));
  };
  const std::int64_t b = clamp((*starts)[0]), e = std::max(b, clamp((*ends)[0]));
  std::vector<std::int64_t> shape = kt.shape;
  shape.back() = e - b;
  int y = t;
  if (b > 0) {
    if (c > k_.lanes)
      throw InputError(g_.where(n), "slicing rows wider than the vector is not supported yet");
    y = sxm_shift(t, static_cast<int>(b), false, shape, n, "moved");
  }
  const int out = output(n, kt.dtype, shape);
  // Keep the columns: a mask also clears the lanes past them.
  const int bytes = isa::dtype_bytes(kt.dtype);
  const DType it = bytes == 1 ? DType::kI8 : bytes == 2 ? DType::kI16 : DType::kI32;
  step(VxmOp::kAnd, it, y, splat(n.name + "/columns", it, -1.0, {e - b}), out, g_.where(n));
  k_.tensors[static_cast<std::size_t>(out)].clean = true;
  return;
}

void Lowering::lower_reshape(const Node& n) {
  const std::string& op = n.op;
  const int t = tensor(n.inputs.empty() ? -1 : n.inputs[0], &n);
  const std::vector<std::int64_t> in = k_.tensors[static_cast<std::size_t>(t)].shape;
  std::vector<std::int64_t> out;
  if (op == "Reshape") {
    no_attrs(n, {"allowzero"});
    const Attr* az = n.attr("allowzero");
    const auto target = const_ints(n, 1);
    if (!target) throw InputError(g_.where(n), "needs its shape input");
    std::int64_t known = 1;
    int infer = -1;
    for (std::size_t i = 0; i < target->size(); ++i) {
      std::int64_t d = (*target)[i];
      if (d == 0 && !(az && az->i)) {
        if (i >= in.size())
          throw InputError(g_.where(n), "0 copies a dimension that does not exist");
        d = in[i];
      }
      if (d == -1) {
        if (infer >= 0) throw InputError(g_.where(n), "more than one -1 in the shape");
        infer = static_cast<int>(i);
        out.push_back(1);
        continue;
      }
      out.push_back(d);
      known *= d;
    }
    std::int64_t total = 1;
    for (auto d : in)
      total *= d;
    if (infer >= 0) out[static_cast<std::size_t>(infer)] = known ? total / known : 0;
  } else if (op == "Flatten") {
    no_attrs(n, {"axis"});
    const Attr* ax = n.attr("axis");
    const std::int64_t axis = norm_axis(ax ? ax->i : 1, in.size());
    std::int64_t a = 1, b = 1;
    for (std::size_t i = 0; i < in.size(); ++i)
      (static_cast<std::int64_t>(i) < axis ? a : b) *= in[i];
    out = {a, b};
  } else {
    no_attrs(n, {"axes"});
    std::vector<std::int64_t> axes;
    if (const Attr* at = n.attr("axes"))
      axes = at->ints;
    else if (auto c = const_ints(n, 1))
      axes = *c;
    const std::size_t rank = op == "Squeeze" ? in.size() : in.size() + axes.size();
    for (auto& a : axes)
      a = norm_axis(a, rank);
    if (op == "Squeeze") {
      for (std::size_t i = 0; i < in.size(); ++i) {
        const bool listed =
            std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(i)) != axes.end();
        if ((axes.empty() && in[i] == 1) || listed) {
          if (in[i] != 1) throw InputError(g_.where(n), "squeezes a dimension that is not 1");
          continue;
        }
        out.push_back(in[i]);
      }
    } else {
      std::size_t k = 0;
      for (std::size_t i = 0; i < rank; ++i)
        if (std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(i)) != axes.end())
          out.push_back(1);
        else
          out.push_back(in[k++]);
    }
  }
  reshape_to(n, t, out);
  return;
}

}  // namespace lpu::compiler::lowering
