// VXM steps: ALUs and streams for point-wise steps, their parts and chains.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

std::vector<Scheduler::Part> Scheduler::chunk_parts(const KStep& s, int copies,
                                                    bool classes) const {
  const std::int64_t d0 = result_row(s), n = run_rows(s);
  const std::int64_t il = classes ? P(s.d).il : 1;
  std::vector<std::pair<std::int64_t, std::int64_t>> bounds = chunk_bounds(s.d);
  if (bounds.empty()) bounds.push_back({d0, n});
  std::vector<Part> parts;
  for (const auto& [f, r] : bounds) {
    const std::int64_t lo = std::max(f, d0), hi = std::min(f + r, d0 + n);
    for (std::int64_t k = 0; k < il && lo + k < hi; ++k) {
      const std::int64_t rows = (hi - lo - k + il - 1) / il;
      parts.push_back({lo + k - d0, rows, static_cast<int>(parts.size()) % copies, il});
    }
  }
  return parts;
}

bool Scheduler::classed(const std::vector<const KStep*>& c) const {
  const KStep& last = *c.back();
  const int il = P(last.d).il;
  if (il < 2) return false;
  for (std::size_t j = 0; j < c.size(); ++j) {
    const KStep& s = *c[j];
    if (s.kind != KStep::Kind::kVxm || !s.deal.empty()) return false;
    for (int t : {s.a, s.b, s.mask}) {
      if (t < 0 || (j > 0 && root(t) == c[j - 1]->d) || broadcast_of(s, t)) continue;
      if (!P(t).placed || P(t).il != il || (operand_row(s, t) - result_row(s)) % il) return false;
    }
    if ((j + 1 == c.size() || chain_write_[static_cast<std::size_t>(s.d)]) && P(s.d).il != il)
      return false;
  }
  return true;
}

int Scheduler::first_free(const std::vector<int>& cand, int group,
                          std::vector<std::pair<int, int>>& used) {
  for (int st : cand) {
    bool clash = false;
    for (auto [u, n] : used)
      if (st < u + n && u < st + group) clash = true;
    if (!clash) {
      used.push_back({st, group});
      return st;
    }
  }
  return -1;
}

void Scheduler::find_chains() {
  const std::size_t n = k_.steps.size();
  chain_len_.assign(n, 1);
  chain_write_.assign(k_.tensors.size(), true);
  sum_chain_.assign(k_.tensors.size(), -1);
  if (!reuse_) return;  // every tensor is read back: each keeps its own MEM
  // Steps reading each tensor (any view of it), and whether a graph output is it.
  std::vector<int> readers(k_.tensors.size(), 0);
  for (const KStep& st : k_.steps) {
    std::vector<int> ins = {st.a, st.b, st.mask};
    for (const KPass& ps : st.passes)
      ins.insert(ins.end(), {ps.x, ps.w});
    std::sort(ins.begin(), ins.end());
    ins.erase(std::unique(ins.begin(), ins.end()), ins.end());
    for (int t : ins)
      if (t >= 0) ++readers[static_cast<std::size_t>(root(t))];
  }
  std::vector<bool> output(k_.tensors.size(), false);
  for (int x : k_.outputs)
    output[static_cast<std::size_t>(root(x))] = true;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    std::vector<int> ds, read;  // results so far; tensors read from MEM so far
    if (chainable(k_.steps[i])) {
      ds.push_back(k_.steps[i].d);
      for (int t : {k_.steps[i].a, k_.steps[i].b, k_.steps[i].mask})
        if (t >= 0) read.push_back(root(t));
      while (j + 1 < n && j + 1 - i < kMaxChain && chainable(k_.steps[j + 1])) {
        const KStep& a = k_.steps[j];
        const KStep& b = k_.steps[j + 1];
        int refs = 0;
        // b reads another result of the chain, or writes one, or reads what an earlier step
        // reads (one slice cannot serve both reads, which come in overlapping cycles)
        bool other = false;
        std::vector<int> more;
        for (int t : {b.a, b.b, b.mask}) {
          if (t < 0) continue;
          // a.d itself (or a view of it with the same vector rows: a reshape keeping rows),
          // read at the rows a writes
          if (root(t) == a.d && rows_of(t) == rows_of(a.d) && operand_row(b, t) == result_row(a) &&
              run_rows(a) == run_rows(b))
            ++refs;
          else if (std::find(ds.begin(), ds.end(), root(t)) != ds.end())
            other = true;
          else if (std::find(read.begin(), read.end(), root(t)) != read.end())
            other = true;
          else
            more.push_back(root(t));
        }
        if (std::find(ds.begin(), ds.end(), b.d) != ds.end()) other = true;
        const KTensor& ta = k_.tensors[static_cast<std::size_t>(a.d)];
        const KTensor& tb = k_.tensors[static_cast<std::size_t>(b.d)];
        if (refs != 1 || other || ta.tiles(lanes_) != tb.tiles(lanes_) ||
            isa::dtype_bytes(ta.dtype) != isa::dtype_bytes(b.args.type))
          break;
        ds.push_back(b.d);
        read.insert(read.end(), more.begin(), more.end());
        ++j;
      }
    }
    chain_len_[i] = j - i + 1;
    for (std::size_t x = i + 1; x <= j; ++x)
      chain_len_[x] = 0;
    // A value passed along is also written when something else reads it.
    for (std::size_t x = i; x < j; ++x) {
      const int d = k_.steps[x].d;
      chain_write_[static_cast<std::size_t>(d)] =
          readers[static_cast<std::size_t>(d)] > 1 || output[static_cast<std::size_t>(d)];
    }
    i = j + 1;
  }
  find_sum_chains(readers, output);
}

