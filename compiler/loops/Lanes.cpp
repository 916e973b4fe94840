// Lanes.cpp — see Lanes.h.
#include "loops/Lanes.h"

namespace nnc::loops {

int64_t LaneRules::step(const Expr &e) const {
  switch (e.kind) {
  case ExprKind::Const:
  case ExprKind::Batch:
    return 0;
  case ExprKind::Var:
    return e.var == var ? 1 : 0;
  case ExprKind::Binary: {
    int64_t a = step(*e.a), b = step(*e.b);
    if (a < 0 || b < 0)
      return -1;
    if (e.binary == BinaryOp::Add)
      return a + b > 1 ? -1 : a + b;
    if (e.binary == BinaryOp::Sub)
      return b == 0 ? a : -1;
    if (e.binary == BinaryOp::Mul && a == 0 && b == 0)
      return 0;
    if (e.binary == BinaryOp::Mul && e.a->kind == ExprKind::Const && e.a->i == 1)
      return b;
    if (e.binary == BinaryOp::Mul && e.b->kind == ExprKind::Const && e.b->i == 1)
      return a;
    return a == 0 && b == 0 ? 0 : -1;
  }
  case ExprKind::Load:
  case ExprKind::Unary:
    return step(*e.a) == 0 ? 0 : -1;
  case ExprKind::Fma:
  case ExprKind::Select:
  case ExprKind::SelectEq:
  case ExprKind::Random:
    return -1;
  }
  return -1;
}

bool LaneRules::supported(const Stmt &s) {
  if (s.extent->kind != ExprKind::Const || s.extent->i < 2 || s.extent->i > 256)
    return false;
  int saved = var;
  var = s.var;
  locals_.clear();
  bool ok = true;
  for (const Stmt &b : s.body)
    ok = ok && allowed(b, s.var);
  var = saved;
  return ok;
}

bool LaneRules::allowed(const Expr &e, int laneVar) {
  switch (e.kind) {
  case ExprKind::Const:
  case ExprKind::Batch:
    return true;
  case ExprKind::Var:
    return e.var != laneVar && (e.type == Type::I64 || locals_.count(e.var));
  case ExprKind::Load: {
    int64_t by = step(*e.a);
    return e.type == Type::F32 ? by == 0 || by == 1 : by == 0;
  }
  case ExprKind::Unary:
    return (e.unary == UnaryOp::Neg || e.unary == UnaryOp::Sqrt || e.unary == UnaryOp::Floor) &&
           allowed(*e.a, laneVar);
  case ExprKind::Binary:
    return e.type == Type::F32 && e.binary != BinaryOp::Pow && allowed(*e.a, laneVar) &&
           allowed(*e.b, laneVar);
  case ExprKind::Fma:
  case ExprKind::Select:
    return allowed(*e.a, laneVar) && allowed(*e.b, laneVar) && allowed(*e.c, laneVar);
  case ExprKind::SelectEq:
  case ExprKind::Random:
    return false;
  }
  return false;
}

bool LaneRules::allowed(const Stmt &s, int laneVar) {
  switch (s.kind) {
  case StmtKind::Block:
    break;
  case StmtKind::For:
    if (s.lanes || s.parallel || step(*s.extent) != 0)
      return false;
    break;
  case StmtKind::Store:
    if (f_.buffers[static_cast<size_t>(s.buffer)].type != Type::F32 || step(*s.index) != 1 ||
        !allowed(*s.value, laneVar))
      return false;
    break;
  case StmtKind::Local:
  case StmtKind::Assign:
    if (!allowed(*s.value, laneVar))
      return false;
    locals_.insert(s.var);
    break;
  }
  for (const Stmt &b : s.body)
    if (!allowed(b, laneVar))
      return false;
  return true;
}

} // namespace nnc::loops
