// Training.cpp — the training driver shared by nnc and emitted programs.
#include "FpContract.h" // first: no contraction in this file

#include "Training.h"

#include "Checkpoint.h"
#include "Image.h"
#include "Plot.h"
#include "Random.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <sys/stat.h>

namespace nnc_rt {

namespace {

using Clock = std::chrono::steady_clock;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
std::string format(const char *pattern, ...) {
  va_list args;
  va_start(args, pattern);
  char small[512];
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(small, sizeof small, pattern, copy);
  va_end(copy);
  std::string out;
  if (n < 0) {
    out = pattern;
  } else if (static_cast<size_t>(n) < sizeof small) {
    out.assign(small, static_cast<size_t>(n));
  } else {
    out.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(out.data(), out.size(), pattern, args);
    out.resize(static_cast<size_t>(n));
  }
  va_end(args);
  return out;
}

/// The shortest decimal that reads back as `v` (JSON: null if not finite).
std::string json(double v) {
  if (!std::isfinite(v))
    return "null";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
std::string json(float v) {
  if (!std::isfinite(v))
    return "null";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

/// `s` as a JSON string literal.
std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += format("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string percent(double v) { return format("%.2f%%", 100 * v); }

std::string dimsText(const std::vector<int64_t> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// The file loadMnist read: DIR/NAME, or DIR/NAME.gz when only that exists.
std::string idxFile(const std::string &dir, const std::string &name) {
  std::string raw = dir + "/" + name;
  return exists(raw) || !exists(raw + ".gz") ? raw : raw + ".gz";
}

/// `bn.running_mean` → `bn`, for PyTorch's `bn.num_batches_tracked`; "" otherwise.
std::string batchnormOf(const StateTensor &t) {
  const std::string tail = ".running_mean";
  if (t.kind != StateTensor::Kind::Running || t.name.size() <= tail.size() ||
      t.name.compare(t.name.size() - tail.size(), tail.size(), tail) != 0)
    return "";
  return t.name.substr(0, t.name.size() - tail.size());
}

bool parseCount(const std::map<std::string, std::string> &metadata, const char *key,
                int64_t &out) {
  auto it = metadata.find(key);
  if (it == metadata.end() || it->second.empty() || it->second.size() > 18)
    return false;
  int64_t v = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

/// What one of a checkpoint's two files holds: the weights file the
/// parameters and running statistics (with `num_batches_tracked` per
/// batchnorm), the optimizer file the optimizer's state.
std::vector<TensorSpec> checkpointSpec(const Model &m, bool optimizerFile) {
  std::vector<TensorSpec> spec;
  for (const StateTensor &t : m.state) {
    if ((t.kind == StateTensor::Kind::Optimizer) != optimizerFile)
      continue;
    spec.push_back({t.checkpointName, DType::F32, t.shape});
    if (std::string bn = batchnormOf(t); !bn.empty())
      spec.push_back({bn + ".num_batches_tracked", DType::I64, {}});
  }
  return spec;
}

constexpr const char *kWeightsFormat = "nnc-checkpoint-1";
constexpr const char *kOptimizerFormat = "nnc-optimizer-1";

/// Reads one of a checkpoint's files and checks it against the model.
bool loadCheckpointFile(const std::string &path, const Model &m, bool optimizerFile,
                        Checkpoint &ckpt, std::string &error) {
  if (!loadSafetensors(path, ckpt, error))
    return false;
  auto format = ckpt.metadata.find("format");
  if (format != ckpt.metadata.end() && !optimizerFile && format->second == kOptimizerFormat) {
    error = path + ": this is the optimizer state of a checkpoint, not its weights: pass the "
                   "file --save was given";
    return false;
  }
  if (!checkpointMatches(ckpt, checkpointSpec(m, optimizerFile), error)) {
    auto model = ckpt.metadata.find("model");
    if (model != ckpt.metadata.end() && model->second != m.name)
      error += " (it was saved from model '" + model->second + "', this is '" + m.name + "')";
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- data ----

struct Data {
  Dataset train, test;
  Split split;
};

/// Whether rows × cols images are what the model takes: [1, rows, cols],
/// [rows, cols] or [rows · cols].
bool inputFits(const std::vector<int64_t> &dims, int64_t rows, int64_t cols) {
  return dims == std::vector<int64_t>{1, rows, cols} || dims == std::vector<int64_t>{rows, cols} ||
         dims == std::vector<int64_t>{rows * cols};
}

/// Reports data whose images or labels the model cannot take.
bool checkAgainstModel(const Model &m, const Dataset &set, const std::string &dir, bool train,
                       const ErrorFn &error) {
  const std::string prefix = train ? "train" : "t10k";
  ImageSize size = outputSize(m.data, set.rows, set.cols);
  if (!inputFits(m.inputDims, size.rows, size.cols)) {
    bool cropped = m.data.augment.cropSize > 0;
    error(Culprit::Input,
          "model '" + m.name + "' takes " + dimsText(m.inputDims) + " per example, but " +
              idxFile(dir, prefix + "-images-idx3-ubyte") + " holds " + std::to_string(set.rows) +
              "×" + std::to_string(set.cols) + " images" +
              (cropped ? " (" + std::to_string(size.rows) + "×" + std::to_string(size.cols) +
                             " after the crop)"
                       : ""),
          "declare the input as [1, " + std::to_string(size.rows) + ", " +
              std::to_string(size.cols) + "] or point the data at images of the model's size");
    return false;
  }
  for (int64_t i = 0; i < set.count; ++i) {
    int64_t label = set.labels[static_cast<size_t>(i)];
    if (label < m.classes)
      continue;
    error(Culprit::Output,
          idxFile(dir, prefix + "-labels-idx1-ubyte") + ": label " + std::to_string(label) +
              " of example " + withThousands(i) + " is not a class of model '" + m.name +
              "', whose output has " + std::to_string(m.classes) + " classes (0 to " +
              std::to_string(m.classes - 1) + ")",
          "make the last layer as wide as the number of classes in the data");
    return false;
  }
  return true;
}

/// Loads and checks the data. `needTrain` false loads the test split only.
bool loadData(const Model &m, const RunOptions &options, bool needTrain, Data &data,
              const ErrorFn &error) {
  if (options.dataDir.empty()) {
    error(Culprit::DataBlock, "there is no data to run on: the program names no data directory",
          "add `path \"DIR\"` to a data block, or pass --data DIR");
    return false;
  }
  const std::string &dir = options.dataDir;
  auto fail = [&](const std::string &why) {
    bool given = options.dataFromOption;
    error(given ? Culprit::None : Culprit::DataPath,
          (given ? "cannot read the data given by --data: " : "cannot read the data: ") +
              why,
          "scripts/get-mnist.sh DIR puts MNIST in DIR; --data DIR reads another directory");
    return false;
  };
  std::string why;
  // Checked before each file is read: the model's buffers, then each file
  // read, count against the memory cap.
  uint64_t taken = m.bufferBytes;
  if (needTrain && !loadMnist(dir, true, data.train, why, taken))
    return fail(why);
  taken += data.train.images.size() + data.train.labels.size();
  if (!loadMnist(dir, false, data.test, why, taken))
    return fail(why);
  for (const Dataset *set : {&data.train, &data.test}) {
    if (set == &data.train && !needTrain)
      continue;
    std::string problem = checkDataOptions(m.data, *set);
    if (!problem.empty()) {
      error(Culprit::DataBlock, problem + " (" + dir + ")", "");
      return false;
    }
    if (!checkAgainstModel(m, *set, dir, set == &data.train, error))
      return false;
  }
  if (needTrain)
    data.split = splitValidation(data.train.count, m.data.validationFraction, m.data.seed);
  return true;
}

std::vector<int64_t> everyExample(const Dataset &set) {
  std::vector<int64_t> all(static_cast<size_t>(set.count));
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = static_cast<int64_t>(i);
  return all;
}

// ------------------------------------------------------------- metrics ----

/// Loss and accuracy over a set of examples.
struct Metrics {
  double lossSum = 0;
  int64_t correct = 0, count = 0;
  std::vector<int64_t> confusion; ///< classes × classes (true row, predicted column), if asked

  double loss() const { return count ? lossSum / static_cast<double>(count) : std::nan(""); }
  double accuracy() const {
    return count ? static_cast<double>(correct) / static_cast<double>(count) : std::nan("");
  }
};

/// The class with the largest output (the first of equals); -1 if any is NaN.
int64_t argmax(const float *row, int64_t classes) {
  int64_t best = 0;
  for (int64_t j = 0; j < classes; ++j) {
    if (std::isnan(row[j]))
      return -1;
    if (row[j] > row[best])
      best = j;
  }
  return best;
}

void countCorrect(const float *logits, const int64_t *labels, int64_t n, int64_t classes,
                  Metrics &m) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t predicted = argmax(logits + i * classes, classes);
    m.correct += predicted == labels[i];
    if (!m.confusion.empty() && predicted >= 0)
      ++m.confusion[static_cast<size_t>(labels[i] * classes + predicted)];
  }
  m.count += n;
}

/// The loss of each example, summed, in double: as the compiled loss
/// computes the batch mean (cross_entropy: log-sum-exp minus the label's
/// output; mse: the mean square distance from the one-hot label).
double lossSum(const std::string &loss, const float *logits, const int64_t *labels, int64_t n,
               int64_t classes) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float *row = logits + i * classes;
    if (loss == "cross_entropy") {
      double top = row[0];
      for (int64_t j = 1; j < classes; ++j)
        top = std::max(top, double(row[j]));
      double sum = 0;
      for (int64_t j = 0; j < classes; ++j)
        sum += std::exp(double(row[j]) - top);
      total += top + std::log(sum) - row[labels[i]];
    } else {
      double sq = 0;
      for (int64_t j = 0; j < classes; ++j) {
        double d = row[j] - (j == labels[i] ? 1.0 : 0.0);
        sq += d * d;
      }
      total += sq / static_cast<double>(classes);
    }
  }
  return total;
}

/// Runs predict over every batch of `source` (evaluation sources neither
/// shuffle nor augment, so the epoch does not matter).
Metrics evaluateOn(Session &s, const BatchSource &source, bool confusion) {
  const Model &model = s.model();
  Metrics m;
  if (confusion)
    m.confusion.assign(static_cast<size_t>(model.classes * model.classes), 0);
  Runner &r = s.predict();
  float *x = r.data(model.input);
  std::vector<int64_t> labels(static_cast<size_t>(source.batchSize()));
  for (int64_t b = 0; b < source.batches(); ++b) {
    int64_t n = source.batchExamples(b);
    source.fill(0, b, x, labels.data());
    r.run(n);
    const float *logits = r.data(model.logits);
    m.lossSum += lossSum(model.loss, logits, labels.data(), n, model.classes);
    countCorrect(logits, labels.data(), n, model.classes, m);
  }
  return m;
}

// ------------------------------------------------------------ reporting ---

/// What one epoch measured.
struct EpochReport {
  int64_t epoch = 0;
  Metrics train, val, test;
  bool hasVal = false;
  float lr = 0; ///< the step's learning rate, as the compiled step computed it
  double seconds = 0;
};

void printEpoch(const EpochReport &r, int64_t epochs, bool jsonLines) {
  double imagesPerS = r.seconds > 0 ? static_cast<double>(r.train.count) / r.seconds : 0;
  int width = static_cast<int>(std::to_string(epochs).size());
  std::string line = format("epoch %*lld/%lld  train loss %.4f acc %s", width,
                            static_cast<long long>(r.epoch), static_cast<long long>(epochs),
                            r.train.loss(), percent(r.train.accuracy()).c_str());
  if (r.hasVal)
    line += format("  val loss %.4f acc %s", r.val.loss(), percent(r.val.accuracy()).c_str());
  line += format("  test loss %.4f acc %s  lr %.3g  %.2f s  %s img/s", r.test.loss(),
                 percent(r.test.accuracy()).c_str(), double(r.lr), r.seconds,
                 withThousands(static_cast<int64_t>(imagesPerS)).c_str());
  std::cerr << line << std::endl;
  if (jsonLines) {
    std::cout << "{\"epoch\": " << r.epoch << ", \"train_loss\": " << json(r.train.loss())
              << ", \"train_acc\": " << json(r.train.accuracy())
              << ", \"val_loss\": " << (r.hasVal ? json(r.val.loss()) : "null")
              << ", \"val_acc\": " << (r.hasVal ? json(r.val.accuracy()) : "null")
              << ", \"test_loss\": " << json(r.test.loss())
              << ", \"test_acc\": " << json(r.test.accuracy()) << ", \"lr\": " << json(r.lr)
              << ", \"seconds\": " << json(r.seconds)
              << ", \"images_per_s\": " << json(imagesPerS) << "}" << std::endl;
  }
}

/// The live line on a terminal: batch n/N, running loss, time left.
class ProgressLine {
public:
  /// `title` leads the line ("epoch 3/10"); `batches` is the count to go.
  ProgressLine(bool enabled, std::string title, int64_t batches)
      : enabled_(enabled), title_(std::move(title)), batches_(batches),
        start_(Clock::now()), last_(start_) {}
  ~ProgressLine() { clear(); }
  ProgressLine(const ProgressLine &) = delete;
  ProgressLine &operator=(const ProgressLine &) = delete;

  void update(int64_t done, double runningLoss) {
    if (!enabled_)
      return;
    Clock::time_point now = Clock::now();
    if (done < batches_ && now - last_ < std::chrono::milliseconds(100))
      return;
    last_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double left = done > 0 ? elapsed * static_cast<double>(batches_ - done) /
                                 static_cast<double>(done)
                           : 0;
    constexpr int kWidth = 24;
    int filled = static_cast<int>(kWidth * done / std::max<int64_t>(batches_, 1));
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth)
      bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
    std::cerr << format("\r\033[K%s [%s] %lld/%lld  loss %.4f  ETA %.0f s", title_.c_str(),
                        bar.c_str(), static_cast<long long>(done),
                        static_cast<long long>(batches_), runningLoss, left)
              << std::flush;
    shown_ = true;
  }
  void clear() {
    if (shown_)
      std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

private:
  bool enabled_;
  std::string title_;
  int64_t batches_;
  Clock::time_point start_, last_;
  bool shown_ = false;
};

EpochRecord toRecord(const EpochReport &r) {
  EpochRecord rec;
  rec.epoch = r.epoch;
  rec.train = {r.train.loss(), r.train.accuracy()};
  if (r.hasVal)
    rec.val = {r.val.loss(), r.val.accuracy()};
  rec.test = {r.test.loss(), r.test.accuracy()};
  return rec;
}

/// Checks a resumed checkpoint's settings against this run's.
bool sameRun(const std::map<std::string, std::string> &metadata, const Model &m,
             const std::string &path, const ErrorFn &error) {
  for (auto [key, mine] : {std::pair<const char *, int64_t>{"seed", m.seed},
                          {"batch", m.data.batchSize}}) {
    auto it = metadata.find(key);
    if (it != metadata.end() && it->second == std::to_string(mine))
      continue;
    std::string theirs = it == metadata.end() ? "none recorded" : it->second;
    error(Culprit::None,
          path + ": the checkpoint was trained with " + key + " " + theirs +
              ", but this run uses " + key + " " + std::to_string(mine),
          "resume with the settings the checkpoint was made with (--" + std::string(key) + " " +
              theirs + ")");
    return false;
  }
  return true;
}

} // namespace

bool readWeights(const std::string &path, const Model &model, Checkpoint &weights,
                 std::string &error) {
  return loadCheckpointFile(path, model, false, weights, error);
}

std::string optimizerStatePath(const std::string &path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  // A dot that starts the file name (".ckpt") does not begin an extension.
  bool hasExtension = dot != std::string::npos && dot > 0 &&
                      (slash == std::string::npos || dot > slash + 1);
  return hasExtension ? path.substr(0, dot) + ".optimizer" + path.substr(dot)
                      : path + ".optimizer";
}

std::string withThousands(int64_t n) {
  std::string digits = std::to_string(n);
  bool negative = !digits.empty() && digits[0] == '-';
  if (negative)
    digits.erase(0, 1);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

void initialize(const Init &init, const std::string &name, uint64_t seed, float *out,
                int64_t n) {
  switch (init.kind) {
  case Init::Kind::Zeros:
    std::fill(out, out + n, 0.0f);
    break;
  case Init::Kind::Ones:
    std::fill(out, out + n, 1.0f);
    break;
  case Init::Kind::Uniform: {
    uint64_t stream = streamId("init/" + name);
    float bound = static_cast<float>(init.bound);
    for (int64_t i = 0; i < n; ++i)
      out[i] = uniformIn(seed, stream, static_cast<uint64_t>(i), -bound, bound);
    break;
  }
  }
}

// -------------------------------------------------------------- Session ---

Session::Session(Model model, Runner &step, Runner &predict)
    : model_(std::move(model)), step_(step), predict_(predict) {
  // Checkpoints list the weights first, as PyTorch's state_dict does.
  std::stable_sort(model_.state.begin(), model_.state.end(),
                   [](const StateTensor &a, const StateTensor &b) { return a.kind < b.kind; });
  for (const StateTensor &t : model_.state) {
    float *p = step_.data(t.name);
    if (p == nullptr || step_.elements(t.name, 1) != t.elements)
      throw std::logic_error("internal error: train_step has no buffer of " +
                             std::to_string(t.elements) + " numbers for " + t.name);
    initialize(t.init, t.name, static_cast<uint64_t>(model_.seed), p, t.elements);
  }
  syncPredict();
}

void Session::syncPredict() {
  for (const StateTensor &t : model_.state) {
    if (t.kind == StateTensor::Kind::Optimizer)
      continue;
    float *to = predict_.data(t.name);
    if (to == nullptr)
      continue; // a value training needs and prediction does not
    std::memcpy(to, step_.data(t.name), static_cast<size_t>(t.elements) * sizeof(float));
  }
}

bool Session::save(const std::string &path, const Progress &progress, std::string &error) {
  const int64_t tracked = progress.step;
  std::vector<TensorRef> weights, optimizer;
  for (const StateTensor &t : model_.state) {
    bool isOptimizer = t.kind == StateTensor::Kind::Optimizer;
    (isOptimizer ? optimizer : weights)
        .push_back({t.checkpointName, DType::F32, t.shape, step_.data(t.name)});
    if (std::string bn = batchnormOf(t); !bn.empty())
      weights.push_back({bn + ".num_batches_tracked", DType::I64, {}, &tracked});
  }
  std::map<std::string, std::string> metadata = {
      {"format", kOptimizerFormat},
      {"model", model_.name},
      {"optimizer", model_.optimizer},
      {"epoch", std::to_string(progress.epoch)},
      {"step", std::to_string(progress.step)},
      {"seed", std::to_string(model_.seed)},
      {"batch", std::to_string(model_.data.batchSize)},
  };
  // Both files are written in full before either replaces its old copy, so
  // a failure (a full disk, a read-only directory) leaves the previous
  // checkpoint whole. The optimizer's file is renamed first: a crash
  // between the two renames leaves weights older than the optimizer state,
  // which --resume detects by their steps.
  std::map<std::string, std::string> weightsMetadata = metadata;
  weightsMetadata["format"] = kWeightsFormat;
  return saveSafetensorsFiles({{optimizerStatePath(path), optimizer, metadata},
                               {path, weights, weightsMetadata}},
                              error);
}

bool Session::load(const std::string &path, bool withOptimizer, Progress &progress,
                   std::map<std::string, std::string> &metadata, std::string &error) {
  Checkpoint weights, optimizer;
  if (!readWeights(path, model_, weights, error))
    return false;
  progress = {};
  if (withOptimizer) {
    if (!parseCount(weights.metadata, "epoch", progress.epoch) ||
        !parseCount(weights.metadata, "step", progress.step)) {
      error = path + ": not a checkpoint nnc wrote for training: its metadata has no epoch and "
                     "step to resume from";
      return false;
    }
    std::string optimizerPath = optimizerStatePath(path);
    if (!loadCheckpointFile(optimizerPath, model_, true, optimizer, error))
      return false;
    int64_t optimizerStep = -1;
    if (!parseCount(optimizer.metadata, "step", optimizerStep) || optimizerStep != progress.step) {
      error = optimizerPath + ": the optimizer state is from step " +
              (optimizerStep < 0 ? std::string("(none recorded)") : std::to_string(optimizerStep)) +
              ", but " + path + " is from step " + std::to_string(progress.step) +
              ": the two files were not saved together";
      return false;
    }
  }
  metadata = weights.metadata;
  for (const StateTensor &t : model_.state) {
    bool isOptimizer = t.kind == StateTensor::Kind::Optimizer;
    if (isOptimizer && !withOptimizer)
      continue;
    const CheckpointTensor *c = (isOptimizer ? optimizer : weights).find(t.checkpointName);
    std::memcpy(step_.data(t.name), c->data.data(), c->data.size());
  }
  syncPredict();
  return true;
}

// --------------------------------------------------------------- --train --

namespace {

/// One training step on the batch of `n` examples in the step's input
/// buffers: the step number set, run, counted. Returns the loss.
double runStep(Runner &step, int64_t n, Progress &progress) {
  step.data(kStepBuffer)[0] = static_cast<float>(progress.step + 1);
  step.run(n);
  ++progress.step;
  return step.data(kLossBuffer)[0];
}

void reportDivergence(const ErrorFn &error, double loss, int64_t epoch, int64_t step,
                      int64_t batch, int64_t stepsPerEpoch, float lr) {
  error(Culprit::Optimizer,
        format("the loss became %s in epoch %lld, step %s (batch %lld of %lld), at learning "
               "rate %.3g",
               std::isnan(loss) ? "NaN" : "infinite", static_cast<long long>(epoch),
               withThousands(step).c_str(), static_cast<long long>(batch),
               static_cast<long long>(stepsPerEpoch), double(lr)),
        "training diverged: try a smaller learning rate (--lr), normalized inputs "
        "(normalize(mean, std) in the data block), or a warm-up schedule");
}

} // namespace

void shareOf(int64_t n, int rank, int size, int64_t &first, int64_t &count) {
  const int64_t base = n / size, extra = n % size;
  first = rank * base + std::min<int64_t>(rank, extra);
  count = base + (rank < extra ? 1 : 0);
}

namespace {

/// Setting up data-parallel training: errors of processes other than rank 0
/// are held back until every process knows who failed, so that a problem
/// all of them meet (a missing file) is reported once, by rank 0, and one
/// only another process meets is reported by it, with its rank.
class SetupErrors {
public:
  SetupErrors(Collective *comm, const ErrorFn &error) : comm_(comm), error_(error) {
    held_ = [this](Culprit c, const std::string &message, const std::string &hint) {
      if (!comm_ || comm_->rank() == 0)
        error_(c, message, hint);
      else
        pending_.push_back({c, message, hint});
    };
  }
  const ErrorFn &fn() const { return held_; }
  /// Collective when data-parallel: whether every process set up fine
  /// (`ok` is this one's verdict). Reports the held-back errors when rank 0
  /// set up fine.
  bool agree(bool ok) {
    if (!comm_)
      return ok;
    std::vector<int> all = comm_->gather(ok ? 1 : 0);
    bool everyone = std::all_of(all.begin(), all.end(), [](int v) { return v != 0; });
    if (!ok && comm_->rank() != 0 && all[0] != 0)
      for (const Pending &p : pending_)
        error_(p.culprit, format("process %d of %d: ", comm_->rank(), comm_->size()) + p.message,
               p.hint);
    return everyone;
  }

private:
  struct Pending {
    Culprit culprit;
    std::string message, hint;
  };
  Collective *comm_;
  const ErrorFn &error_;
  ErrorFn held_;
  std::vector<Pending> pending_;
};

/// The state of a session that lives in the halves of a split step: the
/// parameters in both, running statistics in grad_step, optimizer state in
/// apply_update.
void stateToHalves(Session &session, const DataParallel &dp) {
  for (const StateTensor &t : session.model().state)
    for (Runner *r : {dp.grad, dp.update})
      if (float *to = r->data(t.name))
        std::memcpy(to, session.trainStep().data(t.name),
                    static_cast<size_t>(t.elements) * sizeof(float));
}

void stateFromHalves(Session &session, const DataParallel &dp) {
  for (const StateTensor &t : session.model().state) {
    float *from = dp.update->data(t.name) ? dp.update->data(t.name) : dp.grad->data(t.name);
    if (from == nullptr)
      throw std::logic_error("internal error: neither half of the step holds " + t.name);
    std::memcpy(session.trainStep().data(t.name), from,
                static_cast<size_t>(t.elements) * sizeof(float));
  }
}

/// One step of data-parallel training.
class SplitStep {
public:
  SplitStep(const Model &model, const DataParallel &dp) : model_(model), dp_(dp) {
    for (const StateTensor &t : model.state)
      if (t.kind == StateTensor::Kind::Param) {
        const std::string g = "d:" + t.name;
        if (!dp.grad->data(g) || !dp.update->data(g) ||
            dp.grad->elements(g, 1) != t.elements)
          throw std::logic_error("internal error: no gradient buffer " + g);
        grads_.push_back({t.name, g, t.elements});
        total_ += t.elements;
      }
    flat_.resize(static_cast<size_t>(total_));
  }

  /// Trains on this process's share of the batch of `n` (images and labels
  /// of the whole batch); returns the batch's mean loss and adds the batch
  /// to `metrics`.
  double run(const Batch &batch, int64_t n, Progress &progress, Metrics &metrics) {
    Collective &comm = *dp_.comm;
    const int64_t step = progress.step + 1;
    int64_t first = 0, count = 0;
    shareOf(n, comm.rank(), comm.size(), first, count);
    double totals[2] = {0, 0}; // loss × examples, examples classified right
    Runner &g = *dp_.grad;
    if (count > 0) {
      const int64_t pixels = static_cast<int64_t>(batch.images.size()) / n;
      std::memcpy(g.data(model_.input), batch.images.data() + first * pixels,
                  static_cast<size_t>(count * pixels) * sizeof(float));
      std::memcpy(g.labels(kLabelsBuffer), batch.labels.data() + first,
                  static_cast<size_t>(count) * sizeof(int64_t));
      g.data(kStepBuffer)[0] = static_cast<float>(step);
      g.data(kFirstExampleBuffer)[0] = static_cast<float>(first); // exact: a batch < 2^24
      g.run(count);
      totals[0] = static_cast<double>(g.data(kLossBuffer)[0]) * static_cast<double>(count);
      Metrics mine;
      countCorrect(g.data(model_.logits), batch.labels.data() + first, count, model_.classes,
                   mine);
      totals[1] = static_cast<double>(mine.correct);
    }
    // Each share's gradient is the mean over its examples; the batch's is
    // their sum weighted by count / n (exactly 1 for one process).
    const float weight = static_cast<float>(static_cast<double>(count) / static_cast<double>(n));
    float *out = flat_.data();
    for (const Grad &gr : grads_) {
      const float *in = g.data(gr.buffer);
      if (count == 0)
        std::fill(out, out + gr.elements, 0.0f);
      else if (weight == 1.0f)
        std::memcpy(out, in, static_cast<size_t>(gr.elements) * sizeof(float));
      else
        for (int64_t i = 0; i < gr.elements; ++i)
          out[i] = in[i] * weight;
      out += gr.elements;
    }
    comm.beforeStep(step);
    Clock::time_point start = Clock::now();
    comm.sum(flat_.data(), total_);
    comm.sum(totals, 2);
    communication += std::chrono::duration<double>(Clock::now() - start).count();
    Runner &u = *dp_.update;
    const float *in = flat_.data();
    for (const Grad &gr : grads_) {
      std::memcpy(u.data(gr.buffer), in, static_cast<size_t>(gr.elements) * sizeof(float));
      in += gr.elements;
    }
    u.data(kStepBuffer)[0] = static_cast<float>(step);
    u.run(1);
    for (const Grad &gr : grads_) // the gradient half's copy of the parameters
      std::memcpy(g.data(gr.param), u.data(gr.param),
                  static_cast<size_t>(gr.elements) * sizeof(float));
    ++progress.step;
    metrics.lossSum += totals[0];
    metrics.correct += static_cast<int64_t>(totals[1]);
    metrics.count += n;
    return totals[0] / static_cast<double>(n);
  }

  double communication = 0; ///< seconds spent summing across processes

  /// FNV-1a over the bytes of every parameter.
  uint32_t checksum() {
    uint32_t h = 2166136261u;
    for (const Grad &gr : grads_) {
      const auto *p = reinterpret_cast<const unsigned char *>(dp_.update->data(gr.param));
      for (size_t i = 0; i < static_cast<size_t>(gr.elements) * sizeof(float); ++i)
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
  }

private:
  struct Grad {
    std::string param, buffer;
    int64_t elements;
  };
  const Model &model_;
  const DataParallel &dp_;
  std::vector<Grad> grads_;
  int64_t total_ = 0;
  std::vector<float> flat_; ///< every gradient, one after another
};

} // namespace

namespace {

volatile std::sig_atomic_t gStopSignal = 0;

extern "C" void onStopSignal(int signo) {
  gStopSignal = signo;
  std::signal(signo, SIG_DFL); // a second one stops at once
}

/// While alive, SIGINT and SIGTERM ask training to stop after the step it
/// is running (the compiled step is never cut short); a second signal
/// stops at once. A signal the process was started ignoring stays ignored.
class StopOnSignal {
public:
  StopOnSignal() {
    gStopSignal = 0;
    for (int i = 0; i < 2; ++i) {
      old_[i] = std::signal(kSignals[i], onStopSignal);
      if (old_[i] == SIG_IGN)
        std::signal(kSignals[i], SIG_IGN);
    }
  }
  ~StopOnSignal() {
    for (int i = 0; i < 2; ++i)
      if (old_[i] != SIG_ERR)
        std::signal(kSignals[i], old_[i]);
  }
  StopOnSignal(const StopOnSignal &) = delete;
  StopOnSignal &operator=(const StopOnSignal &) = delete;
  /// The signal received, or 0.
  int received() const { return gStopSignal; }

private:
  static constexpr int kSignals[2] = {SIGINT, SIGTERM};
  void (*old_[2])(int) = {SIG_ERR, SIG_ERR};
};

const char *signalName(int signo) { return signo == SIGINT ? "SIGINT" : "SIGTERM"; }

/// Training stopped by signal `signo` before batch `b` (0-based) of epoch
/// progress.epoch + 1: saves what was not saved yet when --save was given,
/// says where it stopped, and returns 128 + signo (130 for SIGINT, 143 for
/// SIGTERM).
int interrupted(Session &session, const RunOptions &options, Progress progress,
                int64_t savedStep, int signo, int64_t b, int64_t stepsPerEpoch,
                const ErrorFn &error) {
  std::string where = format("after step %s (batch %lld of %lld in epoch %lld)",
                             withThousands(progress.step).c_str(), static_cast<long long>(b),
                             static_cast<long long>(stepsPerEpoch),
                             static_cast<long long>(progress.epoch + 1));
  if (progress.step == 0)
    where = "before the first step";
  else if (b == 0)
    where = format("after step %s (the end of epoch %lld)", withThousands(progress.step).c_str(),
                   static_cast<long long>(progress.epoch));
  if (options.save.empty()) {
    std::cerr << format("interrupted by %s %s; nothing was saved (no --save)\n",
                        signalName(signo), where.c_str());
    return 128 + signo;
  }
  if (progress.step != savedStep) {
    std::string why;
    if (!session.save(options.save, progress, why)) {
      error(Culprit::None,
            format("interrupted by %s %s, and cannot save the checkpoint: %s", signalName(signo),
                   where.c_str(), why.c_str()),
            "");
      return 128 + signo;
    }
  }
  std::cerr << format("interrupted by %s %s; saved %s and %s; --resume %s continues\n",
                      signalName(signo), where.c_str(), options.save.c_str(),
                      optimizerStatePath(options.save).c_str(), options.save.c_str());
  return 128 + signo;
}

} // namespace

/// Whether checkpoints can be written to `path`: its directory exists and
/// is one. Checked before training, not after the first epoch.
static bool canSaveTo(const std::string &path, std::string &why) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    why = path + ": " + dir + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    why = path + ": " + dir + " is not a directory";
    return false;
  }
  return true;
}

int train(Session &session, const RunOptions &options, const ErrorFn &reportError) {
  const Model &model = session.model();
  const DataParallel *dp = options.parallel;
  // Rank 0 alone prints, evaluates and saves.
  const bool lead = dp == nullptr || dp->comm->rank() == 0;
  SetupErrors setup(dp ? dp->comm : nullptr, reportError);
  const ErrorFn &error = setup.fn();
  // From here on, a signal stops training before its next step. Not under
  // mpirun: the processes would stop at different steps and wait for each
  // other; there each process ends as the signal's default says.
  std::optional<StopOnSignal> stop;
  if (!dp)
    stop.emplace();
  if (std::string why; lead && !options.save.empty() && !canSaveTo(options.save, why)) {
    error(Culprit::None, "cannot save checkpoints: " + why, "");
    return setup.agree(false), 1;
  }
  Data data;
  if (!loadData(model, options, true, data, error))
    return setup.agree(false), 1;
  BatchSource training(data.train, data.split.train, model.data, Purpose::Train);
  BatchSource validation(data.train, data.split.validation, model.data, Purpose::Evaluate);
  BatchSource test(data.test, everyExample(data.test), model.data, Purpose::Evaluate);

  const int64_t epochs = model.epochs, stepsPerEpoch = training.batches();
  // The step number reaches the compiled step as a float32, exact to 2^24.
  if (epochs > (int64_t(1) << 24) / stepsPerEpoch) {
    error(Culprit::None,
          format("%lld epochs of %s steps is more than the 16,777,216 steps nnc can count",
                 static_cast<long long>(epochs), withThousands(stepsPerEpoch).c_str()),
          "train for fewer epochs or with larger batches");
    return setup.agree(false), 1;
  }
  Progress progress;
  if (!options.resume.empty()) {
    std::map<std::string, std::string> metadata;
    std::string why;
    if (!session.load(options.resume, true, progress, metadata, why)) {
      error(Culprit::None, "cannot resume: " + why, "");
      return setup.agree(false), 1;
    }
    if (!sameRun(metadata, model, options.resume, error))
      return setup.agree(false), 1;
    // A checkpoint written when a signal stopped training is in the middle
    // of its epoch; it continues from the next step.
    if (progress.step < progress.epoch * stepsPerEpoch ||
        progress.step >= (progress.epoch + 1) * stepsPerEpoch) {
      error(Culprit::None,
            format("%s: the checkpoint is at step %lld of epoch %lld, but epochs here have %lld "
                   "steps",
                   options.resume.c_str(), static_cast<long long>(progress.step),
                   static_cast<long long>(progress.epoch), static_cast<long long>(stepsPerEpoch)),
            "resume with the data the checkpoint was trained on");
      return setup.agree(false), 1;
    }
    if (lead && progress.step == progress.epoch * stepsPerEpoch)
      std::cerr << format("resuming from %s after epoch %lld (step %s)\n", options.resume.c_str(),
                          static_cast<long long>(progress.epoch),
                          withThousands(progress.step).c_str());
    else if (lead)
      std::cerr << format("resuming from %s in epoch %lld after batch %lld of %lld (step %s)\n",
                          options.resume.c_str(), static_cast<long long>(progress.epoch + 1),
                          static_cast<long long>(progress.step - progress.epoch * stepsPerEpoch),
                          static_cast<long long>(stepsPerEpoch),
                          withThousands(progress.step).c_str());
  }
  if (!setup.agree(true))
    return 1;
  std::unique_ptr<SplitStep> split;
  if (dp) {
    // Every process starts from rank 0's state and progress.
    for (const StateTensor &t : model.state)
      dp->comm->broadcast(session.trainStep().data(t.name), t.elements);
    int64_t at[2] = {progress.epoch, progress.step};
    dp->comm->broadcast(at, 2);
    progress = {at[0], at[1]};
    stateToHalves(session, *dp);
    split = std::make_unique<SplitStep>(model, *dp);
  }
  if (lead && model.data.validationFraction > 0 && validation.examples() == 0)
    std::cerr << format("warning: validation %g of %s images holds out none; no validation set "
                        "is reported\n",
                        model.data.validationFraction, withThousands(data.train.count).c_str());
  if (progress.epoch >= epochs) {
    if (lead)
      std::cerr << format("%s has finished all %lld epochs; there is nothing left to train\n",
                          options.resume.c_str(), static_cast<long long>(epochs));
    return 0;
  }
  if (lead)
    std::cerr << format("training %s on %s images (%s for validation), testing on %s; %s steps "
                        "of %lld per epoch\n",
                        model.name.c_str(), withThousands(training.examples()).c_str(),
                        withThousands(validation.examples()).c_str(),
                        withThousands(test.examples()).c_str(),
                        withThousands(stepsPerEpoch).c_str(),
                        static_cast<long long>(model.data.batchSize));
  if (lead && dp) {
    const int64_t batch = model.data.batchSize, size = dp->comm->size();
    std::cerr << format("data-parallel over %lld process%s: each takes %s of every batch of "
                        "%lld\n",
                        static_cast<long long>(size), size == 1 ? "" : "es",
                        batch % size == 0
                            ? format("%lld examples", static_cast<long long>(batch / size)).c_str()
                            : format("%lld or %lld examples", static_cast<long long>(batch / size),
                                     static_cast<long long>(batch / size + 1))
                                  .c_str(),
                        static_cast<long long>(batch));
  }
  Runner &step = session.trainStep();
  float *x = step.data(model.input);
  int64_t *labels = step.labels(kLabelsBuffer);
  const float baseLr = static_cast<float>(options.lr ? *options.lr : model.baseLr);
  Runner &scalars = dp ? *dp->update : step;
  scalars.data(kStepsPerEpochBuffer)[0] = static_cast<float>(stepsPerEpoch);
  scalars.data(kBaseLrBuffer)[0] = baseLr;

  std::vector<EpochRecord> history;
  const int64_t lastEpoch =
      options.stopAfterEpoch > 0 ? std::min(epochs, options.stopAfterEpoch) : epochs;
  const int64_t startEpoch = progress.epoch,
                firstBatch = progress.step - progress.epoch * stepsPerEpoch;
  // A batch that is only copied and converted (no rotation) is filled
  // straight into the step's input by the thread pool: about as fast as
  // copying a prefetched batch there, and no third thread takes the cores
  // from the step's two (whose workers, idle while it ran, fell asleep and
  // had to be woken). With the conversion in vector code, examples/
  // fashion.nn's epoch on 2 threads went from 0.117 to 0.083 s (medians of 5
  // alternating runs). A rotated batch is filled by a thread of its own
  // while the step runs.
  const bool direct = !split && training.fillsLikeACopy();
  std::optional<Prefetcher> prefetcher;
  if (!direct)
    prefetcher.emplace(training, progress.epoch, std::max<int64_t>(lastEpoch - progress.epoch, 0),
                       lastEpoch > progress.epoch ? firstBatch : 0);
  // The step the checkpoint at --save holds (-1: none of this run's).
  int64_t savedStep = options.save == options.resume ? progress.step : -1;
  for (int64_t epoch = progress.epoch; epoch < lastEpoch; ++epoch) {
    EpochReport report;
    report.epoch = epoch + 1;
    ProgressLine line(options.progress && lead,
                      format("epoch %lld/%lld", static_cast<long long>(epoch + 1),
                             static_cast<long long>(epochs)),
                      stepsPerEpoch);
    Clock::time_point start = Clock::now();
    const double communicationBefore = split ? split->communication : 0;
    for (int64_t b = epoch == startEpoch ? firstBatch : 0; b < stepsPerEpoch; ++b) {
      if (int signo = stop ? stop->received() : 0; signo != 0) {
        line.clear();
        return interrupted(session, options, progress, savedStep, signo, b, stepsPerEpoch,
                           error);
      }
      const Batch *batch = nullptr;
      if (direct) {
        training.fill(epoch, b, x, labels, BatchSource::Threads::Pool);
      } else {
        batch = prefetcher->next();
        if (batch == nullptr || batch->epoch != epoch || batch->index != b)
          throw std::logic_error("internal error: the prefetcher is out of step");
      }
      const int64_t n = batch ? batch->count : training.batchExamples(b);
      double loss = 0;
      if (split) {
        loss = split->run(*batch, n, progress, report.train);
        report.lr = dp->update->data(kLrBuffer)[0];
      } else {
        if (batch) {
          std::memcpy(x, batch->images.data(), batch->images.size() * sizeof(float));
          std::memcpy(labels, batch->labels.data(), batch->labels.size() * sizeof(int64_t));
        }
        loss = runStep(step, n, progress);
        report.lr = step.data(kLrBuffer)[0];
        report.train.lossSum += loss * static_cast<double>(n);
        countCorrect(step.data(model.logits), labels, n, model.classes, report.train);
      }
      if (!std::isfinite(loss)) {
        line.clear();
        // the same loss on every process: rank 0 reports it
        if (lead)
          reportDivergence(reportError, loss, epoch + 1, progress.step, b + 1, stepsPerEpoch,
                           report.lr);
        return 1;
      }
      line.update(b + 1, report.train.loss());
    }
    report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    line.clear();
    progress.epoch = epoch + 1;
    if (split) {
      // Every process must hold the same parameters: compare checksums.
      std::vector<int> sums = dp->comm->gather(static_cast<int>(split->checksum()));
      for (size_t k = 1; k < sums.size(); ++k)
        if (sums[k] != sums[0]) {
          if (lead)
            reportError(Culprit::None,
                        format("internal error: after epoch %lld the parameters of process %zu "
                               "differ from process 0's",
                               static_cast<long long>(epoch + 1), k),
                        "");
          return 1;
        }
      if (lead) {
        stateFromHalves(session, *dp);
        const double communication = split->communication - communicationBefore;
        std::cerr << format("epoch %lld on %d process%s: %.2f s, %.1f%% of it summing gradients; "
                            "parameters identical on every process (checksum %08x)\n",
                            static_cast<long long>(epoch + 1), dp->comm->size(),
                            dp->comm->size() == 1 ? "" : "es", report.seconds,
                            100 * communication / report.seconds,
                            static_cast<unsigned>(sums[0]));
      }
    }
    if (!lead)
      continue;
    session.syncPredict();
    if (validation.examples() > 0) {
      report.hasVal = true;
      report.val = evaluateOn(session, validation, false);
    }
    report.test = evaluateOn(session, test, false);
    printEpoch(report, epochs, options.json);
    history.push_back(toRecord(report));
    if (!options.save.empty()) {
      std::string why;
      if (!session.save(options.save, progress, why)) {
        reportError(Culprit::None, "cannot save the checkpoint: " + why, "");
        if (dp) // the other processes are training on
          dp->comm->abort(1);
        return 1;
      }
      savedStep = progress.step;
    }
    if (!options.plot.empty()) {
      std::string why;
      if (!writeCurvesSvg(options.plot, history, model.name + " (" + model.source + ")", why)) {
        reportError(Culprit::None, "cannot write the plot: " + why, "");
        if (dp) // the other processes are training on
          dp->comm->abort(1);
        return 1;
      }
    }
  }
  if (!lead)
    return 0;
  if (!options.save.empty())
    std::cerr << "saved " << options.save << " and " << optimizerStatePath(options.save)
              << " after epoch " << progress.epoch << "\n";
  if (progress.epoch < epochs)
    std::cerr << format("stopped after epoch %lld of %lld; --resume %s continues\n",
                        static_cast<long long>(progress.epoch), static_cast<long long>(epochs),
                        options.save.empty() ? "CHECKPOINT" : options.save.c_str());
  if (int signo = stop ? stop->received() : 0; signo != 0) {
    // It came after the last step, while evaluating or saving: all is done.
    std::cerr << format("interrupted by %s after the last step\n", signalName(signo));
    return 128 + signo;
  }
  return 0;
}

// ------------------------------------------------------------- Stepper ---

struct Stepper::Impl {
  Data data;
  BatchSource training, test; // over `data`, which must not move

  Impl(Data d, const Model &m)
      : data(std::move(d)), training(data.train, data.split.train, m.data, Purpose::Train),
        test(data.test, everyExample(data.test), m.data, Purpose::Evaluate) {}
};

Stepper::Stepper() = default;
Stepper::~Stepper() = default;

std::unique_ptr<Stepper> Stepper::open(const Model &model, const RunOptions &options,
                                       const ErrorFn &error) {
  Data data;
  if (!loadData(model, options, true, data, error))
    return nullptr;
  std::unique_ptr<Stepper> s(new Stepper);
  s->impl_ = std::make_unique<Impl>(std::move(data), model);
  return s;
}

int64_t Stepper::stepsPerEpoch() const { return impl_->training.batches(); }
int64_t Stepper::trainExamples() const { return impl_->training.examples(); }
int64_t Stepper::testExamples() const { return impl_->test.examples(); }

bool Stepper::train(Session &session, int64_t steps, double baseLr, Progress &progress,
                    const std::atomic<bool> *stop, bool progressLine, StepsReport &report,
                    const ErrorFn &error) {
  const Model &model = session.model();
  const int64_t perEpoch = stepsPerEpoch();
  Runner &step = session.trainStep();
  float *x = step.data(model.input);
  int64_t *labels = step.labels(kLabelsBuffer);
  step.data(kStepsPerEpochBuffer)[0] = static_cast<float>(perEpoch);
  step.data(kBaseLrBuffer)[0] = static_cast<float>(baseLr);
  report = {};
  Metrics metrics;
  ProgressLine line(progressLine, "steps", steps);
  Clock::time_point start = Clock::now();
  for (int64_t k = 0; k < steps; ++k) {
    if (stop != nullptr && stop->load(std::memory_order_relaxed))
      break;
    const int64_t epoch = progress.step / perEpoch, b = progress.step % perEpoch;
    const int64_t n = impl_->training.batchExamples(b);
    impl_->training.fill(epoch, b, x, labels);
    double loss = runStep(step, n, progress);
    report.lr = step.data(kLrBuffer)[0];
    if (!std::isfinite(loss)) {
      line.clear();
      session.syncPredict();
      reportDivergence(error, loss, epoch + 1, progress.step, b + 1, perEpoch, report.lr);
      return false;
    }
    progress.epoch = progress.step / perEpoch;
    metrics.lossSum += loss * static_cast<double>(n);
    countCorrect(step.data(model.logits), labels, n, model.classes, metrics);
    ++report.steps;
    line.update(k + 1, metrics.loss());
  }
  line.clear();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report.loss = metrics.loss();
  report.accuracy = metrics.accuracy();
  session.syncPredict();
  return true;
}

std::vector<double> Stepper::classify(Session &session, int64_t index,
                                      std::vector<uint8_t> &pixels, int64_t &rows, int64_t &cols,
                                      int64_t &label) {
  const Model &model = session.model();
  const Dataset &set = impl_->data.test;
  rows = set.rows;
  cols = set.cols;
  const size_t size = static_cast<size_t>(rows * cols);
  pixels.assign(set.images.begin() + static_cast<std::ptrdiff_t>(size * static_cast<size_t>(index)),
                set.images.begin() + static_cast<std::ptrdiff_t>(size * static_cast<size_t>(index + 1)));
  DataOptions one = model.data;
  one.batchSize = 1;
  BatchSource source(set, {index}, one, Purpose::Evaluate);
  Runner &r = session.predict();
  source.fill(0, 0, r.data(model.input), &label);
  r.run(1);
  const float *logits = r.data(model.logits);
  std::vector<double> p(static_cast<size_t>(model.classes));
  double top = logits[0], sum = 0;
  for (int64_t j = 1; j < model.classes; ++j)
    top = std::max(top, double(logits[j]));
  for (size_t j = 0; j < p.size(); ++j)
    sum += p[j] = std::exp(double(logits[j]) - top);
  for (double &v : p)
    v /= sum;
  return p;
}

std::pair<double, double> Stepper::test(Session &session) {
  Metrics m = evaluateOn(session, impl_->test, false);
  return {m.loss(), m.accuracy()};
}

// ---------------------------------------------------------------- --eval --

int evaluate(Session &session, const RunOptions &options, const ErrorFn &error) {
  const Model &model = session.model();
  Data data;
  if (!loadData(model, options, false, data, error))
    return 1;
  Progress progress;
  std::map<std::string, std::string> metadata;
  std::string why;
  if (!session.load(options.weights, false, progress, metadata, why)) {
    error(Culprit::None, "cannot read the weights: " + why, "");
    return 1;
  }
  BatchSource test(data.test, everyExample(data.test), model.data, Purpose::Evaluate);
  Metrics m = evaluateOn(session, test, true);
  const int64_t c = model.classes;
  std::ostream &out = options.json ? std::cerr : std::cout;
  out << format("test set: %s images from %s\nloss %.4f  accuracy %s (%s of %s)\n\n",
                withThousands(m.count).c_str(), options.dataDir.c_str(), m.loss(),
                percent(m.accuracy()).c_str(), withThousands(m.correct).c_str(),
                withThousands(m.count).c_str());
  // The confusion matrix: rows are the true classes, columns the predicted.
  int width = 5;
  for (int64_t v : m.confusion)
    width = std::max(width, static_cast<int>(std::to_string(v).size()) + 1);
  out << "true \\ predicted\n      ";
  for (int64_t j = 0; j < c; ++j)
    out << format("%*lld", width, static_cast<long long>(j));
  out << "\n";
  for (int64_t i = 0; i < c; ++i) {
    out << format("%5lld ", static_cast<long long>(i));
    for (int64_t j = 0; j < c; ++j)
      out << format("%*lld", width,
                    static_cast<long long>(m.confusion[static_cast<size_t>(i * c + j)]));
    out << "\n";
  }
  if (options.json) {
    std::string rows;
    for (int64_t i = 0; i < c; ++i) {
      rows += i ? ", [" : "[";
      for (int64_t j = 0; j < c; ++j)
        rows += (j ? ", " : "") + std::to_string(m.confusion[static_cast<size_t>(i * c + j)]);
      rows += "]";
    }
    std::cout << "{\"test_loss\": " << json(m.loss()) << ", \"test_acc\": " << json(m.accuracy())
              << ", \"images\": " << m.count << ", \"confusion\": [" << rows << "]}" << std::endl;
  }
  return 0;
}

// ------------------------------------------------------------- --predict --

int predict(Session &session, const RunOptions &options, const ErrorFn &error) {
  const Model &model = session.model();
  GrayImage image;
  std::string why;
  if (!readImage(options.image, image, why)) {
    error(Culprit::None, why, "");
    return 1;
  }
  if (!inputFits(model.inputDims, image.height, image.width)) {
    error(Culprit::Input,
          format("%s: the image is %u×%u (%u wide, %u high), but model '%s' takes %s per example",
                 options.image.c_str(), image.height, image.width, image.width, image.height,
                 model.name.c_str(), dimsText(model.inputDims).c_str()),
          "nnc does not resize images: give it one of the model's size");
    return 1;
  }
  Progress progress;
  std::map<std::string, std::string> metadata;
  if (!session.load(options.weights, false, progress, metadata, why)) {
    error(Culprit::None, "cannot read the weights: " + why, "");
    return 1;
  }
  // The same normalization the data pipeline applies.
  const DataOptions &o = model.data;
  Runner &r = session.predict();
  float *x = r.data(model.input);
  for (size_t i = 0; i < image.pixels.size(); ++i)
    x[i] = static_cast<float>((image.pixels[i] - o.normalizeMean) / o.normalizeStd);
  r.run(1);
  const float *logits = r.data(model.logits);
  const int64_t c = model.classes;
  std::vector<double> p(static_cast<size_t>(c));
  double top = logits[0], sum = 0;
  for (int64_t j = 1; j < c; ++j)
    top = std::max(top, double(logits[j]));
  for (int64_t j = 0; j < c; ++j)
    sum += p[static_cast<size_t>(j)] = std::exp(double(logits[j]) - top);
  for (double &v : p)
    v /= sum;
  int64_t best = argmax(logits, c);
  std::ostream &out = options.json ? std::cerr : std::cout;
  out << format("%s (%s, %u×%u): class %lld\n", options.image.c_str(), image.format.c_str(),
                image.width, image.height, static_cast<long long>(best));
  for (int64_t j = 0; j < c; ++j)
    out << format("  %3lld  %.6f%s\n", static_cast<long long>(j), p[static_cast<size_t>(j)],
                  j == best ? "  <" : "");
  if (options.json) {
    std::string probs;
    for (int64_t j = 0; j < c; ++j)
      probs += (j ? ", " : "") + json(p[static_cast<size_t>(j)]);
    std::cout << "{\"image\": " << jsonString(options.image) << ", \"class\": " << best
              << ", \"probabilities\": [" << probs << "]}" << std::endl;
  }
  return 0;
}

} // namespace nnc_rt
