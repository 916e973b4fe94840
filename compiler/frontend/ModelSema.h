// ModelSema.h — checking a model body: values, layers, names and shapes.
#pragma once

#include "frontend/AST.h"
#include "frontend/Program.h"
#include "support/Diag.h"

#include <optional>

namespace nnc {

/// Checks one model declaration and builds its layer graph, with every
/// value's shape inferred (the batch dimension symbolic). Returns nullopt
/// after reporting errors.
std::optional<Model> analyzeModel(const ModelDecl &decl, Diag &diag);

} // namespace nnc
