// Build.h — lowering a checked Program to the graph IR.
#pragma once

#include "frontend/Program.h"
#include "graph/Graph.h"

namespace nnc {

/// The model of `program` as a graph from its input to its output (the
/// inference graph): one node per layer, each layer's parameters explicit.
Graph buildGraph(const Program &program);

/// The model followed by its loss: a `@labels` value (one class index per
/// example) and the loss node `@loss`, the graph's only output, a scalar.
Graph buildLossGraph(const Program &program);

} // namespace nnc
