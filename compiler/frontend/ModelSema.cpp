// ModelSema.cpp — a model body is a list of statements over named values:
//
//   h = x -> flatten -> dense(64) -> relu     # assignment
//   return add(h, h) -> dense(10)              # the output
//
// Values are defined before use (so the graph has no cycles) and never
// redefined. A layer in a chain takes the value piped into it as its first
// input; an op called like a function takes its inputs from its leading
// positional arguments. The rest of the positional arguments are attributes,
// in the op table's order.
//
// A block (`block residual(c)(x) { … }`) is used like a layer and expanded
// where it is used: its body is checked again for each use, in a scope of
// its own in which its inputs are the values it was given and its
// parameters are the constants it was given. The layers of an expansion are
// named after the use: `res1.conv_a`.
#include "frontend/ModelSema.h"

#include "frontend/Attributes.h"
#include "support/Text.h"

#include <algorithm>

namespace nnc {
namespace {

/// Most elements one tensor may have per example, and most parameters a
/// model may have: 2^40 (4 TiB of float32), far beyond any machine's memory,
/// so that every later size computation is free of overflow.
constexpr int64_t kMaxElements = int64_t(1) << 40;

/// Deepest nesting of block uses (a block using a block using …), and most
/// layers a model may have once its blocks are expanded: far beyond real
/// models, and small enough that checking never runs away (a block that uses
/// the previous one twice doubles the layers at each level).
constexpr size_t kMaxBlockDepth = 64;
constexpr size_t kMaxLayers = 100'000;

/// A name in scope. A name whose definition failed is bound to kPoisoned,
/// so that its uses raise no further errors.
constexpr int kPoisoned = -1;

struct Binding {
  int value;
  SourceLoc loc;
  bool used = false;
  bool isInput = false;
};

/// The names visible in one body: the model's, or one expansion of a block.
struct Scope {
  std::string what;   ///< "model Net", "block residual"
  std::string prefix; ///< prepended to layer names: "" or "res1."
  std::map<std::string, Binding> values;
  std::vector<std::string> order; ///< value names in definition order
  Constants constants;            ///< block parameters
  std::map<std::string, SourceLoc> laterDefinitions; ///< assigned further down
  std::set<std::string> labels;   ///< labels written in this body
  std::map<std::string, int> counters; ///< for automatic names, per op
  bool warn = true; ///< report unused values (once per block, not per use)
};

/// Every label written in `body`, so that automatic names avoid them.
std::set<std::string> labelsIn(const std::vector<Stmt> &body) {
  std::set<std::string> labels;
  std::vector<const Expr *> stack;
  for (const Stmt &s : body)
    if (s.value)
      stack.push_back(s.value.get());
  while (!stack.empty()) {
    const Expr *e = stack.back();
    stack.pop_back();
    for (const Stage &stage : e->stages) {
      if (stage.label)
        labels.insert(stage.label->name);
      for (const Arg &a : stage.args)
        stack.push_back(a.value.get());
    }
    for (const ExprPtr &o : e->operands)
      stack.push_back(o.get());
    for (const Arg &a : e->args)
      stack.push_back(a.value.get());
  }
  return labels;
}

class ModelChecker {
public:
  ModelChecker(const ModelDecl &decl, const BlockTable &blocks, std::set<std::string> &used,
               Diag &diag)
      : decl_(decl), blocks_(blocks), usedBlocks_(used), diag_(diag) {}

  std::optional<Model> run() {
    model_.name = decl_.name.name;
    model_.loc = decl_.name.loc;
    Scope scope;
    scope.what = "model " + decl_.name.name;
    scope.labels = labelsIn(decl_.body);
    scope_ = &scope;
    bool ok = defineInputs();
    std::optional<int> output = body(decl_.body, decl_.name.loc);
    if (!ok || !output || failed_)
      return std::nullopt;
    model_.output = *output;
    if (model_.paramCount() > kMaxElements) {
      diag_.error(model_.loc, "model " + model_.name + " has " +
                                  withThousands(model_.paramCount()) +
                                  " parameters, more than the limit of 2^40");
      return std::nullopt;
    }
    return std::move(model_);
  }

private:
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
    scope_->values[name.name] = Binding{value, name.loc, false, isInput};
    scope_->order.push_back(name.name);
  }

