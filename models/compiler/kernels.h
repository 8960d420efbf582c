// Lowering: the graph IR (compiler/graph.h) to kernels, the units' view of the work. A kernel
// program is a list of tensors and a list of steps over whole tensors; each step is one unit
// operation that the scheduler streams through the machine vector by vector and that the host
// reference executor (compiler/reference.h) computes with the same functional cores. Both follow
// the same steps, so "same numerics as the model" holds by construction, while the placement,
// the stream routing and the timing stay the scheduler's alone for the simulator to check.
//
// Steps: point-wise VXM operations (one func::VxmArgs per step; an operand of one vector row is
// read again for every row of the result), and matrix products on an MXM plane (one or more
// passes of activation rows through installed weights, accumulated; fp32 products are three
// fp16 passes: hi x hi + hi x lo + lo x hi).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "compiler/graph.h"
#include "func/vxm.h"

namespace lpu::compiler {

// (The lowering's meta() copies every field but `data`: a new field must be added there too.)
struct KTensor {
  enum class Role { kInput, kOutput, kConstant, kTemp };
  std::string name;
  isa::DType dtype = isa::DType::kFp32;
  std::vector<std::int64_t> shape;
  Role role = Role::kTemp;
  std::vector<std::uint8_t> data;  ///< constants: little-endian elements, row-major
  /// A view shares the storage of tensor `view_of` (a reshape that keeps the rows view: same
  /// rows, same last dimension); -1 for a tensor of its own.
  int view_of = -1;
  /// Whether the lanes past the last column of every vector are zero in MEM. Inputs, constants
  /// and products are; a VXM op that maps 0 to something else (exp, rsqrt, a comparison) leaves
  /// them dirty. The MXM and the SXM take only clean tensors (a NaN or infinity there would reach
  /// real lanes), so the lowering masks dirty ones first.
  bool clean = true;
  /// Rows spread over 16 slices so that 16 of them move in one cycle (the SXM transposers).
  bool spread16 = false;
  /// When non-zero, the vector rows go in chunks of this many, each on slices of its own, so that
  /// the MXM steps that read or write different blocks of rows can run at once on several planes
  /// (a slice reads and writes one vector a cycle).
  std::int64_t chunk_rows = 0;
  /// When > 1, the rows (of each chunk) are dealt over this many groups of slices: row r in
  /// group r mod interleave at address r / interleave, so that every interleave-th row (a
  /// strided pass or result, KPass::x_stride) is one run of consecutive addresses. Honoured for
  /// tensors the units write (a hint elsewhere).
  int interleave = 1;

