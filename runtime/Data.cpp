// Data.cpp — the split, the batch source and the prefetcher (see Data.h).
//
// Crop, shift and flip only move pixels (or bring in zeros), so without
// rotation an example is made in one pass over its output pixels: each row
// is a run of zeros, a run of source bytes looked up in a table of
// normalized values, and zeros again (reversed for a flip). With rotation the
// crop and shift are gathered into floats in [0, 1] on a canvas with a
// border of zeros wide enough that the bilinear sampler needs no bounds
// checks; the rotated rows are then mirrored and normalized in place.
#include "FpContract.h" // first: no contraction in this file

#include "Data.h"

#include "Parallel.h"
#include "Random.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace nnc_rt {
namespace {

/// The largest image side accepted (so that sizes never overflow).
constexpr int64_t kMaxSide = 65536;

/// Words of one random stream taken in turn: word base + step × k for the
/// k-th call, k = 0, 1, 2, …
class WordSequence {
public:
  WordSequence(uint64_t seed, uint64_t stream, uint64_t base, uint64_t step)
      : seed_(seed), stream_(stream), base_(base), step_(step) {}

  uint32_t next() { return randomBits(seed_, stream_, base_ + step_ * taken_++); }

  /// Uniform in [0, range), range ≥ 1, without bias (Lemire, "Fast Random
  /// Integer Generation in an Interval", 2019): the high half of word × range,
  /// rejecting words whose low half falls below 2^32 mod range.
  uint32_t below(uint32_t range) {
    uint64_t product = uint64_t(next()) * range;
    uint32_t low = uint32_t(product);
    if (low < range) {
      uint32_t threshold = uint32_t(0u - range) % range; // 2^32 mod range
      while (low < threshold) {
        product = uint64_t(next()) * range;
        low = uint32_t(product);
      }
    }
    return uint32_t(product >> 32);
  }

