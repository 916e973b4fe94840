// Pipeline.cpp — graph, training step and lowering, in order.
#include "driver/Pipeline.h"

#include "graph/Build.h"
#include "loops/Lower.h"

#include <stdexcept>

namespace nnc {

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
  out.trainStep = loops::lower(out.step.graph, out.step.updates, train);
  loops::LowerOptions predict;
  predict.capacity = capacity;
  predict.seed = train.seed;
  out.predict = loops::lower(out.inference, {}, predict);
  return out;
}

} // namespace nnc
