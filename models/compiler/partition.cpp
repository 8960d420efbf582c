#include "compiler/partition.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>

#include "common/diagnostics.h"
#include "compiler/kernels.h"
#include "compiler/reference.h"
#include "func/numerics.h"

namespace lpu::compiler {

std::string Shard::to_string() const {
  switch (kind) {
    case Kind::kReplicated:
      return "replicated";
    case Kind::kPartial:
      return "partial sums";
    case Kind::kSplit:
      break;
  }
  return "split along axis " + std::to_string(axis) + (strided ? " round-robin" : " in blocks");
}

namespace {

// The index along the cut axis of element l of chip c's part.
std::int64_t along(const Shard& s, std::int64_t l, int chip, int chips, std::int64_t part) {
  return s.strided ? l * chips + chip : chip * part + l;
}

void check_split(const std::vector<std::int64_t>& shape, const Shard& s, int chips) {
  if (s.axis < 0 || static_cast<std::size_t>(s.axis) >= shape.size() ||
      shape[static_cast<std::size_t>(s.axis)] % chips != 0)
    throw std::invalid_argument("shard: axis " + std::to_string(s.axis) + " of a value of rank " +
                                std::to_string(shape.size()) + " does not split " +
                                std::to_string(chips) + " ways");
}

}  // namespace

std::vector<std::uint8_t> shard_data(const std::vector<std::uint8_t>& full,
                                     const std::vector<std::int64_t>& shape, int bytes,
                                     const Shard& s, int chip, int chips) {
  if (s.kind != Shard::Kind::kSplit) return full;
  check_split(shape, s, chips);
  std::int64_t outer = 1, inner = bytes;
  for (int i = 0; i < s.axis; ++i)
    outer *= shape[static_cast<std::size_t>(i)];
  for (std::size_t i = static_cast<std::size_t>(s.axis) + 1; i < shape.size(); ++i)
    inner *= shape[i];
  const std::int64_t len = shape[static_cast<std::size_t>(s.axis)], part = len / chips;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(outer * part * inner));
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t l = 0; l < part; ++l)
      std::memcpy(
          &out[static_cast<std::size_t>((o * part + l) * inner)],
          &full[static_cast<std::size_t>((o * len + along(s, l, chip, chips, part)) * inner)],
          static_cast<std::size_t>(inner));
  return out;
}

std::vector<std::uint8_t> assemble(const std::vector<std::vector<std::uint8_t>>& parts,
                                   const std::vector<std::int64_t>& shape, int bytes,
                                   const Shard& s) {
  if (parts.empty()) throw std::invalid_argument("assemble: no parts");
  if (s.kind == Shard::Kind::kPartial) throw std::invalid_argument("assemble: partial sums");
  if (s.kind == Shard::Kind::kReplicated) return parts[0];
  const int chips = static_cast<int>(parts.size());
  check_split(shape, s, chips);
  std::int64_t outer = 1, inner = bytes, total = bytes;
  for (int i = 0; i < s.axis; ++i)
    outer *= shape[static_cast<std::size_t>(i)];
  for (std::size_t i = static_cast<std::size_t>(s.axis) + 1; i < shape.size(); ++i)
    inner *= shape[i];
  for (auto d : shape)
    total *= d;
  const std::int64_t len = shape[static_cast<std::size_t>(s.axis)], part = len / chips;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(total));
  for (int c = 0; c < chips; ++c)
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t l = 0; l < part; ++l)
        std::memcpy(
            &out[static_cast<std::size_t>((o * len + along(s, l, c, chips, part)) * inner)],
            &parts[static_cast<std::size_t>(c)][static_cast<std::size_t>((o * part + l) * inner)],
            static_cast<std::size_t>(inner));
  return out;
}

namespace {

const std::set<std::string>& pointwise_ops() {
  static const std::set<std::string> ops = {
      "Add",  "Sub",     "Mul",       "Div",  "Pow",        "Max",         "Min",      "Sigmoid",
      "Relu", "Tanh",    "Exp",       "Log",  "Sqrt",       "Neg",         "Abs",      "Erf",
      "Cast", "Clip",    "Sin",       "Cos",  "Reciprocal", "Where",       "Not",      "Equal",
      "Less", "Greater", "LeakyRelu", "Gelu", "Sign",       "HardSigmoid", "Softplus", "Identity"};
  return ops;
}

class Partitioner {
 public:
  Partitioner(const Graph& g, int chips) : g_(g), n_(chips) {}

