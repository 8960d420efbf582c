// The C2C link layer RTL (rtl/c2c/c2c_link.sv, Verilated with tiny's 32-byte payload) against the
// model's frame (func::encode_frame / decode_frame): the bit stream on the 4 transmit lanes is
// the model's frame bytes (byte i on lane i % 4, least significant bit first) for 2,000 random
// frames; the receive side, fed the model's frames back to back, gives their header and payload
// with a good CRC, and with 1 to 3 bits of the wire inverted reports the CRC exactly when the
// model's decode rejects the frame.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "Vc2c_link.h"
#include "func/c2c_link.h"
#include "harness.h"
#include "verilated.h"

using namespace lpu;
using namespace lpu::rtl_test;

namespace {

constexpr int kPayload = 32;
constexpr int kFrame = func::kFrameHeaderBytes + kPayload + func::kFrameCrcBytes;

struct Link {
  VerilatedContext ctx;
  Vc2c_link top{&ctx};
  Link() { reset(top); }
  void tick() { rtl_test::tick(top); }
  // The lanes' bits of one frame, as bytes (byte i from lane i % 4).
  std::vector<std::uint8_t> send(const func::LinkFrame& f) {
    top.tx_start = 1;
    top.tx_seq = f.sequence;
    top.tx_chip = f.src_chip;
    top.tx_port = f.src_port;
    put_bytes(top.tx_payload, f.payload.data(), kPayload);
    tick();
    top.tx_start = 0;
    std::vector<std::uint8_t> wire(kFrame, 0);
    for (int c = 0; c < kFrame * 2; ++c) {
      tick();
      EXPECT_TRUE(top.tx_active) << "clock " << c;
      for (int l = 0; l < 4; ++l)
        if (top.tx_lanes >> l & 1)
          wire[static_cast<std::size_t>((c / 8) * 4 + l)] |=
              static_cast<std::uint8_t>(1u << (c % 8));
    }
    tick();
    EXPECT_FALSE(top.tx_active);
    return wire;
  }
  // Feeds `wire` to the receive lanes; true when rx_done came with it.
  bool receive(const std::vector<std::uint8_t>& wire) {
    for (int c = 0; c < kFrame * 2; ++c) {
      top.rx_valid = 1;
      std::uint8_t lanes = 0;
      for (int l = 0; l < 4; ++l)
        lanes |= static_cast<std::uint8_t>(
            (wire[static_cast<std::size_t>((c / 8) * 4 + l)] >> (c % 8) & 1) << l);
      top.rx_lanes = lanes;
      tick();
    }
    top.rx_valid = 0;
    return top.rx_done;
  }
};

func::LinkFrame random_frame(std::mt19937& rng) {
  func::LinkFrame f;
  f.sequence = rng();
  f.src_chip = static_cast<std::uint16_t>(rng());
  f.src_port = static_cast<std::uint8_t>(rng());
  f.payload.resize(kPayload);
  for (auto& b : f.payload)
    b = static_cast<std::uint8_t>(rng());
  return f;
}

}  // namespace

TEST(C2cLinkRtl, TransmitLanesCarryTheModelsFrame) {
  Link link;
  std::mt19937 rng(6);
  for (int rep = 0; rep < 2000; ++rep) {
    const func::LinkFrame f = random_frame(rng);
    ASSERT_EQ(link.send(f), func::encode_frame(f)) << "frame " << rep;
  }
}

TEST(C2cLinkRtl, ReceiveChecksTheCrcAsTheModel) {
  Link link;
  std::mt19937 rng(7);
  int rejected = 0;
  for (int rep = 0; rep < 4000; ++rep) {
    const func::LinkFrame f = random_frame(rng);
    std::vector<std::uint8_t> wire = func::encode_frame(f);
    const int flips = rep % 2 ? 1 + static_cast<int>(rng() % 3) : 0;
    std::set<std::size_t> bits;
    while (static_cast<int>(bits.size()) < flips)
      bits.insert(rng() % (8 * wire.size()));
    for (const std::size_t bit : bits)
      wire[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    ASSERT_TRUE(link.receive(wire)) << "frame " << rep;
    const auto model = func::decode_frame(wire);
    ASSERT_EQ(static_cast<bool>(link.top.rx_crc_ok), model.has_value()) << "frame " << rep;
    if (!model) {
      ++rejected;
      continue;
    }
    EXPECT_EQ(link.top.rx_seq, model->sequence);
    EXPECT_EQ(link.top.rx_chip, model->src_chip);
    EXPECT_EQ(link.top.rx_port, model->src_port);
    EXPECT_EQ(link.top.rx_flags, 0);
    for (int b = 0; b < kPayload; ++b)
      ASSERT_EQ(static_cast<std::uint8_t>(link.top.rx_payload[static_cast<std::size_t>(b / 4)] >>
                                          (8 * (b % 4))),
                model->payload[static_cast<std::size_t>(b)])
          << "frame " << rep << " byte " << b;
  }
  // Every frame with flipped bits is caught (CRC-32 catches any 1 to 3 bit errors in 352 bits).
  EXPECT_EQ(rejected, 2000);
}
