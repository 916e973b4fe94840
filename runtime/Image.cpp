// Image.cpp — reading one grayscale image: IDX, PGM and PNG (see Image.h).
#include "Image.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

#ifdef NNC_WITH_ZLIB
#include <zlib.h>
#endif

namespace nnc_rt {
namespace {

/// Files larger than this are refused before they are read.
constexpr uint64_t kMaxFileBytes = uint64_t(1) << 30;

bool fail(std::string &error, const std::string &path, const std::string &what) {
  error = path + ": " + what;
  return false;
}

std::string str(uint64_t v) {
  return std::to_string(v);
}

/// "1 byte", "2 bytes".
std::string bytes(uint64_t n) {
  return str(n) + (n == 1 ? " byte" : " bytes");
}

#ifdef NNC_WITH_ZLIB
std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}
#endif

/// A byte as it can be shown in a message: 'x' if printable, else 0xNN.
std::string showByte(uint8_t c) {
  char buf[16];
  if (c >= 0x21 && c < 0x7F)
    std::snprintf(buf, sizeof buf, "'%c'", c);
  else
    std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
  return buf;
}

uint32_t bigEndian32(const uint8_t *p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

/// Checks a width and height against kMaxImageSide (both are non-zero).
bool checkSize(std::string &error, const std::string &path, uint64_t width, uint64_t height) {
  if (width > kMaxImageSide || height > kMaxImageSide)
    return fail(error, path,
                "is " + str(width) + " x " + str(height) + " pixels; nnc reads images of at most " +
                    str(kMaxImageSide) + " x " + str(kMaxImageSide));
  return true;
}

bool readWholeFile(const std::string &path, std::vector<uint8_t> &bytes, std::string &error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fail(error, path, std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    return fail(error, path, "is a directory, not an image");
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxFileBytes)
    return fail(error, path,
                "is " + str(static_cast<uint64_t>(st.st_size)) +
                    " bytes; nnc reads image files of at most 1 GiB");
  FILE *f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return fail(error, path, std::strerror(errno));
  bytes.clear();
  uint8_t buf[65536];
  bool ok = true;
  for (;;) {
    size_t got = std::fread(buf, 1, sizeof buf, f);
    bytes.insert(bytes.end(), buf, buf + got);
    if (bytes.size() > kMaxFileBytes) { // not a regular file, so not checked above
      std::fclose(f);
      return fail(error, path, "holds more than 1 GiB; nnc reads image files of at most 1 GiB");
    }
    if (got < sizeof buf) {
      ok = !std::ferror(f);
      break;
    }
  }
  std::fclose(f);
  if (!ok)
    return fail(error, path, "cannot be read");
  return true;
}

// ---------------------------------------------------------------- IDX

/// Checks the header of an in-memory IDX array of one image, of which `n`
/// bytes are at hand, and finds its size. `where` qualifies messages about
/// a decompressed file ("" for a raw one).
bool parseIdxHeader(const std::string &path, const uint8_t *b, size_t n, const std::string &where,
                    uint64_t &headerBytes, uint64_t &rows, uint64_t &cols, std::string &error) {
  if (n < 4)
    return fail(error, path, "is too short to be an IDX file" + where);
  if (b[2] != 0x08) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", b[2]);
    return fail(error, path,
                "is an IDX file of data type " + std::string(hex) +
                    "; nnc reads images of unsigned bytes (type 0x08)");
  }
  size_t rank = b[3];
  if (rank != 2 && rank != 3)
    return fail(error, path,
                "is an IDX file of " + str(rank) + (rank == 1 ? " dimension" : " dimensions") +
                    "; an image is an idx3 file holding one image or an idx2 "
                    "array (rows x columns)");
  headerBytes = 4 + 4 * rank;
  if (n < headerBytes)
    return fail(error, path, "is truncated inside its IDX header" + where);
  uint32_t dims[3];
  for (size_t i = 0; i < rank; ++i) {
    dims[i] = bigEndian32(b + 4 + 4 * i);
    if (dims[i] == 0)
      return fail(error, path, "has a dimension of 0 in its IDX header");
  }
  if (rank == 3 && dims[0] != 1)
    return fail(error, path,
                "holds " + str(dims[0]) + " images; --predict reads a file of exactly one image");
  rows = dims[rank - 2];
  cols = dims[rank - 1];
  return checkSize(error, path, cols, rows);
}

/// Parses an in-memory IDX array of one image (see parseIdxHeader).
bool parseIdx(const std::string &path, const uint8_t *b, size_t n, const std::string &where,
              GrayImage &out, std::string &error) {
  uint64_t headerBytes = 0, rows = 0, cols = 0;
  if (!parseIdxHeader(path, b, n, where, headerBytes, rows, cols, error))
    return false;
  uint64_t size = rows * cols, have = n - headerBytes;
  if (have < size)
    return fail(error, path,
                "is truncated" + where + ": its header promises " + bytes(size) +
                    " of pixels but it holds " + str(have));
  if (have > size)
    return fail(error, path,
                "has " + bytes(have - size) + " after the " + bytes(size) +
                    " of pixels its header describes" + where);
  out.format = "IDX";
  out.width = static_cast<uint32_t>(cols);
  out.height = static_cast<uint32_t>(rows);
  out.pixels.resize(size);
  for (uint64_t i = 0; i < size; ++i)
    out.pixels[i] = static_cast<float>(b[headerBytes + i] / 255.0);
  return true;
}

#ifdef NNC_WITH_ZLIB
/// Decompresses a gzip file (one or more members) into `out`: all of it if
/// it is at most `limit` + 1 bytes, else `limit` bytes and `more` set.
bool gunzip(const std::string &path, const std::vector<uint8_t> &in, uint64_t limit,
            std::vector<uint8_t> &out, bool &more, std::string &error) {
  more = false;
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    return fail(error, path, "cannot be decompressed (zlib failed to start)");
  out.assign(std::min<uint64_t>(limit + 1, 1 << 16), 0);
  size_t produced = 0, offset = 0;
  bool ok = true;
  while (true) {
    if (produced == out.size()) {
      if (out.size() > limit) {
        more = true;
        --produced;
        break;
      }
      out.resize(std::min<uint64_t>(limit + 1, out.size() * 2));
    }
    z.next_in = const_cast<Bytef *>(in.data() + offset);
    z.avail_in = static_cast<uInt>(std::min<size_t>(in.size() - offset, 1u << 30));
    z.next_out = out.data() + produced;
    z.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, 1u << 30));
    uInt availIn = z.avail_in, availOut = z.avail_out;
    int ret = inflate(&z, Z_NO_FLUSH);
    offset += availIn - z.avail_in;
    produced += availOut - z.avail_out;
    if (ret == Z_STREAM_END) {
      if (offset == in.size())
        break;
      // Another gzip member follows (as gzip itself allows), or garbage.
      if (in.size() - offset < 2 || in[offset] != 0x1F || in[offset + 1] != 0x8B) {
        ok = fail(error, path,
                  "has " + bytes(in.size() - offset) + " after the end of its gzip data");
        break;
      }
      inflateReset(&z);
      continue;
    }
    if (ret == Z_OK)
      continue;
    if (ret == Z_BUF_ERROR && z.avail_out == 0)
      continue; // grow the output
    ok = fail(error, path,
              ret == Z_BUF_ERROR
                  ? "is a truncated gzip file"
                  : std::string("is a damaged gzip file (zlib: ") +
                        (z.msg ? z.msg : "error " + str(static_cast<uint64_t>(-ret))) + ")");
    break;
  }
  inflateEnd(&z);
  out.resize(produced);
  return ok;
}
#endif

