// Train.cpp — `--train`, `--eval` and `--predict`: a compiled Session fed by
// the runtime's data pipeline, with the per-epoch report, checkpoints and
// pictures.
//
// Human output goes to stderr; --json writes JSON Lines to stdout. Every
// random choice (initialization, split, shuffle, augmentation, dropout) is
// a function of (seed, epoch, index or step), so a run stopped after an
// epoch and resumed from its checkpoint ends byte-identical to one that
// never stopped.
#include "driver/Train.h"

#include "driver/Session.h"
#include "support/Text.h"

#include "Data.h"
#include "Idx.h"
#include "Image.h"
#include "Plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>

namespace nnc {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---------------------------------------------------------------- data ----

/// The data a command runs on, checked against the model.
struct Data {
  std::string dir;
  nnc_rt::Dataset train, test;
  nnc_rt::DataOptions options;
  nnc_rt::Split split;
};

/// Where the data is: --data as given, else the data block's path
/// relative to the .nn file's directory.
std::string dataDirectory(const Program &program, const RunOptions &options) {
  if (!options.dataDir.empty())
    return options.dataDir;
  const std::string &path = *program.data.path;
  if (!path.empty() && path[0] == '/')
    return path;
  size_t slash = program.path.rfind('/');
  return slash == std::string::npos ? path : program.path.substr(0, slash + 1) + path;
}

nnc_rt::DataOptions dataOptions(const Program &program) {
  const DataSpec &d = program.data;
  nnc_rt::DataOptions o;
  o.batchSize = d.batch;
  o.shuffle = d.shuffle;
  if (d.mean && d.std) {
    o.normalizeMean = *d.mean;
    o.normalizeStd = *d.std;
  }
  o.validationFraction = d.validation;
  o.seed = static_cast<uint64_t>(program.train.seed);
  const Augment &a = d.augment;
  if (a.crop) {
    o.augment.cropSize = a.crop->attrs.getInt("size");
    o.augment.cropPadding = a.crop->attrs.getInt("padding");
  }
  if (a.shift)
    o.augment.shiftPixels = a.shift->attrs.getInt("pixels");
  if (a.rotate)
    o.augment.rotateDegrees = a.rotate->attrs.getFloat("degrees");
  if (a.flip)
    o.augment.flipProbability = a.flip->attrs.getFloat("p");
  return o;
}

std::string dimsText(const std::vector<int64_t> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

/// The model's input per example, without the batch dimension.
std::vector<int64_t> inputDims(const Program &program) {
  const ModelValue &x = program.model.values[static_cast<size_t>(program.model.inputs[0])];
  return std::vector<int64_t>(x.shape.dims.begin() + 1, x.shape.dims.end());
}

/// Whether rows × cols images are what the model takes: [1, rows, cols],
/// [rows, cols] or [rows · cols].
bool inputFits(const std::vector<int64_t> &dims, int64_t rows, int64_t cols) {
  return dims == std::vector<int64_t>{1, rows, cols} || dims == std::vector<int64_t>{rows, cols} ||
         dims == std::vector<int64_t>{rows * cols};
}

/// Reports data whose images or labels the model cannot take, at the .nn
/// line that declares what it takes.
/// The file loadMnist read: DIR/NAME, or DIR/NAME.gz when only that exists.
std::string idxFile(const std::string &dir, const std::string &name) {
  std::string raw = dir + "/" + name;
  return std::filesystem::exists(raw) || !std::filesystem::exists(raw + ".gz") ? raw
                                                                                : raw + ".gz";
}

bool checkAgainstModel(const Program &program, const nnc_rt::Dataset &set, const std::string &dir,
                       bool train, int64_t rows, int64_t cols, int64_t classes, bool cropped,
                       Diag &diag) {
  const std::string prefix = train ? "train" : "t10k";
  const Model &m = program.model;
  const ModelValue &x = m.values[static_cast<size_t>(m.inputs[0])];
  std::vector<int64_t> dims = inputDims(program);
  if (!inputFits(dims, rows, cols)) {
    diag.error(x.loc,
               "model '" + m.name + "' takes " + dimsText(dims) + " per example, but " +
                   idxFile(dir, prefix + "-images-idx3-ubyte") +
                   " holds " + std::to_string(set.rows) + "×" + std::to_string(set.cols) +
                   " images" +
                   (cropped ? " (" + std::to_string(rows) + "×" + std::to_string(cols) +
                                  " after the crop)"
                            : ""),
               "declare the input as [1, " + std::to_string(rows) + ", " + std::to_string(cols) +
                   "] or point the data at images of the model's size");
    return false;
  }
  for (int64_t i = 0; i < set.count; ++i) {
    if (set.labels[static_cast<size_t>(i)] < classes)
      continue;
    const ModelValue &out = m.values[static_cast<size_t>(m.output)];
    diag.error(out.loc,
               idxFile(dir, prefix + "-labels-idx1-ubyte") + ": label " + std::to_string(set.labels[static_cast<size_t>(i)]) +
                   " of example " + withThousands(i) + " is not a class of model '" + m.name +
                   "', whose output has " + std::to_string(classes) + " classes (0 to " +
                   std::to_string(classes - 1) + ")",
               "make the last layer as wide as the number of classes in the data");
    return false;
  }
  return true;
}

/// Loads and checks the data. `needTrain` false loads the test split only.
bool loadData(const Program &program, const RunOptions &options, int64_t classes, bool needTrain,
              Data &data, Diag &diag) {
  if (options.dataDir.empty() && !program.data.path) {
    SourceLoc where = program.data.declared ? program.data.loc : program.model.loc;
    diag.error(where, "there is no data to run on: the program names no data directory",
               "add `path \"DIR\"` to a data block, or pass --data DIR");
    return false;
  }
  data.dir = std::filesystem::path(dataDirectory(program, options)).lexically_normal().string();
  auto fail = [&](const std::string &error) {
    std::string hint = "scripts/get-mnist.sh DIR puts MNIST in DIR; --data DIR reads another "
                       "directory";
    if (options.dataDir.empty())
      diag.error(program.data.pathLoc, "cannot read the data: " + error, hint);
    else
      diag.errorNoLoc("cannot read the data given by --data: " + error, hint);
    return false;
  };
  std::string error;
  if (needTrain && !nnc_rt::loadMnist(data.dir, true, data.train, error))
    return fail(error);
  if (!nnc_rt::loadMnist(data.dir, false, data.test, error))
    return fail(error);
  data.options = dataOptions(program);
  for (const nnc_rt::Dataset *set : {&data.train, &data.test}) {
    if (set == &data.train && !needTrain)
      continue;
    std::string problem = nnc_rt::checkDataOptions(data.options, *set);
    if (!problem.empty()) {
      diag.error(program.data.loc, problem + " (" + data.dir + ")");
      return false;
    }
    nnc_rt::ImageSize size = nnc_rt::outputSize(data.options, set->rows, set->cols);
    if (!checkAgainstModel(program, *set, data.dir, set == &data.train, size.rows, size.cols,
                           classes,
                           data.options.augment.cropSize > 0, diag))
      return false;
  }
  if (needTrain)
    data.split = nnc_rt::splitValidation(data.train.count, data.options.validationFraction,
                                         data.options.seed);
  return true;
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

/// Runs predict over every batch of `source` (epoch 0: evaluation sources
/// do not shuffle or augment).
Metrics evaluate(Session &s, const nnc_rt::BatchSource &source, bool confusion) {
  Metrics m;
  if (confusion)
    m.confusion.assign(static_cast<size_t>(s.classes() * s.classes()), 0);
  Runner &r = s.predict();
  float *x = r.data(s.inputName());
  std::vector<int64_t> labels(static_cast<size_t>(source.batchSize()));
  for (int64_t b = 0; b < source.batches(); ++b) {
    int64_t n = source.batchExamples(b);
    source.fill(0, b, x, labels.data());
    r.run(n);
    const float *logits = r.data(s.logitsName());
    m.lossSum += lossSum(s.program().loss.name, logits, labels.data(), n, s.classes());
    countCorrect(logits, labels.data(), n, s.classes(), m);
  }
  return m;
}

// ------------------------------------------------------------ reporting ---

std::string json(double v) {
  return std::isfinite(v) ? fmt::format("{}", v) : "null";
}

/// `s` as a JSON string literal.
std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      out += {'\\', static_cast<char>(c)};
    else if (c < 0x20)
      out += fmt::format("\\u{:04x}", c);
    else
      out += static_cast<char>(c);
  }
  return out + "\"";
}

std::string percent(double v) { return fmt::format("{:.2f}%", 100 * v); }

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
  std::string line = fmt::format("epoch {:>{}}/{}  train loss {:.4f} acc {}", r.epoch,
                                 std::to_string(epochs).size(), epochs, r.train.loss(),
                                 percent(r.train.accuracy()));
  if (r.hasVal)
    line += fmt::format("  val loss {:.4f} acc {}", r.val.loss(), percent(r.val.accuracy()));
  line += fmt::format("  test loss {:.4f} acc {}  lr {:.3g}  {:.2f} s  {} img/s", r.test.loss(),
                      percent(r.test.accuracy()), r.lr, r.seconds,
                      withThousands(static_cast<int64_t>(imagesPerS)));
  std::cerr << line << std::endl;
  if (jsonLines) {
    std::cout << fmt::format(
                     "{{\"epoch\": {}, \"train_loss\": {}, \"train_acc\": {}, \"val_loss\": {}, "
                     "\"val_acc\": {}, \"test_loss\": {}, \"test_acc\": {}, \"lr\": {}, "
                     "\"seconds\": {}, \"images_per_s\": {}}}",
                     r.epoch, json(r.train.loss()), json(r.train.accuracy()),
                     r.hasVal ? json(r.val.loss()) : "null",
                     r.hasVal ? json(r.val.accuracy()) : "null", json(r.test.loss()),
                     json(r.test.accuracy()), fmt::format("{}", r.lr), json(r.seconds), json(imagesPerS))
              << std::endl;
  }
}

