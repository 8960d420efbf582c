// ONNX front end: small models built with the onnx protobuf API, written to a temp file and
// imported, plus two models from the ONNX backend test data when the package is installed.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/diagnostics.h"
#include "compiler/onnx_import.h"

namespace {

using lpu::compiler::Attr;
using lpu::compiler::Graph;
using lpu::compiler::import_onnx;
using lpu::compiler::Node;
using lpu::compiler::Value;
using lpu::isa::DType;
using onnx::TensorProto;
using Dims = std::vector<std::int64_t>;
using Bytes = std::vector<std::uint8_t>;

onnx::ModelProto new_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(17);
  m.mutable_graph()->set_name("g");
  return m;
}

void set_type(onnx::ValueInfoProto* vi, int elem, const Dims& dims) {
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (auto d : dims)
    shape->add_dim()->set_dim_value(d);
}

onnx::ValueInfoProto* add_input(onnx::ModelProto& m, const std::string& name, int elem,
                                const Dims& dims) {
  auto* vi = m.mutable_graph()->add_input();
  vi->set_name(name);
  set_type(vi, elem, dims);
  return vi;
}

onnx::ValueInfoProto* add_output(onnx::ModelProto& m, const std::string& name, int elem,
                                 const Dims& dims) {
  auto* vi = m.mutable_graph()->add_output();
  vi->set_name(name);
  set_type(vi, elem, dims);
  return vi;
}

onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op,
                          const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const std::string& name = "") {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& i : inputs)
    n->add_input(i);
  for (const auto& o : outputs)
    n->add_output(o);
  return n;
}

TensorProto* add_initializer(onnx::ModelProto& m, const std::string& name, int elem,
                             const Dims& dims) {
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (auto d : dims)
    t->add_dims(d);
  return t;
}