bool readIdxImage(const std::string &path, const std::vector<uint8_t> &file, GrayImage &out,
                  std::string &error) {
  if (file[0] != 0x1F) // raw
    return parseIdx(path, file.data(), file.size(), "", out, error);
#ifdef NNC_WITH_ZLIB
  // The header first, then exactly the bytes it describes: nothing is
  // allocated for more than the header promises.
  const std::string where = " (after decompression)";
  std::vector<uint8_t> data;
  bool more;
  if (!gunzip(path, file, 16, data, more, error))
    return false;
  if (data.size() < 2 || data[0] != 0 || data[1] != 0)
    return fail(error, path,
                data.empty() ? "is gzip-compressed and decompresses to nothing"
                             : "is gzip-compressed but does not hold an IDX file "
                               "(nnc reads gzip only around IDX)");
  uint64_t headerBytes = 0, rows = 0, cols = 0;
  if (!parseIdxHeader(path, data.data(), data.size(), where, headerBytes, rows, cols, error))
    return false;
  if (more) {
    if (!gunzip(path, file, headerBytes + rows * cols, data, more, error))
      return false;
    if (more)
      return fail(error, path,
                  "has bytes after the " + bytes(rows * cols) + " of pixels its header describes" +
                      where);
  }
  return parseIdx(path, data.data(), data.size(), where, out, error);
#else
  return fail(error, path,
              "is gzip-compressed, and this build has no zlib; decompress it with "
              "gunzip, or build with -DNNC_WITH_ZLIB -lz");
#endif
}

