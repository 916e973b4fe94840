// Files.cpp — reading source files with size limits.
#include "support/Files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace nnc {

std::optional<std::string> readSourceFile(const std::string &path, std::string &error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = "cannot open '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  if (S_ISDIR(st.st_mode)) {
    error = "'" + path + "' is a directory, not a .nn file";
    return std::nullopt;
  }
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxSourceBytes) {
    error = "'" + path + "' is " + std::to_string(static_cast<uint64_t>(st.st_size) >> 20) +
            " MiB; .nn files larger than 64 MiB are refused";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  // Read in chunks so that a pipe or a growing file is bounded too.
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxSourceBytes) {
      error = "'" + path + "' is larger than 64 MiB; .nn files that large are refused";
      return std::nullopt;
    }
  }
  if (in.bad()) {
    error = "cannot read '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  return text;
}

} // namespace nnc
