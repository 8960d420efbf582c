#include "func/sxm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace lpu::func {

namespace {

void need(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("SXM: ") + what);
}

std::size_t sz(int n) {
  return static_cast<std::size_t>(n);
}

}  // namespace

void shift(const std::uint8_t* in, std::uint8_t* out, int lanes, int n, bool north) {
  need(lanes >= 0 && n >= 0 && n <= lanes, "shift: n must be in 0..lanes");
  const std::size_t keep = sz(lanes - n);
  if (north) {
    std::memset(out, 0, sz(n));
    std::memcpy(out + n, in, keep);
  } else {
    std::memcpy(out, in + n, keep);
    std::memset(out + keep, 0, sz(n));
  }
}

void select(const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* out, int lanes, int k) {
  need(lanes >= 0 && k >= 0 && k <= lanes, "select: k must be in 0..lanes");
  if (out != a) std::memcpy(out, a, sz(k));
  if (out != b) std::memcpy(out + k, b + k, sz(lanes - k));
}

std::optional<std::string> permute(const std::uint8_t* in, const std::uint8_t* map_lo,
                                   const std::uint8_t* map_hi, std::uint8_t* out, int lanes) {
  need(lanes >= 0 && lanes <= 65536, "permute: lanes must be in 0..65536");
  // Targets taken so far, one bit per lane (8 KiB at most, on the stack: no allocation).
  std::uint64_t taken[65536 / 64];
  std::fill_n(taken, (lanes + 63) / 64, std::uint64_t{0});
  for (int i = 0; i < lanes; ++i) {
    const int t = map_lo[i] | map_hi[i] << 8;
    if (t >= lanes)
      return "lane " + std::to_string(i) + ": target " + std::to_string(t) + " is out of range (" +
             std::to_string(lanes) + " lanes)";
    std::uint64_t& w = taken[t >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (t & 63);
    if (w & bit) {
      int first = 0;
      while ((map_lo[first] | map_hi[first] << 8) != t)
        ++first;
      return "lane " + std::to_string(i) + ": target " + std::to_string(t) +
             " is already the target of lane " + std::to_string(first);
    }
    w |= bit;
    out[t] = in[i];
  }
  return std::nullopt;
}

std::optional<std::string> distribute(const std::uint8_t* in, const std::uint8_t* map,
                                      std::uint8_t* out, int lanes) {
  need(lanes >= 0 && lanes % kSuperlaneLanes == 0, "distribute: lanes must be a multiple of 16");
  for (int base = 0; base < lanes; base += kSuperlaneLanes)
    for (int j = 0; j < kSuperlaneLanes; ++j) {
      const int m = map[base + j];
      if (m == 255) {
        out[base + j] = 0;
      } else if (m < kSuperlaneLanes) {
        out[base + j] = in[base + m];
      } else {
        return "lane " + std::to_string(base + j) + ": map value " + std::to_string(m) +
               " is neither a lane of the superlane (0..15) nor 255 (zero)";
      }
    }
  return std::nullopt;
}

void transpose(const std::uint8_t* const in[16], std::uint8_t* const out[16], int lanes) {
  need(lanes >= 0 && lanes % kSuperlaneLanes == 0, "transpose: lanes must be a multiple of 16");
  for (int base = 0; base < lanes; base += kSuperlaneLanes)
    for (int i = 0; i < kSuperlaneLanes; ++i) {
      const std::uint8_t* src = in[i] + base;
      for (int j = 0; j < kSuperlaneLanes; ++j)
        out[j][base + i] = src[j];
    }
}

void rotate(const std::uint8_t* const* in, std::uint8_t* const* out, int lanes, int n) {
  need(lanes >= 0 && n >= 1, "rotate: n must be at least 1");
  for (int r = 0; r < n; ++r)
    for (int k = 0; k < n; ++k)
      shift(in[r], out[r * n + k], lanes, k < lanes ? k : lanes, false);
}

}  // namespace lpu::func
