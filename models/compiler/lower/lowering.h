// The lowering's one class (compiler/kernels.h is the interface): graph nodes to kernel steps.
// Its work is spread over the files of this folder by operator family:
//   lowering.cpp      the driver, tensors and steps, point-wise operators
//   ops.cpp           the remaining operators (dispatch by operator name)
//   sequences.cpp     row and lane moves, reductions, softmax, transposes
//   channels_last.cpp convolutions and pools (windows, phases, the row-wise stem)
//   products.cpp      MatMul and Gemm, fp16 splits, int8 quantization
//   gather.cpp        Gather
//   collectives.cpp   AllReduce, AllGather and Broadcast between chips
//   requantize.cpp    folding int8 epilogues into the next quantization
#pragma once

#include "compiler/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "common/diagnostics.h"
#include "func/numerics.h"

namespace lpu::compiler::lowering {

using func::VxmOp;
using isa::DType;

const std::map<std::string, VxmOp>& binary_ops();
const std::map<std::string, VxmOp>& unary_ops();
// numpy broadcasting of two shapes; nullopt when they do not broadcast.
std::optional<std::vector<std::int64_t>> broadcast(const std::vector<std::int64_t>& x,
                                                   const std::vector<std::int64_t>& y);
std::string shape_str(const std::vector<std::int64_t>& s);

class Lowering {
 public:
  using Handler = void (Lowering::*)(const Node&);
  static const std::map<std::string, Handler>& handlers();

  Lowering(const Graph& g, const arch::Arch& arch, const LowerOptions& opt)
      : g_(g), arch_(arch), opt_(opt) {}

  Kernels run();

 private:
  // ---------------------------------------------------------------- requantization folded

  // An int8 epilogue feeding only the next product's quantization,
  //   p = y * s (fp32); b = p + c (fp32); o = fp16(b); r = relu(o); x = r * k (fp16); q = i8(x),
  // becomes p = y * (s k); b = p + c k; r = relu(b) (fp32); q = i8(r): relu commutes with a
  // positive scale, so two VXM steps go and the chain's fp16 values with them (fewer ALUs and
  // streams per chain, and one rounding less). Every tensor dropped has no other reader.
  void fold_requantize();

  // A tensor of the lowered program. Internal ones (internal = true) get a "#n" suffix when their
  // name is taken, so that every tensor of the program has its own name; graph-facing ones keep
  // the model's.
  int add_tensor(const std::string& name, DType dt, std::vector<std::int64_t> shape,
                 KTensor::Role role, bool internal = true);

  // Tensor t without its data: what most lowering code reads. (A copy, since add_tensor may move
  // the tensors; the data of a large constant is not copied along.)
  KTensor meta(int t) const;
  const std::vector<std::uint8_t>& data_of(int t) const {
    return k_.tensors[static_cast<std::size_t>(t)].data;
  }

  // The kernel tensor of graph value v (constants become constant tensors on first use).
  int tensor(int v, const Node* n);

  void step(VxmOp op, DType type, int a, int b, int d, const std::string& origin, int mask = -1);

  // A constant tensor of `shape` whose elements all hold `x` (converted to dt).
  int splat(const std::string& name, DType dt, double x, std::vector<std::int64_t> shape);
  // An fp32 constant tensor of `shape` holding `values` (row-major, one per element).
  int fp32_constant(const std::string& name, std::vector<std::int64_t> shape,
                    const std::vector<double>& values);

  // Makes operand t usable against a result of `shape`: the same shape, or a broadcast along
  // rows (one vector row reused); constants are expanded on the host to whichever fits.
  int fit(int t, const std::vector<std::int64_t>& shape, const Node& n);

  void check_type(const Node& n, VxmOp op, DType dt);

  // Where node n's output 0 goes: a fresh temporary of the given type and shape.
  int output(const Node& n, DType dt, const std::vector<std::int64_t>& shape);

  void binary(const Node& n, VxmOp op, int a, int b, int d);

  // The graph's nodes in the order they are lowered (a topological order; see the .cpp).
  std::vector<const Node*> lowering_order() const;
  void lower(const Node& n);

