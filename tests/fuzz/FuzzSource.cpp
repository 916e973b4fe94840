// FuzzSource.cpp — libFuzzer target: a .nn source through the front end
// (parse, sema) and, when it checks, the graph, the loss graph and its
// gradient, each verified. Diagnostics go to a sink. A crash, a hang, a leak
// or an exception other than the diagnostics limit is a bug: every input
// must be answered with diagnostics or a program.
#include "autodiff/Autodiff.h"
#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "graph/Build.h"
#include "graph/Graph.h"
#include "support/Diag.h"
#include "support/Files.h"

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > nnc::kMaxSourceBytes)
    return 0; // refused before parsing, as readSourceFile does
  nnc::SourceManager sources;
  uint32_t file = sources.add("fuzz.nn", std::string(reinterpret_cast<const char *>(data), size));
  std::ostringstream sink;
  nnc::Diag diag(sources, sink);
  try {
    nnc::Module module = nnc::parseModule(sources, file, diag);
    if (diag.hasErrors())
      return 0;
    std::optional<nnc::Program> program = nnc::analyze(module, sources, diag);
    if (!program)
      return 0;
    auto verify = [](const nnc::Graph &g) {
      if (std::string problem = nnc::verifyGraph(g); !problem.empty()) {
        std::cerr << "invalid graph: " << problem << "\n";
        std::abort();
      }
    };
    verify(nnc::buildGraph(*program));
    nnc::Graph loss = nnc::buildLossGraph(*program);
    verify(loss);
    verify(nnc::differentiate(loss, loss.outputs[0], loss.params()).graph);
  } catch (const nnc::DiagLimitReached &) {
  }
  return 0;
}
