// Trainer.cpp — one step of a step graph in the reference interpreter.
#include "interp/Trainer.h"

#include <cmath>

namespace nnc {

Tensor scalar(double v) {
  Tensor t(std::vector<int64_t>{});
  t[0] = v;
  return t;
}

StepResult runStep(const StepGraph &step, std::map<std::string, Tensor> &state,
                   const std::map<std::string, Tensor> &batch, int64_t stepNumber,
                   int64_t stepsPerEpoch, double baseLr, const EvalContext &ctx) {
  const Graph &g = step.graph;
  std::map<std::string, Tensor> feeds = state;
  for (const auto &[name, t] : batch)
    feeds[name] = t;
  feeds[kStepName] = scalar(static_cast<double>(stepNumber));
  feeds[kStepsPerEpochName] = scalar(static_cast<double>(stepsPerEpoch));
  feeds[kBaseLrName] = scalar(baseLr);
  EvalContext c = ctx;
  c.step = static_cast<uint64_t>(stepNumber);
  std::vector<Tensor> values = interpret(g, feeds, c);
  for (const auto &[from, to] : step.updates)
    state[g.value(from).name] = values[static_cast<size_t>(to)];
  StepResult r;
  r.loss = step.loss >= 0 ? values[static_cast<size_t>(step.loss)][0] : std::nan("");
  r.lr = step.lr >= 0 ? values[static_cast<size_t>(step.lr)][0] : std::nan("");
  return r;
}

} // namespace nnc
