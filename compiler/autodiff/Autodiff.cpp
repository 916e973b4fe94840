// Autodiff.cpp — reverse mode: walk the nodes backwards from the loss, ask
// each node's gradient rule (in the op table) for its inputs' gradients
// given its output's, and sum the contributions of a value used more than
// once. The rules add ordinary graph nodes, so the result is one graph.
#include "autodiff/Autodiff.h"

#include <stdexcept>

namespace nnc {
namespace {

std::string mutatedLayer;
GradientMutation mutation = GradientMutation::None;

/// A GradBuilder over one node of the graph being extended.
class Builder final : public GradBuilder {
public:
  Builder(Graph &g, const Node &node, int dy, const std::vector<bool> &needs)
      : g_(g), node_(node), dy_(dy), needs_(needs) {}

  int input(size_t i) const override { return node_.inputs.at(i); }
  size_t inputCount() const override { return node_.inputs.size(); }
  int output() const override { return node_.output; }
  int outputGrad() const override { return dy_; }
  bool needs(size_t i) const override { return needs_[static_cast<size_t>(node_.inputs.at(i))]; }
  const Attrs &attrs() const override { return node_.attrs; }
  const Shape &shape(int value) const override { return g_.value(value).shape; }

  int apply(const std::string &name, std::vector<int> inputs, Attrs attrs) override {
    const OpDef *op = findOp(name);
    if (op == nullptr)
      throw std::logic_error("internal error: gradient rule uses unknown op " + name);
    for (const AttrSpec &spec : op->attrs) // defaults, as the front end fills them
      if (!attrs.has(spec.name) && spec.defaultValue)
        attrs.set(spec.name, *spec.defaultValue);
    size_t data = inputs.size();
    // The node keeps the forward layer's name: dropout's mask stream is
    // keyed by it, and messages and fused loops name the layer.
    // Intermediate values are named after the layer (`t:fc1`); the gradients a rule
    // returns are renamed after what they are the gradient of.
    return g_.apply(*op, std::move(inputs), std::move(attrs), node_.layer, node_.loc, data,
                    "t:" + node_.layer);
  }

private:
  Graph &g_;
  const Node &node_;
  int dy_;
  const std::vector<bool> &needs_;
};

} // namespace

void setGradientMutation(const std::string &layer, GradientMutation m) {
  mutatedLayer = layer;
  mutation = m;
}

Differentiated differentiate(const Graph &forward, ValueId loss, const std::vector<ValueId> &wrt) {
  Differentiated out{forward, {}};
  Graph &g = out.graph;
  if (!g.value(loss).shape.dims.empty())
    throw std::logic_error("internal error: differentiating a non-scalar " +
                           g.value(loss).shape.str());
  size_t n = forward.values.size();
  // needs[v]: v depends on something in wrt.
  std::vector<bool> needs(n, false);
  for (ValueId v : wrt)
    needs[static_cast<size_t>(v)] = true;
  for (const Node &node : forward.nodes)
    for (ValueId in : node.inputs)
      if (needs[static_cast<size_t>(in)])
        needs[static_cast<size_t>(node.output)] = true;
  // reaches[v]: the loss depends on v.
  std::vector<bool> reaches(n, false);
  reaches[static_cast<size_t>(loss)] = true;
  for (auto it = forward.nodes.rbegin(); it != forward.nodes.rend(); ++it)
    if (reaches[static_cast<size_t>(it->output)])
      for (ValueId in : it->inputs)
        reaches[static_cast<size_t>(in)] = true;
  std::vector<bool> wanted(n);
  for (size_t v = 0; v < n; ++v)
    wanted[v] = needs[v] && reaches[v];

  std::map<ValueId, ValueId> grad;
  Attrs one;
  one.set("shape", AttrValue{std::vector<int64_t>{}});
  one.set("value", AttrValue{1.0});
  grad[loss] = g.apply(*findOp("fill"), {}, one, "loss", SourceLoc{}, 0, gradName(g.value(loss).name));

  for (auto it = forward.nodes.rbegin(); it != forward.nodes.rend(); ++it) {
    const Node &node = *it;
    auto dy = grad.find(node.output);
    if (dy == grad.end() || !wanted[static_cast<size_t>(node.output)])
      continue;
    if (!node.op->gradient)
      throw std::logic_error("internal error: op " + node.op->name + " has no gradient rule");
    Builder builder(g, node, dy->second, wanted);
    size_t before = g.values.size();
    std::vector<int> grads = node.op->gradient(builder);
    if (grads.size() != node.inputs.size())
      throw std::logic_error("internal error: gradient rule of " + node.op->name +
                             " returned the wrong number of gradients");
    if (!mutatedLayer.empty() && node.layer == mutatedLayer) {
      switch (mutation) {
      case GradientMutation::None:
        break;
      case GradientMutation::Negate:
        for (int &gr : grads)
          if (gr >= 0)
            gr = builder.apply("neg", {gr}, Attrs{});
        break;
      case GradientMutation::Halve: {
        Attrs half;
        half.set("factor", AttrValue{0.5});
        for (int &gr : grads)
          if (gr >= 0)
            gr = builder.apply("scale", {gr}, half);
        break;
      }
      case GradientMutation::SwapInputs:
        if (grads.size() >= 2)
          std::swap(grads[0], grads[1]);
        break;
      }
    }
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      ValueId in = node.inputs[i];
      if (grads[i] < 0 || !wanted[static_cast<size_t>(in)])
        continue;
      if (static_cast<size_t>(grads[i]) >= before)
        g.rename(grads[i], gradName(g.value(in).name));
      auto [slot, inserted] = grad.emplace(in, grads[i]);
      if (!inserted) // fan-out: the contributions add up
        slot->second = g.apply(*findOp("add"), {slot->second, grads[i]}, {}, node.layer, node.loc,
                               2, gradName(g.value(in).name));
    }
  }

  g.outputs = {loss};
  for (ValueId v : wrt) {
    auto it = grad.find(v);
    ValueId d;
    if (it != grad.end()) {
      d = it->second;
    } else { // the loss does not depend on it
      Attrs zero;
      zero.set("shape", AttrValue{g.value(v).shape.dims});
      zero.set("value", AttrValue{0.0});
      d = g.apply(*findOp("fill"), {}, zero, g.value(v).name, SourceLoc{}, 0,
                  gradName(g.value(v).name));
    }
    out.grads[v] = d;
    g.outputs.push_back(d);
  }
  return out;
}

} // namespace nnc
