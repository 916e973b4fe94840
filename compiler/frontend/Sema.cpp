// Sema.cpp — checks a whole .nn file: its declarations, the model (see
// ModelSema.cpp), the loss, optimizer and schedule, and the `data` and
// `train` blocks, resolving every setting with its defaults.
#include "frontend/Sema.h"

#include "frontend/Attributes.h"
#include "frontend/ModelSema.h"
#include "support/Text.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace nnc {
namespace {

/// A configuration entry after checking: `normalize(mean=…, std=…)`.
struct ResolvedItem {
  const ConfigItemDef *def = nullptr;
  Attrs attrs;
  SourceLoc loc;
  std::vector<ResolvedItem> children;
};

class Checker {
public:
  Checker(const Module &module, const SourceManager &sources, Diag &diag)
      : module_(module), sources_(sources), diag_(diag) {}

  std::optional<Program> run() {
    Program program;
    program.path = sources_.file(module_.file).path();
    bool ok = true;

    // Which declaration is which, and duplicates.
    const SettingDecl *loss = nullptr, *optimizer = nullptr, *schedule = nullptr;
    // Keywords that a misspelt or misshapen declaration probably meant: no
    // "no loss is declared" on top of "unknown declaration 'los'".
    std::set<std::string> attempted;
    for (const SettingDecl &s : module_.settings) {
      const std::string &kw = s.keyword.name;
      const SettingDecl **slot = kw == "loss" ? &loss
                                 : kw == "optimizer" ? &optimizer
                                 : kw == "schedule"  ? &schedule
                                                     : nullptr;
      if (slot == nullptr) {
        ok = false;
        attempted.insert(unknownDeclaration(s.keyword, Form::Setting));
        continue;
      }
      if (*slot != nullptr) {
        duplicate(s.keyword, (*slot)->keyword.loc);
        ok = false;
        continue;
      }
      *slot = &s;
    }
    std::map<std::string, const ConfigDecl *> blocks;
    for (const ConfigDecl &c : module_.configs) {
      if (findConfigBlock(c.keyword.name) == nullptr) {
        ok = false;
        attempted.insert(unknownDeclaration(c.keyword, Form::Block));
        continue;
      }
      auto [it, inserted] = blocks.emplace(c.keyword.name, &c);
      if (!inserted) {
        duplicate(c.keyword, it->second->keyword.loc);
        ok = false;
      }
    }

    // The model.
    std::optional<Model> model;
    BlockTable blockTable = checkBlocks();
    if (module_.models.empty() && module_.configs.empty() && module_.settings.empty() &&
        module_.blocks.empty()) {
      diag_.error(SourceLoc{module_.file, 1, 1, 1}, "the file declares nothing",
                  "a .nn file declares at least a model, a loss and an optimizer; see "
                  "examples/mnist.nn");
      return std::nullopt;
    }
    if (module_.models.empty()) {
      diag_.error(firstDeclaration(), "no model is declared",
                  "declare one, e.g. model Net(x: [1, 28, 28]) { x -> flatten -> dense(10) }");
      ok = false;
    } else {
      for (size_t i = 1; i < module_.models.size(); ++i) {
        Diagnostic d{Severity::Error, module_.models[i].loc, "a second model is declared",
                     {"a .nn file describes one model"}, {}};
        d.notes.push_back({module_.models[0].loc, "the first model is declared here"});
        diag_.report(d);
        ok = false;
      }
      std::set<std::string> used;
      model = analyzeModel(module_.models[0], blockTable, used, diag_);
      ok = ok && model.has_value() && !blocksFailed_;
      for (const BlockDecl &b : module_.blocks) {
        auto it = blockTable.find(b.name.name);
        if (used.count(b.name.name) || it == blockTable.end() || it->second != &b)
          continue;
        ok = checkCallees(b, blockTable) && ok; // what can be checked without a use
        if (model)
          diag_.warning(b.name.loc, "block '" + b.name.name + "' is never used");
      }
    }

    // Loss, optimizer, schedule.
    SourceLoc anchor = module_.models.empty() ? firstDeclaration() : module_.models[0].name.loc;
    std::string modelName = module_.models.empty() ? "" : " for model " + module_.models[0].name.name;
    if (loss == nullptr) {
      if (!attempted.count("loss"))
        diag_.error(anchor, "no loss is declared" + modelName,
                  "add a line such as: loss cross_entropy");
      ok = false;
    } else if (auto l = checkLoss(*loss, model ? &*model : nullptr)) {
      program.loss = *l;
    } else {
      ok = false;
    }
    if (optimizer == nullptr) {
      if (!attempted.count("optimizer"))
        diag_.error(anchor, "no optimizer is declared" + modelName,
                  "add a line such as: optimizer adam(lr=1e-3)");
      ok = false;
    } else if (auto o = checkSetting(*optimizer, optimizerTable(), "optimizer")) {
      program.optimizer = *o;
    } else {
      ok = false;
    }
    if (schedule == nullptr) {
      program.schedule = Applied{"constant", defaults(*findSetting(scheduleTable(), "constant")),
                                 SourceLoc{}};
    } else if (auto s = checkSetting(*schedule, scheduleTable(), "schedule")) {
      program.schedule = *s;
    } else {
      ok = false;
    }

    // Blocks.
    if (auto it = blocks.find("data"); it != blocks.end())
      ok = checkData(*it->second, model ? &*model : nullptr, program.data) && ok;
    if (auto it = blocks.find("train"); it != blocks.end())
      ok = checkTrain(*it->second, program.train) && ok;
    else
      program.train = TrainSpec{};

    if (!ok || !model)
      return std::nullopt;
    program.model = std::move(*model);
    return program;
  }

private:
  /// Checks block declarations: unique names that are not ops, unique
  /// parameter and input names, literal defaults.
  BlockTable checkBlocks() {
    BlockTable table;
    // Where each name was first declared: a block with errors is in the table
    // without its declaration (null), but a second one must still point here.
    std::map<std::string, SourceLoc> declared;
    for (const BlockDecl &b : module_.blocks) {
      const std::string &name = b.name.name;
      if (const OpDef *op = findUserOp(name)) {
        diag_.error(b.name.loc, "block '" + name + "' has the name of a built-in " +
                                    (op->kind == OpKind::Loss ? "loss" : "layer"),
                    "choose another name");
        blocksFailed_ = true;
        continue;
      }
      if (auto it = declared.find(name); it != declared.end()) {
        Diagnostic d{Severity::Error, b.name.loc, "block '" + name + "' is declared twice", {},
                     {}};
        d.notes.push_back({it->second, "first declared here"});
        diag_.report(d);
        blocksFailed_ = true;
        continue;
      }
      declared.emplace(name, b.name.loc);
      std::map<std::string, SourceLoc> names;
      auto unique = [&](const Ident &id, const char *kind) {
        auto [it, inserted] = names.emplace(id.name, id.loc);
        if (inserted)
          return true;
        Diagnostic d{Severity::Error, id.loc,
                     std::string(kind) + " '" + id.name + "' of block " + name +
                         " repeats a name",
                     {}, {}};
        d.notes.push_back({it->second, "'" + id.name + "' is first declared here"});
        diag_.report(d);
        return false;
      };
      bool ok = true;
      for (const BlockParam &p : b.params) {
        ok = unique(p.name, "parameter") && ok;
        if (p.defaultValue && !isLiteral(*p.defaultValue)) {
          diag_.error(p.defaultValue->loc,
                      "the default of parameter '" + p.name.name + "' must be a constant",
                      "write a number, a string, true, false or a list of numbers");
          ok = false;
        }
      }
      for (const Ident &input : b.inputs)
        ok = unique(input, "input") && ok;
      if (b.inputs.empty()) {
        diag_.error(b.name.loc, "block '" + name + "' takes no input",
                    "declare its inputs after its parameters: block " + name + "(…)(x)");
        ok = false;
      }
      if (!ok) {
        blocksFailed_ = true;
        table.emplace(name, nullptr); // known, but its uses stay silent
        continue;
      }
      table.emplace(name, &b);
    }
    return table;
  }

