#include "compiler/scheduler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "arch/queues.h"
#include "common/diagnostics.h"
#include "func/c2c_link.h"
#include "func/mxm.h"

namespace lpu::compiler {

using isa::DType;

namespace {

// Busy intervals [s, e) of one resource, sorted by start.
class Busy {
 public:
  // The end of the last interval overlapping [s, s + len), if any. The intervals never overlap
  // (only what fits is added), so their ends are sorted too.
  std::optional<std::uint64_t> conflict(std::uint64_t s, std::uint64_t len) const {
    auto it = std::upper_bound(v_.begin(), v_.end(), s,
                               [](std::uint64_t x, const Span& b) { return x < b.e; });
    std::optional<std::uint64_t> out;
    for (; it != v_.end() && it->s < s + len; ++it)
      out = it->e;
    return out;
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
struct Claim;
struct Claim {
  std::uint64_t k0, k1;
  int p0, p1;
};

// The claims on one stream, sorted by first diagonal; the longest claim bounds how far back an
// overlap can start.
class Claims {
 public:
  template <class F>
  void overlapping(std::uint64_t k0, std::uint64_t k1, int p0, int p1, F&& f) const {
    const std::uint64_t from = k0 > longest_ ? k0 - longest_ : 0;
    auto it = std::lower_bound(v_.begin(), v_.end(), from,
                               [](const Claim& c, std::uint64_t x) { return c.k0 < x; });
    for (; it != v_.end() && it->k0 < k1; ++it)
      if (k0 < it->k1 && it->p0 <= p1 && p0 <= it->p1) f(*it);
  }
  void add(const Claim& c) {
    auto it = std::upper_bound(v_.begin(), v_.end(), c.k0,
                               [](std::uint64_t x, const Claim& o) { return x < o.k0; });
    v_.insert(it, c);
    longest_ = std::max(longest_, c.k1 - c.k0);
  }

 private:
  std::vector<Claim> v_;
  std::uint64_t longest_ = 0;
};

// Where a tensor lives.
struct TensorPlace {
  bool placed = false;
  bool weights = false;  // interleaved for the MXM's 16-stream weight loads
  // Rows over 16 slices (byte plane b of row r in slice (r + 4 b) % 16, at addr + b * plane_addrs
  // + r / 16), so that 16 consecutive rows of a plane move in one cycle (the SXM transposers)
  // and the planes of one row sit in different slices (a multi-byte row is written at once).
  bool t16 = false;
  std::uint32_t plane_addrs = 0;
  // A tensor too long for one range of addresses: runs of vector rows, each on its own slices
  // (one per byte plane, all in one hemisphere) and base address.
  struct Chunk {
    std::int64_t first, rows;
    std::vector<std::uint16_t> slices;
    std::uint32_t base;
  };
  bool chunked = false;
  std::vector<Chunk> chunks;
  std::vector<std::uint16_t> slices;  // contiguous: one per byte plane; weights: 16
  std::uint32_t addr = 0;             // base address in every slice
  std::uint32_t vectors = 0;          // addresses used per slice
  bool west = true;
  // Weights: rows per block (one product's K), addresses per plane-sized piece of a block, and
  // the pieces: K tiles (of the plane's rows) by N tiles (of its columns).
  std::int64_t block_rows = 0;
  std::uint32_t block_addrs = 0;
  // Weights only window passes read (KPass::window): their buffer is cleared before every load,
  // so a piece holds only its block's rows, in fp16 too.
  bool window_only = true;
  std::int64_t k_tiles = 1, n_tiles = 1;
  // Weights: each piece (a plane's worth of one block, K tile and N tile) has its own 16 slices
  // (slot s of the piece in piece_slices[16 * piece + s]) and base address.
  std::vector<std::uint16_t> piece_slices;
  std::vector<std::uint32_t> piece_addr;
  // Readiness: a consumer streaming row i at cycle c + i needs c >= ready_stream; one reading
  // every row in any order needs its first read >= ready_all. Chunked: per chunk, the cycle all
  // its rows are written (a reader of some chunks waits for those only).
  std::uint64_t ready_stream = 0, ready_all = 0;
  std::vector<std::uint64_t> chunk_ready;
  // Constants read as a broadcast operand by VXM steps split over several ALUs: more copies
  // (slices, base address), so that the parts can read it in the same cycles.
  std::vector<std::pair<std::vector<std::uint16_t>, std::uint32_t>> replicas;
  // Reuse: writes into this storage must wait for the previous tenant's last read (write_after);
  // the last cycle any step reads this tensor (for its own successor).
  std::uint64_t write_after = 0, last_read = 0;
  bool freed = false;
};

// One reservation of an operation, relative to its anchor cycle T.
struct Use {
  // kPort: a C2C link's transmit side; kRead, kWrite: a MEM slice's read and write port; kBank:
  // one bank of a slice (id = slice x banks + bank), which a read and a write may not share in a
  // cycle.
  enum class Kind { kQueue, kPort, kStream, kRead, kWrite, kBank } kind;
  int id;            // queue id; or stream * 2 + west
  std::int64_t off;  // start (a cycle, or a diagonal for streams) = T + off
  std::uint64_t len;
  int p0 = 0, p1 = 0;  // streams: positions
};

// What one write of an operation does to a tensor's rows: vector rows lo..hi (absolute), the
// first written by T + first + (its index from row0), the last access in T + last.
struct Written {
  std::int64_t first = 0, last = 0;
  std::int64_t lo = 0, hi = 0;
};

// One instruction (and its repetitions) of an operation.
struct Emit {
  std::uint16_t queue;
  std::int64_t off;  // dispatch = T + off
  isa::Instr instr;
  std::uint32_t count = 1;    // repetitions (or steps of abc/acc, counted in the instruction)
  std::uint32_t stride = 1;   // cycles between repetitions
  bool separate = false;      // count separate instructions instead of a repeat
  bool self_counted = false;  // abc n / acc n: one instruction of n steps
  std::int64_t done_off = 0;  // completion of the first instance (all of it when self_counted)
  std::vector<int> expects;   // emits of the same operation whose values it reads
  // The operation's vectors this emit's repetitions carry: repetition k (or, for separate
  // instructions, the k-th of them) produces or consumes vector v0 + k vs. A producer and its
  // consumers number their vectors alike, which gives each expectation its repetition relation.
  std::int64_t v0 = 0, vs = 1;
  int tensor = -1;  // MEM reads and writes: the tensor (root) they move
  // A program split over chips: on chip c, arg 0 grows by ((c + sign round) mod chips) unit
  // (the slot an exchange reads or writes depends on the chip); sign 0: the same everywhere.
  int spmd_sign = 0, spmd_round = 0;
  std::uint32_t spmd_unit = 0;
};

struct Op {
  std::vector<Use> uses;
  std::vector<Emit> emits;
  std::uint64_t lo = 0;  // earliest T
  // (tensor, offset of its last access): reads and writes, so that storage handed to a later
  // tensor is written only after everything its previous tenant did there.
  std::vector<std::pair<int, std::int64_t>> reads;
};

struct Block {
  std::uint16_t queue;
  std::uint64_t dispatch;
  isa::Instr instr;
  std::uint32_t count = 1, stride = 1;
  bool separate = false, self_counted = false;
  std::uint64_t first_done = 0;
  std::vector<int> expects;     // global block ids
  std::int64_t v0 = 0, vs = 1;  // as Emit
  int tensor = -1;
  int spmd_sign = 0, spmd_round = 0;  // as Emit
  std::uint32_t spmd_unit = 0;
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
    case func::VxmOp::kCast:
      return "cast";
    case func::VxmOp::kMov:
      return "mov";
    case func::VxmOp::kAnd:
      return "and";
    case func::VxmOp::kOr:
      return "or";
    case func::VxmOp::kXor:
      return "xor";
    case func::VxmOp::kSel:
      return "sel";
    case func::VxmOp::kCmpEq:
    case func::VxmOp::kCmpNe:
    case func::VxmOp::kCmpLt:
    case func::VxmOp::kCmpLe:
    case func::VxmOp::kCmpGt:
    case func::VxmOp::kCmpGe:
      return "cmp";
    default:
      throw std::logic_error(std::string("scheduler: no VXM mnemonic for ") + func::to_string(op));
  }
}

isa::Instr instr(const char* mn) {
  isa::Instr in;
  in.opcode = isa::by_mnemonic(mn)->opcode;
  return in;
}

class Scheduler {
 public:
  Scheduler(const Kernels& k, const arch::Arch& arch, const std::string& source)
      : k_(k), arch_(arch), chip_(arch.chip), source_(source), queues_(arch::chip_queues(chip_)) {
    positions_ = static_cast<int>(chip_.slices.size());
    hop_ = static_cast<std::uint64_t>(chip_.streams.hop_cycles);
    lanes_ = chip_.lanes();
    sl_ = chip_.superlanes;
    for (const auto& q : queues_) {
      if (q.unit == arch::QueueUnit::kMem) {
        const bool code =
            q.instance >= chip_.mem.slices_per_hemisphere - chip_.icu.instruction_slices;
        if (!code) (q.hemisphere == arch::Hemisphere::kWest ? west_ : east_).push_back(q.id);
      } else if (q.unit == arch::QueueUnit::kVxm) {
        alus_.push_back(q.id);
        vxm_pos_ = q.position;
      } else if (q.unit == arch::QueueUnit::kMxmWeights) {
        Plane p;
        p.wt = q.id;
        p.position = q.position;
        p.buf_free.assign(static_cast<std::size_t>(chip_.mxm.weight_buffers - 1), 0);
        planes_.push_back(std::move(p));
      }
    }
    for (std::size_t i = 0; i < planes_.size(); ++i) {
      const std::string base = "mxm.p" + std::to_string(i);
      planes_[i].abc = arch::find_queue(queues_, base + ".abc")->id;
      planes_[i].acc = arch::find_queue(queues_, base + ".acc")->id;
    }
    busy_.resize(queues_.size());
    port_.resize(queues_.size());
    read_.resize(queues_.size());
    write_.resize(queues_.size());
    bank_.resize(queues_.size() * static_cast<std::size_t>(chip_.mem.banks));
    alloc_.resize(queues_.size());
    live_.assign(queues_.size(), 0);
    high_.assign(queues_.size(), 0);
    claims_.resize(static_cast<std::size_t>(chip_.streams.per_direction) * 2);
  }

  void set_reuse(bool on) { reuse_ = on; }

  // A program for `chips` chips in step (one Kernels each, the same steps): in round k of an
  // exchange every chip sends on queue send[k] to chip c + k and receives on recv[k] from c - k.
  void set_spmd(const std::vector<Kernels>* all, std::vector<std::uint16_t> send,
                std::vector<std::uint16_t> recv) {
    spmd_ = all;
    chips_ = static_cast<int>(all->size());
    send_q_ = std::move(send);
    recv_q_ = std::move(recv);
  }

  Schedule run() {
    place_.resize(k_.tensors.size());
    find_chains();
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
            (constant(x) || constant(y) ? co_write_ : co_)[static_cast<std::size_t>(x)].push_back(
                y);
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
    for (std::size_t i = 0; i < k_.steps.size(); ++i) {
      const KStep& s = k_.steps[i];
      const std::size_t b0 = blocks_.size();
      const std::uint64_t mxm0 = mxm_busy_, vxm0 = vxm_busy_;
      if (chain_len_[i] == 0) {  // done with its chain's first step
        step_timing_.push_back(step_timing_.back());
        step_timing_.back().origin = s.origin;
        step_timing_.back().mxm_cycles = step_timing_.back().vxm_cycles = 0;
        for (int t : release_after[i])
          release(t);
        continue;
      }
      if (chain_len_[i] > 1)
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
      for (int t : release_after[i])
        release(t);
    }
    for (std::size_t t = 0; t < k_.tensors.size(); ++t)
      if (!P(static_cast<int>(t)).placed && used(static_cast<int>(t)))
        place(root(static_cast<int>(t)));  // never written
    if (!chip_.icu.preloaded) plan_ifetch();
    return emit();
  }

