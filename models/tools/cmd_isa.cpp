// lpu isa [--markdown | --json]
#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <iostream>

#include "arch/json_doc.h"
#include "isa/isa.h"
#include "tools/commands.h"

namespace po = boost::program_options;
namespace json = boost::json;

namespace lpu::tools {

int cmd_isa(const Args& args) {
  bool markdown = false, as_json = false, help = false;
  po::options_description opts;
  opts.add_options()("help,h", po::bool_switch(&help))("markdown", po::bool_switch(&markdown))(
      "json", po::bool_switch(&as_json));
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (help) {
    std::cout << "usage: lpu isa [--markdown | --json]\n"
                 "Prints the ISA table: a one-line-per-instruction list, the markdown reference\n"
                 "(docs/isa.md), or JSON for other tools.\n";
    return kOk;
  }
  if (markdown && as_json) throw UsageError{"choose one of --markdown and --json"};
  if (markdown) {
    std::cout << isa::markdown_reference();
    return kOk;
  }
  if (as_json) {
    json::array ops;
    for (const auto& op : isa::table()) {
      json::object o;
      o["opcode"] = op.opcode;
      o["mnemonic"] = op.mnemonic;
      o["unit"] = isa::to_string(op.unit);
      json::array mods;
      for (auto m : op.mods)
        mods.push_back(json::string(isa::to_string(m)));
      o["modifiers"] = mods;
      json::array types;
      for (auto t : op.dtypes)
        types.push_back(json::string(isa::to_string(t)));
      o["dtypes"] = types;
      json::array operands;
      for (const auto& d : op.operands)
        operands.push_back(
            json::object{{"name", d.name}, {"kind", isa::to_string(d.kind)}, {"group", d.group}});
      o["operands"] = operands;
      o["latency_class"] = op.latency_class;
      o["alu"] = op.alu == isa::AluNeed::kLarge ? "large"
                 : op.alu == isa::AluNeed::kAny ? "any"
                                                : "";
      o["summary"] = op.summary;
      ops.push_back(o);
    }
    std::cout << arch::pretty_json(
                     json::object{{"slot_bytes", isa::kSlotBytes}, {"instructions", ops}})
              << "\n";
    return kOk;
  }
  for (const auto& op : isa::table()) {
    std::printf("0x%02x  %-11s %-4s %-14s %s\n", op.opcode, op.mnemonic, isa::to_string(op.unit),
                op.latency_class, op.summary);
  }
  return kOk;
}

}  // namespace lpu::tools