std::string raw(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

// Each test writes its own file, so tests can run in parallel.
std::string save(const onnx::ModelProto& m, const std::string& suffix = "") {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  const std::string path = testing::TempDir() + "onnx_import_" + info->name() + suffix + ".onnx";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  EXPECT_TRUE(m.SerializeToOstream(&out));
  return path;
}

std::string error_of(const std::string& path) {
  try {
    import_onnx(path);
  } catch (const lpu::InputError& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_error(const onnx::ModelProto& m, std::initializer_list<std::string> parts) {
  const std::string msg = error_of(save(m));
  for (const auto& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

const Value& value(const Graph& g, const std::string& name) {
  const int id = g.find(name);
  EXPECT_GE(id, 0) << name;
  return g.values.at(static_cast<std::size_t>(id));
}

// --- values, types and shapes
// ---------------------------------------------------------------------

TEST(OnnxImport, InputDtypesAndShapes) {
  auto m = new_model();
  add_input(m, "f32", TensorProto::FLOAT, {1, 4});
  add_input(m, "f16", TensorProto::FLOAT16, {2});
  add_input(m, "bf16", TensorProto::BFLOAT16, {3, 1});
  add_input(m, "i8", TensorProto::INT8, {8});
  add_input(m, "i16", TensorProto::INT16, {2, 2});
  add_input(m, "i32", TensorProto::INT32, {5});
  add_input(m, "i64", TensorProto::INT64, {2});
  add_input(m, "flag", TensorProto::BOOL, {});
  add_node(m, "Identity", {"f32"}, {"y"});
  add_output(m, "y", TensorProto::FLOAT, {1, 4});
  const std::string path = save(m);
  const Graph g = import_onnx(path);

  EXPECT_EQ(g.source, path);
  ASSERT_EQ(g.inputs.size(), 8u);
  const std::vector<std::pair<std::string, DType>> want = {
      {"f32", DType::kFp32}, {"f16", DType::kFp16}, {"bf16", DType::kBf16}, {"i8", DType::kI8},
      {"i16", DType::kI16},  {"i32", DType::kI32},  {"i64", DType::kNone},  {"flag", DType::kNone}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    const Value& v = g.values.at(g.inputs[i]);
    EXPECT_EQ(v.name, want[i].first);
    EXPECT_EQ(v.dtype, want[i].second) << v.name;
    EXPECT_FALSE(v.constant);
    EXPECT_TRUE(v.data.empty());
  }
  EXPECT_EQ(value(g, "f32").shape, (Dims{1, 4}));
  EXPECT_EQ(value(g, "bf16").shape, (Dims{3, 1}));
  EXPECT_TRUE(value(g, "flag").shape.empty());  // rank 0: a scalar
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.values.at(g.outputs[0]).name, "y");
  EXPECT_EQ(g.values.at(g.outputs[0]).shape, (Dims{1, 4}));
  EXPECT_EQ(g.values.at(g.outputs[0]).dtype, DType::kFp32);
}

TEST(OnnxImport, InitializerListedAsInputIsNotAGraphInput) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {2});
  add_input(m, "w", TensorProto::FLOAT, {2});  // IR < 4 style: the initializer is also an input
  add_initializer(m, "w", TensorProto::FLOAT, {2})
      ->set_raw_data(raw({0, 0, 0x80, 0x3f, 0, 0, 0, 0}));
  add_node(m, "Add", {"x", "w"}, {"y"});
  add_output(m, "y", TensorProto::FLOAT, {2});
  const Graph g = import_onnx(save(m));
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.values.at(g.inputs[0]).name, "x");
  EXPECT_TRUE(value(g, "w").constant);
  EXPECT_EQ(g.values.size(), 3u);  // x, w, y: w only once
}

TEST(OnnxImport, ConstantsFromRawData) {
  auto m = new_model();
  add_initializer(m, "f32", TensorProto::FLOAT, {2})
      ->set_raw_data(raw({0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0x40}));  // 1.0, 2.5
  add_initializer(m, "f16", TensorProto::FLOAT16, {1, 2})
      ->set_raw_data(raw({0x00, 0x3c, 0x00, 0xc0}));
  add_initializer(m, "i8", TensorProto::INT8, {3})->set_raw_data(raw({0xfe, 0x05, 0x7f}));
  add_initializer(m, "i64", TensorProto::INT64, {2})
      ->set_raw_data(
          raw({0x05, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  add_initializer(m, "b", TensorProto::BOOL, {3})->set_raw_data(raw({1, 0, 1}));
  add_initializer(m, "s", TensorProto::INT32, {})->set_raw_data(raw({0x02, 0x01, 0, 0}));
  const Graph g = import_onnx(save(m));
  EXPECT_TRUE(g.inputs.empty());

  const Value& f32 = value(g, "f32");
  EXPECT_TRUE(f32.constant);
  EXPECT_EQ(f32.dtype, DType::kFp32);
  EXPECT_EQ(f32.shape, (Dims{2}));
  EXPECT_EQ(f32.data, (Bytes{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0x40}));
  EXPECT_EQ(value(g, "f16").dtype, DType::kFp16);
  EXPECT_EQ(value(g, "f16").shape, (Dims{1, 2}));
  EXPECT_EQ(value(g, "f16").data, (Bytes{0x00, 0x3c, 0x00, 0xc0}));
  EXPECT_EQ(value(g, "i8").data, (Bytes{0xfe, 0x05, 0x7f}));

  const Value& i64 = value(g, "i64");
  EXPECT_EQ(i64.dtype, DType::kNone);
  EXPECT_TRUE(i64.data.empty());
  EXPECT_EQ(i64.ints, (std::vector<std::int64_t>{5, -2}));
  EXPECT_EQ(value(g, "b").ints, (std::vector<std::int64_t>{1, 0, 1}));
  EXPECT_EQ(value(g, "b").dtype, DType::kNone);

  const Value& s = value(g, "s");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.elements(), 1);
  EXPECT_EQ(s.data, (Bytes{0x02, 0x01, 0x00, 0x00}));
}

TEST(OnnxImport, ConstantsFromTypedFields) {
  auto m = new_model();
  auto* f32 = add_initializer(m, "f32", TensorProto::FLOAT, {2});
  f32->add_float_data(1.0f);
  f32->add_float_data(2.5f);
  auto* f16 = add_initializer(m, "f16", TensorProto::FLOAT16, {2});  // fp16 bits in int32_data
  f16->add_int32_data(0x3c00);
  f16->add_int32_data(0xc000);
  add_initializer(m, "bf16", TensorProto::BFLOAT16, {1})->add_int32_data(0x3f80);
  auto* i8 = add_initializer(m, "i8", TensorProto::INT8, {2});
  i8->add_int32_data(-2);
  i8->add_int32_data(5);
  auto* i16 = add_initializer(m, "i16", TensorProto::INT16, {2});
  i16->add_int32_data(-2);
  i16->add_int32_data(300);
  auto* i32 = add_initializer(m, "i32", TensorProto::INT32, {2});
  i32->add_int32_data(-1);
  i32->add_int32_data(258);
  auto* i64 = add_initializer(m, "i64", TensorProto::INT64, {3});
  i64->add_int64_data(1);
  i64->add_int64_data(-1);
  i64->add_int64_data(INT64_C(1) << 40);
  auto* b = add_initializer(m, "b", TensorProto::BOOL, {2});
  b->add_int32_data(0);
  b->add_int32_data(1);
  add_initializer(m, "empty", TensorProto::FLOAT, {0, 3});  // no elements, no data: fine
  const Graph g = import_onnx(save(m));

  EXPECT_EQ(value(g, "f32").data, (Bytes{0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0x40}));
  EXPECT_EQ(value(g, "f16").dtype, DType::kFp16);
  EXPECT_EQ(value(g, "f16").data, (Bytes{0x00, 0x3c, 0x00, 0xc0}));
  EXPECT_EQ(value(g, "bf16").dtype, DType::kBf16);
  EXPECT_EQ(value(g, "bf16").data, (Bytes{0x80, 0x3f}));
  EXPECT_EQ(value(g, "i8").data, (Bytes{0xfe, 0x05}));
  EXPECT_EQ(value(g, "i16").data, (Bytes{0xfe, 0xff, 0x2c, 0x01}));
  EXPECT_EQ(value(g, "i32").data, (Bytes{0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00, 0x00}));
  EXPECT_EQ(value(g, "i64").ints, (std::vector<std::int64_t>{1, -1, INT64_C(1) << 40}));
  EXPECT_EQ(value(g, "b").ints, (std::vector<std::int64_t>{0, 1}));
  EXPECT_TRUE(value(g, "empty").constant);
  EXPECT_EQ(value(g, "empty").elements(), 0);
  EXPECT_TRUE(value(g, "empty").data.empty());
}

TEST(OnnxImport, ConstantNodesAreFolded) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {2});
  auto* c = add_node(m, "Constant", {}, {"c_tensor"});
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(TensorProto::FLOAT);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_float_data(1.0f);
  a->mutable_t()->add_float_data(2.5f);
  a = add_node(m, "Constant", {}, {"c_float"})->add_attribute();
  a->set_name("value_float");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(2.5f);
  a = add_node(m, "Constant", {}, {"c_floats"})->add_attribute();
  a->set_name("value_floats");
  a->set_type(onnx::AttributeProto::FLOATS);
  a->add_floats(1.0f);
  a->add_floats(2.5f);
  a = add_node(m, "Constant", {}, {"c_int"})->add_attribute();
  a->set_name("value_int");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(7);
  a = add_node(m, "Constant", {}, {"c_ints"})->add_attribute();
  a->set_name("value_ints");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(3);
  a->add_ints(-1);
  add_node(m, "Add", {"x", "c_tensor"}, {"y"}, "add");
  add_node(m, "Reshape", {"y", "c_ints"}, {"z"}, "reshape");
  add_output(m, "z", TensorProto::FLOAT, {2, 1});
  const Graph g = import_onnx(save(m));

  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, "Add");
  EXPECT_EQ(g.nodes[1].op, "Reshape");
  EXPECT_EQ(g.nodes[0].inputs[1], g.find("c_tensor"));
  EXPECT_EQ(g.nodes[1].inputs[1], g.find("c_ints"));

  const Bytes one_two_and_a_half = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0x40};
  const Value& t = value(g, "c_tensor");
  EXPECT_TRUE(t.constant);
  EXPECT_EQ(t.dtype, DType::kFp32);
  EXPECT_EQ(t.shape, (Dims{2}));
  EXPECT_EQ(t.data, one_two_and_a_half);
  const Value& f = value(g, "c_float");
  EXPECT_EQ(f.dtype, DType::kFp32);
  EXPECT_TRUE(f.shape.empty());
  EXPECT_EQ(f.data, (Bytes{0x00, 0x00, 0x20, 0x40}));
  EXPECT_EQ(value(g, "c_floats").shape, (Dims{2}));
  EXPECT_EQ(value(g, "c_floats").data, one_two_and_a_half);
  const Value& i = value(g, "c_int");
  EXPECT_TRUE(i.constant);
  EXPECT_EQ(i.dtype, DType::kNone);
  EXPECT_TRUE(i.shape.empty());
  EXPECT_EQ(i.ints, (std::vector<std::int64_t>{7}));
  EXPECT_EQ(value(g, "c_ints").shape, (Dims{2}));
  EXPECT_EQ(value(g, "c_ints").ints, (std::vector<std::int64_t>{3, -1}));
}

