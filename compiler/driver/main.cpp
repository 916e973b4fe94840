// main.cpp — the nnc command line. The compiler is this straight list of
// stages; each flag stops after the stage it names:
//
//   read file -> parseModule -> (--emit=ast) -> analyze -> printSummary (--check)
//                                                       -> buildGraph (--emit=graph)
//                                                       -> buildLossGraph -> differentiate (--emit=grad)
//                                                       -> lowerProgram (--emit=loops)
//                                                          -> JIT::compile (--emit=llvm)
//                                                       -> Session (compiled) + data:
//                                                          --train, --eval, --predict (Train.cpp)
//
// Exit status: 0 success, 1 a mistake in the user's files, 2 a usage error,
// 3 an internal error (a bug in nnc: please report it).
#include "driver/Pipeline.h"
#include "driver/Distributed.h"
#include "driver/EmitProgram.h"
#include "driver/Summary.h"
#include "driver/Train.h"
#include "repl/Repl.h"
#include "codegen/JIT.h"
#include "loops/LoopIR.h"
#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "autodiff/Autodiff.h"
#include "graph/Build.h"
#include "support/Diag.h"
#include "support/Files.h"

#include "Compiled.h"
#include "Parallel.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <limits>
#include <optional>
#include <iostream>
#include <unistd.h>

#ifndef NNC_VERSION
#define NNC_VERSION "0.0.0"
#endif

