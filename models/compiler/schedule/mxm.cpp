// MXM products: weight loads and installs, activations, accumulation, results to MEM.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

isa::Instr Scheduler::patched(const Block& b, int chip) const {
  isa::Instr in = b.instr;
  if (b.spmd_sign == 0 || chip == 0) return in;
  auto slot = [&](int c) {
    return static_cast<std::int64_t>(((c + b.spmd_sign * b.spmd_round) % chips_ + chips_) % chips_);
  };
  in.arg[0] = static_cast<std::uint32_t>(static_cast<std::int64_t>(in.arg[0]) +
                                         (slot(chip) - slot(0)) * b.spmd_unit);
  return in;
}

std::vector<std::uint64_t> Scheduler::entry_cycles(std::uint16_t queue) const {
  std::vector<std::uint64_t> out;
  for (const Block& b : blocks_) {
    if (b.queue != queue) continue;
    out.push_back(b.dispatch);
    if (b.count > 1 && !b.self_counted) {
      if (b.separate)
        for (std::uint32_t i = 1; i < b.count; ++i)
          out.push_back(b.dispatch + static_cast<std::uint64_t>(i) * b.stride);
      else
        out.push_back(b.dispatch + b.stride);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t Scheduler::op_lower_bound(const Op& op) const {
  std::int64_t lo = static_cast<std::int64_t>(op.lo);
  for (const Use& u : op.uses)
    lo = std::max(lo, -u.off);
  for (const Emit& e : op.emits)
    lo = std::max(lo, -e.off);
  return static_cast<std::uint64_t>(lo);
}

std::vector<Busy>& Scheduler::busy_of(Use::Kind k) {
  return k == Use::Kind::kQueue   ? busy_
         : k == Use::Kind::kPort  ? port_
         : k == Use::Kind::kRead  ? read_
         : k == Use::Kind::kWrite ? write_
                                  : bank_;
}

void Scheduler::check_product(const KStep& s) {
  auto in_rows = [&](int t, std::int64_t row0, std::int64_t stride) {
    if (stride < 1 || row0 < 0 || row0 + (s.m - 1) * stride >= logical_rows(t))
      throw std::logic_error("scheduler: " + s.origin + ": product rows " + std::to_string(row0) +
                             " + i x " + std::to_string(stride) + " outside '" + name(t) + "'");
  };
  in_rows(s.d, s.d_row, s.d_stride);
  for (const KPass& ps : s.passes)
    in_rows(ps.x, ps.x_row, ps.x_stride);
  // Sums a chain takes from the planes may never need MEM (accumulate places them if so).
  if (!P(s.d).placed && sum_chain_[static_cast<std::size_t>(root(s.d))] < 0) place(s.d);
}

void Scheduler::matmul_step(const KStep& s) {
  check_product(s);
  Plane& pl = planes_[free_plane()];
  for (std::size_t pass = 0; pass < s.passes.size(); ++pass) {
    const KPass& ps = s.passes[pass];
    const std::uint64_t weights_in = load_weights(s, ps, pl);
    accumulate(s, pass, pl, stream_activations(s, ps, {&pl}, {weights_in}).at(0));
  }
}

bool Scheduler::shares_activations(const KStep& a, const KStep& b) const {
  if (a.kind != KStep::Kind::kMatMul || b.kind != KStep::Kind::kMatMul || a.m != b.m ||
      a.mm_type != b.mm_type || a.passes.size() != b.passes.size())
    return false;
  for (std::size_t k = 0; k < a.passes.size(); ++k) {
    const KPass& p = a.passes[k];
    const KPass& q = b.passes[k];
    if (p.window || q.window || p.x != q.x || p.x_row != q.x_row || p.x_stride != q.x_stride ||
        p.x_tile != q.x_tile || root(p.x) == root(a.d))
      return false;
  }
  return true;
}

void Scheduler::matmul_pair(const KStep& a, const KStep& b) {
  check_product(a);
  check_product(b);
  // The two planes free soonest of one side (the side where the later of them is free
  // sooner); `near` is the one the activations reach first (nearer the VXM: MEM lies between
  // the planes and the VXM).
  const auto half = planes_.size() / 2;
  std::vector<std::size_t> pick;
  std::uint64_t best_ready = ~0ull;
  for (std::size_t side = 0; side < 2; ++side) {
    std::vector<std::size_t> its;
    for (std::size_t i = side * half; i < side * half + half; ++i)
      its.push_back(i);
    std::stable_sort(its.begin(), its.end(), [&](std::size_t x, std::size_t y) {
      return plane_ready(planes_[x]) < plane_ready(planes_[y]);
    });
    its.resize(2);
    const std::uint64_t r = plane_ready(planes_[its[1]]);
    if (r < best_ready) best_ready = r, pick = its;
  }
  std::sort(pick.begin(), pick.end(), [&](std::size_t x, std::size_t y) {
    return dist(planes_[x].position, vxm_pos_) < dist(planes_[y].position, vxm_pos_);
  });
  Plane& near = planes_[pick[0]];
  Plane& far = planes_[pick[1]];
  for (std::size_t pass = 0; pass < a.passes.size(); ++pass) {
    const std::uint64_t in_near = load_weights(a, a.passes[pass], near);
    const std::uint64_t in_far = load_weights(b, b.passes[pass], far);
    const auto t_abc = stream_activations(a, a.passes[pass], {&near, &far}, {in_near, in_far});
    accumulate(a, pass, near, t_abc.at(0));
    accumulate(b, pass, far, t_abc.at(1));
  }
}

std::uint64_t Scheduler::plane_ready(const Plane& p) {
  const std::uint64_t r = std::max(p.last_abc, p.install_end);
  return p.buf_free.empty() ? r : std::max(r, p.buf_free[p.next_buf]);
}

std::size_t Scheduler::free_plane() const {
  std::size_t pi = 0;
  for (std::size_t i = 1; i < planes_.size(); ++i)
    if (plane_ready(planes_[i]) < plane_ready(planes_[pi])) pi = i;
  return pi;
}

std::uint64_t Scheduler::load_weights(const KStep& s, const KPass& ps, Plane& pl) {
  const int xb = isa::dtype_bytes(s.mm_type);
  const int per = 16 / xb;
  const auto nlw_all = static_cast<std::uint32_t>(chip_.mxm.rows / per);
  const auto& ws = lat("iw.str");
  const bool staged = !pl.buf_free.empty();  // else weights go straight into the array
  // Rows to load: int8 loads only the pass's rows (the others are stale, but meet zero
  // activation lanes, and integer products of zero are zero). fp16 rows past K must be zero:
  // a cleared staging buffer gives them when that is quicker than loading the plane's zero
  // rows, else every row is loaded.
  // A window pass clears the buffer always and loads its rows at plane row w_at.
  const auto nlw_k = static_cast<std::uint32_t>((ps.k + per - 1) / per);
  const bool clear =
      ps.window || (xb == 2 && staged && nlw_k < nlw_all &&
                    static_cast<std::uint32_t>(chip_.mxm.clear_cycles) + nlw_k <= nlw_all);
  const auto nlw = xb == 1 || clear ? nlw_k : nlw_all;
  const std::size_t buf = staged ? pl.next_buf : 0;
  if (staged) pl.next_buf = (pl.next_buf + 1) % pl.buf_free.size();
  // Operations are anchored at their access cycle (T; dispatch T - d_skew).
  std::uint64_t load_from = staged ? pl.buf_free[buf] : 0;
  // One instruction on the plane's weight queue about staging buffer buf, no earlier than lo;
  // the cycle its effect is done.
  auto on_buffer = [&](const char* mn, std::uint64_t lo) {
    const auto& l = lat(mn);
    Op op;
    op.lo = lo;
    use_queue(op, pl.wt, -l.d_skew, 1);
    Emit e;
    e.queue = pl.wt;
    e.off = -l.d_skew;
    e.instr = instr(mn);
    e.instr.arg[0] = static_cast<std::uint32_t>(buf);
    e.done_off = l.d_func + sl_ - 1;
    op.emits.push_back(std::move(e));
    const std::uint64_t t = *fit(op);
    commit(op, t);
    return t + static_cast<std::uint64_t>(l.d_func);
  };
  if (clear)  // (a0) clear the buffer; the loads follow once it is done.
    load_from = std::max(load_from, on_buffer("clw", pl.buf_free[buf]));
  if (!staged)  // straight into the array: after the activations through the old weights
    load_from = std::max({load_from, pl.last_abc + 1, pl.install_end});
  // (a) the weight rows into the staging buffer (or the array)
  // The last load step's access (its rows are in one cycle later) + 1.
  const std::uint64_t loaded = load_rows(s, ps, pl, buf, nlw, load_from);
  const std::uint64_t last_load = loaded - 1;
  // (b) install from the buffer: after the last load, after the activations through the old
  // weights and after the previous install. The array then takes install_cycles, during which
  // the buffer is read.
  std::uint64_t weights_in;  // the first cycle activations may enter
  if (staged) {
    weights_in = on_buffer("iw.buf", std::max({last_load + 1, pl.last_abc + 1, pl.install_end}));
    pl.buf_free[buf] = weights_in;
  } else {
    weights_in = last_load + static_cast<std::uint64_t>(ws.d_func);
  }
  pl.install_end = weights_in;

  return weights_in;
}

std::uint64_t Scheduler::load_rows(const KStep& s, const KPass& ps, const Plane& pl,
                                   std::size_t buf, std::uint32_t nlw, std::uint64_t load_from) {
  const bool staged = !pl.buf_free.empty();
  if (!staged) {  // straight into the array: in one go
    auto one = fit_load(s, ps, pl, buf, 0, nlw, load_from);
    commit(one.first, one.second);
    return one.second + nlw;
  }
  return load_split(s, ps, pl, buf, 0, nlw, load_from);
}

std::uint64_t Scheduler::load_split(const KStep& s, const KPass& ps, const Plane& pl,
                                    std::size_t buf, std::uint32_t k0, std::uint32_t n,
                                    std::uint64_t load_from) {
  auto whole = fit_load(s, ps, pl, buf, k0, n, load_from);
  // Waiting for 16 slices and 16 streams free at once for n cycles: the first half may fit
  // into a shorter gap sooner (the halves load their rows in either order).
  if (n >= 2 * kMinLoadSteps && whole.second > load_from) {
    const std::uint32_t h = n / 2;
    auto first = fit_load(s, ps, pl, buf, k0, h, load_from);
    if (first.second < whole.second) {
      commit(first.first, first.second);
      return std::max(first.second + h, load_split(s, ps, pl, buf, k0 + h, n - h, load_from));
    }
  }
  commit(whole.first, whole.second);
  return whole.second + n;
}

std::pair<Op, std::uint64_t> Scheduler::fit_load(const KStep& s, const KPass& ps, const Plane& pl,
                                                 std::size_t buf, std::uint32_t k0,
                                                 std::uint32_t nlw, std::uint64_t load_from) {
  const int per = 16 / isa::dtype_bytes(s.mm_type);  // rows a load step brings
  const TensorPlace& wp = P(ps.w);
  const char* type = isa::to_string(s.mm_type);
  const int pm = pl.position;
  const auto& lw = lat("lw");
  const auto& ws = lat("iw.str");
  const auto& rd = lat("read");
  const bool staged = !pl.buf_free.empty();
  auto at_least = [](std::int64_t x) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, x));
  };
  // (a) the weight rows into the staging buffer (or the array): 16 streams, one step a cycle.
  const auto& ld = staged ? lw : ws;
  std::optional<std::pair<Op, std::uint64_t>> best;
  const std::size_t piece = weight_piece(wp, ps.w_row, ps.w_tile);
  // the piece, or a copy of it
  for (std::size_t cp = 0; cp <= wp.piece_copies.size(); ++cp)
    for (int base = 0; base + 16 <= chip_.streams.per_direction; base += 16) {
      Op op;
      const std::vector<std::uint16_t>& slices =
          cp == 0 ? wp.piece_slices : wp.piece_copies[cp - 1].slices;
      const std::uint32_t addr0 =
          (cp == 0 ? wp.piece_addr[piece] : wp.piece_copies[cp - 1].addr[piece]) + k0;
      const bool west = q(slices[16 * piece]).position > pm;  // toward the plane
      std::vector<int> reads;
      for (int j = 0; j < 16; ++j) {
        const arch::Queue& sq = q(slices[16 * piece + static_cast<std::size_t>(j)]);
        const std::int64_t written = -dist(sq.position, pm);
        const std::int64_t access = written - rd.d_func;
        const std::int64_t d = access - rd.d_skew;
        use_queue(op, sq.id, d, nlw);
        use_mem(op, sq.id, false, access, nlw, 1, addr0, addr0 + nlw - 1);
        use_stream(op, base + j, west, written + key_const(west, sq.position), nlw, sq.position,
                   pm);
        Emit e;
        e.queue = sq.id;
        e.off = d;
        e.instr = instr("read");
        e.tensor = root(ps.w);
        e.instr.arg[0] = addr0;
        e.instr.arg[1] = isa::stream_arg(base + j, west);
        e.count = nlw;
        e.done_off = written + sl_ - 1;
        reads.push_back(static_cast<int>(op.emits.size()));
        op.emits.push_back(std::move(e));
        const std::int64_t need = static_cast<std::int64_t>(wp.ready_all) - access;
        op.lo = std::max<std::uint64_t>(op.lo, at_least(need));
      }
      op.lo = std::max(op.lo, load_from);
      use_queue(op, pl.wt, -ld.d_skew, nlw);
      Emit e;
      e.queue = pl.wt;
      e.off = -ld.d_skew;
      e.instr = instr(staged ? "lw" : "iw.str");
      e.instr.mod[0] = mod_code(isa::ModKind::kDtype, type);
      e.instr.arg[0] = isa::stream_arg(base, west);
      e.instr.arg[1] = static_cast<std::uint32_t>((ps.window ? ps.w_at : 0) + k0 * per);
      if (staged) e.instr.arg[2] = static_cast<std::uint32_t>(buf);
      e.count = nlw;
      e.done_off = ld.d_func + sl_ - 1;
      e.expects = reads;
      op.emits.push_back(std::move(e));
      if (auto t = fit(op, best ? best->second : ~0ull); t && (!best || *t < best->second))
        best = {op, *t};
    }
  if (!best) no_fit(s.origin, "no 16 streams carry the weights to the plane");
  return *best;
}

