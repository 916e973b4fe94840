// Sema.h — semantic analysis: names, attributes and shapes.
#pragma once

#include "frontend/AST.h"
#include "frontend/Program.h"
#include "support/Diag.h"

#include <optional>

namespace nnc {

/// Checks `module` and resolves it into a Program. Every mistake found is
/// reported to `diag` (analysis goes on after an error where it can, so one
/// run shows independent mistakes together); returns nullopt if any was.
std::optional<Program> analyze(const Module &module, const SourceManager &sources, Diag &diag);

} // namespace nnc
