// ModelSema.cpp — a model body is a list of statements over named values:
//
//   h = x -> flatten -> dense(64) -> relu     # assignment
//   return add(h, h) -> dense(10)              # the output
//
// Values are defined before use (so the graph has no cycles) and never
// redefined. A layer in a chain takes the value piped into it as its first
// input; an op called like a function takes its inputs from its positional
// arguments. The rest of the positional arguments are attributes, in the op
// table's order.
#include "frontend/ModelSema.h"

#include "frontend/Attributes.h"
#include "support/Text.h"

#include <algorithm>

#include <map>
#include <set>

namespace nnc {
namespace {

/// Most elements one tensor may have per example, and most parameters a
/// model may have: 2^40 (4 TiB of float32), far beyond any machine's memory,
/// so that every later size computation is free of overflow.
constexpr int64_t kMaxElements = int64_t(1) << 40;

bool isConstant(const Expr &e) {
  switch (e.kind) {
  case ExprKind::Int:
  case ExprKind::Float:
  case ExprKind::String:
  case ExprKind::Bool:
  case ExprKind::List:
    return true;
  case ExprKind::Neg:
    return isConstant(*e.operands[0]);
  case ExprKind::Name:
  case ExprKind::Call:
  case ExprKind::MatMul:
  case ExprKind::Chain:
    return false;
  }
  return false;
}

class ModelChecker {
public:
  ModelChecker(const ModelDecl &decl, Diag &diag) : decl_(decl), diag_(diag) {}

  std::optional<Model> run() {
    model_.name = decl_.name.name;
    model_.loc = decl_.name.loc;
    collectLabels();
    bool ok = defineInputs();
    ok = body() && ok;
    if (!ok || failed_)
      return std::nullopt;
    warnUnused();
    int64_t total = 0;
    for (const Layer &layer : model_.layers)
      for (const ParamInfo &p : layer.params)
        total += p.count;
    if (total > kMaxElements) {
      diag_.error(model_.loc, "model " + model_.name + " has " + std::to_string(total) +
                                  " parameters, more than the limit of 2^40");
      return std::nullopt;
    }
    return std::move(model_);
  }

private:
  /// A name in scope. A name whose definition failed is bound to
  /// kPoisoned, so that its uses raise no further errors.
  static constexpr int kPoisoned = -1;
  struct Binding {
    int value;
    SourceLoc loc;
    bool used = false;
    bool isInput = false;
  };

  /// Every label the user wrote, so that automatic names avoid them.
  void collectLabels() {
    std::vector<const Expr *> stack;
    for (const Stmt &s : decl_.body)
      if (s.value)
        stack.push_back(s.value.get());
    while (!stack.empty()) {
      const Expr *e = stack.back();
      stack.pop_back();
      for (const Stage &stage : e->stages) {
        if (stage.label)
          userLabels_.insert(stage.label->name);
        for (const Arg &a : stage.args)
          stack.push_back(a.value.get());
      }
      for (const ExprPtr &o : e->operands)
        stack.push_back(o.get());
      for (const Arg &a : e->args)
        stack.push_back(a.value.get());
    }
    for (size_t i = 0; i < decl_.body.size(); ++i)
      if (decl_.body[i].kind == StmtKind::Assign)
        laterDefinitions_.emplace(decl_.body[i].target->name, decl_.body[i].target->loc);
  }

