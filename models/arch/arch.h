// The architecture description: one resolved, validated configuration of a chip and of the system
// of chips it sits in (brief B1). Every other part of the model reads this and nothing else for
// machine parameters. Loading accepts a preset name or a JSON file (which may name a "base" to
// inherit from), then `--set path=value` overrides; every rejected value names its key path and
// where it came from (file:line:col or the --set that gave it).
//
// Not modelled here: anything behavioural. This is data plus consistency rules.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "arch/json_doc.h"

namespace lpu::arch {

enum class SliceKind { kMxm, kSxm, kMem, kVxm };
enum class Hemisphere { kWest, kEast, kCenter };

const char* to_string(SliceKind k);

/// One functional slice on the east-west data path.
struct Slice {
  SliceKind kind;
  Hemisphere hemisphere;
  int index;  ///< within its kind and hemisphere, counted from the VXM outward (MEM w0 is next to
              ///< the VXM)
  int position;  ///< 0 = westmost slice; stream-register position of the slice
};

/// Latency of one latency class, in chip clock cycles (brief A1 timing rule).
struct Latency {
  int d_func = 0;  ///< functional latency of the op
  int d_skew = 0;  ///< dispatch-to-operand-arrival offset
};

/// Latency classes, shared by the ISA table (which assigns each opcode one) and the per-op latency
/// and energy tables of the description. Order matters only for printing.
const std::vector<std::string>& latency_classes();
/// Energy keys: the latency classes plus per-event costs that are not instructions.
const std::vector<std::string>& energy_keys();

struct Chip {
  double clock_mhz = 0;
  int superlanes = 0;
  int lanes_per_superlane = 0;
  std::vector<std::string> slice_order_spec;  ///< as written: "MEM*44" repeats
  std::vector<Slice> slices;                  ///< expanded, west to east

  struct Streams {
    int per_direction = 0;
    std::vector<int> group_sizes;
    int hop_cycles = 0;
  } streams;
  struct Icu {
    int queue_depth = 0;
    int ifetch_bytes = 0;
    bool preloaded = false;
    int instruction_slices = 0;  ///< per hemisphere, the outermost MEM slices
    int epoch_cycles = 0;        ///< period of the hardware-aligned counter (deskew)
  } icu;
  struct Mem {
    int slices_per_hemisphere = 0;
    int depth = 0;
    int banks = 0;
    std::string bank_mapping;  ///< "halves" or "interleaved"
    bool interleaved = false;  ///< bank_mapping == "interleaved" (bank_of is on the hot path)
    bool ecc_enabled = false;
    int ecc_data_bits = 0;
    int ecc_check_bits = 0;
    /// Bank of an address.
    int bank_of(std::uint32_t addr) const {
      return interleaved ? static_cast<int>(addr % static_cast<unsigned>(banks))
                         : static_cast<int>(addr / static_cast<unsigned>(depth / banks));
    }
  } mem;
  struct Vxm {
    int ranks = 0;
    int rows = 0;
    std::vector<int> large_alus;
    std::vector<std::vector<int>> row_stream_groups;  ///< SG4 group ids each row may touch
    int alus() const { return ranks * rows; }
    bool is_large(int alu) const;
  } vxm;
  struct Mxm {
    int planes = 0;
    int rows = 0;
    int cols = 0;
    int supercell = 0;
    int weight_buffers = 0;
    int accumulators = 0;  ///< result vectors a plane can hold between ABC and ACC
    double fp16_rate = 0;
    int install_cycles = 0;
    int clear_cycles = 0;
    /// Cycles between two fp16 activation vectors of a plane (1 / fp16_rate).
    int fp16_interval() const { return static_cast<int>(1.0 / fp16_rate + 0.5); }
  } mxm;
  struct Sxm {
    int units = 0;
    int transposers_per_unit = 0;
    std::vector<int> rotate_sizes;
  } sxm;
  struct C2c {
    int links = 0;
    int lanes_per_link = 0;
    double lane_rate_gbps = 0;
    double coding_efficiency = 0;
    double latency_ns = 0;
  } c2c;
  struct Host {
    double dma_latency_us = 0;
    double dma_gbytes_per_s = 0;
  } host;
  std::map<std::string, Latency> latency;
  std::map<std::string, double> energy_pj;