/// The live line on a terminal: batch n/N, running loss, time left.
class ProgressLine {
public:
  ProgressLine(bool enabled, int64_t epoch, int64_t epochs, int64_t batches)
      : enabled_(enabled), epoch_(epoch), epochs_(epochs), batches_(batches),
        start_(Clock::now()), last_(start_) {}
  ~ProgressLine() { clear(); }

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
    std::cerr << fmt::format("\r\033[Kepoch {}/{} [{}] {}/{}  loss {:.4f}  ETA {:.0f} s", epoch_,
                             epochs_, bar, done, batches_, runningLoss, left)
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
  int64_t epoch_, epochs_, batches_;
  Clock::time_point start_, last_;
  bool shown_ = false;
};

nnc_rt::EpochRecord toRecord(const EpochReport &r) {
  nnc_rt::EpochRecord rec;
  rec.epoch = r.epoch;
  rec.train = {r.train.loss(), r.train.accuracy()};
  if (r.hasVal)
    rec.val = {r.val.loss(), r.val.accuracy()};
  rec.test = {r.test.loss(), r.test.accuracy()};
  return rec;
}

/// The compiled session, or an error for the user (nullptr).
std::unique_ptr<Session> compile(const Program &program, int64_t capacity, Diag &diag) {
  std::string error;
  std::unique_ptr<Session> s = Session::create(program, capacity, error);
  if (!s)
    diag.error(program.model.loc, "cannot compile model '" + program.model.name + "': " + error);
  return s;
}

