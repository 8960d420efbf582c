#include "isa/layout.h"

#include <algorithm>

namespace lpu::isa {

VectorAt RowsLayout::at(std::uint64_t row, int plane) const {
  auto it = std::upper_bound(groups_.begin(), groups_.end(), row,
                             [](std::uint64_t r, const Group& g) { return r < g.first_row; });
  const Group& g = *(it - 1);
  const Placement& p = g.planes[static_cast<std::size_t>(plane)];
  return {p.slice, p.addr + static_cast<std::uint32_t>(row - g.first_row)};
}

std::optional<std::string> rows_layout(const Tensor& t, int lanes, RowsLayout* out) {
  if (t.layout != "rows")
    return "layout '" + t.layout + "' is not one this build understands (" + known_layouts() + ")";
  RowsLayout l;
  l.bytes = dtype_bytes(t.dtype);
  l.cols = t.shape.empty() ? 1 : t.shape.back();
  l.rows = 1;
  for (std::size_t i = 0; i + 1 < t.shape.size(); ++i)
    l.rows *= t.shape[i];
  if (t.shape.size() == 1) l.rows = 1;
  const auto width = static_cast<std::uint64_t>(lanes);
  l.tiles = l.cols == 0 ? 1 : (l.cols + width - 1) / width;
  if (t.placements.size() % static_cast<std::size_t>(l.bytes))
    return std::to_string(t.placements.size()) +
           " placement(s) is not a whole number of groups of " + std::to_string(l.bytes) +
           " byte planes";
  std::uint64_t row = 0;
  for (std::size_t i = 0; i < t.placements.size(); i += static_cast<std::size_t>(l.bytes)) {
    RowsLayout::Group g;
    g.first_row = row;
    for (int b = 0; b < l.bytes; ++b) {
      const Placement& p = t.placements[i + static_cast<std::size_t>(b)];
      if (p.vectors != t.placements[i].vectors)
        return "the byte planes of placement group " +
               std::to_string(i / static_cast<std::size_t>(l.bytes)) +
               " hold different numbers of vectors";
      g.planes.push_back(p);
    }
    row += t.placements[i].vectors;
    l.groups_.push_back(std::move(g));
  }
  if (row != l.vector_rows())
    return "placements hold " + std::to_string(row) + " vector row(s) but the shape needs " +
           std::to_string(l.vector_rows()) +
           (l.tiles > 1
                ? " (" + std::to_string(l.rows) + " rows of " + std::to_string(l.tiles) + " tiles)"
                : std::string());
  if (out) *out = std::move(l);
  return std::nullopt;
}

}  // namespace lpu::isa
