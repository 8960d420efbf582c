#include "arch/arch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

#include "arch/presets.h"
#include "arch/queues.h"

namespace lpu::arch {

namespace json = boost::json;

const char* to_string(SliceKind k) {
  switch (k) {
    case SliceKind::kMxm:
      return "MXM";
    case SliceKind::kSxm:
      return "SXM";
    case SliceKind::kMem:
      return "MEM";
    case SliceKind::kVxm:
      return "VXM";
  }
  return "?";
}

const std::vector<std::string>& latency_classes() {
  static const std::vector<std::string> k = {
      "icu",         "icu_sync",      "mem_read",     "mem_write",     "mem_gather",
      "vxm_simple",  "vxm_mul",       "vxm_convert",  "vxm_transcend", "mxm_weights",
      "mxm_install", "mxm_clear",     "mxm_activate", "mxm_result",    "sxm_shift",
      "sxm_permute", "sxm_transpose", "c2c_send",     "c2c_receive"};
  return k;
}

const std::vector<std::string>& energy_keys() {
  static const std::vector<std::string> k = [] {
    auto v = latency_classes();
    v.push_back("stream_hop");
    return v;
  }();
  return k;
}

const std::map<std::string, std::string>& descriptive_parameters() {
  static const std::map<std::string, std::string> k = {
      {"chip.lanes_per_superlane",
       "fixed at 16 (the SXM's transpose and distribute work on superlanes of 16 lanes); the "
       "description accepts no other value"},
      {"chip.streams.group_sizes",
       "fixed at [1, 2, 4] (8-, 16- and 32-bit values); the description accepts no other value"},
      {"system.*",
       "a single chip has no system: topology, chips, node size, global ports and links take "
       "effect with more than one chip (node8, rack72, or --set system.chips), where the "
       "multi-chip tests cover them"},
  };
  return k;
}

bool Chip::Vxm::is_large(int alu) const {
  return std::find(large_alus.begin(), large_alus.end(), alu) != large_alus.end();
}

std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = seed;
  for (std::size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Arch::hash_hex() const {
  return hex64(hash);
}

// ---------------------------------------------------------------------------------------------
// Presets and "base" inheritance

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < kPresetCount; ++i)
    names.emplace_back(kPresets[i].name);
  return names;
}

bool is_preset(const std::string& name) {
  for (std::size_t i = 0; i < kPresetCount; ++i)
    if (name == kPresets[i].name) return true;
  return false;
}

namespace {

const char* preset_text(const std::string& name) {
  for (std::size_t i = 0; i < kPresetCount; ++i)
    if (name == kPresets[i].name) return kPresets[i].text;
  return nullptr;
}

// Objects merge key by key; anything else in `over` replaces what `base` had.
void deep_merge(json::value& base, const json::value& over) {
  if (base.is_object() && over.is_object()) {
    auto& b = base.get_object();
    for (const auto& kv : over.get_object()) {
      auto it = b.find(kv.key());
      if (it == b.end())
        b.emplace(kv.key(), kv.value());
      else
        deep_merge(it->value(), kv.value());
    }
  } else {
    base = over;
  }
}

// Loads a preset or a file and the chain of "base" descriptions under it. A relative file name is
// taken relative to the directory of `relative_to` (the file that names it); `named_at` is where
// it was named (the location of a "base" key), empty for the description the user gave.
JsonDoc load_tree(const std::string& name_or_file, const std::string& relative_to, int depth,
                  const Where& named_at = "") {
  const std::string key = named_at.empty() ? "" : "base: ";
  if (depth > 8) throw InputError(named_at, key + "\"base\" chain is deeper than 8 (a cycle?)");
  JsonDoc doc;
  std::string resolved;  // the file's path, for its own relative bases
  if (const char* text = preset_text(name_or_file)) {
    doc = parse_json_doc(text, "preset " + name_or_file);
  } else {
    std::filesystem::path p(name_or_file);
    if (p.is_relative() && !relative_to.empty())
      p = std::filesystem::path(relative_to).parent_path() / p;
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) {
      std::string msg = key + "no preset or file named '" + name_or_file + "'";
      const auto hint = did_you_mean(name_or_file, preset_names());
      if (!hint.empty()) msg += "; " + hint;
      msg += " (presets: ";
      for (const auto& n : preset_names())
        msg += n + (n == preset_names().back() ? ")" : ", ");
      throw InputError(named_at, msg);
    }
    resolved = p.string();
    doc = load_json_file(resolved);
  }
  if (!doc.root.is_object())
    throw InputError(doc.locations.at(""), "the description must be a JSON object");
  auto& obj = doc.root.get_object();
  if (auto it = obj.find("base"); it != obj.end()) {
    if (!it->value().is_string())
      throw InputError(doc.locations.at("base"),
                       "base: must be a string (a preset name or a file)");
    const std::string base_name(it->value().get_string());
    JsonDoc base = load_tree(base_name, resolved, depth + 1, doc.locations.at("base"));
    obj.erase("base");
    deep_merge(base.root, doc.root);
    base.locations.merge(doc.locations);
    return base;
  }
  return doc;
}

