// JitTest.cpp — JIT-compiled loops against the reference interpreter.
//
// Tolerance: the JIT computes in float32 and the interpreter in double. A
// dot product of K terms in float32 is within about K·2⁻²⁴·Σ|terms| of the
// exact value; for these layers (K ≤ 784, |x·w| ≲ 0.04) that is below 2e-5,
// while a wrong index or a missing term changes an output by 1e-3 or more.
#include "Compile.h"
#include "codegen/JIT.h"
#include "codegen/Runner.h"
#include "graph/Build.h"
#include "interp/Interpreter.h"
#include "loops/Lower.h"

#include "Random.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <sstream>

using namespace nnc;
using nnc::test::compile;
using nnc::test::withModel;

namespace {

/// Runs `graph` (an inference graph) in the interpreter and in the JIT on
/// the same input and initial parameters; returns the largest difference.
double jitVersusInterpreter(const Graph &graph, int64_t n) {
  std::string why;
  REQUIRE(loops::canLower(graph, false, why));
  loops::Function f = loops::lowerInference(graph, n);
  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  INFO(error);
  REQUIRE(jit);
  CompiledFunction fn = jit->compile(f, error);
  INFO(error);
  REQUIRE(fn);
  Runner runner(f, fn);
  std::map<std::string, Tensor> feeds = initialParams(graph, 17);
  Tensor x(concreteDims(graph.values[0].shape, n));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = nnc_rt::uniform01(17, 99, i);
  feeds[graph.values[0].name] = x;
  for (const auto &[name, t] : feeds) {
    float *p = runner.data(name);
    REQUIRE(p);
    REQUIRE(runner.elements(name, n) == static_cast<int64_t>(t.size()));
    for (size_t i = 0; i < t.size(); ++i)
      p[i] = static_cast<float>(t[i]);
  }
  std::vector<Tensor> expected = interpret(graph, feeds, EvalContext{});
  runner.run(n);
  const Tensor &want = expected[static_cast<size_t>(graph.outputs[0])];
  const std::string &name = graph.value(graph.outputs[0]).name;
  REQUIRE(runner.elements(name, n) == static_cast<int64_t>(want.size()));
  const float *got = runner.data(name);
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(want[i] - static_cast<double>(got[i])));
  return worst;
}

Graph inference(const std::string &input, const std::string &body) {
  return test::modelGraph(input, body);
}

} // namespace

TEST_CASE("the JIT's predict agrees with the interpreter on the main example's MLP") {
  Graph g = inference("[1, 28, 28]",
                      "x -> flatten -> fc1: dense(64) -> relu -> fc2: dense(64) -> relu -> "
                      "fc3: dense(10)");
  CHECK(jitVersusInterpreter(g, 5) < 2e-5);
  CHECK(jitVersusInterpreter(g, 1) < 2e-5);
}

TEST_CASE("the JIT's predict agrees with the interpreter on wide layers, one row or several") {
  // 200 outputs: three blocks of 64 columns and one of 8 for the rows left
  // over after the groups of 4 (each block its own parallel iteration), and
  // 128: two blocks exactly
  Graph g = inference("[40]", "x -> fc1: dense(200) -> relu -> fc2: dense(128) -> fc3: dense(3)");
  for (int64_t n : {1, 2, 3, 4, 7, 9}) {
    INFO("batch " << n);
    CHECK(jitVersusInterpreter(g, n) < 2e-5);
  }
}

TEST_CASE("the JIT agrees with the interpreter on every lowered op", "[threads]") {
  const char *bodies[] = {
      "x -> dense(7, bias=false) -> sigmoid -> dense(3)",
      "x -> dense(6) -> tanh -> leaky_relu(0.1) -> neg -> dense(4)",
      "x -> dense(5) -> gelu -> dense(5) -> gelu(\"tanh\") -> softmax",
      "x -> dense(5) -> log_softmax",
      "h = x -> dense(8) -> relu\nreturn add(h, mul(h, h -> sigmoid)) -> dropout(0.5) -> dense(3)",
      "add(x, ones(12)) -> reshape(3, 4) -> softmax(axis=1) -> flatten -> dense(2)",
  };
  for (const char *body : bodies) {
    INFO(body);
    CHECK(jitVersusInterpreter(inference("[12]", body), 4) < 2e-5);
  }
}