  /// In a block that is never used, shapes cannot be checked, but the
  /// layers it calls must exist.
  bool checkCallees(const BlockDecl &block, const BlockTable &blocks) {
    bool ok = true;
    std::vector<std::string> names = opNames(OpKind::Layer);
    for (const auto &[name, decl] : blocks)
      names.push_back(name);
    auto check = [&](const std::string &callee, SourceLoc loc) {
      if (std::find(names.begin(), names.end(), callee) != names.end())
        return;
      diag_.error(loc, "unknown layer '" + callee + "'", didYouMean(callee, names));
      ok = false;
    };
    std::vector<const Expr *> stack;
    for (const Stmt &s : block.body)
      stack.push_back(s.value.get());
    while (!stack.empty()) {
      const Expr *e = stack.back();
      stack.pop_back();
      if (e->kind == ExprKind::Call)
        check(e->text, e->loc);
      for (const Stage &stage : e->stages) {
        check(stage.callee.name, stage.callee.loc);
        for (const Arg &a : stage.args)
          stack.push_back(a.value.get());
      }
      for (const ExprPtr &o : e->operands)
        stack.push_back(o.get());
      for (const Arg &a : e->args)
        stack.push_back(a.value.get());
    }
    return ok;
  }

  static bool isLiteral(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Int:
    case ExprKind::Float:
    case ExprKind::String:
    case ExprKind::Bool:
      return true;
    case ExprKind::Neg:
      return e.operands[0]->kind == ExprKind::Int || e.operands[0]->kind == ExprKind::Float;
    case ExprKind::List:
      return std::all_of(e.operands.begin(), e.operands.end(),
                         [](const ExprPtr &x) { return isLiteral(*x); });
    case ExprKind::Name:
    case ExprKind::Call:
    case ExprKind::MatMul:
    case ExprKind::Chain:
      return false;
    }
    return false;
  }

