// OpTable.cpp — the rows of the op table.
//
// Shapes carry the batch dimension first (printed N). Rules reject what the
// op cannot take with a message that names the layer, shows the shapes, and
// says what to do instead.
#include "ops/OpTable.h"

#include "Training.h"

#include <cmath>
#include <tuple>

#include <fmt/format.h>

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

/// PyTorch's default for Linear and Conv2d, weight and bias alike:
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)).
Initializer fanIn(int64_t fanIn) {
  return {Initializer::Kind::Uniform, 1.0 / std::sqrt(static_cast<double>(fanIn))};
}

std::vector<ParamSpec> denseParams(const ShapeQuery &q) {
  int64_t in = q.inputs[0].dims.back(), out = q.attrs.getInt("units");
  std::vector<ParamSpec> params{{"weight", {out, in}, fanIn(in)}}; // PyTorch's layout: [out, in]
  if (q.attrs.getBool("bias"))
    params.push_back({"bias", {out}, fanIn(in)});
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

/// The non-batch dimensions of `s`.
std::vector<int64_t> perExample(const Shape &s) {
  return s.isBatched() ? std::vector<int64_t>(s.dims.begin() + 1, s.dims.end()) : s.dims;
}

/// add, mul: equal shapes, or a batch and one unbatched tensor shaped like
/// one example of it (a constant shared by every example).
/// sum and mean over one axis (not the batch): the axis goes away.
ShapeResult reduceShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  int64_t axis = q.attrs.getInt("axis");
  int64_t a = normalizeAxis(axis, in.rank());
  if (a < 0)
    return error("axis " + std::to_string(axis) + " is out of range for " + q.layer +
                 "'s input " + in.str());
  if (a == 0 && in.isBatched())
    return error(q.layer + " cannot reduce the batch axis", "the loss averages over the batch");
  Shape out = in;
  out.dims.erase(out.dims.begin() + a);
  return out;
}

ShapeResult joinShape(const ShapeQuery &q) {
  const Shape &a = q.inputs[0], &b = q.inputs[1];
  if (a == b || b.rank() == 0) // a scalar multiplies or shifts everything
    return a;
  if (a.rank() == 0)
    return b;
  if (a.isBatched() != b.isBatched() && perExample(a) == perExample(b))
    return a.isBatched() ? a : b;
  std::string hint;
  if (a.isBatched() != b.isBatched())
    hint = "a tensor without a batch axis is shared by every example and must have the shape "
           "of one example, " +
           Shape{perExample(a.isBatched() ? a : b)}.str();
  return error(q.layer + " needs inputs of the same shape but gets " + a.str() + " and " +
                   b.str(),
               hint);
}

/// Reads a 2-D window attribute: `3` means 3×3, `[3, 5]` means 3×5.
std::optional<std::pair<int64_t, int64_t>> pair2(const ShapeQuery &q, const char *name,
                                                 int64_t min, ShapeError &err) {
  const std::vector<int64_t> &v = q.attrs.getIntList(name);
  if (v.empty() || v.size() > 2) {
    err = error(q.layer + "'s " + name + " must be one number or two, [height, width]");
    return std::nullopt;
  }
  int64_t h = v[0], w = v.size() == 2 ? v[1] : v[0];
  if (h < min || w < min) {
    err = error(q.layer + "'s " + name + " must be at least " + std::to_string(min) + " but is " +
                q.attrs.get(name).str());
    return std::nullopt;
  }
  return std::make_pair(h, w);
}

std::string hw(int64_t h, int64_t w) { return std::to_string(h) + "×" + std::to_string(w); }

/// The window geometry shared by convolution and pooling: [N, C, H, W] in,
/// kernel, stride and padding out of the attributes, the output size.
struct Window {
  int64_t channels, height, width;
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t outHeight, outWidth;
};

