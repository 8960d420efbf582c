#include "func/mxm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "func/numerics.h"

namespace lpu::func {

using isa::DType;

MxmPlane::MxmPlane(int rows, int cols, int lanes, int accumulators, bool with_data, int buffers)
    : rows_(rows),
      cols_(cols),
      lanes_(lanes),
      accumulators_(accumulators),
      with_data_(with_data),
      staged_(static_cast<std::size_t>(std::max(buffers, 1))) {
  acc_type_.assign(static_cast<std::size_t>(accumulators), DType::kNone);
  if (with_data_) {
    acc_.assign(static_cast<std::size_t>(accumulators) * static_cast<std::size_t>(cols), 0);
    x16_.resize(static_cast<std::size_t>(rows));
  }
}

std::string MxmPlane::put_rows(Weights& w, DType t, int row, const std::uint8_t* const* planes) {
  if (t != DType::kI8 && t != DType::kFp16) return "weights must be i8 or fp16";
  const int count = t == DType::kI8 ? 16 : 8;
  if (row < 0 || row + count > rows_)
    return "weight rows " + std::to_string(row) + ".." + std::to_string(row + count - 1) +
           " are beyond the plane's " + std::to_string(rows_) + " rows";
  if (w.type != t) {
    // A new type starts a fresh set of weights (all zero).
    w.type = t;
    w.i8.clear();
    w.f16.clear();
  }
  if (!with_data_) return "";
  const auto n = static_cast<std::size_t>(rows_) * static_cast<std::size_t>(cols_);
  if (t == DType::kI8) {
    if (w.i8.size() != n) w.i8.assign(n, 0);
    for (int j = 0; j < count; ++j)
      for (int c = 0; c < cols_; ++c)
        w.i8[static_cast<std::size_t>(c) * static_cast<std::size_t>(rows_) +
             static_cast<std::size_t>(row + j)] = static_cast<std::int8_t>(planes[j][c]);
  } else {
    if (w.f16.size() != n) w.f16.assign(n, 0);
    for (int j = 0; j < count; ++j)
      for (int c = 0; c < cols_; ++c)
        w.f16[static_cast<std::size_t>(c) * static_cast<std::size_t>(rows_) +
              static_cast<std::size_t>(row + j)] =
            static_cast<std::uint16_t>(planes[2 * j][c] | (planes[2 * j + 1][c] << 8));
  }
  return "";
}

std::string MxmPlane::load(DType t, int row, int buf, const std::uint8_t* const* planes) {
  if (buf < 0 || static_cast<std::size_t>(buf) >= staged_.size())
    return "no staging buffer " + std::to_string(buf);
  return put_rows(staged_[static_cast<std::size_t>(buf)], t, row, planes);
}

void MxmPlane::install_from_buffer(int buf) {
  compute_pending();
  active_ = staged_.at(static_cast<std::size_t>(buf));
}

void MxmPlane::clear(int buf) {
  Weights& w = staged_.at(static_cast<std::size_t>(buf));
  w.type = DType::kNone;
  w.i8.clear();
  w.f16.clear();
}

std::string MxmPlane::install_rows(DType t, int row, const std::uint8_t* const* planes) {
  compute_pending();
  return put_rows(active_, t, row, planes);
}

namespace {

// 128-bit fixed point holds any sum of fp16 products exactly (GCC/Clang extension).
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

// Splits a finite fp16 into an integer significand and the exponent of its last bit, so that
// value = sig * 2^exp with exp in [-24, 5].
inline void split16(std::uint16_t h, std::int32_t& sig, int& exp) {
  const int e = (h >> 10) & 0x1f;
  const std::int32_t m = h & 0x3ff;
  sig = e ? (m | 0x400) : m;
  exp = (e ? e : 1) - 25;
  if (h & 0x8000) sig = -sig;
}

// Rounds the exact value v * 2^-48 to fp32, round to nearest even.
float round_fixed(i128 v) {
  if (v == 0) return 0.0f;
  const bool neg = v < 0;
  u128 u = neg ? static_cast<u128>(-v) : static_cast<u128>(v);
  int msb = 127;
  while (!((u >> msb) & 1))
    --msb;
  // Keep 24 significant bits.
  const int drop = msb - 23;
  std::uint64_t sig;
  int exp2;  // value = sig * 2^exp2 * 2^-48
  if (drop > 0) {
    const u128 rem = u & ((static_cast<u128>(1) << drop) - 1);
    const u128 half = static_cast<u128>(1) << (drop - 1);
    sig = static_cast<std::uint64_t>(u >> drop);
    if (rem > half || (rem == half && (sig & 1))) ++sig;
    exp2 = drop;
  } else {
    sig = static_cast<std::uint64_t>(u);
    exp2 = 0;
  }
  // sig < 2^25 and the magnitude is at least 2^-48, far inside fp32's normal range.
  const float f = std::ldexp(static_cast<float>(sig), exp2 - 48);
  return neg ? -f : f;
}

}  // namespace

float fp16_dot_exact(const std::uint16_t* x, const std::uint16_t* w, int n) {
  i128 sum = 0;
  bool nan = false, pinf = false, ninf = false;
  for (int i = 0; i < n; ++i) {
    const std::uint16_t a = x[i], b = w[i];
    const bool a_special = (a & 0x7c00) == 0x7c00, b_special = (b & 0x7c00) == 0x7c00;
    if (a_special || b_special) {
      const bool a_nan = a_special && (a & 0x3ff), b_nan = b_special && (b & 0x3ff);
      const bool a_zero = !(a & 0x7fff), b_zero = !(b & 0x7fff);
      if (a_nan || b_nan || (a_special && b_zero) || (b_special && a_zero)) {
        nan = true;
      } else {
        (((a ^ b) & 0x8000) ? ninf : pinf) = true;
      }
      continue;
    }
    std::int32_t sa, sb;
    int ea, eb;
    split16(a, sa, ea);
    split16(b, sb, eb);
    const std::int64_t p = static_cast<std::int64_t>(sa) * sb;  // < 2^22
    sum += static_cast<i128>(p) *
           (static_cast<i128>(1) << (ea + eb + 48));  // shift in [0, 58]; no shift of a negative
  }
  if (nan || (pinf && ninf)) return bits_float(kFp32QuietNan);
  if (pinf) return bits_float(0x7f800000);
  if (ninf) return bits_float(0xff800000);
  return round_fixed(sum);
}

std::string MxmPlane::activate(DType t, const std::uint8_t* const* planes) {
  if (active_.type == DType::kNone) return "no weights installed";
  if (t != active_.type)
    return std::string("activations are ") + isa::to_string(t) + " but the installed weights are " +
           isa::to_string(active_.type);
  Product p;
  p.type = t == DType::kI8 ? DType::kI32 : DType::kFp32;
  macs_ += static_cast<std::uint64_t>(rows_) * static_cast<std::uint64_t>(cols_);
  if (t == DType::kFp16)
    macs_fp16_ += static_cast<std::uint64_t>(rows_) * static_cast<std::uint64_t>(cols_);
  if (with_data_) {
    if (!spare_.empty()) {
      p.value = std::move(spare_.back());
      spare_.pop_back();
    }
    p.value.resize(static_cast<std::size_t>(cols_));
    const auto rows = static_cast<std::size_t>(rows_);
    if (t == DType::kI8) {
      if (batch_x_.empty()) batch_first_ = products_.size();
      const auto* x = reinterpret_cast<const std::int8_t*>(planes[0]);
      batch_x_.insert(batch_x_.end(), x, x + rows);
    } else {
      for (std::size_t r = 0; r < rows; ++r)
        x16_[r] = static_cast<std::uint16_t>(planes[0][r] | (planes[1][r] << 8));
      const bool empty = active_.f16.empty();
      for (int c = 0; c < cols_; ++c) {
        const float f =
            empty ? 0.0f
                  : fp16_dot_exact(x16_.data(), &active_.f16[static_cast<std::size_t>(c) * rows],
                                   rows_);
        p.value[static_cast<std::size_t>(c)] = float_bits(f);
      }
      p.ready = true;
    }
  } else {
    p.ready = true;
  }
  products_.push_back(std::move(p));
  return "";
}

namespace {

// 32-bit sums to their four byte planes. Built for AVX2 too where the processor has it (the
// baseline x86-64 build leaves this de-interleave scalar); the results are the same bytes.
__attribute__((target_clones("avx2", "default"))) void split_planes(const std::uint32_t* acc, int n,
                                                                    std::uint8_t* const* out) {
  std::uint8_t* __restrict o0 = out[0];
  std::uint8_t* __restrict o1 = out[1];
  std::uint8_t* __restrict o2 = out[2];
  std::uint8_t* __restrict o3 = out[3];
  for (int c = 0; c < n; ++c) {
    const std::uint32_t v = acc[c];
    o0[c] = static_cast<std::uint8_t>(v);
    o1[c] = static_cast<std::uint8_t>(v >> 8);
    o2[c] = static_cast<std::uint8_t>(v >> 16);
    o3[c] = static_cast<std::uint8_t>(v >> 24);
  }
}

}  // namespace

std::string MxmPlane::accumulate(DType result_type, AccMode mode, int slot,
                                 std::uint8_t* const* out) {
  if (products_.empty())
    return "no product is waiting (too few activation vectors before this ACC)";
  if (slot < 0 || slot >= accumulators_)
    return "accumulator " + std::to_string(slot) +
           " does not exist (chip.mxm.accumulators = " + std::to_string(accumulators_) + ")";
  if (!products_.front().ready) compute_pending();
  Product p = std::move(products_.front());
  products_.pop_front();
  if (batch_first_ > 0) --batch_first_;
  if (p.type != result_type)
    return std::string("the product is ") + isa::to_string(p.type) + " but ACC asks for " +
           isa::to_string(result_type);
  const bool start = mode == AccMode::kOnly || mode == AccMode::kFirst;
  auto& type = acc_type_[static_cast<std::size_t>(slot)];
  if (!start && type != result_type)
    return "accumulator " + std::to_string(slot) + " holds no " + isa::to_string(result_type) +
           " sum to add to (start one with first or only)";
  type = result_type;
  if (!with_data_) return "";
  std::uint32_t* acc = &acc_[static_cast<std::size_t>(slot) * static_cast<std::size_t>(cols_)];
  const std::uint32_t* v = p.value.data();
  // One loop per case, so that each vectorises.
  if (start) {
    std::memcpy(acc, v, static_cast<std::size_t>(cols_) * sizeof(std::uint32_t));
  } else if (result_type == DType::kI32) {
    for (int c = 0; c < cols_; ++c)
      acc[c] += v[c];  // wraps modulo 2^32
  } else {
    for (int c = 0; c < cols_; ++c)
      acc[c] = float_bits(canonical(bits_float(acc[c]) + bits_float(v[c])));
  }
  spare_.push_back(std::move(p.value));  // reused by the next activation
  if (emits(mode) && out) {
    split_planes(acc, cols_, out);
    for (int b = 0; b < 4; ++b)
      std::memset(out[b] + cols_, 0, static_cast<std::size_t>(lanes_ - cols_));
  }
  return "";
}

void MxmPlane::compute_pending() {
  if (batch_x_.empty()) return;
  const int m = static_cast<int>(batch_x_.size() / static_cast<std::size_t>(rows_));
  batch_y_.resize(static_cast<std::size_t>(m) * static_cast<std::size_t>(cols_));
  if (active_.i8.empty())
    std::fill(batch_y_.begin(), batch_y_.end(), 0);
  else
    int8_matmul_exact(batch_x_.data(), active_.i8.data(), batch_y_.data(), m, cols_, rows_);
  for (int i = 0; i < m; ++i) {
    Product& p = products_[batch_first_ + static_cast<std::size_t>(i)];
    std::memcpy(p.value.data(),
                &batch_y_[static_cast<std::size_t>(i) * static_cast<std::size_t>(cols_)],
                static_cast<std::size_t>(cols_) * sizeof(std::uint32_t));
    p.ready = true;
  }
  batch_x_.clear();
}

namespace {

void int8_matmul_loop(const std::int8_t* x, const std::int8_t* wt, std::int32_t* c, int m, int n,
                      int k) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      const std::int8_t* a = x + static_cast<std::size_t>(i) * static_cast<std::size_t>(k);
      const std::int8_t* b = wt + static_cast<std::size_t>(j) * static_cast<std::size_t>(k);
      std::int32_t s = 0;
      for (int r = 0; r < k; ++r)
        s += static_cast<std::int32_t>(a[r]) * b[r];
      c[static_cast<std::size_t>(i) * static_cast<std::size_t>(n) + static_cast<std::size_t>(j)] =
          s;
    }
}