  Partition run() {
    if (n_ < 2) throw InputError(g_.source, "a tensor-parallel split needs 2 chips or more");
    // The chips' graph without constant data (each chip's is filled in at the end: its part of
    // a cut constant, or a copy of a replicated one).
    out_.source = g_.source;
    out_.inputs = g_.inputs;
    out_.outputs = g_.outputs;
    for (const Value& v : g_.values) {
      Value x;
      x.name = v.name;
      x.dtype = v.dtype;
      x.shape = v.shape;
      x.ints = v.ints;
      x.constant = v.constant;
      out_.values.push_back(std::move(x));
    }
    shard_.assign(g_.values.size(), std::nullopt);
    shape_.clear();
    for (const auto& v : g_.values)
      shape_.push_back(v.shape);
    for (std::size_t v = 0; v < g_.values.size(); ++v)
      if (g_.values[v].constant) shard_[v] = Shard{};
    data_.assign(g_.values.size(), {});
    weight_max_.assign(static_cast<std::size_t>(n_), {});
    for (const Node& n : g_.nodes)
      node(n);
    Partition p;
    p.chips = n_;
    for (int v : g_.inputs)
      p.inputs.push_back(fix(v));
    for (int& v : out_.outputs) {
      Shard s = fix(v);
      if (s.kind == Shard::Kind::kPartial) {
        // The output keeps its name on the sum over chips.
        const std::string name = out_.values[static_cast<std::size_t>(v)].name;
        out_.values[static_cast<std::size_t>(v)].name = name + "/partial";
        v = reduce(v, name);
        s = Shard{};
      }
      p.outputs.push_back(s);
    }
    for (std::size_t v = 0; v < out_.values.size(); ++v)
      if (v < shape_.size()) out_.values[v].shape = shape_[v];
    // The whole data of cut constants is not copied into every chip's graph (a 70B-wide layer
    // has gigabytes of it); each gets its own part, moved in.
    for (int c = 0; c < n_; ++c) {
      Graph gc = out_;
      for (std::size_t v = 0; v < data_.size(); ++v)
        if (!data_[v].empty())
          gc.values[v].data = std::move(data_[v][static_cast<std::size_t>(c)]);
        else if (v < g_.values.size())
          gc.values[v].data = g_.values[v].data;
      p.graphs.push_back(std::move(gc));
    }
    p.weight_max = weight_max_;
    p.decisions = decisions_;
    return p;
  }

 private:
  const Value& val(int v) const { return g_.values[static_cast<std::size_t>(v)]; }
  bool is_const(int v) const { return v >= 0 && val(v).constant; }
  std::optional<Shard>& sh(int v) { return shard_[static_cast<std::size_t>(v)]; }
  // A value nobody has decided yet (a graph input before its first user) becomes replicated.
  Shard fix(int v) {
    if (!sh(v)) sh(v) = Shard{};
    return *sh(v);
  }
  std::string where(const Node& n) const { return g_.where(n); }

  // A value's sharding seen from an operand position (ranks aligned on the right).
  static int aligned(int axis, std::size_t from_rank, std::size_t to_rank) {
    return axis + static_cast<int>(to_rank) - static_cast<int>(from_rank);
  }

  // The sum over chips of partial value v, as a new AllReduce node (once per value).
  int reduce(int v, const std::string& name = "") {
    if (auto it = reduced_.find(v); it != reduced_.end()) return it->second;
    Value r = out_.values[static_cast<std::size_t>(v)];
    r.name = name.empty() ? r.name + "/allreduce" : name;
    r.constant = false;
    const int id = static_cast<int>(out_.values.size());
    out_.values.push_back(r);
    shape_.push_back(shape_[static_cast<std::size_t>(v)]);
    shard_.push_back(Shard{});
    data_.push_back({});
    Node a;
    a.name = r.name;
    a.op = kAllReduce;
    a.inputs = {v};
    a.outputs = {id};
    out_.nodes.push_back(a);
    reduced_[v] = id;
    const auto& sv = shape_[static_cast<std::size_t>(v)];
    std::string dims;
    for (std::size_t i = 0; i < sv.size(); ++i)
      dims += (i ? "," : "") + std::to_string(sv[i]);
    decisions_.push_back("all-reduce '" + out_.values[static_cast<std::size_t>(v)].name + "' [" +
                         dims + "] over " + std::to_string(n_) + " chips");
    return id;
  }

