// AST.h — the syntax tree of a .nn file, as written (nothing resolved yet).
//
// Every node carries the SourceLoc of its first token. Parse.cpp builds it
// from ANTLR's parse tree; Sema.cpp checks it and resolves it into a Program.
#pragma once

#include "support/Source.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace nnc {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

/// A name as written, with where it was written.
struct Ident {
  std::string name;
  SourceLoc loc;
};

/// `name=value` or a positional `value` inside parentheses.
struct Arg {
  std::optional<Ident> name;
  ExprPtr value;
  SourceLoc loc;
};

/// One layer in a chain: `relu`, `dense(64)`, `fc1: dense(64)`.
struct Stage {
  std::optional<Ident> label;
  Ident callee;
  bool hasParens = false;
  std::vector<Arg> args;
  SourceLoc loc;
};

enum class ExprKind {
  Int,    ///< 64
  Float,  ///< 1e-3
  String, ///< "data/mnist"
  Bool,   ///< true
  Name,   ///< x
  Call,   ///< add(a, b)
  List,   ///< [1, 28, 28]
  Neg,    ///< -x
  MatMul, ///< a @ b
  Chain,  ///< x -> flatten -> dense(10)
};

struct Expr {
  ExprKind kind;
  SourceLoc loc;
  int64_t intValue = 0;     ///< Int
  double floatValue = 0;    ///< Float
  bool boolValue = false;   ///< Bool
  std::string text;         ///< String contents (unescaped), Name, Call callee, number as written
  std::vector<Arg> args;    ///< Call
  std::vector<ExprPtr> operands; ///< List elements; Neg: 1; MatMul: 2; Chain: the head
  std::vector<Stage> stages;     ///< Chain

  Expr(ExprKind k, SourceLoc l) : kind(k), loc(l) {}
};

enum class StmtKind { Assign, Return, Expr };

/// A statement in a model body.
struct Stmt {
  StmtKind kind;
  SourceLoc loc;
  std::optional<Ident> target; ///< Assign
  ExprPtr value;
};

/// A model input: `x: [1, 28, 28]`.
struct Param {
  Ident name;
  std::vector<int64_t> shape;
  std::vector<SourceLoc> dimLocs; ///< one per dimension
  SourceLoc shapeLoc;
};

/// `model Net(x: [1, 28, 28]) { … }`
struct ModelDecl {
  Ident name;
  std::vector<Param> params;
  std::vector<Stmt> body;
  SourceLoc loc;
};

/// A block parameter: a constant, with an optional default: `stride=1`.
struct BlockParam {
  Ident name;
  ExprPtr defaultValue; ///< null when the parameter is required
};

/// `block residual(c, stride=1)(x) { … return … }`: a reusable piece of a
/// model, expanded where it is used.
struct BlockDecl {
  Ident name;
  std::vector<BlockParam> params;
  std::vector<Ident> inputs;
  std::vector<Stmt> body;
  SourceLoc loc;
};

/// An entry of a configuration block: `batch 64`, `shuffle`,
/// `normalize(mean=0.13, std=0.31)`, `augment { flip }`. A single value is
/// kept as one positional argument, so every entry reads like a call.
struct Item {
  Ident name;
  std::vector<Arg> args;
  bool hasBlock = false;
  std::vector<Item> children;
  SourceLoc loc;
};

/// `data mnist { … }`, `train { … }`
struct ConfigDecl {
  Ident keyword;
  std::optional<Ident> label;
  std::vector<Item> items;
  SourceLoc loc;
};

/// `loss cross_entropy`, `optimizer adam(lr=1e-3)`, `schedule cosine`
struct SettingDecl {
  Ident keyword;
  Stage value;
  SourceLoc loc;
};

/// A whole .nn file.
struct Module {
  uint32_t file = 0;
  std::vector<ModelDecl> models;
  std::vector<BlockDecl> blocks;
  std::vector<ConfigDecl> configs;
  std::vector<SettingDecl> settings;
};

/// Prints the AST as an indented tree with locations (`--emit=ast`).
void printAST(const Module &module, std::ostream &out);

} // namespace nnc
