// The `lpu` command: one tool, one subcommand per job.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include <boost/program_options/errors.hpp>

#include "common/diagnostics.h"
#include "tools/commands.h"

namespace {

const char* kUsage =
    "usage: lpu <command> [options]\n"
    "\n"
    "Model of a multi-chip tensor streaming LPU: architecture descriptions, the ISA, programs.\n"
    "\n"
    "commands:\n"
    "  arch     list, show and check architecture descriptions (presets or JSON files)\n"
    "  asm      assemble a text program (.lpuasm) into a binary program (.lpubin)\n"
    "  compile  compile an ONNX model into a scheduled program\n"
    "  disasm   turn a binary program back into canonical text\n"
    "  isa      print the instruction set (markdown or JSON)\n"
    "  run      simulate a program with real values and exact cycle timing\n"
    "  verify   compile a model, simulate it, check values and cycles\n"
    "  workload write a built-in workload (gemm, mlp) as an ONNX model\n"
    "\n"
    "Run 'lpu <command> --help' for a command's options.\n"
    "Exit codes: 0 success, 1 a simulation or check failed, 2 bad usage or bad input.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace lpu::tools;
  const std::map<std::string, int (*)(const Args&)> commands = {
      {"arch", cmd_arch}, {"asm", cmd_asm}, {"compile", cmd_compile}, {"disasm", cmd_disasm},
      {"isa", cmd_isa},   {"run", cmd_run}, {"verify", cmd_verify},   {"workload", cmd_workload}};
  if (argc < 2) {
    std::cerr << kUsage;
    return kBadInput;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return kOk;
  }
  if (cmd == "--version") {
    std::cout << "lpu 0.1.0\n";
    return kOk;
  }
  auto it = commands.find(cmd);
  if (it == commands.end()) {
    std::vector<std::string> names;
    for (const auto& c : commands)
      names.push_back(c.first);
    const auto hint = lpu::did_you_mean(cmd, names);
    std::cerr << "lpu: unknown command '" << cmd << "'" << (hint.empty() ? "" : "; " + hint)
              << "\n\n"
              << kUsage;
    return kBadInput;
  }
  // SystemC prints a banner when its kernel starts unless told not to.
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  const Args args(argv + 2, argv + argc);
  try {
    return it->second(args);
  } catch (const lpu::InputError& e) {
    std::cerr << e.what() << "\n";
    return kBadInput;
  } catch (const UsageError& e) {
    std::cerr << "lpu " << cmd << ": " << e.message << "\n(see 'lpu " << cmd << " --help')\n";
    return kBadInput;
  } catch (const boost::program_options::error& e) {
    std::cerr << "lpu " << cmd << ": " << e.what() << "\n(see 'lpu " << cmd << " --help')\n";
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "lpu " << cmd << ": internal error: " << e.what() << "\n";
    return 3;
  }
}
