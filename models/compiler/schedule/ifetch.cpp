// Instruction fetch: when each queue's instructions are brought in from MEM.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

// Instruction fetch for queues longer than chip.icu.queue_depth: the first queue_depth entries
// are loaded with the program; each ifetch brings the next ifetch_bytes / 16 entries, streamed
// from the instruction slices (the outermost MEM slices, which hold no data) in
// ifetch_bytes / vector_bytes vectors, one per cycle, and counts from its result cycle. The
// ifetches are placed as early as the queue and the streams allow; an entry that would dispatch
// before its text arrived is an error naming the queue.
void Scheduler::plan_ifetch() {
  const auto depth = static_cast<std::size_t>(chip_.icu.queue_depth);
  const auto per_fetch = static_cast<std::size_t>(chip_.icu.ifetch_bytes / isa::kSlotBytes);
  const auto steps = static_cast<std::uint32_t>((chip_.icu.ifetch_bytes + lanes_ - 1) / lanes_);
  const auto& ic = lat("ifetch");
  std::vector<std::uint16_t> text;  // the instruction slices
  for (const auto& q : queues_)
    if (q.unit == arch::QueueUnit::kMem &&
        q.instance >= chip_.mem.slices_per_hemisphere - chip_.icu.instruction_slices)
      text.push_back(q.id);
  text_next_.assign(queues_.size(), 0);
  std::set<std::uint16_t> queues;
  for (const Block& b : blocks_)
    queues.insert(b.queue);
  for (std::uint16_t qid : queues) {
    const std::vector<std::uint64_t> cyc = entry_cycles(qid);
    if (cyc.size() <= depth) continue;
    if (text.empty() || per_fetch < 2)
      throw InputError(source_, "queue " + queues_[qid].name + " needs " +
                                    std::to_string(cyc.size()) +
                                    " instructions, more than "
                                    "chip.icu.queue_depth, and the chip has no instruction "
                                    "slices to fetch more from");
    // With F fetches the queue holds D + F * per_fetch entries, F of them the fetches.
    const std::size_t f = (cyc.size() - depth + per_fetch - 2) / (per_fetch - 1);
    std::uint64_t lo = 0;
    std::vector<std::uint64_t> ready;  // result cycle of each fetch
    // Fetches go in batches: one read (with a repeat) of the text slice feeds up to 32
    // consecutive ifetches, so that the slice's own queue holds two entries per batch.
    constexpr std::size_t kBatch = 32;
    // A batch needs its queue for batch x steps cycles in a row; where separate instructions
    // leave only short gaps, smaller batches (down to one ifetch) come in time. Fetch j must
    // be ready before entry D + j * per_fetch dispatches; counted without the fetches (each
    // takes an entry of its own), that is about entry D + j * (per_fetch - 1) - 1.
    auto due = [&](std::size_t j) {
      const std::size_t i = depth + j * (per_fetch - 1) - 1;
      return i < cyc.size() ? cyc[i] : ~std::uint64_t{0};
    };
    for (std::size_t k = 0; k < f;) {
      std::optional<std::pair<Op, std::uint64_t>> best;
      std::uint16_t best_slice = 0;
      std::uint32_t batch = 0;
      for (std::size_t want :
           {kBatch, std::size_t{8}, std::size_t{2}, std::size_t{1}, std::size_t{0}}) {
        if (best) break;
        const auto bsize =
            static_cast<std::uint32_t>(std::min(std::max<std::size_t>(want, 1), f - k));
        const std::uint32_t span = bsize * steps;  // vectors of text the batch reads
        // the latest start that has each fetch ready in time (none for the last resort)
        std::uint64_t before = ~std::uint64_t{0};
        for (std::uint32_t j = 0; j < bsize && want > 0; ++j) {
          const std::uint64_t ready_off =
              (j + 1) * steps - 1 + static_cast<std::uint64_t>(ic.d_func);
          const std::uint64_t d = due(k + j);
          if (d != ~std::uint64_t{0})
            before = std::min(before, d > ready_off ? d - ready_off + 1 : 0);
        }
        // The queue's own free run first (the same for every text slice and stream).
        Op qop;
        qop.lo = lo;
        use_queue(qop, qid, -ic.d_skew, span);
        const auto from = fit(qop, before);
        if (!from) continue;
        if (auto found = fetch_batch(qid, bsize, *from, before, text)) {
          best = {std::move(found->op), found->t};
          best_slice = found->slice;
          batch = bsize;
        }
      }
      const std::uint32_t span = batch * steps;
      if (!best)
        throw InputError(source_, "queue " + queues_[qid].name +
                                      ": no room left in the instruction slices for its text");
      commit(best->first, best->second);
      for (std::uint32_t j = 0; j < batch; ++j) {
        fetches_.push_back({qid, best_slice, text_next_[best_slice], k + j});
        text_next_[best_slice] += steps;
        ready.push_back(best->second + (j + 1) * steps - 1 + static_cast<std::uint64_t>(ic.d_func));
      }
      lo = best->second + span;
      k += batch;
    }
    // Every entry must find its text: entry i dispatching in cycle t needs
    // D + per_fetch * (fetches ready by t) > i.
    const std::vector<std::uint64_t> all = entry_cycles(qid);
    for (std::size_t i = depth; i < all.size(); ++i) {
      const auto fetched = static_cast<std::size_t>(
          std::upper_bound(ready.begin(), ready.end(), all[i]) - ready.begin());
      if (depth + per_fetch * fetched <= i)
        throw InputError(source_, "queue " + queues_[qid].name + " needs " +
                                      std::to_string(all.size()) +
                                      " instructions; its instruction " + std::to_string(i) +
                                      " dispatches in cycle " + std::to_string(all[i]) +
                                      " before ifetch can bring it (chip.icu.queue_depth = " +
                                      std::to_string(depth) + ")");
    }
  }
  // The instruction slices' own queues (their text reads) must fit what is preloaded.
  for (auto sl : text)
    if (entry_cycles(sl).size() > depth)
      throw InputError(source_, "the instruction slice " + queues_[sl].name + " needs " +
                                    std::to_string(entry_cycles(sl).size()) +
                                    " reads of instruction text, more than its own queue holds "
                                    "(chip.icu.queue_depth = " +
                                    std::to_string(depth) + ")");
}