void Scheduler::find_sum_chains(const std::vector<int>& readers, const std::vector<bool>& output) {
  const std::size_t n = k_.steps.size();
  // Per tensor: the steps that write it (any view of it).
  std::vector<std::vector<std::size_t>> writers(k_.tensors.size());
  for (std::size_t i = 0; i < n; ++i)
    if (k_.steps[i].d >= 0) writers[static_cast<std::size_t>(root(k_.steps[i].d))].push_back(i);
  for (std::size_t i = 0; i < n; ++i) {
    // a chain, or one step that could start one
    if (chain_len_[i] == 0 || (chain_len_[i] == 1 && !chainable(k_.steps[i]))) continue;
    const std::vector<const KStep*> c = chain_steps(i);
    const KStep& s0 = *c[0];
    int x = -1;
    for (int t : {s0.a, s0.b, s0.mask})
      if (t >= 0 && t == root(t) && !writers[static_cast<std::size_t>(t)].empty() &&
          k_.steps[writers[static_cast<std::size_t>(t)].back()].kind == KStep::Kind::kMatMul)
        x = x < 0 ? t : -2;  // read once
    if (x < 0) continue;
    const auto xs = static_cast<std::size_t>(x);
    if (readers[xs] != 1 || output[xs]) continue;
    bool ok = true;
    // Its products (their last passes stream at a row a cycle), after any other writer.
    std::size_t p0 = n;
    for (std::size_t w : writers[xs]) {
      const KStep& ws = k_.steps[w];
      if (ws.kind == KStep::Kind::kMatMul) {
        p0 = std::min(p0, w);
        ok = ok && (ws.mm_type != DType::kFp16 || chip_.mxm.fp16_interval() == 1);
        // every row it writes is one the chain runs (row r of the sums is run row r - off)
        const std::int64_t r0 = sums_run_row(ws, s0);
        const std::int64_t r1 = r0 + (ws.m - 1) * ws.d_stride;
        ok = ok && r0 >= 0 && r1 < run_rows(s0);
      } else {
        ok = ok && p0 == n;  // e.g. a padding row, written before the products
      }
    }
    if (!ok || p0 >= i) continue;
    // Between the first product and the chain nothing else touches what the chain reads or
    // writes: its parts run as the products come out.
    std::vector<int> touched;
    for (const KStep* st : c)
      touched.insert(touched.end(), {st->a, st->b, st->mask, st->d});
    for (std::size_t k = p0 + 1; k < i && ok; ++k) {
      const KStep& ks = k_.steps[k];
      if (ks.kind == KStep::Kind::kMatMul && root(ks.d) == x) continue;
      std::vector<int> its = {ks.a, ks.b, ks.mask, ks.d};
      for (const KPass& ps : ks.passes)
        its.insert(its.end(), {ps.x, ps.w});
      for (int t : its)
        for (int u : touched)
          if (t >= 0 && u >= 0 && root(t) == root(u)) ok = false;
    }
    if (ok) sum_chain_[xs] = static_cast<std::ptrdiff_t>(i);
  }
}

bool Scheduler::chainable(const KStep& st) const {
  return st.kind == KStep::Kind::kVxm && st.deal.empty() && st.d >= 0 && root(st.d) == st.d &&
         (!st.rows || k_.tensors[static_cast<std::size_t>(st.d)].tiles(lanes_) == 1);
}

int Scheduler::merge_shifted(Op& into, Op&& sub, std::int64_t delta) {
  const int base = static_cast<int>(into.emits.size());
  for (Emit& e : sub.emits) {
    e.off += delta;
    e.done_off += delta;
    for (int& x : e.expects)
      x += base;
    into.emits.push_back(std::move(e));
  }
  for (Use& u : sub.uses) {
    u.off += delta;
    into.uses.push_back(u);
  }
  for (auto& [t, off] : sub.reads)
    into.reads.push_back({t, off + delta});
  const auto d = static_cast<std::uint64_t>(std::max<std::int64_t>(0, delta));
  into.lo = std::max(into.lo, sub.lo > d ? sub.lo - d : 0);
  return base;
}

void Scheduler::place_off(int d, const std::vector<int>& ins) {
  if (P(d).placed) return;
  for (bool constants : {true, false}) {
    std::vector<std::uint16_t> avoid;
    for (int t : ins)
      if (t >= 0 && P(t).placed && !P(t).chunked &&
          (constants ||
           k_.tensors[static_cast<std::size_t>(root(t))].role != KTensor::Role::kConstant))
        for (auto sl : slices_of(t))
          avoid.push_back(sl);
    try {
      place(d, avoid);
      return;
    } catch (const InputError&) {
    }
  }
  place(d);
}

std::vector<const KStep*> Scheduler::chain_steps(std::size_t first) const {
  std::vector<const KStep*> c;
  for (std::size_t j = first; j < first + chain_len_[first]; ++j)
    c.push_back(&k_.steps[j]);
  return c;
}

Scheduler::SumChain& Scheduler::prepare_chain(std::size_t first) {
  SumChain& sc = sum_chains_[first];
  if (sc.prepared) return sc;
  sc.prepared = true;
  const std::vector<const KStep*> c = chain_steps(first);
  // The results it writes keep off every operand it reads; then the values only passed along
  // get room too, so that a part can always run step by step.
  std::vector<int> ins;
  for (const KStep* st : c)
    ins.insert(ins.end(), {st->a, st->b, st->mask});
  for (std::size_t j = 0; j < c.size(); ++j)
    if (j + 1 == c.size() || chain_write_[static_cast<std::size_t>(c[j]->d)])
      place_off(c[j]->d, ins);
  for (const KStep* st : c)
    place_off(st->d, {st->a, st->b, st->mask});
  sc.copies = kReplicas;
  for (const KStep* st : c)
    for (int t : {st->a, st->b, st->mask})
      if (t >= 0 && broadcast_of(*st, t))
        sc.copies = std::min<int>(sc.copies, 1 + static_cast<int>(P(t).replicas.size()));
  return sc;
}

