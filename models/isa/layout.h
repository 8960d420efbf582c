// How a tensor's elements map onto MEM vectors (the `layout` of a symbol-table entry). Shared by
// the compiler, the simulator's host I/O and the reference executor.
//
// Layout "rows": the tensor is viewed as a matrix [R, C] with C = its last dimension (1 for a
// scalar) and R = the product of the others. Row r is one vector per byte of the element type:
// byte plane b of row r holds byte b (little-endian) of elements (r, 0 .. C-1) in lanes 0 .. C-1;
// lanes C .. are zero. Rows wider than a vector (C > lanes) are cut into T = ceil(C / lanes)
// tiles of `lanes` columns, tile-major: vector row t * R + r holds columns t * lanes .. of row r
// (so the rows of one tile are consecutive, as a matrix product streams them). Placements come in
// groups of `bytes` (one per byte plane, in order), each group holding the next run of vector
// rows, all placements of a group with the same vector count. So an i32 [4, 32] tensor can sit as
// four placements of 4 vectors, one per byte plane.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "isa/program.h"

namespace lpu::isa {

struct VectorAt {
  std::uint16_t slice = 0;  ///< queue id of the MEM slice
  std::uint32_t addr = 0;
};

class RowsLayout {
 public:
  std::uint64_t rows = 0, cols = 0;  ///< R and C
  std::uint64_t tiles = 1;           ///< T
  int bytes = 0;
  std::uint64_t vector_rows() const { return rows * tiles; }
  /// The vector holding byte plane `plane` of vector row `vrow` (= tile * rows + row).
  VectorAt at(std::uint64_t vrow, int plane) const;

 private:
  friend std::optional<std::string> rows_layout(const Tensor&, int lanes, RowsLayout*);
  struct Group {
    std::uint64_t first_row;
    std::vector<Placement> planes;
  };
  std::vector<Group> groups_;
};

/// Works out the layout of a tensor; returns a message if it is not a consistent "rows" layout.
std::optional<std::string> rows_layout(const Tensor& t, int lanes, RowsLayout* out);

/// Layout names this build understands.
inline const char* known_layouts() {
  return "rows";
}

}  // namespace lpu::isa
