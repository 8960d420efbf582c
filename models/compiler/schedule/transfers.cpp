// Exchanges between chips and pipeline transfers over C2C links.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

const arch::Queue& Scheduler::port_queue(const KStep& s) const {
  const auto qn = arch::find_queue(queues_, "c2c.l" + std::to_string(s.port));
  if (!qn)
    throw InputError(source_, s.origin + ": the chip has no C2C link " + std::to_string(s.port));
  return queues_[qn->id];
}

void Scheduler::send_step(const KStep& s) {
  const arch::Queue& tx = port_queue(s);
  const int bytes = isa::dtype_bytes(k_.tensors[static_cast<std::size_t>(s.a)].dtype);
  std::vector<std::uint64_t> cycles;
  std::uint64_t after = 0;  // keeps the vectors in order
  for (std::int64_t vr = 0; vr < static_cast<std::int64_t>(rows_of(s.a)); ++vr)
    for (int b = 0; b < bytes; ++b) {
      const auto [slice, addr] = at(s.a, vr, b);
      std::optional<std::pair<Op, std::uint64_t>> best;
      for (int st = 0; st < chip_.streams.per_direction; ++st) {
        Op op;
        op.lo = after;
        send_vector(op, tx, 0, read_vector(op, s.a, slice, addr, st, tx.position, 0));
        const auto t = fit(op, best ? best->second : ~0ull);
        if (!t) continue;
        if (!best || *t < best->second) best = {op, *t};
        if (best->second == op_lower_bound(best->first)) break;
      }
      if (!best) no_fit(s.origin, "no stream carries the send");
      commit(best->first, best->second);
      cycles.push_back(best->second);
      after = best->second + 1;
    }
  sends_.push_back(std::move(cycles));
}

void Scheduler::recv_step(const KStep& s) {
  const arch::Queue& rx = port_queue(s);
  if (!P(s.d).placed) place(s.d);
  const int bytes = isa::dtype_bytes(k_.tensors[static_cast<std::size_t>(s.d)].dtype);
  const auto& rc = lat("recv");
  const std::size_t n = rows_of(s.d) * static_cast<std::size_t>(bytes);
  if (s.arrivals.size() != n)
    throw std::logic_error("scheduler: " + std::to_string(s.arrivals.size()) +
                           " arrival cycles for the " + std::to_string(n) + " vectors of '" +
                           name(s.d) + "'");
  std::size_t j = 0;
  for (std::int64_t vr = 0; vr < static_cast<std::int64_t>(rows_of(s.d)); ++vr)
    for (int b = 0; b < bytes; ++b, ++j) {
      const auto [slice, addr] = at(s.d, vr, b);
      const bool west = q(slice).position < rx.position;
      const std::uint64_t when = s.arrivals[j];
      bool done = false;
      for (int st = 0; st < chip_.streams.per_direction && !done; ++st) {
        Op op;
        op.lo = when;
        const int got = recv_vector(op, rx, 0, isa::stream_arg(st, west));
        const std::int64_t access =
            write_vector(op, s.d, slice, addr, st, rx.position, rc.d_func, got);
        if (fit(op) == when) {
          commit(op, when);
          written_at(s.d, when + static_cast<std::uint64_t>(access));
          done = true;
        }
      }
      if (!done)
        throw InputError(source_, s.origin + ": vector " + std::to_string(j) + " of '" + name(s.d) +
                                      "' arrives on link " + std::to_string(s.port) + " in cycle " +
                                      std::to_string(when) +
                                      ", when its receive or the write after it cannot run");
    }
}

int Scheduler::read_vector(Op& op, int t, std::uint16_t slice, std::uint32_t addr, int st, int to,
                           std::int64_t at_off, bool claim) {
  const auto& rd = lat("read");
  const arch::Queue& sq = q(slice);
  const bool west = sq.position > to;
  const std::int64_t written = at_off - dist(sq.position, to);
  const std::int64_t access = written - rd.d_func;
  use_queue(op, sq.id, access - rd.d_skew, 1);
  use_mem(op, sq.id, false, access, 1, 1, addr, addr);
  if (claim) use_stream(op, st, west, written + key_const(west, sq.position), 1, sq.position, to);
  Emit e;
  e.queue = sq.id;
  e.off = access - rd.d_skew;
  e.instr = instr("read");
  e.instr.arg[0] = addr;
  e.instr.arg[1] = isa::stream_arg(st, west);
  e.tensor = root(t);
  e.done_off = written + sl_ - 1;
  op.emits.push_back(std::move(e));
  op.reads.push_back({root(t), access});
  op.lo =
      std::max<std::uint64_t>(op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(
                                         0, static_cast<std::int64_t>(P(t).ready_all) - access)));
  return static_cast<int>(op.emits.size()) - 1;
}

std::int64_t Scheduler::write_vector(Op& op, int t, std::uint16_t slice, std::uint32_t addr, int st,
                                     int from, std::int64_t at_off, int producer) {
  const auto& wr = lat("write");
  const arch::Queue& sq = q(slice);
  const bool west = sq.position < from;
  const std::int64_t access = at_off + dist(sq.position, from);
  use_queue(op, sq.id, access - wr.d_skew, 1);
  use_mem(op, sq.id, true, access, 1, 1, addr, addr);
  use_stream(op, st, west, at_off + key_const(west, from), 1, from, sq.position);
  Emit e;
  e.queue = sq.id;
  e.off = access - wr.d_skew;
  e.instr = instr("write");
  e.instr.arg[0] = addr;
  e.instr.arg[1] = isa::stream_arg(st, west);
  e.tensor = root(t);
  e.done_off = access + wr.d_func + sl_ - 1;
  e.expects = {producer};
  op.emits.push_back(std::move(e));
  op.reads.push_back({root(t), access});
  op.lo =
      std::max<std::uint64_t>(op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(
                                         0, static_cast<std::int64_t>(P(t).write_after) - access)));
  return access;
}

void Scheduler::send_vector(Op& op, const arch::Queue& tx, std::int64_t at_off, int producer) {
  const auto& sn = lat("send");
  use_queue(op, tx.id, at_off - sn.d_skew, 1);
  use_port(op, tx.id, at_off, static_cast<std::uint32_t>(func::LinkTiming(arch_).frame_cycles()));
  Emit e;
  e.queue = tx.id;
  e.off = at_off - sn.d_skew;
  e.instr = instr("send");
  e.instr.arg[0] = op.emits[static_cast<std::size_t>(producer)].instr.arg[1];
  e.done_off = at_off + sn.d_func + sl_ - 1;
  e.expects = {producer};
  op.emits.push_back(std::move(e));
}

int Scheduler::recv_vector(Op& op, const arch::Queue& rx, std::int64_t at_off,
                           std::uint32_t stream) {
  const auto& rc = lat("recv");
  use_queue(op, rx.id, at_off - rc.d_skew, 1);
  Emit e;
  e.queue = rx.id;
  e.off = at_off - rc.d_skew;
  e.instr = instr("recv");
  e.instr.arg[0] = stream;
  e.done_off = at_off + rc.d_func + sl_ - 1;
  op.emits.push_back(std::move(e));
  return static_cast<int>(op.emits.size()) - 1;
}

void Scheduler::written_at(int t, std::uint64_t last) {
  TensorPlace& tp = P(t);
  tp.recorded = false;
  tp.ready_all = std::max(tp.ready_all, last + 1);
  tp.ready_stream = std::max(tp.ready_stream, tp.ready_all);
  for (auto& c : tp.chunk_ready)
    c = std::max(c, tp.ready_all);
}

}  // namespace lpu::compiler::scheduling
