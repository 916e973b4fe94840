// OpTable.cpp — the rows of the op table.
//
// Shapes carry the batch dimension first (printed N). Rules reject what the
// op cannot take with a message that names the layer, shows the shapes, and
// says what to do instead.
#include "ops/OpTable.h"

namespace nnc {
namespace {

ShapeError error(std::string message, std::string hint = {}) {
  return ShapeError{std::move(message), std::move(hint)};
}

/// Elementwise ops: the output has the input's shape.
ShapeResult sameShape(const ShapeQuery &q) { return q.inputs[0]; }

/// Resolves a possibly negative axis against `rank`, or returns -1.
int64_t normalizeAxis(int64_t axis, size_t rank) {
  int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    return -1;
  return axis < 0 ? axis + r : axis;
}

ShapeResult denseShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  if (in.rank() != 2) {
    std::string hint = in.rank() > 2 ? "insert 'flatten' before it" : "";
    return error(q.layer + " expects one vector per example, [N, features], but gets " + in.str(),
                 hint);
  }
  return Shape{{in.dims[0], q.attrs.getInt("units")}};
}

std::vector<ParamSpec> denseParams(const ShapeQuery &q) {
  int64_t in = q.inputs[0].dims.back(), out = q.attrs.getInt("units");
  std::vector<ParamSpec> params{{"weight", {out, in}}}; // PyTorch's layout: [out, in]
  if (q.attrs.getBool("bias"))
    params.push_back({"bias", {out}});
  return params;
}

ShapeResult flattenShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  if (!in.isBatched() || in.rank() < 2)
    return error(q.layer + " expects a batch of tensors, [N, …], but gets " + in.str());
  std::optional<int64_t> n = in.elementsPerExample();
  if (!n)
    return error(q.layer + " would have more than 2^63 elements per example");
  return Shape{{in.dims[0], *n}};
}

ShapeResult softmaxShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  int64_t axis = q.attrs.getInt("axis");
  int64_t a = normalizeAxis(axis, in.rank());
  if (a < 0)
    return error("axis " + std::to_string(axis) + " is out of range for " + q.layer +
                 "'s input " + in.str());
  if (a == 0 && in.isBatched())
    return error(q.layer + " normalizes across the batch (axis " + std::to_string(axis) + ")",
                 "use axis=-1 to normalize each example's values");
  return in;
}

ShapeResult joinShape(const ShapeQuery &q) {
  const Shape &a = q.inputs[0];
  for (size_t i = 1; i < q.inputs.size(); ++i)
    if (!(q.inputs[i] == a))
      return error(q.layer + " needs inputs of the same shape but gets " + a.str() + " and " +
                   q.inputs[i].str());
  return a;
}

ShapeResult concatShape(const ShapeQuery &q) {
  const Shape &first = q.inputs[0];
  int64_t axis = q.attrs.getInt("axis");
  int64_t a = normalizeAxis(axis, first.rank());
  if (a < 0)
    return error("axis " + std::to_string(axis) + " is out of range for " + q.layer +
                 "'s inputs " + first.str());
  if (a == 0 && first.isBatched())
    return error(q.layer + " cannot join along the batch axis", "use axis=1 or later");
  Shape out = first;
  for (size_t i = 1; i < q.inputs.size(); ++i) {
    const Shape &s = q.inputs[i];
    if (s.rank() != first.rank())
      return error(q.layer + " joins tensors of equal rank but gets " + first.str() + " and " +
                       s.str(),
                   "flatten or reshape one of them first");
    bool ok = true;
    for (size_t d = 0; ok && d < s.rank(); ++d)
      ok = static_cast<int64_t>(d) == a || s.dims[d] == first.dims[d];
    if (!ok)
      return error(q.layer + " joins along axis " + std::to_string(axis) +
                   " and needs every other dimension equal, but gets " + first.str() + " and " +
                   s.str());
    if (__builtin_add_overflow(out.dims[a], s.dims[a], &out.dims[a]))
      return error(q.layer + "'s output is too large");
  }
  return out;
}

