// The scheduler's one class (compiler/scheduler.h is the interface): kernel steps to a timed
// program. Its work is spread over the files of this folder:
//   scheduler.cpp   the driver: steps in order, memory reuse, the public entry points
//   placement.cpp   MEM allocation: slices, chunks, weight pieces, replicas
//   fitting.cpp     the reservation tables (queues, ports, banks, streams) and fitting an
//                   operation at its earliest cycle; MEM reads and writes of row runs
//   vxm.cpp         VXM steps, their parts and chains
//   sxm.cpp         SXM steps (shifts, selects, transposes)
//   mxm.cpp         MXM products: weight loads, installs, activations, accumulation
//   transfers.cpp   exchanges between chips and pipeline sends and receives
//   ifetch.cpp      instruction fetch into the queues
//   emit.cpp        the program: instructions, repeats, expectations; the MEM self-check
#pragma once

#include "compiler/scheduler.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "arch/queues.h"
#include "common/diagnostics.h"
#include "func/c2c_link.h"
#include "func/mxm.h"

namespace lpu::compiler::scheduling {

using isa::DType;

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
  // For a use of `times` accesses of len cycles, `every` cycles apart from s: the largest shift
  // that moves an access out of a busy interval it falls in (each interval's earliest access
  // needs the most), if any.
  std::optional<std::uint64_t> conflict_each(std::uint64_t s, std::uint64_t len,
                                             std::uint64_t every, std::uint64_t times) const {
    const std::uint64_t end = s + (times - 1) * every + len;
    auto it = std::upper_bound(v_.begin(), v_.end(), s,
                               [](std::uint64_t x, const Span& b) { return x < b.e; });
    std::optional<std::uint64_t> out;
    for (; it != v_.end() && it->s < end; ++it) {
      // the first access ending past the interval's start
      const std::uint64_t k = it->s >= s + len ? (it->s - s - len) / every + 1 : 0;
      const std::uint64_t c = s + k * every;
      if (k < times && c < it->e) out = std::max(out.value_or(0), it->e - c);
    }
    return out;
  }
  void add(std::uint64_t s, std::uint64_t len) {
    auto it = std::upper_bound(v_.begin(), v_.end(), s,
                               [](std::uint64_t x, const Span& b) { return x < b.s; });
    v_.insert(it, Span{s, s + len});
  }
  // `times` intervals of len cycles, `every` cycles apart from s, merged in at once.
  void add_each(std::uint64_t s, std::uint64_t len, std::uint64_t every, std::uint64_t times) {
    std::vector<Span> more;
    more.reserve(times);
    for (std::uint64_t k = 0; k < times; ++k)
      more.push_back({s + k * every, s + k * every + len});
    std::vector<Span> out;
    out.reserve(v_.size() + more.size());
    std::merge(v_.begin(), v_.end(), more.begin(), more.end(), std::back_inserter(out),
               [](const Span& a, const Span& b) { return a.s < b.s; });
    v_ = std::move(out);
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
  // KTensor::interleave: the rows (of each chunk) dealt over il groups of slices (one per byte
  // plane each, group g = slices[g * bytes ..]): row r in group r mod il at address r / il.
  int il = 1;
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
  // Weights the host loads, when MEM has room: another copy of every piece on 16 other slices
  // (slices and addresses as above); a load reads whichever copy is free sooner.
  struct PieceCopy {
    std::vector<std::uint16_t> slices;
    std::vector<std::uint32_t> addr;
  };
  std::vector<PieceCopy> piece_copies;
  // Readiness: a consumer streaming row i at cycle c + i needs c >= ready_stream; one reading
  // every row in any order needs its first read >= ready_all. Chunked: per chunk, the cycle all
  // its rows are written (a reader of some chunks waits for those only).
  std::uint64_t ready_stream = 0, ready_all = 0;
  std::vector<std::uint64_t> chunk_ready;
  // And row by row: every write so far (when `recorded`: none set readiness otherwise), rows
  // lo, lo + step, .. hi, row r readable from min(c + r, done). A reader needs only the rows it
  // reads (Scheduler::recorded_need).
  struct Rec {
    std::int64_t lo, hi, step, c, done;
  };
  std::vector<Rec> recs;
  bool recorded = true;
  // recorded_need's answers since the last record, by (r0, rs, i0, i1, a, cs).
  mutable std::map<std::array<std::int64_t, 6>, std::int64_t> need_memo;
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
  // Queues, ports and banks: `times` such uses, `every` cycles apart (separate instructions).
  std::uint32_t every = 0, times = 1;
  // From the first cycle to the end of the last use.
  std::uint64_t span() const {
    return times > 1 ? static_cast<std::uint64_t>(times - 1) * every + len : len;
  }
};

// What one write of an operation does to a tensor's rows: vector rows lo..hi (absolute), the
// first written by T + first + (its index from row0), the last access in T + last.
struct Written {
  std::int64_t first = 0, last = 0;
  std::int64_t lo = 0, hi = 0;
  std::int64_t step = 1;  // the rows written are lo, lo + step, .. hi
};

// One instruction (and its repetitions) of an operation.
struct Emit {
  std::uint16_t queue;
  std::int64_t off;  // dispatch = T + off
  isa::Instr instr;
  std::uint32_t count = 1;   // repetitions (or steps of abc/acc, counted in the instruction)
  std::uint32_t stride = 1;  // cycles between repetitions
  bool separate = false;     // count separate instructions instead of a repeat
  // Separate MEM instructions: arg 0 grows by this from one to the next.
  std::uint32_t addr_step = 0;
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
  std::uint32_t addr_step = 0;  // as Emit
  std::uint64_t first_done = 0;
  std::vector<int> expects;     // global block ids
  std::int64_t v0 = 0, vs = 1;  // as Emit
  int tensor = -1;
  int spmd_sign = 0, spmd_round = 0;  // as Emit
  std::uint32_t spmd_unit = 0;
};

std::uint8_t mod_code(isa::ModKind k, const std::string& name);
const char* mnemonic(func::VxmOp op);
// ALUs for a chain of steps (large_op[j]: step j needs a large ALU) from ALU a0, each sharing a
// stream group with the previous step's; empty when there are not enough. In as few rows of
// ALUs as it can, large ones only where a step needs one or no small one is left, so that two
// chains fit the VXM at once (tsp-v1: an int8 epilogue of eight steps, three of them casts, in
// rows 0 and 1 from ALU 0, in rows 2 and 3 from ALU 8).
std::vector<int> compact_alus(const arch::Chip& chip, const std::vector<bool>& large_op, int a0);
// The earliest T at which reading rows r0 + i rs in cycles T + a + i cs (i0 <= i <= i1) finds
// each of them written, by tp's write records: per record overlapping them, the later of its
// rows' linear bound and its end, whichever is sooner (a bound, so a sufficient condition);
// none when some write was not recorded. Answers are memoized until the next record.
std::optional<std::int64_t> recorded_need(const TensorPlace& tp, std::int64_t r0, std::int64_t rs,
                                          std::int64_t i0, std::int64_t i1, std::int64_t a,
                                          std::int64_t cs);
isa::Instr instr(const char* mn);

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