  enum class Form { Setting, Block };

  /// Reports a declaration that is not one, and returns the keyword it
  /// probably meant (or "").
  std::string unknownDeclaration(const Ident &keyword, Form form) {
    const std::string &kw = keyword.name;
    if (form == Form::Setting && findConfigBlock(kw) != nullptr) {
      diag_.error(keyword.loc, "'" + kw + "' is followed by a block", "write " + kw + " { … }");
      return kw;
    }
    if (form == Form::Block && (kw == "loss" || kw == "optimizer" || kw == "schedule")) {
      const char *example = kw == "loss"        ? "loss cross_entropy"
                            : kw == "optimizer" ? "optimizer adam(lr=1e-3)"
                                                : "schedule step(every=5, gamma=0.1)";
      diag_.error(keyword.loc, "'" + kw + "' is not a block", std::string("write: ") + example);
      return kw;
    }
    std::string meant = closestMatch(kw, declarationKeywords());
    diag_.error(keyword.loc, "unknown declaration '" + kw + "'",
                meant.empty() ? "a .nn file declares " + joinNames(declarationKeywords())
                              : "did you mean '" + meant + "'?");
    return meant;
  }

  /// Where to report what the file as a whole lacks: its first declaration.
  SourceLoc firstDeclaration() const {
    SourceLoc first{module_.file, 1, 1, 1};
    bool found = false;
    auto consider = [&](SourceLoc l) {
      if (!found || std::tie(l.line, l.column) < std::tie(first.line, first.column))
        first = l;
      found = true;
    };
    for (const ModelDecl &m : module_.models)
      consider(m.loc);
    for (const ConfigDecl &c : module_.configs)
      consider(c.keyword.loc);
    for (const SettingDecl &s : module_.settings)
      consider(s.keyword.loc);
    for (const BlockDecl &b : module_.blocks)
      consider(b.loc);
    return first;
  }

  void duplicate(const Ident &keyword, SourceLoc first) {
    Diagnostic d{Severity::Error, keyword.loc, "'" + keyword.name + "' is declared twice", {}, {}};
    d.notes.push_back({first, "first declared here"});
    diag_.report(d);
  }

  static Attrs defaults(const SettingDef &def) {
    Attrs attrs;
    for (const AttrSpec &a : def.attrs)
      if (a.defaultValue)
        attrs.set(a.name, *a.defaultValue);
    return attrs;
  }

