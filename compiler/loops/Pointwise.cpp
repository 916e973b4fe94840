// Pointwise.cpp — how each node lowers (alias, pointwise or root), and the
// scalar expression of every pointwise op: activations and their
// derivatives, the arithmetic of optimizers and schedules, broadcasts,
// transpose and slice.
#include "loops/Lowering.h"

#include "Random.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

namespace nnc::loops::detail {
namespace {

const std::set<std::string> &pointwiseOps() {
  static const std::set<std::string> ops = {
      "relu",      "leaky_relu",    "sigmoid",    "tanh",      "gelu",         "neg",
      "add",       "mul",           "sub",        "div",       "minimum",      "sqrt",
      "floor",     "cos",           "pow_of",     "scale",     "fill",         "zeros",
      "ones",      "expand_scalar", "expand_axis", "relu_grad", "leaky_relu_grad",
      "gelu_grad", "sigmoid_grad",  "tanh_grad",  "transpose", "slice",        "randn"};
  return ops;
}

const std::set<std::string> &rootOps() {
  static const std::set<std::string> ops = {
      "dense",          "conv2d",           "maxpool2d",          "avgpool2d",
      "batchnorm",      "softmax",          "log_softmax",        "sum",
      "mean",           "matmul",           "concat",             "cross_entropy",
      "mse",            "sum_all",          "batch_sum",          "channel_sum",
      "contract",       "softmax_grad",     "log_softmax_grad",   "conv2d_grad_input",
      "conv2d_grad_weight", "maxpool2d_grad", "avgpool2d_grad",   "batchnorm_grad_input",
      "batchnorm_grad_weight", "cross_entropy_grad", "channel_mean", "channel_var",
      "mse_grad"};
  return ops;
}

ExprRef sub(ExprRef a, ExprRef b) { return binary(BinaryOp::Sub, std::move(a), std::move(b)); }
ExprRef div(ExprRef a, ExprRef b) { return binary(BinaryOp::Div, std::move(a), std::move(b)); }

/// a mod m for non-negative i64 indices.
ExprRef mod(ExprRef a, int64_t m) { return sub(a, mul(div(a, i64(m)), i64(m))); }

int64_t normalizedAxis(int64_t axis, size_t rank) {
  return axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
}

/// Row-major strides of `dims`; the first axis's size (perhaps N) is never needed.
std::vector<int64_t> strides(const std::vector<int64_t> &dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (size_t k = dims.size(); k-- > 1;)
    st[k - 1] = st[k] * dims[k];
  return st;
}

bool sameExtent(const Value &a, const Value &b) {
  return a.shape.isBatched() == b.shape.isBatched() && perExample(a) == perExample(b);
}

/// Where an elementwise op reads input `k` for output index `at`: the same
/// index, the one element of a scalar, or the repeating unbatched operand of
/// a batched result.
ExprRef broadcastIndex(const Graph &g, const Node &n, size_t k, ExprRef at) {
  const Value &in = g.value(n.inputs[k]), &out = g.value(n.output);
  if (sameExtent(in, out))
    return at;
  if (perExample(in) == 1 && !in.shape.isBatched())
    return i64(0);
  return mod(at, perExample(in));
}

double geluCoefficient() { return std::sqrt(2.0 / M_PI); }

} // namespace

int64_t perExample(const Value &value) {
  int64_t per = 1;
  for (int64_t d : value.shape.dims)
    if (d != kBatch)
      per *= d;
  return per;
}

NodeKind kindOf(const Node &node, bool training) {
  const std::string &op = node.op->name;
  if (op == "flatten" || op == "reshape")
    return NodeKind::Alias;
  if (op == "dropout")
    return training && node.attrs.getFloat("p") > 0 ? NodeKind::Pointwise : NodeKind::Alias;
  if (op == "fill" || op == "zeros" || op == "ones")
    return NodeKind::Constant;
  if (pointwiseOps().count(op))
    return NodeKind::Pointwise;
  return NodeKind::Root;
}

bool lowerable(const Graph &graph, const Node &node, bool training, std::string &why) {
  const std::string &op = node.op->name;
  if (op == "dropout" && training && node.attrs.getFloat("p") > 0 &&
      std::none_of(graph.values.begin(), graph.values.end(),
                   [](const Value &v) { return v.name == kStepName; })) {
    why = "dropout while training without a step number";
    return false;
  }
  if (op == "flatten" || op == "reshape" || op == "dropout" || pointwiseOps().count(op) ||
      rootOps().count(op))
    return true;
  why = op;
  return false;
}

bool readsInput(const Node &n, size_t input) {
  const std::string &op = n.op->name;
  return !(input == 1 && (op == "expand_scalar" || op == "expand_axis"));
}

bool readsOwnIndex(const Graph &g, const Node &n, size_t input) {
  const std::string &op = n.op->name;
  if (op == "transpose" || op == "slice" || op == "expand_axis" || op == "expand_scalar")
    return false;
  return sameExtent(g.value(n.inputs[input]), g.value(n.output));
}

ExprRef pointwise(const Node &n, Context &c, ExprRef at, const Reader &read) {
  const Graph &g = c.graph();
  const std::string &op = n.op->name;
  // Input k at the elementwise (broadcast) index.
  auto in = [&](size_t k) {
    return read(k, broadcastIndex(g, n, k, at), readsOwnIndex(g, n, k));
  };
  if (op == "relu")
    return binary(BinaryOp::Max, in(0), f32(0));
  if (op == "leaky_relu") {
    ExprRef x = in(0);
    return select(x, x, mul(x, f32(n.attrs.getFloat("alpha"))));
  }
  if (op == "sigmoid")
    return div(f32(1), add(f32(1), unary(UnaryOp::Exp, unary(UnaryOp::Neg, in(0)))));
  if (op == "tanh")
    return unary(UnaryOp::Tanh, in(0));
  if (op == "gelu") {
    ExprRef x = in(0);
    if (n.attrs.getString("approximate") == "tanh") {
      ExprRef u = mul(f32(geluCoefficient()), add(x, mul(f32(0.044715), mul(mul(x, x), x))));
      return mul(mul(f32(0.5), x), add(f32(1), unary(UnaryOp::Tanh, u)));
    }
    return mul(mul(f32(0.5), x), add(f32(1), unary(UnaryOp::Erf, mul(x, f32(1 / std::sqrt(2.0))))));
  }
  if (op == "neg")
    return unary(UnaryOp::Neg, in(0));
  if (op == "add")
    return add(in(0), in(1));
  if (op == "mul")
    return mul(in(0), in(1));
  if (op == "sub")
    return sub(in(0), in(1));
  if (op == "div")
    return div(in(0), in(1));
  if (op == "minimum")
    return binary(BinaryOp::Min, in(0), in(1));
  if (op == "sqrt")
    return unary(UnaryOp::Sqrt, in(0));
  if (op == "floor")
    return unary(UnaryOp::Floor, in(0));
  if (op == "cos")
    return unary(UnaryOp::Cos, in(0));
  if (op == "pow_of")
    return binary(BinaryOp::Pow, f32(n.attrs.getFloat("base")), in(0));
  if (op == "scale")
    return mul(in(0), f32(n.attrs.getFloat("factor")));
  if (op == "fill")
    return f32(n.attrs.getFloat("value"));
  if (op == "zeros" || op == "ones")
    return f32(op == "ones" ? 1.0 : 0.0);
  if (op == "expand_scalar")
    return read(0, i64(0), false);
  if (op == "expand_axis") { // x[o, s] for output [o, i, s]
    const Shape &like = g.value(n.inputs[1]).shape;
    int64_t axis = normalizedAxis(n.attrs.getInt("axis"), like.rank());
    int64_t len = like.dims[static_cast<size_t>(axis)], inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < like.rank(); ++d)
      inner *= like.dims[d];
    ExprRef o = div(at, i64(len * inner));
    return read(0, add(mul(o, i64(inner)), mod(at, inner)), false);
  }
  if (op == "dropout") { // kept with probability 1 - p, scaled by 1/(1-p)
    double p = n.attrs.getFloat("p");
    // kernels::dropoutIndex, of the element's index in the whole batch
    ExprRef index = at;
    if (ExprRef first = c.firstExample())
      index = add(mul(first, i64(perExample(g.value(n.output)))), at);
    ExprRef counter = add(mul(c.step(), i64(int64_t(1) << 40)), index);
    ExprRef u = uniform(c.seed(), nnc_rt::streamId("dropout/" + n.layer), counter);
    return select(sub(f32(p), u), f32(0), div(in(0), f32(1 - p)));
  }
  if (op == "randn") { // Box–Muller from two uniforms per element, as Reference.cpp
    uint64_t stream = nnc_rt::streamId("randn/" + n.layer);
    ExprRef u1 = uniform(c.seed(), stream, mul(at, i64(2)));
    ExprRef u2 = uniform(c.seed(), stream, add(mul(at, i64(2)), i64(1)));
    ExprRef radius = unary(UnaryOp::Sqrt, mul(f32(-2), unary(UnaryOp::Log, sub(f32(1), u1))));
    return mul(radius, unary(UnaryOp::Cos, mul(f32(6.283185307179586), u2)));
  }
  if (op == "relu_grad")
    return select(in(1), in(0), f32(0));
  if (op == "leaky_relu_grad") {
    ExprRef dy = in(0);
    return select(in(1), dy, mul(dy, f32(n.attrs.getFloat("alpha"))));
  }
  if (op == "sigmoid_grad") {
    ExprRef y = in(1);
    return mul(mul(in(0), y), sub(f32(1), y));
  }
  if (op == "tanh_grad") {
    ExprRef y = in(1);
    return mul(in(0), sub(f32(1), mul(y, y)));
  }
  if (op == "gelu_grad") {
    ExprRef dy = in(0), x = in(1);
    if (n.attrs.getString("approximate") == "tanh") {
      // d/dx 0.5x(1 + tanh(u)), u = c(x + 0.044715x³)
      double k = geluCoefficient();
      ExprRef t = unary(UnaryOp::Tanh,
                        mul(f32(k), add(x, mul(f32(0.044715), mul(mul(x, x), x)))));
      ExprRef du = mul(f32(k), add(f32(1), mul(f32(3 * 0.044715), mul(x, x))));
      return mul(dy, add(mul(f32(0.5), add(f32(1), t)),
                         mul(mul(mul(f32(0.5), x), sub(f32(1), mul(t, t))), du)));
    }
    // d/dx xΦ(x) = Φ(x) + xφ(x)
    ExprRef cdf = mul(f32(0.5), add(f32(1), unary(UnaryOp::Erf, mul(x, f32(1 / std::sqrt(2.0))))));
    ExprRef pdf = mul(unary(UnaryOp::Exp, mul(f32(-0.5), mul(x, x))),
                      f32(1 / std::sqrt(2 * M_PI)));
    return mul(dy, add(cdf, mul(x, pdf)));
  }
  if (op == "transpose") { // the output's coordinates, two swapped, index the input
    const Shape &xs = g.value(n.inputs[0]).shape;
    size_t rank = xs.rank();
    size_t a0 = static_cast<size_t>(normalizedAxis(n.attrs.getInt("dim0"), rank));
    size_t a1 = static_cast<size_t>(normalizedAxis(n.attrs.getInt("dim1"), rank));
    std::vector<int64_t> outDims = xs.dims;
    std::swap(outDims[a0], outDims[a1]);
    std::vector<int64_t> in = strides(xs.dims), out = strides(outDims);
    std::vector<ExprRef> coord(rank);
    for (size_t k = 0; k < rank; ++k) {
      ExprRef q = div(at, i64(out[k]));
      coord[k] = k == 0 ? q : mod(q, outDims[k]);
    }
    std::swap(coord[a0], coord[a1]);
    ExprRef source = i64(0);
    for (size_t k = 0; k < rank; ++k)
      source = add(source, mul(coord[k], i64(in[k])));
    return read(0, source, false);
  }
  if (op == "slice") {
    const Shape &ts = g.value(n.inputs[0]).shape;
    int64_t axis = normalizedAxis(n.attrs.getInt("axis"), ts.rank());
    int64_t start = n.attrs.getInt("start"), len = n.attrs.getInt("length");
    int64_t total = ts.dims[static_cast<size_t>(axis)], inner = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < ts.rank(); ++d)
      inner *= ts.dims[d];
    ExprRef o = div(at, i64(len * inner)), i = mod(div(at, i64(inner)), len);
    return read(0, add(mul(add(mul(o, i64(total)), add(i64(start), i)), i64(inner)), mod(at, inner)),
                false);
  }
  throw std::logic_error("internal error: " + op + " is not pointwise");
}

} // namespace nnc::loops::detail
