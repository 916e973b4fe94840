// interp_dump.cpp — test tool: runs the reference interpreter on a .nn
// file's model and prints, as JSON, the input it made, every parameter and
// state tensor, and the output, so that tests/torch/kernels.py can recompute
// the output with PyTorch.
//
//   interp_dump FILE.nn BATCH SEED [train]
#include "ToolSupport.h"
#include "graph/Build.h"
#include "interp/Interpreter.h"

#include "Random.h"

#include <cstdio>
#include <iostream>

using namespace nnc;

int main(int argc, char **argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: interp_dump FILE.nn BATCH SEED [train]\n");
    return 2;
  }
  std::optional<Program> program = tools::loadProgram(argv[1]);
  if (!program)
    return 1;
  int64_t batch = std::stoll(argv[2]);
  uint64_t seed = std::stoull(argv[3]);
  EvalContext ctx{argc > 4 && std::string(argv[4]) == "train", seed, 0};
  Graph graph = buildGraph(*program);
  std::map<std::string, Tensor> feeds = initialParams(graph, seed);
  // State gets non-trivial values, so that evaluation mode is tested too.
  for (const Value &v : graph.values)
    if (v.kind == ValueKind::State)
      for (size_t i = 0; i < feeds[v.name].size(); ++i)
        feeds[v.name][i] = 0.5 + nnc_rt::uniform01(seed, nnc_rt::streamId("state/" + v.name), i);
  const Value &input = graph.values[0];
  Tensor x(concreteDims(input.shape, batch));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 2.0 * nnc_rt::uniform01(seed, nnc_rt::streamId("input"), i) - 1.0;
  feeds[input.name] = x;
  std::vector<Tensor> values = interpret(graph, feeds, ctx);
  std::printf("{\n");
  for (const auto &[name, t] : feeds)
    std::printf("  \"%s\": %s,\n", name.c_str(), tools::tensorJson(t).c_str());
  std::printf("  \"@output\": %s\n",
              tools::tensorJson(values[static_cast<size_t>(graph.outputs[0])]).c_str());
  std::printf("}\n");
  return 0;
}