ShapeResult matmulShape(const ShapeQuery &q) {
  const Shape &a = q.inputs[0], &b = q.inputs[1];
  if (a.isBatched() && b.isBatched() && (a.rank() < 3 || b.rank() < 3))
    return error(q.layer + " multiplies the last two axes of each example, but " +
                     (a.rank() < 3 ? a : b).str() + " has only one axis per example",
                 "for a learned linear map use dense(…)");
  if (a.rank() < 2 || b.rank() != a.rank())
    return error(q.layer + " multiplies matrices of equal rank (at least 2) but gets " + a.str() +
                 " @ " + b.str());
  size_t r = a.rank();
  for (size_t d = 0; d + 2 < r; ++d)
    if (a.dims[d] != b.dims[d])
      return error(q.layer + " needs equal leading dimensions but gets " + a.str() + " @ " +
                   b.str());
  if (a.dims[r - 1] != b.dims[r - 2])
    return error(q.layer + " needs the inner dimensions to agree but gets " + a.str() + " @ " +
                     b.str(),
                 "the last dimension of the left side must equal the second-to-last of the right");
  Shape out = a;
  out.dims[r - 1] = b.dims[r - 1];
  return out;
}

ShapeResult classLossShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  if (in.rank() != 2 || !in.isBatched()) {
    std::string hint = in.rank() > 2 ? "end the model with 'flatten' and a dense layer" : "";
    return error(q.layer + " expects the model to output one score per class, [N, classes], "
                           "but the model outputs " +
                     in.str(),
                 hint);
  }
  return Shape{{}};
}

std::vector<OpDef> buildTable() {
  std::vector<OpDef> t;
  auto activation = [&](std::string name, std::string summary, std::vector<AttrSpec> attrs = {}) {
    t.push_back({std::move(name), OpKind::Layer, 1, std::move(attrs), std::move(summary),
                 sameShape, nullptr});
  };

  t.push_back({"dense",
               OpKind::Layer,
               1,
               {required(intAttr("units", {}, "output features", atLeast(1))),
                boolAttr("bias", true, "add a learned bias")},
               "fully connected layer: y = x Wᵀ + b",
               denseShape,
               denseParams});
  t.push_back({"flatten", OpKind::Layer, 1, {}, "[N, d1, d2, …] -> [N, d1·d2·…]", flattenShape,
               nullptr});
  activation("relu", "max(x, 0)");
  activation("sigmoid", "1 / (1 + e^-x)");
  activation("tanh", "hyperbolic tangent");
  activation("leaky_relu", "x if x > 0 else alpha·x",
             {floatAttr("alpha", 0.01, "slope for negative inputs", atLeast(0))});
  activation("gelu", "x·Φ(x)",
             {stringAttr("approximate", "none", "'none' (exact, erf) or 'tanh'",
                         {"none", "tanh"})});
  activation("dropout", "zeroes inputs with probability p while training, scales the rest by 1/(1-p)",
             {floatAttr("p", 0.5, "probability of zeroing an input", atLeast(0), below(1))});
  t.push_back({"softmax", OpKind::Layer, 1,
               {intAttr("axis", -1, "the axis that sums to 1")}, "e^x / Σ e^x along an axis",
               softmaxShape, nullptr});
  t.push_back({"log_softmax", OpKind::Layer, 1,
               {intAttr("axis", -1, "the axis to normalize")}, "x - log Σ e^x along an axis",
               softmaxShape, nullptr});
  t.push_back({"add", OpKind::Layer, 2, {}, "elementwise a + b (equal shapes)", joinShape,
               nullptr});
  t.push_back({"mul", OpKind::Layer, 2, {}, "elementwise a · b (equal shapes)", joinShape,
               nullptr});
  t.push_back({"matmul", OpKind::Layer, 2, {}, "matrix product a @ b over the last two axes",
               matmulShape, nullptr});
  activation("neg", "-x");
  t.push_back({"concat", OpKind::Layer, kVariadic,
               {intAttr("axis", 1, "the axis to join along")}, "joins tensors along an axis",
               concatShape, nullptr});

  t.push_back({"cross_entropy", OpKind::Loss, 1, {},
               "softmax cross-entropy of logits [N, C] against integer labels, averaged",
               classLossShape, nullptr});
  t.push_back({"mse", OpKind::Loss, 1, {},
               "mean squared error of outputs [N, C] against one-hot labels, averaged",
               classLossShape, nullptr});
  return t;
}

} // namespace

const std::vector<OpDef> &allOps() {
  static const std::vector<OpDef> table = buildTable();
  return table;
}

const OpDef *findOp(std::string_view name) {
  for (const OpDef &op : allOps())
    if (op.name == name)
      return &op;
  return nullptr;
}

std::vector<std::string> opNames(OpKind kind) {
  std::vector<std::string> names;
  for (const OpDef &op : allOps())
    if (op.kind == kind)
      names.push_back(op.name);
  return names;
}

} // namespace nnc
