// lpu arch list | show NAME|FILE [--set path=value ...] [--summary] | diff A B
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "arch/arch.h"
#include "arch/json_doc.h"
#include "arch/queues.h"
#include "tools/commands.h"

namespace po = boost::program_options;
namespace json = boost::json;

namespace lpu::tools {

namespace {

const char* kArchUsage =
    "usage: lpu arch list\n"
    "       lpu arch show NAME|FILE [--set PATH=VALUE ...] [--summary]\n"
    "       lpu arch diff NAME|FILE NAME|FILE\n"
    "\n"
    "list     the presets built into the tool\n"
    "show     validate a description and print it resolved, as JSON with its content hash and\n"
    "         derived figures (SRAM, peak TOPS, bandwidths); --summary prints a short table "
    "instead\n"
    "diff     the key paths whose values differ between two descriptions\n"
    "\n"
    "A FILE may name \"base\": a preset or another file to inherit from. --set takes a dotted key\n"
    "path (array elements as [i]) and a JSON value, e.g. --set chip.mem.depth=16384.\n";

void print_summary(const arch::Arch& a) {
  const auto d = arch::derive(a);
  const auto& c = a.chip;
  std::printf("%s — %s\n", a.name.c_str(), a.description.c_str());
  std::printf("  hash                 %s\n", a.hash_hex().c_str());
  std::printf("  clock                %.0f MHz\n", c.clock_mhz);
  std::printf("  lanes                %d (%d superlanes x %d), vector %d B\n", d.lanes,
              c.superlanes, c.lanes_per_superlane, d.vector_bytes);
  std::printf("  streams              %d eastward + %d westward per lane\n",
              c.streams.per_direction, c.streams.per_direction);
  std::printf("  MEM                  %d slices x %d x %d B = %.1f MiB, %d banks, SECDED %d+%d\n",
              d.mem_slices, c.mem.depth, d.vector_bytes, d.sram_mib, c.mem.banks,
              c.mem.ecc_data_bits, c.mem.ecc_check_bits);
  std::printf(
      "  MXM                  %d planes of %d x %d: peak %.1f int8 TOPS, %.1f fp16 TFLOPS\n",
      c.mxm.planes, c.mxm.rows, c.mxm.cols, d.peak_int8_tops, d.peak_fp16_tflops);
  std::printf("  VXM                  %d ALUs per lane (%d large)\n", c.vxm.alus(),
              static_cast<int>(c.vxm.large_alus.size()));
  std::printf("  SXM                  %d units, %d transposers each\n", c.sxm.units,
              c.sxm.transposers_per_unit);
  std::printf("  C2C                  %d links x %d lanes x %.2f Gb/s = %.1f GB/s bidirectional\n",
              c.c2c.links, c.c2c.lanes_per_link, c.c2c.lane_rate_gbps, d.c2c_bidir_gbytes_per_s);
  std::printf("  SRAM bandwidth       %.1f TB/s\n", d.sram_bandwidth_tbps);
  std::printf("  instruction queues   %d\n", d.queues);
  std::printf("  system               %s, %d chip(s), %zu link(s)\n", a.system.topology.c_str(),
              a.system.chips, a.system.links.size());
  std::printf("  assumptions          %zu (see \"assumptions\" in the JSON)\n",
              a.assumptions.size());
}

}  // namespace

int cmd_arch(const Args& args) {
  if (args.empty()) throw UsageError{"expected a subcommand: list, show or diff"};
  const std::string sub = args[0];
  if (sub == "--help" || sub == "-h") {
    std::cout << kArchUsage;
    return kOk;
  }
  po::options_description opts;
  std::vector<std::string> sets, positional;
  bool summary = false, help = false;
  opts.add_options()("help,h", po::bool_switch(&help))("set", po::value(&sets)->composing())(
      "summary", po::bool_switch(&summary))("input", po::value(&positional));
  po::positional_options_description pos;
  pos.add("input", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(Args(args.begin() + 1, args.end()))
                .options(opts)
                .positional(pos)
                .run(),
            vm);
  po::notify(vm);
  if (help) {
    std::cout << kArchUsage;
    return kOk;
  }

  if (sub == "list") {
    if (!positional.empty()) throw UsageError{"'list' takes no arguments"};
    for (const auto& name : arch::preset_names()) {
      const auto a = arch::load(name);
      const auto d = arch::derive(a);
      std::printf("%-8s %s  (%.1f MiB SRAM, %.0f int8 TOPS)\n", name.c_str(), a.hash_hex().c_str(),
                  d.sram_mib, d.peak_int8_tops);
    }
    return kOk;
  }
  if (sub == "show") {
    if (positional.size() != 1) throw UsageError{"'show' takes one preset name or file"};
    const auto a = arch::load(positional[0], sets);
    if (summary) {
      print_summary(a);
      return kOk;
    }
    json::object out;
    out["hash"] = "fnv1a64:" + a.hash_hex();
    out["derived"] = arch::derived_json(a);
    out["description"] = a.resolved;
    json::array links;
    for (const auto& l : a.system.links)
      links.push_back(
          json::array{json::array{l.a.chip, l.a.port}, json::array{l.b.chip, l.b.port}});
    out["resolved_links"] = links;
    std::cout << arch::pretty_json(out) << "\n";
    return kOk;
  }
  if (sub == "diff") {
    if (positional.size() != 2) throw UsageError{"'diff' takes two descriptions"};
    const auto a = arch::load(positional[0], sets);
    const auto b = arch::load(positional[1], sets);
    const auto keys = arch::diff(a.resolved, b.resolved);
    for (const auto& k : keys)
      std::cout << k << "\n";
    return keys.empty() ? kOk : kFailed;
  }
  throw UsageError{"unknown subcommand '" + sub + "' (list, show, diff)"};
}

}  // namespace lpu::tools
