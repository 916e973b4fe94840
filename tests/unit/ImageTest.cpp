// ImageTest.cpp — reading one image for --predict: PNG (every colour type,
// bit depth, filter and Adam7), PGM (P5, P2, 16-bit, comments) and IDX
// (raw and gzip), and every kind of bad file, each refused with the file's
// name and what is wrong, never a crash or a read past the end.
//
// The PNGs are made here by a small encoder of the test's own (chunks with
// zlib's crc32, scanlines filtered as asked, Adam7 passes gathered pixel by
// pixel), independent of the decoder's code. Two more were made by another
// encoder, netpbm's pnmtopng, and are checked in below as bytes, so that
// the decoder is also held to a reading of the specification not ours.
#include "Image.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <unistd.h>
#include <zlib.h>

using namespace nnc_rt;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nnc-image-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

using Bytes = std::vector<uint8_t>;

std::string write(const TempDir &dir, const std::string &name, const Bytes &bytes) {
  std::string path = dir.path + "/" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes.data()), static_cast<long>(bytes.size()));
  return path;
}

Bytes text(const std::string &s) {
  return Bytes(s.begin(), s.end());
}

void put32(Bytes &b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8)
    b.push_back(static_cast<uint8_t>(v >> s));
}

// ---------------------------------------------------------------- a PNG encoder

/// One chunk: length, type, data, CRC of type and data.
Bytes chunk(const std::string &type, const Bytes &data) {
  REQUIRE(type.size() == 4);
  // Laid out by index: GCC 12 warns falsely about insert after push_back.
  Bytes b(12 + data.size());
  uint32_t length = static_cast<uint32_t>(data.size());
  for (int i = 0; i < 4; ++i) {
    b[i] = static_cast<uint8_t>(length >> (24 - 8 * i));
    b[4 + i] = static_cast<uint8_t>(type[i]);
  }
  std::copy(data.begin(), data.end(), b.begin() + 8);
  uint32_t crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), &b[4], length + 4));
  for (int i = 0; i < 4; ++i)
    b[8 + data.size() + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  return b;
}

Bytes ihdr(uint32_t w, uint32_t h, uint8_t depth, uint8_t colorType, uint8_t interlace = 0) {
  Bytes d;
  put32(d, w);
  put32(d, h);
  d.insert(d.end(), {depth, colorType, 0, 0, interlace});
  return d;
}

const Bytes kSignature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

Bytes zcompress(const Bytes &raw) {
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  Bytes out(size);
  REQUIRE(compress2(out.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 9) == Z_OK);
  out.resize(size);
  return out;
}

int channelsOf(int colorType) {
  return colorType == 0 || colorType == 3 ? 1 : colorType == 4 ? 2 : colorType == 2 ? 3 : 4;
}

/// An image to encode: samples[(y * w + x) * channels + c].
struct Picture {
  uint32_t w = 0, h = 0;
  int depth = 8, colorType = 0;
  bool interlace = false;
  std::vector<uint32_t> samples;
  Bytes plte, trns;
  /// The filter of the n-th scanline written (over all passes).
  int (*filter)(int n) = [](int n) { return n % 5; };
};

/// Packs one scanline of samples (most significant bits first).
Bytes packRow(const std::vector<uint32_t> &s, int depth) {
  Bytes row;
  if (depth == 16) {
    for (uint32_t v : s) {
      row.push_back(static_cast<uint8_t>(v >> 8));
      row.push_back(static_cast<uint8_t>(v));
    }
    return row;
  }
  int bits = 0;
  unsigned acc = 0;
  for (uint32_t v : s) {
    acc = (acc << depth) | v;
    bits += depth;
    if (bits == 8) {
      row.push_back(static_cast<uint8_t>(acc));
      acc = 0;
      bits = 0;
    }
  }
  if (bits > 0)
    row.push_back(static_cast<uint8_t>(acc << (8 - bits)));
  return row;
}

/// Filters a packed scanline against the previous one (both unfiltered).
Bytes filterRow(int type, const Bytes &row, const Bytes &prior, size_t bpp) {
  Bytes out(row.size());
  for (size_t i = 0; i < row.size(); ++i) {
    int a = i >= bpp ? row[i - bpp] : 0, b = prior.empty() ? 0 : prior[i],
        c = i >= bpp && !prior.empty() ? prior[i - bpp] : 0;
    int predictor = 0;
    switch (type) {
    case 1:
      predictor = a;
      break;
    case 2:
      predictor = b;
      break;
    case 3:
      predictor = (a + b) / 2;
      break;
    case 4: {
      int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
      predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      break;
    }
    default:
      break;
    }
    out[i] = static_cast<uint8_t>(row[i] - predictor);
  }
  return out;
}

