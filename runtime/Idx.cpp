// Idx.cpp — the IDX reader.
#include "Idx.h"

#include "Compiled.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/stat.h>

#ifdef NNC_WITH_ZLIB
#include <zlib.h>
#endif

namespace nnc_rt {
namespace {

/// A byte source: a plain file or a gzip stream.
class Source {
public:
  virtual ~Source() = default;
  /// Reads up to n bytes; returns how many were read, or -1 on error.
  virtual long read(uint8_t *buf, size_t n) = 0;
};

class FileSource final : public Source {
public:
  explicit FileSource(FILE *f) : f_(f) {}
  ~FileSource() override { std::fclose(f_); }
  long read(uint8_t *buf, size_t n) override {
    size_t got = std::fread(buf, 1, n, f_);
    return std::ferror(f_) ? -1 : static_cast<long>(got);
  }

private:
  FILE *f_;
};

#ifdef NNC_WITH_ZLIB
class GzipSource final : public Source {
public:
  explicit GzipSource(gzFile f) : f_(f) {}
  gzFile file() const { return f_; }
  ~GzipSource() override { gzclose(f_); }
  long read(uint8_t *buf, size_t n) override {
    long total = 0;
    while (n > 0) { // gzread takes an unsigned int count
      unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
      int got = gzread(f_, buf, chunk);
      if (got < 0)
        return -1;
      if (got == 0)
        break;
      total += got;
      buf += got;
      n -= static_cast<size_t>(got);
    }
    return total;
  }

private:
  gzFile f_;
};
#endif

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint32_t bigEndian(const uint8_t *p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

bool fail(std::string &error, const std::string &path, const std::string &what) {
  error = path + ": " + what;
  return false;
}

} // namespace

bool readIdx(const std::string &path, size_t rank, IdxArray &out, std::string &error,
             uint64_t taken) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fail(error, path, std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    return fail(error, path, "is a directory, not an IDX file");
  bool gz = endsWith(path, ".gz");
  std::unique_ptr<Source> src;
  if (gz) {
#ifdef NNC_WITH_ZLIB
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr)
      return fail(error, path, std::strerror(errno));
    src = std::make_unique<GzipSource>(f);
#else
    return fail(error, path, "is gzip-compressed, and this build has no zlib; decompress it "
                             "with gunzip, or build with -DNNC_WITH_ZLIB -lz");
#endif
  } else {
    FILE *f = std::fopen(path.c_str(), "rb");
    if (f == nullptr)
      return fail(error, path, std::strerror(errno));
    src = std::make_unique<FileSource>(f);
  }

