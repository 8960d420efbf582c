// lpu run PROG [--arch ...] [--input NAME=FILE.npy ...] [--output-dir DIR] [--mode ...] ...
#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "arch/json_doc.h"
#include "isa/asm_text.h"
#include "isa/lpubin.h"
#include "system/run.h"
#include "tools/commands.h"
#include "tools/npy.h"

namespace po = boost::program_options;

namespace lpu::tools {

namespace {
const char* kRunUsage =
    "usage: lpu run PROG.lpubin|PROG.lpuasm [options]\n"
    "Simulates the program on the architecture it embeds: loads its MEM images and the inputs\n"
    "through the host DMA path, runs every queue of every chip with exact cycle timing, writes\n"
    "the output tensors and a report. Exit 0 on success, 1 when the run found schedule errors,\n"
    "2 for bad usage or input.\n"
    "\n"
    "  --input NAME=FILE.npy   bind an input tensor (repeat for each input)\n"
    "  --output-dir DIR        write every output tensor as DIR/NAME.npy (default: .)\n"
    "  --mode functional|timing  timing computes no values; cycles are identical (default "
    "functional)\n"
    "  --report FILE.json      write the JSON report\n"
    "  --max-cycles N          stop with an error when the run passes cycle N\n"
    "  --on-error stop|report  stop at the first schedule error, or report them all (default "
    "stop)\n"
    "  --arch NAME|FILE [--set PATH=VALUE ...]  must match the program's architecture\n"
    "  --flip [CHIP:]SLICE:ADDR:BIT  invert a stored bit after loading (SECDED fault injection;\n"
    "                          bits number the word's data bits, then its check bits)\n"
    "  --link-ber RATE         inject bit errors on every C2C link direction at RATE per bit\n"
    "                          (0..1); frames whose CRC fails are counted and reported\n"
    "  --link-seed N           seed of the injected link errors (default 1)\n"
    "  --clock-drift PPM       each chip's clock runs off the time base by a fixed rate drawn\n"
    "                          from [-PPM, +PPM] (deskew realigns it; default 0: exact)\n"
    "  --drift-seed N          seed of the chips' drift rates (default 1)\n"
    "  --unit UNIT=MODE        how a unit computes: tlm (the SystemC model, default), rtl (its\n"
    "                          Verilated RTL behind a transactor) or lockstep (both, every\n"
    "                          output vector compared; the first mismatch is reported with\n"
    "                          instruction, cycle and lane). Units with RTL so far: vxm,\n"
    "                          mem, sxm, c2c, mxm (repeat the option for each)\n"
    "  --waves FILE.fst|FILE.vcd  dump the RTL blocks' signals (a bare name goes under\n"
    "                          waveforms/), with FILE's name .gtkw: a GTKWave layout of them\n"
    "  --waves-window FROM:TO  only cycles FROM..TO-1 (TO may be empty: to the end)\n"
    "  --plant-fault           use the RTL built with its planted fault (proves the checker)\n"
    "  --quiet                 no summary on standard output\n";
}  // namespace

void parse_cosim(const std::vector<std::string>& units, const std::string& waves,
                 const std::string& window, bool plant_fault, units::CosimOptions* c) {
  for (const auto& u : units) {
    const auto eq = u.find('=');
    const std::string name = u.substr(0, eq),
                      mode = eq == std::string::npos ? "" : u.substr(eq + 1);
    units::UnitMode m;
    if (mode == "tlm")
      m = units::UnitMode::kTlm;
    else if (mode == "rtl")
      m = units::UnitMode::kRtl;
    else if (mode == "lockstep")
      m = units::UnitMode::kLockstep;
    else
      throw UsageError{"--unit takes UNIT=tlm|rtl|lockstep, e.g. vxm=lockstep; got '" + u + "'"};
    if (name == "vxm")
      c->vxm = m;
    else if (name == "mem")
      c->mem = m;
    else if (name == "sxm")
      c->sxm = m;
    else if (name == "c2c")
      c->c2c = m;
    else if (name == "mxm")
      c->mxm = m;
    else
      throw UsageError{"--unit " + u + ": no unit '" + name + "' (vxm, mxm, sxm, mem, c2c)"};
  }
  c->plant_fault = plant_fault;
  if (plant_fault && !c->any())
    throw UsageError{"--plant-fault needs a unit run as rtl or lockstep (--unit vxm=lockstep)"};
  if (!window.empty()) {
    const auto colon = window.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("colon");
      std::size_t used = 0;
      const std::string from = window.substr(0, colon), to = window.substr(colon + 1);
      c->waves_from = std::stoull(from, &used);
      if (used != from.size()) throw std::invalid_argument("from");
      if (!to.empty()) {
        c->waves_to = std::stoull(to, &used);
        if (used != to.size()) throw std::invalid_argument("to");
      }
    } catch (const std::exception&) {
      throw UsageError{"--waves-window takes FROM:TO in cycles (TO may be empty); got '" + window +
                       "'"};
    }
    if (c->waves_to <= c->waves_from)
      throw UsageError{"--waves-window " + window + ": TO must be after FROM"};
    if (waves.empty()) throw UsageError{"--waves-window needs --waves FILE"};
  }
  if (!waves.empty()) {
    std::filesystem::path w(waves);
    if (!w.has_parent_path()) w = std::filesystem::path("waveforms") / w;
    c->waves = w.string();
  }
}

