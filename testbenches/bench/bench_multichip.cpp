// Simulation speed of systems of chips in timing mode (no SRAM contents held): one tsp-v1 chip,
// node8 (8 chips, 28 links) and rack72 (72 chips, 396 links). Every chip runs a local stream
// (MEM -> VXM add -> MEM) and every link carries vectors both ways (MEM -> send ... recv -> MEM),
// each at the cycles the link's timing gives (one way, then back). Each case runs in a process of
// its own (SystemC elaborates once per process), which also gives its peak memory.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"
#include "compiler/collectives.h"
#include "compiler/kernels.h"
#include "compiler/scheduler.h"
#include "func/c2c_link.h"
#include "isa/asm_text.h"
#include "system/run.h"

using namespace lpu;

namespace {

constexpr int kLocalRows = 4096;   // per chip: vectors through the VXM
constexpr int kLinkVectors = 256;  // per link direction

// The program text: per chip and queue, entries sorted by cycle.
std::string program(const arch::Arch& a) {
  const auto queues = arch::chip_queues(a.chip);
  auto q = [&](const std::string& name) -> const arch::Queue& {
    for (const auto& x : queues)
      if (x.name == name) return x;
    throw std::runtime_error("no queue " + name);
  };
  const func::LinkTiming lt(a);
  std::map<std::uint32_t, std::map<std::string, std::vector<std::pair<std::uint64_t, std::string>>>>
      code;
  auto add = [&](std::uint32_t chip, const std::string& queue, std::uint64_t cycle,
                 const std::string& text) {
    code[chip][queue].push_back({cycle, "  @" + std::to_string(cycle) + " " + text});
  };
  const int vxm = q("vxm.alu0").position;
  for (std::uint32_t c = 0; c < static_cast<std::uint32_t>(a.system.chips); ++c) {
    // Local: mem.w20 -> vxm.alu0 (add) -> mem.e20, a row per cycle.
    const int pr = q("mem.w20").position, pw = q("mem.e20").position;
    // One instruction and a repeat each (one vector per cycle).
    const std::string more = "repeat " + std::to_string(kLocalRows - 1) + ", 1";
    const std::uint64_t t = 10, at_vxm = t + 2 + static_cast<std::uint64_t>(vxm - pr);
    const std::uint64_t tw = at_vxm + 2 + static_cast<std::uint64_t>(pw - vxm) - 1;
    add(c, "mem.w20", t, "read 0, s0e");
    add(c, "mem.w20", t + 1, more);
    add(c, "vxm.alu0", at_vxm - 1, "add.i8.sat s0e, s0e, s1e");
    add(c, "vxm.alu0", at_vxm, more);
    add(c, "mem.e20", tw, "write 0, s1e");
    add(c, "mem.e20", tw + 1, more);
  }
  // Links, both directions: the sender's slice near its port reads, the port sends one vector
  // every frame; the receiver's port takes each on arrival and a slice writes it.
  for (const auto& l : a.system.links)
    for (int d = 0; d < 2; ++d) {
      const arch::LinkEnd& s = d == 0 ? l.a : l.b;
      const arch::LinkEnd& r = d == 0 ? l.b : l.a;
      auto side = [&](int port) {
        return q("c2c.l" + std::to_string(port)).hemisphere == arch::Hemisphere::kWest
                   ? std::string("w")
                   : std::string("e");
      };
      // (slices near the ports: the outermost of each hemisphere are instruction text)
      const int outer = a.chip.mem.slices_per_hemisphere - a.chip.icu.instruction_slices - 1;
      const std::string sslice = "mem." + side(s.port) + std::to_string(outer - s.port % 8);
      const std::string rslice = "mem." + side(r.port) + std::to_string(outer - 8 - r.port % 8);
      const int sp = q("c2c.l" + std::to_string(s.port)).position, ss = q(sslice).position;
      const int rp = q("c2c.l" + std::to_string(r.port)).position, rs = q(rslice).position;
      const int st = 8 + s.port % 8, rt = 16 + r.port % 8;
      const std::string sdir = sp < ss ? "w" : "e", rdir = rs < rp ? "w" : "e";
      // A vector every frame: one instruction and a repeat each. A port's queue either sends or
      // receives at a time: the way back starts once the way out has arrived.
      const std::uint64_t f = lt.frame_cycles();
      const std::uint64_t ts =
          d == 0 ? 100 : lt.arrival(100) + static_cast<std::uint64_t>(kLinkVectors) * f + 2;
      const std::uint64_t arr = lt.arrival(ts);
      const std::string more =
          "repeat " + std::to_string(kLinkVectors - 1) + ", " + std::to_string(f);
      const std::uint64_t tr = ts - 2 - static_cast<std::uint64_t>(std::abs(sp - ss));
      const std::uint64_t tw = arr + 2 + static_cast<std::uint64_t>(std::abs(rs - rp)) - 1;
      const std::string sport = "c2c.l" + std::to_string(s.port);
      const std::string rport = "c2c.l" + std::to_string(r.port);
      add(s.chip, sslice, tr, "read 0, s" + std::to_string(st) + sdir);
      add(s.chip, sslice, tr + f, more);
      add(s.chip, sport, ts - 1, "send s" + std::to_string(st) + sdir);
      add(s.chip, sport, ts - 1 + f, more);
      add(r.chip, rport, arr, "recv s" + std::to_string(rt) + rdir);
      add(r.chip, rport, arr + f, more);
      add(r.chip, rslice, tw, "write 0, s" + std::to_string(rt) + rdir);
      add(r.chip, rslice, tw + f, more);
    }
  std::string out = ".lpuasm 1\n.arch " + a.name + "\n";  // (a preset)
  for (auto& [chip, qs] : code) {
    out += ".chip " + std::to_string(chip) + "\n";
    for (auto& [name, entries] : qs) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      out += ".queue " + name + "\n";
      for (const auto& e : entries)
        out += e.second + "\n";
    }
  }
  return out;
}

