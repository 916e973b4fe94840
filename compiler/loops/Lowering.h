// Lowering.h — what lowering one node means, shared by the planner
// (Lower.cpp) and the per-op lowerings (Pointwise.cpp, Roots.cpp).
//
// Every node is one of three kinds:
//  - an alias (reshape, flatten, dropout when evaluating) computes nothing:
//    its value is its input's memory under another shape;
//  - a pointwise node has a value at each flat output index that is an
//    expression of its inputs at indices computed from that one (add, relu,
//    the optimizer's arithmetic, relu_grad, transpose, slice, broadcasts);
//  - a root owns a loop nest (dense, conv2d, the reductions, softmax, the
//    losses) and hands each output element it computes to an epilogue.
// Fusion happens in the planner: pointwise nodes join the group of the node
// that produced what they read at their own index, and run inside its loop,
// the root's epilogue, as local scalars.
#pragma once

#include "graph/Graph.h"
#include "loops/LoopIR.h"

#include <functional>
#include <string>
#include <vector>

namespace nnc::loops::detail {

/// Reads input `input` of the node being lowered at flat index `at`.
/// `identity` says that `at` is the node's own output index (the planner
/// may then hand over a local scalar instead of a load).
using Reader = std::function<ExprRef(size_t input, ExprRef at, bool identity)>;

/// Receives one output element of a root: its flat index and its value;
/// returns the statements that store it (and compute what is fused after).
using Epilogue = std::function<std::vector<Stmt>(ExprRef at, ExprRef value)>;

/// What the per-op lowerings need from the planner.
class Context {
public:
  virtual ~Context() = default;
  virtual const Graph &graph() const = 0;
  virtual bool training() const = 0;
  virtual uint64_t seed() const = 0;
  /// LowerOptions::vectorLanes.
  virtual int64_t vectorLanes() const = 0;
  /// The training step number (i64), from the graph's @step input.
  virtual ExprRef step() = 0;
  /// Where this batch starts in the whole batch (i64), from grad_step's
  /// @first_example input; null when the graph has none (it starts at 0).
  virtual ExprRef firstExample() = 0;
  virtual int newVar() = 0;
  /// The buffer that holds a value read by a root (always materialized).
  virtual int buffer(ValueId value) = 0;
  /// A value read by a root at flat index `at`: a load, or the constant
  /// itself when the value is one.
  virtual ExprRef read(ValueId value, ExprRef at) = 0;
  /// A scratch buffer private to the nest being lowered.
  virtual int scratch(const std::string &name, int64_t perExample, bool batched) = 0;
  /// A cache (BufferKind::Cache) of `elements` numbers, kept between calls:
  /// the nest computes it only when stale() is 1. Prediction only.
  virtual int cache(const std::string &name, int64_t elements) = 0;
  /// 1 when the caches must be computed again, else 0 (i64): the function's
  /// @stale flag, which it clears at its end.
  virtual ExprRef stale() = 0;
  /// The buffer a matrix product may accumulate its output in: the root's
  /// own buffer, or that of the first stored value fused after it.
  virtual int accumulator() = 0;
};

/// Constant: a node with no inputs (fill, zeros, ones), whose value every
/// reader computes itself.
enum class NodeKind { Alias, Constant, Pointwise, Root };

/// How `node` lowers (`training`: dropout drops, batchnorm uses batch statistics).
NodeKind kindOf(const Node &node, bool training);

/// Whether `node` reads input `input` at all (expand_scalar and expand_axis
/// take only the shape of their second).
bool readsInput(const Node &node, size_t input);

/// Whether the pointwise `node` reads input `input` at its own flat index.
bool readsOwnIndex(const Graph &graph, const Node &node, size_t input);

/// The value of the pointwise `node` at flat output index `at`.
ExprRef pointwise(const Node &node, Context &context, ExprRef at, const Reader &read);

/// The loop nest of the root `node`.
Stmt root(const Node &node, Context &context, const Epilogue &epilogue);

/// softmax + cross-entropy + its gradient in one pass over the rows: `loss`
/// is the cross_entropy node, `grad` the cross_entropy_grad node of the same
/// logits; the gradient's elements go to the epilogue.
Stmt crossEntropyWithGradient(const Node &loss, const Node &grad, Context &context,
                              const Epilogue &epilogue);

/// Whether a node of this op can be lowered at all (dropout while
/// training needs the graph's @step).
bool lowerable(const Graph &graph, const Node &node, bool training, std::string &why);

/// Elements of one example of a value, and whether it is batched.
int64_t perExample(const Value &value);

} // namespace nnc::loops::detail
