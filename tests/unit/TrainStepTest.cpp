// TrainStepTest.cpp — the training step: learning-rate schedules and
// optimizer updates against values computed by hand, the two halves against
// the whole step, and the interpreter training a model on data it can learn.
#include "Compile.h"
#include "graph/Build.h"
#include "interp/Trainer.h"

#include "Random.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace nnc;
using nnc::test::compile;

namespace {

Program programOf(const std::string &settings,
                  const std::string &model = "x -> fc: dense(3)", const std::string &in = "[4]") {
  test::Compiled c =
      compile("model Net(x: " + in + ") { " + model + " }\nloss cross_entropy\n" + settings);
  INFO(c.diagnostics);
  REQUIRE(c.program);
  return *c.program;
}

/// A fixed batch: images in [-1, 1), labels 0..classes-1.
std::map<std::string, Tensor> batchOf(const Graph &g, int64_t n, int64_t classes, uint64_t key) {
  Tensor x(concreteDims(g.values[0].shape, n));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 2 * nnc_rt::uniform01(key, 1, i) - 1;
  Tensor labels({n});
  for (int64_t i = 0; i < n; ++i)
    labels[static_cast<size_t>(i)] = static_cast<double>((i + static_cast<int64_t>(key)) % classes);
  return {{g.values[0].name, x}, {kLabelsName, labels}};
}

/// The learning rate the step graph computes at `step`.
double lrAt(const Program &p, int64_t step, int64_t stepsPerEpoch) {
  StepGraph s = buildUpdateStep(p);
  std::map<std::string, Tensor> state = initialParams(s.graph, 1);
  std::map<std::string, Tensor> grads;
  for (const Value &v : s.graph.values)
    if (v.kind == ValueKind::Input && v.name.rfind("d:", 0) == 0)
      grads[v.name] = Tensor(v.shape.dims);
  return runStep(s, state, grads, step, stepsPerEpoch, 0.1, EvalContext{true, 1, 0}).lr;
}

} // namespace

TEST_CASE("schedules: the learning rate per epoch, as PyTorch's schedulers") {
  // 10 steps an epoch: steps 1..10 are epoch 0, 11..20 epoch 1, …
  Program step = programOf("optimizer sgd(lr=0.1)\nschedule step(every=2, gamma=0.5)\n");
  CHECK(lrAt(step, 1, 10) == Approx(0.1));
  CHECK(lrAt(step, 20, 10) == Approx(0.1));
  CHECK(lrAt(step, 21, 10) == Approx(0.05));  // epoch 2
  CHECK(lrAt(step, 61, 10) == Approx(0.0125)); // epoch 6
  Program expo = programOf("optimizer sgd(lr=0.1)\nschedule exponential(gamma=0.9)\n");
  CHECK(lrAt(expo, 35, 10) == Approx(0.1 * std::pow(0.9, 3)));
  Program cosine =
      programOf("optimizer sgd(lr=0.1)\nschedule cosine(min_lr=0.01)\ntrain { epochs 4 }\n");
  for (int epoch = 0; epoch < 4; ++epoch)
    CHECK(lrAt(cosine, epoch * 10 + 1, 10) ==
          Approx(0.01 + 0.09 * (1 + std::cos(M_PI * epoch / 4)) / 2));
  Program warm = programOf("optimizer sgd(lr=0.1)\nschedule constant(warmup=2)\n");
  CHECK(lrAt(warm, 1, 10) == Approx(0.1 / 20));
  CHECK(lrAt(warm, 10, 10) == Approx(0.05));
  CHECK(lrAt(warm, 20, 10) == Approx(0.1));
  CHECK(lrAt(warm, 200, 10) == Approx(0.1));
  Program plain = programOf("optimizer sgd(lr=0.1)\n");
  CHECK(lrAt(plain, 7, 3) == Approx(0.1));
}