void Scheduler::vxm_chain(std::size_t first) {
  const std::vector<const KStep*> c = chain_steps(first);
  const SumChain& sc = prepare_chain(first);
  const KStep& last = *c.back();
  const bool classes = classed(c);
  bool split = splittable(last) && (P(last.d).chunked || classes);
  for (const KStep* st : c)
    for (int t : {st->a, st->b, st->mask})
      if (t >= 0 && broadcast_of(*st, t) && (P(t).chunked || P(t).t16 || P(t).weights))
        split = false;
  std::vector<Part> parts;
  if (split) parts = chunk_parts(last, sc.copies, classes);
  if (parts.empty()) parts.push_back({0, run_rows(last), 0});
  for (const Part& p : parts) {
    if (sc.done.empty()) {
      chain_part(c, p);
      continue;
    }
    // The rows the planes did not stream into the chain, in runs of the part's stride.
    for (std::int64_t i = 0; i < p.rows;) {
      auto done = [&](std::int64_t k) {
        return sc.done[static_cast<std::size_t>(p.first + k * p.stride)];
      };
      if (done(i)) {
        ++i;
        continue;
      }
      std::int64_t e = i;
      while (e < p.rows && !done(e))
        ++e;
      chain_part(c, {p.first + i * p.stride, e - i, p.copy, p.stride});
      i = e;
    }
  }
}

std::optional<Scheduler::ChainFit> Scheduler::best_chain(const std::vector<const KStep*>& c,
                                                         const Part& part, const Op* base,
                                                         SumsIn* sums) {
  std::optional<ChainFit> best;
  const int nalu = static_cast<int>(alus_.size());
  std::vector<std::vector<int>> tried;
  for (bool compact : {false, true})
    for (int a0 = 0; a0 < nalu; ++a0) {
      const std::vector<int> alu = chain_alus(c, a0, compact);
      if (alu.empty() || std::find(tried.begin(), tried.end(), alu) != tried.end()) continue;
      tried.push_back(alu);
      for (int rot = 0; rot < 8; ++rot) {
        Op op = base ? *base : Op{};
        std::vector<ChainWrite> writes;
        if (!chain_op(c, part, alu, rot, op, writes, sums)) continue;
        if (sums)  // the ACC sends the sums on the stream the first ALU reads
          op.emits[static_cast<std::size_t>(sums->producer)].instr.arg[0] =
              isa::stream_arg(sums->stream, sums->west);
        const auto t = fit(op, best ? best->t : ~0ull);
        if (!t) continue;
        if (!best || *t < best->t) best = ChainFit{std::move(op), *t, std::move(writes)};
      }
    }
  return best;
}

void Scheduler::chain_part(const std::vector<const KStep*>& c, const Part& part,
                           std::optional<ChainFit> known) {
  const auto v = static_cast<std::uint32_t>(part.rows);
  std::optional<ChainFit> best = known ? std::move(known) : best_chain(c, part);
  if (!best) {
    if (c.size() > 1) {  // shorter chains need fewer ALUs, streams and slices
      const auto mid = static_cast<std::ptrdiff_t>(c.size() / 2);
      chain_part({c.begin(), c.begin() + mid}, part);
      chain_part({c.begin() + mid, c.end()}, part);
      return;
    }
    vxm_tile(*c[0], 0, part);  // which halves itself when it must
    return;
  }
  // A long part waiting for its many slices, streams and ALUs to be free at once: its halves
  // may fit into shorter gaps, the first one sooner.
  if (part.rows >= 2 * kMinChainRows && best->t > op_lower_bound(best->op)) {
    const std::int64_t r1 = part.rows / 2;
    const Part h1{part.first, r1, part.copy, part.stride};
    const Part h2{part.first + r1 * part.stride, part.rows - r1, part.copy, part.stride};
    if (auto first = best_chain(c, h1); first && first->t < best->t) {
      chain_part(c, h1, std::move(first));
      chain_part(c, h2);
      return;
    }
  }
  commit(best->op, best->t);
  for (const ChainWrite& w : best->writes)
    written(w.t, best->t, w.row0, w.acc);
  vxm_busy_ += static_cast<std::uint64_t>(v) * c.size();
}

std::vector<int> Scheduler::greedy_alus(const std::vector<const KStep*>& c, int a0) const {
  const int nalu = static_cast<int>(alus_.size());
  // ALUs in turn from a0 (large ones where the op needs one), each sharing a stream group
  // with the previous one.
  std::vector<int> alu;
  std::vector<bool> taken(static_cast<std::size_t>(nalu), false);
  bool ok = true;
  for (std::size_t j = 0; j < c.size() && ok; ++j) {
    const isa::OpInfo& info = *isa::by_mnemonic(mnemonic(c[j]->args.op));
    int pick = -1;
    for (int k = 0; k < nalu && pick < 0; ++k) {
      const int x = (a0 + (j ? alu.back() - a0 + 1 : 0) + k) % nalu;
      if (taken[static_cast<std::size_t>(x)]) continue;
      if (info.alu == isa::AluNeed::kLarge && !chip_.vxm.is_large(x)) continue;
      if (j) {
        const auto p4 = alu_streams(alu.back(), 4), x4 = alu_streams(x, 4);
        if (std::none_of(p4.begin(), p4.end(),
                         [&](int s4) { return std::find(x4.begin(), x4.end(), s4) != x4.end(); }))
          continue;
      }
      pick = x;
    }
    if (pick < 0)
      ok = false;
    else {
      alu.push_back(pick);
      taken[static_cast<std::size_t>(pick)] = true;
    }
  }
  if (!ok) alu.clear();
  return alu;
}

