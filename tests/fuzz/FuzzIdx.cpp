// FuzzIdx.cpp — libFuzzer target: the IDX reader (runtime/Idx.cpp) on the
// input's bytes as a raw file (read as 1 and as 3 dimensions), as a ".gz"
// file (whatever gzip stream the bytes are), and gzip-compressed (so that
// the header checks are reached through zlib as well). Every input must be
// read or refused with an error naming the file; nothing else.
#include "FuzzFile.h"
#include "Idx.h"

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

void read(const std::string &path, size_t rank) {
  nnc_rt::IdxArray array;
  std::string error;
  if (nnc_rt::readIdx(path, rank, array, error)) {
    size_t count = 1;
    for (uint32_t d : array.dims)
      count *= d;
    if (array.dims.size() != rank || array.data.size() != count || !error.empty()) {
      std::cerr << path << ": read " << array.dims.size() << " dimensions and "
                << array.data.size() << " bytes; error '" << error << "'\n";
      std::abort();
    }
  } else if (error.rfind(path, 0) != 0) {
    std::cerr << "the error does not start with the file's name: " << error << "\n";
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static nnc_fuzz::FuzzFile raw("images-idx3-ubyte"), gz("images-idx3-ubyte.gz"),
      packed("packed-idx3-ubyte.gz");
  read(raw.write(data, size), 3);
  read(raw.path(), 1);
  read(gz.write(data, size), 3);
  // The bytes gzip-compressed: a valid stream whose contents are the input.
  gzFile out = gzopen(packed.path().c_str(), "wb1");
  if (out == nullptr)
    std::abort();
  if (size > 0 && gzwrite(out, data, static_cast<unsigned>(size)) != static_cast<int>(size))
    std::abort();
  gzclose(out);
  read(packed.path(), 3);
  return 0;
}
