// JitTrainTest.cpp — the JIT-compiled training step against the reference
// interpreter, step by step: the loss, the learning rate, and every
// parameter, optimizer state and running statistic after each step.
//
// Tolerance: the JIT computes in float32, the interpreter in double. The
// losses agree to about 1e-6 relative (sums of ≤ 10⁴ float terms). A
// parameter moves by lr·(update) per step; float rounding of the gradient
// changes that by about 1e-6 of itself, so after a few steps parameters
// agree to 1e-6 absolute for SGD (lr ≤ 0.1) — a wrong index or a missing
// term moves them by lr·|gradient| ≳ 1e-4. Adam divides by √v, which makes
// the update of a parameter whose gradient is tiny sensitive to rounding,
// so for Adam the bound is 2e-6 on all but a handful of elements, which
// must stay within 1e-4 (measured: three elements of mnist.nn's fc1.weight,
// at most 7.2e-6) — far below the 2·lr = 2e-3 of an update in the wrong
// direction.
#include "Compile.h"
#include "codegen/JIT.h"
#include "codegen/Runner.h"
#include "driver/Pipeline.h"
#include "interp/Trainer.h"
#include "loops/Lower.h"
#include "support/Files.h"

#include "Parallel.h"
#include "Random.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <unistd.h>

using namespace nnc;
using nnc::test::compile;

