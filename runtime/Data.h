// Data.h — the training-data pipeline: a deterministic train/validation
// split, batches (shuffled, augmented, normalized) over a list of examples,
// and a prefetcher that prepares the next batch on a background thread.
//
// How the driver uses it:
//
//   Dataset train;                          // loadMnist (Idx.h)
//   std::string problem = checkDataOptions(options, train);   // "" when fine
//   Split split = splitValidation(train.count, options.validationFraction, options.seed);
//   BatchSource training(train, split.train, options, Purpose::Train);
//   BatchSource validation(train, split.validation, options, Purpose::Evaluate);
//   // the model's input must be training.rows() × training.cols()
//   Prefetcher prefetcher(training, /*firstEpoch=*/0, epochs);
//   while (const Batch *batch = prefetcher.next())   // epoch-major: batch->epoch, batch->index
//     { copy batch->images, batch->labels into the step's buffers; run(batch->count); }
//   for (int64_t b = 0; b < validation.batches(); ++b)
//     validation.fill(0, b, stepImages, stepLabels);  // straight into caller buffers
//
// A batch is a pure function of (options, examples, epoch, batch number):
// fill() may be called in any order, from any thread, any number of times,
// and gives the same bytes. Every batch has batchSize examples except the
// last of an epoch, which holds the rest (it is used, never dropped).
//
// Randomness (Random.h), all under options.seed; "E" is the epoch in decimal:
//  - validation split: stream "validation". A Fisher–Yates shuffle of
//    0 … count−1 (below) whose first round(f × count) entries are held out;
//    both lists are returned in ascending order. Independent of the epoch.
//  - shuffle: stream "shuffle/E". A Fisher–Yates shuffle of the source's
//    example list, computed once per epoch (lazily, under a lock) and cached.
//  - augmentation: stream "augment/E". Example d (its index in the Dataset)
//    takes word d + 2^32 × k for its k-th draw, k = 0, 1, …, in the order
//    crop row, crop column, shift rows, shift columns, angle, flip (only the
//    enabled transforms draw). It depends on nothing but (seed, epoch, d):
//    not on batching, order, threads or prefetching.
// Fisher–Yates: for i = n−1 down to 1, swap entries i and j, j uniform in
// [0, i], using words 0, 1, 2, … of the stream in turn. Integers in [0, r)
// are unbiased: Lemire's multiply-shift, rejecting a word whose low product
// falls below 2^32 mod r and taking the next word instead.
//
// Each example: pixels p → p/255, then crop, shift, rotate, flip (the
// enabled ones, in that order), then (v − mean)/std. Evaluation sources have
// no shuffle and no random transform, but the same normalization, and a
// crop becomes the centre crop of the padded image, so that evaluation
// images have the training images' size.
//
// Without rotation every transform just moves pixels, so a batch is a
// gather through a 256-entry table of normalized values. Rotation steps
// through sample positions in fixed point and blends the four pixels around
// each in float; for its results to be bit-identical in another build, that
// build must not contract a*b+c into FMAs (-ffp-contract=off).
//
// Cost (Release, one core of the shared 2-core development machine, 28×28
// images): 0.4 µs an image from cache, about 1 µs streaming through MNIST's
// 60,000 in order and 1.6 µs shuffled; rotation adds about 2 µs an image.
//
// Errors: checkDataOptions reports the user's mistakes as sentences.
// BatchSource's constructor (which checks all but the validation fraction)
// and splitValidation (which checks the fraction) throw
// std::invalid_argument with the same sentences; fill() throws
// std::out_of_range for a batch number outside [0, batches()).
//
// C++17 and the standard library only: --emit-cpp copies this file.
#pragma once

