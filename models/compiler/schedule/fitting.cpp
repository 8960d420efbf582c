// Reservation tables and fitting: an operation's uses of queues, ports, banks and streams, placed
// at its earliest free cycle.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

int Scheduler::commit(const Op& op, std::uint64_t t) {
  for (const auto& [tensor, off] : op.reads) {
    TensorPlace& tp = place_[static_cast<std::size_t>(tensor)];
    tp.last_read = std::max<std::uint64_t>(
        tp.last_read, static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + off));
  }
  for (const Use& u : op.uses) {
    const auto s = static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + u.off);
    if (u.kind == Use::Kind::kStream)
      claims_[static_cast<std::size_t>(u.id)].add({s, s + u.len, u.p0, u.p1});
    else if (u.times > 1)
      busy_of(u.kind)[static_cast<std::size_t>(u.id)].add_each(s, u.len, u.every, u.times);
    else
      busy_of(u.kind)[static_cast<std::size_t>(u.id)].add(s, u.len);
  }
  const int base = static_cast<int>(blocks_.size());
  for (const Emit& e : op.emits) {
    Block b;
    b.queue = e.queue;
    b.dispatch = static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + e.off);
    b.instr = e.instr;
    b.count = e.count;
    b.stride = e.stride;
    b.separate = e.separate;
    b.addr_step = e.addr_step;
    b.tensor = e.tensor;
    b.self_counted = e.self_counted;
    b.v0 = e.v0;
    b.vs = e.vs;
    b.first_done = static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + e.done_off);
    b.spmd_sign = e.spmd_sign;
    b.spmd_round = e.spmd_round;
    b.spmd_unit = e.spmd_unit;
    for (int x : e.expects)
      b.expects.push_back(base + x);
    blocks_.push_back(std::move(b));
  }
  return base;
}

void Scheduler::use_mem(Op& op, std::uint16_t slice, bool write, std::int64_t off,
                        std::uint32_t count, std::uint32_t stride, std::uint64_t lo,
                        std::uint64_t hi) {
  const std::uint64_t len = static_cast<std::uint64_t>(stride) * (count - 1) + 1;
  op.uses.push_back({write ? Use::Kind::kWrite : Use::Kind::kRead, slice, off, len});
  const auto banks = static_cast<std::uint64_t>(chip_.mem.banks);
  std::uint64_t b0 = 0, b1 = banks - 1;
  if (!chip_.mem.interleaved) {
    b0 = static_cast<std::uint64_t>(chip_.mem.bank_of(static_cast<std::uint32_t>(lo)));
    b1 = static_cast<std::uint64_t>(chip_.mem.bank_of(static_cast<std::uint32_t>(hi)));
  } else if (lo == hi) {
    b0 = b1 = lo % banks;
  }
  for (std::uint64_t b = b0; b <= b1; ++b)
    op.uses.push_back({Use::Kind::kBank, static_cast<int>(slice * banks + b), off, len});
}

bool Scheduler::use_run(Op& op, std::uint16_t slice, bool write, std::int64_t d,
                        std::int64_t access, std::uint32_t count, std::uint32_t stride,
                        std::uint32_t addr) {
  // (Queues preloaded with the whole program and no ifetch keep the instruction count down.)
  if (stride <= 1 || count < 2 || chip_.icu.preloaded) {
    use_queue(op, slice, d, count, stride);
    use_mem(op, slice, write, access, count, stride, addr, addr + count - 1);
    return false;
  }
  op.uses.push_back({Use::Kind::kQueue, slice, d, 1, 0, 0, stride, count});
  op.uses.push_back(
      {write ? Use::Kind::kWrite : Use::Kind::kRead, slice, access, 1, 0, 0, stride, count});
  // Access k's bank is that of address addr + k.
  const auto banks = static_cast<std::uint32_t>(chip_.mem.banks);
  const int base = slice * static_cast<int>(banks);
  if (chip_.mem.interleaved) {  // bank b: accesses k0, k0 + banks, .. (addr + k0 in bank b)
    for (std::uint32_t b = 0; b < banks; ++b) {
      const std::uint32_t k0 = (b + banks - addr % banks) % banks;
      if (k0 >= count) continue;
      op.uses.push_back({Use::Kind::kBank, base + static_cast<int>(b),
                         access + static_cast<std::int64_t>(k0) * stride, 1, 0, 0, stride * banks,
                         (count - k0 + banks - 1) / banks});
    }
    return true;
  }
  for (std::uint32_t k0 = 0; k0 < count;) {  // runs of addresses in one bank
    const int b = chip_.mem.bank_of(addr + k0);
    std::uint32_t k1 = k0 + 1;
    while (k1 < count && chip_.mem.bank_of(addr + k1) == b)
      ++k1;
    op.uses.push_back({Use::Kind::kBank, base + b, access + static_cast<std::int64_t>(k0) * stride,
                       1, 0, 0, stride, k1 - k0});
    k0 = k1;
  }
  return true;
}

