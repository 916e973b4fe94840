// DataTest.cpp — the training-data pipeline (runtime/Data.h): batching with
// a short last batch, shuffling, the validation split, normalization, each
// augmentation against a plain reference written here, determinism of
// every random choice, and the prefetcher against direct fills.
//
// Data sets are small and synthetic; an example's label is its index, so a
// batch's labels say which examples it holds.
#include "Data.h"
#include "Parallel.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <set>
#include <thread>

using namespace nnc_rt;

namespace {

/// `count` images of rows × cols with no zero pixel (1 … 255), each
/// different, labelled with their index (count ≤ 256).
Dataset synthetic(int64_t count, int64_t rows, int64_t cols) {
  Dataset d;
  d.count = count;
  d.rows = rows;
  d.cols = cols;
  d.images.resize(size_t(count * rows * cols));
  for (int64_t i = 0; i < count; ++i)
    for (int64_t p = 0; p < rows * cols; ++p)
      d.images[size_t(i * rows * cols + p)] = uint8_t(1 + (i * 37 + p * 11 + (p * p) % 7) % 255);
  for (int64_t i = 0; i < count; ++i)
    d.labels.push_back(uint8_t(i));
  return d;
}

std::vector<int64_t> range(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

/// Example i of `d` as floats p/255.
std::vector<float> unitImage(const Dataset &d, int64_t i) {
  std::vector<float> v;
  for (int64_t p = 0; p < d.rows * d.cols; ++p)
    v.push_back(float(d.images[size_t(i * d.rows * d.cols + p)]) / 255.0f);
  return v;
}

/// A plain reference for crop, then shift, then flip: pad, cut the window,
/// move it (zeros where the moved window has nothing), mirror.
std::vector<float> reference(const std::vector<float> &img, int64_t rows, int64_t cols,
                             const Augmentation &a, const AugmentDraw &d, bool rotate = false) {
  const int64_t pad = a.cropPadding;
  const int64_t H = a.cropSize > 0 ? a.cropSize : rows, W = a.cropSize > 0 ? a.cropSize : cols;
  auto padded = [&](int64_t y, int64_t x) {
    y -= pad;
    x -= pad;
    return y >= 0 && y < rows && x >= 0 && x < cols ? img[size_t(y * cols + x)] : 0.0f;
  };
  std::vector<float> cropped(size_t(H * W)), shifted(size_t(H * W), 0.0f), out(size_t(H * W));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      cropped[size_t(y * W + x)] = padded(y + d.cropRow, x + d.cropCol);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      int64_t sy = y - d.shiftRows, sx = x - d.shiftCols;
      if (sy >= 0 && sy < H && sx >= 0 && sx < W)
        shifted[size_t(y * W + x)] = cropped[size_t(sy * W + sx)];
    }
  if (rotate) {
    std::vector<float> turned(shifted.size());
    rotateImage(shifted.data(), turned.data(), H, W, d.degrees);
    shifted = turned;
  }
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      out[size_t(y * W + x)] = shifted[size_t(y * W + (d.flip ? W - 1 - x : x))];
  return out;
}

/// Every batch of one epoch, images and labels concatenated.
struct Epoch {
  std::vector<float> images;
  std::vector<int64_t> labels;
};

Epoch wholeEpoch(const BatchSource &s, int64_t epoch) {
  Epoch e;
  Batch batch;
  for (int64_t b = 0; b < s.batches(); ++b) {
    s.fill(epoch, b, batch);
    e.images.insert(e.images.end(), batch.images.begin(), batch.images.end());
    e.labels.insert(e.labels.end(), batch.labels.begin(), batch.labels.end());
  }
  return e;
}

/// Each example's image in one epoch, found by its label.
std::map<int64_t, std::vector<float>> byExample(const BatchSource &s, int64_t epoch) {
  Epoch e = wholeEpoch(s, epoch);
  const size_t pixels = size_t(s.rows() * s.cols());
  std::map<int64_t, std::vector<float>> images;
  for (size_t i = 0; i < e.labels.size(); ++i)
    images[e.labels[i]].assign(e.images.begin() + i * pixels, e.images.begin() + (i + 1) * pixels);
  return images;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

} // namespace

TEST_CASE("the last partial batch is used and every example comes once", "[data]") {
  Dataset d = synthetic(10, 3, 2);
  DataOptions o;
  o.batchSize = 4;
  BatchSource s(d, range(10), o, Purpose::Train);
  REQUIRE(s.batches() == 3);
  CHECK(s.batchExamples(0) == 4);
  CHECK(s.batchExamples(1) == 4);
  CHECK(s.batchExamples(2) == 2);
  CHECK(s.rows() == 3);
  CHECK(s.cols() == 2);

  std::vector<int64_t> seen;
  Batch batch;
  for (int64_t b = 0; b < 3; ++b) {
    s.fill(0, b, batch);
    CHECK(batch.count == (b < 2 ? 4 : 2));
    CHECK(batch.index == b);
    CHECK(batch.epoch == 0);
    CHECK(batch.rows == 3);
    CHECK(batch.cols == 2);
    REQUIRE(batch.images.size() == size_t(batch.count * 6));
    REQUIRE(batch.labels.size() == size_t(batch.count));
    for (int64_t i = 0; i < batch.count; ++i) {
      int64_t example = batch.labels[size_t(i)];
      seen.push_back(example);
      std::vector<float> expected = unitImage(d, example);
      CHECK(std::equal(expected.begin(), expected.end(), batch.images.begin() + i * 6));
    }
  }
  CHECK(seen == range(10)); // in order: no shuffle

  // Straight into caller buffers, with nothing written past the batch.
  std::vector<float> images(5 * 6, -7.0f);
  std::vector<int64_t> labels(5, -7);
  s.fill(0, 2, images.data(), labels.data());
  CHECK(labels == std::vector<int64_t>{8, 9, -7, -7, -7});
  CHECK(images[2 * 6] == -7.0f);
  CHECK(images[2 * 6 - 1] == unitImage(d, 9).back());

  CHECK_THROWS_WITH(s.fill(0, 3, batch), "batch 3 does not exist: there are 3 (0 to 2)");
  CHECK_THROWS_AS(s.fill(0, -1, batch), std::out_of_range);

  // A batch larger than the list: one short batch. No examples: no batches.
  o.batchSize = 64;
  BatchSource one(d, range(10), o, Purpose::Train);
  CHECK(one.batches() == 1);
  CHECK(one.batchExamples(0) == 10);
  BatchSource none(d, {}, o, Purpose::Evaluate);
  CHECK(none.batches() == 0);
  CHECK_THROWS_AS(none.fill(0, 0, batch), std::out_of_range);
  // Exact multiples have no empty batch at the end.
  o.batchSize = 5;
  CHECK(BatchSource(d, range(10), o, Purpose::Train).batches() == 2);
}

TEST_CASE("shuffling is a permutation per epoch, fixed by the seed", "[data]") {
  Dataset d = synthetic(100, 2, 2);
  DataOptions o;
  o.batchSize = 7;
  o.shuffle = true;
  o.seed = 5;
  BatchSource s(d, range(100), o, Purpose::Train);
  Epoch e0 = wholeEpoch(s, 0), e1 = wholeEpoch(s, 1);
  CHECK(sorted(e0.labels) == range(100));
  CHECK(sorted(e1.labels) == range(100));
  CHECK(e0.labels != range(100));
  CHECK(e0.labels != e1.labels);
  CHECK(e0.labels == s.order(0));
  CHECK(e1.labels == s.order(1));

  // Same seed, another source: the same bytes. A batch filled again, in
  // another order, after other epochs: the same bytes.
  BatchSource again(d, range(100), o, Purpose::Train);
  Epoch e1Again = wholeEpoch(again, 1), e0Again = wholeEpoch(again, 0);
  CHECK(e0Again.images == e0.images);
  CHECK(e0Again.labels == e0.labels);
  CHECK(e1Again.images == e1.images);
  Batch first, later;
  s.fill(0, 3, first);
  for (int64_t epoch : {7, 8, 9})
    s.fill(epoch, 0, later);
  s.fill(0, 3, later);
  CHECK(first.images == later.images);
  CHECK(first.labels == later.labels);

  // Another seed: another order.
  o.seed = 6;
  CHECK(BatchSource(d, range(100), o, Purpose::Train).order(0) != e0.labels);

  // A list of some examples is shuffled among themselves.
  std::vector<int64_t> some{3, 14, 15, 92, 65, 35, 89, 79};
  BatchSource part(d, some, o, Purpose::Train);
  CHECK(sorted(part.order(4)) == sorted(some));
  CHECK(sorted(wholeEpoch(part, 4).labels) == sorted(some));

  // Without shuffle (or when evaluating) every epoch is in the list's order.
  o.shuffle = false;
  BatchSource plain(d, some, o, Purpose::Train);
  CHECK(wholeEpoch(plain, 0).labels == some);
  CHECK(wholeEpoch(plain, 3).labels == some);
  o.shuffle = true;
  BatchSource evaluation(d, some, o, Purpose::Evaluate);
  CHECK(wholeEpoch(evaluation, 2).labels == some);
}

TEST_CASE("shuffles are unbiased: all orders of 3 equally often", "[data]") {
  Dataset d = synthetic(3, 1, 1);
  DataOptions o;
  o.shuffle = true;
  BatchSource s(d, range(3), o, Purpose::Train);
  std::map<std::vector<int64_t>, int> counts;
  const int epochs = 6000;
  for (int e = 0; e < epochs; ++e)
    ++counts[s.order(e)];
  REQUIRE(counts.size() == 6);
  // Each count is binomial(6000, 1/6): mean 1000, sd 28.9; allow 5 sd.
  for (const auto &[order, count] : counts)
    CHECK(std::abs(count - 1000) < 145);
}

TEST_CASE("the validation split is disjoint, of the right size and deterministic", "[data]") {
  Split s = splitValidation(1000, 0.1, 42);
  CHECK(s.validation.size() == 100);
  CHECK(s.train.size() == 900);
  CHECK(std::is_sorted(s.train.begin(), s.train.end()));
  CHECK(std::is_sorted(s.validation.begin(), s.validation.end()));
  std::vector<int64_t> both = s.train;
  both.insert(both.end(), s.validation.begin(), s.validation.end());
  CHECK(sorted(both) == range(1000));                      // disjoint and complete
  CHECK(s.validation != std::vector<int64_t>(range(100))); // chosen at random, not the first
  CHECK(s.validation.back() > 900);

  Split again = splitValidation(1000, 0.1, 42);
  CHECK(again.train == s.train);
  CHECK(again.validation == s.validation);
  CHECK(splitValidation(1000, 0.1, 43).validation != s.validation);

  // round(f × count), halves up; 0 holds out nothing.
  CHECK(splitValidation(10, 0.25, 1).validation.size() == 3);
  CHECK(splitValidation(10, 0.24, 1).validation.size() == 2);
  CHECK(splitValidation(10, 0.0, 1).validation.empty());
  CHECK(splitValidation(10, 0.0, 1).train == range(10));
  CHECK(splitValidation(0, 0.5, 1).train.empty());

  CHECK_THROWS_WITH(splitValidation(10, 1.0, 1),
                    "the validation fraction must be at least 0 and below 1, not 1");
  CHECK_THROWS_WITH(splitValidation(10, -0.1, 1),
                    "the validation fraction must be at least 0 and below 1, not -0.1");
  CHECK_THROWS_AS(splitValidation(10, std::nan(""), 1), std::invalid_argument);
  CHECK_THROWS_WITH(splitValidation(1, 0.9, 1), "a validation fraction of 0.9 holds out all 1 "
                                                "training examples, leaving none to train on");
  Dataset one = synthetic(1, 2, 2);
  DataOptions o;
  o.validationFraction = 0.9;
  CHECK(checkDataOptions(o, one) ==
        "a validation fraction of 0.9 holds out all 1 training examples, leaving none to train on");
  o.validationFraction = 0.4;
  CHECK(checkDataOptions(o, one) == "");
}

TEST_CASE("normalization maps p to (p/255 - mean)/std, in training and evaluation", "[data]") {
  Dataset d;
  d.count = 1;
  d.rows = 16;
  d.cols = 16;
  for (int p = 0; p < 256; ++p)
    d.images.push_back(uint8_t(p));
  d.labels = {3};
  DataOptions o;
  o.normalizeMean = 0.1307;
  o.normalizeStd = 0.3081;
  for (Purpose purpose : {Purpose::Train, Purpose::Evaluate}) {
    Batch b;
    BatchSource(d, {0}, o, purpose).fill(0, 0, b);
    for (int p = 0; p < 256; ++p)
      CHECK(b.images[size_t(p)] == Approx((p / 255.0 - 0.1307) / 0.3081).margin(1e-6));
    // exactly: p/255 in float, then (v − mean) · (1/std) in double, rounded
    for (int p = 0; p < 256; ++p)
      CHECK(b.images[size_t(p)] == float((double(float(p) / 255.0f) - 0.1307) * (1 / 0.3081)));
    CHECK(b.labels == std::vector<int64_t>{3});
  }
  // Without normalization, exactly p/255.
  Batch b;
  BatchSource(d, {0}, DataOptions(), Purpose::Train).fill(0, 0, b);
  for (int p = 0; p < 256; ++p)
    CHECK(b.images[size_t(p)] == float(p) / 255.0f);
  CHECK(b.images[255] == 1.0f);
}

TEST_CASE("bad options and data are reported as sentences", "[data]") {
  Dataset d = synthetic(4, 28, 28);
  auto problem = [&](auto change) {
    DataOptions o;
    change(o);
    return checkDataOptions(o, d);
  };
  CHECK(problem([](DataOptions &) {}) == "");
  CHECK(problem([](DataOptions &o) { o.batchSize = 0; }) ==
        "the batch size must be at least 1, not 0");
  CHECK(problem([](DataOptions &o) { o.normalizeStd = 0; }) ==
        "normalize: std must be a positive number, not 0");
  CHECK(problem([](DataOptions &o) { o.normalizeMean = INFINITY; }) ==
        "normalize: the mean must be a finite number, not inf");
  CHECK(problem([](DataOptions &o) { o.augment.cropSize = 33, o.augment.cropPadding = 2; }) ==
        "crop: the size 33 is larger than the 28×28 images padded by 2 on every side (32×32)");
  CHECK(problem([](DataOptions &o) { o.augment.cropPadding = 2; }) ==
        "crop: a padding of 2 is given without a crop size");
  CHECK(problem([](DataOptions &o) { o.augment.cropSize = 28, o.augment.cropPadding = -1; }) ==
        "crop: the padding must be between 0 and 65536, not -1");
  CHECK(problem([](DataOptions &o) { o.augment.shiftPixels = -2; }) ==
        "shift: the pixels must be between 0 and 65536, not -2");
  CHECK(problem([](DataOptions &o) { o.augment.rotateDegrees = 181; }) ==
        "rotate: the degrees must be between 0 and 180, not 181");
  CHECK(problem([](DataOptions &o) { o.augment.flipProbability = 1.5; }) ==
        "flip: the probability must be between 0 and 1, not 1.5");
  CHECK(problem([](DataOptions &o) { o.validationFraction = 1; }) ==
        "the validation fraction must be at least 0 and below 1, not 1");

  // The constructor refuses what the check reports, with the same sentence.
  DataOptions bad;
  bad.augment.rotateDegrees = -1;
  CHECK_THROWS_WITH(BatchSource(d, range(4), bad, Purpose::Train),
                    "rotate: the degrees must be between 0 and 180, not -1");
  CHECK_THROWS_WITH(BatchSource(d, {0, 4}, DataOptions(), Purpose::Train),
                    "example 4 is not in the data set of 4 examples");
  CHECK_THROWS_WITH(BatchSource(d, {-1}, DataOptions(), Purpose::Train),
                    "example -1 is not in the data set of 4 examples");

  Dataset broken = d;
  broken.labels.pop_back();
  CHECK(checkDataOptions(DataOptions(), broken) == "the data set has 4 images but 3 labels");
  broken = d;
  broken.images.pop_back();
  CHECK(checkDataOptions(DataOptions(), broken) ==
        "the data set has 4 images of 28×28 but 3135 pixel bytes");
  broken = d;
  broken.cols = 0;
  CHECK(checkDataOptions(DataOptions(), broken) ==
        "the data set has 4 images of 28×0 pixels; it needs at least 1×1 and no negative count");
  CHECK_THROWS_WITH(Prefetcher(BatchSource(d, range(4), DataOptions(), Purpose::Train), 0, -1),
                    "cannot prefetch -1 epochs");
}

TEST_CASE("crop: the padded window the draw names, centred when evaluating", "[data]") {
  Dataset d = synthetic(60, 8, 9);
  DataOptions plain;
  plain.batchSize = 16;
  DataOptions o = plain;

  // Size = image size without padding: the identity, bit for bit.
  o.augment.cropSize = 8;
  Dataset square = synthetic(60, 8, 8);
  BatchSource identity(square, range(60), o, Purpose::Train);
  CHECK(wholeEpoch(identity, 2).images ==
        wholeEpoch(BatchSource(square, range(60), plain, Purpose::Train), 2).images);

  // With padding: a size × size window of the padded image at the draw.
  o.augment.cropSize = 7;
  o.augment.cropPadding = 2;
  o.seed = 9;
  BatchSource s(d, range(60), o, Purpose::Train);
  CHECK(s.rows() == 7);
  CHECK(s.cols() == 7);
  CHECK(outputSize(o, 8, 9).rows == 7);
  std::set<int64_t> rowsSeen, colsSeen;
  for (int64_t epoch : {0, 1}) {
    auto images = byExample(s, epoch);
    REQUIRE(images.size() == 60);
    for (const auto &[example, image] : images) {
      AugmentDraw draw = drawAugmentation(o.augment, 8, 9, 9, epoch, example);
      CHECK(draw.cropRow >= 0);
      CHECK(draw.cropRow <= 8 + 4 - 7);
      CHECK(draw.cropCol <= 9 + 4 - 7);
      rowsSeen.insert(draw.cropRow);
      colsSeen.insert(draw.cropCol);
      CHECK(image == reference(unitImage(d, example), 8, 9, o.augment, draw));
    }
  }
  CHECK(rowsSeen.size() == 6); // every offset 0 … 5 occurs
  CHECK(colsSeen.size() == 7);

  // Evaluation: the centre of the padded image, whatever the epoch.
  BatchSource centre(d, range(60), o, Purpose::Evaluate);
  CHECK(centre.rows() == 7);
  AugmentDraw middle;
  middle.cropRow = (8 + 4 - 7) / 2;
  middle.cropCol = (9 + 4 - 7) / 2;
  auto images = byExample(centre, 5);
  for (const auto &[example, image] : images)
    CHECK(image == reference(unitImage(d, example), 8, 9, o.augment, middle));
  CHECK(wholeEpoch(centre, 0).images == wholeEpoch(centre, 5).images);
}

TEST_CASE("shift: an interior blob keeps its mass and its centre moves by the shift", "[data]") {
  Dataset d;
  d.count = 50;
  d.rows = 16;
  d.cols = 16;
  d.images.assign(size_t(50 * 256), 0);
  for (int64_t i = 0; i < 50; ++i) {
    d.labels.push_back(uint8_t(i));
    for (int64_t y = 6; y <= 8; ++y) // an L-shaped blob, 3 from every border and more
      for (int64_t x = 5; x <= 9; ++x)
        if (y == 8 || x == 5)
          d.images[size_t(i * 256 + y * 16 + x)] = uint8_t(100 + y * 10 + x);
  }
  auto centre = [](const std::vector<float> &img, double &mass, double &cy, double &cx) {
    mass = cy = cx = 0;
    for (int64_t y = 0; y < 16; ++y)
      for (int64_t x = 0; x < 16; ++x) {
        double v = img[size_t(y * 16 + x)];
        mass += v;
        cy += v * double(y);
        cx += v * double(x);
      }
    cy /= mass;
    cx /= mass;
  };
  double mass0, cy0, cx0;
  centre(unitImage(d, 0), mass0, cy0, cx0);

  DataOptions o;
  o.batchSize = 8;
  o.shuffle = true;
  o.augment.shiftPixels = 3;
  BatchSource s(d, range(50), o, Purpose::Train);
  std::set<int64_t> shifts;
  int moved = 0;
  for (int64_t epoch : {0, 1, 2}) {
    for (const auto &[example, image] : byExample(s, epoch)) {
      AugmentDraw draw = drawAugmentation(o.augment, 16, 16, 0, epoch, example);
      CHECK(std::abs(draw.shiftRows) <= 3);
      CHECK(std::abs(draw.shiftCols) <= 3);
      shifts.insert(draw.shiftRows);
      shifts.insert(draw.shiftCols);
      moved += draw.shiftRows != 0 || draw.shiftCols != 0;
      double mass, cy, cx;
      centre(image, mass, cy, cx);
      CHECK(mass == Approx(mass0).epsilon(1e-12));
      CHECK(cy == Approx(cy0 + double(draw.shiftRows)).epsilon(1e-12));
      CHECK(cx == Approx(cx0 + double(draw.shiftCols)).epsilon(1e-12));
      CHECK(image == reference(unitImage(d, example), 16, 16, o.augment, draw));
    }
  }
  CHECK(shifts.size() == 7); // −3 … 3 all occur
  CHECK(moved > 120);

  // Content shifted past the border is lost and zeros come in.
  Dataset full = synthetic(20, 5, 6);
  o.augment.shiftPixels = 2;
  BatchSource edges(full, range(20), o, Purpose::Train);
  for (const auto &[example, image] : byExample(edges, 0))
    CHECK(image == reference(unitImage(full, example), 5, 6, o.augment,
                             drawAugmentation(o.augment, 5, 6, 0, 0, example)));
}

TEST_CASE("rotateImage: exact at right angles, bilinear in between", "[data]") {
  // 0°: the identity, bit for bit, on a non-square image of odd values.
  Dataset d = synthetic(1, 5, 7);
  std::vector<float> img = unitImage(d, 0), out(35);
  rotateImage(img.data(), out.data(), 5, 7, 0);
  CHECK(out == img);
  rotateImage(img.data(), out.data(), 5, 7, 360);
  CHECK(out == img);

  // 90° counter-clockwise (as displayed): the top-right corner goes to the
  // top-left, the bottom-right to the top-right.
  const std::vector<float> pattern{1, 2, 0, 0, //
                                   0, 3, 0, 0, //
                                   0, 0, 0, 0, //
                                   0, 0, 0, 4};
  const std::vector<float> turned{0, 0, 0, 4, //
                                  0, 0, 0, 0, //
                                  2, 3, 0, 0, //
                                  1, 0, 0, 0};
  std::vector<float> r(16);
  rotateImage(pattern.data(), r.data(), 4, 4, 90);
  CHECK(r == turned);
  rotateImage(turned.data(), r.data(), 4, 4, -90);
  CHECK(r == pattern);
  rotateImage(pattern.data(), r.data(), 4, 4, -270);
  CHECK(r == turned);

  // 180°: both axes reversed, also on a non-square image.
  rotateImage(img.data(), out.data(), 5, 7, 180);
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t x = 0; x < 7; ++x)
      CHECK(out[size_t(y * 7 + x)] == img[size_t((4 - y) * 7 + (6 - x))]);