// --- nodes --------------------------------------------------------------------------------------

TEST(OnnxImport, AttributeKinds) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {1, 1, 4, 4});
  auto* n = add_node(m, "MaxPool", {"x"}, {"y"}, "pool");
  auto* a = n->add_attribute();
  a->set_name("storage_order");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(1);
  a = n->add_attribute();
  a->set_name("alpha");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(0.25f);
  a = n->add_attribute();
  a->set_name("auto_pad");
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s("SAME_UPPER");
  a = n->add_attribute();
  a->set_name("kernel_shape");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(2);
  a->add_ints(3);
  a = n->add_attribute();
  a->set_name("scales");
  a->set_type(onnx::AttributeProto::FLOATS);
  a->add_floats(0.5f);
  a->add_floats(-1.0f);
  add_output(m, "y", TensorProto::FLOAT, {1, 1, 4, 4});
  const Graph g = import_onnx(save(m));

  ASSERT_EQ(g.nodes.size(), 1u);
  const Node& node = g.nodes[0];
  EXPECT_EQ(node.attrs.size(), 5u);
  ASSERT_NE(node.attr("storage_order"), nullptr);
  EXPECT_EQ(node.attr("storage_order")->kind, Attr::Kind::kInt);
  EXPECT_EQ(node.attr("storage_order")->i, 1);
  ASSERT_NE(node.attr("alpha"), nullptr);
  EXPECT_EQ(node.attr("alpha")->kind, Attr::Kind::kFloat);
  EXPECT_FLOAT_EQ(node.attr("alpha")->f, 0.25f);
  ASSERT_NE(node.attr("auto_pad"), nullptr);
  EXPECT_EQ(node.attr("auto_pad")->kind, Attr::Kind::kString);
  EXPECT_EQ(node.attr("auto_pad")->s, "SAME_UPPER");
  ASSERT_NE(node.attr("kernel_shape"), nullptr);
  EXPECT_EQ(node.attr("kernel_shape")->kind, Attr::Kind::kInts);
  EXPECT_EQ(node.attr("kernel_shape")->ints, (std::vector<std::int64_t>{2, 3}));
  ASSERT_NE(node.attr("scales"), nullptr);
  EXPECT_EQ(node.attr("scales")->kind, Attr::Kind::kFloats);
  EXPECT_EQ(node.attr("scales")->floats, (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(node.attr("pads"), nullptr);
}

TEST(OnnxImport, NodeOrderInputsOutputsAndNames) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {4});
  add_initializer(m, "hi", TensorProto::FLOAT, {})->add_float_data(6.0f);
  add_node(m, "Relu", {"x"}, {"r"});                    // unnamed: Relu_0
  add_node(m, "Clip", {"r", "", "hi"}, {"c"}, "clip");  // min omitted
  add_node(m, "Dropout", {"c"}, {"d", ""});             // unnamed, mask omitted: Dropout_2
  add_output(m, "d", TensorProto::FLOAT, {4});
  const Graph g = import_onnx(save(m));

  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].name, "Relu_0");
  EXPECT_EQ(g.nodes[1].name, "clip");
  EXPECT_EQ(g.nodes[2].name, "Dropout_2");
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<int>{g.find("x")}));
  EXPECT_EQ(g.nodes[0].outputs, (std::vector<int>{g.find("r")}));
  EXPECT_EQ(g.nodes[1].op, "Clip");
  EXPECT_EQ(g.nodes[1].inputs, (std::vector<int>{g.find("r"), -1, g.find("hi")}));
  EXPECT_EQ(g.nodes[1].outputs, (std::vector<int>{g.find("c")}));
  EXPECT_EQ(g.nodes[2].outputs, (std::vector<int>{g.find("d"), -1}));
  EXPECT_EQ(g.outputs, (std::vector<int>{g.find("d")}));
  EXPECT_EQ(g.find("nope"), -1);
}

