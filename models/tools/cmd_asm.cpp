// lpu asm IN.lpuasm -o OUT.lpubin | lpu disasm IN.lpubin [-o OUT.lpuasm]
#include <algorithm>
#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>

#include "isa/asm_text.h"
#include "isa/lpubin.h"
#include "tools/commands.h"

namespace po = boost::program_options;

namespace lpu::tools {

namespace {

struct Common {
  std::string input, output, arch;
  std::vector<std::string> sets;
  bool help = false;
};

Common parse(const Args& args, const char* usage) {
  Common c;
  po::options_description opts;
  opts.add_options()("help,h", po::bool_switch(&c.help))("output,o", po::value(&c.output))(
      "arch", po::value(&c.arch))("set", po::value(&c.sets)->composing())("input",
                                                                          po::value(&c.input));
  po::positional_options_description pos;
  pos.add("input", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (c.help) return c;
  if (c.input.empty()) throw UsageError{std::string("missing input file\n") + usage};
  if (!c.sets.empty() && c.arch.empty()) throw UsageError{"--set needs --arch"};
  return c;
}

const char* kAsmUsage =
    "usage: lpu asm IN.lpuasm -o OUT.lpubin [--arch NAME|FILE [--set PATH=VALUE ...]]\n"
    "Assembles a text program; the binary embeds the resolved architecture. With --arch, the\n"
    "program's architecture must match it.\n";
const char* kDisasmUsage =
    "usage: lpu disasm IN.lpubin [-o OUT.lpuasm] [--arch NAME|FILE [--set PATH=VALUE ...]]\n"
    "Writes the canonical text form (to standard output without -o).\n";

}  // namespace

void require_arch(const isa::Program& p, const std::string& arch_name,
                  const std::vector<std::string>& sets, const std::string& input) {
  if (arch_name.empty()) return;
  const auto a = arch::load(arch_name, sets);
  if (a.hash == p.arch.hash) return;
  auto keys = arch::diff(a.resolved, p.arch.resolved);
  // Machine parameters first; names, descriptions and assumption texts last.
  std::stable_partition(keys.begin(), keys.end(), [](const std::string& k) {
    return k.rfind("chip.", 0) == 0 || k.rfind("system.", 0) == 0;
  });
  std::string list;
  for (std::size_t i = 0; i < keys.size() && i < 12; ++i)
    list += "\n  " + keys[i];
  if (keys.size() > 12) list += "\n  ... and " + std::to_string(keys.size() - 12) + " more";
  throw InputError(
      input, "--arch " + arch_name + " differs from the architecture the program was made for (" +
                 p.arch.name + ") in " + std::to_string(keys.size()) + " key(s):" + list);
}

int cmd_asm(const Args& args) {
  const Common c = parse(args, kAsmUsage);
  if (c.help) {
    std::cout << kAsmUsage;
    return kOk;
  }
  if (c.output.empty()) throw UsageError{"missing -o OUT.lpubin"};
  const auto p = isa::load_lpuasm(c.input);
  require_arch(p, c.arch, c.sets, c.input);
  isa::save_lpubin(p, c.output);
  std::cerr << "lpu asm: " << c.output << ": " << p.instruction_count() << " instructions on "
            << p.chips.size() << " chip(s), " << p.tensors.size() << " tensors, " << p.images.size()
            << " images, arch " << p.arch.name << " (" << p.arch.hash_hex() << ")\n";
  return kOk;
}

int cmd_disasm(const Args& args) {
  const Common c = parse(args, kDisasmUsage);
  if (c.help) {
    std::cout << kDisasmUsage;
    return kOk;
  }
  const auto p = isa::load_lpubin(c.input);
  require_arch(p, c.arch, c.sets, c.input);
  const std::string text = isa::to_lpuasm(p);
  if (c.output.empty()) {
    std::cout << text;
    return kOk;
  }
  std::ofstream out(c.output, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(c.output, "cannot write file");
  out << text;
  return out ? kOk : kBadInput;
}

}  // namespace lpu::tools
