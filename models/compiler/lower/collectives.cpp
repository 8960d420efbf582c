// AllReduce, AllGather and Broadcast: exchanges between the chips of a split program.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

void Lowering::lower_collective(const Node& n) {
  if (opt_.chips < 2)
    throw InputError(g_.where(n), "exchanges values between chips, in a program for one chip");
  if (n.inputs.size() != 1 || n.outputs.size() != 1 || n.inputs[0] < 0)
    throw InputError(g_.where(n), "takes one input and gives one output");
  if (n.op == kAllReduce && reduced_in_product_.count(n.inputs[0])) {
    tensor_of_[static_cast<std::size_t>(n.outputs[0])] = tensor(n.inputs[0], &n);
    return;
  }
  const int x = tensor(n.inputs[0], &n);
  const KTensor kx = meta(x);
  if (n.op == kBroadcast) {
    // Every chip sends its value to every other at once and keeps the root's: the time of
    // a direct broadcast from the root (each link carries the rows once each way).
    const Attr* r = n.attr("root");
    const std::int64_t root = r ? r->i : 0;
    if (root < 0 || root >= opt_.chips)
      throw InputError(g_.where(n), "root " + std::to_string(root) + " is not one of the " +
                                        std::to_string(opt_.chips) + " chips");
    const std::int64_t rows = kx.rows(), cols = kx.cols();
    const int x2 = kx.shape.size() == 2 ? x : reshaped(x, {rows, cols}, n, n.name + "/rows");
    const int all =
        add_tensor(n.name + "/gathered", kx.dtype, {opt_.chips * rows, cols}, KTensor::Role::kTemp);
    exchange(false, x2, all, rows, n);
    const int out = output(n, kx.dtype, kx.shape);
    copy_rows(kx.dtype, all, root * rows, out, 0, rows, n);
    k_.tensors[static_cast<std::size_t>(out)].clean = kx.clean;
    return;
  }
  if (n.op == kAllGather) {
    if (kx.shape.size() < 2)
      throw InputError(g_.where(n), "gathers along the leading axis of a value of rank 2 or more");
    std::vector<std::int64_t> shape = kx.shape;
    shape[0] *= opt_.chips;
    const int d = output(n, kx.dtype, shape);
    exchange(false, x, d, kx.rows(), n);
    k_.tensors[static_cast<std::size_t>(d)].clean = kx.clean;
    return;
  }
  if (kx.dtype != DType::kFp32 && kx.dtype != DType::kI32 && kx.dtype != DType::kFp16)
    throw InputError(g_.where(n), std::string("sums ") + isa::to_string(kx.dtype) +
                                      " over chips (fp32, fp16 or int32)");
  const int y = all_reduce(kx.dtype == DType::kFp16 ? widen(x, n) : x, n);
  const int out = output(n, kx.dtype, kx.shape);
  if (kx.dtype == DType::kFp16)
    cast(DType::kFp32, DType::kFp16, y, out, g_.where(n));
  else
    step(VxmOp::kMov, kx.dtype, y, -1, out, g_.where(n));
}

bool Lowering::read_by_allreduce(const Node& n) const {
  if (opt_.chips < 2 || n.outputs.size() != 1 || n.outputs[0] < 0 ||
      uses_[static_cast<std::size_t>(n.outputs[0])] != 1)
    return false;
  for (const Node& u : g_.nodes)
    if (u.op == kAllReduce && u.inputs.size() == 1 && u.inputs[0] == n.outputs[0]) return true;
  return false;
}

void Lowering::exchange(bool scatter, int a, int d, std::int64_t rows, const Node& n) {
  KStep s;
  s.kind = KStep::Kind::kExchange;
  s.scatter = scatter;
  s.a = a;
  s.d = d;
  s.exch_rows = rows;
  s.args.type = k_.tensors[static_cast<std::size_t>(a)].dtype;
  s.origin = g_.where(n);
  k_.steps.push_back(std::move(s));
}

