#include "compiler/scheduler.h"

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>

#include "arch/queues.h"
#include "common/diagnostics.h"

namespace lpu::compiler {

using isa::DType;

namespace {

// Busy intervals [s, e) of one resource, sorted and disjoint.
class Busy {
 public:
  // The end of the first interval overlapping [s, s + len), if any.
  std::optional<std::uint64_t> conflict(std::uint64_t s, std::uint64_t len) const {
    auto it = std::upper_bound(v_.begin(), v_.end(), s,
                               [](std::uint64_t x, const Span& b) { return x < b.e; });
    if (it != v_.end() && it->s < s + len) return it->e;
    return std::nullopt;
  }
  void add(std::uint64_t s, std::uint64_t len) {
    auto it = std::upper_bound(v_.begin(), v_.end(), s,
                               [](std::uint64_t x, const Span& b) { return x < b.s; });
    v_.insert(it, Span{s, s + len});
  }

 private:
  struct Span {
    std::uint64_t s, e;
  };
  std::vector<Span> v_;
};

// A value's claim on one stream: diagonals [k0, k1) between positions p0..p1 (inclusive).
struct Claim {
  std::uint64_t k0, k1;
  int p0, p1;
};

struct TensorPlace {
  std::vector<std::uint16_t> slices;  // one per byte plane
  std::uint32_t addr = 0;             // the same base address in every plane's slice
  std::uint32_t vectors = 0;          // per plane
  bool west = true;
  std::uint64_t ready = 0;  // first cycle its row 0 may be read (all planes written)
};

struct Block {
  std::uint16_t queue;
  std::uint64_t dispatch;
  isa::Instr instr;
  std::uint32_t count = 1;       // vectors: the instruction then "repeat count-1, 1"
  bool separate = false;         // count separate instructions instead of a repeat
  std::uint64_t first_done = 0;  // completion of the first vector
  std::vector<int> expects;      // producer blocks
  std::uint32_t index = 0;       // of its first entry in the queue (set at emission)
};

std::uint8_t mod_code(isa::ModKind k, const std::string& name) {
  const auto& names = isa::mod_names(k);
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<std::uint8_t>(i);
  throw std::logic_error("scheduler: no modifier '" + name + "'");
}

const char* mnemonic(func::VxmOp op) {
  switch (op) {
    case func::VxmOp::kAdd:
      return "add";
    case func::VxmOp::kSub:
      return "sub";
    case func::VxmOp::kMul:
      return "mul";
    case func::VxmOp::kMax:
      return "max";
    case func::VxmOp::kMin:
      return "min";
    case func::VxmOp::kNeg:
      return "neg";
    case func::VxmOp::kAbs:
      return "abs";
    case func::VxmOp::kRelu:
      return "relu";
    case func::VxmOp::kExp:
      return "exp";
    case func::VxmOp::kTanh:
      return "tanh";
    case func::VxmOp::kRsqrt:
      return "rsqrt";
    case func::VxmOp::kMov:
      return "mov";
    default:
      throw std::logic_error(std::string("scheduler: no VXM mnemonic for ") + func::to_string(op));
  }
}

class Scheduler {
 public:
  Scheduler(const Kernels& k, const arch::Arch& arch, const std::string& source)
      : k_(k), arch_(arch), chip_(arch.chip), source_(source), queues_(arch::chip_queues(chip_)) {
    positions_ = static_cast<int>(chip_.slices.size());
    hop_ = static_cast<std::uint64_t>(chip_.streams.hop_cycles);
    lanes_ = chip_.lanes();
    for (const auto& q : queues_) {
      if (q.unit == arch::QueueUnit::kMem) {
        const bool code =
            q.instance >= chip_.mem.slices_per_hemisphere - chip_.icu.instruction_slices;
        if (!code) (q.hemisphere == arch::Hemisphere::kWest ? west_ : east_).push_back(q.id);
      } else if (q.unit == arch::QueueUnit::kVxm) {
        alus_.push_back(q.id);
        vxm_pos_ = q.position;
      }
    }
    queue_busy_.resize(queues_.size());
    port_busy_.resize(queues_.size());
    next_addr_.assign(queues_.size(), 0);
    claims_.resize(static_cast<std::size_t>(chip_.streams.per_direction) * 2);
  }

