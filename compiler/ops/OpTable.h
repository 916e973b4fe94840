// OpTable.h — the op table: one row per op.
//
// A row holds everything the compiler knows about an op: its name, how many
// tensor inputs it takes, its attribute schema, its shape rule and the
// parameters it owns. The front end reads only this table to check a layer;
// later stages add their rules (gradient, lowering) to the same rows, so
// that adding an op means adding one row and its tests.
#pragma once

#include "ops/Attr.h"
#include "ops/Shape.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace nnc_rt {
struct Init;
}

namespace nnc {

/// What kind of thing an op is, for the front end.
enum class OpKind {
  Layer,    ///< a step in a model: dense, relu, …
  Loss,     ///< a loss over the model's output: cross_entropy, mse
  Internal, ///< made by the compiler only (gradient pieces): not usable in .nn files
};

/// A shape rule's complaint; Sema adds the location.
struct ShapeError {
  std::string message;
  std::string hint;
};

/// The inputs a shape rule sees.
struct ShapeQuery {
  const std::vector<Shape> &inputs;
  const Attrs &attrs;
  const std::string &layer; ///< the layer's name, for messages
};

using ShapeResult = std::variant<Shape, ShapeError>;

/// How a parameter starts, as PyTorch initializes it by default.
struct Initializer {
  enum class Kind { Zeros, Ones, Uniform } kind = Kind::Zeros;
  double bound = 0; ///< Uniform: U(-bound, bound)
  std::string str() const;
  /// The same, as the runtime (runtime/Training.h) draws it.
  nnc_rt::Init runtime() const;
};

/// A tensor an op owns, e.g. dense's `weight` [out, in].
struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
  Initializer init;
  bool trainable = true; ///< false for state, like batchnorm's running statistics
};

struct Tensor;

/// What a kernel needs to know beyond its inputs.
struct EvalContext {
  bool training = false; ///< dropout drops, batchnorm uses the batch's statistics
  uint64_t seed = 0;     ///< the program's seed, for dropout and randn
  uint64_t step = 0;     ///< the training step, for dropout's mask
  uint64_t firstExample = 0; ///< where the batch starts in the whole batch, for dropout's mask
};

/// One call of a reference kernel: `out` is allocated with its final shape.
struct KernelCall {
  const std::vector<const Tensor *> &inputs; ///< data inputs, then parameters (or labels)
  const Attrs &attrs;
  const std::string &layer; ///< names the random stream of dropout and randn
  const EvalContext &ctx;
  Tensor &out;
};

/// What a gradient rule sees of the node it differentiates, and how it adds
/// nodes to the graph. Value ids are those of the graph being built.
class GradBuilder {
public:
  virtual ~GradBuilder() = default;
  virtual int input(size_t i) const = 0; ///< data inputs, then parameters (or labels)
  virtual size_t inputCount() const = 0;
  virtual int output() const = 0;
  virtual int outputGrad() const = 0; ///< dL/d(output)
  /// Whether input `i` needs a gradient; rules skip the others.
  virtual bool needs(size_t i) const = 0;
  virtual const Attrs &attrs() const = 0;
  virtual const Shape &shape(int value) const = 0;
  /// Adds a node applying op `name` (all inputs are data inputs).
  virtual int apply(const std::string &name, std::vector<int> inputs, Attrs attrs = {}) = 0;
};

/// A gradient rule: one value per input, dL/d(input), or -1 where the input
/// needs none (or has none, like labels). Written with graph ops, so the
/// backward pass is an ordinary graph.
using GradientRule = std::function<std::vector<int>(GradBuilder &)>;

/// Number of tensor inputs that means "two or more".
constexpr int kVariadic = -1;

struct OpDef {
  std::string name;
  OpKind kind;
  int arity; ///< tensor inputs, or kVariadic
  std::vector<AttrSpec> attrs;
  std::string summary; ///< one line for docs and the REPL
  std::function<ShapeResult(const ShapeQuery &)> inferShape;
  /// Parameters the op owns, in checkpoint order; null when it owns none.
  std::function<std::vector<ParamSpec>(const ShapeQuery &)> params;
  /// The reference kernel (ops/Reference.cpp), in double precision.
  std::function<void(const KernelCall &)> reference;
  /// The gradient rule (ops/Gradients.cpp); null for ops that are never
  /// differentiated (internal gradient pieces) or have no inputs.
  GradientRule gradient;
};

/// Adds the internal ops (ops/InternalOps.cpp) to the table.
void addInternalOps(std::vector<OpDef> &table);
/// Sets every row's gradient rule (ops/Gradients.cpp).
void attachGradients(std::vector<OpDef> &table);

/// Sets every row's reference kernel; called once when the table is built.
void attachReferenceKernels(std::vector<OpDef> &table);

/// The op named `name`, or null. Includes internal ops.
const OpDef *findOp(std::string_view name);
/// The op named `name` if a .nn file may use it (a layer or a loss), or null.
const OpDef *findUserOp(std::string_view name);
/// Every op, in table order.
const std::vector<OpDef> &allOps();
/// Names of every op of `kind`, for "did you mean" hints.
std::vector<std::string> opNames(OpKind kind);

} // namespace nnc
