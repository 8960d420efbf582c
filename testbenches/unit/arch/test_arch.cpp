// Architecture descriptions: presets, derived figures, hashing, slice and queue layout, system
// topologies, overrides, canonical JSON, and every class of rejected input with its exact location.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/json_doc.h"
#include "arch/queues.h"
#include "common/diagnostics.h"

#include "test_support.h"

namespace {

using namespace lpu::test;

namespace fs = std::filesystem;
namespace json = boost::json;
using lpu::InputError;
using namespace lpu::arch;

// --- helpers ----------------------------------------------------------------------------------

/// Loads a description file written to the scratch directory; expects an InputError at `where`
/// whose message contains every fragment.
void expect_file_error(const std::string& text, const std::string& where_needle,
                       const std::vector<std::string>& fragments, int nth = 0) {
  const std::string path = write_file("arch.json", text);
  const InputError e = input_error([&] { load(path); });
  EXPECT_EQ(e.where(), loc(path, text, where_needle, nth)) << e.what();
  for (const auto& f : fragments)
    EXPECT_TRUE(contains(e.message(), f));
  EXPECT_EQ(std::string(e.what()), e.where() + ": error: " + e.message());
}

/// True if `json` has whitespace anywhere but inside string literals.
bool whitespace_outside_strings(const std::string& json) {
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char ch = json[i];
    if (in_string) {
      if (ch == '\\')
        ++i;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') {
      return true;
    }
  }
  return false;
}

const Slice& slice_at(const Chip& c, int position) {
  return c.slices.at(static_cast<std::size_t>(position));
}

// --- presets and derived figures --------------------------------------------------------------

TEST(Presets, NamesAreTspV1AndTiny) {
  const auto names = preset_names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{"tsp-v1", "tiny", "node8", "rack72"}));
  EXPECT_TRUE(is_preset("tsp-v1"));
  EXPECT_TRUE(is_preset("tiny"));
  EXPECT_FALSE(is_preset("tsp-v2"));
  EXPECT_FALSE(is_preset(""));
}

TEST(Presets, TspV1Figures) {
  const Arch a = load("tsp-v1");
  EXPECT_EQ(a.name, "tsp-v1");
  const Chip& c = a.chip;
  EXPECT_EQ(c.lanes(), 320);
  EXPECT_EQ(c.superlanes, 20);
  EXPECT_EQ(c.lanes_per_superlane, 16);
  EXPECT_EQ(c.vector_bytes(), 320);
  EXPECT_EQ(c.mem_slices(), 88);
  EXPECT_EQ(c.mem.slices_per_hemisphere, 44);
  EXPECT_EQ(c.mem.depth, 8192);
  EXPECT_EQ(c.mem.banks, 2);
  EXPECT_EQ(c.mem.bank_mapping, "halves");
  EXPECT_TRUE(c.mem.ecc_enabled);
  EXPECT_EQ(c.mem.ecc_data_bits, 128);
  EXPECT_EQ(c.mem.ecc_check_bits, 9);
  EXPECT_EQ(c.mxm.planes, 4);
  EXPECT_EQ(c.mxm.rows, 320);
  EXPECT_EQ(c.mxm.cols, 320);
  EXPECT_EQ(c.c2c.links, 16);
  EXPECT_DOUBLE_EQ(c.clock_mhz, 900.0);
  EXPECT_EQ(c.streams.per_direction, 32);
  EXPECT_EQ(c.streams.group_sizes, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(c.vxm.alus(), 16);
  EXPECT_EQ(c.vxm.large_alus, (std::vector<int>{0, 2, 5, 7, 8, 10, 13, 15}));
  EXPECT_EQ(c.sxm.rotate_sizes, (std::vector<int>{3, 4}));
  EXPECT_EQ(c.latency.size(), latency_classes().size());
  EXPECT_EQ(c.latency_of("mxm_result").d_func, 24);
  EXPECT_EQ(c.latency_of("mem_write").d_skew, 1);
  EXPECT_EQ(c.energy_pj.size(), energy_keys().size());
  EXPECT_DOUBLE_EQ(c.energy_pj.at("stream_hop"), 6.0);
  EXPECT_EQ(a.system.topology, "single");
  EXPECT_EQ(a.system.chips, 1);
  EXPECT_TRUE(a.system.links.empty());
  EXPECT_EQ(a.assumptions.size(), 13u);
  EXPECT_EQ(c.icu.epoch_cycles, 256);
  EXPECT_TRUE(a.assumptions.count("chip.mem.bank_mapping"));

  const Derived d = derive(a);
  EXPECT_EQ(d.lanes, 320);
  EXPECT_EQ(d.vector_bytes, 320);
  EXPECT_EQ(d.mem_slices, 88);
  EXPECT_EQ(d.sram_bytes, 230686720u);
  EXPECT_EQ(d.sram_bytes, 220u * 1024u * 1024u);
  EXPECT_DOUBLE_EQ(d.sram_mib, 220.0);
  EXPECT_EQ(d.mxm_macs, 409600u);
  EXPECT_DOUBLE_EQ(d.peak_int8_tops, 2 * 409600 * 0.9e9 / 1e12);
  EXPECT_NEAR(d.peak_int8_tops, 737.28, 1e-9);
  EXPECT_NEAR(d.peak_fp16_tflops, 737.28 * 0.25, 1e-9);
  EXPECT_NEAR(d.link_gbps_raw, 120.0, 1e-9);
  EXPECT_NEAR(d.c2c_bidir_gbytes_per_s, 480.0, 1e-9);
  EXPECT_EQ(d.queues, 144);

  const json::object o = derived_json(a);
  EXPECT_EQ(o.at("lanes").to_number<int>(), 320);
  EXPECT_DOUBLE_EQ(o.at("sram_mib").to_number<double>(), 220.0);
  EXPECT_DOUBLE_EQ(o.at("peak_int8_tops").to_number<double>(), 737.28);
  EXPECT_EQ(o.at("instruction_queues").to_number<int>(), 144);
  EXPECT_EQ(o.at("sram_bytes").to_number<std::uint64_t>(), 230686720u);
}

TEST(Presets, TinyFigures) {
  const Arch a = load("tiny");
  EXPECT_EQ(a.name, "tiny");
  const Chip& c = a.chip;
  EXPECT_EQ(c.lanes(), 32);
  EXPECT_EQ(c.superlanes, 2);
  EXPECT_EQ(c.mem_slices(), 8);
  EXPECT_EQ(c.mem.depth, 256);
  EXPECT_EQ(c.mxm.planes, 2);
  EXPECT_EQ(c.mxm.rows, 32);
  EXPECT_EQ(c.mxm.cols, 32);
  EXPECT_EQ(c.mxm.install_cycles, 2);
  EXPECT_EQ(c.c2c.links, 4);
  EXPECT_EQ(c.icu.instruction_slices, 1);
  // Inherited from tsp-v1.
  EXPECT_DOUBLE_EQ(c.clock_mhz, 900.0);
  EXPECT_EQ(c.vxm.alus(), 16);
  EXPECT_EQ(a.assumptions.size(), 15u);
  EXPECT_TRUE(a.assumptions.count("chip.superlanes"));
  EXPECT_TRUE(a.assumptions.count("chip.mxm.fp16_rate"));

  const Derived d = derive(a);
  EXPECT_EQ(d.sram_bytes, 8u * 256u * 32u);
  EXPECT_EQ(d.mxm_macs, 2u * 32u * 32u);
  EXPECT_EQ(d.queues, 46);
  EXPECT_EQ(chip_queues(c).size(), 46u);
}

TEST(Presets, PresetTreeHasNoBase) {
  const json::value t = preset_tree("tiny");
  ASSERT_TRUE(t.is_object());
  EXPECT_FALSE(t.as_object().contains("base"));
  EXPECT_EQ(t.at("name").as_string(), "tiny");
  EXPECT_EQ(t.at("chip").at("superlanes").as_int64(), 2);
  EXPECT_EQ(t.at("chip").at("lanes_per_superlane").as_int64(), 16);  // from tsp-v1
  EXPECT_EQ(canonical_json(t), load("tiny").canonical);
  const InputError e = input_error([] { preset_tree("tsp-v2"); });
  EXPECT_TRUE(contains(e.message(), "no preset named 'tsp-v2'"));
}

// --- hashing ------------------------------------------------------------------------------------

TEST(Hash, Fnv1a64KnownValues) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
  EXPECT_EQ(hex64(0x0123456789abcdefull), "0123456789abcdef");
  EXPECT_EQ(hex64(1), "0000000000000001");
}