/// The filtered scanlines of a picture, as they are compressed into IDAT.
Bytes scanlines(const Picture &p) {
  int channels = channelsOf(p.colorType);
  size_t bpp = std::max(1, channels * p.depth / 8);
  struct P {
    uint32_t x0, y0, dx, dy;
  };
  std::vector<P> passes = {{0, 0, 1, 1}};
  if (p.interlace)
    passes = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
              {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  Bytes raw;
  int n = 0;
  for (const P &pass : passes) {
    Bytes prior; // empty: the first row of every pass has none
    for (uint32_t y = pass.y0; y < p.h; y += pass.dy) {
      std::vector<uint32_t> s;
      for (uint32_t x = pass.x0; x < p.w; x += pass.dx)
        for (int c = 0; c < channels; ++c)
          s.push_back(p.samples[(size_t(y) * p.w + x) * channels + c]);
      if (s.empty())
        break; // an empty pass: no scanlines at all
      Bytes row = packRow(s, p.depth);
      int f = p.filter(n++);
      raw.push_back(static_cast<uint8_t>(f));
      Bytes filtered = filterRow(f, row, prior, bpp);
      raw.insert(raw.end(), filtered.begin(), filtered.end());
      prior = row;
    }
  }
  return raw;
}

/// A whole PNG file; the compressed data is split over `idatChunks` IDATs.
Bytes encode(const Picture &p, int idatChunks = 1) {
  Bytes file = kSignature;
  auto add = [&](const Bytes &c) { file.insert(file.end(), c.begin(), c.end()); };
  add(chunk("IHDR", ihdr(p.w, p.h, static_cast<uint8_t>(p.depth), static_cast<uint8_t>(p.colorType),
                         p.interlace ? 1 : 0)));
  add(chunk("tEXt", text(std::string("Comment") + '\0' + "made by ImageTest")));
  if (!p.plte.empty())
    add(chunk("PLTE", p.plte));
  if (!p.trns.empty())
    add(chunk("tRNS", p.trns));
  Bytes z = zcompress(scanlines(p));
  size_t per = (z.size() + idatChunks - 1) / idatChunks;
  for (size_t at = 0; at < z.size(); at += per)
    add(chunk("IDAT", Bytes(z.begin() + at, z.begin() + std::min(z.size(), at + per))));
  add(chunk("IEND", {}));
  return file;
}

/// Deterministic pseudo-random samples of `depth` bits.
std::vector<uint32_t> randomSamples(size_t n, int depth, uint32_t seed, uint32_t limit = 0) {
  std::vector<uint32_t> s(n);
  uint32_t state = seed * 2654435761u + 1;
  uint32_t mod = limit ? limit : (depth == 16 ? 65536u : 1u << depth);
  for (auto &v : s) {
    state = state * 1664525u + 1013904223u;
    v = (state >> 8) % mod;
  }
  return s;
}

/// What the decoder must produce, computed from the samples by the rules
/// Image.h documents: BT.601 luma, alpha composited over black.
std::vector<double> expectedGray(const Picture &p) {
  int channels = channelsOf(p.colorType);
  double max = std::pow(2.0, p.depth) - 1;
  std::vector<double> g(size_t(p.w) * p.h);
  for (size_t i = 0; i < g.size(); ++i) {
    const uint32_t *s = &p.samples[i * channels];
    auto luma = [](double r, double gg, double b) { return 0.299 * r + 0.587 * gg + 0.114 * b; };
    switch (p.colorType) {
    case 0: {
      bool keyed = p.trns.size() == 2 && s[0] == (uint32_t(p.trns[0]) << 8 | p.trns[1]);
      g[i] = keyed ? 0.0 : s[0] / max;
      break;
    }
    case 2: {
      bool keyed = p.trns.size() == 6;
      for (int c = 0; c < 3; ++c)
        keyed = keyed && s[c] == (uint32_t(p.trns[2 * c]) << 8 | p.trns[2 * c + 1]);
      g[i] = keyed ? 0.0 : luma(s[0], s[1], s[2]) / max;
      break;
    }
    case 3: {
      const uint8_t *rgb = &p.plte[3 * s[0]];
      double alpha = s[0] < p.trns.size() ? p.trns[s[0]] / 255.0 : 1.0;
      g[i] = luma(rgb[0], rgb[1], rgb[2]) / 255.0 * alpha;
      break;
    }
    case 4:
      g[i] = s[0] / max * (s[1] / max);
      break;
    default:
      g[i] = luma(s[0], s[1], s[2]) / max * (s[3] / max);
      break;
    }
  }
  return g;
}

GrayImage readOk(const std::string &path) {
  GrayImage image;
  std::string error;
  bool ok = readImage(path, image, error);
  INFO(error);
  REQUIRE(ok);
  return image;
}

/// Checks every pixel; returns how many differ (for one CHECK per image).
size_t mismatches(const GrayImage &image, const std::vector<double> &expected) {
  REQUIRE(image.pixels.size() == expected.size());
  size_t bad = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    bad += !(std::fabs(image.pixels[i] - expected[i]) <= 1e-6);
  return bad;
}

/// Every (colour type, bit depth) PNG allows.
const std::vector<std::pair<int, int>> kCombos = {{0, 1}, {0, 2},  {0, 4},  {0, 8}, {0, 16},
                                                  {2, 8}, {2, 16}, {3, 1},  {3, 2}, {3, 4},
                                                  {3, 8}, {4, 8},  {4, 16}, {6, 8}, {6, 16}};

Picture picture(uint32_t w, uint32_t h, int colorType, int depth, bool interlace, uint32_t seed) {
  Picture p;
  p.w = w;
  p.h = h;
  p.colorType = colorType;
  p.depth = depth;
  p.interlace = interlace;
  size_t n = size_t(w) * h * channelsOf(colorType);
  if (colorType == 3) {
    uint32_t entries = std::min(1u << depth, 200u); // fewer than 256: not every index is valid
    Bytes rgb;
    for (uint32_t v : randomSamples(3 * entries, 8, seed + 7))
      rgb.push_back(static_cast<uint8_t>(v));
    p.plte = rgb;
    p.samples = randomSamples(n, depth, seed, entries);
  } else {
    p.samples = randomSamples(n, depth, seed);
  }
  return p;
}

std::string comboName(int colorType, int depth, bool interlace) {
  return "type" + std::to_string(colorType) + "-depth" + std::to_string(depth) +
         (interlace ? "-adam7" : "") + ".png";
}

} // namespace