  // Cuts constant (or decides input) v along `axis`.
  void split_value(int v, const Shard& s, const Node& n, const std::string& why) {
    const Value& x = val(v);
    auto& shp = shape_[static_cast<std::size_t>(v)];
    if (s.axis < 0 || static_cast<std::size_t>(s.axis) >= shp.size() ||
        shp[static_cast<std::size_t>(s.axis)] % n_ != 0)
      throw InputError(where(n), "'" + x.name + "' cannot be split " + std::to_string(n_) +
                                     " ways along axis " + std::to_string(s.axis) + " (shape " +
                                     dims(shp) + ")");
    if (x.constant) {
      if (x.dtype == isa::DType::kNone)
        throw InputError(where(n), "'" + x.name + "' (an int64 constant) cannot be split");
      auto& per = data_[static_cast<std::size_t>(v)];
      for (int c = 0; c < n_; ++c)
        per.push_back(shard_data(x.data, x.shape, isa::dtype_bytes(x.dtype), s, c, n_));
      if (!why.empty())
        decisions_.push_back("'" + x.name + "' " + dims(x.shape) + ": " + s.to_string() + " (" +
                             why + ")");
    }
    shp[static_cast<std::size_t>(s.axis)] /= n_;
    sh(v) = s;
  }

  static std::string dims(const std::vector<std::int64_t>& s) {
    std::string r = "[";
    for (std::size_t i = 0; i < s.size(); ++i)
      r += (i ? "," : "") + std::to_string(s[i]);
    return r + "]";
  }

  void set_out(const Node& n, const Shard& s) {
    for (int o : n.outputs) {
      if (o < 0) continue;
      sh(o) = s;
      if (s.kind == Shard::Kind::kSplit) {
        auto& shp = shape_[static_cast<std::size_t>(o)];
        if (static_cast<std::size_t>(s.axis) >= shp.size() ||
            shp[static_cast<std::size_t>(s.axis)] % n_ != 0)
          throw InputError(where(n), "its result " + dims(shp) + " cannot be split " +
                                         std::to_string(n_) + " ways along axis " +
                                         std::to_string(s.axis));
        shp[static_cast<std::size_t>(s.axis)] /= n_;
      }
    }
  }

  [[noreturn]] void cannot(const Node& n, const std::string& why) {
    throw InputError(where(n), "cannot be split over " + std::to_string(n_) + " chips: " + why);
  }

  void node(const Node& in) {
    Node n = in;
    // Partial sums are summed over the chips before any operator reads them.
    for (int& v : n.inputs)
      if (v >= 0 && sh(v) && sh(v)->kind == Shard::Kind::kPartial) v = reduce(v);
    const std::string& op = n.op;
    if (op == "MatMul")
      matmul(n);
    else if (pointwise_ops().count(op))
      pointwise(n);
    else if (op == "ReduceSum" || op == "ReduceMean" || op == "ReduceMax" || op == "ReduceMin")
      reduction(n);
    else if (op == "Softmax" || op == "LogSoftmax")
      along_axis(n, single_axis(n, -1));
    else if (op == "Concat")
      along_axis(n, single_axis(n, 0));
    else if (op == "Slice")
      slice(n);
    else if (op == "Unsqueeze")
      unsqueeze(n);
    else if (op == "Transpose")
      transpose(n);
    else
      replicated_only(n);
    out_.nodes.push_back(n);
  }

  // Every input replicated (inputs not yet decided become so); the result too.
  void replicated_only(const Node& n) {
    for (int v : n.inputs)
      if (v >= 0 && fix(v).kind != Shard::Kind::kReplicated)
        cannot(n, "input '" + val(v).name + "' is " + sh(v)->to_string() + ", and " + n.op +
                      " is taken only on whole values");
    set_out(n, Shard{});
  }

  int rank_of(int v) const { return static_cast<int>(shape_[static_cast<std::size_t>(v)].size()); }
  int out_rank(const Node& n) const { return static_cast<int>(val(n.outputs[0]).shape.size()); }

  // The axis attribute (or default) of n, normalized to the input's rank.
  int single_axis(const Node& n, std::int64_t dflt) const {
    const Attr* a = n.attr("axis");
    std::int64_t ax = a ? a->i : dflt;
    const int r = static_cast<int>(val(n.inputs[0]).shape.size());
    return static_cast<int>(ax < 0 ? ax + r : ax);
  }

