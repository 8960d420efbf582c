#include "common/diagnostics.h"

#include <algorithm>
#include <cctype>

namespace lpu {

LineIndex::LineIndex(std::string_view text) : size_(text.size()) {
  starts_.push_back(0);
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') starts_.push_back(i + 1);
}

std::pair<int, int> LineIndex::line_col(std::size_t offset) const {
  offset = std::min(offset, size_);
  auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
  const std::size_t line = static_cast<std::size_t>(it - starts_.begin());  // 1-based
  return {static_cast<int>(line), static_cast<int>(offset - starts_[line - 1] + 1)};
}

std::string LineIndex::where(const std::string& file, std::size_t offset) const {
  auto [line, col] = line_col(offset);
  return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

namespace {
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::vector<std::string> nearest_names(std::string_view name,
                                       const std::vector<std::string>& candidates,
                                       std::size_t max) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  const std::size_t limit = std::max<std::size_t>(2, name.size() / 2);
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(name, c);
    // A candidate that starts with the name (or the other way round) is a likely intent too.
    if (c.rfind(std::string(name), 0) == 0 || std::string(name).rfind(c, 0) == 0)
      d = std::min<std::size_t>(d, 1);
    if (d <= limit) scored.emplace_back(d, c);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (const auto& s : scored) {
    if (out.size() == max) break;
    out.push_back(s.second);
  }
  return out;
}

std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates) {
  const auto near = nearest_names(name, candidates);
  if (near.empty()) return "";
  std::string s = "did you mean ";
  for (std::size_t i = 0; i < near.size(); ++i) {
    if (i) s += i + 1 == near.size() ? " or " : ", ";
    s += "'" + near[i] + "'";
  }
  return s + "?";
}

}  // namespace lpu