std::vector<std::uint64_t> Scheduler::stream_activations(const KStep& s, const KPass& ps,
                                                         const std::vector<Plane*>& planes,
                                                         const std::vector<std::uint64_t>& in) {
  const int xb = isa::dtype_bytes(s.mm_type);
  const char* type = isa::to_string(s.mm_type);
  const auto m = static_cast<std::uint32_t>(s.m);
  // fp16 activations (and their fp32 products) come one every iv cycles.
  const auto iv =
      static_cast<std::uint32_t>(s.mm_type == DType::kFp16 ? chip_.mxm.fp16_interval() : 1);
  const auto& abc = lat("abc");
  const int pn = planes[0]->position;
  // Plane k takes each vector gap[k] cycles after the first one, as it flows on.
  std::vector<std::int64_t> gap;
  for (const Plane* pl : planes)
    gap.push_back(dist(pn, pl->position));
  const std::uint64_t span = static_cast<std::uint64_t>(m - 1) * iv + 1;
  // (c) the activation rows, once the weights are in, one every iv cycles.
  std::optional<std::pair<Op, std::uint64_t>> best;
  for (int xs = 0; xs < chip_.streams.per_direction; xs += 2 * xb) {
    Op op;
    for (std::size_t k = 0; k < planes.size(); ++k) {
      const auto ready = static_cast<std::int64_t>(std::max(in[k], planes[k]->next_act));
      op.lo = std::max<std::uint64_t>(
          op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(0, ready - gap[k])));
    }
    // toward the planes: a value from a slice east of them flows west
    const bool toward_west = q(P(ps.x).slices[0]).position > pn;
    const auto reads = read_rows(op, ps.x, ps.x_tile * logical_rows(ps.x) + ps.x_row, m, false, xs,
                                 pn, iv, ps.x_stride);
    // on past the first plane, to the farthest
    const auto far = std::max_element(gap.begin(), gap.end()) - gap.begin();
    if (gap[static_cast<std::size_t>(far)] > 0)
      for (int b = 0; b < xb; ++b)
        use_stream(op, xs + b, toward_west, key_const(toward_west, pn), span,
                   planes[static_cast<std::size_t>(far)]->position, pn + (toward_west ? -1 : 1));
    for (std::size_t k = 0; k < planes.size(); ++k) {
      use_queue(op, planes[k]->abc, gap[k] - abc.d_skew, m, iv);
      Emit e;
      e.queue = planes[k]->abc;
      e.off = gap[k] - abc.d_skew;
      e.instr = instr("abc");
      e.instr.mod[0] = mod_code(isa::ModKind::kDtype, type);
      e.instr.arg[0] = isa::stream_arg(xs, toward_west);
      e.instr.arg[1] = m;
      e.self_counted = true;
      e.count = m;
      e.done_off = gap[k] + static_cast<std::int64_t>((m - 1) * iv) + abc.d_func + sl_ - 1;
      e.expects = reads;
      op.emits.push_back(std::move(e));
    }
    if (auto t = fit(op, best ? best->second : ~0ull); t && (!best || *t < best->second))
      best = {op, *t};
    if (best && best->second == op_lower_bound(best->first)) break;
  }
  if (!best) no_fit(s.origin, "no streams carry the activations to the plane");
  commit(best->first, best->second);
  std::vector<std::uint64_t> t_abc;
  for (std::size_t k = 0; k < planes.size(); ++k) {
    t_abc.push_back(best->second + static_cast<std::uint64_t>(gap[k]));
    planes[k]->last_abc = t_abc.back() + (m - 1) * iv;
    planes[k]->next_act = planes[k]->last_abc + iv;
    mxm_busy_ += static_cast<std::uint64_t>(m) * iv;
  }
  return t_abc;
}