  Schedule run() {
    place_.resize(k_.tensors.size());
    for (std::size_t t = 0; t < k_.tensors.size(); ++t)
      if (k_.tensors[t].role != KTensor::Role::kTemp &&
          k_.tensors[t].role != KTensor::Role::kOutput)
        place(static_cast<int>(t));
    for (const KStep& s : k_.steps)
      schedule_step(s);
    for (std::size_t t = 0; t < k_.tensors.size(); ++t)
      if (place_[t].slices.empty()) place(static_cast<int>(t));  // never written (unused)
    return emit();
  }

 private:
  const arch::Queue& q(std::uint16_t id) const { return queues_[id]; }
  const arch::Latency& lat(const char* mn) const {
    return chip_.latency_of(isa::by_mnemonic(mn)->latency_class);
  }
  std::uint64_t key_of(bool west, int pos, std::uint64_t cycle) const {
    return west ? cycle + static_cast<std::uint64_t>(pos) * hop_
                : cycle + static_cast<std::uint64_t>(positions_ - 1 - pos) * hop_;
  }
  std::vector<Claim>& claims(int stream, bool west) {
    return claims_[static_cast<std::size_t>(stream) * 2 + (west ? 1 : 0)];
  }

  // Chooses slices for tensor t: one per byte plane, all in one hemisphere, each with room for
  // every vector row at the same address range.
  void place(int t, const std::vector<std::uint16_t>& avoid = {}) {
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
    TensorPlace& p = place_[static_cast<std::size_t>(t)];
    const int bytes = isa::dtype_bytes(kt.dtype);
    if (kt.cols() > lanes_)
      throw InputError(source_, "tensor '" + kt.name + "' has rows of " +
                                    std::to_string(kt.cols()) + " elements, wider than the " +
                                    std::to_string(lanes_) +
                                    " lanes of a vector (the compiler does not split rows yet)");
    const std::uint64_t rows = static_cast<std::uint64_t>(std::max<std::int64_t>(kt.rows(), 1));
    const auto depth = static_cast<std::uint64_t>(chip_.mem.depth);
    // Spread over the hemispheres and slices: the emptiest slices that share a free base address.
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool west = ((next_side_ + attempt) % 2) == 0;
      std::vector<std::uint16_t> cand;
      for (auto c : west ? west_ : east_)
        if (std::find(avoid.begin(), avoid.end(), c) == avoid.end()) cand.push_back(c);
      std::stable_sort(cand.begin(), cand.end(), [&](std::uint16_t a, std::uint16_t b) {
        return next_addr_[a] < next_addr_[b];
      });
      if (static_cast<int>(cand.size()) < bytes) continue;
      std::vector<std::uint16_t> pick(cand.begin(), cand.begin() + bytes);
      std::uint64_t base = 0;
      for (auto s : pick)
        base = std::max<std::uint64_t>(base, next_addr_[s]);
      if (base + rows > depth) continue;
      for (auto s : pick)
        next_addr_[s] = static_cast<std::uint32_t>(base + rows);
      p.slices = pick;
      p.addr = static_cast<std::uint32_t>(base);
      p.vectors = static_cast<std::uint32_t>(rows);
      p.west = west;
      mem_bytes_[west ? 0 : 1] +=
          rows * static_cast<std::uint64_t>(lanes_) * static_cast<std::uint64_t>(bytes);
      ++next_side_;
      return;
    }
    throw InputError(source_, "tensor '" + kt.name + "' needs " + std::to_string(rows) +
                                  " vectors in each of " + std::to_string(bytes) +
                                  " MEM slices of one hemisphere; no such room is left (depth " +
                                  std::to_string(depth) + " vectors per slice, " +
                                  std::to_string(west_.size()) + " data slices per hemisphere)");
  }

  struct Operand {
    int tensor;
    bool broadcast;
    int stream = 0;  // first stream of the group
  };