bool dnnl_matmul(const std::int8_t* x, const std::int8_t* wt, std::int32_t* c, int m, int n,
                 int k) {
  const std::int32_t co = 0;
  return dnnl_gemm_s8s8s32('N', 'T', 'F', m, n, k, 1.0f, x, k, 0, wt, k, 0, 0.0f, c, n, &co) ==
         dnnl_success;
}

// oneDNN's int8 GEMM may saturate intermediate sums on processors without VNNI; use it only if
// it reproduces the exact loop on inputs that would saturate (products of +-128 and 127).
bool dnnl_is_exact() {
  const int m = 3, n = 5, k = 64;
  std::vector<std::int8_t> x(static_cast<std::size_t>(m * k)), w(static_cast<std::size_t>(n * k));
  for (int i = 0; i < m * k; ++i)
    x[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(i % 3 == 0 ? -128 : 127);
  for (int i = 0; i < n * k; ++i)
    w[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(i % 5 == 0 ? 127 : -128);
  std::vector<std::int32_t> a(static_cast<std::size_t>(m * n)), b(a.size());
  int8_matmul_loop(x.data(), w.data(), a.data(), m, n, k);
  return dnnl_matmul(x.data(), w.data(), b.data(), m, n, k) && a == b;
}

}  // namespace

void float_matmul_accumulate(const float* a, const float* b, float* c, int m, int n, int k) {
  static const bool one_thread = (omp_set_num_threads(1), true);
  (void)one_thread;
  if (dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, k, b, n, 1.0f, c, n) == dnnl_success) return;
  for (int i = 0; i < m; ++i)
    for (int r = 0; r < k; ++r) {
      const float x = a[static_cast<std::size_t>(i) * static_cast<std::size_t>(k) +
                        static_cast<std::size_t>(r)];
      for (int j = 0; j < n; ++j)
        c[static_cast<std::size_t>(i) * static_cast<std::size_t>(n) +
          static_cast<std::size_t>(j)] +=
            x * b[static_cast<std::size_t>(r) * static_cast<std::size_t>(n) +
                  static_cast<std::size_t>(j)];
    }
}

void int8_matmul_exact(const std::int8_t* x, const std::int8_t* wt, std::int32_t* c, int m, int n,
                       int k) {
  // The simulator runs on one thread; oneDNN's OpenMP team would only fight it for the cores
  // (measured: 25x slower with two threads on a two-core machine).
  static const bool use_dnnl = (omp_set_num_threads(1), dnnl_is_exact());
  if (use_dnnl && dnnl_matmul(x, wt, c, m, n, k)) return;
  int8_matmul_loop(x, wt, c, m, n, k);
}

}  // namespace lpu::func
