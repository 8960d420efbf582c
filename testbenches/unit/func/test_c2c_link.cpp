// The C2C link core (func/c2c_link): frames round-trip, the CRC catches corrupted frames, the
// timing follows the architecture's link parameters, and bit errors are reproducible for a seed.
#include "func/c2c_link.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "arch/arch.h"

using namespace lpu;

namespace {

func::LinkFrame frame(std::uint32_t seq, unsigned seed) {
  func::LinkFrame f;
  f.sequence = seq;
  f.src_chip = 513;
  f.src_port = 7;
  std::mt19937 rng(seed);
  f.payload.resize(320);
  for (auto& b : f.payload)
    b = static_cast<std::uint8_t>(rng());
  return f;
}

}  // namespace

TEST(C2cLink, FrameRoundTrips) {
  const auto f = frame(123456789, 1);
  const auto wire = func::encode_frame(f);
  EXPECT_EQ(wire.size(), 8u + 320u + 4u);
  const auto g = func::decode_frame(wire);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->sequence, f.sequence);
  EXPECT_EQ(g->src_chip, f.src_chip);
  EXPECT_EQ(g->src_port, f.src_port);
  EXPECT_EQ(g->payload, f.payload);
}

// CRC-32 detects every single-bit and every double-bit error in a frame.
TEST(C2cLink, CrcDetectsEverySingleAndDoubleBitFlip) {
  const auto wire = func::encode_frame(frame(5, 2));
  const std::size_t bits = wire.size() * 8;
  for (std::size_t i = 0; i < bits; ++i) {
    auto w = wire;
    w[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    EXPECT_FALSE(func::decode_frame(w).has_value()) << "bit " << i;
  }
  std::mt19937 rng(3);
  for (int k = 0; k < 20000; ++k) {
    const std::size_t i = rng() % bits, j = rng() % bits;
    if (i == j) continue;
    auto w = wire;
    w[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    w[j / 8] ^= static_cast<std::uint8_t>(1u << (j % 8));
    ASSERT_FALSE(func::decode_frame(w).has_value()) << "bits " << i << ", " << j;
  }
  EXPECT_FALSE(func::decode_frame({1, 2, 3}).has_value());
}

// tsp-v1: 4 lanes x 30 Gb/s x 64/66 = 116.36 Gb/s of payload; a 332-byte frame is 22.82 ns, 21
// cycles at 900 MHz (1.111 ns); the latency rounds up to whole cycles.
TEST(C2cLink, TimingFollowsTheLinkParameters) {
  arch::Arch a = arch::load("tsp-v1");
  func::LinkTiming t(a);
  EXPECT_NEAR(t.payload_gbps, 4 * 30.0 * a.chip.c2c.coding_efficiency, 1e-9);
  EXPECT_EQ(t.frame_bytes, 332u);
  const double ns = 8.0 * 332 / t.payload_gbps;
  EXPECT_EQ(t.frame_cycles(), static_cast<std::uint64_t>(std::ceil(ns / (1000.0 / 900.0))));
  EXPECT_EQ(t.latency,
            static_cast<std::uint64_t>(std::ceil(a.chip.c2c.latency_ns / (1000.0 / 900.0))));
  EXPECT_EQ(t.arrival(1000), 1000 + t.frame_cycles() + t.latency);
  // Twice the lanes halve the serialisation (rounded up); latency is unchanged.
  arch::Arch b = arch::load("tsp-v1", {"chip.c2c.lanes_per_link=8"});
  func::LinkTiming u(b);
  EXPECT_EQ(u.frame_cycles(), static_cast<std::uint64_t>(std::ceil(ns / 2 / (1000.0 / 900.0))));
  EXPECT_EQ(u.latency, t.latency);
  // A slower clock: fewer cycles for the same nanoseconds.
  arch::Arch c = arch::load("tsp-v1", {"chip.clock_mhz=450", "chip.c2c.latency_ns=100"});
  func::LinkTiming v(c);
  EXPECT_EQ(v.frame_cycles(), static_cast<std::uint64_t>(std::ceil(ns / (1000.0 / 450.0))));
  EXPECT_EQ(v.latency, 45u);
  EXPECT_EQ(v.arrival(0), v.frame_cycles() + 45u);
}

// Errors at a rate of 1e-4 over 5000 frames: about 1.3 per frame on average; every corrupted
// frame fails its CRC, clean ones pass, the flips match the rate, and a seed repeats them.
TEST(C2cLink, InjectedErrorsAreDetectedAndReproducible) {
  auto run = [](std::uint64_t seed, std::vector<int>* flips) {
    func::BitErrorInjector inj(1e-4, seed);
    int detected = 0, corrupted = 0;
    for (std::uint32_t k = 0; k < 5000; ++k) {
      auto w = func::encode_frame(frame(k, k));
      const int n = inj.corrupt(w);
      flips->push_back(n);
      corrupted += n > 0;
      const bool ok = func::decode_frame(w).has_value();
      EXPECT_EQ(ok, n == 0) << "frame " << k << " with " << n << " flips";
      detected += !ok;
    }
    EXPECT_EQ(detected, corrupted);
    return inj.bits_seen();
  };
  std::vector<int> a, b, c;
  const auto bits = run(11, &a);
  run(11, &b);
  run(12, &c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double total = 0;
  for (int n : a)
    total += n;
  const double expected = 1e-4 * static_cast<double>(bits);  // 13,280
  EXPECT_NEAR(total, expected, 5 * std::sqrt(expected));
  // Rate 0 never flips; rate 1 flips every bit.
  func::BitErrorInjector none(0, 1), all(1, 1);
  auto w = func::encode_frame(frame(0, 0));
  const auto w0 = w;
  EXPECT_EQ(none.corrupt(w), 0);
  EXPECT_EQ(w, w0);
  EXPECT_EQ(all.corrupt(w), static_cast<int>(w.size() * 8));
  for (std::size_t i = 0; i < w.size(); ++i)
    EXPECT_EQ(w[i], static_cast<std::uint8_t>(~w0[i]));
}