// ---------------------------------------------------------------- PGM

bool isSpace(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool isDigit(uint8_t c) {
  return c >= '0' && c <= '9';
}

class PgmParser {
public:
  PgmParser(const std::string &path, const std::vector<uint8_t> &b, std::string &error)
      : path_(path), b_(b), error_(error) {}

  bool parse(GrayImage &out) {
    bool plain = b_[1] == '2';
    pos_ = 2;
    uint64_t width, height, maxval;
    if (!headerNumber("width", width) || !headerNumber("height", height) ||
        !headerNumber("maxval", maxval))
      return false;
    if (width == 0 || height == 0)
      return fail(error_, path_,
                  std::string("has a ") + (width == 0 ? "width" : "height") +
                      " of 0 in its PGM header");
    if (width > kSaturated || height > kSaturated)
      return fail(error_, path_,
                  std::string("has a ") + (width > kSaturated ? "width" : "height") +
                      " of more than 10^12 in its PGM header; nnc reads images "
                      "of at most " +
                      str(kMaxImageSide) + " x " + str(kMaxImageSide));
    if (!checkSize(error_, path_, width, height))
      return false;
    if (maxval == 0 || maxval > 65535)
      return fail(error_, path_,
                  "has a maxval of " + (maxval > kSaturated ? "more than 10^12" : str(maxval)) +
                      " in its PGM header; PGM allows 1 to 65535");
    // Exactly one whitespace character ends the header.
    if (pos_ >= b_.size())
      return fail(error_, path_, "is truncated: its PGM header ends without pixels");
    if (!isSpace(b_[pos_]))
      return fail(error_, path_,
                  "has " + showByte(b_[pos_]) +
                      " right after its maxval where PGM needs whitespace");
    ++pos_;
    out.format = "PGM";
    out.width = static_cast<uint32_t>(width);
    out.height = static_cast<uint32_t>(height);
    uint64_t count = width * height;
    return plain ? plainPixels(out, count, maxval) : binaryPixels(out, count, maxval);
  }

private:
  /// Skips whitespace and '#' comments (to the end of the line).
  void skipSpace() {
    while (pos_ < b_.size()) {
      if (isSpace(b_[pos_])) {
        ++pos_;
      } else if (b_[pos_] == '#') {
        while (pos_ < b_.size() && b_[pos_] != '\n' && b_[pos_] != '\r')
          ++pos_;
      } else {
        break;
      }
    }
  }

  static constexpr uint64_t kSaturated = 1000000000000ull;

  /// Reads a decimal number; values past 10^12 come back as more than
  /// kSaturated (but not exactly).
  uint64_t number() {
    uint64_t v = 0;
    while (pos_ < b_.size() && isDigit(b_[pos_])) {
      if (v <= kSaturated)
        v = v * 10 + (b_[pos_] - '0');
      ++pos_;
    }
    return v;
  }

  bool headerNumber(const char *what, uint64_t &v) {
    size_t before = pos_;
    skipSpace();
    if (pos_ >= b_.size())
      return fail(error_, path_,
                  std::string("is truncated inside its PGM header (it has no ") + what + ")");
    if (pos_ == before)
      return fail(error_, path_,
                  "has " + showByte(b_[pos_]) +
                      " in its PGM header where "
                      "whitespace should come before the " +
                      what);
    if (!isDigit(b_[pos_]))
      return fail(error_, path_,
                  "has " + showByte(b_[pos_]) + " in its PGM header where the " + what +
                      " should be");
    v = number();
    return true;
  }

  bool tooLarge(uint64_t v, uint64_t maxval, uint64_t i, uint64_t width) {
    return fail(error_, path_,
                "has a pixel value of " + (v > kSaturated ? "more than 10^12" : str(v)) +
                    " above its maxval " + str(maxval) + " (at x=" + str(i % width) +
                    ", y=" + str(i / width) + ")");
  }

  bool binaryPixels(GrayImage &out, uint64_t count, uint64_t maxval) {
    uint64_t bytesPer = maxval > 255 ? 2 : 1, need = count * bytesPer, have = b_.size() - pos_;
    std::string pixels = str(out.width) + " x " + str(out.height) + " pixels (" + bytes(need) + ")";
    if (have < need)
      return fail(error_, path_,
                  "is truncated: its header promises " + pixels + " but it holds " + bytes(have) +
                      " of pixels");
    if (have > need)
      return fail(error_, path_,
                  "has " + bytes(have - need) + " after the " + pixels + " its header promises");
    out.pixels.resize(count);
    const uint8_t *p = b_.data() + pos_;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t v = bytesPer == 2 ? (uint64_t(p[2 * i]) << 8) | p[2 * i + 1] : p[i];
      if (v > maxval)
        return tooLarge(v, maxval, i, out.width);
      out.pixels[i] = static_cast<float>(double(v) / double(maxval));
    }
    return true;
  }

  size_t lineOf(size_t at) const {
    size_t line = 1;
    for (size_t i = 0; i < at && i < b_.size(); ++i)
      line += b_[i] == '\n';
    return line;
  }

  bool plainPixels(GrayImage &out, uint64_t count, uint64_t maxval) {
    // Every sample but the last takes at least two bytes (a digit and a
    // separator), which bounds what is worth reserving.
    uint64_t have = b_.size() - pos_;
    out.pixels.clear();
    out.pixels.reserve(std::min<uint64_t>(count, have / 2 + 1));
    for (uint64_t i = 0; i < count; ++i) {
      skipSpace();
      if (pos_ >= b_.size())
        return fail(error_, path_,
                    "is truncated: its header promises " + str(out.width) + " x " +
                        str(out.height) + " = " + str(count) + " pixels but it holds " + str(i));
      if (!isDigit(b_[pos_]))
        return fail(error_, path_,
                    "has " + showByte(b_[pos_]) + " among its pixels (line " + str(lineOf(pos_)) +
                        ")");
      uint64_t v = number();
      if (pos_ < b_.size() && !isSpace(b_[pos_]) && b_[pos_] != '#')
        return fail(error_, path_,
                    "has " + showByte(b_[pos_]) + " among its pixels (line " + str(lineOf(pos_)) +
                        ")");
      if (v > maxval)
        return tooLarge(v, maxval, i, out.width);
      out.pixels.push_back(static_cast<float>(double(v) / double(maxval)));
    }
    skipSpace();
    if (pos_ < b_.size())
      return fail(error_, path_,
                  "has more than the " + str(out.width) + " x " + str(out.height) + " = " +
                      str(count) + " pixels its header promises (line " + str(lineOf(pos_)) + ")");
    return true;
  }

  const std::string &path_;
  const std::vector<uint8_t> &b_;
  std::string &error_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------- PNG

#ifdef NNC_WITH_ZLIB

const char *colorTypeName(unsigned t) {
  switch (t) {
  case 0:
    return "gray";
  case 2:
    return "RGB";
  case 3:
    return "palette";
  case 4:
    return "gray + alpha";
  case 6:
    return "RGBA";
  default:
    return "unknown";
  }
}

/// The Adam7 passes: first column and row, column and row steps.
struct Pass {
  uint32_t x0, y0, dx, dy;
};
constexpr Pass kAdam7[7] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                            {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

class PngDecoder {
public:
  PngDecoder(const std::string &path, const std::vector<uint8_t> &b, std::string &error)
      : path_(path), b_(b), error_(error) {}

  bool decode(GrayImage &out) {
    if (!readChunks())
      return false;
    std::vector<uint8_t> raw;
    if (!inflateData(raw))
      return false;
    out.format = "PNG";
    out.width = width_;
    out.height = height_;
    out.pixels.assign(uint64_t(width_) * height_, 0.0f);
    if (!interlaced_)
      return unfilterPass(raw.data(), Pass{0, 0, 1, 1}, width_, height_, 0, out);
    size_t offset = 0;
    for (int p = 0; p < 7; ++p) {
      const Pass &pass = kAdam7[p];
      uint32_t pw = passExtent(width_, pass.x0, pass.dx),
               ph = passExtent(height_, pass.y0, pass.dy);
      if (pw == 0 || ph == 0)
        continue; // an empty pass has no bytes at all, not even filter bytes
      if (!unfilterPass(raw.data() + offset, pass, pw, ph, p + 1, out))
        return false;
      offset += size_t(ph) * (1 + rowBytes(pw));
    }
    return true;
  }

private:
  static uint32_t passExtent(uint32_t size, uint32_t start, uint32_t step) {
    return size > start ? (size - start + step - 1) / step : 0;
  }
  uint64_t rowBytes(uint64_t w) const { return (w * bitsPerPixel_ + 7) / 8; }

  bool bad(const std::string &what) { return fail(error_, path_, what); }

  bool readIhdr(const uint8_t *d, uint32_t length) {
    if (length != 13)
      return bad("has an IHDR chunk of " + str(length) + " bytes (it must be 13)");
    width_ = bigEndian32(d);
    height_ = bigEndian32(d + 4);
    depth_ = d[8];
    colorType_ = d[9];
    if (width_ == 0 || height_ == 0)
      return bad(std::string("has a ") + (width_ == 0 ? "width" : "height") +
                 " of 0 in its IHDR chunk");
    if (!checkSize(error_, path_, width_, height_))
      return false;
    bool depthOk;
    switch (colorType_) {
    case 0:
      depthOk = depth_ == 1 || depth_ == 2 || depth_ == 4 || depth_ == 8 || depth_ == 16;
      break;
    case 3:
      depthOk = depth_ == 1 || depth_ == 2 || depth_ == 4 || depth_ == 8;
      break;
    case 2:
    case 4:
    case 6:
      depthOk = depth_ == 8 || depth_ == 16;
      break;
    default:
      return bad("has color type " + str(colorType_) +
                 " in its IHDR chunk; PNG has types 0, 2, 3, 4 and 6");
    }
    if (!depthOk)
      return bad("has bit depth " + str(depth_) + " with color type " + str(colorType_) + " (" +
                 colorTypeName(colorType_) + ") in its IHDR chunk, which PNG does not allow (" +
                 (colorType_ == 0   ? "gray allows 1, 2, 4, 8 and 16"
                  : colorType_ == 3 ? "palette allows 1, 2, 4 and 8"
                                    : "it allows 8 and 16") +
                 ")");
    if (d[10] != 0)
      return bad("has compression method " + str(d[10]) + " in its IHDR chunk (PNG has only 0)");
    if (d[11] != 0)
      return bad("has filter method " + str(d[11]) + " in its IHDR chunk (PNG has only 0)");
    if (d[12] > 1)
      return bad("has interlace method " + str(d[12]) +
                 " in its IHDR chunk (PNG has 0, none, and 1, Adam7)");
    interlaced_ = d[12] == 1;
    static const unsigned channels[7] = {1, 0, 3, 1, 2, 0, 4};
    channels_ = channels[colorType_];
    bitsPerPixel_ = channels_ * depth_;
    return true;
  }

  bool readChunks() {
    size_t pos = 8;
    bool seenIhdr = false, seenPlte = false, seenTrns = false, seenIend = false;
    std::string previous;
    while (pos < b_.size()) {
      if (b_.size() - pos < 8)
        return bad("is truncated: the chunk at byte " + str(pos) + " is cut off in its header");
      uint32_t length = bigEndian32(&b_[pos]);
      const uint8_t *t = &b_[pos + 4];
      for (int i = 0; i < 4; ++i)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z')))
          return bad("has a chunk at byte " + str(pos) + " whose type is not four letters (" +
                     showByte(t[i]) + "): the file is damaged");
      std::string type(reinterpret_cast<const char *>(t), 4);
      if (length > 0x7FFFFFFFu)
        return bad("has a " + type + " chunk at byte " + str(pos) + " with an invalid length (" +
                   str(length) + ")");
      if (b_.size() - pos - 8 < uint64_t(length) + 4)
        return bad("is truncated inside its " + type + " chunk at byte " + str(pos) +
                   " (the chunk needs " + str(uint64_t(length) + 12) + " bytes, " +
                   str(b_.size() - pos) + " remain)");
      const uint8_t *data = t + 4;
      uint32_t stored = bigEndian32(data + length);
      uint32_t computed = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), t, length + 4));
      if (stored != computed)
        return bad("has a bad CRC in its " + type + " chunk at byte " + str(pos) + " (stored " +
                   hex32(stored) + ", computed " + hex32(computed) + "): the file is damaged");
      if (!seenIhdr && type != "IHDR")
        return bad("does not start with an IHDR chunk (its first chunk is " + type + ")");
      if (type == "IHDR") {
        if (seenIhdr)
          return bad("has more than one IHDR chunk");
        seenIhdr = true;
        if (!readIhdr(data, length))
          return false;
      } else if (type == "PLTE") {
        if (seenPlte)
          return bad("has more than one PLTE chunk");
        if (!idat_.empty())
          return bad("has its PLTE chunk after its image data (IDAT)");
        if (colorType_ == 0 || colorType_ == 4)
          return bad("has a PLTE chunk, which a grayscale PNG must not have");
        if (length == 0 || length % 3 != 0 || length > 768)
          return bad("has a PLTE chunk of " + bytes(length) +
                     "; it must hold 1 to 256 entries of 3 bytes");
        seenPlte = true;
        palette_.assign(data, data + length);
      } else if (type == "tRNS") {
        if (seenTrns)
          return bad("has more than one tRNS chunk");
        if (!idat_.empty())
          return bad("has its tRNS chunk after its image data (IDAT)");
        seenTrns = true;
        if (colorType_ == 4 || colorType_ == 6)
          return bad(std::string("has a tRNS chunk, which a PNG with an alpha channel (") +
                     colorTypeName(colorType_) + ") must not have");
        if (colorType_ == 3) {
          if (!seenPlte)
            return bad("has its tRNS chunk before its PLTE chunk");
          if (length > palette_.size() / 3)
            return bad("has a tRNS chunk of " + str(length) + " entries but only " +
                       str(palette_.size() / 3) + " palette entries");
          paletteAlpha_.assign(data, data + length);
        } else {
          uint32_t need = colorType_ == 0 ? 2 : 6;
          if (length != need)
            return bad("has a tRNS chunk of " + bytes(length) + "; a " + colorTypeName(colorType_) +
                       " PNG's must be " + str(need));
          hasKey_ = true;
          for (uint32_t i = 0; i < need / 2; ++i)
            key_[i] = (uint32_t(data[2 * i]) << 8) | data[2 * i + 1];
        }
      } else if (type == "IDAT") {
        if (!idat_.empty() && previous != "IDAT")
          return bad("has IDAT chunks that are not consecutive (a " + previous +
                     " chunk comes between them)");
        if (colorType_ == 3 && !seenPlte)
          return bad("is a palette image without a PLTE chunk before its image data");
        idat_.push_back({data, length});
      } else if (type == "IEND") {
        if (length != 0)
          return bad("has an IEND chunk holding " + bytes(length) + " (it must be empty)");
        seenIend = true;
        pos += 12;
        break;
      } else if (t[0] >= 'A' && t[0] <= 'Z') {
        return bad("has a critical chunk " + type + " that nnc does not know");
      } // else: an ancillary chunk (text, gamma, time, …), skipped
      previous = type;
      pos += uint64_t(length) + 12;
    }
    if (!seenIhdr)
      return bad("is truncated: it has a PNG signature and nothing else");
    if (!seenIend)
      return bad("has no IEND chunk: the file is truncated");
    if (pos < b_.size())
      return bad("has " + bytes(b_.size() - pos) + " after its IEND chunk");
    if (idat_.empty())
      return bad("has no IDAT chunk (no image data)");
    return true;
  }

  /// Inflates the concatenated IDAT data into exactly as many bytes as the
  /// IHDR describes; the buffer grows with the data, so a header that
  /// promises far more than the file holds allocates nothing up front.
  bool inflateData(std::vector<uint8_t> &raw) {
    uint64_t expected = 0;
    if (!interlaced_) {
      expected = uint64_t(height_) * (1 + rowBytes(width_));
    } else {
      for (const Pass &p : kAdam7) {
        uint64_t pw = passExtent(width_, p.x0, p.dx), ph = passExtent(height_, p.y0, p.dy);
        if (pw != 0 && ph != 0)
          expected += ph * (1 + rowBytes(pw));
      }
    }
    z_stream z{};
    if (inflateInit(&z) != Z_OK)
      return bad("cannot be decompressed (zlib failed to start)");
    raw.assign(std::min<uint64_t>(expected + 1, 1 << 16), 0);
    size_t produced = 0, chunk = 0;
    z.next_in = const_cast<Bytef *>(idat_[0].data);
    z.avail_in = idat_[0].length;
    bool ended = false;
    std::string problem;
    while (problem.empty()) {
      if (z.avail_in == 0 && chunk + 1 < idat_.size()) {
        ++chunk;
        z.next_in = const_cast<Bytef *>(idat_[chunk].data);
        z.avail_in = idat_[chunk].length;
        continue;
      }
      if (produced == raw.size()) {
        if (raw.size() > expected) {
          problem = "has more image data than its IHDR describes (" + str(width_) + " x " +
                    str(height_) + " " + colorTypeName(colorType_) + " at depth " + str(depth_) +
                    " is " + str(expected) + " bytes of filtered rows)";
          break;
        }
        raw.resize(std::min<uint64_t>(expected + 1, uint64_t(raw.size()) * 2));
      }
      z.next_out = raw.data() + produced;
      z.avail_out = static_cast<uInt>(std::min<size_t>(raw.size() - produced, 1u << 30));
      uInt availOut = z.avail_out;
      int ret = inflate(&z, Z_NO_FLUSH);
      produced += availOut - z.avail_out;
      if (ret == Z_STREAM_END) {
        ended = true;
        break;
      }
      if (ret == Z_OK)
        continue;
      if (ret == Z_BUF_ERROR && z.avail_out == 0)
        continue; // grow the output
      if (ret == Z_BUF_ERROR && z.avail_in == 0) {
        if (chunk + 1 == idat_.size())
          problem = "has compressed image data that ends early (the zlib stream is cut short)";
        continue; // or go on with the next IDAT chunk
      }
      problem = std::string("has image data that does not decompress (zlib: ") +
                (z.msg ? z.msg : "error " + std::to_string(ret)) + ")";
    }
    if (ended) {
      uint64_t left = z.avail_in;
      for (size_t i = chunk + 1; i < idat_.size(); ++i)
        left += idat_[i].length;
      if (produced > expected)
        problem = "has more image data than its IHDR describes (" + str(expected) + " bytes)";
      else if (produced < expected)
        problem = "has too little image data: its IHDR describes " + str(width_) + " x " +
                  str(height_) + " " + colorTypeName(colorType_) + " pixels at depth " +
                  str(depth_) + ", " + str(expected) + " bytes of filtered rows, but its data " +
                  "decompresses to " + str(produced);
      else if (left != 0)
        problem = "has " + bytes(left) + " after the end of its compressed image data";
    }
    inflateEnd(&z);
    if (!problem.empty())
      return bad(problem);
    raw.resize(produced);
    return true;
  }

  /// The i-th sample (of depth_ bits) of an unfiltered row.
  uint32_t sample(const uint8_t *row, uint64_t i) const {
    switch (depth_) {
    case 8:
      return row[i];
    case 16:
      return (uint32_t(row[2 * i]) << 8) | row[2 * i + 1];
    default: {
      uint64_t bit = i * depth_;
      unsigned shift = 8 - depth_ - static_cast<unsigned>(bit % 8);
      return (row[bit / 8] >> shift) & ((1u << depth_) - 1);
    }
    }
  }

  static uint8_t paeth(int a, int b, int c) {
    int p = a + b - c, pa = p > a ? p - a : a - p, pb = p > b ? p - b : b - p,
        pc = p > c ? p - c : c - p;
    if (pa <= pb && pa <= pc)
      return static_cast<uint8_t>(a);
    return static_cast<uint8_t>(pb <= pc ? b : c);
  }

  /// Unfilters the `ph` rows of one pass (`data` starts at its first filter
  /// byte) and writes its pixels into `out`. `passNumber` is 0 when the
  /// image is not interlaced.
  bool unfilterPass(uint8_t *data, const Pass &pass, uint32_t pw, uint32_t ph, int passNumber,
                    GrayImage &out) {
    size_t stride = rowBytes(pw), bpp = std::max<size_t>(1, bitsPerPixel_ / 8);
    std::vector<uint8_t> zeros(stride, 0);
    const uint8_t *prior = zeros.data();
    double maxSample = double((uint32_t(1) << depth_) - 1);
    size_t paletteEntries = palette_.size() / 3;
    for (uint32_t r = 0; r < ph; ++r) {
      uint8_t filter = data[0];
      uint8_t *row = data + 1;
      switch (filter) {
      case 0:
        break;
      case 1:
        for (size_t i = bpp; i < stride; ++i)
          row[i] = static_cast<uint8_t>(row[i] + row[i - bpp]);
        break;
      case 2:
        for (size_t i = 0; i < stride; ++i)
          row[i] = static_cast<uint8_t>(row[i] + prior[i]);
        break;
      case 3:
        for (size_t i = 0; i < stride; ++i) {
          unsigned left = i >= bpp ? row[i - bpp] : 0;
          row[i] = static_cast<uint8_t>(row[i] + ((left + prior[i]) >> 1));
        }
        break;
      case 4:
        for (size_t i = 0; i < stride; ++i) {
          int left = i >= bpp ? row[i - bpp] : 0, upLeft = i >= bpp ? prior[i - bpp] : 0;
          row[i] = static_cast<uint8_t>(row[i] + paeth(left, prior[i], upLeft));
        }
        break;
      default:
        return bad("has filter type " + str(filter) + " on row " + str(r) +
                   (passNumber ? " of interlace pass " + str(passNumber) : std::string()) +
                   " of its image data; PNG has filter types 0 to 4");
      }
      uint32_t y = pass.y0 + r * pass.dy;
      for (uint32_t c = 0; c < pw; ++c) {
        uint32_t x = pass.x0 + c * pass.dx;
        uint64_t s = uint64_t(c) * channels_;
        double gray, alpha = 1.0;
        switch (colorType_) {
        case 0: {
          uint32_t v = sample(row, s);
          gray = v / maxSample;
          if (hasKey_ && v == key_[0])
            alpha = 0.0;
          break;
        }
        case 2: {
          uint32_t rr = sample(row, s), gg = sample(row, s + 1), bb = sample(row, s + 2);
          gray = (0.299 * rr + 0.587 * gg + 0.114 * bb) / maxSample;
          if (hasKey_ && rr == key_[0] && gg == key_[1] && bb == key_[2])
            alpha = 0.0;
          break;
        }
        case 3: {
          uint32_t index = sample(row, s);
          if (index >= paletteEntries)
            return bad("has a pixel (x=" + str(x) + ", y=" + str(y) + ") of palette index " +
                       str(index) + " but its PLTE chunk has only " + str(paletteEntries) +
                       " entries");
          const uint8_t *rgb = &palette_[3 * index];
          gray = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0;
          if (index < paletteAlpha_.size())
            alpha = paletteAlpha_[index] / 255.0;
          break;
        }
        case 4:
          gray = sample(row, s) / maxSample;
          alpha = sample(row, s + 1) / maxSample;
          break;
        default: // 6
          gray =
              (0.299 * sample(row, s) + 0.587 * sample(row, s + 1) + 0.114 * sample(row, s + 2)) /
              maxSample;
          alpha = sample(row, s + 3) / maxSample;
          break;
        }
        double v = gray * alpha;
        out.pixels[uint64_t(y) * width_ + x] = static_cast<float>(v > 1.0 ? 1.0 : v);
      }
      prior = row;
      data += 1 + stride;
    }
    return true;
  }

  struct Span {
    const uint8_t *data;
    uint32_t length;
  };

  const std::string &path_;
  const std::vector<uint8_t> &b_;
  std::string &error_;
  uint32_t width_ = 0, height_ = 0;
  unsigned depth_ = 0, colorType_ = 0, channels_ = 0, bitsPerPixel_ = 0;
  bool interlaced_ = false;
  std::vector<uint8_t> palette_, paletteAlpha_;
  bool hasKey_ = false;
  uint32_t key_[3] = {0, 0, 0};
  std::vector<Span> idat_;
};

