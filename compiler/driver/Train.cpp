// Train.cpp — `--train`, `--eval` and `--predict`: compile the program with
// the JIT and hand it to the runtime's trainer (runtime/Training.h), which
// emitted programs run too. What is added here is the .nn file: the data
// directory relative to it, and errors pointed at the line they are about.
#include "driver/Train.h"

#include "driver/Distributed.h"
#include "driver/Session.h"

#include <filesystem>
#include <iostream>

namespace nnc {

nnc_rt::ErrorFn reporter(const Program &program, Diag &diag) {
  return [&program, &diag](nnc_rt::Culprit culprit, const std::string &message,
                                     const std::string &hint) {
    const Model &m = program.model;
    SourceLoc where;
    switch (culprit) {
    case nnc_rt::Culprit::None:
      break;
    case nnc_rt::Culprit::DataPath:
      where = program.data.pathLoc;
      break;
    case nnc_rt::Culprit::DataBlock:
      where = program.data.declared ? program.data.loc : m.loc;
      break;
    case nnc_rt::Culprit::Input:
      where = m.values[static_cast<size_t>(m.inputs[0])].loc;
      break;
    case nnc_rt::Culprit::Output:
      where = m.values[static_cast<size_t>(m.output)].loc;
      break;
    case nnc_rt::Culprit::Optimizer:
      where = program.optimizer.loc;
      break;
    }
    diag.error(where, message, hint);
  };
}

namespace {

/// Compiles `program` and runs `command` on it.
int runCompiled(const Program &program, const RunOptions &options, Diag &diag,
                int (*command)(nnc_rt::Session &, const nnc_rt::RunOptions &,
                               const nnc_rt::ErrorFn &)) {
  std::string error;
  bool overCap = false;
  std::unique_ptr<Session> s =
      Session::create(program, program.data.batch, error, nullptr, false, &overCap);
  if (!s) {
    diag.error(program.model.loc, error, overCap ? nnc_rt::buffersOverCapHint("--batch N") : "");
    return 1;
  }
  nnc_rt::RunOptions run = runtimeOptions(program, options);
  if (command == nnc_rt::train)
    std::cerr << "compiled " << program.model.name << " in " << static_cast<int>(s->compileMs())
              << " ms\n";
  return command(s->state(), run, reporter(program, diag));
}

} // namespace

nnc_rt::RunOptions runtimeOptions(const Program &program, const RunOptions &options) {
  nnc_rt::RunOptions run;
  run.dataDir = dataDirectory(program, options.dataDir);
  run.dataFromOption = !options.dataDir.empty();
  run.lr = options.lr;
  run.json = options.json;
  run.save = options.save;
  run.resume = options.resume;
  run.stopAfterEpoch = options.stopAfterEpoch;
  run.plot = options.plot;
  run.weights = options.weights;
  run.image = options.image;
  run.progress = options.progress;
  return run;
}

std::string dataDirectory(const Program &program, const std::string &option) {
  std::string dir = option;
  if (dir.empty() && program.data.path) {
    const std::string &path = *program.data.path;
    size_t slash = program.path.rfind('/');
    dir = !path.empty() && path[0] == '/' ? path
          : slash == std::string::npos    ? path
                                          : program.path.substr(0, slash + 1) + path;
  }
  return dir.empty() ? dir : std::filesystem::path(dir).lexically_normal().string();
}

int trainCommand(const Program &program, const RunOptions &options, Diag &diag) {
  if (launchedByMpi())
    return trainDistributed(program, options, diag);
  return runCompiled(program, options, diag, nnc_rt::train);
}

int evalCommand(const Program &program, const RunOptions &options, Diag &diag) {
  return runCompiled(program, options, diag, nnc_rt::evaluate);
}

int predictCommand(const Program &program, const RunOptions &options, Diag &diag) {
  return runCompiled(program, options, diag, nnc_rt::predict);
}

} // namespace nnc