/// The model's number of classes, from its output shape [N, C].
int64_t classesOf(const Program &program) {
  const ModelValue &out = program.model.values[static_cast<size_t>(program.model.output)];
  return out.shape.dims.back();
}

/// Checks a resumed checkpoint's settings against this run's.
bool sameRun(const std::map<std::string, std::string> &metadata, const Program &program,
             const std::string &path, Diag &diag) {
  for (auto [key, mine] : {std::pair<const char *, int64_t>{"seed", program.train.seed},
                          {"batch", program.data.batch}}) {
    auto it = metadata.find(key);
    if (it != metadata.end() && it->second == std::to_string(mine))
      continue;
    std::string theirs = it == metadata.end() ? "none recorded" : it->second;
    diag.errorNoLoc(path + ": the checkpoint was trained with " + key + " " + theirs +
                        ", but this run uses " + key + " " + std::to_string(mine),
                    "resume with the settings the checkpoint was made with (--" +
                        std::string(key) + " " + theirs + ")");
    return false;
  }
  return true;
}

} // namespace

// --------------------------------------------------------------- --train --

int trainCommand(const Program &program, const RunOptions &options, Diag &diag) {
  const int64_t classes = classesOf(program);
  Data data;
  if (!loadData(program, options, classes, true, data, diag))
    return 1;
  nnc_rt::BatchSource training(data.train, data.split.train, data.options,
                               nnc_rt::Purpose::Train);
  nnc_rt::BatchSource validation(data.train, data.split.validation, data.options,
                                 nnc_rt::Purpose::Evaluate);
  std::vector<int64_t> all(static_cast<size_t>(data.test.count));
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = static_cast<int64_t>(i);
  nnc_rt::BatchSource test(data.test, all, data.options, nnc_rt::Purpose::Evaluate);

  const int64_t epochs = program.train.epochs, stepsPerEpoch = training.batches();
  // The step number reaches the compiled step as a float32, exact to 2^24.
  if (epochs > (int64_t(1) << 24) / stepsPerEpoch) {
    diag.errorNoLoc(fmt::format("{} epochs of {} steps is more than the 16,777,216 steps nnc "
                                "can count",
                                epochs, withThousands(stepsPerEpoch)),
                    "train for fewer epochs or with larger batches");
    return 1;
  }

  std::unique_ptr<Session> session = compile(program, program.data.batch, diag);
  if (!session)
    return 1;
  Progress progress;
  if (!options.resume.empty()) {
    std::map<std::string, std::string> metadata;
    std::string error;
    if (!session->load(options.resume, true, progress, metadata, error)) {
      diag.errorNoLoc("cannot resume: " + error);
      return 1;
    }
    if (!sameRun(metadata, program, options.resume, diag))
      return 1;
    if (progress.step != progress.epoch * stepsPerEpoch) {
      diag.errorNoLoc(fmt::format("{}: the checkpoint is at step {} of epoch {}, but epochs "
                                  "here have {} steps",
                                  options.resume, progress.step, progress.epoch, stepsPerEpoch),
                      "resume with the data the checkpoint was trained on");
      return 1;
    }
    std::cerr << fmt::format("resuming from {} after epoch {} (step {})\n", options.resume,
                             progress.epoch, withThousands(progress.step));
  }
  if (program.data.validation > 0 && validation.examples() == 0)
    std::cerr << fmt::format("warning: validation {} of {} images holds out none; no "
                             "validation set is reported\n",
                             program.data.validation, withThousands(data.train.count));
  if (progress.epoch >= epochs) {
    std::cerr << fmt::format("{} has finished all {} epochs; there is nothing left to train\n",
                             options.resume, epochs);
    return 0;
  }
  std::cerr << fmt::format("training {} on {} images ({} for validation), testing on {}; "
                           "{} steps of {} per epoch; compiled in {:.0f} ms\n",
                           program.model.name, withThousands(training.examples()),
                           withThousands(validation.examples()), withThousands(test.examples()),
                           withThousands(stepsPerEpoch), program.data.batch,
                           session->compileMs());

  Runner &step = session->trainStep();
  float *x = step.data(session->inputName());
  int64_t *labels = step.labels(kLabelsName);
  float *stepNumber = step.data(kStepName);
  step.data(kStepsPerEpochName)[0] = static_cast<float>(stepsPerEpoch);
  step.data(kBaseLrName)[0] =
      static_cast<float>(options.lr ? *options.lr : program.optimizer.attrs.getFloat("lr"));
  const std::string lossName = program.loss.name;

  std::vector<nnc_rt::EpochRecord> history;
  const int64_t lastEpoch =
      options.stopAfterEpoch > 0 ? std::min(epochs, options.stopAfterEpoch) : epochs;
  nnc_rt::Prefetcher prefetcher(training, progress.epoch,
                                std::max<int64_t>(lastEpoch - progress.epoch, 0));
  for (int64_t epoch = progress.epoch; epoch < lastEpoch; ++epoch) {
    EpochReport report;
    report.epoch = epoch + 1;
    ProgressLine line(options.progress, epoch + 1, epochs, stepsPerEpoch);
    Clock::time_point start = Clock::now();
    for (int64_t b = 0; b < stepsPerEpoch; ++b) {
      const nnc_rt::Batch *batch = prefetcher.next();
      if (batch == nullptr || batch->epoch != epoch || batch->index != b)
        throw std::logic_error("internal error: the prefetcher is out of step");
      const int64_t n = batch->count;
      std::memcpy(x, batch->images.data(), batch->images.size() * sizeof(float));
      std::memcpy(labels, batch->labels.data(), batch->labels.size() * sizeof(int64_t));
      stepNumber[0] = static_cast<float>(progress.step + 1);
      step.run(n);
      ++progress.step;
      double loss = step.data(kLossName)[0];
      report.lr = step.data(kLrName)[0];
      if (!std::isfinite(loss)) {
        line.clear();
        diag.error(program.optimizer.loc,
                   fmt::format("the loss became {} in epoch {}, step {} (batch {} of {}), at "
                               "learning rate {:.3g}",
                               std::isnan(loss) ? "NaN" : "infinite", epoch + 1,
                               withThousands(progress.step), b + 1, stepsPerEpoch, report.lr),
                   "training diverged: try a smaller learning rate (--lr), normalized inputs "
                   "(normalize(mean, std) in the data block), or a warm-up schedule");
        return 1;
      }
      report.train.lossSum += loss * static_cast<double>(n);
      countCorrect(step.data(session->logitsName()), batch->labels.data(), n, classes,
                   report.train);
      line.update(b + 1, report.train.loss());
    }
    report.seconds = secondsSince(start);
    line.clear();
    session->syncPredict();
    if (validation.examples() > 0) {
      report.hasVal = true;
      report.val = evaluate(*session, validation, false);
    }
    report.test = evaluate(*session, test, false);
    printEpoch(report, epochs, options.json);
    history.push_back(toRecord(report));
    progress.epoch = epoch + 1;
    if (!options.save.empty()) {
      std::string error;
      if (!session->save(options.save, progress, error)) {
        diag.errorNoLoc("cannot save the checkpoint: " + error);
        return 1;
      }
    }
    if (!options.plot.empty()) {
      std::string error;
      if (!nnc_rt::writeCurvesSvg(options.plot, history, program.model.name + " (" +
                                                             program.path + ")",
                                  error)) {
        diag.errorNoLoc("cannot write the plot: " + error);
        return 1;
      }
    }
  }
  if (!options.save.empty())
    std::cerr << "saved " << options.save << " after epoch " << progress.epoch << "\n";
  if (progress.epoch < epochs)
    std::cerr << fmt::format("stopped after epoch {} of {}; --resume {} continues\n",
                             progress.epoch, epochs,
                             options.save.empty() ? "CHECKPOINT" : options.save);
  return 0;
}