// ---------------------------------------------------------------- PNG, good files

TEST_CASE("PNG: every colour type at every bit depth, plain and Adam7-interlaced", "[image]") {
  TempDir dir;
  for (bool interlace : {false, true})
    for (auto [colorType, depth] : kCombos) {
      // 13 x 11: rows that end inside a byte at depths below 8, and Adam7
      // passes of unequal sizes.
      Picture p = picture(13, 11, colorType, depth, interlace, colorType * 100 + depth);
      std::string path = write(dir, comboName(colorType, depth, interlace), encode(p, 3));
      INFO(path);
      GrayImage image = readOk(path);
      CHECK(image.format == "PNG");
      CHECK(image.width == 13);
      CHECK(image.height == 11);
      CHECK(mismatches(image, expectedGray(p)) == 0);
    }
}

TEST_CASE("PNG: each of the five filters alone, at 1, 8 and 16 bits and 1 to 8 bytes a pixel",
          "[image]") {
  TempDir dir;
  static int current = 0;
  for (int f = 0; f < 5; ++f)
    for (auto [colorType, depth] :
         std::vector<std::pair<int, int>>{{0, 1}, {0, 8}, {2, 8}, {4, 16}, {6, 16}}) {
      current = f;
      Picture p = picture(9, 6, colorType, depth, false, 17 * f + depth);
      p.filter = [](int) { return current; };
      std::string path = write(
          dir, "filter" + std::to_string(f) + "-" + comboName(colorType, depth, false), encode(p));
      INFO(path);
      CHECK(mismatches(readOk(path), expectedGray(p)) == 0);
    }
}

TEST_CASE("PNG: Adam7 at sizes where some passes are empty", "[image]") {
  TempDir dir;
  for (auto [w, h] : std::vector<std::pair<uint32_t, uint32_t>>{
           {1, 1}, {2, 1}, {1, 2}, {3, 3}, {5, 1}, {1, 9}, {8, 8}, {9, 17}})
    for (auto [colorType, depth] : std::vector<std::pair<int, int>>{{0, 1}, {0, 8}, {6, 16}}) {
      Picture p = picture(w, h, colorType, depth, true, w * 31 + h);
      std::string path = write(dir,
                               std::to_string(w) + "x" + std::to_string(h) + "-" +
                                   comboName(colorType, depth, true),
                               encode(p));
      INFO(path);
      GrayImage image = readOk(path);
      CHECK(image.width == w);
      CHECK(image.height == h);
      CHECK(mismatches(image, expectedGray(p)) == 0);
    }
}

TEST_CASE("PNG: colour to gray by BT.601 luma, alpha and tRNS composited over black", "[image]") {
  TempDir dir;
  Picture rgb;
  rgb.w = 5;
  rgb.h = 1;
  rgb.colorType = 2;
  rgb.samples = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30};
  rgb.trns = {0, 10, 0, 20, 0, 30}; // the last pixel is the transparent colour
  GrayImage image = readOk(write(dir, "rgb.png", encode(rgb)));
  REQUIRE(image.pixels.size() == 5);
  CHECK(image.pixels[0] == Approx(0.299).margin(1e-6));
  CHECK(image.pixels[1] == Approx(0.587).margin(1e-6));
  CHECK(image.pixels[2] == Approx(0.114).margin(1e-6));
  CHECK(image.pixels[3] == Approx(1.0).margin(1e-6));
  CHECK(image.pixels[4] == 0.0f);

  Picture rgba;
  rgba.w = 3;
  rgba.h = 1;
  rgba.colorType = 6;
  rgba.samples = {255, 255, 255, 128, 255, 255, 255, 0, 0, 255, 0, 255};
  image = readOk(write(dir, "rgba.png", encode(rgba)));
  CHECK(image.pixels[0] == Approx(128 / 255.0).margin(1e-6));
  CHECK(image.pixels[1] == 0.0f);
  CHECK(image.pixels[2] == Approx(0.587).margin(1e-6));

  Picture gray;
  gray.w = 3;
  gray.h = 1;
  gray.colorType = 0;
  gray.depth = 16;
  gray.samples = {65535, 1000, 0};
  gray.trns = {0x03, 0xE8}; // 1000 is transparent
  image = readOk(write(dir, "gray-key.png", encode(gray)));
  CHECK(image.pixels[0] == 1.0f);
  CHECK(image.pixels[1] == 0.0f);

  Picture pal;
  pal.w = 4;
  pal.h = 1;
  pal.colorType = 3;
  pal.depth = 2;
  pal.plte = {255, 255, 255, 255, 255, 255, 0, 0, 255};
  pal.trns = {255, 51}; // entry 1 is 20% opaque; entry 2 has no alpha: opaque
  pal.samples = {0, 1, 2, 1};
  image = readOk(write(dir, "palette.png", encode(pal)));
  CHECK(image.pixels[0] == 1.0f);
  CHECK(image.pixels[1] == Approx(0.2).margin(1e-6));
  CHECK(image.pixels[2] == Approx(0.114).margin(1e-6));
}