  // Point-wise operators: one common split (in the result's axes), which the other operands
  // either broadcast along or are cut to match.
  void pointwise(const Node& n) {
    const int ro = out_rank(n);
    std::optional<Shard> split;
    for (int v : n.inputs) {
      if (v < 0 || is_const(v) || !sh(v) || sh(v)->kind != Shard::Kind::kSplit) continue;
      Shard s = *sh(v);
      s.axis = aligned(s.axis, val(v).shape.size(), static_cast<std::size_t>(ro));
      if (split && !(*split == s)) cannot(n, "its inputs are split along different axes");
      split = s;
    }
    if (!split) {
      for (int v : n.inputs)
        if (v >= 0) fix(v);
      set_out(n, Shard{});
      return;
    }
    for (int v : n.inputs) {
      if (v < 0) continue;
      const auto& full = val(v).shape;
      const int ax = split->axis - (ro - static_cast<int>(full.size()));
      const bool spans = ax >= 0 && full[static_cast<std::size_t>(ax)] != 1;
      if (sh(v) && sh(v)->kind == Shard::Kind::kSplit && !is_const(v)) continue;
      if (!spans) {
        fix(v);
        continue;
      }
      if (is_const(v) || !sh(v)) {
        Shard s = *split;
        s.axis = ax;
        split_value(v, s, n, is_const(v) ? "to match '" + val(n.outputs[0]).name + "'" : "");
        continue;
      }
      cannot(n, "input '" + val(v).name + "' is replicated but meets a split value along axis " +
                    std::to_string(split->axis));
    }
    set_out(n, *split);
  }

  void matmul(const Node& n) {
    if (n.inputs.size() != 2 || n.inputs[0] < 0 || n.inputs[1] < 0) {
      replicated_only(n);
      return;
    }
    const int a = n.inputs[0], b = n.inputs[1];
    const int ra = static_cast<int>(val(a).shape.size()),
              rb = static_cast<int>(val(b).shape.size());
    const int ro = out_rank(n);
    const Shard sa = fix(a);
    if (is_const(b)) {
      const auto& bs = val(b).shape;
      if (sa.kind == Shard::Kind::kReplicated) {
        bool a_batched = false;
        for (int i = 0; i + 2 < ra; ++i)
          a_batched = a_batched || val(a).shape[static_cast<std::size_t>(i)] != 1;
        if (rb == 2 && bs[1] % n_ == 0) {  // columns
          split_value(b, Shard{Shard::Kind::kSplit, 1, false}, n, "output columns");
          set_out(n, Shard{Shard::Kind::kSplit, ro - 1, false});
          return;
        }
        if (rb >= 3 && !a_batched) {  // the leading batch axis (heads)
          if (bs[0] % n_ != 0)
            cannot(n, "weights '" + val(b).name + "' " + dims(bs) + " have " +
                          std::to_string(bs[0]) + " along their leading axis (heads), which " +
                          "does not divide over " + std::to_string(n_) + " chips");
          split_value(b, Shard{Shard::Kind::kSplit, 0, true}, n, "leading axis");
          set_out(n, Shard{Shard::Kind::kSplit, 0, true});
          return;
        }
        set_out(n, Shard{});
        return;
      }
      if (sa.kind == Shard::Kind::kSplit && sa.axis == ra - 1 && rb == 2 && !sa.strided) {
        // Rows of the weights, matching the activation's columns: partial sums. int8 keeps the
        // whole weights' column scales.
        record_weight_max(n, b);
        split_value(b, Shard{Shard::Kind::kSplit, 0, false}, n, "rows: partial sums");
        set_out(n, Shard{Shard::Kind::kPartial});
        return;
      }
      if (sa.kind == Shard::Kind::kSplit && sa.axis < ra - 1 && rb == 2) {  // rows or batches
        set_out(n,
                Shard{Shard::Kind::kSplit,
                      aligned(sa.axis, static_cast<std::size_t>(ra), static_cast<std::size_t>(ro)),
                      sa.strided});
        return;
      }
      if (sa.kind == Shard::Kind::kSplit && sa.axis < ra - 2 && rb == ra) {  // batch with batch
        split_value(b, sa, n, "batches of '" + val(a).name + "'");
        set_out(n, sa);
        return;
      }
      cannot(n, "activation '" + val(a).name + "' is " + sa.to_string() + " against weights " +
                    dims(bs));
    }
    // Two computed operands: a common batch split, or a split of A's rows.
    if (sa.kind == Shard::Kind::kSplit && sa.axis < ra - 2 && rb == ra) {
      if (!sh(b)) split_value(b, sa, n, "");
      if (*sh(b) == sa) {
        set_out(n, sa);
        return;
      }
    }
    const Shard sb = fix(b);
    if (sa.kind == Shard::Kind::kReplicated && sb.kind == Shard::Kind::kReplicated) {
      set_out(n, Shard{});
      return;
    }
    if (sa.kind == Shard::Kind::kSplit && sa.axis == ra - 2 &&
        sb.kind == Shard::Kind::kReplicated && rb == 2) {
      set_out(n, Shard{Shard::Kind::kSplit, ro - 2, sa.strided});
      return;
    }
    cannot(n, "operands '" + val(a).name + "' (" + sa.to_string() + ") and '" + val(b).name +
                  "' (" + sb.to_string() + ")");
  }

