// GraphTest.cpp — lowering to the graph IR, and the verifier.
#include "Compile.h"
#include "graph/Build.h"

#include <catch2/catch.hpp>

using namespace nnc;
using nnc::test::compile;
using nnc::test::withModel;

namespace {

Graph graphOf(const std::string &body, const std::string &input = "[1, 28, 28]") {
  return test::modelGraph(input, body);
}

} // namespace

TEST_CASE("a layer's parameters become explicit inputs with PyTorch's initializers") {
  Graph g = graphOf("x -> flatten -> fc: dense(10)");
  REQUIRE(verifyGraph(g).empty());
  REQUIRE(g.nodes.size() == 2);
  const Node &dense = g.nodes[1];
  CHECK(dense.op->name == "dense");
  CHECK(dense.dataInputs == 1);
  REQUIRE(dense.inputs.size() == 3);
  const Value &w = g.value(dense.inputs[1]);
  CHECK(w.kind == ValueKind::Param);
  CHECK(w.name == "fc.weight");
  CHECK(w.shape.str() == "[10, 784]");
  CHECK(w.init.kind == Initializer::Kind::Uniform);
  CHECK(w.init.bound == Approx(1 / std::sqrt(784.0)));
  CHECK(g.value(g.outputs[0]).shape.str() == "[N, 10]");
  CHECK(g.params().size() == 2);
}

TEST_CASE("batchnorm's running statistics are state, not parameters") {
  Graph g = graphOf("x -> conv2d(4, 3) -> batchnorm -> flatten -> dense(10)");
  REQUIRE(verifyGraph(g).empty());
  int state = 0;
  for (const Value &v : g.values)
    state += v.kind == ValueKind::State;
  CHECK(state == 2);
  CHECK(g.params().size() == 6); // conv weight, bias; bn weight, bias; dense weight, bias
}

TEST_CASE("a layer labelled like the model's input gets a distinct graph name") {
  Graph g = graphOf("x -> flatten -> x: dense(10)");
  CHECK(verifyGraph(g).empty());
  CHECK(g.value(g.outputs[0]).name == "x#2");
}

TEST_CASE("the verifier finds broken graphs") {
  Graph g = graphOf("x -> flatten -> dense(10)");
  REQUIRE(verifyGraph(g).empty());
  Graph wrongShape = g;
  wrongShape.values[static_cast<size_t>(wrongShape.outputs[0])].shape = Shape::batched({11});
  CHECK(verifyGraph(wrongShape).find("has shape [N, 11] but its rule gives [N, 10]") !=
        std::string::npos);
  Graph outOfOrder = g;
  std::swap(outOfOrder.nodes[0], outOfOrder.nodes[1]);
  for (size_t i = 0; i < outOfOrder.nodes.size(); ++i)
    outOfOrder.values[static_cast<size_t>(outOfOrder.nodes[i].output)].node = static_cast<int>(i);
  CHECK(verifyGraph(outOfOrder).find("before it is computed") != std::string::npos);
  Graph dangling = g;
  dangling.nodes[1].inputs[0] = 999;
  CHECK(verifyGraph(dangling).find("does not exist") != std::string::npos);
}

TEST_CASE("every example lowers to a valid graph") {
  for (const char *name : {"mnist", "mnist_augment", "lenet", "fashion", "fashion_cnn",
                           "resnet_tiny"}) {
    INFO(name);
    std::string error;
    std::optional<std::string> text =
        readSourceFile(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn", error);
    REQUIRE(text);
    test::Compiled c = compile(*text, name);
    REQUIRE(c.program);
    CHECK(verifyGraph(buildGraph(*c.program)).empty());
  }
}
