#include "system/run.h"

#include <chrono>
#include <map>
#include <memory>

#include "arch/arch.h"
#include "arch/queues.h"
#include "cosim/cosim.h"
#include "isa/layout.h"
#include "isa/lpubin.h"
#include "units/c2c.h"
#include "units/chip.h"

namespace lpu::system {

namespace json = boost::json;

namespace {

double seconds_of(double cycles, const arch::Chip& ch) {
  return cycles / (ch.clock_mhz * 1e6);
}

// The energy estimate (brief B9): each issue costs chip.energy_pj of its instruction's latency
// class, each hop of a value on the streams chip.energy_pj.stream_hop. Grouped by unit (the
// class's prefix: icu, mem, vxm, mxm, sxm, c2c) and "streams".
struct Energy {
  std::map<std::string, std::pair<std::uint64_t, double>> by_class;  // issues, pJ
  std::uint64_t hops = 0;
  double hop_pj = 0;
  void add(const Energy& o) {
    for (const auto& [k, v] : o.by_class) {
      by_class[k].first += v.first;
      by_class[k].second += v.second;
    }
    hops += o.hops;
    hop_pj += o.hop_pj;
  }
  json::object json(double seconds) const {
    std::map<std::string, double> by_unit;
    json::object classes;
    double total = hop_pj;
    for (const auto& [k, v] : by_class) {
      if (!v.first) continue;
      by_unit[k.substr(0, k.find('_'))] += v.second;
      classes[k] = json::object{{"issues", v.first}, {"uj", v.second * 1e-6}};
      total += v.second;
    }
    by_unit["streams"] += hop_pj;
    json::object units;
    for (const auto& [u, pj] : by_unit)
      units[u] = pj * 1e-6;
    return json::object{{"total_uj", total * 1e-6},
                        {"average_watts", seconds > 0 ? total * 1e-12 / seconds : 0.0},
                        {"by_unit_uj", units},
                        {"by_class", classes},
                        {"stream_hops", hops}};
  }
};

Energy energy_of(const std::vector<std::uint64_t>& class_issues, std::uint64_t hops,
                 const arch::Chip& ch) {
  Energy e;
  const auto& classes = arch::latency_classes();
  for (std::size_t i = 0; i < classes.size() && i < class_issues.size(); ++i)
    e.by_class[classes[i]] = {class_issues[i],
                              static_cast<double>(class_issues[i]) * ch.energy_pj.at(classes[i])};
  e.hops = hops;
  e.hop_pj = static_cast<double>(hops) * ch.energy_pj.at("stream_hop");
  return e;
}

// One plane's MACs and MAC utilisation over `cycles`.
json::object plane_json(const units::Mxm& m, const arch::Chip& ch, double cycles) {
  const double slots = cycles * static_cast<double>(ch.mxm.rows) * ch.mxm.cols;
  const double u8 = static_cast<double>(m.macs_int8()) / slots;
  const double u16 = static_cast<double>(m.macs_fp16()) / (slots * ch.mxm.fp16_rate);
  return json::object{{"plane", m.index()},         {"macs_int8", m.macs_int8()},
                      {"macs_fp16", m.macs_fp16()}, {"mac_utilisation", u8 + u16},
                      {"mac_utilisation_int8", u8}, {"mac_utilisation_fp16", u16}};
}

}  // namespace

using isa::DType;

namespace {

std::string shape_text(const std::vector<std::uint64_t>& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i)
    t += (i ? "," : "") + std::to_string(s[i]);
  return t + "]";
}

void check_inputs(const isa::Program& p, const std::map<std::string, TensorValue>& inputs) {
  for (const auto& t : p.tensors) {
    if (t.role != isa::TensorRole::kInput) continue;
    auto it = inputs.find(t.name);
    if (it == inputs.end())
      throw InputError("--input " + t.name, "input tensor '" + t.name + "' (" +
                                                isa::to_string(t.dtype) + " " +
                                                shape_text(t.shape) + ") is not given");
    if (it->second.dtype != t.dtype)
      throw InputError("--input " + t.name, "input tensor '" + t.name + "' is " +
                                                isa::to_string(t.dtype) + " but the file holds " +
                                                isa::to_string(it->second.dtype));
    if (it->second.shape != t.shape)
      throw InputError("--input " + t.name, "input tensor '" + t.name + "' has shape " +
                                                shape_text(t.shape) + " but the file holds " +
                                                shape_text(it->second.shape));
  }
  for (const auto& [name, v] : inputs) {
    bool known = false;
    for (const auto& t : p.tensors)
      known = known || (t.name == name && t.role == isa::TensorRole::kInput);
    if (!known) {
      std::vector<std::string> names;
      for (const auto& t : p.tensors)
        if (t.role == isa::TensorRole::kInput) names.push_back(t.name);
      const auto hint = did_you_mean(name, names);
      throw InputError("--input " + name, "the program has no input tensor '" + name + "'" +
                                              (hint.empty() ? "" : "; " + hint));
    }
  }
}

// A unit's co-simulation figures in the report.
json::object cosim_json(units::UnitMode mode, const units::CosimStats& s) {
  json::object nc;
  for (const auto& [op, n] : s.not_covered)
    nc[op] = n;
  return json::object{{"mode", units::to_string(mode)}, {"rtl_vectors", s.rtl_vectors},
                      {"rtl_cycles", s.rtl_cycles},     {"matched", s.matched},
                      {"mismatched", s.mismatched},     {"not_covered", nc}};
}

void add(units::CosimStats* total, const units::CosimStats& s) {
  total->rtl_vectors += s.rtl_vectors;
  total->rtl_cycles += s.rtl_cycles;
  total->matched += s.matched;
  total->mismatched += s.mismatched;
  for (const auto& [op, n] : s.not_covered)
    total->not_covered[op] += n;
}

}  // namespace

