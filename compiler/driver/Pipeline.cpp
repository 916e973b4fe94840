// Pipeline.cpp — graph, training step and lowering, in order.
#include "driver/Pipeline.h"

#include "codegen/JIT.h"
#include "graph/Build.h"
#include "loops/Lower.h"

#include <stdexcept>

namespace nnc {

namespace {
int64_t gVectorLanes = 0; ///< 0: the host's
} // namespace

int64_t vectorLanes() { return gVectorLanes > 0 ? gVectorLanes : hostVectorLanes(); }
void setVectorLanes(int64_t lanes) { gVectorLanes = lanes; }

std::optional<LoweredProgram> lowerProgram(const Program &program, int64_t capacity,
                                           std::string &why) {
  LoweredProgram out;
  out.step = buildTrainStep(program);
  out.inference = buildGraph(program);
  for (const Graph *g : {&out.step.graph, &out.inference})
    if (std::string problem = verifyGraph(*g); !problem.empty())
      throw std::logic_error("internal error: invalid graph " + g->name + ": " + problem);
  if (!loops::canLower(out.step.graph, true, why) || !loops::canLower(out.inference, false, why))
    return std::nullopt;
  loops::LowerOptions train;
  train.name = "train_step";
  train.training = true;
  train.capacity = capacity;
  train.seed = static_cast<uint64_t>(program.train.seed);
  train.vectorLanes = vectorLanes();
  out.trainStep = loops::lower(out.step.graph, out.step.updates, train);
  loops::LowerOptions predict;
  predict.capacity = capacity;
  predict.seed = train.seed;
  predict.vectorLanes = train.vectorLanes;
  out.predict = loops::lower(out.inference, {}, predict);
  return out;
}

} // namespace nnc
