// The text program form `.lpuasm`: readable, diff-friendly, every dispatch cycle explicit.
// docs/program-format.md has the grammar; `to_lpuasm` writes the canonical form that
// `parse_lpuasm` reads back into an identical Program.
#pragma once

#include <string>
#include <string_view>

#include "isa/program.h"

namespace lpu::isa {

/// Parses and validates a program. Every problem is an InputError "FILE:LINE:COL: ...".
Program parse_lpuasm(std::string_view text, const std::string& file);
Program load_lpuasm(const std::string& path);

/// Canonical text of a program.
std::string to_lpuasm(const Program& p);

}  // namespace lpu::isa
