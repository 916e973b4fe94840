// LoopIR.h — the loop IR: buffers, nested loops, loads and stores, and
// scalar arithmetic in which every fused multiply-add is explicit and every
// reduction runs in a fixed order.
//
// Both code generators (LLVM, and the C++ emitter to come) read this IR and
// never the graph, each with an exhaustive switch over its node kinds, so a
// new kind cannot be handled by one backend and forgotten by the other.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace nnc::loops {

/// Scalar types: f32 values, i64 indices.
enum class Type { F32, I64 };

struct Expr;
using ExprRef = std::shared_ptr<const Expr>;

enum class ExprKind {
  Const,  ///< f32 or i64 constant
  Batch,  ///< the batch size N, an i64 argument of every function
  Var,    ///< a loop index (i64) or a local scalar
  Load,   ///< buffer[index]
  Unary,  ///< op(a)
  Binary, ///< a op b
  Fma,    ///< a * b + c, rounded once (llvm.fma / std::fma)
  Select, ///< a > 0 ? b : c  (a is f32)
};

enum class UnaryOp { Neg, Exp, Log, Sqrt, Tanh, Erf, Cos, Floor };
enum class BinaryOp { Add, Sub, Mul, Div, Max, Min };

struct Expr {
  ExprKind kind;
  Type type;
  double f = 0;       ///< Const (f32)
  int64_t i = 0;      ///< Const (i64)
  int var = -1;       ///< Var: the variable's number
  int buffer = -1;    ///< Load: the buffer's number
  UnaryOp unary = UnaryOp::Neg;
  BinaryOp binary = BinaryOp::Add;
  ExprRef a, b, c;
};

// Constructors; integer arithmetic folds constants so indices stay short.
ExprRef f32(double v);
ExprRef i64(int64_t v);
ExprRef batch();
ExprRef var(int v, Type t);
ExprRef load(int buffer, ExprRef index);
ExprRef unary(UnaryOp op, ExprRef a);
ExprRef binary(BinaryOp op, ExprRef a, ExprRef b);
ExprRef fma(ExprRef a, ExprRef b, ExprRef c);
ExprRef select(ExprRef positive, ExprRef ifPositive, ExprRef otherwise);
ExprRef add(ExprRef a, ExprRef b);
ExprRef mul(ExprRef a, ExprRef b);

enum class StmtKind {
  Block,  ///< statements in order
  For,    ///< for var in [0, extent): body
  Store,  ///< buffer[index] = value
  Local,  ///< declare local scalar `var` = value
  Assign, ///< local scalar `var` = value
};

struct Stmt {
  StmtKind kind = StmtKind::Block;
  int var = -1;                 ///< For: the index; Local/Assign: the scalar
  ExprRef extent;               ///< For (i64)
  std::vector<Stmt> body;       ///< Block, For
  int buffer = -1;              ///< Store
  ExprRef index, value;         ///< Store (index, value), Local/Assign (value)
  std::string comment;          ///< printed above the statement: the layer it comes from
};

Stmt block(std::vector<Stmt> body, std::string comment = "");
Stmt loop(int var, ExprRef extent, std::vector<Stmt> body);
Stmt store(int buffer, ExprRef index, ExprRef value);
Stmt local(int var, ExprRef value);
Stmt assign(int var, ExprRef value);

/// Where a buffer's memory comes from.
enum class BufferKind { Input, Param, Output, Temp };

struct Buffer {
  std::string name;
  BufferKind kind;
  int64_t perExample = 0; ///< elements, times N when batched
  bool batched = false;
};

/// A function: `void name(float **buffers, int64_t N)`, buffers in order.
struct Function {
  std::string name;
  std::vector<Buffer> buffers;
  Stmt body;
  int vars = 0; ///< variables used (numbered from 0)
};

/// `--emit=loops`.
void print(const Function &f, std::ostream &out);

} // namespace nnc::loops
