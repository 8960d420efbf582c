// Tensor-parallel partitioning (docs/multichip.md): one graph becomes n graphs of the same nodes,
// one per chip, each holding its shard of the weights, with AllReduce nodes (kernels.h) where a
// sum over chips is needed. Lowered with LowerOptions::chips = n and scheduled together
// (schedule_spmd), they give one program per chip.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "compiler/graph.h"
#include "compiler/kernels.h"

namespace lpu::compiler {

/// How a value is spread over the chips.
struct Shard {
  enum class Kind { kReplicated, kSplit, kPartial } kind = Kind::kReplicated;
  int axis = 0;          ///< kSplit: the axis cut
  bool strided = false;  ///< kSplit: element i of the axis on chip i mod n (else in blocks)

  bool operator==(const Shard& o) const {
    return kind == o.kind && (kind != Kind::kSplit || (axis == o.axis && strided == o.strided));
  }
  std::string to_string() const;
};

struct Partition {
  int chips = 1;
  std::vector<Graph> graphs;           ///< one per chip: the same nodes, its own constants
  std::vector<Shard> inputs, outputs;  ///< of the graph's inputs and outputs, in order
  /// Per chip, LowerOptions::weight_max: the scales of weights split by rows.
  std::vector<std::map<std::string, std::vector<double>>> weight_max;
  std::vector<std::string> decisions;  ///< a line per weight split and per exchange
};

/// g with the shapes and types of its intermediate values filled in (the front end leaves them to
/// the lowering; they come from lowering g for `arch` on one chip).
Graph with_shapes(const Graph& g, const arch::Arch& arch);
void fill_shapes(Graph& g, const arch::Arch& arch);  ///< in place

/// Splits `g` over `chips` chips. Throws InputError naming the node when a value split over the
/// chips meets an operator the partitioner cannot take it through (it never exchanges a split
/// value implicitly except by an all-reduce of partial sums).
/// (The shapes of intermediate values come from lowering g for `arch` on one chip.)
Partition partition_tensor(const Graph& g, const arch::Arch& arch, int chips);

/// A graph split over chips and lowered: chip c's kernels in kernels[c] (for schedule_spmd and
/// run_reference_spmd). For int8 the activations are calibrated on the whole graph, so every
/// chip quantizes exactly as one chip running the whole graph would.
struct SplitKernels {
  Partition partition;  ///< (its graphs without their constants' data once lowered)
  std::vector<Kernels> kernels;
};
/// (`activation_max`, when given, replaces the calibration: a part of a larger graph quantizes as
/// the whole graph's calibration says.)
SplitKernels lower_split(const Graph& g, const arch::Arch& arch, Precision precision, int chips,
                         std::uint32_t calibration_seed = 7,
                         const std::map<std::string, double>* activation_max = nullptr);

/// Chip `chip`'s part of a value of `shape` (row-major elements of `bytes` bytes).
std::vector<std::uint8_t> shard_data(const std::vector<std::uint8_t>& full,
                                     const std::vector<std::int64_t>& shape, int bytes,
                                     const Shard& s, int chip, int chips);

/// The whole value from every chip's part (replicated: chip 0's; partial: not allowed).
std::vector<std::uint8_t> assemble(const std::vector<std::vector<std::uint8_t>>& parts,
                                   const std::vector<std::int64_t>& shape, int bytes,
                                   const Shard& s);

}  // namespace lpu::compiler