#endif // NNC_WITH_ZLIB

const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

bool startsWith(const std::vector<uint8_t> &b, const char *s, size_t n, size_t at = 0) {
  return b.size() >= at + n && std::memcmp(b.data() + at, s, n) == 0;
}

/// What a file nnc does not read looks like, for the message ("" if unknown).
std::string recognise(const std::vector<uint8_t> &b) {
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
    return "it is a JPEG image";
  if (startsWith(b, "GIF87a", 6) || startsWith(b, "GIF89a", 6))
    return "it is a GIF image";
  if (startsWith(b, "BM", 2) && b.size() >= 14)
    return "it looks like a BMP image";
  if (startsWith(b, "II*\0", 4) || startsWith(b, "MM\0*", 4))
    return "it is a TIFF image";
  if (startsWith(b, "RIFF", 4) && startsWith(b, "WEBP", 4, 8))
    return "it is a WebP image";
  if (b.size() >= 3 && b[0] == 'P' && (isSpace(b[2]) || b[2] == '#')) {
    switch (b[1]) {
    case '1':
    case '4':
      return "it is a PBM (bitmap) image, not a PGM graymap";
    case '3':
    case '6':
      return "it is a PPM (color) image, not a PGM graymap";
    case '7':
      return "it is a PAM image, not a PGM graymap";
    default:
      break;
    }
  }
  return "";
}

} // namespace

