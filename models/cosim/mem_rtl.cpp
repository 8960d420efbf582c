// A MEM slice's storage in RTL (rtl/mem/mem_bank.sv, Verilated in SystemC mode) behind a
// transactor (docs/cosim.md). One bank per slice holds every superlane's SECDED chunk of every
// word (row = word x superlanes + superlane) and takes a row per RTL clock: a word read or write
// is S beats, a gather a beat per lane, a scatter a read and a write per lane (read-modify-write
// of the lane's chunk, as the model's). At most a read and a write reach a slice in one cycle, so
// each operation runs in half a cycle, finished before the next cycle. What the host loads before
// the run (and bits flipped for fault injection) goes through the write and flip ports at time 0,
// clocked in zero time.
#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "Vmem_bank_sc.h"
#include "cosim/blocks.h"
#include "cosim/waves.h"
#include "verilated.h"

namespace lpu::cosim {

namespace {

constexpr int kChunkBytes = LPU_RTL_LANES;  // a superlane's lanes: one SECDED chunk
using Word = sc_dt::sc_bv<kChunkBytes * 8>;

class MemRtl final : public sc_core::sc_module, public units::MemRtlPort {
 public:
  MemRtl(const sc_core::sc_module_name& name, units::ChipContext& ctx, std::uint64_t* corrected,
         std::uint64_t* uncorrectable, Waves* waves)
      : sc_core::sc_module(name),
        clk("clk"),
        rst_n("rst_n"),
        we("we"),
        re("re"),
        flip_("flip"),
        rvalid("rvalid"),
        corrected_("corrected"),
        uncorrectable_("uncorrectable"),
        waddr("waddr"),
        raddr("raddr"),
        faddr("faddr"),
        fbit("fbit"),
        rcheck("rcheck"),
        wdata("wdata"),
        rdata("rdata"),
        bank_("bank"),
        ctx_(ctx),
        superlanes_(ctx.arch->chip.superlanes),
        word_bytes_(ctx.lanes),
        period_(1.0 / ctx.arch->chip.clock_mhz, sc_core::SC_US),
        ecc_corrected_(corrected),
        ecc_uncorrectable_(uncorrectable) {
    bank_.clk(clk);
    bank_.rst_n(rst_n);
    bank_.we(we);
    bank_.waddr(waddr);
    bank_.wdata(wdata);
    bank_.re(re);
    bank_.raddr(raddr);
    bank_.rvalid(rvalid);
    bank_.rdata(rdata);
    bank_.rcheck(rcheck);
    bank_.corrected(corrected_);
    bank_.uncorrectable(uncorrectable_);
    bank_.flip(flip_);
    bank_.faddr(faddr);
    bank_.fbit(fbit);
    if (waves) {
      const std::string scope = std::string(bank_.name()) + ".mem_bank";
      const std::string title = bank_.name();
      const std::string data = "[" + std::to_string(kChunkBytes * 8 - 1) + ":0]";
      waves->add([this](VerilatedFstC* f) { bank_.trace(f, 99); },
                 [this, scope, title, data] {
                   if (!used_) return std::string();
                   const std::string aw = "[" + std::to_string(address_bits() - 1) + ":0]";
                   return gtkw_group(title + " control", scope,
                                     {"clk", "rst_n", "we", "waddr" + aw, "re", "raddr" + aw,
                                      "flip", "faddr" + aw, "fbit[15:0]"}) +
                          gtkw_group(title + " write", scope, {"wdata" + data}) +
                          gtkw_group(
                              title + " read", scope,
                              {"rvalid", "rdata" + data,
                               "rcheck[" + std::to_string(LPU_RTL_MEM_CHECK_BITS - 1) + ":0]",
                               "corrected", "uncorrectable"});
                 });
    }
    SC_THREAD(drive);
  }
  SC_HAS_PROCESS(MemRtl);

  void preload(std::uint32_t addr, const std::uint8_t* word) override {
    Job j = job(nullptr, true);
    for (int s = 0; s < superlanes_; ++s)
      j.beats.push_back(write_beat(addr, s, word + s * kChunkBytes));
    push(std::move(j));
  }

  void flip(std::uint32_t addr, int bit) override {
    Job j = job(nullptr, true);
    Beat b;
    b.flip = true;
    const int data_bits = word_bytes_ * 8;
    if (bit < data_bits) {
      b.row = row(addr, bit / (kChunkBytes * 8));
      b.fbit = static_cast<std::uint16_t>(bit % (kChunkBytes * 8));
    } else {
      const int c = (bit - data_bits) / LPU_RTL_MEM_CHECK_BITS;
      b.row = row(addr, c);
      b.fbit =
          static_cast<std::uint16_t>(kChunkBytes * 8 + (bit - data_bits) % LPU_RTL_MEM_CHECK_BITS);
    }
    j.beats.push_back(b);
    push(std::move(j));
  }

