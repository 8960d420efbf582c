#include "compiler/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>

#include "func/mxm.h"
#include "func/numerics.h"
#include "func/sxm.h"

namespace lpu::compiler {

namespace {

// Views share their base's data.
std::size_t root(const Kernels& k, int t) {
  const int v = k.tensors[static_cast<std::size_t>(t)].view_of;
  return static_cast<std::size_t>(v >= 0 ? v : t);
}

// One row of a tensor as byte planes of `n` elements starting at column c0.
// (Lanes past the tensor's own columns read as zero, as the padding lanes of a clean tensor.)
void split(const Bytes& t, int bytes, std::int64_t row, std::int64_t cols, std::int64_t c0, int n,
           std::vector<Bytes>& planes) {
  for (int b = 0; b < bytes; ++b)
    for (int i = 0; i < n; ++i)
      planes[static_cast<std::size_t>(b)][static_cast<std::size_t>(i)] =
          c0 + i < cols ? t[static_cast<std::size_t>(((row * cols) + c0 + i) * bytes + b)] : 0;
}

// A matrix product in plain float arithmetic (not the plane's rounding): for calibration, where
// only the ranges of values matter and the plane's 320-row passes would cost most of the time.
void approx_matmul(const Kernels& k, const KStep& s, std::vector<Bytes>& buf) {
  const KTensor& d = k.tensors[static_cast<std::size_t>(s.d)];
  Bytes& out = buf[root(k, s.d)];
  if (out.empty()) out.assign(static_cast<std::size_t>(d.elements()) * 4, 0);
  const std::int64_t lanes = k.lanes, dc = d.cols(), c0 = s.d_tile * lanes;
  const std::int64_t cn = std::min(lanes, dc - c0);
  std::vector<float> acc(static_cast<std::size_t>(s.m * cn), 0.0f), xa, wa;
  auto value = [&](const Bytes& data, std::int64_t e) -> float {
    if (s.mm_type == isa::DType::kI8)
      return static_cast<std::int8_t>(data[static_cast<std::size_t>(e)]);
    return func::fp16_to_fp32(static_cast<std::uint16_t>(
        data[static_cast<std::size_t>(2 * e)] | (data[static_cast<std::size_t>(2 * e + 1)] << 8)));
  };
  for (const KPass& ps : s.passes) {
    const KTensor& w = k.tensors[static_cast<std::size_t>(ps.w)];
    const KTensor& x = k.tensors[static_cast<std::size_t>(ps.x)];
    const Bytes& wd = buf[root(k, ps.w)];
    const Bytes& xd = buf[root(k, ps.x)];
    const std::int64_t wc = w.cols(), xc = x.cols(), xk = ps.x_tile * lanes + ps.w_at;
    const std::int64_t kk = std::min(ps.k, xc - xk);
    if (kk <= 0) continue;
    xa.assign(static_cast<std::size_t>(s.m * kk), 0.0f);
    wa.assign(static_cast<std::size_t>(kk * cn), 0.0f);
    for (std::int64_t i = 0; i < s.m; ++i)
      for (std::int64_t r = 0; r < kk; ++r)
        xa[static_cast<std::size_t>(i * kk + r)] =
            value(xd, (ps.x_row + i * ps.x_stride) * xc + xk + r);
    for (std::int64_t r = 0; r < kk; ++r)
      for (std::int64_t c = 0; c < cn; ++c)
        wa[static_cast<std::size_t>(r * cn + c)] =
            value(wd, (ps.w_row + r) * wc + ps.w_tile * lanes + c);
    func::float_matmul_accumulate(xa.data(), wa.data(), acc.data(), static_cast<int>(s.m),
                                  static_cast<int>(cn), static_cast<int>(kk));
  }
  for (std::int64_t i = 0; i < s.m; ++i)
    for (std::int64_t c = 0; c < cn; ++c) {
      const double v = acc[static_cast<std::size_t>(i * cn + c)];
      const std::uint32_t bits = s.mm_type == isa::DType::kI8
                                     ? static_cast<std::uint32_t>(static_cast<std::int32_t>(v))
                                     : func::float_bits(static_cast<float>(v));
      std::memcpy(&out[static_cast<std::size_t>(((s.d_row + i * s.d_stride) * dc + c0 + c) * 4)],
                  &bits, 4);
    }
}

// A matrix product step through one MXM plane, exactly as the scheduler drives it: per pass,
// every weight row loaded (rows outside the block's w_at .. w_at + k - 1 zero), installed, the
// activation rows streamed, the products accumulated in pass order.
void matmul(const Kernels& k, const KStep& s, std::vector<Bytes>& buf) {
  const int lanes = k.lanes;
  func::MxmPlane plane(k.mxm_rows, k.mxm_cols, lanes, k.mxm_accumulators, true);
  const KTensor& d = k.tensors[static_cast<std::size_t>(s.d)];
  Bytes& out = buf[root(k, s.d)];
  if (out.empty()) out.assign(static_cast<std::size_t>(d.elements()) * 4, 0);
  const int xb = isa::dtype_bytes(s.mm_type);
  const int rows_per_load = 16 / xb;
  std::vector<Bytes> planes(16, Bytes(static_cast<std::size_t>(lanes)));
  const std::uint8_t* pp[16];
  for (int i = 0; i < 16; ++i)
    pp[i] = planes[static_cast<std::size_t>(i)].data();
  std::vector<Bytes> res(4, Bytes(static_cast<std::size_t>(lanes)));
  std::uint8_t* rp[4] = {res[0].data(), res[1].data(), res[2].data(), res[3].data()};
  for (std::size_t p = 0; p < s.passes.size(); ++p) {
    const KPass& ps = s.passes[p];
    const KTensor& w = k.tensors[static_cast<std::size_t>(ps.w)];
    const KTensor& x = k.tensors[static_cast<std::size_t>(ps.x)];
    const Bytes& wd = buf[root(k, ps.w)];
    const Bytes& xd = buf[root(k, ps.x)];
    const std::int64_t wc = w.cols(), xc = x.cols();
    for (int row = 0; row < k.mxm_rows; row += rows_per_load) {
      for (auto& pl : planes)
        std::fill(pl.begin(), pl.end(), 0);
      for (int j = 0; j < rows_per_load; ++j) {
        const std::int64_t r = row + j - ps.w_at;  // the block's row on this plane row
        if (r < 0 || r >= ps.k) continue;
        const std::int64_t c0 = ps.w_tile * lanes;
        for (int b = 0; b < xb; ++b)
          for (std::int64_t c = c0; c < wc && c < c0 + lanes; ++c)
            planes[static_cast<std::size_t>(j * xb + b)][static_cast<std::size_t>(c - c0)] =
                wd[static_cast<std::size_t>(((ps.w_row + r) * wc + c) * xb + b)];
      }
      plane.load(s.mm_type, row, 0, pp);
    }
    plane.install_from_buffer(0);
    for (std::int64_t i = 0; i < s.m; ++i) {
      for (int b = 0; b < xb; ++b) {
        auto& pl = planes[static_cast<std::size_t>(b)];
        std::fill(pl.begin(), pl.end(), 0);
        const std::int64_t c0 = ps.x_tile * lanes;
        for (std::int64_t c = c0; c < xc && c < c0 + lanes; ++c)
          pl[static_cast<std::size_t>(c - c0)] =
              xd[static_cast<std::size_t>(((ps.x_row + i * ps.x_stride) * xc + c) * xb + b)];
      }
      plane.activate(s.mm_type, pp);
    }
    using Mode = func::MxmPlane::AccMode;
    const Mode mode = s.passes.size() == 1       ? Mode::kOnly
                      : p == 0                   ? Mode::kFirst
                      : p + 1 == s.passes.size() ? Mode::kLast
                                                 : Mode::kNext;
    const isa::DType rt = s.mm_type == isa::DType::kI8 ? isa::DType::kI32 : isa::DType::kFp32;
    for (std::int64_t i = 0; i < s.m; ++i) {
      plane.accumulate(rt, mode, static_cast<int>(i), rp);
      if (!func::MxmPlane::emits(mode)) continue;
      const std::int64_t dc = d.cols(), c0 = s.d_tile * lanes;
      for (std::int64_t c = c0; c < dc && c < c0 + lanes; ++c)
        for (int b = 0; b < 4; ++b)
          out[static_cast<std::size_t>(((s.d_row + i * s.d_stride) * dc + c) * 4 + b)] =
              res[static_cast<std::size_t>(b)][static_cast<std::size_t>(c - c0)];
    }
  }
}

// A lane move on physical vectors: each row's logical columns, zeros beyond (the operands are
// clean), through the SXM network; the result's logical columns kept.
void sxm(const Kernels& k, const KStep& s, std::vector<Bytes>& buf) {
  const int lanes = k.lanes;
  const int bytes = isa::dtype_bytes(s.args.type);
  const KTensor& d = k.tensors[static_cast<std::size_t>(s.d)];
  Bytes& out = buf[root(k, s.d)];
  const std::size_t size = static_cast<std::size_t>(d.elements()) * static_cast<std::size_t>(bytes);
  if (out.size() != size) out.assign(size, 0);  // partial writes accumulate
  auto physical = [&](int t, std::int64_t row, int b, Bytes& v) {
    const KTensor& kt = k.tensors[static_cast<std::size_t>(t)];
    const Bytes& data = buf[root(k, t)];
    std::fill(v.begin(), v.end(), 0);
    const std::int64_t r = kt.rows() == 1 ? 0 : row;
    for (std::int64_t c = 0; c < kt.cols() && c < lanes; ++c)
      v[static_cast<std::size_t>(c)] =
          data[static_cast<std::size_t>((r * kt.cols() + c) * bytes + b)];
  };
  Bytes va(static_cast<std::size_t>(lanes)), vb(va), vm(va), vd(va);
  if (s.kind == KStep::Kind::kTranspose) {
    std::vector<Bytes> in(16, Bytes(static_cast<std::size_t>(lanes))), res(in);
    const std::uint8_t* ip[16];
    std::uint8_t* op[16];
    for (int i = 0; i < 16; ++i) {
      ip[i] = in[static_cast<std::size_t>(i)].data();
      op[i] = res[static_cast<std::size_t>(i)].data();
    }
    for (std::int64_t r0 = 0; r0 < d.rows(); r0 += 16)
      for (int b = 0; b < bytes; ++b) {
        for (int i = 0; i < 16; ++i)
          physical(s.a, r0 + i, b, in[static_cast<std::size_t>(i)]);
        func::transpose(ip, op, lanes);
        for (int j = 0; j < 16; ++j)
          for (std::int64_t c = 0; c < d.cols() && c < lanes; ++c)
            out[static_cast<std::size_t>(((r0 + j) * d.cols() + c) * bytes + b)] =
                res[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)];
      }
    return;
  }
  const std::int64_t rows = s.rows ? s.rows : d.rows(), row0 = s.rows ? s.d_row : 0;
  const std::int64_t arow = s.rows ? s.a_row : 0;
  for (std::int64_t row = 0; row < rows; ++row)
    for (int b = 0; b < bytes; ++b) {
      physical(s.a, arow + row, b, va);
      switch (s.sxm) {
        case KStep::SxmOp::kShift:
          func::shift(va.data(), vd.data(), lanes, s.sxm_n, s.north);
          break;
        case KStep::SxmOp::kSelect:
          physical(s.b, row, b, vb);
          func::select(va.data(), vb.data(), vd.data(), lanes, s.sxm_n);
          break;
        case KStep::SxmOp::kDistribute:
          physical(s.mask, row, 0, vm);
          func::distribute(va.data(), vm.data(), vd.data(), lanes);
          break;
      }
      for (std::int64_t c = 0; c < d.cols() && c < lanes; ++c)
        out[static_cast<std::size_t>(((row0 + row) * d.cols() + c) * bytes + b)] =
            vd[static_cast<std::size_t>(c)];
    }
}

// Every tensor's data at the start: the inputs and the constants.
std::vector<Bytes> initial(const Kernels& k, const std::vector<Bytes>& inputs) {
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
    buf[root(k, t)] = inputs[i];
  }
  for (std::size_t t = 0; t < k.tensors.size(); ++t)
    if (k.tensors[t].role == KTensor::Role::kConstant)
      buf[t] = k.tensors[t].data;  // constants are never views
  return buf;
}