  // Streams an ALU may use (brief A3: row r reads and writes SG4 groups 2r..2r+3 mod 8).
  std::vector<int> alu_streams(int alu, int group) const {
    std::vector<int> out;
    const int row = alu / 4;
    for (int j = 0; j < 4; ++j) {
      const int g = (2 * row + j) % 8;
      for (int s = 4 * g; s < 4 * g + 4; s += group)
        out.push_back(s);
    }
    return out;
  }

  // Everything one try at cycle T (the VXM's access of vector 0) reserves.
  struct Plan {
    std::uint64_t t = 0;
    int alu = 0;
    std::vector<Operand> in;
    Operand out{};
  };

  // The earliest T >= lo at which the plan fits, or nullopt if it never can within the bound.
  std::optional<std::uint64_t> fit(Plan& p, std::uint64_t lo, const KStep& s) {
    std::uint64_t t = lo;
    for (int guard = 0; guard < 1000000; ++guard) {
      self_conflict_ = false;
      const std::optional<std::uint64_t> bump = check(p, t, s, false);
      if (self_conflict_) return std::nullopt;  // no cycle helps: try other ALUs and streams
      if (!bump) return t;
      t = std::max(t + 1, *bump);
    }
    return std::nullopt;
  }

  // With commit = false: the T a conflict pushes the plan to (nullopt = fits). With commit = true:
  // reserves everything and records the blocks.
  std::optional<std::uint64_t> check(const Plan& p, std::uint64_t t, const KStep& s, bool commit) {
    const KTensor& kd = k_.tensors[static_cast<std::size_t>(s.d)];
    const std::uint32_t v = static_cast<std::uint32_t>(std::max<std::int64_t>(kd.rows(), 1));
    const auto& rd = lat("read");
    const auto& wr = lat("write");
    const char* mn = mnemonic(s.args.op);
    const auto& vx = lat(mn);
    std::optional<std::uint64_t> need;
    auto want = [&](std::uint64_t x) { need = need ? std::max(*need, x) : x; };
    // Interval [s0, s0 + v) at offset off from T must avoid b: T' = T + (end - s0).
    // The plan's own reservations count too (two operands in one slice, say).
    struct Mine {
      int kind;  // 0 queue, 1 port, 2 stream
      int id;
      std::uint64_t s, e;
      int p0 = 0, p1 = 0;
    };
    std::vector<Mine> mine;
    auto avoid_mine = [&](int kind, int id, std::uint64_t s0, std::uint64_t len, int p0, int p1) {
      for (const Mine& m : mine)
        if (m.kind == kind && m.id == id && m.s < s0 + len && s0 < m.e && m.p0 <= p1 && p0 <= m.p1)
          self_conflict_ = true;
      mine.push_back({kind, id, s0, s0 + len, p0, p1});
    };
    auto avoid = [&](const Busy& b, std::uint64_t s0, std::uint64_t len) {
      if (auto e = b.conflict(s0, len)) want(t + (*e - s0));
    };
    auto avoid_claim = [&](int stream, bool west, const Claim& c) {
      for (const Claim& o : claims(stream, west))
        if (o.k0 < c.k1 && c.k0 < o.k1 && o.p0 <= c.p1 && c.p0 <= o.p1) want(t + (o.k1 - c.k0));
      avoid_mine(2, stream * 2 + (west ? 1 : 0), c.k0, c.k1 - c.k0, c.p0, c.p1);
    };
    auto avoid_queue = [&](std::uint16_t qid, std::uint64_t s0, std::uint64_t len) {
      avoid(queue_busy_[qid], s0, len);
      avoid_mine(0, qid, s0, len, 0, 0);
    };
    auto avoid_port = [&](std::uint16_t qid, std::uint64_t s0, std::uint64_t len) {
      avoid(port_busy_[qid], s0, len);
      avoid_mine(1, qid, s0, len, 0, 0);
    };
    std::vector<int> producers;
    // Operand reads.
    for (const Operand& op : p.in) {
      const TensorPlace& tp = place_[static_cast<std::size_t>(op.tensor)];
      for (std::size_t k = 0; k < tp.slices.size(); ++k) {
        const arch::Queue& sq = q(tp.slices[k]);
        const auto dist = static_cast<std::uint64_t>(std::abs(sq.position - vxm_pos_));
        const std::uint64_t lead = dist * hop_ + static_cast<std::uint64_t>(rd.d_func + rd.d_skew);
        if (t < lead) {
          want(lead);
          continue;
        }
        const std::uint64_t d = t - lead;
        const std::uint64_t access = d + static_cast<std::uint64_t>(rd.d_skew);
        if (access < tp.ready) want(t + (tp.ready - access));
        const bool west = sq.position > vxm_pos_;  // flows west toward the VXM
        const std::uint64_t w = access + static_cast<std::uint64_t>(rd.d_func);
        const std::uint64_t k0 = key_of(west, sq.position, w);
        const Claim c{k0, k0 + v, std::min(sq.position, vxm_pos_), std::max(sq.position, vxm_pos_)};
        const int stream = op.stream + static_cast<int>(k);
        if (!commit) {
          avoid_queue(sq.id, d, v);
          avoid_port(sq.id, access, v);
          avoid_claim(stream, west, c);
          continue;
        }
        queue_busy_[sq.id].add(d, v);
        port_busy_[sq.id].add(access, v);
        claims(stream, west).push_back(c);
        Block b;
        b.queue = sq.id;
        b.dispatch = d;
        b.instr.opcode = isa::by_mnemonic("read")->opcode;
        b.instr.arg[0] = tp.addr;
        b.instr.arg[1] = isa::stream_arg(stream, west);
        b.count = v;
        b.separate = op.broadcast && v > 1;
        b.first_done = w + static_cast<std::uint64_t>(chip_.superlanes - 1);
        producers.push_back(static_cast<int>(blocks_.size()));
        blocks_.push_back(std::move(b));
      }
    }
    // The VXM op.
    const std::uint64_t vd = t >= static_cast<std::uint64_t>(vx.d_skew)
                                 ? t - static_cast<std::uint64_t>(vx.d_skew)
                                 : (want(static_cast<std::uint64_t>(vx.d_skew)), 0);
    const std::uint16_t aq = alus_[static_cast<std::size_t>(p.alu)];
    const std::uint64_t r = t + static_cast<std::uint64_t>(vx.d_func);
    int alu_block = -1;
    if (!commit) {
      avoid_queue(aq, vd, v);
    } else {
      queue_busy_[aq].add(vd, v);
      Block b;
      b.queue = aq;
      b.dispatch = vd;
      const isa::OpInfo& info = *isa::by_mnemonic(mn);
      b.instr.opcode = info.opcode;
      b.instr.mod[0] = mod_code(isa::ModKind::kDtype, isa::to_string(s.args.type));
      if (info.mods[1] == isa::ModKind::kOvf && isa::is_integer(s.args.type))
        b.instr.mod[1] = mod_code(isa::ModKind::kOvf, s.args.saturate ? "sat" : "mod");
      std::size_t a = 0;
      for (const Operand& op : p.in)  // toward the VXM: a west slice's value flows east
        b.instr.arg[a++] =
            isa::stream_arg(op.stream, !place_[static_cast<std::size_t>(op.tensor)].west);
      b.instr.arg[a] =
          isa::stream_arg(p.out.stream, place_[static_cast<std::size_t>(p.out.tensor)].west);
      b.count = v;
      b.first_done = r + static_cast<std::uint64_t>(chip_.superlanes - 1);
      b.expects = producers;
      alu_block = static_cast<int>(blocks_.size());
      blocks_.push_back(std::move(b));
    }
    // Result writes.
    {
      const TensorPlace& tp = place_[static_cast<std::size_t>(p.out.tensor)];
      std::uint64_t ready = 0;
      for (std::size_t k = 0; k < tp.slices.size(); ++k) {
        const arch::Queue& sq = q(tp.slices[k]);
        const auto dist = static_cast<std::uint64_t>(std::abs(sq.position - vxm_pos_));
        const bool west = sq.position < vxm_pos_;  // flows west away from the VXM
        const std::uint64_t access = r + dist * hop_;
        const std::uint64_t d = access - static_cast<std::uint64_t>(wr.d_skew);
        const std::uint64_t k0 = key_of(west, vxm_pos_, r);
        const Claim c{k0, k0 + v, std::min(sq.position, vxm_pos_), std::max(sq.position, vxm_pos_)};
        const int stream = p.out.stream + static_cast<int>(k);
        ready = std::max(ready, access + 1);
        if (!commit) {
          avoid_queue(sq.id, d, v);
          avoid_port(sq.id, access, v);
          avoid_claim(stream, west, c);
          continue;
        }
        queue_busy_[sq.id].add(d, v);
        port_busy_[sq.id].add(access, v);
        claims(stream, west).push_back(c);
        Block b;
        b.queue = sq.id;
        b.dispatch = d;
        b.instr.opcode = isa::by_mnemonic("write")->opcode;
        b.instr.arg[0] = tp.addr;
        b.instr.arg[1] = isa::stream_arg(stream, west);
        b.count = v;
        b.first_done = access + static_cast<std::uint64_t>(wr.d_func + chip_.superlanes - 1);
        b.expects = {alu_block};
        blocks_.push_back(std::move(b));
      }
      if (commit) place_[static_cast<std::size_t>(p.out.tensor)].ready = ready;
    }
    return need;
  }

