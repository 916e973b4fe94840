// Gradients.cpp — the gradient rule of every differentiable op, written with
// other ops of the table, so that the backward pass is an ordinary graph
// that gets shape-checked, interpreted and (later) fused like the forward.
//
// Notation: y = op(x, …), dy = dL/dy; each rule returns dL/d(input) for
// every input, or -1 where none is needed.
#include "ops/OpTable.h"

#include <map>
#include <stdexcept>

namespace nnc {
namespace {

constexpr int kNone = -1;

/// An attribute subset, for the internal ops that need only some.
Attrs pick(const Attrs &from, std::initializer_list<const char *> names) {
  Attrs out;
  for (const char *n : names)
    if (from.has(n))
      out.set(n, from.get(n));
  return out;
}

/// If the gradient `g` has a batch axis that `target` (an unbatched operand
/// broadcast over the batch) lacks, sums it away: d/db Σ_n f(a_n + b) = Σ_n.
int reduceTo(GradBuilder &b, int g, int target) {
  if (b.shape(target).rank() == 0 && b.shape(g).rank() > 0) // a scalar broadcast everywhere
    return b.apply("sum_all", {g});
  if (b.shape(g).isBatched() && !b.shape(target).isBatched())
    return b.apply("batch_sum", {g});
  return g;
}

std::vector<int> elementwise(GradBuilder &b, const char *grad, bool fromOutput,
                             Attrs attrs = {}) {
  if (!b.needs(0))
    return {kNone};
  return {b.apply(grad, {b.outputGrad(), fromOutput ? b.output() : b.input(0)}, std::move(attrs))};
}

std::map<std::string, GradientRule> rules() {
  std::map<std::string, GradientRule> r;

  // y = x Wᵀ + b: dx = dy W, dW = Σ_n dyₙᵀ xₙ, db = Σ_n dyₙ
  r["dense"] = [](GradBuilder &b) {
    int dy = b.outputGrad();
    std::vector<int> g(b.inputCount(), kNone);
    if (b.needs(0))
      g[0] = b.apply("matmul", {dy, b.input(1)});
    if (b.needs(1))
      g[1] = b.apply("contract", {dy, b.input(0)});
    if (b.inputCount() > 2 && b.needs(2))
      g[2] = b.apply("batch_sum", {dy});
    return g;
  };
  // Same elements, new shape: the gradient takes the input's shape back.
  auto reshapeBack = [](GradBuilder &b) -> std::vector<int> {
    if (!b.needs(0))
      return {kNone};
    const Shape &s = b.shape(b.input(0));
    std::vector<int64_t> dims =
        s.isBatched() ? std::vector<int64_t>(s.dims.begin() + 1, s.dims.end()) : s.dims;
    Attrs a;
    a.set("shape", AttrValue{dims});
    return {b.apply("reshape", {b.outputGrad()}, a)};
  };
  r["flatten"] = reshapeBack;
  r["reshape"] = reshapeBack;
  // Swapping two axes is its own inverse.
  r["transpose"] = [](GradBuilder &b) -> std::vector<int> {
    if (!b.needs(0))
      return {kNone};
    return {b.apply("transpose", {b.outputGrad()}, pick(b.attrs(), {"dim0", "dim1"}))};
  };
  r["conv2d"] = [](GradBuilder &b) {
    int dy = b.outputGrad();
    Attrs w = pick(b.attrs(), {"kernel", "stride", "padding"});
    std::vector<int> g(b.inputCount(), kNone);
    if (b.needs(0))
      g[0] = b.apply("conv2d_grad_input", {dy, b.input(1), b.input(0)}, w);
    if (b.needs(1))
      g[1] = b.apply("conv2d_grad_weight", {dy, b.input(0), b.input(1)}, w);
    if (b.inputCount() > 2 && b.needs(2))
      g[2] = b.apply("channel_sum", {dy});
    return g;
  };
  auto pool = [](const char *grad) {
    return [grad](GradBuilder &b) -> std::vector<int> {
      if (!b.needs(0))
        return {kNone};
      return {b.apply(grad, {b.outputGrad(), b.input(0)},
                      pick(b.attrs(), {"kernel", "stride", "padding"}))};
    };
  };
  r["maxpool2d"] = pool("maxpool2d_grad");
  r["avgpool2d"] = pool("avgpool2d_grad");
  // batchnorm(x, γ, β, running_mean, running_var): the running statistics
  // are state, not trained.
  r["batchnorm"] = [](GradBuilder &b) {
    int dy = b.outputGrad();
    Attrs eps = pick(b.attrs(), {"eps"});
    std::vector<int> g(b.inputCount(), kNone);
    if (b.needs(0))
      g[0] = b.apply("batchnorm_grad_input",
                     {dy, b.input(0), b.input(1), b.input(3), b.input(4)}, eps);
    if (b.needs(1))
      g[1] = b.apply("batchnorm_grad_weight", {dy, b.input(0), b.input(3), b.input(4)}, eps);
    if (b.needs(2))
      g[2] = b.apply("channel_sum", {dy});
    return g;
  };
  // From the output: relu(x) > 0 exactly where x > 0 (NaN and -0 too), and
  // the output is kept for the layer after anyway, so x need not be: a
  // convolution followed by relu then stores one tensor, not two.
  r["relu"] = [](GradBuilder &b) { return elementwise(b, "relu_grad", true); };
  r["leaky_relu"] = [](GradBuilder &b) {
    return elementwise(b, "leaky_relu_grad", false, pick(b.attrs(), {"alpha"}));
  };
  r["gelu"] = [](GradBuilder &b) {
    return elementwise(b, "gelu_grad", false, pick(b.attrs(), {"approximate"}));
  };
  // d/dx σ(x) = σ(1 - σ), d/dx tanh = 1 - tanh²: from the saved output.
  r["sigmoid"] = [](GradBuilder &b) { return elementwise(b, "sigmoid_grad", true); };
  r["tanh"] = [](GradBuilder &b) { return elementwise(b, "tanh_grad", true); };
  r["softmax"] = [](GradBuilder &b) {
    return elementwise(b, "softmax_grad", true, pick(b.attrs(), {"axis"}));
  };
  r["log_softmax"] = [](GradBuilder &b) {
    return elementwise(b, "log_softmax_grad", true, pick(b.attrs(), {"axis"}));
  };
  // d/dx (-x) = -1
  r["neg"] = [](GradBuilder &b) -> std::vector<int> {
    if (!b.needs(0))
      return {kNone};
    return {b.apply("neg", {b.outputGrad()})};
  };
  // Dropout multiplies by the same mask in both directions: applying the
  // same layer's dropout to dy (same seed, layer and step) reproduces it.
  r["dropout"] = [](GradBuilder &b) -> std::vector<int> {
    if (!b.needs(0))
      return {kNone};
    return {b.apply("dropout", {b.outputGrad()}, pick(b.attrs(), {"p"}))};
  };
  // d/da (a + b) = 1, d/db (a + b) = 1
  r["add"] = [](GradBuilder &b) {
    std::vector<int> g(2, kNone);
    for (size_t i = 0; i < 2; ++i)
      if (b.needs(i))
        g[i] = reduceTo(b, b.outputGrad(), b.input(i));
    return g;
  };
  // d/da (a·b) = b, d/db (a·b) = a
  r["mul"] = [](GradBuilder &b) {
    std::vector<int> g(2, kNone);
    for (size_t i = 0; i < 2; ++i)
      if (b.needs(i))
        g[i] = reduceTo(b, b.apply("mul", {b.outputGrad(), b.input(1 - i)}), b.input(i));
    return g;
  };
  // y = a @ b: da = dy @ bᵀ, db = aᵀ @ dy (summed over the batch when b is
  // one matrix shared by every example)
  r["matmul"] = [](GradBuilder &b) {
    int dy = b.outputGrad(), a = b.input(0), m = b.input(1);
    std::vector<int> g(2, kNone);
    if (b.needs(0))
      g[0] = b.apply("matmul", {dy, b.apply("transpose", {m})});
    if (b.needs(1)) {
      bool shared = b.shape(a).isBatched() && !b.shape(m).isBatched();
      g[1] = shared ? b.apply("contract", {a, dy})
                    : b.apply("matmul", {b.apply("transpose", {a}), dy});
    }
    return g;
  };
  // Each input gets its part of dy back.
  r["concat"] = [](GradBuilder &b) {
    int64_t axis = b.attrs().getInt("axis");
    std::vector<int> g(b.inputCount(), kNone);
    int64_t start = 0;
    for (size_t i = 0; i < b.inputCount(); ++i) {
      const Shape &s = b.shape(b.input(i));
      int64_t a = axis < 0 ? axis + static_cast<int64_t>(s.rank()) : axis;
      int64_t len = s.dims[static_cast<size_t>(a)];
      if (b.needs(i)) {
        Attrs at;
        at.set("axis", AttrValue{a});
        at.set("start", AttrValue{start});
        at.set("length", AttrValue{len});
        g[i] = b.apply("slice", {b.outputGrad()}, at);
      }
      start += len;
    }
    return g;
  };
  // y = Σ_axis x: dx = dy repeated along the axis; the mean divides by its length.
  auto reduce = [](bool mean) {
    return [mean](GradBuilder &b) -> std::vector<int> {
      if (!b.needs(0))
        return {kNone};
      Attrs a = pick(b.attrs(), {"axis"});
      int dx = b.apply("expand_axis", {b.outputGrad(), b.input(0)}, a);
      if (!mean)
        return {dx};
      const Shape &s = b.shape(b.input(0));
      int64_t axis = a.getInt("axis");
      int64_t len = s.dims[static_cast<size_t>(axis < 0 ? axis + static_cast<int64_t>(s.rank()) : axis)];
      Attrs f;
      f.set("factor", AttrValue{1.0 / static_cast<double>(len)});
      return {b.apply("scale", {dx}, f)};
    };
  };
  r["sum"] = reduce(false);
  r["mean"] = reduce(true);
  // Constructors have no inputs.
  for (const char *c : {"randn", "zeros", "ones", "fill"})
    r[c] = [](GradBuilder &) { return std::vector<int>{}; };
  // Losses: labels get no gradient.
  r["cross_entropy"] = [](GradBuilder &b) {
    std::vector<int> g{kNone, kNone};
    if (b.needs(0))
      g[0] = b.apply("cross_entropy_grad", {b.outputGrad(), b.input(0), b.input(1)});
    return g;
  };
  r["mse"] = [](GradBuilder &b) {
    std::vector<int> g{kNone, kNone};
    if (b.needs(0))
      g[0] = b.apply("mse_grad", {b.outputGrad(), b.input(0), b.input(1)});
    return g;
  };
  // L = Σ x: dx = dL everywhere
  r["sum_all"] = [](GradBuilder &b) -> std::vector<int> {
    if (!b.needs(0))
      return {kNone};
    return {b.apply("expand_scalar", {b.outputGrad(), b.input(0)})};
  };
  r["scale"] = [](GradBuilder &b) -> std::vector<int> {
    if (!b.needs(0))
      return {kNone};
    return {b.apply("scale", {b.outputGrad()}, pick(b.attrs(), {"factor"}))};
  };
  return r;
}

} // namespace

void attachGradients(std::vector<OpDef> &table) {
  std::map<std::string, GradientRule> all = rules();
  for (OpDef &op : table) {
    auto it = all.find(op.name);
    if (it != all.end())
      op.gradient = it->second;
    else if (op.kind != OpKind::Internal)
      throw std::logic_error("internal error: op " + op.name + " has no gradient rule");
  }
}

} // namespace nnc
