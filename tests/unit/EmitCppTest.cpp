// EmitCppTest.cpp — the C++ backend (codegen/EmitCpp) against the JIT, bit
// for bit. Every example's train_step and predict, emitted as C++ and built
// with `g++ -std=c++17 -O3 -march=native -pthread -Wall -Wextra -Werror` (no
// warning either) together with the runtime's thread pool and RNG, run 20
// training steps on 1 and on 2 threads: every step's loss and learning rate,
// and after the last every output (the logits), parameter, optimizer state
// and running statistic, then predict's outputs with the trained
// parameters, must be the JIT's to the bit (any NaN equal to any NaN: see
// firstDifference). So must small programs with every op, loss, optimizer
// and schedule the examples do not use, one loop of every scalar operation
// over special values (NaN, ±0, ±inf, subnormals), and a function with the
// loop-IR constructs the lowering does not produce today.
//
// The program is one generated main.cpp (written here) that follows a
// script: which function, its buffers (sizes, arena offsets, which output
// is the next value of which parameter — allocated and swapped exactly as
// the Runner does), then per call the bytes to put into buffers, the batch,
// and the buffers to record afterwards. The test runs the same script on
// the JIT's Runner and compares the two records.
//
// That the comparison can fail: one fma of mnist.nn's train_step computed
// as a multiply and an add (one rounding more, in one product) must change
// the record. (Reverting what the emitter matches of LLVM — max as a
// compare and select, pow(2^n, x) as exp2f — fails the scalar loop too.)
//
// Cost: one g++ invocation per build compiles everything (-O3 of the
// emitted kernels is the bulk, 3-5 s an example on this machine; the small
// programs, 23 units, about 20 s). NNC_EMITCPP_TIMES=1 prints the times,
// NNC_EMITCPP_KEEP=1 keeps the directories (a failing build's or run's
// directory is kept anyway), NNC_EMITCPP_CXX names the compiler (g++).
#include "Compile.h"
#include "codegen/EmitCpp.h"
#include "codegen/JIT.h"
#include "codegen/Runner.h"
#include "driver/Pipeline.h"
#include "interp/Interpreter.h"
#include "support/Files.h"

#include "Parallel.h"
#include "Random.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>

using namespace nnc;
using nnc::test::compile;
namespace fs = std::filesystem;