  bool defineInputs() {
    if (decl_.params.empty()) {
      diag_.error(decl_.name.loc, "model " + decl_.name.name + " declares no input",
                  "declare the input and its shape, e.g. model " + decl_.name.name +
                      "(x: [1, 28, 28])");
      return false;
    }
    bool ok = true;
    for (size_t i = 0; i < decl_.params.size(); ++i) {
      const Param &p = decl_.params[i];
      auto fail = [&] {
        bind(p.name, kPoisoned, true);
        ok = false;
      };
      if (i > 0) {
        diag_.error(p.name.loc, "model " + decl_.name.name + " takes more than one input",
                    "a model takes one input, the image; join values inside the model instead");
        fail();
        continue;
      }
      if (p.shape.empty()) {
        diag_.error(p.shapeLoc, "input '" + p.name.name + "' has an empty shape",
                    "give the shape of one example, e.g. [1, 28, 28]");
        fail();
        continue;
      }
      auto zero = std::find_if(p.shape.begin(), p.shape.end(), [](int64_t d) { return d < 1; });
      if (zero != p.shape.end()) {
        diag_.error(p.dimLocs[static_cast<size_t>(zero - p.shape.begin())],
                    "input '" + p.name.name + "' has a dimension of " + std::to_string(*zero) +
                        "; every dimension must be at least 1");
        fail();
        continue;
      }
      Shape shape = Shape::batched(p.shape);
      if (!shape.elementsPerExample() || *shape.elementsPerExample() > kMaxElements) {
        diag_.error(p.shapeLoc, "input '" + p.name.name + "' is too large: " + shape.str(),
                    "a tensor may have at most 2^40 elements per example");
        fail();
        continue;
      }
      int v = newValue(p.name.name, shape, -1, p.name.loc);
      model_.inputs.push_back(v);
      bind(p.name, v, true);
    }
    return ok;
  }

  int newValue(std::string name, Shape shape, int producer, SourceLoc loc) {
    model_.values.push_back({std::move(name), std::move(shape), producer, loc});
    return static_cast<int>(model_.values.size() - 1);
  }

  void bind(const Ident &name, int value, bool isInput = false) {
    env_[name.name] = Binding{value, name.loc, false, isInput};
    order_.push_back(name.name);
  }

  bool body() {
    bool returned = false;
    bool ok = true;
    for (size_t i = 0; i < decl_.body.size(); ++i) {
      const Stmt &s = decl_.body[i];
      if (returned) {
        diag_.error(s.loc, "statement after 'return' is never evaluated",
                    "move it before the return, or delete it");
        return false;
      }
      std::optional<int> v = tensor(*s.value);
      switch (s.kind) {
      case StmtKind::Assign: {
        const Ident &target = *s.target;
        laterDefinitions_.erase(target.name);
        if (auto it = env_.find(target.name); it != env_.end()) {
          Diagnostic d{Severity::Error, target.loc, "'" + target.name + "' is already defined",
                       {"values cannot be redefined; choose a new name"}, {}};
          d.notes.push_back({it->second.loc, "'" + target.name + "' was defined here"});
          diag_.report(d);
          ok = false;
        } else if (v) {
          bind(target, *v);
          model_.values[*v].name = target.name;
        } else {
          bind(target, kPoisoned);
        }
        break;
      }
      case StmtKind::Return:
        returned = true;
        if (v)
          model_.output = *v;
        break;
      case StmtKind::Expr:
        if (i + 1 == decl_.body.size()) {
          returned = true;
          if (v)
            model_.output = *v;
        } else if (v) {
          diag_.warning(s.loc, "the value of this expression is never used",
                        "assign it to a name and use that name, or delete it");
        }
        break;
      }
      ok = ok && v.has_value();
    }
    if (!returned && ok) {
      diag_.error(decl_.name.loc, "model " + decl_.name.name + " has no output",
                  "end its body with an expression or a 'return'");
      return false;
    }
    return ok;
  }

  void warnUnused() {
    for (const std::string &name : order_) {
      const Binding &b = env_[name];
      if (b.value == kPoisoned)
        continue;
      if (!b.used && b.value != model_.output)
        diag_.warning(b.loc, std::string(b.isInput ? "input" : "value") + " '" + name +
                                 "' is never used");
    }
  }

  /// Evaluates `e` as a tensor; nullopt after an error was reported.
  std::optional<int> tensor(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Name:
      return lookup(e);
    case ExprKind::Chain: {
      std::optional<int> v = tensor(*e.operands[0]);
      for (const Stage &stage : e.stages) {
        if (!v)
          return std::nullopt;
        v = applyStage(stage, *v);
      }
      return v;
    }
    case ExprKind::Call: {
      const OpDef *op = layerOp(e.text, e.loc);
      if (op == nullptr)
        return std::nullopt;
      return apply(*op, {}, e.args, e.loc, std::nullopt);
    }
    case ExprKind::MatMul: {
      std::optional<int> a = tensor(*e.operands[0]);
      std::optional<int> b = tensor(*e.operands[1]);
      if (!a || !b)
        return std::nullopt;
      return applyResolved(*findOp("matmul"), {*a, *b}, Attrs{}, e.loc, std::nullopt);
    }
    case ExprKind::Neg: {
      std::optional<int> a = tensor(*e.operands[0]);
      if (!a)
        return std::nullopt;
      return applyResolved(*findOp("neg"), {*a}, Attrs{}, e.loc, std::nullopt);
    }
    case ExprKind::Int:
    case ExprKind::Float:
    case ExprKind::String:
    case ExprKind::Bool:
    case ExprKind::List:
      diag_.error(e.loc, "expected a tensor but got a constant",
                  "constants are attributes of layers, written in their parentheses: dense(64)");
      return std::nullopt;
    }
    return std::nullopt;
  }

