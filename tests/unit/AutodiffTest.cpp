// AutodiffTest.cpp — reverse mode on graphs with fan-out, shared parameters
// and unused branches. (tests/gradcheck/ checks every op's rule numerically.)
#include "Compile.h"
#include "autodiff/Autodiff.h"
#include "graph/Build.h"
#include "interp/Interpreter.h"

#include <catch2/catch.hpp>

using namespace nnc;
using nnc::test::compile;
using nnc::test::withModel;

namespace {

Graph lossGraph(const std::string &body, const std::string &input = "[4]") {
  return test::modelGraph(input, body, true);
}

int count(const Graph &g, const std::string &op) {
  int n = 0;
  for (const Node &node : g.nodes)
    n += node.op->name == op;
  return n;
}

/// dL/dθ by central differences, for element `e` of parameter `name`.
double numeric(const Graph &g, std::map<std::string, Tensor> feeds, const std::string &name,
               size_t e) {
  const double h = 1e-6;
  feeds[name][e] += h;
  double plus = interpret(g, feeds, EvalContext{true, 1, 0})[static_cast<size_t>(g.outputs[0])][0];
  feeds[name][e] -= 2 * h;
  double minus = interpret(g, feeds, EvalContext{true, 1, 0})[static_cast<size_t>(g.outputs[0])][0];
  return (plus - minus) / (2 * h);
}

std::map<std::string, Tensor> feedsFor(const Graph &g, int64_t n) {
  std::map<std::string, Tensor> feeds = initialParams(g, 3);
  Tensor x(concreteDims(g.values[0].shape, n));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 0.1 * static_cast<double>(i % 7) - 0.3;
  feeds[g.values[0].name] = x;
  Tensor labels({n});
  for (int64_t i = 0; i < n; ++i)
    labels[static_cast<size_t>(i)] = static_cast<double>(i % 2);
  feeds[kLabelsName] = labels;
  return feeds;
}

} // namespace

TEST_CASE("a value used twice gets the sum of both gradients") {
  Graph g = lossGraph("h = x -> a: dense(4) -> relu\nreturn add(h, h -> b: dense(4)) -> dense(2)");
  Differentiated d = differentiate(g, g.outputs[0], g.params());
  REQUIRE(verifyGraph(d.graph).empty());
  // h feeds add and b: one extra add node sums the two contributions.
  CHECK(count(d.graph, "add") == count(g, "add") + 1); // add's rule passes dy on; one sum
  std::map<std::string, Tensor> feeds = feedsFor(g, 3);
  std::vector<Tensor> values = interpret(d.graph, feeds, EvalContext{true, 1, 0});
  for (ValueId p : g.params()) {
    const std::string &name = g.value(p).name;
    const Tensor &analytic = values[static_cast<size_t>(d.grads.at(p))];
    for (size_t e = 0; e < analytic.size(); e += 3)
      CHECK(analytic[e] == Approx(numeric(g, feeds, name, e)).margin(1e-7));
  }
}

TEST_CASE("a parameter shared by two nodes gets the sum of both gradients") {
  Graph g = lossGraph("x -> a: dense(4) -> b: dense(2)");
  // Make b use a's weight as well: a hand-made graph a .nn file cannot write.
  Graph shared = g;
  ValueId aWeight = -1;
  for (size_t i = 0; i < shared.values.size(); ++i)
    if (shared.values[i].name == "a.weight")
      aWeight = static_cast<ValueId>(i);
  Node &second = shared.nodes[1];
  Attrs attrs = second.attrs;
  attrs.set("units", AttrValue{int64_t{4}});
  // Rebuild: x -> dense(a.weight) -> dense(a.weight) -> dense(2) -> loss.
  Graph h;
  h.name = "shared";
  ValueId x = h.addValue(g.values[0]);
  ValueId w = h.addValue(shared.value(aWeight));
  ValueId y1 = h.apply(*findOp("dense"), {x, w}, attrs, "first", {}, 1);
  ValueId y2 = h.apply(*findOp("dense"), {y1, w}, attrs, "second", {}, 1);
  Attrs two = attrs;
  two.set("units", AttrValue{int64_t{2}});
  ValueId w2 = h.addValue({ValueKind::Param, DType::F32, Shape{{2, 4}}, "w2", -1,
                           {Initializer::Kind::Uniform, 0.5}});
  ValueId out = h.apply(*findOp("dense"), {y2, w2}, two, "out", {}, 1);
  ValueId labels = h.addValue({ValueKind::Label, DType::I64, Shape::batched({}), kLabelsName, -1, {}});
  h.outputs = {h.apply(*findOp("cross_entropy"), {out, labels}, {}, "loss", {}, 1)};
  REQUIRE(verifyGraph(h).empty());
  Differentiated d = differentiate(h, h.outputs[0], h.params());
  REQUIRE(verifyGraph(d.graph).empty());
  std::map<std::string, Tensor> feeds = feedsFor(h, 2);
  std::vector<Tensor> values = interpret(d.graph, feeds, EvalContext{true, 1, 0});
  const Tensor &analytic = values[static_cast<size_t>(d.grads.at(w))];
  for (size_t e = 0; e < analytic.size(); e += 2)
    CHECK(analytic[e] == Approx(numeric(h, feeds, "a.weight", e)).margin(1e-7));
}

TEST_CASE("nothing is computed for the image or for branches the loss ignores") {
  Graph g = lossGraph("h = x -> a: dense(4)\nunused = h -> b: dense(3)\nreturn h -> c: dense(2)");
  Differentiated d = differentiate(g, g.outputs[0], g.params());
  REQUIRE(verifyGraph(d.graph).empty());
  // No gradient with respect to x (a's input): a's rule computes dW and db only.
  for (size_t i = g.nodes.size(); i < d.graph.nodes.size(); ++i) {
    const Node &n = d.graph.nodes[i];
    INFO(n.op->name << " for " << n.layer);
    CHECK(n.layer != "b");                                  // the unused branch
    CHECK(!(n.layer == "a" && n.op->name == "matmul"));     // dL/dx
  }
  // b's parameters get zero gradients.
  std::map<std::string, Tensor> feeds = feedsFor(g, 2);
  std::vector<Tensor> values = interpret(d.graph, feeds, EvalContext{true, 1, 0});
  for (ValueId p : g.params())
    if (g.value(p).name.rfind("b.", 0) == 0)
      for (double v : values[static_cast<size_t>(d.grads.at(p))].data)
        CHECK(v == 0.0);
}

TEST_CASE("every example differentiates into a valid graph") {
  for (const char *name : {"mnist", "lenet", "fashion_cnn", "resnet_tiny"}) {
    INFO(name);
    std::string error;
    std::optional<std::string> text =
        readSourceFile(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn", error);
    REQUIRE(text);
    test::Compiled c = compile(*text, name);
    REQUIRE(c.program);
    Graph g = buildLossGraph(*c.program);
    Differentiated d = differentiate(g, g.outputs[0], g.params());
    CHECK(verifyGraph(d.graph).empty());
    CHECK(d.grads.size() == g.params().size());
  }
}
