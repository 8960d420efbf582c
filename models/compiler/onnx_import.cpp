#include "compiler/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "common/diagnostics.h"

namespace lpu::compiler {

namespace {

using onnx::AttributeProto;
using onnx::TensorProto;

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string q(const std::string& s) {
  return "'" + s + "'";
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string type_text(const Value& v) {
  const char* t = isa::to_string(v.dtype);
  return (*t ? std::string(t) : std::string("int64/bool")) + " " + shape_text(v.shape);
}

// ONNX's own spelling ("uint8", "float16"), so a message matches what the user sees in Netron.
std::string onnx_type_name(int t) {
  std::string name;
  if (TensorProto::DataType_IsValid(t)) name = TensorProto::DataType_Name(t);
  return name.empty() ? "type code " + std::to_string(t) : lower(name);
}

// How an ONNX element type is held: a machine dtype, or (int64/bool) int64 data on kNone.
struct ElemType {
  isa::DType dtype = isa::DType::kNone;
  int ints_bytes = 0;  ///< bytes per raw element of an int64/bool value; 0 for machine dtypes
};

ElemType elem_type(int t, const std::string& tensor, const Where& where) {
  switch (t) {
    case TensorProto::FLOAT:
      return {isa::DType::kFp32, 0};
    case TensorProto::FLOAT16:
      return {isa::DType::kFp16, 0};
    case TensorProto::BFLOAT16:
      return {isa::DType::kBf16, 0};
    case TensorProto::INT8:
      return {isa::DType::kI8, 0};
    case TensorProto::INT16:
      return {isa::DType::kI16, 0};
    case TensorProto::INT32:
      return {isa::DType::kI32, 0};
    case TensorProto::INT64:
      return {isa::DType::kNone, 8};
    case TensorProto::BOOL:
      return {isa::DType::kNone, 1};
    default:
      throw InputError(where, onnx_type_name(t) + " is not supported (tensor " + q(tensor) +
                                  "); supported: float, float16, bfloat16, int8, int16, int32, "
                                  "and int64/bool for compile-time constants");
  }
}

void put_le(std::vector<std::uint8_t>& out, std::uint64_t v, int bytes) {
  for (int k = 0; k < bytes; ++k)
    out.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
}

std::uint64_t get_le(const std::string& raw, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int k = 0; k < bytes; ++k)
    v |= std::uint64_t{static_cast<std::uint8_t>(raw[at + k])} << (8 * k);
  return v;
}

std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Element count of a constant's dims, refusing negative dims and overflow (a corrupt file must
// not make us allocate or wrap).
std::int64_t checked_elements(const std::vector<std::int64_t>& shape, const std::string& tensor,
                              const Where& where) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0)
      throw InputError(where,
                       "tensor " + q(tensor) + " has a negative dimension " + shape_text(shape));
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d)
      throw InputError(where, "tensor " + q(tensor) + " is too large " + shape_text(shape));
    n *= d;
  }
  return n;
}

