// Autodiff.h — reverse-mode automatic differentiation over the graph IR.
#pragma once

#include "graph/Graph.h"

#include <map>
#include <string>
#include <vector>

namespace nnc {

/// A graph extended with its backward pass.
struct Differentiated {
  Graph graph;                      ///< the forward nodes, then the backward ones
  std::map<ValueId, ValueId> grads; ///< for each value asked for: its gradient
};

/// Appends to a copy of `forward` the nodes computing dL/dv for every v in
/// `wrt`, where L is the scalar `loss`. Gradients of a value used several
/// times are summed; nothing is computed for values that do not depend on
/// `wrt` (the images) or that the loss does not depend on (unused
/// branches). A value in `wrt` the loss does not depend on gets a zero
/// gradient. Graph outputs become: the loss, then the gradients in order.
/// A gradient is named after its value: `d:fc1.weight`.
Differentiated differentiate(const Graph &forward, ValueId loss, const std::vector<ValueId> &wrt);

/// Test hook: a deliberately wrong gradient rule for the nodes of one layer,
/// so that tests can show the gradient check rejects it. Never set outside
/// tests.
enum class GradientMutation { None, Negate, Halve, SwapInputs };
void setGradientMutation(const std::string &layer, GradientMutation mutation);

} // namespace nnc