std::variant<Window, ShapeError> window(const ShapeQuery &q, const std::string &strideName) {
  const Shape &in = q.inputs[0];
  if (!in.isBatched() || in.rank() != 4) {
    std::string hint = in.isBatched() && in.rank() == 3
                           ? "give the input a channel axis, e.g. x: [1, 28, 28]"
                       : in.isBatched() && in.rank() == 2
                           ? "reshape the vector into an image first, e.g. reshape(1, 28, 28)"
                           : "";
    return error(q.layer + " expects images, [N, channels, height, width], but gets " +
                     in.str(),
                 hint);
  }
  Window w{in.dims[1], in.dims[2], in.dims[3], 0, 0, 0, 0, 0, 0, 0, 0};
  ShapeError err;
  auto kernel = pair2(q, "kernel", 1, err);
  if (!kernel)
    return err;
  std::tie(w.kh, w.kw) = *kernel;
  if (q.attrs.has(strideName)) {
    auto stride = pair2(q, strideName.c_str(), 1, err);
    if (!stride)
      return err;
    std::tie(w.sh, w.sw) = *stride;
  } else { // pooling: the stride defaults to the kernel, as in PyTorch
    w.sh = w.kh;
    w.sw = w.kw;
  }
  auto padding = pair2(q, "padding", 0, err);
  if (!padding)
    return err;
  std::tie(w.ph, w.pw) = *padding;
  int64_t paddedH = w.height + 2 * w.ph, paddedW = w.width + 2 * w.pw;
  if (w.kh > paddedH || w.kw > paddedW) {
    std::string padded = w.ph || w.pw ? " (" + hw(paddedH, paddedW) + " after padding)" : "";
    return error("kernel " + hw(w.kh, w.kw) + " is larger than the " + hw(w.height, w.width) +
                     " input of " + q.layer + padded,
                 "use a smaller kernel, add padding, or downsample less before it");
  }
  w.outHeight = (paddedH - w.kh) / w.sh + 1;
  w.outWidth = (paddedW - w.kw) / w.sw + 1;
  return w;
}

ShapeResult conv2dShape(const ShapeQuery &q) {
  auto w = window(q, "stride");
  if (auto *err = std::get_if<ShapeError>(&w))
    return *err;
  const Window &g = std::get<Window>(w);
  return Shape::batched({q.attrs.getInt("out"), g.outHeight, g.outWidth});
}

std::vector<ParamSpec> conv2dParams(const ShapeQuery &q) {
  const Window g = std::get<Window>(window(q, "stride"));
  int64_t out = q.attrs.getInt("out");
  Initializer init = fanIn(g.channels * g.kh * g.kw);
  std::vector<ParamSpec> params{{"weight", {out, g.channels, g.kh, g.kw}, init}}; // OIHW
  if (q.attrs.getBool("bias"))
    params.push_back({"bias", {out}, init});
  return params;
}

ShapeResult poolShape(const ShapeQuery &q) {
  auto w = window(q, "stride");
  if (auto *err = std::get_if<ShapeError>(&w))
    return *err;
  const Window &g = std::get<Window>(w);
  if (2 * g.ph > g.kh || 2 * g.pw > g.kw)
    return error(q.layer + "'s padding may be at most half its kernel, but padding " +
                     hw(g.ph, g.pw) + " is more than half of kernel " + hw(g.kh, g.kw),
                 "PyTorch refuses this too: pad less or use a larger kernel");
  return Shape::batched({g.channels, g.outHeight, g.outWidth});
}

ShapeResult batchnormShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  if (!in.isBatched() || in.rank() < 2 || in.rank() > 4)
    return error(q.layer + " expects [N, C], [N, C, L] or [N, C, H, W] but gets " + in.str());
  return in;
}

std::vector<ParamSpec> batchnormParams(const ShapeQuery &q) {
  int64_t c = q.inputs[0].dims[1];
  Initializer zeros{Initializer::Kind::Zeros, 0}, ones{Initializer::Kind::Ones, 0};
  return {{"weight", {c}, ones},
          {"bias", {c}, zeros},
          {"running_mean", {c}, zeros, false},
          {"running_var", {c}, ones, false}};
}

