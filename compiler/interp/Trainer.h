// Trainer.h — runs step graphs with the reference interpreter: the oracle
// that compiled training is tested against.
#pragma once

#include "interp/Interpreter.h"
#include "train/TrainStep.h"

#include <map>
#include <string>

namespace nnc {

struct StepResult {
  double loss = 0; ///< NaN for an update-only step
  double lr = 0;
};

/// Runs one step. `state` holds every value that lives across steps
/// (parameters, optimizer state, running statistics) by name, and receives
/// their new values; `batch` holds the step's other inputs (images and
/// labels, or gradients for an update step).
StepResult runStep(const StepGraph &step, std::map<std::string, Tensor> &state,
                   const std::map<std::string, Tensor> &batch, int64_t stepNumber,
                   int64_t stepsPerEpoch, double baseLr, const EvalContext &ctx);

/// A scalar tensor.
Tensor scalar(double v);

} // namespace nnc
