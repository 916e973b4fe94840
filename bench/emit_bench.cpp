// emit_bench.cpp — the JIT's train_step against the C++ --emit-cpp writes
// of it, in one process on the same data: compiles a .nn file, JIT-compiles
// its train_step, emits it with emitCpp, builds that as a shared library
// with the emitted README's flags (plus -shared -fPIC), loads it, checks
// that both compute the same bits, then times one step of each, rounds
// interleaved (JIT, emitted, JIT, …), and prints the medians. Not a test.
//
// With --groups, each top-level group of loops (a fused group: the loop IR
// function's statements) is also compiled by itself, by both backends, and
// timed the same way: where the emitted step loses its time.
//
// With --predict, the function is predict (inference) instead.
//
//   emit_bench FILE [--threads T] [--batch B] [--reps R] [--rounds K]
//                   [--groups] [--predict] [--cxx CXX] [--flags "..."] [--work DIR] [--keep]
//
// --keep: the work directory's .cpp files that exist are compiled as they are
// (edited by hand, to try a change).
//
// Every call runs on the same buffers, and parameters are not swapped with
// their next values, so each call does the same work on the same numbers.
#include "codegen/EmitCpp.h"
#include "codegen/JIT.h"
#include "driver/Pipeline.h"
#include "frontend/Parse.h"
#include "loops/LoopIR.h"
#include "frontend/Sema.h"
#include "support/Diag.h"
#include "support/Files.h"

#include "Parallel.h"
#include "Random.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#ifndef NNC_RUNTIME_DIR
#error "NNC_RUNTIME_DIR: the runtime's sources (Parallel.h, Random.h)"
#endif

using namespace nnc;
using Clock = std::chrono::steady_clock;
using Step = void (*)(float **, int64_t);