TEST(OnnxImport, IntermediateShapesFromValueInfo) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {2, 3});
  add_node(m, "Relu", {"x"}, {"known"});
  add_node(m, "Relu", {"known"}, {"unknown"});
  add_node(m, "Relu", {"unknown"}, {"partial"});
  add_node(m, "Relu", {"partial"}, {"scalar_info"});
  add_node(m, "Relu", {"scalar_info"}, {"y"});
  auto* vi = m.mutable_graph()->add_value_info();
  vi->set_name("known");
  set_type(vi, TensorProto::FLOAT16, {2, 3});
  vi = m.mutable_graph()->add_value_info();
  vi->set_name("partial");  // a dynamic dim: no usable shape, so no info at all
  set_type(vi, TensorProto::FLOAT, {2});
  vi->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_param("N");
  vi = m.mutable_graph()->add_value_info();
  vi->set_name("scalar_info");
  set_type(vi, TensorProto::INT32, {});
  add_output(m, "y", TensorProto::FLOAT, {2, 3});
  const Graph g = import_onnx(save(m));

  EXPECT_EQ(value(g, "known").dtype, DType::kFp16);
  EXPECT_EQ(value(g, "known").shape, (Dims{2, 3}));
  EXPECT_FALSE(value(g, "known").constant);
  EXPECT_EQ(value(g, "unknown").dtype, DType::kNone);
  EXPECT_TRUE(value(g, "unknown").shape.empty());
  EXPECT_EQ(value(g, "partial").dtype, DType::kNone);
  EXPECT_TRUE(value(g, "partial").shape.empty());
  EXPECT_EQ(value(g, "scalar_info").dtype, DType::kI32);
  EXPECT_TRUE(value(g, "scalar_info").shape.empty());
  EXPECT_EQ(value(g, "y").shape, (Dims{2, 3}));  // from the graph output
}

