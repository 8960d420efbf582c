// The stream fabric's time-space rule, against hand-worked cases and against a brute-force model
// that keeps every write and applies the rule literally.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "func/stream_fabric.h"

using namespace lpu::func;

namespace {

std::vector<std::uint8_t> vec(int lanes, std::uint8_t fill) {
  return std::vector<std::uint8_t>(static_cast<std::size_t>(lanes), fill);
}
Producer who(std::uint16_t q, std::uint32_t i) {
  return Producer{q, i, 0};
}

}  // namespace

TEST(StreamFabric, EastwardValueMovesOnePositionPerCycle) {
  StreamFabric f(32, 10, 1, 16, 8, true);
  const auto a = vec(16, 0xab);
  ASSERT_EQ(f.write(5, Dir::kEast, 3, 10, who(1, 0), a.data()), StreamFabric::WriteStatus::kOk);
  const StreamValue* v = f.read(5, Dir::kEast, 3, 10);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->producer, who(1, 0));
  EXPECT_EQ(v->position, 3);
  EXPECT_EQ(v->cycle, 10u);
  EXPECT_EQ(v->data[0], 0xab);
  ASSERT_NE(f.read(5, Dir::kEast, 7, 14), nullptr);
  ASSERT_NE(f.read(5, Dir::kEast, 9, 16), nullptr);  // last position
  EXPECT_EQ(f.read(5, Dir::kEast, 7, 13), nullptr);  // not there yet
  EXPECT_EQ(f.read(5, Dir::kEast, 7, 15), nullptr);  // already passed
  EXPECT_EQ(f.read(5, Dir::kEast, 2, 9), nullptr);   // west of the writer
  EXPECT_EQ(f.read(5, Dir::kWest, 3, 10), nullptr);  // other direction
  EXPECT_EQ(f.read(4, Dir::kEast, 3, 10), nullptr);  // other stream
}

TEST(StreamFabric, WestwardIsTheMirror) {
  StreamFabric f(32, 10, 1, 16, 8, true);
  const auto a = vec(16, 7);
  f.write(0, Dir::kWest, 6, 20, who(2, 1), a.data());
  ASSERT_NE(f.read(0, Dir::kWest, 6, 20), nullptr);
  ASSERT_NE(f.read(0, Dir::kWest, 0, 26), nullptr);
  EXPECT_EQ(f.read(0, Dir::kWest, 7, 19), nullptr);  // east of the writer
  EXPECT_EQ(f.read(0, Dir::kWest, 2, 23), nullptr);  // too early
}

TEST(StreamFabric, ADownstreamWriterOverwritesTheStream) {
  StreamFabric f(32, 12, 1, 4, 8, true);
  const auto a = vec(4, 1), b = vec(4, 2);
  f.write(3, Dir::kEast, 2, 10, who(1, 0), a.data());
  f.write(3, Dir::kEast, 6, 14, who(1, 1), b.data());  // same diagonal, further east
  EXPECT_EQ(f.read(3, Dir::kEast, 5, 13)->producer, who(1, 0));
  EXPECT_EQ(f.read(3, Dir::kEast, 6, 14)->producer, who(1, 1));
  EXPECT_EQ(f.read(3, Dir::kEast, 11, 19)->producer, who(1, 1));
  EXPECT_EQ(f.read(3, Dir::kEast, 11, 19)->data[0], 2);
}

TEST(StreamFabric, HopCyclesStretchTheDiagonal) {
  StreamFabric f(8, 6, 3, 4, 8, false);
  f.write(1, Dir::kEast, 0, 100, who(0, 0), nullptr);
  EXPECT_NE(f.read(1, Dir::kEast, 2, 106), nullptr);
  EXPECT_EQ(f.read(1, Dir::kEast, 2, 104), nullptr);
  EXPECT_EQ(f.read(1, Dir::kEast, 2, 106)->data, nullptr);  // timing mode keeps no data
}

TEST(StreamFabric, TwoWritesToOneSlotCollide) {
  StreamFabric f(32, 10, 1, 4, 8, true);
  const auto a = vec(4, 1), b = vec(4, 2);
  Producer other;
  EXPECT_EQ(f.write(9, Dir::kWest, 4, 50, who(3, 7), a.data()), StreamFabric::WriteStatus::kOk);
  EXPECT_EQ(f.write(9, Dir::kWest, 4, 50, who(4, 2), b.data(), &other),
            StreamFabric::WriteStatus::kCollision);
  EXPECT_EQ(other, who(3, 7));
  EXPECT_EQ(f.read(9, Dir::kWest, 4, 50)->data[0], 1);  // the first value stays
  EXPECT_EQ(f.writes(), 1u);
}

// Random programs: each step is an access cycle; writes land up to `horizon` cycles ahead, reads
// happen at the access cycle. A reference keeps every write and applies the rule literally.
TEST(StreamFabric, MatchesTheRuleOnRandomTraffic) {
  for (int hop : {1, 2}) {
    const int streams = 4, positions = 20, lanes = 8, horizon = 12;
    StreamFabric f(streams, positions, hop, lanes, horizon, true);
    std::map<std::tuple<int, int, int, std::uint64_t>, std::pair<Producer, std::uint8_t>> all;
    std::mt19937 rng(1234 + static_cast<unsigned>(hop));
    auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    std::uint32_t serial = 0;
    std::uint64_t checked = 0, found = 0;
    for (std::uint64_t now = 0; now < 20000; ++now) {
      f.advance(now);
      for (int k = uni(0, 3); k > 0; --k) {
        const int s = uni(0, streams - 1), d = uni(0, 1), p = uni(0, positions - 1);
        const std::uint64_t w = now + static_cast<std::uint64_t>(uni(1, horizon));
        const auto key = std::make_tuple(s, d, p, w);
        const auto fill = static_cast<std::uint8_t>(serial);
        const Producer pr = who(static_cast<std::uint16_t>(s), serial++);
        const auto data = vec(lanes, fill);
        const auto st = f.write(s, static_cast<Dir>(d), p, w, pr, data.data());
        ASSERT_EQ(st == StreamFabric::WriteStatus::kCollision, all.count(key) == 1);
        if (!all.count(key)) all[key] = {pr, fill};
      }
      for (int k = uni(0, 4); k > 0; --k) {
        const int s = uni(0, streams - 1), d = uni(0, 1), q = uni(0, positions - 1);
        // Reference: nearest writer upstream whose value reaches q exactly now.
        const std::pair<Producer, std::uint8_t>* want = nullptr;
        for (int dist = 0; dist < positions; ++dist) {
          const int p = d == 0 ? q - dist : q + dist;
          if (p < 0 || p >= positions) break;
          const std::uint64_t back = static_cast<std::uint64_t>(dist * hop);
          if (back > now) break;
          auto it = all.find(std::make_tuple(s, d, p, now - back));
          if (it != all.end()) {
            want = &it->second;
            break;
          }
        }
        const StreamValue* got = f.read(s, static_cast<Dir>(d), q, now);
        ++checked;
        if (!want) {
          ASSERT_EQ(got, nullptr) << "hop " << hop << " cycle " << now;
        } else {
          ++found;
          ASSERT_NE(got, nullptr) << "hop " << hop << " cycle " << now;
          ASSERT_EQ(got->producer, want->first);
          ASSERT_EQ(got->data[lanes - 1], want->second);
        }
      }
    }
    EXPECT_GT(found, checked / 20) << "the traffic should make many reads hit";
  }
}