  // 45° of a constant image: the weights of the four taps sum to 1 inside,
  // the centre stays put, corners fall outside and read 0.
  std::vector<float> flat(81, 0.5f), f(81);
  rotateImage(flat.data(), f.data(), 9, 9, 45);
  for (int64_t y = 0; y < 9; ++y)
    for (int64_t x = 0; x < 9; ++x)
      if (std::hypot(double(y) - 4, double(x) - 4) < 3.9)
        CHECK(f[size_t(y * 9 + x)] == 0.5f);
  CHECK(f[0] == 0.0f);
  CHECK(f[80] == 0.0f);

  // 30° of one bright pixel at row 1, column 2, above the centre (2, 2) of a
  // 5×5 image. Output pixel (row 1, column 2) reads from its rotated-back
  // position (x, y) = (2 + sin 30°, 2 − cos 30°) = (2.5, 1.134), where the
  // bright pixel weighs (1 − 0.5)(1 − 0.134); output (row 1, column 1) reads
  // from (2 − cos 30° + sin 30°, 2 − sin 30° − cos 30°) = (1.634, 0.634),
  // where it weighs 0.634²; output (row 2, column 3) reads from (2.866, 2.5),
  // where it is absent.
  std::vector<float> dot(25, 0.0f), g(25);
  dot[size_t(1 * 5 + 2)] = 1.0f;
  rotateImage(dot.data(), g.data(), 5, 5, 30);
  const double c30 = std::sqrt(3.0) / 2, s30 = 0.5;
  CHECK(g[size_t(1 * 5 + 2)] == Approx((1 - s30) * c30).margin(1e-6));
  CHECK(g[size_t(1 * 5 + 1)] == Approx((1.5 - c30) * (1.5 - c30)).margin(1e-6));
  CHECK(g[size_t(2 * 5 + 3)] == 0.0f);
}

