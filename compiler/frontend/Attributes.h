// Attributes.h — checking the attributes written in a call against a schema.
#pragma once

#include "frontend/AST.h"
#include "ops/Attr.h"
#include "support/Diag.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nnc {

/// How attributes are named in messages: normally "attribute 'p' of
/// dropout"; for an entry with a single value, like `epochs 10`, just
/// "epochs".
enum class AttrNaming { ByName, SingleValue };

/// Constants in scope: a block's parameters, bound to the (constant)
/// expressions they were given.
using Constants = std::map<std::string, const Expr *>;



/// Resolves `positional` (in schema order) and `named` arguments against
/// `schema` for the thing called `what` (e.g. "dense", "optimizer adam").
/// An op whose only attribute is a list takes the list's elements as
/// separate arguments too: `reshape(1, 28, 28)`. Names are looked up in
/// `constants`.
///
/// `schema` for the thing called `what` (e.g. "dense", "optimizer adam").
/// Fills defaults; reports unknown, duplicate, missing, mistyped and
/// out-of-range attributes at their locations. Returns nullopt after an error.
std::optional<Attrs> resolveAttrs(const std::vector<AttrSpec> &schema,
                                  const std::vector<const Arg *> &positional,
                                  const std::vector<const Arg *> &named, const std::string &what,
                                  SourceLoc callLoc, Diag &diag,
                                  AttrNaming naming = AttrNaming::ByName,
                                  const Constants *constants = nullptr);

/// Splits `args` into positional and named ones. A positional argument after
/// a named one is an error (reported; returns false).
bool splitArgs(const std::vector<Arg> &args, std::vector<const Arg *> &positional,
               std::vector<const Arg *> &named, Diag &diag);

/// A one-line description of a schema: `units, bias=true`.
std::string describeSchema(const std::vector<AttrSpec> &schema);

} // namespace nnc