  // ---------------------------------------------------------------- operators by name (ops.cpp)
  // Node n by its operator's entry in handlers(); an operator not there is an error.
  void lower_by_name(const Node& n);
  // Add, Sub, Mul, Max, Min
  void lower_binary(const Node& n);
  // Neg, Abs, Relu, Exp, Tanh, Identity
  void lower_unary(const Node& n);
  // Sigmoid: 0.5 * tanh(0.5 x) + 0.5: no divide on the VXM
  void lower_sigmoid(const Node& n);
  // LeakyRelu: max(x, alpha x) for alpha <= 1, else min
  void lower_leaky_relu(const Node& n);
  // Clip: min(max(x, lo), hi); bounds from inputs (opset 11+) or attributes
  void lower_clip(const Node& n);
  // MatMul
  void lower_matmul(const Node& n);
  // Gemm: alpha A' B' + beta C
  void lower_gemm(const Node& n);
  // BatchNormalization: inference: x a + b per channel, a and b on the host
  void lower_batch_norm(const Node& n);
  // Cast: between the machine's float types, and from integers to floats
  void lower_cast(const Node& n);
  // GlobalAveragePool: the mean over every axis after the channels
  void lower_global_average_pool(const Node& n);
  // Transpose
  void lower_transpose(const Node& n);
  // Concat: along the last axis, within one vector: shifts and selects
  void lower_concat(const Node& n);
  // Slice: along the last axis: a shift south and a mask
  void lower_slice(const Node& n);
  // Softmax
  void lower_softmax(const Node& n);
  // Div, Reciprocal, Sqrt, Erf
  void lower_div_sqrt_erf(const Node& n);
  // Reshape, Flatten, Squeeze, Unsqueeze
  void lower_reshape(const Node& n);
  // ReduceSum, ReduceMean
  void lower_reduce(const Node& n);
  // LayerNormalization
  void lower_layer_norm(const Node& n);

  // Kernels::model_macs of a product node n once lowered (its output's shape is known; a
  // convolution counts its own, its output may be folded away).
  void count_macs(const Node& n);

  // ------------------------------------------------------ exchanges between chips

  void lower_collective(const Node& n);

  // Whether node n's result is read only by an AllReduce (which n then does itself, on its sums
  // before they are rounded to the node's type).
  bool read_by_allreduce(const Node& n) const;

  void exchange(bool scatter, int a, int d, std::int64_t rows, const Node& n);

  // The sum over chips of x (fp32 or int32), the same on every chip: the chips' values summed
  // by a halving tree in chip order. Fewer rows than chips: every chip gathers all values and
  // sums them; otherwise each sums one piece of the rows from every chip and the sums are
  // gathered (reduce-scatter, then all-gather).
  int all_reduce(int x, const Node& n);

  // Rows out_row .. out_row + r - 1 of `out` = the sum of m blocks of r rows of x from row `base`,
  // by a halving tree: each level adds block i + ceil(m / 2) to block i. A step reads its two
  // operands from different tensors (one read per slice and cycle), so each level keeps its
  // lower blocks in one tensor and its upper blocks in another (the first level's upper blocks
  // are a copy).
  void tree_sum(int x, std::int64_t base, std::int64_t m, std::int64_t r, int out,
                std::int64_t out_row, const Node& n);

  // --------------------------------------------------------------- small helpers for sequences

  // A temporary like t (or of type dt), the result of op on the VXM.
  int vx(VxmOp op, int a, int b, const Node& n, const std::string& tag);
  // A one-row constant of t's columns holding x (for row-broadcast operands).
  int row_const(int t, double x, const Node& n, const std::string& tag) {
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
    return splat(n.name + "/" + tag, kt.dtype, x, {kt.cols()});
  }
  int cmp(VxmOp op, int a, int b, const Node& n, const std::string& tag) {
    return vx(op, a, b, n, tag);
  }
  int sel(int mask, int a, int b, const Node& n, const std::string& tag);
  // 1/x for fp32 (the VXM has no divide): sign(x) rsqrt(|x|)^2.
  int reciprocal(int x, const Node& n);
  // fp16/bf16 work is done in fp32 and rounded back once.
  int widen(int t, const Node& n);
  void narrow_into(int t, DType to, int out, const Node& n);
  int float_input(const Node& n, std::size_t i);
  void no_attrs(const Node& n, std::initializer_list<const char*> allowed = {});
  // Integer values of a constant input (shapes, axes), or nullopt when the input is absent.
  std::optional<std::vector<std::int64_t>> const_ints(const Node& n, std::size_t i);
  // A reshape that keeps the rows view: the output is a view of the input's storage; constants
  // are reshaped on the host.
  void reshape_to(const Node& n, int t, std::vector<std::int64_t> shape);

  // t with another shape (same elements, row-major order): a view when the rows view stays, a
  // relayout on the SXM when the last dimension changes, a new constant for constants.
  int reshaped(int t, std::vector<std::int64_t> shape, const Node& n, const std::string& name);

  // Element j of a float constant, as a double.
  static double element_of(const KTensor& kt, std::int64_t j);

