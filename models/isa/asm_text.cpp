#include "isa/asm_text.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

namespace lpu::isa {

namespace {

constexpr int kFormatVersion = 1;

struct Token {
  std::string_view text;
  int col = 0;  // 1-based
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s, int& col) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
    ++col;
  }
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

// Where a ';' comment starts, ignoring ';' inside double-quoted JSON strings (a .set value).
std::size_t comment_start(std::string_view line) {
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (quoted && line[i] == '\\') {
      ++i;
    } else if (line[i] == '"') {
      quoted = !quoted;
    } else if (line[i] == ';' && !quoted) {
      return i;
    }
  }
  return line.size();
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Source positions of one instruction's parts, for messages.
struct InstrPos {
  int line = 0;
  int cycle_col = 0, mnemonic_col = 0, done_col = 0, expect_col = 0;
  std::vector<int> operand_cols;
};

class TextSourceMap : public SourceMap {
 public:
  explicit TextSourceMap(std::string file) : file_(std::move(file)) {}
  std::map<std::tuple<std::uint32_t, std::uint16_t, std::size_t>, InstrPos> instr;
  std::vector<std::pair<int, int>> tensors, images;  // line, col

  Where at(int line, int col) const {
    return file_ + ":" + std::to_string(line) + ":" + std::to_string(col);
  }
  Where instruction(std::uint32_t chip, std::uint16_t queue, std::size_t index,
                    int operand) const override {
    auto it = instr.find({chip, queue, index});
    if (it == instr.end()) return file_;
    const InstrPos& p = it->second;
    int col = p.mnemonic_col;
    if (operand >= 0 && static_cast<std::size_t>(operand) < p.operand_cols.size())
      col = p.operand_cols[static_cast<std::size_t>(operand)];
    if (operand == -2) col = p.cycle_col;
    if (operand == -3 && p.done_col) col = p.done_col;
    if (operand == -4 && p.expect_col) col = p.expect_col;
    return at(p.line, col);
  }
  Where tensor(std::size_t i) const override { return at(tensors[i].first, tensors[i].second); }
  Where image(std::size_t i) const override { return at(images[i].first, images[i].second); }

 private:
  std::string file_;
};

class Parser {
 public:
  Parser(std::string_view text, std::string file)
      : text_(text), file_(std::move(file)), src_(file_) {}

  Program run();

 private:
  [[noreturn]] void fail(int col, const std::string& m) const {
    throw InputError(src_.at(line_, col), m);
  }

  // Numbers: decimal or 0x hex.
  std::uint64_t number(Token t, const char* what, std::uint64_t max = UINT64_MAX) const {
    std::string_view s = t.text;
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      s.remove_prefix(2);
      base = 16;
    }
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (s.empty() || ec == std::errc::invalid_argument || ptr != s.data() + s.size())
      fail(t.col,
           std::string("expected ") + what + " (a number), got '" + std::string(t.text) + "'");
    if (ec == std::errc::result_out_of_range || v > max)
      fail(t.col, std::string(what) + " " + std::string(t.text) + " is too large (at most " +
                      std::to_string(max) + ")");
    return v;
  }