// Splits "a.b[2].c" into steps; a step is a key or an index.
struct Step {
  std::string key;
  long index = -1;
};
std::vector<Step> split_path(const std::string& path, const Where& where) {
  std::vector<Step> steps;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '[') {
      const auto close = path.find(']', i);
      if (close == std::string::npos)
        throw InputError(where, "unclosed '[' in key path '" + path + "'");
      const std::string num = path.substr(i + 1, close - i - 1);
      if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos)
        throw InputError(where, "bad array index '" + num + "' in key path '" + path + "'");
      steps.push_back({"", std::stol(num)});
      i = close + 1;
      if (i < path.size() && path[i] == '.') ++i;
    } else {
      const auto end = path.find_first_of(".[", i);
      steps.push_back({path.substr(i, end == std::string::npos ? std::string::npos : end - i), -1});
      if (steps.back().key.empty()) throw InputError(where, "empty key in key path '" + path + "'");
      i = end == std::string::npos ? path.size() : end;
      if (i < path.size() && path[i] == '.') ++i;
    }
  }
  if (steps.empty()) throw InputError(where, "empty key path");
  return steps;
}

std::vector<std::string> keys_of(const json::object& o) {
  std::vector<std::string> k;
  for (const auto& kv : o)
    k.emplace_back(kv.key());
  return k;
}

void apply_set(JsonDoc& doc, const std::string& assignment, const Where& where) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError(where, "expected PATH=VALUE, e.g. chip.mem.depth=4096");
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  json::value value;
  json::error_code ec;
  value = json::parse(text, ec);
  if (ec) value = json::string(text);  // bare words are strings

  const auto steps = split_path(path, where);
  json::value* node = &doc.root;
  std::string walked;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const bool last = s + 1 == steps.size();
    const Step& st = steps[s];
    if (st.index >= 0) {
      if (!node->is_array()) throw InputError(where, "'" + walked + "' is not an array");
      auto& arr = node->get_array();
      if (static_cast<std::size_t>(st.index) >= arr.size())
        throw InputError(where, "'" + walked + "' has " + std::to_string(arr.size()) +
                                    " elements; index " + std::to_string(st.index) +
                                    " is out of range");
      walked = index(walked, static_cast<std::size_t>(st.index));
      node = &arr[static_cast<std::size_t>(st.index)];
    } else {
      if (!node->is_object()) throw InputError(where, "'" + walked + "' is not an object");
      auto& obj = node->get_object();
      auto it = obj.find(st.key);
      const std::string next = join(walked, st.key);
      if (it == obj.end() && last &&
          (next == "chip.slice_order" || next == "chip.vxm.row_stream_groups")) {  // optional
        it = obj.emplace(st.key, json::value()).first;
      }
      if (it == obj.end()) {
        std::string msg = "unknown key '" + next + "'";
        const auto hint = did_you_mean(st.key, keys_of(obj));
        if (!hint.empty()) msg += "; " + hint;
        throw InputError(where, msg);
      }
      walked = next;
      node = &it->value();
    }
    if (last) {
      *node = value;
      doc.locations.erase_under(walked);
      doc.locations.set(walked, where);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Validation. A Reader walks one JSON object, takes the keys it knows, checks their types and
// ranges, and when done rejects any key it did not take (a typo must not be a silent no-op).

class Reader {
 public:
  Reader(const json::value& v, KeyPath path, const Locations& locs)
      : path_(std::move(path)), locs_(locs) {
    if (!v.is_object()) fail(path_, "must be an object");
    obj_ = &v.get_object();
  }

  Where where(const KeyPath& p) const { return locs_.at(p); }
  [[noreturn]] void fail(const KeyPath& p, const std::string& msg) const {
    throw InputError(locs_.at(p), (p.empty() ? std::string("description") : p) + ": " + msg);
  }

  const json::value& at(const std::string& key) {
    taken_.insert(key);
    auto it = obj_->find(key);
    if (it == obj_->end()) fail(path_, "missing key '" + join(path_, key) + "'");
    return it->value();
  }
  bool has(const std::string& key) const { return obj_->contains(key); }
  KeyPath path(const std::string& key) const { return join(path_, key); }

  std::int64_t integer(const std::string& key, std::int64_t lo, std::int64_t hi) {
    return integer_value(at(key), path(key), lo, hi);
  }
  std::int64_t integer_value(const json::value& v, const KeyPath& p, std::int64_t lo,
                             std::int64_t hi) const {
    std::int64_t x = 0;
    if (v.is_int64())
      x = v.as_int64();
    else if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
      x = static_cast<std::int64_t>(v.as_uint64());
    else
      fail(p, "must be an integer, got " + kind_name(v));
    if (x < lo || x > hi)
      fail(p, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                  std::to_string(x));
    return x;
  }
  double number(const std::string& key, double lo, double hi, bool open_lo = false) {
    const auto& v = at(key);
    double x = 0;
    if (v.is_double())
      x = v.as_double();
    else if (v.is_int64())
      x = static_cast<double>(v.as_int64());
    else if (v.is_uint64())
      x = static_cast<double>(v.as_uint64());
    else
      fail(path(key), "must be a number, got " + kind_name(v));
    if (!std::isfinite(x) || x < lo || x > hi || (open_lo && x == lo))
      fail(path(key), "must be in " + std::string(open_lo ? "(" : "[") + fmt(lo) + ", " + fmt(hi) +
                          "], got " + fmt(x));
    return x;
  }
  bool boolean(const std::string& key) {
    const auto& v = at(key);
    if (!v.is_bool()) fail(path(key), "must be true or false, got " + kind_name(v));
    return v.get_bool();
  }
  std::string string(const std::string& key, const std::vector<std::string>& allowed = {}) {
    const auto& v = at(key);
    if (!v.is_string()) fail(path(key), "must be a string, got " + kind_name(v));
    std::string s(v.get_string());
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string msg = "must be one of ";
      for (std::size_t i = 0; i < allowed.size(); ++i)
        msg += (i ? ", " : "") + std::string("\"") + allowed[i] + "\"";
      fail(path(key), msg + "; got \"" + s + "\"");
    }
    return s;
  }
  const json::array& array(const std::string& key) {
    const auto& v = at(key);
    if (!v.is_array()) fail(path(key), "must be an array, got " + kind_name(v));
    return v.get_array();
  }
  std::vector<int> int_array(const std::string& key, std::int64_t lo, std::int64_t hi) {
    std::vector<int> out;
    const auto& a = array(key);
    for (std::size_t i = 0; i < a.size(); ++i)
      out.push_back(static_cast<int>(integer_value(a[i], index(path(key), i), lo, hi)));
    return out;
  }
  Reader object(const std::string& key) { return Reader(at(key), path(key), locs_); }
  Reader element(const json::value& v, const KeyPath& p) const { return Reader(v, p, locs_); }
  const json::object& raw() const { return *obj_; }

  /// Rejects keys that nothing took.
  void done() const {
    std::vector<std::string> known(taken_.begin(), taken_.end());
    for (const auto& kv : *obj_) {
      const std::string k(kv.key());
      if (!taken_.count(k)) {
        std::string msg = "unknown key '" + join(path_, k) + "'";
        const auto hint = did_you_mean(k, known);
        if (!hint.empty()) msg += "; " + hint;
        throw InputError(locs_.at(join(path_, k)), msg);
      }
    }
  }

  static std::string kind_name(const json::value& v) {
    switch (v.kind()) {
      case json::kind::null:
        return "null";
      case json::kind::bool_:
        return "a boolean";
      case json::kind::int64:
      case json::kind::uint64:
        return "an integer";
      case json::kind::double_:
        return "a real number";
      case json::kind::string:
        return "a string";
      case json::kind::array:
        return "an array";
      case json::kind::object:
        return "an object";
    }
    return "?";
  }
  static std::string fmt(double d) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", d);
    return b;
  }

 private:
  const json::object* obj_ = nullptr;
  KeyPath path_;
  const Locations& locs_;
  std::set<std::string> taken_;
};