TEST_CASE("rotate in the pipeline: crop, shift, rotate, flip, then normalize", "[data]") {
  Dataset d = synthetic(40, 8, 8);
  DataOptions o;
  o.batchSize = 6;
  o.shuffle = true;
  o.seed = 77;
  o.normalizeMean = 0.25;
  o.normalizeStd = 0.5;
  o.augment.cropSize = 6;
  o.augment.cropPadding = 1;
  o.augment.shiftPixels = 1;
  o.augment.rotateDegrees = 30;
  o.augment.flipProbability = 0.5;
  BatchSource s(d, range(40), o, Purpose::Train);
  std::set<float> angles;
  int flips = 0;
  for (const auto &[example, image] : byExample(s, 3)) {
    AugmentDraw draw = drawAugmentation(o.augment, 8, 8, 77, 3, example);
    CHECK(std::abs(draw.degrees) <= 30);
    angles.insert(draw.degrees);
    flips += draw.flip;
    std::vector<float> expected = reference(unitImage(d, example), 8, 8, o.augment, draw, true);
    REQUIRE(image.size() == expected.size());
    for (size_t p = 0; p < image.size(); ++p)
      CHECK(image[p] == Approx((expected[p] - 0.25) / 0.5).margin(1e-6));
  }
  CHECK(angles.size() == 40);
  CHECK(flips > 5);
  CHECK(flips < 35);
}