  bool rejectLabel(const Stage &value, const std::string &keyword) {
    if (!value.label)
      return true;
    diag_.error(value.label->loc, keyword + " takes no label",
                "labels name layers inside a model: fc1: dense(64)");
    return false;
  }

  std::optional<Applied> checkLoss(const SettingDecl &decl, const Model *model) {
    const Stage &value = decl.value;
    if (!rejectLabel(value, "loss"))
      return std::nullopt;
    const OpDef *op = findUserOp(value.callee.name);
    if (op == nullptr || op->kind != OpKind::Loss) {
      std::string hint = didYouMean(value.callee.name, opNames(OpKind::Loss));
      if (hint.empty())
        hint = "the losses are cross_entropy and mse";
      diag_.error(value.callee.loc, "unknown loss '" + value.callee.name + "'", hint);
      return std::nullopt;
    }
    std::vector<const Arg *> positional, named;
    if (!splitArgs(value.args, positional, named, diag_))
      return std::nullopt;
    std::optional<Attrs> attrs =
        resolveAttrs(op->attrs, positional, named, op->name, value.callee.loc, diag_);
    if (!attrs)
      return std::nullopt;
    if (model != nullptr && model->output >= 0) {
      std::vector<Shape> shapes{model->values[model->output].shape};
      ShapeQuery query{shapes, *attrs, op->name};
      ShapeResult result = op->inferShape(query);
      if (auto *err = std::get_if<ShapeError>(&result)) {
        diag_.error(value.callee.loc, err->message, err->hint);
        return std::nullopt;
      }
    }
    return Applied{op->name, *attrs, value.callee.loc};
  }

  std::optional<Applied> checkSetting(const SettingDecl &decl,
                                      const std::vector<SettingDef> &table,
                                      const std::string &keyword) {
    const Stage &value = decl.value;
    if (!rejectLabel(value, keyword))
      return std::nullopt;
    const SettingDef *def = findSetting(table, value.callee.name);
    if (def == nullptr) {
      std::vector<std::string> names;
      for (const SettingDef &d : table)
        names.push_back(d.name);
      std::string hint = didYouMean(value.callee.name, names);
      if (hint.empty())
        hint = "the " + keyword + "s are " + joinNames(names);
      diag_.error(value.callee.loc, "unknown " + keyword + " '" + value.callee.name + "'", hint);
      return std::nullopt;
    }
    std::vector<const Arg *> positional, named;
    if (!splitArgs(value.args, positional, named, diag_))
      return std::nullopt;
    std::optional<Attrs> attrs = resolveAttrs(def->attrs, positional, named,
                                              keyword + " " + def->name, value.callee.loc, diag_);
    if (!attrs)
      return std::nullopt;
    if (def->name == "sgd" && attrs->getBool("nesterov") &&
        (attrs->getFloat("momentum") <= 0 || attrs->getFloat("dampening") != 0)) {
      diag_.error(value.callee.loc, "Nesterov momentum needs momentum > 0 and dampening = 0",
                  "for example sgd(lr=0.1, momentum=0.9, nesterov=true)");
      return std::nullopt;
    }
    return Applied{def->name, *attrs, value.callee.loc};
  }

  /// How to write entry `def`: `shuffle or shuffle false`, `batch 64`.
  static std::string exampleOf(const ConfigItemDef &def) {
    if (def.attrs.empty())
      return def.name;
    const AttrSpec &first = def.attrs.front();
    if (first.type == AttrType::Bool)
      return def.name + " or " + def.name + " false";
    if (first.defaultValue)
      return def.name + " " + first.defaultValue->str();
    return def.name + " followed by " + describe(first.type);
  }