void Scheduler::merge_stream_uses(Op& op, std::size_t first) {
  for (std::size_t i = first; i < op.uses.size(); ++i) {
    Use& a = op.uses[i];
    if (a.kind != Use::Kind::kStream) continue;
    for (std::size_t j = i + 1; j < op.uses.size();) {
      const Use& b = op.uses[j];
      if (b.kind != Use::Kind::kStream || b.id != a.id) {
        ++j;
        continue;
      }
      const std::int64_t lo = std::min(a.off, b.off);
      const std::int64_t hi = std::max(a.off + static_cast<std::int64_t>(a.len),
                                       b.off + static_cast<std::int64_t>(b.len));
      a.off = lo;
      a.len = static_cast<std::uint64_t>(hi - lo);
      a.p0 = std::min(a.p0, b.p0);
      a.p1 = std::max(a.p1, b.p1);
      op.uses.erase(op.uses.begin() + static_cast<long>(j));
    }
  }
}

std::vector<int> Scheduler::read_rows(Op& op, int t, std::int64_t row0, std::uint32_t count,
                                      bool broadcast, int first, int to, std::uint32_t cs,
                                      std::int64_t rs) {
  const TensorPlace& tp = P(t);
  const auto& rd = lat("read");
  std::vector<int> ids;
  if (broadcast && cs != 1) throw std::logic_error("scheduler: spaced broadcast read");
  const std::uint64_t span = static_cast<std::uint64_t>(count - 1) * cs + 1;
  if (tp.t16 || tp.weights || tp.chunked || tp.il > 1 || rs != 1) {
    // Rows spread over slices: one read (with a repeat) per run of consecutive addresses of one
    // slice at evenly spaced cycles; the whole tensor must be written first.
    if (broadcast) throw std::logic_error("scheduler: broadcast read of a spread tensor");
    const int bytes = isa::dtype_bytes(k_.tensors[static_cast<std::size_t>(root(t))].dtype);
    const auto all = plane_runs(t, row0, count, bytes, rs);
    for (int b = 0; b < bytes; ++b) {
      const int stream = first + b;
      int far = to;
      bool west = false;
      for (const Run& r : all[static_cast<std::size_t>(b)]) {
        const arch::Queue& sq = q(r.slice);
        west = sq.position > to;
        far = std::abs(sq.position - to) > std::abs(far - to) ? sq.position : far;
        const std::int64_t written = -dist(sq.position, to) + r.first_i * cs;
        const std::int64_t access = written - rd.d_func;
        const std::int64_t d = access - rd.d_skew;
        const auto stride = static_cast<std::uint32_t>(std::max<std::int64_t>(1, r.stride) * cs);
        const bool each = use_run(op, sq.id, false, d, access, r.n, stride, r.addr);
        Emit e;
        e.queue = sq.id;
        e.off = d;
        e.separate = each;
        e.addr_step = each ? 1 : 0;
        e.instr = instr("read");
        e.tensor = root(t);
        e.instr.arg[0] = r.addr;
        e.instr.arg[1] = isa::stream_arg(stream, west);
        e.count = r.n;
        e.stride = stride;
        e.v0 = r.first_i;
        e.vs = std::max<std::int64_t>(1, r.stride);
        e.done_off = written + sl_ - 1;
        ids.push_back(static_cast<int>(op.emits.size()));
        op.emits.push_back(std::move(e));
        // This run's rows must be written before its first read (chunk by chunk).
        std::int64_t need = static_cast<std::int64_t>(ready_rows(tp, row0 + r.first_i * rs,
                                                                 (r.last_i - r.first_i) * rs + 1)) -
                            access;
        if (const auto rec =
                recorded_need(tp, row0 + r.first_i * rs, std::max<std::int64_t>(1, r.stride) * rs,
                              0, r.n - 1, access, stride))
          need = std::min(need, *rec);
        op.lo = std::max<std::uint64_t>(
            op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(0, need)));
        op.reads.push_back({root(t), access + static_cast<std::int64_t>(stride) * (r.n - 1)});
      }
      // Values arriving at `to` in cycle T + i cs left their slices on one diagonal run.
      use_stream(op, stream, west, key_const(west, to), span, far, to);
    }
    return ids;
  }
  for (std::size_t b = 0; b < tp.slices.size(); ++b) {
    const arch::Queue& sq = q(tp.slices[b]);
    const bool west = sq.position > to;
    const std::int64_t written = -dist(sq.position, to);  // when the value leaves the slice
    const std::int64_t access = written - rd.d_func;
    const std::int64_t d = access - rd.d_skew;
    bool each = false;
    if (broadcast) {
      use_queue(op, sq.id, d, count, cs);
      use_mem(op, sq.id, false, access, count, cs, tp.addr, tp.addr + tp.vectors - 1);
    } else {
      each = use_run(op, sq.id, false, d, access, count, cs,
                     tp.addr + static_cast<std::uint32_t>(row0));
    }
    const int stream = first + static_cast<int>(b);
    use_stream(op, stream, west, written + key_const(west, sq.position), span, sq.position, to);
    // A broadcast operand of L logical rows (one, or a few read cyclically) and T tiles.
    const auto L = static_cast<std::uint32_t>(logical_rows(t));
    const auto tiles = static_cast<std::uint32_t>(rows_of(t)) / (broadcast ? L : 1);
    const std::uint32_t per_tile = broadcast ? count / tiles : count;
    if (broadcast && L > 1 && row0 != 0)
      throw std::logic_error("scheduler: cyclic read of '" + name(t) + "' from a row offset");
    if (broadcast && L > 1) {  // one read of the L rows (a repeat) per L result rows
      for (std::uint32_t ti = 0; ti < tiles; ++ti)
        for (std::uint32_t k = 0; k < per_tile; k += L) {
          Emit e;
          e.queue = sq.id;
          e.off = d + static_cast<std::int64_t>(ti * per_tile + k);
          e.instr = instr("read");
          e.tensor = root(t);
          e.instr.arg[0] = tp.addr + ti * L;
          e.instr.arg[1] = isa::stream_arg(stream, west);
          e.count = std::min(L, per_tile - k);
          e.v0 = static_cast<std::int64_t>(ti * per_tile + k);
          e.done_off = written + sl_ - 1 + static_cast<std::int64_t>(ti * per_tile + k);
          ids.push_back(static_cast<int>(op.emits.size()));
          op.emits.push_back(std::move(e));
        }
    }
    for (std::uint32_t ti = 0; ti < (broadcast ? tiles : 1) && !(broadcast && L > 1); ++ti) {
      Emit e;
      e.queue = sq.id;
      e.off = d + static_cast<std::int64_t>(ti * per_tile);
      e.instr = instr("read");
      e.tensor = root(t);
      e.instr.arg[0] = tp.addr + static_cast<std::uint32_t>(row0) + ti;
      e.instr.arg[1] = isa::stream_arg(stream, west);
      e.count = per_tile;
      e.stride = cs;
      e.separate = (broadcast && per_tile > 1) || each;
      e.addr_step = each ? 1 : 0;
      e.v0 = static_cast<std::int64_t>(ti * per_tile);
      e.done_off = written + sl_ - 1 + static_cast<std::int64_t>(ti * per_tile);
      ids.push_back(static_cast<int>(op.emits.size()));
      op.emits.push_back(std::move(e));
    }
    op.reads.push_back({root(t), access + static_cast<std::int64_t>(span) - 1});
    // Vector row row0 + i is read in cycle T + access + i cs: after it was written.
    std::int64_t need = broadcast ? static_cast<std::int64_t>(tp.ready_all) - access
                                  : static_cast<std::int64_t>(tp.ready_stream) + row0 - access;
    if (!broadcast)
      if (const auto rec = recorded_need(tp, row0, 1, 0, count - 1, access, cs))
        need = std::min(need, *rec);
    op.lo =
        std::max<std::uint64_t>(op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(0, need)));
  }
  return ids;
}

