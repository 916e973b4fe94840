// LoopIR.cpp — constructors and the printer of the loop IR.
#include "loops/LoopIR.h"

#include "support/Text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

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

ExprRef load(int buffer, ExprRef index, Type type) {
  auto e = make(ExprKind::Load, type);
  e->buffer = buffer;
  e->a = std::move(index);
  return e;
}

ExprRef unary(UnaryOp op, ExprRef a) {
  Type t = op == UnaryOp::ToF32 ? Type::F32 : op == UnaryOp::ToI64 ? Type::I64 : a->type;
  auto e = make(ExprKind::Unary, t);
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
      case BinaryOp::Pow:
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
    if (op == BinaryOp::Div && isConst(b, 1))
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

ExprRef selectEq(ExprRef a, ExprRef b, ExprRef ifEqual, ExprRef otherwise) {
  auto e = make(ExprKind::SelectEq, ifEqual->type);
  e->a = std::move(a);
  e->b = std::move(b);
  e->c = std::move(ifEqual);
  e->d = std::move(otherwise);
  return e;
}

ExprRef uniform(uint64_t seed, uint64_t stream, ExprRef index) {
  auto e = make(ExprKind::Random, Type::F32);
  e->seed = seed;
  e->stream = stream;
  e->a = std::move(index);
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

Stmt parallelLoop(int v, ExprRef extent, ExprRef cost, std::vector<Stmt> body) {
  Stmt s = loop(v, std::move(extent), std::move(body));
  s.parallel = true;
  s.cost = std::move(cost);
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
  case UnaryOp::ToF32:
    return "f32";
  case UnaryOp::ToI64:
    return "i64";
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
  case BinaryOp::Pow:
    return "pow";
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
      if (e.binary == BinaryOp::Max || e.binary == BinaryOp::Min || e.binary == BinaryOp::Pow)
        return std::string(symbol(e.binary)) + "(" + expr(*e.a) + ", " + expr(*e.b) + ")";
      return "(" + expr(*e.a) + " " + symbol(e.binary) + " " + expr(*e.b) + ")";
    case ExprKind::Fma:
      return "fma(" + expr(*e.a) + ", " + expr(*e.b) + ", " + expr(*e.c) + ")";
    case ExprKind::Select:
      return "(" + expr(*e.a) + " > 0 ? " + expr(*e.b) + " : " + expr(*e.c) + ")";
    case ExprKind::SelectEq:
      return "(" + expr(*e.a) + " == " + expr(*e.b) + " ? " + expr(*e.c) + " : " + expr(*e.d) +
             ")";
    case ExprKind::Random:
      return fmt::format("uniform({}, {:#x}, {})", e.seed, e.stream, expr(*e.a));
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
      out_ << pad
           << (s.parallel ? "parallel for i" : s.lanes ? "lanes for i" : "for i")
           << s.var << " in 0.." << expr(*s.extent) << " {\n";
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

class Verifier {
public:
  explicit Verifier(const Function &f) : f_(f), defined_(static_cast<size_t>(std::max(f.vars, 0))) {}

  std::string run() {
    for (const Buffer &b : f_.buffers)
      if (b.kind == BufferKind::Temp && (b.offset < 0 || b.offset + b.elements(f_.capacity) > f_.arenaElements))
        return "temporary " + b.name + " lies outside the arena";
    stmt(f_.body);
    return problem_;
  }

private:
  void fail(const std::string &what) {
    if (problem_.empty())
      problem_ = what;
  }
  bool varOk(int v) {
    if (v < 0 || v >= f_.vars) {
      fail("variable " + std::to_string(v) + " out of range");
      return false;
    }
    return true;
  }
  bool bufferOk(int b) {
    if (b < 0 || static_cast<size_t>(b) >= f_.buffers.size()) {
      fail("buffer " + std::to_string(b) + " out of range");
      return false;
    }
    return true;
  }
  void expect(const ExprRef &e, Type t, const char *what) {
    if (!e) {
      fail(std::string("missing ") + what);
      return;
    }
    expr(*e);
    if (e->type != t)
      fail(std::string(what) + " has the wrong type");
  }
  void expr(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Const:
    case ExprKind::Batch:
      break;
    case ExprKind::Var:
      if (varOk(e.var) && !defined_[static_cast<size_t>(e.var)])
        fail("variable " + std::to_string(e.var) + " read before it is set");
      break;
    case ExprKind::Load:
      if (bufferOk(e.buffer) && f_.buffers[static_cast<size_t>(e.buffer)].type != e.type)
        fail("load of the wrong type from " + f_.buffers[static_cast<size_t>(e.buffer)].name);
      expect(e.a, Type::I64, "an index");
      break;
    case ExprKind::Unary:
      expect(e.a,
             e.unary == UnaryOp::ToF32   ? Type::I64
             : e.unary == UnaryOp::ToI64 ? Type::F32
                                         : e.type,
             "an operand");
      break;
    case ExprKind::Random:
      expect(e.a, Type::I64, "a counter");
      break;
    case ExprKind::Binary:
      expect(e.a, e.type, "an operand");
      expect(e.b, e.type, "an operand");
      if (e.binary == BinaryOp::Pow && e.type != Type::F32)
        fail("pow of integers");
      break;
    case ExprKind::Fma:
      expect(e.a, Type::F32, "an operand");
      expect(e.b, Type::F32, "an operand");
      expect(e.c, Type::F32, "an operand");
      break;
    case ExprKind::Select:
      expect(e.a, Type::F32, "a condition");
      expect(e.b, e.type, "an operand");
      expect(e.c, e.type, "an operand");
      break;
    case ExprKind::SelectEq:
      expect(e.a, Type::I64, "a condition");
      expect(e.b, Type::I64, "a condition");
      expect(e.c, e.type, "an operand");
      expect(e.d, e.type, "an operand");
      break;
    }
  }
  void stmt(const Stmt &s) {
    switch (s.kind) {
    case StmtKind::Block:
      for (const Stmt &b : s.body)
        stmt(b);
      break;
    case StmtKind::For:
      expect(s.extent, Type::I64, "a loop extent");
      if (s.parallel)
        expect(s.cost, Type::I64, "a loop cost");
      if (s.lanes && (!s.extent || s.extent->kind != ExprKind::Const))
        fail("a lanes loop without a constant extent");
      if (varOk(s.var))
        defined_[static_cast<size_t>(s.var)] = true;
      for (const Stmt &b : s.body)
        stmt(b);
      break;
    case StmtKind::Store:
      if (bufferOk(s.buffer))
        expect(s.value, f_.buffers[static_cast<size_t>(s.buffer)].type, "a stored value");
      expect(s.index, Type::I64, "an index");
      break;
    case StmtKind::Local:
    case StmtKind::Assign:
      expect(s.value, Type::F32, "a local's value");
      if (varOk(s.var))
        defined_[static_cast<size_t>(s.var)] = true;
      break;
    }
  }

  const Function &f_;
  std::vector<bool> defined_;
  std::string problem_;
};

} // namespace

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
  case BufferKind::Cache:
    return "cache";
  }
  return "?";
}