 private:
  struct Plane {
    std::uint16_t wt = 0, abc = 0, acc = 0;
    int position = 0;
    std::uint64_t last_abc = 0;     // access of the last activation through the installed weights
    std::uint64_t next_act = 0;     // the first cycle the array takes another vector
    std::uint64_t install_end = 0;  // the first cycle after the current install
    // Per staging buffer (chip.mxm.weight_buffers - 1 of them, used in turn): the first access
    // cycle a load may fill it (its last install has read it).
    std::vector<std::uint64_t> buf_free;
    std::size_t next_buf = 0;
    // ACCs take the plane's products in ABC order and share its accumulators: each ACC starts
    // after the previous one ends.
    std::uint64_t acc_free = 0;
  };

  // Whether the program needs tensor t on the chip: a step reads or writes it, or it is an input
  // or output of the graph.
  bool used(int t) const {
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

  // Views share their base's placement.
  int root(int t) const {
    const int v = k_.tensors[static_cast<std::size_t>(t)].view_of;
    return v >= 0 ? v : t;
  }
  TensorPlace& P(int t) { return place_[static_cast<std::size_t>(root(t))]; }
  const TensorPlace& P(int t) const { return place_[static_cast<std::size_t>(root(t))]; }

  const std::string& name(int t) const { return k_.tensors[static_cast<std::size_t>(t)].name; }
  // A step that no unit and streams of this machine can carry (a machine with too few streams,
  // ALUs or transposers for it): the input's problem, named with the machine's figures.
  [[noreturn]] void no_fit(const std::string& origin, const std::string& what) const {
    throw InputError(source_, origin + ": " + what +
                                  " on this machine (chip.streams.per_direction = " +
                                  std::to_string(chip_.streams.per_direction) + ", " +
                                  std::to_string(alus_.size()) + " VXM ALUs, " +
                                  std::to_string(chip_.sxm.units) + " SXM units)");
  }
  const arch::Queue& q(std::uint16_t id) const { return queues_[id]; }
  const arch::Latency& lat(const char* mn) const {
    return chip_.latency_of(isa::by_mnemonic(mn)->latency_class);
  }
  std::int64_t key_const(bool west, int pos) const {
    return west ? static_cast<std::int64_t>(pos) * static_cast<std::int64_t>(hop_)
                : static_cast<std::int64_t>(positions_ - 1 - pos) * static_cast<std::int64_t>(hop_);
  }
  std::int64_t dist(int a, int b) const {
    return static_cast<std::int64_t>(std::abs(a - b)) * static_cast<std::int64_t>(hop_);
  }
  static int stream_id(int stream, bool west) { return stream * 2 + (west ? 1 : 0); }

  // ---------------------------------------------------------------- placement

  // Vector rows (rows x column tiles, isa/layout.h).
  std::uint64_t rows_of(int t) const {
    return static_cast<std::uint64_t>(
        std::max<std::int64_t>(k_.tensors[static_cast<std::size_t>(t)].vector_rows(lanes_), 1));
  }
  std::int64_t logical_rows(int t) const {
    return std::max<std::int64_t>(k_.tensors[static_cast<std::size_t>(t)].rows(), 1);
  }

  // Chooses slices for tensor t: contiguous (one slice per byte plane, all in one hemisphere, the
  // same addresses) or, for MXM weights, 16 slices of one hemisphere with the rows interleaved.
  void place(int t, std::vector<std::uint16_t> avoid = {}, int side = -1) {
    t = root(t);
    // The tensors read or written with this one keep to other slices: a contiguous one's slices
    // always; a chunked one's chunk by chunk (rows of one step move together), or every chunk's
    // for a tensor that is not chunked itself, while that leaves room.
    // Operands read together in one cycle can never share a slice: those are always avoided.
    for (int o : co_[static_cast<std::size_t>(t)])
      if (place_[static_cast<std::size_t>(o)].placed)
        for (auto sl : slices_of(o))
          avoid.push_back(sl);
    std::vector<int> chunked_co;
    std::vector<std::uint16_t> avoid_all = avoid;
    for (int o : co_write_[static_cast<std::size_t>(t)]) {
      if (!place_[static_cast<std::size_t>(o)].placed) continue;
      if (place_[static_cast<std::size_t>(o)].chunked) chunked_co.push_back(o);
      for (auto sl : slices_of(o))
        avoid_all.push_back(sl);
    }
    const ChunkAvoid chunk_avoid = [this, chunked_co](std::int64_t first, std::int64_t n) {
      std::vector<std::uint16_t> out;
      for (int o : chunked_co)
        for (const auto& c : place_[static_cast<std::size_t>(o)].chunks)
          if (c.first < first + n && first < c.first + c.rows)
            out.insert(out.end(), c.slices.begin(), c.slices.end());
      return out;
    };
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
    TensorPlace& p = P(t);
    const int bytes = isa::dtype_bytes(kt.dtype);
    const std::uint64_t rows = rows_of(t);
    std::uint64_t need = rows;
    int width = bytes;
    const auto depth = static_cast<std::uint64_t>(chip_.mem.depth);
    if (kt.spread16) {
      // 16 slices of one hemisphere, every byte plane at its own range of addresses.
      p.t16 = true;
      p.plane_addrs = static_cast<std::uint32_t>((rows + 15) / 16);
      need = static_cast<std::uint64_t>(p.plane_addrs) * static_cast<std::uint64_t>(bytes);
      width = 16;
    }
    if (p.weights) {
      // Piece by piece, each on the 16 emptiest slices (every slice lies on the same side of an
      // MXM plane, so any 16 can feed one lw). Weights loaded by the host may use the whole chip;
      // weights a unit computes arrive on one stream direction, so they stay in one hemisphere.
      const int per = 16 / bytes;  // rows per load
      const auto blocks = static_cast<std::uint64_t>(kt.rows() / p.block_rows);
      p.k_tiles = (p.block_rows + chip_.mxm.rows - 1) / chip_.mxm.rows;
      p.n_tiles = kt.tiles(lanes_);
      // A piece holds a plane's worth of rows; int8 pieces only the rows a block has (a load of
      // fewer rows leaves the staging buffer's other rows stale, harmless in int8: they meet
      // zero activation lanes, and integer products of zero are exactly zero).
      p.block_addrs = static_cast<std::uint32_t>(
          bytes == 1 || p.window_only
              ? (std::min<std::int64_t>(p.block_rows, chip_.mxm.rows) + per - 1) / per
              : chip_.mxm.rows / per);
      const std::uint64_t pieces = blocks * static_cast<std::uint64_t>(p.k_tiles * p.n_tiles);
      const bool host = kt.role == KTensor::Role::kInput || kt.role == KTensor::Role::kConstant;
      std::uint64_t room[2] = {0, 0};  // free vectors per hemisphere
      for (int h = 0; h < 2; ++h)
        for (auto sl : h == 0 ? west_ : east_)
          room[h] += depth - live_[sl];
      p.west = room[0] >= room[1];
      std::vector<std::uint16_t> all;
      for (int h = 0; h < 2; ++h)
        if (host || p.west == (h == 0))
          for (auto sl : h == 0 ? west_ : east_)
            if (std::find(avoid.begin(), avoid.end(), sl) == avoid.end()) all.push_back(sl);
      // fp16 pieces a unit computes must take addresses never used before: the rows past K that
      // a full load reads are never written and must be zero. The host's images hold those
      // zeros, and int8 loads read only the rows a block has.
      const bool fresh = !host && bytes == 2;
      for (std::uint64_t i = 0; i < pieces; ++i) {
        // Slices are taken by how high they are used (then how full), so that 16 at the same
        // height leave no gaps below a common base.
        std::stable_sort(all.begin(), all.end(), [&](std::uint16_t a, std::uint16_t b) {
          return high_[a] != high_[b] ? high_[a] < high_[b] : live_[a] < live_[b];
        });
        // The 16 lowest slices, or the next ones when their free ranges do not line up.
        std::optional<std::pair<std::uint64_t, std::uint64_t>> found;
        std::size_t first = 0;
        for (std::size_t k = 0; !found && k + 16 <= all.size(); ++k) {
          found = find_base(std::vector<std::uint16_t>(all.begin() + static_cast<long>(k),
                                                       all.begin() + static_cast<long>(k) + 16),
                            p.block_addrs, fresh);
          first = k;
        }
        if (!found && std::getenv("LPU_DEBUG_MEM"))
          for (auto sl : all)
            std::fprintf(stderr, "slice %d live %llu high %llu allocs %zu\n", sl,
                         (unsigned long long)live_[sl], (unsigned long long)high_[sl],
                         alloc_[sl].size());
        if (!found)
          throw InputError(
              source_,
              "weights '" + kt.name + "' need " + std::to_string(pieces) + " pieces of " +
                  std::to_string(p.block_addrs) + " vectors on 16 MEM slices each (" +
                  std::to_string(pieces * p.block_addrs * 16 * static_cast<std::uint64_t>(lanes_) >>
                                 20) +
                  " MiB); MEM is full after " + std::to_string(i) + " of them (depth " +
                  std::to_string(depth) + "; live now: " + live_mib() + ")");
        const std::uint64_t base = found->first;
        p.write_after = std::max(p.write_after, found->second);
        const std::vector<std::uint16_t> pick(all.begin() + static_cast<long>(first),
                                              all.begin() + static_cast<long>(first) + 16);
        allocate(pick, base, p.block_addrs);
        for (auto sl : pick)
          p.piece_slices.push_back(sl);
        p.piece_addr.push_back(static_cast<std::uint32_t>(base));
      }
      p.slices.assign(p.piece_slices.begin(), p.piece_slices.begin() + 16);
      p.addr = p.piece_addr.front();
      p.vectors = static_cast<std::uint32_t>(pieces * p.block_addrs);
      p.placed = true;
      return;
    }
    // Chunks asked for (KTensor::chunk_rows), or by default for a long tensor the units stream:
    // blocks of rows on slices of their own, which several units can read and write at once.
    // (Exchanged tensors never: a slot's rows sit in one range of addresses.)
    const std::int64_t chunk = no_chunk_[static_cast<std::size_t>(t)] ? 0
                               : kt.chunk_rows > 0                    ? kt.chunk_rows
                               : kt.role != KTensor::Role::kConstant &&
                                       streamed_[static_cast<std::size_t>(t)] &&
                                       rows > 2 * static_cast<std::uint64_t>(chip_.mxm.accumulators)
                                   ? chip_.mxm.accumulators
                                   : 0;
    if (chunk > 0 && !p.t16 && need > static_cast<std::uint64_t>(chunk) &&
        (place_chunks(t, p, need, static_cast<std::uint64_t>(chunk), width, avoid_all, side) ||
         place_chunks(t, p, need, static_cast<std::uint64_t>(chunk), width, avoid, side,
                      chunk_avoid)))
      return;
    for (int attempt = 0; attempt < 4; ++attempt) {
      // Avoiding every chunk of the chunked ones first; failing that, a long tensor goes in
      // chunks that avoid them chunk by chunk; then only the contiguous ones are avoided.
      if (attempt == 2 && !p.t16 && !no_chunk_[static_cast<std::size_t>(t)] &&
          rows > 2 * static_cast<std::uint64_t>(chip_.mxm.accumulators) &&
          place_chunks(t, p, need, static_cast<std::uint64_t>(chip_.mxm.accumulators), width, avoid,
                       side, chunk_avoid))
        return;
      const std::vector<std::uint16_t>& avoid_now = attempt < 2 ? avoid_all : avoid;
      const bool west = side >= 0 ? side == 0 : ((next_side_ + attempt) % 2) == 0;
      std::vector<std::uint16_t> cand;
      for (auto c : west ? west_ : east_)
        if (std::find(avoid_now.begin(), avoid_now.end(), c) == avoid_now.end()) cand.push_back(c);
      std::stable_sort(cand.begin(), cand.end(),
                       [&](std::uint16_t a, std::uint16_t b) { return live_[a] < live_[b]; });
      // The emptiest slices first, then the next ones (their free ranges may line up better).
      std::vector<std::uint16_t> pick;
      std::optional<std::pair<std::uint64_t, std::uint64_t>> found;
      // Of the emptiest groups of slices, the one whose memory is free soonest.
      for (std::size_t k = 0; k + static_cast<std::size_t>(width) <= cand.size() && k < cand.size();
           k += static_cast<std::size_t>(width)) {
        std::vector<std::uint16_t> g(cand.begin() + static_cast<long>(k),
                                     cand.begin() + static_cast<long>(k) + width);
        // Tensors the units write spread over the banks; the host's stay packed from address 0
        // (they are placed first, beside the weights' 16-slice pieces).
        const bool written =
            kt.role != KTensor::Role::kInput && kt.role != KTensor::Role::kConstant;
        const auto f = find_base(g, need, false, written ? quiet_bank(g) : -1);
        if (f && (!found || f->second < found->second)) {
          found = f;
          pick = std::move(g);
        }
        if (found && found->second == 0) break;
      }
      if (!found) continue;
      const std::uint64_t base = found->first;
      p.write_after = found->second;
      allocate(pick, base, need);
      p.slices = pick;
      p.addr = static_cast<std::uint32_t>(base);
      p.vectors = static_cast<std::uint32_t>(need);
      p.west = west;
      p.placed = true;
      ++next_side_;
      return;
    }
    // No single range: cut the rows into chunks, each on its own slices, all in one hemisphere.
    if (!p.t16 && need > 1)
      for (std::uint64_t parts = 2; parts <= 64 && parts <= need; parts *= 2)
        if (place_chunks(t, p, need, (need + parts - 1) / parts, width, avoid, side, chunk_avoid))
          return;
    throw InputError(source_, "tensor '" + kt.name + "' needs " + std::to_string(need) +
                                  " vectors in each of " + std::to_string(width) +
                                  " MEM slices of one hemisphere; no such room is left (depth " +
                                  std::to_string(depth) + " vectors per slice, " +
                                  std::to_string(west_.size()) +
                                  " data slices per hemisphere; live now: " + live_mib() + ")");
  }

  // Places tensor t's `need` vector rows in chunks of `per` rows, each on the least-used slices
  // (one per byte plane) of one hemisphere; false (nothing taken) when they do not fit.
  // `chunk_avoid(first, rows)`: more slices a chunk of those rows keeps off.
  using ChunkAvoid = std::function<std::vector<std::uint16_t>(std::int64_t, std::int64_t)>;
  bool place_chunks(int t, TensorPlace& p, std::uint64_t need, std::uint64_t per, int width,
                    const std::vector<std::uint16_t>& avoid, int side,
                    const ChunkAvoid& chunk_avoid = nullptr) {
    (void)t;
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool west =
          side >= 0 ? (side == 0) == (attempt == 0) : ((next_side_ + attempt) % 2) == 0;
      if (side >= 0 && attempt > 0) break;
      std::vector<TensorPlace::Chunk> chunks;
      std::uint64_t after = 0;
      bool ok = true;
      // What this attempt may change, to restore on failure (allocate() also splits freed
      // ranges, whose reuse stamps must survive).
      const auto saved_alloc = alloc_;
      const auto saved_live = live_, saved_high = high_;
      // Chunks go round a few groups of slices (twice as many as MXM planes stream at once): chunk
      // c on group c mod G, so that neighbouring chunks sit apart while the tensor as a whole keeps
      // to G x width slices (the steps it meets avoid them all).
      const std::size_t groups = static_cast<std::size_t>(std::max(1, 2 * chip_.mxm.planes));
      std::vector<std::vector<std::uint16_t>> group_slices;
      for (std::uint64_t first = 0; first < need && ok; first += per) {
        const std::uint64_t rows_here = std::min(per, need - first);
        const std::size_t c_index = chunks.size();
        if (c_index >= groups) {  // the group's slices again, at its next free range
          const auto& g = group_slices[c_index % groups];
          if (const auto f = find_base(g, rows_here)) {
            allocate(g, f->first, rows_here);
            after = std::max(after, f->second);
            chunks.push_back({static_cast<std::int64_t>(first),
                              static_cast<std::int64_t>(rows_here), g,
                              static_cast<std::uint32_t>(f->first)});
            continue;
          }
        }
        std::vector<std::uint16_t> near;
        for (const auto& g : group_slices)
          near.insert(near.end(), g.begin(), g.end());
        std::vector<std::uint16_t> keep_off = avoid;
        if (chunk_avoid)
          for (auto sl :
               chunk_avoid(static_cast<std::int64_t>(first), static_cast<std::int64_t>(rows_here)))
            keep_off.push_back(sl);
        std::vector<std::uint16_t> cand;
        for (auto c : west ? west_ : east_)
          if (std::find(keep_off.begin(), keep_off.end(), c) == keep_off.end() &&
              std::find(near.begin(), near.end(), c) == near.end())
            cand.push_back(c);
        if (static_cast<int>(cand.size()) < width) {
          cand.clear();
          for (auto c : west ? west_ : east_)
            if (std::find(keep_off.begin(), keep_off.end(), c) == keep_off.end()) cand.push_back(c);
        }
        std::stable_sort(cand.begin(), cand.end(),
                         [&](std::uint16_t a, std::uint16_t b) { return live_[a] < live_[b]; });
        if (static_cast<int>(cand.size()) < width) {
          ok = false;
          break;
        }
        // Of the emptiest groups of slices, the one whose memory is free soonest.
        std::vector<std::uint16_t> pick;
        std::optional<std::pair<std::uint64_t, std::uint64_t>> found;
        for (std::size_t k = 0;
             k + static_cast<std::size_t>(width) <= cand.size() && k < cand.size();
             k += static_cast<std::size_t>(width)) {
          std::vector<std::uint16_t> g(cand.begin() + static_cast<long>(k),
                                       cand.begin() + static_cast<long>(k) + width);
          const auto f = find_base(g, rows_here);
          if (f && (!found || f->second < found->second)) {
            found = f;
            pick = std::move(g);
          }
          if (found && found->second == 0) break;
        }
        if (!found) {
          ok = false;
          break;
        }
        allocate(pick, found->first, rows_here);
        after = std::max(after, found->second);
        if (c_index < groups) group_slices.push_back(pick);
        chunks.push_back({static_cast<std::int64_t>(first), static_cast<std::int64_t>(rows_here),
                          pick, static_cast<std::uint32_t>(found->first)});
      }
      if (!ok) {  // give back what this attempt took
        alloc_ = saved_alloc;
        live_ = saved_live;
        high_ = saved_high;
        continue;
      }
      p.chunked = true;
      p.chunks = std::move(chunks);
      p.slices = p.chunks.front().slices;
      p.addr = p.chunks.front().base;
      p.vectors = static_cast<std::uint32_t>(need);
      p.write_after = after;
      p.west = west;
      p.placed = true;
      ++next_side_;
      return true;
    }
    return false;
  }
  // "west X MiB, east Y MiB": the live MEM per hemisphere (for messages).
  std::string live_mib() const {
    if (std::getenv("LPU_DEBUG_MEM")) {  // the largest live tensors
      std::vector<std::pair<std::uint64_t, std::size_t>> v;
      for (std::size_t t = 0; t < place_.size(); ++t) {
        const TensorPlace& p = place_[t];
        if (!p.placed || p.freed) continue;
        std::uint64_t n = 0;
        if (p.chunked)
          for (const auto& c : p.chunks)
            n += static_cast<std::uint64_t>(c.rows) * c.slices.size();
        else
          n = static_cast<std::uint64_t>(p.vectors) * (p.weights ? 16 : p.slices.size());
        v.push_back({n, t});
      }
      std::sort(v.rbegin(), v.rend());
      for (std::size_t i = 0; i < v.size() && i < 25; ++i)
        std::fprintf(
            stderr, "%8llu KiB %s%s\n",
            static_cast<unsigned long long>(v[i].first * static_cast<std::uint64_t>(lanes_) >> 10),
            k_.tensors[v[i].second].name.c_str(), place_[v[i].second].west ? " (west)" : " (east)");
    }
    std::uint64_t v[2] = {0, 0};
    for (int h = 0; h < 2; ++h)
      for (auto sl : h == 0 ? west_ : east_)
        v[h] += live_[sl];
    auto mib = [&](std::uint64_t n) {
      return std::to_string((n * static_cast<std::uint64_t>(lanes_)) >> 20) + " MiB";
    };
    return "west " + mib(v[0]) + ", east " + mib(v[1]);
  }

