// The operators the lowering takes, each with the member function that lowers it: the one
// place an operator is added (supported_ops() lists these names).
#include "compiler/lower/lowering.h"

namespace lpu::compiler::lowering {

const std::map<std::string, Lowering::Handler>& Lowering::handlers() {
  static const std::map<std::string, Handler> m = [] {
    std::map<std::string, Handler> r;
    for (const auto& [op, unused] : binary_ops())
      r[op] = &Lowering::lower_binary;
    for (const auto& [op, unused] : unary_ops())
      r[op] = &Lowering::lower_unary;
    r["Sigmoid"] = &Lowering::lower_sigmoid;
    r["LeakyRelu"] = &Lowering::lower_leaky_relu;
    r["Clip"] = &Lowering::lower_clip;
    r["MatMul"] = &Lowering::lower_matmul;
    r["Gemm"] = &Lowering::lower_gemm;
    r["BatchNormalization"] = &Lowering::lower_batch_norm;
    r["Cast"] = &Lowering::lower_cast;
    r["GlobalAveragePool"] = &Lowering::lower_global_average_pool;
    r["Transpose"] = &Lowering::lower_transpose;
    r["Concat"] = &Lowering::lower_concat;
    r["Slice"] = &Lowering::lower_slice;
    r["Softmax"] = &Lowering::lower_softmax;
    r["Div"] = &Lowering::lower_div_sqrt_erf;
    r["Reciprocal"] = &Lowering::lower_div_sqrt_erf;
    r["Sqrt"] = &Lowering::lower_div_sqrt_erf;
    r["Erf"] = &Lowering::lower_div_sqrt_erf;
    r["Reshape"] = &Lowering::lower_reshape;
    r["Flatten"] = &Lowering::lower_reshape;
    r["Squeeze"] = &Lowering::lower_reshape;
    r["Unsqueeze"] = &Lowering::lower_reshape;
    r["ReduceSum"] = &Lowering::lower_reduce;
    r["ReduceMean"] = &Lowering::lower_reduce;
    r["LayerNormalization"] = &Lowering::lower_layer_norm;
    r["Gather"] = &Lowering::gather;
    r["Conv"] = &Lowering::conv;
    r["MaxPool"] = &Lowering::pool;
    r["AveragePool"] = &Lowering::pool;
    return r;
  }();
  return m;
}

void Lowering::lower_by_name(const Node& n) {
  const auto it = handlers().find(n.op);
  if (it == handlers().end())
    throw InputError(g_.where(n), "operator '" + n.op + "' is not supported");
  (this->*it->second)(n);
}

}  // namespace lpu::compiler::lowering
