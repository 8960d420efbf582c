// Subcommands of the `lpu` tool. Each takes its own arguments (after the subcommand name) and
// returns the process exit code: 0 success, 1 the simulation or check failed, 2 bad usage or input.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "isa/program.h"
#include "units/sim.h"

namespace lpu::tools {

using Args = std::vector<std::string>;

int cmd_arch(const Args& args);
int cmd_asm(const Args& args);
int cmd_disasm(const Args& args);
int cmd_isa(const Args& args);
int cmd_run(const Args& args);
int cmd_compile(const Args& args);
int cmd_verify(const Args& args);
int cmd_workload(const Args& args);

/// Exit codes.
constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kBadInput = 2;

/// An --arch (with its --set overrides) given on the command line must describe the machine the
/// program was made for; otherwise an InputError on `input` lists the keys that differ (machine
/// parameters first). Nothing happens when `arch` is empty.
void require_arch(const isa::Program& p, const std::string& arch,
                  const std::vector<std::string>& sets, const std::string& input);

/// Prints the C2C link figures of a run report (system::RunOutcome::report): totals, and a line
/// per link direction that carried anything (the busiest first, at most `rows`).
void print_links(const boost::json::object& report, std::size_t rows = 8);

/// --unit UNIT=MODE (repeatable), --waves FILE, --waves-window FROM:TO and --plant-fault into the
/// co-simulation options; throws UsageError for a bad value or a unit without RTL.
void parse_cosim(const std::vector<std::string>& units, const std::string& waves,
                 const std::string& window, bool plant_fault, units::CosimOptions* c);
/// Prints the co-simulation lines of a run report: per unit, the vectors the RTL computed or
/// matched, the operations the RTL lacks, and the waveform written.
void print_cosim(const boost::json::object& report);
/// Prints the MXM's MAC utilisation (int8 and fp16 apart) and the energy estimate of a run
/// report: "  MXM  ..." and "  energy  ..." lines.
void print_mxm_and_energy(const boost::json::object& report);
/// No lockstep mismatch in the run report (true when nothing ran in lockstep).
bool cosim_ok(const boost::json::object& report);

/// Thrown for bad command-line usage; main prints it with the subcommand's usage hint.
struct UsageError {
  std::string message;
};

}  // namespace lpu::tools