std::optional<Scheduler::FetchFit> Scheduler::fetch_batch(std::uint16_t qid, std::uint32_t bsize,
                                                          std::uint64_t from, std::uint64_t before,
                                                          const std::vector<std::uint16_t>& text) {
  const auto steps = static_cast<std::uint32_t>((chip_.icu.ifetch_bytes + lanes_ - 1) / lanes_);
  const auto& ic = lat("ifetch");
  const auto& rd = lat("read");
  const std::uint32_t span = bsize * steps;  // vectors of text the batch reads
  std::optional<FetchFit> best;
  for (auto sl : text) {
    if (text_next_[sl] + span > static_cast<std::uint32_t>(chip_.mem.depth)) continue;
    const arch::Queue& sq = q(sl);
    const int pq = q(qid).position;
    const bool west = sq.position > pq;  // toward the queue
    for (int st = 0; st < chip_.streams.per_direction; ++st) {
      // An ALU reads only the stream groups of its row (brief A3).
      if (q(qid).unit == arch::QueueUnit::kVxm && !chip_.vxm.row_stream_groups.empty()) {
        const auto& ok =
            chip_.vxm
                .row_stream_groups[static_cast<std::size_t>(q(qid).instance / chip_.vxm.ranks)];
        if (std::find(ok.begin(), ok.end(), st / 4) == ok.end()) continue;
      }
      Op op;
      op.lo = from;
      const std::int64_t written = -dist(sq.position, pq);
      const std::int64_t access = written - rd.d_func;
      const std::int64_t d = access - rd.d_skew;
      use_queue(op, sl, d, span);
      use_mem(op, sl, false, access, span, 1, text_next_[sl], text_next_[sl] + span - 1);
      use_stream(op, st, west, written + key_const(west, sq.position), span, sq.position, pq);
      Emit r;
      r.queue = sl;
      r.off = d;
      r.instr = instr("read");
      r.instr.arg[0] = text_next_[sl];
      r.instr.arg[1] = isa::stream_arg(st, west);
      r.count = span;
      r.done_off = written + sl_ - 1;
      op.emits.push_back(std::move(r));
      use_queue(op, qid, -ic.d_skew, span);
      for (std::uint32_t j = 0; j < bsize; ++j) {
        Emit e;
        e.queue = qid;
        e.off = -ic.d_skew + static_cast<std::int64_t>(j * steps);
        e.instr = instr("ifetch");
        e.instr.arg[0] = isa::stream_arg(st, west);
        e.self_counted = true;
        e.count = steps;
        e.v0 = static_cast<std::int64_t>(j * steps);
        e.done_off = static_cast<std::int64_t>((j + 1) * steps) - 1 + ic.d_func + sl_ - 1;
        e.expects = {0};
        op.emits.push_back(std::move(e));
      }
      if (auto t = fit(op, best ? std::min(best->t, before) : before);
          t && (!best || *t < best->t)) {
        best = FetchFit{op, *t, sl};
      }
      if (best && best->t == op_lower_bound(best->op)) break;
    }
  }
  return best;
}

}  // namespace lpu::compiler::scheduling
