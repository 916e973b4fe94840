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

namespace {

/// `s` as a Graphviz string literal's contents.
std::string dotEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

} // namespace

void printDot(const Graph &g, std::ostream &out) {
  out << "digraph \"" << dotEscape(g.name) << "\" {\n"
      << "  rankdir=TB;\n"
      << "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", "
         "color=\"#4a6fa5\", fontname=\"Helvetica\", fontsize=11];\n"
      << "  edge [color=\"#555555\", fontname=\"Helvetica\", fontsize=9];\n";
  // Inputs and labels are ellipses; each node is a box naming its layer and
  // op, with its attributes and the parameters it owns; edges carry shapes.
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value &v = g.values[i];
    if (v.kind == ValueKind::Input || v.kind == ValueKind::Label)
      out << fmt::format("  v{} [label=\"{}\\n{}\", shape=ellipse, fillcolor=\"#fdf3e1\", "
                         "color=\"#b7791f\"];\n",
                         i, dotEscape(v.name), dotEscape(typeOf(v)));
  }
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node &n = g.nodes[k];
    std::string label = dotEscape(n.layer.empty() ? g.value(n.output).name : n.layer) + ": " +
                        dotEscape(n.op->name);
    if (std::string attrs = n.attrs.str(); !attrs.empty())
      label += "\\n" + dotEscape(attrs);
    for (size_t j = n.dataInputs; j < n.inputs.size(); ++j) {
      const Value &p = g.value(n.inputs[j]);
      if (p.kind == ValueKind::Param || p.kind == ValueKind::State)
        label += "\\n" + dotEscape(p.name) + " " + dotEscape(p.shape.str());
    }
    out << fmt::format("  n{} [label=\"{}\"];\n", k, label);
  }
  auto source = [&](ValueId id) {
    const Value &v = g.value(id);
    return v.kind == ValueKind::Computed ? fmt::format("n{}", v.node) : fmt::format("v{}", id);
  };
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node &n = g.nodes[k];
    for (size_t j = 0; j < n.inputs.size(); ++j) {
      const Value &v = g.value(n.inputs[j]);
      if (v.kind == ValueKind::Param || v.kind == ValueKind::State)
        continue;
      out << fmt::format("  {} -> n{} [label=\" {}\"];\n", source(n.inputs[j]), k,
                         dotEscape(v.shape.str()));
    }
  }
  for (size_t o = 0; o < g.outputs.size(); ++o) {
    const Value &v = g.value(g.outputs[o]);
    out << fmt::format("  out{} [label=\"output\\n{}\", shape=ellipse, fillcolor=\"#e6f4ea\", "
                       "color=\"#2f855a\"];\n",
                       o, dotEscape(typeOf(v)));
    out << fmt::format("  {} -> out{} [label=\" {}\"];\n", source(g.outputs[o]), o,
                       dotEscape(v.shape.str()));
  }
  out << "}\n";
}

} // namespace nnc
