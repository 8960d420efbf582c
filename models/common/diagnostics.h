// Error types shared by every part of the model. Three channels are kept apart (house style):
// bad input (a file, a command-line value) -> InputError, carrying the location it came from;
// a bad program found while simulating -> reported by the simulator with chip/unit/queue/cycle;
// a model bug -> std::logic_error. Nothing here prints.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lpu {

/// A place in an input: "file:line:col", "file:byte 123", "--set key", or just a file name.
using Where = std::string;

/// Bad user input. `what()` reads "WHERE: error: MESSAGE" so it can be printed as is.
class InputError : public std::runtime_error {
 public:
  InputError(Where where, const std::string& message)
      : std::runtime_error(where.empty() ? "error: " + message : where + ": error: " + message),
        where_(std::move(where)),
        message_(message) {}
  const Where& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  Where where_;
  std::string message_;
};

/// Maps byte offsets of a text to 1-based line and column numbers.
class LineIndex {
 public:
  explicit LineIndex(std::string_view text);
  /// 1-based line and column of byte `offset` (clamped to the end of the text).
  std::pair<int, int> line_col(std::size_t offset) const;
  /// "file:line:col" for byte `offset`.
  std::string where(const std::string& file, std::size_t offset) const;

 private:
  std::vector<std::size_t> starts_;
  std::size_t size_;
};

/// The names in `candidates` closest to `name` by edit distance (at most `max` of them, only
/// those within a distance that still looks like a typo).
std::vector<std::string> nearest_names(std::string_view name,
                                       const std::vector<std::string>& candidates,
                                       std::size_t max = 3);

/// "did you mean 'a', 'b'?" or "" when there is nothing close.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace lpu