void Scheduler::accumulate(const KStep& s, std::size_t pass, Plane& pl, std::uint64_t t_abc) {
  const auto m = static_cast<std::uint32_t>(s.m);
  // fp16 activations (and their fp32 products) come one every iv cycles.
  const auto iv =
      static_cast<std::uint32_t>(s.mm_type == DType::kFp16 ? chip_.mxm.fp16_interval() : 1);
  const DType rt = s.mm_type == DType::kI8 ? DType::kI32 : DType::kFp32;
  // (d) the products into the accumulators; the last pass sends the sums into their chain or
  // to MEM.
  using Mode = func::MxmPlane::AccMode;
  const Mode mode = s.passes.size() == 1          ? Mode::kOnly
                    : pass == 0                   ? Mode::kFirst
                    : pass + 1 == s.passes.size() ? Mode::kLast
                                                  : Mode::kNext;
  const char* mode_name = mode == Mode::kOnly    ? "only"
                          : mode == Mode::kFirst ? "first"
                          : mode == Mode::kLast  ? "last"
                                                 : "next";
  AccRows a;
  a.t_abc = t_abc;
  a.iv = iv;
  a.emits = func::MxmPlane::emits(mode);
  // Each step of `only` stands alone: its rows may go in several ACCs (a sum started by
  // `first` lives in accumulators 0 .. m - 1 of one ACC after another).
  a.pieces = mode == Mode::kOnly;
  a.emit.queue = pl.acc;
  a.emit.instr = instr("acc");
  a.emit.instr.mod[0] = mod_code(isa::ModKind::kDtype, isa::to_string(rt));
  a.emit.instr.mod[1] = mod_code(isa::ModKind::kAccMode, mode_name);
  a.emit.self_counted = true;
  if (a.emits && iv == 1 && sum_chain_[static_cast<std::size_t>(root(s.d))] >= 0 &&
      sums_to_chain(s, pl, a, 0, m))
    return;
  acc_to_mem(s, pl, a, 0, m);
}

