// The program: instructions, repeats and expectations per queue; the MEM self-check.
#include "compiler/schedule/scheduling.h"

namespace lpu::compiler::scheduling {

// A self-check (ScheduleOptions::check_memory): replays every MEM read and write in time order and
// requires each read to find the tensor it is reading, not a later tenant of the same address.
void Scheduler::check_memory() const {
  struct Ev {
    std::uint64_t cycle;
    std::uint16_t slice;
    std::uint32_t addr;
    bool write;
    int tensor;
  };
  std::vector<Ev> evs;
  const auto skew_r = static_cast<std::uint64_t>(lat("read").d_skew);
  const auto skew_w = static_cast<std::uint64_t>(lat("write").d_skew);
  for (const Block& b : blocks_) {
    if (b.tensor < 0) continue;
    const bool w = b.instr.opcode == isa::by_mnemonic("write")->opcode;
    for (std::uint32_t k = 0; k < b.count; ++k) {
      const std::uint32_t addr = b.instr.arg[0] + (b.separate ? k * b.addr_step : k);
      evs.push_back({b.dispatch + (w ? skew_w : skew_r) + static_cast<std::uint64_t>(k) * b.stride,
                     b.queue, addr, w, b.tensor});
    }
  }
  std::stable_sort(evs.begin(), evs.end(),
                   [](const Ev& a, const Ev& b) { return a.cycle < b.cycle; });
  std::map<std::pair<std::uint16_t, std::uint32_t>, int> owner;
  for (std::size_t t = 0; t < k_.tensors.size(); ++t) {  // what the host loads
    const auto role = k_.tensors[t].role;
    if ((role != KTensor::Role::kInput && role != KTensor::Role::kConstant) || !place_[t].placed ||
        root(static_cast<int>(t)) != static_cast<int>(t))
      continue;
    const std::int64_t vr = k_.tensors[t].vector_rows(lanes_);
    for (std::int64_t r = 0; r < vr; ++r)
      for (int b = 0; b < isa::dtype_bytes(k_.tensors[t].dtype); ++b)
        owner[at(static_cast<int>(t), r, b)] = static_cast<int>(t);
    for (const auto& [slices, addr] : place_[t].replicas)  // copies hold it too
      for (std::uint32_t r = 0; r < place_[t].vectors; ++r)
        for (auto sl : slices)
          owner[{sl, addr + r}] = static_cast<int>(t);
    for (const TensorPlace::PieceCopy& copy : place_[t].piece_copies)
      for (std::size_t pc = 0; pc < copy.addr.size(); ++pc)
        for (std::uint32_t a = 0; a < place_[t].block_addrs; ++a)
          for (std::size_t s = 0; s < 16; ++s)
            owner[{copy.slices[16 * pc + s], copy.addr[pc] + a}] = static_cast<int>(t);
  }
  for (const Ev& e : evs) {
    if (e.write) {
      owner[{e.slice, e.addr}] = e.tensor;
      continue;
    }
    auto it = owner.find({e.slice, e.addr});
    const TensorPlace& rp = place_[static_cast<std::size_t>(e.tensor)];
    if (it == owner.end()) {
      if (rp.weights || rp.t16) continue;  // padding rows: never written, zero
      throw std::logic_error("scheduler memory check: cycle " + std::to_string(e.cycle) + ", " +
                             queues_[e.slice].name + ":" + std::to_string(e.addr) + " read for '" +
                             name(e.tensor) + "' before anything was written");
    }
    const int o = it->second;
    if (o == e.tensor) continue;
    if (place_[static_cast<std::size_t>(e.tensor)].t16) continue;  // padding rows
    throw std::logic_error("scheduler memory check: cycle " + std::to_string(e.cycle) + ", " +
                           queues_[e.slice].name + ":" + std::to_string(e.addr) + " read for '" +
                           name(e.tensor) + "' holds '" + (o >= 0 ? name(o) : "?") + "'");
  }
}

Schedule Scheduler::emit() {
  Schedule out;
  isa::Program& prog = out.program;
  prog.arch = arch_;
  std::map<std::uint16_t, std::vector<int>> by_queue;
  for (std::size_t i = 0; i < blocks_.size(); ++i)
    by_queue[blocks_[i].queue].push_back(static_cast<int>(i));
  std::map<std::uint16_t, IssueOrder> orders;  // the same on every chip
  for (auto& [queue, list] : by_queue)
    orders[queue] = issue_order(std::move(list));
  const std::vector<std::vector<std::uint32_t>> entries_of = number_entries(orders);
  std::uint64_t end = 0;
  for (int chip = 0; chip < chips_; ++chip) {
    isa::ChipProgram cp;
    cp.chip = static_cast<std::uint32_t>(chip);
    for (const auto& [queue, order] : orders)
      cp.queues.push_back(queue_program(chip, queue, order, entries_of, end));
    fetch_images(chip, cp, prog);
    if (!cp.queues.empty()) prog.chips.push_back(std::move(cp));
  }
  prog.predicted_cycles = end;
  if (opt_.check_memory) check_memory();
  out.cycles = end;

  for (int chip = 0; chip < chips_; ++chip)
    for (std::size_t t = 0; t < k_.tensors.size(); ++t)
      if (used(static_cast<int>(t)))  // (not e.g. an fp32 constant only split on the host)
        tensor_record(chip, static_cast<int>(t), out);
  out.reused.assign(k_.tensors.size(), false);
  for (std::size_t t = 0; t < k_.tensors.size(); ++t)
    out.reused[t] = place_[static_cast<std::size_t>(root(static_cast<int>(t)))].freed;
  for (const auto& q : queues_)  // the highest address each slice used, with reuse
    if (q.unit == arch::QueueUnit::kMem)
      out.mem_bytes[q.hemisphere == arch::Hemisphere::kWest ? 0 : 1] +=
          high_[q.id] * static_cast<std::uint64_t>(lanes_);
  out.vxm_busy = vxm_busy_;
  out.steps = step_timing_;
  out.mxm_busy = mxm_busy_;
  out.sends = sends_;
  struct Where : isa::SourceMap {
    lpu::Where instruction(std::uint32_t chip, std::uint16_t queue, std::size_t index,
                           int) const override {
      return "compiled program: chip " + std::to_string(chip) + " queue " + std::to_string(queue) +
             " instruction " + std::to_string(index);
    }
    lpu::Where tensor(std::size_t i) const override {
      return "compiled program: tensor " + std::to_string(i);
    }
    lpu::Where image(std::size_t i) const override {
      return "compiled program: image " + std::to_string(i);
    }
  } where;
  if (logs("instr")) log_instructions();
  try {
    isa::validate(prog, where);
  } catch (const InputError& e) {  // the scheduler's own bug, not the user's
    throw std::logic_error(std::string("scheduler emitted an invalid program: ") + e.what());
  }
  return out;
}

Scheduler::IssueOrder Scheduler::issue_order(std::vector<int> list) const {
  std::sort(list.begin(), list.end(), [&](int a, int b) {
    return blocks_[static_cast<std::size_t>(a)].dispatch <
           blocks_[static_cast<std::size_t>(b)].dispatch;
  });
  // A block is its first instruction and either its repeat or its separate instructions (k =
  // 1 ..); separate ones may leave room for other blocks' instructions between them.
  struct Item {
    std::uint64_t cycle;
    int block;
    std::uint32_t k;
  };
  std::vector<Item> items;
  for (int bi : list) {
    const Block& b = blocks_[static_cast<std::size_t>(bi)];
    items.push_back({b.dispatch, bi, 0});
    if (b.count > 1 && !b.self_counted) {
      if (b.separate)
        for (std::uint32_t i = 1; i < b.count; ++i)
          items.push_back({b.dispatch + static_cast<std::uint64_t>(i) * b.stride, bi, i});
      else
        items.push_back({b.dispatch + b.stride, bi, 1});
    }
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.cycle < y.cycle; });
  std::vector<std::pair<int, std::uint32_t>> out;
  out.reserve(items.size());
  for (const Item& it : items)
    out.push_back({it.block, it.k});
  return out;
}

