// The SXM's networks against element-by-element definitions on random data (16, 32 and 320 lanes),
// edge cases, and map errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "func/sxm.h"

using namespace lpu::func;

namespace {

using Plane = std::vector<std::uint8_t>;
const int kLanes[] = {16, 32, 320};

Plane random_plane(std::mt19937& rng, int lanes) {
  Plane p(static_cast<std::size_t>(lanes));
  for (auto& b : p)
    b = static_cast<std::uint8_t>(rng());
  return p;
}

std::size_t z(int i) {
  return static_cast<std::size_t>(i);
}

// Reference definitions, one lane at a time.
Plane ref_shift(const Plane& in, int n, bool north) {
  const int lanes = static_cast<int>(in.size());
  Plane out(in.size(), 0);
  for (int i = 0; i < lanes; ++i) {
    const int to = north ? i + n : i - n;
    if (to >= 0 && to < lanes) out[z(to)] = in[z(i)];
  }
  return out;
}

// Splits a map of lane numbers into the two byte planes permute takes.
void split(const std::vector<int>& map, Plane& lo, Plane& hi) {
  lo.resize(map.size());
  hi.resize(map.size());
  for (std::size_t i = 0; i < map.size(); ++i) {
    lo[i] = static_cast<std::uint8_t>(map[i] & 0xff);
    hi[i] = static_cast<std::uint8_t>(map[i] >> 8);
  }
}

std::vector<const std::uint8_t*> ptrs(const std::vector<Plane>& v) {
  std::vector<const std::uint8_t*> p;
  for (const auto& x : v)
    p.push_back(x.data());
  return p;
}
std::vector<std::uint8_t*> ptrs(std::vector<Plane>& v) {
  std::vector<std::uint8_t*> p;
  for (auto& x : v)
    p.push_back(x.data());
  return p;
}

}  // namespace

// --- shift and select ---------------------------------------------------------------------------

TEST(Sxm, ShiftMatchesDefinition) {
  std::mt19937 rng(1);
  for (int lanes : kLanes) {
    const Plane in = random_plane(rng, lanes);
    Plane out(z(lanes));
    for (int n = 0; n <= lanes; ++n)
      for (bool north : {true, false}) {
        std::fill(out.begin(), out.end(), 0xcd);
        shift(in.data(), out.data(), lanes, n, north);
        ASSERT_EQ(out, ref_shift(in, n, north)) << lanes << " lanes, n " << n << " " << north;
      }
  }
}

TEST(Sxm, ShiftEdgeCases) {
  std::mt19937 rng(2);
  const Plane in = random_plane(rng, 320);
  Plane out(320);
  shift(in.data(), out.data(), 320, 0, true);
  EXPECT_EQ(out, in);
  shift(in.data(), out.data(), 320, 0, false);
  EXPECT_EQ(out, in);
  shift(in.data(), out.data(), 320, 320, true);
  EXPECT_EQ(out, Plane(320, 0));
  shift(in.data(), out.data(), 320, 320, false);
  EXPECT_EQ(out, Plane(320, 0));
  shift(in.data(), out.data(), 320, 1, true);  // north: element 0 goes to lane 1
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], in[0]);
  EXPECT_EQ(out[319], in[318]);
  shift(in.data(), out.data(), 320, 1, false);  // south: element 1 goes to lane 0
  EXPECT_EQ(out[0], in[1]);
  EXPECT_EQ(out[319], 0);
  EXPECT_THROW(shift(in.data(), out.data(), 320, 321, true), std::invalid_argument);
  EXPECT_THROW(shift(in.data(), out.data(), 320, -1, false), std::invalid_argument);
}

TEST(Sxm, SelectMatchesDefinition) {
  std::mt19937 rng(3);
  for (int lanes : kLanes) {
    const Plane a = random_plane(rng, lanes), b = random_plane(rng, lanes);
    Plane out(z(lanes));
    for (int k = 0; k <= lanes; ++k) {
      select(a.data(), b.data(), out.data(), lanes, k);
      for (int i = 0; i < lanes; ++i)
        ASSERT_EQ(out[z(i)], i < k ? a[z(i)] : b[z(i)]) << lanes << " " << k << " " << i;
    }
    select(a.data(), b.data(), out.data(), lanes, 0);
    EXPECT_EQ(out, b);
    select(a.data(), b.data(), out.data(), lanes, lanes);
    EXPECT_EQ(out, a);
    // out may be a or b.
    Plane a2 = a;
    select(a2.data(), b.data(), a2.data(), lanes, lanes / 2);
    select(a.data(), b.data(), out.data(), lanes, lanes / 2);
    EXPECT_EQ(a2, out);
    Plane b2 = b;
    select(a.data(), b2.data(), b2.data(), lanes, lanes / 2);
    EXPECT_EQ(b2, out);
  }
  Plane a(16), out(16);
  EXPECT_THROW(select(a.data(), a.data(), out.data(), 16, 17), std::invalid_argument);
}

