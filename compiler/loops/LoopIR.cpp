// LoopIR.cpp — constructors and the printer of the loop IR.
#include "loops/LoopIR.h"

#include <fmt/format.h>

namespace nnc::loops {

namespace {

std::shared_ptr<Expr> make(ExprKind k, Type t) {
  auto e = std::make_shared<Expr>();
  e->kind = k;
  e->type = t;
  return e;
}

bool isConst(const ExprRef &e, int64_t v) {
  return e->kind == ExprKind::Const && e->type == Type::I64 && e->i == v;
}

} // namespace

ExprRef f32(double v) {
  auto e = make(ExprKind::Const, Type::F32);
  e->f = v;
  return e;
}

ExprRef i64(int64_t v) {
  auto e = make(ExprKind::Const, Type::I64);
  e->i = v;
  return e;
}

ExprRef batch() { return make(ExprKind::Batch, Type::I64); }

ExprRef var(int v, Type t) {
  auto e = make(ExprKind::Var, t);
  e->var = v;
  return e;
}

ExprRef load(int buffer, ExprRef index) {
  auto e = make(ExprKind::Load, Type::F32);
  e->buffer = buffer;
  e->a = std::move(index);
  return e;
}

ExprRef unary(UnaryOp op, ExprRef a) {
  auto e = make(ExprKind::Unary, a->type);
  e->unary = op;
  e->a = std::move(a);
  return e;
}

ExprRef binary(BinaryOp op, ExprRef a, ExprRef b) {
  if (a->type == Type::I64 && b->type == Type::I64) { // fold index arithmetic
    if (a->kind == ExprKind::Const && b->kind == ExprKind::Const) {
      switch (op) {
      case BinaryOp::Add:
        return i64(a->i + b->i);
      case BinaryOp::Mul:
        return i64(a->i * b->i);
      case BinaryOp::Sub:
        return i64(a->i - b->i);
      case BinaryOp::Div:
      case BinaryOp::Max:
      case BinaryOp::Min:
        break;
      }
    }
    if (op == BinaryOp::Add && isConst(a, 0))
      return b;
    if ((op == BinaryOp::Add || op == BinaryOp::Sub) && isConst(b, 0))
      return a;
    if (op == BinaryOp::Mul && (isConst(a, 0) || isConst(b, 0)))
      return i64(0);
    if (op == BinaryOp::Mul && isConst(a, 1))
      return b;
    if (op == BinaryOp::Mul && isConst(b, 1))
      return a;
  }
  auto e = make(ExprKind::Binary, a->type);
  e->binary = op;
  e->a = std::move(a);
  e->b = std::move(b);
  return e;
}

ExprRef fma(ExprRef a, ExprRef b, ExprRef c) {
  auto e = make(ExprKind::Fma, Type::F32);
  e->a = std::move(a);
  e->b = std::move(b);
  e->c = std::move(c);
  return e;
}

ExprRef select(ExprRef positive, ExprRef ifPositive, ExprRef otherwise) {
  auto e = make(ExprKind::Select, Type::F32);
  e->a = std::move(positive);
  e->b = std::move(ifPositive);
  e->c = std::move(otherwise);
  return e;
}

ExprRef add(ExprRef a, ExprRef b) { return binary(BinaryOp::Add, std::move(a), std::move(b)); }
ExprRef mul(ExprRef a, ExprRef b) { return binary(BinaryOp::Mul, std::move(a), std::move(b)); }

Stmt block(std::vector<Stmt> body, std::string comment) {
  Stmt s;
  s.kind = StmtKind::Block;
  s.body = std::move(body);
  s.comment = std::move(comment);
  return s;
}

Stmt loop(int v, ExprRef extent, std::vector<Stmt> body) {
  Stmt s;
  s.kind = StmtKind::For;
  s.var = v;
  s.extent = std::move(extent);
  s.body = std::move(body);
  return s;
}

Stmt store(int buffer, ExprRef index, ExprRef value) {
  Stmt s;
  s.kind = StmtKind::Store;
  s.buffer = buffer;
  s.index = std::move(index);
  s.value = std::move(value);
  return s;
}

Stmt local(int v, ExprRef value) {
  Stmt s;
  s.kind = StmtKind::Local;
  s.var = v;
  s.value = std::move(value);
  return s;
}

Stmt assign(int v, ExprRef value) {
  Stmt s = local(v, std::move(value));
  s.kind = StmtKind::Assign;
  return s;
}

namespace {

const char *name(UnaryOp op) {
  switch (op) {
  case UnaryOp::Neg:
    return "neg";
  case UnaryOp::Exp:
    return "exp";
  case UnaryOp::Log:
    return "log";
  case UnaryOp::Sqrt:
    return "sqrt";
  case UnaryOp::Tanh:
    return "tanh";
  case UnaryOp::Erf:
    return "erf";
  case UnaryOp::Cos:
    return "cos";
  case UnaryOp::Floor:
    return "floor";
  }
  return "?";
}

const char *symbol(BinaryOp op) {
  switch (op) {
  case BinaryOp::Add:
    return "+";
  case BinaryOp::Sub:
    return "-";
  case BinaryOp::Mul:
    return "*";
  case BinaryOp::Div:
    return "/";
  case BinaryOp::Max:
    return "max";
  case BinaryOp::Min:
    return "min";
  }
  return "?";
}

class Printer {
public:
  Printer(const Function &f, std::ostream &out) : f_(f), out_(out) {}

