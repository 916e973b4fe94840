// InterpreterTest.cpp — the reference interpreter: initialization, dropout
// masks, losses by hand, and whole models. (tests/torch/kernels.py checks
// every kernel against PyTorch where PyTorch is installed.)
#include "Compile.h"
#include "graph/Build.h"
#include "interp/Interpreter.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace nnc;
using nnc::test::compile;
using nnc::test::withModel;

namespace {

Graph graphOf(const std::string &input, const std::string &body) {
  return test::modelGraph(input, body);
}

/// Runs a one-op kernel directly.
Tensor run(const std::string &op, std::vector<Tensor> inputs, Attrs attrs,
           std::vector<int64_t> outDims, EvalContext ctx = {}) {
  std::vector<const Tensor *> ptrs;
  for (const Tensor &t : inputs)
    ptrs.push_back(&t);
  Tensor out(std::move(outDims));
  std::string layer = op + "_1";
  findOp(op)->reference(KernelCall{ptrs, attrs, layer, ctx, out});
  return out;
}

} // namespace

TEST_CASE("every op row has a reference kernel") {
  for (const OpDef &op : allOps()) {
    INFO(op.name);
    CHECK(op.reference);
  }
}

TEST_CASE("initial values: PyTorch's bounds, deterministic, independent per name") {
  Graph g = graphOf("[1, 28, 28]", "x -> flatten -> fc1: dense(64) -> fc2: dense(10)");
  std::map<std::string, Tensor> a = initialParams(g, 42), b = initialParams(g, 42);
  std::map<std::string, Tensor> c = initialParams(g, 43);
  REQUIRE(a.size() == 4);
  CHECK(a["fc1.weight"].data == b["fc1.weight"].data);
  CHECK(a["fc1.weight"].data != c["fc1.weight"].data);
  double bound = 1 / std::sqrt(784.0), maxAbs = 0, sum = 0;
  for (double v : a["fc1.weight"].data) {
    maxAbs = std::max(maxAbs, std::abs(v));
    sum += v;
  }
  CHECK(maxAbs < bound);
  CHECK(maxAbs > 0.99 * bound);                     // the range is used
  CHECK(std::abs(sum / 50176) < 0.01 * bound);      // and centred
  // fc2's values do not depend on fc1 existing: they are keyed by name.
  Graph g2 = graphOf("[1, 28, 28]", "x -> flatten -> other: dense(64) -> fc2: dense(10)");
  CHECK(initialParams(g2, 42)["fc2.weight"].data == a["fc2.weight"].data);
}

TEST_CASE("dropout keeps about 1 - p of the values, scaled, with a mask fixed by the step") {
  Tensor x({10000}, 1.0);
  Attrs attrs;
  attrs.set("p", AttrValue{0.25});
  EvalContext train{true, 5, 3};
  Tensor y = run("dropout", {x}, attrs, {10000}, train);
  int kept = 0, other = 0;
  for (double v : y.data) {
    other += !(v == 0.0 || std::abs(v - 1 / 0.75) < 1e-12);
    kept += v != 0.0;
  }
  CHECK(other == 0); // dropped, or kept and scaled by 1/(1-p)
  CHECK(std::abs(kept / 10000.0 - 0.75) < 0.02); // ±4.6 standard errors
  CHECK(run("dropout", {x}, attrs, {10000}, train).data == y.data);
  EvalContext nextStep{true, 5, 4};
  CHECK(run("dropout", {x}, attrs, {10000}, nextStep).data != y.data);
  CHECK(run("dropout", {x}, attrs, {10000}, EvalContext{}).data == x.data); // evaluation
}

TEST_CASE("cross_entropy and mse by hand") {
  Tensor z({2, 3});
  z.data = {1.0, 2.0, 3.0, 0.0, 0.0, 0.0};
  Tensor labels({2});
  labels.data = {2, 0};
  double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  double expected = ((lse0 - 3.0) + std::log(3.0)) / 2;
  CHECK(run("cross_entropy", {z, labels}, {}, {}).data[0] == Approx(expected).epsilon(1e-14));
  // Large logits stay finite: the maximum is subtracted first.
  Tensor big = z;
  big.data = {1000, 1001, 1002, -1000, 0, 1000};
  double ce = run("cross_entropy", {big, labels}, {}, {}).data[0];
  CHECK(std::isfinite(ce));
  CHECK(ce == Approx(((std::log(std::exp(-2.0) + std::exp(-1.0) + 1) + 0) + 2000) / 2));
  // mse against one-hot labels, averaged over N·C.
  double m = ((1 + 4 + 4) + (1 + 0 + 0)) / 6.0;
  CHECK(run("mse", {z, labels}, {}, {}).data[0] == Approx(m));
  Tensor bad({2});
  bad.data = {3, 0};
  CHECK_THROWS_AS(run("cross_entropy", {z, bad}, {}, {}), std::logic_error);
}

TEST_CASE("randn: deterministic standard normal samples") {
  Attrs attrs;
  attrs.set("shape", AttrValue{std::vector<int64_t>{100000}});
  Tensor a = run("randn", {}, attrs, {100000}, EvalContext{false, 1, 0});
  CHECK(run("randn", {}, attrs, {100000}, EvalContext{false, 1, 0}).data == a.data);
  double sum = 0, sq = 0;
  for (double v : a.data) {
    sum += v;
    sq += v * v;
  }
  CHECK(std::abs(sum / 1e5) < 0.015);        // 1/sqrt(1e5) ≈ 0.0032
  CHECK(std::abs(sq / 1e5 - 1.0) < 0.02);
}

TEST_CASE("the interpreter runs whole models, and checks its feeds") {
  Graph g = graphOf("[1, 28, 28]",
                    "x -> conv2d(4, 3) -> batchnorm -> relu -> maxpool2d(2) -> flatten -> "
                    "dense(10) -> log_softmax");
  std::map<std::string, Tensor> feeds = initialParams(g, 1);
  feeds["x"] = Tensor({5, 1, 28, 28}, 0.5);
  std::vector<Tensor> values = interpret(g, feeds, EvalContext{true, 1, 0});
  const Tensor &out = values[static_cast<size_t>(g.outputs[0])];
  CHECK(out.dims == std::vector<int64_t>{5, 10});
  for (int64_t r = 0; r < 5; ++r) { // log-probabilities: exp sums to 1
    double s = 0;
    for (int64_t j = 0; j < 10; ++j)
      s += std::exp(out[static_cast<size_t>(r * 10 + j)]);
    CHECK(s == Approx(1.0));
  }
  feeds["x"] = Tensor({5, 1, 27, 28}, 0.5);
  CHECK_THROWS_AS(interpret(g, feeds, EvalContext{}), std::logic_error);
  feeds.erase("x");
  CHECK_THROWS_AS(interpret(g, feeds, EvalContext{}), std::logic_error);
}