std::vector<int> compact_alus(const arch::Chip& chip, const std::vector<bool>& large_op, int a0) {
  const arch::Chip::Vxm& vx = chip.vxm;
  const int nalu = vx.alus(), ranks = vx.ranks, rows = std::max(1, nalu / ranks);
  int large_left = 0;  // steps from j on that need a large ALU
  for (bool l : large_op)
    large_left += l ? 1 : 0;
  auto share = [&](int a, int b) {  // a stream group both ALUs' rows reach
    const auto& ga = vx.row_stream_groups[static_cast<std::size_t>(a / ranks)];
    const auto& gb = vx.row_stream_groups[static_cast<std::size_t>(b / ranks)];
    return std::any_of(ga.begin(), ga.end(),
                       [&](int g) { return std::find(gb.begin(), gb.end(), g) != gb.end(); });
  };
  // Depth first: each step on an ALU sharing a stream group with the previous step's, in the
  // same row of ALUs where it can (then the next rows, cyclically), a small ALU where the step
  // can use one.
  std::vector<int> alu;
  std::vector<bool> taken(static_cast<std::size_t>(nalu), false);
  int large_free = 0;
  for (int x = 0; x < nalu; ++x)
    large_free += vx.is_large(x) ? 1 : 0;
  int tries = 0;
  std::function<bool(std::size_t)> pick = [&](std::size_t j) {
    if (j == large_op.size()) return true;
    if (++tries > 4096) return false;  // a bound: ALUs are few, but chains may be long
    const int from = j ? alu.back() : a0;
    std::vector<std::pair<int, int>> order;  // (preference, ALU)
    for (int x = 0; x < nalu; ++x) {
      const bool large = vx.is_large(x);
      if (taken[static_cast<std::size_t>(x)] || (large_op[j] && !large)) continue;
      if (j && !share(alu.back(), x)) continue;
      // enough large ALUs must stay for the later steps that need one
      if (large_free - (large ? 1 : 0) < large_left - (large_op[j] ? 1 : 0)) continue;
      const int row_step = ((x / ranks - from / ranks) % rows + rows) % rows;
      const int in_row = ((x % ranks - from % ranks) % ranks + ranks) % ranks;
      order.push_back({(row_step * 2 + (large && !large_op[j] ? 1 : 0)) * ranks + in_row, x});
    }
    std::sort(order.begin(), order.end());
    for (const auto& [unused, x] : order) {
      (void)unused;
      const bool large = vx.is_large(x);
      taken[static_cast<std::size_t>(x)] = true;
      alu.push_back(x);
      large_free -= large ? 1 : 0;
      large_left -= large_op[j] ? 1 : 0;
      if (pick(j + 1)) return true;
      taken[static_cast<std::size_t>(x)] = false;
      alu.pop_back();
      large_free += large ? 1 : 0;
      large_left += large_op[j] ? 1 : 0;
    }
    return false;
  };
  if (!pick(0)) alu.clear();
  return alu;
}

std::vector<int> Scheduler::chain_alus(const std::vector<const KStep*>& c, int a0,
                                       bool compact) const {
  if (!compact) return greedy_alus(c, a0);
  std::vector<bool> large_op;
  for (const KStep* st : c)
    large_op.push_back(isa::by_mnemonic(mnemonic(st->args.op))->alu == isa::AluNeed::kLarge);
  return compact_alus(chip_, large_op, a0);
}