  // --- MEM allocation: per slice, ranges of addresses that are live or were freed (with the
  // cycle from which they may be overwritten).
  struct Alloc {
    std::uint64_t start, end;
    std::uint64_t avail;  // ~0: live
  };
  // The lowest base where [base, base + need) is free of live ranges in every slice, with the
  // latest `avail` of the freed ranges it reuses.
  // With fresh, only addresses never used before qualify (MXM weight pieces: their rows past K
  // must read as zero).
  // With a preferred bank (chip.mem.bank_mapping halves), bases from that bank's first address
  // upward are tried first, then the lower ones.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> find_base(
      const std::vector<std::uint16_t>& slices, std::uint64_t need, bool fresh = false,
      int prefer_bank = -1) const {
    const auto depth = static_cast<std::uint64_t>(chip_.mem.depth);
    const std::uint64_t from = prefer_bank > 0 ? static_cast<std::uint64_t>(prefer_bank) * depth /
                                                     static_cast<std::uint64_t>(chip_.mem.banks)
                                               : 0;
    std::vector<std::uint64_t> cands = {0, from};
    for (auto sl : slices)
      for (const Alloc& a : alloc_[sl])
        if (a.avail == ~0ull || fresh) cands.push_back(a.end);
    std::sort(cands.begin(), cands.end());
    cands.erase(std::unique(cands.begin(), cands.end()), cands.end());
    std::stable_partition(cands.begin(), cands.end(), [&](std::uint64_t b) { return b >= from; });
    // Of the bases that fit, the one whose reused memory is free soonest (a tensor written there
    // waits for its previous tenant's last access), in the order above among equals.
    std::optional<std::pair<std::uint64_t, std::uint64_t>> best;
    for (std::uint64_t b : cands) {
      if (b + need > depth) continue;
      bool ok = true;
      std::uint64_t avail = 0;
      for (auto sl : slices) {
        for (const Alloc& a : alloc_[sl]) {
          if (a.start >= b + need || a.end <= b) continue;
          if (a.avail == ~0ull || fresh) {
            ok = false;
            break;
          }
          avail = std::max(avail, a.avail);
        }
        if (!ok) break;
      }
      if (ok && (!best || avail < best->second)) best = std::make_pair(b, avail);
      if (best && best->second == 0) break;  // never used: nothing to wait for
    }
    return best;
  }
  // The bank (halves mapping) with the fewest live vectors in these slices, so that tensors
  // spread over the banks and a read and a write of one slice can share a cycle; -1 when banks
  // do not split the addresses into ranges.
  int quiet_bank(const std::vector<std::uint16_t>& slices) const {
    const int banks = chip_.mem.banks;
    if (banks < 2 || chip_.mem.interleaved) return -1;
    const auto span = static_cast<std::uint64_t>(chip_.mem.depth / banks);
    std::vector<std::uint64_t> live(static_cast<std::size_t>(banks), 0);
    for (auto sl : slices)
      for (const Alloc& a : alloc_[sl]) {
        if (a.avail != ~0ull) continue;
        for (int b = 0; b < banks; ++b) {
          const std::uint64_t lo = std::max(a.start, span * static_cast<std::uint64_t>(b));
          const std::uint64_t hi = std::min(a.end, span * static_cast<std::uint64_t>(b + 1));
          if (hi > lo) live[static_cast<std::size_t>(b)] += hi - lo;
        }
      }
    return static_cast<int>(std::min_element(live.begin(), live.end()) - live.begin());
  }
  void allocate(const std::vector<std::uint16_t>& slices, std::uint64_t base, std::uint64_t need) {
    for (auto sl : slices) {
      std::vector<Alloc> keep;
      for (const Alloc& a : alloc_[sl]) {
        if (a.start >= base + need || a.end <= base) {
          keep.push_back(a);
          continue;
        }
        // A freed range the new one overlaps: keep the parts outside it.
        if (a.start < base) keep.push_back({a.start, base, a.avail});
        if (a.end > base + need) keep.push_back({base + need, a.end, a.avail});
      }
      keep.push_back({base, base + need, ~0ull});
      alloc_[sl] = std::move(keep);
      live_[sl] += need;
      high_[sl] = std::max(high_[sl], base + need);
    }
  }
  // Frees a tensor's storage (contiguous or in chunks) once its last reader is scheduled.
  void release(int t) {
    TensorPlace& tp = place_[static_cast<std::size_t>(t)];
    if (!tp.placed || tp.freed || tp.weights || tp.t16) return;
    tp.freed = true;
    auto free_range = [&](const std::vector<std::uint16_t>& slices, std::uint64_t start,
                          std::uint64_t n) {
      for (auto sl : slices)
        for (Alloc& a : alloc_[sl])
          if (a.avail == ~0ull && a.start == start && a.end == start + n) {
            // Not before its previous tenant was done either (a tensor never accessed
            // hands on the constraint it was given).
            a.avail = std::max(tp.last_read + 1, tp.write_after);
            live_[sl] -= n;
          }
    };
    if (!tp.chunked) {
      free_range(tp.slices, tp.addr, tp.vectors);
      return;
    }
    for (const auto& c : tp.chunks)
      free_range(c.slices, c.base, static_cast<std::uint64_t>(c.rows));
  }

