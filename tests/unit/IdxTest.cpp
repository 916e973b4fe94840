// IdxTest.cpp — the runtime's IDX reader: good files, raw and gzip, and
// every kind of bad one, each answered with the file's name and what is
// wrong, never a crash or a read past the end.
#include "Idx.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <unistd.h>
#include <zlib.h>

using namespace nnc_rt;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nnc-idx-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::vector<uint8_t> header(uint8_t type, std::vector<uint32_t> dims) {
  std::vector<uint8_t> h{0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8)
      h.push_back(static_cast<uint8_t>(d >> s));
  return h;
}

/// A valid IDX file of `dims`, bytes 0, 1, 2, … (mod 256), plus `extra`.
std::vector<uint8_t> idx(std::vector<uint32_t> dims, long extra = 0) {
  std::vector<uint8_t> bytes = header(0x08, dims);
  size_t n = 1;
  for (uint32_t d : dims)
    n *= d;
  for (size_t i = 0; i < n + static_cast<size_t>(std::max(0L, extra)); ++i)
    bytes.push_back(static_cast<uint8_t>(i));
  if (extra < 0)
    bytes.resize(bytes.size() - static_cast<size_t>(-extra));
  return bytes;
}

std::string write(const TempDir &dir, const std::string &name, const std::vector<uint8_t> &bytes) {
  std::string path = dir.path + "/" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes.data()), static_cast<long>(bytes.size()));
  return path;
}

std::string writeGz(const TempDir &dir, const std::string &name,
                    const std::vector<uint8_t> &bytes) {
  std::string path = dir.path + "/" + name;
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  return path;
}

std::string readError(const std::string &path, size_t rank) {
  IdxArray a;
  std::string error;
  CHECK_FALSE(readIdx(path, rank, a, error));
  return error;
}

} // namespace

TEST_CASE("IDX: good files, raw and gzip-compressed") {
  TempDir dir;
  std::vector<uint8_t> bytes = idx({3, 2, 4});
  for (const std::string &path :
       {write(dir, "a-idx3-ubyte", bytes), writeGz(dir, "a-idx3-ubyte.gz", bytes)}) {
    IdxArray a;
    std::string error;
    REQUIRE(readIdx(path, 3, a, error));
    CHECK(a.dims == std::vector<uint32_t>{3, 2, 4});
    REQUIRE(a.data.size() == 24);
    CHECK(a.data[23] == 23);
  }
}

TEST_CASE("IDX: every kind of bad file is refused with its name and the reason") {
  TempDir dir;
  auto check = [&](const std::string &name, const std::vector<uint8_t> &bytes, size_t rank,
                   const std::string &reason) {
    std::string path = write(dir, name, bytes);
    std::string error = readError(path, rank);
    INFO(error);
    CHECK(error.rfind(path + ": ", 0) == 0);
    CHECK(error.find(reason) != std::string::npos);
  };
  check("empty", {}, 3, "is empty");
  check("short", {0, 0}, 3, "too short");
  check("magic", {1, 2, 8, 3, 0, 0, 0, 1}, 3, "not an IDX file");
  check("floats", header(0x0D, {1, 2, 2}), 3, "type 0x0D; nnc reads unsigned bytes");
  check("rank", idx({5}), 3, "has 1 dimensions but images need 3");
  check("labels-rank", idx({5, 2, 2}), 1, "has 3 dimensions but labels need 1");
  check("header", {0, 0, 8, 3, 0, 0, 0, 9, 0, 0}, 3, "truncated inside its header");
  check("zero", header(0x08, {0, 28, 28}), 3, "holds no examples");
  check("zero-rows", header(0x08, {5, 0, 28}), 3, "has a dimension of 0");
  check("truncated", idx({4, 3, 3}, -5), 3, "promises 36 bytes of data but it holds 31");
  check("trailing", idx({4, 3, 3}, 7), 3, "has 7 bytes after the data");
  // 4 billion images: refused from the header, before anything is allocated.
  check("huge", header(0x08, {4000000000u, 28, 28}), 3,
        "its header claims 4000000000 × 28 × 28 bytes of data, more than the 2^40 nnc reads");
  check("large", header(0x08, {100000000u, 28, 28}), 3, "is truncated");
  CHECK(readError(dir.path + "/missing", 3).find("No such file or directory") !=
        std::string::npos);
  CHECK(readError(dir.path, 3).find("is a directory") != std::string::npos);
}

TEST_CASE("IDX: bad gzip files are refused too") {
  TempDir dir;
  std::vector<uint8_t> good = idx({4, 3, 3});
  std::string truncated = writeGz(dir, "t.gz", std::vector<uint8_t>(good.begin(), good.end() - 6));
  CHECK(readError(truncated, 3).find("is truncated") != std::string::npos);
  std::vector<uint8_t> longer = good;
  longer.push_back(1);
  CHECK(readError(writeGz(dir, "l.gz", longer), 3).find("bytes after the data") !=
        std::string::npos);
  CHECK(readError(writeGz(dir, "h.gz", header(0x08, {900000000u, 28, 28})), 3)
            .find("more than its compressed size allows") != std::string::npos);
  // Not gzip at all under a .gz name (zlib would pass it through as it is),
  // even a good raw IDX file: refused for what it is, and an empty one is empty.
  std::string fake = write(dir, "fake.gz", {'h', 'e', 'l', 'l', 'o', '!', '!', '!'});
  CHECK(readError(fake, 3).find("is named .gz but is not gzip data") != std::string::npos);
  CHECK(readError(write(dir, "raw.gz", good), 3).find("name it without .gz") !=
        std::string::npos);
  CHECK(readError(write(dir, "empty.gz", {}), 3).find(": is empty") != std::string::npos);
}

TEST_CASE("MNIST directories: files found raw or compressed, counts must agree") {
  TempDir dir;
  write(dir, "train-images-idx3-ubyte", idx({5, 2, 2}));
  writeGz(dir, "train-labels-idx1-ubyte.gz", idx({5}));
  Dataset d;
  std::string error;
  REQUIRE(loadMnist(dir.path, true, d, error));
  CHECK(d.count == 5);
  CHECK(d.rows == 2);
  CHECK(d.images.size() == 20);
  CHECK(d.labels.size() == 5);
  CHECK_FALSE(loadMnist(dir.path, false, d, error));
  CHECK(error == dir.path + "/t10k-images-idx3-ubyte: not found (nor " + dir.path +
                     "/t10k-images-idx3-ubyte.gz)");
  write(dir, "t10k-images-idx3-ubyte", idx({5, 2, 2}));
  write(dir, "t10k-labels-idx1-ubyte", idx({4}));
  CHECK_FALSE(loadMnist(dir.path, false, d, error));
  CHECK(error.find("holds 5 images but") != std::string::npos);
  CHECK(error.find("holds 4 labels") != std::string::npos);
}

TEST_CASE("Debian's Fashion-MNIST files load, where the package is installed") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (::access((dir + "/t10k-images-idx3-ubyte.gz").c_str(), R_OK) != 0) {
    WARN("skipped: dataset-fashion-mnist is not installed");
    return;
  }
  Dataset test;
  std::string error;
  REQUIRE(loadMnist(dir, false, test, error));
  CHECK(test.count == 10000);
  CHECK(test.rows == 28);
  CHECK(test.cols == 28);
  int outOfRange = 0;
  for (uint8_t l : test.labels)
    outOfRange += l >= 10;
  CHECK(outOfRange == 0);
}
