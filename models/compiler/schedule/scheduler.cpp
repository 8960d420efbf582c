// The scheduler's driver: steps in program order, memory reuse, the public entry points.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

std::uint8_t mod_code(isa::ModKind k, const std::string& name) {
  const auto& names = isa::mod_names(k);
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<std::uint8_t>(i);
  throw std::logic_error("scheduler: no modifier '" + name + "'");
}

const char* mnemonic(func::VxmOp op) {
  return func::vxm_op_info(op).mnemonic;
}

isa::Instr instr(const char* mn) {
  isa::Instr in;
  in.opcode = isa::by_mnemonic(mn)->opcode;
  return in;
}

void Scheduler::set_spmd(const std::vector<Kernels>* all, std::vector<std::uint16_t> send,
                         std::vector<std::uint16_t> recv) {
  spmd_ = all;
  chips_ = static_cast<int>(all->size());
  send_q_ = std::move(send);
  recv_q_ = std::move(recv);
}

Schedule Scheduler::run() {
  place_.resize(k_.tensors.size());
  find_chains();
  check_weights();
  placement_rules();
  keep_chain_operands_apart();
  place_inputs();
  const std::vector<std::vector<int>> release_after = release_plan();
  pair_products();
  for (std::size_t i = 0; i < k_.steps.size(); ++i)
    schedule_step(i, release_after[i]);
  for (std::size_t t = 0; t < k_.tensors.size(); ++t)
    if (!P(static_cast<int>(t)).placed && used(static_cast<int>(t)))
      place(root(static_cast<int>(t)));  // never written
  if (!chip_.icu.preloaded) plan_ifetch();
  return emit();
}

void Scheduler::check_weights() {
  // Tensors the MXM loads as weights get the interleaved layout; nothing else may read them.
  for (const KStep& s : k_.steps)
    if (s.kind == KStep::Kind::kMatMul)
      for (const KPass& p : s.passes) {
        TensorPlace& tp = P(p.w);
        if (tp.weights && tp.block_rows != s.w_block)
          throw std::logic_error("scheduler: weights '" + name(p.w) + "' cut two ways");
        tp.weights = true;
        tp.block_rows = s.w_block;
        tp.window_only = tp.window_only && p.window;
        if (p.window &&
            (chip_.mxm.weight_buffers < 2 || p.w_at < 0 || p.w_at + p.k > chip_.mxm.rows ||
             p.w_at % (16 / isa::dtype_bytes(s.mm_type)) != 0))
          throw std::logic_error("scheduler: window pass of '" + name(p.w) + "' at row " +
                                 std::to_string(p.w_at) + " cannot be loaded");
      }
  for (const KStep& s : k_.steps) {
    auto operand = [&](int t) {
      if (t >= 0 && P(t).weights)
        throw InputError(source_, "tensor '" + name(t) +
                                      "' is both MXM weights and another operand, which the "
                                      "compiler does not support yet");
    };
    if (s.kind != KStep::Kind::kMatMul) {
      operand(s.a);
      operand(s.b);
      operand(s.mask);
    } else {
      for (const KPass& p : s.passes)
        operand(p.x);
    }
  }
}

