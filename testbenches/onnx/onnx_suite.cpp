// The ONNX project's backend node tests (Debian's libonnx-testdata), compiled for tsp-v1,
// simulated, and compared with the suite's expected outputs.
//
//   onnx_suite [DATA_DIR] [--filter SUBSTRING] [--verbose (adds a count of skips by reason)]
//              [--check-memory (the scheduler also replays each program's MEM traffic)]
//
// For every test directory (model.onnx, test_data_set_*/input_N.pb and output_N.pb):
//  * SKIP when the model uses an operator the compiler does not support, or an element type the
//    machine does not hold (the reason is printed);
//  * otherwise compile it; simulate every data set on tsp-v1 (each in a child process, since
//    SystemC elaborates once per process); and require: no schedule error, simulated cycles equal
//    to the predicted ones, outputs bit-identical to the host reference executor, and outputs
//    within the suite's tolerance of the expected ones (|got - want| <= atol + rtol |want|,
//    rtol 1e-3, atol 1e-7; NaN matches NaN). Anything else is a FAIL with its reason.
// Prints a line per test and "N passed, M failed, K skipped".
//
// With --known FILE (one test name per line, '#' comments): the failures listed there are
// expected (each is a gap the compiler has yet to close, with its reason in the file). The exit
// code is 1 when a test fails that the file does not list, or a listed test no longer fails (so
// the list stays true), else 0 (also when the data is not installed; it says so).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "common/diagnostics.h"
#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "func/numerics.h"
#include "system/run.h"

namespace fs = std::filesystem;
using namespace lpu;

namespace {

struct Verdict {
  enum Kind { kPass, kFail, kSkip } kind = kPass;
  std::string reason;
};

double element(const compiler::Bytes& b, isa::DType t, std::size_t i) {
  switch (t) {
    case isa::DType::kFp32: {
      float f;
      std::memcpy(&f, &b[i * 4], 4);
      return f;
    }
    case isa::DType::kFp16:
      return func::fp16_to_fp32(static_cast<std::uint16_t>(b[i * 2] | (b[i * 2 + 1] << 8)));
    case isa::DType::kBf16:
      return func::bf16_to_fp32(static_cast<std::uint16_t>(b[i * 2] | (b[i * 2 + 1] << 8)));
    case isa::DType::kI8:
      return static_cast<std::int8_t>(b[i]);
    case isa::DType::kI16:
      return static_cast<std::int16_t>(b[i * 2] | (b[i * 2 + 1] << 8));
    case isa::DType::kI32: {
      std::int32_t v;
      std::memcpy(&v, &b[i * 4], 4);
      return v;
    }
    default:
      return 0;
  }
}

// One data set, run in the child: compile is done by the parent; simulate, compare, report.
Verdict run_data_set(const compiler::Kernels& k, const isa::Program& prog, const fs::path& dir) {
  std::vector<compiler::Bytes> inputs;
  std::map<std::string, system::TensorValue> bound;
  for (std::size_t i = 0; i < k.inputs.size(); ++i) {
    const compiler::Value v =
        compiler::read_tensor_file((dir / ("input_" + std::to_string(i) + ".pb")).string());
    const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(k.inputs[i])];
    if (v.dtype != kt.dtype || v.shape != kt.shape)
      return {Verdict::kFail, "input " + std::to_string(i) + " does not match the model's"};
    inputs.push_back(v.data);
    system::TensorValue tv;
    tv.dtype = v.dtype;
    for (auto d : v.shape)
      tv.shape.push_back(static_cast<std::uint64_t>(d));
    tv.bytes = v.data;
    bound[kt.name] = std::move(tv);
  }
  const std::vector<compiler::Bytes> ref = compiler::run_reference(k, inputs);
  units::SimOptions o;
  const system::RunOutcome r = system::run(prog, bound, o);
  if (!r.errors.empty()) return {Verdict::kFail, "schedule error: " + r.errors[0].to_string()};
  if (!r.predicted || *r.predicted != r.cycles)
    return {Verdict::kFail, "simulated " + std::to_string(r.cycles) + " cycles, predicted " +
                                std::to_string(r.predicted ? *r.predicted : 0)};
  for (std::size_t i = 0; i < k.outputs.size(); ++i) {
    const compiler::KTensor& kt = k.tensors[static_cast<std::size_t>(k.outputs[i])];
    auto it = r.outputs.find(kt.name);
    if (it == r.outputs.end()) return {Verdict::kFail, "no output '" + kt.name + "'"};
    if (it->second.bytes != ref[i])
      return {Verdict::kFail, "output '" + kt.name + "' differs from the host reference"};
    const compiler::Value want =
        compiler::read_tensor_file((dir / ("output_" + std::to_string(i) + ".pb")).string());
    if (want.dtype != kt.dtype || want.elements() != kt.elements())
      return {Verdict::kFail, "output '" + kt.name + "' has another type or size than expected"};
    for (std::size_t e = 0; e < static_cast<std::size_t>(kt.elements()); ++e) {
      const double g = element(it->second.bytes, kt.dtype, e), w = element(want.data, kt.dtype, e);
      if (std::isnan(g) && std::isnan(w)) continue;
      if (!(std::fabs(g - w) <= 1e-7 + 1e-3 * std::fabs(w)))
        return {Verdict::kFail, "output '" + kt.name + "' element " + std::to_string(e) + ": got " +
                                    std::to_string(g) + ", expected " + std::to_string(w)};
    }
  }
  return {};
}