bool Scheduler::rows_alike(int t) const {
  auto& memo = rows_alike_[root(t)];
  if (memo == 0) {
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(root(t))];
    const std::size_t row =
        static_cast<std::size_t>(kt.cols()) * static_cast<std::size_t>(isa::dtype_bytes(kt.dtype));
    bool same = kt.role == KTensor::Role::kConstant && row > 0 && !kt.data.empty();
    for (std::size_t i = row; same && i < kt.data.size(); ++i)
      same = kt.data[i] == kt.data[i % row];
    memo = same ? 1 : -1;
  }
  return memo > 0;
}

std::vector<int> Scheduler::read_broadcast(Op& op, int t, int copy, std::int64_t r0,
                                           std::uint32_t count, std::int64_t R, int first, int to,
                                           std::int64_t rs) {
  const TensorPlace& tp = P(t);
  const auto& rd = lat("read");
  const std::vector<std::uint16_t>& slices =
      copy == 0 ? tp.slices : tp.replicas[static_cast<std::size_t>(copy - 1)].first;
  const std::uint32_t addr =
      copy == 0 ? tp.addr : tp.replicas[static_cast<std::size_t>(copy - 1)].second;
  const std::int64_t L = logical_rows(t);
  // The row the i-th read takes: that of result row r0 + i rs; or, when the constant's rows are
  // all alike and the result rows are strided, its rows in turn (consecutive addresses).
  const bool alike = rs > 1 && rows_alike(t);
  auto crow = [&](std::int64_t i) {
    const std::int64_t r = r0 + i * rs;
    return (r / R) * L + (alike ? i % L : (r % R) % L);
  };
  std::vector<int> ids;
  for (std::size_t b = 0; b < slices.size(); ++b) {
    const arch::Queue& sq = q(slices[b]);
    const bool west = sq.position > to;
    const std::int64_t written = -dist(sq.position, to);
    const std::int64_t access = written - rd.d_func;
    const std::int64_t d = access - rd.d_skew;
    use_queue(op, sq.id, d, count);
    use_mem(op, sq.id, false, access, count, 1, addr, addr + tp.vectors - 1);
    const int stream = first + static_cast<int>(b);
    use_stream(op, stream, west, written + key_const(west, sq.position), count, sq.position, to);
    for (std::uint32_t i = 0; i < count;) {
      const std::int64_t c0 = crow(i);
      std::uint32_t n = 1;
      while (i + n < count && crow(i + n) == c0 + n)
        ++n;
      Emit e;
      e.queue = sq.id;
      e.off = d + i;
      e.instr = instr("read");
      e.tensor = root(t);
      e.instr.arg[0] = addr + static_cast<std::uint32_t>(c0);
      e.instr.arg[1] = isa::stream_arg(stream, west);
      e.count = n;
      e.v0 = i;
      e.done_off = written + sl_ - 1 + i;
      ids.push_back(static_cast<int>(op.emits.size()));
      op.emits.push_back(std::move(e));
      i += n;
    }
    op.reads.push_back({root(t), access + static_cast<std::int64_t>(count) - 1});
    op.lo =
        std::max<std::uint64_t>(op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(
                                           0, static_cast<std::int64_t>(tp.ready_all) - access)));
  }
  return ids;
}