void Scheduler::acc_to_mem(const KStep& s, Plane& pl, const AccRows& a, std::uint32_t i0,
                           std::uint32_t n) {
  const int pm = pl.position;
  const std::uint32_t iv = a.iv;
  const auto& abc = lat("abc");
  const auto& acc = lat("acc");
  if (a.emits && !P(s.d).placed) place(s.d);
  std::optional<std::pair<Op, std::uint64_t>> best;
  std::vector<Written> rows_written;
  // away from the plane, toward MEM
  const bool out_west = a.emits && q(P(s.d).slices[0]).position < pm;
  const std::int64_t drow = s.d_tile * logical_rows(s.d) + s.d_row + i0 * s.d_stride;
  for (int rs = 0; rs < chip_.streams.per_direction; rs += 4) {
    Op op;
    op.lo = std::max(a.t_abc + static_cast<std::uint64_t>(abc.d_func) + i0 * iv, pl.acc_free);
    use_queue(op, pl.acc, -acc.d_skew, n, iv);
    Emit e = a.emit;
    e.off = -acc.d_skew;
    e.instr.arg[0] = isa::stream_arg(a.emits ? rs : 0, out_west);
    e.instr.arg[1] = n;
    e.count = n;
    e.done_off = static_cast<std::int64_t>((n - 1) * iv) + acc.d_func + sl_ - 1;
    op.emits.push_back(std::move(e));
    std::vector<Written> rows;
    if (a.emits) write_rows(op, s.d, drow, n, rs, pm, acc.d_func, 0, &rows, iv, 0, 1, s.d_stride);
    if (auto t = fit(op, best ? best->second : ~0ull); t && (!best || *t < best->second)) {
      best = {op, *t};
      rows_written = rows;
    }
    if (!a.emits || (best && best->second == op_lower_bound(best->first))) break;
  }
  if (!best) no_fit(s.origin, "no 4 streams carry the plane's results");
  commit(best->first, best->second);
  pl.acc_free = best->second + (n - 1) * iv + 1;  // the ACC's last step is in T + (n-1) iv
  if (a.emits) written(s.d, best->second, drow, rows_written);
}

