#include "isa/program.h"

#include "isa/layout.h"

#include <map>

namespace lpu::isa {

const char* to_string(TensorRole r) {
  switch (r) {
    case TensorRole::kInput:
      return "input";
    case TensorRole::kOutput:
      return "output";
    case TensorRole::kConstant:
      return "constant";
    case TensorRole::kScratch:
      return "scratch";
  }
  return "?";
}

std::optional<TensorRole> parse_role(std::string_view s) {
  for (auto r :
       {TensorRole::kInput, TensorRole::kOutput, TensorRole::kConstant, TensorRole::kScratch})
    if (s == to_string(r)) return r;
  return std::nullopt;
}

std::string step_text(const InstrRef& r) {
  if (r.any_step()) return "";
  std::string s = "@";
  if (r.mul == 0) {
    s += std::to_string(r.add);
  } else {
    if (r.mul == -1)
      s += "-";
    else if (r.mul != 1)
      s += std::to_string(r.mul);
    s += "r";
    if (r.add > 0) s += "+" + std::to_string(r.add);
    if (r.add < 0) s += std::to_string(r.add);
  }
  if (r.div != 1) s += "/" + std::to_string(r.div);
  return s;
}

std::size_t Program::instruction_count() const {
  std::size_t n = 0;
  for (const auto& c : chips)
    for (const auto& q : c.queues)
      n += q.entries.size();
  return n;
}

namespace {

// The last cycle an instruction keeps its queue busy (ICU NOP and Repeat hold it).
std::uint64_t busy_until(const Entry& e, const arch::Chip& chip) {
  switch (e.instr.opcode) {
    case 0x00:
      return e.cycle + (e.instr.arg[0] ? e.instr.arg[0] - 1 : 0);  // nop n
    case 0x05:
      return e.cycle +
             std::uint64_t(e.instr.arg[1]) * (e.instr.arg[0] ? e.instr.arg[0] - 1 : 0);  // repeat
    case 0x63:  // abc n: one activation vector per step
    case 0x64:  // acc n: one result vector per step
      return e.cycle +
             std::uint64_t(step_cycles(e.instr, chip)) * (e.instr.arg[1] ? e.instr.arg[1] - 1 : 0);
    default:
      return e.cycle;
  }
}

}  // namespace

void validate(const Program& p, const SourceMap& where) {
  const auto& chip = p.arch.chip;
  const auto queues = arch::chip_queues(chip);
  const auto nchips = static_cast<std::uint32_t>(p.arch.system.chips);
  auto queue_name = [&](std::uint16_t q) {
    return q < queues.size() ? queues[q].name : "#" + std::to_string(q);
  };

  for (const auto& c : p.chips) {
    if (c.chip >= nchips)
      throw InputError(where.instruction(c.chip, c.queues.empty() ? 0 : c.queues[0].queue, 0, -1),
                       "chip " + std::to_string(c.chip) + " does not exist: the system has " +
                           std::to_string(nchips) + " chip(s)");
    std::map<std::uint16_t, std::size_t> counts;
    for (const auto& q : c.queues)
      counts[q.queue] = q.entries.size();
    for (const auto& q : c.queues) {
      if (q.queue >= queues.size())
        throw InputError(where.instruction(c.chip, q.queue, 0, -1),
                         "queue id " + std::to_string(q.queue) + " does not exist on this chip (" +
                             std::to_string(queues.size()) + " queues)");
      if (q.entries.size() > static_cast<std::size_t>(chip.icu.queue_depth) && chip.icu.preloaded)
        throw InputError(
            where.instruction(c.chip, q.queue, q.entries.size() - 1, -1),
            "queue " + queues[q.queue].name + " holds " + std::to_string(q.entries.size()) +
                " instructions; a preloaded queue holds at most chip.icu.queue_depth = " +
                std::to_string(chip.icu.queue_depth));
      const arch::Queue& queue = queues[q.queue];
      for (std::size_t i = 0; i < q.entries.size(); ++i) {
        const Entry& e = q.entries[i];
        if (auto prob = check(e.instr, chip, queue))
          throw InputError(where.instruction(c.chip, q.queue, i, prob->operand), prob->message);
        if (i > 0) {
          const Entry& prev = q.entries[i - 1];
          if (e.cycle == prev.cycle)
            throw InputError(where.instruction(c.chip, q.queue, i, -2),
                             "two instructions of queue " + queue.name + " at cycle " +
                                 std::to_string(e.cycle) + " (instructions " +
                                 std::to_string(i - 1) + " and " + std::to_string(i) + ")");
          if (e.cycle < prev.cycle)
            throw InputError(where.instruction(c.chip, q.queue, i, -2),
                             "cycle " + std::to_string(e.cycle) +
                                 " comes before the previous instruction's cycle " +
                                 std::to_string(prev.cycle) + ": a queue runs in order");
          if (e.cycle <= busy_until(prev, p.arch.chip))
            throw InputError(where.instruction(c.chip, q.queue, i, -2),
                             "cycle " + std::to_string(e.cycle) + " falls while the previous '" +
                                 prev.instr.info().mnemonic + "' keeps queue " + queue.name +
                                 " busy (until cycle " +
                                 std::to_string(busy_until(prev, p.arch.chip)) + ")");
        }
        if (e.instr.opcode == 0x05) {
          if (i == 0 || q.entries[i - 1].instr.info().unit == Unit::kIcu)
            throw InputError(
                where.instruction(c.chip, q.queue, i, -1),
                "'repeat' must follow an instruction of a functional unit on the same queue");
        }
        if (e.done && *e.done < e.cycle)
          throw InputError(where.instruction(c.chip, q.queue, i, -3),
                           "predicted completion cycle " + std::to_string(*e.done) +
                               " is before the dispatch cycle " + std::to_string(e.cycle));
        for (const auto& ref : e.expect) {
          if (ref.div == 0 && (ref.mul != 0 || ref.add != 0))
            throw InputError(where.instruction(c.chip, q.queue, i, -4),
                             "expected producer " + queue_name(ref.queue) + "#" +
                                 std::to_string(ref.index) +
                                 " has a repetition relation with divisor 0");
          auto it = counts.find(ref.queue);
          if (ref.queue >= queues.size() || it == counts.end() || ref.index >= it->second)
            throw InputError(where.instruction(c.chip, q.queue, i, -4),
                             "expected producer " + queue_name(ref.queue) + "#" +
                                 std::to_string(ref.index) + " is not an instruction of chip " +
                                 std::to_string(c.chip));
        }
      }
    }
  }

  const auto slice_ok = [&](std::uint16_t s) {
    return s < queues.size() && queues[s].unit == arch::QueueUnit::kMem;
  };
  for (std::size_t t = 0; t < p.tensors.size(); ++t) {
    const Tensor& ten = p.tensors[t];
    if (ten.chip >= nchips)
      throw InputError(where.tensor(t), "tensor '" + ten.name + "' is on chip " +
                                            std::to_string(ten.chip) + ", which does not exist");
    // Names and layouts are single words in the text form.
    for (const std::string* word : {&ten.name, &ten.layout}) {
      const bool bad = word->empty() || word->find_first_of(" \t\r\n;=\"[],") != std::string::npos;
      if (bad)
        throw InputError(where.tensor(t),
                         std::string("tensor ") + (word == &ten.name ? "name" : "layout") + " '" +
                             *word + "' must be a non-empty word without spaces or any of ;=\"[],");
    }
    for (std::size_t u = 0; u < t; ++u)
      if (p.tensors[u].name == ten.name)
        throw InputError(where.tensor(t), "tensor '" + ten.name + "' is defined twice");
    if (auto err = rows_layout(ten, chip.lanes(), nullptr))
      throw InputError(where.tensor(t), "tensor '" + ten.name + "': " + *err);
    for (const auto& pl : ten.placements) {
      if (!slice_ok(pl.slice))
        throw InputError(where.tensor(t), "tensor '" + ten.name + "' is placed on " +
                                              queue_name(pl.slice) + ", which is not a MEM slice");
      if (std::uint64_t(pl.addr) + pl.vectors > static_cast<std::uint64_t>(chip.mem.depth))
        throw InputError(where.tensor(t),
                         "tensor '" + ten.name + "' runs past the end of " + queue_name(pl.slice) +
                             " (addresses " + std::to_string(pl.addr) + ".." +
                             std::to_string(std::uint64_t(pl.addr) + pl.vectors - 1) + ", depth " +
                             std::to_string(chip.mem.depth) + ")");
    }
  }
  const auto vb = static_cast<std::size_t>(chip.vector_bytes());
  for (std::size_t m = 0; m < p.images.size(); ++m) {
    const Image& im = p.images[m];
    if (im.chip >= nchips)
      throw InputError(where.image(m),
                       "image for chip " + std::to_string(im.chip) + ", which does not exist");
    if (!slice_ok(im.slice))
      throw InputError(where.image(m),
                       "image on " + queue_name(im.slice) + ", which is not a MEM slice");
    if (im.bytes.empty() || im.bytes.size() % vb)
      throw InputError(where.image(m), "image holds " + std::to_string(im.bytes.size()) +
                                           " bytes, not a whole number of " + std::to_string(vb) +
                                           "-byte vectors");
    if (im.addr + im.bytes.size() / vb > static_cast<std::size_t>(chip.mem.depth))
      throw InputError(where.image(m), "image runs past the end of " + queue_name(im.slice) +
                                           " (depth " + std::to_string(chip.mem.depth) + ")");
  }
}

}  // namespace lpu::isa
