#include "compiler/graph.h"

namespace lpu::compiler {

int Graph::find(const std::string& name) const {
  // A linear scan: callers look names up rarely (front ends keep their own index while building).
  for (std::size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string Graph::where(const Node& n) const {
  std::string s = "node '" + n.name + "' (" + n.op + ")";
  return source.empty() ? s : source + ": " + s;
}

}  // namespace lpu::compiler
