// Session.h — a program compiled for running: the JIT-compiled train_step
// and predict with their memory, the state that lives across steps
// (parameters, optimizer state, running statistics) and its checkpoints.
//
// `--train`, `--eval` and `--predict` all start from a Session; so will the
// REPL.
#pragma once

#include "codegen/JIT.h"
#include "codegen/Runner.h"
#include "driver/Pipeline.h"
#include "frontend/Program.h"

#include "Checkpoint.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nnc {

/// One tensor that lives across steps.
struct StateTensor {
  enum class Kind { Param, Running, Optimizer }; ///< the order checkpoints list them in
  std::string name;           ///< the graph's name: `fc1.weight`, `fc1.weight.exp_avg`
  std::string checkpointName; ///< `fc1.weight`, `optimizer.fc1.weight.exp_avg`
  Kind kind = Kind::Param;
  std::vector<int64_t> shape;
  int64_t elements = 0;
};

/// Where training stands: what a checkpoint records besides the tensors.
struct Progress {
  int64_t epoch = 0; ///< epochs completed
  int64_t step = 0;  ///< training steps completed (the next is step + 1)
};

class Session {
public:
  /// Lowers and compiles `program` for batches up to `capacity` and sets
  /// every parameter to its initial value (from program.train.seed).
  /// Returns null and sets `error` when the program cannot be compiled
  /// (a message for the user); a JIT failure is thrown as an internal error.
  static std::unique_ptr<Session> create(const Program &program, int64_t capacity,
                                         std::string &error);

  const Program &program() const { return program_; }
  const LoweredProgram &lowered() const { return lowered_; }
  Runner &trainStep() { return *train_; }
  Runner &predict() { return *predict_; }
  int64_t capacity() const { return capacity_; }
  /// The model's input and output buffers, and the output's classes.
  const std::string &inputName() const { return input_; }
  const std::string &logitsName() const { return logits_; }
  int64_t classes() const { return classes_; }
  /// Milliseconds spent lowering and JIT-compiling.
  double compileMs() const { return compileMs_; }

  const std::vector<StateTensor> &state() const { return state_; }

  /// Copies the parameters and running statistics into predict's buffers;
  /// call after training steps and before predicting.
  void syncPredict();

  /// Writes every state tensor and `progress` to `path` as safetensors
  /// (atomically). Parameters and running statistics keep PyTorch's names
  /// and layout; optimizer state is under `optimizer.`; each batchnorm
  /// gets PyTorch's `num_batches_tracked`.
  bool save(const std::string &path, const Progress &progress, std::string &error);
  /// The tensors a checkpoint of this session must hold.
  std::vector<nnc_rt::TensorSpec> checkpointSpec(bool withOptimizer) const;
  /// Loads state from `path`: every tensor must match (see checkpointSpec);
  /// `withOptimizer` false reads only the weights and running statistics
  /// (--eval, --predict), and then the optimizer tensors may be absent.
  bool load(const std::string &path, bool withOptimizer, Progress &progress,
            std::map<std::string, std::string> &metadata, std::string &error);

private:
  Session(const Program &program) : program_(program) {}

  Program program_;
  LoweredProgram lowered_;
  std::unique_ptr<JIT> jit_;
  std::unique_ptr<Runner> train_, predict_;
  int64_t capacity_ = 0, classes_ = 0;
  std::string input_, logits_;
  std::vector<StateTensor> state_;
  double compileMs_ = 0;
};

} // namespace nnc