void print_mxm_and_energy(const boost::json::object& report) {
  const auto& m = report.at("mxm").as_object();
  if (m.at("macs").to_number<double>() > 0)
    std::printf(
        "  MXM MACs          %.1f%% of peak (int8 %.1f%%, fp16 %.1f%%): %.1f int8 TOPS, %.1f "
        "fp16 TFLOPS\n",
        100.0 * m.at("mac_utilisation").to_number<double>(),
        100.0 * m.at("mac_utilisation_int8").to_number<double>(),
        100.0 * m.at("mac_utilisation_fp16").to_number<double>(),
        m.at("achieved_int8_tops").to_number<double>(),
        m.at("achieved_fp16_tflops").to_number<double>());
  const auto& e = report.at("energy").as_object();
  std::string parts;
  for (const auto& [unit, uj] : e.at("by_unit_uj").as_object()) {
    if (uj.to_number<double>() <= 0) continue;
    char b[64];
    std::snprintf(b, sizeof b, "%s%s %.3g", parts.empty() ? "" : ", ", std::string(unit).c_str(),
                  uj.to_number<double>());
    parts += b;
  }
  std::printf("  energy            %.4g uJ (%.3g W average): %s\n",
              e.at("total_uj").to_number<double>(), e.at("average_watts").to_number<double>(),
              parts.c_str());
}

void print_cosim(const boost::json::object& report) {
  const auto* cosim = report.if_contains("cosim");
  if (!cosim) return;
  for (const auto& [unit, v] : cosim->as_object()) {
    const auto& s = v.as_object();
    const std::string mode(s.at("mode").as_string());
    const auto n = [&](const char* k) {
      return static_cast<unsigned long long>(s.at(k).to_number<std::uint64_t>());
    };
    std::string label = std::string(unit) + " (" + mode + ")";
    if (mode == "lockstep")
      std::printf("  %-17s matched %llu vectors, %llu mismatched (%llu RTL cycles)\n",
                  label.c_str(), n("matched"), n("mismatched"), n("rtl_cycles"));
    else
      std::printf("  %-17s %llu vectors by the RTL (%llu RTL cycles)\n", label.c_str(),
                  n("rtl_vectors"), n("rtl_cycles"));
    const auto& nc = s.at("not_covered").as_object();
    if (!nc.empty()) {
      std::string list;
      for (const auto& [op, k] : nc)
        list += (list.empty() ? "" : ", ") + std::string(op) + " x" +
                std::to_string(k.to_number<std::uint64_t>());
      std::printf("  %-17s by the model (the RTL lacks them): %s\n", "", list.c_str());
    }
  }
  if (const auto* w = report.if_contains("waves")) {
    const std::string path(w->as_string());
    std::printf("  waves             %s, GTKWave layout %s\n", path.c_str(),
                std::filesystem::path(path).replace_extension(".gtkw").string().c_str());
  }
}

bool cosim_ok(const boost::json::object& report) {
  const auto* cosim = report.if_contains("cosim");
  if (!cosim) return true;
  for (const auto& [unit, v] : cosim->as_object())
    if (v.as_object().at("mismatched").to_number<std::uint64_t>()) return false;
  return true;
}