#include "Idx.h"

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nnc_rt {

/// Random changes to training images. Each transform is off at its default.
struct Augmentation {
  /// crop(size, padding): zero-pad every side by `padding`, then take a
  /// random size × size window (so images become size × size); 0: no crop.
  int64_t cropSize = 0;
  int64_t cropPadding = 0;
  /// shift(pixels): move by −pixels … +pixels in y and in x, zero fill.
  int64_t shiftPixels = 0;
  /// rotate(degrees): an angle uniform in [−degrees, +degrees], bilinear.
  double rotateDegrees = 0;
  /// flip(p): mirror left–right with probability p.
  double flipProbability = 0;
};

/// Everything that decides the batches.
struct DataOptions {
  int64_t batchSize = 64;        ///< examples per batch, ≥ 1
  bool shuffle = false;          ///< a new order every epoch (training sources only)
  double normalizeMean = 0;      ///< pixel → (p/255 − mean) / std, applied last;
  double normalizeStd = 1;       ///< the defaults leave pixels in [0, 1]
  double validationFraction = 0; ///< share of the training set held out, 0 ≤ f < 1
  Augmentation augment;          ///< training sources only
  uint64_t seed = 0;             ///< of the split, the shuffle and the augmentation
};

/// The most examples a data set or an example list may hold (2^32 − 1).
constexpr int64_t kMaxExamples = 0xFFFFFFFFll;
/// The largest crop padding and shift accepted.
constexpr int64_t kMaxPadding = 65536;

/// The size of the images a source makes from rows × cols images.
struct ImageSize {
  int64_t rows = 0, cols = 0;
};

/// cropSize × cropSize with a crop, else rows × cols.
ImageSize outputSize(const DataOptions &options, int64_t rows, int64_t cols);

/// "" when `options` suit `data`, else a sentence saying what is wrong (a
/// bad batch size, normalization, fraction or transform; a crop larger than
/// the padded image; a validation share that leaves nothing to train on; a
/// Dataset whose sizes disagree).
std::string checkDataOptions(const DataOptions &options, const Dataset &data);

/// The examples of each part of a split, in ascending order.
struct Split {
  std::vector<int64_t> train, validation;
};

/// Holds out round(fraction × count) of examples 0 … count−1 (rounding
/// halves up), chosen by stream "validation" under `seed`.
Split splitValidation(int64_t count, double fraction, uint64_t seed);

/// The random choices for one example of one epoch (all 0/false when the
/// transform is off).
struct AugmentDraw {
  int64_t cropRow = 0, cropCol = 0;     ///< top-left of the window in the padded image
  int64_t shiftRows = 0, shiftCols = 0; ///< + moves content down / right
  float degrees = 0;                    ///< + turns content counter-clockwise
  bool flip = false;
};

/// The draw for example `example` of the Dataset in epoch `epoch`, for
/// images of rows × cols.
AugmentDraw drawAugmentation(const Augmentation &augment, int64_t rows, int64_t cols, uint64_t seed,
                             int64_t epoch, int64_t example);

/// Rotates a rows × cols image by `degrees` counter-clockwise (as displayed,
/// row 0 at the top) about its centre ((cols−1)/2, (rows−1)/2): each output
/// pixel samples the input bilinearly at its rotated-back position, reading
/// 0 outside the image. Multiples of 90° use exact sines and cosines, so 0°
/// is the identity and 90° moves pixels exactly. `in` and `out` must not
/// overlap.
void rotateImage(const float *in, float *out, int64_t rows, int64_t cols, double degrees);

/// Training sources shuffle and augment; evaluation sources do neither.
enum class Purpose { Train, Evaluate };

/// One batch in memory of its own.
struct Batch {
  int64_t epoch = 0, index = 0; ///< which batch of which epoch
  int64_t count = 0;            ///< examples (the last batch of an epoch may be short)
  int64_t rows = 0, cols = 0;   ///< of each image
  std::vector<float> images;    ///< count × rows × cols
  std::vector<int64_t> labels;  ///< count
};

/// The batches of one list of examples of a Dataset. The Dataset must
/// outlive the source (it is not copied). fill() is const and thread-safe.
class BatchSource {
public:
  /// `examples` are indices into `data` (repeats allowed). Throws
  /// std::invalid_argument if checkDataOptions(options, data) is not "", an
  /// index is outside the Dataset, or there are more than kMaxExamples.
  BatchSource(const Dataset &data, std::vector<int64_t> examples, const DataOptions &options,
              Purpose purpose);
  ~BatchSource();
  BatchSource(BatchSource &&) noexcept;
  BatchSource &operator=(BatchSource &&) noexcept;
  BatchSource(const BatchSource &) = delete;
  BatchSource &operator=(const BatchSource &) = delete;

  /// ceil(examples / batchSize); 0 when there are no examples.
  int64_t batches() const;
  /// Examples in batch `b`: batchSize, or fewer in the last.
  int64_t batchExamples(int64_t b) const;
  int64_t batchSize() const { return options_.batchSize; }
  int64_t examples() const { return static_cast<int64_t>(examples_.size()); }
  /// Image size after a crop: what the model's input must be.
  int64_t rows() const { return size_.rows; }
  int64_t cols() const { return size_.cols; }
  Purpose purpose() const { return purpose_; }
  /// Whether filling a batch only copies and converts bytes (no rotation to
  /// sample): about as fast as copying a filled batch, so not worth a thread.
  bool fillsLikeACopy() const;
  /// The example list given to the constructor.
  const std::vector<int64_t> &exampleList() const { return examples_; }

  /// The Dataset indices in the order epoch `epoch` visits them.
  std::vector<int64_t> order(int64_t epoch) const;

  /// Who fills a batch: the calling thread alone, or the calling thread with
  /// the thread pool's workers (nnc_parallel_for over the examples, which
  /// runs on the caller alone when called from inside a parallel loop). Rotated
  /// batches are filled by the calling thread alone. The bytes are the same.
  enum class Threads { Caller, Pool };
  /// Writes batch `b` of epoch `epoch`: batchExamples(b) images of rows() ×
  /// cols() floats into `images` and as many labels into `labels`. Throws
  /// std::out_of_range unless 0 ≤ b < batches().
  void fill(int64_t epoch, int64_t b, float *images, int64_t *labels,
            Threads threads = Threads::Caller) const;
  /// The same into `batch`, resizing its vectors (no allocation once they
  /// have held a full batch).
  void fill(int64_t epoch, int64_t b, Batch &batch) const;

private:
  struct Cache;
  /// The visiting order of `epoch` (shared, so a newer epoch may evict it).
  std::shared_ptr<const std::vector<int64_t>> orderOf(int64_t epoch) const;

  const Dataset *data_;
  std::vector<int64_t> examples_;
  DataOptions options_;
  Purpose purpose_;
  ImageSize size_;
  std::unique_ptr<Cache> cache_;
};

/// Prepares batches of a BatchSource on one background thread while the
/// caller uses the previous one (two buffers): batches 0 … batches()−1 of
/// epochs firstEpoch … firstEpoch+epochs−1, in that order, each identical to
/// what fill() gives. The source must outlive the prefetcher. Destroying it
/// at any point stops and joins the thread (after at most the batch in
/// progress). If no thread can be started it fills each batch in next().
class Prefetcher {
public:
  /// The batches of `epochs` epochs from `firstEpoch`, skipping the first
  /// `firstBatch` of them (a run resumed in the middle of an epoch). Throws
  /// std::invalid_argument if epochs < 0 or firstBatch is not within them.
  Prefetcher(const BatchSource &source, int64_t firstEpoch, int64_t epochs,
             int64_t firstBatch = 0);
  ~Prefetcher();
  Prefetcher(const Prefetcher &) = delete;
  Prefetcher &operator=(const Prefetcher &) = delete;

  /// The next batch, or null after the last. It stays valid and unchanged
  /// until the following call to next() or the destructor. Rethrows what
  /// filling it threw (e.g. std::bad_alloc). One consumer thread only.
  const Batch *next();
  /// Batches in all (epochs × batches()).
  int64_t total() const { return total_; }

private:
  void work();
  /// Fills sequence item `k` into its buffer.
  void fillItem(int64_t k);

  const BatchSource &source_;
  const int64_t firstEpoch_, firstBatch_, total_;
  Batch buffers_[2]; ///< item k lives in buffers_[k % 2]
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t ready_ = 0; ///< items 0 … ready_−1 are filled (guarded by mutex_)
  int64_t handed_ = 0; ///< items 0 … handed_−1 were returned by next(); the caller holds the last
  bool stop_ = false;
  std::exception_ptr error_; ///< what filling item ready_ threw
  bool inline_ = false;      ///< no worker thread: next() fills
  std::thread worker_;
};

} // namespace nnc_rt