  void set_options(const ScheduleOptions& o) {
    opt_ = o;
    reuse_ = o.reuse_memory;
  }
  bool logs(const char* what) const { return opt_.log.count(what) > 0; }
  // Whether host weights were given copies (place_inputs).
  bool copies_weights() const { return copy_weights_; }

  // A program for `chips` chips in step (one Kernels each, the same steps): in round k of an
  // exchange every chip sends on queue send[k] to chip c + k and receives on recv[k] from c - k.
  void set_spmd(const std::vector<Kernels>* all, std::vector<std::uint16_t> send,
                std::vector<std::uint16_t> recv);

  // run()'s parts, in order. Every MXM weight tensor's layout and block rows (and that nothing
  // else reads it); window passes that can be loaded.
  void check_weights();
  // Which tensors keep off each other's slices (co_, co_write_), which are chunked by default
  // (streamed_) and which never (no_chunk_).
  void placement_rules();
  // Inputs and constants placed before any step (their images load with the program), copies
  // of the constants long VXM steps broadcast.
  void place_inputs();
  // A chain reads all its operands in overlapping cycles: they keep apart like one step's.
  void keep_chain_operands_apart();
  // Per step: the tensors nothing reads after it (their MEM is reused), unless kept.
  std::vector<std::vector<int>> release_plan() const;
  // Step i (or, for a chain's later steps, its timing entry), then its releases.
  void schedule_step(std::size_t i, const std::vector<int>& release_now);
  Schedule run();

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
  bool used(int t) const;

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
  [[noreturn]] void no_fit(const std::string& origin, const std::string& what) const;
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
  void place(int t, std::vector<std::uint16_t> avoid = {}, int side = -1);
  // MXM weights piece by piece, each on the 16 emptiest slices (every slice lies on the same
  // side of an MXM plane, so any 16 can feed one load). Weights loaded by the host may use the
  // whole chip; weights a unit computes arrive on one stream direction, so they stay in one
  // hemisphere.
  void place_weights(int t, const std::vector<std::uint16_t>& avoid);
  // A copy of every piece of host weights t, each on 16 slices other than its own; none
  // (nothing taken) when one does not fit.
  void copy_weights(int t);
  // Whether constant weights get copies (ScheduleOptions::weight_copy_share), and the bytes of
  // copies still allowed.
  bool copy_weights_ = false;
  double copy_budget_ = 0;

