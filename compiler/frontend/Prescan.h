// Prescan.h — checks a source text before ANTLR sees it: that it is UTF-8,
// that it nests no deeper than the parser can recurse, and that it is small
// enough to parse quickly.
#pragma once

#include "support/Diag.h"

namespace nnc {

/// Finds the first byte that is not valid UTF-8; reports it and returns false.
bool checkUtf8(const SourceFile &src, uint32_t file, Diag &diag);

/// Rejects nesting deeper than kMaxNesting and more than kMaxTokens tokens
/// (see Parse.h); reports and returns false.
bool prescan(const SourceFile &src, uint32_t file, Diag &diag);

} // namespace nnc
