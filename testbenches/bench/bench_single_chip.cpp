// Benchmark of the single-chip simulator (printed figures, not a test).
//
//   bench_single_chip                 runs every case in a child process (SystemC elaborates once
//                                     per process) and prints a table, then the MXM arithmetic
//                                     against oneDNN's int8 GEMM on the same products
//   bench_single_chip CASE MODE       one case: CASE vxm|mxm, MODE functional|timing; prints JSON
//
// Cases, both on tsp-v1:
//   vxm  MEM + VXM streaming: 8 west slices read a vector each cycle, 4 VXM ALUs add pairs of
//        them, 4 east slices write the sums, for `blocks` x 8192 cycles (16 issues per cycle).
//   mxm  MXM streaming: all four planes install weights, then stream activation vectors (one per
//        cycle per plane) and take the products with ACC, written back to MEM.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.h>

#include "arch/queues.h"
#include "func/mxm.h"
#include "isa/asm_text.h"
#include "system/run.h"

extern char** environ;

using namespace lpu;

namespace {

long pos(const std::vector<arch::Queue>& qs, const std::string& name) {
  return static_cast<long>(arch::find_queue(qs, name)->position);
}

// 8 reads, 4 adds, 4 writes per cycle, for blocks x 8192 cycles.
std::string vxm_program(int blocks) {
  const auto a = arch::load("tsp-v1");
  const auto qs = arch::chip_queues(a.chip);
  const long pv = pos(qs, "vxm.alu0");
  std::string s = ".lpuasm 1\n.arch tsp-v1\n";
  const long n = 8192;
  for (int k = 0; k < 8; ++k) {
    const std::string q = "mem.w" + std::to_string(k);
    s += ".queue " + q + "\n";
    for (int b = 0; b < blocks; ++b) {
      const long t = 100 + b * (n + 16);  // the VXM reads row i of block b in cycle t + i
      const long d = t - (pv - pos(qs, q)) - 2;
      s += "  @" + std::to_string(d) + " read 0x0000, s" + std::to_string(k) + "e\n";
      s += "  @" + std::to_string(d + 1) + " repeat " + std::to_string(n - 1) + ", 1\n";
    }
  }
  for (int j = 0; j < 4; ++j) {
    s += ".queue vxm.alu" + std::to_string(j) + "\n";
    for (int b = 0; b < blocks; ++b) {
      const long t = 100 + b * (n + 16);
      s += "  @" + std::to_string(t - 1) + " add.i8.sat s" + std::to_string(2 * j) + "e, s" +
           std::to_string(2 * j + 1) + "e, s" + std::to_string(8 + j) + "e\n";
      s += "  @" + std::to_string(t) + " repeat " + std::to_string(n - 1) + ", 1\n";
    }
  }
  for (int j = 0; j < 4; ++j) {
    const std::string q = "mem.e" + std::to_string(j);
    s += ".queue " + q + "\n";
    for (int b = 0; b < blocks; ++b) {
      const long t = 100 + b * (n + 16);
      const long d = t + 2 + (pos(qs, q) - pv) - 1;
      s += "  @" + std::to_string(d) + " write 0x0000, s" + std::to_string(8 + j) + "e\n";
      s += "  @" + std::to_string(d + 1) + " repeat " + std::to_string(n - 1) + ", 1\n";
    }
  }
  return s;
}

// Each plane: 20 LW from 16 slices, iw.buf, then `vectors` activations in blocks of 64 (ABC n=64,
// ACC only n=64), the sums written back by 4 slices.
std::string mxm_program(int vectors) {
  const auto a = arch::load("tsp-v1");
  const auto qs = arch::chip_queues(a.chip);
  std::string s = ".lpuasm 1\n.arch tsp-v1\n";
  std::map<std::string, std::string> code;  // queue -> lines
  const int block = 64;
  for (int p = 0; p < 4; ++p) {
    const bool west = p < 2;
    const std::string side = west ? "w" : "e";
    const std::string pq = "mxm.p" + std::to_string(p);
    const long pm = pos(qs, pq + ".wt");
    const int base = (p % 2) * 22;  // the two planes of a side use different slices
    auto slice = [&](int i) { return "mem." + side + std::to_string(base + i); };
    const char dir = west ? 'w' : 'e';   // toward the plane
    const char back = west ? 'e' : 'w';  // away from it
    const long lb = 100;
    for (int k = 0; k < 16; ++k) {
      const long d = lb - std::labs(pos(qs, slice(k)) - pm) - 2;
      code[slice(k)] +=
          "  @" + std::to_string(d) + " read 0x0000, s" + std::to_string(k) + dir + "\n";
      code[slice(k)] += "  @" + std::to_string(d + 1) + " repeat 19, 1\n";
    }
    code[pq + ".wt"] += "  @" + std::to_string(lb - 1) + " lw.i8 s0" + dir + ", 0, 0\n  @" +
                        std::to_string(lb) + " repeat 19, 1\n  @" + std::to_string(lb + 20) +
                        " iw.buf 0\n";
    const long a0 = lb + 40;
    for (int v = 0; v < vectors; v += block) {
      const long t = a0 + v;
      // activations from slice 16 (address wraps within the slice), results to slices 17..20
      const long d = t - std::labs(pos(qs, slice(16)) - pm) - 2;
      code[slice(16)] += "  @" + std::to_string(d) + " read 0x0000, s16" + dir + "\n  @" +
                         std::to_string(d + 1) + " repeat " + std::to_string(block - 1) + ", 1\n";
      code[pq + ".abc"] +=
          "  @" + std::to_string(t - 1) + " abc.i8 s16" + dir + ", " + std::to_string(block) + "\n";
      // The outer plane's results pass the inner plane, which writes its own on s0..s3: use s4..s7.
      const int rs = 4 * (p % 2);
      code[pq + ".acc"] += "  @" + std::to_string(t + 1) + " acc.i32.only s" + std::to_string(rs) +
                           back + ", " + std::to_string(block) + "\n";
      for (int b = 0; b < 4; ++b) {
        const long r = t + 1 + 24 + std::labs(pos(qs, slice(17 + b)) - pm) - 1;
        code[slice(17 + b)] += "  @" + std::to_string(r) + " write 0x0000, s" +
                               std::to_string(rs + b) + back + "\n  @" + std::to_string(r + 1) +
                               " repeat " + std::to_string(block - 1) + ", 1\n";
      }
    }
  }
  for (const auto& [q, c] : code)
    s += ".queue " + q + "\n" + c;
  return s;
}

int run_case(const std::string& which, const std::string& mode) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const std::string text = which == "vxm" ? vxm_program(8) : mxm_program(4096);
  isa::Program p = isa::parse_lpuasm(text, which + ".lpuasm");
  // Real data in every slice the program reads, so that reads touch real memory (a slice never
  // written is all zero pages, which would flatter the figures).
  {
    const auto qs = arch::chip_queues(p.arch.chip);
    std::mt19937 rng(3);
    std::vector<std::string> slices;
    if (which == "vxm")
      for (int k = 0; k < 8; ++k)
        slices.push_back("mem.w" + std::to_string(k));
    else
      for (const char* s : {"w", "e"})
        for (int base : {0, 22})
          for (int k = 0; k <= 16; ++k)
            slices.push_back(std::string("mem.") + s + std::to_string(base + k));
    // The VXM case reads whole slices; the MXM case only the first 64 addresses.
    const auto depth =
        which == "vxm" ? static_cast<std::size_t>(p.arch.chip.mem.depth) : std::size_t{64};
    for (const auto& name : slices) {
      isa::Image im;
      im.slice = arch::find_queue(qs, name)->id;
      im.bytes.resize(depth * static_cast<std::size_t>(p.arch.chip.vector_bytes()));
      for (auto& b : im.bytes)
        b = static_cast<std::uint8_t>(rng());
      p.images.push_back(std::move(im));
    }
  }
  units::SimOptions o;
  o.mode = mode == "timing" ? units::Mode::kTiming : units::Mode::kFunctional;
  const auto r = system::run(p, {}, o);
  if (!r.errors.empty()) {
    std::fprintf(stderr, "%s\n", r.errors[0].to_string().c_str());
    return 1;
  }
  std::printf(
      "{\"case\": \"%s\", \"mode\": \"%s\", \"issues\": %llu, \"cycles\": %llu, \"wall\": %.4f}\n",
      which.c_str(), mode.c_str(), static_cast<unsigned long long>(r.issues),
      static_cast<unsigned long long>(r.cycles), r.wall_seconds);
  return 0;
}

