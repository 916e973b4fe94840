// Program.h — a checked .nn program: the model as a graph of layers with
// every shape known, and every setting resolved with its defaults.
//
// Sema produces it; `--check` prints it; the graph builder lowers it.
#pragma once

#include "ops/OpTable.h"
#include "support/Source.h"
#include "train/Settings.h"

#include <optional>
#include <string>
#include <vector>

namespace nnc {

/// A tensor flowing through the model (before lowering to the graph IR).
struct ModelValue {
  std::string name;  ///< the user's name (`h`), or the producing layer's
  Shape shape;
  int producer = -1; ///< index into Model::layers; -1 for a model input
  SourceLoc loc;
};

/// A trainable tensor: `dense_1.weight`.
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t count = 0;
  bool trainable = true; ///< false for state such as batchnorm's running mean
  Initializer init;
};

/// One op applied in the model, with a stable name.
struct Layer {
  std::string name;  ///< the user's label or an automatic `dense_1`
  const OpDef *op = nullptr;
  Attrs attrs;       ///< every attribute, defaults filled in
  std::vector<int> inputs;
  int output = -1;
  std::vector<ParamInfo> params;
  SourceLoc loc;
};

/// The most numbers a batch's tensor may hold: 2^40, as every size.
constexpr int64_t kMaxBatchElements = int64_t(1) << 40;

struct Model {
  std::string name;
  SourceLoc loc;
  std::vector<ModelValue> values;
  std::vector<int> inputs;
  std::vector<Layer> layers; ///< in evaluation order
  int output = -1;

  /// Trainable parameters, as PyTorch's sum(p.numel() for p in parameters()).
  int64_t paramCount() const;
  /// Elements of non-trainable state (running statistics).
  int64_t stateCount() const;
  /// The most numbers any value holds per example.
  int64_t widestValue() const;
  /// The largest batch for which no tensor exceeds kMaxBatchElements.
  int64_t maxBatch() const;
};

/// An op or setting applied with resolved attributes: `adam(lr=0.001, …)`.
struct Applied {
  std::string name;
  Attrs attrs;
  SourceLoc loc;
  std::string str() const {
    return attrs.entries().empty() ? name : name + "(" + attrs.str() + ")";
  }
};

struct Augment {
  std::optional<Applied> crop, shift, rotate, flip;
};

struct DataSpec {
  bool declared = false;
  std::string label;
  std::optional<std::string> path; ///< as written (relative to the .nn file)
  SourceLoc pathLoc;
  int64_t batch = 64;
  bool shuffle = false;
  std::optional<double> mean, std; ///< normalize
  double validation = 0;
  Augment augment;
  SourceLoc loc;
};

struct TrainSpec {
  int64_t epochs = 1;
  int64_t seed = 0;
};

struct Program {
  std::string path; ///< the .nn file
  Model model;
  Applied loss;
  Applied optimizer;
  Applied schedule;
  DataSpec data;
  TrainSpec train;
};

} // namespace nnc