TEST_CASE("flip: p = 1 always mirrors, twice is the identity; p = 0 never", "[data]") {
  Dataset d = synthetic(30, 4, 5);
  DataOptions o;
  o.batchSize = 4;
  o.augment.flipProbability = 1;
  BatchSource s(d, range(30), o, Purpose::Train);
  auto once = byExample(s, 0);
  for (const auto &[example, image] : once) {
    std::vector<float> original = unitImage(d, example);
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 5; ++x)
        CHECK(image[size_t(y * 5 + x)] == original[size_t(y * 5 + 4 - x)]);
  }
  // Flipped images as a data set, flipped again: the originals.
  Dataset mirrored = d;
  for (const auto &[example, image] : once)
    for (size_t p = 0; p < image.size(); ++p)
      mirrored.images[size_t(example) * 20 + p] = uint8_t(std::lround(image[p] * 255));
  auto twice = byExample(BatchSource(mirrored, range(30), o, Purpose::Train), 1);
  for (const auto &[example, image] : twice)
    CHECK(image == unitImage(d, example));

  // p = 0: off, so the same bytes as no augmentation, whatever the epoch.
  o.augment.flipProbability = 0;
  CHECK(wholeEpoch(BatchSource(d, range(30), o, Purpose::Train), 4).images ==
        wholeEpoch(BatchSource(d, range(30), DataOptions(), Purpose::Train), 0).images);
  // p = 0.5: about half of 2000 draws (sd 22).
  o.augment.flipProbability = 0.5;
  int flips = 0;
  for (int64_t i = 0; i < 2000; ++i)
    flips += drawAugmentation(o.augment, 4, 5, 0, i % 7, i).flip;
  CHECK(flips > 890);
  CHECK(flips < 1110);
}

