// interp_dump.cpp — test tool: runs the reference interpreter on a .nn
// file's model and prints, as JSON, the input it made, every parameter and
// state tensor, and the output, so that tests/torch/kernels.py can recompute
// the output with PyTorch.
//
//   interp_dump FILE.nn BATCH SEED [train]
#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "graph/Build.h"
#include "interp/Interpreter.h"
#include "support/Files.h"

#include "Random.h"

#include <cstdio>
#include <iostream>

using namespace nnc;

namespace {

void printTensor(const std::string &name, const Tensor &t, bool last) {
  std::printf("  \"%s\": {\"dims\": [", name.c_str());
  for (size_t i = 0; i < t.dims.size(); ++i)
    std::printf("%s%lld", i ? ", " : "", static_cast<long long>(t.dims[i]));
  std::printf("], \"data\": [");
  for (size_t i = 0; i < t.size(); ++i)
    std::printf("%s%.17g", i ? ", " : "", t[i]);
  std::printf("]}%s\n", last ? "" : ",");
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: interp_dump FILE.nn BATCH SEED [train]\n");
    return 2;
  }
  SourceManager sources;
  Diag diag(sources, std::cerr);
  std::string error;
  std::optional<std::string> text = readSourceFile(argv[1], error);
  if (!text) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  uint32_t file = sources.add(argv[1], *text);
  Module module = parseModule(sources, file, diag);
  std::optional<Program> program = diag.hasErrors() ? std::nullopt : analyze(module, sources, diag);
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
    printTensor(name, t, false);
  printTensor("@output", values[static_cast<size_t>(graph.outputs[0])], true);
  std::printf("}\n");
  return 0;
}