void Scheduler::placement_rules() {
  // Operands a VXM step reads together must sit in different slices (one read per slice and
  // cycle): each tensor, when placed, avoids the slices of those it is read with.
  co_.resize(k_.tensors.size());
  co_write_.resize(k_.tensors.size());
  for (const KStep& s : k_.steps) {
    if (s.kind == KStep::Kind::kMatMul || s.d < 0) continue;
    std::vector<int> ins;
    for (int t : {s.a, s.b, s.mask})
      if (t >= 0) ins.push_back(root(t));
    for (int x : ins)
      for (int y : ins)
        if (x != y) co_[static_cast<std::size_t>(x)].push_back(y);
    // The result is written while the operands are read: keep them apart too (whichever is
    // placed second avoids the other), where there is room (a step that meets its result on an
    // operand's slice runs in parts that do not overlap there).
    for (int x : ins)
      if (x != root(s.d)) {
        co_write_[static_cast<std::size_t>(x)].push_back(root(s.d));
        co_write_[static_cast<std::size_t>(root(s.d))].push_back(x);
      }
  }
  // Tensors only VXM and SXM steps and products touch are chunked by default when long (reads
  // and writes at a row offset, dealt ones too, go run by run over the chunks' slices);
  // tensors exchanged between chips or through the transposers keep their placement rules.
  streamed_.assign(k_.tensors.size(), true);
  no_chunk_.assign(k_.tensors.size(), false);
  for (const KStep& s : k_.steps) {
    if (s.kind == KStep::Kind::kMatMul) continue;
    if (s.kind == KStep::Kind::kExchange)  // exchanged rows sit in one range of addresses
      for (int t : {s.a, s.d})
        if (t >= 0) no_chunk_[static_cast<std::size_t>(root(t))] = true;
    if (s.kind == KStep::Kind::kVxm || s.kind == KStep::Kind::kSxm) continue;
    for (int t : {s.a, s.b, s.mask, s.d})
      if (t >= 0) streamed_[static_cast<std::size_t>(root(t))] = false;
  }
}

void Scheduler::place_inputs() {
  // How many bytes of the constant weights get a copy (ScheduleOptions::weight_copy_share).
  double weight_bytes = 0;
  for (std::size_t t = 0; t < k_.tensors.size(); ++t)
    if (k_.tensors[t].role == KTensor::Role::kConstant && place_[t].weights &&
        used(static_cast<int>(t)))
      weight_bytes +=
          static_cast<double>(k_.tensors[t].elements()) * isa::dtype_bytes(k_.tensors[t].dtype);
  const double mem = static_cast<double>(west_.size() + east_.size()) *
                     static_cast<double>(chip_.mem.depth) * lanes_;
  // (a chip that holds mostly weights, as a 70B layer's do, keeps its MEM for the rest)
  copy_budget_ = 2 * weight_bytes <= opt_.weight_copy_share * mem ? weight_bytes
                 : 2 * weight_bytes <= mem ? std::min(weight_bytes, opt_.weight_copy_part * mem)
                                           : 0;
  copy_weights_ = copy_budget_ > 0;
  for (std::size_t t = 0; t < k_.tensors.size(); ++t)
    if ((k_.tensors[t].role == KTensor::Role::kInput ||
         k_.tensors[t].role == KTensor::Role::kConstant) &&
        used(static_cast<int>(t)))
      place(static_cast<int>(t));
  // Constants a long VXM step reads as a broadcast operand get copies (its parts run on
  // several ALUs at once), taken now, while MEM is unused (their images load with the program).
  for (const KStep& s : k_.steps) {
    if (!splittable(s)) continue;
    for (int t : {s.a, s.b, s.mask})
      if (t >= 0 && broadcast_of(s, t) && !P(t).weights && !P(t).t16 && !P(t).chunked &&
          k_.tensors[static_cast<std::size_t>(root(t))].role == KTensor::Role::kConstant)
        replicate(root(t));
  }
}

void Scheduler::keep_chain_operands_apart() {
  // A chain reads every operand of its steps (but the values passed between them) in
  // overlapping cycles: they keep apart like one step's. Constants only where there is room
  // (as results do): placed first, and with copies for broadcasts, a chain's constants could
  // cover a hemisphere.
  for (std::size_t i = 0; i < k_.steps.size(); ++i) {
    if (chain_len_[i] < 2) continue;
    std::vector<int> ins;
    for (std::size_t j = i; j < i + chain_len_[i]; ++j)
      for (int t : {k_.steps[j].a, k_.steps[j].b, k_.steps[j].mask})
        if (t >= 0 && (j == i || root(t) != k_.steps[j - 1].d)) ins.push_back(root(t));
    auto constant = [&](int t) {
      return k_.tensors[static_cast<std::size_t>(t)].role == KTensor::Role::kConstant;
    };
    for (int x : ins)
      for (int y : ins)
        if (x != y)
          (constant(x) || constant(y) ? co_write_ : co_)[static_cast<std::size_t>(x)].push_back(y);
    for (std::size_t j = i; j < i + chain_len_[i]; ++j) {  // and off the results it writes
      const int d = k_.steps[j].d;
      if (j + 1 < i + chain_len_[i] && !chain_write_[static_cast<std::size_t>(d)]) continue;
      for (int x : ins)
        if (x != d) {
          co_write_[static_cast<std::size_t>(x)].push_back(d);
          co_write_[static_cast<std::size_t>(d)].push_back(x);
        }
    }
  }
}

