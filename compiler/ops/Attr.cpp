// Attr.cpp — attribute values and schema helpers.
#include "ops/Attr.h"

#include <fmt/format.h>

#include <stdexcept>

namespace nnc {

const char *describe(AttrType type) {
  switch (type) {
  case AttrType::Int:
    return "an integer";
  case AttrType::Float:
    return "a number";
  case AttrType::Bool:
    return "true or false";
  case AttrType::String:
    return "a string";
  case AttrType::IntList:
    return "an integer or a list of integers";
  }
  return "a value";
}

std::string AttrValue::str() const {
  struct Printer {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return fmt::format("{}", v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string &v) const { return "\"" + v + "\""; }
    std::string operator()(const std::vector<int64_t> &v) const {
      return "[" + fmt::format("{}", fmt::join(v, ", ")) + "]";
    }
  };
  return std::visit(Printer{}, value);
}

void Attrs::set(const std::string &name, AttrValue value) {
  for (auto &[n, v] : entries_)
    if (n == name) {
      v = std::move(value);
      return;
    }
  entries_.emplace_back(name, std::move(value));
}

const AttrValue *Attrs::find(const std::string &name) const {
  for (const auto &[n, v] : entries_)
    if (n == name)
      return &v;
  return nullptr;
}

const AttrValue &Attrs::get(const std::string &name) const {
  const AttrValue *v = find(name);
  if (v == nullptr)
    throw std::logic_error("internal error: attribute '" + name + "' was not resolved");
  return *v;
}

std::string Attrs::str() const {
  std::string out;
  for (const auto &[n, v] : entries_)
    out += (out.empty() ? "" : ", ") + n + "=" + v.str();
  return out;
}

AttrSpec intAttr(std::string name, std::optional<int64_t> def, std::string doc,
                 std::optional<Bound> min, std::optional<Bound> max) {
  AttrSpec s{std::move(name), AttrType::Int, {}, false, min, max, {}, std::move(doc)};
  if (def)
    s.defaultValue = AttrValue{*def};
  return s;
}

AttrSpec floatAttr(std::string name, std::optional<double> def, std::string doc,
                   std::optional<Bound> min, std::optional<Bound> max) {
  AttrSpec s{std::move(name), AttrType::Float, {}, false, min, max, {}, std::move(doc)};
  if (def)
    s.defaultValue = AttrValue{*def};
  return s;
}

AttrSpec boolAttr(std::string name, bool def, std::string doc) {
  return AttrSpec{std::move(name), AttrType::Bool, AttrValue{def}, false, {}, {}, {},
                  std::move(doc)};
}

AttrSpec stringAttr(std::string name, std::optional<std::string> def, std::string doc,
                    std::vector<std::string> choices) {
  AttrSpec s{std::move(name), AttrType::String, {}, false, {}, {}, std::move(choices),
             std::move(doc)};
  if (def)
    s.defaultValue = AttrValue{*def};
  return s;
}

AttrSpec intListAttr(std::string name, std::optional<std::vector<int64_t>> def, std::string doc) {
  AttrSpec s{std::move(name), AttrType::IntList, {}, false, {}, {}, {}, std::move(doc)};
  if (def)
    s.defaultValue = AttrValue{*def};
  return s;
}

AttrSpec windowAttr(std::string name, std::optional<std::vector<int64_t>> def, std::string doc,
                    int64_t min) {
  AttrSpec s = intListAttr(std::move(name), std::move(def), std::move(doc));
  s.min = atLeast(static_cast<double>(min));
  s.max = atMost(1 << 20); // windows past a million pixels are mistakes, and overflow later
  s.maxItems = 2;
  return s;
}

AttrSpec required(AttrSpec spec) {
  spec.required = true;
  spec.defaultValue.reset();
  return spec;
}

AttrSpec optional(AttrSpec spec) {
  spec.required = false;
  spec.defaultValue.reset();
  return spec;
}

} // namespace nnc