  uint8_t header[4 + 4 * 8];
  long got = src->read(header, 4);
  if (got < 0)
    return fail(error, path, gz ? "is not a valid gzip file" : "cannot be read");
  if (got == 0)
    return fail(error, path, "is empty");
#ifdef NNC_WITH_ZLIB
  // zlib reads a file without gzip's header as it is: say what it is not.
  if (gz && gzdirect(static_cast<GzipSource &>(*src).file()) == 1)
    return fail(error, path,
                "is named .gz but is not gzip data (its first bytes are not 1F 8B); if it is a "
                "raw IDX file, name it without .gz");
#endif
  if (got < 4)
    return fail(error, path, "is too short to be an IDX file");
  if (header[0] != 0 || header[1] != 0)
    return fail(error, path, "is not an IDX file (its first bytes are not 00 00)");
  if (header[2] != 0x08) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", header[2]);
    return fail(error, path, std::string("holds data of type ") + hex +
                                 "; nnc reads unsigned bytes (type 0x08)");
  }
  if (header[3] != rank)
    return fail(error, path, "has " + std::to_string(header[3]) + " dimensions but " +
                                 (rank == 3 ? "images" : "labels") + " need " +
                                 std::to_string(rank));
  if (src->read(header + 4, 4 * rank) != static_cast<long>(4 * rank))
    return fail(error, path, "is truncated inside its header");
  out.dims.clear();
  uint64_t size = 1;
  for (size_t i = 0; i < rank; ++i) {
    uint32_t d = bigEndian(header + 4 + 4 * i);
    out.dims.push_back(d);
    if (d == 0)
      return fail(error, path, i == 0 ? "holds no examples" : "has a dimension of 0");
    if (size > (uint64_t(1) << 40) / d) {
      std::string dims;
      for (size_t k = 0; k < rank; ++k)
        dims += (k ? " × " : "") + std::to_string(bigEndian(header + 4 + 4 * k));
      return fail(error, path, "its header claims " + dims +
                                   " bytes of data, more than the 2^40 nnc reads");
    }
    size *= d;
  }
  // Check the size before allocating: a raw file must be exactly as long as
  // its header says; a compressed one at most 1032 times its size (zlib's
  // largest ratio).
  uint64_t headerBytes = 4 + 4 * rank, fileBytes = static_cast<uint64_t>(st.st_size);
  if (!gz && fileBytes < headerBytes + size)
    return fail(error, path, "is truncated: its header promises " + std::to_string(size) +
                                 " bytes of data but it holds " +
                                 std::to_string(fileBytes - headerBytes));
  if (!gz && fileBytes > headerBytes + size)
    return fail(error, path, "has " + std::to_string(fileBytes - headerBytes - size) +
                                 " bytes after the data its header describes");
  if (gz && size > fileBytes * 1032)
    return fail(error, path, "claims " + std::to_string(size) +
                                 " bytes of data, more than its compressed size allows");
  const uint64_t cap = memoryCap();
  if (size > cap)
    return fail(error, path, "holds " + bytesText(size) + " of data, more than the " +
                                 bytesText(cap) + " nnc may use (" + memoryCapOrigin() + ")");
  if (taken > cap - size)
    return fail(error, path, "holds " + bytesText(size) + " of data, more than the " +
                                 bytesText(taken >= cap ? 0 : cap - taken) + " left of the " +
                                 bytesText(cap) + " nnc may use (" + memoryCapOrigin() +
                                 "): the compiled model and the data read before it take " +
                                 bytesText(taken));
  out.data.resize(size);
  long read = src->read(out.data.data(), size);
  if (read < 0)
    return fail(error, path, "is a damaged gzip file");
  if (static_cast<uint64_t>(read) < size)
    return fail(error, path, "is truncated: its header promises " + std::to_string(size) +
                                 " bytes of data but it holds " + std::to_string(read));
  uint8_t extra;
  if (gz && src->read(&extra, 1) > 0)
    return fail(error, path, "has bytes after the data its header describes");
  return true;
}

bool loadMnist(const std::string &dir, bool train, Dataset &out, std::string &error,
               uint64_t taken) {
  std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto find = [&](const std::string &base, std::string &path) {
    struct stat st {};
    for (const std::string &candidate : {base, base + ".gz"})
      if (::stat(candidate.c_str(), &st) == 0) {
        path = candidate;
        return true;
      }
    error = base + ": not found (nor " + base + ".gz)";
    return false;
  };
  std::string imagesPath, labelsPath;
  if (!find(prefix + "-images-idx3-ubyte", imagesPath) ||
      !find(prefix + "-labels-idx1-ubyte", labelsPath))
    return false;
  IdxArray images, labels;
  if (!readIdx(imagesPath, 3, images, error, taken) ||
      !readIdx(labelsPath, 1, labels, error, taken + images.data.size()))
    return false;
  if (images.dims[0] != labels.dims[0]) {
    error = imagesPath + " holds " + std::to_string(images.dims[0]) + " images but " +
            labelsPath + " holds " + std::to_string(labels.dims[0]) + " labels";
    return false;
  }
  out.count = images.dims[0];
  out.rows = images.dims[1];
  out.cols = images.dims[2];
  out.images = std::move(images.data);
  out.labels = std::move(labels.data);
  return true;
}

} // namespace nnc_rt