// --- permute
// --------------------------------------------------------------------------------------

TEST(Sxm, PermuteRandomBijections) {
  std::mt19937 rng(4);
  for (int lanes : kLanes)
    for (int t = 0; t < 50; ++t) {
      std::vector<int> map(z(lanes));
      std::iota(map.begin(), map.end(), 0);
      std::shuffle(map.begin(), map.end(), rng);
      Plane lo, hi, out(z(lanes));
      split(map, lo, hi);
      const Plane in = random_plane(rng, lanes);
      ASSERT_EQ(permute(in.data(), lo.data(), hi.data(), out.data(), lanes), std::nullopt);
      for (int i = 0; i < lanes; ++i)
        ASSERT_EQ(out[z(map[z(i)])], in[z(i)]);
    }
}

TEST(Sxm, PermuteIdentityAndReverse) {
  std::mt19937 rng(5);
  for (int lanes : kLanes) {
    const Plane in = random_plane(rng, lanes);
    std::vector<int> map(z(lanes));
    std::iota(map.begin(), map.end(), 0);
    Plane lo, hi, out(z(lanes));
    split(map, lo, hi);
    ASSERT_EQ(permute(in.data(), lo.data(), hi.data(), out.data(), lanes), std::nullopt);
    EXPECT_EQ(out, in);
    std::reverse(map.begin(), map.end());
    split(map, lo, hi);
    ASSERT_EQ(permute(in.data(), lo.data(), hi.data(), out.data(), lanes), std::nullopt);
    EXPECT_EQ(out, Plane(in.rbegin(), in.rend()));
  }
}

TEST(Sxm, PermuteReportsTheFirstBadLane) {
  const int lanes = 320;
  std::vector<int> map(z(lanes));
  std::iota(map.begin(), map.end(), 0);
  Plane lo, hi, out(z(lanes)), in(z(lanes), 1);

  auto bad = map;
  bad[200] = 320;  // out of range (needs the high byte)
  bad[250] = 3;    // and a later duplicate
  split(bad, lo, hi);
  auto e = permute(in.data(), lo.data(), hi.data(), out.data(), lanes);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "lane 200: target 320 is out of range (320 lanes)");

  bad = map;
  bad[7] = 300;  // lane 300 still maps to 300: the duplicate is found at lane 300
  split(bad, lo, hi);
  e = permute(in.data(), lo.data(), hi.data(), out.data(), lanes);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "lane 300: target 300 is already the target of lane 7");

  bad = map;
  bad[0] = 0xffff;
  split(bad, lo, hi);
  e = permute(in.data(), lo.data(), hi.data(), out.data(), lanes);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "lane 0: target 65535 is out of range (320 lanes)");

  // A map that is a bijection of 256 lanes but uses only the low byte is fine on 256 lanes and
  // wrong on 320 (targets repeat).
  std::vector<int> low(320);
  for (int i = 0; i < 320; ++i)
    low[z(i)] = i & 0xff;
  split(low, lo, hi);
  e = permute(in.data(), lo.data(), hi.data(), out.data(), 320);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "lane 256: target 0 is already the target of lane 0");
  EXPECT_EQ(permute(in.data(), lo.data(), hi.data(), out.data(), 256), std::nullopt);
}

// --- distribute
// -----------------------------------------------------------------------------------

TEST(Sxm, DistributeMatchesDefinition) {
  std::mt19937 rng(6);
  for (int lanes : kLanes)
    for (int t = 0; t < 50; ++t) {
      const Plane in = random_plane(rng, lanes);
      Plane map(z(lanes)), out(z(lanes));
      for (auto& m : map) {
        const unsigned r = rng() % 20;
        m = static_cast<std::uint8_t>(r < 16 ? r : 255);
      }
      ASSERT_EQ(distribute(in.data(), map.data(), out.data(), lanes), std::nullopt);
      for (int i = 0; i < lanes; ++i) {
        const int s = i / 16, m = map[z(i)];
        ASSERT_EQ(out[z(i)], m == 255 ? 0 : in[z(16 * s + m)]) << lanes << " lane " << i;
      }
    }
}

TEST(Sxm, DistributeReplicatesAndReportsBadValues) {
  Plane in(32), map(32, 3), out(32);
  for (int i = 0; i < 32; ++i)
    in[z(i)] = static_cast<std::uint8_t>(100 + i);
  ASSERT_EQ(distribute(in.data(), map.data(), out.data(), 32), std::nullopt);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out[z(i)], 103);
    EXPECT_EQ(out[z(16 + i)], 119);  // stays within its superlane
  }
  map.assign(32, 255);
  ASSERT_EQ(distribute(in.data(), map.data(), out.data(), 32), std::nullopt);
  EXPECT_EQ(out, Plane(32, 0));
  map.assign(32, 0);
  map[20] = 16;
  map[25] = 254;
  auto e = distribute(in.data(), map.data(), out.data(), 32);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "lane 20: map value 16 is neither a lane of the superlane (0..15) nor 255 (zero)");
  EXPECT_THROW(distribute(in.data(), map.data(), out.data(), 24), std::invalid_argument);
}

