// Helpers shared by the GoogleTest suites: scratch files under the build tree, source locations
// counted by hand (independently of the code under test), and capturing an expected InputError.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "common/diagnostics.h"

namespace lpu::test {

/// A fresh scratch directory for the running test, under the working directory (the build tree).
inline std::filesystem::path scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path dir = std::filesystem::current_path() / "scratch" / LPU_TEST_NAME /
                                    (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// Writes `text` to `name` in the test's scratch directory and returns the path.
inline std::string write_file(const std::string& name, const std::string& text) {
  const std::filesystem::path p = scratch_dir() / name;
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test bug: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// "FILE:LINE:COL" of the `nth` occurrence of `needle` in `text`, plus `shift` columns.
inline std::string loc(const std::string& file, const std::string& text, const std::string& needle,
                       int nth = 0, int shift = 0) {
  std::size_t at = text.find(needle);
  for (int i = 0; i < nth && at != std::string::npos; ++i)
    at = text.find(needle, at + 1);
  if (at == std::string::npos) {
    ADD_FAILURE() << "test bug: '" << needle << "' not in the text";
    return "?";
  }
  at += static_cast<std::size_t>(shift);
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < at; ++i)
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  return file + ":" + std::to_string(line) + ":" + std::to_string(at - line_start + 1);
}

/// Runs `f`, which must throw InputError, and returns it.
inline InputError input_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InputError, got another exception: " << e.what();
    return InputError("<other exception>", e.what());
  }
  ADD_FAILURE() << "expected InputError, nothing was thrown";
  return InputError("<no exception>", "<no exception>");
}

inline ::testing::AssertionResult contains(const std::string& hay, const std::string& needle) {
  if (hay.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << hay << "' does not contain '" << needle << "'";
}

}  // namespace lpu::test
