#include "arch/json_doc.h"

#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace lpu::arch {

namespace json = boost::json;

Where Locations::at(const KeyPath& path) const {
  KeyPath p = path;
  while (true) {
    if (auto it = where_.find(p); it != where_.end()) return it->second;
    const auto cut = p.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) break;
    p = p.substr(0, cut);
  }
  if (auto it = where_.find(p); it != where_.end()) return it->second;
  return document_;
}

void Locations::erase_under(const KeyPath& path) {
  for (auto it = where_.begin(); it != where_.end();) {
    const auto& k = it->first;
    const bool under =
        k == path || (k.size() > path.size() && k.compare(0, path.size(), path) == 0 &&
                      (k[path.size()] == '.' || k[path.size()] == '['));
    it = under ? where_.erase(it) : std::next(it);
  }
}

void Locations::merge(const Locations& other) {
  for (const auto& [k, v] : other.where_)
    where_[k] = v;
}

namespace {

// Handler for boost::json::basic_parser that only tracks the key path of each token and records
// the offset of keys and scalar array elements. String views handed to the callbacks point into
// the input buffer whenever the token did not need unescaping, which is what makes this work.
class LocationHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  LocationHandler(const char* base, std::size_t size, const LineIndex& lines, std::string file,
                  Locations& out)
      : base_(base), size_(size), lines_(lines), file_(std::move(file)), out_(out) {}

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) {
    enter_value();
    stack_.push_back({true, 0, current_});
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) { return leave(); }
  bool on_object_begin(json::error_code&) {
    enter_value();
    stack_.push_back({false, 0, current_});
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) { return leave(); }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    note_scalar(s.data());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    scalar(s.data());
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (key_.empty() && !key_start_) key_start_ = s.data();
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    if (!key_start_) key_start_ = s.data();
    key_.append(s.data(), s.size());
    current_key_ = key_;
    const char* at = key_start_;
    key_.clear();
    key_start_ = nullptr;
    const KeyPath path = join(stack_.back().path, current_key_);
    if (in_input(at)) out_.set(path, lines_.where(file_, static_cast<std::size_t>(at - base_ - 1)));
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    note_scalar(s.data());
    return true;
  }
  bool on_int64(std::int64_t, json::string_view s, json::error_code&) {
    scalar(s.data());
    return true;
  }
  bool on_uint64(std::uint64_t, json::string_view s, json::error_code&) {
    scalar(s.data());
    return true;
  }
  bool on_double(double, json::string_view s, json::error_code&) {
    scalar(s.data());
    return true;
  }
  bool on_bool(bool, json::error_code&) {
    scalar(nullptr);
    return true;
  }
  bool on_null(json::error_code&) {
    scalar(nullptr);
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool array;
    std::size_t next;
    KeyPath path;
  };

  bool in_input(const char* p) const { return p && p > base_ && p <= base_ + size_; }

  // Called when a value starts: works out its key path.
  void enter_value() {
    if (stack_.empty()) {
      current_.clear();
    } else if (stack_.back().array) {
      current_ = index(stack_.back().path, stack_.back().next++);
    } else {
      current_ = join(stack_.back().path, current_key_);
    }
  }
  bool leave() {
    stack_.pop_back();
    return true;
  }
  void note_scalar(const char* at) {
    if (!pending_) pending_ = at ? at : base_;
  }
  void scalar(const char* at) {
    const char* first = pending_ ? pending_ : at;
    pending_ = nullptr;
    enter_value();
    if (!stack_.empty() && stack_.back().array && first) {
      // Strings start one character after their opening quote.
      const char* p = first;
      if (p > base_ && p[-1] == '"') --p;
      if (p >= base_ && p <= base_ + size_)
        out_.set(current_, lines_.where(file_, static_cast<std::size_t>(p - base_)));
    }
  }

  const char* base_;
  std::size_t size_;
  const LineIndex& lines_;
  std::string file_;
  Locations& out_;
  std::vector<Frame> stack_;
  KeyPath current_;
  std::string current_key_;
  std::string key_;
  const char* key_start_ = nullptr;
  const char* pending_ = nullptr;
};

json::parse_options lenient() {
  json::parse_options opt;
  opt.allow_comments = true;
  opt.allow_trailing_commas = true;
  return opt;
}

}  // namespace

JsonDoc parse_json_doc(std::string_view text, const std::string& file) {
  const LineIndex lines(text);
  JsonDoc doc;
  doc.locations.set_document(file);

  // The location pass runs first: it finds syntax errors and where they are.
  json::basic_parser<LocationHandler> locator(lenient(), text.data(), text.size(), lines, file,
                                              doc.locations);
  json::error_code ec;
  const std::size_t used = locator.write_some(false, text.data(), text.size(), ec);
  if (ec) {
    throw InputError(lines.where(file, used), "invalid JSON: " + ec.message());
  }
  doc.root =
      json::parse(json::string_view(text.data(), text.size()), ec, json::storage_ptr(), lenient());
  if (ec) throw InputError(file, "invalid JSON: " + ec.message());
  return doc;
}

JsonDoc load_json_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(path, "cannot read file: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot read file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_doc(ss.str(), path);
}

namespace {

std::string number_text(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  const double d = v.as_double();
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
    // Keep integral doubles recognisably real so that the type survives a round trip.
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", d);
    return buf;
  }
  char buf[32];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

void write(std::string& out, const json::value& v, int indent, int depth) {
  const auto newline = [&](int d) {
    if (indent <= 0) return;
    out += '\n';
    out.append(static_cast<std::size_t>(d * indent), ' ');
  };
  switch (v.kind()) {
    case json::kind::object: {
      const auto& o = v.get_object();
      std::vector<const json::key_value_pair*> items;
      for (const auto& kv : o)
        items.push_back(&kv);
      std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
      out += '{';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        out += json::serialize(json::string_view(items[i]->key()));
        out += indent > 0 ? ": " : ":";
        write(out, items[i]->value(), indent, depth + 1);
      }
      if (!items.empty()) newline(depth);
      out += '}';
      break;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      // Short arrays of scalars stay on one line in the indented form.
      bool flat = a.size() <= 16;
      for (const auto& e : a)
        flat = flat && !e.is_structured();
      out += '[';
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out += indent > 0 && flat ? ", " : ",";
        if (!flat) newline(depth + 1);
        write(out, a[i], indent, depth + 1);
      }
      if (!flat && !a.empty()) newline(depth);
      out += ']';
      break;
    }
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      out += number_text(v);
      break;
    default:
      out += json::serialize(v);
  }
}

}  // namespace

std::string canonical_json(const json::value& v) {
  std::string out;
  write(out, v, 0, 0);
  return out;
}

std::string pretty_json(const json::value& v, int indent) {
  std::string out;
  write(out, v, indent, 0);
  return out;
}

}  // namespace lpu::arch
