// GradcheckTest.cpp — every op's gradient rule against central differences,
// in double precision, on small random inputs; and, for every op, wrong
// gradient rules (negated, halved, inputs swapped) that the check must
// reject, so that it is known to be able to fail.
//
// For an op f with inputs x₁…xₖ the check builds L = Σ f(x₁…xₖ) ⊙ R with a
// fixed random R, differentiates it, and compares each dL/dxᵢ with
// (L(xᵢ + h) − L(xᵢ − h)) / 2h, h = 1e-6.
#include "autodiff/Autodiff.h"
#include "interp/Interpreter.h"

#include "Random.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>

using namespace nnc;

namespace {

constexpr int64_t kBatchSize = 3;

/// One op applied to inputs of given shapes. Inputs marked `trained` get
/// gradients checked; the others are state (batchnorm's running statistics)
/// or labels.
struct Case {
  std::string name;
  std::string op;
  std::vector<Shape> shapes;
  Attrs attrs;
  bool training = true;
  size_t dataInputs = 1;
  std::vector<ValueKind> kinds; ///< per input; Param when empty
};

Shape batch(std::vector<int64_t> d) { return Shape::batched(std::move(d)); }

Attrs attrs(std::initializer_list<std::pair<const char *, AttrValue>> list) {
  Attrs a;
  for (const auto &[n, v] : list)
    a.set(n, v);
  return a;
}

AttrValue ints(std::vector<int64_t> v) { return AttrValue{std::move(v)}; }
AttrValue i64(int64_t v) { return AttrValue{v}; }
AttrValue f64(double v) { return AttrValue{v}; }

std::vector<Case> cases() {
  using K = ValueKind;
  std::vector<Case> c;
  c.push_back({"dense", "dense", {batch({4}), Shape{{3, 4}}, Shape{{3}}},
               attrs({{"units", i64(3)}, {"bias", AttrValue{true}}})});
  c.push_back({"dense without bias", "dense", {batch({4}), Shape{{2, 4}}},
               attrs({{"units", i64(2)}, {"bias", AttrValue{false}}})});
  c.push_back({"flatten", "flatten", {batch({2, 3, 2})}, {}});
  c.push_back({"reshape", "reshape", {batch({12})}, attrs({{"shape", ints({3, 2, 2})}})});
  c.push_back({"transpose", "transpose", {batch({2, 3, 4})},
               attrs({{"dim0", i64(1)}, {"dim1", i64(3)}})});
  c.push_back({"conv2d", "conv2d", {batch({2, 5, 5}), Shape{{3, 2, 3, 3}}, Shape{{3}}},
               attrs({{"out", i64(3)}, {"kernel", ints({3})}, {"stride", ints({1})},
                      {"padding", ints({0})}, {"bias", AttrValue{true}}})});
  c.push_back({"conv2d with stride, padding and a rectangular kernel", "conv2d",
               {batch({2, 6, 5}), Shape{{2, 2, 3, 2}}},
               attrs({{"out", i64(2)}, {"kernel", ints({3, 2})}, {"stride", ints({2, 1})},
                      {"padding", ints({1, 2})}, {"bias", AttrValue{false}}})});
  c.push_back({"maxpool2d", "maxpool2d", {batch({2, 4, 4})},
               attrs({{"kernel", ints({2})}, {"padding", ints({0})}})});
  c.push_back({"maxpool2d with stride and padding", "maxpool2d", {batch({2, 5, 5})},
               attrs({{"kernel", ints({3})}, {"stride", ints({2})}, {"padding", ints({1})}})});
  c.push_back({"avgpool2d", "avgpool2d", {batch({2, 4, 4})},
               attrs({{"kernel", ints({2})}, {"padding", ints({0})}})});
  c.push_back({"avgpool2d with stride and padding", "avgpool2d", {batch({2, 5, 4})},
               attrs({{"kernel", ints({3, 2})}, {"stride", ints({1})}, {"padding", ints({1})}})});
  Attrs bn = attrs({{"momentum", f64(0.1)}, {"eps", f64(1e-5)}});
  std::vector<ValueKind> bnKinds{K::Param, K::Param, K::Param, K::State, K::State};
  c.push_back({"batchnorm, training, on images", "batchnorm",
               {batch({2, 3, 2}), Shape{{2}}, Shape{{2}}, Shape{{2}}, Shape{{2}}}, bn, true, 1,
               bnKinds});
  c.push_back({"batchnorm, training, on vectors", "batchnorm",
               {batch({3}), Shape{{3}}, Shape{{3}}, Shape{{3}}, Shape{{3}}}, bn, true, 1, bnKinds});
  c.push_back({"batchnorm, evaluating", "batchnorm",
               {batch({2, 3, 2}), Shape{{2}}, Shape{{2}}, Shape{{2}}, Shape{{2}}}, bn, false, 1,
               bnKinds});
  c.push_back({"relu", "relu", {batch({5})}, {}});
  c.push_back({"leaky_relu", "leaky_relu", {batch({5})}, attrs({{"alpha", f64(0.2)}})});
  c.push_back({"sigmoid", "sigmoid", {batch({5})}, {}});
  c.push_back({"tanh", "tanh", {batch({5})}, {}});
  c.push_back({"gelu", "gelu", {batch({5})}, attrs({{"approximate", AttrValue{std::string("none")}}})});
  c.push_back({"gelu, tanh form", "gelu", {batch({5})},
               attrs({{"approximate", AttrValue{std::string("tanh")}}})});
  c.push_back({"softmax", "softmax", {batch({4})}, attrs({{"axis", i64(-1)}})});
  c.push_back({"softmax along axis 1", "softmax", {batch({3, 2})}, attrs({{"axis", i64(1)}})});
  c.push_back({"log_softmax", "log_softmax", {batch({4})}, attrs({{"axis", i64(-1)}})});
  c.push_back({"dropout, training", "dropout", {batch({8})}, attrs({{"p", f64(0.3)}})});
  c.push_back({"dropout, evaluating", "dropout", {batch({8})}, attrs({{"p", f64(0.3)}}), false});
  c.push_back({"neg", "neg", {batch({3})}, {}});
  c.push_back({"add", "add", {batch({2, 3}), batch({2, 3})}, {}, true, 2});
  c.push_back({"add of a batch and a shared tensor", "add", {batch({2, 3}), Shape{{2, 3}}}, {},
               true, 2});
  c.push_back({"mul", "mul", {batch({2, 3}), batch({2, 3})}, {}, true, 2});
  c.push_back({"mul of a shared tensor and a batch", "mul", {Shape{{3}}, batch({3})}, {}, true, 2});
  c.push_back({"matmul", "matmul", {batch({2, 3}), batch({3, 2})}, {}, true, 2});
  c.push_back({"matmul by a shared matrix", "matmul", {batch({2, 3}), Shape{{3, 4}}}, {}, true, 2});
  c.push_back({"matmul of matrices", "matmul", {Shape{{2, 3}}, Shape{{3, 2}}}, {}, true, 2});
  c.push_back({"concat", "concat", {batch({2, 3}), batch({1, 3}), batch({2, 3})},
               attrs({{"axis", i64(1)}}), true, 3});
  c.push_back({"concat along axis 2", "concat", {batch({2, 3}), batch({2, 1})},
               attrs({{"axis", i64(2)}}), true, 2});
  c.push_back({"cross_entropy", "cross_entropy", {batch({4}), Shape{{kBatchSize}}}, {}, true, 1,
               {K::Param, K::Label}});
  c.push_back({"mse", "mse", {batch({4}), Shape{{kBatchSize}}}, {}, true, 1,
               {K::Param, K::Label}});
  c.push_back({"sum", "sum", {batch({2, 3})}, attrs({{"axis", i64(-1)}})});
  c.push_back({"sum along axis 1", "sum", {batch({2, 3})}, attrs({{"axis", i64(1)}})});
  c.push_back({"mean", "mean", {batch({4})}, attrs({{"axis", i64(-1)}})});
  c.push_back({"mean of a matrix along axis 0", "mean", {Shape{{3, 2}}}, attrs({{"axis", i64(0)}})});
  c.push_back({"sum_all", "sum_all", {batch({2, 2})}, {}});
  c.push_back({"scale", "scale", {batch({3})}, attrs({{"factor", f64(-2.5)}})});
  return c;
}

struct Built {
  Graph forward;
  ValueId loss;
  std::vector<ValueId> wrt;
  std::map<std::string, Tensor> feeds;
};

Built build(const Case &c) {
  Built b;
  Graph &g = b.forward;
  g.name = c.op;
  std::vector<ValueId> inputs;
  uint64_t stream = nnc_rt::streamId("gradcheck/" + c.name);
  uint64_t k = 0;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    ValueKind kind = c.kinds.empty() ? ValueKind::Param : c.kinds[i];
    std::string name = "in" + std::to_string(i);
    // An input is a Param so that autodiff differentiates with respect to it;
    // give the first one the batch so that the interpreter knows N.
    ValueId v = g.addValue({kind, DType::F32, c.shapes[i], name, -1, {}});
    inputs.push_back(v);
    Tensor t(concreteDims(c.shapes[i], kBatchSize));
    for (size_t e = 0; e < t.size(); ++e) {
      double u = nnc_rt::uniform01(11, stream, k++);
      if (kind == ValueKind::Label)
        t[e] = std::floor(u * 4); // classes 0..3
      else if (kind == ValueKind::State)
        t[e] = 0.5 + u; // running statistics; a variance must be positive
      else
        t[e] = 2 * u - 1;
    }
    b.feeds[name] = t;
    if (kind == ValueKind::Param)
      b.wrt.push_back(v);
  }
  // The interpreter takes N from an Input value: feed a dummy one.
  ValueId dummy = g.addValue({ValueKind::Input, DType::F32, batch({1}), "batch", -1, {}});
  (void)dummy;
  b.feeds["batch"] = Tensor({kBatchSize, 1});
  const OpDef *op = findOp(c.op);
  REQUIRE(op != nullptr);
  Attrs attrs = c.attrs;
  for (const AttrSpec &s : op->attrs)
    if (!attrs.has(s.name) && s.defaultValue)
      attrs.set(s.name, *s.defaultValue);
  ValueId y = g.apply(*op, inputs, attrs, c.op + "_1", {}, c.dataInputs);
  // L = Σ y ⊙ R
  ValueId r = g.addValue({ValueKind::Input, DType::F32, g.value(y).shape, "r", -1, {}});
  Tensor rt(concreteDims(g.value(y).shape, kBatchSize));
  for (size_t e = 0; e < rt.size(); ++e)
    rt[e] = 2 * nnc_rt::uniform01(12, stream, e) - 1;
  b.feeds["r"] = rt;
  ValueId prod = g.apply(*findOp("mul"), {y, r}, {}, "weighted", {}, 2);
  b.loss = g.apply(*findOp("sum_all"), {prod}, {}, "loss", {}, 1);
  return b;
}

