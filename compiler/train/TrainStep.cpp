// TrainStep.cpp — the learning rate, the optimizers and the running
// statistics, written as graph nodes (so that they are interpreted, checked
// and compiled like the rest of the step).
#include "train/TrainStep.h"

#include "autodiff/Autodiff.h"
#include "graph/Build.h"

#include <cmath>
#include <stdexcept>

namespace nnc {
namespace {

/// Appends scalar and elementwise arithmetic to a graph. Each call appends a
/// node: never make two of them arguments of one call (C++ leaves their order
/// to the compiler, and GCC and clang differ), or the graph would depend on
/// what built nnc.
class Emitter {
public:
  /// Nodes of `layer`, located at `loc` (the optimizer's or schedule's
  /// declaration) for the comments of the loops computing them.
  Emitter(Graph &g, std::string layer, SourceLoc loc)
      : g_(g), layer_(std::move(layer)), loc_(loc) {}

  ValueId op(const char *name, std::vector<ValueId> in, Attrs attrs = {}) {
    const OpDef *def = findOp(name);
    for (const AttrSpec &s : def->attrs)
      if (!attrs.has(s.name) && s.defaultValue)
        attrs.set(s.name, *s.defaultValue);
    size_t n = in.size();
    return g_.apply(*def, std::move(in), std::move(attrs), layer_, loc_, n);
  }
  ValueId constant(double v) {
    Attrs a;
    a.set("shape", AttrValue{std::vector<int64_t>{}});
    a.set("value", AttrValue{v});
    return op("fill", {}, a);
  }
  ValueId add(ValueId a, ValueId b) { return op("add", {a, b}); }
  ValueId sub(ValueId a, ValueId b) { return op("sub", {a, b}); }
  ValueId mul(ValueId a, ValueId b) { return op("mul", {a, b}); }
  ValueId div(ValueId a, ValueId b) { return op("div", {a, b}); }
  ValueId scale(ValueId a, double f) {
    Attrs at;
    at.set("factor", AttrValue{f});
    return op("scale", {a}, at);
  }
  ValueId pow(double base, ValueId x) {
    Attrs at;
    at.set("base", AttrValue{base});
    return op("pow_of", {x}, at);
  }
  /// Names a value this step computed (inputs keep their names).
  void name(ValueId v, const std::string &n) {
    if (g_.value(v).kind == ValueKind::Computed)
      g_.rename(v, n);
  }

private:
  Graph &g_;
  std::string layer_;
  SourceLoc loc_;
};

ValueId scalarInput(Graph &g, const char *name) {
  return g.addValue({ValueKind::Input, DType::F32, Shape{{}}, name, -1, {}});
}

/// lr = base · schedule(epoch) · warm-up(step), the epoch being
/// floor((step - 1) / stepsPerEpoch), as PyTorch's schedulers stepped once
/// an epoch; the warm-up is linear over `warmup` epochs of steps.
ValueId learningRate(Graph &g, const Program &p, const StepGraph &s) {
  Emitter e(g, "schedule", p.schedule.loc);
  const Attrs &a = p.schedule.attrs;
  ValueId epoch =
      e.op("floor", {e.div(e.sub(s.step, e.constant(1)), s.stepsPerEpoch)});
  ValueId lr = s.baseLr;
  const std::string &kind = p.schedule.name;
  if (kind == "step") {
    ValueId decays = e.op("floor", {e.scale(epoch, 1.0 / static_cast<double>(a.getInt("every")))});
    lr = e.mul(lr, e.pow(a.getFloat("gamma"), decays));
  } else if (kind == "exponential") {
    lr = e.mul(lr, e.pow(a.getFloat("gamma"), epoch));
  } else if (kind == "cosine") {
    // min_lr + (base - min_lr)(1 + cos(π epoch / epochs)) / 2
    ValueId minLr = e.constant(a.getFloat("min_lr"));
    ValueId angle = e.scale(epoch, M_PI / static_cast<double>(p.train.epochs));
    ValueId one = e.constant(1);
    ValueId half = e.scale(e.add(one, e.op("cos", {angle})), 0.5);
    lr = e.add(minLr, e.mul(e.sub(lr, minLr), half));
  } else if (kind != "constant") {
    throw std::logic_error("internal error: unknown schedule " + kind);
  }
  if (double w = a.getFloat("warmup"); w > 0) {
    ValueId ramp = e.div(s.step, e.scale(s.stepsPerEpoch, w));
    lr = e.mul(lr, e.op("minimum", {ramp, e.constant(1)}));
  }
  if (lr == s.baseLr) // the output @lr is always a value of its own
    lr = e.scale(lr, 1.0);
  e.name(lr, kLrName);
  return lr;
}

/// Appends the optimizer's update of every parameter, as torch.optim does
/// it (single-tensor path, no amsgrad): see docs/LANGUAGE.md.
void appendUpdate(Graph &g, const Program &p, StepGraph &s, const std::vector<ValueId> &params,
                  const std::vector<ValueId> &grads) {
  const Attrs &a = p.optimizer.attrs;
  const std::string &kind = p.optimizer.name;
  ValueId lr = s.lr;
  for (size_t i = 0; i < params.size(); ++i) {
    const Value param = g.value(params[i]);
    Emitter e(g, "optimizer", p.optimizer.loc);
    auto state = [&](const char *suffix) {
      return g.addValue({ValueKind::State, DType::F32, param.shape,
                         param.name + "." + suffix, -1, {Initializer::Kind::Zeros, 0}});
    };
    ValueId w = params[i], grad = grads[i], updated;
    if (kind == "sgd") {
      double wd = a.getFloat("weight_decay"), m = a.getFloat("momentum");
      double damp = a.getFloat("dampening");
      ValueId d = wd > 0 ? e.add(grad, e.scale(w, wd)) : grad;
      if (m > 0) {
        ValueId buf = state("momentum_buffer");
        // The first step starts the buffer at d itself (PyTorch).
        ValueId later = e.op("minimum", {e.sub(s.step, e.constant(1)), e.constant(1)});
        ValueId kept = e.scale(buf, m);
        ValueId running = e.add(kept, e.scale(d, 1 - damp));
        ValueId next = e.add(d, e.mul(later, e.sub(running, d)));
        e.name(next, param.name + ".momentum_buffer'");
        s.updates.emplace_back(buf, next);
        d = a.getBool("nesterov") ? e.add(d, e.scale(next, m)) : next;
      }
      updated = e.sub(w, e.mul(lr, d));
    } else if (kind == "adam" || kind == "adamw") {
      double b1 = a.getFloat("beta1"), b2 = a.getFloat("beta2");
      double eps = a.getFloat("eps"), wd = a.getFloat("weight_decay");
      if (kind == "adamw" && wd > 0) { // decoupled: p ← p (1 - lr·wd)
        ValueId one = e.constant(1);
        w = e.mul(w, e.sub(one, e.scale(lr, wd)));
      } else if (wd > 0) // L2: g ← g + wd·p
        grad = e.add(grad, e.scale(w, wd));
      ValueId m = state("exp_avg"), v = state("exp_avg_sq");
      ValueId mKept = e.scale(m, b1);
      ValueId m2 = e.add(mKept, e.scale(grad, 1 - b1));
      ValueId vKept = e.scale(v, b2);
      ValueId v2 = e.add(vKept, e.scale(e.mul(grad, grad), 1 - b2));
      e.name(m2, param.name + ".exp_avg'");
      e.name(v2, param.name + ".exp_avg_sq'");
      s.updates.emplace_back(m, m2);
      s.updates.emplace_back(v, v2);
      ValueId one = e.constant(1);
      ValueId bc1 = e.sub(one, e.pow(b1, s.step));
      ValueId bc2 = e.sub(one, e.pow(b2, s.step));
      ValueId stepSize = e.div(lr, bc1);
      ValueId rootV = e.op("sqrt", {v2});
      ValueId quotient = e.div(rootV, e.op("sqrt", {bc2}));
      ValueId denom = e.add(quotient, e.constant(eps));
      updated = e.sub(w, e.mul(stepSize, e.div(m2, denom)));
    } else {
      throw std::logic_error("internal error: unknown optimizer " + kind);
    }
    e.name(updated, param.name + "'");
    s.updates.emplace_back(params[i], updated);
  }
}

/// running ← (1 - momentum) running + momentum · batch statistic, for every
/// batchnorm (the variance unbiased, as PyTorch).
void appendRunningStats(Graph &g, StepGraph &s) {
  size_t forwardNodes = g.nodes.size();
  for (size_t i = 0; i < forwardNodes; ++i) {
    const Node node = g.nodes[i];
    if (node.op->name != "batchnorm")
      continue;
    Emitter e(g, node.layer, node.loc);
    double m = node.attrs.getFloat("momentum");
    ValueId x = node.inputs[0];
    ValueId stats[2] = {e.op("channel_mean", {x}), e.op("channel_var", {x})};
    for (int k = 0; k < 2; ++k) {
      ValueId running = node.inputs[static_cast<size_t>(3 + k)];
      ValueId kept = e.scale(running, 1 - m);
      ValueId next = e.add(kept, e.scale(stats[k], m));
      e.name(next, g.value(running).name + "'");
      s.updates.emplace_back(running, next);
    }
  }
}

void addScalars(Graph &g, StepGraph &s) {
  s.step = scalarInput(g, kStepName.c_str());
  s.stepsPerEpoch = scalarInput(g, kStepsPerEpochName.c_str());
  s.baseLr = scalarInput(g, kBaseLrName.c_str());
}

/// Forward, loss and backward; fills s.loss and s.grads.
Graph gradients(const Program &p, StepGraph &s) {
  Graph forward = buildLossGraph(p);
  Differentiated d = differentiate(forward, forward.outputs[0], forward.params());
  s.loss = forward.outputs[0];
  s.logits = forward.nodes[static_cast<size_t>(forward.value(s.loss).node)].inputs[0];
  for (ValueId param : forward.params())
    s.grads.push_back(d.grads.at(param));
  return d.graph;
}

void setOutputs(StepGraph &s, std::vector<ValueId> first) {
  s.graph.outputs = std::move(first);
  for (const auto &[from, to] : s.updates)
    s.graph.outputs.push_back(to);
}

} // namespace

std::vector<std::string> optimizerStateNames(const Applied &optimizer) {
  if (optimizer.name == "sgd")
    return optimizer.attrs.getFloat("momentum") > 0 ? std::vector<std::string>{"momentum_buffer"}
                                                    : std::vector<std::string>{};
  return {"exp_avg", "exp_avg_sq"};
}

StepGraph buildTrainStep(const Program &p) {
  StepGraph s;
  s.graph = gradients(p, s);
  s.graph.name = p.model.name + ".train_step";
  appendRunningStats(s.graph, s);
  addScalars(s.graph, s);
  s.lr = learningRate(s.graph, p, s);
  appendUpdate(s.graph, p, s, s.graph.params(), s.grads);
  setOutputs(s, {s.loss, s.lr, s.logits});
  return s;
}

StepGraph buildGradStep(const Program &p) {
  StepGraph s;
  s.graph = gradients(p, s);
  s.graph.name = p.model.name + ".grad_step";
  appendRunningStats(s.graph, s);
  // dropout's masks depend on the step and on where this share of the batch
  // starts in it: a process's masks are those of its examples in one process
  s.step = scalarInput(s.graph, kStepName.c_str());
  scalarInput(s.graph, kFirstExampleName.c_str());
  std::vector<ValueId> outputs{s.loss, s.logits};
  outputs.insert(outputs.end(), s.grads.begin(), s.grads.end());
  setOutputs(s, outputs);
  return s;
}

StepGraph buildUpdateStep(const Program &p) {
  StepGraph s;
  Graph model = buildGraph(p);
  Graph &g = s.graph;
  g.name = p.model.name + ".apply_update";
  std::vector<ValueId> params, grads;
  for (ValueId id : model.params()) {
    const Value &v = model.value(id);
    params.push_back(g.addValue(v));
    grads.push_back(g.addValue({ValueKind::Input, DType::F32, v.shape, gradName(v.name), -1, {}}));
  }
  addScalars(g, s);
  s.lr = learningRate(g, p, s);
  appendUpdate(g, p, s, params, grads);
  setOutputs(s, {s.lr});
  return s;
}

} // namespace nnc