void read_slice_order(Reader& r, Chip& c) {
  const KeyPath p = r.path("slice_order");
  const auto& arr = r.array("slice_order");
  std::vector<std::pair<SliceKind, KeyPath>> kinds;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const KeyPath ep = index(p, i);
    if (!arr[i].is_string()) r.fail(ep, "must be a string such as \"MEM\" or \"MEM*44\"");
    std::string s(arr[i].get_string());
    c.slice_order_spec.push_back(s);
    int count = 1;
    if (const auto star = s.find('*'); star != std::string::npos) {
      const std::string n = s.substr(star + 1);
      if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(n) < 1)
        r.fail(ep, "bad repeat count in \"" + s + "\" (expected e.g. \"MEM*44\")");
      count = std::stoi(n);
      s = s.substr(0, star);
    }
    SliceKind k;
    if (s == "MEM")
      k = SliceKind::kMem;
    else if (s == "MXM")
      k = SliceKind::kMxm;
    else if (s == "SXM")
      k = SliceKind::kSxm;
    else if (s == "VXM")
      k = SliceKind::kVxm;
    else
      r.fail(ep, "unknown slice kind \"" + s + "\" (expected MEM, MXM, SXM or VXM)");
    for (int j = 0; j < count; ++j)
      kinds.emplace_back(k, ep);
  }
  // Exactly one VXM, in the middle; the two hemispheres mirror each other.
  std::size_t vxm = kinds.size();
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    if (kinds[i].first != SliceKind::kVxm) continue;
    if (vxm != kinds.size()) r.fail(kinds[i].second, "more than one VXM slice");
    vxm = i;
  }
  if (vxm == kinds.size()) r.fail(p, "no VXM slice");
  if (vxm * 2 + 1 != kinds.size())
    r.fail(p, "the VXM must sit in the middle: " + std::to_string(vxm) + " slices west of it, " +
                  std::to_string(kinds.size() - vxm - 1) + " east");
  for (std::size_t d = 1; d <= vxm; ++d)
    if (kinds[vxm - d].first != kinds[vxm + d].first)
      r.fail(kinds[vxm + d].second, "the hemispheres must mirror each other: " + std::to_string(d) +
                                        " slices from the VXM, west has " +
                                        to_string(kinds[vxm - d].first) + " and east has " +
                                        to_string(kinds[vxm + d].first));
  // Within a hemisphere, each kind is numbered from the VXM outward.
  std::map<std::pair<int, int>, int> counters;
  c.slices.resize(kinds.size());
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    Slice s;
    s.kind = kinds[i].first;
    s.position = static_cast<int>(i);
    s.hemisphere = i < vxm ? Hemisphere::kWest : i > vxm ? Hemisphere::kEast : Hemisphere::kCenter;
    s.index = 0;
    c.slices[i] = s;
  }
  for (std::size_t d = 1; d <= vxm; ++d) {
    for (std::size_t i : {vxm - d, vxm + d}) {
      auto& s = c.slices[i];
      s.index = counters[{static_cast<int>(s.kind), static_cast<int>(s.hemisphere)}]++;
    }
  }
}

