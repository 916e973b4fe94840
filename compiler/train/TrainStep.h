// TrainStep.h — one training step as one graph: forward, loss, backward,
// the learning rate from the schedule, and the optimizer's update of every
// parameter (PyTorch's exact update rules), plus batchnorm's running
// statistics. Also available as two halves, the gradients and the update,
// for data-parallel training that sums gradients in between.
#pragma once

#include "frontend/Program.h"
#include "graph/Graph.h"

#include <utility>
#include <vector>

namespace nnc {

/// A step graph and what it reads and writes besides its data.
struct StepGraph {
  Graph graph;
  ValueId loss = -1; ///< the batch's loss (gradient half and whole step)
  ValueId lr = -1;   ///< the learning rate this step used (update half and whole step)
  /// The model's output for the batch (whole step and gradient half): the driver counts the
  /// examples it classifies right, as PyTorch scripts do during an epoch.
  ValueId logits = -1;
  /// Scalar inputs: the 1-based step number, the steps in one epoch (to
  /// find the epoch and the warm-up), and the base learning rate (the
  /// optimizer's `lr`, which --lr and the REPL may change without
  /// recompiling).
  ValueId step = -1, stepsPerEpoch = -1, baseLr = -1;
  /// Each value that lives across steps (parameter, optimizer state,
  /// running statistic) and the value it takes after the step.
  std::vector<std::pair<ValueId, ValueId>> updates;
  /// The gradient half: each parameter's gradient, in Graph::params() order.
  std::vector<ValueId> grads;
};

/// The whole step: train_step(state, x, labels, step) -> loss.
StepGraph buildTrainStep(const Program &program);
/// The gradient half: forward, loss, backward and running statistics.
/// Outputs the loss, the logits and every parameter's gradient.
StepGraph buildGradStep(const Program &program);
/// The update half: reads every parameter, its gradient (an input named
/// gradName(parameter), `d:fc1.weight`) and the optimizer state, and updates them.
StepGraph buildUpdateStep(const Program &program);

/// The names of the optimizer state PyTorch keeps per parameter:
/// `momentum_buffer` (sgd with momentum), `exp_avg` and `exp_avg_sq` (adam).
std::vector<std::string> optimizerStateNames(const Applied &optimizer);

} // namespace nnc
