// Attr.h — attribute schemas and values.
//
// Layers, losses, optimizers, schedules and configuration entries all take
// attributes the same way: positionally in schema order or by name, with
// defaults, required ones, types and ranges declared in one AttrSpec each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace nnc {

enum class AttrType {
  Int,     ///< 64
  Float,   ///< 0.5 (an integer is accepted)
  Bool,    ///< true / false
  String,  ///< "data/mnist"
  IntList, ///< [3, 3] (a single integer n is accepted as [n])
};

/// The type as named in messages ("an integer", …).
const char *describe(AttrType type);

/// A resolved attribute value.
struct AttrValue {
  std::variant<int64_t, double, bool, std::string, std::vector<int64_t>> value;

  int64_t asInt() const { return std::get<int64_t>(value); }
  double asFloat() const { return std::get<double>(value); }
  bool asBool() const { return std::get<bool>(value); }
  const std::string &asString() const { return std::get<std::string>(value); }
  const std::vector<int64_t> &asIntList() const { return std::get<std::vector<int64_t>>(value); }
  /// As written in a .nn file: 64, 0.001, true, "x", [3, 3].
  std::string str() const;
};

/// An inclusive or exclusive bound on a numeric attribute.
struct Bound {
  double value;
  bool inclusive;
};

/// One attribute of a schema.
struct AttrSpec {
  std::string name;
  AttrType type;
  std::optional<AttrValue> defaultValue; ///< absent and not required: attribute is optional
  bool required = false;
  std::optional<Bound> min, max;
  std::vector<std::string> choices; ///< for strings: the allowed values
  std::string doc;                  ///< one line, for --help of the language and the REPL
  size_t maxItems = 0;              ///< for lists: most elements (0: no limit); min/max bound each
};

/// Resolved attributes in schema order; optional ones may be absent.
class Attrs {
public:
  void set(const std::string &name, AttrValue value);
  bool has(const std::string &name) const { return find(name) != nullptr; }
  const AttrValue &get(const std::string &name) const; ///< the attribute must exist
  int64_t getInt(const std::string &name) const { return get(name).asInt(); }
  double getFloat(const std::string &name) const { return get(name).asFloat(); }
  bool getBool(const std::string &name) const { return get(name).asBool(); }
  const std::string &getString(const std::string &name) const { return get(name).asString(); }
  const std::vector<int64_t> &getIntList(const std::string &name) const {
    return get(name).asIntList();
  }
  const std::vector<std::pair<std::string, AttrValue>> &entries() const { return entries_; }
  /// `name=value, …`, or "" when empty.
  std::string str() const;

private:
  const AttrValue *find(const std::string &name) const;
  std::vector<std::pair<std::string, AttrValue>> entries_;
};

// Short constructors for schema tables.
AttrSpec intAttr(std::string name, std::optional<int64_t> def, std::string doc,
                 std::optional<Bound> min = {}, std::optional<Bound> max = {});
AttrSpec floatAttr(std::string name, std::optional<double> def, std::string doc,
                   std::optional<Bound> min = {}, std::optional<Bound> max = {});
AttrSpec boolAttr(std::string name, bool def, std::string doc);
AttrSpec stringAttr(std::string name, std::optional<std::string> def, std::string doc,
                    std::vector<std::string> choices = {});
AttrSpec intListAttr(std::string name, std::optional<std::vector<int64_t>> def, std::string doc);
/// A 2-D window attribute of convolution and pooling: `3` or `[3, 5]`, each
/// element at least `min`.
AttrSpec windowAttr(std::string name, std::optional<std::vector<int64_t>> def, std::string doc,
                    int64_t min);
/// Marks an attribute as required (no default).
AttrSpec required(AttrSpec spec);
/// Marks an attribute as optional without a default (absent unless given).
AttrSpec optional(AttrSpec spec);

inline Bound atLeast(double v) { return {v, true}; }
inline Bound above(double v) { return {v, false}; }
inline Bound atMost(double v) { return {v, true}; }
inline Bound below(double v) { return {v, false}; }

} // namespace nnc