void check_counts(Reader& r, const Chip& c) {
  auto count = [&](SliceKind k, Hemisphere h) {
    return static_cast<int>(std::count_if(c.slices.begin(), c.slices.end(), [&](const Slice& s) {
      return s.kind == k && s.hemisphere == h;
    }));
  };
  const KeyPath order = r.path("slice_order");
  // Reported at the count's key, naming where the slice order came from, since either may be
  // the one the user changed.
  auto need = [&](SliceKind k, int want, const KeyPath& key, const char* what) {
    const int have = count(k, Hemisphere::kWest);
    if (have != want)
      r.fail(key, std::string("gives ") + std::to_string(want) + " " + to_string(k) + " slice" +
                      (want == 1 ? "" : "s") + " per hemisphere" + what + ", but " + order + " (" +
                      r.where(order) + ") has " + std::to_string(have));
  };
  need(SliceKind::kMem, c.mem.slices_per_hemisphere, "chip.mem.slices_per_hemisphere", "");
  if (c.mxm.planes % 2)
    r.fail("chip.mxm.planes", "must be even (planes are split between the hemispheres)");
  need(SliceKind::kMxm, c.mxm.planes / 2, "chip.mxm.planes", " (planes / 2)");
  if (c.sxm.units % 2) r.fail("chip.sxm.units", "must be even (one or more per hemisphere)");
  need(SliceKind::kSxm, c.sxm.units / 2, "chip.sxm.units", " (units / 2)");
}