// Step `i` of every chip's program, all at once: rows move between the chips' tensors
// (KStep::kExchange).
void exchange(const std::vector<const Kernels*>& ks, std::size_t i,
              std::vector<std::vector<Bytes>>& bufs) {
  const auto n = static_cast<std::int64_t>(ks.size());
  std::vector<Bytes> out(ks.size());
  for (std::int64_t c = 0; c < n; ++c) {
    const Kernels& k = *ks[static_cast<std::size_t>(c)];
    const KStep& s = k.steps[i];
    const KTensor& d = k.tensors[static_cast<std::size_t>(s.d)];
    const auto row_bytes =
        static_cast<std::size_t>(d.cols()) * static_cast<std::size_t>(isa::dtype_bytes(d.dtype));
    Bytes o(static_cast<std::size_t>(d.elements()) *
            static_cast<std::size_t>(isa::dtype_bytes(d.dtype)));
    for (std::int64_t j = 0; j < n; ++j) {
      const Kernels& kj = *ks[static_cast<std::size_t>(j)];
      const Bytes& a = bufs[static_cast<std::size_t>(j)][root(kj, kj.steps[i].a)];
      const std::int64_t from = s.scatter ? c * s.exch_rows : 0;
      std::memcpy(&o[static_cast<std::size_t>(j * s.exch_rows) * row_bytes],
                  &a[static_cast<std::size_t>(from) * row_bytes],
                  static_cast<std::size_t>(s.exch_rows) * row_bytes);
    }
    out[static_cast<std::size_t>(c)] = std::move(o);
  }
  for (std::int64_t c = 0; c < n; ++c) {
    const Kernels& k = *ks[static_cast<std::size_t>(c)];
    bufs[static_cast<std::size_t>(c)][root(k, k.steps[i].d)] =
        std::move(out[static_cast<std::size_t>(c)]);
  }
}