std::vector<std::vector<int>> Scheduler::release_plan() const {
  // The step after which nothing reads a tensor: its storage can then be reused. Graph outputs
  // (and what they view) stay.
  std::vector<std::size_t> last_use(k_.tensors.size(), 0);
  std::vector<bool> keep(k_.tensors.size(), !reuse_);
  for (std::size_t i = 0; i < k_.steps.size(); ++i) {
    const KStep& s = k_.steps[i];
    for (int x : {s.a, s.b, s.mask, s.d})  // written counts too: never free before the writes
      if (x >= 0) last_use[static_cast<std::size_t>(root(x))] = i;
    for (const auto& [x, unused] : s.deal) {  // dealt into (perhaps never read)
      (void)unused;
      last_use[static_cast<std::size_t>(root(x))] = i;
    }
    for (const KPass& ps : s.passes) {
      last_use[static_cast<std::size_t>(root(ps.x))] = i;
      last_use[static_cast<std::size_t>(root(ps.w))] = i;
    }
  }
  for (int x : k_.outputs)
    keep[static_cast<std::size_t>(root(x))] = true;
  std::vector<std::vector<int>> release_after(k_.steps.size());
  for (std::size_t t = 0; t < k_.tensors.size(); ++t)
    if (static_cast<int>(t) == root(static_cast<int>(t)) && !keep[t] && used(static_cast<int>(t)))
      release_after[last_use[t]].push_back(static_cast<int>(t));
  return release_after;
}

void Scheduler::schedule_step(std::size_t i, const std::vector<int>& release_now) {
  const KStep& s = k_.steps[i];
  const std::size_t b0 = blocks_.size();
  const std::uint64_t mxm0 = mxm_busy_, vxm0 = vxm_busy_;
  if (chain_len_[i] == 0 || partner_of_[i] == kPairedEarlier) {
    // done with its chain's first step, or with the product it shares activations with
    step_timing_.push_back(step_timing_.back());
    step_timing_.back().origin = s.origin;
    step_timing_.back().mxm_cycles = step_timing_.back().vxm_cycles = 0;
    for (int t : release_now)
      release(t);
    return;
  }
  if (chain_len_[i] > 1 || sum_chains_.count(i))  // (a step the sums go straight into)
    vxm_chain(i);
  else if (s.kind == KStep::Kind::kVxm)
    vxm_step(s);
  else if (s.kind == KStep::Kind::kSxm)
    sxm_step(s);
  else if (s.kind == KStep::Kind::kTranspose)
    transpose_step(s);
  else if (s.kind == KStep::Kind::kExchange)
    exchange_step(s);
  else if (s.kind == KStep::Kind::kSend)
    send_step(s);
  else if (s.kind == KStep::Kind::kRecv)
    recv_step(s);
  else if (partner_of_[i] >= 0)
    matmul_pair(s, k_.steps[static_cast<std::size_t>(partner_of_[i])]);
  else
    matmul_step(s);
  StepTiming st;
  st.origin = s.origin;
  st.first = ~0ull;
  for (std::size_t b = b0; b < blocks_.size(); ++b) {
    const Block& bl = blocks_[b];
    st.first = std::min(st.first, bl.dispatch);
    const std::uint64_t reps = bl.self_counted || bl.count < 2 ? 0 : bl.count - 1;
    st.last = std::max(st.last, bl.first_done + reps * bl.stride);
  }
  if (st.first == ~0ull) st.first = 0;
  st.mxm_cycles = mxm_busy_ - mxm0;
  st.vxm_cycles = vxm_busy_ - vxm0;
  step_timing_.push_back(std::move(st));
  for (int t : release_now)
    release(t);
}