// All-gather on node8 of `rows` int8 vectors per chip (timing mode): its predicted and simulated
// time and the bandwidth each chip receives.
int run_all_gather(std::int64_t rows) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const arch::Arch a = arch::load("node8");
  const isa::Program p = compiler::all_gather(a, rows);
  units::SimOptions o;
  o.mode = units::Mode::kTiming;
  std::map<std::string, system::TensorValue> in;  // (timing mode: the values do not matter)
  for (const auto& t : p.tensors)
    if (t.role == isa::TensorRole::kInput) {
      system::TensorValue v;
      v.dtype = t.dtype;
      v.shape = t.shape;
      v.bytes.assign(static_cast<std::size_t>(rows * a.chip.lanes()), 0);
      in[t.name] = std::move(v);
    }
  const auto r = system::run(p, in, o);
  const double us = static_cast<double>(r.cycles) / a.chip.clock_mhz;
  const double total = static_cast<double>(rows) * a.system.chips * a.chip.lanes();
  const double received = static_cast<double>(rows) * (a.system.chips - 1) * a.chip.lanes();
  const double link_gbs = 8.0 * a.chip.lanes() / 8.0 / (1000.0 / a.chip.clock_mhz) /
                          static_cast<double>(func::LinkTiming(a).frame_cycles());
  std::printf(
      "all-gather on node8: %lld rows of %d B per chip (%.2f MiB gathered), cycles %llu "
      "(predicted %llu), %.2f us, %.2f GB/s received per chip (%d links of %.2f GB/s of "
      "payload each), %zu errors\n",
      static_cast<long long>(rows), a.chip.lanes(), total / (1 << 20),
      static_cast<unsigned long long>(r.cycles),
      static_cast<unsigned long long>(r.predicted.value_or(0)), us, received / us / 1e3,
      a.system.chips - 1, link_gbs, r.errors.size());
  return r.errors.empty() && r.predicted && *r.predicted == r.cycles ? 0 : 1;
}