  // The repetition relation after '@' in an expected producer: "K", "r", "r+K", "r-K", "Mr+K",
  // "-r", each optionally followed by "/D" (docs/program-format.md).
  void step_relation(std::string_view s, int col, InstrRef* r) const {
    const std::string text(s);
    auto bad = [&]() {
      fail(col, "repetition relation '@" + text +
                    "' must look like @r, @r+2, @2r-1, @r/4 or @5 (producer repetition in terms "
                    "of this instruction's repetition r)");
    };
    std::size_t i = 0;
    auto integer = [&](std::int64_t* v) {
      const bool neg = i < s.size() && s[i] == '-';
      const bool sign = neg || (i < s.size() && s[i] == '+');
      const std::size_t from = i + (sign ? 1 : 0);
      std::size_t j = from;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9')
        ++j;
      if (j == from) return false;
      if (j - from > 9) fail(col, "repetition relation '@" + text + "': number too large");
      *v = std::stoll(std::string(s.substr(from, j - from))) * (neg ? -1 : 1);
      i = j;
      return true;
    };
    std::int64_t mul = 0, add = 0, div = 1, v = 0;
    const std::size_t r_at = s.find('r');
    if (r_at == std::string_view::npos) {
      if (!integer(&add)) bad();
    } else {
      if (r_at == 0) {
        mul = 1;
      } else if (r_at == 1 && (s[0] == '-' || s[0] == '+')) {
        mul = s[0] == '-' ? -1 : 1;
      } else {
        if (!integer(&mul) || i != r_at) bad();
      }
      i = r_at + 1;
      if (i < s.size() && (s[i] == '+' || s[i] == '-') && !integer(&add)) bad();
    }
    if (i < s.size() && s[i] == '/') {
      ++i;
      if (!integer(&v) || v < 1 || v > 65535) bad();
      div = v;
    }
    if (i != s.size()) bad();
    r->mul = static_cast<std::int32_t>(mul);
    r->add = static_cast<std::int32_t>(add);
    r->div = static_cast<std::uint16_t>(div);
  }

  std::vector<Token> split_words(std::string_view s, int col) const {
    std::vector<Token> out;
    std::size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_space(s[i]))
        ++i;
      if (i >= s.size()) break;
      std::size_t j = i;
      while (j < s.size() && !is_space(s[j]))
        ++j;
      out.push_back({s.substr(i, j - i), col + static_cast<int>(i)});
      i = j;
    }
    return out;
  }

  // key=value words after a directive.
  std::map<std::string, Token> keyvals(const std::vector<Token>& words, std::size_t from,
                                       const std::vector<std::string>& allowed,
                                       const char* directive) const {
    std::map<std::string, Token> kv;
    for (std::size_t i = from; i < words.size(); ++i) {
      const auto eq = words[i].text.find('=');
      if (eq == std::string_view::npos || eq == 0)
        fail(words[i].col, std::string("expected key=value after ") + directive + ", got '" +
                               std::string(words[i].text) + "'");
      const std::string key = lower(words[i].text.substr(0, eq));
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string m = std::string("unknown key '") + key + "' for " + directive;
        const auto hint = did_you_mean(key, allowed);
        fail(words[i].col, m + (hint.empty() ? "" : "; " + hint));
      }
      if (kv.count(key)) fail(words[i].col, "key '" + key + "' given twice");
      kv[key] = {words[i].text.substr(eq + 1), words[i].col + static_cast<int>(eq) + 1};
    }
    return kv;
  }
  Token need(const std::map<std::string, Token>& kv, const std::string& key, int col,
             const char* directive) const {
    auto it = kv.find(key);
    if (it == kv.end()) fail(col, std::string(directive) + " needs " + key + "=...");
    return it->second;
  }

  std::uint16_t mem_slice(Token t) const {
    const auto q = arch::find_queue(queues_, std::string(t.text));
    if (!q || q->unit != arch::QueueUnit::kMem) {
      std::vector<std::string> names;
      for (const auto& x : queues_)
        if (x.unit == arch::QueueUnit::kMem) names.push_back(x.name);
      const auto hint = did_you_mean(t.text, names);
      fail(t.col, "'" + std::string(t.text) + "' is not a MEM slice of this chip" +
                      (hint.empty() ? "" : "; " + hint));
    }
    return q->id;
  }
  std::uint32_t chip_number(Token t) const {
    const auto c = number(t, "chip number", UINT32_MAX);
    if (c >= static_cast<std::uint64_t>(program_.arch.system.chips))
      fail(t.col, "chip " + std::to_string(c) + " does not exist: the system has " +
                      std::to_string(program_.arch.system.chips) + " chip(s)");
    return static_cast<std::uint32_t>(c);
  }

  void need_arch(int col) const {
    if (!have_arch_) fail(col, "'.arch' must come before this line");
  }
  void resolve_arch();
  void directive(std::string_view line, int col);
  void instruction(std::string_view line, int col);
  void image_row(std::string_view line, int col);
  std::uint32_t operand(const OperandDef& def, Token t) const;

  std::string_view text_;
  std::string file_;
  TextSourceMap src_;
  Program program_;
  int line_ = 0;

  bool have_version_ = false;
  bool have_arch_ = false;
  bool arch_resolved_ = false;
  std::string arch_name_;
  int arch_line_ = 0, arch_col_ = 0;
  std::vector<arch::Setting> sets_;
  std::vector<arch::Queue> queues_;

  std::optional<std::uint32_t> chip_;
  std::optional<std::uint16_t> queue_;
  std::map<std::uint32_t, std::map<std::uint16_t, std::vector<Entry>>> code_;
  std::optional<std::size_t> image_;  // index of the image being read
};