TEST(Hash, StableAcrossLoads) {
  const Arch a = load("tsp-v1");
  const Arch b = load("tsp-v1");
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.canonical, b.canonical);
  EXPECT_EQ(a.hash, fnv1a64(a.canonical.data(), a.canonical.size()));
  EXPECT_EQ(a.hash_hex(), hex64(a.hash));
  EXPECT_EQ(a.hash_hex().size(), 16u);
  EXPECT_NE(load("tiny").hash, a.hash);
}

TEST(Hash, SetChangesHashAndSameValueKeepsIt) {
  const Arch base = load("tsp-v1");
  const Arch changed = load("tsp-v1", {"chip.mem.depth=4096"});
  EXPECT_EQ(changed.chip.mem.depth, 4096);
  EXPECT_NE(changed.hash, base.hash);
  const Arch same = load("tsp-v1", {"chip.mem.depth=8192"});
  EXPECT_EQ(same.hash, base.hash);
  EXPECT_EQ(same.canonical, base.canonical);
  // Changed and changed back: the last --set wins.
  const Arch back = load("tsp-v1", {"chip.mem.depth=4096", "chip.mem.depth=8192"});
  EXPECT_EQ(back.hash, base.hash);
  // A string value.
  EXPECT_NE(load("tsp-v1", {"chip.mem.bank_mapping=interleaved"}).hash, base.hash);
}

TEST(Hash, FileWithOnlyABaseHashesLikeThePreset) {
  const std::string path = write_file("same.json", "{\"base\": \"tsp-v1\"}\n");
  EXPECT_EQ(load(path).hash, load("tsp-v1").hash);
  const std::string path2 =
      write_file("same2.json", "{\"base\": \"tsp-v1\", \"chip\": {\"mem\": {\"depth\": 8192}}}\n");
  EXPECT_EQ(load(path2).hash, load("tsp-v1").hash);
}

// --- slice order --------------------------------------------------------------------------------

TEST(SliceOrder, TspV1Expansion) {
  const Chip c = load("tsp-v1").chip;
  EXPECT_EQ(c.slice_order_spec, (std::vector<std::string>{"MXM", "MXM", "SXM", "MEM*44", "VXM",
                                                          "MEM*44", "SXM", "MXM", "MXM"}));
  ASSERT_EQ(c.slices.size(), 95u);
  for (std::size_t i = 0; i < c.slices.size(); ++i)
    EXPECT_EQ(c.slices[i].position, static_cast<int>(i));

  const Slice& vxm = slice_at(c, 47);
  EXPECT_EQ(vxm.kind, SliceKind::kVxm);
  EXPECT_EQ(vxm.hemisphere, Hemisphere::kCenter);

  // MEM index 0 is next to the VXM on both sides; the index grows outward.
  const Slice& w0 = slice_at(c, 46);
  EXPECT_EQ(w0.kind, SliceKind::kMem);
  EXPECT_EQ(w0.hemisphere, Hemisphere::kWest);
  EXPECT_EQ(w0.index, 0);
  EXPECT_EQ(slice_at(c, 3).kind, SliceKind::kMem);
  EXPECT_EQ(slice_at(c, 3).index, 43);
  const Slice& e0 = slice_at(c, 48);
  EXPECT_EQ(e0.kind, SliceKind::kMem);
  EXPECT_EQ(e0.hemisphere, Hemisphere::kEast);
  EXPECT_EQ(e0.index, 0);
  EXPECT_EQ(slice_at(c, 91).index, 43);
  EXPECT_EQ(slice_at(c, 91).hemisphere, Hemisphere::kEast);

  EXPECT_EQ(slice_at(c, 2).kind, SliceKind::kSxm);
  EXPECT_EQ(slice_at(c, 2).index, 0);
  EXPECT_EQ(slice_at(c, 1).kind, SliceKind::kMxm);
  EXPECT_EQ(slice_at(c, 1).index, 0);  // plane 0: the MXM slice nearest the VXM
  EXPECT_EQ(slice_at(c, 0).kind, SliceKind::kMxm);
  EXPECT_EQ(slice_at(c, 0).index, 1);
  EXPECT_EQ(slice_at(c, 0).hemisphere, Hemisphere::kWest);
  EXPECT_EQ(slice_at(c, 92).kind, SliceKind::kSxm);
  EXPECT_EQ(slice_at(c, 93).kind, SliceKind::kMxm);
  EXPECT_EQ(slice_at(c, 93).index, 0);
  EXPECT_EQ(slice_at(c, 94).index, 1);
  EXPECT_EQ(slice_at(c, 94).hemisphere, Hemisphere::kEast);

  int west = 0, east = 0, center = 0;
  for (const auto& s : c.slices)
    (s.hemisphere == Hemisphere::kWest   ? west
     : s.hemisphere == Hemisphere::kEast ? east
                                         : center)++;
  EXPECT_EQ(west, 47);
  EXPECT_EQ(east, 47);
  EXPECT_EQ(center, 1);
  // Mirror symmetry.
  for (int d = 1; d <= 47; ++d) {
    EXPECT_EQ(slice_at(c, 47 - d).kind, slice_at(c, 47 + d).kind) << d;
    EXPECT_EQ(slice_at(c, 47 - d).index, slice_at(c, 47 + d).index) << d;
  }
}

TEST(SliceOrder, TinyExpansion) {
  const Chip c = load("tiny").chip;
  ASSERT_EQ(c.slices.size(), 13u);
  EXPECT_EQ(slice_at(c, 6).kind, SliceKind::kVxm);
  EXPECT_EQ(slice_at(c, 5).kind, SliceKind::kMem);
  EXPECT_EQ(slice_at(c, 5).index, 0);
  EXPECT_EQ(slice_at(c, 2).index, 3);
  EXPECT_EQ(slice_at(c, 1).kind, SliceKind::kSxm);
  EXPECT_EQ(slice_at(c, 0).kind, SliceKind::kMxm);
  EXPECT_EQ(slice_at(c, 12).kind, SliceKind::kMxm);
  EXPECT_EQ(slice_at(c, 12).hemisphere, Hemisphere::kEast);
  EXPECT_STREQ(to_string(SliceKind::kMem), "MEM");
  EXPECT_STREQ(to_string(SliceKind::kVxm), "VXM");
}

// --- queues -------------------------------------------------------------------------------------