  /// Evaluates the statements of a model or block body in the current
  /// scope; returns its output value.
  std::optional<int> body(const std::vector<Stmt> &stmts, SourceLoc nameLoc) {
    for (const Stmt &s : stmts)
      if (s.kind == StmtKind::Assign)
        scope_->laterDefinitions.emplace(s.target->name, s.target->loc);
    std::optional<int> output;
    bool returned = false;
    bool ok = true;
    for (size_t i = 0; i < stmts.size(); ++i) {
      const Stmt &s = stmts[i];
      if (returned) {
        diag_.error(s.loc, "statement after 'return' is never evaluated",
                    "move it before the return, or delete it");
        return std::nullopt;
      }
      std::optional<int> v = tensor(*s.value);
      switch (s.kind) {
      case StmtKind::Assign: {
        const Ident &target = *s.target;
        scope_->laterDefinitions.erase(target.name);
        if (auto it = scope_->values.find(target.name); it != scope_->values.end()) {
          Diagnostic d{Severity::Error, target.loc, "'" + target.name + "' is already defined",
                       {"values cannot be redefined; choose a new name"}, {}};
          d.notes.push_back({it->second.loc, "'" + target.name + "' was defined here"});
          diag_.report(d);
          ok = false;
        } else if (scope_->constants.count(target.name)) {
          diag_.error(target.loc, "'" + target.name + "' is a parameter of " + scope_->what,
                      "choose another name for this value");
          scope_->constants.erase(target.name); // later uses: reported already
          bind(target, kPoisoned);
          ok = false;
        } else if (v) {
          bind(target, *v);
          if (model_.values[*v].producer >= 0) // an alias of the input keeps its name
            model_.values[*v].name = target.name;
        } else {
          bind(target, kPoisoned);
        }
        break;
      }
      case StmtKind::Return:
        returned = true;
        output = v;
        break;
      case StmtKind::Expr:
        if (i + 1 == stmts.size()) {
          returned = true;
          output = v;
        } else if (v && scope_->warn) {
          diag_.warning(s.loc, "the value of this expression is never used",
                        "assign it to a name and use that name, or delete it");
        }
        break;
      }
      ok = ok && v.has_value();
    }
    if (!returned && ok) {
      diag_.error(nameLoc, scope_->what + " has no output",
                  "end its body with an expression or a 'return'");
      return std::nullopt;
    }
    if (!ok)
      return std::nullopt;
    if (scope_->warn)
      warnUnused(*output);
    return output;
  }

  void warnUnused(int output) {
    for (const std::string &name : scope_->order) {
      const Binding &b = scope_->values[name];
      if (!b.used && b.value != kPoisoned && b.value != output)
        diag_.warning(b.loc, std::string(b.isInput ? "input" : "value") + " '" + name +
                                 "' of " + scope_->what + " is never used");
    }
  }

  bool isConstant(const Expr &e) const {
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
      return scope_->constants.count(e.text) > 0;
    case ExprKind::Call:
    case ExprKind::MatMul:
    case ExprKind::Chain:
      return false;
    }
    return false;
  }