  std::int64_t elements() const {
    std::int64_t n = 1;
    for (auto d : shape)
      n *= d;
    return n;
  }
  /// The "rows" view (isa/layout.h): [rows, cols], cols = the last dimension (1 for a scalar).
  std::int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  std::int64_t rows() const { return cols() ? elements() / cols() : 0; }
  /// Rows wider than the vector are cut into tiles of `lanes` columns, tile-major (isa/layout.h).
  std::int64_t tiles(int lanes) const { return cols() <= lanes ? 1 : (cols() + lanes - 1) / lanes; }
  std::int64_t vector_rows(int lanes) const { return rows() * tiles(lanes); }
};

/// One pass of a matrix product: rows x_row .. x_row + m - 1 of `x`, their column tile x_tile
/// (columns x_tile * lanes ..), through weight rows w_row .. w_row + k - 1 of `w`, column tile
/// w_tile; accumulated into the result.
struct KPass {
  int x = -1, w = -1;
  std::int64_t x_row = 0, w_row = 0;
  std::int64_t x_tile = 0, w_tile = 0;
  std::int64_t k = 0;  ///< weight rows of this pass, <= the plane's rows
  /// A window of x's lanes: the k weight rows go to the plane's rows w_at .. w_at + k - 1 (w_at a
  /// multiple of the rows one load carries) and every other row is zero (the staging buffer is
  /// cleared first), so x's other lanes may hold any finite values. Needs staging buffers.
  bool window = false;
  std::int64_t w_at = 0;
  /// Activation row i of the pass is x row x_row + i x_stride.
  std::int64_t x_stride = 1;
};

struct KStep {
  enum class Kind { kVxm, kMatMul, kSxm, kTranspose, kExchange, kSend, kRecv } kind = Kind::kVxm;
  // kSend: every vector of a (vector rows in order, each row's byte planes in order) goes out on
  // C2C link `port`, a frame each. kRecv: the vectors of d arrive on link `port`, vector j in
  // cycle arrivals[j] of this chip's program (a pipeline stage receiving its predecessor's
  // sends, compiler/pipeline.h).
  int port = -1;
  std::vector<std::uint64_t> arrivals;
  // kExchange (a program split over Kernels::chips chips, docs/multichip.md): rows move between
  // chips in slots of exch_rows logical rows (every column tile). Gather: a is one slot; chip c's
  // d holds chip j's a in slot j. Scatter: a holds a slot per chip; chip c sends slot j of its a
  // to chip j, which keeps it in its d's slot c.
  bool scatter = false;
  std::int64_t exch_rows = 0;
  // kTranspose: for every block of 16 rows of a (byte plane by plane), the SXM transposer's
  // 16 x 16 transpose within each superlane: d row 16 bi + j, lane 16 s + i = a row 16 bi + i,
  // lane 16 s + j. a and d are spread over 16 slices (KTensor::spread16).
  // kSxm: a lane move on every vector row (physical lanes, the whole vector), on the byte planes
  // of args.type: d = shift(a, sxm_n lanes, north or south) | select(a, b, lanes < sxm_n from a)
  // | distribute(a, map = the tensor in `mask`). Operands must have clean padding lanes.
  enum class SxmOp { kShift, kSelect, kDistribute } sxm = SxmOp::kShift;
  int sxm_n = 0;
  bool north = true;
  // kVxm: a point-wise op, d = op(a, b, mask), operands of one row broadcast along rows.
  func::VxmArgs args{};
  int a = -1, b = -1, mask = -1;  ///< operand tensors (-1: unused)
  int d = -1;                     ///< result tensor
  /// kVxm, kSxm: when rows > 0, only rows d_row .. d_row + rows - 1 of d are written (from
  /// operand rows a_row .., one vector row each: the result has a single column tile).
  std::int64_t rows = 0;
  std::int64_t a_row = 0;  ///< with rows > 0: the first row read from operand a
  std::int64_t b_row = 0;  ///< kVxm with rows > 0: the first row read from operand b
  /// kVxm with rows > 0: when not empty, the results are dealt round-robin over n = deal.size()
  /// tensors: result r goes to tensor deal[r % n].first, row deal[r % n].second + r / n (d and
  /// d_row are deal[0]'s). It splits a run of pixels into phases (even and odd columns).
  std::vector<std::pair<int, std::int64_t>> deal;
  // kMatMul: rows d_row .. d_row + m - 1 of d (int32 or fp32), column tile d_tile, are the sum of
  // the passes' products (int8 or fp16 operands), summed in pass order. A weight tensor's rows
  // come in blocks of w_block rows (one product's K: a batch), each cut into tiles of the plane's
  // rows.
  isa::DType mm_type = isa::DType::kI8;  ///< operand type: kI8 (result kI32) or kFp16 (kFp32)
  std::vector<KPass> passes;
  std::int64_t m = 0, d_row = 0, d_tile = 0, w_block = 0;
  std::int64_t d_stride = 1;  ///< result row i is d row d_row + i d_stride
  std::string origin;         ///< the graph node it comes from (Graph::where), for messages
};

struct Kernels {
  /// The MXM plane the products are cut for (the reference runs the same plane).
  int mxm_rows = 0, mxm_cols = 0, mxm_accumulators = 0, lanes = 0;
  std::vector<KTensor> tensors;
  std::vector<KStep> steps;
  std::vector<int> inputs, outputs;  ///< tensor ids, in the graph's order
  /// The activations an int8 lowering quantizes (the float operand of each product with
  /// constant weights), by key (the node's name): what calibration measures.
  std::vector<std::pair<std::string, int>> calibration;
  /// The multiply-accumulates the model's products need (Conv, MatMul, Gemm: output elements x
  /// inner dimension), whatever the lowering does with them: what a MAC utilisation is measured
  /// against.
  std::int64_t model_macs = 0;
  /// Chips running this program in step (one shard each, the same steps): exchange steps move
  /// rows between them. 1 for a single chip.
  int chips = 1;
};

/// The arithmetic of matrix products (MatMul, Gemm, Conv). kModel: the model's own (fp32 products
/// as three fp16 passes, fp16 as one). kFp16: fp32 operands rounded to fp16, one pass. kInt8:
/// products with constant weights in int8 (weights per output column, activations per tensor,
/// symmetric scales; int32 sums scaled back to float), the rest as the model's.
enum class Precision { kModel, kFp32, kFp16, kInt8 };
/// "model", "fp32", "fp16" or "int8"; throws InputError naming `where` otherwise.
Precision parse_precision(const std::string& s, const std::string& where);

struct LowerOptions {
  Precision precision = Precision::kModel;
  /// kInt8: the largest magnitude of each quantized activation, by calibration key.
  std::map<std::string, double> activation_max;
  /// kInt8: the largest magnitude of each column of a product's constant weights (per batch,
  /// then column), by node name, when the weights are a shard of larger ones whose scales must
  /// be kept (rows split over chips); otherwise measured on the weights themselves.
  std::map<std::string, std::vector<double>> weight_max;
  /// Chips the graph is split over (its AllReduce and AllGather nodes exchange between them).
  int chips = 1;
};

/// Lowers every node of `g`. Throws InputError naming the node, its operator and what is not
/// supported (operator, attribute, type, broadcast), or a tensor wider than the machine can hold.
Kernels lower(const Graph& g, const arch::Arch& arch, const LowerOptions& options = {});

/// The custom operators of a graph split over chips (compiler/partition.h), in domain "lpu":
/// AllReduce (the sum over chips of a value each holds a summand of), AllGather (chip j's value
/// as block j along the leading axis) and Broadcast (attribute `root`: that chip's value on
/// every chip).
inline constexpr const char* kAllReduce = "AllReduce";
inline constexpr const char* kAllGather = "AllGather";
inline constexpr const char* kBroadcast = "Broadcast";

/// Operators lower() accepts (for messages and the ONNX suite's skip reasons).
const std::vector<std::string>& supported_ops();

}  // namespace lpu::compiler