  // The largest magnitude of each column of 2-D constant weights.
  void record_weight_max(const Node& n, int b) {
    const Value& w = val(b);
    const std::int64_t rows = w.shape[0], cols = w.shape[1];
    std::vector<double> m(static_cast<std::size_t>(cols), 0.0);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) {
        const auto e = static_cast<std::size_t>(r * cols + c);
        double x = 0;
        if (w.dtype == isa::DType::kFp32) {
          float f;
          std::memcpy(&f, &w.data[e * 4], 4);
          x = f;
        } else if (w.dtype == isa::DType::kFp16) {
          x = func::fp16_to_fp32(
              static_cast<std::uint16_t>(w.data[e * 2] | (w.data[e * 2 + 1] << 8)));
        } else {
          return;  // not a float product: never quantized
        }
        m[static_cast<std::size_t>(c)] = std::max(m[static_cast<std::size_t>(c)], std::fabs(x));
      }
    for (auto& per : weight_max_)
      per[n.name] = m;
  }

  std::vector<std::int64_t> const_ints(const Node& n, std::size_t i) const {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return {};
    const Value& v = val(n.inputs[i]);
    if (!v.constant) cannot_const(n, v);
    return v.ints;
  }
  [[noreturn]] void cannot_const(const Node& n, const Value& v) const {
    throw InputError(where(n), "'" + v.name + "' must be a constant");
  }

  // The first input and its split; nullopt (the node taken as replicated) when it is not split.
  std::optional<std::pair<int, Shard>> split_input(const Node& n) {
    const int x = n.inputs.empty() ? -1 : n.inputs[0];
    if (x < 0) cannot(n, "no input");
    const Shard s = fix(x);
    if (s.kind != Shard::Kind::kSplit) {
      replicated_only(n);
      return std::nullopt;
    }
    return std::make_pair(x, s);
  }

  void reduction(const Node& n) {
    const auto in = split_input(n);
    if (!in) return;
    const auto [x, s] = *in;
    const int r = static_cast<int>(val(x).shape.size());
    std::vector<std::int64_t> axes;
    if (const Attr* at = n.attr("axes"))
      axes = at->ints;
    else
      axes = const_ints(n, 1);
    if (axes.empty())
      for (int i = 0; i < r; ++i)
        axes.push_back(i);
    for (auto& a : axes)
      a = a < 0 ? a + r : a;
    const Attr* kd = n.attr("keepdims");
    const bool keep = !kd || kd->i != 0;
    if (std::find(axes.begin(), axes.end(), s.axis) != axes.end()) {
      if (n.op != "ReduceSum") cannot(n, n.op + " over the split axis");
      set_out(n, Shard{Shard::Kind::kPartial});
      return;
    }
    Shard o = s;
    if (!keep)
      for (auto a : axes)
        if (a < s.axis) --o.axis;
    set_out(n, o);
  }

  void along_axis(const Node& n, int axis) {
    std::optional<Shard> split;
    for (int v : n.inputs) {
      if (v < 0) continue;
      const Shard s = is_const(v) ? Shard{} : (sh(v) ? *sh(v) : Shard{});
      if (s.kind == Shard::Kind::kSplit) {
        if (split && !(*split == s)) cannot(n, "its inputs are split differently");
        split = s;
      }
    }
    if (!split) {
      replicated_only(n);
      return;
    }
    if (split->axis == axis) cannot(n, n.op + " along the split axis");
    for (int v : n.inputs) {
      if (v < 0 || (sh(v) && *sh(v) == *split)) continue;
      if (is_const(v) || !sh(v)) {
        split_value(v, *split, n, is_const(v) ? "to match '" + val(n.outputs[0]).name + "'" : "");
        continue;
      }
      cannot(n, "input '" + val(v).name + "' is " + sh(v)->to_string());
    }
    set_out(n, *split);
  }