bool readImage(const std::string &path, GrayImage &out, std::string &error) {
  std::vector<uint8_t> bytes;
  if (!readWholeFile(path, bytes, error))
    return false;
  out = GrayImage{};
  if (bytes.empty())
    return fail(error, path, "is empty");
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0) {
#ifdef NNC_WITH_ZLIB
    return PngDecoder(path, bytes, error).decode(out);
#else
    return fail(error, path,
                "is a PNG image, and this build has no zlib; convert it to PGM, or "
                "build with -DNNC_WITH_ZLIB -lz");
#endif
  }
  if (startsWith(bytes, "\x89PNG", 4))
    return fail(error, path,
                bytes.size() < 8 ? "is truncated inside its PNG signature"
                                 : "starts like a PNG image but its signature is "
                                   "damaged (was it copied as text?)");
  if (bytes.size() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B)
    return readIdxImage(path, bytes, out, error);
  if (bytes.size() >= 2 && bytes[0] == 0 && bytes[1] == 0)
    return readIdxImage(path, bytes, out, error);
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '2' || bytes[1] == '5') &&
      (bytes.size() == 2 || isSpace(bytes[2]) || bytes[2] == '#'))
    return PgmParser(path, bytes, error).parse(out);
  std::string what = recognise(bytes);
  return fail(error, path,
              "not an image nnc reads (IDX, PGM or PNG)" +
                  (what.empty() ? std::string() : "; " + what));
}

} // namespace nnc_rt
