// SessionTest.cpp — recompiling (the REPL's way): code that lowers to the
// same loop IR is reused from the last compile, code nothing holds leaves
// the JIT, and a reused function computes what a fresh compile computes.
#include "Compile.h"
#include "codegen/JIT.h"
#include "driver/Pipeline.h"
#include "driver/Session.h"
#include "support/Files.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

using namespace nnc;

namespace {

std::string exampleText(const std::string &name) {
  std::string error;
  std::optional<std::string> text =
      readSourceFile(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn", error);
  INFO(error);
  REQUIRE(text);
  return *text;
}

/// `text` with its first line starting `prefix` replaced by `line`.
std::string replaceLine(std::string text, const std::string &prefix, const std::string &line) {
  size_t at = text.find("\n" + prefix);
  REQUIRE(at != std::string::npos);
  size_t end = text.find('\n', at + 1);
  return text.replace(at + 1, end - at - 1, line);
}

Program programOf(const std::string &text) {
  test::Compiled c = test::compile(text, "mnist.nn");
  INFO(c.diagnostics);
  REQUIRE(c.program);
  return *c.program;
}

LoweredProgram lowered(const Program &p) {
  std::string why;
  std::optional<LoweredProgram> l = lowerProgram(p, 8, why);
  INFO(why);
  REQUIRE(l);
  return std::move(*l);
}

/// predict's outputs for a fixed batch of 8, with every parameter set from
/// a fixed pattern (so two sessions of the same model compare).
std::vector<float> predictions(Session &s) {
  nnc_rt::Session &state = s.state();
  for (const nnc_rt::StateTensor &t : state.model().state) {
    float *p = state.trainStep().data(t.name);
    for (int64_t i = 0; i < t.elements; ++i)
      p[i] = static_cast<float>((i * 7919 % 1000) - 500) * 1e-4f;
  }
  state.syncPredict();
  nnc_rt::Runner &predict = state.predict();
  float *x = predict.data(state.model().input);
  REQUIRE(x);
  int64_t n = predict.elements(state.model().input, 8);
  for (int64_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(i % 255) / 255.0f;
  predict.run(8);
  const float *y = predict.data(state.model().logits);
  return std::vector<float>(y, y + predict.elements(state.model().logits, 8));
}

} // namespace

TEST_CASE("sameCode tells apart what compiles differently and nothing else", "[session]") {
  const std::string text = exampleText("mnist");
  LoweredProgram adam = lowered(programOf(text));
  LoweredProgram again = lowered(programOf(text));
  CHECK(loops::sameCode(adam.trainStep, again.trainStep));
  CHECK(loops::sameCode(adam.predict, again.predict));

  // Another optimizer: another training step, the same prediction.
  LoweredProgram sgd = lowered(programOf(replaceLine(text, "optimizer", "optimizer sgd(lr=0.1)")));
  CHECK_FALSE(loops::sameCode(adam.trainStep, sgd.trainStep));
  CHECK(loops::sameCode(adam.predict, sgd.predict));

  // Names and comments do not matter; a constant's last bit does.
  loops::Function renamed = adam.predict;
  renamed.name = "other";
  renamed.buffers[0].name = "other";
  renamed.body.comment = "another comment";
  CHECK(loops::sameCode(adam.predict, renamed));
  loops::Function constant = adam.trainStep;
  bool changed = false;
  // The first f32 constant met, one float step up.
  std::function<loops::ExprRef(const loops::ExprRef &)> bump =
      [&](const loops::ExprRef &e) -> loops::ExprRef {
    if (!e || changed)
      return e;
    if (e->kind == loops::ExprKind::Const && e->type == loops::Type::F32) {
      changed = true;
      return loops::f32(std::nextafter(static_cast<float>(e->f), 1e30f));
    }
    loops::Expr copy = *e;
    copy.a = bump(e->a);
    copy.b = bump(e->b);
    copy.c = bump(e->c);
    copy.d = bump(e->d);
    return changed ? std::make_shared<const loops::Expr>(copy) : e;
  };
  std::function<void(loops::Stmt &)> visit = [&](loops::Stmt &s) {
    s.value = bump(s.value);
    for (loops::Stmt &b : s.body)
      visit(b);
  };
  visit(constant.body);
  REQUIRE(changed);
  CHECK_FALSE(loops::sameCode(adam.trainStep, constant));
}

TEST_CASE("a recompile compiles only what changed and reuses the rest", "[session]") {
  const std::string text = exampleText("mnist");
  CodeCache cache;
  std::string error;
  std::unique_ptr<Session> first = Session::create(programOf(text), 8, error, &cache);
  INFO(error);
  REQUIRE(first);
  CHECK(first->report().compiled == std::vector<std::string>{"train_step", "predict"});
  CHECK(first->report().reused.empty());
  const std::vector<float> before = predictions(*first);

  // The optimizer changes: train_step is compiled again, predict is not.
  Program sgd = programOf(replaceLine(text, "optimizer", "optimizer sgd(lr=0.1)"));
  std::shared_ptr<JIT> jit = cache.jit;
  std::unique_ptr<Session> second = Session::create(sgd, 8, error, &cache);
  REQUIRE(second);
  CHECK(cache.jit == jit);
  CHECK(second->report().compiled == std::vector<std::string>{"train_step"});
  CHECK(second->report().reused == std::vector<std::string>{"predict"});
  first.reset(); // the reused code outlives the session that compiled it
  CHECK(predictions(*second) == before);

  // Nothing changes: nothing is compiled.
  std::unique_ptr<Session> third = Session::create(sgd, 8, error, &cache);
  REQUIRE(third);
  CHECK(third->report().compiled.empty());

  // A layer changes: both are compiled again.
  std::string changedText = text;
  size_t at = changedText.find("fc2: dense(64)");
  REQUIRE(at != std::string::npos);
  changedText.replace(at, 14, "fc2: dense(32)");
  test::Compiled c = test::compile(changedText, "mnist.nn");
  INFO(c.diagnostics);
  REQUIRE(c.program);
  std::unique_ptr<Session> fourth = Session::create(*c.program, 8, error, &cache);
  REQUIRE(fourth);
  CHECK(fourth->report().compiled == std::vector<std::string>{"train_step", "predict"});
}

TEST_CASE("code nothing holds leaves the JIT", "[session]") {
  std::string text = exampleText("mnist");
  LoweredProgram l = lowered(programOf(text));
  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  INFO(error);
  REQUIRE(jit);
  CompiledCode code = jit->compileTracked({&l.predict}, error);
  INFO(error);
  REQUIRE(code.functions.size() == 1);
  REQUIRE(code.symbols.size() == 1);
  CHECK(jit->defines(code.symbols[0]));
  std::string symbol = code.symbols[0];
  code.code.reset();
  CHECK_FALSE(jit->defines(symbol));
  // What compile() makes stays as long as the JIT.
  CompiledFunction kept = jit->compile(l.predict, error);
  REQUIRE(kept);
}