void Parser::resolve_arch() {
  if (arch_resolved_) return;
  try {
    program_.arch = arch::load(arch_name_, sets_, file_);
  } catch (const InputError& e) {
    // Problems with the named description keep their own location; a bad .set is already
    // located at its line. Anything without a location belongs to the .arch line.
    if (e.where().empty() || e.where() == file_)
      throw InputError(src_.at(arch_line_, arch_col_), e.message());
    throw;
  }
  queues_ = arch::chip_queues(program_.arch.chip);
  arch_resolved_ = true;
}

void Parser::directive(std::string_view s, int col) {
  const auto words = split_words(s, col);
  const std::string name = lower(words[0].text);
  static const std::vector<std::string> known = {".lpuasm",    ".arch",   ".set",
                                                 ".predicted", ".tensor", ".image",
                                                 ".endimage",  ".chip",   ".queue"};
  if (name != ".lpuasm" && !have_version_)
    fail(col, "the first directive must be '.lpuasm " + std::to_string(kFormatVersion) + "'");
  if (name == ".lpuasm") {
    if (have_version_) fail(col, "'.lpuasm' given twice");
    if (words.size() != 2) fail(col, "expected '.lpuasm " + std::to_string(kFormatVersion) + "'");
    const auto v = number(words[1], "format version");
    if (v != static_cast<std::uint64_t>(kFormatVersion))
      fail(words[1].col, "format version " + std::to_string(v) +
                             " is not supported (this build reads " +
                             std::to_string(kFormatVersion) + ")");
    have_version_ = true;
    return;
  }
  if (name == ".arch") {
    if (have_arch_) fail(col, "'.arch' given twice");
    if (words.size() != 2) fail(col, "expected '.arch NAME' (a preset) or '.arch FILE.json'");
    std::string_view n = words[1].text;
    if (n.size() >= 2 && n.front() == '"' && n.back() == '"') n = n.substr(1, n.size() - 2);
    arch_name_ = std::string(n);
    arch_line_ = line_;
    arch_col_ = words[1].col;
    have_arch_ = true;
    return;
  }
  if (name == ".set") {
    need_arch(col);
    if (arch_resolved_) fail(col, "'.set' must come before the first tensor, image, chip or queue");
    const std::string_view rest = trim(s.substr(words[0].text.size()), col);
    if (rest.empty()) fail(col, "expected '.set PATH=VALUE'");
    int vcol = words.size() > 1 ? words[1].col : col;
    sets_.push_back({std::string(rest), src_.at(line_, vcol)});
    return;
  }
  need_arch(col);
  if (name == ".predicted") {
    if (words.size() != 2) fail(col, "expected '.predicted CYCLES'");
    if (program_.predicted_cycles) fail(col, "'.predicted' given twice");
    program_.predicted_cycles = number(words[1], "cycle count");
    return;
  }
  resolve_arch();
  if (name == ".tensor") {
    if (words.size() < 2 || words[1].text.find('=') != std::string_view::npos)
      fail(col,
           "expected '.tensor NAME role=... chip=... dtype=... shape=[...] layout=... at=...'");
    Tensor t;
    t.name = std::string(words[1].text);
    const auto kv =
        keyvals(words, 2, {"role", "chip", "dtype", "shape", "layout", "at"}, ".tensor");
    const Token role = need(kv, "role", col, ".tensor");
    const auto r = parse_role(lower(role.text));
    if (!r)
      fail(role.col,
           "role must be input, output, constant or scratch; got '" + std::string(role.text) + "'");
    t.role = *r;
    t.chip = chip_number(need(kv, "chip", col, ".tensor"));
    const Token dt = need(kv, "dtype", col, ".tensor");
    const auto d = parse_dtype(lower(dt.text));
    if (!d)
      fail(dt.col, "unknown dtype '" + std::string(dt.text) + "' (i8, i16, i32, fp16, bf16, fp32)");
    t.dtype = *d;
    const Token sh = need(kv, "shape", col, ".tensor");
    if (sh.text.size() < 2 || sh.text.front() != '[' || sh.text.back() != ']')
      fail(sh.col, "shape must look like [16,320] (or [] for a scalar)");
    {
      std::string_view inner = sh.text.substr(1, sh.text.size() - 2);
      int c = sh.col + 1;
      while (!inner.empty()) {
        const auto comma = inner.find(',');
        const std::string_view part = inner.substr(0, comma);
        t.shape.push_back(number({part, c}, "dimension"));
        if (comma == std::string_view::npos) break;
        inner.remove_prefix(comma + 1);
        c += static_cast<int>(comma) + 1;
      }
    }
    t.layout = std::string(need(kv, "layout", col, ".tensor").text);
    if (auto it = kv.find("at"); it != kv.end()) {
      std::string_view at = it->second.text;
      int c = it->second.col;
      while (!at.empty()) {
        const auto comma = at.find(',');
        const std::string_view part = at.substr(0, comma);
        const auto colon = part.find(':');
        const auto plus = part.find('+');
        if (colon == std::string_view::npos || plus == std::string_view::npos || plus < colon)
          fail(c, "placement must look like mem.w0:0x0000+16 (slice:address+vectors)");
        Placement pl;
        pl.slice = mem_slice({part.substr(0, colon), c});
        pl.addr = static_cast<std::uint32_t>(
            number({part.substr(colon + 1, plus - colon - 1), c + static_cast<int>(colon) + 1},
                   "address", UINT32_MAX));
        pl.vectors = static_cast<std::uint32_t>(number(
            {part.substr(plus + 1), c + static_cast<int>(plus) + 1}, "vector count", UINT32_MAX));
        t.placements.push_back(pl);
        if (comma == std::string_view::npos) break;
        at.remove_prefix(comma + 1);
        c += static_cast<int>(comma) + 1;
      }
    }
    src_.tensors.emplace_back(line_, words[1].col);
    program_.tensors.push_back(std::move(t));
    return;
  }
  if (name == ".image") {
    if (image_) fail(col, "'.image' inside an image; end the previous one with '.endimage'");
    const auto kv = keyvals(words, 1, {"chip", "slice", "addr"}, ".image");
    Image im;
    im.chip = chip_number(need(kv, "chip", col, ".image"));
    im.slice = mem_slice(need(kv, "slice", col, ".image"));
    im.addr =
        static_cast<std::uint32_t>(number(need(kv, "addr", col, ".image"), "address", UINT32_MAX));
    src_.images.emplace_back(line_, col);
    program_.images.push_back(std::move(im));
    image_ = program_.images.size() - 1;
    return;
  }
  if (name == ".endimage") {
    if (!image_) fail(col, "'.endimage' without '.image'");
    if (program_.images[*image_].bytes.empty()) fail(col, "empty image");
    image_.reset();
    return;
  }
  if (name == ".chip") {
    if (words.size() != 2) fail(col, "expected '.chip N'");
    chip_ = chip_number(words[1]);
    queue_.reset();
    return;
  }
  if (name == ".queue") {
    if (words.size() != 2) fail(col, "expected '.queue NAME', e.g. '.queue mem.w0'");
    if (!chip_) chip_ = 0;
    const auto q = arch::find_queue(queues_, lower(words[1].text));
    if (!q) {
      std::vector<std::string> names;
      for (const auto& x : queues_)
        names.push_back(x.name);
      const auto hint = did_you_mean(lower(words[1].text), names);
      fail(words[1].col, "no queue named '" + std::string(words[1].text) + "' on this chip" +
                             (hint.empty() ? "" : "; " + hint));
    }
    queue_ = q->id;
    return;
  }
  const auto hint = did_you_mean(name, known);
  fail(col, "unknown directive '" + std::string(words[0].text) + "'" +
                (hint.empty() ? "" : "; " + hint));
}

