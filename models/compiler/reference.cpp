#include "compiler/reference.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace lpu::compiler {

namespace {

// One row of a tensor as byte planes of `n` elements starting at column c0.
void split(const Bytes& t, int bytes, std::int64_t row, std::int64_t cols, std::int64_t c0, int n,
           std::vector<Bytes>& planes) {
  for (int b = 0; b < bytes; ++b)
    for (int i = 0; i < n; ++i)
      planes[static_cast<std::size_t>(b)][static_cast<std::size_t>(i)] =
          t[static_cast<std::size_t>(((row * cols) + c0 + i) * bytes + b)];
}

}  // namespace

std::vector<Bytes> run_reference(const Kernels& k, const std::vector<Bytes>& inputs) {
  std::vector<Bytes> buf(k.tensors.size());
  auto size_of = [&](int t) {
    const KTensor& kt = k.tensors[static_cast<std::size_t>(t)];
    return static_cast<std::size_t>(kt.elements()) *
           static_cast<std::size_t>(isa::dtype_bytes(kt.dtype));
  };
  if (inputs.size() != k.inputs.size())
    throw std::invalid_argument("reference: " + std::to_string(inputs.size()) + " inputs for " +
                                std::to_string(k.inputs.size()));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const int t = k.inputs[i];
    if (inputs[i].size() != size_of(t))
      throw std::invalid_argument(
          "reference: input '" + k.tensors[static_cast<std::size_t>(t)].name + "' has " +
          std::to_string(inputs[i].size()) + " bytes, not " + std::to_string(size_of(t)));
    buf[static_cast<std::size_t>(t)] = inputs[i];
  }
  for (std::size_t t = 0; t < k.tensors.size(); ++t)
    if (k.tensors[t].role == KTensor::Role::kConstant) buf[t] = k.tensors[t].data;

  constexpr int kChunk = 320;
  for (const KStep& s : k.steps) {
    const KTensor& d = k.tensors[static_cast<std::size_t>(s.d)];
    const int in_bytes = isa::dtype_bytes(s.args.type);
    const int out_bytes = s.args.op == func::VxmOp::kCast ? isa::dtype_bytes(s.args.to) : in_bytes;
    Bytes& out = buf[static_cast<std::size_t>(s.d)];
    out.assign(size_of(s.d), 0);
    const std::int64_t rows = d.rows(), cols = d.cols();
    std::vector<Bytes> pa(4, Bytes(kChunk)), pb(4, Bytes(kChunk)), pm(4, Bytes(kChunk)),
        pd(4, Bytes(kChunk));
    const std::uint8_t* a[4];
    const std::uint8_t* b[4];
    const std::uint8_t* m[4];
    std::uint8_t* o[4];
    for (int i = 0; i < 4; ++i) {
      a[i] = pa[static_cast<std::size_t>(i)].data();
      b[i] = pb[static_cast<std::size_t>(i)].data();
      m[i] = pm[static_cast<std::size_t>(i)].data();
      o[i] = pd[static_cast<std::size_t>(i)].data();
    }
    // An operand of one row is broadcast along rows.
    auto row_of = [&](int t, std::int64_t r) {
      return k.tensors[static_cast<std::size_t>(t)].rows() == 1 ? 0 : r;
    };
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c0 = 0; c0 < cols; c0 += kChunk) {
        const int n = static_cast<int>(std::min<std::int64_t>(kChunk, cols - c0));
        split(buf[static_cast<std::size_t>(s.a)], in_bytes, row_of(s.a, r), cols, c0, n, pa);
        if (s.b >= 0)
          split(buf[static_cast<std::size_t>(s.b)], in_bytes, row_of(s.b, r), cols, c0, n, pb);
        if (s.mask >= 0)
          split(buf[static_cast<std::size_t>(s.mask)], in_bytes, row_of(s.mask, r), cols, c0, n,
                pm);
        func::vxm_apply(s.args, n, a, s.b >= 0 ? b : nullptr, s.mask >= 0 ? m : nullptr, o);
        for (int bt = 0; bt < out_bytes; ++bt)
          for (int i = 0; i < n; ++i)
            out[static_cast<std::size_t>(((r * cols) + c0 + i) * out_bytes + bt)] =
                pd[static_cast<std::size_t>(bt)][static_cast<std::size_t>(i)];
      }
  }
  std::vector<Bytes> outs;
  for (int t : k.outputs)
    outs.push_back(buf[static_cast<std::size_t>(t)]);
  return outs;
}

}  // namespace lpu::compiler