TEST(OnnxImport, WhereNamesFileNodeAndOp) {
  Graph g;
  g.source = "model.onnx";
  Node n;
  n.name = "add_1";
  n.op = "Add";
  EXPECT_EQ(g.where(n), "model.onnx: node 'add_1' (Add)");
}

// --- errors -------------------------------------------------------------------------------------

TEST(OnnxImport, MissingFile) {
  const std::string path = testing::TempDir() + "onnx_import_does_not_exist.onnx";
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
}

TEST(OnnxImport, NotAModel) {
  const std::string path = testing::TempDir() + "onnx_import_garbage.onnx";
  {
    std::ofstream out(path, std::ios::binary);
    out << "\xff\xff\xff\xff this is not a protobuf";
  }
  std::string msg = error_of(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("not an ONNX model"), std::string::npos) << msg;

  const std::string empty = testing::TempDir() + "onnx_import_empty.onnx";
  std::ofstream(empty, std::ios::binary | std::ios::trunc).close();
  msg = error_of(empty);
  EXPECT_NE(msg.find("no graph"), std::string::npos) << msg;
}

TEST(OnnxImport, UnsupportedElementTypes) {
  auto m = new_model();
  add_input(m, "x", TensorProto::UINT8, {2});
  expect_error(m, {"uint8 is not supported (tensor 'x')"});

  m = new_model();
  add_initializer(m, "w", TensorProto::DOUBLE, {1})->add_double_data(1.0);
  expect_error(m, {"double is not supported (tensor 'w')"});

  m = new_model();  // inside a Constant node, the message names the node too
  auto* a = add_node(m, "Constant", {}, {"c"}, "const_u16")->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(TensorProto::UINT16);
  a->mutable_t()->add_int32_data(1);
  expect_error(m, {"node 'const_u16' (Constant)", "uint16 is not supported (tensor 'c')"});
}

