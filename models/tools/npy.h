// NumPy .npy files (format 1.0/2.0, little-endian, C order) for tensors that go into and come out
// of a run. bf16 has no NumPy type: it travels as uint16 ('<u2') holding the raw bits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace lpu::tools {

struct NpyArray {
  isa::DType dtype = isa::DType::kNone;
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> bytes;  ///< elements in C order, little-endian
  std::uint64_t elements() const;
};

/// Reads a .npy file; every problem is an InputError naming the file (and the header byte).
NpyArray read_npy(const std::string& path);
void write_npy(const std::string& path, const NpyArray& a);
/// The NumPy descr of a type ("|i1", "<f2", "<u2" for bf16, ...).
const char* npy_descr(isa::DType t);

}  // namespace lpu::tools
