// Training.h — training, evaluating and predicting with a compiled model:
// what `nnc FILE --train | --eval | --predict` and an emitted program's
// main both run, so their output is the same.
//
// A Model says what the compiled functions compute (buffer names, the state
// that lives across steps and how it starts, the loss, the settings); a
// Session holds the two compiled functions (train_step and predict) with
// that state. train() loads and checks the data, runs the epochs over
// prefetched batches, evaluates, reports, saves checkpoints and plots.
//
// Human output goes to stderr, --json records to stdout. Every random
// choice (initialization, split, shuffle, augmentation, dropout) is a
// function of (seed, epoch, index or step), so a run stopped after an epoch
// and resumed from its checkpoint ends byte-identical to one that never
// stopped.
//
// Problems are reported through an ErrorFn with the part of the program at
// fault (Culprit), so nnc can point at the .nn line and an emitted program
// can print the message alone.
//
// C++17 and the standard library only: --emit-cpp copies this file.
#pragma once

#include "Checkpoint.h"
#include "Compiled.h"
#include "Data.h"
#include "Idx.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nnc_rt {

/// How a parameter or state tensor starts (PyTorch's defaults).
struct Init {
  enum class Kind { Zeros, Ones, Uniform } kind = Kind::Zeros;
  double bound = 0; ///< Uniform: U(-bound, bound)
};

/// Writes the `n` starting values of tensor `name`: uniform draws are
/// number i of stream "init/<name>" under `seed`.
void initialize(const Init &init, const std::string &name, uint64_t seed, float *out, int64_t n);

/// One tensor that lives across steps.
struct StateTensor {
  enum class Kind { Param, Running, Optimizer }; ///< the order checkpoints list them in
  std::string name;           ///< the buffer's name: `fc1.weight`, `fc1.weight.exp_avg`
  std::string checkpointName; ///< `fc1.weight`, `optimizer.fc1.weight.exp_avg`
  Kind kind = Kind::Param;
  std::vector<int64_t> shape;
  int64_t elements = 0;
  Init init;
};

/// What the compiled functions compute, and the settings to run them with.
struct Model {
  std::string name;      ///< `Net`
  std::string source;    ///< the .nn file it was compiled from
  std::string loss;      ///< "cross_entropy" or "mse"
  std::string optimizer; ///< as written with every attribute, for checkpoints
  std::string input;     ///< the images' buffer
  std::string logits;    ///< the outputs' buffer (train_step and predict)
  std::vector<int64_t> inputDims; ///< per example, without the batch
  int64_t classes = 0;
  std::vector<StateTensor> state;
  double baseLr = 0;     ///< the optimizer's lr
  int64_t epochs = 1, seed = 0;
  DataOptions data;      ///< batch, shuffle, normalization, validation, augmentation
  /// Bytes the compiled functions' buffers take: the data must fit in what
  /// the memory cap leaves (0 when unknown).
  uint64_t bufferBytes = 0;
};

/// Where training stands: what a checkpoint records besides the tensors.
struct Progress {
  int64_t epoch = 0; ///< epochs completed
  int64_t step = 0;  ///< training steps completed (the next is step + 1)
};

/// The part of the program a problem is about.
enum class Culprit { None, DataPath, DataBlock, Input, Output, Optimizer };
/// Reports an error: the message, and a hint (may be empty).
using ErrorFn = std::function<void(Culprit, const std::string &, const std::string &)>;

/// Two compiled functions and the state they share.
class Session {
public:
  /// Sets every state tensor to its initial value. `step` and `predict`
  /// must outlive the session.
  Session(Model model, Runner &step, Runner &predict);

  const Model &model() const { return model_; }
  Runner &trainStep() { return step_; }
  Runner &predict() { return predict_; }

  /// Copies the parameters and running statistics into predict's buffers.
  void syncPredict();
  /// Writes the state and `progress` as two safetensors files, each
  /// atomically: `path` holds the parameters and running statistics under
  /// PyTorch's names and layouts, with PyTorch's `num_batches_tracked` per
  /// batchnorm, so that it is a state_dict `load_state_dict` takes as it is;
  /// optimizerStatePath(path) holds the optimizer's state (`optimizer.` +
  /// parameter + PyTorch's name for the state). Both record the epoch and
  /// step.
  bool save(const std::string &path, const Progress &progress, std::string &error);
  /// Loads the weights and running statistics from `path` and, when
  /// `withOptimizer`, the optimizer state from optimizerStatePath(path),
  /// which must be from the same step; every tensor must match the model.
  bool load(const std::string &path, bool withOptimizer, Progress &progress,
            std::map<std::string, std::string> &metadata, std::string &error);

private:
  Model model_;
  Runner &step_, &predict_;
};