TEST_CASE("an example's augmentation depends on seed, epoch and its index only", "[data]") {
  Dataset d = synthetic(50, 10, 10);
  DataOptions o;
  o.shuffle = true;
  o.seed = 3;
  o.augment.cropSize = 9;
  o.augment.cropPadding = 2;
  o.augment.shiftPixels = 2;
  o.augment.rotateDegrees = 15;
  o.augment.flipProbability = 0.5;
  o.batchSize = 3;
  auto small = byExample(BatchSource(d, range(50), o, Purpose::Train), 2);
  o.batchSize = 16;
  auto large = byExample(BatchSource(d, range(50), o, Purpose::Train), 2);
  o.shuffle = false;
  auto ordered = byExample(BatchSource(d, range(50), o, Purpose::Train), 2);
  // A list holding some examples twice and others not at all.
  std::vector<int64_t> some{7, 7, 30, 2, 49};
  auto partial = byExample(BatchSource(d, some, o, Purpose::Train), 2);
  BatchSource twice(d, some, o, Purpose::Train);
  Batch batch;
  twice.fill(2, 0, batch); // all five, in the list's order
  REQUIRE(batch.labels == some);
  const auto pixels = std::ptrdiff_t(twice.rows() * twice.cols());
  CHECK(std::equal(batch.images.begin(), batch.images.begin() + pixels,
                   batch.images.begin() + pixels));
  CHECK(small == large);
  CHECK(small == ordered);
  for (const auto &[example, image] : partial)
    CHECK(image == small[example]);

  // Another epoch or seed changes (nearly) every example.
  auto next = byExample(BatchSource(d, range(50), o, Purpose::Train), 3);
  o.seed = 4;
  auto reseeded = byExample(BatchSource(d, range(50), o, Purpose::Train), 2);
  int differentEpoch = 0, differentSeed = 0;
  for (int64_t i = 0; i < 50; ++i) {
    differentEpoch += next[i] != small[i];
    differentSeed += reseeded[i] != small[i];
  }
  CHECK(differentEpoch > 45);
  CHECK(differentSeed > 45);
  AugmentDraw a = drawAugmentation(o.augment, 10, 10, 4, 2, 17);
  AugmentDraw b = drawAugmentation(o.augment, 10, 10, 4, 2, 17);
  CHECK(a.cropRow == b.cropRow);
  CHECK(a.shiftCols == b.shiftCols);
  CHECK(a.degrees == b.degrees);
  CHECK(a.flip == b.flip);

  // Evaluation sources ignore the epoch and augment nothing.
  BatchSource evaluation(d, range(50), o, Purpose::Evaluate);
  CHECK(wholeEpoch(evaluation, 0).images == wholeEpoch(evaluation, 9).images);
}