TEST_CASE("PNG: files made by netpbm's pnmtopng, interlaced, decode as netpbm wrote them",
          "[image]") {
  // `pnmtopng -interlace -compression 9` of a 7 x 5 PGM whose pixel (x, y)
  // is (37x + 53y + 11) mod 256: 8-bit gray, Adam7.
  const Bytes grayPng = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
                         0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x05,
                         0x08, 0x00, 0x00, 0x00, 0x01, 0xdb, 0xf6, 0x99, 0x92, 0x00, 0x00, 0x00,
                         0x32, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xe0, 0x66, 0x98, 0xcf,
                         0x7c, 0x9f, 0x85, 0x21, 0xf4, 0x25, 0xf3, 0x7f, 0x13, 0x86, 0xd2, 0xfd,
                         0x9c, 0xc1, 0x8c, 0x06, 0x5e, 0x5e, 0x0c, 0xb3, 0x9e, 0xe8, 0x31, 0xb2,
                         0x78, 0x79, 0x31, 0x3a, 0xa8, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0x32, 0xae,
                         0x82, 0xd0, 0x00, 0x23, 0x84, 0x0b, 0x47, 0x6f, 0x89, 0xfd, 0xbd, 0x00,
                         0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  // The same of a 5 x 3 PPM whose pixel (x, y) is colour (x + 2y) mod 5 of
  // red, green, blue, white, (10, 20, 30): pnmtopng made it a 4-bit
  // palette image, Adam7.
  const Bytes palettePng = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x03, 0x04, 0x03, 0x00, 0x00,
      0x01, 0xde, 0x1f, 0xe8, 0x5d, 0x00, 0x00, 0x00, 0x0f, 0x50, 0x4c, 0x54, 0x45, 0x00,
      0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0x00, 0x0a, 0x14, 0x1e, 0xff, 0x00, 0x00,
      0xa3, 0x6b, 0x5e, 0x73, 0x00, 0x00, 0x00, 0x19, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7,
      0x63, 0x70, 0x60, 0x30, 0x60, 0x60, 0x60, 0x30, 0x12, 0x60, 0x50, 0x64, 0x70, 0x60,
      0x60, 0x34, 0x51, 0x00, 0x00, 0x0b, 0xe7, 0x01, 0x69, 0xb4, 0x40, 0x9e, 0x2d, 0x00,
      0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  TempDir dir;
  GrayImage g = readOk(write(dir, "netpbm-gray.png", grayPng));
  REQUIRE(g.width == 7);
  REQUIRE(g.height == 5);
  std::vector<double> expected;
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x)
      expected.push_back(((37 * x + 53 * y + 11) % 256) / 255.0);
  CHECK(mismatches(g, expected) == 0);

  GrayImage c = readOk(write(dir, "netpbm-palette.png", palettePng));
  REQUIRE(c.width == 5);
  REQUIRE(c.height == 3);
  const double colours[5][3] = {
      {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {10, 20, 30}};
  expected.clear();
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x) {
      const double *rgb = colours[(x + 2 * y) % 5];
      expected.push_back((0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0);
    }
  CHECK(mismatches(c, expected) == 0);
}

// ---------------------------------------------------------------- PGM and IDX, good files

TEST_CASE("PGM: binary and ASCII, 8 and 16 bits, comments in the header", "[image]") {
  TempDir dir;
  Bytes p5 = text("P5\n# made by hand\n3 # width\n2\n# maxval next\n255\n");
  p5.insert(p5.end(), {0, 51, 102, 153, 204, 255});
  GrayImage image = readOk(write(dir, "a.pgm", p5));
  CHECK(image.format == "PGM");
  CHECK(image.width == 3);
  CHECK(image.height == 2);
  CHECK(mismatches(image, {0, 0.2, 0.4, 0.6, 0.8, 1.0}) == 0);

  // maxval > 255: two bytes a sample, most significant first.
  Bytes p5wide = text("P5 2 2 1000\n");
  p5wide.insert(p5wide.end(), {0x03, 0xE8, 0x01, 0xF4, 0x00, 0x00, 0x00, 0x01});
  image = readOk(write(dir, "wide.pgm", p5wide));
  CHECK(mismatches(image, {1.0, 0.5, 0.0, 0.001}) == 0);

  Bytes p5full = text("P5\n1 2\n65535\n");
  p5full.insert(p5full.end(), {0xFF, 0xFF, 0x80, 0x00});
  CHECK(mismatches(readOk(write(dir, "full.pgm", p5full)), {1.0, 32768 / 65535.0}) == 0);

  image = readOk(write(dir, "plain.pgm",
                       text("P2\n# plain\n4 2\n15\n0 15 3\n# a comment\n 5\n"
                            "\t10 1 2 7\n")));
  CHECK(image.width == 4);
  CHECK(mismatches(image, {0, 1, 0.2, 1 / 3.0, 10 / 15.0, 1 / 15.0, 2 / 15.0, 7 / 15.0}) == 0);

  // maxval 1: a bitmap stored as a graymap; no final newline.
  CHECK(mismatches(readOk(write(dir, "bits.pgm", text("P2 2 1 1 1 0"))), {1, 0}) == 0);
  CHECK(mismatches(readOk(write(dir, "p2wide.pgm", text("P2 2 1 60000 60000 30000\n"))),
                   {1, 0.5}) == 0);
}

