#include "isa/lpubin.h"

#include <boost/crc.hpp>
#include <cstring>
#include <fstream>
#include <map>
#include <tuple>

namespace lpu::isa {

namespace {

constexpr char kMagic[8] = {'\x7f', 'L', 'P', 'U', 'B', 'I', 'N', '\n'};
constexpr std::size_t kHeaderBytes = 32;
constexpr const char* kSections[] = {"ARCH", "META", "CODE", "TENS", "IMAG"};

class Out {
 public:
  void u8(std::uint8_t v) { b_.push_back(v); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void bytes(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::uint8_t*>(p);
    b_.insert(b_.end(), c, c + n);
  }
  void str(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<std::uint8_t>& data() { return b_; }

 private:
  void le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i)
      b_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t> b_;
};

class In {
 public:
  In(const std::uint8_t* data, std::size_t size, std::size_t base, std::string file,
     std::string what)
      : p_(data), size_(size), base_(base), file_(std::move(file)), what_(std::move(what)) {}

  std::size_t offset() const { return base_ + at_; }
  Where where(std::size_t off) const { return file_ + ":byte " + std::to_string(off); }
  [[noreturn]] void fail(const std::string& m) const { throw InputError(where(offset()), m); }
  [[noreturn]] void fail_at(std::size_t off, const std::string& m) const {
    throw InputError(where(off), m);
  }
  /// Reads a u32 that must be zero; a non-zero value is reported where it starts.
  void zero32(const char* what) {
    const std::size_t at = offset();
    if (u32() != 0) fail_at(at, std::string(what) + " is not zero");
  }

  void need(std::size_t n) const {
    if (size_ - at_ < n)
      fail("truncated " + what_ + ": needs " + std::to_string(n) + " more byte(s), " +
           std::to_string(size_ - at_) + " left");
  }
  std::uint64_t le(int n) {
    need(static_cast<std::size_t>(n));
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
      v |= std::uint64_t(p_[at_ + static_cast<std::size_t>(i)]) << (8 * i);
    at_ += static_cast<std::size_t>(n);
    return v;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() { return le(8); }
  const std::uint8_t* take(std::size_t n) {
    need(n);
    const auto* r = p_ + at_;
    at_ += n;
    return r;
  }
  std::string str(std::size_t max = 1u << 20) {
    const std::uint32_t n = u32();
    if (n > max) fail("string of " + std::to_string(n) + " bytes is implausibly long (corrupt?)");
    const auto* c = take(n);
    return std::string(reinterpret_cast<const char*>(c), n);
  }
  /// A count of items each at least `min_bytes` long: rejects counts the remaining bytes cannot
  /// hold.
  std::uint64_t count(int width, std::size_t min_bytes) {
    const std::uint64_t n = le(width);
    if (min_bytes && n > (size_ - at_) / min_bytes)
      fail("count " + std::to_string(n) + " in " + what_ + " cannot fit in the " +
           std::to_string(size_ - at_) + " bytes left (corrupt?)");
    return n;
  }
  bool at_end() const { return at_ == size_; }

 private:
  const std::uint8_t* p_;
  std::size_t size_;
  std::size_t at_ = 0;
  std::size_t base_;
  std::string file_;
  std::string what_;
};

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  boost::crc_32_type c;
  c.process_bytes(p, n);
  return c.checksum();
}

void section(Out& payload, const char* tag, Out& body) {
  payload.bytes(tag, 4);
  payload.u32(0);
  payload.u64(body.data().size());
  payload.bytes(body.data().data(), body.data().size());
}

// Where each instruction, tensor and image started in the file, for messages.
class BinarySourceMap : public SourceMap {
 public:
  explicit BinarySourceMap(std::string file) : file_(std::move(file)) {}
  // Per chip and queue, the byte offset of each instruction (a program may have tens of millions).
  std::map<std::pair<std::uint32_t, std::uint16_t>, std::vector<std::size_t>> instr;
  std::vector<std::size_t> tensors, images;
  std::vector<arch::Queue> queues;

  Where instruction(std::uint32_t chip, std::uint16_t queue, std::size_t index,
                    int) const override {
    auto it = instr.find({chip, queue});
    const std::size_t at = it == instr.end() || index >= it->second.size() ? 0 : it->second[index];
    const std::string q = queue < queues.size() ? queues[queue].name : "#" + std::to_string(queue);
    return file_ + ":byte " + std::to_string(at) + " (chip " + std::to_string(chip) + ", queue " +
           q + ", instruction " + std::to_string(index) + ")";
  }
  Where tensor(std::size_t i) const override {
    return file_ + ":byte " + std::to_string(i < tensors.size() ? tensors[i] : 0) + " (tensor " +
           std::to_string(i) + ")";
  }
  Where image(std::size_t i) const override {
    return file_ + ":byte " + std::to_string(i < images.size() ? images[i] : 0) + " (image " +
           std::to_string(i) + ")";
  }