std::optional<Scheduler::ChainFit> Scheduler::acc_chain(const KStep& s, const Plane& pl,
                                                        const AccRows& a, std::uint32_t i0,
                                                        std::uint32_t n) {
  const int x = root(s.d);
  const auto first = static_cast<std::size_t>(sum_chain_[static_cast<std::size_t>(x)]);
  SumChain& sc = prepare_chain(first);
  const std::vector<const KStep*> c = chain_steps(first);
  const auto& abc = lat("abc");
  const auto& acc = lat("acc");
  const int pm = pl.position;
  // From the ACC's access to the sums' arrival at the VXM: the chain's T is the ACC's + lead.
  const std::int64_t lead = acc_lead(pl);
  Op base;
  base.lo = std::max(a.t_abc + static_cast<std::uint64_t>(abc.d_func) + i0, pl.acc_free) +
            static_cast<std::uint64_t>(lead);
  use_queue(base, pl.acc, -lead - acc.d_skew, n);
  Emit e = a.emit;
  e.off = -lead - acc.d_skew;
  e.instr.arg[1] = n;
  e.count = n;
  e.done_off = -lead + static_cast<std::int64_t>(n - 1) + acc.d_func + sl_ - 1;
  base.emits.push_back(std::move(e));
  SumsIn in;
  in.t = x;
  in.producer = 0;
  in.from = pm;
  in.west = vxm_pos_ < pm;
  // the chain's run rows (find_sum_chains checked they are all in it)
  const std::int64_t r0 = sums_run_row(s, *c[0]);
  // Broadcast constants from each copy in turn; another copy when that one's slices clash.
  std::optional<ChainFit> best;
  for (int k = 0; k < sc.copies && !best; ++k) {
    const Part part{r0 + i0 * s.d_stride, n, (sc.next_copy + k) % sc.copies, s.d_stride};
    best = best_chain(c, part, &base, &in);
  }
  return best;
}