namespace {

const int kSteps = 20;

Program exampleProgram(const std::string &name) {
  std::string error;
  std::optional<std::string> text =
      readSourceFile(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn", error);
  INFO(error);
  REQUIRE(text);
  test::Compiled c = compile(*text, name + ".nn");
  INFO(c.diagnostics);
  REQUIRE(c.program);
  return *c.program;
}

// ---- scripts: what both sides run ----

struct Call {
  int64_t n = 1;
  std::vector<std::pair<int, std::string>> fill; ///< buffer, bytes
  std::vector<int> record;                       ///< buffers recorded after the call
};

struct Script {
  int function = 0; ///< 0 train_step, 1 predict (the harness's table)
  std::vector<Call> calls;
};

void put(std::string &out, int64_t v) { out.append(reinterpret_cast<const char *>(&v), 8); }

/// The script as the harness reads it: int64s and raw bytes.
std::string serialize(const Script &s, const loops::Function &f) {
  std::string out;
  put(out, s.function);
  put(out, static_cast<int64_t>(f.buffers.size()));
  for (const loops::Buffer &b : f.buffers) {
    put(out, b.elements(f.capacity));
    put(out, b.kind == loops::BufferKind::Temp ? b.offset : -1);
    put(out, b.updates);
  }
  put(out, f.arenaElements);
  put(out, static_cast<int64_t>(s.calls.size()));
  for (const Call &c : s.calls) {
    put(out, c.n);
    put(out, static_cast<int64_t>(c.fill.size()));
    for (const auto &[b, bytes] : c.fill) {
      put(out, b);
      put(out, static_cast<int64_t>(bytes.size()));
      out += bytes;
    }
    put(out, static_cast<int64_t>(c.record.size()));
    for (int b : c.record) {
      const loops::Buffer &buf = f.buffers[static_cast<size_t>(b)];
      put(out, b);
      put(out, buf.elements(c.n) * (buf.type == loops::Type::I64 ? 8 : 4));
    }
  }
  return out;
}

int64_t elementBytes(const loops::Buffer &b) { return b.type == loops::Type::I64 ? 8 : 4; }

void *pointerOf(Runner &r, const loops::Buffer &b) {
  return b.type == loops::Type::I64 ? static_cast<void *>(r.labels(b.name))
                                    : static_cast<void *>(r.data(b.name));
}

/// Runs `s` on the JIT's Runner; returns the record.
std::string runJit(Runner &r, const Script &s) {
  const loops::Function &f = r.function();
  std::string out;
  for (const Call &c : s.calls) {
    for (const auto &[b, bytes] : c.fill) {
      void *p = pointerOf(r, f.buffers[static_cast<size_t>(b)]);
      REQUIRE(p);
      std::memcpy(p, bytes.data(), bytes.size());
    }
    r.run(c.n);
    for (int b : c.record) {
      const loops::Buffer &buf = f.buffers[static_cast<size_t>(b)];
      const void *p = pointerOf(r, buf);
      REQUIRE(p);
      out.append(static_cast<const char *>(p),
                 static_cast<size_t>(buf.elements(c.n) * elementBytes(buf)));
    }
  }
  return out;
}

/// Where two records first differ: the call, the buffer and the element;
/// "" when they are the same. The same means the same bits, except that any
/// NaN equals any NaN: a NaN's sign and payload are not part of what either
/// compiler keeps (GCC may compute x · -3 as -(x · 3) where it has x · 3).
std::string firstDifference(const Script &s, const loops::Function &f, const std::string &want,
                            const std::string &got) {
  if (want.size() != got.size())
    return "records of " + std::to_string(want.size()) + " and " + std::to_string(got.size()) +
           " bytes";
  size_t at = 0;
  for (size_t k = 0; k < s.calls.size(); ++k)
    for (int b : s.calls[k].record) {
      const loops::Buffer &buf = f.buffers[static_cast<size_t>(b)];
      size_t size = static_cast<size_t>(elementBytes(buf));
      size_t bytes = static_cast<size_t>(buf.elements(s.calls[k].n)) * size;
      for (size_t i = 0; i < bytes; i += size) {
        if (std::memcmp(want.data() + at + i, got.data() + at + i, size) == 0)
          continue;
        std::ostringstream o;
        o << "call " << k + 1 << ", " << buf.name << "[" << i / size << "]";
        if (buf.type == loops::Type::F32) {
          float a, b2;
          std::memcpy(&a, want.data() + at + i, 4);
          std::memcpy(&b2, got.data() + at + i, 4);
          if (std::isnan(a) && std::isnan(b2))
            continue;
          o.precision(9);
          o << ": JIT " << a << ", emitted C++ " << b2;
        }
        return o.str();
      }
      at += bytes;
    }
  return "";
}

std::string bytesOf(const std::vector<float> &v) {
  return std::string(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(float));
}

int findBuffer(const loops::Function &f, const std::string &name) {
  for (size_t i = 0; i < f.buffers.size(); ++i)
    if (f.buffers[i].name == name && f.buffers[i].kind != loops::BufferKind::Temp)
      return static_cast<int>(i);
  return -1;
}

/// A step's inputs: images uniform in [-1, 1) and labels fixed by (key,
/// buffer), the schedule's scalars.
void fillInputs(const loops::Function &f, Call &c, int64_t classes, uint64_t key, float step,
                float lr) {
  for (size_t i = 0; i < f.buffers.size(); ++i) {
    const loops::Buffer &b = f.buffers[i];
    if (b.kind != loops::BufferKind::Input)
      continue;
    int64_t count = b.elements(c.n);
    if (b.type == loops::Type::I64) {
      std::vector<int64_t> labels(static_cast<size_t>(count));
      for (size_t j = 0; j < labels.size(); ++j)
        labels[j] = static_cast<int64_t>(nnc_rt::randomBits(key, 100 + i, j) %
                                         static_cast<uint64_t>(classes));
      c.fill.emplace_back(static_cast<int>(i),
                          std::string(reinterpret_cast<const char *>(labels.data()),
                                      labels.size() * sizeof(int64_t)));
      continue;
    }
    std::vector<float> v(static_cast<size_t>(count));
    if (b.name == kStepName)
      v.assign(v.size(), step);
    else if (b.name == kStepsPerEpochName)
      v.assign(v.size(), 5.0f);
    else if (b.name == kBaseLrName)
      v.assign(v.size(), lr);
    else
      for (size_t j = 0; j < v.size(); ++j)
        v[j] = 2 * nnc_rt::uniform01(key, 200 + i, j) - 1;
    c.fill.emplace_back(static_cast<int>(i), bytesOf(v));
  }
}

/// Every parameter and state buffer of `f` set from `values` (by name),
/// and the cache flag raised, as the Runner does when it hands them out.
void fillParams(const loops::Function &f, Call &c,
                const std::function<const float *(const std::string &)> &values) {
  for (size_t i = 0; i < f.buffers.size(); ++i) {
    const loops::Buffer &b = f.buffers[i];
    if (b.kind != loops::BufferKind::Param)
      continue;
    const float *v = values(b.name);
    if (!v)
      continue;
    c.fill.emplace_back(static_cast<int>(i),
                        std::string(reinterpret_cast<const char *>(v),
                                    static_cast<size_t>(b.elements(f.capacity)) * sizeof(float)));
  }
  const float one = 1;
  for (size_t i = 0; i < f.buffers.size(); ++i)
    if (f.buffers[i].kind == loops::BufferKind::Cache && f.buffers[i].name == loops::kStaleName)
      c.fill.emplace_back(static_cast<int>(i), std::string(reinterpret_cast<const char *>(&one), sizeof one));
}

void recordAll(const loops::Function &f, Call &c, bool params) {
  for (size_t i = 0; i < f.buffers.size(); ++i) {
    loops::BufferKind k = f.buffers[i].kind;
    if (k == loops::BufferKind::Output || (params && k == loops::BufferKind::Param))
      c.record.push_back(static_cast<int>(i));
  }
}

// ---- the emitted program ----

/// The harness: runs a script (see serialize) on the emitted functions.
std::string harness(const std::vector<std::string> &symbols) {
  std::string table, decls;
  for (size_t i = 0; i < symbols.size(); ++i) {
    decls += "extern \"C\" void " + symbols[i] + "(float **buffers, int64_t N);\n";
    table += std::string(i ? ", " : "") + symbols[i];
  }
  return R"(// main.cpp — runs a script of calls on the emitted functions (EmitCppTest).
#include "Parallel.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

)" + decls + R"(
namespace {

FILE *in;

int64_t next() {
  int64_t v;
  if (std::fread(&v, 8, 1, in) != 1) {
    std::fprintf(stderr, "script: truncated\n");
    std::exit(2);
  }
  return v;
}

/// 64-byte aligned, zeroed memory for `elements` of 8 bytes at most (as the Runner).
void *allocate(int64_t elements) {
  size_t bytes = (static_cast<size_t>(elements < 1 ? 1 : elements) * 8 + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, bytes);
  if (!p)
    std::exit(3);
  std::memset(p, 0, bytes);
  return p;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SCRIPT RECORD THREADS\n", argv[0]);
    return 2;
  }
  nnc_set_threads(std::atoi(argv[3]));
  in = std::fopen(argv[1], "rb");
  FILE *out = std::fopen(argv[2], "wb");
  if (!in || !out)
    return 2;
  void (*const functions[])(float **, int64_t) = {)" +
         table + R"(};
  int64_t which = next();
  if (which < 0 || which >= static_cast<int64_t>(sizeof functions / sizeof functions[0]))
    return 2;
  int64_t count = next();
  std::vector<int64_t> elements, offsets, updates;
  for (int64_t i = 0; i < count; ++i) {
    elements.push_back(next());
    offsets.push_back(next());
    updates.push_back(next());
  }
  int64_t arenaElements = next();
  float *arena = arenaElements > 0 ? static_cast<float *>(allocate(arenaElements)) : nullptr;
  std::vector<void *> pointers;
  for (int64_t i = 0; i < count; ++i)
    pointers.push_back(offsets[static_cast<size_t>(i)] >= 0
                           ? static_cast<void *>(arena + offsets[static_cast<size_t>(i)])
                           : allocate(elements[static_cast<size_t>(i)]));
  for (int64_t calls = next(); calls > 0; --calls) {
    int64_t n = next();
    for (int64_t fills = next(); fills > 0; --fills) {
      int64_t b = next(), bytes = next();
      if (std::fread(pointers[static_cast<size_t>(b)], 1, static_cast<size_t>(bytes), in) !=
          static_cast<size_t>(bytes))
        return 2;
    }
    functions[which](reinterpret_cast<float **>(pointers.data()), n);
    for (size_t i = 0; i < pointers.size(); ++i)
      if (updates[i] >= 0)
        std::swap(pointers[i], pointers[static_cast<size_t>(updates[i])]);
    for (int64_t records = next(); records > 0; --records) {
      int64_t b = next(), bytes = next();
      std::fwrite(pointers[static_cast<size_t>(b)], 1, static_cast<size_t>(bytes), out);
    }
  }
  return std::fclose(out) == 0 ? 0 : 2;
}
)";
}

/// A fresh directory under the system's temporary directory.
fs::path freshDirectory(const std::string &what) {
  std::string pattern = (fs::temp_directory_path() / ("nnc-emitcpp-" + what + "-XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  REQUIRE(mkdtemp(buf.data()) != nullptr);
  return fs::path(buf.data());
}

void writeFile(const fs::path &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

std::string readFile(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Writes the emitted functions, the runtime's thread pool and RNG and the
/// harness into `dir` and builds them with one compiler invocation.
double build(const fs::path &dir, const std::vector<std::pair<std::string, std::string>> &units) {
  std::vector<std::string> symbols;
  std::string sources = "main.cpp Parallel.cpp RandomC.cpp";
  for (const auto &[symbol, text] : units) {
    writeFile(dir / (symbol + ".cpp"), text);
    symbols.push_back(symbol);
    sources += " " + symbol + ".cpp";
  }
  writeFile(dir / "main.cpp", harness(symbols));
  for (const char *file : {"Parallel.h", "Parallel.cpp", "Random.h", "RandomC.cpp"})
    fs::copy_file(fs::path(NNC_SOURCE_DIR) / "runtime" / file, dir / file,
                  fs::copy_options::overwrite_existing);
  const char *cxx = std::getenv("NNC_EMITCPP_CXX");
  std::string command = "cd '" + dir.string() + "' && " + (cxx ? cxx : "g++") +
                        " -std=c++17 -O3 -march=native -pthread -Wall -Wextra -Werror " + sources +
                        " -o program > build.log 2>&1";
  auto start = std::chrono::steady_clock::now();
  int status = std::system(command.c_str());
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(command << "\n" << readFile(dir / "build.log"));
  REQUIRE(status == 0);
  // warnings fail the build (-Werror); nothing else may be printed either
  CHECK(readFile(dir / "build.log").empty());
  if (std::getenv("NNC_EMITCPP_TIMES"))
    std::fprintf(stderr, "emitcpp: %s: g++ %.1f s\n", dir.string().c_str(), seconds);
  return seconds;
}

/// Runs the program on `script` with `threads` threads; returns the record.
std::string runProgram(const fs::path &dir, const Script &script, const loops::Function &f,
                       int threads, const std::string &name) {
  writeFile(dir / (name + ".script"), serialize(script, f));
  std::string record = (dir / (name + "." + std::to_string(threads) + ".record")).string();
  std::string command = "'" + (dir / "program").string() + "' '" +
                        (dir / (name + ".script")).string() + "' '" + record + "' " +
                        std::to_string(threads);
  auto start = std::chrono::steady_clock::now();
  int status = std::system(command.c_str());
  if (std::getenv("NNC_EMITCPP_TIMES"))
    std::fprintf(stderr, "emitcpp: %s %s on %d thread(s): %.1f s\n", dir.string().c_str(),
                 name.c_str(), threads,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  INFO(command);
  REQUIRE(status == 0);
  return readFile(record);
}

/// The loop IR with its first fma replaced by a multiply and an add.
loops::ExprRef unfuse(const loops::ExprRef &e, bool &done) {
  if (!e || done)
    return e;
  if (e->kind == loops::ExprKind::Fma) {
    done = true;
    return loops::add(loops::mul(e->a, e->b), e->c);
  }
  auto copy = std::make_shared<loops::Expr>(*e);
  copy->a = unfuse(e->a, done);
  copy->b = unfuse(e->b, done);
  copy->c = unfuse(e->c, done);
  copy->d = unfuse(e->d, done);
  return copy;
}
void unfuse(loops::Stmt &s, bool &done) {
  s.value = unfuse(s.value, done);
  for (loops::Stmt &b : s.body)
    unfuse(b, done);
}

/// A program's functions as the JIT runs them: the scripts and the records.
struct Expected {
  std::unique_ptr<LoweredProgram> lowered;
  std::unique_ptr<loops::Function> own; ///< or a function of its own
  std::vector<const loops::Function *> functions; ///< train_step (and predict)
  std::vector<Script> scripts;
  std::vector<std::string> records;
};

/// Lowers `p` for batches of `n`, compiles it with the JIT and runs the
/// scripts: 20 training steps from the initial state (every fifth a short
/// batch, as an epoch's last), recording the loss and learning rate after
/// every step and every output, parameter and state after the last; then,
/// when `withPredict`, prediction with the trained parameters on three
/// batches, recording its outputs.
Expected runOnJit(const Program &p, const std::string &name, int64_t n, bool withPredict) {
  Expected e;
  std::string why;
  std::optional<LoweredProgram> lowered = lowerProgram(p, n, why);
  INFO(why);
  REQUIRE(lowered);
  e.lowered = std::make_unique<LoweredProgram>(std::move(*lowered));
  const loops::Function &train = e.lowered->trainStep, &predict = e.lowered->predict;
  e.functions.push_back(&train);
  if (withPredict)
    e.functions.push_back(&predict);

  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  INFO(error);
  REQUIRE(jit);
  std::vector<CompiledFunction> fns = jit->compile(e.functions, error);
  INFO(error);
  REQUIRE(fns.size() == e.functions.size());
  Runner trainJit(train, fns[0]);

  Graph g = buildGraph(p);
  int64_t classes = g.value(g.outputs[0]).shape.dims.back();
  float lr = static_cast<float>(p.optimizer.attrs.getFloat("lr"));
  std::map<std::string, std::vector<float>> init;
  for (const auto &[key, t] : initialParams(e.lowered->step.graph, 7)) {
    std::vector<float> v(t.size());
    for (size_t i = 0; i < t.size(); ++i)
      v[i] = static_cast<float>(t[i]);
    init[key] = v;
  }
  auto initial = [&](const std::string &key) -> const float * {
    auto it = init.find(key);
    return it == init.end() ? nullptr : it->second.data();
  };
  Script trainScript;
  int loss = findBuffer(train, kLossName), lrBuffer = findBuffer(train, kLrName);
  REQUIRE(loss >= 0);
  REQUIRE(lrBuffer >= 0);
  for (int t = 1; t <= kSteps; ++t) {
    Call c;
    c.n = t % 5 == 0 ? std::max<int64_t>(1, n - 3) : n;
    if (t == 1)
      fillParams(train, c, initial);
    fillInputs(train, c, classes, static_cast<uint64_t>(t), static_cast<float>(t), lr);
    c.record = {loss, lrBuffer};
    if (t == kSteps)
      recordAll(train, c, true);
    trainScript.calls.push_back(c);
  }
  auto start = std::chrono::steady_clock::now();
  e.scripts.push_back(trainScript);
  e.records.push_back(runJit(trainJit, trainScript));
  if (std::getenv("NNC_EMITCPP_TIMES"))
    std::fprintf(stderr, "emitcpp: %s: the JIT's %d steps: %.1f s\n", name.c_str(), kSteps,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

  if (withPredict) {
    Runner predictJit(predict, fns[1]);
    Script predictScript;
    for (int64_t k = 0; k < 3; ++k) {
      Call c;
      c.n = k == 0 ? n : k == 1 ? std::max<int64_t>(1, n - 1) : 1;
      if (k == 0)
        fillParams(predict, c, [&](const std::string &key) -> const float * {
          const float *trained = trainJit.data(key);
          return trained ? trained : initial(key);
        });
      fillInputs(predict, c, classes, 1000 + static_cast<uint64_t>(k), 1, lr);
      recordAll(predict, c, false);
      predictScript.calls.push_back(c);
    }
    e.scripts.push_back(predictScript);
    e.records.push_back(runJit(predictJit, predictScript));
  }
  return e;
}

/// Emits every function of `programs` as C++ (symbols name_k), builds them
/// into one program, runs every script on 1 and on 2 threads and compares
/// the records with the JIT's. Returns whether all were the same.
bool checkEmitted(const std::string &what, const std::vector<const Expected *> &programs) {
  std::vector<std::pair<std::string, std::string>> units;
  for (size_t k = 0; k < programs.size(); ++k)
    for (const loops::Function *f : programs[k]->functions) {
      std::string symbol = f->name + "_" + std::to_string(k);
      units.emplace_back(symbol, emitCpp(*f, symbol));
    }
  fs::path dir = freshDirectory(what);
  INFO("in " << dir.string());
  build(dir, units);
  bool same = true;
  for (int threads : {1, 2}) {
    int function = 0;
    for (size_t k = 0; k < programs.size(); ++k)
      for (size_t j = 0; j < programs[k]->functions.size(); ++j, ++function) {
        const loops::Function &f = *programs[k]->functions[j];
        Script script = programs[k]->scripts[j];
        script.function = function;
        std::string name = f.name + "_" + std::to_string(k);
        std::string got = runProgram(dir, script, f, threads, name);
        const std::string &want = programs[k]->records[j];
        std::string difference = firstDifference(script, f, want, got);
        INFO(name << " on " << threads << " thread(s): " << difference);
        CHECK(difference.empty());
        same = same && difference.empty();
      }
  }
  if (!std::getenv("NNC_EMITCPP_KEEP") && same) // else kept, to look at
    fs::remove_all(dir);
  return same;
}

/// The batch each example is checked at: 16, less where a step costs more.
int64_t batchOf(const std::string &example) {
  if (example == "resnet_tiny")
    return 4;
  if (example == "fashion_cnn")
    return 8;
  return 16;
}

void checkExample(const std::string &name) {
  Expected e = runOnJit(exampleProgram(name), name, batchOf(name), true);
  checkEmitted(name, {&e});
}

/// One loop over pairs (x, y), special values among them (±0, ±inf, NaN,
/// subnormals, the edges of expf's range), storing one column per
/// expression: every unary op, pow with the constant operands LLVM
/// rewrites and some it keeps, max, min and select with NaNs and signed
/// zeros, fma against a multiply and an add, and libm calls on constants
/// (which LLVM folds, in double, or leaves to run).
Expected elementwiseOnJit() {
  using namespace loops;
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.0f, 3.0f, -2.5f, 1e-30f, 1e-40f,
                           -1e-40f, 88.7f, 89.0f, -104.0f, -87.5f, 1e30f, -1e30f, 0.1f, 100.5f,
                           1e-7f, 16777217.0f, 0.7f, -0.7f, 6.0f, -9.0f};
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  xs.insert(xs.end(), {inf, -inf, nan, 0.0f, -0.0f, nan, 1.0f});
  std::vector<float> ys = xs;
  std::reverse(ys.begin(), ys.end()); // pairs (0, -0), (-0, 0), (NaN, 1), (1, NaN), …
  for (uint64_t i = 0; i < 200; ++i) { // and ordinary numbers of every size
    float u = nnc_rt::uniform01(3, 1, i), v = nnc_rt::uniform01(3, 2, i);
    xs.push_back(i % 2 ? 20 * u - 10 : std::exp(80 * u - 40) * (v < 0.3f ? -1 : 1));
    ys.push_back(i % 3 ? 8 * v - 4 : std::exp(40 * v - 20));
  }
  const auto K = static_cast<int64_t>(xs.size());
  ExprRef x = load(0, var(0, Type::I64)), y = load(1, var(0, Type::I64));
  auto pw = [](ExprRef a, ExprRef b) { return binary(BinaryOp::Pow, std::move(a), std::move(b)); };
  std::vector<ExprRef> columns = {
      unary(UnaryOp::Neg, x), unary(UnaryOp::Exp, x), unary(UnaryOp::Log, x),
      unary(UnaryOp::Sqrt, x), unary(UnaryOp::Tanh, x), unary(UnaryOp::Erf, x),
      unary(UnaryOp::Cos, x), unary(UnaryOp::Floor, x),
      pw(f32(0.1), x), pw(f32(0.5), x), pw(f32(2), x), pw(f32(4), x), pw(f32(8), x),
      pw(f32(0.125), x), pw(f32(10), x), pw(f32(1), x), pw(f32(0.9), y),
      pw(x, f32(2)), pw(x, f32(-1)), pw(x, f32(0.5)), pw(x, f32(3)), pw(x, f32(0)), pw(x, f32(1)),
      pw(y, x),
      binary(BinaryOp::Max, x, y), binary(BinaryOp::Min, x, y), binary(BinaryOp::Max, x, f32(0)),
      binary(BinaryOp::Min, f32(0), x), select(x, x, y), select(y, f32(1), x),
      fma(x, y, f32(1)), add(mul(x, y), f32(1)), binary(BinaryOp::Div, x, y),
      binary(BinaryOp::Sub, x, y),
      unary(UnaryOp::Exp, f32(-1)), unary(UnaryOp::Log, f32(3)), unary(UnaryOp::Tanh, f32(0.3)),
      unary(UnaryOp::Cos, f32(2)), unary(UnaryOp::Erf, f32(0.5)), pw(f32(0.3), f32(2.5)),
      unary(UnaryOp::Exp, f32(100)), unary(UnaryOp::Exp, unary(UnaryOp::Neg, f32(0.5))),
      unary(UnaryOp::Sqrt, f32(2))};
  auto f = std::make_unique<Function>();
  f->name = "elementwise";
  f->buffers = {{"x", BufferKind::Input, K, false},
                {"y", BufferKind::Input, K, false},
                {"out", BufferKind::Output, K * static_cast<int64_t>(columns.size()), false}};
  f->vars = 1;
  std::vector<loops::Stmt> body;
  for (size_t m = 0; m < columns.size(); ++m)
    body.push_back(store(2, add(i64(static_cast<int64_t>(m) * K), var(0, Type::I64)), columns[m]));
  f->body = loop(0, i64(K), body);
  f->nests = 1;

  Expected e;
  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  REQUIRE(jit);
  CompiledFunction fn = jit->compile(*f, error);
  INFO(error);
  REQUIRE(fn);
  Runner r(*f, fn);
  Script script;
  Call c;
  c.fill = {{0, bytesOf(xs)}, {1, bytesOf(ys)}};
  c.record = {2};
  script.calls.push_back(c);
  e.functions.push_back(f.get());
  e.scripts.push_back(script);
  e.records.push_back(runJit(r, script));
  e.own = std::move(f);
  return e;
}

/// What the lowering does not produce today but the loop IR allows, and so
/// the emitter must mean as the JIT does: a local set before a parallel
/// loop and updated after it (the JIT's variables belong to the function),
/// a local read after the loop that sets it, a loop whose extent is loaded,
/// a lanes loop with a local of its own, buffers named like C++ keywords.
Expected structureOnJit() {
  using namespace loops;
  auto f = std::make_unique<Function>();
  f->name = "structure";
  f->buffers = {{"float", BufferKind::Input, 8, false},
                {"new", BufferKind::Input, 1, false, Type::I64},
                {"out.put'", BufferKind::Output, 16, false}};
  f->vars = 7;
  auto x = [](ExprRef at) { return load(0, std::move(at)); };
  auto idx = [](int v) { return var(v, Type::I64); };
  auto s = [](int v) { return var(v, Type::F32); };
  loops::Stmt lanes = loop(5, i64(4), {local(6, x(idx(5))), assign(6, mul(s(6), f32(3))),
                                store(2, add(i64(10), idx(5)), s(6))});
  lanes.lanes = true;
  f->body = block(
      {block({local(0, mul(x(i64(0)), f32(2))),
              parallelLoop(1, i64(8), i64(1), {store(2, idx(1), add(x(idx(1)), f32(1)))}),
              loop(2, load(1, i64(0), Type::I64), {assign(0, add(s(0), x(idx(2))))}),
              store(2, i64(8), s(0))},
             "a (first) + b (second)"),
       block({loop(3, i64(4), {local(4, x(idx(3)))}), store(2, i64(9), s(4)), lanes},
             "c (third)")});
  f->nests = 2;
  REQUIRE(verify(*f).empty());

  Expected e;
  std::string error;
  std::unique_ptr<JIT> jit = JIT::create(error);
  REQUIRE(jit);
  CompiledFunction fn = jit->compile(*f, error);
  INFO(error);
  REQUIRE(fn);
  Runner r(*f, fn);
  Script script;
  Call c;
  std::vector<float> xs = {0.5f, -1.25f, 3.0f, 0.1f, 7.0f, -2.0f, 0.3f, 1e-3f};
  int64_t count = 5;
  c.fill = {{0, bytesOf(xs)}, {1, std::string(reinterpret_cast<const char *>(&count), 8)}};
  c.record = {2};
  script.calls.push_back(c);
  e.functions.push_back(f.get());
  e.scripts.push_back(script);
  e.records.push_back(runJit(r, script));
  e.own = std::move(f);
  return e;
}

Program programOf(const std::string &text) {
  test::Compiled c = compile(text, "test.nn");
  INFO(c.diagnostics);
  REQUIRE(c.program);
  return *c.program;
}

} // namespace

TEST_CASE("emitted C++ gives the JIT's bits on mnist.nn", "[emitcpp][slow]") { checkExample("mnist"); }

TEST_CASE("emitted C++ gives the JIT's bits on mnist_augment.nn", "[emitcpp][slow]") {
  checkExample("mnist_augment");
}

TEST_CASE("emitted C++ gives the JIT's bits on fashion.nn", "[emitcpp][slow]") { checkExample("fashion"); }

TEST_CASE("emitted C++ gives the JIT's bits on lenet.nn", "[emitcpp][slow]") { checkExample("lenet"); }

TEST_CASE("emitted C++ gives the JIT's bits on fashion_cnn.nn", "[emitcpp][slow]") {
  checkExample("fashion_cnn");
}

TEST_CASE("emitted C++ gives the JIT's bits on resnet_tiny.nn", "[emitcpp][slow]") {
  checkExample("resnet_tiny");
}

TEST_CASE("every example is checked by EmitCppTest", "[emitcpp]") {
  std::set<std::string> files;
  for (const auto &e : fs::directory_iterator(fs::path(NNC_SOURCE_DIR) / "examples"))
    if (e.path().extension() == ".nn")
      files.insert(e.path().stem().string());
  CHECK(files == std::set<std::string>{"mnist", "mnist_augment", "fashion", "lenet", "fashion_cnn",
                                       "resnet_tiny"});
}

// What the examples do not use: tanh, erf, the RNG (dropout, randn), mse,
// softmax and log_softmax as layers, reshapes, concat, transpose, sums,
// batched matmul, other convolutions and pools, every optimizer and
// schedule (cosine: cos; exponential with gamma 0.5: pow of a power of two,
// which the JIT's LLVM turns into exp2f). Each program's train_step, all in
// one build.
TEST_CASE("emitted C++ gives the JIT's bits for every op and loss and optimizer and schedule",
          "[emitcpp][slow]") {
  auto model = [](const std::string &input, const std::string &body,
                  const std::string &rest =
                      "loss cross_entropy\noptimizer sgd(lr=0.1)\ntrain { seed 5 }\n") {
    return "model Net(x: " + input + ") {\n" + body + "\n}\n" + rest;
  };
  const std::pair<const char *, const char *> bodies[] = {
      {"[12]", "x -> dense(7, bias=false) -> sigmoid -> dense(5) -> tanh -> dense(3)"},
      {"[12]", "x -> dense(6) -> leaky_relu(0.1) -> neg -> dense(4) -> gelu -> dense(3)"},
      {"[12]", "x -> dense(6) -> gelu(\"tanh\") -> dense(5) -> softmax -> dense(3)"},
      {"[12]", "x -> dense(6) -> log_softmax -> dense(3)"},
      {"[12]", "h = x -> dense(8) -> relu\nreturn add(h, mul(h, h -> sigmoid)) -> dropout(0) -> "
               "dense(3)"},
      {"[12]", "add(x, ones(12)) -> reshape(3, 4) -> softmax(axis=1) -> flatten -> dense(3)"},
      {"[12]", "t = x -> reshape(3, 4)\nreturn concat(t, t -> neg, axis=1) -> transpose(1, 2) -> "
               "flatten -> dense(3)"},
      {"[12]", "x -> reshape(3, 4) -> sum(axis=2) -> dense(3)"},
      {"[12]", "x -> reshape(3, 4) -> mean(axis=1) -> dense(3)"},
      {"[12]", "t = x -> reshape(3, 4)\nreturn (t @ (t -> transpose)) -> flatten -> dense(3)"},
      {"[12]", "x -> reshape(3, 4) -> matmul(ones(4, 2)) -> flatten -> dense(3)"},
      {"[1, 8, 8]", "x -> conv2d(3, [3, 2], stride=[2, 1], padding=[1, 2], bias=false) -> relu -> "
                    "maxpool2d(3, stride=2, padding=1) -> flatten -> dense(3)"},
      {"[2, 8, 8]", "x -> conv2d(4, 3, padding=1) -> batchnorm -> relu -> avgpool2d([2, 3], "
                    "stride=1, padding=1) -> flatten -> dense(3)"},
      {"[2, 6, 6]", "x -> maxpool2d(2) -> conv2d(2, 1) -> flatten -> dense(3)"},
      {"[12]", "add(x, randn(12)) -> dense(16) -> relu -> dropout(0.5) -> dense(3)"},
  };
  std::vector<std::string> texts;
  for (auto [input, body] : bodies)
    texts.push_back(model(input, body));
  const char *settings[] = {
      "loss mse\noptimizer sgd(lr=0.1)\n",
      "loss cross_entropy\noptimizer sgd(lr=0.05, momentum=0.9, weight_decay=1e-3)\n",
      "loss cross_entropy\noptimizer sgd(lr=0.05, momentum=0.9, nesterov=true, dampening=0)\n",
      "loss cross_entropy\noptimizer adamw(lr=1e-2, weight_decay=0.1)\n"
      "schedule cosine(warmup=1, min_lr=1e-4)\ntrain { epochs 3, seed 5 }\n",
      "loss cross_entropy\noptimizer adam(lr=1e-2, weight_decay=0.01)\n"
      "schedule exponential(gamma=0.5)\n",
      "loss cross_entropy\noptimizer adam(lr=1e-2)\nschedule step(every=2, gamma=0.25)\n",
  };
  for (const char *rest : settings)
    texts.push_back(model("[12]", "x -> dense(6) -> relu -> dense(3)", rest));
  std::vector<Expected> expected;
  for (const std::string &text : texts) {
    INFO(text);
    expected.push_back(runOnJit(programOf(text), "op", 5, false));
  }
  expected.push_back(elementwiseOnJit());
  expected.push_back(structureOnJit());
  std::vector<const Expected *> all;
  for (const Expected &e : expected)
    all.push_back(&e);
  checkEmitted("ops", all);
}

// The comparison can fail: one fma of mnist.nn's train_step computed as a
// multiply and an add (one rounding more, in the first product) must change
// what the emitted program records.
TEST_CASE("the comparison sees one fma of mnist.nn computed as a multiply and an add",
          "[emitcpp][slow]") {
  Expected e = runOnJit(exampleProgram("mnist"), "mnist", 16, false);
  loops::Function changed = *e.functions[0];
  bool done = false;
  unfuse(changed.body, done);
  REQUIRE(done);
  fs::path dir = freshDirectory("mutant");
  build(dir, {{"train_step_0", emitCpp(changed, "train_step_0")}});
  std::string got = runProgram(dir, e.scripts[0], changed, 1, "train_step_0");
  std::string difference = firstDifference(e.scripts[0], changed, e.records[0], got);
  INFO("the first difference: " << difference);
  CHECK(got.size() == e.records[0].size());
  CHECK(!difference.empty());
  if (!std::getenv("NNC_EMITCPP_KEEP"))
    fs::remove_all(dir);
}