// A TensorProto (initializer or Constant value) as a constant Value named `name`.
Value tensor_value(const TensorProto& t, const std::string& name, const Where& where) {
  Value v;
  v.name = name;
  v.constant = true;
  v.shape.assign(t.dims().begin(), t.dims().end());
  const ElemType et = elem_type(t.data_type(), name, where);
  v.dtype = et.dtype;
  const std::int64_t n = checked_elements(v.shape, name, where);
  const std::string what =
      "tensor " + q(name) + " (" + onnx_type_name(t.data_type()) + " " + shape_text(v.shape) + ")";

  if (t.data_location() == TensorProto::EXTERNAL)
    throw InputError(where, what +
                                " uses external data, which is not supported; save the model "
                                "with its weights inside the .onnx file");
  if (t.has_segment()) throw InputError(where, what + " is segmented, which is not supported");

  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    const std::size_t bytes = et.ints_bytes ? et.ints_bytes : isa::dtype_bytes(et.dtype);
    if (raw.size() != static_cast<std::uint64_t>(n) * bytes)
      throw InputError(where, what + " has " + std::to_string(raw.size()) +
                                  " bytes of raw data; its shape needs " +
                                  std::to_string(n * bytes));
    if (et.ints_bytes == 8) {
      for (std::int64_t i = 0; i < n; ++i)
        v.ints.push_back(static_cast<std::int64_t>(get_le(raw, i * 8, 8)));
    } else if (et.ints_bytes == 1) {
      for (std::int64_t i = 0; i < n; ++i)
        v.ints.push_back(raw[i] != 0);
    } else {
      v.data.assign(raw.begin(), raw.end());  // raw_data is little-endian already, as we store it
    }
    return v;
  }

  // Typed fields: float_data for float, int64_data for int64, and int32_data for every other
  // supported type (fp16/bf16 bits, int8/int16 values, bool) as the ONNX spec lays out.
  const int count = t.data_type() == TensorProto::FLOAT   ? t.float_data_size()
                    : t.data_type() == TensorProto::INT64 ? t.int64_data_size()
                                                          : t.int32_data_size();
  if (count != n) {
    if (count == 0) throw InputError(where, what + " has no data");
    throw InputError(where, what + " has " + std::to_string(count) + " values; its shape needs " +
                                std::to_string(n));
  }
  switch (t.data_type()) {
    case TensorProto::FLOAT:
      for (float f : t.float_data())
        put_le(v.data, float_bits(f), 4);
      break;
    case TensorProto::INT64:
      v.ints.assign(t.int64_data().begin(), t.int64_data().end());
      break;
    case TensorProto::BOOL:
      for (auto x : t.int32_data())
        v.ints.push_back(x != 0);
      break;
    default:  // truncating keeps the low bits: the fp16/bf16 pattern or the two's-complement value
      for (auto x : t.int32_data())
        put_le(v.data, static_cast<std::uint32_t>(x), isa::dtype_bytes(et.dtype));
      break;
  }
  return v;
}

// The declared type of a graph input or output, which must be a tensor of static shape.
Value declared_value(const onnx::ValueInfoProto& vi, const char* role, const Where& where) {
  const std::string what = std::string(role) + " " + q(vi.name());
  if (!vi.type().has_tensor_type())
    throw InputError(where, what + " is not a tensor (or has no type)");
  const auto& tt = vi.type().tensor_type();
  if (tt.elem_type() == TensorProto::UNDEFINED)
    throw InputError(where, what + " has no element type");
  Value v;
  v.name = vi.name();
  v.dtype = elem_type(tt.elem_type(), vi.name(), where).dtype;
  if (!tt.has_shape())
    throw InputError(where, what + " has no shape; the compiler needs static shapes");
  for (int i = 0; i < tt.shape().dim_size(); ++i) {
    const auto& d = tt.shape().dim(i);
    if (d.has_dim_value() && d.dim_value() >= 0) {
      v.shape.push_back(d.dim_value());
      continue;
    }
    const std::string is = d.has_dim_param()   ? "is '" + d.dim_param() + "' (dynamic)"
                           : d.has_dim_value() ? "is negative"
                                               : "is unknown";
    throw InputError(where, what + ": dimension " + std::to_string(i) + " " + is +
                                "; the compiler needs static shapes");
  }
  return v;
}

// value_info of an intermediate: taken only when complete, since a partial shape could not be
// told apart from a scalar. Incomplete info leaves the value unknown for the lowering to infer.
void apply_value_info(const onnx::ValueInfoProto& vi, Value& v, const Where& where) {
  if (!vi.type().has_tensor_type()) return;
  const auto& tt = vi.type().tensor_type();
  if (tt.elem_type() == TensorProto::UNDEFINED || !tt.has_shape()) return;
  std::vector<std::int64_t> shape;
  for (const auto& d : tt.shape().dim()) {
    if (!d.has_dim_value() || d.dim_value() < 0) return;
    shape.push_back(d.dim_value());
  }
  v.dtype = elem_type(tt.elem_type(), vi.name(), where).dtype;
  v.shape = std::move(shape);
}

class Importer {
 public:
  Importer(const std::string& path, const onnx::GraphProto& gp) : gp_(gp) { g_.source = path; }