  // t's elements in rows of `cols` (row-major order kept), when one of the old and new row
  // lengths divides the other: merging k rows shifts row m of each group north by m old rows
  // and selects it in; splitting shifts each part south, masks it and interleaves the rows.
  int relayout(int t, std::int64_t cols, const Node& n);
  static std::int64_t norm_axis(std::int64_t a, std::size_t rank) {
    return a < 0 ? a + static_cast<std::int64_t>(rank) : a;
  }

  // Sums of x [R, C] over its last axis, as fp32 [R, 1]: the product with a column of ones on
  // the MXM (one pass per K tile; fp32 in two fp16 parts, hi and lo, both times ones).
  int sum_last(int x, const Node& n);

  // t's rows moved k lanes north (toward higher lanes) or south on the SXM, as a tensor of
  // `shape` (same rows). South shifts read lanes past the columns, so t is cleaned first.
  int sxm_shift(int t, int k, bool north, const std::vector<std::int64_t>& shape, const Node& n,
                const std::string& tag);

  // Softmax over the last axis: exp(x - max) / sum, the row maximum found by a tree of SXM
  // shifts and VXM maxima that leaves it in the last column, then moved to lane 0 and spread.
  int softmax_last(int x, const Node& n);

  // x [..., R, C] as [..., C, R] (R, C up to a vector) on the SXM: the rows spread over 16
  // slices, the transposers swap lanes and rows within each 16 x 16 block of every superlane,
  // then each output row gathers its superlanes from the blocks with shifts and selects.
  int transpose_last2(int x, const Node& n);

  // t with its axes permuted (output axis i = input axis perm[i]): leading axes reordered, the
  // last two swapped, leading axes reordered again (row moves and SXM transposes).
  int transpose_perm(int t, const std::vector<std::int64_t>& perm, const Node& n);

  // t with its leading axes (all but the last) reordered: new axis i = old axis lead[i]. Each
  // row moves whole (a VXM copy per run of rows that stay consecutive); constants move on the
  // host.
  int permute_leading(int t, const std::vector<std::int64_t>& lead, const Node& n);

  // A tensor of `shape` whose row d is row src[d] of t (rows may repeat): moved on the host for
  // constants, else one VXM copy per run of consecutive source rows.
  int gather_rows(int t, const std::vector<std::int64_t>& src,
                  const std::vector<std::int64_t>& shape, const Node& n);

  // A VXM copy of rows a_row .. a_row + rows - 1 of a into d from row d_row on.
  void copy_rows(DType dt, int a, std::int64_t a_row, int d, std::int64_t d_row, std::int64_t rows,
                 const Node& n);

  // SXM select: lanes below k from a, the rest from b, as a tensor of `shape`.
  int sxm_select(int a, int b, int k, const std::vector<std::int64_t>& shape, const Node& n,
                 const std::string& tag);

  // Sums of x over a leading axis (keepdims): for every index of the axes before it, the blocks
  // of rows along it added in order on the VXM (the first copied out, so that no step reads one
  // tensor twice in a cycle).
  int sum_leading(int x, std::int64_t axis, const Node& n);

  // Operators built from the VXM and MXM steps above; false when n is none of them.
  // ------------------------------------------------------ channels-last work (convolutions)
  //
  // A spatial value [N, C, spatial...] is kept as [N, spatial..., C] (rows = pixels, lanes =
  // channels) from a convolution or a pool on, through point-wise operators, until an operator
  // that needs the ONNX layout asks for it (then one transpose makes it). A convolution is then
  // a sum of matrix products over shifted row ranges of the padded input, one per kernel tap
  // (docs/compiler.md).

  // A channels-last value on a *grid*: its tensor is [N, H, pitch, C] (data orientation), pixel
  // (h, w) in row (n H + h) pitch + off + w, the other rows padding (zero where a pool wrote
  // the grid, anything finite after that); its rows dealt over p slice groups
  // (KTensor::interleave), so that every p-th row is one run. A packed bottleneck reads and
  // writes it p rows apart.
  struct CLGrid {
    std::int64_t pitch = 0, off = 0, w = 0;  // w: the data width (pixels per row)
    int p = 1;
  };
  static std::vector<std::int64_t> to_cl(std::size_t rank);
  static std::vector<std::int64_t> from_cl(std::size_t rank);
  // A channels-last value may hold its two spatial axes swapped ([N, W, H, C], "transposed"):
  // convolutions that produce columns of output pixels leave it so, and the channels-last
  // operators after them swap their windows instead of moving the data back.
  static std::vector<std::int64_t> cl_to_nchw(std::size_t rank, bool transposed) {
    if (!transposed) return from_cl(rank);
    return {0, 3, 2, 1};
  }
  static std::vector<std::int64_t> nchw_to_cl(std::size_t rank, bool transposed) {
    if (!transposed) return to_cl(rank);
    return {0, 3, 2, 1};
  }
  bool cl_transposed(int v) const { return v >= 0 && cl_t_[static_cast<std::size_t>(v)]; }