  void schedule_step(const KStep& s) {
    const KTensor& kd = k_.tensors[static_cast<std::size_t>(s.d)];
    if (place_[static_cast<std::size_t>(s.d)].slices.empty()) {
      std::vector<std::uint16_t> inputs;  // keep the result out of the operands' slices
      for (int t : {s.a, s.b, s.mask})
        if (t >= 0)
          for (auto sl : place_[static_cast<std::size_t>(t)].slices)
            inputs.push_back(sl);
      place(s.d, inputs);
    }
    const std::int64_t rows = kd.rows();
    std::vector<int> ins = {s.a};
    if (s.b >= 0) ins.push_back(s.b);
    if (s.mask >= 0) ins.insert(ins.begin(), s.mask);
    const int g_in = isa::dtype_bytes(s.args.type);
    const int g_out = s.args.op == func::VxmOp::kCast ? isa::dtype_bytes(s.args.to) : g_in;
    const isa::OpInfo& info = *isa::by_mnemonic(mnemonic(s.args.op));
    std::optional<Plan> best;
    for (std::size_t alu = 0; alu < alus_.size(); ++alu) {
      if (info.alu == isa::AluNeed::kLarge && !chip_.vxm.is_large(static_cast<int>(alu))) continue;
      // Streams: each operand group in its direction, the groups of one direction disjoint.
      Plan p;
      p.alu = static_cast<int>(alu);
      std::map<bool, std::vector<int>> used;  // direction -> first streams taken
      bool ok = true;
      auto take = [&](bool west, int group) -> int {
        for (int st : alu_streams(static_cast<int>(alu), group)) {
          bool clash = false;
          for (int u : used[west])
            if (st < u + 4 && u < st + group) clash = true;  // groups of up to four
          if (!clash) {
            used[west].push_back(st);
            return st;
          }
        }
        ok = false;
        return 0;
      };
      for (int t : ins) {
        const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
        const bool west = place_[static_cast<std::size_t>(t)].west ? false : true;  // toward VXM
        Operand o{t, kt.rows() <= 1 && rows > 1};
        o.stream = take(west, g_in);
        p.in.push_back(o);
      }
      p.out = Operand{s.d, false};
      p.out.stream = take(place_[static_cast<std::size_t>(s.d)].west, g_out);
      if (!ok) continue;
      std::optional<std::uint64_t> t = fit(p, 0, s);
      if (!t) continue;
      p.t = *t;
      if (!best || p.t < best->t) best = p;
      if (best->t == lower_bound(p, s)) break;
    }
    if (!best) throw std::logic_error("scheduler: no VXM ALU and streams fit " + s.origin);
    check(*best, best->t, s, true);
    vxm_busy_ += static_cast<std::uint64_t>(std::max<std::int64_t>(rows, 1));
  }

