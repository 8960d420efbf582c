#include "arch/queues.h"

namespace lpu::arch {

namespace {
const char* side(Hemisphere h) {
  return h == Hemisphere::kWest ? "w" : "e";
}

int position_of(const Chip& chip, SliceKind kind, Hemisphere h, int index) {
  for (const auto& s : chip.slices)
    if (s.kind == kind && s.hemisphere == h && s.index == index) return s.position;
  return -1;
}
}  // namespace

std::vector<Queue> chip_queues(const Chip& chip) {
  std::vector<Queue> q;
  auto add = [&](std::string name, QueueUnit unit, int instance, Hemisphere h, int pos) {
    q.push_back({static_cast<std::uint16_t>(q.size()), std::move(name), unit, instance, h, pos});
  };
  for (Hemisphere h : {Hemisphere::kWest, Hemisphere::kEast})
    for (int i = 0; i < chip.mem.slices_per_hemisphere; ++i)
      add(std::string("mem.") + side(h) + std::to_string(i), QueueUnit::kMem, i, h,
          position_of(chip, SliceKind::kMem, h, i));
  const int vxm_pos = position_of(chip, SliceKind::kVxm, Hemisphere::kCenter, 0);
  for (int a = 0; a < chip.vxm.alus(); ++a)
    add("vxm.alu" + std::to_string(a), QueueUnit::kVxm, a, Hemisphere::kCenter, vxm_pos);
  // Planes 0 .. planes/2-1 sit west (plane 0 nearest the VXM), the rest east.
  for (int p = 0; p < chip.mxm.planes; ++p) {
    const int half = chip.mxm.planes / 2;
    const Hemisphere h = p < half ? Hemisphere::kWest : Hemisphere::kEast;
    const int pos = position_of(chip, SliceKind::kMxm, h, p % half);
    const std::string base = "mxm.p" + std::to_string(p);
    add(base + ".wt", QueueUnit::kMxmWeights, p, h, pos);
    add(base + ".abc", QueueUnit::kMxmAct, p, h, pos);
    add(base + ".acc", QueueUnit::kMxmAcc, p, h, pos);
  }
  const int per_side = chip.sxm.units / 2;
  for (int u = 0; u < chip.sxm.units; ++u) {
    const Hemisphere h = u < per_side ? Hemisphere::kWest : Hemisphere::kEast;
    const int pos = position_of(chip, SliceKind::kSxm, h, u % per_side);
    std::string base = std::string("sxm.") + side(h);
    if (per_side > 1) base += std::to_string(u % per_side);
    add(base + ".shift", QueueUnit::kSxmShift, u, h, pos);
    add(base + ".permute", QueueUnit::kSxmPermute, u, h, pos);
    add(base + ".distribute", QueueUnit::kSxmDistribute, u, h, pos);
    add(base + ".rotate", QueueUnit::kSxmRotate, u, h, pos);
    for (int t = 0; t < chip.sxm.transposers_per_unit; ++t)
      add(base + ".transpose" + std::to_string(t), QueueUnit::kSxmTranspose, t, h, pos);
  }
  // Links 0 .. links/2-1 leave from the west edge (beside the west SXM), the rest from the east.
  for (int l = 0; l < chip.c2c.links; ++l) {
    const Hemisphere h = l < chip.c2c.links / 2 ? Hemisphere::kWest : Hemisphere::kEast;
    add("c2c.l" + std::to_string(l), QueueUnit::kC2c, l, h,
        position_of(chip, SliceKind::kSxm, h, per_side - 1));
  }
  return q;
}

std::optional<Queue> find_queue(const std::vector<Queue>& queues, const std::string& name) {
  for (const auto& q : queues)
    if (q.name == name) return q;
  return std::nullopt;
}

}  // namespace lpu::arch