int cmd_run(const Args& args) {
  std::string prog, output_dir = ".", mode = "functional", report, on_error = "stop", arch_name;
  std::vector<std::string> inputs, sets, flips, unit_modes;
  std::string waves, waves_window;
  bool plant_fault = false;
  std::uint64_t max_cycles = 0, link_seed = 1, drift_seed = 1;
  double link_ber = 0, drift = 0;
  bool help = false, quiet = false;
  po::options_description opts;
  opts.add_options()("help,h", po::bool_switch(&help))("input", po::value(&inputs)->composing())(
      "output-dir", po::value(&output_dir))("mode", po::value(&mode))("report", po::value(&report))(
      "max-cycles", po::value(&max_cycles))("on-error", po::value(&on_error))(
      "arch", po::value(&arch_name))("set", po::value(&sets)->composing())(
      "quiet", po::bool_switch(&quiet))("link-ber", po::value(&link_ber))(
      "link-seed", po::value(&link_seed))("clock-drift", po::value(&drift))(
      "drift-seed", po::value(&drift_seed))("flip", po::value(&flips)->composing())(
      "unit", po::value(&unit_modes)->composing())("waves", po::value(&waves))(
      "waves-window", po::value(&waves_window))("plant-fault", po::bool_switch(&plant_fault))(
      "program", po::value(&prog));
  po::positional_options_description pos;
  pos.add("program", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (help) {
    std::cout << kRunUsage;
    return kOk;
  }
  if (prog.empty()) throw UsageError{"missing program\n" + std::string(kRunUsage)};
  units::SimOptions o;
  if (!(link_ber >= 0 && link_ber <= 1))
    throw UsageError{"--link-ber must be a rate in 0..1, got " + std::to_string(link_ber)};
  o.link_bit_error_rate = link_ber;
  o.link_seed = link_seed;
  if (!(drift >= 0 && drift <= 1e5))
    throw UsageError{"--clock-drift must be 0 .. 100000 ppm, got " + std::to_string(drift)};
  o.clock_drift_ppm = drift;
  o.drift_seed = drift_seed;
  if (mode == "functional")
    o.mode = units::Mode::kFunctional;
  else if (mode == "timing")
    o.mode = units::Mode::kTiming;
  else
    throw UsageError{"--mode must be functional or timing, got '" + mode + "'"};
  if (on_error == "stop")
    o.on_error = units::OnError::kStop;
  else if (on_error == "report")
    o.on_error = units::OnError::kReport;
  else
    throw UsageError{"--on-error must be stop or report, got '" + on_error + "'"};
  o.max_cycles = max_cycles;
  for (const auto& f : flips) {
    std::vector<std::string> parts;
    for (std::size_t at = 0;;) {
      const auto colon = f.find(':', at);
      parts.push_back(f.substr(at, colon == std::string::npos ? std::string::npos : colon - at));
      if (colon == std::string::npos) break;
      at = colon + 1;
    }
    if (parts.size() == 3) parts.insert(parts.begin(), "0");
    units::SimOptions::BitFlip b;
    try {
      if (parts.size() != 4) throw std::invalid_argument("parts");
      std::size_t used = 0;
      b.chip = static_cast<std::uint32_t>(std::stoul(parts[0], &used));
      if (used != parts[0].size()) throw std::invalid_argument("chip");
      b.slice = parts[1];
      b.addr = static_cast<std::uint32_t>(std::stoul(parts[2], &used, 0));
      if (used != parts[2].size()) throw std::invalid_argument("addr");
      b.bit = std::stoi(parts[3], &used);
      if (used != parts[3].size()) throw std::invalid_argument("bit");
    } catch (const std::exception&) {
      throw UsageError{"--flip takes [CHIP:]SLICE:ADDR:BIT, e.g. mem.w0:0x10:5; got '" + f + "'"};
    }
    o.flips.push_back(b);
  }
  if (!sets.empty() && arch_name.empty()) throw UsageError{"--set needs --arch"};
  parse_cosim(unit_modes, waves, waves_window, plant_fault, &o.cosim);

  const bool text = prog.size() > 7 && prog.compare(prog.size() - 7, 7, ".lpuasm") == 0;
  const isa::Program p = text ? isa::load_lpuasm(prog) : isa::load_lpubin(prog);
  require_arch(p, arch_name, sets, prog);

  std::map<std::string, system::TensorValue> values;
  for (const auto& in : inputs) {
    const auto eq = in.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError{"--input takes NAME=FILE.npy, got '" + in + "'"};
    const std::string name = in.substr(0, eq);
    if (values.count(name))
      throw InputError("--input " + name, "input tensor '" + name + "' given twice");
    NpyArray a = read_npy(in.substr(eq + 1));
    values[name] = system::TensorValue{a.dtype, a.shape, std::move(a.bytes)};
  }

  const system::RunOutcome r = system::run(p, values, o);

  if (o.mode == units::Mode::kFunctional && !r.outputs.empty()) {
    std::filesystem::create_directories(output_dir);
    for (const auto& [name, v] : r.outputs)
      write_npy((std::filesystem::path(output_dir) / (name + ".npy")).string(),
                NpyArray{v.dtype, v.shape, v.bytes});
  }
  if (!report.empty()) {
    std::ofstream f(report, std::ios::trunc);
    if (!f) throw InputError(report, "cannot write file");
    f << arch::pretty_json(r.report) << "\n";
  }
  if (!quiet) {
    std::printf("lpu run: %s on %s (%s), %s mode\n", prog.c_str(), p.arch.name.c_str(),
                p.arch.hash_hex().c_str(), mode.c_str());
    std::printf("  cycles            %llu", static_cast<unsigned long long>(r.cycles));
    if (r.predicted)
      std::printf(" (predicted %llu: %s)", static_cast<unsigned long long>(*r.predicted),
                  *r.predicted == r.cycles ? "match" : "MISMATCH");
    std::printf("\n  on-chip time      %.3f us at %.0f MHz; host DMA %.3f us\n",
                static_cast<double>(r.cycles) / p.arch.chip.clock_mhz, p.arch.chip.clock_mhz,
                r.host_seconds * 1e6);
    std::printf("  instructions      %llu (%llu issues) in %.3f s wall, %.2f M issues/s\n",
                static_cast<unsigned long long>(r.instructions),
                static_cast<unsigned long long>(r.issues), r.wall_seconds,
                r.wall_seconds > 0 ? static_cast<double>(r.issues) / r.wall_seconds / 1e6 : 0.0);
    if (!r.outputs.empty() && o.mode == units::Mode::kFunctional)
      std::printf("  outputs           %zu tensor(s) in %s\n", r.outputs.size(),
                  output_dir.c_str());
    const auto& ecc = r.report.at("ecc").as_object();
    if (ecc.at("corrected").as_uint64() || ecc.at("uncorrectable").as_uint64())
      std::printf("  ECC               %llu corrected, %llu uncorrectable chunk(s)\n",
                  static_cast<unsigned long long>(ecc.at("corrected").as_uint64()),
                  static_cast<unsigned long long>(ecc.at("uncorrectable").as_uint64()));
    print_links(r.report);
    print_mxm_and_energy(r.report);
    print_cosim(r.report);
    std::printf("  schedule errors   %zu%s\n", r.errors.size(),
                r.stopped ? " (stopped at the first)" : "");
  }
  for (const auto& e : r.errors)
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.to_string().c_str());
  return r.errors.empty() ? kOk : kFailed;
}

