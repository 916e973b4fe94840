// Attributes.cpp — constant evaluation of attribute values and schema checks.
#include "frontend/Attributes.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace nnc {
namespace {

/// What an expression is, for "expected … but got …" messages.
std::string describeExpr(const Expr &e) {
  switch (e.kind) {
  case ExprKind::Int:
    return "the integer " + e.text;
  case ExprKind::Float:
    return "the number " + e.text;
  case ExprKind::String:
    return "a string";
  case ExprKind::Bool:
    return e.boolValue ? "true" : "false";
  case ExprKind::Name:
    return "the name '" + e.text + "'";
  case ExprKind::Call:
    return "a call of '" + e.text + "'";
  case ExprKind::List:
    return "a list";
  case ExprKind::Neg:
    return e.operands.size() == 1 && (e.operands[0]->kind == ExprKind::Int ||
                                      e.operands[0]->kind == ExprKind::Float)
               ? "the number -" + e.operands[0]->text
               : "a negated expression";
  case ExprKind::MatMul:
    return "a matrix product";
  case ExprKind::Chain:
    return "a chain of layers";
  }
  return "an expression";
}

const Expr &resolve(const Expr &e, const Constants *constants);

/// A number written as a literal, possibly negated, or a constant standing
/// for one.
std::optional<double> numberOf(const Expr &e, bool *isInt, int64_t *intValue,
                               const Constants *constants = nullptr) {
  if (e.kind == ExprKind::Name && constants != nullptr && &resolve(e, constants) != &e)
    return numberOf(resolve(e, constants), isInt, intValue, constants);
  if (e.kind == ExprKind::Int) {
    *isInt = true;
    *intValue = e.intValue;
    return static_cast<double>(e.intValue);
  }
  if (e.kind == ExprKind::Float) {
    *isInt = false;
    return e.floatValue;
  }
  if (e.kind == ExprKind::Neg && e.operands.size() == 1) {
    std::optional<double> v = numberOf(*e.operands[0], isInt, intValue, constants);
    if (v) {
      *intValue = -*intValue;
      return -*v;
    }
  }
  return std::nullopt;
}

std::string fmtBound(double v) { return fmt::format("{}", v); }

/// Follows names bound in `constants` to the expressions they stand for.
const Expr &resolve(const Expr &e, const Constants *constants) {
  if (e.kind == ExprKind::Name && constants != nullptr)
    if (auto it = constants->find(e.text); it != constants->end())
      return *it->second;
  return e;
}

/// Converts `written` to a value of `spec`'s type, checking its range.
/// Messages point at `written`, even when it names a constant.
std::optional<AttrValue> evalAttr(const AttrSpec &spec, const Expr &written,
                                  const std::string &what, AttrNaming naming,
                                  const Constants *constants, Diag &diag) {
  const Expr &e = resolve(written, constants);
  std::string subject =
      naming == AttrNaming::SingleValue ? what : "attribute '" + spec.name + "' of " + what;
  auto mismatch = [&](std::string hint = {}) -> std::optional<AttrValue> {
    std::string got = describeExpr(e);
    if (&e != &written)
      got += " (the value of '" + written.text + "')";
    else if (e.kind == ExprKind::Name)
      hint = hint.empty() ? "'" + e.text + "' is not a constant in scope" : hint;
    diag.error(written.loc, subject + " expects " + describe(spec.type) + " but got " + got,
               std::move(hint));
    return std::nullopt;
  };
  bool isInt = false;
  int64_t intValue = 0;
  std::optional<double> number = numberOf(e, &isInt, &intValue, constants);
  AttrValue value;
  switch (spec.type) {
  case AttrType::Int:
    if (!number || !isInt)
      return mismatch(number ? "write a whole number" : "");
    value.value = intValue;
    break;
  case AttrType::Float:
    if (!number) {
      char *end = nullptr;
      if (e.kind == ExprKind::String && !e.text.empty() &&
          (std::strtod(e.text.c_str(), &end), *end == '\0'))
        return mismatch("remove the quotes: " + e.text);
      return mismatch();
    }
    value.value = *number;
    break;
  case AttrType::Bool:
    if (e.kind != ExprKind::Bool)
      return mismatch();
    value.value = e.boolValue;
    break;
  case AttrType::String:
    if (e.kind != ExprKind::String)
      return mismatch(e.kind == ExprKind::Name ? "strings are written in double quotes: \"" +
                                                     e.text + "\""
                                               : "");
    value.value = e.text;
    break;
  case AttrType::IntList: {
    std::vector<int64_t> list;
    if (number && isInt) {
      list.push_back(intValue);
    } else if (e.kind == ExprKind::List) {
      for (const ExprPtr &written : e.operands) {
        const Expr &element = resolve(*written, constants);
        bool elementIsInt = false;
        int64_t elementValue = 0;
        if (!numberOf(element, &elementIsInt, &elementValue) || !elementIsInt) {
          diag.error(written->loc, subject + " expects a list of integers, but one element is " +
                                       (element.kind == ExprKind::List ? std::string("a list")
                                                                       : describeExpr(element)));
          return std::nullopt;
        }
        list.push_back(elementValue);
      }
    } else {
      return mismatch();
    }
    if (list.empty() || (spec.maxItems != 0 && list.size() > spec.maxItems)) {
      diag.error(written.loc, subject + " takes " +
                                  (spec.maxItems == 2 ? std::string("one number or two")
                                                      : "at least one number") +
                                  " but got " + std::to_string(list.size()),
                 spec.maxItems == 2 ? "write k for k×k, or [height, width]" : "");
      return std::nullopt;
    }
    for (int64_t element : list) {
      if (spec.min && element < spec.min->value) {
        diag.error(written.loc, subject + " must be at least " + fmtBound(spec.min->value) +
                                    " but is " + std::to_string(element));
        return std::nullopt;
      }
      if (spec.max && element > spec.max->value) {
        diag.error(written.loc, subject + " must be at most " + fmtBound(spec.max->value) +
                                    " but is " + std::to_string(element));
        return std::nullopt;
      }
    }
    value.value = std::move(list);
    break;
  }
  }
  // Range and choice checks.
  auto outOfRange = [&](const std::string &relation, double bound) {
    std::string of = &e != &written ? " (the value of '" + written.text + "')" : "";
    diag.error(written.loc, subject + " must be " + relation + " " + fmtBound(bound) +
                                " but is " + value.str() + of);
    return std::nullopt;
  };
  if (number && spec.type != AttrType::IntList) {
    if (spec.min && (spec.min->inclusive ? *number < spec.min->value : *number <= spec.min->value))
      return outOfRange(spec.min->inclusive ? "at least" : "greater than", spec.min->value);
    if (spec.max && (spec.max->inclusive ? *number > spec.max->value : *number >= spec.max->value))
      return outOfRange(spec.max->inclusive ? "at most" : "less than", spec.max->value);
  }
  if (spec.type == AttrType::String && !spec.choices.empty()) {
    const std::string &s = value.asString();
    if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
      std::string list;
      for (const std::string &c : spec.choices)
        list += (list.empty() ? "'" : ", '") + c + "'";
      diag.error(e.loc, subject + " must be one of " + list + " but is '" + s + "'",
                 didYouMean(s, spec.choices));
      return std::nullopt;
    }
  }
  return value;
}

