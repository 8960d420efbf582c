// The binary program container `.lpubin`. Layout (little-endian), documented in
// docs/program-format.md:
//   header  32 bytes: magic "\x7fLPUBIN\n", u16 major, u16 minor, u32 section count,
//           u64 payload bytes, u32 CRC-32 of the payload, u32 zero
//   payload sections, each: 4-byte tag, u32 zero, u64 length, body
//           ARCH (canonical JSON of the resolved architecture), META, CODE, TENS, IMAG
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "isa/program.h"

namespace lpu::isa {

constexpr std::uint16_t kLpubinMajor = 2;
constexpr std::uint16_t kLpubinMinor = 0;

std::vector<std::uint8_t> to_lpubin(const Program& p);
/// Parses and validates; every problem is an InputError "FILE:byte N: ..." naming what is wrong.
Program from_lpubin(const std::vector<std::uint8_t>& bytes, const std::string& file);

Program load_lpubin(const std::string& path);
void save_lpubin(const Program& p, const std::string& path);

}  // namespace lpu::isa