  static std::vector<std::int64_t> permuted(const std::vector<std::int64_t>& s,
                                            const std::vector<std::int64_t>& perm);
  // Shape (ONNX layout) and type of graph value v, whichever form it has so far (the graph
  // knows them for inputs and constants only).
  std::vector<std::int64_t> nchw_shape(int v) const;
  DType dtype_of(int v) const;
  bool cl_only(int v) const {
    return v >= 0 && cl_of_[static_cast<std::size_t>(v)] >= 0 &&
           tensor_of_[static_cast<std::size_t>(v)] < 0;
  }

  // Graph value v channels-last (transposed the first time it is asked for).
  int cl_tensor(int v, const Node& n);

  // A constant operand of a point-wise node done channels-last: broadcast to `rank` axes and
  // permuted like the data (a per-channel [C, 1, 1] becomes a row [1, 1, 1, C]).
  int cl_constant(int v, std::size_t rank, const Node& n, bool transposed = false);

  static bool pointwise(const std::string& op);

  // A point-wise node with an input that exists only channels-last runs on the channels-last
  // forms (its result stays so). False when n is not such a node.
  bool lower_cl_pointwise(const Node& n);

  // The window of a convolution or a pool over one or two spatial axes (a 1-D one is 2-D with
  // height 1), from the node's attributes, and its output size.
  struct Window {
    std::int64_t h = 1, w = 1, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
    std::int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // padding as given (or from auto_pad)
    std::int64_t ho = 1, wo = 1;
  };
  Window window(const Node& n, const std::vector<std::int64_t>& x, std::vector<std::int64_t> k,
                bool ceil_ok);

  // The padded input P of a window, cut into sh x sw phases: phase (a, b) [N, hq, wq, C] holds
  // P's pixels (h sh + a, w sw + b). Output pixel (oh, ow), tap (i, j) reads P pixel
  // (oh sh + i dh, ow sw + j dw), which is pixel (oh + ih, ow + jw) of phase (i dh mod sh,
  // j dw mod sw) with ih = i dh / sh, jw = j dw / sw. Taking the outputs row-major over a grid
  // of width wq, a tap therefore reads one run of consecutive rows of its phase: every pass of a
  // convolution and every step of a pool streams whole runs, at any stride. Results come as
  // [N, ho, wq, C'], the columns past wo unwanted.
  struct Grid {
    std::int64_t hq = 0, wq = 0;
    int phase(const Window& w, std::int64_t i, std::int64_t j) const {
      return static_cast<int>(((i * w.dh) % w.sh) * w.sw + (j * w.dw) % w.sw);
    }
    std::int64_t offset(const Window& w, std::int64_t i, std::int64_t j) const {
      return (i * w.dh) / w.sh * wq + (j * w.dw) / w.sw;
    }
  };
  static Grid grid(const Window& w);

  // x [N, h, w, C] as the phases of its padded form (index a sw + b), the border `fill` (a
  // constant of one element value): one VXM copy per input row, its pixels dealt over the
  // column phases, and one copy of fill rows per border run. x itself when there is nothing to
  // pad and one phase.
  std::vector<int> phases(int x, const Window& w, const Grid& g, double fill, const Node& n);

  // The wanted columns of results [nb, ho, wq, C] as [nb, ho, wo, C] of type `to`: one VXM
  // copy (or cast) per output row; the whole tensor at once when no column is dropped (y itself
  // when the type stays too).
  // With `onto`, the result is on that grid instead (its padding rows zero).
  int pick(int y, std::int64_t nb, std::int64_t ho, std::int64_t wo, std::int64_t wq, DType to,
           const Node& n, const CLGrid* onto = nullptr);

  // The BatchNormalization that only reads the output of convolution n, with constant
  // parameters (folded into the convolution's weights and bias), or nullptr.
  const Node* foldable_bn(const Node& n) const;

  std::vector<double> constant_values(int v, const Node& n);

