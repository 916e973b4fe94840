// FuzzFile.h — the fuzz targets' inputs as files, for readers that take a
// path: one file per process under $TMPDIR (or /tmp), rewritten per input
// and removed at exit.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace nnc_fuzz {

class FuzzFile {
public:
  /// A file named `name` (its suffix matters: ".gz" is read as gzip).
  explicit FuzzFile(const std::string &name) {
    const char *tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/nnc-fuzz-" + std::to_string(::getpid()) +
            "-" + name;
  }
  ~FuzzFile() { std::remove(path_.c_str()); }
  FuzzFile(const FuzzFile &) = delete;
  FuzzFile &operator=(const FuzzFile &) = delete;

  /// Replaces the file's contents; aborts if it cannot (not the reader's fault).
  const std::string &write(const void *data, size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char *>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out)
      std::abort();
    return path_;
  }
  const std::string &path() const { return path_; }

private:
  std::string path_;
};

} // namespace nnc_fuzz