  /// Checks `items` against `defs`; entries not written are left out.
  bool checkItems(const std::vector<ConfigItemDef> &defs, const std::vector<Item> &items,
                  const std::string &where, std::vector<ResolvedItem> &out) {
    bool ok = true;
    std::map<std::string, SourceLoc> seen;
    const Item *skip = nullptr;
    for (const Item &item : items) {
      if (&item == skip)
        continue;
      auto def = std::find_if(defs.begin(), defs.end(),
                              [&](const ConfigItemDef &d) { return d.name == item.name.name; });
      if (def == defs.end()) {
        std::vector<std::string> names;
        for (const ConfigItemDef &d : defs)
          names.push_back(d.name);
        std::string hint = didYouMean(item.name.name, names);
        if (hint.empty())
          hint = "the entries of " + where + " are " + joinNames(names);
        diag_.error(item.name.loc, "unknown entry '" + item.name.name + "' in " + where, hint);
        ok = false;
        continue;
      }
      if (auto [it, inserted] = seen.emplace(item.name.name, item.name.loc); !inserted) {
        duplicate(item.name, it->second);
        ok = false;
        continue;
      }
      ResolvedItem resolved;
      resolved.def = &*def;
      resolved.loc = item.name.loc;
      if (item.hasBlock && def->children.empty()) {
        diag_.error(item.name.loc, "'" + item.name.name + "' takes no block",
                    "write " + exampleOf(*def));
        ok = false;
        continue;
      }
      if (!def->children.empty()) {
        if (!item.hasBlock || !item.args.empty()) {
          // `augment flip` reads as two entries; take the second as meant inside.
          const Item *next = &item + 1 != &*items.end() ? &item + 1 : nullptr;
          bool swallowed = next != nullptr && !item.hasBlock && item.args.empty() &&
                           next->name.loc.line == item.name.loc.line &&
                           std::any_of(def->children.begin(), def->children.end(),
                                       [&](const ConfigItemDef &c) {
                                         return c.name == next->name.name;
                                       });
          std::vector<std::string> children;
          for (const ConfigItemDef &c : def->children)
            children.push_back(c.name);
          diag_.error(item.name.loc, "'" + item.name.name + "' takes a block of entries",
                      swallowed ? "write " + item.name.name + " { " + next->name.name + " }"
                                : "write " + item.name.name + " { … } with entries among " +
                                      joinNames(children, "or"));
          ok = false;
          if (swallowed)
            skip = next;
          continue;
        }
        ok = checkItems(def->children, item.children, item.name.name, resolved.children) && ok;
        out.push_back(std::move(resolved));
        continue;
      }
      std::vector<const Arg *> positional, named;
      if (!splitArgs(item.args, positional, named, diag_)) {
        ok = false;
        continue;
      }
      AttrNaming naming = def->attrs.size() == 1 ? AttrNaming::SingleValue : AttrNaming::ByName;
      std::optional<Attrs> attrs = resolveAttrs(def->attrs, positional, named, item.name.name,
                                                item.name.loc, diag_, naming);
      if (!attrs) {
        ok = false;
        continue;
      }
      resolved.attrs = std::move(*attrs);
      out.push_back(std::move(resolved));
    }
    return ok;
  }

  /// The attributes of entry `name` in `items`: as written, or its defaults
  /// when the entry is not optional, or null.
  static const ResolvedItem *findItem(const std::vector<ResolvedItem> &items,
                                      const std::string &name) {
    for (const ResolvedItem &i : items)
      if (i.def->name == name)
        return &i;
    return nullptr;
  }

  static Attrs itemAttrs(const ConfigBlockDef &block, const std::vector<ResolvedItem> &items,
                         const std::string &name) {
    if (const ResolvedItem *i = findItem(items, name))
      return i->attrs;
    Attrs attrs;
    for (const ConfigItemDef &def : block.items)
      if (def.name == name)
        for (const AttrSpec &a : def.attrs)
          if (a.defaultValue)
            attrs.set(a.name, *a.defaultValue);
    return attrs;
  }

  /// A batch's tensors must stay within 2^40 numbers, as every size does.
  bool checkBatchFits(const Model &model, int64_t batch, const ResolvedItem *item,
                      const ConfigDecl &decl) {
    if (batch <= model.maxBatch())
      return true;
    int64_t widest = model.widestValue();
    diag_.error(item ? item->loc : decl.keyword.loc,
                "batch " + withThousands(batch) + " is too large for model '" + model.name +
                    "': its widest value holds " + withThousands(widest) +
                    " numbers per example, and no tensor may hold more than 2^40",
                "use a batch of at most " + withThousands(model.maxBatch()));
    return false;
  }