TEST_CASE("IDX: one image as idx3 or idx2, raw or gzip, told by content not name", "[image]") {
  TempDir dir;
  Bytes idx3 = {0, 0, 8, 3};
  put32(idx3, 1);
  put32(idx3, 2);
  put32(idx3, 3);
  idx3.insert(idx3.end(), {0, 51, 102, 153, 204, 255});
  GrayImage image = readOk(write(dir, "digit-idx3-ubyte", idx3));
  CHECK(image.format == "IDX");
  CHECK(image.width == 3);
  CHECK(image.height == 2);
  CHECK(mismatches(image, {0, 0.2, 0.4, 0.6, 0.8, 1.0}) == 0);

  Bytes idx2 = {0, 0, 8, 2};
  put32(idx2, 3);
  put32(idx2, 1);
  idx2.insert(idx2.end(), {255, 0, 51});
  image = readOk(write(dir, "column.png", idx2)); // the name does not matter
  CHECK(image.width == 1);
  CHECK(image.height == 3);
  CHECK(mismatches(image, {1, 0, 0.2}) == 0);

  std::string gz = dir.path + "/digit.bin"; // gzip, under a name that does not say so
  gzFile f = gzopen(gz.c_str(), "wb");
  gzwrite(f, idx3.data(), static_cast<unsigned>(idx3.size()));
  gzclose(f);
  image = readOk(gz);
  CHECK(image.width == 3);
  CHECK(mismatches(image, {0, 0.2, 0.4, 0.6, 0.8, 1.0}) == 0);
}

// ---------------------------------------------------------------- bad files

namespace {

/// A valid 4 x 3 8-bit gray PNG, taken apart so tests can break one piece.
struct Parts {
  Bytes header = ihdr(4, 3, 8, 0);
  Bytes raw = Bytes(3 * 5, 0); // three rows: filter 0 and four black pixels
  Bytes idat = zcompress(raw);
  Bytes build() const {
    Bytes f = kSignature;
    for (const Bytes &c : {chunk("IHDR", header), chunk("IDAT", idat), chunk("IEND", {})})
      f.insert(f.end(), c.begin(), c.end());
    return f;
  }
};

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes &p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string refusal(const std::string &path) {
  GrayImage image;
  std::string error;
  CHECK_FALSE(readImage(path, image, error));
  return error;
}

} // namespace