TEST(Queues, TspV1NamesIdsAndPositions) {
  const Chip c = load("tsp-v1").chip;
  const auto q = chip_queues(c);
  ASSERT_EQ(q.size(), 144u);
  std::set<std::string> names;
  for (std::size_t i = 0; i < q.size(); ++i) {
    EXPECT_EQ(q[i].id, i);
    names.insert(q[i].name);
  }
  EXPECT_EQ(names.size(), q.size()) << "queue names must be unique";

  auto expect_queue = [&](std::size_t id, const std::string& name, QueueUnit unit, int instance,
                          Hemisphere h, int position) {
    SCOPED_TRACE(name);
    ASSERT_LT(id, q.size());
    EXPECT_EQ(q[id].name, name);
    EXPECT_EQ(q[id].unit, unit);
    EXPECT_EQ(q[id].instance, instance);
    EXPECT_EQ(q[id].hemisphere, h);
    EXPECT_EQ(q[id].position, position);
    const auto found = find_queue(q, name);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->id, id);
  };
  using H = Hemisphere;
  expect_queue(0, "mem.w0", QueueUnit::kMem, 0, H::kWest, 46);
  expect_queue(43, "mem.w43", QueueUnit::kMem, 43, H::kWest, 3);
  expect_queue(44, "mem.e0", QueueUnit::kMem, 0, H::kEast, 48);
  expect_queue(87, "mem.e43", QueueUnit::kMem, 43, H::kEast, 91);
  expect_queue(88, "vxm.alu0", QueueUnit::kVxm, 0, H::kCenter, 47);
  expect_queue(103, "vxm.alu15", QueueUnit::kVxm, 15, H::kCenter, 47);
  expect_queue(104, "mxm.p0.wt", QueueUnit::kMxmWeights, 0, H::kWest, 1);
  expect_queue(105, "mxm.p0.abc", QueueUnit::kMxmAct, 0, H::kWest, 1);
  expect_queue(106, "mxm.p0.acc", QueueUnit::kMxmAcc, 0, H::kWest, 1);
  expect_queue(107, "mxm.p1.wt", QueueUnit::kMxmWeights, 1, H::kWest, 0);
  expect_queue(110, "mxm.p2.wt", QueueUnit::kMxmWeights, 2, H::kEast, 93);
  expect_queue(115, "mxm.p3.acc", QueueUnit::kMxmAcc, 3, H::kEast, 94);
  expect_queue(116, "sxm.w.shift", QueueUnit::kSxmShift, 0, H::kWest, 2);
  expect_queue(117, "sxm.w.permute", QueueUnit::kSxmPermute, 0, H::kWest, 2);
  expect_queue(118, "sxm.w.distribute", QueueUnit::kSxmDistribute, 0, H::kWest, 2);
  expect_queue(119, "sxm.w.rotate", QueueUnit::kSxmRotate, 0, H::kWest, 2);
  expect_queue(120, "sxm.w.transpose0", QueueUnit::kSxmTranspose, 0, H::kWest, 2);
  expect_queue(121, "sxm.w.transpose1", QueueUnit::kSxmTranspose, 1, H::kWest, 2);
  expect_queue(122, "sxm.e.shift", QueueUnit::kSxmShift, 1, H::kEast, 92);
  expect_queue(127, "sxm.e.transpose1", QueueUnit::kSxmTranspose, 1, H::kEast, 92);
  expect_queue(128, "c2c.l0", QueueUnit::kC2c, 0, H::kWest, 2);
  expect_queue(135, "c2c.l7", QueueUnit::kC2c, 7, H::kWest, 2);
  expect_queue(136, "c2c.l8", QueueUnit::kC2c, 8, H::kEast, 92);
  expect_queue(143, "c2c.l15", QueueUnit::kC2c, 15, H::kEast, 92);

  EXPECT_FALSE(find_queue(q, "mem.w44").has_value());
  EXPECT_FALSE(find_queue(q, "vxm.alu16").has_value());
  EXPECT_FALSE(find_queue(q, "MEM.W0").has_value());
  EXPECT_FALSE(find_queue(q, "").has_value());
}

TEST(Queues, CountsPerUnit) {
  const auto q = chip_queues(load("tsp-v1").chip);
  std::map<QueueUnit, int> n;
  for (const auto& x : q)
    ++n[x.unit];
  EXPECT_EQ(n[QueueUnit::kMem], 88);
  EXPECT_EQ(n[QueueUnit::kVxm], 16);
  EXPECT_EQ(n[QueueUnit::kMxmWeights], 4);
  EXPECT_EQ(n[QueueUnit::kMxmAct], 4);
  EXPECT_EQ(n[QueueUnit::kMxmAcc], 4);
  EXPECT_EQ(n[QueueUnit::kSxmShift], 2);
  EXPECT_EQ(n[QueueUnit::kSxmTranspose], 4);
  EXPECT_EQ(n[QueueUnit::kC2c], 16);
}

TEST(Queues, TinyNames) {
  const auto q = chip_queues(load("tiny").chip);
  ASSERT_EQ(q.size(), 46u);
  EXPECT_EQ(q[0].name, "mem.w0");
  EXPECT_EQ(q[0].position, 5);
  EXPECT_EQ(q[4].name, "mem.e0");
  EXPECT_EQ(q[4].position, 7);
  EXPECT_EQ(q[8].name, "vxm.alu0");
  EXPECT_EQ(q[24].name, "mxm.p0.wt");
  EXPECT_EQ(q[24].position, 0);
  EXPECT_EQ(q[27].name, "mxm.p1.wt");
  EXPECT_EQ(q[27].position, 12);
  EXPECT_EQ(q[30].name, "sxm.w.shift");
  EXPECT_EQ(q[42].name, "c2c.l0");
  EXPECT_EQ(q[45].name, "c2c.l3");
  EXPECT_EQ(q[45].hemisphere, Hemisphere::kEast);
}

TEST(Queues, TwoSxmUnitsPerHemisphereAreNumbered) {
  const Arch a = load("tiny", {"chip.sxm.units=4"});  // the slice order follows
  const auto q = chip_queues(a.chip);
  EXPECT_EQ(q.size(), 8u + 16u + 6u + 4u * 6u + 4u);
  const auto w0 = find_queue(q, "sxm.w0.shift");
  const auto w1 = find_queue(q, "sxm.w1.transpose1");
  const auto e1 = find_queue(q, "sxm.e1.rotate");
  ASSERT_TRUE(w0 && w1 && e1);
  EXPECT_EQ(w0->position, 2);  // SXM w0 is nearer the VXM
  EXPECT_EQ(w1->position, 1);
  EXPECT_EQ(e1->position, 13);
  EXPECT_FALSE(find_queue(q, "sxm.w.shift").has_value());
  // Links leave beside the outermost SXM.
  EXPECT_EQ(find_queue(q, "c2c.l0")->position, 1);
  EXPECT_EQ(find_queue(q, "c2c.l3")->position, 13);
}

// --- MEM banks ----------------------------------------------------------------------------------

TEST(Mem, BankOfHalves) {
  const Chip c = load("tsp-v1").chip;
  EXPECT_EQ(c.mem.bank_of(0), 0);
  EXPECT_EQ(c.mem.bank_of(4095), 0);
  EXPECT_EQ(c.mem.bank_of(4096), 1);
  EXPECT_EQ(c.mem.bank_of(8191), 1);
  const Chip t = load("tiny").chip;
  EXPECT_EQ(t.mem.bank_of(127), 0);
  EXPECT_EQ(t.mem.bank_of(128), 1);
}

TEST(Mem, BankOfInterleaved) {
  const Chip c = load("tsp-v1", {"chip.mem.bank_mapping=interleaved"}).chip;
  EXPECT_EQ(c.mem.bank_mapping, "interleaved");
  EXPECT_EQ(c.mem.bank_of(0), 0);
  EXPECT_EQ(c.mem.bank_of(1), 1);
  EXPECT_EQ(c.mem.bank_of(2), 0);
  EXPECT_EQ(c.mem.bank_of(8191), 1);
  const Chip four = load("tsp-v1", {"chip.mem.banks=4"}).chip;
  EXPECT_EQ(four.mem.bank_of(2047), 0);
  EXPECT_EQ(four.mem.bank_of(2048), 1);
  EXPECT_EQ(four.mem.bank_of(8191), 3);
}

// --- systems ------------------------------------------------------------------------------------

