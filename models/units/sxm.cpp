#include "units/sxm.h"

#include "func/sxm.h"

namespace lpu::units {

Sxm::Sxm(const sc_core::sc_module_name& name, ChipContext& ctx)
    : Unit(name, ctx), out_(64, std::vector<std::uint8_t>(static_cast<std::size_t>(ctx.lanes))) {}

void Sxm::execute(const Issue& is) {
  ++stats_.instructions;
  ++stats_.busy_cycles;
  const isa::Instr& in = *is.instr;
  const int lanes = ctx_.lanes;
  const bool f = ctx_.functional();
  std::uint8_t* d[64];
  for (std::size_t i = 0; i < out_.size(); ++i)
    d[i] = out_[i].data();
  const std::uint8_t* res[64];
  for (int i = 0; i < 64; ++i)
    res[i] = d[i];
  const std::uint8_t* a[64] = {};
  const int g = isa::stream_group(in, 0);
  switch (in.opcode) {
    case 0x70: {  // shift.T.dir a, d, lanes
      if (!read_group(is, in.arg[0], g, a)) return;
      if (f)
        for (int p = 0; p < g; ++p)
          func::shift(a[p], d[p], lanes, static_cast<int>(in.arg[2]), in.mod[1] == 1);
      write_group(is, in.arg[1], g, f ? res : nullptr);
      return;
    }
    case 0x71: {  // select.T a, b, d, lanes
      const std::uint8_t* b[4] = {};
      if (!read_group(is, in.arg[0], g, a) || !read_group(is, in.arg[1], g, b)) return;
      if (f)
        for (int p = 0; p < g; ++p)
          func::select(a[p], b[p], d[p], lanes, static_cast<int>(in.arg[3]));
      write_group(is, in.arg[2], g, f ? res : nullptr);
      return;
    }
    case 0x72:    // permute.T a, map, d
    case 0x73: {  // distribute.T a, map, d
      const bool perm = in.opcode == 0x72;
      const std::uint8_t* map[2] = {};
      if (!read_group(is, in.arg[0], g, a) || !read_group(is, in.arg[1], perm ? 2 : 1, map)) return;
      if (f)
        for (int p = 0; p < g; ++p) {
          const auto err = perm ? func::permute(a[p], map[0], map[1], d[p], lanes)
                                : func::distribute(a[p], map[0], d[p], lanes);
          if (err) {
            ctx_.error(is, "bad map: " + *err, stream_name(in.arg[1]), position(is));
            return;
          }
        }
      write_group(is, in.arg[2], g, f ? res : nullptr);
      return;
    }
    case 0x74: {  // rotate.nN a, d
      const int n = in.mod[0];
      if (!read_group(is, in.arg[0], n, a)) return;
      if (f) func::rotate(a, d, lanes, n);
      write_group(is, in.arg[1], n * n, f ? res : nullptr);
      return;
    }
    case 0x75: {  // transpose a, d
      if (!read_group(is, in.arg[0], 16, a)) return;
      if (f) func::transpose(a, d, lanes);
      write_group(is, in.arg[1], 16, f ? res : nullptr);
      return;
    }
    default:
      ctx_.error(is, std::string("'") + in.info().mnemonic + "' is not an SXM instruction");
  }
}

}  // namespace lpu::units
