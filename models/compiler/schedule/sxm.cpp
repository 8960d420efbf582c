// SXM steps: shifts, selects, distributes and transposes.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

void Scheduler::sxm_step(const KStep& s) {
  if (!P(s.d).placed) {
    std::vector<std::uint16_t> avoid;
    for (int t : {s.a, s.b, s.mask})
      if (t >= 0)
        for (auto sl : P(t).slices)
          avoid.push_back(sl);
    place(s.d, avoid);
  }
  const std::uint32_t v = static_cast<std::uint32_t>(s.rows ? s.rows : rows_of(s.d));
  const std::int64_t drow = s.rows ? s.d_row : 0;
  const int g = isa::dtype_bytes(s.args.type);
  const char* mn = s.sxm == KStep::SxmOp::kShift    ? "shift"
                   : s.sxm == KStep::SxmOp::kSelect ? "select"
                                                    : "distribute";
  const auto& lt = lat(mn);
  std::optional<std::pair<Op, std::uint64_t>> best;
  std::vector<Written> best_rows;
  // Every SXM unit of the chip (chip.sxm.units, half per hemisphere).
  const auto kind = s.sxm == KStep::SxmOp::kDistribute ? arch::QueueUnit::kSxmDistribute
                                                       : arch::QueueUnit::kSxmShift;
  // Streams are taken from one of 4 starting points (units working at once, or a unit and a
  // VXM step, then need not share a stream where their paths overlap).
  const int nst = chip_.streams.per_direction;
  bool done = false;  // a candidate at its lower bound: none can be earlier
  for (const arch::Queue& uq : queues_)
    for (int rot = 0; rot < 4 && !done; ++rot) {
      if (uq.unit != kind) continue;
      const arch::Queue* unit = &uq;
      const int pos = unit->position;
      Op op;
      std::map<bool, std::vector<std::pair<int, int>>> used;
      auto take = [&](bool west, int group) -> int {
        for (int k = 0; k + group <= nst; k += group) {
          const int st = (k + rot * nst / 4) % nst;
          if (st + group > nst) continue;
          bool clash = false;
          for (auto [u, n] : used[west])
            if (st < u + n && u < st + group) clash = true;
          if (!clash) {
            used[west].push_back({st, group});
            return st;
          }
        }
        throw std::logic_error("scheduler: out of streams for " + s.origin);
      };
      std::vector<int> producers;
      std::vector<std::uint32_t> args;
      std::vector<std::pair<int, int>> ins = {{s.a, g}};
      if (s.sxm == KStep::SxmOp::kSelect) ins.push_back({s.b, g});
      if (s.sxm == KStep::SxmOp::kDistribute) ins.push_back({s.mask, 1});
      for (auto [t, group] : ins) {
        const bool west = q(P(t).slices[0]).position > pos;  // toward the SXM
        const int st = take(west, group);
        const bool bc = logical_rows(t) == 1 && (s.rows ? s.rows : logical_rows(s.d)) > 1;
        for (int id : read_rows(op, t, s.rows && t == s.a ? s.a_row : 0, v, bc, st, pos))
          producers.push_back(id);
        args.push_back(isa::stream_arg(st, west));
      }
      const bool out_west = q(P(s.d).slices[0]).position < pos;  // away from the SXM
      const int dst = take(out_west, g);
      args.push_back(isa::stream_arg(dst, out_west));
      if (s.sxm != KStep::SxmOp::kDistribute) args.push_back(static_cast<std::uint32_t>(s.sxm_n));
      use_queue(op, unit->id, -lt.d_skew, v);
      Emit e;
      e.queue = unit->id;
      e.off = -lt.d_skew;
      e.instr = instr(mn);
      e.instr.mod[0] = mod_code(isa::ModKind::kDtype, isa::to_string(s.args.type));
      if (s.sxm == KStep::SxmOp::kShift)
        e.instr.mod[1] = mod_code(isa::ModKind::kDir, s.north ? "n" : "s");
      for (std::size_t i = 0; i < args.size(); ++i)
        e.instr.arg[i] = args[i];
      e.count = v;
      e.done_off = lt.d_func + sl_ - 1;
      e.expects = producers;
      const int sxm_emit = static_cast<int>(op.emits.size());
      op.emits.push_back(std::move(e));
      std::vector<Written> rows;
      write_rows(op, s.d, drow, v, dst, pos, lt.d_func, sxm_emit, &rows);
      const auto t = fit(op, best ? best->second : ~0ull);
      if (t && (!best || *t < best->second)) {
        best = {op, *t};
        best_rows = rows;
      }
      done = best && best->second == op_lower_bound(best->first);
    }
  if (!best) no_fit(s.origin, "no SXM unit and streams fit the lane move");
  commit(best->first, best->second);
  written(s.d, best->second, drow, best_rows);
}