Verdict run_test(const fs::path& dir, const arch::Arch& a, const compiler::ScheduleOptions& so) {
  compiler::Graph g;
  try {
    g = compiler::import_onnx((dir / "model.onnx").string());
  } catch (const InputError& e) {
    return {Verdict::kSkip, e.what()};
  }
  std::set<std::string> missing;
  const auto& ops = compiler::supported_ops();
  for (const auto& n : g.nodes)
    if (std::find(ops.begin(), ops.end(), n.op) == ops.end()) missing.insert(n.op);
  if (!missing.empty()) {
    std::string s = "operator";
    s += missing.size() > 1 ? "s" : "";
    for (const auto& m : missing)
      s += " " + m;
    return {Verdict::kSkip, s + " not supported"};
  }
  for (int v : g.inputs)
    if (g.values[static_cast<std::size_t>(v)].dtype == isa::DType::kNone)
      return {Verdict::kSkip, "int64 or bool input '" + g.values[static_cast<std::size_t>(v)].name +
                                  "' (the machine holds no such type)"};
  for (int v : g.outputs)
    if (g.values[static_cast<std::size_t>(v)].dtype == isa::DType::kNone)
      return {Verdict::kSkip, "int64 or bool output '" +
                                  g.values[static_cast<std::size_t>(v)].name +
                                  "' (the machine holds no such type)"};
  compiler::Kernels k;
  compiler::Schedule s;
  try {
    k = compiler::lower(g, a);
    s = compiler::schedule(k, a, (dir / "model.onnx").string(), so);
  } catch (const InputError& e) {
    return {Verdict::kFail, std::string("compile: ") + e.what()};
  } catch (const std::exception& e) {
    return {Verdict::kFail, std::string("compiler bug: ") + e.what()};
  }
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return {Verdict::kSkip, "no data sets"};
  for (const auto& ds : sets) {
    int fds[2];
    if (pipe(fds) != 0) return {Verdict::kFail, "pipe failed"};
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      Verdict v;
      try {
        v = run_data_set(k, s.program, ds);
      } catch (const std::exception& e) {
        v = {Verdict::kFail, e.what()};
      }
      const std::string msg = std::to_string(static_cast<int>(v.kind)) + v.reason;
      if (write(fds[1], msg.data(), msg.size()) < 0) _exit(3);
      _exit(0);
    }
    close(fds[1]);
    std::string msg;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
      msg.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || msg.empty())
      return {Verdict::kFail, ds.filename().string() + ": the simulation crashed"};
    if (msg[0] != '0')
      return {static_cast<Verdict::Kind>(msg[0] - '0'),
              ds.filename().string() + ": " + msg.substr(1)};
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  std::string data = "/usr/share/libonnx-testdata/data/node", filter, known_file;
  bool verbose = false;
  compiler::ScheduleOptions so;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--filter" && i + 1 < argc)
      filter = argv[++i];
    else if (a == "--verbose")
      verbose = true;
    else if (a == "--check-memory")
      so.check_memory = true;
    else if (a == "--known" && i + 1 < argc)
      known_file = argv[++i];
    else
      data = a;
  }
  if (!fs::is_directory(data)) {
    std::printf("ONNX backend test data not found at %s (Debian package libonnx-testdata)\n",
                data.c_str());
    std::printf("0 passed, 0 failed, 0 skipped\n");
    return 0;
  }
  std::set<std::string> known;
  if (!known_file.empty()) {
    std::ifstream f(known_file);
    if (!f) {
      std::fprintf(stderr, "onnx_suite: cannot read %s\n", known_file.c_str());
      return 2;
    }
    for (std::string line; std::getline(f, line);) {
      line = line.substr(0, line.find('#'));
      const auto b = line.find_first_not_of(" \t");
      if (b == std::string::npos) continue;
      known.insert(line.substr(b, line.find_first_of(" \t", b) - b));
    }
  }
  int unexpected = 0;
  const arch::Arch a = arch::load("tsp-v1");
  std::vector<fs::path> tests;
  for (const auto& e : fs::directory_iterator(data))
    if (e.is_directory() && e.path().filename().string().find(filter) != std::string::npos)
      tests.push_back(e.path());
  std::sort(tests.begin(), tests.end());
  int pass = 0, fail = 0, skip = 0;
  std::map<std::string, int> skip_reasons;
  for (const auto& t : tests) {
    const Verdict v = run_test(t, a, so);
    const std::string name = t.filename().string();
    const bool listed = known.count(name) > 0;
    if (v.kind == Verdict::kPass) {
      ++pass;
      std::printf("PASS %s%s\n", name.c_str(),
                  listed ? "  (listed as a known failure: take it off the list)" : "");
      unexpected += listed;
    } else if (v.kind == Verdict::kFail) {
      ++fail;
      std::printf("FAIL %s: %s%s\n", name.c_str(), v.reason.c_str(), listed ? "  (known)" : "");
      unexpected += !listed;
    } else {
      ++skip;
      ++skip_reasons[v.reason];
      std::printf("SKIP %s: %s\n", name.c_str(), v.reason.c_str());
    }
  }
  if (verbose && skip) {
    std::printf("skipped, by reason:\n");
    std::vector<std::pair<int, std::string>> r;
    for (const auto& [reason, n] : skip_reasons)
      r.push_back({-n, reason});
    std::sort(r.begin(), r.end());
    for (const auto& [n, reason] : r)
      std::printf("  %4d  %s\n", -n, reason.c_str());
  }
  std::printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
  if (!known_file.empty())
    std::printf("%d failure(s) listed as known in %s; %d unexpected result(s)\n",
                static_cast<int>(known.size()), known_file.c_str(), unexpected);
  return (known_file.empty() ? fail : unexpected) ? 1 : 0;
}