namespace {

Program programOf(const std::string &text, const std::string &path = "test.nn") {
  test::Compiled c = compile(text, path);
  INFO(c.diagnostics);
  REQUIRE(c.program);
  return *c.program;
}

Program example(const std::string &name) {
  std::string error;
  std::optional<std::string> text =
      readSourceFile(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn", error);
  INFO(error);
  REQUIRE(text);
  return programOf(*text, name + ".nn");
}

/// A compiled training step with its memory.
struct CompiledStep {
  LoweredProgram lowered;
  std::unique_ptr<JIT> jit;
  std::unique_ptr<Runner> runner;
};

CompiledStep compileStep(const Program &p, int64_t capacity) {
  CompiledStep c;
  std::string why;
  std::optional<LoweredProgram> lowered = lowerProgram(p, capacity, why);
  INFO(why);
  REQUIRE(lowered);
  c.lowered = std::move(*lowered);
  std::string error;
  c.jit = JIT::create(error);
  INFO(error);
  REQUIRE(c.jit);
  CompiledFunction fn = c.jit->compile(c.lowered.trainStep, error);
  INFO(error);
  REQUIRE(fn);
  c.runner = std::make_unique<Runner>(c.lowered.trainStep, fn);
  return c;
}

void copyIn(Runner &r, const std::string &name, const Tensor &t) {
  float *p = r.data(name);
  INFO(name);
  REQUIRE(p);
  for (size_t i = 0; i < t.size(); ++i)
    p[i] = static_cast<float>(t[i]);
}

/// Images in [-1, 1) and labels, fixed by `key`.
std::map<std::string, Tensor> batchOf(const Graph &g, int64_t n, int64_t classes, uint64_t key) {
  const Value *x = nullptr;
  for (const Value &v : g.values)
    if (v.kind == ValueKind::Input && v.name[0] != '@') {
      x = &v;
      break;
    }
  REQUIRE(x);
  Tensor images(concreteDims(x->shape, n));
  for (size_t i = 0; i < images.size(); ++i)
    images[i] = 2 * nnc_rt::uniform01(key, 1, i) - 1;
  Tensor labels({n});
  for (int64_t i = 0; i < n; ++i)
    labels[static_cast<size_t>(i)] =
        static_cast<double>(nnc_rt::randomBits(key, 2, static_cast<uint64_t>(i)) % classes);
  return {{x->name, images}, {kLabelsName, labels}};
}

int64_t classesOf(const Program &p) {
  Graph g = buildGraph(p);
  return g.value(g.outputs[0]).shape.dims.back();
}

struct Worst {
  double loss = 0, lr = 0, state = 0;
  std::string where;
};

/// Runs `steps` steps of `p` in both and returns the largest differences.
/// `outliers`: elements allowed beyond `bound`, but never beyond 50·bound
/// (Adam; see the file comment).
Worst trainBoth(const Program &p, int64_t n, int steps, double bound, int outliers = 0) {
  CompiledStep c = compileStep(p, n);
  const StepGraph &s = c.lowered.step;
  std::map<std::string, Tensor> state = initialParams(s.graph, 7);
  for (const auto &[name, t] : state)
    copyIn(*c.runner, name, t);
  int64_t classes = classesOf(p);
  Worst w;
  for (int t = 1; t <= steps; ++t) {
    std::map<std::string, Tensor> batch = batchOf(s.graph, n, classes, static_cast<uint64_t>(t));
    StepResult want = runStep(s, state, batch, t, 5, p.optimizer.attrs.getFloat("lr"),
                              EvalContext{true, static_cast<uint64_t>(p.train.seed),
                                          static_cast<uint64_t>(t)});
    for (const auto &[name, v] : batch) {
      if (name == kLabelsName) {
        int64_t *l = c.runner->labels(name);
        REQUIRE(l);
        for (size_t i = 0; i < v.size(); ++i)
          l[i] = static_cast<int64_t>(v[i]);
      } else {
        copyIn(*c.runner, name, v);
      }
    }
    c.runner->data(kStepName)[0] = static_cast<float>(t);
    c.runner->data(kStepsPerEpochName)[0] = 5;
    c.runner->data(kBaseLrName)[0] = static_cast<float>(p.optimizer.attrs.getFloat("lr"));
    c.runner->run(n);
    double gotLoss = c.runner->data(kLossName)[0];
    w.loss = std::max(w.loss, std::abs(gotLoss - want.loss) / std::max(1.0, std::abs(want.loss)));
    w.lr = std::max(w.lr, std::abs(c.runner->data(kLrName)[0] - want.lr) / want.lr);
    int beyond = 0;
    for (const auto &[name, v] : state) {
      const float *got = c.runner->data(name);
      REQUIRE(got);
      for (size_t i = 0; i < v.size(); ++i) {
        double d = std::abs(v[i] - static_cast<double>(got[i]));
        if (d > bound && d <= 50 * bound && ++beyond <= outliers)
          continue;
        if (d > w.state) {
          w.state = d;
          w.where = name + "[" + std::to_string(i) + "] at step " + std::to_string(t);
        }
      }
    }
  }
  return w;
}

void checkTraining(const Program &p, int64_t n, int steps, double bound, int outliers = 0) {
  Worst w = trainBoth(p, n, steps, bound, outliers);
  INFO("worst state difference " << w.state << " at " << w.where << "; loss " << w.loss
                                 << "; lr " << w.lr);
  CHECK(w.loss < 2e-6);
  CHECK(w.lr < 1e-6);
  CHECK(w.state < bound);
}

std::string program(const std::string &input, const std::string &body,
                    const std::string &rest = "loss cross_entropy\noptimizer sgd(lr=0.1)\n") {
  return "model Net(x: " + input + ") {\n" + body + "\n}\n" + rest;
}

} // namespace

TEST_CASE("the JIT's train_step follows the interpreter on examples/mnist.nn") {
  checkTraining(example("mnist"), 16, 4, 2e-6, 4);
}

TEST_CASE("the JIT's train_step follows the interpreter on every other example") {
  for (const char *name : {"mnist_augment", "fashion", "lenet", "fashion_cnn", "resnet_tiny"}) {
    INFO(name);
    checkTraining(example(name), 4, 2, 2e-6, 4);
  }
}

TEST_CASE("the JIT's train_step follows the interpreter for every op, loss and optimizer") {
  const std::pair<const char *, const char *> cases[] = {
      {"[12]", "x -> dense(7, bias=false) -> sigmoid -> dense(5) -> tanh -> dense(3)"},
      {"[12]", "x -> dense(6) -> leaky_relu(0.1) -> neg -> dense(4) -> gelu -> dense(3)"},
      {"[12]", "x -> dense(6) -> gelu(\"tanh\") -> dense(5) -> softmax -> dense(3)"},
      {"[12]", "x -> dense(6) -> log_softmax -> dense(3)"},
      {"[12]", "h = x -> dense(8) -> relu\nreturn add(h, mul(h, h -> sigmoid)) -> dropout(0) -> "
               "dense(3)"},
      {"[12]", "add(x, ones(12)) -> reshape(3, 4) -> softmax(axis=1) -> flatten -> dense(3)"},
      {"[12]", "t = x -> reshape(3, 4)\nreturn concat(t, t -> neg, axis=1) -> transpose(1, 2) -> flatten -> "
               "dense(3)"},
      {"[12]", "x -> reshape(3, 4) -> sum(axis=2) -> dense(3)"},
      {"[12]", "x -> reshape(3, 4) -> mean(axis=1) -> dense(3)"},
      {"[12]", "t = x -> reshape(3, 4)\nreturn (t @ (t -> transpose)) -> flatten -> dense(3)"},
      {"[12]", "x -> reshape(3, 4) -> matmul(ones(4, 2)) -> flatten -> dense(3)"},
      {"[1, 8, 8]",
       "x -> conv2d(3, [3, 2], stride=[2, 1], padding=[1, 2], bias=false) -> relu -> "
       "maxpool2d(3, stride=2, padding=1) -> flatten -> dense(3)"},
      {"[2, 8, 8]", "x -> conv2d(4, 3, padding=1) -> batchnorm -> relu -> avgpool2d([2, 3], "
                    "stride=1, padding=1) -> flatten -> dense(3)"},
      {"[2, 6, 6]", "x -> maxpool2d(2) -> conv2d(2, 1) -> flatten -> dense(3)"},
      // bias gradients (channel_sum) of 5 channels (one sum at a time), 6 (in
      // pairs) and 8 (four at once)
      {"[2, 5, 5]", "x -> conv2d(5, 3) -> relu -> conv2d(6, 2) -> relu -> conv2d(8, 1) -> "
                    "flatten -> dense(3)"},
      // weight gradients with fewer taps than output channels (rows =
      // channels, columns = taps): padded, a partial group of 4 channels
      {"[1, 7, 9]", "x -> conv2d(10, 3, padding=1) -> relu -> conv2d(7, [1, 2], padding=[0, 1]) -> "
                    "conv2d(9, 1) -> flatten -> dense(3)"},
      {"[12]", "add(x, randn(12)) -> dense(16) -> relu -> dropout(0.5) -> dense(3)"},
  };
  for (auto [input, body] : cases) {
    INFO(body);
    checkTraining(programOf(program(input, body) + "train { seed 5 }\n"), 5, 3, 1e-6);
  }
  // losses, optimizers and schedules on one small model
  const char *settings[] = {
      "loss mse\noptimizer sgd(lr=0.1)\n",
      "loss cross_entropy\noptimizer sgd(lr=0.05, momentum=0.9, weight_decay=1e-3)\n",
      "loss cross_entropy\noptimizer sgd(lr=0.05, momentum=0.9, nesterov=true, dampening=0)\n",
      "loss cross_entropy\noptimizer adamw(lr=1e-2, weight_decay=0.1)\n"
      "schedule cosine(warmup=1, min_lr=1e-4)\ntrain { epochs 3 }\n",
      "loss cross_entropy\noptimizer adam(lr=1e-2, weight_decay=0.01)\n"
      "schedule exponential(gamma=0.5)\n",
  };
  for (const char *rest : settings) {
    INFO(rest);
    checkTraining(programOf(program("[12]", "x -> dense(6) -> relu -> dense(3)", rest)), 5, 4,
                  2e-6, 2);
  }
}

/// Three training steps of `p` on a batch of `n` from fixed parameters, then
/// a prediction of `predictN` images with the parameters reached: the
/// losses, every parameter and the outputs, as compiled now.
std::vector<float> stepBits(const Program &p, int64_t n, int64_t predictN = 0) {
  CompiledStep c = compileStep(p, n);
  const StepGraph &s = c.lowered.step;
  for (const auto &[name, t] : initialParams(s.graph, 3))
    copyIn(*c.runner, name, t);
  std::map<std::string, Tensor> batch = batchOf(s.graph, n, classesOf(p), 5);
  copyIn(*c.runner, "x", batch.at("x"));
  for (size_t i = 0; i < static_cast<size_t>(n); ++i)
    c.runner->labels(kLabelsName)[i] = static_cast<int64_t>(batch.at(kLabelsName)[i]);
  c.runner->data(kStepsPerEpochName)[0] = 10;
  c.runner->data(kBaseLrName)[0] = 1e-3f;
  std::vector<float> out;
  for (int t = 1; t <= 3; ++t) {
    c.runner->data(kStepName)[0] = static_cast<float>(t);
    c.runner->run(n);
    out.push_back(c.runner->data(kLossName)[0]);
  }
  for (ValueId id : s.graph.params()) {
    const std::string &name = s.graph.value(id).name;
    const float *d = c.runner->data(name);
    out.insert(out.end(), d, d + c.runner->elements(name, n));
  }
  if (predictN > 0) {
    std::string error;
    CompiledFunction fn = c.jit->compile(c.lowered.predict, error);
    INFO(error);
    REQUIRE(fn);
    Runner predict(c.lowered.predict, fn);
    for (ValueId id : s.graph.params()) {
      const std::string &name = s.graph.value(id).name;
      if (float *to = predict.data(name))
        std::memcpy(to, c.runner->data(name), c.runner->elements(name, n) * sizeof(float));
    }
    std::memcpy(predict.data("x"), c.runner->data("x"),
                static_cast<size_t>(predict.elements("x", predictN)) * sizeof(float));
    predict.run(predictN);
    std::string output;
    for (const loops::Buffer &b : c.lowered.predict.buffers)
      if (b.kind == loops::BufferKind::Output && output.empty())
        output = b.name;
    const float *y = predict.data(output);
    REQUIRE(y);
    out.insert(out.end(), y, y + predict.elements(output, predictN));
  }
  return out;
}

TEST_CASE("the JIT's train_step gives the same bits on 1 and 2 threads", "[threads]") {
  Program p = example("lenet");
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    nnc_set_threads(threads);
    results.push_back(stepBits(p, 16));
  }
  nnc_set_threads(0);
  REQUIRE(results[0].size() == results[1].size());
  CHECK(std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)) == 0);
}