Chip read_chip(Reader r) {
  Chip c;
  c.clock_mhz = r.number("clock_mhz", 0, 100000, true);
  c.superlanes = static_cast<int>(r.integer("superlanes", 1, 64));
  c.lanes_per_superlane = static_cast<int>(r.integer("lanes_per_superlane", 1, 64));
  if (c.lanes_per_superlane != 16)
    r.fail(r.path("lanes_per_superlane"),
           "must be 16: lanes are grouped in superlanes of 16 (SXM transpose and distribute work "
           "on 16 lanes), so the lane count stays a multiple of 16");
  {
    Reader s = r.object("streams");
    c.streams.per_direction = static_cast<int>(s.integer("per_direction", 4, 128));
    if (c.streams.per_direction % 4)
      s.fail(s.path("per_direction"), "must be a multiple of 4 (streams form SG4 groups)");
    c.streams.group_sizes = s.int_array("group_sizes", 1, 16);
    if (c.streams.group_sizes != std::vector<int>{1, 2, 4})
      s.fail(s.path("group_sizes"),
             "must be [1, 2, 4]: 8-, 16- and 32-bit values on SG1, SG2 and SG4 groups");
    c.streams.hop_cycles = static_cast<int>(s.integer("hop_cycles", 1, 16));
    s.done();
  }
  {
    Reader s = r.object("icu");
    c.icu.queue_depth = static_cast<int>(s.integer("queue_depth", 1, 1 << 20));
    c.icu.ifetch_bytes = static_cast<int>(s.integer("ifetch_bytes", 16, 1 << 16));
    if (c.icu.ifetch_bytes % 16)
      s.fail(s.path("ifetch_bytes"), "must be a multiple of the 16-byte instruction slot");
    c.icu.preloaded = s.boolean("preloaded");
    c.icu.instruction_slices = static_cast<int>(s.integer("instruction_slices", 0, 1024));
    c.icu.epoch_cycles = static_cast<int>(s.integer("epoch_cycles", 2, 1 << 24));
    s.done();
  }
  {
    Reader s = r.object("mem");
    c.mem.slices_per_hemisphere = static_cast<int>(s.integer("slices_per_hemisphere", 1, 1024));
    c.mem.depth = static_cast<int>(s.integer("depth", 2, 1 << 24));
    c.mem.banks = static_cast<int>(s.integer("banks", 1, 16));
    c.mem.bank_mapping = s.string("bank_mapping", {"halves", "interleaved"});
    c.mem.interleaved = c.mem.bank_mapping == "interleaved";
    if (c.mem.depth % c.mem.banks)
      s.fail(s.path("depth"),
             "must be a multiple of chip.mem.banks (" + std::to_string(c.mem.banks) + ")");
    Reader e = s.object("ecc");
    c.mem.ecc_enabled = e.boolean("enabled");
    c.mem.ecc_data_bits = static_cast<int>(e.integer("data_bits", 8, 512));
    c.mem.ecc_check_bits = static_cast<int>(e.integer("check_bits", 1, 32));
    // SECDED needs r check bits with 2^(r-1) >= data + r (Hamming bound plus the overall parity).
    const int r_bits = c.mem.ecc_check_bits;
    if ((std::int64_t{1} << (r_bits - 1)) < c.mem.ecc_data_bits + r_bits)
      e.fail(e.path("check_bits"), std::to_string(r_bits) + " check bits cannot protect " +
                                       std::to_string(c.mem.ecc_data_bits) +
                                       " data bits with SECDED");
    if ((c.superlanes * c.lanes_per_superlane * 8) % c.mem.ecc_data_bits)
      e.fail(e.path("data_bits"), "must divide the vector width in bits");
    e.done();
    s.done();
    if (c.icu.instruction_slices > c.mem.slices_per_hemisphere)
      r.fail("chip.icu.instruction_slices", "is more than chip.mem.slices_per_hemisphere (" +
                                                std::to_string(c.mem.slices_per_hemisphere) + ")");
  }
  {
    Reader s = r.object("vxm");
    c.vxm.ranks = static_cast<int>(s.integer("ranks", 1, 16));
    c.vxm.rows = static_cast<int>(s.integer("rows", 1, 16));
    const int alus = c.vxm.ranks * c.vxm.rows;
    c.vxm.large_alus = s.int_array("large_alus", 0, alus - 1);
    std::set<int> seen;
    for (std::size_t i = 0; i < c.vxm.large_alus.size(); ++i)
      if (!seen.insert(c.vxm.large_alus[i]).second)
        s.fail(index(s.path("large_alus"), i),
               "ALU " + std::to_string(c.vxm.large_alus[i]) + " listed twice");
    const int groups = c.streams.per_direction / 4;
    if (!s.has("row_stream_groups")) {
      // Not given: row r reaches the 4 SG4 groups from r x groups / rows on (the brief's reading
      // for 4 rows and 8 groups: 2r .. 2r + 3 mod 8), or every group when there are fewer.
      for (int r = 0; r < c.vxm.rows; ++r) {
        std::vector<int> g;
        for (int j = 0; j < std::min(4, groups); ++j)
          g.push_back((r * groups / c.vxm.rows + j) % groups);
        c.vxm.row_stream_groups.push_back(g);
      }
    }
    const json::array no_rows;
    const auto& rows = s.has("row_stream_groups") ? s.array("row_stream_groups") : no_rows;
    if (s.has("row_stream_groups") && static_cast<int>(rows.size()) != c.vxm.rows)
      s.fail(s.path("row_stream_groups"), "must have one entry per ALU row (" +
                                              std::to_string(c.vxm.rows) + "), has " +
                                              std::to_string(rows.size()));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const KeyPath ep = index(s.path("row_stream_groups"), i);
      if (!rows[i].is_array()) s.fail(ep, "must be an array of SG4 group ids");
      std::vector<int> g;
      const auto& a = rows[i].get_array();
      for (std::size_t j = 0; j < a.size(); ++j)
        g.push_back(static_cast<int>(s.integer_value(a[j], index(ep, j), 0, groups - 1)));
      if (g.empty()) s.fail(ep, "must name at least one SG4 group");
      c.vxm.row_stream_groups.push_back(g);
    }
    s.done();
  }
  {
    Reader s = r.object("mxm");
    c.mxm.planes = static_cast<int>(s.integer("planes", 2, 64));
    c.mxm.rows = static_cast<int>(s.integer("rows", 16, 4096));
    c.mxm.cols = static_cast<int>(s.integer("cols", 16, 4096));
    c.mxm.supercell = static_cast<int>(s.integer("supercell", 1, 256));
    if (c.mxm.rows % c.mxm.supercell || c.mxm.cols % c.mxm.supercell)
      s.fail(s.path("supercell"), "must divide chip.mxm.rows and chip.mxm.cols");
    if (c.mxm.cols > c.lanes())
      s.fail(s.path("cols"), "is wider than the vector (" + std::to_string(c.lanes()) + " lanes)");
    c.mxm.weight_buffers = static_cast<int>(s.integer("weight_buffers", 1, 8));
    c.mxm.accumulators = static_cast<int>(s.integer("accumulators", 1, 1 << 20));
    c.mxm.fp16_rate = s.number("fp16_rate", 0, 1, true);
    // One fp16 vector every n cycles: the rate must be 1/n.
    const double n = std::round(1.0 / c.mxm.fp16_rate);
    if (std::fabs(n * c.mxm.fp16_rate - 1.0) > 1e-9)
      s.fail(s.path("fp16_rate"),
             "must be 1/n for a whole n (a plane takes one fp16 vector every n "
             "cycles), got " +
                 Reader::fmt(c.mxm.fp16_rate));
    c.mxm.install_cycles = static_cast<int>(s.integer("install_cycles", 1, 100000));
    c.mxm.clear_cycles = static_cast<int>(s.integer("clear_cycles", 1, 100000));
    s.done();
  }
  {
    Reader s = r.object("sxm");
    c.sxm.units = static_cast<int>(s.integer("units", 2, 16));
    c.sxm.transposers_per_unit = static_cast<int>(s.integer("transposers_per_unit", 1, 8));
    c.sxm.rotate_sizes = s.int_array("rotate_sizes", 2, 8);
    s.done();
  }
  {
    Reader s = r.object("c2c");
    c.c2c.links = static_cast<int>(s.integer("links", 0, 256));
    if (c.c2c.links % 2)
      s.fail(s.path("links"), "must be even (links are split between the hemispheres)");
    c.c2c.lanes_per_link = static_cast<int>(s.integer("lanes_per_link", 1, 64));
    c.c2c.lane_rate_gbps = s.number("lane_rate_gbps", 0, 1000, true);
    c.c2c.coding_efficiency = s.number("coding_efficiency", 0, 1, true);
    c.c2c.latency_ns = s.number("latency_ns", 0, 1e9);
    s.done();
  }
  {
    Reader s = r.object("host");
    c.host.dma_latency_us = s.number("dma_latency_us", 0, 1e9);
    c.host.dma_gbytes_per_s = s.number("dma_gbytes_per_s", 0, 1e6, true);
    s.done();
  }
  {
    Reader s = r.object("latency");
    for (const auto& cls : latency_classes()) {
      Reader l = s.object(cls);
      Latency lat;
      // Installing and clearing weights take chip.mxm.install_cycles and clear_cycles: their
      // classes give only d_skew, so that one key sets each time.
      const bool derived = cls == "mxm_install" || cls == "mxm_clear";
      if (derived) {
        const char* from = cls == "mxm_install" ? "install_cycles" : "clear_cycles";
        if (l.has("d_func"))
          l.fail(l.path("d_func"),
                 std::string("is set by chip.mxm.") + from + " (remove this key and set that one)");
        lat.d_func = cls == "mxm_install" ? c.mxm.install_cycles : c.mxm.clear_cycles;
      } else {
        lat.d_func = static_cast<int>(l.integer(
            "d_func", 1, 1000000));  // results appear after the access cycle (docs/simulator.md)
      }
      lat.d_skew = static_cast<int>(l.integer("d_skew", 0, 1000000));
      l.done();
      c.latency[cls] = lat;
    }
    s.done();
  }
  {
    Reader s = r.object("energy_pj");
    for (const auto& k : energy_keys())
      c.energy_pj[k] = s.number(k, 0, 1e12);
    s.done();
  }
  read_slice_order(r, c);
  check_counts(r, c);
  r.done();
  return c;
}

