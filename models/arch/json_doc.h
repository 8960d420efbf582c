// JSON input with source locations. Boost.JSON parses; a second pass over the same text records
// where every key (and every array element that is a scalar) stands, so that validation can name
// "file:line:col" for any key path it rejects.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <string>
#include <string_view>

#include "common/diagnostics.h"

namespace lpu::arch {

/// Key paths are dotted with array indices in brackets: "chip.mem.depth", "system.links[2].a".
using KeyPath = std::string;

/// Where each key path of a configuration came from. Later sources (an overriding file, a
/// `--set`) replace earlier ones; a path without its own entry reports its nearest ancestor's.
class Locations {
 public:
  void set(const KeyPath& path, Where where) { where_[path] = std::move(where); }
  /// Location of `path`, or of the closest ancestor that has one, or the document itself.
  Where at(const KeyPath& path) const;
  /// Drops every entry at or under `path` (used when a value is replaced whole).
  void erase_under(const KeyPath& path);
  void merge(const Locations& other);
  void set_document(Where where) { document_ = std::move(where); }

 private:
  std::map<KeyPath, Where> where_;
  Where document_;
};

struct JsonDoc {
  boost::json::value root;
  Locations locations;
};

/// Parses `text` (comments and trailing commas allowed) and records the location of every key.
/// Throws InputError with "file:line:col" on a syntax error.
JsonDoc parse_json_doc(std::string_view text, const std::string& file);

/// Reads and parses a file; an unreadable file is an InputError naming it.
JsonDoc load_json_file(const std::string& path);

/// Canonical text of a value: object keys sorted, no whitespace, integers as integers, doubles in
/// shortest round-trip form. Equal configurations give equal text, hence equal hashes.
std::string canonical_json(const boost::json::value& v);

/// Indented, key-sorted JSON for people.
std::string pretty_json(const boost::json::value& v, int indent = 2);

/// Joins a parent path and a key ("" + "chip" = "chip", "chip" + "mem" = "chip.mem").
inline KeyPath join(const KeyPath& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}
inline KeyPath index(const KeyPath& parent, std::size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

}  // namespace lpu::arch
