// Session.cpp — compiling a program for running, and describing it to the
// runtime's trainer.
#include "driver/Session.h"

#include "codegen/Runner.h"
#include "driver/Pipeline.h"
#include "loops/Lower.h"

#include <chrono>
#include <sys/resource.h>
#include <stdexcept>

namespace nnc {

namespace {

/// A state value's kind: a parameter, an optimizer's state for a parameter
/// (`fc1.weight.exp_avg`), or anything else that lives across steps (a
/// batchnorm's running statistics).
nnc_rt::StateTensor::Kind classify(const Graph &g, const Value &v, const Program &program) {
  if (v.kind == ValueKind::Param)
    return nnc_rt::StateTensor::Kind::Param;
  for (const std::string &suffix : optimizerStateNames(program.optimizer)) {
    const std::string tail = "." + suffix;
    if (v.name.size() > tail.size() &&
        v.name.compare(v.name.size() - tail.size(), tail.size(), tail) == 0) {
      std::string param = v.name.substr(0, v.name.size() - tail.size());
      for (ValueId p : g.params())
        if (g.value(p).name == param)
          return nnc_rt::StateTensor::Kind::Optimizer;
    }
  }
  return nnc_rt::StateTensor::Kind::Running;
}

/// Processor time used by the process so far (all threads, user and system).
double processorMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval &t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(u.ru_utime) + ms(u.ru_stime);
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

} // namespace

nnc_rt::Model describeModel(const Program &program, const LoweredProgram &lowered) {
  nnc_rt::Model m;
  m.name = program.model.name;
  m.source = program.path;
  m.loss = program.loss.name;
  m.optimizer = program.optimizer.str();
  const Graph &inference = lowered.inference;
  if (inference.outputs.size() != 1)
    throw std::logic_error("internal error: the model has " +
                           std::to_string(inference.outputs.size()) + " outputs");
  for (const Value &v : inference.values)
    if (v.kind == ValueKind::Input) {
      m.input = v.name;
      m.inputDims.assign(v.shape.dims.begin() + 1, v.shape.dims.end());
    }
  const Value &out = inference.value(inference.outputs[0]);
  m.logits = out.name;
  m.classes = out.shape.dims.back();
  const Graph &g = lowered.step.graph;
  if (g.value(lowered.step.logits).name != m.logits)
    throw std::logic_error("internal error: train_step's logits are '" +
                           g.value(lowered.step.logits).name + "', predict's '" + m.logits + "'");
  for (const auto &[from, to] : lowered.step.updates) {
    const Value &v = g.value(from);
    nnc_rt::StateTensor t;
    t.name = v.name;
    t.kind = classify(g, v, program);
    t.checkpointName =
        t.kind == nnc_rt::StateTensor::Kind::Optimizer ? "optimizer." + v.name : v.name;
    t.shape = v.shape.dims;
    t.elements = product(v.shape.dims).value_or(0);
    t.init = v.init.runtime();
    m.state.push_back(std::move(t));
  }
  m.baseLr = program.optimizer.attrs.getFloat("lr");
  m.epochs = program.train.epochs;
  m.seed = program.train.seed;
  m.data = dataOptions(program);
  return m;
}

std::unique_ptr<Session> Session::create(const Program &program, int64_t capacity,
                                         std::string &error, CodeCache *cache, bool halves,
                                         bool *overCap) {
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  Clock::time_point start = Clock::now();
  double cpuStart = processorMs();
  std::unique_ptr<Session> s(new Session());
  std::string why;
  std::optional<LoweredProgram> lowered = lowerProgram(program, capacity, why);
  if (!lowered) {
    error = "cannot compile model '" + program.model.name + "': " + why +
            " is not supported by the code generator yet";
    return nullptr;
  }
  // Data-parallel training runs the step in two halves beside it.
  std::optional<loops::Function> gradFn, updateFn;
  if (halves) {
    StepGraph grad = buildGradStep(program), update = buildUpdateStep(program);
    for (const Graph *g : {&grad.graph, &update.graph})
      if (std::string problem = verifyGraph(*g); !problem.empty())
        throw std::logic_error("internal error: invalid graph " + g->name + ": " + problem);
    loops::LowerOptions o;
    o.training = true;
    o.capacity = capacity;
    o.seed = static_cast<uint64_t>(program.train.seed);
    o.vectorLanes = vectorLanes();
    o.name = "grad_step";
    gradFn = loops::lower(grad.graph, grad.updates, o);
    o.name = "apply_update";
    updateFn = loops::lower(update.graph, update.updates, o);
  }
  // Every buffer is sized now, before any is allocated.
  auto bytesOf = [](const loops::Function &f) {
    return nnc_rt::runnerBytes(bufferSpecs(f), f.arenaElements, f.capacity);
  };
  std::vector<std::pair<std::string, uint64_t>> parts{
      {"the training step's buffers", bytesOf(lowered->trainStep)}};
  if (halves) {
    uint64_t grad = bytesOf(*gradFn), update = bytesOf(*updateFn);
    parts.push_back({"its two halves' (data-parallel)",
                     grad > UINT64_MAX - update ? UINT64_MAX : grad + update});
  }
  parts.push_back({"prediction's", bytesOf(lowered->predict)});
  uint64_t total = 0;
  error = nnc_rt::buffersOverCap(
      program.model.name, capacity,
      nnc_rt::withThousands(program.model.paramCount()) + " parameters; ", parts, total);
  if (!error.empty()) {
    if (overCap)
      *overCap = true;
    return nullptr;
  }
  s->lowered_ = std::move(*lowered);
  Clock::time_point lowered_at = Clock::now();
  s->report_.lowerMs = ms(start, lowered_at);

  CodeCache none;
  CodeCache &c = cache ? *cache : none;
  std::string jitError;
  if (!c.jit) {
    std::unique_ptr<JIT> jit = JIT::create(jitError);
    if (!jit)
      throw std::runtime_error("internal error: cannot start the JIT: " + jitError);
    c.jit = std::move(jit);
  }
  s->jit_ = c.jit;
  // What lowers to the code compiled last time keeps that code; the rest is
  // compiled together (shared out among the cores).
  struct Stage {
    const char *name;
    const loops::Function &function;
    std::optional<CompiledStage> &cached;
  };
  Stage stages[] = {{"train_step", s->lowered_.trainStep, c.trainStep},
                    {"predict", s->lowered_.predict, c.predict}};
  std::vector<const loops::Function *> todo;
  for (Stage &st : stages) {
    if (st.cached && loops::sameCode(st.cached->function, st.function)) {
      s->report_.reused.push_back(st.name);
    } else {
      st.cached.reset(); // its code goes once no session runs it
      todo.push_back(&st.function);
      s->report_.compiled.push_back(st.name);
    }
  }
  if (!todo.empty()) {
    CompiledCode code = c.jit->compileTracked(todo, jitError);
    if (code.functions.size() != todo.size())
      throw std::runtime_error("internal error: " + jitError);
    size_t next = 0;
    for (Stage &st : stages)
      if (!st.cached)
        st.cached = CompiledStage{st.function, code.functions[next++], code.code};
  }
  s->trainCode_ = c.trainStep->code;
  s->predictCode_ = c.predict->code;
  s->train_ = std::make_unique<Runner>(s->lowered_.trainStep, c.trainStep->entry);
  s->predict_ = std::make_unique<Runner>(s->lowered_.predict, c.predict->entry);
  if (halves) {
    CompiledCode code = c.jit->compileTracked({&*gradFn, &*updateFn}, jitError);
    if (code.functions.size() != 2)
      throw std::runtime_error("internal error: " + jitError);
    s->halvesCode_ = code.code;
    s->grad_ = std::make_unique<Runner>(std::move(*gradFn), code.functions[0]);
    s->update_ = std::make_unique<Runner>(std::move(*updateFn), code.functions[1]);
  }
  s->report_.jitMs = ms(lowered_at, Clock::now());
  nnc_rt::Model model = describeModel(program, s->lowered_);
  model.bufferBytes = total; // what the data may use is what the cap leaves
  s->state_ = std::make_unique<nnc_rt::Session>(std::move(model), *s->train_,
                                                *s->predict_);
  s->report_.totalMs = ms(start, Clock::now());
  s->report_.cpuMs = processorMs() - cpuStart;
  return s;
}

} // namespace nnc