void expect_fully_connected(const Arch& a) {
  const int n = a.system.chips;
  EXPECT_EQ(a.system.links.size(), static_cast<std::size_t>(n * (n - 1) / 2));
  std::set<std::pair<int, int>> pairs, ports;
  for (const auto& l : a.system.links) {
    EXPECT_NE(l.a.chip, l.b.chip);
    EXPECT_LT(l.a.chip, n);
    EXPECT_LT(l.b.chip, n);
    EXPECT_LT(l.a.port, a.chip.c2c.links);
    EXPECT_LT(l.b.port, a.chip.c2c.links);
    EXPECT_TRUE(pairs.insert({std::min(l.a.chip, l.b.chip), std::max(l.a.chip, l.b.chip)}).second)
        << "pair " << l.a.chip << "-" << l.b.chip << " linked twice";
    EXPECT_TRUE(ports.insert({l.a.chip, l.a.port}).second)
        << "chip " << l.a.chip << " port " << l.a.port << " reused";
    EXPECT_TRUE(ports.insert({l.b.chip, l.b.port}).second)
        << "chip " << l.b.chip << " port " << l.b.port << " reused";
    // Documented rule: chip i's port p leads to chip (i + p + 1) mod chips.
    EXPECT_EQ((l.a.chip + l.a.port + 1) % n, l.b.chip);
    EXPECT_EQ((l.b.chip + l.b.port + 1) % n, l.a.chip);
  }
  EXPECT_EQ(pairs.size(), static_cast<std::size_t>(n * (n - 1) / 2));
  // Every chip uses exactly n - 1 ports.
  EXPECT_EQ(ports.size(), static_cast<std::size_t>(n * (n - 1)));
}

TEST(System, FullyConnectedFourChips) {
  const std::string path = write_file(
      "fc4.json",
      R"({"base": "tsp-v1", "system": {"topology": "fully_connected", "chips": 4, "links": []}})");
  const Arch a = load(path);
  EXPECT_EQ(a.system.topology, "fully_connected");
  EXPECT_EQ(a.system.chips, 4);
  expect_fully_connected(a);
  EXPECT_EQ(derive(a).queues, 144);
  EXPECT_EQ(derived_json(a).at("system_links").to_number<int>(), 6);
}

TEST(System, FullyConnectedUsesEveryLink) {
  // 17 chips need 16 links each: exactly what tsp-v1 has.
  const std::string path = write_file(
      "fc17.json", R"({"base": "tsp-v1", "system": {"topology": "fully_connected", "chips": 17}})");
  const Arch a = load(path);
  expect_fully_connected(a);
  EXPECT_EQ(a.system.links.size(), 136u);
  for (int chips = 2; chips <= 5; ++chips) {
    SCOPED_TRACE(chips);
    expect_fully_connected(
        load("tiny", {"system.topology=fully_connected", "system.chips=" + std::to_string(chips)}));
  }
}

TEST(System, ExplicitLinks) {
  const std::string path = write_file("explicit.json", R"({
  "base": "tiny",
  "system": {
    "topology": "explicit",
    "chips": 3,
    "links": [
      {"a": {"chip": 0, "port": 0}, "b": {"chip": 1, "port": 2}},
      {"a": {"chip": 1, "port": 0}, "b": {"chip": 2, "port": 3}}
    ]
  }
})");
  const Arch a = load(path);
  ASSERT_EQ(a.system.links.size(), 2u);
  EXPECT_EQ(a.system.links[0].a.chip, 0);
  EXPECT_EQ(a.system.links[0].b.port, 2);
  EXPECT_EQ(a.system.links[1].b.chip, 2);
  EXPECT_EQ(a.system.links[1].b.port, 3);
}

// --- overrides and nearest preset --------------------------------------------------------------

TEST(Overrides, TinyFromTspV1) {
  const Arch tiny = load("tiny");
  const auto ov = overrides(preset_tree("tsp-v1"), tiny.resolved);
  ASSERT_FALSE(ov.empty());
  EXPECT_NE(std::find(ov.begin(), ov.end(), "chip.superlanes=2"), ov.end());
  EXPECT_NE(std::find(ov.begin(), ov.end(), "chip.mem.depth=256"), ov.end());
  EXPECT_NE(std::find(ov.begin(), ov.end(), "name=\"tiny\""), ov.end());
  const Arch rebuilt = load("tsp-v1", ov);
  EXPECT_EQ(rebuilt.canonical, tiny.canonical);
  EXPECT_EQ(rebuilt.hash, tiny.hash);
}

TEST(Overrides, NoneBetweenEqualDescriptions) {
  EXPECT_TRUE(overrides(preset_tree("tsp-v1"), load("tsp-v1").resolved).empty());
  const auto [name, sets] = nearest_preset(load("tiny"));
  EXPECT_EQ(name, "tiny");
  EXPECT_TRUE(sets.empty());
  EXPECT_EQ(nearest_preset(load("tsp-v1")).first, "tsp-v1");
}

TEST(Overrides, NearestPresetOfAModifiedTiny) {
  const Arch a = load("tiny", {"chip.mem.depth=512", "name=\"tiny-512\""});
  const auto [name, sets] = nearest_preset(a);
  EXPECT_EQ(name, "tiny");
  EXPECT_EQ(sets, (std::vector<std::string>{"chip.mem.depth=512", "name=\"tiny-512\""}));
  const Arch back = load(name, sets);
  EXPECT_EQ(back.canonical, a.canonical);
  EXPECT_EQ(back.hash, a.hash);
}

TEST(Overrides, ObjectsWithDifferentKeysAreReplacedWhole) {
  const std::string path = write_file("more.json", R"({
  "base": "tsp-v1",
  "chip": {"mem": {"depth": 4096}},
  "assumptions": {"chip.mem.depth": "smaller for a test"}
})");
  const Arch a = load(path);
  const auto ov = overrides(preset_tree("tsp-v1"), a.resolved);
  ASSERT_EQ(ov.size(), 2u);
  EXPECT_EQ(ov[0].rfind("assumptions={", 0), 0u) << ov[0];
  EXPECT_EQ(ov[1], "chip.mem.depth=4096");
  const Arch back = load("tsp-v1", ov);
  EXPECT_EQ(back.canonical, a.canonical);
}

TEST(Overrides, ChangedAssumptionText) {
  const std::string path = write_file("why.json", R"({
  "base": "tiny",
  "assumptions": {"chip.mem.depth": "a different reason"}
})");
  const Arch a = load(path);
  const auto ov = overrides(preset_tree("tiny"), a.resolved);
  ASSERT_EQ(ov.size(), 1u);
  const Arch back = load("tiny", ov);
  EXPECT_EQ(back.canonical, a.canonical);
}

