// ToolSupport.h — what the test tools share: loading a checked program
// from a .nn file, and tensors as JSON.
#pragma once

#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "interp/Tensor.h"
#include "support/Files.h"

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

namespace nnc::tools {

/// The checked program in `path`; diagnostics go to stderr.
inline std::optional<Program> loadProgram(const char *path) {
  SourceManager sources;
  Diag diag(sources, std::cerr);
  std::string error;
  std::optional<std::string> text = readSourceFile(path, error);
  if (!text) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return std::nullopt;
  }
  Module module = parseModule(sources, sources.add(path, *text), diag);
  return diag.hasErrors() ? std::nullopt : analyze(module, sources, diag);
}

/// {"dims": [...], "data": [...]} with every double to 17 digits.
inline std::string tensorJson(const Tensor &t) {
  std::string s = "{\"dims\": [";
  for (size_t i = 0; i < t.dims.size(); ++i)
    s += (i ? ", " : "") + std::to_string(t.dims[i]);
  s += "], \"data\": [";
  char buf[32];
  for (size_t i = 0; i < t.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.17g", t[i]);
    s += (i ? ", " : "") + std::string(buf);
  }
  return s + "]}";
}

} // namespace nnc::tools
