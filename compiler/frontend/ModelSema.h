// ModelSema.h — checking a model body: values, layers, blocks, names and
// shapes.
#pragma once

#include "frontend/AST.h"
#include "frontend/Program.h"
#include "support/Diag.h"

#include <map>
#include <optional>
#include <set>
#include <string>

namespace nnc {

/// The user's blocks by name (already checked for duplicates). A block
/// whose declaration was wrong maps to null: its uses are not checked, and
/// report nothing more.
using BlockTable = std::map<std::string, const BlockDecl *>;

/// Checks one model declaration and builds its layer graph, expanding the
/// blocks it uses, with every value's shape inferred (the batch dimension
/// symbolic). Adds the names of the blocks it used to `usedBlocks`. Returns
/// nullopt after reporting errors.
std::optional<Model> analyzeModel(const ModelDecl &decl, const BlockTable &blocks,
                                  std::set<std::string> &usedBlocks, Diag &diag);

} // namespace nnc