System read_system(Reader r, const Chip& chip) {
  System s;
  s.topology = r.string("topology", {"single", "fully_connected", "dragonfly", "explicit"});
  s.chips = static_cast<int>(r.integer("chips", 1, 1 << 20));
  s.node_chips = static_cast<int>(r.integer("node_chips", 1, 1024));
  s.global_ports = static_cast<int>(r.integer("global_ports", 0, 1024));
  const auto& links = r.array("links");
  if (s.topology == "single" && s.chips != 1)
    r.fail(r.path("chips"), "must be 1 for topology \"single\"");
  if (s.topology != "explicit" && !links.empty())
    r.fail(r.path("links"),
           "must be empty unless topology is \"explicit\" (other topologies generate their links)");
  std::map<std::pair<int, int>, KeyPath> used;
  auto take = [&](const LinkEnd& e, const KeyPath& p) {
    if (e.chip >= s.chips)
      r.fail(p, "links to chip " + std::to_string(e.chip) + ", but the system has " +
                    std::to_string(s.chips) + " chip(s) (0.." + std::to_string(s.chips - 1) + ")");
    if (e.port >= chip.c2c.links)
      r.fail(p, "uses port " + std::to_string(e.port) + ", but a chip has " +
                    std::to_string(chip.c2c.links) + " C2C links (chip.c2c.links)");
    auto [it, fresh] = used.emplace(std::make_pair(e.chip, e.port), p);
    if (!fresh)
      r.fail(p, "chip " + std::to_string(e.chip) + " port " + std::to_string(e.port) +
                    " is already used by " + it->second);
  };
  for (std::size_t i = 0; i < links.size(); ++i) {
    const KeyPath lp = index(r.path("links"), i);
    Reader lr = r.element(links[i], lp);
    Link link;
    for (auto [key, end] : {std::make_pair("a", &link.a), std::make_pair("b", &link.b)}) {
      Reader er = lr.object(key);
      end->chip = static_cast<int>(er.integer("chip", 0, 1 << 20));
      end->port = static_cast<int>(er.integer("port", 0, 1 << 16));
      er.done();
      take(*end, lr.path(key));
    }
    if (link.a.chip == link.b.chip)
      lr.fail(lp, "joins chip " + std::to_string(link.a.chip) + " to itself");
    lr.done();
    s.links.push_back(link);
  }
  if (s.topology == "fully_connected") {
    // Chip i's port p (p < chips-1) goes to chip (i + p + 1) mod chips; the peer uses the port
    // that points back. Each pair is listed once.
    if (s.chips - 1 > chip.c2c.links)
      r.fail(r.path("chips"), std::to_string(s.chips) + " fully connected chips need " +
                                  std::to_string(s.chips - 1) + " links per chip; a chip has " +
                                  std::to_string(chip.c2c.links) + " (chip.c2c.links)");
    for (int i = 0; i < s.chips; ++i)
      for (int j = i + 1; j < s.chips; ++j)
        s.links.push_back({{i, j - i - 1}, {j, s.chips - 1 - (j - i)}});
  }
  if (s.topology == "dragonfly") {
    // Nodes of node_chips chips, fully connected inside over ports 0 .. node_chips - 2; every
    // pair of nodes joined directly by k links through the global ports (node_chips - 1 ..),
    // k = node_chips x global_ports / (nodes - 1). A node's global slot t is chip t mod
    // node_chips, port node_chips - 1 + t / node_chips; its links to the peer with index q
    // (among its peers, in order) use slots q k .. q k + k - 1.
    const int n = s.node_chips;
    if (s.chips % n)
      r.fail(r.path("chips"), std::to_string(s.chips) + " chips are not whole nodes of " +
                                  std::to_string(n) + " (system.node_chips)");
    if (n - 1 + s.global_ports > chip.c2c.links)
      r.fail(r.path("global_ports"),
             std::to_string(n - 1) + " local and " + std::to_string(s.global_ports) +
                 " global ports need more than the " + std::to_string(chip.c2c.links) +
                 " C2C links of a chip (chip.c2c.links)");
    const int nodes = s.chips / n;
    const int k = nodes > 1 ? n * s.global_ports / (nodes - 1) : 0;
    if (nodes > 1 && k < 1)
      r.fail(r.path("chips"), std::to_string(nodes) + " nodes cannot all be joined directly: " +
                                  "a node has " + std::to_string(n * s.global_ports) +
                                  " global ports (system.node_chips x system.global_ports)");
    for (int u = 0; u < nodes; ++u)
      for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j)
          s.links.push_back({{u * n + i, j - i - 1}, {u * n + j, n - 1 - (j - i)}});
    auto slot = [&](int node, int peer_index, int link) {
      const int t = peer_index * k + link;
      return LinkEnd{node * n + t % n, n - 1 + t / n};
    };
    for (int u = 0; u < nodes; ++u)
      for (int v = u + 1; v < nodes; ++v)
        for (int l = 0; l < k; ++l)
          s.links.push_back({slot(u, v - 1, l), slot(v, u, l)});
  }
  r.done();
  return s;
}