 private:
  std::string file_;
};

}  // namespace

std::vector<std::uint8_t> to_lpubin(const Program& p) {
  Out payload;
  {
    Out b;
    b.bytes(p.arch.canonical.data(), p.arch.canonical.size());
    section(payload, "ARCH", b);
  }
  {
    Out b;
    b.u8(p.predicted_cycles ? 1 : 0);
    b.u64(p.predicted_cycles.value_or(0));
    section(payload, "META", b);
  }
  {
    Out b;
    b.u32(static_cast<std::uint32_t>(p.chips.size()));
    for (const auto& c : p.chips) {
      b.u32(c.chip);
      b.u32(static_cast<std::uint32_t>(c.queues.size()));
      for (const auto& q : c.queues) {
        b.u16(q.queue);
        b.u32(static_cast<std::uint32_t>(q.entries.size()));
        for (const auto& e : q.entries) {
          b.u64(e.cycle);
          const Word w = encode(e.instr);
          b.bytes(w.data(), w.size());
          b.u8(e.done ? 1 : 0);
          if (e.done) b.u64(*e.done);
          b.u16(static_cast<std::uint16_t>(e.expect.size()));
          for (const auto& r : e.expect) {
            b.u16(r.queue);
            b.u32(r.index);
            b.u32(static_cast<std::uint32_t>(r.mul));
            b.u32(static_cast<std::uint32_t>(r.add));
            b.u16(r.div);
          }
        }
      }
    }
    section(payload, "CODE", b);
  }
  {
    Out b;
    b.u32(static_cast<std::uint32_t>(p.tensors.size()));
    for (const auto& t : p.tensors) {
      b.str(t.name);
      b.u8(static_cast<std::uint8_t>(t.role));
      b.u32(t.chip);
      b.u8(static_cast<std::uint8_t>(t.dtype));
      b.u8(static_cast<std::uint8_t>(t.shape.size()));
      for (auto d : t.shape)
        b.u64(d);
      b.str(t.layout);
      b.u32(static_cast<std::uint32_t>(t.placements.size()));
      for (const auto& pl : t.placements) {
        b.u16(pl.slice);
        b.u32(pl.addr);
        b.u32(pl.vectors);
      }
    }
    section(payload, "TENS", b);
  }
  {
    Out b;
    b.u32(static_cast<std::uint32_t>(p.images.size()));
    for (const auto& im : p.images) {
      b.u32(im.chip);
      b.u16(im.slice);
      b.u32(im.addr);
      b.u64(im.bytes.size());
      b.bytes(im.bytes.data(), im.bytes.size());
    }
    section(payload, "IMAG", b);
  }
  Out file;
  file.bytes(kMagic, sizeof kMagic);
  file.u16(kLpubinMajor);
  file.u16(kLpubinMinor);
  file.u32(static_cast<std::uint32_t>(std::size(kSections)));
  file.u64(payload.data().size());
  file.u32(crc32(payload.data().data(), payload.data().size()));
  file.u32(0);
  file.bytes(payload.data().data(), payload.data().size());
  return std::move(file.data());
}

Program from_lpubin(const std::vector<std::uint8_t>& bytes, const std::string& file) {
  In h(bytes.data(), bytes.size(), 0, file, "header");
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw InputError(file + ":byte 0", "not an .lpubin file (bad magic number)");
  h.take(sizeof kMagic);
  const std::uint16_t major = h.u16();
  const std::uint16_t minor = h.u16();
  if (major > kLpubinMajor || (major == kLpubinMajor && minor > kLpubinMinor))
    throw InputError(file + ":byte 8",
                     "format version " + std::to_string(major) + "." + std::to_string(minor) +
                         " is newer than this build reads (" + std::to_string(kLpubinMajor) + "." +
                         std::to_string(kLpubinMinor) + "); use a newer lpu");
  if (major < kLpubinMajor)
    throw InputError(file + ":byte 8",
                     "format version " + std::to_string(major) + " is no longer supported");
  const std::uint32_t nsec = h.u32();
  const std::uint64_t payload_size = h.u64();
  const std::uint32_t crc = h.u32();
  h.zero32("reserved header field");
  if (nsec != std::size(kSections))
    throw InputError(file + ":byte 12", "expected " + std::to_string(std::size(kSections)) +
                                            " sections, header says " + std::to_string(nsec));
  if (bytes.size() - kHeaderBytes != payload_size)
    throw InputError(
        file + ":byte 16",
        bytes.size() - kHeaderBytes < payload_size
            ? "truncated: header promises " + std::to_string(payload_size) +
                  " payload bytes, file has " + std::to_string(bytes.size() - kHeaderBytes)
            : "file has " + std::to_string(bytes.size() - kHeaderBytes - payload_size) +
                  " stray bytes after the payload");
  const std::uint8_t* payload = bytes.data() + kHeaderBytes;
  if (crc32(payload, payload_size) != crc)
    throw InputError(file + ":byte 24", "checksum mismatch: the file is corrupt");

  In all(payload, payload_size, kHeaderBytes, file, "section table");
  std::map<std::string, In> body;
  for (const char* tag : kSections) {
    const std::size_t at = all.offset();
    const auto* t = all.take(4);
    if (std::memcmp(t, tag, 4) != 0)
      throw InputError(all.where(at), std::string("expected section ") + tag + ", found '" +
                                          std::string(reinterpret_cast<const char*>(t), 4) + "'");
    all.zero32("reserved section field");
    const std::uint64_t len = all.u64();
    const std::size_t start = all.offset();
    const auto* data = all.take(static_cast<std::size_t>(len));
    body.emplace(
        tag, In(data, static_cast<std::size_t>(len), start, file, std::string(tag) + " section"));
  }
  if (!all.at_end()) all.fail("stray bytes after the last section");

  Program p;
  BinarySourceMap src(file);
  {
    In& b = body.at("ARCH");
    const std::size_t at = b.offset();
    std::string text;
    while (!b.at_end())
      text.push_back(static_cast<char>(b.u8()));
    p.arch = arch::from_canonical(
        text, file + ":byte " + std::to_string(at) + " (embedded architecture)");
    if (p.arch.canonical != text)
      throw InputError(file + ":byte " + std::to_string(at),
                       "embedded architecture is not in canonical form");
  }
  src.queues = arch::chip_queues(p.arch.chip);
  {
    In& b = body.at("META");
    const std::size_t at = b.offset();
    const std::uint8_t has = b.u8();
    if (has > 1) b.fail_at(at, "bad flag in META");
    const std::size_t vat = b.offset();
    const std::uint64_t v = b.u64();
    if (!has && v) b.fail_at(vat, "predicted cycles present although the flag says none");
    if (has) p.predicted_cycles = v;
    if (!b.at_end()) b.fail("stray bytes in META section");
  }
  {
    In& b = body.at("CODE");
    const auto nchips = b.count(4, 8);
    for (std::uint64_t c = 0; c < nchips; ++c) {
      ChipProgram cp;
      const std::size_t chip_at = b.offset();
      cp.chip = b.u32();
      if (!p.chips.empty() && cp.chip <= p.chips.back().chip)
        b.fail_at(chip_at, "chips are not in ascending order");
      const auto nq = b.count(4, 6);
      for (std::uint64_t qi = 0; qi < nq; ++qi) {
        QueueProgram qp;
        const std::size_t queue_at = b.offset();
        qp.queue = b.u16();
        if (!cp.queues.empty() && qp.queue <= cp.queues.back().queue)
          b.fail_at(queue_at, "queues are not in ascending order");
        const std::size_t count_at = b.offset();
        const auto n = b.count(4, 27);
        if (n == 0) b.fail_at(count_at, "empty queue record");
        qp.entries.reserve(static_cast<std::size_t>(n));
        auto& offsets = src.instr[{cp.chip, qp.queue}];
        offsets.reserve(static_cast<std::size_t>(n));
        for (std::uint64_t i = 0; i < n; ++i) {
          offsets.push_back(b.offset());
          Entry e;
          e.cycle = b.u64();
          Word w;
          const std::size_t word_at = b.offset();
          std::memcpy(w.data(), b.take(kSlotBytes), kSlotBytes);
          std::string err;
          auto in = decode(w, &err);
          if (!in)
            throw InputError(src.instruction(cp.chip, qp.queue, static_cast<std::size_t>(i), -1) +
                                 " word at byte " + std::to_string(word_at),
                             err);
          e.instr = *in;
          const std::size_t flags_at = b.offset();
          const std::uint8_t flags = b.u8();
          if (flags > 1) b.fail_at(flags_at, "bad instruction flags");
          if (flags) e.done = b.u64();
          const auto ne = b.count(2, 16);
          for (std::uint64_t k = 0; k < ne; ++k) {
            InstrRef r;
            r.queue = b.u16();
            r.index = b.u32();
            r.mul = static_cast<std::int32_t>(b.u32());
            r.add = static_cast<std::int32_t>(b.u32());
            r.div = b.u16();
            e.expect.push_back(r);
          }
          qp.entries.push_back(std::move(e));
        }
        cp.queues.push_back(std::move(qp));
      }
      if (cp.queues.empty()) b.fail_at(chip_at, "chip record with no queues");
      p.chips.push_back(std::move(cp));
    }
    if (!b.at_end()) b.fail("stray bytes in CODE section");
  }
  {
    In& b = body.at("TENS");
    const auto n = b.count(4, 20);
    for (std::uint64_t i = 0; i < n; ++i) {
      src.tensors.push_back(b.offset());
      Tensor t;
      t.name = b.str();
      const std::size_t role_at = b.offset();
      const std::uint8_t role = b.u8();
      if (role > 3) b.fail_at(role_at, "bad tensor role " + std::to_string(role));
      t.role = static_cast<TensorRole>(role);
      t.chip = b.u32();
      const std::size_t dt_at = b.offset();
      const std::uint8_t dt = b.u8();
      if (dt < 1 || dt > 6) b.fail_at(dt_at, "bad tensor dtype " + std::to_string(dt));
      t.dtype = static_cast<DType>(dt);
      const std::uint8_t rank = b.u8();
      for (int d = 0; d < rank; ++d)
        t.shape.push_back(b.u64());
      t.layout = b.str();
      const auto np = b.count(4, 10);
      for (std::uint64_t k = 0; k < np; ++k) {
        Placement pl;
        pl.slice = b.u16();
        pl.addr = b.u32();
        pl.vectors = b.u32();
        t.placements.push_back(pl);
      }
      p.tensors.push_back(std::move(t));
    }
    if (!b.at_end()) b.fail("stray bytes in TENS section");
  }
  {
    In& b = body.at("IMAG");
    const auto n = b.count(4, 18);
    for (std::uint64_t i = 0; i < n; ++i) {
      src.images.push_back(b.offset());
      Image im;
      im.chip = b.u32();
      im.slice = b.u16();
      im.addr = b.u32();
      const auto nb = b.count(8, 1);
      const auto* d = b.take(static_cast<std::size_t>(nb));
      im.bytes.assign(d, d + nb);
      p.images.push_back(std::move(im));
    }
    if (!b.at_end()) b.fail("stray bytes in IMAG section");
  }
  validate(p, src);
  return p;
}

Program load_lpubin(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot read file");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  return from_lpubin(bytes, path);
}

void save_lpubin(const Program& p, const std::string& path) {
  const auto bytes = to_lpubin(p);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path, "cannot write file");
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw InputError(path, "write failed");
}

std::uint64_t content_hash(const Program& p) {
  // Every field in a fixed order, hashed in place: no copy of the program or of its binary form
  // (a system's program may hold tens of millions of instructions).
  std::uint64_t h = arch::fnv1a64(p.arch.canonical.data(), p.arch.canonical.size());
  auto mix = [&h](std::uint64_t v) { h = arch::fnv1a64(&v, sizeof v, h); };
  auto mix_str = [&](const std::string& s) {
    mix(s.size());
    h = arch::fnv1a64(s.data(), s.size(), h);
  };
  mix(p.predicted_cycles ? *p.predicted_cycles + 1 : 0);
  for (const auto& cp : p.chips) {
    mix(cp.chip);
    for (const auto& qp : cp.queues) {
      mix(qp.queue);
      mix(qp.entries.size());
      for (const auto& e : qp.entries) {
        mix(e.cycle);
        const Word w = encode(e.instr);
        h = arch::fnv1a64(w.data(), w.size(), h);
        mix(e.done ? *e.done + 1 : 0);
        mix(e.expect.size());
        for (const auto& r : e.expect) {
          mix((static_cast<std::uint64_t>(r.queue) << 32) | r.index);
          mix((static_cast<std::uint64_t>(static_cast<std::uint32_t>(r.mul)) << 32) |
              static_cast<std::uint32_t>(r.add));
          mix(r.div);
        }
      }
    }
  }
  for (const auto& t : p.tensors) {
    mix_str(t.name);
    mix(static_cast<std::uint64_t>(t.role));
    mix(t.chip);
    mix(static_cast<std::uint64_t>(t.dtype));
    mix(t.shape.size());
    for (auto d : t.shape)
      mix(d);
    mix_str(t.layout);
    mix(t.placements.size());
    for (const auto& pl : t.placements) {
      mix(pl.slice);
      mix(pl.addr);
      mix(pl.vectors);
    }
  }
  for (const auto& im : p.images) {
    const std::uint64_t where[3] = {im.chip, im.slice, im.addr};
    h = arch::fnv1a64(where, sizeof where, h);
    h = arch::fnv1a64(im.bytes.data(), im.bytes.size(), h);
  }
  return h;
}

}  // namespace lpu::isa