  int lanes() const { return superlanes * lanes_per_superlane; }
  int vector_bytes() const { return lanes(); }  ///< one byte per lane per stream
  int mem_slices() const { return 2 * mem.slices_per_hemisphere; }
  const Latency& latency_of(const std::string& cls) const { return latency.at(cls); }
};

struct LinkEnd {
  int chip = 0;
  int port = 0;
};
struct Link {
  LinkEnd a, b;
};

struct System {
  std::string topology;  ///< "single", "fully_connected", "dragonfly" or "explicit"
  int chips = 1;
  int node_chips = 8;    ///< dragonfly: chips per node (fully connected inside)
  int global_ports = 4;  ///< dragonfly: ports per chip that join nodes
  std::vector<Link>
      links;  ///< resolved: explicit ones as given, generated ones for other topologies
};

/// A resolved, validated architecture.
struct Arch {
  std::string name;
  std::string description;
  Chip chip;
  System system;
  std::map<std::string, std::string> assumptions;  ///< key path -> why the default was chosen

  boost::json::value resolved;  ///< the full description (no "base"), as validated
  std::string canonical;        ///< canonical_json(resolved): what is hashed and embedded
  std::uint64_t hash = 0;       ///< FNV-1a 64 of `canonical`
  std::string hash_hex() const;
};

/// Parameters that change neither what the compiler schedules, nor what the simulator enforces,
/// nor what a report says, with the reason (docs/arch-description.md marks them). Keys are key
/// paths; one ending in '*' covers every key it prefixes. testbenches/system/param_effects checks
/// both ways: every other parameter has an effect, and these have none.
const std::map<std::string, std::string>& descriptive_parameters();

/// Names of the presets built into the tool.
std::vector<std::string> preset_names();
/// True if `name` is a preset.
bool is_preset(const std::string& name);

/// Loads a preset by name or a JSON file by path, applies `sets` ("path=value", value parsed as
/// JSON, else taken as a string), validates. Throws InputError naming key path and location.
Arch load(const std::string& name_or_file, const std::vector<std::string>& sets = {});

/// One override and where it was written (for messages).
struct Setting {
  std::string assignment;  ///< "path=value"
  Where where;
};
/// As above, with each override's own location; a relative file name is taken relative to the
/// directory of `relative_to` (e.g. the assembly file that names it).
Arch load(const std::string& name_or_file, const std::vector<Setting>& sets,
          const std::string& relative_to);

/// The overrides ("path=canonical JSON value") that turn description `base` into `target`; whole
/// objects or arrays are replaced where their keys differ. Applying them to `base` gives `target`.
std::vector<std::string> overrides(const boost::json::value& base,
                                   const boost::json::value& target);

/// The preset from which `a` differs in the fewest keys, and those overrides.
std::pair<std::string, std::vector<std::string>> nearest_preset(const Arch& a);

/// Validates an already resolved description (e.g. the one embedded in a program).
/// `where` names the source for messages.
Arch from_resolved(const boost::json::value& resolved, const Where& where);
Arch from_canonical(const std::string& text, const Where& where);

/// The unresolved JSON tree of a preset (with its "base" already merged in).
boost::json::value preset_tree(const std::string& name);

/// Leaf key paths whose values differ between two descriptions (added and removed keys too).
std::vector<KeyPath> diff(const boost::json::value& a, const boost::json::value& b);

/// Figures derived from a description, for sanity checks by people and by reports.
struct Derived {
  int lanes = 0;
  int vector_bytes = 0;
  int mem_slices = 0;
  std::uint64_t sram_bytes = 0;
  double sram_mib = 0;
  std::uint64_t mxm_macs = 0;  ///< int8 MAC cells over all planes
  double peak_int8_tops = 0;   ///< 2 ops per MAC per cycle
  double peak_fp16_tflops = 0;
  double sram_bandwidth_tbps = 0;     ///< TB/s, one read and one write per slice per cycle
  double stream_bandwidth_tbps = 0;   ///< TB/s, all streams of both directions at one position
  double link_gbps_raw = 0;           ///< Gb/s per link per direction, before coding
  double link_gbytes_per_s = 0;       ///< GB/s per link per direction, after coding
  double c2c_bidir_gbytes_per_s = 0;  ///< all links, both directions, raw line rate
  double vector_serialisation_ns = 0;
  int queues = 0;
  double host_dma_ms_full_sram = 0;
};
Derived derive(const Arch& a);
boost::json::object derived_json(const Arch& a);

/// FNV-1a 64-bit hash (stable across platforms and releases).
std::uint64_t fnv1a64(const void* data, std::size_t size,
                      std::uint64_t seed = 0xcbf29ce484222325ull);
std::string hex64(std::uint64_t v);

}  // namespace lpu::arch