std::vector<std::string> attrNames(const std::vector<AttrSpec> &schema) {
  std::vector<std::string> names;
  for (const AttrSpec &a : schema)
    names.push_back(a.name);
  return names;
}

} // namespace

bool splitArgs(const std::vector<Arg> &args, std::vector<const Arg *> &positional,
               std::vector<const Arg *> &named, Diag &diag) {
  const Arg *firstNamed = nullptr;
  for (const Arg &a : args) {
    if (a.name) {
      named.push_back(&a);
      if (firstNamed == nullptr)
        firstNamed = &a;
    } else if (firstNamed != nullptr) {
      Diagnostic d{Severity::Error, a.loc, "positional argument after a named one",
                   {"write positional arguments first, or name this one too"}, {}};
      d.notes.push_back({firstNamed->loc, "the first named argument"});
      diag.report(d);
      return false;
    } else {
      positional.push_back(&a);
    }
  }
  return true;
}

std::string describeSchema(const std::vector<AttrSpec> &schema) {
  std::string out;
  for (const AttrSpec &a : schema) {
    out += out.empty() ? "" : ", ";
    out += a.name;
    if (a.defaultValue)
      out += "=" + a.defaultValue->str();
  }
  return out;
}

std::optional<Attrs> resolveAttrs(const std::vector<AttrSpec> &schema,
                                  const std::vector<const Arg *> &positional,
                                  const std::vector<const Arg *> &named, const std::string &what,
                                  SourceLoc callLoc, Diag &diag, AttrNaming naming,
                                  const Constants *constants) {
  if (schema.size() == 1 && schema[0].type == AttrType::IntList && positional.size() > 1 &&
      named.empty()) {
    // reshape(1, 28, 28): the elements of the only attribute, a list.
    std::vector<int64_t> list;
    for (const Arg *arg : positional) {
      const Expr &e = resolve(*arg->value, constants);
      bool isInt = false;
      int64_t value = 0;
      if (!numberOf(e, &isInt, &value) || !isInt) {
        diag.error(arg->loc, "attribute '" + schema[0].name + "' of " + what +
                                 " is a list of integers, but this is " + describeExpr(e));
        return std::nullopt;
      }
      list.push_back(value);
    }
    Attrs attrs;
    attrs.set(schema[0].name, AttrValue{std::move(list)});
    return attrs;
  }
  bool ok = true;
  std::vector<const Arg *> given(schema.size(), nullptr);
  for (size_t i = 0; i < positional.size(); ++i) {
    if (i >= schema.size()) {
      std::string takes = schema.empty() ? what + " takes no attributes"
                                         : what + " takes at most " +
                                               std::to_string(schema.size()) + " (" +
                                               describeSchema(schema) + ")";
      diag.error(positional[i]->loc, "too many arguments: " + takes);
      ok = false;
      break;
    }
    given[i] = positional[i];
  }
  for (const Arg *arg : named) {
    const std::string &name = arg->name->name;
    auto it = std::find_if(schema.begin(), schema.end(),
                           [&](const AttrSpec &a) { return a.name == name; });
    if (it == schema.end()) {
      std::string hint = didYouMean(name, attrNames(schema));
      if (hint.empty())
        hint = schema.empty() ? what + " takes no attributes"
                              : "the attributes of " + what + " are " + describeSchema(schema);
      diag.error(arg->name->loc, what + " has no attribute '" + name + "'", hint);
      ok = false;
      continue;
    }
    size_t index = static_cast<size_t>(it - schema.begin());
    if (given[index] != nullptr) {
      Diagnostic d{Severity::Error, arg->name->loc, "attribute '" + name + "' is given twice", {},
                   {}};
      d.notes.push_back({given[index]->loc, "first given here"});
      diag.report(d);
      ok = false;
      continue;
    }
    given[index] = arg;
  }
  Attrs attrs;
  for (size_t i = 0; i < schema.size(); ++i) {
    const AttrSpec &spec = schema[i];
    if (given[i] != nullptr) {
      std::optional<AttrValue> v =
          evalAttr(spec, *given[i]->value, what, naming, constants, diag);
      if (v)
        attrs.set(spec.name, std::move(*v));
      else
        ok = false;
    } else if (spec.defaultValue) {
      attrs.set(spec.name, *spec.defaultValue);
    } else if (spec.required && ok) {
      if (naming == AttrNaming::SingleValue)
        diag.error(callLoc, what + " needs a value (" + spec.doc + ")");
      else
        diag.error(callLoc, what + " needs attribute '" + spec.name + "' (" + spec.doc + ")",
                   "for example " + what.substr(what.rfind(' ') + 1) + "(" + spec.name + "=…)");
      ok = false;
    }
  }
  if (!ok)
    return std::nullopt;
  return attrs;
}

} // namespace nnc
