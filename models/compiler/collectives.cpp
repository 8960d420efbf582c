#include "compiler/collectives.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "arch/queues.h"
#include "common/diagnostics.h"
#include "func/c2c_link.h"
#include "isa/asm_text.h"

namespace lpu::compiler {

// Every chip's rows leave its slice w0 on one westward stream, a row per frame time; all of its
// ports sit at the SXM's position, so every port sends the same stream value in the same cycle,
// and slice w1 (downstream) keeps the chip's own copy. Every peer receives on its port to that
// chip in the same cycle and writes the rows eastward into a slice of its own per source.
isa::Program all_gather(const arch::Arch& a, std::int64_t rows) {
  const int n = a.system.chips;
  const std::string where = "all-gather";
  if (a.system.topology != "fully_connected" || n < 2)
    throw InputError(where, "needs a fully connected system of 2 chips or more (system \"" +
                                a.system.topology + "\", " + std::to_string(n) + " chip(s))");
  if (a.chip.streams.hop_cycles != 1)
    throw InputError(where, "assumes one cycle per stream hop (chip.streams.hop_cycles)");
  const auto queues = arch::chip_queues(a.chip);
  auto q = [&](const std::string& name) -> const arch::Queue& {
    for (const auto& x : queues)
      if (x.name == name) return x;
    throw InputError(where, "the chip has no queue " + name);
  };
  const func::LinkTiming lt(a);
  const std::uint64_t f = lt.frame_cycles();
  const int usable = a.chip.mem.slices_per_hemisphere - a.chip.icu.instruction_slices;
  if (rows < 1 || rows > a.chip.mem.depth)
    throw InputError(where, std::to_string(rows) + " rows per chip do not fit a MEM slice (depth " +
                                std::to_string(a.chip.mem.depth) + ")");
  if (usable < 2 || usable < n - 1)
    throw InputError(where, std::to_string(n) + " chips need " + std::to_string(n - 1) +
                                " MEM slices per hemisphere for the rows received; the chip has " +
                                std::to_string(usable));
  // Per chip: its peers in order and the port to each.
  std::map<int, std::vector<std::pair<int, int>>> peers;  // chip -> (peer, port)
  for (const auto& l : a.system.links) {
    peers[l.a.chip].push_back({l.b.chip, l.a.port});
    peers[l.b.chip].push_back({l.a.chip, l.b.port});
  }
  const int lanes = a.chip.lanes();
  const int pos_w0 = q("mem.w0").position, pos_w1 = q("mem.w1").position;
  int pos_port = -1;
  for (int c = 0; c < n; ++c)
    for (const auto& [p, port] : peers[c]) {
      const arch::Queue& pq = q("c2c.l" + std::to_string(port));
      if (pq.hemisphere != arch::Hemisphere::kWest || (pos_port >= 0 && pq.position != pos_port))
        throw InputError(where, "chip " + std::to_string(c) + " port " + std::to_string(port) +
                                    " is not at the west SXM with the others (all-gather sends "
                                    "one stream value on every port at once)");
      pos_port = pq.position;
    }
  // The east slice that keeps the rows from chip `src` on chip `dst`.
  auto east_slice = [&](int dst, int src) { return src < dst ? src : src - 1; };

  // A port's queue sends and receives (a single instruction each, interleaved): a send lands
  // in the cycles t0 - 1 + r f, a receive in t0 + f + latency + r f; they must differ.
  if ((lt.latency + 1) % f == 0)
    throw InputError(where, "the link's latency makes every receive fall on a send's cycle");
  if (rows > static_cast<std::int64_t>(a.chip.icu.queue_depth / 2))
    throw InputError(where, std::to_string(rows) + " rows per chip need " +
                                std::to_string(2 * rows) + " entries in a port's queue; it holds " +
                                std::to_string(a.chip.icu.queue_depth) +
                                " (chip.icu.queue_depth; no instruction fetch here yet)");
  const std::uint64_t t0 = 16 + static_cast<std::uint64_t>(pos_w0 - pos_port);  // first send
  // A write dispatched in cycle d completes in d + d_skew + d_func + superlanes - 1 (the skew
  // across superlanes); the run ends the cycle after.
  const auto& wl = a.chip.latency.at("mem_write");
  const auto tail = static_cast<std::uint64_t>(wl.d_skew + wl.d_func + a.chip.superlanes - 1 + 1);
  const auto step = std::to_string(f);
  const std::string more = rows > 1 ? "repeat " + std::to_string(rows - 1) + ", " + step : "";
  const auto [preset, sets] = arch::nearest_preset(a);
  std::string s = ".lpuasm 1\n.arch " + preset + "\n";
  for (const auto& x : sets)
    s += ".set " + x + "\n";
  std::uint64_t end = 0;
  std::string body;
  for (int c = 0; c < n; ++c) {
    body += ".tensor x" + std::to_string(c) + " role=input chip=" + std::to_string(c) +
            " dtype=i8 shape=[" + std::to_string(rows) + "," + std::to_string(lanes) +
            "] layout=rows at=mem.w0:0x0000+" + std::to_string(rows) + "\n";
    body += ".tensor y" + std::to_string(c) + " role=output chip=" + std::to_string(c) +
            " dtype=i8 shape=[" + std::to_string(rows * n) + "," + std::to_string(lanes) +
            "] layout=rows at=";
    for (int j = 0; j < n; ++j)
      body += std::string(j ? "," : "") +
              (j == c ? std::string("mem.w1") : "mem.e" + std::to_string(east_slice(c, j))) +
              ":0x0000+" + std::to_string(rows);
    body += "\n";
  }
  auto entry = [&](std::uint64_t at, const std::string& text) {
    std::string e = "  @" + std::to_string(at) + " " + text + "\n";
    if (!more.empty()) e += "  @" + std::to_string(at + f) + " " + more + "\n";
    return e;
  };
  for (int c = 0; c < n; ++c) {
    body += ".chip " + std::to_string(c) + "\n";
    // Read row r onto s0w in time to pass the ports in cycle t0 + r f; w1 writes the own copy.
    const std::uint64_t read = t0 - 2 - static_cast<std::uint64_t>(pos_w0 - pos_port);
    body += ".queue mem.w0\n" + entry(read, "read 0, s0w");
    const std::uint64_t own = read + 2 + static_cast<std::uint64_t>(pos_w0 - pos_w1) - 1;
    body += ".queue mem.w1\n" + entry(own, "write 0, s0w");
    end = std::max(end, own + static_cast<std::uint64_t>(rows - 1) * f + tail);
    // Every port sends the passing value; receives come in from each peer in the same cycles.
    const std::uint64_t arrival = lt.arrival(t0);
    std::vector<std::pair<int, std::string>> port_code;  // by port number
    std::map<int, std::string> slice_code;               // east slice -> its writes
    for (std::size_t k = 0; k < peers[c].size(); ++k) {
      const auto [peer, port] = peers[c][k];
      const std::string stream = "s" + std::to_string(1 + k) + "e";
      std::vector<std::pair<std::uint64_t, std::string>> pe;
      for (std::int64_t r = 0; r < rows; ++r) {
        pe.push_back({t0 - 1 + static_cast<std::uint64_t>(r) * f, "send s0w"});
        pe.push_back({arrival + static_cast<std::uint64_t>(r) * f, "recv " + stream});
      }
      std::sort(pe.begin(), pe.end());
      std::string code;
      for (const auto& [at, text] : pe)
        code += "  @" + std::to_string(at) + " " + text + "\n";
      port_code.push_back({port, code});
      const int es = east_slice(c, peer);
      const std::uint64_t w =
          arrival + 2 +
          static_cast<std::uint64_t>(q("mem.e" + std::to_string(es)).position - pos_port) - 1;
      slice_code[es] = entry(w, "write 0, " + stream);
      end = std::max(end, w + static_cast<std::uint64_t>(rows - 1) * f + tail);
    }
    std::sort(port_code.begin(), port_code.end());
    for (const auto& [port, code] : port_code)
      body += ".queue c2c.l" + std::to_string(port) + "\n" + code;
    for (const auto& [es, code] : slice_code)
      body += ".queue mem.e" + std::to_string(es) + "\n" + code;
  }
  s += ".predicted " + std::to_string(end) + "\n";
  return isa::parse_lpuasm(s + body, where + ".lpuasm");
}

}  // namespace lpu::compiler