std::vector<std::vector<std::uint32_t>> Scheduler::number_entries(
    const std::map<std::uint16_t, IssueOrder>& orders) const {
  std::vector<std::vector<std::uint32_t>> entries_of(blocks_.size());
  for (const auto& [queue, order] : orders) {
    std::uint32_t n = 0;
    for (const auto& [bi, k] : order) {
      (void)k;  // a block's items come in order of k
      entries_of[static_cast<std::size_t>(bi)].push_back(n++);
    }
    if (n > static_cast<std::uint32_t>(chip_.icu.queue_depth) && chip_.icu.preloaded)
      throw InputError(source_, "queue " + queues_[queue].name + " needs " + std::to_string(n) +
                                    " instructions; a preloaded queue holds at most "
                                    "chip.icu.queue_depth = " +
                                    std::to_string(chip_.icu.queue_depth));
  }
  return entries_of;
}

isa::QueueProgram Scheduler::queue_program(
    int chip, std::uint16_t queue, const IssueOrder& order,
    const std::vector<std::vector<std::uint32_t>>& entries_of, std::uint64_t& end) const {
  const auto rep = isa::by_mnemonic("repeat")->opcode;
  isa::QueueProgram qp;
  qp.queue = queue;
  for (const auto& [bi, k] : order) {
    const Block& b = blocks_[static_cast<std::size_t>(bi)];
    // Entry k of the block (k > 0 only for separate instructions) expects, of each producer
    // block, the repetition that carries its vector (Emit::v0, vs).
    auto expect_of = [&](std::uint32_t k) {
      std::vector<isa::InstrRef> expect;
      const std::int64_t v0c = b.v0 + (b.separate ? k * b.vs : 0);
      for (int pb : b.expects) {
        const Block& pr = blocks_[static_cast<std::size_t>(pb)];
        const auto& ents = entries_of[static_cast<std::size_t>(pb)];
        for (std::size_t i = 0; i < ents.size(); ++i) {
          isa::InstrRef r;
          r.queue = pr.queue;
          r.index = ents[i];
          r.mul = static_cast<std::int32_t>(b.vs);
          if (pr.separate) {  // each instruction carries one vector (repetition 0)
            r.add = static_cast<std::int32_t>(v0c - (pr.v0 + static_cast<std::int64_t>(i) * pr.vs));
            r.div = 1;
          } else {
            r.add = static_cast<std::int32_t>(v0c - pr.v0);
            r.div = static_cast<std::uint16_t>(pr.vs);
          }
          expect.push_back(r);
        }
      }
      return expect;
    };
    isa::Entry e;
    e.instr = patched(b, chip);
    e.cycle = b.dispatch;
    std::uint64_t done = b.first_done;
    if (k > 0 && b.separate) {
      e.instr.arg[0] += k * b.addr_step;  // (MEM runs: the next address)
      e.cycle += static_cast<std::uint64_t>(k) * b.stride;
      done += static_cast<std::uint64_t>(k) * b.stride;
    } else if (k > 0) {
      e.instr = isa::Instr{};
      e.instr.opcode = rep;
      e.instr.arg[0] = b.count - 1;
      e.instr.arg[1] = b.stride;
      e.cycle = b.dispatch + b.stride;
      done = b.first_done + static_cast<std::uint64_t>(b.count - 1) * b.stride;
    }
    e.done = done;
    e.expect = b.expects.empty() ? std::vector<isa::InstrRef>{} : expect_of(b.separate ? k : 0);
    end = std::max(end, done + 1);
    qp.entries.push_back(std::move(e));
  }
  return qp;
}

