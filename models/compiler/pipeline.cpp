#include "compiler/pipeline.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <tuple>

#include "common/diagnostics.h"
#include "compiler/reference.h"
#include "func/c2c_link.h"

namespace lpu::compiler {

std::vector<PipelineStage> partition_pipeline(const Graph& g0, const arch::Arch& arch, int stages) {
  if (stages < 1) throw InputError(g0.source, "a pipeline needs 1 stage or more");
  const Graph g = with_shapes(g0, arch);
  const auto n = static_cast<int>(g.nodes.size());
  if (stages > n)
    throw InputError(g.source,
                     std::to_string(stages) + " stages for " + std::to_string(n) + " nodes");
  std::vector<int> producer(g.values.size(), -1), last_use(g.values.size(), -1);
  std::vector<std::uint64_t> weight(static_cast<std::size_t>(n), 0);
  std::set<int> counted;
  for (int i = 0; i < n; ++i) {
    const Node& nd = g.nodes[static_cast<std::size_t>(i)];
    for (int v : nd.outputs)
      if (v >= 0) producer[static_cast<std::size_t>(v)] = i;
    for (int v : nd.inputs) {
      if (v < 0) continue;
      last_use[static_cast<std::size_t>(v)] = i;
      const Value& val = g.values[static_cast<std::size_t>(v)];
      if (val.constant && counted.insert(v).second)
        weight[static_cast<std::size_t>(i)] += val.data.size();
    }
  }
  // Values crossing cut p (between nodes p - 1 and p): made before p, read at p or later.
  std::vector<int> crossing(static_cast<std::size_t>(n) + 1, 0);
  for (std::size_t v = 0; v < g.values.size(); ++v)
    if (producer[v] >= 0 && last_use[v] > producer[v])
      for (int p = producer[v] + 1; p <= last_use[v]; ++p)
        ++crossing[static_cast<std::size_t>(p)];
  auto values_at = [&](int p) {
    std::vector<int> out;
    for (std::size_t v = 0; v < g.values.size(); ++v)
      if (producer[v] >= 0 && producer[v] < p && last_use[v] >= p)
        out.push_back(static_cast<int>(v));
    return out;
  };
  std::vector<std::uint64_t> before(static_cast<std::size_t>(n) + 1, 0);
  for (int i = 0; i < n; ++i)
    before[static_cast<std::size_t>(i) + 1] =
        before[static_cast<std::size_t>(i)] + weight[static_cast<std::size_t>(i)];
  // The cut points with fewest crossing values, relaxed until there are enough.
  std::vector<int> cand;
  for (int limit = 1; limit <= 64 && static_cast<int>(cand.size()) < stages - 1; ++limit) {
    cand.clear();
    for (int p = 1; p < n; ++p)
      if (crossing[static_cast<std::size_t>(p)] >= 1 &&
          crossing[static_cast<std::size_t>(p)] <= limit)
        cand.push_back(p);
  }
  if (static_cast<int>(cand.size()) < stages - 1)
    throw InputError(g.source, "the graph has " + std::to_string(cand.size()) +
                                   " places to cut it into pipeline stages; " +
                                   std::to_string(stages) + " stages need " +
                                   std::to_string(stages - 1));
  std::vector<int> cuts = {0};
  std::size_t from = 0;
  for (int k = 1; k < stages; ++k) {
    const double target = static_cast<double>(before.back()) * k / stages;
    std::size_t best = from;
    const std::size_t last = cand.size() - static_cast<std::size_t>(stages - 1 - k) - 1;
    for (std::size_t i = from; i <= last; ++i)
      if (std::abs(static_cast<double>(before[static_cast<std::size_t>(cand[i])]) - target) <
          std::abs(static_cast<double>(before[static_cast<std::size_t>(cand[best])]) - target))
        best = i;
    cuts.push_back(cand[best]);
    from = best + 1;
  }
  cuts.push_back(n);
  std::set<int> outputs(g.outputs.begin(), g.outputs.end());
  std::vector<PipelineStage> out;
  for (int s = 0; s < stages; ++s) {
    const int a = cuts[static_cast<std::size_t>(s)], b = cuts[static_cast<std::size_t>(s) + 1];
    PipelineStage st;
    st.first_node = static_cast<std::size_t>(a);
    st.nodes = static_cast<std::size_t>(b - a);
    st.weight_bytes = before[static_cast<std::size_t>(b)] - before[static_cast<std::size_t>(a)];
    if (s > 0) st.receives = values_at(a);
    if (s + 1 < stages) st.sends = values_at(b);
    for (int v : st.receives)
      if (std::find(st.sends.begin(), st.sends.end(), v) != st.sends.end())
        throw InputError(g.source, "value '" + g.values[static_cast<std::size_t>(v)].name +
                                       "' would pass through pipeline stage " + std::to_string(s) +
                                       " untouched; not supported yet");
    Graph& sg = st.graph;
    sg.source = g.source;
    sg.values = g.values;
    sg.nodes.assign(g.nodes.begin() + a, g.nodes.begin() + b);
    std::set<int> used, made;
    for (const Node& nd : sg.nodes) {
      for (int v : nd.inputs)
        if (v >= 0) used.insert(v);
      for (int v : nd.outputs)
        if (v >= 0) made.insert(v);
    }
    for (int v : g.inputs)
      if (used.count(v)) sg.inputs.push_back(v);
    sg.inputs.insert(sg.inputs.end(), st.receives.begin(), st.receives.end());
    for (int v : g.outputs)
      if (made.count(v)) sg.outputs.push_back(v);
    for (int v : st.sends)
      if (!outputs.count(v)) sg.outputs.push_back(v);
    out.push_back(std::move(st));
  }
  return out;
}

namespace {

// The port of `chip` on its link to `peer`, or -1.
int port_to(const arch::Arch& a, int chip, int peer) {
  for (const auto& l : a.system.links) {
    if (l.a.chip == chip && l.b.chip == peer) return l.a.port;
    if (l.b.chip == chip && l.a.chip == peer) return l.b.port;
  }
  return -1;
}

int tensor_named(const Kernels& k, const std::string& name) {
  for (std::size_t t = 0; t < k.tensors.size(); ++t)
    if (k.tensors[t].name == name && k.tensors[t].view_of < 0) return static_cast<int>(t);
  throw std::logic_error("pipeline: no tensor '" + name + "' in a stage's kernels");
}

// Stage `s`'s receives (first, at `arrivals`, vector by vector) and sends (last) as kernel steps;
// received values stop being inputs, sent ones outputs (unless the whole graph gives them).
void add_transfers(Kernels& k, const Graph& g, const std::vector<int>& receives,
                   const std::vector<int>& sends, int s, int port_in, int port_out,
                   const std::vector<std::uint64_t>& arrivals,
                   const std::set<std::string>& graph_outputs) {
  std::vector<KStep> pre, post;
  std::size_t next = 0;
  for (int v : receives) {
    const std::string& name = g.values[static_cast<std::size_t>(v)].name;
    const int t = tensor_named(k, name);
    k.tensors[static_cast<std::size_t>(t)].role = KTensor::Role::kTemp;
    k.inputs.erase(std::remove(k.inputs.begin(), k.inputs.end(), t), k.inputs.end());
    KStep r;
    r.kind = KStep::Kind::kRecv;
    r.d = t;
    r.port = port_in;
    const auto count =
        static_cast<std::size_t>(k.tensors[static_cast<std::size_t>(t)].vector_rows(k.lanes) *
                                 isa::dtype_bytes(k.tensors[static_cast<std::size_t>(t)].dtype));
    if (next + count > arrivals.size())
      throw std::logic_error("pipeline: fewer vectors sent than received");
    r.arrivals.assign(arrivals.begin() + static_cast<long>(next),
                      arrivals.begin() + static_cast<long>(next + count));
    next += count;
    r.origin = g.source + ": value '" + name + "' from stage " + std::to_string(s - 1);
    pre.push_back(std::move(r));
  }
  for (int v : sends) {
    const std::string& name = g.values[static_cast<std::size_t>(v)].name;
    const int t = tensor_named(k, name);
    if (!graph_outputs.count(name)) {
      k.tensors[static_cast<std::size_t>(t)].role = KTensor::Role::kTemp;
      k.outputs.erase(std::remove(k.outputs.begin(), k.outputs.end(), t), k.outputs.end());
    }
    KStep snd;
    snd.kind = KStep::Kind::kSend;
    snd.a = t;
    snd.port = port_out;
    snd.origin = g.source + ": value '" + name + "' to stage " + std::to_string(s + 1);
    post.push_back(std::move(snd));
  }
  k.steps.insert(k.steps.begin(), pre.begin(), pre.end());
  k.steps.insert(k.steps.end(), post.begin(), post.end());
}

// The receive cycles, in the next stage's own program, of the vectors a stage sends, and the
// system cycle that program starts in: two cycles before the first frame lands.
std::pair<std::vector<std::uint64_t>, std::uint64_t> next_arrivals(const Schedule& prev,
                                                                   std::uint64_t base,
                                                                   const func::LinkTiming& lt) {
  std::uint64_t first = ~0ull;
  for (const auto& step : prev.sends)
    for (auto c : step)
      first = std::min(first, base + lt.arrival(c));
  constexpr std::uint64_t kMargin = 2;
  const std::uint64_t offset = first - kMargin;
  std::vector<std::uint64_t> arrivals;
  for (const auto& step : prev.sends)
    for (auto c : step)
      arrivals.push_back(base + lt.arrival(c) - offset);
  return {arrivals, offset};
}

// Appends stage program `sp` to `p`: its chips from `base`, its cycles from `off`.
void append_stage(isa::Program& p, const isa::Program& sp, std::uint32_t base, std::uint64_t off,
                  bool spmd, bool images) {
  for (isa::ChipProgram cp : sp.chips) {
    cp.chip += base;
    for (auto& qp : cp.queues)
      for (auto& e : qp.entries) {
        e.cycle += off;
        if (e.done) e.done = *e.done + off;
      }
    p.chips.push_back(std::move(cp));
  }
  for (isa::Tensor t : sp.tensors) {
    if (spmd) t.name = t.name.substr(0, t.name.rfind('@'));
    t.chip += base;
    t.name += "@" + std::to_string(t.chip);
    p.tensors.push_back(std::move(t));
  }
  if (images)
    for (isa::Image im : sp.images) {
      im.chip += base;
      p.images.push_back(std::move(im));
    }
  const std::uint64_t end = off + (sp.predicted_cycles ? *sp.predicted_cycles : 0);
  p.predicted_cycles = std::max(p.predicted_cycles.value_or(0), end);
}

// The two ports of the links between stage s's chips and the next stage's (the same for every
// chip of the stage).
std::pair<int, int> boundary_ports(const arch::Arch& sys, const std::string& source, int s,
                                   int group) {
  int po = -1, pi = -1;
  for (int c = 0; c < group; ++c) {
    const int from = s * group + c, to = from + group;
    const int o = port_to(sys, from, to), i = port_to(sys, to, from);
    if (o < 0)
      throw InputError(source, "pipeline stage " + std::to_string(s) + " on chip " +
                                   std::to_string(from) + " sends to chip " + std::to_string(to) +
                                   ", but the system has no link between them");
    if ((po >= 0 && o != po) || (pi >= 0 && i != pi))
      throw InputError(source, "the chips of pipeline stage " + std::to_string(s) +
                                   " reach the next stage on different ports (a stage's chips "
                                   "share one program)");
    po = o;
    pi = i;
  }
  return {po, pi};
}

}  // namespace

PipelineProgram compile_pipeline(const Graph& g, const arch::Arch& sys, int stages, int group,
                                 Precision precision, std::uint32_t calibration_seed,
                                 const ScheduleOptions& options) {
  if (group < 1) throw InputError(g.source, "a pipeline stage needs 1 chip or more");
  if (stages * group > sys.system.chips)
    throw InputError(g.source, std::to_string(stages) + " stages of " + std::to_string(group) +
                                   " chip(s) need " + std::to_string(stages * group) +
                                   " chips; the system \"" + sys.system.topology + "\" has " +
                                   std::to_string(sys.system.chips));
  PipelineProgram out;
  out.group = group;
  out.stages = partition_pipeline(g, sys, stages);
  std::map<std::string, double> act;
  if (precision == Precision::kInt8) act = calibrate(g, sys, calibration_seed);
  const func::LinkTiming lt(sys);
  std::set<std::string> graph_outputs;
  for (int v : g.outputs)
    graph_outputs.insert(g.values[static_cast<std::size_t>(v)].name);
  for (int s = 0; s + 1 < stages; ++s) {
    const auto [po, pi] = boundary_ports(sys, g.source, s, group);
    out.port_out.push_back(po);
    out.port_in.push_back(pi);
  }
  for (int s = 0; s < stages; ++s) {
    const PipelineStage& st = out.stages[static_cast<std::size_t>(s)];
    SplitKernels sk;
    if (group == 1) {
      LowerOptions o;
      o.precision = precision;
      o.activation_max = act;
      sk.kernels.push_back(lower(st.graph, sys, o));
      sk.partition.chips = 1;
      sk.partition.inputs.assign(st.graph.inputs.size(), Shard{});
      sk.partition.outputs.assign(st.graph.outputs.size(), Shard{});
    } else {
      sk = lower_split(st.graph, sys, precision, group, calibration_seed, &act);
    }
    // Arrival cycles in this stage's program, from the previous stage's sends.
    std::vector<std::uint64_t> arrivals;
    std::uint64_t offset = 0;
    if (s > 0)
      std::tie(arrivals, offset) = next_arrivals(out.schedules.back(), out.offset.back(), lt);
    for (Kernels& k : sk.kernels)
      add_transfers(k, st.graph, st.receives, st.sends, s,
                    s > 0 ? out.port_in[static_cast<std::size_t>(s) - 1] : -1,
                    s + 1 < stages ? out.port_out[static_cast<std::size_t>(s)] : -1, arrivals,
                    graph_outputs);
    // The partition's input and output lists follow the kernels' (received and sent values that
    // are no longer inputs or outputs drop out).
    sk.partition.inputs.resize(sk.kernels[0].inputs.size());
    sk.partition.outputs.resize(sk.kernels[0].outputs.size());
    Schedule sc = group == 1 ? schedule(sk.kernels[0], sys, g.source, options)
                             : schedule_spmd(sk.kernels, sys, g.source, options);
    out.kernels.push_back(std::move(sk));
    out.schedules.push_back(std::move(sc));
    out.offset.push_back(offset);
  }
  // One program: stage s's chips shifted to s * group and its cycles by its offset.
  out.program.arch = sys;
  for (int s = 0; s < stages; ++s)
    append_stage(out.program, out.schedules[static_cast<std::size_t>(s)].program,
                 static_cast<std::uint32_t>(s * group), out.offset[static_cast<std::size_t>(s)],
                 group > 1, true);
  return out;
}

ParallelChoice choose_parallel(const Graph& g0, const arch::Arch& sys) {
  const int n = sys.system.chips;
  if (n < 2) throw InputError(g0.source, "the system has one chip: nothing to split over");
  const Graph g = with_shapes(g0, sys);
  const int group = sys.system.topology == "fully_connected" ? n
                    : sys.system.topology == "dragonfly"     ? sys.system.node_chips
                                                             : 1;
  ParallelChoice c;
  std::string tensor_no;
  if (group > 1) {
    try {
      partition_tensor(g, sys, group);
    } catch (const InputError& e) {
      tensor_no = e.what();
    }
  }
  const bool tensor = group > 1 && tensor_no.empty();
  auto cuttable = [&](int stages) {
    try {
      partition_pipeline(g, sys, stages);
      return true;
    } catch (const InputError&) {
      return false;
    }
  };
  if (tensor && n == group) {
    c.chips = group;
    c.why = "tensor parallel over the " + std::to_string(group) +
            " fully connected chips (every product's weights split over them)";
    return c;
  }
  if (tensor && cuttable(n / group)) {
    c.pipeline = true;
    c.stages = n / group;
    c.group = group;
    c.why = "a pipeline of " + std::to_string(c.stages) + " stages, each tensor parallel over a " +
            "fully connected group of " + std::to_string(group);
    return c;
  }
  if (tensor) {
    c.chips = group;
    c.why = "tensor parallel over the first " + std::to_string(group) +
            " chips (a fully connected group); the graph has too few places to cut for a "
            "pipeline over the rest";
    return c;
  }
  int stages = n;
  while (stages > 1 && !cuttable(stages))
    --stages;
  if (stages < 2)
    throw InputError(
        g.source, "cannot be split: " +
                      (tensor_no.empty() ? "the system has no fully connected group" : tensor_no) +
                      ", and the graph has no place to cut into pipeline stages");
  c.pipeline = true;
  c.stages = stages;
  c.why = "a pipeline of " + std::to_string(stages) + " single-chip stages (" +
          (tensor_no.empty() ? std::string("the system has no fully connected group")
                             : "tensor parallelism cannot split it: " + tensor_no) +
          ")";
  return c;
}

LayerStack compile_layer_stack(Graph layer, const std::string& in, const std::string& out,
                               const arch::Arch& sys, int layers, int group, Precision precision) {
  if (layers < 2) throw InputError(layer.source, "a stack needs 2 layers or more");
  if (layers * group > sys.system.chips)
    throw InputError(layer.source, std::to_string(layers) + " layers of " + std::to_string(group) +
                                       " chip(s) need " + std::to_string(layers * group) +
                                       " chips; the system has " +
                                       std::to_string(sys.system.chips));
  fill_shapes(layer, sys);
  const int vin = layer.find(in), vout = layer.find(out);
  if (vin < 0 || std::find(layer.inputs.begin(), layer.inputs.end(), vin) == layer.inputs.end())
    throw InputError(layer.source, "the layer has no input '" + in + "'");
  if (vout < 0 ||
      std::find(layer.outputs.begin(), layer.outputs.end(), vout) == layer.outputs.end())
    throw InputError(layer.source, "the layer has no output '" + out + "'");
  if (layer.values[static_cast<std::size_t>(vin)].shape !=
      layer.values[static_cast<std::size_t>(vout)].shape)
    throw InputError(layer.source, "the layer's '" + out + "' is not shaped as its '" + in + "'");
  LayerStack st;
  st.layers = layers;
  st.group = group;
  // The three kinds of stage: the first (its input from the host), a middle one, the last (its
  // output to the host). They differ only in the graph's input and output lists (one graph
  // serves all three: a 70B-wide layer's weights are gigabytes).
  const std::vector<int> inputs0 = layer.inputs, outputs0 = layer.outputs;
  auto stage = [&](int kind) {
    layer.inputs = inputs0;
    layer.outputs = outputs0;
    if (kind > 0) {
      auto& ins = layer.inputs;
      ins.erase(std::remove(ins.begin(), ins.end(), vin), ins.end());
      ins.push_back(vin);
    }
    if (kind < 2) {
      auto& outs = layer.outputs;
      outs.erase(std::remove(outs.begin(), outs.end(), vout), outs.end());
      outs.push_back(vout);
    }
  };
  std::map<std::string, double> act;
  if (precision == Precision::kInt8) act = calibrate(layer, sys);
  const func::LinkTiming lt(sys);
  std::tie(st.port_out, st.port_in) = boundary_ports(sys, layer.source, 0, group);
  for (int s = 1; s + 1 < layers; ++s)
    if (boundary_ports(sys, layer.source, s, group) != std::make_pair(st.port_out, st.port_in))
      throw InputError(layer.source,
                       "the stages of the stack reach their successors on "
                       "different ports; one program serves them all only when "
                       "they do not");
  std::vector<std::uint64_t> arrivals;
  std::uint64_t offset = 0;
  for (int kind = 0; kind < 3; ++kind) {
    stage(kind);
    SplitKernels sk;
    if (group == 1) {
      LowerOptions o;
      o.precision = precision;
      o.activation_max = act;
      sk.kernels.push_back(lower(layer, sys, o));
    } else {
      sk = lower_split(layer, sys, precision, group, 7, &act);
    }
    const std::vector<int> receives = kind > 0 ? std::vector<int>{vin} : std::vector<int>{};
    const std::vector<int> sends = kind < 2 ? std::vector<int>{vout} : std::vector<int>{};
    for (Kernels& k : sk.kernels)
      add_transfers(k, layer, receives, sends, kind, st.port_in, st.port_out, arrivals, {});
    Schedule sc = group == 1 ? schedule(sk.kernels[0], sys, layer.source)
                             : schedule_spmd(sk.kernels, sys, layer.source);
    sc.program.images.clear();  // timing mode: the weights' values do not matter
    std::vector<std::uint64_t> next;
    if (kind < 2) {
      std::tie(next, offset) = next_arrivals(sc, 0, lt);
      if (kind == 1 && next != arrivals)
        throw std::logic_error(
            "layer stack: a middle stage's sends land at other cycles than "
            "the first stage's");
      st.step.push_back(offset);  // the next stage starts this many cycles after this one
    }
    st.schedules.push_back(std::move(sc));
    arrivals = std::move(next);
  }
  isa::Program& p = st.program;
  p.arch = sys;
  std::uint64_t off = 0;
  for (int l = 0; l < layers; ++l) {
    const int kind = l == 0 ? 0 : l + 1 == layers ? 2 : 1;
    append_stage(p, st.schedules[static_cast<std::size_t>(kind)].program,
                 static_cast<std::uint32_t>(l * group), off, group > 1, false);
    st.offset.push_back(off);
    if (kind < 2) off += st.step[static_cast<std::size_t>(kind)];
  }
  return st;
}

}  // namespace lpu::compiler