// --- transpose --------------------------------------------------------------------------------

TEST(Sxm, TransposeMatchesDefinitionAndIsItsOwnInverse) {
  std::mt19937 rng(7);
  for (int lanes : kLanes) {
    std::vector<Plane> in, mid(16, Plane(z(lanes))), back(16, Plane(z(lanes)));
    for (int s = 0; s < 16; ++s)
      in.push_back(random_plane(rng, lanes));
    const auto in_p = ptrs(in);
    const auto mid_p = ptrs(mid);
    transpose(in_p.data(), mid_p.data(), lanes);
    for (int j = 0; j < 16; ++j)
      for (int i = 0; i < 16; ++i)
        for (int s = 0; s < lanes / 16; ++s)
          ASSERT_EQ(mid[z(j)][z(16 * s + i)], in[z(i)][z(16 * s + j)]);
    const std::vector<Plane>& cmid = mid;
    const auto cmid_p = ptrs(cmid);
    const auto back_p = ptrs(back);
    transpose(cmid_p.data(), back_p.data(), lanes);
    EXPECT_EQ(back, in);
  }
  std::vector<Plane> x(16, Plane(24));
  const std::vector<Plane>& cx = x;
  std::vector<Plane> y(16, Plane(24));
  EXPECT_THROW(transpose(ptrs(cx).data(), ptrs(y).data(), 24), std::invalid_argument);
}

TEST(Sxm, TransposeOfAStreamIndexPattern) {
  // Stream i carries the value i in every lane: afterwards stream j carries lane numbers.
  std::vector<Plane> in, out(16, Plane(32));
  for (int i = 0; i < 16; ++i)
    in.emplace_back(32, static_cast<std::uint8_t>(i));
  const std::vector<Plane>& cin = in;
  transpose(ptrs(cin).data(), ptrs(out).data(), 32);
  for (int j = 0; j < 16; ++j)
    for (int l = 0; l < 32; ++l)
      ASSERT_EQ(out[z(j)][z(l)], l % 16);
}

// --- rotate -----------------------------------------------------------------------------------

TEST(Sxm, RotateMatchesDefinition) {
  std::mt19937 rng(8);
  for (int lanes : kLanes)
    for (int n : {3, 4, 2, 8}) {
      std::vector<Plane> in, out(z(n * n), Plane(z(lanes), 0xcd));
      for (int r = 0; r < n; ++r)
        in.push_back(random_plane(rng, lanes));
      const std::vector<Plane>& cin = in;
      rotate(ptrs(cin).data(), ptrs(out).data(), lanes, n);
      for (int r = 0; r < n; ++r)
        for (int k = 0; k < n; ++k)
          for (int i = 0; i < lanes; ++i)
            ASSERT_EQ(out[z(r * n + k)][z(i)], i + k < lanes ? in[z(r)][z(i + k)] : 0)
                << lanes << " lanes, n " << n << ", plane " << r * n + k << ", lane " << i;
    }
}

TEST(Sxm, RotateGivesConvolutionWindows) {
  // A 3 x 3 convolution of a 4-row image (rows y..y+2 in, window at column x): the weighted sum
  // of the 9 planes at lane x equals the direct convolution with zero padding on the right.
  std::mt19937 rng(9);
  const int lanes = 32, n = 3;
  std::vector<Plane> rows;
  for (int r = 0; r < n; ++r) {
    Plane p(z(lanes));
    for (auto& v : p)
      v = static_cast<std::uint8_t>(rng() % 10);
    rows.push_back(p);
  }
  const int w[3][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
  std::vector<Plane> taps(9, Plane(z(lanes)));
  const std::vector<Plane>& crows = rows;
  rotate(ptrs(crows).data(), ptrs(taps).data(), lanes, n);
  for (int x = 0; x < lanes; ++x) {
    int direct = 0, via_planes = 0;
    for (int r = 0; r < 3; ++r)
      for (int k = 0; k < 3; ++k) {
        direct += w[r][k] * (x + k < lanes ? rows[z(r)][z(x + k)] : 0);
        via_planes += w[r][k] * taps[z(r * 3 + k)][z(x)];
      }
    ASSERT_EQ(via_planes, direct) << x;
  }
  // Plane r*n + 0 is the input row itself; the window crosses superlane boundaries.
  EXPECT_EQ(taps[3], rows[1]);
  EXPECT_EQ(taps[2][15], rows[0][17]);
  EXPECT_THROW(rotate(ptrs(crows).data(), ptrs(taps).data(), lanes, 0), std::invalid_argument);
}