namespace {

/// Three steps of the update half, with gradients g_t fixed per step,
/// against `expected(t, p, g, state)` computed by hand.
void checkOptimizer(const std::string &settings,
                    const std::function<double(int, double, double, std::vector<double> &)> &rule) {
  Program p = programOf(settings);
  StepGraph s = buildUpdateStep(p);
  std::map<std::string, Tensor> state = initialParams(s.graph, 7);
  Tensor start = state["fc.weight"];
  std::vector<std::vector<double>> handState(start.size(), std::vector<double>(3, 0.0));
  std::vector<double> hand = start.data;
  for (int t = 1; t <= 3; ++t) {
    std::map<std::string, Tensor> grads;
    for (const Value &v : s.graph.values)
      if (v.kind == ValueKind::Input && v.name.rfind("d:", 0) == 0) {
        Tensor g(v.shape.dims);
        for (size_t i = 0; i < g.size(); ++i)
          g[i] = std::sin(static_cast<double>(i * 7 + static_cast<size_t>(t) * 3));
        grads[v.name] = g;
      }
    runStep(s, state, grads, t, 100, p.optimizer.attrs.getFloat("lr"), EvalContext{true, 1, 0});
    for (size_t i = 0; i < hand.size(); ++i)
      hand[i] = rule(t, hand[i], grads[gradName("fc.weight")][i], handState[i]);
  }
  for (size_t i = 0; i < hand.size(); ++i)
    CHECK(state["fc.weight"][i] == Approx(hand[i]).epsilon(1e-12));
}

} // namespace

TEST_CASE("sgd, with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD") {
  checkOptimizer("optimizer sgd(lr=0.1)\n",
                 [](int, double p, double g, std::vector<double> &) { return p - 0.1 * g; });
  auto momentum = [](double lr, double m, double damp, bool nesterov, double wd) {
    return [=](int t, double p, double g, std::vector<double> &s) {
      double d = g + wd * p;
      s[0] = t == 1 ? d : m * s[0] + (1 - damp) * d;
      return p - lr * (nesterov ? d + m * s[0] : s[0]);
    };
  };
  checkOptimizer("optimizer sgd(lr=0.1, momentum=0.9)\n", momentum(0.1, 0.9, 0, false, 0));
  checkOptimizer("optimizer sgd(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)\n",
                 momentum(0.05, 0.8, 0.3, false, 0.01));
  checkOptimizer("optimizer sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=1e-3)\n",
                 momentum(0.1, 0.9, 0, true, 1e-3));
}

TEST_CASE("adam and adamw with bias correction, as torch.optim.Adam and AdamW") {
  auto adam = [](double lr, double b1, double b2, double eps, double wd, bool decoupled) {
    return [=](int t, double p, double g, std::vector<double> &s) {
      if (decoupled)
        p *= 1 - lr * wd;
      else
        g += wd * p;
      s[0] = b1 * s[0] + (1 - b1) * g;
      s[1] = b2 * s[1] + (1 - b2) * g * g;
      double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
      return p - (lr / bc1) * s[0] / (std::sqrt(s[1]) / std::sqrt(bc2) + eps);
    };
  };
  checkOptimizer("optimizer adam(lr=1e-3)\n", adam(1e-3, 0.9, 0.999, 1e-8, 0, false));
  checkOptimizer("optimizer adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1)\n",
                 adam(0.01, 0.8, 0.99, 1e-6, 0.1, false));
  checkOptimizer("optimizer adamw(lr=0.01)\n", adam(0.01, 0.9, 0.999, 1e-8, 0.01, true));
}

TEST_CASE("the gradient half then the update half equal the whole step") {
  Program p = programOf("optimizer adam(lr=0.01)\nschedule step(every=1, gamma=0.5)\n",
                        "x -> a: dense(6) -> batchnorm -> relu -> b: dense(3)");
  StepGraph whole = buildTrainStep(p), grad = buildGradStep(p), update = buildUpdateStep(p);
  REQUIRE(verifyGraph(whole.graph).empty());
  REQUIRE(verifyGraph(grad.graph).empty());
  REQUIRE(verifyGraph(update.graph).empty());
  std::map<std::string, Tensor> one = initialParams(whole.graph, 3), two = one;
  for (int t = 1; t <= 3; ++t) {
    std::map<std::string, Tensor> batch = batchOf(whole.graph, 5, 3, static_cast<uint64_t>(t));
    EvalContext ctx{true, 3, 0};
    StepResult a = runStep(whole, one, batch, t, 2, 0.01, ctx);
    // The halves: gradients first, then the update fed with them.
    std::map<std::string, Tensor> feeds = two;
    for (const auto &[n, v] : batch)
      feeds[n] = v;
    feeds[kStepName] = scalar(t);
    feeds[kFirstExampleName] = scalar(0);
    EvalContext c = ctx;
    c.step = static_cast<uint64_t>(t);
    std::vector<Tensor> values = interpret(grad.graph, feeds, c);
    for (const auto &[from, to] : grad.updates) // running statistics
      two[grad.graph.value(from).name] = values[static_cast<size_t>(to)];
    std::map<std::string, Tensor> grads;
    std::vector<ValueId> params = grad.graph.params();
    for (size_t i = 0; i < params.size(); ++i)
      grads[gradName(grad.graph.value(params[i]).name)] = values[static_cast<size_t>(grad.grads[i])];
    StepResult b = runStep(update, two, grads, t, 2, 0.01, ctx);
    CHECK(a.loss == values[static_cast<size_t>(grad.loss)][0]);
    CHECK(a.lr == b.lr);
  }
  for (const auto &[name, t] : one)
    CHECK(t.data == two.at(name).data);
}