int Lowering::all_reduce(int x, const Node& n) {
  const KTensor kx = meta(x);
  const int nc = opt_.chips;
  const std::int64_t r = kx.rows(), c = kx.cols();
  const int x2 = kx.shape.size() == 2 ? x : reshaped(x, {r, c}, n, n.name + "/rows");
  int sum = -1;
  if (r >= nc && r % nc == 0) {
    const std::int64_t p = r / nc;
    const int pieces = add_tensor(n.name + "/pieces", kx.dtype, {nc * p, c}, KTensor::Role::kTemp);
    exchange(true, x2, pieces, p, n);
    const int red = add_tensor(n.name + "/piece_sum", kx.dtype, {p, c}, KTensor::Role::kTemp);
    tree_sum(pieces, 0, nc, p, red, 0, n);
    sum = add_tensor(n.name + "/sum", kx.dtype, {r, c}, KTensor::Role::kTemp);
    exchange(false, red, sum, p, n);
  } else {
    const int all = add_tensor(n.name + "/gathered", kx.dtype, {nc * r, c}, KTensor::Role::kTemp);
    exchange(false, x2, all, r, n);
    sum = add_tensor(n.name + "/sum", kx.dtype, {r, c}, KTensor::Role::kTemp);
    tree_sum(all, 0, nc, r, sum, 0, n);
  }
  k_.tensors[static_cast<std::size_t>(sum)].clean = kx.clean;
  return kx.shape.size() == 2 ? sum : reshaped(sum, kx.shape, n, n.name + "/shaped");
}

void Lowering::tree_sum(int x, std::int64_t base, std::int64_t m, std::int64_t r, int out,
                        std::int64_t out_row, const Node& n) {
  const KTensor kx = meta(x);
  const DType dt = kx.dtype;
  // Rows dr.. of d = rows ar.. of a + rows br.. of b.
  auto add = [&](int a, std::int64_t ar, int b, std::int64_t br, int d, std::int64_t dr,
                 std::int64_t rows) {
    if (rows <= 0) return;
    KStep s;
    s.args.op = VxmOp::kAdd;
    s.args.type = dt;
    s.a = a;
    s.a_row = ar;
    s.b = b;
    s.b_row = br;
    s.d = d;
    s.d_row = dr;
    s.rows = rows;
    s.origin = g_.where(n);
    k_.steps.push_back(std::move(s));
  };
  if (m == 1) {
    copy_rows(dt, x, base, out, out_row, r, n);
    return;
  }
  auto half = [](std::int64_t k) { return (k + 1) / 2; };
  auto temp = [&](std::int64_t blocks) {
    return add_tensor(kx.name + "/tree", dt, {blocks * r, kx.cols()}, KTensor::Role::kTemp);
  };
  // Blocks [0, lo_n) in lo from row lo_r; blocks [lo_n, m) in hi from row hi_r.
  int lo = x, hi = temp(m - half(m));
  std::int64_t lo_r = base, hi_r = 0;
  copy_rows(dt, x, base + half(m) * r, hi, 0, (m - half(m)) * r, n);
  while (m > 1) {
    const std::int64_t keep = half(m), pairs = m - keep;
    const bool last = keep == 1;
    const std::int64_t split = half(keep);  // the next level's lower blocks
    const int lo2 = last ? out : temp(split);
    const std::int64_t lo2_r = last ? out_row : 0;
    const int hi2 = last ? -1 : temp(keep - split);
    // Block i of the result: lo[i] + hi[i] for i < pairs; lo[i] itself (m odd, i = pairs).
    const std::int64_t in_lo = std::min(pairs, split);
    add(lo, lo_r, hi, hi_r, lo2, lo2_r, in_lo * r);
    if (pairs > split) add(lo, lo_r + split * r, hi, hi_r + split * r, hi2, 0, (pairs - split) * r);
    if (keep > pairs) {  // the middle block passes through
      const std::int64_t i = pairs;
      if (i < split)
        copy_rows(dt, lo, lo_r + i * r, lo2, lo2_r + i * r, r, n);
      else
        copy_rows(dt, lo, lo_r + i * r, hi2, (i - split) * r, r, n);
    }
    lo = lo2;
    lo_r = lo2_r;
    hi = hi2;
    hi_r = 0;
    m = keep;
  }
}

}  // namespace lpu::compiler::lowering