void Scheduler::write_rows(Op& op, int t, std::int64_t row0, std::uint32_t count, int first,
                           int from, std::int64_t at, int producer,
                           std::vector<Written>* access_of_row0, std::uint32_t cs,
                           std::int64_t value0, std::int64_t value_stride, std::int64_t rs) {
  const std::int64_t span = static_cast<std::int64_t>(count - 1) * cs;  // first to last value
  const TensorPlace& tp = P(t);
  const auto& wr = lat("write");
  const int bytes = isa::dtype_bytes(k_.tensors[static_cast<std::size_t>(t)].dtype);
  if (!tp.weights && !tp.t16 && !tp.chunked && tp.il == 1 && rs == 1) {
    for (std::size_t b = 0; b < tp.slices.size(); ++b) {
      const arch::Queue& sq = q(tp.slices[b]);
      const bool west = sq.position < from;
      const std::int64_t access = at + dist(sq.position, from);
      // Reused storage: not before its previous tenant's last read.
      op.lo = std::max<std::uint64_t>(op.lo,
                                      static_cast<std::uint64_t>(std::max<std::int64_t>(
                                          0, static_cast<std::int64_t>(tp.write_after) - access)));
      op.reads.push_back({root(t), access + span});
      const std::int64_t d = access - wr.d_skew;
      const bool each = use_run(op, sq.id, true, d, access, count, cs,
                                tp.addr + static_cast<std::uint32_t>(row0));
      const int stream = first + static_cast<int>(b);
      use_stream(op, stream, west, at + key_const(west, from), static_cast<std::uint64_t>(span) + 1,
                 from, sq.position);
      Emit e;
      e.queue = sq.id;
      e.off = d;
      e.instr = instr("write");
      e.tensor = root(t);
      e.instr.arg[0] = tp.addr + static_cast<std::uint32_t>(row0);
      e.instr.arg[1] = isa::stream_arg(stream, west);
      e.count = count;
      e.stride = cs;
      e.separate = each;
      e.addr_step = each ? 1 : 0;
      e.v0 = value0;
      e.vs = value_stride;
      e.done_off = access + wr.d_func + sl_ - 1;
      e.expects = {producer};
      op.emits.push_back(std::move(e));
      access_of_row0->push_back({access + span - static_cast<std::int64_t>(count - 1),
                                 access + span, row0, row0 + static_cast<std::int64_t>(count) - 1});
    }
    return;
  }
  // Spread layouts (MXM weights, t16): each vector row goes to its own slice and address;
  // rows bound for one slice at consecutive addresses and evenly spaced cycles become one write
  // with a repeat.
  const auto all = plane_runs(t, row0, count, bytes, rs);
  for (int b = 0; b < bytes; ++b) {
    const int stream = first + b;
    int far = from;
    const std::vector<Run>& runs = all[static_cast<std::size_t>(b)];
    for (const Run& r : runs)
      far = std::abs(q(r.slice).position - from) > std::abs(far - from) ? q(r.slice).position : far;
    for (const Run& r : runs) {
      const arch::Queue& sq = q(r.slice);
      const bool west = sq.position < from;
      const std::int64_t access = at + dist(sq.position, from) + r.first_i * cs;
      op.lo = std::max<std::uint64_t>(op.lo,
                                      static_cast<std::uint64_t>(std::max<std::int64_t>(
                                          0, static_cast<std::int64_t>(tp.write_after) - access)));
      const std::int64_t d = access - wr.d_skew;
      const auto stride = static_cast<std::uint32_t>(std::max<std::int64_t>(1, r.stride) * cs);
      op.reads.push_back({root(t), access + static_cast<std::int64_t>(stride) * (r.n - 1)});
      const bool each = use_run(op, sq.id, true, d, access, r.n, stride, r.addr);
      Emit e;
      e.queue = sq.id;
      e.off = d;
      e.separate = each;
      e.addr_step = each ? 1 : 0;
      e.instr = instr("write");
      e.tensor = root(t);
      e.instr.arg[0] = r.addr;
      e.instr.arg[1] = isa::stream_arg(stream, west);
      e.count = r.n;
      e.stride = stride;
      e.v0 = value0 + r.first_i * value_stride;
      e.vs = std::max<std::int64_t>(1, r.stride) * value_stride;
      e.done_off = access + wr.d_func + sl_ - 1;
      e.expects = {producer};
      op.emits.push_back(std::move(e));
      // Row row0 + (first_i + k r.stride) rs is written in access + k stride: the lag of a row
      // behind its offset from row0 is largest at one end of the run.
      const std::int64_t last = access + static_cast<std::int64_t>(stride) * (r.n - 1);
      access_of_row0->push_back({std::max(access - r.first_i * rs, last - r.last_i * rs), last,
                                 row0 + r.first_i * rs, row0 + r.last_i * rs,
                                 std::max<std::int64_t>(1, r.stride) * rs});
    }
    const bool west = far < from;
    use_stream(op, stream, west, at + key_const(west, from), static_cast<std::uint64_t>(span) + 1,
               from, far);
  }
}

