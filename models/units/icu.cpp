#include "units/icu.h"

#include <algorithm>
#include <functional>

namespace lpu::units {

Icu::Icu(const sc_core::sc_module_name& name, ChipContext& ctx, const isa::ChipProgram* program,
         std::vector<Unit*> unit_of_queue)
    : Unit(name, ctx),
      program_(program),
      unit_of_queue_(std::move(unit_of_queue)),
      latency_(256),
      cursor_index_(ctx.queues.size(), -1),
      superlanes_(ctx.arch->chip.superlanes) {
  const auto& chip = ctx.arch->chip;
  const auto& classes = arch::latency_classes();
  class_of_.assign(256, 0);
  class_issues_.assign(classes.size(), 0);
  for (const auto& op : isa::table()) {
    latency_[op.opcode] = chip.latency_of(op.latency_class);
    class_of_[op.opcode] = static_cast<std::uint8_t>(
        std::find(classes.begin(), classes.end(), op.latency_class) - classes.begin());
    skew_lag_ =
        std::max<std::uint64_t>(skew_lag_, static_cast<std::uint64_t>(latency_[op.opcode].d_skew));
  }
  if (!program_) return;
  for (const auto& q : program_->queues) {
    Cursor c;
    c.queue = &ctx.queues[q.queue];
    c.prog = &q;
    const auto depth = static_cast<std::uint64_t>(chip.icu.queue_depth);
    c.fetched =
        chip.icu.preloaded ? q.entries.size() : std::min<std::uint64_t>(q.entries.size(), depth);
    cursor_index_[q.queue] = static_cast<int>(cursors_.size());
    cursors_.push_back(std::move(c));
  }
}

void Icu::timing_error(const Cursor& c, std::uint64_t cycle, const std::string& message) {
  Issue at;
  at.queue = c.queue;
  at.index = c.index;
  at.access = cycle;
  ctx_.error(at, message);
}

bool Icu::expand(Cursor& c) {
  if (c.next >= c.prog->entries.size()) return false;
  const std::size_t idx = c.next++;
  const isa::Entry& e = c.prog->entries[idx];
  c.index = static_cast<std::uint32_t>(idx);
  c.entry = &e;
  c.instr = &e.instr;
  c.first = e.cycle;
  c.stride = 1;
  c.step = 0;
  c.step_base = 0;
  c.steps = 1;

  const auto op = e.instr.opcode;
  if (op == 0x05) {  // repeat n, d: the previous unit instruction again, n times, d apart
    c.instr = c.last_unit_instr;
    c.steps = e.instr.arg[0];
    c.stride = e.instr.arg[1];
    c.step_base = 1;
  } else if (op == 0x63 || op == 0x64) {  // abc n, acc n: a vector per step (fp16: slower)
    c.steps = e.instr.arg[1];
    c.stride = isa::step_cycles(e.instr, ctx_.arch->chip);
  } else if (op == 0x01) {  // ifetch: its bytes arrive one vector per cycle
    const int vb = ctx_.lanes;
    c.steps = static_cast<std::uint32_t>((ctx_.arch->chip.icu.ifetch_bytes + vb - 1) / vb);
  }
  if (e.instr.info().unit != isa::Unit::kIcu) c.last_unit_instr = &e.instr;
  c.unit = c.instr->info().unit == isa::Unit::kIcu ? this : unit_of_queue_[c.queue->id];
  return true;
}

void Icu::check_dispatch(Cursor& c) {
  const isa::Entry& e = *c.entry;
  const std::size_t idx = c.index;
  // Instruction text must be in the queue before it dispatches.
  std::uint64_t available = c.fetched;
  for (const auto& f : c.fetches)
    if (f.first <= e.cycle) available += f.second;
  if (idx >= available)
    timing_error(c, e.cycle,
                 "instruction " + std::to_string(idx) +
                     " dispatches before it was fetched: the queue holds " +
                     std::to_string(available) + " instruction(s) by cycle " +
                     std::to_string(e.cycle) + " (chip.icu.queue_depth, then ifetch)");
  // A queue parked at a Sync waits for the next Notify, plus its latency.
  if (c.parked_at != ~0ull) {
    auto it = std::lower_bound(notifies_.begin(), notifies_.end(), c.parked_at);
    const std::uint64_t lat = static_cast<std::uint64_t>(latency_[0x03].d_func);
    if (it == notifies_.end())
      timing_error(c, e.cycle,
                   "dispatches in cycle " + std::to_string(e.cycle) +
                       " while its queue is parked at the sync of cycle " +
                       std::to_string(c.parked_at) + " and no notify has released it");
    else if (*it + lat > e.cycle)
      timing_error(c, e.cycle,
                   "dispatches in cycle " + std::to_string(e.cycle) + " but the notify of cycle " +
                       std::to_string(*it) + " releases the queue only in cycle " +
                       std::to_string(*it + lat));
    c.parked_at = ~0ull;
  }
}

void Icu::materialize(Cursor& c) {
  if (c.step == 0) check_dispatch(c);
  std::uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<std::uint32_t>(slab_.size());
    slab_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  Slot& s = slab_[slot];
  Issue& is = s.issue;
  is.queue = c.queue;
  is.index = c.index;
  is.step = c.step_base + c.step;
  is.instr = c.instr;
  is.entry = c.entry;
  is.dispatch = c.dispatch();
  const arch::Latency& lat = latency(*c.instr);
  is.access = is.dispatch + static_cast<std::uint64_t>(lat.d_skew);
  is.result = is.access + static_cast<std::uint64_t>(lat.d_func);
  s.unit = c.unit;
  s.last = c.step + 1 == c.steps;
  ++c.step;
  wait(slot, is.access);
}

void Icu::execute(const Issue& is) {
  ++stats_.instructions;
  const isa::Instr& in = *is.instr;
  switch (in.opcode) {
    case 0x00:  // nop
      return;
    case 0x01: {  // ifetch s: one vector of instruction text per step
      const std::uint8_t* plane = nullptr;
      if (!read_group(is, in.arg[0], 1, &plane)) return;
      if (last_step_) {
        Cursor& c = cursor_of(is.queue);
        c.fetches.emplace_back(is.result,
                               static_cast<std::uint64_t>(ctx_.arch->chip.icu.ifetch_bytes / 16));
      }
      return;
    }
    case 0x02:  // sync
      cursor_of(is.queue).parked_at = is.access;
      return;
    case 0x03:  // notify
      notifies_.push_back(is.access);
      return;
    case 0x04:  // config superlanes
      configs_.emplace_back(is.result, static_cast<int>(in.arg[0]));
      return;
    default:
      ctx_.error(is, std::string("'") + in.info().mnemonic + "' is not an ICU instruction");
  }
}

void Icu::execute(Slot& p) {
  Issue& is = p.issue;
  if (ctx_.options.max_cycles && is.access > ctx_.options.max_cycles) {
    ctx_.error(is, "the run passes --max-cycles " + std::to_string(ctx_.options.max_cycles));
    throw StopRun{};
  }
  while (config_at_ < configs_.size() && configs_[config_at_].first <= is.access)
    superlanes_ = configs_[config_at_++].second;
  is.superlanes = superlanes_;
  if (is.access > skew_lag_) ctx_.fabric->advance(is.access - skew_lag_);
  // Loosely timed: run ahead of SystemC time by less than a quantum; an issue past the quantum
  // first brings SystemC time up to its cycle (so that other chips have done everything up to a
  // quantum before it: a C2C frame is always sent before it is received).
  if (is.access >= next_sync_) {
    const sc_core::sc_time t = sc_core::sc_time(1.0 / ctx_.arch->chip.clock_mhz, sc_core::SC_US) *
                               static_cast<double>(is.access);
    if (t > sc_core::sc_time_stamp()) {
      qk_.set(t - sc_core::sc_time_stamp());
      qk_.sync();
    }
    next_sync_ = is.access + quantum_cycles_;
    // A transactor that found a mismatch while SystemC time ran asks the run to stop here.
    if (ctx_.stop_requested) throw StopRun{};
  }

  last_step_ = p.last;
  p.unit->execute(is);
  ++issues_;
  ++class_issues_[class_of_[is.instr->opcode]];
  if (p.last) {
    ++instructions_;
    const std::uint64_t done = is.result + static_cast<std::uint64_t>(superlanes_ - 1);
    end_cycle_ = std::max(end_cycle_, done + 1);
    if (is.entry->done && *is.entry->done != done)
      ctx_.error(is, "completes in cycle " + std::to_string(done) +
                         " but the program predicts cycle " + std::to_string(*is.entry->done));
  }
}

void Icu::wait(std::uint32_t slot, std::uint64_t access) {
  if (waiting_ == 0) {
    low_ = high_ = access;
  } else {
    low_ = std::min(low_, access);
    high_ = std::max(high_, access);
  }
  const std::uint64_t floor =
      current_at_ < current_.size() ? std::min(low_, current_access_) : low_;
  if (high_ - floor > bucket_mask_)
    throw std::logic_error("Icu: waiting issues span more than the calendar");
  buckets_[access & bucket_mask_].push_back(slot);
  ++waiting_;
}

std::uint32_t Icu::take() {
  if (current_at_ == current_.size()) {
    // Move the earliest bucket out; then find the next earliest.
    auto& b = buckets_[low_ & bucket_mask_];
    current_.clear();
    current_.swap(b);
    current_at_ = 0;
    current_access_ = low_;
    waiting_ -= current_.size();
    if (waiting_)
      while (buckets_[++low_ & bucket_mask_].empty()) {
      }
  }
  return current_[current_at_++];
}

void Icu::schedule(std::uint32_t cursor) {
  const std::uint64_t d = cursors_[cursor].dispatch();  // never before dispatch_now_ (in order)
  if (d - dispatch_now_ <= dispatch_mask_) {
    dispatch_buckets_[d & dispatch_mask_].push_back(cursor);
    ++dispatch_near_;
  } else {
    dispatch_far_.push({d, cursor});
  }
}

bool Icu::advance_dispatch(std::uint64_t* cycle) {
  for (;;) {
    auto& b = dispatch_buckets_[dispatch_now_ & dispatch_mask_];
    if (dispatch_at_ < b.size()) {
      *cycle = dispatch_now_;
      return true;
    }
    if (dispatch_at_) {  // the current bucket is used up
      dispatch_near_ -= b.size();
      b.clear();
      dispatch_at_ = 0;
    }
    if (!dispatch_near_) {
      if (dispatch_far_.empty()) return false;
      dispatch_now_ = dispatch_far_.top().first;  // jump the empty stretch
    } else {
      ++dispatch_now_;
    }
    // Far cursors that came within range join the buckets (in cycle order, then cursor order).
    while (!dispatch_far_.empty() && dispatch_far_.top().first - dispatch_now_ <= dispatch_mask_) {
      const auto [d, i] = dispatch_far_.top();
      dispatch_far_.pop();
      dispatch_buckets_[d & dispatch_mask_].push_back(i);
      ++dispatch_near_;
    }
  }
}

std::uint32_t Icu::take_dispatch() {
  return dispatch_buckets_[dispatch_now_ & dispatch_mask_][dispatch_at_++];
}

void Icu::run() {
  qk_.reset();
  std::size_t buckets = 16;
  while (buckets < 4 * (skew_lag_ + 2))
    buckets *= 2;
  buckets_.assign(buckets, {});
  bucket_mask_ = buckets - 1;
  quantum_cycles_ = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(ctx_.options.quantum_ns * ctx_.arch->chip.clock_mhz / 1000.0));
  dispatch_buckets_.assign(256, {});
  dispatch_mask_ = dispatch_buckets_.size() - 1;
  dispatch_now_ = dispatch_at_ = dispatch_near_ = 0;
  try {
    for (std::uint32_t i = 0; i < cursors_.size(); ++i)
      if (expand(cursors_[i])) dispatch_far_.push({cursors_[i].dispatch(), i});
    constexpr std::uint64_t kNever = ~0ull;
    for (;;) {
      std::uint64_t t_dis = kNever;
      const bool dispatching = next_dispatch(&t_dis);
      if (!dispatching && !any_waiting()) break;
      const std::uint64_t t_acc = any_waiting() ? earliest() : kNever;
      // Every issue whose dispatch is at or before the earliest pending access is known before
      // that access runs, so issues run in order of access cycle across all queues.
      if (t_dis <= t_acc) {
        const std::uint32_t i = take_dispatch();
        Cursor& c = cursors_[i];
        materialize(c);
        if (c.more() || expand(c)) schedule(i);
      } else {
        const std::uint32_t slot = take();
        execute(slab_[slot]);
        free_slots_.push_back(slot);
      }
    }
    std::vector<Unit*> units;
    for (auto* u : unit_of_queue_)
      if (u && std::find(units.begin(), units.end(), u) == units.end()) units.push_back(u);
    for (auto* u : units)
      u->finish(end_cycle_);
    ctx_.fabric->flush();
  } catch (const StopRun&) {
    stopped_ = true;
  }
  qk_.sync();
}

}  // namespace lpu::units
