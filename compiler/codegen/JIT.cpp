// JIT.cpp — LLVM code generation for the loop IR, and the ORC LLJIT that
// runs it. The only file that includes LLVM headers.
#include "codegen/JIT.h"
#include "loops/Lanes.h"

#include "Parallel.h"
#include "Random.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/DiagnosticInfo.h>
#include <llvm/IR/DiagnosticPrinter.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/LICM.h>
#include <llvm/Transforms/Scalar/LoopPassManager.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Transforms/Vectorize/LoopVectorize.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Support/Host.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <set>
#include <thread>

namespace nnc {

using namespace loops;

int64_t hostVectorLanes() {
  static const int64_t lanes = [] {
    llvm::StringMap<bool> features;
    return llvm::sys::getHostCPUFeatures(features) && features.lookup("avx512f") ? 16 : 8;
  }();
  return lanes;
}

struct JIT::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  llvm::orc::JITTargetMachineBuilder builder{llvm::Triple()};
};

namespace {

/// The parallel loops of a function body whose bodies become functions of
/// their own: the outermost ones (the loop IR makes no others parallel), in
/// the order they are written.
void outlinedLoops(const Stmt &s, std::vector<const Stmt *> &out) {
  if (s.kind == StmtKind::Block)
    for (const Stmt &b : s.body)
      outlinedLoops(b, out);
  else if (s.kind == StmtKind::For && s.parallel)
    out.push_back(&s);
}

/// Emits pieces of one loop-IR function into an LLVM module: piece 0 is
/// the function itself, piece k the body of its k-th outlined loop (see
/// outlinedLoops). A parallel loop's body becomes a function of its own,
/// `body(context, begin, end)`, that the runtime's thread pool
/// (nnc_parallel_for) calls on slices of the range; the context holds the
/// buffer array and N. Bodies have external linkage, so that a body and
/// its caller may be compiled in different modules (compile() shares the
/// pieces out among threads); a body not in this module is declared.
class Emitter {
public:
  Emitter(llvm::Module &m, const Function &f, const std::vector<const Stmt *> &outlined,
          const std::vector<bool> &here)
      : m_(m), ctx_(m.getContext()), b_(ctx_), f_(f), rules_(f), here_(here), i64_(b_.getInt64Ty()),
        f32_(b_.getFloatTy()), i8p_(b_.getInt8PtrTy()),
        bufsTy_(llvm::PointerType::getUnqual(llvm::PointerType::getUnqual(f32_))),
        contextTy_(llvm::StructType::create(ctx_, {bufsTy_, i64_}, "nnc.context")) {
    for (size_t k = 0; k < outlined.size(); ++k)
      outlined_[outlined[k]] = k + 1;
  }

  void run() {
    auto *type = llvm::FunctionType::get(b_.getVoidTy(), {bufsTy_, i64_}, false);
    llvm::Function *fn = llvm::Function::Create(type, llvm::Function::ExternalLinkage, f_.name, m_);
    auto args = fn->arg_begin();
    llvm::Value *buffers = &*args++;
    llvm::Value *n = &*args;
    begin(fn, llvm::BasicBlock::Create(ctx_, "entry", fn), buffers, n);
    // Each top-level statement (one fused group) gets its own alias scopes:
    // within a group, distinct buffers never overlap (temporaries share
    // arena memory only when their lifetimes do not), so every access says
    // which buffer it touches and that it touches no other.
    if (f_.body.kind == StmtKind::Block) {
      for (const Stmt &group : f_.body.body) {
        scopeGroup(group);
        stmt(group);
      }
    } else {
      stmt(f_.body);
    }
    b_.CreateRetVoid();
    // Emitted all the same: its traversal is what emits the bodies.
    if (!here_[0])
      fn->eraseFromParent();
  }

private:
  void buffersOf(const Expr &e, std::set<int> &out) {
    if (e.kind == ExprKind::Load)
      out.insert(e.buffer);
    for (const ExprRef &x : {e.a, e.b, e.c, e.d})
      if (x)
        buffersOf(*x, out);
  }
  void buffersOf(const Stmt &s, std::set<int> &out) {
    if (s.kind == StmtKind::Store)
      out.insert(s.buffer);
    for (const ExprRef &x : {s.extent, s.index, s.value, s.cost})
      if (x)
        buffersOf(*x, out);
    for (const Stmt &b : s.body)
      buffersOf(b, out);
  }

  /// Alias scopes for the buffers `group` touches.
  void scopeGroup(const Stmt &group) {
    std::set<int> used;
    buffersOf(group, used);
    scopes_.clear();
    noalias_.clear();
    llvm::MDBuilder md(ctx_);
    llvm::MDNode *domain = md.createAnonymousAliasScopeDomain("nnc.group");
    std::map<int, llvm::MDNode *> scope;
    for (int b : used)
      scope[b] = md.createAnonymousAliasScope(domain, f_.buffers[static_cast<size_t>(b)].name);
    for (int b : used) {
      std::vector<llvm::Metadata *> others;
      for (int o : used)
        if (o != b)
          others.push_back(scope[o]);
      scopes_[b] = llvm::MDNode::get(ctx_, {scope[b]});
      noalias_[b] = llvm::MDNode::get(ctx_, others);
    }
  }