TEST_CASE("fill is thread-safe: concurrent epochs give the bytes of a lone caller", "[data][threads]") {
  Dataset d = synthetic(200, 12, 12);
  DataOptions o;
  o.batchSize = 32;
  o.shuffle = true;
  o.augment.rotateDegrees = 10;
  o.augment.shiftPixels = 1;
  BatchSource alone(d, range(200), o, Purpose::Train);
  std::vector<Epoch> expected;
  for (int64_t e = 0; e < 6; ++e)
    expected.push_back(wholeEpoch(alone, e));
  // Two threads interleave epochs on one source, evicting each other's
  // cached orders; each records what it got and the checks run afterwards.
  BatchSource shared(d, range(200), o, Purpose::Train);
  std::vector<Epoch> got(6);
  std::thread other([&] {
    for (int64_t e = 1; e < 6; e += 2)
      got[size_t(e)] = wholeEpoch(shared, e);
  });
  for (int64_t e = 0; e < 6; e += 2)
    got[size_t(e)] = wholeEpoch(shared, e);
  other.join();
  for (size_t e = 0; e < 6; ++e) {
    CHECK(got[e].labels == expected[e].labels);
    CHECK(got[e].images == expected[e].images);
  }
}

TEST_CASE("the thread pool fills the bytes the caller alone fills", "[data][threads]") {
  nnc_set_threads(2);
  Dataset d = synthetic(150, 28, 28);
  for (bool augment : {false, true})
    for (bool normalize : {false, true})
      for (bool rotate : {false, true}) {
        DataOptions o;
        o.batchSize = 64; // 3 batches, the last of 22: above and below the pool's threshold
        o.shuffle = true;
        o.seed = 5;
        if (normalize)
          o.normalizeMean = 0.2860, o.normalizeStd = 0.3530;
        if (augment) {
          o.augment.cropSize = 26;
          o.augment.cropPadding = 2;
          o.augment.shiftPixels = 2;
          o.augment.flipProbability = 0.5;
        }
        if (rotate)
          o.augment.rotateDegrees = 15;
        BatchSource s(d, range(150), o, Purpose::Train);
        CHECK(s.fillsLikeACopy() == !rotate);
        const int64_t pixels = s.rows() * s.cols();
        for (int64_t b = 0; b < s.batches(); ++b) {
          const int64_t n = s.batchExamples(b);
          std::vector<float> alone(size_t(n * pixels), -1), pooled(size_t(n * pixels), -2);
          std::vector<int64_t> aloneLabels(size_t(n), -1), pooledLabels(size_t(n), -2);
          s.fill(1, b, alone.data(), aloneLabels.data());
          s.fill(1, b, pooled.data(), pooledLabels.data(), BatchSource::Threads::Pool);
          INFO("augment " << augment << ", normalize " << normalize << ", rotate " << rotate
                          << ", batch " << b);
          CHECK(std::memcmp(alone.data(), pooled.data(), alone.size() * sizeof(float)) == 0);
          CHECK(aloneLabels == pooledLabels);
        }
      }
  nnc_set_threads(0);
}