  // Conv (group 1): the padded input's rows through the taps' weights on the MXM, every tap and
  // channel tile one pass accumulated in place; a following BatchNormalization with constant
  // parameters is folded into the weights and the bias.
  void conv(const Node& n);
  // A convolution as conv's parts see it: shapes, window, weights and their scales.
  struct ConvPlan {
    std::vector<std::int64_t> xs, ws;  // input and weight shapes (NCHW)
    DType dt = DType::kFp32;
    bool tr = false;    // the input is a transposed channels-last tensor
    bool host = false;  // constant weights (and bias): prepared on the host
    bool int8 = false;  // int8 products
    Window w0, w;       // the window, and as the channels-last input sees it
    std::int64_t nb = 0, c = 0, m = 0, taps = 0;
    int bv = -1, out_value = -1;  // the bias value; the value the result is (a folded BN's)
    bool has_bias = false;
    std::vector<double> wts, bias;  // host weights [M, C, taps] and bias
    std::vector<double> w_scale;    // int8: per output channel
    double x_scale = 1;             // int8: the input's
    int wt = -1;                    // the weight tensor [taps x C, M]
  };
  // Checks n and prepares its host weights (a following BatchNormalization folded in). `in`
  // gives the input's shape, type and orientation when it is not lowered yet.
  struct ConvInput {
    std::vector<std::int64_t> xs;
    DType dt = DType::kFp16;
    bool tr = false;
  };
  ConvPlan conv_plan(const Node& n, const ConvInput* in = nullptr);
  // Folds normalization bn into p's weights and bias.
  void fold_bn(const Node& bn, ConvPlan& p);
  // p.wt: the weights as [taps x C, M] (int8 with per-channel scales, or the model's type;
  // computed ones transposed on the chip).
  void conv_weights(const Node& n, ConvPlan& p);
  // The product steps (input band by band, phases, row blocks); returns the sums' tensor.
  int conv_products(const Node& n, const ConvPlan& p);
  // conv_products of a 1 x 1 convolution over the whole of a grid of `rows` rows dealt over pp
  // groups of slices: a step per group and block, every pp-th row in and out.
  void grid_products(const Node& n, const ConvPlan& p, int y,
                     const std::vector<std::pair<int, int>>& parts, std::int64_t pp,
                     std::int64_t rows);
  // Sums to output: int8 scales, the bias, the grid's columns picked, the channels-last output.
  // With `onto`, the result is on that grid (the whole grid was convolved).
  void conv_epilogue(const Node& n, const ConvPlan& p, int y, const CLGrid* onto = nullptr);

  // Whether conv n on input shape xs (only in the ONNX layout) is cheaper row by row (best_bands'
  // estimate) than the channels-last way's taps x ceil(C / rows) passes per output pixel.
  bool rowwise_fits(const Node& n, const std::vector<std::int64_t>& xs, const Window& w,
                    std::int64_t m) const;

  // Where the input columns of each group of Q output pixels go on the plane (conv_rowwise).
  // With fold F > 1 an input vector holds F channels side by side: F blocks of S = lanes / F
  // lanes, block f holding the columns seg_lo[s] .. seg_lo[s] + S - 1 of channel F c + f (a
  // *segment* s of the row; segments overlap where their groups' columns do). Group g reads
  // the columns (Q g) sw - pl .. of the input row (those inside it) in segment seg[g] of every
  // block, which its band of `rows` weight rows puts on plane rows at[g] .. (a multiple of 16,
  // what one load carries). F = 1 is the plain row: one segment at column 0.
  struct RowBands {
    std::int64_t q = 0, groups = 0, rows = 0;
    std::int64_t fold = 1, seg_w = 0;
    std::vector<std::int64_t> at, seg, seg_lo;
    std::int64_t cgroups(std::int64_t c) const { return (c + fold - 1) / fold; }
    std::int64_t segments() const { return static_cast<std::int64_t>(seg_lo.size()); }
    // The input lane of column col of channel f of a channel group, for group g.
    std::int64_t lane(std::int64_t g, std::int64_t f, std::int64_t col) const {
      return f * seg_w + col - seg_lo[static_cast<std::size_t>(seg[static_cast<std::size_t>(g)])];
    }
  };
  std::optional<RowBands> row_bands(const Window& w, std::int64_t m, std::int64_t fold) const;
  // The fold that makes conv_rowwise quickest for C channels and nb images (planes' passes and
  // the SXM's lane moves that build the folded rows, `cycles` the estimate); nullopt when no
  // fold fits.
  std::optional<RowBands> best_bands(const Window& w, std::int64_t m, std::int64_t c,
                                     std::int64_t nb, double* cycles = nullptr) const;