  std::optional<int> lookup(const Expr &e) {
    if (auto it = env_.find(e.text); it != env_.end()) {
      it->second.used = true;
      if (it->second.value == kPoisoned)
        return std::nullopt; // its definition was reported already
      return it->second.value;
    }
    if (auto later = laterDefinitions_.find(e.text); later != laterDefinitions_.end()) {
      Diagnostic d{Severity::Error, e.loc, "'" + e.text + "' is used before it is defined",
                   {"a model is evaluated top to bottom and its values cannot form a cycle"},
                   {}};
      d.notes.push_back({later->second, "'" + e.text + "' is defined here"});
      diag_.report(d);
      return std::nullopt;
    }
    if (const OpDef *op = findOp(e.text); op != nullptr && op->kind == OpKind::Layer) {
      diag_.error(e.loc, "'" + e.text + "' is a layer, not a value",
                  "apply it to a value with '->', e.g. x -> " + e.text);
      return std::nullopt;
    }
    std::vector<std::string> names(order_.begin(), order_.end());
    diag_.error(e.loc, "unknown value '" + e.text + "'", didYouMean(e.text, names));
    return std::nullopt;
  }

  /// The layer op called `name`, or null after reporting why not.
  const OpDef *layerOp(const std::string &name, SourceLoc loc) {
    const OpDef *op = findOp(name);
    if (op != nullptr && op->kind == OpKind::Layer)
      return op;
    if (op != nullptr) {
      diag_.error(loc, "'" + name + "' is a loss, not a layer",
                  "declare it outside the model: loss " + name);
      return nullptr;
    }
    std::string hint = didYouMean(name, opNames(OpKind::Layer));
    if (hint.empty() && env_.count(name))
      hint = "'" + name + "' is a value; to combine values use add(" + name + ", …) or concat";
    if (hint.empty())
      hint = "the layers are " + joinNames(opNames(OpKind::Layer));
    diag_.error(loc, "unknown layer '" + name + "'", hint);
    return nullptr;
  }

  std::optional<int> applyStage(const Stage &stage, int piped) {
    const OpDef *op = layerOp(stage.callee.name, stage.callee.loc);
    if (op == nullptr)
      return std::nullopt;
    return apply(*op, {piped}, stage.args, stage.callee.loc, stage.label);
  }

  /// Applies `op` to the `piped` inputs plus those among `args`.
  std::optional<int> apply(const OpDef &op, std::vector<int> inputs, const std::vector<Arg> &args,
                           SourceLoc loc, const std::optional<Ident> &label) {
    std::vector<const Arg *> positional, named;
    if (!splitArgs(args, positional, named, diag_))
      return std::nullopt;
    size_t wanted = static_cast<size_t>(op.arity);
    if (op.arity == kVariadic) { // inputs up to the first constant; attributes after
      size_t tensors = 0;
      while (tensors < positional.size() && !isConstant(*positional[tensors]->value))
        ++tensors;
      wanted = inputs.size() + tensors;
    }
    bool ok = true;
    size_t next = 0;
    while (inputs.size() < wanted && next < positional.size()) {
      const Expr &arg = *positional[next++]->value;
      if (isConstant(arg)) {
        // `dense(10)` written as a statement: 10 lands where an input goes.
        diag_.error(arg.loc, op.name + "'s input must be a tensor, but this is a constant",
                    "called like a function, " + op.name +
                        "(…) takes its inputs first; to apply it to a value write value -> " +
                        op.name + "(…)");
        return std::nullopt;
      }
      std::optional<int> v = tensor(arg);
      if (v)
        inputs.push_back(*v);
      else
        ok = false;
    }
    if (!ok)
      return std::nullopt;
    if (op.arity == kVariadic ? inputs.size() < 2 : inputs.size() < wanted) {
      std::string count = op.arity == kVariadic ? "at least 2" : std::to_string(op.arity);
      diag_.error(loc, op.name + " takes " + count + " input" + (wanted == 1 ? "" : "s") +
                           " but gets " + std::to_string(inputs.size()),
                   op.arity == 2 ? "for example " + op.name + "(a, b), or a -> " + op.name + "(b)"
                                 : "");
      return std::nullopt;
    }
    std::vector<const Arg *> attrArgs(positional.begin() + static_cast<long>(next),
                                      positional.end());
    std::optional<Attrs> attrs = resolveAttrs(op.attrs, attrArgs, named, op.name, loc, diag_);
    if (!attrs)
      return std::nullopt;
    return applyResolved(op, inputs, *attrs, loc, label);
  }