  void write(const units::Issue& is, std::uint32_t addr, const std::uint8_t* word) override {
    Job j = job(&is, false);
    for (int s = 0; s < is.superlanes; ++s)
      j.beats.push_back(write_beat(addr, s, word + s * kChunkBytes));
    push(std::move(j));
  }

  void read(const units::Issue& is, std::uint32_t addr, std::uint8_t* word, bool compare,
            func::ReadResult model) override {
    Job j = job(&is, false);
    j.kind = Kind::kRead;
    j.addr = addr;
    for (int s = 0; s < is.superlanes; ++s) {
      Beat b;
      b.re = true;
      b.row = row(addr, s);
      j.beats.push_back(b);
    }
    finish_setup(&j, word, static_cast<std::size_t>(is.superlanes * kChunkBytes), compare, model);
    push(std::move(j));
  }

  void gather(const units::Issue& is, const std::uint32_t* addrs, std::uint8_t* bytes, bool compare,
              func::ReadResult model) override {
    Job j = job(&is, false);
    j.kind = Kind::kGather;
    for (int l = 0; l < is.superlanes * kChunkBytes; ++l) {
      Beat b;
      b.re = true;
      b.row = row(addrs[l], l / kChunkBytes);
      j.beats.push_back(b);
      j.lane_addr.push_back(addrs[l]);
    }
    finish_setup(&j, bytes, static_cast<std::size_t>(is.superlanes * kChunkBytes), compare, model);
    push(std::move(j));
  }

  void scatter(const units::Issue& is, const std::uint32_t* addrs, const std::uint8_t* bytes,
               bool compare, func::ReadResult model) override {
    Job j = job(&is, false);
    j.kind = Kind::kScatter;
    j.compare = compare;
    j.model = model;
    for (int l = 0; l < is.superlanes * kChunkBytes; ++l) {
      Beat b;  // the read half; the write follows with byte l of the chunk replaced
      b.re = true;
      b.row = row(addrs[l], l / kChunkBytes);
      b.rmw_byte = l % kChunkBytes;
      b.rmw_value = bytes[l];
      j.beats.push_back(b);
    }
    push(std::move(j));
  }

  units::CosimStats& stats() override { return stats_; }

 private:
  enum class Kind { kOther, kRead, kGather, kScatter };
  struct Beat {
    bool we = false, re = false, flip = false;
    std::uint32_t row = 0;
    Word wdata;
    std::uint16_t fbit = 0;
    int rmw_byte = -1;  // scatter: the byte of the chunk to replace, after the read
    std::uint8_t rmw_value = 0;
  };
  struct Job {
    Kind kind = Kind::kOther;
    bool zero_time = false, compare = false;
    const arch::Queue* queue = nullptr;
    std::uint32_t index = 0, step = 0, addr = 0;
    std::uint64_t access = 0;
    std::vector<Beat> beats;
    std::vector<std::uint32_t> lane_addr;
    std::uint8_t* out = nullptr;     // rtl: where the bytes read go
    std::vector<std::uint8_t> want;  // lockstep: the model's bytes
    func::ReadResult model;          // lockstep: the model's ECC events
  };

  int address_bits() const {
    int b = 0;
    while ((1 << b) < LPU_RTL_MEM_ROWS)
      ++b;
    return b;
  }
  std::uint32_t row(std::uint32_t addr, int superlane) const {
    return addr * static_cast<std::uint32_t>(superlanes_) + static_cast<std::uint32_t>(superlane);
  }
  Beat write_beat(std::uint32_t addr, int s, const std::uint8_t* chunk) const {
    Beat b;
    b.we = true;
    b.row = row(addr, s);
    to_bus(chunk, kChunkBytes, &b.wdata);
    return b;
  }
  Job job(const units::Issue* is, bool zero_time) const {
    Job j;
    j.zero_time = zero_time;
    if (is) {
      j.queue = is->queue;
      j.index = is->index;
      j.step = is->step;
      j.access = is->access;
    }
    return j;
  }
  static void finish_setup(Job* j, std::uint8_t* bytes, std::size_t n, bool compare,
                           func::ReadResult model) {
    j->compare = compare;
    j->model = model;
    if (compare)
      j->want.assign(bytes, bytes + n);
    else
      j->out = bytes;
  }
  void push(Job&& j) {
    jobs_.push_back(std::move(j));
    used_ = true;
    ready_.notify(sc_core::SC_ZERO_TIME);
  }

  // A clock: the beat's pins, a rising edge, the registered outputs. In zero time (deltas) for
  // the work before the run.
  void clock(const Beat& b, const sc_core::sc_time& half, bool zero_time) {
    we.write(b.we);
    re.write(b.re);
    flip_.write(b.flip);
    if (b.we) {
      waddr.write(b.row);
      wdata.write(b.wdata);
    }
    if (b.re) raddr.write(b.row);
    if (b.flip) {
      faddr.write(b.row);
      fbit.write(b.fbit);
    }
    clk.write(false);
    if (zero_time) {
      wait(sc_core::SC_ZERO_TIME);
      clk.write(true);
      wait(sc_core::SC_ZERO_TIME);
      wait(sc_core::SC_ZERO_TIME);
    } else {
      wait(half);
      clk.write(true);
      wait(half);
    }
    ++stats_.rtl_cycles;
  }

