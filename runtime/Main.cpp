// Main.cpp — an emitted program's command line.
#include "Main.h"

#include "Parallel.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <unistd.h>

namespace nnc_rt {

namespace {

const char *const kUsage =
    "usage: %s [--train | --eval | --predict IMAGE] [options]\n"
    "\n"
    "  --train               train for the declared epochs (the default command)\n"
    "  --eval                evaluate --weights on the test set: loss, accuracy, confusion matrix\n"
    "  --predict IMAGE       classify one image (IDX, PGM or PNG) with --weights\n"
    "  --weights PATH        the checkpoint --eval and --predict use\n"
    "  --data DIR            the directory of MNIST-format IDX files (default: %s)\n"
    "  --epochs N            train for N epochs instead of %lld\n"
    "  --lr X                the optimizer's base learning rate instead of %g\n"
    "  --threads N           threads to compute with (default: every core)\n"
    "  --max-memory SIZE     the most memory to size buffers and data for, e.g. 2G or 512M\n"
    "                        (default: the physical memory)\n"
    "  --json                write results as JSON Lines on stdout\n"
    "  --save PATH           save a checkpoint (safetensors) after every epoch\n"
    "  --resume PATH         continue training from a checkpoint\n"
    "  --stop-after-epoch K  save and stop after epoch K\n"
    "  --plot FILE           draw loss and accuracy per epoch as an SVG file\n"
    "  -h, --help            print this and exit\n";

bool parseInt(const char *text, int64_t low, int64_t high, int64_t &out) {
  errno = 0;
  char *end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < low || v > high)
    return false;
  out = v;
  return true;
}

bool parseDouble(const char *text, double low, double high, double &out) {
  errno = 0;
  char *end = nullptr;
  double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v >= low && v <= high))
    return false;
  out = v;
  return true;
}

} // namespace

int runMain(int argc, char **argv, const EmittedProgram &program) {
  const char *self = argc > 0 ? argv[0] : "trainer";
  auto usage = [&](const std::string &problem) {
    std::cerr << self << ": " << problem << "\nRun '" << self << " --help' for the options.\n";
    return 2;
  };
  Model model = program.model;
  RunOptions options;
  options.dataDir = program.dataDir;
  bool train = false, eval = false;
  int64_t threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char *&out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    const char *v = nullptr;
    if (arg == "-h" || arg == "--help") {
      std::printf(kUsage, self, program.dataDir.empty() ? "none" : program.dataDir.c_str(),
                  static_cast<long long>(model.epochs), model.baseLr);
      return 0;
    } else if (arg == "--train") {
      train = true;
    } else if (arg == "--eval") {
      eval = true;
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--predict" || arg == "--weights" || arg == "--data" || arg == "--save" ||
               arg == "--resume" || arg == "--plot") {
      if (!value(v))
        return usage(arg + " needs a value");
      std::string &field = arg == "--predict"  ? options.image
                           : arg == "--weights" ? options.weights
                           : arg == "--data"    ? options.dataDir
                           : arg == "--save"    ? options.save
                           : arg == "--resume"  ? options.resume
                                                : options.plot;
      field = v;
      options.dataFromOption |= arg == "--data";
    } else if (arg == "--epochs") {
      if (!value(v) || !parseInt(v, 1, 1000000, model.epochs))
        return usage("--epochs needs a whole number from 1 to 1000000");
    } else if (arg == "--stop-after-epoch") {
      if (!value(v) || !parseInt(v, 1, 1000000, options.stopAfterEpoch))
        return usage("--stop-after-epoch needs a whole number from 1 to 1000000");
    } else if (arg == "--threads") {
      if (!value(v) || !parseInt(v, 1, 1024, threads))
        return usage("--threads needs a whole number from 1 to 1024");
    } else if (arg == "--max-memory") {
      uint64_t bytes = 0;
      if (!value(v) || (bytes = parseBytes(v)) == 0)
        return usage("--max-memory needs a size: bytes or a number with K, M, G or T (e.g. 2G)");
      setMemoryCap(bytes);
    } else if (arg == "--lr") {
      double lr = 0;
      if (!value(v) || !parseDouble(v, 0, 1e6, lr))
        return usage("--lr needs a number from 0 to 1e6");
      options.lr = lr;
    } else {
      return usage("unknown option '" + arg + "'");
    }
  }
  bool predicting = !options.image.empty();
  if (train + eval + predicting > 1)
    return usage("--train, --eval and --predict each name what to do: give one");
  if ((eval || predicting) && options.weights.empty())
    return usage(std::string(eval ? "--eval" : "--predict") +
                 " needs --weights PATH (a checkpoint written by --train --save)");
  if (!(eval || predicting) && !options.weights.empty())
    return usage("--weights is for --eval and --predict; to continue training use --resume");
  if (options.stopAfterEpoch > 0 && options.save.empty())
    return usage("--stop-after-epoch needs --save PATH, or the training stopped is lost");
  if (threads > 0)
    nnc_set_threads(static_cast<int>(threads));
  options.progress = ::isatty(STDERR_FILENO) != 0;

  ErrorFn error = [&](Culprit, const std::string &message, const std::string &hint) {
    std::cerr << self << ": error: " << message << "\n";
    if (!hint.empty())
      std::cerr << "  = hint: " << hint << "\n";
  };
  // Every buffer is sized before any is allocated; the data then counts
  // against what they leave.
  {
    uint64_t total = 0;
    std::string problem = buffersOverCap(
        model.name, program.capacity, "",
        {{"the training step's buffers",
          runnerBytes(program.trainBuffers, program.trainArena, program.capacity)},
         {"prediction's",
          runnerBytes(program.predictBuffers, program.predictArena, program.capacity)}},
        total);
    if (!problem.empty()) {
      error(Culprit::None, problem, buffersOverCapHint("compiled in: nnc --batch N --emit-cpp DIR"));
      return 1;
    }
    model.bufferBytes = total;
  }
  try {
    Runner step(program.trainBuffers, program.trainArena, program.capacity, program.trainStep);
    Runner predictor(program.predictBuffers, program.predictArena, program.capacity,
                     program.predict);
    Session session(model, step, predictor);
    if (eval)
      return evaluate(session, options, error);
    if (predicting)
      return predict(session, options, error);
    return nnc_rt::train(session, options, error);
  } catch (const std::exception &e) {
    std::cerr << self << ": internal error: " << e.what() << "\n";
    return 3;
  }
}

} // namespace nnc_rt