struct Child {
  std::string out;
  long maxrss_kib = 0;
  int status = 0;
};

Child spawn_self(const char* self, const std::string& which, const std::string& mode) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<std::string> args = {self, which, mode};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, self, &fa, nullptr, argv.data(), environ) != 0) std::abort();
  close(fds[1]);
  Child c;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0)
    c.out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  struct rusage ru {};
  wait4(pid, &c.status, 0, &ru);
  c.maxrss_kib = ru.ru_maxrss;
  return c;
}

double field(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\": ");
  return at == std::string::npos ? 0.0 : std::atof(json.c_str() + at + key.size() + 4);
}

// The MXM arithmetic alone (func::MxmPlane, no simulator) against oneDNN's s8s8s32 GEMM on the
// same products: `vectors` activation vectors through a 320 x 320 int8 plane, one thread each.
void gemm_comparison(int vectors) {
  const int n = 320;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<std::int8_t> w(static_cast<std::size_t>(n) * n),
      x(static_cast<std::size_t>(vectors) * n);
  for (auto& v : w)
    v = static_cast<std::int8_t>(d(rng));
  for (auto& v : x)
    v = static_cast<std::int8_t>(d(rng));

  func::MxmPlane plane(n, n, n, vectors, true);
  std::vector<std::vector<std::uint8_t>> rows(16, std::vector<std::uint8_t>(n));
  for (int r0 = 0; r0 < n; r0 += 16) {
    std::vector<const std::uint8_t*> pr;
    for (int j = 0; j < 16; ++j) {
      std::memcpy(rows[j].data(), &w[static_cast<std::size_t>(r0 + j) * n], n);
      pr.push_back(rows[j].data());
    }
    plane.load(isa::DType::kI8, r0, 0, pr.data());
  }
  plane.install_from_buffer(0);
  std::vector<std::vector<std::uint8_t>> out(4, std::vector<std::uint8_t>(n));
  std::uint8_t* op[4] = {out[0].data(), out[1].data(), out[2].data(), out[3].data()};
  // As the simulator drives it: blocks of activation vectors (one ABC n), then their ACC steps.
  std::map<int, double> model;
  for (int blk : {64, 320}) {
    // Each block size twice, timing the second: the first pays for oneDNN's kernel generation.
    for (int pass = 0; pass < 2; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int v0 = 0; v0 < vectors; v0 += blk) {
        const int end = std::min(vectors, v0 + blk);
        for (int v = v0; v < end; ++v) {
          const std::uint8_t* xp =
              reinterpret_cast<const std::uint8_t*>(&x[static_cast<std::size_t>(v) * n]);
          plane.activate(isa::DType::kI8, &xp);
        }
        for (int v = v0; v < end; ++v)
          plane.accumulate(isa::DType::kI32, func::MxmPlane::AccMode::kOnly, v - v0, op);
      }
      model[blk] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }

  std::vector<std::int32_t> c(static_cast<std::size_t>(vectors) * n);
  const std::int32_t co = 0;
  dnnl_gemm_s8s8s32('N', 'N', 'F', vectors, n, n, 1.0f, x.data(), n, 0, w.data(), n, 0, 0.0f,
                    c.data(), n, &co);  // warm-up
  const auto t1 = std::chrono::steady_clock::now();
  dnnl_gemm_s8s8s32('N', 'N', 'F', vectors, n, n, 1.0f, x.data(), n, 0, w.data(), n, 0, 0.0f,
                    c.data(), n, &co);
  const double gemm = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  // The same products cut the way the simulator must compute them: one GEMM per ABC block (an
  // ACC needs its sums before the next block's activations arrive).
  std::map<int, double> blocked;
  for (const auto& [blk, unused] : model) {
    (void)unused;
    const auto tb = std::chrono::steady_clock::now();
    for (int v0 = 0; v0 < vectors; v0 += blk) {
      const int m = std::min(blk, vectors - v0);
      dnnl_gemm_s8s8s32('N', 'N', 'F', m, n, n, 1.0f, &x[static_cast<std::size_t>(v0) * n], n, 0,
                        w.data(), n, 0, 0.0f, &c[static_cast<std::size_t>(v0) * n], n, &co);
    }
    blocked[blk] = std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
  }
  // The two must agree, or the comparison means nothing: the last vector's sums.
  for (int col = 0; col < n; ++col) {
    const std::int32_t got =
        static_cast<std::int32_t>(op[0][col] | (op[1][col] << 8) | (op[2][col] << 16) |
                                  (static_cast<std::uint32_t>(op[3][col]) << 24));
    if (got != c[static_cast<std::size_t>(vectors - 1) * n + static_cast<std::size_t>(col)]) {
      std::printf("MISMATCH between the model and oneDNN at column %d\n", col);
      break;
    }
  }
  const double macs = static_cast<double>(vectors) * n * n;
  std::printf(
      "\nMXM arithmetic, %d vectors through a 320 x 320 int8 plane (%.0f M MACs), one thread:\n",
      vectors, macs / 1e6);
  for (const auto& [blk, t] : model)
    std::printf(
        "  model, ABC blocks of %3d   %8.4f s  %8.2f GMAC/s  (%.2f of one GEMM, %.2f of oneDNN in "
        "the same "
        "blocks; target >= 0.5)\n",
        blk, t, macs / t / 1e9, gemm / t, blocked[blk] / t);
  for (const auto& [blk, t] : blocked)
    std::printf("  oneDNN, GEMMs of %3d rows  %8.4f s  %8.2f GMAC/s\n", blk, t, macs / t / 1e9);
  std::printf("  oneDNN s8s8s32, one GEMM   %8.4f s  %8.2f GMAC/s\n", gemm, macs / gemm / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3) return run_case(argv[1], argv[2]);
  // One thread for oneDNN, like the simulator.
  setenv("OMP_NUM_THREADS", "1", 1);
  // Each case runs `kRuns` times, each in a fresh process; the table gives the median wall time
  // (and the best, which a shared machine's noise disturbs least).
  constexpr int kRuns = 5;
  std::printf(
      "Single-chip simulator on tsp-v1, each case %d times, each run in its own process, one "
      "thread.\nRates from the median run; the best run in brackets.\n\n",
      kRuns);
  std::printf("%-5s %-11s %10s %8s %9s %23s %10s %9s\n", "case", "mode", "issues", "cycles",
              "wall s", "issues/s (best)", "cycles/s", "peak MiB");
  std::map<std::string, double> wall;
  for (const char* which : {"vxm", "mxm"})
    for (const char* mode : {"functional", "timing"}) {
      std::vector<double> walls;
      double issues = 0, cycles = 0, rss = 0;
      for (int run = 0; run < kRuns; ++run) {
        const Child c = spawn_self(argv[0], which, mode);
        if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) break;
        issues = field(c.out, "issues"), cycles = field(c.out, "cycles");
        walls.push_back(field(c.out, "wall"));
        rss = std::max(rss, static_cast<double>(c.maxrss_kib) / 1024.0);
      }
      if (walls.size() != kRuns) {
        std::printf("%-5s %-11s failed\n", which, mode);
        continue;
      }
      std::sort(walls.begin(), walls.end());
      const double w = walls[kRuns / 2], best = walls.front();
      wall[std::string(which) + mode] = w;
      std::printf("%-5s %-11s %10.0f %8.0f %9.4f %11.2f M (%6.2f M) %8.2f M %9.1f\n", which, mode,
                  issues, cycles, w, issues / w / 1e6, issues / best / 1e6, cycles / w / 1e6, rss);
    }
  if (wall["mxmtiming"] > 0)
    std::printf("\ntiming mode speed-up on the MXM case: %.1fx (target >= 5x)\n",
                wall["mxmfunctional"] / wall["mxmtiming"]);
  std::printf("functional issues/s on the VXM+MEM case target: >= 10 M\n");
  gemm_comparison(4096);
  return 0;
}