  void drive() {
    reset_pulse(clk, rst_n);
    for (;;) {
      while (jobs_.empty())
        wait(ready_);
      run(jobs_.front());
      jobs_.pop_front();
    }
  }

  void run(Job& j) {
    std::size_t beats = j.beats.size();
    if (j.kind == Kind::kScatter) beats *= 2;
    // A read and a write may share a cycle: each operation gets half of it.
    const sc_core::sc_time half = period_ / (4.0 * static_cast<double>(beats + 1));
    int corrected = 0, uncorrectable = 0;
    std::vector<std::uint8_t> got;
    for (std::size_t i = 0; i < j.beats.size(); ++i) {
      const Beat& b = j.beats[i];
      clock(b, half, j.zero_time);
      if (!b.re) continue;
      corrected += corrected_.read();
      uncorrectable += uncorrectable_.read();
      std::array<std::uint8_t, kChunkBytes> chunk;
      from_bus(rdata.read(), kChunkBytes, chunk.data());
      if (j.kind == Kind::kRead) got.insert(got.end(), chunk.begin(), chunk.end());
      if (j.kind == Kind::kGather) got.push_back(chunk[i % kChunkBytes]);
      if (b.rmw_byte >= 0) {  // scatter: write the chunk back with the lane's byte
        chunk[static_cast<std::size_t>(b.rmw_byte)] = b.rmw_value;
        Beat w = write_beat(0, 0, chunk.data());
        w.row = b.row;
        clock(w, half, j.zero_time);
      }
    }
    we.write(false);
    re.write(false);
    flip_.write(false);
    clk.write(false);
    if (!j.queue) return;  // the host's load or a fault injection
    ++stats_.rtl_vectors;
    units::Issue at;
    at.queue = j.queue;
    at.index = j.index;
    at.step = j.step;
    at.access = j.access;
    if (!j.compare) {
      if (j.out) std::copy(got.begin(), got.end(), j.out);
      *ecc_corrected_ += static_cast<std::uint64_t>(corrected);
      if (uncorrectable) {
        *ecc_uncorrectable_ += static_cast<std::uint64_t>(uncorrectable);
        ctx_.record(at, "uncorrectable ECC error (" + std::to_string(uncorrectable) +
                            " chunk(s)) in the word read");
      }
      return;
    }
    std::string diff;
    for (std::size_t k = 0; k < got.size() && k < j.want.size() && diff.empty(); ++k)
      if (got[k] != j.want[k]) {
        const std::uint32_t word = j.kind == Kind::kGather ? j.lane_addr[k] : j.addr;
        diff = (j.kind == Kind::kGather ? "lane " : "byte ") + std::to_string(k) + " of word " +
               std::to_string(word) + " (superlane " + std::to_string(k / kChunkBytes) +
               "): " + hex(j.want[k]) + " in the model, " + hex(got[k]) + " in the RTL";
      }
    if (diff.empty() && (corrected != j.model.corrected || uncorrectable != j.model.uncorrectable))
      diff = "ECC events: the model corrected " + std::to_string(j.model.corrected) +
             " chunk(s) and found " + std::to_string(j.model.uncorrectable) +
             " uncorrectable, the RTL " + std::to_string(corrected) + " and " +
             std::to_string(uncorrectable);
    if (diff.empty()) {
      ++stats_.matched;
      return;
    }
    if (stats_.mismatched++ == 0) {
      ctx_.record(at, "the RTL differs from the model in " + diff);
      ctx_.errors->back().kind = "lockstep mismatch";
    }
  }

  sc_core::sc_signal<bool> clk, rst_n, we, re, flip_, rvalid, corrected_, uncorrectable_;
  sc_core::sc_signal<std::uint32_t> waddr, raddr, faddr, fbit, rcheck;
  sc_core::sc_signal<Word> wdata, rdata;
  Vmem_bank_sc bank_;
  units::ChipContext& ctx_;
  int superlanes_, word_bytes_;
  sc_core::sc_time period_;
  std::uint64_t* ecc_corrected_;
  std::uint64_t* ecc_uncorrectable_;
  std::deque<Job> jobs_;
  sc_core::sc_event ready_;
  bool used_ = false;
  units::CosimStats stats_;
};

}  // namespace

std::unique_ptr<units::MemRtlPort> make_mem_rtl(units::ChipContext& ctx, std::uint64_t* corrected,
                                                std::uint64_t* uncorrectable, Waves* waves) {
  return std::make_unique<MemRtl>("rtl", ctx, corrected, uncorrectable, waves);
}

}  // namespace lpu::cosim