void run_step(const Kernels& k, const KStep& s, std::vector<Bytes>& buf, bool approximate);

}  // namespace

std::vector<Bytes> run_reference(const Kernels& k, const std::vector<Bytes>& inputs,
                                 std::vector<Bytes>* all, bool approximate) {
  std::vector<Bytes> buf = initial(k, inputs);
  for (const KStep& s : k.steps) {
    if (s.kind == KStep::Kind::kExchange || s.kind == KStep::Kind::kRecv)
      throw std::invalid_argument("reference: '" + s.origin +
                                  "' takes rows from other chips; run it with "
                                  "run_reference_spmd");
    if (s.kind == KStep::Kind::kSend) continue;
    run_step(k, s, buf, approximate);
  }
  if (all) {
    all->resize(k.tensors.size());
    for (std::size_t t = 0; t < k.tensors.size(); ++t)
      (*all)[t] = buf[root(k, static_cast<int>(t))];
  }
  std::vector<Bytes> outs;
  for (int t : k.outputs)
    outs.push_back(buf[root(k, t)]);
  return outs;
}

std::vector<std::vector<Bytes>> run_reference_spmd(const std::vector<Kernels>& chips,
                                                   const std::vector<std::vector<Bytes>>& inputs,
                                                   Transfers* transfers) {
  if (chips.empty() || inputs.size() != chips.size())
    throw std::invalid_argument("reference: " + std::to_string(inputs.size()) +
                                " chips' inputs for " + std::to_string(chips.size()) + " chips");
  std::vector<const Kernels*> ks;
  std::vector<std::vector<Bytes>> bufs;
  for (std::size_t c = 0; c < chips.size(); ++c) {
    if (chips[c].steps.size() != chips[0].steps.size())
      throw std::invalid_argument("reference: the chips' programs have different steps");
    ks.push_back(&chips[c]);
    bufs.push_back(initial(chips[c], inputs[c]));
  }
  if (transfers) transfers->sent.assign(chips.size(), {});
  std::vector<std::size_t> taken(chips.size(), 0);
  for (std::size_t i = 0; i < chips[0].steps.size(); ++i) {
    const KStep::Kind kind = chips[0].steps[i].kind;
    if (kind == KStep::Kind::kExchange) {
      exchange(ks, i, bufs);
      continue;
    }
    if (kind == KStep::Kind::kSend || kind == KStep::Kind::kRecv) {
      for (std::size_t c = 0; c < chips.size(); ++c) {
        const KStep& s = chips[c].steps[i];
        if (kind == KStep::Kind::kSend) {
          if (transfers) transfers->sent[c].push_back(bufs[c][root(chips[c], s.a)]);
          continue;
        }
        if (!transfers || c >= transfers->received.size() ||
            taken[c] >= transfers->received[c].size())
          throw std::invalid_argument("reference: nothing for the receive of '" + s.origin + "'");
        bufs[c][root(chips[c], s.d)] = transfers->received[c][taken[c]++];
      }
      continue;
    }
    for (std::size_t c = 0; c < chips.size(); ++c)
      run_step(chips[c], chips[c].steps[i], bufs[c], false);
  }
  std::vector<std::vector<Bytes>> outs(chips.size());
  for (std::size_t c = 0; c < chips.size(); ++c)
    for (int t : chips[c].outputs)
      outs[c].push_back(bufs[c][root(chips[c], t)]);
  return outs;
}

