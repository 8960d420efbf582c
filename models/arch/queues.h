// The instruction queues of one chip (brief A1: 144 on tsp-v1). Each queue sits at one functional
// position and runs the instructions of one unit; ICU instructions run on every queue.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/arch.h"

namespace lpu::arch {

enum class QueueUnit : std::uint8_t {
  kMem,
  kVxm,
  kMxmWeights,
  kMxmAct,
  kMxmAcc,
  kSxmShift,
  kSxmPermute,
  kSxmDistribute,
  kSxmRotate,
  kSxmTranspose,
  kC2c
};

struct Queue {
  std::uint16_t id;  ///< dense index, the order of `chip_queues`
  std::string name;  ///< "mem.w0", "vxm.alu5", "mxm.p1.abc", "sxm.e.transpose1", "c2c.l3"
  QueueUnit unit;
  int instance;  ///< MEM: slice index in hemisphere; VXM: ALU id; MXM: plane; SXM: transposer; C2C:
                 ///< link
  Hemisphere hemisphere;
  int position;  ///< stream-register position of the slice the queue drives
};

/// All queues of a chip in a fixed order: MEM west then east (from the VXM outward), VXM ALUs,
/// MXM planes (weights, abc, acc each), SXM units (shift, permute, distribute, rotate,
/// transposers), C2C links.
std::vector<Queue> chip_queues(const Chip& chip);

/// Looks a queue up by name.
std::optional<Queue> find_queue(const std::vector<Queue>& queues, const std::string& name);

}  // namespace lpu::arch