bool Scheduler::sums_to_chain(const KStep& s, Plane& pl, const AccRows& a, std::uint32_t i0,
                              std::uint32_t n) {
  std::optional<ChainFit> best = acc_chain(s, pl, a, i0, n);
  if (!best) {
    if (!a.pieces || n < 2 * kMinChainRows) return false;
    // The part crosses chunks whose slices the chain's tensors share: halves may not.
    const std::uint32_t h = n / 2;
    if (!sums_to_chain(s, pl, a, i0, h)) acc_to_mem(s, pl, a, i0, h);
    if (!sums_to_chain(s, pl, a, i0 + h, n - h)) acc_to_mem(s, pl, a, i0 + h, n - h);
    return true;
  }
  const int x = root(s.d);
  const auto first = static_cast<std::size_t>(sum_chain_[static_cast<std::size_t>(x)]);
  SumChain& sc = sum_chains_[first];
  const std::vector<const KStep*> c = chain_steps(first);
  ++sc.next_copy;
  commit(best->op, best->t);
  for (const ChainWrite& w : best->writes)
    written(w.t, best->t, w.row0, w.acc);
  vxm_busy_ += static_cast<std::uint64_t>(n) * c.size();
  // the ACC's last step is in the chain's T - lead + n - 1
  pl.acc_free = best->t - static_cast<std::uint64_t>(acc_lead(pl)) + n;
  if (sc.done.empty()) sc.done.assign(static_cast<std::size_t>(run_rows(*c[0])), false);
  const std::int64_t r0 = sums_run_row(s, *c[0]);
  for (std::int64_t i = i0; i < i0 + n; ++i)
    sc.done[static_cast<std::size_t>(r0 + i * s.d_stride)] = true;
  return true;
}

}  // namespace lpu::compiler::scheduling
