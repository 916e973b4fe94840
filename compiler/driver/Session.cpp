// Session.cpp — compiling a program for running, and its checkpoints.
#include "driver/Session.h"

#include "interp/Interpreter.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace nnc {

namespace {

const char *const kFormat = "nnc-checkpoint-1";

/// A state value's kind: a parameter, an optimizer's state for a parameter
/// (`fc1.weight.exp_avg`), or anything else that lives across steps (a
/// batchnorm's running statistics).
StateTensor::Kind classify(const Graph &g, const Value &v, const Program &program) {
  if (v.kind == ValueKind::Param)
    return StateTensor::Kind::Param;
  for (const std::string &suffix : optimizerStateNames(program.optimizer)) {
    const std::string tail = "." + suffix;
    if (v.name.size() > tail.size() &&
        v.name.compare(v.name.size() - tail.size(), tail.size(), tail) == 0) {
      std::string param = v.name.substr(0, v.name.size() - tail.size());
      for (ValueId p : g.params())
        if (g.value(p).name == param)
          return StateTensor::Kind::Optimizer;
    }
  }
  return StateTensor::Kind::Running;
}

/// `bn.running_mean` → `bn`, for PyTorch's `bn.num_batches_tracked`; "" otherwise.
std::string batchnormOf(const StateTensor &t) {
  const std::string tail = ".running_mean";
  if (t.kind != StateTensor::Kind::Running || t.name.size() <= tail.size() ||
      t.name.compare(t.name.size() - tail.size(), tail.size(), tail) != 0)
    return "";
  return t.name.substr(0, t.name.size() - tail.size());
}

bool parseCount(const std::map<std::string, std::string> &metadata, const char *key,
                int64_t &out) {
  auto it = metadata.find(key);
  if (it == metadata.end() || it->second.empty() || it->second.size() > 18)
    return false;
  int64_t v = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

} // namespace

std::unique_ptr<Session> Session::create(const Program &program, int64_t capacity,
                                         std::string &error) {
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Session> s(new Session(program));
  std::string why;
  std::optional<LoweredProgram> lowered = lowerProgram(program, capacity, why);
  if (!lowered) {
    error = why + " is not supported by the code generator yet";
    return nullptr;
  }
  s->lowered_ = std::move(*lowered);
  s->capacity_ = capacity;
  std::string jitError;
  s->jit_ = JIT::create(jitError);
  if (!s->jit_)
    throw std::runtime_error("internal error: cannot start the JIT: " + jitError);
  std::vector<CompiledFunction> fns =
      s->jit_->compile({&s->lowered_.trainStep, &s->lowered_.predict}, jitError);
  if (fns.size() != 2)
    throw std::runtime_error("internal error: " + jitError);
  s->train_ = std::make_unique<Runner>(s->lowered_.trainStep, fns[0]);
  s->predict_ = std::make_unique<Runner>(s->lowered_.predict, fns[1]);

  const Graph &g = s->lowered_.step.graph;
  const Graph &inference = s->lowered_.inference;
  if (inference.outputs.size() != 1)
    throw std::logic_error("internal error: the model has " +
                           std::to_string(inference.outputs.size()) + " outputs");
  for (const Value &v : inference.values)
    if (v.kind == ValueKind::Input)
      s->input_ = v.name;
  const Value &out = inference.value(inference.outputs[0]);
  s->logits_ = out.name;
  s->classes_ = out.shape.dims.back();
  if (g.value(s->lowered_.step.logits).name != s->logits_)
    throw std::logic_error("internal error: train_step's logits are '" +
                           g.value(s->lowered_.step.logits).name + "', predict's '" +
                           s->logits_ + "'");

  std::map<std::string, Tensor> initial = initialParams(g, static_cast<uint64_t>(program.train.seed));
  for (const auto &[from, to] : s->lowered_.step.updates) {
    const Value &v = g.value(from);
    StateTensor t;
    t.name = v.name;
    t.kind = classify(g, v, program);
    t.checkpointName = t.kind == StateTensor::Kind::Optimizer ? "optimizer." + v.name : v.name;
    t.shape = v.shape.dims;
    t.elements = s->train_->elements(v.name, 1);
    float *p = s->train_->data(v.name);
    const Tensor &init = initial.at(v.name);
    if (p == nullptr || static_cast<int64_t>(init.size()) != t.elements)
      throw std::logic_error("internal error: no buffer of the right size for " + v.name);
    for (size_t i = 0; i < init.size(); ++i)
      p[i] = static_cast<float>(init[i]);
    s->state_.push_back(std::move(t));
  }
  // Checkpoints list the weights first, as PyTorch's state_dict does.
  std::stable_sort(s->state_.begin(), s->state_.end(),
                   [](const StateTensor &a, const StateTensor &b) { return a.kind < b.kind; });
  s->syncPredict();
  s->compileMs_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return s;
}

void Session::syncPredict() {
  for (const StateTensor &t : state_) {
    if (t.kind == StateTensor::Kind::Optimizer)
      continue;
    float *to = predict_->data(t.name);
    if (to == nullptr)
      continue; // a value training needs and prediction does not
    std::memcpy(to, train_->data(t.name), static_cast<size_t>(t.elements) * sizeof(float));
  }
}

std::vector<nnc_rt::TensorSpec> Session::checkpointSpec(bool withOptimizer) const {
  std::vector<nnc_rt::TensorSpec> spec;
  for (const StateTensor &t : state_) {
    if (t.kind == StateTensor::Kind::Optimizer && !withOptimizer)
      continue;
    spec.push_back({t.checkpointName, nnc_rt::DType::F32, t.shape});
    if (std::string bn = batchnormOf(t); !bn.empty())
      spec.push_back({bn + ".num_batches_tracked", nnc_rt::DType::I64, {}});
  }
  return spec;
}

bool Session::save(const std::string &path, const Progress &progress, std::string &error) {
  std::vector<nnc_rt::TensorRef> tensors;
  const int64_t tracked = progress.step;
  for (const StateTensor &t : state_) {
    tensors.push_back({t.checkpointName, nnc_rt::DType::F32, t.shape, train_->data(t.name)});
    if (std::string bn = batchnormOf(t); !bn.empty())
      tensors.push_back({bn + ".num_batches_tracked", nnc_rt::DType::I64, {}, &tracked});
  }
  std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"model", program_.model.name},
      {"optimizer", program_.optimizer.str()},
      {"epoch", std::to_string(progress.epoch)},
      {"step", std::to_string(progress.step)},
      {"seed", std::to_string(program_.train.seed)},
      {"batch", std::to_string(program_.data.batch)},
  };
  return nnc_rt::saveSafetensors(path, tensors, metadata, error);
}

