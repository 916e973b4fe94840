// Runner.h — a JIT-compiled loop-IR function with the memory it runs in:
// the runtime's Runner (runtime/Compiled.h), described by the function's
// buffers.
#pragma once

#include "codegen/JIT.h"
#include "loops/LoopIR.h"

#include "Compiled.h"

namespace nnc {

/// The runtime's description of `f`'s buffers, in order.
std::vector<nnc_rt::BufferSpec> bufferSpecs(const loops::Function &f);

class Runner : public nnc_rt::Runner {
public:
  Runner(loops::Function f, CompiledFunction fn)
      : nnc_rt::Runner(bufferSpecs(f), f.arenaElements, f.capacity, fn), f_(std::move(f)) {}

  const loops::Function &function() const { return f_; }

private:
  loops::Function f_;
};

} // namespace nnc
