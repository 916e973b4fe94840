// Lower.cpp — graph IR to loop IR, one loop nest per node. Every reduction
// is a sequential loop, so its order is fixed; every multiply-add that the
// code means to fuse is an explicit Fma.
//
// Lowered so far: the ops of multilayer perceptrons and their activations
// (dense, flatten, reshape, dropout at evaluation, relu, leaky_relu,
// sigmoid, tanh, gelu, neg, add, mul, softmax, log_softmax, zeros, ones). Convolutions,
// pooling, batchnorm and the backward pass come next; canLower() says which
// op stops a graph.
#include "loops/Lower.h"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace nnc::loops {
namespace {

const std::set<std::string> &lowerable() {
  static const std::set<std::string> ops = {
      "dense", "flatten", "reshape", "dropout", "relu", "leaky_relu", "sigmoid", "tanh",
      "gelu",  "neg",     "add",     "mul",     "softmax", "log_softmax", "zeros", "ones"};
  return ops;
}

class Lowerer {
public:
  explicit Lowerer(const Graph &g) : g_(g) {}

  Function run() {
    f_.name = "predict";
    for (size_t i = 0; i < g_.values.size(); ++i) {
      const Value &v = g_.values[i];
      if (v.kind == ValueKind::Input)
        addBuffer(static_cast<ValueId>(i), BufferKind::Input);
    }
    for (size_t i = 0; i < g_.values.size(); ++i) {
      const Value &v = g_.values[i];
      if (v.kind == ValueKind::Param || v.kind == ValueKind::State)
        addBuffer(static_cast<ValueId>(i), BufferKind::Param);
    }
    for (ValueId out : g_.outputs)
      addBuffer(out, BufferKind::Output);
    std::vector<Stmt> body;
    for (const Node &n : g_.nodes) {
      if (!bufferOf_.count(n.output))
        addBuffer(n.output, BufferKind::Temp);
      body.push_back(node(n));
    }
    f_.body = block(std::move(body));
    f_.vars = vars_;
    return f_;
  }

private:
  void addBuffer(ValueId id, BufferKind kind) {
    if (bufferOf_.count(id))
      return;
    const Value &v = g_.value(id);
    int64_t per = 1;
    for (int64_t d : v.shape.dims)
      if (d != kBatch)
        per *= d;
    bufferOf_[id] = static_cast<int>(f_.buffers.size());
    f_.buffers.push_back({v.name, kind, per, v.shape.isBatched()});
  }

  int buf(ValueId id) const { return bufferOf_.at(id); }
  int newVar() { return vars_++; }
  ExprRef idx(int v) const { return var(v, Type::I64); }
  ExprRef scalar(int v) const { return var(v, Type::F32); }

  /// Elements of a value: N·per-example when batched.
  ExprRef extent(ValueId id) const {
    const Buffer &b = f_.buffers[static_cast<size_t>(buf(id))];
    return b.batched ? mul(batch(), i64(b.perExample)) : i64(b.perExample);
  }

  /// out[e] = f(in0[e], in1[e]) over every element.
  Stmt elementwise(const Node &n, const std::function<ExprRef(std::vector<ExprRef>)> &f) {
    int e = newVar();
    std::vector<ExprRef> args;
    for (size_t i = 0; i < n.dataInputs; ++i) {
      ValueId in = n.inputs[i];
      const Buffer &b = f_.buffers[static_cast<size_t>(buf(in))];
      // An unbatched operand of a batched result repeats for every example.
      ExprRef at = idx(e);
      if (!b.batched && g_.value(n.output).shape.isBatched())
        at = binary(BinaryOp::Sub, idx(e),
                    mul(binary(BinaryOp::Div, idx(e), i64(b.perExample)), i64(b.perExample)));
      args.push_back(load(buf(in), at));
    }
    return loop(e, extent(n.output), {store(buf(n.output), idx(e), f(args))});
  }

  Stmt dense(const Node &n) {
    const Shape &x = g_.value(n.inputs[0]).shape;
    int64_t in = x.dims.back(), out = n.attrs.getInt("units");
    bool bias = n.inputs.size() > 2;
    int r = newVar(), o = newVar(), i = newVar(), s = newVar();
    // s = b[o] + Σ_i x[r, i] · W[o, i], summed in order of i
    Stmt inner = loop(i, i64(in),
                      {assign(s, fma(load(buf(n.inputs[0]), add(mul(idx(r), i64(in)), idx(i))),
                                     load(buf(n.inputs[1]), add(mul(idx(o), i64(in)), idx(i))),
                                     scalar(s)))});
    return loop(r, batch(),
                {loop(o, i64(out),
                      {local(s, bias ? load(buf(n.inputs[2]), idx(o)) : f32(0)), inner,
                       store(buf(n.output), add(mul(idx(r), i64(out)), idx(o)), scalar(s))})});
  }

