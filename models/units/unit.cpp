#include "units/unit.h"

#include <algorithm>
#include <cstring>

namespace lpu::units {

std::string Unit::stream_name(std::uint32_t arg, int offset) {
  return "s" + std::to_string(isa::stream_id(arg) + offset) + (isa::stream_west(arg) ? "w" : "e");
}

bool Unit::read_checked(const Issue& is, std::uint32_t arg, int i, const func::StreamValue* v) {
  const int pos = position(is);
  if (!v) {
    ctx_.error(is, "reads a stream slot nobody wrote", stream_name(arg, i), pos);
    return false;
  }
  const auto& expect = is.entry->expect;
  const func::Producer& p = v->producer;
  const isa::InstrRef* same = nullptr;  // the expected instruction, if the repetition is wrong
  for (const isa::InstrRef& r : expect)
    if (r.queue == p.queue && r.index == p.index) {
      if (r.step_matches(is.step, p.repetition)) return true;
      same = &r;
    }
  const auto& q = ctx_.queues[p.queue];
  const std::string found = q.name + "#" + std::to_string(p.index) + " (written at position " +
                            std::to_string(v->position) + " in cycle " + std::to_string(v->cycle);
  if (same) {
    const std::int64_t want = same->step_for(is.step);
    ctx_.error(
        is,
        "finds repetition " + std::to_string(p.repetition) + " of " + found + "), but repetition " +
            std::to_string(is.step) + " of this instruction expects " +
            (want >= 0 ? "its repetition " + std::to_string(want)
                       : std::string("no repetition of it") + " (" + isa::step_text(*same) + ")"),
        stream_name(arg, i), pos);
  } else {
    ctx_.error(is, "finds the value of " + found + "), not one it expects", stream_name(arg, i),
               pos);
  }
  return false;
}

void Unit::write_group(const Issue& is, std::uint32_t arg, int group,
                       const std::uint8_t* const* planes) {
  std::uint8_t* out[64] = {};
  if (!reserve_group(is, arg, group, out)) return;
  if (!planes || !ctx_.functional()) return;
  for (int i = 0; i < group; ++i)
    std::copy(planes[i], planes[i] + ctx_.lanes, out[i]);
  finish_group(is, group, out);
}

void Unit::reserve_failed(const Issue& is, std::uint32_t arg, int i, std::uint8_t** planes,
                          const func::Producer& other) {
  for (int j = 0; j < i; ++j)
    std::fill(planes[j], planes[j] + ctx_.lanes, 0);
  ctx_.error(is,
             "writes a stream slot that " + ctx_.queues[other.queue].name + "#" +
                 std::to_string(other.index) + " also writes in cycle " + std::to_string(is.result),
             stream_name(arg, i), position(is));
}

}  // namespace lpu::units