bool Scheduler::chain_op(const std::vector<const KStep*>& c, const Part& part,
                         const std::vector<int>& alu, int rot, Op& op,
                         std::vector<ChainWrite>& writes, SumsIn* sums) {
  const auto v = static_cast<std::uint32_t>(part.rows);
  // rot 4 .. 7: values only passed along take the direction with fewer streams taken so far
  // (either serves: they are written and read at the VXM alone).
  const bool balance = rot >= 4;
  bool ok = true;
  std::map<bool, std::vector<std::pair<int, int>>> used;  // direction -> (first, size)
  auto take = [&](int a, bool west, int group, int also) -> int {
    auto cand = alu_streams(a, group, rot % 4);
    if (also >= 0) {
      const auto other = alu_streams(also, group);
      cand.erase(std::remove_if(cand.begin(), cand.end(),
                                [&](int st) {
                                  return std::find(other.begin(), other.end(), st) == other.end();
                                }),
                 cand.end());
    }
    const int st = first_free(cand, group, used[west]);
    ok = ok && st >= 0;
    return std::max(st, 0);
  };
  std::int64_t at = 0;  // access cycle of step j's ALU (from T)
  int prev_emit = -1;
  std::uint32_t prev_arg = 0;
  for (std::size_t j = 0; j < c.size() && ok; ++j) {
    const KStep& s = *c[j];
    const int g_in = isa::dtype_bytes(s.args.type);
    const int g_out = s.args.op == func::VxmOp::kCast ? isa::dtype_bytes(s.args.to) : g_in;
    const auto& vx = lat(mnemonic(s.args.op));
    std::vector<int> ins;
    if (s.mask >= 0) ins.push_back(s.mask);
    ins.push_back(s.a);
    if (s.b >= 0) ins.push_back(s.b);
    Op sub;
    std::vector<int> producers;
    std::vector<std::uint32_t> args;
    std::map<std::pair<int, std::int64_t>, std::uint32_t> read_once;
    for (int t : ins) {
      if (j > 0 && root(t) == c[j - 1]->d) {
        args.push_back(prev_arg);
        producers.push_back(prev_emit);
        continue;
      }
      if (sums && j == 0 && root(t) == sums->t) {  // from the plane, at the VXM in T + i
        const int st = take(alu[0], sums->west, g_in, -1);
        if (!ok) break;
        sums->stream = st;
        for (int b = 0; b < g_in; ++b)
          use_stream(op, st + b, sums->west, key_const(sums->west, vxm_pos_), v, sums->from,
                     vxm_pos_);
        args.push_back(isa::stream_arg(st, sums->west));
        producers.push_back(sums->producer);
        continue;
      }
      const std::int64_t from = operand_row(s, t) + part.first;
      if (auto it = read_once.find({root(t), from}); it != read_once.end()) {
        args.push_back(it->second);
        continue;
      }
      const bool west = !P(t).west;  // toward the VXM
      const int st = take(alu[j], west, g_in, -1);
      if (!ok) break;
      const bool bc = broadcast_of(s, t);
      const std::vector<int> ids =
          bc ? read_broadcast(sub, t, part.copy, part.first, v, step_rows(s), st, vxm_pos_,
                              part.stride)
             : read_rows(sub, t, from, v, false, st, vxm_pos_, 1, part.stride);
      args.push_back(isa::stream_arg(st, west));
      read_once[{root(t), from}] = args.back();
      for (int id : ids)
        producers.push_back(-2 - id);  // sub's emits: renumbered below
    }
    if (!ok) break;
    const int base = merge_shifted(op, std::move(sub), at);
    for (int& id : producers)
      if (id <= -2) id = base + (-2 - id);
    const bool last = j + 1 == c.size();
    const bool write = last || chain_write_[static_cast<std::size_t>(s.d)];
    bool west_out = P(s.d).west;
    if (balance && !write) {
      int n[2] = {0, 0};
      for (int w = 0; w < 2; ++w)
        for (auto [first, size] : used[w == 1])
          n[w] += size;
      west_out = n[1] < n[0];
    }
    const int dst = take(alu[j], west_out, g_out, last ? -1 : alu[j + 1]);
    if (!ok) break;
    args.push_back(isa::stream_arg(dst, west_out));
    const std::uint16_t aq = alus_[static_cast<std::size_t>(alu[j])];
    use_queue(op, aq, at - vx.d_skew, v);
    Emit e;
    e.queue = aq;
    e.off = at - vx.d_skew;
    e.instr = alu_instr(s, args);
    e.count = v;
    e.done_off = at + vx.d_func + sl_ - 1;
    e.expects = producers;
    const int alu_emit = static_cast<int>(op.emits.size());
    op.emits.push_back(std::move(e));
    const std::size_t first_use = op.uses.size();
    if (write) {
      writes.push_back({s.d, result_row(s) + part.first, {}});
      write_rows(op, s.d, result_row(s) + part.first, v, dst, vxm_pos_, at + vx.d_func, alu_emit,
                 &writes.back().acc, 1, 0, 1, part.stride);
    } else {
      for (int b = 0; b < g_out; ++b)  // the stream at the VXM only: the next ALU reads it
        use_stream(op, dst + b, west_out, at + vx.d_func + key_const(west_out, vxm_pos_), v,
                   vxm_pos_, vxm_pos_);
    }
    merge_stream_uses(op, first_use);
    prev_emit = alu_emit;
    prev_arg = isa::stream_arg(dst, west_out);
    at += vx.d_func;
  }
  return ok;
}

isa::Instr Scheduler::alu_instr(const KStep& s, const std::vector<std::uint32_t>& args) const {
  const char* mn = mnemonic(s.args.op);
  const isa::OpInfo& info = *isa::by_mnemonic(mn);
  isa::Instr in = instr(mn);
  in.mod[0] = mod_code(isa::ModKind::kDtype, isa::to_string(s.args.type));
  if (info.mods[1] == isa::ModKind::kOvf && isa::is_integer(s.args.type))
    in.mod[1] = mod_code(isa::ModKind::kOvf, s.args.saturate ? "sat" : "mod");
  if (s.args.op == func::VxmOp::kCast)
    in.mod[1] = mod_code(isa::ModKind::kDtype, isa::to_string(s.args.to));
  if (info.mods[1] == isa::ModKind::kCmp)
    in.mod[1] = mod_code(isa::ModKind::kCmp, func::vxm_op_info(s.args.op).cmp);
  for (std::size_t i = 0; i < args.size(); ++i)
    in.arg[i] = args[i];
  return in;
}

bool Scheduler::splittable(const KStep& s) const {
  const auto two = 2 * static_cast<std::uint64_t>(chip_.mxm.accumulators);
  if (s.kind != KStep::Kind::kVxm || !s.deal.empty() || s.d < 0) return false;
  if (!s.rows) return rows_of(s.d) > two;
  return static_cast<std::uint64_t>(s.rows) > two &&
         k_.tensors[static_cast<std::size_t>(s.d)].tiles(lanes_) == 1;
}