TEST_CASE("Bad files are refused with the file's name and the specific reason", "[image]") {
  TempDir dir;
  int n = 0;
  auto check = [&](const Bytes &bytes, const std::string &reason) {
    std::string path = write(dir, "bad" + std::to_string(n++), bytes);
    std::string error = refusal(path);
    INFO("expected: " << reason << "\nactual:   " << error);
    CHECK(error.rfind(path + ": ", 0) == 0);
    CHECK(error.find(reason) != std::string::npos);
  };
  const Parts good;
  const Bytes goodPng = good.build();
  REQUIRE(readOk(write(dir, "good.png", goodPng)).pixels.size() == 12);

  // Not an image at all.
  check({}, "is empty");
  check(text("hello, world\n"), "not an image nnc reads (IDX, PGM or PNG)");
  check({0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F'},
        "not an image nnc reads (IDX, PGM or PNG); it is a JPEG image");
  check(text("GIF89a...."), "it is a GIF image");
  check(text("P6\n1 1\n255\nabc"), "it is a PPM (color) image, not a PGM graymap");
  check(text("P5x"), "not an image nnc reads");

  // PNG: the signature and the chunk structure.
  Bytes crlf = goodPng;
  crlf[4] = '\n'; // what a text-mode copy does to "\r\n"
  check(crlf, "signature is damaged");
  check(kSignature, "it has a PNG signature and nothing else");
  check(Bytes(goodPng.begin(), goodPng.end() - 20),
        "is truncated inside its IDAT chunk at byte 33");
  check(Bytes(goodPng.begin(), goodPng.begin() + 12), "is cut off in its header");
  Bytes badCrc = goodPng;
  badCrc[33 + 8 + 2] ^= 0x40; // a byte inside the IDAT data
  check(badCrc, "has a bad CRC in its IDAT chunk at byte 33");
  Bytes badIhdrCrc = goodPng;
  badIhdrCrc[29] ^= 1; // IHDR's stored CRC
  check(badIhdrCrc, "has a bad CRC in its IHDR chunk at byte 8");
  check(Bytes(goodPng.begin(), goodPng.end() - 12), "has no IEND chunk: the file is truncated");
  check(concat({goodPng, text("junk")}), "has 4 bytes after its IEND chunk");
  check(
      concat({kSignature, chunk("IDAT", good.idat), chunk("IHDR", good.header), chunk("IEND", {})}),
      "does not start with an IHDR chunk (its first chunk is IDAT)");
  Bytes badType = goodPng;
  badType[33 + 4] = '1';
  check(badType, "whose type is not four letters ('1')");
  check(concat({kSignature, chunk("IHDR", good.header), chunk("IEND", {})}), "has no IDAT chunk");
  check(concat({kSignature, chunk("IHDR", good.header),
                chunk("IDAT", Bytes(good.idat.begin(), good.idat.begin() + 5)),
                chunk("tEXt", text("a\0b")),
                chunk("IDAT", Bytes(good.idat.begin() + 5, good.idat.end())), chunk("IEND", {})}),
        "has IDAT chunks that are not consecutive (a tEXt chunk comes between them)");
  check(concat({kSignature, chunk("IHDR", good.header), chunk("ABCD", {}), chunk("IDAT", good.idat),
                chunk("IEND", {})}),
        "has a critical chunk ABCD that nnc does not know");
  check(concat(
            {kSignature, chunk("IHDR", good.header), chunk("IDAT", good.idat), chunk("IEND", {1})}),
        "has an IEND chunk holding 1 byte (it must be empty)");

  // PNG: IHDR.
  auto withHeader = [&](const Bytes &header) {
    Parts p;
    p.header = header;
    return p.build();
  };
  check(withHeader(ihdr(0, 3, 8, 0)), "has a width of 0 in its IHDR chunk");
  check(withHeader(ihdr(4, 0, 8, 0)), "has a height of 0 in its IHDR chunk");
  check(withHeader(ihdr(16385, 3, 8, 0)),
        "is 16385 x 3 pixels; nnc reads images of at most 16384 x 16384");
  check(withHeader(ihdr(0x80000000u, 0x80000000u, 8, 0)), "nnc reads images of at most");
  check(withHeader(ihdr(4, 3, 16, 3)), "has bit depth 16 with color type 3 (palette)");
  check(withHeader(ihdr(4, 3, 4, 2)), "has bit depth 4 with color type 2 (RGB)");
  check(withHeader(ihdr(4, 3, 3, 0)), "has bit depth 3 with color type 0 (gray)");
  check(withHeader(ihdr(4, 3, 8, 5)), "has color type 5 in its IHDR chunk");
  Bytes shortHeader = ihdr(4, 3, 8, 0);
  shortHeader.pop_back();
  check(withHeader(shortHeader), "has an IHDR chunk of 12 bytes (it must be 13)");
  check(withHeader(ihdr(4, 3, 8, 0, 2)), "has interlace method 2");
  Bytes compression = ihdr(4, 3, 8, 0);
  compression[10] = 1;
  check(withHeader(compression), "has compression method 1");
  Bytes filterMethod = ihdr(4, 3, 8, 0);
  filterMethod[11] = 1;
  check(withHeader(filterMethod), "has filter method 1");

  // PNG: the image data.
  auto withIdat = [&](const Bytes &idat) {
    Parts p;
    p.idat = idat;
    return p.build();
  };
  Bytes garbage = good.idat;
  garbage[2] |= 0x06; // the first deflate block's type: 3, which deflate reserves
  check(withIdat(garbage), "has image data that does not decompress (zlib: ");
  check(withIdat(Bytes(good.idat.begin(), good.idat.end() - 5)),
        "has compressed image data that ends early");
  check(withIdat(zcompress(Bytes(14, 0))),
        "has too little image data: its IHDR describes 4 x 3 gray pixels at depth 8, 15 bytes "
        "of filtered rows, but its data decompresses to 14");
  check(withIdat(zcompress(Bytes(16, 0))), "has more image data than its IHDR describes");
  check(withIdat(concat({good.idat, {0, 0}})),
        "has 2 bytes after the end of its compressed image data");
  Bytes badFilter = good.raw;
  badFilter[5] = 5; // the second row's filter byte
  check(withIdat(zcompress(badFilter)), "has filter type 5 on row 1 of its image data");
  Picture laced = picture(9, 9, 0, 8, true, 1);
  Bytes lacedRaw = scanlines(laced);
  lacedRaw[3] = 9; // pass 1 (two pixels a row): the second row's filter byte
  check(concat({kSignature, chunk("IHDR", ihdr(9, 9, 8, 0, 1)), chunk("IDAT", zcompress(lacedRaw)),
                chunk("IEND", {})}),
        "has filter type 9 on row 1 of interlace pass 1");

  // PNG: palette and transparency.
  Parts pal;
  pal.header = ihdr(4, 3, 8, 3);
  check(pal.build(), "is a palette image without a PLTE chunk before its image data");
  auto palette = [&](const Bytes &plte, const Bytes &rows, const Bytes &trns = {}) {
    Bytes f = concat({kSignature, chunk("IHDR", ihdr(4, 3, 8, 3)), chunk("PLTE", plte)});
    if (!trns.empty())
      f = concat({f, chunk("tRNS", trns)});
    return concat({f, chunk("IDAT", zcompress(rows)), chunk("IEND", {})});
  };
  Bytes rows(15, 0);
  rows[7] = 2; // pixel (1, 1): index 2 of a two-entry palette
  check(palette({1, 2, 3, 4, 5, 6}, rows),
        "has a pixel (x=1, y=1) of palette index 2 but its PLTE chunk has only 2 entries");
  check(palette({1, 2, 3, 4}, Bytes(15, 0)), "has a PLTE chunk of 4 bytes");
  check(palette({1, 2, 3}, Bytes(15, 0), {255, 255}), "has a tRNS chunk of 2 entries but only 1");
  check(concat({kSignature, chunk("IHDR", good.header), chunk("PLTE", {1, 2, 3}),
                chunk("IDAT", good.idat), chunk("IEND", {})}),
        "has a PLTE chunk, which a grayscale PNG must not have");
  check(concat({kSignature, chunk("IHDR", good.header), chunk("tRNS", {0, 0, 0}),
                chunk("IDAT", good.idat), chunk("IEND", {})}),
        "has a tRNS chunk of 3 bytes; a gray PNG's must be 2");

  // PGM.
  check(text("P5\n3 2\n255\n\x01\x02\x03\x04\x05"),
        "is truncated: its header promises 3 x 2 pixels (6 bytes) but it holds 5 bytes of pixels");
  check(text("P5\n1 2\n1000\n\x01\x02\x03"), "promises 1 x 2 pixels (4 bytes) but it holds 3");
  check(text("P5\n1 1\n255\n\x01\x02\x03"),
        "has 2 bytes after the 1 x 1 pixels (1 byte) its header promises");
  check(text("P2\n3 2\n9\n1 2 3\n4 5\n"),
        "is truncated: its header promises 3 x 2 = 6 pixels but it holds 5");
  check(text("P2\n2 1\n9\n1 2 3\n"), "has more than the 2 x 1 = 2 pixels its header promises");
  check(text("P2\n2 1\n9\n1 x\n"), "has 'x' among its pixels (line 4)");
  check(text("P2\n2 1\n9\n1 -2\n"), "has '-' among its pixels (line 4)");
  check(text("P2\n2 2\n9\n1 2\n3 10\n"),
        "has a pixel value of 10 above its maxval 9 (at x=1, y=1)");
  check(text("P5\n2 1\n100\n\x05\xC8"),
        "has a pixel value of 200 above its maxval 100 (at x=1, y=0)");
  check(text("P5\n0 2\n255\n"), "has a width of 0 in its PGM header");
  check(text("P5\n2 0\n255\n"), "has a height of 0 in its PGM header");
  check(text("P5\n2 2\n0\n"), "has a maxval of 0 in its PGM header; PGM allows 1 to 65535");
  check(text("P5\n2 2\n65536\n"), "has a maxval of 65536");
  check(text("P5\n99999999999999999999 2\n255\n"),
        "has a width of more than 10^12 in its PGM header; nnc reads images of at most 16384");
  check(text("P5\n20000 2\n255\n"), "is 20000 x 2 pixels; nnc reads images of at most 16384");
  check(text("P5\n2 x\n255\n"), "has 'x' in its PGM header where the height should be");
  check(text("P5\n2 2"), "is truncated inside its PGM header (it has no maxval)");
  check(text("P5 # just a comment"), "is truncated inside its PGM header (it has no width)");
  check(text("P5\n2 2\n255"), "its PGM header ends without pixels");
  check(text("P5\n1 1\n255x\x01"), "has 'x' right after its maxval where PGM needs whitespace");

  // IDX.
  Bytes two = {0, 0, 8, 3};
  put32(two, 2);
  put32(two, 2);
  put32(two, 2);
  two.resize(two.size() + 8, 7);
  check(two, "holds 2 images; --predict reads a file of exactly one image");
  Bytes labels = {0, 0, 8, 1};
  put32(labels, 3);
  labels.insert(labels.end(), {1, 2, 3});
  check(labels, "is an IDX file of 1 dimension; an image is an idx3 file holding one image");
  check({0, 0, 0x0D, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0},
        "is an IDX file of data type 0x0D; nnc reads images of unsigned bytes (type 0x08)");
  Bytes one = {0, 0, 8, 2};
  put32(one, 2);
  put32(one, 3);
  check(concat({one, {1, 2, 3, 4, 5}}),
        "is truncated: its header promises 6 bytes of pixels but it holds 5");
  check(concat({one, Bytes(8, 1)}), "has 2 bytes after the 6 bytes of pixels");
  check(Bytes{0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 1}, "has a dimension of 0");
  check(Bytes{0, 0, 8, 3, 0, 0, 0, 1}, "is truncated inside its IDX header");
  Bytes gzText = zcompress(text("x")); // zlib, not gzip: refused as unknown
  check(gzText, "not an image nnc reads");
}

TEST_CASE("Bad gzip files, missing files and directories are refused", "[image]") {
  TempDir dir;
  auto gz = [&](const std::string &name, const Bytes &content) {
    std::string path = dir.path + "/" + name;
    gzFile f = gzopen(path.c_str(), "wb");
    if (!content.empty())
      gzwrite(f, content.data(), static_cast<unsigned>(content.size()));
    gzclose(f);
    return path;
  };
  std::string notIdx = gz("text.gz", text("hello"));
  CHECK(refusal(notIdx) == notIdx + ": is gzip-compressed but does not hold an IDX file (nnc "
                                    "reads gzip only around IDX)");
  Bytes idx2 = {0, 0, 8, 2};
  put32(idx2, 2);
  put32(idx2, 2);
  idx2.insert(idx2.end(), {1, 2, 3});
  std::string shortIdx = gz("short.gz", idx2);
  CHECK(refusal(shortIdx) == shortIdx + ": is truncated (after decompression): its header "
                                        "promises 4 bytes of pixels but it holds 3");
  idx2.insert(idx2.end(), {4, 5});
  std::string longer = gz("longer.gz", idx2);
  CHECK(refusal(longer) == longer + ": has 1 byte after the 4 bytes of pixels its header "
                                    "describes (after decompression)");
  idx2.resize(idx2.size() + 100000, 9); // not decompressed past the pixels
  std::string longest = gz("longest.gz", idx2);
  CHECK(refusal(longest) == longest + ": has bytes after the 4 bytes of pixels its header "
                                      "describes (after decompression)");
  Bytes many = {0, 0, 8, 3};
  put32(many, 60000);
  put32(many, 28);
  put32(many, 28);
  many.resize(many.size() + 28 * 28 * 10, 0); // only the header is needed to refuse it
  std::string manyPath = gz("many.gz", many);
  CHECK(refusal(manyPath) == manyPath + ": holds 60000 images; --predict reads a file of "
                                        "exactly one image");
  std::string header = gz("header.gz", {0, 0, 8, 3, 0, 0, 0, 1, 0, 0});
  CHECK(refusal(header) == header + ": is truncated inside its IDX header (after decompression)");
  // A gzip file cut short.
  std::ifstream in(shortIdx, std::ios::binary);
  Bytes whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string cut = write(dir, "cut.gz", Bytes(whole.begin(), whole.end() - 10));
  CHECK(refusal(cut) == cut + ": is a truncated gzip file");
  std::string empty = gz("empty.gz", {});
  CHECK(refusal(empty) == empty + ": is gzip-compressed and decompresses to nothing");

  std::string missing = dir.path + "/missing.png";
  CHECK(refusal(missing) == missing + ": No such file or directory");
  CHECK(refusal(dir.path) == dir.path + ": is a directory, not an image");
}

TEST_CASE("Every truncation and every single-byte change of a PNG and a PGM is handled",
          "[image]") {
  // Each prefix must be refused with a message naming the file; each
  // corrupted byte refused the same way or, where the change is harmless
  // (a pixel of a PGM, say), read. Under ASan this also shows that no
  // damaged file reads past its end.
  TempDir dir;
  Picture p = picture(5, 4, 3, 4, true, 3);
  std::vector<std::pair<std::string, Bytes>> files = {
      {"x.png", encode(p, 2)},
      {"x.pgm", text("P2\n# c\n2 2\n300\n1 2\n3 300\n")},
      {"y.pgm", concat({text("P5 2 2 300\n"), {0, 1, 0, 2, 1, 0, 1, 44}})}};
  for (const auto &file : files) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const std::string &name = file.first;
    const Bytes &bytes = file.second;
    std::string path = dir.path + "/" + name;
    REQUIRE(readOk(write(dir, name, bytes)).pixels.size() == (name == "x.png" ? 20u : 4u));
    /// Reads a damaged file: true if it was read, else checks the message.
    auto tryRead = [&](const Bytes &damaged, const std::string &how) {
      write(dir, name, damaged);
      GrayImage image;
      std::string error;
      if (readImage(path, image, error)) {
        CHECK(image.pixels.size() == size_t(image.width) * image.height);
        return true;
      }
      INFO(name << " " << how << ": " << error);
      CHECK(error.rfind(path + ": ", 0) == 0);
      return false;
    };
    size_t readCut = 0, readChanged = 0;
    for (size_t len = 0; len < bytes.size(); ++len)
      readCut += tryRead(Bytes(bytes.begin(), bytes.begin() + len),
                         "cut to " + std::to_string(len) + " bytes");
    for (size_t at = 0; at < bytes.size(); ++at) {
      Bytes changed = bytes;
      changed[at] ^= 0x5A;
      readChanged += tryRead(changed, "byte " + std::to_string(at) + " changed");
    }
    INFO(name);
    if (name == "x.pgm") {
      CHECK(readCut == 3); // cut to "3 3", "3 30" or "3 300" it is a whole file too
    } else {
      CHECK(readCut == 0);
    }
    if (name == "x.png")
      CHECK(readChanged == 0); // every byte of a PNG is covered by a CRC or checked
  }
}