void Scheduler::fetch_images(int chip, const isa::ChipProgram& cp, isa::Program& prog) const {
  // The instruction text the ifetches stream: fetch k of a queue carries its entries
  // D + k * per_fetch onward, as 16-byte slots.
  for (const Fetch& f : fetches_) {
    const isa::QueueProgram* qp = nullptr;
    for (const auto& x : cp.queues)
      if (x.queue == f.queue) qp = &x;
    isa::Image im;
    im.chip = static_cast<std::uint32_t>(chip);
    im.slice = f.slice;
    im.addr = f.addr;
    const auto per_fetch = static_cast<std::size_t>(chip_.icu.ifetch_bytes / isa::kSlotBytes);
    const auto steps = static_cast<std::size_t>((chip_.icu.ifetch_bytes + lanes_ - 1) / lanes_);
    im.bytes.assign(steps * static_cast<std::size_t>(lanes_), 0);
    const std::size_t first = static_cast<std::size_t>(chip_.icu.queue_depth) + f.k * per_fetch;
    for (std::size_t i = 0; i < per_fetch && qp && first + i < qp->entries.size(); ++i) {
      const isa::Word w = isa::encode(qp->entries[first + i].instr);
      std::copy(w.begin(), w.end(), im.bytes.begin() + static_cast<std::ptrdiff_t>(i * w.size()));
    }
    prog.images.push_back(std::move(im));
  }
}