void Parser::image_row(std::string_view s, int col) {
  Image& im = program_.images[*image_];
  const auto vb = static_cast<std::size_t>(program_.arch.chip.vector_bytes());
  if (s.size() != 2 * vb)
    fail(col, "an image row is one vector: " + std::to_string(2 * vb) +
                  " hex digits, this one has " + std::to_string(s.size()));
  for (std::size_t i = 0; i < s.size(); i += 2) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data() + i, s.data() + i + 2, v, 16);
    if (ec != std::errc() || p != s.data() + i + 2)
      fail(col + static_cast<int>(i), "bad hex digit in image row");
    im.bytes.push_back(static_cast<std::uint8_t>(v));
  }
}

std::uint32_t Parser::operand(const OperandDef& def, Token t) const {
  const std::string text = lower(t.text);
  if (def.kind == OperandKind::kStream) {
    const bool ok = text.size() >= 3 && text[0] == 's' &&
                    (text.back() == 'e' || text.back() == 'w') &&
                    std::all_of(text.begin() + 1, text.end() - 1,
                                [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (!ok)
      fail(t.col, std::string("operand '") + def.name +
                      "' is a stream, written like s3e (eastward) or s3w; got '" +
                      std::string(t.text) + "'");
    const auto id = number({std::string_view(t.text).substr(1, t.text.size() - 2), t.col + 1},
                           "stream id", 127);
    return stream_arg(static_cast<int>(id), text.back() == 'w');
  }
  const std::uint64_t max =
      operand_bytes(def.kind) >= 4 ? UINT32_MAX : (1ull << (8 * operand_bytes(def.kind))) - 1;
  return static_cast<std::uint32_t>(
      number(t, (std::string("operand '") + def.name + "'").c_str(), max));
}

void Parser::instruction(std::string_view s, int col) {
  if (!queue_) fail(col, "an instruction needs a '.queue' first");
  InstrPos pos;
  pos.line = line_;
  pos.cycle_col = col;
  // "@CYCLE"
  std::size_t i = 1;
  while (i < s.size() && !is_space(s[i]))
    ++i;
  const std::uint64_t cycle = number({s.substr(1, i - 1), col + 1}, "dispatch cycle");
  std::string_view rest = s.substr(i);
  int rcol = col + static_cast<int>(i);
  rest = trim(rest, rcol);
  if (rest.empty()) fail(col, "expected an instruction after the cycle");

  // Annotations in [ ... ] at the end.
  std::string_view notes;
  int ncol = 0;
  if (const auto lb = rest.find('['); lb != std::string_view::npos) {
    if (rest.back() != ']')
      fail(rcol + static_cast<int>(lb), "unclosed '[' (annotations end with ']')");
    notes = rest.substr(lb + 1, rest.size() - lb - 2);
    ncol = rcol + static_cast<int>(lb) + 1;
    rest = rest.substr(0, lb);
    int dummy = rcol;
    rest = trim(rest, dummy);
  }

  // Mnemonic with modifiers.
  std::size_t m = 0;
  while (m < rest.size() && !is_space(rest[m]))
    ++m;
  const std::string word = lower(rest.substr(0, m));
  pos.mnemonic_col = rcol;
  const OpInfo* op = nullptr;
  std::size_t mods_from = word.size();
  for (std::size_t cut = word.size();; cut = word.rfind('.', cut - 1)) {
    if (auto* o = by_mnemonic(word.substr(0, cut))) {
      op = o;
      mods_from = cut;
      break;
    }
    if (cut == 0 || word.rfind('.', cut - 1) == std::string::npos) break;
  }
  if (!op) {
    const std::string base = word.substr(0, word.find('.'));
    const auto hint = did_you_mean(base, mnemonics());
    fail(rcol, "unknown instruction '" + word + "'" + (hint.empty() ? "" : "; " + hint));
  }
  Instr in;
  in.opcode = op->opcode;
  {
    std::vector<std::string> parts;
    std::string mods = word.substr(mods_from);
    for (std::size_t p = 0; p < mods.size();) {
      if (mods[p] != '.') break;
      const auto next = mods.find('.', p + 1);
      parts.push_back(
          mods.substr(p + 1, next == std::string::npos ? std::string::npos : next - p - 1));
      p = next == std::string::npos ? mods.size() : next;
    }
    std::size_t used = 0;
    for (int slot = 0; slot < 2; ++slot) {
      const ModKind k = op->mods[static_cast<std::size_t>(slot)];
      if (k == ModKind::kNone) continue;
      const auto& names = mod_names(k);
      if (used >= parts.size()) {
        if (k == ModKind::kOvf) continue;  // check() says when an integer op lacks it
        std::string list;
        for (const auto& n : names)
          if (!n.empty()) list += (list.empty() ? "" : ", ") + n;
        fail(rcol, std::string("'") + op->mnemonic + "' needs a " + to_string(k) + " modifier (" +
                       list + ")");
      }
      auto it = std::find(names.begin(), names.end(), parts[used]);
      if (it == names.end() || parts[used].empty()) {
        std::vector<std::string> valid;
        for (const auto& n : names)
          if (!n.empty()) valid.push_back(n);
        std::string list;
        for (const auto& n : valid)
          list += (list.empty() ? "" : ", ") + n;
        fail(rcol, "'." + parts[used] + "' is not a " + to_string(k) + " for '" + op->mnemonic +
                       "' (expected " + list + ")");
      }
      in.mod[static_cast<std::size_t>(slot)] = static_cast<std::uint8_t>(it - names.begin());
      ++used;
    }
    if (used < parts.size())
      fail(rcol, "'" + word + "': too many modifiers ('." + parts[used] + "' is extra)");
  }

  // Operands.
  std::string_view ops = rest.substr(m);
  int ocol = rcol + static_cast<int>(m);
  ops = trim(ops, ocol);
  std::vector<Token> toks;
  while (!ops.empty()) {
    const auto comma = ops.find(',');
    std::string_view part = ops.substr(0, comma);
    int pcol = ocol;
    part = trim(part, pcol);
    if (part.empty()) fail(pcol, "empty operand");
    toks.push_back({part, pcol});
    if (comma == std::string_view::npos) break;
    ops.remove_prefix(comma + 1);
    ocol += static_cast<int>(comma) + 1;
    int after = ocol;
    if (trim(ops, after).empty()) fail(ocol, "operand missing after ','");
  }
  if (toks.size() != op->operands.size()) {
    std::string sig;
    for (const auto& d : op->operands)
      sig += (sig.empty() ? " " : ", ") + std::string(d.name);
    fail(toks.size() > op->operands.size() ? toks[op->operands.size()].col : rcol,
         std::string("'") + op->mnemonic + "' takes " + std::to_string(op->operands.size()) +
             " operand(s):" + (sig.empty() ? " none" : sig) + "; got " +
             std::to_string(toks.size()));
  }
  for (std::size_t k = 0; k < toks.size(); ++k) {
    in.arg[k] = operand(op->operands[k], toks[k]);
    pos.operand_cols.push_back(toks[k].col);
  }

  Entry e;
  e.cycle = cycle;
  e.instr = in;
  for (const auto& w : split_words(notes, ncol)) {
    const auto eq = w.text.find('=');
    const std::string key = lower(w.text.substr(0, eq));
    if (eq == std::string_view::npos)
      fail(w.col, "annotation must be done=CYCLE or expect=QUEUE#N,...");
    const Token val{w.text.substr(eq + 1), w.col + static_cast<int>(eq) + 1};
    if (key == "done") {
      if (e.done) fail(w.col, "'done' given twice");
      e.done = number(val, "completion cycle");
      pos.done_col = w.col;
    } else if (key == "expect") {
      if (!e.expect.empty()) fail(w.col, "'expect' given twice");
      pos.expect_col = w.col;
      std::string_view list = val.text;
      int c = val.col;
      while (!list.empty()) {
        const auto comma = list.find(',');
        const std::string_view ref = list.substr(0, comma);
        const auto hash = ref.find('#');
        if (hash == std::string_view::npos)
          fail(c, "expected producer must look like mem.w0#3 (queue#index)");
        const auto q = arch::find_queue(queues_, lower(ref.substr(0, hash)));
        if (!q) fail(c, "no queue named '" + std::string(ref.substr(0, hash)) + "' on this chip");
        InstrRef r;
        r.queue = q->id;
        const auto at = ref.find('@', hash);
        r.index = static_cast<std::uint32_t>(
            number({ref.substr(hash + 1, at == std::string_view::npos ? at : at - hash - 1),
                    c + static_cast<int>(hash) + 1},
                   "instruction index", UINT32_MAX));
        if (at != std::string_view::npos)
          step_relation(ref.substr(at + 1), c + static_cast<int>(at) + 1, &r);
        e.expect.push_back(r);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
        c += static_cast<int>(comma) + 1;
      }
      if (e.expect.empty()) fail(w.col, "'expect' needs at least one producer");
    } else {
      fail(w.col, "unknown annotation '" + key + "' (done, expect)");
    }
  }
  auto& list = code_[*chip_][*queue_];
  src_.instr[{*chip_, *queue_, list.size()}] = pos;
  list.push_back(std::move(e));
}

Program Parser::run() {
  std::size_t start = 0;
  while (start <= text_.size()) {
    ++line_;
    auto end = text_.find('\n', start);
    if (end == std::string_view::npos) end = text_.size();
    std::string_view line = text_.substr(start, end - start);
    start = end + 1;
    line = line.substr(0, comment_start(line));
    int col = 1;
    line = trim(line, col);
    if (!line.empty()) {
      if (image_ && line[0] != '.') {
        image_row(line, col);
      } else if (line[0] == '.') {
        directive(line, col);
      } else if (line[0] == '@') {
        if (!have_version_)
          fail(col, "the first directive must be '.lpuasm " + std::to_string(kFormatVersion) + "'");
        need_arch(col);
        resolve_arch();
        if (image_) fail(col, "instruction inside an image; end it with '.endimage'");
        instruction(line, col);
      } else {
        fail(col,
             "expected a directive (.queue, .chip, ...) or an instruction (@CYCLE mnemonic "
             "operands)");
      }
    }
    if (end == text_.size()) break;
  }
  if (!have_version_)
    throw InputError(file_,
                     "empty program: expected '.lpuasm " + std::to_string(kFormatVersion) + "'");
  if (!have_arch_) throw InputError(file_, "missing '.arch NAME'");
  if (image_)
    throw InputError(src_.images[*image_].first ? src_.at(src_.images[*image_].first, 1) : file_,
                     "image not closed with '.endimage'");
  resolve_arch();
  for (auto& [chip, queues] : code_) {
    ChipProgram cp;
    cp.chip = chip;
    for (auto& [q, entries] : queues)
      cp.queues.push_back({q, std::move(entries)});
    program_.chips.push_back(std::move(cp));
  }
  validate(program_, src_);
  return std::move(program_);
}

std::string hex_row(const std::uint8_t* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

}  // namespace

Program parse_lpuasm(std::string_view text, const std::string& file) {
  return Parser(text, file).run();
}

Program load_lpuasm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot read file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_lpuasm(ss.str(), path);
}

std::string to_lpuasm(const Program& p) {
  std::ostringstream o;
  const auto queues = arch::chip_queues(p.arch.chip);
  const auto [preset, sets] = arch::nearest_preset(p.arch);
  o << "; LPU program (canonical text form). Architecture " << p.arch.name << ", hash "
    << p.arch.hash_hex() << ".\n";
  o << ".lpuasm " << kFormatVersion << "\n";
  o << ".arch " << preset << "\n";
  for (const auto& s : sets)
    o << ".set " << s << "\n";
  if (p.predicted_cycles) o << ".predicted " << *p.predicted_cycles << "\n";
  char buf[64];
  for (const auto& t : p.tensors) {
    o << "\n.tensor " << t.name << " role=" << to_string(t.role) << " chip=" << t.chip
      << " dtype=" << to_string(t.dtype) << " shape=[";
    for (std::size_t i = 0; i < t.shape.size(); ++i)
      o << (i ? "," : "") << t.shape[i];
    o << "] layout=" << t.layout;
    if (!t.placements.empty()) {
      o << " at=";
      for (std::size_t i = 0; i < t.placements.size(); ++i) {
        const auto& pl = t.placements[i];
        std::snprintf(buf, sizeof buf, "0x%04x", pl.addr);
        o << (i ? "," : "") << queues[pl.slice].name << ":" << buf << "+" << pl.vectors;
      }
    }
  }
  if (!p.tensors.empty()) o << "\n";
  const auto vb = static_cast<std::size_t>(p.arch.chip.vector_bytes());
  for (const auto& im : p.images) {
    std::snprintf(buf, sizeof buf, "0x%04x", im.addr);
    o << "\n.image chip=" << im.chip << " slice=" << queues[im.slice].name << " addr=" << buf
      << "\n";
    for (std::size_t at = 0; at < im.bytes.size(); at += vb)
      o << "  " << hex_row(im.bytes.data() + at, vb) << "\n";
    o << ".endimage\n";
  }
  for (const auto& c : p.chips) {
    o << "\n.chip " << c.chip << "\n";
    for (const auto& q : c.queues) {
      o << "\n.queue " << queues[q.queue].name << "\n";
      for (const auto& e : q.entries) {
        std::string line = "  @" + std::to_string(e.cycle);
        line.resize(std::max<std::size_t>(line.size() + 1, 10), ' ');
        line += format(e.instr);
        if (e.done || !e.expect.empty()) {
          line += "  [";
          if (e.done) line += "done=" + std::to_string(*e.done);
          if (!e.expect.empty()) {
            line += e.done ? " expect=" : "expect=";
            for (std::size_t i = 0; i < e.expect.size(); ++i)
              line += (i ? "," : "") + queues[e.expect[i].queue].name + "#" +
                      std::to_string(e.expect[i].index) + step_text(e.expect[i]);
          }
          line += "]";
        }
        o << line << "\n";
      }
    }
  }
  return o.str();
}

}  // namespace lpu::isa
