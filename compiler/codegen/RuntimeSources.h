// RuntimeSources.h — the runtime's sources, embedded into nnc when it is
// built (compiler/codegen/EmbedRuntime.cmake), so --emit-cpp can copy them
// into a program without the repository at hand.
#pragma once

#include <vector>

namespace nnc {

struct EmbeddedFile {
  const char *name; ///< `Data.cpp`
  const char *text;
};

/// Every file of runtime/ (headers and sources), by name.
const std::vector<EmbeddedFile> &runtimeSources();

} // namespace nnc
