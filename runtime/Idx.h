// Idx.h — reading MNIST-format IDX files (raw or gzip-compressed).
//
// Everything is validated before it is trusted: the magic number, the data
// type, the number of dimensions, that the file holds exactly as many bytes
// as its header promises (checked against the file's size before anything
// is allocated), and that images and labels agree. Every failure is a
// sentence naming the file and what is wrong with it.
//
// C++17 and the standard library only; gzip needs zlib and NNC_WITH_ZLIB.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nnc_rt {

/// An IDX array of unsigned bytes.
struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};

/// Reads `path` expecting `rank` dimensions of unsigned bytes. A name
/// ending in ".gz" is decompressed. Returns false and sets `error`
/// ("FILE: what is wrong") on any problem. `taken`: bytes of the memory cap
/// already spoken for (the compiled model's buffers, data read before); the
/// data must fit in what is left.
bool readIdx(const std::string &path, size_t rank, IdxArray &out, std::string &error,
             uint64_t taken = 0);

/// One split of an MNIST-format data set.
struct Dataset {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> images; ///< count × rows × cols, row-major
  std::vector<uint8_t> labels; ///< count
};

/// Loads `DIR/train-images-idx3-ubyte` and `DIR/train-labels-idx1-ubyte`
/// (`t10k-…` for the test split), each raw or with ".gz" appended, and
/// checks that they agree. Returns false and sets `error` otherwise.
/// `taken`: as readIdx's.
bool loadMnist(const std::string &dir, bool train, Dataset &out, std::string &error,
               uint64_t taken = 0);

} // namespace nnc_rt
