// nnc_bench.cpp — the nnc half of bench/run.py: compiles a .nn file, then
// times train_step and predict on random data of one batch, and the
// compilation itself. Prints one JSON object (the same form as
// torch_mnist.py's). Not a test: run.py compares it with PyTorch in the
// same run. Besides compile_ms (wall clock), compile_cpu_ms is the CPU time
// the whole process spent compiling, on all its threads: on a busy machine
// the wall clock grows with the waiting, the CPU time hardly does.
//
//   nnc_bench FILE [--threads T] [--batch B] [--reps R] [--warmup W] [--rounds K]
#include "codegen/JIT.h"
#include "codegen/Runner.h"
#include "driver/Pipeline.h"
#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "interp/Interpreter.h"
#include "support/Diag.h"
#include "support/Files.h"

#include "Parallel.h"
#include "Random.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace nnc;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string file;
  int threads = 1;
  int64_t batch = 64;
  int reps = 200, warmup = 20, rounds = 5;
};

double since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

/// CPU time of the process so far, all threads, in ms.
double cpuMs() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

std::string stats(std::vector<double> rounds) {
  std::vector<double> sorted = rounds;
  std::sort(sorted.begin(), sorted.end());
  std::ostringstream out;
  out << "{\"median\": " << sorted[sorted.size() / 2] << ", \"min\": " << sorted.front()
      << ", \"rounds\": [";
  for (size_t i = 0; i < rounds.size(); ++i)
    out << (i ? ", " : "") << rounds[i];
  out << "]}";
  return out.str();
}

int fail(const std::string &message) {
  std::cerr << "nnc_bench: " << message << "\n";
  return 1;
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
    else if (a == "--warmup")
      o.warmup = std::atoi(next());
    else if (a == "--rounds")
      o.rounds = std::atoi(next());
    else if (o.file.empty())
      o.file = a;
    else
      return fail("unexpected argument " + a);
  }
  if (o.file.empty() || o.batch < 1 || o.reps < 1 || o.rounds < 1)
    return fail("usage: nnc_bench FILE [--threads T] [--batch B] [--reps R] [--warmup W] [--rounds K]");
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

  // Compilation: lowering both functions and JIT-compiling them, each round
  // in a fresh JIT.
  std::vector<double> compileMs, compileCpuMs;
  std::unique_ptr<JIT> jit;
  std::optional<LoweredProgram> lowered;
  CompiledFunction trainFn = nullptr, predictFn = nullptr;
  for (int r = 0; r < o.rounds; ++r) {
    Clock::time_point start = Clock::now();
    double cpuStart = cpuMs();
    std::string why;
    lowered = lowerProgram(*program, o.batch, why);
    if (!lowered)
      return fail("cannot compile: " + why);
    jit = JIT::create(error);
    if (!jit)
      return fail(error);
    std::vector<CompiledFunction> fns = jit->compile({&lowered->trainStep, &lowered->predict}, error);
    if (fns.empty())
      return fail(error);
    trainFn = fns[0];
    predictFn = fns[1];
    compileMs.push_back(since(start) / 1000);
    compileCpuMs.push_back(cpuMs() - cpuStart);
  }

  Runner train(lowered->trainStep, trainFn), predict(lowered->predict, predictFn);
  for (const auto &[name, t] : initialParams(lowered->step.graph, 42)) {
    float *p = train.data(name);
    for (size_t i = 0; i < t.size(); ++i)
      p[i] = static_cast<float>(t[i]);
  }
  const Value &input = lowered->inference.values[0];
  int64_t classes = lowered->inference.value(lowered->inference.outputs[0]).shape.dims.back();
  for (Runner *r : {&train, &predict}) {
    float *x = r->data(input.name);
    for (int64_t i = 0; i < r->elements(input.name, o.batch); ++i)
      x[i] = nnc_rt::uniform01(1, 1, static_cast<uint64_t>(i));
  }
  int64_t *labels = train.labels(kLabelsName);
  for (int64_t i = 0; i < o.batch; ++i)
    labels[i] = static_cast<int64_t>(nnc_rt::randomBits(1, 2, static_cast<uint64_t>(i)) % classes);
  train.data(kStepsPerEpochName)[0] = 1000;
  train.data(kBaseLrName)[0] = static_cast<float>(program->optimizer.attrs.getFloat("lr"));
  for (ValueId id : lowered->inference.params()) {
    const std::string &name = lowered->inference.value(id).name;
    std::memcpy(predict.data(name), train.data(name),
                static_cast<size_t>(train.elements(name, o.batch)) * sizeof(float));
  }

  int64_t step = 0;
  auto trainStep = [&] {
    train.data(kStepName)[0] = static_cast<float>(++step);
    train.run(o.batch);
  };
  auto predictOnce = [&] { predict.run(o.batch); };
  // Per call: wall time, and the process's processor time (on a busy
  // machine the steadier of the two; it counts every thread's work).
  auto time = [&](const std::function<void()> &f, std::vector<double> &cpuUs) {
    for (int i = 0; i < o.warmup; ++i)
      f();
    std::vector<double> perCall;
    for (int r = 0; r < o.rounds; ++r) {
      Clock::time_point start = Clock::now();
      double cpuStart = cpuMs();
      for (int i = 0; i < o.reps; ++i)
        f();
      perCall.push_back(since(start) / o.reps);
      cpuUs.push_back((cpuMs() - cpuStart) * 1000 / o.reps);
    }
    return perCall;
  };
  std::vector<double> trainCpuUs, predictCpuUs;
  std::vector<double> trainUs = time(trainStep, trainCpuUs);
  std::vector<double> predictUs = time(predictOnce, predictCpuUs);
  float loss = train.data(kLossName)[0];
  std::printf("{\"impl\": \"nnc\", \"threads\": %d, \"batch\": %lld, \"train_step_us\": %s, "
              "\"predict_us\": %s, \"train_step_cpu_us\": %s, \"predict_cpu_us\": %s, "
              "\"compile_ms\": %s, \"compile_cpu_ms\": %s, \"last_loss\": %g}\n",
              o.threads, static_cast<long long>(o.batch), stats(trainUs).c_str(),
              stats(predictUs).c_str(), stats(trainCpuUs).c_str(), stats(predictCpuUs).c_str(),
              stats(compileMs).c_str(), stats(compileCpuMs).c_str(), static_cast<double>(loss));
  return 0;
}
