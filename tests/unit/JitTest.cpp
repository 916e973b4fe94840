// JitTest.cpp — JIT-compiled loops against the reference interpreter.
//
// Tolerance: the JIT computes in float32 and the interpreter in double. A
// dot product of K terms in float32 is within about K·2⁻²⁴·Σ|terms| of the
// exact value; for these layers (K ≤ 784, |x·w| ≲ 0.04) that is below 2e-5,
// while a wrong index or a missing term changes an output by 1e-3 or more.
#include "Compile.h"
#include "codegen/JIT.h"
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
  REQUIRE(loops::canLower(graph, why));
  loops::Function f = loops::lowerInference(graph);
  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  INFO(error);
  REQUIRE(jit);
  auto start = std::chrono::steady_clock::now();
  CompiledFunction fn = jit->compile(f, error);
  INFO(error);
  REQUIRE(fn);
  using Ms = std::chrono::duration<double, std::milli>;
  double ms = Ms(std::chrono::steady_clock::now() - start).count();
  WARN(graph.name << ": JIT compile " << ms << " ms");
  std::map<std::string, Tensor> feeds = initialParams(graph, 17);
  Tensor x(concreteDims(graph.values[0].shape, n));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = nnc_rt::uniform01(17, 99, i);
  feeds[graph.values[0].name] = x;
  std::vector<Tensor> expected = interpret(graph, feeds, EvalContext{});
  // float32 buffers, in the lowered function's order
  std::vector<std::vector<float>> storage;
  std::vector<float *> pointers;
  for (const loops::Buffer &b : f.buffers) {
    size_t count = static_cast<size_t>(b.perExample * (b.batched ? n : 1));
    std::vector<float> data(count, 0.0f);
    auto feed = feeds.find(b.name);
    if (feed != feeds.end())
      for (size_t i = 0; i < count; ++i)
        data[i] = static_cast<float>(feed->second[i]);
    storage.push_back(std::move(data));
  }
  for (auto &s : storage)
    pointers.push_back(s.data());
  fn(pointers.data(), n);
  double worst = 0;
  for (size_t b = 0; b < f.buffers.size(); ++b) {
    if (f.buffers[b].kind != loops::BufferKind::Output)
      continue;
    const Tensor &want = expected[static_cast<size_t>(graph.outputs[0])];
    REQUIRE(want.size() == storage[b].size());
    for (size_t i = 0; i < want.size(); ++i)
      worst = std::max(worst, std::abs(want[i] - static_cast<double>(storage[b][i])));
  }
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

TEST_CASE("the JIT agrees with the interpreter on every lowered op") {
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

TEST_CASE("the loop IR names each nest after its layer, with explicit FMAs") {
  Graph g = inference("[4]", "x -> fc: dense(3) -> relu");
  std::ostringstream out;
  loops::print(loops::lowerInference(g), out);
  std::string text = out.str();
  CHECK(text.find("// fc (dense)") != std::string::npos);
  CHECK(text.find("fma(x[") != std::string::npos);
  CHECK(text.find("output relu_1: f32[N * 3]") != std::string::npos);
}

TEST_CASE("the JIT agrees with the interpreter on convolutional models") {
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

TEST_CASE("graphs with ops not lowered yet are recognized, not mis-compiled") {
  Graph g = inference("[4]", "add(x, randn(4)) -> dense(2)");
  std::string why;
  CHECK_FALSE(loops::canLower(g, why));
  CHECK(why == "randn");
}
