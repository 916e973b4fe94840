// Lower.cpp — graph IR to loop IR, one loop nest per node. Every reduction
// is a sequential loop, so its order is fixed; every multiply-add that the
// code means to fuse is an explicit Fma.
//
// Lowered so far: every forward op at evaluation (dropout is the identity,
// batchnorm uses its running statistics) except randn; the backward pass and
// the optimizer come next. canLower() says which op stops a graph.
#include "loops/Lower.h"

#include "ops/Kernels.h"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace nnc::loops {
namespace {

const std::set<std::string> &lowerable() {
  static const std::set<std::string> ops = {
      "dense", "flatten", "reshape", "dropout", "relu", "leaky_relu", "sigmoid", "tanh",
      "gelu",  "neg",     "add",     "mul",     "softmax", "log_softmax", "zeros", "ones",
      "conv2d", "maxpool2d", "avgpool2d", "batchnorm", "transpose", "concat", "matmul"};
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

  /// The valid taps of a window along one axis: for output position `o`,
  /// kernel offsets p with 0 <= o·stride - pad + p < size. Returns the first
  /// offset and how many there are, so that padding costs no test per tap.
  std::pair<ExprRef, ExprRef> taps(ExprRef o, int64_t stride, int64_t pad, int64_t kernel,
                                   int64_t size) {
    ExprRef start = binary(BinaryOp::Sub, i64(pad), mul(o, i64(stride)));
    ExprRef lo = binary(BinaryOp::Max, i64(0), start);
    ExprRef hi = binary(BinaryOp::Min, i64(kernel), add(start, i64(size)));
    return {lo, binary(BinaryOp::Max, i64(0), binary(BinaryOp::Sub, hi, lo))};
  }

  /// conv2d and pooling: for each output position, a reduction over the
  /// valid taps of its window (and the channels, for conv2d), in a fixed order.
  Stmt windowed(const Node &n, const std::string &kind) {
    const Shape &xs = g_.value(n.inputs[0]).shape, &ys = g_.value(n.output).shape;
    int64_t c = xs.dims[1], h = xs.dims[2], w = xs.dims[3];
    int64_t oc = ys.dims[1], oh = ys.dims[2], ow = ys.dims[3];
    kernels::Geometry g = kernels::geometry(n.attrs);
    bool conv = kind == "conv2d";
    int b = newVar(), f = newVar(), i = newVar(), j = newVar(), ch = newVar(), p = newVar(),
        q = newVar(), s = newVar();
    auto [plo, pn] = taps(idx(i), g.sh, g.ph, g.kh, h);
    auto [qlo, qn] = taps(idx(j), g.sw, g.pw, g.kw, w);
    ExprRef kp = add(plo, idx(p)), kq = add(qlo, idx(q));
    ExprRef y = add(binary(BinaryOp::Sub, mul(idx(i), i64(g.sh)), i64(g.ph)), kp);
    ExprRef xcol = add(binary(BinaryOp::Sub, mul(idx(j), i64(g.sw)), i64(g.pw)), kq);
    ExprRef channel = conv ? idx(ch) : idx(f);
    ExprRef xv = load(buf(n.inputs[0]),
                      add(mul(add(mul(add(mul(idx(b), i64(c)), channel), i64(h)), y), i64(w)),
                          xcol));
    ExprRef update;
    if (conv) {
      ExprRef wv = load(buf(n.inputs[1]),
                        add(mul(add(mul(add(mul(idx(f), i64(c)), idx(ch)), i64(g.kh)), kp),
                                i64(g.kw)),
                            kq));
      update = fma(xv, wv, scalar(s));
    } else if (kind == "maxpool2d") {
      update = binary(BinaryOp::Max, scalar(s), xv);
    } else {
      update = add(scalar(s), xv);
    }
    Stmt window2 = loop(p, pn, {loop(q, qn, {assign(s, update)})});
    ExprRef init = conv ? (n.inputs.size() > 2 ? load(buf(n.inputs[2]), idx(f)) : f32(0))
                        : (kind == "maxpool2d" ? f32(-INFINITY) : f32(0));
    ExprRef result = kind == "avgpool2d"
                         ? binary(BinaryOp::Div, scalar(s), f32(static_cast<double>(g.kh * g.kw)))
                         : scalar(s);
    std::vector<Stmt> body{local(s, init)};
    body.push_back(conv ? loop(ch, i64(c), {window2}) : window2);
    body.push_back(store(
        buf(n.output),
        add(mul(add(mul(add(mul(idx(b), i64(oc)), idx(f)), i64(oh)), idx(i)), i64(ow)), idx(j)),
        result));
    return loop(b, batch(),
                {loop(f, i64(oc), {loop(i, i64(oh), {loop(j, i64(ow), std::move(body))})})});
  }

  /// batchnorm when evaluating: (x - running_mean) · γ / sqrt(running_var + eps) + β.
  Stmt batchnormEval(const Node &n) {
    const Shape &xs = g_.value(n.inputs[0]).shape;
    int64_t c = xs.dims[1], inner = 1;
    for (size_t d = 2; d < xs.rank(); ++d)
      inner *= xs.dims[d];
    double eps = n.attrs.getFloat("eps");
    int b = newVar(), ch = newVar(), e = newVar();
    ExprRef at = add(mul(add(mul(idx(b), i64(c)), idx(ch)), i64(inner)), idx(e));
    auto param = [&](size_t k) { return load(buf(n.inputs[k]), idx(ch)); };
    ExprRef scale =
        binary(BinaryOp::Div, param(1), unary(UnaryOp::Sqrt, add(param(4), f32(eps))));
    ExprRef value =
        fma(binary(BinaryOp::Sub, load(buf(n.inputs[0]), at), param(3)), scale, param(2));
    return loop(b, batch(),
                {loop(ch, i64(c), {loop(e, i64(inner), {store(buf(n.output), at, value)})})});
  }

  /// a mod m, for i64 indices.
  static ExprRef mod(ExprRef a, int64_t m) {
    return binary(BinaryOp::Sub, a, mul(binary(BinaryOp::Div, a, i64(m)), i64(m)));
  }

  /// Each input element goes to its place with the two axes swapped.
  Stmt transpose(const Node &n) {
    const Shape &xs = g_.value(n.inputs[0]).shape;
    size_t rank = xs.rank();
    auto axis = [&](const char *name) {
      int64_t a = n.attrs.getInt(name);
      return static_cast<size_t>(a < 0 ? a + static_cast<int64_t>(rank) : a);
    };
    size_t a0 = axis("dim0"), a1 = axis("dim1");
    std::vector<int64_t> dims = xs.dims, outDims = xs.dims;
    std::swap(outDims[a0], outDims[a1]);
    // Row-major strides; the first axis's size (perhaps N) is never needed.
    auto strides = [&](const std::vector<int64_t> &d) {
      std::vector<int64_t> st(rank, 1);
      for (size_t k = rank; k-- > 1;)
        st[k - 1] = st[k] * d[k];
      return st;
    };
    std::vector<int64_t> in = strides(dims), out = strides(outDims);
    int e = newVar();
    std::vector<ExprRef> coord(rank);
    for (size_t k = 0; k < rank; ++k) {
      ExprRef c = binary(BinaryOp::Div, idx(e), i64(in[k]));
      coord[k] = k == 0 ? c : mod(c, dims[k]);
    }
    std::swap(coord[a0], coord[a1]);
    ExprRef target = i64(0);
    for (size_t k = 0; k < rank; ++k)
      target = add(target, mul(coord[k], i64(out[k])));
    return loop(e, extent(n.inputs[0]),
                {store(buf(n.output), target, load(buf(n.inputs[0]), idx(e)))});
  }

  Stmt concat(const Node &n) {
    const Shape &ys = g_.value(n.output).shape;
    int64_t axis = n.attrs.getInt("axis");
    if (axis < 0)
      axis += static_cast<int64_t>(ys.rank());
    int64_t inner = 1, outerPer = 1, total = ys.dims[static_cast<size_t>(axis)];
    for (size_t d = static_cast<size_t>(axis) + 1; d < ys.rank(); ++d)
      inner *= ys.dims[d];
    for (size_t d = 0; d < static_cast<size_t>(axis); ++d)
      if (ys.dims[d] != kBatch)
        outerPer *= ys.dims[d];
    ExprRef outer = ys.isBatched() ? mul(batch(), i64(outerPer)) : i64(outerPer);
    std::vector<Stmt> parts;
    int64_t offset = 0;
    for (ValueId input : n.inputs) {
      int64_t len = g_.value(input).shape.dims[static_cast<size_t>(axis)];
      int o = newVar(), i = newVar(), s = newVar();
      ExprRef from = add(mul(add(mul(idx(o), i64(len)), idx(i)), i64(inner)), idx(s));
      ExprRef to = add(mul(add(mul(idx(o), i64(total)), add(i64(offset), idx(i))), i64(inner)),
                       idx(s));
      parts.push_back(loop(o, outer,
                           {loop(i, i64(len),
                                 {loop(s, i64(inner),
                                       {store(buf(n.output), to, load(buf(input), from))})})}));
      offset += len;
    }
    return block(std::move(parts));
  }

  /// a @ b: a batch of matrices by a batch of matrices, or a batch of rows
  /// by one shared matrix; each sum in order of the inner index.
  Stmt matmul(const Node &n) {
    const Shape &as = g_.value(n.inputs[0]).shape, &bs = g_.value(n.inputs[1]).shape;
    int64_t k = as.dims.back(), cols = bs.dims.back();
    int r = newVar(), j = newVar(), i = newVar(), s = newVar(), l = newVar();
    auto product = [&](ExprRef aAt, ExprRef bAt, ExprRef yAt) {
      return std::vector<Stmt>{
          local(s, f32(0)),
          loop(i, i64(k),
               {assign(s, fma(load(buf(n.inputs[0]), aAt), load(buf(n.inputs[1]), bAt),
                              scalar(s)))}),
          store(buf(n.output), yAt, scalar(s))};
    };
    if (bs.rank() == 2 && !bs.isBatched()) { // [M…, k] @ one shared [k, n]
      int64_t rowsPer = 1;
      for (size_t d = 0; d + 1 < as.rank(); ++d)
        if (as.dims[d] != kBatch)
          rowsPer *= as.dims[d];
      ExprRef rows = as.isBatched() ? mul(batch(), i64(rowsPer)) : i64(rowsPer);
      return loop(r, rows,
                  {loop(j, i64(cols),
                        product(add(mul(idx(r), i64(k)), idx(i)),
                                add(mul(idx(i), i64(cols)), idx(j)),
                                add(mul(idx(r), i64(cols)), idx(j))))});
    }
    int64_t m = as.dims[as.rank() - 2], batchesPer = 1;
    for (size_t d = 0; d + 2 < as.rank(); ++d)
      if (as.dims[d] != kBatch)
        batchesPer *= as.dims[d];
    ExprRef batches = as.isBatched() ? mul(batch(), i64(batchesPer)) : i64(batchesPer);
    return loop(l, batches,
                {loop(r, i64(m),
                      {loop(j, i64(cols),
                            product(add(mul(add(mul(idx(l), i64(m)), idx(r)), i64(k)), idx(i)),
                                    add(mul(add(mul(idx(l), i64(k)), idx(i)), i64(cols)), idx(j)),
                                    add(mul(add(mul(idx(l), i64(m)), idx(r)), i64(cols)), idx(j))))})});
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
    else if (op == "conv2d" || op == "maxpool2d" || op == "avgpool2d")
      s = windowed(n, op);
    else if (op == "batchnorm")
      s = batchnormEval(n);
    else if (op == "transpose")
      s = transpose(n);
    else if (op == "concat")
      s = concat(n);
    else if (op == "matmul")
      s = matmul(n);
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
