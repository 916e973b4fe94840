// Parse.h — source text to AST. Parse.cpp is the only file that sees ANTLR.
#pragma once

#include "frontend/AST.h"
#include "support/Diag.h"

#include <cstddef>

namespace nnc {

/// Deepest nesting of brackets (and unary minus) the parser accepts.
constexpr int kMaxNesting = 256;
/// Most tokens a file may have: hundreds of times what any model written by
/// hand needs, and few enough that the largest file is parsed in about a second.
constexpr size_t kMaxTokens = 200'000;

/// Parses source file `file` of `sources`. Lexical and syntax errors go to
/// `diag`; when there are any, the returned module is incomplete and must not
/// be analysed further.
Module parseModule(const SourceManager &sources, uint32_t file, Diag &diag);

} // namespace nnc