  bool checkData(const ConfigDecl &decl, const Model *model, DataSpec &data) {
    const ConfigBlockDef &block = *findConfigBlock("data");
    std::vector<ResolvedItem> items;
    bool ok = checkItems(block.items, decl.items, "data", items);
    data.declared = true;
    data.loc = decl.keyword.loc;
    data.label = decl.label ? decl.label->name : "";
    if (!ok)
      return false;
    if (const ResolvedItem *path = findItem(items, "path")) {
      data.path = path->attrs.getString("dir");
      data.pathLoc = path->loc;
    }
    data.batch = itemAttrs(block, items, "batch").getInt("size");
    if (model && !checkBatchFits(*model, data.batch, findItem(items, "batch"), decl))
      return false;
    if (const ResolvedItem *shuffle = findItem(items, "shuffle"))
      data.shuffle = shuffle->attrs.getBool("enabled");
    if (const ResolvedItem *normalize = findItem(items, "normalize")) {
      data.mean = normalize->attrs.getFloat("mean");
      data.std = normalize->attrs.getFloat("std");
    }
    if (const ResolvedItem *validation = findItem(items, "validation"))
      data.validation = validation->attrs.getFloat("fraction");
    if (const ResolvedItem *augment = findItem(items, "augment")) {
      auto take = [&](const char *name, std::optional<Applied> &slot) {
        if (const ResolvedItem *i = findItem(augment->children, name))
          slot = Applied{name, i->attrs, i->loc};
      };
      take("crop", data.augment.crop);
      take("shift", data.augment.shift);
      take("rotate", data.augment.rotate);
      take("flip", data.augment.flip);
      ok = checkAugmentFitsModel(*augment, model, data.augment);
    }
    return ok;
  }

  /// Image augmentations need an image-shaped input ([C, H, W] or [H, W]),
  /// and a crop must produce the size the model takes.
  bool checkAugmentFitsModel(const ResolvedItem &augment, const Model *model,
                             const Augment &spec) {
    if (model == nullptr || model->inputs.empty() ||
        (!spec.crop && !spec.shift && !spec.rotate && !spec.flip))
      return true;
    const ModelValue &input = model->values[model->inputs[0]];
    const Shape &shape = input.shape;
    if (shape.rank() != 3 && shape.rank() != 4) {
      diag_.error(augment.loc,
                  "augmentations transform images, but model " + model->name + " takes " +
                      shape.str(),
                  "declare the input as an image, e.g. x: [1, 28, 28], and flatten inside");
      return false;
    }
    if (spec.crop) {
      int64_t size = spec.crop->attrs.getInt("size");
      int64_t h = shape.dims[shape.rank() - 2], w = shape.dims[shape.rank() - 1];
      if (size != h || size != w) {
        diag_.error(spec.crop->loc,
                    "crop(" + std::to_string(size) + ") makes " + std::to_string(size) + "×" +
                        std::to_string(size) + " images but model " + model->name + " takes " +
                        shape.str(),
                    "crop to the model's input size after padding, e.g. crop(" +
                        std::to_string(h) + ", padding=2)");
        return false;
      }
    }
    return true;
  }

  bool checkTrain(const ConfigDecl &decl, TrainSpec &train) {
    const ConfigBlockDef &block = *findConfigBlock("train");
    bool ok = true;
    if (decl.label) {
      diag_.error(decl.label->loc, "train takes no name", "write train { epochs 10 }");
      ok = false;
    }
    std::vector<ResolvedItem> items;
    ok = checkItems(block.items, decl.items, "train", items) && ok;
    if (!ok)
      return false;
    train.epochs = itemAttrs(block, items, "epochs").getInt("count");
    train.seed = itemAttrs(block, items, "seed").getInt("value");
    return true;
  }

  const Module &module_;
  const SourceManager &sources_;
  Diag &diag_;
  bool blocksFailed_ = false;
};

} // namespace

std::optional<Program> analyze(const Module &module, const SourceManager &sources, Diag &diag) {
  diag.defer();
  std::optional<Program> program = Checker(module, sources, diag).run();
  diag.flush();
  return program;
}

} // namespace nnc