  // Weights: the piece holding row r, column tile tn.
  std::size_t weight_piece(const TensorPlace& p, std::int64_t r, std::int64_t tn) const {
    const std::int64_t batch = r / p.block_rows, kk = r % p.block_rows;
    const std::int64_t tk = kk / chip_.mxm.rows;
    return static_cast<std::size_t>((batch * p.k_tiles + tk) * p.n_tiles + tn);
  }
  // Weights: the slice and address of byte plane b of row r, column tile tn.
  std::pair<std::uint16_t, std::uint32_t> weight_at(const TensorPlace& p, int bytes, std::int64_t r,
                                                    std::int64_t tn, int b) const {
    const int per = 16 / bytes;
    const std::int64_t kr = (r % p.block_rows) % chip_.mxm.rows;
    const auto slot = static_cast<std::size_t>(kr % per);
    const std::size_t piece = weight_piece(p, r, tn);
    return {p.piece_slices[16 * piece + slot * static_cast<std::size_t>(bytes) +
                           static_cast<std::size_t>(b)],
            static_cast<std::uint32_t>(p.piece_addr[piece] + kr / per)};
  }

  // Where byte plane b of vector row vr of tensor t lives.
  std::pair<std::uint16_t, std::uint32_t> at(int t, std::int64_t vr, int b) const {
    const TensorPlace& tp = P(t);
    const KTensor& kt = k_.tensors[static_cast<std::size_t>(root(t))];
    if (tp.weights) {
      const std::int64_t r = std::max<std::int64_t>(kt.rows(), 1);
      return weight_at(tp, isa::dtype_bytes(kt.dtype), vr % r, vr / r, b);
    }
    if (tp.chunked) {
      for (const auto& c : tp.chunks)
        if (vr < c.first + c.rows)
          return {c.slices[static_cast<std::size_t>(b)],
                  static_cast<std::uint32_t>(c.base + (vr - c.first))};
    }
    if (tp.t16)
      return {tp.slices[static_cast<std::size_t>((vr + 4 * b) % 16)],
              static_cast<std::uint32_t>(tp.addr + static_cast<std::uint32_t>(b) * tp.plane_addrs +
                                         vr / 16)};
    return {tp.slices[static_cast<std::size_t>(b)],
            static_cast<std::uint32_t>(tp.addr + static_cast<std::uint64_t>(vr))};
  }

  // Vector rows row0 .. row0 + count - 1 (byte plane b) grouped into runs: one slice,
  // consecutive addresses, evenly spaced rows (first_i, stride: row indices relative to row0).
  struct Run {
    std::uint16_t slice;
    std::uint32_t addr;
    std::int64_t first_i, last_i, stride = 0;
    std::uint32_t n = 1;
  };
  // Runs of every byte plane; where two runs of one slice overlap in time (a repeat keeps its
  // queue busy from the first row to the last), they become single rows.
  std::vector<std::vector<Run>> plane_runs(int t, std::int64_t row0, std::uint32_t count,
                                           int bytes) const {
    std::vector<std::vector<Run>> all;
    for (int b = 0; b < bytes; ++b)
      all.push_back(runs(t, row0, count, b));
    std::map<std::uint16_t, std::vector<std::pair<std::int64_t, std::int64_t>>> spans;
    for (const auto& rs : all)
      for (const Run& r : rs)
        spans[r.slice].push_back({r.first_i, r.last_i});
    for (auto& rs : all) {
      std::vector<Run> out;
      for (const Run& r : rs) {
        bool clash = false;
        for (const auto& [f, l] : spans[r.slice])
          clash = clash || (!(f == r.first_i && l == r.last_i) && f <= r.last_i && r.first_i <= l);
        if (!clash || r.n == 1) {
          out.push_back(r);
          continue;
        }
        for (std::uint32_t k = 0; k < r.n; ++k) {
          const std::int64_t i = r.first_i + static_cast<std::int64_t>(k) * r.stride;
          out.push_back({r.slice, r.addr + k, i, i, 0, 1});
        }
      }
      rs = std::move(out);
    }
    return all;
  }

  std::vector<Run> runs(int t, std::int64_t row0, std::uint32_t count, int b) const {
    std::vector<Run> out;
    std::map<std::uint16_t, std::size_t> open;  // slice -> its last run
    for (std::uint32_t i = 0; i < count; ++i) {
      const auto [slice, addr] = at(t, row0 + i, b);
      auto it = open.find(slice);
      if (it != open.end()) {
        Run& r = out[it->second];
        const std::int64_t gap = static_cast<std::int64_t>(i) - r.last_i;
        if (addr == r.addr + r.n && (r.n == 1 || gap == r.stride)) {
          r.stride = gap;
          r.last_i = i;
          ++r.n;
          continue;
        }
      }
      open[slice] = out.size();
      out.push_back({slice, addr, i, i, 0, 1});
    }
    return out;
  }

  // ---------------------------------------------------------------- fitting

  // The earliest T >= op.lo at which every use fits, or nullopt if the op conflicts with itself.
  std::optional<std::uint64_t> fit(const Op& op) const {
    for (std::size_t i = 0; i < op.uses.size(); ++i)
      for (std::size_t j = i + 1; j < op.uses.size(); ++j) {
        const Use& a = op.uses[i];
        const Use& b = op.uses[j];
        if (a.kind == b.kind && a.id == b.id && a.off < b.off + static_cast<std::int64_t>(b.len) &&
            b.off < a.off + static_cast<std::int64_t>(a.len) &&
            (a.kind != Use::Kind::kStream || (a.p0 <= b.p1 && b.p0 <= a.p1))) {
          if (std::getenv("LPU_DEBUG_FIT"))
            std::fprintf(stderr, "self-conflict: kind %d id %d [%lld,+%llu) vs [%lld,+%llu)\n",
                         static_cast<int>(a.kind), a.id, static_cast<long long>(a.off),
                         static_cast<unsigned long long>(a.len), static_cast<long long>(b.off),
                         static_cast<unsigned long long>(b.len));
          return std::nullopt;
        }
      }
    std::int64_t lo = static_cast<std::int64_t>(op.lo);
    for (const Use& u : op.uses)
      lo = std::max(lo, -u.off);
    for (const Emit& e : op.emits)
      lo = std::max(lo, -e.off);
    auto t = static_cast<std::uint64_t>(lo);
    for (int guard = 0; guard < 10000000; ++guard) {
      std::optional<std::uint64_t> need;
      auto want = [&](std::uint64_t x) { need = need ? std::max(*need, x) : x; };
      for (const Use& u : op.uses) {
        const auto s = static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + u.off);
        if (u.kind == Use::Kind::kStream) {
          claims_[static_cast<std::size_t>(u.id)].overlapping(
              s, s + u.len, u.p0, u.p1, [&](const Claim& o) { want(t + (o.k1 - s)); });
        } else {
          const Busy& b = busy_of(u.kind)[static_cast<std::size_t>(u.id)];
          if (auto e = b.conflict(s, u.len)) want(t + (*e - s));
        }
      }
      if (!need) return t;
      t = std::max(t + 1, *need);
    }
    throw std::logic_error("scheduler: no cycle fits");
  }

  // Reserves everything and records the instructions; returns the first block's id.
  int commit(const Op& op, std::uint64_t t) {
    for (const auto& [tensor, off] : op.reads) {
      TensorPlace& tp = place_[static_cast<std::size_t>(tensor)];
      tp.last_read = std::max<std::uint64_t>(
          tp.last_read, static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + off));
    }
    for (const Use& u : op.uses) {
      const auto s = static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + u.off);
      if (u.kind == Use::Kind::kStream)
        claims_[static_cast<std::size_t>(u.id)].add({s, s + u.len, u.p0, u.p1});
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

