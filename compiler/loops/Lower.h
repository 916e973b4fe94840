// Lower.h — graph IR to loop IR.
#pragma once

#include "graph/Graph.h"
#include "loops/LoopIR.h"

#include <string>

namespace nnc::loops {

/// Whether `lowerInference` can lower every node of `graph` yet; if not,
/// `why` names the first op it cannot.
bool canLower(const Graph &graph, std::string &why);

/// `predict(params, x) -> logits` for an inference graph: one buffer per
/// value, one loop nest per node, evaluation-mode semantics (dropout is the
/// identity). Buffers: the input, the parameters and state in graph order,
/// the output, then temporaries. Fusion comes later.
Function lowerInference(const Graph &graph);

} // namespace nnc::loops
