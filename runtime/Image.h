// Image.h — reading one grayscale image for `nnc FILE --predict IMAGE`.
//
// The format is told by the file's first bytes, never by its name:
//
//   IDX  an idx3 array of unsigned bytes holding exactly one image
//        (1 × rows × cols), or an idx2 array (rows × cols); raw or
//        gzip-compressed. Samples are divided by 255.
//   PGM  binary (P5) or plain ASCII (P2) netpbm graymaps, maxval 1..65535
//        (two big-endian bytes per sample in P5 when maxval > 255), with
//        '#' comments in the header. The file must hold exactly the
//        width × height samples its header promises, none above maxval.
//        Samples are divided by maxval.
//   PNG  every standard non-interlaced and Adam7-interlaced image: gray,
//        RGB, palette, gray + alpha and RGBA, at every bit depth the PNG
//        specification allows for each (1/2/4/8/16), with all five row
//        filters. Every chunk's CRC is checked, IHDR is validated, PLTE is
//        required for palette images and IEND must end the file. tRNS is
//        honoured as alpha. Samples are divided by 2^depth − 1; gAMA, sRGB,
//        cHRM and iCCP are ignored (samples are taken as stored).
//
// Colour becomes gray with the ITU-R BT.601 luma weights,
//   gray = 0.299 R + 0.587 G + 0.114 B,
// and alpha (from an alpha channel or tRNS) is composited over black,
//   gray = gray × alpha,
// so a transparent pixel is 0 — the background of an MNIST digit.
//
// What MNIST-style models expect: a white (1.0) digit on a black (0.0)
// background, the digit centred, the image exactly the size of the model's
// input (28 × 28 for MNIST). Nothing here inverts, crops or resizes: a
// black-on-white scan must be inverted before it is given to nnc, and the
// driver refuses an image whose size differs from the model's input.
//
// Everything is validated before it is trusted, and sizes are capped
// (kMaxImageSide per side) before anything is allocated. Every failure is a
// sentence naming the file and what is wrong with it, never a crash or a
// read past the end.
//
// C++17 and the standard library only; PNG and gzip need zlib and
// NNC_WITH_ZLIB (without it they are refused with a message saying so).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nnc_rt {

/// The largest width or height readImage accepts, in every format.
constexpr uint32_t kMaxImageSide = 16384;

/// A grayscale image: `pixels` holds height × width values in [0, 1],
/// row-major (row 0 at the top), 0 black and 1 white.
struct GrayImage {
  uint32_t width = 0, height = 0;
  std::vector<float> pixels;
  std::string format; ///< what the file was: "IDX", "PGM" or "PNG"
};

/// Reads the image in `path` (IDX, PGM or PNG, told by its content).
/// Returns false and sets `error` ("PATH: what is wrong") on any problem;
/// `out` is then unspecified.
bool readImage(const std::string &path, GrayImage &out, std::string &error);

} // namespace nnc_rt
