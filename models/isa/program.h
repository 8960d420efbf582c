// A program (brief B2): per chip, per instruction queue, an in-order list of instructions each
// with its dispatch cycle; a symbol table of named tensors; initial MEM images; and the resolved
// architecture it was made for. `.lpuasm` (text) and `.lpubin` (binary) are two lossless forms of
// this one structure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/arch.h"
#include "arch/queues.h"
#include "isa/isa.h"

namespace lpu::isa {

/// Names one instruction of a chip (queue id and index within that queue) and, for a producer a
/// stream read expects, which of its repetitions (brief B4: a value is named by its instruction
/// and its repetition). A repetition is numbered from the first issue of the instruction it
/// repeats: 0 for the instruction itself, 1.. for the issues of the `repeat` after it (the step of
/// abc, acc and ifetch). For the consumer's repetition j, the producer's repetition p must satisfy
/// div * p == mul * j + add; div == 0 accepts any repetition (written `mem.w0#3`; the
/// relation is written `mem.w0#3@2r+1/4` and the like, see docs/program-format.md).
struct InstrRef {
  std::uint16_t queue = 0;
  std::uint16_t div = 0;
  std::uint32_t index = 0;
  std::int32_t mul = 0, add = 0;
  bool any_step() const { return div == 0; }
  /// Whether producer repetition p is the one consumer repetition j expects.
  bool step_matches(std::uint32_t j, std::uint32_t p) const {
    return div == 0 || static_cast<std::int64_t>(div) * p ==
                           static_cast<std::int64_t>(mul) * j + static_cast<std::int64_t>(add);
  }
  /// The producer repetition consumer repetition j expects, or -1 (none, or any).
  std::int64_t step_for(std::uint32_t j) const {
    if (div == 0) return -1;
    const std::int64_t v = static_cast<std::int64_t>(mul) * j + add;
    return v >= 0 && v % div == 0 ? v / div : -1;
  }
  bool operator==(const InstrRef& o) const {
    return queue == o.queue && index == o.index && mul == o.mul && add == o.add && div == o.div;
  }
};
/// "@2r+1/4" (empty for any repetition): the text form of a reference's repetition relation.
std::string step_text(const InstrRef& r);

struct Entry {
  std::uint64_t cycle = 0;  ///< dispatch cycle
  Instr instr;
  std::optional<std::uint64_t> done;  ///< completion cycle the compiler predicts
  std::vector<InstrRef> expect;       ///< producers whose values the stream reads expect (B4)
};

struct QueueProgram {
  std::uint16_t queue = 0;  ///< id from arch::chip_queues
  std::vector<Entry> entries;
};

struct ChipProgram {
  std::uint32_t chip = 0;
  std::vector<QueueProgram> queues;  ///< ascending queue id, no empty queues
};

/// Where a piece of a tensor lives: `vectors` consecutive addresses of one MEM slice.
struct Placement {
  std::uint16_t slice = 0;  ///< queue id of the MEM slice (arch::chip_queues), names it "mem.w3"
  std::uint32_t addr = 0;
  std::uint32_t vectors = 0;
};

enum class TensorRole : std::uint8_t { kInput = 0, kOutput = 1, kConstant = 2, kScratch = 3 };
const char* to_string(TensorRole r);
std::optional<TensorRole> parse_role(std::string_view s);

struct Tensor {
  std::string name;
  TensorRole role = TensorRole::kScratch;
  std::uint32_t chip = 0;
  DType dtype = DType::kI8;
  std::vector<std::uint64_t> shape;
  std::string layout;  ///< how elements map onto lanes and vectors, e.g. "rows" (see docs)
  std::vector<Placement> placements;
};

/// Initial contents of consecutive addresses of one MEM slice.
struct Image {
  std::uint32_t chip = 0;
  std::uint16_t slice = 0;  ///< queue id of the MEM slice
  std::uint32_t addr = 0;
  std::vector<std::uint8_t> bytes;  ///< a whole number of vectors
};

struct Program {
  arch::Arch arch;
  std::optional<std::uint64_t>
      predicted_cycles;            ///< of the whole run, if the producer predicted it
  std::vector<ChipProgram> chips;  ///< ascending chip number, no empty chips
  std::vector<Tensor> tensors;
  std::vector<Image> images;

  std::size_t instruction_count() const;
};

/// Whole-program checks that both forms share: chips and queues exist, cycles strictly increase
/// within a queue, every instruction is valid on its queue, expectations name real instructions,
/// tensors and images lie inside the slices. Throws InputError; `where` tells each instruction's
/// source location (by chip, queue id, index) for the message.
struct SourceMap {
  virtual ~SourceMap() = default;
  virtual Where instruction(std::uint32_t chip, std::uint16_t queue, std::size_t index,
                            int operand) const = 0;
  virtual Where tensor(std::size_t index) const = 0;
  virtual Where image(std::size_t index) const = 0;
};
void validate(const Program& p, const SourceMap& where);

/// Hash of the program's content (code, symbols, images, architecture), for reports.
std::uint64_t content_hash(const Program& p);

}  // namespace lpu::isa