namespace {

struct Options {
  std::string file, cxx = "g++", flags = "-std=c++17 -O3 -march=native -pthread", work;
  int threads = 1;
  int64_t batch = 64;
  int reps = 200, rounds = 11;
  bool groups = false, keep = false, predict = false;
};

int fail(const std::string &message) {
  std::cerr << "emit_bench: " << message << "\n";
  return 1;
}

/// Every buffer of `f`, allocated for `batch` (64-byte aligned, temporaries
/// in one arena), filled deterministically.
struct Buffers {
  std::vector<float *> pointers;
  std::vector<void *> owned;
  Buffers(const loops::Function &f, int64_t batch, int64_t classes) {
    auto alloc = [&](int64_t elements) {
      size_t bytes = (static_cast<size_t>(std::max<int64_t>(elements, 1)) * 8 + 63) / 64 * 64;
      void *p = std::aligned_alloc(64, bytes);
      std::memset(p, 0, bytes);
      owned.push_back(p);
      return p;
    };
    float *arena = static_cast<float *>(alloc(f.arenaElements));
    for (size_t i = 0; i < f.buffers.size(); ++i) {
      const loops::Buffer &b = f.buffers[i];
      int64_t n = b.elements(batch);
      if (b.kind == loops::BufferKind::Temp) {
        pointers.push_back(arena + b.offset);
        continue;
      }
      void *p = alloc(n);
      pointers.push_back(static_cast<float *>(p));
      if (b.type == loops::Type::I64) {
        for (int64_t k = 0; k < n; ++k)
          static_cast<int64_t *>(p)[k] = static_cast<int64_t>(
              nnc_rt::randomBits(1, 2, static_cast<uint64_t>(k)) % static_cast<uint64_t>(classes));
        continue;
      }
      float *x = static_cast<float *>(p);
      if (b.name == kStepName)
        x[0] = 3;
      else if (b.name == kStepsPerEpochName)
        x[0] = 1000;
      else if (b.name == kBaseLrName)
        x[0] = 1e-3f;
      else if (b.kind == loops::BufferKind::Input)
        for (int64_t k = 0; k < n; ++k)
          x[k] = nnc_rt::uniform01(1, 1, static_cast<uint64_t>(k));
      else if (b.kind == loops::BufferKind::Param)
        for (int64_t k = 0; k < n; ++k)
          x[k] = (nnc_rt::uniform01(2, i, static_cast<uint64_t>(k)) - 0.5f) * 0.1f;
    }
  }
  ~Buffers() {
    for (void *p : owned)
      std::free(p);
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Microseconds per call of `fn` on `b`, `reps` calls.
double timeIt(Step fn, float **b, int64_t batch, int reps) {
  Clock::time_point start = Clock::now();
  for (int i = 0; i < reps; ++i)
    fn(b, batch);
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / reps;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char * { return i + 1 < argc ? argv[++i] : "0"; };
    if (a == "--threads")
      o.threads = std::atoi(next());
    else if (a == "--batch")
      o.batch = std::atoll(next());
    else if (a == "--reps")
      o.reps = std::atoi(next());
    else if (a == "--rounds")
      o.rounds = std::atoi(next());
    else if (a == "--groups")
      o.groups = true;
    else if (a == "--predict")
      o.predict = true;
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--cxx")
      o.cxx = next();
    else if (a == "--flags")
      o.flags = next();
    else if (a == "--work")
      o.work = next();
    else if (o.file.empty())
      o.file = a;
    else
      return fail("unexpected argument " + a);
  }
  if (o.file.empty() || o.batch < 1 || o.reps < 1 || o.rounds < 1)
    return fail("usage: emit_bench FILE [--threads T] [--batch B] [--reps R] [--rounds K] "
                "[--groups] [--predict] [--cxx CXX] [--flags F] [--work DIR]");
  if (o.work.empty()) {
    char dir[] = "/tmp/emit_bench.XXXXXX";
    if (!mkdtemp(dir))
      return fail("cannot make a work directory");
    o.work = dir;
  } else if (std::system(("mkdir -p '" + o.work + "'").c_str()) != 0) {
    return fail("cannot make " + o.work);
  }
  nnc_set_threads(o.threads);

  SourceManager sources;
  Diag diag(sources, std::cerr);
  std::string error;
  std::optional<std::string> text = readSourceFile(o.file, error);
  if (!text)
    return fail(error);
  uint32_t file = sources.add(o.file, std::move(*text));
  Module module = parseModule(sources, file, diag);
  if (diag.hasErrors())
    return 1;
  std::optional<Program> program = analyze(module, sources, diag);
  if (!program)
    return 1;
  std::string why;
  std::optional<LoweredProgram> lowered = lowerProgram(*program, o.batch, why);
  if (!lowered)
    return fail("cannot compile: " + why);
  const loops::Function &step = o.predict ? lowered->predict : lowered->trainStep;
  const std::string name = o.predict ? "predict" : "train_step";
  int64_t classes = lowered->inference.value(lowered->inference.outputs[0]).shape.dims.back();

  // The functions to compare: the whole step, then (--groups) each group.
  struct Case {
    std::string name, symbol;
    loops::Function f;
    Step jit = nullptr, emitted = nullptr;
  };
  std::vector<Case> cases;
  cases.push_back({name, "nnc_" + name, step});
  if (o.groups && step.body.kind == loops::StmtKind::Block)
    for (size_t g = 0; g < step.body.body.size(); ++g) {
      loops::Function part = step;
      loops::Stmt only = step.body; // a block of one statement
      only.body = {step.body.body[g]};
      part.body = only;
      if (!loops::verify(part).empty()) // reads a local another group sets
        continue;
      std::string what = step.body.body[g].comment;
      cases.push_back({"g" + std::to_string(g) + " " + what.substr(0, 70),
                       "nnc_group" + std::to_string(g), part});
    }

  std::unique_ptr<JIT> jit = JIT::create(error);
  if (!jit)
    return fail(error);
  std::vector<const loops::Function *> fns;
  for (const Case &c : cases)
    fns.push_back(&c.f);
  std::vector<CompiledFunction> compiled = jit->compile(fns, error);
  if (compiled.empty())
    return fail(error);

  std::string so = o.work + "/emitted.so", command = o.cxx + " " + o.flags +
                                                      " -shared -fPIC -I" NNC_RUNTIME_DIR " -o " + so;
  for (size_t i = 0; i < cases.size(); ++i) {
    cases[i].jit = compiled[i];
    std::string path = o.work + "/" + cases[i].symbol + ".cpp";
    if (!o.keep || !std::ifstream(path))
      std::ofstream(path) << emitCpp(cases[i].f, cases[i].symbol, {o.file, false});
    command += " " + path;
  }
  std::cerr << command << "\n";
  if (std::system(command.c_str()) != 0)
    return fail("the emitted C++ does not compile");
  void *library = dlopen(so.c_str(), RTLD_NOW);
  if (!library)
    return fail(dlerror());
  for (Case &c : cases) {
    c.emitted = reinterpret_cast<Step>(dlsym(library, c.symbol.c_str()));
    if (!c.emitted)
      return fail("no " + c.symbol + " in " + so);
  }

  // Same bits: the whole step once on each of two equal sets of buffers.
  {
    Buffers a(step, o.batch, classes), b(step, o.batch, classes);
    cases[0].jit(a.pointers.data(), o.batch);
    cases[0].emitted(b.pointers.data(), o.batch);
    for (size_t i = 0; i < step.buffers.size(); ++i) {
      const loops::Buffer &buf = step.buffers[i];
      if (buf.kind == loops::BufferKind::Temp)
        continue;
      size_t bytes = static_cast<size_t>(buf.elements(o.batch)) * (buf.type == loops::Type::I64 ? 8 : 4);
      if (std::memcmp(a.pointers[i], b.pointers[i], bytes) != 0)
        std::printf("DIFFERENT: buffer %s\n", buf.name.c_str());
    }
  }

  Buffers data(step, o.batch, classes);
  float **b = data.pointers.data();
  // The whole step first, so that every temporary holds a step's values.
  cases[0].jit(b, o.batch);
  std::printf("%-78s %10s %10s %7s\n", "function", "jit us", "emitted us", "ratio");
  double sumJ = 0, sumE = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    Case &c = cases[i];
    int reps = i == 0 ? o.reps : o.reps * 4;
    timeIt(c.jit, b, o.batch, reps / 4 + 1); // warm-up
    timeIt(c.emitted, b, o.batch, reps / 4 + 1);
    std::vector<double> j, e;
    for (int r = 0; r < o.rounds; ++r) {
      if (r % 2 == 0) {
        j.push_back(timeIt(c.jit, b, o.batch, reps));
        e.push_back(timeIt(c.emitted, b, o.batch, reps));
      } else {
        e.push_back(timeIt(c.emitted, b, o.batch, reps));
        j.push_back(timeIt(c.jit, b, o.batch, reps));
      }
    }
    double mj = median(j), me = median(e);
    if (i > 0) {
      sumJ += mj;
      sumE += me;
    }
    std::printf("%-78s %10.2f %10.2f %7.2f\n", c.name.c_str(), mj, me, me / mj);
    std::fflush(stdout);
  }
  if (cases.size() > 1)
    std::printf("%-78s %10.2f %10.2f %7.2f\n", "sum of the groups", sumJ, sumE, sumE / sumJ);
  return 0;
}