  // Conv of an input x [N, C, H, W] given row by row (the ONNX layout: a vector per image row
  // of one channel, W pixels in its lanes). Output pixels go in groups of Q = cols / M
  // consecutive columns; kernel row r of channel group c is one pass of banded weights over the
  // input rows a group's outputs read, all of a group's output rows streaming: group g's
  // weights W[c, r][lane(g, f, col)][q M + m] = w[m, F c + f, r, col - ((Q g + q) sw - pl)] (0
  // outside the kernel). So a 7 x 7, stride 2 convolution of 3 channels to 64 is 7 passes a
  // group (3 channels folded into each input vector), each a vector per output row, with
  // nothing gathered: the stride across the rows is taken by row phases (input rows
  // h = i sh + a - pt in phase a, copied once), the stride across the columns by the bands.
  // The results come as columns of output pixels, so the value is left transposed
  // ([N, wo, ho, M]); SXM shifts move pixel q of each group to its own row.
  void conv_rowwise(const Node& n, const Window& w, const std::vector<double>& wts,
                    const std::vector<double>& bias, bool has_bias, int out_value, DType dt);
  // The folded rows of x ([N C H, W]) for bands.fold > 1: [N cgroups segments H, lanes], unit
  // (image, channel group, segment) of H rows, built by SXM shifts (channel F c + f's segment
  // to lane f S) and selects (block by block).
  int fold_rows(const Node& n, int x, const RowBands& bands, std::int64_t c, std::int64_t h);
  // conv_rowwise's row phases: phase a holds padded rows i sh + a of every unit (H rows each)
  // of x, `copies` times (one per plane, so that the planes' passes read their own).
  std::vector<std::vector<int>> rowwise_phases(const Node& n, const Window& w, int x,
                                               std::int64_t units, std::int64_t hq,
                                               std::int64_t copies);
  // conv_rowwise's banded weights, block (g, r, channel group) of bands.rows rows (plane rows
  // at[g] ..); int8 with w_scale per output channel (filled), else dt.
  int rowwise_weights(const Node& n, const Window& w, const std::vector<double>& wts,
                      const RowBands& bands, std::int64_t c, std::vector<double>& w_scale,
                      DType dt);
  // Rows of packed pixels (a group's Q pixels of M lanes) to rows of one: rows of a from a_row,
  // shifted south by `lanes` (q M for pixel q), into d from d_row.
  void pixel_to_rows(DType dt, std::int64_t lanes, int a, std::int64_t a_row, int d,
                     std::int64_t d_row, std::int64_t rows, const Node& n);
  // One tap of a window: d's rows d_row .. d_row + rows - 1 are src's rows from src_row (the
  // first tap, acc < 0), else op(acc's rows from acc_row, src's).
  void window_tap(VxmOp op, DType dt, int acc, std::int64_t acc_row, int src, std::int64_t src_row,
                  int d, std::int64_t d_row, std::int64_t rows, const Node& n);
  // The node reading value v, when it is the only one and v is no graph output.
  const Node* only_reader(int v) const;
  // A row-wise conv's packed output yd ([N, groups, ho, Q M]) straight into the MaxPool
  // that reads it (through a Relu, which then runs on the pooled rows): the window's taps down
  // the rows on the packed rows, SXM shifts of the results (Q times fewer rows than the
  // convolution's) to a row per pixel, the taps across on those. False (nothing done) when no
  // such pool follows.
  bool rowwise_pool(const Window& w, const RowBands& bands, int yd, int out_value);
  // conv_rowwise's sums y to n's output: int8 scales, the bias, dt, and pixel q of each group
  // moved to a row of its own (the output channels-last with its spatial axes swapped).
  void rowwise_output(const Node& n, const Window& w, const RowBands& bands, int y, double x_scale,
                      const std::vector<double>& w_scale, const std::vector<double>& bias,
                      bool has_bias, int out_value, DType dt);