  std::string autoName(const std::string &op) {
    int &counter = counters_[op];
    std::string name;
    do
      name = op + "_" + std::to_string(++counter);
    while (userLabels_.count(name) || layerNames_.count(name));
    return name;
  }

  std::optional<int> applyResolved(const OpDef &op, const std::vector<int> &inputs,
                                   const Attrs &attrs, SourceLoc loc,
                                   const std::optional<Ident> &label) {
    std::string name;
    if (label) {
      if (auto it = layerNames_.find(label->name); it != layerNames_.end()) {
        Diagnostic d{Severity::Error, label->loc, "layer name '" + label->name + "' is taken",
                     {"every layer needs its own name; its parameters are saved under it"},
                     {}};
        d.notes.push_back({it->second, "'" + label->name + "' names this layer"});
        diag_.report(d);
        failed_ = true; // go on checking shapes; the program is wrong anyway
      }
      name = label->name;
    } else {
      name = autoName(op.name);
    }
    layerNames_.emplace(name, label ? label->loc : loc);

    std::vector<Shape> shapes;
    for (int v : inputs)
      shapes.push_back(model_.values[v].shape);
    // Messages name the layer as the user wrote it: its label, else its op.
    std::string shown = label ? label->name : op.name;
    ShapeQuery query{shapes, attrs, shown};
    ShapeResult result = op.inferShape(query);
    if (auto *err = std::get_if<ShapeError>(&result)) {
      diag_.error(loc, err->message, err->hint);
      return std::nullopt;
    }
    Shape shape = std::get<Shape>(result);
    std::optional<int64_t> elements = shape.elementsPerExample();
    if (!elements || *elements > kMaxElements) {
      diag_.error(loc, name + "'s output " + shape.str() + " is too large",
                  "a tensor may have at most 2^40 elements per example");
      return std::nullopt;
    }
    Layer layer;
    layer.name = name;
    layer.op = &op;
    layer.attrs = attrs;
    layer.inputs = inputs;
    layer.loc = loc;
    if (op.params) {
      for (ParamSpec &p : op.params(query)) {
        std::optional<int64_t> count = product(p.shape);
        if (!count || *count > kMaxElements) {
          diag_.error(loc, name + "." + p.name + " would have more than 2^40 parameters");
          return std::nullopt;
        }
        layer.params.push_back({name + "." + p.name, std::move(p.shape), *count});
      }
    }
    layer.output = newValue(name, std::move(shape), static_cast<int>(model_.layers.size()), loc);
    model_.layers.push_back(std::move(layer));
    return model_.layers.back().output;
  }

  const ModelDecl &decl_;
  Diag &diag_;
  Model model_;
  bool failed_ = false;
  std::map<std::string, Binding> env_;
  std::vector<std::string> order_;               ///< names in definition order
  std::map<std::string, SourceLoc> laterDefinitions_; ///< assigned further down
  std::set<std::string> userLabels_;
  std::map<std::string, SourceLoc> layerNames_;
  std::map<std::string, int> counters_;
};

} // namespace

std::optional<Model> analyzeModel(const ModelDecl &decl, Diag &diag) {
  return ModelChecker(decl, diag).run();
}

int64_t Model::paramCount() const {
  int64_t n = 0;
  for (const Layer &layer : layers)
    for (const ParamInfo &p : layer.params)
      n += p.count;
  return n;
}

} // namespace nnc
