// Pipeline.h — a checked program lowered to its loop-IR functions: the
// training step and prediction. The driver, the benchmark and the tests
// share this one sequence of stages.
#pragma once

#include "frontend/Program.h"
#include "graph/Graph.h"
#include "loops/LoopIR.h"
#include "train/TrainStep.h"

#include <optional>
#include <string>

namespace nnc {

struct LoweredProgram {
  StepGraph step;             ///< the training step's graph
  loops::Function trainStep;  ///< train_step(state, x, labels, step) -> loss, lr
  Graph inference;            ///< the model at evaluation
  loops::Function predict;    ///< predict(params, x) -> outputs
};

/// The vector registers lowering tiles for (loops::LowerOptions::
/// vectorLanes): the host CPU's (hostVectorLanes()) unless set, e.g. by
/// `--vector-lanes`. Results do not depend on it; speed does.
int64_t vectorLanes();
void setVectorLanes(int64_t lanes);

/// Builds and lowers both functions, planned for batches up to `capacity`
/// and tiled for vectorLanes().
/// Returns nullopt, with the reason in `why`, when an op cannot be compiled yet.
std::optional<LoweredProgram> lowerProgram(const Program &program, int64_t capacity,
                                           std::string &why);

} // namespace nnc
