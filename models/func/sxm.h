// The SXM's networks (brief B3) on single byte planes: a plane is one stream's `lanes` bytes
// (lanes = active superlanes x 16; lane 0 is the bottom, the "south" end). An element of 2 or 4
// bytes occupies 2 or 4 streams; the caller applies the same operation to each byte plane.
//
// Conventions for every function:
//  * outputs never alias inputs (not even partly), except that select's out may be a or b;
//  * a bad argument from the caller (lanes not a multiple of 16 where superlanes matter, a count
//    out of range) throws std::invalid_argument; a bad map, which is data the program sent on a
//    stream, is returned as a message naming the first bad lane (lowest lane number) and why,
//    with the output left unspecified.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lpu::func {

constexpr int kSuperlaneLanes = 16;

/// shift: north (toward higher lanes) moves element i to i + n, zeros enter lanes 0 .. n-1;
/// south moves element i to i - n, zeros enter lanes lanes-n .. lanes-1. 0 <= n <= lanes.
void shift(const std::uint8_t* in, std::uint8_t* out, int lanes, int n, bool north);

/// select: out[i] = i < k ? a[i] : b[i], 0 <= k <= lanes.
void select(const std::uint8_t* a, const std::uint8_t* b, std::uint8_t* out, int lanes, int k);

/// permute: map[i] = map_lo[i] | map_hi[i] << 8 (a 16-bit lane number per lane, carried by two
/// streams); out[map[i]] = in[i]. The map must be a bijection of 0 .. lanes-1: a target out of
/// range, or a target that a lower lane already took, is an error. Returns nullopt on success.
std::optional<std::string> permute(const std::uint8_t* in, const std::uint8_t* map_lo,
                                   const std::uint8_t* map_hi, std::uint8_t* out, int lanes);

/// distribute: within each superlane s, out[16s + j] = m == 255 ? 0 : in[16s + m] with
/// m = map[16s + j]; m must be 0..15 or 255 (may replicate, may drop). lanes % 16 == 0.
std::optional<std::string> distribute(const std::uint8_t* in, const std::uint8_t* map,
                                      std::uint8_t* out, int lanes);

/// transpose: 16 planes to 16 planes; within each superlane s, out[j][16s + i] = in[i][16s + j]
/// (lane i of stream j becomes lane j of stream i). lanes % 16 == 0. Its own inverse.
void transpose(const std::uint8_t* const in[16], std::uint8_t* const out[16], int lanes);

/// rotate (convolution helper), n >= 1 (the ISA allows 3..8, a chip chip.sxm.rotate_sizes):
/// n input planes give n*n output planes,
///     out[r*n + k][i] = i + k < lanes ? in[r][i + k] : 0        for r, k in 0 .. n-1,
/// i.e. plane r*n + k is input plane r shifted south by k lanes over the whole vector (across
/// superlane boundaries), zeros entering at the top. Use: with n consecutive image rows y .. y+n-1
/// in the input planes (column x in lane x), lane x of the outputs holds the n x n window whose
/// top-left pixel is (y, x), tap (r, k) in plane r*n + k, so an n x n convolution is a weighted
/// sum of the n*n planes; the zeros are the padding past the right edge. For a window centred on
/// x, shift the input rows north by (n-1)/2 first.
void rotate(const std::uint8_t* const* in, std::uint8_t* const* out, int lanes, int n);

}  // namespace lpu::func