// ---------------------------------------------------------------- --eval --

int evalCommand(const Program &program, const RunOptions &options, Diag &diag) {
  Data data;
  if (!loadData(program, options, classesOf(program), false, data, diag))
    return 1;
  std::unique_ptr<Session> session = compile(program, program.data.batch, diag);
  if (!session)
    return 1;
  Progress progress;
  std::map<std::string, std::string> metadata;
  std::string error;
  if (!session->load(options.weights, false, progress, metadata, error)) {
    diag.errorNoLoc("cannot read the weights: " + error);
    return 1;
  }
  std::vector<int64_t> all(static_cast<size_t>(data.test.count));
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = static_cast<int64_t>(i);
  nnc_rt::BatchSource test(data.test, all, data.options, nnc_rt::Purpose::Evaluate);
  Metrics m = evaluate(*session, test, true);
  const int64_t c = session->classes();
  std::ostream &out = options.json ? std::cerr : std::cout;
  out << fmt::format("test set: {} images from {}\nloss {:.4f}  accuracy {} ({} of {})\n\n",
                     withThousands(m.count), data.dir, m.loss(), percent(m.accuracy()),
                     withThousands(m.correct), withThousands(m.count));
  // The confusion matrix: rows are the true classes, columns the predicted.
  int width = 5;
  for (int64_t v : m.confusion)
    width = std::max(width, static_cast<int>(std::to_string(v).size()) + 1);
  out << "true \\ predicted\n      ";
  for (int64_t j = 0; j < c; ++j)
    out << fmt::format("{:>{}}", j, width);
  out << "\n";
  for (int64_t i = 0; i < c; ++i) {
    out << fmt::format("{:>5} ", i);
    for (int64_t j = 0; j < c; ++j)
      out << fmt::format("{:>{}}", m.confusion[static_cast<size_t>(i * c + j)], width);
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
    std::cout << fmt::format("{{\"test_loss\": {}, \"test_acc\": {}, \"images\": {}, "
                             "\"confusion\": [{}]}}",
                             json(m.loss()), json(m.accuracy()), m.count, rows)
              << std::endl;
  }
  return 0;
}

