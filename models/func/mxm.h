// One MXM plane (brief A3): a rows x cols array of multiply-accumulate cells with staging weight
// buffers, a queue of products between ABC and ACC, and the accumulators.
//
// Arithmetic:
// - int8: product[c] = sum over r of x[r] * W[r][c], exact in int32 (|sum| < 2^31 for any plane
//   up to 131072 rows); accumulation across ACC instructions wraps modulo 2^32.
// - fp16: every product of two fp16 values is exact, and the whole sum over the rows is computed
//   exactly (128-bit fixed point) and rounded once to fp32, round to nearest even; a NaN operand,
//   or +inf meeting -inf, gives the canonical NaN; an exact zero sum is +0. Accumulation across
//   ACC instructions is an fp32 addition (one more rounding).
// Activations come from lanes 0..rows-1 of the activation vector; products occupy lanes
// 0..cols-1 of the result (other lanes are zero).
//
// Not modelled: the physical supercell layout and weight shift timing (the unit applies
// install_cycles), partial-sum pipelining inside the array.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace lpu::func {

class MxmPlane {
 public:
  /// With `with_data` false (timing mode) no values are kept and the planes passed to the
  /// methods below are never read (they may be null); types, rows and products are still checked.
  /// `buffers`: staging buffers (chip.mxm.weight_buffers - 1, may be 0).
  MxmPlane(int rows, int cols, int lanes, int accumulators, bool with_data, int buffers = 1);

  /// LW: rows of staging buffer `buf` from 16 byte planes: 16 int8 rows from `row`, or 8 fp16
  /// rows (planes 2j and 2j+1 are the low and high bytes of row+j). A buffer holding another type
  /// (or cleared) starts from zeros. Returns an error message or "".
  std::string load(isa::DType t, int row, int buf, const std::uint8_t* const* planes);
  /// IW from buffer `buf`: its weights become the active ones (the buffer keeps them).
  void install_from_buffer(int buf);
  /// Clears buffer `buf` to zeros.
  void clear(int buf);
  /// IW from streams: like load, straight into the active weights.
  std::string install_rows(isa::DType t, int row, const std::uint8_t* const* planes);

  /// ABC: one activation vector (1 plane for int8, 2 for fp16) through the active weights; the
  /// product joins the queue. Returns an error message (type mismatch with the weights) or "".
  std::string activate(isa::DType t, const std::uint8_t* const* planes);

  enum class AccMode : std::uint8_t { kOnly = 1, kLast = 2, kFirst = 3, kNext = 4 };
  static bool emits(AccMode m) { return m == AccMode::kOnly || m == AccMode::kLast; }
  /// ACC: takes the oldest product into accumulator `slot` (set or add); when the mode emits,
  /// writes the sum as 4 byte planes of `lanes` bytes (int32 or fp32 bits). Returns an error
  /// message (no product waiting, slot out of range, type mismatch) or "".
  std::string accumulate(isa::DType result_type, AccMode mode, int slot, std::uint8_t* const* out);

  std::size_t pending_products() const { return products_.size(); }
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  /// Multiply-accumulates the array did so far (rows x cols per activation vector, zeros
  /// included), all and by the activations' type.
  std::uint64_t macs() const { return macs_; }
  std::uint64_t macs_int8() const { return macs_ - macs_fp16_; }
  std::uint64_t macs_fp16() const { return macs_fp16_; }

 private:
  struct Weights {
    isa::DType type = isa::DType::kNone;
    std::vector<std::int8_t> i8;     // [col][row], transposed for contiguous dot products
    std::vector<std::uint16_t> f16;  // [col][row]
  };
  struct Product {
    isa::DType type;                   // kI32 or kFp32
    bool ready = false;                // int8 products are computed in batches when first needed
    std::vector<std::uint32_t> value;  // cols
  };
  // int8 activations wait here until an ACC needs their product, then all waiting ones go
  // through the array in one matrix product (same results, far fewer passes over the weights).
  void compute_pending();
  std::string put_rows(Weights& w, isa::DType t, int row, const std::uint8_t* const* planes);

  int rows_, cols_, lanes_, accumulators_;
  bool with_data_;
  std::vector<Weights> staged_;
  Weights active_;
  std::deque<Product> products_;
  std::vector<std::uint32_t> acc_;    // [slot][col]
  std::vector<isa::DType> acc_type_;  // per slot
  std::uint64_t macs_ = 0, macs_fp16_ = 0;
  std::vector<std::int8_t> batch_x_;  // waiting int8 activation vectors, rows_ bytes each
  std::vector<std::int32_t> batch_y_;
  std::size_t batch_first_ = 0;  // index in products_ of the first waiting product
  std::vector<std::vector<std::uint32_t>> spare_;  // product buffers to reuse
  std::vector<std::uint16_t> x16_;
};

/// C[m x n] = X[m x k] . Wt^T where Wt is n x k (rows of Wt are columns of the plane), int8 in,
/// int32 out, exact. Uses oneDNN's int8 GEMM where this processor gives exact results with it
/// (checked once, against the plain loop on inputs that would saturate), else the plain loop.
void int8_matmul_exact(const std::int8_t* x, const std::int8_t* wt, std::int32_t* c, int m, int n,
                       int k);

/// C[m x n] += A[m x k] . B[k x n] in single precision (row-major; oneDNN's sgemm, one thread):
/// not the machine's arithmetic, for estimates such as int8 calibration.
void float_matmul_accumulate(const float* a, const float* b, float* c, int m, int n, int k);

/// Exact dot product of fp16 vectors (raw bits), rounded once to fp32 (see above).
float fp16_dot_exact(const std::uint16_t* x, const std::uint16_t* w, int n);

}  // namespace lpu::func