std::uint64_t Scheduler::ready_rows(const TensorPlace& tp, std::int64_t row0, std::int64_t count) {
  if (!tp.chunked || tp.chunk_ready.size() != tp.chunks.size()) return tp.ready_all;
  std::uint64_t r = 0;
  for (std::size_t c = 0; c < tp.chunks.size(); ++c)
    if (tp.chunks[c].first < row0 + count && row0 < tp.chunks[c].first + tp.chunks[c].rows)
      r = std::max(r, tp.chunk_ready[c]);
  return r;
}

std::optional<std::int64_t> recorded_need(const TensorPlace& tp, std::int64_t r0, std::int64_t rs,
                                          std::int64_t i0, std::int64_t i1, std::int64_t a,
                                          std::int64_t cs) {
  if (!tp.recorded) return std::nullopt;
  const std::array<std::int64_t, 6> key{r0, rs, i0, i1, a, cs};
  if (const auto it = tp.need_memo.find(key); it != tp.need_memo.end()) return it->second;
  auto floor_div = [](std::int64_t x, std::int64_t y) {
    return x >= 0 ? x / y : -((-x + y - 1) / y);
  };
  std::int64_t need = 0;
  for (const TensorPlace::Rec& w : tp.recs) {
    // rows of the record on the read's progression (a record of another class of rows: none)
    if (w.step > 1 && rs % w.step == 0 && ((r0 - w.lo) % w.step + w.step) % w.step != 0) continue;
    const std::int64_t lo = std::max(i0, -floor_div(-(w.lo - r0), rs));
    const std::int64_t hi = std::min(i1, floor_div(w.hi - r0, rs));
    if (lo > hi) continue;
    // row r0 + i rs is read in T + a + i cs, and readable from min(c + r, done)
    auto linear = [&](std::int64_t i) { return w.c + r0 + i * rs - a - i * cs; };
    const std::int64_t by_row = std::max(linear(lo), linear(hi));
    const std::int64_t by_end = w.done - a - lo * cs;
    need = std::max(need, std::min(by_row, by_end));
  }
  tp.need_memo[key] = need;
  return need;
}