  // Places tensor t's `need` vector rows in chunks of `per` rows, each on the least-used slices
  // (one per byte plane) of one hemisphere; false (nothing taken) when they do not fit.
  // `chunk_avoid(first, rows)`: more slices a chunk of those rows keeps off.
  using ChunkAvoid = std::function<std::vector<std::uint16_t>(std::int64_t, std::int64_t)>;
  bool place_chunks(int t, TensorPlace& p, std::uint64_t need, std::uint64_t per, int width,
                    const std::vector<std::uint16_t>& avoid, int side,
                    const ChunkAvoid& chunk_avoid = nullptr);
  // "west X MiB, east Y MiB": the live MEM per hemisphere (for messages).
  std::string live_mib() const;

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
      int prefer_bank = -1) const;
  // The bank (halves mapping) with the fewest live vectors in these slices, so that tensors
  // spread over the banks and a read and a write of one slice can share a cycle; -1 when banks
  // do not split the addresses into ranges.
  int quiet_bank(const std::vector<std::uint16_t>& slices) const;
  void allocate(const std::vector<std::uint16_t>& slices, std::uint64_t base, std::uint64_t need);
  // Frees a tensor's storage (contiguous or in chunks) once its last reader is scheduled.
  void release(int t);

  // Weights: the piece holding row r, column tile tn.
  std::size_t weight_piece(const TensorPlace& p, std::int64_t r, std::int64_t tn) const;
  // Weights: the slice and address of byte plane b of row r, column tile tn.
  std::pair<std::uint16_t, std::uint32_t> weight_at(const TensorPlace& p, int bytes, std::int64_t r,
                                                    std::int64_t tn, int b) const;

  // Where byte plane b of vector row vr of tensor t lives.
  std::pair<std::uint16_t, std::uint32_t> at(int t, std::int64_t vr, int b) const;

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
  // With rs > 1 the rows are row0, row0 + rs, ... (first_i and last_i still count them).
  std::vector<std::vector<Run>> plane_runs(int t, std::int64_t row0, std::uint32_t count, int bytes,
                                           std::int64_t rs = 1) const;

  std::vector<Run> runs(int t, std::int64_t row0, std::uint32_t count, int b,
                        std::int64_t rs = 1) const;

  // ---------------------------------------------------------------- fitting

  // The earliest T >= op.lo at which every use fits, or nullopt if the op conflicts with itself
  // or fits no earlier than `before` (a candidate already found).
  std::optional<std::uint64_t> fit(const Op& op, std::uint64_t before = ~0ull) const;

  // Reserves everything and records the instructions; returns the first block's id.
  int commit(const Op& op, std::uint64_t t);

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
               std::uint32_t stride, std::uint64_t lo, std::uint64_t hi);
  // A run of `count` MEM accesses of one slice at addresses addr, addr + 1, .., `stride` cycles
  // apart from T + access (dispatched d_skew earlier, from T + d): its queue, port and banks.
  // Back to back they are one instruction with a repeat, which holds the queue to its last
  // access; further apart they are separate instructions (Emit::separate, addr_step 1), each
  // holding queue, port and bank in its own cycle only, so that other instructions of the
  // slice fit between them (an fp16 product's activations come one every 4 cycles); not with
  // chip.icu.preloaded queues, which must hold every instruction. Returns whether they are
  // separate.
  bool use_run(Op& op, std::uint16_t slice, bool write, std::int64_t d, std::int64_t access,
               std::uint32_t count, std::uint32_t stride, std::uint32_t addr);
  void use_stream(Op& op, int stream, bool west, std::int64_t key_off, std::uint64_t len, int pa,
                  int pb) {
    op.uses.push_back({Use::Kind::kStream, stream_id(stream, west), key_off, len, std::min(pa, pb),
                       std::max(pa, pb)});
  }

  // Stream uses of one op from index `first` on that name the same stream slots (several writes
  // taking values off one stream) become one use spanning all of them.
  static void merge_stream_uses(Op& op, std::size_t first);

  // Reads vector rows row0.. of contiguous tensor t (every byte plane) so that the i-th reaches
  // position `to` in cycle T + i on streams first..; count of them. A broadcast operand (one
  // logical row) is read again for every row of a result of `count` vector rows: with T tiles
  // the result's vector row i needs its tile i / (count / T). Returns the emits' indices.
  // With cs > 1 the rows come cs cycles apart (row i in T + i cs; not for broadcasts).
  // With rs > 1 the rows are row0, row0 + rs, ... (a strided pass).
  std::vector<int> read_rows(Op& op, int t, std::int64_t row0, std::uint32_t count, bool broadcast,
                             int first, int to, std::uint32_t cs = 1, std::int64_t rs = 1);

  // Broadcast operand t (L logical rows read cyclically, a block per column tile) for result
  // vector rows r0 .. r0 + count - 1 of a result of R logical rows, from copy `copy`: result
  // row i takes tile i / R, row (i mod R) mod L, in cycle T + i - r0 at position `to`. Reads of
  // consecutive addresses become one read with a repeat. Returns the emits' indices.
  // (rs: result rows r0, r0 + rs, ...)
  // Whether constant t's rows are all alike (memoized).
  bool rows_alike(int t) const;
  mutable std::map<int, int> rows_alike_;
  // plane_runs' answers by (tensor, row0, count, bytes, rs): placements never move.
  mutable std::map<std::array<std::int64_t, 5>, std::vector<std::vector<Run>>> runs_memo_;
  std::vector<int> read_broadcast(Op& op, int t, int copy, std::int64_t r0, std::uint32_t count,
                                  std::int64_t R, int first, int to, std::int64_t rs = 1);

  // Writes values leaving position `from` in cycle T + at + i cs (i < count, on streams first..;
  // the values in between pass by) as rows row0.. of tensor t; each write expects emit
  // `producer`, whose vector value0 + i value_stride row row0 + i is. access_of_row0 gets, per
  // write, its lag (row row0 + i is written by T + lag + i) and the offset of its last access
  // (see written()).
  void write_rows(Op& op, int t, std::int64_t row0, std::uint32_t count, int first, int from,
                  std::int64_t at, int producer, std::vector<Written>* access_of_row0,
                  std::uint32_t cs = 1, std::int64_t value0 = 0, std::int64_t value_stride = 1,
                  std::int64_t rs = 1);

  // When vector rows row0 .. row0 + count - 1 of a tensor are all written: its chunks' readiness
  // for a chunked tensor, else the whole tensor's.
  static std::uint64_t ready_rows(const TensorPlace& tp, std::int64_t row0, std::int64_t count);

  // After commit: when tensor t's rows row0.. (written at T + access + i) can be read.
  void written(int t, std::uint64_t T, std::int64_t row0, const std::vector<Written>& access);

  // ---------------------------------------------------------------- VXM steps

  // A part of a split step: its rows first .. first + rows - 1 (of the whole tensors, or from the
  // start of each operand's and the result's row range), broadcast operands read from copy
  // `copy` (0: the tensor itself).
  struct Part {
    std::int64_t first = 0, rows = 0;
    int copy = 0;
    std::int64_t stride = 1;  // the part's rows are first, first + stride, ...
  };

  // Step s's run cut at its result's chunks (rows from the start of the run); part c reads
  // broadcast operands from copy c mod copies. With `classes` (tensors whose rows are dealt
  // over il groups of slices, KTensor::interleave), each chunk is cut further into its rows of
  // each group, every il-th: each part then reads and writes one run per tensor.
  std::vector<Part> chunk_parts(const KStep& s, int copies, bool classes = false) const;
  // Whether the steps (a chain, or one) read and write only tensors interleaved alike (their
  // result's il > 1), so that their parts may take every il-th row.
  bool classed(const std::vector<const KStep*>& c) const;

  // The first of the streams `cand` whose `group` streams from it are not among `used` (taking
  // them), or -1.
  static int first_free(const std::vector<int>& cand, int group,
                        std::vector<std::pair<int, int>>& used);

  // ---------------------------------------------------------------- chains of VXM steps

  // Consecutive VXM steps (whole tensors, or row ranges of tensors of one column tile), each
  // reading the rows the previous one writes, run as one operation: a step's ALU reads the value
  // the previous ALU writes onto a stream in the cycle it is written (the VXM is one stream
  // position), so the value never goes through MEM unless something else reads it. chain_len_[i]:
  // the steps of the chain starting at step i (1: none), 0 for a chain's later steps.
  static constexpr std::size_t kMaxChain = 8;
  void find_chains();
  // A step a chain may hold: a VXM step over a whole tensor, or a row range of one column tile.
  bool chainable(const KStep& st) const;

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
  static int merge_shifted(Op& into, Op&& sub, std::int64_t delta);

  // Places tensor d off the slices of the (contiguous) operands `ins` where there is room: of
  // all of them, else of those but constants (whose copies may cover much of a hemisphere).
  void place_off(int d, const std::vector<int>& ins);

  // The chain of steps first .. first + chain_len_[first] - 1, part by part (the last result's
  // chunks, as vxm_step cuts one step).
  void vxm_chain(std::size_t first);

  struct ChainWrite {  // a tensor a chain writes: from row row0, as write_rows reported
    int t = -1;
    std::int64_t row0 = 0;
    std::vector<Written> acc;
  };

  // A chain part's best operation: its earliest cycle and the tensors it writes.
  struct ChainFit {
    Op op;
    std::uint64_t t = 0;
    std::vector<ChainWrite> writes;
  };
  // An MXM plane's sums streamed straight into a chain's first step: tensor t's rows arrive at
  // the VXM in T + i from emit `producer` (the ACC, already in the operation) at position
  // `from`; chain_op picks the stream (a group the first ALU reads) and claims its path.
  struct SumsIn {
    int t = -1, producer = 0, from = 0;
    bool west = false;
    int stream = -1;  // chain_op's choice
  };
  // The earliest of chain_op's operations for part `part` over the ALU choices (from every
  // first ALU, in both of chain_alus' orders) and stream rotations; none when nothing fits.
  // With `sums`, every candidate starts from `base` (the ACC) and takes the sums from it.
  std::optional<ChainFit> best_chain(const std::vector<const KStep*>& c, const Part& part,
                                     const Op* base = nullptr, SumsIn* sums = nullptr);
  // Parts this short are not cut further to fit sooner (each costs its instructions).
  static constexpr std::int64_t kMinChainRows = 32;
  // One part of a chain (rows part.first .. of each step's run); when no ALUs and streams fit
  // it, its two halves as chains of their own (the value between them goes through MEM), and at
  // last step by step. A part that would wait for its resources runs as two halves of its rows
  // when the first half fits sooner. `known`: best_chain(c, part), when already found.
  void chain_part(const std::vector<const KStep*>& c, const Part& part,
                  std::optional<ChainFit> known = std::nullopt);
  // chain_part's ALUs for chain c from ALU a0, each sharing a stream group with the previous
  // one; empty when there are not enough. Compact: in as few rows of ALUs as it can, large ones
  // only where the op needs one (two such chains can run at once); otherwise greedy_alus.
  std::vector<int> chain_alus(const std::vector<const KStep*>& c, int a0, bool compact) const;
  // ALUs in turn from a0 (large ones where the op needs one).
  std::vector<int> greedy_alus(const std::vector<const KStep*>& c, int a0) const;
  // The operation running part `part` of chain c on ALUs alu, streams taken from a rotation
  // rot of their candidates (rot 4 .. 7 also balance the directions of the values passed
  // along); false when the streams do not suffice.
  bool chain_op(const std::vector<const KStep*>& c, const Part& part, const std::vector<int>& alu,
                int rot, Op& op, std::vector<ChainWrite>& writes, SumsIn* sums = nullptr);

  // ---------------------------------------------------------------- sums into chains

  // A chain whose first step reads an int8 product's sums and nothing else reads them takes
  // them from the planes: each product's last pass is scheduled together with the chain's part
  // for its rows (the ACC's values go on a stream to the VXM, not to MEM), so the sums are
  // never written and read back and the epilogue runs as the products come out. sum_chain_:
  // per tensor, the first step of the chain that takes it so, or -1. Rows the products do not
  // write (a padding row another step writes) run through the chain at its own step.
  void find_sum_chains(const std::vector<int>& readers, const std::vector<bool>& output);
  std::vector<std::ptrdiff_t> sum_chain_;
  struct SumChain {
    bool prepared = false;
    int copies = 1, next_copy = 0;
    std::vector<bool> done;  // per vector row of the sums: run through the chain already
  };
  std::map<std::size_t, SumChain> sum_chains_;
  std::vector<const KStep*> chain_steps(std::size_t first) const;
  // Places chain `first`'s results (once) and returns its state.
  SumChain& prepare_chain(std::size_t first);
  // An ACC's rows: the pass's ABC access, the products' interval, whether it sends the sums,
  // whether its rows may go in several ACCs, and its instruction (but count and stream).
  struct AccRows {
    std::uint64_t t_abc = 0;
    std::uint32_t iv = 1;
    bool emits = false, pieces = false;
    Emit emit;
  };
  // Rows i0 .. i0 + n - 1 of the pass: to MEM (or, for a pass that does not send, into the
  // accumulators).
  void acc_to_mem(const KStep& s, Plane& pl, const AccRows& a, std::uint32_t i0, std::uint32_t n);
  // Cycles from a plane's ACC access to its sums' arrival at the VXM; the chain's run row of
  // the first row product s writes.
  std::int64_t acc_lead(const Plane& pl) const {
    return lat("acc").d_func + dist(pl.position, vxm_pos_);
  }
  std::int64_t sums_run_row(const KStep& s, const KStep& first) const {
    return s.d_tile * logical_rows(s.d) + s.d_row - operand_row(first, root(s.d));
  }
  // Its ACC and the chain's part for those rows as one operation, at its earliest.
  std::optional<ChainFit> acc_chain(const KStep& s, const Plane& pl, const AccRows& a,
                                    std::uint32_t i0, std::uint32_t n);
  // Commits acc_chain; when nothing fits (the rows cross chunks whose slices the chain's
  // tensors share), halves (with a.pieces), each to MEM when it fits no chain. False (nothing
  // committed) when the rows go to MEM as a whole. (Halving when the first half would fit
  // sooner, as chain_part does, cost ResNet-50 int8 0.9%.)
  bool sums_to_chain(const KStep& s, Plane& pl, const AccRows& a, std::uint32_t i0,
                     std::uint32_t n);

  // The ALU instruction of VXM step s with stream arguments `args` (operands, then the result).
  isa::Instr alu_instr(const KStep& s, const std::vector<std::uint32_t>& args) const;

  // Copies a VXM step split over ALUs may read a broadcast constant from (TensorPlace::replicas).
  static constexpr int kReplicas = 4;

  // A long step over a whole tensor, or over a long row range of a tensor of one column tile
  // (not dealt): its rows can be cut into parts that run on several ALUs, chunk by chunk.
  bool splittable(const KStep& s) const;
  // The result rows of step s (all of d's, or its row range).
  std::int64_t step_rows(const KStep& s) const { return s.rows ? s.rows : logical_rows(s.d); }
  bool broadcast_of(const KStep& s, int t) const { return logical_rows(t) < step_rows(s); }

  // kReplicas - 1 more copies of constant t, each on slices of its own.
  void replicate(int t);

  // The chunks of tensor t, or nothing when it is not chunked.
  std::vector<std::pair<std::int64_t, std::int64_t>> chunk_bounds(int t) const;

  // Streams an ALU may use: the SG4 groups of its row (chip.vxm.row_stream_groups; brief A3).
  // With rot (0 .. 3), the list starts rot quarters in (candidates spread over the groups).
  std::vector<int> alu_streams(int alu, int group, int rot = 0) const;

  // A VXM step; one writing a row range of a tensor whose rows are cut into column tiles runs
  // once per tile (each tile's rows are consecutive vector rows, isa/layout.h).
  // Every slice tensor t occupies (all chunks of a chunked one).
  std::vector<std::uint16_t> slices_of(int t) const;

  void vxm_step(const KStep& s);

  // Column tile `tile` of a step writing a row range (each tile's rows are consecutive vector
  // rows); the whole tensor when the step has no row range; or one part of a split step.
  void vxm_tile(const KStep& s, std::int64_t tile, std::optional<Part> part = std::nullopt);

  // ---------------------------------------------------------------- exchanges between chips

  // Every vector (row, column tile, byte plane) of a slot moves on its own: in round k
  // (1 .. chips - 1) it is read onto a stream that passes the send port in the send's access
  // cycle, crosses the link, and the receive at the far end (the same cycle on every chip, as
  // every chip runs this schedule) puts it on a stream to d's slice; round 0 copies the chip's
  // own slot. Each transfer is fitted like any other operation; the link's transmit side is
  // reserved for a frame time as the send queue's port.
  void exchange_step(const KStep& s);

  // ---------------------------------------------------------------- pipeline transfers

  const arch::Queue& port_queue(const KStep& s) const;

  // Each vector of a, in order: read onto a stream that passes the port in the send's access
  // cycle T; the link is then busy for a frame time.
  void send_step(const KStep& s);

  // Vector j of d arrives in cycle arrivals[j]: the receive runs then (the far chip sent it; it
  // cannot wait), and a write takes it into d.
  void recv_step(const KStep& s);

  // --- single vectors between MEM and the C2C ports (exchanges and pipeline transfers)

  // A read of one vector of tensor t (slice, addr) onto stream st, timed so that the value
  // passes position `to` in T + at. `claim`: reserve its stream path (false when a write of the
  // same value claims the whole path). Returns the emit's index.
  int read_vector(Op& op, int t, std::uint16_t slice, std::uint32_t addr, int st, int to,
                  std::int64_t at_off, bool claim = true);

  // The write into tensor t (slice, addr) of the value on stream st passing position `from` in
  // T + at, made by emit `producer`. Returns its access offset.
  std::int64_t write_vector(Op& op, int t, std::uint16_t slice, std::uint32_t addr, int st,
                            int from, std::int64_t at_off, int producer);

  // A send on port tx whose access (the frame's departure) is T + at, reading the stream emit
  // `producer` writes; the link's transmit side is busy for a frame time.
  void send_vector(Op& op, const arch::Queue& tx, std::int64_t at_off, int producer);

  // A receive on port rx whose access (the frame's arrival) is T + at, putting the vector on
  // stream `stream`. Returns the emit's index.
  int recv_vector(Op& op, const arch::Queue& rx, std::int64_t at_off, std::uint32_t stream);

  // Tensor t's rows are all written by cycle `last`: readable from the next.
  void written_at(int t, std::uint64_t last);

  // ---------------------------------------------------------------- SXM steps

  void sxm_step(const KStep& s);

  // The SXM transposer over every block of 16 rows, one byte plane at a time: 16 reads (one per
  // slot slice, a repeat over the blocks), the transpose, 16 writes.
  void transpose_step(const KStep& s);

  // ---------------------------------------------------------------- MXM steps
  void matmul_step(const KStep& s);
  // Its rows in range; its result placed unless the planes send it straight into a chain.
  void check_product(const KStep& s);
  // Whether products a and b stream the same activations, pass by pass (b another column tile
  // of a's rows): then one read feeds two planes of one side.
  bool shares_activations(const KStep& a, const KStep& b) const;
  // Per step: the later product scheduled with it (matmul_pair), kPairedEarlier for that one,
  // else -1. Partners are looked for among the next kPairWindow steps, all products of the
  // same result.
  void pair_products();
  static constexpr std::ptrdiff_t kPairedEarlier = -2;
  static constexpr std::size_t kPairWindow = 16;
  std::vector<std::ptrdiff_t> partner_of_;
  // Products a and b on the two planes of a side: each pass's activations read once, taken by
  // the plane nearer the VXM and, as they flow on, by the other.
  void matmul_pair(const KStep& a, const KStep& b);
  // matmul_step's parts. The cycle plane p can take the next pass's weights; the plane free
  // soonest.
  static std::uint64_t plane_ready(const Plane& p);
  std::size_t free_plane() const;
  // A pass's weights into the plane: the staging buffer cleared when that helps (or for a
  // window), loaded, installed. Returns the first cycle activations may enter.
  std::uint64_t load_weights(const KStep& s, const KPass& ps, Plane& pl);
  // The weight rows into buffer buf (or straight into the array): 16 streams, one load step a
  // cycle for nlw cycles, not before load_from. Returns the last load step's access + 1.
  std::uint64_t load_rows(const KStep& s, const KPass& ps, const Plane& pl, std::size_t buf,
                          std::uint32_t nlw, std::uint64_t load_from);
  // Load steps k0 .. k0 + n - 1 into a staging buffer: as one load, or, when that waits and
  // the first half of them fits sooner, as halves (down to kMinLoadSteps), each its own `lw`
  // at its rows. Returns the last access + 1.
  static constexpr std::uint32_t kMinLoadSteps = 4;
  std::uint64_t load_split(const KStep& s, const KPass& ps, const Plane& pl, std::size_t buf,
                           std::uint32_t k0, std::uint32_t n, std::uint64_t load_from);
  // The earliest load of steps k0 .. k0 + nlw - 1 (not committed), and its access cycle.
  std::pair<Op, std::uint64_t> fit_load(const KStep& s, const KPass& ps, const Plane& pl,
                                        std::size_t buf, std::uint32_t k0, std::uint32_t nlw,
                                        std::uint64_t load_from);
  // The pass's activation rows through the installed weights (in[k]: plane k's first cycle),
  // one every fp16 interval for fp16: one read, taken by planes[0] and, as the values flow on
  // along their stream, by the others (further from the MEM), each its distance later.
  // Returns each plane's ABC access cycle.
  std::vector<std::uint64_t> stream_activations(const KStep& s, const KPass& ps,
                                                const std::vector<Plane*>& planes,
                                                const std::vector<std::uint64_t>& in);
  // The products into the accumulators; the step's last pass sends the sums to MEM.
  void accumulate(const KStep& s, std::size_t pass, Plane& pl, std::uint64_t t_abc);

  Schedule emit();
  // emit()'s parts. The instructions of a queue's blocks in issue order:
  // (block, k), k = 0 its first instruction, k > 0 its repeat or its k-th separate instruction
  // (which may fall between another block's).
  using IssueOrder = std::vector<std::pair<int, std::uint32_t>>;
  IssueOrder issue_order(std::vector<int> list) const;
  // Each block's entry numbers in its queue (a block is 1, 2 (with a repeat) or count
  // entries); throws when a preloaded queue overflows.
  std::vector<std::vector<std::uint32_t>> number_entries(
      const std::map<std::uint16_t, IssueOrder>& orders) const;
  // One queue's entries on chip `chip`, with their expectations; end: the last completion + 1.
  isa::QueueProgram queue_program(int chip, std::uint16_t queue, const IssueOrder& order,
                                  const std::vector<std::vector<std::uint32_t>>& entries_of,
                                  std::uint64_t& end) const;
  // The instruction text the ifetches stream: fetch k of a queue carries its entries
  // D + k * per_fetch onward, as 16-byte slots.
  void fetch_images(int chip, const isa::ChipProgram& cp, isa::Program& prog) const;
  // Tensor t of chip `chip`: its placement (and images, for a constant) in the program.
  void tensor_record(int chip, int t, Schedule& out) const;
  // A constant's images: its range and copies, or its weight pieces.
  void constant_images(int chip, const KTensor& kt, const TensorPlace& tp,
                       isa::Program& prog) const;
  // The tensors with the most MEM instructions (--scheduler-log instr).
  void log_instructions() const;

  // Block b's instruction on chip `chip` (Emit::spmd_*: blocks_ hold chip 0's).
  isa::Instr patched(const Block& b, int chip) const;
  void check_memory() const;
  void plan_ifetch();
  // plan_ifetch's batch of bsize ifetches into queue qid: the earliest of its text slices and
  // streams, from cycle `from` and before `before`; none when nothing fits by then.
  struct FetchFit {
    Op op;
    std::uint64_t t = 0;
    std::uint16_t slice = 0;
  };
  std::optional<FetchFit> fetch_batch(std::uint16_t qid, std::uint32_t bsize, std::uint64_t from,
                                      std::uint64_t before, const std::vector<std::uint16_t>& text);
  // The dispatch cycles of a queue's entries, in order (as emit() lays them out).
  std::vector<std::uint64_t> entry_cycles(std::uint16_t queue) const;
  struct Fetch {
    std::uint16_t queue, slice;
    std::uint32_t addr;
    std::size_t k;  // the k-th fetch of its queue (0-based): entries D + 40 k ..
  };
  std::vector<Fetch> fetches_;
  std::vector<std::uint32_t> text_next_;  // per instruction slice: next free address

  std::uint64_t op_lower_bound(const Op& op) const;

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
  std::vector<Busy>& busy_of(Use::Kind k);
  const std::vector<Busy>& busy_of(Use::Kind k) const {
    return const_cast<Scheduler*>(this)->busy_of(k);
  }
  std::vector<std::vector<Alloc>> alloc_;
  std::vector<std::uint64_t> live_, high_;  // per slice: live vectors, highest address used
  bool reuse_ = true;
  ScheduleOptions opt_;
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

}  // namespace lpu::compiler::scheduling
