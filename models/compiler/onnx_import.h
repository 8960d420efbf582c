// ONNX front end: reads a model file into the graph IR (compiler/graph.h).
#pragma once

#include <string>

#include "compiler/graph.h"

namespace lpu::compiler {

/// Reads `path` (an ONNX ModelProto). Throws InputError naming the file, and the node, operator
/// or tensor concerned, for anything the compiler cannot take: a file that does not parse, an
/// unsupported element type, a dynamic or missing shape on a graph input or output, an initializer
/// without data. Operators are not checked here (lowering does that, per node).
Graph import_onnx(const std::string& path);

/// Reads a serialized TensorProto (the ONNX test data's input_N.pb / output_N.pb) as a constant
/// Value. Throws InputError naming the file for anything unreadable or unsupported.
Value read_tensor_file(const std::string& path);

}  // namespace lpu::compiler