void Scheduler::replicate(int t) {
  TensorPlace& p = place_[static_cast<std::size_t>(t)];
  if (!p.replicas.empty() || p.slices.empty()) return;
  const auto width = p.slices.size();
  std::vector<std::uint16_t> taken = p.slices;
  for (int r = 1; r < kReplicas; ++r) {
    std::vector<std::uint16_t> cand;
    for (auto c : p.west ? west_ : east_)
      if (std::find(taken.begin(), taken.end(), c) == taken.end()) cand.push_back(c);
    std::stable_sort(cand.begin(), cand.end(),
                     [&](std::uint16_t a, std::uint16_t b) { return live_[a] < live_[b]; });
    if (cand.size() < width) return;
    const std::vector<std::uint16_t> pick(cand.begin(), cand.begin() + static_cast<long>(width));
    const auto found = find_base(pick, p.vectors);
    if (!found) return;
    allocate(pick, found->first, p.vectors);
    p.replicas.push_back({pick, static_cast<std::uint32_t>(found->first)});
    taken.insert(taken.end(), pick.begin(), pick.end());
  }
}

std::vector<std::pair<std::int64_t, std::int64_t>> Scheduler::chunk_bounds(int t) const {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (const auto& c : P(t).chunks)
    out.push_back({c.first, c.rows});
  return out;
}

std::vector<int> Scheduler::alu_streams(int alu, int group, int rot) const {
  std::vector<int> out;
  const int row = alu / chip_.vxm.ranks;
  for (int g : chip_.vxm.row_stream_groups[static_cast<std::size_t>(row)])
    for (int s = 4 * g; s < 4 * g + 4; s += group)
      out.push_back(s);
  if (rot && !out.empty())
    std::rotate(out.begin(),
                out.begin() + static_cast<long>((static_cast<std::size_t>(rot) * out.size() / 4) %
                                                out.size()),
                out.end());
  return out;
}

std::vector<std::uint16_t> Scheduler::slices_of(int t) const {
  const TensorPlace& p = P(t);
  std::vector<std::uint16_t> out = p.chunked ? std::vector<std::uint16_t>{} : p.slices;
  for (const auto& c : p.chunks)
    out.insert(out.end(), c.slices.begin(), c.slices.end());
  for (const auto& r : p.replicas)
    out.insert(out.end(), r.first.begin(), r.first.end());
  return out;
}

void Scheduler::vxm_step(const KStep& s) {
  if (!P(s.d).placed) {
    // Keep the result out of the operands' slices (chunked ones: place() does, chunk by chunk).
    std::vector<std::uint16_t> avoid;
    for (int t : {s.a, s.b, s.mask})
      if (t >= 0 && !P(t).chunked)
        for (auto sl : slices_of(t))
          avoid.push_back(sl);
    // Dealt results all go to one hemisphere: the one with more room.
    int side = -1;
    if (!s.deal.empty()) {
      std::uint64_t room[2] = {0, 0};
      for (int h = 0; h < 2; ++h)
        for (auto sl : h == 0 ? west_ : east_)
          room[h] += static_cast<std::uint64_t>(chip_.mem.depth) - live_[sl];
      side = room[0] >= room[1] ? 0 : 1;
    }
    try {
      place(s.d, avoid, side);
    } catch (const InputError&) {  // short of room: share slices with the operands
      if (avoid.empty()) throw;
      place(s.d, {}, side);
    }
  }
  // Dealt results leave the ALU on one stream: every destination in d's hemisphere, on
  // slices of its own (their writes interleave).
  std::vector<std::uint16_t> avoid;
  for (int o : {s.a, s.b, s.mask})
    if (o >= 0)
      for (auto sl : slices_of(o))
        avoid.push_back(sl);
  for (const auto& [t, unused] : s.deal) {
    (void)unused;
    if (P(t).placed) {
      for (auto sl : slices_of(t))
        avoid.push_back(sl);
      if (P(t).west != P(s.d).west)
        throw std::logic_error("dealt results '" + name(s.d) + "' and '" + name(t) +
                               "' were placed in different hemispheres");
      continue;
    }
    try {
      place(t, avoid, P(s.d).west ? 0 : 1);
    } catch (const InputError&) {  // short of room: share slices with the operands
      std::vector<std::uint16_t> others;
      for (const auto& [o, unused2] : s.deal) {
        (void)unused2;
        if (P(o).placed)
          for (auto sl : slices_of(o))
            others.push_back(sl);
      }
      place(t, others, P(s.d).west ? 0 : 1);
    }
    for (auto sl : slices_of(t))
      avoid.push_back(sl);
    if (P(t).west != P(s.d).west)
      throw InputError(source_, "no room for '" + name(t) + "' in the hemisphere of '" + name(s.d) +
                                    "' (MEM is too full; live now: " + live_mib() + ")");
  }
  if (splittable(s) && (P(s.d).chunked || classed({&s}))) {
    // Part by part, a chunk of the result each, on several ALUs at once: when no operand is
    // the result and every broadcast one is a contiguous tensor (read from its copies in turn).
    // Streamed operands are read where the part's rows are (across their chunks when those
    // do not line up with the result's; their slices' ports then decide what overlaps).
    bool ok = true;
    int copies = kReplicas;
    for (int t : {s.a, s.b, s.mask}) {
      if (t < 0) continue;
      if (root(t) == root(s.d)) ok = false;
      if (broadcast_of(s, t)) {
        const TensorPlace& tp = P(t);
        copies = std::min<int>(copies, 1 + static_cast<int>(tp.replicas.size()));
        if (tp.chunked || tp.t16 || tp.weights) ok = false;
      }
    }
    const std::vector<Part> parts =
        ok ? chunk_parts(s, copies, classed({&s})) : std::vector<Part>{};
    if (parts.size() > 1) {
      for (const Part& p : parts)
        vxm_tile(s, 0, p);
      return;
    }
  }
  const std::int64_t tiles = k_.tensors[static_cast<std::size_t>(s.d)].tiles(lanes_);
  if (!s.rows || tiles == 1) {
    vxm_tile(s, 0);
    return;
  }
  for (std::int64_t t = 0; t < tiles; ++t)
    vxm_tile(s, t);
}

