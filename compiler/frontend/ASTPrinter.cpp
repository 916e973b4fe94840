// ASTPrinter.cpp — `--emit=ast`: the syntax tree as an indented outline,
// declarations in source order, each node with its line:column.
#include "frontend/AST.h"

#include <algorithm>
#include <functional>

namespace nnc {
namespace {

class Printer {
public:
  explicit Printer(std::ostream &out) : out_(out) {}

  void line(int depth, const std::string &text, SourceLoc loc) {
    out_ << std::string(static_cast<size_t>(depth) * 2, ' ') << text;
    if (loc.valid())
      out_ << " @" << loc.line << ":" << loc.column;
    out_ << "\n";
  }

  static std::string quote(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\')
        out += '\\';
      if (c == '\n')
        out += "\\n";
      else if (c == '\t')
        out += "\\t";
      else
        out += c;
    }
    return out + "\"";
  }

  void args(int depth, const std::vector<Arg> &args) {
    for (const Arg &a : args) {
      if (a.name) {
        line(depth, "NamedArg " + a.name->name, a.loc);
        expr(depth + 1, *a.value);
      } else {
        expr(depth, *a.value);
      }
    }
  }

  void stage(int depth, const Stage &s, const char *kind = "Layer") {
    std::string text = kind + (" " + s.callee.name);
    if (s.label)
      text += " label=" + s.label->name;
    line(depth, text, s.callee.loc);
    args(depth + 1, s.args);
  }

  void expr(int depth, const Expr &e) {
    switch (e.kind) {
    case ExprKind::Int:
      line(depth, "Int " + e.text, e.loc);
      break;
    case ExprKind::Float:
      line(depth, "Float " + e.text, e.loc);
      break;
    case ExprKind::String:
      line(depth, "String " + quote(e.text), e.loc);
      break;
    case ExprKind::Bool:
      line(depth, std::string("Bool ") + (e.boolValue ? "true" : "false"), e.loc);
      break;
    case ExprKind::Name:
      line(depth, "Name " + e.text, e.loc);
      break;
    case ExprKind::Call:
      line(depth, "Call " + e.text, e.loc);
      args(depth + 1, e.args);
      break;
    case ExprKind::List:
      line(depth, "List", e.loc);
      for (const ExprPtr &o : e.operands)
        expr(depth + 1, *o);
      break;
    case ExprKind::Neg:
      line(depth, "Neg", e.loc);
      expr(depth + 1, *e.operands[0]);
      break;
    case ExprKind::MatMul:
      line(depth, "MatMul", e.loc);
      for (const ExprPtr &o : e.operands)
        expr(depth + 1, *o);
      break;
    case ExprKind::Chain:
      line(depth, "Chain", e.loc);
      expr(depth + 1, *e.operands[0]);
      for (const Stage &s : e.stages)
        stage(depth + 1, s);
      break;
    }
  }

  void item(int depth, const Item &i) {
    line(depth, "Entry " + i.name.name + (i.hasBlock ? " {}" : ""), i.name.loc);
    args(depth + 1, i.args);
    for (const Item &child : i.children)
      item(depth + 1, child);
  }

  void statements(const std::vector<Stmt> &body) {
    for (const Stmt &s : body) {
      switch (s.kind) {
      case StmtKind::Assign:
        line(2, "Assign " + s.target->name, s.loc);
        break;
      case StmtKind::Return:
        line(2, "Return", s.loc);
        break;
      case StmtKind::Expr:
        line(2, "Expr", s.loc);
        break;
      }
      expr(3, *s.value);
    }
  }

  void block(const BlockDecl &b) {
    line(1, "Block " + b.name.name, b.loc);
    for (const BlockParam &p : b.params) {
      line(2, "Param " + p.name.name, p.name.loc);
      if (p.defaultValue)
        expr(3, *p.defaultValue);
    }
    for (const Ident &i : b.inputs)
      line(2, "Input " + i.name, i.loc);
    statements(b.body);
  }

  void model(const ModelDecl &m) {
    line(1, "Model " + m.name.name, m.loc);
    for (const Param &p : m.params) {
      std::string shape = "[";
      for (size_t i = 0; i < p.shape.size(); ++i)
        shape += (i ? ", " : "") + std::to_string(p.shape[i]);
      line(2, "Input " + p.name.name + ": " + shape + "]", p.name.loc);
    }
    statements(m.body);
  }

private:
  std::ostream &out_;
};

} // namespace

void printAST(const Module &module, std::ostream &out) {
  Printer p(out);
  out << "Module\n";
  // Declarations are kept by kind; print them in the order they were written.
  std::vector<std::pair<SourceLoc, std::function<void()>>> decls;
  for (const ModelDecl &m : module.models)
    decls.emplace_back(m.loc, [&p, &m] { p.model(m); });
  for (const BlockDecl &b : module.blocks)
    decls.emplace_back(b.loc, [&p, &b] { p.block(b); });
  for (const ConfigDecl &c : module.configs)
    decls.emplace_back(c.loc, [&p, &c] {
      p.line(1, "Config " + c.keyword.name + (c.label ? " " + c.label->name : ""), c.loc);
      for (const Item &i : c.items)
        p.item(2, i);
    });
  for (const SettingDecl &s : module.settings)
    decls.emplace_back(s.loc, [&p, &s] {
      p.line(1, "Setting " + s.keyword.name, s.loc);
      p.stage(2, s.value, "Call");
    });
  std::stable_sort(decls.begin(), decls.end(), [](const auto &a, const auto &b) {
    return a.first.line != b.first.line ? a.first.line < b.first.line
                                        : a.first.column < b.first.column;
  });
  for (const auto &d : decls)
    d.second();
}

} // namespace nnc