/// Checks analytic against numeric gradients; returns the worst relative
/// error found.
double worstError(const Case &c) {
  Built b = build(c);
  REQUIRE(verifyGraph(b.forward).empty());
  Differentiated d = differentiate(b.forward, b.loss, b.wrt);
  REQUIRE(verifyGraph(d.graph).empty());
  EvalContext ctx{c.training, 5, 2};
  std::vector<Tensor> values = interpret(d.graph, b.feeds, ctx);
  double worst = 0;
  const double h = 1e-6;
  for (ValueId v : b.wrt) {
    const std::string &name = b.forward.value(v).name;
    const Tensor &analytic = values[static_cast<size_t>(d.grads.at(v))];
    for (size_t e = 0; e < analytic.size(); ++e) {
      std::map<std::string, Tensor> plus = b.feeds, minus = b.feeds;
      plus[name][e] += h;
      minus[name][e] -= h;
      double lp = interpret(b.forward, plus, ctx)[static_cast<size_t>(b.loss)][0];
      double lm = interpret(b.forward, minus, ctx)[static_cast<size_t>(b.loss)][0];
      double numeric = (lp - lm) / (2 * h);
      double scale = std::max({1.0, std::abs(numeric), std::abs(analytic[e])});
      worst = std::max(worst, std::abs(numeric - analytic[e]) / scale);
    }
  }
  return worst;
}

