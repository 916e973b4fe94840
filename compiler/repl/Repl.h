// Repl.h — `nnc repl [FILE]`: an interactive session with a model, compiled.
//
// The program is kept as the sources it was loaded and typed in: a file from
// :load, then every declaration typed, each parsed as a source of its own
// whose lines are the session's (so a diagnostic points into the line typed).
// Declarations replace those of the same kind (a model, a block of the same
// name, the optimizer, the data block, …); `LAYER: op(…)` replaces one layer
// of the model. After every change the whole program is checked again and
// the summary printed, or the diagnostic, and the session goes on. The model
// is JIT-compiled when it is first run after a change; the weights of layers
// that did not change, the optimizer state of their parameters and the step
// count carry over, and the data is read once per data block.
#pragma once

#include <istream>
#include <string>

namespace nnc {

struct ReplOptions {
  std::string file;    ///< loaded at the start, if not empty
  std::string dataDir; ///< --data: instead of the data block's path
  bool color = false;  ///< diagnostics in color
  /// The lines to read instead of stdin's (never a terminal): the REPL's
  /// fuzz target (tests/fuzz) feeds its input through here.
  std::istream *input = nullptr;
  /// For fuzzing: nothing is JIT-compiled, run, read or written. Tensor
  /// expressions are parsed, checked and lowered to the loop IR but not
  /// run; :load, :train, :eval, :predict, :show, :save and :emit llvm|cpp
  /// say that they are off (`:emit loops` still lowers the model).
  bool fuzzing = false;
};

/// Runs the session on stdin (or options.input): with libedit's line editing, completion and
/// history (~/.nnc_history) on a terminal; plain lines, no prompts and no
/// escape codes from a pipe. Returns the exit status (0 after :quit or the
/// end of the input).
int runRepl(const ReplOptions &options);

} // namespace nnc