void Scheduler::vxm_tile(const KStep& s, std::int64_t tile, std::optional<Part> part) {
  auto first_row = [&](int t, std::int64_t row) {
    if (part) return (s.rows ? row : 0) + part->first;
    return s.rows ? tile * logical_rows(t) + row : 0;
  };
  const std::int64_t a_row = first_row(s.a, s.a_row);
  const std::int64_t b_row = s.b >= 0 ? first_row(s.b, s.b_row) : 0;
  const std::uint32_t v = static_cast<std::uint32_t>(part     ? part->rows
                                                     : s.rows ? s.rows
                                                              : rows_of(s.d));
  // Where the results go: rows of d, or dealt round-robin over several tensors.
  std::vector<std::pair<int, std::int64_t>> dests;
  if (s.deal.empty()) dests.push_back({s.d, first_row(s.d, s.d_row)});
  for (const auto& [t, row] : s.deal)
    dests.push_back({t, first_row(t, row)});
  const auto n_dest = static_cast<std::uint32_t>(dests.size());
  std::vector<int> ins;
  if (s.mask >= 0) ins.push_back(s.mask);
  ins.push_back(s.a);
  if (s.b >= 0) ins.push_back(s.b);
  const int g_in = isa::dtype_bytes(s.args.type);
  const int g_out = s.args.op == func::VxmOp::kCast ? isa::dtype_bytes(s.args.to) : g_in;
  const char* mn = mnemonic(s.args.op);
  const isa::OpInfo& info = *isa::by_mnemonic(mn);
  const auto& vx = lat(mn);
  std::optional<std::pair<Op, std::uint64_t>> best;
  std::vector<std::vector<Written>> best_acc;
  std::uint64_t floor = ~0ull;  // no candidate can start earlier than its own lower bound
  for (std::size_t alu = 0; alu < alus_.size(); ++alu) {
    if (info.alu == isa::AluNeed::kLarge && !chip_.vxm.is_large(static_cast<int>(alu))) continue;
    for (int rot = 0; rot < 4; ++rot) {
      std::map<bool, std::vector<std::pair<int, int>>> used;  // direction -> (first, size)
      bool ok = true;
      auto take = [&](bool west, int group) -> int {
        const auto cand = alu_streams(static_cast<int>(alu), group, rot);
        const int st = first_free(cand, group, used[west]);
        ok = ok && st >= 0;
        return std::max(st, 0);
      };
      Op op;
      std::vector<int> producers;
      std::vector<std::uint32_t> args;
      // An operand used twice (same tensor, same rows) is read once.
      std::map<std::pair<int, std::int64_t>, std::uint32_t> read_once;
      for (std::size_t oi = 0; oi < ins.size(); ++oi) {
        const int t = ins[oi];
        // ins is [mask,] a [, b]: their first rows when the step writes a row range.
        const std::size_t ia = s.mask >= 0 ? 1 : 0;
        const std::int64_t from = oi == ia                   ? a_row
                                  : s.b >= 0 && oi == ia + 1 ? b_row
                                  : part                     ? part->first
                                                             : 0;
        if (auto it = read_once.find({root(t), from}); it != read_once.end()) {
          args.push_back(it->second);
          continue;
        }
        const TensorPlace& tp = P(t);
        const bool west = !tp.west;  // toward the VXM
        const int st = take(west, g_in);
        const bool bc = broadcast_of(s, t);
        const std::int64_t rs = part ? part->stride : 1;
        for (int id : part&& bc ? read_broadcast(op, t, part->copy, part->first, v, step_rows(s),
                                                 st, vxm_pos_, rs)
                                : read_rows(op, t, from, v, bc, st, vxm_pos_, 1, rs))
          producers.push_back(id);
        args.push_back(isa::stream_arg(st, west));
        read_once[{root(t), from}] = args.back();
      }
      const TensorPlace& dp = P(s.d);
      const int dst = take(dp.west, g_out);
      if (!ok) continue;
      args.push_back(isa::stream_arg(dst, dp.west));
      const std::uint16_t aq = alus_[alu];
      use_queue(op, aq, -vx.d_skew, v);
      Emit e;
      e.queue = aq;
      e.off = -vx.d_skew;
      e.instr = alu_instr(s, args);
      e.count = v;
      e.done_off = vx.d_func + sl_ - 1;
      e.expects = producers;
      const int alu_emit = static_cast<int>(op.emits.size());
      op.emits.push_back(std::move(e));
      std::vector<std::vector<Written>> acc(n_dest);
      const std::size_t first_use = op.uses.size();
      for (std::uint32_t p = 0; p < n_dest && p < v; ++p)
        write_rows(op, dests[p].first, dests[p].second, (v - p + n_dest - 1) / n_dest, dst,
                   vxm_pos_, vx.d_func + p, alu_emit, &acc[p], n_dest, p, n_dest,
                   part ? part->stride : 1);
      merge_stream_uses(op, first_use);
      const auto t = fit(op);
      if (!t) continue;
      floor = std::min(floor, op_lower_bound(op));
      if (!best || *t < best->second) {
        best = {op, *t};
        best_acc = acc;
      }
    }
    if (best && best->second == floor) break;
  }
  if (!best && v > n_dest) {
    // No ALU fits the whole pipeline: an operand and the result share a slice whose queue
    // cannot read and write at once for the pipeline's length. Halves fit sooner (single
    // rows always do: their read and write come in different cycles).
    const std::uint32_t half = (v / 2 + n_dest - 1) / n_dest * n_dest;
    if (!s.rows || part) {
      const Part whole = part ? *part : Part{0, static_cast<std::int64_t>(v), 0};
      vxm_tile(s, tile, Part{whole.first, half, whole.copy, whole.stride});
      vxm_tile(
          s, tile,
          Part{whole.first + half * whole.stride, whole.rows - half, whole.copy, whole.stride});
      return;
    }
    KStep lo = s, hi = s;
    lo.rows = half;
    hi.rows = s.rows - half;
    hi.a_row += half;
    hi.b_row += half;
    hi.d_row += half / n_dest;
    for (auto& dd : hi.deal)
      dd.second += half / n_dest;
    vxm_tile(lo, tile);
    vxm_tile(hi, tile);
    return;
  }
  if (!best)
    no_fit(s.origin, std::string("the VXM step (") + func::to_string(s.args.op) + " into '" +
                         name(s.d) + "') has no ALU whose streams can carry its operands");
  commit(best->first, best->second);
  for (std::uint32_t p = 0; p < n_dest && p < v; ++p)
    written(dests[p].first, best->second, dests[p].second, best_acc[p]);
  vxm_busy_ += v;
}