TEST(Diff, ListsDifferingLeaves) {
  const auto keys = diff(load("tsp-v1").resolved, load("tiny").resolved);
  for (const char* k : {"chip.superlanes", "chip.mem.depth", "chip.mxm.planes", "chip.c2c.links",
                        "name", "description", "assumptions.chip.superlanes"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  EXPECT_EQ(std::find(keys.begin(), keys.end(), "chip.clock_mhz"), keys.end());
  EXPECT_TRUE(diff(load("tiny").resolved, load("tiny").resolved).empty());
  EXPECT_EQ(diff(json::value(1), json::value(2)), (std::vector<std::string>{"(root)"}));
}

// --- canonical and pretty JSON -------------------------------------------------------------------

TEST(CanonicalJson, SortedAndWhitespaceFree) {
  const json::value v = json::parse(R"({ "b" : 1,
    "a" : [ 1, 2.5, { "d": true, "c": null } ], "e": "x y", "f": 900.0, "g": -3 })");
  EXPECT_EQ(canonical_json(v),
            R"({"a":[1,2.5,{"c":null,"d":true}],"b":1,"e":"x y","f":900.0,"g":-3})");
  EXPECT_EQ(canonical_json(json::parse("0.1")), "0.1");
  EXPECT_EQ(canonical_json(json::parse("0.9697")), "0.9697");
  EXPECT_EQ(canonical_json(json::parse("1e300")), "1e+300");
  EXPECT_EQ(canonical_json(json::parse(R"("a\"b")")), R"("a\"b")");
  EXPECT_EQ(canonical_json(json::parse("{}")), "{}");
  EXPECT_EQ(canonical_json(json::parse("[]")), "[]");
  // Parsing the canonical text gives the same canonical text.
  const std::string c = load("tsp-v1").canonical;
  EXPECT_EQ(canonical_json(json::parse(c)), c);
  EXPECT_FALSE(whitespace_outside_strings(c));
  EXPECT_TRUE(whitespace_outside_strings(pretty_json(load("tsp-v1").resolved)));
  EXPECT_EQ(c.rfind("{\"assumptions\":", 0), 0u);
}

TEST(CanonicalJson, PrettyIsSortedAndReparses) {
  const json::value v = json::parse(R"({"b": {"y": 1, "x": [1, 2]}, "a": "s"})");
  EXPECT_EQ(pretty_json(v),
            "{\n  \"a\": \"s\",\n  \"b\": {\n    \"x\": [1, 2],\n    \"y\": 1\n  }\n}");
  EXPECT_EQ(canonical_json(json::parse(pretty_json(load("tiny").resolved))),
            load("tiny").canonical);
}

TEST(JsonDoc, LocationsOfKeysAndArrayElements) {
  const std::string text = "{\n  \"a\": {\"b\": 1},\n  \"c\": [10, \"x\"]\n}";
  const JsonDoc d = parse_json_doc(text, "f.json");
  EXPECT_EQ(d.locations.at("a"), "f.json:2:3");
  EXPECT_EQ(d.locations.at("a.b"), "f.json:2:9");
  EXPECT_EQ(d.locations.at("c[0]"), "f.json:3:9");
  EXPECT_EQ(d.locations.at("c[1]"), "f.json:3:13");
  EXPECT_EQ(d.locations.at("a.b.zz"), "f.json:2:9");  // nearest ancestor
  EXPECT_EQ(d.locations.at("nope"), "f.json");        // the document
  EXPECT_EQ(d.root.at("c").at(1).as_string(), "x");
  // Comments and trailing commas are accepted.
  const JsonDoc lenient = parse_json_doc("// c\n{\"a\": [1, 2,], /* x */ \"b\": 2,}\n", "g");
  EXPECT_EQ(lenient.root.at("a").as_array().size(), 2u);
  EXPECT_EQ(lenient.locations.at("b"), "g:2:24");
}

// --- diagnostics helpers ----------------------------------------------------------------------

TEST(LineIndex, LineAndColumn) {
  const lpu::LineIndex li("ab\ncd\n\nxyz");
  EXPECT_EQ(li.line_col(0), std::make_pair(1, 1));
  EXPECT_EQ(li.line_col(1), std::make_pair(1, 2));
  EXPECT_EQ(li.line_col(2), std::make_pair(1, 3));  // the newline itself
  EXPECT_EQ(li.line_col(3), std::make_pair(2, 1));
  EXPECT_EQ(li.line_col(6), std::make_pair(3, 1));
  EXPECT_EQ(li.line_col(7), std::make_pair(4, 1));
  EXPECT_EQ(li.line_col(9), std::make_pair(4, 3));
  EXPECT_EQ(li.line_col(10), std::make_pair(4, 4));   // end of text
  EXPECT_EQ(li.line_col(999), std::make_pair(4, 4));  // clamped
  EXPECT_EQ(li.where("f.txt", 4), "f.txt:2:2");
  const lpu::LineIndex empty("");
  EXPECT_EQ(empty.line_col(0), std::make_pair(1, 1));
}

TEST(DidYouMean, NearestNames) {
  const std::vector<std::string> c = {"depth", "banks", "bank_mapping", "ecc"};
  EXPECT_EQ(lpu::nearest_names("dpeth", c), (std::vector<std::string>{"depth"}));
  EXPECT_EQ(lpu::nearest_names("DEPTH", c), (std::vector<std::string>{"depth"}));
  EXPECT_EQ(lpu::nearest_names("bank", c), (std::vector<std::string>{"banks", "bank_mapping"}));
  EXPECT_TRUE(lpu::nearest_names("zzzzzzzz", c).empty());
  EXPECT_EQ(lpu::nearest_names("ab", {"abc", "abd", "abe", "abf"}, 2),
            (std::vector<std::string>{"abc", "abd"}));
  EXPECT_EQ(lpu::did_you_mean("dpeth", c), "did you mean 'depth'?");
  EXPECT_EQ(lpu::did_you_mean("bank", c), "did you mean 'banks' or 'bank_mapping'?");
  EXPECT_EQ(lpu::did_you_mean("ab", {"abc", "abd", "abe"}), "did you mean 'abc', 'abd' or 'abe'?");
  EXPECT_EQ(lpu::did_you_mean("zzzzzzzz", c), "");
  EXPECT_EQ(lpu::did_you_mean("x", {}), "");
}

TEST(InputErrorText, WhatJoinsWhereAndMessage) {
  const InputError e("f:1:2", "bad");
  EXPECT_EQ(std::string(e.what()), "f:1:2: error: bad");
  EXPECT_EQ(e.where(), "f:1:2");
  EXPECT_EQ(e.message(), "bad");
  EXPECT_EQ(std::string(InputError("", "bad").what()), "error: bad");
}

// --- rejected descriptions
// ------------------------------------------------------------------------

TEST(ArchErrors, UnknownKeyWithSuggestion) {
  const std::string text = R"({
  "base": "tsp-v1",
  "chip": {
    "mem": {
      "dpeth": 4096
    }
  }
})";
  expect_file_error(text, "\"dpeth\"", {"unknown key 'chip.mem.dpeth'", "did you mean 'depth'?"});
}

TEST(ArchErrors, UnknownTopLevelKey) {
  const std::string text = "{\"base\": \"tiny\",\n \"nmae\": \"x\"}\n";
  expect_file_error(text, "\"nmae\"", {"unknown key 'nmae'", "did you mean 'name'?"});
}

TEST(ArchErrors, WrongType) {
  const std::string text = R"({
  "base": "tsp-v1",
  "chip": {"superlanes": "twenty"}
})";
  expect_file_error(text, "\"superlanes\"", {"chip.superlanes: must be an integer, got a string"});
}

TEST(ArchErrors, WrongTypeBoolean) {
  const std::string text = R"({"base": "tsp-v1",
  "chip": {"icu": {"preloaded": 1}}})";
  expect_file_error(text, "\"preloaded\"",
                    {"chip.icu.preloaded: must be true or false, got an integer"});
}

TEST(ArchErrors, WrongTypeInArrayElement) {
  const std::string text = R"({"base": "tsp-v1",
  "chip": {"vxm": {"large_alus": [0, 2, "five"]}}})";
  expect_file_error(text, "\"five\"", {"chip.vxm.large_alus[2]: must be an integer, got a string"});
}

TEST(ArchErrors, MissingKey) {
  // Remove one key from a full copy of the preset; the error points at the enclosing object.
  struct Case {
    std::vector<std::string> path;  // object path, then the key to remove
    std::string object_needle;      // the enclosing object's key in the pretty text
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"chip", "mem", "banks"}, "\"mem\": {", "chip.mem: missing key 'chip.mem.banks'"},
      {{"chip", "clock_mhz"}, "\"chip\": {", "chip: missing key 'chip.clock_mhz'"},
      {{"chip", "latency", "mxm_result"},
       "\"latency\": {",
       "chip.latency: missing key 'chip.latency.mxm_result'"},
      {{"chip", "mem", "ecc", "check_bits"},
       "\"ecc\": {",
       "chip.mem.ecc: missing key 'chip.mem.ecc.check_bits'"},
      {{"system", "topology"}, "\"system\": {", "system: missing key 'system.topology'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    json::value tree = preset_tree("tsp-v1");
    json::object* o = &tree.as_object();
    for (std::size_t i = 0; i + 1 < c.path.size(); ++i)
      o = &o->at(c.path[i]).as_object();
    ASSERT_EQ(o->erase(c.path.back()), 1u);
    const std::string text = pretty_json(tree) + "\n";
    const std::string path = write_file("missing.json", text);
    const InputError e = input_error([&] { load(path); });
    EXPECT_EQ(e.where(), loc(path, text, c.object_needle));
    EXPECT_EQ(e.message(), c.message);
  }
}