ShapeResult reshapeShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  std::vector<int64_t> target = q.attrs.getIntList("shape");
  std::optional<int64_t> have = in.elementsPerExample();
  int inferred = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1 && inferred < 0) {
      inferred = static_cast<int>(i);
    } else if (target[i] < 1) {
      return error(q.layer + "'s shape may have positive sizes and one -1, but has " +
                   q.attrs.get("shape").str());
    } else if (__builtin_mul_overflow(known, target[i], &known)) {
      return error(q.layer + "'s shape is too large");
    }
  }
  if (inferred >= 0) {
    if (*have % known != 0)
      return error(q.layer + " cannot split " + std::to_string(*have) + " elements into " +
                   q.attrs.get("shape").str());
    target[static_cast<size_t>(inferred)] = *have / known;
    known = *have;
  }
  if (known != *have)
    return error(q.layer + " cannot turn " + in.str() + " (" + std::to_string(*have) +
                     " elements per example) into " + q.attrs.get("shape").str() + " (" +
                     std::to_string(known) + ")",
                 "the shape is per example; the batch axis stays in front");
  return in.isBatched() ? Shape::batched(target) : Shape{target};
}

ShapeResult transposeShape(const ShapeQuery &q) {
  const Shape &in = q.inputs[0];
  int64_t a = normalizeAxis(q.attrs.getInt("dim0"), in.rank());
  int64_t b = normalizeAxis(q.attrs.getInt("dim1"), in.rank());
  for (const char *dim : {"dim0", "dim1"})
    if (normalizeAxis(q.attrs.getInt(dim), in.rank()) < 0) {
      int64_t r = static_cast<int64_t>(in.rank());
      return error(std::string(dim) + "=" + std::to_string(q.attrs.getInt(dim)) +
                       " is out of range for " + q.layer + "'s input " + in.str(),
                   "axes run from " + std::to_string(-r) + " to " + std::to_string(r - 1));
    }
  if (in.isBatched() && (a == 0 || b == 0))
    return error(q.layer + " cannot move the batch axis", "swap axes 1 and later");
  Shape out = in;
  std::swap(out.dims[static_cast<size_t>(a)], out.dims[static_cast<size_t>(b)]);
  return out;
}

/// randn, zeros, ones: a constant tensor of the given shape, not batched.
ShapeResult constructorShape(const ShapeQuery &q) {
  const std::vector<int64_t> &shape = q.attrs.getIntList("shape");
  if (shape.empty())
    return error(q.layer + " needs a shape, e.g. " + q.layer + "(2, 3)");
  for (int64_t d : shape)
    if (d < 1)
      return error("the dimensions of " + q.layer + " must be at least 1 but are " +
                   q.attrs.get("shape").str());
  if (!product(shape))
    return error(q.layer + "'s shape is too large");
  return Shape{shape};
}