void Scheduler::pair_products() {
  const std::size_t n = k_.steps.size();
  partner_of_.assign(n, -1);
  if (planes_.size() < 4 || planes_.size() % 2) return;
  // Each product with the next one of a run of products that streams the same activations
  // (another column tile of its rows); the products between write other tiles or rows, which
  // neither reads.
  for (std::size_t i = 0; i < n; ++i) {
    if (partner_of_[i] != -1 || k_.steps[i].kind != KStep::Kind::kMatMul) continue;
    for (std::size_t j = i + 1; j < n && j <= i + kPairWindow; ++j) {
      const KStep& sj = k_.steps[j];
      if (sj.kind != KStep::Kind::kMatMul || root(sj.d) != root(k_.steps[i].d)) break;
      if (partner_of_[j] == -1 && shares_activations(k_.steps[i], sj)) {
        partner_of_[i] = static_cast<std::ptrdiff_t>(j);
        partner_of_[j] = kPairedEarlier;
        break;
      }
    }
  }
}

bool Scheduler::used(int t) const {
  if (used_.empty()) {
    used_.assign(k_.tensors.size(), false);
    auto mark = [&](int x) {
      if (x >= 0) {
        used_[static_cast<std::size_t>(x)] = true;
        used_[static_cast<std::size_t>(root(x))] = true;
      }
    };
    for (const KStep& s : k_.steps) {
      for (int x : {s.a, s.b, s.mask, s.d})
        mark(x);
      for (const auto& [x, unused] : s.deal) {
        (void)unused;
        mark(x);
      }
      for (const KPass& ps : s.passes) {
        mark(ps.x);
        mark(ps.w);
      }
    }
    for (int x : k_.inputs)
      mark(x);
    for (int x : k_.outputs)
      mark(x);
  }
  return used_[static_cast<std::size_t>(t)];
}

[[noreturn]] void Scheduler::no_fit(const std::string& origin, const std::string& what) const {
  throw InputError(source_, origin + ": " + what +
                                " on this machine (chip.streams.per_direction = " +
                                std::to_string(chip_.streams.per_direction) + ", " +
                                std::to_string(alus_.size()) + " VXM ALUs, " +
                                std::to_string(chip_.sxm.units) + " SXM units)");
}

}  // namespace lpu::compiler::scheduling

