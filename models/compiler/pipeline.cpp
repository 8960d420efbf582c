#include "compiler/pipeline.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <stdexcept>

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

}  // namespace

PipelineProgram compile_pipeline(const Graph& g, const arch::Arch& sys, int stages, int group,
                                 Precision precision, std::uint32_t calibration_seed) {
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
  std::set<int> graph_outputs(g.outputs.begin(), g.outputs.end());
  for (int s = 0; s + 1 < stages; ++s) {
    int po = -1, pi = -1;
    for (int c = 0; c < group; ++c) {
      const int from = s * group + c, to = from + group;
      const int o = port_to(sys, from, to), i = port_to(sys, to, from);
      if (o < 0)
        throw InputError(g.source, "pipeline stage " + std::to_string(s) + " on chip " +
                                       std::to_string(from) + " sends to chip " +
                                       std::to_string(to) +
                                       ", but the system has no link "
                                       "between them");
      if ((po >= 0 && o != po) || (pi >= 0 && i != pi))
        throw InputError(g.source, "the chips of pipeline stage " + std::to_string(s) +
                                       " reach the next stage on different ports (a stage's "
                                       "chips share one program)");
      po = o;
      pi = i;
    }
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
    if (s > 0) {
      const Schedule& prev = out.schedules.back();
      const std::uint64_t base = out.offset.back();
      std::uint64_t first = ~0ull;
      for (const auto& step : prev.sends)
        for (auto c : step)
          first = std::min(first, base + lt.arrival(c));
      constexpr std::uint64_t kMargin = 2;
      offset = first - kMargin;
      for (const auto& step : prev.sends)
        for (auto c : step)
          arrivals.push_back(base + lt.arrival(c) - offset);
    }
    for (Kernels& k : sk.kernels) {
      std::vector<KStep> pre, post;
      std::size_t next = 0;
      for (int v : st.receives) {
        const int t = tensor_named(k, st.graph.values[static_cast<std::size_t>(v)].name);
        k.tensors[static_cast<std::size_t>(t)].role = KTensor::Role::kTemp;
        k.inputs.erase(std::remove(k.inputs.begin(), k.inputs.end(), t), k.inputs.end());
        KStep r;
        r.kind = KStep::Kind::kRecv;
        r.d = t;
        r.port = out.port_in[static_cast<std::size_t>(s) - 1];
        const std::size_t count = static_cast<std::size_t>(
            k.tensors[static_cast<std::size_t>(t)].vector_rows(k.lanes) *
            isa::dtype_bytes(k.tensors[static_cast<std::size_t>(t)].dtype));
        if (next + count > arrivals.size())
          throw std::logic_error("pipeline: fewer vectors sent than received");
        r.arrivals.assign(arrivals.begin() + static_cast<long>(next),
                          arrivals.begin() + static_cast<long>(next + count));
        next += count;
        r.origin = st.graph.source + ": value '" +
                   st.graph.values[static_cast<std::size_t>(v)].name + "' from stage " +
                   std::to_string(s - 1);
        pre.push_back(std::move(r));
      }
      for (int v : st.sends) {
        const int t = tensor_named(k, st.graph.values[static_cast<std::size_t>(v)].name);
        if (!graph_outputs.count(v)) {
          k.tensors[static_cast<std::size_t>(t)].role = KTensor::Role::kTemp;
          k.outputs.erase(std::remove(k.outputs.begin(), k.outputs.end(), t), k.outputs.end());
        }
        KStep snd;
        snd.kind = KStep::Kind::kSend;
        snd.a = t;
        snd.port = out.port_out[static_cast<std::size_t>(s)];
        snd.origin = st.graph.source + ": value '" +
                     st.graph.values[static_cast<std::size_t>(v)].name + "' to stage " +
                     std::to_string(s + 1);
        post.push_back(std::move(snd));
      }
      k.steps.insert(k.steps.begin(), pre.begin(), pre.end());
      k.steps.insert(k.steps.end(), post.begin(), post.end());
    }
    // The partition's input and output lists follow the kernels' (received and sent values that
    // are no longer inputs or outputs drop out).
    sk.partition.inputs.resize(sk.kernels[0].inputs.size());
    sk.partition.outputs.resize(sk.kernels[0].outputs.size());
    Schedule sc = group == 1 ? schedule(sk.kernels[0], sys, g.source)
                             : schedule_spmd(sk.kernels, sys, g.source);
    out.kernels.push_back(std::move(sk));
    out.schedules.push_back(std::move(sc));
    out.offset.push_back(offset);
  }
  // One program: stage s's chips shifted to s * group and its cycles by its offset.
  isa::Program& p = out.program;
  p.arch = sys;
  std::uint64_t end = 0;
  for (int s = 0; s < stages; ++s) {
    const isa::Program& sp = out.schedules[static_cast<std::size_t>(s)].program;
    const std::uint64_t off = out.offset[static_cast<std::size_t>(s)];
    const auto base = static_cast<std::uint32_t>(s * group);
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
      if (group > 1) t.name = t.name.substr(0, t.name.rfind('@'));
      t.chip += base;
      t.name += "@" + std::to_string(t.chip);
      p.tensors.push_back(std::move(t));
    }
    for (isa::Image im : sp.images) {
      im.chip += base;
      p.images.push_back(std::move(im));
    }
    end = std::max(end, off + (sp.predicted_cycles ? *sp.predicted_cycles : 0));
  }
  p.predicted_cycles = end;
  return out;
}

}  // namespace lpu::compiler
