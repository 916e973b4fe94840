// Runner.h — a compiled loop-IR function with the memory it runs in: its
// inputs, parameters and state (with a second copy for their next values),
// outputs, and one arena for every temporary, all allocated once.
#pragma once

#include "codegen/JIT.h"
#include "loops/LoopIR.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nnc {

class Runner {
public:
  Runner(loops::Function f, CompiledFunction fn);
  ~Runner();
  Runner(const Runner &) = delete;
  Runner &operator=(const Runner &) = delete;

  /// The f32 buffer called `name` (an input, parameter, state or output), or
  /// null. A parameter's pointer changes after each run (see run()).
  float *data(const std::string &name);
  /// The i64 buffer called `name` (labels), or null.
  int64_t *labels(const std::string &name);
  /// Elements of buffer `name` for a batch of `n`; 0 if there is none.
  int64_t elements(const std::string &name, int64_t n) const;

  /// Runs on a batch of `n` (1 <= n <= capacity). Afterwards each parameter
  /// or state buffer and the output holding its next value trade places, so
  /// data(parameter) is the updated value.
  void run(int64_t n);

  const loops::Function &function() const { return f_; }

private:
  int find(const std::string &name) const;

  loops::Function f_;
  CompiledFunction fn_;
  std::vector<void *> pointers_; ///< what the function receives
  std::vector<void *> owned_;    ///< every allocation, freed at the end
};

} // namespace nnc