TEST_CASE("batchnorm's running statistics follow PyTorch's update") {
  Program p = programOf("optimizer sgd(lr=0.1)\n", "x -> a: dense(2) -> bn: batchnorm(momentum=0.2) -> b: dense(3)");
  StepGraph s = buildTrainStep(p);
  std::map<std::string, Tensor> state = initialParams(s.graph, 5);
  std::map<std::string, Tensor> batch = batchOf(s.graph, 4, 3, 1);
  // The batch statistics of a's output, computed by hand.
  std::map<std::string, Tensor> feeds = state;
  for (const auto &[n, v] : batch)
    feeds[n] = v;
  Graph model = buildGraph(p);
  std::vector<Tensor> values = interpret(model, feeds, EvalContext{true, 5, 1});
  const Tensor &h = values[static_cast<size_t>(model.nodes[0].output)]; // a's output, [4, 2]
  runStep(s, state, batch, 1, 10, 0.1, EvalContext{true, 5, 0});
  for (size_t c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (size_t r = 0; r < 4; ++r)
      mean += h[r * 2 + c] / 4;
    for (size_t r = 0; r < 4; ++r)
      var += (h[r * 2 + c] - mean) * (h[r * 2 + c] - mean) / 3; // unbiased
    CHECK(state["bn.running_mean"][c] == Approx(0.8 * 0 + 0.2 * mean));
    CHECK(state["bn.running_var"][c] == Approx(0.8 * 1 + 0.2 * var));
  }
}

TEST_CASE("the interpreter trains examples/mnist.nn on data it can learn") {
  // A learnable synthetic set: 64 fixed random images, each labelled by
  // which of 10 fixed random directions it projects onto most.
  std::string error;
  std::optional<std::string> text =
      readSourceFile(std::string(NNC_SOURCE_DIR) + "/examples/mnist.nn", error);
  REQUIRE(text);
  test::Compiled c = compile(*text, "mnist.nn");
  REQUIRE(c.program);
  StepGraph s = buildTrainStep(*c.program);
  std::map<std::string, Tensor> state = initialParams(s.graph, 42);
  const int64_t n = 64;
  Tensor x({n, 1, 28, 28}), labels({n});
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = nnc_rt::uniform01(9, 1, i);
  for (int64_t r = 0; r < n; ++r) {
    double best = -1e300;
    for (int64_t k = 0; k < 10; ++k) {
      double dot = 0;
      for (int64_t i = 0; i < 784; ++i)
        dot += x[static_cast<size_t>(r * 784 + i)] *
               (nnc_rt::uniform01(9, 2, static_cast<uint64_t>(k * 784 + i)) - 0.5);
      if (dot > best) {
        best = dot;
        labels[static_cast<size_t>(r)] = static_cast<double>(k);
      }
    }
  }
  std::map<std::string, Tensor> batch{{"x", x}, {kLabelsName, labels}};
  double first = 0, last = 0;
  for (int t = 1; t <= 60; ++t) {
    StepResult r = runStep(s, state, batch, t, 1000, 1e-3, EvalContext{true, 42, 0});
    if (t == 1)
      first = r.loss;
    last = r.loss;
  }
  INFO("loss " << first << " -> " << last);
  CHECK(first == Approx(std::log(10.0)).margin(0.2)); // untrained: about ln 10
  CHECK(last < first / 4);                            // the stated factor
}