// All-reduce (sum, fp32) on node8 of `buckets` tensors of `rows` x 320 per chip, compiled from a
// graph of AllReduce nodes (reduce-scatter, then all-gather; compiler/kernels): predicted and
// simulated time, the data each chip contributes per second ("algorithm bandwidth") and what
// each chip's links carry per second ("bus bandwidth", 2 (n - 1) / n of it).
int run_all_reduce(std::int64_t rows, int buckets, int text_slices) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  std::vector<std::string> sets;
  if (text_slices > 0) sets.push_back("chip.icu.instruction_slices=" + std::to_string(text_slices));
  const arch::Arch a = arch::load("node8", sets);
  const int n = a.system.chips;
  compiler::Graph g;
  g.source = "allreduce";
  for (int b = 0; b < buckets; ++b) {
    compiler::Value x, y;
    x.name = "x" + std::to_string(b);
    y.name = "y" + std::to_string(b);
    x.dtype = y.dtype = isa::DType::kFp32;
    x.shape = y.shape = {rows, a.chip.lanes()};
    g.values.push_back(x);
    g.values.push_back(y);
    g.inputs.push_back(2 * b);
    g.outputs.push_back(2 * b + 1);
    compiler::Node nd;
    nd.name = "allreduce" + std::to_string(b);
    nd.op = compiler::kAllReduce;
    nd.inputs = {2 * b};
    nd.outputs = {2 * b + 1};
    g.nodes.push_back(nd);
  }
  const auto t0 = std::chrono::steady_clock::now();
  compiler::LowerOptions lo;
  lo.chips = n;
  std::vector<compiler::Kernels> ks(static_cast<std::size_t>(n), compiler::lower(g, a, lo));
  compiler::Schedule s;
  try {
    s = compiler::schedule_spmd(ks, a, "allreduce");
  } catch (const std::exception& e) {
    std::printf("all-reduce on node8: %d x %lld rows: does not compile: %s\n", buckets,
                static_cast<long long>(rows), e.what());
    return 1;
  }
  const double compile_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  units::SimOptions o;
  o.mode = units::Mode::kTiming;
  std::map<std::string, system::TensorValue> in;
  for (const auto& t : s.program.tensors)
    if (t.role == isa::TensorRole::kInput) {
      system::TensorValue v;
      v.dtype = t.dtype;
      v.shape = t.shape;
      v.bytes.assign(static_cast<std::size_t>(rows * a.chip.lanes() * 4), 0);
      in[t.name] = std::move(v);
    }
  const auto r = system::run(s.program, in, o);
  const double us = static_cast<double>(r.cycles) / a.chip.clock_mhz;
  const double bytes = static_cast<double>(rows) * a.chip.lanes() * 4.0 * buckets;
  std::printf(
      "all-reduce on node8%s: %.2f MiB fp32 per chip (%d x [%lld, %d]), cycles %llu (predicted "
      "%llu), %.1f us; per chip %.2f GB/s algorithm, %.2f GB/s bus; %zu instructions, compiled "
      "in %.1f s, simulated in %.1f s; %zu errors\n",
      text_slices > 0
          ? (" with " + std::to_string(text_slices) + " instruction slices per hemisphere").c_str()
          : "",
      bytes / (1 << 20), buckets, static_cast<long long>(rows), a.chip.lanes(),
      static_cast<unsigned long long>(r.cycles),
      static_cast<unsigned long long>(r.predicted.value_or(0)), us, bytes / us / 1e3,
      bytes * 2.0 * (n - 1) / n / us / 1e3, s.program.instruction_count(), compile_s,
      r.wall_seconds, r.errors.size());
  return r.errors.empty() && r.predicted && *r.predicted == r.cycles ? 0 : 1;
}