  /// Tags a load or store of buffer `b` with its group's alias scopes.
  void tag(llvm::Instruction *access, int b) {
    auto s = scopes_.find(b);
    if (s == scopes_.end())
      return;
    access->setMetadata(llvm::LLVMContext::MD_alias_scope, s->second);
    access->setMetadata(llvm::LLVMContext::MD_noalias, noalias_[b]);
  }

  /// A lanes loop as straight-line vector code, in vectors whose lanes are
  /// a power of two: 10 lanes are a vector of 8 and one of 2 (instruction
  /// selection takes a <10 x float> apart lane by lane, and slowly: on
  /// mnist.nn it made fc3's forward loop the costliest to compile per
  /// instruction, 223 lines of assembly where it is now 97, its inner loop
  /// rebuilding its sums from single floats in every iteration), and of at
  /// most kMaxVectorLanes, one AVX-512 register (64 lanes are 4 vectors of
  /// 16). Loops in the body are emitted once, the other statements once per
  /// vector (see chunk()); f32 values are vectors. Each lane computes what it
  /// would alone, in the same order.
  static constexpr uint64_t kMaxVectorLanes = 16;
  void vectorLoop(const Stmt &s) {
    chunks_.clear();
    for (uint64_t from = 0, lanes = static_cast<uint64_t>(s.extent->i); from < lanes;) {
      uint64_t width = std::min<uint64_t>(llvm::PowerOf2Floor(lanes - from), kMaxVectorLanes);
      chunks_.push_back({from, static_cast<unsigned>(width)});
      from += width;
    }
    laneSlots_.clear();
    rules_.var = s.var;
    lanes_ = true;
    for (const Stmt &b : s.body)
      stmt(b);
    lanes_ = false;
    rules_.var = -1;
  }

  /// Starts a statement's vector `c` of the current lanes loop: the lane
  /// variable is the vector's first lane in every index.
  void chunk(size_t c) {
    chunk_ = c;
    width_ = chunks_[c].second;
    vectorTy_ = llvm::FixedVectorType::get(f32_, width_);
    b_.CreateStore(b_.getInt64(static_cast<int64_t>(chunks_[c].first)), slot(rules_.var, i64_));
  }

  /// The stack slot of f32 local `v` of a lanes loop, in the current vector.
  llvm::AllocaInst *laneSlot(int v) {
    llvm::AllocaInst *&a = laneSlots_[{v, chunk_}];
    if (a == nullptr) {
      llvm::IRBuilder<> entry(entry_, entry_->begin());
      a = entry.CreateAlloca(vectorTy_, nullptr, "s" + std::to_string(v));
    }
    return a;
  }

  /// Makes two operands both vectors when one is.
  void matchLanes(llvm::Value *&a, llvm::Value *&b) {
    if (!lanes_)
      return;
    if (a->getType()->isVectorTy() && !b->getType()->isVectorTy())
      b = b_.CreateVectorSplat(width_, b);
    else if (b->getType()->isVectorTy() && !a->getType()->isVectorTy())
      a = b_.CreateVectorSplat(width_, a);
  }

  /// Starts emitting function `fn` at the end of its entry block.
  void begin(llvm::Function *fn, llvm::BasicBlock *entry, llvm::Value *buffers, llvm::Value *n) {
    fn_ = fn;
    entry_ = entry;
    batch_ = n;
    buffers_ = buffers;
    b_.SetInsertPoint(entry_, entry_->end());
    bufferPtrs_.assign(f_.buffers.size(), nullptr);
    vars_.assign(static_cast<size_t>(f_.vars), nullptr);
  }

  /// Buffer `i`'s pointer, loaded once, in the entry block, when first used
  /// (loading every buffer's in every function, most of them unused there,
  /// made the pipeline about a quarter slower on mnist.nn).
  llvm::Value *bufferPtr(size_t i) {
    llvm::Value *&ptr = bufferPtrs_[i];
    if (ptr == nullptr) {
      auto *after = llvm::dyn_cast<llvm::Instruction>(buffers_); // else an argument
      llvm::IRBuilder<> entry(entry_, after ? std::next(after->getIterator())
                                            : entry_->getFirstInsertionPt());
      llvm::Value *slot = entry.CreateInBoundsGEP(llvm::PointerType::getUnqual(f32_), buffers_,
                                                  entry.getInt64(static_cast<int64_t>(i)));
      ptr = entry.CreateLoad(llvm::PointerType::getUnqual(f32_), slot, f_.buffers[i].name);
    }
    return ptr;
  }

  /// A stack slot for variable `v` of type `t`, allocated in the entry block
  /// (SROA turns it into a register).
  llvm::AllocaInst *slot(int v, llvm::Type *t) {
    llvm::AllocaInst *&a = vars_[static_cast<size_t>(v)];
    if (a == nullptr || a->getAllocatedType() != t) {
      llvm::IRBuilder<> entry(entry_, entry_->begin());
      a = entry.CreateAlloca(t, nullptr, (t == i64_ ? "i" : "s") + std::to_string(v));
    }
    return a;
  }