TEST_CASE("tiles for AVX2 and for AVX-512 registers give the same bits") {
  // --vector-lanes 8 and 16 block the columns of products and convolutions
  // differently (fashion.nn's 64 units: 24 + 24 + 16 against one block of
  // 64; fashion_cnn.nn's grids: blocks of 24 against 48) and every sum must
  // still run in the same order. Prediction: one image (one-row tiles of 64
  // against 128 columns) and 6 (a group of 4 and 2 rows left).
  for (const char *name : {"fashion", "fashion_cnn", "lenet"})
    for (int64_t predictN : {1, 6}) {
      Program p = example(name);
      std::vector<std::vector<float>> results;
      for (int64_t lanes : {8, 16}) {
        setVectorLanes(lanes);
        results.push_back(stepBits(p, 8, predictN));
      }
      setVectorLanes(0);
      INFO(name << ", predicting " << predictN);
      REQUIRE(results[0].size() == results[1].size());
      CHECK(std::memcmp(results[0].data(), results[1].data(),
                        results[0].size() * sizeof(float)) == 0);
    }
}

TEST_CASE("fusion: each parameter's Adam update runs in the loop that computes its gradient") {
  CompiledStep c = compileStep(example("mnist"), 8);
  const loops::Function &f = c.lowered.trainStep;
  // The buffers each top-level group stores to.
  std::vector<std::set<std::string>> stores;
  std::function<void(const loops::Stmt &, std::set<std::string> &)> collect =
      [&](const loops::Stmt &s, std::set<std::string> &into) {
        if (s.kind == loops::StmtKind::Store)
          into.insert(f.buffers[static_cast<size_t>(s.buffer)].name);
        for (const loops::Stmt &b : s.body)
          collect(b, into);
      };
  for (const loops::Stmt &group : f.body.body) {
    stores.emplace_back();
    collect(group, stores.back());
  }
  for (ValueId id : c.lowered.step.graph.params()) {
    const std::string &p = c.lowered.step.graph.value(id).name;
    INFO(p);
    int groups = 0;
    for (size_t g = 0; g < stores.size(); ++g)
      if (stores[g].count(p + "'")) {
        ++groups;
        CHECK(stores[g].count(p + ".exp_avg'"));
        CHECK(stores[g].count(p + ".exp_avg_sq'"));
        // the group is the gradient's: a product (contract) or a bias sum
        const std::string &what = f.body.body[g].comment;
        CHECK((what.find("(contract; line ") != std::string::npos ||
               what.find("(batch_sum; line ") != std::string::npos));
      }
    CHECK(groups == 1);
    // and the gradient itself is never stored
    for (const loops::Buffer &b : f.buffers)
      CHECK(b.name != gradName(p));
  }
}

