// Build.cpp — lowering a checked Program to the graph IR. Blocks are already
// expanded and every shape is known, so this is a straight walk over the
// layers.
#include "graph/Build.h"

#include <stdexcept>

namespace nnc {

Graph buildGraph(const Program &program) {
  const Model &m = program.model;
  Graph g;
  g.name = m.name;
  std::vector<ValueId> valueOf(m.values.size(), -1); // model value -> graph value
  for (int v : m.inputs)
    valueOf[static_cast<size_t>(v)] =
        g.addValue({ValueKind::Input, DType::F32, m.values[static_cast<size_t>(v)].shape,
                    m.values[static_cast<size_t>(v)].name, -1, {}});
  for (const Layer &layer : m.layers) {
    std::vector<ValueId> inputs;
    for (int v : layer.inputs) {
      if (valueOf[static_cast<size_t>(v)] < 0)
        throw std::logic_error("internal error: layer " + layer.name + " reads an unset value");
      inputs.push_back(valueOf[static_cast<size_t>(v)]);
    }
    size_t dataInputs = inputs.size();
    for (const ParamInfo &p : layer.params)
      inputs.push_back(g.addValue({p.trainable ? ValueKind::Param : ValueKind::State,
                                   DType::F32, Shape{p.shape}, p.name, -1, p.init}));
    valueOf[static_cast<size_t>(layer.output)] =
        g.apply(*layer.op, std::move(inputs), layer.attrs, layer.name, layer.loc, dataInputs);
  }
  g.outputs.push_back(valueOf[static_cast<size_t>(m.output)]);
  return g;
}

Graph buildLossGraph(const Program &program) {
  Graph g = buildGraph(program);
  ValueId logits = g.outputs[0];
  ValueId labels =
      g.addValue({ValueKind::Label, DType::I64, Shape::batched({}), kLabelsName, -1, {}});
  const OpDef *loss = findOp(program.loss.name);
  if (loss == nullptr)
    throw std::logic_error("internal error: unknown loss " + program.loss.name);
  // The labels follow the data input, as a layer's parameters do: the shape
  // rule sees the model's output only.
  g.outputs = {g.apply(*loss, {logits, labels}, program.loss.attrs, "loss", program.loss.loc, 1,
                       kLossName)};
  return g;
}

} // namespace nnc