  llvm::Value *math(const char *name, std::vector<llvm::Value *> args) {
    std::vector<llvm::Type *> types(args.size(), f32_);
    llvm::FunctionCallee fn = m_.getOrInsertFunction(name, llvm::FunctionType::get(f32_, types, false));
    return b_.CreateCall(fn, args);
  }

  llvm::Value *element(int buffer, const Expr &index, Type type) {
    llvm::Value *base = bufferPtr(static_cast<size_t>(buffer));
    llvm::Type *t = type == Type::I64 ? i64_ : f32_;
    if (type == Type::I64)
      base = b_.CreateBitCast(base, llvm::PointerType::getUnqual(i64_));
    return b_.CreateInBoundsGEP(t, base, expr(index));
  }

  llvm::Value *expr(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Const:
      return e.type == Type::I64 ? static_cast<llvm::Value *>(b_.getInt64(e.i))
                                 : llvm::ConstantFP::get(f32_, e.f);
    case ExprKind::Batch:
      return batch_;
    case ExprKind::Var: {
      if (lanes_ && e.type == Type::F32)
        return b_.CreateLoad(vectorTy_, laneSlot(e.var));
      llvm::Type *t = e.type == Type::I64 ? i64_ : f32_;
      return b_.CreateLoad(t, slot(e.var, t));
    }
    case ExprKind::Load: {
      if (lanes_ && e.type == Type::F32 && rules_.step(*e.a) == 1) { // one vector
        llvm::Value *at = b_.CreateBitCast(element(e.buffer, *e.a, e.type),
                                           llvm::PointerType::getUnqual(vectorTy_));
        llvm::LoadInst *load = b_.CreateAlignedLoad(vectorTy_, at, llvm::Align(4));
        tag(load, e.buffer);
        return load;
      }
      llvm::LoadInst *load =
          b_.CreateLoad(e.type == Type::I64 ? i64_ : f32_, element(e.buffer, *e.a, e.type));
      tag(load, e.buffer);
      return load;
    }
    case ExprKind::Unary: {
      llvm::Value *a = expr(*e.a);
      switch (e.unary) {
      case UnaryOp::Neg:
        return b_.CreateFNeg(a);
      case UnaryOp::Exp:
        return math("expf", {a});
      case UnaryOp::Log:
        return math("logf", {a});
      case UnaryOp::Sqrt:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, a);
      case UnaryOp::Tanh:
        return math("tanhf", {a});
      case UnaryOp::Erf:
        return math("erff", {a});
      case UnaryOp::Cos:
        return math("cosf", {a});
      case UnaryOp::Floor:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::floor, a);
      case UnaryOp::ToF32:
        return b_.CreateSIToFP(a, f32_);
      case UnaryOp::ToI64:
        return b_.CreateFPToSI(a, i64_);
      }
      return a;
    }
    case ExprKind::Binary: {
      llvm::Value *a = expr(*e.a), *c = expr(*e.b);
      if (e.type == Type::F32)
        matchLanes(a, c);
      bool ints = e.type == Type::I64;
      switch (e.binary) {
      case BinaryOp::Add:
        return ints ? b_.CreateAdd(a, c) : b_.CreateFAdd(a, c);
      case BinaryOp::Sub:
        return ints ? b_.CreateSub(a, c) : b_.CreateFSub(a, c);
      case BinaryOp::Mul:
        return ints ? b_.CreateMul(a, c) : b_.CreateFMul(a, c);
      case BinaryOp::Div:
        return ints ? b_.CreateSDiv(a, c) : b_.CreateFDiv(a, c);
      case BinaryOp::Max: // the larger; a NaN operand propagates, as torch.max does
        return ints ? b_.CreateSelect(b_.CreateICmpSGT(a, c), a, c)
                    : b_.CreateSelect(b_.CreateFCmpUGT(a, c), a, c);
      case BinaryOp::Min:
        return ints ? b_.CreateSelect(b_.CreateICmpSLT(a, c), a, c)
                    : b_.CreateSelect(b_.CreateFCmpULT(a, c), a, c);
      case BinaryOp::Pow:
        return math("powf", {a, c});
      }
      return a;
    }
    case ExprKind::Fma: {
      llvm::Value *a = expr(*e.a), *b = expr(*e.b), *c = expr(*e.c);
      matchLanes(a, b);
      matchLanes(a, c);
      matchLanes(b, c);
      return b_.CreateIntrinsic(llvm::Intrinsic::fma, {a->getType()}, {a, b, c});
    }
    case ExprKind::Select: {
      llvm::Value *x = expr(*e.a), *y = expr(*e.b), *z = expr(*e.c);
      matchLanes(x, y);
      matchLanes(x, z);
      matchLanes(y, z);
      llvm::Value *cond = b_.CreateFCmpOGT(x, llvm::Constant::getNullValue(x->getType()));
      return b_.CreateSelect(cond, y, z);
    }
    case ExprKind::SelectEq: {
      // one operand per statement: the order of the instructions is then
      // ours, not the compiler's that built nnc
      llvm::Value *a = expr(*e.a), *b = expr(*e.b);
      llvm::Value *cond = b_.CreateICmpEQ(a, b);
      llvm::Value *c = expr(*e.c), *d = expr(*e.d);
      return b_.CreateSelect(cond, c, d);
    }
    case ExprKind::Random: {
      llvm::FunctionCallee rng = m_.getOrInsertFunction(
          "nnc_uniform01", llvm::FunctionType::get(f32_, {i64_, i64_, i64_}, false));
      return b_.CreateCall(rng, {b_.getInt64(e.seed), b_.getInt64(e.stream), expr(*e.a)});
    }
    }
    return nullptr;
  }

  static bool isConstant(llvm::Value *v, int64_t value) {
    auto *c = llvm::dyn_cast<llvm::ConstantInt>(v);
    return c && c->getSExtValue() == value;
  }

  /// A loop of 4 to 15 iterations (a constant) with no loop inside.
  static bool shortInnermost(const Stmt &s) {
    if (!s.extent || s.extent->kind != ExprKind::Const || s.extent->i < 4 || s.extent->i >= 16)
      return false;
    return !hasLoop(s.body);
  }
  static bool hasLoop(const std::vector<Stmt> &body) {
    for (const Stmt &b : body)
      if (b.kind == StmtKind::For || (b.kind == StmtKind::Block && hasLoop(b.body)))
        return true;
    return false;
  }
  /// for (index = from; index < to; ++index) body, emitted in the form
  /// LLVM's loop passes want (what loop rotation and induction-variable
  /// simplification would make of the loop as written, without their
  /// cost): a guard, then the body, then `index + 1 == to` at the latch.
  /// A loop of one iteration (the scalar arithmetic of optimizers and
  /// schedules) is its body alone: no pass here would remove the loop.
  void counted(const Stmt &s, llvm::Value *from, llvm::Value *to) {
    llvm::AllocaInst *index = slot(s.var, i64_);
    b_.CreateStore(from, index);
    if (isConstant(from, 0) && isConstant(to, 1)) { // one iteration: the body alone
      for (const Stmt &b : s.body)
        stmt(b);
      return;
    }
    auto *body = llvm::BasicBlock::Create(ctx_, "body", fn_);
    auto *done = llvm::BasicBlock::Create(ctx_, "done", fn_);
    b_.CreateCondBr(b_.CreateICmpSLT(from, to), body, done);
    b_.SetInsertPoint(body);
    for (const Stmt &b : s.body)
      stmt(b);
    // index < to before, so index + 1 does not overflow
    llvm::Value *next = b_.CreateNSWAdd(b_.CreateLoad(i64_, index), b_.getInt64(1));
    b_.CreateStore(next, index);
    llvm::BranchInst *latch = b_.CreateCondBr(b_.CreateICmpEQ(next, to), done, body);
    // One vector at a time: products hold their sums in registers already
    // (lanes loops), and interleaved copies of the other loops cost compile
    // time for no measurable gain.
    llvm::Metadata *once[] = {llvm::MDString::get(ctx_, "llvm.loop.interleave.count"),
                              llvm::ConstantAsMetadata::get(b_.getInt32(1))};
    std::vector<llvm::Metadata *> hints{nullptr, llvm::MDNode::get(ctx_, once)};
    // A short innermost loop (4 to 15 iterations: a pooled row of 13
    // windows, or of 5) is one LLVM's vectorizer passes over unless told to
    // look (it wants 16): told, it still chooses the width by its cost
    // model. From 4 rather than 8: fashion_cnn.nn's second pooling (rows of
    // 5) went from scalar code to vectors of 4, 95 -> 20 us forward and
    // 225 -> 97 us for its gradient per training step (2 threads).
    if (shortInnermost(s)) {
      llvm::Metadata *look[] = {llvm::MDString::get(ctx_, "llvm.loop.vectorize.enable"),
                                llvm::ConstantAsMetadata::get(b_.getTrue())};
      hints.push_back(llvm::MDNode::get(ctx_, look));
    }
    llvm::MDNode *loopId = llvm::MDNode::getDistinct(ctx_, hints);
    loopId->replaceOperandWith(0, loopId);
    latch->setMetadata(llvm::LLVMContext::MD_loop, loopId);
    b_.SetInsertPoint(done);
  }

  /// The loop's body as its own function, run by the thread pool: the
  /// `k`-th outlined loop.
  void parallel(const Stmt &s, size_t k) {
    llvm::Value *extent = expr(*s.extent);
    llvm::Value *cost = s.cost ? expr(*s.cost) : b_.getInt64(1);
    // The context: the buffer array and N, on the caller's stack.
    llvm::IRBuilder<> entry(entry_, entry_->begin());
    llvm::AllocaInst *context = entry.CreateAlloca(contextTy_, nullptr, "context");
    b_.CreateStore(buffers_, b_.CreateStructGEP(contextTy_, context, 0));
    b_.CreateStore(batch_, b_.CreateStructGEP(contextTy_, context, 1));
    auto *bodyTy = llvm::FunctionType::get(b_.getVoidTy(), {i8p_, i64_, i64_}, false);
    llvm::Function *body = llvm::Function::Create(
        bodyTy, llvm::Function::ExternalLinkage, f_.name + ".parallel" + std::to_string(k), m_);
    if (here_[k])
      define(body, s);
    auto *taskTy = llvm::PointerType::getUnqual(bodyTy);
    llvm::FunctionCallee pool = m_.getOrInsertFunction(
        "nnc_parallel_for",
        llvm::FunctionType::get(b_.getVoidTy(), {taskTy, i8p_, i64_, i64_}, false));
    b_.CreateCall(pool, {body, b_.CreateBitCast(context, i8p_), extent, cost});
  }

  /// Emits the body of function `body`: loop `s` over its range.
  void define(llvm::Function *body, const Stmt &s) {
    llvm::IRBuilderBase::InsertPoint saved = b_.saveIP();
    State state{fn_, entry_, batch_, buffers_, bufferPtrs_, vars_};
    {
      auto args = body->arg_begin();
      llvm::Value *raw = &*args++;
      llvm::Value *from = &*args++;
      llvm::Value *to = &*args;
      // The entry block reads the context, then the buffer pointers.
      auto *entryBlock = llvm::BasicBlock::Create(ctx_, "entry", body);
      b_.SetInsertPoint(entryBlock);
      llvm::Value *typed = b_.CreateBitCast(raw, llvm::PointerType::getUnqual(contextTy_));
      llvm::Value *bufs = b_.CreateLoad(bufsTy_, b_.CreateStructGEP(contextTy_, typed, 0));
      llvm::Value *n = b_.CreateLoad(i64_, b_.CreateStructGEP(contextTy_, typed, 1));
      begin(body, entryBlock, bufs, n);
      counted(s, from, to);
      b_.CreateRetVoid();
    }
    fn_ = state.fn;
    entry_ = state.entry;
    batch_ = state.batch;
    buffers_ = state.buffers;
    bufferPtrs_ = state.bufferPtrs;
    vars_ = state.vars;
    b_.restoreIP(saved);
  }

  void stmt(const Stmt &s) {
    switch (s.kind) {
    case StmtKind::Block:
      for (const Stmt &b : s.body)
        stmt(b);
      break;
    case StmtKind::For:
      // Only outermost loops run in parallel (see outlinedLoops): an inner
      // loop's body may use the enclosing loops' variables, which an
      // outlined body cannot see.
      if (auto k = outlined_.find(&s); k != outlined_.end())
        parallel(s, k->second);
      else if (s.lanes && !lanes_ && rules_.supported(s))
        vectorLoop(s);
      else
        counted(s, b_.getInt64(0), expr(*s.extent));
      break;
    case StmtKind::Store:
    case StmtKind::Local:
    case StmtKind::Assign:
      if (!lanes_) {
        leaf(s);
        break;
      }
      for (size_t c = 0; c < chunks_.size(); ++c) {
        chunk(c);
        leaf(s);
      }
      break;
    }
  }

  /// A store, or a local set: once per vector in a lanes loop.
  void leaf(const Stmt &s) {
    switch (s.kind) {
    case StmtKind::Block: // stmt() takes these
    case StmtKind::For:
      break;
    case StmtKind::Store: {
      llvm::Value *value = expr(*s.value);
      if (lanes_ && value->getType() == f32_ && rules_.step(*s.index) == 1)
        value = b_.CreateVectorSplat(width_, value);
      if (lanes_ && value->getType() == vectorTy_) {
        llvm::Value *at = b_.CreateBitCast(
            element(s.buffer, *s.index, Type::F32), llvm::PointerType::getUnqual(vectorTy_));
        tag(b_.CreateAlignedStore(value, at, llvm::Align(4)), s.buffer);
        break;
      }
      tag(b_.CreateStore(value, element(s.buffer, *s.index,
                                        f_.buffers[static_cast<size_t>(s.buffer)].type)),
          s.buffer);
      break;
    }
    case StmtKind::Local:
    case StmtKind::Assign: {
      llvm::Value *value = expr(*s.value);
      if (lanes_ && value->getType() == f32_)
        value = b_.CreateVectorSplat(width_, value);
      b_.CreateStore(value, lanes_ ? laneSlot(s.var) : slot(s.var, f32_));
      break;
    }
    }
  }

  struct State {
    llvm::Function *fn;
    llvm::BasicBlock *entry;
    llvm::Value *batch, *buffers;
    std::vector<llvm::Value *> bufferPtrs;
    std::vector<llvm::AllocaInst *> vars;
  };

  llvm::Module &m_;
  llvm::LLVMContext &ctx_;
  llvm::IRBuilder<> b_;
  const Function &f_;
  LaneRules rules_; ///< which lanes loops are vectors; rules_.var: the one being emitted
  const std::vector<bool> &here_; ///< the pieces this module defines (see the class)
  llvm::Type *i64_, *f32_, *i8p_, *bufsTy_;
  llvm::StructType *contextTy_;
  llvm::Function *fn_ = nullptr;
  llvm::Value *batch_ = nullptr, *buffers_ = nullptr;
  llvm::BasicBlock *entry_ = nullptr;
  std::vector<llvm::Value *> bufferPtrs_;
  std::vector<llvm::AllocaInst *> vars_;
  std::map<int, llvm::MDNode *> scopes_, noalias_; ///< per buffer, for the current group
  bool lanes_ = false;         ///< emitting a lanes loop's body
  std::vector<std::pair<uint64_t, unsigned>> chunks_; ///< its vectors: first lane, lanes
  size_t chunk_ = 0;                                  ///< the vector being emitted
  unsigned width_ = 0;                                ///< that vector's lanes
  llvm::Type *vectorTy_ = nullptr;
  std::map<std::pair<int, size_t>, llvm::AllocaInst *> laneSlots_; ///< per local and vector
  std::map<const Stmt *, size_t> outlined_; ///< the outlined loops: their pieces
};