void Scheduler::transpose_step(const KStep& s) {
  if (!P(s.d).placed) place(s.d, P(s.a).slices);
  const TensorPlace& ap = P(s.a);
  const TensorPlace& dp = P(s.d);
  const auto blocks = static_cast<std::uint32_t>(ap.plane_addrs);
  const int bytes = isa::dtype_bytes(s.args.type);
  const auto& rd = lat("read");
  const auto& wr = lat("write");
  const auto& tr = lat("transpose");
  std::uint64_t done = 0;
  for (int b = 0; b < bytes; ++b) {
    std::optional<std::pair<Op, std::uint64_t>> best;
    for (const arch::Queue& uq : queues_) {  // every transposer of every SXM unit
      if (uq.unit != arch::QueueUnit::kSxmTranspose) continue;
      const arch::Queue* unit = &uq;
      const int pos = unit->position;
      for (int in_base = 0; in_base + 16 <= chip_.streams.per_direction; in_base += 16) {
        Op op;
        const bool in_west = q(ap.slices[0]).position > pos;   // toward the transposer
        const bool out_west = q(dp.slices[0]).position < pos;  // away from it
        std::vector<int> reads;
        for (int j = 0; j < 16; ++j) {
          const arch::Queue& sq = q(ap.slices[static_cast<std::size_t>((j + 4 * b) % 16)]);
          const std::int64_t written = -dist(sq.position, pos);
          const std::int64_t access = written - rd.d_func;
          const std::int64_t d = access - rd.d_skew;
          use_queue(op, sq.id, d, blocks);
          use_mem(op, sq.id, false, access, blocks, 1, ap.addr + b * ap.plane_addrs,
                  ap.addr + b * ap.plane_addrs + blocks - 1);
          use_stream(op, in_base + j, in_west, written + key_const(in_west, sq.position), blocks,
                     sq.position, pos);
          Emit e;
          e.queue = sq.id;
          e.off = d;
          e.instr = instr("read");
          e.tensor = root(s.a);
          e.instr.arg[0] = ap.addr + static_cast<std::uint32_t>(b) * ap.plane_addrs;
          e.instr.arg[1] = isa::stream_arg(in_base + j, in_west);
          e.count = blocks;
          e.done_off = written + sl_ - 1;
          reads.push_back(static_cast<int>(op.emits.size()));
          op.emits.push_back(std::move(e));
          const std::int64_t need = static_cast<std::int64_t>(ap.ready_all) - access;
          op.lo = std::max<std::uint64_t>(
              op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(0, need)));
        }
        use_queue(op, unit->id, -tr.d_skew, blocks);
        // The next 16 streams, so in and out never meet.
        const int out_base = (in_base + 16) % (chip_.streams.per_direction / 16 * 16);
        Emit t;
        t.queue = unit->id;
        t.off = -tr.d_skew;
        t.instr = instr("transpose");
        t.instr.arg[0] = isa::stream_arg(in_base, in_west);
        t.instr.arg[1] = isa::stream_arg(out_base, out_west);
        t.count = blocks;
        t.done_off = tr.d_func + sl_ - 1;
        t.expects = reads;
        const int te = static_cast<int>(op.emits.size());
        op.emits.push_back(std::move(t));
        for (int j = 0; j < 16; ++j) {
          const arch::Queue& sq = q(dp.slices[static_cast<std::size_t>((j + 4 * b) % 16)]);
          const std::int64_t access = tr.d_func + dist(sq.position, pos);
          const std::int64_t d = access - wr.d_skew;
          op.lo = std::max<std::uint64_t>(  // reused storage: after its previous tenant
              op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(
                         0, static_cast<std::int64_t>(dp.write_after) - access)));
          use_queue(op, sq.id, d, blocks);
          use_mem(op, sq.id, true, access, blocks, 1, dp.addr + b * dp.plane_addrs,
                  dp.addr + b * dp.plane_addrs + blocks - 1);
          use_stream(op, out_base + j, out_west, tr.d_func + key_const(out_west, pos), blocks, pos,
                     sq.position);
          Emit e;
          e.queue = sq.id;
          e.off = d;
          e.instr = instr("write");
          e.tensor = root(s.d);
          e.instr.arg[0] = dp.addr + static_cast<std::uint32_t>(b) * dp.plane_addrs;
          e.instr.arg[1] = isa::stream_arg(out_base + j, out_west);
          e.count = blocks;
          e.done_off = access + wr.d_func + sl_ - 1;
          e.expects = {te};
          op.emits.push_back(std::move(e));
        }
        if (auto tt = fit(op, best ? best->second : ~0ull); tt && (!best || *tt < best->second))
          best = {op, *tt};
      }
    }
    if (!best) no_fit(s.origin, "no transposer fits (it takes 16 streams in and 16 out)");
    commit(best->first, best->second);
    // The last block's writes land by T + d_func + the farthest distance + blocks - 1.
    const int pos = q(best->first.emits[16].queue).position;  // the transposer (after 16 reads)
    std::int64_t far = 0;
    for (auto sl : dp.slices)
      far = std::max(far, dist(q(sl).position, pos));
    done = std::max<std::uint64_t>(done, best->second + static_cast<std::uint64_t>(tr.d_func) +
                                             static_cast<std::uint64_t>(far) + blocks);
  }
  P(s.d).recorded = false;
  P(s.d).ready_all = std::max(P(s.d).ready_all, done);
  P(s.d).ready_stream = std::max(P(s.d).ready_stream, done);
}

}  // namespace lpu::compiler::scheduling