constexpr double kTolerance = 1e-6;

} // namespace

TEST_CASE("gradients agree with central differences for every op") {
  for (const Case &c : cases()) {
    SECTION(c.name) {
      double worst = worstError(c);
      INFO(c.name << ": worst relative error " << worst);
      CHECK(worst < kTolerance);
    }
  }
}

TEST_CASE("every op that can be differentiated has a gradient check") {
  std::set<std::string> checked;
  for (const Case &c : cases())
    checked.insert(c.op);
  for (const OpDef &op : allOps()) {
    if (!op.gradient || op.arity == 0)
      continue; // internal pieces, and constructors (no inputs)
    INFO(op.name);
    CHECK(checked.count(op.name));
  }
}

TEST_CASE("gradcheck_mutants: wrong gradient rules are rejected") {
  std::set<std::string> done;
  for (const Case &c : cases()) {
    if (!done.insert(c.op).second)
      continue;
    std::vector<GradientMutation> mutations{GradientMutation::Negate, GradientMutation::Halve};
    if (c.op == "mul" || c.op == "matmul" || c.op == "concat")
      mutations.push_back(GradientMutation::SwapInputs);
    for (GradientMutation m : mutations) {
      setGradientMutation(c.op + "_1", m); // the node under test, not the harness's
      double worst = 0;
      if (m == GradientMutation::SwapInputs && c.op == "matmul") {
        // Swapping needs equal shapes: a square matmul.
        Case square = c;
        square.shapes = {batch({3, 3}), batch({3, 3})};
        worst = worstError(square);
      } else if (m == GradientMutation::SwapInputs && c.op == "concat") {
        Case equal = c;
        equal.shapes = {batch({2, 3}), batch({2, 3})};
        equal.dataInputs = 2;
        worst = worstError(equal);
      } else {
        worst = worstError(c);
      }
      setGradientMutation("", GradientMutation::None);
      INFO(c.op << " with mutation " << static_cast<int>(m) << ": worst error " << worst);
      CHECK(worst > 100 * kTolerance);
    }
  }
}