TEST_CASE("grad_step then apply_update give the whole train_step's result, to the bit") {
  // resnet_tiny: batchnorm running statistics live in the gradient half,
  // SGD with momentum and weight decay in the update half.
  for (const char *name : {"mnist", "resnet_tiny"}) {
    INFO(name);
    Program p = example(name);
    const int64_t n = 4;
    CompiledStep whole = compileStep(p, n);
    StepGraph grad = buildGradStep(p), update = buildUpdateStep(p);
    loops::LowerOptions o;
    o.training = true;
    o.capacity = n;
    o.name = "grad_step";
    loops::Function gf = loops::lower(grad.graph, grad.updates, o);
    o.name = "apply_update";
    loops::Function uf = loops::lower(update.graph, update.updates, o);
    std::string error;
    std::vector<CompiledFunction> fns = whole.jit->compile({&gf, &uf}, error);
    INFO(error);
    REQUIRE(fns.size() == 2);
    Runner g(gf, fns[0]), u(uf, fns[1]);
    std::map<std::string, Tensor> init = initialParams(whole.lowered.step.graph, 11);
    for (const auto &[key, t] : init) {
      copyIn(*whole.runner, key, t);
      if (g.data(key))
        copyIn(g, key, t);
      if (u.data(key))
        copyIn(u, key, t);
    }
    std::map<std::string, Tensor> batch = batchOf(whole.lowered.step.graph, n, classesOf(p), 3);
    for (Runner *r : {whole.runner.get(), &g}) {
      copyIn(*r, "x", batch.at("x"));
      for (size_t i = 0; i < static_cast<size_t>(n); ++i)
        r->labels(kLabelsName)[i] = static_cast<int64_t>(batch.at(kLabelsName)[i]);
    }
    for (Runner *r : {whole.runner.get(), &u}) {
      r->data(kStepsPerEpochName)[0] = 7;
      r->data(kBaseLrName)[0] = 0.01f;
    }
    for (int t = 1; t <= 3; ++t) {
      whole.runner->data(kStepName)[0] = static_cast<float>(t);
      u.data(kStepName)[0] = static_cast<float>(t);
      whole.runner->run(n);
      g.run(n);
      CHECK(g.data(kLossName)[0] == whole.runner->data(kLossName)[0]);
      for (ValueId id : grad.graph.params()) { // the gradients, into the update
        const std::string &param = grad.graph.value(id).name;
        std::memcpy(u.data(gradName(param)), g.data(gradName(param)),
                    static_cast<size_t>(g.elements(gradName(param), n)) * sizeof(float));
      }
      u.run(n);
      // the halves hold their own copies of the parameters: keep the
      // gradient half's in step with the update half's
      for (ValueId id : grad.graph.params()) {
        const std::string &param = grad.graph.value(id).name;
        std::memcpy(g.data(param), u.data(param),
                    static_cast<size_t>(u.elements(param, n)) * sizeof(float));
      }
    }
    for (const auto &[key, t] : init) {
      const float *want = whole.runner->data(key);
      const float *got = u.data(key) ? u.data(key) : g.data(key);
      REQUIRE(got);
      INFO(key);
      CHECK(std::memcmp(want, got, t.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("compiling a training step writes nothing on stderr") {
  // fashion_cnn.nn's pooling gradients are loops LLVM's vectorizer is asked
  // to look at and leaves scalar; it reports that as a warning, which must
  // not reach the user. stderr goes to a file while the step compiles.
  Program p = example("fashion_cnn");
  char path[] = "/tmp/nnc_jit_stderr_XXXXXX";
  int file = mkstemp(path);
  REQUIRE(file >= 0);
  std::fflush(stderr);
  int saved = dup(2);
  REQUIRE(saved >= 0);
  REQUIRE(dup2(file, 2) == 2);
  {
    CompiledStep c = compileStep(p, 4);
  }
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  off_t written = lseek(file, 0, SEEK_END);
  close(file);
  std::string text;
  if (std::FILE *in = std::fopen(path, "r")) {
    char buffer[512];
    size_t n = std::fread(buffer, 1, sizeof buffer - 1, in);
    text.assign(buffer, n);
    std::fclose(in);
  }
  std::remove(path);
  INFO(text);
  CHECK(written == 0);
}