/// The collective operations data-parallel training needs from the
/// processes it runs in (compiler/driver/Distributed.cpp provides them over
/// MPI; the runtime itself knows nothing of MPI). Every method is
/// collective: each process calls it at the same point, or the job hangs.
class Collective {
public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Each process's `ok`, in rank order.
  virtual std::vector<int> gather(int ok) = 0;
  /// Replaces data[0, n) on every process by rank 0's.
  virtual void broadcast(float *data, int64_t n) = 0;
  virtual void broadcast(int64_t *data, int64_t n) = 0;
  /// Replaces data[0, n) on every process by the sum over the processes.
  virtual void sum(float *data, int64_t n) = 0;
  virtual void sum(double *data, int64_t n) = 0;
  /// Ends every process of the job with exit status `code`: for a failure
  /// only this process meets (the others would wait for it for ever).
  [[noreturn]] virtual void abort(int code) = 0;
  /// Called before each step's sums with the step number (a test hook).
  virtual void beforeStep(int64_t step) { (void)step; }
};

/// Data-parallel training: each process takes its share of every batch,
/// runs the gradient half of the step on it, the gradients are summed
/// across the processes, and each process runs the update half, so that
/// every process holds the same parameters after every step.
struct DataParallel {
  Collective *comm = nullptr;
  /// grad_step(params, running, x, labels, step) -> loss, logits, each
  /// parameter's gradient `d:NAME`; batches up to the global batch.
  Runner *grad = nullptr;
  /// apply_update(params, optimizer state, d:NAME…, step) -> lr.
  Runner *update = nullptr;
};

/// Examples [first, first + count) of a batch of `n` are process `rank`'s
/// of `size`: consecutive shares whose sizes differ by at most one, the
/// larger ones first (some are empty when n < size).
void shareOf(int64_t n, int rank, int size, int64_t &first, int64_t &count);

/// The command line's settings for running.
struct RunOptions {
  std::string dataDir;        ///< where the IDX files are
  bool dataFromOption = false; ///< dataDir came from --data, not from the program
  std::optional<double> lr;   ///< --lr
  bool json = false;          ///< --json
  std::string save, resume;   ///< --save, --resume
  int64_t stopAfterEpoch = 0; ///< --stop-after-epoch (0: every epoch)
  std::string plot;           ///< --plot
  std::string weights;        ///< --weights
  std::string image;          ///< --predict
  bool progress = false;      ///< a live progress line on stderr
  /// --train across processes (null: this process trains alone).
  const DataParallel *parallel = nullptr;
};

/// What Stepper::train did.
struct StepsReport {
  int64_t steps = 0;             ///< steps run (fewer than asked when stopped)
  double loss = 0, accuracy = 0; ///< over the batches trained (NaN for none)
  float lr = 0;                  ///< the last step's learning rate
  double seconds = 0;
};

/// Training a little at a time, as the REPL does: the data loaded and
/// checked once; the batches in train()'s order (epoch after epoch, shuffled
/// and augmented alike), continuing from `progress.step`.
class Stepper {
public:
  ~Stepper();
  /// Loads and checks `model`'s data from options.dataDir, as train() does;
  /// null after reporting what is wrong.
  static std::unique_ptr<Stepper> open(const Model &model, const RunOptions &options,
                                       const ErrorFn &error);

  int64_t stepsPerEpoch() const;
  int64_t trainExamples() const;
  int64_t testExamples() const;

  /// Trains `steps` steps with base rate `baseLr` from `progress` (advanced),
  /// stopping early, between steps, once `*stop` is set. False after
  /// reporting a NaN or infinite loss.
  bool train(Session &session, int64_t steps, double baseLr, Progress &progress,
             const std::atomic<bool> *stop, bool progressLine, StepsReport &report,
             const ErrorFn &error);
  /// Loss and accuracy on the test set.
  std::pair<double, double> test(Session &session);
  /// The class probabilities of test image `index` (< testExamples()), with
  /// its pixels, size and label.
  std::vector<double> classify(Session &session, int64_t index, std::vector<uint8_t> &pixels,
                               int64_t &rows, int64_t &cols, int64_t &label);

private:
  Stepper();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// `--train`. Returns the exit status.
int train(Session &session, const RunOptions &options, const ErrorFn &error);
/// `--eval --weights PATH`: loss, accuracy and the confusion matrix on the test set.
int evaluate(Session &session, const RunOptions &options, const ErrorFn &error);
/// `--predict IMAGE --weights PATH`: the class probabilities.
int predict(Session &session, const RunOptions &options, const ErrorFn &error);

/// Reads the weights file of a checkpoint (parameters and running
/// statistics) and checks every tensor against `model`; the error names the
/// first mismatch.
bool readWeights(const std::string &path, const Model &model, Checkpoint &weights,
                 std::string &error);

/// Where a checkpoint saved to `path` keeps its optimizer state: ".optimizer"
/// before the file name's extension ("run/w.safetensors" →
/// "run/w.optimizer.safetensors"), or after a name that has none.
std::string optimizerStatePath(const std::string &path);

/// "1,234,567".
std::string withThousands(int64_t n);

} // namespace nnc_rt
