// Train.h — the commands that run a compiled program on data: `--train`,
// `--eval` and `--predict`.
#pragma once

#include "frontend/Program.h"
#include "support/Diag.h"

#include "Training.h"

#include <cstdint>
#include <optional>
#include <string>

namespace nnc {

/// The command line's settings for running a program. The overrides of the
/// .nn file's settings (--epochs, --batch, --seed) are applied to the
/// Program before these commands see it; --lr changes only the base rate
/// the compiled step receives.
struct RunOptions {
  std::string dataDir;          ///< --data: else the data block's path
  std::optional<double> lr;     ///< --lr
  bool json = false;            ///< --json: one JSON object per line on stdout
  std::string save, resume;     ///< --save, --resume
  int64_t stopAfterEpoch = 0;   ///< --stop-after-epoch (0: run every epoch)
  std::string plot;             ///< --plot FILE.svg
  std::string weights;          ///< --weights (for --eval, --predict)
  std::string image;            ///< --predict IMAGE
  bool progress = false;        ///< a live progress line on stderr (a terminal)
};

/// Where the data is: `option` (--data) as given, else the data block's
/// path relative to the .nn file's directory; "" when neither says.
std::string dataDirectory(const Program &program, const std::string &option);

/// The runtime's errors, reported by `diag` at the .nn line of the part of
/// `program` they are about (the data block, the input, the optimizer).
nnc_rt::ErrorFn reporter(const Program &program, Diag &diag);

/// The runtime's settings for `options` (the data directory resolved).
nnc_rt::RunOptions runtimeOptions(const Program &program, const RunOptions &options);

/// `nnc FILE --train`: trains for the declared epochs, reporting each
/// epoch. Returns the exit status.
int trainCommand(const Program &program, const RunOptions &options, Diag &diag);
/// `nnc FILE --eval --weights PATH`: loss, accuracy and the confusion matrix
/// on the test set.
int evalCommand(const Program &program, const RunOptions &options, Diag &diag);
/// `nnc FILE --predict IMAGE --weights PATH`: the class probabilities.
int predictCommand(const Program &program, const RunOptions &options, Diag &diag);

} // namespace nnc