  std::string expr(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Const:
      return e.type == Type::I64 ? std::to_string(e.i) : fmt::format("{}f", e.f);
    case ExprKind::Batch:
      return "N";
    case ExprKind::Var:
      return (e.type == Type::I64 ? "i" : "s") + std::to_string(e.var);
    case ExprKind::Load:
      return f_.buffers[static_cast<size_t>(e.buffer)].name + "[" + expr(*e.a) + "]";
    case ExprKind::Unary:
      return std::string(name(e.unary)) + "(" + expr(*e.a) + ")";
    case ExprKind::Binary:
      if (e.binary == BinaryOp::Max || e.binary == BinaryOp::Min)
        return std::string(symbol(e.binary)) + "(" + expr(*e.a) + ", " + expr(*e.b) + ")";
      return "(" + expr(*e.a) + " " + symbol(e.binary) + " " + expr(*e.b) + ")";
    case ExprKind::Fma:
      return "fma(" + expr(*e.a) + ", " + expr(*e.b) + ", " + expr(*e.c) + ")";
    case ExprKind::Select:
      return "(" + expr(*e.a) + " > 0 ? " + expr(*e.b) + " : " + expr(*e.c) + ")";
    }
    return "?";
  }

  void stmt(const Stmt &s, int depth) {
    std::string pad(static_cast<size_t>(depth) * 2, ' ');
    if (!s.comment.empty())
      out_ << pad << "// " << s.comment << "\n";
    switch (s.kind) {
    case StmtKind::Block:
      for (const Stmt &b : s.body)
        stmt(b, depth);
      break;
    case StmtKind::For:
      out_ << pad << "for i" << s.var << " in 0.." << expr(*s.extent) << " {\n";
      for (const Stmt &b : s.body)
        stmt(b, depth + 1);
      out_ << pad << "}\n";
      break;
    case StmtKind::Store:
      out_ << pad << f_.buffers[static_cast<size_t>(s.buffer)].name << "[" << expr(*s.index)
           << "] = " << expr(*s.value) << "\n";
      break;
    case StmtKind::Local:
      out_ << pad << "f32 s" << s.var << " = " << expr(*s.value) << "\n";
      break;
    case StmtKind::Assign:
      out_ << pad << "s" << s.var << " = " << expr(*s.value) << "\n";
      break;
    }
  }

private:
  const Function &f_;
  std::ostream &out_;
};

const char *kindName(BufferKind k) {
  switch (k) {
  case BufferKind::Input:
    return "input";
  case BufferKind::Param:
    return "param";
  case BufferKind::Output:
    return "output";
  case BufferKind::Temp:
    return "temp";
  }
  return "?";
}

} // namespace

void print(const Function &f, std::ostream &out) {
  out << "func " << f.name << "(N) {\n";
  for (const Buffer &b : f.buffers)
    out << "  " << kindName(b.kind) << " " << b.name << ": f32[" << (b.batched ? "N * " : "")
        << b.perExample << "]\n";
  Printer p(f, out);
  p.stmt(f.body, 1);
  out << "}\n";
}

} // namespace nnc::loops
