// Subcommands of the `lpu` tool. Each takes its own arguments (after the subcommand name) and
// returns the process exit code: 0 success, 1 the simulation or check failed, 2 bad usage or input.
#pragma once

#include <string>
#include <vector>

namespace lpu::tools {

using Args = std::vector<std::string>;

int cmd_arch(const Args& args);
int cmd_asm(const Args& args);
int cmd_disasm(const Args& args);
int cmd_isa(const Args& args);
int cmd_run(const Args& args);

/// Exit codes.
constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kBadInput = 2;

/// Thrown for bad command-line usage; main prints it with the subcommand's usage hint.
struct UsageError {
  std::string message;
};

}  // namespace lpu::tools
