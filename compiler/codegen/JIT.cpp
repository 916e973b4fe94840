// JIT.cpp — LLVM code generation for the loop IR, and the ORC LLJIT that
// runs it. The only file that includes LLVM headers.
#include "codegen/JIT.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <map>

namespace nnc {

using namespace loops;

struct JIT::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> machine;
};

namespace {

/// Emits one loop-IR function into an LLVM module.
class Emitter {
public:
  Emitter(llvm::Module &m, const Function &f)
      : m_(m), ctx_(m.getContext()), b_(ctx_), f_(f), i64_(b_.getInt64Ty()),
        f32_(b_.getFloatTy()) {}

  void run() {
    auto *ptrTy = llvm::PointerType::getUnqual(llvm::PointerType::getUnqual(f32_));
    auto *type = llvm::FunctionType::get(b_.getVoidTy(), {ptrTy, i64_}, false);
    fn_ = llvm::Function::Create(type, llvm::Function::ExternalLinkage, f_.name, m_);
    auto args = fn_->arg_begin();
    llvm::Value *buffers = &*args++;
    batch_ = &*args;
    entry_ = llvm::BasicBlock::Create(ctx_, "entry", fn_);
    b_.SetInsertPoint(entry_);
    for (size_t i = 0; i < f_.buffers.size(); ++i) { // load every buffer pointer once
      llvm::Value *slot = b_.CreateInBoundsGEP(llvm::PointerType::getUnqual(f32_), buffers,
                                               b_.getInt64(static_cast<int64_t>(i)));
      llvm::LoadInst *ptr = b_.CreateLoad(llvm::PointerType::getUnqual(f32_), slot,
                                          f_.buffers[i].name);
      bufferPtrs_.push_back(ptr);
    }
    vars_.assign(static_cast<size_t>(f_.vars), nullptr);
    stmt(f_.body);
    b_.CreateRetVoid();
  }

private:
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

  llvm::Value *math(const char *name, llvm::Value *x) {
    llvm::FunctionCallee fn = m_.getOrInsertFunction(name, f32_, f32_);
    return b_.CreateCall(fn, {x});
  }

  llvm::Value *expr(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Const:
      return e.type == Type::I64 ? static_cast<llvm::Value *>(b_.getInt64(e.i))
                                 : llvm::ConstantFP::get(f32_, e.f);
    case ExprKind::Batch:
      return batch_;
    case ExprKind::Var: {
      llvm::Type *t = e.type == Type::I64 ? i64_ : f32_;
      return b_.CreateLoad(t, slot(e.var, t));
    }
    case ExprKind::Load: {
      llvm::Value *ptr = b_.CreateInBoundsGEP(f32_, bufferPtrs_[static_cast<size_t>(e.buffer)],
                                              expr(*e.a));
      return b_.CreateLoad(f32_, ptr);
    }
    case ExprKind::Unary: {
      llvm::Value *a = expr(*e.a);
      switch (e.unary) {
      case UnaryOp::Neg:
        return b_.CreateFNeg(a);
      case UnaryOp::Exp:
        return math("expf", a);
      case UnaryOp::Log:
        return math("logf", a);
      case UnaryOp::Sqrt:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, a);
      case UnaryOp::Tanh:
        return math("tanhf", a);
      case UnaryOp::Erf:
        return math("erff", a);
      case UnaryOp::Cos:
        return math("cosf", a);
      case UnaryOp::Floor:
        return b_.CreateUnaryIntrinsic(llvm::Intrinsic::floor, a);
      }
      return a;
    }
    case ExprKind::Binary: {
      llvm::Value *a = expr(*e.a), *c = expr(*e.b);
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
      }
      return a;
    }
    case ExprKind::Fma:
      return b_.CreateIntrinsic(llvm::Intrinsic::fma, {f32_}, {expr(*e.a), expr(*e.b), expr(*e.c)});
    case ExprKind::Select: {
      llvm::Value *cond = b_.CreateFCmpOGT(expr(*e.a), llvm::ConstantFP::get(f32_, 0.0));
      return b_.CreateSelect(cond, expr(*e.b), expr(*e.c));
    }
    }
    return nullptr;
  }

  void stmt(const Stmt &s) {
    switch (s.kind) {
    case StmtKind::Block:
      for (const Stmt &b : s.body)
        stmt(b);
      break;
    case StmtKind::For: {
      llvm::AllocaInst *index = slot(s.var, i64_);
      llvm::Value *extent = expr(*s.extent);
      b_.CreateStore(b_.getInt64(0), index);
      auto *cond = llvm::BasicBlock::Create(ctx_, "loop", fn_);
      auto *body = llvm::BasicBlock::Create(ctx_, "body", fn_);
      auto *done = llvm::BasicBlock::Create(ctx_, "done", fn_);
      b_.CreateBr(cond);
      b_.SetInsertPoint(cond);
      b_.CreateCondBr(b_.CreateICmpSLT(b_.CreateLoad(i64_, index), extent), body, done);
      b_.SetInsertPoint(body);
      for (const Stmt &b : s.body)
        stmt(b);
      b_.CreateStore(b_.CreateAdd(b_.CreateLoad(i64_, index), b_.getInt64(1)), index);
      b_.CreateBr(cond);
      b_.SetInsertPoint(done);
      break;
    }
    case StmtKind::Store: {
      llvm::Value *ptr = b_.CreateInBoundsGEP(f32_, bufferPtrs_[static_cast<size_t>(s.buffer)],
                                              expr(*s.index));
      b_.CreateStore(expr(*s.value), ptr);
      break;
    }
    case StmtKind::Local:
    case StmtKind::Assign:
      b_.CreateStore(expr(*s.value), slot(s.var, f32_));
      break;
    }
  }

  llvm::Module &m_;
  llvm::LLVMContext &ctx_;
  llvm::IRBuilder<> b_;
  const Function &f_;
  llvm::Type *i64_, *f32_;
  llvm::Function *fn_ = nullptr;
  llvm::Value *batch_ = nullptr;
  llvm::BasicBlock *entry_ = nullptr;
  std::vector<llvm::Value *> bufferPtrs_;
  std::vector<llvm::AllocaInst *> vars_;
};