RunOutcome run(const isa::Program& p, const std::map<std::string, TensorValue>& inputs,
               const units::SimOptions& options) {
  check_inputs(p, inputs);
  RunOutcome out;
  out.predicted = p.predicted_cycles;
  const arch::Arch& arch = p.arch;
  const int lanes = arch.chip.lanes();
  const auto vb = static_cast<std::size_t>(lanes);

  // With links between chips, a chip may run ahead of another by less than the shortest time a
  // vector takes over a link, so that every frame is sent before it is received.
  units::SimOptions opts = options;
  const func::LinkTiming link_timing(arch);
  if (!arch.system.links.empty())
    opts.quantum_ns =
        std::min(opts.quantum_ns,
                 static_cast<double>(link_timing.arrival(0) > 1 ? link_timing.arrival(0) - 1 : 1) *
                     link_timing.cycle_ns);
  // Co-simulation: the RTL blocks' transactors run in SystemC time, so the chips synchronise
  // every cycle (an RTL result is ready before the cycle after its issue; docs/cosim.md).
  if (opts.cosim.any()) {
    if (opts.mode != units::Mode::kFunctional)
      throw InputError("--unit", "RTL co-simulation needs functional mode (values)");
    if (opts.cosim.c2c != units::UnitMode::kTlm && opts.clock_drift_ppm > 0)
      throw InputError("--unit c2c",
                       "the C2C link layer's co-simulation runs on one time base: "
                       "--clock-drift must be 0");
    cosim::check_arch(arch, opts.cosim, "--unit");
    opts.cosim.factory = cosim::make_factory(arch, opts.cosim);
    opts.quantum_ns = std::min(opts.quantum_ns, 1000.0 / arch.chip.clock_mhz);
  } else if (!opts.cosim.waves.empty()) {
    throw InputError("--waves " + opts.cosim.waves,
                     "waveforms are of RTL blocks: run a unit as rtl or lockstep (--unit vxm=rtl)");
  }
  tlm_utils::tlm_quantumkeeper::set_global_quantum(
      sc_core::sc_time(opts.quantum_ns, sc_core::SC_NS));
  std::vector<std::unique_ptr<units::Chip>> chips;
  for (std::uint32_t id = 0; id < static_cast<std::uint32_t>(arch.system.chips); ++id) {
    const isa::ChipProgram* cp = nullptr;
    for (const auto& c : p.chips)
      if (c.chip == id) cp = &c;
    if (!cp && arch.system.chips > 1) continue;  // chips without code stay idle
    chips.push_back(std::make_unique<units::Chip>(("chip" + std::to_string(id)).c_str(), arch, id,
                                                  cp, opts, &out.errors));
  }
  auto chip_of = [&](std::uint32_t id) -> units::Chip* {
    for (auto& c : chips)
      if (c->context().chip_id == id) return c.get();
    return nullptr;
  };
  // The links of the system, attached to the ports of the chips that run code.
  std::vector<std::unique_ptr<units::C2cChannel>> links;
  for (std::size_t i = 0; i < arch.system.links.size(); ++i) {
    const arch::Link& l = arch.system.links[i];
    links.push_back(std::make_unique<units::C2cChannel>(
        arch, static_cast<int>(i), units::LinkEnd{static_cast<std::uint32_t>(l.a.chip), l.a.port},
        units::LinkEnd{static_cast<std::uint32_t>(l.b.chip), l.b.port}, opts.link_bit_error_rate,
        opts.link_seed));
    for (int side = 0; side < 2; ++side) {
      const arch::LinkEnd& e = side == 0 ? l.a : l.b;
      if (units::Chip* c = chip_of(static_cast<std::uint32_t>(e.chip)))
        for (const auto& port : c->c2c())
          if (port->link() == e.port) port->attach(links.back().get(), side);
    }
  }

  // Program load: images, then inputs, through the host DMA path.
  // The program's images are one DMA job per chip (a scatter-gather list).
  for (auto& c : chips)
    c->host().begin_job();
  for (const auto& im : p.images) {
    units::Chip* c = chip_of(im.chip);
    if (!c) continue;
    c->host().write(c->mem_index(im.slice), static_cast<std::uint64_t>(im.addr) * vb,
                    im.bytes.data(), im.bytes.size());
  }
  for (auto& c : chips)
    c->host().end_job();
  for (const auto& t : p.tensors) {
    if (t.role != isa::TensorRole::kInput) continue;
    units::Chip* c = chip_of(t.chip);
    if (!c) continue;
    // Byte plane b of row r is one vector (isa/layout.h); the program was validated, so the
    // layout is consistent.
    isa::RowsLayout l;
    isa::rows_layout(t, lanes, &l);
    const auto& v = inputs.at(t.name);
    std::vector<std::uint8_t> buf(vb, 0);
    c->host().begin_job();  // one DMA job per tensor
    for (std::uint64_t vr = 0; vr < l.vector_rows(); ++vr)
      for (int b = 0; b < l.bytes; ++b) {
        const std::uint64_t r = vr % l.rows, c0 = vr / l.rows * vb;
        std::fill(buf.begin(), buf.end(), 0);
        for (std::uint64_t col = c0; col < l.cols && col < c0 + vb; ++col)
          buf[col - c0] = v.bytes[(r * l.cols + col) * static_cast<std::uint64_t>(l.bytes) +
                                  static_cast<std::uint64_t>(b)];
        const isa::VectorAt at = l.at(vr, b);
        c->host().write(c->mem_index(at.slice), static_cast<std::uint64_t>(at.addr) * vb,
                        buf.data(), vb);
      }
    c->host().end_job();
  }

  for (const auto& f : options.flips) {
    const Where where = "--flip " + std::to_string(f.chip) + ":" + f.slice + ":" +
                        std::to_string(f.addr) + ":" + std::to_string(f.bit);
    units::Chip* c = chip_of(f.chip);
    const auto q = arch::find_queue(arch::chip_queues(arch.chip), f.slice);
    if (!c || !q || q->unit != arch::QueueUnit::kMem)
      throw InputError(where, "no MEM slice '" + f.slice + "' on chip " + std::to_string(f.chip));
    units::MemSlice* slice = c->mem_slice(q->id);
    auto& sram = slice->sram();
    if (f.addr >= static_cast<std::uint32_t>(sram.depth()) || f.bit < 0 ||
        f.bit >= sram.word_bits())
      throw InputError(where, "address or bit out of range (depth " + std::to_string(sram.depth()) +
                                  ", " + std::to_string(sram.word_bits()) +
                                  " bits per word with check bits)");
    slice->flip_bit(f.addr, f.bit);
  }

  const auto t0 = std::chrono::steady_clock::now();
  sc_core::sc_start();
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bool stopped = false;
  for (auto& c : chips)
    stopped = stopped || c->icu().stopped();
  std::string waves_error;
  if (opts.cosim.factory && !opts.cosim.factory->finish(&waves_error))
    throw InputError("--waves " + opts.cosim.waves, waves_error);
  if (!stopped)  // (a run ended at an error leaves frames in flight)
    for (const auto& l : links)
      l->report_unreceived(out.errors);

  // Outputs.
  for (const auto& t : p.tensors) {
    if (t.role != isa::TensorRole::kOutput) continue;
    units::Chip* c = chip_of(t.chip);
    if (!c) continue;
    isa::RowsLayout l;
    isa::rows_layout(t, lanes, &l);
    TensorValue v;
    v.dtype = t.dtype;
    v.shape = t.shape;
    v.bytes.assign(l.rows * l.cols * static_cast<std::uint64_t>(l.bytes), 0);
    std::vector<std::uint8_t> buf(vb);
    c->host().begin_job();
    for (std::uint64_t vr = 0; vr < l.vector_rows(); ++vr)
      for (int b = 0; b < l.bytes; ++b) {
        const std::uint64_t r = vr % l.rows, c0 = vr / l.rows * vb;
        const isa::VectorAt at = l.at(vr, b);
        c->host().read(c->mem_index(at.slice), static_cast<std::uint64_t>(at.addr) * vb, buf.data(),
                       vb);
        for (std::uint64_t col = c0; col < l.cols && col < c0 + vb; ++col)
          v.bytes[(r * l.cols + col) * static_cast<std::uint64_t>(l.bytes) +
                  static_cast<std::uint64_t>(b)] = buf[col - c0];
      }
    c->host().end_job();
    out.outputs[t.name] = std::move(v);
  }

  // Figures.
  json::object units_json;
  json::array chips_json;
  // The units with RTL, in the report's order: their mode and the run's total.
  struct CosimUnit {
    const char* name;
    units::UnitMode mode;
    units::CosimStats total;
  };
  CosimUnit cosim_units[] = {{"vxm", opts.cosim.vxm, {}},
                             {"mem", opts.cosim.mem, {}},
                             {"sxm", opts.cosim.sxm, {}},
                             {"c2c", opts.cosim.c2c, {}},
                             {"mxm", opts.cosim.mxm, {}}};
  std::uint64_t macs = 0, macs_fp16 = 0, ecc_c = 0, ecc_u = 0;
  Energy energy_total;
  for (auto& c : chips) {
    out.cycles = std::max(out.cycles, c->icu().end_cycle());
    out.instructions += c->icu().instructions();
    out.issues += c->icu().issues();
    out.stopped = out.stopped || c->icu().stopped();
    out.host_seconds += c->host().seconds();
  }
  const double cycles = static_cast<double>(std::max<std::uint64_t>(out.cycles, 1));
  const auto& ch = arch.chip;
  for (auto& c : chips) {
    json::object cj;
    cj["chip"] = c->context().chip_id;
    cj["cycles"] = c->icu().end_cycle();
    const units::ChipClock& clk = c->context().clock;
    cj["clock"] = json::object{
        {"drift_ppm", clk.ppm}, {"deskews", clk.deskews}, {"max_skew_cycles", clk.worst}};
    std::uint64_t mem_busy = 0;
    json::array banks;
    for (const auto& m : c->mem()) {
      mem_busy += m->stats().busy_cycles;
      ecc_c += m->ecc_corrected;
      ecc_u += m->ecc_uncorrectable;
      banks.push_back(json::object{{"slice", m->basename()},
                                   {"reads", json::array{m->reads[0], m->reads[1]}},
                                   {"writes", json::array{m->writes[0], m->writes[1]}}});
    }
    std::uint64_t mxm_busy = 0, sxm_busy = 0, c2c_busy = 0, chip_macs = 0;
    json::array planes;
    for (const auto& m : c->mxm()) {
      mxm_busy += m->stats().busy_cycles;
      chip_macs += m->macs();
      macs_fp16 += m->macs_fp16();
      planes.push_back(plane_json(*m, ch, cycles));
    }
    for (const auto& s : c->sxm())
      sxm_busy += s->stats().busy_cycles;
    for (const auto& l : c->c2c())
      c2c_busy += l->stats().busy_cycles;
    macs += chip_macs;
    auto unit = [&](std::uint64_t busy, int queues) {
      return json::object{
          {"busy_cycles", busy},
          {"queues", queues},
          {"utilisation", queues ? static_cast<double>(busy) / (cycles * queues) : 0.0}};
    };
    cj["mem"] = unit(mem_busy, ch.mem_slices());
    cj["vxm"] = unit(c->vxm().stats().busy_cycles, ch.vxm.alus());
    cj["mxm"] = unit(mxm_busy, 3 * ch.mxm.planes);
    cj["sxm"] =
        unit(sxm_busy, static_cast<int>(c->sxm().size()) * (4 + ch.sxm.transposers_per_unit));
    cj["c2c"] = unit(c2c_busy, ch.c2c.links);
    cj["mem_banks"] = banks;
    cj["mxm_macs"] = chip_macs;
    cj["mxm_planes"] = planes;
    const Energy e = energy_of(c->icu().class_issues(), c->stream_hops(), ch);
    cj["energy"] = e.json(seconds_of(cycles, ch));
    energy_total.add(e);
    cj["vxm_elements"] = c->vxm().elements;
    // Each unit with RTL: its figures on this chip (summed over its modules) and in the total.
    json::object cosim_chip;
    auto unit_cosim = [&](CosimUnit& u, const auto& modules) {
      if (u.mode == units::UnitMode::kTlm) return;
      units::CosimStats chip_stats;
      for (const auto& m : modules)
        if (const units::CosimStats* st = m->cosim()) add(&chip_stats, *st);
      cosim_chip[u.name] = cosim_json(u.mode, chip_stats);
      add(&u.total, chip_stats);
    };
    unit_cosim(cosim_units[0], std::vector<const units::Vxm*>{&c->vxm()});
    unit_cosim(cosim_units[1], c->mem());
    unit_cosim(cosim_units[2], c->sxm());
    unit_cosim(cosim_units[3], c->c2c());
    unit_cosim(cosim_units[4], c->mxm());
    if (!cosim_chip.empty()) cj["cosim"] = cosim_chip;
    chips_json.push_back(cj);
  }
  const double seconds = cycles / (ch.clock_mhz * 1e6);
  const double peak = arch::derive(arch).peak_int8_tops * static_cast<double>(chips.size());
  json::array errors;
  for (const auto& e : out.errors) {
    errors.push_back(json::object{{"kind", e.kind},
                                  {"chip", e.chip},
                                  {"unit", e.unit},
                                  {"queue", e.queue},
                                  {"instruction", e.instruction},
                                  {"step", e.repetition},
                                  {"cycle", e.cycle},
                                  {"stream", e.stream},
                                  {"position", e.position},
                                  {"message", e.message}});
  }
  json::object& r = out.report;
  r["arch"] = json::object{{"name", arch.name}, {"hash", "fnv1a64:" + arch.hash_hex()}};
  r["program_hash"] = "fnv1a64:" + arch::hex64(isa::content_hash(p));
  r["mode"] = options.mode == units::Mode::kFunctional ? "functional" : "timing";
  r["cycles"] = out.cycles;
  r["predicted_cycles"] = out.predicted ? json::value(*out.predicted) : json::value(nullptr);
  r["cycles_match_prediction"] =
      out.predicted ? json::value(*out.predicted == out.cycles) : json::value(nullptr);
  r["on_chip_seconds"] = seconds;
  r["host_dma_seconds"] = out.host_seconds;
  r["wall_seconds"] = out.wall_seconds;
  r["instructions"] = out.instructions;
  r["issues"] = out.issues;
  r["instructions_per_second"] =
      out.wall_seconds > 0 ? static_cast<double>(out.issues) / out.wall_seconds : 0.0;
  r["simulated_cycles_per_second"] = out.wall_seconds > 0 ? cycles / out.wall_seconds : 0.0;
  // MAC utilisation: the array's MACs over what its peak could do in the run's cycles, int8 and
  // fp16 apart (an fp16 MAC takes 1 / fp16_rate of a cycle's int8 MAC slots).
  const double slots = cycles * static_cast<double>(ch.mxm.rows) * ch.mxm.cols * ch.mxm.planes *
                       static_cast<double>(chips.size());
  const double u8 = static_cast<double>(macs - macs_fp16) / slots;
  const double u16 = static_cast<double>(macs_fp16) / (slots * ch.mxm.fp16_rate);
  r["mxm"] = json::object{
      {"macs", macs},
      {"macs_int8", macs - macs_fp16},
      {"macs_fp16", macs_fp16},
      {"mac_utilisation", u8 + u16},
      {"mac_utilisation_int8", u8},
      {"mac_utilisation_fp16", u16},
      {"achieved_int8_tops", 2.0 * static_cast<double>(macs - macs_fp16) / seconds / 1e12},
      {"achieved_fp16_tflops", 2.0 * static_cast<double>(macs_fp16) / seconds / 1e12},
      {"peak_int8_tops", peak},
      {"peak_fp16_tflops", peak * ch.mxm.fp16_rate}};
  r["energy"] = energy_total.json(seconds);
  r["ecc"] = json::object{{"corrected", ecc_c}, {"uncorrectable", ecc_u}};
  r["chips"] = chips_json;
  json::array links_json;
  for (const auto& l : links)
    for (int d = 0; d < 2; ++d) {
      const auto& dir = l->direction(d);
      links_json.push_back(json::object{
          {"link", l->index()},
          {"from", json::object{{"chip", l->end(d).chip}, {"port", l->end(d).port}}},
          {"to", json::object{{"chip", l->end(1 - d).chip}, {"port", l->end(1 - d).port}}},
          {"vectors", dir.vectors},
          {"bytes", dir.bytes},
          {"busy_fraction", cycles > 0 ? static_cast<double>(dir.busy_cycles) / cycles : 0.0},
          {"bits_flipped", dir.bits_flipped},
          {"crc_errors", dir.crc_errors}});
    }
  r["links"] = links_json;
  r["schedule_errors"] = errors;
  if (opts.cosim.any()) {
    json::object c;
    for (const CosimUnit& u : cosim_units)
      if (u.mode != units::UnitMode::kTlm) c[u.name] = cosim_json(u.mode, u.total);
    r["cosim"] = c;
  }
  if (opts.cosim.factory && !opts.cosim.factory->waves_written().empty())
    r["waves"] = opts.cosim.factory->waves_written();
  r["stopped_at_error"] = out.stopped;
  return out;
}

}  // namespace lpu::system

// libsystemc refers to sc_main (its own main() would call it). Programs that use this library
// have their own main() and start SystemC from system::run, so sc_main is never called; it lives
// here so that every executable that runs a simulation links.
extern "C" int sc_main(int, char*[]) {
  return 3;
}
