// LoopIR.h — the loop IR: buffers, nested loops, loads and stores, and
// scalar arithmetic in which every fused multiply-add is explicit and every
// reduction runs in a fixed order.
//
// Both code generators (LLVM, and the C++ emitter to come) read this IR and
// never the graph, each with an exhaustive switch over its node kinds, so a
// new kind cannot be handled by one backend and forgotten by the other.
#pragma once

#include "Compiled.h"

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
  SelectEq, ///< a == b ? c : d  (a, b are i64)
  Random,   ///< the runtime's uniform [0, 1) number at counter a (i64) of (seed, stream)
};

/// ToF32 converts an i64 to f32, ToI64 an f32 to i64 (truncating); the
/// others keep their operand's type.
enum class UnaryOp { Neg, Exp, Log, Sqrt, Tanh, Erf, Cos, Floor, ToF32, ToI64 };
/// Pow is f32 only (powf).
enum class BinaryOp { Add, Sub, Mul, Div, Max, Min, Pow };

struct Expr {
  ExprKind kind;
  Type type;
  double f = 0;       ///< Const (f32)
  int64_t i = 0;      ///< Const (i64)
  int var = -1;       ///< Var: the variable's number
  int buffer = -1;    ///< Load: the buffer's number
  UnaryOp unary = UnaryOp::Neg;
  BinaryOp binary = BinaryOp::Add;
  ExprRef a, b, c, d;
  uint64_t seed = 0, stream = 0; ///< Random
};

// Constructors; integer arithmetic folds constants so indices stay short.
ExprRef f32(double v);
ExprRef i64(int64_t v);
ExprRef batch();
ExprRef var(int v, Type t);
ExprRef load(int buffer, ExprRef index, Type type = Type::F32);
ExprRef unary(UnaryOp op, ExprRef a);
ExprRef binary(BinaryOp op, ExprRef a, ExprRef b);
ExprRef fma(ExprRef a, ExprRef b, ExprRef c);
ExprRef select(ExprRef positive, ExprRef ifPositive, ExprRef otherwise);
ExprRef selectEq(ExprRef a, ExprRef b, ExprRef ifEqual, ExprRef otherwise);
/// nnc_uniform01(seed, stream, index): the counter-based RNG of the runtime.
ExprRef uniform(uint64_t seed, uint64_t stream, ExprRef index);
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
  /// For: the iterations are independent (each writes its own elements and
  /// reads nothing another writes), so they may run on several threads.
  /// Only a function's outermost loops are parallel. The results never
  /// depend on how the iterations are split.
  bool parallel = false;
  ExprRef cost; ///< parallel For: rough work of one iteration (i64), to decide whether to split
  /// For with a constant extent: its iterations are independent and run
  /// together as the lanes of one vector (the body's scalars become
  /// vectors, loads and stores at an index rising by one per iteration
  /// become vector loads and stores). Running it as an ordinary loop gives
  /// the same results: nothing is reordered within an iteration.
  bool lanes = false;
};

Stmt block(std::vector<Stmt> body, std::string comment = "");
Stmt loop(int var, ExprRef extent, std::vector<Stmt> body);
/// A loop whose iterations are independent; `cost` is the work of one.
Stmt parallelLoop(int var, ExprRef extent, ExprRef cost, std::vector<Stmt> body);
Stmt store(int buffer, ExprRef index, ExprRef value);
Stmt local(int var, ExprRef value);
Stmt assign(int var, ExprRef value);

/// Where a buffer's memory comes from. A Cache holds what the function
/// computes from its parameters and keeps between calls (prediction's
/// transposed weights); the one-number cache `@stale` says whether the rest
/// must be computed again (nonzero: the caller changed a parameter since,
/// or never ran the function); the function clears it at its end.
enum class BufferKind { Input, Param, Output, Temp, Cache };
/// The cache flag's name.
inline const char *const kStaleName = nnc_rt::kStaleBuffer;

struct Buffer {
  std::string name;
  BufferKind kind;
  int64_t perExample = 0; ///< elements, times N when batched
  bool batched = false;
  Type type = Type::F32;  ///< I64 for labels
  /// Temp: where it lives in the function's arena, in elements. Temporaries
  /// whose lifetimes do not overlap share memory.
  int64_t offset = -1;
  /// Output: the Param buffer whose next value this is (a parameter, its
  /// optimizer state or a running statistic after the step). The caller
  /// swaps the two after each call, so no step writes what it reads.
  int updates = -1;

  /// Elements for a batch of `n`.
  int64_t elements(int64_t n) const { return batched ? perExample * n : perExample; }
};

/// A function: `void name(void **buffers, int64_t N)`, buffers in order.
struct Function {
  std::string name;
  std::vector<Buffer> buffers;
  Stmt body;
  int vars = 0; ///< variables used (numbered from 0)
  /// The largest batch the arena is planned for; callers pass N <= capacity.
  int64_t capacity = 1;
  int64_t arenaElements = 0; ///< f32 elements of the arena that holds every Temp
  int nests = 0;             ///< loop nests at the top level (what fusion counts)
};

/// Checks the function's invariants: buffer and variable numbers in range,
/// types consistent (indices and extents i64, values of their buffer's
/// type), every variable read after it is set. Returns "" or the first
/// problem. The code generators refuse a function that fails it.
std::string verify(const Function &f);

/// Whether `a` and `b` compile to the same machine code: the same buffers
/// (kinds, sizes, types, arena offsets, updates; names may differ) and the
/// same statements and expressions, comments and the function's name aside.
bool sameCode(const Function &a, const Function &b);

/// "input", "param", "output" or "temp", as the printer writes it.
const char *kindName(BufferKind k);

/// `--emit=loops`: the buffers, the loop nests, and a summary line with the
/// number of nests and the bytes of temporaries.
void print(const Function &f, std::ostream &out);

} // namespace nnc::loops
