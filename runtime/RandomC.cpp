// RandomC.cpp — the C ABI of the counter-based RNG, for compiled code
// (dropout and randn in JIT-compiled and emitted loops).
#include "Random.h"

extern "C" float nnc_uniform01(uint64_t seed, uint64_t stream, uint64_t index) noexcept {
  return nnc_rt::uniform01(seed, stream, index);
}