bool Session::load(const std::string &path, bool withOptimizer, Progress &progress,
                   std::map<std::string, std::string> &metadata, std::string &error) {
  nnc_rt::Checkpoint ckpt;
  if (!nnc_rt::loadSafetensors(path, ckpt, error))
    return false;
  std::vector<nnc_rt::TensorSpec> spec = checkpointSpec(withOptimizer);
  bool ok = true;
  if (!withOptimizer) {
    // Weights only: optimizer tensors in the file are allowed and ignored.
    nnc_rt::Checkpoint weights = ckpt;
    weights.tensors.clear();
    for (const nnc_rt::CheckpointTensor &t : ckpt.tensors)
      if (t.name.rfind("optimizer.", 0) != 0)
        weights.tensors.push_back(t);
    ok = nnc_rt::checkpointMatches(weights, spec, error);
  } else {
    ok = nnc_rt::checkpointMatches(ckpt, spec, error);
  }
  metadata = ckpt.metadata;
  progress = {};
  auto model = metadata.find("model");
  if (!ok && model != metadata.end() && model->second != program_.model.name)
    error += " (it was saved from model '" + model->second + "', this is '" +
             program_.model.name + "')";
  if (!ok)
    return false;
  if (withOptimizer && (!parseCount(metadata, "epoch", progress.epoch) ||
                        !parseCount(metadata, "step", progress.step))) {
    error = path + ": not a checkpoint nnc wrote for training: its metadata has no epoch and "
                   "step to resume from";
    return false;
  }
  for (const StateTensor &t : state_) {
    if (t.kind == StateTensor::Kind::Optimizer && !withOptimizer)
      continue;
    const nnc_rt::CheckpointTensor *c = ckpt.find(t.checkpointName);
    std::memcpy(train_->data(t.name), c->data.data(), c->data.size());
  }
  syncPredict();
  return true;
}

} // namespace nnc
