// Interpreter.h — runs any graph with the reference kernels.
#pragma once

#include "graph/Graph.h"
#include "interp/Tensor.h"

#include <map>
#include <string>
#include <vector>

namespace nnc {

/// Runs `graph`. `feeds` gives a tensor for every input, label, parameter and
/// state value, by name; the batch size is the first input's first
/// dimension. Returns every value of the graph, indexed by ValueId. A feed
/// that is missing or has the wrong shape is an internal error.
std::vector<Tensor> interpret(const Graph &graph, const std::map<std::string, Tensor> &feeds,
                              const EvalContext &ctx);

/// A parameter's or state tensor's starting value: its initializer, with
/// random numbers from stream `init/<name>` under `seed`.
Tensor initialValue(const Value &value, uint64_t seed);

/// Feeds for every parameter and state value, at their initial values.
std::map<std::string, Tensor> initialParams(const Graph &graph, uint64_t seed);

/// `dims` with the batch dimension set to `batch`.
std::vector<int64_t> concreteDims(const Shape &shape, int64_t batch);

} // namespace nnc