TEST_CASE("prediction's cached transposed weights follow every change of the weights") {
  Graph g = inference("[12]", "x -> fc1: dense(5) -> relu -> fc2: dense(3)");
  const int64_t n = 3;
  loops::Function f = loops::lowerInference(g, n);
  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  REQUIRE(jit);
  CompiledFunction fn = jit->compile(f, error);
  INFO(error);
  REQUIRE(fn);
  Runner runner(f, fn);
  REQUIRE(runner.data("fc1.weight.T"));
  REQUIRE(runner.data("fc2.weight.T"));
  const std::string out = g.value(g.outputs[0]).name;
  // Sets the parameters from `seed` (through data(), as every caller does),
  // runs, and returns the largest difference from the interpreter's outputs.
  auto check = [&](uint64_t seed, bool write) {
    std::map<std::string, Tensor> feeds = initialParams(g, seed);
    Tensor x(concreteDims(g.values[0].shape, n));
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = nnc_rt::uniform01(17, 99, i);
    feeds[g.values[0].name] = x;
    for (const auto &[name, t] : feeds)
      if (write || name == g.values[0].name) {
        float *p = runner.data(name);
        for (size_t i = 0; i < t.size(); ++i)
          p[i] = static_cast<float>(t[i]);
      }
    runner.run(n);
    CHECK(runner.data(loops::kStaleName)[0] == 0); // the caches are now the weights'
    std::vector<Tensor> expected = interpret(g, feeds, EvalContext{});
    const Tensor &want = expected[static_cast<size_t>(g.outputs[0])];
    const float *got = runner.data(out);
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i)
      worst = std::max(worst, std::abs(want[i] - static_cast<double>(got[i])));
    return worst;
  };
  CHECK(check(17, true) < 2e-5);
  CHECK(check(17, false) < 2e-5); // the same weights: the caches as they were
  CHECK(check(23, true) < 2e-5);  // new weights: the caches computed again
  // Each parameter on its own: handing it out marks the caches stale.
  std::map<std::string, Tensor> params = initialParams(g, 29);
  for (const char *name : {"fc1.weight", "fc2.weight"}) {
    INFO(name);
    runner.run(n);
    CHECK(runner.data(loops::kStaleName)[0] == 0);
    float *w = runner.data(name);
    CHECK(runner.data(loops::kStaleName)[0] == 1);
    w[0] += 0.5f;
    std::vector<float> before(runner.data(out), runner.data(out) + runner.elements(out, n));
    runner.run(n);
    std::vector<float> after(runner.data(out), runner.data(out) + runner.elements(out, n));
    CHECK(before != after);
  }
}

TEST_CASE("fusion: bias and activation run in the product's output loop") {
  Graph g = inference("[4]", "x -> fc: dense(3) -> relu");
  loops::Function f = loops::lowerInference(g, 8);
  std::ostringstream out;
  loops::print(f, out);
  std::string text = out.str();
  INFO(text);
  // one group for the layer and its activation: the weights packed
  // (transposed, into a cache: when they changed), then the nests computing
  // the output, bias and relu (whole groups of rows, then the rows left one
  // at a time); last, the cache flag cleared
  REQUIRE(f.body.body.size() == 2);
  CHECK(f.body.body[1].kind == loops::StmtKind::Store);
  CHECK(f.buffers[static_cast<size_t>(f.body.body[1].buffer)].name == loops::kStaleName);
  CHECK(f.body.body[0].comment == "fc (dense; line 2) + relu_1 (relu; line 2)");
  CHECK(f.nests == 3);
  // the pre-activation never reaches memory: the output is the only buffer
  // the product writes, and the activation is applied as it is stored
  CHECK(text.find("fc[") == std::string::npos);
  CHECK(text.find("fma(s") != std::string::npos);
  CHECK(text.find(" = max(s") != std::string::npos);
  CHECK(text.find("relu_1[(") != std::string::npos);
  CHECK(text.find("// 3 loop nests") != std::string::npos);
}

