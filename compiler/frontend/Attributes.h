// Attributes.h — checking the attributes written in a call against a schema.
#pragma once

#include "frontend/AST.h"
#include "ops/Attr.h"
#include "support/Diag.h"

#include <optional>
#include <string>
#include <vector>

namespace nnc {

/// Resolves `positional` (in schema order) and `named` arguments against
/// `schema` for the thing called `what` (e.g. "dense", "optimizer adam").
/// Fills defaults; reports unknown, duplicate, missing, mistyped and
/// out-of-range attributes at their locations. Returns nullopt after an error.
std::optional<Attrs> resolveAttrs(const std::vector<AttrSpec> &schema,
                                  const std::vector<const Arg *> &positional,
                                  const std::vector<const Arg *> &named, const std::string &what,
                                  SourceLoc callLoc, Diag &diag);

/// A one-line description of a schema: `units, bias=true`.
std::string describeSchema(const std::vector<AttrSpec> &schema);

} // namespace nnc