TEST(OnnxImport, ExternalDataIsRejected) {
  auto m = new_model();
  auto* t = add_initializer(m, "weights", TensorProto::FLOAT, {4});
  t->set_data_location(TensorProto::EXTERNAL);
  auto* e = t->add_external_data();
  e->set_key("location");
  e->set_value("weights.bin");
  expect_error(m, {"'weights'", "external data", "not supported"});
}

TEST(OnnxImport, DataThatDoesNotMatchTheShape) {
  auto m = new_model();
  add_initializer(m, "w", TensorProto::FLOAT, {2, 2})->add_float_data(1.0f);
  expect_error(m, {"'w'", "1 values", "needs 4"});

  m = new_model();
  add_initializer(m, "w", TensorProto::FLOAT16, {3})->set_raw_data(raw({0, 0, 0, 0}));
  expect_error(m, {"'w'", "4 bytes", "needs 6"});

  m = new_model();
  add_initializer(m, "w", TensorProto::INT32, {3});
  expect_error(m, {"'w'", "has no data"});
}

TEST(OnnxImport, DynamicOrMissingShapes) {
  auto m = new_model();
  auto* x = add_input(m, "x", TensorProto::FLOAT, {});
  x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_param("batch");
  expect_error(m, {"graph input 'x'", "dimension 0", "'batch'"});

  m = new_model();
  x = add_input(m, "x", TensorProto::FLOAT, {3});
  x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim();  // neither value nor param
  expect_error(m, {"graph input 'x'", "dimension 1", "unknown"});

  m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {3});
  add_node(m, "Relu", {"x"}, {"y"});
  add_output(m, "y", TensorProto::FLOAT, {})->mutable_type()->mutable_tensor_type()->clear_shape();
  expect_error(m, {"graph output 'y'", "no shape"});

  m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {3});
  add_output(m, "ghost", TensorProto::FLOAT, {3});
  expect_error(m, {"graph output 'ghost'", "not produced"});
}

TEST(OnnxImport, NodeUsingALaterValue) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {3});
  add_node(m, "Relu", {"later"}, {"y"}, "relu_first");
  add_node(m, "Neg", {"x"}, {"later"}, "neg");
  add_output(m, "y", TensorProto::FLOAT, {3});
  expect_error(m, {"node 'relu_first' (Relu)", "input 'later'", "topological"});
}

