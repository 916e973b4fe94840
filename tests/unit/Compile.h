// Compile.h — test helper: run the front end on a string, in process.
#pragma once

#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "graph/Build.h"
#include "support/Files.h"

#include <catch2/catch.hpp>

#include <optional>
#include <sstream>
#include <string>

namespace nnc::test {

struct Compiled {
  std::optional<Module> module;   ///< set when parsing succeeded
  std::optional<Program> program; ///< set when analysis succeeded
  std::string diagnostics;        ///< everything Diag printed
  int errors = 0;
  int warnings = 0;
};

/// Parses and analyses `text` as if it were the file `path`.
inline Compiled compile(const std::string &text, const std::string &path = "test.nn") {
  Compiled c;
  SourceManager sources;
  std::ostringstream out;
  Diag diag(sources, out);
  uint32_t file = sources.add(path, text);
  try {
    Module module = parseModule(sources, file, diag);
    if (!diag.hasErrors()) {
      c.program = analyze(module, sources, diag);
      c.module = std::move(module);
    }
  } catch (const DiagLimitReached &) {
  }
  c.diagnostics = out.str();
  c.errors = diag.errorCount();
  c.warnings = diag.warningCount();
  return c;
}

/// A complete, valid program around a model body.
inline std::string withModel(const std::string &input, const std::string &body,
                             const std::string &loss = "cross_entropy") {
  return "model Net(x: " + input + ") {\n" + body + "\n}\nloss " + loss +
         "\noptimizer adam(lr=1e-3)\n";
}

/// The inference graph, or the loss graph, of a model with input `input`
/// and body `body` (which must check; a failure shows the diagnostics).
inline Graph modelGraph(const std::string &input, const std::string &body, bool withLoss = false) {
  Compiled c = compile(withModel(input, body));
  INFO(c.diagnostics);
  REQUIRE(c.program);
  return withLoss ? buildLossGraph(*c.program) : buildGraph(*c.program);
}

} // namespace nnc::test