// chip.slice_order when the description leaves it out: from the west edge, the MXM planes of a
// hemisphere, its SXM units and its MEM slices, then the VXM and the mirror image. Counts that are
// not usable integers are left for validation to report.
json::value with_slice_order(const json::value& root, Locations& locs) {
  if (!root.is_object()) return root;
  const auto* chip = root.get_object().if_contains("chip");
  if (!chip || !chip->is_object() || chip->get_object().contains("slice_order")) return root;
  auto count = [&](const char* unit, const char* key) -> std::int64_t {
    const auto* u = chip->get_object().if_contains(unit);
    const auto* v = u && u->is_object() ? u->get_object().if_contains(key) : nullptr;
    return v && v->is_int64() ? v->as_int64() : -1;
  };
  const std::int64_t planes = count("mxm", "planes"), units = count("sxm", "units"),
                     mem = count("mem", "slices_per_hemisphere");
  if (planes < 2 || units < 2 || mem < 1 || planes > 64 || units > 16 || mem > 1024) return root;
  json::array west;
  for (std::int64_t i = 0; i < planes / 2; ++i)
    west.emplace_back("MXM");
  for (std::int64_t i = 0; i < units / 2; ++i)
    west.emplace_back("SXM");
  west.emplace_back("MEM*" + std::to_string(mem));
  json::array order = west;
  order.emplace_back("VXM");
  for (auto it = west.rbegin(); it != west.rend(); ++it)
    order.push_back(*it);
  json::value out = root;
  out.get_object()["chip"].get_object()["slice_order"] = std::move(order);
  locs.set("chip.slice_order", locs.at("chip.mxm.planes"));
  return out;
}

Arch validate(const json::value& given, const Locations& given_locs) {
  Locations locs = given_locs;
  const json::value root = with_slice_order(given, locs);
  Reader r(root, "", locs);
  Arch a;
  const std::string format = r.string("format");
  if (format != "lpu-arch/1")
    r.fail("format", "unsupported format \"" + format + "\" (this build reads \"lpu-arch/1\")");
  a.name = r.string("name");
  if (a.name.empty() || a.name.size() > 64 ||
      a.name.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
    r.fail("name", "must be 1 to 64 letters, digits, '.', '_' or '-'; got \"" + a.name + "\"");
  a.description = r.string("description");
  a.chip = read_chip(r.object("chip"));
  a.system = read_system(r.object("system"), a.chip);
  {
    Reader s = r.object("assumptions");
    for (const auto& kv : s.raw()) {
      const std::string key(kv.key());
      const std::string why = s.string(key);
      // Each assumption must name a key that exists.
      const json::value* node = &root;
      std::size_t i = 0;
      bool ok = true;
      while (ok && i <= key.size()) {
        const auto dot = key.find('.', i);
        const std::string part =
            key.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
        ok = node->is_object() && node->get_object().contains(part);
        if (ok) node = &node->get_object().at(part);
        if (dot == std::string::npos) break;
        i = dot + 1;
      }
      if (!ok) s.fail(s.path(key), "names a key that does not exist: '" + key + "'");
      a.assumptions[key] = why;
    }
  }
  r.done();
  a.resolved = given;  // as written: a derived slice order is derived again on every load
  a.canonical = canonical_json(given);
  a.hash = fnv1a64(a.canonical.data(), a.canonical.size());
  return a;
}

}  // namespace

json::value preset_tree(const std::string& name) {
  if (!is_preset(name)) throw InputError("", "no preset named '" + name + "'");
  return load_tree(name, "", 0).root;
}

Arch load(const std::string& name_or_file, const std::vector<std::string>& sets) {
  std::vector<Setting> s;
  for (const auto& a : sets)
    s.push_back({a, "--set " + a});
  return load(name_or_file, s, "");
}

Arch load(const std::string& name_or_file, const std::vector<Setting>& sets,
          const std::string& relative_to) {
  JsonDoc doc = load_tree(name_or_file, relative_to, 0);
  for (const auto& s : sets)
    apply_set(doc, s.assignment, s.where);
  return validate(doc.root, doc.locations);
}

namespace {
void overrides_into(const json::value& a, const json::value& b, const KeyPath& p,
                    std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    const auto& x = a.get_object();
    const auto& y = b.get_object();
    // Recurse only where every key can be written in a key path (assumption keys contain dots).
    bool same_keys = x.size() == y.size();
    for (const auto& kv : y)
      same_keys = same_keys && x.contains(kv.key()) &&
                  kv.key().find_first_of(".[]=") == json::string_view::npos;
    if (same_keys || p.empty()) {
      std::vector<std::string> keys;
      for (const auto& kv : y)
        keys.emplace_back(kv.key());
      std::sort(keys.begin(), keys.end());
      for (const auto& k : keys) {
        if (!x.contains(k)) throw std::logic_error("overrides: top-level key sets differ");
        overrides_into(x.at(k), y.at(k), join(p, k), out);
      }
      return;
    }
  }
  if (canonical_json(a) != canonical_json(b)) out.push_back(p + "=" + canonical_json(b));
}
}  // namespace

std::vector<std::string> overrides(const json::value& base, const json::value& target) {
  std::vector<std::string> out;
  overrides_into(base, target, "", out);
  return out;
}

