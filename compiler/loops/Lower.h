// Lower.h — graph IR to loop IR, with fusion and buffer planning.
#pragma once

#include "graph/Graph.h"
#include "loops/LoopIR.h"

#include <string>
#include <utility>
#include <vector>

namespace nnc::loops {

struct LowerOptions {
  std::string name = "predict";
  /// Training semantics: batchnorm uses the batch's statistics (and dropout
  /// would drop); otherwise evaluation semantics.
  bool training = false;
  /// The largest batch the function will be called with; the arena of
  /// temporaries is planned for it once, never allocated per call.
  int64_t capacity = 64;
  /// The program's seed, for dropout's masks and randn (see Reference.cpp).
  uint64_t seed = 0;
  /// Floats per vector register of the machine the code is for: 8 (AVX2,
  /// the default) or 16 (AVX-512). The register tiles of matrix products and
  /// convolutions are as wide as its registers allow; results never depend
  /// on it (every sum runs in the same order).
  int64_t vectorLanes = 8;
};

/// Whether every node of `graph` can be lowered; if not, `why` names the
/// first op that cannot.
bool canLower(const Graph &graph, bool training, std::string &why);

/// Lowers `graph` to one function. Buffers: the graph's inputs and labels,
/// its parameters and state, one output per graph output (an output that is
/// the next value of a parameter or state, per `updates`, says so), then the
/// temporaries, which share an arena by lifetime.
///
/// Fusion: a pointwise node runs inside the loop of the node that produced
/// what it reads at its own index — a matrix product's or a convolution's
/// output loop, a reduction's epilogue, or a loop of other pointwise nodes —
/// and only values read elsewhere are stored. softmax cross-entropy and its
/// gradient share one pass. So dense+bias+relu is one loop nest, and each
/// parameter's optimizer update runs in the loop that computes its gradient.
Function lower(const Graph &graph, const std::vector<std::pair<ValueId, ValueId>> &updates,
               const LowerOptions &options);

/// `predict(params, x) -> outputs` for an inference graph, at evaluation.
Function lowerInference(const Graph &graph, int64_t capacity = 64);

} // namespace nnc::loops
