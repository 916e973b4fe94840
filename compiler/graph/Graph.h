// Graph.h — the graph IR: typed tensor values with static shapes (the batch
// dimension symbolic) and op nodes in evaluation order.
//
// Every node applies one row of the op table. A layer's parameters are
// explicit inputs of its node, after its data inputs (`dense(x, weight,
// bias)`), so that automatic differentiation and code generation see every
// tensor that flows. Parameters carry their initializer; all randomness is
// drawn from the runtime's counter-based RNG, keyed by the seed and the
// parameter's name, so adding a layer does not change the others' values.
#pragma once

#include "ops/OpTable.h"
#include "support/Source.h"

#include "Compiled.h"

#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace nnc {

using ValueId = int;

// Names of values the compiler makes. They contain characters no name in a
// .nn file can, so they never collide with the user's.
// The names the runtime (runtime/Compiled.h) finds these buffers by.
inline const std::string kLabelsName = nnc_rt::kLabelsBuffer; ///< a loss graph's labels
inline const std::string kLossName = nnc_rt::kLossBuffer;     ///< a loss graph's loss
inline const std::string kStepName = nnc_rt::kStepBuffer;     ///< step graphs' scalar inputs
inline const std::string kFirstExampleName = nnc_rt::kFirstExampleBuffer; ///< grad_step's
inline const std::string kStepsPerEpochName = nnc_rt::kStepsPerEpochBuffer;
inline const std::string kBaseLrName = nnc_rt::kBaseLrBuffer;
inline const std::string kLrName = nnc_rt::kLrBuffer; ///< the learning rate a step used
/// The gradient of value `name`: `d:fc1.weight`.
inline std::string gradName(const std::string &name) { return "d:" + name; }

enum class DType { F32, I64 };

/// Where a value comes from.
enum class ValueKind {
  Input,    ///< fed each step: the images
  Label,    ///< fed each step: the integer labels
  Param,    ///< trained; lives across steps
  State,    ///< not trained but updated, lives across steps: running statistics
  Computed, ///< the output of a node
};

struct Value {
  ValueKind kind;
  DType dtype = DType::F32;
  Shape shape;
  std::string name; ///< parameters: `fc1.weight`; computed values: the layer's name
  int node = -1;    ///< Computed: the producing node
  Initializer init; ///< Param and State: how it starts (see the op table)
};

struct Node {
  const OpDef *op;
  Attrs attrs;
  std::vector<ValueId> inputs; ///< data inputs, then the op's parameters (a loss: the labels)
  ValueId output;
  std::string layer; ///< the layer this node comes from, for names and messages
  SourceLoc loc;     ///< where the layer was written
  size_t dataInputs; ///< inputs before the op's parameters; the shape rule sees these
};

class Graph {
public:
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes; ///< in evaluation order
  std::vector<ValueId> outputs;

  /// Adds a value. A computed value whose name is taken (a layer labelled
  /// like the model's input) is renamed `name#2`, `name#3`, …; parameter
  /// names are unique by construction and never renamed.
  ValueId addValue(Value v);
  /// Appends a node applying `op` and returns its output; the shape comes
  /// from the op's shape rule (a failure there is an internal error: the
  /// front end has checked every shape already).
  ValueId apply(const OpDef &op, std::vector<ValueId> inputs, Attrs attrs, std::string layer,
                SourceLoc loc, size_t dataInputs, std::string valueName = "");
  const Value &value(ValueId id) const { return values.at(static_cast<size_t>(id)); }
  /// Renames a computed value, keeping names unique as addValue does.
  void rename(ValueId id, std::string name);
  std::vector<ValueId> params() const; ///< Param values, in creation order

private:
  std::set<std::string> names_;
};

/// Checks the graph's invariants: ids in range, each value produced before
/// it is used, every node's shape equal to its op's rule. Returns "" or a
/// description of the first violation.
std::string verifyGraph(const Graph &graph);

/// `--emit=graph`: one line per value and node.
void printGraph(const Graph &graph, const SourceManager &sources, std::ostream &out);
/// `--emit=dot`: the graph for Graphviz (`dot -Tsvg`): inputs and outputs as
/// ellipses, one box per node with its layer, op, attributes and parameters,
/// edges labelled with the shapes that flow.
void printDot(const Graph &graph, std::ostream &out);

const char *describe(DType dtype);

} // namespace nnc