TEST(OnnxImport, ValueDefinedTwice) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {3});
  add_node(m, "Relu", {"x"}, {"x"}, "in_place");
  expect_error(m, {"node 'in_place' (Relu)", "'x'", "defined twice"});
}

TEST(OnnxImport, OtherDomainsAreRejected) {
  auto m = new_model();
  add_input(m, "x", TensorProto::FLOAT, {3});
  add_node(m, "Gelu", {"x"}, {"y"}, "gelu")->set_domain("com.microsoft");
  add_output(m, "y", TensorProto::FLOAT, {3});
  expect_error(m, {"node 'gelu' (Gelu)", "'com.microsoft'"});

  m = new_model();  // the explicit default domain is fine
  add_input(m, "x", TensorProto::FLOAT, {3});
  add_node(m, "Relu", {"x"}, {"y"}, "relu")->set_domain("ai.onnx");
  add_output(m, "y", TensorProto::FLOAT, {3});
  EXPECT_EQ(import_onnx(save(m, "_ok")).nodes.size(), 1u);
}

TEST(OnnxImport, UnsupportedAttributeKinds) {
  auto m = new_model();
  add_input(m, "cond", TensorProto::BOOL, {});
  auto* a = add_node(m, "If", {"cond"}, {"y"}, "branch")->add_attribute();
  a->set_name("then_branch");
  a->set_type(onnx::AttributeProto::GRAPH);
  a->mutable_g()->set_name("then");
  add_output(m, "y", TensorProto::FLOAT, {1});
  expect_error(m, {"node 'branch' (If)", "attribute 'then_branch'", "graph"});

  m = new_model();  // a tensor attribute is only folded on Constant
  add_input(m, "shape", TensorProto::INT64, {2});
  a = add_node(m, "ConstantOfShape", {"shape"}, {"y"}, "fill")->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(TensorProto::FLOAT);
  a->mutable_t()->add_float_data(0.0f);
  add_output(m, "y", TensorProto::FLOAT, {2, 2});
  expect_error(m, {"node 'fill' (ConstantOfShape)", "attribute 'value'", "tensor"});
}

// --- the ONNX backend test data (Debian package libonnx-testdata) --------------------------------

const std::filesystem::path kNodeTests = "/usr/share/libonnx-testdata/data/node";

TEST(OnnxImport, BackendTestAdd) {
  if (!std::filesystem::is_directory(kNodeTests)) GTEST_SKIP() << kNodeTests << " not installed";
  const Graph g = import_onnx((kNodeTests / "test_add" / "model.onnx").string());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "Add");
  EXPECT_EQ(g.nodes[0].name, "Add_0");
  ASSERT_EQ(g.inputs.size(), 2u);
  for (int id : g.inputs) {
    EXPECT_EQ(g.values.at(id).dtype, DType::kFp32);
    EXPECT_EQ(g.values.at(id).shape, (Dims{3, 4, 5}));
  }
  EXPECT_EQ(g.nodes[0].inputs, g.inputs);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.nodes[0].outputs, g.outputs);
  EXPECT_EQ(g.values.at(g.outputs[0]).shape, (Dims{3, 4, 5}));
}

TEST(OnnxImport, BackendTestRelu) {
  if (!std::filesystem::is_directory(kNodeTests)) GTEST_SKIP() << kNodeTests << " not installed";
  const Graph g = import_onnx((kNodeTests / "test_relu" / "model.onnx").string());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "Relu");
  ASSERT_EQ(g.inputs.size(), 1u);
  const Value& x = g.values.at(g.inputs[0]);
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.dtype, DType::kFp32);
  EXPECT_EQ(x.shape, (Dims{3, 4, 5}));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.values.at(g.outputs[0]).dtype, DType::kFp32);
}

}  // namespace
