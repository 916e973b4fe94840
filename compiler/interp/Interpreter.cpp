// Interpreter.cpp — evaluates a graph node by node with the op table's
// reference kernels. Plain and slow on purpose: it is the oracle.
#include "interp/Interpreter.h"

#include "Training.h"

#include "Random.h"

#include <stdexcept>

namespace nnc {

std::vector<int64_t> concreteDims(const Shape &shape, int64_t batch) {
  std::vector<int64_t> dims = shape.dims;
  for (int64_t &d : dims)
    if (d == kBatch)
      d = batch;
  return dims;
}

Tensor initialValue(const Value &value, uint64_t seed) {
  Tensor t(value.shape.dims);
  std::vector<float> values(t.size());
  nnc_rt::initialize(value.init.runtime(), value.name, seed, values.data(),
                     static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i)
    t[i] = values[i];
  return t;
}

std::map<std::string, Tensor> initialParams(const Graph &graph, uint64_t seed) {
  std::map<std::string, Tensor> out;
  for (const Value &v : graph.values)
    if (v.kind == ValueKind::Param || v.kind == ValueKind::State)
      out.emplace(v.name, initialValue(v, seed));
  return out;
}

std::vector<Tensor> interpret(const Graph &graph, const std::map<std::string, Tensor> &feeds,
                              const EvalContext &ctx) {
  std::vector<Tensor> values(graph.values.size());
  int64_t batch = -1;
  for (size_t i = 0; i < graph.values.size(); ++i) {
    const Value &v = graph.values[i];
    if (v.kind == ValueKind::Computed)
      continue;
    auto it = feeds.find(v.name);
    if (it == feeds.end())
      throw std::logic_error("internal error: no feed for '" + v.name + "'");
    if (v.kind == ValueKind::Input && batch < 0)
      batch = it->second.dims.empty() ? -1 : it->second.dims[0];
    values[i] = it->second;
  }
  for (size_t i = 0; i < graph.values.size(); ++i) {
    const Value &v = graph.values[i];
    if (v.kind != ValueKind::Computed && values[i].dims != concreteDims(v.shape, batch))
      throw std::logic_error("internal error: feed '" + v.name + "' has shape " +
                             values[i].shapeStr() + ", not " + v.shape.str());
  }
  for (const Node &node : graph.nodes) {
    std::vector<const Tensor *> inputs;
    for (ValueId id : node.inputs)
      inputs.push_back(&values[static_cast<size_t>(id)]);
    Tensor &out = values[static_cast<size_t>(node.output)];
    out = Tensor(concreteDims(graph.value(node.output).shape, batch));
    node.op->reference(KernelCall{inputs, node.attrs, node.layer, ctx, out});
  }
  return values;
}

} // namespace nnc
