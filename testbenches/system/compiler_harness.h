// The compiler suites' harness: compiling a graph for tsp-v1, simulating it on the SystemC model
// (one system::run per test process: SystemC elaborates once) with its checks of cycles, schedule
// errors and the host reference, and tolerances against double-precision arithmetic.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"
#include "common/diagnostics.h"
#include "compiler/graph.h"
#include "compiler/kernels.h"
#include "compiler/onnx_import.h"
#include "compiler/reference.h"
#include "compiler/scheduler.h"
#include "func/numerics.h"
#include "graph_builder.h"
#include "system/run.h"

namespace lpu::test {

inline const arch::Arch& tsp() {
  static const arch::Arch a = arch::load("tsp-v1");
  return a;
}

struct Compiled {
  compiler::Kernels k;
  compiler::Schedule s;
};

inline Compiled compile(const Graph& g, const arch::Arch& a = tsp()) {
  Compiled c;
  c.k = compiler::lower(g, a);
  c.s = compiler::schedule(c.k, a, "test");
  return c;
}

// As compile, lowered with options (precision, calibration).
inline Compiled compile_with(const Graph& g, const compiler::LowerOptions& o) {
  Compiled c;
  c.k = compiler::lower(g, tsp(), o);
  c.s = compiler::schedule(c.k, tsp(), "test");
  return c;
}

// As compile, with int8 products (calibrated on random inputs, lower_with_precision).
inline Compiled compile_int8(const Graph& g) {
  Compiled c;
  c.k = compiler::lower_with_precision(g, tsp(), compiler::Precision::kInt8);
  c.s = compiler::schedule(c.k, tsp(), "test");
  return c;
}

// Where the MXM's sums go: entries reading an ACC's values, on VXM ALUs (straight into an
// epilogue) and MEM writes (to be read back).
struct SumsPath {
  int to_vxm = 0, to_mem = 0;
};
inline SumsPath sums_path(const Compiled& c, const arch::Arch& a = tsp()) {
  const auto queues = arch::chip_queues(a.chip);
  SumsPath p;
  for (const auto& cp : c.s.program.chips)
    for (const auto& q : cp.queues) {
      const arch::QueueUnit u = queues.at(q.queue).unit;
      for (const auto& e : q.entries) {
        bool from_acc = false;
        for (const auto& r : e.expect)
          from_acc = from_acc || queues.at(r.queue).unit == arch::QueueUnit::kMxmAcc;
        if (!from_acc) continue;
        p.to_vxm += u == arch::QueueUnit::kVxm;
        p.to_mem += u == arch::QueueUnit::kMem;
      }
    }
  return p;
}

// The message of the InputError compiling g throws, or "(no error)".
inline std::string compile_error(const Graph& g, const arch::Arch& a = tsp()) {
  try {
    compile(g, a);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

inline void expect_mentions(const std::string& msg, std::initializer_list<std::string> parts) {
  for (const auto& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

// The one system::run of a test: binds `inputs` (in the order of the graph's inputs), simulates,
// and checks no schedule error, simulated cycles == predicted == Schedule::cycles, and every output
// equal to the host reference bit for bit. Returns the outputs in the graph's order.
inline std::vector<Bytes> simulate(const Compiled& c, const std::vector<Bytes>& inputs) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  EXPECT_EQ(c.s.program.predicted_cycles, c.s.cycles);
  EXPECT_EQ(inputs.size(), c.k.inputs.size());
  // Every expectation of a compiled program names the producer's repetition (brief B4).
  for (const auto& cp : c.s.program.chips)
    for (const auto& q : cp.queues)
      for (const auto& e : q.entries)
        for (const auto& r : e.expect)
          EXPECT_FALSE(r.any_step()) << "an expectation without a repetition relation";
  std::map<std::string, system::TensorValue> bound;
  for (std::size_t i = 0; i < c.k.inputs.size() && i < inputs.size(); ++i) {
    const compiler::KTensor& kt = c.k.tensors[static_cast<std::size_t>(c.k.inputs[i])];
    system::TensorValue tv;
    tv.dtype = kt.dtype;
    for (auto d : kt.shape)
      tv.shape.push_back(static_cast<std::uint64_t>(d));
    tv.bytes = inputs[i];
    bound[kt.name] = std::move(tv);
  }
  const std::vector<Bytes> ref = compiler::run_reference(c.k, inputs);
  const system::RunOutcome r = system::run(c.s.program, bound, units::SimOptions{});
  EXPECT_TRUE(r.errors.empty()) << r.errors.size() << " schedule error(s), the first: "
                                << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.cycles, c.s.cycles) << "simulated vs predicted";
  EXPECT_EQ(r.predicted, c.s.cycles);
  std::vector<Bytes> out;
  for (std::size_t i = 0; i < c.k.outputs.size(); ++i) {
    const std::string& name = c.k.tensors[static_cast<std::size_t>(c.k.outputs[i])].name;
    auto it = r.outputs.find(name);
    if (it == r.outputs.end()) {
      ADD_FAILURE() << "no output '" << name << "' from the simulation";
      out.push_back({});
      continue;
    }
    const Bytes& got = it->second.bytes;
    EXPECT_EQ(got.size(), ref[i].size()) << name;
    for (std::size_t b = 0; b < got.size() && b < ref[i].size(); ++b)
      if (got[b] != ref[i][b]) {
        ADD_FAILURE() << "output '" << name << "' differs from the host reference first at byte "
                      << b << ": " << int{got[b]} << " vs " << int{ref[i][b]};
        break;
      }
    out.push_back(got);
  }
  return out;
}

// |got - want| <= rel * scale (+ abs) for every element, reporting the first few that are not.
inline void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                         const std::vector<double>& scale, double rel, double abs = 0.0) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (std::size_t i = 0; i < got.size() && bad < 5; ++i)
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= rel * scale[i] + abs)) {
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", want " << want[i]
                    << " (tolerance " << rel * scale[i] + abs << ")";
      ++bad;
    }
}

// Y[m,n] = sum_k A[m,k] B[k,n] in double; `mag` gets sum_k |A B| (the scale of the rounding error).
inline void matmul_double(const std::vector<float>& a, const std::vector<float>& b, int m, int k,
                          int n, std::vector<double>& y, std::vector<double>& mag) {
  y.assign(static_cast<std::size_t>(m * n), 0.0);
  mag.assign(static_cast<std::size_t>(m * n), 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int kk = 0; kk < k; ++kk) {
        const double p = static_cast<double>(a[static_cast<std::size_t>(i * k + kk)]) *
                         static_cast<double>(b[static_cast<std::size_t>(kk * n + j)]);
        y[static_cast<std::size_t>(i * n + j)] += p;
        mag[static_cast<std::size_t>(i * n + j)] += std::fabs(p);
      }
}

}  // namespace lpu::test