namespace lpu::compiler {

using scheduling::Scheduler;

std::vector<NodeTiming> per_node(const Schedule& s) {
  std::vector<NodeTiming> out;
  std::map<std::string, std::size_t> at;
  for (const StepTiming& st : s.steps) {
    // "FILE: node 'NAME' (OP)" -> "'NAME' (OP)"
    const auto pos = st.origin.find("node ");
    const std::string node = pos == std::string::npos ? st.origin : st.origin.substr(pos + 5);
    auto [it, fresh] = at.try_emplace(node, out.size());
    if (fresh) {
      NodeTiming n;
      n.node = node;
      n.first = st.first;
      out.push_back(n);
    }
    NodeTiming& n = out[it->second];
    n.first = std::min(n.first, st.first);
    n.last = std::max(n.last, st.last);
    n.mxm_cycles += st.mxm_cycles;
    n.vxm_cycles += st.vxm_cycles;
    ++n.steps;
  }
  return out;
}

namespace {
// attempt(options, copied) schedules once (setting `copied` when it gave weights copies before
// it failed); when copies took the room a tensor needed, once more without them.
template <class Attempt>
Schedule with_weight_copies(const ScheduleOptions& options, Attempt attempt) {
  bool copied = false;
  try {
    return attempt(options, copied);
  } catch (const InputError&) {
    if (!copied) throw;
  }
  ScheduleOptions without = options;
  without.weight_copy_share = without.weight_copy_part = 0;
  return attempt(without, copied);
}
}  // namespace

Schedule schedule(const Kernels& k, const arch::Arch& arch, const std::string& source,
                  const ScheduleOptions& options) {
  if (k.chips > 1)
    throw std::logic_error("scheduler: kernels for " + std::to_string(k.chips) +
                           " chips go to schedule_spmd");
  return with_weight_copies(options, [&](const ScheduleOptions& o, bool& copied) {
    Scheduler s(k, arch, source);
    s.set_options(o);
    try {
      return s.run();
    } catch (const InputError&) {
      copied = s.copies_weights();
      throw;
    }
  });
}

Schedule schedule_spmd(const std::vector<Kernels>& chips, const arch::Arch& arch,
                       const std::string& source, const ScheduleOptions& options) {
  const int n = static_cast<int>(chips.size());
  if (n < 2) throw std::logic_error("scheduler: schedule_spmd needs 2 chips or more");
  for (const Kernels& k : chips) {
    bool same = k.chips == n && k.steps.size() == chips[0].steps.size() &&
                k.tensors.size() == chips[0].tensors.size();
    for (std::size_t t = 0; same && t < k.tensors.size(); ++t)
      same = k.tensors[t].shape == chips[0].tensors[t].shape &&
             k.tensors[t].dtype == chips[0].tensors[t].dtype;
    if (!same) throw std::logic_error("scheduler: the chips' kernels differ in their steps");
  }
  const std::string sys =
      "system \"" + arch.system.topology + "\" (" + std::to_string(arch.system.chips) + " chips)";
  if (arch.system.chips < n)
    throw InputError(source, "the program is split over " + std::to_string(n) + " chips; the " +
                                 sys + " has fewer");
  // port[c][j]: chip c's port to chip j.
  std::vector<std::vector<int>> port(static_cast<std::size_t>(n), std::vector<int>(n, -1));
  for (const auto& l : arch.system.links)
    if (l.a.chip < n && l.b.chip < n) {
      port[static_cast<std::size_t>(l.a.chip)][static_cast<std::size_t>(l.b.chip)] = l.a.port;
      port[static_cast<std::size_t>(l.b.chip)][static_cast<std::size_t>(l.a.chip)] = l.b.port;
    }
  const auto queues = arch::chip_queues(arch.chip);
  std::vector<std::uint16_t> send(static_cast<std::size_t>(n), 0), recv(send);
  for (int k = 1; k < n; ++k)
    for (int dir = 0; dir < 2; ++dir) {
      int p = -1;
      for (int c = 0; c < n; ++c) {
        const int peer = ((dir == 0 ? c + k : c - k) % n + n) % n;
        const int here = port[static_cast<std::size_t>(c)][static_cast<std::size_t>(peer)];
        if (here < 0)
          throw InputError(source, "a split over " + std::to_string(n) +
                                       " chips exchanges between every pair, but in the " + sys +
                                       " chip " + std::to_string(c) + " has no link to chip " +
                                       std::to_string(peer));
        if (p >= 0 && here != p)
          throw InputError(source, "in the " + sys + " chip 0 reaches chip " +
                                       std::to_string(k % n) + " on port " + std::to_string(p) +
                                       " but chip " + std::to_string(c) + " reaches chip " +
                                       std::to_string(peer) + " on port " + std::to_string(here) +
                                       ": a split over chips needs every chip to reach chip c + k "
                                       "on the same port");
        p = here;
      }
      const auto qn = arch::find_queue(queues, "c2c.l" + std::to_string(p));
      if (!qn) throw std::logic_error("scheduler: no queue for port " + std::to_string(p));
      (dir == 0 ? send : recv)[static_cast<std::size_t>(k)] = qn->id;
    }
  return with_weight_copies(options, [&](const ScheduleOptions& o, bool& copied) {
    Scheduler s(chips[0], arch, source);
    s.set_options(o);
    s.set_spmd(&chips, send, recv);
    try {
      return s.run();
    } catch (const InputError&) {
      copied = s.copies_weights();
      throw;
    }
  });
}

const std::vector<std::string>& schedule_log_names() {
  static const std::vector<std::string> names = {"fit", "instr", "mem"};
  return names;
}

std::set<std::string> parse_schedule_log(const std::string& list, const std::string& where) {
  std::set<std::string> out;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    const std::string name = list.substr(at, comma - at);
    const auto& names = schedule_log_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw InputError(where, "'" + name + "' is not a scheduler log (fit, instr or mem)");
    out.insert(name);
    at = comma + 1;
  }
  return out;
}

}  // namespace lpu::compiler
