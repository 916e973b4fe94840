// train_dump.cpp — test tool: trains a .nn file's model for a few steps in
// the reference interpreter and prints, as JSON, the initial parameters,
// every batch, every step's loss and learning rate, and the final
// parameters, so that tests/torch/optimizers.py can replay the same steps
// with torch.optim.
//
//   train_dump FILE.nn STEPS BATCH STEPS_PER_EPOCH SEED
#include "ToolSupport.h"
#include "interp/Trainer.h"

#include "Random.h"

#include <cstdio>
#include <iostream>

using namespace nnc;

namespace {

std::string params(const Graph &g, const std::map<std::string, Tensor> &state) {
  std::string s = "{";
  bool first = true;
  for (ValueId id : g.params()) {
    const std::string &name = g.value(id).name;
    s += std::string(first ? "" : ", ") + "\"" + name + "\": " + tools::tensorJson(state.at(name));
    first = false;
  }
  return s + "}";
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: train_dump FILE.nn STEPS BATCH STEPS_PER_EPOCH SEED\n");
    return 2;
  }
  std::optional<Program> program = tools::loadProgram(argv[1]);
  if (!program)
    return 1;
  int steps = std::stoi(argv[2]);
  int64_t n = std::stoll(argv[3]), perEpoch = std::stoll(argv[4]);
  uint64_t seed = std::stoull(argv[5]);
  StepGraph step = buildTrainStep(*program);
  std::map<std::string, Tensor> state = initialParams(step.graph, seed);
  const Value &input = step.graph.values[0];
  int64_t classes = program->model.values[static_cast<size_t>(program->model.output)].shape.dims[1];
  std::printf("{\"initial\": %s,\n \"steps\": [\n", params(step.graph, state).c_str());
  for (int t = 1; t <= steps; ++t) {
    Tensor x(concreteDims(input.shape, n)), labels({n});
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = 2 * nnc_rt::uniform01(seed, nnc_rt::streamId("x"), uint64_t(t) * 100000 + i) - 1;
    for (int64_t i = 0; i < n; ++i)
      labels[static_cast<size_t>(i)] = static_cast<double>((i * 7 + t) % classes);
    double baseLr = program->optimizer.attrs.getFloat("lr");
    StepResult r = runStep(step, state, {{input.name, x}, {kLabelsName, labels}}, t, perEpoch, baseLr,
                           EvalContext{true, seed, 0});
    std::printf("  {\"x\": %s, \"labels\": %s, \"loss\": %.17g, \"lr\": %.17g}%s\n", tools::tensorJson(x).c_str(),
                tools::tensorJson(labels).c_str(), r.loss, r.lr, t == steps ? "" : ",");
  }
  std::printf(" ],\n \"final\": %s}\n", params(step.graph, state).c_str());
  return 0;
}
