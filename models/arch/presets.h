// Presets compiled into the tool (generated from models/arch/presets/*.json at build time).
#pragma once

#include <cstddef>

namespace lpu::arch {
struct PresetText {
  const char* name;
  const char* text;
};
extern const PresetText kPresets[];
extern const std::size_t kPresetCount;
}  // namespace lpu::arch
