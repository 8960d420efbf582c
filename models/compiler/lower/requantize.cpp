// Folding an int8 epilogue into the next product's quantization.
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

void Lowering::fold_requantize() {
  const std::size_t n = k_.steps.size();
  std::vector<int> readers(k_.tensors.size(), 0), writer(k_.tensors.size(), -1);
  auto count = [&](int t) {
    if (t < 0) return;
    ++readers[static_cast<std::size_t>(t)];
    const int v = k_.tensors[static_cast<std::size_t>(t)].view_of;
    if (v >= 0) ++readers[static_cast<std::size_t>(v)];
  };
  for (std::size_t i = 0; i < n; ++i) {
    const KStep& s = k_.steps[i];
    for (int t : {s.a, s.b, s.mask})
      count(t);
    for (const KPass& p : s.passes) {
      count(p.x);
      count(p.w);
    }
    if (s.d >= 0) writer[static_cast<std::size_t>(s.d)] = static_cast<int>(i);
  }
  for (int t : k_.outputs)
    readers[static_cast<std::size_t>(t)] += 2;
  auto T = [&](int t) -> KTensor& { return k_.tensors[static_cast<std::size_t>(t)]; };
  // The whole-tensor VXM step writing t, read only once, when it is `op` on `type`.
  auto only = [&](int t, VxmOp op, DType type) -> KStep* {
    if (t < 0 || T(t).view_of >= 0 || readers[static_cast<std::size_t>(t)] != 1) return nullptr;
    const int w = writer[static_cast<std::size_t>(t)];
    if (w < 0) return nullptr;
    KStep& s = k_.steps[static_cast<std::size_t>(w)];
    if (s.kind != KStep::Kind::kVxm || s.rows || !s.deal.empty() || s.mask >= 0 ||
        s.args.op != op || s.args.type != type)
      return nullptr;
    return &s;
  };
  // A constant of `cols` floats a row whose rows are all alike (one, or one broadcast).
  auto row_of = [&](int t, std::int64_t cols) {
    if (t < 0 || T(t).view_of >= 0 || T(t).role != KTensor::Role::kConstant ||
        T(t).cols() != cols || T(t).data.empty())
      return false;
    const auto& data = T(t).data;
    const std::size_t row = data.size() / static_cast<std::size_t>(T(t).rows());
    for (std::size_t i = row; i < data.size(); ++i)
      if (data[i] != data[i % row]) return false;
    return true;
  };
  // A constant of `cols` floats a row (any rows: an added one may vary from row to row).
  auto any_rows = [&](int t, std::int64_t cols) {
    return t >= 0 && T(t).view_of < 0 && T(t).role == KTensor::Role::kConstant &&
           T(t).cols() == cols && !T(t).data.empty();
  };
  std::vector<bool> drop(n, false);
  for (std::size_t gi = 0; gi < n; ++gi) {
    KStep& g = k_.steps[gi];
    // (the cast may write its rows into a larger tensor: all of its operand's)
    if (g.kind != KStep::Kind::kVxm || !g.deal.empty() || g.args.op != VxmOp::kCast ||
        g.args.type != DType::kFp16 || g.args.to != DType::kI8 ||
        (g.rows && (g.a_row != 0 || g.rows != T(g.a).rows())))
      continue;
    KStep* f = only(g.a, VxmOp::kMul, DType::kFp16);
    if (!f) continue;
    KStep* e = only(f->a, VxmOp::kRelu, DType::kFp16);
    KStep* d = e ? only(e->a, VxmOp::kCast, DType::kFp32) : nullptr;
    if (!d || d->args.to != DType::kFp16) continue;
    const std::int64_t cols = T(d->a).cols();
    if (!row_of(f->b, cols) || T(f->b).dtype != DType::kFp16) continue;
    // Back from d: adds of constants, then the multiplication by one.
    std::vector<KStep*> adds;
    KStep* m = nullptr;
    for (int t = d->a; !m;) {
      KStep* c = only(t, VxmOp::kAdd, DType::kFp32);
      if (c && any_rows(c->b, cols) && T(c->b).dtype == DType::kFp32) {
        adds.push_back(c);
        t = c->a;
        continue;
      }
      c = only(t, VxmOp::kMul, DType::kFp32);
      if (!c || !row_of(c->b, cols) || T(c->b).dtype != DType::kFp32) break;
      m = c;
    }
    if (!m) continue;
    std::vector<double> k(static_cast<std::size_t>(cols));
    bool positive = true;
    for (std::int64_t j = 0; j < cols; ++j) {
      k[static_cast<std::size_t>(j)] = element_of(T(f->b), j);
      positive = positive && k[static_cast<std::size_t>(j)] > 0;
    }
    if (!positive) continue;
    auto scaled = [&](int c) {  // a copy of constant c, times k
      std::vector<double> v;
      for (std::int64_t r = 0; r < T(c).rows(); ++r)
        for (std::int64_t j = 0; j < cols; ++j)
          v.push_back(element_of(T(c), r * cols + j) * k[static_cast<std::size_t>(j)]);
      return fp32_constant(T(c).name + "*k", T(c).shape, v);
    };
    m->b = scaled(m->b);
    for (KStep* c : adds)
      c->b = scaled(c->b);
    // relu on the fp32 sum, its result in r's tensor (now fp32), cast straight to int8
    const int r = e->d;
    T(r).dtype = DType::kFp32;
    e->a = d->a;
    e->args.type = DType::kFp32;
    g.a = r;
    g.args.type = DType::kFp32;
    drop[static_cast<std::size_t>(d - k_.steps.data())] = true;
    drop[static_cast<std::size_t>(f - k_.steps.data())] = true;
  }
  std::size_t out = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (!drop[i]) {
      if (out != i) k_.steps[out] = std::move(k_.steps[i]);
      ++out;
    }
  k_.steps.resize(out);
}

}  // namespace lpu::compiler::lowering