void Scheduler::tensor_record(int chip, int t, Schedule& out) const {
  isa::Program& prog = out.program;
  const KTensor& kt =
      spmd_ ? (*spmd_)[static_cast<std::size_t>(chip)].tensors[static_cast<std::size_t>(t)]
            : k_.tensors[static_cast<std::size_t>(t)];
  const TensorPlace& tp = P(t);
  const int bytes = isa::dtype_bytes(kt.dtype);
  isa::Tensor it;
  it.name = chips_ > 1 ? kt.name + "@" + std::to_string(chip) : kt.name;
  it.chip = static_cast<std::uint32_t>(chip);
  it.role = kt.role == KTensor::Role::kInput      ? isa::TensorRole::kInput
            : kt.role == KTensor::Role::kOutput   ? isa::TensorRole::kOutput
            : kt.role == KTensor::Role::kConstant ? isa::TensorRole::kConstant
                                                  : isa::TensorRole::kScratch;
  it.dtype = kt.dtype;
  for (auto d : kt.shape)
    it.shape.push_back(static_cast<std::uint64_t>(d));
  it.layout = "rows";
  std::string where;
  if (!tp.weights && !tp.t16 && !tp.chunked && tp.il == 1) {
    for (auto sl : tp.slices) {
      it.placements.push_back({sl, tp.addr, tp.vectors});
      where += (where.empty() ? "" : ", ") + queues_[sl].name + ":" + std::to_string(tp.addr) +
               "+" + std::to_string(tp.vectors);
    }
  } else {
    // One placement per vector, in vector-row order (isa/layout.h).
    const std::int64_t vrows = kt.vector_rows(lanes_);
    for (std::int64_t vr = 0; vr < vrows; ++vr)
      for (int b = 0; b < bytes; ++b) {
        const auto [sl, addr] = at(t, vr, b);
        it.placements.push_back({sl, addr, 1});
      }
    where = tp.weights ? "weights, " + std::to_string(tp.piece_addr.size()) + " piece(s) of " +
                             std::to_string(tp.block_addrs) +
                             " vectors on 16 slices each, rows interleaved" +
                             (tp.piece_copies.empty() ? "" : ", and a copy of each")
            : tp.il > 1 ? "rows dealt over " + std::to_string(tp.il) + " groups of slices"
                        : "rows spread over 16 slices from " + queues_[tp.slices[0]].name + ":" +
                              std::to_string(tp.addr);
  }
  if (chip == 0) out.placements.push_back({kt.name, where});
  if (kt.role == KTensor::Role::kConstant) constant_images(chip, kt, tp, prog);
  prog.tensors.push_back(std::move(it));
}