void print_links(const boost::json::object& report, std::size_t rows) {
  const auto* links = report.if_contains("links");
  if (!links || !links->is_array() || links->as_array().empty()) return;
  struct Dir {
    double busy;
    std::uint64_t bytes, vectors, crc;
    std::string name;
  };
  std::vector<Dir> used;
  std::uint64_t bytes = 0, crc = 0, flipped = 0;
  std::size_t total = 0;
  for (const auto& v : links->as_array()) {
    const auto& l = v.as_object();
    ++total;
    const auto b = l.at("bytes").to_number<std::uint64_t>();
    bytes += b;
    crc += l.at("crc_errors").to_number<std::uint64_t>();
    flipped += l.at("bits_flipped").to_number<std::uint64_t>();
    if (!b) continue;
    const auto& from = l.at("from").as_object();
    const auto& to = l.at("to").as_object();
    used.push_back({l.at("busy_fraction").to_number<double>(), b,
                    l.at("vectors").to_number<std::uint64_t>(),
                    l.at("crc_errors").to_number<std::uint64_t>(),
                    "link " + std::to_string(l.at("link").to_number<int>()) + " chip " +
                        std::to_string(from.at("chip").to_number<int>()) + ":" +
                        std::to_string(from.at("port").to_number<int>()) + " -> chip " +
                        std::to_string(to.at("chip").to_number<int>()) + ":" +
                        std::to_string(to.at("port").to_number<int>())});
  }
  std::printf(
      "  links             %zu of %zu directions used, %llu bytes in all, %llu CRC "
      "error(s), %llu bit(s) flipped\n",
      used.size(), total, static_cast<unsigned long long>(bytes),
      static_cast<unsigned long long>(crc), static_cast<unsigned long long>(flipped));
  std::stable_sort(used.begin(), used.end(),
                   [](const Dir& a, const Dir& b) { return a.busy > b.busy; });
  for (std::size_t i = 0; i < used.size() && i < rows; ++i)
    std::printf("    %-34s %6llu vectors %9llu bytes  busy %5.1f%%  CRC errors %llu\n",
                used[i].name.c_str(), static_cast<unsigned long long>(used[i].vectors),
                static_cast<unsigned long long>(used[i].bytes), 100.0 * used[i].busy,
                static_cast<unsigned long long>(used[i].crc));
  if (used.size() > rows) std::printf("    (%zu more)\n", used.size() - rows);
}

}  // namespace lpu::tools