/// The pipeline: what the loops need, and nothing else (O3's full pipeline
/// took 5x as long on the training step and ran no faster). SROA turns the
/// variables' stack slots into registers; early CSE and CFG simplification
/// clean up the index arithmetic; LICM hoists what a loop does not change;
/// the vectorizer works along the contiguous dimension (fma stays fma: no
/// fast-math, so no reduction is reordered); instcombine and CFG
/// simplification clean up after it. Loops are emitted already rotated,
/// with the exit test induction-variable simplification would make
/// (Emitter::counted): with loop rotation, that pass and an instcombine
/// before the loop passes, the pipeline took twice as long on mnist.nn's
/// training step and gave the same machine code up to register names. No
/// unrolling but the vectorizer's interleaving, which only products' inner
/// loops get.
void optimize(llvm::Module &m, llvm::TargetMachine &tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  pto.LoopUnrolling = false;
  llvm::PassBuilder pb(&tm, pto);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cam, mam);
  llvm::FunctionPassManager fpm;
  fpm.addPass(llvm::SROAPass());
  fpm.addPass(llvm::EarlyCSEPass(true));
  fpm.addPass(llvm::SimplifyCFGPass());
  llvm::LoopPassManager lpm;
  lpm.addPass(llvm::LICMPass());
  fpm.addPass(llvm::createFunctionToLoopPassAdaptor(std::move(lpm), true));
  fpm.addPass(llvm::LoopVectorizePass(llvm::LoopVectorizeOptions(false, false)));
  fpm.addPass(llvm::InstCombinePass());
  fpm.addPass(llvm::SimplifyCFGPass());
  llvm::ModulePassManager mpm;
  mpm.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(fpm)));
  mpm.run(m, mam);
}