void Scheduler::constant_images(int chip, const KTensor& kt, const TensorPlace& tp,
                                isa::Program& prog) const {
  const int bytes = isa::dtype_bytes(kt.dtype);
  const std::int64_t cols = kt.cols();
  if (!tp.weights) {
    // The tensor's own range and its copies (TensorPlace::replicas) hold the same data.
    std::vector<std::pair<std::vector<std::uint16_t>, std::uint32_t>> copies = {
        {tp.slices, tp.addr}};
    copies.insert(copies.end(), tp.replicas.begin(), tp.replicas.end());
    for (const auto& [copy_slices, copy_addr] : copies)
      for (int b = 0; b < bytes; ++b) {
        isa::Image im;
        im.chip = static_cast<std::uint32_t>(chip);
        im.slice = copy_slices[static_cast<std::size_t>(b)];
        im.addr = copy_addr;
        im.bytes.assign(static_cast<std::size_t>(tp.vectors) * static_cast<std::size_t>(lanes_), 0);
        for (std::int64_t r = 0; r < kt.rows(); ++r)
          for (std::int64_t c = 0; c < cols; ++c) {
            const std::int64_t vr = (c / lanes_) * kt.rows() + r;
            im.bytes[static_cast<std::size_t>(vr * lanes_ + c % lanes_)] =
                kt.data[static_cast<std::size_t>((r * cols + c) * bytes + b)];
          }
        prog.images.push_back(std::move(im));
      }
  } else {
    // One image per piece and slice (the rows past K stay zero).
    std::map<std::pair<std::uint16_t, std::uint32_t>, isa::Image> images;
    for (std::size_t pc = 0; pc < tp.piece_addr.size(); ++pc)
      for (int s = 0; s < 16; ++s) {
        const std::uint16_t sl = tp.piece_slices[16 * pc + static_cast<std::size_t>(s)];
        isa::Image& im = images[{sl, tp.piece_addr[pc]}];
        im.chip = static_cast<std::uint32_t>(chip);
        im.slice = sl;
        im.addr = tp.piece_addr[pc];
        im.bytes.assign(static_cast<std::size_t>(tp.block_addrs) * static_cast<std::size_t>(lanes_),
                        0);
      }
    // A row's byte plane b of one column tile is one vector of one image.
    for (std::int64_t r = 0; r < kt.rows(); ++r)
      for (int b = 0; b < bytes; ++b)
        for (std::int64_t tn = 0; tn * lanes_ < cols; ++tn) {
          const std::size_t pc = weight_piece(tp, r, tn);
          const auto [sl, addr] = weight_at(tp, bytes, r, tn, b);
          std::uint8_t* to =
              images[{sl, tp.piece_addr[pc]}].bytes.data() +
              static_cast<std::size_t>(addr - tp.piece_addr[pc]) * static_cast<std::size_t>(lanes_);
          const std::int64_t c1 = std::min<std::int64_t>(cols, (tn + 1) * lanes_);
          const std::uint8_t* from = kt.data.data() + (r * cols + tn * lanes_) * bytes + b;
          for (std::int64_t c = tn * lanes_; c < c1; ++c, from += bytes)
            to[c - tn * lanes_] = *from;
        }
    for (const TensorPlace::PieceCopy& copy : tp.piece_copies)  // the same images elsewhere
      for (std::size_t pc = 0; pc < tp.piece_addr.size(); ++pc)
        for (std::size_t s = 0; s < 16; ++s) {
          isa::Image im = images.at({tp.piece_slices[16 * pc + s], tp.piece_addr[pc]});
          im.slice = copy.slices[16 * pc + s];
          im.addr = copy.addr[pc];
          prog.images.push_back(std::move(im));
        }
    for (auto& [key, im] : images)
      prog.images.push_back(std::move(im));
  }
}

void Scheduler::log_instructions() const {  // MEM instructions per tensor, the most first
  std::map<int, std::uint64_t> per;
  for (const Block& b : blocks_)
    if (b.tensor >= 0) per[b.tensor] += b.count > 1 && !b.separate ? 2 : b.count;
  std::vector<std::pair<std::uint64_t, int>> v;
  for (auto [t, c] : per)
    v.push_back({c, t});
  std::sort(v.rbegin(), v.rend());
  for (std::size_t i = 0; i < v.size() && i < 15; ++i)
    std::fprintf(stderr, "%8llu %s\n", static_cast<unsigned long long>(v[i].first),
                 k_.tensors[static_cast<std::size_t>(v[i].second)].name.c_str());
}

}  // namespace lpu::compiler::scheduling
