#include "tools/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/diagnostics.h"

namespace lpu::tools {

std::uint64_t NpyArray::elements() const {
  std::uint64_t n = 1;
  for (auto d : shape)
    n *= d;
  return n;
}

const char* npy_descr(isa::DType t) {
  switch (t) {
    case isa::DType::kI8:
      return "|i1";
    case isa::DType::kI16:
      return "<i2";
    case isa::DType::kI32:
      return "<i4";
    case isa::DType::kFp16:
      return "<f2";
    case isa::DType::kBf16:
      return "<u2";
    case isa::DType::kFp32:
      return "<f4";
    case isa::DType::kNone:
      break;
  }
  return "?";
}

namespace {

// Value of key 'k' in the header dict, as raw text up to the next top-level comma or brace.
std::string dict_value(const std::string& h, const std::string& key, const std::string& file) {
  const auto k = h.find("'" + key + "'");
  if (k == std::string::npos)
    throw InputError(file, "not a valid .npy file: header has no '" + key + "'");
  auto colon = h.find(':', k);
  if (colon == std::string::npos) throw InputError(file, "not a valid .npy file: bad header");
  std::size_t i = colon + 1;
  while (i < h.size() && h[i] == ' ')
    ++i;
  std::size_t j = i;
  if (i < h.size() && h[i] == '(') {
    j = h.find(')', i);
    if (j == std::string::npos) throw InputError(file, "not a valid .npy file: bad shape");
    return h.substr(i, j - i + 1);
  }
  while (j < h.size() && h[j] != ',' && h[j] != '}')
    ++j;
  std::string v = h.substr(i, j - i);
  while (!v.empty() && v.back() == ' ')
    v.pop_back();
  return v;
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot read file");
  std::vector<std::uint8_t> b((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0)
    throw InputError(path + ":byte 0", "not a .npy file (bad magic)");
  const int major = b[6];
  std::size_t hlen = 0, start = 0;
  if (major == 1) {
    hlen = b[8] | (b[9] << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw InputError(path + ":byte 8", "truncated .npy header");
    hlen = b[8] | (b[9] << 8) | (b[10] << 16) | (static_cast<std::size_t>(b[11]) << 24);
    start = 12;
  } else {
    throw InputError(path + ":byte 6",
                     ".npy format version " + std::to_string(major) + " is not supported");
  }
  if (start + hlen > b.size()) throw InputError(path + ":byte 8", "truncated .npy header");
  const std::string h(reinterpret_cast<const char*>(b.data() + start), hlen);
  NpyArray a;
  std::string descr = dict_value(h, "descr", path);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  if (descr == "|i1" || descr == "i1" || descr == "<i1")
    a.dtype = isa::DType::kI8;
  else if (descr == "<i2")
    a.dtype = isa::DType::kI16;
  else if (descr == "<i4")
    a.dtype = isa::DType::kI32;
  else if (descr == "<f2")
    a.dtype = isa::DType::kFp16;
  else if (descr == "<u2")
    a.dtype = isa::DType::kBf16;
  else if (descr == "<f4")
    a.dtype = isa::DType::kFp32;
  else
    throw InputError(
        path,
        "element type '" + descr +
            "' is not supported (int8, int16, int32, float16, float32, or uint16 for bf16 bits)");
  if (dict_value(h, "fortran_order", path) != "False")
    throw InputError(path,
                     "Fortran-order arrays are not supported; save with numpy.ascontiguousarray");
  const std::string shape = dict_value(h, "shape", path);
  std::size_t i = 1;
  while (i < shape.size()) {
    while (i < shape.size() && (shape[i] == ' ' || shape[i] == ','))
      ++i;
    if (i >= shape.size() || shape[i] == ')') break;
    std::size_t j = i;
    while (j < shape.size() && std::isdigit(static_cast<unsigned char>(shape[j])))
      ++j;
    if (j == i) throw InputError(path, "not a valid .npy file: bad shape " + shape);
    a.shape.push_back(std::stoull(shape.substr(i, j - i)));
    i = j;
  }
  const std::size_t want = a.elements() * static_cast<std::size_t>(isa::dtype_bytes(a.dtype));
  const std::size_t have = b.size() - start - hlen;
  if (have != want)
    throw InputError(path, "data holds " + std::to_string(have) + " bytes, the header promises " +
                               std::to_string(want));
  a.bytes.assign(b.begin() + static_cast<std::ptrdiff_t>(start + hlen), b.end());
  return a;
}

void write_npy(const std::string& path, const NpyArray& a) {
  std::string shape = "(";
  for (std::size_t i = 0; i < a.shape.size(); ++i)
    shape += std::to_string(a.shape[i]) +
             (a.shape.size() == 1 ? "," : (i + 1 < a.shape.size() ? ", " : ""));
  shape += ")";
  std::string h = std::string("{'descr': '") + npy_descr(a.dtype) +
                  "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad so that the data starts on a 64-byte boundary, header ends with a newline.
  const std::size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path, "cannot write file");
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(h.size() & 0xff), static_cast<char>(h.size() >> 8)};
  out.write(len, 2);
  out << h;
  out.write(reinterpret_cast<const char*>(a.bytes.data()),
            static_cast<std::streamsize>(a.bytes.size()));
  if (!out) throw InputError(path, "write failed");
}

}  // namespace lpu::tools