  Graph run() {
    if (gp_.sparse_initializer_size() > 0)
      throw InputError(g_.source, "sparse initializers are not supported (tensor " +
                                      q(gp_.sparse_initializer(0).values().name()) + ")");

    std::unordered_set<std::string> initializer_names;
    for (const auto& t : gp_.initializer())
      initializer_names.insert(t.name());

    // Inputs that are also initializers (IR < 4 required listing them) are constants, not inputs.
    for (const auto& vi : gp_.input()) {
      if (initializer_names.count(vi.name())) continue;
      g_.inputs.push_back(add(declared_value(vi, "graph input", g_.source), g_.source));
    }
    for (const auto& t : gp_.initializer())
      add(tensor_value(t, t.name(), g_.source), g_.source);

    for (const auto& vi : gp_.value_info())
      value_info_[vi.name()] = &vi;

    for (int i = 0; i < gp_.node_size(); ++i)
      import_node(gp_.node(i), i);

    for (const auto& vi : gp_.output())
      g_.outputs.push_back(import_output(vi));
    return std::move(g_);
  }

 private:
  int add(Value v, const Where& where) {
    if (v.name.empty()) throw InputError(where, "a value has an empty name");
    auto [it, fresh] = ids_.emplace(v.name, static_cast<int>(g_.values.size()));
    if (!fresh)
      throw InputError(where, "value " + q(v.name) +
                                  " is defined twice (ONNX values must have a single producer)");
    g_.values.push_back(std::move(v));
    return it->second;
  }

  std::vector<std::string> known_names() const {
    std::vector<std::string> names;
    for (const auto& v : g_.values)
      names.push_back(v.name);
    return names;
  }

  void import_node(const onnx::NodeProto& np, int index) {
    Node n;
    n.op = np.op_type();
    // The index is the node's position in the file (Constants included), so it can be found there.
    n.name = np.name().empty() ? n.op + "_" + std::to_string(index) : np.name();
    const Where where = g_.where(n);

    if (!np.domain().empty() && np.domain() != "ai.onnx")
      throw InputError(where, "operator domain " + q(np.domain()) +
                                  " is not supported (only the default ONNX domain is)");
    if (n.op == "Constant") {
      // Folded: the compiler only ever needs its data.
      if (np.output_size() != 1 || np.output(0).empty())
        throw InputError(where, "a Constant must have exactly one output");
      add(constant_value(np, np.output(0), where), where);
      return;
    }

    for (const auto& name : np.input()) {
      if (name.empty()) {
        n.inputs.push_back(-1);
        continue;
      }
      auto it = ids_.find(name);
      if (it == ids_.end()) {
        std::string msg = "input " + q(name) +
                          " is not a graph input, an initializer or the output of an earlier "
                          "node (nodes must be in topological order)";
        const auto hint = did_you_mean(name, known_names());
        throw InputError(where, hint.empty() ? msg : msg + "; " + hint);
      }
      n.inputs.push_back(it->second);
    }

    for (const auto& a : np.attribute()) {
      if (!n.attrs.emplace(a.name(), attr(a, where)).second)
        throw InputError(where, "attribute " + q(a.name()) + " is given twice");
    }

    for (const auto& name : np.output()) {
      if (name.empty()) {  // an omitted optional output; keeps the positions of later ones
        n.outputs.push_back(-1);
        continue;
      }
      Value v;
      v.name = name;
      auto vi = value_info_.find(name);
      if (vi != value_info_.end()) apply_value_info(*vi->second, v, where);
      n.outputs.push_back(add(std::move(v), where));
    }
    g_.nodes.push_back(std::move(n));
  }

