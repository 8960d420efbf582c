// Built-in workloads, written out as ONNX models so that users can inspect them in their usual
// tools and so that they go through exactly the same front end as any other model. Weights are
// random from a seed (performance does not depend on them); they are scaled by 1/sqrt(fan-in) so
// that activations stay in a sensible range through many layers.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace lpu::compiler {

struct WorkloadParam {
  std::string key, default_value, help;
};

struct WorkloadInfo {
  std::string name, summary;
  std::vector<WorkloadParam> params;
};

/// Every built-in workload with its parameters.
const std::vector<WorkloadInfo>& workloads();

/// Writes workload `name` with `params` (key -> value; missing keys take their defaults) as an
/// ONNX model at `path`. Throws InputError naming the workload or the "--param KEY" for an
/// unknown workload, an unknown key or a bad value, and the file if it cannot be written.
void write_workload(const std::string& name, const std::map<std::string, std::string>& params,
                    const std::string& path);

}  // namespace lpu::compiler
