#include "cosim/waves.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gtkwave/fstapi.h"

namespace lpu::cosim {

Waves::Waves(std::string path, sc_core::sc_time from, sc_core::sc_time to)
    : path_(std::move(path)), from_(from.to_double()), to_(to.to_double()) {
  vcd_ = std::filesystem::path(path_).extension() == ".vcd";
  fst_path_ = vcd_ ? path_ + ".fst" : path_;
  sc_core::sc_get_curr_simcontext()->add_trace_file(this);
  // The file's time is SystemC's, in its resolution (1 ps unless set otherwise).
  spTrace()->set_time_resolution(sc_core::sc_get_time_resolution().to_string());
  spTrace()->set_time_unit(sc_core::sc_get_time_resolution().to_string());
}

Waves::~Waves() {
  std::string ignored;
  finish(&ignored);
}

void Waves::add(std::function<void(VerilatedFstC*)> trace, std::function<std::string()> layout) {
  blocks_.push_back(std::move(trace));
  layouts_.push_back(std::move(layout));
}

std::string gtkw_group(const std::string& title, const std::string& scope,
                       const std::vector<std::string>& signals) {
  // Flags: 0x800200 opens a group, 0x1000200 closes it; 0x28 binary and 0x22 hexadecimal, both
  // right-justified.
  std::string s = "@800200\n-" + title + "\n";
  std::string flags;
  for (const auto& sig : signals) {
    const std::string f = sig.find('[') == std::string::npos ? "@28" : "@22";
    if (f != flags) s += f + "\n";
    flags = f;
    s += scope + "." + sig + "\n";
  }
  return s + "@1000200\n-" + title + "\n";
}

bool Waves::write_layout(std::string* error) const {
  const std::string gtkw = std::filesystem::path(path_).replace_extension(".gtkw").string();
  std::ofstream f(gtkw, std::ios::trunc);
  if (!f) {
    *error = gtkw + ": cannot write it";
    return false;
  }
  f << "[*] GTKWave save file of an lpu run: the RTL blocks' signals, grouped\n"
    << "[dumpfile] \"" << std::filesystem::absolute(path_).string() << "\"\n"
    << "[timestart] " << static_cast<std::uint64_t>(first_ < 0 ? 0 : first_) << "\n"
    << "[size] 1600 900\n[pos] -1 -1\n[sst_width] 240\n[signals_width] 360\n"
    << "[sst_expanded] 1\n";
  for (const auto& l : layouts_)
    f << l();
  f.close();
  if (!f) *error = gtkw + ": write failed";
  return static_cast<bool>(f);
}

void Waves::cycle(bool delta_cycle) {
  if (delta_cycle || finished_) return;
  const double now = sc_core::sc_time_stamp().to_double();
  if (now < from_ || now >= to_) return;
  if (!opened_) {
    // Verilator's blocks are traced once the kernel has elaborated them, before the file opens.
    for (auto& b : blocks_)
      b(this);
    const auto dir = std::filesystem::path(fst_path_).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    open(fst_path_.c_str());
    opened_ = true;
  }
  dump(static_cast<std::uint64_t>(now));
  if (first_ < 0) first_ = now;
  ++dumps_;
}

bool Waves::finish(std::string* error) {
  if (finished_) return true;
  finished_ = true;
  sc_core::sc_get_curr_simcontext()->remove_trace_file(this);
  if (!opened_) return true;
  close();
  if (!write_layout(error)) return false;
  if (!vcd_) return true;
  if (!fst_to_vcd(fst_path_, path_, error)) return false;
  std::filesystem::remove(fst_path_);
  return true;
}

bool fst_to_vcd(const std::string& fst, const std::string& vcd, std::string* error) {
  void* in = fstReaderOpen(fst.c_str());
  if (!in) {
    *error = fst + ": cannot read it as FST";
    return false;
  }
  FILE* out = std::fopen(vcd.c_str(), "w");
  if (!out) {
    fstReaderClose(in);
    *error = vcd + ": cannot write it";
    return false;
  }
  fstReaderProcessHier(in, out);  // the header: date, version, timescale, scopes and variables
  fstReaderSetFacProcessMaskAll(in);
  fstReaderIterBlocks(in, nullptr, nullptr, out);  // every value change, in time order
  fstReaderClose(in);
  const bool ok = std::fclose(out) == 0;
  if (!ok) *error = vcd + ": write failed";
  return ok;
}

}  // namespace lpu::cosim