namespace {

void run_step(const Kernels& k, const KStep& s, std::vector<Bytes>& buf, bool approximate) {
  auto size_of = [&](int t) {
    const KTensor& kt = k.tensors[static_cast<std::size_t>(t)];
    return static_cast<std::size_t>(kt.elements()) *
           static_cast<std::size_t>(isa::dtype_bytes(kt.dtype));
  };
  constexpr int kChunk = 320;
  {
    if (s.kind == KStep::Kind::kMatMul) {
      (approximate ? approx_matmul : matmul)(k, s, buf);
      return;
    }
    if (s.kind == KStep::Kind::kSxm || s.kind == KStep::Kind::kTranspose) {
      sxm(k, s, buf);
      return;
    }
    const KTensor& d = k.tensors[static_cast<std::size_t>(s.d)];
    const int in_bytes = isa::dtype_bytes(s.args.type);
    const int out_bytes = s.args.op == func::VxmOp::kCast ? isa::dtype_bytes(s.args.to) : in_bytes;
    // Where result r goes: row row0 + r of d, or dealt round-robin (KStep::deal).
    std::vector<std::pair<int, std::int64_t>> dests = s.deal;
    if (dests.empty()) dests.push_back({s.d, s.d_row});
    for (const auto& [t, unused] : dests) {
      (void)unused;
      Bytes& o = buf[root(k, t)];
      if (o.size() != size_of(t)) o.assign(size_of(t), 0);  // partial writes accumulate
    }
    const auto n_dest = static_cast<std::int64_t>(dests.size());
    const std::int64_t rows = s.rows ? s.rows : d.rows(), cols = d.cols(),
                       row0 = s.rows ? s.d_row : 0;
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
    auto cols_of = [&](int t) { return k.tensors[static_cast<std::size_t>(t)].cols(); };
    // An operand of one row is broadcast along rows.
    // (A whole-tensor step reads an operand of fewer rows than the result cyclically.)
    auto row_of = [&](int t, std::int64_t r) {
      const std::int64_t n = k.tensors[static_cast<std::size_t>(t)].rows();
      return n == 1 ? 0 : !s.rows && n < rows ? r % n : r;
    };
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c0 = 0; c0 < cols; c0 += kChunk) {
        const int n = static_cast<int>(std::min<std::int64_t>(kChunk, cols - c0));
        split(buf[root(k, s.a)], in_bytes, row_of(s.a, r) + (s.rows ? s.a_row : 0), cols_of(s.a),
              c0, n, pa);
        if (s.b >= 0)
          split(buf[root(k, s.b)], in_bytes, row_of(s.b, r) + (s.rows ? s.b_row : 0), cols_of(s.b),
                c0, n, pb);
        if (s.mask >= 0)
          split(buf[root(k, s.mask)], in_bytes, row_of(s.mask, r), cols_of(s.mask), c0, n, pm);
        func::vxm_apply(s.args, n, a, s.b >= 0 ? b : nullptr, s.mask >= 0 ? m : nullptr, o);
        const auto& dest = dests[static_cast<std::size_t>(r % n_dest)];
        Bytes& out = buf[root(k, dest.first)];
        const std::int64_t orow = n_dest > 1 ? dest.second + r / n_dest : row0 + r;
        for (int bt = 0; bt < out_bytes; ++bt)
          for (int i = 0; i < n; ++i)
            out[static_cast<std::size_t>(((orow * cols) + c0 + i) * out_bytes + bt)] =
                pd[static_cast<std::size_t>(bt)][static_cast<std::size_t>(i)];
      }
  }
}

}  // namespace

}  // namespace lpu::compiler