  /// softmax and log_softmax along an axis: the maximum first, then the
  /// sum of exponentials, then the outputs.
  Stmt softmax(const Node &n, bool log) {
    const Shape &s = g_.value(n.inputs[0]).shape;
    int64_t axis = n.attrs.getInt("axis");
    if (axis < 0)
      axis += static_cast<int64_t>(s.rank());
    int64_t len = s.dims[static_cast<size_t>(axis)], inner = 1, outerPer = 1;
    for (size_t d = static_cast<size_t>(axis) + 1; d < s.rank(); ++d)
      inner *= s.dims[d];
    for (size_t d = 0; d < static_cast<size_t>(axis); ++d)
      if (s.dims[d] != kBatch)
        outerPer *= s.dims[d];
    ExprRef outer = s.isBatched() ? mul(batch(), i64(outerPer)) : i64(outerPer);
    int o = newVar(), k = newVar(), i = newVar(), m = newVar(), sum = newVar();
    auto at = [&](ExprRef j) {
      return add(mul(add(mul(idx(o), i64(len)), j), i64(inner)), idx(k));
    };
    ExprRef x = load(buf(n.inputs[0]), at(idx(i)));
    ExprRef shifted = binary(BinaryOp::Sub, x, scalar(m));
    ExprRef value = log ? binary(BinaryOp::Sub, shifted, unary(UnaryOp::Log, scalar(sum)))
                        : binary(BinaryOp::Div, unary(UnaryOp::Exp, shifted), scalar(sum));
    return loop(o, outer,
                {loop(k, i64(inner),
                      {local(m, f32(-INFINITY)),
                       loop(i, i64(len), {assign(m, binary(BinaryOp::Max, scalar(m), x))}),
                       local(sum, f32(0)),
                       loop(i, i64(len),
                            {assign(sum, add(scalar(sum), unary(UnaryOp::Exp, shifted)))}),
                       loop(i, i64(len), {store(buf(n.output), at(idx(i)), value)})})});
  }

  Stmt node(const Node &n) {
    std::string comment = n.layer + " (" + n.op->name + ")";
    const std::string &op = n.op->name;
    Stmt s;
    using Args = std::vector<ExprRef>;
    if (op == "dense")
      s = dense(n);
    else if (op == "flatten" || op == "reshape" || op == "dropout")
      s = elementwise(n, [](Args a) { return a[0]; });
    else if (op == "relu")
      s = elementwise(n, [](Args a) { return binary(BinaryOp::Max, a[0], f32(0)); });
    else if (op == "leaky_relu") {
      double alpha = n.attrs.getFloat("alpha");
      s = elementwise(n, [alpha](Args a) { return select(a[0], a[0], mul(a[0], f32(alpha))); });
    } else if (op == "sigmoid")
      s = elementwise(n, [](Args a) {
        return binary(BinaryOp::Div, f32(1),
                      add(f32(1), unary(UnaryOp::Exp, unary(UnaryOp::Neg, a[0]))));
      });
    else if (op == "tanh")
      s = elementwise(n, [](Args a) { return unary(UnaryOp::Tanh, a[0]); });
    else if (op == "gelu") {
      if (n.attrs.getString("approximate") == "tanh")
        s = elementwise(n, [](Args a) {
          ExprRef x = a[0];
          ExprRef cube = mul(mul(x, x), x);
          ExprRef u = mul(f32(std::sqrt(2.0 / M_PI)), add(x, mul(f32(0.044715), cube)));
          return mul(mul(f32(0.5), x), add(f32(1), unary(UnaryOp::Tanh, u)));
        });
      else
        s = elementwise(n, [](Args a) {
          return mul(mul(f32(0.5), a[0]),
                     add(f32(1), unary(UnaryOp::Erf, mul(a[0], f32(1 / std::sqrt(2.0))))));
        });
    } else if (op == "neg")
      s = elementwise(n, [](Args a) { return unary(UnaryOp::Neg, a[0]); });
    else if (op == "add")
      s = elementwise(n, [](Args a) { return add(a[0], a[1]); });
    else if (op == "mul")
      s = elementwise(n, [](Args a) { return mul(a[0], a[1]); });
    else if (op == "zeros" || op == "ones")
      s = elementwise(n, [&op](Args) { return f32(op == "ones" ? 1.0 : 0.0); });
    else if (op == "softmax" || op == "log_softmax")
      s = softmax(n, op == "log_softmax");
    else
      throw std::logic_error("internal error: cannot lower " + op + " yet");
    return block({std::move(s)}, comment);
  }

  const Graph &g_;
  Function f_;
  std::map<ValueId, int> bufferOf_;
  int vars_ = 0;
};

} // namespace

bool canLower(const Graph &graph, std::string &why) {
  for (const Node &n : graph.nodes)
    if (!lowerable().count(n.op->name)) {
      why = n.op->name;
      return false;
    }
  return true;
}

Function lowerInference(const Graph &graph) { return Lowerer(graph).run(); }

} // namespace nnc::loops
