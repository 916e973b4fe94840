// main.cpp — the nnc command line. The compiler is this straight list of
// stages; each flag stops after the stage it names:
//
//   read file -> parseModule -> (--emit=ast) -> analyze -> printSummary (--check)
//                                                       -> buildGraph (--emit=graph)
//                                                       -> buildLossGraph -> differentiate (--emit=grad)
//                                                       -> lowerProgram (--emit=loops)
//                                                          -> JIT::compile (--emit=llvm)
//
// Exit status: 0 success, 1 a mistake in the user's files, 2 a usage error,
// 3 an internal error (a bug in nnc: please report it).
#include "driver/Pipeline.h"
#include "driver/Summary.h"
#include "codegen/JIT.h"
#include "loops/LoopIR.h"
#include "frontend/Parse.h"
#include "frontend/Sema.h"
#include "autodiff/Autodiff.h"
#include "graph/Build.h"
#include "support/Diag.h"
#include "support/Files.h"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <unistd.h>

#ifndef NNC_VERSION
#define NNC_VERSION "0.0.0"
#endif

namespace {

struct Options {
  std::string file;
  bool check = false;
  std::string emit;
  std::string color = "auto";
};

bool useColor(const std::string &mode) {
  if (mode == "always")
    return true;
  if (mode == "never")
    return false;
  return ::isatty(STDERR_FILENO) && std::getenv("NO_COLOR") == nullptr;
}

/// --emit=loops and --emit=llvm: the training step, then prediction.
int emitLowered(const nnc::Program &program, const std::string &what, nnc::Diag &diag) {
  std::string why;
  std::optional<nnc::LoweredProgram> lowered =
      nnc::lowerProgram(program, program.data.batch, why);
  if (!lowered) {
    diag.errorNoLoc(program.path + ": cannot compile this program yet: " + why +
                    " is not supported by the code generator");
    return 1;
  }
  if (what == "loops") {
    nnc::loops::print(lowered->trainStep, std::cout);
    std::cout << "\n";
    nnc::loops::print(lowered->predict, std::cout);
    return 0;
  }
  std::string error;
  std::unique_ptr<nnc::JIT> jit = nnc::JIT::create(error);
  if (!jit)
    throw std::runtime_error("internal error: cannot start the JIT: " + error);
  jit->keepIR(true);
  if (jit->compile({&lowered->trainStep, &lowered->predict}, error).empty())
    throw std::runtime_error(error);
  std::cout << jit->lastIR();
  return 0;
}

int run(const Options &opt) {
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
      return emitLowered(*program, opt.emit, diag);
    nnc::printSummary(*program, std::cout);
    return 0;
  } catch (const nnc::DiagLimitReached &) {
    return 1;
  }
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
  app.add_option("FILE", opt.file, "the .nn file to compile")->required();
  app.add_flag("--check", opt.check,
               "check the file and print the model summary (the default action)");
  app.add_option("--emit", opt.emit, "print a stage's output and stop: ast, graph, grad, loops or llvm")
      ->check(CLI::IsMember({"ast", "graph", "grad", "loops", "llvm"}))
      ->type_name("STAGE");
  app.add_option("--color", opt.color, "color diagnostics: auto, always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->type_name("WHEN")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    app.exit(e);
    std::cerr << "Run 'nnc --help' for the options.\n";
    return 2;
  }
  try {
    return run(opt);
  } catch (const std::exception &e) {
    std::cerr << "nnc: internal error: " << e.what()
              << "\nThis is a bug in nnc; please report it with the input that caused it.\n";
    return 3;
  }
}