namespace lpu::compiler {

std::vector<Bytes> random_inputs(const Kernels& k, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> i8(-128, 127);
  std::vector<Bytes> out;
  for (int t : k.inputs) {
    const KTensor& kt = k.tensors[static_cast<std::size_t>(t)];
    const auto n = static_cast<std::size_t>(kt.elements());
    const auto bytes = static_cast<std::size_t>(isa::dtype_bytes(kt.dtype));
    Bytes data(n * bytes);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t bits = 0;
      switch (kt.dtype) {
        case isa::DType::kFp32:
          bits = func::float_bits(u(rng));
          break;
        case isa::DType::kFp16:
          bits = func::fp32_to_fp16(u(rng));
          break;
        case isa::DType::kBf16:
          bits = func::fp32_to_bf16(u(rng));
          break;
        default:
          bits = static_cast<std::uint32_t>(i8(rng));
      }
      for (std::size_t b = 0; b < bytes; ++b)
        data[i * bytes + b] = static_cast<std::uint8_t>(bits >> (8 * b));
    }
    out.push_back(std::move(data));
  }
  return out;
}

Kernels lower_with_precision(const Graph& g, const arch::Arch& arch, Precision precision,
                             std::uint32_t calibration_seed) {
  LowerOptions o;
  o.precision = precision;
  if (precision == Precision::kInt8) o.activation_max = calibrate(g, arch, calibration_seed);
  return lower(g, arch, o);
}