ShapeResult concatShape(const ShapeQuery &q) {
  const Shape &first = q.inputs[0];
  for (const Shape &s : q.inputs)
    if (s.isBatched() != first.isBatched())
      return error(q.layer + " joins a batch with a tensor that has no batch axis: " +
                       first.str() + " and " + s.str(),
                   "every input of concat must be a batch, or none");
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
  if (a.isBatched() && !b.isBatched() && b.rank() == 2 && a.rank() >= 2) {
    // A batch times one shared matrix: [N, …, k] @ [k, n] -> [N, …, n].
    if (a.dims.back() != b.dims[0])
      return error(q.layer + " needs the inner dimensions to agree but gets " + a.str() + " @ " +
                       b.str(),
                   "the last dimension of the left side must equal the first of the right");
    Shape out = a;
    out.dims.back() = b.dims[1];
    return out;
  }
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
  t.push_back({"conv2d",
               OpKind::Layer,
               1,
               {required(intAttr("out", {}, "output channels", atLeast(1))),
                required(windowAttr("kernel", {}, "kernel size: k or [kh, kw]", 1)),
                windowAttr("stride", std::vector<int64_t>{1}, "step: s or [sh, sw]", 1),
                windowAttr("padding", std::vector<int64_t>{0}, "zeros added on each side", 0),
                boolAttr("bias", true, "add a learned bias per output channel")},
               "2-D convolution (cross-correlation) of [N, C, H, W], as torch.nn.Conv2d",
               conv2dShape,
               conv2dParams});
  auto pool = [&](std::string name, std::string summary) {
    t.push_back({std::move(name),
                 OpKind::Layer,
                 1,
                 {required(windowAttr("kernel", {}, "window size: k or [kh, kw]", 1)),
                  optional(windowAttr("stride", {}, "step (default: the kernel)", 1)),
                  windowAttr("padding", std::vector<int64_t>{0}, "padding on each side", 0)},
                 std::move(summary),
                 poolShape,
                 nullptr});
  };
  pool("maxpool2d", "largest value in each window, as torch.nn.MaxPool2d");
  pool("avgpool2d", "mean of each window (padding counts as zeros), as torch.nn.AvgPool2d");
  t.push_back({"batchnorm",
               OpKind::Layer,
               1,
               {floatAttr("momentum", 0.1, "weight of the newest batch in the running statistics",
                          atLeast(0), atMost(1)),
                floatAttr("eps", 1e-5, "added to the variance", above(0))},
               "batch normalization over the channel axis, as torch.nn.BatchNorm1d/2d",
               batchnormShape,
               batchnormParams});
  t.push_back({"reshape", OpKind::Layer, 1,
               {required(intListAttr("shape", {}, "the new shape of one example; one -1 is inferred"))},
               "same elements, new per-example shape", reshapeShape, nullptr});
  t.push_back({"transpose", OpKind::Layer, 1,
               {intAttr("dim0", -2, "first axis to swap"), intAttr("dim1", -1, "second axis to swap")},
               "swaps two axes", transposeShape, nullptr});
  auto constructor = [&](std::string name, std::string summary) {
    t.push_back({std::move(name), OpKind::Layer, 0,
                 {required(intListAttr("shape", {}, "the tensor's shape"))}, std::move(summary),
                 constructorShape, nullptr});
  };
  constructor("randn", "a tensor of standard normal samples: randn(2, 3)");
  constructor("zeros", "a tensor of zeros: zeros(2, 3)");
  constructor("ones", "a tensor of ones: ones(2, 3)");
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
  t.push_back({"sum", OpKind::Layer, 1, {intAttr("axis", -1, "the axis to add up")},
               "the sum along an axis, which goes away", reduceShape, nullptr});
  t.push_back({"mean", OpKind::Layer, 1, {intAttr("axis", -1, "the axis to average")},
               "the mean along an axis, which goes away", reduceShape, nullptr});
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
  attachReferenceKernels(t);
  addInternalOps(t);
  attachGradients(t);
  return t;
}

} // namespace

nnc_rt::Init Initializer::runtime() const {
  nnc_rt::Init init;
  init.bound = bound;
  switch (kind) {
  case Kind::Zeros:
    init.kind = nnc_rt::Init::Kind::Zeros;
    break;
  case Kind::Ones:
    init.kind = nnc_rt::Init::Kind::Ones;
    break;
  case Kind::Uniform:
    init.kind = nnc_rt::Init::Kind::Uniform;
    break;
  }
  return init;
}

std::string Initializer::str() const {
  switch (kind) {
  case Kind::Zeros:
    return "zeros";
  case Kind::Ones:
    return "ones";
  case Kind::Uniform:
    return fmt::format("uniform(±{:.6g})", bound);
  }
  return "?";
}

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

const OpDef *findUserOp(std::string_view name) {
  const OpDef *op = findOp(name);
  return op != nullptr && op->kind != OpKind::Internal ? op : nullptr;
}

std::vector<std::string> opNames(OpKind kind) {
  std::vector<std::string> names;
  for (const OpDef &op : allOps())
    if (op.kind == kind)
      names.push_back(op.name);
  return names;
}

} // namespace nnc