  void slice(const Node& n) {
    const auto in = split_input(n);
    if (!in) return;
    const auto [x, s] = *in;
    const int r = static_cast<int>(val(x).shape.size());
    std::vector<std::int64_t> axes = const_ints(n, 3);
    if (axes.empty())
      for (std::size_t i = 0; i < const_ints(n, 1).size(); ++i)
        axes.push_back(static_cast<std::int64_t>(i));
    for (auto a : axes)
      if ((a < 0 ? a + r : a) == s.axis) cannot(n, "a slice along the split axis");
    set_out(n, s);
  }

  void unsqueeze(const Node& n) {
    const auto in = split_input(n);
    if (!in) return;
    const auto [x, s] = *in;
    const int ro = out_rank(n);
    std::vector<std::int64_t> axes;
    if (const Attr* at = n.attr("axes"))
      axes = at->ints;
    else
      axes = const_ints(n, 1);
    std::vector<bool> inserted(static_cast<std::size_t>(ro), false);
    for (auto a : axes)
      inserted[static_cast<std::size_t>(a < 0 ? a + ro : a)] = true;
    int seen = -1, o = 0;
    for (; o < ro; ++o)
      if (!inserted[static_cast<std::size_t>(o)] && ++seen == s.axis) break;
    Shard out = s;
    out.axis = o;
    set_out(n, out);
  }

  // The split axis goes where the permutation puts it.
  void transpose(const Node& n) {
    const auto in = split_input(n);
    if (!in) return;
    const auto [x, s] = *in;
    const int r = static_cast<int>(val(x).shape.size());
    std::vector<std::int64_t> perm;
    if (const Attr* p = n.attr("perm")) perm = p->ints;
    if (perm.empty())
      for (int i = r - 1; i >= 0; --i)
        perm.push_back(i);
    Shard out = s;
    for (std::size_t i = 0; i < perm.size(); ++i)
      if (perm[i] == s.axis) out.axis = static_cast<int>(i);
    set_out(n, out);
  }

  const Graph& g_;
  const int n_;
  Graph out_;
  std::vector<std::optional<Shard>> shard_;
  std::vector<std::vector<std::int64_t>> shape_;
  std::vector<std::vector<std::vector<std::uint8_t>>> data_;  // per value: per chip (cut ones)
  std::vector<std::map<std::string, std::vector<double>>> weight_max_;
  std::map<int, int> reduced_;
  std::vector<std::string> decisions_;
};

}  // namespace

Graph with_shapes(const Graph& g, const arch::Arch& arch) {
  Graph full = g;
  fill_shapes(full, arch);
  return full;
}

void fill_shapes(Graph& full, const arch::Arch& arch) {
  const Kernels k = lower(full, arch);
  std::map<std::string, const KTensor*> by_name;
  for (const auto& t : k.tensors)
    by_name[t.name] = &t;
  for (auto& v : full.values)
    if (!v.constant)
      if (auto it = by_name.find(v.name); it != by_name.end()) {
        if (v.shape.empty()) v.shape = it->second->shape;
        if (v.dtype == isa::DType::kNone) v.dtype = it->second->dtype;
      }
}

Partition partition_tensor(const Graph& g, const arch::Arch& arch, int chips) {
  bool known = true;  // shapes and types of every computed value (then no copy is needed)
  for (const Value& v : g.values)
    known = known && (v.constant || (!v.shape.empty() && v.dtype != isa::DType::kNone));
  if (known) return Partitioner(g, chips).run();
  return Partitioner(with_shapes(g, arch), chips).run();
}

SplitKernels lower_split(const Graph& g, const arch::Arch& arch, Precision precision, int chips,
                         std::uint32_t calibration_seed,
                         const std::map<std::string, double>* activation_max) {
  SplitKernels out;
  out.partition = partition_tensor(g, arch, chips);
  LowerOptions o;
  o.precision = precision;
  o.chips = chips;
  if (precision == Precision::kInt8)
    o.activation_max = activation_max ? *activation_max : calibrate(g, arch, calibration_seed);
  for (int c = 0; c < chips; ++c) {
    o.weight_max = out.partition.weight_max[static_cast<std::size_t>(c)];
    Graph& gc = out.partition.graphs[static_cast<std::size_t>(c)];
    out.kernels.push_back(lower(gc, arch, o));
    for (Value& v : gc.values)  // the kernels hold what they need
      std::vector<std::uint8_t>().swap(v.data);
  }
  return out;
}

}  // namespace lpu::compiler