void optimize(llvm::Module &m, llvm::TargetMachine &tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cam, mam);
  pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3).run(m, mam);
}

} // namespace

JIT::JIT() : impl_(std::make_unique<Impl>()) {}
JIT::~JIT() = default;

std::unique_ptr<JIT> JIT::create(std::string &error) {
  static bool initialized = [] {
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
  builder->setCodeGenOptLevel(llvm::CodeGenOpt::Aggressive);
  auto machine = builder->createTargetMachine();
  if (!machine) {
    error = llvm::toString(machine.takeError());
    return nullptr;
  }
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(*builder).create();
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
  std::unique_ptr<JIT> out(new JIT());
  out->impl_->jit = std::move(*jit);
  out->impl_->machine = std::move(*machine);
  return out;
}

CompiledFunction JIT::compile(const loops::Function &f, std::string &error) {
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>("nnc", *ctx);
  llvm::TargetMachine &tm = *impl_->machine;
  module->setDataLayout(tm.createDataLayout());
  module->setTargetTriple(tm.getTargetTriple().str());
  // Each compiled function gets a fresh symbol name.
  loops::Function named = f;
  named.name = f.name + "_" + std::to_string(++counter_);
  Emitter(*module, named).run();
  std::string verify;
  llvm::raw_string_ostream vs(verify);
  if (llvm::verifyModule(*module, &vs)) {
    error = "internal error: invalid LLVM IR: " + vs.str();
    return nullptr;
  }
  // Functions take the host CPU's features, so the vectorizer can use them.
  for (llvm::Function &fn : *module) {
    fn.addFnAttr("target-cpu", tm.getTargetCPU());
    fn.addFnAttr("target-features", tm.getTargetFeatureString());
  }
  optimize(*module, tm);
  lastIR_.clear();
  llvm::raw_string_ostream ir(lastIR_);
  module->print(ir, nullptr);
  ir.flush();
  if (auto err = impl_->jit->addIRModule(
          llvm::orc::ThreadSafeModule(std::move(module), std::move(ctx)))) {
    error = "JIT: " + llvm::toString(std::move(err));
    return nullptr;
  }
  auto symbol = impl_->jit->lookup(named.name);
  if (!symbol) {
    error = "JIT: " + llvm::toString(symbol.takeError());
    return nullptr;
  }
  return reinterpret_cast<CompiledFunction>(symbol->getAddress());
}

} // namespace nnc