  // Queue and port uses of an instruction repeated `count` times `stride` apart.
  void use_queue(Op& op, std::uint16_t queue, std::int64_t off, std::uint32_t count,
                 std::uint32_t stride = 1) {
    op.uses.push_back(
        {Use::Kind::kQueue, queue, off, static_cast<std::uint64_t>(stride) * (count - 1) + 1});
  }
  // A C2C link's transmit side.
  void use_port(Op& op, std::uint16_t link, std::int64_t off, std::uint32_t count) {
    op.uses.push_back({Use::Kind::kPort, link, off, count});
  }
  // MEM accesses of one slice, `count` of them `stride` cycles apart from T + off, at addresses
  // lo..hi: its read (or write) port, and the banks those addresses lie in (a read and a write
  // of one slice may share a cycle when their banks differ). Interleaved banks are all taken by
  // a run of several addresses.
  void use_mem(Op& op, std::uint16_t slice, bool write, std::int64_t off, std::uint32_t count,
               std::uint32_t stride, std::uint64_t lo, std::uint64_t hi) {
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
  void use_stream(Op& op, int stream, bool west, std::int64_t key_off, std::uint64_t len, int pa,
                  int pb) {
    op.uses.push_back({Use::Kind::kStream, stream_id(stream, west), key_off, len, std::min(pa, pb),
                       std::max(pa, pb)});
  }

  // Stream uses of one op from index `first` on that name the same stream slots (several writes
  // taking values off one stream) become one use spanning all of them.
  static void merge_stream_uses(Op& op, std::size_t first) {
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

  // Reads vector rows row0.. of contiguous tensor t (every byte plane) so that the i-th reaches
  // position `to` in cycle T + i on streams first..; count of them. A broadcast operand (one
  // logical row) is read again for every row of a result of `count` vector rows: with T tiles
  // the result's vector row i needs its tile i / (count / T). Returns the emits' indices.
  // With cs > 1 the rows come cs cycles apart (row i in T + i cs; not for broadcasts).
  std::vector<int> read_rows(Op& op, int t, std::int64_t row0, std::uint32_t count, bool broadcast,
                             int first, int to, std::uint32_t cs = 1) {
    const TensorPlace& tp = P(t);
    const auto& rd = lat("read");
    std::vector<int> ids;
    if (broadcast && cs != 1) throw std::logic_error("scheduler: spaced broadcast read");
    const std::uint64_t span = static_cast<std::uint64_t>(count - 1) * cs + 1;
    if (tp.t16 || tp.weights || tp.chunked) {
      // Rows spread over slices: one read (with a repeat) per run of consecutive addresses of one
      // slice at evenly spaced cycles; the whole tensor must be written first.
      if (broadcast) throw std::logic_error("scheduler: broadcast read of a spread tensor");
      const int bytes = isa::dtype_bytes(k_.tensors[static_cast<std::size_t>(root(t))].dtype);
      const auto all = plane_runs(t, row0, count, bytes);
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
          use_queue(op, sq.id, d, r.n, stride);
          use_mem(op, sq.id, false, access, r.n, stride, r.addr, r.addr + r.n - 1);
          Emit e;
          e.queue = sq.id;
          e.off = d;
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
          const std::int64_t need = static_cast<std::int64_t>(ready_rows(
                                        tp, row0 + r.first_i, r.last_i - r.first_i + 1)) -
                                    access;
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
      use_queue(op, sq.id, d, count, cs);
      use_mem(op, sq.id, false, access, count, cs,
              broadcast ? tp.addr : tp.addr + static_cast<std::uint64_t>(row0),
              broadcast ? tp.addr + tp.vectors - 1
                        : tp.addr + static_cast<std::uint64_t>(row0) + count - 1);
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
        e.separate = broadcast && per_tile > 1;
        e.v0 = static_cast<std::int64_t>(ti * per_tile);
        e.done_off = written + sl_ - 1 + static_cast<std::int64_t>(ti * per_tile);
        ids.push_back(static_cast<int>(op.emits.size()));
        op.emits.push_back(std::move(e));
      }
      op.reads.push_back({root(t), access + static_cast<std::int64_t>(span) - 1});
      // Vector row row0 + i is read in cycle T + access + i cs: after it was written.
      const std::int64_t need = broadcast
                                    ? static_cast<std::int64_t>(tp.ready_all) - access
                                    : static_cast<std::int64_t>(tp.ready_stream) + row0 - access;
      op.lo = std::max<std::uint64_t>(op.lo,
                                      static_cast<std::uint64_t>(std::max<std::int64_t>(0, need)));
    }
    return ids;
  }

  // Broadcast operand t (L logical rows read cyclically, a block per column tile) for result
  // vector rows r0 .. r0 + count - 1 of a result of R logical rows, from copy `copy`: result
  // row i takes tile i / R, row (i mod R) mod L, in cycle T + i - r0 at position `to`. Reads of
  // consecutive addresses become one read with a repeat. Returns the emits' indices.
  std::vector<int> read_broadcast(Op& op, int t, int copy, std::int64_t r0, std::uint32_t count,
                                  std::int64_t R, int first, int to) {
    const TensorPlace& tp = P(t);
    const auto& rd = lat("read");
    const std::vector<std::uint16_t>& slices =
        copy == 0 ? tp.slices : tp.replicas[static_cast<std::size_t>(copy - 1)].first;
    const std::uint32_t addr =
        copy == 0 ? tp.addr : tp.replicas[static_cast<std::size_t>(copy - 1)].second;
    const std::int64_t L = logical_rows(t);
    auto crow = [&](std::int64_t i) { return (i / R) * L + (i % R) % L; };
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
        const std::int64_t c0 = crow(r0 + i);
        std::uint32_t n = 1;
        while (i + n < count && crow(r0 + i + n) == c0 + n)
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

  // Writes values leaving position `from` in cycle T + at + i cs (i < count, on streams first..;
  // the values in between pass by) as rows row0.. of tensor t; each write expects emit
  // `producer`, whose vector value0 + i value_stride row row0 + i is. access_of_row0 gets, per
  // write, its lag (row row0 + i is written by T + lag + i) and the offset of its last access
  // (see written()).
  void write_rows(Op& op, int t, std::int64_t row0, std::uint32_t count, int first, int from,
                  std::int64_t at, int producer, std::vector<Written>* access_of_row0,
                  std::uint32_t cs = 1, std::int64_t value0 = 0, std::int64_t value_stride = 1) {
    const std::int64_t span = static_cast<std::int64_t>(count - 1) * cs;  // first to last value
    const TensorPlace& tp = P(t);
    const auto& wr = lat("write");
    const int bytes = isa::dtype_bytes(k_.tensors[static_cast<std::size_t>(t)].dtype);
    if (!tp.weights && !tp.t16 && !tp.chunked) {
      for (std::size_t b = 0; b < tp.slices.size(); ++b) {
        const arch::Queue& sq = q(tp.slices[b]);
        const bool west = sq.position < from;
        const std::int64_t access = at + dist(sq.position, from);
        // Reused storage: not before its previous tenant's last read.
        op.lo = std::max<std::uint64_t>(
            op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(
                       0, static_cast<std::int64_t>(tp.write_after) - access)));
        op.reads.push_back({root(t), access + span});
        const std::int64_t d = access - wr.d_skew;
        use_queue(op, sq.id, d, count, cs);
        use_mem(op, sq.id, true, access, count, cs, tp.addr + static_cast<std::uint64_t>(row0),
                tp.addr + static_cast<std::uint64_t>(row0) + count - 1);
        const int stream = first + static_cast<int>(b);
        use_stream(op, stream, west, at + key_const(west, from),
                   static_cast<std::uint64_t>(span) + 1, from, sq.position);
        Emit e;
        e.queue = sq.id;
        e.off = d;
        e.instr = instr("write");
        e.tensor = root(t);
        e.instr.arg[0] = tp.addr + static_cast<std::uint32_t>(row0);
        e.instr.arg[1] = isa::stream_arg(stream, west);
        e.count = count;
        e.stride = cs;
        e.v0 = value0;
        e.vs = value_stride;
        e.done_off = access + wr.d_func + sl_ - 1;
        e.expects = {producer};
        op.emits.push_back(std::move(e));
        access_of_row0->push_back({access + span - static_cast<std::int64_t>(count - 1),
                                   access + span, row0,
                                   row0 + static_cast<std::int64_t>(count) - 1});
      }
      return;
    }
    // Spread layouts (MXM weights, t16): each vector row goes to its own slice and address;
    // rows bound for one slice at consecutive addresses and evenly spaced cycles become one write
    // with a repeat.
    const auto all = plane_runs(t, row0, count, bytes);
    for (int b = 0; b < bytes; ++b) {
      const int stream = first + b;
      int far = from;
      const std::vector<Run>& runs = all[static_cast<std::size_t>(b)];
      for (const Run& r : runs)
        far =
            std::abs(q(r.slice).position - from) > std::abs(far - from) ? q(r.slice).position : far;
      for (const Run& r : runs) {
        const arch::Queue& sq = q(r.slice);
        const bool west = sq.position < from;
        const std::int64_t access = at + dist(sq.position, from) + r.first_i * cs;
        op.lo = std::max<std::uint64_t>(
            op.lo, static_cast<std::uint64_t>(std::max<std::int64_t>(
                       0, static_cast<std::int64_t>(tp.write_after) - access)));
        const std::int64_t d = access - wr.d_skew;
        const auto stride = static_cast<std::uint32_t>(std::max<std::int64_t>(1, r.stride) * cs);
        op.reads.push_back({root(t), access + static_cast<std::int64_t>(stride) * (r.n - 1)});
        use_queue(op, sq.id, d, r.n, stride);
        use_mem(op, sq.id, true, access, r.n, stride, r.addr, r.addr + r.n - 1);
        Emit e;
        e.queue = sq.id;
        e.off = d;
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
        // Row first_i + k r.stride is written in access + k stride: the last row lags most.
        const std::int64_t last = access + static_cast<std::int64_t>(stride) * (r.n - 1);
        access_of_row0->push_back(
            {last - (r.first_i + std::max<std::int64_t>(1, r.stride) * (r.n - 1)), last,
             row0 + r.first_i, row0 + r.last_i});
      }
      const bool west = far < from;
      use_stream(op, stream, west, at + key_const(west, from), static_cast<std::uint64_t>(span) + 1,
                 from, far);
    }
  }

  // When vector rows row0 .. row0 + count - 1 of a tensor are all written: its chunks' readiness
  // for a chunked tensor, else the whole tensor's.
  static std::uint64_t ready_rows(const TensorPlace& tp, std::int64_t row0, std::int64_t count) {
    if (!tp.chunked || tp.chunk_ready.size() != tp.chunks.size()) return tp.ready_all;
    std::uint64_t r = 0;
    for (std::size_t c = 0; c < tp.chunks.size(); ++c)
      if (tp.chunks[c].first < row0 + count && row0 < tp.chunks[c].first + tp.chunks[c].rows)
        r = std::max(r, tp.chunk_ready[c]);
    return r;
  }

  // After commit: when tensor t's rows row0.. (written at T + access + i) can be read.
  void written(int t, std::uint64_t T, std::int64_t row0, const std::vector<Written>& access) {
    TensorPlace& tp = P(t);
    for (const Written& w : access) {
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

  // ---------------------------------------------------------------- VXM steps

  // A part of a split step: its rows first .. first + rows - 1 (of the whole tensors, or from the
  // start of each operand's and the result's row range), broadcast operands read from copy
  // `copy` (0: the tensor itself).
  struct Part {
    std::int64_t first = 0, rows = 0;
    int copy = 0;
  };

  // Step s's run cut at its result's chunks (rows from the start of the run); part c reads
  // broadcast operands from copy c mod copies.
  std::vector<Part> chunk_parts(const KStep& s, int copies) const {
    const std::int64_t d0 = result_row(s), n = run_rows(s);
    std::vector<Part> parts;
    for (const auto& [f, r] : chunk_bounds(s.d)) {
      const std::int64_t lo = std::max(f, d0), hi = std::min(f + r, d0 + n);
      if (lo < hi) parts.push_back({lo - d0, hi - lo, static_cast<int>(parts.size()) % copies});
    }
    return parts;
  }

  // The first of the streams `cand` whose `group` streams from it are not among `used` (taking
  // them), or -1.
  static int first_free(const std::vector<int>& cand, int group,
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

  // ---------------------------------------------------------------- chains of VXM steps

  // Consecutive VXM steps (whole tensors, or row ranges of tensors of one column tile), each
  // reading the rows the previous one writes, run as one operation: a step's ALU reads the value
  // the previous ALU writes onto a stream in the cycle it is written (the VXM is one stream
  // position), so the value never goes through MEM unless something else reads it. chain_len_[i]:
  // the steps of the chain starting at step i (1: none), 0 for a chain's later steps.
  static constexpr std::size_t kMaxChain = 8;
  void find_chains() {
    const std::size_t n = k_.steps.size();
    chain_len_.assign(n, 1);
    chain_write_.assign(k_.tensors.size(), true);
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
    auto whole = [&](const KStep& st) {  // a whole tensor, or a row range of one column tile
      return st.kind == KStep::Kind::kVxm && st.deal.empty() && st.d >= 0 && root(st.d) == st.d &&
             (!st.rows || k_.tensors[static_cast<std::size_t>(st.d)].tiles(lanes_) == 1);
    };
    for (std::size_t i = 0; i < n;) {
      std::size_t j = i;
      std::vector<int> ds, read;  // results so far; tensors read from MEM so far
      if (whole(k_.steps[i])) {
        ds.push_back(k_.steps[i].d);
        for (int t : {k_.steps[i].a, k_.steps[i].b, k_.steps[i].mask})
          if (t >= 0) read.push_back(root(t));
        while (j + 1 < n && j + 1 - i < kMaxChain && whole(k_.steps[j + 1])) {
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
            if (root(t) == a.d && rows_of(t) == rows_of(a.d) &&
                operand_row(b, t) == result_row(a) && run_rows(a) == run_rows(b))
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
  }

  // A VXM step's first result row, its rows (vector rows), and the first row it reads of operand
  // t (as vxm_tile reads them).
  std::int64_t result_row(const KStep& s) const { return s.rows ? s.d_row : 0; }
  std::int64_t run_rows(const KStep& s) const {
    return s.rows ? s.rows : static_cast<std::int64_t>(rows_of(s.d));
  }
  std::int64_t operand_row(const KStep& s, int t) const {
    if (!s.rows || t == s.mask) return 0;
    return t == s.a ? s.a_row : s.b_row;
  }

  // Merges operation `sub`, built as if it started in cycle T + delta, into `into` (starting in
  // T). Returns the index of sub's first emit in into.
  static int merge_shifted(Op& into, Op&& sub, std::int64_t delta) {
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

  // Places tensor d off the slices of the (contiguous) operands `ins` where there is room: of
  // all of them, else of those but constants (whose copies may cover much of a hemisphere).
  void place_off(int d, const std::vector<int>& ins) {
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

  // The chain of steps first .. first + chain_len_[first] - 1, part by part (the last result's
  // chunks, as vxm_step cuts one step).
  void vxm_chain(std::size_t first) {
    std::vector<const KStep*> c;
    for (std::size_t j = first; j < first + chain_len_[first]; ++j)
      c.push_back(&k_.steps[j]);
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
    const KStep& last = *c.back();
    int copies = kReplicas;
    bool split = splittable(last) && P(last.d).chunked;
    for (const KStep* st : c)
      for (int t : {st->a, st->b, st->mask})
        if (t >= 0 && broadcast_of(*st, t)) {
          const TensorPlace& tp = P(t);
          copies = std::min<int>(copies, 1 + static_cast<int>(tp.replicas.size()));
          if (tp.chunked || tp.t16 || tp.weights) split = false;
        }
    std::vector<Part> parts;
    if (split) parts = chunk_parts(last, copies);
    if (parts.empty()) parts.push_back({0, run_rows(last), 0});
    for (const Part& p : parts)
      chain_part(c, p);
  }

  struct ChainWrite {  // a tensor a chain writes: from row row0, as write_rows reported
    int t = -1;
    std::int64_t row0 = 0;
    std::vector<Written> acc;
  };

  // One part of a chain (rows part.first .. of each step's run); when no ALUs and streams fit
  // it, its two halves as chains of their own (the value between them goes through MEM), and at
  // last step by step.
  void chain_part(const std::vector<const KStep*>& c, const Part& part) {
    const auto v = static_cast<std::uint32_t>(part.rows);
    std::optional<std::pair<Op, std::uint64_t>> best;
    std::vector<ChainWrite> best_w;
    const int nalu = static_cast<int>(alus_.size());
    for (int a0 = 0; a0 < nalu; ++a0)
      for (int rot = 0; rot < 8; ++rot) {
        // rot 4 .. 7: values only passed along take the direction with fewer streams taken so
        // far (either serves: they are written and read at the VXM alone).
        const bool balance = rot >= 4;
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
              if (std::none_of(p4.begin(), p4.end(), [&](int s4) {
                    return std::find(x4.begin(), x4.end(), s4) != x4.end();
                  }))
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
        if (!ok) continue;
        std::map<bool, std::vector<std::pair<int, int>>> used;  // direction -> (first, size)
        auto take = [&](int a, bool west, int group, int also) -> int {
          auto cand = alu_streams(a, group, rot % 4);
          if (also >= 0) {
            const auto other = alu_streams(also, group);
            cand.erase(std::remove_if(cand.begin(), cand.end(),
                                      [&](int st) {
                                        return std::find(other.begin(), other.end(), st) ==
                                               other.end();
                                      }),
                       cand.end());
          }
          const int st = first_free(cand, group, used[west]);
          ok = ok && st >= 0;
          return std::max(st, 0);
        };
        Op op;
        std::vector<ChainWrite> writes;
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
                bc ? read_broadcast(sub, t, part.copy, part.first, v, step_rows(s), st, vxm_pos_)
                   : read_rows(sub, t, from, v, false, st, vxm_pos_);
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
            write_rows(op, s.d, result_row(s) + part.first, v, dst, vxm_pos_, at + vx.d_func,
                       alu_emit, &writes.back().acc);
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
        if (!ok) continue;
        const auto t = fit(op);
        if (!t) continue;
        if (!best || *t < best->second) {
          best = {std::move(op), *t};
          best_w = std::move(writes);
        }
      }
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
    commit(best->first, best->second);
    for (const ChainWrite& w : best_w)
      written(w.t, best->second, w.row0, w.acc);
    vxm_busy_ += static_cast<std::uint64_t>(v) * c.size();
  }

  // The ALU instruction of VXM step s with stream arguments `args` (operands, then the result).
  isa::Instr alu_instr(const KStep& s, const std::vector<std::uint32_t>& args) const {
    const char* mn = mnemonic(s.args.op);
    const isa::OpInfo& info = *isa::by_mnemonic(mn);
    isa::Instr in = instr(mn);
    in.mod[0] = mod_code(isa::ModKind::kDtype, isa::to_string(s.args.type));
    if (info.mods[1] == isa::ModKind::kOvf && isa::is_integer(s.args.type))
      in.mod[1] = mod_code(isa::ModKind::kOvf, s.args.saturate ? "sat" : "mod");
    if (s.args.op == func::VxmOp::kCast)
      in.mod[1] = mod_code(isa::ModKind::kDtype, isa::to_string(s.args.to));
    if (info.mods[1] == isa::ModKind::kCmp) {
      static const std::map<func::VxmOp, const char*> cmp = {
          {func::VxmOp::kCmpEq, "eq"}, {func::VxmOp::kCmpNe, "ne"}, {func::VxmOp::kCmpLt, "lt"},
          {func::VxmOp::kCmpLe, "le"}, {func::VxmOp::kCmpGt, "gt"}, {func::VxmOp::kCmpGe, "ge"}};
      in.mod[1] = mod_code(isa::ModKind::kCmp, cmp.at(s.args.op));
    }
    for (std::size_t i = 0; i < args.size(); ++i)
      in.arg[i] = args[i];
    return in;
  }

  // Copies a VXM step split over ALUs may read a broadcast constant from (TensorPlace::replicas).
  static constexpr int kReplicas = 4;

  // A long step over a whole tensor, or over a long row range of a tensor of one column tile
  // (not dealt): its rows can be cut into parts that run on several ALUs, chunk by chunk.
  bool splittable(const KStep& s) const {
    const auto two = 2 * static_cast<std::uint64_t>(chip_.mxm.accumulators);
    if (s.kind != KStep::Kind::kVxm || !s.deal.empty() || s.d < 0) return false;
    if (!s.rows) return rows_of(s.d) > two;
    return static_cast<std::uint64_t>(s.rows) > two &&
           k_.tensors[static_cast<std::size_t>(s.d)].tiles(lanes_) == 1;
  }
  // The result rows of step s (all of d's, or its row range).
  std::int64_t step_rows(const KStep& s) const { return s.rows ? s.rows : logical_rows(s.d); }
  bool broadcast_of(const KStep& s, int t) const { return logical_rows(t) < step_rows(s); }

  // kReplicas - 1 more copies of constant t, each on slices of its own.
  void replicate(int t) {
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

  // The chunks of tensor t, or nothing when it is not chunked.
  std::vector<std::pair<std::int64_t, std::int64_t>> chunk_bounds(int t) const {
    std::vector<std::pair<std::int64_t, std::int64_t>> out;
    for (const auto& c : P(t).chunks)
      out.push_back({c.first, c.rows});
    return out;
  }

  // Streams an ALU may use: the SG4 groups of its row (chip.vxm.row_stream_groups; brief A3).
  // With rot (0 .. 3), the list starts rot quarters in (candidates spread over the groups).
  std::vector<int> alu_streams(int alu, int group, int rot = 0) const {
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

  // A VXM step; one writing a row range of a tensor whose rows are cut into column tiles runs
  // once per tile (each tile's rows are consecutive vector rows, isa/layout.h).
  // Every slice tensor t occupies (all chunks of a chunked one).
  std::vector<std::uint16_t> slices_of(int t) const {
    const TensorPlace& p = P(t);
    std::vector<std::uint16_t> out = p.chunked ? std::vector<std::uint16_t>{} : p.slices;
    for (const auto& c : p.chunks)
      out.insert(out.end(), c.slices.begin(), c.slices.end());
    for (const auto& r : p.replicas)
      out.insert(out.end(), r.first.begin(), r.first.end());
    return out;
  }

  void vxm_step(const KStep& s) {
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
        throw InputError(source_, "no room for '" + name(t) + "' in the hemisphere of '" +
                                      name(s.d) + "' (MEM is too full; live now: " + live_mib() +
                                      ")");
    }
    if (splittable(s) && P(s.d).chunked) {
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
      const std::vector<Part> parts = ok ? chunk_parts(s, copies) : std::vector<Part>{};
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

  // Column tile `tile` of a step writing a row range (each tile's rows are consecutive vector
  // rows); the whole tensor when the step has no row range; or one part of a split step.
  void vxm_tile(const KStep& s, std::int64_t tile, std::optional<Part> part = std::nullopt) {
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
          for (int id : part&& bc ? read_broadcast(op, t, part->copy, part->first, v, step_rows(s),
                                                   st, vxm_pos_)
                                  : read_rows(op, t, from, v, bc, st, vxm_pos_))
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
                     vxm_pos_, vx.d_func + p, alu_emit, &acc[p], n_dest, p, n_dest);
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
        vxm_tile(s, tile, Part{whole.first, half, whole.copy});
        vxm_tile(s, tile, Part{whole.first + half, whole.rows - half, whole.copy});
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

  // ---------------------------------------------------------------- exchanges between chips

  // Every vector (row, column tile, byte plane) of a slot moves on its own: in round k
  // (1 .. chips - 1) it is read onto a stream that passes the send port in the send's access
  // cycle, crosses the link, and the receive at the far end (the same cycle on every chip, as
  // every chip runs this schedule) puts it on a stream to d's slice; round 0 copies the chip's
  // own slot. Each transfer is fitted like any other operation; the link's transmit side is
  // reserved for a frame time as the send queue's port.
  void exchange_step(const KStep& s) {
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
            const auto dst =
                static_cast<std::uint32_t>(t * d_rows + ((chips_ - k) % chips_) * p + r);
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
                write_vector(op, s.d, sd.id, pd.addr + dst, st, rx.position, flight + rc.d_func,
                             got);
              }
              slot(op.emits.back(), -1);  // the write
              const auto at = fit(op);
              if (!at) continue;
              if (!best || *at < best->second) best = {op, *at};
              if (best->second == op_lower_bound(best->first)) break;
            }
            if (!best) no_fit(s.origin, "no stream carries the exchange");
            commit(best->first, best->second);
            written_at(s.d, best->second + static_cast<std::uint64_t>(best->first.emits.back().off +
                                                                      wr.d_skew));
          }
  }

  // ---------------------------------------------------------------- pipeline transfers

  const arch::Queue& port_queue(const KStep& s) const {
    const auto qn = arch::find_queue(queues_, "c2c.l" + std::to_string(s.port));
    if (!qn)
      throw InputError(source_, s.origin + ": the chip has no C2C link " + std::to_string(s.port));
    return queues_[qn->id];
  }

  // Each vector of a, in order: read onto a stream that passes the port in the send's access
  // cycle T; the link is then busy for a frame time.
  void send_step(const KStep& s) {
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
          const auto t = fit(op);
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

  // Vector j of d arrives in cycle arrivals[j]: the receive runs then (the far chip sent it; it
  // cannot wait), and a write takes it into d.
  void recv_step(const KStep& s) {
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
          throw InputError(source_, s.origin + ": vector " + std::to_string(j) + " of '" +
                                        name(s.d) + "' arrives on link " + std::to_string(s.port) +
                                        " in cycle " + std::to_string(when) +
                                        ", when its receive or the write after it cannot run");
      }
  }

  // --- single vectors between MEM and the C2C ports (exchanges and pipeline transfers)

  // A read of one vector of tensor t (slice, addr) onto stream st, timed so that the value
  // passes position `to` in T + at. `claim`: reserve its stream path (false when a write of the
  // same value claims the whole path). Returns the emit's index.
  int read_vector(Op& op, int t, std::uint16_t slice, std::uint32_t addr, int st, int to,
                  std::int64_t at_off, bool claim = true) {
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

  // The write into tensor t (slice, addr) of the value on stream st passing position `from` in
  // T + at, made by emit `producer`. Returns its access offset.
  std::int64_t write_vector(Op& op, int t, std::uint16_t slice, std::uint32_t addr, int st,
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
    op.lo = std::max<std::uint64_t>(op.lo,
                                    static_cast<std::uint64_t>(std::max<std::int64_t>(
                                        0, static_cast<std::int64_t>(P(t).write_after) - access)));
    return access;
  }

  // A send on port tx whose access (the frame's departure) is T + at, reading the stream emit
  // `producer` writes; the link's transmit side is busy for a frame time.
  void send_vector(Op& op, const arch::Queue& tx, std::int64_t at_off, int producer) {
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

  // A receive on port rx whose access (the frame's arrival) is T + at, putting the vector on
  // stream `stream`. Returns the emit's index.
  int recv_vector(Op& op, const arch::Queue& rx, std::int64_t at_off, std::uint32_t stream) {
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

  // Tensor t's rows are all written by cycle `last`: readable from the next.
  void written_at(int t, std::uint64_t last) {
    TensorPlace& tp = P(t);
    tp.ready_all = std::max(tp.ready_all, last + 1);
    tp.ready_stream = std::max(tp.ready_stream, tp.ready_all);
    for (auto& c : tp.chunk_ready)
      c = std::max(c, tp.ready_all);
  }

  // ---------------------------------------------------------------- SXM steps

  void sxm_step(const KStep& s) {
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
    for (const arch::Queue& uq : queues_) {
      if (uq.unit != kind) continue;
      const arch::Queue* unit = &uq;
      const int pos = unit->position;
      Op op;
      std::map<bool, std::vector<std::pair<int, int>>> used;
      auto take = [&](bool west, int group) -> int {
        for (int st = 0; st + group <= chip_.streams.per_direction; st += group) {
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
      const auto t = fit(op);
      if (t && (!best || *t < best->second)) {
        best = {op, *t};
        best_rows = rows;
      }
    }
    if (!best) no_fit(s.origin, "no SXM unit and streams fit the lane move");
    commit(best->first, best->second);
    written(s.d, best->second, drow, best_rows);
  }

  // The SXM transposer over every block of 16 rows, one byte plane at a time: 16 reads (one per
  // slot slice, a repeat over the blocks), the transpose, 16 writes.
  void transpose_step(const KStep& s) {
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
            use_stream(op, out_base + j, out_west, tr.d_func + key_const(out_west, pos), blocks,
                       pos, sq.position);
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
          if (auto tt = fit(op); tt && (!best || *tt < best->second)) best = {op, *tt};
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
    P(s.d).ready_all = std::max(P(s.d).ready_all, done);
    P(s.d).ready_stream = std::max(P(s.d).ready_stream, done);
  }

  // ---------------------------------------------------------------- MXM steps
  void matmul_step(const KStep& s);

  Schedule emit();

  // Block b's instruction on chip `chip` (Emit::spmd_*: blocks_ hold chip 0's).
  isa::Instr patched(const Block& b, int chip) const {
    isa::Instr in = b.instr;
    if (b.spmd_sign == 0 || chip == 0) return in;
    auto slot = [&](int c) {
      return static_cast<std::int64_t>(((c + b.spmd_sign * b.spmd_round) % chips_ + chips_) %
                                       chips_);
    };
    in.arg[0] = static_cast<std::uint32_t>(static_cast<std::int64_t>(in.arg[0]) +
                                           (slot(chip) - slot(0)) * b.spmd_unit);
    return in;
  }
  void check_memory() const;
  void plan_ifetch();
  // The dispatch cycles of a queue's entries, in order (as emit() lays them out).
  std::vector<std::uint64_t> entry_cycles(std::uint16_t queue) const {
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
  struct Fetch {
    std::uint16_t queue, slice;
    std::uint32_t addr;
    std::size_t k;  // the k-th fetch of its queue (0-based): entries D + 40 k ..
  };
  std::vector<Fetch> fetches_;
  std::vector<std::uint32_t> text_next_;  // per instruction slice: next free address

  std::uint64_t op_lower_bound(const Op& op) const {
    std::int64_t lo = static_cast<std::int64_t>(op.lo);
    for (const Use& u : op.uses)
      lo = std::max(lo, -u.off);
    for (const Emit& e : op.emits)
      lo = std::max(lo, -e.off);
    return static_cast<std::uint64_t>(lo);
  }

  const Kernels& k_;
  const arch::Arch& arch_;
  const arch::Chip& chip_;
  std::string source_;
  std::vector<arch::Queue> queues_;
  int positions_ = 0, vxm_pos_ = 0, lanes_ = 0, sl_ = 1;
  std::uint64_t hop_ = 1;
  std::vector<std::uint16_t> west_, east_, alus_;
  std::vector<Plane> planes_;
  std::vector<Busy> busy_, port_, read_, write_, bank_;
  std::vector<Busy>& busy_of(Use::Kind k) {
    return k == Use::Kind::kQueue   ? busy_
           : k == Use::Kind::kPort  ? port_
           : k == Use::Kind::kRead  ? read_
           : k == Use::Kind::kWrite ? write_
                                    : bank_;
  }
  const std::vector<Busy>& busy_of(Use::Kind k) const {
    return const_cast<Scheduler*>(this)->busy_of(k);
  }
  std::vector<std::vector<Alloc>> alloc_;
  std::vector<std::uint64_t> live_, high_;  // per slice: live vectors, highest address used
  bool reuse_ = true;
  std::vector<Claims> claims_;
  std::vector<TensorPlace> place_;
  std::vector<Block> blocks_;
  // A program split over chips (set_spmd): every chip's kernels, and per exchange round the
  // queues that send and receive.
  const std::vector<Kernels>* spmd_ = nullptr;
  int chips_ = 1;
  std::vector<std::uint16_t> send_q_, recv_q_;
  std::vector<std::vector<std::uint64_t>> sends_;  // per kSend step: each vector's send cycle
  int next_side_ = 0;
  mutable std::vector<bool> used_;          // see used()
  std::vector<std::vector<int>> co_;        // per tensor: tensors read with it in one VXM step
  std::vector<std::vector<int>> co_write_;  // per tensor: tensors a step reads it with or into

  std::uint64_t vxm_busy_ = 0, mxm_busy_ = 0;
  std::vector<StepTiming> step_timing_;
  std::vector<bool> streamed_;
  std::vector<std::size_t> chain_len_;  // per step: see find_chains()
  std::vector<bool> chain_write_;  // per tensor: a value passed along a chain is written too  //
                                   // per tensor: chunked by default when long (see run())
  std::vector<bool> no_chunk_;     // per tensor: never chunked (exchanged between chips)
};

void Scheduler::matmul_step(const KStep& s) {
  const int xb = isa::dtype_bytes(s.mm_type);
  const int per = 16 / xb;
  const auto nlw_all = static_cast<std::uint32_t>(chip_.mxm.rows / per);
  const auto m = static_cast<std::uint32_t>(s.m);
  const DType rt = s.mm_type == DType::kI8 ? DType::kI32 : DType::kFp32;
  const char* type = isa::to_string(s.mm_type);
  // fp16 activations (and their fp32 products) come one every iv cycles.
  const auto iv =
      static_cast<std::uint32_t>(s.mm_type == DType::kFp16 ? chip_.mxm.fp16_interval() : 1);
  if (!P(s.d).placed) place(s.d);
  // The plane free soonest.
  auto ready = [&](const Plane& p) {
    const std::uint64_t r = std::max(p.last_abc, p.install_end);
    return p.buf_free.empty() ? r : std::max(r, p.buf_free[p.next_buf]);
  };
  std::size_t pi = 0;
  for (std::size_t i = 1; i < planes_.size(); ++i)
    if (ready(planes_[i]) < ready(planes_[pi])) pi = i;
  Plane& pl = planes_[pi];
  const int pm = pl.position;
  const auto& lw = lat("lw");
  const auto& iw = lat("iw.buf");
  const auto& clw = lat("clw");
  const auto& ws = lat("iw.str");
  const auto& abc = lat("abc");
  const auto& acc = lat("acc");
  const auto& rd = lat("read");
  const bool staged = !pl.buf_free.empty();  // else weights go straight into the array

  auto at_least = [](std::int64_t x) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, x));
  };
  for (std::size_t pass = 0; pass < s.passes.size(); ++pass) {
    const KPass& ps = s.passes[pass];
    const TensorPlace& wp = P(ps.w);
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
    if (clear) {
      // (a0) clear the buffer; the loads follow once it is done.
      Op op;
      op.lo = pl.buf_free[buf];
      use_queue(op, pl.wt, -clw.d_skew, 1);
      Emit e;
      e.queue = pl.wt;
      e.off = -clw.d_skew;
      e.instr = instr("clw");
      e.instr.arg[0] = static_cast<std::uint32_t>(buf);
      e.done_off = clw.d_func + sl_ - 1;
      op.emits.push_back(std::move(e));
      const std::uint64_t t_c = *fit(op);
      commit(op, t_c);
      load_from = std::max(load_from, t_c + static_cast<std::uint64_t>(clw.d_func));
    }
    if (!staged)  // straight into the array: after the activations through the old weights
      load_from = std::max({load_from, pl.last_abc + 1, pl.install_end});
    // (a) the weight rows into the staging buffer (or the array): 16 streams, one step a cycle.
    const auto& ld = staged ? lw : ws;
    std::optional<std::pair<Op, std::uint64_t>> best;
    for (int base = 0; base + 16 <= chip_.streams.per_direction; base += 16) {
      Op op;
      const std::size_t piece = weight_piece(wp, ps.w_row, ps.w_tile);
      const bool west = q(wp.piece_slices[16 * piece]).position > pm;  // toward the plane
      std::vector<int> reads;
      const std::uint32_t addr0 = wp.piece_addr[piece];
      for (int j = 0; j < 16; ++j) {
        const arch::Queue& sq = q(wp.piece_slices[16 * piece + static_cast<std::size_t>(j)]);
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
      e.instr.arg[1] = static_cast<std::uint32_t>(ps.window ? ps.w_at : 0);
      if (staged) e.instr.arg[2] = static_cast<std::uint32_t>(buf);
      e.count = nlw;
      e.done_off = ld.d_func + sl_ - 1;
      e.expects = reads;
      op.emits.push_back(std::move(e));
      if (auto t = fit(op); t && (!best || *t < best->second)) best = {op, *t};
    }
    if (!best) no_fit(s.origin, "no 16 streams carry the weights to the plane");
    commit(best->first, best->second);
    const std::uint64_t t_lw = best->second;
    // The last load step's access; its rows are in one cycle later.
    const std::uint64_t last_load = t_lw + nlw - 1;

    // (b) install from the buffer: after the last load, after the activations through the old
    // weights and after the previous install. The array then takes install_cycles, during which
    // the buffer is read.
    std::uint64_t weights_in;  // the first cycle activations may enter
    if (staged) {
      Op inst;
      inst.lo = std::max({last_load + 1, pl.last_abc + 1, pl.install_end});
      use_queue(inst, pl.wt, -iw.d_skew, 1);
      Emit e;
      e.queue = pl.wt;
      e.off = -iw.d_skew;
      e.instr = instr("iw.buf");
      e.instr.arg[0] = static_cast<std::uint32_t>(buf);
      e.done_off = iw.d_func + sl_ - 1;
      inst.emits.push_back(std::move(e));
      const std::uint64_t t_iw = *fit(inst);
      commit(inst, t_iw);
      weights_in = t_iw + static_cast<std::uint64_t>(iw.d_func);
      pl.buf_free[buf] = weights_in;
    } else {
      weights_in = last_load + static_cast<std::uint64_t>(ws.d_func);
    }
    pl.install_end = weights_in;

    // (c) the activation rows, once the weights are in, one every iv cycles.
    best.reset();
    for (int xs = 0; xs < chip_.streams.per_direction; xs += 2 * xb) {
      Op op;
      op.lo = std::max(weights_in, pl.next_act);
      // toward the plane: a value from a slice east of the plane flows west
      const bool toward_west = q(P(ps.x).slices[0]).position > pm;
      const auto reads =
          read_rows(op, ps.x, ps.x_tile * logical_rows(ps.x) + ps.x_row, m, false, xs, pm, iv);
      use_queue(op, pl.abc, -abc.d_skew, m, iv);
      Emit e;
      e.queue = pl.abc;
      e.off = -abc.d_skew;
      e.instr = instr("abc");
      e.instr.mod[0] = mod_code(isa::ModKind::kDtype, type);
      e.instr.arg[0] = isa::stream_arg(xs, toward_west);
      e.instr.arg[1] = m;
      e.self_counted = true;
      e.count = m;
      e.done_off = static_cast<std::int64_t>((m - 1) * iv) + abc.d_func + sl_ - 1;
      e.expects = reads;
      op.emits.push_back(std::move(e));
      if (auto t = fit(op); t && (!best || *t < best->second)) best = {op, *t};
      if (best && best->second == op_lower_bound(best->first)) break;
    }
    if (!best) no_fit(s.origin, "no streams carry the activations to the plane");
    commit(best->first, best->second);
    const std::uint64_t t_abc = best->second;
    pl.last_abc = t_abc + (m - 1) * iv;
    pl.next_act = pl.last_abc + iv;
    mxm_busy_ += static_cast<std::uint64_t>(m) * iv;

    // (d) the products into the accumulators; the last pass sends the sums to MEM.
    using Mode = func::MxmPlane::AccMode;
    const Mode mode = s.passes.size() == 1          ? Mode::kOnly
                      : pass == 0                   ? Mode::kFirst
                      : pass + 1 == s.passes.size() ? Mode::kLast
                                                    : Mode::kNext;
    const bool emits = func::MxmPlane::emits(mode);
    const char* mode_name = mode == Mode::kOnly    ? "only"
                            : mode == Mode::kFirst ? "first"
                            : mode == Mode::kLast  ? "last"
                                                   : "next";
    best.reset();
    std::vector<Written> rows_written;
    const TensorPlace& dp = P(s.d);
    const bool out_west = q(dp.slices[0]).position < pm;  // away from the plane, toward MEM
    for (int rs = 0; rs < chip_.streams.per_direction; rs += 4) {
      Op op;
      op.lo = std::max(t_abc + static_cast<std::uint64_t>(abc.d_func), pl.acc_free);
      use_queue(op, pl.acc, -acc.d_skew, m, iv);
      Emit e;
      e.queue = pl.acc;
      e.off = -acc.d_skew;
      e.instr = instr("acc");
      e.instr.mod[0] = mod_code(isa::ModKind::kDtype, isa::to_string(rt));
      e.instr.mod[1] = mod_code(isa::ModKind::kAccMode, mode_name);
      e.instr.arg[0] = isa::stream_arg(emits ? rs : 0, emits && out_west);
      e.instr.arg[1] = m;
      e.self_counted = true;
      e.count = m;
      e.done_off = static_cast<std::int64_t>((m - 1) * iv) + acc.d_func + sl_ - 1;
      op.emits.push_back(std::move(e));
      std::vector<Written> rows;
      const std::int64_t drow = s.d_tile * logical_rows(s.d) + s.d_row;
      if (emits) write_rows(op, s.d, drow, m, rs, pm, acc.d_func, 0, &rows, iv);
      if (auto t = fit(op); t && (!best || *t < best->second)) {
        best = {op, *t};
        rows_written = rows;
      }
      if (!emits || (best && best->second == op_lower_bound(best->first))) break;
    }
    if (!best) no_fit(s.origin, "no 4 streams carry the plane's results");
    commit(best->first, best->second);
    pl.acc_free = best->second + (m - 1) * iv + 1;  // the ACC's last step is in T + (m-1) iv
    if (emits) written(s.d, best->second, s.d_tile * logical_rows(s.d) + s.d_row, rows_written);
  }
}

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
  const auto& rd = lat("read");
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
    for (std::size_t k = 0; k < f; k += kBatch) {
      const auto batch = static_cast<std::uint32_t>(std::min(kBatch, f - k));
      const std::uint32_t span = batch * steps;  // vectors of text the batch reads
      std::optional<std::pair<Op, std::uint64_t>> best;
      std::uint16_t best_slice = 0;
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
          op.lo = lo;
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
          for (std::uint32_t j = 0; j < batch; ++j) {
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
          if (auto t = fit(op); t && (!best || *t < best->second)) {
            best = {op, *t};
            best_slice = sl;
          }
          if (best && best->second == op_lower_bound(best->first)) break;
        }
      }
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

// A self-check (LPU_CHECK_MEM=1): replays every MEM read and write in time order and requires
// each read to find the tensor it is reading, not a later tenant of the same address.
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
      const std::uint32_t addr = b.instr.arg[0] + (b.separate ? 0 : k);
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
      const Block& b = blocks_[static_cast<std::size_t>(bi)];
      auto& e = entries_of[static_cast<std::size_t>(bi)];
      e.push_back(n++);
      if (b.count > 1 && !b.self_counted) {
        if (b.separate)
          for (std::uint32_t i = 1; i < b.count; ++i)
            e.push_back(n++);
        else
          e.push_back(n++);
      }
    }
    if (n > static_cast<std::uint32_t>(chip_.icu.queue_depth) && chip_.icu.preloaded)
      throw InputError(source_, "queue " + queues_[queue].name + " needs " + std::to_string(n) +
                                    " instructions; a preloaded queue holds at most "
                                    "chip.icu.queue_depth = " +
                                    std::to_string(chip_.icu.queue_depth));
  }
  for (int chip = 0; chip < chips_; ++chip) {
    isa::ChipProgram cp;
    cp.chip = static_cast<std::uint32_t>(chip);
    for (auto& [queue, list] : by_queue) {
      isa::QueueProgram qp;
      qp.queue = queue;
      for (int bi : list) {
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
                r.add =
                    static_cast<std::int32_t>(v0c - (pr.v0 + static_cast<std::int64_t>(i) * pr.vs));
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
        std::uint32_t entry_k = 0;
        auto add = [&](std::uint64_t cycle, const isa::Instr& in, std::uint64_t done) {
          isa::Entry e;
          e.cycle = cycle;
          e.instr = in;
          e.done = done;
          e.expect = b.expects.empty() ? std::vector<isa::InstrRef>{} : expect_of(entry_k);
          if (b.separate) ++entry_k;
          end = std::max(end, done + 1);
          qp.entries.push_back(std::move(e));
        };
        const isa::Instr in = patched(b, chip);
        add(b.dispatch, in, b.first_done);
        if (b.count > 1 && !b.self_counted) {
          if (b.separate) {
            for (std::uint32_t i = 1; i < b.count; ++i)
              add(b.dispatch + i * b.stride, in, b.first_done + i * b.stride);
          } else {
            isa::Instr r;
            r.opcode = rep;
            r.arg[0] = b.count - 1;
            r.arg[1] = b.stride;
            add(b.dispatch + b.stride, r,
                b.first_done + static_cast<std::uint64_t>(b.count - 1) * b.stride);
          }
        }
      }
      cp.queues.push_back(std::move(qp));
    }
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
    if (!cp.queues.empty()) prog.chips.push_back(std::move(cp));
  }
  prog.predicted_cycles = end;
  if (const char* c = std::getenv("LPU_CHECK_MEM"); c && *c == '1') check_memory();
  out.cycles = end;

  for (int chip = 0; chip < chips_; ++chip)
    for (std::size_t t = 0; t < k_.tensors.size(); ++t) {
      if (!used(static_cast<int>(t))) continue;  // e.g. an fp32 constant only split on the host
      const KTensor& kt =
          spmd_ ? (*spmd_)[static_cast<std::size_t>(chip)].tensors[t] : k_.tensors[t];
      const TensorPlace& tp = P(static_cast<int>(t));
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
      if (!tp.weights && !tp.t16 && !tp.chunked) {
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
            const auto [sl, addr] = at(static_cast<int>(t), vr, b);
            it.placements.push_back({sl, addr, 1});
          }
        where = tp.weights ? "weights, " + std::to_string(tp.piece_addr.size()) + " piece(s) of " +
                                 std::to_string(tp.block_addrs) +
                                 " vectors on 16 slices each, rows interleaved"
                           : "rows spread over 16 slices from " + queues_[tp.slices[0]].name + ":" +
                                 std::to_string(tp.addr);
      }
      if (chip == 0) out.placements.push_back({kt.name, where});
      if (kt.role == KTensor::Role::kConstant) {
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
              im.bytes.assign(
                  static_cast<std::size_t>(tp.vectors) * static_cast<std::size_t>(lanes_), 0);
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
              im.bytes.assign(
                  static_cast<std::size_t>(tp.block_addrs) * static_cast<std::size_t>(lanes_), 0);
            }
          for (std::int64_t r = 0; r < kt.rows(); ++r)
            for (int b = 0; b < bytes; ++b)
              for (std::int64_t c = 0; c < cols; ++c) {
                const std::size_t pc = weight_piece(tp, r, c / lanes_);
                const auto [sl, addr] = weight_at(tp, bytes, r, c / lanes_, b);
                images[{sl, tp.piece_addr[pc]}]
                    .bytes[static_cast<std::size_t>(addr - tp.piece_addr[pc]) *
                               static_cast<std::size_t>(lanes_) +
                           static_cast<std::size_t>(c % lanes_)] =
                    kt.data[static_cast<std::size_t>((r * cols + c) * bytes + b)];
              }
          for (auto& [key, im] : images)
            prog.images.push_back(std::move(im));
        }
      }
      prog.tensors.push_back(std::move(it));
    }
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
  if (std::getenv("LPU_DEBUG_INSTR")) {  // MEM instructions per tensor, the most first
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
  try {
    isa::validate(prog, where);
  } catch (const InputError& e) {  // the scheduler's own bug, not the user's
    throw std::logic_error(std::string("scheduler emitted an invalid program: ") + e.what());
  }
  return out;
}

}  // namespace

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

Schedule schedule(const Kernels& k, const arch::Arch& arch, const std::string& source,
                  bool reuse_memory) {
  if (k.chips > 1)
    throw std::logic_error("scheduler: kernels for " + std::to_string(k.chips) +
                           " chips go to schedule_spmd");
  Scheduler s(k, arch, source);
  s.set_reuse(reuse_memory);
  return s.run();
}

Schedule schedule_spmd(const std::vector<Kernels>& chips, const arch::Arch& arch,
                       const std::string& source) {
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
  Scheduler s(chips[0], arch, source);
  s.set_spmd(&chips, send, recv);
  return s.run();
}

}  // namespace lpu::compiler