/// A rough measure of the work of compiling a statement, to share the
/// pieces out evenly: its statements and expressions (a lanes loop's body
/// counts once, as it is emitted once). Measured on mnist.nn, compiling a
/// function costs about kFunctionWeight more whatever its size (a weight
/// transpose of 17 took half as long as a product's output loop of 300).
double weight(const Expr &e) {
  double w = 1;
  for (const ExprRef &x : {e.a, e.b, e.c, e.d})
    if (x)
      w += weight(*x);
  return w;
}
double weight(const Stmt &s) {
  double w = 1;
  for (const ExprRef &x : {s.extent, s.index, s.value, s.cost})
    if (x)
      w += weight(*x);
  for (const Stmt &b : s.body)
    w += weight(b);
  return w;
}

constexpr double kFunctionWeight = 100;

} // namespace

JIT::JIT() : impl_(std::make_shared<Impl>()) {}
JIT::~JIT() = default;

std::unique_ptr<JIT> JIT::create(std::string &error) {
  static bool initialized = [] {
    // A loop the vectorizer takes 8 lanes at a time also gets a vector
    // epilogue (LLVM's default: only from 16 lanes): a pooled row of 13
    // windows is vectors of 8 and 4 and one window, not 8 and five alone
    // (fashion_cnn.nn: the first pooling 2.14 -> 1.31 us per image, the
    // training step about 3% faster).
    static std::vector<std::string> words{"nnc", "-epilogue-vectorization-minimum-VF=8"};
    // For developers: NNC_LLVM_ARGS="-pass-remarks=loop-vectorize ..." (LLVM's
    // own options, e.g. what its vectorizer did and why not)
    if (const char *text = std::getenv("NNC_LLVM_ARGS")) {
      std::istringstream in(text);
      for (std::string word; in >> word;)
        words.push_back(word);
    }
    static std::vector<const char *> argv;
    for (const std::string &word : words)
      argv.push_back(word.c_str());
    llvm::cl::ParseCommandLineOptions(static_cast<int>(argv.size()), argv.data());
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialized;
  auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!builder) {
    error = llvm::toString(builder.takeError());
    return nullptr;
  }
  builder->setCodeGenOptLevel(llvm::CodeGenOpt::Default);
  auto machine = builder->createTargetMachine();
  if (!machine) {
    error = llvm::toString(machine.takeError());
    return nullptr;
  }
  // compile() adds object files, made on threads of its own; this compiler,
  // for IR modules, is never used (unlike the default one it makes no
  // target machine until it is, so creating the JIT stays cheap).
  auto jit = llvm::orc::LLJITBuilder()
                 .setJITTargetMachineBuilder(*builder)
                 .setCompileFunctionCreator([](llvm::orc::JITTargetMachineBuilder b)
                                                -> llvm::Expected<std::unique_ptr<
                                                    llvm::orc::IRCompileLayer::IRCompiler>> {
                   return std::make_unique<llvm::orc::ConcurrentIRCompiler>(std::move(b));
                 })
                 .create();
  if (!jit) {
    error = llvm::toString(jit.takeError());
    return nullptr;
  }
  auto &dl = (*jit)->getDataLayout();
  auto generator = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      dl.getGlobalPrefix());
  if (!generator) {
    error = llvm::toString(generator.takeError());
    return nullptr;
  }
  (*jit)->getMainJITDylib().addGenerator(std::move(*generator));
  // The runtime's functions, by address: they need not be exported.
  llvm::orc::SymbolMap runtime;
  runtime[(*jit)->mangleAndIntern("nnc_parallel_for")] = llvm::JITEvaluatedSymbol(
      llvm::pointerToJITTargetAddress(&nnc_parallel_for),
      llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
  runtime[(*jit)->mangleAndIntern("nnc_uniform01")] = llvm::JITEvaluatedSymbol(
      llvm::pointerToJITTargetAddress(&nnc_uniform01),
      llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
  if (auto err = (*jit)->getMainJITDylib().define(llvm::orc::absoluteSymbols(runtime))) {
    error = llvm::toString(std::move(err));
    return nullptr;
  }
  std::unique_ptr<JIT> out(new JIT());
  out->impl_->jit = std::move(*jit);
  out->impl_->builder = std::move(*builder);
  return out;
}

CompiledFunction JIT::compile(const loops::Function &f, std::string &error) {
  std::vector<CompiledFunction> one = compile(std::vector<const loops::Function *>{&f}, error);
  return one.empty() ? nullptr : one[0];
}

std::vector<CompiledFunction> JIT::compile(const std::vector<const loops::Function *> &fs,
                                           std::string &error) {
  CompiledCode c = compileTracked(fs, error);
  if (c.code)
    kept_.push_back(std::move(c.code));
  return std::move(c.functions);
}

CompiledCode JIT::compileTracked(const std::vector<const loops::Function *> &fs,
                                 std::string &error) {
  if (fs.empty()) {
    error = "internal error: nothing to compile";
    return {};
  }
  std::vector<loops::Function> named; // each compiled function gets a fresh symbol
  for (const loops::Function *f : fs) {
    if (std::string problem = loops::verify(*f); !problem.empty()) {
      error = "internal error: invalid loop IR in " + f->name + ": " + problem;
      return {};
    }
    named.push_back(*f);
    named.back().name = f->name + "_" + std::to_string(++counter_);
  }
  // The pieces (each function's own code and its outlined loops' bodies)
  // are dealt out, largest first, to the part with the least work so far;
  // each part is one module, compiled on a thread of its own.
  struct Piece {
    size_t function, k;
    double weight;
  };
  std::vector<Piece> pieces;
  std::vector<std::vector<const Stmt *>> outlined(named.size());
  for (size_t i = 0; i < named.size(); ++i) {
    outlinedLoops(named[i].body, outlined[i]);
    double rest = weight(named[i].body);
    for (size_t k = 1; k <= outlined[i].size(); ++k) {
      double w = weight(*outlined[i][k - 1]);
      rest -= w;
      pieces.push_back({i, k, w + kFunctionWeight});
    }
    pieces.push_back({i, 0, rest + kFunctionWeight});
  }
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const Piece &a, const Piece &b) { return a.weight > b.weight; });
  struct Part {
    std::vector<std::vector<bool>> here; ///< per function, per piece
    double load = 0;
    std::unique_ptr<llvm::MemoryBuffer> object;
    std::string error, ir;
  };
  // As many parts as cores, at most 4: on mnist.nn the largest piece is a
  // seventh of the work, and every part costs a module, a target machine
  // and an object file of its own.
  size_t cores = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<Part> parts(std::min(pieces.size(), cores));
  for (Part &part : parts)
    for (size_t i = 0; i < named.size(); ++i)
      part.here.emplace_back(outlined[i].size() + 1, false);
  for (const Piece &piece : pieces) {
    Part &least = *std::min_element(parts.begin(), parts.end(),
                                    [](const Part &a, const Part &b) { return a.load < b.load; });
    least.here[piece.function][piece.k] = true;
    least.load += piece.weight;
  }
  auto compilePart = [this, &named, &outlined](Part &part) {
    // A target machine of its own: they are not safe to share between threads.
    auto machine = impl_->builder.createTargetMachine();
    if (!machine) {
      part.error = "JIT: " + llvm::toString(machine.takeError());
      return;
    }
    llvm::TargetMachine &tm = **machine;
    llvm::LLVMContext ctx;
    // LLVM reports what it could not do (a loop the vectorizer was asked
    // to look at but left scalar) as warnings on stderr: not the user's
    // business, unless a developer asked for remarks (NNC_LLVM_ARGS).
    // An error is kept for after (not thrown through LLVM's frames).
    std::string llvmError;
    if (!std::getenv("NNC_LLVM_ARGS"))
      ctx.setDiagnosticHandlerCallBack(
          [](const llvm::DiagnosticInfo &info, void *context) {
            auto &error = *static_cast<std::string *>(context);
            if (info.getSeverity() == llvm::DS_Error && error.empty()) {
              llvm::raw_string_ostream out(error);
              llvm::DiagnosticPrinterRawOStream printer(out);
              info.print(printer);
            }
          },
          &llvmError);
    llvm::Module module("nnc", ctx);
    module.setDataLayout(tm.createDataLayout());
    module.setTargetTriple(tm.getTargetTriple().str());
    for (size_t i = 0; i < named.size(); ++i)
      if (std::find(part.here[i].begin(), part.here[i].end(), true) != part.here[i].end())
        Emitter(module, named[i], outlined[i], part.here[i]).run();
    std::string verify;
    llvm::raw_string_ostream vs(verify);
    if (llvm::verifyModule(module, &vs)) {
      part.error = "internal error: invalid LLVM IR: " + vs.str();
      return;
    }
    // Functions take the host CPU's features, so the vectorizer can use them.
    for (llvm::Function &fn : module) {
      fn.addFnAttr("target-cpu", tm.getTargetCPU());
      fn.addFnAttr("target-features", tm.getTargetFeatureString());
    }
    optimize(module, tm);
    if (keepIR_) {
      llvm::raw_string_ostream ir(part.ir);
      module.print(ir, nullptr);
      ir.flush();
    }
    // Machine code, on this thread; linked on the caller's.
    auto object = llvm::orc::SimpleCompiler(tm)(module);
    if (!object) {
      part.error = "JIT: " + llvm::toString(object.takeError());
      return;
    }
    if (!llvmError.empty()) {
      part.error = "internal error: LLVM: " + llvmError;
      return;
    }
    part.object = std::move(*object);
  };
  // Nothing may escape a part: its thread would end the process.
  auto run = [&compilePart](Part &part) {
    try {
      compilePart(part);
    } catch (const std::exception &e) {
      part.error = std::string("internal error: ") + e.what();
    }
  };
  // The parts compile at the same time, one thread each (or in turn, if no
  // thread can be started).
  std::vector<std::thread> threads;
  std::vector<Part *> here{&parts[0]};
  for (size_t i = 1; i < parts.size(); ++i) {
    try {
      threads.emplace_back(run, std::ref(parts[i]));
    } catch (const std::system_error &) {
      here.push_back(&parts[i]);
    }
  }
  for (Part *part : here)
    run(*part);
  for (std::thread &t : threads)
    t.join();
  lastIR_.clear();
  for (Part &part : parts) {
    if (!part.error.empty()) {
      error = part.error;
      return {};
    }
    lastIR_ += part.ir;
  }
  // For reading the machine code (objdump -d): NNC_JIT_OBJECTS=DIR writes
  // each part's object file there, as DIR/nnc_jit_<call>_<part>.o.
  if (const char *dir = std::getenv("NNC_JIT_OBJECTS")) {
    static std::atomic<int> calls{0};
    int call = ++calls;
    for (size_t i = 0; i < parts.size(); ++i) {
      std::string path = std::string(dir) + "/nnc_jit_" + std::to_string(call) + "_" +
                         std::to_string(i) + ".o";
      const llvm::MemoryBuffer &object = *parts[i].object;
      std::ofstream(path, std::ios::binary)
          .write(object.getBufferStart(), static_cast<std::streamsize>(object.getBufferSize()));
    }
  }
  // The parts share one resource tracker, removed when the last handle to
  // it goes (also if linking fails half-way).
  llvm::orc::ResourceTrackerSP tracker = impl_->jit->getMainJITDylib().createResourceTracker();
  CompiledCode out;
  out.code = std::shared_ptr<void>(tracker.get(), [impl = impl_, tracker](void *) {
    if (llvm::Error err = tracker->remove())
      llvm::consumeError(std::move(err)); // nothing to do about it: the memory stays
  });
  for (Part &part : parts)
    if (auto err = impl_->jit->addObjectFile(tracker, std::move(part.object))) {
      error = "JIT: " + llvm::toString(std::move(err));
      return {};
    }
  for (const loops::Function &f : named) {
    auto symbol = impl_->jit->lookup(f.name); // links the parts
    if (!symbol) {
      error = "JIT: " + llvm::toString(symbol.takeError());
      return {};
    }
    out.functions.push_back(reinterpret_cast<CompiledFunction>(symbol->getAddress()));
    out.symbols.push_back(f.name);
  }
  return out;
}

bool JIT::defines(const std::string &symbol) {
  auto found = impl_->jit->lookup(symbol);
  if (!found) {
    llvm::consumeError(found.takeError());
    return false;
  }
  return true;
}

} // namespace nnc