// ------------------------------------------------------------- --predict --

int predictCommand(const Program &program, const RunOptions &options, Diag &diag) {
  nnc_rt::GrayImage image;
  std::string error;
  if (!nnc_rt::readImage(options.image, image, error)) {
    diag.errorNoLoc(error);
    return 1;
  }
  const Model &m = program.model;
  std::vector<int64_t> dims = inputDims(program);
  if (!inputFits(dims, image.height, image.width)) {
    diag.error(m.values[static_cast<size_t>(m.inputs[0])].loc,
               fmt::format("{}: the image is {}×{} ({} wide, {} high), but model '{}' takes {} "
                           "per example",
                           options.image, image.height, image.width, image.width, image.height,
                           m.name, dimsText(dims)),
               "nnc does not resize images: give it one of the model's size");
    return 1;
  }
  std::unique_ptr<Session> session = compile(program, 1, diag);
  if (!session)
    return 1;
  Progress progress;
  std::map<std::string, std::string> metadata;
  if (!session->load(options.weights, false, progress, metadata, error)) {
    diag.errorNoLoc("cannot read the weights: " + error);
    return 1;
  }
  // The same normalization the data pipeline applies.
  nnc_rt::DataOptions o = dataOptions(program);
  Runner &r = session->predict();
  float *x = r.data(session->inputName());
  for (size_t i = 0; i < image.pixels.size(); ++i)
    x[i] = static_cast<float>((image.pixels[i] - o.normalizeMean) / o.normalizeStd);
  r.run(1);
  const float *logits = r.data(session->logitsName());
  const int64_t c = session->classes();
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
  out << fmt::format("{} ({}, {}×{}): class {}\n", options.image, image.format, image.width,
                     image.height, best);
  for (int64_t j = 0; j < c; ++j)
    out << fmt::format("  {:>3}  {:.6f}{}\n", j, p[static_cast<size_t>(j)],
                       j == best ? "  <" : "");
  if (options.json) {
    std::string probs;
    for (int64_t j = 0; j < c; ++j)
      probs += (j ? ", " : "") + fmt::format("{}", p[static_cast<size_t>(j)]);
    std::cout << fmt::format("{{\"image\": {}, \"class\": {}, \"probabilities\": [{}]}}",
                             jsonString(options.image), best, probs)
              << std::endl;
  }
  return 0;
}

} // namespace nnc
