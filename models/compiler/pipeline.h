// Pipeline parallelism (docs/multichip.md): consecutive runs of a graph's nodes (the layers of a
// stack) on consecutive chips, or on consecutive groups of chips that split each run by tensor
// parallelism. A stage sends the values the next one needs over C2C links once it has them; the
// next stage's program starts when they arrive, its receives at the cycles the frames land.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "compiler/graph.h"
#include "compiler/kernels.h"
#include "compiler/partition.h"
#include "compiler/scheduler.h"
#include "isa/program.h"

namespace lpu::compiler {

struct PipelineStage {
  /// The stage's nodes; its inputs are the graph inputs it reads and then the values it receives,
  /// its outputs the graph outputs it makes and then the values it sends.
  Graph graph;
  std::vector<int> receives, sends;  ///< value ids (the same in every stage's graph)
  std::size_t first_node = 0, nodes = 0;
  std::uint64_t weight_bytes = 0;
};

/// Cuts g into `stages` runs of consecutive nodes at points where fewest values cross (a single
/// one between the layers of a stack), with about equal weight bytes in each. Throws InputError
/// when the graph has too few such points.
std::vector<PipelineStage> partition_pipeline(const Graph& g, const arch::Arch& arch, int stages);

struct PipelineProgram {
  isa::Program program;  ///< every chip of every stage; tensors named NAME@CHIP
  std::vector<PipelineStage> stages;
  int group = 1;                       ///< chips per stage: stage s runs on chips s*group ..
  std::vector<SplitKernels> kernels;   ///< per stage (a trivial partition for a group of 1)
  std::vector<Schedule> schedules;     ///< per stage, in its own cycles
  std::vector<std::uint64_t> offset;   ///< the system cycle each stage's program starts in
  std::vector<int> port_out, port_in;  ///< per stage boundary s -> s + 1: the link's two ports
};

/// Compiles g as `stages` stages of `group` chips each on `system` (chip c of stage s sends to chip
/// c of stage s + 1, over a link whose ports must be the same for every c). int8 calibration runs
/// on the whole graph, so every stage quantizes as one chip would. Throws InputError naming the
/// system when it has too few chips or lacks a link a boundary needs.
PipelineProgram compile_pipeline(const Graph& g, const arch::Arch& system, int stages, int group,
                                 Precision precision, std::uint32_t calibration_seed = 7,
                                 const ScheduleOptions& options = {});

/// `--parallel auto`: how to split g over the system. Tensor parallelism needs a fully connected
/// group (the whole system when fully connected, a node of a dragonfly); a system of several
/// groups runs a pipeline of tensor-parallel stages when the graph has enough places to cut; a
/// graph that tensor parallelism cannot split runs a pipeline of single chips. `why` says which
/// and why.
struct ParallelChoice {
  bool pipeline = false;
  int chips = 0;   ///< tensor: chips in the group
  int stages = 0;  ///< pipeline
  int group = 1;   ///< pipeline: chips per stage
  std::string why;
};
ParallelChoice choose_parallel(const Graph& g, const arch::Arch& system);

/// A stack of `layers` copies of one layer graph, for timing: `in` (a graph input) and `out` (a
/// graph output of the same shape) join consecutive layers. The layer is lowered and scheduled
/// three times, as the first stage (its input from the host), a middle one and the last (its
/// output to the host); every middle stage runs the one middle program (each receives at the same
/// cycles of its own program). The program carries no MEM images: the copies' weights are not
/// modelled, so it is for timing mode only.
struct LayerStack {
  isa::Program program;
  int layers = 0, group = 1;
  std::vector<Schedule> schedules;    ///< first, middle, last
  std::vector<std::uint64_t> step;    ///< first and middle: cycles until the next stage starts
  std::vector<std::uint64_t> offset;  ///< per layer: the cycle its stage starts in
  int port_out = -1, port_in = -1;
};
LayerStack compile_layer_stack(Graph layer, const std::string& in, const std::string& out,
                               const arch::Arch& system, int layers, int group,
                               Precision precision);

}  // namespace lpu::compiler