  static Attr attr(const AttributeProto& a, const Where& where) {
    Attr r;
    switch (a.type()) {
      case AttributeProto::INT:
        r.kind = Attr::Kind::kInt;
        r.i = a.i();
        break;
      case AttributeProto::FLOAT:
        r.kind = Attr::Kind::kFloat;
        r.f = a.f();
        break;
      case AttributeProto::STRING:
        r.kind = Attr::Kind::kString;
        r.s = a.s();
        break;
      case AttributeProto::INTS:
        r.kind = Attr::Kind::kInts;
        r.ints.assign(a.ints().begin(), a.ints().end());
        break;
      case AttributeProto::FLOATS:
        r.kind = Attr::Kind::kFloats;
        r.floats.assign(a.floats().begin(), a.floats().end());
        break;
      default: {
        const std::string kind = AttributeProto::AttributeType_IsValid(a.type())
                                     ? lower(AttributeProto::AttributeType_Name(a.type()))
                                     : "unknown";
        throw InputError(where, "attribute " + q(a.name()) + " is of kind " + kind +
                                    ", which is not supported (only int, float, string, ints "
                                    "and floats are)");
      }
    }
    return r;
  }

  static Value constant_value(const onnx::NodeProto& np, const std::string& out,
                              const Where& where) {
    if (np.attribute_size() != 1)
      throw InputError(where, "a Constant must have exactly one value attribute, not " +
                                  std::to_string(np.attribute_size()));
    const auto& a = np.attribute(0);
    auto expect = [&](AttributeProto::AttributeType t) {
      if (a.type() != t)
        throw InputError(where, "attribute " + q(a.name()) + " has the wrong kind");
    };
    if (a.name() == "value") {
      expect(AttributeProto::TENSOR);
      return tensor_value(a.t(), out, where);
    }
    Value v;
    v.name = out;
    v.constant = true;
    if (a.name() == "value_float" || a.name() == "value_floats") {
      v.dtype = isa::DType::kFp32;
      if (a.name() == "value_float") {
        expect(AttributeProto::FLOAT);
        put_le(v.data, float_bits(a.f()), 4);
      } else {
        expect(AttributeProto::FLOATS);
        v.shape = {a.floats_size()};
        for (float f : a.floats())
          put_le(v.data, float_bits(f), 4);
      }
      return v;
    }
    if (a.name() == "value_int") {
      expect(AttributeProto::INT);
      v.ints = {a.i()};
      return v;
    }
    if (a.name() == "value_ints") {
      expect(AttributeProto::INTS);
      v.shape = {a.ints_size()};
      v.ints.assign(a.ints().begin(), a.ints().end());
      return v;
    }
    throw InputError(where, "attribute " + q(a.name()) +
                                " is not supported on a Constant (value, value_float, "
                                "value_floats, value_int and value_ints are)");
  }

  int import_output(const onnx::ValueInfoProto& vi) {
    auto it = ids_.find(vi.name());
    if (it == ids_.end())
      throw InputError(g_.source, "graph output " + q(vi.name()) +
                                      " is not produced by any node, graph input or initializer");
    Value declared = declared_value(vi, "graph output", g_.source);
    Value& v = g_.values[it->second];
    if (v.constant) {
      // Constants carry their own type; a declaration that disagrees means a broken model.
      if (v.dtype != declared.dtype || v.shape != declared.shape)
        throw InputError(g_.source, "graph output " + q(vi.name()) + " is declared " +
                                        type_text(declared) + " but is a constant " + type_text(v));
    } else {
      v.dtype = declared.dtype;
      v.shape = std::move(declared.shape);
    }
    return it->second;
  }

  const onnx::GraphProto& gp_;
  Graph g_;
  std::unordered_map<std::string, int> ids_;
  std::unordered_map<std::string, const onnx::ValueInfoProto*> value_info_;
};

}  // namespace

Value read_tensor_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "cannot open file");
  TensorProto t;
  if (!t.ParseFromIstream(&f)) throw InputError(path, "not a serialized ONNX TensorProto");
  return tensor_value(t, t.name().empty() ? path : t.name(), path);
}

Graph import_onnx(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(path, "is a directory, not an ONNX model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, std::string("cannot open the file: ") + std::strerror(errno));
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&in) || in.bad())
    throw InputError(path, "not an ONNX model (the file does not parse as an ONNX ModelProto)");
  // Any byte string (an empty file too) may parse as an empty message; a model needs a graph.
  if (!model.has_graph()) throw InputError(path, "not an ONNX model (it has no graph)");
  return Importer(path, model.graph()).run();
}

}  // namespace lpu::compiler