std::map<std::string, double> calibrate(const Graph& g, const arch::Arch& arch,
                                        std::uint32_t seed) {
  std::map<std::string, double> out;
  // The model as it is, on random inputs; the largest magnitude of every activation the int8
  // lowering will quantize.
  const Kernels f = lower(g, arch);
  std::vector<Bytes> all;
  run_reference(f, random_inputs(f, seed), &all, /*approximate=*/true);
  for (const auto& [key, t] : f.calibration) {
    const KTensor& kt = f.tensors[static_cast<std::size_t>(t)];
    const Bytes& data = all[static_cast<std::size_t>(t)];
    const auto bytes = static_cast<std::size_t>(isa::dtype_bytes(kt.dtype));
    double most = 0;
    for (std::size_t i = 0;
         i + bytes <= data.size() && i / bytes < static_cast<std::size_t>(kt.elements());
         i += bytes) {
      const auto h = static_cast<std::uint16_t>(data[i] | (data[i + 1] << 8));
      double x = 0;
      switch (kt.dtype) {
        case isa::DType::kFp32: {
          float v;
          std::memcpy(&v, &data[i], 4);
          x = v;
          break;
        }
        case isa::DType::kFp16:
          x = func::fp16_to_fp32(h);
          break;
        case isa::DType::kBf16:
          x = func::bf16_to_fp32(h);
          break;
        default:
          continue;
      }
      if (std::isfinite(x)) most = std::max(most, std::fabs(x));
    }
    double& m = out[key];
    m = std::max(m, most);
  }
  return out;
}

}  // namespace lpu::compiler