int run_case(const std::string& preset) {
  if (preset.rfind("allgather:", 0) == 0) return run_all_gather(std::stoll(preset.substr(10)));
  if (preset.rfind("allreduce:", 0) == 0) {  // allreduce:ROWS:BUCKETS[:TEXT_SLICES]
    const auto c1 = preset.find(':', 10), c2 = preset.find(':', c1 + 1);
    return run_all_reduce(std::stoll(preset.substr(10, c1 - 10)),
                          std::stoi(preset.substr(c1 + 1, c2 - c1 - 1)),
                          c2 == std::string::npos ? 0 : std::stoi(preset.substr(c2 + 1)));
  }
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const arch::Arch a = arch::load(preset);
  if (std::getenv("LPU_BENCH_PRINT")) {  // the program, for inspection
    std::printf("%s", program(a).c_str());
    return 0;
  }
  const isa::Program p = isa::parse_lpuasm(program(a), preset + ".lpuasm");
  units::SimOptions o;
  o.mode = units::Mode::kTiming;
  const auto r = system::run(p, {}, o);
  std::uint64_t vectors = 0;
  for (const auto& l : r.report.at("links").as_array())
    vectors += l.as_object().at("vectors").as_uint64();
  std::printf("chips %d links %zu vectors %llu issues %llu cycles %llu wall %.6f errors %zu\n",
              a.system.chips, a.system.links.size(), static_cast<unsigned long long>(vectors),
              static_cast<unsigned long long>(r.issues), static_cast<unsigned long long>(r.cycles),
              r.wall_seconds, r.errors.size());
  if (!r.errors.empty()) std::printf("first error: %s\n", r.errors[0].to_string().c_str());
  return r.errors.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2) return run_case(argv[1]);
  std::printf(
      "Systems of tsp-v1 chips in timing mode: %d vectors through each chip's VXM, %d "
      "vectors each way on every link; one process per case, one thread.\n\n",
      kLocalRows, kLinkVectors);
  std::printf("%-8s %5s %6s %9s %10s %9s %9s %12s %10s %9s\n", "system", "chips", "links",
              "link vec", "issues", "cycles", "wall s", "issues/s", "cycles/s", "peak MiB");
  for (const char* preset : {"tsp-v1", "node8", "rack72"}) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      dup2(fds[1], 1);
      execl(argv[0], argv[0], preset, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
      out.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    struct rusage ru {};
    wait4(pid, &status, 0, &ru);
    int chips = 0;
    std::size_t links = 0, errors = 0;
    unsigned long long vectors = 0, issues = 0, cycles = 0;
    double wall = 0;
    if (std::sscanf(out.c_str(),
                    "chips %d links %zu vectors %llu issues %llu cycles %llu wall %lf "
                    "errors %zu",
                    &chips, &links, &vectors, &issues, &cycles, &wall, &errors) != 7 ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::printf("%-8s failed: %s\n", preset, out.c_str());
      continue;
    }
    std::printf("%-8s %5d %6zu %9llu %10llu %9llu %9.3f %10.2f M %8.2f M %9.1f\n", preset, chips,
                links, vectors, issues, cycles, wall, static_cast<double>(issues) / wall / 1e6,
                static_cast<double>(cycles) / wall / 1e6,
                static_cast<double>(ru.ru_maxrss) / 1024.0);
  }
  // Collectives: all-gather on node8 (1 MiB and 2.5 MiB gathered; a port's queue holds up to
  // 1024 rows' sends and receives until instruction fetch is planned here).
  std::printf("\n");
  // All-reduce: 1 MiB (824 rows of 320 fp32, a multiple of 8 for the reduce-scatter), and more
  // in buckets of that size. Every vector is its own send and receive, so 64 MiB needs more
  // instruction text than tsp-v1's 2 instruction slices per hemisphere hold: it runs with 12.
  for (const char* rows : {"allgather:410", "allgather:1024", "allreduce:824:1", "allreduce:824:4",
                           "allreduce:824:16", "allreduce:824:64", "allreduce:824:64:12"}) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      execl(argv[0], argv[0], rows, static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
  }
  return 0;
}