  /// Uniform in [0, 1) with 24 bits, as uniform01 in Random.h.
  double unit() { return double(next() >> 8) * (1.0 / 16777216.0); }

private:
  uint64_t seed_, stream_, base_, step_, taken_ = 0;
};

/// Fisher–Yates: for i = n−1 down to 1, swap entries i and j ∈ [0, i].
/// Callers keep n ≤ kMaxExamples, so i + 1 fits a 32-bit range.
void shuffleInPlace(std::vector<int64_t> &v, WordSequence words) {
  for (size_t i = v.size(); i-- > 1;)
    std::swap(v[i], v[words.below(uint32_t(i + 1))]);
}

uint64_t epochStream(const char *purpose, int64_t epoch) {
  return streamId(std::string(purpose) + "/" + std::to_string(epoch));
}

/// A number as people write it: 0.9, not 0.900000.
std::string show(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::string show(int64_t x) {
  return std::to_string(x);
}

/// The checks every source needs: the Dataset's sizes agree, and the batch
/// size, normalization and transforms are sensible for its images.
std::string checkSource(const DataOptions &o, const Dataset &d) {
  if (d.count < 0 || d.rows < 1 || d.cols < 1)
    return "the data set has " + show(d.count) + " images of " + show(d.rows) + "×" + show(d.cols) +
           " pixels; it needs at least 1×1 and no negative count";
  if (d.rows > kMaxSide || d.cols > kMaxSide)
    return "the data set's images are " + show(d.rows) + "×" + show(d.cols) +
           " pixels, larger than the " + show(kMaxSide) + "×" + show(kMaxSide) +
           " the data pipeline handles";
  if (d.count > kMaxExamples)
    return "the data set has " + show(d.count) + " examples, more than the " + show(kMaxExamples) +
           " the data pipeline handles";
  if (d.images.size() / uint64_t(d.rows * d.cols) != uint64_t(d.count) ||
      d.images.size() % uint64_t(d.rows * d.cols) != 0)
    return "the data set has " + show(d.count) + " images of " + show(d.rows) + "×" + show(d.cols) +
           " but " + std::to_string(d.images.size()) + " pixel bytes";
  if (d.labels.size() != uint64_t(d.count))
    return "the data set has " + show(d.count) + " images but " + std::to_string(d.labels.size()) +
           " labels";
  if (o.batchSize < 1)
    return "the batch size must be at least 1, not " + show(o.batchSize);
  if (!std::isfinite(o.normalizeMean))
    return "normalize: the mean must be a finite number, not " + show(o.normalizeMean);
  if (!(o.normalizeStd > 0) || !std::isfinite(o.normalizeStd))
    return "normalize: std must be a positive number, not " + show(o.normalizeStd);
  const Augmentation &a = o.augment;
  if (a.cropSize < 0)
    return "crop: the size must be at least 1, not " + show(a.cropSize);
  if (a.cropPadding < 0 || a.cropPadding > kMaxPadding)
    return "crop: the padding must be between 0 and " + show(kMaxPadding) + ", not " +
           show(a.cropPadding);
  if (a.cropSize == 0 && a.cropPadding != 0)
    return "crop: a padding of " + show(a.cropPadding) + " is given without a crop size";
  if (a.cropSize > d.rows + 2 * a.cropPadding || a.cropSize > d.cols + 2 * a.cropPadding)
    return "crop: the size " + show(a.cropSize) + " is larger than the " + show(d.rows) + "×" +
           show(d.cols) + " images padded by " + show(a.cropPadding) + " on every side (" +
           show(d.rows + 2 * a.cropPadding) + "×" + show(d.cols + 2 * a.cropPadding) + ")";
  if (a.shiftPixels < 0 || a.shiftPixels > kMaxPadding)
    return "shift: the pixels must be between 0 and " + show(kMaxPadding) + ", not " +
           show(a.shiftPixels);
  if (!(a.rotateDegrees >= 0 && a.rotateDegrees <= 180))
    return "rotate: the degrees must be between 0 and 180, not " + show(a.rotateDegrees);
  if (!(a.flipProbability >= 0 && a.flipProbability <= 1))
    return "flip: the probability must be between 0 and 1, not " + show(a.flipProbability);
  return "";
}

/// The fraction's range, and that it leaves something to train on.
std::string checkFraction(double fraction, int64_t count) {
  if (!(fraction >= 0 && fraction < 1))
    return "the validation fraction must be at least 0 and below 1, not " + show(fraction);
  int64_t held = std::llround(fraction * double(count));
  if (count > 0 && held >= count)
    return "a validation fraction of " + show(fraction) + " holds out all " + show(count) +
           " training examples, leaving none to train on";
  return "";
}

/// sin and cos of an angle in degrees, exact at multiples of 90°.
void sinCosDegrees(double degrees, double &s, double &c) {
  if (std::fmod(degrees, 90.0) == 0) {
    double q = std::fmod(degrees, 360.0); // exactly 0, ±90, ±180 or ±270
    if (q < 0)
      q += 360;
    static const double kSin[4] = {0, 1, 0, -1}, kCos[4] = {1, 0, -1, 0};
    int quarter = int(q / 90);
    s = kSin[quarter];
    c = kCos[quarter];
    return;
  }
  double radians = degrees * (3.14159265358979323846 / 180.0);
  s = std::sin(radians);
  c = std::cos(radians);
}

/// (v − mean) / std in double, rounded to float: the multiplication by a
/// precomputed 1/std (which vectorizes, unlike a division) is within an ulp
/// of double of the quotient, far below float's rounding.
float normalized(float v, double mean, double inverseStd) {
  return float((double(v) - mean) * inverseStd);
}

/// Where output pixel (y, x) of an H × W example reads its source byte
/// before any flip: source (y + dy, x + dx) of the rows × cols image, when
/// (y − shiftRows, x − shiftCols) lies in the H × W crop and the source
/// lies in the image; 0 (i.e. table[0]) otherwise.
struct Placement {
  int64_t dy, dx, shiftRows, shiftCols;
};

Placement placementOf(const AugmentDraw &d, int64_t padding) {
  return {d.cropRow - padding - d.shiftRows, d.cropCol - padding - d.shiftCols, d.shiftRows,
          d.shiftCols};
}

/// How the bytes of an image become floats: normalized(p / 255, mean,
/// inverseStd); mean 0 and inverseStd 1 leave p / 255.
struct ByteScale {
  double mean = 0, inverseStd = 1;
  float operator()(uint8_t p) const {
    const float unit = float(p) / 255.0f;
    return plain() ? unit : normalized(unit, mean, inverseStd);
  }
  bool plain() const { return mean == 0 && inverseStd == 1; }
};

// Converting bytes is most of what filling a batch costs (looked up in a
// table a byte at a time it took about 50 µs of processor time per batch of
// examples/fashion.nn, against 73 µs for its training step on 2 threads): on
// x86-64 with GCC, convertBytes() also comes as AVX2 and AVX-512 clones,
// chosen at load time for the CPU. Each lane does the
// scalar operations in the same order (IEEE division, subtraction and
// multiplication, no contraction in this file), so every clone writes the
// same bits. Not under a sanitizer: the clones are chosen by an ifunc
// resolver, which runs while the program is being relocated, before the
// sanitizer's runtime is set up, and instrumented it crashes there (every
// ThreadSanitizer build of nnc did, at start).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define NNC_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NNC_VECTOR_CLONES
#endif

/// Asks for the cache lines of `bytes` bytes at `p` ahead of their use. A
/// shuffled batch reads its examples from scattered places of a data set
/// larger than the caches, which the hardware's prefetcher cannot guess:
/// asking for the example two ahead while converting one halved the time to
/// fill an epoch of Fashion-MNIST's batches of 64 (15.8 -> 6.9 ms on one
/// thread, 12.0 -> 6.3 ms on two; examples/fashion.nn's epoch 0.067 ->
/// 0.063 s on 2 threads).
constexpr int64_t kPrefetchAhead = 2;
inline void prefetch(const uint8_t *p, int64_t bytes) {
#if defined(__GNUC__)
  for (int64_t b = 0; b < bytes; b += 64)
    __builtin_prefetch(p + b);
#else
  (void)p, (void)bytes;
#endif
}

/// out[i] = s(in[i]) for i < n.
NNC_VECTOR_CLONES void convertBytes(const uint8_t *in, int64_t n, ByteScale s, float *out) {
  if (s.plain()) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = float(in[i]) / 255.0f;
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    out[i] = normalized(float(in[i]) / 255.0f, s.mean, s.inverseStd);
}

/// Writes the H × W image `src` (rows × cols bytes) makes under `p`, each
/// byte converted by `scale`, rows `stride` floats apart, each row reversed
/// if `mirror`.
void gather(const uint8_t *src, int64_t rows, int64_t cols, int64_t H, int64_t W,
            const Placement &p, bool mirror, ByteScale scale, float *out, int64_t stride) {
  const float zero = scale(0);
  const int64_t yBegin = std::max({int64_t(0), p.shiftRows, -p.dy});
  const int64_t yEnd = std::min({H, H + p.shiftRows, rows - p.dy});
  const int64_t xBegin = std::max({int64_t(0), p.shiftCols, -p.dx});
  const int64_t xEnd = std::max(xBegin, std::min({W, W + p.shiftCols, cols - p.dx}));
  if (!mirror && yBegin == 0 && yEnd == H && xBegin == 0 && xEnd == W && W == cols &&
      stride == W) { // whole rows, one after another: one run of bytes
    convertBytes(src + p.dy * cols, H * W, scale, out);
    return;
  }
  for (int64_t y = 0; y < H; ++y) {
    float *row = out + y * stride;
    if (y < yBegin || y >= yEnd || xBegin >= xEnd) {
      std::fill(row, row + W, zero);
      continue;
    }
    const uint8_t *from = src + (y + p.dy) * cols + p.dx;
    std::fill(row, row + xBegin, zero);
    convertBytes(from + xBegin, xEnd - xBegin, scale, row + xBegin);
    std::fill(row + xEnd, row + W, zero);
    if (mirror)
      std::reverse(row, row + W);
  }
}

/// An H × W image inside a border of zeros wide enough for rotation about
/// its centre: an output pixel lies within the half-diagonal r of the centre
/// (cx, cy), so the point it reads from does too, and with a border of
/// ceil(r − min(cx, cy)) + 2 (one for the right/bottom taps, one for float
/// rounding) all four bilinear taps of every read lie on the canvas. The
/// sampler then needs no bounds checks, and taps outside the image read 0.
struct Canvas {
  Canvas(int64_t rows, int64_t cols) : H(rows), W(cols) {
    const double cy = double(H - 1) / 2, cx = double(W - 1) / 2;
    border = int64_t(std::ceil(std::hypot(cx, cy) - std::min(cx, cy))) + 2;
    stride = W + 2 * border;
    pixels.assign(size_t((H + 2 * border) * stride), 0.0f);
  }
  /// Row 0, column 0 of the image (rows `stride` apart).
  float *image() { return pixels.data() + border * stride + border; }

  int64_t H, W, border, stride;
  std::vector<float> pixels;
};

/// Rotates the canvas's image by `degrees` counter-clockwise about its
/// centre with bilinear sampling into `out` (H × W): output pixel (x, y)
/// reads position centre + R(−θ)((x, y) − centre) of the image.
///
/// Positions are fixed-point numbers with 32 fraction bits: each row's first
/// in double, rounded once, then steps of (cos θ, sin θ) added exactly. That
/// is cheaper than float coordinates (no conversions back and forth) and as
/// precise, and at multiples of 90° every position is exact.
void rotateCanvas(const Canvas &canvas, double degrees, float *out) {
  constexpr double kOne = 4294967296.0; // 2^32: 1 in fixed point
  constexpr float kFraction = 1.0f / 4294967296.0f;
  double s, c;
  sinCosDegrees(degrees, s, c);
  const int64_t H = canvas.H, W = canvas.W, stride = canvas.stride;
  const double cy = double(H - 1) / 2, cx = double(W - 1) / 2, border = double(canvas.border);
  const int64_t stepU = std::llround(c * kOne), stepV = std::llround(s * kOne);
  const float *pixels = canvas.pixels.data();
  for (int64_t y = 0; y < H; ++y) {
    // Canvas position (u, v) = (cx + ox·c − oy·s, cy + ox·s + oy·c) + the
    // border, for output offsets (ox, oy) = (x − cx, y − cy); both stay ≥ 1.
    const double oy = double(y) - cy;
    int64_t u = std::llround((cx - cx * c - oy * s + border) * kOne);
    int64_t v = std::llround((cy - cx * s + oy * c + border) * kOne);
    float *row = out + y * W;
    for (int64_t x = 0; x < W; ++x, u += stepU, v += stepV) {
      const float fu = float(u & 0xFFFFFFFF) * kFraction, fv = float(v & 0xFFFFFFFF) * kFraction;
      const float *tap = pixels + (v >> 32) * stride + (u >> 32);
      const float top = tap[0] + fu * (tap[1] - tap[0]);
      const float bottom = tap[stride] + fu * (tap[stride + 1] - tap[stride]);
      row[x] = top + fv * (bottom - top);
    }
  }
}

/// The draw for Dataset example `example` from the epoch's stream `stream`.
AugmentDraw drawFrom(const Augmentation &a, int64_t rows, int64_t cols, uint64_t seed,
                     uint64_t stream, int64_t example) {
  WordSequence words(seed, stream, uint64_t(example), uint64_t(1) << 32);
  AugmentDraw d;
  if (a.cropSize > 0) {
    d.cropRow = words.below(uint32_t(rows + 2 * a.cropPadding - a.cropSize + 1));
    d.cropCol = words.below(uint32_t(cols + 2 * a.cropPadding - a.cropSize + 1));
  }
  if (a.shiftPixels > 0) {
    const uint32_t range = uint32_t(2 * a.shiftPixels + 1);
    d.shiftRows = int64_t(words.below(range)) - a.shiftPixels;
    d.shiftCols = int64_t(words.below(range)) - a.shiftPixels;
  }
  if (a.rotateDegrees > 0)
    d.degrees = float(a.rotateDegrees * (2 * words.unit() - 1));
  if (a.flipProbability > 0)
    d.flip = words.unit() < a.flipProbability;
  return d;
}

} // namespace

ImageSize outputSize(const DataOptions &options, int64_t rows, int64_t cols) {
  if (options.augment.cropSize > 0)
    return {options.augment.cropSize, options.augment.cropSize};
  return {rows, cols};
}

std::string checkDataOptions(const DataOptions &options, const Dataset &data) {
  std::string problem = checkSource(options, data);
  return problem.empty() ? checkFraction(options.validationFraction, data.count) : problem;
}

Split splitValidation(int64_t count, double fraction, uint64_t seed) {
  if (count < 0 || count > kMaxExamples)
    throw std::invalid_argument("cannot split " + show(count) +
                                " examples: the data pipeline "
                                "handles 0 to " +
                                show(kMaxExamples));
  std::string problem = checkFraction(fraction, count);
  if (!problem.empty())
    throw std::invalid_argument(problem);
  std::vector<int64_t> all(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    all[size_t(i)] = i;
  shuffleInPlace(all, WordSequence(seed, streamId("validation"), 0, 1));
  const auto held = static_cast<ptrdiff_t>(std::llround(fraction * double(count)));
  Split split;
  split.validation.assign(all.begin(), all.begin() + held);
  split.train.assign(all.begin() + held, all.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

AugmentDraw drawAugmentation(const Augmentation &augment, int64_t rows, int64_t cols, uint64_t seed,
                             int64_t epoch, int64_t example) {
  return drawFrom(augment, rows, cols, seed, epochStream("augment", epoch), example);
}

void rotateImage(const float *in, float *out, int64_t rows, int64_t cols, double degrees) {
  Canvas canvas(rows, cols);
  for (int64_t y = 0; y < rows; ++y)
    std::copy(in + y * cols, in + (y + 1) * cols, canvas.image() + y * canvas.stride);
  rotateCanvas(canvas, degrees, out);
}

// ---- BatchSource ----

/// The visiting orders of the two epochs used last, most recent first.
struct BatchSource::Cache {
  std::mutex mutex;
  int64_t epochs[2] = {0, 0};
  std::shared_ptr<const std::vector<int64_t>> orders[2];
};

BatchSource::BatchSource(const Dataset &data, std::vector<int64_t> examples,
                         const DataOptions &options, Purpose purpose)
    : data_(&data), examples_(std::move(examples)), options_(options), purpose_(purpose),
      cache_(std::make_unique<Cache>()) {
  std::string problem = checkSource(options, data);
  if (!problem.empty())
    throw std::invalid_argument(problem);
  if (int64_t(examples_.size()) > kMaxExamples)
    throw std::invalid_argument("a list of " + std::to_string(examples_.size()) +
                                " examples is more than the " + show(kMaxExamples) +
                                " the data pipeline handles");
  for (int64_t e : examples_)
    if (e < 0 || e >= data.count)
      throw std::invalid_argument("example " + show(e) + " is not in the data set of " +
                                  show(data.count) + " examples");
  size_ = outputSize(options, data.rows, data.cols);
}

BatchSource::~BatchSource() = default;
BatchSource::BatchSource(BatchSource &&) noexcept = default;
BatchSource &BatchSource::operator=(BatchSource &&) noexcept = default;

int64_t BatchSource::batches() const {
  const int64_t n = examples();
  return n / options_.batchSize + (n % options_.batchSize != 0);
}

bool BatchSource::fillsLikeACopy() const {
  return purpose_ != Purpose::Train || options_.augment.rotateDegrees <= 0;
}

int64_t BatchSource::batchExamples(int64_t b) const {
  if (b < 0 || b >= batches())
    return 0;
  return std::min(options_.batchSize, examples() - b * options_.batchSize);
}

std::shared_ptr<const std::vector<int64_t>> BatchSource::orderOf(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  Cache &c = *cache_;
  if (c.orders[0] && c.epochs[0] == epoch)
    return c.orders[0];
  if (c.orders[1] && c.epochs[1] == epoch) {
    std::swap(c.orders[0], c.orders[1]);
    std::swap(c.epochs[0], c.epochs[1]);
    return c.orders[0];
  }
  auto order = std::make_shared<std::vector<int64_t>>(examples_);
  shuffleInPlace(*order, WordSequence(options_.seed, epochStream("shuffle", epoch), 0, 1));
  c.orders[1] = std::move(c.orders[0]);
  c.epochs[1] = c.epochs[0];
  c.orders[0] = order;
  c.epochs[0] = epoch;
  return order;
}

std::vector<int64_t> BatchSource::order(int64_t epoch) const {
  if (purpose_ == Purpose::Train && options_.shuffle)
    return *orderOf(epoch);
  return examples_;
}

void BatchSource::fill(int64_t epoch, int64_t b, float *images, int64_t *labels,
                       Threads threads) const {
  if (b < 0 || b >= batches())
    throw std::out_of_range("batch " + show(b) + " does not exist: there are " + show(batches()) +
                            " (0 to " + show(batches() - 1) + ")");
  std::shared_ptr<const std::vector<int64_t>> shuffled;
  if (purpose_ == Purpose::Train && options_.shuffle)
    shuffled = orderOf(epoch);
  const int64_t *order = (shuffled ? shuffled->data() : examples_.data()) + b * batchSize();
  const int64_t n = batchExamples(b);

  const Augmentation &a = options_.augment;
  const bool train = purpose_ == Purpose::Train;
  const bool randomized = train && (a.cropSize > 0 || a.shiftPixels > 0 || a.rotateDegrees > 0 ||
                                    a.flipProbability > 0);
  const bool rotate = train && a.rotateDegrees > 0;
  const uint64_t stream = randomized ? epochStream("augment", epoch) : 0;
  const int64_t rows = data_->rows, cols = data_->cols, H = size_.rows, W = size_.cols;
  const bool normalize = !(options_.normalizeMean == 0 && options_.normalizeStd == 1);
  const double inverseStd = 1 / options_.normalizeStd;
  const ByteScale scale{options_.normalizeMean, inverseStd};

  // An evaluation crop is the centre of the padded image; nothing else moves.
  AugmentDraw fixed;
  if (a.cropSize > 0) {
    fixed.cropRow = (rows + 2 * a.cropPadding - a.cropSize) / 2;
    fixed.cropCol = (cols + 2 * a.cropPadding - a.cropSize) / 2;
  }
  // Example i of the batch; `canvas` is the rotation's, null without one.
  auto one = [&](int64_t i, Canvas *canvas) noexcept {
    const int64_t example = order[i];
    labels[i] = int64_t(data_->labels[size_t(example)]);
    const uint8_t *src = data_->images.data() + example * rows * cols;
    if (i + kPrefetchAhead < n)
      prefetch(data_->images.data() + order[i + kPrefetchAhead] * rows * cols, rows * cols);
    float *out = images + i * H * W;
    const AugmentDraw draw =
        randomized ? drawFrom(a, rows, cols, options_.seed, stream, example) : fixed;
    const Placement place = placementOf(draw, a.cropPadding);
    if (!canvas) {
      gather(src, rows, cols, H, W, place, draw.flip, scale, out, W);
      return;
    }
    // Rotation reads floats in [0, 1]; the flip and normalization follow.
    gather(src, rows, cols, H, W, place, false, ByteScale(), canvas->image(), canvas->stride);
    rotateCanvas(*canvas, draw.degrees, out);
    if (draw.flip)
      for (int64_t y = 0; y < H; ++y)
        std::reverse(out + y * W, out + (y + 1) * W);
    if (normalize)
      for (int64_t p = 0; p < H * W; ++p)
        out[p] = normalized(out[p], options_.normalizeMean, inverseStd);
  };
  if (rotate) {
    Canvas canvas(H, W);
    for (int64_t i = 0; i < n; ++i)
      one(i, &canvas);
  } else if (threads == Threads::Pool) {
    using One = decltype(one);
    nnc_parallel_for(
        [](void *context, int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            (*static_cast<One *>(context))(i, nullptr);
        },
        &one, n, H * W);
  } else {
    for (int64_t i = 0; i < n; ++i)
      one(i, nullptr);
  }
}

void BatchSource::fill(int64_t epoch, int64_t b, Batch &batch) const {
  const int64_t n = batchExamples(b); // 0 for a bad b, which fill() reports
  batch.images.resize(size_t(n * size_.rows * size_.cols));
  batch.labels.resize(size_t(n));
  fill(epoch, b, batch.images.data(), batch.labels.data());
  batch.epoch = epoch;
  batch.index = b;
  batch.count = n;
  batch.rows = size_.rows;
  batch.cols = size_.cols;
}

// ---- Prefetcher ----
//
// Item k of the sequence (epoch firstEpoch + k / batches, batch k % batches)
// is filled into buffers_[k % 2]. The caller holds item handed_ − 1, the one
// next() returned last, so the worker may fill item k once handed_ ≥ k (item
// k − 2, the buffer's previous occupant, was given back by the call that
// took item k − 1): at most one batch ahead of the one in use.

namespace {
int64_t totalBatches(const BatchSource &source, int64_t epochs, int64_t firstBatch) {
  if (epochs < 0)
    throw std::invalid_argument("cannot prefetch " + show(epochs) + " epochs");
  const int64_t perEpoch = source.batches();
  if (perEpoch > 0 && epochs > INT64_MAX / perEpoch)
    throw std::invalid_argument(show(epochs) + " epochs of " + show(perEpoch) +
                                " batches are too many to count");
  if (firstBatch < 0 || firstBatch > epochs * perEpoch)
    throw std::invalid_argument("cannot skip " + show(firstBatch) + " of " +
                                show(epochs * perEpoch) + " batches");
  return epochs * perEpoch - firstBatch;
}
} // namespace

Prefetcher::Prefetcher(const BatchSource &source, int64_t firstEpoch, int64_t epochs,
                       int64_t firstBatch)
    : source_(source), firstEpoch_(firstEpoch), firstBatch_(firstBatch),
      total_(totalBatches(source, epochs, firstBatch)) {
  try {
    worker_ = std::thread(&Prefetcher::work, this);
  } catch (const std::system_error &) {
    inline_ = true; // no thread to be had: next() fills each batch itself
  }
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable())
    worker_.join();
}

void Prefetcher::fillItem(int64_t k) {
  const int64_t perEpoch = source_.batches(), g = firstBatch_ + k;
  source_.fill(firstEpoch_ + g / perEpoch, g % perEpoch, buffers_[k % 2]);
}

void Prefetcher::work() {
  for (int64_t k = 0; k < total_; ++k) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || handed_ >= k; });
      if (stop_)
        return;
    }
    try {
      fillItem(k);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_ = k + 1;
    }
    changed_.notify_all();
  }
}

const Batch *Prefetcher::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (handed_ == total_)
    return nullptr;
  const int64_t k = handed_;
  if (inline_) {
    fillItem(k);
    ++handed_;
    return &buffers_[k % 2];
  }
  changed_.wait(lock, [&] { return ready_ > k || error_; });
  if (ready_ <= k)
    std::rethrow_exception(error_);
  ++handed_; // gives item k − 1's buffer back to the worker
  lock.unlock();
  changed_.notify_all();
  return &buffers_[k % 2];
}

} // namespace nnc_rt