  // ---------------------------------------------- grids and packed bottlenecks (packed.cpp)
  //
  const CLGrid* grid_of_tensor(int t) const {
    auto it = tgrid_.find(t);
    return it == tgrid_.end() ? nullptr : &it->second;
  }
  const CLGrid* grid_of_value(int v) const {
    return v >= 0 && cl_of_[static_cast<std::size_t>(v)] >= 0
               ? grid_of_tensor(cl_of_[static_cast<std::size_t>(v)])
               : nullptr;
  }
  // Graph value v's channels-last tensor without grid padding (a copy per pixel row when v is
  // on a grid).
  int cl_compact(int v, const Node& n);
  // `to` (made from `from` point by point) on from's grid, if it has one; returns to.
  int on_grid_of(int from, int to);
  // Records tensor t as on grid g (its rows interleaved over g.p groups of slices).
  void put_on_grid(int t, const CLGrid& g);
  // A bottleneck that runs packed: 1 x 1 conv a (+ BN) -> Relu -> 3 x 3 conv b (stride 1, pads
  // 1, + BN) -> Relu -> 1 x 1 conv c, with p = lanes / (a's output channels) >= 2 pixels of
  // the narrow middle per vector (docs/compiler.md, "Packed bottlenecks").
  struct Packed {
    const Node *a = nullptr, *relu_a = nullptr, *b = nullptr, *relu_b = nullptr, *c = nullptr;
    std::int64_t mid = 0;  // the narrow channels
    int p = 1;
  };
  std::optional<Packed> packable(const Node& a) const;
  // The grid a value of data width w feeding bottleneck pk is put on.
  static CLGrid grid_for(std::int64_t w, const Packed& pk);
  // The grid value v (data width w) should be put on: that of a packed bottleneck it reaches
  // through Relus, Adds and 1 x 1 convolutions (which keep a grid), if any.
  std::optional<CLGrid> grid_wanted(int v, std::int64_t w) const;
  // Lowers a packed bottleneck whose input is on its grid; false (nothing done) otherwise.
  bool packed_bottleneck(const Node& a);
  struct PackedShape {
    std::int64_t p = 1, c = 0, pc = 0, g = 0, h = 0;  // pixels a vector, channels, lanes used,
                                                      // vectors a grid row, rows
    bool int8 = false;
  };
  // A packed product's sums: int32 (int8 products) or fp32.
  int packed_sums(const Node& n, std::vector<std::int64_t> shape, const PackedShape& ps);
  int packed_relu(const Node& n, const Node& r, int y, double x_scale,
                  const std::vector<double>& scale, int bias, const PackedShape& ps);
  int packed_in(const ConvPlan& pa, const Packed& pk, const CLGrid& g, const PackedShape& ps);
  int packed_mid(const ConvPlan& pb, const Packed& pk, int xp, const PackedShape& ps);
  void packed_out(const ConvPlan& pc, const Packed& pk, int xc, const CLGrid& g,
                  const PackedShape& ps);
  // A packed product's passes: the host weights as one int8 (per-column scales filled) or
  // fp16 tensor of `blocks` blocks of [k, cols].
  int packed_weights(const std::string& name, const std::vector<double>& w, std::int64_t blocks,
                     std::int64_t k, std::int64_t cols, bool int8, std::vector<double>* scale);

  // Records t as the channels-last form of graph value v (an output of node n).
  void set_cl_output(const Node& n, int v, int t, const std::vector<std::int64_t>& shape,
                     bool transposed = false);

  // The window of a node on a transposed channels-last value: its axes swapped, as the data.
  static Window swapped(Window w);

  // MaxPool and AveragePool: every tap's rows of the padded input (strided) combined on the VXM,
  // in the input's type for max, in fp32 for averages.
  void pool(const Node& n);

  // GlobalAveragePool of a channels-last value: sums over the pixel rows; the result
  // [N, 1.., C] is also the rows of the flattened [N, C].
  void global_pool_cl(const Node& n);

  // Channels-last operators; false when n is not one of them or not on such a value.
  bool lower_cl(const Node& n);

  // Gather along axis 0 of data [V, ...]. Constant indices: rows picked on the host (constant
  // data) or moved by VXM copies. Computed int32 indices (an embedding lookup): a one-hot matrix
  // [N, V] (each index spread across the lanes on the MXM, compared with the lane numbers) times
  // the data on the MXM, exact since each sum has one non-zero product; an index out of range
  // gives a row of zeros.
  void gather(const Node& n);

  // t itself when its padding lanes are zero, else a copy with them cleared (an AND with a mask
  // of the columns, on the integer type of the element's width).
  int clean(int t, const Node& n);

  // x [..., 1] as x [..., cols]: the product of x's one-lane rows with a row of ones on the MXM
  // (exact for fp16 and int8; fp32 is split into two fp16 parts, hi + lo, summed once in fp32).
  int lane_broadcast(int t, std::int64_t cols, const Node& n);

  // A constant's transpose (the last two dimensions), computed on the host.
  int transposed_constant(int t, const Node& n);

  // fp32 x = hi + lo in fp16 (hi = fp16(x), lo = fp16(x - hi)): on the host for constants, else
  // as VXM steps (cast, cast back, subtract, cast).
  std::pair<int, int> split_fp16(int t, const Node& n, bool weights);
  // x times 1 / scale, in fp16 unless that overflows it (then fp32): what a cast makes int8.
  int scaled_for_int8(int x, double scale, const Node& n);
  std::pair<int, int> split_fp16_new(int t, const Node& n, bool weights);

  void cast(DType from, DType to, int a, int d, const std::string& origin);

  // The (activations, weights) pairs of one product's passes: the operands themselves (fp16),
  // or fp32 as three fp16 products hi.hi + hi.lo + lo.hi (one, hi.hi, at precision fp16).
  std::vector<std::pair<int, int>> product_parts(int x, int w, DType dt, const Node& n);
  // An MXM step (passes to be added) writing rows d_row .. d_row + m - 1, column tile tn, of d.
  // Asks for tensor t's rows in chunks of `rows` on slices of their own (KTensor::chunk_rows):
  // the tensor that owns the storage, unless something else already placed it otherwise.
  void chunk_by(int t, std::int64_t rows);

