// Graph.cpp — building, verifying and printing the graph IR.
#include "graph/Graph.h"

#include <fmt/format.h>

#include <set>
#include <stdexcept>

namespace nnc {

const char *describe(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::I64:
    return "i64";
  }
  return "?";
}

namespace {

std::string uniqueName(const std::set<std::string> &taken, const std::string &base) {
  std::string name = base;
  for (int k = 2; taken.count(name); ++k)
    name = base + "#" + std::to_string(k);
  return name;
}

} // namespace

void Graph::rename(ValueId id, std::string name) {
  Value &v = values.at(static_cast<size_t>(id));
  names_.erase(v.name);
  v.name = uniqueName(names_, name);
  names_.insert(v.name);
}

ValueId Graph::addValue(Value v) {
  if (v.kind == ValueKind::Computed)
    v.name = uniqueName(names_, v.name);
  names_.insert(v.name);
  values.push_back(std::move(v));
  return static_cast<ValueId>(values.size() - 1);
}

ValueId Graph::apply(const OpDef &op, std::vector<ValueId> inputs, Attrs attrs, std::string layer,
                     SourceLoc loc, size_t dataInputs, std::string valueName) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < dataInputs; ++i)
    shapes.push_back(value(inputs[i]).shape);
  ShapeResult result = op.inferShape(ShapeQuery{shapes, attrs, layer});
  if (const auto *err = std::get_if<ShapeError>(&result))
    throw std::logic_error("internal error: graph node " + layer + " (" + op.name +
                           ") fails its shape rule: " + err->message);
  ValueId out = addValue({ValueKind::Computed, DType::F32, std::get<Shape>(result),
                          valueName.empty() ? layer : valueName, static_cast<int>(nodes.size()),
                          {}});
  nodes.push_back({&op, std::move(attrs), std::move(inputs), out, std::move(layer), loc,
                   dataInputs});
  return out;
}

std::vector<ValueId> Graph::params() const {
  std::vector<ValueId> out;
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].kind == ValueKind::Param)
      out.push_back(static_cast<ValueId>(i));
  return out;
}

std::string verifyGraph(const Graph &g) {
  std::set<std::string> names;
  std::vector<bool> available(g.values.size(), false);
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value &v = g.values[i];
    if (!names.insert(v.name).second)
      return "two values are named '" + v.name + "'";
    if (v.kind != ValueKind::Computed)
      available[i] = true;
    else if (v.node < 0 || static_cast<size_t>(v.node) >= g.nodes.size() ||
             g.nodes[static_cast<size_t>(v.node)].output != static_cast<ValueId>(i))
      return "value '" + v.name + "' names a node that does not produce it";
  }
  for (const Node &n : g.nodes) {
    if (n.dataInputs > n.inputs.size())
      return "node " + n.layer + " has more data inputs than inputs";
    std::vector<Shape> shapes;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      ValueId in = n.inputs[i];
      if (in < 0 || static_cast<size_t>(in) >= g.values.size())
        return "node " + n.layer + " reads a value that does not exist";
      if (!available[static_cast<size_t>(in)])
        return "node " + n.layer + " reads '" + g.value(in).name + "' before it is computed";
      if (i < n.dataInputs)
        shapes.push_back(g.value(in).shape);
    }
    ShapeResult r = n.op->inferShape(ShapeQuery{shapes, n.attrs, n.layer});
    if (std::holds_alternative<ShapeError>(r))
      return "node " + n.layer + " fails its shape rule: " + std::get<ShapeError>(r).message;
    if (!(std::get<Shape>(r) == g.value(n.output).shape))
      return "node " + n.layer + " has shape " + g.value(n.output).shape.str() +
             " but its rule gives " + std::get<Shape>(r).str();
    available[static_cast<size_t>(n.output)] = true;
  }
  for (ValueId out : g.outputs)
    if (out < 0 || static_cast<size_t>(out) >= g.values.size())
      return "an output does not exist";
  return "";
}

namespace {

const char *kindName(ValueKind kind) {
  switch (kind) {
  case ValueKind::Input:
    return "input";
  case ValueKind::Label:
    return "label";
  case ValueKind::Param:
    return "param";
  case ValueKind::State:
    return "state";
  case ValueKind::Computed:
    return "value";
  }
  return "?";
}

std::string typeOf(const Value &v) { return std::string(describe(v.dtype)) + v.shape.str(); }

} // namespace

void printGraph(const Graph &g, const SourceManager &sources, std::ostream &out) {
  out << "graph " << g.name << " {\n";
  for (const Value &v : g.values) {
    if (v.kind == ValueKind::Computed)
      continue;
    out << fmt::format("  {} %{}: {}", kindName(v.kind), v.name, typeOf(v));
    if (v.kind == ValueKind::Param || v.kind == ValueKind::State)
      out << " = " << v.init.str();
    out << "\n";
  }
  for (const Node &n : g.nodes) {
    std::string args;
    for (ValueId in : n.inputs)
      args += (args.empty() ? "%" : ", %") + g.value(in).name;
    std::string attrs = n.attrs.str();
    std::string line = fmt::format("  %{}: {} = {}{}({})", g.value(n.output).name,
                                   typeOf(g.value(n.output)), n.op->name,
                                   attrs.empty() ? "" : "[" + attrs + "]", args);
    if (n.loc.valid())
      line += fmt::format("    # {}:{}:{}", sources.file(n.loc.file).path(), n.loc.line,
                          n.loc.column);
    out << line << "\n";
  }
  std::string outs;
  for (ValueId o : g.outputs)
    outs += (outs.empty() ? "%" : ", %") + g.value(o).name;
  out << "  return " << outs << "\n}\n";
}

} // namespace nnc