namespace {

struct Options {
  std::string file;
  bool check = false, train = false, eval = false, inference = false, repl = false;
  std::string emit, emitCpp;
  std::string color = "auto";
  nnc::RunOptions run;
  std::optional<int64_t> epochs, batch, seed;
  int threads = 0;
  int vectorLanes = 0; ///< 0: the host CPU's
  std::string maxMemory;
};


bool useColor(const std::string &mode) {
  if (mode == "always")
    return true;
  if (mode == "never")
    return false;
  return ::isatty(STDERR_FILENO) && std::getenv("NO_COLOR") == nullptr;
}

/// --epochs, --batch and --seed replace the .nn file's settings.
bool applyOverrides(const Options &opt, nnc::Program &program, nnc::Diag &diag) {
  if (opt.epochs)
    program.train.epochs = *opt.epochs;
  if (opt.seed)
    program.train.seed = *opt.seed;
  if (opt.batch) {
    if (*opt.batch > program.model.maxBatch()) {
      diag.errorNoLoc("--batch " + std::to_string(*opt.batch) + " is too large for model '" +
                          program.model.name + "': no tensor may hold more than 2^40 numbers",
                      "use a batch of at most " + std::to_string(program.model.maxBatch()));
      return false;
    }
    program.data.batch = *opt.batch;
  }
  return true;
}

int run(const Options &opt) {
  if (opt.repl)
    return nnc::runRepl({opt.file, opt.run.dataDir, useColor(opt.color)});
  nnc::SourceManager sources;
  nnc::Diag diag(sources, std::cerr, useColor(opt.color));
  std::string error;
  std::optional<std::string> text = nnc::readSourceFile(opt.file, error);
  if (!text) {
    diag.errorNoLoc(error);
    return 1;
  }
  uint32_t file = sources.add(opt.file, std::move(*text));
  try {
    nnc::Module module = nnc::parseModule(sources, file, diag);
    if (diag.hasErrors())
      return 1;
    if (opt.emit == "ast") {
      nnc::printAST(module, std::cout);
      return 0;
    }
    std::optional<nnc::Program> program = nnc::analyze(module, sources, diag);
    if (!program)
      return 1;
    if (opt.emit == "dot") {
      nnc::printDot(nnc::buildGraph(*program), std::cout);
      return 0;
    }
    if (opt.emit == "graph" || opt.emit == "grad") {
      nnc::Graph graph = opt.emit == "graph" ? nnc::buildGraph(*program)
                                             : nnc::buildLossGraph(*program);
      if (opt.emit == "grad")
        graph = nnc::differentiate(graph, graph.outputs[0], graph.params()).graph;
      if (std::string problem = nnc::verifyGraph(graph); !problem.empty())
        throw std::logic_error("internal error: invalid graph: " + problem);
      nnc::printGraph(graph, sources, std::cout);
      return 0;
    }
    if (opt.emit == "loops" || opt.emit == "llvm")
      return nnc::printLowered(*program, opt.emit, std::cout, diag);
    if (!opt.emitCpp.empty() && opt.inference)
      return nnc::emitInferenceCommand(*program, opt.emitCpp, opt.run.weights, diag);
    if (!opt.emitCpp.empty()) {
      if (!applyOverrides(opt, *program, diag))
        return 1;
      return nnc::emitCppCommand(*program, opt.emitCpp, nnc::dataDirectory(*program, opt.run.dataDir),
                                 diag);
    }
    if (opt.train || opt.eval || !opt.run.image.empty()) {
      if (!applyOverrides(opt, *program, diag))
        return 1;
      nnc::RunOptions run = opt.run;
      run.progress = ::isatty(STDERR_FILENO) != 0;
      if (opt.train)
        return nnc::trainCommand(*program, run, diag);
      if (opt.eval)
        return nnc::evalCommand(*program, run, diag);
      return nnc::predictCommand(*program, run, diag);
    }
    nnc::printSummary(*program, std::cout);
    return 0;
  } catch (const nnc::DiagLimitReached &) {
    return 1;
  }
}

/// Flags that make no sense together, or without the flag they serve.
std::string usageProblem(const Options &opt) {
  int commands = opt.check + opt.train + opt.eval + !opt.run.image.empty() + !opt.emit.empty() +
                 !opt.emitCpp.empty() + opt.repl;
  if (commands > 1)
    return "--check, --emit, --emit-cpp, --train, --eval, --predict and --repl each name what to "
           "do: give one";
  bool training = opt.train;
  if (!training) {
    for (auto [flag, given] : {std::pair<const char *, bool>{"--save", !opt.run.save.empty()},
                               {"--resume", !opt.run.resume.empty()},
                               {"--stop-after-epoch", opt.run.stopAfterEpoch > 0},
                               {"--plot", !opt.run.plot.empty()},
                               {"--epochs", opt.epochs.has_value() && opt.emitCpp.empty()},
                               {"--lr", opt.run.lr.has_value()}})
      if (given)
        return std::string(flag) + " needs --train";
  }
  bool running = opt.train || opt.eval || !opt.run.image.empty() || !opt.emitCpp.empty() ||
                 opt.repl;
  if (!running) {
    for (auto [flag, given] : {std::pair<const char *, bool>{"--data", !opt.run.dataDir.empty()},
                               {"--batch", opt.batch.has_value()},
                               {"--seed", opt.seed.has_value()},
                               {"--json", opt.run.json},
                               {"--weights", !opt.run.weights.empty()}})
      if (given)
        return std::string(flag) + " needs --train, --eval or --predict";
  }
  if (opt.inference) {
    if (opt.emitCpp.empty())
      return "--inference needs --emit-cpp DIR (it writes an inference library there)";
    if (opt.run.weights.empty())
      return "--emit-cpp --inference needs --weights PATH: the trained weights to compile in";
    for (auto [flag, given] : {std::pair<const char *, bool>{"--data", !opt.run.dataDir.empty()},
                               {"--epochs", opt.epochs.has_value()},
                               {"--batch", opt.batch.has_value()},
                               {"--seed", opt.seed.has_value()}})
      if (given)
        return std::string(flag) + " is for training; --emit-cpp --inference has no use for it";
  }
  if (!opt.emitCpp.empty() && opt.run.json)
    return "--json is for running, not for --emit-cpp: give it to the emitted program";
  if (!opt.emitCpp.empty() && !opt.inference && !opt.run.weights.empty())
    return "--weights with --emit-cpp needs --inference (an inference library with the weights "
           "compiled in); an emitted trainer takes --weights itself";
  if ((opt.eval || !opt.run.image.empty()) && opt.run.weights.empty())
    return std::string(opt.eval ? "--eval" : "--predict") + " needs --weights PATH (a checkpoint "
           "written by --train --save)";
  if (opt.train && !opt.run.weights.empty())
    return "--weights is for --eval and --predict; to continue training use --resume";
  if (opt.run.stopAfterEpoch > 0 && opt.run.save.empty())
    return "--stop-after-epoch needs --save PATH, or the training stopped is lost";
  return "";
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"nnc — a compiler for neural networks described in .nn files"};
  app.set_version_flag("--version", std::string("nnc ") + NNC_VERSION + " (LLVM " +
                                        NNC_LLVM_VERSION + ", ANTLR runtime " +
                                        NNC_ANTLR_VERSION + ")");
  app.footer("Exit status: 0 success, 1 errors in the input, 2 usage error, 3 internal error.\n"
             "Documentation: docs/CLI.md and docs/LANGUAGE.md");
  Options opt;
  app.add_option("FILE", opt.file, "the .nn file to compile (optional for --repl)");
  app.add_flag("--check", opt.check,
               "check the file and print the model summary (the default action)");
  app.add_option("--emit", opt.emit, "print a stage's output and stop: ast, graph, grad, loops, llvm or dot")
      ->check(CLI::IsMember({"ast", "graph", "grad", "loops", "llvm", "dot"}))
      ->type_name("STAGE");
  app.add_option("--color", opt.color, "color diagnostics: auto, always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->type_name("WHEN")
      ->capture_default_str();
  app.add_option("--emit-cpp", opt.emitCpp,
                 "write the program as standalone C++ (a trainer built by g++ alone) into DIR")
      ->type_name("DIR");
  app.add_flag("--inference", opt.inference,
               "with --emit-cpp and --weights: an inference library instead, the weights "
               "compiled in (C API nnc_predict)");
  app.add_flag("--repl", opt.repl,
               "an interactive session with the model (also: nnc repl [FILE]); :help lists "
               "its commands");
  app.add_flag("--train", opt.train,
               "train the model on its data for the declared epochs, reporting each epoch");
  app.add_flag("--eval", opt.eval,
               "evaluate --weights on the test set: loss, accuracy, confusion matrix");
  app.add_option("--predict", opt.run.image,
                 "classify one image (IDX, PGM or PNG) with --weights: class probabilities")
      ->type_name("IMAGE");
  app.add_option("--weights", opt.run.weights, "a checkpoint to --eval or --predict with")
      ->type_name("PATH");
  app.add_option("--data", opt.run.dataDir,
                 "the directory of MNIST-format IDX files (default: the data block's path)")
      ->type_name("DIR");
  app.add_option("--epochs", opt.epochs, "train for N epochs instead of the declared number")
      ->check(CLI::Range(int64_t(1), int64_t(1000000)))
      ->type_name("N");
  app.add_option("--batch", opt.batch, "examples per step instead of the declared batch")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40))
      ->type_name("N");
  app.add_option("--lr", opt.run.lr, "the optimizer's base learning rate instead of its lr")
      ->check(CLI::Range(0.0, 1e6))
      ->type_name("X");
  app.add_option("--seed", opt.seed, "the random seed instead of the declared one")
      ->check(CLI::Range(int64_t(0), std::numeric_limits<int64_t>::max()))
      ->type_name("N");
  app.add_option("--threads", opt.threads, "threads to compute with (default: every core)")
      ->check(CLI::Range(1, 1024))
      ->type_name("N");
  app.add_option("--vector-lanes", opt.vectorLanes,
                 "tile loops for vector registers of N floats: 8 (AVX2) or 16 (AVX-512); "
                 "results are the same either way (default: the host CPU's)")
      ->check(CLI::IsMember({8, 16}))
      ->type_name("N");
  app.add_option("--max-memory", opt.maxMemory,
                 "the most memory to size buffers and data for, e.g. 2G or 512M (default: the "
                 "physical memory)")
      ->type_name("SIZE");
  app.add_flag("--json", opt.run.json, "write results as JSON Lines on stdout");
  app.add_option("--save", opt.run.save, "save a checkpoint (safetensors) after every epoch")
      ->type_name("PATH");
  app.add_option("--resume", opt.run.resume, "continue training from a checkpoint")
      ->type_name("PATH");
  app.add_option("--stop-after-epoch", opt.run.stopAfterEpoch,
                 "save and stop after epoch K (the schedule keeps the declared epochs)")
      ->check(CLI::Range(int64_t(1), int64_t(1000000)))
      ->type_name("K");
  app.add_option("--plot", opt.run.plot, "draw loss and accuracy per epoch as an SVG file")
      ->type_name("FILE");
  // `nnc repl [FILE] [options]` is `nnc [FILE] --repl [options]`.
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "repl")
    args[0] = "--repl";
  std::reverse(args.begin(), args.end()); // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    app.exit(e);
    std::cerr << "Run 'nnc --help' for the options.\n";
    return 2;
  }
  if (opt.file.empty() && !opt.repl) {
    std::cerr << "FILE is required: the .nn file to compile\nRun 'nnc --help' for the options.\n";
    return 2;
  }
  if (std::string problem = usageProblem(opt); !problem.empty()) {
    std::cerr << problem << "\nRun 'nnc --help' for the options.\n";
    return 2;
  }
  if (opt.vectorLanes > 0)
    nnc::setVectorLanes(opt.vectorLanes);
  if (opt.threads > 0)
    nnc_set_threads(opt.threads);
  else if (opt.train && nnc::launchedByMpi())
    nnc_set_threads(nnc::threadsPerProcess());
  if (!opt.maxMemory.empty()) {
    uint64_t bytes = nnc_rt::parseBytes(opt.maxMemory);
    if (bytes == 0) {
      std::cerr << "--max-memory " << opt.maxMemory
                << ": not a size; write bytes or a number with K, M, G or T (e.g. 2G)\n"
                << "Run 'nnc --help' for the options.\n";
      return 2;
    }
    nnc_rt::setMemoryCap(bytes);
  }
  // Past a file-size limit a write fails with EFBIG, which the writer
  // reports, instead of the process being killed.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    return run(opt);
  } catch (const std::exception &e) {
    std::cerr << "nnc: internal error: " << e.what()
              << "\nThis is a bug in nnc; please report it with the input that caused it.\n";
    return 3;
  }
}