  // Output rows per product step: at most the accumulators hold; when a product has fewer steps
  // than there are planes (`others` steps per block of rows: column tiles, batches), smaller
  // blocks, so that every plane streams. Each block loads the weights again, and the planes'
  // loads share the weights' slices, so a block streams at least as many rows as one load takes
  // cycles (a plane's rows, 16 a cycle): fewer gain less than the extra load costs.
  std::int64_t row_block(std::int64_t rows, std::int64_t others) const;

  KStep product_step(int d, std::int64_t m, std::int64_t d_row, std::int64_t tn,
                     std::int64_t w_block, const Node& n, DType mm = DType::kFp16) const;

  // --- int8 products: symmetric scales, weights per output column, activations per tensor.

  // Whether the product of node n with activation tensor x runs in int8 (x is recorded for
  // calibration either way).
  bool quantized(const Node& n, int x) {
    k_.calibration.push_back({n.name, x});
    return opt_.precision == Precision::kInt8;
  }
  // max |x| / 127 from calibration (1 for an all-zero activation).
  double activation_scale(const Node& n) const;
  // x as int8: round(x / scale), saturated (VXM: a product in fp32, then a cast).
  // (fp16 activations are scaled in fp16: |x / s| <= 127 keeps 4 fraction bits, and the cast
  // rounds once more; one VXM pass fewer than widening first.)
  int quantize_activations(int x, double scale, const Node& n);
  // Constant weights [batches x K, N] as int8, each column of each batch scaled by its largest
  // magnitude / 127 (scales out, batch-major).
  int quantize_weights(const Node& n, int w, std::int64_t batches, std::int64_t kk, std::int64_t nn,
                       std::vector<double>& scales);

  // Y = alpha A' B' (+ beta C): MXM passes per block of rows, then VXM steps for the rest.
  // (may_quantize false: never int8, for products that must stay exact, such as a one-hot
  // lookup.)
  void matmul(const Node& n, int a, int b, bool ta, bool tb, float alpha, int c, float beta,
              bool may_quantize = true);
  // A product's sizes: numpy matmul shapes (1-D operands gain a dimension the result drops),
  // batches of A and of B (one of them 1, or equal), and the result's shape.
  struct MatMulShape {
    std::int64_t m = 0, k = 0, n = 0, batch_a = 1, batch_b = 1;
    std::vector<std::int64_t> out;
  };
  MatMulShape matmul_shape(const Node& n, const KTensor& ka, const KTensor& kb) const;
  // The MXM steps of a product into y: per batch, column tile and block of rows, a pass per K
  // tile and operand part. Blocks of rows go on slices of their own (KTensor::chunk_rows).
  void product_steps(const Node& n, int y, const std::vector<std::pair<int, int>>& passes,
                     const MatMulShape& sh, bool int8);
  // int32 sums y (of `shape`) back to fp32: cast, times x_scale w_scale (a constant of
  // scale_shape holding the w_scale values in order).
  int dequantize(const Node& n, int y, double x_scale, const std::vector<double>& w_scale,
                 const std::vector<std::int64_t>& scale_shape,
                 const std::vector<std::int64_t>& shape);
  // Gemm's beta C added to y (fp32): beta folded into a constant C on the host (widened from
  // fp16), else a VXM product; the sum is n's output when the node is fp32.
  int add_c(const Node& n, int y, int c, float beta, DType dt,
            const std::vector<std::int64_t>& out_shape);

  const Graph& g_;
  const arch::Arch& arch_;
  const LowerOptions& opt_;
  Kernels k_;
  std::vector<int> tensor_of_;  // graph value -> kernel tensor
  std::vector<int> cl_of_;      // graph value -> its channels-last kernel tensor, or -1
  std::vector<bool> cl_t_;      // graph value -> its channels-last tensor has H and W swapped
  std::vector<int> uses_;       // graph value -> how many node inputs read it
  // Graph values whose AllReduce an int8 product already did on its int32 sums.
  std::set<int> reduced_in_product_;
  std::set<const Node*> folded_;  // normalizations folded into a convolution (and nodes of a
                                  // packed bottleneck)
  std::map<int, CLGrid> tgrid_;   // channels-last tensors on a grid
  std::map<int, int> cleaned_;    // tensor -> its copy with clean padding lanes
  std::set<std::string> used_names_, graph_names_;
  std::map<std::pair<int, bool>, std::pair<int, int>> splits_;  // (tensor, weights) -> (hi, lo)
};

}  // namespace lpu::compiler::lowering