void Scheduler::exchange_step(const KStep& s) {
  if (chips_ < 2 || send_q_.size() != static_cast<std::size_t>(chips_))
    throw std::logic_error("scheduler: an exchange step in a program for one chip");
  if (!P(s.d).placed) {
    try {
      place(s.d, slices_of(s.a));
    } catch (const InputError&) {
      place(s.d);
    }
  }
  const TensorPlace& pa = P(s.a);
  const TensorPlace& pd = P(s.d);
  if (pa.t16 || pa.weights || pa.chunked || pd.t16 || pd.weights || pd.chunked)
    throw InputError(source_, s.origin + ": the rows exchanged between chips ('" + name(s.a) +
                                  "' to '" + name(s.d) +
                                  "') must each fit one range of MEM addresses (too large)");
  const int bytes = isa::dtype_bytes(k_.tensors[static_cast<std::size_t>(s.a)].dtype);
  const std::int64_t p = s.exch_rows;
  const std::int64_t tiles = k_.tensors[static_cast<std::size_t>(s.a)].tiles(lanes_);
  const std::int64_t a_rows = logical_rows(s.a), d_rows = logical_rows(s.d);
  const auto flight = static_cast<std::int64_t>(func::LinkTiming(arch_).arrival(0));
  const auto& wr = lat("write");
  const auto& rc = lat("recv");
  const auto ua = static_cast<std::uint32_t>(p);
  for (std::int64_t t = 0; t < tiles; ++t)
    for (std::int64_t r = 0; r < p; ++r)
      for (int b = 0; b < bytes; ++b)
        for (int k = 0; k < chips_; ++k) {
          // Chip 0's rows; other chips' differ by a whole slot (Emit::spmd_*).
          const auto src = static_cast<std::uint32_t>(t * a_rows + (s.scatter ? k * p : 0) + r);
          const auto dst = static_cast<std::uint32_t>(t * d_rows + ((chips_ - k) % chips_) * p + r);
          const arch::Queue& sa = q(pa.slices[static_cast<std::size_t>(b)]);
          const arch::Queue& sd = q(pd.slices[static_cast<std::size_t>(b)]);
          std::optional<std::pair<Op, std::uint64_t>> best;
          for (int st = 0; st < chip_.streams.per_direction; ++st) {
            Op op;
            auto slot = [&](Emit& e, int sign) {  // the chip-dependent slot (Emit::spmd_*)
              e.spmd_sign = sign;
              e.spmd_round = k;
              e.spmd_unit = ua;
            };
            if (k == 0) {
              // The chip's own slot: read and written again (the value leaves a's slice in T;
              // the write claims the whole stream path).
              const int id =
                  read_vector(op, s.a, sa.id, pa.addr + src, st,
                              sa.position + (sd.position < sa.position ? -1 : 1), 1, false);
              if (s.scatter) slot(op.emits[static_cast<std::size_t>(id)], 1);
              write_vector(op, s.d, sd.id, pd.addr + dst, st, sa.position, 0, id);
            } else {
              const arch::Queue& tx = q(send_q_[static_cast<std::size_t>(k)]);
              const arch::Queue& rx = q(recv_q_[static_cast<std::size_t>(k)]);
              const int id = read_vector(op, s.a, sa.id, pa.addr + src, st, tx.position, 0);
              if (s.scatter) slot(op.emits[static_cast<std::size_t>(id)], 1);
              // The frame leaves in T and arrives in T + flight, when the far chip's receive
              // runs (every chip runs this timetable).
              send_vector(op, tx, 0, id);
              const int got =
                  recv_vector(op, rx, flight, isa::stream_arg(st, sd.position < rx.position));
              write_vector(op, s.d, sd.id, pd.addr + dst, st, rx.position, flight + rc.d_func, got);
            }
            slot(op.emits.back(), -1);  // the write
            const auto at = fit(op, best ? best->second : ~0ull);
            if (!at) continue;
            if (!best || *at < best->second) best = {op, *at};
            if (best->second == op_lower_bound(best->first)) break;
          }
          if (!best) no_fit(s.origin, "no stream carries the exchange");
          commit(best->first, best->second);
          written_at(s.d, best->second +
                              static_cast<std::uint64_t>(best->first.emits.back().off + wr.d_skew));
        }
}

}  // namespace lpu::compiler::scheduling