TEST_CASE("the prefetcher gives the bytes of direct fills and stops cleanly", "[data][threads]") {
  Dataset d = synthetic(50, 10, 10);
  DataOptions o;
  o.batchSize = 7; // 8 batches, the last of 1
  o.shuffle = true;
  o.seed = 11;
  o.normalizeMean = 0.5;
  o.normalizeStd = 0.2;
  o.augment.cropSize = 8;
  o.augment.cropPadding = 1;
  o.augment.shiftPixels = 1;
  o.augment.rotateDegrees = 20;
  o.augment.flipProbability = 0.5;
  BatchSource s(d, range(50), o, Purpose::Train);
  {
    Prefetcher p(s, 2, 3);
    CHECK(p.total() == 24);
    Batch direct;
    for (int64_t epoch = 2; epoch < 5; ++epoch)
      for (int64_t b = 0; b < 8; ++b) {
        const Batch *batch = p.next();
        REQUIRE(batch != nullptr);
        s.fill(epoch, b, direct);
        CHECK(batch->epoch == epoch);
        CHECK(batch->index == b);
        CHECK(batch->count == (b < 7 ? 7 : 1));
        CHECK(batch->rows == 8);
        CHECK(batch->cols == 8);
        CHECK(batch->images == direct.images);
        CHECK(batch->labels == direct.labels);
      }
    CHECK(p.next() == nullptr);
    CHECK(p.next() == nullptr);
  }
  {
    // Resumed in the middle of epoch 2 (a run a signal stopped): from batch 5 on.
    Prefetcher p(s, 2, 2, 5);
    CHECK(p.total() == 11);
    Batch direct;
    for (int64_t k = 5; k < 16; ++k) {
      const Batch *batch = p.next();
      REQUIRE(batch != nullptr);
      s.fill(2 + k / 8, k % 8, direct);
      CHECK(batch->epoch == 2 + k / 8);
      CHECK(batch->index == k % 8);
      CHECK(batch->images == direct.images);
      CHECK(batch->labels == direct.labels);
    }
    CHECK(p.next() == nullptr);
    CHECK_THROWS_AS(Prefetcher(s, 0, 1, 9), std::invalid_argument);
    CHECK_THROWS_AS(Prefetcher(s, 0, 1, -1), std::invalid_argument);
  }
  {
    Prefetcher none(s, 0, 0);
    CHECK(none.next() == nullptr);
  }
  // Destroyed mid-epoch, after a few batches or none, over and over: the
  // thread stops and joins (ASan and TSan see no leak or race).
  for (int taken = 0; taken < 40; ++taken) {
    Prefetcher p(s, 0, 100);
    for (int i = 0; i < taken % 5; ++i)
      REQUIRE(p.next() != nullptr);
  }
  // The batch handed out stays intact while the next is being prepared.
  Prefetcher p(s, 0, 1);
  const Batch *first = p.next();
  std::vector<float> copy = first->images;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(first->images == copy);
  Batch direct;
  s.fill(0, 0, direct);
  CHECK(copy == direct.images);
}