TEST_CASE("the JIT agrees with the interpreter on convolutional models", "[threads]") {
  const char *bodies[] = {
      // LeNet, as in examples/lenet.nn
      "x -> conv2d(6, 5, padding=2) -> relu -> maxpool2d(2) -> conv2d(16, 5) -> relu -> "
      "maxpool2d(2) -> flatten -> dense(120) -> relu -> dense(84) -> relu -> dense(10)",
      // strides, rectangular kernels, padding, no bias; pooling with padding
      "x -> conv2d(3, [3, 2], stride=[2, 1], padding=[1, 2], bias=false) -> "
      "maxpool2d(3, stride=2, padding=1) -> avgpool2d([2, 3], stride=1, padding=1) -> flatten "
      "-> dense(4)",
      // a residual join with batchnorm (evaluation: running statistics)
      "h = x -> conv2d(4, 3, padding=1) -> batchnorm -> relu\n"
      "return add(h, h -> conv2d(4, 3, padding=1) -> batchnorm) -> avgpool2d(28) -> flatten -> "
      "dense(3)",
      // transpose, concat and matmul
      "t = x -> reshape(28, 28)\n"
      "m = t @ (t -> transpose)\n"
      "return concat(m, t, axis=2) -> reshape(28, 56) -> transpose(1, 2) -> flatten -> dense(5)",
      "x -> flatten -> reshape(4, 196) -> matmul(ones(196, 3)) -> flatten -> dense(2)",
  };
  for (const char *body : bodies) {
    INFO(body);
    CHECK(jitVersusInterpreter(inference("[1, 28, 28]", body), 3) < 5e-5);
  }
}

TEST_CASE("dropout while training needs the step number, and says so") {
  // A graph with dropout but no @step input (not a step graph): refused.
  Graph g = test::modelGraph("[4]", "x -> dropout(0.5) -> dense(2)");
  std::string why;
  CHECK(loops::canLower(g, false, why)); // evaluation: dropout is the identity
  CHECK_FALSE(loops::canLower(g, true, why));
  CHECK(why == "dropout while training without a step number");
}

TEST_CASE("a function the code generator cannot take is reported, not run") {
  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  REQUIRE(jit);
  loops::Function f;
  f.name = "broken";
  f.buffers.push_back({"y", loops::BufferKind::Output, 4, false});
  f.vars = 1;
  // a store to a buffer that does not exist
  f.body = loops::block({loops::loop(0, loops::i64(4),
                                     {loops::store(3, loops::var(0, loops::Type::I64),
                                                   loops::f32(1))})});
  CHECK(jit->compile(f, error) == nullptr);
  CHECK(error == "internal error: invalid loop IR in broken: buffer 3 out of range");
  // a variable read before anything sets it
  f.body = loops::block({loops::store(0, loops::i64(0), loops::var(0, loops::Type::F32))});
  CHECK(jit->compile(f, error) == nullptr);
  CHECK(error == "internal error: invalid loop IR in broken: variable 0 read before it is set");
  // and the JIT still works afterwards
  f.body = loops::block({loops::loop(0, loops::i64(4),
                                     {loops::store(0, loops::var(0, loops::Type::I64),
                                                   loops::f32(2.5))})});
  CompiledFunction fn = jit->compile(f, error);
  INFO(error);
  REQUIRE(fn);
  Runner r(f, fn);
  r.run(1);
  CHECK(r.data("y")[3] == 2.5f);
}