TEST(ArchErrors, FullPresetCopyLoads) {
  // The control for MissingKey: the unmodified copy loads and hashes like the preset.
  const std::string text = pretty_json(preset_tree("tsp-v1"));
  const std::string path = write_file("full.json", text);
  EXPECT_EQ(load(path).hash, load("tsp-v1").hash);
}

TEST(ArchErrors, OutOfRange) {
  const std::string text = R"({
  "base": "tsp-v1",
  "chip": {
    "mem": {"slices_per_hemisphere": 44, "depth": 1}
  }
})";
  expect_file_error(text, "\"depth\"", {"chip.mem.depth: must be in [2, 16777216], got 1"});
}

TEST(ArchErrors, OutOfRangeReal) {
  const std::string text = "{\"base\": \"tiny\", \"chip\": {\n\t\"clock_mhz\": 0}}";
  expect_file_error(text, "\"clock_mhz\"", {"chip.clock_mhz: must be in (0, 100000], got 0"});
}

TEST(ArchErrors, LanesPerSuperlaneMustBe16) {
  const std::string text = R"({
  "base": "tsp-v1",
  "chip": {"superlanes": 40, "lanes_per_superlane": 8}
})";
  expect_file_error(text, "\"lanes_per_superlane\"", {"chip.lanes_per_superlane: must be 16"});
}

TEST(Arch, SliceOrderFollowsTheCountsWhenNotGiven) {
  // The presets give no slice order: each count can be swept alone.
  const Arch a = load("tsp-v1", {"chip.mem.slices_per_hemisphere=40"});
  EXPECT_EQ(a.chip.slice_order_spec, (std::vector<std::string>{"MXM", "MXM", "SXM", "MEM*40", "VXM",
                                                               "MEM*40", "SXM", "MXM", "MXM"}));
  EXPECT_EQ(a.chip.mem_slices(), 80);
  const Arch p = load("tsp-v1", {"chip.mxm.planes=8"});
  EXPECT_EQ(p.chip.slices.size(), 99u);
  EXPECT_EQ(chip_queues(p.chip).size(), 144u + 12u);
  EXPECT_EQ(find_queue(chip_queues(p.chip), "mxm.p7.acc")->position, 98);
  const Arch s = load("tsp-v1", {"chip.sxm.units=4"});
  EXPECT_EQ(s.chip.slice_order_spec[2], "SXM");
  EXPECT_EQ(s.chip.slice_order_spec[3], "SXM");
  // Not written into the description: the same text, hash and overrides as before.
  EXPECT_FALSE(load("tsp-v1").resolved.at("chip").as_object().contains("slice_order"));
  EXPECT_EQ(derived_json(a).at("slice_order").as_array().size(), 9u);
}

TEST(Docs, DescriptiveParametersAreListedWithTheirReasons) {
  std::ifstream f(std::string(LPU_SOURCE_DIR) + "/docs/arch-description.md");
  const std::string doc((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(doc.empty());
  for (const auto& [key, why] : descriptive_parameters())
    EXPECT_TRUE(contains(doc, "* `" + key + "`: " + why + ".")) << key;
}

TEST(ArchErrors, SliceOrderDisagreesWithMemCount) {
  const std::string text = R"({
  "base": "tsp-v1",
  "chip": {
    "slice_order": ["MXM", "MXM", "SXM", "MEM*44", "VXM", "MEM*44", "SXM", "MXM", "MXM"],
    "mem": {"slices_per_hemisphere": 40}
  }
})";
  // Reported at the count, naming where the slice order came from.
  const std::string path = write_file("arch.json", text);
  const InputError e = input_error([&] { load(path); });
  EXPECT_EQ(e.where(), loc(path, text, "\"slices_per_hemisphere\""));
  EXPECT_TRUE(contains(e.message(),
                       "chip.mem.slices_per_hemisphere: gives 40 MEM slices per "
                       "hemisphere, but chip.slice_order (" +
                           loc(path, text, "\"slice_order\"") + ") has 44"));
}

TEST(ArchErrors, SliceOrderChangedWithoutTheCount) {
  const std::string text = R"({
  "base": "tiny",
  "chip": {
    "slice_order": ["MXM", "SXM", "MEM*3", "VXM", "MEM*3", "SXM", "MXM"]
  }
})";
  const std::string path = write_file("arch.json", text);
  const InputError e = input_error([&] { load(path); });
  // The count came from the tiny preset, so the error is located there; the message names the
  // file and line:col of the slice order that disagrees.
  EXPECT_EQ(e.where().rfind("preset tiny:", 0), 0u) << e.where();
  EXPECT_TRUE(contains(e.message(), "gives 4 MEM slices per hemisphere, but chip.slice_order (" +
                                        loc(path, text, "\"slice_order\"") + ") has 3"));
}

TEST(ArchErrors, VxmNotInTheMiddle) {
  const std::string text = R"({
  "base": "tsp-v1",
  "chip": {
    "slice_order": ["MXM", "MXM", "SXM", "MEM*44", "VXM", "MEM*43", "SXM", "MXM", "MXM"]
  }
})";
  expect_file_error(text, "\"slice_order\"",
                    {"chip.slice_order: the VXM must sit in the middle: 47 slices west of it, "
                     "46 east"});
}

TEST(ArchErrors, HemispheresNotMirrored) {
  const std::string text = R"({
  "base": "tsp-v1",
  "chip": {
    "slice_order": ["MXM", "MXM", "SXM", "MEM*44", "VXM", "MEM*44", "MXM", "SXM", "MXM"]
  }
})";
  // 45 slices out from the VXM, west has SXM and east has MXM: element [6] is at fault.
  expect_file_error(text, "\"MXM\", \"SXM\", \"MXM\"]",
                    {"chip.slice_order[6]: the hemispheres must mirror each other: 45 slices from "
                     "the VXM, west has SXM and east has MXM"});
}

TEST(ArchErrors, TwoVxms) {
  const std::string text = R"({"base": "tiny",
  "chip": {"slice_order": ["MXM", "SXM", "MEM*4", "VXM", "VXM", "MEM*4", "SXM", "MXM"]}})";
  expect_file_error(text, "\"VXM\"", {"chip.slice_order[4]: more than one VXM slice"}, 1);
}

TEST(ArchErrors, UnknownSliceKind) {
  const std::string text = R"({"base": "tiny",
  "chip": {"slice_order": ["MXM", "SXM", "MEN*4", "VXM", "MEM*4", "SXM", "MXM"]}})";
  expect_file_error(text, "\"MEN*4\"", {"chip.slice_order[2]: unknown slice kind \"MEN\""});
}

TEST(ArchErrors, LinkToChipThatDoesNotExist) {
  const std::string text = R"({
  "base": "tsp-v1",
  "system": {
    "topology": "explicit",
    "chips": 2,
    "links": [
      {"a": {"chip": 0, "port": 0}, "b": {"chip": 2, "port": 0}}
    ]
  }
})";
  expect_file_error(text, "\"b\"",
                    {"system.links[0].b: links to chip 2, but the system has 2 chip(s) (0..1)"});
}

TEST(ArchErrors, PortOutOfRange) {
  const std::string text = R"({
  "base": "tiny",
  "system": {"topology": "explicit", "chips": 2,
    "links": [{"a": {"chip": 0, "port": 4}, "b": {"chip": 1, "port": 0}}]}
})";
  expect_file_error(
      text, "\"a\"",
      {"system.links[0].a: uses port 4, but a chip has 4 C2C links (chip.c2c.links)"});
}

