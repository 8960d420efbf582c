// lpu workload NAME [--param KEY=VALUE ...] -o MODEL.onnx | lpu workload --list
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "compiler/workloads.h"
#include "tools/commands.h"

namespace po = boost::program_options;

namespace lpu::tools {

namespace {
const char* kWorkloadUsage =
    "usage: lpu workload NAME [--param KEY=VALUE ...] -o MODEL.onnx\n"
    "       lpu workload --list\n"
    "Writes a built-in workload as an ONNX model (random weights from a seed), ready for\n"
    "'lpu compile' or 'lpu verify', and for inspection in any ONNX tool.\n"
    "\n"
    "  -o, --output FILE.onnx   where to write the model\n"
    "  --param KEY=VALUE        set a parameter (repeatable); see --list for each workload's\n"
    "  --list                   the workloads and their parameters with defaults\n";
}  // namespace

int cmd_workload(const Args& args) {
  std::string name, output;
  std::vector<std::string> params;
  bool help = false, list = false;
  po::options_description opts;
  opts.add_options()("help,h", po::bool_switch(&help))("list", po::bool_switch(&list))(
      "output,o", po::value(&output))("param", po::value(&params)->composing())("name",
                                                                                po::value(&name));
  po::positional_options_description pos;
  pos.add("name", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (help) {
    std::cout << kWorkloadUsage;
    return kOk;
  }
  if (list) {
    for (const auto& w : compiler::workloads()) {
      std::printf("%s\n  %s\n", w.name.c_str(), w.summary.c_str());
      for (const auto& p : w.params)
        std::printf("    %-8s %-14s %s\n", p.key.c_str(), p.default_value.c_str(), p.help.c_str());
    }
    return kOk;
  }
  if (name.empty()) throw UsageError{"missing workload name\n" + std::string(kWorkloadUsage)};
  if (output.empty()) throw UsageError{"missing -o MODEL.onnx"};
  std::map<std::string, std::string> kv;
  for (const auto& p : params) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError{"--param takes KEY=VALUE, got '" + p + "'"};
    kv[p.substr(0, eq)] = p.substr(eq + 1);
  }
  compiler::write_workload(name, kv, output);
  std::printf("lpu workload: %s written to %s\n", name.c_str(), output.c_str());
  return kOk;
}

}  // namespace lpu::tools
