// MEM allocation: tensors on slices, in chunks, weight pieces and replicas.
#include "compiler/schedule/scheduling.h"

#include <tuple>

namespace lpu::compiler::scheduling {

void Scheduler::place_weights(int t, const std::vector<std::uint16_t>& avoid) {
  const KTensor& kt = k_.tensors[static_cast<std::size_t>(t)];
  TensorPlace& p = P(t);
  const int bytes = isa::dtype_bytes(kt.dtype);
  const auto depth = static_cast<std::uint64_t>(chip_.mem.depth);
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
    if (!found && logs("mem"))
      for (auto sl : all)
        std::fprintf(stderr, "slice %d live %llu high %llu allocs %zu\n", sl,
                     (unsigned long long)live_[sl], (unsigned long long)high_[sl],
                     alloc_[sl].size());
    if (!found)
      throw InputError(
          source_, "weights '" + kt.name + "' need " + std::to_string(pieces) + " pieces of " +
                       std::to_string(p.block_addrs) + " vectors on 16 MEM slices each (" +
                       std::to_string(
                           pieces * p.block_addrs * 16 * static_cast<std::uint64_t>(lanes_) >> 20) +
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
  // (constants only: an input's copy would need the host to write it twice)
  const double wbytes = static_cast<double>(kt.elements()) * bytes;
  if (kt.role == KTensor::Role::kConstant && copy_weights_ && wbytes <= copy_budget_) {
    copy_weights(t);
    copy_budget_ -= wbytes;
  }
}

void Scheduler::copy_weights(int t) {
  TensorPlace& p = P(t);
  const auto saved_alloc = alloc_;
  const auto saved_live = live_, saved_high = high_;
  std::vector<std::uint16_t> all = west_;
  all.insert(all.end(), east_.begin(), east_.end());
  TensorPlace::PieceCopy copy;
  for (std::size_t pc = 0; pc < p.piece_addr.size(); ++pc) {
    const auto own = p.piece_slices.begin() + static_cast<long>(16 * pc);
    std::vector<std::uint16_t> cand;
    for (auto sl : all)
      if (std::find(own, own + 16, sl) == own + 16) cand.push_back(sl);
    std::stable_sort(cand.begin(), cand.end(), [&](std::uint16_t a, std::uint16_t b) {
      return high_[a] != high_[b] ? high_[a] < high_[b] : live_[a] < live_[b];
    });
    std::optional<std::pair<std::uint64_t, std::uint64_t>> found;
    std::size_t first = 0;
    for (std::size_t k = 0; !found && k + 16 <= cand.size(); ++k) {
      found = find_base(std::vector<std::uint16_t>(cand.begin() + static_cast<long>(k),
                                                   cand.begin() + static_cast<long>(k) + 16),
                        p.block_addrs);
      first = k;
    }
    if (!found) {  // no room: no copy at all
      alloc_ = saved_alloc;
      live_ = saved_live;
      high_ = saved_high;
      return;
    }
    const std::vector<std::uint16_t> pick(cand.begin() + static_cast<long>(first),
                                          cand.begin() + static_cast<long>(first) + 16);
    allocate(pick, found->first, p.block_addrs);
    copy.slices.insert(copy.slices.end(), pick.begin(), pick.end());
    copy.addr.push_back(static_cast<std::uint32_t>(found->first));
  }
  p.piece_copies.push_back(std::move(copy));
}

void Scheduler::place(int t, std::vector<std::uint16_t> avoid, int side) {
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
    place_weights(t, avoid);
    return;
  }
  // Rows dealt over il groups of slices (KTensor::interleave): a group per il rows, each
  // holding every il-th row at consecutive addresses.
  const int il = kt.interleave > 1 && !p.t16 && kt.role == KTensor::Role::kTemp &&
                         !no_chunk_[static_cast<std::size_t>(t)] && kt.tiles(lanes_) == 1
                     ? kt.interleave
                     : 1;
  p.il = il;
  width *= il;
  const auto addrs = [il](std::uint64_t n) {
    return (n + static_cast<std::uint64_t>(il) - 1) / il;
  };
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
      const bool written = kt.role != KTensor::Role::kInput && kt.role != KTensor::Role::kConstant;
      const auto f = find_base(g, addrs(need), false, written ? quiet_bank(g) : -1);
      if (f && (!found || f->second < found->second)) {
        found = f;
        pick = std::move(g);
      }
      if (found && found->second == 0) break;
    }
    if (!found) continue;
    const std::uint64_t base = found->first;
    p.write_after = found->second;
    allocate(pick, base, addrs(need));
    p.slices = pick;
    p.addr = static_cast<std::uint32_t>(base);
    p.vectors = static_cast<std::uint32_t>(addrs(need));
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

bool Scheduler::place_chunks(int t, TensorPlace& p, std::uint64_t need, std::uint64_t per,
                             int width, const std::vector<std::uint16_t>& avoid, int side,
                             const ChunkAvoid& chunk_avoid) {
  (void)t;
  const auto il = static_cast<std::uint64_t>(p.il);
  per = (per + il - 1) / il * il;  // a chunk starts on group 0
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool west = side >= 0 ? (side == 0) == (attempt == 0) : ((next_side_ + attempt) % 2) == 0;
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
      const std::uint64_t addrs_here = (rows_here + il - 1) / il;
      const std::size_t c_index = chunks.size();
      if (c_index >= groups) {  // the group's slices again, at its next free range
        const auto& g = group_slices[c_index % groups];
        if (const auto f = find_base(g, addrs_here)) {
          allocate(g, f->first, addrs_here);
          after = std::max(after, f->second);
          chunks.push_back({static_cast<std::int64_t>(first), static_cast<std::int64_t>(rows_here),
                            g, static_cast<std::uint32_t>(f->first)});
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
      for (std::size_t k = 0; k + static_cast<std::size_t>(width) <= cand.size() && k < cand.size();
           k += static_cast<std::size_t>(width)) {
        std::vector<std::uint16_t> g(cand.begin() + static_cast<long>(k),
                                     cand.begin() + static_cast<long>(k) + width);
        const auto f = find_base(g, addrs_here);
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
      allocate(pick, found->first, addrs_here);
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

std::string Scheduler::live_mib() const {
  if (logs("mem")) {  // the largest live tensors
    std::vector<std::pair<std::uint64_t, std::size_t>> v;
    for (std::size_t t = 0; t < place_.size(); ++t) {
      const TensorPlace& p = place_[t];
      if (!p.placed || p.freed) continue;
      std::uint64_t n = 0;
      if (p.chunked)
        for (const auto& c : p.chunks)
          n += static_cast<std::uint64_t>((c.rows + p.il - 1) / p.il) * c.slices.size();
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

std::optional<std::pair<std::uint64_t, std::uint64_t>> Scheduler::find_base(
    const std::vector<std::uint16_t>& slices, std::uint64_t need, bool fresh,
    int prefer_bank) const {
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

int Scheduler::quiet_bank(const std::vector<std::uint16_t>& slices) const {
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

void Scheduler::allocate(const std::vector<std::uint16_t>& slices, std::uint64_t base,
                         std::uint64_t need) {
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

void Scheduler::release(int t) {
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
    free_range(c.slices, c.base, static_cast<std::uint64_t>((c.rows + tp.il - 1) / tp.il));
}

std::size_t Scheduler::weight_piece(const TensorPlace& p, std::int64_t r, std::int64_t tn) const {
  const std::int64_t batch = r / p.block_rows, kk = r % p.block_rows;
  const std::int64_t tk = kk / chip_.mxm.rows;
  return static_cast<std::size_t>((batch * p.k_tiles + tk) * p.n_tiles + tn);
}

std::pair<std::uint16_t, std::uint32_t> Scheduler::weight_at(const TensorPlace& p, int bytes,
                                                             std::int64_t r, std::int64_t tn,
                                                             int b) const {
  const int per = 16 / bytes;
  const std::int64_t kr = (r % p.block_rows) % chip_.mxm.rows;
  const auto slot = static_cast<std::size_t>(kr % per);
  const std::size_t piece = weight_piece(p, r, tn);
  return {p.piece_slices[16 * piece + slot * static_cast<std::size_t>(bytes) +
                         static_cast<std::size_t>(b)],
          static_cast<std::uint32_t>(p.piece_addr[piece] + kr / per)};
}

std::pair<std::uint16_t, std::uint32_t> Scheduler::at(int t, std::int64_t vr, int b) const {
  const TensorPlace& tp = P(t);
  const KTensor& kt = k_.tensors[static_cast<std::size_t>(root(t))];
  if (tp.weights) {
    const std::int64_t r = std::max<std::int64_t>(kt.rows(), 1);
    return weight_at(tp, isa::dtype_bytes(kt.dtype), vr % r, vr / r, b);
  }
  if (tp.chunked) {
    // (chunks in row order: the first one ending past vr)
    const auto it =
        std::partition_point(tp.chunks.begin(), tp.chunks.end(),
                             [vr](const TensorPlace::Chunk& c) { return c.first + c.rows <= vr; });
    if (it != tp.chunks.end()) {
      const std::int64_t r = vr - it->first;
      const std::size_t group = static_cast<std::size_t>(r % tp.il) *
                                (it->slices.size() / static_cast<std::size_t>(tp.il));
      return {it->slices[group + static_cast<std::size_t>(b)],
              static_cast<std::uint32_t>(it->base + r / tp.il)};
    }
  }
  if (tp.il > 1)
    return {tp.slices[static_cast<std::size_t>(vr % tp.il) *
                          (tp.slices.size() / static_cast<std::size_t>(tp.il)) +
                      static_cast<std::size_t>(b)],
            static_cast<std::uint32_t>(tp.addr + static_cast<std::uint64_t>(vr / tp.il))};
  if (tp.t16)
    return {tp.slices[static_cast<std::size_t>((vr + 4 * b) % 16)],
            static_cast<std::uint32_t>(tp.addr + static_cast<std::uint32_t>(b) * tp.plane_addrs +
                                       vr / 16)};
  return {tp.slices[static_cast<std::size_t>(b)],
          static_cast<std::uint32_t>(tp.addr + static_cast<std::uint64_t>(vr))};
}

std::vector<std::vector<Scheduler::Run>> Scheduler::plane_runs(int t, std::int64_t row0,
                                                               std::uint32_t count, int bytes,
                                                               std::int64_t rs) const {
  // A placed tensor stays where it is, so its runs are asked again and again with the same
  // rows (every ALU and stream choice of a VXM step's part reads them): kept.
  const std::array<std::int64_t, 5> key = {root(t), row0, count, bytes, rs};
  if (auto it = runs_memo_.find(key); it != runs_memo_.end()) return it->second;
  std::vector<std::vector<Run>> all;
  for (int b = 0; b < bytes; ++b)
    all.push_back(runs(t, row0, count, b, rs));
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
  runs_memo_.emplace(key, all);
  return all;
}

std::vector<Scheduler::Run> Scheduler::runs(int t, std::int64_t row0, std::uint32_t count, int b,
                                            std::int64_t rs) const {
  std::vector<Run> out;
  std::map<std::uint16_t, std::size_t> open;  // slice -> its last run
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto [slice, addr] = at(t, row0 + static_cast<std::int64_t>(i) * rs, b);
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

std::optional<std::uint64_t> Scheduler::fit(const Op& op, std::uint64_t before) const {
  // Uses of one resource by the op itself must not overlap: sorted by resource and start, each
  // use is compared with those that start before it ends.
  std::vector<std::size_t> order(op.uses.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    const Use& a = op.uses[x];
    const Use& b = op.uses[y];
    return std::tie(a.kind, a.id, a.off) < std::tie(b.kind, b.id, b.off);
  });
  for (std::size_t oi = 0; oi < order.size(); ++oi)
    for (std::size_t oj = oi + 1; oj < order.size(); ++oj) {
      const Use& a = op.uses[order[oi]];
      const Use& b = op.uses[order[oj]];
      if (a.kind != b.kind || a.id != b.id || b.off >= a.off + static_cast<std::int64_t>(a.span()))
        break;
      if (a.kind != Use::Kind::kStream || (a.p0 <= b.p1 && b.p0 <= a.p1)) {
        if (logs("fit"))
          std::fprintf(stderr, "self-conflict: kind %d id %d [%lld,+%llu) vs [%lld,+%llu)\n",
                       static_cast<int>(a.kind), a.id, static_cast<long long>(a.off),
                       static_cast<unsigned long long>(a.len), static_cast<long long>(b.off),
                       static_cast<unsigned long long>(b.len));
        return std::nullopt;
      }
    }
  // Uses of one resource back to back (a run of rows read or written a row a cycle) act as
  // one: a later start clears them exactly when it clears their span, so the jumps below
  // find the same cycle in fewer steps.
  std::vector<Use> uses;
  uses.reserve(order.size());
  for (std::size_t i : order) {
    const Use& u = op.uses[i];
    if (!uses.empty()) {
      Use& p = uses.back();
      if (p.kind == u.kind && p.id == u.id && p.p0 == u.p0 && p.p1 == u.p1 && p.times == 1 &&
          u.times == 1 && p.off + static_cast<std::int64_t>(p.len) == u.off) {
        p.len += u.len;
        continue;
      }
    }
    uses.push_back(u);
  }
  std::int64_t lo = static_cast<std::int64_t>(op.lo);
  for (const Use& u : uses)
    lo = std::max(lo, -u.off);
  for (const Emit& e : op.emits)
    lo = std::max(lo, -e.off);
  auto t = static_cast<std::uint64_t>(lo);
  for (int guard = 0; guard < 10000000 && t < before; ++guard) {
    std::optional<std::uint64_t> need;
    auto want = [&](std::uint64_t x) { need = need ? std::max(*need, x) : x; };
    for (const Use& u : uses) {
      const auto s = static_cast<std::uint64_t>(static_cast<std::int64_t>(t) + u.off);
      if (u.kind == Use::Kind::kStream) {
        claims_[static_cast<std::size_t>(u.id)].overlapping(
            s, s + u.len, u.p0, u.p1, [&](const Claim& o) { want(t + (o.k1 - s)); });
      } else {
        const Busy& b = busy_of(u.kind)[static_cast<std::size_t>(u.id)];
        if (u.times > 1) {
          if (auto shift = b.conflict_each(s, u.len, u.every, u.times)) want(t + *shift);
        } else if (auto e = b.conflict(s, u.len)) {
          want(t + (*e - s));
        }
      }
    }
    if (!need) return t;
    t = std::max(t + 1, *need);
  }
  if (t >= before) return std::nullopt;
  throw std::logic_error("scheduler: no cycle fits");
}

}  // namespace lpu::compiler::scheduling