TEST(ArchErrors, PortUsedTwice) {
  const std::string text = R"({
  "base": "tsp-v1",
  "system": {
    "topology": "explicit",
    "chips": 3,
    "links": [
      {"a": {"chip": 0, "port": 0}, "b": {"chip": 1, "port": 0}},
      {"a": {"chip": 0, "port": 0}, "b": {"chip": 2, "port": 0}}
    ]
  }
})";
  expect_file_error(text, "\"a\"",
                    {"system.links[1].a: chip 0 port 0 is already used by system.links[0].a"}, 1);
}

TEST(ArchErrors, LinkFromAChipToItself) {
  const std::string text = R"({
  "base": "tsp-v1",
  "system": {
    "topology": "explicit",
    "chips": 2,
    "links": [
      {"a": {"chip": 1, "port": 0}, "b": {"chip": 1, "port": 1}}
    ]
  }
})";
  // An object inside an array has no location of its own: the nearest ancestor is "links".
  expect_file_error(text, "\"links\"", {"system.links[0]: joins chip 1 to itself"});
}

TEST(ArchErrors, LinksGivenForAGeneratedTopology) {
  const std::string text = R"({"base": "tiny", "system": {"topology": "fully_connected",
  "chips": 2, "links": [{"a": {"chip": 0, "port": 0}, "b": {"chip": 1, "port": 0}}]}})";
  expect_file_error(text, "\"links\"", {"system.links: must be empty unless topology is"});
}

TEST(ArchErrors, FullyConnectedWithMoreChipsThanLinks) {
  const std::string text = R"({
  "base": "tiny",
  "system": {"topology": "fully_connected", "chips": 6}
})";
  expect_file_error(text, "\"chips\"",
                    {"system.chips: 6 fully connected chips need 5 links per chip; a chip has 4 "
                     "(chip.c2c.links)"});
}

TEST(ArchErrors, SingleTopologyWithTwoChips) {
  const std::string text = "{\"base\": \"tiny\",\n  \"system\": {\"chips\": 2}}";
  expect_file_error(text, "\"chips\"", {"system.chips: must be 1 for topology \"single\""});
}

TEST(ArchErrors, BadEnumString) {
  const std::string text = "{\"base\": \"tiny\",\n  \"system\": {\"topology\": \"ring\"}}";
  expect_file_error(text, "\"topology\"",
                    {"system.topology: must be one of \"single\", \"fully_connected\", "
                     "\"dragonfly\", \"explicit\"; got \"ring\""});
}

TEST(ArchErrors, InvalidJsonSyntax) {
  const std::string text = "{\n  \"base\": \"tiny\",\n  \"chip\": {\"superlanes\": @}\n}\n";
  const std::string path = write_file("bad.json", text);
  const InputError e = input_error([&] { load(path); });
  EXPECT_EQ(e.where(), loc(path, text, "@"));
  EXPECT_TRUE(contains(e.message(), "invalid JSON"));
}

TEST(ArchErrors, InvalidJsonUnterminated) {
  const std::string text = "{\"base\": \"tiny\",\n  \"chip\": {\"superlanes\": 2}\n";
  const std::string path = write_file("bad.json", text);
  const InputError e = input_error([&] { load(path); });
  EXPECT_EQ(e.where(), path + ":3:1");  // the end of the text
  EXPECT_TRUE(contains(e.message(), "invalid JSON"));
}

TEST(ArchErrors, NotAnObject) {
  const std::string path = write_file("array.json", "[1, 2]\n");
  const InputError e = input_error([&] { load(path); });
  EXPECT_EQ(e.where(), path);
  EXPECT_TRUE(contains(e.message(), "must be a JSON object"));
}

TEST(ArchErrors, UnreadableFile) {
  const std::string missing = (scratch_dir() / "no-such-file.json").string();
  const InputError e = input_error([&] { load_json_file(missing); });
  EXPECT_EQ(e.where(), missing);
  EXPECT_EQ(e.message(), "cannot read file");
  // Through load(): a name that is neither a preset nor a file.
  const InputError l = input_error([&] { load(missing); });
  EXPECT_TRUE(contains(l.message(), "no preset or file named '" + missing + "'"));
  EXPECT_TRUE(contains(l.message(), "(presets: "));
}

TEST(ArchErrors, DirectoryInsteadOfFile) {
  const fs::path dir = scratch_dir() / "a-directory.json";
  fs::create_directories(dir);
  const InputError e = input_error([&] { load(dir.string()); });
  EXPECT_EQ(e.where(), dir.string());
  EXPECT_TRUE(contains(e.message(), "cannot read file"));
}

TEST(ArchErrors, UnknownPresetName) {
  const InputError e = input_error([] { load("tsp-v2"); });
  EXPECT_EQ(e.where(), "");  // a command-line name has no location
  EXPECT_EQ(e.message(),
            "no preset or file named 'tsp-v2'; did you mean 'tsp-v1'? (presets: tsp-v1, tiny, "
            "node8, rack72)");
  EXPECT_EQ(std::string(e.what()), "error: " + e.message());
}

TEST(ArchErrors, UnknownBaseInAFile) {
  const std::string text = "{\n  \"base\": \"tsp-v2\"\n}\n";
  expect_file_error(text, "\"base\"", {"base", "no preset or file named 'tsp-v2'"});
}

TEST(ArchErrors, BaseIsRelativeToTheFile) {
  const fs::path dir = scratch_dir() / "sub";
  fs::create_directories(dir);
  std::ofstream(dir / "parent.json") << R"({"base": "tiny", "chip": {"mem": {"depth": 128}}})";
  std::ofstream(dir / "child.json") << R"({"base": "parent.json", "name": "child"})";
  const Arch a = load((dir / "child.json").string());
  EXPECT_EQ(a.name, "child");
  EXPECT_EQ(a.chip.mem.depth, 128);
  EXPECT_EQ(a.chip.lanes(), 32);
}

TEST(ArchErrors, BaseCycle) {
  // Absolute paths, so that the cycle does not depend on how relative bases are resolved.
  const fs::path dir = scratch_dir();
  std::ofstream(dir / "a.json") << "{\"base\": \"" << (dir / "b.json").string() << "\"}";
  std::ofstream(dir / "b.json") << "{\"base\": \"" << (dir / "a.json").string() << "\"}";
  const InputError e = input_error([&] { load((dir / "a.json").string()); });
  EXPECT_TRUE(contains(e.message(), "\"base\" chain is deeper than 8 (a cycle?)"));
}

TEST(ArchErrors, RelativeBaseTwoLevelsDeep) {
  const fs::path dir = scratch_dir() / "sub";
  fs::create_directories(dir);
  std::ofstream(dir / "parent.json") << R"({"base": "tiny", "chip": {"mem": {"depth": 128}}})";
  std::ofstream(dir / "mid.json") << R"({"base": "parent.json", "name": "mid"})";
  std::ofstream(dir / "child.json") << R"({"base": "mid.json", "description": "child"})";
  const Arch a = load((dir / "child.json").string());
  EXPECT_EQ(a.name, "mid");
  EXPECT_EQ(a.description, "child");
  EXPECT_EQ(a.chip.mem.depth, 128);
}

TEST(ArchErrors, BadSetSyntax) {
  for (const std::string bad : {"chip.mem.depth", "=4096"}) {
    SCOPED_TRACE(bad);
    const InputError e = input_error([&] { load("tsp-v1", {bad}); });
    EXPECT_EQ(e.where(), "--set " + bad);
    EXPECT_EQ(e.message(), "expected PATH=VALUE, e.g. chip.mem.depth=4096");
  }
  const InputError idx = input_error([] { load("tsp-v1", {"chip.vxm.large_alus[x]=1"}); });
  EXPECT_EQ(idx.where(), "--set chip.vxm.large_alus[x]=1");
  EXPECT_TRUE(contains(idx.message(), "bad array index 'x'"));
  const InputError open = input_error([] { load("tsp-v1", {"chip.vxm.large_alus[1=1"}); });
  EXPECT_TRUE(contains(open.message(), "unclosed '['"));
  const InputError empty = input_error([] { load("tsp-v1", {"chip..depth=1"}); });
  EXPECT_EQ(empty.where(), "--set chip..depth=1");
  EXPECT_TRUE(contains(empty.message(), "empty key in key path 'chip..depth'"));
}