std::pair<std::string, std::vector<std::string>> nearest_preset(const Arch& a) {
  std::pair<std::string, std::vector<std::string>> best;
  bool have = false;
  for (const auto& name : preset_names()) {
    auto o = overrides(preset_tree(name), a.resolved);
    if (!have || o.size() < best.second.size()) {
      best = {name, std::move(o)};
      have = true;
    }
  }
  return best;
}

Arch from_resolved(const json::value& resolved, const Where& where) {
  Locations locs;
  locs.set_document(where);
  return validate(resolved, locs);
}

Arch from_canonical(const std::string& text, const Where& where) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw InputError(where, "embedded architecture is not valid JSON: " + ec.message());
  return from_resolved(v, where);
}

namespace {
void diff_into(const json::value& a, const json::value& b, const KeyPath& p,
               std::vector<KeyPath>& out) {
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& kv : a.get_object())
      keys.insert(std::string(kv.key()));
    for (const auto& kv : b.get_object())
      keys.insert(std::string(kv.key()));
    for (const auto& k : keys) {
      const auto* x = a.get_object().if_contains(k);
      const auto* y = b.get_object().if_contains(k);
      if (!x || !y)
        out.push_back(join(p, k));
      else
        diff_into(*x, *y, join(p, k), out);
    }
    return;
  }
  if (canonical_json(a) != canonical_json(b)) out.push_back(p.empty() ? "(root)" : p);
}
}  // namespace

std::vector<KeyPath> diff(const json::value& a, const json::value& b) {
  std::vector<KeyPath> out;
  diff_into(a, b, "", out);
  return out;
}

Derived derive(const Arch& a) {
  const Chip& c = a.chip;
  Derived d;
  d.lanes = c.lanes();
  d.vector_bytes = c.vector_bytes();
  d.mem_slices = c.mem_slices();
  d.sram_bytes = static_cast<std::uint64_t>(d.mem_slices) *
                 static_cast<std::uint64_t>(c.mem.depth) *
                 static_cast<std::uint64_t>(d.vector_bytes);
  d.sram_mib = static_cast<double>(d.sram_bytes) / (1024.0 * 1024.0);
  const double hz = c.clock_mhz * 1e6;
  d.mxm_macs = static_cast<std::uint64_t>(c.mxm.planes) * static_cast<std::uint64_t>(c.mxm.rows) *
               static_cast<std::uint64_t>(c.mxm.cols);
  d.peak_int8_tops = 2.0 * static_cast<double>(d.mxm_macs) * hz / 1e12;
  d.peak_fp16_tflops = d.peak_int8_tops * c.mxm.fp16_rate;
  d.sram_bandwidth_tbps = 2.0 * d.mem_slices * d.vector_bytes * hz / 1e12;
  d.stream_bandwidth_tbps = 2.0 * c.streams.per_direction * d.vector_bytes * hz / 1e12;
  d.link_gbps_raw = c.c2c.lanes_per_link * c.c2c.lane_rate_gbps;
  d.link_gbytes_per_s = d.link_gbps_raw * c.c2c.coding_efficiency / 8.0;
  d.c2c_bidir_gbytes_per_s = 2.0 * c.c2c.links * d.link_gbps_raw / 8.0;
  d.vector_serialisation_ns = d.vector_bytes / d.link_gbytes_per_s;
  d.queues = static_cast<int>(chip_queues(c).size());
  d.host_dma_ms_full_sram = (c.host.dma_latency_us * 1e-6 +
                             static_cast<double>(d.sram_bytes) / (c.host.dma_gbytes_per_s * 1e9)) *
                            1e3;
  return d;
}

json::object derived_json(const Arch& a) {
  const Derived d = derive(a);
  auto round3 = [](double x) { return std::round(x * 1000.0) / 1000.0; };
  json::object o;
  o["lanes"] = d.lanes;
  o["vector_bytes"] = d.vector_bytes;
  o["mem_slices"] = d.mem_slices;
  o["sram_bytes"] = d.sram_bytes;
  o["sram_mib"] = round3(d.sram_mib);
  o["mxm_int8_macs"] = d.mxm_macs;
  o["peak_int8_tops"] = round3(d.peak_int8_tops);
  o["peak_fp16_tflops"] = round3(d.peak_fp16_tflops);
  o["sram_bandwidth_tb_per_s"] = round3(d.sram_bandwidth_tbps);
  o["stream_bandwidth_tb_per_s"] = round3(d.stream_bandwidth_tbps);
  o["link_raw_gbit_per_s"] = round3(d.link_gbps_raw);
  o["link_gbyte_per_s_per_direction"] = round3(d.link_gbytes_per_s);
  o["c2c_bidirectional_gbyte_per_s"] = round3(d.c2c_bidir_gbytes_per_s);
  o["vector_serialisation_ns"] = round3(d.vector_serialisation_ns);
  o["instruction_queues"] = d.queues;
  json::array order;  // as given, or derived from the counts
  for (const auto& k : a.chip.slice_order_spec)
    order.emplace_back(k);
  o["slice_order"] = std::move(order);
  json::array groups;  // as given, or derived from the rows and streams
  for (const auto& row : a.chip.vxm.row_stream_groups) {
    json::array g;
    for (int x : row)
      g.emplace_back(x);
    groups.emplace_back(std::move(g));
  }
  o["vxm_row_stream_groups"] = std::move(groups);
  o["system_chips"] = a.system.chips;
  o["system_links"] = a.system.links.size();
  o["system_sram_mib"] = round3(d.sram_mib * a.system.chips);
  o["host_dma_ms_full_sram"] = round3(d.host_dma_ms_full_sram);
  return o;
}

}  // namespace lpu::arch