std::string verify(const Function &f) { return Verifier(f).run(); }

namespace {

bool same(const ExprRef &a, const ExprRef &b);

bool same(const Expr &a, const Expr &b) {
  // Constants compare by their bits: -0 is not 0, and a NaN equals itself.
  auto bits = [](double v) {
    uint64_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
  };
  return a.kind == b.kind && a.type == b.type && bits(a.f) == bits(b.f) && a.i == b.i &&
         a.var == b.var && a.buffer == b.buffer && a.unary == b.unary && a.binary == b.binary &&
         a.seed == b.seed && a.stream == b.stream && same(a.a, b.a) && same(a.b, b.b) &&
         same(a.c, b.c) && same(a.d, b.d);
}

bool same(const ExprRef &a, const ExprRef &b) {
  if (!a || !b)
    return !a && !b;
  return a == b || same(*a, *b);
}

bool same(const Stmt &a, const Stmt &b) {
  if (a.kind != b.kind || a.var != b.var || a.buffer != b.buffer || a.parallel != b.parallel ||
      a.lanes != b.lanes || a.body.size() != b.body.size() || !same(a.extent, b.extent) ||
      !same(a.index, b.index) || !same(a.value, b.value) || !same(a.cost, b.cost))
    return false;
  for (size_t i = 0; i < a.body.size(); ++i)
    if (!same(a.body[i], b.body[i]))
      return false;
  return true;
}

} // namespace

bool sameCode(const Function &a, const Function &b) {
  if (a.buffers.size() != b.buffers.size() || a.vars != b.vars || a.capacity != b.capacity ||
      a.arenaElements != b.arenaElements)
    return false;
  for (size_t i = 0; i < a.buffers.size(); ++i) {
    const Buffer &x = a.buffers[i], &y = b.buffers[i];
    if (x.kind != y.kind || x.perExample != y.perExample || x.batched != y.batched ||
        x.type != y.type || x.offset != y.offset || x.updates != y.updates)
      return false;
  }
  return same(a.body, b.body);
}

void print(const Function &f, std::ostream &out) {
  out << "func " << f.name << "(N) {\n";
  for (const Buffer &b : f.buffers) {
    out << "  " << kindName(b.kind) << " " << b.name << ": "
        << (b.type == Type::I64 ? "i64[" : "f32[") << (b.batched ? "N * " : "") << b.perExample
        << "]";
    if (b.offset >= 0)
      out << " @ arena + " << b.offset;
    if (b.updates >= 0)
      out << " -> next " << f.buffers[static_cast<size_t>(b.updates)].name;
    out << "\n";
  }
  Printer p(f, out);
  p.stmt(f.body, 1);
  out << "}\n";
  out << "// " << f.nests << " loop nests; temporaries: "
      << withThousands(f.arenaElements * static_cast<int64_t>(sizeof(float)))
      << " bytes for a batch of " << f.capacity << "\n";
}

} // namespace nnc::loops