TEST(ArchErrors, SetOfAnUnknownPath) {
  const InputError e = input_error([] { load("tsp-v1", {"chip.mem.dpeth=4096"}); });
  EXPECT_EQ(e.where(), "--set chip.mem.dpeth=4096");
  EXPECT_EQ(e.message(), "unknown key 'chip.mem.dpeth'; did you mean 'depth'?");
  EXPECT_EQ(std::string(e.what()).rfind("--set ", 0), 0u);

  const InputError deep = input_error([] { load("tsp-v1", {"chip.mem.depth.x=1"}); });
  EXPECT_EQ(deep.where(), "--set chip.mem.depth.x=1");
  EXPECT_TRUE(contains(deep.message(), "'chip.mem.depth' is not an object"));

  const InputError idx = input_error([] { load("tsp-v1", {"chip.vxm.large_alus[8]=1"}); });
  EXPECT_EQ(idx.where(), "--set chip.vxm.large_alus[8]=1");
  EXPECT_TRUE(contains(idx.message(), "'chip.vxm.large_alus' has 8 elements; index 8"));

  const InputError notarr = input_error([] { load("tsp-v1", {"chip.mem[0]=1"}); });
  EXPECT_TRUE(contains(notarr.message(), "'chip.mem' is not an array"));
}

TEST(ArchErrors, SetOfABadValueIsLocatedAtTheSet) {
  const InputError e = input_error([] { load("tsp-v1", {"chip.mem.depth=1"}); });
  EXPECT_EQ(e.where(), "--set chip.mem.depth=1");
  EXPECT_EQ(e.message(), "chip.mem.depth: must be in [2, 16777216], got 1");
  // A whole object replaced by a --set: its missing keys are reported at that --set.
  const InputError obj = input_error([] { load("tsp-v1", {"chip.mem.ecc={\"enabled\":true}"}); });
  EXPECT_EQ(obj.where(), "--set chip.mem.ecc={\"enabled\":true}");
  EXPECT_TRUE(contains(obj.message(), "missing key 'chip.mem.ecc.data_bits'"));
}

TEST(ArchErrors, SetOfAnArrayElement) {
  const Arch a = load("tsp-v1", {"chip.vxm.large_alus[0]=1"});
  EXPECT_EQ(a.chip.vxm.large_alus[0], 1);
  EXPECT_TRUE(a.chip.vxm.is_large(1));
  EXPECT_FALSE(a.chip.vxm.is_large(0));
  const InputError dup = input_error([] { load("tsp-v1", {"chip.vxm.large_alus[0]=2"}); });
  // The duplicate is reported at its second occurrence, which came from the preset.
  EXPECT_EQ(dup.where().rfind("preset tsp-v1:", 0), 0u) << dup.where();
  EXPECT_EQ(dup.message(), "chip.vxm.large_alus[1]: ALU 2 listed twice");
}

TEST(ArchErrors, NameMustBeAWord) {
  const InputError e = input_error([] { load("tiny", {"name=\"tiny 512\""}); });
  EXPECT_EQ(e.where(), "--set name=\"tiny 512\"");
  EXPECT_EQ(e.message(),
            "name: must be 1 to 64 letters, digits, '.', '_' or '-'; got \"tiny 512\"");
  const std::string text = "{\"base\": \"tiny\",\n  \"name\": \"\"}";
  expect_file_error(text, "\"name\"", {"name: must be 1 to 64 letters"});
  EXPECT_EQ(load("tiny", {"name=tiny_512.v-2"}).name, "tiny_512.v-2");
}

TEST(ArchErrors, AssumptionNamingAMissingKey) {
  const std::string text = R"({
  "base": "tsp-v1",
  "assumptions": {
    "chip.mem.dpth": "typo"
  }
})";
  expect_file_error(text, "\"chip.mem.dpth\"",
                    {"assumptions.chip.mem.dpth: names a key that does not exist: "
                     "'chip.mem.dpth'"});
}

TEST(ArchErrors, AssumptionMustBeAString) {
  const std::string text = "{\"base\": \"tsp-v1\",\n  \"assumptions\": {\"chip.mem.depth\": 3}}";
  expect_file_error(text, "\"chip.mem.depth\"",
                    {"assumptions.chip.mem.depth: must be a string, got an integer"});
}

TEST(ArchErrors, FromResolvedNamesTheSource) {
  json::value v = load("tiny").resolved;
  v.as_object()["chip"].as_object()["superlanes"] = 0;
  const InputError e = input_error([&] { from_resolved(v, "prog.lpubin:byte 48"); });
  EXPECT_EQ(e.where(), "prog.lpubin:byte 48");
  EXPECT_EQ(e.message(), "chip.superlanes: must be in [1, 64], got 0");
  const InputError c = input_error([] { from_canonical("{", "x"); });
  EXPECT_EQ(c.where(), "x");
  EXPECT_TRUE(contains(c.message(), "not valid JSON"));
  EXPECT_EQ(from_canonical(load("tiny").canonical, "x").hash, load("tiny").hash);
}

}  // namespace

// node8: 28 links, every chip joined to the 7 others. rack72: 9 nodes of 8, each node fully
// connected inside (ports 0..6), every pair of nodes joined by 4 links through ports 7..10; no
// port used twice.
TEST(Systems, Node8AndRack72Links) {
  const Arch n8 = load("node8");
  EXPECT_EQ(n8.system.chips, 8);
  EXPECT_EQ(n8.system.links.size(), 28u);
  const Arch r = load("rack72");
  ASSERT_EQ(r.system.chips, 72);
  EXPECT_EQ(r.system.links.size(), 9u * 28u + 36u * 4u);
  std::set<std::pair<int, int>> ports;
  std::map<std::pair<int, int>, int> between;  // node pair -> links
  std::map<std::pair<int, int>, int> local;    // chip pair inside a node -> links
  for (const auto& l : r.system.links) {
    for (const auto& e : {l.a, l.b}) {
      EXPECT_TRUE(ports.insert({e.chip, e.port}).second) << e.chip << ":" << e.port;
      EXPECT_LT(e.port, 11);
    }
    const int na = l.a.chip / 8, nb = l.b.chip / 8;
    if (na == nb) {
      EXPECT_LT(l.a.port, 7);
      EXPECT_LT(l.b.port, 7);
      ++local[{std::min(l.a.chip, l.b.chip), std::max(l.a.chip, l.b.chip)}];
    } else {
      EXPECT_GE(l.a.port, 7);
      EXPECT_GE(l.b.port, 7);
      ++between[{std::min(na, nb), std::max(na, nb)}];
    }
  }
  EXPECT_EQ(local.size(), 9u * 28u);
  for (const auto& [pair, n] : local)
    EXPECT_EQ(n, 1);
  EXPECT_EQ(between.size(), 36u);
  for (const auto& [pair, n] : between)
    EXPECT_EQ(n, 4) << pair.first << "-" << pair.second;
  EXPECT_EQ(ports.size(), 72u * 11u);
}

TEST(ArchErrors, DragonflyOfPartialNodes) {
  try {
    load("tsp-v1", {"system.topology=dragonfly", "system.chips=12"});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("system.chips"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("whole nodes of 8"), std::string::npos) << e.what();
  }
  try {
    load("tsp-v1", {"system.topology=dragonfly", "system.chips=16", "system.global_ports=10"});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("system.global_ports"), std::string::npos) << e.what();
  }
}