void Scheduler::written(int t, std::uint64_t T, std::int64_t row0,
                        const std::vector<Written>& access) {
  TensorPlace& tp = P(t);
  tp.need_memo.clear();
  for (const Written& w : access) {
    tp.recs.push_back({w.lo, w.hi, w.step, static_cast<std::int64_t>(T) + w.first + 1 - row0,
                       static_cast<std::int64_t>(T) + w.last + 1});
    // Row row0 + i is written by T + first + i: readable from the next cycle.
    const std::int64_t stream = static_cast<std::int64_t>(T) + w.first + 1 - row0;
    tp.ready_stream = std::max<std::uint64_t>(
        tp.ready_stream, static_cast<std::uint64_t>(std::max<std::int64_t>(0, stream)));
    const std::uint64_t done = T + static_cast<std::uint64_t>(w.last) + 1;
    tp.ready_all = std::max<std::uint64_t>(tp.ready_all, done);
    if (tp.chunked) {
      tp.chunk_ready.resize(tp.chunks.size(), 0);
      for (std::size_t c = 0; c < tp.chunks.size(); ++c)
        if (tp.chunks[c].first <= w.hi && w.lo < tp.chunks[c].first + tp.chunks[c].rows)
          tp.chunk_ready[c] = std::max(tp.chunk_ready[c], done);
    }
  }
}

}  // namespace lpu::compiler::scheduling
