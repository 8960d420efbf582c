// Collectives as statically scheduled transfers over C2C links (docs/multichip.md). Each builds a
// program for a whole system: every chip's MEM reads, sends, receives and writes at fixed
// cycles from the link timing (func::LinkTiming), with the predicted completion.
#pragma once

#include <cstdint>

#include "arch/arch.h"
#include "isa/program.h"

namespace lpu::compiler {

/// All-gather on a fully connected system of N chips: chip i holds input `x{i}` (rows_per_chip
/// int8 vectors) and ends with output `y{i}` of N x rows_per_chip rows, chip j's rows at j
/// rows_per_chip. Direct exchange: chip i sends its rows to every peer on their link at once,
/// a vector per frame time on each link; a copy of its own rows runs alongside. Throws
/// InputError when the system is not fully connected (or has one chip), when a chip's ports are
/// not all in one hemisphere, or when the rows do not fit a MEM slice.
isa::Program all_gather(const arch::Arch& arch, std::int64_t rows_per_chip);

}  // namespace lpu::compiler