  /// Whether `e` certainly denotes a tensor: a value in scope, or a
  /// computation.
  bool isTensor(const Expr &e) const {
    switch (e.kind) {
    case ExprKind::Name:
      return scope_->values.count(e.text) > 0;
    case ExprKind::Neg:
      return isTensor(*e.operands[0]);
    case ExprKind::Call:
    case ExprKind::MatMul:
    case ExprKind::Chain:
      return true;
    case ExprKind::Int:
    case ExprKind::Float:
    case ExprKind::String:
    case ExprKind::Bool:
    case ExprKind::List:
      return false;
    }
    return false;
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
        v = call(stage.callee, {*v}, stage.args, stage.label);
      }
      return v;
    }
    case ExprKind::Call:
      return call(Ident{e.text, e.loc}, {}, e.args, std::nullopt);
    case ExprKind::MatMul: {
      std::optional<int> a = tensor(*e.operands[0]);
      std::optional<int> b = tensor(*e.operands[1]);
      if (!a || !b)
        return std::nullopt;
      return applyOp(*findOp("matmul"), {*a, *b}, Attrs{}, e.loc, std::nullopt);
    }
    case ExprKind::Neg: {
      if (isConstant(e))
        break;
      std::optional<int> a = tensor(*e.operands[0]);
      if (!a)
        return std::nullopt;
      return applyOp(*findOp("neg"), {*a}, Attrs{}, e.loc, std::nullopt);
    }
    case ExprKind::Int:
    case ExprKind::Float:
    case ExprKind::String:
    case ExprKind::Bool:
    case ExprKind::List:
      break;
    }
    diag_.error(e.loc, "expected a tensor but got a constant",
                "constants are attributes of layers, written in their parentheses: dense(64)");
    return std::nullopt;
  }

  std::optional<int> lookup(const Expr &e) {
    if (auto it = scope_->values.find(e.text); it != scope_->values.end()) {
      it->second.used = true;
      if (it->second.value == kPoisoned)
        return std::nullopt; // its definition was reported already
      return it->second.value;
    }
    if (scope_->constants.count(e.text)) {
      diag_.error(e.loc, "'" + e.text + "' is a parameter of " + scope_->what +
                             ", a constant, not a tensor",
                  "parameters go in a layer's parentheses: dense(" + e.text + ")");
      return std::nullopt;
    }
    if (auto later = scope_->laterDefinitions.find(e.text);
        later != scope_->laterDefinitions.end()) {
      Diagnostic d{Severity::Error, e.loc, "'" + e.text + "' is used before it is defined",
                   {"a model is evaluated top to bottom and its values cannot form a cycle"},
                   {}};
      d.notes.push_back({later->second, "'" + e.text + "' is defined here"});
      diag_.report(d);
      return std::nullopt;
    }
    if (const OpDef *op = findOp(e.text); (op != nullptr && op->kind == OpKind::Layer) ||
                                          blocks_.count(e.text)) {
      diag_.error(e.loc, "'" + e.text + "' is a layer, not a value",
                  "apply it to a value with '->', e.g. x -> " + e.text);
      return std::nullopt;
    }
    diag_.error(e.loc, "unknown value '" + e.text + "'", didYouMean(e.text, scope_->order));
    return std::nullopt;
  }

  /// Applies the op or block `callee` to the `piped` inputs plus those among
  /// `args`.
  std::optional<int> call(const Ident &callee, std::vector<int> inputs,
                          const std::vector<Arg> &args, const std::optional<Ident> &label) {
    const OpDef *op = findUserOp(callee.name);
    auto block = blocks_.find(callee.name);
    if (op == nullptr && block == blocks_.end()) {
      std::vector<std::string> names = opNames(OpKind::Layer);
      for (const auto &[name, decl] : blocks_)
        names.push_back(name);
      std::string hint = didYouMean(callee.name, names);
      if (hint.empty() && scope_->values.count(callee.name))
        hint = "'" + callee.name + "' is a value; to combine values use add(" + callee.name +
               ", …) or concat";
      if (hint.empty())
        hint = "the layers are " + joinNames(names);
      diag_.error(callee.loc, "unknown layer '" + callee.name + "'", hint);
      return std::nullopt;
    }
    if (op != nullptr && op->kind == OpKind::Loss) {
      diag_.error(callee.loc, "'" + callee.name + "' is a loss, not a layer",
                  "declare it outside the model: loss " + callee.name);
      return std::nullopt;
    }
    if (op == nullptr && block->second == nullptr)
      return std::nullopt; // its declaration was reported already
    std::vector<const Arg *> positional, named;
    if (!splitArgs(args, positional, named, diag_))
      return std::nullopt;
    if (op == nullptr)
      for (const Arg *arg : named)
        for (const Ident &input : block->second->inputs)
          if (arg->name->name == input.name) {
            diag_.error(arg->name->loc, "inputs cannot be named: '" + input.name +
                                            "' is an input of block " + callee.name,
                        "pass inputs first, by position, or pipe the first one in with '->'");
            return std::nullopt;
          }
    int arity = op != nullptr ? op->arity : static_cast<int>(block->second->inputs.size());
    bool piped = !inputs.empty();
    size_t next = 0;
    if (!collectInputs(callee, arity, inputs, positional, next))
      return std::nullopt;
    std::vector<const Arg *> rest(positional.begin() + static_cast<long>(next), positional.end());
    for (const Arg *arg : rest)
      if (isTensor(*arg->value)) {
        // `x -> dense(h)`: a tensor where attributes go.
        size_t n = inputs.size();
        std::string given = piped ? std::string(", and '->' already gives ") +
                                        (n == 1 ? "it" : "the first")
                                  : "";
        diag_.error(arg->loc,
                    "one input too many: " + callee.name + " takes " + std::to_string(n) +
                        " input" + (n == 1 ? "" : "s") + given,
                    "after the inputs come constants: attributes, or a block's parameters");
        return std::nullopt;
      }
    if (op == nullptr)
      return expand(*block->second, callee, inputs, rest, named, label);
    std::optional<Attrs> attrs = resolveAttrs(op->attrs, rest, named, op->name, callee.loc, diag_,
                                              AttrNaming::ByName, &scope_->constants);
    if (!attrs)
      return std::nullopt;
    return applyOp(*op, inputs, *attrs, callee.loc, label);
  }

  /// Takes inputs from the leading positional arguments until `inputs`
  /// has `arity` of them (for a variadic op: until the first constant).
  bool collectInputs(const Ident &callee, int arity, std::vector<int> &inputs,
                     const std::vector<const Arg *> &positional, size_t &next) {
    size_t wanted = static_cast<size_t>(std::max(arity, 0));
    if (arity == kVariadic) {
      size_t tensors = 0;
      while (tensors < positional.size() && !isConstant(*positional[tensors]->value))
        ++tensors;
      for (size_t later = tensors; later < positional.size(); ++later)
        if (isTensor(*positional[later]->value)) {
          diag_.error(positional[later]->loc,
                      callee.name + " takes its inputs first, then its attributes",
                      "move this input before the constants, or name the attributes: axis=…");
          return false;
        }
      wanted = inputs.size() + tensors;
    }
    if (arity == 0 && !inputs.empty()) {
      diag_.error(callee.loc, callee.name + " takes no input; it makes a tensor",
                  "use it on its own, not after '->'");
      return false;
    }
    while (inputs.size() < wanted && next < positional.size()) {
      const Expr &arg = *positional[next++]->value;
      if (arg.kind == ExprKind::Name && scope_->constants.count(arg.text)) {
        lookup(arg); // "'c' is a parameter of block …, a constant, not a tensor"
        return false;
      }
      if (isConstant(arg)) {
        // `dense(10)` written as a statement: 10 lands where an input goes.
        std::string message =
            wanted == 1 ? callee.name + "'s input must be a tensor, but this is a constant"
                        : callee.name + " takes " + std::to_string(wanted) + " inputs, but input " +
                              std::to_string(inputs.size() + 1) + " here is a constant";
        diag_.error(arg.loc, message,
                    !inputs.empty()
                        ? "the value piped in with '->' is input 1; give the others before the "
                          "constants: value -> " +
                              callee.name + "(other, …)"
                        : "called like a function, " + callee.name +
                              "(…) takes its inputs first; to apply it to a value write value "
                              "-> " +
                              callee.name + "(…)");
        return false;
      }
      std::optional<int> v = tensor(arg);
      if (!v)
        return false;
      inputs.push_back(*v);
    }
    bool enough = arity == kVariadic ? inputs.size() >= 2 : inputs.size() >= wanted;
    if (!enough) {
      std::string count = arity == kVariadic ? "at least 2" : std::to_string(arity);
      diag_.error(callee.loc, callee.name + " takes " + count + " input" +
                                  (arity == 1 ? "" : "s") + " but gets " +
                                  std::to_string(inputs.size()),
                  arity == 2 ? "for example " + callee.name + "(a, b), or a -> " + callee.name +
                                   "(b)"
                             : "");
      return false;
    }
    return true;
  }

  /// A layer's full name: the label, or `op_k` avoiding labels in scope.
  std::string layerName(const std::string &op, const std::optional<Ident> &label) {
    if (label)
      return scope_->prefix + label->name;
    int &counter = scope_->counters[op];
    std::string name;
    do
      name = op + "_" + std::to_string(++counter);
    while (scope_->labels.count(name) || layerNames_.count(scope_->prefix + name));
    return scope_->prefix + name;
  }

  /// Claims a full layer (or block use) name; a label used twice is an error.
  bool claimName(const std::string &name, const std::optional<Ident> &label, SourceLoc loc) {
    auto [it, inserted] = layerNames_.emplace(name, label ? label->loc : loc);
    if (inserted || !label)
      return true;
    Diagnostic d{Severity::Error, label->loc, "layer name '" + label->name + "' is taken",
                 {"every layer needs its own name; its parameters are saved under it"},
                 {}};
    d.notes.push_back({it->second, "'" + label->name + "' names this layer"});
    diag_.report(d);
    return false;
  }

  /// Expands a use of `block`.
  std::optional<int> expand(const BlockDecl &block, const Ident &callee,
                            const std::vector<int> &inputs,
                            const std::vector<const Arg *> &positional,
                            const std::vector<const Arg *> &named,
                            const std::optional<Ident> &label) {
    usedBlocks_.insert(block.name.name);
    if (tooLarge_)
      return std::nullopt;
    if (expanding_.size() >= kMaxBlockDepth) {
      diag_.error(callee.loc,
                  "blocks are nested more than " + std::to_string(kMaxBlockDepth) + " deep here",
                  "a block may use blocks that use blocks, but not this deeply");
      tooLarge_ = true;
      return std::nullopt;
    }
    if (std::find(expanding_.begin(), expanding_.end(), &block) != expanding_.end()) {
      std::vector<std::string> cycle;
      auto first = std::find(expanding_.begin(), expanding_.end(), &block);
      for (auto it = first; it != expanding_.end(); ++it)
        cycle.push_back((*it)->name.name);
      cycle.push_back(block.name.name);
      std::string path;
      for (const std::string &n : cycle)
        path += (path.empty() ? "" : " -> ") + n;
      Diagnostic d{Severity::Error, callee.loc, "block '" + block.name.name + "' uses itself",
                   {"blocks cannot be recursive: " + path}, {}};
      d.notes.push_back({block.name.loc, "'" + block.name.name + "' is declared here"});
      diag_.report(d);
      return std::nullopt;
    }
    std::optional<Constants> constants = bindParams(block, callee, positional, named);
    if (!constants)
      return std::nullopt;

    std::string name = layerName(block.name.name, label);
    if (!claimName(name, label, callee.loc))
      failed_ = true;
    Scope inner;
    inner.what = "block " + block.name.name;
    inner.prefix = name + ".";
    inner.constants = std::move(*constants);
    inner.labels = labelsIn(block.body);
    inner.warn = warnedBlocks_.insert(&block).second; // warn about the body once
    Scope *outer = scope_;
    scope_ = &inner;
    for (size_t i = 0; i < block.inputs.size(); ++i)
      bind(block.inputs[i], inputs[i], true);
    expanding_.push_back(&block);
    diag_.pushContext({callee.loc, "in block '" + block.name.name + "' used here"});
    std::optional<int> output = body(block.body, block.name.loc);
    diag_.popContext();
    expanding_.pop_back();
    scope_ = outer;
    return output;
  }

  /// Binds a block's parameters to the constants a use gives them.
  std::optional<Constants> bindParams(const BlockDecl &block, const Ident &callee,
                                      const std::vector<const Arg *> &positional,
                                      const std::vector<const Arg *> &named) {
    const std::string what = "block " + block.name.name;
    std::vector<const Arg *> given(block.params.size(), nullptr);
    if (positional.size() > block.params.size()) {
      diag_.error(positional[block.params.size()]->loc,
                  "too many arguments: " + what + " takes " +
                      std::to_string(block.inputs.size()) + " input" +
                      (block.inputs.size() == 1 ? "" : "s") + " and " +
                      std::to_string(block.params.size()) + " parameter" +
                      (block.params.size() == 1 ? "" : "s"));
      return std::nullopt;
    }
    for (size_t i = 0; i < positional.size(); ++i)
      given[i] = positional[i];
    std::vector<std::string> names;
    for (const BlockParam &p : block.params)
      names.push_back(p.name.name);
    for (const Arg *arg : named) {
      auto it = std::find(names.begin(), names.end(), arg->name->name);
      if (it == names.end()) {
        std::string hint = didYouMean(arg->name->name, names);
        diag_.error(arg->name->loc, what + " has no parameter '" + arg->name->name + "'",
                    hint.empty() ? (names.empty() ? what + " takes no parameters"
                                                  : "its parameters are " + joinNames(names))
                                 : hint);
        return std::nullopt;
      }
      size_t index = static_cast<size_t>(it - names.begin());
      if (given[index] != nullptr) {
        Diagnostic d{Severity::Error, arg->name->loc,
                     "parameter '" + arg->name->name + "' is given twice", {}, {}};
        d.notes.push_back({given[index]->loc, "first given here"});
        diag_.report(d);
        return std::nullopt;
      }
      given[index] = arg;
    }
    Constants constants;
    for (size_t i = 0; i < block.params.size(); ++i) {
      const BlockParam &p = block.params[i];
      const Expr *value = nullptr;
      if (given[i] != nullptr) {
        value = constantValue(*given[i]->value);
        if (value == nullptr)
          return std::nullopt;
      } else if (p.defaultValue) {
        value = p.defaultValue.get(); // checked to be a literal where declared
      } else {
        diag_.error(callee.loc, what + " needs parameter '" + p.name.name + "'",
                    "for example " + callee.name + "(" + p.name.name + "=…)");
        return std::nullopt;
      }
      constants.emplace(p.name.name, value);
    }
    return constants;
  }

  /// The constant that `e`, an argument given for a block parameter,
  /// stands for: a literal, or the value of a parameter of the enclosing
  /// block. Reports anything else.
  const Expr *constantValue(const Expr &e) {
    if (e.kind == ExprKind::Neg && e.operands[0]->kind == ExprKind::Name) {
      // `-c` with c a parameter here: resolved now, in this scope, so that the
      // inner block's own `c` never refers to itself.
      const Expr *inner = constantValue(*e.operands[0]);
      if (inner == nullptr)
        return nullptr;
      if (inner->kind != ExprKind::Int && inner->kind != ExprKind::Float &&
          inner->kind != ExprKind::Neg) {
        diag_.error(e.loc, "only a number can be negated");
        return nullptr;
      }
      auto neg = std::make_unique<Expr>(ExprKind::Neg, e.loc);
      neg->operands.push_back(copyNumber(*inner));
      owned_.push_back(std::move(neg));
      return owned_.back().get();
    }
    if (e.kind == ExprKind::Name) {
      if (auto it = scope_->constants.find(e.text); it != scope_->constants.end())
        return it->second;
      diag_.error(e.loc, "a block parameter must be a constant, but '" + e.text + "' is not one",
                  "tensors are a block's inputs: pass them before the parameters");
      return nullptr;
    }
    if (!isConstant(e)) {
      diag_.error(e.loc, "a block parameter must be a constant",
                  "tensors are a block's inputs: pass them before the parameters");
      return nullptr;
    }
    if (e.kind == ExprKind::List)
      for (const ExprPtr &element : e.operands)
        if (element->kind == ExprKind::Name) {
          diag_.error(element->loc, "a list passed to a block must be written out in numbers",
                      "pass the elements as parameters of their own instead");
          return nullptr;
        }
    return &e;
  }

  /// A copy of a (possibly negated) numeric literal.
  static ExprPtr copyNumber(const Expr &e) {
    auto out = std::make_unique<Expr>(e.kind, e.loc);
    out->intValue = e.intValue;
    out->floatValue = e.floatValue;
    out->text = e.text;
    for (const ExprPtr &o : e.operands)
      out->operands.push_back(copyNumber(*o));
    return out;
  }

  std::optional<int> applyOp(const OpDef &op, const std::vector<int> &inputs, const Attrs &attrs,
                             SourceLoc loc, const std::optional<Ident> &label) {
    if (tooLarge_)
      return std::nullopt;
    if (model_.layers.size() >= kMaxLayers) {
      diag_.error(loc, "the model has more than " + withThousands(kMaxLayers) +
                           " layers once its blocks are expanded",
                  "a block that uses another block several times multiplies its layers");
      tooLarge_ = true;
      return std::nullopt;
    }
    std::string name = layerName(op.name, label);
    if (!claimName(name, label, loc))
      failed_ = true; // go on checking shapes; the program is wrong anyway

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
      diag_.error(loc, shown + "'s output " + shape.str() + " is too large",
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
        layer.params.push_back(
            {name + "." + p.name, std::move(p.shape), *count, p.trainable, p.init});
      }
    }
    layer.output = newValue(name, std::move(shape), static_cast<int>(model_.layers.size()), loc);
    model_.layers.push_back(std::move(layer));
    return model_.layers.back().output;
  }

  const ModelDecl &decl_;
  const BlockTable &blocks_;
  std::set<std::string> &usedBlocks_;
  Diag &diag_;
  Model model_;
  Scope *scope_ = nullptr;
  bool failed_ = false;
  bool tooLarge_ = false; ///< a limit was hit: stop expanding at once
  std::map<std::string, SourceLoc> layerNames_; ///< full names of layers and block uses
  std::vector<const BlockDecl *> expanding_;     ///< blocks being expanded, outermost first
  std::set<const BlockDecl *> warnedBlocks_;
  std::vector<ExprPtr> owned_; ///< constants made while binding parameters
};

} // namespace

std::optional<Model> analyzeModel(const ModelDecl &decl, const BlockTable &blocks,
                                  std::set<std::string> &usedBlocks, Diag &diag) {
  return ModelChecker(decl, blocks, usedBlocks, diag).run();
}

int64_t Model::paramCount() const {
  int64_t n = 0;
  for (const Layer &layer : layers)
    for (const ParamInfo &p : layer.params)
      if (p.trainable)
        n += p.count;
  return n;
}

int64_t Model::widestValue() const {
  int64_t widest = 1;
  for (const ModelValue &v : values)
    if (std::optional<int64_t> e = v.shape.elementsPerExample())
      widest = std::max(widest, *e);
  return widest;
}

int64_t Model::maxBatch() const { return kMaxBatchElements / widestValue(); }

int64_t Model::stateCount() const {
  int64_t n = 0;
  for (const Layer &layer : layers)
    for (const ParamInfo &p : layer.params)
      if (!p.trainable)
        n += p.count;
  return n;
}

} // namespace nnc