  // The earliest T data and distances allow, whatever the other traffic.
  std::uint64_t lower_bound(const Plan& p, const KStep&) const {
    const auto& rd = lat("read");
    std::uint64_t lo = 0;
    for (const Operand& op : p.in) {
      const TensorPlace& tp = place_[static_cast<std::size_t>(op.tensor)];
      for (auto sl : tp.slices) {
        const auto dist = static_cast<std::uint64_t>(std::abs(q(sl).position - vxm_pos_));
        const std::uint64_t lead = dist * hop_ + static_cast<std::uint64_t>(rd.d_func + rd.d_skew);
        lo = std::max(lo, lead);
        lo = std::max(lo, tp.ready + lead - static_cast<std::uint64_t>(rd.d_skew));
      }
    }
    return lo;
  }

  Schedule emit() {
    Schedule out;
    isa::Program& prog = out.program;
    prog.arch = arch_;
    // Per queue, blocks in dispatch order; entries numbered as they are laid out.
    std::map<std::uint16_t, std::vector<int>> by_queue;
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      by_queue[blocks_[i].queue].push_back(static_cast<int>(i));
    const auto rep = isa::by_mnemonic("repeat")->opcode;
    std::uint64_t end = 0;
    std::vector<std::vector<std::uint32_t>> entries_of(blocks_.size());
    for (auto& [queue, list] : by_queue) {
      std::sort(list.begin(), list.end(), [&](int a, int b) {
        return blocks_[static_cast<std::size_t>(a)].dispatch <
               blocks_[static_cast<std::size_t>(b)].dispatch;
      });
      std::uint32_t n = 0;
      for (int bi : list) {
        Block& b = blocks_[static_cast<std::size_t>(bi)];
        auto& e = entries_of[static_cast<std::size_t>(bi)];
        e.push_back(n++);
        if (b.count > 1) {
          if (b.separate)
            for (std::uint32_t i = 1; i < b.count; ++i)
              e.push_back(n++);
          else
            e.push_back(n++);
        }
      }
      if (n > static_cast<std::uint32_t>(chip_.icu.queue_depth) && !chip_.icu.preloaded)
        throw InputError(source_, "queue " + queues_[queue].name + " needs " + std::to_string(n) +
                                      " instructions, more than chip.icu.queue_depth = " +
                                      std::to_string(chip_.icu.queue_depth) +
                                      " (the compiler does not emit ifetch yet)");
    }
    isa::ChipProgram cp;
    cp.chip = 0;
    for (auto& [queue, list] : by_queue) {
      isa::QueueProgram qp;
      qp.queue = queue;
      for (int bi : list) {
        const Block& b = blocks_[static_cast<std::size_t>(bi)];
        std::vector<isa::InstrRef> expect;
        for (int pb : b.expects)
          for (std::uint32_t idx : entries_of[static_cast<std::size_t>(pb)])
            expect.push_back({blocks_[static_cast<std::size_t>(pb)].queue, idx});
        auto add = [&](std::uint64_t cycle, const isa::Instr& in, std::uint64_t done) {
          isa::Entry e;
          e.cycle = cycle;
          e.instr = in;
          e.done = done;
          e.expect = expect;
          end = std::max(end, done + 1);
          qp.entries.push_back(std::move(e));
        };
        add(b.dispatch, b.instr, b.first_done);
        if (b.count > 1 && b.separate) {
          for (std::uint32_t i = 1; i < b.count; ++i)
            add(b.dispatch + i, b.instr, b.first_done + i);
        } else if (b.count > 1) {
          isa::Instr r;
          r.opcode = rep;
          r.arg[0] = b.count - 1;
          r.arg[1] = 1;
          add(b.dispatch + 1, r, b.first_done + b.count - 1);
        }
      }
      cp.queues.push_back(std::move(qp));
    }
    if (!cp.queues.empty()) prog.chips.push_back(std::move(cp));
    prog.predicted_cycles = end;
    out.cycles = end;

    // Tensors and images.
    for (std::size_t t = 0; t < k_.tensors.size(); ++t) {
      const KTensor& kt = k_.tensors[t];
      const TensorPlace& tp = place_[t];
      isa::Tensor it;
      it.name = kt.name;
      it.role = kt.role == KTensor::Role::kInput      ? isa::TensorRole::kInput
                : kt.role == KTensor::Role::kOutput   ? isa::TensorRole::kOutput
                : kt.role == KTensor::Role::kConstant ? isa::TensorRole::kConstant
                                                      : isa::TensorRole::kScratch;
      it.dtype = kt.dtype;
      for (auto d : kt.shape)
        it.shape.push_back(static_cast<std::uint64_t>(d));
      it.layout = "rows";
      std::string where;
      for (auto s : tp.slices) {
        it.placements.push_back({s, tp.addr, tp.vectors});
        where += (where.empty() ? "" : ", ") + queues_[s].name + ":" + std::to_string(tp.addr) +
                 "+" + std::to_string(tp.vectors);
      }
      out.placements.push_back({kt.name, where});
      if (kt.role == KTensor::Role::kConstant) {
        const int bytes = isa::dtype_bytes(kt.dtype);
        const std::int64_t cols = kt.cols();
        for (int b = 0; b < bytes; ++b) {
          isa::Image im;
          im.slice = tp.slices[static_cast<std::size_t>(b)];
          im.addr = tp.addr;
          im.bytes.assign(static_cast<std::size_t>(tp.vectors) * static_cast<std::size_t>(lanes_),
                          0);
          for (std::int64_t r = 0; r < kt.rows(); ++r)
            for (std::int64_t c = 0; c < cols; ++c)
              im.bytes[static_cast<std::size_t>(r * lanes_ + c)] =
                  kt.data[static_cast<std::size_t>((r * cols + c) * bytes + b)];
          prog.images.push_back(std::move(im));
        }
      }
      prog.tensors.push_back(std::move(it));
    }
    out.mem_bytes[0] = mem_bytes_[0];
    out.mem_bytes[1] = mem_bytes_[1];
    out.vxm_busy = vxm_busy_;
    struct Where : isa::SourceMap {
      lpu::Where instruction(std::uint32_t chip, std::uint16_t queue, std::size_t index,
                             int) const override {
        return "compiled program: chip " + std::to_string(chip) + " queue " +
               std::to_string(queue) + " instruction " + std::to_string(index);
      }
      lpu::Where tensor(std::size_t i) const override {
        return "compiled program: tensor " + std::to_string(i);
      }
      lpu::Where image(std::size_t i) const override {
        return "compiled program: image " + std::to_string(i);
      }
    } where;
    try {
      isa::validate(prog, where);
    } catch (const InputError& e) {  // the scheduler's own bug, not the user's
      throw std::logic_error(std::string("scheduler emitted an invalid program: ") + e.what());
    }
    return out;
  }

  const Kernels& k_;
  const arch::Arch& arch_;
  const arch::Chip& chip_;
  std::string source_;
  std::vector<arch::Queue> queues_;
  int positions_ = 0, vxm_pos_ = 0, lanes_ = 0;
  std::uint64_t hop_ = 1;
  std::vector<std::uint16_t> west_, east_, alus_;
  std::vector<Busy> queue_busy_, port_busy_;
  std::vector<std::uint32_t> next_addr_;
  std::vector<std::vector<Claim>> claims_;
  std::vector<TensorPlace> place_;
  std::vector<Block> blocks_;
  int next_side_ = 0;
  bool self_conflict_ = false;
  std::uint64_t mem_bytes_[2] = {0, 0};
  std::uint64_t vxm_busy_ = 0;
};

}  // namespace

Schedule schedule(const Kernels& k, const arch::Arch& arch, const std::string& source) {
  return Scheduler(k, arch, source).run();
}

}  // namespace lpu::compiler
